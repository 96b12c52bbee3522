// The clocks of clock_gettime(2) and clock_getres(2) as the sandbox sees
// them, and the clock ids that timers take. The wall and monotonic clocks
// are the sandbox's (sentry/time/sandbox_clock.h: SandboxNow, the one
// conversion every path uses); the CPU-time clocks count a task's CPU time
// as cputime.h accounts it.
//
// CPU-time clock ids: CLOCK_PROCESS_CPUTIME_ID and CLOCK_THREAD_CPUTIME_ID
// name the caller's own; clock_getcpuclockid(3) and pthread_getcpuclockid(3)
// build negative ids as Linux's MAKE_PROCESS_CPUCLOCK does: ~pid << 3, a
// per-thread bit (4), and which part of the time (CPUCLOCK_PROF 0: user +
// system, CPUCLOCK_VIRT 1: user, CPUCLOCK_SCHED 2: the precise runtime).
#ifndef HUSK_SENTRY_KERNEL_CLOCKS_H_
#define HUSK_SENTRY_KERNEL_CLOCKS_H_

#include <time.h>

#include <cstdint>
#include <memory>

#include "base/result.h"
#include "sentry/time/sandbox_clock.h"

namespace husk {

class Task;

// The length of the host kernel's tick (1/HZ), which the coarse clocks and
// the sampled CPU clocks report as their resolution.
int64_t ClockTickNs();
// Starts the timer thread calling SandboxClock::Tick (calibration steps,
// then a re-base every half second), so that the vDSO never finds the
// clock's parameters stale: EAGAIN if the host refuses the thread.
Status StartClockTicks();

enum class CpuClockPart { kProf = 0, kVirt = 1, kSched = 2 };

// A CPU-time clock resolved for a caller: whose time, and which part.
struct CpuClock {
  std::shared_ptr<Task> task;
  bool per_thread = false;
  CpuClockPart part = CpuClockPart::kSched;
};
// Whether id is a CPU-time clock id (static or built), valid or not.
bool IsCpuClockId(clockid_t id);
// Resolves a CPU-time clock id for t: EINVAL if it is malformed or names no
// process (a process clock: a thread group leader, zombies included, as
// Linux allows) or no thread of t's own process.
Result<CpuClock> ResolveCpuClock(Task& t, clockid_t id);
// The clock's time now, in nanoseconds.
int64_t CpuClockNow(const CpuClock& c);

// clock_gettime(2) for t: EINVAL for an unknown clock.
Result<timespec> ClockNow(Task& t, clockid_t id);
// clock_getres(2) for t.
Result<timespec> ClockResolution(Task& t, clockid_t id);

// a + b in nanoseconds, INT64_MAX past the end of time.
inline int64_t SaturatingAdd(int64_t a, __int128 b) {
  __int128 sum = static_cast<__int128>(a) + b;
  return sum > INT64_MAX ? INT64_MAX : static_cast<int64_t>(sum);
}

// Conversions between nanosecond counts and timespecs (saturating).
inline int64_t TimespecToNs(const timespec& ts) {
  constexpr int64_t kMaxSec = INT64_MAX / 1000000000 - 1;
  if (ts.tv_sec > kMaxSec) return INT64_MAX;
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
inline timespec NsToTimespec(int64_t ns) {
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}
// timespec64_valid: a non-negative second count and 0 <= tv_nsec < 1e9.
inline bool ValidTimespec(const timespec& ts) {
  return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000;
}

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_CLOCKS_H_
