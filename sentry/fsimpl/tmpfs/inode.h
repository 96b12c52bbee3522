// tmpfs internals: the inode types. Only tmpfs/*.cc include this header.
#ifndef HUSK_SENTRY_FSIMPL_TMPFS_INODE_H_
#define HUSK_SENTRY_FSIMPL_TMPFS_INODE_H_

#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "base/deferred_release.h"
#include "base/result.h"
#include "sentry/memfile/account.h"
#include "sentry/memfile/memfile.h"
#include "sentry/vfs/vfs.h"

namespace husk::tmpfs {

// One tmpfs instance.
struct Filesystem {
  Filesystem(dev_t d, MemoryFile& m) : dev(d), mf(m) {}
  const dev_t dev;
  // Where file data lives (charged to the sandbox's memory account).
  MemoryFile& mf;
  // mount(2)'s size= (in pages) and nr_inodes=; 0: no limit of its own
  // (all tmpfs data together may take half the sandbox's memory).
  uint64_t max_pages = 0;
  uint64_t max_inodes = 0;
  // What the instance holds now: data pages, and inodes alive.
  std::atomic<uint64_t> pages{0};
  std::atomic<uint64_t> inodes{0};
  // shmem_reserve_inode(): ENOSPC when nr_inodes are all taken.
  Status ReserveInode() const {
    if (max_inodes != 0 && inodes.load() >= max_inodes) return Errno{ENOSPC};
    return Ok();
  }
  // Guards every inode of this instance (see the lock order in tmpfs.h).
  absl::Mutex mu;
};

timespec Now();

// What all tmpfs inodes share: identity, ownership, mode and times.
class InodeBase : public vfs::Inode {
 public:
  InodeBase(std::shared_ptr<Filesystem> fs, mode_t mode);
  ~InodeBase() override { fs_->inodes.fetch_sub(1); }

  Result<struct stat> Stat() override;
  mode_t Type() override { return type_; }
  Status SetAttributes(const vfs::SetAttr& attr) override;
  // TMPFS_MAGIC; the size is what all tmpfs data may take (half the
  // sandbox's memory limit), the free part what is left of it.
  Result<struct statfs> Statfs() override;
  // user.* attributes (Linux's tmpfs keeps them since 6.6); other
  // namespaces are not supported here.
  Result<std::string> GetXattr(const std::string& name) override;
  Result<std::vector<std::string>> ListXattr() override;
  Status SetXattr(const std::string& name, const std::string& value, int flags) override;
  Status RemoveXattr(const std::string& name) override;

  uint64_t ino() const { return ino_; }
  const std::shared_ptr<Filesystem>& fs() const { return fs_; }
  // For a caller holding the lock of another inode of this instance: tells
  // the analysis (and checks) that it is this inode's lock too.
  void AssertLocked() const ABSL_ASSERT_EXCLUSIVE_LOCK(fs_->mu) { fs_->mu.AssertHeld(); }

  // mtime = ctime = now (a change of content).
  void TouchModifyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // ctime = now (a change of metadata).
  void TouchChangeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // A new name for the inode (link(2)).
  void AddLinkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // Like inode_init_owner() below a set-group-ID directory: the new inode
  // takes the directory's group, and a new directory keeps S_ISGID.
  void InheritGroupLocked(gid_t gid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // The inode lost its name (unlink, rmdir, replaced by rename).
  virtual void DropLinkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);

 protected:
  // Fills st_size, st_blocks and st_nlink.
  virtual void FillSizeLocked(struct stat* st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu) = 0;
  // truncate(2) on this inode type. Linux: EISDIR for directories, EINVAL
  // for anything but regular files.
  virtual Status TruncateLocked(uint64_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu) {
    return Errno{EINVAL};
  }

  const std::shared_ptr<Filesystem> fs_;
  const uint64_t ino_;
  const mode_t type_;
  mode_t perm_ ABSL_GUARDED_BY(fs_->mu);  // 07777 bits
  uid_t uid_ ABSL_GUARDED_BY(fs_->mu) = 0;
  gid_t gid_ ABSL_GUARDED_BY(fs_->mu) = 0;
  nlink_t nlink_ ABSL_GUARDED_BY(fs_->mu) = 1;
  timespec atime_ ABSL_GUARDED_BY(fs_->mu);
  timespec mtime_ ABSL_GUARDED_BY(fs_->mu);
  timespec ctime_ ABSL_GUARDED_BY(fs_->mu);
  std::map<std::string, std::string> xattrs_ ABSL_GUARDED_BY(fs_->mu);
  size_t xattr_bytes_ ABSL_GUARDED_BY(fs_->mu) = 0;
};

// A regular file. Data lives in sparse pages of the sandbox's memory file,
// so MAP_SHARED mappings map the file's own pages (what read(2) and write(2)
// see, Linux's shmem); holes read as zeros and take no memory.
class RegularFile : public InodeBase {
 public:
  static constexpr size_t kPage = kPageSize;

  RegularFile(std::shared_ptr<Filesystem> fs, mode_t perm)
      : InodeBase(std::move(fs), S_IFREG | perm) {}
  ~RegularFile() override;

  Result<vfs::FileRef> Open(int flags) override;
  Result<size_t> ReadAt(char* buf, size_t n, uint64_t offset) override;
  Result<size_t> WriteAt(const char* buf, size_t n, uint64_t offset) override;
  bool SharesPages() override { return true; }
  Result<uint64_t> SharedPage(uint64_t index) override;
  // shmem_fallocate: pages allocated (zeros) over the range, the size grown
  // unless KEEP_SIZE; or a hole punched (whole pages freed, partial ones
  // zeroed).
  Status Allocate(int mode, uint64_t offset, uint64_t len) override;
  // Holes are the pages never written (or punched), as shmem reports them.
  Result<off_t> SeekData(off_t offset, bool hole) override;
  // Seals, as shmem keeps them: every tmpfs file starts with F_SEAL_SEAL,
  // which memfd_create(MFD_ALLOW_SEALING) clears (SetSealsForMemfd).
  Result<int> Seals() override;
  Status AddSeals(int seals) override;
  void NoteWritableMapping(const std::shared_ptr<Mappable>& m) override;
  void SetSealsForMemfd(int seals);
  bool LinkableUnnamed() override { return linkable_; }
  void set_linkable(bool v) { linkable_ = v; }

 protected:
  void FillSizeLocked(struct stat* st) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  Status TruncateLocked(uint64_t size) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);

 private:
  // A write of [offset, offset+n) as the seals allow: EPERM under a write
  // seal, or under F_SEAL_GROW when it ends past the size.
  Status CheckWriteSealsLocked(uint64_t offset, uint64_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);

  uint64_t size_ ABSL_GUARDED_BY(fs_->mu) = 0;
  int seals_ ABSL_GUARDED_BY(fs_->mu) = 0x0001;  // F_SEAL_SEAL
  std::atomic<bool> linkable_{false};
  // Shared mappings that may write, for F_SEAL_WRITE's EBUSY.
  std::vector<std::weak_ptr<Mappable>> writable_maps_ ABSL_GUARDED_BY(fs_->mu);
  // Page index -> memory-file offset (this file's reference); missing pages
  // are holes. Charged to the sandbox's memory limit by the memory file.
  std::map<uint64_t, uint64_t> pages_ ABSL_GUARDED_BY(fs_->mu);
};

class SymlinkInode : public InodeBase {
 public:
  SymlinkInode(std::shared_ptr<Filesystem> fs, std::string target)
      : InodeBase(std::move(fs), S_IFLNK | 0777), target_(std::move(target)) {}

  Result<std::string> Readlink() override { return target_; }

 protected:
  void FillSizeLocked(struct stat* st) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);

 private:
  const std::string target_;
};

// A FIFO, a socket's name or a whiteout (character device 0:0): a name and
// attributes, no data here. Opening a FIFO is the pipe layer's business;
// the others cannot be opened (ENXIO).
class SpecialInode : public InodeBase {
 public:
  SpecialInode(std::shared_ptr<Filesystem> fs, mode_t mode) : InodeBase(std::move(fs), mode) {}

  Result<vfs::FileRef> Open(int flags) override;

 protected:
  void FillSizeLocked(struct stat* st) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
};

class Dir : public InodeBase {
 public:
  Dir(std::shared_ptr<Filesystem> fs, mode_t perm) : InodeBase(std::move(fs), S_IFDIR | perm) {}
  // A tree as deep as the application made it is freed without recursion.
  ~Dir() override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto& [name, child] : children_) DeferRelease(std::move(child));
  }

  // open(2): EISDIR for write access or O_TRUNC.
  Result<vfs::FileRef> Open(int flags) override;
  Result<vfs::InodeRef> Lookup(const std::string& name) override;
  Result<std::vector<vfs::Dirent>> ReadDir() override;
  Result<vfs::InodeRef> Create(const std::string& name, mode_t mode) override;
  Result<vfs::InodeRef> Mkdir(const std::string& name, mode_t mode) override;
  Result<vfs::InodeRef> Symlink(const std::string& name, const std::string& target) override;
  Result<vfs::InodeRef> Mknod(const std::string& name, mode_t mode) override;
  Status Unlink(const std::string& name) override;
  Status Rmdir(const std::string& name) override;
  Status Rename(const std::string& name, vfs::Inode& new_dir, const std::string& new_name) override;
  Result<vfs::InodeRef> RenameWhiteout(const std::string& name, vfs::Inode& new_dir,
                                       const std::string& new_name) override;
  Status Exchange(const std::string& name, vfs::Inode& new_dir,
                  const std::string& new_name) override;

  // Links `inode` as `name` (AddChild in tmpfs.h).
  // Also links in inodes of other filesystems (AddChild's device nodes).
  Status Link(const std::string& name, vfs::InodeRef inode) override;

  void DropLinkLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);

 protected:
  void FillSizeLocked(struct stat* st) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  Status TruncateLocked(uint64_t size) override { return Errno{EISDIR}; }

 private:
  // Inserts a new child, checking the name and that this directory lives.
  Status InsertLocked(const std::string& name, vfs::InodeRef inode)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // Rename, and a whiteout (when not null) put at the old name at once.
  Status RenameLocked(const std::string& name, Dir& new_dir, const std::string& new_name,
                      const vfs::InodeRef& whiteout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // Whether this directory is `d` or lies below it.
  bool IsAtOrBelowLocked(const Dir* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);

  std::map<std::string, vfs::InodeRef> children_ ABSL_GUARDED_BY(fs_->mu);
  // Directories have one parent (no hard links), so the tree can be walked
  // upwards to refuse moving a directory below itself.
  std::weak_ptr<Dir> parent_ ABSL_GUARDED_BY(fs_->mu);
  size_t subdirs_ ABSL_GUARDED_BY(fs_->mu) = 0;
  bool removed_ ABSL_GUARDED_BY(fs_->mu) = false;
};

}  // namespace husk::tmpfs

#endif  // HUSK_SENTRY_FSIMPL_TMPFS_INODE_H_
