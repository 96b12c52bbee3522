#include "sentry/net/unix.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_format.h"
#include "sentry/net/host_poller.h"
#include "sentry/net/host_socket.h"
#include "sentry/net/netdev.h"
#include "sentry/net/stack/stack.h"
#include "sentry/net/stack/tcp.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::net {
namespace {

constexpr size_t kDefaultBuffer = 212992;   // net.core.{w,r}mem_default
constexpr size_t kMaxBuffer = 4194304;      // net.core.wmem_max: what SO_SNDBUF takes at most
constexpr size_t kMinSendBuffer = 4608;     // SOCK_MIN_SNDBUF
constexpr size_t kMinReceiveBuffer = 2304;  // SOCK_MIN_RCVBUF
constexpr size_t kMaxDatagramQueue = 10;    // net.unix.max_dgram_qlen
constexpr int kSomaxconn = 4096;            // net.core.somaxconn
// What a queued message costs its sender's buffer beyond its bytes (Linux
// charges an skb's truesize): many tiny messages fill a buffer as a few
// big ones do.
constexpr size_t kMessageOverhead = 256;
constexpr size_t kPathOffset = offsetof(sockaddr_un, sun_path);
// Linux's shutdown bits (sk_shutdown).
constexpr int kRcvShutdown = 1, kSendShutdown = 2, kShutdownMask = 3;

PathOps g_path_ops;
absl::Mutex g_mu;

// Taking and letting go of g_mu: what the stack sends meanwhile goes out
// once it is let go (HoldFrames in sentry/net/netdev.h), before a wait
// too. SocketsLock holds it for a scope.
void TakeSockets() ABSL_EXCLUSIVE_LOCK_FUNCTION(g_mu) {
  g_mu.Lock();
  HoldFrames();
}
void ReleaseSockets() ABSL_UNLOCK_FUNCTION(g_mu) {
  g_mu.Unlock();
  SendHeldFrames();
}

class ABSL_SCOPED_LOCKABLE SocketsLock {
 public:
  SocketsLock() ABSL_EXCLUSIVE_LOCK_FUNCTION(g_mu) { TakeSockets(); }
  ~SocketsLock() ABSL_UNLOCK_FUNCTION() { ReleaseSockets(); }
  SocketsLock(const SocketsLock&) = delete;
  SocketsLock& operator=(const SocketsLock&) = delete;
};

class UnixSocket;

// Files in flight (sent with SCM_RIGHTS, not yet received) in the whole
// sandbox: a sender past its RLIMIT_NOFILE of them gets ETOOMANYREFS, as
// Linux's too_many_unix_fds says, so that files sent and never received
// (or sent around in circles) cannot grow without end.
std::atomic<size_t> g_files_in_flight{0};

// The files one message carries, counted in g_files_in_flight while they
// travel.
class InFlight {
 public:
  InFlight() = default;
  explicit InFlight(std::vector<vfs::FileRef> v) : v_(std::move(v)) {
    g_files_in_flight += v_.size();
  }
  InFlight(InFlight&& o) noexcept : v_(std::exchange(o.v_, {})) {}
  InFlight& operator=(InFlight&& o) noexcept {
    if (this != &o) {
      Drop();
      v_ = std::exchange(o.v_, {});
    }
    return *this;
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ~InFlight() { Drop(); }
  bool empty() const { return v_.empty(); }
  // The files leave the air: received, or about to be let go.
  std::vector<vfs::FileRef> Take() {
    g_files_in_flight -= v_.size();
    return std::exchange(v_, {});
  }

 private:
  void Drop() {
    g_files_in_flight -= v_.size();
    v_.clear();
  }
  std::vector<vfs::FileRef> v_;
};

// One sent message waiting in a receive queue (an skb): its bytes, the
// files and credentials it carries, who sent it (their buffer counts it
// until it is read), and the sender's address.
struct Message {
  std::string data;
  size_t off = 0;              // bytes of a stream message already read
  size_t charge = 0;           // what the sender's buffer still counts of it
  size_t receiver_charge = 0;  // what a UDP receiver's buffer counts
  InFlight fds;
  Credentials creds;
  std::string from;
  std::weak_ptr<UnixSocket> sender;
  // inet datagrams: where it was sent to, with what TTL (hop limit), when
  // it arrived, and the receiver's drops so far (SO_RXQ_OVFL).
  std::array<uint8_t, 16> to{};
  int ttl = 64, tos = 0;
  int ifindex = 1;
  absl::Time when;
  uint32_t drops = 0;
  size_t left() const { return data.size() - off; }
};

// The bound names: filesystem nodes by (device, inode), abstract names by
// their bytes.
using NodeKey = std::pair<dev_t, ino_t>;
std::map<NodeKey, std::weak_ptr<UnixSocket>>& Nodes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* m = new std::map<NodeKey, std::weak_ptr<UnixSocket>>();
  return *m;
}
// Each socket type has an abstract namespace of its own.
using AbstractKey = std::pair<int, std::string>;
std::map<AbstractKey, std::weak_ptr<UnixSocket>>& Abstract() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* m = new std::map<AbstractKey, std::weak_ptr<UnixSocket>>();
  return *m;
}
// Every socket, for /proc/net/unix.
std::map<UnixSocket*, std::weak_ptr<UnixSocket>>& All() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* m = new std::map<UnixSocket*, std::weak_ptr<UnixSocket>>();
  return *m;
}
uint32_t g_autobind ABSL_GUARDED_BY(g_mu) = 0;
// How many sockets joined each IPv4 group (IP_MULTICAST_ALL asks whether
// any did).
std::map<std::array<uint8_t, 16>, int>& JoinedGroups4() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* m = new std::map<std::array<uint8_t, 16>, int>();
  return *m;
}
// Bound inet sockets by (type, port).
std::map<std::pair<int, uint16_t>, std::vector<std::weak_ptr<UnixSocket>>>& InetPorts()
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* m = new std::map<std::pair<int, uint16_t>, std::vector<std::weak_ptr<UnixSocket>>>();
  return *m;
}

Credentials CredsOf(const Task& t) { return {t.tgid(), t.uid, t.gid}; }

// A parsed sockaddr_un: a path, or an abstract name (its bytes, starting
// with the NUL); `raw` is the address as getsockname reports it.
// For inet sockets: the address (IPv4 as v4-mapped IPv6) and port; raw
// is then made for whichever family asks (FormatInet).
struct Name {
  bool abstract = false;
  std::string path;  // a path, or the abstract bytes
  std::string raw;
  bool inet = false;
  std::array<uint8_t, 16> ip{};
  uint16_t port = 0;  // host order
};

// TCP ports in TIME_WAIT: the side that closed a connection first keeps
// its address for a minute (TCP_TIMEWAIT_LEN), and a new bind conflicts
// with it unless both have SO_REUSEADDR.
struct TimeWait {
  Name name;
  int domain = AF_INET;
  bool reuse = false;
  absl::Time until;
};
std::vector<TimeWait>& TimeWaits() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* v = new std::vector<TimeWait>();
  return *v;
}
// The sandbox's TCP/IP stack, when it has interfaces (--network=sandbox):
// sockets reach it for addresses beyond loopback. It is called under g_mu
// only (sentry/net/netdev.cc's thread feeds it frames and time under it).
netstack::Stack* g_stack ABSL_GUARDED_BY(g_mu) = nullptr;
// When the network thread will next run the stack's timers, and how to
// wake it sooner.
int64_t g_stack_wake ABSL_GUARDED_BY(g_mu) = INT64_MAX;
void (*g_stack_kick)() = nullptr;

int64_t StackNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// A timer of the stack was armed for `deadline`: the thread wakes for it.
void StackArmed(int64_t deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  if (deadline < g_stack_wake) {
    g_stack_wake = deadline;
    if (g_stack_kick != nullptr) g_stack_kick();
  }
}

// unix_validate_addr and unix_mkname: the family, and a length that holds
// more than the family and no more than a sockaddr_un.
Result<Name> ParseName(std::string_view addr) {
  if (addr.size() < sizeof(sa_family_t)) return Errno{EINVAL};
  sa_family_t family;
  memcpy(&family, addr.data(), sizeof(family));
  if (family != AF_UNIX) return Errno{EINVAL};
  if (addr.size() <= kPathOffset || addr.size() > sizeof(sockaddr_un)) return Errno{EINVAL};
  std::string_view body = addr.substr(kPathOffset);
  Name n;
  if (body[0] == '\0') {
    n.abstract = true;
    n.path = std::string(body);
    n.raw = std::string(addr);
  } else {
    n.path = std::string(body.substr(0, body.find('\0')));
    n.raw = std::string(addr.substr(0, kPathOffset)) + n.path + std::string(1, '\0');
  }
  return n;
}

// ---- inet over loopback ------------------------------------------------

constexpr uint16_t kEphemeralLow = 32768, kEphemeralHigh = 60999;  // ip_local_port_range

bool IsMapped(const std::array<uint8_t, 16>& ip) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(ip.data(), kPrefix, 12) == 0;
}
bool IsAny(const std::array<uint8_t, 16>& ip) {
  static constexpr std::array<uint8_t, 16> kZero{};
  return ip == kZero || (IsMapped(ip) && ip[12] == 0 && ip[13] == 0 && ip[14] == 0 && ip[15] == 0);
}
bool IsLoopback(const std::array<uint8_t, 16>& ip) {
  if (IsMapped(ip)) return ip[12] == 127;
  static constexpr std::array<uint8_t, 16> kOne{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return ip == kOne;
}
std::array<uint8_t, 16> V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}
constexpr std::array<uint8_t, 16> kIp6Loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

// An IPv6 multicast group (ff00::/8); and one of interface-local or
// link-local scope, which names its interface with a scope id
// (__ipv6_addr_needs_scope_id).
bool IsGroup6(const std::array<uint8_t, 16>& ip) { return !IsMapped(ip) && ip[0] == 0xff; }
bool NeedsScope6(const std::array<uint8_t, 16>& group) { return (group[1] & 0x0f) <= 2; }
// A multicast group of either family, or 255.255.255.255; what bind(2)
// takes besides the sandbox's own addresses (with a subnet's broadcast,
// which the stack knows).
bool IsGroupOrBroadcast(const std::array<uint8_t, 16>& ip) {
  if (IsGroup6(ip)) return true;
  return IsMapped(ip) && ((ip[12] & 0xf0) == 0xe0 ||
                          (ip[12] == 255 && ip[13] == 255 && ip[14] == 255 && ip[15] == 255));
}
// Whether a socket bound to `bound` has its packets' source picked by the
// route: bound to the wildcard, a group or a broadcast address (Linux's
// inet_saddr stays 0 for the last two).
bool PicksItsSource(const std::array<uint8_t, 16>& bound) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  return IsAny(bound) || IsGroupOrBroadcast(bound) ||
         (g_stack != nullptr && g_stack->IsBroadcast(bound));
}

// The scope id of a sockaddr_in6 (0 for a shorter, RFC 2133 one).
uint32_t ScopeIdOf(std::string_view addr) {
  if (addr.size() < sizeof(sockaddr_in6)) return 0;
  sockaddr_in6 a;
  memcpy(&a, addr.data(), sizeof(a));
  return a.sin6_family == AF_INET6 ? a.sin6_scope_id : 0;
}

// What one IPv6 membership costs a socket (ipv6_mc_socklist) against
// net.core.optmem_max (131072): sock_kmalloc fails (ENOMEM) past that.
constexpr size_t kMaxMemberships6 = 131072 / 56;

// A sockaddr_in or sockaddr_in6 for a socket of `domain` (an IPv6
// socket sees IPv4 peers as ::ffff:a.b.c.d).
std::string FormatInet(int domain, const Name& n) {
  if (domain == AF_INET) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(n.port);
    memcpy(&a.sin_addr, n.ip.data() + 12, 4);
    return std::string(reinterpret_cast<const char*>(&a), sizeof(a));
  }
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(n.port);
  memcpy(&a.sin6_addr, n.ip.data(), 16);
  return std::string(reinterpret_cast<const char*>(&a), sizeof(a));
}

// inet_bind/inet6_bind's and connect's checks of an address for a socket
// of `domain`: the length (EINVAL), the family (EAFNOSUPPORT; AF_UNSPEC
// passes for INADDR_ANY on an IPv4 bind, as Linux allows).
Result<Name> ParseInet(int domain, std::string_view addr, bool bind) {
  Name n;
  n.inet = true;
  if (domain == AF_INET) {
    if (addr.size() < sizeof(sockaddr_in)) return Errno{EINVAL};
    sockaddr_in a;
    memcpy(&a, addr.data(), sizeof(a));
    if (a.sin_family != AF_INET &&
        !(bind && a.sin_family == AF_UNSPEC && a.sin_addr.s_addr == htonl(INADDR_ANY))) {
      return Errno{EAFNOSUPPORT};
    }
    n.ip = V4(0, 0, 0, 0);
    memcpy(n.ip.data() + 12, &a.sin_addr, 4);
    n.port = ntohs(a.sin_port);
    return n;
  }
  if (addr.size() < 24) return Errno{EINVAL};  // SIN6_LEN_RFC2133
  sockaddr_in6 a{};
  memcpy(&a, addr.data(), std::min(addr.size(), sizeof(a)));
  if (a.sin6_family != AF_INET6) return Errno{EAFNOSUPPORT};
  memcpy(n.ip.data(), &a.sin6_addr, 16);
  n.port = ntohs(a.sin6_port);
  return n;
}

// What of the IPv4 and IPv6 address spaces a bound inet socket covers.
struct Cover {
  bool any4 = false, any6 = false;
  std::optional<std::array<uint8_t, 16>> v4, v6;
};
Cover CoverOf(int domain, const Name& n, bool v6only) {
  Cover c;
  if (domain == AF_INET || IsMapped(n.ip)) {
    if (IsAny(n.ip)) {
      c.any4 = true;
    } else {
      c.v4 = n.ip;
    }
    return c;
  }
  if (IsAny(n.ip)) {
    c.any6 = true;
    c.any4 = !v6only;
  } else {
    c.v6 = n.ip;
  }
  return c;
}
bool Overlaps(const Cover& a, const Cover& b) {
  const bool a4 = a.any4 || a.v4.has_value(), b4 = b.any4 || b.v4.has_value();
  const bool a6 = a.any6 || a.v6.has_value(), b6 = b.any6 || b.v6.has_value();
  if (a4 && b4 && (a.any4 || b.any4 || *a.v4 == *b.v4)) return true;
  return a6 && b6 && (a.any6 || b.any6 || *a.v6 == *b.v6);
}
// Whether a socket covering c takes what is sent to address ip.
bool Accepts(const Cover& c, const std::array<uint8_t, 16>& ip) {
  if (IsMapped(ip)) return c.any4 || (c.v4.has_value() && *c.v4 == ip);
  return c.any6 || (c.v6.has_value() && *c.v6 == ip);
}

class UnixSocket : public Socket, public std::enable_shared_from_this<UnixSocket> {
 public:
  static constexpr int kPingSpace = 0x100;  // ping sockets' port space (InetPorts)
  UnixSocket(vfs::InodeRef inode, int flags, int type, int domain = AF_UNIX, bool ping = false)
      : Socket(std::move(inode), O_RDWR | (flags & O_NONBLOCK)),
        type_(type),
        space_(ping ? kPingSpace : type),
        domain_(domain),
        ping_(ping) {
    // Ping sockets start with SO_REUSEADDR (INET_PROTOSW_REUSE).
    reuseaddr_ = ping;
  }
  ~UnixSocket() override;

  // Registers a new socket for /proc/net/unix.
  void Register() {
    SocketsLock l;
    All()[this] = weak_from_this();
  }

  int Domain() const override { return domain_; }
  int SockType() const override { return type_; }
  size_t MaxMessage() const override {
    SocketsLock l;
    return type_ == SOCK_STREAM ? 0 : sndbuf_ - 32;
  }

  Status Bind(Task& t, std::string_view addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Status Listen(Task& t, int backlog) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Result<vfs::FileRef> Accept(Task& t, int flags, std::string* peer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Status Connect(Task& t, std::string_view addr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Result<size_t> Send(Task& t, SendRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Result<Received> Receive(Task& t, size_t n, int flags)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Status Shutdown(Task& t, int how) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Result<std::string> SockName() override;
  Result<std::string> PeerName() override;
  Result<std::string> GetOption(Task& t, int level, int name, size_t len)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Status SetOption(Task& t, int level, int name, std::string_view value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;

  Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) override;
  uint32_t Readiness(uint32_t mask) override;
  WaitQueue* EventQueue() override { return &queue_; }

  // Connects two new sockets (socketpair).
  static void Pair(const std::shared_ptr<UnixSocket>& a, const std::shared_ptr<UnixSocket>& b,
                   const Credentials& creds);
  std::string ProcLine();
  // A line of /proc/net/tcp (or udp, tcp6, udp6), numbered sl.
  std::string ProcInetLine(int sl);

 private:
  // Blocks the task on this socket's queue until something changes, a
  // signal (ERESTARTSYS) or the deadline (EAGAIN, as SO_RCVTIMEO and
  // SO_SNDTIMEO end a wait); 0 when woken.
  int Wait(Task& t, absl::Time deadline = absl::InfiniteFuture(),
           std::shared_ptr<UnixSocket>* drop = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu, g_mu);
  bool Nonblocking(int msg_flags) const {
    return (flags() & O_NONBLOCK) || (msg_flags & MSG_DONTWAIT);
  }
  // Wakes this socket's waiters and its peer's.
  void Changed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // The bytes this socket has in others' queues may grow by n.
  bool Writable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) { return inflight_ < sndbuf_; }
  Status AutobindLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  Status ConnectInet(Task& t, std::string_view addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  // TCP through the sandbox's stack (an address beyond loopback).
  Status ConnectStack(Task& t, const Name& to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  Result<size_t> SendTcp(Task& t, SendRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu, g_mu);
  Result<Received> ReceiveTcp(Task& t, size_t n, int flags)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu, g_mu);
  // A stack connection that completed or failed since the last call:
  // connected_ or the error follow it.
  void SyncTcpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // What the socket's options ask of a connection.
  netstack::TcpSettings TcpSettingsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // The socket's options changed: its connection hears them (keeping its
  // buffers; TCP_NODELAY set or TCP_CORK cleared sends what waited), and so
  // do the connections its listener makes from now on.
  void RefreshTcpSettingsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    if (tcp_listener_ != nullptr) tcp_listener_->settings = TcpSettingsLocked();
    if (tcp_ == nullptr) return;
    const netstack::TcpSettings before = tcp_->settings;
    tcp_->settings = TcpSettingsLocked();
    tcp_->settings.sndbuf = before.sndbuf;
    tcp_->settings.rcvbuf = before.rcvbuf;
    tcp_->ApplySettings(before, StackNow());
    StackArmed(tcp_->Deadline());
  }
  // Linux's checks of an inet option's value (EINVAL out of range); may
  // rewrite it, to kDefaultOption for "back to the default".
  static constexpr int kDefaultOption = INT_MIN;
  Status CheckInetOption(int level, int name, int* v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  void WatchTcpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    WaitQueue* q = &queue_;
    tcp_->notify = [q] { q->Notify(~0U); };
    tcp_->on_urgent = [w = weak_from_this(), key = static_cast<vfs::File*>(this)] {
      PostUrgent(w, key);
    };
  }
  // The socket a name is bound to (ECONNREFUSED if none is any more).
  Result<std::shared_ptr<UnixSocket>> Lookup(Task& t, const Name& n)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  Result<size_t> SendStream(Task& t, SendRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  Result<size_t> SendDatagram(Task& t, SendRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  Result<size_t> SendInetDatagram(Task& t, SendRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  // Gives a datagram to every UDP socket bound to `port` (at the wildcard
  // or the group) that joined `group`; true if one did.
  // Queues an inet datagram (m: its bytes, destination, TTL, interface)
  // sent from `from`, stamped with the time and the drops so far; a full
  // receive buffer, or one shut for reading, drops it instead, as UDP does.
  void QueueDatagramLocked(Message m, const Name& from) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // The sockets it found go to *keep, to be let go after the lock.
  static bool DeliverMulticastLocked(const std::array<uint8_t, 16>& group, uint16_t port,
                                     const Name& from, std::string_view data, int ttl, int ifindex,
                                     std::vector<std::shared_ptr<UnixSocket>>* keep)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // IPv6's: a datagram to `group` that arrived on (or looped back to)
  // interface `ifindex` goes to every IPv6 UDP socket bound to `port` at
  // the wildcard or the group, not connected elsewhere, that joined the
  // group (on any interface, as inet6_mc_check looks) or left
  // IPV6_MULTICAST_ALL on; true if one took it.
  static bool DeliverMulticast6Locked(const std::array<uint8_t, 16>& group, uint16_t port,
                                      const Name& from, std::string_view data, int hops, int tclass,
                                      int ifindex, std::vector<std::shared_ptr<UnixSocket>>* keep)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // The interface a datagram to IPv6 group leaves by (udpv6_sendmsg's
  // flowi6_oif): the destination's scope id for a group of link scope,
  // else IPV6_MULTICAST_IF, else the stack's first (where Linux's
  // ff00::/8 multicast route points). 0 if that is no interface of the
  // stack's: loopback has no multicast route, and a sandbox without
  // --network=sandbox has only loopback.
  int GroupNicLocked(const std::array<uint8_t, 16>& group, uint32_t scope) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // Sends a datagram to an IPv6 group by interface nic: the sandbox's own
  // members hear it first (IPV6_MULTICAST_LOOP, when the interface is in
  // the group), then it goes out with IPV6_MULTICAST_HOPS as its hop limit.
  Result<size_t> SendGroup6Locked(const Name& dst, int nic, std::string_view data,
                                  std::vector<std::shared_ptr<UnixSocket>>* members)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // IPV6_ADD_MEMBERSHIP and IPV6_DROP_MEMBERSHIP (struct ipv6_mreq).
  Status Membership6Locked(int name, std::string_view value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // A ping socket's echo request: answered here for the sandbox's own
  // addresses, sent through the stack otherwise.
  Result<size_t> SendPing(Task& t, SendRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  // Takes what a receive gets from the queue (the caller holds g_mu);
  // messages fully read go to *gone, to be let go without the lock.
  void TakeStream(size_t n, int flags, Received* r, std::deque<Message>* gone)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  void TakeMessage(size_t n, int flags, Received* r, std::deque<Message>* gone)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // The control messages a datagram brings, as the receiver's options ask
  // (SO_TIMESTAMP, SO_RXQ_OVFL, IP_PKTINFO, IP_TTL, IP_TOS, IPV6_PKTINFO,
  // IPV6_HOPLIMIT, IPV6_TCLASS), in udp_recvmsg's order.
  void InetControlLocked(const Message& m, Received* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // A message left the queue: its sender may send again.
  static void Consumed(const Message& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);

  // inet over loopback: binding (an ephemeral port for port 0), and the
  // bound socket of `type` that takes what is sent to dst:port (a
  // listener for connections); a specific address wins over a wildcard.
  bool inet() const { return domain_ != AF_UNIX; }
  // group: n names a multicast group or a broadcast address, which bind(2)
  // takes (the caller checked it) besides the sandbox's own addresses.
  Status BindInetLocked(Name n, bool group = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  static std::shared_ptr<UnixSocket> FindInet(int type, const std::array<uint8_t, 16>& dst,
                                              uint16_t port, bool listener)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // The address a connection or datagram to dst comes from (connect's
  // autobind: 127.0.0.1 or ::1, an ephemeral port).
  // wildcard: a UDP sendto's autobind keeps the wildcard address.
  Status AutobindInetLocked(const std::array<uint8_t, 16>& dst, bool wildcard = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  bool ConflictsLocked(uint16_t port, const Cover& mine) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  std::string RawName(const Name& n) const { return n.inet ? FormatInet(domain_, n) : n.raw; }

  const int type_;
  // The port space the socket binds in: its type's, or ping sockets' own
  // (their "port" is the ICMP echo identifier).
  const int space_;
  int domain_;       // fixed once the socket is published (an accepted one takes its listener's)
  const bool ping_;  // an echo ("ping") socket: SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6
  WaitQueue queue_;
  // Unix sockets on a read-write volume: the host socket bound at the name
  // (host processes connect to it, and a listener accepts from it too; or
  // they send datagrams to it, which a datagram socket receives besides
  // the sandbox's), and the host connection a stream or seqpacket socket
  // that connected to a host process's listener forwards every call to
  // (it notifies queue_). A datagram socket connected to a host process's
  // socket sends what has no address of its own through host_peer_, and
  // receives as any datagram socket does.
  UniqueFd host_listener_ ABSL_GUARDED_BY(g_mu);
  bool host_watched_ ABSL_GUARDED_BY(g_mu) = false;
  std::shared_ptr<Socket> host_conn_ ABSL_GUARDED_BY(g_mu);
  std::shared_ptr<Socket> host_peer_ ABSL_GUARDED_BY(g_mu);
  // The host connection, with this socket's status flags (O_NONBLOCK);
  // null if there is none. Not under g_mu.
  std::shared_ptr<Socket> HostConn() {
    SocketsLock l;
    if (host_conn_ != nullptr) host_conn_->set_status_flags(flags());
    return host_conn_;
  }
  // connect(2) to a socket node whose listener is a host process's.
  Status ConnectHost(Task& t, const Name& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  // sendto(2) of a datagram to a socket node no socket of the sandbox is
  // bound to: a host process's on a read-write volume, reached through the
  // gofer (ECONNREFUSED where nothing of the host's receives).
  Result<size_t> SendHostDatagram(Task& t, const Name& n, SendRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  // A datagram a host process sent to this socket's name, if one waits.
  bool TakeHostDatagramLocked(size_t n, int flags, Received* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  bool HostDatagramsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    return type_ == SOCK_DGRAM && host_listener_.valid();
  }
  // The host socket at the name has something for this one: connections
  // to a listener, or datagrams.
  bool HearsHostSocketLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    return (listening_ && host_listener_.valid()) || HostDatagramsLocked();
  }
  // A TCP connection through the stack, and a listener's share of it.
  std::shared_ptr<netstack::TcpEndpoint> tcp_ ABSL_GUARDED_BY(g_mu);
  std::shared_ptr<netstack::TcpListener> tcp_listener_ ABSL_GUARDED_BY(g_mu);
  friend class StackUpcalls;
  // inet options: SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY, and what other
  // options were set to (read back as set).
  bool reuseaddr_ ABSL_GUARDED_BY(g_mu) = false;
  bool reuseport_ ABSL_GUARDED_BY(g_mu) = false;
  bool v6only_ ABSL_GUARDED_BY(g_mu) = false;
  // bind(2) chose the address, or the port (an AF_UNSPEC connect keeps them).
  bool addr_locked_ ABSL_GUARDED_BY(g_mu) = false;
  bool port_locked_ ABSL_GUARDED_BY(g_mu) = false;
  std::map<std::pair<int, int>, std::string> options_ ABSL_GUARDED_BY(g_mu);
  Name name_ ABSL_GUARDED_BY(g_mu);  // bound name (raw empty: unbound)
  vfs::DentryRef node_ ABSL_GUARDED_BY(g_mu);
  NodeKey node_key_ ABSL_GUARDED_BY(g_mu){};
  bool listening_ ABSL_GUARDED_BY(g_mu) = false;
  int backlog_ ABSL_GUARDED_BY(g_mu) = 0;
  std::deque<std::shared_ptr<UnixSocket>> pending_ ABSL_GUARDED_BY(g_mu);  // accept queue
  // Stream and seqpacket: the other end (connected_ once it had one);
  // datagram: the default destination.
  std::weak_ptr<UnixSocket> peer_ ABSL_GUARDED_BY(g_mu);
  Name peer_name_ ABSL_GUARDED_BY(g_mu);  // a connected inet datagram socket's peer
  bool connected_ ABSL_GUARDED_BY(g_mu) = false;
  bool embryo_ ABSL_GUARDED_BY(g_mu) = false;  // made by connect, not yet accepted
  std::deque<Message> queue_msgs_ ABSL_GUARDED_BY(g_mu);
  size_t queued_bytes_ ABSL_GUARDED_BY(g_mu) = 0;
  size_t queued_charge_ ABSL_GUARDED_BY(g_mu) = 0;  // UDP: bytes and overhead queued here
  size_t inflight_ ABSL_GUARDED_BY(g_mu) = 0;       // sent, not yet read (sk_wmem_alloc)
  int shutdown_ ABSL_GUARDED_BY(g_mu) = 0;
  bool passcred_ ABSL_GUARDED_BY(g_mu) = false;
  size_t sndbuf_ ABSL_GUARDED_BY(g_mu) = kDefaultBuffer;
  size_t rcvbuf_ ABSL_GUARDED_BY(g_mu) = kDefaultBuffer;
  std::optional<Credentials> peercred_ ABSL_GUARDED_BY(g_mu);
  Credentials own_creds_ ABSL_GUARDED_BY(g_mu);  // at listen: what connectors see
  int error_ ABSL_GUARDED_BY(g_mu) = 0;          // SO_ERROR
  // TCP over loopback: the FINs each way (the state TCP_INFO and
  // /proc/net/tcp show), a peer gone without a reset (the next send is
  // taken, and reset), a connection that ended in a reset (getpeername:
  // ENOTCONN), and the bytes sent and not yet read (SIOCOUTQ).
  bool fin_sent_ ABSL_GUARDED_BY(g_mu) = false;
  bool peer_fin_ ABSL_GUARDED_BY(g_mu) = false;
  bool peer_gone_ ABSL_GUARDED_BY(g_mu) = false;
  bool reset_ ABSL_GUARDED_BY(g_mu) = false;
  size_t unread_bytes_ ABSL_GUARDED_BY(g_mu) = 0;
  int rcvlowat_ ABSL_GUARDED_BY(g_mu) = 1;   // SO_RCVLOWAT
  int peek_off_ ABSL_GUARDED_BY(g_mu) = -1;  // SO_PEEK_OFF (unix sockets): -1 is off
  // Urgent data of TCP over loopback (send's MSG_OOB): the stream
  // position of the urgent mark and, without SO_OOBINLINE, the urgent byte
  // taken out of the stream. Valid until read with MSG_OOB (then Read);
  // forgotten once reading passes the mark (tcp_rcv_space's urg_data).
  enum class Urgent { kNone, kValid, kRead };
  Urgent urgent_ ABSL_GUARDED_BY(g_mu) = Urgent::kNone;
  uint64_t urgent_mark_ ABSL_GUARDED_BY(g_mu) = 0;
  char urgent_byte_ ABSL_GUARDED_BY(g_mu) = 0;
  uint64_t rcv_seq_ ABSL_GUARDED_BY(g_mu) = 0;     // stream bytes ever queued here
  uint64_t copied_seq_ ABSL_GUARDED_BY(g_mu) = 0;  // and read
  // The last byte of `data`, sent with MSG_OOB, is urgent (tcp_check_urg,
  // tcp_urg): the mark is set, and the byte leaves the stream unless
  // SO_OOBINLINE.
  void UrgentArrivedLocked(std::string* data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    if (data->empty()) return;
    if (IntOptionLocked(SOL_SOCKET, SO_OOBINLINE, 0) != 0) {
      urgent_mark_ = rcv_seq_ + data->size() - 1;
    } else {
      urgent_byte_ = data->back();
      data->pop_back();
      urgent_mark_ = rcv_seq_ + data->size();
    }
    urgent_ = Urgent::kValid;
    queue_.Notify(POLLPRI);
    PostUrgent(weak_from_this(), this);  // SIGURG for the owner
  }
  // recv(MSG_OOB), tcp_recv_urg's way.
  Result<Received> ReceiveUrgentLocked(int flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    if (IntOptionLocked(SOL_SOCKET, SO_OOBINLINE, 0) != 0 || urgent_ != Urgent::kValid) {
      return Errno{EINVAL};
    }
    Received r;
    r.data.assign(1, urgent_byte_);
    r.length = 1;
    r.msg_flags |= MSG_OOB;
    if (!(flags & MSG_PEEK)) urgent_ = Urgent::kRead;
    return r;
  }
  uint32_t drops_ ABSL_GUARDED_BY(g_mu) = 0;  // datagrams dropped for want of room
  // IP_ADD_MEMBERSHIP's: each group and the interface it was joined on (0:
  // none the stack has; otherwise one of the stack's counts it).
  std::map<std::array<uint8_t, 16>, int> groups_ ABSL_GUARDED_BY(g_mu);
  void LeaveGroup4Locked(const std::array<uint8_t, 16>& group, int nic)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    if (g_stack != nullptr && nic > 1) g_stack->LeaveGroup(nic, group);
    auto& count = JoinedGroups4()[group];
    if (--count <= 0) JoinedGroups4().erase(group);
  }
  // IP_MULTICAST_IF names loopback (127.0.0.0/8, or index 1 in an ip_mreqn).
  bool MulticastIfLoopbackLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    auto it = options_.find({IPPROTO_IP, IP_MULTICAST_IF});
    if (it == options_.end()) return false;
    const std::string& v = it->second;
    if (v.size() >= sizeof(ip_mreqn)) {
      int ifindex = 0;
      memcpy(&ifindex, v.data() + offsetof(ip_mreqn, imr_ifindex), sizeof(ifindex));
      if (ifindex != 0) return ifindex == 1;
    }
    // in_addr alone, or the interface address second (ip_mreq, ip_mreqn).
    const size_t at = v.size() >= sizeof(ip_mreq) ? sizeof(in_addr) : 0;
    return static_cast<uint8_t>(v[at]) == 127;
  }
  // IPV6_ADD_MEMBERSHIP's: a group and the interface it was joined on
  // (one of the stack's counts it: Stack::JoinGroup).
  struct Membership6 {
    std::array<uint8_t, 16> group{};
    int ifindex = 0;
  };
  std::vector<Membership6> groups6_ ABSL_GUARDED_BY(g_mu);
  int peer_nic_ ABSL_GUARDED_BY(g_mu) = 0;  // connected to an IPv6 group: its interface
  // TCP's state as Linux numbers it, for loopback connections.
  int TcpStateLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    if (listening_) return 10;
    if (!connected_ || reset_) return 7;
    if (fin_sent_ && peer_fin_) return 7;  // the last one's ACK: TIME_WAIT has no socket
    if (fin_sent_) return 5;               // FIN_WAIT2
    if (peer_fin_) return 8;               // CLOSE_WAIT
    return 1;
  }
  // An inet option as an int, or dflt.
  int IntOptionLocked(int level, int name, int dflt) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    auto it = options_.find({level, name});
    if (it == options_.end() || it->second.size() < sizeof(int)) return dflt;
    int v;
    memcpy(&v, it->second.data(), sizeof(v));
    return v;
  }
  // SO_RCVTIMEO and SO_SNDTIMEO as set (zero: wait without end).
  timeval rcvtimeo_ ABSL_GUARDED_BY(g_mu){}, sndtimeo_ ABSL_GUARDED_BY(g_mu){};
};

UnixSocket::~UnixSocket() {
  // What the socket held: files in flight and pending connections go once
  // the lock is let go (their own release takes it).
  std::deque<Message> msgs;
  std::deque<std::shared_ptr<UnixSocket>> pending;
  std::shared_ptr<UnixSocket> peer;
  {
    SocketsLock l;
    All().erase(this);
    if (host_watched_) UnwatchHostFd(host_listener_.get());
    if (host_listener_.valid()) ReleaseHostDescriptor();
    // The interfaces' memberships this socket held end with it.
    for (const auto& [group, nic] : groups_) LeaveGroup4Locked(group, nic);
    for (const Membership6& m : groups6_) {
      if (g_stack != nullptr && m.ifindex != 1) g_stack->LeaveGroup(m.ifindex, m.group);
    }
    if (tcp_ != nullptr) {
      bool linger_zero = false;
      if (auto it = options_.find({SOL_SOCKET, SO_LINGER}); it != options_.end()) {
        linger lg{};
        memcpy(&lg, it->second.data(), std::min(it->second.size(), sizeof(lg)));
        linger_zero = lg.l_onoff != 0 && lg.l_linger == 0;
      }
      tcp_->Close(linger_zero, StackNow());
      StackArmed(tcp_->Deadline());
    }
    if (tcp_listener_ != nullptr) tcp_listener_->Close(StackNow());
    if (name_.inet) {
      auto& v = InetPorts()[{space_, name_.port}];
      std::erase_if(v, [](const std::weak_ptr<UnixSocket>& w) { return w.expired(); });
      if (v.empty()) InetPorts().erase({space_, name_.port});
    } else if (!name_.raw.empty()) {
      if (name_.abstract) {
        auto it = Abstract().find({type_, name_.path});
        if (it != Abstract().end() && it->second.expired()) Abstract().erase(it);
      } else {
        auto it = Nodes().find(node_key_);
        if (it != Nodes().end() && it->second.expired()) Nodes().erase(it);
      }
    }
    peer = peer_.lock();
    if (peer != nullptr && type_ != SOCK_DGRAM) {
      // unix_release_sock: the peer's connection is over; unread data here
      // makes it a reset, and so does SO_LINGER {1, 0} on TCP.
      bool reset = !queue_msgs_.empty() || embryo_;
      if (auto it = options_.find({SOL_SOCKET, SO_LINGER}); it != options_.end()) {
        linger lg{};
        memcpy(&lg, it->second.data(), std::min(it->second.size(), sizeof(lg)));
        reset = reset || (lg.l_onoff != 0 && lg.l_linger == 0);
      }
      if (!inet() || reset) {
        peer->shutdown_ = kShutdownMask;
      } else {
        // TCP: a FIN. The peer may still send: its next segment meets a
        // reset (SendStream).
        peer->shutdown_ |= kRcvShutdown;
        peer->peer_fin_ = true;
        peer->peer_gone_ = true;
      }
      if (reset) {
        peer->error_ = ECONNRESET;
        peer->reset_ = true;
      }
      peer->queue_.Notify(~0U);
      // TCP: the side that closes first keeps its address in TIME_WAIT.
      if (inet() && !reset && name_.inet && !peer_fin_) {
        // At most tcp_max_tw_buckets-like many; the oldest give way.
        constexpr size_t kMaxTimeWaits = 4096;
        if (TimeWaits().size() >= kMaxTimeWaits) TimeWaits().erase(TimeWaits().begin());
        TimeWaits().push_back({name_, domain_, reuseaddr_, absl::Now() + absl::Seconds(60)});
      }
    }
    for (Message& m : queue_msgs_) Consumed(m);
    msgs.swap(queue_msgs_);
    pending.swap(pending_);
  }
  // What goes with this socket may hold sockets that hold more (files sent
  // over sockets, sent over sockets...): they are let go in a loop by the
  // outermost socket being destroyed on this thread, never by recursion.
  thread_local std::vector<std::shared_ptr<void>>* graveyard = nullptr;
  std::vector<std::shared_ptr<void>> dead;
  for (Message& m : msgs) {
    for (vfs::FileRef& f : m.fds.Take()) dead.push_back(std::move(f));
  }
  for (std::shared_ptr<UnixSocket>& p : pending) dead.push_back(std::move(p));
  dead.push_back(std::move(peer));
  if (graveyard != nullptr) {
    for (auto& d : dead) graveyard->push_back(std::move(d));
    return;
  }
  graveyard = &dead;
  while (!dead.empty()) {
    std::shared_ptr<void> d = std::move(dead.back());
    dead.pop_back();
    d.reset();  // may add to `dead`
  }
  graveyard = nullptr;
}

void UnixSocket::Changed() {
  queue_.Notify(~0U);
  if (std::shared_ptr<UnixSocket> p = peer_.lock()) p->queue_.Notify(~0U);
}

int UnixSocket::Wait(Task& t, absl::Time deadline, std::shared_ptr<UnixSocket>* drop) {
  queue_.Add(&t.waiter, ~0U);
  // A listener with a host side waits on its host socket too: the host
  // poller's edge may have come before this waiter was added.
  std::vector<pollfd> host;
  if (HearsHostSocketLocked()) host.push_back({host_listener_.get(), POLLIN, 0});
  ReleaseSockets();
  // Not kept across the wait: a peer whose last file closes meanwhile
  // goes, and its going (EPIPE, end of file) wakes this one.
  if (drop != nullptr) drop->reset();
  Status s = t.Block(deadline, host.empty() ? nullptr : &host);
  queue_.Remove(&t.waiter);
  TakeSockets();
  if (s.ok()) return 0;
  return s.error() == ETIMEDOUT ? EAGAIN : kERestartSys;
}

void UnixSocket::Consumed(const Message& m) {
  if (std::shared_ptr<UnixSocket> s = m.sender.lock()) {
    s->inflight_ -= std::min(s->inflight_, m.charge);
    if (s->inet()) s->unread_bytes_ -= std::min(s->unread_bytes_, m.left());
    s->queue_.Notify(POLLOUT | POLLWRNORM);
  }
}

void UnixSocket::Pair(const std::shared_ptr<UnixSocket>& a, const std::shared_ptr<UnixSocket>& b,
                      const Credentials& creds) {
  SocketsLock l;
  a->peer_ = b;
  b->peer_ = a;
  a->connected_ = b->connected_ = true;
  a->peercred_ = b->peercred_ = creds;
}

Status UnixSocket::AutobindLocked() {
  // unix_autobind: five hex digits in the abstract namespace.
  for (int tries = 0; tries < 0xfffff; tries++) {
    const uint32_t n = g_autobind++ & 0xfffff;
    std::string name = std::string(1, '\0') + absl::StrFormat("%05x", n);
    if (auto it = Abstract().find({type_, name}); it != Abstract().end() && !it->second.expired()) {
      continue;
    }
    sa_family_t family = AF_UNIX;
    name_.abstract = true;
    name_.path = name;
    name_.raw = std::string(reinterpret_cast<const char*>(&family), sizeof(family)) + name;
    Abstract()[{type_, name}] = weak_from_this();
    return Ok();
  }
  return Errno{ENOSPC};
}

Status UnixSocket::BindInetLocked(Name n, bool group) {
  n.inet = true;
  // The loopback addresses, the wildcard and the interfaces' addresses
  // are this sandbox's.
  if (!group && !IsAny(n.ip) && !IsLoopback(n.ip) &&
      (g_stack == nullptr || !g_stack->IsLocal(n.ip))) {
    return Errno{EADDRNOTAVAIL};
  }
  const Cover mine = CoverOf(domain_, n, v6only_);
  auto conflicts = [&](uint16_t port)
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) { return ConflictsLocked(port, mine); };
  if (n.port == 0) {
    static std::minstd_rand rng(static_cast<uint32_t>(absl::ToUnixNanos(absl::Now())));
    const int span = kEphemeralHigh - kEphemeralLow + 1;
    const int start = static_cast<int>(rng() % span);
    bool found = false;
    // A port no socket holds, and none in TIME_WAIT holds either, as
    // inet_csk_find_open_port looks for; failing that, one in TIME_WAIT is
    // taken again (as tcp_tw_reuse does on loopback).
    std::set<uint16_t> waiting;
    if (type_ == SOCK_STREAM) {
      const absl::Time now = absl::Now();
      for (const TimeWait& w : TimeWaits()) {
        if (w.until > now) waiting.insert(w.name.port);
      }
    }
    for (int pass = 0; pass < 2 && !found; pass++) {
      for (int i = 0; i < span && !found; i++) {
        const auto port = static_cast<uint16_t>(kEphemeralLow + (start + i) % span);
        if (InetPorts().find({space_, port}) != InetPorts().end()) continue;
        if (pass == 0 && waiting.count(port) != 0) continue;
        n.port = port;
        found = true;
      }
    }
    if (!found) return Errno{EADDRINUSE};
  } else if (conflicts(n.port)) {
    return Errno{EADDRINUSE};
  }
  name_ = n;
  InetPorts()[{space_, n.port}].push_back(weak_from_this());
  return Ok();
}

bool UnixSocket::ConflictsLocked(uint16_t port, const Cover& mine) {
  auto it = InetPorts().find({space_, port});
  if (it != InetPorts().end()) {
    for (const auto& w : it->second) {
      std::shared_ptr<UnixSocket> o = w.lock();
      if (o == nullptr || o.get() == this) continue;
      // ping_get_port: identifiers are one space for both families and
      // every address, shared while both sockets have SO_REUSEADDR.
      if (ping_) {
        if (reuseaddr_ && o->reuseaddr_) continue;
        return true;
      }
      if (!Overlaps(mine, CoverOf(o->domain_, o->name_, o->v6only_))) continue;
      // inet_csk_bind_conflict: SO_REUSEPORT on both shares; SO_REUSEADDR
      // on both shares unless the other listens (TCP).
      if (reuseport_ && o->reuseport_) continue;
      if (reuseaddr_ && o->reuseaddr_ && (type_ == SOCK_DGRAM || !o->listening_)) continue;
      return true;
    }
  }
  if (type_ != SOCK_STREAM) return false;
  const absl::Time now = absl::Now();
  std::erase_if(TimeWaits(), [&](const TimeWait& w) { return w.until <= now; });
  for (const TimeWait& w : TimeWaits()) {
    if (w.name.port != port || !Overlaps(mine, CoverOf(w.domain, w.name, false))) continue;
    if (!(reuseaddr_ && w.reuse)) return true;
  }
  return false;
}

bool UnixSocket::DeliverMulticastLocked(const std::array<uint8_t, 16>& group, uint16_t port,
                                        const Name& from, std::string_view data, int ttl,
                                        int ifindex,
                                        std::vector<std::shared_ptr<UnixSocket>>* keep) {
  auto it = InetPorts().find({SOCK_DGRAM, port});
  if (it == InetPorts().end()) return false;
  // IP_MULTICAST_ALL (on by default): a socket on the port hears a group
  // that some socket of the sandbox joined, member or not.
  const bool joined = JoinedGroups4().contains(group);
  bool any = false;
  for (const auto& w : it->second) {
    std::shared_ptr<UnixSocket> u = w.lock();
    if (u == nullptr) continue;
    keep->push_back(u);
    if (u->domain_ != AF_INET && u->domain_ != AF_INET6) continue;
    if (!u->groups_.contains(group) &&
        (!joined || u->IntOptionLocked(IPPROTO_IP, IP_MULTICAST_ALL, 1) == 0)) {
      continue;
    }
    if (!IsAny(u->name_.ip) && u->name_.ip != group) continue;
    any = true;
    Message m;
    m.data = std::string(data);
    m.to = group;
    m.ttl = ttl;
    m.ifindex = ifindex;
    u->QueueDatagramLocked(std::move(m), from);
  }
  return any;
}

bool UnixSocket::DeliverMulticast6Locked(const std::array<uint8_t, 16>& group, uint16_t port,
                                         const Name& from, std::string_view data, int hops,
                                         int tclass, int ifindex,
                                         std::vector<std::shared_ptr<UnixSocket>>* keep) {
  auto it = InetPorts().find({SOCK_DGRAM, port});
  if (it == InetPorts().end()) return false;
  static constexpr std::array<uint8_t, 16> kAny6{};
  bool any = false;
  for (const auto& w : it->second) {
    std::shared_ptr<UnixSocket> u = w.lock();
    if (u == nullptr) continue;
    keep->push_back(u);
    if (u->domain_ != AF_INET6 || (u->name_.ip != kAny6 && u->name_.ip != group)) continue;
    // __udp_v6_is_mcast_sock: a connected socket hears its peer alone.
    if (u->connected_ && (u->peer_name_.port != from.port ||
                          (!IsAny(u->peer_name_.ip) && u->peer_name_.ip != from.ip))) {
      continue;
    }
    const bool member = std::any_of(u->groups6_.begin(), u->groups6_.end(),
                                    [&](const Membership6& m) { return m.group == group; });
    if (!member && u->IntOptionLocked(IPPROTO_IPV6, IPV6_MULTICAST_ALL, 1) == 0) continue;
    any = true;
    Message m;
    m.data = std::string(data);
    m.to = group;
    m.ttl = hops;
    m.tos = tclass;
    m.ifindex = ifindex;
    u->QueueDatagramLocked(std::move(m), from);
  }
  return any;
}

int UnixSocket::GroupNicLocked(const std::array<uint8_t, 16>& group, uint32_t scope) const {
  int nic = NeedsScope6(group) && scope != 0 ? static_cast<int>(scope)
                                             : IntOptionLocked(IPPROTO_IPV6, IPV6_MULTICAST_IF, 0);
  if (g_stack == nullptr || g_stack->nics().empty()) return 0;
  if (nic == 0) nic = g_stack->nics().front().index;
  for (const netstack::Nic& n : g_stack->nics()) {
    if (n.index == nic) return nic;
  }
  return 0;
}

Result<size_t> UnixSocket::SendGroup6Locked(const Name& dst, int nic, std::string_view data,
                                            std::vector<std::shared_ptr<UnixSocket>>* members) {
  Name from = name_;
  if (PicksItsSource(from.ip)) {
    if (int e = g_stack->SourceOn(nic, dst.ip, &from.ip); e != 0) return Errno{e};
  }
  const int hops = IntOptionLocked(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 1);
  const int tclass = IntOptionLocked(IPPROTO_IPV6, IPV6_TCLASS, 0);
  // ip6_finish_output2 loops a copy back when the interface is in the
  // group; one from a loopback source would be dropped as a martian.
  if (IntOptionLocked(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1) != 0 && g_stack->InGroup(nic, dst.ip) &&
      !IsLoopback(from.ip)) {
    DeliverMulticast6Locked(dst.ip, dst.port, from, data, hops, tclass, nic, members);
  }
  netstack::UdpDatagram d;
  d.src = from.ip;
  d.dst = dst.ip;
  d.sport = name_.port;
  d.dport = dst.port;
  d.payload = netstack::Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  d.ttl = static_cast<uint8_t>(hops);
  d.tos = static_cast<uint8_t>(tclass);
  d.nic = nic;
  if (int e = g_stack->SendUdp(d, StackNow()); e != 0) return Errno{e};
  return data.size();
}

Status UnixSocket::Membership6Locked(int name, std::string_view value) {
  // ipv6_sock_mc_join and ipv6_sock_mc_drop. The stack's interface counts
  // the membership (and reports the group with MLD); delivery looks at it.
  if (value.size() < sizeof(ipv6_mreq)) return Errno{EINVAL};
  if (type_ != SOCK_DGRAM) return Errno{EPROTO};
  ipv6_mreq mreq;
  memcpy(&mreq, value.data(), sizeof(mreq));
  std::array<uint8_t, 16> group;
  memcpy(group.data(), &mreq.ipv6mr_multiaddr, 16);
  if (group[0] != 0xff) return Errno{EINVAL};
  const int ifindex = static_cast<int>(mreq.ipv6mr_interface);
  auto same = [&](const Membership6& m) {
    return (ifindex == 0 || m.ifindex == ifindex) && m.group == group;
  };
  if (name == IPV6_DROP_MEMBERSHIP) {
    auto it = std::find_if(groups6_.begin(), groups6_.end(), same);
    if (it == groups6_.end()) return Errno{EADDRNOTAVAIL};
    if (g_stack != nullptr && it->ifindex != 1) g_stack->LeaveGroup(it->ifindex, group);
    groups6_.erase(it);
    return Ok();
  }
  if (std::any_of(groups6_.begin(), groups6_.end(), same)) return Errno{EADDRINUSE};
  if (groups6_.size() >= kMaxMemberships6) return Errno{ENOMEM};
  // Interface 0: where the group's route leads, the stack's first
  // interface (loopback has no multicast route: ENODEV without one).
  int nic = ifindex;
  bool found = nic == 1;
  if (g_stack != nullptr) {
    for (const netstack::Nic& n : g_stack->nics()) {
      if (nic == 0) nic = n.index;
      found = found || n.index == nic;
    }
  }
  if (nic == 0 || !found) return Errno{ENODEV};
  groups6_.push_back({group, nic});
  if (nic != 1) g_stack->JoinGroup(nic, group);
  return Ok();
}

void UnixSocket::QueueDatagramLocked(Message m, const Name& from) {
  const size_t charge = m.data.size() + kMessageOverhead;
  if (queued_charge_ + charge > rcvbuf_ || (shutdown_ & kRcvShutdown)) {
    drops_++;
    return;
  }
  m.from = FormatInet(domain_, from);
  m.when = absl::Now();
  m.drops = drops_;
  m.receiver_charge = charge;
  queued_charge_ += charge;
  queued_bytes_ += m.data.size();
  queue_msgs_.push_back(std::move(m));
  queue_.Notify(POLLIN | POLLRDNORM);
}

std::shared_ptr<UnixSocket> UnixSocket::FindInet(int type, const std::array<uint8_t, 16>& dst,
                                                 uint16_t port, bool listener) {
  auto it = InetPorts().find({type, port});
  if (it == InetPorts().end()) return nullptr;
  std::shared_ptr<UnixSocket> wildcard;
  for (const auto& w : it->second) {
    std::shared_ptr<UnixSocket> o = w.lock();
    if (o == nullptr || (listener && !o->listening_)) continue;
    const Cover c = CoverOf(o->domain_, o->name_, o->v6only_);
    if (!Accepts(c, dst)) continue;
    if (!IsAny(o->name_.ip)) return o;
    if (wildcard == nullptr) wildcard = o;
  }
  return wildcard;
}

Status UnixSocket::AutobindInetLocked(const std::array<uint8_t, 16>& dst, bool wildcard) {
  std::array<uint8_t, 16> src = IsMapped(dst) ? V4(127, 0, 0, 1) : kIp6Loopback;
  if (!IsLoopback(dst) && g_stack != nullptr) {
    if (int e = g_stack->SourceFor(dst, &src); e != 0) return Errno{e};
  }
  if (name_.inet) {
    if (IsAny(name_.ip) && !wildcard) name_.ip = src;
    return Ok();
  }
  Name n;
  if (wildcard) {
    n.ip = domain_ == AF_INET ? V4(0, 0, 0, 0) : std::array<uint8_t, 16>{};
  } else {
    n.ip = src;
  }
  TRY(BindInetLocked(n));
  addr_locked_ = port_locked_ = false;  // picked here, not by bind(2)
  return Ok();
}

Status UnixSocket::Bind(Task& t, std::string_view addr) {
  if (HostConn() != nullptr) return Errno{EINVAL};
  if (inet()) {
    ASSIGN_OR_RETURN(Name n, ParseInet(domain_, addr, /*bind=*/true));
    SocketsLock l;
    if (domain_ == AF_INET6 && IsMapped(n.ip) && v6only_) return Errno{EINVAL};
    // A group's address, or IPv4's broadcast (inet_bind's RTN_MULTICAST and
    // RTN_BROADCAST); a group of link scope names its interface
    // (inet6_bind: EINVAL without a scope id, ENODEV for no interface).
    const bool group4 = IsMapped(n.ip) && (n.ip[12] & 0xf0) == 0xe0;
    const bool broadcast = IsMapped(n.ip) && (n.ip == V4(255, 255, 255, 255) ||
                                              (g_stack != nullptr && g_stack->IsBroadcast(n.ip)));
    // inet6_bind: no stream socket on a group.
    if (IsGroup6(n.ip) && type_ == SOCK_STREAM) return Errno{EINVAL};
    if (IsGroup6(n.ip) && NeedsScope6(n.ip)) {
      const uint32_t scope = ScopeIdOf(addr);
      if (scope == 0) return Errno{EINVAL};
      bool found = scope == 1;
      if (g_stack != nullptr) {
        for (const netstack::Nic& nic : g_stack->nics())
          found = found || nic.index == static_cast<int>(scope);
      }
      if (!found) return Errno{ENODEV};
    }
    if (name_.inet) return Errno{EINVAL};
    TRY(BindInetLocked(n, group4 || broadcast || IsGroup6(n.ip)));
    addr_locked_ = !IsAny(n.ip);
    port_locked_ = n.port != 0;
    return Ok();
  }
  if (addr.size() >= sizeof(sa_family_t)) {
    sa_family_t family;
    memcpy(&family, addr.data(), sizeof(family));
    if (family != AF_UNIX) return Errno{EINVAL};
  }
  if (addr.size() == sizeof(sa_family_t)) {
    SocketsLock l;
    if (!name_.raw.empty()) return Ok();  // unix_autobind: named already
    return AutobindLocked();
  }
  ASSIGN_OR_RETURN(Name n, ParseName(addr));
  {
    SocketsLock l;
    if (!name_.raw.empty()) return Errno{EINVAL};
    if (n.abstract) {
      if (auto it = Abstract().find({type_, n.path});
          it != Abstract().end() && !it->second.expired()) {
        return Errno{EADDRINUSE};
      }
      Abstract()[{type_, n.path}] = weak_from_this();
      name_ = std::move(n);
      return Ok();
    }
  }
  // A path: the node is made first (EADDRINUSE if the name exists).
  if (g_path_ops.make_node == nullptr) return Errno{EOPNOTSUPP};
  UniqueFd host;  // a read-write volume's: the host socket bound there
  // Counted among the sentry's host descriptors (ENFILE past its share).
  if (!AcquireHostDescriptor()) return Errno{ENFILE};
  Result<vfs::DentryRef> made = g_path_ops.make_node(t, n.path, type_, &host);
  if (!host.valid()) ReleaseHostDescriptor();
  if (!made.ok()) return Errno{made.error()};
  vfs::DentryRef node = std::move(made).value();
  Result<struct stat> st_or = node->inode()->Stat();
  SocketsLock l;
  if (!st_or.ok() || !name_.raw.empty()) {
    // Bound meanwhile by another thread (or the node went): the host
    // socket, if any, goes.
    if (host.valid()) ReleaseHostDescriptor();
    return Errno{st_or.ok() ? EINVAL : st_or.error()};
  }
  const struct stat st = *st_or;
  host_listener_ = std::move(host);
  if (HostDatagramsLocked()) {
    // Host processes' datagrams wait on the host socket; the host poller
    // says when (a blocking receive polls it itself).
    host_watched_ = WatchHostFd(host_listener_.get(), &queue_).ok();
  }
  node_ = std::move(node);
  node_key_ = {st.st_dev, st.st_ino};
  Nodes()[node_key_] = weak_from_this();
  name_ = std::move(n);
  return Ok();
}

Status UnixSocket::Listen(Task& t, int backlog) {
  if (HostConn() != nullptr) return Errno{EINVAL};
  SocketsLock l;
  if (type_ == SOCK_DGRAM) return Errno{EOPNOTSUPP};
  if (connected_) return Errno{EINVAL};
  if (inet() && !name_.inet) {
    // inet_listen: an unbound socket takes the wildcard and any port.
    Name any;
    any.ip = domain_ == AF_INET ? V4(0, 0, 0, 0) : std::array<uint8_t, 16>{};
    TRY(BindInetLocked(any));
  } else if (inet() && !listening_) {
    // inet_csk_get_port again: a port shared under SO_REUSEADDR cannot
    // take a second listener.
    if (ConflictsLocked(name_.port, CoverOf(domain_, name_, v6only_))) return Errno{EADDRINUSE};
  }
  if (!inet() && name_.raw.empty()) return Errno{EINVAL};  // unix_listen: not bound
  // listen(2): a backlog above somaxconn is cut to it; the queue holds one
  // more than the backlog (sk_ack_backlog > sk_max_ack_backlog is full).
  backlog_ = std::clamp(backlog, 0, kSomaxconn);
  listening_ = true;
  if (host_listener_.valid()) {
    // Host processes queue on the host socket; the host poller says when.
    if (listen(host_listener_.get(), std::max(backlog_, 1)) != 0) return Errno{errno};
    if (!host_watched_) {
      TRY(WatchHostFd(host_listener_.get(), &queue_));
      host_watched_ = true;
    }
  }
  if (g_stack != nullptr && type_ == SOCK_STREAM) {
    // Connections through the stack wait in a queue of their own.
    if (tcp_listener_ == nullptr) {
      tcp_listener_ = std::make_shared<netstack::TcpListener>();
      WaitQueue* q = &queue_;
      tcp_listener_->notify = [q] { q->Notify(POLLIN | POLLRDNORM); };
    }
    tcp_listener_->backlog = backlog_;
    tcp_listener_->settings = TcpSettingsLocked();
  }
  own_creds_ = CredsOf(t);
  queue_.Notify(~0U);
  return Ok();
}

Result<std::shared_ptr<UnixSocket>> UnixSocket::Lookup(Task& t, const Name& n) {
  if (n.abstract) {
    SocketsLock l;
    auto it = Abstract().find({type_, n.path});
    std::shared_ptr<UnixSocket> s = it == Abstract().end() ? nullptr : it->second.lock();
    if (s == nullptr) return Errno{ECONNREFUSED};
    return s;
  }
  if (g_path_ops.find_node == nullptr) return Errno{ECONNREFUSED};
  ASSIGN_OR_RETURN(vfs::DentryRef node, g_path_ops.find_node(t, n.path));
  ASSIGN_OR_RETURN(struct stat st, node->inode()->Stat());
  SocketsLock l;
  auto it = Nodes().find({st.st_dev, st.st_ino});
  std::shared_ptr<UnixSocket> s = it == Nodes().end() ? nullptr : it->second.lock();
  if (s == nullptr) return Errno{ECONNREFUSED};
  return s;
}

Status UnixSocket::Connect(Task& t, std::string_view addr) {
  if (HostConn() != nullptr) return Errno{EISCONN};
  if (inet() && type_ == SOCK_STREAM && addr.size() >= sizeof(sa_family_t)) {
    sa_family_t family;
    memcpy(&family, addr.data(), sizeof(family));
    if (family == AF_UNSPEC) {
      // tcp_disconnect: the connection is reset, and the socket may
      // connect again.
      std::shared_ptr<UnixSocket> old;
      std::deque<Message> gone;  // let go after the lock
      SocketsLock l;
      if (listening_) return Ok();
      if (tcp_ != nullptr) {
        tcp_->Close(/*linger_zero=*/true, StackNow());
        StackArmed(tcp_->Deadline());
        tcp_.reset();
      }
      old = peer_.lock();
      if (old != nullptr && old.get() != this) {
        old->error_ = ECONNRESET;
        old->reset_ = true;
        old->shutdown_ = kShutdownMask;
        old->queue_.Notify(~0U);
      }
      peer_.reset();
      connected_ = false;
      shutdown_ = 0;
      fin_sent_ = peer_fin_ = peer_gone_ = reset_ = false;
      error_ = 0;
      for (Message& m : queue_msgs_) Consumed(m);
      gone.swap(queue_msgs_);
      queued_bytes_ = 0;
      unread_bytes_ = 0;
      urgent_ = Urgent::kNone;  // the urgent mark went with the connection
      rcv_seq_ = copied_seq_ = 0;
      queue_.Notify(~0U);
      return Ok();
    }
  }
  if (type_ == SOCK_DGRAM && addr.size() >= sizeof(sa_family_t)) {
    sa_family_t family;
    memcpy(&family, addr.data(), sizeof(family));
    if (family == AF_UNSPEC) {
      // unix_dgram_connect: AF_UNSPEC dissolves the association.
      std::shared_ptr<UnixSocket> old;
      std::shared_ptr<Socket> old_host;
      SocketsLock l;
      old = peer_.lock();
      peer_.reset();
      connected_ = false;
      old_host = std::move(host_peer_);
      if (inet() && name_.inet) {
        // __udp_disconnect: what bind(2) did not choose goes.
        if (!port_locked_) {
          auto& v = InetPorts()[{space_, name_.port}];
          std::erase_if(v, [this](const std::weak_ptr<UnixSocket>& w) {
            return w.expired() || w.lock().get() == this;
          });
          if (v.empty()) InetPorts().erase({space_, name_.port});
          name_ = Name{};
        } else if (!addr_locked_) {
          name_.ip = domain_ == AF_INET ? V4(0, 0, 0, 0) : std::array<uint8_t, 16>{};
        }
      }
      return Ok();
    }
  }
  {
    SocketsLock l;
    // A listener: unix says EINVAL, TCP EISCONN.
    if (listening_) return Errno{inet() ? EISCONN : EINVAL};
  }
  if (inet()) return ConnectInet(t, addr);
  ASSIGN_OR_RETURN(Name n, ParseName(addr));
  Result<std::shared_ptr<UnixSocket>> found = Lookup(t, n);
  if (!found.ok() && found.error() == ECONNREFUSED && !n.abstract) {
    // No socket of the sandbox's there: perhaps a host process's, on a
    // read-write volume.
    return ConnectHost(t, n);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<UnixSocket> other, std::move(found));
  if (other->type_ != type_) return Errno{EPROTOTYPE};
  if (type_ == SOCK_DGRAM) {
    std::shared_ptr<UnixSocket> old;
    std::shared_ptr<UnixSocket> their;
    std::shared_ptr<Socket> old_host;
    SocketsLock l;
    // unix_may_send: a socket connected elsewhere (a host process's
    // socket too) hears its peer only.
    their = other->peer_.lock();
    if (other.get() != this && ((other->connected_ && their != nullptr && their.get() != this) ||
                                other->host_peer_ != nullptr)) {
      return Errno{EPERM};
    }
    if (passcred_ && name_.raw.empty()) TRY(AutobindLocked());
    old = peer_.lock();
    peer_ = other;
    connected_ = true;
    old_host = std::move(host_peer_);
    return Ok();
  }
  // Stream and seqpacket: a new socket joins the listener's queue at once
  // (unix_stream_connect); accept hands it out.
  const Credentials creds = CredsOf(t);
  std::shared_ptr<UnixSocket> embryo;
  {
    SocketsLock l;
    if (connected_) {
      return peer_.expired() && (shutdown_ == kShutdownMask) ? Errno{EINVAL} : Errno{EISCONN};
    }
  }
  auto inode = std::make_shared<SocketInode>(t.fsuid, t.fsgid);
  embryo = std::make_shared<UnixSocket>(inode, O_RDWR, type_);
  embryo->Register();
  SocketsLock l;
  for (;;) {
    if (connected_) return Errno{EISCONN};
    if (!other->listening_) return Errno{ECONNREFUSED};
    if (other->pending_.size() <= static_cast<size_t>(other->backlog_)) break;
    // The listener's queue is full: wait for an accept, unless O_NONBLOCK.
    if (flags() & O_NONBLOCK) return Errno{EAGAIN};
    other->queue_.Add(&t.waiter, ~0U);
    ReleaseSockets();
    Status s = t.Block();
    other->queue_.Remove(&t.waiter);
    TakeSockets();
    if (!s.ok()) return Errno{kERestartSys};
  }
  if (passcred_ && name_.raw.empty()) TRY(AutobindLocked());
  embryo->peer_ = weak_from_this();
  embryo->connected_ = true;
  embryo->embryo_ = true;
  embryo->name_ = other->name_;
  embryo->peercred_ = creds;
  embryo->passcred_ = other->passcred_;
  peer_ = embryo;
  connected_ = true;
  peercred_ = other->own_creds_;
  other->pending_.push_back(embryo);
  other->queue_.Notify(POLLIN | POLLRDNORM);
  queue_.Notify(~0U);
  return Ok();
}

Status UnixSocket::ConnectInet(Task& t, std::string_view addr) {
  ASSIGN_OR_RETURN(Name n, ParseInet(domain_, addr, /*bind=*/false));
  if (type_ == SOCK_DGRAM && domain_ == AF_INET6 && IsGroup6(n.ip)) {
    // A UDP socket connected to an IPv6 group (ip6_datagram_connect):
    // bound first; a group of link scope needs an interface, its scope id
    // or IPV6_MULTICAST_IF (EINVAL without); then a route to it, and the
    // address it leaves from becomes the socket's.
    std::shared_ptr<UnixSocket> old;
    SocketsLock l;
    if (!name_.inet) {
      Name any;
      TRY(BindInetLocked(any));
      addr_locked_ = port_locked_ = false;
    }
    const uint32_t scope = ScopeIdOf(addr);
    if (NeedsScope6(n.ip) && scope == 0 &&
        IntOptionLocked(IPPROTO_IPV6, IPV6_MULTICAST_IF, 0) == 0) {
      return Errno{EINVAL};
    }
    const int nic = GroupNicLocked(n.ip, scope);
    if (nic == 0) return Errno{ENETUNREACH};
    if (IsAny(name_.ip)) {
      std::array<uint8_t, 16> src;
      if (int e = g_stack->SourceOn(nic, n.ip, &src); e != 0) return Errno{e};
      name_.ip = src;
    }
    old = peer_.lock();
    peer_.reset();
    peer_name_ = n;
    peer_nic_ = nic;
    connected_ = true;
    error_ = 0;
    return Ok();
  }
  // Connecting to the wildcard reaches this host (loopback); nothing but
  // loopback is reachable from a sandbox without a network.
  if (IsAny(n.ip)) n.ip = IsMapped(n.ip) ? V4(127, 0, 0, 1) : kIp6Loopback;
  {
    SocketsLock l;
    if (domain_ == AF_INET6 && IsMapped(n.ip) && v6only_) return Errno{ENETUNREACH};
    if (!IsLoopback(n.ip)) {
      // Beyond loopback: the sandbox's stack, if it has interfaces.
      if (g_stack == nullptr) return Errno{ENETUNREACH};
      std::array<uint8_t, 16> src;
      if (int e = g_stack->SourceFor(n.ip, &src); e != 0) return Errno{e};
    }
  }
  if (!IsLoopback(n.ip) && type_ == SOCK_STREAM) return ConnectStack(t, n);
  if (type_ == SOCK_DGRAM) {
    std::shared_ptr<UnixSocket> old;
    SocketsLock l;
    TRY(AutobindInetLocked(n.ip));
    old = peer_.lock();
    peer_.reset();
    peer_name_ = n;
    connected_ = true;
    error_ = 0;
    return Ok();
  }
  auto embryo = std::make_shared<UnixSocket>(std::make_shared<SocketInode>(t.fsuid, t.fsgid),
                                             O_RDWR, type_, domain_);
  embryo->Register();
  SocketsLock l;
  if (connected_) return Errno{EISCONN};
  if (name_.inet && !listening_ && n.port == name_.port && (n.ip == name_.ip || IsAny(name_.ip)) &&
      FindInet(SOCK_STREAM, n.ip, n.port, /*listener=*/true) == nullptr) {
    // A socket connected to its own address: a simultaneous open with
    // itself, whose bytes come back to it.
    if (IsAny(name_.ip)) name_.ip = n.ip;
    peer_ = weak_from_this();
    peer_name_ = name_;
    connected_ = true;
    queue_.Notify(~0U);
    return Ok();
  }
  std::shared_ptr<UnixSocket> other = FindInet(SOCK_STREAM, n.ip, n.port, /*listener=*/true);
  if (other == nullptr) return Errno{ECONNREFUSED};
  embryo->domain_ = other->domain_;
  // An accepted socket starts with its listener's options (sk_clone).
  embryo->reuseaddr_ = other->reuseaddr_;
  embryo->options_ = other->options_;
  embryo->sndbuf_ = other->sndbuf_;
  embryo->rcvbuf_ = other->rcvbuf_;
  TRY(AutobindInetLocked(n.ip));
  peer_name_ = n;
  embryo->peer_name_ = name_;
  embryo->peer_ = weak_from_this();
  embryo->connected_ = true;
  embryo->embryo_ = true;
  embryo->name_ = n;  // the address the client reached
  embryo->name_.inet = true;
  embryo->peercred_ = CredsOf(t);
  peer_ = embryo;
  connected_ = true;
  peercred_ = other->own_creds_;
  other->pending_.push_back(std::move(embryo));
  other->queue_.Notify(POLLIN | POLLRDNORM);
  queue_.Notify(~0U);
  return Ok();
}

netstack::TcpSettings UnixSocket::TcpSettingsLocked() const {
  netstack::TcpSettings st;
  auto opt = [&](int level, int name, int dflt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    auto it = options_.find({level, name});
    if (it == options_.end() || it->second.size() < sizeof(int)) return dflt;
    int v;
    memcpy(&v, it->second.data(), sizeof(v));
    return v;
  };
  st.nodelay = opt(IPPROTO_TCP, TCP_NODELAY, 0) != 0;
  st.cork = opt(IPPROTO_TCP, TCP_CORK, 0) != 0;
  st.keepalive = opt(SOL_SOCKET, SO_KEEPALIVE, 0) != 0;
  st.keepidle = opt(IPPROTO_TCP, TCP_KEEPIDLE, 7200);
  st.keepintvl = opt(IPPROTO_TCP, TCP_KEEPINTVL, 75);
  st.keepcnt = opt(IPPROTO_TCP, TCP_KEEPCNT, 9);
  st.user_timeout_ms = static_cast<uint32_t>(opt(IPPROTO_TCP, TCP_USER_TIMEOUT, 0));
  if (int syn = opt(IPPROTO_TCP, TCP_SYNCNT, 0); syn > 0) st.syn_retries = syn;
  st.tos = static_cast<uint8_t>(opt(IPPROTO_IP, IP_TOS, 0));
  st.oobinline = opt(SOL_SOCKET, SO_OOBINLINE, 0) != 0;
  // Buffers set with SO_SNDBUF/SO_RCVBUF hold what was asked (half of the
  // doubled value is data, as Linux's tcp_adv_win_scale leaves it); unset,
  // they grow as Linux's autotuning would.
  if (sndbuf_ != kDefaultBuffer) st.sndbuf = sndbuf_;
  if (rcvbuf_ != kDefaultBuffer) st.rcvbuf = rcvbuf_ / 2;
  return st;
}

void UnixSocket::SyncTcpLocked() {
  if (tcp_ == nullptr) return;
  if (!connected_ && tcp_->Established()) {
    connected_ = true;
  } else if (!connected_ && tcp_->state() == netstack::TcpEndpoint::kClosed) {
    // A connect that failed: its error is the socket's, and the socket
    // may connect again.
    error_ = tcp_->TakeError();
    if (error_ == 0) error_ = ECONNREFUSED;
    tcp_->notify = nullptr;
    tcp_->on_urgent = nullptr;
    tcp_.reset();
  }
}

Status UnixSocket::ConnectStack(Task& t, const Name& to) {
  SocketsLock l;
  SyncTcpLocked();
  if (tcp_ != nullptr) return Errno{connected_ ? EISCONN : EALREADY};
  if (connected_) return Errno{EISCONN};
  if (error_ != 0 && !name_.inet) error_ = 0;
  if (g_stack == nullptr) return Errno{ENETUNREACH};
  TRY(AutobindInetLocked(to.ip));
  error_ = 0;
  peer_name_ = to;
  tcp_ = g_stack->Connect(name_.ip, name_.port, to.ip, to.port, TcpSettingsLocked(), StackNow());
  WatchTcpLocked();
  StackArmed(tcp_->Deadline());
  if (Nonblocking(0)) return Errno{EINPROGRESS};
  const absl::Time deadline = SocketDeadline(sndtimeo_);
  for (;;) {
    SyncTcpLocked();
    if (connected_) return Ok();
    if (tcp_ == nullptr) {
      const int e = error_;
      error_ = 0;
      return Errno{e};
    }
    // A signal leaves the connection going on (EINTR, then EALREADY).
    if (int e = Wait(t, deadline); e != 0) return Errno{e == kERestartSys ? EINTR : EINPROGRESS};
  }
}

Result<size_t> UnixSocket::SendTcp(Task& t, SendRequest& req) {
  size_t done = 0;
  const absl::Time deadline = SocketDeadline(sndtimeo_);
  for (;;) {
    SyncTcpLocked();
    if (tcp_ == nullptr) return Errno{EPIPE};
    if (tcp_->error() != 0) {
      if (done > 0) return done;
      // The reset is reported once (ECONNRESET), then EPIPE.
      const int e = tcp_->TakeError();
      return Errno{e == EPIPE ? EPIPE : e};
    }
    using netstack::TcpEndpoint;
    const TcpEndpoint::State st = tcp_->state();
    if ((shutdown_ & kSendShutdown) ||
        (st != TcpEndpoint::kEstablished && st != TcpEndpoint::kCloseWait &&
         st != TcpEndpoint::kSynSent && st != TcpEndpoint::kSynRecv)) {
      return done > 0 ? Result<size_t>(done) : Errno{EPIPE};
    }
    if (done == req.data.size()) return done;
    if (st == TcpEndpoint::kEstablished || st == TcpEndpoint::kCloseWait) {
      // MSG_OOB: the urgent pointer follows what this call queued, each
      // time it queues more (tcp_sendmsg's tcp_mark_urg).
      const size_t n =
          tcp_->Write(netstack::Bytes(reinterpret_cast<const uint8_t*>(req.data.data()) + done,
                                      req.data.size() - done),
                      StackNow(), (req.flags & MSG_OOB) != 0);
      StackArmed(tcp_->Deadline());
      done += n;
      if (done == req.data.size()) return done;
      if (n > 0) continue;
    }
    if (Nonblocking(req.flags)) return done > 0 ? Result<size_t>(done) : Errno{EAGAIN};
    if (int e = Wait(t, deadline); e != 0) return done > 0 ? Result<size_t>(done) : Errno{e};
  }
}

Result<Received> UnixSocket::ReceiveTcp(Task& t, size_t n, int flags) {
  Received r;
  const bool peek = (flags & MSG_PEEK) != 0;
  const bool waitall = (flags & MSG_WAITALL) && !peek;
  const absl::Time deadline = SocketDeadline(rcvtimeo_);
  if (flags & MSG_OOB) {
    // tcp_recv_urg: the urgent byte, once; EINVAL inline, without one or
    // after it was read; EAGAIN while it is on its way (never waits).
    using Urgent = netstack::TcpEndpoint::Urgent;
    SyncTcpLocked();
    if (tcp_ == nullptr) return Errno{ENOTCONN};
    const Urgent u = tcp_->urgent();
    if (IntOptionLocked(SOL_SOCKET, SO_OOBINLINE, 0) != 0 || u == Urgent::kNone ||
        u == Urgent::kRead) {
      return Errno{EINVAL};
    }
    // Closed without a FIN (reset, timed out): ENOTCONN.
    if (tcp_->state() == netstack::TcpEndpoint::kClosed && tcp_->reset()) return Errno{ENOTCONN};
    if (u == Urgent::kValid) {
      const uint8_t c = peek ? tcp_->urgent_byte() : tcp_->TakeUrgentByte();
      r.msg_flags |= MSG_OOB;
      if (n > 0) {
        if (!(flags & MSG_TRUNC)) r.data.assign(1, static_cast<char>(c));
        r.length = 1;
      } else {
        r.msg_flags |= MSG_TRUNC;
      }
      return r;
    }
    if (tcp_->ReadEof() || (shutdown_ & kRcvShutdown)) return r;
    return Errno{EAGAIN};
  }
  for (;;) {
    SyncTcpLocked();
    if (tcp_ == nullptr) return Errno{ENOTCONN};
    if (tcp_->Readable() > 0 && n > r.data.size()) {
      // tcp_recvmsg stops at the urgent mark once it has read something.
      if (!r.data.empty() && tcp_->AtUrgentMark()) break;
      tcp_->ReadAppend(&r.data, n - r.data.size(), peek, StackNow());
      StackArmed(tcp_->Deadline());
      if (!waitall || r.data.size() >= n || tcp_->AtUrgentMark()) break;
      continue;
    }
    const bool some = !r.data.empty();
    if (some && !waitall) break;
    if (tcp_->error() != 0) {
      if (some) break;
      return Errno{tcp_->TakeError()};
    }
    if (tcp_->ReadEof() || (shutdown_ & kRcvShutdown) || n == 0) break;
    if (tcp_->state() == netstack::TcpEndpoint::kClosed) break;
    if (Nonblocking(flags)) {
      if (some) break;
      return Errno{EAGAIN};
    }
    if (int e = Wait(t, deadline); e != 0) {
      if (some) break;
      return Errno{e};
    }
  }
  r.length = r.data.size();
  if (flags & MSG_TRUNC) r.data.clear();  // taken, not copied
  return r;
}

Status UnixSocket::ConnectHost(Task& t, const Name& n) {
  if (g_path_ops.find_node == nullptr) return Errno{ECONNREFUSED};
  ASSIGN_OR_RETURN(vfs::DentryRef node, g_path_ops.find_node(t, n.path));
  timeval rcv, snd;
  std::string local;
  {
    SocketsLock l;
    if ((connected_ && type_ != SOCK_DGRAM) || host_conn_ != nullptr) return Errno{EISCONN};
    if (listening_ && type_ != SOCK_DGRAM) return Errno{EINVAL};  // unix_stream_connect
    rcv = rcvtimeo_;
    snd = sndtimeo_;
    local = name_.raw;
  }
  const absl::Time deadline = SocketDeadline(snd);
  UniqueFd fd;
  for (;;) {
    Result<UniqueFd> c = node->inode()->ConnectHostSocket(type_);
    if (c.ok()) {
      fd = std::move(c).value();
      break;
    }
    // Nothing the host's: refused, as a node without a listener is.
    if (c.error() == EOPNOTSUPP) return Errno{ECONNREFUSED};
    // unix_wait_for_peer: a full backlog makes a blocking connect wait (the
    // gofer never waits: the sentry tries again shortly).
    if (c.error() != EAGAIN || Nonblocking(0)) return Errno{c.error()};
    Status s = t.Block(std::min(deadline, MonotonicNow() + absl::Milliseconds(20)));
    if (!s.ok() && s.error() != ETIMEDOUT) return Errno{kERestartSys};
    if (MonotonicNow() >= deadline) return Errno{EAGAIN};
  }
  if (local.empty()) {
    sa_family_t family = AF_UNIX;
    local = std::string(reinterpret_cast<const char*>(&family), sizeof(family));
  }
  ASSIGN_OR_RETURN(
      std::shared_ptr<Socket> h,
      NewHostUnixSocket(t, std::move(fd), type_, flags() & O_NONBLOCK, local, n.raw, &queue_));
  TRY(h->SetOption(t, SOL_SOCKET, SO_RCVTIMEO,
                   std::string_view(reinterpret_cast<const char*>(&rcv), sizeof(rcv))));
  TRY(h->SetOption(t, SOL_SOCKET, SO_SNDTIMEO,
                   std::string_view(reinterpret_cast<const char*>(&snd), sizeof(snd))));
  std::shared_ptr<UnixSocket> old;  // let go after the lock
  std::shared_ptr<Socket> old_host;
  SocketsLock l;
  if (type_ == SOCK_DGRAM) {
    // unix_dgram_connect: connected anew, leaving any earlier peer.
    old = peer_.lock();
    connected_ = false;
    peer_.reset();
    old_host = std::move(host_peer_);
    host_peer_ = std::move(h);
    return Ok();
  }
  if (host_conn_ != nullptr || connected_) return Errno{EISCONN};
  if (listening_) return Errno{EINVAL};
  host_conn_ = std::move(h);
  queue_.Notify(~0U);
  return Ok();
}

Result<size_t> UnixSocket::SendHostDatagram(Task& t, const Name& n, SendRequest& req) {
  // A host process is never given the sandbox's files.
  if (!req.fds.empty()) return Errno{EOPNOTSUPP};
  {
    SocketsLock l;
    if (shutdown_ & kSendShutdown) return Errno{EPIPE};
    if (req.data.size() > sndbuf_ - 32) return Errno{EMSGSIZE};
  }
  if (g_path_ops.find_node == nullptr) return Errno{ECONNREFUSED};
  ASSIGN_OR_RETURN(vfs::DentryRef node, g_path_ops.find_node(t, n.path));
  Result<UniqueFd> c = node->inode()->ConnectHostSocket(SOCK_DGRAM);
  // Nothing the host's (a node of the sandbox's own, or off a read-write
  // volume): refused, as a name nobody receives at is.
  if (!c.ok()) return Errno{c.error() == EOPNOTSUPP ? ECONNREFUSED : c.error()};
  timeval snd;
  std::string local;
  {
    SocketsLock l;
    if (shutdown_ & kSendShutdown) return Errno{EPIPE};
    snd = sndtimeo_;
    local = name_.raw;
  }
  if (local.empty()) {
    sa_family_t family = AF_UNIX;
    local = std::string(reinterpret_cast<const char*>(&family), sizeof(family));
  }
  // One host socket for the one datagram (blocking, when the host's
  // receiver is full, as this socket's flags and SO_SNDTIMEO say).
  ASSIGN_OR_RETURN(std::shared_ptr<Socket> h,
                   NewHostUnixSocket(t, std::move(c).value(), SOCK_DGRAM, flags() & O_NONBLOCK,
                                     local, n.raw, nullptr));
  TRY(h->SetOption(t, SOL_SOCKET, SO_SNDTIMEO,
                   std::string_view(reinterpret_cast<const char*>(&snd), sizeof(snd))));
  SendRequest one;
  one.data = req.data;
  one.flags = req.flags;
  return h->Send(t, one);
}

bool UnixSocket::TakeHostDatagramLocked(size_t n, int flags, Received* r) {
  const int fd = host_listener_.get();
  // The datagram's whole length sizes the buffer (one taken meanwhile by
  // another reader may be longer: it is cut, and says so).
  msghdr probe{};
  const ssize_t whole = recvmsg(fd, &probe, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
  if (whole < 0) return false;
  std::string buf(std::min(n, static_cast<size_t>(whole)), '\0');
  iovec iov{buf.data(), buf.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  // No room for control messages: descriptors a host process passes are
  // closed by the host's kernel (MSG_CTRUNC), never the sandbox's.
  const ssize_t k = recvmsg(fd, &m, MSG_DONTWAIT | MSG_TRUNC | (flags & MSG_PEEK));
  if (k < 0) return false;
  const size_t len = static_cast<size_t>(k);
  buf.resize(std::min(buf.size(), len));
  r->length = (flags & MSG_TRUNC) ? len : buf.size();
  if (len > buf.size()) r->msg_flags |= MSG_TRUNC;
  r->msg_flags |= m.msg_flags & MSG_CTRUNC;
  r->data = std::move(buf);
  // The sender's name is a host path, not the sandbox's to see: unnamed.
  // Its credentials, as Linux gives a sender outside the receiver's
  // namespaces: no pid, the overflow ids.
  sa_family_t family = AF_UNIX;
  r->from.assign(reinterpret_cast<const char*>(&family), sizeof(family));
  r->creds = Credentials{0, 65534, 65534};
  return true;
}

Result<vfs::FileRef> UnixSocket::Accept(Task& t, int flags, std::string* peer) {
  if (HostConn() != nullptr) return Errno{EINVAL};
  std::shared_ptr<UnixSocket> s;
  SocketsLock l;
  if (type_ == SOCK_DGRAM) return Errno{EOPNOTSUPP};
  if (!listening_) return Errno{EINVAL};
  const absl::Time deadline = SocketDeadline(rcvtimeo_);
  while (pending_.empty() && (tcp_listener_ == nullptr || tcp_listener_->ready.empty())) {
    if (host_listener_.valid()) {
      // A host process connected through the volume's name.
      const int fd = accept4(host_listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        sa_family_t family = AF_UNIX;
        *peer = std::string(reinterpret_cast<const char*>(&family), sizeof(family));
        ASSIGN_OR_RETURN(
            std::shared_ptr<Socket> h,
            NewHostUnixSocket(t, UniqueFd(fd), type_, flags & O_NONBLOCK, name_.raw, *peer));
        return vfs::FileRef(std::move(h));
      }
    }
    if (Nonblocking(0)) return Errno{EAGAIN};
    if (int e = Wait(t, deadline); e != 0) return Errno{e};
    if (!listening_) return Errno{EINVAL};
  }
  if (pending_.empty()) {
    // A connection through the stack: a socket is made for it now.
    std::shared_ptr<netstack::TcpEndpoint> ep = std::move(tcp_listener_->ready.front());
    tcp_listener_->ready.pop_front();
    s = std::make_shared<UnixSocket>(std::make_shared<SocketInode>(t.fsuid, t.fsgid),
                                     flags & O_NONBLOCK, type_, domain_);
    All()[s.get()] = s;
    s->reuseaddr_ = reuseaddr_;
    s->options_ = options_;
    s->sndbuf_ = sndbuf_;
    s->rcvbuf_ = rcvbuf_;
    s->name_.inet = true;
    s->name_.ip = ep->local();
    s->name_.port = ep->lport();
    s->peer_name_.inet = true;
    s->peer_name_.ip = ep->remote();
    s->peer_name_.port = ep->rport();
    s->connected_ = true;
    s->tcp_ = std::move(ep);
    s->WatchTcpLocked();
    *peer = FormatInet(domain_, s->peer_name_);
    return vfs::FileRef(s);
  }
  s = std::move(pending_.front());
  pending_.pop_front();
  s->embryo_ = false;
  s->set_status_flags(O_RDWR | (flags & O_NONBLOCK));
  if (std::shared_ptr<UnixSocket> client = s->peer_.lock()) {
    *peer = s->RawName(client->name_);
  }
  if (peer->empty()) {
    sa_family_t family = AF_UNIX;
    *peer = std::string(reinterpret_cast<const char*>(&family), sizeof(family));
  }
  queue_.Notify(POLLOUT);
  return vfs::FileRef(s);
}

Result<size_t> UnixSocket::Send(Task& t, SendRequest& req) {
  if (std::shared_ptr<Socket> h = HostConn()) return h->Send(t, req);
  if (type_ == SOCK_DGRAM && req.to.empty() && !inet()) {
    // Connected to a host process's socket: the datagram goes there.
    std::shared_ptr<Socket> hp;
    {
      SocketsLock l;
      if (host_peer_ != nullptr) host_peer_->set_status_flags(flags());
      hp = host_peer_;
    }
    if (hp != nullptr) {
      if (!req.fds.empty()) return Errno{EOPNOTSUPP};  // never the host's
      return hp->Send(t, req);
    }
  }
  // Only unix sockets carry descriptors and credentials: an inet socket
  // sends the bytes without them.
  if (inet()) {
    req.fds.clear();
    req.creds.reset();
  }
  if (!req.fds.empty()) {
    const rlim_t limit = std::min<rlim_t>(t.tg().rlimits[RLIMIT_NOFILE].rlim_cur, 1 << 20);
    if (g_files_in_flight + req.fds.size() > limit) return Errno{ETOOMANYREFS};
  }
  if (type_ == SOCK_STREAM) return SendStream(t, req);
  return inet() ? SendInetDatagram(t, req) : SendDatagram(t, req);
}

Result<size_t> UnixSocket::SendPing(Task& t, SendRequest& req) {
  Name dst;
  if (!req.to.empty()) {
    // ping_v6_sendmsg: a whole sockaddr_in6 (EINVAL), of its family.
    if (domain_ == AF_INET6 && req.to.size() < sizeof(sockaddr_in6)) return Errno{EINVAL};
    ASSIGN_OR_RETURN(dst, ParseInet(domain_, req.to, /*bind=*/false));
    if (IsAny(dst.ip) && domain_ == AF_INET) dst.ip = V4(127, 0, 0, 1);
  }
  // ping_v4_sendmsg and ping_v6_sendmsg: an echo request (ICMP type 8,
  // ICMPv6 type 128; code 0) of 8 bytes or more.
  const bool v6 = domain_ == AF_INET6;
  if (req.data.size() < 8 || req.data.size() > 65507) {
    return Errno{req.data.size() < 8 ? EINVAL : EMSGSIZE};
  }
  if (static_cast<uint8_t>(req.data[0]) != (v6 ? 128 : 8) || req.data[1] != 0) {
    return Errno{EINVAL};
  }
  SocketsLock l;
  if (req.to.empty()) {
    if (!connected_) return Errno{EDESTADDRREQ};
    dst = peer_name_;
  }
  if (v6 && IsAny(dst.ip)) dst.ip[15] = 1;  // ::, as 0.0.0.0 is, is this host
  if (IsMapped(dst.ip) == v6) return Errno{v6 ? EINVAL : EAFNOSUPPORT};
  if (!IsLoopback(dst.ip) && g_stack == nullptr) return Errno{ENETUNREACH};
  TRY(AutobindInetLocked(dst.ip, /*wildcard=*/true));
  // The identifier is the socket's "port"; the checksum is made here.
  std::string echo(req.data);
  auto* p = reinterpret_cast<uint8_t*>(echo.data());
  netstack::Store16(p + 4, name_.port);
  netstack::Store16(p + 2, 0);
  if (!v6) netstack::Store16(p + 2, netstack::Fold(netstack::Sum(netstack::Bytes(p, echo.size()))));
  const bool local = IsLoopback(dst.ip) || g_stack->IsLocal(dst.ip);
  if (!local) {
    std::array<uint8_t, 16> src = name_.ip;
    if (PicksItsSource(src)) {
      if (int e = g_stack->SourceFor(dst.ip, &src); e != 0) return Errno{e};
    }
    const int ttl = v6 ? IntOptionLocked(IPPROTO_IPV6, IPV6_UNICAST_HOPS, 64)
                       : IntOptionLocked(IPPROTO_IP, IP_TTL, 64);
    if (int e = g_stack->SendIcmp(src, dst.ip, netstack::Bytes(p, echo.size()),
                                  static_cast<uint8_t>(ttl), StackNow());
        e != 0) {
      return Errno{e};
    }
    StackArmed(StackNow());  // an address to resolve has a timer
    return req.data.size();
  }
  // This sandbox's own address answers at once.
  Message m;
  m.to = IsAny(name_.ip) ? dst.ip : name_.ip;
  p[0] = v6 ? 129 : 0;  // ICMPV6_ECHO_REPLY, ICMP_ECHOREPLY
  netstack::Store16(p + 2, 0);
  const netstack::Bytes reply(p, echo.size());
  netstack::Store16(
      p + 2, netstack::Fold(v6 ? netstack::Sum(reply, netstack::PseudoSumFor(
                                                          dst.ip, m.to, netstack::kProtoIcmp6,
                                                          static_cast<uint32_t>(echo.size())))
                               : netstack::Sum(reply)));
  m.data = std::move(echo);
  m.ttl = v6 ? IntOptionLocked(IPPROTO_IPV6, IPV6_UNICAST_HOPS, 64)
             : IntOptionLocked(IPPROTO_IP, IP_TTL, 64);
  Name from;
  from.inet = true;
  from.ip = dst.ip;
  QueueDatagramLocked(std::move(m), from);
  return req.data.size();
}

Result<size_t> UnixSocket::SendInetDatagram(Task& t, SendRequest& req) {
  if (ping_) return SendPing(t, req);
  Name dst;
  if (!req.to.empty()) {
    ASSIGN_OR_RETURN(dst, ParseInet(domain_, req.to, /*bind=*/false));
    if (IsAny(dst.ip)) dst.ip = IsMapped(dst.ip) ? V4(127, 0, 0, 1) : kIp6Loopback;
  }
  // The largest UDP payload over IPv4, and over IPv6.
  const size_t max = domain_ == AF_INET || IsMapped(dst.ip) ? 65507 : 65527;
  std::shared_ptr<UnixSocket> target;
  std::vector<std::shared_ptr<UnixSocket>> members;  // let go after the lock
  SocketsLock l;
  if (req.to.empty()) {
    if (!connected_) return Errno{EDESTADDRREQ};
    dst = peer_name_;
  }
  if (connected_ && error_ != 0) {
    // An earlier datagram's ICMP error reaches the next call.
    const int e = error_;
    error_ = 0;
    return Errno{e};
  }
  if (shutdown_ & kSendShutdown) return Errno{EPIPE};
  if (req.data.size() > max) return Errno{EMSGSIZE};
  if (domain_ == AF_INET6 && v6only_ && IsMapped(dst.ip)) return Errno{ENETUNREACH};
  if (IsGroup6(dst.ip)) {
    // An IPv6 group: the socket is bound (the wildcard) before its route
    // is looked for, as udpv6_sendmsg's autobind comes first.
    if (!name_.inet) {
      Name any;
      TRY(BindInetLocked(any));
      addr_locked_ = port_locked_ = false;
    }
    const int nic = req.to.empty() ? peer_nic_ : GroupNicLocked(dst.ip, ScopeIdOf(req.to));
    if (nic == 0) return Errno{ENETUNREACH};
    return SendGroup6Locked(dst, nic, std::string_view(req.data.data(), req.data.size()), &members);
  }
  if (IsMapped(dst.ip) && (dst.ip[12] & 0xf0) == 0xe0 && MulticastIfLoopbackLocked()) {
    // An IPv4 group through loopback (IP_MULTICAST_IF 127.0.0.1): the
    // datagram comes back in at once, to the members on the port (and,
    // with IP_MULTICAST_ALL, every socket there while someone is in the
    // group), IP_MULTICAST_LOOP or not.
    TRY(AutobindInetLocked(dst.ip, /*wildcard=*/!connected_));
    Name from = name_;
    if (PicksItsSource(from.ip)) from.ip = V4(127, 0, 0, 1);
    DeliverMulticastLocked(dst.ip, dst.port, from,
                           std::string_view(req.data.data(), req.data.size()),
                           IntOptionLocked(IPPROTO_IP, IP_MULTICAST_TTL, 1), 1, &members);
    return req.data.size();
  }
  if (!IsLoopback(dst.ip) && g_stack == nullptr) return Errno{ENETUNREACH};
  // A first sendto binds the wildcard and a port (inet_autobind).
  TRY(AutobindInetLocked(dst.ip, /*wildcard=*/!connected_));
  if (IsMapped(dst.ip) && (dst.ip[12] & 0xf0) == 0xe0) {
    // A multicast group: the sandbox's own members hear it first
    // (IP_MULTICAST_LOOP), then it goes out with IP_MULTICAST_TTL.
    Name from = name_;
    if (PicksItsSource(from.ip)) {
      if (int e = g_stack->SourceFor(dst.ip, &from.ip); e != 0) return Errno{e};
    }
    if (IntOptionLocked(IPPROTO_IP, IP_MULTICAST_LOOP, 1) != 0) {
      DeliverMulticastLocked(dst.ip, dst.port, from,
                             std::string_view(req.data.data(), req.data.size()),
                             IntOptionLocked(IPPROTO_IP, IP_MULTICAST_TTL, 1), 1, &members);
    }
    netstack::UdpDatagram d;
    d.src = from.ip;
    d.dst = dst.ip;
    d.sport = name_.port;
    d.dport = dst.port;
    d.payload = netstack::Bytes(reinterpret_cast<const uint8_t*>(req.data.data()), req.data.size());
    d.ttl = static_cast<uint8_t>(IntOptionLocked(IPPROTO_IP, IP_MULTICAST_TTL, 1));
    if (int e = g_stack->SendUdp(d, StackNow()); e != 0) return Errno{e};
    return req.data.size();
  }
  if (!IsLoopback(dst.ip) && !g_stack->IsLocal(dst.ip)) {
    // Out through the sandbox's interfaces; a broadcast wants SO_BROADCAST.
    if (g_stack->IsBroadcast(dst.ip) && IntOptionLocked(SOL_SOCKET, SO_BROADCAST, 0) == 0) {
      return Errno{EACCES};
    }
    netstack::UdpDatagram d;
    d.src = name_.ip;
    // Bound to a group or a broadcast address, the source is the route's
    // (Linux's inet_saddr stays 0 for such a bind).
    if (PicksItsSource(d.src)) {
      if (int e = g_stack->SourceFor(dst.ip, &d.src); e != 0) return Errno{e};
    }
    d.dst = dst.ip;
    d.sport = name_.port;
    d.dport = dst.port;
    d.payload = netstack::Bytes(reinterpret_cast<const uint8_t*>(req.data.data()), req.data.size());
    d.tos = static_cast<uint8_t>(TcpSettingsLocked().tos);
    if (int e = g_stack->SendUdp(d, StackNow()); e != 0) return Errno{e};
    StackArmed(StackNow());  // an address to resolve has a timer
    return req.data.size();
  }
  Name src = name_;
  if (PicksItsSource(src.ip)) src.ip = IsMapped(dst.ip) ? V4(127, 0, 0, 1) : kIp6Loopback;
  target = FindInet(SOCK_DGRAM, dst.ip, dst.port, /*listener=*/false);
  // A connected socket takes datagrams from its peer only.
  if (target != nullptr && target->connected_ &&
      (target->peer_name_.port != src.port || target->peer_name_.ip != src.ip)) {
    target = nullptr;
  }
  if (target == nullptr) {
    // Nobody listens there: the datagram is lost, and a connected sender
    // hears of it (ICMP port unreachable) on its next call.
    if (connected_) {
      error_ = ECONNREFUSED;
      queue_.Notify(POLLERR);
    }
    return req.data.size();
  }
  Message m;
  m.data = std::string(req.data);
  m.to = dst.ip;
  m.ttl = IsMapped(dst.ip) ? IntOptionLocked(IPPROTO_IP, IP_TTL, 64)
                           : IntOptionLocked(IPPROTO_IPV6, IPV6_UNICAST_HOPS, 64);
  m.tos = IsMapped(dst.ip) ? IntOptionLocked(IPPROTO_IP, IP_TOS, 0)
                           : IntOptionLocked(IPPROTO_IPV6, IPV6_TCLASS, 0);
  target->QueueDatagramLocked(std::move(m), src);
  return req.data.size();
}

Result<size_t> UnixSocket::SendStream(Task& t, SendRequest& req) {
  const Credentials creds = req.creds.value_or(CredsOf(t));
  std::shared_ptr<UnixSocket> peer;
  size_t done = 0;
  SocketsLock l;
  SyncTcpLocked();
  if (tcp_ != nullptr) return SendTcp(t, req);
  if (inet()) {
    req.to.clear();  // tcp_sendmsg: a connection's address is its own
  } else if (!req.to.empty()) {
    return Errno{connected_ ? EISCONN : EOPNOTSUPP};
  }
  const absl::Time deadline = SocketDeadline(sndtimeo_);
  for (;;) {
    if (shutdown_ & kSendShutdown) return done > 0 ? Result<size_t>(done) : Errno{EPIPE};
    if (!connected_) return Errno{inet() ? EPIPE : ENOTCONN};  // tcp_sendmsg: EPIPE
    peer = peer_.lock();
    if (inet() && peer == nullptr && peer_gone_ && !reset_) {
      // The peer closed: what is sent now meets its reset (tcp_reset in
      // CLOSE_WAIT: EPIPE), after being taken.
      reset_ = true;
      error_ = EPIPE;
      shutdown_ = kShutdownMask;
      queue_.Notify(~0U);
      return req.data.size();
    }
    // A TCP peer that shut its reading side still takes data.
    if (peer == nullptr || (!inet() && (peer->shutdown_ & kRcvShutdown))) {
      return done > 0 ? Result<size_t>(done) : Errno{EPIPE};
    }
    if (done == req.data.size()) return done;  // a zero-length send sends nothing
    if (Writable()) {
      // unix_stream_sendmsg: pieces of at most half the send buffer.
      const size_t piece = std::min(req.data.size() - done, std::max<size_t>(sndbuf_ / 2 - 64, 1));
      Message m;
      m.data = std::string(req.data.substr(done, piece));
      // MSG_OOB: the send's last byte is urgent.
      if (inet() && (req.flags & MSG_OOB) && done + piece == req.data.size()) {
        peer->UrgentArrivedLocked(&m.data);
      }
      m.fds = InFlight(std::move(req.fds));
      req.fds.clear();
      m.creds = creds;
      m.sender = weak_from_this();
      m.charge = m.data.size() + kMessageOverhead;
      peer->rcv_seq_ += m.data.size();
      done += piece;
      if (m.data.empty() && m.fds.empty()) {
        // The urgent byte alone, out of the stream.
        if (done == req.data.size()) return done;
        continue;
      }
      inflight_ += m.charge;
      if (inet()) unread_bytes_ += m.data.size();
      peer->queued_bytes_ += m.data.size();
      peer->queue_msgs_.push_back(std::move(m));
      peer->queue_.Notify(POLLIN | POLLRDNORM);
      if (done == req.data.size()) return done;
      continue;
    }
    if (Nonblocking(req.flags)) return done > 0 ? Result<size_t>(done) : Errno{EAGAIN};
    if (int e = Wait(t, deadline, &peer); e != 0) {
      return done > 0 ? Result<size_t>(done) : Errno{e};
    }
  }
}

Result<size_t> UnixSocket::SendDatagram(Task& t, SendRequest& req) {
  const Credentials creds = req.creds.value_or(CredsOf(t));
  std::shared_ptr<UnixSocket> peer;
  std::shared_ptr<UnixSocket> their;  // the peer's peer: let go after the lock
  if (type_ == SOCK_SEQPACKET) {
    SocketsLock l;
    if (!connected_) return Errno{ENOTCONN};
    if (shutdown_ & kSendShutdown) return Errno{EPIPE};
    peer = peer_.lock();
    if (peer == nullptr || (peer->shutdown_ & kRcvShutdown)) return Errno{EPIPE};
  } else if (!req.to.empty()) {
    ASSIGN_OR_RETURN(Name n, ParseName(req.to));
    Result<std::shared_ptr<UnixSocket>> found = Lookup(t, n);
    if (!found.ok() && found.error() == ECONNREFUSED && !n.abstract) {
      return SendHostDatagram(t, n, req);
    }
    ASSIGN_OR_RETURN(peer, std::move(found));
  } else {
    SocketsLock l;
    if (!connected_) return Errno{ENOTCONN};
    peer = peer_.lock();
    if (peer == nullptr) {
      // The peer went: this send says so, and the socket is unconnected.
      connected_ = false;
      peer_.reset();
      return Errno{ECONNREFUSED};
    }
  }
  SocketsLock l;
  if (type_ == SOCK_DGRAM) {
    if (peer->type_ != SOCK_DGRAM) return Errno{EPROTOTYPE};
    if (shutdown_ & kSendShutdown) return Errno{EPIPE};
    if (req.data.size() > sndbuf_ - 32) return Errno{EMSGSIZE};
    // A socket connected elsewhere (a host process's socket too) takes
    // datagrams from its peer only.
    their = peer->peer_.lock();
    if ((their != nullptr && their.get() != this && peer->connected_) ||
        peer->host_peer_ != nullptr) {
      return Errno{EPERM};
    }
    if (passcred_ && name_.raw.empty()) TRY(AutobindLocked());
  } else if (req.data.size() > sndbuf_ - 32) {
    return Errno{EMSGSIZE};
  }
  const absl::Time deadline = SocketDeadline(sndtimeo_);
  for (;;) {
    if (peer->shutdown_ & kRcvShutdown) return Errno{EPIPE};
    const bool queue_full = type_ == SOCK_DGRAM && peer->queue_msgs_.size() > kMaxDatagramQueue;
    if (!queue_full && Writable()) break;
    if (Nonblocking(req.flags)) return Errno{EAGAIN};
    // Wakes come on the receiver's queue (it read) or ours (freed bytes).
    peer->queue_.Add(&t.waiter, ~0U);
    queue_.Add(&t.waiter, ~0U);
    ReleaseSockets();
    Status s = t.Block(deadline);
    peer->queue_.Remove(&t.waiter);
    queue_.Remove(&t.waiter);
    TakeSockets();
    if (!s.ok()) return Errno{s.error() == ETIMEDOUT ? EAGAIN : kERestartSys};
  }
  Message m;
  m.data = std::string(req.data);
  m.fds = InFlight(std::move(req.fds));
  m.creds = creds;
  m.from = name_.raw;
  m.sender = weak_from_this();
  m.charge = m.data.size() + kMessageOverhead;
  inflight_ += m.charge;
  peer->queued_bytes_ += m.data.size();
  peer->queue_msgs_.push_back(std::move(m));
  peer->queue_.Notify(POLLIN | POLLRDNORM);
  return req.data.size();
}

void UnixSocket::TakeStream(size_t n, int flags, Received* r, std::deque<Message>* gone) {
  const bool peek = flags & MSG_PEEK;
  const size_t before = r->data.size();
  // SO_PEEK_OFF: a peek starts that far in (unix_stream_read_generic's skip).
  size_t skip = peek && peek_off_ > 0 ? static_cast<size_t>(peek_off_) : 0;
  size_t at = 0;  // with MSG_PEEK, the message looked at
  while (r->data.size() < n && at < queue_msgs_.size()) {
    // Files already taken end the read.
    if (!r->fds.empty()) break;
    Message& m = queue_msgs_[at];
    if (skip >= m.left()) {
      skip -= m.left();
      at++;
      continue;
    }
    size_t k = std::min(n - r->data.size(), m.left() - skip);
    if (urgent_ != Urgent::kNone) {
      // A read stops at the urgent mark, once it has taken something
      // (tcp_recvmsg's "stop at urgent data").
      const uint64_t pos = copied_seq_ + (r->data.size() - before);
      if (pos == urgent_mark_ && r->data.size() > before) break;
      if (pos < urgent_mark_) k = std::min<uint64_t>(k, urgent_mark_ - pos);
    }
    r->data.append(m.data, m.off + skip, k);
    skip = 0;
    if (!r->creds.has_value()) r->creds = m.creds;
    const bool had_fds = !m.fds.empty();
    if (had_fds && !peek) r->fds = m.fds.Take();
    if (peek) {
      at++;
    } else {
      m.off += k;
      queued_bytes_ -= k;
      // The bytes read free the sender's buffer; the message's overhead
      // goes with its last byte.
      const size_t freed = m.left() == 0 ? m.charge : std::min(k, m.charge);
      m.charge -= freed;
      if (std::shared_ptr<UnixSocket> s = m.sender.lock()) {
        s->inflight_ -= std::min(s->inflight_, freed);
        if (s->inet()) s->unread_bytes_ -= std::min(s->unread_bytes_, k);
        s->queue_.Notify(POLLOUT | POLLWRNORM);
      }
      if (m.left() == 0) {
        m.data.clear();
        m.sender.reset();
        gone->push_back(std::move(m));
        queue_msgs_.pop_front();
      }
    }
    // A message carrying files ends the read (unix_stream_read_generic).
    if (had_fds) break;
  }
  r->length = r->data.size();
  if (!peek) {
    copied_seq_ += r->data.size() - before;
    if (urgent_ != Urgent::kNone && copied_seq_ > urgent_mark_) urgent_ = Urgent::kNone;
  }
  // sk_peek_offset_fwd and _bwd: a peek moves the offset on, a read back.
  if (peek_off_ >= 0) {
    const int took = static_cast<int>(r->data.size() - before);
    peek_off_ = peek ? peek_off_ + took : std::max(0, peek_off_ - took);
  }
}

void UnixSocket::InetControlLocked(const Message& m, Received* r) {
  auto add = [&](int level, int type, const void* p, size_t n) {
    r->control.push_back({level, type, std::string(static_cast<const char*>(p), n)});
  };
  auto on = [&](int level, int name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    return IntOptionLocked(level, name, 0) != 0;
  };
  const int64_t ns = absl::ToUnixNanos(m.when);
  if (on(SOL_SOCKET, SO_TIMESTAMPNS)) {
    const timespec ts{ns / 1000000000, ns % 1000000000};
    add(SOL_SOCKET, SCM_TIMESTAMPNS, &ts, sizeof(ts));
  } else if (on(SOL_SOCKET, SO_TIMESTAMP)) {
    const timeval tv{ns / 1000000000, (ns % 1000000000) / 1000};
    add(SOL_SOCKET, SCM_TIMESTAMP, &tv, sizeof(tv));
  }
  if (on(SOL_SOCKET, SO_RXQ_OVFL) && m.drops != 0) add(SOL_SOCKET, SO_RXQ_OVFL, &m.drops, 4);
  const bool v4 = IsMapped(m.to);
  if (domain_ == AF_INET && v4) {
    if (on(IPPROTO_IP, IP_PKTINFO)) {
      in_pktinfo pi{};
      pi.ipi_ifindex = m.ifindex;
      memcpy(&pi.ipi_spec_dst, m.to.data() + 12, 4);
      memcpy(&pi.ipi_addr, m.to.data() + 12, 4);
      add(IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
    }
    if (on(IPPROTO_IP, IP_RECVTTL)) add(IPPROTO_IP, IP_TTL, &m.ttl, sizeof(int));
    if (on(IPPROTO_IP, IP_RECVTOS)) {
      const auto tos = static_cast<uint8_t>(m.tos);
      add(IPPROTO_IP, IP_TOS, &tos, 1);
    }
  }
  if (domain_ == AF_INET6) {
    if (on(IPPROTO_IPV6, IPV6_RECVPKTINFO)) {
      in6_pktinfo pi{};
      memcpy(&pi.ipi6_addr, m.to.data(), 16);
      pi.ipi6_ifindex = static_cast<unsigned>(m.ifindex);
      add(IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
    }
    if (on(IPPROTO_IPV6, IPV6_RECVHOPLIMIT)) add(IPPROTO_IPV6, IPV6_HOPLIMIT, &m.ttl, sizeof(int));
    if (on(IPPROTO_IPV6, IPV6_RECVTCLASS)) add(IPPROTO_IPV6, IPV6_TCLASS, &m.tos, sizeof(int));
  }
}

void UnixSocket::TakeMessage(size_t n, int flags, Received* r, std::deque<Message>* gone) {
  Message& m = queue_msgs_.front();
  const size_t k = std::min(n, m.data.size());
  r->data.assign(m.data, 0, k);
  // ping_recvmsg returns what it copied, MSG_TRUNC or not.
  r->length = (flags & MSG_TRUNC) && !ping_ ? m.data.size() : k;
  if (k < m.data.size()) r->msg_flags |= MSG_TRUNC;
  r->creds = m.creds;
  r->from = m.from;
  if (inet()) InetControlLocked(m, r);
  if (flags & MSG_PEEK) return;
  r->fds = m.fds.Take();
  queued_bytes_ -= m.data.size();
  queued_charge_ -= std::min(queued_charge_, m.receiver_charge);
  Consumed(m);
  m.sender.reset();
  gone->push_back(std::move(m));
  queue_msgs_.pop_front();
}

Result<Received> UnixSocket::Receive(Task& t, size_t n, int flags) {
  if (std::shared_ptr<Socket> h = HostConn()) return h->Receive(t, n, flags);
  // ip_recv_error: no ICMP errors are queued for reading (IP_RECVERR).
  if (inet() && (flags & MSG_ERRQUEUE)) return Errno{EAGAIN};
  Received r;
  std::deque<Message> gone;  // let go after the lock
  {
    SocketsLock l;
    SyncTcpLocked();
    if (tcp_ != nullptr) return ReceiveTcp(t, n, flags);
    // unix_stream_read_generic: EINVAL unless connected (a listener too);
    // unix_seqpacket_recvmsg: ENOTCONN.
    if (type_ == SOCK_STREAM && !connected_) return Errno{inet() ? ENOTCONN : EINVAL};
    if (type_ == SOCK_SEQPACKET && !connected_) return Errno{ENOTCONN};
    if (inet() && type_ == SOCK_STREAM && (flags & MSG_OOB)) return ReceiveUrgentLocked(flags);
    const bool waitall = type_ == SOCK_STREAM && (flags & MSG_WAITALL) && !(flags & MSG_PEEK);
    const absl::Time deadline = SocketDeadline(rcvtimeo_);
    bool took = false;
    for (;;) {
      // SO_PEEK_OFF at or past what is queued: nothing to peek yet, as an
      // empty queue (wait, or EAGAIN).
      const bool peek_past = type_ == SOCK_STREAM && (flags & MSG_PEEK) && peek_off_ > 0 &&
                             static_cast<size_t>(peek_off_) >= queued_bytes_;
      if (!queue_msgs_.empty() && !peek_past) {
        took = true;
        if (type_ != SOCK_STREAM) {
          TakeMessage(n, flags, &r, &gone);
          break;
        }
        const size_t before = r.data.size();
        TakeStream(n, flags, &r, &gone);
        // MSG_WAITALL: on until n bytes, files, the end, or a signal; a
        // message with files waiting behind what was read ends it too, and
        // so does the urgent mark once something was read (tcp_recvmsg).
        if (!waitall || r.data.size() >= n || !r.fds.empty() || r.data.size() == before) break;
        if (urgent_ != Urgent::kNone && copied_seq_ == urgent_mark_) break;
        continue;
      }
      if (HostDatagramsLocked() && TakeHostDatagramLocked(n, flags, &r)) break;
      const bool some = !r.data.empty();
      if (error_ != 0) {
        if (some) break;
        int e = error_;
        error_ = 0;
        return Errno{e};
      }
      if (shutdown_ & kRcvShutdown) {
        // A datagram socket shut for reading: EAGAIN without waiting, end
        // of file (0) for a reader that would wait.
        if (type_ == SOCK_DGRAM && Nonblocking(flags) && !some) return Errno{EAGAIN};
        break;  // end of file (0), or what came
      }
      if (n == 0) break;
      if (Nonblocking(flags)) {
        if (some) break;
        return Errno{EAGAIN};
      }
      if (int e = Wait(t, deadline); e != 0) {
        if (some) break;
        return Errno{e};
      }
    }
    if (!passcred_) r.creds.reset();
    if (took) Changed();
  }
  if (inet() && type_ == SOCK_STREAM && (flags & MSG_TRUNC)) {
    // tcp_recvmsg: MSG_TRUNC takes the bytes without copying them.
    r.length = r.data.size();
    r.data.clear();
  }
  return r;
}

Status UnixSocket::Shutdown(Task& t, int how) {
  if (std::shared_ptr<Socket> h = HostConn()) return h->Shutdown(t, how);
  if (how < SHUT_RD || how > SHUT_RDWR) return Errno{EINVAL};
  const int mode = how + 1;                         // SHUT_RD 0 -> RCV_SHUTDOWN 1, ...
  std::deque<std::shared_ptr<UnixSocket>> dropped;  // let go after the lock
  SocketsLock l;
  SyncTcpLocked();
  if (inet() && !connected_ && !listening_) return Errno{ENOTCONN};
  if (inet() && listening_ && (mode & kRcvShutdown)) {
    // inet_shutdown: a listener shut for reading stops listening (its
    // pending connections are reset), and a blocked accept hears EINVAL.
    listening_ = false;
    for (const std::shared_ptr<UnixSocket>& p : pending_) {
      if (std::shared_ptr<UnixSocket> client = p->peer_.lock()) {
        client->error_ = ECONNRESET;
        client->reset_ = true;
        client->shutdown_ = kShutdownMask;
        client->queue_.Notify(~0U);
      }
    }
    dropped.swap(pending_);
    if (tcp_listener_ != nullptr) tcp_listener_->Close(StackNow());
    tcp_listener_.reset();
    queue_.Notify(~0U);
    return Ok();
  }
  shutdown_ |= mode;
  if (inet() && (mode & kSendShutdown)) fin_sent_ = true;
  if (tcp_ != nullptr && (mode & kSendShutdown)) {
    tcp_->ShutdownWrite(StackNow());
    StackArmed(tcp_->Deadline());
  }
  if (type_ != SOCK_DGRAM) {
    if (std::shared_ptr<UnixSocket> p = peer_.lock()) {
      int peer_mode = 0;
      // A unix socket's peer hears both; TCP's, the FIN alone.
      if ((mode & kRcvShutdown) && !inet()) peer_mode |= kSendShutdown;
      if (mode & kSendShutdown) {
        peer_mode |= kRcvShutdown;
        if (inet()) p->peer_fin_ = true;
      }
      p->shutdown_ |= peer_mode;
    }
  }
  Changed();
  return Ok();
}

Result<std::string> UnixSocket::SockName() {
  SocketsLock l;
  if (inet()) return FormatInet(domain_, name_.inet ? name_ : Name{});
  if (!name_.raw.empty()) return name_.raw;
  sa_family_t family = AF_UNIX;
  return std::string(reinterpret_cast<const char*>(&family), sizeof(family));
}

Result<std::string> UnixSocket::PeerName() {
  if (std::shared_ptr<Socket> h = HostConn()) return h->PeerName();
  std::shared_ptr<UnixSocket> p;
  std::shared_ptr<Socket> hp;
  {
    SocketsLock l;
    hp = host_peer_;
  }
  if (hp != nullptr) return hp->PeerName();  // a host process's socket, by the sandbox's name
  SocketsLock l;
  SyncTcpLocked();
  if (!connected_) return Errno{ENOTCONN};
  // A TCP connection that was reset is closed (TCP_CLOSE).
  if (inet() && type_ == SOCK_STREAM && (reset_ || (tcp_ != nullptr && tcp_->reset()))) {
    return Errno{ENOTCONN};
  }
  // inet_getname: no peer port, no peer (a ping socket connected to an
  // address alone).
  if (inet() && peer_name_.port == 0) return Errno{ENOTCONN};
  if (inet()) return FormatInet(domain_, peer_name_);
  p = peer_.lock();
  if (p == nullptr) return Errno{ENOTCONN};
  if (!p->name_.raw.empty()) return p->name_.raw;
  sa_family_t family = AF_UNIX;
  return std::string(reinterpret_cast<const char*>(&family), sizeof(family));
}

namespace {
// The inet options a socket keeps as set, with Linux's defaults: what
// programs set (TCP_NODELAY, IP_TOS, ...) reads back; none of them changes
// how loopback carries the bytes.
std::optional<int> InetDefault(int level, int name) {
  switch (level) {
    case SOL_SOCKET:
      switch (name) {
        case SO_KEEPALIVE:
        case SO_BROADCAST:
        case SO_DONTROUTE:
        case SO_OOBINLINE:
        case SO_PRIORITY:
        case SO_TIMESTAMP:
        case SO_TIMESTAMPNS:
        case SO_MARK:
        case SO_BUSY_POLL:
        case SO_INCOMING_CPU:
        case SO_RXQ_OVFL:
          return 0;
        default:
          return std::nullopt;
      }
    case IPPROTO_TCP:
      switch (name) {
        case TCP_NODELAY:
        case TCP_CORK:
        case TCP_USER_TIMEOUT:
        case TCP_DEFER_ACCEPT:
        case TCP_FASTOPEN:
        case TCP_NOTSENT_LOWAT:
        case TCP_LINGER2:
          return 0;
        case TCP_SYNCNT:
          return 6;  // net.ipv4.tcp_syn_retries
        case TCP_KEEPIDLE:
          return 7200;
        case TCP_KEEPINTVL:
          return 75;
        case TCP_KEEPCNT:
          return 9;
        case TCP_MAXSEG:
          return 536;
        case TCP_QUICKACK:
          return 1;
        case TCP_WINDOW_CLAMP:
          return 0;
        default:
          return std::nullopt;
      }
    case IPPROTO_IP:
      switch (name) {
        case IP_TOS:
        case IP_RECVERR:
        case IP_PKTINFO:
        case IP_RECVTOS:
        case IP_RECVTTL:
        case IP_FREEBIND:
        case IP_TRANSPARENT:
        case IP_BIND_ADDRESS_NO_PORT:
          return 0;
        case IP_TTL:
          return 64;
        case IP_MULTICAST_TTL:
        case IP_MULTICAST_LOOP:
        case IP_MULTICAST_ALL:
        case IP_MTU_DISCOVER:  // IP_PMTUDISC_WANT
          static_assert(IP_PMTUDISC_WANT == 1);
          return 1;
        default:
          return std::nullopt;
      }
    case IPPROTO_IPV6:
      switch (name) {
        case IPV6_TCLASS:
        case IPV6_RECVERR:
        case IPV6_RECVPKTINFO:
        case IPV6_RECVTCLASS:
        case IPV6_FREEBIND:
        case IPV6_TRANSPARENT:
        case IPV6_RECVHOPLIMIT:
        case IPV6_MULTICAST_IF:
          return 0;
        case IPV6_UNICAST_HOPS:
          return 64;
        case IPV6_MULTICAST_HOPS:  // IPV6_DEFAULT_MCASTHOPS
        case IPV6_MULTICAST_LOOP:
        case IPV6_MULTICAST_ALL:
        case IPV6_MTU_DISCOVER:  // IPV6_PMTUDISC_WANT
          static_assert(IPV6_PMTUDISC_WANT == 1);
          return 1;
        default:
          return std::nullopt;
      }
    default:
      return std::nullopt;
  }
}

// A level that belongs to the socket's protocol. TCP options on a UDP
// socket: setting them is ENOPROTOOPT; reading them EOPNOTSUPP over IPv4
// (udp_getsockopt passes them to ip_getsockopt) and ENOPROTOOPT over IPv6.
// IPv6 options on an IPv4 socket are ENOPROTOOPT.
Status InetLevelFits(int domain, int type, int level, bool set) {
  if ((level == IPPROTO_TCP && type != SOCK_STREAM) ||
      (level == IPPROTO_UDP && type != SOCK_DGRAM)) {
    return Errno{set || domain == AF_INET6 ? ENOPROTOOPT : EOPNOTSUPP};
  }
  if (level == IPPROTO_IPV6 && domain != AF_INET6) return Errno{ENOPROTOOPT};
  return Ok();
}

// Options that read back 0 or 1 whatever was set.
bool BooleanOption(int level, int name) {
  switch (level) {
    case SOL_SOCKET:
      return name == SO_KEEPALIVE || name == SO_BROADCAST || name == SO_DONTROUTE ||
             name == SO_RXQ_OVFL || name == SO_OOBINLINE || name == SO_TIMESTAMP ||
             name == SO_TIMESTAMPNS;
    case IPPROTO_TCP:
      return name == TCP_NODELAY || name == TCP_CORK || name == TCP_QUICKACK;
    case IPPROTO_IP:
      return name == IP_RECVERR || name == IP_PKTINFO || name == IP_RECVTOS || name == IP_RECVTTL ||
             name == IP_FREEBIND || name == IP_TRANSPARENT || name == IP_BIND_ADDRESS_NO_PORT ||
             name == IP_MULTICAST_LOOP || name == IP_MULTICAST_ALL;
    case IPPROTO_IPV6:
      return name == IPV6_RECVERR || name == IPV6_RECVPKTINFO || name == IPV6_RECVTCLASS ||
             name == IPV6_RECVHOPLIMIT || name == IPV6_FREEBIND || name == IPV6_TRANSPARENT ||
             name == IPV6_MULTICAST_ALL;
    default:
      return false;
  }
}
}  // namespace

Result<std::string> UnixSocket::GetOption(Task& t, int level, int name, size_t len) {
  if (std::shared_ptr<Socket> h = HostConn()) return h->GetOption(t, level, name, len);
  auto bytes = [&](const void* p, size_t n) -> Result<std::string> {
    std::string out(static_cast<const char*>(p), n);
    out.resize(std::min(len, out.size()));
    return out;
  };
  auto int_value = [&](int v) -> Result<std::string> { return bytes(&v, sizeof(v)); };
  SocketsLock l;
  if (inet() && level != SOL_SOCKET) {
    if (level != IPPROTO_IP && level != IPPROTO_IPV6 && level != IPPROTO_TCP &&
        level != IPPROTO_UDP) {
      return Errno{EOPNOTSUPP};  // ip_getsockopt: not SOL_IP
    }
    TRY(InetLevelFits(domain_, type_, level, /*set=*/false));
    if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) return int_value(v6only_ ? 1 : 0);
    if (level == IPPROTO_IP && name == IP_MULTICAST_IF) {
      in_addr a{};
      if (auto it = options_.find({level, name}); it != options_.end()) {
        // ip_mreq's and ip_mreqn's address is the second field; in_addr's its only one.
        const size_t at = it->second.size() >= sizeof(ip_mreq) ? sizeof(in_addr) : 0;
        memcpy(&a, it->second.data() + at, sizeof(a));
      }
      return bytes(&a, sizeof(a));
    }
    if (level == IPPROTO_IP && name == IP_OPTIONS) {
      auto it = options_.find({level, IP_OPTIONS});
      return it == options_.end() ? std::string() : bytes(it->second.data(), it->second.size());
    }
    if (level == IPPROTO_IP && len > 0 && len < sizeof(int)) {
      // ip_getsockopt: a short buffer gets one byte of a small value.
      auto it = options_.find({level, name});
      std::optional<int> d = InetDefault(level, name);
      int v = it != options_.end() && it->second.size() >= sizeof(int)
                  ? IntOptionLocked(level, name, 0)
                  : d.value_or(-1);
      if (it == options_.end() && !d.has_value()) return Errno{ENOPROTOOPT};
      if (v >= 0 && v <= 255) {
        const auto b = static_cast<uint8_t>(v);
        return std::string(1, static_cast<char>(b));
      }
    }
    if (level == IPPROTO_TCP && name == TCP_CONGESTION) {
      char algo[16] = "cubic";
      return bytes(algo, sizeof(algo));
    }
    if (level == IPPROTO_TCP && name == TCP_INFO) {
      tcp_info info{};
      // Loopback connections: the state only (TCP_ESTABLISHED 1,
      // TCP_LISTEN 10, TCP_CLOSE 7).
      info.tcpi_state = static_cast<uint8_t>(TcpStateLocked());
      if (tcp_ != nullptr) {
        const netstack::TcpInfoData d = tcp_->Info(StackNow());
        info.tcpi_state = d.state;
        info.tcpi_retransmits = d.retransmits;
        info.tcpi_backoff = d.backoff;
        info.tcpi_options = d.options;
        info.tcpi_snd_wscale = d.wscale & 0xf;
        info.tcpi_rcv_wscale = d.wscale >> 4;
        info.tcpi_rto = d.rto_us;
        info.tcpi_snd_mss = d.snd_mss;
        info.tcpi_rcv_mss = d.rcv_mss;
        info.tcpi_unacked = d.unacked;
        info.tcpi_rtt = d.rtt_us;
        info.tcpi_rttvar = d.rttvar_us;
        info.tcpi_snd_ssthresh = d.snd_ssthresh;
        info.tcpi_snd_cwnd = d.snd_cwnd;
        info.tcpi_advmss = d.advmss;
        info.tcpi_rcv_space = d.rcv_space;
        info.tcpi_total_retrans = d.total_retrans;
      }
      return bytes(&info, sizeof(info));
    }
    auto it = options_.find({level, name});
    if (it != options_.end()) return bytes(it->second.data(), it->second.size());
    std::optional<int> d = InetDefault(level, name);
    if (!d.has_value()) return Errno{ENOPROTOOPT};
    return int_value(*d);
  }
  if (level != SOL_SOCKET) return Errno{EOPNOTSUPP};
  switch (name) {
    case SO_TYPE:
      return int_value(type_);
    case SO_DOMAIN:
      return int_value(domain_);
    case SO_PROTOCOL:
      return int_value(!inet()                        ? 0
                       : ping_ && domain_ == AF_INET6 ? static_cast<int>(IPPROTO_ICMPV6)
                       : ping_                        ? static_cast<int>(IPPROTO_ICMP)
                       : type_ == SOCK_STREAM         ? IPPROTO_TCP
                                                      : IPPROTO_UDP);
    case SO_ACCEPTCONN:
      return int_value(listening_ ? 1 : 0);
    case SO_ERROR: {
      SyncTcpLocked();
      if (tcp_ != nullptr && error_ == 0) error_ = tcp_->TakeError();
      int e = error_;
      error_ = 0;
      return int_value(e);
    }
    case SO_SNDBUF:
      return int_value(static_cast<int>(sndbuf_));
    case SO_RCVBUF:
      return int_value(static_cast<int>(rcvbuf_));
    case SO_PASSCRED:
      return int_value(passcred_ ? 1 : 0);
    case SO_REUSEADDR:
      return int_value(reuseaddr_ ? 1 : 0);
    case SO_REUSEPORT:
      return int_value(reuseport_ ? 1 : 0);
    case SO_RCVLOWAT:
      return int_value(rcvlowat_);
    case SO_PEEK_OFF:
      // unix_set_peek_off: unix sockets have it; inet ones here do not.
      if (inet()) return Errno{ENOPROTOOPT};
      return int_value(peek_off_);
    case SO_PEERCRED: {
      ucred c{};
      if (peercred_.has_value() && !inet()) {
        c.pid = peercred_->pid;
        c.uid = peercred_->uid;
        c.gid = peercred_->gid;
      } else {
        c.uid = c.gid = static_cast<uint32_t>(-1);  // overflow ids: no peer
      }
      return bytes(&c, sizeof(c));
    }
    case SO_LINGER: {
      linger lg{};
      if (auto it = options_.find({SOL_SOCKET, SO_LINGER}); it != options_.end()) {
        memcpy(&lg, it->second.data(), std::min(it->second.size(), sizeof(lg)));
      }
      return bytes(&lg, sizeof(lg));
    }
    case SO_SNDTIMEO:
    case SO_RCVTIMEO: {
      const timeval tv = name == SO_RCVTIMEO ? rcvtimeo_ : sndtimeo_;
      return bytes(&tv, sizeof(tv));
    }
    default: {
      if (auto it = options_.find({level, name}); it != options_.end()) {
        return bytes(it->second.data(), it->second.size());
      }
      std::optional<int> d = InetDefault(level, name);
      if (!d.has_value()) return Errno{ENOPROTOOPT};
      return int_value(*d);
    }
  }
}

Status UnixSocket::CheckInetOption(int level, int name, int* v) {
  auto range = [&](int lo, int hi) -> Status {
    return *v < lo || *v > hi ? Status(Errno{EINVAL}) : Ok();
  };
  switch (level) {
    case IPPROTO_IP:
      if (name == IP_TTL) {
        if (*v == -1) {
          *v = kDefaultOption;
          return Ok();
        }
        return range(1, 255);
      }
      if (name == IP_MULTICAST_TTL) {
        if (*v == -1) {
          *v = kDefaultOption;
          return Ok();
        }
        return range(0, 255);
      }
      if (name == IP_TOS && type_ == SOCK_STREAM) {
        // The ECN bits are TCP's own to set.
        *v = (*v & ~3) | (IntOptionLocked(IPPROTO_IP, IP_TOS, 0) & 3);
      }
      return Ok();
    case IPPROTO_IPV6:
      if (name == IPV6_UNICAST_HOPS || name == IPV6_TCLASS || name == IPV6_MULTICAST_HOPS) {
        if (*v == -1) {
          *v = kDefaultOption;
          return Ok();
        }
        return range(0, 255);
      }
      if (name == IPV6_MULTICAST_LOOP) return range(0, 1);  // no other int taken for a boolean
      return Ok();
    case IPPROTO_TCP:
      switch (name) {
        case TCP_MAXSEG:
          return *v == 0 ? Ok() : range(88, 32767);  // TCP_MIN_MSS, MAX_TCP_WINDOW
        case TCP_KEEPIDLE:
        case TCP_KEEPINTVL:
          return range(1, 32767);  // MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL
        case TCP_KEEPCNT:
        case TCP_SYNCNT:
          return range(1, 127);  // MAX_TCP_KEEPCNT, MAX_TCP_SYNCNT
        case TCP_USER_TIMEOUT:
          return range(0, INT_MAX);
        case TCP_DEFER_ACCEPT: {
          // Seconds, rounded up to the end of a SYN-ACK retransmission (1 s,
          // then doubling to 120 s), as secs_to_retrans and back.
          if (*v <= 0) {
            *v = 0;
            return Ok();
          }
          int timeout = 1, period = 1, retrans = 1;
          while (*v > period && retrans < 255) {
            retrans++;
            timeout = std::min(timeout * 2, 120);
            period += timeout;
          }
          *v = period;
          return Ok();
        }
        default:
          return Ok();
      }
    default:
      return Ok();
  }
}

Status UnixSocket::SetOption(Task& t, int level, int name, std::string_view value) {
  if (std::shared_ptr<Socket> h = HostConn()) return h->SetOption(t, level, name, value);
  int v = 0;
  auto need_int = [&]() -> Status {
    if (value.size() < sizeof(int)) return Errno{EINVAL};
    memcpy(&v, value.data(), sizeof(v));
    return Ok();
  };
  SocketsLock l;
  if (inet() && level != SOL_SOCKET) {
    TRY(InetLevelFits(domain_, type_, level, /*set=*/true));
    if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) {
      TRY(need_int());
      if (name_.inet) return Errno{EINVAL};  // only before bind
      v6only_ = v != 0;
      return Ok();
    }
    if (level == IPPROTO_TCP && name == TCP_CONGESTION) {
      // cubic, as Linux's default, is the one there is.
      return std::string(value.substr(0, value.find('\0'))) == "cubic" ? Ok() : Errno{ENOENT};
    }
    if (level == IPPROTO_IP && (name == IP_ADD_MEMBERSHIP || name == IP_DROP_MEMBERSHIP)) {
      // ip_mreq or ip_mreqn: the group first. The stack's interface counts
      // the membership (and reports the group with IGMP).
      if (type_ != SOCK_DGRAM) return Errno{EPROTO};
      if (value.size() < sizeof(ip_mreq)) return Errno{EINVAL};
      in_addr g;
      memcpy(&g, value.data(), sizeof(g));
      if (!IN_MULTICAST(ntohl(g.s_addr))) return Errno{EINVAL};
      const std::array<uint8_t, 16> group = V4(
          static_cast<uint8_t>(ntohl(g.s_addr) >> 24), static_cast<uint8_t>(ntohl(g.s_addr) >> 16),
          static_cast<uint8_t>(ntohl(g.s_addr) >> 8), static_cast<uint8_t>(ntohl(g.s_addr)));
      if (name == IP_ADD_MEMBERSHIP) {
        // ip_mc_find_dev: no interface named, and no route to the group
        // (loopback alone has none): ENODEV.
        in_addr ifaddr;
        memcpy(&ifaddr, value.data() + sizeof(in_addr), sizeof(ifaddr));
        int ifindex = 0;
        if (value.size() >= sizeof(ip_mreqn)) {
          memcpy(&ifindex, value.data() + offsetof(ip_mreqn, imr_ifindex), sizeof(ifindex));
        }
        if (g_stack == nullptr && ifaddr.s_addr == INADDR_ANY && ifindex == 0) {
          return Errno{ENODEV};
        }
        // An interface named must exist: by index (loopback is 1), or by
        // one of its addresses (loopback's are 127.0.0.0/8).
        static const std::vector<netstack::Nic> kNoNics;
        const std::vector<netstack::Nic>& nics = g_stack != nullptr ? g_stack->nics() : kNoNics;
        int named = 0;
        if (ifindex != 0) {
          if (ifindex == 1) named = 1;
          for (const netstack::Nic& n : nics) {
            if (n.index == ifindex) named = n.index;
          }
          if (named == 0) return Errno{ENODEV};
        } else if (ifaddr.s_addr != INADDR_ANY) {
          if ((ntohl(ifaddr.s_addr) >> 24) == 127) named = 1;
          for (const netstack::Nic& n : nics) {
            for (const auto& [addr, prefix] : n.addrs) {
              if (netstack::IsV4(addr) && netstack::V4Of(addr) == ntohl(ifaddr.s_addr)) {
                named = n.index;
              }
            }
          }
          if (named == 0) return Errno{ENODEV};
        }
        if (groups_.contains(group)) return Errno{EADDRINUSE};
        if (groups_.size() >= 20) return Errno{ENOBUFS};  // net.ipv4.igmp_max_memberships
        // The interface: the one named, else the stack's first; loopback's
        // memberships are not reported.
        int nic = named;
        if (nic == 0 && !nics.empty()) nic = nics.front().index;
        groups_[group] = nic;
        JoinedGroups4()[group]++;
        if (g_stack != nullptr && nic > 1) g_stack->JoinGroup(nic, group);
      } else {
        auto it = groups_.find(group);
        if (it == groups_.end()) return Errno{EADDRNOTAVAIL};
        LeaveGroup4Locked(it->first, it->second);
        groups_.erase(it);
      }
      return Ok();
    }
    if (level == IPPROTO_IPV6 && (name == IPV6_ADD_MEMBERSHIP || name == IPV6_DROP_MEMBERSHIP)) {
      return Membership6Locked(name, value);
    }
    if (level == IPPROTO_IPV6 && (name == IPV6_MULTICAST_HOPS || name == IPV6_MULTICAST_IF) &&
        type_ == SOCK_STREAM) {
      return Errno{ENOPROTOOPT};  // do_ipv6_setsockopt: not TCP's to set
    }
    if (level == IPPROTO_IPV6 && name == IPV6_MULTICAST_IF) {
      // An interface index (0: none chosen): loopback or one of the
      // stack's (ENODEV).
      TRY(need_int());
      bool found = v == 0 || v == 1;
      if (g_stack != nullptr) {
        for (const netstack::Nic& n : g_stack->nics()) found = found || n.index == v;
      }
      if (!found) return Errno{ENODEV};
      options_[{level, name}] = std::string(reinterpret_cast<const char*>(&v), sizeof(v));
      return Ok();
    }
    if (level == IPPROTO_IP && name == IP_MULTICAST_IF) {
      // An address (in_addr), or ip_mreqn; kept as given.
      if (value.size() < sizeof(in_addr)) return Errno{EINVAL};
      options_[{level, name}] =
          std::string(value.substr(0, std::min(value.size(), sizeof(ip_mreqn))));
      return Ok();
    }
    if (level == IPPROTO_IP && (name == IP_OPTIONS || name == IP_RETOPTS)) {
      // IP options (at most 40 bytes), kept as given; none are put on the
      // wire.
      if (value.size() > 40) return Errno{EINVAL};
      options_[{level, IP_OPTIONS}] = std::string(value);
      return Ok();
    }
    if (!InetDefault(level, name).has_value()) return Errno{ENOPROTOOPT};
    if (level == IPPROTO_IP && value.size() >= 1 && value.size() < sizeof(int)) {
      v = static_cast<uint8_t>(value[0]);  // ip_setsockopt takes a lone byte as well
    } else {
      TRY(need_int());
    }
    if (BooleanOption(level, name)) v = v != 0;
    TRY(CheckInetOption(level, name, &v));
    if (v == kDefaultOption) {
      options_.erase({level, name});
    } else {
      options_[{level, name}] = std::string(reinterpret_cast<const char*>(&v), sizeof(v));
    }
    RefreshTcpSettingsLocked();
    return Ok();
  }
  if (level != SOL_SOCKET) return Errno{EOPNOTSUPP};
  switch (name) {
    case SO_SNDBUF:
    case SO_RCVBUF: {
      TRY(need_int());
      // sock_setsockopt: at most the sysctl's maximum, then doubled for
      // the kernel's bookkeeping, and never below the minimum.
      const size_t want = std::min<size_t>(static_cast<size_t>(std::max(v, 0)), kMaxBuffer) * 2;
      if (name == SO_SNDBUF) {
        sndbuf_ = std::max(want, kMinSendBuffer);
        queue_.Notify(POLLOUT | POLLWRNORM);
      } else {
        rcvbuf_ = std::max(want, kMinReceiveBuffer);
      }
      // A listener's connections from now on take the new size (an open
      // connection keeps its own).
      if (inet() && type_ == SOCK_STREAM) RefreshTcpSettingsLocked();
      return Ok();
    }
    case SO_PASSCRED:
      TRY(need_int());
      passcred_ = v != 0;
      return Ok();
    case SO_REUSEADDR:
      TRY(need_int());
      reuseaddr_ = v != 0;
      return Ok();
    case SO_REUSEPORT:
      TRY(need_int());
      reuseport_ = v != 0;
      return Ok();
    case SO_SNDTIMEO:
    case SO_RCVTIMEO: {
      ASSIGN_OR_RETURN(const timeval tv, ParseSocketTimeout(value));
      (name == SO_RCVTIMEO ? rcvtimeo_ : sndtimeo_) = tv;
      return Ok();
    }
    case SO_LINGER:
      if (value.size() < sizeof(linger)) return Errno{EINVAL};
      options_[{SOL_SOCKET, SO_LINGER}] = std::string(value.substr(0, sizeof(linger)));
      return Ok();
    case SO_RCVLOWAT:
      TRY(need_int());
      rcvlowat_ = v < 0 ? INT_MAX : v == 0 ? 1 : v;  // sock_setsockopt
      queue_.Notify(POLLIN | POLLRDNORM);
      return Ok();
    case SO_PEEK_OFF:
      if (inet()) return Errno{ENOPROTOOPT};
      TRY(need_int());
      peek_off_ = v;  // sk_set_peek_off: as given; negative is off
      return Ok();
    default:
      if (!InetDefault(SOL_SOCKET, name).has_value()) return Errno{ENOPROTOOPT};
      TRY(need_int());
      if (BooleanOption(SOL_SOCKET, name)) v = v != 0;
      options_[{SOL_SOCKET, name}] = std::string(reinterpret_cast<const char*>(&v), sizeof(v));
      // SO_OOBINLINE, SO_KEEPALIVE: the connection's (or the listener's
      // connections') settings follow.
      if (inet() && type_ == SOCK_STREAM) RefreshTcpSettingsLocked();
      return Ok();
  }
}

Result<long> UnixSocket::Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) {
  if (std::shared_ptr<Socket> h = HostConn()) return h->Ioctl(mm, cmd, arg);
  if (cmd == SIOCATMARK) {
    // tcp_ioctl: at the urgent mark (0 elsewhere, and for other sockets).
    int at = 0;
    {
      SocketsLock l;
      if (!inet() || type_ != SOCK_STREAM) return InterfaceIoctl(mm, cmd, arg);
      SyncTcpLocked();
      if (tcp_ != nullptr) {
        at = tcp_->AtUrgentMark() ? 1 : 0;
      } else {
        at = urgent_ != Urgent::kNone && copied_seq_ == urgent_mark_ ? 1 : 0;
      }
    }
    TRY(mm.CopyOut(arg, &at, sizeof(at)));
    return 0L;
  }
  // The interface ioctls copy user memory: not under the socket lock.
  if (cmd != SIOCINQ && cmd != SIOCOUTQ) return InterfaceIoctl(mm, cmd, arg);
  int n = 0;
  {
    SocketsLock l;
    switch (cmd) {
      case SIOCINQ:
        if (listening_) return Errno{EINVAL};
        if (tcp_ != nullptr) {
          // tcp_inq: what comes before an urgent mark ahead (not inline).
          n = static_cast<int>(tcp_->ReadableBeforeMark());
        } else if (type_ != SOCK_DGRAM) {
          n = static_cast<int>(queued_bytes_);  // what is left to read
          // TCP with urgent data ahead (not inline): what comes before the
          // mark, 0 at it (tcp_inq).
          if (inet() && urgent_ != Urgent::kNone && copied_seq_ <= urgent_mark_ &&
              IntOptionLocked(SOL_SOCKET, SO_OOBINLINE, 0) == 0) {
            n = static_cast<int>(urgent_mark_ - copied_seq_);
          }
        } else {
          n = queue_msgs_.empty() ? 0 : static_cast<int>(queue_msgs_.front().data.size());
        }
        break;
      default:  // SIOCOUTQ
        if (inet() && type_ == SOCK_STREAM) {
          if (listening_) return Errno{EINVAL};
          if (tcp_ != nullptr) {
            n = static_cast<int>(tcp_->tx_queue());
          } else if (std::shared_ptr<UnixSocket> p = peer_.lock()) {
            // Over loopback the peer acknowledges what its window takes
            // (half its buffer); the rest waits on this side.
            const size_t window = p->rcvbuf_ / 2;
            n = static_cast<int>(unread_bytes_ > window ? unread_bytes_ - window : 0);
          }
        } else {
          n = static_cast<int>(inflight_);
        }
        break;
    }
  }
  TRY(mm.CopyOut(arg, &n, sizeof(n)));
  return 0L;
}

uint32_t UnixSocket::Readiness(uint32_t mask) {
  if (std::shared_ptr<Socket> h = HostConn()) return h->Readiness(mask);
  SocketsLock l;
  SyncTcpLocked();
  uint32_t ready = 0;
  if (HearsHostSocketLocked()) {
    // Host processes connecting, or sending, through the volume's name.
    pollfd p{host_listener_.get(), POLLIN, 0};
    if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) ready |= POLLIN | POLLRDNORM;
  }
  if (tcp_ != nullptr) {
    // tcp_poll's masks.
    using netstack::TcpEndpoint;
    const TcpEndpoint::State st = tcp_->state();
    if (tcp_->error() != 0 || error_ != 0) ready |= POLLERR;
    if (st == TcpEndpoint::kClosed || shutdown_ == kShutdownMask ||
        ((shutdown_ & kSendShutdown) && tcp_->ReadEof())) {
      ready |= POLLHUP;
    }
    if (tcp_->ReadEof() || (shutdown_ & kRcvShutdown) || st == TcpEndpoint::kClosed) {
      ready |= POLLIN | POLLRDNORM | POLLRDHUP;
    }
    if (tcp_->Readable() > 0) ready |= POLLIN | POLLRDNORM;
    // tcp_poll: urgent data not yet read.
    if (tcp_->urgent() == TcpEndpoint::Urgent::kValid) ready |= POLLPRI;
    if (st == TcpEndpoint::kEstablished || st == TcpEndpoint::kCloseWait) {
      // sk_stream_is_writeable: room for a third of what is queued more.
      if (tcp_->SendSpace() >= tcp_->SendQueued() / 2 && tcp_->SendSpace() > 0) {
        ready |= POLLOUT | POLLWRNORM | POLLWRBAND;
      }
    } else if (st == TcpEndpoint::kClosed || (shutdown_ & kSendShutdown)) {
      ready |= POLLOUT | POLLWRNORM;
    }
    return ready & (mask | POLLHUP | POLLERR);
  }
  if (listening_ && tcp_listener_ != nullptr && !tcp_listener_->ready.empty()) {
    ready |= POLLIN | POLLRDNORM;
  }
  if (error_ != 0) ready |= POLLERR;
  if (urgent_ == Urgent::kValid) ready |= POLLPRI;  // tcp_poll: urgent data not yet read
  if (shutdown_ == kShutdownMask) ready |= POLLHUP;
  if (shutdown_ & kRcvShutdown) ready |= POLLRDHUP | POLLIN | POLLRDNORM;
  if (listening_) {
    if (!pending_.empty()) ready |= POLLIN | POLLRDNORM;
  } else if (!queue_msgs_.empty() &&
             (type_ != SOCK_STREAM || queued_bytes_ >= static_cast<size_t>(rcvlowat_) ||
              !queue_msgs_.front().fds.empty())) {
    ready |= POLLIN | POLLRDNORM;  // a stream: at least SO_RCVLOWAT bytes
  }
  if (type_ != SOCK_DGRAM && !connected_ && !listening_) ready |= POLLHUP;
  // unix_writable: what this socket has in flight is at most a quarter of
  // its send buffer; a datagram socket also needs room at its peer.
  bool writable = inflight_ * 4 <= sndbuf_;
  if (type_ == SOCK_DGRAM && writable) {
    if (std::shared_ptr<UnixSocket> p = peer_.lock(); p != nullptr && connected_) {
      std::shared_ptr<UnixSocket> their = p->peer_.lock();
      if ((their == nullptr || their.get() == this) && p->queue_msgs_.size() > kMaxDatagramQueue) {
        writable = false;
      }
    }
  }
  if (writable && !listening_) ready |= POLLOUT | POLLWRNORM | POLLWRBAND;
  return ready & (mask | POLLHUP | POLLERR);
}

std::string UnixSocket::ProcLine() {
  // Num RefCount Protocol Flags Type St Inode Path (unix_seq_show).
  SocketsLock l;
  const int state = listening_ ? 1 : connected_ ? 3 : 1;  // SS_UNCONNECTED 1, SS_CONNECTED 3
  std::string path;
  if (!name_.raw.empty()) {
    path = " " + name_.path;
    if (name_.abstract) path[1] = '@';
  }
  const uint64_t ino = static_cast<SocketInode&>(*inode()).ino();
  return absl::StrFormat("%016x: %08X %08X %08X %04X %02X %5u%s\n", 0, 2, 0,
                         listening_ ? 0x10000 : 0, type_, state, ino, path);
}

std::string UnixSocket::ProcInetLine(int sl) {
  SocketsLock l;
  auto hex = [this](const Name& n) {
    std::string out;
    if (domain_ == AF_INET) {
      uint32_t a;
      memcpy(&a, n.ip.data() + 12, 4);
      out = absl::StrFormat("%08X", a);
    } else {
      for (int i = 0; i < 4; i++) {
        uint32_t w;
        memcpy(&w, n.ip.data() + 4 * i, 4);
        absl::StrAppendFormat(&out, "%08X", w);
      }
    }
    return absl::StrFormat("%s:%04X", out, n.port);
  };
  Name local = name_.inet ? name_ : Name{};
  if (!name_.inet && domain_ == AF_INET) local.ip = V4(0, 0, 0, 0);
  Name remote = connected_ || tcp_ != nullptr ? peer_name_ : Name{};
  if (!connected_ && tcp_ == nullptr && domain_ == AF_INET) remote.ip = V4(0, 0, 0, 0);
  // TCP_ESTABLISHED 1, TCP_CLOSE 7, TCP_LISTEN 10.
  int state = type_ == SOCK_STREAM ? TcpStateLocked() : connected_ ? 1 : 7;
  size_t tx = type_ == SOCK_STREAM ? unread_bytes_ : inflight_, rx = queued_bytes_;
  if (listening_) {
    // A listener's rx_queue: the connections waiting for accept.
    rx = pending_.size() + (tcp_listener_ != nullptr ? tcp_listener_->ready.size() : 0);
    tx = 0;
  }
  if (tcp_ != nullptr) {
    state = tcp_->state();
    tx = tcp_->tx_queue();
    rx = tcp_->rx_queue();
  }
  const uint64_t ino = static_cast<SocketInode&>(*inode()).ino();
  // The columns after the inode (refcount, the socket's address, timers)
  // are Linux's shape with nothing to report.
  return absl::StrFormat(
      "%4d: %s %s %02X %08X:%08X 00:00000000 00000000 %5u        0 %u 1 0000000000000000 100 0 0 "
      "10 0\n",
      sl, hex(local), hex(remote), state, tx, rx, 0, ino);
}

// What the stack asks of the sockets. Called under g_mu, on the network
// thread; the sockets it finds are kept (hold_) until that thread lets the
// lock go, since the last reference to one must not go under it.
class StackUpcalls : public netstack::Upcalls {
 public:
  std::shared_ptr<netstack::TcpListener> FindListener(const netstack::Ip& dst,
                                                      uint16_t port) override {
    g_mu.AssertHeld();
    std::shared_ptr<UnixSocket> s = UnixSocket::FindInet(SOCK_STREAM, dst, port, true);
    if (s == nullptr) return nullptr;
    std::shared_ptr<netstack::TcpListener> l = s->tcp_listener_;
    hold_.push_back(std::move(s));
    return l;
  }

  bool DeliverUdp(const netstack::UdpDatagram& d) override {
    g_mu.AssertHeld();
    if (netstack::IsV4(d.dst) && (d.dst[12] & 0xf0) == 0xe0) {
      Name from;
      from.inet = true;
      from.ip = d.src;
      from.port = d.sport;
      return UnixSocket::DeliverMulticastLocked(
          d.dst, d.dport, from,
          std::string_view(reinterpret_cast<const char*>(d.payload.data()), d.payload.size()),
          d.ttl, 2, &hold_);
    }
    if (IsGroup6(d.dst)) {
      Name from;
      from.inet = true;
      from.ip = d.src;
      from.port = d.sport;
      return UnixSocket::DeliverMulticast6Locked(
          d.dst, d.dport, from,
          std::string_view(reinterpret_cast<const char*>(d.payload.data()), d.payload.size()),
          d.ttl, d.tos, d.nic, &hold_);
    }
    std::shared_ptr<UnixSocket> s = UnixSocket::FindInet(SOCK_DGRAM, d.dst, d.dport, false);
    if (s == nullptr) return false;
    UnixSocket& u = *s;
    hold_.push_back(std::move(s));
    // A connected socket takes datagrams from its peer only.
    if (u.connected_ && (u.peer_name_.ip != d.src || u.peer_name_.port != d.sport)) return false;
    Message m;
    m.data.assign(reinterpret_cast<const char*>(d.payload.data()), d.payload.size());
    m.to = d.dst;
    m.ttl = d.ttl;
    m.tos = d.tos;
    m.ifindex = 2;  // the sandbox's first interface (it has one, as a container does)
    Name from;
    from.inet = true;
    from.ip = d.src;
    from.port = d.sport;
    u.QueueDatagramLocked(std::move(m), from);
    return true;
  }

  void UdpError(const netstack::Ip& src, uint16_t sport, const netstack::Ip& dst, uint16_t dport,
                int err) override {
    g_mu.AssertHeld();
    std::shared_ptr<UnixSocket> s = UnixSocket::FindInet(SOCK_DGRAM, src, sport, false);
    if (s == nullptr) return;
    UnixSocket& u = *s;
    hold_.push_back(std::move(s));
    // Only a connected socket hears of it (IP_RECVERR is not kept).
    if (u.connected_ && u.peer_name_.ip == dst && u.peer_name_.port == dport) {
      u.error_ = err;
      u.queue_.Notify(POLLERR);
    }
  }

  void DeliverEchoReply(const netstack::Ip& from, const netstack::Ip& to, uint16_t id,
                        netstack::Bytes icmp, uint8_t ttl) override {
    g_mu.AssertHeld();
    std::shared_ptr<UnixSocket> s =
        UnixSocket::FindInet(UnixSocket::kPingSpace, to, id, /*listener=*/false);
    if (s == nullptr) return;
    UnixSocket& u = *s;
    hold_.push_back(std::move(s));
    if (u.connected_ && u.peer_name_.ip != from) return;
    Message m;
    m.data.assign(reinterpret_cast<const char*>(icmp.data()), icmp.size());
    m.to = to;
    m.ttl = ttl;
    m.ifindex = 2;
    Name src;
    src.inet = true;
    src.ip = from;
    u.QueueDatagramLocked(std::move(m), src);
  }

  std::vector<std::shared_ptr<UnixSocket>> TakeHeld() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    return std::move(hold_);
  }

 private:
  std::vector<std::shared_ptr<UnixSocket>> hold_ ABSL_GUARDED_BY(g_mu);
};

StackUpcalls& Upcalls() {
  static auto* u = new StackUpcalls();
  return *u;
}

}  // namespace

netstack::Upcalls* SocketUpcalls() { return &Upcalls(); }

void InstallStack(netstack::Stack* stack, void (*kick)()) {
  SocketsLock l;
  g_stack = stack;
  g_stack_kick = kick;
}

int64_t RunStack(const std::function<void(netstack::Stack&, int64_t)>& fn) {
  std::vector<std::shared_ptr<UnixSocket>> held;  // let go after the lock
  int64_t next;
  {
    SocketsLock l;
    if (g_stack == nullptr) return INT64_MAX;
    const int64_t now = StackNow();
    fn(*g_stack, now);
    next = g_stack->Tick(now);
    g_stack_wake = next;
    held = Upcalls().TakeHeld();
  }
  return next;
}

std::string ProcNetInet(int type, int domain) {
  std::vector<std::shared_ptr<UnixSocket>> all;
  {
    SocketsLock l;
    for (auto& [p, w] : All()) {
      std::shared_ptr<UnixSocket> s = w.lock();
      if (s != nullptr && s->Domain() == domain && s->SockType() == type)
        all.push_back(std::move(s));
    }
  }
  std::string out = domain == AF_INET
                        ? "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
                          "retrnsmt   uid  timeout inode\n"
                        : "  sl  local_address                         remote_address             "
                          "           st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
                          "inode\n";
  int sl = 0;
  for (const auto& s : all) out += s->ProcInetLine(sl++);
  out += ProcNetHostLines(type, domain, sl);
  return out;
}

void SetUnixPathOps(const PathOps& ops) { g_path_ops = ops; }

Result<vfs::FileRef> NewUnixSocket(Task& t, int type, int flags) {
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    return Errno{ESOCKTNOSUPPORT};
  }
  auto s =
      std::make_shared<UnixSocket>(std::make_shared<SocketInode>(t.fsuid, t.fsgid), flags, type);
  s->Register();
  return vfs::FileRef(s);
}

Result<std::pair<vfs::FileRef, vfs::FileRef>> NewUnixPair(Task& t, int type, int flags) {
  ASSIGN_OR_RETURN(vfs::FileRef a, NewUnixSocket(t, type, flags));
  ASSIGN_OR_RETURN(vfs::FileRef b, NewUnixSocket(t, type, flags));
  UnixSocket::Pair(std::static_pointer_cast<UnixSocket>(a), std::static_pointer_cast<UnixSocket>(b),
                   CredsOf(t));
  return std::make_pair(std::move(a), std::move(b));
}

Result<vfs::FileRef> NewInetSocket(Task& t, int domain, int type, int flags, bool ping) {
  auto s = std::make_shared<UnixSocket>(std::make_shared<SocketInode>(t.fsuid, t.fsgid), flags,
                                        type, domain, ping);
  s->Register();
  return vfs::FileRef(s);
}

std::string ProcNetUnix() {
  std::vector<std::shared_ptr<UnixSocket>> all;
  {
    SocketsLock l;
    for (auto& [p, w] : All()) {
      std::shared_ptr<UnixSocket> s = w.lock();
      if (s != nullptr && s->Domain() == AF_UNIX) all.push_back(std::move(s));
    }
  }
  std::string out = "Num       RefCount Protocol Flags    Type St Inode Path\n";
  for (const auto& s : all) out += s->ProcLine();
  return out;
}

}  // namespace husk::net
