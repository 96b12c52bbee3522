// The gofer's request loop: answers the sentry's file requests for one
// served tree, one request at a time, on one SOCK_SEQPACKET connection.
//
// Paranoia, after Chromium's broker: every name is one validated component;
// every lookup is openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS) relative to an O_PATH fd the gofer already holds;
// symlinks are returned, never followed; only regular files are opened and
// donated (never a directory: the sentry could openat through it); a
// malformed or hostile request gets an errno reply and never crashes the
// gofer. See gofer/README.md for the protocol.
#ifndef HUSK_GOFER_SERVER_H_
#define HUSK_GOFER_SERVER_H_

#include <sys/types.h>

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "base/fd.h"

namespace husk::gofer {

// Live fids per connection; one more is ENFILE.
inline constexpr size_t kMaxFids = 100000;
// Names per Walk request (so that a response fits in one frame); more is
// EINVAL. The client splits longer walks.
inline constexpr size_t kMaxWalkNames = 256;

// Serves requests arriving on `sock` (a SOCK_SEQPACKET unix socket) against
// the tree under `root_dir` (a directory fd, O_PATH is enough) until the
// peer closes the connection: then returns OkStatus. In `read_only` mode
// opens for writing (or with O_TRUNC/O_CREAT) and every op that changes the
// tree fail with EROFS. New nodes get their modes through the process's
// umask, which ConfineGofer clears. A framing error (bad magic, bad length,
// truncated packet) or a failed send ends the
// connection with an error status; fids die with the connection.
absl::Status Serve(UniqueFd sock, UniqueFd root_dir, bool read_only);

// Filesystems below the root that are never served, by device number: a
// walk that crosses into one is EACCES, like one into any filesystem type
// that is not on the served list. ConfineGofer fills it from the mount
// table, for the types a magic number cannot tell apart (the host's
// devtmpfs reports tmpfs's). Set before Serve; the set only grows.
void RefuseDevices(const std::vector<dev_t>& devs);

}  // namespace husk::gofer

#endif  // HUSK_GOFER_SERVER_H_
