#include "sentry/fsimpl/tmpfs/inode.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/xattr.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <new>
#include <vector>

#include "sentry/time/sandbox_clock.h"

namespace husk::tmpfs {

timespec Now() { return SandboxTimespec(CLOCK_REALTIME); }

InodeBase::InodeBase(std::shared_ptr<Filesystem> fs, mode_t mode)
    : fs_(std::move(fs)), ino_(vfs::NextInodeNumber()), type_(mode & S_IFMT), perm_(mode & 07777) {
  fs_->inodes.fetch_add(1);
  timespec now = Now();
  atime_ = mtime_ = ctime_ = now;
}

Result<struct stat> InodeBase::Stat() {
  struct stat st {};
  absl::MutexLock lock(&fs_->mu);
  st.st_dev = fs_->dev;
  st.st_ino = ino_;
  st.st_mode = type_ | perm_;
  st.st_uid = uid_;
  st.st_gid = gid_;
  st.st_blksize = 4096;
  st.st_atim = atime_;
  st.st_mtim = mtime_;
  st.st_ctim = ctime_;
  FillSizeLocked(&st);
  return st;
}

void InodeBase::TouchModifyLocked() { mtime_ = ctime_ = Now(); }
void InodeBase::TouchChangeLocked() { ctime_ = Now(); }

void InodeBase::AddLinkLocked() {
  nlink_++;
  ctime_ = Now();
}

void InodeBase::InheritGroupLocked(gid_t gid) {
  gid_ = gid;
  if (type_ == S_IFDIR) perm_ |= S_ISGID;
}

void InodeBase::DropLinkLocked() {
  if (nlink_ > 0) nlink_--;
  ctime_ = Now();
}

namespace {
// utimensat(2): UTIME_NOW and UTIME_OMIT in tv_nsec.
void ApplyTime(const timespec& t, timespec* field) {
  if (t.tv_nsec == UTIME_OMIT) return;
  *field = t.tv_nsec == UTIME_NOW ? Now() : t;
}
}  // namespace

Status InodeBase::SetAttributes(const vfs::SetAttr& attr) {
  absl::MutexLock lock(&fs_->mu);
  bool changed = false;
  if (attr.set_size) {
    TRY(TruncateLocked(attr.size));
    changed = true;
  }
  if (attr.set_mode) {
    perm_ = attr.mode & 07777;
    changed = true;
  }
  if (attr.set_uid || attr.set_gid) {
    if (attr.set_uid) uid_ = attr.uid;
    if (attr.set_gid) gid_ = attr.gid;
    // chown(2): changing the owner of a non-directory clears set-user-ID, and
    // set-group-ID when the group may execute (Linux does it for root too).
    if (!attr.set_mode && type_ != S_IFDIR) {
      perm_ &= ~S_ISUID;
      if (perm_ & S_IXGRP) perm_ &= ~S_ISGID;
    }
    changed = true;
  }
  if (attr.set_atime) {
    ApplyTime(attr.atime, &atime_);
    changed = true;
  }
  if (attr.set_mtime) {
    ApplyTime(attr.mtime, &mtime_);
    changed = true;
  }
  if (changed) ctime_ = Now();
  return Ok();
}

// ---- Regular files ----

namespace {
// Linux's MAX_LFS_FILESIZE on 64-bit.
constexpr uint64_t kMaxFileSize = LLONG_MAX;

// File data of every tmpfs together may fill half the sandbox's memory
// limit, as a Linux tmpfs's default size= is half of RAM: the rest stays for
// the processes (a full /tmp must not leave no room to run rm).
std::atomic<uint64_t> g_data_pages{0};

// A page for the instance's data: ENOSPC past its size= or past the
// sandbox-wide cap.
Result<uint64_t> AllocateDataPage(Filesystem& fs) {
  if (fs.max_pages != 0 && fs.pages.load() >= fs.max_pages) return Errno{ENOSPC};
  const uint64_t cap = MemoryAccount::Sandbox().limit() / 2 / kPageSize;
  if (g_data_pages.fetch_add(1) >= cap) {
    g_data_pages.fetch_sub(1);
    return Errno{ENOSPC};
  }
  auto page = fs.mf.Allocate(1);
  if (!page.ok()) {
    g_data_pages.fetch_sub(1);
    return Errno{ENOSPC};
  }
  fs.pages.fetch_add(1);
  return *page;
}

void FreeDataPages(Filesystem& fs, std::vector<uint64_t> pages) {
  if (pages.empty()) return;
  g_data_pages.fetch_sub(pages.size());
  fs.pages.fetch_sub(pages.size());
  fs.mf.FreePages(std::move(pages));
}
}  // namespace

Result<struct statfs> InodeBase::Statfs() {
  ASSIGN_OR_RETURN(struct statfs s, vfs::Inode::Statfs());
  const uint64_t cap = MemoryAccount::Sandbox().limit() / 2 / kPageSize;
  const uint64_t used = std::min<uint64_t>(g_data_pages.load(), cap);
  s.f_blocks = cap;
  s.f_bfree = s.f_bavail = cap - used;
  s.f_files = cap;
  s.f_ffree = cap - used;
  // An instance mounted with size= or nr_inodes= reports its own.
  if (fs_->max_pages != 0) {
    const uint64_t mine = std::min<uint64_t>(fs_->pages.load(), fs_->max_pages);
    s.f_blocks = fs_->max_pages;
    s.f_bfree = s.f_bavail = std::min<uint64_t>(fs_->max_pages - mine, cap - used);
  }
  if (fs_->max_inodes != 0) {
    s.f_files = fs_->max_inodes;
    s.f_ffree = fs_->max_inodes - std::min<uint64_t>(fs_->inodes.load(), fs_->max_inodes);
  }
  s.f_fsid.__val[0] = static_cast<int>(fs_->dev);
  return s;
}

Result<vfs::FileRef> RegularFile::Open(int flags) {
  // open(2) truncates with O_TRUNC even for O_RDONLY (Linux asks for write
  // permission instead). Linux updates mtime and ctime even if already empty.
  if (flags & O_TRUNC) {
    absl::MutexLock lock(&fs_->mu);
    TRY(TruncateLocked(0));
  }
  return Inode::Open(flags);
}

Result<size_t> RegularFile::ReadAt(char* buf, size_t n, uint64_t offset) {
  absl::MutexLock lock(&fs_->mu);
  if (offset >= size_) return size_t{0};
  n = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset));
  size_t done = 0;
  while (done < n) {
    uint64_t pos = offset + done;
    uint64_t index = pos / kPage;
    size_t in_page = pos % kPage;
    size_t chunk = std::min(n - done, kPage - in_page);
    auto it = pages_.find(index);
    if (it == pages_.end()) {
      memset(buf + done, 0, chunk);
    } else {
      memcpy(buf + done, fs_->mf.At(it->second) + in_page, chunk);
    }
    done += chunk;
  }
  return n;
}

Result<size_t> RegularFile::WriteAt(const char* buf, size_t n, uint64_t offset) {
  if (n == 0) return size_t{0};
  // write(2): EFBIG at or past the maximum size; shorter writes up to it.
  if (offset >= kMaxFileSize) return Errno{EFBIG};
  n = static_cast<size_t>(std::min<uint64_t>(n, kMaxFileSize - offset));
  absl::MutexLock lock(&fs_->mu);
  TRY(CheckWriteSealsLocked(offset, n));
  size_t done = 0;
  while (done < n) {
    uint64_t pos = offset + done;
    uint64_t index = pos / kPage;
    size_t in_page = pos % kPage;
    size_t chunk = std::min(n - done, kPage - in_page);
    auto it = pages_.find(index);
    if (it == pages_.end()) {
      // Past the sandbox's memory limit a tmpfs is full (ENOSPC), as one
      // whose size= is reached.
      auto page = AllocateDataPage(*fs_);
      if (!page.ok()) {
        if (done == 0) return Errno{ENOSPC};
        break;
      }
      it = pages_.emplace(index, *page).first;
    }
    memcpy(fs_->mf.At(it->second) + in_page, buf + done, chunk);
    done += chunk;
  }
  size_ = std::max<uint64_t>(size_, offset + done);
  TouchModifyLocked();
  return done;
}

Status RegularFile::Allocate(int mode, uint64_t offset, uint64_t len) {
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) return Errno{EOPNOTSUPP};
  if (len > kMaxFileSize || offset > kMaxFileSize - len) return Errno{EFBIG};
  const uint64_t end = offset + len;
  absl::MutexLock lock(&fs_->mu);
  // shmem_fallocate: punching is a write; growing is what F_SEAL_GROW stops.
  if (mode & FALLOC_FL_PUNCH_HOLE) {
    if (seals_ & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) return Errno{EPERM};
  } else if (!(mode & FALLOC_FL_KEEP_SIZE) && (seals_ & F_SEAL_GROW) && end > size_) {
    return Errno{EPERM};
  }
  if (mode & FALLOC_FL_PUNCH_HOLE) {
    std::vector<uint64_t> gone;
    for (auto it = pages_.lower_bound(offset / kPage);
         it != pages_.end() && it->first * kPage < end;) {
      const uint64_t start = it->first * kPage;
      const uint64_t lo = std::max(offset, start), hi = std::min(end, start + kPage);
      if (lo == start && hi == start + kPage) {
        gone.push_back(it->second);
        it = pages_.erase(it);
        continue;
      }
      memset(fs_->mf.At(it->second) + (lo - start), 0, hi - lo);
      ++it;
    }
    FreeDataPages(*fs_, std::move(gone));
    TouchModifyLocked();
    return Ok();
  }
  // Every missing page of the range, undone if the tmpfs fills up on the way.
  std::vector<uint64_t> added_index, added_page;
  for (uint64_t index = offset / kPage; index * kPage < end; index++) {
    if (pages_.contains(index)) continue;
    auto page = AllocateDataPage(*fs_);
    if (!page.ok()) {
      for (uint64_t i : added_index) pages_.erase(i);
      FreeDataPages(*fs_, std::move(added_page));
      return Errno{ENOSPC};
    }
    pages_.emplace(index, *page);
    added_index.push_back(index);
    added_page.push_back(*page);
  }
  if (!(mode & FALLOC_FL_KEEP_SIZE) && end > size_) size_ = end;
  TouchModifyLocked();
  return Ok();
}

Result<off_t> RegularFile::SeekData(off_t offset, bool hole) {
  absl::MutexLock lock(&fs_->mu);
  const auto size = static_cast<off_t>(size_);
  if (offset >= size) return Errno{ENXIO};
  uint64_t index = static_cast<uint64_t>(offset) / kPage;
  if (!hole) {
    auto it = pages_.lower_bound(index);
    if (it == pages_.end()) return Errno{ENXIO};
    const off_t at = std::max(offset, static_cast<off_t>(it->first * kPage));
    if (at >= size) return Errno{ENXIO};
    return at;
  }
  // The first page from offset on that is not there (the end counts as a hole).
  for (auto it = pages_.find(index); it != pages_.end() && it->first == index; ++it) index++;
  return std::min(size, std::max(offset, static_cast<off_t>(index * kPage)));
}

RegularFile::~RegularFile() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // The last reference: nobody else can hold fs_->mu for this file.
  std::vector<uint64_t> held;
  held.reserve(pages_.size());
  for (auto& [index, off] : pages_) held.push_back(off);
  FreeDataPages(*fs_, std::move(held));
}

Result<uint64_t> RegularFile::SharedPage(uint64_t index) {
  absl::MutexLock lock(&fs_->mu);
  // A page that holds no byte of the file: SIGBUS for the access (mmap(2)).
  if (index >= (size_ + kPage - 1) / kPage) return Errno{EFAULT};
  auto it = pages_.find(index);
  if (it == pages_.end()) {
    // A full tmpfs fails the fault with SIGBUS, as Linux's shmem does.
    auto page = AllocateDataPage(*fs_);
    if (!page.ok()) return Errno{EFAULT};
    uint64_t off = *page;
    it = pages_.emplace(index, off).first;
  }
  fs_->mf.IncRef(it->second);
  return it->second;
}

void RegularFile::FillSizeLocked(struct stat* st) {
  st->st_size = static_cast<off_t>(size_);
  // Like Linux tmpfs, count the pages actually held (holes take none).
  st->st_blocks = static_cast<blkcnt_t>(pages_.size() * (kPage / 512));
  st->st_nlink = nlink_;
}

Status RegularFile::CheckWriteSealsLocked(uint64_t offset, uint64_t n) {
  if (seals_ & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) return Errno{EPERM};
  if ((seals_ & F_SEAL_GROW) && offset + n > size_) return Errno{EPERM};
  return Ok();
}

Result<int> RegularFile::Seals() {
  absl::MutexLock lock(&fs_->mu);
  return seals_;
}

Status RegularFile::AddSeals(int seals) {
  absl::MutexLock lock(&fs_->mu);
  if (seals_ & F_SEAL_SEAL) return Errno{EPERM};
  if ((seals & F_SEAL_WRITE) && !(seals_ & F_SEAL_WRITE)) {
    // mapping_deny_writable(): no shared mapping that may write.
    std::erase_if(writable_maps_, [](const std::weak_ptr<Mappable>& m) { return m.expired(); });
    if (!writable_maps_.empty()) return Errno{EBUSY};
  }
  seals_ |= seals;
  return Ok();
}

void RegularFile::NoteWritableMapping(const std::shared_ptr<Mappable>& m) {
  absl::MutexLock lock(&fs_->mu);
  std::erase_if(writable_maps_, [](const std::weak_ptr<Mappable>& w) { return w.expired(); });
  writable_maps_.push_back(m);
}

void RegularFile::SetSealsForMemfd(int seals) {
  absl::MutexLock lock(&fs_->mu);
  seals_ = seals;
}

Status RegularFile::TruncateLocked(uint64_t size) {
  if (size > kMaxFileSize) return Errno{EFBIG};
  if ((seals_ & F_SEAL_SHRINK) && size < size_) return Errno{EPERM};
  if ((seals_ & F_SEAL_GROW) && size > size_) return Errno{EPERM};
  if (size < size_) {
    uint64_t keep = (size + kPage - 1) / kPage;  // pages that still hold data
    std::vector<uint64_t> gone;
    for (auto it = pages_.lower_bound(keep); it != pages_.end(); it = pages_.erase(it)) {
      gone.push_back(it->second);
    }
    // Mappings that hold these pages keep their own references: what they
    // see there no longer reaches the file (Linux would unmap them).
    FreeDataPages(*fs_, std::move(gone));
    // Zero the tail of a partial last page so a later extension reads zeros.
    if (size % kPage != 0) {
      auto it = pages_.find(size / kPage);
      if (it != pages_.end()) {
        memset(fs_->mf.At(it->second) + size % kPage, 0, kPage - size % kPage);
      }
    }
  }
  size_ = size;
  TouchModifyLocked();
  return Ok();
}

// ---- Symbolic links ----

namespace {
// What one inode's attributes may hold in all (names and values): a bound
// of the sentry's, for memory the limit does not see.
constexpr size_t kMaxXattrBytes = 1 << 20;

bool UserXattr(const std::string& name) { return name.rfind("user.", 0) == 0; }
}  // namespace

Result<std::string> InodeBase::GetXattr(const std::string& name) {
  if (!UserXattr(name)) return Errno{EOPNOTSUPP};
  absl::MutexLock lock(&fs_->mu);
  auto it = xattrs_.find(name);
  if (it == xattrs_.end()) return Errno{ENODATA};
  return it->second;
}

Result<std::vector<std::string>> InodeBase::ListXattr() {
  absl::MutexLock lock(&fs_->mu);
  std::vector<std::string> names;
  names.reserve(xattrs_.size());
  for (const auto& [name, value] : xattrs_) names.push_back(name);
  return names;
}

Status InodeBase::SetXattr(const std::string& name, const std::string& value, int flags) {
  if (!UserXattr(name)) return Errno{EOPNOTSUPP};
  absl::MutexLock lock(&fs_->mu);
  auto it = xattrs_.find(name);
  if (it != xattrs_.end() && (flags & XATTR_CREATE)) return Errno{EEXIST};
  if (it == xattrs_.end() && (flags & XATTR_REPLACE)) return Errno{ENODATA};
  const size_t old_bytes = it == xattrs_.end() ? 0 : name.size() + it->second.size();
  const size_t bytes = xattr_bytes_ - old_bytes + name.size() + value.size();
  if (bytes > kMaxXattrBytes) return Errno{ENOSPC};
  xattrs_[name] = value;
  xattr_bytes_ = bytes;
  TouchChangeLocked();
  return Ok();
}

Status InodeBase::RemoveXattr(const std::string& name) {
  if (!UserXattr(name)) return Errno{EOPNOTSUPP};
  absl::MutexLock lock(&fs_->mu);
  auto it = xattrs_.find(name);
  if (it == xattrs_.end()) return Errno{ENODATA};
  xattr_bytes_ -= name.size() + it->second.size();
  xattrs_.erase(it);
  TouchChangeLocked();
  return Ok();
}

Result<vfs::FileRef> SpecialInode::Open(int flags) {
  // O_PATH descriptors of any node are fine; a socket's name or a whiteout
  // opens to nothing (a FIFO's open never gets here).
  if (flags & O_PATH) return InodeBase::Open(flags);
  return Errno{ENXIO};
}

void SpecialInode::FillSizeLocked(struct stat* st) {
  st->st_size = 0;
  st->st_blocks = 0;
  st->st_nlink = nlink_;
}

void SymlinkInode::FillSizeLocked(struct stat* st) {
  st->st_size = static_cast<off_t>(target_.size());
  st->st_blocks = 0;
  st->st_nlink = nlink_;
}

}  // namespace husk::tmpfs
