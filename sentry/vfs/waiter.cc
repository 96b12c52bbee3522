#include "sentry/vfs/waiter.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "sentry/time/sandbox_clock.h"

namespace husk {

Waiter::Waiter() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  // Without its eventfd the sentry cannot block anything safely.
  if (!fd_.valid()) abort();
}

void Waiter::Notify() {
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: already notified.
  (void)!write(fd_.get(), &one, sizeof(one));
}

void Waiter::Clear() {
  uint64_t v;
  (void)!read(fd_.get(), &v, sizeof(v));
}

bool Waiter::Wait(absl::Time deadline, std::vector<pollfd>* host) {
  std::vector<pollfd> fds;
  fds.push_back(pollfd{fd_.get(), POLLIN, 0});
  if (host != nullptr) fds.insert(fds.end(), host->begin(), host->end());
  for (;;) {
    int timeout_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      absl::Duration left = deadline - MonotonicNow();
      if (left <= absl::ZeroDuration()) return false;
      // Round up so a wait never ends before its deadline.
      timeout_ms = static_cast<int>(std::min<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), int64_t{1} << 30));
    }
    int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      abort();  // EFAULT/EINVAL/ENOMEM on our own arguments: a sentry bug
    }
    if (n == 0) continue;  // re-checks the deadline
    if (host != nullptr) {
      for (size_t i = 0; i < host->size(); i++) (*host)[i].revents = fds[i + 1].revents;
    }
    if (fds[0].revents & POLLIN) Clear();
    return true;
  }
}

WaitQueue::~WaitQueue() {
  std::vector<std::pair<WaitEntry*, uint32_t>> gone;
  {
    absl::MutexLock l(&mu_);
    while (notifying_ > 0) idle_.Wait(&mu_);
    gone.swap(waiters_);
  }
  // Told outside the lock: an entry may hold its own lock while it calls
  // Remove here (which then finds nothing), and take that lock in
  // OnQueueGone; the queue outlives every entry's OnQueueGone, so a Remove
  // begun before it ends first.
  for (auto& [w, mask] : gone) w->OnQueueGone();
}

void WaitQueue::Add(WaitEntry* w, uint32_t mask) {
  absl::MutexLock l(&mu_);
  waiters_.emplace_back(w, mask);
}

void WaitQueue::Remove(WaitEntry* w) {
  absl::MutexLock l(&mu_);
  waiters_.erase(
      std::remove_if(waiters_.begin(), waiters_.end(), [w](const auto& e) { return e.first == w; }),
      waiters_.end());
  // A Notify that began before may still be about to call w: once it is
  // done, the caller may destroy w.
  while (notifying_ > 0) idle_.Wait(&mu_);
}

void WaitQueue::Notify(uint32_t events) {
  std::vector<WaitEntry*> woken;
  {
    absl::MutexLock l(&mu_);
    for (auto& [w, mask] : waiters_) {
      if (mask & events) woken.push_back(w);
    }
    if (woken.empty()) return;
    notifying_++;
  }
  // Outside the lock: an entry may notify other queues (an epoll instance
  // wakes its own waiters), and queues chained by the application must not
  // nest their locks.
  for (WaitEntry* w : woken) w->OnEvents(events);
  absl::MutexLock l(&mu_);
  if (--notifying_ == 0) idle_.SignalAll();
}

}  // namespace husk
