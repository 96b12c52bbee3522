#include "sentry/memfile/memfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <utility>
#include <vector>

#include "sentry/memfile/account.h"

namespace husk {

Result<std::unique_ptr<MemoryFile>> MemoryFile::Create(size_t max_bytes) {
  max_bytes = PageUp(max_bytes);
  // Not close-on-exec is irrelevant (the sentry never execs); stubs reach it
  // through their shared fd table.
  UniqueFd fd(memfd_create("husk-memory", MFD_CLOEXEC));
  if (!fd) return Errno{errno};
  if (ftruncate(fd.get(), static_cast<off_t>(max_bytes)) != 0) return Errno{errno};
  void* base =
      mmap(nullptr, max_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd.get(), 0);
  if (base == MAP_FAILED) return Errno{errno};
  return std::unique_ptr<MemoryFile>(
      new MemoryFile(std::move(fd), static_cast<char*>(base), max_bytes));
}

MemoryFile::~MemoryFile() { munmap(base_, size_); }

namespace {
std::atomic<MemoryFile*> g_sandbox{nullptr};
// What a process that never set the sandbox's memory file gets.
constexpr size_t kDefaultBytes = size_t{16} << 30;
}  // namespace

MemoryFile& MemoryFile::Sandbox() {
  MemoryFile* mf = g_sandbox.load(std::memory_order_acquire);
  if (mf != nullptr) return *mf;
  static MemoryFile* fallback = [] {
    auto made = Create(kDefaultBytes);
    if (!made.ok()) abort();  // no memfd at all: nothing could work
    return made->release();
  }();
  MemoryFile* expected = nullptr;
  g_sandbox.compare_exchange_strong(expected, fallback);
  return *g_sandbox.load(std::memory_order_acquire);
}

void MemoryFile::SetSandbox(MemoryFile* mf) { g_sandbox.store(mf, std::memory_order_release); }

Result<uint64_t> MemoryFile::Allocate(size_t pages) {
  if (pages == 0) return Errno{EINVAL};
  // Divides rather than multiplies: pages * kPageSize can wrap.
  if (pages > size_ / kPageSize) return Errno{ENOMEM};
  if (!MemoryAccount::Sandbox().TryCharge(pages * kPageSize)) return Errno{ENOMEM};
  absl::MutexLock l(&mu_);
  if (pages == 1 && !free_runs_.empty()) {
    auto it = free_runs_.begin();
    const uint64_t off = it->first, n = it->second;
    free_runs_.erase(it);
    if (n > 1) free_runs_.emplace(off + kPageSize, n - 1);
    used_ += kPageSize;
    return off;
  }
  if (pages > (size_ - next_) / kPageSize) {
    MemoryAccount::Sandbox().Uncharge(pages * kPageSize);
    return Errno{ENOMEM};
  }
  uint64_t off = next_;
  next_ += pages * kPageSize;
  used_ += pages * kPageSize;
  return off;
}

void MemoryFile::Free(uint64_t offset, size_t pages) {
  std::vector<uint64_t> offsets(pages);
  for (size_t i = 0; i < pages; i++) offsets[i] = offset + i * kPageSize;
  FreePages(std::move(offsets));
}

void MemoryFile::FreePages(std::vector<uint64_t> offsets) {
  // Pages still referenced elsewhere only lose a reference; the rest go back
  // in runs (punching the hole releases the memory and makes the pages read
  // as zeros when they are handed out again).
  std::sort(offsets.begin(), offsets.end());
  std::vector<std::pair<uint64_t, size_t>> runs;
  {
    absl::MutexLock l(&mu_);
    for (uint64_t off : offsets) {
      auto it = refs_.find(off);
      if (it != refs_.end()) {
        if (--it->second == 1) refs_.erase(it);
        continue;
      }
      if (!runs.empty() && runs.back().first + runs.back().second * kPageSize == off) {
        runs.back().second++;
      } else {
        runs.emplace_back(off, 1);
      }
    }
  }
  for (auto& [off, n] : runs) {
    fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
              static_cast<off_t>(n * kPageSize));
  }
  absl::MutexLock l(&mu_);
  for (auto& [off, n] : runs) {
    // Coalesced with the runs on either side.
    uint64_t start = off, count = n;
    auto next = free_runs_.lower_bound(start);
    if (next != free_runs_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second * kPageSize == start) {
        start = prev->first;
        count += prev->second;
        free_runs_.erase(prev);
      }
    }
    next = free_runs_.lower_bound(off);
    if (next != free_runs_.end() && next->first == off + n * kPageSize) {
      count += next->second;
      free_runs_.erase(next);
    }
    free_runs_[start] = count;
    used_ -= n * kPageSize;
    MemoryAccount::Sandbox().Uncharge(n * kPageSize);
  }
}

void MemoryFile::IncRef(uint64_t offset) {
  absl::MutexLock l(&mu_);
  auto [it, inserted] = refs_.try_emplace(offset, 2);
  if (!inserted) it->second++;
}

bool MemoryFile::Shared(uint64_t offset) const {
  absl::MutexLock l(&mu_);
  return refs_.contains(offset);
}

size_t MemoryFile::used_bytes() const {
  absl::MutexLock l(&mu_);
  return used_;
}

}  // namespace husk
