// Host descriptors the sentry keeps for sandbox objects (host sockets, the
// host side of a unix socket on a volume) are watched by one thread of the
// sentry's, in a host epoll instance, edge-triggered: each change the host
// reports (data arriving, room freed, a hang-up) notifies the object's
// WaitQueue. Tasks and the sandbox's epoll then wait on that queue as on any
// sandbox object's, and an edge-triggered epoll hears each arrival.
#ifndef HUSK_SENTRY_NET_HOST_POLLER_H_
#define HUSK_SENTRY_NET_HOST_POLLER_H_

#include <cstdint>
#include <functional>

#include "base/result.h"
#include "sentry/vfs/waiter.h"

namespace husk::net {

// Starts notifying q of fd's events (POLLIN, POLLOUT, POLLRDHUP, POLLPRI,
// POLLERR, POLLHUP as the host reports them). The thread starts with the
// first watch. Errors: the host's (ENOMEM, ENOSPC past max_user_watches).
// `also`, if given, hears each report first (from the poller's thread,
// never after UnwatchHostFd returns).
Status WatchHostFd(int fd, WaitQueue* q, std::function<void(uint32_t)> also = nullptr);
// Stops it: once this returns, q hears nothing more of fd. Call before
// closing fd.
void UnwatchHostFd(int fd);

}  // namespace husk::net

#endif  // HUSK_SENTRY_NET_HOST_POLLER_H_
