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
#include <functional>
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

// splice(2), tee(2) and vmsplice(2) at the pipe (fs/splice.c). The pipe side
// waits as read(2) and write(2) on it do (Task::Block; ERESTARTSYS on a
// signal) unless `nonblock` (SPLICE_F_NONBLOCK, or O_NONBLOCK where Linux
// lets it count) makes the wait EAGAIN. Data moves in chunks of at most
// kSpliceChunk bytes; the caller checks access modes. Must run in a task's
// syscall.
inline constexpr size_t kSpliceChunk = 65536;

// Whether a and b are ends of one pipe (or opens of one FIFO).
bool SamePipe(vfs::File& a, vfs::File& b);

// Takes the bytes given (at most kSpliceChunk), returns how many it took or
// an error; runs without the pipe's lock and may block.
using Sink = std::function<Result<size_t>(const char* data, size_t n)>;
// Fills buf with at most n bytes, returns how many (0: nothing more).
using Source = std::function<Result<size_t>(char* buf, size_t n)>;

// Out of the pipe behind `in`: waits while it is empty and has a writer (0
// at end of file), then hands sink up to n bytes, chunk by chunk, until the
// pipe runs empty, n is reached, sink takes less than it was given or fails
// (its error if nothing moved), or a signal is pending. What sink did not
// take stays at the front of the pipe.
Result<size_t> Drain(vfs::File& in, size_t n, bool nonblock, const Sink& sink);
// Into the pipe behind `out`: waits for a free buffer (EPIPE once no reader
// is left; the caller raises SIGPIPE), then asks source for up to n bytes,
// no more than the free buffers hold, chunk by chunk until it answers short.
Result<size_t> Fill(vfs::File& out, size_t n, bool nonblock, const Source& source);
// splice(2) between two pipes: moves up to n bytes from in's to out's once
// in's holds data and out's has room; 0 at end of file; EPIPE without a
// reader of out; EINVAL if they are one pipe.
Result<size_t> Move(vfs::File& in, vfs::File& out, size_t n, bool nonblock);
// tee(2): copies up to n bytes of what in's pipe holds to out's, consuming
// nothing; waits as Move does, and says 0 if in's is empty after all.
Result<size_t> Tee(vfs::File& in, vfs::File& out, size_t n, bool nonblock);

}  // namespace husk::pipe

#endif  // HUSK_SENTRY_KERNEL_PIPE_H_
