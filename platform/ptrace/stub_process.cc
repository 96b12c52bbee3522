#include "platform/ptrace/stub_process.h"

#include <asm/prctl.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/fd.h"

extern "C" {
extern char husk_stub_syscall[];
extern char husk_stub_clone[];
}

namespace husk::platform {
namespace {

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

// Exports a libseccomp filter as a struct sock_filter array (and releases
// it); rc: the OR of the rule_add results, nonzero if any failed.
Result<std::vector<unsigned char>> Export(scmp_filter_ctx ctx, int rc) {
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

// Puts in front of filter a check that returns `outside` for a syscall made
// from anywhere but the stub's page, and goes on to the filter's own rules
// otherwise (their jumps are relative, so they stand unchanged). The kernel
// gives the address after the syscall instruction: a call from the page has
// one in (kStubBase, kStubBase + kStubSize]. Classic BPF loads 32-bit words,
// so the address is compared in halves.
void PrependStubPageCheck(std::vector<unsigned char>& filter, uint32_t outside) {
  constexpr uint32_t kIpLow = offsetof(seccomp_data, instruction_pointer);
  constexpr auto kHigh = static_cast<uint32_t>(kStubBase >> 32);
  constexpr auto kLow = static_cast<uint32_t>(kStubBase);
  static_assert(uint64_t{kLow} + kStubSize <= UINT32_MAX, "the stub page straddles 4 GiB");
  const sock_filter prologue[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kIpLow + 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kHigh, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kIpLow),
      BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, kLow, 0, 1),
      BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, kLow + static_cast<uint32_t>(kStubSize), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, outside),
  };
  const auto* bytes = reinterpret_cast<const unsigned char*>(prologue);
  filter.insert(filter.begin(), bytes, bytes + sizeof(prologue));
}

// What systrap's handler calls while the application runs (stub.S): maps
// of its control slots (systrap_fd), the hand-over (futex), the way back
// (rt_sigreturn), a new thread's signal stack and mask and its clone, and
// the application's thread pointer (arch_prctl). Both of systrap's filters
// allow these.
int AllowHandlerCalls(scmp_filter_ctx ctx, int systrap_fd) {
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 2,
                            SCMP_A3(SCMP_CMP_EQ, MAP_SHARED | MAP_FIXED),
                            SCMP_A4(SCMP_CMP_EQ, static_cast<scmp_datum_t>(systrap_fd)));
  for (int nr :
       {SCMP_SYS(futex), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack), SCMP_SYS(rt_sigprocmask)}) {
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  }
  for (int code : {ARCH_SET_FS, ARCH_SET_GS}) {
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(arch_prctl), 1,
                           SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(code)));
  }
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_EQ, kStubThreadFlags | CLONE_CHILD_CLEARTID));
  return rc;
}

// Systrap's set-up, injected once per stub before it is let go: the runtime
// filter on top (seccomp(SET_MODE_FILTER, 0)) and no core dumps (a stub the
// application kills with a forced signal must not hand the sandbox's memory
// to the host's crash collector).
int AllowFilterInstall(scmp_filter_ctx ctx, int systrap_fd) {
  if (systrap_fd < 0) return 0;
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 2,
                            SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER), SCMP_A1(SCMP_CMP_EQ, 0));
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2,
                         SCMP_A0(SCMP_CMP_EQ, PR_SET_DUMPABLE), SCMP_A1(SCMP_CMP_EQ, 0));
  return rc;
}

}  // namespace

uintptr_t StubSyscallAddress() {
  return kStubBase + static_cast<uintptr_t>(husk_stub_syscall - husk_stub_begin);
}

// Waits for pid, retrying on EINTR; ru, if given, receives what a stub
// that has died used (wait4(2)).
int WaitFor(pid_t pid, int* status, struct rusage* ru) {
  int r;
  do {
    r = static_cast<int>(wait4(pid, status, __WALL, ru));
  } while (r < 0 && errno == EINTR);
  return r;
}

int64_t Nanoseconds(const timeval& tv) {
  return static_cast<int64_t>(tv.tv_sec) * 1000000000 + static_cast<int64_t>(tv.tv_usec) * 1000;
}

namespace {
constexpr int kCpuClockProf = 0;   // user + system
constexpr int kCpuClockVirt = 1;   // user
constexpr int kCpuClockSched = 2;  // the scheduler's runtime

// A CPU clock of another process (clock_getcpuclockid(3) builds the same
// id): Linux lets any process in the PID namespace read it.

Result<int64_t> ProcessCpuClock(pid_t pid, int which) {
  const clockid_t id = (~static_cast<clockid_t>(pid) << 3) | which;
  timespec ts;
  if (clock_gettime(id, &ts) != 0) return Errno{errno};
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
}  // namespace

Result<CpuUsage> StubProcessUsage(pid_t pid) {
  CpuUsage u;
  ASSIGN_OR_RETURN(u.user, ProcessCpuClock(pid, kCpuClockVirt));
  ASSIGN_OR_RETURN(int64_t prof, ProcessCpuClock(pid, kCpuClockProf));
  ASSIGN_OR_RETURN(u.runtime, ProcessCpuClock(pid, kCpuClockSched));
  u.system = std::max<int64_t>(prof - u.user, 0);
  return u;
}

void RunGate::Interrupt() {
  interrupt_.store(true);
  // tgkill, because kill() may pick any thread of the stub.
  const uint64_t running = running_.load();
  if (running != 0) {
    syscall(SYS_tgkill, static_cast<pid_t>(running >> 32), static_cast<pid_t>(running & 0xffffffff),
            SIGURG);
  }
}

Result<std::vector<unsigned char>> BuildStubFilter(int memfd, int systrap_fd) {
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
  if (systrap_fd >= 0) {
    // The systrap handler's own calls, and the set-up the sentry injects
    // once per process (rt_sigaction, set_tid_address).
    rc |= AllowHandlerCalls(ctx, systrap_fd);
    for (int nr : {SCMP_SYS(rt_sigaction), SCMP_SYS(set_tid_address)}) {
      rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
  }
  rc |= AllowFilterInstall(ctx, systrap_fd);
  auto out = Export(ctx, rc);
  if (!out.ok() || systrap_fd < 0) return out;
  // Systrap: a syscall made outside the stub's page traps before any rule
  // above is looked at.
  PrependStubPageCheck(*out, SECCOMP_RET_TRAP);
  return out;
}

Result<std::vector<unsigned char>> BuildSystrapRuntimeFilter(int memfd, int systrap_fd) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (ctx == nullptr) return Errno{ENOMEM};
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 2,
                            SCMP_A3(SCMP_CMP_EQ, MAP_SHARED | MAP_FIXED),
                            SCMP_A4(SCMP_CMP_EQ, static_cast<scmp_datum_t>(memfd)));
  for (int nr : {SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(exit)}) {
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  }
  rc |= AllowHandlerCalls(ctx, systrap_fd);
  auto out = Export(ctx, rc);
  if (!out.ok()) return out;
  // Outside the stub's page this filter has no say: the first one traps.
  PrependStubPageCheck(*out, SECCOMP_RET_ALLOW);
  return out;
}

pid_t HostTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

uintptr_t StubCloneAddress() {
  return kStubBase + static_cast<uintptr_t>(husk_stub_clone - husk_stub_begin);
}

// Runs one syscall in a stopped stub thread: the registers point at the
// stub's "syscall; int3" (or the clone entry) and the tracer waits for the
// trap that follows.
// Points a stopped stub thread at `rip` with syscall nr and its arguments
// in the registers, and resumes it.
Status StartInjection(const StubThread& th, uintptr_t rip, long nr, uint64_t a0, uint64_t a1,
                      uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
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

size_t XstateSize() {
  static const size_t size = [] {
    unsigned a = 0xD, b = 0, c = 0, d = 0;
    asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return std::max<size_t>(b, 512 + 64);
  }();
  return size;
}

MasterStub::~MasterStub() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status MasterStub::Start(const std::vector<unsigned char>& filter) {
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

Result<pid_t> MasterStub::NewProcess() {
  Request req;
  std::unique_lock<std::mutex> l(mu_);
  if (dead_) return Errno{EAGAIN};
  queue_.push_back(&req);
  cv_.notify_all();
  cv_.wait(l, [&req] { return req.done; });
  if (req.result < 0) return Errno{static_cast<int>(-req.result)};
  return static_cast<pid_t>(req.result);
}

void MasterStub::Serve(const std::vector<unsigned char>& filter) {
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
int MasterStub::Fork(const std::vector<unsigned char>& filter) {
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

}  // namespace husk::platform
