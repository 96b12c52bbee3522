#include "sentry/vfs/perm.h"

#include <errno.h>
#include <fcntl.h>

#include <algorithm>

#include "sentry/vfs/vfs.h"

namespace husk::vfs {

bool Creds::InGroup(uint32_t gid) const {
  return gid == fsgid || std::binary_search(groups.begin(), groups.end(), gid);
}

const Creds& KernelCreds() {
  static const Creds kernel{0, 0, {}, kFsCapabilities};
  return kernel;
}

namespace {

// acl_permission_check(): the class of bits is chosen by ownership first,
// group membership second; a member of a group with fewer bits than the
// others gets the group's (no ACLs are stored anywhere in husk).
bool ModeGrants(const Creds& c, const struct stat& st, int mask) {
  mode_t mode = st.st_mode;
  mask &= 7;
  if (st.st_uid == c.fsuid) {
    mode >>= 6;
  } else if (c.InGroup(st.st_gid)) {
    mode >>= 3;
  }
  return (static_cast<mode_t>(mask) & ~mode) == 0;
}

// Linux's ACC_MODE() plus O_TRUNC asking for write (build_open_flags).
int AccessOfOpenFlags(int flags) {
  int acc = 0;
  switch (flags & O_ACCMODE) {
    case O_RDONLY:
      acc = kMayRead;
      break;
    case O_WRONLY:
      acc = kMayWrite;
      break;
    default:
      acc = kMayRead | kMayWrite;
      break;
  }
  if (flags & O_TRUNC) acc |= kMayWrite;
  return acc;
}

}  // namespace

Status CheckPermission(const Creds& c, const struct stat& st, int mask) {
  if (ModeGrants(c, st, mask)) return Ok();
  // generic_permission(): directories may be read and searched with
  // CAP_DAC_READ_SEARCH, and anything with CAP_DAC_OVERRIDE.
  if (S_ISDIR(st.st_mode)) {
    if (!(mask & kMayWrite) && c.Capable(kCapDacReadSearch)) return Ok();
    if (c.Capable(kCapDacOverride)) return Ok();
    return Errno{EACCES};
  }
  mask &= kMayRead | kMayWrite | kMayExec;
  if (mask == kMayRead && c.Capable(kCapDacReadSearch)) return Ok();
  // Reading and writing are always overridable; executing only a file that
  // someone may execute.
  if ((!(mask & kMayExec) || (st.st_mode & 0111)) && c.Capable(kCapDacOverride)) return Ok();
  return Errno{EACCES};
}

Status CheckPermission(const Creds& c, Inode& inode, int mask) {
  ASSIGN_OR_RETURN(struct stat st, inode.Stat());
  return CheckPermission(c, st, mask);
}

Status CheckSearch(const Creds& c, Inode& dir) {
  // CAP_DAC_READ_SEARCH lets every directory be searched: no need to ask
  // the filesystem for the mode.
  if (c.Capable(kCapDacReadSearch)) return Ok();
  return CheckPermission(c, dir, kMayExec);
}

bool OwnerOrCapable(const Creds& c, const struct stat& st) {
  return st.st_uid == c.fsuid || c.Capable(kCapFowner);
}

Status MayCreate(const Creds& c, Dentry& dir) {
  if (dir.deleted()) return Errno{ENOENT};  // IS_DEADDIR
  return CheckPermission(c, *dir.inode(), kMayWrite | kMayExec);
}

Status MayDelete(const Creds& c, Inode& dir, Inode& victim, bool isdir) {
  ASSIGN_OR_RETURN(struct stat dir_st, dir.Stat());
  TRY(CheckPermission(c, dir_st, kMayWrite | kMayExec));
  // check_sticky(): in a sticky directory only the file's owner, the
  // directory's owner or CAP_FOWNER may remove a name.
  if (dir_st.st_mode & S_ISVTX) {
    ASSIGN_OR_RETURN(struct stat st, victim.Stat());
    if (st.st_uid != c.fsuid && dir_st.st_uid != c.fsuid && !c.Capable(kCapFowner)) {
      return Errno{EPERM};
    }
  }
  if (isdir && !victim.IsDir()) return Errno{ENOTDIR};
  if (!isdir && victim.IsDir()) return Errno{EISDIR};
  return Ok();
}

Status MayOpen(const Creds& c, Inode& inode, int flags) {
  if (flags & O_PATH) return Ok();
  int acc = AccessOfOpenFlags(flags);
  if (inode.IsDir() && (acc & kMayWrite)) return Errno{EISDIR};
  ASSIGN_OR_RETURN(struct stat st, inode.Stat());
  TRY(CheckPermission(c, st, acc));
  if ((flags & O_NOATIME) && !OwnerOrCapable(c, st)) return Errno{EPERM};
  return Ok();
}

Status CheckChmod(const Creds& c, const struct stat& st, mode_t* mode) {
  if (!OwnerOrCapable(c, st)) return Errno{EPERM};
  if (!c.InGroup(st.st_gid) && !c.Capable(kCapFsetid)) *mode &= ~S_ISGID;
  return Ok();
}

namespace {

// chown_ok(): the owner may "change" the owner to itself.
bool MayChangeOwner(const Creds& c, const struct stat& st, uid_t uid) {
  return (st.st_uid == c.fsuid && uid == st.st_uid) || c.Capable(kCapChown);
}

// chgrp_ok(): the owner may pick its own groups.
bool MayChangeGroup(const Creds& c, const struct stat& st, gid_t gid) {
  if (st.st_uid == c.fsuid && (gid == st.st_gid || c.InGroup(gid))) return true;
  return c.Capable(kCapChown);
}

// setattr_should_drop_sgid(): S_ISGID goes when the group may execute, or
// when the caller is neither in the file's group nor has CAP_FSETID.
bool ShouldDropSgid(const Creds& c, const struct stat& st) {
  if (!(st.st_mode & S_ISGID)) return false;
  if (st.st_mode & S_IXGRP) return true;
  return !c.InGroup(st.st_gid) && !c.Capable(kCapFsetid);
}

}  // namespace

Status CheckChown(const Creds& c, const struct stat& st, SetAttr* attr) {
  if (attr->set_uid && !MayChangeOwner(c, st, attr->uid)) return Errno{EPERM};
  if (attr->set_gid && !MayChangeGroup(c, st, attr->gid)) return Errno{EPERM};
  if (S_ISDIR(st.st_mode)) return Ok();
  // chown_common() asks to kill S_ISUID always and S_ISGID as above, even
  // for root and even when no id changes; notify_change() turns that into
  // a mode change, which setattr_prepare() allows only to the owner or
  // CAP_FOWNER.
  mode_t mode = st.st_mode & 07777;
  if (mode & S_ISUID) mode &= ~S_ISUID;
  if (ShouldDropSgid(c, st)) mode &= ~S_ISGID;
  if (mode == (st.st_mode & 07777)) return Ok();
  if (!OwnerOrCapable(c, st)) return Errno{EPERM};
  gid_t gid = attr->set_gid ? attr->gid : st.st_gid;
  if (!c.InGroup(gid) && !c.Capable(kCapFsetid)) mode &= ~S_ISGID;
  attr->set_mode = true;
  attr->mode = mode;
  return Ok();
}

Status CheckUtimes(const Creds& c, Inode& inode, bool touch) {
  ASSIGN_OR_RETURN(struct stat st, inode.Stat());
  if (OwnerOrCapable(c, st)) return Ok();
  // may_setattr(): ATTR_TOUCH falls back on write permission.
  if (touch) return CheckPermission(c, st, kMayWrite);
  return Errno{EPERM};
}

std::optional<mode_t> ModeAfterWrite(const Creds& c, const struct stat& st) {
  // Linux spares the bits only for CAP_FSETID in the initial user
  // namespace (capable(), not ns_capable()); the sandbox is never there,
  // so its root's writes clear them too, as in any container with a user
  // namespace.
  if (!S_ISREG(st.st_mode)) return std::nullopt;
  mode_t mode = st.st_mode & 07777;
  if (mode & S_ISUID) mode &= ~S_ISUID;
  if (ShouldDropSgid(c, st)) mode &= ~S_ISGID;
  if (mode == (st.st_mode & 07777)) return std::nullopt;
  return mode;
}

mode_t StripSgidForCreate(const Creds& c, const struct stat& dir, mode_t mode) {
  if ((mode & (S_ISGID | S_IXGRP)) != (S_ISGID | S_IXGRP)) return mode;
  if (S_ISDIR(mode) || !(dir.st_mode & S_ISGID)) return mode;
  if (c.InGroup(dir.st_gid) || c.Capable(kCapFsetid)) return mode;
  return mode & ~S_ISGID;
}

bool NewInodeOwner(const Creds& c, const struct stat& dir, const struct stat& created,
                   SetAttr* attr) {
  bool inherit_group = (dir.st_mode & S_ISGID) != 0;
  gid_t gid = inherit_group ? dir.st_gid : c.fsgid;
  if (created.st_uid == c.fsuid && created.st_gid == gid) return false;
  attr->set_uid = attr->set_gid = true;
  attr->uid = c.fsuid;
  attr->gid = gid;
  // Filesystems clear S_ISUID and S_ISGID on a change of owner (chown(2));
  // a new inode keeps the mode it was created with.
  attr->set_mode = true;
  attr->mode = created.st_mode & 07777;
  return true;
}

}  // namespace husk::vfs
