// The futex table: tasks waiting in futex(2), by key, in arrival order.
//
// Guarded by the big kernel lock, like the rest of the kernel for now: a
// waiter compares the word and queues under it, and a waker dequeues under
// it, so a wake between the compare and the sleep is never lost (the waker
// notifies the task's Waiter, which Task::Block sees even if it has not
// started to sleep).
#ifndef HUSK_SENTRY_KERNEL_FUTEX_H_
#define HUSK_SENTRY_KERNEL_FUTEX_H_

#include <cstdint>
#include <list>
#include <map>

#include "sentry/mm/mm.h"

namespace husk {

class Task;

struct FutexWaiter {
  Task* task = nullptr;
  FutexKey key;
  uint32_t bitset = ~0u;
  bool woken = false;
  bool handed = false;  // a PI lock was handed to this waiter (FUTEX_UNLOCK_PI)
};

class FutexTable {
 public:
  // Queues w (which lives until it is removed or woken).
  void Enqueue(FutexWaiter* w);
  // Takes w out of its queue if it is still in one (a timeout, a signal).
  void Remove(FutexWaiter* w);
  // Wakes up to n waiters on key whose bitset meets `bitset`, first come
  // first served; returns how many.
  int Wake(const FutexKey& key, int n, uint32_t bitset);
  // Wakes up to n_wake waiters on from, then moves up to n_requeue of the
  // rest to `to`; returns how many were woken plus moved.
  int Requeue(const FutexKey& from, const FutexKey& to, int n_wake, int n_requeue);
  // Whether anyone waits on key.
  bool HasWaiters(const FutexKey& key) const { return queues_.count(key) != 0; }
  // Takes the first waiter on key out of its queue (null if none), without
  // waking it.
  FutexWaiter* TakeFirst(const FutexKey& key);

 private:
  std::map<FutexKey, std::list<FutexWaiter*>> queues_;
};

// What Linux's mm_release does for a task leaving its memory (exit, exec):
// walks its robust futex list, marking each lock it holds FUTEX_OWNER_DIED
// and waking a waiter, then clears and wakes its clear_child_tid word.
void ReleaseFutexes(Task& t);

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_FUTEX_H_
