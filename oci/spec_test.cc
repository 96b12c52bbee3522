// config.json parsing: what husk takes from a bundle, and the one-line error
// a malformed one gets (naming the field).
#include "oci/spec.h"

#include <sys/resource.h>

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace husk::oci {
namespace {

using json = nlohmann::json;

json Minimal() {
  return json::parse(R"({
    "ociVersion": "1.0.2",
    "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo hi"], "cwd": "/"},
    "root": {"path": "rootfs"}
  })");
}

std::string ErrorOf(const json& doc) {
  absl::StatusOr<Spec> s = ParseSpec(doc.dump(), "/bundle");
  EXPECT_FALSE(s.ok()) << doc.dump();
  return s.ok() ? "" : std::string(s.status().message());
}

TEST(SpecTest, TheDefaultSpecParses) {
  absl::StatusOr<Spec> s = ParseSpec(DefaultSpecJson(true), "/b");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->args, std::vector<std::string>{"sh"});
  EXPECT_TRUE(s->terminal);
  EXPECT_EQ(s->root_path, "/b/rootfs");
  EXPECT_TRUE(s->root_readonly);
  EXPECT_EQ(s->hostname, "husk");
  ASSERT_EQ(s->rlimits.size(), 1u);
  EXPECT_EQ(s->rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(s->rlimits[0].hard, 1024u);
  EXPECT_EQ(s->mounts.size(), 7u);
  EXPECT_EQ(s->namespaces.size(), 6u);
  EXPECT_TRUE(s->no_new_privileges);
  EXPECT_FALSE(ParseSpec(DefaultSpecJson(false), "/b")->terminal);
}

TEST(SpecTest, FieldsHuskUses) {
  json d = Minimal();
  d["process"]["env"] = {"PATH=/bin", "A=b=c"};
  d["process"]["cwd"] = "/work";
  d["process"]["user"] = {{"uid", 1000}, {"gid", 100}, {"additionalGids", {5, 6}}, {"umask", 18}};
  d["hostname"] = "box";
  d["root"] = {{"path", "/abs/root"}, {"readonly", false}};
  d["mounts"] = {
      {{"destination", "/data"}, {"type", "bind"}, {"source", "vol"}, {"options", {"rbind", "ro"}}},
      {{"destination", "/x"}, {"type", "none"}, {"source", "/h"}, {"options", {"bind"}}},
      {{"destination", "/scratch"}, {"type", "tmpfs"}, {"source", "tmpfs"}}};
  d["annotations"] = {{"io.k", "v"}};
  d["linux"] = {{"resources", {{"memory", {{"limit", 67108864}}}, {"pids", {{"limit", 100}}}}},
                {"sysctl", {{"net.ipv4.ip_forward", "1"}}},
                {"namespaces", {{{"type", "network"}, {"path", "/var/run/netns/x"}}}}};
  d["hooks"] = {{"poststop", {{{"path", "/bin/true"}, {"args", {"true"}}, {"timeout", 5}}}}};
  absl::StatusOr<Spec> s = ParseSpec(d.dump(), "/bundle");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->env, (std::vector<std::string>{"PATH=/bin", "A=b=c"}));
  EXPECT_EQ(s->cwd, "/work");
  EXPECT_EQ(s->uid, 1000u);
  EXPECT_EQ(s->gid, 100u);
  EXPECT_EQ(s->additional_gids, (std::vector<uint32_t>{5, 6}));
  EXPECT_EQ(s->umask, 18u);
  EXPECT_EQ(s->hostname, "box");
  EXPECT_EQ(s->root_path, "/abs/root");
  ASSERT_EQ(s->mounts.size(), 3u);
  EXPECT_TRUE(s->mounts[0].bind);
  EXPECT_TRUE(s->mounts[0].read_only);
  EXPECT_EQ(s->mounts[0].source, "/bundle/vol");
  EXPECT_TRUE(s->mounts[1].bind);
  EXPECT_FALSE(s->mounts[1].read_only);
  EXPECT_EQ(s->mounts[1].type, "bind");
  EXPECT_FALSE(s->mounts[2].bind);
  EXPECT_EQ(s->annotations.at("io.k"), "v");
  EXPECT_EQ(s->memory_limit, 67108864);
  EXPECT_EQ(s->pids_limit, 100);
  EXPECT_EQ(s->sysctl.at("net.ipv4.ip_forward"), "1");
  ASSERT_EQ(s->namespaces.size(), 1u);
  EXPECT_EQ(s->namespaces[0].path, "/var/run/netns/x");
  ASSERT_EQ(s->poststop.size(), 1u);
  EXPECT_EQ(s->poststop[0].timeout, 5);
}

TEST(SpecTest, MalformedBundlesNameTheField) {
  EXPECT_EQ(std::string(ParseSpec("{\"ociVersion\": ", "/b").status().message()),
            "config.json: not valid JSON (at byte 16)");
  EXPECT_EQ(std::string(ParseSpec("[1]", "/b").status().message()),
            "config.json: must be a JSON object");
  json d = Minimal();
  d.erase("root");
  EXPECT_EQ(ErrorOf(d), "config.json: root: is missing");
  d = Minimal();
  d["root"]["path"] = 5;
  EXPECT_EQ(ErrorOf(d), "config.json: root.path: must be a string");
  d = Minimal();
  d["process"]["args"] = json::array();
  EXPECT_EQ(ErrorOf(d), "config.json: process.args: must not be empty");
  d = Minimal();
  d["process"].erase("args");
  EXPECT_EQ(ErrorOf(d), "config.json: process.args: is missing");
  d = Minimal();
  d["process"]["args"] = {"sh", 3};
  EXPECT_EQ(ErrorOf(d), "config.json: process.args[1]: must be a string");
  d = Minimal();
  d["process"]["env"] = {"NOEQUALS"};
  EXPECT_EQ(ErrorOf(d), "config.json: process.env[0]: must be NAME=VALUE");
  d = Minimal();
  d["process"]["cwd"] = "relative";
  EXPECT_EQ(ErrorOf(d), "config.json: process.cwd: must be an absolute path");
  d = Minimal();
  d["process"]["user"]["uid"] = -1;
  EXPECT_EQ(ErrorOf(d), "config.json: process.user.uid: is out of range");
  d = Minimal();
  d["mounts"] = {{{"destination", "/m"}, {"type", "nfs"}, {"source", "x"}}};
  EXPECT_EQ(ErrorOf(d), "config.json: mounts[0].type: unsupported mount type 'nfs'");
  d = Minimal();
  d["mounts"] = {{{"destination", "m"}, {"type", "tmpfs"}}};
  EXPECT_EQ(ErrorOf(d), "config.json: mounts[0].destination: must be an absolute path");
  d = Minimal();
  d["mounts"] = {{{"destination", "/m"}, {"type", "bind"}}};
  EXPECT_EQ(ErrorOf(d), "config.json: mounts[0].source: a bind mount needs one");
  d = Minimal();
  d["process"]["rlimits"] = {{{"type", "RLIMIT_BOGUS"}, {"soft", 1}, {"hard", 1}}};
  EXPECT_EQ(ErrorOf(d), "config.json: process.rlimits[0].type: unknown rlimit 'RLIMIT_BOGUS'");
  d = Minimal();
  d["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 10}, {"hard", 1}}};
  EXPECT_EQ(ErrorOf(d), "config.json: process.rlimits[0]: soft is above hard");
  d = Minimal();
  d["hooks"] = {{"prestart", {{{"path", "relative"}}}}};
  EXPECT_EQ(ErrorOf(d), "config.json: hooks.prestart[0].path: must be an absolute path");
  d = Minimal();
  d["linux"] = {{"namespaces", {{{"type", "pid"}}, {{"type", "pid"}}}}};
  EXPECT_EQ(ErrorOf(d), "config.json: linux.namespaces[1].type: given twice");
  d = Minimal();
  d["process"]["capabilities"] = {{"bounding", {"CAP_CHOWN", "CAP_BOGUS"}}};
  EXPECT_EQ(ErrorOf(d), "config.json: process.capabilities: unknown capability 'CAP_BOGUS'");
  d = Minimal();
  d["ociVersion"] = "2.0.0";
  EXPECT_EQ(ErrorOf(d), "config.json: ociVersion: husk runs 1.x bundles, not '2.0.0'");
}

TEST(SpecTest, CapabilityNumbers) {
  EXPECT_EQ(CapabilityByName("CAP_CHOWN"), 0);
  EXPECT_EQ(CapabilityByName("CAP_SYS_ADMIN"), 21);
  EXPECT_EQ(CapabilityByName("CAP_CHECKPOINT_RESTORE"), 40);
  EXPECT_EQ(CapabilityByName("CHOWN"), -1);
  json d = Minimal();
  d["process"]["capabilities"] = {{"bounding", {"CAP_KILL"}}, {"ambient", json::array()}};
  absl::StatusOr<Spec> s = ParseSpec(d.dump(), "/b");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->has_capabilities);
  EXPECT_EQ(s->cap_bounding, std::vector<std::string>{"CAP_KILL"});
  EXPECT_FALSE(ParseSpec(Minimal().dump(), "/b")->has_capabilities);
}

}  // namespace
}  // namespace husk::oci
