// Framing of the gofer protocol on a SOCK_SEQPACKET unix socket.
//
// One packet = one frame = a FrameHeader followed by `length` bytes of one
// serialized proto message (husk.gofer.proto.Request or Response), plus at
// most one file descriptor as SCM_RIGHTS. Shared by the gofer server and
// the client the sentry links; neither side trusts what it receives:
// truncated packets, bad headers and extra descriptors are framing errors,
// after which the connection is not used again.
#ifndef HUSK_GOFER_WIRE_H_
#define HUSK_GOFER_WIRE_H_

#include <sys/inotify.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/fd.h"

namespace husk::gofer {

// The events a Watch (proto WatchRequest) asks the host for: what changes a node, never what
// only reads or opens it (the sentry's own reads, opens and closes of
// donated fds would otherwise come back as events it cannot tell from the
// host's).
inline constexpr uint32_t kWatchMask = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM |
                                       IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF |
                                       IN_MOVE_SELF;

}  // namespace husk::gofer

namespace husk::gofer::wire {

inline constexpr uint32_t kMagic = 0x4b535548;  // "HUSK" in memory on little-endian
inline constexpr uint16_t kVersion = 1;
// A whole packet, header included.
inline constexpr size_t kMaxFrame = 64 * 1024;

enum class Kind : uint16_t {
  kRequest = 1,
  kResponse = 2,
};

struct FrameHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t kind;
  uint32_t length;  // payload bytes after the header
};
static_assert(sizeof(FrameHeader) == 12);

inline constexpr size_t kMaxPayload = kMaxFrame - sizeof(FrameHeader);

struct Frame {
  std::string payload;
  UniqueFd fd;  // the donated descriptor, if any
  // A descriptor was sent but could not be received (the receiver's
  // descriptor table is full); the frame is otherwise intact.
  bool fd_lost = false;
};

// Sends one frame. `fd` (if >= 0) travels as SCM_RIGHTS; the caller keeps
// ownership. Never raises SIGPIPE. InvalidArgument if the payload is too
// big; Unavailable if the peer is gone; Internal for other errors.
absl::Status Send(int sock, Kind kind, const std::string& payload, int fd = -1);

// Receives one frame of kind `want`. Returns std::nullopt when the peer has
// closed the connection (clean EOF). Received descriptors get
// FD_CLOEXEC (MSG_CMSG_CLOEXEC). A truncated packet (MSG_TRUNC/MSG_CTRUNC),
// more than one descriptor (but see Frame::fd_lost), any other ancillary data, a short or bad
// header or a length that disagrees with the packet is DataLoss; descriptors that came with a
// rejected frame are closed.
absl::StatusOr<std::optional<Frame>> Recv(int sock, Kind want);

}  // namespace husk::gofer::wire

#endif  // HUSK_GOFER_WIRE_H_
