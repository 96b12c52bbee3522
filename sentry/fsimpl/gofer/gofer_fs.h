// The gofer filesystem: the sentry's client side of the gofer protocol. Each
// inode names a gofer fid; file data goes through the host fd the gofer
// donates on first use; mappings share the file's pages through a FileCache
// (sentry/memfile/file_cache.h).
//
// A read-only tree (the host root under the overlay, a :ro volume) never
// changes under the sandbox: attributes, children and link targets are
// cached for good. A writable tree (a read-write volume) writes through to
// the host: names change through the gofer's mutating ops, data through the
// donated descriptor, and the caches follow what the sandbox does. Stat of a
// file whose descriptor is open asks the host (fstat, no round trip), so
// sizes and times are current. Changes made by host processes meanwhile are
// seen by data reads and by stat of files in use; a name created or removed
// on the host while the sandbox holds its directory's entry cached is seen
// once that entry is evicted.
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

// The root inode of the tree the client serves (Attach). `writable`: the
// gofer serves the tree read-write (a read-write volume).
Result<vfs::InodeRef> NewGoferRoot(std::shared_ptr<gofer::Client> client, bool writable = false);

}  // namespace husk::goferfs

#endif  // HUSK_SENTRY_FSIMPL_GOFER_GOFER_FS_H_
