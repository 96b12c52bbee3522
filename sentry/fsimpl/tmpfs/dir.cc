// tmpfs directories: an ordered map of names to inodes.
#include <errno.h>
#include <limits.h>

#include "sentry/fsimpl/tmpfs/inode.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"

namespace husk::tmpfs {

namespace {

// Linux tmpfs counts BOGO_DIRENT_SIZE bytes per entry, starting at two.
constexpr off_t kBogoDirentSize = 20;

Status CheckName(const std::string& name) {
  if (name.size() > NAME_MAX) return Errno{ENAMETOOLONG};
  // The VFS never passes these; refuse rather than corrupt the tree.
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return Errno{EINVAL};
  }
  return Ok();
}

// The tmpfs inode behind `inode` if it belongs to filesystem `fs`.
InodeBase* Own(const vfs::InodeRef& inode, const Filesystem* fs) {
  auto* base = dynamic_cast<InodeBase*>(inode.get());
  return base != nullptr && base->fs().get() == fs ? base : nullptr;
}

}  // namespace

Result<vfs::FileRef> Dir::Open(int flags) {
  bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
  if (write && !(flags & O_PATH)) return Errno{EISDIR};
  return Inode::Open(flags);
}

Result<vfs::InodeRef> Dir::Lookup(const std::string& name) {
  TRY(CheckName(name));
  absl::MutexLock lock(&fs_->mu);
  auto it = children_.find(name);
  if (it == children_.end()) return Errno{ENOENT};
  return it->second;
}

Result<std::vector<vfs::Dirent>> Dir::ReadDir() {
  std::vector<std::pair<std::string, vfs::InodeRef>> entries;
  {
    absl::MutexLock lock(&fs_->mu);
    entries.assign(children_.begin(), children_.end());
  }
  // Foreign inodes (device nodes) are asked outside the lock.
  std::vector<vfs::Dirent> out;
  out.reserve(entries.size());
  for (auto& [name, inode] : entries) {
    vfs::Dirent d;
    d.name = name;
    d.type = IFTODT(inode->Type());
    if (auto* base = dynamic_cast<InodeBase*>(inode.get())) {
      d.ino = base->ino();
    } else if (auto st = inode->Stat(); st.ok()) {
      d.ino = st->st_ino;
    }
    out.push_back(std::move(d));
  }
  return out;
}

Status Dir::InsertLocked(const std::string& name, vfs::InodeRef inode) {
  // Linux: creating in a directory that was removed gives ENOENT.
  if (removed_) return Errno{ENOENT};
  if (children_.count(name) != 0) return Errno{EEXIST};
  if (inode->IsDir()) {
    subdirs_++;
    if (auto* dir = dynamic_cast<Dir*>(Own(inode, fs_.get()))) {
      dir->AssertLocked();
      dir->parent_ = std::static_pointer_cast<Dir>(shared_from_this());
    }
  }
  children_.emplace(name, std::move(inode));
  TouchModifyLocked();
  return Ok();
}

Result<vfs::InodeRef> Dir::Create(const std::string& name, mode_t mode) {
  TRY(CheckName(name));
  TRY(fs_->ReserveInode());
  auto file = std::make_shared<RegularFile>(fs_, mode & 07777);
  absl::MutexLock lock(&fs_->mu);
  // Like inode_init_owner(): a set-group-ID directory passes on its group.
  file->AssertLocked();
  if (perm_ & S_ISGID) file->InheritGroupLocked(gid_);
  TRY(InsertLocked(name, file));
  return vfs::InodeRef(file);
}

Result<vfs::InodeRef> Dir::Mkdir(const std::string& name, mode_t mode) {
  TRY(CheckName(name));
  // mkdir(2) keeps only the permission and sticky bits.
  TRY(fs_->ReserveInode());
  auto dir = std::make_shared<Dir>(fs_, mode & 01777);
  absl::MutexLock lock(&fs_->mu);
  dir->AssertLocked();
  if (perm_ & S_ISGID) dir->InheritGroupLocked(gid_);
  TRY(InsertLocked(name, dir));
  return vfs::InodeRef(dir);
}

Result<vfs::InodeRef> Dir::Symlink(const std::string& name, const std::string& target) {
  TRY(CheckName(name));
  // symlink(2): an empty target is ENOENT; targets are at most PATH_MAX - 1.
  if (target.empty()) return Errno{ENOENT};
  if (target.size() >= PATH_MAX) return Errno{ENAMETOOLONG};
  TRY(fs_->ReserveInode());
  auto link = std::make_shared<SymlinkInode>(fs_, target);
  absl::MutexLock lock(&fs_->mu);
  link->AssertLocked();
  if (perm_ & S_ISGID) link->InheritGroupLocked(gid_);
  TRY(InsertLocked(name, link));
  return vfs::InodeRef(link);
}

Result<vfs::InodeRef> Dir::Mknod(const std::string& name, mode_t mode) {
  TRY(CheckName(name));
  const mode_t type = mode & S_IFMT;
  if (type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR) return Errno{EPERM};
  TRY(fs_->ReserveInode());
  auto node = std::make_shared<SpecialInode>(fs_, type | (mode & 07777));
  absl::MutexLock lock(&fs_->mu);
  node->AssertLocked();
  if (perm_ & S_ISGID) node->InheritGroupLocked(gid_);
  TRY(InsertLocked(name, node));
  return vfs::InodeRef(node);
}

Status Dir::Link(const std::string& name, vfs::InodeRef inode) {
  TRY(CheckName(name));
  absl::MutexLock lock(&fs_->mu);
  InodeBase* own = Own(inode, fs_.get());
  // link(2) refuses directories with EPERM; a tmpfs directory has one parent.
  if (own != nullptr && own->IsDir()) return Errno{EPERM};
  TRY(InsertLocked(name, inode));
  if (own != nullptr) {
    own->AssertLocked();
    own->AddLinkLocked();
  }
  return Ok();
}

Status Dir::Unlink(const std::string& name) {
  TRY(CheckName(name));
  absl::MutexLock lock(&fs_->mu);
  auto it = children_.find(name);
  if (it == children_.end()) return Errno{ENOENT};
  // Linux returns EISDIR (POSIX allows EPERM) for unlink of a directory.
  if (it->second->IsDir()) return Errno{EISDIR};
  if (InodeBase* own = Own(it->second, fs_.get())) {
    own->AssertLocked();
    own->DropLinkLocked();
  }
  children_.erase(it);
  TouchModifyLocked();
  return Ok();
}

Status Dir::Rmdir(const std::string& name) {
  TRY(CheckName(name));
  absl::MutexLock lock(&fs_->mu);
  auto it = children_.find(name);
  if (it == children_.end()) return Errno{ENOENT};
  if (!it->second->IsDir()) return Errno{ENOTDIR};
  auto* dir = dynamic_cast<Dir*>(Own(it->second, fs_.get()));
  if (dir == nullptr) return Errno{EBUSY};  // a foreign directory linked in
  dir->AssertLocked();
  if (!dir->children_.empty()) return Errno{ENOTEMPTY};
  dir->DropLinkLocked();
  children_.erase(it);
  subdirs_--;
  TouchModifyLocked();
  return Ok();
}

void Dir::DropLinkLocked() {
  removed_ = true;
  parent_.reset();
  TouchChangeLocked();
}

void Dir::FillSizeLocked(struct stat* st) {
  st->st_size = kBogoDirentSize * static_cast<off_t>(2 + children_.size());
  st->st_blocks = 0;
  st->st_nlink = removed_ ? 0 : static_cast<nlink_t>(2 + subdirs_);
}

// Every Dir of one filesystem shares fs_->mu, which the caller holds; the
// analysis cannot see that other->fs_ is the same object.
bool Dir::IsAtOrBelowLocked(const Dir* d) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::shared_ptr<Dir> hold;
  for (const Dir* cur = this; cur != nullptr; cur = hold.get()) {
    if (cur == d) return true;
    hold = cur->parent_.lock();
  }
  return false;
}

// rename(2). The checks run in the order Linux's do_renameat2() and
// vfs_rename() make them, so that the same errno wins when several apply.
Status Dir::Exchange(const std::string& name, vfs::Inode& new_dir_inode,
                     const std::string& new_name) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  TRY(CheckName(name));
  TRY(CheckName(new_name));
  auto* new_dir = dynamic_cast<Dir*>(&new_dir_inode);
  if (new_dir == nullptr) return new_dir_inode.IsDir() ? Errno{EXDEV} : Errno{ENOTDIR};
  if (new_dir->fs_ != fs_) return Errno{EXDEV};

  absl::MutexLock lock(&fs_->mu);
  auto a_it = children_.find(name);
  auto b_it = new_dir->children_.find(new_name);
  if (a_it == children_.end() || b_it == new_dir->children_.end()) return Errno{ENOENT};
  vfs::InodeRef a = a_it->second, b = b_it->second;
  if (a == b) return Ok();  // two names of one inode
  auto* a_dir = dynamic_cast<Dir*>(Own(a, fs_.get()));
  auto* b_dir = dynamic_cast<Dir*>(Own(b, fs_.get()));
  // Neither may end up inside itself.
  if (a_dir != nullptr && new_dir->IsAtOrBelowLocked(a_dir)) return Errno{EINVAL};
  if (b_dir != nullptr && IsAtOrBelowLocked(b_dir)) return Errno{EINVAL};
  if ((a->IsDir() && a_dir == nullptr) || (b->IsDir() && b_dir == nullptr)) return Errno{EBUSY};
  a_it->second = b;
  b_it->second = a;
  // A directory that changes parent takes its ".." link along.
  if (this != new_dir && a->IsDir() && !b->IsDir()) {
    subdirs_--;
    new_dir->subdirs_++;
  } else if (this != new_dir && !a->IsDir() && b->IsDir()) {
    subdirs_++;
    new_dir->subdirs_--;
  }
  if (a_dir != nullptr) a_dir->parent_ = std::static_pointer_cast<Dir>(new_dir->shared_from_this());
  if (b_dir != nullptr) b_dir->parent_ = std::static_pointer_cast<Dir>(shared_from_this());
  TouchModifyLocked();
  if (new_dir != this) new_dir->TouchModifyLocked();
  if (InodeBase* own = Own(a, fs_.get())) own->TouchChangeLocked();
  if (InodeBase* own = Own(b, fs_.get())) own->TouchChangeLocked();
  return Ok();
}

Status Dir::Rename(const std::string& name, vfs::Inode& new_dir_inode,
                   const std::string& new_name) {
  TRY(CheckName(name));
  TRY(CheckName(new_name));
  auto* new_dir = dynamic_cast<Dir*>(&new_dir_inode);
  if (new_dir == nullptr) return new_dir_inode.IsDir() ? Errno{EXDEV} : Errno{ENOTDIR};
  if (new_dir->fs_ != fs_) return Errno{EXDEV};
  absl::MutexLock lock(&fs_->mu);
  return RenameLocked(name, *new_dir, new_name, nullptr);
}

// shmem_rename2 with RENAME_WHITEOUT: shmem_whiteout makes the node
// (S_IFCHR, WHITEOUT_MODE 0, WHITEOUT_DEV 0:0) in the old directory, then
// the rename goes on. Here both happen under the one lock, so no one sees
// the name missing or the rename half done.
Result<vfs::InodeRef> Dir::RenameWhiteout(const std::string& name, vfs::Inode& new_dir_inode,
                                          const std::string& new_name) {
  TRY(CheckName(name));
  TRY(CheckName(new_name));
  auto* new_dir = dynamic_cast<Dir*>(&new_dir_inode);
  if (new_dir == nullptr) return new_dir_inode.IsDir() ? Errno{EXDEV} : Errno{ENOTDIR};
  if (new_dir->fs_ != fs_) return Errno{EXDEV};
  auto whiteout = std::make_shared<SpecialInode>(fs_, S_IFCHR);
  absl::MutexLock lock(&fs_->mu);
  whiteout->AssertLocked();
  if (perm_ & S_ISGID) whiteout->InheritGroupLocked(gid_);
  TRY(RenameLocked(name, *new_dir, new_name, whiteout));
  // Two names of one inode: nothing moved, and no whiteout was made.
  auto it = children_.find(name);
  if (it == children_.end() || it->second != whiteout) return vfs::InodeRef();
  return vfs::InodeRef(whiteout);
}

Status Dir::RenameLocked(const std::string& name, Dir& new_dir_ref, const std::string& new_name,
                         const vfs::InodeRef& whiteout) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Dir* new_dir = &new_dir_ref;
  auto it = children_.find(name);
  if (it == children_.end()) return Errno{ENOENT};
  vfs::InodeRef src = it->second;
  bool src_is_dir = src->IsDir();
  auto* src_dir = dynamic_cast<Dir*>(Own(src, fs_.get()));
  // Moving a directory into itself or below itself.
  if (src_dir != nullptr && new_dir->IsAtOrBelowLocked(src_dir)) return Errno{EINVAL};
  if (new_dir->removed_) return Errno{ENOENT};

  auto dst_it = new_dir->children_.find(new_name);
  vfs::InodeRef dst = dst_it == new_dir->children_.end() ? nullptr : dst_it->second;
  if (dst != nullptr) {
    auto* dst_dir = dynamic_cast<Dir*>(Own(dst, fs_.get()));
    // The target is an ancestor of the source: never empty.
    if (dst_dir != nullptr && IsAtOrBelowLocked(dst_dir)) return Errno{ENOTEMPTY};
    // Two names of one inode: rename(2) does nothing and succeeds.
    if (dst == src) return Ok();
    if (src_is_dir && !dst->IsDir()) return Errno{ENOTDIR};
    if (!src_is_dir && dst->IsDir()) return Errno{EISDIR};
    if (dst->IsDir()) {
      if (dst_dir == nullptr) return Errno{EBUSY};
      if (!dst_dir->children_.empty()) return Errno{ENOTEMPTY};
      new_dir->subdirs_--;
    }
    if (InodeBase* own = Own(dst, fs_.get())) own->DropLinkLocked();
    new_dir->children_.erase(dst_it);
  }

  children_.erase(it);
  if (src_is_dir) {
    subdirs_--;
    new_dir->subdirs_++;
  }
  if (whiteout != nullptr) children_.emplace(name, whiteout);
  if (src_dir != nullptr) {
    src_dir->parent_ = std::static_pointer_cast<Dir>(new_dir->shared_from_this());
  }
  new_dir->children_.emplace(new_name, src);
  TouchModifyLocked();
  if (new_dir != this) new_dir->TouchModifyLocked();
  if (InodeBase* own = Own(src, fs_.get())) own->TouchChangeLocked();
  return Ok();
}

}  // namespace husk::tmpfs
