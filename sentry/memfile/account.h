// MemoryAccount: the sandbox's memory limit. Everything the application can
// make the sentry hold in proportion to what it does is charged here:
// memory-file pages (anonymous memory, copies on write, file pages), tmpfs
// data and pipe buffers. A charge past the limit fails; what fails then is
// Linux's answer at its memory-cgroup limit (the OOM killer for a page
// fault, ENOSPC for tmpfs, ENOMEM for a pipe write).
//
// One account per sentry process (a sandbox): the limit is set at boot.
#ifndef HUSK_SENTRY_MEMFILE_ACCOUNT_H_
#define HUSK_SENTRY_MEMFILE_ACCOUNT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/synchronization/mutex.h"

namespace husk {

class MemoryAccount {
 public:
  // The sandbox's account.
  static MemoryAccount& Sandbox();

  void SetLimit(uint64_t bytes) { limit_.store(bytes); }
  uint64_t limit() const { return limit_.load(); }
  uint64_t used() const { return used_.load(); }
  // Charges bytes unless that would pass the limit. Short of room, it first
  // asks the reclaimer (if one is set) to give back what caches hold.
  bool TryCharge(uint64_t bytes);
  // What gives memory back under pressure: called with the pages wanted,
  // returns the pages freed. It must not charge.
  using Reclaimer = size_t (*)(size_t pages);
  void SetReclaimer(Reclaimer r) { reclaimer_.store(r); }
  void Uncharge(uint64_t bytes) { used_.fetch_sub(bytes); }
  // Memory freed but still on its way back to the host stays charged:
  // ReleaseStarted says it is coming, ReleaseDone uncharges it. A charge
  // that fails while some is coming waits for it and tries again.
  void ReleaseStarted(uint64_t bytes) { releasing_.fetch_add(bytes); }
  void ReleaseDone(uint64_t bytes);

 private:
  std::atomic<uint64_t> limit_{UINT64_MAX};
  std::atomic<uint64_t> used_{0};
  std::atomic<Reclaimer> reclaimer_{nullptr};
  std::atomic<uint64_t> releasing_{0};
  absl::Mutex release_mu_;
  absl::CondVar released_;
  bool TryChargeOnce(uint64_t bytes);
};

// A page of sentry heap charged to the sandbox (tmpfs data, pipe buffers):
// freeing it gives the charge back.
inline constexpr size_t kAccountedPageSize = 4096;
struct AccountedPageDeleter {
  void operator()(char* p) const;
};
using AccountedPage = std::unique_ptr<char[], AccountedPageDeleter>;
// A zero-filled page, or null when the sandbox is at its limit (or the host
// has no memory to give).
AccountedPage NewAccountedPage();

}  // namespace husk

#endif  // HUSK_SENTRY_MEMFILE_ACCOUNT_H_
