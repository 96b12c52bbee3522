// The host cgroups of one container (the OCI runtime's linux.resources):
// its sentry, gofers and the sentry's stub processes go in them, and its
// monitor in all but the freezer (it must answer while the container is
// frozen): the engine's shim reads a container's figures (docker stats)
// and hears its OOM kills through the cgroups of its pid. Nested under
// the cgroup husk itself runs in, so a container never escapes the limits
// its runtime has. cgroup v1 (one hierarchy per controller: memory, pids,
// cpu, freezer) and v2 (the unified tree) are both handled.
#ifndef HUSK_CLI_CGROUPS_H_
#define HUSK_CLI_CGROUPS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace husk::cli {

struct CgroupLimits {
  std::optional<int64_t> memory;       // bytes
  std::optional<int64_t> pids;         // tasks
  std::optional<int64_t> cpu_quota;    // microseconds per period
  std::optional<uint64_t> cpu_period;  // microseconds
  std::optional<uint64_t> cpu_shares;
};

class ContainerCgroup {
 public:
  // `name`: the spec's cgroupsPath, or the container id; made relative to
  // husk's own cgroup ("a/b" and "/a/b" alike; a systemd "slice:prefix:name"
  // becomes "prefix-name").
  ContainerCgroup() = default;
  explicit ContainerCgroup(const std::string& name);

  // Makes the cgroups and writes the limits.
  absl::Status Create(const CgroupLimits& limits);
  // freezer false: every hierarchy but the freezer's (cgroup v1; nothing
  // under v2, where the one tree is also what freezes).
  absl::Status Add(pid_t pid, bool freezer = true) const;
  // Freezing waits until every task is frozen (or thaws again and fails).
  absl::Status Freeze(bool frozen) const;
  bool Frozen() const;
  // What `husk events --stats` reports (0 where the host has no figure).
  struct Stats {
    uint64_t memory_usage = 0, memory_limit = 0;
    uint64_t pids_current = 0, pids_limit = 0;
    uint64_t cpu_total_ns = 0;
  };
  Stats Read() const;
  // Moves pid back to the cgroups the caller was in when this was made.
  void Leave(pid_t pid) const;
  // Removes the (empty) cgroups; waits a little for exiting processes.
  void Remove() const;
  // What state.json keeps to find them again.
  const std::string& relative() const { return relative_; }

 private:
  std::string Dir(const char* controller) const;
  std::string relative_;  // under husk's own cgroup, per controller
  std::map<std::string, std::string> own_;  // husk's own cgroup by controller ("": v2)
};

}  // namespace husk::cli

#endif  // HUSK_CLI_CGROUPS_H_
