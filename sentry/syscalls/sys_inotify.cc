// inotify_init(2), inotify_init1(2), inotify_add_watch(2), inotify_rm_watch(2).
// Instances, watches and events live in sentry/kernel/inotify.
#include <errno.h>
#include <fcntl.h>
#include <sys/inotify.h>

#include "sentry/kernel/inotify.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

// Every bit inotify_add_watch knows (ALL_INOTIFY_BITS).
constexpr uint32_t kAllInotifyBits = IN_ALL_EVENTS | IN_UNMOUNT | IN_Q_OVERFLOW | IN_IGNORED |
                                     IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE |
                                     IN_MASK_ADD | IN_ISDIR | IN_ONESHOT;

Result<long> MakeInotify(Task& t, int flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  // IN_NONBLOCK and IN_CLOEXEC are O_NONBLOCK and O_CLOEXEC; nothing else.
  if (flags & ~(IN_NONBLOCK | IN_CLOEXEC)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(vfs::FileRef f, inotify::New(flags & IN_NONBLOCK, t.uid));
  ASSIGN_OR_RETURN(int fd, t.fds().Add(std::move(f), (flags & IN_CLOEXEC) != 0));
  return static_cast<long>(fd);
}

}  // namespace

SyscallResult SysInotifyInit(Task& t, const Args& a) { return MakeInotify(t, 0); }

SyscallResult SysInotifyInit1(Task& t, const Args& a) { return MakeInotify(t, a.Int(0)); }

// The checks in Linux's order: the flags, the descriptor, the walk (with
// IN_DONT_FOLLOW and IN_ONLYDIR), read permission on what it found.
SyscallResult SysInotifyAddWatch(Task& t, const Args& a) {
  const uint32_t mask = static_cast<uint32_t>(a.U(2));
  if ((mask & IN_MASK_ADD) && (mask & IN_MASK_CREATE)) return Errno{EINVAL};
  if (!(mask & kAllInotifyBits)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
  if (!inotify::IsInstance(*f)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(a.Ptr(1)));
  ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, AT_FDCWD, path, !(mask & IN_DONT_FOLLOW), false));
  if ((mask & IN_ONLYDIR) && !d->inode()->IsDir()) return Errno{ENOTDIR};
  TRY(vfs::CheckPermission(t.FsCreds(), *d->inode(), vfs::kMayRead));
  ASSIGN_OR_RETURN(int wd, inotify::AddWatch(*f, *d->inode(), mask));
  return static_cast<long>(wd);
}

SyscallResult SysInotifyRmWatch(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
  TRY(inotify::RemoveWatch(*f, a.Int(1)));
  return 0L;
}

}  // namespace husk::syscalls
