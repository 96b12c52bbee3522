#include "sentry/mm/mm.h"

#include <errno.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace husk {

MemoryManager::MemoryManager(MemoryFile& mf, std::unique_ptr<platform::AddressSpace> as,
                             uintptr_t min_addr, uintptr_t max_addr)
    : mf_(mf), as_(std::move(as)), min_addr_(min_addr), max_addr_(max_addr) {
  mmap_base_ = max_addr_;
}

MemoryManager::~MemoryManager() {
  absl::MutexLock l(&mu_);
  // What shared mappings wrote reaches their files, as at munmap.
  (void)SyncLocked(0, UINTPTR_MAX, /*writers_only=*/true);
  // No thread runs in the address space any more; its host mappings go
  // first all the same, then every page in one release.
  as_.reset();
  std::vector<uint64_t> offsets = std::move(pending_frees_);
  offsets.reserve(offsets.size() + pages_.size());
  for (auto& [addr, page] : pages_) offsets.push_back(page.offset);
  if (!offsets.empty()) mf_.FreePages(std::move(offsets));
}

MemoryManager::VmaMap::iterator MemoryManager::FindVma(uintptr_t addr) {
  auto it = vmas_.upper_bound(addr);
  if (it == vmas_.begin()) return vmas_.end();
  --it;
  return addr < it->second.end ? it : vmas_.end();
}

bool MemoryManager::CoveredLocked(uintptr_t start, uintptr_t end) {
  for (uintptr_t a = start; a < end;) {
    auto it = FindVma(a);
    if (it == vmas_.end()) return false;
    a = it->second.end;
  }
  return true;
}

bool MemoryManager::RangeFree(uintptr_t start, uintptr_t end) {
  if (start < min_addr_ || end > max_addr_ || start >= end) return false;
  auto it = vmas_.lower_bound(start);
  if (it != vmas_.end() && it->first < end) return false;
  if (it != vmas_.begin() && std::prev(it)->second.end > start) return false;
  return true;
}

// Top-down first fit below mmap_base_, like Linux's default layout.
Result<uintptr_t> MemoryManager::FindFree(size_t length) {
  uintptr_t top = mmap_base_;
  auto it = vmas_.lower_bound(top);
  for (;;) {
    uintptr_t floor = min_addr_;
    if (it != vmas_.begin()) floor = std::max(floor, std::prev(it)->second.end);
    // Compared without forming floor + length, which may wrap.
    if (top >= floor && top - floor >= length) return top - length;
    if (it == vmas_.begin()) return Errno{ENOMEM};
    --it;
    top = std::min(top, it->first);
  }
}

void MemoryManager::SplitAt(uintptr_t addr) {
  auto it = FindVma(addr);
  if (it == vmas_.end() || it->first == addr) return;
  Vma hi = it->second;
  it->second.end = addr;
  if (hi.file || hi.shm || hi.special) hi.file_offset += addr - hi.start;
  hi.start = addr;
  vmas_.emplace(addr, std::move(hi));
}

static bool Mergeable(const Vma& a, const Vma& b) {
  return a.end == b.start && !a.file && !b.file && !a.shm && !b.shm && !a.special && !b.special &&
         a.prot == b.prot && a.shared == b.shared && a.grows_down == b.grows_down &&
         a.name == b.name;
}

void MemoryManager::InsertVma(Vma vma) {
  auto next = vmas_.lower_bound(vma.start);
  if (next != vmas_.begin()) {
    auto prev = std::prev(next);
    if (Mergeable(prev->second, vma)) {
      vma.start = prev->second.start;
      vmas_.erase(prev);
    }
  }
  if (next != vmas_.end() && Mergeable(vma, next->second)) {
    vma.end = next->second.end;
    vmas_.erase(next);
  }
  uintptr_t start = vma.start;
  vmas_.emplace(start, std::move(vma));
}

// Merges the VMAs overlapping [start, end) with their neighbours where they
// have become identical, as Linux's vma_merge does after mprotect.
void MemoryManager::MergeAround(uintptr_t start, uintptr_t end) {
  auto it = vmas_.lower_bound(start);
  if (it != vmas_.begin()) --it;
  while (it != vmas_.end() && it->first < end) {
    auto next = std::next(it);
    if (next != vmas_.end() && Mergeable(it->second, next->second)) {
      it->second.end = next->second.end;
      vmas_.erase(next);
    } else {
      it = next;
    }
  }
}

// Whether [addr, addr + length), rounded up to whole pages, wraps past the
// top of the address space (also when only the rounding makes it wrap).
static bool RangeWraps(uintptr_t addr, size_t length) {
  return length > UINTPTR_MAX - addr || PageUp(addr + length) < addr + length;
}

void MemoryManager::DropPages(uintptr_t start, uintptr_t end) {
  hiwater_rss_ = std::max<uint64_t>(hiwater_rss_, pages_.size());
  bool mapped = false;
  std::vector<uint64_t> offsets;
  auto it = pages_.lower_bound(start);
  while (it != pages_.end() && it->first < end) {
    mapped |= it->second.mapped;
    offsets.push_back(it->second.offset);
    it = pages_.erase(it);
  }
  // Off the host's page tables before the pages go back: a sibling thread
  // still running must not reach a page another process may get next.
  if (mapped) (void)as_->Unmap(start, end - start);
  if (!offsets.empty()) mf_.FreePages(std::move(offsets));
}

Status MemoryManager::SyncLocked(uintptr_t start, uintptr_t end, bool writers_only) {
  Status first = Ok();
  auto it = vmas_.upper_bound(start);
  if (it != vmas_.begin()) --it;
  for (; it != vmas_.end() && it->second.start < end; ++it) {
    const Vma& v = it->second;
    if (v.end <= start || !v.shared || v.file == nullptr || !UsesFilePages(v)) continue;
    if (writers_only && !v.may_write) continue;
    const uintptr_t from = std::max(start, v.start), to = std::min(end, v.end);
    Status s = v.file->Sync(v.file_offset + (from - v.start), to - from);
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

Status MemoryManager::Msync(uintptr_t addr, size_t length) {
  if (RangeWraps(addr, length)) return Errno{ENOMEM};
  absl::MutexLock l(&mu_);
  if (!CoveredLocked(addr, PageUp(addr + length))) return Errno{ENOMEM};
  return SyncLocked(addr, PageUp(addr + length), /*writers_only=*/false);
}

Result<std::vector<uint8_t>> MemoryManager::Mincore(uintptr_t addr, size_t length) {
  if (RangeWraps(addr, length)) return Errno{ENOMEM};
  const uintptr_t end = PageUp(addr + length);
  absl::MutexLock l(&mu_);
  if (!CoveredLocked(addr, end)) return Errno{ENOMEM};
  std::vector<uint8_t> out((end - addr) / kPageSize, 0);
  for (auto it = pages_.lower_bound(addr); it != pages_.end() && it->first < end; ++it) {
    out[(it->first - addr) / kPageSize] = 1;
  }
  return out;
}

void MemoryManager::UnmapLocked(uintptr_t start, uintptr_t end) {
  // What shared mappings wrote goes to the file before the mapping does
  // (Linux keeps it in its page cache and writes it later; here the file's
  // cache holds it, and the host file gets it now).
  (void)SyncLocked(start, end, /*writers_only=*/true);
  if (auto first = FindVma(start); first != vmas_.end() && first->first < end) {
    NoteHiwaterLocked();
  }
  SplitAt(start);
  SplitAt(end);
  auto it = vmas_.lower_bound(start);
  while (it != vmas_.end() && it->first < end) it = vmas_.erase(it);
  DropPages(start, end);
}

namespace {
// is_data_mapping: private, writable and not a stack.
bool IsData(int prot, bool shared, bool grows_down) {
  return (prot & PROT_WRITE) && !shared && !grows_down;
}
}  // namespace

uint64_t MemoryManager::MappedPagesLocked(uintptr_t start, uintptr_t end) {
  uint64_t bytes = 0;
  for (auto it = FindVma(start); it != vmas_.end() && it->first < end; ++it) {
    bytes += std::min(end, it->second.end) - std::max(start, it->first);
  }
  return bytes / kPageSize;
}

bool MemoryManager::MayExpandLocked(const VmLimits& limits, bool data, uint64_t pages) {
  if (limits.as == UINT64_MAX && (!data || limits.data == UINT64_MAX)) return true;
  uint64_t total = 0, data_pages = 0;
  for (const auto& [start, vma] : vmas_) {
    const uint64_t n = (vma.end - vma.start) / kPageSize;
    total += n;
    if (IsData(vma.prot, vma.shared, vma.grows_down)) data_pages += n;
  }
  if (limits.as != UINT64_MAX && total + pages > limits.as / kPageSize) return false;
  if (data && limits.data != UINT64_MAX && data_pages + pages > limits.data / kPageSize) {
    // Valgrind's exemption: a zero soft limit checks the hard one.
    return limits.data == 0 && data_pages + pages <= limits.data_max / kPageSize;
  }
  return true;
}

Result<uintptr_t> MemoryManager::Mmap(const MmapRequest& req) {
  // Checks in the order of Linux's do_mmap (see mmap(2), ERRORS).
  if (req.length == 0) return Errno{EINVAL};
  size_t len = PageUp(req.length);
  if (len < req.length || len > max_addr_) return Errno{ENOMEM};
  if (req.offset % kPageSize != 0) return Errno{EINVAL};
  int type = req.flags & MAP_TYPE;
  if (type != MAP_PRIVATE && type != MAP_SHARED && type != MAP_SHARED_VALIDATE)
    return Errno{EINVAL};
  bool fixed = (req.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
  if (fixed && req.addr % kPageSize != 0) return Errno{EINVAL};
  if (req.prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return Errno{EINVAL};
  if (req.special != nullptr &&
      (type != MAP_PRIVATE || req.file != nullptr || req.offset > req.special->bytes() ||
       len > req.special->bytes() - req.offset)) {
    return Errno{EINVAL};
  }

  absl::MutexLock l(&mu_);
  uintptr_t addr;
  if (fixed) {
    addr = req.addr;
    if (addr < min_addr_ || addr + len > max_addr_ || addr + len < addr) {
      return Errno{(req.flags & MAP_FIXED_NOREPLACE) ? EEXIST : ENOMEM};
    }
    // Even together with MAP_FIXED: Linux's do_mmap tests
    // MAP_FIXED_NOREPLACE on its own. What MAP_FIXED replaces goes below,
    // once the limits allow the mapping.
    if (!RangeFree(addr, addr + len) && (req.flags & MAP_FIXED_NOREPLACE)) return Errno{EEXIST};
  } else if (req.addr != 0 && PageDown(req.addr) >= min_addr_ &&
             RangeFree(PageDown(req.addr), PageDown(req.addr) + len)) {
    addr = PageDown(req.addr);
  } else {
    ASSIGN_OR_RETURN(addr, FindFree(len));
  }
  // RLIMIT_AS and RLIMIT_DATA (mmap_region): what a MAP_FIXED mapping
  // replaces does not count twice.
  const bool data = IsData(req.prot, type != MAP_PRIVATE, (req.flags & MAP_GROWSDOWN) != 0);
  if (!MayExpandLocked(req.limits, data, len / kPageSize - MappedPagesLocked(addr, addr + len))) {
    return Errno{ENOMEM};
  }
  if (fixed && !(req.flags & MAP_FIXED_NOREPLACE)) UnmapLocked(addr, addr + len);
  Vma vma;
  vma.start = addr;
  vma.end = addr + len;
  vma.prot = req.prot;
  vma.shared = type != MAP_PRIVATE;
  if (vma.shared && req.file == nullptr) vma.shm = std::make_shared<SharedAnon>(mf_);
  vma.grows_down = (req.flags & MAP_GROWSDOWN) != 0;
  vma.file = req.file;
  vma.special = req.special;
  vma.file_offset = req.offset;
  vma.file_end = req.file_end;
  vma.may_write = req.may_write;
  vma.name = req.special != nullptr ? req.special->name() : req.name;
  InsertVma(std::move(vma));
  return addr;
}

Status MemoryManager::Munmap(uintptr_t addr, size_t length) {
  if (addr % kPageSize != 0 || length == 0) return Errno{EINVAL};
  // Linux: EINVAL when len > TASK_SIZE - addr.
  if (RangeWraps(addr, length) || length > kTaskSize || addr > kTaskSize - length) {
    return Errno{EINVAL};
  }
  uintptr_t end = PageUp(addr + length);
  // The stub's range above max_addr_ is never the application's to unmap.
  end = std::min<uintptr_t>(end, max_addr_);
  if (addr >= end) return Ok();
  absl::MutexLock l(&mu_);
  UnmapLocked(addr, end);
  return Ok();
}

Status MemoryManager::Mprotect(uintptr_t addr, size_t length, int prot) {
  if (addr % kPageSize != 0) return Errno{EINVAL};
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP))
    return Errno{EINVAL};
  prot &= PROT_READ | PROT_WRITE | PROT_EXEC;
  if (length == 0) return Ok();
  if (RangeWraps(addr, length)) return Errno{ENOMEM};
  uintptr_t end = PageUp(addr + length);
  absl::MutexLock l(&mu_);
  // Linux fails with ENOMEM if any page of the range is unmapped.
  if (!CoveredLocked(addr, end)) return Errno{ENOMEM};
  // EACCES: write access to a shared mapping of a file not open for
  // writing, or what a special mapping's VM_MAY* flags do not allow (the
  // vDSO's data page never becomes writable or executable).
  for (auto it = FindVma(addr); it != vmas_.end() && it->first < end; ++it) {
    const Vma& v = it->second;
    if ((prot & PROT_WRITE) && v.shared && !v.may_write) return Errno{EACCES};
    if (v.special != nullptr && (prot & ~v.special->max_prot()) != 0) return Errno{EACCES};
  }
  SplitAt(addr);
  SplitAt(end);
  for (auto it = vmas_.lower_bound(addr); it != vmas_.end() && it->first < end; ++it) {
    it->second.prot = prot;
  }
  MergeAround(addr, end);
  // Host mappings carry the old protection. Without write access (RELRO's
  // mprotect(PROT_READ), say) the few runs of installed pages take the new
  // one in place, which never makes a copy-on-write page writable; otherwise
  // they go, and faults reinstall them with the new protection.
  std::vector<std::pair<uintptr_t, uintptr_t>> runs;
  for (auto it = pages_.lower_bound(addr); it != pages_.end() && it->first < end; ++it) {
    if (!it->second.mapped) continue;
    if (!runs.empty() && runs.back().second == it->first) {
      runs.back().second += kPageSize;
    } else {
      runs.emplace_back(it->first, it->first + kPageSize);
    }
  }
  if (runs.empty()) return Ok();
  constexpr size_t kMaxProtectRuns = 4;
  bool in_place = !(prot & PROT_WRITE) && runs.size() <= kMaxProtectRuns;
  for (auto& [lo, hi] : runs) {
    if (in_place && !as_->Protect(lo, hi - lo, prot).ok()) in_place = false;
  }
  for (auto it = pages_.lower_bound(addr); it != pages_.end() && it->first < end; ++it) {
    if (!it->second.mapped) continue;
    it->second.writable = false;
    it->second.mapped = in_place;
    if (in_place) it->second.generation = ++install_generation_;
  }
  if (!in_place) (void)as_->Unmap(addr, end - addr);
  return Ok();
}

Status MemoryManager::Madvise(uintptr_t addr, size_t length, int advice) {
  if (addr % kPageSize != 0) return Errno{EINVAL};
  if (RangeWraps(addr, length)) return Errno{EINVAL};
  uintptr_t end = PageUp(addr + length);
  absl::MutexLock l(&mu_);
  switch (advice) {
    case MADV_DONTNEED: {
      if (!CoveredLocked(addr, end)) return Errno{ENOMEM};
      // Private pages are dropped: the next touch reads zeros (anonymous)
      // or the file's contents again, as on Linux. Shared memory keeps its
      // contents, as Linux's shmem and page cache do.
      for (auto it = FindVma(addr); it != vmas_.end() && it->first < end; ++it) {
        if (it->second.shared) continue;
        DropPages(std::max(addr, it->first), std::min(end, it->second.end));
      }
      return Ok();
    }
    case MADV_NORMAL:
    case MADV_RANDOM:
    case MADV_SEQUENTIAL:
    case MADV_WILLNEED:
    case MADV_FREE:
    case MADV_DONTFORK:
    case MADV_DOFORK:
    case MADV_HUGEPAGE:
    case MADV_NOHUGEPAGE:
    case MADV_DONTDUMP:
    case MADV_DODUMP:
      return Ok();  // hints without an observable effect here
    default:
      return Errno{EINVAL};
  }
}

Result<uintptr_t> MemoryManager::Mremap(uintptr_t old_addr, size_t old_size, size_t new_size,
                                        int flags, uintptr_t new_addr, const VmLimits& limits) {
  // The checks and their order are mm/mremap.c's.
  if (old_addr % kPageSize != 0) return Errno{EINVAL};
  if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED)) return Errno{EINVAL};
  if ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)) return Errno{EINVAL};
  // PAGE_ALIGN wraps a length within a page of 2^64 to 0.
  old_size = PageUp(old_size);
  new_size = PageUp(new_size);
  if (new_size == 0 || old_size == 0) return Errno{EINVAL};
  if (flags & MREMAP_FIXED) {
    if (new_addr % kPageSize != 0) return Errno{EINVAL};
    if (new_size > max_addr_ || new_addr > max_addr_ - new_size || new_addr < min_addr_) {
      return Errno{EINVAL};
    }
    // The two ranges may not overlap.
    if (RangeWraps(old_addr, old_size)) return Errno{EFAULT};
    if (new_addr < old_addr + old_size && old_addr < new_addr + new_size) return Errno{EINVAL};
  }
  absl::MutexLock l(&mu_);
  if (RangeWraps(old_addr, old_size)) return Errno{EFAULT};
  auto it = FindVma(old_addr);
  if (it == vmas_.end() || it->second.end < old_addr + old_size) return Errno{EFAULT};
  // Special mappings never grow (VM_DONTEXPAND); they may move or shrink.
  if (new_size > old_size && it->second.special != nullptr) return Errno{EFAULT};
  // Growing counts against RLIMIT_AS and RLIMIT_DATA (vma_to_resize).
  if (new_size > old_size &&
      !MayExpandLocked(limits, IsData(it->second.prot, it->second.shared, it->second.grows_down),
                       (new_size - old_size) / kPageSize)) {
    return Errno{ENOMEM};
  }
  uintptr_t old_end = old_addr + old_size;
  if (flags & MREMAP_FIXED) {
    UnmapLocked(new_addr, new_addr + new_size);
    if (new_size < old_size) {
      UnmapLocked(old_addr + new_size, old_end);
      old_size = new_size;
      old_end = old_addr + old_size;
    }
    return MoveLocked(old_addr, old_size, new_addr, new_size);
  }
  if (new_size <= old_size) {
    UnmapLocked(old_addr + new_size, old_end);
    return old_addr;
  }
  if (it->second.end == old_end && new_size <= max_addr_ && old_addr <= max_addr_ - new_size &&
      RangeFree(old_end, old_addr + new_size)) {
    SplitAt(old_addr);
    it = FindVma(old_addr);
    Vma grown = it->second;
    vmas_.erase(it);
    grown.end = old_addr + new_size;
    InsertVma(std::move(grown));
    return old_addr;
  }
  if (!(flags & MREMAP_MAYMOVE)) return Errno{ENOMEM};
  ASSIGN_OR_RETURN(uintptr_t dest, FindFree(new_size));
  return MoveLocked(old_addr, old_size, dest, new_size);
}

uintptr_t MemoryManager::MoveLocked(uintptr_t old_addr, size_t old_size, uintptr_t dest,
                                    size_t new_size) {
  const uintptr_t old_end = old_addr + old_size;
  SplitAt(old_addr);
  SplitAt(old_end);
  auto it = FindVma(old_addr);
  Vma moved = it->second;
  vmas_.erase(it);
  moved.start = dest;
  moved.end = dest + new_size;
  // file_end is an address, so it moves with the mapping.
  if (moved.file_end != UINTPTR_MAX) {
    moved.file_end = moved.file_end <= old_addr ? dest : dest + (moved.file_end - old_addr);
  }
  // The populated pages move with the mapping; only host mappings are redone.
  bool mapped = false;
  std::vector<std::pair<uintptr_t, Page>> carry;
  for (auto p = pages_.lower_bound(old_addr); p != pages_.end() && p->first < old_end;) {
    mapped |= p->second.mapped;
    carry.emplace_back(p->first - old_addr + dest, Page{p->second.offset});
    p = pages_.erase(p);
  }
  for (auto& [a, page] : carry) pages_.emplace(a, page);
  if (mapped) (void)as_->Unmap(old_addr, old_size);
  InsertVma(std::move(moved));
  return dest;
}

Result<FutexKey> MemoryManager::GetFutexKey(uintptr_t addr, bool private_op) {
  if (addr % 4 != 0) return Errno{EINVAL};
  absl::MutexLock l(&mu_);
  auto it = FindVma(addr);
  if (it == vmas_.end() || it->second.prot == PROT_NONE) return Errno{EFAULT};
  const Vma& vma = it->second;
  // A shared key in private memory stays per address space (Linux keys it
  // on the mm too): copy-on-write pages must not join parent and child.
  if (private_op || !vma.shared) return FutexKey{this, addr};
  ASSIGN_OR_RETURN(uint64_t off, EnsurePage(vma, PageDown(addr)));
  return FutexKey{nullptr, off + (addr - PageDown(addr))};
}

Result<uint32_t> MemoryManager::AtomicRmw32(uintptr_t addr,
                                            uint32_t (*op)(uint32_t old, uint32_t arg),
                                            uint32_t arg) {
  return AtomicUpdate32(addr, [op, arg](uint32_t old) { return op(old, arg); });
}

Result<uint32_t> MemoryManager::AtomicUpdate32(uintptr_t addr,
                                               absl::FunctionRef<uint32_t(uint32_t old)> op) {
  if (addr % 4 != 0) return Errno{EINVAL};
  absl::MutexLock l(&mu_);
  auto it = FindVma(addr);
  if (it == vmas_.end() || !(it->second.prot & PROT_WRITE)) return Errno{EFAULT};
  uintptr_t page = PageDown(addr);
  TRY(EnsurePage(it->second, page));
  ASSIGN_OR_RETURN(uint64_t off, Unshare(it->second, page));
  // The stub maps the same memory-file page: the sentry's atomics on its own
  // mapping are coherent with the application's.
  auto* word = reinterpret_cast<uint32_t*>(mf_.At(off) + (addr - page));
  uint32_t old = __atomic_load_n(word, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(word, &old, op(old), false, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST)) {
  }
  return old;
}

Status MemoryManager::CheckMapped(uintptr_t addr, size_t length) {
  if (RangeWraps(addr, length)) return Errno{ENOMEM};
  uintptr_t end = PageUp(addr + length);
  absl::MutexLock l(&mu_);
  return CoveredLocked(addr, end) ? Ok() : Status(Errno{ENOMEM});
}

void MemoryManager::SetBrkBase(uintptr_t addr) {
  absl::MutexLock l(&mu_);
  brk_base_ = brk_ = addr;
}

uintptr_t MemoryManager::Brk(uintptr_t addr, const VmLimits& limits) {
  absl::MutexLock l(&mu_);
  // Out of range (PageUp would wrap brk(~0UL) to 0 and shrink): the break
  // stays, as Linux's brk answers a request it cannot meet.
  if (addr < brk_base_ || addr > max_addr_) return brk_;
  // check_data_rlimit (the data segment itself is not counted here: the
  // address space does not know where the program's data ends).
  if (limits.data != UINT64_MAX && addr - brk_base_ > limits.data) return brk_;
  uintptr_t old_end = PageUp(brk_);
  uintptr_t new_end = PageUp(addr);
  if (new_end > old_end) {
    if (!RangeFree(old_end, new_end)) return brk_;
    if (!MayExpandLocked(limits, true, (new_end - old_end) / kPageSize)) return brk_;
    Vma vma;
    vma.start = old_end;
    vma.end = new_end;
    vma.prot = PROT_READ | PROT_WRITE;
    vma.name = "[heap]";
    InsertVma(std::move(vma));
  } else if (new_end < old_end) {
    UnmapLocked(new_end, old_end);
  }
  brk_ = addr;
  return brk_;
}

SharedAnon::~SharedAnon() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::vector<uint64_t> offsets;
  offsets.reserve(pages_.size());
  for (auto& [index, off] : pages_) offsets.push_back(off);
  if (!offsets.empty()) mf_.FreePages(std::move(offsets));
}

Result<uint64_t> SharedAnon::PageAt(uint64_t index) {
  absl::MutexLock l(&mu_);
  auto it = pages_.find(index);
  if (it != pages_.end()) return it->second;
  ASSIGN_OR_RETURN(uint64_t off, mf_.Allocate(1));
  pages_.emplace(index, off);
  return off;
}

bool MemoryManager::UsesFilePages(const Vma& vma) const {
  // Files keep their pages in the sandbox's memory file: an address space
  // on another one (a unit test's) copies their data in instead.
  return vma.file != nullptr && vma.file->SharesPages() && &mf_ == &MemoryFile::Sandbox();
}

Result<uint64_t> MemoryManager::EnsurePage(const Vma& vma, uintptr_t page) {
  auto it = pages_.find(page);
  if (it != pages_.end()) return it->second.offset;
  if (vma.special != nullptr) {
    // The sentry's own page, one more reference for this address space: a
    // write copies it (the mapping is private and the page never unshared).
    const uint64_t index = (vma.file_offset + (page - vma.start)) / kPageSize;
    if (index >= vma.special->pages()) return Errno{EFAULT};
    const uint64_t off = vma.special->offset() + index * kPageSize;
    mf_.IncRef(off);
    pages_.emplace(page, Page{off});
    return off;
  }
  if (vma.shm != nullptr) {
    // The address space holds its own reference next to the object's.
    ASSIGN_OR_RETURN(uint64_t off,
                     vma.shm->PageAt((vma.file_offset + (page - vma.start)) / kPageSize));
    mf_.IncRef(off);
    pages_.emplace(page, Page{off});
    return off;
  }
  if (vma.shared && UsesFilePages(vma)) {
    // The file's own page, with a reference for this address space.
    const uint64_t index = (vma.file_offset + (page - vma.start)) / kPageSize;
    ASSIGN_OR_RETURN(uint64_t off, vma.file->SharedPage(index));
    if (vma.may_write) vma.file->NoteSharedWrite(index);
    pages_.emplace(page, Page{off});
    return off;
  }
  if (UsesFilePages(vma) && page + kPageSize <= vma.file_end) {
    // A private mapping starts on the file's own page, mapped read-only and
    // copied on the first write (as after fork), writable or not: until
    // then it shows what is written to the file, as Linux's page cache
    // does. A page wholly past the end of the file is SIGBUS (EFAULT
    // here), as for a shared mapping.
    auto shared = vma.file->SharedPage((vma.file_offset + (page - vma.start)) / kPageSize);
    if (shared.ok() && (vma.prot & PROT_WRITE) && vma.file->Unchanging()) {
      // A file that cannot change has nothing to show later, and a writable
      // private page (a program's data) is most likely written soon: it gets
      // its copy now rather than on a second fault.
      auto own = mf_.Allocate(1);
      if (own.ok()) memcpy(mf_.At(*own), mf_.At(*shared), kPageSize);
      mf_.Free(*shared, 1);
      if (!own.ok()) return Errno{own.error()};
      pages_.emplace(page, Page{*own});
      return *own;
    }
    if (shared.ok()) {
      pages_.emplace(page, Page{*shared});
      return *shared;
    }
    if (shared.error() == ENOMEM || shared.error() == EFAULT) return Errno{shared.error()};
  }
  ASSIGN_OR_RETURN(uint64_t off, mf_.Allocate(1));
  if (vma.file && page < vma.file_end) {
    size_t want = std::min<uintptr_t>(kPageSize, vma.file_end - page);
    auto n = vma.file->ReadForMapping(vma.file_offset + (page - vma.start), mf_.At(off), want);
    if (!n.ok()) {
      mf_.Free(off, 1);
      return Errno{EFAULT};
    }
  }
  pages_.emplace(page, Page{off});
  return off;
}

Result<uint64_t> MemoryManager::CopyShared(Page& p) {
  ASSIGN_OR_RETURN(uint64_t copy, mf_.Allocate(1));
  memcpy(mf_.At(copy), mf_.At(p.offset), kPageSize);
  const uint64_t old = p.offset;
  p.offset = copy;
  return old;
}

Result<uint64_t> MemoryManager::Unshare(const Vma& vma, uintptr_t page) {
  Page& p = pages_.at(page);
  if (vma.shared || !mf_.Shared(p.offset)) return p.offset;
  ASSIGN_OR_RETURN(uint64_t old, CopyShared(p));
  if (p.mapped) {
    // The host still maps the shared page (read-only): drop it; the next
    // fault installs the copy. A caller with no thread here (a tracer)
    // leaves it to the next thread that runs.
    if (!as_->Unmap(page, kPageSize).ok()) {
      pending_unmaps_.push_back({page, kPageSize});
      // This reference goes only when the host no longer maps the page.
      pending_frees_.push_back(old);
      has_pending_unmaps_ = true;
      p.mapped = false;
      p.writable = false;
      return p.offset;
    }
    p.mapped = false;
    p.writable = false;
  }
  mf_.Free(old, 1);  // this address space's reference to the shared page
  return p.offset;
}

bool MemoryManager::HasVma(uintptr_t addr) {
  absl::MutexLock l(&mu_);
  return FindVma(addr) != vmas_.end();
}

bool MemoryManager::HandleFault(uintptr_t addr, FaultFailure* why, uint64_t since) {
  FaultFailure ignored;
  if (why == nullptr) why = &ignored;
  *why = FaultFailure::kInvalid;
  absl::MutexLock l(&mu_);
  uintptr_t page = PageDown(addr);
  auto vit = FindVma(page);
  if (vit == vmas_.end() || vit->second.prot == PROT_NONE) return false;
  const Vma& vma = vit->second;
  auto pit = pages_.find(page);
  if (pit != pages_.end() && pit->second.mapped) {
    // Installed already: either a write to a page mapped read-only for
    // copy-on-write, or a real protection fault, unless a sibling thread
    // installed it after this thread faulted.
    if (!(vma.prot & PROT_WRITE) || pit->second.writable) {
      return since != UINT64_MAX && pit->second.generation > since;
    }
    return MakeWritable(vma, page, why);
  }
  fault_window_ = page == next_fault_ ? std::min(fault_window_ * 2, kMaxFaultAround) : kFaultAround;
  uintptr_t start = page;
  uintptr_t end = std::min<uintptr_t>(vma.end, page + fault_window_ * kPageSize);
  if (!(vma.prot & PROT_WRITE) && UsesFilePages(vma)) {
    // Read-only pages of a cached file (program text, libraries) cost no
    // allocation: install the whole aligned block around the fault, as
    // Linux's fault-around does, over pages not installed yet.
    const uintptr_t block = kFileFaultAround * kPageSize;
    uintptr_t lo = std::max<uintptr_t>(vma.start, page & ~(block - 1));
    while (start > lo) {
      auto prev = pages_.find(start - kPageSize);
      if (prev != pages_.end() && prev->second.mapped) break;
      start -= kPageSize;
    }
    end = std::max(end, std::min<uintptr_t>(vma.end, (page & ~(block - 1)) + block));
  }
  next_fault_ = end;
  // Install [page, end) as runs of consecutive memory-file pages with the
  // same protection (shared copy-on-write pages go in read-only).
  uintptr_t run_start = 0;
  uint64_t run_off = 0;
  size_t run_len = 0;
  int run_prot = 0;
  auto flush = [&]() {
    if (run_len == 0) return true;
    bool ok = as_->MapFile(run_start, run_off, run_len, run_prot).ok();
    run_len = 0;
    return ok;
  };
  for (uintptr_t a = start; a < end; a += kPageSize) {
    auto existing = pages_.find(a);
    if (existing != pages_.end() && existing->second.mapped) break;
    auto off = EnsurePage(vma, a);
    if (!off.ok()) {
      if (a < page) {
        // A page before the fault that cannot be had: leave it out.
        if (!flush()) return false;
        continue;
      }
      if (a == page) {
        if (off.error() == ENOMEM) *why = FaultFailure::kOutOfMemory;
        if (off.error() == EFAULT && vma.file != nullptr) {
          *why = FaultFailure::kPastEnd;
        }
        return false;
      }
      break;
    }
    int prot = vma.prot;
    if (!vma.shared && mf_.Shared(*off)) prot &= ~PROT_WRITE;
    Page& p = pages_.at(a);
    p.mapped = true;
    p.writable = (prot & PROT_WRITE) != 0;
    p.generation = ++install_generation_;
    if (run_len != 0 && run_start + run_len == a && run_off + run_len == *off && run_prot == prot) {
      run_len += kPageSize;
    } else {
      if (!flush()) return false;
      run_start = a;
      run_off = *off;
      run_len = kPageSize;
      run_prot = prot;
    }
  }
  return flush();
}

bool MemoryManager::MakeWritable(const Vma& vma, uintptr_t page, FaultFailure* why) {
  Page& p = pages_.at(page);
  if (!vma.shared && mf_.Shared(p.offset)) {
    // Still shared: this address space gets its own copy.
    auto old = CopyShared(p);
    if (!old.ok()) {
      if (old.error() == ENOMEM) *why = FaultFailure::kOutOfMemory;
      return false;
    }
    // The copy replaces the shared page in the host's page tables before
    // this address space lets go of the shared one.
    const bool mapped = as_->MapFile(page, p.offset, kPageSize, vma.prot).ok();
    if (!mapped) (void)as_->Unmap(page, kPageSize);
    mf_.Free(*old, 1);
    if (!mapped) {
      p.mapped = false;
      p.writable = false;
      return false;
    }
  } else if (!as_->Protect(page, kPageSize, vma.prot).ok() &&
             !as_->MapFile(page, p.offset, kPageSize, vma.prot).ok()) {
    return false;
  }
  p.writable = true;
  p.generation = ++install_generation_;
  // Writes tend to move on to the next pages: those no longer shared (the
  // other side exited, exec'd or copied them) become writable in one call.
  uintptr_t end = page + kPageSize;
  uintptr_t limit = std::min<uintptr_t>(vma.end, page + kFaultAround * kPageSize);
  while (end < limit) {
    auto it = pages_.find(end);
    if (it == pages_.end() || !it->second.mapped || it->second.writable ||
        mf_.Shared(it->second.offset)) {
      break;
    }
    end += kPageSize;
  }
  if (end > page + kPageSize &&
      as_->Protect(page + kPageSize, end - page - kPageSize, vma.prot).ok()) {
    for (uintptr_t a = page + kPageSize; a < end; a += kPageSize) {
      pages_.at(a).writable = true;
      pages_.at(a).generation = ++install_generation_;
    }
  }
  return true;
}

void MemoryManager::ApplyPendingUnmaps() {
  if (!has_pending_unmaps_) return;
  absl::MutexLock l(&mu_);
  for (auto [addr, len] : pending_unmaps_) (void)as_->Unmap(addr, len);
  pending_unmaps_.clear();
  if (!pending_frees_.empty()) mf_.FreePages(std::move(pending_frees_));
  pending_frees_.clear();
  has_pending_unmaps_ = false;
}

Status MemoryManager::ForceCopyIn(uintptr_t addr, void* dst, size_t n) {
  absl::MutexLock l(&mu_);
  return CopyLocked(addr, static_cast<char*>(dst), n, false, true);
}

Status MemoryManager::ForceCopyOut(uintptr_t addr, const void* src, size_t n) {
  absl::MutexLock l(&mu_);
  return CopyLocked(addr, static_cast<char*>(const_cast<void*>(src)), n, true, true);
}

Status MemoryManager::CopyLocked(uintptr_t addr, char* buf, size_t n, bool out, bool force) {
  if (addr + n < addr) return Errno{EFAULT};
  const Vma* vma = nullptr;
  while (n > 0) {
    if (vma == nullptr || addr >= vma->end) {
      auto it = FindVma(addr);
      if (it == vmas_.end()) return Errno{EFAULT};
      vma = &it->second;
      // x86: any mapping that is not PROT_NONE is readable.
      if (!force && (out ? !(vma->prot & PROT_WRITE) : vma->prot == PROT_NONE)) {
        return Errno{EFAULT};
      }
      // Not even ptrace writes to the vDSO's data page (Linux's VM_IO): a
      // private copy would stop the clock for this address space.
      if (out && vma->special != nullptr && !(vma->special->max_prot() & PROT_WRITE)) {
        return Errno{EFAULT};
      }
    }
    uintptr_t page = PageDown(addr);
    size_t chunk = std::min<size_t>(n, page + kPageSize - addr);
    ASSIGN_OR_RETURN(uint64_t off, EnsurePage(*vma, page));
    if (out) {
      ASSIGN_OR_RETURN(off, Unshare(*vma, page));
    }
    char* p = mf_.At(off) + (addr - page);
    if (out) {
      memcpy(p, buf, chunk);
    } else {
      memcpy(buf, p, chunk);
    }
    addr += chunk;
    buf += chunk;
    n -= chunk;
  }
  return Ok();
}

Status MemoryManager::CopyIn(uintptr_t addr, void* dst, size_t n) {
  absl::MutexLock l(&mu_);
  return CopyLocked(addr, static_cast<char*>(dst), n, false);
}

Status MemoryManager::CopyOut(uintptr_t addr, const void* src, size_t n) {
  absl::MutexLock l(&mu_);
  return CopyLocked(addr, static_cast<char*>(const_cast<void*>(src)), n, true);
}

size_t MemoryManager::CopyInPartial(uintptr_t addr, void* dst, size_t n) {
  absl::MutexLock l(&mu_);
  size_t done = 0;
  char* out = static_cast<char*>(dst);
  while (done < n) {
    size_t chunk = std::min<size_t>(n - done, PageDown(addr + done) + kPageSize - (addr + done));
    if (!CopyLocked(addr + done, out + done, chunk, false).ok()) break;
    done += chunk;
  }
  return done;
}

Result<std::string> MemoryManager::CopyInString(uintptr_t addr, size_t max) {
  absl::MutexLock l(&mu_);
  std::string s;
  char buf[256];
  while (s.size() < max + 1) {
    size_t chunk = std::min<size_t>(sizeof(buf), PageDown(addr) + kPageSize - addr);
    TRY(CopyLocked(addr, buf, chunk, false));
    void* nul = memchr(buf, 0, chunk);
    if (nul != nullptr) {
      s.append(buf, static_cast<char*>(nul) - buf);
      if (s.size() > max) return Errno{ENAMETOOLONG};
      return s;
    }
    s.append(buf, chunk);
    addr += chunk;
  }
  return Errno{ENAMETOOLONG};
}

std::string MemoryManager::MapsLine(const Vma& v) {
  std::string line = absl::StrFormat(
      "%08x-%08x %c%c%c%c %08x %02x:%02x %d", v.start, v.end, (v.prot & PROT_READ) ? 'r' : '-',
      (v.prot & PROT_WRITE) ? 'w' : '-', (v.prot & PROT_EXEC) ? 'x' : '-', v.shared ? 's' : 'p',
      v.file ? v.file_offset : 0, v.file ? (v.file->MapsDevice() >> 8) & 0xfff : 0,
      v.file ? v.file->MapsDevice() & 0xff : 0, v.file ? v.file->MapsInode() : 0);
  std::string name = v.file ? v.file->MapsName() : v.name;
  if (!name.empty()) {
    if (line.size() < 73) line.append(73 - line.size(), ' ');
    line += name;
  }
  line += '\n';
  return line;
}

std::string MemoryManager::ProcMaps() {
  absl::MutexLock l(&mu_);
  std::string out;
  for (auto& [start, v] : vmas_) out += MapsLine(v);
  return out;
}

namespace {

// One "Name:   value kB" line of smaps (the name padded to 16 columns, the
// value right-aligned in 8, as show_smap's SEQ_PUT_DEC prints them).
void SmapsLine(std::string& out, const char* name, uint64_t bytes) {
  absl::StrAppendFormat(&out, "%-16s%8d kB\n", absl::StrCat(name, ":"), bytes / 1024);
}

// The VmFlags mnemonics of a mapping, in Linux's bit order
// (show_smap_vma_flags): rd wr ex sh mr mw me ms gd ... ac ... dd.
std::string VmFlags(const Vma& v) {
  std::string out = "VmFlags: ";
  auto add = [&out](bool set, const char* m) {
    if (set) absl::StrAppend(&out, m, " ");
  };
  add(v.prot & PROT_READ, "rd");
  add(v.prot & PROT_WRITE, "wr");
  add(v.prot & PROT_EXEC, "ex");
  add(v.shared, "sh");
  add(true, "mr");
  add(v.may_write, "mw");
  add(true, "me");
  add(v.shared, "ms");
  add(v.grows_down, "gd");
  // VM_DONTEXPAND for the special mappings; VM_ACCOUNT for private
  // writable memory, which Linux charges to overcommit.
  add(v.special != nullptr, "de");
  add(v.special == nullptr && !v.shared && (v.prot & PROT_WRITE), "ac");
  out += '\n';
  return out;
}

}  // namespace

std::string MemoryManager::ProcSmaps() {
  absl::MutexLock l(&mu_);
  std::string out;
  for (auto& [start, v] : vmas_) {
    out += MapsLine(v);
    uint64_t rss = 0, pss = 0, shared = 0, anon = 0;
    for (auto it = pages_.lower_bound(v.start); it != pages_.end() && it->first < v.end; ++it) {
      const uint32_t refs = mf_.References(it->second.offset);
      rss += kPageSize;
      pss += kPageSize / std::max<uint32_t>(refs, 1);
      if (refs > 1) shared += kPageSize;
    }
    const bool anonymous = v.file == nullptr && v.shm == nullptr && v.special == nullptr;
    if (anonymous) anon = rss;
    // Anonymous and shared memory is dirty from the start (it has no file
    // to be clean against); file pages count as clean.
    const bool dirty = v.file == nullptr && v.special == nullptr;
    SmapsLine(out, "Size", v.end - v.start);
    SmapsLine(out, "KernelPageSize", kPageSize);
    SmapsLine(out, "MMUPageSize", kPageSize);
    SmapsLine(out, "Rss", rss);
    SmapsLine(out, "Pss", pss);
    SmapsLine(out, "Pss_Dirty", dirty ? pss : 0);
    SmapsLine(out, "Shared_Clean", dirty ? 0 : shared);
    SmapsLine(out, "Shared_Dirty", dirty ? shared : 0);
    SmapsLine(out, "Private_Clean", dirty ? 0 : rss - shared);
    SmapsLine(out, "Private_Dirty", dirty ? rss - shared : 0);
    SmapsLine(out, "Referenced", rss);
    SmapsLine(out, "Anonymous", anon);
    for (const char* zero : {"LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped",
                             "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss", "Locked"}) {
      SmapsLine(out, zero, 0);
    }
    out += "THPeligible:    0\n";
    out += VmFlags(v);
  }
  return out;
}

void MemoryManager::NoteHiwaterLocked() {
  uint64_t total = 0;
  for (const auto& [start, v] : vmas_) total += (v.end - v.start) / kPageSize;
  hiwater_vm_ = std::max(hiwater_vm_, total);
  hiwater_rss_ = std::max<uint64_t>(hiwater_rss_, pages_.size());
}

MemoryUsage MemoryManager::Usage() {
  absl::MutexLock l(&mu_);
  NoteHiwaterLocked();
  MemoryUsage u;
  u.peak_total = hiwater_vm_;
  u.peak_rss = hiwater_rss_;
  auto pit = pages_.begin();
  for (const auto& [start, v] : vmas_) {
    const uint64_t n = (v.end - v.start) / kPageSize;
    u.total += n;
    if (IsData(v.prot, v.shared, v.grows_down)) u.data += n;
    if (v.grows_down) u.stack += n;
    // VM_EXEC & ~VM_WRITE & ~VM_STACK (is_exec_mapping).
    if ((v.prot & PROT_EXEC) && !(v.prot & PROT_WRITE) && !v.grows_down) u.exec += n;
    // pages_ and vmas_ are both in address order: walk them together.
    pit = pages_.lower_bound(v.start);
    uint64_t resident = 0;
    for (; pit != pages_.end() && pit->first < v.end; ++pit) resident++;
    if (v.shm != nullptr) {
      u.rss_shmem += resident;
    } else if (v.file != nullptr || v.special != nullptr) {
      u.rss_file += resident;
    } else {
      u.rss_anon += resident;
    }
  }
  if (end_code_ > start_code_) u.text = (PageUp(end_code_) - PageDown(start_code_)) / kPageSize;
  u.start_code = start_code_;
  u.end_code = end_code_;
  u.start_brk = brk_base_;
  return u;
}

Result<std::unique_ptr<MemoryManager>> MemoryManager::Fork() {
  absl::MutexLock l(&mu_);
  auto child = std::make_unique<MemoryManager>(mf_, nullptr, min_addr_, max_addr_);
  absl::MutexLock cl(&child->mu_);
  child->vmas_ = vmas_;
  child->brk_base_ = brk_base_;
  child->brk_ = brk_;
  child->start_code_ = start_code_;
  child->end_code_ = end_code_;
  child->hiwater_vm_ = hiwater_vm_;
  child->hiwater_rss_ = hiwater_rss_;
  child->mmap_base_ = mmap_base_;
  // Share every page; write-protect the private writable ones on the host so
  // the parent's next write to each faults and copies it.
  for (auto& [addr, page] : pages_) {
    mf_.IncRef(page.offset);
    child->pages_.emplace(addr, Page{page.offset});
  }
  for (auto& [start, vma] : vmas_) {
    if (vma.shared || !(vma.prot & PROT_WRITE)) continue;
    bool mapped = false;
    for (auto it = pages_.lower_bound(vma.start); it != pages_.end() && it->first < vma.end; ++it) {
      mapped |= it->second.mapped;
    }
    if (!mapped) continue;
    // Reads keep working without a fault; a write faults and copies.
    bool is_protected = as_->Protect(vma.start, vma.end - vma.start, vma.prot & ~PROT_WRITE).ok();
    if (!is_protected) (void)as_->Unmap(vma.start, vma.end - vma.start);
    for (auto it = pages_.lower_bound(vma.start); it != pages_.end() && it->first < vma.end; ++it) {
      it->second.writable = false;
      if (!is_protected) it->second.mapped = false;
    }
  }
  return child;
}

size_t MemoryManager::ResidentBytes() {
  absl::MutexLock l(&mu_);
  return pages_.size() * kPageSize;
}

}  // namespace husk
