#include "cli/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace husk::cli {
namespace {

bool WriteFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// Puts fd at `to` without close-on-exec (dup2 onto itself would keep the flag).
bool MoveFd(int fd, int to) {
  if (fd == to) return fcntl(fd, F_SETFD, 0) == 0;
  return dup2(fd, to) == to;
}

[[noreturn]] void ExecSelf(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv("/proc/self/exe", argv.data());
  fprintf(stderr, "husk: exec of itself failed: %s\n", strerror(errno));
  _exit(125);
}

// Starts a gofer serving `root` on sock, read-only unless `writable`.
pid_t StartGofer(int sock, const std::string& root, bool writable, bool die_with_parent) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  if (die_with_parent) prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Nothing but the socket survives into the gofer (and stderr for errors).
  int null = open("/dev/null", O_RDWR);
  dup2(null, 0);
  dup2(null, 1);
  if (!MoveFd(sock, 3)) _exit(125);
  for (int fd = 4; fd < 1024; fd++) close(fd);
  if (unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0) {
    fprintf(stderr, "husk: gofer namespaces: %s\n", strerror(errno));
    _exit(125);
  }
  std::vector<std::string> args = {"husk", "gofer", "--sock-fd=3", "--root=" + root};
  if (writable) args.emplace_back("--rw");
  ExecSelf(args);
}

// The tightest memory limit of a cgroup and of the ancestors visible under
// root (memory.max in v2, memory.limit_in_bytes in v1); UINT64_MAX if none.
uint64_t CgroupMemoryLimit(const std::string& root, std::string path, const char* file) {
  uint64_t limit = UINT64_MAX;
  while (!path.empty()) {
    std::ifstream max(root + path + "/" + file);
    std::string value;
    uint64_t n;
    if (max >> value && absl::SimpleAtoi(value, &n)) limit = std::min(limit, n);
    if (path == "/") break;
    size_t slash = path.rfind('/');
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
  return limit;
}

}  // namespace

bool HostDirectory(const std::string& who, const std::string& path, std::string* out) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) {
    fprintf(stderr, "%s %s: %s\n", who.c_str(), path.c_str(), strerror(errno));
    return false;
  }
  *out = real;
  free(real);
  struct stat st {};
  if (stat(out->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "%s %s: not a directory\n", who.c_str(), path.c_str());
    return false;
  }
  return true;
}

bool SandboxPath(const std::string& path, std::string* out) {
  if (path.empty() || path[0] != '/') return false;
  std::string norm;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") return false;
    absl::StrAppend(&norm, "/", part);
  }
  *out = norm.empty() ? "/" : norm;
  return true;
}

// The default memory limit of a sandbox: the memory cgroup limit husk runs
// under (v2 or v1; the tightest of its cgroup and the ancestors it can see),
// less a sixteenth for the sentry's own memory, so that the sandbox runs out
// before the host's cgroup kills the sentry; else the host's RAM.
uint64_t DefaultMemoryLimit() {
  struct sysinfo si {};
  uint64_t limit = sysinfo(&si) == 0 ? uint64_t{si.totalram} * si.mem_unit : uint64_t{1} << 30;
  std::ifstream cg("/proc/self/cgroup");
  std::string line;
  uint64_t cgroup = UINT64_MAX;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) == 0) {
      cgroup = std::min(cgroup, CgroupMemoryLimit("/sys/fs/cgroup", line.substr(3), "memory.max"));
      continue;
    }
    // v1: "N:memory:/path" (the controller may share a line with others).
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    for (absl::string_view c : absl::StrSplit(line.substr(a + 1, b - a - 1), ',')) {
      if (c == "memory") {
        cgroup = std::min(cgroup, CgroupMemoryLimit("/sys/fs/cgroup/memory", line.substr(b + 1),
                                                    "memory.limit_in_bytes"));
      }
    }
  }
  if (cgroup < limit) limit = cgroup - cgroup / 16;
  return limit;
}

bool MkdirAll(const std::string& path, mode_t mode) {
  std::string sofar;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&sofar, "/", part);
    if (mkdir(sofar.c_str(), mode) != 0 && errno != EEXIST) return false;
  }
  return true;
}

bool Launch(const char* who, SandboxConfig& cfg, Launched* out) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    fprintf(stderr, "%s: socketpair: %s\n", who, strerror(errno));
    return false;
  }
  out->gofer = StartGofer(sv[1], cfg.rootfs, /*writable=*/false, cfg.die_with_parent);
  close(sv[1]);
  if (out->gofer > 0 && cfg.on_child) cfg.on_child(out->gofer);
  if (out->gofer < 0) {
    fprintf(stderr, "%s: fork gofer: %s\n", who, strerror(errno));
    close(sv[0]);
    return false;
  }
  auto fail = [&](const std::string& what) {
    fprintf(stderr, "%s: %s: %s\n", who, what.c_str(), strerror(errno));
    close(sv[0]);
    // Each gofer exits when the sentry's end of its socket closes.
    for (Volume& v : cfg.volumes) {
      if (v.sock >= 0) close(v.sock);
      v.sock = -1;
      if (v.gofer > 0) waitpid(v.gofer, nullptr, 0);
    }
    waitpid(out->gofer, nullptr, 0);
    return false;
  };
  // One gofer per volume, confined to its host directory.
  for (Volume& v : cfg.volumes) {
    int vs[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, vs) != 0) return fail("socketpair");
    v.sock = vs[0];
    v.gofer = StartGofer(vs[1], v.host, v.writable, cfg.die_with_parent);
    close(vs[1]);
    if (v.gofer > 0 && cfg.on_child) cfg.on_child(v.gofer);
    if (v.gofer < 0) return fail("fork gofer");
  }

  int sync[2];
  if (pipe2(sync, O_CLOEXEC) != 0) return fail("pipe");
  std::vector<std::string> args = {"husk", "boot", "--gofer-fd=3", "--cwd=" + cfg.cwd,
                                   "--platform=" + cfg.platform};
  if (cfg.rootfs != "/") args.emplace_back("--rootfs");
  // The volumes' sockets are fds 4, 5, ... in the sentry, then the start
  // and control descriptors.
  int next = 4;
  for (const Volume& v : cfg.volumes) {
    args.push_back(absl::StrFormat("--volume=%d:%s%s", next++, v.sandbox, v.writable ? ":rw" : ""));
  }
  std::vector<int> fds = {sv[0]};
  for (const Volume& v : cfg.volumes) fds.push_back(v.sock);
  for (const std::string& t : cfg.tmpfs) args.push_back("--tmpfs=" + t);
  for (const std::string& f : cfg.boot_flags) args.push_back(f);
  for (const auto& [fd, path] : cfg.files) {
    args.push_back(absl::StrFormat("--file=%d:%s", next++, path));
    fds.push_back(fd);
  }
  if (cfg.start_fd >= 0) {
    args.push_back(absl::StrFormat("--start-fd=%d", next++));
    fds.push_back(cfg.start_fd);
  }
  if (cfg.control_fd >= 0) {
    args.push_back(absl::StrFormat("--control-fd=%d", next++));
    fds.push_back(cfg.control_fd);
  }
  if (cfg.console_fd >= 0) {
    args.push_back(absl::StrFormat("--console-fd=%d", next++));
    fds.push_back(cfg.console_fd);
  }
  if (cfg.host_network) args.emplace_back("--network-host");
  for (net::NicSpec n : cfg.nics) {
    if (n.fd >= 0) {
      fds.push_back(n.fd);
      n.fd = next++;
    }
    args.push_back("--nic=" + net::FormatNicSpec(n));
  }
  for (const net::RouteSpec& r : cfg.routes) args.push_back("--route=" + net::FormatRouteSpec(r));
  if (!cfg.hostname.empty()) args.push_back("--hostname=" + cfg.hostname);
  if (cfg.strace) args.push_back("--strace");
  args.push_back(
      absl::StrFormat("--memory=%d", cfg.memory != 0 ? cfg.memory : DefaultMemoryLimit()));
  args.push_back("--");
  for (const std::string& a : cfg.argv) args.push_back(a);

  // With --network=host the sentry keeps the caller's network namespace:
  // its host sockets are there.
  const unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
                              CLONE_NEWUTS | (cfg.host_network ? 0 : CLONE_NEWNET) | SIGCHLD;
  long pid = syscall(SYS_clone, flags, 0, 0, 0, 0);
  if (pid < 0) {
    close(sync[0]);
    close(sync[1]);
    return fail("cannot create the sandbox namespaces");
  }
  if (pid == 0) {
    if (cfg.die_with_parent) prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(sync[1]);
    char c;
    if (read(sync[0], &c, 1) != 1) _exit(125);  // the parent failed to map our ids
    // Become the namespace's root (the mapped host user), dropping the host's
    // supplementary groups where the map allows it; exec then grants the
    // capabilities of that namespace only.
    setgroups(0, nullptr);
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) {
      fprintf(stderr, "%s: cannot become root in the sandbox's user namespace: %s\n", who,
              strerror(errno));
      _exit(125);
    }
    // Out of the way first, then in place from fd 3.
    for (int& fd : fds) {
      fd = fcntl(fd, F_DUPFD_CLOEXEC, 1024);
      if (fd < 0) _exit(125);
    }
    for (size_t n = 0; n < fds.size(); n++) {
      if (!MoveFd(fds[n], 3 + static_cast<int>(n))) _exit(125);
    }
    // (The copies above 1024 are close-on-exec.)
    for (int fd = 3 + static_cast<int>(fds.size()); fd < 1024; fd++) close(fd);
    clearenv();
    for (const std::string& e : cfg.env) {
      size_t eq = e.find('=');
      if (eq != std::string::npos) setenv(e.substr(0, eq).c_str(), e.c_str() + eq + 1, 1);
    }
    ExecSelf(args);
  }
  out->sentry = static_cast<pid_t>(pid);
  // Before it runs: the stub processes it forks follow it.
  if (cfg.on_child) cfg.on_child(out->sentry);
  close(sync[0]);
  close(sv[0]);
  for (Volume& v : cfg.volumes) {
    close(v.sock);
    v.sock = -1;
  }
  // The sentry's root maps to an unprivileged host user when we are root,
  // otherwise to ourselves.
  uid_t uid = getuid();
  gid_t gid = getgid();
  std::string base = absl::StrFormat("/proc/%d/", pid);
  std::string uid_to = uid == 0 ? "65534" : std::to_string(uid);
  std::string gid_to = uid == 0 ? "65534" : std::to_string(gid);
  // Unprivileged callers must give up setgroups before mapping gids.
  bool ok = (uid == 0 || WriteFile(base + "setgroups", "deny")) &&
            WriteFile(base + "uid_map", "0 " + uid_to + " 1\n") &&
            WriteFile(base + "gid_map", "0 " + gid_to + " 1\n");
  if (!ok) {
    fprintf(stderr, "%s: cannot map the sandbox's user ids: %s\n", who, strerror(errno));
    kill(out->sentry, SIGKILL);
  } else if (write(sync[1], "x", 1) != 1) {
    kill(out->sentry, SIGKILL);
  }
  close(sync[1]);
  return true;
}

int WaitSandbox(const char* who, const SandboxConfig& cfg, const Launched& l) {
  int status = 0;
  while (waitpid(l.sentry, &status, 0) < 0 && errno == EINTR) {
  }
  int gstatus;
  // The gofer exits when the sentry's end of its socket closes.
  while (waitpid(l.gofer, &gstatus, 0) < 0 && errno == EINTR) {
  }
  for (const Volume& v : cfg.volumes) {
    while (waitpid(v.gofer, &gstatus, 0) < 0 && errno == EINTR) {
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "%s: the sentry was killed by signal %d\n", who, WTERMSIG(status));
    return 128 + WTERMSIG(status);
  }
  return 125;
}

}  // namespace husk::cli
