// The OCI runtime's state of one container, kept in ROOT/ID/state.json
// (ROOT: `husk --root`, /run/husk by default): written whole and renamed
// into place, so a reader sees the old or the new state, never half.
#ifndef HUSK_OCI_STATE_H_
#define HUSK_OCI_STATE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace husk::oci {

struct State {
  std::string oci_version = "1.0.2";
  std::string id;
  std::string status;      // created, running, paused, stopped
  pid_t pid = 0;           // the monitor: a host process whose exit status is the container's
  uint64_t pid_start = 0;  // its start time (/proc/PID/stat field 22): a reused pid is not it
  std::string bundle;
  std::string rootfs;
  int64_t created_ns = 0;  // CLOCK_REALTIME
  std::map<std::string, std::string> annotations;
  std::string cgroup;  // the container's cgroups, under husk's own (empty: none)
};

// The state as `husk state` prints it (the OCI state, plus runc's extra
// fields that tools read: rootfs, created, owner).
std::string StateJson(const State& s, bool pretty);
// `husk list --format json`: the states as one array.
std::string StatesJson(const std::vector<State>& states);

// state.json, written whole and renamed into place under DIR/state.lock;
// ReadState takes the lock shared.
absl::Status WriteState(const std::string& dir, const State& s);
// One line of the --log file in runc's JSON form: {"level":..,"msg":..,"time":..}.
std::string JsonLogLine(const std::string& level, const std::string& msg);
absl::StatusOr<State> ReadState(const std::string& dir);

}  // namespace husk::oci

#endif  // HUSK_OCI_STATE_H_
