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

}  // namespace husk
