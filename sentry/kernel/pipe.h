// Pipes (pipe(7)): a bounded byte buffer in sentry memory with a read end and
// a write end, each an open file description that fork and dup share.
//
// Semantics follow Linux: reads return what is buffered (blocking while the
// pipe is empty and a writer exists, 0 at end of file); writes of at most
// PIPE_BUF bytes are atomic; larger blocking writes complete in pieces; a
// write with no reader left fails with EPIPE (the caller raises SIGPIPE);
// O_NONBLOCK gives EAGAIN instead of blocking; F_GETPIPE_SZ/F_SETPIPE_SZ
// read and change the capacity (64 KiB by default).
//
// Locking: the pipe's own mutex is taken under the big lock (Kernel::mu); a
// blocked end waits through Task::Block, which drops the big lock.
#ifndef HUSK_SENTRY_KERNEL_PIPE_H_
#define HUSK_SENTRY_KERNEL_PIPE_H_

#include <cstddef>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "base/result.h"
#include "sentry/vfs/vfs.h"

namespace husk::pipe {

inline constexpr size_t kDefaultCapacity = 65536;
inline constexpr size_t kMaxCapacity = 1048576;  // /proc/sys/fs/pipe-max-size

// Makes a pipe; returns (read end, write end). flags: O_NONBLOCK (others are
// the caller's business); uid/gid own the pipe's inode. A blocking read or
// write blocks the calling task (Kernel::Current()).
std::pair<vfs::FileRef, vfs::FileRef> New(int flags, uid_t uid, gid_t gid);

// Opens a FIFO (a named pipe): inode is the FIFO's node, and every open of
// it shares one buffer while any end is open. A blocking O_RDONLY waits for
// a writer and a blocking O_WRONLY for a reader (ERESTARTSYS if a signal
// comes first); O_WRONLY|O_NONBLOCK without a reader is ENXIO; O_RDWR never
// waits. Must run in a task's syscall (it may block).
Result<vfs::FileRef> OpenFifo(const vfs::InodeRef& inode, int flags);

// Whether f is an end of a pipe.
bool IsPipe(const vfs::File& f);
// F_GETPIPE_SZ and F_SETPIPE_SZ (EBADF if f is not a pipe).
Result<long> Capacity(vfs::File& f);
Result<long> SetCapacity(vfs::File& f, long size);

}  // namespace husk::pipe

#endif  // HUSK_SENTRY_KERNEL_PIPE_H_
