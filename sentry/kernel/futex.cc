#include "sentry/kernel/futex.h"

#include <algorithm>

#include "sentry/kernel/kernel.h"

namespace husk {

void FutexTable::Enqueue(FutexWaiter* w) { queues_[w->key].push_back(w); }

void FutexTable::Remove(FutexWaiter* w) {
  auto it = queues_.find(w->key);
  if (it == queues_.end()) return;
  it->second.remove(w);
  if (it->second.empty()) queues_.erase(it);
}

FutexWaiter* FutexTable::TakeFirst(const FutexKey& key) {
  auto it = queues_.find(key);
  if (it == queues_.end()) return nullptr;
  FutexWaiter* w = it->second.front();
  it->second.pop_front();
  if (it->second.empty()) queues_.erase(it);
  return w;
}

int FutexTable::Wake(const FutexKey& key, int n, uint32_t bitset) {
  auto it = queues_.find(key);
  if (it == queues_.end()) return 0;
  int woken = 0;
  auto& q = it->second;
  for (auto w = q.begin(); w != q.end() && woken < n;) {
    if (((*w)->bitset & bitset) == 0) {
      ++w;
      continue;
    }
    (*w)->woken = true;
    (*w)->task->waiter.Notify();
    w = q.erase(w);
    woken++;
  }
  if (q.empty()) queues_.erase(it);
  return woken;
}

int FutexTable::Requeue(const FutexKey& from, const FutexKey& to, int n_wake, int n_requeue) {
  int done = Wake(from, n_wake, ~0u);
  auto it = queues_.find(from);
  if (it == queues_.end()) return done;
  // Requeued onto their own queue they stay put, but count (futex_requeue).
  if (from == to) return done + std::min(static_cast<int>(it->second.size()), n_requeue);
  auto& q = it->second;
  int moved = 0;
  while (!q.empty() && moved < n_requeue) {
    FutexWaiter* w = q.front();
    q.pop_front();
    w->key = to;
    queues_[to].push_back(w);
    moved++;
  }
  if (q.empty()) queues_.erase(from);
  return done + moved;
}

namespace {

constexpr uint32_t kFutexWaiters = 0x80000000;
constexpr uint32_t kFutexOwnerDied = 0x40000000;
constexpr uint32_t kFutexTidMask = 0x3fffffff;
constexpr int kRobustListLimit = 2048;  // ROBUST_LIST_LIMIT

// handle_futex_death's update, atomic: a lock the dying tid holds keeps its
// waiters bit and gains FUTEX_OWNER_DIED.
uint32_t MarkOwnerDied(uint32_t old, uint32_t tid) {
  if ((old & kFutexTidMask) != tid) return old;
  return (old & kFutexWaiters) | kFutexOwnerDied;
}

void WakeShared(Task& t, uintptr_t addr) {
  auto key = t.mm().GetFutexKey(addr, false);
  if (key.ok()) t.kernel().futexes.Wake(*key, 1, ~0u);
}

// One entry of the list (handle_futex_death); pending: list_op_pending.
void HandleDeath(Task& t, uintptr_t word, bool pi, bool pending) {
  uint32_t old;
  if (!t.mm().CopyIn(word, &old, sizeof(old)).ok()) return;
  // Died between taking the lock in user space and listing it: wake one
  // so that it is not lost.
  if (pending && !pi && old == 0) {
    WakeShared(t, word);
    return;
  }
  if ((old & kFutexTidMask) != static_cast<uint32_t>(t.tid())) return;
  auto was = t.mm().AtomicRmw32(word, MarkOwnerDied, static_cast<uint32_t>(t.tid()));
  if (!was.ok()) return;
  // A waiter retries and takes the lock with FUTEX_OWNER_DIED set; a PI
  // waiter waits in the kernel whether or not the waiters bit is set.
  if ((*was & kFutexTidMask) == static_cast<uint32_t>(t.tid()) && (pi || (*was & kFutexWaiters))) {
    WakeShared(t, word);
    // PI waiters may wait with FUTEX_PRIVATE_FLAG (glibc's private PI
    // mutexes), where Linux hands the lock on through its PI state.
    if (pi) {
      auto key = t.mm().GetFutexKey(word, true);
      if (key.ok()) t.kernel().futexes.Wake(*key, 1, ~0u);
    }
  }
}

}  // namespace

void ReleaseFutexes(Task& t) {
  if (t.mm_ == nullptr) return;
  if (t.robust_list != 0) {
    // struct robust_list_head { robust_list *next; long futex_offset;
    // robust_list *list_op_pending; }; bit 0 of a pointer marks a PI futex.
    uint64_t head[3];
    if (t.mm().CopyIn(t.robust_list, head, sizeof(head)).ok()) {
      const int64_t offset = static_cast<int64_t>(head[1]);
      const uintptr_t pending = head[2] & ~uintptr_t{1};
      uintptr_t entry = head[0];
      for (int i = 0; (entry & ~uintptr_t{1}) != t.robust_list && i < kRobustListLimit; i++) {
        uintptr_t e = entry & ~uintptr_t{1};
        uint64_t next;
        if (!t.mm().CopyIn(e, &next, sizeof(next)).ok()) break;
        if (e != pending) HandleDeath(t, e + offset, entry & 1, false);
        entry = next;
      }
      if (pending != 0) HandleDeath(t, pending + offset, head[2] & 1, true);
    }
    t.robust_list = 0;
  }
  // Only memory someone else still uses learns of the exit (mm_release).
  if (t.clear_child_tid != 0) {
    int zero = 0;
    if (t.mm_.use_count() > 1 && t.mm().CopyOut(t.clear_child_tid, &zero, sizeof(zero)).ok()) {
      WakeShared(t, t.clear_child_tid);
    }
    t.clear_child_tid = 0;
  }
}

}  // namespace husk
