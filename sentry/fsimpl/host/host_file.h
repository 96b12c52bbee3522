// Host files: the application's stdin/stdout/stderr, handed to the sandbox
// by the user who started it (like gVisor's host FDs). Only data I/O and a
// fixed set of terminal queries reach the host descriptor.
#ifndef HUSK_SENTRY_FSIMPL_HOST_HOST_FILE_H_
#define HUSK_SENTRY_FSIMPL_HOST_HOST_FILE_H_

#include <functional>

#include "base/fd.h"
#include "sentry/vfs/vfs.h"

namespace husk::hostfs {

// Wraps host fd (owned) as a file with the given access mode. block_hook is
// called around host reads and writes, which may block, so the kernel can
// release its lock: with true before, with false after.
Result<vfs::FileRef> NewHostFile(UniqueFd fd, int flags,
                                 std::function<void(bool entering)> block_hook);

}  // namespace husk::hostfs

#endif  // HUSK_SENTRY_FSIMPL_HOST_HOST_FILE_H_
