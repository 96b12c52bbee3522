// overlay: the root filesystem of a sandbox. A read-only lower (the gofer's
// view of the container's root) under a writable upper (a tmpfs), merged the
// way Linux's overlayfs merges them: the upper wins, directories present in
// both are merged, a removed lower entry is hidden by a whiteout, and any
// change to a lower object first copies it up.
#ifndef HUSK_SENTRY_FSIMPL_OVERLAY_OVERLAY_H_
#define HUSK_SENTRY_FSIMPL_OVERLAY_OVERLAY_H_

#include "sentry/vfs/vfs.h"

namespace husk::overlay {

// A new overlay instance (its own st_dev). `upper_root` must be an empty
// writable directory used by nothing else (a fresh tmpfs root): whiteouts
// and opaque directories are kept in the overlay's memory, not in the upper.
// The upper root takes the lower root's mode, owner and times. `lower_root`
// may be null (the overlay is then just the upper).
vfs::InodeRef NewOverlayRoot(vfs::InodeRef upper_root, vfs::InodeRef lower_root);

}  // namespace husk::overlay

#endif  // HUSK_SENTRY_FSIMPL_OVERLAY_OVERLAY_H_
