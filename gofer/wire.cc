#include "gofer/wire.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"

namespace husk::gofer::wire {
namespace {

// Room for a few descriptors so that "more than one" is seen as such and not
// as MSG_CTRUNC; the kernel closes what does not fit.
constexpr int kMaxFdsSeen = 8;

std::string ErrnoText(int err) { return absl::StrCat(strerror(err), " (errno ", err, ")"); }

}  // namespace

absl::Status Send(int sock, Kind kind, const std::string& payload, int fd) {
  if (payload.size() > kMaxPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("gofer wire: payload of ", payload.size(), " bytes exceeds ", kMaxPayload));
  }
  FrameHeader h{kMagic, kVersion, static_cast<uint16_t>(kind),
                static_cast<uint32_t>(payload.size())};
  iovec iov[2] = {{&h, sizeof(h)}, {const_cast<char*>(payload.data()), payload.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = payload.empty() ? 1 : 2;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  const size_t total = sizeof(h) + payload.size();
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    std::string text = absl::StrCat("gofer wire: sendmsg failed: ", ErrnoText(err));
    if (err == EPIPE || err == ECONNRESET || err == ENOTCONN) return absl::UnavailableError(text);
    return absl::InternalError(text);
  }
  if (static_cast<size_t>(n) != total) {
    // SOCK_SEQPACKET sends whole records; a short count means a wrong socket type.
    return absl::InternalError(
        absl::StrCat("gofer wire: short send of ", n, " of ", total, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Frame>> Recv(int sock, Kind want) {
  auto buf = std::make_unique_for_overwrite<char[]>(kMaxFrame);
  iovec iov{buf.get(), kMaxFrame};
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFdsSeen * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    std::string text = absl::StrCat("gofer wire: recvmsg failed: ", ErrnoText(err));
    if (err == ECONNRESET) return absl::UnavailableError(text);
    return absl::InternalError(text);
  }

  // Take ownership of every descriptor first, so that each error path below
  // closes them.
  std::vector<UniqueFd> fds;
  bool other_cmsg = false;
  if (msg.msg_controllen > 0) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(0)) {
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          fds.emplace_back(fd);
        }
      } else {
        other_cmsg = true;
      }
    }
  }

  if (n == 0 && fds.empty()) return std::nullopt;  // peer closed
  // MSG_CTRUNC with no descriptor at all: the sender attached one but the
  // kernel could not install it here (our RLIMIT_NOFILE is reached). The
  // frame itself is whole; the caller fails the one call that wanted it.
  const bool fd_lost =
      (msg.msg_flags & MSG_CTRUNC) && !(msg.msg_flags & MSG_TRUNC) && fds.empty() && !other_cmsg;
  if ((msg.msg_flags & MSG_TRUNC) || ((msg.msg_flags & MSG_CTRUNC) && !fd_lost)) {
    return absl::DataLossError("gofer wire: truncated frame (over 64 KiB or too many fds)");
  }
  if (other_cmsg) return absl::DataLossError("gofer wire: unexpected ancillary data");
  if (fds.size() > 1) {
    return absl::DataLossError(absl::StrCat("gofer wire: frame carries ", fds.size(), " fds"));
  }
  if (static_cast<size_t>(n) < sizeof(FrameHeader)) {
    return absl::DataLossError(absl::StrCat("gofer wire: short frame of ", n, " bytes"));
  }
  FrameHeader h;
  memcpy(&h, buf.get(), sizeof(h));
  if (h.magic != kMagic) {
    return absl::DataLossError(absl::StrCat("gofer wire: bad magic 0x", absl::Hex(h.magic)));
  }
  if (h.version != kVersion) {
    return absl::DataLossError(absl::StrCat("gofer wire: unsupported version ", h.version));
  }
  if (h.kind != static_cast<uint16_t>(want)) {
    return absl::DataLossError(absl::StrCat("gofer wire: unexpected frame kind ", h.kind));
  }
  if (h.length != static_cast<size_t>(n) - sizeof(FrameHeader)) {
    return absl::DataLossError(absl::StrCat("gofer wire: header says ", h.length,
                                            " payload bytes, frame holds ",
                                            static_cast<size_t>(n) - sizeof(FrameHeader)));
  }
  Frame f;
  f.payload.assign(buf.get() + sizeof(FrameHeader), h.length);
  if (!fds.empty()) f.fd = std::move(fds[0]);
  f.fd_lost = fd_lost;
  return std::optional<Frame>(std::move(f));
}

}  // namespace husk::gofer::wire
