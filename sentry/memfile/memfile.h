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
  // returns to the allocator and its memory to the host.
  void Free(uint64_t offset, size_t pages);
  // The same for single pages anywhere in the file (in any order).
  void FreePages(std::vector<uint64_t> offsets);
  // Copy-on-write: one more reference to an allocated page (fork shares
  // pages this way until one side writes).
  void IncRef(uint64_t offset);
  // Whether more than one reference holds the page.
  bool Shared(uint64_t offset) const;
  // The sentry's view of the byte at offset.
  char* At(uint64_t offset) const { return base_ + offset; }
  size_t used_bytes() const;
  size_t max_bytes() const { return size_; }

 private:
  MemoryFile(UniqueFd fd, char* base, size_t size) : fd_(std::move(fd)), base_(base), size_(size) {}
  UniqueFd fd_;
  char* base_;
  size_t size_;
  mutable absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;
  // Freed pages as runs (offset -> page count), coalesced; single pages are
  // handed out lowest first, so pages allocated one after the other for
  // neighbouring addresses tend to be neighbours in the file too, and the
  // platform maps them with one call.
  std::map<uint64_t, uint64_t> free_runs_ ABSL_GUARDED_BY(mu_);
  size_t used_ ABSL_GUARDED_BY(mu_) = 0;
  // Reference counts of pages held more than once (absent: exactly one).
  absl::flat_hash_map<uint64_t, uint32_t> refs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace husk

#endif  // HUSK_SENTRY_MEMFILE_MEMFILE_H_
