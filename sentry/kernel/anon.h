// Anonymous files: eventfd, epoll (and later timerfd, signalfd). As on
// Linux they all share one inode of the anon_inodefs pseudo filesystem, with
// mode 0600 and no file type bits, and /proc/<pid>/fd names them
// "anon_inode:[<name>]".
#ifndef HUSK_SENTRY_KERNEL_ANON_H_
#define HUSK_SENTRY_KERNEL_ANON_H_

#include <string>

#include "sentry/vfs/vfs.h"

namespace husk::anon {

// The one anonymous inode.
vfs::InodeRef Inode();

// A file on the anonymous inode. flags: access mode and status flags.
class AnonFile : public vfs::File {
 public:
  AnonFile(int flags, std::string name) : vfs::File(Inode(), flags), name_(std::move(name)) {}
  // "[eventfd]", "[eventpoll]", ...
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

}  // namespace husk::anon

#endif  // HUSK_SENTRY_KERNEL_ANON_H_
