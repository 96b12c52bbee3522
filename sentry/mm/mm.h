// MemoryManager: one application address space as the sentry sees it.
//
// Three layers, as in DESIGN.md section 4:
//  - VMAs: what the application asked for (mmap, brk, the loader);
//  - pages: which memory-file page backs each populated application page
//    (private and anonymous memory only, for now: file data is copied in on
//    first touch, which is MAP_PRIVATE's semantics);
//  - host mappings: which pages are actually installed in the platform's
//    address space. Installing is lazy: a fault installs the page and its
//    neighbours (up to kFaultAround pages) in one platform call.
//
// Lock order: MemoryManager::mu_ before MemoryFile::mu_.
#ifndef HUSK_SENTRY_MM_MM_H_
#define HUSK_SENTRY_MM_MM_H_

#include <errno.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "base/result.h"
#include "platform/platform.h"
#include "sentry/memfile/memfile.h"

namespace husk {

// What backs a file mapping. A private mapping reads page contents from it
// on first touch. A shared mapping of an object that keeps its data in the
// memory file (a tmpfs file) maps the object's own pages, so every mapping
// and read(2)/write(2) see the same bytes; of any other object it copies
// like a private one, and may not be made writable.
class Mappable {
 public:
  virtual ~Mappable() = default;
  // Reads up to n bytes at offset; short at end of file.
  virtual Result<size_t> ReadForMapping(uint64_t offset, char* buf, size_t n) = 0;
  // Whether shared mappings map the object's own pages (SharedPage).
  virtual bool SharesPages() const { return false; }
  // The memory-file offset of page `index` of the object, allocated (zeroed)
  // on first use, with one reference taken for the caller, who drops it with
  // MemoryFile::Free. EFAULT for a page wholly past the end of the object
  // (the access gets SIGBUS), ENOMEM when the sandbox is out of memory.
  virtual Result<uint64_t> SharedPage(uint64_t index) { return Errno{ENODEV}; }
  // Whether the object's data can never change while it is mapped (a file
  // of the gofer's read-only tree): a private mapping then has nothing to
  // follow and may copy a writable page at its first fault.
  virtual bool Unchanging() const { return false; }
  // Page `index` went to a shared mapping that may write it: the object
  // takes it as dirty (the sentry cannot see which pages a mapping writes).
  virtual void NoteSharedWrite(uint64_t index) {}
  // Writes what shared mappings changed in [offset, offset+len) back to
  // where the object keeps its data (msync(2); munmap). Nothing to do for
  // objects whose pages are their data (tmpfs).
  virtual Status Sync(uint64_t offset, uint64_t len) { return Ok(); }
  // Identity shown in /proc/self/maps.
  virtual std::string MapsName() const = 0;
  virtual uint64_t MapsInode() const { return 0; }
  virtual uint64_t MapsDevice() const { return 0; }
};

// The pages of one MAP_SHARED|MAP_ANONYMOUS mapping (Linux's shmem object):
// every address space that maps it (the original and its forks) finds the
// same page at the same offset, whether or not it was touched before the
// fork. Holds one reference to each memory-file page it has handed out.
class SharedAnon {
 public:
  explicit SharedAnon(MemoryFile& mf) : mf_(mf) {}
  ~SharedAnon();
  SharedAnon(const SharedAnon&) = delete;
  SharedAnon& operator=(const SharedAnon&) = delete;
  // The memory-file offset of page `index`, allocated (zeroed) on first use.
  Result<uint64_t> PageAt(uint64_t index);

 private:
  MemoryFile& mf_;
  absl::Mutex mu_;
  std::map<uint64_t, uint64_t> pages_ ABSL_GUARDED_BY(mu_);
};

// Memory-file pages the sentry owns and every address space maps alike:
// the vDSO's code and its data page (Linux's special mappings). A mapping
// of them is private: a write (after mprotect, or ptrace's) copies the page
// for that address space only, and a dropped page (MADV_DONTNEED) comes
// back as the original.
class SpecialPages {
 public:
  // Takes over the one reference to each of `count` contiguous pages at
  // `offset`; name is what /proc/[pid]/maps shows; max_prot what mprotect
  // may give a mapping of them (EACCES beyond, as Linux's VM_MAY* flags).
  SpecialPages(MemoryFile& mf, uint64_t offset, size_t count, std::string name, int max_prot)
      : mf_(mf), offset_(offset), count_(count), name_(std::move(name)), max_prot_(max_prot) {}
  ~SpecialPages() { mf_.Free(offset_, count_); }
  SpecialPages(const SpecialPages&) = delete;
  SpecialPages& operator=(const SpecialPages&) = delete;

  uint64_t offset() const { return offset_; }
  size_t pages() const { return count_; }
  size_t bytes() const { return count_ * kPageSize; }
  const std::string& name() const { return name_; }
  int max_prot() const { return max_prot_; }

 private:
  MemoryFile& mf_;
  const uint64_t offset_;
  const size_t count_;
  const std::string name_;
  const int max_prot_;
};

// What identifies a futex word (futex(2)): the address space and address
// for a private futex or a word in private memory, the memory-file offset
// (space null) for a shared futex in MAP_SHARED memory, which every process
// mapping that memory finds alike.
// x86_64's TASK_SIZE_MAX: the end of user space (the last page below 2^47 is
// never user memory).
inline constexpr uintptr_t kTaskSize = (uintptr_t{1} << 47) - kPageSize;

struct FutexKey {
  const void* space = nullptr;
  uint64_t where = 0;
  auto operator<=>(const FutexKey&) const = default;
};

struct Vma {
  uintptr_t start = 0;
  uintptr_t end = 0;
  int prot = 0;
  bool shared = false;
  bool grows_down = false;
  std::shared_ptr<Mappable> file;               // null: anonymous memory
  std::shared_ptr<SharedAnon> shm;              // shared anonymous memory, else null
  std::shared_ptr<const SpecialPages> special;  // the vDSO's pages, else null
  uint64_t file_offset = 0;                     // offset in file (or shm, or special) of `start`
  uintptr_t file_end = UINTPTR_MAX;  // bytes at or past this address read as zeros (ELF bss)
  // VM_MAYWRITE: false for a shared mapping of a file not open for writing
  // (or whose pages cannot be shared), which mprotect may not make writable.
  bool may_write = true;
  std::string name;  // "[heap]", "[stack]", or empty
};

// How far RLIMIT_AS and RLIMIT_DATA let an address space grow, in bytes
// (may_expand_vm): every mapping counts toward `as`, private writable ones
// that are not stacks toward `data`. Unlimited by default (the loader's
// mappings).
struct VmLimits {
  uint64_t as = UINT64_MAX;
  uint64_t data = UINT64_MAX;
  uint64_t data_max = UINT64_MAX;  // RLIMIT_DATA's hard limit: a zero soft limit spares it
};

struct MmapRequest {
  uintptr_t addr = 0;
  size_t length = 0;
  int prot = 0;
  int flags = 0;  // MAP_*
  std::shared_ptr<Mappable> file;
  // Maps these pages (MAP_PRIVATE, with offset; named after them).
  std::shared_ptr<const SpecialPages> special;
  uint64_t offset = 0;
  uintptr_t file_end = UINTPTR_MAX;
  bool may_write = true;  // see Vma::may_write
  std::string name;
  VmLimits limits;
};

// Why HandleFault could not install a page.
enum class FaultFailure {
  kInvalid,      // no mapping or no permission: SIGSEGV
  kOutOfMemory,  // the sandbox is at its memory limit: the OOM killer's case
  kPastEnd,      // a file page wholly past the end of the file: SIGBUS
};

// What /proc/[pid]/status, statm and stat tell of an address space, in
// pages (Linux's mm counters: total_vm, data_vm, stack_vm, exec_vm, and the
// resident pages by kind).
struct MemoryUsage {
  uint64_t total = 0;       // every mapping (VmSize)
  uint64_t peak_total = 0;  // the most total has been (VmPeak)
  uint64_t data = 0;        // private writable mappings that are not stacks (VmData)
  uint64_t stack = 0;       // stacks (VmStk)
  uint64_t exec = 0;        // executable, neither writable nor stacks (VmExe + VmLib)
  uint64_t text = 0;        // the program's code range (VmExe, statm's text)
  uint64_t rss_anon = 0;    // resident private anonymous pages (RssAnon)
  uint64_t rss_file = 0;    // resident pages of file mappings, the vDSO's included (RssFile)
  uint64_t rss_shmem = 0;   // resident pages of shared anonymous mappings (RssShmem)
  uint64_t peak_rss = 0;    // the most resident pages have been (VmHWM)
  // Addresses of /proc/[pid]/stat: the code range, where the heap starts;
  // 0 where the address space does not know (start_stack, the data range).
  uintptr_t start_code = 0, end_code = 0, start_stack = 0, start_data = 0, end_data = 0;
  uintptr_t start_brk = 0;
  uint64_t rss() const { return rss_anon + rss_file + rss_shmem; }
};

class MemoryManager {
 public:
  static constexpr size_t kFaultAround = 16;
  // Faults that continue where the last one's window ended double the
  // window, up to this many pages (a sequential toucher pays one fault per
  // MiB instead of per 64 KiB); any other fault starts again at kFaultAround.
  static constexpr size_t kMaxFaultAround = 256;
  // Read-only pages of a file whose pages are shared (cached) go in by
  // aligned blocks of this many (FileCache reads them in chunks as large).
  static constexpr size_t kFileFaultAround = 256;

  MemoryManager(MemoryFile& mf, std::unique_ptr<platform::AddressSpace> as, uintptr_t min_addr,
                uintptr_t max_addr);
  ~MemoryManager();

  platform::AddressSpace& address_space() { return *as_; }
  // Gives an MM made by Fork its host address space (created by the thread
  // that will run it, as the ptrace platform requires).
  void AttachAddressSpace(std::unique_ptr<platform::AddressSpace> as) { as_ = std::move(as); }
  // A copy of this address space for fork(2): the same VMAs and the same
  // memory-file pages, shared. Pages of MAP_SHARED mappings stay shared;
  // pages of private mappings are copied on the first write by either side
  // (the host maps them read-only until then).
  Result<std::unique_ptr<MemoryManager>> Fork();
  uintptr_t max_addr() const { return max_addr_; }

  // mmap(2) semantics; returns the address or an errno.
  Result<uintptr_t> Mmap(const MmapRequest& req);
  Status Munmap(uintptr_t addr, size_t length);
  Status Mprotect(uintptr_t addr, size_t length, int prot);
  Status Madvise(uintptr_t addr, size_t length, int advice);
  Result<uintptr_t> Mremap(uintptr_t old_addr, size_t old_size, size_t new_size, int flags,
                           uintptr_t new_addr, const VmLimits& limits = {});
  // brk(2): returns the new (or unchanged) break; never an error. A break
  // past RLIMIT_DATA (counted from the heap's start) or a heap the limits
  // do not allow stays where it was.
  uintptr_t Brk(uintptr_t addr, const VmLimits& limits = {});
  // ENOMEM if [addr, addr+length) wraps or holds a page with no mapping
  // (msync(2), mlock(2)).
  Status CheckMapped(uintptr_t addr, size_t length);
  // msync(2) after CheckMapped: shared file mappings in the range write
  // what they changed back to their files (Mappable::Sync).
  Status Msync(uintptr_t addr, size_t length);
  // mincore(2): one byte per page of [addr, addr+length), 1 where the page
  // is in the address space now; ENOMEM where a page has no mapping.
  Result<std::vector<uint8_t>> Mincore(uintptr_t addr, size_t length);
  // The key of the futex word at addr (EINVAL if misaligned, EFAULT if not
  // mapped readable); private_op is FUTEX_PRIVATE_FLAG.
  Result<FutexKey> GetFutexKey(uintptr_t addr, bool private_op);
  // Atomically replaces the 32-bit word at addr with op(old), resolving the
  // page as a write would (copy-on-write first); returns the old value.
  // EFAULT if the word is not writable memory.
  Result<uint32_t> AtomicRmw32(uintptr_t addr, uint32_t (*op)(uint32_t old, uint32_t arg),
                               uint32_t arg);
  // The same with any function of the old value (called again if the word
  // changed under it, so it must not have side effects).
  Result<uint32_t> AtomicUpdate32(uintptr_t addr, absl::FunctionRef<uint32_t(uint32_t old)> op);
  void SetBrkBase(uintptr_t addr);
  // Top of the region where mmap places mappings without a hint.
  void SetMmapBase(uintptr_t addr) { mmap_base_ = addr; }

  // Whether any VMA covers addr (whatever its protection).
  bool HasVma(uintptr_t addr);

  // Handles an application fault at addr; false means the page could not be
  // installed, and *why says why.
  // since: install_generation() when the faulting thread last entered the
  // application. A page installed in full after that was installed by
  // another thread between the fault and now: the access is retried.
  bool HandleFault(uintptr_t addr, FaultFailure* why = nullptr, uint64_t since = UINT64_MAX);
  // Counts page installs and write-enables (see HandleFault).
  uint64_t install_generation() {
    absl::MutexLock l(&mu_);
    return install_generation_;
  }

  // Copy between application memory and the sentry; EFAULT if any byte is
  // unmapped or lacks the permission (read for CopyIn, write for CopyOut).
  Status CopyIn(uintptr_t addr, void* dst, size_t n);
  Status CopyOut(uintptr_t addr, const void* src, size_t n);
  // ptrace's access (FOLL_FORCE): any mapped byte, whatever its protection;
  // a write to a private page makes it this address space's own copy.
  Status ForceCopyIn(uintptr_t addr, void* dst, size_t n);
  Status ForceCopyOut(uintptr_t addr, const void* src, size_t n);
  // Applies host unmappings that a thread outside this address space (a
  // tracer) could not make itself; each thread calls it before it runs.
  void ApplyPendingUnmaps();
  // Reads a NUL-terminated string of at most max bytes (ENAMETOOLONG beyond).
  Result<std::string> CopyInString(uintptr_t addr, size_t max);
  // Copies as much of [addr, addr+n) as is readable; returns the count.
  size_t CopyInPartial(uintptr_t addr, void* dst, size_t n);

  // The text of /proc/[pid]/maps.
  std::string ProcMaps();
  // The text of /proc/[pid]/smaps: each maps line followed by its
  // counters (show_smap). A page is resident when the address space holds
  // a memory-file page for it (fault-around included); its Pss share is
  // divided among the address spaces holding it.
  std::string ProcSmaps();
  // The counters of status, statm and stat.
  MemoryUsage Usage();
  // Where the program's code lies (the loader's start_code, end_code).
  void SetCodeRange(uintptr_t start, uintptr_t end) {
    absl::MutexLock l(&mu_);
    start_code_ = start;
    end_code_ = end;
  }
  // Bytes of memory-file pages held by this address space.
  size_t ResidentBytes();

 private:
  struct Page {
    uint64_t offset;
    bool mapped = false;      // installed in the platform address space
    bool writable = false;    // installed with PROT_WRITE (false while copy-on-write)
    uint64_t generation = 0;  // install_generation_ when installed or made writable
  };
  using VmaMap = std::map<uintptr_t, Vma>;

  VmaMap::iterator FindVma(uintptr_t addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RangeFree(uintptr_t start, uintptr_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether every page of [start, end) lies in some VMA.
  bool CoveredLocked(uintptr_t start, uintptr_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Result<uintptr_t> FindFree(size_t length) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // may_expand_vm: whether `pages` more pages (data ones if `data`) stay
  // within the limits.
  bool MayExpandLocked(const VmLimits& limits, bool data, uint64_t pages)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The pages of [start, end) that some VMA covers.
  uint64_t MappedPagesLocked(uintptr_t start, uintptr_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SplitAt(uintptr_t addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the mapping at [old_addr, +old_size) to dest, new_size long (the
  // destination range is free); its pages go with it.
  uintptr_t MoveLocked(uintptr_t old_addr, size_t old_size, uintptr_t dest, size_t new_size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void InsertVma(Vma vma) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MergeAround(uintptr_t start, uintptr_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnmapLocked(uintptr_t start, uintptr_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // For the shared file mappings that may write in [start, end): their
  // files write the range back (before an unmap, and msync).
  Status SyncLocked(uintptr_t start, uintptr_t end, bool writers_only)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropPages(uintptr_t start, uintptr_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Raises the high-water marks to what the address space holds now
  // (before it shrinks: update_hiwater_vm, update_hiwater_rss).
  void NoteHiwaterLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The line of /proc/[pid]/maps for v, with its '\n'.
  static std::string MapsLine(const Vma& v);
  Result<uint64_t> EnsurePage(const Vma& vma, uintptr_t page) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the mapping maps the file's own pages (Mappable::SharesPages).
  bool UsesFilePages(const Vma& vma) const;
  // Gives p a private copy of its shared page (host mapping untouched);
  // returns the shared page's offset, whose reference the caller drops once
  // the host no longer maps it.
  Result<uint64_t> CopyShared(Page& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Handles a write fault on a page installed read-only for copy-on-write.
  bool MakeWritable(const Vma& vma, uintptr_t page, FaultFailure* why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives a private mapping's page its own memory-file page if it is shared
  // with another address space (copy-on-write); returns the offset.
  Result<uint64_t> Unshare(const Vma& vma, uintptr_t page) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status CopyLocked(uintptr_t addr, char* buf, size_t n, bool out, bool force = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  MemoryFile& mf_;
  std::unique_ptr<platform::AddressSpace> as_;
  const uintptr_t min_addr_;
  const uintptr_t max_addr_;
  absl::Mutex mu_;
  VmaMap vmas_ ABSL_GUARDED_BY(mu_);
  std::map<uintptr_t, Page> pages_ ABSL_GUARDED_BY(mu_);
  uint64_t install_generation_ ABSL_GUARDED_BY(mu_) = 0;
  uintptr_t next_fault_ ABSL_GUARDED_BY(mu_) = 0;  // where the last fault-around window ended
  size_t fault_window_ ABSL_GUARDED_BY(mu_) = kFaultAround;
  std::vector<std::pair<uintptr_t, size_t>> pending_unmaps_ ABSL_GUARDED_BY(mu_);
  // References to drop once pending_unmaps_ are done (pages the host still
  // maps must not go back to the allocator before).
  std::vector<uint64_t> pending_frees_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> has_pending_unmaps_{false};
  uintptr_t brk_base_ ABSL_GUARDED_BY(mu_) = 0;
  uintptr_t brk_ ABSL_GUARDED_BY(mu_) = 0;
  uintptr_t start_code_ ABSL_GUARDED_BY(mu_) = 0, end_code_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t hiwater_vm_ ABSL_GUARDED_BY(mu_) = 0;   // pages
  uint64_t hiwater_rss_ ABSL_GUARDED_BY(mu_) = 0;  // pages
  uintptr_t mmap_base_ = 0;
};

}  // namespace husk

#endif  // HUSK_SENTRY_MM_MM_H_
