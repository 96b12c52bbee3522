#include "platform/ptrace/ptrace.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

extern "C" {
extern char husk_stub_begin[];
extern char husk_stub_syscall[];
extern char husk_stub_clone[];
extern char husk_stub_end[];
}

namespace husk::platform {
namespace {

uintptr_t StubSyscallAddress() {
  return kStubBase + static_cast<uintptr_t>(husk_stub_syscall - husk_stub_begin);
}

// The flags of an injected thread clone (and the only ones the stub's
// filter lets clone take).
constexpr uint64_t kStubThreadFlags =
    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;

// Waits for pid, retrying on EINTR; ru, if given, receives what a stub
// that has died used (wait4(2)).
int WaitFor(pid_t pid, int* status, struct rusage* ru = nullptr) {
  int r;
  do {
    r = static_cast<int>(wait4(pid, status, __WALL, ru));
  } while (r < 0 && errno == EINTR);
  return r;
}

int64_t Nanoseconds(const timeval& tv) {
  return static_cast<int64_t>(tv.tv_sec) * 1000000000 + static_cast<int64_t>(tv.tv_usec) * 1000;
}

// A CPU clock of another process (clock_getcpuclockid(3) builds the same
// id): Linux lets any process in the PID namespace read it.
Result<int64_t> ProcessCpuClock(pid_t pid, int which) {
  const clockid_t id = (~static_cast<clockid_t>(pid) << 3) | which;
  timespec ts;
  if (clock_gettime(id, &ts) != 0) return Errno{errno};
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
constexpr int kCpuClockProf = 0;   // user + system
constexpr int kCpuClockVirt = 1;   // user
constexpr int kCpuClockSched = 2;  // the scheduler's runtime

// The stub's own allowlist: only what its code and the injected calls need.
// Application syscalls never reach it (PTRACE_SYSEMU skips them before
// seccomp runs); it matters if the tracer vanishes or an injection is abused.
Result<std::vector<unsigned char>> BuildStubFilter(int memfd) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (ctx == nullptr) return Errno{ENOMEM};
  int rc = 0;
  // mmap: injected to install memory-file mappings, and nothing else.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 2,
                         SCMP_A3(SCMP_CMP_EQ, MAP_SHARED | MAP_FIXED),
                         SCMP_A4(SCMP_CMP_EQ, static_cast<scmp_datum_t>(memfd)));
  // mprotect: injected to write-protect copy-on-write pages and back.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 0);
  // munmap: injected to remove mappings; also the stub's start-up cleanup.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(munmap), 0);
  // getpid + kill(self, SIGSTOP): the stub's hand-over to its tracer.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getpid), 0);
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, SCMP_A1(SCMP_CMP_EQ, SIGSTOP));
  // exit_group: lets the sentry end a stub cleanly.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group), 0);
  // Threads: an injected clone with exactly the thread flags, the new
  // thread's park loop (pause), and exit to release one thread.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_EQ, kStubThreadFlags));
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(pause), 0);
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit), 0);
  // Processes: the master stub's injected clone (every stub inherits the
  // one filter), then the adopter ties the new stub's life to the master
  // (PR_SET_PDEATHSIG) and checks that the master is its parent.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_EQ, CLONE_FILES | SIGCHLD));
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2,
                         SCMP_A0(SCMP_CMP_EQ, PR_SET_PDEATHSIG), SCMP_A1(SCMP_CMP_EQ, SIGKILL));
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getppid), 0);
  // The legacy vsyscalls: a host with vsyscall=xonly emulates a call into
  // the vsyscall page as these syscalls, past SYSEMU but through seccomp.
  // Trapped, they reach the sentry as SIGSYS, which emulates them itself.
  for (int nr : {SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getcpu)}) {
    rc |= seccomp_rule_add(ctx, SCMP_ACT_TRAP, nr, 0);
  }
  if (rc != 0) {
    seccomp_release(ctx);
    return Errno{EINVAL};
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    seccomp_release(ctx);
    return Errno{errno};
  }
  UniqueFd rd(p[0]), wr(p[1]);
  rc = seccomp_export_bpf(ctx, wr.get());
  seccomp_release(ctx);
  if (rc != 0) return Errno{-rc};
  wr.Reset();
  std::vector<unsigned char> out;
  unsigned char buf[4096];
  for (;;) {
    ssize_t n = read(rd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno{errno};
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  if (out.empty() || out.size() % sizeof(sock_filter) != 0) return Errno{EINVAL};
  return out;
}

// Runs in the freshly cloned child; async-signal-safe calls only (the parent
// may be multi-threaded). Never returns. master: the child is the master
// stub, which every later stub process is cloned from.
[[noreturn]] void StubChild(pid_t parent, const unsigned char* filter, size_t filter_len,
                            bool master) {
  syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != parent) _exit(1);
  if (master) {
    // Out of the terminal's process groups (a Ctrl-C must not reach a
    // parked, untraced stub); exited stubs reap themselves once their
    // tracers let go; nothing blocked, so SIGURG interrupts them.
    setsid();
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGCHLD, &ign, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
  }
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(2);
  // glibc registered an rseq area for the forking thread; the child inherits
  // the registration, but the area is about to be unmapped, and the kernel
  // would fault the stub on its next return to user mode.
  if (__rseq_size > 0) {
    void* area = static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
    syscall(SYS_rseq, area, __rseq_size < 32 ? 32 : __rseq_size, 1 /* RSEQ_FLAG_UNREGISTER */,
            0x53053053 /* RSEQ_SIG on x86 */);
  }
  void* page = mmap(reinterpret_cast<void*>(kStubBase), kStubSize, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (page == MAP_FAILED) _exit(3);
  size_t code_len = static_cast<size_t>(husk_stub_end - husk_stub_begin);
  memcpy(page, husk_stub_begin, code_len);
  if (mprotect(page, kStubSize, PROT_READ | PROT_EXEC) != 0) _exit(4);
  syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  sock_fprog prog{static_cast<unsigned short>(filter_len / sizeof(sock_filter)),
                  reinterpret_cast<sock_filter*>(const_cast<unsigned char*>(filter))};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) _exit(5);
  auto entry = reinterpret_cast<void (*)(uintptr_t, size_t)>(kStubBase);
  entry(kStubBase, kStubSize);
  _exit(6);
}

// One stub thread: the host thread of the address space that one sentry
// host thread traces and runs application code in.
struct StubThread {
  pid_t tid = 0;
  Registers init_regs{};  // where injections start from (segments, flags)
  int last_cpu = -1;
  // Exited, released or reaped: never signal, trace or wait for it again
  // (its tid may be any new thread's).
  bool dead = false;
  int status = 0;  // the wait status, once reaped
};

pid_t HostTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

uintptr_t StubCloneAddress() {
  return kStubBase + static_cast<uintptr_t>(husk_stub_clone - husk_stub_begin);
}

// Runs one syscall in a stopped stub thread: the registers point at the
// stub's "syscall; int3" (or the clone entry) and the tracer waits for the
// trap that follows.
// Points a stopped stub thread at `rip` with syscall nr and its arguments
// in the registers, and resumes it.
Status StartInjection(const StubThread& th, uintptr_t rip, long nr, uint64_t a0 = 0,
                      uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0,
                      uint64_t a5 = 0) {
  Registers r = th.init_regs;
  r.rip = rip;
  r.rax = static_cast<uint64_t>(nr);
  r.orig_rax = ~0ULL;
  r.rdi = a0;
  r.rsi = a1;
  r.rdx = a2;
  r.r10 = a3;
  r.r8 = a4;
  r.r9 = a5;
  if (ptrace(PTRACE_SETREGS, th.tid, nullptr, &r) != 0) return Errno{errno};
  if (ptrace(PTRACE_CONT, th.tid, nullptr, nullptr) != 0) return Errno{errno};
  return Ok();
}

Result<long> InjectInto(StubThread& th, uintptr_t rip, long nr, uint64_t a0, uint64_t a1,
                        uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
  if (th.dead) return Errno{ESRCH};
  TRY(StartInjection(th, rip, nr, a0, a1, a2, a3, a4, a5));
  for (;;) {
    int status;
    if (WaitFor(th.tid, &status) < 0) return Errno{errno};
    if (!WIFSTOPPED(status)) {
      th.dead = true;
      th.status = status;
      return Errno{ESRCH};
    }
    if (WSTOPSIG(status) == SIGTRAP && (status >> 16) == 0) break;
    // Some other stop (a stray signal, a group-stop): suppress it and go on.
    if (ptrace(PTRACE_CONT, th.tid, nullptr, nullptr) != 0) return Errno{errno};
  }
  Registers r;
  if (ptrace(PTRACE_GETREGS, th.tid, nullptr, &r) != 0) return Errno{errno};
  return static_cast<long>(r.rax);
}

// Ends a stub thread we trace: it stops at its exit (PTRACE_EVENT_EXIT) and
// is detached there, so it finishes exiting on its own (a leader stays a
// zombie until its siblings are gone) and our host thread may end without
// PTRACE_O_EXITKILL's SIGKILL reaching the rest of the process.
void ReleaseStubThread(StubThread& th) {
  if (th.dead) return;
  th.dead = true;
  if (ptrace(PTRACE_SETOPTIONS, th.tid, nullptr,
             PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACEEXIT) != 0) {
    return;  // gone already: the next wait of whoever owns the process reaps it
  }
  if (!StartInjection(th, StubSyscallAddress(), SYS_exit).ok()) return;
  for (;;) {
    int status;
    if (WaitFor(th.tid, &status) < 0) return;
    if (!WIFSTOPPED(status)) {
      th.status = status;
      return;
    }
    if ((status >> 8) == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
      ptrace(PTRACE_DETACH, th.tid, nullptr, nullptr);
      return;
    }
    if (ptrace(PTRACE_CONT, th.tid, nullptr, nullptr) != 0) return;
  }
}

// Seizes a parked stub thread (made by an injected clone) for the calling
// host thread: PTRACE_SEIZE, then PTRACE_INTERRUPT, then the event stop.
Result<StubThread> SeizeStubThread(pid_t tid) {
  if (ptrace(PTRACE_SEIZE, tid, nullptr, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) != 0) {
    return Errno{errno};
  }
  StubThread th;
  th.tid = tid;
  if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) return Errno{errno};
  for (;;) {
    int status;
    if (WaitFor(tid, &status) < 0) return Errno{errno};
    if (!WIFSTOPPED(status)) return Errno{ESRCH};
    if ((status >> 16) == PTRACE_EVENT_STOP) break;
    // A signal-delivery stop first (a stray signal): suppress it.
    if (ptrace(PTRACE_CONT, tid, nullptr, nullptr) != 0) return Errno{errno};
  }
  if (ptrace(PTRACE_GETREGS, tid, nullptr, &th.init_regs) != 0) return Errno{errno};
  return th;
}

class PtraceAddressSpace : public AddressSpace {
 public:
  // th: the stub process's first thread, traced by the calling host thread.
  explicit PtraceAddressSpace(const StubThread& th) : pid_(th.tid) { threads_[HostTid()] = th; }
  ~PtraceAddressSpace() override {
    // Every other host thread released its stub thread before the last
    // reference went. The stub process is a child of the master stub,
    // which ignores SIGCHLD: once its tracers let go the host reaps it.
    StubThread* self = Self();
    if (self != nullptr && !self->dead) {
      // Our thread lives, so does the process and its pid.
      kill(pid_, SIGKILL);
      int status;
      WaitFor(self->tid, &status);
      return;
    }
    std::lock_guard<std::mutex> l(mu_);
    // Reaped, or released and exiting on its own: its pid may be anyone's.
    if (leader_reaped_ || leader_released_) return;
    kill(pid_, SIGKILL);
  }

  Status MapFile(uintptr_t addr, uint64_t offset, size_t length, int prot) override {
    ASSIGN_OR_RETURN(long r, Inject(SYS_mmap, addr, length, prot, MAP_SHARED | MAP_FIXED,
                                    memfd_for_inject, offset));
    if (r < 0 && r > -4096) return Errno{static_cast<int>(-r)};
    if (static_cast<uintptr_t>(r) != addr) return Errno{EFAULT};
    return Ok();
  }

  Status Unmap(uintptr_t addr, size_t length) override {
    ASSIGN_OR_RETURN(long r, Inject(SYS_munmap, addr, length, 0, 0, 0, 0));
    if (r < 0) return Errno{static_cast<int>(-r)};
    return Ok();
  }

  Status Protect(uintptr_t addr, size_t length, int prot) override {
    ASSIGN_OR_RETURN(long r, Inject(SYS_mprotect, addr, length, static_cast<uint64_t>(prot), 0, 0, 0));
    if (r < 0) return Errno{static_cast<int>(-r)};
    return Ok();
  }

  Result<ThreadToken> NewThread() override {
    StubThread* self = Self();
    if (self == nullptr) return Errno{EPERM};
    ASSIGN_OR_RETURN(
        long r, InjectInto(*self, StubCloneAddress(), SYS_clone, kStubThreadFlags, 0, 0, 0, 0, 0));
    if (r < 0) return Errno{static_cast<int>(-r)};
    return ThreadToken{r};
  }

  void ReleaseThread() override {
    StubThread* self = Self();
    if (self == nullptr || self->dead) return;
    ReleaseStubThread(*self);
    if (self->tid == pid_) {
      std::lock_guard<std::mutex> l(mu_);
      leader_released_ = true;
    }
  }

  void DiscardThread(ThreadToken token) override {
    auto th = SeizeStubThread(static_cast<pid_t>(token.id));
    if (th.ok()) ReleaseStubThread(*th);
  }

  void AddThread(const StubThread& th) {
    std::lock_guard<std::mutex> l(mu_);
    threads_[HostTid()] = th;
  }

  // The calling host thread's stub thread, or null. Only its owner uses
  // an entry, and entries stay put (std::map), so it is used unlocked.
  StubThread* Self() {
    std::lock_guard<std::mutex> l(mu_);
    auto it = threads_.find(HostTid());
    return it == threads_.end() ? nullptr : &it->second;
  }

  pid_t pid() const { return pid_; }
  // Records that a thread's exit status was collected (ru: what wait4
  // reported, the whole process's usage when th is the leader).
  void SetReaped(StubThread& th, int status, const struct rusage* ru = nullptr) {
    th.dead = true;
    th.status = status;
    if (th.tid == pid_) {
      std::lock_guard<std::mutex> l(mu_);
      leader_reaped_ = true;
      if (ru != nullptr) {
        final_usage_.user = Nanoseconds(ru->ru_utime);
        final_usage_.system = Nanoseconds(ru->ru_stime);
        final_usage_.runtime = final_usage_.user + final_usage_.system;
      }
    }
  }

  // The stub process's CPU clocks (all its threads) while it lives; once
  // its leader is reaped its pid may name another process, so what wait4
  // reported then.
  Result<CpuUsage> Usage() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (leader_reaped_ || leader_released_) return final_usage_;
    }
    CpuUsage u;
    ASSIGN_OR_RETURN(u.user, ProcessCpuClock(pid_, kCpuClockVirt));
    ASSIGN_OR_RETURN(int64_t prof, ProcessCpuClock(pid_, kCpuClockProf));
    ASSIGN_OR_RETURN(u.runtime, ProcessCpuClock(pid_, kCpuClockSched));
    u.system = std::max<int64_t>(prof - u.user, 0);
    std::lock_guard<std::mutex> l(mu_);
    final_usage_ = u;  // the last reading stands once the process is gone
    return u;
  }
  int memfd_for_inject = -1;

 private:
  Result<long> Inject(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                      uint64_t a5) {
    StubThread* self = Self();
    if (self == nullptr) return Errno{EPERM};  // a sentry bug: not our address space
    auto r = InjectInto(*self, StubSyscallAddress(), nr, a0, a1, a2, a3, a4, a5);
    if (!r.ok() && self->dead && self->tid == pid_) SetReaped(*self, self->status);
    return r;
  }

  const pid_t pid_;
  std::mutex mu_;                        // a leaf: guards the map's shape and leader_reaped_
  std::map<pid_t, StubThread> threads_;  // by sentry host tid
  bool leader_reaped_ = false;           // its exit status was collected
  bool leader_released_ = false;         // detached at its exit: the host reaps it
  CpuUsage final_usage_;
};

}  // namespace

// The master stub: a stub process made at boot that every other stub
// process is cloned from, so the sentry never forks after boot (a fork of
// the sentry costs what its page tables cost). Its host thread traces it,
// takes no sentry lock, and serves one request at a time: an injected
// clone(CLONE_FILES|SIGCHLD) whose child parks until its adopter seizes it.
class MasterStub {
 public:
  MasterStub() = default;
  ~MasterStub() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  Status Start(const std::vector<unsigned char>& filter) {
    thread_ = std::thread([this, &filter] { Serve(filter); });
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return started_; });
    if (start_error_ != 0) {
      l.unlock();
      thread_.join();
      return Errno{start_error_};
    }
    return Ok();
  }

  pid_t pid() const { return pid_; }

  // A new parked stub process; blocks until the master made it.
  Result<pid_t> NewProcess() {
    Request req;
    std::unique_lock<std::mutex> l(mu_);
    if (dead_) return Errno{EAGAIN};
    queue_.push_back(&req);
    cv_.notify_all();
    cv_.wait(l, [&req] { return req.done; });
    if (req.result < 0) return Errno{static_cast<int>(-req.result)};
    return static_cast<pid_t>(req.result);
  }

 private:
  struct Request {
    bool done = false;
    long result = 0;
  };

  void Serve(const std::vector<unsigned char>& filter) {
    int err = Fork(filter);
    {
      std::lock_guard<std::mutex> l(mu_);
      started_ = true;
      start_error_ = err;
    }
    cv_.notify_all();
    if (err != 0) return;
    for (;;) {
      Request* req;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stopping
        req = queue_.front();
        queue_.pop_front();
      }
      auto r = InjectInto(th_, StubCloneAddress(), SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0, 0);
      std::lock_guard<std::mutex> l(mu_);
      if (!r.ok()) dead_ = true;  // the master is gone: no process can be made any more
      req->result = r.ok() ? *r : -EAGAIN;
      req->done = true;
      cv_.notify_all();
    }
    // Ending this thread ends the master (PTRACE_O_EXITKILL), and with it
    // every stub it made (their PR_SET_PDEATHSIG).
    kill(pid_, SIGKILL);
    int status;
    WaitFor(pid_, &status);
  }

  // Clones the master from this thread, which then traces it.
  int Fork(const std::vector<unsigned char>& filter) {
    pid_t parent = getpid();
    long pid = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) return errno;
    if (pid == 0) StubChild(parent, filter.data(), filter.size(), true);
    int status;
    if (WaitFor(static_cast<pid_t>(pid), &status) < 0 || !WIFSTOPPED(status) ||
        WSTOPSIG(status) != SIGSTOP) {
      kill(static_cast<pid_t>(pid), SIGKILL);
      if (!WIFEXITED(status) && !WIFSIGNALED(status)) WaitFor(static_cast<pid_t>(pid), &status);
      return ECHILD;
    }
    if (ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) != 0 ||
        ptrace(PTRACE_GETREGS, pid, nullptr, &th_.init_regs) != 0) {
      int err = errno;
      kill(static_cast<pid_t>(pid), SIGKILL);
      WaitFor(static_cast<pid_t>(pid), &status);
      return err;
    }
    pid_ = static_cast<pid_t>(pid);
    th_.tid = pid_;
    return 0;
  }

  std::thread thread_;
  pid_t pid_ = 0;
  StubThread th_;  // used by the master's host thread only
  std::mutex mu_;  // a leaf
  std::condition_variable cv_;
  std::deque<Request*> queue_;
  bool started_ = false, stopping_ = false, dead_ = false;
  int start_error_ = 0;
};

namespace {

// Collects a stub thread that is no longer in a ptrace stop: between
// switches that means it was killed (from outside, by the OOM killer, by
// its own seccomp filter), so report its death rather than the ptrace error.
Result<StopInfo> CollectDeadStub(PtraceAddressSpace& pas, StubThread& th) {
  int status;
  struct rusage ru {};
  if (WaitFor(th.tid, &status, &ru) < 0) return Errno{errno};
  if (WIFSTOPPED(status)) return Errno{ESRCH};
  pas.SetReaped(th, status, &ru);
  StopInfo stop;
  stop.kind = StopInfo::Kind::kExited;
  stop.status = status;
  return stop;
}

// The size of the XSAVE area for the features the host enabled (CPUID leaf
// 0xD, sub-leaf 0, EBX), at least the 512-byte FXSAVE area and its header.
size_t XstateSize() {
  static const size_t size = [] {
    unsigned a = 0xD, b = 0, c = 0, d = 0;
    asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return std::max<size_t>(b, 512 + 64);
  }();
  return size;
}

class PtraceContext : public Context {
 public:
  void Interrupt() override {
    interrupt_.store(true);
    uint64_t running = running_.load();
    // Any signal stops a traced stub thread; SIGURG does nothing else if it
    // leaks. tgkill, because kill() may pick any thread of the stub.
    if (running != 0) {
      syscall(SYS_tgkill, static_cast<pid_t>(running >> 32),
              static_cast<pid_t>(running & 0xffffffff), SIGURG);
    }
  }

  Status Adopt(AddressSpace& as, ThreadToken token) override {
    auto& pas = static_cast<PtraceAddressSpace&>(as);
    ASSIGN_OR_RETURN(StubThread th, SeizeStubThread(static_cast<pid_t>(token.id)));
    pas.AddThread(th);
    return Ok();
  }

  Result<std::vector<uint8_t>> GetFpState(AddressSpace& as) override {
    auto& pas = static_cast<PtraceAddressSpace&>(as);
    StubThread* th = pas.Self();
    if (th == nullptr || th->dead) return Errno{ESRCH};
    std::vector<uint8_t> buf(XstateSize());
    iovec iov{buf.data(), buf.size()};
    if (ptrace(PTRACE_GETREGSET, th->tid, NT_X86_XSTATE, &iov) != 0) return Errno{errno};
    buf.resize(iov.iov_len);
    return buf;
  }

  Status SetFpState(AddressSpace& as, const std::vector<uint8_t>& state) override {
    auto& pas = static_cast<PtraceAddressSpace&>(as);
    StubThread* th = pas.Self();
    if (th == nullptr || th->dead) return Errno{ESRCH};
    std::vector<uint8_t> buf = state;
    iovec iov{buf.data(), buf.size()};
    if (ptrace(PTRACE_SETREGSET, th->tid, NT_X86_XSTATE, &iov) != 0) return Errno{errno};
    return Ok();
  }

  Result<StopInfo> Switch(AddressSpace& as, Registers& regs) override {
    auto& pas = static_cast<PtraceAddressSpace&>(as);
    StubThread* th = pas.Self();
    if (th == nullptr) return Errno{EPERM};  // a sentry bug: not adopted here
    running_.store((static_cast<uint64_t>(pas.pid()) << 32) | static_cast<uint32_t>(th->tid));
    struct Clear {
      std::atomic<uint64_t>& r;
      ~Clear() { r.store(0); }
    } clear{running_};
    if (interrupt_.exchange(false)) {
      StopInfo stop;
      stop.kind = StopInfo::Kind::kInterrupted;
      return stop;
    }
    return Run(pas, *th, regs);
  }

 private:
  Result<StopInfo> Run(PtraceAddressSpace& pas, StubThread& th, Registers& regs) {
    if (th.dead) {
      StopInfo stop;
      stop.kind = StopInfo::Kind::kExited;
      stop.status = th.status;
      return stop;
    }
    pid_t pid = th.tid;
    auto failed = [&](int err) -> Result<StopInfo> {
      if (err == ESRCH) return CollectDeadStub(pas, th);
      return Errno{err};
    };
    // A SYSEMU stop and resume costs ~10us on one core and ~65us across
    // cores in these VMs: keep the stub thread on the tracer's current CPU.
    int cpu = sched_getcpu();
    if (cpu >= 0 && cpu != th.last_cpu) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      sched_setaffinity(pid, sizeof(set), &set);
      th.last_cpu = cpu;
    }
    if (ptrace(PTRACE_SETREGS, pid, nullptr, &regs) != 0) return failed(errno);
    if (ptrace(PTRACE_SYSEMU, pid, nullptr, nullptr) != 0) return failed(errno);
    for (;;) {
      int status;
      struct rusage ru {};
      if (WaitFor(pid, &status, &ru) < 0) return Errno{errno};
      StopInfo stop;
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        pas.SetReaped(th, status, &ru);
        stop.kind = StopInfo::Kind::kExited;
        stop.status = status;
        return stop;
      }
      int sig = WSTOPSIG(status);
      if (sig == (SIGTRAP | 0x80)) {
        if (ptrace(PTRACE_GETREGS, pid, nullptr, &regs) != 0) return failed(errno);
        stop.kind = StopInfo::Kind::kSyscall;
        return stop;
      }
      if ((status >> 16) != 0) {
        // An event stop (a group-stop of a seized thread, an interrupt):
        // back to the sentry with the registers as they are.
        if (ptrace(PTRACE_GETREGS, pid, nullptr, &regs) != 0) return failed(errno);
        stop.kind = StopInfo::Kind::kInterrupted;
        return stop;
      }
      if (ptrace(PTRACE_GETSIGINFO, pid, nullptr, &stop.info) != 0) return failed(errno);
      if (stop.info.si_code <= 0 || (sig != SIGSEGV && sig != SIGBUS && sig != SIGILL &&
                                     sig != SIGFPE && sig != SIGTRAP && sig != SIGSYS)) {
        // Sent from outside (the stub's code never signals during a run):
        // Interrupt's SIGURG, or a stray signal. Either way the signal is
        // dropped (the next PTRACE_SYSEMU passes none) and the sentry gets
        // control back, at no cost beyond one round trip.
        if (ptrace(PTRACE_GETREGS, pid, nullptr, &regs) != 0) return failed(errno);
        interrupt_.store(false);
        stop.kind = StopInfo::Kind::kInterrupted;
        return stop;
      }
      if (ptrace(PTRACE_GETREGS, pid, nullptr, &regs) != 0) return failed(errno);
      stop.kind = (sig == SIGSEGV || sig == SIGBUS) ? StopInfo::Kind::kFault
                                                    : StopInfo::Kind::kSignal;
      stop.addr = reinterpret_cast<uintptr_t>(stop.info.si_addr);
      return stop;
    }
  }

  // The stub thread being run while Switch runs: tgid << 32 | tid.
  std::atomic<uint64_t> running_{0};
  std::atomic<bool> interrupt_{false};
};

}  // namespace

bool PtracePlatform::ReserveStubRange() {
  void* p = mmap(reinterpret_cast<void*>(kStubBase), kStubSize, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
  return p == reinterpret_cast<void*>(kStubBase);
}

PtracePlatform::PtracePlatform(int memfd) : memfd_(memfd) {}
PtracePlatform::~PtracePlatform() = default;

Result<std::unique_ptr<PtracePlatform>> PtracePlatform::Create(int memfd) {
  if (static_cast<size_t>(husk_stub_end - husk_stub_begin) > kStubSize) return Errno{E2BIG};
  std::unique_ptr<PtracePlatform> p(new PtracePlatform(memfd));
  ASSIGN_OR_RETURN(p->stub_filter_, BuildStubFilter(memfd));
  p->master_ = std::make_unique<MasterStub>();
  TRY(p->master_->Start(p->stub_filter_));
  return p;
}

Result<std::unique_ptr<AddressSpace>> PtracePlatform::NewAddressSpace() {
  ASSIGN_OR_RETURN(pid_t pid, master_->NewProcess());
  auto th = SeizeStubThread(pid);
  if (!th.ok()) {
    kill(pid, SIGKILL);  // parked and untraced, a child of the master: the host reaps it
    return Errno{th.error()};
  }
  // The new stub dies with the master; if the master is already gone (its
  // parent is not the master any more), so is this stub.
  auto as = std::make_unique<PtraceAddressSpace>(*th);
  as->memfd_for_inject = memfd_;
  StubThread& self = *as->Self();
  auto set =
      InjectInto(self, StubSyscallAddress(), SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0, 0);
  auto parent = InjectInto(self, StubSyscallAddress(), SYS_getppid, 0, 0, 0, 0, 0, 0);
  if (!set.ok() || *set != 0 || !parent.ok() || *parent != master_->pid()) return Errno{ESRCH};
  return std::unique_ptr<AddressSpace>(std::move(as));
}

pid_t PtracePlatform::StubPid(AddressSpace& as) {
  return static_cast<PtraceAddressSpace&>(as).pid();
}

pid_t PtracePlatform::MasterPid() const { return master_->pid(); }

std::unique_ptr<Context> PtracePlatform::NewContext() { return std::make_unique<PtraceContext>(); }

}  // namespace husk::platform
