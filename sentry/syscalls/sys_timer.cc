// POSIX timers: timer_create(2), timer_settime(2), timer_gettime(2),
// timer_getoverrun(2), timer_delete(2). The timers live in
// sentry/kernel/posix_timers.
#include <errno.h>
#include <signal.h>
#include <time.h>

#include "sentry/kernel/clocks.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {

// The sigevent is copied in first (EFAULT); PosixTimers::Create checks the
// rest in Linux's order and copies the id out.
SyscallResult SysTimerCreate(Task& t, const Args& a) {
  sigevent ev;
  const sigevent* evp = nullptr;
  if (a.Ptr(1) != 0) {
    TRY(t.CopyInObj(a.Ptr(1), &ev));
    evp = &ev;
  }
  TRY(t.kernel().posix_timers.Create(t, a.Int(0), evp, a.Ptr(2)));
  return 0L;
}

// A null new value is EINVAL; flags other than TIMER_ABSTIME are ignored.
SyscallResult SysTimerSettime(Task& t, const Args& a) {
  if (a.Ptr(2) == 0) return Errno{EINVAL};
  itimerspec value;
  TRY(t.CopyInObj(a.Ptr(2), &value));
  if (!ValidTimespec(value.it_value) || !ValidTimespec(value.it_interval)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(itimerspec old, t.kernel().posix_timers.Set(
                                       t, a.Int(0), (a.Int(1) & TIMER_ABSTIME) != 0, value));
  if (a.Ptr(3) != 0) TRY(t.CopyOutObj(a.Ptr(3), old));
  return 0L;
}

SyscallResult SysTimerGettime(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(itimerspec cur, t.kernel().posix_timers.Get(t, a.Int(0)));
  TRY(t.CopyOutObj(a.Ptr(1), cur));
  return 0L;
}

SyscallResult SysTimerGetoverrun(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(int overrun, t.kernel().posix_timers.Overrun(t, a.Int(0)));
  return static_cast<long>(overrun);
}

SyscallResult SysTimerDelete(Task& t, const Args& a) {
  TRY(t.kernel().posix_timers.Delete(t, a.Int(0)));
  return 0L;
}

}  // namespace husk::syscalls
