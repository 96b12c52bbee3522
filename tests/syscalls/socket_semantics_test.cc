// Conformance: socket semantics that careful programs rely on, beyond what
// inet_loopback_test.cc, unix_socket_test.cc and netlink_test.cc already check. Over loopback
// only (127.0.0.0/8 and ::1), unix sockets and netlink route sockets. Covers TCP (MSG_PEEK at
// EOF, MSG_TRUNC discarding stream bytes, MSG_WAITALL cut short by SO_RCVTIMEO, EOF through
// every read call, shutdown(SHUT_RD) on connections and on listeners, names after FIN and
// RST, the accept queue's order and its fate when the listener closes, backlog 0, connect
// with AF_UNSPEC, a socket connected to itself, connect to the wildcard, sendto's address
// ignored, FIONREAD and the FIN, SIOCOUTQ, SO_RCVTIMEO/SO_SNDTIMEO/SO_RCVLOWAT, urgent data,
// TCP_INFO's state, sendfile, readv/writev, 8 MB each way at once, SO_PEERCRED and
// SCM_RIGHTS on TCP); bind conflicts between distinct, wildcard and connected addresses; poll
// masks after the peer's close, its reset and one's own SHUT_RD; epoll edge-triggered,
// one-shot and unrequested HUP/ERR on TCP; socket options (TCP keepalive knobs and their
// sysctl defaults, TCP_MAXSEG, TCP_USER_TIMEOUT, TCP_SYNCNT, TCP_DEFER_ACCEPT, IP_TTL and its
// one-byte form, IP_TOS and ECN, IPV6_UNICAST_HOPS, IPV6_TCLASS, booleans, read-only options,
// short and negative lengths, SO_RCVTIMEO's checks); the errors every socket call gives for a
// non-socket (ENOTSOCK), a bad descriptor (EBADF) and a bad pointer (EFAULT); UDP (a fresh
// socket's poll mask, MSG_PEEK, short address buffers, scatter/gather, sendmmsg to several
// destinations, which loopback address a socket hears, IP_PKTINFO, IPV6_PKTINFO, IP_RECVTTL,
// IPV6_RECVHOPLIMIT, SO_TIMESTAMP, a full receive buffer dropping datagrams and SO_RXQ_OVFL
// counting them, reconnecting, zero-byte reads, shutdown); IPv6 (binding a v4-mapped address,
// IPV6_V6ONLY's default and what it forbids); unix sockets (symlinks, open(2) of a socket
// node, renaming it, SO_PEEK_OFF, poll on a full datagram receiver, datagram shutdown);
// /proc/net/tcp, tcp6, udp and udp6 (states 01, 05, 07, 08, 0A, the queues, uid and inode);
// netlink route sockets (their type, autobind on send, two sockets in one process, a single
// RTM_GETLINK with its ack, ENODEV, truncation, sequence numbers and port ids); IPv6
// multicast (IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP, IPV6_MULTICAST_ALL and IPV6_MULTICAST_IF,
// joining and leaving groups, and that loopback alone has no route to a group).
//
// The network namespace is assumed to hold only "lo", up, as in husk's sandbox and in
// husk_fence: a global check fails the binary at once if 127.0.0.1 cannot be reached. Every
// port is one the test bound itself or an ephemeral one. Cases that change process state or
// need a second process run in a forked child, which reports a failed check on stderr and
// exits 1; every child is waited for with a bound. Blocking calls that could hang wait
// through poll or SO_RCVTIMEO for at most kWaitMs; the few timing checks only bound from
// below what a timeout waited, with a wide margin.
//
// Relies on, beyond the start-up set in test_util.h: socket, socketpair, bind, listen,
// accept, accept4, connect, getsockname, getpeername, getsockopt, setsockopt, sendto,
// recvfrom, sendmsg, recvmsg, sendmmsg, shutdown, ioctl (FIONREAD, SIOCOUTQ, SIOCATMARK),
// fcntl, poll, epoll_create1, epoll_ctl, epoll_wait, readv, writev, sendfile, pipe2, mmap,
// munmap, symlink, rename, fork, wait4, kill, getpid, getuid, clock_gettime, gettimeofday,
// /proc/net/{tcp,tcp6,udp,udp6} and /proc/sys/net/{ipv4,ipv6}/...
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/syscalls/inet_util.h"
#include "tests/syscalls/socket_util.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

// ---------------------------------------------------------------------------------------
// Helpers: inet addresses and sockets.

// The errno of a getsockopt of an int, or 0 if it succeeded.
int GetErrno(int fd, int level, int name) {
  int v = 0;
  socklen_t len = sizeof(v);
  return getsockopt(fd, level, name, &v, &len) == 0 ? 0 : errno;
}

// The errno of a setsockopt of an int, or 0 if it succeeded.
int SetErrno(int fd, int level, int name, int v) {
  return SetInt(fd, level, name, v) == 0 ? 0 : errno;
}

// A sysctl under /proc/sys as a number (-1 if unreadable).
int Sysctl(const std::string& path) {
  const std::string s = ReadFile("/proc/sys/" + path);
  int v = -1;
  if (sscanf(s.c_str(), "%d", &v) != 1) ADD_FAILURE() << "/proc/sys/" << path << ": '" << s << "'";
  return v;
}

// A TCP socket bound to `at` and listening; *bound (if given) gets its name.
Fd Listener(const Addr& at, Addr* bound = nullptr, int type_flags = 0, int backlog = 16) {
  Fd fd = Socket(at.family(), SOCK_STREAM | type_flags);
  if (!fd.valid() || Bind(fd.get(), at) != 0 || listen(fd.get(), backlog) != 0) {
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

// Polls `fd` for `events` until all of `want` are in revents (at most kWaitMs); returns the
// last revents.
int ReventsSoon(int fd, short events, int want) {
  const int64_t end = NowMs() + kWaitMs;
  int r = Revents(fd, events);
  while (r >= 0 && (r & want) != want && NowMs() < end) {
    timespec ts{0, 1000 * 1000};
    nanosleep(&ts, nullptr);
    r = Revents(fd, events);
  }
  return r;
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

// connect(2) that never blocks for long: nonblocking, then up to kWaitMs for the outcome.
// Returns 0 or the errno it failed with (ETIMEDOUT if it never finished); leaves O_NONBLOCK
// as it was.
int ConnectBounded(int fd, const Addr& a) {
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return errno;
  int err = Connect(fd, a) == 0 ? 0 : errno;
  if (err == EINPROGRESS) {
    if ((Revents(fd, POLLOUT, kWaitMs) & (POLLOUT | POLLERR | POLLHUP)) == 0) {
      err = ETIMEDOUT;
    } else {
      int soerr = 0;
      socklen_t len = sizeof(soerr);
      err = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 ? soerr : errno;
    }
  }
  fcntl(fd, F_SETFL, fl);
  return err;
}

// send(2) of all of `s` in one call; MSG_NOSIGNAL so that a failing test never dies of SIGPIPE.
bool Send(int fd, std::string_view s, int flags = MSG_NOSIGNAL) {
  return send(fd, s.data(), s.size(), flags) == static_cast<ssize_t>(s.size());
}

int Queued(int fd, unsigned long request = FIONREAD) {
  int n = -1;
  return ioctl(fd, request, &n) == 0 ? n : -1000 - errno;
}

// Waits up to kWaitMs for ioctl `request` on `fd` to give exactly `n`; returns the last value.
int QueuedSoon(int fd, int n, unsigned long request = FIONREAD) {
  const int64_t end = NowMs() + kWaitMs;
  int q = Queued(fd, request);
  while (q != n && q > -1000 && NowMs() < end) {
    timespec ts{0, 1000 * 1000};
    nanosleep(&ts, nullptr);
    q = Queued(fd, request);
  }
  return q;
}

int SetTimeout(int fd, int name, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  return setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv));
}

// What one recvmsg(2) brought, with the ancillary data these tests ask for.
struct Message {
  ssize_t n = -1;
  int err = 0;
  std::string data;
  Addr from;
  int flags = 0;
  int cmsgs = 0;
  bool has_pktinfo = false;
  in_pktinfo pktinfo{};
  bool has_pktinfo6 = false;
  in6_pktinfo pktinfo6{};
  int ttl = -1;
  int hoplimit = -1;
  bool has_timestamp = false;
  timeval timestamp{};
  int64_t dropped = -1;
  int rights = 0;  // descriptors received by SCM_RIGHTS (closed at once)
};

// One recvmsg into a `max`-byte buffer; waits up to kWaitMs first unless `flags` has
// MSG_DONTWAIT.
Message RecvMsg(int fd, size_t max = 4096, int flags = 0) {
  Message m;
  if (!(flags & MSG_DONTWAIT) && (Revents(fd, POLLIN, kWaitMs) & (POLLIN | POLLERR)) == 0) {
    m.err = ETIMEDOUT;
    return m;
  }
  std::string buf(max, '\0');
  iovec iov{buf.data(), max};
  alignas(cmsghdr) char control[512] = {};
  msghdr msg{};
  m.from.len = sizeof(m.from.ss);
  msg.msg_name = m.from.get();
  msg.msg_namelen = m.from.len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  m.n = recvmsg(fd, &msg, flags);
  if (m.n < 0) {
    m.err = errno;
    return m;
  }
  m.from.len = msg.msg_namelen;
  m.flags = msg.msg_flags;
  m.data.assign(buf.data(), std::min<size_t>(m.n, max));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    m.cmsgs++;
    const unsigned char* data = CMSG_DATA(c);
    if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_PKTINFO) {
      m.has_pktinfo = true;
      memcpy(&m.pktinfo, data, sizeof(m.pktinfo));
    } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      m.has_pktinfo6 = true;
      memcpy(&m.pktinfo6, data, sizeof(m.pktinfo6));
    } else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_TTL) {
      memcpy(&m.ttl, data, sizeof(int));
    } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
      memcpy(&m.hoplimit, data, sizeof(int));
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP) {
      m.has_timestamp = true;
      memcpy(&m.timestamp, data, sizeof(timeval));
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      uint32_t d;
      memcpy(&d, data, sizeof(d));
      m.dropped = d;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; i++) {
        int got;
        memcpy(&got, data + i * sizeof(int), sizeof(int));
        close(got);
        m.rights++;
      }
    }
  }
  return m;
}

ssize_t SendTo(int fd, std::string_view s, const Addr& to, int flags = MSG_NOSIGNAL) {
  return sendto(fd, s.data(), s.size(), flags, to.get(), to.len);
}

// TCP_INFO's tcpi_state, or -1000 - errno.
int TcpState(int fd) {
  tcp_info ti{};
  socklen_t len = sizeof(ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return -1000 - errno;
  return ti.tcpi_state;
}

// Waits up to kWaitMs for TcpState(fd) to be `state`; returns the last one seen.
int TcpStateSoon(int fd, int state) {
  const int64_t end = NowMs() + kWaitMs;
  int s = TcpState(fd);
  while (s != state && NowMs() < end) {
    timespec ts{0, 1000 * 1000};
    nanosleep(&ts, nullptr);
    s = TcpState(fd);
  }
  return s;
}

// A page that may not be touched: a pointer into it makes a call fail EFAULT.
class BadPage {
 public:
  BadPage() : p_(mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) {}
  ~BadPage() {
    if (p_ != MAP_FAILED) munmap(p_, 4096);
  }
  BadPage(const BadPage&) = delete;
  BadPage& operator=(const BadPage&) = delete;
  bool ok() const { return p_ != MAP_FAILED; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_;
};

// Writes to nonblocking `fd` until it would block (bounded); returns the bytes written.
size_t FillSendBuffer(int fd) {
  const std::string chunk(65536, 'f');
  size_t total = 0;
  for (int i = 0; i < 4096; i++) {
    const ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) break;
    total += n;
  }
  return total;
}

// Reads from `fd` until `want` bytes have come (waiting at most kWaitMs for each); returns
// how many did.
size_t Drain(int fd, size_t want) {
  std::vector<char> buf(1 << 16);
  size_t got = 0;
  while (got < want) {
    if ((Revents(fd, POLLIN, kWaitMs) & POLLIN) == 0) break;
    const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    got += n;
  }
  return got;
}

// A connected pair whose server end has a small receive buffer (set on the listener, so the
// window starts small and stays so) and whose client end a small, nonblocking send buffer:
// a few hundred kilobytes fill the path.
Conn NarrowConnection(int family) {
  Conn c;
  Fd listener = Socket(family, SOCK_STREAM);
  if (SetInt(listener.get(), SOL_SOCKET, SO_RCVBUF, 32768) != 0 ||
      Bind(listener.get(), Loopback(family)) != 0 || listen(listener.get(), 4) != 0) {
    ADD_FAILURE() << "narrow listener: " << ErrnoName(errno);
    return c;
  }
  c.client = Socket(family, SOCK_STREAM | SOCK_NONBLOCK);
  if (SetInt(c.client.get(), SOL_SOCKET, SO_SNDBUF, 32768) != 0) {
    ADD_FAILURE() << "SO_SNDBUF: " << ErrnoName(errno);
  }
  errno = 0;
  if (Connect(c.client.get(), SockName(listener.get())) != 0 && errno != EINPROGRESS) {
    ADD_FAILURE() << "connect: " << ErrnoName(errno);
    return c;
  }
  c.server = AcceptSoon(listener.get());
  if ((Revents(c.client.get(), POLLOUT, kWaitMs) & POLLOUT) == 0) ADD_FAILURE() << "not writable";
  return c;
}

// ---------------------------------------------------------------------------------------
// Helpers: unix addresses.

struct UnixAddr {
  sockaddr_un sa{};
  socklen_t len = 0;
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&sa); }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&sa); }
  std::string path() const {
    if (len <= offsetof(sockaddr_un, sun_path)) return "";
    return std::string(sa.sun_path, strnlen(sa.sun_path, len - offsetof(sockaddr_un, sun_path)));
  }
};

UnixAddr PathAddr(const std::string& path) {
  UnixAddr a;
  a.sa.sun_family = AF_UNIX;
  memcpy(a.sa.sun_path, path.data(), path.size());
  a.len = offsetof(sockaddr_un, sun_path) + path.size() + 1;
  return a;
}

UnixAddr AbstractAddr(const std::string& name) {
  UnixAddr a;
  a.sa.sun_family = AF_UNIX;
  memcpy(a.sa.sun_path + 1, name.data(), name.size());
  a.len = offsetof(sockaddr_un, sun_path) + 1 + name.size();
  return a;
}

std::string UniqueName() {
  static int counter = 0;
  return "husk-semantics-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

UnixAddr UnixSockName(int fd) {
  UnixAddr a;
  a.len = sizeof(a.sa);
  if (getsockname(fd, a.get(), &a.len) != 0) a.len = 0;
  return a;
}

UnixAddr UnixPeerName(int fd) {
  UnixAddr a;
  a.len = sizeof(a.sa);
  if (getpeername(fd, a.get(), &a.len) != 0) a.len = 0;
  return a;
}

struct Pair {
  Fd a, b;
};

Pair MakePair(int type) {
  int sv[2] = {-1, -1};
  EXPECT_EQ(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0) << ErrnoName(errno);
  return Pair{Fd(sv[0]), Fd(sv[1])};
}

// ---------------------------------------------------------------------------------------
// Helpers: /proc/net.

// One line of /proc/net/{tcp,tcp6,udp,udp6}.
struct ProcSocket {
  std::string local, remote, state, queues;
  long uid = -1;
  unsigned long inode = 0;
};

std::vector<ProcSocket> ProcNet(const std::string& table) {
  std::vector<ProcSocket> out;
  std::istringstream in(ReadFile("/proc/net/" + table));
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, timer, retransmits, timeout;
    ProcSocket s;
    if (fields >> sl >> s.local >> s.remote >> s.state >> s.queues >> timer >> retransmits >>
        s.uid >> timeout >> s.inode) {
      out.push_back(s);
    }
  }
  return out;
}

// How /proc/net spells an address: the IP's 32-bit words in hex as the CPU holds them, a
// colon, the port in hex.
std::string ProcAddr(const Addr& a) {
  const bool v4 = a.family() == AF_INET;
  const unsigned char* p =
      v4 ? reinterpret_cast<const unsigned char*>(&a.v4().sin_addr) : a.v6().sin6_addr.s6_addr;
  std::string out;
  char buf[16];
  for (int i = 0; i < (v4 ? 1 : 4); i++) {
    uint32_t word;
    memcpy(&word, p + 4 * i, 4);
    snprintf(buf, sizeof(buf), "%08X", word);
    out += buf;
  }
  snprintf(buf, sizeof(buf), ":%04X", a.port());
  return out + buf;
}

// Waits up to kWaitMs for /proc/net/`table` to list `local` with peer `remote` in `state`;
// returns that line, or one with an empty state if none came.
ProcSocket WaitProcSocket(const std::string& table, const Addr& local, const Addr& remote,
                          const std::string& state) {
  const std::string l = ProcAddr(local), r = ProcAddr(remote);
  const int64_t end = NowMs() + kWaitMs;
  for (;;) {
    for (const ProcSocket& s : ProcNet(table)) {
      if (s.local == l && s.remote == r && s.state == state) return s;
    }
    if (NowMs() > end) {
      ADD_FAILURE() << l << " -> " << r << " in state " << state << " not in /proc/net/" << table
                    << ":\n"
                    << ReadFile("/proc/net/" + table);
      return ProcSocket{};
    }
    timespec ts{0, 5 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

unsigned long Inode(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

// ---------------------------------------------------------------------------------------
// Helpers: epoll.

// An epoll instance watching `fd` for `events`.
Fd EpollOn(int fd, uint32_t events) {
  Fd ep(epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (!ep.valid() || epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    ADD_FAILURE() << "epoll: " << ErrnoName(errno);
  }
  return ep;
}

// One epoll_wait of at most `timeout_ms`: the events reported, 0 if none, ~0u on error.
uint32_t EpollEvents(int ep, int timeout_ms = 0) {
  epoll_event ev{};
  const int n = epoll_wait(ep, &ev, 1, timeout_ms);
  if (n < 0) return ~0u;
  return n == 0 ? 0 : ev.events;
}

// ---------------------------------------------------------------------------------------
// Helpers: netlink.

Fd Route(int type = SOCK_RAW) { return Fd(socket(AF_NETLINK, type | SOCK_CLOEXEC, NETLINK_ROUTE)); }

// Sends one request to the kernel: a header of `type` and `flags`, then `body`.
bool NlRequest(int fd, uint16_t type, uint16_t flags, uint32_t seq, const void* body, size_t len) {
  std::string msg(NLMSG_LENGTH(len), '\0');
  auto* h = reinterpret_cast<nlmsghdr*>(msg.data());
  h->nlmsg_len = msg.size();
  h->nlmsg_type = type;
  h->nlmsg_flags = flags;
  h->nlmsg_seq = seq;
  memcpy(NLMSG_DATA(h), body, len);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  return sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                sizeof(kernel)) == static_cast<ssize_t>(msg.size());
}

// The messages of replies to one request, up to and including the first NLMSG_ERROR or
// NLMSG_DONE (at most 16 datagrams, each waited for at most kWaitMs).
std::vector<std::string> NlReplies(int fd) {
  std::vector<std::string> out;
  std::vector<char> buf(65536);
  for (int datagrams = 0; datagrams < 16; datagrams++) {
    if ((Revents(fd, POLLIN, kWaitMs) & POLLIN) == 0) {
      ADD_FAILURE() << "no netlink reply";
      return out;
    }
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      ADD_FAILURE() << "recv: " << ErrnoName(errno);
      return out;
    }
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(n));
         h = NLMSG_NEXT(h, n)) {
      out.emplace_back(reinterpret_cast<char*>(h), h->nlmsg_len);
      if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) return out;
    }
  }
  ADD_FAILURE() << "no NLMSG_ERROR or NLMSG_DONE";
  return out;
}

const nlmsghdr* Header(const std::string& msg) {
  return reinterpret_cast<const nlmsghdr*>(msg.data());
}

// The attribute `type` of a message whose fixed part is `fixed` bytes.
std::string Attr(const std::string& msg, size_t fixed, uint16_t type) {
  const auto* h = Header(msg);
  int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(fixed)));
  const auto* a = reinterpret_cast<const rtattr*>(msg.data() + NLMSG_LENGTH(NLMSG_ALIGN(fixed)));
  for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == type) {
      return std::string(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a));
    }
  }
  return "";
}

uint32_t NlPortId(int fd) {
  sockaddr_nl a{};
  socklen_t len = sizeof(a);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return ~0u;
  return a.nl_pid;
}

// Before any test: 127.0.0.1 must be reachable, or every case would fail for that one reason.
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
// TCP: reading.

// MSG_PEEK at the end of a stream sees the last bytes and then EOF, and consumes neither.
TEST(SockTcpTest, MsgPeekSeesTheLastBytesThenEofWithoutConsumingThem) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_TRUE(Send(c.client.get(), "end"));
    c.client.Reset();
    EXPECT_EQ(RecvSoon(c.server.get(), 100, MSG_PEEK), "end") << FamilyName(family);
    EXPECT_EQ(Recv(c.server.get(), 100, MSG_PEEK), "end");
    EXPECT_EQ(Recv(c.server.get(), 100), "end");
    EXPECT_EQ(RecvSoon(c.server.get(), 100, MSG_PEEK), "[eof]");
    EXPECT_EQ(RecvNow(c.server.get()), "[eof]");
  }
}

// On a stream, MSG_TRUNC throws away up to len bytes without copying them (the buffer may be
// null) and returns how many went.
TEST(SockTcpTest, MsgTruncDiscardsBytesWithoutCopyingThem) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_TRUE(Send(c.client.get(), "0123456789"));
    ASSERT_EQ(QueuedSoon(c.server.get(), 10), 10);
    EXPECT_EQ(recv(c.server.get(), nullptr, 4, MSG_TRUNC | MSG_DONTWAIT), 4) << ErrnoName(errno);
    EXPECT_EQ(Queued(c.server.get()), 6);
    EXPECT_EQ(RecvNow(c.server.get()), "456789");
  }
}

// When SO_RCVTIMEO runs out during a MSG_WAITALL read, the read returns what came; with
// nothing at all it fails EAGAIN.
TEST(SockTcpTest, MsgWaitallGivesWhatCameWhenSoRcvtimeoRunsOut) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  ASSERT_TRUE(Send(c.client.get(), "abc"));
  ASSERT_EQ(QueuedSoon(c.server.get(), 3), 3);
  ASSERT_OK(SetTimeout(c.server.get(), SO_RCVTIMEO, 200));
  const int64_t start = NowMs();
  EXPECT_EQ(Recv(c.server.get(), 10, MSG_WAITALL), "abc");
  EXPECT_GE(NowMs() - start, 150);
  EXPECT_EQ(Recv(c.server.get(), 10, MSG_WAITALL), "[EAGAIN]");
}

// After the peer's FIN every read call returns 0, again and again.
TEST(SockTcpTest, EveryReadCallKeepsReturningZeroAfterThePeersFin) {
  Conn c = Connected(AF_INET6);
  ASSERT_TRUE(c.server.valid());
  ASSERT_OK(shutdown(c.client.get(), SHUT_WR));
  ASSERT_EQ(RecvSoon(c.server.get()), "[eof]");
  char buf[8];
  EXPECT_EQ(read(c.server.get(), buf, sizeof(buf)), 0);
  iovec iov{buf, sizeof(buf)};
  EXPECT_EQ(readv(c.server.get(), &iov, 1), 0);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  EXPECT_EQ(recvmsg(c.server.get(), &msg, 0), 0);
  EXPECT_EQ(recvfrom(c.server.get(), buf, sizeof(buf), MSG_DONTWAIT, nullptr, nullptr), 0);
  EXPECT_EQ(Recv(c.server.get(), 8, MSG_WAITALL), "[eof]");
  EXPECT_EQ(Recv(c.server.get()), "[eof]");
}

// After its own SHUT_RD a TCP socket reads EOF at once, blocking or not; what the peer sends
// afterwards is still accepted (its writes succeed).
TEST(SockTcpTest, OwnShutdownRdMakesReadsReturnZeroAtOnce) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_OK(shutdown(c.server.get(), SHUT_RD));
    EXPECT_EQ(RecvNow(c.server.get()), "[eof]") << FamilyName(family);
    EXPECT_TRUE(ChildSucceeds([&] {  // a blocking read, bounded by the child's
      REQUIRE(Recv(c.server.get()) == "[eof]");
      return 0;
    }));
    EXPECT_TRUE(Send(c.client.get(), "still")) << ErrnoName(errno);
    EXPECT_EQ(GetInt(c.client.get(), SOL_SOCKET, SO_ERROR), 0);
  }
}

// Scatter and gather: writev's pieces arrive as one stream, readv fills its buffers in order.
TEST(SockTcpTest, WritevGathersAndReadvScatters) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  char a[] = "ab", b[] = "cde", d[] = "f";
  iovec out[3] = {{a, 2}, {b, 3}, {d, 1}};
  ASSERT_EQ(writev(c.client.get(), out, 3), 6) << ErrnoName(errno);
  ASSERT_EQ(QueuedSoon(c.server.get(), 6), 6);
  char x[2] = {}, y[10] = {};
  iovec in[2] = {{x, sizeof(x)}, {y, sizeof(y)}};
  EXPECT_EQ(readv(c.server.get(), in, 2), 6);
  EXPECT_EQ(std::string(x, 2), "ab");
  EXPECT_EQ(std::string(y, 4), "cdef");
}

// ---------------------------------------------------------------------------------------
// TCP: names, accept, connect.

// After the peer's FIN the connection (CLOSE_WAIT) still has its peer's name.
TEST(SockTcpTest, GetpeernameStillWorksAfterThePeersFin) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    const Addr peer = SockName(c.client.get());
    c.client.Reset();
    ASSERT_EQ(RecvSoon(c.server.get()), "[eof]");
    EXPECT_EQ(PeerName(c.server.get()), peer);
  }
}

// A reset ends the connection: once read, getpeername fails ENOTCONN.
TEST(SockTcpTest, GetpeernameFailsEnotconnAfterAReset) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    linger l{1, 0};
    ASSERT_OK(setsockopt(c.server.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l)));
    c.server.Reset();
    EXPECT_EQ(RecvSoon(c.client.get()), "[ECONNRESET]") << FamilyName(family);
    EXPECT_ERRNO(GetPeerName(c.client.get()), ENOTCONN);
    EXPECT_EQ(SockName(c.client.get()).family(), family);
  }
}

// Connections wait in the accept queue in the order they completed.
TEST(SockTcpTest, AcceptReturnsConnectionsInTheOrderTheyCame) {
  Addr a;
  Fd listener = Listener(Loopback(AF_INET), &a);
  Fd clients[3];
  for (Fd& client : clients) {
    client = Socket(AF_INET, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    Pause();
  }
  for (Fd& client : clients) {
    Addr from;
    Fd server = AcceptSoon(listener.get(), 0, &from);
    ASSERT_TRUE(server.valid());
    EXPECT_EQ(from, SockName(client.get()));
  }
}

// A client may write as soon as connect returns; the bytes wait for accept.
TEST(SockTcpTest, DataSentBeforeAcceptIsThereAfterIt) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    ASSERT_TRUE(Send(client.get(), "early"));
    Fd server = AcceptSoon(listener.get());
    ASSERT_TRUE(server.valid());
    EXPECT_EQ(QueuedSoon(server.get(), 5), 5);
    EXPECT_EQ(RecvNow(server.get()), "early");
  }
}

// Closing a listener resets the connections still waiting in its queue.
TEST(SockTcpTest, ClosingAListenerResetsConnectionsNotYetAccepted) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    ASSERT_EQ(Revents(listener.get(), POLLIN, kWaitMs), POLLIN);
    listener.Reset();
    EXPECT_EQ(RecvSoon(client.get()), "[ECONNRESET]") << FamilyName(family);
  }
}

// A backlog of 0 (or a negative one) still lets a connection in.
TEST(SockTcpTest, ABacklogOfZeroOrLessStillAcceptsAConnection) {
  for (int backlog : {0, -1}) {
    Addr a;
    Fd listener = Listener(Loopback(AF_INET), &a, 0, backlog);
    Fd client = Socket(AF_INET, SOCK_STREAM);
    ASSERT_EQ(Connect(client.get(), a), 0) << ErrnoName(errno);
    Fd server = AcceptSoon(listener.get());
    EXPECT_TRUE(server.valid()) << backlog;
  }
}

// shutdown(SHUT_RD) on a listener stops it listening (accept EINVAL, connect ECONNREFUSED);
// bound to a port it named, it keeps that port and may listen again. SHUT_WR alone changes
// nothing.
TEST(SockTcpTest, ShutdownRdOnAListenerStopsItListening) {
  for (int family : kFamilies) {
    Fd probe = Socket(family, SOCK_STREAM);  // finds a free port to name in bind
    ASSERT_OK(Bind(probe.get(), Loopback(family)));
    const Addr a = SockName(probe.get());
    probe.Reset();
    Fd listener = Listener(a);
    ASSERT_TRUE(listener.valid());
    ASSERT_OK(shutdown(listener.get(), SHUT_WR));
    EXPECT_EQ(GetInt(listener.get(), SOL_SOCKET, SO_ACCEPTCONN), 1);
    ASSERT_OK(shutdown(listener.get(), SHUT_RD));
    EXPECT_EQ(GetInt(listener.get(), SOL_SOCKET, SO_ACCEPTCONN), 0);
    ASSERT_OK(fcntl(listener.get(), F_SETFL, O_NONBLOCK));  // EAGAIN, not a hang, if wrong
    EXPECT_ERRNO(accept(listener.get(), nullptr, nullptr), EINVAL);
    ASSERT_OK(fcntl(listener.get(), F_SETFL, 0));
    Fd refused = Socket(family, SOCK_STREAM);
    EXPECT_EQ(ConnectBounded(refused.get(), a), ECONNREFUSED);
    ASSERT_OK(listen(listener.get(), 4));
    EXPECT_EQ(SockName(listener.get()), a);
    Fd client = Socket(family, SOCK_STREAM);
    EXPECT_EQ(Connect(client.get(), a), 0) << ErrnoName(errno);
  }
}

// The usual way to stop a thread blocked in accept: shutdown(SHUT_RD) from elsewhere makes
// the accept fail EINVAL.
TEST(SockTcpTest, ShutdownRdWakesABlockedAccept) {
  Fd listener = Listener(Loopback(AF_INET));
  ASSERT_TRUE(listener.valid());
  Child child([&] {
    REQUIRE(FAILS_WITH(accept(listener.get(), nullptr, nullptr), EINVAL));
    return 0;
  });
  ASSERT_TRUE(child.ok());
  Pause();
  ASSERT_OK(shutdown(listener.get(), SHUT_RD));
  EXPECT_TRUE(child.ExitsZero());
}

// connect with AF_UNSPEC drops a TCP connection with a reset; the socket may connect again.
TEST(SockTcpTest, ConnectWithAfUnspecResetsTheConnection) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    ASSERT_EQ(connect(c.client.get(), &unspec, sizeof(unspec)), 0) << ErrnoName(errno);
    EXPECT_ERRNO(GetPeerName(c.client.get()), ENOTCONN);
    EXPECT_EQ(RecvSoon(c.server.get()), "[ECONNRESET]") << FamilyName(family);
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    ASSERT_EQ(Connect(c.client.get(), a), 0) << ErrnoName(errno);
    Fd server = AcceptSoon(listener.get());
    ASSERT_TRUE(server.valid());
    ASSERT_TRUE(Send(c.client.get(), "again"));
    EXPECT_EQ(RecvSoon(server.get()), "again");
  }
}

// A socket bound to a port and connected to that same address talks to itself
// (a simultaneous open with itself).
TEST(SockTcpTest, ASocketConnectedToItsOwnAddressTalksToItself) {
  for (int family : kFamilies) {
    Fd fd = Socket(family, SOCK_STREAM);
    ASSERT_OK(Bind(fd.get(), Loopback(family)));
    const Addr self = SockName(fd.get());
    const int err = ConnectBounded(fd.get(), self);
    ASSERT_EQ(err, 0) << FamilyName(family) << ": " << ErrnoName(err);
    EXPECT_EQ(PeerName(fd.get()), self);
    ASSERT_TRUE(Send(fd.get(), "echo"));
    EXPECT_EQ(RecvSoon(fd.get()), "echo");
    EXPECT_EQ(TcpState(fd.get()), TCP_ESTABLISHED);
  }
}

// Connecting to the wildcard address (0.0.0.0 or ::) reaches this host over loopback; the
// peer is named after the loopback address.
TEST(SockTcpTest, ConnectingToTheWildcardAddressReachesLoopback) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    Fd client = Socket(family, SOCK_STREAM);
    const int err = ConnectBounded(client.get(), Wildcard(family, a.port()));
    ASSERT_EQ(err, 0) << FamilyName(family) << ": " << ErrnoName(err);
    EXPECT_EQ(PeerName(client.get()), a);
    Fd server = AcceptSoon(listener.get());
    EXPECT_TRUE(server.valid());
    Fd udp = Socket(family, SOCK_DGRAM);
    ASSERT_EQ(Connect(udp.get(), Wildcard(family, a.port())), 0) << ErrnoName(errno);
    EXPECT_EQ(PeerName(udp.get()), a);
  }
}

// A connected TCP socket ignores the address given to sendto (unlike AF_UNIX's EISCONN):
// the bytes go to its peer.
TEST(SockTcpTest, SendtoOnAConnectedSocketIgnoresTheAddress) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  Addr elsewhere;
  Fd other = UdpSocket(Loopback(AF_INET), &elsewhere);
  EXPECT_EQ(SendTo(c.client.get(), "peer", elsewhere), 4) << ErrnoName(errno);
  EXPECT_EQ(RecvSoon(c.server.get()), "peer");
}

// ---------------------------------------------------------------------------------------
// TCP: queues.

// FIONREAD counts the bytes, not the FIN that follows them.
TEST(SockTcpTest, FionreadDoesNotCountTheFin) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_TRUE(Send(c.client.get(), "abc"));
    ASSERT_OK(shutdown(c.client.get(), SHUT_WR));
    ASSERT_NE(ReventsSoon(c.server.get(), POLLIN | POLLRDHUP, POLLIN | POLLRDHUP), -1);
    EXPECT_EQ(Queued(c.server.get()), 3) << FamilyName(family);
    EXPECT_EQ(RecvNow(c.server.get()), "abc");
    EXPECT_EQ(Queued(c.server.get()), 0);
    EXPECT_EQ(RecvNow(c.server.get()), "[eof]");
  }
}

// SIOCOUTQ counts what the peer has not acknowledged: on loopback it drops to 0 at once
// while the peer's window has room. It is EINVAL on a listener.
TEST(SockTcpTest, SiocoutqIsZeroOnceThePeerHasTheBytes) {
  for (int family : kFamilies) {
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    EXPECT_EQ(Queued(listener.get(), SIOCOUTQ), -1000 - EINVAL);
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    EXPECT_EQ(Queued(client.get(), SIOCOUTQ), 0);
    ASSERT_TRUE(Send(client.get(), "unread"));
    EXPECT_EQ(QueuedSoon(client.get(), 0, SIOCOUTQ), 0);
  }
}

// When the peer's window is full, SIOCOUTQ counts the bytes that wait; once the peer reads
// everything it is 0 again.
TEST(SockTcpTest, SiocoutqCountsBytesWaitingForAFullWindow) {
  Conn c = NarrowConnection(AF_INET);
  ASSERT_TRUE(c.server.valid());
  const size_t written = FillSendBuffer(c.client.get());
  ASSERT_GT(written, 0u);
  const int outq = Queued(c.client.get(), SIOCOUTQ);
  EXPECT_GT(outq, 0);
  EXPECT_LE(outq, static_cast<int>(written));
  EXPECT_EQ(Drain(c.server.get(), written), written);
  EXPECT_EQ(QueuedSoon(c.client.get(), 0, SIOCOUTQ), 0);
}

// ---------------------------------------------------------------------------------------
// TCP: timeouts and low-water marks.

TEST(SockTcpTest, SoRcvtimeoEndsABlockingRecvWithEagain) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_OK(SetTimeout(c.server.get(), SO_RCVTIMEO, 200));
    EXPECT_TRUE(ChildSucceeds([&] {  // bounded by the child's limit if the timeout fails
      const int64_t start = NowMs();
      REQUIRE(Recv(c.server.get()) == "[EAGAIN]");
      REQUIRE(NowMs() - start >= 150);
      return 0;
    }));
  }
}

TEST(SockTcpTest, SoRcvtimeoEndsABlockingAcceptWithEagain) {
  Fd listener = Listener(Loopback(AF_INET6));
  ASSERT_OK(SetTimeout(listener.get(), SO_RCVTIMEO, 200));
  EXPECT_TRUE(ChildSucceeds([&] {  // bounded by the child's limit if the timeout fails
    const int64_t start = NowMs();
    REQUIRE(FAILS_WITH(accept(listener.get(), nullptr, nullptr), EAGAIN));
    REQUIRE(NowMs() - start >= 150);
    return 0;
  }));
}

// SO_SNDTIMEO ends a write blocked by a full path: with some bytes taken it returns their
// count; with none, it fails EAGAIN.
TEST(SockTcpTest, SoSndtimeoEndsABlockedWriteShortThenWithEagain) {
  Conn c = NarrowConnection(AF_INET);
  ASSERT_TRUE(c.server.valid());
  ASSERT_OK(fcntl(c.client.get(), F_SETFL, 0));  // blocking again
  ASSERT_OK(SetTimeout(c.client.get(), SO_SNDTIMEO, 200));
  EXPECT_TRUE(ChildSucceeds([&] {  // bounded by the child's limit if the timeout fails
    const std::string big(8 << 20, 'w');
    const ssize_t n = send(c.client.get(), big.data(), big.size(), MSG_NOSIGNAL);
    REQUIRE(n > 0);
    REQUIRE(n < static_cast<ssize_t>(big.size()));
    const int64_t start = NowMs();
    REQUIRE(FAILS_WITH(send(c.client.get(), big.data(), big.size(), MSG_NOSIGNAL), EAGAIN));
    REQUIRE(NowMs() - start >= 150);
    return 0;
  }));
}

// SO_RCVTIMEO reads back as set; 0 means forever; microseconds beyond a second, or
// negative, are EDOM; a short option is EINVAL.
TEST(SockTcpTest, SoRcvtimeoRoundTripsAndChecksItsMicroseconds) {
  Fd fd = Socket(AF_INET, SOCK_STREAM);
  timeval got{-1, -1};
  socklen_t len = sizeof(got);
  ASSERT_OK(getsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &got, &len));
  EXPECT_EQ(len, sizeof(timeval));
  EXPECT_EQ(got.tv_sec, 0);
  EXPECT_EQ(got.tv_usec, 0);
  timeval tv{2, 500000};
  ASSERT_OK(setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)));
  ASSERT_OK(getsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &got, &len));
  EXPECT_EQ(got.tv_sec, 2);
  EXPECT_EQ(got.tv_usec, 500000);
  tv = {1, 1000000};
  EXPECT_ERRNO(setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), EDOM);
  tv = {1, -1};
  EXPECT_ERRNO(setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), EDOM);
  tv = {1, 0};
  EXPECT_ERRNO(setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv) - 1), EINVAL);
  ASSERT_OK(getsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &got, &len));
  EXPECT_EQ(got.tv_sec, 0);
  EXPECT_EQ(got.tv_usec, 0);
}

// SO_RCVLOWAT holds POLLIN back until that many bytes wait; 0 reads back as 1.
TEST(SockTcpTest, SoRcvlowatHoldsBackReadabilityUntilEnoughIsQueued) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  EXPECT_EQ(GetInt(c.server.get(), SOL_SOCKET, SO_RCVLOWAT), 1);
  ASSERT_OK(SetInt(c.server.get(), SOL_SOCKET, SO_RCVLOWAT, 0));
  EXPECT_EQ(GetInt(c.server.get(), SOL_SOCKET, SO_RCVLOWAT), 1);
  ASSERT_OK(SetInt(c.server.get(), SOL_SOCKET, SO_RCVLOWAT, 5));
  EXPECT_EQ(GetInt(c.server.get(), SOL_SOCKET, SO_RCVLOWAT), 5);
  ASSERT_TRUE(Send(c.client.get(), "abc"));
  ASSERT_EQ(QueuedSoon(c.server.get(), 3), 3);
  EXPECT_EQ(Revents(c.server.get(), POLLIN), 0);
  ASSERT_TRUE(Send(c.client.get(), "de"));
  EXPECT_EQ(Revents(c.server.get(), POLLIN, kWaitMs), POLLIN);
  EXPECT_EQ(RecvNow(c.server.get()), "abcde");
}

// ---------------------------------------------------------------------------------------
// TCP: urgent data.

// Sends "ab", then "c" with MSG_OOB (the urgent byte), then "de", and waits for the reader
// to see POLLPRI.
void SendAroundAnUrgentByte(const Conn& c) {
  ASSERT_TRUE(Send(c.client.get(), "ab"));
  ASSERT_EQ(send(c.client.get(), "c", 1, MSG_OOB | MSG_NOSIGNAL), 1) << ErrnoName(errno);
  ASSERT_TRUE(Send(c.client.get(), "de"));
  ASSERT_NE(ReventsSoon(c.server.get(), POLLIN | POLLPRI, POLLPRI) & POLLPRI, 0);
}

// MSG_OOB sends one urgent byte: the reader sees POLLPRI, takes it with MSG_OOB (once: a
// second try is EINVAL), and the ordinary stream goes on without it; SIOCATMARK says when
// the reader reached the mark.
TEST(SockTcpTest, MsgOobCarriesOneUrgentByteOutsideTheStream) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  ASSERT_NO_FATAL_FAILURE(SendAroundAnUrgentByte(c));
  int mark = -1;
  ASSERT_OK(ioctl(c.server.get(), SIOCATMARK, &mark));
  EXPECT_EQ(mark, 0);
  char oob = 0;
  EXPECT_EQ(recv(c.server.get(), &oob, 1, MSG_OOB | MSG_DONTWAIT), 1) << ErrnoName(errno);
  EXPECT_EQ(oob, 'c');
  EXPECT_ERRNO(recv(c.server.get(), &oob, 1, MSG_OOB | MSG_DONTWAIT), EINVAL);
  EXPECT_EQ(RecvNow(c.server.get()), "ab");  // a read stops at the mark
  ASSERT_OK(ioctl(c.server.get(), SIOCATMARK, &mark));
  EXPECT_EQ(mark, 1);
  EXPECT_EQ(RecvSoon(c.server.get()), "de");
}

// MSG_WAITALL stops at the urgent mark too, short of what it asked, once it has read
// something; the next read goes on past the mark. FIONREAD counts up to the mark (0 at it).
TEST(SockTcpTest, MsgWaitallAndFionreadStopAtTheUrgentMark) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  ASSERT_NO_FATAL_FAILURE(SendAroundAnUrgentByte(c));
  EXPECT_EQ(QueuedSoon(c.server.get(), 2), 2);
  EXPECT_EQ(Recv(c.server.get(), 4, MSG_WAITALL), "ab");
  EXPECT_EQ(QueuedSoon(c.server.get(), 0), 0);
  EXPECT_EQ(Recv(c.server.get(), 2, MSG_WAITALL), "de");
}

// Urgent data signals the socket's owner (F_SETOWN) with SIGURG, O_ASYNC or not
// (sk_send_sigurg: si_code SI_KERNEL, whatever F_SETSIG says); without an owner, nobody.
TEST(SockTcpTest, UrgentDataSignalsTheOwnerWithSigurg) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  BlockedSignal urg(SIGURG);
  ASSERT_OK(fcntl(c.server.get(), F_SETSIG, SIGUSR2));
  ASSERT_EQ(send(c.client.get(), "a", 1, MSG_OOB | MSG_NOSIGNAL), 1) << ErrnoName(errno);
  ASSERT_NE(ReventsSoon(c.server.get(), POLLPRI, POLLPRI) & POLLPRI, 0);
  EXPECT_EQ(urg.Wait(200).si_signo, 0);  // no owner yet
  char oob = 0;
  ASSERT_EQ(recv(c.server.get(), &oob, 1, MSG_OOB | MSG_DONTWAIT), 1) << ErrnoName(errno);
  ASSERT_OK(fcntl(c.server.get(), F_SETOWN, getpid()));
  ASSERT_EQ(send(c.client.get(), "b", 1, MSG_OOB | MSG_NOSIGNAL), 1) << ErrnoName(errno);
  const siginfo_t info = urg.Wait(5000);
  EXPECT_EQ(info.si_signo, SIGURG);
  EXPECT_EQ(info.si_code, SI_KERNEL);
}

// With SO_OOBINLINE the urgent byte stays in the stream, and MSG_OOB reads fail EINVAL.
TEST(SockTcpTest, SoOobinlineLeavesTheUrgentByteInTheStream) {
  Conn c = Connected(AF_INET6);
  ASSERT_TRUE(c.server.valid());
  ASSERT_OK(SetInt(c.server.get(), SOL_SOCKET, SO_OOBINLINE, 1));
  ASSERT_TRUE(Send(c.client.get(), "ab"));
  ASSERT_EQ(send(c.client.get(), "c", 1, MSG_OOB | MSG_NOSIGNAL), 1) << ErrnoName(errno);
  ASSERT_EQ(QueuedSoon(c.server.get(), 3), 3);
  char oob = 0;
  EXPECT_ERRNO(recv(c.server.get(), &oob, 1, MSG_OOB | MSG_DONTWAIT), EINVAL);
  std::string all;
  for (int i = 0; i < 3 && all.size() < 3; i++) all += RecvNow(c.server.get());
  EXPECT_EQ(all, "abc");
}

// ---------------------------------------------------------------------------------------
// TCP: states, bulk transfer, odds and ends.

// TCP_INFO's state follows the connection: CLOSE, LISTEN, ESTABLISHED; after one side's
// SHUT_WR, FIN_WAIT2 there and CLOSE_WAIT at the peer; CLOSE on both once the peer shuts too.
TEST(SockTcpTest, TcpInfoStateFollowsTheConnection) {
  for (int family : kFamilies) {
    Fd fresh = Socket(family, SOCK_STREAM);
    EXPECT_EQ(TcpState(fresh.get()), TCP_CLOSE);
    Addr a;
    Fd listener = Listener(Loopback(family), &a);
    EXPECT_EQ(TcpState(listener.get()), TCP_LISTEN);
    Fd client = Socket(family, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), a));
    EXPECT_EQ(TcpState(client.get()), TCP_ESTABLISHED);
    Fd server = AcceptSoon(listener.get());
    ASSERT_TRUE(server.valid());
    EXPECT_EQ(TcpState(server.get()), TCP_ESTABLISHED);
    ASSERT_OK(shutdown(client.get(), SHUT_WR));
    EXPECT_EQ(TcpStateSoon(client.get(), TCP_FIN_WAIT2), TCP_FIN_WAIT2);
    EXPECT_EQ(TcpStateSoon(server.get(), TCP_CLOSE_WAIT), TCP_CLOSE_WAIT);
    ASSERT_OK(shutdown(server.get(), SHUT_WR));
    EXPECT_EQ(TcpStateSoon(client.get(), TCP_CLOSE), TCP_CLOSE) << FamilyName(family);
    EXPECT_EQ(TcpStateSoon(server.get(), TCP_CLOSE), TCP_CLOSE);
  }
}

char PatternByte(size_t i, int seed) {
  return static_cast<char>((i * 131 + i / 65536 + seed * 17) % 251);
}

// Sends `total` bytes of pattern `out_seed` on nonblocking `fd` while receiving `total`
// bytes of pattern `in_seed` and then EOF; shuts down writing once all is sent. Returns ""
// if all went so, else what went wrong.
std::string Exchange(int fd, size_t total, int out_seed, int in_seed) {
  std::string out(total, '\0');
  for (size_t i = 0; i < total; i++) out[i] = PatternByte(i, out_seed);
  size_t sent = 0, got = 0;
  bool eof = false, shut = false;
  std::vector<char> buf(1 << 16);
  // On until both the end came and everything went: the peer may finish
  // first.
  while (!eof || sent < total) {
    pollfd pfd{fd, static_cast<short>((eof ? 0 : POLLIN) | (sent < total ? POLLOUT : 0)), 0};
    if (poll(&pfd, 1, kWaitMs) <= 0) {
      return "stalled: sent " + std::to_string(sent) + ", received " + std::to_string(got);
    }
    if (sent < total && (pfd.revents & POLLOUT)) {
      const ssize_t n = send(fd, out.data() + sent, std::min<size_t>(total - sent, 1 << 16),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN) return "send: " + ErrnoName(errno);
      if (n > 0) sent += n;
    }
    if (sent == total && !shut) {
      if (shutdown(fd, SHUT_WR) != 0) return "shutdown: " + ErrnoName(errno);
      shut = true;
    }
    if (!eof && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN) return "recv: " + ErrnoName(errno);
      if (n == 0) eof = true;
      for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != PatternByte(got + i, in_seed)) {
          return "byte " + std::to_string(got + i) + " differs";
        }
      }
      if (n > 0) got += n;
    }
  }
  if (got != total) return "received " + std::to_string(got) + " of " + std::to_string(total);
  return "";
}

// 8 MB each way at once, between two processes: every byte arrives, in order.
TEST(SockTcpTest, EightMegabytesEachWayAtOnceArriveIntact) {
  constexpr size_t kSize = 8 << 20;
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  Child child([&] {
    c.server.Reset();
    REQUIRE(fcntl(c.client.get(), F_SETFL, O_NONBLOCK) == 0);
    const std::string result = Exchange(c.client.get(), kSize, 1, 2);
    if (!result.empty()) fprintf(stderr, "child: %s\n", result.c_str());
    return result.empty() ? 0 : 1;
  });
  ASSERT_TRUE(child.ok());
  c.client.Reset();
  ASSERT_OK(fcntl(c.server.get(), F_SETFL, O_NONBLOCK));
  EXPECT_EQ(Exchange(c.server.get(), kSize, 2, 1), "");
  EXPECT_TRUE(child.ExitsZero());
}

// sendfile copies a file into a TCP socket, byte for byte, and advances the offset given.
TEST(SockTcpTest, SendfileCopiesAFileIntoTheConnection) {
  constexpr size_t kSize = 1 << 20;
  TempDir dir;
  std::string content(kSize, '\0');
  for (size_t i = 0; i < kSize; i++) content[i] = PatternByte(i, 5);
  ASSERT_TRUE(WriteFile(dir.Join("data"), content));
  Fd file(open(dir.Join("data").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file.valid());
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  Child child([&] {
    c.server.Reset();
    off_t offset = 0;
    while (offset < static_cast<off_t>(kSize)) {
      const ssize_t n = sendfile(c.client.get(), file.get(), &offset, kSize - offset);
      REQUIRE(n > 0);
    }
    REQUIRE(offset == static_cast<off_t>(kSize));
    REQUIRE(lseek(file.get(), 0, SEEK_CUR) == 0);  // the offset given, not the file's
    return 0;
  });
  ASSERT_TRUE(child.ok());
  c.client.Reset();
  std::string got;
  std::vector<char> buf(1 << 16);
  for (;;) {
    ASSERT_NE(Revents(c.server.get(), POLLIN, kWaitMs) & POLLIN, 0) << "stalled at " << got.size();
    const ssize_t n = recv(c.server.get(), buf.data(), buf.size(), 0);
    ASSERT_GE(n, 0) << ErrnoName(errno);
    if (n == 0) break;
    got.append(buf.data(), n);
  }
  EXPECT_EQ(got.size(), kSize);
  EXPECT_TRUE(got == content);
  EXPECT_TRUE(child.ExitsZero());
}

// TCP sockets have no peer credentials: SO_PEERCRED gives pid 0 and uid and gid -1.
TEST(SockTcpTest, SoPeercredOfATcpSocketIsEmpty) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  ucred cred{-2, 0, 0};
  socklen_t len = sizeof(cred);
  ASSERT_OK(getsockopt(c.server.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len));
  EXPECT_EQ(len, sizeof(ucred));
  EXPECT_EQ(cred.pid, 0);
  EXPECT_EQ(cred.uid, static_cast<uid_t>(-1));
  EXPECT_EQ(cred.gid, static_cast<gid_t>(-1));
}

// SCM_RIGHTS means nothing to TCP: the bytes go, the descriptors do not.
TEST(SockTcpTest, ScmRightsOnATcpSocketIsIgnored) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  char data[] = "fd";
  iovec iov{data, 2};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  const int passed = c.client.get();
  memcpy(CMSG_DATA(cm), &passed, sizeof(int));
  ASSERT_EQ(sendmsg(c.client.get(), &msg, MSG_NOSIGNAL), 2) << ErrnoName(errno);
  const Message m = RecvMsg(c.server.get());
  EXPECT_EQ(m.data, "fd") << ErrnoName(m.err);
  EXPECT_EQ(m.cmsgs, 0);
  EXPECT_EQ(m.rights, 0);
}

// ---------------------------------------------------------------------------------------
// bind: conflicts.

// Different addresses of 127.0.0.0/8 may each have a listener on one port; each gets its
// own connections. (A few tries: something else might hold the port on 127.0.0.2.)
TEST(SockBindTest, DistinctLoopbackAddressesMayShareAPort) {
  bool bound = false;
  for (int attempt = 0; attempt < 10 && !bound; attempt++) {
    Addr a;
    Fd first = Listener(Loopback(AF_INET), &a);
    Fd second = Socket(AF_INET, SOCK_STREAM);
    const Addr other = MakeAddr(AF_INET, "127.0.0.2", a.port());
    bound = Bind(second.get(), other) == 0;
    if (!bound) {
      EXPECT_EQ(errno, EADDRINUSE) << ErrnoName(errno);
      continue;
    }
    ASSERT_OK(listen(second.get(), 4));
    Fd client = Socket(AF_INET, SOCK_STREAM);
    ASSERT_OK(Connect(client.get(), other));
    EXPECT_EQ(Revents(second.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(Revents(first.get(), POLLIN), 0);
  }
  EXPECT_TRUE(bound);
}

// A socket bound to the wildcard holds the port for every address; a specific bind on it
// fails EADDRINUSE unless both set SO_REUSEADDR, and then only one of them may listen.
TEST(SockBindTest, AWildcardBindHoldsThePortForEveryAddressUnlessBothReuse) {
  for (int family : kFamilies) {
    Fd wild = Socket(family, SOCK_STREAM);
    ASSERT_OK(Bind(wild.get(), Wildcard(family)));
    const int port = SockName(wild.get()).port();
    Fd specific = Socket(family, SOCK_STREAM);
    EXPECT_ERRNO(Bind(specific.get(), Loopback(family, port)), EADDRINUSE);
    wild.Reset();
    Fd w2 = Socket(family, SOCK_STREAM), s2 = Socket(family, SOCK_STREAM);
    ASSERT_OK(SetInt(w2.get(), SOL_SOCKET, SO_REUSEADDR, 1));
    ASSERT_OK(SetInt(s2.get(), SOL_SOCKET, SO_REUSEADDR, 1));
    ASSERT_EQ(Bind(w2.get(), Wildcard(family, port)), 0) << ErrnoName(errno);
    ASSERT_EQ(Bind(s2.get(), Loopback(family, port)), 0)
        << FamilyName(family) << ": " << ErrnoName(errno);
    ASSERT_OK(listen(s2.get(), 4));
    EXPECT_ERRNO(listen(w2.get(), 4), EADDRINUSE);
  }
}

// A connected socket's port is taken for bind, unless both sockets set SO_REUSEADDR. (The
// client takes its port with bind(0) first: a port connect picks may be one an earlier test's
// connection still holds in TIME_WAIT, which alone refuses the second bind.)
TEST(SockBindTest, AConnectedSocketsPortIsTakenUnlessBothReuse) {
  Addr a;
  Fd listener = Listener(Loopback(AF_INET), &a);
  Fd client = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(SetInt(client.get(), SOL_SOCKET, SO_REUSEADDR, 1));
  ASSERT_OK(Bind(client.get(), Loopback(AF_INET)));
  ASSERT_OK(Connect(client.get(), a));
  const Addr mine = SockName(client.get());
  Fd plain = Socket(AF_INET, SOCK_STREAM);
  EXPECT_ERRNO(Bind(plain.get(), mine), EADDRINUSE);
  Fd reuse = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(SetInt(reuse.get(), SOL_SOCKET, SO_REUSEADDR, 1));
  EXPECT_EQ(Bind(reuse.get(), mine), 0) << ErrnoName(errno);
}

// ---------------------------------------------------------------------------------------
// poll.

// The peer's close is a FIN: POLLIN and POLLRDHUP, no POLLHUP. A write then draws its reset:
// POLLHUP and POLLERR join (POLLOUT too: writes would fail at once).
TEST(SockPollTest, ThePeersCloseThenItsResetChangeTheMask) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    c.server.Reset();
    ASSERT_NE(Revents(c.client.get(), POLLIN, kWaitMs) & POLLIN, 0);
    EXPECT_EQ(Revents(c.client.get(), POLLIN | POLLOUT | POLLRDHUP), POLLIN | POLLOUT | POLLRDHUP);
    ASSERT_TRUE(Send(c.client.get(), "x"));
    EXPECT_EQ(ReventsSoon(c.client.get(), POLLIN | POLLOUT | POLLRDHUP, POLLHUP),
              POLLIN | POLLOUT | POLLRDHUP | POLLHUP | POLLERR)
        << FamilyName(family);
    EXPECT_EQ(GetInt(c.client.get(), SOL_SOCKET, SO_ERROR), EPIPE);
    EXPECT_EQ(Revents(c.client.get(), POLLIN | POLLOUT | POLLRDHUP),
              POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
  }
}

// One's own SHUT_RD: readable (EOF) with POLLRDHUP, still writable, not hung up.
TEST(SockPollTest, OwnShutdownRdGivesPollinAndPollrdhup) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    ASSERT_OK(shutdown(c.client.get(), SHUT_RD));
    EXPECT_EQ(Revents(c.client.get(), POLLIN | POLLOUT | POLLRDHUP), POLLIN | POLLOUT | POLLRDHUP);
    EXPECT_EQ(Revents(c.server.get(), POLLIN | POLLOUT | POLLRDHUP), POLLOUT);
  }
}

// Unlike a TCP socket, a fresh UDP socket is not hung up: only writable.
TEST(SockPollTest, AFreshUdpSocketIsOnlyWritable) {
  for (int family : kFamilies) {
    Fd fd = Socket(family, SOCK_DGRAM);
    EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT | POLLRDHUP), POLLOUT);
    ASSERT_OK(Bind(fd.get(), Loopback(family)));
    EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT | POLLRDHUP), POLLOUT);
  }
}

// ---------------------------------------------------------------------------------------
// epoll on TCP.

// Edge-triggered: each arrival is reported once, however much stays unread.
TEST(SockEpollTest, EpolletReportsEachArrivalOnce) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  Fd ep = EpollOn(c.server.get(), EPOLLIN | EPOLLET);
  EXPECT_EQ(EpollEvents(ep.get()), 0u);
  ASSERT_TRUE(Send(c.client.get(), "one"));
  EXPECT_EQ(EpollEvents(ep.get(), kWaitMs), static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(EpollEvents(ep.get()), 0u);
  ASSERT_TRUE(Send(c.client.get(), "two"));
  EXPECT_EQ(EpollEvents(ep.get(), kWaitMs), static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(EpollEvents(ep.get()), 0u);
  EXPECT_EQ(QueuedSoon(c.server.get(), 6), 6);
}

TEST(SockEpollTest, EpollrdhupReportsThePeersShutdownWr) {
  for (int family : kFamilies) {
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    Fd ep = EpollOn(c.server.get(), EPOLLIN | EPOLLRDHUP);
    EXPECT_EQ(EpollEvents(ep.get()), 0u);
    ASSERT_OK(shutdown(c.client.get(), SHUT_WR));
    EXPECT_EQ(EpollEvents(ep.get(), kWaitMs), static_cast<uint32_t>(EPOLLIN | EPOLLRDHUP));
    EXPECT_EQ(EpollEvents(ep.get()), static_cast<uint32_t>(EPOLLIN | EPOLLRDHUP));  // level
  }
}

// Edge-triggered EPOLLOUT: silent while the path is full, reported once the peer reads.
TEST(SockEpollTest, EpolletReportsPolloutOnceThePeerDrainsAFullPath) {
  Conn c = NarrowConnection(AF_INET);
  ASSERT_TRUE(c.server.valid());
  size_t written = FillSendBuffer(c.client.get());
  ASSERT_GT(written, 0u);
  Pause();
  written += FillSendBuffer(c.client.get());  // whatever acknowledgements freed meanwhile
  Fd ep = EpollOn(c.client.get(), EPOLLOUT | EPOLLET);
  EXPECT_EQ(EpollEvents(ep.get()), 0u);
  EXPECT_EQ(Drain(c.server.get(), written), written);
  EXPECT_EQ(EpollEvents(ep.get(), kWaitMs), static_cast<uint32_t>(EPOLLOUT));
}

// EPOLLONESHOT: one report, then nothing (even with data waiting) until EPOLL_CTL_MOD
// re-arms it.
TEST(SockEpollTest, EpolloneshotDisarmsUntilModified) {
  Conn c = Connected(AF_INET6);
  ASSERT_TRUE(c.server.valid());
  Fd ep = EpollOn(c.server.get(), EPOLLIN | EPOLLONESHOT);
  ASSERT_TRUE(Send(c.client.get(), "a"));
  EXPECT_EQ(EpollEvents(ep.get(), kWaitMs), static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(EpollEvents(ep.get()), 0u);
  ASSERT_TRUE(Send(c.client.get(), "b"));
  ASSERT_EQ(QueuedSoon(c.server.get(), 2), 2);
  EXPECT_EQ(EpollEvents(ep.get()), 0u);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ASSERT_OK(epoll_ctl(ep.get(), EPOLL_CTL_MOD, c.server.get(), &ev));
  EXPECT_EQ(EpollEvents(ep.get()), static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(EpollEvents(ep.get()), 0u);
}

// EPOLLERR and EPOLLHUP come whether asked for or not: here on a reset, watched with no
// events at all.
TEST(SockEpollTest, AResetReportsErrAndHupUnasked) {
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  Fd ep = EpollOn(c.client.get(), 0);
  EXPECT_EQ(EpollEvents(ep.get()), 0u);
  linger l{1, 0};
  ASSERT_OK(setsockopt(c.server.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l)));
  c.server.Reset();
  EXPECT_EQ(EpollEvents(ep.get(), kWaitMs), static_cast<uint32_t>(EPOLLERR | EPOLLHUP));
}

// ---------------------------------------------------------------------------------------
// Socket options.

// TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT read back as set and refuse 0 and values
// beyond 32767, 32767 and 127 (leaving the old value).
TEST(SockOptTest, TcpKeepaliveKnobsRoundTripWithinTheirRanges) {
  for (int family : kFamilies) {
    Fd fd = Socket(family, SOCK_STREAM);
    struct Knob {
      int name, value, max;
    };
    for (Knob k : {Knob{TCP_KEEPIDLE, 30, 32767}, Knob{TCP_KEEPINTVL, 5, 32767},
                   Knob{TCP_KEEPCNT, 3, 127}}) {
      ASSERT_OK(SetInt(fd.get(), IPPROTO_TCP, k.name, k.value));
      EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, k.name), k.value) << k.name;
      EXPECT_EQ(SetErrno(fd.get(), IPPROTO_TCP, k.name, 0), EINVAL) << k.name;
      EXPECT_EQ(SetErrno(fd.get(), IPPROTO_TCP, k.name, k.max + 1), EINVAL) << k.name;
      EXPECT_EQ(SetErrno(fd.get(), IPPROTO_TCP, k.name, k.max), 0) << k.name;
      EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, k.name), k.max) << k.name;
    }
  }
}

// Until set, they read as the namespace's sysctls.
TEST(SockOptTest, TcpKeepaliveKnobsDefaultToTheSysctls) {
  Fd fd = Socket(AF_INET, SOCK_STREAM);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE), Sysctl("net/ipv4/tcp_keepalive_time"));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_KEEPINTVL), Sysctl("net/ipv4/tcp_keepalive_intvl"));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_KEEPCNT), Sysctl("net/ipv4/tcp_keepalive_probes"));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_SYNCNT), Sysctl("net/ipv4/tcp_syn_retries"));
}

// A TCP-level getsockopt with a short optlen gets the value's first bytes.
TEST(SockOptTest, ATcpOptionReadIntoAShortBufferIsTruncated) {
  Fd fd = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(SetInt(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE, 0x0102));
  unsigned char buf[8];
  memset(buf, 0xee, sizeof(buf));
  socklen_t len = 1;
  ASSERT_OK(getsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE, buf, &len));
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(buf[0], 0x02);  // little-endian
  EXPECT_EQ(buf[1], 0xee);
  len = 0;
  ASSERT_OK(getsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE, buf, &len));
  EXPECT_EQ(len, 0u);
  int big[2] = {-1, -1};
  len = sizeof(big);
  ASSERT_OK(getsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE, big, &len));
  EXPECT_EQ(len, sizeof(int));
  EXPECT_EQ(big[0], 0x0102);
}

// Int options at SOL_SOCKET and IPPROTO_TCP need all four bytes: less is EINVAL.
TEST(SockOptTest, SettingAnIntOptionWithFewerThanFourBytesFailsEinval) {
  Fd fd = Socket(AF_INET6, SOCK_STREAM);
  const int one = 1;
  for (socklen_t len : {0u, 1u, 3u}) {
    EXPECT_ERRNO(setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, len), EINVAL);
    EXPECT_ERRNO(setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, len), EINVAL);
  }
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_NODELAY), 0);
  EXPECT_ERRNO(setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, static_cast<socklen_t>(-1)),
               EINVAL);
}

// IP_TTL starts at the sysctl's default (64), takes 1 to 255, and -1 restores the default.
TEST(SockOptTest, IpTtlTakesOneTo255AndMinusOneRestoresTheDefault) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    Fd fd = Socket(AF_INET, type);
    const int def = Sysctl("net/ipv4/ip_default_ttl");
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_IP, IP_TTL), def);
    for (int v : {1, 255, 33}) {
      ASSERT_OK(SetInt(fd.get(), IPPROTO_IP, IP_TTL, v));
      EXPECT_EQ(GetInt(fd.get(), IPPROTO_IP, IP_TTL), v);
    }
    EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IP, IP_TTL, 0), EINVAL);
    EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IP, IP_TTL, 256), EINVAL);
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_IP, IP_TTL), 33);
    ASSERT_OK(SetInt(fd.get(), IPPROTO_IP, IP_TTL, -1));
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_IP, IP_TTL), def);
  }
}

// IPv4's int options also take a single byte, and a buffer shorter than an int gets the
// value as a single byte (optlen 1), a convenience old programs rely on.
TEST(SockOptTest, IpTtlTakesAndGivesASingleByte) {
  Fd fd = Socket(AF_INET, SOCK_DGRAM);
  const unsigned char ttl = 33;
  ASSERT_OK(setsockopt(fd.get(), IPPROTO_IP, IP_TTL, &ttl, 1));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IP, IP_TTL), 33);
  unsigned char buf[4];
  memset(buf, 0xee, sizeof(buf));
  socklen_t len = 2;
  ASSERT_OK(getsockopt(fd.get(), IPPROTO_IP, IP_TTL, buf, &len));
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(buf[0], 33);
  EXPECT_EQ(buf[1], 0xee);
}

// IP_TOS reads back as set on UDP; on TCP the two ECN bits are the stack's, not the user's.
TEST(SockOptTest, IpTosKeepsTheEcnBitsOutOnTcp) {
  Fd udp = Socket(AF_INET, SOCK_DGRAM);
  EXPECT_EQ(GetInt(udp.get(), IPPROTO_IP, IP_TOS), 0);
  ASSERT_OK(SetInt(udp.get(), IPPROTO_IP, IP_TOS, 0x13));
  EXPECT_EQ(GetInt(udp.get(), IPPROTO_IP, IP_TOS), 0x13);
  Fd tcp = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(SetInt(tcp.get(), IPPROTO_IP, IP_TOS, 0x13));
  EXPECT_EQ(GetInt(tcp.get(), IPPROTO_IP, IP_TOS), 0x10);
}

// IPV6_UNICAST_HOPS starts at the interface default (64), takes 0 to 255, and -1 restores
// the default; IPV6_TCLASS takes 0 to 255, and -1 means 0.
TEST(SockOptTest, Ipv6HopLimitAndTrafficClassRoundTrip) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    Fd fd = Socket(AF_INET6, type);
    const int def = Sysctl("net/ipv6/conf/all/hop_limit");
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_UNICAST_HOPS), def);
    for (int v : {0, 255, 17}) {
      ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_UNICAST_HOPS, v));
      EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_UNICAST_HOPS), v);
    }
    EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IPV6, IPV6_UNICAST_HOPS, 256), EINVAL);
    EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IPV6, IPV6_UNICAST_HOPS, -2), EINVAL);
    ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_UNICAST_HOPS, -1));
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_UNICAST_HOPS), def);

    EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_TCLASS), 0);
    ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_TCLASS, 0x28));
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_TCLASS), 0x28);
    EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IPV6, IPV6_TCLASS, 256), EINVAL);
    ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_TCLASS, -1));
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_TCLASS), 0);
  }
}

// TCP_MAXSEG set before connecting reads back as set, must lie in 88..32767, and caps the
// segment size both ends use.
TEST(SockOptTest, TcpMaxsegCapsTheConnectionsSegments) {
  Fd client = Socket(AF_INET, SOCK_STREAM);
  EXPECT_EQ(SetErrno(client.get(), IPPROTO_TCP, TCP_MAXSEG, 50), EINVAL);
  EXPECT_EQ(SetErrno(client.get(), IPPROTO_TCP, TCP_MAXSEG, 40000), EINVAL);
  ASSERT_OK(SetInt(client.get(), IPPROTO_TCP, TCP_MAXSEG, 1000));
  EXPECT_EQ(GetInt(client.get(), IPPROTO_TCP, TCP_MAXSEG), 1000);
  Addr a;
  Fd listener = Listener(Loopback(AF_INET), &a);
  ASSERT_OK(Connect(client.get(), a));
  Fd server = AcceptSoon(listener.get());
  ASSERT_TRUE(server.valid());
  const int cm = GetInt(client.get(), IPPROTO_TCP, TCP_MAXSEG);
  const int sm = GetInt(server.get(), IPPROTO_TCP, TCP_MAXSEG);
  EXPECT_GT(cm, 0);
  EXPECT_LE(cm, 1000);
  EXPECT_GT(sm, 0);
  EXPECT_LE(sm, 1000);
}

// TCP_USER_TIMEOUT takes any milliseconds >= 0; TCP_SYNCNT 1 to 127.
TEST(SockOptTest, TcpUserTimeoutAndSyncntCheckTheirRanges) {
  Fd fd = Socket(AF_INET6, SOCK_STREAM);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
  ASSERT_OK(SetInt(fd.get(), IPPROTO_TCP, TCP_USER_TIMEOUT, 12345));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_USER_TIMEOUT), 12345);
  EXPECT_EQ(SetErrno(fd.get(), IPPROTO_TCP, TCP_USER_TIMEOUT, -1), EINVAL);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_USER_TIMEOUT), 12345);
  for (int v : {1, 127, 4}) {
    ASSERT_OK(SetInt(fd.get(), IPPROTO_TCP, TCP_SYNCNT, v));
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_SYNCNT), v);
  }
  EXPECT_EQ(SetErrno(fd.get(), IPPROTO_TCP, TCP_SYNCNT, 0), EINVAL);
  EXPECT_EQ(SetErrno(fd.get(), IPPROTO_TCP, TCP_SYNCNT, 128), EINVAL);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_SYNCNT), 4);
}

// TCP_DEFER_ACCEPT is kept as a count of SYN-ACK retransmissions: it reads back as the
// seconds those take (1 + 2 + 4 ...), the set value rounded up; 0 turns it off.
TEST(SockOptTest, TcpDeferAcceptRoundsUpToARetransmissionBoundary) {
  Fd fd = Socket(AF_INET, SOCK_STREAM);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT), 0);
  struct Case {
    int set, got;
  };
  for (Case c : {Case{1, 1}, Case{3, 3}, Case{5, 7}, Case{7, 7}, Case{8, 15}, Case{0, 0}}) {
    ASSERT_OK(SetInt(fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, c.set));
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT), c.got) << c.set;
  }
}

// More boolean options: any nonzero value reads back as 1.
TEST(SockOptTest, MoreBooleanOptionsReadBackAsZeroOrOne) {
  struct Opt {
    int family, level, name;
  };
  for (Opt o : {Opt{AF_INET, SOL_SOCKET, SO_BROADCAST}, Opt{AF_INET, SOL_SOCKET, SO_DONTROUTE},
                Opt{AF_INET, SOL_SOCKET, SO_OOBINLINE}, Opt{AF_INET, SOL_SOCKET, SO_TIMESTAMP},
                Opt{AF_INET, SOL_SOCKET, SO_RXQ_OVFL}, Opt{AF_INET, IPPROTO_IP, IP_PKTINFO},
                Opt{AF_INET, IPPROTO_IP, IP_RECVTTL}, Opt{AF_INET, IPPROTO_IP, IP_RECVTOS},
                Opt{AF_INET6, IPPROTO_IPV6, IPV6_RECVPKTINFO},
                Opt{AF_INET6, IPPROTO_IPV6, IPV6_RECVHOPLIMIT}}) {
    Fd fd = Socket(o.family, SOCK_DGRAM);
    EXPECT_EQ(GetInt(fd.get(), o.level, o.name), 0) << o.level << "/" << o.name;
    ASSERT_OK(SetInt(fd.get(), o.level, o.name, 7));
    EXPECT_EQ(GetInt(fd.get(), o.level, o.name), 1) << o.level << "/" << o.name;
    ASSERT_OK(SetInt(fd.get(), o.level, o.name, 0));
    EXPECT_EQ(GetInt(fd.get(), o.level, o.name), 0) << o.level << "/" << o.name;
  }
}

// What the kernel reports but nobody sets: SO_TYPE, SO_DOMAIN, SO_ERROR, SO_ACCEPTCONN and
// SO_PEERCRED are ENOPROTOOPT to setsockopt.
TEST(SockOptTest, ReadOnlyOptionsCannotBeSet) {
  Fd fd = Socket(AF_INET, SOCK_STREAM);
  for (int name : {SO_TYPE, SO_DOMAIN, SO_ERROR, SO_ACCEPTCONN, SO_PEERCRED}) {
    EXPECT_EQ(SetErrno(fd.get(), SOL_SOCKET, name, 0), ENOPROTOOPT) << name;
  }
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_TYPE), SOCK_STREAM);
}

// Unknown option names are ENOPROTOOPT at every level an inet socket has.
TEST(SockOptTest, UnknownInetOptionsFailEnoprotoopt) {
  struct Case {
    int family, type, level;
  };
  for (Case c : {Case{AF_INET, SOCK_STREAM, SOL_SOCKET}, Case{AF_INET, SOCK_DGRAM, SOL_SOCKET},
                 Case{AF_INET, SOCK_STREAM, IPPROTO_TCP}, Case{AF_INET6, SOCK_STREAM, IPPROTO_TCP},
                 Case{AF_INET, SOCK_DGRAM, IPPROTO_UDP}, Case{AF_INET, SOCK_DGRAM, IPPROTO_IP},
                 Case{AF_INET, SOCK_STREAM, IPPROTO_IP}, Case{AF_INET6, SOCK_DGRAM, IPPROTO_IPV6},
                 Case{AF_INET6, SOCK_STREAM, IPPROTO_IPV6}}) {
    Fd fd = Socket(c.family, c.type);
    EXPECT_EQ(GetErrno(fd.get(), c.level, 9999), ENOPROTOOPT) << c.family << "/" << c.level;
    EXPECT_EQ(SetErrno(fd.get(), c.level, 9999, 1), ENOPROTOOPT) << c.family << "/" << c.level;
  }
}

// ---------------------------------------------------------------------------------------
// Errors every socket call shares.

// A descriptor that is not a socket is ENOTSOCK to every socket call.
TEST(SockErrorTest, SocketCallsOnANonSocketFailEnotsock) {
  Pipe p = MakePipe(O_CLOEXEC);
  Fd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(null.valid());
  const Addr a = Loopback(AF_INET, 9);
  for (int fd : {p.r.get(), p.w.get(), null.get()}) {
    int v = 0;
    socklen_t len = sizeof(v);
    char buf[4] = {};
    Addr name;
    name.len = sizeof(name.ss);
    iovec iov{buf, sizeof(buf)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    EXPECT_ERRNO(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len), ENOTSOCK);
    EXPECT_ERRNO(SetInt(fd, SOL_SOCKET, SO_KEEPALIVE, 1), ENOTSOCK);
    EXPECT_ERRNO(Bind(fd, a), ENOTSOCK);
    EXPECT_ERRNO(Connect(fd, a), ENOTSOCK);
    EXPECT_ERRNO(listen(fd, 1), ENOTSOCK);
    EXPECT_ERRNO(accept4(fd, nullptr, nullptr, 0), ENOTSOCK);
    EXPECT_ERRNO(getsockname(fd, name.get(), &name.len), ENOTSOCK);
    EXPECT_ERRNO(getpeername(fd, name.get(), &name.len), ENOTSOCK);
    EXPECT_ERRNO(shutdown(fd, SHUT_RDWR), ENOTSOCK);
    EXPECT_ERRNO(send(fd, "x", 1, MSG_NOSIGNAL), ENOTSOCK);
    EXPECT_ERRNO(SendTo(fd, "x", a), ENOTSOCK);
    EXPECT_ERRNO(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), ENOTSOCK);
    EXPECT_ERRNO(sendmsg(fd, &msg, MSG_NOSIGNAL), ENOTSOCK);
    EXPECT_ERRNO(recvmsg(fd, &msg, MSG_DONTWAIT), ENOTSOCK);
  }
}

// A descriptor that is not open is EBADF.
TEST(SockErrorTest, SocketCallsOnABadDescriptorFailEbadf) {
  const Addr a = Loopback(AF_INET, 9);
  for (int fd : {-1, 1 << 20}) {
    int v = 0;
    socklen_t len = sizeof(v);
    char buf[4] = {};
    Addr name;
    name.len = sizeof(name.ss);
    EXPECT_ERRNO(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len), EBADF);
    EXPECT_ERRNO(SetInt(fd, SOL_SOCKET, SO_KEEPALIVE, 1), EBADF);
    EXPECT_ERRNO(Bind(fd, a), EBADF);
    EXPECT_ERRNO(Connect(fd, a), EBADF);
    EXPECT_ERRNO(listen(fd, 1), EBADF);
    EXPECT_ERRNO(accept(fd, nullptr, nullptr), EBADF);
    EXPECT_ERRNO(getsockname(fd, name.get(), &name.len), EBADF);
    EXPECT_ERRNO(getpeername(fd, name.get(), &name.len), EBADF);
    EXPECT_ERRNO(shutdown(fd, SHUT_RDWR), EBADF);
    EXPECT_ERRNO(send(fd, "x", 1, MSG_NOSIGNAL), EBADF);
    EXPECT_ERRNO(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), EBADF);
  }
}

// Pointers the process may not touch are EFAULT, for option values and lengths, addresses
// and data; nothing is done.
TEST(SockErrorTest, BadPointersFailEfault) {
  BadPage bad;
  ASSERT_TRUE(bad.ok());
  Fd tcp = Socket(AF_INET, SOCK_STREAM);
  int v = 0;
  socklen_t len = sizeof(v);
  EXPECT_ERRNO(getsockopt(tcp.get(), SOL_SOCKET, SO_TYPE, bad.as<void>(), &len), EFAULT);
  EXPECT_ERRNO(getsockopt(tcp.get(), SOL_SOCKET, SO_TYPE, &v, bad.as<socklen_t>()), EFAULT);
  EXPECT_ERRNO(getsockopt(tcp.get(), IPPROTO_TCP, TCP_NODELAY, bad.as<void>(), &len), EFAULT);
  EXPECT_ERRNO(setsockopt(tcp.get(), SOL_SOCKET, SO_KEEPALIVE, bad.as<void>(), sizeof(int)),
               EFAULT);
  EXPECT_ERRNO(setsockopt(tcp.get(), IPPROTO_TCP, TCP_NODELAY, bad.as<void>(), sizeof(int)),
               EFAULT);
  EXPECT_EQ(GetInt(tcp.get(), SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_ERRNO(bind(tcp.get(), bad.as<sockaddr>(), sizeof(sockaddr_in)), EFAULT);
  EXPECT_ERRNO(connect(tcp.get(), bad.as<sockaddr>(), sizeof(sockaddr_in)), EFAULT);
  EXPECT_EQ(SockName(tcp.get()).port(), 0);  // still unbound
  socklen_t name_len = sizeof(sockaddr_in);
  EXPECT_ERRNO(getsockname(tcp.get(), bad.as<sockaddr>(), &name_len), EFAULT);

  Addr ra;
  Fd rx = UdpSocket(Loopback(AF_INET), &ra);
  Fd tx = Socket(AF_INET, SOCK_DGRAM);
  EXPECT_ERRNO(sendto(tx.get(), bad.as<void>(), 8, 0, ra.get(), ra.len), EFAULT);
  EXPECT_ERRNO(sendto(tx.get(), "x", 1, 0, bad.as<sockaddr>(), ra.len), EFAULT);
  EXPECT_EQ(RecvNow(rx.get()), "[EAGAIN]");  // nothing went
  EXPECT_ERRNO(socketpair(AF_UNIX, SOCK_STREAM, 0, bad.as<int>()), EFAULT);

  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  EXPECT_ERRNO(send(c.client.get(), bad.as<void>(), 16, MSG_NOSIGNAL), EFAULT);
  ASSERT_TRUE(Send(c.client.get(), "ok"));
  ASSERT_EQ(QueuedSoon(c.server.get(), 2), 2);  // the bad send sent nothing
  EXPECT_ERRNO(recv(c.server.get(), bad.as<void>(), 16, MSG_DONTWAIT), EFAULT);
}

// An unknown level on an IPv4 socket falls through to IP's handler: setsockopt says
// ENOPROTOOPT, getsockopt EOPNOTSUPP.
TEST(SockErrorTest, AnUnknownLevelOnAnIpv4SocketFails) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    Fd fd = Socket(AF_INET, type);
    EXPECT_EQ(SetErrno(fd.get(), 12345, 1, 1), ENOPROTOOPT) << type;
    EXPECT_EQ(GetErrno(fd.get(), 12345, 1), EOPNOTSUPP) << type;
  }
}

// ---------------------------------------------------------------------------------------
// UDP.

// MSG_PEEK leaves the datagram (and its sender) for the next read; with MSG_TRUNC too it
// tells the whole length.
TEST(SockUdpTest, MsgPeekLeavesTheDatagramAndItsSender) {
  for (int family : kFamilies) {
    Addr ra, sa;
    Fd rx = UdpSocket(Loopback(family), &ra);
    Fd tx = UdpSocket(Loopback(family), &sa);
    ASSERT_EQ(SendTo(tx.get(), "first", ra), 5);
    ASSERT_EQ(SendTo(tx.get(), "second", ra), 6);
    const Message peek = RecvMsg(rx.get(), 100, MSG_PEEK);
    EXPECT_EQ(peek.data, "first") << ErrnoName(peek.err);
    EXPECT_EQ(peek.from, sa);
    char tiny[2];
    EXPECT_EQ(recv(rx.get(), tiny, sizeof(tiny), MSG_PEEK | MSG_TRUNC), 5);
    const Message m = RecvMsg(rx.get(), 100, MSG_DONTWAIT);
    EXPECT_EQ(m.data, "first");
    EXPECT_EQ(m.from, sa);
    EXPECT_EQ(RecvMsg(rx.get(), 100).data, "second");
  }
}

// A short address buffer gets the address's first bytes, and the full length is reported.
TEST(SockUdpTest, AShortAddressBufferIsTruncatedButTheLengthIsFull) {
  for (int family : kFamilies) {
    Addr ra, sa;
    Fd rx = UdpSocket(Loopback(family), &ra);
    Fd tx = UdpSocket(Loopback(family), &sa);
    ASSERT_EQ(SendTo(tx.get(), "x", ra), 1);
    ASSERT_EQ(Revents(rx.get(), POLLIN, kWaitMs), POLLIN);
    unsigned char name[sizeof(sockaddr_in6)];
    memset(name, 0xee, sizeof(name));
    socklen_t len = 4;
    char buf[4];
    EXPECT_EQ(recvfrom(rx.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(name), &len), 1);
    EXPECT_EQ(len, sa.len);
    EXPECT_EQ(memcmp(name, &sa.ss, 4), 0);  // the family and the port
    EXPECT_EQ(name[4], 0xee);
  }
}

// sendmsg gathers its iovecs into one datagram; recvmsg scatters one over its iovecs.
TEST(SockUdpTest, SendmsgGathersAndRecvmsgScatters) {
  Addr ra;
  Fd rx = UdpSocket(Loopback(AF_INET), &ra);
  Fd tx = Socket(AF_INET, SOCK_DGRAM);
  char a[] = "one", b[] = "two", c[] = "three";
  iovec out[3] = {{a, 3}, {b, 3}, {c, 5}};
  msghdr msg{};
  msg.msg_name = ra.get();
  msg.msg_namelen = ra.len;
  msg.msg_iov = out;
  msg.msg_iovlen = 3;
  ASSERT_EQ(sendmsg(tx.get(), &msg, 0), 11) << ErrnoName(errno);
  ASSERT_EQ(Revents(rx.get(), POLLIN, kWaitMs), POLLIN);
  EXPECT_EQ(Queued(rx.get()), 11);
  char x[4] = {}, y[4] = {}, z[8] = {};
  iovec in[3] = {{x, 4}, {y, 4}, {z, 8}};
  msghdr rmsg{};
  rmsg.msg_iov = in;
  rmsg.msg_iovlen = 3;
  EXPECT_EQ(recvmsg(rx.get(), &rmsg, 0), 11);
  EXPECT_EQ(std::string(x, 4), "onet");
  EXPECT_EQ(std::string(y, 4), "woth");
  EXPECT_EQ(std::string(z, 3), "ree");
  EXPECT_EQ(rmsg.msg_flags & MSG_TRUNC, 0);
}

// sendmmsg sends each message to its own address and fills in each msg_len.
TEST(SockUdpTest, SendmmsgSendsEachMessageToItsOwnAddress) {
  Addr addrs[3];
  Fd rxs[3];
  for (int i = 0; i < 3; i++) rxs[i] = UdpSocket(Loopback(AF_INET6), &addrs[i]);
  Fd tx = Socket(AF_INET6, SOCK_DGRAM);
  std::string texts[3] = {"to zero", "to one", "to two"};
  iovec iovs[3];
  mmsghdr msgs[3] = {};
  for (int i = 0; i < 3; i++) {
    iovs[i] = {texts[i].data(), texts[i].size()};
    msgs[i].msg_hdr.msg_name = addrs[i].get();
    msgs[i].msg_hdr.msg_namelen = addrs[i].len;
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  ASSERT_EQ(sendmmsg(tx.get(), msgs, 3, 0), 3) << ErrnoName(errno);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(msgs[i].msg_len, texts[i].size());
    EXPECT_EQ(RecvMsg(rxs[i].get()).data, texts[i]);
  }
}

// A socket bound to 127.0.0.1 hears nothing sent to 127.0.0.2, though both are loopback.
TEST(SockUdpTest, ASocketBoundTo127001DoesNotHear127002) {
  Addr ra;
  Fd rx = UdpSocket(Loopback(AF_INET), &ra);
  Fd tx = Socket(AF_INET, SOCK_DGRAM);
  ASSERT_EQ(SendTo(tx.get(), "lost", MakeAddr(AF_INET, "127.0.0.2", ra.port())), 4)
      << ErrnoName(errno);
  ASSERT_EQ(SendTo(tx.get(), "heard", ra), 5);
  EXPECT_EQ(RecvMsg(rx.get()).data, "heard");
  EXPECT_EQ(RecvNow(rx.get()), "[EAGAIN]");
}

// A wildcard socket hears every loopback address; IP_PKTINFO says which one each datagram
// was sent to, and on which interface (lo, 1).
TEST(SockUdpTest, IpPktinfoTellsAWildcardSocketWhereADatagramWasSent) {
  Addr ra;
  Fd rx = UdpSocket(Wildcard(AF_INET), &ra);
  ASSERT_OK(SetInt(rx.get(), IPPROTO_IP, IP_PKTINFO, 1));
  Fd tx = Socket(AF_INET, SOCK_DGRAM);
  for (const char* ip : {"127.0.0.2", "127.0.0.1", "127.1.2.3"}) {
    const Addr to = MakeAddr(AF_INET, ip, ra.port());
    ASSERT_EQ(SendTo(tx.get(), ip, to), static_cast<ssize_t>(strlen(ip))) << ErrnoName(errno);
    const Message m = RecvMsg(rx.get());
    EXPECT_EQ(m.data, ip) << ErrnoName(m.err);
    ASSERT_TRUE(m.has_pktinfo) << ip;
    EXPECT_EQ(m.pktinfo.ipi_addr.s_addr, to.v4().sin_addr.s_addr) << ip;
    EXPECT_EQ(m.pktinfo.ipi_ifindex, 1) << ip;
    EXPECT_EQ(m.from.port(), SockName(tx.get()).port());
  }
}

// IPV6_RECVPKTINFO does the same for IPv6.
TEST(SockUdpTest, Ipv6RecvpktinfoGivesTheDestinationAndInterface) {
  Addr ra;
  Fd rx = UdpSocket(Wildcard(AF_INET6), &ra);
  ASSERT_OK(SetInt(rx.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, 1));
  Fd tx = Socket(AF_INET6, SOCK_DGRAM);
  ASSERT_EQ(SendTo(tx.get(), "six", Loopback(AF_INET6, ra.port())), 3) << ErrnoName(errno);
  const Message m = RecvMsg(rx.get());
  EXPECT_EQ(m.data, "six") << ErrnoName(m.err);
  ASSERT_TRUE(m.has_pktinfo6);
  EXPECT_EQ(memcmp(&m.pktinfo6.ipi6_addr, &in6addr_loopback, sizeof(in6_addr)), 0);
  EXPECT_EQ(m.pktinfo6.ipi6_ifindex, 1u);
}

// IP_RECVTTL and IPV6_RECVHOPLIMIT report the TTL or hop limit the sender set.
TEST(SockUdpTest, RecvttlAndRecvhoplimitReportWhatTheSenderSet) {
  Addr ra;
  Fd rx = UdpSocket(Loopback(AF_INET), &ra);
  ASSERT_OK(SetInt(rx.get(), IPPROTO_IP, IP_RECVTTL, 1));
  Fd tx = Socket(AF_INET, SOCK_DGRAM);
  ASSERT_OK(SetInt(tx.get(), IPPROTO_IP, IP_TTL, 33));
  ASSERT_EQ(SendTo(tx.get(), "ttl", ra), 3);
  EXPECT_EQ(RecvMsg(rx.get()).ttl, 33);

  Addr ra6;
  Fd rx6 = UdpSocket(Loopback(AF_INET6), &ra6);
  ASSERT_OK(SetInt(rx6.get(), IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1));
  Fd tx6 = Socket(AF_INET6, SOCK_DGRAM);
  ASSERT_OK(SetInt(tx6.get(), IPPROTO_IPV6, IPV6_UNICAST_HOPS, 17));
  ASSERT_EQ(SendTo(tx6.get(), "hops", ra6), 4);
  EXPECT_EQ(RecvMsg(rx6.get()).hoplimit, 17);
}

// SO_TIMESTAMP stamps each datagram with the wall-clock time it arrived.
TEST(SockUdpTest, SoTimestampStampsEachDatagram) {
  Addr ra;
  Fd rx = UdpSocket(Loopback(AF_INET), &ra);
  ASSERT_OK(SetInt(rx.get(), SOL_SOCKET, SO_TIMESTAMP, 1));
  Fd tx = Socket(AF_INET, SOCK_DGRAM);
  timeval before{}, after{};
  gettimeofday(&before, nullptr);
  ASSERT_EQ(SendTo(tx.get(), "when", ra), 4);
  const Message m = RecvMsg(rx.get());
  gettimeofday(&after, nullptr);
  EXPECT_EQ(m.data, "when");
  ASSERT_TRUE(m.has_timestamp);
  const int64_t at = m.timestamp.tv_sec * 1000000LL + m.timestamp.tv_usec;
  EXPECT_GE(at, before.tv_sec * 1000000LL + before.tv_usec - 1000000);
  EXPECT_LE(at, after.tv_sec * 1000000LL + after.tv_usec + 1000000);
}

// A full receive buffer drops datagrams; the sender never blocks and never hears of it.
// SO_RXQ_OVFL tags each datagram with how many were dropped before it was queued.
TEST(SockUdpTest, AFullReceiveBufferDropsDatagramsWithoutBlockingTheSender) {
  constexpr int kCount = 200;
  Addr ra;
  Fd rx = UdpSocket(Loopback(AF_INET), &ra);
  ASSERT_OK(SetInt(rx.get(), SOL_SOCKET, SO_RCVBUF, 4096));
  ASSERT_OK(SetInt(rx.get(), SOL_SOCKET, SO_RXQ_OVFL, 1));
  Fd tx = Socket(AF_INET, SOCK_DGRAM);
  const std::string payload(1000, 'd');
  for (int i = 0; i < kCount; i++) {  // none would block: none fails EAGAIN
    ASSERT_EQ(SendTo(tx.get(), payload, ra, MSG_DONTWAIT | MSG_NOSIGNAL), 1000)
        << i << ": " << ErrnoName(errno);
  }
  int received = 0;
  for (;;) {
    const Message m = RecvMsg(rx.get(), 2000, MSG_DONTWAIT);
    if (m.n < 0) {
      EXPECT_EQ(m.err, EAGAIN) << ErrnoName(m.err);
      break;
    }
    EXPECT_EQ(m.n, 1000);
    received++;
  }
  EXPECT_GE(received, 1);
  EXPECT_LT(received, kCount);
  ASSERT_EQ(SendTo(tx.get(), "after", ra), 5);
  const Message last = RecvMsg(rx.get());
  EXPECT_EQ(last.data, "after");
  EXPECT_EQ(last.dropped, kCount - received);
}

// connect again to another address re-targets a UDP socket.
TEST(SockUdpTest, ConnectingAgainRetargetsTheSocket) {
  for (int family : kFamilies) {
    Addr aa, ba;
    Fd a = UdpSocket(Loopback(family), &aa);
    Fd b = UdpSocket(Loopback(family), &ba);
    Fd fd = Socket(family, SOCK_DGRAM);
    ASSERT_OK(Connect(fd.get(), aa));
    const Addr mine = SockName(fd.get());
    ASSERT_OK(Connect(fd.get(), ba));
    EXPECT_EQ(PeerName(fd.get()), ba);
    EXPECT_EQ(SockName(fd.get()), mine);  // the port stays
    ASSERT_TRUE(Send(fd.get(), "to b"));
    EXPECT_EQ(RecvMsg(b.get()).data, "to b");
    EXPECT_EQ(RecvNow(a.get()), "[EAGAIN]");
  }
}

// A read with a zero-byte buffer still takes the whole datagram off the queue.
TEST(SockUdpTest, AZeroByteReadConsumesADatagram) {
  Addr ra;
  Fd rx = UdpSocket(Loopback(AF_INET), &ra);
  Fd tx = Socket(AF_INET, SOCK_DGRAM);
  ASSERT_EQ(SendTo(tx.get(), "gone", ra), 4);
  ASSERT_EQ(SendTo(tx.get(), "kept", ra), 4);
  ASSERT_EQ(Revents(rx.get(), POLLIN, kWaitMs), POLLIN);
  char buf[1];
  EXPECT_EQ(recv(rx.get(), buf, 0, 0), 0);
  EXPECT_EQ(RecvMsg(rx.get()).data, "kept");
}

// writev(2) on a connected UDP socket sends one datagram of all its pieces, and readv(2)
// takes one datagram, spread over its buffers; read(2) of 0 bytes takes nothing.
TEST(SockUdpTest, WritevSendsOneDatagramAndReadvTakesOne) {
  Addr ra, ta;
  Fd rx = UdpSocket(Loopback(AF_INET), &ra);
  Fd tx = UdpSocket(Loopback(AF_INET), &ta);
  ASSERT_OK(Connect(tx.get(), ra));
  ASSERT_OK(Connect(rx.get(), ta));
  char a[] = "head-", b[] = "body";
  iovec out[2] = {{a, 5}, {b, 4}};
  ASSERT_EQ(writev(tx.get(), out, 2), 9) << ErrnoName(errno);
  ASSERT_EQ(SendTo(tx.get(), "second", ra), 6);
  ASSERT_EQ(Revents(rx.get(), POLLIN, kWaitMs), POLLIN);
  EXPECT_EQ(read(rx.get(), a, 0), 0);
  char x[3] = {}, y[16] = {};
  iovec in[2] = {{x, 3}, {y, sizeof(y)}};
  EXPECT_EQ(readv(rx.get(), in, 2), 9) << ErrnoName(errno);
  EXPECT_EQ(std::string(x, 3) + std::string(y, 6), "head-body");
  EXPECT_EQ(RecvMsg(rx.get()).data, "second");
}

// shutdown(SHUT_RD) on a connected UDP socket, the way to stop a blocked reader: what is
// queued can still be read; then a blocking read returns 0 at once instead of waiting (one
// with MSG_DONTWAIT still says EAGAIN). It polls POLLIN|POLLRDHUP, with POLLHUP after
// SHUT_WR too, and sends then fail EPIPE.
TEST(SockUdpTest, ShutdownRdOnAConnectedSocketEndsReading) {
  for (int family : kFamilies) {
    Addr pa, fa;
    Fd peer = UdpSocket(Loopback(family), &pa);
    Fd fd = UdpSocket(Loopback(family), &fa);
    ASSERT_OK(Connect(fd.get(), pa));
    ASSERT_EQ(SendTo(peer.get(), "queued", fa), 6);
    ASSERT_EQ(Revents(fd.get(), POLLIN, kWaitMs), POLLIN);
    ASSERT_OK(shutdown(fd.get(), SHUT_RD));
    EXPECT_EQ(RecvNow(fd.get()), "queued");
    EXPECT_EQ(RecvNow(fd.get()), "[EAGAIN]") << FamilyName(family);
    EXPECT_TRUE(ChildSucceeds([&] {  // a blocking read, bounded by the child's
      REQUIRE(Recv(fd.get()) == "[eof]");
      return 0;
    }));
    EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT | POLLRDHUP), POLLIN | POLLOUT | POLLRDHUP);
    ASSERT_OK(shutdown(fd.get(), SHUT_WR));
    EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT | POLLRDHUP),
              POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
    EXPECT_ERRNO(send(fd.get(), "x", 1, MSG_NOSIGNAL), EPIPE);
  }
}

// ---------------------------------------------------------------------------------------
// IPv6.

// An IPv6 socket may bind a v4-mapped address: it then serves IPv4 clients (and only them),
// and names itself with the mapped address.
TEST(SockIpv6Test, BindingAV4MappedAddressServesIpv4Clients) {
  Fd listener = Socket(AF_INET6, SOCK_STREAM);
  ASSERT_EQ(Bind(listener.get(), MakeAddr(AF_INET6, "::ffff:127.0.0.1")), 0) << ErrnoName(errno);
  ASSERT_OK(listen(listener.get(), 4));
  const Addr a = SockName(listener.get());
  EXPECT_EQ(a.ip(), "::ffff:127.0.0.1");
  Fd v4 = Socket(AF_INET, SOCK_STREAM);
  ASSERT_EQ(Connect(v4.get(), Loopback(AF_INET, a.port())), 0) << ErrnoName(errno);
  Addr from;
  Fd server = AcceptSoon(listener.get(), 0, &from);
  ASSERT_TRUE(server.valid());
  EXPECT_EQ(from, MakeAddr(AF_INET6, "::ffff:127.0.0.1", SockName(v4.get()).port()));
  Fd v6 = Socket(AF_INET6, SOCK_STREAM);
  EXPECT_ERRNO(Connect(v6.get(), Loopback(AF_INET6, a.port())), ECONNREFUSED);
}

// A V6ONLY socket may neither bind a v4-mapped address (EINVAL) nor send to one
// (ENETUNREACH).
TEST(SockIpv6Test, AV6onlySocketRefusesV4MappedAddresses) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    Fd fd = Socket(AF_INET6, type);
    ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1));
    EXPECT_ERRNO(Bind(fd.get(), MakeAddr(AF_INET6, "::ffff:127.0.0.1")), EINVAL);
  }
  Addr ra;
  Fd rx = UdpSocket(Loopback(AF_INET), &ra);
  Fd tx = Socket(AF_INET6, SOCK_DGRAM);
  ASSERT_OK(SetInt(tx.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1));
  EXPECT_ERRNO(SendTo(tx.get(), "x", MakeAddr(AF_INET6, "::ffff:127.0.0.1", ra.port())),
               ENETUNREACH);
  EXPECT_EQ(RecvNow(rx.get()), "[EAGAIN]");
}

// IPV6_V6ONLY starts as net.ipv6.bindv6only says.
TEST(SockIpv6Test, V6onlyDefaultsToTheSysctl) {
  const int sysctl = Sysctl("net/ipv6/bindv6only");
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    Fd fd = Socket(AF_INET6, type);
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY), sysctl);
  }
}

// A TCP connection from an IPv4 client to a dual-stack listener stays an AF_INET6 socket on
// the server's side, with IPv4-level options (IP_TTL) usable on it.
TEST(SockIpv6Test, AnAcceptedV4MappedConnectionIsAnIpv6Socket) {
  Addr a;
  Fd listener = Listener(Wildcard(AF_INET6), &a);
  Fd client = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(Connect(client.get(), Loopback(AF_INET, a.port())));
  Fd server = AcceptSoon(listener.get());
  ASSERT_TRUE(server.valid());
  EXPECT_EQ(GetInt(server.get(), SOL_SOCKET, SO_DOMAIN), AF_INET6);
  EXPECT_EQ(SockName(server.get()).family(), AF_INET6);
  ASSERT_OK(SetInt(server.get(), IPPROTO_IP, IP_TTL, 9));
  EXPECT_EQ(GetInt(server.get(), IPPROTO_IP, IP_TTL), 9);
  ASSERT_TRUE(Send(server.get(), "mapped"));
  EXPECT_EQ(RecvSoon(client.get()), "mapped");
}

// ---------------------------------------------------------------------------------------
// Unix sockets.

// connect follows a symlink to a socket node; the peer is named as the listener bound it.
TEST(SockUnixTest, ConnectFollowsASymlinkToTheSocket) {
  TempDir dir;
  const std::string path = dir.Join("sock");
  Fd listener(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(listener.get(), PathAddr(path).get(), PathAddr(path).len));
  ASSERT_OK(listen(listener.get(), 4));
  ASSERT_OK(symlink(path.c_str(), dir.Join("link").c_str()));
  Fd client(socket(AF_UNIX, SOCK_STREAM, 0));
  const UnixAddr link = PathAddr(dir.Join("link"));
  ASSERT_EQ(connect(client.get(), link.get(), link.len), 0) << ErrnoName(errno);
  EXPECT_EQ(UnixPeerName(client.get()).path(), path);
  Fd server(accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(server.valid());
  ASSERT_TRUE(Send(client.get(), "via link"));
  EXPECT_EQ(RecvSoon(server.get()), "via link");
}

// bind does not follow symlinks: a name taken by a symlink (even a dangling one) is
// EADDRINUSE, and the link's target is not created.
TEST(SockUnixTest, BindingOverASymlinkFailsEaddrinuse) {
  TempDir dir;
  ASSERT_OK(symlink(dir.Join("target").c_str(), dir.Join("link").c_str()));
  Fd fd(socket(AF_UNIX, SOCK_DGRAM, 0));
  const UnixAddr link = PathAddr(dir.Join("link"));
  EXPECT_ERRNO(bind(fd.get(), link.get(), link.len), EADDRINUSE);
  struct stat st;
  EXPECT_ERRNO(lstat(dir.Join("target").c_str(), &st), ENOENT);
}

// A socket node cannot be opened like a file: ENXIO (O_PATH alone is allowed).
TEST(SockUnixTest, OpeningASocketNodeFailsEnxio) {
  TempDir dir;
  const UnixAddr a = PathAddr(dir.Join("sock"));
  Fd fd(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(fd.get(), a.get(), a.len));
  for (int flags : {O_RDONLY, O_WRONLY, O_RDWR}) {
    EXPECT_ERRNO(open(a.path().c_str(), flags | O_CLOEXEC), ENXIO);
  }
  Fd path(open(a.path().c_str(), O_PATH | O_CLOEXEC));
  ASSERT_TRUE(path.valid()) << ErrnoName(errno);
  struct stat st;
  ASSERT_OK(fstat(path.get(), &st));
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
}

// Renaming the node moves the way in: connect works by the new name and fails ENOENT by
// the old, while getsockname still tells the name that was bound.
TEST(SockUnixTest, ARenamedNodeReachesTheListenerWhichKeepsItsOldName) {
  TempDir dir;
  const UnixAddr old_name = PathAddr(dir.Join("old")), new_name = PathAddr(dir.Join("new"));
  Fd listener(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(listener.get(), old_name.get(), old_name.len));
  ASSERT_OK(listen(listener.get(), 4));
  ASSERT_OK(rename(old_name.path().c_str(), new_name.path().c_str()));
  Fd lost(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_ERRNO(connect(lost.get(), old_name.get(), old_name.len), ENOENT);
  Fd client(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_EQ(connect(client.get(), new_name.get(), new_name.len), 0) << ErrnoName(errno);
  EXPECT_EQ(UnixSockName(listener.get()).path(), old_name.path());
  EXPECT_EQ(UnixPeerName(client.get()).path(), old_name.path());
}

// SO_PEEK_OFF (-1, off, by default) makes successive peeks walk through the stream; reads
// move the offset back by what they took.
TEST(SockUnixTest, SoPeekOffMakesPeeksWalkTheStream) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_TRUE(Send(p.a.get(), "abcdef"));
  EXPECT_EQ(GetInt(p.b.get(), SOL_SOCKET, SO_PEEK_OFF), -1);
  ASSERT_OK(SetInt(p.b.get(), SOL_SOCKET, SO_PEEK_OFF, 0));
  EXPECT_EQ(Recv(p.b.get(), 3, MSG_PEEK), "abc");
  EXPECT_EQ(GetInt(p.b.get(), SOL_SOCKET, SO_PEEK_OFF), 3);
  EXPECT_EQ(Recv(p.b.get(), 3, MSG_PEEK), "def");
  EXPECT_EQ(GetInt(p.b.get(), SOL_SOCKET, SO_PEEK_OFF), 6);
  EXPECT_EQ(Recv(p.b.get(), 2), "ab");
  EXPECT_EQ(GetInt(p.b.get(), SOL_SOCKET, SO_PEEK_OFF), 4);
  ASSERT_OK(SetInt(p.b.get(), SOL_SOCKET, SO_PEEK_OFF, 1));
  EXPECT_EQ(Recv(p.b.get(), 100, MSG_PEEK), "def");
  EXPECT_EQ(Recv(p.b.get(), 100), "cdef");
  EXPECT_EQ(GetInt(p.b.get(), SOL_SOCKET, SO_PEEK_OFF), 0);
}

// A datagram socket connected to a receiver whose queue is full polls not writable; it
// becomes writable when the receiver takes a datagram.
TEST(SockUnixTest, AFullReceiverMakesAConnectedSenderUnwritable) {
  const UnixAddr a = AbstractAddr(UniqueName());
  Fd rx(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_OK(bind(rx.get(), a.get(), a.len));
  Fd tx(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0));
  ASSERT_OK(connect(tx.get(), a.get(), a.len));
  EXPECT_EQ(Revents(tx.get(), POLLOUT), POLLOUT);
  int sent = 0;
  while (sent < 100000 && send(tx.get(), "q", 1, 0) == 1) sent++;
  ASSERT_EQ(errno, EAGAIN) << ErrnoName(errno);
  ASSERT_GT(sent, 0);
  EXPECT_EQ(Revents(tx.get(), POLLOUT), 0);
  EXPECT_EQ(RecvNow(rx.get()), "q");
  EXPECT_EQ(Revents(tx.get(), POLLOUT, kWaitMs), POLLOUT);
  EXPECT_EQ(send(tx.get(), "q", 1, 0), 1) << ErrnoName(errno);
}

// shutdown on a datagram socketpair: SHUT_RD lets what is queued be read, then makes a
// blocking read return 0 instead of waiting (MSG_DONTWAIT still says EAGAIN); SHUT_WR makes
// one's own sends fail EPIPE.
TEST(SockUnixTest, ShutdownOfADatagramSocket) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_TRUE(Send(p.b.get(), "queued"));
  ASSERT_OK(shutdown(p.a.get(), SHUT_RD));
  EXPECT_EQ(RecvNow(p.a.get()), "queued");
  EXPECT_EQ(RecvNow(p.a.get()), "[EAGAIN]");
  EXPECT_TRUE(ChildSucceeds([&] {  // a blocking read, bounded by the child's
    REQUIRE(Recv(p.a.get()) == "[eof]");
    return 0;
  }));
  ASSERT_OK(shutdown(p.a.get(), SHUT_WR));
  EXPECT_ERRNO(send(p.a.get(), "x", 1, MSG_NOSIGNAL), EPIPE);
}

// ---------------------------------------------------------------------------------------
// /proc/net.

// A bound UDP socket is listed with its address and port in hex, no peer, state 07
// (TCP_CLOSE), its owner and its inode; connected, it is state 01 with the peer.
TEST(SockProcNetTest, UdpSocketsAreListedWithTheirPortInHex) {
  for (int family : kFamilies) {
    const std::string table = family == AF_INET ? "udp" : "udp6";
    Addr a;
    Fd fd = UdpSocket(Loopback(family), &a);
    const ProcSocket s = WaitProcSocket(table, a, Wildcard(family), "07");
    EXPECT_EQ(s.inode, Inode(fd.get()));
    EXPECT_EQ(s.uid, static_cast<long>(getuid()));
    Addr pa;
    Fd peer = UdpSocket(Loopback(family), &pa);
    ASSERT_OK(Connect(fd.get(), pa));
    EXPECT_EQ(WaitProcSocket(table, a, pa, "01").inode, Inode(fd.get()));
  }
}

// Both ends of a TCP connection are listed in state 01 (ESTABLISHED), each with the other
// as its remote address.
TEST(SockProcNetTest, AConnectedTcpPairIsListedEstablishedBothWays) {
  for (int family : kFamilies) {
    const std::string table = family == AF_INET ? "tcp" : "tcp6";
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    const Addr ca = SockName(c.client.get()), sa = SockName(c.server.get());
    EXPECT_EQ(WaitProcSocket(table, ca, sa, "01").inode, Inode(c.client.get()));
    EXPECT_EQ(WaitProcSocket(table, sa, ca, "01").inode, Inode(c.server.get()));
  }
}

// The queue columns: an established socket's rx_queue is its unread bytes; a listener's is
// its count of connections waiting to be accepted.
TEST(SockProcNetTest, TheRxQueueCountsUnreadBytesAndPendingConnections) {
  Addr a;
  Fd listener = Listener(Loopback(AF_INET), &a);
  Fd c1 = Socket(AF_INET, SOCK_STREAM), c2 = Socket(AF_INET, SOCK_STREAM);
  ASSERT_OK(Connect(c1.get(), a));
  ASSERT_OK(Connect(c2.get(), a));
  EXPECT_EQ(WaitProcSocket("tcp", a, Wildcard(AF_INET), "0A").queues, "00000000:00000002");
  Fd server = AcceptSoon(listener.get());
  ASSERT_TRUE(server.valid());
  EXPECT_EQ(WaitProcSocket("tcp", a, Wildcard(AF_INET), "0A").queues, "00000000:00000001");
  const Addr peer = PeerName(server.get());
  Fd& client = SockName(c1.get()) == peer ? c1 : c2;
  ASSERT_TRUE(Send(client.get(), "12345"));
  ASSERT_EQ(QueuedSoon(server.get(), 5), 5);
  EXPECT_EQ(WaitProcSocket("tcp", a, peer, "01").queues, "00000000:00000005");
}

// A half-closed connection: FIN_WAIT2 (05) on the side that shut, CLOSE_WAIT (08) on the
// other.
TEST(SockProcNetTest, AHalfClosedConnectionIsListedFinWait2AndCloseWait) {
  for (int family : kFamilies) {
    const std::string table = family == AF_INET ? "tcp" : "tcp6";
    Conn c = Connected(family);
    ASSERT_TRUE(c.server.valid());
    const Addr ca = SockName(c.client.get()), sa = SockName(c.server.get());
    ASSERT_OK(shutdown(c.client.get(), SHUT_WR));
    EXPECT_EQ(WaitProcSocket(table, ca, sa, "05").inode, Inode(c.client.get()));
    EXPECT_EQ(WaitProcSocket(table, sa, ca, "08").inode, Inode(c.server.get()));
  }
}

// An IPv6 listener on ::1 is in /proc/net/tcp6, its address as four hex words.
TEST(SockProcNetTest, AnIpv6ListenerIsListedInTcp6) {
  Addr a;
  Fd listener = Listener(Loopback(AF_INET6), &a);
  EXPECT_EQ(ProcAddr(a).substr(0, 32), "00000000000000000000000001000000");
  const ProcSocket s = WaitProcSocket("tcp6", a, Wildcard(AF_INET6), "0A");
  EXPECT_EQ(s.inode, Inode(listener.get()));
  EXPECT_EQ(s.uid, static_cast<long>(getuid()));
}

// ---------------------------------------------------------------------------------------
// Netlink route sockets.

// Route sockets are SOCK_RAW or SOCK_DGRAM (both answer a dump); SOCK_STREAM is
// ESOCKTNOSUPPORT.
TEST(SockNetlinkTest, ARouteSocketSaysWhatItIs) {
  for (int type : {SOCK_RAW, SOCK_DGRAM}) {
    Fd fd = Route(type);
    ASSERT_TRUE(fd.valid()) << type << ": " << ErrnoName(errno);
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_TYPE), type);
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_DOMAIN), AF_NETLINK);
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_PROTOCOL), NETLINK_ROUTE);
    ifinfomsg body{};
    ASSERT_TRUE(
        NlRequest(fd.get(), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &body, sizeof(body)));
    const std::vector<std::string> replies = NlReplies(fd.get());
    ASSERT_FALSE(replies.empty());
    EXPECT_EQ(Header(replies[0])->nlmsg_type, RTM_NEWLINK);
    EXPECT_EQ(Header(replies.back())->nlmsg_type, NLMSG_DONE);
  }
  EXPECT_ERRNO(socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE), ESOCKTNOSUPPORT);
}

// An unbound netlink socket's port id is 0 until its first send binds it to the process id;
// a second socket in the process then gets another, nonzero one.
TEST(SockNetlinkTest, TheFirstSendAutobindsToTheProcessId) {
  EXPECT_TRUE(ChildSucceeds([] {
    Fd first = Route();
    REQUIRE(first.valid());
    REQUIRE(NlPortId(first.get()) == 0);
    ifinfomsg body{};
    REQUIRE(
        NlRequest(first.get(), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &body, sizeof(body)));
    REQUIRE(NlPortId(first.get()) == static_cast<uint32_t>(getpid()));
    Fd second = Route();
    REQUIRE(second.valid());
    REQUIRE(
        NlRequest(second.get(), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &body, sizeof(body)));
    const uint32_t id = NlPortId(second.get());
    REQUIRE(id != 0 && id != static_cast<uint32_t>(getpid()) && id != ~0u);
    return 0;
  }));
}

// A plain (not dump) RTM_GETLINK for index 1 answers with one RTM_NEWLINK for lo, not marked
// multipart, then the ack asked for: NLMSG_ERROR with error 0. Replies carry the request's
// sequence number and the socket's port id.
TEST(SockNetlinkTest, AGetlinkForIndexOneAnswersLoAndAcks) {
  Fd fd = Route();
  ASSERT_TRUE(fd.valid());
  ifinfomsg body{};
  body.ifi_index = 1;
  ASSERT_TRUE(
      NlRequest(fd.get(), RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 4242, &body, sizeof(body)));
  const std::vector<std::string> replies = NlReplies(fd.get());
  ASSERT_EQ(replies.size(), 2u);
  const uint32_t port = NlPortId(fd.get());
  EXPECT_NE(port, 0u);
  const nlmsghdr* link = Header(replies[0]);
  EXPECT_EQ(link->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(link->nlmsg_flags & NLM_F_MULTI, 0);
  EXPECT_EQ(link->nlmsg_seq, 4242u);
  EXPECT_EQ(link->nlmsg_pid, port);
  EXPECT_EQ(static_cast<const ifinfomsg*>(NLMSG_DATA(link))->ifi_index, 1);
  EXPECT_EQ(Attr(replies[0], sizeof(ifinfomsg), IFLA_IFNAME), std::string("lo\0", 3));
  const nlmsghdr* ack = Header(replies[1]);
  EXPECT_EQ(ack->nlmsg_type, NLMSG_ERROR);
  EXPECT_EQ(ack->nlmsg_seq, 4242u);
  EXPECT_EQ(ack->nlmsg_pid, port);
  const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(ack));
  EXPECT_EQ(err->error, 0);
  EXPECT_EQ(err->msg.nlmsg_type, RTM_GETLINK);
  EXPECT_EQ(err->msg.nlmsg_seq, 4242u);
}

// A request for an interface that does not exist is answered with NLMSG_ERROR -ENODEV,
// quoting the request's header.
TEST(SockNetlinkTest, AGetlinkForAMissingIndexFailsEnodev) {
  Fd fd = Route();
  ASSERT_TRUE(fd.valid());
  ifinfomsg body{};
  body.ifi_index = 999;
  ASSERT_TRUE(NlRequest(fd.get(), RTM_GETLINK, NLM_F_REQUEST, 77, &body, sizeof(body)));
  const std::vector<std::string> replies = NlReplies(fd.get());
  ASSERT_EQ(replies.size(), 1u);
  const nlmsghdr* h = Header(replies[0]);
  EXPECT_EQ(h->nlmsg_type, NLMSG_ERROR);
  EXPECT_EQ(h->nlmsg_seq, 77u);
  const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  EXPECT_EQ(err->error, -ENODEV);
  EXPECT_EQ(err->msg.nlmsg_type, RTM_GETLINK);
  EXPECT_EQ(err->msg.nlmsg_seq, 77u);
}

// A buffer too small for a reply gets its start, MSG_TRUNC in msg_flags, and the rest is
// lost; with MSG_TRUNC in flags, recvmsg returns the full length.
TEST(SockNetlinkTest, AShortBufferTruncatesAReply) {
  Fd fd = Route();
  ASSERT_TRUE(fd.valid());
  ifinfomsg body{};
  body.ifi_index = 1;
  for (int flags : {0, static_cast<int>(MSG_TRUNC)}) {
    ASSERT_TRUE(NlRequest(fd.get(), RTM_GETLINK, NLM_F_REQUEST, 5, &body, sizeof(body)));
    ASSERT_EQ(Revents(fd.get(), POLLIN, kWaitMs), POLLIN);
    nlmsghdr h{};
    iovec iov{&h, sizeof(h)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = recvmsg(fd.get(), &msg, flags);
    EXPECT_NE(msg.msg_flags & MSG_TRUNC, 0);
    EXPECT_EQ(h.nlmsg_type, RTM_NEWLINK);
    EXPECT_EQ(h.nlmsg_seq, 5u);
    if (flags == 0) {
      EXPECT_EQ(n, static_cast<ssize_t>(sizeof(h)));
    } else {
      EXPECT_EQ(n, static_cast<ssize_t>(h.nlmsg_len));
    }
    EXPECT_GT(h.nlmsg_len, sizeof(h));
    char buf[16];
    EXPECT_ERRNO(recv(fd.get(), buf, sizeof(buf), MSG_DONTWAIT), EAGAIN);  // the rest is gone
  }
}

// An RTM_GETADDR dump of IPv4 answers with 127.0.0.1/8 on lo, in a reply marked multipart,
// with the request's sequence number and the socket's port id on every message.
TEST(SockNetlinkTest, EveryDumpMessageCarriesTheSequenceAndPortId) {
  Fd fd = Route();
  ASSERT_TRUE(fd.valid());
  ifaddrmsg body{};
  body.ifa_family = AF_INET;
  ASSERT_TRUE(
      NlRequest(fd.get(), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 31337, &body, sizeof(body)));
  const std::vector<std::string> replies = NlReplies(fd.get());
  ASSERT_EQ(replies.size(), 2u);
  const uint32_t port = NlPortId(fd.get());
  for (const std::string& r : replies) {
    EXPECT_EQ(Header(r)->nlmsg_seq, 31337u);
    EXPECT_EQ(Header(r)->nlmsg_pid, port);
    EXPECT_NE(Header(r)->nlmsg_flags & NLM_F_MULTI, 0);
  }
  EXPECT_EQ(Header(replies[0])->nlmsg_type, RTM_NEWADDR);
  EXPECT_EQ(Header(replies[1])->nlmsg_type, NLMSG_DONE);
  const in_addr lo = {htonl(INADDR_LOOPBACK)};
  EXPECT_EQ(Attr(replies[0], sizeof(ifaddrmsg), IFA_LOCAL),
            std::string(reinterpret_cast<const char*>(&lo), sizeof(lo)));
}

// ---------------------------------------------------------------------------------------
// O_ASYNC: signal-driven I/O on sockets.

// ---------------------------------------------------------------------------------------
// bind(2) to a group's address: Linux's inet_bind takes multicast and broadcast addresses
// as well as the host's own (RTN_MULTICAST, RTN_BROADCAST); inet6_bind takes any group,
// one of link scope with the scope id of an interface (EINVAL without, ENODEV for none).

sockaddr_in In4(const char* text, uint16_t port = 0) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET, text, &a.sin_addr), 1) << text;
  return a;
}

sockaddr_in6 In6(const char* text, uint32_t scope = 0) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_scope_id = scope;
  EXPECT_EQ(inet_pton(AF_INET6, text, &a.sin6_addr), 1) << text;
  return a;
}

TEST(SockBindGroupTest, AnIpv4GroupOrTheBroadcastAddressCanBeBound) {
  Fd u(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in group = In4("239.255.10.1");
  ASSERT_OK(bind(u.get(), reinterpret_cast<sockaddr*>(&group), sizeof(group)));
  sockaddr_in got{};
  socklen_t len = sizeof(got);
  ASSERT_OK(getsockname(u.get(), reinterpret_cast<sockaddr*>(&got), &len));
  EXPECT_EQ(got.sin_addr.s_addr, group.sin_addr.s_addr);
  EXPECT_NE(got.sin_port, 0);
  Fd b(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in all = In4("255.255.255.255");
  ASSERT_OK(bind(b.get(), reinterpret_cast<sockaddr*>(&all), sizeof(all)));
  // Neither a group, nor broadcast, nor the sandbox's own.
  Fd c(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in other = In4("10.255.255.1");
  EXPECT_TRUE(
      FAILS_WITH(bind(c.get(), reinterpret_cast<sockaddr*>(&other), sizeof(other)), EADDRNOTAVAIL));
}

// What a socket bound to a group sends leaves from the route's address, not the group's
// (inet_saddr stays 0 for such a bind); it keeps its port.
TEST(SockBindGroupTest, ASocketBoundToAGroupSendsFromTheRoutesAddress) {
  Fd r(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in to = In4("127.0.0.1");
  ASSERT_OK(bind(r.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)));
  socklen_t len = sizeof(to);
  ASSERT_OK(getsockname(r.get(), reinterpret_cast<sockaddr*>(&to), &len));
  Fd u(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in group = In4("239.255.10.2");
  ASSERT_OK(bind(u.get(), reinterpret_cast<sockaddr*>(&group), sizeof(group)));
  sockaddr_in mine{};
  len = sizeof(mine);
  ASSERT_OK(getsockname(u.get(), reinterpret_cast<sockaddr*>(&mine), &len));
  ASSERT_EQ(sendto(u.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1);
  char c;
  sockaddr_in from{};
  len = sizeof(from);
  ASSERT_EQ(recvfrom(r.get(), &c, 1, 0, reinterpret_cast<sockaddr*>(&from), &len), 1);
  EXPECT_EQ(ntohl(from.sin_addr.s_addr), INADDR_LOOPBACK);
  EXPECT_EQ(from.sin_port, mine.sin_port);
}

TEST(SockBindGroupTest, AStreamSocketTakesNoIpv6Group) {
  Fd t(socket(AF_INET6, SOCK_STREAM, 0));
  sockaddr_in6 global = In6("ff0e::1:2");
  EXPECT_TRUE(
      FAILS_WITH(bind(t.get(), reinterpret_cast<sockaddr*>(&global), sizeof(global)), EINVAL));
}

TEST(SockBindGroupTest, AnIpv6GroupCanBeBoundALinkScopeOneWithItsInterface) {
  Fd u(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 global = In6("ff0e::1:2");
  ASSERT_OK(bind(u.get(), reinterpret_cast<sockaddr*>(&global), sizeof(global)));
  sockaddr_in6 got{};
  socklen_t len = sizeof(got);
  ASSERT_OK(getsockname(u.get(), reinterpret_cast<sockaddr*>(&got), &len));
  EXPECT_EQ(memcmp(&got.sin6_addr, &global.sin6_addr, 16), 0);
  Fd v(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 link = In6("ff12::1:2");
  EXPECT_TRUE(FAILS_WITH(bind(v.get(), reinterpret_cast<sockaddr*>(&link), sizeof(link)), EINVAL));
  link.sin6_scope_id = 4242;  // no such interface
  EXPECT_TRUE(FAILS_WITH(bind(v.get(), reinterpret_cast<sockaddr*>(&link), sizeof(link)), ENODEV));
  link.sin6_scope_id = 1;  // loopback
  ASSERT_OK(bind(v.get(), reinterpret_cast<sockaddr*>(&link), sizeof(link)));
}

// A unix socket with O_ASYNC and an owner raises SIGIO when data arrives; without O_ASYNC
// nothing comes.
TEST(SockAsyncTest, DataArrivingRaisesSigioForTheOwner) {
  BlockedSignal sigio(SIGIO);
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_OK(fcntl(p.b.get(), F_SETOWN, getpid()));
  ASSERT_TRUE(Send(p.a.get(), "quiet"));
  EXPECT_EQ(sigio.Wait(200).si_signo, 0);
  ASSERT_OK(fcntl(p.b.get(), F_SETFL, fcntl(p.b.get(), F_GETFL) | O_ASYNC));
  ASSERT_TRUE(Send(p.a.get(), "loud"));
  EXPECT_EQ(sigio.Wait(kWaitMs).si_signo, SIGIO);
  ASSERT_OK(fcntl(p.b.get(), F_SETFL, fcntl(p.b.get(), F_GETFL) & ~O_ASYNC));
  char buf[16];
  while (recv(p.b.get(), buf, sizeof(buf), MSG_DONTWAIT) > 0) {
  }
  siginfo_t drop;
  timespec zero{0, 0};
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGIO);
  while (sigtimedwait(&set, &drop, &zero) > 0) {
  }
  ASSERT_TRUE(Send(p.a.get(), "quiet again"));
  EXPECT_EQ(sigio.Wait(200).si_signo, 0);
}

// F_SETSIG picks the signal, and with it the siginfo says why: POLL_IN, the band and the
// descriptor. FIOASYNC turns it on like F_SETFL's O_ASYNC.
TEST(SockAsyncTest, FSetsigSaysPollInAndTheDescriptor) {
  const int sig = SIGRTMIN + 2;
  BlockedSignal rt(sig);
  Conn c = Connected(AF_INET);
  ASSERT_TRUE(c.server.valid());
  ASSERT_OK(fcntl(c.server.get(), F_SETOWN, getpid()));
  ASSERT_OK(fcntl(c.server.get(), F_SETSIG, sig));
  int on = 1;
  ASSERT_OK(ioctl(c.server.get(), FIOASYNC, &on));
  EXPECT_NE(fcntl(c.server.get(), F_GETFL) & O_ASYNC, 0);
  ASSERT_TRUE(Send(c.client.get(), "data"));
  siginfo_t info = rt.Wait(kWaitMs);
  ASSERT_EQ(info.si_signo, sig);
  EXPECT_EQ(info.si_code, POLL_IN);
  EXPECT_EQ(info.si_fd, c.server.get());
  EXPECT_NE(info.si_band & POLLIN, 0);
}

// ---------------------------------------------------------------------------------------
// IPv6 multicast (ipv6(7)): the options, memberships, and what a namespace with loopback
// alone allows. Loopback has no multicast route (nor IFF_MULTICAST): groups can be joined
// on it, but nothing can be sent to one, with or without an interface named.

constexpr unsigned kLoIndex = 1;
constexpr unsigned kNoSuchIndex = 4242;  // checked to name no interface

in6_addr Group6(const char* text) {
  in6_addr a{};
  EXPECT_EQ(inet_pton(AF_INET6, text, &a), 1) << text;
  return a;
}

// IPV6_ADD_MEMBERSHIP or IPV6_DROP_MEMBERSHIP of `group` on interface `ifindex`, with
// optlen `len` (an ipv6_mreq's unless given): 0 or the errno.
int Membership6(int fd, int name, const char* group, unsigned ifindex,
                socklen_t len = sizeof(ipv6_mreq)) {
  struct {
    ipv6_mreq mreq;
    char pad[8];
  } buf{};
  buf.mreq.ipv6mr_multiaddr = Group6(group);
  buf.mreq.ipv6mr_interface = ifindex;
  return setsockopt(fd, IPPROTO_IPV6, name, &buf, len) == 0 ? 0 : errno;
}

// A UDP socket on [::]:port (SO_REUSEADDR, so that several share it) that joined `group`
// on loopback; *port 0 picks one and is set.
Fd GroupMember6(const char* group, int* port) {
  Fd fd = Socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK);
  int one = 1;
  EXPECT_EQ(setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
  if (Bind(fd.get(), Wildcard(AF_INET6, *port)) != 0) {
    ADD_FAILURE() << "bind to port " << *port << ": " << ErrnoName(errno);
    return Fd();
  }
  *port = SockName(fd.get()).port();
  EXPECT_EQ(Membership6(fd.get(), IPV6_ADD_MEMBERSHIP, group, kLoIndex), 0) << group;
  return fd;
}

// IPV6_MULTICAST_HOPS starts at 1 (IPV6_DEFAULT_MCASTHOPS), takes 0 to 255, and -1
// restores it; IPV6_MULTICAST_LOOP starts on and takes 0 or 1 alone; IPV6_MULTICAST_ALL
// starts on and takes any int as a boolean. Each wants a whole int.
TEST(SockMulticast6Test, HopsLoopAndAllStartAtOneAndCheckWhatTheyAreGiven) {
  Fd fd = Socket(AF_INET6, SOCK_DGRAM);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS), 1);
  for (int v : {0, 255, 7}) {
    ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, v));
    EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS), v);
  }
  EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 256), EINVAL);
  EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, -2), EINVAL);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS), 7);
  ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, -1));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS), 1);

  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP), 1);
  ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP), 0);
  EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 2), EINVAL);
  EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP, -1), EINVAL);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP), 0);
  ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP), 1);

  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_ALL), 1);
  ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_ALL), 0);
  ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_ALL, 5));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_ALL), 1);

  const unsigned char byte = 3;
  for (int name : {IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP, IPV6_MULTICAST_IF}) {
    SCOPED_TRACE(name);
    EXPECT_ERRNO(setsockopt(fd.get(), IPPROTO_IPV6, name, &byte, 1), EINVAL);
  }
}

// IPV6_MULTICAST_IF is an interface index: loopback's is taken, 0 goes back to none, and
// one no interface has is ENODEV (and left as it was).
TEST(SockMulticast6Test, MulticastIfTakesTheIndexOfAnInterface) {
  char name[IF_NAMESIZE];
  ASSERT_EQ(if_indextoname(kNoSuchIndex, name), nullptr);
  Fd fd = Socket(AF_INET6, SOCK_DGRAM);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF), 0);
  ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, kLoIndex));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF), 1);
  EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, kNoSuchIndex), ENODEV);
  EXPECT_EQ(SetErrno(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, -1), ENODEV);
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF), 1);
  ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, 0));
  EXPECT_EQ(GetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF), 0);
}

// TCP has no groups: a membership is EPROTO (after the length's EINVAL), and the sending
// options IPV6_MULTICAST_HOPS and IPV6_MULTICAST_IF are not TCP's to set (ENOPROTOOPT),
// though they read back their defaults; IPV6_MULTICAST_LOOP is taken. An IPv4 socket has
// no IPv6 options at all.
TEST(SockMulticast6Test, TcpAndIpv4SocketsRefuseTheGroupOptions) {
  Fd tcp = Socket(AF_INET6, SOCK_STREAM);
  EXPECT_EQ(Membership6(tcp.get(), IPV6_ADD_MEMBERSHIP, "ff12::1234", kLoIndex), EPROTO);
  EXPECT_EQ(Membership6(tcp.get(), IPV6_DROP_MEMBERSHIP, "ff12::1234", kLoIndex), EPROTO);
  EXPECT_EQ(Membership6(tcp.get(), IPV6_ADD_MEMBERSHIP, "ff12::1234", kLoIndex, 4), EINVAL);
  EXPECT_EQ(SetErrno(tcp.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 3), ENOPROTOOPT);
  EXPECT_EQ(GetInt(tcp.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS), 1);
  EXPECT_EQ(SetErrno(tcp.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, kLoIndex), ENOPROTOOPT);
  EXPECT_EQ(GetInt(tcp.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF), 0);
  ASSERT_OK(SetInt(tcp.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0));
  EXPECT_EQ(GetInt(tcp.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP), 0);

  Fd udp4 = Socket(AF_INET, SOCK_DGRAM);
  EXPECT_EQ(Membership6(udp4.get(), IPV6_ADD_MEMBERSHIP, "ff12::1234", kLoIndex), ENOPROTOOPT);
  EXPECT_EQ(SetErrno(udp4.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 3), ENOPROTOOPT);
}

// ipv6_sock_mc_join and ipv6_sock_mc_drop: the group must be multicast (EINVAL, first of
// all), the interface must exist (ENODEV; index 0 means the group's route, which loopback
// alone does not have), a group is joined once per interface (EADDRINUSE; joining on index
// 0 meets a membership on any), and leaving one not joined is EADDRNOTAVAIL (index 0
// leaves it on whichever interface). IPV6_JOIN_GROUP and IPV6_LEAVE_GROUP are the same
// options.
TEST(SockMulticast6Test, JoiningAndLeavingCheckTheGroupAndTheInterface) {
  static_assert(IPV6_JOIN_GROUP == IPV6_ADD_MEMBERSHIP);
  static_assert(IPV6_LEAVE_GROUP == IPV6_DROP_MEMBERSHIP);
  char name[IF_NAMESIZE];
  ASSERT_EQ(if_indextoname(kNoSuchIndex, name), nullptr);
  Fd fd = Socket(AF_INET6, SOCK_DGRAM);
  const int join = IPV6_ADD_MEMBERSHIP, drop = IPV6_DROP_MEMBERSHIP;
  EXPECT_EQ(Membership6(fd.get(), join, "ff02::1:3", kLoIndex), 0);
  EXPECT_EQ(Membership6(fd.get(), join, "ff02::1:3", kLoIndex), EADDRINUSE);
  EXPECT_EQ(Membership6(fd.get(), join, "ff02::1:3", 0), EADDRINUSE);
  EXPECT_EQ(Membership6(fd.get(), join, "ff12::1234", kLoIndex), 0);
  EXPECT_EQ(Membership6(fd.get(), join, "ff01::5", kLoIndex), 0);
  EXPECT_EQ(Membership6(fd.get(), join, "ff1e::7", kLoIndex, sizeof(ipv6_mreq) + 4), 0);

  for (const char* unicast : {"fe80::1", "::1", "::", "::ffff:239.1.2.3"}) {
    EXPECT_EQ(Membership6(fd.get(), join, unicast, kLoIndex), EINVAL) << unicast;
    EXPECT_EQ(Membership6(fd.get(), drop, unicast, kLoIndex), EINVAL) << unicast;
  }
  EXPECT_EQ(Membership6(fd.get(), join, "fe80::1", kNoSuchIndex), EINVAL);
  EXPECT_EQ(Membership6(fd.get(), join, "ff12::99", kLoIndex, sizeof(ipv6_mreq) - 4), EINVAL);
  EXPECT_EQ(Membership6(fd.get(), drop, "ff12::1234", kLoIndex, sizeof(ipv6_mreq) - 4), EINVAL);
  EXPECT_EQ(Membership6(fd.get(), join, "ff12::99", kNoSuchIndex), ENODEV);
  EXPECT_EQ(Membership6(fd.get(), join, "ff02::1:3", kNoSuchIndex), ENODEV);
  EXPECT_EQ(Membership6(fd.get(), join, "ff12::99", 0), ENODEV);

  EXPECT_EQ(Membership6(fd.get(), drop, "ff12::99", kLoIndex), EADDRNOTAVAIL);
  EXPECT_EQ(Membership6(fd.get(), drop, "ff12::1234", kNoSuchIndex), EADDRNOTAVAIL);
  EXPECT_EQ(Membership6(fd.get(), drop, "ff12::1234", 0), 0);
  EXPECT_EQ(Membership6(fd.get(), drop, "ff12::1234", kLoIndex), EADDRNOTAVAIL);
  EXPECT_EQ(Membership6(fd.get(), join, "ff12::1234", kLoIndex), 0);
  EXPECT_EQ(Membership6(fd.get(), drop, "ff12::1234", kLoIndex), 0);
  EXPECT_EQ(Membership6(fd.get(), drop, "ff02::1:3", kLoIndex), 0);
  EXPECT_EQ(Membership6(fd.get(), drop, "ff02::1:3", 0), EADDRNOTAVAIL);
}

// A socket holds many memberships at once (Linux's limit is what net.core.optmem_max
// allows, thousands), and drops each.
TEST(SockMulticast6Test, ManyGroupsAreJoinedAndLeft) {
  Fd fd = Socket(AF_INET6, SOCK_DGRAM);
  for (int i = 1; i <= 300; i++) {
    const std::string g = "ff12::10:" + std::to_string(i);
    ASSERT_EQ(Membership6(fd.get(), IPV6_ADD_MEMBERSHIP, g.c_str(), kLoIndex), 0) << g;
  }
  for (int i = 1; i <= 300; i++) {
    const std::string g = "ff12::10:" + std::to_string(i);
    ASSERT_EQ(Membership6(fd.get(), IPV6_DROP_MEMBERSHIP, g.c_str(), 0), 0) << g;
  }
}

// With loopback alone there is no route to a group: sendto is ENETUNREACH whether the
// interface is left to the route, named by IPV6_MULTICAST_IF or by the scope id, and the
// members joined on loopback hear nothing. The sender was bound (autobind comes first).
TEST(SockMulticast6Test, SendingToAGroupOverLoopbackAloneIsUnreachable) {
  int port = 0;
  Fd member = GroupMember6("ff12::1234", &port);
  ASSERT_TRUE(member.valid());
  ASSERT_EQ(Membership6(member.get(), IPV6_ADD_MEMBERSHIP, "ff02::1:3", kLoIndex), 0);
  Fd sender = Socket(AF_INET6, SOCK_DGRAM);
  for (const char* group : {"ff12::1234", "ff02::1:3"}) {
    SCOPED_TRACE(group);
    Addr to = MakeAddr(AF_INET6, group, port);
    EXPECT_ERRNO(sendto(sender.get(), "g", 1, 0, to.get(), to.len), ENETUNREACH);
    to.v6().sin6_scope_id = kLoIndex;
    EXPECT_ERRNO(sendto(sender.get(), "g", 1, 0, to.get(), to.len), ENETUNREACH);
  }
  EXPECT_NE(SockName(sender.get()).port(), 0);
  ASSERT_OK(SetInt(sender.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, kLoIndex));
  const Addr to = MakeAddr(AF_INET6, "ff12::1234", port);
  EXPECT_ERRNO(sendto(sender.get(), "g", 1, 0, to.get(), to.len), ENETUNREACH);
  // The member itself, sending to its own group, hears nothing either.
  EXPECT_ERRNO(sendto(member.get(), "g", 1, 0, to.get(), to.len), ENETUNREACH);
  EXPECT_EQ(Revents(member.get(), POLLIN, 100), 0);
}

// connect(2) of a UDP socket to a group of link scope wants an interface (the scope id or
// IPV6_MULTICAST_IF; EINVAL without), then a route to the group, which loopback alone does
// not have (ENETUNREACH); the socket stays unconnected.
TEST(SockMulticast6Test, ConnectingToALinkScopeGroupWantsAnInterface) {
  Fd fd = Socket(AF_INET6, SOCK_DGRAM);
  Addr link = MakeAddr(AF_INET6, "ff12::1234", 9);
  EXPECT_ERRNO(Connect(fd.get(), link), EINVAL);
  EXPECT_ERRNO(GetPeerName(fd.get()), ENOTCONN);
  const Addr global = MakeAddr(AF_INET6, "ff1e::5", 9);
  EXPECT_ERRNO(Connect(fd.get(), global), ENETUNREACH);
  link.v6().sin6_scope_id = kLoIndex;
  EXPECT_ERRNO(Connect(fd.get(), link), ENETUNREACH);
  ASSERT_OK(SetInt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, kLoIndex));
  link.v6().sin6_scope_id = 0;
  EXPECT_ERRNO(Connect(fd.get(), link), ENETUNREACH);
  EXPECT_ERRNO(GetPeerName(fd.get()), ENOTCONN);
}

// sigio_perm: an owner set by another user (one who may not signal the owner) gets no
// signal; set by the owner's own user, it does.
TEST(SockAsyncTest, AnOwnerSetByAUserWhoMayNotSignalItGetsNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  BlockedSignal sigio(SIGIO);
  Pair p = MakePair(SOCK_STREAM);
  const pid_t me = getpid();
  ASSERT_TRUE(ChildSucceeds([&] {
    REQUIRE(setresgid(1000, 1000, 1000) == 0 && setresuid(1000, 1000, 1000) == 0);
    REQUIRE(fcntl(p.b.get(), F_SETOWN, me) == 0);
    REQUIRE(fcntl(p.b.get(), F_SETFL, fcntl(p.b.get(), F_GETFL) | O_ASYNC) == 0);
    return 0;
  }));
  ASSERT_TRUE(Send(p.a.get(), "unsent"));
  EXPECT_EQ(sigio.Wait(300).si_signo, 0);
  ASSERT_OK(fcntl(p.b.get(), F_SETOWN, me));
  ASSERT_TRUE(Send(p.a.get(), "sent"));
  EXPECT_EQ(sigio.Wait(kWaitMs).si_signo, SIGIO);
}

// ---------------------------------------------------------------------------------------
// IPv4 multicast over loopback alone.

// Joins 239.1.2.3 on the interface at ifaddr; the errno, or 0.
int Join4(int fd, const char* ifaddr) {
  ip_mreq m{};
  inet_pton(AF_INET, "239.1.2.3", &m.imr_multiaddr);
  inet_pton(AF_INET, ifaddr, &m.imr_interface);
  return setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) == 0 ? 0 : errno;
}

// With loopback alone, a group has no route: joining without naming an interface is ENODEV,
// and sending without IP_MULTICAST_IF is ENETUNREACH. Named, loopback carries the group:
// the datagram comes back in to the members on the port, whatever IP_MULTICAST_LOOP says,
// and (IP_MULTICAST_ALL, on by default) to the port's other sockets while the group is
// joined; a socket with IP_MULTICAST_ALL off hears only groups it joined.
TEST(SockMulticast4Test, LoopbackCarriesAGroupOnceNamedAsTheInterface) {
  Addr ma;
  Fd member = UdpSocket(Wildcard(AF_INET), &ma);
  const int port = ma.port();
  Fd other = Socket(AF_INET, SOCK_DGRAM), deaf = Socket(AF_INET, SOCK_DGRAM);
  for (int fd : {member.get(), other.get(), deaf.get()}) {
    ASSERT_OK(SetInt(fd, SOL_SOCKET, SO_REUSEADDR, 1));
  }
  ASSERT_OK(Bind(other.get(), Wildcard(AF_INET, port)));
  ASSERT_OK(Bind(deaf.get(), Wildcard(AF_INET, port)));
  ASSERT_OK(SetInt(deaf.get(), IPPROTO_IP, IP_MULTICAST_ALL, 0));
  EXPECT_EQ(Join4(other.get(), "0.0.0.0"), ENODEV);
  // An interface named that does not exist (ip_mc_find_dev): ENODEV.
  EXPECT_EQ(Join4(other.get(), "10.255.255.1"), ENODEV);
  ip_mreqn bad{};
  inet_pton(AF_INET, "239.1.2.3", &bad.imr_multiaddr);
  bad.imr_ifindex = 4242;
  EXPECT_EQ(
      setsockopt(other.get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &bad, sizeof(bad)) == 0 ? 0 : errno,
      ENODEV);
  EXPECT_EQ(Join4(member.get(), "127.0.0.1"), 0);
  Fd tx = Socket(AF_INET, SOCK_DGRAM);
  const Addr group = MakeAddr(AF_INET, "239.1.2.3", port);
  EXPECT_ERRNO(SendTo(tx.get(), "nowhere", group), ENETUNREACH);
  in_addr lo{htonl(INADDR_LOOPBACK)};
  ASSERT_OK(setsockopt(tx.get(), IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof(lo)));
  for (int loop : {1, 0}) {
    SCOPED_TRACE(loop);
    ASSERT_OK(SetInt(tx.get(), IPPROTO_IP, IP_MULTICAST_LOOP, loop));
    const std::string text = "group " + std::to_string(loop);
    ASSERT_EQ(SendTo(tx.get(), text, group), static_cast<long>(text.size())) << ErrnoName(errno);
    ASSERT_EQ(Revents(member.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(RecvMsg(member.get()).data, text);
    ASSERT_EQ(Revents(other.get(), POLLIN, kWaitMs), POLLIN);
    EXPECT_EQ(RecvMsg(other.get()).data, text);
    EXPECT_EQ(Revents(deaf.get(), POLLIN, 100), 0);
  }
}

}  // namespace
}  // namespace husk_test
