// eventfd(2): a 64-bit counter as a file. A write adds to the counter; a
// read takes it all (or 1 with EFD_SEMAPHORE), blocking while it is zero;
// a write that would carry it past 0xfffffffffffffffe blocks instead (or
// fails with EAGAIN under O_NONBLOCK). Reads and writes move exactly 8
// bytes: a read into fewer bytes, or a write of any other length, is EINVAL. Readable while the counter is
// non-zero, writable while it is below the maximum.
//
// Locking: the counter's mutex is taken under the big lock and is above
// the file's WaitQueue (notified with it held); blocking goes through
// Task::Block, which drops the big lock.
#ifndef HUSK_SENTRY_KERNEL_EVENTFD_H_
#define HUSK_SENTRY_KERNEL_EVENTFD_H_

#include <cstdint>

#include "sentry/vfs/vfs.h"

namespace husk::eventfd {

// A new eventfd holding `initval`. flags: EFD_SEMAPHORE and EFD_NONBLOCK
// (EFD_CLOEXEC belongs to the descriptor, the caller's business).
vfs::FileRef New(uint64_t initval, int flags);

}  // namespace husk::eventfd

#endif  // HUSK_SENTRY_KERNEL_EVENTFD_H_
