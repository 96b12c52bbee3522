// Directories and names: getcwd, chdir, mkdir, mknod, rmdir, unlink, rename,
// symlink, link, umask. Every change goes through the parent's inode and keeps
// the dentry cache in step.
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>

#include "sentry/kernel/inotify.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

Result<vfs::ParentAndName> ParentAt(Task& t, int dirfd, uintptr_t path_addr) {
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(path_addr));
  if (path.empty()) return Errno{ENOENT};
  ASSIGN_OR_RETURN(vfs::DentryRef start,
                   path[0] == '/' ? Result<vfs::DentryRef>(t.fs().root) : StartDir(t, dirfd));
  return vfs::ResolveParent(t.fs(), start, path, t.FsCreds());
}

Result<long> MkdirAt(Task& t, int dirfd, uintptr_t path, mode_t mode)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  ASSIGN_OR_RETURN(vfs::ParentAndName pn, ParentAt(t, dirfd, path));
  if (pn.name.empty() || pn.name == "." || pn.name == "..") return Errno{EEXIST};
  if (pn.parent->Child(pn.name).ok()) return Errno{EEXIST};
  TRY(vfs::CheckWritableMount(t.fs(), *pn.parent));  // mnt_want_write(): EROFS
  TRY(vfs::MayCreate(t.FsCreds(), *pn.parent));
  ASSIGN_OR_RETURN(vfs::InodeRef inode,
                   pn.parent->inode()->Mkdir(pn.name, (mode & 07777 & ~t.fs().umask) | S_IFDIR));
  TRY(InitOwner(t, *pn.parent->inode(), *inode));
  pn.parent->AddChild(pn.name, std::move(inode));
  NotifyDirectory(t, *pn.parent, DN_CREATE);
  inotify::NotifyCreate(*pn.parent, pn.name, true);
  return 0L;
}

// mknod(2): regular files, FIFOs, sockets' names and whiteouts (character
// device 0:0). Other devices need CAP_MKNOD in the host's user namespace,
// which no sandbox has: EPERM, as for root in a user namespace on Linux.
Result<long> MknodAt(Task& t, int dirfd, uintptr_t path, mode_t mode, uint64_t dev)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  // may_mknod(): the type first.
  const mode_t type = mode & S_IFMT;
  switch (type) {
    case 0:
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
      break;
    case S_IFDIR:
      return Errno{EPERM};
    default:
      return Errno{EINVAL};
  }
  ASSIGN_OR_RETURN(vfs::ParentAndName pn, ParentAt(t, dirfd, path));
  if (pn.name.empty() || pn.name == "." || pn.name == "..") return Errno{EEXIST};
  if (pn.parent->Child(pn.name).ok()) return Errno{EEXIST};
  // filename_create(): a trailing slash names a directory to be.
  if (pn.must_be_dir) return Errno{ENOENT};
  TRY(vfs::CheckWritableMount(t.fs(), *pn.parent));  // mnt_want_write(): EROFS
  TRY(vfs::MayCreate(t.FsCreds(), *pn.parent));
  // vfs_mknod(): devices need CAP_MKNOD, but for the whiteout (0:0).
  const bool whiteout = type == S_IFCHR && static_cast<uint32_t>(dev) == 0;  // an unsigned int
  if ((type == S_IFCHR || type == S_IFBLK) && !whiteout) return Errno{EPERM};
  ASSIGN_OR_RETURN(mode_t perm, CreateMode(t, *pn.parent->inode(), mode & 07777));
  vfs::InodeRef inode;
  if (type == 0 || type == S_IFREG) {
    ASSIGN_OR_RETURN(inode, pn.parent->inode()->Create(pn.name, perm | S_IFREG));
  } else {
    ASSIGN_OR_RETURN(inode, pn.parent->inode()->Mknod(pn.name, perm | type));
  }
  TRY(InitOwner(t, *pn.parent->inode(), *inode));
  pn.parent->AddChild(pn.name, std::move(inode));
  NotifyDirectory(t, *pn.parent, DN_CREATE);
  inotify::NotifyCreate(*pn.parent, pn.name, false);
  return 0L;
}

Result<long> UnlinkAt(Task& t, int dirfd, uintptr_t path, bool dir)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  ASSIGN_OR_RETURN(vfs::ParentAndName pn, ParentAt(t, dirfd, path));
  if (dir) {
    // do_rmdir(): the root (LAST_ROOT) is busy, "." invalid, ".." not empty.
    if (pn.name.empty()) return Errno{EBUSY};
    if (pn.name == ".") return Errno{EINVAL};
    if (pn.name == "..") return Errno{ENOTEMPTY};
  } else if (pn.name.empty() || pn.name == "." || pn.name == "..") {
    return Errno{EISDIR};
  }
  // do_unlinkat() takes write access to the mount before the lookup.
  TRY(vfs::CheckWritableMount(t.fs(), *pn.parent));  // mnt_want_write(): EROFS
  ASSIGN_OR_RETURN(vfs::DentryRef child, pn.parent->Child(pn.name));
  // do_unlinkat(): a trailing slash on a non-directory fails before any
  // permission check.
  if (!dir && pn.must_be_dir) return child->inode()->IsDir() ? Errno{EISDIR} : Errno{ENOTDIR};
  TRY(vfs::MayDelete(t.FsCreds(), *pn.parent->inode(), *child->inode(), dir));
  if (vfs::IsMountpoint(t.fs(), *child)) return Errno{EBUSY};
  if (dir) {
    TRY(pn.parent->inode()->Rmdir(pn.name));
  } else {
    TRY(pn.parent->inode()->Unlink(pn.name));
  }
  pn.parent->ForgetChild(pn.name);
  NotifyDirectory(t, *pn.parent, DN_DELETE);
  inotify::NotifyRemoved(*pn.parent, pn.name, child, dir);
  return 0L;
}

// dnotify's view of a move (FS_MOVED_FROM, FS_MOVED_TO): DN_RENAME in both
// directories.
void NotifyRename(Task& t, const vfs::Dentry& from, const vfs::Dentry& to)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  NotifyDirectory(t, from, DN_RENAME);
  if (&to != &from) NotifyDirectory(t, to, DN_RENAME);
}

bool IsAncestor(const vfs::DentryRef& a, vfs::DentryRef d) {
  for (; d != nullptr; d = d->parent()) {
    if (d == a) return true;
  }
  return false;
}

// vfs_rename(): removing the old name (may_delete), then replacing the
// target (may_delete) or creating the new name (may_create); a directory
// that changes parent also needs write permission on itself, whose ".."
// changes.
Status MayRename(const vfs::Creds& creds, const vfs::ParentAndName& from, const vfs::DentryRef& src,
                 const vfs::ParentAndName& to, const vfs::DentryRef& dst) {
  bool is_dir = src->inode()->IsDir();
  TRY(vfs::MayDelete(creds, *from.parent->inode(), *src->inode(), is_dir));
  if (dst != nullptr) {
    TRY(vfs::MayDelete(creds, *to.parent->inode(), *dst->inode(), is_dir));
  } else {
    TRY(vfs::MayCreate(creds, *to.parent));
  }
  if (is_dir && from.parent->inode() != to.parent->inode()) {
    TRY(vfs::CheckPermission(creds, *src->inode(), vfs::kMayWrite));
  }
  return Ok();
}

// renameat2(RENAME_EXCHANGE): both names must exist; each moves into the
// other's directory, so each needs what a rename there needs.
Result<long> ExchangeAt(Task& t, const vfs::ParentAndName& from, const vfs::ParentAndName& to)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (!vfs::SameMount(*from.parent, *to.parent)) return Errno{EXDEV};
  TRY(vfs::CheckWritableMount(t.fs(), *to.parent));
  ASSIGN_OR_RETURN(vfs::DentryRef a, from.parent->Child(from.name));
  ASSIGN_OR_RETURN(vfs::DentryRef b, to.parent->Child(to.name));
  if (from.must_be_dir && !a->inode()->IsDir()) return Errno{ENOTDIR};
  if (to.must_be_dir && !b->inode()->IsDir()) return Errno{ENOTDIR};
  if (a == b) return 0L;
  if (a->inode()->IsDir() && IsAncestor(a, to.parent)) return Errno{EINVAL};
  if (b->inode()->IsDir() && IsAncestor(b, from.parent)) return Errno{EINVAL};
  const vfs::Creds creds = t.FsCreds();
  const bool a_dir = a->inode()->IsDir(), b_dir = b->inode()->IsDir();
  TRY(vfs::MayDelete(creds, *from.parent->inode(), *a->inode(), a_dir));
  TRY(vfs::MayDelete(creds, *to.parent->inode(), *b->inode(), b_dir));
  // A directory that changes parent rewrites its "..".
  if (from.parent->inode() != to.parent->inode()) {
    if (a_dir) TRY(vfs::CheckPermission(creds, *a->inode(), vfs::kMayWrite));
    if (b_dir) TRY(vfs::CheckPermission(creds, *b->inode(), vfs::kMayWrite));
  }
  if (vfs::IsMountpoint(t.fs(), *a) || vfs::IsMountpoint(t.fs(), *b)) return Errno{EBUSY};
  TRY(from.parent->inode()->Exchange(from.name, *to.parent->inode(), to.name));
  from.parent->ExchangeChild(from.name, *to.parent, to.name);
  NotifyRename(t, *from.parent, *to.parent);
  // vfs_rename calls fsnotify_move for each side of an exchange.
  inotify::NotifyRename(*from.parent, from.name, *to.parent, to.name, a, nullptr);
  inotify::NotifyRename(*to.parent, to.name, *from.parent, from.name, b, nullptr);
  return 0L;
}

Result<long> RenameAt(Task& t, int olddir, uintptr_t oldpath, int newdir, uintptr_t newpath,
                      unsigned flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) return Errno{EINVAL};
  if ((flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)) && (flags & RENAME_EXCHANGE)) {
    return Errno{EINVAL};
  }
  ASSIGN_OR_RETURN(vfs::ParentAndName from, ParentAt(t, olddir, oldpath));
  ASSIGN_OR_RETURN(vfs::ParentAndName to, ParentAt(t, newdir, newpath));
  if (from.name.empty() || from.name == "." || from.name == "..") return Errno{EBUSY};
  // do_renameat2(): with RENAME_NOREPLACE a "." or ".." target exists.
  if (to.name == "." || to.name == "..") {
    return (flags & RENAME_NOREPLACE) ? Errno{EEXIST} : Errno{EBUSY};
  }
  if (to.name.empty()) return Errno{EBUSY};
  if (flags & RENAME_EXCHANGE) return ExchangeAt(t, from, to);
  // Linux compares the mounts before it looks the source up (do_renameat2).
  if (!vfs::SameMount(*from.parent, *to.parent)) return Errno{EXDEV};
  TRY(vfs::CheckWritableMount(t.fs(), *to.parent));
  ASSIGN_OR_RETURN(vfs::DentryRef src, from.parent->Child(from.name));
  if ((from.must_be_dir || to.must_be_dir) && !src->inode()->IsDir()) return Errno{ENOTDIR};
  // A directory cannot move under itself (rename(2), EINVAL).
  if (src->inode()->IsDir() && IsAncestor(src, to.parent)) return Errno{EINVAL};
  auto dst = to.parent->Child(to.name);
  if (dst.ok()) {
    if (*dst == src) return 0L;
    if (flags & RENAME_NOREPLACE) return Errno{EEXIST};
  }
  TRY(MayRename(t.FsCreds(), from, src, to, dst.ok() ? *dst : nullptr));
  if (dst.ok() && vfs::IsMountpoint(t.fs(), **dst)) return Errno{EBUSY};
  // RENAME_WHITEOUT (since 5.8 without CAP_MKNOD): the filesystem leaves a
  // whiteout at the old name, owned as a node the caller made would be;
  // one without whiteouts (overlayfs, to its users) refuses: EINVAL.
  vfs::InodeRef whiteout;
  if (flags & RENAME_WHITEOUT) {
    ASSIGN_OR_RETURN(whiteout,
                     from.parent->inode()->RenameWhiteout(from.name, *to.parent->inode(), to.name));
    if (whiteout == nullptr) return 0L;  // two names of one inode: nothing moved
  } else {
    TRY(from.parent->inode()->Rename(from.name, *to.parent->inode(), to.name));
  }
  from.parent->MoveChild(from.name, *to.parent, to.name);
  if (whiteout != nullptr) {
    (void)InitOwner(t, *from.parent->inode(), *whiteout);
    from.parent->AddChild(from.name, whiteout);
  }
  NotifyRename(t, *from.parent, *to.parent);
  // By reference: the replaced dentry's holders are counted (see NotifyRemoved).
  vfs::DentryRef none;
  vfs::DentryRef& replaced = dst.ok() ? *dst : none;
  inotify::NotifyRename(*from.parent, from.name, *to.parent, to.name, src, replaced);
  return 0L;
}

Result<long> SymlinkAt(Task& t, uintptr_t target_addr, int dirfd, uintptr_t path)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  ASSIGN_OR_RETURN(std::string target, t.CopyInPath(target_addr));
  if (target.empty()) return Errno{ENOENT};
  ASSIGN_OR_RETURN(vfs::ParentAndName pn, ParentAt(t, dirfd, path));
  if (pn.name.empty() || pn.name == "." || pn.name == "..") return Errno{EEXIST};
  if (pn.parent->Child(pn.name).ok()) return Errno{EEXIST};
  // filename_create(): a new name with a trailing slash can only be a
  // directory's.
  if (pn.must_be_dir) return Errno{ENOENT};
  TRY(vfs::CheckWritableMount(t.fs(), *pn.parent));  // mnt_want_write(): EROFS
  TRY(vfs::MayCreate(t.FsCreds(), *pn.parent));
  ASSIGN_OR_RETURN(vfs::InodeRef inode, pn.parent->inode()->Symlink(pn.name, target));
  TRY(InitOwner(t, *pn.parent->inode(), *inode));
  pn.parent->AddChild(pn.name, std::move(inode));
  NotifyDirectory(t, *pn.parent, DN_CREATE);
  inotify::NotifyCreate(*pn.parent, pn.name, false);
  return 0L;
}

// may_linkat() with fs.protected_hardlinks=1 (Debian's default): someone
// who neither owns the file nor has CAP_FOWNER may link only a regular file
// that is not set-id and that they may read and write.
Status MayLink(const vfs::Creds& creds, vfs::Inode& target) {
  ASSIGN_OR_RETURN(struct stat st, target.Stat());
  if (vfs::OwnerOrCapable(creds, st)) return Ok();
  bool safe = S_ISREG(st.st_mode) && !(st.st_mode & S_ISUID) &&
              !((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) &&
              vfs::CheckPermission(creds, st, vfs::kMayRead | vfs::kMayWrite).ok();
  return safe ? Ok() : Status(Errno{EPERM});
}

// linkat(2) (do_linkat): the old name is not followed unless
// AT_SYMLINK_FOLLOW; AT_EMPTY_PATH links the file dirfd refers to (which
// needs CAP_DAC_READ_SEARCH, else ENOENT).
Result<long> LinkAt(Task& t, int olddir, uintptr_t oldpath, int newdir, uintptr_t newpath,
                    int flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::string old_name, t.CopyInPath(oldpath));
  bool empty = false;
  if (old_name.empty() && (flags & AT_EMPTY_PATH)) {
    if (!t.FsCreds().Capable(vfs::kCapDacReadSearch)) return Errno{ENOENT};
    empty = true;
  }
  ASSIGN_OR_RETURN(vfs::DentryRef src,
                   ResolveAt(t, olddir, old_name, (flags & AT_SYMLINK_FOLLOW) != 0, empty));
  ASSIGN_OR_RETURN(vfs::ParentAndName to, ParentAt(t, newdir, newpath));
  if (to.name.empty() || to.name == "." || to.name == "..") return Errno{EEXIST};
  if (to.parent->Child(to.name).ok()) return Errno{EEXIST};
  // A trailing slash asks for a directory, which link(2) never makes.
  if (to.must_be_dir) return Errno{ENOENT};
  if (!vfs::SameMount(*src, *to.parent)) return Errno{EXDEV};
  TRY(vfs::CheckWritableMount(t.fs(), *to.parent));
  TRY(vfs::MayCreate(t.FsCreds(), *to.parent));
  if (src->inode()->IsDir()) return Errno{EPERM};
  TRY(MayLink(t.FsCreds(), *src->inode()));
  // An unlinked file cannot come back (vfs_link: ENOENT), but for an
  // O_TMPFILE file opened without O_EXCL (I_LINKABLE).
  ASSIGN_OR_RETURN(struct stat st, src->inode()->Stat());
  if (st.st_nlink == 0 && !src->inode()->LinkableUnnamed()) return Errno{ENOENT};
  TRY(to.parent->inode()->Link(to.name, src->inode()));
  // The next lookup finds the new name (an overlay shows it as an object
  // of its own, with the same number).
  to.parent->ForgetChild(to.name);
  NotifyDirectory(t, *to.parent, DN_CREATE);
  // fsnotify_link: the link count's IN_ATTRIB, then the new name's IN_CREATE.
  inotify::NotifyInode(*src->inode(), IN_ATTRIB);
  inotify::NotifyCreate(*to.parent, to.name, false);
  return 0L;
}

}  // namespace

SyscallResult SysLink(Task& t, const Args& a) {
  return LinkAt(t, AT_FDCWD, a.Ptr(0), AT_FDCWD, a.Ptr(1), 0);
}
SyscallResult SysLinkat(Task& t, const Args& a) {
  return LinkAt(t, a.Int(0), a.Ptr(1), a.Int(2), a.Ptr(3), a.Int(4));
}

SyscallResult SysGetcwd(Task& t, const Args& a) {
  if (t.fs().cwd->deleted()) return Errno{ENOENT};  // getcwd(2): the directory was unlinked
  // Relative to the task's root (chroot); a working directory outside it
  // gets "(unreachable)" in front, as Linux's getcwd(2) gives it.
  bool reachable = true;
  std::string path = t.fs().cwd->PathFrom(t.fs().root.get(), &reachable);
  if (!reachable) path = "(unreachable)" + path;
  if (a.Size(1) < path.size() + 1) return Errno{ERANGE};
  TRY(t.CopyOut(a.Ptr(0), path.c_str(), path.size() + 1));
  return static_cast<long>(path.size() + 1);
}

SyscallResult SysChdir(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(a.Ptr(0)));
  ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, AT_FDCWD, path, true, false));
  if (!d->inode()->IsDir()) return Errno{ENOTDIR};
  TRY(vfs::CheckPermission(t.FsCreds(), *d->inode(), vfs::kMayExec));
  t.fs().cwd = d;
  return 0L;
}

// chroot(2): CAP_SYS_CHROOT (root in the sandbox), then a searchable
// directory. The working directory stays where it was, as on Linux.
SyscallResult SysChroot(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(a.Ptr(0)));
  ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, AT_FDCWD, path, true, false));
  if (!d->inode()->IsDir()) return Errno{ENOTDIR};
  TRY(vfs::CheckPermission(t.FsCreds(), *d->inode(), vfs::kMayExec));
  if (!t.Capable(CAP_SYS_CHROOT)) return Errno{EPERM};
  t.fs().root = d;
  return 0L;
}

// mount(2), umount2(2), pivot_root(2): the application may not change the
// sandbox's mounts (as a container without CAP_SYS_ADMIN may not); the
// sandbox's mount table is fixed at boot. A policy, not a missing call.
SyscallResult SysMountRefused(Task& t, const Args& a) { return Errno{EPERM}; }

SyscallResult SysFchdir(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
  if (f->dentry() == nullptr || !f->inode()->IsDir()) return Errno{ENOTDIR};
  TRY(vfs::CheckPermission(t.FsCreds(), *f->inode(), vfs::kMayExec));
  t.fs().cwd = f->dentry();
  return 0L;
}

SyscallResult SysMkdir(Task& t, const Args& a) {
  return MkdirAt(t, AT_FDCWD, a.Ptr(0), static_cast<mode_t>(a.U(1)));
}
SyscallResult SysMkdirat(Task& t, const Args& a) {
  return MkdirAt(t, a.Int(0), a.Ptr(1), static_cast<mode_t>(a.U(2)));
}
SyscallResult SysMknod(Task& t, const Args& a) {
  return MknodAt(t, AT_FDCWD, a.Ptr(0), static_cast<mode_t>(a.U(1)), a.U(2));
}
SyscallResult SysMknodat(Task& t, const Args& a) {
  return MknodAt(t, a.Int(0), a.Ptr(1), static_cast<mode_t>(a.U(2)), a.U(3));
}
SyscallResult SysRmdir(Task& t, const Args& a) { return UnlinkAt(t, AT_FDCWD, a.Ptr(0), true); }
SyscallResult SysUnlink(Task& t, const Args& a) { return UnlinkAt(t, AT_FDCWD, a.Ptr(0), false); }
SyscallResult SysUnlinkat(Task& t, const Args& a) {
  if (a.Int(2) & ~AT_REMOVEDIR) return Errno{EINVAL};
  return UnlinkAt(t, a.Int(0), a.Ptr(1), (a.Int(2) & AT_REMOVEDIR) != 0);
}
SyscallResult SysRename(Task& t, const Args& a) {
  return RenameAt(t, AT_FDCWD, a.Ptr(0), AT_FDCWD, a.Ptr(1), 0);
}
SyscallResult SysRenameat(Task& t, const Args& a) {
  return RenameAt(t, a.Int(0), a.Ptr(1), a.Int(2), a.Ptr(3), 0);
}
SyscallResult SysRenameat2(Task& t, const Args& a) {
  return RenameAt(t, a.Int(0), a.Ptr(1), a.Int(2), a.Ptr(3), static_cast<unsigned>(a.U(4)));
}
SyscallResult SysSymlink(Task& t, const Args& a) {
  return SymlinkAt(t, a.Ptr(0), AT_FDCWD, a.Ptr(1));
}
SyscallResult SysSymlinkat(Task& t, const Args& a) {
  return SymlinkAt(t, a.Ptr(0), a.Int(1), a.Ptr(2));
}

SyscallResult SysUmask(Task& t, const Args& a) {
  mode_t old = t.fs().umask;
  t.fs().umask = static_cast<mode_t>(a.U(0) & 0777);
  return static_cast<long>(old);
}

}  // namespace husk::syscalls
