// Clocks and sleeping. Time is read from the sandbox's clock (the one the
// vDSO reads too); sleeps release the kernel lock.
#include <errno.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include <algorithm>

#include "sentry/kernel/blocking.h"
#include "sentry/kernel/clocks.h"
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

}  // namespace

absl::Time DeadlineOf(const timespec& ts, int clock, bool absolute) {
  const absl::Time now = MonotonicNow();
  if (!absolute) return now + absl::DurationFromTimespec(ts);
  if (clock == CLOCK_MONOTONIC) return absl::UnixEpoch() + absl::DurationFromTimespec(ts);
  return now + (absl::DurationFromTimespec(ts) - absl::Nanoseconds(SandboxNow(clock)));
}

namespace {

Result<long> Sleep(Task& t, int clock, int flags, uintptr_t req_addr, uintptr_t rem_addr)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  timespec req;
  TRY(t.CopyInObj(req_addr, &req));
  if (req.tv_nsec < 0 || req.tv_nsec >= 1000000000 || req.tv_sec < 0) return Errno{EINVAL};
  const bool absolute = (flags & TIMER_ABSTIME) != 0;
  absl::Time deadline = DeadlineOf(req, clock, absolute);
  for (;;) {
    Status s = t.Block(deadline);
    if (s.ok()) continue;  // woken for something else: keep sleeping
    if (s.error() == ETIMEDOUT) {
      // An absolute sleep on a clock that is not CLOCK_MONOTONIC ends when
      // that clock reads the time (the wall clock may have been set back).
      const int64_t left = absolute ? TimespecToNs(req) - SandboxNow(clock) : 0;
      if (left <= 0) break;
      deadline = MonotonicNow() + absl::Nanoseconds(left);
      continue;
    }
    // A signal: report the time left (relative sleeps), then EINTR or, if
    // no handler runs, a restart (nanosleep(2)).
    if (rem_addr != 0 && !(flags & TIMER_ABSTIME)) {
      timespec rem = absl::ToTimespec(std::max(deadline - MonotonicNow(), absl::ZeroDuration()));
      TRY(t.CopyOutObj(rem_addr, rem));
    }
    return Errno{kERestartBlock};
  }
  return 0L;
}

// clock_nanosleep on a process's CPU-time clock (posix_cpu_nsleep): the
// caller sleeps until that process has used the CPU time asked for (its
// other threads, or itself for another process, run on). The clock is
// sampled at least once a tick; it grows at most as fast as the wall clock
// on every CPU at once.
Result<long> CpuSleep(Task& t, const CpuClock& clk, int flags, uintptr_t req_addr,
                      uintptr_t rem_addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  timespec req;
  TRY(t.CopyInObj(req_addr, &req));
  if (req.tv_nsec < 0 || req.tv_nsec >= 1000000000 || req.tv_sec < 0) return Errno{EINVAL};
  const bool absolute = (flags & TIMER_ABSTIME) != 0;
  const int64_t target =
      absolute ? TimespecToNs(req) : SaturatingAdd(CpuClockNow(clk), TimespecToNs(req));
  const int64_t cpus = std::max(t.kernel().cpus, 1);
  for (;;) {
    const int64_t now = CpuClockNow(clk);
    if (now >= target) return 0L;
    const int64_t wait = std::max((target - now) / cpus, ClockTickNs());
    Status s = t.Block(MonotonicNow() + absl::Nanoseconds(wait));
    if (s.ok() || s.error() == ETIMEDOUT) continue;
    // A signal: the CPU time still missing for a relative sleep, then EINTR.
    if (rem_addr != 0 && !absolute) {
      TRY(t.CopyOutObj(rem_addr, NsToTimespec(std::max<int64_t>(target - CpuClockNow(clk), 0))));
    }
    return Errno{EINTR};
  }
}

}  // namespace

// The CPU-time clocks count the caller's (or another task's) own CPU time,
// not the sentry's (sentry/kernel/clocks.h).
SyscallResult SysClockGettime(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(timespec ts, ClockNow(t, a.Int(0)));
  TRY(t.CopyOutObj(a.Ptr(1), ts));
  return 0L;
}

SyscallResult SysClockGetres(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(timespec ts, ClockResolution(t, a.Int(0)));
  if (a.Ptr(1) != 0) TRY(t.CopyOutObj(a.Ptr(1), ts));
  return 0L;
}

SyscallResult SysGettimeofday(Task& t, const Args& a) {
  const timespec ts = SandboxTimespec(CLOCK_REALTIME);
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

// The coarse wall clock's seconds, as Linux's ktime_get_real_seconds (and
// the vDSO's time) give them.
SyscallResult SysTime(Task& t, const Args& a) {
  const timespec ts = SandboxTimespec(CLOCK_REALTIME_COARSE);
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
  if (clock == CLOCK_PROCESS_CPUTIME_ID || clock < 0) {
    // glibc names the process's clock with a built id (MAKE_PROCESS_CPUCLOCK).
    ASSIGN_OR_RETURN(CpuClock clk, ResolveCpuClock(t, clock));
    if (a.Int(1) & ~TIMER_ABSTIME) return Errno{EINVAL};
    // posix_cpu_nsleep: not on the caller's own thread clock.
    if (clk.per_thread && clk.task.get() == &t) return Errno{EINVAL};
    return CpuSleep(t, clk, a.Int(1), a.Ptr(2), a.Ptr(3));
  }
  if (!ValidClock(clock) || clock == CLOCK_MONOTONIC_RAW || clock == CLOCK_REALTIME_COARSE ||
      clock == CLOCK_MONOTONIC_COARSE)
    return Errno{EINVAL};
  if (a.Int(1) & ~TIMER_ABSTIME) return Errno{EINVAL};
  return Sleep(t, clock, a.Int(1), a.Ptr(2), a.Ptr(3));
}

namespace {

absl::Duration DurationOf(const timeval& tv) {
  return absl::Seconds(tv.tv_sec) + absl::Microseconds(tv.tv_usec);
}

timeval RoundedTimeval(absl::Duration d) {
  // Round up to whole microseconds: an armed timer never reads as zero.
  int64_t us = absl::ToInt64Microseconds(absl::Ceil(d, absl::Microseconds(1)));
  return timeval{us / 1000000, us % 1000000};
}

struct ItimerVal {
  timeval interval;
  timeval value;
};

ItimerVal ItimerOf(const RealTimers::Setting& s) {
  return ItimerVal{RoundedTimeval(s.interval), RoundedTimeval(s.value)};
}

// The CPU-time interval timers (sentry/kernel/posix_timers.h): which part
// of the process's CPU time each counts.
Result<CpuClockPart> CpuItimerPart(int which) {
  switch (which) {
    case ITIMER_VIRTUAL:
      return CpuClockPart::kVirt;
    case ITIMER_PROF:
      return CpuClockPart::kProf;
    default:
      return Errno{EINVAL};
  }
}

// put_itimerval: nanoseconds truncated to microseconds.
timeval TruncatedTimeval(const timespec& ts) { return timeval{ts.tv_sec, ts.tv_nsec / 1000}; }

ItimerVal ItimerOf(const itimerspec& s) {
  return ItimerVal{TruncatedTimeval(s.it_interval), TruncatedTimeval(s.it_value)};
}

timespec TimespecOf(const timeval& tv) {
  return timespec{tv.tv_sec, static_cast<long>(tv.tv_usec) * 1000};
}

}  // namespace

SyscallResult SysAlarm(Task& t, const Args& a) {
  RealTimers::Setting s;
  s.value = absl::Seconds(static_cast<unsigned int>(a.U(0)));
  RealTimers::Setting old = t.kernel().real_timers.Set(t.tgid(), s);
  // alarm(2): whole seconds left, rounded to nearest, never 0 while armed.
  timeval left = RoundedTimeval(old.value);
  long secs = left.tv_sec + (left.tv_usec >= 500000 ? 1 : 0);
  if (secs == 0 && (left.tv_sec != 0 || left.tv_usec != 0)) secs = 1;
  return secs;
}

SyscallResult SysGetitimer(Task& t, const Args& a) {
  const int which = a.Int(0);
  ItimerVal cur;
  if (which == ITIMER_REAL) {
    cur = ItimerOf(t.kernel().real_timers.Get(t.tgid()));
  } else {
    ASSIGN_OR_RETURN(CpuClockPart part, CpuItimerPart(which));
    cur = ItimerOf(t.kernel().posix_timers.GetCpuItimer(t, part));
  }
  TRY(t.CopyOutObj(a.Ptr(1), cur));
  return 0L;
}

// Linux's order: the new value is read and checked (EFAULT, EINVAL) before
// `which` is (do_setitimer's EINVAL).
SyscallResult SysSetitimer(Task& t, const Args& a) {
  const int which = a.Int(0);
  ItimerVal v{};  // a null new value disarms, as Linux still allows
  if (a.Ptr(1) != 0) TRY(t.CopyInObj(a.Ptr(1), &v));
  for (const timeval& tv : {v.value, v.interval}) {
    if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000) return Errno{EINVAL};
  }
  ItimerVal old;
  if (which == ITIMER_REAL) {
    RealTimers::Setting s{DurationOf(v.value), DurationOf(v.interval)};
    old = ItimerOf(t.kernel().real_timers.Set(t.tgid(), s));
  } else {
    ASSIGN_OR_RETURN(CpuClockPart part, CpuItimerPart(which));
    const itimerspec value{TimespecOf(v.interval), TimespecOf(v.value)};
    ASSIGN_OR_RETURN(itimerspec o, t.kernel().posix_timers.SetCpuItimer(t, part, value));
    old = ItimerOf(o);
  }
  if (a.Ptr(2) != 0) TRY(t.CopyOutObj(a.Ptr(2), old));
  return 0L;
}

}  // namespace husk::syscalls
