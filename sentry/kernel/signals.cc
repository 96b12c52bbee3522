// Signal generation and delivery (signal(7)): queues, default actions,
// handler frames in the x86_64 rt_sigframe layout, rt_sigreturn, and the
// restart of interrupted syscalls.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

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

ChildExit ChildExitOf(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    return {WCOREDUMP(wait_status) ? CLD_DUMPED : CLD_KILLED, WTERMSIG(wait_status)};
  }
  return {CLD_EXITED, WEXITSTATUS(wait_status)};
}

bool SignalQueue::Push(const siginfo_t& info, uint64_t limit) {
  int sig = info.si_signo;
  auto& q = q_[sig];
  // Standard signals do not queue; real-time ones do (up to RLIMIT_SIGPENDING).
  if (sig < SIGRTMIN) {
    if (!q.empty()) return true;
  } else if (queued_ >= limit) {
    return false;
  }
  q.push_back(info);
  queued_++;
  pending_ |= Bit(sig);
  return true;
}

void SignalQueue::Drop(int sig) {
  queued_ -= q_[sig].size();
  q_[sig].clear();
  pending_ &= ~Bit(sig);
}

bool SignalQueue::Take(uint64_t allowed, siginfo_t* out) {
  uint64_t ready = pending_ & allowed;
  if (ready == 0) return false;
  int sig = __builtin_ctzll(ready) + 1;
  // Synchronous faults go first, as Linux's SYNCHRONOUS_MASK does.
  constexpr uint64_t kSync =
      Bit(SIGSEGV) | Bit(SIGBUS) | Bit(SIGILL) | Bit(SIGTRAP) | Bit(SIGFPE) | Bit(SIGSYS);
  if (ready & kSync) sig = __builtin_ctzll(ready & kSync) + 1;
  auto& q = q_[sig];
  *out = q.front();
  q.pop_front();
  queued_--;
  if (q.empty()) pending_ &= ~Bit(sig);
  return true;
}

bool Task::PrepareSignal(int sig, uint64_t blocked) {
  ThreadGroup& g = *tg_;
  // Job control acts when the signal is generated (signal(7)): SIGCONT
  // resumes a stopped process and cancels pending stops, whatever its
  // disposition; a stop signal cancels a pending SIGCONT. Both act on the
  // process's queue and every thread's.
  constexpr uint64_t kStops = Bit(SIGSTOP) | Bit(SIGTSTP) | Bit(SIGTTIN) | Bit(SIGTTOU);
  auto drop = [&g](int s) {
    g.shared_pending.Drop(s);
    for (Task* t : g.threads) t->pending_.Drop(s);
  };
  if (sig == SIGCONT) {
    for (int stop : {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}) drop(stop);
    if (g.stopped) {
      g.stopped = false;
      g.stop_report = 0;
      g.cont_report = true;
      NotifyParent(CLD_CONTINUED, SIGCONT);
      for (Task* t : g.threads) t->Wake();
    }
  } else if (kStops & Bit(sig)) {
    drop(SIGCONT);
  }
  // A signal that would be ignored is dropped at once, unless blocked (then
  // it waits: the disposition may change before it is unblocked).
  return (blocked & Bit(sig)) || !IsIgnored(sighand_->actions[sig], sig) || sig == SIGKILL;
}

// A PID namespace's init (Linux's SIGNAL_UNKILLABLE, sig_task_ignored): a
// signal it leaves at SIG_DFL is dropped, SIGKILL and SIGSTOP included,
// unless those two come from outside the namespace (kill(2) by a host
// process: SI_USER with pid 0) or from the kernel. So `docker stop` finds
// a container's init that has no SIGTERM handler still running, and kills
// it after its timeout. A fault's signal still kills it (ForceSignal).
// husk do's command is not such an init: it keeps ordinary rules, as a
// command in husk_fence does.
bool Task::UnkillableInitDrops(const siginfo_t& info) const {
  if (!kernel_.container_init || tgid() != 1) return false;
  const int sig = info.si_signo;
  if (sighand_->actions[sig].handler != reinterpret_cast<uint64_t>(SIG_DFL)) return false;
  const bool from_outside =
      info.si_code == SI_KERNEL || (info.si_code == SI_USER && info.si_pid == 0);
  return !(from_outside && (sig == SIGKILL || sig == SIGSTOP));
}

bool Task::SendSignal(const siginfo_t& info, bool forced) {
  int sig = info.si_signo;
  if (sig < 1 || sig > kMaxSignal || exiting_) return false;
  if (!forced && UnkillableInitDrops(info)) return false;
  if (!PrepareSignal(sig, sigmask | real_blocked)) return false;
  if (!pending_.Push(info, tg_->rlimits[RLIMIT_SIGPENDING].rlim_cur)) return false;
  signalfd::NotifySignal(*this, sig);
  // A fatal SIGKILL takes the whole process (complete_signal).
  if (sig == SIGKILL && !tg_->exiting && tg_->execing == nullptr) {
    tg_->exiting = true;
    tg_->exit_code = SIGKILL;
    KillOtherThreads();
  }
  Wake();
  return true;
}

bool Task::SendProcessSignal(const siginfo_t& info) {
  int sig = info.si_signo;
  ThreadGroup& g = *tg_;
  if (sig < 1 || sig > kMaxSignal || g.zombie || g.threads.empty()) return false;
  if (UnkillableInitDrops(info)) return false;
  // Ignored unless the thread that would represent the process (the
  // leader while it lives) blocks it.
  Task* rep = g.threads.front();
  if (!PrepareSignal(sig, rep->sigmask | rep->real_blocked)) return false;
  if (sig == SIGKILL) {
    // Every thread dies at once, whatever it blocks (complete_signal).
    if (!g.exiting) {
      g.exiting = true;
      g.exit_code = SIGKILL;
    }
    for (Task* t : g.threads) {
      t->pending_.Push(info, UINT64_MAX);
      t->Wake();
    }
    return true;
  }
  if (!g.shared_pending.Push(info, g.rlimits[RLIMIT_SIGPENDING].rlim_cur)) return false;
  signalfd::NotifySignal(*this, sig);
  WakeSignalTarget(sig);
  return true;
}

void Task::WakeSignalTarget(int sig) {
  ThreadGroup& g = *tg_;
  // The leader if it does not block the signal, else the first other thread
  // that does not (Linux's complete_signal, without its round robin). If
  // every thread blocks it, it waits for one to unblock it.
  for (Task* t : g.threads) {
    if (!(t->sigmask & Bit(sig)) && !t->exiting_) {
      t->Wake();
      return;
    }
  }
}

void Task::SetSigmask(uint64_t mask) {
  uint64_t newly_blocked = mask & ~sigmask;
  sigmask = mask;
  // Retarget what this thread no longer takes (retarget_shared_pending).
  uint64_t shared = tg_->shared_pending.pending() & newly_blocked;
  for (int sig = 1; shared != 0 && sig <= kMaxSignal; sig++) {
    if (shared & Bit(sig)) WakeSignalTarget(sig);
  }
}

int Task::DumpStatus(int sig) const {
  // The sandbox writes no core file; the flag follows RLIMIT_CORE as Linux's
  // would with a core pattern that accepts the dump.
  return sig | (tg_->rlimits[RLIMIT_CORE].rlim_cur != 0 ? 0x80 : 0);
}

void Task::Wake() {
  waiter.Notify();
  if (ctx_ != nullptr) ctx_->Interrupt();
}

void Task::ForceSignal(const siginfo_t& info) {
  int sig = info.si_signo;
  // force_sig_info: a blocked or ignored synchronous signal takes its
  // default action (the program cannot continue past the fault).
  SigAction& act = sighand_->actions[sig];
  bool blocked = (sigmask & Bit(sig)) != 0;
  if (blocked || act.handler == reinterpret_cast<uint64_t>(SIG_IGN)) {
    act = SigAction{};
    sigmask &= ~Bit(sig);
  }
  SendSignal(info, /*forced=*/true);
}

bool Task::DequeueSignal(uint64_t allowed, siginfo_t* out) {
  if (!pending_.Take(allowed, out) && !tg_->shared_pending.Take(allowed, out)) return false;
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
    // A stopped process's threads wait here until SIGCONT or SIGKILL.
    if (tg_->stopped && !(pending_.pending() & Bit(SIGKILL))) WaitWhileStopped();
    // PTRACE_INTERRUPT (and a seized child's first stop).
    if (ptrace_ != nullptr && ptrace_->interrupt && !(pending_.pending() & Bit(SIGKILL))) {
      ptrace_->interrupt = false;
      PtraceStop((PTRACE_EVENT_STOP << 16) | (SIGTRAP << 8) | 0x7f, nullptr, 0);
      continue;
    }
    siginfo_t info;
    if (!DequeueSignal(~sigmask | kUnblockable, &info)) break;
    int sig = info.si_signo;
    if (sig == SIGKILL) {
      Exit(SIGKILL);
      return;
    }
    // Signal-delivery-stop: the tracer may let the signal through, change
    // it, or suppress it (resuming with 0).
    if (ptrace_ != nullptr) {
      const int to = PtraceStop((sig << 8) | 0x7f, &info, 0);
      if (exiting_) return;
      if (to == 0 || to > kMaxSignal) continue;
      if (ptrace_ != nullptr) info = ptrace_->siginfo;  // PTRACE_SETSIGINFO may have edited it
      if (to != sig) {
        info = MakeSigInfo(to, SI_USER, 0, 0);
        if (sigmask & Bit(to)) {
          SendSignal(info);  // blocked: it waits like any other
          continue;
        }
        sig = to;
      }
      if (sig == SIGKILL) {
        Exit(SIGKILL);
        return;
      }
    }
    SigAction& act = sighand_->actions[sig];
    if (act.handler == reinterpret_cast<uint64_t>(SIG_IGN)) continue;
    if (act.handler == reinterpret_cast<uint64_t>(SIG_DFL)) {
      switch (DefaultAction(sig)) {
        case Default::kIgnore:
          continue;
        case Default::kStop:
          if (ptrace_ != nullptr) {
            // A traced task's group-stop is the tracer's to end.
            const int seized = ptrace_->seized ? PTRACE_EVENT_STOP << 16 : 0;
            PtraceStop(seized | (sig << 8) | 0x7f, &info, 0);
            if (exiting_) return;
            continue;
          }
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
    if (SignalPending()) Wake();
    return;
  }
  if (after_syscall) RestartSyscall(false, nullptr);
  if (saved_sigmask_) {
    SetSigmask(*saved_sigmask_);
    saved_sigmask_.reset();
  }
}

void Task::NotifyParent(int code, int status) {
  std::shared_ptr<Task> parent = tg_->ppid != 0 ? kernel().FindTask(tg_->ppid) : nullptr;
  if (parent == nullptr) return;
  parent->kernel().mu.AssertHeld();  // one kernel, one big lock: the parent's is ours
  // SA_NOCLDSTOP: no SIGCHLD for stops and continues (wait4 still sees them).
  if (!(parent->sigactions()[SIGCHLD].flags & SA_NOCLDSTOP)) {
    siginfo_t info = MakeSigInfo(SIGCHLD, code, tgid(), uid);
    info.si_status = status;
    parent->SendProcessSignal(info);
  }
  parent->tg().child_events.Notify(~0u);
}

void Task::Stop(int sig) {
  // A stop signal's default action stops the whole process: the other
  // threads stop when they next pass DeliverSignals; the parent hears once.
  ThreadGroup& g = *tg_;
  if (!g.stopped) {
    g.stopped = true;
    g.stop_report = sig;
    g.cont_report = false;
    NotifyParent(CLD_STOPPED, sig);
    for (Task* t : g.threads) {
      if (t != this) t->Wake();
    }
  }
  WaitWhileStopped();
}

void Task::WaitWhileStopped() {
  // Stay in the sentry until SIGCONT (which clears the stop when sent) or
  // SIGKILL; other signals stay pending meanwhile.
  stop_waiting_ = true;
  while (tg_->stopped && !(pending_.pending() & Bit(SIGKILL)) && !exiting_) SleepInStop();
  stop_waiting_ = false;
}

void Task::SleepInStop() {
  uint64_t mask = sigmask;
  sigmask = ~Bit(SIGKILL);  // only SIGKILL ends the wait early
  (void)Block();
  sigmask = mask;
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
  SetSigmask(f.uc.sigmask & ~kUnblockable);
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
