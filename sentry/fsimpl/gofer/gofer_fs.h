// The gofer filesystem: the sentry's client side of the gofer protocol. Each
// inode names a gofer fid; attributes, children and link targets are cached
// (the served tree is read-only, so the cache never goes stale), and file
// data is read through the host fd the gofer donates on first read; mappings
// share the file's pages through a FileCache (sentry/memfile/file_cache.h).
//
// Lock order: the VFS's (the big kernel lock) above; the donated-descriptor
// cache's mutex and each inode's cache_mu_ are leaves (the FileCache reads
// through the inode without them).
#ifndef HUSK_SENTRY_FSIMPL_GOFER_GOFER_FS_H_
#define HUSK_SENTRY_FSIMPL_GOFER_GOFER_FS_H_

#include <memory>

#include "gofer/client.h"
#include "sentry/vfs/vfs.h"

namespace husk::goferfs {

// The root inode of the tree the client serves (Attach).
Result<vfs::InodeRef> NewGoferRoot(std::shared_ptr<gofer::Client> client);

}  // namespace husk::goferfs

#endif  // HUSK_SENTRY_FSIMPL_GOFER_GOFER_FS_H_
