// ScopedBlocking: drops the big kernel lock while the current task blocks
// in the host (a sleep, a read from the terminal) so other tasks can run.
#ifndef HUSK_SENTRY_KERNEL_BLOCKING_H_
#define HUSK_SENTRY_KERNEL_BLOCKING_H_

#include "sentry/kernel/kernel.h"

namespace husk {

class ScopedBlocking {
 public:
  explicit ScopedBlocking(Kernel& k) ABSL_UNLOCK_FUNCTION(k.mu) : k_(k) { k_.mu.Unlock(); }
  ~ScopedBlocking() ABSL_NO_THREAD_SAFETY_ANALYSIS { k_.mu.Lock(); }
  ScopedBlocking(const ScopedBlocking&) = delete;
  ScopedBlocking& operator=(const ScopedBlocking&) = delete;

 private:
  Kernel& k_;
};

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_BLOCKING_H_
