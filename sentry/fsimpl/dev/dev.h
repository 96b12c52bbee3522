// /dev: a tmpfs holding the memory character devices (null, zero, full,
// random, urandom), the empty pts/ and shm/ directories and the fd links.
#ifndef HUSK_SENTRY_FSIMPL_DEV_DEV_H_
#define HUSK_SENTRY_FSIMPL_DEV_DEV_H_

#include <sys/types.h>

#include "sentry/vfs/vfs.h"

namespace husk::devfs {

// The character devices of Linux's "mem" driver (major 1), see mem(4),
// null(4), zero(4), full(4), random(4).
enum class MemDevice { kNull, kZero, kFull, kRandom, kURandom };

// A new device inode of `kind`, reporting st_dev `fs_dev` (the filesystem it
// is linked into) and mode 0666.
vfs::InodeRef NewMemDevice(MemDevice kind, dev_t fs_dev);

// A new /dev tree (a tmpfs instance with mode 0755).
vfs::InodeRef NewDevRoot();

}  // namespace husk::devfs

#endif  // HUSK_SENTRY_FSIMPL_DEV_DEV_H_
