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
#include "sentry/net/netdev.h"

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

// RTM_NEWLINK for an interface, as ip link shows it.
void PutLink(Builder& b, const InterfaceInfo& i, uint16_t flags, uint32_t seq) {
  b.Begin(RTM_NEWLINK, flags, seq);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_type = i.loopback ? ARPHRD_LOOPBACK : ARPHRD_ETHER;
  ifi.ifi_index = i.index;
  ifi.ifi_flags = IFF_UP | IFF_RUNNING | IFF_LOWER_UP |
                  (i.loopback ? IFF_LOOPBACK : IFF_BROADCAST | IFF_MULTICAST);
  b.Put(&ifi, sizeof(ifi));
  b.AttrString(IFLA_IFNAME, i.name.c_str());
  b.AttrU32(IFLA_TXQLEN, 1000);
  b.AttrU8(IFLA_OPERSTATE, i.loopback ? 0 : 6);  // IF_OPER_UNKNOWN as Linux's lo; IF_OPER_UP
  b.AttrU8(IFLA_LINKMODE, 0);
  b.AttrU32(IFLA_MTU, i.mtu);
  b.AttrU32(IFLA_GROUP, 0);
  b.AttrU32(IFLA_PROMISCUITY, 0);
  b.AttrU32(IFLA_NUM_TX_QUEUES, 1);
  b.AttrU32(IFLA_NUM_RX_QUEUES, 1);
  b.AttrU8(IFLA_CARRIER, 1);
  b.AttrString(IFLA_QDISC, "noqueue");
  const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  b.Attr(IFLA_ADDRESS, i.mac.data(), i.mac.size());
  if (i.loopback) {
    b.Attr(IFLA_BROADCAST, i.mac.data(), i.mac.size());
  } else {
    b.Attr(IFLA_BROADCAST, broadcast, sizeof(broadcast));
  }
  // Loopback counts nothing: its connections are joined in the sentry.
  rtnl_link_stats stats{};
  stats.rx_packets = static_cast<uint32_t>(i.rx_packets);
  stats.tx_packets = static_cast<uint32_t>(i.tx_packets);
  stats.rx_bytes = static_cast<uint32_t>(i.rx_bytes);
  stats.tx_bytes = static_cast<uint32_t>(i.tx_bytes);
  stats.rx_dropped = static_cast<uint32_t>(i.rx_dropped);
  stats.tx_dropped = static_cast<uint32_t>(i.tx_dropped);
  b.Attr(IFLA_STATS, &stats, sizeof(stats));
  b.End();
}

// RTM_NEWADDR for the interfaces' addresses of `family` (AF_UNSPEC: all).
void PutAddrs(Builder& b, const std::vector<InterfaceInfo>& ifs, int family, uint16_t flags,
              uint32_t seq) {
  ifa_cacheinfo ci{};
  ci.ifa_prefered = ci.ifa_valid = 0xffffffff;
  for (int want : {AF_INET, AF_INET6}) {
    if (family != AF_UNSPEC && family != want) continue;
    for (const InterfaceInfo& i : ifs) {
      for (const auto& [ip, prefix] : i.addrs) {
        const bool v4 = netstack::IsV4(ip);
        if (v4 != (want == AF_INET)) continue;
        b.Begin(RTM_NEWADDR, flags, seq);
        ifaddrmsg ifa{};
        ifa.ifa_family = static_cast<uint8_t>(want);
        ifa.ifa_prefixlen = static_cast<uint8_t>(prefix);
        ifa.ifa_flags = IFA_F_PERMANENT;
        ifa.ifa_scope = i.loopback ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
        ifa.ifa_index = static_cast<uint32_t>(i.index);
        b.Put(&ifa, sizeof(ifa));
        if (v4) {
          const in_addr a = {htonl(netstack::V4Of(ip))};
          b.Attr(IFA_ADDRESS, &a, sizeof(a));
          b.Attr(IFA_LOCAL, &a, sizeof(a));
          if (!i.loopback && prefix < 31) {
            const uint32_t host = prefix == 0 ? ~0u : (1u << (32 - prefix)) - 1;
            const in_addr bc = {htonl(netstack::V4Of(ip) | host)};
            b.Attr(IFA_BROADCAST, &bc, sizeof(bc));
          }
          b.AttrString(IFA_LABEL, i.name.c_str());
          b.AttrU32(IFA_FLAGS, IFA_F_PERMANENT);
          b.Attr(IFA_CACHEINFO, &ci, sizeof(ci));
        } else {
          b.Attr(IFA_ADDRESS, ip.data(), ip.size());
          b.Attr(IFA_CACHEINFO, &ci, sizeof(ci));
          b.AttrU32(IFA_FLAGS, IFA_F_PERMANENT | IFA_F_NOPREFIXROUTE);
        }
        b.End();
      }
    }
  }
}

// RTM_NEWROUTE for the main table's IPv4 routes (the stack's; loopback's
// live in the local table, which a dump of main leaves out).
void PutRoutes(Builder& b, const std::vector<InterfaceInfo>& ifs, int family, uint16_t flags,
               uint32_t seq) {
  for (const RouteSpec& r : Routes()) {
    const bool v4 = netstack::IsV4(r.dst);
    if (family != AF_UNSPEC && family != (v4 ? AF_INET : AF_INET6)) continue;
    // An address as the family writes it: 4 bytes of IPv4, or 16.
    auto put = [&](uint16_t type, const netstack::Ip& ip) {
      b.Attr(type, v4 ? ip.data() + 12 : ip.data(), v4 ? 4 : 16);
    };
    b.Begin(RTM_NEWROUTE, flags, seq);
    rtmsg rt{};
    rt.rtm_family = static_cast<uint8_t>(v4 ? AF_INET : AF_INET6);
    rt.rtm_dst_len = static_cast<uint8_t>(r.prefix);
    rt.rtm_table = RT_TABLE_MAIN;
    rt.rtm_protocol = r.has_gateway ? RTPROT_BOOT : RTPROT_KERNEL;
    rt.rtm_scope = r.has_gateway || !v4 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    rt.rtm_type = RTN_UNICAST;
    b.Put(&rt, sizeof(rt));
    b.AttrU32(RTA_TABLE, RT_TABLE_MAIN);
    if (r.prefix > 0) put(RTA_DST, r.dst);
    int oif = 0;
    for (const InterfaceInfo& i : ifs) {
      if (i.name != r.nic) continue;
      oif = i.index;
      if (!r.has_gateway && v4) {
        for (const auto& [ip, prefix] : i.addrs) {
          if (!netstack::IsV4(ip)) continue;
          put(RTA_PREFSRC, ip);
          break;
        }
      }
    }
    if (r.has_gateway) put(RTA_GATEWAY, r.gateway);
    b.AttrU32(RTA_OIF, static_cast<uint32_t>(oif));
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
      const std::vector<InterfaceInfo> ifs = Interfaces();
      switch (h.nlmsg_type) {
        case RTM_GETLINK:
          if (dump) {
            for (const InterfaceInfo& i : ifs) PutLink(b, i, NLM_F_MULTI, h.nlmsg_seq);
          } else {
            ifinfomsg ifi{};
            memcpy(&ifi, body.data(), std::min(body.size(), sizeof(ifi)));
            const int want = ifi.ifi_index != 0 ? ifi.ifi_index : kLoopbackIndex;
            error = ENODEV;
            for (const InterfaceInfo& i : ifs) {
              if (i.index == want) {
                PutLink(b, i, 0, h.nlmsg_seq);
                error = 0;
              }
            }
          }
          break;
        case RTM_GETADDR:
          if (dump) {
            PutAddrs(b, ifs, family, NLM_F_MULTI, h.nlmsg_seq);
          } else {
            error = EOPNOTSUPP;
          }
          break;
        case RTM_GETROUTE:
          if (dump) {
            PutRoutes(b, ifs, family, NLM_F_MULTI, h.nlmsg_seq);
          } else if (!dump) {
            error = ENETUNREACH;
          }
          break;
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
