// POSIX per-process timers: timer_create(2), timer_settime(2),
// timer_gettime(2), timer_getoverrun(2), timer_delete(2).
//
// A timer counts on a host clock (REALTIME, MONOTONIC, BOOTTIME, TAI) or on
// a task's CPU time (clocks.h), and at expiry sends its signal (SIGEV_SIGNAL
// to the process, SIGEV_THREAD_ID to one of its threads) or does nothing
// (SIGEV_NONE: only timer_gettime shows it). As on Linux, a timer's signal
// is queued at most once: an expiry while it is still queued counts as an
// overrun, and a periodic timer stops while its signal waits and restarts
// when the signal is dequeued (delivered, or taken by sigtimedwait or a
// signalfd), counting the periods missed meanwhile as overruns (si_overrun,
// timer_getoverrun). A periodic timer whose signal is ignored keeps running.
// husk's queues hold one instance of a standard signal: where Linux would
// queue the timer's beside one already pending, husk counts it as ignored.
//
// CPU-time timers: the host cannot arm a timer on the sum of a stub's and a
// sentry thread's CPU time, so the timer thread samples it. A task's CPU
// time grows no faster than the wall clock (its stub and its sentry thread
// take turns), so waking after the CPU time still missing never comes too
// early; at least a tick (1/HZ) apart, as Linux checks CPU timers at ticks.
//
// Timers die with their process and at exec; fork does not copy them; the
// id counter runs on across exec, as it lives in Linux's signal_struct.
//
// The CPU-time interval timers of setitimer(2) (ITIMER_PROF: the process's
// user and system time, SIGPROF; ITIMER_VIRTUAL: its user time, SIGVTALRM)
// are sampled the same way but are no timer ids: one of each per process,
// kept across exec (they live in signal_struct too), not copied by fork.
// As Linux's check_cpu_itimer, an expiry sends the signal to the process
// with SI_KERNEL and reloads the interval once. Like the process CPU-time
// clocks they count the thread group leader's time (clocks.cc), and they
// stop counting once the leader has exited while other threads run on.
//
// Locking: everything here is guarded by the big kernel lock; the timer
// thread takes it before it looks at a timer.
#ifndef HUSK_SENTRY_KERNEL_POSIX_TIMERS_H_
#define HUSK_SENTRY_KERNEL_POSIX_TIMERS_H_

#include <signal.h>
#include <time.h>

#include <cstdint>
#include <map>
#include <memory>

#include "base/result.h"
#include "sentry/kernel/clocks.h"

namespace husk {

class Kernel;
class Task;

class PosixTimers {
 public:
  explicit PosixTimers(Kernel& k) : kernel_(k) {}
  ~PosixTimers();
  PosixTimers(const PosixTimers&) = delete;
  PosixTimers& operator=(const PosixTimers&) = delete;

  // timer_create for t's process; ev null: SIGEV_SIGNAL with SIGALRM and
  // the timer's id as the value. Copies the id out to id_addr in t's memory
  // (where Linux does, before the clock's own checks) and returns it.
  Result<int> Create(Task& t, clockid_t clock, const sigevent* ev, uintptr_t id_addr);
  // timer_settime: arms (a non-zero it_value; absolute: on the timer's
  // clock, else from now) or disarms; returns the setting it replaced.
  Result<itimerspec> Set(Task& t, int id, bool absolute, const itimerspec& value);
  // timer_gettime.
  Result<itimerspec> Get(Task& t, int id);
  // timer_getoverrun: the overruns of the timer's last delivered signal.
  Result<int> Overrun(Task& t, int id);
  // timer_delete. A signal it already queued stays pending.
  Status Delete(Task& t, int id);

  // setitimer(2) with ITIMER_PROF (part kProf) or ITIMER_VIRTUAL (kVirt)
  // for t's process: arms (a non-zero it_value) or disarms; returns the
  // setting it replaced, as set_cpu_itimer does.
  Result<itimerspec> SetCpuItimer(Task& t, CpuClockPart part, const itimerspec& value);
  // getitimer(2) with ITIMER_PROF or ITIMER_VIRTUAL (get_cpu_itimer).
  itimerspec GetCpuItimer(Task& t, CpuClockPart part);
  // RLIMIT_CPU of t's process changed (setrlimit, prlimit, or a new
  // process's copy at fork): SIGXCPU at the soft limit of CPU time (user +
  // system) and each second after it, SIGKILL at the hard limit, as Linux's
  // check_process_timers; checked at most once a tick.
  void UpdateCpuRlimit(Task& t);

  // Hooks of the process model. exec deletes the process's timers (not its
  // interval timers); exit forgets the process.
  void OnExec(int tgid);
  void OnExit(int tgid);
  // t dequeues a SI_TIMER signal (Task::DequeueSignal): fills in its
  // si_overrun and restarts the periodic timer that sent it.
  void OnDequeue(Task& t, siginfo_t* info);

 private:
  class Timer;
  class CpuItimer;
  class CpuRlimit;
  struct Process {
    int next_id = 0;
    std::map<int, std::shared_ptr<Timer>> timers;
    // By CpuClockPart: kProf (ITIMER_PROF), kVirt (ITIMER_VIRTUAL); null
    // until first set.
    std::shared_ptr<CpuItimer> itimers[2];
    std::shared_ptr<CpuRlimit> cpu_rlimit;  // null until RLIMIT_CPU is finite
  };
  Result<Timer*> Find(Task& t, int id);

  Kernel& kernel_;
  std::map<int, Process> processes_;  // by tgid
};

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_POSIX_TIMERS_H_
