// Resource usage: times(2) and getrusage(2). The CPU times come from
// sentry/kernel/cputime.h; wait4's rusage (sys_process.cc) too.
#include <errno.h>
#include <sys/resource.h>
#include <sys/times.h>

#include <algorithm>
#include <cstdint>

#include "sentry/kernel/clocks.h"
#include "sentry/kernel/cputime.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

// What times(2) returns: clock ticks since a point before the sandbox's
// boot. Linux counts from INITIAL_JIFFIES, (2^32 / HZ) - 300 seconds before
// its boot (times(2), NOTES); husk does the same from the sandbox's boot,
// with the uptime its CLOCK_MONOTONIC says (jiffies stop in a suspend).
long TicksSinceBoot(Task& t) {
  const int64_t hz = std::max<int64_t>(1000000000 / ClockTickNs(), 1);
  const uint64_t initial_jiffies = static_cast<uint32_t>(-300 * hz);
  const int64_t uptime = SandboxNow(CLOCK_MONOTONIC);
  return static_cast<long>(initial_jiffies * kUserHz / static_cast<uint64_t>(hz)) +
         static_cast<long>(NsToClockTicks(uptime));
}

}  // namespace

SyscallResult SysTimes(Task& t, const Args& a) {
  // A null buffer is allowed: Linux then only returns the tick count.
  if (a.Ptr(0) != 0) {
    CpuTimes self = TaskTimes(t);
    struct tms tms {};
    tms.tms_utime = NsToClockTicks(self.user);
    tms.tms_stime = NsToClockTicks(self.system);
    tms.tms_cutime = NsToClockTicks(t.cpu.children.user);
    tms.tms_cstime = NsToClockTicks(t.cpu.children.system);
    TRY(t.CopyOutObj(a.Ptr(0), tms));
  }
  return TicksSinceBoot(t);
}

SyscallResult SysGetrusage(Task& t, const Args& a) {
  struct rusage ru;
  switch (a.Int(0)) {
    case RUSAGE_SELF:
    case RUSAGE_THREAD:  // one thread per process for now: the same figures
      ru = SelfRusage(t);
      break;
    case RUSAGE_CHILDREN:
      ru = ChildrenRusage(t);
      break;
    default:
      return Errno{EINVAL};
  }
  TRY(t.CopyOutObj(a.Ptr(1), ru));
  return 0L;
}

}  // namespace husk::syscalls
