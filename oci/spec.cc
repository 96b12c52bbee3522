#include "oci/spec.h"

#include <sys/resource.h>

#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace husk::oci {
namespace {

using json = nlohmann::json;

// Walks the document, keeping the path of the value at hand for errors:
// the first problem found is the one reported.
class Checker {
 public:
  absl::Status status() const { return status_; }
  bool ok() const { return status_.ok(); }

  void Fail(const std::string& path, const std::string& why) {
    if (status_.ok())
      status_ = absl::InvalidArgumentError(absl::StrCat("config.json: ", path, ": ", why));
  }

  // The member `key` of object `o`, or null when absent (or JSON null).
  static const json* Member(const json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return nullptr;
    return &*it;
  }

  const json* Object(const json& o, const char* key, const std::string& path) {
    const json* v = Member(o, key);
    if (v != nullptr && !v->is_object()) {
      Fail(path, "must be an object");
      return nullptr;
    }
    return v;
  }

  bool String(const json& o, const char* key, const std::string& path, std::string* out,
              bool required = false) {
    const json* v = Member(o, key);
    if (v == nullptr) {
      if (required) Fail(path, "is missing");
      return false;
    }
    if (!v->is_string()) {
      Fail(path, "must be a string");
      return false;
    }
    *out = v->get<std::string>();
    return true;
  }

  bool Bool(const json& o, const char* key, const std::string& path, bool* out) {
    const json* v = Member(o, key);
    if (v == nullptr) return false;
    if (!v->is_boolean()) {
      Fail(path, "must be true or false");
      return false;
    }
    *out = v->get<bool>();
    return true;
  }

  // An integer in [lo, hi].
  template <typename T>
  bool Int(const json& o, const char* key, const std::string& path, T* out, int64_t lo,
           uint64_t hi) {
    const json* v = Member(o, key);
    if (v == nullptr) return false;
    if (v->is_number_unsigned()) {
      uint64_t n = v->get<uint64_t>();
      if (n > hi) return Fail(path, "is out of range"), false;
      *out = static_cast<T>(n);
      return true;
    }
    if (v->is_number_integer()) {
      int64_t n = v->get<int64_t>();
      if (n < lo || (n >= 0 && static_cast<uint64_t>(n) > hi)) {
        return Fail(path, "is out of range"), false;
      }
      *out = static_cast<T>(n);
      return true;
    }
    Fail(path, "must be an integer");
    return false;
  }

  bool Strings(const json& o, const char* key, const std::string& path,
               std::vector<std::string>* out) {
    const json* v = Member(o, key);
    if (v == nullptr) return false;
    if (!v->is_array()) return Fail(path, "must be an array of strings"), false;
    out->clear();
    for (size_t i = 0; i < v->size(); i++) {
      if (!(*v)[i].is_string()) {
        return Fail(absl::StrCat(path, "[", i, "]"), "must be a string"), false;
      }
      out->push_back((*v)[i].get<std::string>());
    }
    return true;
  }

  bool StringMap(const json& o, const char* key, const std::string& path,
                 std::map<std::string, std::string>* out) {
    const json* v = Object(o, key, path);
    if (v == nullptr) return false;
    for (const auto& [k, val] : v->items()) {
      if (!val.is_string()) return Fail(absl::StrCat(path, ".", k), "must be a string"), false;
      (*out)[k] = val.get<std::string>();
    }
    return true;
  }

 private:
  absl::Status status_;
};

bool Absolute(const std::string& p) { return !p.empty() && p[0] == '/'; }

// RLIMIT_* by the spec's names.
int RlimitByName(const std::string& name) {
  static const std::map<std::string, int> kNames = {
      {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  };
  auto it = kNames.find(name);
  return it == kNames.end() ? -1 : it->second;
}

}  // namespace

int CapabilityByName(const std::string& name) {
  // capability.h's numbering, 0 to CAP_LAST_CAP (40).
  static const char* const kNames[] = {"CAP_CHOWN",
                                       "CAP_DAC_OVERRIDE",
                                       "CAP_DAC_READ_SEARCH",
                                       "CAP_FOWNER",
                                       "CAP_FSETID",
                                       "CAP_KILL",
                                       "CAP_SETGID",
                                       "CAP_SETUID",
                                       "CAP_SETPCAP",
                                       "CAP_LINUX_IMMUTABLE",
                                       "CAP_NET_BIND_SERVICE",
                                       "CAP_NET_BROADCAST",
                                       "CAP_NET_ADMIN",
                                       "CAP_NET_RAW",
                                       "CAP_IPC_LOCK",
                                       "CAP_IPC_OWNER",
                                       "CAP_SYS_MODULE",
                                       "CAP_SYS_RAWIO",
                                       "CAP_SYS_CHROOT",
                                       "CAP_SYS_PTRACE",
                                       "CAP_SYS_PACCT",
                                       "CAP_SYS_ADMIN",
                                       "CAP_SYS_BOOT",
                                       "CAP_SYS_NICE",
                                       "CAP_SYS_RESOURCE",
                                       "CAP_SYS_TIME",
                                       "CAP_SYS_TTY_CONFIG",
                                       "CAP_MKNOD",
                                       "CAP_LEASE",
                                       "CAP_AUDIT_WRITE",
                                       "CAP_AUDIT_CONTROL",
                                       "CAP_SETFCAP",
                                       "CAP_MAC_OVERRIDE",
                                       "CAP_MAC_ADMIN",
                                       "CAP_SYSLOG",
                                       "CAP_WAKE_ALARM",
                                       "CAP_BLOCK_SUSPEND",
                                       "CAP_AUDIT_READ",
                                       "CAP_PERFMON",
                                       "CAP_BPF",
                                       "CAP_CHECKPOINT_RESTORE"};
  for (int i = 0; i < static_cast<int>(std::size(kNames)); i++) {
    if (name == kNames[i]) return i;
  }
  return -1;
}

namespace {

void ParseProcess(Checker& c, const json& p, Spec* s) {
  c.Bool(p, "terminal", "process.terminal", &s->terminal);
  if (const json* cs = c.Object(p, "consoleSize", "process.consoleSize")) {
    c.Int(*cs, "height", "process.consoleSize.height", &s->console_height, 0, UINT16_MAX);
    c.Int(*cs, "width", "process.consoleSize.width", &s->console_width, 0, UINT16_MAX);
  }
  if (!c.Strings(p, "args", "process.args", &s->args) && c.ok()) {
    c.Fail("process.args", "is missing");
  }
  if (c.ok() && s->args.empty()) c.Fail("process.args", "must not be empty");
  if (c.ok() && s->args[0].empty()) c.Fail("process.args[0]", "must not be empty");
  if (p.contains("commandLine")) c.Fail("process.commandLine", "is for Windows containers");
  c.Strings(p, "env", "process.env", &s->env);
  for (size_t i = 0; i < s->env.size() && c.ok(); i++) {
    if (s->env[i].find('=') == std::string::npos) {
      c.Fail(absl::StrCat("process.env[", i, "]"), "must be NAME=VALUE");
    }
  }
  if (!c.String(p, "cwd", "process.cwd", &s->cwd, /*required=*/true)) return;
  if (!Absolute(s->cwd)) return c.Fail("process.cwd", "must be an absolute path");
  if (const json* u = c.Object(p, "user", "process.user")) {
    c.Int(*u, "uid", "process.user.uid", &s->uid, 0, UINT32_MAX - 1);
    c.Int(*u, "gid", "process.user.gid", &s->gid, 0, UINT32_MAX - 1);
    uint32_t umask = 0;
    if (c.Int(*u, "umask", "process.user.umask", &umask, 0, 0777)) s->umask = umask;
    if (const json* g = Checker::Member(*u, "additionalGids")) {
      if (!g->is_array()) return c.Fail("process.user.additionalGids", "must be an array");
      for (size_t i = 0; i < g->size(); i++) {
        if (!(*g)[i].is_number_unsigned() || (*g)[i].get<uint64_t>() >= UINT32_MAX) {
          return c.Fail(absl::StrCat("process.user.additionalGids[", i, "]"), "must be a group id");
        }
        s->additional_gids.push_back((*g)[i].get<uint32_t>());
      }
    }
    if (u->contains("username")) c.Fail("process.user.username", "is for Windows containers");
  } else if (c.ok()) {
    c.Fail("process.user", "is missing");
  }
  if (const json* rl = Checker::Member(p, "rlimits")) {
    if (!rl->is_array()) return c.Fail("process.rlimits", "must be an array");
    std::set<int> seen;
    for (size_t i = 0; i < rl->size() && c.ok(); i++) {
      std::string path = absl::StrCat("process.rlimits[", i, "]");
      const json& r = (*rl)[i];
      if (!r.is_object()) return c.Fail(path, "must be an object");
      std::string type;
      if (!c.String(r, "type", path + ".type", &type, true)) return;
      Rlimit lim;
      lim.resource = RlimitByName(type);
      if (lim.resource < 0) return c.Fail(path + ".type", "unknown rlimit '" + type + "'");
      if (!seen.insert(lim.resource).second) return c.Fail(path + ".type", "given twice");
      if (!c.Int(r, "soft", path + ".soft", &lim.soft, 0, UINT64_MAX) && c.ok()) {
        return c.Fail(path + ".soft", "is missing");
      }
      if (!c.Int(r, "hard", path + ".hard", &lim.hard, 0, UINT64_MAX) && c.ok()) {
        return c.Fail(path + ".hard", "is missing");
      }
      if (c.ok() && lim.soft > lim.hard) return c.Fail(path, "soft is above hard");
      s->rlimits.push_back(lim);
    }
  }
  c.Bool(p, "noNewPrivileges", "process.noNewPrivileges", &s->no_new_privileges);
  if (const json* caps = c.Object(p, "capabilities", "process.capabilities")) {
    c.Strings(*caps, "bounding", "process.capabilities.bounding", &s->cap_bounding);
    c.Strings(*caps, "effective", "process.capabilities.effective", &s->cap_effective);
    c.Strings(*caps, "permitted", "process.capabilities.permitted", &s->cap_permitted);
    c.Strings(*caps, "inheritable", "process.capabilities.inheritable", &s->cap_inheritable);
    c.Strings(*caps, "ambient", "process.capabilities.ambient", &s->cap_ambient);
    s->has_capabilities = true;
    for (const auto* set : {&s->cap_bounding, &s->cap_effective, &s->cap_permitted,
                            &s->cap_inheritable, &s->cap_ambient}) {
      for (const std::string& name : *set) {
        if (c.ok() && CapabilityByName(name) < 0) {
          c.Fail("process.capabilities", "unknown capability '" + name + "'");
        }
      }
    }
  }
}

// The mount types the sandbox has (the sentry makes each itself; only bind
// mounts reach the host, through a gofer).
const std::set<std::string>& KnownMountTypes() {
  static const auto* kTypes = new std::set<std::string>{
      "bind", "tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "shm"};
  return *kTypes;
}

void ParseMounts(Checker& c, const json& doc, const std::string& bundle, Spec* s) {
  const json* ms = Checker::Member(doc, "mounts");
  if (ms == nullptr) return;
  if (!ms->is_array()) return c.Fail("mounts", "must be an array");
  for (size_t i = 0; i < ms->size() && c.ok(); i++) {
    std::string path = absl::StrCat("mounts[", i, "]");
    const json& m = (*ms)[i];
    if (!m.is_object()) return c.Fail(path, "must be an object");
    Mount mount;
    if (!c.String(m, "destination", path + ".destination", &mount.destination, true)) return;
    if (!Absolute(mount.destination)) {
      return c.Fail(path + ".destination", "must be an absolute path");
    }
    c.String(m, "type", path + ".type", &mount.type);
    c.String(m, "source", path + ".source", &mount.source);
    c.Strings(m, "options", path + ".options", &mount.options);
    if (!c.ok()) return;
    for (const std::string& o : mount.options) {
      if (o == "bind" || o == "rbind") mount.bind = true;
      if (o == "ro") mount.read_only = true;
    }
    if (mount.type == "bind") mount.bind = true;
    if (mount.bind) {
      if (mount.type != "bind" && mount.type != "none" && !mount.type.empty()) {
        return c.Fail(path + ".type",
                      "a bind mount's type is bind or none, not '" + mount.type + "'");
      }
      mount.type = "bind";
      if (mount.source.empty()) return c.Fail(path + ".source", "a bind mount needs one");
      if (!Absolute(mount.source)) mount.source = bundle + "/" + mount.source;
    } else if (mount.type.empty()) {
      return c.Fail(path + ".type", "is missing");
    } else if (!KnownMountTypes().contains(mount.type)) {
      return c.Fail(path + ".type", "unsupported mount type '" + mount.type + "'");
    }
    s->mounts.push_back(std::move(mount));
  }
}

void ParseHooks(Checker& c, const json& doc, Spec* s) {
  const json* hooks = c.Object(doc, "hooks", "hooks");
  if (hooks == nullptr) return;
  const std::pair<const char*, std::vector<Hook>*> kPoints[] = {
      {"prestart", &s->prestart},
      {"createRuntime", &s->create_runtime},
      {"createContainer", &s->create_container},
      {"startContainer", &s->start_container},
      {"poststart", &s->poststart},
      {"poststop", &s->poststop},
  };
  for (const auto& [key, list] : kPoints) {
    const json* hs = Checker::Member(*hooks, key);
    if (hs == nullptr) continue;
    std::string base = absl::StrCat("hooks.", key);
    if (!hs->is_array()) return c.Fail(base, "must be an array");
    for (size_t i = 0; i < hs->size() && c.ok(); i++) {
      std::string path = absl::StrCat(base, "[", i, "]");
      const json& h = (*hs)[i];
      if (!h.is_object()) return c.Fail(path, "must be an object");
      Hook hook;
      if (!c.String(h, "path", path + ".path", &hook.path, true)) return;
      if (!Absolute(hook.path)) return c.Fail(path + ".path", "must be an absolute path");
      c.Strings(h, "args", path + ".args", &hook.args);
      c.Strings(h, "env", path + ".env", &hook.env);
      int timeout = 0;
      if (c.Int(h, "timeout", path + ".timeout", &timeout, 1, INT32_MAX)) hook.timeout = timeout;
      list->push_back(std::move(hook));
    }
  }
}

void ParseLinux(Checker& c, const json& doc, Spec* s) {
  const json* l = c.Object(doc, "linux", "linux");
  if (l == nullptr) return;
  if (const json* ns = Checker::Member(*l, "namespaces")) {
    if (!ns->is_array()) return c.Fail("linux.namespaces", "must be an array");
    static const std::set<std::string> kTypes = {"pid", "network", "mount",  "ipc",
                                                 "uts", "user",    "cgroup", "time"};
    std::set<std::string> seen;
    for (size_t i = 0; i < ns->size() && c.ok(); i++) {
      std::string path = absl::StrCat("linux.namespaces[", i, "]");
      if (!(*ns)[i].is_object()) return c.Fail(path, "must be an object");
      Namespace n;
      if (!c.String((*ns)[i], "type", path + ".type", &n.type, true)) return;
      if (!kTypes.contains(n.type))
        return c.Fail(path + ".type", "unknown namespace '" + n.type + "'");
      if (!seen.insert(n.type).second) return c.Fail(path + ".type", "given twice");
      c.String((*ns)[i], "path", path + ".path", &n.path);
      if (c.ok() && !n.path.empty() && !Absolute(n.path)) {
        return c.Fail(path + ".path", "must be an absolute path");
      }
      s->namespaces.push_back(std::move(n));
    }
  }
  c.Strings(*l, "maskedPaths", "linux.maskedPaths", &s->masked_paths);
  c.Strings(*l, "readonlyPaths", "linux.readonlyPaths", &s->readonly_paths);
  c.StringMap(*l, "sysctl", "linux.sysctl", &s->sysctl);
  c.String(*l, "cgroupsPath", "linux.cgroupsPath", &s->cgroups_path);
  if (const json* r = c.Object(*l, "resources", "linux.resources")) {
    if (const json* m = c.Object(*r, "memory", "linux.resources.memory")) {
      int64_t limit = 0;
      // -1 (or none): no limit.
      if (c.Int(*m, "limit", "linux.resources.memory.limit", &limit, -1, INT64_MAX) && limit > 0) {
        s->memory_limit = limit;
      }
    }
    if (const json* p = c.Object(*r, "pids", "linux.resources.pids")) {
      int64_t limit = 0;
      if (c.Int(*p, "limit", "linux.resources.pids.limit", &limit, -1, INT64_MAX) && limit > 0) {
        s->pids_limit = limit;
      }
    }
    if (const json* cpu = c.Object(*r, "cpu", "linux.resources.cpu")) {
      uint64_t shares = 0, period = 0;
      int64_t quota = 0;
      if (c.Int(*cpu, "shares", "linux.resources.cpu.shares", &shares, 0, UINT64_MAX)) {
        s->cpu_shares = shares;
      }
      if (c.Int(*cpu, "quota", "linux.resources.cpu.quota", &quota, -1, INT64_MAX) && quota > 0) {
        s->cpu_quota = quota;
      }
      if (c.Int(*cpu, "period", "linux.resources.cpu.period", &period, 0, UINT64_MAX)) {
        s->cpu_period = period;
      }
    }
  }
}

}  // namespace

absl::StatusOr<Spec> ParseSpec(std::string_view text, const std::string& bundle) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: not valid JSON (at byte ", e.byte, ")"));
  }
  if (!doc.is_object()) return absl::InvalidArgumentError("config.json: must be a JSON object");
  Checker c;
  Spec s;
  if (!c.String(doc, "ociVersion", "ociVersion", &s.oci_version, true)) return c.status();
  if (s.oci_version.rfind("1.", 0) != 0) {
    return absl::InvalidArgumentError("config.json: ociVersion: husk runs 1.x bundles, not '" +
                                      s.oci_version + "'");
  }
  const json* root = c.Object(doc, "root", "root");
  if (root == nullptr) {
    c.Fail("root", "is missing");
    return c.status();
  }
  if (!c.String(*root, "path", "root.path", &s.root_path, true)) return c.status();
  if (s.root_path.empty()) return absl::InvalidArgumentError("config.json: root.path: is empty");
  if (!Absolute(s.root_path)) s.root_path = bundle + "/" + s.root_path;
  c.Bool(*root, "readonly", "root.readonly", &s.root_readonly);

  const json* process = c.Object(doc, "process", "process");
  if (process == nullptr && c.ok()) c.Fail("process", "is missing");
  if (process != nullptr) ParseProcess(c, *process, &s);
  c.String(doc, "hostname", "hostname", &s.hostname);
  if (c.ok() && s.hostname.size() > 64) c.Fail("hostname", "is longer than 64 bytes");
  ParseMounts(c, doc, bundle, &s);
  c.StringMap(doc, "annotations", "annotations", &s.annotations);
  ParseHooks(c, doc, &s);
  ParseLinux(c, doc, &s);
  if (!c.ok()) return c.status();
  return s;
}

absl::StatusOr<Spec> ParseProcessJson(std::string_view text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("process.json: not valid JSON (at byte ", e.byte, ")"));
  }
  if (!doc.is_object()) return absl::InvalidArgumentError("process.json: must be a JSON object");
  Checker c;
  Spec s;
  ParseProcess(c, doc, &s);
  if (!c.ok()) {
    std::string msg(c.status().message());
    // The fields are the process object's own here.
    const std::string from = "config.json: process.";
    if (msg.rfind(from, 0) == 0) msg = "process.json: " + msg.substr(from.size());
    return absl::InvalidArgumentError(msg);
  }
  return s;
}

absl::StatusOr<Spec> LoadSpec(const std::string& bundle) {
  std::ifstream in(bundle + "/config.json", std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", bundle, "/config.json: ", strerror(errno)));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return ParseSpec(buf.str(), bundle);
}

std::string DefaultSpecJson(bool terminal) {
  json caps = json::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
  json spec = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", terminal},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", {"sh"}},
        {"env",
         {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"},
        {"capabilities",
         {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", caps}}},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "husk"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"},
         {"type", "devpts"},
         {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
        {{"destination", "/dev/shm"},
         {"type", "tmpfs"},
         {"source", "shm"},
         {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
        {{"destination", "/dev/mqueue"},
         {"type", "mqueue"},
         {"source", "mqueue"},
         {"options", {"nosuid", "noexec", "nodev"}}},
        {{"destination", "/sys"},
         {"type", "sysfs"},
         {"source", "sysfs"},
         {"options", {"nosuid", "noexec", "nodev", "ro"}}},
        {{"destination", "/sys/fs/cgroup"},
         {"type", "cgroup"},
         {"source", "cgroup"},
         {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}}}},
      {"linux",
       {{"namespaces",
         {{{"type", "pid"}},
          {{"type", "network"}},
          {{"type", "ipc"}},
          {{"type", "uts"}},
          {{"type", "mount"}},
          {{"type", "cgroup"}}}},
        {"maskedPaths",
         {"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}},
        {"readonlyPaths",
         {"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
          "/proc/sysrq-trigger"}}}},
  };
  return spec.dump(1, '\t') + "\n";
}

}  // namespace husk::oci
