// Signals: dispositions, masks, alternate stacks, sending (kill, tgkill,
// tkill), waiting (pause, sigsuspend, sigtimedwait), sigpending and
// rt_sigreturn. Queues and delivery live in sentry/kernel/signals.cc.
#include <errno.h>
#include <signal.h>

#include "sentry/syscalls/handlers.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::syscalls {
namespace {

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

constexpr uint64_t kUnblockable = kUnblockableSignals;

// kill(2) permission: CAP_KILL, or the sender's real or effective uid is
// the target's real or saved uid (SIGCONT within a session is not modelled).
bool MaySignal(const Task& from, const Task& to) {
  return from.Capable(CAP_KILL) || from.euid == to.uid || from.euid == to.suid ||
         from.uid == to.uid || from.uid == to.suid;
}

// Sends sig to one task on behalf of t: permission, then queueing (signal 0
// only checks). Returns 0 or an errno.
// A zombie still exists until it is reaped: the signal succeeds and is lost.
// thread: to that thread (tgkill, tkill), else to its process (kill).
int SendTo(Task& t, Task& target, int sig, int code, bool thread)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (!MaySignal(t, target)) return EPERM;
  // One kernel, one big lock: the target's is the caller's.
  target.kernel().mu.AssertHeld();
  if (sig == 0 || target.tg().zombie) return 0;
  siginfo_t info = MakeSigInfo(sig, code, t.tgid(), t.uid);
  if (thread) {
    target.SendSignal(info);
  } else {
    target.SendProcessSignal(info);
  }
  return 0;
}

// kill(2) to a group of tasks: ESRCH if none matched, EPERM if none could be
// signalled, success if any could.
Result<long> SendToAll(Task& t, int sig, bool (*match)(const Task&, const Task&, int), int arg)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  bool found = false, sent = false;
  for (int pid : t.kernel().Pids()) {
    auto target = t.kernel().FindTask(pid);
    if (!target || !match(t, *target, arg)) continue;
    found = true;
    if (SendTo(t, *target, sig, SI_USER, false) == 0) sent = true;
  }
  if (!found) return Errno{ESRCH};
  if (!sent) return Errno{EPERM};
  return 0L;
}

}  // namespace

// Thread-directed, as the kernel's send_sig (SIGPIPE, SIGXFSZ).
void RaiseOnSelf(Task& t, int sig) { t.SendSignal(MakeSigInfo(sig, SI_USER, t.tgid(), t.uid)); }

SyscallResult SysRtSigaction(Task& t, const Args& a) {
  int sig = a.Int(0);
  if (a.Size(3) != 8) return Errno{EINVAL};
  if (sig < 1 || sig > 64) return Errno{EINVAL};
  SigAction act;
  if (a.Ptr(1) != 0) {
    if (sig == SIGKILL || sig == SIGSTOP) return Errno{EINVAL};
    TRY(t.CopyInObj(a.Ptr(1), &act));
  }
  if (a.Ptr(2) != 0) TRY(t.CopyOutObj(a.Ptr(2), t.sigactions()[sig]));
  if (a.Ptr(1) != 0) {
    act.mask &= ~kUnblockable;
    t.sigactions()[sig] = act;
  }
  return 0L;
}

SyscallResult SysRtSigprocmask(Task& t, const Args& a) {
  if (a.Size(3) != 8) return Errno{EINVAL};
  uint64_t set = 0;
  if (a.Ptr(1) != 0) {
    TRY(t.CopyInObj(a.Ptr(1), &set));
    if (a.Int(0) != SIG_BLOCK && a.Int(0) != SIG_UNBLOCK && a.Int(0) != SIG_SETMASK)
      return Errno{EINVAL};
  }
  if (a.Ptr(2) != 0) TRY(t.CopyOutObj(a.Ptr(2), t.sigmask));
  if (a.Ptr(1) != 0) {
    uint64_t mask = t.sigmask;
    switch (a.Int(0)) {
      case SIG_BLOCK:
        mask |= set;
        break;
      case SIG_UNBLOCK:
        mask &= ~set;
        break;
      default:
        mask = set;
        break;
    }
    t.SetSigmask(mask & ~kUnblockable);
  }
  return 0L;
}

SyscallResult SysSigaltstack(Task& t, const Args& a) {
  stack_t ss;
  if (a.Ptr(0) != 0) {
    TRY(t.CopyInObj(a.Ptr(0), &ss));
    if (ss.ss_flags & ~(SS_DISABLE | SS_AUTODISARM)) return Errno{EINVAL};
  }
  if (a.Ptr(1) != 0) TRY(t.CopyOutObj(a.Ptr(1), t.altstack));
  if (a.Ptr(0) != 0) {
    if (ss.ss_flags & SS_DISABLE) {
      t.altstack = stack_t{nullptr, SS_DISABLE, 0};
    } else {
      // The kernel's MINSIGSTKSZ for x86 (2048), not glibc's, which under
      // _GNU_SOURCE is sysconf(_SC_MINSIGSTKSZ): the host's XSAVE size.
      // Go's runtime gives its signal stacks 32 KiB.
      constexpr size_t kMinSigStkSz = 2048;
      if (ss.ss_size < kMinSigStkSz) return Errno{ENOMEM};
      t.altstack = ss;
    }
  }
  return 0L;
}

SyscallResult SysKill(Task& t, const Args& a) {
  int pid = a.Int(0);
  int sig = a.Int(1);
  if (sig < 0 || sig > kMaxSignal) return Errno{EINVAL};
  if (pid > 0) {
    // Any thread's id names its process (find_vpid).
    auto target = t.kernel().FindTask(pid);
    if (!target) return Errno{ESRCH};
    int err = SendTo(t, *target, sig, SI_USER, false);
    if (err != 0) return Errno{err};
    return 0L;
  }
  if (pid == INT32_MIN) return Errno{ESRCH};
  if (pid == -1) {
    // Every process the caller may signal except init and itself.
    return SendToAll(
        t, sig, [](const Task& self, const Task& o, int) { return o.tgid() != 1 && &o != &self; },
        0);
  }
  int pgid = pid == 0 ? t.tg().pgid : -pid;
  return SendToAll(
      t, sig, [](const Task&, const Task& o, int g) { return o.tg().pgid == g; }, pgid);
}

SyscallResult SysTgkill(Task& t, const Args& a) {
  int sig = a.Int(2);
  if (a.Int(0) <= 0 || a.Int(1) <= 0 || sig < 0 || sig > kMaxSignal) return Errno{EINVAL};
  auto target = t.kernel().FindTask(a.Int(1));
  if (!target || target->tgid() != a.Int(0) || target->exited()) return Errno{ESRCH};
  int err = SendTo(t, *target, sig, SI_TKILL, true);
  if (err != 0) return Errno{err};
  return 0L;
}

SyscallResult SysTkill(Task& t, const Args& a) {
  int sig = a.Int(1);
  if (a.Int(0) <= 0 || sig < 0 || sig > kMaxSignal) return Errno{EINVAL};
  auto target = t.kernel().FindTask(a.Int(0));
  if (!target || target->exited()) return Errno{ESRCH};
  int err = SendTo(t, *target, sig, SI_TKILL, true);
  if (err != 0) return Errno{err};
  return 0L;
}

namespace {

// rt_sigqueueinfo/rt_tgsigqueueinfo: the caller's siginfo, which may not
// pretend to come from the kernel or from kill/tgkill unless it is sent to
// the caller's own process (do_rt_sigqueueinfo).
Result<long> QueueInfo(Task& t, int pid, int tid, int sig, uintptr_t uinfo)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  siginfo_t info;
  TRY(t.CopyInObj(uinfo, &info));
  if (sig < 0 || sig > kMaxSignal) return Errno{EINVAL};
  if ((info.si_code >= 0 || info.si_code == SI_TKILL) && pid != t.tgid()) return Errno{EPERM};
  info.si_signo = sig;
  auto target = t.kernel().FindTask(tid > 0 ? tid : pid);
  if (!target || (tid > 0 && (target->tgid() != pid || target->exited()))) return Errno{ESRCH};
  if (!MaySignal(t, *target)) return Errno{EPERM};
  target->kernel().mu.AssertHeld();  // one kernel, one lock
  if (sig == 0 || target->tg().zombie) return 0L;
  if (tid > 0) {
    target->SendSignal(info);
  } else {
    target->SendProcessSignal(info);
  }
  return 0L;
}

}  // namespace

SyscallResult SysRtSigqueueinfo(Task& t, const Args& a) {
  if (a.Int(0) <= 0) return Errno{ESRCH};
  return QueueInfo(t, a.Int(0), 0, a.Int(1), a.Ptr(2));
}

SyscallResult SysRtTgsigqueueinfo(Task& t, const Args& a) {
  if (a.Int(0) <= 0 || a.Int(1) <= 0) return Errno{EINVAL};
  return QueueInfo(t, a.Int(0), a.Int(1), a.Int(2), a.Ptr(3));
}

SyscallResult SysRtSigreturn(Task& t, const Args& a) {
  auto r = t.SigReturn();
  if (!r.ok()) {
    // A frame that cannot be read back: Linux kills with SIGSEGV.
    t.ForceSignal(MakeSigInfo(SIGSEGV, SI_KERNEL, 0, 0));
    return Errno{EFAULT};
  }
  return r;
}

SyscallResult SysRtSigpending(Task& t, const Args& a) {
  if (a.Size(1) > 8) return Errno{EINVAL};
  uint64_t set = t.PendingSignals() & t.sigmask;
  TRY(t.CopyOut(a.Ptr(0), &set, a.Size(1)));
  return 0L;
}

SyscallResult SysPause(Task& t, const Args& a) {
  while (t.Block().ok()) {
  }
  return Errno{kERestartNoHand};
}

SyscallResult SysRtSigsuspend(Task& t, const Args& a) {
  if (a.Size(1) != 8) return Errno{EINVAL};
  uint64_t mask;
  TRY(t.CopyInObj(a.Ptr(0), &mask));
  t.SetSavedSigmask(t.sigmask);
  t.SetSigmask(mask & ~kUnblockable);
  while (t.Block().ok()) {
  }
  return Errno{kERestartNoHand};
}

SyscallResult SysRtSigtimedwait(Task& t, const Args& a) {
  if (a.Size(3) != 8) return Errno{EINVAL};
  uint64_t set;
  TRY(t.CopyInObj(a.Ptr(0), &set));
  set &= ~kUnblockable;
  absl::Time deadline = absl::InfiniteFuture();
  if (a.Ptr(2) != 0) {
    timespec ts;
    TRY(t.CopyInObj(a.Ptr(2), &ts));
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000) return Errno{EINVAL};
    deadline = MonotonicNow() + absl::DurationFromTimespec(ts);
  }
  for (;;) {
    siginfo_t info;
    if (t.DequeueSignal(set, &info)) {
      if (a.Ptr(1) != 0) TRY(t.CopyOutObj(a.Ptr(1), info));
      return static_cast<long>(info.si_signo);
    }
    // While waiting, the awaited signals count as unblocked, so that a
    // process-directed one picks this thread (real_blocked).
    const uint64_t mask = t.sigmask;
    t.sigmask = mask & ~set;
    t.real_blocked = mask;
    Status s = t.Block(deadline);
    t.real_blocked = 0;
    t.SetSigmask(mask);
    if (t.DequeueSignal(set, &info)) {
      if (a.Ptr(1) != 0) TRY(t.CopyOutObj(a.Ptr(1), info));
      return static_cast<long>(info.si_signo);
    }
    if (!s.ok()) return Errno{s.error() == ETIMEDOUT ? EAGAIN : EINTR};
  }
}

}  // namespace husk::syscalls
