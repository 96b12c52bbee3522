// FileCache: the pages of one file that does not change under the sandbox
// (a file of the gofer's read-only tree), held in the memory file so that
// mappings of it share them: every exec of a program maps the same pages of
// its text and its libraries, read-only, and copies only what it writes.
//
// Pages are read a chunk at a time (kChunkPages, one host read into pages
// that are neighbours in the memory file, so they map with one call). The
// cache holds one reference to each page; a mapping takes its own. Caches
// are bounded together: past the budget (and whenever the sandbox's memory
// account runs short), the least recently used caches drop their pages;
// pages that mappings still hold stay with them.
//
// Lock order: a cache's mu_ and the registry's lock are leaves, never held
// while allocating memory-file pages (allocation may reclaim caches).
#ifndef HUSK_SENTRY_MEMFILE_FILE_CACHE_H_
#define HUSK_SENTRY_MEMFILE_FILE_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>

#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "base/result.h"
#include "sentry/memfile/memfile.h"

namespace husk {

class FileCache : public std::enable_shared_from_this<FileCache> {
 public:
  static constexpr size_t kChunkPages = 256;
  // Reads up to n bytes at offset of the file; short only at its end.
  using Reader = absl::FunctionRef<Result<size_t>(uint64_t offset, char* buf, size_t n)>;

  // A cache for a file of `size` bytes (fixed for the cache's life).
  static std::shared_ptr<FileCache> Create(MemoryFile& mf, uint64_t size);
  ~FileCache();
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // The memory-file offset of page `index`, read through `read` on a miss,
  // with one reference taken for the caller. EFAULT for a page wholly past
  // the end of the file; ENOMEM when the sandbox is out of memory; the
  // reader's error if the read fails.
  Result<uint64_t> Page(uint64_t index, Reader read);
  // Drops the cache's references (pages mappings hold stay with them).
  void Drop();
  size_t cached_pages();

  // Every cache together holds at most this many pages (set at boot from
  // the sandbox's memory limit); 0 disables caching of new pages.
  static void SetBudget(size_t pages);
  static size_t TotalPages();
  // Drops least recently used caches until `pages` pages came back to the
  // memory file or nothing is left to drop; returns how many came back.
  static size_t Reclaim(size_t pages);

 private:
  FileCache(MemoryFile& mf, uint64_t size) : mf_(mf), size_(size) {}
  void Touch();

  MemoryFile& mf_;
  const uint64_t size_;
  absl::Mutex mu_;
  std::map<uint64_t, uint64_t> pages_ ABSL_GUARDED_BY(mu_);  // index -> memory-file offset
};

}  // namespace husk

#endif  // HUSK_SENTRY_MEMFILE_FILE_CACHE_H_
