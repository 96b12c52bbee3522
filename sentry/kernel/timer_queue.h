// Timer expirations in the sentry (timerfd, POSIX timers). An owner arms
// its Alarm for a moment on a sandbox clock (SandboxNow); one sentry thread
// sleeps by the host's CLOCK_MONOTONIC until the earliest armed moment and
// calls the alarm back, never before the alarm's own clock reads that
// moment (each moment is re-checked on its clock, so a clock that drifts
// from the host's only makes the call later).
//
// An alarm is armed at most once: arming it again replaces the earlier
// moment. A call may still come after a Disarm or a re-Arm that raced with
// it; the token given to Arm lets the owner tell a stale call from a current
// one. The queue holds alarms weakly, and an alarm disarms itself when it
// is destroyed.
//
// Lock order: TimerQueue::mu_ is a leaf; Arm and Disarm may be called with
// any lock held. Expire is called with no lock held.
#ifndef HUSK_SENTRY_KERNEL_TIMER_QUEUE_H_
#define HUSK_SENTRY_KERNEL_TIMER_QUEUE_H_

#include <time.h>

#include <cstdint>
#include <map>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "base/result.h"

namespace husk {

// Something a TimerQueue calls back. Owned through a shared_ptr.
class Alarm : public std::enable_shared_from_this<Alarm> {
 public:
  virtual ~Alarm();
  // On the timer thread, with no lock held, once the alarm's clock reads
  // at least the moment it was armed for; token: what Arm was given.
  virtual void Expire(uint64_t token) = 0;
};

class TimerQueue {
 public:
  // The sentry's one queue (it lives until the sentry exits).
  static TimerQueue& Get();

  // Starts the timer thread if it is not running: EAGAIN if the host
  // refuses the thread. Call before arming anything (the syscalls that
  // create timers do, so that Arm never fails).
  Status Start();
  // Calls alarm->Expire(token) once `clock` reads at least `when` (in
  // nanoseconds); replaces an earlier arming of the same alarm.
  void Arm(Alarm& alarm, clockid_t clock, int64_t when, uint64_t token);
  // Forgets the alarm's arming, if any.
  void Disarm(const Alarm& alarm);

 private:
  struct Entry {
    const Alarm* key;  // the alarm's address, which armed_ is keyed by
    std::weak_ptr<Alarm> alarm;
    clockid_t clock;
    int64_t when;  // on clock
    uint64_t token;
  };
  // Keyed by the host's CLOCK_MONOTONIC deadline.
  using Queue = std::multimap<int64_t, Entry>;

  TimerQueue() = default;
  void Loop();
  void InsertLocked(Entry e, int64_t mono_now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveLocked(const Alarm* key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::CondVar cv_;  // the earliest deadline moved, or the first alarm came
  Queue queue_ ABSL_GUARDED_BY(mu_);
  std::map<const Alarm*, Queue::iterator> armed_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_TIMER_QUEUE_H_
