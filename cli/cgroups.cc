#include "cli/cgroups.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/sandbox.h"

namespace husk::cli {
namespace {

constexpr const char* kRoot = "/sys/fs/cgroup";
// v1 hierarchies husk uses (memory, pids, cpu for limits; cpuacct for the
// CPU time events report; freezer for pause).
constexpr const char* kControllers[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};

bool Unified() { return access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0; }

// husk's own cgroup for `controller` ("" for v2's unified tree), from
// /proc/self/cgroup.
std::string OwnPath(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    if (controller.empty()) {
      if (f[0] == "0" && f[1].empty()) return f[2];
      continue;
    }
    for (absl::string_view c : absl::StrSplit(f[1], ',')) {
      if (c == controller) return f[2];
    }
  }
  return "/";
}

absl::Status WriteValue(const std::string& file, const std::string& value) {
  int fd = open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat(file, ": ", strerror(errno)));
  bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  int err = errno;
  close(fd);
  if (!ok) return absl::InternalError(absl::StrCat(file, " <- ", value, ": ", strerror(err)));
  return absl::OkStatus();
}

std::string ReadValue(const std::string& file) {
  std::ifstream in(file);
  std::stringstream buf;
  buf << in.rdbuf();
  return std::string(absl::StripTrailingAsciiWhitespace(buf.str()));
}

// What the host cgroup allows a sandbox whose own limit is `sandbox`: the
// sentry keeps its sandbox under that limit itself (its OOM killer picks a
// process inside); the host's limit, above it, is for the sentry's own
// memory and only ever a backstop.
int64_t HostMemoryLimit(int64_t sandbox) { return sandbox + sandbox / 16 + (int64_t{64} << 20); }

}  // namespace

ContainerCgroup::ContainerCgroup(const std::string& name) {
  std::string rel = name;
  // systemd's "slice:prefix:name": husk manages cgroupfs itself.
  std::vector<std::string> parts = absl::StrSplit(name, ':');
  if (parts.size() == 3) rel = absl::StrCat(parts[1], "-", parts[2]);
  std::string clean;
  for (absl::string_view p : absl::StrSplit(rel, '/', absl::SkipEmpty())) {
    if (p == "." || p == "..") continue;
    absl::StrAppend(&clean, "/", p);
  }
  relative_ = clean.empty() ? "/husk" : clean;
  // Where the caller is now: a monitor that joins the container's cgroups
  // still finds them (and its way back, Leave) from here.
  own_[""] = OwnPath("");
  for (const char* c : kControllers) own_[c] = OwnPath(c);
}

std::string ContainerCgroup::Dir(const char* controller) const {
  if (Unified()) return absl::StrCat(kRoot, own_.at(""), relative_);
  return absl::StrCat(kRoot, "/", controller, own_.at(controller), relative_);
}

void ContainerCgroup::Leave(pid_t pid) const {
  if (Unified()) return;
  for (const char* c : kControllers) {
    if (access(absl::StrCat(kRoot, "/", c).c_str(), F_OK) != 0) continue;
    (void)WriteValue(absl::StrCat(kRoot, "/", c, own_.at(c), "/cgroup.procs"), std::to_string(pid));
  }
}

absl::Status ContainerCgroup::Create(const CgroupLimits& limits) {
  if (Unified()) {
    const std::string dir = Dir("");
    if (!MkdirAll(dir, 0755)) return absl::InternalError(absl::StrCat(dir, ": ", strerror(errno)));
    if (limits.memory) {
      if (auto s = WriteValue(dir + "/memory.max", std::to_string(HostMemoryLimit(*limits.memory)));
          !s.ok()) {
        return s;
      }
    }
    if (limits.pids) {
      if (auto s = WriteValue(dir + "/pids.max", std::to_string(*limits.pids)); !s.ok()) return s;
    }
    if (limits.cpu_quota) {
      if (auto s = WriteValue(dir + "/cpu.max", absl::StrCat(*limits.cpu_quota, " ",
                                                             limits.cpu_period.value_or(100000)));
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  for (const char* c : kControllers) {
    // A hierarchy the host does not have is left out, unless a limit needs it.
    if (access(absl::StrCat(kRoot, "/", c).c_str(), F_OK) != 0) continue;
    const std::string dir = Dir(c);
    if (!MkdirAll(dir, 0755)) return absl::InternalError(absl::StrCat(dir, ": ", strerror(errno)));
  }
  if (limits.memory) {
    if (auto s = WriteValue(Dir("memory") + "/memory.limit_in_bytes",
                            std::to_string(HostMemoryLimit(*limits.memory)));
        !s.ok()) {
      return s;
    }
  }
  if (limits.pids) {
    if (auto s = WriteValue(Dir("pids") + "/pids.max", std::to_string(*limits.pids)); !s.ok()) {
      return s;
    }
  }
  if (limits.cpu_period) {
    if (auto s = WriteValue(Dir("cpu") + "/cpu.cfs_period_us", std::to_string(*limits.cpu_period));
        !s.ok()) {
      return s;
    }
  }
  if (limits.cpu_quota) {
    if (auto s = WriteValue(Dir("cpu") + "/cpu.cfs_quota_us", std::to_string(*limits.cpu_quota));
        !s.ok()) {
      return s;
    }
  }
  if (limits.cpu_shares) {
    if (auto s = WriteValue(Dir("cpu") + "/cpu.shares", std::to_string(*limits.cpu_shares));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ContainerCgroup::Add(pid_t pid, bool freezer) const {
  if (Unified()) {
    if (!freezer) return absl::OkStatus();  // one tree: in it is frozen with it
    return WriteValue(Dir("") + "/cgroup.procs", std::to_string(pid));
  }
  for (const char* c : kControllers) {
    if (!freezer && strcmp(c, "freezer") == 0) continue;
    if (access(absl::StrCat(kRoot, "/", c).c_str(), F_OK) != 0) continue;
    if (auto s = WriteValue(Dir(c) + "/cgroup.procs", std::to_string(pid)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ContainerCgroup::Freeze(bool frozen) const {
  if (Unified()) return WriteValue(Dir("") + "/cgroup.freeze", frozen ? "1" : "0");
  const std::string state = Dir("freezer") + "/freezer.state";
  if (auto s = WriteValue(state, frozen ? "FROZEN" : "THAWED"); !s.ok()) return s;
  if (!frozen) return absl::OkStatus();
  // FREEZING until every task has stopped (asked again, as runc does: a
  // task in the middle of a fork can miss the first request). One that
  // will not freeze in 10 s is thawed again, never left half frozen.
  for (int i = 0; i < 1000; i++) {
    if (ReadValue(state) == "FROZEN") return absl::OkStatus();
    usleep(10000);
    if (i % 10 == 9) (void)WriteValue(state, "FROZEN");
  }
  (void)WriteValue(state, "THAWED");
  return absl::DeadlineExceededError("the container's tasks did not freeze in 10 s");
}

bool ContainerCgroup::Frozen() const {
  if (relative_.empty()) return false;
  if (Unified()) return ReadValue(Dir("") + "/cgroup.events").find("frozen 1") != std::string::npos;
  return ReadValue(Dir("freezer") + "/freezer.state") == "FROZEN";
}

ContainerCgroup::Stats ContainerCgroup::Read() const {
  Stats st;
  auto number = [](const std::string& text) {
    uint64_t n = 0;
    return absl::SimpleAtoi(text, &n) ? n : 0;
  };
  if (relative_.empty()) return st;
  if (Unified()) {
    const std::string dir = Dir("");
    st.memory_usage = number(ReadValue(dir + "/memory.current"));
    st.memory_limit = number(ReadValue(dir + "/memory.max"));
    st.pids_current = number(ReadValue(dir + "/pids.current"));
    st.pids_limit = number(ReadValue(dir + "/pids.max"));
    std::string cpu = ReadValue(dir + "/cpu.stat");
    if (size_t at = cpu.find("usage_usec "); at != std::string::npos) {
      st.cpu_total_ns = number(cpu.substr(at + 11, cpu.find('\n', at) - at - 11)) * 1000;
    }
    return st;
  }
  st.memory_usage = number(ReadValue(Dir("memory") + "/memory.usage_in_bytes"));
  st.memory_limit = number(ReadValue(Dir("memory") + "/memory.limit_in_bytes"));
  st.pids_current = number(ReadValue(Dir("pids") + "/pids.current"));
  st.pids_limit = number(ReadValue(Dir("pids") + "/pids.max"));
  st.cpu_total_ns = number(ReadValue(Dir("cpuacct") + "/cpuacct.usage"));
  return st;
}

void ContainerCgroup::Remove() const {
  if (relative_.empty()) return;
  std::vector<std::string> dirs;
  if (Unified()) {
    dirs.push_back(Dir(""));
  } else {
    for (const char* c : kControllers) dirs.push_back(Dir(c));
  }
  const int depth = static_cast<int>(std::count(relative_.begin(), relative_.end(), '/'));
  for (std::string dir : dirs) {
    // Processes that were just killed leave their cgroup as they exit.
    for (int i = 0; i < 200 && rmdir(dir.c_str()) != 0 && errno == EBUSY; i++) usleep(5000);
    // Then the parents made for it ("husk" of "husk/ID"), while empty.
    for (int up = 1; up < depth; up++) {
      dir.resize(dir.rfind('/'));
      if (rmdir(dir.c_str()) != 0) break;
    }
  }
}

}  // namespace husk::cli
