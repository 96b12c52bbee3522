// Process file descriptors (pidfd_open(2), clone's CLONE_PIDFD): a file on
// the anonymous inode ("anon_inode:[pidfd]") that names one process for as
// long as it is open. It reads nothing; poll reports POLLIN once the whole
// process has ended (a zombie or reaped), as Linux's pidfd_poll.
#ifndef HUSK_SENTRY_KERNEL_PIDFD_H_
#define HUSK_SENTRY_KERNEL_PIDFD_H_

#include <memory>

#include "sentry/kernel/kernel.h"
#include "sentry/vfs/vfs.h"

namespace husk::pidfd {

// A pidfd for the process `group`. flags: O_NONBLOCK (PIDFD_NONBLOCK, which
// makes waitid(P_PIDFD) WNOHANG).
vfs::FileRef New(std::shared_ptr<ThreadGroup> group, int flags);

// The process a pidfd names, or null if file is not a pidfd.
std::shared_ptr<ThreadGroup> GroupOf(const vfs::File& file);

}  // namespace husk::pidfd

#endif  // HUSK_SENTRY_KERNEL_PIDFD_H_
