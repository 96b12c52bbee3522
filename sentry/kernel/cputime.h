// CPU time of tasks: times(2), getrusage(2), wait4's rusage, SIGCHLD's
// si_utime/si_stime and the CPU-time clocks (clock_gettime(2) with
// CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID or a clock from
// clock_getcpuclockid(3)).
//
// A task runs on two host contexts. The host process behind its address
// space (the ptrace stub) executes the application's instructions: its user
// time is the task's user time, and its system time (page faults, the host's
// side of the syscall stops) is the task's system time. The task's sentry
// thread handles its syscalls and faults: all of its CPU time is system time.
// The host accounts user and system time by sampling at ticks and keeps the
// precise total (the scheduler's runtime) apart; like Linux's getrusage
// (cputime_adjust) the stub's runtime is split in the ratio of its samples,
// never letting either part go backwards.
//
// Locking: a task's TaskCpu is guarded by the big kernel lock.
#ifndef HUSK_SENTRY_KERNEL_CPUTIME_H_
#define HUSK_SENTRY_KERNEL_CPUTIME_H_

#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include <cstdint>
#include <optional>

#include "platform/platform.h"

namespace husk {

class Task;

// User and system CPU time, in nanoseconds.
struct CpuTimes {
  int64_t user = 0;
  int64_t system = 0;

  int64_t total() const { return user + system; }
  CpuTimes& operator+=(const CpuTimes& o) {
    user += o.user;
    system += o.system;
    return *this;
  }
};

// The CPU accounting of one task.
class TaskCpu {
 public:
  // Runs on the task's own host thread before it first runs application
  // code: that thread's CPU clock counts for the task from now on.
  void BindHostThread();
  // exec is about to drop `as`: what its host process used stays the task's.
  void RetireAddressSpace(platform::AddressSpace& as, uint64_t resident_bytes);
  // The task exits (on its own thread): its times stop here, before the
  // thread and the address space go away.
  void Freeze(platform::AddressSpace* as, uint64_t resident_bytes);

  // The task's times now; as: its address space, null if it has none yet.
  CpuTimes Times(platform::AddressSpace* as);
  // The task's CPU time now with the host's precision (the CPU-time clocks).
  int64_t Runtime(platform::AddressSpace* as);
  // The largest resident set seen (sampled at exec, exit and whenever
  // resident_bytes is passed here), in KiB as ru_maxrss counts it.
  int64_t MaxRssKib(uint64_t resident_bytes);

  // Children the task waited for: their times and, recursively, their own
  // waited-for children's (RUSAGE_CHILDREN, tms_cutime, tms_cstime).
  CpuTimes children;
  int64_t children_maxrss_kib = 0;

 private:
  // The stub's usage split like cputime_adjust: monotonic in both parts.
  CpuTimes Adjust(const platform::CpuUsage& u);
  int64_t HostThreadRuntime() const;
  platform::CpuUsage StubUsage(platform::AddressSpace* as) const;

  std::optional<clockid_t> host_clock_;  // the task's sentry thread's CPU clock
  CpuTimes prev_stub_;                   // the last split of the current stub's runtime
  CpuTimes retired_;                     // stubs of images replaced by exec
  int64_t retired_runtime_ = 0;
  std::optional<CpuTimes> frozen_;  // set at exit
  int64_t frozen_runtime_ = 0;
  int64_t maxrss_kib_ = 0;
};

// The task's times now (its frozen ones once it has exited).
CpuTimes TaskTimes(Task& t);
// The task's runtime now, for the CPU-time clocks.
int64_t TaskRuntime(Task& t);
// getrusage(2)'s answer for the task itself (RUSAGE_SELF, RUSAGE_THREAD:
// one thread per process for now), for its waited-for children
// (RUSAGE_CHILDREN), and for both (wait4's report on a child).
struct rusage SelfRusage(Task& t);
struct rusage ChildrenRusage(Task& t);
struct rusage BothRusage(Task& t);

// Hooks of the process model (kernel.cc).
// Task::Run, on the task's thread.
void BindTaskCpu(Task& t);
// Task::Exec, before the old address space goes.
void RetireTaskAddressSpace(Task& t);
// Task::Exit, on the task's thread: its times stop here.
void FreezeTaskCpu(Task& t);
// The SIGCHLD of a child's exit carries the child's times in clock ticks.
void SetSigchldTimes(Task& child, siginfo_t* info);
// wait4 reaps child: the parent's children times gain the child's own and
// its children's (wait(2), times(2)).
void AccountReapedChild(Task& parent, Task& child);

// Clock ticks (USER_HZ, sysconf(_SC_CLK_TCK)) as times(2) counts them.
inline constexpr int64_t kUserHz = 100;
inline int64_t NsToClockTicks(int64_t ns) { return ns / (1000000000 / kUserHz); }

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_CPUTIME_H_
