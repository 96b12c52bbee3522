// Discretionary access control: who may do what to an inode, decided the way
// Linux decides it in fs/namei.c (generic_permission, may_create,
// may_delete, may_open) and fs/attr.c (setattr_prepare, notify_change's
// set-user-ID and set-group-ID clearing). These functions only decide; the
// syscall layer calls them at the points where Linux does, so that the same
// errno wins when several apply.
//
// Capabilities: the sandbox runs in its own user namespace, where root holds
// every capability. Only the five that bear on files matter here; a caller
// holds those of its effective set (see sentry/kernel/caps.h for the model).
#ifndef HUSK_SENTRY_VFS_PERM_H_
#define HUSK_SENTRY_VFS_PERM_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>

#include "base/result.h"

namespace husk::vfs {

class Dentry;
class Inode;
struct SetAttr;

// Capabilities that override file permissions (capabilities(7)), as bits.
inline constexpr uint32_t kCapChown = 1u << 0;
inline constexpr uint32_t kCapDacOverride = 1u << 1;
inline constexpr uint32_t kCapDacReadSearch = 1u << 2;
inline constexpr uint32_t kCapFowner = 1u << 3;
inline constexpr uint32_t kCapFsetid = 1u << 4;
// Linux's CAP_FS_MASK restricted to these: what a zero fsuid brings.
inline constexpr uint32_t kFsCapabilities =
    kCapChown | kCapDacOverride | kCapDacReadSearch | kCapFowner | kCapFsetid;

// What a check asks for: Linux's MAY_EXEC, MAY_WRITE, MAY_READ (the same
// values as X_OK, W_OK, R_OK).
inline constexpr int kMayExec = 1;
inline constexpr int kMayWrite = 2;
inline constexpr int kMayRead = 4;

// The credentials file checks use: Linux's fsuid, fsgid, supplementary
// groups and effective capabilities.
struct Creds {
  uint32_t fsuid = 0;
  uint32_t fsgid = 0;
  // Sorted (setgroups(2) sorts them). A view of the caller's list: a Creds
  // lives for one call.
  std::span<const uint32_t> groups;
  uint32_t caps = 0;

  // in_group_p(): the fsgid or a supplementary group.
  bool InGroup(uint32_t gid) const;
  bool Capable(uint32_t cap) const { return (caps & cap) == cap; }
};

// uid 0 with every file capability: what the kernel's own lookups use (boot,
// the first exec's working directory, tests).
const Creds& KernelCreds();

// generic_permission(): the owner's, group's or others' bits by the caller's
// ids, then the capability overrides. mask is a union of kMay*. EACCES when
// refused.
Status CheckPermission(const Creds& c, const struct stat& st, int mask);
// The same for an inode (its Stat() may fail, e.g. a /proc entry of a dead
// process).
Status CheckPermission(const Creds& c, Inode& inode, int mask);
// Search permission on a directory being walked (may_lookup()); cheap for
// callers holding CAP_DAC_READ_SEARCH.
Status CheckSearch(const Creds& c, Inode& dir);

// inode_owner_or_capable(): the fsuid owns the inode, or CAP_FOWNER.
bool OwnerOrCapable(const Creds& c, const struct stat& st);

// may_create(): a new name in dir needs write and search permission on it;
// ENOENT for a directory that was removed.
Status MayCreate(const Creds& c, Dentry& dir);
// may_delete(): removing victim's name from dir (unlink, rmdir, rename's
// source and replaced target). Write and search on dir, then the sticky bit
// (EPERM), then the type: ENOTDIR if isdir and the victim is not a
// directory, EISDIR the other way round.
Status MayDelete(const Creds& c, Inode& dir, Inode& victim, bool isdir);
// may_open() for an existing inode opened with open(2) flags: the access the
// flags ask (O_TRUNC asks for write), EISDIR for writing a directory,
// EPERM for O_NOATIME by a non-owner. Nothing is checked for O_PATH.
Status MayOpen(const Creds& c, Inode& inode, int flags);

// chmod(2) (setattr_prepare for ATTR_MODE): the owner or CAP_FOWNER, else
// EPERM; S_ISGID is silently dropped from *mode unless the caller is in the
// file's group or has CAP_FSETID.
Status CheckChmod(const Creds& c, const struct stat& st, mode_t* mode);
// chown(2): a new owner needs CAP_CHOWN (or is the owner itself); a new
// group needs CAP_CHOWN, or the owner changing to one of its groups; else
// EPERM. For non-directories the change also clears S_ISUID, and S_ISGID
// where Linux does (chown_common, setattr_should_drop_sgid), which *attr
// then carries as a mode change.
Status CheckChown(const Creds& c, const struct stat& st, SetAttr* attr);
// utimensat(2): explicit times need the owner or CAP_FOWNER (EPERM);
// setting both to now (touch) also passes with write permission (EACCES).
Status CheckUtimes(const Creds& c, Inode& inode, bool touch);

// setattr_should_drop_suidgid(): the mode a regular file must take before a
// write or truncate by this caller, or nothing if no bit needs clearing.
// S_ISUID always goes, even for root: the exemption needs CAP_FSETID in the
// initial user namespace, which no sandbox has.
std::optional<mode_t> ModeAfterWrite(const Creds& c, const struct stat& st);

// mode_strip_sgid(): the mode a new inode asks for, with S_ISGID dropped
// for a group-executable non-directory created in a set-group-ID directory
// whose group the caller is not in (without CAP_FSETID).
mode_t StripSgidForCreate(const Creds& c, const struct stat& dir, mode_t mode);
// inode_init_owner(): the new inode is owned by the fsuid and, unless dir is
// set-group-ID (whose group it then takes, as the filesystem already did),
// the fsgid. Fills *attr with what differs from the filesystem's default
// owner (uid 0, gid 0 or dir's); false if nothing does.
bool NewInodeOwner(const Creds& c, const struct stat& dir, const struct stat& created,
                   SetAttr* attr);

}  // namespace husk::vfs

#endif  // HUSK_SENTRY_VFS_PERM_H_
