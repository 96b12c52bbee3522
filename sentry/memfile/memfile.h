// The memory file: one memfd per sandbox that backs all application memory.
// The sentry maps it whole (sparse, MAP_NORESERVE) and copies in and out of
// application memory through that mapping; platforms map ranges of it into
// application address spaces.
//
// Lock order: MemoryFile::mu_ is a leaf.
#ifndef HUSK_SENTRY_MEMFILE_MEMFILE_H_
#define HUSK_SENTRY_MEMFILE_MEMFILE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "base/fd.h"
#include "base/result.h"

namespace husk {

inline constexpr size_t kPageSize = 4096;
inline constexpr uintptr_t PageDown(uintptr_t a) { return a & ~(kPageSize - 1); }
inline constexpr uintptr_t PageUp(uintptr_t a) { return (a + kPageSize - 1) & ~(kPageSize - 1); }

class MemoryFile {
 public:
  // Creates a memory file able to hold up to max_bytes.
  static Result<std::unique_ptr<MemoryFile>> Create(size_t max_bytes);
  // The sandbox's memory file, which tmpfs keeps its data in: set once at
  // boot. A process that never sets one (a unit test) gets its own, made on
  // first use and never freed.
  static MemoryFile& Sandbox();
  static void SetSandbox(MemoryFile* mf);
  ~MemoryFile();

  int fd() const { return fd_.get(); }
  // Allocates n contiguous zero-filled pages; returns the file offset.
  Result<uint64_t> Allocate(size_t pages);
  // Drops one reference to each page; a page whose last reference goes
  // returns its memory to the host and then to the allocator. The host's part
  // is done by a releaser thread, off the caller's path, unless the releaser
  // is far behind; until it is done the page stays charged to the sandbox
  // and is not handed out. The caller must have unmapped the page from
  // every application address space first.
  void Free(uint64_t offset, size_t pages);
  // The same for single pages anywhere in the file (in any order).
  void FreePages(std::vector<uint64_t> offsets);
  // Copy-on-write: one more reference to an allocated page (fork shares
  // pages this way until one side writes).
  void IncRef(uint64_t offset);
  // Whether more than one reference holds the page.
  bool Shared(uint64_t offset) const;
  // How many references hold an allocated page (1 unless shared).
  uint32_t References(uint64_t offset) const;
  // The sentry's view of the byte at offset.
  char* At(uint64_t offset) const { return base_ + offset; }
  // Pages handed out and not freed.
  size_t used_bytes() const;
  // Freed pages the releaser has not returned to the host yet.
  size_t releasing_bytes() const;
  // Waits until every freed page is back with the allocator.
  void WaitForReleases();
  // Starts the releaser thread now (at boot, while the host lets the sentry
  // make threads), rather than with the first release.
  void StartReleaser();
  size_t max_bytes() const { return size_; }

 private:
  MemoryFile(UniqueFd fd, char* base, size_t size) : fd_(std::move(fd)), base_(base), size_(size) {}
  using Run = std::pair<uint64_t, size_t>;  // file offset, pages
  // How far the releaser may fall behind before freeing waits for it.
  static constexpr size_t kMaxReleasingPages = size_t{256} << 20 >> 12;
  // How many freed runs an allocation of several pages looks through.
  static constexpr size_t kMaxRunsSearched = 1024;
  // Drops a reference; a page that had the last one joins runs.
  void DropRefLocked(uint64_t off, std::vector<Run>& runs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(std::vector<Run> runs) ABSL_LOCKS_EXCLUDED(mu_);
  void StartReleaserLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaserLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void ReturnToHost(const std::vector<Run>& runs, bool queued) ABSL_LOCKS_EXCLUDED(mu_);
  void WaitForReleasesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteTakenLocked(size_t pages) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first pages (at most `pages`) that allocations will hand out next.
  std::vector<Run> NextToAllocateLocked(size_t pages) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  UniqueFd fd_;
  char* base_;
  size_t size_;
  mutable absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;
  // Freed pages as runs (offset -> page count), coalesced. An allocation
  // takes the lowest run long enough: single pages go out lowest first, so
  // pages allocated one after the other for neighbouring addresses tend to
  // be neighbours in the file too, and the platform maps them with one call.
  std::map<uint64_t, uint64_t> free_runs_ ABSL_GUARDED_BY(mu_);
  size_t used_ ABSL_GUARDED_BY(mu_) = 0;
  // Reference counts of pages held more than once (absent: exactly one).
  absl::flat_hash_map<uint64_t, uint32_t> refs_ ABSL_GUARDED_BY(mu_);
  // Freed runs queued for the releaser, and every page freed but not yet
  // returned (queued or being punched).
  std::vector<Run> releasing_ ABSL_GUARDED_BY(mu_);
  size_t releasing_pages_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool no_releaser_ ABSL_GUARDED_BY(mu_) = false;
  // How many of the pages to be handed out next the releaser has the host
  // allocate ahead of time (8 MiB), once half as many were taken.
  static constexpr size_t kPreparePages = size_t{8} << 20 >> 12;
  size_t taken_since_prepare_ ABSL_GUARDED_BY(mu_) = 0;
  bool prepare_wanted_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar work_;      // releasing_ has runs, or stopping_
  absl::CondVar released_;  // releasing_pages_ fell to zero
  // Started with the memory file (StartReleaser); joined by the destructor.
  std::thread releaser_;
};

}  // namespace husk

#endif  // HUSK_SENTRY_MEMFILE_MEMFILE_H_
