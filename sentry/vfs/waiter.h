// Waiting for events: a Waiter is one blocked task's wake-up channel, and a
// WaitQueue is the list of waiters interested in an object (a pipe, a child's
// exit, a socket later). Event bits are poll(2)'s: POLLIN, POLLOUT, POLLERR,
// POLLHUP, POLLPRI, POLLRDNORM, ... A queue's entries are WaitEntries: a
// Waiter, or another listener such as an epoll instance watching a file.
//
// A Waiter is backed by an eventfd, so one host poll(2) can wait for sentry
// events and for host descriptors (the terminal behind stdio) together, and a
// notification sent before the wait starts is never lost.
//
// Lock order: WaitQueue::mu_ is a leaf. Entries hear events after it is
// released (an epoll instance hearing a file notifies its own queue, and
// instances watching each other must not nest queue locks), but Remove
// waits for notifications in flight, so a removed entry hears no more and
// may be destroyed. Waiter::Notify takes no lock and may be called with any
// lock held, from any thread.
#ifndef HUSK_SENTRY_VFS_WAITER_H_
#define HUSK_SENTRY_VFS_WAITER_H_

#include <poll.h>

#include <cstdint>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/fd.h"

namespace husk {

// Something a WaitQueue wakes. OnEvents must not remove entries from the
// queue that calls it.
class WaitEntry {
 public:
  // `events`: the bits the queue was notified with (they share a bit with
  // the entry's mask).
  virtual void OnEvents(uint32_t events) = 0;
  // The queue is being destroyed with the entry still on it (a watched file
  // went away): the entry must not use the queue again.
  virtual void OnQueueGone() {}

 protected:
  ~WaitEntry() = default;
};

class Waiter : public WaitEntry {
 public:
  Waiter();
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Wakes the waiter (or makes its next Wait return at once).
  void Notify();
  // Forgets notifications received so far.
  void Clear();
  // Blocks until notified, until `deadline` (on the sandbox's monotonic
  // clock, MonotonicNow), or until one of `host` (host
  // descriptors with their events; revents are filled in) is ready. Returns
  // true when woken by Notify or a host descriptor, false at the deadline.
  // Consumes the notification.
  bool Wait(absl::Time deadline, std::vector<pollfd>* host = nullptr);

  void OnEvents(uint32_t events) override { Notify(); }

 private:
  UniqueFd fd_;
};

class WaitQueue {
 public:
  WaitQueue() = default;
  // Entries still registered hear OnQueueGone.
  ~WaitQueue();
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  // Registers w for the events in mask; an entry may be on many queues.
  void Add(WaitEntry* w, uint32_t mask);
  // Unregisters w; returns once no Notify is calling it.
  void Remove(WaitEntry* w);
  // Wakes every entry whose mask shares a bit with events.
  void Notify(uint32_t events);

 private:
  absl::Mutex mu_;
  std::vector<std::pair<WaitEntry*, uint32_t>> waiters_ ABSL_GUARDED_BY(mu_);
  int notifying_ ABSL_GUARDED_BY(mu_) = 0;  // Notify calls calling entries
  absl::CondVar idle_;                       // signalled when notifying_ drops to 0
};

// Registers a waiter on a queue for a scope.
class ScopedWait {
 public:
  ScopedWait(WaitQueue* q, WaitEntry* w, uint32_t mask) : q_(q), w_(w) {
    if (q_ != nullptr) q_->Add(w_, mask);
  }
  ~ScopedWait() {
    if (q_ != nullptr) q_->Remove(w_);
  }
  ScopedWait(const ScopedWait&) = delete;
  ScopedWait& operator=(const ScopedWait&) = delete;

 private:
  WaitQueue* q_;
  WaitEntry* w_;
};

}  // namespace husk

#endif  // HUSK_SENTRY_VFS_WAITER_H_
