// Extended attributes (xattr(7)): get, set, list and remove, by path (the
// final symlink followed or not) or by fd. The checks and their order are
// Linux's: flags, then the name (1 to 255 bytes), then the value's size, then
// the walk, then xattr_permission(), then the filesystem.
//
// Namespaces: user.* where the filesystem keeps attributes (tmpfs and the
// overlay's memory layer), only on regular files and directories. trusted.*
// needs CAP_SYS_ADMIN in the host's user namespace, which no sandboxed
// process has: invisible (ENODATA, not listed) and not settable (EPERM), as
// for root in a user namespace on Linux. security.* and system.* pass the
// VFS and the filesystems here answer EOPNOTSUPP.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <string>
#include <vector>

#include "sentry/kernel/inotify.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

constexpr size_t kXattrNameMax = 255;    // XATTR_NAME_MAX
constexpr size_t kXattrSizeMax = 65536;  // XATTR_SIZE_MAX
constexpr size_t kXattrListMax = 65536;  // XATTR_LIST_MAX

bool HasPrefix(const std::string& name, const char* prefix) { return name.rfind(prefix, 0) == 0; }

// import_xattr_name(): empty or longer than 255 bytes is ERANGE.
Result<std::string> CopyInName(Task& t, uintptr_t addr) {
  auto name = t.mm().CopyInString(addr, kXattrNameMax);
  if (!name.ok()) return Errno{name.error() == ENAMETOOLONG ? ERANGE : name.error()};
  if (name->empty()) return Errno{ERANGE};
  return name;
}

// xattr_permission(): mask is vfs::kMayRead or vfs::kMayWrite.
Status XattrPermission(Task& t, vfs::Inode& inode, const std::string& name, int mask) {
  const bool write = mask == vfs::kMayWrite;
  if (HasPrefix(name, "security.") || HasPrefix(name, "system.")) return Ok();
  if (HasPrefix(name, "trusted.")) return write ? Errno{EPERM} : Errno{ENODATA};
  ASSIGN_OR_RETURN(struct stat st, inode.Stat());
  if (HasPrefix(name, "user.")) {
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
      return write ? Errno{EPERM} : Errno{ENODATA};
    }
    if (S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && write &&
        !vfs::OwnerOrCapable(t.FsCreds(), st)) {
      return Errno{EPERM};
    }
  }
  return vfs::CheckPermission(t.FsCreds(), st, mask);
}

// xattr_resolve_name(): a bare known prefix is EINVAL, an unknown one
// EOPNOTSUPP (after the permission check, as there).
Status CheckNamespace(const std::string& name) {
  for (const char* prefix : {"user.", "trusted.", "security.", "system."}) {
    if (HasPrefix(name, prefix)) {
      return name.size() == std::char_traits<char>::length(prefix) ? Errno{EINVAL} : Ok();
    }
  }
  return Errno{EOPNOTSUPP};
}

// The inode a path or fd names: where = kByPath (follow), kByLink (no
// follow) or kByFd.
enum class Where { kByPath, kByLink, kByFd };

// dentry: where the inode was found (null for a file without a name), for
// the IN_ATTRIB a change reports.
Result<vfs::InodeRef> Target(Task& t, Where where, uint64_t arg, vfs::DentryRef* dentry = nullptr) {
  if (where == Where::kByFd) {
    ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(static_cast<int>(arg)));
    if (f->flags() & O_PATH) return Errno{EBADF};
    if (dentry != nullptr) *dentry = f->dentry();
    return f->inode();
  }
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(arg));
  ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, AT_FDCWD, path, where == Where::kByPath, false));
  if (dentry != nullptr) *dentry = d;
  return d->inode();
}

// fsnotify_xattr: a changed attribute is IN_ATTRIB.
void NotifyXattr(const vfs::DentryRef& d, vfs::Inode& inode) {
  if (d != nullptr) {
    inotify::NotifyDentry(*d, IN_ATTRIB);
  } else {
    inotify::NotifyInode(inode, IN_ATTRIB);
  }
}

Result<long> Get(Task& t, Where where, const Args& a) {
  ASSIGN_OR_RETURN(std::string name, CopyInName(t, a.Ptr(1)));
  ASSIGN_OR_RETURN(vfs::InodeRef inode, Target(t, where, a.U(0)));
  TRY(XattrPermission(t, *inode, name, vfs::kMayRead));
  TRY(CheckNamespace(name));
  ASSIGN_OR_RETURN(std::string value, inode->GetXattr(name));
  const size_t size = std::min<size_t>(a.Size(3), kXattrSizeMax);
  if (size == 0) return static_cast<long>(value.size());
  if (value.size() > size) return Errno{ERANGE};
  TRY(t.CopyOut(a.Ptr(2), value.data(), value.size()));
  return static_cast<long>(value.size());
}

Result<long> Set(Task& t, Where where, const Args& a) {
  const int flags = a.Int(4);
  if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::string name, CopyInName(t, a.Ptr(1)));
  const size_t size = a.Size(3);
  if (size > kXattrSizeMax) return Errno{E2BIG};
  std::string value(size, '\0');
  if (size > 0) TRY(t.CopyIn(a.Ptr(2), value.data(), size));
  vfs::DentryRef d;
  ASSIGN_OR_RETURN(vfs::InodeRef inode, Target(t, where, a.U(0), &d));
  if (d != nullptr) TRY(vfs::CheckWritableMount(t.fs(), *d));  // mnt_want_write(): EROFS
  TRY(XattrPermission(t, *inode, name, vfs::kMayWrite));
  TRY(CheckNamespace(name));
  TRY(inode->SetXattr(name, value, flags));
  NotifyXattr(d, *inode);
  return 0L;
}

Result<long> List(Task& t, Where where, const Args& a) {
  ASSIGN_OR_RETURN(vfs::InodeRef inode, Target(t, where, a.U(0)));
  ASSIGN_OR_RETURN(std::vector<std::string> names, inode->ListXattr());
  std::string list;
  for (const std::string& n : names) {
    if (HasPrefix(n, "trusted.")) continue;  // not the caller's to see
    list += n;
    list.push_back('\0');
  }
  const size_t size = std::min<size_t>(a.Size(2), kXattrListMax);
  if (size == 0) return static_cast<long>(list.size());
  if (list.size() > size) return Errno{list.size() > kXattrListMax ? E2BIG : ERANGE};
  TRY(t.CopyOut(a.Ptr(1), list.data(), list.size()));
  return static_cast<long>(list.size());
}

Result<long> Remove(Task& t, Where where, const Args& a) {
  ASSIGN_OR_RETURN(std::string name, CopyInName(t, a.Ptr(1)));
  vfs::DentryRef d;
  ASSIGN_OR_RETURN(vfs::InodeRef inode, Target(t, where, a.U(0), &d));
  if (d != nullptr) TRY(vfs::CheckWritableMount(t.fs(), *d));  // mnt_want_write(): EROFS
  TRY(XattrPermission(t, *inode, name, vfs::kMayWrite));
  TRY(CheckNamespace(name));
  TRY(inode->RemoveXattr(name));
  NotifyXattr(d, *inode);
  return 0L;
}

}  // namespace

SyscallResult SysGetxattr(Task& t, const Args& a) { return Get(t, Where::kByPath, a); }
SyscallResult SysLgetxattr(Task& t, const Args& a) { return Get(t, Where::kByLink, a); }
SyscallResult SysFgetxattr(Task& t, const Args& a) { return Get(t, Where::kByFd, a); }
SyscallResult SysSetxattr(Task& t, const Args& a) { return Set(t, Where::kByPath, a); }
SyscallResult SysLsetxattr(Task& t, const Args& a) { return Set(t, Where::kByLink, a); }
SyscallResult SysFsetxattr(Task& t, const Args& a) { return Set(t, Where::kByFd, a); }
SyscallResult SysListxattr(Task& t, const Args& a) { return List(t, Where::kByPath, a); }
SyscallResult SysLlistxattr(Task& t, const Args& a) { return List(t, Where::kByLink, a); }
SyscallResult SysFlistxattr(Task& t, const Args& a) { return List(t, Where::kByFd, a); }
SyscallResult SysRemovexattr(Task& t, const Args& a) { return Remove(t, Where::kByPath, a); }
SyscallResult SysLremovexattr(Task& t, const Args& a) { return Remove(t, Where::kByLink, a); }
SyscallResult SysFremovexattr(Task& t, const Args& a) { return Remove(t, Where::kByFd, a); }

}  // namespace husk::syscalls
