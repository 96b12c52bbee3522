// ScopedBlocking: drops the big kernel lock while the current task blocks
// in the host (a sleep, a read from the terminal) so other tasks can run.
#ifndef HUSK_SENTRY_KERNEL_BLOCKING_H_
#define HUSK_SENTRY_KERNEL_BLOCKING_H_

#include "sentry/kernel/kernel.h"

namespace husk {

// Abseil's ABSL_UNLOCK_FUNCTION is clang's generic release, which a scoped
// capability does not take back when it ends; the exclusive release is.
#if defined(__clang__)
#define HUSK_SCOPED_RELEASE(...) __attribute__((release_capability(__VA_ARGS__)))
#else
#define HUSK_SCOPED_RELEASE(...)
#endif

class ABSL_SCOPED_LOCKABLE ScopedBlocking {
 public:
  explicit ScopedBlocking(Kernel& k) HUSK_SCOPED_RELEASE(k.mu) : k_(k) { k_.mu.Unlock(); }
  // Takes the lock back: to the analysis, the end of the scoped release.
  ~ScopedBlocking() HUSK_SCOPED_RELEASE() ABSL_NO_THREAD_SAFETY_ANALYSIS { k_.mu.Lock(); }
  ScopedBlocking(const ScopedBlocking&) = delete;
  ScopedBlocking& operator=(const ScopedBlocking&) = delete;

 private:
  Kernel& k_;
};

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_BLOCKING_H_
