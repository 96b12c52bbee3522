// Changes to overlay directories: create, remove (with whiteouts), rename.
//
// Every directory of one overlay shares fs_->mu, held for the whole
// operation; functions that reach into another inode's fields say so with
// ABSL_NO_THREAD_SAFETY_ANALYSIS because the analysis cannot see that the
// other inode's fs_ is ours.
#include <errno.h>

#include "sentry/fsimpl/overlay/inode.h"

namespace husk::overlay {

OverlayRef OverlayInode::AddUpperChildLocked(const std::string& name, vfs::InodeRef upper) {
  // No lower: a directory made here over a whiteout is opaque (the
  // whiteout stays recorded, so a later lookup treats it the same way).
  auto child = std::make_shared<OverlayInode>(
      fs_, upper->Type(), std::move(upper), nullptr,
      std::static_pointer_cast<OverlayInode>(shared_from_this()), name);
  CacheChildLocked(name, child);
  return child;
}

Status OverlayInode::PrepareCreateLocked(const std::string& name) {
  auto existing = LookupLocked(name);
  if (existing.ok()) return Errno{EEXIST};
  if (existing.error() != ENOENT) return Errno{existing.error()};
  if (unlinked_) return Errno{ENOENT};  // Linux: no new entries in a removed directory
  return CopyUpLocked();
}

void OverlayInode::DropChildLocked(const std::string& name) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  OverlayRef child = CachedChildLocked(name);
  if (child == nullptr) return;
  child->unlinked_ = true;
  child->parent_.reset();
  child->parent_hold_ = nullptr;
  children_.erase(name);
}

void OverlayInode::TouchUpperLocked() {
  vfs::SetAttr now;
  now.set_mtime = true;
  now.mtime.tv_nsec = UTIME_NOW;
  (void)upper_->SetAttributes(now);  // best effort: only the times are at stake
}

bool OverlayInode::IsAtOrBelowLocked(const OverlayInode* d) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  OverlayRef hold;
  for (const OverlayInode* cur = this; cur != nullptr; cur = hold.get()) {
    if (cur == d) return true;
    hold = cur->parent_.lock();
  }
  return false;
}

Result<vfs::InodeRef> OverlayInode::Create(const std::string& name, mode_t mode) {
  absl::MutexLock lock(&fs_->mu);
  TRY(PrepareCreateLocked(name));
  ASSIGN_OR_RETURN(vfs::InodeRef up, upper_->Create(name, mode));
  return vfs::InodeRef(AddUpperChildLocked(name, std::move(up)));
}

Result<vfs::InodeRef> OverlayInode::Mkdir(const std::string& name, mode_t mode) {
  absl::MutexLock lock(&fs_->mu);
  TRY(PrepareCreateLocked(name));
  ASSIGN_OR_RETURN(vfs::InodeRef up, upper_->Mkdir(name, mode));
  return vfs::InodeRef(AddUpperChildLocked(name, std::move(up)));
}

Result<vfs::InodeRef> OverlayInode::Symlink(const std::string& name, const std::string& target) {
  absl::MutexLock lock(&fs_->mu);
  TRY(PrepareCreateLocked(name));
  ASSIGN_OR_RETURN(vfs::InodeRef up, upper_->Symlink(name, target));
  return vfs::InodeRef(AddUpperChildLocked(name, std::move(up)));
}

Result<vfs::InodeRef> OverlayInode::Mknod(const std::string& name, mode_t mode) {
  absl::MutexLock lock(&fs_->mu);
  TRY(PrepareCreateLocked(name));
  ASSIGN_OR_RETURN(vfs::InodeRef up, upper_->Mknod(name, mode));
  return vfs::InodeRef(AddUpperChildLocked(name, std::move(up)));
}

Status OverlayInode::Allocate(int mode, uint64_t offset,
                              uint64_t len) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::MutexLock lock(&fs_->mu);
  if (type_ != S_IFREG) return Errno{ENODEV};
  TRY(CopyUpLocked());
  return upper_->Allocate(mode, offset, len);
}

Result<off_t> OverlayInode::SeekData(off_t offset, bool hole) {
  return Real()->SeekData(offset, hole);
}

Result<struct statfs> OverlayInode::Statfs() {
  ASSIGN_OR_RETURN(struct statfs s, fs_->upper_root->Statfs());
  s.f_type = 0x794c7630;  // OVERLAYFS_SUPER_MAGIC
  s.f_fsid = {};
  s.f_fsid.__val[0] = static_cast<int>(fs_->dev);
  return s;
}

Result<std::string> OverlayInode::GetXattr(const std::string& name) {
  return Real()->GetXattr(name);
}

Result<std::vector<std::string>> OverlayInode::ListXattr() { return Real()->ListXattr(); }

Status OverlayInode::SetXattr(const std::string& name, const std::string& value,
                              int flags) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::MutexLock lock(&fs_->mu);
  TRY(CopyUpLocked());
  return upper_->SetXattr(name, value, flags);
}

Status OverlayInode::RemoveXattr(const std::string& name) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::MutexLock lock(&fs_->mu);
  TRY(CopyUpLocked());
  return upper_->RemoveXattr(name);
}

// link(2): the target is copied up and linked in the upper; the new name is
// another overlay object for the same upper inode, with the same number.
Status OverlayInode::Link(const std::string& name,
                          vfs::InodeRef target_ref) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto* target = dynamic_cast<OverlayInode*>(target_ref.get());
  if (target == nullptr || target->fs_ != fs_) return Errno{EXDEV};
  if (target->type_ == S_IFDIR) return Errno{EPERM};
  absl::MutexLock lock(&fs_->mu);
  TRY(PrepareCreateLocked(name));
  TRY(target->CopyUpLocked());
  TRY(upper_->Link(name, target->upper_));
  OverlayRef child = AddUpperChildLocked(name, target->upper_);
  child->ino_ = target->InoLocked();
  return Ok();
}

Status OverlayInode::Unlink(const std::string& name) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::MutexLock lock(&fs_->mu);
  ASSIGN_OR_RETURN(OverlayRef child, LookupLocked(name));
  if (child->type_ == S_IFDIR) return Errno{EISDIR};
  TRY(CopyUpLocked());
  if (child->upper_ != nullptr) {
    TRY(upper_->Unlink(name));
  } else {
    TouchUpperLocked();
  }
  // A whiteout whenever there is a lower below: harmless if the lower has
  // no such name, needed if it has.
  if (lower_ != nullptr) whiteouts_.insert(name);
  DropChildLocked(name);
  return Ok();
}

Status OverlayInode::Rmdir(const std::string& name) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::MutexLock lock(&fs_->mu);
  ASSIGN_OR_RETURN(OverlayRef child, LookupLocked(name));
  if (child->type_ != S_IFDIR) return Errno{ENOTDIR};
  // Emptiness of the merged view: lower entries count unless whited out.
  ASSIGN_OR_RETURN(std::vector<vfs::Dirent> entries, child->ReadDirLocked());
  if (!entries.empty()) return Errno{ENOTEMPTY};
  TRY(CopyUpLocked());
  if (child->upper_ != nullptr) {
    // The upper holds only visible entries, so it is empty too.
    TRY(upper_->Rmdir(name));
  } else {
    TouchUpperLocked();
  }
  if (lower_ != nullptr) whiteouts_.insert(name);
  DropChildLocked(name);
  return Ok();
}

// rename(2), with the checks in Linux's order (see tmpfs's Rename), then
// overlayfs's own: a directory that has a lower part cannot move (EXDEV, as
// Linux overlayfs without redirect_dir answers; mv(1) then copies).
// RENAME_EXCHANGE: both names are copied up and swapped in the upper, where
// each then hides its lower (if any) as before. A directory with a lower
// part cannot move (EXDEV, as rename without redirect_dir).
Status OverlayInode::Exchange(const std::string& name, vfs::Inode& new_dir_inode,
                              const std::string& new_name) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto* new_dir = dynamic_cast<OverlayInode*>(&new_dir_inode);
  if (new_dir == nullptr) return new_dir_inode.IsDir() ? Errno{EXDEV} : Errno{ENOTDIR};
  if (new_dir->fs_ != fs_) return Errno{EXDEV};
  if (new_dir->type_ != S_IFDIR) return Errno{ENOTDIR};

  absl::MutexLock lock(&fs_->mu);
  ASSIGN_OR_RETURN(OverlayRef a, LookupLocked(name));
  ASSIGN_OR_RETURN(OverlayRef b, new_dir->LookupLocked(new_name));
  if (a == b) return Ok();
  if (a->type_ == S_IFDIR && new_dir->IsAtOrBelowLocked(a.get())) return Errno{EINVAL};
  if (b->type_ == S_IFDIR && IsAtOrBelowLocked(b.get())) return Errno{EINVAL};
  for (const OverlayRef& o : {a, b}) {
    if (o->type_ == S_IFDIR && o->lower_ != nullptr) return Errno{EXDEV};
  }
  TRY(CopyUpLocked());
  TRY(new_dir->CopyUpLocked());
  TRY(a->CopyUpLocked());
  TRY(b->CopyUpLocked());
  TRY(upper_->Exchange(name, *new_dir->upper_, new_name));
  // Neither name may show its old lower object again.
  if (lower_ != nullptr) whiteouts_.insert(name);
  if (new_dir->lower_ != nullptr) new_dir->whiteouts_.insert(new_name);
  children_.erase(name);
  new_dir->children_.erase(new_name);
  a->parent_ = std::static_pointer_cast<OverlayInode>(new_dir->shared_from_this());
  a->name_ = new_name;
  b->parent_ = std::static_pointer_cast<OverlayInode>(shared_from_this());
  b->name_ = name;
  new_dir->CacheChildLocked(new_name, a);
  CacheChildLocked(name, b);
  return Ok();
}

Status OverlayInode::Rename(const std::string& name, vfs::Inode& new_dir_inode,
                            const std::string& new_name) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto* new_dir = dynamic_cast<OverlayInode*>(&new_dir_inode);
  if (new_dir == nullptr) return new_dir_inode.IsDir() ? Errno{EXDEV} : Errno{ENOTDIR};
  if (new_dir->fs_ != fs_) return Errno{EXDEV};
  if (new_dir->type_ != S_IFDIR) return Errno{ENOTDIR};

  absl::MutexLock lock(&fs_->mu);
  ASSIGN_OR_RETURN(OverlayRef src, LookupLocked(name));
  if (src->type_ == S_IFDIR && new_dir->IsAtOrBelowLocked(src.get())) return Errno{EINVAL};
  if (new_dir->unlinked_) return Errno{ENOENT};

  OverlayRef dst;
  if (auto r = new_dir->LookupLocked(new_name); r.ok()) {
    dst = std::move(r).value();
  } else if (r.error() != ENOENT) {
    return Errno{r.error()};
  }
  if (dst != nullptr) {
    if (dst->type_ == S_IFDIR && IsAtOrBelowLocked(dst.get())) return Errno{ENOTEMPTY};
    if (dst == src) return Ok();
    if (src->type_ == S_IFDIR && dst->type_ != S_IFDIR) return Errno{ENOTDIR};
    if (src->type_ != S_IFDIR && dst->type_ == S_IFDIR) return Errno{EISDIR};
    if (dst->type_ == S_IFDIR) {
      ASSIGN_OR_RETURN(std::vector<vfs::Dirent> entries, dst->ReadDirLocked());
      if (!entries.empty()) return Errno{ENOTEMPTY};
    }
  }
  if (src->type_ == S_IFDIR && src->lower_ != nullptr) return Errno{EXDEV};

  TRY(CopyUpLocked());
  TRY(new_dir->CopyUpLocked());
  TRY(src->CopyUpLocked());
  // The upper rename replaces an upper target; a lower-only target is
  // hidden by the whiteout below.
  TRY(upper_->Rename(name, *new_dir->upper_, new_name));
  if (lower_ != nullptr) whiteouts_.insert(name);
  if (new_dir->lower_ != nullptr) new_dir->whiteouts_.insert(new_name);

  new_dir->DropChildLocked(new_name);
  children_.erase(name);
  src->parent_ = std::static_pointer_cast<OverlayInode>(new_dir->shared_from_this());
  src->name_ = new_name;
  new_dir->CacheChildLocked(new_name, src);
  return Ok();
}

}  // namespace husk::overlay
