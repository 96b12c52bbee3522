#include "sentry/memfile/memfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <system_error>
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

MemoryFile::~MemoryFile() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    work_.Signal();
  }
  // The releaser finishes what is queued before it goes.
  if (releaser_.joinable()) releaser_.join();
  munmap(base_, size_);
}

Result<uint64_t> MemoryFile::Allocate(size_t pages) {
  if (pages == 0) return Errno{EINVAL};
  // Divides rather than multiplies: pages * kPageSize can wrap.
  if (pages > size_ / kPageSize) return Errno{ENOMEM};
  if (!MemoryAccount::Sandbox().TryCharge(pages * kPageSize)) return Errno{ENOMEM};
  absl::MutexLock l(&mu_);
  for (;;) {
    // The lowest freed run that is long enough (a single page: the lowest
    // freed page). Only so many runs are looked at; past them the file grows.
    size_t looked = 0;
    for (auto it = free_runs_.begin(); it != free_runs_.end() && looked < kMaxRunsSearched;
         ++it, ++looked) {
      if (it->second < pages) continue;
      const uint64_t off = it->first, n = it->second;
      free_runs_.erase(it);
      if (n > pages) free_runs_.emplace(off + pages * kPageSize, n - pages);
      used_ += pages * kPageSize;
      NoteTakenLocked(pages);
      return off;
    }
    if (pages <= (size_ - next_) / kPageSize) break;
    // The file is full: pages on their way back may be enough.
    if (releasing_pages_ == 0) {
      MemoryAccount::Sandbox().Uncharge(pages * kPageSize);
      return Errno{ENOMEM};
    }
    WaitForReleasesLocked();
  }
  uint64_t off = next_;
  next_ += pages * kPageSize;
  used_ += pages * kPageSize;
  NoteTakenLocked(pages);
  return off;
}

void MemoryFile::NoteTakenLocked(size_t pages) {
  // Pages are being taken: once half the prepared amount has gone, the
  // releaser gets the host's memory ready for what comes next.
  taken_since_prepare_ += pages;
  if (taken_since_prepare_ >= kPreparePages / 2 && !prepare_wanted_ && releaser_.joinable()) {
    prepare_wanted_ = true;
    work_.Signal();
  }
}

void MemoryFile::DropRefLocked(uint64_t off, std::vector<Run>& runs) {
  auto it = refs_.find(off);
  if (it != refs_.end()) {
    if (--it->second == 1) refs_.erase(it);
    return;
  }
  if (!runs.empty() && runs.back().first + runs.back().second * kPageSize == off) {
    runs.back().second++;
  } else {
    runs.emplace_back(off, 1);
  }
  used_ -= kPageSize;
}

void MemoryFile::Free(uint64_t offset, size_t pages) {
  std::vector<Run> runs;
  {
    absl::MutexLock l(&mu_);
    for (size_t i = 0; i < pages; i++) DropRefLocked(offset + i * kPageSize, runs);
  }
  Release(std::move(runs));
}

void MemoryFile::FreePages(std::vector<uint64_t> offsets) {
  std::sort(offsets.begin(), offsets.end());
  std::vector<Run> runs;
  {
    absl::MutexLock l(&mu_);
    for (uint64_t off : offsets) DropRefLocked(off, runs);
  }
  Release(std::move(runs));
}

void MemoryFile::Release(std::vector<Run> runs) {
  if (runs.empty()) return;
  size_t pages = 0;
  for (const Run& r : runs) pages += r.second;
  MemoryAccount::Sandbox().ReleaseStarted(pages * kPageSize);
  {
    absl::MutexLock l(&mu_);
    if (!stopping_ && !no_releaser_ && releasing_pages_ + pages <= kMaxReleasingPages) {
      // Handed to the releaser: the host's work of freeing the memory
      // (punching the holes, unmapping them from the sentry) is off the
      // path of the munmap or exit that freed it.
      if (!releaser_.joinable()) StartReleaserLocked();
      releasing_.insert(releasing_.end(), runs.begin(), runs.end());
      releasing_pages_ += pages;
      work_.Signal();
      return;
    }
  }
  // The releaser is behind by more than its bound: the one who frees waits.
  ReturnToHost(runs, false);
}

void MemoryFile::StartReleaser() {
  absl::MutexLock l(&mu_);
  if (!releaser_.joinable() && !no_releaser_) StartReleaserLocked();
}

void MemoryFile::StartReleaserLocked() {
  try {
    releaser_ = std::thread([this] { ReleaserLoop(); });
  } catch (const std::system_error&) {
    // No thread to be had (the host's task limit): frees stay synchronous.
    no_releaser_ = true;
  }
}

void MemoryFile::ReleaserLoop() {
  for (;;) {
    std::vector<Run> runs;
    std::vector<Run> prepare;
    {
      absl::MutexLock l(&mu_);
      while (releasing_.empty() && !prepare_wanted_ && !stopping_) work_.Wait(&mu_);
      if (releasing_.empty() && stopping_) return;
      runs.swap(releasing_);
      if (prepare_wanted_) {
        prepare_wanted_ = false;
        taken_since_prepare_ = 0;
        prepare = NextToAllocateLocked(kPreparePages);
      }
    }
    if (!runs.empty()) ReturnToHost(runs, true);
    for (const auto& [off, n] : prepare) {
      // Allocates the host's pages without writing them (the host zeroes
      // them when first touched): the application's faults then find them
      // there. A page already there keeps its contents; one handed out and
      // freed meanwhile is only memory held ahead again.
      fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                static_cast<off_t>(n * kPageSize));
    }
  }
}

std::vector<MemoryFile::Run> MemoryFile::NextToAllocateLocked(size_t pages) const {
  // Single pages, which most allocations are, come from the lowest free
  // runs first and then from the end of the file.
  std::vector<Run> next;
  for (auto it = free_runs_.begin(); it != free_runs_.end() && pages > 0; ++it) {
    const size_t n = std::min<size_t>(it->second, pages);
    next.emplace_back(it->first, n);
    pages -= n;
  }
  const size_t fresh = std::min<size_t>(pages, (size_ - next_) / kPageSize);
  if (fresh > 0) next.emplace_back(next_, fresh);
  return next;
}

void MemoryFile::ReturnToHost(const std::vector<Run>& runs, bool queued) {
  // Punching the hole releases the memory and makes the pages read as zeros
  // when they are handed out again. Only then are they free to allocate, and
  // only then does the sandbox's charge for them go.
  size_t pages = 0;
  for (const auto& [off, n] : runs) {
    fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
              static_cast<off_t>(n * kPageSize));
    pages += n;
  }
  // Uncharged before the waiters below are told, so that they find it so.
  MemoryAccount::Sandbox().ReleaseDone(pages * kPageSize);
  {
    absl::MutexLock l(&mu_);
    for (const auto& [off, n] : runs) {
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
    }
    if (queued) {
      releasing_pages_ -= pages;
      if (releasing_pages_ == 0) released_.SignalAll();
    }
  }
}

void MemoryFile::WaitForReleasesLocked() {
  while (releasing_pages_ != 0) released_.Wait(&mu_);
}

void MemoryFile::WaitForReleases() {
  absl::MutexLock l(&mu_);
  WaitForReleasesLocked();
}

size_t MemoryFile::releasing_bytes() const {
  absl::MutexLock l(&mu_);
  return releasing_pages_ * kPageSize;
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

uint32_t MemoryFile::References(uint64_t offset) const {
  absl::MutexLock l(&mu_);
  auto it = refs_.find(offset);
  return it == refs_.end() ? 1 : it->second;
}

size_t MemoryFile::used_bytes() const {
  absl::MutexLock l(&mu_);
  return used_;
}

}  // namespace husk
