// inotify(7): instances (anonymous files, "anon_inode:inotify") holding
// watches on inodes and a queue of struct inotify_event records, and the
// notify API that the syscall paths call when they create, open, read,
// write, close, change, link, unlink or rename something.
//
// Watches. A watch belongs to one instance and names one inode by its
// identity (st_dev, st_ino), not by a reference: it keeps no inode or fid
// alive, survives the dentry cache evicting the object (a gofer file looked
// up again is a new Inode object with the same identity), and dies with the
// inode: when the last name is gone and nothing uses the object any more
// (IN_DELETE_SELF, then IN_IGNORED), on IN_ONESHOT's first event, or by
// inotify_rm_watch. An instance has one watch per inode, numbered from 1
// and never reused while the instance lives.
//
// Events are queued before the syscall that causes them returns. An event
// about a child goes first to its parent directory's watches (with the
// child's name), then to the child's own watches (without one), as Linux's
// fsnotify_parent does. An event identical to the last one queued and still
// unread is merged into it; past 16384 queued events (max_queued_events)
// one IN_Q_OVERFLOW (wd -1) stands for everything lost.
//
// Cost: every hook below first reads one atomic (are there watches at all?)
// and returns when there are none, so the syscall paths pay nothing for a
// sandbox that never uses inotify.
//
// Locking: the registry's mutex (every instance's watches) is taken with the
// big kernel lock held or not, never while a filesystem lock is held (keys
// are read by Stat before it is taken); an instance's queue mutex is under
// it; the instance's WaitQueue is a leaf under that.
#ifndef HUSK_SENTRY_KERNEL_INOTIFY_H_
#define HUSK_SENTRY_KERNEL_INOTIFY_H_

#include <sys/inotify.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "base/result.h"
#include "sentry/vfs/vfs.h"

namespace husk::inotify {

// The most events an instance queues (/proc/sys/fs/inotify/max_queued_events).
inline constexpr size_t kMaxQueuedEvents = 16384;
// The most watches and instances per user (max_user_watches, max_user_instances).
inline constexpr int kMaxUserWatches = 8192;
inline constexpr int kMaxUserInstances = 128;

// A new instance; flags: O_NONBLOCK (IN_NONBLOCK). `uid` is the real uid
// the per-user limits count against: EMFILE past kMaxUserInstances.
Result<vfs::FileRef> New(int flags, uid_t uid);
// Whether f is an inotify instance.
bool IsInstance(const vfs::File& f);

// inotify_add_watch on an inode the caller resolved (and checked): f must
// be an instance. mask: event bits plus IN_ONESHOT, IN_EXCL_UNLINK,
// IN_MASK_ADD, IN_MASK_CREATE (the path flags were the caller's). Returns
// the watch descriptor (the existing one for an inode already watched);
// EEXIST for IN_MASK_CREATE on a watched inode, ENOSPC past kMaxUserWatches.
Result<int> AddWatch(vfs::File& f, vfs::Inode& inode, uint32_t mask);
// inotify_rm_watch: queues IN_IGNORED; EINVAL for a wd the instance lacks.
Status RemoveWatch(vfs::File& f, int wd);

namespace internal {
extern std::atomic<int> g_watches;  // watches alive, in every instance
void NotifyDentry(const vfs::Dentry& d, uint32_t event);
void NotifyFile(const vfs::File& f, uint32_t event);
void NotifyInode(vfs::Inode& inode, uint32_t event);
void NotifyCreate(const vfs::Dentry& parent, const std::string& name, bool is_dir);
void NotifyRemoved(const vfs::Dentry& parent, const std::string& name, const vfs::DentryRef& child,
                   bool rmdir);
void NotifyRename(const vfs::Dentry& old_parent, const std::string& old_name,
                  const vfs::Dentry& new_parent, const std::string& new_name,
                  const vfs::DentryRef& moved, const vfs::DentryRef& replaced);
}  // namespace internal

// Whether any watch exists anywhere.
inline bool Active() { return internal::g_watches.load(std::memory_order_relaxed) != 0; }

// An event (IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_OPEN, IN_CLOSE_*) on the
// object a dentry names: its parent's watches hear it with the name, then
// its own. IN_ISDIR is added for directories.
inline void NotifyDentry(const vfs::Dentry& d, uint32_t event) {
  if (Active()) internal::NotifyDentry(d, event);
}
// The same through an open file (its dentry; only the inode if it has none).
inline void NotifyFile(const vfs::File& f, uint32_t event) {
  if (Active()) internal::NotifyFile(f, event);
}
// An event only the inode's own watches hear (IN_ATTRIB for a changed link
// count, as Linux's fsnotify_link_count).
inline void NotifyInode(vfs::Inode& inode, uint32_t event) {
  if (Active()) internal::NotifyInode(inode, event);
}
// IN_CREATE in `parent` for `name` (a file, directory, symlink, node or link).
inline void NotifyCreate(const vfs::Dentry& parent, const std::string& name, bool is_dir) {
  if (Active()) internal::NotifyCreate(parent, name, is_dir);
}
// After unlink(2) or rmdir(2) of `name` in `parent` (child: its dentry,
// already forgotten by the parent): the file's IN_ATTRIB (unlink only); its
// IN_DELETE_SELF and IN_IGNORED if that was the last name and nothing else
// holds the dentry (else when the last holder lets go); then the parent's
// IN_DELETE.
inline void NotifyRemoved(const vfs::Dentry& parent, const std::string& name,
                          const vfs::DentryRef& child, bool rmdir) {
  if (Active()) internal::NotifyRemoved(parent, name, child, rmdir);
}
// After a rename (fsnotify_move): IN_MOVED_FROM and IN_MOVED_TO sharing a
// fresh cookie, the replaced object's IN_ATTRIB, the moved object's
// IN_MOVE_SELF, then the replaced object's removal as for unlink. replaced
// may be null.
inline void NotifyRename(const vfs::Dentry& old_parent, const std::string& old_name,
                         const vfs::Dentry& new_parent, const std::string& new_name,
                         const vfs::DentryRef& moved, const vfs::DentryRef& replaced) {
  if (Active()) {
    internal::NotifyRename(old_parent, old_name, new_parent, new_name, moved, replaced);
  }
}

}  // namespace husk::inotify

#endif  // HUSK_SENTRY_KERNEL_INOTIFY_H_
