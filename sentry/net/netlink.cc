#include "sentry/net/netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"

namespace husk::net {
namespace {

constexpr int kLoopbackIndex = 1;

// Port ids in use (netlink_autobind: the process's pid first, then
// negative numbers).
absl::Mutex g_ports_mu;
std::set<int32_t>& Ports() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_ports_mu) {
  static auto* s = new std::set<int32_t>();
  return *s;
}

// Builds netlink messages: a header, a fixed part, attributes.
class Builder {
 public:
  explicit Builder(uint32_t port) : port_(port) {}
  void Begin(uint16_t type, uint16_t flags, uint32_t seq) {
    start_ = out_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    h.nlmsg_pid = port_;
    Put(&h, sizeof(h));
  }
  void Put(const void* p, size_t n) {
    out_.append(static_cast<const char*>(p), n);
    out_.resize(NLMSG_ALIGN(out_.size()), '\0');
  }
  void Attr(uint16_t type, const void* data, size_t n) {
    rtattr a{};
    a.rta_len = static_cast<uint16_t>(RTA_LENGTH(n));
    a.rta_type = type;
    out_.append(reinterpret_cast<const char*>(&a), sizeof(a));
    out_.append(static_cast<const char*>(data), n);
    out_.resize(out_.size() + (RTA_ALIGN(a.rta_len) - a.rta_len), '\0');
  }
  void AttrU32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof(v)); }
  void AttrU8(uint16_t type, uint8_t v) { Attr(type, &v, sizeof(v)); }
  void AttrString(uint16_t type, const char* s) { Attr(type, s, strlen(s) + 1); }
  void End() {
    const auto len = static_cast<uint32_t>(out_.size() - start_);
    memcpy(out_.data() + start_ + offsetof(nlmsghdr, nlmsg_len), &len, sizeof(len));
  }
  std::string Take() { return std::move(out_); }
  bool empty() const { return out_.empty(); }

 private:
  uint32_t port_;
  size_t start_ = 0;
  std::string out_;
};

// RTM_NEWLINK for lo, as ip link shows it.
void PutLink(Builder& b, uint16_t flags, uint32_t seq) {
  b.Begin(RTM_NEWLINK, flags, seq);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_type = ARPHRD_LOOPBACK;
  ifi.ifi_index = kLoopbackIndex;
  ifi.ifi_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP;
  b.Put(&ifi, sizeof(ifi));
  b.AttrString(IFLA_IFNAME, "lo");
  b.AttrU32(IFLA_TXQLEN, 1000);
  b.AttrU8(IFLA_OPERSTATE, 0);  // IF_OPER_UNKNOWN, as Linux's lo
  b.AttrU8(IFLA_LINKMODE, 0);
  b.AttrU32(IFLA_MTU, 65536);
  b.AttrU32(IFLA_GROUP, 0);
  b.AttrU32(IFLA_PROMISCUITY, 0);
  b.AttrU32(IFLA_NUM_TX_QUEUES, 1);
  b.AttrU32(IFLA_NUM_RX_QUEUES, 1);
  b.AttrU8(IFLA_CARRIER, 1);
  b.AttrString(IFLA_QDISC, "noqueue");
  const uint8_t zero_mac[6] = {};
  b.Attr(IFLA_ADDRESS, zero_mac, sizeof(zero_mac));
  b.Attr(IFLA_BROADCAST, zero_mac, sizeof(zero_mac));
  rtnl_link_stats stats{};  // no packets: loopback connections are joined in the sentry
  b.Attr(IFLA_STATS, &stats, sizeof(stats));
  b.End();
}

// RTM_NEWADDR for lo's addresses of `family` (AF_UNSPEC: both).
void PutAddrs(Builder& b, int family, uint16_t flags, uint32_t seq) {
  ifa_cacheinfo ci{};
  ci.ifa_prefered = ci.ifa_valid = 0xffffffff;
  if (family == AF_UNSPEC || family == AF_INET) {
    b.Begin(RTM_NEWADDR, flags, seq);
    ifaddrmsg ifa{};
    ifa.ifa_family = AF_INET;
    ifa.ifa_prefixlen = 8;
    ifa.ifa_flags = IFA_F_PERMANENT;
    ifa.ifa_scope = RT_SCOPE_HOST;
    ifa.ifa_index = kLoopbackIndex;
    b.Put(&ifa, sizeof(ifa));
    const in_addr lo = {htonl(INADDR_LOOPBACK)};
    b.Attr(IFA_ADDRESS, &lo, sizeof(lo));
    b.Attr(IFA_LOCAL, &lo, sizeof(lo));
    b.AttrString(IFA_LABEL, "lo");
    b.AttrU32(IFA_FLAGS, IFA_F_PERMANENT);
    b.Attr(IFA_CACHEINFO, &ci, sizeof(ci));
    b.End();
  }
  if (family == AF_UNSPEC || family == AF_INET6) {
    b.Begin(RTM_NEWADDR, flags, seq);
    ifaddrmsg ifa{};
    ifa.ifa_family = AF_INET6;
    ifa.ifa_prefixlen = 128;
    ifa.ifa_flags = IFA_F_PERMANENT;
    ifa.ifa_scope = RT_SCOPE_HOST;
    ifa.ifa_index = kLoopbackIndex;
    b.Put(&ifa, sizeof(ifa));
    b.Attr(IFA_ADDRESS, &in6addr_loopback, sizeof(in6addr_loopback));
    b.Attr(IFA_CACHEINFO, &ci, sizeof(ci));
    b.AttrU32(IFA_FLAGS, IFA_F_PERMANENT | IFA_F_NOPREFIXROUTE);
    b.End();
  }
}

class NetlinkSocket : public Socket {
 public:
  NetlinkSocket(vfs::InodeRef inode, int flags, int type)
      : Socket(std::move(inode), O_RDWR | (flags & O_NONBLOCK)), type_(type) {}
  ~NetlinkSocket() override {
    absl::MutexLock l(&g_ports_mu);
    if (port_ != 0) Ports().erase(port_);
  }

  int Domain() const override { return AF_NETLINK; }
  int SockType() const override { return type_; }
  size_t MaxMessage() const override { return 32768; }

  Status Bind(Task& t, std::string_view addr) override {
    ASSIGN_OR_RETURN(sockaddr_nl a, ParseAddr(addr));
    if (a.nl_groups != 0) return Errno{EPERM};  // no multicast groups to hear
    absl::MutexLock l(&g_ports_mu);
    if (port_ != 0) {
      // netlink_bind: a bound socket may only bind its own id again.
      return a.nl_pid == 0 || static_cast<int32_t>(a.nl_pid) == port_ ? Ok() : Errno{EINVAL};
    }
    if (a.nl_pid != 0) {
      if (Ports().contains(static_cast<int32_t>(a.nl_pid))) return Errno{EADDRINUSE};
      port_ = static_cast<int32_t>(a.nl_pid);
      Ports().insert(port_);
      return Ok();
    }
    AutobindLocked(t.tgid());
    return Ok();
  }
  Status Listen(Task&, int) override { return Errno{EOPNOTSUPP}; }
  Result<vfs::FileRef> Accept(Task&, int, std::string*) override { return Errno{EOPNOTSUPP}; }
  Status Connect(Task& t, std::string_view addr) override {
    ASSIGN_OR_RETURN(sockaddr_nl a, ParseAddr(addr));
    if (a.nl_pid != 0 || a.nl_groups != 0) return Errno{EPERM};  // only the kernel answers here
    absl::MutexLock l(&g_ports_mu);
    if (port_ == 0) AutobindLocked(t.tgid());
    return Ok();
  }
  Result<size_t> Send(Task& t, SendRequest& req) override {
    if (!req.fds.empty()) return Errno{EINVAL};
    if (!req.to.empty()) {
      ASSIGN_OR_RETURN(sockaddr_nl a, ParseAddr(req.to));
      if (a.nl_pid != 0 || a.nl_groups != 0) return Errno{EPERM};
    }
    uint32_t port;
    {
      absl::MutexLock l(&g_ports_mu);
      if (port_ == 0) AutobindLocked(t.tgid());
      port = static_cast<uint32_t>(port_);
    }
    std::deque<std::string> replies = Answer(req.data, port);
    absl::MutexLock l(&mu_);
    for (std::string& r : replies) {
      // netlink_overrun: past the receive buffer replies are dropped, and
      // the next receive says ENOBUFS.
      if (queued_ + r.size() > static_cast<size_t>(rcvbuf_)) {
        overrun_ = true;
        continue;
      }
      queued_ += r.size();
      queue_.push_back(std::move(r));
    }
    if (!queue_.empty() || overrun_) waiters_.Notify(POLLIN | POLLRDNORM | POLLERR);
    return req.data.size();
  }
  Result<Received> Receive(Task& t, size_t n, int flags) override {
    Received r;
    absl::MutexLock l(&mu_);
    if (overrun_) {
      overrun_ = false;
      return Errno{ENOBUFS};
    }
    while (queue_.empty()) {
      if ((this->flags() & O_NONBLOCK) || (flags & MSG_DONTWAIT)) return Errno{EAGAIN};
      waiters_.Add(&t.waiter, POLLIN);
      mu_.Unlock();
      t.kernel().mu.AssertHeld();
      Status s = t.Block();
      mu_.Lock();
      waiters_.Remove(&t.waiter);
      if (!s.ok()) return Errno{kERestartSys};
    }
    const std::string& m = queue_.front();
    r.data = m.substr(0, std::min(n, m.size()));
    r.length = (flags & MSG_TRUNC) ? m.size() : r.data.size();
    if (r.data.size() < m.size()) r.msg_flags |= MSG_TRUNC;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    r.from.assign(reinterpret_cast<const char*>(&kernel), sizeof(kernel));
    if (!(flags & MSG_PEEK)) {
      queued_ -= m.size();
      queue_.pop_front();
    }
    return r;
  }
  Status Shutdown(Task&, int how) override {
    return how >= SHUT_RD && how <= SHUT_RDWR ? Ok() : Errno{EINVAL};
  }
  Result<std::string> SockName() override {
    sockaddr_nl a{};
    a.nl_family = AF_NETLINK;
    absl::MutexLock l(&g_ports_mu);
    a.nl_pid = static_cast<uint32_t>(port_);
    return std::string(reinterpret_cast<const char*>(&a), sizeof(a));
  }
  Result<std::string> PeerName() override {
    sockaddr_nl a{};
    a.nl_family = AF_NETLINK;
    return std::string(reinterpret_cast<const char*>(&a), sizeof(a));
  }
  Result<std::string> GetOption(Task&, int level, int name, size_t len) override {
    int v = 0;
    absl::MutexLock l(&mu_);
    if (level == SOL_SOCKET) {
      switch (name) {
        case SO_TYPE:
          v = type_;
          break;
        case SO_DOMAIN:
          v = AF_NETLINK;
          break;
        case SO_PROTOCOL:
          v = NETLINK_ROUTE;
          break;
        case SO_SNDBUF:
          v = sndbuf_;
          break;
        case SO_RCVBUF:
          v = rcvbuf_;
          break;
        case SO_ERROR:
          v = 0;
          break;
        default:
          return Errno{ENOPROTOOPT};
      }
    } else if (level == SOL_NETLINK) {
      auto it = options_.find(name);
      v = it == options_.end() ? 0 : it->second;
    } else {
      return Errno{ENOPROTOOPT};
    }
    std::string out(reinterpret_cast<const char*>(&v), sizeof(v));
    out.resize(std::min(len, out.size()));
    return out;
  }
  Status SetOption(Task&, int level, int name, std::string_view value) override {
    if (value.size() < sizeof(int)) return Errno{EINVAL};
    int v;
    memcpy(&v, value.data(), sizeof(v));
    absl::MutexLock l(&mu_);
    if (level == SOL_SOCKET) {
      // Doubled and clamped as for any socket (sock_setsockopt).
      const int want = std::clamp(v, 0, 4194304) * 2;
      if (name == SO_SNDBUF)
        sndbuf_ = std::max(want, 4608);
      else if (name == SO_RCVBUF)
        rcvbuf_ = std::max(want, 2304);
      else if (name != SO_PASSCRED && name != SO_SNDBUFFORCE && name != SO_RCVBUFFORCE) {
        return Errno{ENOPROTOOPT};
      }
      return Ok();
    }
    if (level != SOL_NETLINK) return Errno{ENOPROTOOPT};
    switch (name) {
      case NETLINK_EXT_ACK:
      case NETLINK_GET_STRICT_CHK:
      case NETLINK_CAP_ACK:
      case NETLINK_NO_ENOBUFS:
      case NETLINK_PKTINFO:
      case NETLINK_BROADCAST_ERROR:
      case NETLINK_LISTEN_ALL_NSID:
        options_[name] = v != 0;
        return Ok();
      case NETLINK_ADD_MEMBERSHIP:
      case NETLINK_DROP_MEMBERSHIP:
        return Errno{EPERM};  // no multicast groups
      default:
        return Errno{ENOPROTOOPT};
    }
  }

  Result<size_t> Read(char* buf, size_t n) override {
    Task* t = Kernel::Current();
    if (t == nullptr) return Errno{EAGAIN};
    t->kernel().mu.AssertHeld();
    ASSIGN_OR_RETURN(Received r, Receive(*t, n, 0));
    std::copy(r.data.begin(), r.data.end(), buf);
    return r.data.size();
  }
  Result<size_t> Write(const char* buf, size_t n) override {
    Task* t = Kernel::Current();
    if (t == nullptr) return Errno{EAGAIN};
    t->kernel().mu.AssertHeld();
    SendRequest req;
    req.data = std::string_view(buf, n);
    return Send(*t, req);
  }
  Result<size_t> PRead(char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<size_t> PWrite(const char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<off_t> Seek(off_t, int) override { return Errno{ESPIPE}; }
  uint32_t Readiness(uint32_t mask) override {
    absl::MutexLock l(&mu_);
    uint32_t ready = POLLOUT | POLLWRNORM;
    if (!queue_.empty()) ready |= POLLIN | POLLRDNORM;
    if (overrun_) ready |= POLLERR;
    return ready & (mask | POLLHUP | POLLERR);
  }
  WaitQueue* EventQueue() override { return &waiters_; }
  Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) override {
    return InterfaceIoctl(mm, cmd, arg);
  }

 private:
  static Result<sockaddr_nl> ParseAddr(std::string_view addr) {
    sockaddr_nl a{};
    if (addr.size() < sizeof(a)) return Errno{EINVAL};
    memcpy(&a, addr.data(), sizeof(a));
    if (a.nl_family != AF_NETLINK) return Errno{EINVAL};
    return a;
  }
  void AutobindLocked(int tgid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_ports_mu) {
    int32_t id = tgid;
    static int32_t next_negative = -4096;
    while (Ports().contains(id)) id = next_negative--;
    port_ = id;
    Ports().insert(id);
  }

  // The replies to the requests in `data`: dumps as one datagram of
  // NLM_F_MULTI messages and one NLMSG_DONE; an error (or, with NLM_F_ACK,
  // an acknowledgement) for each of the rest.
  std::deque<std::string> Answer(std::string_view data, uint32_t port) {
    std::deque<std::string> out;
    size_t at = 0;
    while (at + sizeof(nlmsghdr) <= data.size()) {
      nlmsghdr h;
      memcpy(&h, data.data() + at, sizeof(h));
      if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > data.size() - at) break;
      std::string_view body = data.substr(at + NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN);
      at += NLMSG_ALIGN(h.nlmsg_len);
      if (!(h.nlmsg_flags & NLM_F_REQUEST) || h.nlmsg_type < NLMSG_MIN_TYPE) continue;
      const bool dump = (h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
      const int family = body.empty() ? AF_UNSPEC : static_cast<uint8_t>(body[0]);
      Builder b(port);
      int error = 0;
      switch (h.nlmsg_type) {
        case RTM_GETLINK:
          if (dump) {
            PutLink(b, NLM_F_MULTI, h.nlmsg_seq);
          } else {
            ifinfomsg ifi{};
            memcpy(&ifi, body.data(), std::min(body.size(), sizeof(ifi)));
            if (ifi.ifi_index != 0 && ifi.ifi_index != kLoopbackIndex) {
              error = ENODEV;
            } else {
              PutLink(b, 0, h.nlmsg_seq);
            }
          }
          break;
        case RTM_GETADDR:
          if (dump) {
            PutAddrs(b, family, NLM_F_MULTI, h.nlmsg_seq);
          } else {
            error = EOPNOTSUPP;
          }
          break;
        case RTM_GETROUTE:
        case RTM_GETNEIGH:
        case RTM_GETRULE:
        case RTM_GETQDISC:
          // No routes, neighbours, rules or queues beyond loopback's.
          if (!dump) error = ENETUNREACH;
          break;
        default:
          error = EOPNOTSUPP;
      }
      if (error == 0 && !b.empty()) out.push_back(b.Take());
      if (error == 0 && dump) {
        Builder done(port);
        done.Begin(NLMSG_DONE, NLM_F_MULTI, h.nlmsg_seq);
        const int zero = 0;
        done.Put(&zero, sizeof(zero));
        done.End();
        out.push_back(done.Take());
      }
      if (error != 0 || (h.nlmsg_flags & NLM_F_ACK)) {
        // nlmsgerr: the error and the request's header.
        Builder e(port);
        e.Begin(NLMSG_ERROR, 0, h.nlmsg_seq);
        nlmsgerr err{};
        err.error = -error;
        err.msg = h;
        e.Put(&err, sizeof(err));
        e.End();
        out.push_back(e.Take());
      }
    }
    return out;
  }

  const int type_;
  int32_t port_ ABSL_GUARDED_BY(g_ports_mu) = 0;
  absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;  // bytes in queue_
  bool overrun_ ABSL_GUARDED_BY(mu_) = false;
  std::map<int, bool> options_ ABSL_GUARDED_BY(mu_);
  int sndbuf_ ABSL_GUARDED_BY(mu_) = 212992;
  int rcvbuf_ ABSL_GUARDED_BY(mu_) = 212992;
  WaitQueue waiters_;
};

}  // namespace

Result<vfs::FileRef> NewNetlinkSocket(Task& t, int type, int protocol, int flags) {
  if (type != SOCK_RAW && type != SOCK_DGRAM) return Errno{ESOCKTNOSUPPORT};
  if (protocol != NETLINK_ROUTE) return Errno{EPROTONOSUPPORT};
  return vfs::FileRef(std::make_shared<NetlinkSocket>(
      std::make_shared<SocketInode>(t.fsuid, t.fsgid), flags, type));
}

}  // namespace husk::net
