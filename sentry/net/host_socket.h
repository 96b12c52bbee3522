// --network=host: inet sockets served by host sockets the sentry opens in
// the network namespace husk was started in (gVisor's hostinet). The
// application's calls still end in the sentry: arguments are checked and
// copied here, blocking waits are the sentry's (signals end them), and
// only an allowlist of options and ioctls whose values are plain bytes
// reaches the host. Never the default: the sentry's seccomp filter lets
// socket(2) and friends through only in this mode
// (sentry/boot/seccomp_policy.cc).
#ifndef HUSK_SENTRY_NET_HOST_SOCKET_H_
#define HUSK_SENTRY_NET_HOST_SOCKET_H_

#include <string>

#include "base/fd.h"
#include "sentry/net/socket.h"

namespace husk::net {

// Turns host networking on, before any task runs: from then on inet
// sockets are host sockets.
void EnableHostNetwork();
// At boot, before the seccomp filter (any mode): the sentry's descriptor
// limit is raised to its hard limit, and half of it is what host sockets
// (and unix names bound on volumes) may hold. Past it, ENFILE.
void SetUpHostDescriptors();
// One more host descriptor held for the sandbox (false: none left), and
// one less.
bool AcquireHostDescriptor();
void ReleaseHostDescriptor();
bool HostNetworkEnabled();

// socket(domain, type, protocol) on the host, for AF_INET and AF_INET6
// (SOCK_STREAM, or SOCK_DGRAM with UDP or ICMP echo): flags holds
// O_NONBLOCK for the sandbox's file; the host socket is always
// non-blocking, the sentry waits.
Result<vfs::FileRef> NewHostSocket(Task& t, int domain, int type, int protocol, int flags);

// A host socket the sentry already holds (an accepted connection), as a
// sandbox file.
Result<vfs::FileRef> WrapHostSocket(Task& t, UniqueFd fd, int domain, int type, int flags);

// A host unix socket the sentry holds (from the gofer: connected to a
// host process's listener, or accepted from a listener bound on a
// read-write volume), as a sandbox socket. local and peer are the names
// the sandbox sees; notify, when given, is woken of the socket's changes
// instead of its own queue (a sandbox socket that forwards to it). Sending
// descriptors is EOPNOTSUPP; SO_PEERCRED names no one the sandbox knows.
Result<std::shared_ptr<Socket>> NewHostUnixSocket(Task& t, UniqueFd fd, int type, int flags,
                                                  std::string local, std::string peer,
                                                  WaitQueue* notify = nullptr);

// The lines of /proc/net/tcp, tcp6, udp or udp6 for the host sockets of
// `type` and `domain`, numbered from `first`.
std::string ProcNetHostLines(int type, int domain, int first);

}  // namespace husk::net

#endif  // HUSK_SENTRY_NET_HOST_SOCKET_H_
