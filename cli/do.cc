// `husk do`: runs a command in a fresh sandbox over the host's root (or the
// --rootfs directory), seen read-only through the gofer, with a writable
// layer in sandbox memory; each --volume is a host directory served by a
// gofer of its own and mounted at its sandbox path.
//
//   husk do (this process)  -- waits, forwards signals, returns the status
//    ├── husk gofer         -- own mount/net/ipc/uts namespaces, chroot, seccomp
//    └── husk boot          -- the sentry: new user, mount, pid, ipc, uts and
//                              net namespaces; pivots to an empty root
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
#include <cctype>
#include <cstdint>
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
#include "cli/commands.h"

namespace husk::cli {
namespace {

pid_t g_sentry = -1;

void Forward(int sig) {
  if (g_sentry > 0) kill(g_sentry, SIGKILL);
  (void)sig;
}

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
pid_t StartGofer(int sock, const std::string& root, bool writable = false) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
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

// A host directory given to the sandbox (--volume HOST:SANDBOX[:ro|:rw]).
struct Volume {
  std::string host;     // absolute, symlinks resolved
  std::string sandbox;  // absolute, normalised
  bool writable = true;
  int sock = -1;        // the sentry's end of its gofer's socket
  pid_t gofer = -1;
};

// Resolves a host directory given on the command line; says why it cannot.
bool HostDirectory(const std::string& flag, const std::string& path, std::string* out) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) {
    fprintf(stderr, "husk do: %s %s: %s\n", flag.c_str(), path.c_str(), strerror(errno));
    return false;
  }
  *out = real;
  free(real);
  struct stat st {};
  if (stat(out->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "husk do: %s %s: not a directory\n", flag.c_str(), path.c_str());
    return false;
  }
  return true;
}

// Normalises an absolute sandbox path ("//a/./b/" -> "/a/b"); ".." is refused.
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

// Parses HOST:SANDBOX[:ro|:rw].
bool ParseVolume(const std::string& spec, Volume* v) {
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  if (parts.size() < 2 || parts.size() > 3) {
    fprintf(stderr, "husk do: --volume wants HOST:SANDBOX[:ro|:rw], got '%s'\n", spec.c_str());
    return false;
  }
  if (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw") {
    fprintf(stderr, "husk do: --volume %s: the mode is ro or rw, not '%s'\n", spec.c_str(),
            parts[2].c_str());
    return false;
  }
  // As docker -v: read-write unless :ro.
  v->writable = parts.size() == 2 || parts[2] == "rw";
  if (!HostDirectory("--volume", parts[0], &v->host)) return false;
  if (!SandboxPath(parts[1], &v->sandbox) || v->sandbox == "/") {
    fprintf(stderr,
            "husk do: --volume %s: the sandbox path must be absolute, without '..', and not "
            "'/'\n",
            spec.c_str());
    return false;
  }
  return true;
}

// Parses a size with an optional K, M, G or T suffix (powers of 1024).
bool ParseSize(const std::string& text, uint64_t* out) {
  size_t end = 0;
  while (end < text.size() && isdigit(static_cast<unsigned char>(text[end]))) end++;
  if (end == 0 || end + 1 < text.size()) return false;
  uint64_t n;
  if (!absl::SimpleAtoi(text.substr(0, end), &n)) return false;
  int shift = 0;
  if (end < text.size()) {
    switch (toupper(static_cast<unsigned char>(text[end]))) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      default:
        return false;
    }
  }
  if (n == 0 || n > (UINT64_MAX >> shift)) return false;
  *out = n << shift;
  return true;
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

}  // namespace

int DoMain(int argc, char** argv) {
  bool strace = false;
  std::string platform = "ptrace";
  uint64_t memory = 0;
  bool clear_env = false;
  std::vector<std::string> env;
  std::string rootfs = "/";
  std::string cwd_flag;
  std::vector<Volume> volumes;
  int i = 0;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") {
      i++;
      break;
    }
    // Flags with a value take it as --flag=VALUE or as the next argument.
    std::string value;
    auto takes = [&](const std::string& flag) {
      if (a.rfind(flag + "=", 0) == 0) {
        value = a.substr(flag.size() + 1);
        return true;
      }
      if (a == flag && i + 1 < argc) {
        value = argv[++i];
        return true;
      }
      return false;
    };
    if (a == "--strace") {
      strace = true;
    } else if (takes("--platform")) {
      platform = value;
    } else if (takes("--memory")) {
      if (!ParseSize(value, &memory)) {
        fprintf(stderr, "husk do: --memory wants a size like 512M or 2G, got '%s'\n",
                value.c_str());
        return 125;
      }
    } else if (takes("--env")) {
      env.push_back(value);
    } else if (a == "--clear-env") {
      clear_env = true;
    } else if (takes("--rootfs")) {
      if (!HostDirectory("--rootfs", value, &rootfs)) return 125;
    } else if (takes("--volume")) {
      Volume v;
      if (!ParseVolume(value, &v)) return 125;
      volumes.push_back(std::move(v));
    } else if (takes("--cwd")) {
      if (!SandboxPath(value, &cwd_flag)) {
        fprintf(stderr, "husk do: --cwd wants an absolute path without '..', got '%s'\n",
                value.c_str());
        return 125;
      }
    } else if (a.rfind("--", 0) == 0) {
      fprintf(stderr, "husk do: unknown flag %s\n", a.c_str());
      return 125;
    } else {
      break;
    }
  }
  if (i >= argc) {
    fprintf(stderr,
            "usage: husk do [--platform=ptrace] [--strace] [--memory=SIZE] [--clear-env]\n"
            "               [--env=NAME=VALUE | --env=NAME]... [--rootfs=DIR] [--cwd=DIR]\n"
            "               [--volume=HOST:SANDBOX[:ro|:rw]]... [--] CMD [ARGS...]\n");
    return 125;
  }
  if (platform == "kvm") {
    fprintf(stderr, access("/dev/kvm", R_OK | W_OK) == 0
                        ? "husk do: the kvm platform is not built yet; use --platform=ptrace\n"
                        : "husk do: --platform=kvm needs /dev/kvm, which is not available here\n");
    return 125;
  }
  if (platform != "ptrace") {
    fprintf(stderr, "husk do: unknown platform '%s' (available: ptrace)\n", platform.c_str());
    return 125;
  }

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    fprintf(stderr, "husk do: socketpair: %s\n", strerror(errno));
    return 125;
  }
  pid_t gofer = StartGofer(sv[1], rootfs);
  close(sv[1]);
  if (gofer < 0) {
    fprintf(stderr, "husk do: fork gofer: %s\n", strerror(errno));
    return 125;
  }
  // One gofer per volume, confined to its host directory.
  for (Volume& v : volumes) {
    int vs[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, vs) != 0) {
      fprintf(stderr, "husk do: socketpair: %s\n", strerror(errno));
      return 125;
    }
    v.gofer = StartGofer(vs[1], v.host, v.writable);
    close(vs[1]);
    v.sock = vs[0];
    if (v.gofer < 0) {
      fprintf(stderr, "husk do: fork gofer: %s\n", strerror(errno));
      return 125;
    }
  }

  int sync[2];
  if (pipe2(sync, O_CLOEXEC) != 0) return 125;
  // The working directory: --cwd, else husk's own over the host's root,
  // else the root of another one.
  std::string cwd = cwd_flag;
  if (cwd.empty()) {
    char here[4096];
    cwd = rootfs == "/" && getcwd(here, sizeof(here)) != nullptr ? here : "/";
  }
  std::vector<std::string> args = {"husk", "boot", "--gofer-fd=3", "--cwd=" + cwd,
                                   "--platform=" + platform};
  if (rootfs != "/") args.emplace_back("--rootfs");
  // The volumes' sockets are fds 4, 5, ... in the sentry.
  for (size_t n = 0; n < volumes.size(); n++) {
    args.push_back(absl::StrFormat("--volume=%d:%s%s", 4 + n, volumes[n].sandbox,
                                   volumes[n].writable ? ":rw" : ""));
  }
  if (strace) args.push_back("--strace");
  args.push_back(absl::StrFormat("--memory=%d", memory != 0 ? memory : DefaultMemoryLimit()));
  args.push_back("--");
  for (; i < argc; i++) args.emplace_back(argv[i]);

  constexpr unsigned long kFlags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
                                   CLONE_NEWUTS | CLONE_NEWNET | SIGCHLD;
  long pid = syscall(SYS_clone, kFlags, 0, 0, 0, 0);
  if (pid < 0) {
    fprintf(stderr, "husk do: cannot create the sandbox namespaces: %s\n", strerror(errno));
    return 125;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(sync[1]);
    char c;
    if (read(sync[0], &c, 1) != 1) _exit(125);  // the parent failed to map our ids
    // Become the namespace's root (the mapped host user), dropping the host's
    // supplementary groups where the map allows it; exec then grants the
    // capabilities of that namespace only.
    setgroups(0, nullptr);
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) {
      fprintf(stderr, "husk do: cannot become root in the sandbox's user namespace: %s\n",
              strerror(errno));
      _exit(125);
    }
    // Out of the way first, then in place: fd 3 the root's gofer, 4... the
    // volumes'.
    std::vector<int> socks = {sv[0]};
    for (const Volume& v : volumes) socks.push_back(v.sock);
    for (int& fd : socks) {
      fd = fcntl(fd, F_DUPFD_CLOEXEC, 1024);
      if (fd < 0) _exit(125);
    }
    for (size_t n = 0; n < socks.size(); n++) {
      if (!MoveFd(socks[n], 3 + static_cast<int>(n))) _exit(125);
    }
    // (The copies above 1024 are close-on-exec.)
    for (int fd = 3 + static_cast<int>(socks.size()); fd < 1024; fd++) close(fd);
    // The sandbox's environment is husk's own, or none with --clear-env;
    // then each --env NAME=VALUE sets one, and --env NAME copies husk's.
    std::vector<std::pair<std::string, std::string>> set;
    for (const std::string& e : env) {
      size_t eq = e.find('=');
      if (eq != std::string::npos) {
        set.emplace_back(e.substr(0, eq), e.substr(eq + 1));
      } else if (const char* v = getenv(e.c_str())) {
        set.emplace_back(e, v);
      }
    }
    if (clear_env) clearenv();
    for (const auto& [name, value] : set) setenv(name.c_str(), value.c_str(), 1);
    ExecSelf(args);
  }
  g_sentry = static_cast<pid_t>(pid);
  close(sync[0]);
  close(sv[0]);
  for (Volume& v : volumes) close(v.sock);
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
    fprintf(stderr, "husk do: cannot map the sandbox's user ids: %s\n", strerror(errno));
    kill(g_sentry, SIGKILL);
  } else if (write(sync[1], "x", 1) != 1) {
    kill(g_sentry, SIGKILL);
  }
  close(sync[1]);

  struct sigaction sa{};
  sa.sa_handler = Forward;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  int status = 0;
  while (waitpid(g_sentry, &status, 0) < 0 && errno == EINTR) {
  }
  int gstatus;
  // The gofer exits when the sentry's end of its socket closes.
  while (waitpid(gofer, &gstatus, 0) < 0 && errno == EINTR) {
  }
  for (const Volume& v : volumes) {
    while (waitpid(v.gofer, &gstatus, 0) < 0 && errno == EINTR) {
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "husk do: the sentry was killed by signal %d\n", WTERMSIG(status));
    return 128 + WTERMSIG(status);
  }
  return 125;
}

}  // namespace husk::cli
