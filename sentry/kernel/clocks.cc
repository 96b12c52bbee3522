#include "sentry/kernel/clocks.h"

#include <errno.h>

#include "sentry/kernel/cputime.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/timer_queue.h"

namespace husk {
namespace {

constexpr clockid_t kCpuClockPerThread = 4;  // CPUCLOCK_PERTHREAD_MASK
constexpr clockid_t kCpuClockWhichMask = 3;  // CPUCLOCK_CLOCK_MASK
constexpr clockid_t kCpuClockMax = 3;        // CPUCLOCK_MAX (also CLOCKFD: a posix clock device)

// CPUCLOCK_PID: the pid an id built by MAKE_PROCESS_CPUCLOCK names (0: the caller).
pid_t CpuClockPid(clockid_t id) { return static_cast<pid_t>(~(id >> 3)); }

}  // namespace

int64_t ClockTickNs() { return SandboxClock::Get().tick_ns(); }

namespace {

class ClockTicker : public Alarm {
 public:
  void Expire(uint64_t) override {
    const int64_t next = SandboxClock::Get().Tick();
    if (next > 0) {
      TimerQueue::Get().Arm(*this, CLOCK_MONOTONIC, SandboxNow(CLOCK_MONOTONIC) + next, 0);
    }
  }
};

}  // namespace

Status StartClockTicks() {
  TRY(TimerQueue::Get().Start());
  // Never destroyed: the timer thread holds alarms weakly and runs until
  // the sentry exits.
  static std::shared_ptr<ClockTicker>* const ticker =
      new std::shared_ptr<ClockTicker>(std::make_shared<ClockTicker>());
  (*ticker)->Expire(0);
  return Ok();
}

bool IsCpuClockId(clockid_t id) {
  return id < 0 || id == CLOCK_PROCESS_CPUTIME_ID || id == CLOCK_THREAD_CPUTIME_ID;
}

Result<CpuClock> ResolveCpuClock(Task& t, clockid_t id) {
  CpuClock c;
  pid_t pid;
  if (id == CLOCK_PROCESS_CPUTIME_ID || id == CLOCK_THREAD_CPUTIME_ID) {
    c.per_thread = id == CLOCK_THREAD_CPUTIME_ID;
    pid = 0;
  } else {
    if (id >= 0 || (id & kCpuClockWhichMask) >= kCpuClockMax) return Errno{EINVAL};
    c.per_thread = (id & kCpuClockPerThread) != 0;
    c.part = static_cast<CpuClockPart>(id & kCpuClockWhichMask);
    pid = CpuClockPid(id);
  }
  t.kernel().mu.AssertHeld();  // every caller is a syscall handler
  if (pid == 0) pid = c.per_thread ? t.tid() : t.tgid();
  c.task = t.kernel().FindTask(pid);
  if (c.task == nullptr) return Errno{EINVAL};
  // A thread clock names a thread of the caller's own process; a process
  // clock names a process (its leader's id), as Linux's pid_for_clock.
  if (c.per_thread ? c.task->tgid() != t.tgid() : c.task->tgid() != pid) return Errno{EINVAL};
  return c;
}

int64_t CpuClockNow(const CpuClock& c) {
  // One thread per process for now: the thread's time is the process's.
  switch (c.part) {
    case CpuClockPart::kProf:
      return TaskTimes(*c.task).total();
    case CpuClockPart::kVirt:
      return TaskTimes(*c.task).user;
    case CpuClockPart::kSched:
      return TaskRuntime(*c.task);
  }
  return 0;
}

namespace {

// The alarm clocks exist where the host has an RTC to wake it
// (alarm_clock_get_timespec's EINVAL otherwise): the host says.
Status CheckAlarmClock(clockid_t id) {
  if (id != CLOCK_REALTIME_ALARM && id != CLOCK_BOOTTIME_ALARM) return Ok();
  timespec ts;
  if (clock_getres(id, &ts) != 0) return Errno{errno};
  return Ok();
}

}  // namespace

Result<timespec> ClockNow(Task& t, clockid_t id) {
  if (SandboxClock::Has(id)) {
    TRY(CheckAlarmClock(id));
    return SandboxTimespec(id);
  }
  if (!IsCpuClockId(id)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(CpuClock c, ResolveCpuClock(t, id));
  return NsToTimespec(CpuClockNow(c));
}

Result<timespec> ClockResolution(Task& t, clockid_t id) {
  if (SandboxClock::Has(id)) {
    TRY(CheckAlarmClock(id));
    // As the vDSO answers: the coarse clocks tick, the others are hrtimers.
    const bool coarse = id == CLOCK_REALTIME_COARSE || id == CLOCK_MONOTONIC_COARSE;
    return NsToTimespec(coarse ? ClockTickNs() : 1);
  }
  if (!IsCpuClockId(id)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(CpuClock c, ResolveCpuClock(t, id));
  // posix_cpu_clock_getres: the runtime counts nanoseconds; the sampled
  // user and system times, ticks.
  return NsToTimespec(c.part == CpuClockPart::kSched ? 1 : ClockTickNs());
}

}  // namespace husk
