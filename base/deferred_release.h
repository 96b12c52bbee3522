// DeferRelease: drops a reference without recursing on the host stack.
//
// Objects that own their neighbours (a dentry its parent, a directory its
// children) would free a chain of n objects through n nested destructors,
// and an application decides n (200,000 nested directories). A destructor
// hands each owned reference to DeferRelease instead: the outermost call
// drains a per-thread queue in a loop, and calls made while it drains only
// append, so the depth of destruction stays constant.
#ifndef HUSK_BASE_DEFERRED_RELEASE_H_
#define HUSK_BASE_DEFERRED_RELEASE_H_

#include <memory>
#include <utility>
#include <vector>

namespace husk {

namespace internal {
struct ReleaseQueue {
  std::vector<std::shared_ptr<void>> pending;
  bool draining = false;
};
inline ReleaseQueue& ThreadReleaseQueue() {
  thread_local ReleaseQueue q;
  return q;
}
}  // namespace internal

template <typename T>
void DeferRelease(std::shared_ptr<T> ref) {
  if (ref == nullptr) return;
  internal::ReleaseQueue& q = internal::ThreadReleaseQueue();
  q.pending.push_back(std::move(ref));
  if (q.draining) return;
  q.draining = true;
  while (!q.pending.empty()) {
    std::shared_ptr<void> last = std::move(q.pending.back());
    q.pending.pop_back();
    last.reset();  // may append more work; the loop takes it
  }
  q.draining = false;
}

}  // namespace husk

#endif  // HUSK_BASE_DEFERRED_RELEASE_H_
