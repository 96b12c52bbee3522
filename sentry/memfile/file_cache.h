// FileCache: the pages of one file of the gofer's tree, held in the memory
// file so that mappings of it share them: every exec of a program maps the
// same pages of its text and its libraries, read-only, and copies only what
// it writes.
//
// A file of a read-only tree never changes under its cache. A file the
// sandbox may write (a read-write volume's) has a writable cache: write(2)
// goes to the file and into the pages cached (Update), read(2) reads cached
// pages from the cache (Read), and pages that writable shared mappings got
// are dirty until WriteBack writes them to the file (msync, fsync, munmap,
// and before a reclaim lets a page go). A writable cache never lets go of a
// page a mapping still holds, so every mapping and read(2) keep seeing the
// same bytes.
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
#include <functional>
#include <map>
#include <memory>
#include <set>

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

  // Writes n bytes at offset of the file.
  using Writer = std::function<Status(uint64_t offset, const char* buf, size_t n)>;

  // A cache for a file of `size` bytes (fixed for the cache's life).
  static std::shared_ptr<FileCache> Create(MemoryFile& mf, uint64_t size);
  // A cache for a file the sandbox may change, written back through `write`.
  static std::shared_ptr<FileCache> CreateWritable(MemoryFile& mf, uint64_t size, Writer write);
  ~FileCache();
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // The memory-file offset of page `index`, read through `read` on a miss,
  // with one reference taken for the caller. EFAULT for a page wholly past
  // the end of the file; ENOMEM when the sandbox is out of memory; the
  // reader's error if the read fails.
  Result<uint64_t> Page(uint64_t index, Reader read);
  // Drops the cache's references (pages mappings hold stay with them). A
  // writable cache writes its dirty pages back first, and keeps the pages
  // mappings hold.
  void Drop();
  size_t cached_pages();

  // Writable caches only (the calls below do nothing on the others).
  // Page `index` was handed to a writable shared mapping: dirty from now on.
  void MarkDirty(uint64_t index);
  // Writes the dirty pages that overlap [offset, offset+len) back to the
  // file, clipped to its size; those no mapping holds any more are clean
  // after. The first error is returned, after trying every page.
  Status WriteBack(uint64_t offset, uint64_t len);
  size_t dirty_pages();
  // write(2) of n bytes at offset, which the caller also writes to the file:
  // the pages cached take the bytes too. Grows the size if it ends past it.
  void Update(uint64_t offset, const char* buf, size_t n);
  // read(2): up to n bytes at offset, short at the end of the file; cached
  // pages are copied, the rest read from the file through `read`.
  Result<size_t> Read(uint64_t offset, char* buf, size_t n, Reader read);
  // The file's size changed (truncate): pages wholly past the new end leave
  // the cache (mappings keep theirs), the tail of the last page reads zeros.
  void Resize(uint64_t size);
  uint64_t size();

  // Every cache together holds at most this many pages (set at boot from
  // the sandbox's memory limit); 0 disables caching of new pages.
  static void SetBudget(size_t pages);
  static size_t TotalPages();
  // Drops least recently used caches until `pages` pages came back to the
  // memory file or nothing is left to drop; returns how many came back.
  static size_t Reclaim(size_t pages);

 private:
  FileCache(MemoryFile& mf, uint64_t size, Writer write)
      : mf_(mf), write_(std::move(write)), size_(size) {}
  void Touch();
  // Registers a new cache in the LRU.
  static void Register(const std::shared_ptr<FileCache>& cache);

  MemoryFile& mf_;
  const Writer write_;  // null: a read-only cache
  absl::Mutex mu_;
  uint64_t size_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, uint64_t> pages_ ABSL_GUARDED_BY(mu_);  // index -> memory-file offset
  std::set<uint64_t> dirty_ ABSL_GUARDED_BY(mu_);            // indexes, all in pages_
};

}  // namespace husk

#endif  // HUSK_SENTRY_MEMFILE_FILE_CACHE_H_
