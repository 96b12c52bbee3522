// Conformance: AF_INET and AF_INET6 sockets over loopback (ip(7), ipv6(7), tcp(7), udp(7),
// socket(7)) as Linux behaves, the parts ordinary programs rely on. Covers creating them
// (SOCK_STREAM/SOCK_DGRAM with protocol 0 or named, mismatched protocols, SOCK_NONBLOCK/
// SOCK_CLOEXEC, SO_TYPE/SO_DOMAIN/SO_PROTOCOL, S_IFSOCK); names (the unbound name, ephemeral
// ports within ip_local_port_range, getsockname/getpeername and the 16- and 28-byte lengths
// they report, short buffers); bind (twice, EADDRINUSE against a listener with and without
// SO_REUSEADDR, SO_REUSEADDR over a TIME_WAIT, SO_REUSEPORT, non-local addresses, short
// lengths, wrong families, the wildcard, all of 127.0.0.0/8); dual stack (v4-mapped peers of
// an IPv6 wildcard listener, IPV6_V6ONLY); TCP (listen, accept, accept4, connect and their
// errors, reads and writes with MSG_PEEK/MSG_DONTWAIT/MSG_WAITALL/MSG_NOSIGNAL, EOF,
// shutdown, EPIPE and SIGPIPE, resets by unread data and by SO_LINGER 0, nonblocking connect,
// FIONREAD/SIOCINQ, poll masks); socket options (TCP_NODELAY, TCP_CORK, SO_KEEPALIVE,
// SO_REUSEADDR, SO_LINGER, SO_SNDBUF/SO_RCVBUF doubling, SO_ERROR, SO_ACCEPTCONN); UDP
// (sendto/recvfrom with the sender's address, boundaries, truncation and MSG_TRUNC, connected
// sockets and what they ignore, ECONNREFUSED from a port nobody holds, autobind on sendto and
// connect, zero-length datagrams, FIONREAD, AF_UNSPEC disconnect, the largest datagram); and
// ENETUNREACH for an address beyond loopback.
//
// The network namespace is assumed to hold only "lo", up (127.0.0.1/8 and ::1), as in husk's
// sandbox: a global check fails the binary at once, with a message, if 127.0.0.1 cannot be
// reached. Every port is one the test bound itself or an ephemeral one. Cases that change
// process state (signal masks and dispositions) or need a second process run in a forked
// child, which reports a failed check on stderr and exits 1; every child is waited for with
// a bound. Blocking calls that could hang wait through poll (or SO_RCVTIMEO) for at most
// kWaitMs; nothing asserts how long anything took.
//
// Relies on, beyond the start-up set in test_util.h: socket, bind, listen, accept, accept4,
// connect, getsockname, getpeername, getsockopt, setsockopt, sendto, recvfrom, recvmsg,
// shutdown, ioctl (FIONREAD/SIOCINQ), fcntl, poll, fork, wait4, kill, getpid, rt_sigaction,
// rt_sigprocmask, rt_sigpending, rt_sigtimedwait, clock_nanosleep, clock_gettime, and
// /proc/sys/net/ipv4/ip_local_port_range.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include "tests/syscalls/inet_util.h"
#include "tests/syscalls/socket_util.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

// A TCP socket bound to `at` and listening; *bound (if given) gets its name.
Fd Listener(const Addr& at, Addr* bound = nullptr, int type_flags = 0) {
  Fd fd = Socket(at.family(), SOCK_STREAM | type_flags);
  if (!fd.valid() || Bind(fd.get(), at) != 0 || listen(fd.get(), 16) != 0) {
    ADD_FAILURE() << "listener on " << at << ": " << ErrnoName(errno);
    return Fd();
  }
  if (bound != nullptr) *bound = SockName(fd.get());
  return fd;
}

// A UDP socket bound to `at`; *bound (if given) gets its name.
Fd UdpSocket(const Addr& at, Addr* bound = nullptr) {
  Fd fd = Socket(at.family(), SOCK_DGRAM);
  if (!fd.valid() || Bind(fd.get(), at) != 0) {
    ADD_FAILURE() << "udp socket on " << at << ": " << ErrnoName(errno);
    return Fd();
  }
  if (bound != nullptr) *bound = SockName(fd.get());
  return fd;
}

// Waits up to kWaitMs for a connection on `listener`, then accept4s it with `flags`.
Fd AcceptSoon(int listener, int flags = 0, Addr* from = nullptr) {
  if ((Revents(listener, POLLIN, kWaitMs) & POLLIN) == 0) {
    ADD_FAILURE() << "no connection to accept";
    return Fd();
  }
  Addr ignored;
  Addr* a = from != nullptr ? from : &ignored;
  a->len = sizeof(a->ss);
  Fd fd(accept4(listener, a->get(), &a->len, flags));
  EXPECT_TRUE(fd.valid()) << "accept4: " << ErrnoName(errno);
  return fd;
}

// Both ends of a TCP connection over loopback: client connected, server accepted.
struct Conn {
  Fd client, server;
};

Conn Connected(int family) {
  Conn c;
  Addr a;
  Fd listener = Listener(Loopback(family), &a);
  if (!listener.valid()) return c;
  c.client = Socket(family, SOCK_STREAM);
  if (Connect(c.client.get(), a) != 0) {
    ADD_FAILURE() << "connect to " << a << ": " << ErrnoName(errno);
    return c;
  }
  c.server = AcceptSoon(listener.get());
  return c;
}

// send(2) of all of `s` in one call; MSG_NOSIGNAL so that a failing test never dies of SIGPIPE.
bool Send(int fd, std::string_view s, int flags = MSG_NOSIGNAL) {
  return send(fd, s.data(), s.size(), flags) == static_cast<ssize_t>(s.size());
}

int Queued(int fd, unsigned long request = FIONREAD) {
  int n = -1;
  return ioctl(fd, request, &n) == 0 ? n : -1000 - errno;
}

// Waits up to kWaitMs for FIONREAD on `fd` to reach `n`; returns the last count seen.
int QueuedSoon(int fd, int n) {
  const int64_t end = NowMs() + kWaitMs;
  int q = Queued(fd);
  while (q >= 0 && q < n && NowMs() < end) {
    timespec ts{0, 1000 * 1000};
    nanosleep(&ts, nullptr);
    q = Queued(fd);
  }
  return q;
}

// What one recvfrom(2) brought.
struct Datagram {
  ssize_t n = -1;
  int err = 0;
  std::string data;
  Addr from;
};

// One recvfrom into a `max`-byte buffer; waits up to kWaitMs for a datagram first unless
// `flags` has MSG_DONTWAIT.
Datagram RecvFrom(int fd, size_t max = 4096, int flags = 0) {
  Datagram d;
  if (!(flags & MSG_DONTWAIT) && (Revents(fd, POLLIN, kWaitMs) & POLLIN) == 0) {
    d.err = ETIMEDOUT;
    return d;
  }
  std::string buf(max, '\0');
  d.from.len = sizeof(d.from.ss);
  d.n = recvfrom(fd, buf.data(), max, flags, d.from.get(), &d.from.len);
  if (d.n < 0) {
    d.err = errno;
    return d;
  }
  d.data.assign(buf.data(), std::min<size_t>(d.n, max));
  return d;
}

ssize_t SendTo(int fd, std::string_view s, const Addr& to) {
  return sendto(fd, s.data(), s.size(), MSG_NOSIGNAL, to.get(), to.len);
}

// The range in /proc/sys/net/ipv4/ip_local_port_range (which IPv6 uses too).
std::pair<int, int> LocalPortRange() {
  int lo = -1, hi = -1;
  const std::string s = ReadFile("/proc/sys/net/ipv4/ip_local_port_range");
  if (sscanf(s.c_str(), "%d %d", &lo, &hi) != 2) ADD_FAILURE() << "ip_local_port_range: " << s;
  return {lo, hi};
}

bool IsEphemeral(int port) {
  const auto [lo, hi] = LocalPortRange();
  return port >= lo && port <= hi;
}

bool BlockSignal(int sig) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  return sigprocmask(SIG_BLOCK, &set, nullptr) == 0;
}

bool Pending(int sig) {
  sigset_t set;
  return sigpending(&set) == 0 && sigismember(&set, sig) == 1;
}

// Writes "x" until a write fails (at most kWaitMs), for a peer that has gone: the first
// writes may still succeed, until the peer's reset comes back. Returns the failing call's
// errno, or 0 if every write succeeded.
int WriteUntilError(int fd, int flags) {
  const int64_t end = NowMs() + kWaitMs;
  while (NowMs() < end) {
    if (send(fd, "x", 1, flags) < 0) return errno;
    timespec ts{0, 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  return 0;
}

// Before any test: 127.0.0.1 must be reachable, or every case would fail for that one reason
// (a fresh network namespace has "lo" down: connect fails ENETUNREACH).
class LoopbackEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    Fd fd(socket(AF_INET, SOCK_DGRAM, 0));
    ASSERT_TRUE(fd.valid()) << "socket(AF_INET, SOCK_DGRAM): " << ErrnoName(errno);
    ASSERT_EQ(Bind(fd.get(), Loopback(AF_INET)), 0) << ErrnoName(errno);
    const Addr self = SockName(fd.get());
    ASSERT_EQ(Connect(fd.get(), self), 0)
        << "connect to " << self << ": " << ErrnoName(errno)
        << ": loopback is not usable in this network namespace (is \"lo\" up?)";
  }
};

[[maybe_unused]] ::testing::Environment* const kLoopbackEnvironment =
    ::testing::AddGlobalTestEnvironment(new LoopbackEnvironment);

// ---------------------------------------------------------------------------------------
// Creating sockets.

// Protocol 0 means TCP for SOCK_STREAM and UDP for SOCK_DGRAM.
TEST(InetCreateTest, EachFamilyAndTypeMakesASocketThatSaysSo) {
  for (int family : kFamilies) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      Fd fd = Socket(family, type);
      ASSERT_TRUE(fd.valid()) << FamilyName(family) << " " << type << ": " << ErrnoName(errno);
      EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_TYPE), type);
      EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_DOMAIN), family);
      EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_PROTOCOL),
                type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP);
      struct stat st;
      ASSERT_OK(fstat(fd.get(), &st));
      EXPECT_EQ(st.st_mode & S_IFMT, static_cast<mode_t>(S_IFSOCK)) << std::oct << st.st_mode;
      // They are read-only.
      EXPECT_ERRNO(SetInt(fd.get(), SOL_SOCKET, SO_PROTOCOL, 0), ENOPROTOOPT);
      // The protocol may be named instead of 0.
      const int protocol = type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
      Fd named = Socket(family, type, protocol);
      ASSERT_TRUE(named.valid()) << ErrnoName(errno);
      EXPECT_EQ(GetInt(named.get(), SOL_SOCKET, SO_PROTOCOL), protocol);
    }
  }
}

TEST(InetCreateTest, AMismatchedProtocolFailsEprotonosupport) {
  for (int family : kFamilies) {
    EXPECT_ERRNO(socket(family, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
    EXPECT_ERRNO(socket(family, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT);
  }
}

TEST(InetCreateTest, SockNonblockAndSockCloexecSetTheFlags) {
  for (int family : kFamilies) {
    Fd plain = Socket(family, SOCK_STREAM);
    ASSERT_TRUE(plain.valid());
    EXPECT_EQ(fcntl(plain.get(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(fcntl(plain.get(), F_GETFD), 0);
    Fd both = Socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
    ASSERT_TRUE(both.valid());
    EXPECT_NE(fcntl(both.get(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(fcntl(both.get(), F_GETFD), FD_CLOEXEC);
    EXPECT_EQ(GetInt(both.get(), SOL_SOCKET, SO_TYPE), SOCK_DGRAM);  // flags are not the type
    ASSERT_OK(Bind(both.get(), Loopback(family)));
    EXPECT_EQ(Recv(both.get()), "[EAGAIN]");  // O_NONBLOCK, not just MSG_DONTWAIT
  }
}

// ---------------------------------------------------------------------------------------
// Names.

// Before bind: the wildcard address and port 0, at the family's full length.
TEST(InetNameTest, AnUnboundSocketIsNamedTheWildcardWithPortZero) {
  for (int family : kFamilies) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      Fd fd = Socket(family, type);
      EXPECT_EQ(SockName(fd.get()), Wildcard(family)) << FamilyName(family);
      EXPECT_ERRNO(GetPeerName(fd.get()), ENOTCONN);
    }
  }
}

TEST(InetNameTest, BindingPortZeroPicksAnEphemeralPort) {
  const auto [lo, hi] = LocalPortRange();
  ASSERT_GT(lo, 0);
  ASSERT_GE(hi, lo);
  for (int family : kFamilies) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      Fd fd = Socket(family, type);
      ASSERT_OK(Bind(fd.get(), Loopback(family)));
      const Addr a = SockName(fd.get());
      EXPECT_EQ(a.len, family == AF_INET ? 16u : 28u);
      EXPECT_EQ(a.ip(), Loopback(family).ip());
      EXPECT_GE(a.port(), lo) << a;
      EXPECT_LE(a.port(), hi) << a;
    }
  }
}

// A getsockname buffer shorter than the name gets its first bytes and the full length.
TEST(InetNameTest, AShortGetsocknameBufferIsTruncated) {
  Fd fd = Socket(AF_INET6, SOCK_DGRAM);
  ASSERT_OK(Bind(fd.get(), Loopback(AF_INET6)));
  const Addr a = SockName(fd.get());
  unsigned char buf[sizeof(sockaddr_in6)];
  memset(buf, 0xee, sizeof(buf));
  socklen_t len = 4;
  ASSERT_OK(getsockname(fd.get(), reinterpret_cast<sockaddr*>(buf), &len));
  EXPECT_EQ(len, sizeof(sockaddr_in6));
  EXPECT_EQ(memcmp(buf, &a.ss, 4), 0);  // the family and the port
  EXPECT_EQ(buf[4], 0xee);
}

// ---------------------------------------------------------------------------------------
// bind.

TEST(InetBindTest, BindingTwiceFailsEinval) {
  for (int family : kFamilies) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      Fd fd = Socket(family, type);
      ASSERT_OK(Bind(fd.get(), Loopback(family)));
      const Addr first = SockName(fd.get());
      EXPECT_ERRNO(Bind(fd.get(), Loopback(family)), EINVAL);
      EXPECT_ERRNO(Bind(fd.get(), first), EINVAL);
      EXPECT_EQ(SockName(fd.get()), first);
    }
  }
}

// Whatever SO_REUSEADDR says, a port with a listener on it is taken, for the same address
// and for the wildcard.
TEST(InetBindTest, APortAListenerHoldsFailsEaddrinuseEvenWithReuseaddr) {
  for (int family : kFamilies) {
    for (bool reuse : {false, true}) {
      Fd listener = Socket(family, SOCK_STREAM);
      ASSERT_OK(SetInt(listener.get(), SOL_SOCKET, SO_REUSEADDR, reuse));
      ASSERT_OK(Bind(listener.get(), Loopback(family)));
      ASSERT_OK(listen(listener.get(), 4));
      const int port = SockName(listener.get()).port();
      Fd other = Socket(family, SOCK_STREAM);
      ASSERT_OK(SetInt(other.get(), SOL_SOCKET, SO_REUSEADDR, reuse));
      EXPECT_ERRNO(Bind(other.get(), Loopback(family, port)), EADDRINUSE);
      EXPECT_ERRNO(Bind(other.get(), Wildcard(family, port)), EADDRINUSE);
      EXPECT_EQ(SockName(other.get()).port(), 0);  // still unbound
    }
  }
}

// Two sockets with SO_REUSEADDR may both bind one port while neither listens; then only one
// of them may listen.
TEST(InetBindTest, ReuseaddrSocketsShareAPortUntilOneListens) {
  Fd a = Socket(AF_INET, SOCK_STREAM), b = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(SetInt(a.get(), SOL_SOCKET, SO_REUSEADDR, 1));
  ASSERT_OK(SetInt(b.get(), SOL_SOCKET, SO_REUSEADDR, 1));
  ASSERT_OK(Bind(a.get(), Loopback(AF_INET)));
  const int port = SockName(a.get()).port();
  ASSERT_EQ(Bind(b.get(), Loopback(AF_INET, port)), 0) << ErrnoName(errno);
  ASSERT_OK(listen(a.get(), 4));
  EXPECT_ERRNO(listen(b.get(), 4), EADDRINUSE);
  // Without SO_REUSEADDR a bound port is taken even with no listener.
  Fd c = Socket(AF_INET, SOCK_STREAM);
  Fd d = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(Bind(c.get(), Loopback(AF_INET)));
  EXPECT_ERRNO(Bind(d.get(), Loopback(AF_INET, SockName(c.get()).port())), EADDRINUSE);
}

// A port whose socket was only bound is free as soon as that socket closes.
TEST(InetBindTest, AClosedSocketsPortIsFreeAgain) {
  for (int family : kFamilies) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      Fd first = Socket(family, type);
      ASSERT_OK(Bind(first.get(), Loopback(family)));
      const int port = SockName(first.get()).port();
      first.Reset();
      Fd second = Socket(family, type);
      EXPECT_EQ(Bind(second.get(), Loopback(family, port)), 0) << ErrnoName(errno);
    }
  }
}

// The side that closes a connection first keeps its port in TIME_WAIT: a new socket cannot
// bind it, unless both it and the old listener (whose connections inherit the flag) set
// SO_REUSEADDR, as restarted servers do.
TEST(InetBindTest, ReuseaddrRebindsAPortLeftInTimeWait) {
  for (int family : kFamilies) {
    Fd listener = Socket(family, SOCK_STREAM);
    ASSERT_OK(SetInt(listener.get(), SOL_SOCKET, SO_REUSEADDR, 1));
    ASSERT_OK(Bind(listener.get(), Loopback(family)));
    ASSERT_OK(listen(listener.get(), 4));
    const Addr a = SockName(listener.get());
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    Fd server = AcceptSoon(listener.get());
    server.Reset();  // the server closes first
    EXPECT_EQ(RecvSoon(client.get()), "[eof]");
    client.Reset();
    listener.Reset();
    Fd plain = Socket(family, SOCK_STREAM);
    EXPECT_ERRNO(Bind(plain.get(), a), EADDRINUSE);
    Fd reuse = Socket(family, SOCK_STREAM);
    ASSERT_OK(SetInt(reuse.get(), SOL_SOCKET, SO_REUSEADDR, 1));
    ASSERT_EQ(Bind(reuse.get(), a), 0) << ErrnoName(errno);
    ASSERT_OK(listen(reuse.get(), 4));
    Fd again = Socket(family, SOCK_STREAM);
    EXPECT_EQ(Connect(again.get(), a), 0) << ErrnoName(errno);
  }
}

// With SO_REUSEPORT set on both first, two listeners share a port and each connection goes
// to one of them.
TEST(InetBindTest, ReuseportLetsTwoListenersShareAPort) {
  for (int family : kFamilies) {
    Fd l1 = Socket(family, SOCK_STREAM), l2 = Socket(family, SOCK_STREAM);
    ASSERT_OK(SetInt(l1.get(), SOL_SOCKET, SO_REUSEPORT, 1));
    ASSERT_OK(SetInt(l2.get(), SOL_SOCKET, SO_REUSEPORT, 1));
    EXPECT_EQ(GetInt(l1.get(), SOL_SOCKET, SO_REUSEPORT), 1);
    ASSERT_OK(Bind(l1.get(), Loopback(family)));
    const Addr a = SockName(l1.get());
    ASSERT_EQ(Bind(l2.get(), a), 0) << ErrnoName(errno);
    ASSERT_OK(listen(l1.get(), 4));
    ASSERT_EQ(listen(l2.get(), 4), 0) << ErrnoName(errno);
    // A third socket without the option is refused.
    Fd l3 = Socket(family, SOCK_STREAM);
    EXPECT_ERRNO(Bind(l3.get(), a), EADDRINUSE);
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    pollfd pfds[2] = {{l1.get(), POLLIN, 0}, {l2.get(), POLLIN, 0}};
    ASSERT_EQ(poll(pfds, 2, kWaitMs), 1);
    Fd server(accept(pfds[0].revents ? l1.get() : l2.get(), nullptr, nullptr));
    ASSERT_TRUE(server.valid()) << ErrnoName(errno);
    EXPECT_EQ(SockName(server.get()), a);
  }
}

// UDP sockets with SO_REUSEADDR share a port; without it the second bind fails.
TEST(InetBindTest, UdpSocketsShareAPortOnlyWithReuseaddr) {
  for (int family : kFamilies) {
    Fd a = Socket(family, SOCK_DGRAM), b = Socket(family, SOCK_DGRAM);
    ASSERT_OK(Bind(a.get(), Loopback(family)));
    EXPECT_ERRNO(Bind(b.get(), SockName(a.get())), EADDRINUSE);
    Fd c = Socket(family, SOCK_DGRAM), d = Socket(family, SOCK_DGRAM);
    ASSERT_OK(SetInt(c.get(), SOL_SOCKET, SO_REUSEADDR, 1));
    ASSERT_OK(SetInt(d.get(), SOL_SOCKET, SO_REUSEADDR, 1));
    ASSERT_OK(Bind(c.get(), Loopback(family)));
    EXPECT_EQ(Bind(d.get(), SockName(c.get())), 0) << ErrnoName(errno);
  }
}

// A UDP socket may bind the port of a TCP listener. (A few tries: a UDP socket outside the
// test might hold the port picked for TCP.)
TEST(InetBindTest, TcpAndUdpPortsAreSeparate) {
  for (int family : kFamilies) {
    bool bound = false;
    for (int attempt = 0; attempt < 10 && !bound; attempt++) {
      Addr a;
      Fd listener = Listener(Loopback(family), &a);
      Fd udp = Socket(family, SOCK_DGRAM);
      bound = Bind(udp.get(), a) == 0;
      EXPECT_TRUE(bound || errno == EADDRINUSE) << ErrnoName(errno);
    }
    EXPECT_TRUE(bound) << FamilyName(family);
  }
}

TEST(InetBindTest, ANonLocalAddressFailsEaddrnotavail) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    Fd v4 = Socket(AF_INET, type);
    EXPECT_ERRNO(Bind(v4.get(), MakeAddr(AF_INET, "192.0.2.1")), EADDRNOTAVAIL);
    Fd v6 = Socket(AF_INET6, type);
    EXPECT_ERRNO(Bind(v6.get(), MakeAddr(AF_INET6, "2001:db8::1")), EADDRNOTAVAIL);
    // The failed binds left the sockets unbound.
    EXPECT_EQ(Bind(v4.get(), Loopback(AF_INET)), 0) << ErrnoName(errno);
    EXPECT_EQ(Bind(v6.get(), Loopback(AF_INET6)), 0) << ErrnoName(errno);
  }
}

// An AF_INET address must be all of sockaddr_in (16 bytes); an AF_INET6 one at least the
// 24 bytes of RFC 2133's sockaddr_in6, which had no sin6_scope_id.
TEST(InetBindTest, AShortAddrlenFailsEinval) {
  Fd v4 = Socket(AF_INET, SOCK_STREAM);
  Addr a = Loopback(AF_INET);
  EXPECT_ERRNO(bind(v4.get(), a.get(), sizeof(sockaddr_in) - 1), EINVAL);
  EXPECT_ERRNO(bind(v4.get(), a.get(), 0), EINVAL);
  EXPECT_ERRNO(connect(v4.get(), a.get(), sizeof(sockaddr_in) - 1), EINVAL);
  Fd v6 = Socket(AF_INET6, SOCK_DGRAM);
  Addr b = Loopback(AF_INET6);
  EXPECT_ERRNO(bind(v6.get(), b.get(), 23), EINVAL);
  EXPECT_ERRNO(bind(v6.get(), b.get(), sizeof(sockaddr_in)), EINVAL);
  EXPECT_EQ(bind(v6.get(), b.get(), 24), 0) << ErrnoName(errno);
  EXPECT_EQ(SockName(v6.get()).len, sizeof(sockaddr_in6));
}

// An address of the other family, at its full length, is EAFNOSUPPORT (an IPv6 socket checks
// the length first, so a 16-byte sockaddr_in is EINVAL there).
TEST(InetBindTest, AnAddressOfTheOtherFamilyFailsEafnosupport) {
  Fd v4 = Socket(AF_INET, SOCK_STREAM);
  EXPECT_ERRNO(Bind(v4.get(), Loopback(AF_INET6)), EAFNOSUPPORT);
  EXPECT_ERRNO(Connect(v4.get(), Loopback(AF_INET6, 9)), EAFNOSUPPORT);
  Fd u4 = Socket(AF_INET, SOCK_DGRAM);
  EXPECT_ERRNO(Bind(u4.get(), Loopback(AF_INET6)), EAFNOSUPPORT);
  EXPECT_ERRNO(SendTo(u4.get(), "x", Loopback(AF_INET6, 9)), EAFNOSUPPORT);
  Fd v6 = Socket(AF_INET6, SOCK_STREAM);
  EXPECT_ERRNO(Bind(v6.get(), Loopback(AF_INET)), EINVAL);
  Addr padded = Loopback(AF_INET);
  padded.len = sizeof(sockaddr_in6);
  EXPECT_ERRNO(Bind(v6.get(), padded), EAFNOSUPPORT);
  EXPECT_EQ(SockName(v4.get()).port(), 0);
  EXPECT_EQ(SockName(v6.get()).port(), 0);
}

// For old programs, AF_INET's bind takes AF_UNSPEC as AF_INET when the address is
// INADDR_ANY; with any other address it is EAFNOSUPPORT.
TEST(InetBindTest, AfUnspecWithInaddrAnyBindsAsAfInet) {
  Fd fd = Socket(AF_INET, SOCK_DGRAM);
  Addr a = Loopback(AF_INET);
  a.v4().sin_family = AF_UNSPEC;
  EXPECT_ERRNO(Bind(fd.get(), a), EAFNOSUPPORT);
  a = Wildcard(AF_INET);
  a.v4().sin_family = AF_UNSPEC;
  ASSERT_EQ(Bind(fd.get(), a), 0) << ErrnoName(errno);
  const Addr got = SockName(fd.get());
  EXPECT_EQ(got.family(), AF_INET);
  EXPECT_TRUE(IsEphemeral(got.port())) << got;
}

// A listener on the wildcard is reached through 127.0.0.1, and the accepted socket is named
// after the address the client used, not the wildcard.
TEST(InetBindTest, AWildcardListenerIsReachedThroughLoopback) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Wildcard(family), &a);
    EXPECT_EQ(a.ip(), Wildcard(family).ip());
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), Loopback(family, a.port())));
    Fd server = AcceptSoon(listener.get());
    ASSERT_TRUE(server.valid());
    EXPECT_EQ(SockName(server.get()), Loopback(family, a.port()));
    ASSERT_TRUE(Send(client.get(), "wild"));
    EXPECT_EQ(RecvSoon(server.get()), "wild");
  }
}

// All of 127.0.0.0/8 is local: a listener may bind 127.0.0.2 and is reached there, and only
// there.
TEST(InetBindTest, EveryAddressIn127Slash8IsLocal) {
  Addr a;
  Fd listener = Listener(MakeAddr(AF_INET, "127.0.0.2"), &a);
  ASSERT_TRUE(listener.valid());
  EXPECT_EQ(a.ip(), "127.0.0.2");
  Fd other = Socket(AF_INET, SOCK_STREAM);
  EXPECT_ERRNO(Connect(other.get(), Loopback(AF_INET, a.port())), ECONNREFUSED);
  Fd client = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(Connect(client.get(), a));
  Fd server = AcceptSoon(listener.get());
  ASSERT_TRUE(server.valid());
  EXPECT_EQ(SockName(server.get()), a);
  EXPECT_EQ(PeerName(server.get()), SockName(client.get()));
}

// ---------------------------------------------------------------------------------------
// IPv6 and IPv4 together.

// With IPV6_V6ONLY off (the default), an IPv6 listener on :: takes IPv4 connections too; both
// of the accepted socket's names are IPv4-mapped (::ffff:127.0.0.1), 28 bytes long.
TEST(InetDualStackTest, AnIpv6WildcardListenerAcceptsIpv4AsMappedAddresses) {
  Addr a;
  Fd listener = Listener(Wildcard(AF_INET6), &a);
  EXPECT_EQ(GetInt(listener.get(), IPPROTO_IPV6, IPV6_V6ONLY), 0);
  Fd client = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(Connect(client.get(), Loopback(AF_INET, a.port())));
  Addr from;
  Fd server = AcceptSoon(listener.get(), 0, &from);
  ASSERT_TRUE(server.valid());
  const Addr client_name = SockName(client.get());
  EXPECT_EQ(from, MakeAddr(AF_INET6, "::ffff:127.0.0.1", client_name.port()));
  EXPECT_EQ(PeerName(server.get()), from);
  EXPECT_EQ(SockName(server.get()), MakeAddr(AF_INET6, "::ffff:127.0.0.1", a.port()));
  EXPECT_EQ(PeerName(client.get()), Loopback(AF_INET, a.port()));
  ASSERT_TRUE(Send(client.get(), "v4"));
  EXPECT_EQ(RecvSoon(server.get()), "v4");
  ASSERT_TRUE(Send(server.get(), "v6"));
  EXPECT_EQ(RecvSoon(client.get()), "v6");
}

TEST(InetDualStackTest, WithV6onlyAnIpv6WildcardListenerRefusesIpv4) {
  Fd listener = Socket(AF_INET6, SOCK_STREAM);
  ASSERT_OK(SetInt(listener.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1));
  EXPECT_EQ(GetInt(listener.get(), IPPROTO_IPV6, IPV6_V6ONLY), 1);
  ASSERT_OK(Bind(listener.get(), Wildcard(AF_INET6)));
  ASSERT_OK(listen(listener.get(), 4));
  const int port = SockName(listener.get()).port();
  Fd v4 = Socket(AF_INET, SOCK_STREAM);
  EXPECT_ERRNO(Connect(v4.get(), Loopback(AF_INET, port)), ECONNREFUSED);
  Fd v6 = Socket(AF_INET6, SOCK_STREAM);
  EXPECT_EQ(Connect(v6.get(), Loopback(AF_INET6, port)), 0) << ErrnoName(errno);
}

// IPV6_V6ONLY may be changed only before bind.
TEST(InetDualStackTest, V6onlyCannotChangeOnceBound) {
  Fd fd = Socket(AF_INET6, SOCK_DGRAM);
  ASSERT_OK(Bind(fd.get(), Wildcard(AF_INET6)));
  EXPECT_ERRNO(SetInt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1), EINVAL);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY), 0);
  // And IPv6 options do not exist on IPv4 sockets.
  Fd v4 = Socket(AF_INET, SOCK_DGRAM);
  EXPECT_ERRNO(SetInt(v4.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1), ENOPROTOOPT);
}

// A dual-stack socket on [::]:P holds 0.0.0.0:P too; a V6ONLY one leaves it free. (The
// dual-stack socket's port is free in both families, so the V6ONLY one reuses it once it is
// closed: another ephemeral port might be held in IPv4 by a TIME_WAIT left from other cases.)
TEST(InetDualStackTest, OnlyAV6onlySocketLeavesTheIpv4PortFree) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    Fd dual = Socket(AF_INET6, type);
    ASSERT_OK(Bind(dual.get(), Wildcard(AF_INET6)));
    const int port = SockName(dual.get()).port();
    Fd v4 = Socket(AF_INET, type);
    EXPECT_ERRNO(Bind(v4.get(), Wildcard(AF_INET, port)), EADDRINUSE);
    dual.Reset();
    Fd only = Socket(AF_INET6, type);
    ASSERT_OK(SetInt(only.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1));
    ASSERT_OK(Bind(only.get(), Wildcard(AF_INET6, port)));
    EXPECT_EQ(Bind(v4.get(), Wildcard(AF_INET, port)), 0) << ErrnoName(errno);
  }
}

// An IPv6 socket reaches an IPv4 listener through ::ffff:127.0.0.1, unless it is V6ONLY
// (ENETUNREACH).
TEST(InetDualStackTest, AnIpv6SocketReachesIpv4ThroughAMappedAddress) {
  Addr a;
  Fd listener = Listener(Loopback(AF_INET), &a);
  const Addr mapped = MakeAddr(AF_INET6, "::ffff:127.0.0.1", a.port());
  Fd client = Socket(AF_INET6, SOCK_STREAM);
  ASSERT_EQ(Connect(client.get(), mapped), 0) << ErrnoName(errno);
  EXPECT_EQ(PeerName(client.get()), mapped);
  const Addr mine = SockName(client.get());
  EXPECT_EQ(mine.ip(), "::ffff:127.0.0.1");
  Fd server = AcceptSoon(listener.get());
  ASSERT_TRUE(server.valid());
  EXPECT_EQ(PeerName(server.get()), Loopback(AF_INET, mine.port()));
  Fd only = Socket(AF_INET6, SOCK_STREAM);
  ASSERT_OK(SetInt(only.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1));
  EXPECT_ERRNO(Connect(only.get(), mapped), ENETUNREACH);
}

// A dual-stack UDP socket hears IPv4 senders as mapped addresses and answers them there.
TEST(InetDualStackTest, UdpTalksToIpv4ThroughMappedAddresses) {
  Addr a6;
  Fd six = UdpSocket(Wildcard(AF_INET6), &a6);
  Addr a4;
  Fd four = UdpSocket(Loopback(AF_INET), &a4);
  ASSERT_EQ(SendTo(four.get(), "to six", Loopback(AF_INET, a6.port())), 6) << ErrnoName(errno);
  const Datagram d = RecvFrom(six.get());
  EXPECT_EQ(d.data, "to six") << ErrnoName(d.err);
  EXPECT_EQ(d.from, MakeAddr(AF_INET6, "::ffff:127.0.0.1", a4.port()));
  ASSERT_EQ(SendTo(six.get(), "to four", d.from), 7) << ErrnoName(errno);
  const Datagram back = RecvFrom(four.get());
  EXPECT_EQ(back.data, "to four") << ErrnoName(back.err);
  EXPECT_EQ(back.from, Loopback(AF_INET, a6.port()));
}

// ---------------------------------------------------------------------------------------
// TCP connections.

TEST(InetTcpTest, ConnectAndAcceptCarryDataBothWays) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    Fd server(accept(listener.get(), nullptr, nullptr));
    ASSERT_TRUE(server.valid()) << ErrnoName(errno);
    EXPECT_EQ(fcntl(server.get(), F_GETFD), 0);
    EXPECT_EQ(fcntl(server.get(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(GetInt(server.get(), SOL_SOCKET, SO_DOMAIN), family);
    ASSERT_TRUE(Send(client.get(), "request"));
    EXPECT_EQ(RecvSoon(server.get()), "request") << FamilyName(family);
    ASSERT_EQ(write(server.get(), "response", 8), 8);
    char buf[16] = {};
    ASSERT_EQ(Revents(client.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(read(client.get(), buf, sizeof(buf)), 8);
    EXPECT_STREQ(buf, "response");
  }
}

// A port with a socket bound but not listening refuses; once it listens, the same client
// socket may try again and connect.
TEST(InetTcpTest, ConnectingToAPortWithoutAListenerFailsEconnrefused) {
  for (int family : kFamilies) {
    Fd holder = Socket(family, SOCK_STREAM);
    ASSERT_OK(Bind(holder.get(), Loopback(family)));
    const Addr a = SockName(holder.get());
    Fd client = Socket(family, SOCK_STREAM);
    EXPECT_ERRNO(Connect(client.get(), a), ECONNREFUSED);
    EXPECT_EQ(GetInt(client.get(), SOL_SOCKET, SO_ERROR), 0);  // connect consumed it
    EXPECT_ERRNO(GetPeerName(client.get()), ENOTCONN);
    ASSERT_OK(listen(holder.get(), 4));
    EXPECT_EQ(Connect(client.get(), a), 0) << ErrnoName(errno);
  }
}

// The accepted socket's name is the address the client connected to; its peer (also what
// accept reports) is the client's name, an ephemeral port on the loopback address.
TEST(InetTcpTest, BothEndsAgreeOnTheirNames) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    Fd client = Socket(family, SOCK_STREAM);
    EXPECT_EQ(SockName(client.get()).port(), 0);
    ASSERT_OK(Connect(client.get(), a));
    const Addr client_name = SockName(client.get());
    EXPECT_EQ(client_name.ip(), Loopback(family).ip());
    EXPECT_TRUE(IsEphemeral(client_name.port())) << client_name;
    EXPECT_NE(client_name.port(), a.port());
    Addr from;
    Fd server = AcceptSoon(listener.get(), 0, &from);
    ASSERT_TRUE(server.valid());
    EXPECT_EQ(from, client_name);
    EXPECT_EQ(PeerName(server.get()), client_name);
    EXPECT_EQ(SockName(server.get()), a);
    EXPECT_EQ(PeerName(client.get()), a);
    // The listener has no peer.
    EXPECT_EQ(PeerName(listener.get()).len, ~0u);
  }
}

// listen on an unbound socket binds it to the wildcard and an ephemeral port.
TEST(InetTcpTest, ListenWithoutBindPicksAnEphemeralPort) {
  for (int family : kFamilies) {
    Fd fd = Socket(family, SOCK_STREAM);
    ASSERT_OK(listen(fd.get(), 4));
    const Addr a = SockName(fd.get());
    EXPECT_EQ(a.ip(), Wildcard(family).ip());
    EXPECT_TRUE(IsEphemeral(a.port())) << a;
    Fd client = Socket(family, SOCK_STREAM);
    EXPECT_EQ(Connect(client.get(), Loopback(family, a.port())), 0) << ErrnoName(errno);
  }
}

// /proc/net/tcp lists a listener: its address and port in hex, state 0A, its inode.
TEST(InetTcpTest, ProcNetTcpListsAListener) {
  Fd fd = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(Bind(fd.get(), Loopback(AF_INET)));
  ASSERT_OK(listen(fd.get(), 4));
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  char want[64];
  snprintf(want, sizeof(want), "0100007F:%04X 00000000:0000 0A", SockName(fd.get()).port());
  const std::string table = ReadFile("/proc/net/tcp");
  bool found = false;
  size_t at = 0;
  while (!found && at < table.size()) {
    const size_t end = table.find('\n', at);
    const std::string line = table.substr(at, end == std::string::npos ? end : end - at);
    found = line.find(want) != std::string::npos &&
            line.find(" " + std::to_string(st.st_ino) + " ") != std::string::npos;
    at = end == std::string::npos ? table.size() : end + 1;
  }
  EXPECT_TRUE(found) << want << " inode " << st.st_ino << " not in\n" << table;
}

// Reads ignore where one write ended and the next began; what a short read leaves stays
// queued.
TEST(InetTcpTest, APartialReadLeavesTheRestQueued) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_TRUE(Send(c.client.get(), "abcde"));
    ASSERT_TRUE(Send(c.client.get(), "fgh"));
    ASSERT_EQ(QueuedSoon(c.server.get(), 8), 8);
    EXPECT_EQ(RecvNow(c.server.get(), 3), "abc");
    EXPECT_EQ(Queued(c.server.get()), 5);
    EXPECT_EQ(RecvNow(c.server.get(), 100), "defgh");
    EXPECT_EQ(RecvNow(c.server.get()), "[EAGAIN]");
  }
}

TEST(InetTcpTest, MsgPeekLeavesTheDataQueued) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_TRUE(Send(c.client.get(), "peekaboo"));
    ASSERT_EQ(QueuedSoon(c.server.get(), 8), 8);
    EXPECT_EQ(Recv(c.server.get(), 4, MSG_PEEK), "peek");
    EXPECT_EQ(Recv(c.server.get(), 100, MSG_PEEK), "peekaboo");
    EXPECT_EQ(Queued(c.server.get()), 8);
    EXPECT_EQ(RecvNow(c.server.get(), 100), "peekaboo");
  }
}

TEST(InetTcpTest, MsgDontwaitOnAnEmptySocketFailsEagain) {
  Conn c = Connected(AF_INET6);
  ASSERT_TRUE(c.server.valid());
  EXPECT_EQ(Recv(c.server.get(), 10, MSG_DONTWAIT), "[EAGAIN]");
  EXPECT_EQ(fcntl(c.server.get(), F_GETFL) & O_NONBLOCK, 0);  // the flag is per call
  ASSERT_OK(fcntl(c.client.get(), F_SETFL, O_NONBLOCK));
  char buf[4];
  EXPECT_ERRNO(read(c.client.get(), buf, sizeof(buf)), EAGAIN);
}

// The writer sends in three parts, pausing between them; one MSG_WAITALL read gets all nine
// bytes whenever they arrive.
TEST(InetTcpTest, MsgWaitallCollectsSeveralWrites) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  Child child([&] {
    c.server.Reset();
    for (const char* part : {"abc", "def", "ghi"}) {
      Pause();
      REQUIRE(Send(c.client.get(), part));
    }
    return 0;
  });
  ASSERT_TRUE(child.ok());
  timeval tv{kWaitMs / 1000, 0};
  ASSERT_OK(setsockopt(c.server.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
  EXPECT_EQ(Recv(c.server.get(), 9, MSG_WAITALL), "abcdefghi");
  EXPECT_TRUE(child.ExitsZero());
}

TEST(InetTcpTest, MsgWaitallReturnsShortAtEof) {
  Conn c = Connected(AF_INET6);
  ASSERT_TRUE(c.server.valid());
  ASSERT_TRUE(Send(c.client.get(), "abc"));
  c.client.Reset();
  timeval tv{kWaitMs / 1000, 0};
  ASSERT_OK(setsockopt(c.server.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
  EXPECT_EQ(Recv(c.server.get(), 10, MSG_WAITALL), "abc");
}

TEST(InetTcpTest, ReadsGiveBufferedDataThenEofAfterThePeerCloses) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_TRUE(Send(c.client.get(), "last"));
    c.client.Reset();
    EXPECT_EQ(RecvSoon(c.server.get()), "last");
    EXPECT_EQ(RecvSoon(c.server.get()), "[eof]");
    EXPECT_EQ(RecvNow(c.server.get()), "[eof]");
  }
}

// After SHUT_WR the peer reads EOF but can still send; the shut side's own writes fail
// EPIPE.
TEST(InetTcpTest, ShutdownWrHalfClosesTheConnection) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_TRUE(Send(c.client.get(), "bye"));
    ASSERT_OK(shutdown(c.client.get(), SHUT_WR));
    EXPECT_EQ(RecvSoon(c.server.get()), "bye");
    EXPECT_EQ(RecvSoon(c.server.get()), "[eof]");
    ASSERT_TRUE(Send(c.server.get(), "still here"));
    EXPECT_EQ(RecvSoon(c.client.get()), "still here");
    EXPECT_ERRNO(send(c.client.get(), "x", 1, MSG_NOSIGNAL), EPIPE);
  }
}

// After the peer closes, the first writes may still succeed; once its reset is back, a
// write fails EPIPE (not ECONNRESET: the FIN came first), and MSG_NOSIGNAL keeps SIGPIPE away.
TEST(InetTcpTest, WritesAfterThePeerClosedFailEpipeWithoutSigpipeUnderMsgNosignal) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    c.server.Reset();
    EXPECT_TRUE(ChildSucceeds([&] {
      REQUIRE(BlockSignal(SIGPIPE));
      REQUIRE(RecvSoon(c.client.get()) == "[eof]");
      const int err = WriteUntilError(c.client.get(), MSG_NOSIGNAL);
      REQUIRE(err == EPIPE);
      REQUIRE(!Pending(SIGPIPE));
      REQUIRE(FAILS_WITH(send(c.client.get(), "x", 1, MSG_NOSIGNAL), EPIPE));
      return 0;
    }));
  }
}

TEST(InetTcpTest, WritesAfterThePeerClosedRaiseSigpipe) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  c.server.Reset();
  EXPECT_TRUE(ChildSucceeds([&] {
    REQUIRE(BlockSignal(SIGPIPE));
    REQUIRE(RecvSoon(c.client.get()) == "[eof]");
    const int err = WriteUntilError(c.client.get(), 0);
    REQUIRE(err == EPIPE);
    REQUIRE(Pending(SIGPIPE));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    timespec zero{0, 0};
    REQUIRE(sigtimedwait(&set, nullptr, &zero) == SIGPIPE);
    return 0;
  }));
}

// With SIGPIPE's default disposition the writer dies of it.
TEST(InetTcpTest, SigpipeKillsAWriterToAClosedPeer) {
  Conn c = Connected(AF_INET6);
  ASSERT_TRUE(c.server.valid());
  c.server.Reset();
  ASSERT_EQ(RecvSoon(c.client.get()), "[eof]");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    _exit(WriteUntilError(c.client.get(), 0) == EPIPE ? 3 : 4);  // reached only if not killed
  }
  const int status = WaitBounded(pid, 0, 2 * kWaitMs);
  EXPECT_TRUE(KilledBy(status, SIGPIPE)) << Describe(status);
}

// Closing a socket with unread data resets the connection: the peer's next read fails
// ECONNRESET once, then reads give EOF and writes EPIPE.
TEST(InetTcpTest, ClosingWithUnreadDataResetsThePeer) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_TRUE(Send(c.client.get(), "unread"));
    ASSERT_EQ(QueuedSoon(c.server.get(), 6), 6);
    c.server.Reset();
    const int r = Revents(c.client.get(), POLLIN, kWaitMs);
    EXPECT_EQ(r & (POLLIN | POLLERR | POLLHUP), POLLIN | POLLERR | POLLHUP) << r;
    EXPECT_EQ(RecvNow(c.client.get()), "[ECONNRESET]") << FamilyName(family);
    EXPECT_EQ(RecvNow(c.client.get()), "[eof]");
    EXPECT_EQ(GetInt(c.client.get(), SOL_SOCKET, SO_ERROR), 0);
    EXPECT_ERRNO(send(c.client.get(), "x", 1, MSG_NOSIGNAL), EPIPE);
  }
}

// SO_LINGER with a zero timeout makes close send a reset: the peer's pending error, read
// here through SO_ERROR, is ECONNRESET; once read it is gone and reads give EOF.
TEST(InetTcpTest, ClosingWithLingerZeroResetsThePeer) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    linger l{1, 0};
    ASSERT_OK(setsockopt(c.server.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l)));
    c.server.Reset();
    ASSERT_NE(Revents(c.client.get(), POLLIN, kWaitMs) & POLLERR, 0);
    EXPECT_EQ(GetInt(c.client.get(), SOL_SOCKET, SO_ERROR), ECONNRESET);
    EXPECT_EQ(GetInt(c.client.get(), SOL_SOCKET, SO_ERROR), 0);  // reading it cleared it
    EXPECT_EQ(RecvNow(c.client.get()), "[eof]");
  }
}

// A nonblocking connect returns 0 or EINPROGRESS; the socket then polls writable with
// SO_ERROR 0. A second connect after that reports the result (0), a third EISCONN.
TEST(InetTcpTest, ANonblockingConnectCompletesWithSoErrorZero) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    Fd client = Socket(family, SOCK_STREAM | SOCK_NONBLOCK);
    errno = 0;
    const int r = Connect(client.get(), a);
    const int err = errno;
    ASSERT_TRUE(r == 0 || err == EINPROGRESS) << ErrnoName(err);
    EXPECT_NE(Revents(client.get(), POLLOUT, kWaitMs) & POLLOUT, 0);
    EXPECT_EQ(GetInt(client.get(), SOL_SOCKET, SO_ERROR), 0);
    EXPECT_EQ(PeerName(client.get()), a);
    if (r != 0) {
      EXPECT_EQ(Connect(client.get(), a), 0) << ErrnoName(errno);
    }
    EXPECT_ERRNO(Connect(client.get(), a), EISCONN);
    Fd server = AcceptSoon(listener.get());
    ASSERT_TRUE(server.valid());
    ASSERT_TRUE(Send(client.get(), "nb"));
    EXPECT_EQ(RecvSoon(server.get()), "nb");
  }
}

// Refused while in progress: the socket polls with POLLERR and SO_ERROR says ECONNREFUSED,
// once.
TEST(InetTcpTest, ANonblockingConnectToAClosedPortReportsEconnrefusedInSoError) {
  for (int family : kFamilies) {
    Fd holder = Socket(family, SOCK_STREAM);
    ASSERT_OK(Bind(holder.get(), Loopback(family)));
    Fd client = Socket(family, SOCK_STREAM | SOCK_NONBLOCK);
    errno = 0;
    const int r = Connect(client.get(), SockName(holder.get()));
    const int err = errno;
    ASSERT_EQ(r, -1);
    if (err == ECONNREFUSED) continue;  // already known when connect returned
    ASSERT_EQ(err, EINPROGRESS) << ErrnoName(err);
    EXPECT_NE(Revents(client.get(), POLLOUT, kWaitMs) & POLLERR, 0);
    EXPECT_EQ(GetInt(client.get(), SOL_SOCKET, SO_ERROR), ECONNREFUSED);
    EXPECT_EQ(GetInt(client.get(), SOL_SOCKET, SO_ERROR), 0);
  }
}

// accept4's flags set O_NONBLOCK and FD_CLOEXEC on the new socket; plain accept sets
// neither, even from a nonblocking listener.
TEST(InetTcpTest, Accept4SetsTheFlagsAndAcceptInheritsNone) {
  Addr a;
  Fd listener = Listener(Loopback(AF_INET), &a, SOCK_NONBLOCK | SOCK_CLOEXEC);
  Fd c1 = Socket(AF_INET, SOCK_STREAM), c2 = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(Connect(c1.get(), a));
  ASSERT_OK(Connect(c2.get(), a));
  Fd s1 = AcceptSoon(listener.get(), SOCK_NONBLOCK | SOCK_CLOEXEC);
  ASSERT_TRUE(s1.valid());
  EXPECT_EQ(fcntl(s1.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_NE(fcntl(s1.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(Recv(s1.get()), "[EAGAIN]");
  Fd s2 = AcceptSoon(listener.get(), 0);
  ASSERT_TRUE(s2.valid());
  EXPECT_EQ(fcntl(s2.get(), F_GETFD), 0);
  EXPECT_EQ(fcntl(s2.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_ERRNO(accept4(listener.get(), nullptr, nullptr, O_APPEND), EINVAL);
}

TEST(InetTcpTest, ANonblockingAcceptWithNothingPendingFailsEagain) {
  for (int family : kFamilies) {
    Fd listener = Listener(Loopback(family), nullptr, SOCK_NONBLOCK);
    EXPECT_ERRNO(accept(listener.get(), nullptr, nullptr), EAGAIN);
    // O_NONBLOCK set later by fcntl does the same.
    Fd later = Listener(Loopback(family));
    ASSERT_OK(fcntl(later.get(), F_SETFL, O_NONBLOCK));
    EXPECT_ERRNO(accept4(later.get(), nullptr, nullptr, SOCK_CLOEXEC), EAGAIN);
  }
}

TEST(InetTcpTest, AcceptOnANonListeningSocketFailsEinval) {
  for (int family : kFamilies) {
    Fd fd = Socket(family, SOCK_STREAM);
    EXPECT_ERRNO(accept(fd.get(), nullptr, nullptr), EINVAL);
    ASSERT_OK(Bind(fd.get(), Loopback(family)));
    EXPECT_ERRNO(accept(fd.get(), nullptr, nullptr), EINVAL);
    Conn c = Connected(family);
    EXPECT_ERRNO(accept(c.client.get(), nullptr, nullptr), EINVAL);
    Fd udp = Socket(family, SOCK_DGRAM);
    EXPECT_ERRNO(accept(udp.get(), nullptr, nullptr), EOPNOTSUPP);
  }
}

TEST(InetTcpTest, ListenOnAConnectedSocketFailsEinval) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    EXPECT_ERRNO(listen(c.client.get(), 4), EINVAL);
    EXPECT_ERRNO(listen(c.server.get(), 4), EINVAL);
    Fd udp = Socket(family, SOCK_DGRAM);
    EXPECT_ERRNO(listen(udp.get(), 4), EOPNOTSUPP);
  }
}

// A listener may listen again (a new backlog).
TEST(InetTcpTest, ListeningTwiceIsAllowed) {
  Addr a;
  Fd listener = Listener(Loopback(AF_INET), &a);
  EXPECT_EQ(listen(listener.get(), 1), 0) << ErrnoName(errno);
  EXPECT_EQ(SockName(listener.get()), a);
  Fd client = Socket(AF_INET, SOCK_STREAM);
  EXPECT_EQ(Connect(client.get(), a), 0) << ErrnoName(errno);
}

// Connecting a connected socket is EISCONN, and so is connecting a listener.
TEST(InetTcpTest, ConnectingAConnectedSocketFailsEisconn) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    EXPECT_ERRNO(Connect(client.get(), a), EISCONN);
    Addr other;
    Fd l2 = Listener(Loopback(family), &other);
    EXPECT_ERRNO(Connect(client.get(), other), EISCONN);
    EXPECT_ERRNO(Connect(l2.get(), a), EISCONN);
  }
}

// Never connected: recv is ENOTCONN, but send is EPIPE (and raises SIGPIPE).
TEST(InetTcpTest, AnUnconnectedSocketFailsEnotconnOnRecvAndEpipeOnSend) {
  for (int family : kFamilies) {
    Fd fd = Socket(family, SOCK_STREAM);
    EXPECT_EQ(RecvNow(fd.get()), "[ENOTCONN]");
    EXPECT_ERRNO(send(fd.get(), "x", 1, MSG_NOSIGNAL), EPIPE);
    Fd listener = Listener(Loopback(family));
    EXPECT_EQ(RecvNow(listener.get()), "[ENOTCONN]");
  }
  Fd fd = Socket(AF_INET, SOCK_STREAM);
  EXPECT_TRUE(ChildSucceeds([&] {
    REQUIRE(BlockSignal(SIGPIPE));
    REQUIRE(FAILS_WITH(write(fd.get(), "x", 1), EPIPE));
    REQUIRE(Pending(SIGPIPE));
    return 0;
  }));
}

// Unlike AF_UNIX, shutting down a socket that is not connected fails ENOTCONN, for TCP and
// UDP alike; a bad `how` is EINVAL.
TEST(InetTcpTest, ShutdownOfAnUnconnectedSocketFailsEnotconn) {
  for (int family : kFamilies) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      Fd fd = Socket(family, type);
      EXPECT_ERRNO(shutdown(fd.get(), SHUT_RDWR), ENOTCONN);
    }
  }
  Conn c = Connected(AF_INET);
  EXPECT_ERRNO(shutdown(c.client.get(), 3), EINVAL);
  EXPECT_EQ(shutdown(c.client.get(), SHUT_RD), 0) << ErrnoName(errno);
}

// FIONREAD and SIOCINQ count the bytes queued; on a listener they are EINVAL.
TEST(InetTcpTest, FionreadAndSiocinqCountQueuedBytes) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    EXPECT_EQ(Queued(listener.get()), -1000 - EINVAL);
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    Fd server = AcceptSoon(listener.get());
    ASSERT_TRUE(server.valid());
    EXPECT_EQ(Queued(server.get()), 0);
    ASSERT_TRUE(Send(client.get(), "12345"));
    ASSERT_TRUE(Send(client.get(), "678"));
    EXPECT_EQ(QueuedSoon(server.get(), 8), 8);
    EXPECT_EQ(Queued(server.get(), SIOCINQ), 8);
    EXPECT_EQ(RecvNow(server.get(), 2), "12");
    EXPECT_EQ(Queued(server.get()), 6);
  }
}

// A megabyte written in one go by another process arrives whole and in order through
// 4 KiB reads, however the stream splits it.
TEST(InetTcpTest, AMegabyteArrivesIntactAndInOrder) {
  constexpr size_t kSize = 1 << 20;
  auto byte = [](size_t i) { return static_cast<char>((i * 7 + i / 4096) % 251); };
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  Child child([&] {
    c.server.Reset();
    std::string data(kSize, '\0');
    for (size_t i = 0; i < kSize; i++) data[i] = byte(i);
    size_t off = 0;
    while (off < kSize) {
      const ssize_t n = write(c.client.get(), data.data() + off, kSize - off);
      REQUIRE(n > 0);
      off += n;
    }
    return 0;
  });
  ASSERT_TRUE(child.ok());
  c.client.Reset();
  size_t got = 0;
  bool intact = true;
  char buf[4096];
  for (;;) {
    ASSERT_NE(Revents(c.server.get(), POLLIN, kWaitMs) & POLLIN, 0) << "stalled at " << got;
    const ssize_t n = recv(c.server.get(), buf, sizeof(buf), 0);
    ASSERT_GE(n, 0) << ErrnoName(errno);
    if (n == 0) break;
    for (ssize_t i = 0; i < n; i++) intact = intact && buf[i] == byte(got + i);
    got += n;
  }
  EXPECT_EQ(got, kSize);
  EXPECT_TRUE(intact);
  EXPECT_TRUE(child.ExitsZero());
}

// ---------------------------------------------------------------------------------------
// poll.

TEST(InetPollTest, AListenerIsReadableOnlyWithAConnectionPending) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    EXPECT_EQ(Revents(listener.get(), POLLIN | POLLOUT), 0);  // and never writable
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    EXPECT_EQ(Revents(listener.get(), POLLIN | POLLOUT, kWaitMs), POLLIN);
    Fd server(accept(listener.get(), nullptr, nullptr));
    EXPECT_EQ(Revents(listener.get(), POLLIN), 0);
  }
}

TEST(InetPollTest, AConnectedSocketIsWritableAndReadableWithData) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    EXPECT_EQ(Revents(c.server.get(), POLLIN | POLLOUT | POLLRDHUP), POLLOUT);
    ASSERT_TRUE(Send(c.client.get(), "x"));
    EXPECT_EQ(Revents(c.server.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(Revents(c.server.get(), POLLIN | POLLOUT), POLLIN | POLLOUT);
  }
}

// A TCP socket that never connected polls as hung up, and writable.
TEST(InetPollTest, AFreshTcpSocketPollsOutAndHup) {
  for (int family : kFamilies) {
    Fd fd = Socket(family, SOCK_STREAM);
    EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT), POLLOUT | POLLHUP);
  }
}

// The peer's SHUT_WR makes this end readable (EOF) with POLLRDHUP if asked, but not hung
// up; the side that shut its writing still polls writable.
TEST(InetPollTest, ThePeersShutdownWrGivesPollrdhupButNotPollhup) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_OK(shutdown(c.client.get(), SHUT_WR));
    EXPECT_EQ(Revents(c.server.get(), POLLIN | POLLRDHUP, kWaitMs), POLLIN | POLLRDHUP);
    EXPECT_EQ(Revents(c.server.get(), POLLIN | POLLOUT), POLLIN | POLLOUT);
    EXPECT_EQ(Revents(c.client.get(), POLLIN | POLLOUT | POLLRDHUP), POLLOUT);
  }
}

// POLLHUP comes once both directions are shut: by the two SHUT_WRs, or by SHUT_RDWR.
TEST(InetPollTest, PollhupComesOnlyWhenBothDirectionsAreShut) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_OK(shutdown(c.client.get(), SHUT_WR));
    ASSERT_EQ(Revents(c.server.get(), POLLIN, kWaitMs), POLLIN);
    ASSERT_OK(shutdown(c.server.get(), SHUT_WR));
    EXPECT_EQ(Revents(c.client.get(), POLLIN | POLLRDHUP, kWaitMs) & (POLLIN | POLLRDHUP),
              POLLIN | POLLRDHUP);
    EXPECT_EQ(Revents(c.client.get(), POLLIN | POLLOUT | POLLRDHUP),
              POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
    EXPECT_EQ(Revents(c.server.get(), POLLIN | POLLOUT | POLLRDHUP),
              POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
    Conn d = Connected(family);
    ASSERT_TRUE(d.server.valid());
    ASSERT_OK(shutdown(d.client.get(), SHUT_RDWR));
    EXPECT_EQ(Revents(d.client.get(), POLLIN | POLLRDHUP) & (POLLIN | POLLRDHUP | POLLHUP),
              POLLIN | POLLRDHUP | POLLHUP);
  }
}

// ---------------------------------------------------------------------------------------
// Socket options.

// Boolean options read back as 1 whatever nonzero value set them.
TEST(InetSockoptTest, BooleanOptionsRoundTripAsZeroOrOne) {
  struct Opt {
    int level, name;
  };
  for (int family : kFamilies) {
    Fd fd = Socket(family, SOCK_STREAM);
    for (Opt o : {Opt{IPPROTO_TCP, TCP_NODELAY}, Opt{IPPROTO_TCP, TCP_CORK},
                  Opt{SOL_SOCKET, SO_KEEPALIVE}, Opt{SOL_SOCKET, SO_REUSEADDR}}) {
      EXPECT_EQ(GetInt(fd.get(), o.level, o.name), 0) << o.name;
      ASSERT_OK(SetInt(fd.get(), o.level, o.name, 5));
      EXPECT_EQ(GetInt(fd.get(), o.level, o.name), 1) << o.name;
      ASSERT_OK(SetInt(fd.get(), o.level, o.name, 0));
      EXPECT_EQ(GetInt(fd.get(), o.level, o.name), 0) << o.name;
    }
  }
}

// The options work on a live connection: writes made while corked arrive, together, once
// TCP_CORK is cleared.
TEST(InetSockoptTest, TcpNodelayAndTcpCorkWorkOnAConnection) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  ASSERT_OK(SetInt(c.client.get(), IPPROTO_TCP, TCP_NODELAY, 1));
  EXPECT_EQ(GetInt(c.client.get(), IPPROTO_TCP, TCP_NODELAY), 1);
  ASSERT_OK(SetInt(c.client.get(), IPPROTO_TCP, TCP_CORK, 1));
  ASSERT_TRUE(Send(c.client.get(), "cor"));
  ASSERT_TRUE(Send(c.client.get(), "ked"));
  ASSERT_OK(SetInt(c.client.get(), IPPROTO_TCP, TCP_CORK, 0));
  EXPECT_EQ(QueuedSoon(c.server.get(), 6), 6);
  EXPECT_EQ(RecvNow(c.server.get()), "corked");
}

TEST(InetSockoptTest, LingerRoundTrips) {
  Fd fd = Socket(AF_INET6, SOCK_STREAM);
  linger l{-1, -1};
  socklen_t len = sizeof(l);
  ASSERT_OK(getsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, &len));
  EXPECT_EQ(len, sizeof(linger));
  EXPECT_EQ(l.l_onoff, 0);
  EXPECT_EQ(l.l_linger, 0);
  const linger set{1, 7};
  ASSERT_OK(setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &set, sizeof(set)));
  ASSERT_OK(getsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, &len));
  EXPECT_EQ(l.l_onoff, 1);
  EXPECT_EQ(l.l_linger, 7);
  EXPECT_ERRNO(setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &set, sizeof(int)), EINVAL);
}

// Linux stores twice what is asked, to leave room for its bookkeeping.
TEST(InetSockoptTest, SndbufAndRcvbufStoreTwiceTheValue) {
  for (int family : kFamilies) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      Fd fd = Socket(family, type);
      EXPECT_GT(GetInt(fd.get(), SOL_SOCKET, SO_SNDBUF), 0);
      EXPECT_GT(GetInt(fd.get(), SOL_SOCKET, SO_RCVBUF), 0);
      for (int v : {32768, 40000}) {
        ASSERT_OK(SetInt(fd.get(), SOL_SOCKET, SO_SNDBUF, v));
        EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_SNDBUF), 2 * v);
        ASSERT_OK(SetInt(fd.get(), SOL_SOCKET, SO_RCVBUF, v));
        EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_RCVBUF), 2 * v);
      }
    }
  }
}

TEST(InetSockoptTest, SoErrorIsZeroOnHealthySockets) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    EXPECT_EQ(GetInt(c.client.get(), SOL_SOCKET, SO_ERROR), 0);
    EXPECT_EQ(GetInt(c.server.get(), SOL_SOCKET, SO_ERROR), 0);
    Fd udp = Socket(family, SOCK_DGRAM);
    EXPECT_EQ(GetInt(udp.get(), SOL_SOCKET, SO_ERROR), 0);
  }
}

TEST(InetSockoptTest, AcceptconnIsSetByListenOnly) {
  for (int family : kFamilies) {
    Fd fd = Socket(family, SOCK_STREAM);
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN), 0);
    ASSERT_OK(Bind(fd.get(), Loopback(family)));
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN), 0);
    ASSERT_OK(listen(fd.get(), 4));
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN), 1);
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), SockName(fd.get())));
    Fd server = AcceptSoon(fd.get());
    EXPECT_EQ(GetInt(client.get(), SOL_SOCKET, SO_ACCEPTCONN), 0);
    EXPECT_EQ(GetInt(server.get(), SOL_SOCKET, SO_ACCEPTCONN), 0);
    Fd udp = Socket(family, SOCK_DGRAM);
    EXPECT_EQ(GetInt(udp.get(), SOL_SOCKET, SO_ACCEPTCONN), 0);
  }
}

// An accepted socket starts with the listener's SO_KEEPALIVE and TCP_NODELAY.
TEST(InetSockoptTest, AnAcceptedSocketInheritsKeepaliveAndNodelay) {
  Fd listener = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(SetInt(listener.get(), SOL_SOCKET, SO_KEEPALIVE, 1));
  ASSERT_OK(SetInt(listener.get(), IPPROTO_TCP, TCP_NODELAY, 1));
  ASSERT_OK(Bind(listener.get(), Loopback(AF_INET)));
  ASSERT_OK(listen(listener.get(), 4));
  Fd client = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(Connect(client.get(), SockName(listener.get())));
  Fd server = AcceptSoon(listener.get());
  ASSERT_TRUE(server.valid());
  EXPECT_EQ(GetInt(server.get(), SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(GetInt(server.get(), IPPROTO_TCP, TCP_NODELAY), 1);
  EXPECT_EQ(GetInt(client.get(), SOL_SOCKET, SO_KEEPALIVE), 0);
}

// TCP's options are not UDP's. IPv4 answers setsockopt ENOPROTOOPT but getsockopt
// EOPNOTSUPP; IPv6 says ENOPROTOOPT to both.
TEST(InetSockoptTest, TcpOptionsOnAUdpSocketFail) {
  for (int family : kFamilies) {
    Fd udp = Socket(family, SOCK_DGRAM);
    EXPECT_ERRNO(SetInt(udp.get(), IPPROTO_TCP, TCP_NODELAY, 1), ENOPROTOOPT);
    const int get_err = family == AF_INET ? EOPNOTSUPP : ENOPROTOOPT;
    EXPECT_EQ(GetInt(udp.get(), IPPROTO_TCP, TCP_NODELAY), -1000 - get_err) << FamilyName(family);
  }
}

// ---------------------------------------------------------------------------------------
// UDP.

TEST(InetUdpTest, SendtoAndRecvfromReportTheSendersAddress) {
  for (int family : kFamilies) {
    Addr ra, sa;
    Fd rx = UdpSocket(Loopback(family), &ra);
    Fd tx = UdpSocket(Loopback(family), &sa);
    ASSERT_EQ(SendTo(tx.get(), "hello", ra), 5) << ErrnoName(errno);
    const Datagram d = RecvFrom(rx.get());
    EXPECT_EQ(d.data, "hello") << ErrnoName(d.err);
    EXPECT_EQ(d.from, sa);
    EXPECT_EQ(d.from.len, family == AF_INET ? 16u : 28u);
    // And back, to the address reported.
    ASSERT_EQ(SendTo(rx.get(), "hi", d.from), 2) << ErrnoName(errno);
    const Datagram back = RecvFrom(tx.get());
    EXPECT_EQ(back.data, "hi");
    EXPECT_EQ(back.from, ra);
  }
}

TEST(InetUdpTest, EachDatagramKeepsItsBoundaries) {
  for (int family : kFamilies) {
    Addr ra;
    Fd rx = UdpSocket(Loopback(family), &ra);
    Fd tx = Socket(family, SOCK_DGRAM);
    for (const char* m : {"a", "bb", "ccc"}) {
      ASSERT_EQ(SendTo(tx.get(), m, ra), static_cast<ssize_t>(strlen(m)));
    }
    EXPECT_EQ(RecvFrom(rx.get()).data, "a");
    EXPECT_EQ(RecvFrom(rx.get()).data, "bb");
    EXPECT_EQ(RecvFrom(rx.get()).data, "ccc");
    EXPECT_EQ(RecvFrom(rx.get(), 16, MSG_DONTWAIT).err, EAGAIN);
  }
}

// A short buffer gets the datagram's start and the rest is lost; with MSG_TRUNC recv
// returns the datagram's full length; recvmsg flags the cut with MSG_TRUNC.
TEST(InetUdpTest, ALongDatagramIsTruncated) {
  for (int family : kFamilies) {
    Addr ra;
    Fd rx = UdpSocket(Loopback(family), &ra);
    Fd tx = Socket(family, SOCK_DGRAM);
    ASSERT_EQ(SendTo(tx.get(), "0123456789", ra), 10);
    ASSERT_EQ(SendTo(tx.get(), "abcdefghij", ra), 10);
    ASSERT_EQ(SendTo(tx.get(), "ABCDEFGHIJ", ra), 10);
    EXPECT_EQ(RecvSoon(rx.get(), 4), "0123");
    char buf[4];
    ASSERT_EQ(Revents(rx.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(recv(rx.get(), buf, sizeof(buf), MSG_TRUNC), 10);
    EXPECT_EQ(std::string(buf, 4), "abcd");
    iovec iov{buf, sizeof(buf)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ASSERT_EQ(Revents(rx.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(recvmsg(rx.get(), &msg, 0), 4);
    EXPECT_NE(msg.msg_flags & MSG_TRUNC, 0);
    EXPECT_EQ(std::string(buf, 4), "ABCD");
    EXPECT_EQ(RecvNow(rx.get()), "[EAGAIN]");
  }
}

// A connected socket sends without an address and reads only from its peer; sendto with
// another address still goes there.
TEST(InetUdpTest, AConnectedSocketNeedsNoAddresses) {
  for (int family : kFamilies) {
    Addr pa, ca;
    Fd peer = UdpSocket(Loopback(family), &pa);
    Fd fd = UdpSocket(Loopback(family), &ca);
    ASSERT_OK(Connect(fd.get(), pa));
    EXPECT_EQ(PeerName(fd.get()), pa);
    ASSERT_TRUE(Send(fd.get(), "to peer"));
    EXPECT_EQ(RecvFrom(peer.get()).from, ca);
    ASSERT_EQ(SendTo(peer.get(), "to fd", ca), 5);
    EXPECT_EQ(RecvSoon(fd.get()), "to fd");
    Addr oa;
    Fd other = UdpSocket(Loopback(family), &oa);
    ASSERT_EQ(SendTo(fd.get(), "elsewhere", oa), 9) << ErrnoName(errno);
    const Datagram d = RecvFrom(other.get());
    EXPECT_EQ(d.data, "elsewhere");
    EXPECT_EQ(d.from, ca);
  }
}

// Datagrams from anyone but the connected peer are dropped.
TEST(InetUdpTest, AConnectedSocketIgnoresDatagramsFromOtherPorts) {
  for (int family : kFamilies) {
    Addr pa, ca;
    Fd peer = UdpSocket(Loopback(family), &pa);
    Fd fd = UdpSocket(Loopback(family), &ca);
    ASSERT_OK(Connect(fd.get(), pa));
    Fd stranger = Socket(family, SOCK_DGRAM);
    ASSERT_EQ(SendTo(stranger.get(), "stranger", ca), 8) << ErrnoName(errno);
    ASSERT_EQ(SendTo(peer.get(), "peer", ca), 4);
    const Datagram d = RecvFrom(fd.get());
    EXPECT_EQ(d.data, "peer");
    EXPECT_EQ(d.from, pa);
    EXPECT_EQ(RecvNow(fd.get()), "[EAGAIN]");
  }
}

// With nobody on the port, sendto still succeeds, and an unconnected socket never hears of
// the ICMP error.
TEST(InetUdpTest, SendingToAPortNobodyHoldsSucceedsUnconnected) {
  for (int family : kFamilies) {
    Fd gone = Socket(family, SOCK_DGRAM);
    ASSERT_OK(Bind(gone.get(), Loopback(family)));
    const Addr a = SockName(gone.get());
    gone.Reset();
    Fd fd = Socket(family, SOCK_DGRAM);
    ASSERT_EQ(SendTo(fd.get(), "void", a), 4) << ErrnoName(errno);
    ASSERT_EQ(SendTo(fd.get(), "void", a), 4) << ErrnoName(errno);
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_ERROR), 0);
    EXPECT_EQ(RecvNow(fd.get()), "[EAGAIN]");
  }
}

// A connected socket does hear of it: after one send to a port nobody holds, the next recv
// fails ECONNREFUSED, once.
TEST(InetUdpTest, AConnectedSocketGetsEconnrefusedFromAPortNobodyHolds) {
  for (int family : kFamilies) {
    Fd gone = Socket(family, SOCK_DGRAM);
    ASSERT_OK(Bind(gone.get(), Loopback(family)));
    const Addr a = SockName(gone.get());
    gone.Reset();
    Fd fd = Socket(family, SOCK_DGRAM);
    ASSERT_OK(Connect(fd.get(), a));
    ASSERT_TRUE(Send(fd.get(), "anyone?"));
    EXPECT_NE(Revents(fd.get(), POLLIN, kWaitMs) & POLLERR, 0);
    EXPECT_EQ(RecvNow(fd.get()), "[ECONNREFUSED]") << FamilyName(family);
    EXPECT_EQ(RecvNow(fd.get()), "[EAGAIN]");
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_ERROR), 0);
  }
}

// The first sendto binds an unbound socket to the wildcard and an ephemeral port (the
// receiver sees the loopback address it came from); connect binds it to the loopback address.
TEST(InetUdpTest, AnUnboundSocketIsBoundByItsFirstSendtoOrConnect) {
  for (int family : kFamilies) {
    Addr ra;
    Fd rx = UdpSocket(Loopback(family), &ra);
    Fd tx = Socket(family, SOCK_DGRAM);
    EXPECT_EQ(SockName(tx.get()).port(), 0);
    ASSERT_EQ(SendTo(tx.get(), "auto", ra), 4);
    const Addr mine = SockName(tx.get());
    EXPECT_EQ(mine.ip(), Wildcard(family).ip());
    EXPECT_TRUE(IsEphemeral(mine.port())) << mine;
    EXPECT_EQ(RecvFrom(rx.get()).from, Loopback(family, mine.port()));
    // The port stays.
    ASSERT_EQ(SendTo(tx.get(), "again", ra), 5);
    EXPECT_EQ(RecvFrom(rx.get()).from.port(), mine.port());
    // connect instead binds to the address that reaches the peer.
    Fd connected = Socket(family, SOCK_DGRAM);
    ASSERT_OK(Connect(connected.get(), ra));
    const Addr name = SockName(connected.get());
    EXPECT_EQ(name.ip(), Loopback(family).ip());
    EXPECT_TRUE(IsEphemeral(name.port())) << name;
  }
}

TEST(InetUdpTest, ZeroLengthDatagramsAreDelivered) {
  for (int family : kFamilies) {
    Addr ra, sa;
    Fd rx = UdpSocket(Loopback(family), &ra);
    Fd tx = UdpSocket(Loopback(family), &sa);
    ASSERT_EQ(SendTo(tx.get(), "", ra), 0) << ErrnoName(errno);
    EXPECT_EQ(Revents(rx.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(Queued(rx.get()), 0);
    const Datagram d = RecvFrom(rx.get(), 16, MSG_DONTWAIT);
    EXPECT_EQ(d.n, 0) << ErrnoName(d.err);
    EXPECT_EQ(d.from, sa);
    EXPECT_EQ(RecvNow(rx.get()), "[EAGAIN]");
  }
}

// FIONREAD on a datagram socket is the size of the next datagram, not of all of them.
TEST(InetUdpTest, FionreadGivesTheNextDatagramsSize) {
  for (int family : kFamilies) {
    Addr ra;
    Fd rx = UdpSocket(Loopback(family), &ra);
    EXPECT_EQ(Queued(rx.get()), 0);
    Fd tx = Socket(family, SOCK_DGRAM);
    ASSERT_EQ(SendTo(tx.get(), "12345", ra), 5);
    ASSERT_EQ(SendTo(tx.get(), "123", ra), 3);
    ASSERT_EQ(Revents(rx.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(Queued(rx.get()), 5);
    EXPECT_EQ(Queued(rx.get(), SIOCINQ), 5);
    EXPECT_EQ(RecvNow(rx.get()), "12345");
    ASSERT_EQ(Revents(rx.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(Queued(rx.get()), 3);
  }
}

// connect with AF_UNSPEC undoes connect: no peer, send needs an address again, and anyone's
// datagrams arrive. A port given to bind stays; one that connect picked is given up, and the
// name is the wildcard with port 0 again.
TEST(InetUdpTest, ConnectWithAfUnspecDissolvesTheAssociation) {
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  for (int family : kFamilies) {
    Addr pa;
    Fd peer = UdpSocket(Loopback(family), &pa);
    Fd probe = Socket(family, SOCK_DGRAM);  // finds a free port to name in bind
    ASSERT_OK(Bind(probe.get(), Loopback(family)));
    const Addr named = SockName(probe.get());
    probe.Reset();
    Fd fd = UdpSocket(named);
    ASSERT_OK(Connect(fd.get(), pa));
    ASSERT_EQ(connect(fd.get(), &unspec, sizeof(unspec)), 0) << ErrnoName(errno);
    EXPECT_ERRNO(GetPeerName(fd.get()), ENOTCONN);
    EXPECT_ERRNO(send(fd.get(), "x", 1, MSG_NOSIGNAL), EDESTADDRREQ);
    EXPECT_EQ(SockName(fd.get()), named);
    Fd stranger = Socket(family, SOCK_DGRAM);
    ASSERT_EQ(SendTo(stranger.get(), "anyone", named), 6) << ErrnoName(errno);
    EXPECT_EQ(RecvFrom(fd.get()).data, "anyone");
    // Autobound by connect.
    Fd autob = Socket(family, SOCK_DGRAM);
    ASSERT_OK(Connect(autob.get(), pa));
    EXPECT_NE(SockName(autob.get()).port(), 0);
    ASSERT_EQ(connect(autob.get(), &unspec, sizeof(unspec)), 0) << ErrnoName(errno);
    EXPECT_EQ(SockName(autob.get()), Wildcard(family));
  }
}

TEST(InetUdpTest, SendWithoutAnAddressOnAnUnconnectedSocketFailsEdestaddrreq) {
  for (int family : kFamilies) {
    Fd fd = Socket(family, SOCK_DGRAM);
    EXPECT_ERRNO(send(fd.get(), "x", 1, MSG_NOSIGNAL), EDESTADDRREQ);
    EXPECT_ERRNO(write(fd.get(), "x", 1), EDESTADDRREQ);
  }
}

// A datagram's length must fit the IP packet's 16-bit length: over IPv4 at most
// 65535 - 20 (IP header) - 8 (UDP header) = 65507 bytes; over IPv6, whose length field leaves
// out its own header, 65535 - 8 = 65527. One more is EMSGSIZE.
TEST(InetUdpTest, TheLargestDatagramFitsTheIpLengthField) {
  for (int family : kFamilies) {
    const size_t max = family == AF_INET ? 65507 : 65527;
    Addr ra;
    Fd rx = UdpSocket(Loopback(family), &ra);
    Fd tx = Socket(family, SOCK_DGRAM);
    const std::string big(max + 1, 'u');
    EXPECT_ERRNO(SendTo(tx.get(), big, ra), EMSGSIZE);
    ASSERT_EQ(SendTo(tx.get(), std::string_view(big).substr(0, max), ra), static_cast<ssize_t>(max))
        << ErrnoName(errno);
    const Datagram d = RecvFrom(rx.get(), 70000);
    EXPECT_EQ(d.n, static_cast<ssize_t>(max)) << ErrnoName(d.err);
  }
}

// ---------------------------------------------------------------------------------------
// Beyond loopback.

// With only "lo" in the namespace there is no route to 192.0.2.1 (TEST-NET-1): TCP connect,
// UDP connect and UDP sendto fail ENETUNREACH at once.
TEST(InetRouteTest, AnAddressBeyondLoopbackIsUnreachable) {
  const Addr far = MakeAddr(AF_INET, "192.0.2.1", 80);
  Fd tcp = Socket(AF_INET, SOCK_STREAM);
  EXPECT_ERRNO(Connect(tcp.get(), far), ENETUNREACH);
  Fd udp = Socket(AF_INET, SOCK_DGRAM);
  EXPECT_ERRNO(Connect(udp.get(), far), ENETUNREACH);
  EXPECT_ERRNO(SendTo(udp.get(), "x", far), ENETUNREACH);
}

}  // namespace
}  // namespace husk_test
