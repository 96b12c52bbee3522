// Netlink route sockets (rtnetlink(7)), enough for what programs ask about
// the sandbox's network: RTM_GETLINK, RTM_GETADDR and RTM_GETROUTE dumps
// (glibc's getifaddrs and if_nameindex, `ip addr`, `ip route`), answered
// from the sandbox's one interface, loopback (127.0.0.1/8 and ::1). Other
// requests are answered with NLMSG_ERROR EOPNOTSUPP; nothing can be
// changed. The host's netlink is never reached.
#ifndef HUSK_SENTRY_NET_NETLINK_H_
#define HUSK_SENTRY_NET_NETLINK_H_

#include "sentry/net/socket.h"

namespace husk::net {

// socket(AF_NETLINK, SOCK_RAW or SOCK_DGRAM, protocol): NETLINK_ROUTE only
// (EPROTONOSUPPORT for the other protocols).
Result<vfs::FileRef> NewNetlinkSocket(Task& t, int type, int protocol, int flags);

}  // namespace husk::net

#endif  // HUSK_SENTRY_NET_NETLINK_H_
