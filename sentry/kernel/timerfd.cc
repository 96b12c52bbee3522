#include "sentry/kernel/timerfd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>

#include <cstring>

#include "absl/synchronization/mutex.h"
#include "sentry/kernel/clocks.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/timer_queue.h"

namespace husk::timerfd {

// The timer's state, shared with the timer thread, which may call Expire
// while the file is being closed.
class TimerFile::Timer final : public Alarm {
 public:
  Timer(clockid_t clock, WaitQueue* queue) : clock_(clock), queue_(queue) {}

  void Expire(uint64_t token) override {
    absl::MutexLock l(&mu_);
    if (token != generation_) return;  // set again since
    Update();
    if (ticks_ > 0) {
      // timerfd_tmrproc: readers and pollers wake; the timer stays stopped
      // until the expirations are read (or looked at by Get).
      if (queue_ != nullptr) queue_->Notify(POLLIN);
    } else {
      ArmLocked();
    }
  }

  itimerspec Set(bool absolute, const itimerspec& value) {
    absl::MutexLock l(&mu_);
    int64_t now = Update();
    itimerspec old = CurrentLocked(now);
    generation_++;
    ticks_ = 0;
    interval_ = TimespecToNs(value.it_interval);
    int64_t v = TimespecToNs(value.it_value);
    armed_ = v != 0;
    if (armed_) {
      // A moment already past expires at once, as hrtimer_start does.
      next_ = absolute ? v : SaturatingAdd(now, v);
      ArmLocked();
    } else {
      TimerQueue::Get().Disarm(*this);
    }
    return old;
  }

  itimerspec Get() {
    absl::MutexLock l(&mu_);
    int64_t now = Update();
    // timerfd_gettime forwards a periodic timer and starts it again.
    ArmLocked();
    return CurrentLocked(now);
  }

  // The expirations waiting to be read, taken (0: none).
  uint64_t Take() {
    absl::MutexLock l(&mu_);
    Update();
    uint64_t ticks = ticks_;
    if (ticks > 0) {
      ticks_ = 0;
      ArmLocked();  // a periodic timer runs again until its next expiry
    }
    return ticks;
  }

  bool Expired() {
    absl::MutexLock l(&mu_);
    Update();
    return ticks_ > 0;
  }

  // Registers w for POLLIN on the file's queue unless expirations already
  // wait; under the timer's lock, so an expiry after the check wakes it.
  bool AddWaiterUnlessExpired(Waiter* w) {
    absl::MutexLock l(&mu_);
    Update();
    if (ticks_ > 0) return false;
    queue_->Add(w, POLLIN);
    return true;
  }

  // The file is going away: no more notifications.
  void Detach() {
    absl::MutexLock l(&mu_);
    queue_ = nullptr;
    armed_ = false;
    generation_++;
    TimerQueue::Get().Disarm(*this);
  }

 private:
  // Counts the expirations up to now, as Linux's hrtimer_forward does when
  // a periodic timer is read; returns now on the timer's clock.
  int64_t Update() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int64_t now = SandboxNow(clock_);
    if (!armed_ || now < next_) return now;
    if (interval_ == 0) {
      ticks_++;
      armed_ = false;
      return now;
    }
    uint64_t periods = static_cast<uint64_t>(now - next_) / static_cast<uint64_t>(interval_) + 1;
    ticks_ += periods;
    next_ = SaturatingAdd(next_, static_cast<__int128>(periods) * interval_);
    return now;
  }

  void ArmLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (armed_) TimerQueue::Get().Arm(*this, clock_, next_, generation_);
  }

  itimerspec CurrentLocked(int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    itimerspec cur{};
    cur.it_interval = NsToTimespec(interval_);
    if (armed_) cur.it_value = NsToTimespec(next_ - now);  // Update left next_ > now
    return cur;
  }

  absl::Mutex mu_;
  const clockid_t clock_;
  WaitQueue* queue_ ABSL_GUARDED_BY(mu_);  // the file's; null once it is gone
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_ ABSL_GUARDED_BY(mu_) = 0;         // the next expiry, on clock_
  int64_t interval_ ABSL_GUARDED_BY(mu_) = 0;     // 0: one-shot
  uint64_t ticks_ ABSL_GUARDED_BY(mu_) = 0;       // expirations not yet read
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by each Set
};

TimerFile::TimerFile(clockid_t clock, int flags)
    : AnonFile(O_RDWR | (flags & O_NONBLOCK), "[timerfd]"),
      timer_(std::make_shared<Timer>(clock, &queue_)) {}

TimerFile::~TimerFile() { timer_->Detach(); }

itimerspec TimerFile::Set(bool absolute, const itimerspec& value) {
  return timer_->Set(absolute, value);
}

itimerspec TimerFile::Get() { return timer_->Get(); }

// timerfd_read: fewer than 8 bytes is EINVAL; a signal ends a blocked read
// with ERESTARTSYS.
Result<size_t> TimerFile::Read(char* buf, size_t n) {
  if (n < sizeof(uint64_t)) return Errno{EINVAL};
  Task* t = Kernel::Current();
  for (;;) {
    if (uint64_t ticks = timer_->Take(); ticks > 0) {
      memcpy(buf, &ticks, sizeof(ticks));
      return sizeof(ticks);
    }
    if ((flags() & O_NONBLOCK) || t == nullptr) return Errno{EAGAIN};
    if (!timer_->AddWaiterUnlessExpired(&t->waiter)) continue;
    // Reads run inside a syscall, under the big kernel lock.
    t->kernel().mu.AssertHeld();
    Status s = t->Block();
    queue_.Remove(&t->waiter);
    if (!s.ok()) return Errno{kERestartSys};
  }
}

uint32_t TimerFile::Readiness(uint32_t mask) {
  return (timer_->Expired() ? POLLIN : 0) & (mask | POLLERR | POLLHUP);
}

TimerFile* AsTimerFile(vfs::File& f) { return dynamic_cast<TimerFile*>(&f); }

}  // namespace husk::timerfd
