// Signals: dispositions, masks, alternate stacks, and kill for the cases the
// sentry can carry out today (probing, ignoring, default termination of the
// caller). Delivery to handlers arrives with the process model.
#include <errno.h>
#include <signal.h>

#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

constexpr uint64_t Bit(int sig) { return uint64_t{1} << (sig - 1); }
constexpr uint64_t kUnblockable = Bit(SIGKILL) | Bit(SIGSTOP);
// Signals whose default action is to do nothing (signal(7)).
constexpr uint64_t kDefaultIgnored = Bit(SIGCHLD) | Bit(SIGURG) | Bit(SIGWINCH) | Bit(SIGCONT);

Result<long> SignalSelf(Task& t, Task& target, int sig) {
  if (sig == 0) return 0L;
  const SigAction& act = target.sigactions[sig];
  if (act.handler == reinterpret_cast<uint64_t>(SIG_IGN) ||
      (act.handler == reinterpret_cast<uint64_t>(SIG_DFL) && (kDefaultIgnored & Bit(sig))))
    return 0L;
  if (&target == &t && act.handler == reinterpret_cast<uint64_t>(SIG_DFL) &&
      !(t.sigmask & Bit(sig))) {
    t.Exit(sig);  // terminated by the signal's default action
    return 0L;
  }
  t.kernel().CountUnimplemented(SYS_kill);
  return Errno{ENOSYS};
}

}  // namespace

void RaiseOnSelf(Task& t, int sig) {
  const SigAction& act = t.sigactions[sig];
  if (act.handler == reinterpret_cast<uint64_t>(SIG_DFL) && !(kDefaultIgnored & Bit(sig)) &&
      !(t.sigmask & Bit(sig))) {
    t.Exit(sig);
  }
}

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
      if (ss.ss_size < static_cast<size_t>(MINSIGSTKSZ)) return Errno{ENOMEM};
      t.altstack = ss;
    }
  }
  return 0L;
}

SyscallResult SysKill(Task& t, const Args& a) {
  int pid = a.Int(0);
  int sig = a.Int(1);
  if (sig < 0 || sig > 64) return Errno{EINVAL};
  if (pid == t.tgid() || pid == 0) return SignalSelf(t, t, sig);
  if (pid > 0) {
    auto target = t.kernel().FindTask(pid);
    if (!target || target->zombie) return Errno{ESRCH};
    return SignalSelf(t, *target, sig);
  }
  t.kernel().CountUnimplemented(SYS_kill);
  return Errno{ENOSYS};
}

SyscallResult SysTgkill(Task& t, const Args& a) {
  int sig = a.Int(2);
  if (a.Int(0) <= 0 || a.Int(1) <= 0 || sig < 0 || sig > 64) return Errno{EINVAL};
  auto target = t.kernel().FindTask(a.Int(1));
  if (!target || target->tgid() != a.Int(0) || target->zombie) return Errno{ESRCH};
  return SignalSelf(t, *target, sig);
}

}  // namespace husk::syscalls
