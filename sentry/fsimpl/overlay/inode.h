// overlay internals. Only overlay/*.cc include this header.
//
// Lock order: OverlayFs::mu, then the upper's and the lower's own locks. The
// overlay holds mu across every call it makes into the layers for the tree
// operations (lookup, listing, copy-up, create, remove, rename); data I/O
// (ReadAt/WriteAt and open files) runs without it. The layers never call
// back into the overlay.
#ifndef HUSK_SENTRY_FSIMPL_OVERLAY_INODE_H_
#define HUSK_SENTRY_FSIMPL_OVERLAY_INODE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/vfs/vfs.h"

namespace husk::overlay {

// One overlay instance.
struct OverlayFs {
  dev_t dev = 0;
  // st_dev of the lower root: lower inode numbers on that device are shown
  // unchanged; others are remapped so that no two objects share a number.
  dev_t lower_dev = 0;
  // The memory layer's root (set before the instance is shared): statfs's
  // sizes.
  vfs::InodeRef upper_root;
  absl::Mutex mu;
  std::map<std::pair<dev_t, ino_t>, uint64_t> remapped ABSL_GUARDED_BY(mu);
  // Numbers for objects that exist only in the upper, and for remapped ones:
  // above any number a host filesystem hands out in practice.
  uint64_t next_synthetic ABSL_GUARDED_BY(mu) = uint64_t{1} << 62;
};

class OverlayInode;
using OverlayRef = std::shared_ptr<OverlayInode>;

// One object of the merged tree. A path yields the same OverlayInode for as
// long as anything uses it (a directory caches its looked-up children
// weakly), and one with an upper copy is kept for as long as the path exists
// (the cache holds it strongly), so that its whiteouts and its synthetic
// number live as long as it. A lower-only object nobody uses is dropped with
// the gofer fid and host descriptor below it; looked up again it gets the
// same number (the lower's, or the remapped one OverlayFs remembers).
class OverlayInode : public vfs::Inode {
 public:
  OverlayInode(std::shared_ptr<OverlayFs> fs, mode_t type, vfs::InodeRef upper, vfs::InodeRef lower,
               std::weak_ptr<OverlayInode> parent, std::string name);
  // A tree as deep as the application made it is freed without recursion.
  ~OverlayInode() override;

  Result<struct stat> Stat() override;
  mode_t Type() override { return type_; }

  Result<vfs::InodeRef> Lookup(const std::string& name) override;
  Result<std::vector<vfs::Dirent>> ReadDir() override;
  Result<vfs::InodeRef> Create(const std::string& name, mode_t mode) override;
  Result<vfs::InodeRef> Mkdir(const std::string& name, mode_t mode) override;
  Result<vfs::InodeRef> Symlink(const std::string& name, const std::string& target) override;
  Result<vfs::InodeRef> Mknod(const std::string& name, mode_t mode) override;
  // Copies up, then the memory layer allocates.
  Status Allocate(int mode, uint64_t offset, uint64_t len) override;
  // The holes of the file underneath (the upper's once copied up).
  Result<off_t> SeekData(off_t offset, bool hole) override;
  // OVERLAYFS_SUPER_MAGIC, with the sizes of the memory layer.
  Result<struct statfs> Statfs() override;
  // The upper's attributes once copied up, else the lower's; a change copies
  // up first.
  Result<std::string> GetXattr(const std::string& name) override;
  Result<std::vector<std::string>> ListXattr() override;
  Status SetXattr(const std::string& name, const std::string& value, int flags) override;
  Status RemoveXattr(const std::string& name) override;
  Status Unlink(const std::string& name) override;
  Status Link(const std::string& name, vfs::InodeRef target) override;
  Status Rmdir(const std::string& name) override;
  Status Rename(const std::string& name, vfs::Inode& new_dir, const std::string& new_name) override;
  void Prefetch(const std::vector<std::string>& names) override;
  Status Exchange(const std::string& name, vfs::Inode& new_dir,
                  const std::string& new_name) override;

  Result<std::string> Readlink() override;
  Result<vfs::FileRef> Open(int flags) override;
  Result<size_t> ReadAt(char* buf, size_t n, uint64_t offset) override;
  Result<size_t> WriteAt(const char* buf, size_t n, uint64_t offset) override;
  Status SetAttributes(const vfs::SetAttr& attr) override;
  bool SharesPages() override;
  Result<uint64_t> SharedPage(uint64_t index) override;
  bool Stream() override;

 private:
  // The layer that answers for this object now: the upper if any.
  vfs::InodeRef Real() ABSL_LOCKS_EXCLUDED(fs_->mu);
  uint64_t InoLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);

  Result<OverlayRef> LookupLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  Result<std::vector<vfs::Dirent>> ReadDirLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // Caches a child made by this overlay in the upper.
  OverlayRef AddUpperChildLocked(const std::string& name, vfs::InodeRef upper)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // Fails with EEXIST if `name` exists, with the lookup's error if the
  // lookup failed otherwise; then copies this directory up.
  Status PrepareCreateLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // Forgets the child `name` (unlinked, removed or replaced).
  void DropChildLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // Marks the upper directory modified when only a whiteout changed.
  void TouchUpperLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // Whether this inode is `d` or lies below it.
  bool IsAtOrBelowLocked(const OverlayInode* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);

  // Gives the object an upper copy (copy_up.cc), creating the parents'
  // first. With copy_data false a regular file is copied up empty (O_TRUNC).
  Status CopyUpLocked(bool copy_data = true) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);

  const std::shared_ptr<OverlayFs> fs_;
  const mode_t type_;
  // The lower object this one came from (null for objects made in the upper
  // and for opaque directories). It stays after copy-up: the inode number
  // comes from it.
  const vfs::InodeRef lower_;
  vfs::InodeRef upper_ ABSL_GUARDED_BY(fs_->mu);
  uint64_t ino_ ABSL_GUARDED_BY(fs_->mu) = 0;  // 0: not chosen yet
  std::weak_ptr<OverlayInode> parent_ ABSL_GUARDED_BY(fs_->mu);
  // Until it has an upper copy, an object keeps its parent alive (its
  // parent caches it only weakly, and copy-up needs the parent); from then
  // on the parent's cache holds it instead, so there is no cycle.
  OverlayRef parent_hold_ ABSL_GUARDED_BY(fs_->mu);
  std::string name_ ABSL_GUARDED_BY(fs_->mu);
  bool unlinked_ ABSL_GUARDED_BY(fs_->mu) = false;
  // The cached child `name` if it is still alive.
  OverlayRef CachedChildLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // Caches `child` as `name`: strongly once it has an upper copy.
  void CacheChildLocked(const std::string& name, const OverlayRef& child)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);
  // Gives this one object its upper copy; its parent has one already.
  Status CopyUpOneLocked(const OverlayRef& parent, bool copy_data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(fs_->mu);

  struct ChildEntry {
    std::weak_ptr<OverlayInode> weak;
    OverlayRef pinned;  // set once the child has an upper copy
  };
  // Directories: looked-up children, and names whose lower entry is hidden.
  std::map<std::string, ChildEntry> children_ ABSL_GUARDED_BY(fs_->mu);
  size_t purge_at_ ABSL_GUARDED_BY(fs_->mu) = 64;  // drop expired entries past this size
  std::set<std::string> whiteouts_ ABSL_GUARDED_BY(fs_->mu);
};

}  // namespace husk::overlay

#endif  // HUSK_SENTRY_FSIMPL_OVERLAY_INODE_H_
