// Helpers the inet socket conformance files share (inet_loopback,
// socket_semantics, ping_socket): an IPv4 or IPv6 address with its length,
// the loopback and wildcard ones, and thin wrappers over the calls that take
// one, and over int socket options.
#ifndef HUSK_TESTS_SYSCALLS_INET_UTIL_H_
#define HUSK_TESTS_SYSCALLS_INET_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ostream>
#include <string>

#include "tests/syscalls/test_util.h"

namespace husk_test {

inline constexpr int kFamilies[] = {AF_INET, AF_INET6};

inline const char* FamilyName(int family) { return family == AF_INET ? "AF_INET" : "AF_INET6"; }

// An IPv4 or IPv6 socket address and its length.
struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;

  sockaddr* get() { return reinterpret_cast<sockaddr*>(&ss); }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
  sockaddr_in& v4() { return reinterpret_cast<sockaddr_in&>(ss); }
  const sockaddr_in& v4() const { return reinterpret_cast<const sockaddr_in&>(ss); }
  sockaddr_in6& v6() { return reinterpret_cast<sockaddr_in6&>(ss); }
  const sockaddr_in6& v6() const { return reinterpret_cast<const sockaddr_in6&>(ss); }
  int family() const { return ss.ss_family; }
  // The port (for a ping socket, its ICMP identifier).
  int port() const { return ntohs(family() == AF_INET6 ? v6().sin6_port : v4().sin_port); }
  void set_port(int port) {
    if (family() == AF_INET6) {
      v6().sin6_port = htons(port);
    } else {
      v4().sin_port = htons(port);
    }
  }
  // The address without the port, as inet_ntop spells it.
  std::string ip() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET6) return inet_ntop(AF_INET6, &v6().sin6_addr, buf, sizeof(buf));
    if (family() == AF_INET) return inet_ntop(AF_INET, &v4().sin_addr, buf, sizeof(buf));
    return "family " + std::to_string(family());
  }
};

inline bool operator==(const Addr& a, const Addr& b) {
  if (a.len != b.len || a.family() != b.family() || a.port() != b.port()) return false;
  if (a.family() == AF_INET) return a.v4().sin_addr.s_addr == b.v4().sin_addr.s_addr;
  return memcmp(&a.v6().sin6_addr, &b.v6().sin6_addr, sizeof(in6_addr)) == 0 &&
         a.v6().sin6_flowinfo == b.v6().sin6_flowinfo &&
         a.v6().sin6_scope_id == b.v6().sin6_scope_id;
}

inline std::ostream& operator<<(std::ostream& os, const Addr& a) {
  if (a.len == ~0u) return os << "[no address]";
  if (a.family() == AF_INET6) return os << "[" << a.ip() << "]:" << a.port() << "/" << a.len;
  return os << a.ip() << ":" << a.port() << "/" << a.len;
}

// `ip` (numeric, of `family`) and `port`, with the family's full length (16 or 28).
inline Addr MakeAddr(int family, const char* ip, int port = 0) {
  Addr a;
  if (family == AF_INET6) {
    a.v6().sin6_family = AF_INET6;
    EXPECT_EQ(inet_pton(AF_INET6, ip, &a.v6().sin6_addr), 1) << ip;
    a.len = sizeof(sockaddr_in6);
  } else {
    a.v4().sin_family = AF_INET;
    EXPECT_EQ(inet_pton(AF_INET, ip, &a.v4().sin_addr), 1) << ip;
    a.len = sizeof(sockaddr_in);
  }
  a.set_port(port);
  return a;
}

inline Addr Loopback(int family, int port = 0) {
  return MakeAddr(family, family == AF_INET6 ? "::1" : "127.0.0.1", port);
}

inline Addr Wildcard(int family, int port = 0) {
  return MakeAddr(family, family == AF_INET6 ? "::" : "0.0.0.0", port);
}

inline Fd Socket(int family, int type, int protocol = 0) {
  return Fd(socket(family, type, protocol));
}

inline int Bind(int fd, const Addr& a) { return bind(fd, a.get(), a.len); }
inline int Connect(int fd, const Addr& a) { return connect(fd, a.get(), a.len); }

// The socket's name or its peer's; a length of ~0 if the call failed.
inline Addr SockName(int fd) {
  Addr a;
  a.len = sizeof(a.ss);
  if (getsockname(fd, a.get(), &a.len) != 0) a.len = ~0u;
  return a;
}

inline Addr PeerName(int fd) {
  Addr a;
  a.len = sizeof(a.ss);
  if (getpeername(fd, a.get(), &a.len) != 0) a.len = ~0u;
  return a;
}

// getpeername(2)'s result alone, for its errno.
inline int GetPeerName(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  return getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len);
}

// getsockopt of an int: the value, or -1000 - errno, or -2000 - the length if it is not 4.
inline int GetInt(int fd, int level, int name) {
  int v = -12345;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, level, name, &v, &len) != 0) return -1000 - errno;
  if (len != sizeof(v)) return -2000 - static_cast<int>(len);
  return v;
}

inline int SetInt(int fd, int level, int name, int v) {
  return setsockopt(fd, level, name, &v, sizeof(v));
}

}  // namespace husk_test

#endif  // HUSK_TESTS_SYSCALLS_INET_UTIL_H_
