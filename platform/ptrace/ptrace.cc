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

#include "platform/ptrace/stub_process.h"

namespace husk::platform {
namespace {

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
    ASSIGN_OR_RETURN(CpuUsage u, StubProcessUsage(pid_));
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

class PtraceContext : public Context {
 public:
  // Any signal stops a traced stub thread; SIGURG does nothing else if it
  // leaks.
  void Interrupt() override { gate_.Interrupt(); }

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
    return gate_.Run(pas.pid(), th->tid, [&] { return Run(pas, *th, regs); });
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
        gate_.Answered();
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

  // The stub thread Switch runs, and an interrupt asked for.
  RunGate gate_;
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
