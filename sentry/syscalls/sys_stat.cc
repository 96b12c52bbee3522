// Metadata: stat family, access, readlink, statfs, chmod/chown/utimes.
#include <errno.h>
#include <fcntl.h>
#include <linux/stat.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include "sentry/kernel/inotify.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::syscalls {
namespace {

Result<long> StatAt(Task& t, int dirfd, uintptr_t path_addr, uintptr_t out, int flags) {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(path_addr));
  struct stat st;
  if (path.empty() && (flags & AT_EMPTY_PATH) && dirfd != AT_FDCWD) {
    // fstat(2) by another name: works for files without a path (stdio).
    ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(dirfd));
    ASSIGN_OR_RETURN(st, f->Stat());
  } else {
    ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW),
                                                 (flags & AT_EMPTY_PATH) != 0));
    ASSIGN_OR_RETURN(st, d->inode()->Stat());
  }
  TRY(t.CopyOutObj(out, st));
  return 0L;
}

// do_faccessat(): without AT_EACCESS the path is searched and the file
// checked as the real uid and gid would be, with root's capabilities only
// for a real uid of 0 (access(2)).
Result<long> AccessAt(Task& t, int dirfd, uintptr_t path_addr, int mode, int flags) {
  if (mode & ~(R_OK | W_OK | X_OK)) return Errno{EINVAL};
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(path_addr));
  vfs::Creds creds = (flags & AT_EACCESS) ? t.FsCreds() : t.AccessCreds();
  ASSIGN_OR_RETURN(vfs::DentryRef d,
                   ResolveAtWith(t, creds, dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW),
                                 (flags & AT_EMPTY_PATH) != 0));
  TRY(vfs::CheckPermission(creds, *d->inode(), mode));
  return 0L;
}

Result<long> ReadlinkAt(Task& t, int dirfd, uintptr_t path_addr, uintptr_t buf, long size) {
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(path_addr));
  if (size <= 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, dirfd, path, false, true));
  // do_readlinkat(): an empty path names the descriptor (or the working
  // directory), and that not being a symlink is ENOENT rather than EINVAL.
  if (!d->inode()->IsSymlink()) return Errno{path.empty() ? ENOENT : EINVAL};
  ASSIGN_OR_RETURN(std::string target, d->inode()->Readlink());
  size_t n = std::min(target.size(), static_cast<size_t>(size));
  TRY(t.CopyOut(buf, target.data(), n));
  return static_cast<long>(n);
}

// chmod_common(): the owner or CAP_FOWNER; S_ISGID may be dropped.
Result<long> Chmod(Task& t, vfs::Inode& inode, uint64_t mode) {
  ASSIGN_OR_RETURN(struct stat st, inode.Stat());
  vfs::SetAttr attr;
  attr.set_mode = true;
  attr.mode = static_cast<mode_t>(mode & 07777);
  TRY(vfs::CheckChmod(t.FsCreds(), st, &attr.mode));
  TRY(inode.SetAttributes(attr));
  return 0L;
}

// Whether chown's ids change anything (else notify_change reports nothing).
bool ChangesOwner(uint64_t uid, uint64_t gid) {
  return static_cast<uint32_t>(uid) != UINT32_MAX || static_cast<uint32_t>(gid) != UINT32_MAX;
}

// chown_common(): -1 leaves an id unchanged (chown(2)).
Result<long> Chown(Task& t, vfs::Inode& inode, uint64_t uid, uint64_t gid) {
  ASSIGN_OR_RETURN(struct stat st, inode.Stat());
  vfs::SetAttr attr;
  attr.set_uid = static_cast<uint32_t>(uid) != UINT32_MAX;
  attr.set_gid = static_cast<uint32_t>(gid) != UINT32_MAX;
  attr.uid = static_cast<uid_t>(uid);
  attr.gid = static_cast<gid_t>(gid);
  TRY(vfs::CheckChown(t.FsCreds(), st, &attr));
  TRY(inode.SetAttributes(attr));
  return 0L;
}

// statfs(2)'s f_flags of the mount d lies in (ST_RDONLY, ST_NOSUID, ST_NODEV,
// ST_NOEXEC, ..., the same bits as MS_*; calculate_f_flags()).
long MountStatfsFlags(Task& t, const vfs::Dentry& d) {
  const unsigned long mnt = vfs::NamespaceOf(t.fs()).FlagsOf(d);
  long out = static_cast<long>(
      mnt & (ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_NOATIME | ST_NODIRATIME));
  if (mnt & MS_RELATIME) out |= ST_RELATIME;
  return out;
}

Result<long> ChmodAt(Task& t, int dirfd, uintptr_t path_addr, uint64_t mode) {
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(path_addr));
  ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, dirfd, path, true, false));
  TRY(vfs::CheckWritableMount(t.fs(), *d));  // chmod_common's mnt_want_write
  TRY(Chmod(t, *d->inode(), mode));
  inotify::NotifyDentry(*d, IN_ATTRIB);
  return 0L;
}

Result<long> ChownAt(Task& t, int dirfd, uintptr_t path_addr, uint64_t uid, uint64_t gid,
                     int flags) {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(path_addr));
  ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW),
                                               (flags & AT_EMPTY_PATH) != 0));
  TRY(vfs::CheckWritableMount(t.fs(), *d));
  TRY(Chown(t, *d->inode(), uid, gid));
  if (ChangesOwner(uid, gid)) inotify::NotifyDentry(*d, IN_ATTRIB);
  return 0L;
}

}  // namespace

SyscallResult SysStat(Task& t, const Args& a) { return StatAt(t, AT_FDCWD, a.Ptr(0), a.Ptr(1), 0); }
SyscallResult SysLstat(Task& t, const Args& a) {
  return StatAt(t, AT_FDCWD, a.Ptr(0), a.Ptr(1), AT_SYMLINK_NOFOLLOW);
}
SyscallResult SysNewfstatat(Task& t, const Args& a) {
  return StatAt(t, a.Int(0), a.Ptr(1), a.Ptr(2), a.Int(3));
}

SyscallResult SysFstat(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
  ASSIGN_OR_RETURN(struct stat st, f->Stat());
  TRY(t.CopyOutObj(a.Ptr(1), st));
  return 0L;
}

SyscallResult SysStatx(Task& t, const Args& a) {
  int flags = a.Int(2);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE))
    return Errno{EINVAL};
  if ((flags & AT_STATX_SYNC_TYPE) == AT_STATX_SYNC_TYPE) return Errno{EINVAL};
  if (a.U(3) & STATX__RESERVED) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(a.Ptr(1)));
  struct stat st;
  vfs::DentryRef dentry;  // where the file is, for its mount's id
  if (path.empty() && (flags & AT_EMPTY_PATH) && a.Int(0) != AT_FDCWD) {
    ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
    ASSIGN_OR_RETURN(st, f->Stat());
    dentry = f->dentry();
  } else {
    ASSIGN_OR_RETURN(dentry, ResolveAt(t, a.Int(0), path, !(flags & AT_SYMLINK_NOFOLLOW),
                                       (flags & AT_EMPTY_PATH) != 0));
    ASSIGN_OR_RETURN(st, dentry->inode()->Stat());
  }
  struct statx sx {};
  sx.stx_mask = STATX_BASIC_STATS;
  // The mount's id, as mountinfo and fdinfo show it; Linux (5.8 on) fills
  // it in whether asked or not.
  if (dentry != nullptr) {
    sx.stx_mask |= STATX_MNT_ID;
    sx.stx_mnt_id = static_cast<uint64_t>(vfs::MountId(*dentry, t.fs().mnt_ns.get()));
  }
  sx.stx_blksize = static_cast<uint32_t>(st.st_blksize);
  sx.stx_nlink = static_cast<uint32_t>(st.st_nlink);
  sx.stx_uid = st.st_uid;
  sx.stx_gid = st.st_gid;
  sx.stx_mode = static_cast<uint16_t>(st.st_mode);
  sx.stx_ino = st.st_ino;
  sx.stx_size = static_cast<uint64_t>(st.st_size);
  sx.stx_blocks = static_cast<uint64_t>(st.st_blocks);
  sx.stx_atime = {st.st_atim.tv_sec, static_cast<uint32_t>(st.st_atim.tv_nsec), 0};
  sx.stx_mtime = {st.st_mtim.tv_sec, static_cast<uint32_t>(st.st_mtim.tv_nsec), 0};
  sx.stx_ctime = {st.st_ctim.tv_sec, static_cast<uint32_t>(st.st_ctim.tv_nsec), 0};
  sx.stx_rdev_major = major(st.st_rdev);
  sx.stx_rdev_minor = minor(st.st_rdev);
  sx.stx_dev_major = major(st.st_dev);
  sx.stx_dev_minor = minor(st.st_dev);
  TRY(t.CopyOutObj(a.Ptr(4), sx));
  return 0L;
}

SyscallResult SysAccess(Task& t, const Args& a) {
  return AccessAt(t, AT_FDCWD, a.Ptr(0), a.Int(1), 0);
}
SyscallResult SysFaccessat(Task& t, const Args& a) {
  return AccessAt(t, a.Int(0), a.Ptr(1), a.Int(2), 0);
}
SyscallResult SysFaccessat2(Task& t, const Args& a) {
  return AccessAt(t, a.Int(0), a.Ptr(1), a.Int(2), a.Int(3));
}

SyscallResult SysReadlink(Task& t, const Args& a) {
  return ReadlinkAt(t, AT_FDCWD, a.Ptr(0), a.Ptr(1), a.Long(2));
}
SyscallResult SysReadlinkat(Task& t, const Args& a) {
  return ReadlinkAt(t, a.Int(0), a.Ptr(1), a.Ptr(2), a.Long(3));
}

SyscallResult SysStatfs(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(a.Ptr(0)));
  ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, AT_FDCWD, path, true, false));
  ASSIGN_OR_RETURN(struct statfs s, d->inode()->Statfs());
  s.f_flags |= MountStatfsFlags(t, *d);
  TRY(t.CopyOutObj(a.Ptr(1), s));
  return 0L;
}

SyscallResult SysFstatfs(Task& t, const Args& a) {
  // O_PATH descriptors too, as on Linux.
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
  ASSIGN_OR_RETURN(struct statfs s, f->inode()->Statfs());
  if (f->dentry() != nullptr) s.f_flags |= MountStatfsFlags(t, *f->dentry());
  TRY(t.CopyOutObj(a.Ptr(1), s));
  return 0L;
}

SyscallResult SysChmod(Task& t, const Args& a) { return ChmodAt(t, AT_FDCWD, a.Ptr(0), a.U(1)); }
SyscallResult SysFchmod(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().GetForIo(a.Int(0)));
  if (f->dentry() != nullptr) TRY(vfs::CheckWritableMount(t.fs(), *f->dentry()));
  TRY(Chmod(t, *f->inode(), a.U(1)));
  inotify::NotifyFile(*f, IN_ATTRIB);
  return 0L;
}
SyscallResult SysFchmodat(Task& t, const Args& a) { return ChmodAt(t, a.Int(0), a.Ptr(1), a.U(2)); }
SyscallResult SysChown(Task& t, const Args& a) {
  return ChownAt(t, AT_FDCWD, a.Ptr(0), a.U(1), a.U(2), 0);
}
SyscallResult SysLchown(Task& t, const Args& a) {
  return ChownAt(t, AT_FDCWD, a.Ptr(0), a.U(1), a.U(2), AT_SYMLINK_NOFOLLOW);
}
SyscallResult SysFchown(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().GetForIo(a.Int(0)));
  TRY(Chown(t, *f->inode(), a.U(1), a.U(2)));
  if (ChangesOwner(a.U(1), a.U(2))) inotify::NotifyFile(*f, IN_ATTRIB);
  return 0L;
}
SyscallResult SysFchownat(Task& t, const Args& a) {
  return ChownAt(t, a.Int(0), a.Ptr(1), a.U(2), a.U(3), a.Int(4));
}

SyscallResult SysUtimensat(Task& t, const Args& a) {
  int flags = a.Int(3);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return Errno{EINVAL};
  timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  if (a.Ptr(2) != 0) {
    TRY(t.CopyIn(a.Ptr(2), ts, sizeof(ts)));
    // Nothing to do: Linux does not even look the path up.
    if (ts[0].tv_nsec == UTIME_OMIT && ts[1].tv_nsec == UTIME_OMIT) return 0L;
  }
  // NULL or both UTIME_NOW is a "touch", which write permission allows.
  bool touch = ts[0].tv_nsec == UTIME_NOW && ts[1].tv_nsec == UTIME_NOW;
  const timespec now = SandboxTimespec(CLOCK_REALTIME);
  vfs::SetAttr attr;
  for (int i = 0; i < 2; i++) {
    if (ts[i].tv_nsec == UTIME_OMIT) continue;
    if (ts[i].tv_nsec == UTIME_NOW) {
      ts[i] = now;
    } else if (ts[i].tv_nsec < 0 || ts[i].tv_nsec >= 1000000000) {
      return Errno{EINVAL};
    }
    (i == 0 ? attr.set_atime : attr.set_mtime) = true;
    (i == 0 ? attr.atime : attr.mtime) = ts[i];
  }
  if (a.Ptr(1) == 0 && a.Int(0) != AT_FDCWD) {
    // utimensat(fd, NULL, ...), futimens(3) (do_utimes_fd): the file of fd
    // itself, which no flag applies to, and never an O_PATH descriptor.
    if (flags != 0) return Errno{EINVAL};
    ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().GetForIo(a.Int(0)));
    if (f->dentry() != nullptr) TRY(vfs::CheckWritableMount(t.fs(), *f->dentry()));  // EROFS
    TRY(vfs::CheckUtimes(t.FsCreds(), *f->inode(), touch));
    TRY(f->inode()->SetAttributes(attr));
    inotify::NotifyFile(*f, attr.set_atime && attr.set_mtime ? IN_ATTRIB
                            : attr.set_atime                 ? IN_ACCESS
                                                             : IN_MODIFY);
    return 0L;
  }
  if (a.Ptr(1) == 0) return Errno{EFAULT};
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(a.Ptr(1)));
  ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, a.Int(0), path, !(flags & AT_SYMLINK_NOFOLLOW),
                                               (flags & AT_EMPTY_PATH) != 0));
  TRY(vfs::CheckWritableMount(t.fs(), *d));  // vfs_utimes: mnt_want_write(), EROFS
  TRY(vfs::CheckUtimes(t.FsCreds(), *d->inode(), touch));
  TRY(d->inode()->SetAttributes(attr));
  // fsnotify_change: both times are IN_ATTRIB (a utime call), one alone
  // IN_ACCESS or IN_MODIFY.
  if (attr.set_atime && attr.set_mtime) {
    inotify::NotifyDentry(*d, IN_ATTRIB);
  } else {
    inotify::NotifyDentry(*d, attr.set_atime ? IN_ACCESS : IN_MODIFY);
  }
  return 0L;
}

}  // namespace husk::syscalls
