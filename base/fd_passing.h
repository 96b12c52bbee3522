// One packet on a unix socket with file descriptors beside it (SCM_RIGHTS):
// what the OCI runtime's monitor and the sentry's control channel exchange.
// (The gofer protocol frames its packets itself: gofer/wire.h.)
#ifndef HUSK_BASE_FD_PASSING_H_
#define HUSK_BASE_FD_PASSING_H_

#include <errno.h>
#include <sys/socket.h>

#include <cstring>
#include <string_view>
#include <vector>

#include "base/fd.h"

namespace husk {

// Sends `data` as one packet with `fds`; whether all of it went.
// MSG_NOSIGNAL is always added to `flags`.
inline bool SendWithFds(int sock, std::string_view data, const std::vector<int>& fds,
                        int flags = 0) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return sendmsg(sock, &msg, flags | MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
}

// Receives one packet of at most buf.size() bytes and up to `max_fds`
// descriptors (FD_CLOEXEC), retrying EINTR. Returns recvmsg's count (0 at
// end-of-file, -1 with errno on error); `*cut` says whether the packet or
// its descriptors did not fit (those that came are in `fds` all the same).
inline ssize_t RecvWithFds(int sock, std::vector<char>& buf, size_t max_fds,
                           std::vector<UniqueFd>* fds, bool* cut) {
  std::vector<char> control(CMSG_SPACE(sizeof(int) * max_fds));
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  fds->clear();
  *cut = false;
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds->emplace_back(got);
    }
  }
  *cut = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return n;
}

}  // namespace husk

#endif  // HUSK_BASE_FD_PASSING_H_
