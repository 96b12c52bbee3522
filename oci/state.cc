#include "oci/state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace husk::oci {
namespace {

using json = nlohmann::json;

json ToJson(const State& s) {
  json j = {{"ociVersion", s.oci_version},
            {"id", s.id},
            {"status", s.status},
            {"pid", s.status == "stopped" ? 0 : s.pid},
            {"bundle", s.bundle},
            {"rootfs", s.rootfs},
            {"created", absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(s.created_ns),
                                         absl::UTCTimeZone())},
            {"owner", ""}};
  j["annotations"] = json::object();
  for (const auto& [k, v] : s.annotations) j["annotations"][k] = v;
  return j;
}

// Holds DIR/state.lock (flock) while state.json is written (exclusive) or
// read (shared), so that separate invocations never see a half-made change.
class StateLock {
 public:
  StateLock(const std::string& dir, bool exclusive)
      : fd_(open((dir + "/state.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ >= 0) {
      while (flock(fd_, exclusive ? LOCK_EX : LOCK_SH) != 0 && errno == EINTR) {
      }
    }
  }
  ~StateLock() {
    if (fd_ >= 0) close(fd_);
  }
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;

 private:
  int fd_;
};

}  // namespace

std::string StateJson(const State& s, bool pretty) {
  return pretty ? ToJson(s).dump(2) : ToJson(s).dump();
}

std::string StatesJson(const std::vector<State>& states) {
  json a = json::array();
  for (const State& s : states) a.push_back(ToJson(s));
  return a.dump();
}

std::string JsonLogLine(const std::string& level, const std::string& msg) {
  json j = {{"level", level},
            {"msg", msg},
            {"time", absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone())}};
  return j.dump() + "\n";
}

absl::Status WriteState(const std::string& dir, const State& s) {
  json j = ToJson(s);
  j["pid"] = s.pid;
  j["husk"] = {{"pidStart", s.pid_start}, {"createdNs", s.created_ns}, {"cgroup", s.cgroup}};
  const std::string text = j.dump(1) + "\n";
  StateLock lock(dir, /*exclusive=*/true);
  const std::string tmp = dir + "/.state.json.tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("write ", tmp, ": ", strerror(errno)));
  bool ok =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), (dir + "/state.json").c_str()) != 0) {
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("write ", dir, "/state.json: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<State> ReadState(const std::string& dir) {
  if (access((dir + "/state.json").c_str(), F_OK) != 0) return absl::NotFoundError("no state");
  StateLock lock(dir, /*exclusive=*/false);
  std::ifstream in(dir + "/state.json", std::ios::binary);
  if (!in) return absl::NotFoundError("no state");
  std::stringstream buf;
  buf << in.rdbuf();
  json j = json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(dir, "/state.json is corrupt"));
  }
  State s;
  try {
    s.oci_version = j.at("ociVersion").get<std::string>();
    s.id = j.at("id").get<std::string>();
    s.status = j.at("status").get<std::string>();
    s.pid = j.at("pid").get<pid_t>();
    s.bundle = j.at("bundle").get<std::string>();
    s.rootfs = j.value("rootfs", "");
    s.pid_start = j.at("husk").at("pidStart").get<uint64_t>();
    s.created_ns = j.at("husk").at("createdNs").get<int64_t>();
    s.cgroup = j.at("husk").value("cgroup", "");
    for (const auto& [k, v] : j.at("annotations").items()) s.annotations[k] = v.get<std::string>();
  } catch (const json::exception&) {
    return absl::DataLossError(absl::StrCat(dir, "/state.json is corrupt"));
  }
  return s;
}

}  // namespace husk::oci
