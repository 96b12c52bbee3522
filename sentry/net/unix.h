// Unix domain sockets (unix(7)): stream, datagram and seqpacket sockets,
// with names in the sandbox's filesystems, abstract names and autobind;
// SCM_RIGHTS (any sandbox file, sockets included) and SCM_CREDENTIALS;
// SO_PEERCRED and SO_PASSCRED; shutdown; Linux's errors and poll masks.
// Everything stays in the sentry: no host socket is involved.
//
// Locking: one mutex guards every unix socket's state (a connection joins
// two sockets, and one lock needs no order); it is taken under the big
// kernel lock. Nothing that may destroy a file (descriptors in flight, a
// socket's last reference) is let go while it is held.
#ifndef HUSK_SENTRY_NET_UNIX_H_
#define HUSK_SENTRY_NET_UNIX_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "sentry/net/socket.h"

namespace husk::netstack {
class Stack;
class Upcalls;
}  // namespace husk::netstack

namespace husk::net {

// What binding to and connecting to a path needs from the syscall layer:
// MakeNode creates the socket's node (mknod with S_IFSOCK and the caller's
// umask: EADDRINUSE if the name exists); FindNode resolves a path to a
// socket node the caller may write to (ENOENT, EACCES, ECONNREFUSED for
// another kind of file).
struct PathOps {
  // type: the socket's; *host gets the host socket bound at the name, where
  // the filesystem is a read-write volume's (vfs::Inode::BindHostSocket).
  Result<vfs::DentryRef> (*make_node)(Task& t, const std::string& path, int type,
                                      UniqueFd* host) = nullptr;
  Result<vfs::DentryRef> (*find_node)(Task& t, const std::string& path) = nullptr;
};
void SetUnixPathOps(const PathOps& ops);

// socket(AF_UNIX, type, 0): flags holds O_NONBLOCK.
Result<vfs::FileRef> NewUnixSocket(Task& t, int type, int flags);
// socketpair(AF_UNIX, type, 0).
Result<std::pair<vfs::FileRef, vfs::FileRef>> NewUnixPair(Task& t, int type, int flags);

// socket(AF_INET or AF_INET6, SOCK_STREAM or SOCK_DGRAM, 0): TCP and UDP
// over loopback, the only network a sandbox without one has. A connection
// joins two sockets in the sentry as a unix stream does (no segments: the
// packet-level stack comes with the sandbox's interfaces); addresses,
// ports (ephemeral ones from 32768 to 60999), SO_REUSEADDR/SO_REUSEPORT,
// IPV6_V6ONLY and v4-mapped peers, and the errors (ECONNREFUSED,
// EADDRINUSE, EADDRNOTAVAIL, ENETUNREACH) are Linux's.
// ping: an echo socket (SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6), as
// ping(8) opens without privileges: it sends echo requests whose
// identifier is its bound "port", and receives the replies.
Result<vfs::FileRef> NewInetSocket(Task& t, int domain, int type, int flags, bool ping = false);

// The sandbox's TCP/IP stack (--network=sandbox; sentry/net/netdev.h
// starts it). Inet sockets reach it for addresses beyond loopback:
// SocketUpcalls is what it calls back (connections to listeners, datagrams
// for bound sockets), InstallStack hands it to the sockets with the
// function that wakes its thread, and RunStack calls fn under the sockets'
// lock with the time, then runs the stack's timers and returns its next
// deadline (a monotonic time in nanoseconds; INT64_MAX: none).
netstack::Upcalls* SocketUpcalls();
void InstallStack(netstack::Stack* stack, void (*kick)());
int64_t RunStack(const std::function<void(netstack::Stack&, int64_t)>& fn);

// /proc/net/dev (the interfaces' counters), /proc/net/route (the stack's
// IPv4 routes) and /proc/net/snmp (the stack's counters), in Linux's
// columns (sentry/net/netdev.cc).
std::string ProcNetDev();
std::string ProcNetRoute();
std::string ProcNetSnmp();
std::string ProcNetNetstat();  // /proc/net/netstat: the TcpExt counters the stack keeps
std::string ProcNetIfInet6();

// /proc/net/unix: a header and one line per socket.
std::string ProcNetUnix();
// /proc/net/tcp, tcp6, udp, udp6: the inet sockets of `type` whose family is
// `domain`, in Linux's columns (addresses in hex, the state, the inode).
std::string ProcNetInet(int type, int domain);

}  // namespace husk::net

#endif  // HUSK_SENTRY_NET_UNIX_H_
