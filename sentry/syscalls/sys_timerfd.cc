// timerfd_create(2), timerfd_settime(2), timerfd_gettime(2). The timer file
// lives in sentry/kernel/timerfd.
#include <errno.h>
#include <sys/timerfd.h>

#include "sentry/kernel/clocks.h"
#include "sentry/kernel/timer_queue.h"
#include "sentry/kernel/timerfd.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

// timerfd_fget: EBADF for no descriptor, EINVAL for one that is not a timerfd.
Result<timerfd::TimerFile*> GetTimerFile(Task& t, int fd, vfs::FileRef* hold) {
  ASSIGN_OR_RETURN(*hold, t.fds().Get(fd));
  timerfd::TimerFile* f = timerfd::AsTimerFile(**hold);
  if (f == nullptr) return Errno{EINVAL};
  return f;
}

}  // namespace

SyscallResult SysTimerfdCreate(Task& t, const Args& a) {
  const clockid_t clock = a.Int(0);
  const int flags = a.Int(1);
  if (flags & ~(TFD_CLOEXEC | TFD_NONBLOCK)) return Errno{EINVAL};
  switch (clock) {
    case CLOCK_REALTIME:
    case CLOCK_MONOTONIC:
    case CLOCK_BOOTTIME:
      break;
    case CLOCK_REALTIME_ALARM:
    case CLOCK_BOOTTIME_ALARM:
      // They need CAP_WAKE_ALARM in the initial user namespace, which no
      // process in the sandbox's own namespace has (capabilities(7)).
      return Errno{EPERM};
    default:
      return Errno{EINVAL};
  }
  TRY(TimerQueue::Get().Start());
  auto file = std::make_shared<timerfd::TimerFile>(clock, flags & TFD_NONBLOCK);
  ASSIGN_OR_RETURN(int fd, t.fds().Add(std::move(file), (flags & TFD_CLOEXEC) != 0));
  return static_cast<long>(fd);
}

// Linux's order: the new value is copied in (EFAULT), then flags and value
// are checked (EINVAL), then the descriptor (EBADF, EINVAL); the old value
// is copied out last, the timer being set even if that fails.
// TFD_TIMER_CANCEL_ON_SET is accepted: the sandbox cannot set the clock,
// and a change of the host's is not seen, so a read is never ECANCELED.
SyscallResult SysTimerfdSettime(Task& t, const Args& a) {
  itimerspec value;
  TRY(t.CopyInObj(a.Ptr(2), &value));
  const int flags = a.Int(1);
  if ((flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)) || !ValidTimespec(value.it_value) ||
      !ValidTimespec(value.it_interval)) {
    return Errno{EINVAL};
  }
  vfs::FileRef hold;
  ASSIGN_OR_RETURN(timerfd::TimerFile * f, GetTimerFile(t, a.Int(0), &hold));
  itimerspec old = f->Set((flags & TFD_TIMER_ABSTIME) != 0, value);
  if (a.Ptr(3) != 0) TRY(t.CopyOutObj(a.Ptr(3), old));
  return 0L;
}

SyscallResult SysTimerfdGettime(Task& t, const Args& a) {
  vfs::FileRef hold;
  ASSIGN_OR_RETURN(timerfd::TimerFile * f, GetTimerFile(t, a.Int(0), &hold));
  TRY(t.CopyOutObj(a.Ptr(1), f->Get()));
  return 0L;
}

}  // namespace husk::syscalls
