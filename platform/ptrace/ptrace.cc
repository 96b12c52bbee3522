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
#include <cstring>

extern "C" {
extern char husk_stub_begin[];
extern char husk_stub_syscall[];
extern char husk_stub_end[];
}

namespace husk::platform {
namespace {

uintptr_t StubSyscallAddress() {
  return kStubBase + static_cast<uintptr_t>(husk_stub_syscall - husk_stub_begin);
}

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
// may be multi-threaded). Never returns.
[[noreturn]] void StubChild(pid_t parent, const unsigned char* filter, size_t filter_len) {
  syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != parent) _exit(1);
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

class PtraceAddressSpace : public AddressSpace {
 public:
  PtraceAddressSpace(pid_t pid, const Registers& init) : pid_(pid), init_regs_(init) {}
  ~PtraceAddressSpace() override {
    if (reaped_) return;
    kill(pid_, SIGKILL);
    int status;
    WaitFor(pid_, &status);
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

  pid_t pid() const { return pid_; }
  // Once the stub's exit status has been collected its pid is free for any
  // new process (another stub included): never signal, trace or wait for it again.
  bool reaped() const { return reaped_; }
  int exit_status() const { return exit_status_; }
  void SetReaped(int status, const struct rusage& ru) {
    reaped_ = true;
    exit_status_ = status;
    final_usage_.user = Nanoseconds(ru.ru_utime);
    final_usage_.system = Nanoseconds(ru.ru_stime);
    final_usage_.runtime = final_usage_.user + final_usage_.system;
  }

  // The stub's CPU clocks while it lives (a zombie's still read); once
  // reaped, its pid may name another process, so what wait4 reported.
  Result<CpuUsage> Usage() override {
    if (reaped_) return final_usage_;
    CpuUsage u;
    ASSIGN_OR_RETURN(u.user, ProcessCpuClock(pid_, kCpuClockVirt));
    ASSIGN_OR_RETURN(int64_t prof, ProcessCpuClock(pid_, kCpuClockProf));
    ASSIGN_OR_RETURN(u.runtime, ProcessCpuClock(pid_, kCpuClockSched));
    u.system = std::max<int64_t>(prof - u.user, 0);
    return u;
  }
  int last_cpu = -1;
  int memfd_for_inject = -1;

 private:
  // Runs one syscall in the stub: the registers point at the stub's
  // "syscall; int3" and the tracer waits for the trap that follows.
  Result<long> Inject(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                      uint64_t a5) {
    if (reaped_) return Errno{ESRCH};
    Registers r = init_regs_;
    r.rip = StubSyscallAddress();
    r.rax = static_cast<uint64_t>(nr);
    r.orig_rax = ~0ULL;
    r.rdi = a0;
    r.rsi = a1;
    r.rdx = a2;
    r.r10 = a3;
    r.r8 = a4;
    r.r9 = a5;
    if (ptrace(PTRACE_SETREGS, pid_, nullptr, &r) != 0) return Errno{errno};
    if (ptrace(PTRACE_CONT, pid_, nullptr, nullptr) != 0) return Errno{errno};
    for (;;) {
      int status;
      struct rusage ru {};
      if (WaitFor(pid_, &status, &ru) < 0) return Errno{errno};
      if (!WIFSTOPPED(status)) {
        SetReaped(status, ru);
        return Errno{ESRCH};
      }
      if (WSTOPSIG(status) == SIGTRAP) break;
      // Some other stop (e.g. a stray SIGSTOP): suppress it and go on.
      if (ptrace(PTRACE_CONT, pid_, nullptr, nullptr) != 0) return Errno{errno};
    }
    if (ptrace(PTRACE_GETREGS, pid_, nullptr, &r) != 0) return Errno{errno};
    return static_cast<long>(r.rax);
  }

  pid_t pid_;
  bool reaped_ = false;
  int exit_status_ = 0;
  CpuUsage final_usage_;
  Registers init_regs_;
};

// Collects a stub that is no longer in a ptrace stop: between switches that
// means it was killed (from outside, by the OOM killer, by its own seccomp
// filter), so report its death rather than the ptrace error.
Result<StopInfo> CollectDeadStub(PtraceAddressSpace& pas) {
  int status;
  struct rusage ru {};
  if (WaitFor(pas.pid(), &status, &ru) < 0) return Errno{errno};
  if (WIFSTOPPED(status)) return Errno{ESRCH};
  pas.SetReaped(status, ru);
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
    pid_t pid = running_.load();
    // Any signal stops a traced stub; SIGURG does nothing else if it leaks.
    if (pid > 0) kill(pid, SIGURG);
  }

  Result<std::vector<uint8_t>> GetFpState(AddressSpace& as) override {
    auto& pas = static_cast<PtraceAddressSpace&>(as);
    if (pas.reaped()) return Errno{ESRCH};
    std::vector<uint8_t> buf(XstateSize());
    iovec iov{buf.data(), buf.size()};
    if (ptrace(PTRACE_GETREGSET, pas.pid(), NT_X86_XSTATE, &iov) != 0) return Errno{errno};
    buf.resize(iov.iov_len);
    return buf;
  }

  Status SetFpState(AddressSpace& as, const std::vector<uint8_t>& state) override {
    auto& pas = static_cast<PtraceAddressSpace&>(as);
    if (pas.reaped()) return Errno{ESRCH};
    std::vector<uint8_t> buf = state;
    iovec iov{buf.data(), buf.size()};
    if (ptrace(PTRACE_SETREGSET, pas.pid(), NT_X86_XSTATE, &iov) != 0) return Errno{errno};
    return Ok();
  }

  Result<StopInfo> Switch(AddressSpace& as, Registers& regs) override {
    auto& pas = static_cast<PtraceAddressSpace&>(as);
    running_.store(pas.pid());
    struct Clear {
      std::atomic<pid_t>& r;
      ~Clear() { r.store(0); }
    } clear{running_};
    if (interrupt_.exchange(false)) {
      StopInfo stop;
      stop.kind = StopInfo::Kind::kInterrupted;
      return stop;
    }
    return Run(pas, regs);
  }

 private:
  Result<StopInfo> Run(PtraceAddressSpace& pas, Registers& regs) {
    if (pas.reaped()) {
      StopInfo stop;
      stop.kind = StopInfo::Kind::kExited;
      stop.status = pas.exit_status();
      return stop;
    }
    pid_t pid = pas.pid();
    auto failed = [&](int err) -> Result<StopInfo> {
      if (err == ESRCH) return CollectDeadStub(pas);
      return Errno{err};
    };
    // A SYSEMU stop and resume costs ~10us on one core and ~65us across
    // cores in these VMs: keep the stub on the tracer's current CPU.
    int cpu = sched_getcpu();
    if (cpu >= 0 && cpu != pas.last_cpu) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      sched_setaffinity(pid, sizeof(set), &set);
      pas.last_cpu = cpu;
    }
    if (ptrace(PTRACE_SETREGS, pid, nullptr, &regs) != 0) return failed(errno);
    if (ptrace(PTRACE_SYSEMU, pid, nullptr, nullptr) != 0) return failed(errno);
    for (;;) {
      int status;
      struct rusage ru {};
      if (WaitFor(pid, &status, &ru) < 0) return Errno{errno};
      StopInfo stop;
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        pas.SetReaped(status, ru);
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

  std::atomic<pid_t> running_{0};  // the stub being run, while Switch runs
  std::atomic<bool> interrupt_{false};
};

}  // namespace

bool PtracePlatform::ReserveStubRange() {
  void* p = mmap(reinterpret_cast<void*>(kStubBase), kStubSize, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
  return p == reinterpret_cast<void*>(kStubBase);
}

Result<std::unique_ptr<PtracePlatform>> PtracePlatform::Create(int memfd) {
  if (static_cast<size_t>(husk_stub_end - husk_stub_begin) > kStubSize) return Errno{E2BIG};
  std::unique_ptr<PtracePlatform> p(new PtracePlatform(memfd));
  ASSIGN_OR_RETURN(p->stub_filter_, BuildStubFilter(memfd));
  return p;
}

Result<std::unique_ptr<AddressSpace>> PtracePlatform::NewAddressSpace() {
  pid_t parent = getpid();
  const unsigned char* filter = stub_filter_.data();
  size_t filter_len = stub_filter_.size();
  long pid = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) return Errno{errno};
  if (pid == 0) StubChild(parent, filter, filter_len);
  int status;
  if (WaitFor(static_cast<pid_t>(pid), &status) < 0 || !WIFSTOPPED(status) ||
      WSTOPSIG(status) != SIGSTOP) {
    kill(static_cast<pid_t>(pid), SIGKILL);
    if (!WIFEXITED(status) && !WIFSIGNALED(status)) WaitFor(static_cast<pid_t>(pid), &status);
    return Errno{ECHILD};
  }
  if (ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) != 0) {
    int err = errno;
    kill(static_cast<pid_t>(pid), SIGKILL);
    WaitFor(static_cast<pid_t>(pid), &status);
    return Errno{err};
  }
  Registers regs;
  if (ptrace(PTRACE_GETREGS, pid, nullptr, &regs) != 0) return Errno{errno};
  auto as = std::make_unique<PtraceAddressSpace>(static_cast<pid_t>(pid), regs);
  as->memfd_for_inject = memfd_;
  return std::unique_ptr<AddressSpace>(std::move(as));
}

std::unique_ptr<Context> PtracePlatform::NewContext() { return std::make_unique<PtraceContext>(); }

}  // namespace husk::platform
