// husk_fence: runs one command fenced like a container, so that a misbehaving test
// (kill(-1), reboot(2), sethostname(2), a fork or memory storm) touches nothing outside.
//
//   husk_fence [--mem BYTES] [--pids N] [--time SECONDS] [--host-root] [--] CMD ARGS...
//
// --host-root leaves out the user namespace, for tests of container engines (containerd,
// runc) that need the host's root to manage cgroups and mounts: the command still has its own
// PID, mount, UTS, IPC and network namespaces, cgroups and time limit, so kill(-1) and
// reboot(2) reach only the fenced tree; mounts stay inside its mount namespace.
//
// The command gets fresh user, PID, mount, UTS, IPC and network namespaces (with the loopback
// interface up, as on any machine, and nothing else), a fresh /proc for its PID namespace,
// best-effort memory and process-count cgroups, RLIMIT_CORE 0 and (for non-root callers, whose
// tasks are not exempt) RLIMIT_NPROC, and a wall-clock limit.
//
// Process layout: husk_fence (outside) -> fence-init (PID 1 inside, reaps zombies) -> CMD
// (PID 2). CMD therefore has ordinary signal semantics; only the init has PID-1 semantics.
// When the init exits, the kernel kills everything left in the PID namespace.
//
// Exit status: CMD's exit code, or 128+signal if CMD was killed by a signal; 124 when the time
// limit was reached; 125 when the fence itself failed (a message says why); 126/127 when CMD
// could not be executed (like env(1) and timeout(1)).
//
// This file is deliberately self-contained (libc and the standard library only): it must keep
// building while the rest of the tree is being changed, because every native test run needs it.

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kExitTimeout = 124;
constexpr int kExitFenceError = 125;
constexpr int kExitCannotExecute = 126;
constexpr int kExitNotFound = 127;

struct Options {
  uint64_t mem_bytes = uint64_t{4} << 30;
  long pids = 1024;
  long time_seconds = 300;  // 0: no limit.
  bool host_root = false;   // no user namespace: root stays the host's root
  char** argv = nullptr;    // CMD ARGS..., NULL-terminated.
};

void Message(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void Message(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  // One write(2) so that lines from the fence and the command do not interleave mid-line.
  std::string line = std::string("husk_fence: ") + buf + "\n";
  ssize_t unused = write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

void Usage() {
  fprintf(stderr,
          "usage: husk_fence [--mem BYTES] [--pids N] [--time SECONDS] [--host-root] [--] CMD "
          "ARGS...\n"
          "  --host-root     no user namespace (container engines need the host's root)\n"
          "  --mem BYTES     memory cgroup limit (suffixes K, M, G, T; default 4G)\n"
          "  --pids N        process-count cgroup limit (default 1024)\n"
          "  --time SECONDS  wall-clock limit, then everything is killed and the exit status\n"
          "                  is 124 (default 300; 0 means none)\n");
}

// Parses "123", "64M", "4G" (binary units). Returns false on garbage or overflow.
bool ParseBytes(const char* s, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || s[0] == '-') return false;
  int shift = 0;
  if (*end != '\0') {
    static constexpr char kUnits[] = "KMGT";
    const char* unit = strchr(kUnits, toupper(static_cast<unsigned char>(*end)));
    if (unit == nullptr) return false;
    shift = 10 * static_cast<int>(unit - kUnits + 1);
    ++end;
  }
  if (*end == 'i' && shift != 0) ++end;   // Accept "Gi".
  if (*end == 'B' || *end == 'b') ++end;  // Accept "GB", "GiB".
  if (*end != '\0') return false;
  if (shift != 0 && v > (UINT64_MAX >> shift)) return false;
  *out = static_cast<uint64_t>(v) << shift;
  return true;
}

bool ParseLong(const char* s, long min, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min) return false;
  *out = v;
  return true;
}

// Returns 0 on success, else the exit status to use.
int ParseOptions(int argc, char** argv, Options* opts) {
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "-h" || a == "--help") {
      Usage();
      exit(0);
    }
    if (a.rfind('-', 0) != 0) break;  // First word of CMD.
    if (a == "--host-root") {
      opts->host_root = true;
      continue;
    }
    if (i + 1 >= argc) {
      Message("option %s needs a value", a.c_str());
      return kExitFenceError;
    }
    const char* v = argv[++i];
    bool ok = false;
    if (a == "--mem") {
      ok = ParseBytes(v, &opts->mem_bytes) && opts->mem_bytes > 0;
    } else if (a == "--pids") {
      ok = ParseLong(v, 1, &opts->pids);
    } else if (a == "--time") {
      ok = ParseLong(v, 0, &opts->time_seconds);
    } else {
      Message("unknown option %s (see --help)", a.c_str());
      return kExitFenceError;
    }
    if (!ok) {
      Message("bad value for %s: '%s'", a.c_str(), v);
      return kExitFenceError;
    }
  }
  if (i >= argc) {
    Message("no command given (see --help)");
    return kExitFenceError;
  }
  opts->argv = argv + i;
  return 0;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// Writes `data` with a single write(2): /proc/PID/uid_map and cgroup files require that.
bool WriteFile(const std::string& path, const std::string& data, int* err) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return false;
  }
  ssize_t n = write(fd, data.data(), data.size());
  *err = errno;
  close(fd);
  return n == static_cast<ssize_t>(data.size());
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  for (const auto& e : v) {
    if (e == x) return true;
  }
  return false;
}

// The cgroups of one fenced run: one directory per v1 hierarchy (memory, pids), or one v2
// directory. Everything here is best effort: without cgroups the fence still has namespaces,
// rlimits and the time limit.
class Cgroups {
 public:
  void Create(const Options& opts);
  // Moves `pid` (not yet running CMD) into every directory made.
  void AddProcess(pid_t pid);
  // Kills what is left inside (by pid, read from cgroup.procs), reports OOM kills, removes the
  // directories.
  void Destroy();

 private:
  struct Dir {
    std::string path;
    std::string oom_file;  // Where oom_kill is counted.
  };
  // Returns the directory of our own cgroup for a v1 controller ("" for v2 when
  // `controller` is empty), or "" if there is no such hierarchy.
  static std::string OwnCgroupDir(const std::string& controller);
  bool MakeDir(const std::string& parent, Dir* dir);

  std::string name_;
  uint64_t mem_bytes_ = 0;
  std::vector<Dir> dirs_;
};

std::string Cgroups::OwnCgroupDir(const std::string& controller) {
  std::string cgroups, mountinfo;
  if (!ReadFile("/proc/self/cgroup", &cgroups) || !ReadFile("/proc/self/mountinfo", &mountinfo)) {
    return "";
  }
  // /proc/self/cgroup: "ID:CONTROLLERS:PATH"; v2 is "0::PATH".
  std::string path;
  bool found = false;
  for (const auto& line : Split(cgroups, '\n')) {
    size_t a = line.find(':');
    size_t b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctls = line.substr(a + 1, b - a - 1);
    bool match = controller.empty() ? (line.substr(0, a) == "0" && ctls.empty())
                                    : Contains(Split(ctls, ','), controller);
    if (match) {
      path = line.substr(b + 1);
      found = true;
      break;
    }
  }
  if (!found) return "";
  // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPEROPTS".
  for (const auto& line : Split(mountinfo, '\n')) {
    std::vector<std::string> f = Split(line, ' ');
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 5 || dash + 3 >= f.size()) continue;
    const std::string& fstype = f[dash + 1];
    bool match = controller.empty()
                     ? fstype == "cgroup2"
                     : fstype == "cgroup" && Contains(Split(f[dash + 3], ','), controller);
    if (!match) continue;
    const std::string& root = f[3];
    std::string rel = path;
    if (root != "/") {
      if (rel.rfind(root, 0) != 0) continue;
      rel = rel.substr(root.size());
    }
    std::string dir = f[4] + rel;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return dir;
  }
  return "";
}

// Removes cgroups left by a husk_fence that was SIGKILLed (it could not clean up). Only empty
// ones go (rmdir refuses others), and only when the pid in the name is gone.
void SweepStale(const std::string& parent) {
  DIR* d = opendir(parent.c_str());
  if (d == nullptr) return;
  while (struct dirent* e = readdir(d)) {
    int pid = 0;
    if (sscanf(e->d_name, "husk_fence-%d-", &pid) != 1 || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // Signal 0 only asks whether it lives.
    rmdir((parent + "/" + e->d_name).c_str());
  }
  closedir(d);
}

bool Cgroups::MakeDir(const std::string& parent, Dir* dir) {
  SweepStale(parent);
  dir->path = parent + "/" + name_;
  if (mkdir(dir->path.c_str(), 0755) != 0) return false;
  return true;
}

void Cgroups::Create(const Options& opts) {
  mem_bytes_ = opts.mem_bytes;
  uint32_t r = 0;
  if (getrandom(&r, sizeof(r), 0) != sizeof(r)) r = static_cast<uint32_t>(time(nullptr));
  char name[64];
  snprintf(name, sizeof(name), "husk_fence-%d-%08x", getpid(), r);
  name_ = name;
  const std::string mem = std::to_string(opts.mem_bytes);
  const std::string pids = std::to_string(opts.pids);
  int err = 0;
  bool have_mem = false, have_pids = false;

  // cgroup v1, as these machines mount it: one hierarchy per controller.
  if (std::string parent = OwnCgroupDir("memory"); !parent.empty()) {
    Dir d;
    if (MakeDir(parent, &d)) {
      d.oom_file = d.path + "/memory.oom_control";
      dirs_.push_back(d);
      // The memsw limit must not be below the memory limit, so memory goes first.
      have_mem = WriteFile(d.path + "/memory.limit_in_bytes", mem, &err);
      if (!have_mem) {
        Message("cannot set %s/memory.limit_in_bytes: %s", d.path.c_str(), strerror(err));
      }
      // Memory plus swap; the file is absent without swap accounting.
      WriteFile(d.path + "/memory.memsw.limit_in_bytes", mem, &err);
    }
  }
  if (std::string parent = OwnCgroupDir("pids"); !parent.empty()) {
    Dir d;
    if (MakeDir(parent, &d)) {
      dirs_.push_back(d);
      have_pids = WriteFile(d.path + "/pids.max", pids, &err);
      if (!have_pids) Message("cannot set %s/pids.max: %s", d.path.c_str(), strerror(err));
    }
  }
  // cgroup v2 for whatever v1 did not give us.
  if (!have_mem || !have_pids) {
    std::string parent = OwnCgroupDir("");
    Dir d;
    if (!parent.empty() && access((parent + "/cgroup.controllers").c_str(), F_OK) == 0) {
      // Enabling controllers for children can fail (the no-internal-process rule); then the
      // child simply has no limit files and we say so below.
      std::string want = std::string(have_mem ? "" : "+memory ") + (have_pids ? "" : "+pids");
      WriteFile(parent + "/cgroup.subtree_control", want, &err);
      if (MakeDir(parent, &d)) {
        d.oom_file = d.path + "/memory.events";
        dirs_.push_back(d);
        if (!have_mem) have_mem = WriteFile(d.path + "/memory.max", mem, &err);
        if (!have_pids) have_pids = WriteFile(d.path + "/pids.max", pids, &err);
      }
    }
  }
  if (!have_mem && !have_pids) {
    Message(
        "no cgroup limits could be set here (not root?); fencing with namespaces, "
        "rlimits and the time limit only");
  } else if (!have_mem || !have_pids) {
    Message("no %s cgroup could be made here; that limit is not enforced",
            have_mem ? "pids" : "memory");
  }
}

void Cgroups::AddProcess(pid_t pid) {
  const std::string p = std::to_string(pid);
  for (const auto& d : dirs_) {
    int err = 0;
    if (!WriteFile(d.path + "/cgroup.procs", p, &err)) {
      Message("cannot move the command into %s: %s; that limit is not enforced", d.path.c_str(),
              strerror(err));
    }
  }
}

void Cgroups::Destroy() {
  for (const auto& d : dirs_) {
    std::string text;
    if (!d.oom_file.empty() && ReadFile(d.oom_file, &text)) {
      std::istringstream in(text);
      std::string key;
      long value = 0;
      while (in >> key >> value) {
        if (key == "oom_kill" && value > 0) {
          Message("the memory limit (%llu bytes) was reached: %ld process(es) killed",
                  static_cast<unsigned long long>(mem_bytes_), value);
        }
      }
    }
    // Normally empty already: the PID namespace dies with its init. Kill stragglers by pid,
    // through a pidfd taken while the pid is still listed here, so a recycled pid that now
    // belongs to a process outside this cgroup is never signalled.
    const std::string procs = d.path + "/cgroup.procs";
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (!ReadFile(procs, &text) || text.empty()) break;
      for (const auto& line : Split(text, '\n')) {
        long pid = 0;
        if (!ParseLong(line.c_str(), 1, &pid)) continue;
        int pidfd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
        if (pidfd < 0) continue;
        std::string again;
        if (ReadFile(procs, &again) && Contains(Split(again, '\n'), line)) {
          syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
        }
        close(pidfd);
      }
      usleep(20 * 1000);
    }
    bool removed = false;
    for (int attempt = 0; attempt < 100 && !removed; ++attempt) {
      removed = rmdir(d.path.c_str()) == 0 || errno == ENOENT;
      if (!removed) usleep(20 * 1000);
    }
    if (!removed) Message("could not remove cgroup %s: %s", d.path.c_str(), strerror(errno));
  }
  dirs_.clear();
}

// Everything the cloned child needs; it gets a copy of our memory, so plain values suffice.
struct ChildArgs {
  const Options* opts;
  int go_read;  // Closed by the parent (EOF) if it fails before the maps are written.
  int go_write;
  int signal_fd;
};

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kExitFenceError;
}

// PID 1 of the new PID namespace. Returns only through _exit.
// A new network namespace has "lo" down; loopback sockets (and their tests) need it up.
void BringUpLoopback() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
      Message("cannot bring up the loopback interface: %s", strerror(errno));
    }
  }
  close(s);
}

int ChildMain(void* arg) {
  const auto* a = static_cast<const ChildArgs*>(arg);
  close(a->go_write);
  close(a->signal_fd);
  // If husk_fence dies (even by SIGKILL), the init dies and takes the namespace with it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  char go = 0;
  ssize_t n;
  do {
    n = read(a->go_read, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) _exit(kExitFenceError);  // The parent failed and already said why.
  close(a->go_read);

  // Our mounts must not propagate back to the host's mount namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    Message("cannot make / private in the new mount namespace: %s", strerror(errno));
    _exit(kExitFenceError);
  }
  // A /proc for our PID namespace, so /proc shows only fenced processes.
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    Message("cannot mount a fresh /proc (%s); /proc still shows the outer PID namespace",
            strerror(errno));
  }
  prctl(PR_SET_NAME, "fence-init");
  BringUpLoopback();

  // Second fence: no core dumps (core_pattern may name a helper that runs on the host), and
  // a task limit. RLIMIT_NPROC is counted per (user namespace, uid), so it counts only fenced
  // tasks; tasks of host root are exempt from it, which is why the pids cgroup comes first.
  struct rlimit core = {0, 0};
  setrlimit(RLIMIT_CORE, &core);
  struct rlimit nproc;
  if (getrlimit(RLIMIT_NPROC, &nproc) == 0) {
    rlim_t want = static_cast<rlim_t>(a->opts->pids);
    if (nproc.rlim_max == RLIM_INFINITY || nproc.rlim_max > want) nproc.rlim_max = want;
    if (nproc.rlim_cur == RLIM_INFINITY || nproc.rlim_cur > nproc.rlim_max) {
      nproc.rlim_cur = nproc.rlim_max;
    }
    setrlimit(RLIMIT_NPROC, &nproc);
  }

  pid_t cmd = fork();
  if (cmd < 0) {
    Message("fork: %s", strerror(errno));
    _exit(kExitFenceError);
  }
  if (cmd == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_PDEATHSIG, 0);
    execvp(a->opts->argv[0], a->opts->argv);
    int err = errno;
    Message("cannot run %s: %s", a->opts->argv[0], strerror(err));
    _exit(err == ENOENT ? kExitNotFound : kExitCannotExecute);
  }
  // Reap everything (orphans are re-parented to us); leave with CMD's status.
  for (;;) {
    int status = 0;
    pid_t r = waitpid(-1, &status, 0);
    if (r == cmd) _exit(ExitCodeOf(status));
    if (r < 0 && errno != EINTR) _exit(kExitFenceError);
  }
}

// Maps ids for the child's user namespace. As root, every id we have maps to itself (root
// stays root for files; host-wide privileges are gone because capabilities are now relative
// to the new namespace). Otherwise our own uid/gid becomes 0 inside.
bool WriteIdMaps(pid_t child) {
  const std::string proc = "/proc/" + std::to_string(child);
  int err = 0;
  std::string uid_map, gid_map;
  if (geteuid() == 0) {
    for (const char* kind : {"uid_map", "gid_map"}) {
      std::string own;
      if (!ReadFile(std::string("/proc/self/") + kind, &own)) {
        Message("cannot read /proc/self/%s", kind);
        return false;
      }
      std::string map;
      for (const auto& line : Split(own, '\n')) {
        std::istringstream in(line);
        unsigned long long inside = 0, outside = 0, count = 0;
        if (!(in >> inside >> outside >> count)) continue;
        map += std::to_string(inside) + " " + std::to_string(inside) + " " + std::to_string(count) +
               "\n";
      }
      (kind[0] == 'u' ? uid_map : gid_map) = map;
    }
  } else {
    uid_map = "0 " + std::to_string(geteuid()) + " 1\n";
    gid_map = "0 " + std::to_string(getegid()) + " 1\n";
    // An unprivileged writer may map its gid only after giving up setgroups(2).
    if (!WriteFile(proc + "/setgroups", "deny", &err)) {
      Message("cannot write %s/setgroups: %s", proc.c_str(), strerror(err));
      return false;
    }
  }
  if (!WriteFile(proc + "/uid_map", uid_map, &err)) {
    Message("cannot write %s/uid_map: %s", proc.c_str(), strerror(err));
    return false;
  }
  if (!WriteFile(proc + "/gid_map", gid_map, &err)) {
    Message("cannot write %s/gid_map: %s", proc.c_str(), strerror(err));
    return false;
  }
  return true;
}

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Waits for the child, enforcing the time limit and passing on SIGTERM/SIGINT/SIGHUP/SIGQUIT
// as the end of the whole fenced tree. Returns the exit status for husk_fence.
int Supervise(pid_t child, int pidfd, int signal_fd, long time_seconds) {
  const int64_t deadline = time_seconds > 0 ? NowMs() + int64_t{time_seconds} * 1000 : -1;
  int result = -1;
  for (;;) {
    int timeout = -1;
    if (deadline >= 0) {
      int64_t left = deadline - NowMs();
      timeout = static_cast<int>(left < 0 ? 0 : (left > INT_MAX ? INT_MAX : left));
    }
    struct pollfd fds[2] = {{pidfd, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    int n = poll(fds, 2, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Message("poll: %s", strerror(errno));
      result = kExitFenceError;
      break;
    }
    if (fds[0].revents != 0) break;  // The init has exited.
    if (fds[1].revents != 0) {
      struct signalfd_siginfo si;
      if (read(signal_fd, &si, sizeof(si)) == sizeof(si)) {
        Message("got signal %u; killing the fenced command", si.ssi_signo);
        result = 128 + static_cast<int>(si.ssi_signo);
        break;
      }
      continue;
    }
    if (n == 0 && deadline >= 0 && NowMs() >= deadline) {
      Message("the time limit (%ld s) was reached; killing the fenced command", time_seconds);
      result = kExitTimeout;
      break;
    }
  }
  // Killing the init kills the whole PID namespace.
  if (result >= 0) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      Message("waitpid: %s", strerror(errno));
      return kExitFenceError;
    }
  }
  return result >= 0 ? result : ExitCodeOf(status);
}

int Run(const Options& opts) {
  // Signals that end the fence are read from a signalfd; the child unblocks them before exec.
  sigset_t stop;
  sigemptyset(&stop);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&stop, s);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  int signal_fd = signalfd(-1, &stop, SFD_CLOEXEC);
  if (signal_fd < 0) {
    Message("signalfd: %s", strerror(errno));
    return kExitFenceError;
  }
  int go[2];
  if (pipe2(go, O_CLOEXEC) != 0) {
    Message("pipe2: %s", strerror(errno));
    return kExitFenceError;
  }
  constexpr size_t kStackSize = 1 << 20;
  void* stack = mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    Message("mmap: %s", strerror(errno));
    return kExitFenceError;
  }

  Cgroups cgroups;
  cgroups.Create(opts);

  ChildArgs args{&opts, go[0], go[1], signal_fd};
  int pidfd = -1;
  const int flags = (opts.host_root ? 0 : CLONE_NEWUSER) | CLONE_NEWPID | CLONE_NEWNS |
                    CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_PIDFD | SIGCHLD;
  pid_t child = clone(ChildMain, static_cast<char*>(stack) + kStackSize, flags, &args, &pidfd);
  if (child < 0) {
    int err = errno;
    Message("clone with new user/pid/mount/uts/ipc/net namespaces failed: %s%s", strerror(err),
            err == EPERM || err == ENOSPC || err == EUSERS
                ? " (are unprivileged user namespaces disabled, or is the nesting limit reached?)"
                : "");
    cgroups.Destroy();
    return kExitFenceError;
  }
  close(go[0]);

  cgroups.AddProcess(child);
  if (!opts.host_root && !WriteIdMaps(child)) {
    close(go[1]);  // The child sees EOF and exits quietly.
    int status;
    waitpid(child, &status, 0);
    cgroups.Destroy();
    return kExitFenceError;
  }
  if (write(go[1], "g", 1) != 1) {
    Message("cannot start the child: %s", strerror(errno));
  }
  close(go[1]);

  int rc = Supervise(child, pidfd, signal_fd, opts.time_seconds);
  close(pidfd);
  cgroups.Destroy();
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  if (int rc = ParseOptions(argc, argv, &opts); rc != 0) return rc;
  return Run(opts);
}
