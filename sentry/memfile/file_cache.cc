#include "sentry/memfile/file_cache.h"

#include <errno.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <iterator>
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

void FileCache::Register(const std::shared_ptr<FileCache>& cache) {
  Registry& r = Reg();
  absl::MutexLock l(&r.mu);
  r.lru.push_front(cache);
  r.index[cache.get()] = r.lru.begin();
  MemoryAccount::Sandbox().SetReclaimer(&ReclaimForAccount);
}

std::shared_ptr<FileCache> FileCache::Create(MemoryFile& mf, uint64_t size) {
  std::shared_ptr<FileCache> cache(new FileCache(mf, size, nullptr));
  Register(cache);
  return cache;
}

std::shared_ptr<FileCache> FileCache::CreateWritable(MemoryFile& mf, uint64_t size, Writer write) {
  std::shared_ptr<FileCache> cache(new FileCache(mf, size, std::move(write)));
  Register(cache);
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
  bool hit = false;
  uint64_t hit_off = 0;
  uint64_t size;
  {
    absl::MutexLock l(&mu_);
    size = size_;
    if (index >= (size + kPageSize - 1) / kPageSize) return Errno{EFAULT};
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
  const uint64_t file_pages = (size + kPageSize - 1) / kPageSize;
  const uint64_t first = index - index % kChunkPages;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkPages, file_pages - first));
  ASSIGN_OR_RETURN(uint64_t base, mf_.Allocate(n));
  size_t want = static_cast<size_t>(std::min<uint64_t>(n * kPageSize, size - first * kPageSize));
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
  if (write_ != nullptr) (void)WriteBack(0, UINT64_MAX);
  std::vector<uint64_t> held;
  {
    absl::MutexLock l(&mu_);
    held.reserve(pages_.size());
    for (auto it = pages_.begin(); it != pages_.end();) {
      // A writable cache keeps what mappings hold (a later mapping or read
      // must find the same page) and what could not be written back.
      if (write_ != nullptr && (mf_.Shared(it->second) || dirty_.contains(it->first))) {
        ++it;
        continue;
      }
      held.push_back(it->second);
      it = pages_.erase(it);
    }
  }
  Reg().total.fetch_sub(held.size());
  if (!held.empty()) mf_.FreePages(std::move(held));
}

void FileCache::MarkDirty(uint64_t index) {
  if (write_ == nullptr) return;
  absl::MutexLock l(&mu_);
  if (pages_.contains(index)) dirty_.insert(index);
}

Status FileCache::WriteBack(uint64_t offset, uint64_t len) {
  if (write_ == nullptr) return Ok();
  const uint64_t end = len > UINT64_MAX - offset ? UINT64_MAX : offset + len;
  // Under mu_ throughout: the pages cannot go meanwhile, and the writer
  // takes only leaf locks of its own (the host descriptors, the gofer).
  absl::MutexLock l(&mu_);
  Status first = Ok();
  for (auto it = dirty_.lower_bound(offset / kPageSize);
       it != dirty_.end() && *it * kPageSize < end;) {
    const uint64_t index = *it;
    const uint64_t start = index * kPageSize;
    const uint64_t page_off = pages_.at(index);
    if (start < size_) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kPageSize, size_ - start));
      Status s = write_(start, mf_.At(page_off), n);
      if (!s.ok()) {
        if (first.ok()) first = s;
        ++it;
        continue;
      }
    }
    // Written: clean unless a mapping still holds it and may write again.
    it = mf_.Shared(page_off) ? std::next(it) : dirty_.erase(it);
  }
  return first;
}

size_t FileCache::dirty_pages() {
  absl::MutexLock l(&mu_);
  return dirty_.size();
}

void FileCache::Update(uint64_t offset, const char* buf, size_t n) {
  if (n == 0) return;
  absl::MutexLock l(&mu_);
  const uint64_t end = offset + n;
  if (end > size_) size_ = end;
  for (auto it = pages_.lower_bound(offset / kPageSize);
       it != pages_.end() && it->first * kPageSize < end; ++it) {
    const uint64_t page_start = it->first * kPageSize;
    const uint64_t from = std::max(offset, page_start);
    const uint64_t to = std::min(end, page_start + kPageSize);
    memcpy(mf_.At(it->second) + (from - page_start), buf + (from - offset), to - from);
  }
}

Result<size_t> FileCache::Read(uint64_t offset, char* buf, size_t n, Reader read) {
  size_t done = 0;
  while (done < n) {
    const uint64_t pos = offset + done;
    const uint64_t index = pos / kPageSize;
    size_t run;
    bool cached;
    {
      absl::MutexLock l(&mu_);
      if (pos >= size_) break;
      const uint64_t left = std::min<uint64_t>(n - done, size_ - pos);
      auto it = pages_.lower_bound(index);
      cached = it != pages_.end() && it->first == index;
      if (cached) {
        run = static_cast<size_t>(std::min<uint64_t>(left, kPageSize - pos % kPageSize));
        memcpy(buf + done, mf_.At(it->second) + pos % kPageSize, run);
      } else {
        // Up to the next cached page: straight from the file.
        const uint64_t next = it == pages_.end() ? UINT64_MAX : it->first * kPageSize;
        run = static_cast<size_t>(std::min<uint64_t>(left, next - pos));
      }
    }
    if (!cached) {
      ASSIGN_OR_RETURN(size_t got, read(pos, buf + done, run));
      if (got == 0) break;  // shorter than the size said
      run = got;
    }
    done += run;
  }
  return done;
}

void FileCache::Resize(uint64_t size) {
  std::vector<uint64_t> gone;
  {
    absl::MutexLock l(&mu_);
    size_ = size;
    const uint64_t first_gone = (size + kPageSize - 1) / kPageSize;
    for (auto it = pages_.lower_bound(first_gone); it != pages_.end();) {
      gone.push_back(it->second);
      dirty_.erase(it->first);
      it = pages_.erase(it);
    }
    if (size % kPageSize != 0) {
      if (auto it = pages_.find(size / kPageSize); it != pages_.end()) {
        memset(mf_.At(it->second) + size % kPageSize, 0, kPageSize - size % kPageSize);
      }
    }
  }
  Reg().total.fetch_sub(gone.size());
  if (!gone.empty()) mf_.FreePages(std::move(gone));
}

uint64_t FileCache::size() {
  absl::MutexLock l(&mu_);
  return size_;
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
