#include "sentry/net/host_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "sentry/net/host_poller.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::net {
namespace {

std::atomic<bool> g_enabled{false};
class HostSocket;
// Every host socket, for /proc/net/tcp and udp.
absl::Mutex g_all_mu;
std::set<HostSocket*>& All() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_all_mu) {
  static auto* all = new std::set<HostSocket*>;
  return *all;
}
// Host sockets open at once: each is a descriptor of the sentry's own, so
// a sandbox opening sockets without end must meet ENFILE before the
// sentry runs out of descriptors for its own work.
std::atomic<int> g_open{0};
int g_max_open = 1024;

constexpr size_t kMaxOption = 1024;                  // the largest option value copied either way
constexpr size_t kControlRoom = 512;                 // control data a receive takes from the host
constexpr size_t kMaxDatagram = 65536;               // UDP's and ICMP's largest payload, and more
constexpr size_t kMinStreamChunk = 65536;            // a stream receive's step, at least
constexpr size_t kMaxStreamChunk = size_t{4} << 20;  // and at most

// The options that reach the host: each value is plain bytes (an int, a
// struct of ints and addresses), never a pointer into the caller's memory
// (SO_ATTACH_FILTER's is: refused), and none needs a privilege the sandbox
// does not have on the host (the host checks those anyway).
bool OptionAllowed(int level, int name, bool set) {
  switch (level) {
    case SOL_SOCKET:
      switch (name) {
        case SO_REUSEADDR:
        case SO_REUSEPORT:
        case SO_DONTROUTE:
        case SO_KEEPALIVE:
        case SO_BROADCAST:
        case SO_OOBINLINE:
        case SO_RCVBUF:
        case SO_SNDBUF:
        case SO_RCVLOWAT:
        case SO_TIMESTAMP:
        case SO_TIMESTAMPNS:
        case SO_RXQ_OVFL:
        case SO_PRIORITY:
        case SO_PEEK_OFF:
        case SO_BINDTODEVICE:
        case SO_INCOMING_CPU:
        case SO_PASSCRED:
          return true;
        case SO_TYPE:
        case SO_DOMAIN:
        case SO_PROTOCOL:
        case SO_ERROR:
        case SO_ACCEPTCONN:
        case SO_SNDLOWAT:
        case SO_PEERCRED:
          return !set;
        default:
          return false;
      }
    case IPPROTO_IP:
      switch (name) {
        case IP_TOS:
        case IP_TTL:
        case IP_OPTIONS:
        case IP_RECVTOS:
        case IP_RECVTTL:
        case IP_PKTINFO:
        case IP_MTU_DISCOVER:
        case IP_MULTICAST_TTL:
        case IP_MULTICAST_LOOP:
        case IP_MULTICAST_IF:
        case IP_MULTICAST_ALL:
        case IP_ADD_MEMBERSHIP:
        case IP_DROP_MEMBERSHIP:
        case IP_ADD_SOURCE_MEMBERSHIP:
        case IP_DROP_SOURCE_MEMBERSHIP:
        case IP_BLOCK_SOURCE:
        case IP_UNBLOCK_SOURCE:
        case IP_FREEBIND:
        case IP_BIND_ADDRESS_NO_PORT:
        case IP_RECVORIGDSTADDR:
          return true;
        case IP_MTU:
          return !set;
        default:
          return false;
      }
    case IPPROTO_IPV6:
      switch (name) {
        case IPV6_V6ONLY:
        case IPV6_UNICAST_HOPS:
        case IPV6_MULTICAST_HOPS:
        case IPV6_MULTICAST_LOOP:
        case IPV6_MULTICAST_IF:
        case IPV6_MULTICAST_ALL:
        case IPV6_ADD_MEMBERSHIP:
        case IPV6_DROP_MEMBERSHIP:
        case IPV6_TCLASS:
        case IPV6_RECVTCLASS:
        case IPV6_RECVPKTINFO:
        case IPV6_RECVHOPLIMIT:
        case IPV6_MTU_DISCOVER:
        case IPV6_FREEBIND:
        case IPV6_RECVORIGDSTADDR:
          return true;
        case IPV6_MTU:
          return !set;
        default:
          return false;
      }
    case IPPROTO_TCP:
      switch (name) {
        case TCP_NODELAY:
        case TCP_MAXSEG:
        case TCP_CORK:
        case TCP_KEEPIDLE:
        case TCP_KEEPINTVL:
        case TCP_KEEPCNT:
        case TCP_SYNCNT:
        case TCP_LINGER2:
        case TCP_DEFER_ACCEPT:
        case TCP_WINDOW_CLAMP:
        case TCP_QUICKACK:
        case TCP_CONGESTION:
        case TCP_USER_TIMEOUT:
        case TCP_NOTSENT_LOWAT:
        case TCP_FASTOPEN:
          return true;
        case TCP_INFO:
          return !set;
        default:
          return false;
      }
    case IPPROTO_UDP:
      return name == UDP_CORK || name == UDP_SEGMENT || name == UDP_GRO;
    default:
      return false;
  }
}

// The control messages a send may carry to the host, and those a receive
// hands back (a descriptor the host passed is closed, never kept).
bool ControlAllowed(int level, int type) {
  if (level == IPPROTO_IP) {
    return type == IP_PKTINFO || type == IP_TOS || type == IP_TTL || type == IP_ORIGDSTADDR;
  }
  if (level == IPPROTO_IPV6) {
    return type == IPV6_PKTINFO || type == IPV6_HOPLIMIT || type == IPV6_TCLASS ||
           type == IPV6_ORIGDSTADDR;
  }
  if (level == SOL_SOCKET) {
    return type == SO_TIMESTAMP || type == SO_TIMESTAMPNS || type == SO_RXQ_OVFL;
  }
  return level == IPPROTO_UDP && type == UDP_GRO;
}

class HostSocket : public Socket {
 public:
  HostSocket(vfs::InodeRef inode, UniqueFd fd, int flags, int domain, int type,
             WaitQueue* notify = nullptr)
      : Socket(std::move(inode), O_RDWR | (flags & O_NONBLOCK)),
        fd_(std::move(fd)),
        queue_(notify != nullptr ? notify : &own_queue_),
        domain_(domain),
        type_(type) {
    absl::MutexLock l(&g_all_mu);
    All().insert(this);
  }
  ~HostSocket() override {
    {
      absl::MutexLock l(&g_all_mu);
      All().erase(this);
    }
    if (watched_) UnwatchHostFd(fd_.get());
    g_open.fetch_sub(1);
  }
  // The host poller notifies queue_ of the descriptor's changes; a TCP
  // socket's owner hears SIGURG when the host's TCP reports urgent data
  // (POLLPRI coming up: the host sent its SIGURG to the sentry's owner,
  // which is nobody). `self`: this socket, for the signal's sender.
  Status Watch(std::weak_ptr<vfs::File> self = {}) {
    std::function<void(uint32_t)> also;
    if (domain_ != AF_UNIX && type_ == SOCK_STREAM && !self.expired()) {
      also = [this, self = std::move(self)](uint32_t e) {
        const bool pri = (e & POLLPRI) != 0;
        if (pri && !urgent_up_.exchange(true)) PostUrgent(self, this);
        if (!pri) urgent_up_ = false;
      };
    }
    TRY(WatchHostFd(fd_.get(), queue_, std::move(also)));
    watched_ = true;
    return Ok();
  }
  WaitQueue* EventQueue() override { return queue_; }
  // A unix socket's names, as the sandbox sees them (the host's would name
  // host paths).
  void SetUnixNames(std::string local, std::string peer) {
    local_name_ = std::move(local);
    peer_name_ = std::move(peer);
  }

  int Domain() const override { return domain_; }
  int SockType() const override { return type_; }
  // The host says EMSGSIZE for a datagram too big for it.
  size_t MaxMessage() const override { return type_ == SOCK_STREAM ? 0 : (1 << 20); }

  Status Bind(Task&, std::string_view addr) override {
    // A unix socket here is connected already (from the gofer, or
    // accepted), and the sentry names no host path (no bind(2) outside
    // --network=host: its filter would end the sandbox).
    if (domain_ == AF_UNIX) return Errno{EINVAL};
    return Call(bind(fd_.get(), Addr(addr), static_cast<socklen_t>(addr.size())));
  }

  Status Listen(Task&, int backlog) override {
    // A negative backlog is somaxconn's (4096).
    return Call(listen(fd_.get(), backlog < 0 ? 4096 : std::min(backlog, 4096)));
  }

  Result<vfs::FileRef> Accept(Task& t, int flags, std::string* peer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override {
    const absl::Time deadline = SocketDeadline(rcvtimeo_);
    for (;;) {
      // Out of descriptors: the connection stays queued on the host.
      if (g_open.load() >= g_max_open) return Errno{ENFILE};
      sockaddr_storage ss{};
      socklen_t len = sizeof(ss);
      int fd =
          accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        UniqueFd owned(fd);
        peer->assign(reinterpret_cast<const char*>(&ss), std::min<size_t>(len, sizeof(ss)));
        ASSIGN_OR_RETURN(vfs::FileRef f,
                         WrapHostSocket(t, std::move(owned), domain_, type_, flags));
        // sock_copy: the new socket has the listener's timeouts and linger.
        auto& s = static_cast<HostSocket&>(*f);
        s.rcvtimeo_ = rcvtimeo_;
        s.sndtimeo_ = sndtimeo_;
        s.linger_ = linger_;
        return f;
      }
      const int e = errno;
      if (e == EINTR) continue;
      if (e != EAGAIN || (this->flags() & O_NONBLOCK)) return Errno{e};
      if (int w = Wait(t, POLLIN, deadline); w != 0) return Errno{w};
    }
  }

  Status Connect(Task& t, std::string_view addr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override {
    if (domain_ == AF_UNIX) return Errno{EISCONN};  // as Bind: connected, no host path
    const absl::Time deadline = SocketDeadline(sndtimeo_);
    for (;;) {
      if (connect(fd_.get(), Addr(addr), static_cast<socklen_t>(addr.size())) == 0) return Ok();
      const int e = errno;
      if (e == EINTR) continue;
      // __inet_stream_connect: a blocking connect waits for the handshake,
      // then connects again, as a restarted one does: the host then
      // settles the socket (connected, or its error and unconnected).
      if ((e != EINPROGRESS && e != EALREADY) || (flags() & O_NONBLOCK)) return Errno{e};
      if (int w = Wait(t, POLLOUT, deadline); w != 0) {
        return Errno{w == EAGAIN ? EINPROGRESS : w};
      }
    }
  }

  Result<size_t> Send(Task& t, SendRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override {
    // Descriptors and credentials mean nothing to an inet peer: dropped,
    // as inet sockets drop SCM_RIGHTS. A host process cannot be given the
    // sandbox's files: refused.
    if (domain_ == AF_UNIX && !req.fds.empty()) return Errno{EOPNOTSUPP};
    std::string control;
    for (const ControlMessage& c : req.control) {
      if (!ControlAllowed(c.level, c.type)) continue;
      const size_t at = control.size();
      control.resize(at + CMSG_SPACE(c.data.size()));
      cmsghdr h{};
      h.cmsg_len = CMSG_LEN(c.data.size());
      h.cmsg_level = c.level;
      h.cmsg_type = c.type;
      memcpy(control.data() + at, &h, sizeof(h));
      std::copy(c.data.begin(), c.data.end(),
                control.begin() + static_cast<long>(at + CMSG_LEN(0)));
    }
    const int pass =
        req.flags & (MSG_OOB | MSG_DONTROUTE | MSG_EOR | MSG_MORE | MSG_CONFIRM | MSG_FASTOPEN);
    const absl::Time deadline = SocketDeadline(sndtimeo_);
    size_t done = 0;
    for (;;) {
      iovec iov{const_cast<char*>(req.data.data()) + done, req.data.size() - done};
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      if (!req.to.empty()) {
        m.msg_name = const_cast<char*>(req.to.data());
        m.msg_namelen = static_cast<socklen_t>(req.to.size());
      }
      if (!control.empty()) {
        m.msg_control = control.data();
        m.msg_controllen = control.size();
      }
      ssize_t n = sendmsg(fd_.get(), &m, pass | MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) {
        done += static_cast<size_t>(n);
        // A stream's blocking send takes everything (tcp_sendmsg waits for
        // room); a datagram goes whole or not at all.
        if (type_ != SOCK_STREAM || done == req.data.size() || Nonblocking(req.flags)) break;
        continue;
      }
      int e = errno;
      if (e == EINTR) continue;
      // A fast-open send started a handshake: a blocking one waits for it,
      // as tcp_sendmsg does.
      if (e == EINPROGRESS && !Nonblocking(req.flags)) e = EAGAIN;
      if (e != EAGAIN || Nonblocking(req.flags)) {
        if (done > 0) break;
        return Errno{e};
      }
      if (int w = Wait(t, POLLOUT, deadline); w != 0) {
        if (done > 0) break;
        return Errno{w};
      }
    }
    return done;
  }

  Result<Received> Receive(Task& t, size_t n, int flags)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override {
    Received r;
    const bool peek = (flags & MSG_PEEK) != 0;
    const bool waitall = (flags & MSG_WAITALL) && !peek && type_ == SOCK_STREAM;
    const int pass = flags & (MSG_PEEK | MSG_TRUNC | MSG_OOB);
    // tcp_recv_urg never waits: no urgent byte yet is EAGAIN.
    const bool nonblocking = Nonblocking(flags) || (flags & MSG_OOB);
    const absl::Time deadline = SocketDeadline(rcvtimeo_);
    // What the host has, not what was asked for, is allocated: a large
    // request waiting for data holds no memory meanwhile.
    std::string buf;
    size_t got = 0;
    for (;;) {
      buf.resize(got + std::min(n - got, ChunkFor(flags)));
      iovec iov{buf.data() + got, buf.size() - got};
      sockaddr_storage from{};
      alignas(cmsghdr) char control[kControlRoom];
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_name = &from;
      m.msg_namelen = sizeof(from);
      m.msg_control = control;
      m.msg_controllen = sizeof(control);
      ssize_t k = recvmsg(fd_.get(), &m, pass | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (k >= 0) {
        // Urgent data read (with MSG_OOB, inline, or read past): the next
        // POLLPRI is new urgent data.
        if (urgent_up_.load() && !(flags & MSG_PEEK)) {
          pollfd p{fd_.get(), POLLPRI, 0};
          if (poll(&p, 1, 0) == 0 || !(p.revents & POLLPRI)) urgent_up_ = false;
        }
        TakeControl(m, &r);
        if (type_ != SOCK_STREAM) {
          // A datagram: its length (with MSG_TRUNC, the whole of it), and
          // its sender.
          r.length = static_cast<size_t>(k);
          buf.resize(std::min(n, static_cast<size_t>(k)));
          r.data = std::move(buf);
          // A unix peer's name is the sandbox's (the host's is a host path).
          if (domain_ == AF_UNIX) {
            if (m.msg_namelen > sizeof(sa_family_t)) r.from = peer_name_;
          } else {
            r.from.assign(reinterpret_cast<const char*>(&from),
                          std::min<size_t>(m.msg_namelen, sizeof(from)));
          }
          r.msg_flags = m.msg_flags & (MSG_TRUNC | MSG_CTRUNC | MSG_EOR);
          return r;
        }
        got += static_cast<size_t>(k);
        buf.resize(got);
        // Without MSG_WAITALL a stream gives what one host receive gave
        // (which stops at the urgent mark, as Linux's does).
        if (k == 0 || got == n || !waitall) break;
        // MSG_WAITALL stops at the urgent mark too, once it has read
        // something (tcp_recvmsg): the host's receive stopped there.
        if (int at = 0; ioctl(fd_.get(), SIOCATMARK, &at) == 0 && at != 0) break;
        continue;
      }
      const int e = errno;
      buf.resize(got);
      if (e == EINTR) continue;
      if (got > 0 && (!waitall || e != EAGAIN || nonblocking)) break;
      if (e != EAGAIN || nonblocking) return Errno{e};
      // A datagram socket shut for reading: the host's non-blocking
      // receive says EAGAIN, a blocking one returns 0 (as here).
      if (type_ != SOCK_STREAM && (Readiness(POLLRDHUP) & POLLRDHUP)) return r;
      if (int w = Wait(t, POLLIN, deadline); w != 0) {
        if (got > 0) break;
        return Errno{w};
      }
    }
    buf.shrink_to_fit();
    r.length = got;
    buf.resize(got);
    // MSG_TRUNC on a stream: the bytes are taken, not copied.
    if (!(flags & MSG_TRUNC)) r.data = std::move(buf);
    return r;
  }

  // A line of /proc/net/tcp (or udp, tcp6, udp6) for this socket, as the
  // host's kernel sees it, numbered sl, with the sandbox's inode.
  std::string ProcLine(int sl) {
    auto hex = [this](const std::string& a) {
      std::string out;
      uint16_t port = 0;
      if (domain_ == AF_INET) {
        sockaddr_in in{};
        memcpy(&in, a.data(), std::min(a.size(), sizeof(in)));
        out = absl::StrFormat("%08X", in.sin_addr.s_addr);
        port = ntohs(in.sin_port);
      } else {
        sockaddr_in6 in{};
        memcpy(&in, a.data(), std::min(a.size(), sizeof(in)));
        for (int i = 0; i < 4; i++) {
          uint32_t w;
          memcpy(&w, reinterpret_cast<const char*>(&in.sin6_addr) + 4 * i, 4);
          absl::StrAppendFormat(&out, "%08X", w);
        }
        port = ntohs(in.sin6_port);
      }
      return absl::StrFormat("%s:%04X", out, port);
    };
    Result<std::string> local = Name(false), remote = Name(true);
    const std::string none(domain_ == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6), '\0');
    int state = remote.ok() ? 1 : 7;  // TCP_ESTABLISHED, TCP_CLOSE: a UDP socket's
    int tx = 0, rx = 0;
    if (type_ == SOCK_STREAM) {
      tcp_info ti{};
      socklen_t len = sizeof(ti);
      if (getsockopt(fd_.get(), IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) state = ti.tcpi_state;
      if (state == TCP_LISTEN) rx = static_cast<int>(ti.tcpi_unacked);  // the accept queue
    }
    if (state != TCP_LISTEN) {
      (void)ioctl(fd_.get(), SIOCOUTQ, &tx);
      (void)ioctl(fd_.get(), SIOCINQ, &rx);
    }
    const uint64_t ino = static_cast<SocketInode&>(*inode()).ino();
    return absl::StrFormat(
        "%4d: %s %s %02X %08X:%08X 00:00000000 00000000 %5u        0 %u 1 0000000000000000 100 0 "
        "0 10 0\n",
        sl, hex(local.ok() ? *local : none), hex(remote.ok() ? *remote : none), state, tx, rx, 0,
        ino);
  }

  Status Shutdown(Task&, int how) override { return Call(shutdown(fd_.get(), how)); }

  Result<std::string> SockName() override {
    if (domain_ == AF_UNIX) return local_name_;
    return Name(false);
  }
  Result<std::string> PeerName() override {
    if (domain_ == AF_UNIX) {
      if (getpeername(fd_.get(), nullptr, nullptr) != 0 && errno == ENOTCONN) {
        return Errno{ENOTCONN};
      }
      return peer_name_;
    }
    return Name(true);
  }

  Result<std::string> GetOption(Task&, int level, int name, size_t len) override {
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
      const timeval tv = name == SO_RCVTIMEO ? rcvtimeo_ : sndtimeo_;
      return std::string(reinterpret_cast<const char*>(&tv), std::min(len, sizeof(tv)));
    }
    if (level == SOL_SOCKET && name == SO_LINGER) {
      return std::string(reinterpret_cast<const char*>(&linger_), std::min(len, sizeof(linger_)));
    }
    if (domain_ == AF_UNIX) {
      if (level != SOL_SOCKET) return Errno{EOPNOTSUPP};
      if (name == SO_PEERCRED) {
        // A host process: no pid in the sandbox, and ids it does not map
        // (the overflow ids).
        ucred c{0, 65534, 65534};
        return std::string(reinterpret_cast<const char*>(&c), std::min(len, sizeof(c)));
      }
    }
    if (!OptionAllowed(level, name, false)) return Errno{UnknownOption(level)};
    std::string v(std::min(len, kMaxOption), '\0');
    socklen_t n = static_cast<socklen_t>(v.size());
    if (getsockopt(fd_.get(), level, name, v.data(), &n) != 0) return Errno{errno};
    v.resize(std::min<size_t>(n, v.size()));
    return v;
  }

  Status SetOption(Task&, int level, int name, std::string_view value) override {
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
      // Kept here, for the sentry's own waits.
      ASSIGN_OR_RETURN(const timeval tv, ParseSocketTimeout(value));
      (name == SO_RCVTIMEO ? rcvtimeo_ : sndtimeo_) = tv;
      return Ok();
    }
    if (level == SOL_SOCKET && name == SO_LINGER) {
      // A lingering close would hold the sentry's thread in close(2): the
      // host gets the abortive form (linger 0, a reset) alone, and a
      // graceful linger closes in the background, its data still sent.
      if (value.size() < sizeof(linger)) return Errno{EINVAL};
      linger l;
      memcpy(&l, value.data(), sizeof(l));
      linger host{l.l_onoff != 0 && l.l_linger == 0 ? 1 : 0, 0};
      TRY(Call(setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &host, sizeof(host))));
      linger_ = {l.l_onoff != 0 ? 1 : 0, l.l_linger};
      return Ok();
    }
    if (domain_ == AF_UNIX && level != SOL_SOCKET) return Errno{EOPNOTSUPP};
    if (!OptionAllowed(level, name, true)) return Errno{ENOPROTOOPT};
    if (value.size() > kMaxOption) return Errno{EINVAL};
    return Call(
        setsockopt(fd_.get(), level, name, value.data(), static_cast<socklen_t>(value.size())));
  }

  uint32_t Readiness(uint32_t mask) override {
    pollfd p{fd_.get(), static_cast<short>(mask & 0xffff), 0};
    int n;
    do {
      n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return 0;
    return static_cast<uint16_t>(p.revents) & (mask | POLLERR | POLLHUP | POLLRDHUP);
  }

  Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) override {
    switch (cmd) {
      case SIOCINQ:
      case SIOCOUTQ:
      case SIOCOUTQNSD:
      case SIOCATMARK: {
        int v = 0;
        if (ioctl(fd_.get(), cmd, &v) != 0) return Errno{errno};
        TRY(mm.CopyOut(arg, &v, sizeof(v)));
        return 0L;
      }
      default:
        return InterfaceIoctl(mm, cmd, arg);
    }
  }

 private:
  static const sockaddr* Addr(std::string_view a) {
    return a.empty() ? nullptr : reinterpret_cast<const sockaddr*>(a.data());
  }
  static Status Call(int r) {
    if (r != 0) return Errno{errno};
    return Ok();
  }
  // What getsockopt says of an option it does not know: ENOPROTOOPT, but
  // EOPNOTSUPP for a level an IPv4 socket has not (ip_getsockopt; its
  // setsockopt says ENOPROTOOPT).
  int UnknownOption(int level) const {
    const bool known = level == SOL_SOCKET || level == IPPROTO_IP || level == IPPROTO_IPV6 ||
                       level == IPPROTO_TCP || level == IPPROTO_UDP;
    return !known && domain_ == AF_INET ? EOPNOTSUPP : ENOPROTOOPT;
  }
  bool Nonblocking(int msg_flags) const {
    return (flags() & O_NONBLOCK) || (msg_flags & MSG_DONTWAIT);
  }
  // How much one receive takes at most: for a stream, what the host has
  // queued (SIOCINQ), or 64 KiB; for a datagram, the largest one there
  // can be.
  size_t ChunkFor(int flags) const {
    if (type_ != SOCK_STREAM && domain_ == AF_UNIX) {
      // A host peer's seqpacket message may be larger than a datagram:
      // its length first (only the sentry reads this socket).
      // (recvmsg: the sentry's filter has no recvfrom.)
      msghdr m{};
      const ssize_t len = recvmsg(fd_.get(), &m, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
      return len > 0 ? static_cast<size_t>(len) : kMaxDatagram;
    }
    if (type_ != SOCK_STREAM) return kMaxDatagram;
    if (flags & MSG_OOB) return 1;
    int queued = 0;
    if (ioctl(fd_.get(), SIOCINQ, &queued) != 0) queued = 0;
    return std::clamp<size_t>(static_cast<size_t>(std::max(queued, 0)), kMinStreamChunk,
                              kMaxStreamChunk);
  }

  // Waits in the sentry for the host socket to be ready for `events` (or
  // to fail): 0 when it may be, ERESTARTSYS on a signal (EINTR under a
  // timeout, as sock_intr_errno says), EAGAIN once the deadline passes.
  // The host poller wakes the wait (queue_).
  int Wait(Task& t, short events, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
    queue_->Add(&t.waiter, static_cast<uint16_t>(events) | POLLERR | POLLHUP);
    Status s = Ok();
    if (Readiness(static_cast<uint16_t>(events)) == 0) s = t.Block(deadline);
    queue_->Remove(&t.waiter);
    if (s.ok()) return 0;
    if (s.error() == ETIMEDOUT) return EAGAIN;
    return deadline == absl::InfiniteFuture() ? kERestartSys : EINTR;
  }

  // The control messages of a host receive the sandbox may see; any
  // descriptor the host passed is closed.
  static void TakeControl(msghdr& m, Received* r) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      const size_t len = c->cmsg_len - CMSG_LEN(0);
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        for (size_t i = 0; i + sizeof(int) <= len; i += sizeof(int)) {
          int fd;
          memcpy(&fd, CMSG_DATA(c) + i, sizeof(fd));
          close(fd);
        }
        continue;
      }
      if (!ControlAllowed(c->cmsg_level, c->cmsg_type)) continue;
      r->control.push_back({c->cmsg_level, c->cmsg_type,
                            std::string(reinterpret_cast<const char*>(CMSG_DATA(c)), len)});
    }
  }

  Result<std::string> Name(bool peer) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    const int r = peer ? getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len)
                       : getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    if (r != 0) return Errno{errno};
    return std::string(reinterpret_cast<const char*>(&ss), std::min<size_t>(len, sizeof(ss)));
  }

  UniqueFd fd_;
  // The host last said POLLPRI, and the urgent byte was not read since.
  std::atomic<bool> urgent_up_{false};
  WaitQueue own_queue_;
  WaitQueue* queue_;  // own_queue_, or the forwarding socket's
  bool watched_ = false;
  std::string local_name_, peer_name_;  // a unix socket's
  const int domain_, type_;
  // Kept by the sentry (the host socket never blocks): SO_RCVTIMEO,
  // SO_SNDTIMEO, and SO_LINGER as the application set it.
  timeval rcvtimeo_{}, sndtimeo_{};
  linger linger_{};
};

}  // namespace

std::string ProcNetHostLines(int type, int domain, int first) {
  std::string out;
  absl::MutexLock l(&g_all_mu);
  for (HostSocket* s : All()) {
    if (s->Domain() == domain && s->SockType() == type) out += s->ProcLine(first++);
  }
  return out;
}

void SetUpHostDescriptors() {
  rlimit rl{};
  // The sentry's descriptors: as many as it may have (before its seccomp
  // filter), half of them for host sockets.
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    g_max_open = std::max(64, static_cast<int>(rl.rlim_cur / 2));
  }
}

bool AcquireHostDescriptor() {
  if (g_open.fetch_add(1) >= g_max_open) {
    g_open.fetch_sub(1);
    return false;
  }
  return true;
}

void ReleaseHostDescriptor() { g_open.fetch_sub(1); }

void EnableHostNetwork() { g_enabled = true; }

bool HostNetworkEnabled() { return g_enabled.load(); }

Result<vfs::FileRef> WrapHostSocket(Task& t, UniqueFd fd, int domain, int type, int flags) {
  if (g_open.fetch_add(1) >= g_max_open) {
    g_open.fetch_sub(1);
    return Errno{ENFILE};
  }
  auto s = std::make_shared<HostSocket>(std::make_shared<SocketInode>(t.fsuid, t.fsgid),
                                        std::move(fd), flags, domain, type);
  TRY(s->Watch(s));
  return vfs::FileRef(std::move(s));
}

Result<std::shared_ptr<Socket>> NewHostUnixSocket(Task& t, UniqueFd fd, int type, int flags,
                                                  std::string local, std::string peer,
                                                  WaitQueue* notify) {
  // The sentry never waits in the host (it would hold the kernel's lock).
  if (fcntl(fd.get(), F_SETFL, O_NONBLOCK) != 0) return Errno{errno};
  if (g_open.fetch_add(1) >= g_max_open) {
    g_open.fetch_sub(1);
    return Errno{ENFILE};
  }
  auto s = std::make_shared<HostSocket>(std::make_shared<SocketInode>(t.fsuid, t.fsgid),
                                        std::move(fd), flags, AF_UNIX, type, notify);
  s->SetUnixNames(std::move(local), std::move(peer));
  TRY(s->Watch());
  return std::shared_ptr<Socket>(std::move(s));
}

Result<vfs::FileRef> NewHostSocket(Task& t, int domain, int type, int protocol, int flags) {
  if (!HostNetworkEnabled()) return Errno{EAFNOSUPPORT};
  if (domain != AF_INET && domain != AF_INET6) return Errno{EAFNOSUPPORT};
  if (type != SOCK_STREAM && type != SOCK_DGRAM) return Errno{ESOCKTNOSUPPORT};
  // TCP, UDP and echo sockets only: any other protocol would have the
  // host load its module (inet_create's request_module).
  const int echo =
      domain == AF_INET ? static_cast<int>(IPPROTO_ICMP) : static_cast<int>(IPPROTO_ICMPV6);
  const bool known = protocol == 0 || (type == SOCK_STREAM && protocol == IPPROTO_TCP) ||
                     (type == SOCK_DGRAM && (protocol == IPPROTO_UDP || protocol == echo));
  if (!known) return Errno{EPROTONOSUPPORT};
  if (g_open.load() >= g_max_open) return Errno{ENFILE};
  int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return Errno{errno};
  return WrapHostSocket(t, UniqueFd(fd), domain, type, flags);
}

}  // namespace husk::net
