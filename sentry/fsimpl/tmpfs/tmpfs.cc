#include "sentry/fsimpl/tmpfs/tmpfs.h"

#include <errno.h>

#include "sentry/fsimpl/tmpfs/inode.h"

namespace husk::tmpfs {

vfs::InodeRef NewTmpfsRoot(mode_t mode, const Limits& limits) {
  auto fs = std::make_shared<Filesystem>(vfs::NewAnonDevice(), MemoryFile::Sandbox());
  fs->max_pages = limits.max_bytes / kPageSize + (limits.max_bytes % kPageSize != 0 ? 1 : 0);
  fs->max_inodes = limits.max_inodes;
  return std::make_shared<Dir>(std::move(fs), mode & 07777);
}

Status AddChild(vfs::Inode& tmpfs_dir, const std::string& name, vfs::InodeRef inode) {
  auto* dir = dynamic_cast<Dir*>(&tmpfs_dir);
  if (dir == nullptr) return Errno{ENOTDIR};
  return dir->Link(name, std::move(inode));
}

Result<vfs::InodeRef> NewUnnamedFile(vfs::Inode& tmpfs_dir, mode_t perm, int seals, bool linkable) {
  auto* dir = dynamic_cast<Dir*>(&tmpfs_dir);
  if (dir == nullptr) return Errno{ENOTDIR};
  TRY(dir->fs()->ReserveInode());
  auto file = std::make_shared<RegularFile>(dir->fs(), perm & 07777);
  {
    absl::MutexLock lock(&dir->fs()->mu);
    file->AssertLocked();  // the instance's one lock
    file->DropLinkLocked();
  }
  file->SetSealsForMemfd(seals);
  file->set_linkable(linkable);
  return vfs::InodeRef(file);
}

bool IsTmpfsInode(const vfs::Inode& inode) {
  return dynamic_cast<const InodeBase*>(&inode) != nullptr;
}

}  // namespace husk::tmpfs
