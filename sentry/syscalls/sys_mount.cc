// Mounts and mount namespaces: mount(2) of tmpfs, bind mounts, remounts and
// propagation changes; umount2(2); unshare(2). The mount tree a task sees is
// its FsContext's namespace (vfs::MountNamespace).
#include <errno.h>
#include <sys/mount.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_split.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"
#include "sentry/memfile/account.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

// copy_mount_string() and copy_mount_options() take at most a page.
constexpr size_t kMaxMountString = 4095;
// tmpfs's block (a page): nr_blocks= counts them.
constexpr uint64_t kBlock = 4096;

// copy_mount_string(): a string argument, or "" for a null pointer.
Result<std::string> CopyInOptional(Task& t, uintptr_t addr) {
  if (addr == 0) return std::string();
  return t.mm().CopyInString(addr, kMaxMountString);
}

// A number of tmpfs's options with an optional k/m/g suffix (memparse()),
// or with percent_ok a percentage ("50%") of `whole`.
bool ParseSize(const std::string& v, bool percent_ok, uint64_t whole, uint64_t* out) {
  if (v.empty()) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long n = strtoull(v.c_str(), &end, 0);
  if (errno != 0 || end == v.c_str()) return false;
  std::string suffix(end);
  uint64_t mult = 1;
  if (suffix == "k" || suffix == "K") {
    mult = uint64_t{1} << 10;
  } else if (suffix == "m" || suffix == "M") {
    mult = uint64_t{1} << 20;
  } else if (suffix == "g" || suffix == "G") {
    mult = uint64_t{1} << 30;
  } else if (suffix == "%" && percent_ok) {
    if (n > 100) return false;
    *out = whole / 100 * n;
    return true;
  } else if (!suffix.empty()) {
    return false;
  }
  if (__builtin_mul_overflow(static_cast<uint64_t>(n), mult, out)) return false;
  return true;
}

// tmpfs's options (shmem_parse_one()): mode=, size=, nr_blocks=,
// nr_inodes=, uid=, gid=, huge=, mpol=, inode32, inode64, noswap; the
// generic ones (rw, ro, ...) the VFS takes for itself. Anything else is
// EINVAL. Returns what the mount table shows of them.
struct TmpfsOptions {
  mode_t mode = 01777;
  tmpfs::Limits limits;
  std::string shown;
};
Result<TmpfsOptions> ParseTmpfsOptions(const std::string& data) {
  TmpfsOptions o;
  for (absl::string_view opt_view : absl::StrSplit(data, ',', absl::SkipEmpty())) {
    std::string opt(opt_view);
    const size_t eq = opt.find('=');
    const std::string key = opt.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : opt.substr(eq + 1);
    uint64_t n = 0;
    if (key == "mode" && eq != std::string::npos) {
      char* end = nullptr;
      unsigned long m = strtoul(value.c_str(), &end, 8);
      if (value.empty() || *end != '\0' || m > 07777) return Errno{EINVAL};
      o.mode = static_cast<mode_t>(m);
    } else if (key == "size" && eq != std::string::npos) {
      // A percentage is of the memory (the sandbox's limit here).
      if (!ParseSize(value, true, MemoryAccount::Sandbox().limit(), &n)) return Errno{EINVAL};
      o.limits.max_bytes = n;
    } else if (key == "nr_blocks" && eq != std::string::npos) {
      if (!ParseSize(value, false, 0, &n) || n > UINT64_MAX / kBlock) return Errno{EINVAL};
      o.limits.max_bytes = n * kBlock;
    } else if (key == "nr_inodes" && eq != std::string::npos) {
      // A percentage is of the memory's pages, as shmem's is of RAM's.
      if (!ParseSize(value, true, MemoryAccount::Sandbox().limit() / kBlock, &n))
        return Errno{EINVAL};
      o.limits.max_inodes = n;
    } else if ((key == "uid" || key == "gid") && eq != std::string::npos) {
      char* end = nullptr;
      strtoul(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0') return Errno{EINVAL};
    } else if ((key == "huge" || key == "mpol") && eq != std::string::npos) {
      // Accepted; memory policy and huge pages are the host's business.
    } else if (eq == std::string::npos &&
               (key == "inode32" || key == "inode64" || key == "noswap" || key == "rw" ||
                key == "ro" || key == "sync" || key == "async" || key == "dirsync" ||
                key == "mand" || key == "nomand" || key == "lazytime" || key == "nolazytime" ||
                key == "silent" || key == "defaults")) {
      continue;  // nothing to show
    } else {
      return Errno{EINVAL};
    }
    if (!o.shown.empty()) o.shown += ",";
    o.shown += opt;
  }
  return o;
}

// may_mount(): CAP_SYS_ADMIN in the sandbox (its root has it).
bool MayMount(Task& t) { return t.Capable(CAP_SYS_ADMIN); }

// Filesystems Linux has that a user namespace may not mount (no
// FS_USERNS_MOUNT: they need CAP_SYS_ADMIN in the initial namespace, which
// a sandbox never has): EPERM, as for a container's root on Linux. Other
// unknown types are ENODEV.
bool NeedsInitialNamespace(const std::string& type) {
  static constexpr const char* kTypes[] = {
      "ext2",  "ext3",    "ext4",  "xfs",     "btrfs",    "vfat", "msdos", "exfat",
      "ntfs",  "ntfs3",   "udf",   "iso9660", "squashfs", "f2fs", "jfs",   "reiserfs",
      "hfs",   "hfsplus", "nfs",   "nfs4",    "cifs",     "smb3", "9p",    "fuseblk",
      "erofs", "zfs",     "ocfs2", "gfs2",    "nilfs2"};
  for (const char* known : kTypes) {
    if (type == known) return true;
  }
  return false;
}

}  // namespace

SyscallResult SysMount(Task& t, const Args& a) {
  unsigned long flags = a.U(3);
  // Old callers put a magic number in the top half (do_mount).
  if ((flags & MS_MGC_MSK) == MS_MGC_VAL) flags &= ~MS_MGC_MSK;
  // The strings are copied first, then the target is looked up, then the
  // caller's privilege is checked (path_mount).
  ASSIGN_OR_RETURN(std::string type, CopyInOptional(t, a.Ptr(2)));
  ASSIGN_OR_RETURN(std::string source, CopyInOptional(t, a.Ptr(0)));
  ASSIGN_OR_RETURN(std::string data, CopyInOptional(t, a.Ptr(4)));
  ASSIGN_OR_RETURN(std::string target, t.CopyInPath(a.Ptr(1)));
  ASSIGN_OR_RETURN(vfs::DentryRef on, ResolveAt(t, AT_FDCWD, target, true, false));
  if (flags & MS_NOUSER) return Errno{EINVAL};
  if (!MayMount(t)) return Errno{EPERM};
  vfs::MountNamespace& ns = vfs::MutableNamespaceOf(t.fs());

  // Per-mount flags; relatime unless another atime mode is asked for.
  unsigned long mnt_flags = flags & vfs::MountNamespace::kMountFlags;
  if (!(mnt_flags & (MS_NOATIME | MS_STRICTATIME))) mnt_flags |= MS_RELATIME;
  mnt_flags &= ~static_cast<unsigned long>(MS_STRICTATIME);

  if (flags & MS_REMOUNT) {
    // do_reconfigure_mnt() (with MS_BIND: the mount's flags alone) and
    // do_remount(): either way the target must be a mount's root.
    TRY(ns.Remount(*on, mnt_flags));
    return 0L;
  }
  if (flags & MS_BIND) {
    // do_loopback().
    if (source.empty()) return Errno{ENOENT};
    ASSIGN_OR_RETURN(vfs::DentryRef from, ResolveAt(t, AT_FDCWD, source, true, false));
    ASSIGN_OR_RETURN(vfs::DentryRef root, ns.AddBind(on, from, (flags & MS_REC) != 0));
    (void)root;
    return 0L;
  }
  if (flags & (MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE)) {
    // do_change_type(): every mount here is private already (no peer
    // groups are kept); the target must still be a mount's root.
    if (!ns.IsMountRoot(*on)) return Errno{EINVAL};
    return 0L;
  }
  if (flags & MS_MOVE) return Errno{EINVAL};  // not implemented (yet)
  // do_new_mount().
  if (type.empty()) return Errno{EINVAL};
  if (NeedsInitialNamespace(type)) return Errno{EPERM};
  if (type != "tmpfs") return Errno{ENODEV};
  ASSIGN_OR_RETURN(TmpfsOptions opts, ParseTmpfsOptions(data));
  // graft_tree(): a directory's root goes on a directory.
  if (!on->inode()->IsDir()) return Errno{ENOTDIR};
  vfs::MountSpec spec{type, source.empty() ? "none" : source, opts.shown};
  ns.AddMount(on, tmpfs::NewTmpfsRoot(opts.mode, opts.limits), spec, mnt_flags);
  return 0L;
}

SyscallResult SysUmount2(Task& t, const Args& a) {
  const int flags = a.Int(1);
  // ksys_umount(): known flags, and MNT_EXPIRE alone.
  if (flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW)) return Errno{EINVAL};
  if ((flags & MNT_EXPIRE) && (flags & (MNT_FORCE | MNT_DETACH))) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::string target, t.CopyInPath(a.Ptr(0)));
  ASSIGN_OR_RETURN(vfs::DentryRef root,
                   ResolveAt(t, AT_FDCWD, target, !(flags & UMOUNT_NOFOLLOW), false));
  vfs::MountNamespace& ns = vfs::MutableNamespaceOf(t.fs());
  // can_umount(): the mount's root, of this namespace; then the privilege.
  if (!ns.IsMountRoot(*root)) return Errno{EINVAL};
  if (!MayMount(t)) return Errno{EPERM};
  // MNT_EXPIRE marks a mount for expiry first: EAGAIN the first time
  // (nothing expires here on its own).
  if (flags & MNT_EXPIRE) return Errno{EAGAIN};
  // `root` here is the caller's one reference beyond the mount's own.
  TRY(ns.Unmount(root, (flags & MNT_DETACH) != 0, /*holders=*/1));
  return 0L;
}

}  // namespace husk::syscalls
