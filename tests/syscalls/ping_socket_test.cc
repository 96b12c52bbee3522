// Conformance: ICMP echo ("ping") datagram sockets, socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)
// and socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6) (icmp(7), the "ping socket" paragraph of
// socket(7) and net/ipv4/ping.c), as Linux behaves over loopback, the parts ping(8)-like
// programs rely on. Covers creating them (SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_REUSEADDR on by
// default); echo requests and their replies (type and code, identifier rewritten to the
// socket's bound identifier, sequence number and payload kept, the sender's address, the
// IPv4 checksum); what sendto refuses (other ICMP types and codes, messages shorter than the
// 8-byte header, no address, addresses of the wrong family or length, v4-mapped IPv6
// addresses); autobind on sendto and connect; connected sockets and getpeername; bind to an
// identifier and the conflicts between sockets holding one; MSG_PEEK, truncation,
// MSG_DONTWAIT, poll; several requests in order; IP_TTL/IPV6_UNICAST_HOPS and the
// IP_RECVTTL/IPV6_RECVHOPLIMIT control messages.
//
// Ping sockets are open only to groups within /proc/sys/net/ipv4/ping_group_range (which
// governs ICMPv6 ping sockets too). A fresh network namespace has it "1 0" (nobody), as in
// husk_fence; so, before any test, if socket() fails with EACCES the range is widened to
// "0 2147483647", ignoring any failure (husk lets every group open ping sockets, and its file
// may be read-only). It is written only when needed, and is per network namespace: natively
// the binary runs in the fence's own namespace.
//
// The network namespace is assumed to hold only "lo", up (127.0.0.1/8 and ::1). Every
// identifier is one the kernel picked or a fixed one bound by the test itself. Blocking calls
// that could hang wait through poll for at most kWaitMs; no test forks, and nothing asserts
// how long anything took.
//
// Relies on, beyond the start-up set in test_util.h: socket, bind, connect, getsockname,
// getpeername, getsockopt, setsockopt, sendto, recvfrom, recvmsg, poll, getgid,
// /proc/sys/net/ipv4/ping_group_range (written only if socket() is EACCES).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>

#include "tests/syscalls/inet_util.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

// The ping protocol of `family`: IPPROTO_ICMP or IPPROTO_ICMPV6.
int PingProtocol(int family) {
  return family == AF_INET ? static_cast<int>(IPPROTO_ICMP) : static_cast<int>(IPPROTO_ICMPV6);
}

Fd PingSocket(int family) { return Fd(socket(family, SOCK_DGRAM, PingProtocol(family))); }

// ICMP types (RFC 792) and ICMPv6 types (RFC 4443).
constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmpTimestamp = 13;
constexpr uint8_t kIcmp6DestUnreach = 1;
constexpr uint8_t kIcmp6EchoRequest = 128;
constexpr uint8_t kIcmp6EchoReply = 129;

uint8_t EchoRequestType(int family) {
  return family == AF_INET ? kIcmpEchoRequest : kIcmp6EchoRequest;
}
uint8_t EchoReplyType(int family) { return family == AF_INET ? kIcmpEchoReply : kIcmp6EchoReply; }

// The hop-limit option of `family`'s unicast packets: IP_TTL or IPV6_UNICAST_HOPS.
int HopLevel(int family) { return family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6; }
int HopOption(int family) { return family == AF_INET ? IP_TTL : IPV6_UNICAST_HOPS; }

// An ICMP(v6) message: the 8-byte echo header (type, code, checksum, identifier, sequence
// number) and the payload. The checksum is left 0: the kernel fills it in.
std::string IcmpMessage(uint8_t type, uint8_t code, uint16_t id, uint16_t seq,
                        std::string_view payload) {
  std::string m(8, '\0');
  m[0] = static_cast<char>(type);
  m[1] = static_cast<char>(code);
  m[4] = static_cast<char>(id >> 8);
  m[5] = static_cast<char>(id & 0xff);
  m[6] = static_cast<char>(seq >> 8);
  m[7] = static_cast<char>(seq & 0xff);
  m.append(payload);
  return m;
}

// An echo request of `family`, with identifier 0x1234 (which the kernel replaces).
std::string EchoRequest(int family, uint16_t seq, std::string_view payload) {
  return IcmpMessage(EchoRequestType(family), 0, 0x1234, seq, payload);
}

// The fields of a received ICMP message (at least 8 bytes, checked by the caller).
int Type(const std::string& m) { return static_cast<uint8_t>(m[0]); }
int Code(const std::string& m) { return static_cast<uint8_t>(m[1]); }
int Ident(const std::string& m) {
  return static_cast<uint8_t>(m[4]) << 8 | static_cast<uint8_t>(m[5]);
}
int Seq(const std::string& m) {
  return static_cast<uint8_t>(m[6]) << 8 | static_cast<uint8_t>(m[7]);
}
std::string Payload(const std::string& m) { return m.substr(8); }

// The ones'-complement sum (RFC 1071) of `m`, folded to 16 bits; 0xffff for a message whose
// checksum is right.
unsigned OnesComplementSum(const std::string& m) {
  uint32_t sum = 0;
  for (size_t i = 0; i < m.size(); i += 2) {
    const uint32_t hi = static_cast<uint8_t>(m[i]);
    const uint32_t lo = i + 1 < m.size() ? static_cast<uint8_t>(m[i + 1]) : 0;
    sum += hi << 8 | lo;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

ssize_t SendTo(int fd, std::string_view m, const Addr& to) {
  return sendto(fd, m.data(), m.size(), 0, to.get(), to.len);
}

ssize_t Send(int fd, std::string_view m) { return send(fd, m.data(), m.size(), 0); }

// What one recvfrom(2) brought.
struct Datagram {
  ssize_t n = -1;
  int err = 0;
  std::string data;
  Addr from;
};

std::ostream& operator<<(std::ostream& os, const Datagram& d) {
  if (d.n < 0) return os << "[" << ErrnoName(d.err) << "]";
  return os << d.n << " bytes from " << d.from;
}

// One recvfrom into a `max`-byte buffer; waits up to kWaitMs for a message first unless
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

// Checks that `d` is the echo reply of `family` to a request with sequence number `seq` and
// `payload`, sent from a socket whose identifier is `ident`, and that it came from loopback.
void ExpectEchoReply(int family, const Datagram& d, int ident, int seq, std::string_view payload) {
  ASSERT_GE(d.n, 8) << d;
  EXPECT_EQ(static_cast<size_t>(d.n), 8 + payload.size());
  EXPECT_EQ(Type(d.data), EchoReplyType(family));
  EXPECT_EQ(Code(d.data), 0);
  EXPECT_EQ(Ident(d.data), ident);
  EXPECT_EQ(Seq(d.data), seq);
  EXPECT_EQ(Payload(d.data), payload);
  if (d.from.len != 0) {
    EXPECT_EQ(d.from.family(), family);
    EXPECT_EQ(d.from.ip(), Loopback(family).ip());
  }
}

// Before any test: ping sockets must be open to this process's group. If they are not
// (EACCES: the group is outside /proc/sys/net/ipv4/ping_group_range, "1 0" in a fresh
// network namespace), the range is widened to every group; a failure to write is ignored,
// and the check that follows then says why every test would fail.
class PingGroupEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    errno = 0;
    Fd probe(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    if (!probe.valid() && errno == EACCES) {
      WriteFile("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
      probe = Fd(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    }
    ASSERT_TRUE(probe.valid()) << "socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP): " << ErrnoName(errno)
                               << ": is gid " << getgid()
                               << " within /proc/sys/net/ipv4/ping_group_range ("
                               << ReadFile("/proc/sys/net/ipv4/ping_group_range") << ")?";
  }
};

[[maybe_unused]] ::testing::Environment* const kPingGroupEnvironment =
    ::testing::AddGlobalTestEnvironment(new PingGroupEnvironment);

// ---------------------------------------------------------------------------------------
// Creating ping sockets.

// A ping socket is a datagram socket of its family whose protocol is ICMP or ICMPv6.
TEST(PingCreateTest, APingSocketIsADatagramSocketOfTheIcmpProtocol) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_DOMAIN), family);
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_PROTOCOL), PingProtocol(family));
  }
}

// Before anything is sent, a ping socket is named the wildcard with identifier 0, and a
// sendto picks an identifier without binding an address.
TEST(PingCreateTest, SendtoPicksAnIdentifierButLeavesTheAddressWildcard) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    const Addr before = SockName(fd.get());
    EXPECT_EQ(before.len, family == AF_INET ? 16u : 28u) << before;
    EXPECT_EQ(before.ip(), Wildcard(family).ip());
    EXPECT_EQ(before.port(), 0);
    ASSERT_OK(SendTo(fd.get(), EchoRequest(family, 1, "x"), Loopback(family)));
    const Addr after = SockName(fd.get());
    EXPECT_EQ(after.len, before.len) << after;
    EXPECT_EQ(after.ip(), Wildcard(family).ip());
    EXPECT_NE(after.port(), 0);
    ExpectEchoReply(family, RecvFrom(fd.get()), after.port(), 1, "x");
  }
}

// ---------------------------------------------------------------------------------------
// Echo requests and replies.

// The reply comes from loopback with the request's sequence number and payload; the kernel
// rewrites the identifier to the socket's own (its port in getsockname) whatever was sent.
TEST(PingEchoTest, SendingAnEchoRequestToLoopbackGetsTheReply) {
  const std::string payload = "husk ping payload\x01\x02\xff";
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    const std::string request = EchoRequest(family, 0x0107, payload);
    ASSERT_EQ(SendTo(fd.get(), request, Loopback(family)), static_cast<ssize_t>(request.size()))
        << ErrnoName(errno);
    const int ident = SockName(fd.get()).port();
    const Datagram d = RecvFrom(fd.get());
    ExpectEchoReply(family, d, ident, 0x0107, payload);
    // The sender: loopback, port 0, at the family's full length.
    EXPECT_EQ(d.from.len, family == AF_INET ? 16u : 28u) << d.from;
    EXPECT_EQ(d.from.port(), 0) << d.from;
    if (family == AF_INET6) {
      EXPECT_EQ(d.from.v6().sin6_flowinfo, 0u);
      EXPECT_EQ(d.from.v6().sin6_scope_id, 0u);
    } else {
      // The IPv4 reply's checksum covers the ICMP message alone, and verifies.
      EXPECT_EQ(OnesComplementSum(d.data), 0xffffu);
    }
    // One request, one reply.
    EXPECT_EQ(RecvFrom(fd.get(), 4096, MSG_DONTWAIT).err, EAGAIN);
  }
}

// Requests with sequence numbers 1..5 get five replies, in order.
TEST(PingEchoTest, SeveralRequestsGetTheirRepliesInOrder) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    for (int seq = 1; seq <= 5; seq++) {
      ASSERT_OK(
          SendTo(fd.get(), EchoRequest(family, seq, "n" + std::to_string(seq)), Loopback(family)));
    }
    const int ident = SockName(fd.get()).port();
    for (int seq = 1; seq <= 5; seq++) {
      SCOPED_TRACE(seq);
      ExpectEchoReply(family, RecvFrom(fd.get()), ident, seq, "n" + std::to_string(seq));
    }
    EXPECT_EQ(RecvFrom(fd.get(), 4096, MSG_DONTWAIT).err, EAGAIN);
  }
}

// ---------------------------------------------------------------------------------------
// What sendto refuses.

// Only an echo request (code 0) may be sent: an echo reply, the other family's echo request,
// another type or a nonzero code are EINVAL, and nothing goes out.
TEST(PingSendTest, OnlyAnEchoRequestMayBeSent) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    const Addr to = Loopback(family);
    const uint8_t other_types[] = {
        EchoReplyType(family),
        family == AF_INET ? kIcmp6EchoRequest : kIcmpEchoRequest,
        family == AF_INET ? kIcmpTimestamp : kIcmp6DestUnreach,
    };
    for (uint8_t type : other_types) {
      SCOPED_TRACE(static_cast<int>(type));
      EXPECT_ERRNO(SendTo(fd.get(), IcmpMessage(type, 0, 1, 1, "abcd"), to), EINVAL);
    }
    EXPECT_ERRNO(SendTo(fd.get(), IcmpMessage(EchoRequestType(family), 1, 1, 1, "abcd"), to),
                 EINVAL);
    EXPECT_EQ(RecvFrom(fd.get(), 4096, MSG_DONTWAIT).err, EAGAIN);
  }
}

// A message shorter than the 8-byte ICMP header is EINVAL, even a well-begun echo request;
// the bare header is a valid request, and its reply is 8 bytes too.
TEST(PingSendTest, AMessageShorterThanTheHeaderIsEinvalButTheBareHeaderIsARequest) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    const std::string request = EchoRequest(family, 1, "");
    for (size_t len = 0; len < 8; len++) {
      SCOPED_TRACE(len);
      EXPECT_ERRNO(SendTo(fd.get(), std::string_view(request).substr(0, len), Loopback(family)),
                   EINVAL);
    }
    EXPECT_EQ(RecvFrom(fd.get(), 4096, MSG_DONTWAIT).err, EAGAIN);
    ASSERT_EQ(SendTo(fd.get(), request, Loopback(family)), 8) << ErrnoName(errno);
    ExpectEchoReply(family, RecvFrom(fd.get()), SockName(fd.get()).port(), 1, "");
  }
}

// An unconnected ping socket has nowhere to send without an address.
TEST(PingSendTest, SendingWithoutAnAddressWhileUnconnectedIsEdestaddrreq) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    const std::string request = EchoRequest(family, 1, "abcd");
    EXPECT_ERRNO(Send(fd.get(), request), EDESTADDRREQ);
    EXPECT_ERRNO(sendto(fd.get(), request.data(), request.size(), 0, nullptr, 0), EDESTADDRREQ);
  }
}

// An IPv4 ping socket wants a sockaddr_in: another family is EAFNOSUPPORT, a length short of
// 16 bytes EINVAL.
TEST(PingSendTest, AnIpv4PingSocketRefusesOtherFamiliesAndShortAddresses) {
  Fd fd = PingSocket(AF_INET);
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  const std::string request = EchoRequest(AF_INET, 1, "abcd");
  EXPECT_ERRNO(SendTo(fd.get(), request, Loopback(AF_INET6)), EAFNOSUPPORT);
  Addr unspec = Loopback(AF_INET);
  unspec.v4().sin_family = AF_UNSPEC;
  EXPECT_ERRNO(SendTo(fd.get(), request, unspec), EAFNOSUPPORT);
  for (socklen_t len : {8u, 15u}) {
    Addr short_addr = Loopback(AF_INET);
    short_addr.len = len;
    SCOPED_TRACE(len);
    EXPECT_ERRNO(SendTo(fd.get(), request, short_addr), EINVAL);
  }
  EXPECT_EQ(RecvFrom(fd.get(), 4096, MSG_DONTWAIT).err, EAGAIN);
}

// An IPv6 ping socket does not reach IPv4 through a v4-mapped address (EINVAL), and wants a
// full 28-byte sockaddr_in6 (a sockaddr_in, or the 24-byte RFC 2133 form, are EINVAL; another
// family at full length is EAFNOSUPPORT).
TEST(PingSendTest, AnIpv6PingSocketRefusesV4MappedAndShortAddresses) {
  Fd fd = PingSocket(AF_INET6);
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  const std::string request = EchoRequest(AF_INET6, 1, "abcd");
  EXPECT_ERRNO(SendTo(fd.get(), request, MakeAddr(AF_INET6, "::ffff:127.0.0.1")), EINVAL);
  EXPECT_ERRNO(SendTo(fd.get(), request, Loopback(AF_INET)), EINVAL);
  Addr rfc2133 = Loopback(AF_INET6);
  rfc2133.len = 24;
  EXPECT_ERRNO(SendTo(fd.get(), request, rfc2133), EINVAL);
  Addr inet = Loopback(AF_INET6);
  inet.v6().sin6_family = AF_INET;
  EXPECT_ERRNO(SendTo(fd.get(), request, inet), EAFNOSUPPORT);
  EXPECT_EQ(RecvFrom(fd.get(), 4096, MSG_DONTWAIT).err, EAGAIN);
}

// ---------------------------------------------------------------------------------------
// connect and getpeername.

// After connect to loopback, send() needs no address and the reply comes back to recv; the
// socket is named by loopback and an identifier picked by connect.
TEST(PingConnectTest, AConnectedSocketSendsWithoutAnAddressAndGetsTheReply) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    ASSERT_OK(Connect(fd.get(), Loopback(family)));
    const Addr name = SockName(fd.get());
    EXPECT_EQ(name.ip(), Loopback(family).ip()) << name;
    EXPECT_NE(name.port(), 0) << name;
    ASSERT_OK(Send(fd.get(), EchoRequest(family, 3, "connected")));
    ASSERT_NE(Revents(fd.get(), POLLIN, kWaitMs) & POLLIN, 0);
    char buf[64];
    const ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    ASSERT_EQ(n, 17) << ErrnoName(errno);
    Datagram d;
    d.n = n;
    d.data.assign(buf, n);
    ExpectEchoReply(family, d, name.port(), 3, "connected");
  }
}

// A ping socket has no peer port; getpeername reports a peer only if connect's address had a
// nonzero port: after a connect to port 0 it is ENOTCONN, after one to port 77 it is that
// address and port (which sending ignores: the reply still comes).
TEST(PingConnectTest, GetpeernameIsEnotconnUnlessConnectGaveAPort) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    EXPECT_ERRNO(GetPeerName(fd.get()), ENOTCONN);
    ASSERT_OK(Connect(fd.get(), Loopback(family)));
    EXPECT_ERRNO(GetPeerName(fd.get()), ENOTCONN);

    Fd with_port = PingSocket(family);
    ASSERT_TRUE(with_port.valid()) << ErrnoName(errno);
    ASSERT_OK(Connect(with_port.get(), Loopback(family, 77)));
    const Addr peer = PeerName(with_port.get());
    EXPECT_EQ(peer.len, family == AF_INET ? 16u : 28u) << peer;
    EXPECT_EQ(peer.ip(), Loopback(family).ip()) << peer;
    EXPECT_EQ(peer.port(), 77) << peer;
    ASSERT_OK(Send(with_port.get(), EchoRequest(family, 4, "p")));
    ExpectEchoReply(family, RecvFrom(with_port.get()), SockName(with_port.get()).port(), 4, "p");
  }
}

// ---------------------------------------------------------------------------------------
// bind: choosing the identifier.

constexpr int kIdent = 4242;
constexpr int kOtherIdent = 4243;

// The port given to bind is the identifier every request goes out with, and so the reply's.
TEST(PingBindTest, BindingAnIdentifierMakesItTheRepliesIdentifier) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    ASSERT_OK(Bind(fd.get(), Loopback(family, kIdent)));
    const Addr name = SockName(fd.get());
    EXPECT_EQ(name.ip(), Loopback(family).ip()) << name;
    EXPECT_EQ(name.port(), kIdent) << name;
    ASSERT_OK(SendTo(fd.get(), EchoRequest(family, 5, "bound"), Loopback(family)));
    ExpectEchoReply(family, RecvFrom(fd.get()), kIdent, 5, "bound");
    EXPECT_EQ(SockName(fd.get()).port(), kIdent);
    // Once bound, a second bind is EINVAL.
    EXPECT_ERRNO(Bind(fd.get(), Loopback(family, kOtherIdent)), EINVAL);
  }
}

// Binding port 0 picks an identifier, as sendto would.
TEST(PingBindTest, BindingPortZeroPicksAnIdentifier) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    ASSERT_OK(Bind(fd.get(), Loopback(family)));
    const int ident = SockName(fd.get()).port();
    EXPECT_NE(ident, 0);
    ASSERT_OK(SendTo(fd.get(), EchoRequest(family, 6, "zero"), Loopback(family)));
    ExpectEchoReply(family, RecvFrom(fd.get()), ident, 6, "zero");
  }
}

// SO_REUSEADDR is on by default for ping sockets, so two of them may hold one identifier;
// if either has it off, the second bind is EADDRINUSE, whatever address it names.
TEST(PingBindTest, TwoSocketsShareAnIdentifierUnlessOneClearsSoReuseaddr) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd first = PingSocket(family);
    Fd second = PingSocket(family);
    ASSERT_TRUE(first.valid() && second.valid()) << ErrnoName(errno);
    EXPECT_EQ(GetInt(first.get(), SOL_SOCKET, SO_REUSEADDR), 1);
    ASSERT_OK(Bind(first.get(), Loopback(family, kIdent)));
    ASSERT_OK(Bind(second.get(), Loopback(family, kIdent)));
    EXPECT_EQ(SockName(second.get()).port(), kIdent);

    // The newcomer without SO_REUSEADDR.
    Fd strict = PingSocket(family);
    ASSERT_TRUE(strict.valid()) << ErrnoName(errno);
    ASSERT_OK(SetInt(strict.get(), SOL_SOCKET, SO_REUSEADDR, 0));
    EXPECT_ERRNO(Bind(strict.get(), Loopback(family, kIdent)), EADDRINUSE);
    EXPECT_ERRNO(Bind(strict.get(), Wildcard(family, kIdent)), EADDRINUSE);
    EXPECT_EQ(SockName(strict.get()).port(), 0);

    // The holder without SO_REUSEADDR.
    ASSERT_OK(Bind(strict.get(), Loopback(family, kOtherIdent)));
    Fd late = PingSocket(family);
    ASSERT_TRUE(late.valid()) << ErrnoName(errno);
    EXPECT_ERRNO(Bind(late.get(), Loopback(family, kOtherIdent)), EADDRINUSE);
    EXPECT_ERRNO(Bind(late.get(), Wildcard(family, kOtherIdent)), EADDRINUSE);
  }
}

// ---------------------------------------------------------------------------------------
// Receiving.

// MSG_PEEK returns the reply and leaves it for the next receive.
TEST(PingRecvTest, MsgPeekLeavesTheReplyQueued) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    ASSERT_OK(SendTo(fd.get(), EchoRequest(family, 7, "peek"), Loopback(family)));
    const int ident = SockName(fd.get()).port();
    ExpectEchoReply(family, RecvFrom(fd.get(), 4096, MSG_PEEK), ident, 7, "peek");
    ExpectEchoReply(family, RecvFrom(fd.get(), 4096, MSG_PEEK), ident, 7, "peek");
    ExpectEchoReply(family, RecvFrom(fd.get()), ident, 7, "peek");
    EXPECT_EQ(RecvFrom(fd.get(), 4096, MSG_DONTWAIT).err, EAGAIN);
  }
}

// A buffer shorter than the reply gets its first bytes, MSG_TRUNC in msg_flags, and the rest
// is dropped. Unlike UDP, asking for MSG_TRUNC does not make recvmsg return the full length:
// it returns what was copied.
TEST(PingRecvTest, AShortBufferTruncatesTheReplyAndSetsMsgTrunc) {
  const std::string payload = "0123456789ab";  // a 20-byte reply
  for (int family : kFamilies) {
    for (int flags : {0, static_cast<int>(MSG_TRUNC)}) {
      SCOPED_TRACE(std::string(FamilyName(family)) + (flags ? " MSG_TRUNC" : " no flags"));
      Fd fd = PingSocket(family);
      ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
      ASSERT_OK(SendTo(fd.get(), EchoRequest(family, 8, payload), Loopback(family)));
      ASSERT_NE(Revents(fd.get(), POLLIN, kWaitMs) & POLLIN, 0);
      char buf[4] = {};
      iovec iov{buf, sizeof(buf)};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      EXPECT_EQ(recvmsg(fd.get(), &msg, flags), 4) << ErrnoName(errno);
      EXPECT_NE(msg.msg_flags & MSG_TRUNC, 0) << msg.msg_flags;
      EXPECT_EQ(static_cast<uint8_t>(buf[0]), EchoReplyType(family));
      EXPECT_EQ(buf[1], 0);
      EXPECT_EQ(RecvFrom(fd.get(), 4096, MSG_DONTWAIT).err, EAGAIN);
    }
  }
}

// With nothing queued, recv with MSG_DONTWAIT is EAGAIN, before and after a reply.
TEST(PingRecvTest, RecvWithMsgDontwaitOnAnEmptySocketIsEagain) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    char buf[64];
    EXPECT_ERRNO(recv(fd.get(), buf, sizeof(buf), MSG_DONTWAIT), EAGAIN);
    ASSERT_OK(SendTo(fd.get(), EchoRequest(family, 1, "once"), Loopback(family)));
    ExpectEchoReply(family, RecvFrom(fd.get()), SockName(fd.get()).port(), 1, "once");
    EXPECT_ERRNO(recv(fd.get(), buf, sizeof(buf), MSG_DONTWAIT), EAGAIN);
  }
}

// A ping socket polls writable at once, and readable only while a reply is queued.
TEST(PingRecvTest, PollSaysPolloutAtOnceAndPollinOnlyOnceAReplyArrives) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT), POLLOUT);
    ASSERT_OK(SendTo(fd.get(), EchoRequest(family, 1, "poll"), Loopback(family)));
    EXPECT_EQ(Revents(fd.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT), POLLIN | POLLOUT);
    ExpectEchoReply(family, RecvFrom(fd.get(), 4096, MSG_DONTWAIT), SockName(fd.get()).port(), 1,
                    "poll");
    EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT), POLLOUT);
  }
}

// ---------------------------------------------------------------------------------------
// Hop limits.

// IP_TTL and IPV6_UNICAST_HOPS read back what was set; -1 restores the default.
TEST(PingOptionTest, TheHopLimitReadsBackWhatWasSet) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    const int level = HopLevel(family), name = HopOption(family);
    const int initial = GetInt(fd.get(), level, name);
    EXPECT_GE(initial, 1);
    EXPECT_LE(initial, 255);
    ASSERT_OK(SetInt(fd.get(), level, name, 42));
    EXPECT_EQ(GetInt(fd.get(), level, name), 42);
    ASSERT_OK(SetInt(fd.get(), level, name, 255));
    EXPECT_EQ(GetInt(fd.get(), level, name), 255);
    EXPECT_ERRNO(SetInt(fd.get(), level, name, 256), EINVAL);
    EXPECT_EQ(GetInt(fd.get(), level, name), 255);
    ASSERT_OK(SetInt(fd.get(), level, name, -1));
    EXPECT_EQ(GetInt(fd.get(), level, name), initial);
    // A request still goes out and comes back with the hop limit set.
    ASSERT_OK(SetInt(fd.get(), level, name, 1));
    ASSERT_OK(SendTo(fd.get(), EchoRequest(family, 2, "ttl"), Loopback(family)));
    ExpectEchoReply(family, RecvFrom(fd.get()), SockName(fd.get()).port(), 2, "ttl");
  }
}

// The hop-limit control message of `family`: IP_TTL or IPV6_HOPLIMIT, or -1 if there was
// none; *count (if given) gets how many control messages there were.
int ReceivedHopLimit(int family, msghdr& msg, int* count = nullptr) {
  const int level = HopLevel(family);
  const int type = family == AF_INET ? IP_TTL : IPV6_HOPLIMIT;
  int value = -1, n = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    n++;
    if (c->cmsg_level == level && c->cmsg_type == type && c->cmsg_len == CMSG_LEN(sizeof(int))) {
      memcpy(&value, CMSG_DATA(c), sizeof(int));
    }
  }
  if (count != nullptr) *count = n;
  return value;
}

// With IP_RECVTTL or IPV6_RECVHOPLIMIT on, recvmsg gives the reply's hop limit (1..255) as a
// control message; without it, no control message comes.
TEST(PingOptionTest, RecvttlAndRecvhoplimitGiveTheRepliesHopLimit) {
  for (int family : kFamilies) {
    SCOPED_TRACE(FamilyName(family));
    Fd fd = PingSocket(family);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    for (bool on : {false, true}) {
      SCOPED_TRACE(on ? "on" : "off");
      if (on) {
        ASSERT_OK(SetInt(fd.get(), HopLevel(family),
                         family == AF_INET ? IP_RECVTTL : IPV6_RECVHOPLIMIT, 1));
      }
      ASSERT_OK(SendTo(fd.get(), EchoRequest(family, 1, "hops"), Loopback(family)));
      ASSERT_NE(Revents(fd.get(), POLLIN, kWaitMs) & POLLIN, 0);
      char buf[64];
      alignas(cmsghdr) char control[256];
      iovec iov{buf, sizeof(buf)};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ASSERT_EQ(recvmsg(fd.get(), &msg, 0), 12) << ErrnoName(errno);
      EXPECT_EQ(msg.msg_flags & MSG_CTRUNC, 0);
      int count = 0;
      const int hops = ReceivedHopLimit(family, msg, &count);
      if (on) {
        EXPECT_EQ(count, 1);
        EXPECT_GE(hops, 1);
        EXPECT_LE(hops, 255);
      } else {
        EXPECT_EQ(msg.msg_controllen, 0u);
        EXPECT_EQ(count, 0);
      }
    }
  }
}

}  // namespace
}  // namespace husk_test
