// The OCI runtime spec's config.json (runtime-spec 1.0/1.1), as husk uses
// it: parsed with nlohmann/json (Debian's nlohmann-json3-dev) and checked
// field by field, so that a bad bundle fails with one line naming the field
// ("config.json: process.args: must not be empty") before anything is made.
//
// What husk does with each field is in oci/README.md; a field husk cannot
// honour (an unknown mount type, a namespace path it cannot join) is an
// error, never ignored, except the ones the spec calls optional hints
// (cgroupsPath, seccomp, apparmor, selinux: the sandbox is the policy).
#ifndef HUSK_OCI_SPEC_H_
#define HUSK_OCI_SPEC_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace husk::oci {

struct Mount {
  std::string destination;  // absolute, inside the container
  std::string type;         // "bind" for bind mounts (also type "none" with a bind option)
  std::string source;       // a bind mount's host path, made absolute against the bundle
  std::vector<std::string> options;
  bool bind = false;
  bool read_only = false;  // a bind mount with "ro"
};

struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout;  // seconds
};

struct Rlimit {
  int resource = 0;  // RLIMIT_*
  uint64_t soft = 0;
  uint64_t hard = 0;
};

struct Namespace {
  std::string type;  // pid, network, mount, ipc, uts, user, cgroup, time
  std::string path;  // empty: a new one
};

struct Spec {
  std::string oci_version;

  // process
  bool terminal = false;
  unsigned console_height = 0, console_width = 0;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> additional_gids;
  std::optional<uint32_t> umask;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::vector<std::string> cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
  bool has_capabilities = false;  // process.capabilities was given

  // root
  std::string root_path;  // absolute (a relative path is the bundle's)
  bool root_readonly = false;

  std::string hostname;
  std::vector<Mount> mounts;
  std::map<std::string, std::string> annotations;

  // hooks, by the point they run at
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;

  // linux
  std::vector<Namespace> namespaces;
  std::vector<std::string> masked_paths, readonly_paths;
  std::map<std::string, std::string> sysctl;
  std::optional<int64_t> memory_limit;  // bytes
  std::optional<int64_t> pids_limit;
  std::optional<uint64_t> cpu_shares;
  std::optional<int64_t> cpu_quota;
  std::optional<uint64_t> cpu_period;
  std::string cgroups_path;
};

// A capability's number by its name ("CAP_CHOWN" is 0), -1 if unknown.
int CapabilityByName(const std::string& name);

// Parses and checks config.json's text; `bundle` is the bundle's absolute
// directory (what a relative root.path or bind source is relative to).
absl::StatusOr<Spec> ParseSpec(std::string_view json, const std::string& bundle);

// A process.json as `runc exec --process` takes it (config.json's process
// object): its fields land in the process fields of the returned Spec.
absl::StatusOr<Spec> ParseProcessJson(std::string_view json);

// Reads BUNDLE/config.json and parses it.
absl::StatusOr<Spec> LoadSpec(const std::string& bundle);

// What `husk spec` writes: runc's default config.json (sh in a busybox-like
// rootfs, a terminal unless `terminal` is false, the standard mounts).
std::string DefaultSpecJson(bool terminal);

}  // namespace husk::oci

#endif  // HUSK_OCI_SPEC_H_
