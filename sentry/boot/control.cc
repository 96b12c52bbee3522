#include "sentry/boot/control.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/fd_passing.h"
#include "sentry/boot/console.h"
#include "sentry/fsimpl/host/host_file.h"
#include "sentry/net/netdev.h"

namespace husk {
namespace {

// The most a control packet holds (an exec's argv and environment).
constexpr size_t kMaxPacket = 256 * 1024;
constexpr int kExecFds = 4;

// sendmsg(2): the sentry's seccomp policy has it (the gofer protocol), not sendto.
void Say(int fd, const std::string& line) { (void)SendWithFds(fd, line, {}, MSG_DONTWAIT); }

void Signal(Kernel& k, int sig, bool all) {
  if (sig <= 0 || sig > kMaxSignal) return;
  absl::MutexLock l(&k.mu);
  for (int pid : all ? k.Pids() : std::vector<int>{1}) {
    std::shared_ptr<Task> t = k.FindTask(pid);
    if (t == nullptr) continue;
    t->kernel().mu.AssertHeld();  // one kernel
    if (!t->tg().zombie) t->SendProcessSignal(MakeSigInfo(sig, SI_USER, 0, 0));
  }
}

// An exec request: CWD\0UID\0GID\0ARGC\0ARGV...\0ENV... (see control.h).
struct ExecRequest {
  std::string cwd;
  uint32_t uid = 0, gid = 0;
  std::vector<std::string> argv, env;
};

bool ParseExec(const std::string& body, ExecRequest* r) {
  std::vector<std::string> parts = absl::StrSplit(body, '\0');
  if (parts.size() < 5) return false;
  size_t argc = 0;
  if (!absl::SimpleAtoi(parts[1], &r->uid) || !absl::SimpleAtoi(parts[2], &r->gid) ||
      !absl::SimpleAtoi(parts[3], &argc) || argc == 0 || argc > parts.size() - 4) {
    return false;
  }
  r->cwd = parts[0];
  r->argv.assign(parts.begin() + 4, parts.begin() + 4 + static_cast<long>(argc));
  for (size_t i = 4 + argc; i < parts.size(); i++) {
    if (!parts[i].empty()) r->env.push_back(parts[i]);
  }
  return !r->argv[0].empty() && !r->cwd.empty() && r->cwd[0] == '/';
}

// A process started from outside: the environment's PATH finds argv[0];
// it has no parent in the sandbox; its end is told on the status channel.
void Exec(Kernel& k, const ExecRequest& req, std::vector<UniqueFd>& fds, bool terminal) {
  const int status_fd = fds[3].get();
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& e : req.env) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  std::shared_ptr<Task> t;
  std::string program;
  {
    absl::MutexLock l(&k.mu);
    std::shared_ptr<Task> init = k.FindTask(1);
    if (init == nullptr || init->tg().zombie) {
      Say(status_fd, "error the container is not running\n");
      return;
    }
    program = FindProgram(k, req.argv[0], path);
    vfs::FsContext fs{k.root, k.root, 022};
    Result<vfs::DentryRef> exe = vfs::Resolve(fs, k.root, program, true);
    if (!exe.ok() || !(*exe)->inode()->IsRegular()) {
      Say(status_fd,
          program.find('/') == std::string::npos
              ? absl::StrFormat("error exec: \"%s\": executable file not found in $PATH\n", program)
              : absl::StrFormat("error exec: \"%s\": %s\n", program,
                                strerror(exe.ok() ? EACCES : exe.error())));
      return;
    }
    t = std::make_shared<Task>(k, k.AllocatePid());
    init->kernel().mu.AssertHeld();  // one kernel
    t->kernel().mu.AssertHeld();
    t->fs().root = init->fs().root;
    t->fs().cwd = init->fs().root;
    Result<vfs::DentryRef> cwd = vfs::Resolve(t->fs(), t->fs().root, req.cwd, true);
    if (!cwd.ok() || !(*cwd)->inode()->IsDir()) {
      Say(status_fd, absl::StrFormat("error chdir to cwd (\"%s\"): %s\n", req.cwd,
                                     strerror(cwd.ok() ? ENOTDIR : cwd.error())));
      return;
    }
    t->fs().cwd = *cwd;
    ThreadGroup& g = t->tg();
    g.pgid = g.sid = t->tid();
    g.ppid = 0;
    g.rlimits = init->tg().rlimits;
    t->cpu_mask = init->cpu_mask;
    t->uid = t->euid = t->suid = t->fsuid = req.uid;
    t->gid = t->egid = t->sgid = t->fsgid = req.gid;
    // The container's capability bounds (its first program's); a non-root
    // user starts without capabilities (no file capabilities).
    t->caps.bounding = init->caps.bounding;
    t->caps.inheritable = init->caps.inheritable;
    if (req.uid != 0) t->caps.permitted = t->caps.effective = t->caps.ambient = 0;
    if (terminal) {
      // A session of its own on a new sandbox terminal, bridged to the
      // host pty whose replica came as stdin.
      Result<std::shared_ptr<Console>> c = AttachConsole(k, *t, std::move(fds[0]));
      if (!c.ok()) {
        Say(status_fd, absl::StrFormat("error attach the terminal: %s\n", strerror(c.error())));
        return;
      }
    } else {
      for (int fd = 0; fd < 3; fd++) InstallHostFd(k, *t, fds[fd].get(), fd);
    }
    auto status = std::make_shared<UniqueFd>(std::move(fds[3]));
    g.on_exit = [status](int wait_status) {
      Say(status->get(), absl::StrCat("exit ", wait_status, "\n"));
      status->Reset();
    };
    k.AddTask(t);
    Say(status->get(), absl::StrCat("pid ", t->tid(), "\n"));
  }
  k.StartInit(t, program, req.argv, req.env);
}

// The sandbox's processes, a line each: "PID PPID UID COMM" (ps(1)'s
// columns; the sandbox's own pids, which no host process has).
void ListProcesses(Kernel& k, int fd) {
  std::string out;
  {
    absl::MutexLock l(&k.mu);
    for (int pid : k.Pids()) {
      std::shared_ptr<Task> t = k.FindTask(pid);
      if (t == nullptr) continue;
      t->kernel().mu.AssertHeld();  // one kernel
      const ThreadGroup& g = t->tg();
      if (g.zombie) continue;
      absl::StrAppend(&out, pid, " ", g.ppid, " ", t->uid, " ", t->comm, "\n");
    }
  }
  // In packets no bigger than a socket takes at once.
  for (size_t at = 0; at < out.size(); at += 16384) Say(fd, out.substr(at, 16384));
}

void Loop(Kernel& k, int fd) {
  std::vector<char> buf(kMaxPacket);
  for (;;) {
    // Per packet: an exec's stdio must not stay open here after it.
    std::vector<UniqueFd> fds;
    bool cut;
    ssize_t n = RecvWithFds(fd, buf, kExecFds, &fds, &cut);
    if (n <= 0) return;
    if (cut) continue;  // not ours: dropped
    if ((buf[0] == 'S' || buf[0] == 'A') && n == 1 + sizeof(int32_t) && fds.empty()) {
      int32_t sig;
      memcpy(&sig, buf.data() + 1, sizeof(sig));
      Signal(k, sig, buf[0] == 'A');
    } else if (buf[0] == 'P' && n == 1 && fds.size() == 1) {
      ListProcesses(k, fds[0].get());
    } else if (buf[0] == 'W' && n == 1 + sizeof(int32_t) + sizeof(tty::WindowSize) && fds.empty()) {
      int32_t pid;
      tty::WindowSize ws;
      memcpy(&pid, buf.data() + 1, sizeof(pid));
      memcpy(&ws, buf.data() + 1 + sizeof(pid), sizeof(ws));
      ResizeConsole(k, pid, ws);
    } else if ((buf[0] == 'E' || buf[0] == 'T') && fds.size() == kExecFds) {
      ExecRequest req;
      if (ParseExec(std::string(buf.data() + 1, static_cast<size_t>(n) - 1), &req)) {
        Exec(k, req, fds, buf[0] == 'T');
      } else {
        Say(fds[3].get(), "error a malformed exec request\n");
      }
    }
  }
}

}  // namespace

void TakeNetworkMessage(const std::string& text, std::vector<UniqueFd>& fds) {
  if (fds.size() < 2) return;

  std::vector<net::NicSpec> nics;
  std::vector<net::RouteSpec> routes;
  std::string why;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "nic ")) {
      net::NicSpec n;
      if (!net::ParseNicSpec(std::string(line), &n) || n.fd < 0 ||
          static_cast<size_t>(n.fd) + 1 >= fds.size() || !fds[n.fd + 1].valid()) {
        why = "a malformed interface: " + std::string(line);
        break;
      }
      n.fd = fds[n.fd + 1].Release();
      nics.push_back(std::move(n));
    } else if (absl::ConsumePrefix(&line, "route ")) {
      net::RouteSpec r;
      if (!net::ParseRouteSpec(std::string(line), &r)) {
        why = "a malformed route: " + std::string(line);
        break;
      }
      routes.push_back(std::move(r));
    }
  }
  if (why.empty()) {
    if (Status s = net::StartNetwork(std::move(nics), routes); !s.ok()) {
      why = absl::StrCat("start the network: ", strerror(s.error()));
    }
  } else {
    for (net::NicSpec& n : nics) close(n.fd);
  }
  Say(fds[0].get(), why.empty() ? "ok\n" : "error " + why + "\n");
}

void StartControl(Kernel& k, int fd) {
  try {
    std::thread([&k, fd] { Loop(k, fd); }).detach();
  } catch (const std::system_error&) {
    fprintf(stderr, "husk: cannot start the control thread\n");
    _exit(125);
  }
}

std::string FindProgram(Kernel& k, const std::string& name, const std::string& path) {
  if (name.find('/') != std::string::npos) return name;
  vfs::FsContext fs{k.root, k.root, 022};
  for (auto dir : absl::StrSplit(path, ':')) {
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/", name);
    auto d = vfs::Resolve(fs, k.root, candidate, true);
    if (d.ok() && (*d)->inode()->IsRegular()) return candidate;
  }
  return name;
}

void InstallHostFd(Kernel& k, Task& t, int fd, int target) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return;
  // A read or write that blocks on the host lets the rest of the sandbox run.
  auto hook = [&k](bool entering) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (entering) {
      k.mu.Unlock();
    } else {
      k.mu.Lock();
    }
  };
  auto f = hostfs::NewHostFile(UniqueFd(copy), fl & O_ACCMODE, hook);
  if (f.ok()) (void)t.fds().Set(target, *f, false);
}

}  // namespace husk
