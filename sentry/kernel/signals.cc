// Signal generation and delivery (signal(7)): queues, default actions,
// handler frames in the x86_64 rt_sigframe layout, rt_sigreturn, and the
// restart of interrupted syscalls.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/signalfd.h"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

namespace husk {
namespace {

constexpr uint64_t Bit(int sig) { return SignalBit(sig); }
constexpr uint64_t kUnblockable = kUnblockableSignals;

enum class Default { kTerm, kCore, kIgnore, kStop };

Default DefaultAction(int sig) {
  switch (sig) {
    case SIGQUIT:
    case SIGILL:
    case SIGABRT:
    case SIGFPE:
    case SIGSEGV:
    case SIGBUS:
    case SIGSYS:
    case SIGTRAP:
    case SIGXCPU:
    case SIGXFSZ:
      return Default::kCore;
    case SIGCHLD:
    case SIGURG:
    case SIGWINCH:
    case SIGCONT:
      return Default::kIgnore;
    case SIGSTOP:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
      return Default::kStop;
    default:
      return Default::kTerm;
  }
}

bool IsIgnored(const SigAction& act, int sig) {
  if (act.handler == reinterpret_cast<uint64_t>(SIG_IGN)) return true;
  return act.handler == reinterpret_cast<uint64_t>(SIG_DFL) &&
         DefaultAction(sig) == Default::kIgnore;
}

// The kernel's struct sigcontext (x86_64), 256 bytes.
struct SigContext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2;
  uint64_t fpstate;
  uint64_t reserved[8];
};
static_assert(sizeof(SigContext) == 256);

// The kernel's struct ucontext with its 8-byte sigset.
struct UContext {
  uint64_t flags;
  uint64_t link;
  uint64_t ss_sp;
  int32_t ss_flags;
  int32_t pad;
  uint64_t ss_size;
  SigContext mcontext;
  uint64_t sigmask;
};
static_assert(sizeof(UContext) == 304);

struct RtSigframe {
  uint64_t pretcode;  // where the handler returns: sa_restorer
  UContext uc;
  siginfo_t info;
};
static_assert(sizeof(RtSigframe) == 440);

constexpr uint64_t kUcFpXstate = 0x1;
constexpr uint64_t kUcSigcontextSs = 0x2;
constexpr uint64_t kUcStrictRestoreSs = 0x4;
constexpr uint32_t kFpXstateMagic1 = 0x46505853;
constexpr uint32_t kFpXstateMagic2 = 0x46505845;
// Flags the application may change through sigreturn (arch/x86 FIX_EFLAGS).
constexpr uint64_t kFixEflags =
    0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;
constexpr uint64_t kEflagsTf = 0x100, kEflagsDf = 0x400, kEflagsRf = 0x10000;

bool OnStack(const stack_t& ss, uint64_t sp) {
  auto base = reinterpret_cast<uint64_t>(ss.ss_sp);
  return !(ss.ss_flags & SS_DISABLE) && sp > base && sp - base <= ss.ss_size;
}

}  // namespace

siginfo_t MakeSigInfo(int sig, int code, int pid, uint32_t uid) {
  siginfo_t info;
  memset(&info, 0, sizeof(info));
  info.si_signo = sig;
  info.si_code = code;
  info.si_pid = pid;
  info.si_uid = uid;
  return info;
}

bool Task::SendSignal(const siginfo_t& info) {
  int sig = info.si_signo;
  if (sig < 1 || sig > kMaxSignal || exiting_) return false;
  // Job control acts when the signal is generated (signal(7)): SIGCONT
  // resumes a stopped process and cancels pending stops, whatever its
  // disposition; a stop signal cancels a pending SIGCONT.
  constexpr uint64_t kStops = Bit(SIGSTOP) | Bit(SIGTSTP) | Bit(SIGTTIN) | Bit(SIGTTOU);
  if (sig == SIGCONT) {
    for (int stop : {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}) DropPending(stop);
    if (stopped_) {
      stopped_ = false;
      stop_report = 0;
      cont_report = true;
      NotifyParent(CLD_CONTINUED, SIGCONT);
      Wake();
    }
  } else if (kStops & Bit(sig)) {
    DropPending(SIGCONT);
  }
  // A signal that would be ignored is dropped at once, unless blocked (then
  // it waits: the disposition may change before it is unblocked).
  if (!(sigmask & Bit(sig)) && IsIgnored(sigactions[sig], sig) && sig != SIGKILL) return false;
  auto& q = sigqueue_[sig];
  // Standard signals do not queue; real-time ones do (up to RLIMIT_SIGPENDING).
  if (sig < SIGRTMIN) {
    if (!q.empty()) return true;
  } else if (queued_ >= rlimits[RLIMIT_SIGPENDING].rlim_cur) {
    return false;
  }
  q.push_back(info);
  queued_++;
  pending_signals |= Bit(sig);
  signalfd::NotifySignal(*this, sig);
  Wake();
  return true;
}

void Task::DropPending(int sig) {
  queued_ -= sigqueue_[sig].size();
  sigqueue_[sig].clear();
  pending_signals &= ~Bit(sig);
}

int Task::DumpStatus(int sig) const {
  // The sandbox writes no core file; the flag follows RLIMIT_CORE as Linux's
  // would with a core pattern that accepts the dump.
  return sig | (rlimits[RLIMIT_CORE].rlim_cur != 0 ? 0x80 : 0);
}

void Task::Wake() {
  waiter.Notify();
  if (ctx_ != nullptr) ctx_->Interrupt();
}

void Task::ForceSignal(const siginfo_t& info) {
  int sig = info.si_signo;
  // force_sig_info: a blocked or ignored synchronous signal takes its
  // default action (the program cannot continue past the fault).
  bool blocked = (sigmask & Bit(sig)) != 0;
  if (blocked || sigactions[sig].handler == reinterpret_cast<uint64_t>(SIG_IGN)) {
    sigactions[sig] = SigAction{};
    sigmask &= ~Bit(sig);
  }
  SendSignal(info);
}

bool Task::DequeueSignal(uint64_t allowed, siginfo_t* out) {
  uint64_t ready = pending_signals & allowed;
  if (ready == 0) return false;
  int sig = __builtin_ctzll(ready) + 1;
  // Synchronous faults go first, as Linux's SYNCHRONOUS_MASK does.
  constexpr uint64_t kSync =
      Bit(SIGSEGV) | Bit(SIGBUS) | Bit(SIGILL) | Bit(SIGTRAP) | Bit(SIGFPE) | Bit(SIGSYS);
  if (ready & kSync) sig = __builtin_ctzll(ready & kSync) + 1;
  auto& q = sigqueue_[sig];
  *out = q.front();
  q.pop_front();
  queued_--;
  if (q.empty()) pending_signals &= ~Bit(sig);
  if (out->si_code == SI_TIMER) kernel().posix_timers.OnDequeue(*this, out);
  return true;
}

void Task::RestartSyscall(bool handler_runs, const SigAction* act) {
  auto ret = static_cast<int64_t>(regs.rax);
  bool restart;
  switch (-ret) {
    case kERestartNoHand:
    case kERestartBlock:
      restart = !handler_runs;
      break;
    case kERestartSys:
      restart = !handler_runs || (act->flags & SA_RESTART);
      break;
    case kERestartNoIntr:
      restart = true;
      break;
    default:
      return;
  }
  if (restart) {
    // Back over the 2-byte `syscall` instruction, with the number again.
    regs.rax = regs.orig_rax;
    regs.rip -= 2;
  } else {
    regs.rax = static_cast<uint64_t>(-EINTR);
  }
}

void Task::DeliverSignals(bool after_syscall) {
  for (;;) {
    if (exiting_) return;
    siginfo_t info;
    if (!DequeueSignal(~sigmask | kUnblockable, &info)) break;
    int sig = info.si_signo;
    SigAction& act = sigactions[sig];
    if (sig == SIGKILL) {
      Exit(SIGKILL);
      return;
    }
    if (act.handler == reinterpret_cast<uint64_t>(SIG_IGN)) continue;
    if (act.handler == reinterpret_cast<uint64_t>(SIG_DFL)) {
      switch (DefaultAction(sig)) {
        case Default::kIgnore:
          continue;
        case Default::kStop:
          Stop(sig);
          if (exiting_) return;
          continue;
        case Default::kTerm:
          Exit(sig);
          return;
        case Default::kCore:
          Exit(DumpStatus(sig));
          return;
      }
    }
    if (after_syscall) {
      RestartSyscall(true, &act);
      after_syscall = false;
    }
    if (!SetupFrame(info, act)) {
      // No room for the frame (a bad stack): Linux's force_sigsegv.
      Exit(DumpStatus(SIGSEGV));
      return;
    }
    // One frame per return to the application; further pending signals
    // are delivered when the handler's first instruction runs... which the
    // interrupt below makes happen at once.
    if ((pending_signals & ~sigmask) != 0) Wake();
    return;
  }
  if (after_syscall) RestartSyscall(false, nullptr);
  if (saved_sigmask_) {
    sigmask = *saved_sigmask_;
    saved_sigmask_.reset();
  }
}

void Task::NotifyParent(int code, int status) {
  std::shared_ptr<Task> parent = ppid != 0 ? kernel().FindTask(ppid) : nullptr;
  if (parent == nullptr) return;
  parent->kernel().mu.AssertHeld();  // one kernel, one big lock: the parent's is ours
  // SA_NOCLDSTOP: no SIGCHLD for stops and continues (wait4 still sees them).
  if (!(parent->sigactions[SIGCHLD].flags & SA_NOCLDSTOP)) {
    siginfo_t info = MakeSigInfo(SIGCHLD, code, tgid_, uid);
    info.si_status = status;
    parent->SendSignal(info);
  }
  parent->waiter.Notify();
}

void Task::Stop(int sig) {
  stopped_ = true;
  stop_report = sig;
  cont_report = false;
  NotifyParent(CLD_STOPPED, sig);
  // Stay in the sentry until SIGCONT (which clears stopped_ when sent) or
  // SIGKILL; other signals stay pending meanwhile.
  while (stopped_ && !(pending_signals & Bit(SIGKILL)) && !exiting_) {
    uint64_t mask = sigmask;
    sigmask = ~Bit(SIGKILL);  // only SIGKILL ends the wait early
    (void)Block();
    sigmask = mask;
  }
  if (pending_signals & Bit(SIGKILL)) {
    stopped_ = false;
    Exit(SIGKILL);
  }
}

bool Task::SetupFrame(const siginfo_t& info, SigAction& act) {
  int sig = info.si_signo;
  uint64_t sp = regs.rsp - 128;  // the red zone of the interrupted code
  stack_t saved_stack = altstack;
  bool on_stack = OnStack(altstack, regs.rsp);
  if ((act.flags & SA_ONSTACK) && !(altstack.ss_flags & SS_DISABLE) && !on_stack) {
    sp = reinterpret_cast<uint64_t>(altstack.ss_sp) + altstack.ss_size;
  }
  auto fp = ctx_->GetFpState(mm_->address_space());
  if (!fp.ok()) return false;
  std::vector<uint8_t>& xstate = *fp;
  size_t xsize = xstate.size();
  // The FPU state sits above the frame, 64-byte aligned, followed by magic2.
  uint64_t fp_addr = (sp - xsize - 4) & ~uint64_t{63};
  uint64_t frame_addr = ((fp_addr - sizeof(RtSigframe)) & ~uint64_t{15}) - 8;

  // Mark the area as a signal frame's xstate (struct _fpx_sw_bytes).
  if (xsize >= 512 + 48) {
    uint64_t xfeatures;
    memcpy(&xfeatures, xstate.data() + 464, sizeof(xfeatures));  // ptrace puts XCR0 here
    uint32_t sw[12] = {};
    sw[0] = kFpXstateMagic1;
    sw[1] = static_cast<uint32_t>(xsize + 4);
    memcpy(&sw[2], &xfeatures, sizeof(xfeatures));
    sw[4] = static_cast<uint32_t>(xsize);
    memcpy(xstate.data() + 464, sw, sizeof(sw));
  }
  RtSigframe f;
  memset(&f, 0, sizeof(f));
  f.pretcode = act.restorer;
  f.uc.flags = kUcFpXstate | kUcSigcontextSs | kUcStrictRestoreSs;
  f.uc.ss_sp = reinterpret_cast<uint64_t>(saved_stack.ss_sp);
  f.uc.ss_flags = (saved_stack.ss_flags & SS_DISABLE)
                      ? SS_DISABLE
                      : static_cast<int32_t>((on_stack ? SS_ONSTACK : 0) |
                                             (saved_stack.ss_flags & SS_AUTODISARM));
  f.uc.ss_size = saved_stack.ss_size;
  SigContext& sc = f.uc.mcontext;
  sc.r8 = regs.r8, sc.r9 = regs.r9, sc.r10 = regs.r10, sc.r11 = regs.r11;
  sc.r12 = regs.r12, sc.r13 = regs.r13, sc.r14 = regs.r14, sc.r15 = regs.r15;
  sc.rdi = regs.rdi, sc.rsi = regs.rsi, sc.rbp = regs.rbp, sc.rbx = regs.rbx;
  sc.rdx = regs.rdx, sc.rax = regs.rax, sc.rcx = regs.rcx, sc.rsp = regs.rsp;
  sc.rip = regs.rip, sc.eflags = regs.eflags;
  sc.cs = static_cast<uint16_t>(regs.cs);
  sc.ss = static_cast<uint16_t>(regs.ss);
  sc.oldmask = saved_sigmask_ ? *saved_sigmask_ : sigmask;
  if (sig == SIGSEGV || sig == SIGBUS) sc.cr2 = reinterpret_cast<uint64_t>(info.si_addr);
  sc.fpstate = fp_addr;
  f.uc.sigmask = sc.oldmask;
  f.info = info;

  uint32_t magic2 = kFpXstateMagic2;
  if (!mm_->CopyOut(frame_addr, &f, sizeof(f)).ok() ||
      !mm_->CopyOut(fp_addr, xstate.data(), xsize).ok() ||
      !mm_->CopyOut(fp_addr + xsize, &magic2, sizeof(magic2)).ok()) {
    return false;
  }
  saved_sigmask_.reset();

  regs.rdi = static_cast<uint64_t>(sig);
  regs.rsi = frame_addr + offsetof(RtSigframe, info);
  regs.rdx = frame_addr + offsetof(RtSigframe, uc);
  regs.rax = 0;
  regs.rsp = frame_addr;
  regs.rip = act.handler;
  regs.eflags &= ~(kEflagsTf | kEflagsDf | kEflagsRf);
  if ((act.flags & SA_ONSTACK) && (altstack.ss_flags & SS_AUTODISARM) && !on_stack) {
    altstack = stack_t{nullptr, SS_DISABLE, 0};
  }
  sigmask |= act.mask;
  if (!(act.flags & SA_NODEFER)) sigmask |= Bit(sig);
  sigmask &= ~kUnblockable;
  if (act.flags & SA_RESETHAND) act = SigAction{};
  return true;
}

Result<long> Task::SigReturn() {
  // The handler's `ret` popped pretcode: the frame starts 8 bytes below.
  uint64_t frame_addr = regs.rsp - 8;
  RtSigframe f;
  if (!mm_->CopyIn(frame_addr, &f, sizeof(f)).ok()) return Errno{EFAULT};
  const SigContext& sc = f.uc.mcontext;
  regs.r8 = sc.r8, regs.r9 = sc.r9, regs.r10 = sc.r10, regs.r11 = sc.r11;
  regs.r12 = sc.r12, regs.r13 = sc.r13, regs.r14 = sc.r14, regs.r15 = sc.r15;
  regs.rdi = sc.rdi, regs.rsi = sc.rsi, regs.rbp = sc.rbp, regs.rbx = sc.rbx;
  regs.rdx = sc.rdx, regs.rax = sc.rax, regs.rcx = sc.rcx, regs.rsp = sc.rsp;
  regs.rip = sc.rip;
  regs.eflags = (regs.eflags & ~kFixEflags) | (sc.eflags & kFixEflags);
  regs.orig_rax = ~0ULL;  // no syscall restart after a sigreturn
  sigmask = f.uc.sigmask & ~kUnblockable;
  if (sc.fpstate != 0) {
    auto cur = ctx_->GetFpState(mm_->address_space());
    if (!cur.ok()) return Errno{EFAULT};
    std::vector<uint8_t> xstate(cur->size());
    if (!mm_->CopyIn(sc.fpstate, xstate.data(), xstate.size()).ok()) return Errno{EFAULT};
    // Keep the host's own marker where ptrace expects it.
    memcpy(xstate.data() + 464, cur->data() + 464, std::min<size_t>(48, cur->size() - 464));
    if (!ctx_->SetFpState(mm_->address_space(), xstate).ok()) return Errno{EFAULT};
  }
  // sigaltstack as saved in the frame (errors leave it as it is).
  // (Not while running on the alternate stack, which cannot change then.)
  if (!OnStack(altstack, regs.rsp)) {
    if (f.uc.ss_flags & SS_DISABLE) {
      altstack = stack_t{nullptr, SS_DISABLE, 0};
    } else if (!(f.uc.ss_flags & SS_ONSTACK) &&
               f.uc.ss_size >= static_cast<uint64_t>(MINSIGSTKSZ)) {
      altstack = stack_t{reinterpret_cast<void*>(f.uc.ss_sp),
                         static_cast<int>(f.uc.ss_flags & static_cast<int32_t>(SS_AUTODISARM)),
                         f.uc.ss_size};
    }
  }
  return static_cast<long>(regs.rax);
}

}  // namespace husk
