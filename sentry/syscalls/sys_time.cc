// Clocks and sleeping. Time is read from the sentry's own clock; sleeps
// release the kernel lock.
#include <errno.h>
#include <time.h>

#include <algorithm>

#include "absl/time/clock.h"
#include "sentry/kernel/blocking.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

bool ValidClock(int id) {
  switch (id) {
    case CLOCK_REALTIME:
    case CLOCK_MONOTONIC:
    case CLOCK_PROCESS_CPUTIME_ID:
    case CLOCK_THREAD_CPUTIME_ID:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
      return true;
    default:
      return false;
  }
}

Result<long> Sleep(Task& t, int clock, int flags, uintptr_t req_addr, uintptr_t rem_addr) {
  timespec req;
  TRY(t.CopyInObj(req_addr, &req));
  if (req.tv_nsec < 0 || req.tv_nsec >= 1000000000 || req.tv_sec < 0) return Errno{EINVAL};
  // The wake-up time on the sentry's clock (absl::Now is CLOCK_REALTIME).
  absl::Time deadline;
  if (flags & TIMER_ABSTIME) {
    if (clock == CLOCK_REALTIME) {
      deadline = absl::TimeFromTimespec(req);
    } else {
      timespec now;
      clock_gettime(clock, &now);
      deadline = absl::Now() + (absl::DurationFromTimespec(req) - absl::DurationFromTimespec(now));
    }
  } else {
    deadline = absl::Now() + absl::DurationFromTimespec(req);
  }
  for (;;) {
    Status s = t.Block(deadline);
    if (s.ok()) continue;  // woken for something else: keep sleeping
    if (s.error() == ETIMEDOUT) break;
    // A signal: report the time left (relative sleeps), then EINTR or, if
    // no handler runs, a restart (nanosleep(2)).
    if (rem_addr != 0 && !(flags & TIMER_ABSTIME)) {
      timespec rem = absl::ToTimespec(std::max(deadline - absl::Now(), absl::ZeroDuration()));
      TRY(t.CopyOutObj(rem_addr, rem));
    }
    return Errno{kERestartBlock};
  }
  return 0L;
}

}  // namespace

SyscallResult SysClockGettime(Task& t, const Args& a) {
  if (!ValidClock(a.Int(0))) return Errno{EINVAL};
  timespec ts;
  clock_gettime(a.Int(0), &ts);
  TRY(t.CopyOutObj(a.Ptr(1), ts));
  return 0L;
}

SyscallResult SysClockGetres(Task& t, const Args& a) {
  if (!ValidClock(a.Int(0))) return Errno{EINVAL};
  timespec ts;
  clock_getres(a.Int(0), &ts);
  if (a.Ptr(1) != 0) TRY(t.CopyOutObj(a.Ptr(1), ts));
  return 0L;
}

SyscallResult SysGettimeofday(Task& t, const Args& a) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (a.Ptr(0) != 0) {
    timeval tv{ts.tv_sec, ts.tv_nsec / 1000};
    TRY(t.CopyOutObj(a.Ptr(0), tv));
  }
  if (a.Ptr(1) != 0) {
    struct timezone tz{0, 0};
    TRY(t.CopyOutObj(a.Ptr(1), tz));
  }
  return 0L;
}

SyscallResult SysTime(Task& t, const Args& a) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (a.Ptr(0) != 0) TRY(t.CopyOutObj(a.Ptr(0), static_cast<int64_t>(ts.tv_sec)));
  return static_cast<long>(ts.tv_sec);
}

SyscallResult SysNanosleep(Task& t, const Args& a) {
  return Sleep(t, CLOCK_MONOTONIC, 0, a.Ptr(0), a.Ptr(1));
}

SyscallResult SysClockNanosleep(Task& t, const Args& a) {
  int clock = a.Int(0);
  // Linux: sleeping on the calling thread's own CPU clock is EOPNOTSUPP (glibc maps it to EINVAL).
  if (clock == CLOCK_THREAD_CPUTIME_ID) return Errno{EOPNOTSUPP};
  if (!ValidClock(clock) || clock == CLOCK_MONOTONIC_RAW || clock == CLOCK_REALTIME_COARSE ||
      clock == CLOCK_MONOTONIC_COARSE)
    return Errno{EINVAL};
  if (clock == CLOCK_PROCESS_CPUTIME_ID) return Errno{ENOTSUP};
  if (a.Int(1) & ~TIMER_ABSTIME) return Errno{EINVAL};
  return Sleep(t, clock, a.Int(1), a.Ptr(2), a.Ptr(3));
}

}  // namespace husk::syscalls
