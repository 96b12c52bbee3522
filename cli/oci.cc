// The OCI runtime: runc's command line over husk's sandbox, so that
// containerd's runc shim (`--runc-binary`) and Docker (`--add-runtime`) run
// containers on husk.
//
//   husk create ID            checks the bundle, then forks the monitor and
//                             returns once the sandbox is made
//    └── monitor (the container's pid: its exit status is the container's)
//         ├── husk gofer ...  the root's and each bind mount's
//         └── husk boot       the sentry, holding the first program until
//                             `husk start`
//
// The monitor serves `start` and `kill` on ROOT/ID/control.sock and keeps
// ROOT/ID/state.json up to date; when the sentry exits it records the
// container as stopped and exits with its status. `state`, `list` and
// `delete` read the state file and check that the monitor is still the
// process it names (its start time), so a stale file never names a stranger.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/fd_passing.h"
#include "cli/cgroups.h"
#include "cli/commands.h"
#include "cli/network.h"
#include "cli/sandbox.h"
#include "oci/spec.h"
#include "oci/state.h"

namespace husk::cli {
namespace {

GlobalOptions g_opts;

// One line on stderr and, with --log, in the log file (JSON for
// --log-format json, as containerd's shim reads it).
void Log(const std::string& level, const std::string& msg) {
  if (level == "error") fprintf(stderr, "husk: %s\n", msg.c_str());
  if (g_opts.log.empty() || (level == "debug" && !g_opts.debug)) return;
  int fd = open(g_opts.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  std::string line =
      g_opts.log_json ? oci::JsonLogLine(level, msg) : absl::StrCat(level, ": ", msg, "\n");
  (void)!write(fd, line.data(), line.size());
  close(fd);
}

int Fail(const std::string& msg) {
  Log("error", msg);
  return 1;
}

std::string ContainerDir(const std::string& id) { return g_opts.root + "/" + id; }

// runc's rule for ids: letters, digits, '_', '+', '-' and '.', not "." or "..".
bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 1024 || id == "." || id == "..") return false;
  for (char c : id) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// Field 22 of /proc/PID/stat (start time in clock ticks): 0 if the process
// is gone or a zombie.
uint64_t StartTime(pid_t pid) {
  // read(2), not a stream: reading the file of a process that has just
  // gone fails with ESRCH, which libstdc++'s streams throw.
  int fd = open(absl::StrCat("/proc/", pid, "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  std::string text(buf, static_cast<size_t>(n));
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(text.substr(paren + 2));
  std::string field;
  std::vector<std::string> fields;
  while (rest >> field) fields.push_back(field);
  // fields[0] is field 3 (state); field 22 is fields[19].
  if (fields.size() < 20 || fields[0] == "Z" || fields[0] == "X") return 0;
  uint64_t start = 0;
  (void)absl::SimpleAtoi(fields[19], &start);
  return start;
}

bool MonitorAlive(const oci::State& s) {
  return s.pid > 0 && s.pid_start != 0 && StartTime(s.pid) == s.pid_start;
}

// The state with its status as of now: a container whose monitor is gone
// is stopped, whatever the file says.
absl::StatusOr<oci::State> CurrentState(const std::string& id) {
  absl::StatusOr<oci::State> s = oci::ReadState(ContainerDir(id));
  if (!s.ok()) {
    if (s.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat("container ", id, " does not exist"));
    }
    return s.status();
  }
  if (s->status != "stopped" && !MonitorAlive(*s)) s->status = "stopped";
  if (s->status == "running" && !s->cgroup.empty() && ContainerCgroup(s->cgroup).Frozen()) {
    s->status = "paused";
  }
  return s;
}

// A request to the monitor on ROOT/ID/control.sock (with descriptors for
// an exec); its one-line answer ("ok" or an error).
absl::StatusOr<std::string> AskMonitor(const std::string& id, const std::string& request,
                                       const std::vector<int>& fds = {}) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  // Connected by a path relative to the state directory, which may be
  // longer than sun_path holds.
  int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strcpy(addr.sun_path, "control.sock");
  bool connected = chdir(ContainerDir(id).c_str()) == 0 &&
                   connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  int err = errno;
  if (here >= 0) {
    (void)!fchdir(here);
    close(here);
  }
  if (!connected) {
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("container ", id, " is not running (its monitor: ", strerror(err), ")"));
  }
  std::string answer;
  if (SendWithFds(fd, request, fds)) {
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) answer.assign(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (answer.empty()) return absl::UnavailableError("the monitor did not answer");
  return answer;
}

// Signal names as kill(1) and runc take them: "TERM", "SIGTERM" or "15".
int ParseSignal(const std::string& text) {
  int n;
  if (absl::SimpleAtoi(text, &n)) return n > 0 && n < 65 ? n : -1;
  std::string name = text.rfind("SIG", 0) == 0 ? text.substr(3) : text;
  for (int sig = 1; sig < 32; sig++) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev != nullptr && name == abbrev) return sig;
  }
  if (name.rfind("RTMIN", 0) == 0 || name.rfind("RTMAX", 0) == 0) {
    int off = 0;
    if (name.size() > 5 && !absl::SimpleAtoi(name.substr(5), &off)) return -1;
    int sig = name[3] == 'I' ? SIGRTMIN + off : SIGRTMAX + off;
    return sig >= SIGRTMIN && sig <= SIGRTMAX ? sig : -1;
  }
  return -1;
}

// Flags of a subcommand: --name VALUE, --name=VALUE, -n VALUE; booleans
// take no value. What is left are the positional arguments.
struct Flags {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> values;
  std::vector<std::string> bools;

  bool Has(const std::string& name) const {
    for (const auto& b : bools) {
      if (b == name) return true;
    }
    return false;
  }
  std::string Get(const std::string& name, const std::string& def = "") const {
    for (const auto& [k, v] : values) {
      if (k == name) return v;
    }
    return def;
  }
  std::vector<std::string> All(const std::string& name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : values) {
      if (k == name) out.push_back(v);
    }
    return out;
  }
};

// Parses argv against the flags a command knows (value flags and boolean
// ones, each with its aliases); an unknown flag is an error.
absl::StatusOr<Flags> ParseFlags(int argc, char** argv, const std::vector<std::string>& with_value,
                                 const std::vector<std::string>& boolean) {
  Flags f;
  auto canon = [](std::string a) {
    while (!a.empty() && a[0] == '-') a.erase(0, 1);
    return a;
  };
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") {
      for (i++; i < argc; i++) f.positional.emplace_back(argv[i]);
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      // The first positional argument ends the flags (exec's command).
      for (; i < argc; i++) f.positional.emplace_back(argv[i]);
      break;
    }
    std::string name = canon(a), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (std::find(with_value.begin(), with_value.end(), name) != with_value.end()) {
      if (!has_value) {
        if (i + 1 >= argc) return absl::InvalidArgumentError("flag --" + name + " needs a value");
        value = argv[++i];
      }
      f.values.emplace_back(name, value);
    } else if (std::find(boolean.begin(), boolean.end(), name) != boolean.end()) {
      if (!has_value || value == "true") f.bools.push_back(name);
    } else {
      return absl::InvalidArgumentError("unknown flag " + a);
    }
  }
  return f;
}

std::string AbsolutePath(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char here[4096];
  if (getcwd(here, sizeof(here)) == nullptr) return p;
  return p.empty() || p == "." ? std::string(here) : absl::StrCat(here, "/", p);
}

bool WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".husk-tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

// What a child reports on a pipe before it closes it (then closed here).
std::string ReadToEnd(int fd) {
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

void RemoveTree(const std::string& dir) {
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      unlink(absl::StrCat(dir, "/", name).c_str());
    }
    closedir(d);
  }
  rmdir(dir.c_str());
}

// The sandbox a bundle asks for, or why husk cannot make it.
absl::StatusOr<SandboxConfig> ConfigFromSpec(const oci::Spec& spec) {
  SandboxConfig cfg;
  struct stat st {};
  if (stat(spec.root_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("root.path ", spec.root_path, ": not a directory"));
  }
  cfg.rootfs = spec.root_path;
  cfg.cwd = spec.cwd;
  cfg.argv = spec.args;
  cfg.env = spec.env;
  cfg.hostname = spec.hostname;
  cfg.platform = g_opts.platform;
  // --network=host and no network namespace of the container's own in the
  // spec (none, or the runtime's: Docker's --network=host names the host's):
  // the container shares the host's network, through host sockets.
  const bool own_netns =
      std::any_of(spec.namespaces.begin(), spec.namespaces.end(), [](const oci::Namespace& n) {
        return n.type == "network" && (n.path.empty() || !IsOurNetns(n.path));
      });
  if (g_opts.host_network && !own_netns) {
    TakenNetwork described;
    std::string why;
    if (!DescribeNetwork(&described, &why)) return absl::FailedPreconditionError(why);
    cfg.host_network = true;
    cfg.nics = std::move(described.nics);
    cfg.routes = std::move(described.routes);
  }
  if (spec.memory_limit.has_value()) cfg.memory = static_cast<uint64_t>(*spec.memory_limit);
  std::string groups;
  for (uint32_t g : spec.additional_gids) absl::StrAppend(&groups, groups.empty() ? "" : ",", g);
  cfg.boot_flags.push_back(absl::StrCat("--user=", spec.uid, ":", spec.gid, ":", groups));
  if (spec.umask.has_value()) cfg.boot_flags.push_back(absl::StrFormat("--umask=%o", *spec.umask));
  if (spec.has_capabilities) {
    auto mask = [](const std::vector<std::string>& names) {
      uint64_t m = 0;
      for (const std::string& n : names) m |= uint64_t{1} << oci::CapabilityByName(n);
      return m;
    };
    cfg.boot_flags.push_back(absl::StrFormat("--caps=%x:%x:%x:%x:%x", mask(spec.cap_bounding),
                                             mask(spec.cap_effective), mask(spec.cap_permitted),
                                             mask(spec.cap_inheritable), mask(spec.cap_ambient)));
  }
  for (const oci::Rlimit& r : spec.rlimits) {
    cfg.boot_flags.push_back(absl::StrCat("--rlimit=", r.resource, ":", r.soft, ":", r.hard));
  }
  // linux.maskedPaths and readonlyPaths, as runc makes them: masked files
  // show /dev/null, masked directories an empty read-only tmpfs, and the
  // read-only paths a read-only bind of themselves; paths the sandbox does
  // not have are skipped. root.readonly makes the root mount read-only.
  for (const auto& [paths, flag, field] :
       {std::tuple{&spec.masked_paths, "--mask=", "linux.maskedPaths"},
        std::tuple{&spec.readonly_paths, "--readonly=", "linux.readonlyPaths"}}) {
    for (size_t i = 0; i < paths->size(); i++) {
      std::string path;
      if (!SandboxPath((*paths)[i], &path) || path == "/") {
        return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "]: bad path"));
      }
      cfg.boot_flags.push_back(flag + path);
    }
  }
  if (spec.root_readonly) cfg.boot_flags.push_back("--root-readonly");
  if (spec.no_new_privileges) cfg.boot_flags.push_back("--no-new-privs");
  // linux.sysctl: the sandbox's own values. The UTS names are kept by the
  // sentry; net.* waits for the sandbox's network stack (issue 15) and is
  // accepted (Docker sets net.ipv4.ip_unprivileged_port_start for every
  // container); anything else is refused.
  for (const auto& [key, value] : spec.sysctl) {
    if (key == "kernel.hostname") {
      cfg.hostname = value;
    } else if (key == "kernel.domainname") {
      cfg.boot_flags.push_back("--domainname=" + value);
    } else if (key.rfind("net.", 0) != 0) {
      return absl::UnimplementedError(
          absl::StrCat("linux.sysctl: ", key, " is not a sysctl husk's sandbox has"));
    }
  }
  for (size_t i = 0; i < spec.mounts.size(); i++) {
    const oci::Mount& m = spec.mounts[i];
    if (!m.bind) {
      // The sentry has its own /proc, /dev (with pts, shm, mqueue), /sys
      // (with fs/cgroup) and /tmp; a tmpfs elsewhere is made at boot;
      // anything else elsewhere is refused rather than left out.
      static const std::set<std::string> kStandard = {
          "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/tmp"};
      std::string dest;
      if (!SandboxPath(m.destination, &dest)) {
        return absl::InvalidArgumentError(absl::StrCat("mounts[", i, "].destination: bad path"));
      }
      if (kStandard.contains(dest)) continue;
      if (m.type != "tmpfs") {
        return absl::UnimplementedError(
            absl::StrCat("mounts[", i, "]: a ", m.type, " mount at ", dest, " is not supported"));
      }
      unsigned mode = 01777;
      uint64_t size = 0;
      for (const std::string& o : m.options) {
        if (o.rfind("mode=", 0) == 0) {
          (void)absl::numbers_internal::safe_strtou32_base(o.substr(5), &mode, 8);
        } else if (o.rfind("size=", 0) == 0) {
          std::string v = o.substr(5);
          uint64_t mult = 1;
          if (!v.empty() && (v.back() == 'k' || v.back() == 'K')) mult = 1 << 10;
          if (!v.empty() && (v.back() == 'm' || v.back() == 'M')) mult = 1 << 20;
          if (!v.empty() && (v.back() == 'g' || v.back() == 'G')) mult = 1 << 30;
          if (mult != 1) v.pop_back();
          if (!absl::SimpleAtoi(v, &size)) {
            return absl::InvalidArgumentError(absl::StrCat("mounts[", i, "]: bad ", o));
          }
          size *= mult;
        }
      }
      cfg.tmpfs.push_back(absl::StrFormat("%o:%d:%s", mode, size, dest));
      continue;
    }
    Volume v;
    char* real = realpath(m.source.c_str(), nullptr);
    if (real == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("mounts[", i, "].source ", m.source, ": ", strerror(errno)));
    }
    v.host = real;
    free(real);
    if (!SandboxPath(m.destination, &v.sandbox) || v.sandbox == "/") {
      return absl::InvalidArgumentError(absl::StrCat("mounts[", i, "].destination: bad path"));
    }
    if (stat(v.host.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      // A file (an engine's /etc/hosts, resolv.conf, hostname): its bytes
      // are copied into the sandbox at boot; the sandbox's writes to it
      // stay in the sandbox.
      int fd = open(v.host.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("mounts[", i, "].source ", m.source, ": ", strerror(errno)));
      }
      cfg.files.emplace_back(fd, v.sandbox);
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::UnimplementedError(absl::StrCat("mounts[", i,
                                                   "]: bind mounts of devices, sockets and FIFOs (",
                                                   m.source, ") are not supported"));
    }
    v.writable = !m.read_only;
    cfg.volumes.push_back(std::move(v));
  }
  return cfg;
}

// Runs a point's hooks on the host, in order, each with the container's
// state on its stdin (runtime-spec config.md#posix-platform-hooks) and its
// timeout; the first that fails (non-zero status, a signal, past its
// timeout, not executable) is the error.
// `sandbox` is the sentry's pid: the state a hook reads names it, since
// its namespaces are the container's (Docker's libnetwork-setkey finds the
// network namespace to configure through it), where the monitor's are the
// host's.
absl::Status RunHooks(const char* point, const std::vector<oci::Hook>& hooks,
                      const oci::State& container, pid_t sandbox) {
  oci::State state = container;
  state.pid = sandbox;
  for (const oci::Hook& h : hooks) {
    int in[2];
    if (pipe2(in, O_CLOEXEC) != 0) return absl::InternalError(strerror(errno));
    pid_t pid = fork();
    if (pid < 0) return absl::InternalError(strerror(errno));
    if (pid == 0) {
      dup2(in[0], 0);
      int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
      if (null >= 0) dup2(null, 1);  // stdout is the container's: not the hook's
      std::vector<std::string> args = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
      std::vector<char*> argv, envp;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      std::vector<std::string> env = h.env;
      for (std::string& e : env) envp.push_back(e.data());
      envp.push_back(nullptr);
      execve(h.path.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    close(in[0]);
    std::string json = oci::StateJson(state, false);
    signal(SIGPIPE, SIG_IGN);
    (void)!write(in[1], json.data(), json.size());
    close(in[1]);
    const int64_t limit_ms = h.timeout.has_value() ? int64_t{*h.timeout} * 1000 : -1;
    int status = 0;
    for (int64_t waited = 0;; waited += 10) {
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      if (limit_ms >= 0 && waited >= limit_ms) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return absl::DeadlineExceededError(
            absl::StrCat(point, " hook ", h.path, " timed out after ", *h.timeout, " s"));
      }
      usleep(10000);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    return absl::FailedPreconditionError(
        absl::StrCat(point, " hook ", h.path, " failed: ",
                     WIFEXITED(status) ? absl::StrCat("exit status ", WEXITSTATUS(status))
                                       : absl::StrCat("killed by signal ", WTERMSIG(status))));
  }
  return absl::OkStatus();
}

// ---- terminals ---------------------------------------------------------

// A host pty for a container's terminal, sent to the engine as runc sends
// it: its master in one SCM_RIGHTS message on the --console-socket, whose
// data is the pty's name. Returns the replica, in raw mode: the sentry's
// own terminal does the line discipline, and bridges to it (the host's
// passes bytes through untouched). rows/cols: process.consoleSize, if set.
absl::StatusOr<UniqueFd> SendConsole(const std::string& socket_path, unsigned rows, unsigned cols) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("--console-socket: the path is too long: " + socket_path);
  }
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  char name[128];
  if (!master.valid() || grantpt(master.get()) != 0 || unlockpt(master.get()) != 0 ||
      ptsname_r(master.get(), name, sizeof(name)) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot make a pty for the terminal: ", strerror(errno)));
  }
  UniqueFd replica(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  termios tio{};
  if (!replica.valid() || tcgetattr(replica.get(), &tio) != 0) {
    return absl::InternalError(absl::StrCat("cannot open ", name, ": ", strerror(errno)));
  }
  cfmakeraw(&tio);
  if (tcsetattr(replica.get(), TCSANOW, &tio) != 0) {
    return absl::InternalError(absl::StrCat("cannot set ", name, " raw: ", strerror(errno)));
  }
  if (rows != 0 || cols != 0) {
    winsize ws{static_cast<unsigned short>(rows), static_cast<unsigned short>(cols), 0, 0};
    (void)ioctl(master.get(), TIOCSWINSZ, &ws);
  }
  memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid() || connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the console socket ", socket_path, ": ", strerror(errno)));
  }
  if (!SendWithFds(sock.get(), name, {master.get()})) {
    return absl::UnavailableError(
        absl::StrCat("cannot send the terminal to ", socket_path, ": ", strerror(errno)));
  }
  return replica;
}

// The write end of the pipe a SIGWINCH handler tells the resizes on.
int g_winch_fd = -1;
void OnWinch(int) {
  const int saved = errno;
  (void)!write(g_winch_fd, "w", 1);
  errno = saved;
}

// Makes `replica` the caller's controlling terminal (the caller leads a
// session) and returns a descriptor that is readable once the engine has
// resized the terminal (SIGWINCH), or -1 if that cannot be had.
int WatchResizes(int replica) {
  int p[2];
  if (ioctl(replica, TIOCSCTTY, 0) != 0 || pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
  g_winch_fd = p[1];
  struct sigaction sa {};
  sa.sa_handler = OnWinch;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGWINCH, &sa, nullptr);
  // The engine closing its end hangs the terminal up: that ends the
  // sandbox's terminal, not this process.
  signal(SIGHUP, SIG_IGN);
  return p[0];
}

// A resize request for the sandbox: 'W', the pid of the session leader the
// console belongs to, and the terminal's new size.
std::string ResizeMessage(int32_t pid, int replica, int winch) {
  char drain[64];
  while (read(winch, drain, sizeof(drain)) > 0) {
  }
  winsize ws{};
  (void)ioctl(replica, TIOCGWINSZ, &ws);
  std::string m(1, 'W');
  m.append(reinterpret_cast<const char*>(&pid), sizeof(pid));
  m.append(reinterpret_cast<const char*>(&ws), sizeof(ws));
  return m;
}

// ---- the monitor -------------------------------------------------------

// What the monitor does once the sandbox is made: answers `start` and
// `kill`, and ends with the sentry.
[[noreturn]] void Monitor(const std::string& dir, oci::State state, const oci::Spec& spec,
                          SandboxConfig& cfg, const Launched& l, int start_w, int control,
                          int listen_fd, const ContainerCgroup& cg) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, l.sentry, 0));
  // process.terminal: the engine's resizes of the console reach the
  // sandbox's terminal.
  const int winch = cfg.console_fd >= 0 ? WatchResizes(cfg.console_fd) : -1;
  bool started = false;
  std::vector<char> buf(256 * 1024);  // one request
  for (;;) {
    pollfd p[3] = {{listen_fd, POLLIN, 0}, {winch, POLLIN, 0}, {pidfd, POLLIN, 0}};
    if (poll(p, pidfd >= 0 ? 3 : 2, pidfd >= 0 ? -1 : 200) < 0 && errno != EINTR) break;
    if (p[1].revents & POLLIN) {
      (void)SendWithFds(control, ResizeMessage(1, cfg.console_fd, winch), {});
    }
    if (pidfd < 0 || (p[2].revents & POLLIN)) {
      int status;
      pid_t r = waitpid(l.sentry, &status, pidfd < 0 ? WNOHANG : 0);
      if (r == l.sentry) {
        int code = WIFEXITED(status) ? WEXITSTATUS(status)
                                     : (WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 125);
        for (const Volume& v : cfg.volumes) waitpid(v.gofer, nullptr, 0);
        waitpid(l.gofer, nullptr, 0);
        // The cgroups go first: "stopped" is said once nothing is left
        // but this monitor's exit.
        if (!state.cgroup.empty()) {
          cg.Leave(getpid());
          cg.Remove();
        }
        state.status = "stopped";
        (void)oci::WriteState(dir, state);
        _exit(code);
      }
    }
    if (!(p[0].revents & POLLIN)) continue;
    int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::vector<UniqueFd> passed;  // closed once forwarded
    bool cut;
    ssize_t n = RecvWithFds(c, buf, 4, &passed, &cut);
    std::vector<int> fds;
    fds.reserve(passed.size());
    for (const UniqueFd& f : passed) fds.push_back(f.get());
    std::string req = n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : "";
    std::string answer = "ok";
    if (req == "start") {
      if (started) {
        answer = "the container has been started already";
      } else if (absl::Status h = RunHooks("startContainer", spec.start_container, state, l.sentry);
                 !h.ok()) {
        // The container does not start: it ends here, as runc's does.
        answer = std::string(h.message());
        kill(l.sentry, SIGKILL);
      } else if (write(start_w, "s", 1) != 1) {
        answer = absl::StrCat("the sandbox did not take the start: ", strerror(errno));
      } else {
        close(start_w);
        started = true;
        state.status = "running";
        (void)oci::WriteState(dir, state);
        // A poststart hook that fails is reported; the container runs on.
        if (absl::Status p = RunHooks("poststart", spec.poststart, state, l.sentry); !p.ok()) {
          answer = absl::StrCat("warning: ", p.message());
        }
      }
    } else if (req.rfind("kill ", 0) == 0 || req.rfind("killall ", 0) == 0) {
      // killall: every process of the container (kill --all), as kill(-1)
      // from its init would reach them.
      const bool all = req[4] != ' ';
      int sig = 0;
      if (!absl::SimpleAtoi(req.substr(all ? 8 : 5), &sig) || sig <= 0 || sig > 64) {
        answer = "bad signal";
      } else if (sig == SIGKILL || !started) {
        // SIGKILL ends the whole sandbox, as it ends runc's container
        // init; so does any signal before the first program exists,
        // except the ones whose default is to do nothing.
        if (sig != SIGCHLD && sig != SIGCONT && sig != SIGURG && sig != SIGWINCH) {
          kill(l.sentry, SIGKILL);
        }
      } else {
        std::string m(1, all ? 'A' : 'S');
        int32_t s32 = sig;
        m.append(reinterpret_cast<const char*>(&s32), sizeof(s32));
        if (!SendWithFds(control, m, {})) answer = "the sandbox is gone";
      }
    } else if (req == "ps") {
      if (fds.size() != 1 || !SendWithFds(control, "P", fds)) answer = "the sandbox is gone";
    } else if (req.rfind("resize\n", 0) == 0) {
      // An exec's terminal was resized: its 'W' message follows.
      if (!SendWithFds(control, req.substr(7), {})) answer = "the sandbox is gone";
    } else if (req.rfind("exec\n", 0) == 0 || req.rfind("exectty\n", 0) == 0) {
      // Forwarded with its descriptors; the sentry answers on the status
      // channel the exec process holds.
      const bool tty = req[4] != '\n';
      if (!started) {
        answer = "cannot exec in a container that has not been started";
      } else if (fds.size() != 4) {
        answer = "an exec needs stdin, stdout, stderr and a status channel";
      } else if (!SendWithFds(control, (tty ? "T" : "E") + req.substr(tty ? 8 : 5), fds)) {
        answer = absl::StrCat("the sandbox is gone: ", strerror(errno));
      }
    } else {
      answer = "unknown request";
    }
    (void)!send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
    close(c);
  }
  kill(l.sentry, SIGKILL);
  _exit(WaitSandbox("husk monitor", cfg, l));
}

// Makes the container: returns the monitor's pid (its parent is the
// caller), or 0 after saying why it could not.
pid_t CreateContainer(const std::string& id, const std::string& bundle, const std::string& pid_file,
                      const std::string& console_socket) {
  if (!ValidId(id)) return Fail("invalid container id '" + id + "'"), 0;
  absl::StatusOr<oci::Spec> spec = oci::LoadSpec(bundle);
  if (!spec.ok()) return Fail(std::string(spec.status().message())), 0;
  if (spec->terminal && console_socket.empty()) {
    return Fail(
               "config.json: process.terminal is set, but no --console-socket was given to "
               "send the terminal to"),
           0;
  }
  absl::StatusOr<SandboxConfig> cfg = ConfigFromSpec(*spec);
  if (!cfg.ok()) return Fail("config.json: " + std::string(cfg.status().message())), 0;
  UniqueFd console;
  if (spec->terminal) {
    absl::StatusOr<UniqueFd> c =
        SendConsole(console_socket, spec->console_height, spec->console_width);
    if (!c.ok()) return Fail(std::string(c.status().message())), 0;
    console = std::move(*c);
    cfg->console_fd = console.get();
  }

  // mkdir -p, as runc makes its --root.
  if (!MkdirAll(g_opts.root, 0711)) {
    return Fail(absl::StrCat("cannot make the state root ", g_opts.root, ": ", strerror(errno))), 0;
  }
  const std::string dir = ContainerDir(id);
  if (mkdir(dir.c_str(), 0711) != 0) {
    if (errno == EEXIST) return Fail("container " + id + " already exists"), 0;
    return Fail(absl::StrCat("cannot make ", dir, ": ", strerror(errno))), 0;
  }

  int ready[2], start[2], control[2];
  if (pipe2(ready, O_CLOEXEC) != 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, start) != 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) != 0) {
    RemoveTree(dir);
    return Fail(absl::StrCat("pipe: ", strerror(errno))), 0;
  }
  pid_t monitor = fork();
  if (monitor < 0) {
    RemoveTree(dir);
    return Fail(absl::StrCat("fork: ", strerror(errno))), 0;
  }
  if (monitor == 0) {
    close(ready[0]);
    setsid();
    if (spec->terminal) {
      // The container's stdio is its terminal: the create's own stdio,
      // which an engine reads to its end (containerd's shim captures it),
      // must not stay open in the monitor, the sentry or the gofers.
      int null = open("/dev/null", O_RDWR | O_CLOEXEC);
      for (int fd = 0; fd < 3 && null >= 0; fd++) dup2(null, fd);
      if (null > 2) close(null);
    }
    // The container's cgroups (made below): its limits, and what pause
    // freezes. A create that fails removes them.
    ContainerCgroup cg(spec->cgroups_path.empty() ? "husk/" + id : spec->cgroups_path);
    std::string cgroup;
    auto refuse = [&](const std::string& why) {
      (void)!write(ready[1], why.data(), why.size());
      if (!cgroup.empty()) {
        cg.Leave(getpid());
        cg.Remove();
      }
      _exit(125);
    };
    int listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, "control.sock");
    if (listen_fd < 0 || chdir(dir.c_str()) != 0 ||
        bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(listen_fd, 16) != 0) {
      refuse(absl::StrCat("control socket: ", strerror(errno)));
    }
    cfg->start_fd = start[0];
    cfg->control_fd = control[1];
    // Without limits asked for, a host that refuses cgroups only costs pause.
    CgroupLimits limits{spec->memory_limit, spec->pids_limit, spec->cpu_quota, spec->cpu_period,
                        spec->cpu_shares};
    bool wants_limits = limits.memory || limits.pids || limits.cpu_quota || limits.cpu_shares;
    if (absl::Status c = cg.Create(limits); c.ok()) {
      cgroup = cg.relative();
      cfg->on_child = [&cg](pid_t pid) { (void)cg.Add(pid); };
      // The container's pid (this monitor) is counted with it, but never
      // frozen with it.
      (void)cg.Add(getpid(), /*freezer=*/false);
    } else {
      cg.Remove();
      if (wants_limits) refuse(absl::StrCat("linux.resources: ", c.message()));
      Log("debug", absl::StrCat("no cgroups for ", id, ": ", c.message()));
    }
    Launched l;
    // The sandbox's errors go to the monitor's stderr, which is the
    // container's: say them on the ready pipe too.
    if (!Launch("husk create", *cfg, &l)) refuse("the sandbox could not be started");
    close(start[0]);
    close(control[1]);
    // The sentry says whether the first program can run.
    char verdict[512];
    ssize_t vn;
    do {
      vn = recv(start[1], verdict, sizeof(verdict), 0);
    } while (vn < 0 && errno == EINTR);
    if (vn <= 0) {
      kill(l.sentry, SIGKILL);
      refuse("the sandbox ended while it was being made");
    }
    if (std::string(verdict, static_cast<size_t>(vn)) != "ready") {
      kill(l.sentry, SIGKILL);
      refuse(std::string(verdict, static_cast<size_t>(vn)));
    }
    // The container's stdio stays with the sandbox alone: once it ends,
    // the engine reading it sees the end.
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3 && null >= 0; fd++) dup2(null, fd);
    oci::State state;
    state.id = id;
    state.status = "created";
    state.pid = getpid();
    state.pid_start = StartTime(getpid());
    state.bundle = bundle;
    state.rootfs = spec->root_path;
    state.annotations = spec->annotations;
    state.cgroup = cgroup;
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    state.created_ns = int64_t{now.tv_sec} * 1000000000 + now.tv_nsec;
    if (absl::Status w = oci::WriteState(dir, state); !w.ok()) {
      kill(l.sentry, SIGKILL);
      refuse(std::string(w.message()));
    }
    // The sandbox is made: prestart (deprecated), createRuntime and
    // createContainer hooks, on the host; one that fails undoes the create.
    for (const auto& [point, hooks] :
         {std::pair{"prestart", &spec->prestart}, std::pair{"createRuntime", &spec->create_runtime},
          std::pair{"createContainer", &spec->create_container}}) {
      if (absl::Status h = RunHooks(point, *hooks, state, l.sentry); !h.ok()) {
        kill(l.sentry, SIGKILL);
        waitpid(l.sentry, nullptr, 0);
        refuse(std::string(h.message()));
      }
    }
    // The container's network namespace, as the hooks left it (Docker's
    // libnetwork-setkey puts the container's interface in the sentry's):
    // the sandbox's stack takes its interfaces. Without one, the container
    // shares the host's network, which a sandbox has no part of unless
    // husk runs with --network=host: it keeps its loopback.
    for (const oci::Namespace& ns : spec->namespaces) {
      // The host's own network (docker run --network=host) is not taken:
      // it is served by host sockets with --network=host, else the
      // sandbox keeps its loopback.
      if (ns.type != "network" || (!ns.path.empty() && IsOurNetns(ns.path))) continue;
      const std::string path =
          ns.path.empty() ? absl::StrCat("/proc/", l.sentry, "/ns/net") : ns.path;
      if (absl::Status n = HandNetworkToSandbox(path, start[1]); !n.ok()) {
        kill(l.sentry, SIGKILL);
        waitpid(l.sentry, nullptr, 0);
        refuse(std::string(n.message()));
      }
    }
    (void)!write(ready[1], "ok", 2);
    close(ready[1]);
    Monitor(dir, state, *spec, *cfg, l, start[1], control[0], listen_fd, cg);
  }
  close(ready[1]);
  close(start[0]);
  close(start[1]);
  close(control[0]);
  close(control[1]);
  const std::string answer = ReadToEnd(ready[0]);
  if (answer != "ok") {
    waitpid(monitor, nullptr, 0);
    RemoveTree(dir);
    return Fail(answer.empty() ? "the monitor died while making the sandbox" : answer), 0;
  }
  if (!pid_file.empty() && !WriteFileAtomically(AbsolutePath(pid_file), std::to_string(monitor))) {
    kill(monitor, SIGKILL);
    waitpid(monitor, nullptr, 0);
    RemoveTree(dir);
    return Fail(absl::StrCat("cannot write the pid file ", pid_file, ": ", strerror(errno))), 0;
  }
  return monitor;
}

// Waits (up to `seconds`) for a monitor that is not our child to go.
bool WaitGone(const oci::State& s, int seconds) {
  for (int i = 0; i < seconds * 100; i++) {
    if (!MonitorAlive(s)) return true;
    usleep(10000);
  }
  return false;
}

int StartCommand(const std::string& id) {
  absl::StatusOr<oci::State> s = CurrentState(id);
  if (!s.ok()) return Fail(std::string(s.status().message()));
  if (s->status != "created") {
    return Fail(absl::StrCat("cannot start container ", id, ": it is ", s->status));
  }
  absl::StatusOr<std::string> a = AskMonitor(id, "start");
  if (!a.ok()) return Fail(std::string(a.status().message()));
  if (a->rfind("warning: ", 0) == 0) {
    Log("warning", a->substr(9));
    return 0;
  }
  if (*a != "ok") return Fail(*a);
  return 0;
}

int KillContainer(const std::string& id, int sig, bool all) {
  absl::StatusOr<oci::State> s = CurrentState(id);
  if (!s.ok()) return Fail(std::string(s.status().message()));
  if (s->status == "stopped") return Fail("container " + id + " is not running");
  absl::StatusOr<std::string> a = AskMonitor(id, absl::StrCat(all ? "killall " : "kill ", sig));
  if (!a.ok()) return Fail(std::string(a.status().message()));
  if (*a != "ok") return Fail(*a);
  // A frozen (or freezing) task dies of SIGKILL only once thawed (runc
  // thaws too).
  if (sig == SIGKILL && !s->cgroup.empty()) (void)ContainerCgroup(s->cgroup).Freeze(false);
  return 0;
}

int DeleteContainer(const std::string& id, bool force) {
  absl::StatusOr<oci::State> s = CurrentState(id);
  if (!s.ok()) {
    // runc: --force on a missing container is not an error.
    if (force && s.status().code() == absl::StatusCode::kNotFound) return 0;
    return Fail(std::string(s.status().message()));
  }
  if (s->status == "running" || s->status == "paused") {
    if (!force) {
      return Fail(
          absl::StrCat("cannot delete container ", id, " that is not stopped: ", s->status));
    }
  }
  if (s->status != "stopped") {
    (void)AskMonitor(id, "kill 9");
    // A frozen (or freezing) task dies of SIGKILL only once thawed.
    if (!s->cgroup.empty()) (void)ContainerCgroup(s->cgroup).Freeze(false);
  }
  // A stopped container's monitor is on its way out (it says "stopped"
  // just before it exits): delete returns once it is gone.
  if (MonitorAlive(*s) && !WaitGone(*s, 10)) {
    kill(s->pid, SIGKILL);
    WaitGone(*s, 5);
  }
  // poststop hooks: a failure is a warning, and the delete goes on.
  s->status = "stopped";
  if (absl::StatusOr<oci::Spec> spec = oci::LoadSpec(s->bundle); spec.ok()) {
    if (absl::Status h = RunHooks("poststop", spec->poststop, *s, 0); !h.ok()) {
      Log("warning", std::string(h.message()));
    }
  }
  if (!s->cgroup.empty()) ContainerCgroup(s->cgroup).Remove();
  RemoveTree(ContainerDir(id));
  return 0;
}

// pause and resume: the container's cgroups frozen and thawed (the
// monitor is outside them, so it answers meanwhile).
int PauseCommand(const std::string& id, bool pause) {
  absl::StatusOr<oci::State> s = CurrentState(id);
  if (!s.ok()) return Fail(std::string(s.status().message()));
  const char* want = pause ? "running" : "paused";
  if (s->status != want) {
    return Fail(absl::StrCat("container ", id, " is ", s->status, ", not ", want));
  }
  if (s->cgroup.empty()) return Fail("container " + id + " has no cgroups to freeze");
  if (absl::Status f = ContainerCgroup(s->cgroup).Freeze(pause); !f.ok()) {
    return Fail(std::string(f.message()));
  }
  return 0;
}

int StateCommand(const std::string& id) {
  absl::StatusOr<oci::State> s = CurrentState(id);
  if (!s.ok()) return Fail(std::string(s.status().message()));
  printf("%s\n", oci::StateJson(*s, true).c_str());
  return 0;
}

int ListCommand(const Flags& f) {
  std::vector<oci::State> states;
  if (DIR* d = opendir(g_opts.root.c_str())) {
    std::vector<std::string> ids;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ids.emplace_back(e->d_name);
    }
    closedir(d);
    std::sort(ids.begin(), ids.end());
    for (const std::string& id : ids) {
      if (absl::StatusOr<oci::State> s = CurrentState(id); s.ok()) states.push_back(*s);
    }
  }
  const std::string format = f.Get("format", f.Get("f", "table"));
  if (f.Has("quiet") || f.Has("q")) {
    for (const oci::State& s : states) printf("%s\n", s.id.c_str());
  } else if (format == "json") {
    printf("%s\n", oci::StatesJson(states).c_str());
  } else if (format == "table") {
    printf("%-12s %-10s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
           "OWNER");
    for (const oci::State& s : states) {
      std::string json = oci::StateJson(s, false);
      size_t at = json.find("\"created\":\"");
      std::string created = at == std::string::npos ? "" : json.substr(at + 11, 30);
      created = created.substr(0, created.find('"'));
      printf("%-12s %-10d %-10s %-40s %-30s %s\n", s.id.c_str(), s.status == "stopped" ? 0 : s.pid,
             s.status.c_str(), s.bundle.c_str(), created.c_str(), "root");
    }
  } else {
    return Fail("invalid format option '" + format + "'");
  }
  return 0;
}

// `husk exec`: a new process in a running container. The process's host
// side is a child of ours (the pid the --pid-file gets): it hands the
// sentry its stdio and a status channel, then exits with the process's
// status, so an engine waits on it as on runc exec's.
int ExecCommand(const Flags& f) {
  if (f.positional.empty()) return Fail("exec needs a container id");
  const std::string id = f.positional[0];
  absl::StatusOr<oci::State> st = CurrentState(id);
  if (!st.ok()) return Fail(std::string(st.status().message()));
  if (st->status != "running") {
    return Fail(absl::StrCat("cannot exec in a container that is ", st->status));
  }
  // The container's own process is the template (env, cwd, user), as runc's.
  oci::Spec proc;
  if (absl::StatusOr<oci::Spec> base = oci::LoadSpec(st->bundle); base.ok()) proc = *base;
  if (const std::string file = f.Get("process", f.Get("p")); !file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return Fail(absl::StrCat("cannot read ", file, ": ", strerror(errno)));
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<oci::Spec> p = oci::ParseProcessJson(text.str());
    if (!p.ok()) return Fail(std::string(p.status().message()));
    proc = *p;
  } else {
    if (f.positional.size() < 2) return Fail("exec needs a command (or --process)");
    proc.args.assign(f.positional.begin() + 1, f.positional.end());
  }
  if (f.Has("tty") || f.Has("t")) proc.terminal = true;
  UniqueFd console;
  if (proc.terminal) {
    const std::string socket_path = f.Get("console-socket");
    if (socket_path.empty()) {
      return Fail("exec: a terminal was asked for, but no --console-socket to send it to");
    }
    absl::StatusOr<UniqueFd> c = SendConsole(socket_path, proc.console_height, proc.console_width);
    if (!c.ok()) return Fail(std::string(c.status().message()));
    console = std::move(*c);
  }
  if (const std::string cwd = f.Get("cwd"); !cwd.empty()) proc.cwd = cwd;
  for (const std::string& e : f.All("env")) proc.env.push_back(e);
  for (const std::string& e : f.All("e")) proc.env.push_back(e);
  if (std::string user = f.Get("user", f.Get("u")); !user.empty()) {
    std::vector<std::string> ids = absl::StrSplit(user, ':');
    if (ids.size() > 2 || !absl::SimpleAtoi(ids[0], &proc.uid) ||
        (ids.size() == 2 && !absl::SimpleAtoi(ids[1], &proc.gid))) {
      return Fail("--user wants UID[:GID], got '" + user + "'");
    }
  }
  std::string body =
      absl::StrCat(proc.terminal ? "exectty\n" : "exec\n", proc.cwd, std::string(1, '\0'), proc.uid,
                   std::string(1, '\0'), proc.gid, std::string(1, '\0'), proc.args.size());
  for (const std::string& a : proc.args) absl::StrAppend(&body, std::string(1, '\0'), a);
  for (const std::string& e : proc.env) absl::StrAppend(&body, std::string(1, '\0'), e);

  int status[2], report[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, status) != 0 ||
      pipe2(report, O_CLOEXEC) != 0) {
    return Fail(absl::StrCat("socketpair: ", strerror(errno)));
  }
  pid_t child = fork();
  if (child < 0) return Fail(absl::StrCat("fork: ", strerror(errno)));
  if (child == 0) {
    close(report[0]);
    auto tell = [&](const std::string& what) {
      (void)!write(report[1], what.data(), what.size());
      close(report[1]);
    };
    const int in = console.valid() ? console.get() : 0;
    const int out = console.valid() ? console.get() : 1;
    const int err = console.valid() ? console.get() : 2;
    absl::StatusOr<std::string> a = AskMonitor(id, body, {in, out, err, status[1]});
    close(status[1]);
    if (!a.ok() || *a != "ok") {
      tell(a.ok() ? *a : std::string(a.status().message()));
      _exit(126);
    }
    // The process holds the stdio now; ours would keep a reader waiting.
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3 && null >= 0; fd++) dup2(null, fd);
    char line[512];
    ssize_t n;
    bool told = false;
    int winch = -1;
    int32_t sandbox_pid = 0;
    for (;;) {
      // The engine's resizes of an exec's terminal reach the sandbox's.
      pollfd p[2] = {{status[0], POLLIN, 0}, {winch, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (p[1].revents & POLLIN) {
        (void)AskMonitor(id, "resize\n" + ResizeMessage(sandbox_pid, console.get(), winch), {});
        continue;
      }
      if ((n = recv(status[0], line, sizeof(line) - 1, 0)) <= 0) break;
      std::string msg(line, static_cast<size_t>(n));
      if (msg.rfind("pid ", 0) == 0) {
        tell("ok");
        told = true;
        (void)absl::SimpleAtoi(absl::StripTrailingAsciiWhitespace(msg.substr(4)), &sandbox_pid);
        // Leading a session of its own, with the pty as its terminal.
        if (console.valid() && setsid() >= 0) winch = WatchResizes(console.get());
      } else if (msg.rfind("error ", 0) == 0) {
        while (!msg.empty() && msg.back() == '\n') msg.pop_back();
        tell(msg.substr(6));
        _exit(126);
      } else if (msg.rfind("exit ", 0) == 0) {
        int ws = 0;
        (void)absl::SimpleAtoi(absl::StripTrailingAsciiWhitespace(msg.substr(5)), &ws);
        _exit(WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
      }
    }
    if (!told) tell("the sandbox ended before the process started");
    _exit(137);  // the sandbox went away under the process
  }
  close(report[1]);
  close(status[0]);
  close(status[1]);
  const std::string answer = ReadToEnd(report[0]);
  if (answer != "ok") {
    waitpid(child, nullptr, 0);
    return Fail(answer.empty() ? "exec failed" : answer);
  }
  if (const std::string pid_file = f.Get("pid-file"); !pid_file.empty()) {
    if (!WriteFileAtomically(AbsolutePath(pid_file), std::to_string(child))) {
      return Fail(absl::StrCat("cannot write the pid file ", pid_file, ": ", strerror(errno)));
    }
  }
  if (f.Has("detach") || f.Has("d")) return 0;
  int ws = 0;
  while (waitpid(child, &ws, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

// `husk events`: runc's JSON events, one line each: the container's stats
// (from its host cgroups) once with --stats, else every --interval (5s)
// until the container stops.
int EventsCommand(const Flags& f) {
  if (f.positional.size() != 1) return Fail("events needs exactly one container id");
  const std::string id = f.positional[0];
  absl::Duration interval = absl::Seconds(5);
  if (const std::string v = f.Get("interval"); !v.empty() && !absl::ParseDuration(v, &interval)) {
    return Fail("--interval wants a duration like 5s, got '" + v + "'");
  }
  for (;;) {
    absl::StatusOr<oci::State> s = CurrentState(id);
    if (!s.ok()) return Fail(std::string(s.status().message()));
    if (s->status == "stopped")
      return f.Has("stats") ? Fail("container " + id + " is not running") : 0;
    ContainerCgroup::Stats st = ContainerCgroup(s->cgroup).Read();
    printf(
        "{\"type\":\"stats\",\"id\":\"%s\",\"data\":{\"cpu\":{\"usage\":{\"total\":%llu}},"
        "\"memory\":{\"usage\":{\"usage\":%llu,\"limit\":%llu}},"
        "\"pids\":{\"current\":%llu,\"limit\":%llu}}}\n",
        id.c_str(), static_cast<unsigned long long>(st.cpu_total_ns),
        static_cast<unsigned long long>(st.memory_usage),
        static_cast<unsigned long long>(st.memory_limit),
        static_cast<unsigned long long>(st.pids_current),
        static_cast<unsigned long long>(st.pids_limit));
    fflush(stdout);
    if (f.Has("stats")) return 0;
    absl::SleepFor(interval);
  }
}

// `husk ps`: the container's processes. They live in the sentry and
// have no host pids: the table shows the sandbox's own (as gVisor's does),
// and --format json gives them as runc's list of pids.
int PsCommand(const Flags& f) {
  if (f.positional.empty()) return Fail("ps needs a container id");
  const std::string id = f.positional[0];
  absl::StatusOr<oci::State> st = CurrentState(id);
  if (!st.ok()) return Fail(std::string(st.status().message()));
  if (st->status == "stopped") return Fail("container " + id + " is not running");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return Fail(absl::StrCat("socketpair: ", strerror(errno)));
  }
  absl::StatusOr<std::string> a = AskMonitor(id, "ps", {sv[1]});
  close(sv[1]);
  if (!a.ok() || *a != "ok") {
    close(sv[0]);
    return Fail(a.ok() ? *a : std::string(a.status().message()));
  }
  std::string text;
  char buf[16384];
  ssize_t n;
  while ((n = recv(sv[0], buf, sizeof(buf), 0)) > 0) text.append(buf, static_cast<size_t>(n));
  close(sv[0]);
  const std::string format = f.Get("format", f.Get("f", "table"));
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (format == "json") {
    std::string out = "[";
    for (size_t i = 0; i < lines.size(); i++) {
      absl::StrAppend(&out, i ? "," : "", lines[i].substr(0, lines[i].find(' ')));
    }
    printf("%s]\n", out.c_str());
    return 0;
  }
  if (format != "table") return Fail("invalid format option '" + format + "'");
  printf("%-8s %-8s %-8s %s\n", "PID", "PPID", "UID", "CMD");
  for (const std::string& line : lines) {
    std::vector<std::string> c = absl::StrSplit(line, absl::MaxSplits(' ', 3));
    if (c.size() == 4)
      printf("%-8s %-8s %-8s %s\n", c[0].c_str(), c[1].c_str(), c[2].c_str(), c[3].c_str());
  }
  return 0;
}

}  // namespace

int OciCommand(const GlobalOptions& global, const std::string& cmd, int argc, char** argv) {
  g_opts = global;
  Log("debug", absl::StrCat("husk ", cmd, " (", argc, " arguments)"));
  if (cmd == "spec") {
    absl::StatusOr<Flags> f = ParseFlags(argc, argv, {"bundle", "b"}, {"rootless"});
    if (!f.ok()) return Fail(std::string(f.status().message()));
    std::string path = AbsolutePath(f->Get("bundle", f->Get("b", "."))) + "/config.json";
    if (access(path.c_str(), F_OK) == 0) return Fail("File " + path + " exists. Remove it first");
    if (!WriteFileAtomically(path, oci::DefaultSpecJson(/*terminal=*/true))) {
      return Fail(absl::StrCat("cannot write ", path, ": ", strerror(errno)));
    }
    return 0;
  }
  if (cmd == "create" || cmd == "run") {
    absl::StatusOr<Flags> f =
        ParseFlags(argc, argv, {"bundle", "b", "pid-file", "console-socket", "preserve-fds"},
                   {"detach", "d", "no-pivot", "no-new-keyring", "no-subreaper", "keep"});
    if (!f.ok()) return Fail(std::string(f.status().message()));
    if (f->positional.size() != 1) return Fail(cmd + " needs exactly one container id");
    const std::string& id = f->positional[0];
    std::string bundle = AbsolutePath(f->Get("bundle", f->Get("b", ".")));
    pid_t monitor = CreateContainer(id, bundle, f->Get("pid-file"), f->Get("console-socket"));
    if (monitor == 0) return 1;
    if (cmd == "create") return 0;
    if (int rc = StartCommand(id); rc != 0) {
      DeleteContainer(id, true);
      return rc;
    }
    if (f->Has("detach") || f->Has("d")) return 0;
    // Foreground: the monitor is our child; its status is the container's.
    int status = 0;
    while (waitpid(monitor, &status, 0) < 0 && errno == EINTR) {
    }
    if (!f->Has("keep")) DeleteContainer(id, true);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  if (cmd == "start" || cmd == "state") {
    if (argc != 1) return Fail(cmd + " needs exactly one container id");
    return cmd == "start" ? StartCommand(argv[0]) : StateCommand(argv[0]);
  }
  if (cmd == "kill") {
    absl::StatusOr<Flags> f = ParseFlags(argc, argv, {}, {"all", "a"});
    if (!f.ok()) return Fail(std::string(f.status().message()));
    if (f->positional.empty() || f->positional.size() > 2) {
      return Fail("kill needs a container id and, optionally, a signal");
    }
    int sig = f->positional.size() == 2 ? ParseSignal(f->positional[1]) : SIGTERM;
    if (sig < 0) return Fail("unknown signal '" + f->positional[1] + "'");
    return KillContainer(f->positional[0], sig, f->Has("all") || f->Has("a"));
  }
  if (cmd == "delete") {
    absl::StatusOr<Flags> f = ParseFlags(argc, argv, {}, {"force", "f"});
    if (!f.ok()) return Fail(std::string(f.status().message()));
    if (f->positional.size() != 1) return Fail("delete needs exactly one container id");
    return DeleteContainer(f->positional[0], f->Has("force") || f->Has("f"));
  }
  if (cmd == "list") {
    absl::StatusOr<Flags> f = ParseFlags(argc, argv, {"format", "f"}, {"quiet", "q"});
    if (!f.ok()) return Fail(std::string(f.status().message()));
    return ListCommand(*f);
  }
  if (cmd == "exec") {
    absl::StatusOr<Flags> f = ParseFlags(
        argc, argv,
        {"process", "p", "console-socket", "pid-file", "cwd", "env", "e", "user", "u",
         "preserve-fds", "cap", "c", "apparmor", "process-label", "additional-gids", "g", "cgroup"},
        {"tty", "t", "detach", "d", "no-new-privs", "ignore-paused"});
    if (!f.ok()) return Fail(std::string(f.status().message()));
    return ExecCommand(*f);
  }
  if (cmd == "events") {
    absl::StatusOr<Flags> f = ParseFlags(argc, argv, {"interval"}, {"stats"});
    if (!f.ok()) return Fail(std::string(f.status().message()));
    return EventsCommand(*f);
  }
  if (cmd == "pause" || cmd == "resume") {
    if (argc != 1) return Fail(cmd + " needs exactly one container id");
    return PauseCommand(argv[0], cmd == "pause");
  }
  if (cmd == "ps") {
    absl::StatusOr<Flags> f = ParseFlags(argc, argv, {"format", "f"}, {});
    if (!f.ok()) return Fail(std::string(f.status().message()));
    return PsCommand(*f);
  }
  if (cmd == "features") {
    printf(
        "{\"ociVersionMin\":\"1.0.0\",\"ociVersionMax\":\"1.1.0\",\"hooks\":[],"
        "\"mountOptions\":[\"bind\",\"rbind\",\"ro\",\"rw\"],"
        "\"linux\":{\"namespaces\":[\"pid\",\"network\",\"ipc\",\"uts\",\"mount\",\"cgroup\"]},"
        "\"annotations\":{\"org.opencontainers.runc.version\":\"husk\"}}\n");
    return 0;
  }
  return Fail("'" + cmd + "' is not supported yet");
}

bool IsOciCommand(const std::string& cmd) {
  for (const char* c :
       {"spec", "create", "run", "start", "state", "kill", "delete", "list", "ps", "exec", "pause",
        "resume", "events", "features", "update", "checkpoint", "restore"}) {
    if (cmd == c) return true;
  }
  return false;
}

}  // namespace husk::cli
