// Signals: dispositions, masks, alternate stacks, sending (kill, tgkill,
// tkill), waiting (pause, sigsuspend, sigtimedwait), sigpending and
// rt_sigreturn. Queues and delivery live in sentry/kernel/signals.cc.
#include <errno.h>
#include <signal.h>

#include "absl/time/clock.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

constexpr uint64_t kUnblockable = kUnblockableSignals;

// kill(2) permission: privileged, or the sender's real or effective uid is
// the target's real or saved uid (SIGCONT within a session is not modelled).
bool MaySignal(const Task& from, const Task& to) {
  return from.euid == 0 || from.euid == to.uid || from.euid == to.suid || from.uid == to.uid ||
         from.uid == to.suid;
}

// Sends sig to one task on behalf of t: permission, then queueing (signal 0
// only checks). Returns 0 or an errno.
// A zombie still exists until it is reaped: the signal succeeds and is lost.
int SendTo(Task& t, Task& target, int sig, int code) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (!MaySignal(t, target)) return EPERM;
  // One kernel, one big lock: the target's is the caller's.
  target.kernel().mu.AssertHeld();
  if (sig != 0 && !target.zombie) target.SendSignal(MakeSigInfo(sig, code, t.tgid(), t.uid));
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
    if (SendTo(t, *target, sig, SI_USER) == 0) sent = true;
  }
  if (!found) return Errno{ESRCH};
  if (!sent) return Errno{EPERM};
  return 0L;
}

}  // namespace

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
  if (a.Ptr(2) != 0) TRY(t.CopyOutObj(a.Ptr(2), t.sigactions[sig]));
  if (a.Ptr(1) != 0) {
    act.mask &= ~kUnblockable;
    t.sigactions[sig] = act;
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
    switch (a.Int(0)) {
      case SIG_BLOCK: t.sigmask |= set; break;
      case SIG_UNBLOCK: t.sigmask &= ~set; break;
      default: t.sigmask = set; break;
    }
    t.sigmask &= ~kUnblockable;
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
    auto target = t.kernel().FindTask(pid);
    if (!target || target->tgid() != pid) return Errno{ESRCH};
    int err = SendTo(t, *target, sig, SI_USER);
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
  int pgid = pid == 0 ? t.pgid : -pid;
  return SendToAll(
      t, sig, [](const Task&, const Task& o, int g) { return o.pgid == g; }, pgid);
}

SyscallResult SysTgkill(Task& t, const Args& a) {
  int sig = a.Int(2);
  if (a.Int(0) <= 0 || a.Int(1) <= 0 || sig < 0 || sig > kMaxSignal) return Errno{EINVAL};
  auto target = t.kernel().FindTask(a.Int(1));
  if (!target || target->tgid() != a.Int(0)) return Errno{ESRCH};
  int err = SendTo(t, *target, sig, SI_TKILL);
  if (err != 0) return Errno{err};
  return 0L;
}

SyscallResult SysTkill(Task& t, const Args& a) {
  int sig = a.Int(1);
  if (a.Int(0) <= 0 || sig < 0 || sig > kMaxSignal) return Errno{EINVAL};
  auto target = t.kernel().FindTask(a.Int(0));
  if (!target) return Errno{ESRCH};
  int err = SendTo(t, *target, sig, SI_TKILL);
  if (err != 0) return Errno{err};
  return 0L;
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
  uint64_t set = t.pending_signals & t.sigmask;
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
  t.sigmask = mask & ~kUnblockable;
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
    deadline = absl::Now() + absl::DurationFromTimespec(ts);
  }
  for (;;) {
    siginfo_t info;
    if (t.DequeueSignal(set, &info)) {
      if (a.Ptr(1) != 0) TRY(t.CopyOutObj(a.Ptr(1), info));
      return static_cast<long>(info.si_signo);
    }
    Status s = t.Block(deadline);
    if (!s.ok()) return Errno{s.error() == ETIMEDOUT ? EAGAIN : EINTR};
  }
}

}  // namespace husk::syscalls
