#include "sentry/memfile/file_cache.h"

#include <errno.h>

#include <algorithm>
#include <atomic>
#include <list>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "sentry/memfile/account.h"

namespace husk {
namespace {

// Every cache, most recently used first.
struct Registry {
  absl::Mutex mu;
  std::list<std::weak_ptr<FileCache>> lru ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<const FileCache*, std::list<std::weak_ptr<FileCache>>::iterator> index
      ABSL_GUARDED_BY(mu);
  std::atomic<size_t> total{0};
  std::atomic<size_t> budget{size_t{64} << 20 >> 12};  // 64 MiB until boot says otherwise
};

Registry& Reg() {
  static auto* r = new Registry();  // never destroyed: caches may outlive statics
  return *r;
}

// The memory account's reclaimer: caches give back what they alone hold.
size_t ReclaimForAccount(size_t pages) { return FileCache::Reclaim(pages); }

}  // namespace

std::shared_ptr<FileCache> FileCache::Create(MemoryFile& mf, uint64_t size) {
  std::shared_ptr<FileCache> cache(new FileCache(mf, size));
  Registry& r = Reg();
  absl::MutexLock l(&r.mu);
  r.lru.push_front(cache);
  r.index[cache.get()] = r.lru.begin();
  MemoryAccount::Sandbox().SetReclaimer(&ReclaimForAccount);
  return cache;
}

FileCache::~FileCache() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  {
    Registry& r = Reg();
    absl::MutexLock l(&r.mu);
    if (auto it = r.index.find(this); it != r.index.end()) {
      r.lru.erase(it->second);
      r.index.erase(it);
    }
  }
  // The last reference: nobody else holds mu_.
  std::vector<uint64_t> held;
  held.reserve(pages_.size());
  for (auto& [index, off] : pages_) held.push_back(off);
  Reg().total.fetch_sub(held.size());
  if (!held.empty()) mf_.FreePages(std::move(held));
}

void FileCache::Touch() {
  Registry& r = Reg();
  absl::MutexLock l(&r.mu);
  if (auto it = r.index.find(this); it != r.index.end()) {
    r.lru.splice(r.lru.begin(), r.lru, it->second);
  }
}

Result<uint64_t> FileCache::Page(uint64_t index, Reader read) {
  const uint64_t file_pages = (size_ + kPageSize - 1) / kPageSize;
  if (index >= file_pages) return Errno{EFAULT};
  bool hit = false;
  uint64_t hit_off = 0;
  {
    absl::MutexLock l(&mu_);
    if (auto it = pages_.find(index); it != pages_.end()) {
      mf_.IncRef(it->second);  // under mu_, so Drop cannot free it first
      hit_off = it->second;
      hit = true;
    }
  }
  if (hit) {
    Touch();
    return hit_off;
  }
  // A miss: read the chunk around it into neighbouring pages, without mu_
  // (allocating may reclaim caches, this one included).
  const uint64_t first = index - index % kChunkPages;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkPages, file_pages - first));
  ASSIGN_OR_RETURN(uint64_t base, mf_.Allocate(n));
  size_t want = static_cast<size_t>(std::min<uint64_t>(n * kPageSize, size_ - first * kPageSize));
  size_t got = 0;
  while (got < want) {
    auto r = read(first * kPageSize + got, mf_.At(base) + got, want - got);
    if (!r.ok()) {
      mf_.Free(base, n);
      return Errno{r.error()};
    }
    if (*r == 0) break;  // the file is shorter than it said: the rest reads zeros
    got += *r;
  }
  std::vector<uint64_t> spare;  // pages another reader cached meanwhile
  size_t added = 0;
  uint64_t off;
  {
    absl::MutexLock l(&mu_);
    for (size_t i = 0; i < n; i++) {
      auto [it, inserted] = pages_.try_emplace(first + i, base + i * kPageSize);
      if (inserted) {
        added++;
      } else {
        spare.push_back(base + i * kPageSize);
      }
    }
    off = pages_.at(index);
    mf_.IncRef(off);
  }
  if (!spare.empty()) mf_.FreePages(std::move(spare));
  Registry& r = Reg();
  size_t total = r.total.fetch_add(added) + added;
  Touch();
  size_t budget = r.budget.load();
  if (total > budget) Reclaim(total - budget);
  return off;
}

void FileCache::Drop() {
  std::vector<uint64_t> held;
  {
    absl::MutexLock l(&mu_);
    held.reserve(pages_.size());
    for (auto& [index, off] : pages_) held.push_back(off);
    pages_.clear();
  }
  Reg().total.fetch_sub(held.size());
  if (!held.empty()) mf_.FreePages(std::move(held));
}

size_t FileCache::cached_pages() {
  absl::MutexLock l(&mu_);
  return pages_.size();
}

void FileCache::SetBudget(size_t pages) { Reg().budget.store(pages); }

size_t FileCache::TotalPages() { return Reg().total.load(); }

size_t FileCache::Reclaim(size_t pages) {
  // The caches, least recently used first, taken out of the registry's lock
  // (dropping the last reference to one destroys it, which takes the lock).
  std::vector<std::weak_ptr<FileCache>> order;
  {
    Registry& r = Reg();
    absl::MutexLock l(&r.mu);
    order.assign(r.lru.rbegin(), r.lru.rend());
  }
  size_t freed = 0;
  for (auto& weak : order) {
    if (freed >= pages) break;
    std::shared_ptr<FileCache> victim = weak.lock();
    if (victim == nullptr) continue;  // destroyed meanwhile: its destructor freed
    // Only what the cache alone held comes back; pages mappings hold stay.
    size_t before = victim->mf_.used_bytes();
    victim->Drop();
    size_t after = victim->mf_.used_bytes();
    if (before > after) freed += (before - after) / kPageSize;
  }
  return freed;
}

}  // namespace husk
