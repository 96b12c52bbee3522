// timerfd(2): a timer whose expirations are read from a file. A read takes
// the number of expirations since the timer was set or last read (8 bytes,
// host order), blocking while there are none (EAGAIN under O_NONBLOCK); the
// file is readable while there are some. Expirations are counted when they
// are looked at, as Linux forwards a periodic timer at read: a periodic
// timer nobody reads costs one wake-up, not one per period. The sentry's
// timer thread (timer_queue.h) wakes readers and pollers at each expiry.
//
// Locking: the timer's mutex is taken under the big lock (or by the timer
// thread alone) and is above the file's WaitQueue, which is notified with
// it held, as eventfd's is.
#ifndef HUSK_SENTRY_KERNEL_TIMERFD_H_
#define HUSK_SENTRY_KERNEL_TIMERFD_H_

#include <time.h>

#include <memory>

#include "sentry/kernel/anon.h"
#include "sentry/vfs/waiter.h"

namespace husk::timerfd {

class TimerFile : public anon::AnonFile {
 public:
  // flags: O_NONBLOCK (O_CLOEXEC belongs to the descriptor).
  TimerFile(clockid_t clock, int flags);
  ~TimerFile() override;

  // timerfd_settime: arms the timer (a non-zero it_value; absolute: on the
  // timer's clock, else from now) or disarms it, and forgets expirations
  // not yet read. Returns the setting it replaced, as Get would have.
  itimerspec Set(bool absolute, const itimerspec& value);
  // timerfd_gettime: the time to the next expiry (zero if disarmed) and the
  // interval.
  itimerspec Get();

  Result<size_t> Read(char* buf, size_t n) override;
  // POLLIN while expirations wait to be read.
  uint32_t Readiness(uint32_t mask) override;
  WaitQueue* EventQueue() override { return &queue_; }

 private:
  class Timer;
  std::shared_ptr<Timer> timer_;  // shared with the timer thread
  WaitQueue queue_;
};

// The timerfd behind f, or null.
TimerFile* AsTimerFile(vfs::File& f);

}  // namespace husk::timerfd

#endif  // HUSK_SENTRY_KERNEL_TIMERFD_H_
