// tmpfs: a filesystem kept entirely in the sentry's memory. It is the upper
// layer of the root overlay, the backing of /dev, /dev/shm and /tmp mounts.
//
// Lock order: one Filesystem::mu per tmpfs instance guards every inode of
// that instance (directory maps, metadata and file data); it is a leaf except
// that a directory may call Stat()/Type() on a foreign inode added with
// AddChild (device nodes), which must not call back into the tmpfs.
#ifndef HUSK_SENTRY_FSIMPL_TMPFS_TMPFS_H_
#define HUSK_SENTRY_FSIMPL_TMPFS_TMPFS_H_

#include <sys/types.h>

#include <string>

#include "base/result.h"
#include "sentry/vfs/vfs.h"

namespace husk::tmpfs {

// What mount(2)'s size= and nr_inodes= limit an instance to; 0: no limit
// of its own.
struct Limits {
  uint64_t max_bytes = 0;  // rounded up to whole pages
  uint64_t max_inodes = 0;
};

// A new tmpfs instance (its own st_dev); returns its root directory, owned by
// uid 0 / gid 0, with permission bits `mode`.
vfs::InodeRef NewTmpfsRoot(mode_t mode = 01777, const Limits& limits = {});

// Links an inode that another filesystem implements (a device node, say) into
// a tmpfs directory as `name`. EEXIST if the name is taken, ENOTDIR if
// tmpfs_dir is not a tmpfs directory, ENOENT if it was removed.
Status AddChild(vfs::Inode& tmpfs_dir, const std::string& name, vfs::InodeRef inode);

// A regular file of tmpfs_dir's instance that has no name (memfd_create(2),
// O_TMPFILE): link count 0, permission bits `perm`, owned by uid 0 / gid 0,
// with `seals` (0 lets any be added; tmpfs files otherwise start with
// F_SEAL_SEAL); `linkable`: link(2) may give it a name. ENOTDIR if
// tmpfs_dir is not a tmpfs directory.
Result<vfs::InodeRef> NewUnnamedFile(vfs::Inode& tmpfs_dir, mode_t perm, int seals,
                                     bool linkable = false);

// Whether `inode` belongs to some tmpfs instance.
bool IsTmpfsInode(const vfs::Inode& inode);

}  // namespace husk::tmpfs

#endif  // HUSK_SENTRY_FSIMPL_TMPFS_TMPFS_H_
