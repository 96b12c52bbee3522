// Waiting for events: a Waiter is one blocked task's wake-up channel, and a
// WaitQueue is the list of waiters interested in an object (a pipe, a child's
// exit, a socket later). Event bits are poll(2)'s: POLLIN, POLLOUT, POLLERR,
// POLLHUP, POLLPRI, POLLRDNORM, ...
//
// A Waiter is backed by an eventfd, so one host poll(2) can wait for sentry
// events and for host descriptors (the terminal behind stdio) together, and a
// notification sent before the wait starts is never lost.
//
// Lock order: WaitQueue::mu_ is a leaf; Waiter::Notify takes no lock and may
// be called with any lock held, from any thread.
#ifndef HUSK_SENTRY_VFS_WAITER_H_
#define HUSK_SENTRY_VFS_WAITER_H_

#include <poll.h>

#include <cstdint>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/fd.h"

namespace husk {

class Waiter {
 public:
  Waiter();
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Wakes the waiter (or makes its next Wait return at once).
  void Notify();
  // Forgets notifications received so far.
  void Clear();
  // Blocks until notified, until `deadline`, or until one of `host` (host
  // descriptors with their events; revents are filled in) is ready. Returns
  // true when woken by Notify or a host descriptor, false at the deadline.
  // Consumes the notification.
  bool Wait(absl::Time deadline, std::vector<pollfd>* host = nullptr);

 private:
  UniqueFd fd_;
};

class WaitQueue {
 public:
  // Registers w for the events in mask; a waiter may be on many queues.
  void Add(Waiter* w, uint32_t mask);
  void Remove(Waiter* w);
  // Wakes every waiter whose mask shares a bit with events.
  void Notify(uint32_t events);

 private:
  absl::Mutex mu_;
  std::vector<std::pair<Waiter*, uint32_t>> waiters_ ABSL_GUARDED_BY(mu_);
};

// Registers a waiter on a queue for a scope.
class ScopedWait {
 public:
  ScopedWait(WaitQueue* q, Waiter* w, uint32_t mask) : q_(q), w_(w) {
    if (q_ != nullptr) q_->Add(w_, mask);
  }
  ~ScopedWait() {
    if (q_ != nullptr) q_->Remove(w_);
  }
  ScopedWait(const ScopedWait&) = delete;
  ScopedWait& operator=(const ScopedWait&) = delete;

 private:
  WaitQueue* q_;
  Waiter* w_;
};

}  // namespace husk

#endif  // HUSK_SENTRY_VFS_WAITER_H_
