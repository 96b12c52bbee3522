#include "sentry/kernel/timer_queue.h"

#include <errno.h>

#include <system_error>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "sentry/kernel/clocks.h"

namespace husk {
namespace {

// What the timer thread sleeps by (host time, never the application's).
int64_t HostMonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return TimespecToNs(ts);
}

}  // namespace

Alarm::~Alarm() { TimerQueue::Get().Disarm(*this); }

TimerQueue& TimerQueue::Get() {
  // Never destroyed: the detached thread may use it until the sentry exits.
  static TimerQueue* const queue = new TimerQueue();
  return *queue;
}

Status TimerQueue::Start() {
  absl::MutexLock l(&mu_);
  if (started_) return Ok();
  try {
    std::thread([this] { Loop(); }).detach();
  } catch (const std::system_error&) {
    return Errno{EAGAIN};  // a pids or memory limit refused the thread
  }
  started_ = true;
  return Ok();
}

void TimerQueue::InsertLocked(Entry e, int64_t mono_now) {
  // The deadline on the host's CLOCK_MONOTONIC: as far ahead as `when` is
  // on the alarm's own (sandbox) clock.
  int64_t left = e.when - SandboxNow(e.clock);
  int64_t deadline =
      left <= 0 ? mono_now : (left > INT64_MAX - mono_now ? INT64_MAX : mono_now + left);
  bool earliest = queue_.empty() || deadline < queue_.begin()->first;
  const Alarm* key = e.key;
  armed_[key] = queue_.emplace(deadline, std::move(e));
  if (earliest) cv_.Signal();
}

void TimerQueue::RemoveLocked(const Alarm* key) {
  auto it = armed_.find(key);
  if (it == armed_.end()) return;
  queue_.erase(it->second);
  armed_.erase(it);
}

void TimerQueue::Arm(Alarm& alarm, clockid_t clock, int64_t when, uint64_t token) {
  absl::MutexLock l(&mu_);
  RemoveLocked(&alarm);
  InsertLocked(Entry{&alarm, alarm.weak_from_this(), clock, when, token}, HostMonotonicNs());
}

void TimerQueue::Disarm(const Alarm& alarm) {
  absl::MutexLock l(&mu_);
  RemoveLocked(&alarm);
}

void TimerQueue::Loop() {
  for (;;) {
    std::vector<Entry> due;
    {
      absl::MutexLock l(&mu_);
      while (due.empty()) {
        if (queue_.empty()) {
          cv_.Wait(&mu_);
          continue;
        }
        int64_t now = HostMonotonicNs();
        if (queue_.begin()->first > now) {
          cv_.WaitWithTimeout(&mu_, absl::Nanoseconds(queue_.begin()->first - now));
          continue;
        }
        while (!queue_.empty() && queue_.begin()->first <= now) {
          auto it = queue_.begin();
          Entry e = std::move(it->second);
          RemoveLocked(e.key);              // every entry is its alarm's current one
          if (e.alarm.expired()) continue;  // the owner is going away
          if (SandboxNow(e.clock) < e.when) {
            // Its own clock is behind the host's estimate: later.
            InsertLocked(std::move(e), now);
            continue;
          }
          due.push_back(std::move(e));
        }
      }
    }
    // Outside the lock: an owner takes its own locks (and the big kernel
    // lock) and may arm again.
    for (Entry& e : due) {
      if (std::shared_ptr<Alarm> a = e.alarm.lock()) a->Expire(e.token);
    }
  }
}

}  // namespace husk
