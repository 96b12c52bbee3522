#include "cli/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/fd.h"
#include "base/fd_passing.h"
#include "sentry/net/stack/wire.h"

namespace husk::cli {
namespace {

bool SameNetns(const char* a, const char* b) {
  struct stat sa {
  }, sb{};
  if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int PrefixOf(uint32_t mask_host) {
  int n = 0;
  while (n < 32 && (mask_host & (0x80000000u >> n))) n++;
  return n;
}

// The length of a netmask's prefix (its leading one bits).
int PrefixOfMask(const uint8_t* mask, size_t n) {
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    for (int b = 7; b >= 0; b--) {
      if (!(mask[i] & (1 << b))) return bits;
      bits++;
    }
  }
  return bits;
}

// RTM_NEWADDR or RTM_DELADDR of an IPv4 or IPv6 address; 0 or an errno.
int ChangeAddress(int type, int ifindex, const netstack::Ip& ip, int prefix) {
  const bool v4 = netstack::IsV4(ip);
  const uint8_t* addr = v4 ? ip.data() + 12 : ip.data();
  const size_t alen = v4 ? 4 : 16;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return errno;
  struct {
    nlmsghdr nh;
    ifaddrmsg ifa;
    char attrs[64];
  } req{};
  req.nh.nlmsg_type = static_cast<uint16_t>(type);
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (type == RTM_NEWADDR ? NLM_F_CREATE : 0);
  req.nh.nlmsg_seq = 1;
  req.ifa.ifa_family = v4 ? AF_INET : AF_INET6;
  req.ifa.ifa_prefixlen = static_cast<uint8_t>(prefix);
  req.ifa.ifa_index = static_cast<uint32_t>(ifindex);
  size_t len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  for (int attr : {IFA_LOCAL, IFA_ADDRESS}) {
    auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(len));
    rta->rta_type = static_cast<uint16_t>(attr);
    rta->rta_len = static_cast<unsigned short>(RTA_LENGTH(alen));
    memcpy(RTA_DATA(rta), addr, alen);
    len = NLMSG_ALIGN(len) + RTA_ALIGN(rta->rta_len);
  }
  req.nh.nlmsg_len = static_cast<uint32_t>(len);
  int err = 0;
  if (send(fd, &req, len, 0) < 0) {
    err = errno;
  } else {
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr)))) {
      err = EIO;
    } else {
      auto* nh = reinterpret_cast<nlmsghdr*>(buf);
      if (nh->nlmsg_type == NLMSG_ERROR) {
        err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(nh))->error;
      }
    }
  }
  close(fd);
  return err;
}

// RTM_NEWROUTE of a gateway route through interface `ifindex`; 0 or an
// errno.
int AddGatewayRoute(int ifindex, const net::RouteSpec& r) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return errno;
  const bool v4 = netstack::IsV4(r.dst);
  const size_t alen = v4 ? 4 : 16;
  struct {
    nlmsghdr nh;
    rtmsg rt;
    char attrs[128];
  } req{};
  req.nh.nlmsg_type = RTM_NEWROUTE;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  req.nh.nlmsg_seq = 1;
  req.rt.rtm_family = v4 ? AF_INET : AF_INET6;
  req.rt.rtm_dst_len = static_cast<uint8_t>(r.prefix);
  req.rt.rtm_table = RT_TABLE_MAIN;
  req.rt.rtm_protocol = RTPROT_BOOT;
  req.rt.rtm_scope = RT_SCOPE_UNIVERSE;
  req.rt.rtm_type = RTN_UNICAST;
  size_t len = NLMSG_LENGTH(sizeof(rtmsg));
  auto attr = [&](uint16_t type, const void* data, size_t n) {
    auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(len));
    rta->rta_type = type;
    rta->rta_len = static_cast<unsigned short>(RTA_LENGTH(n));
    memcpy(RTA_DATA(rta), data, n);
    len = NLMSG_ALIGN(len) + RTA_ALIGN(rta->rta_len);
  };
  if (r.prefix > 0) attr(RTA_DST, v4 ? r.dst.data() + 12 : r.dst.data(), alen);
  attr(RTA_GATEWAY, v4 ? r.gateway.data() + 12 : r.gateway.data(), alen);
  const uint32_t oif = static_cast<uint32_t>(ifindex);
  attr(RTA_OIF, &oif, sizeof(oif));
  req.nh.nlmsg_len = static_cast<uint32_t>(len);
  int err = 0;
  if (send(fd, &req, len, 0) < 0) {
    err = errno;
  } else {
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    auto* nh = reinterpret_cast<nlmsghdr*>(buf);
    if (n >= static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))) &&
        nh->nlmsg_type == NLMSG_ERROR) {
      err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(nh))->error;
    }
  }
  close(fd);
  return err;
}

int OpenPacketSocket(int ifindex, net::NicSpec* n) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) return -1;
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  int one = 1;
  int big = 8 << 20;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  // Frames with a virtio_net_hdr: the sandbox's TCP hands the host many
  // segments at once (GSO), and learns which frames' checksums the host
  // left to offload. Older kernels without it get plain frames.
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) == 0) n->vnet = true;
  // A receive ring (after the header's setting, which a ring freezes):
  // room for as many frames as the ring holds, where a receive queue would
  // be held to net.core.rmem_max, and frames read without a copy or a
  // system call each. Without one (no memory for it), recvmsg.
  int version = TPACKET_V2;
  tpacket_req req{};
  req.tp_block_size = net::kRingBlock;
  req.tp_block_nr = net::kRingBlocks;
  req.tp_frame_size = net::kRingFrame;
  req.tp_frame_nr = (net::kRingBlock / net::kRingFrame) * net::kRingBlocks;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) == 0 &&
      setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) == 0) {
    n->ring_frame = net::kRingFrame;
    n->ring_block = net::kRingBlock;
    n->ring_blocks = net::kRingBlocks;
  }
  // Room for bursts (root may pass net.core.rmem_max).
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  }
  return fd;
}

// The interfaces that are up with an address (loopback aside) and the
// routes through them. take: for the sandbox's stack (packet sockets, the
// addresses taken off the host); else described only (--network=host).
bool Collect(TakenNetwork* out, bool take, bool required, std::string* why);

}  // namespace

bool TakeNetwork(TakenNetwork* out, bool required, std::string* why) {
  if (SameNetns("/proc/self/ns/net", "/proc/1/ns/net")) {
    *why =
        "the sandbox's network takes the interfaces of the network namespace it starts in away "
        "from the host; run it in a namespace of its own (ip netns exec NAME husk do ...), not in "
        "pid 1's";
    return false;
  }
  return Collect(out, /*take=*/true, required, why);
}

bool DescribeNetwork(TakenNetwork* out, std::string* why) {
  return Collect(out, /*take=*/false, /*required=*/false, why);
}

namespace {

bool Collect(TakenNetwork* out, bool take, bool required, std::string* why) {
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) {
    *why = absl::StrCat("list the interfaces: ", strerror(errno));
    return false;
  }
  struct Iface {
    unsigned flags = 0;
    std::vector<std::pair<netstack::Ip, int>> addrs;  // address, prefix
  };
  std::map<std::string, Iface> ifaces;
  for (ifaddrs* i = ifa; i != nullptr; i = i->ifa_next) {
    Iface& f = ifaces[i->ifa_name];
    f.flags = i->ifa_flags;
    if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      uint32_t a = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
      uint32_t m = reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr;
      f.addrs.emplace_back(netstack::V4(ntohl(a)), PrefixOf(ntohl(m)));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      // IPv6 too, link-local included: the sandbox answers neighbour
      // discovery for them.
      netstack::Ip a;
      memcpy(a.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
      const auto* m = reinterpret_cast<const uint8_t*>(
          &reinterpret_cast<sockaddr_in6*>(i->ifa_netmask)->sin6_addr);
      f.addrs.emplace_back(a, PrefixOfMask(m, 16));
    }
  }
  freeifaddrs(ifa);
  int ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  for (const auto& [name, f] : ifaces) {
    if ((f.flags & IFF_LOOPBACK) || !(f.flags & IFF_UP) || f.addrs.empty()) continue;
    int index = static_cast<int>(if_nametoindex(name.c_str()));
    ifreq ifr{};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name.c_str());
    net::NicSpec n;
    n.name = name;
    if (ctl < 0 || index == 0 || ioctl(ctl, SIOCGIFHWADDR, &ifr) != 0 ||
        ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
      continue;  // not Ethernet: it stays the host's
    }
    memcpy(n.mac.data(), ifr.ifr_hwaddr.sa_data, 6);
    n.mtu = ioctl(ctl, SIOCGIFMTU, &ifr) == 0 ? static_cast<uint32_t>(ifr.ifr_mtu) : 1500;
    n.mtu = std::clamp<uint32_t>(n.mtu, 576, 65535);
    if (!take) {
      // Described, not taken (--network=host): the host keeps driving it.
      n.ifindex = index;
      n.addrs = f.addrs;
      out->nics.push_back(std::move(n));
      continue;
    }
    n.fd = OpenPacketSocket(index, &n);
    if (n.fd < 0) {
      *why = absl::StrCat("open a packet socket on ", name, ": ", strerror(errno));
      if (ctl >= 0) close(ctl);
      RestoreNetwork(out);
      return false;
    }
    for (const auto& [a, prefix] : f.addrs) {
      n.addrs.emplace_back(a, prefix);
      out->removed.push_back({index, a, prefix});
    }
    out->nics.push_back(std::move(n));
  }
  if (ctl >= 0) close(ctl);
  if (out->nics.empty()) {
    if (!required) return true;
    *why = "no interface here is up with an address";
    return false;
  }
  // The routes through the interfaces taken (gateways and other subnets;
  // an interface's own subnet the sentry adds itself).
  std::ifstream routes("/proc/net/route");
  std::string line;
  std::getline(routes, line);  // the header
  while (std::getline(routes, line)) {
    std::istringstream in(line);
    std::string name;
    unsigned dst, gw, flags, refcnt, use, metric, mask;
    if (!(in >> name >> std::hex >> dst >> gw >> flags >> std::dec >> refcnt >> use >> metric >>
          std::hex >> mask)) {
      continue;
    }
    // Taken: the gateway routes (the sandbox's stack adds its subnets'
    // itself). Described: all of them.
    if (!(flags & RTF_UP) || (take && !(flags & RTF_GATEWAY))) continue;
    bool ours = false;
    for (const net::NicSpec& n : out->nics) ours = ours || n.name == name;
    if (!ours) continue;
    net::RouteSpec r;
    r.dst = netstack::V4(ntohl(dst));
    r.prefix = PrefixOf(ntohl(mask));
    r.gateway = netstack::V4(ntohl(gw));
    r.has_gateway = (flags & RTF_GATEWAY) != 0;
    r.nic = name;
    out->routes.push_back(r);
  }
  // IPv6's: "DST LEN SRC LEN NEXTHOP METRIC REFCNT USE FLAGS IFACE", hex.
  std::ifstream routes6("/proc/net/ipv6_route");
  while (std::getline(routes6, line)) {
    std::istringstream in(line);
    std::string dst, src, hop, name;
    unsigned len, slen, metric, refcnt, use, flags;
    if (!(in >> dst >> std::hex >> len >> src >> slen >> hop >> metric >> refcnt >> use >> flags >>
          name) ||
        dst.size() != 32 || hop.size() != 32 || !(flags & RTF_UP) ||
        (take && !(flags & RTF_GATEWAY))) {
      continue;
    }
    bool ours = false;
    for (const net::NicSpec& n : out->nics) ours = ours || n.name == name;
    if (!ours) continue;
    net::RouteSpec r;
    for (int i = 0; i < 16; i++) {
      r.dst[i] = static_cast<uint8_t>(std::stoi(dst.substr(2 * i, 2), nullptr, 16));
      r.gateway[i] = static_cast<uint8_t>(std::stoi(hop.substr(2 * i, 2), nullptr, 16));
    }
    r.prefix = static_cast<int>(len);
    r.has_gateway = (flags & RTF_GATEWAY) != 0;
    r.nic = name;
    out->routes.push_back(r);
  }
  for (const TakenNetwork::Removed& r : out->removed) {
    if (int e = ChangeAddress(RTM_DELADDR, r.ifindex, r.addr, r.prefix); e != 0) {
      *why = absl::StrCat("take the address off interface ", r.ifindex, ": ", strerror(e));
      RestoreNetwork(out);
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsOurNetns(const std::string& path) { return SameNetns(path.c_str(), "/proc/self/ns/net"); }

void RestoreNetwork(TakenNetwork* taken) {
  for (const TakenNetwork::Removed& r : taken->removed) {
    ChangeAddress(RTM_NEWADDR, r.ifindex, r.addr, r.prefix);
  }
  // The gateway routes went with the addresses: they come back too.
  if (!taken->removed.empty()) {
    for (const net::RouteSpec& r : taken->routes) {
      const int index = static_cast<int>(if_nametoindex(r.nic.c_str()));
      if (index != 0) AddGatewayRoute(index, r);
    }
  }
  taken->removed.clear();
  for (net::NicSpec& n : taken->nics) {
    if (n.fd >= 0) close(n.fd);
    n.fd = -1;
  }
}

}  // namespace husk::cli

namespace husk::cli {

absl::Status HandNetworkToSandbox(const std::string& netns, int start) {
  UniqueFd ns(open(netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) {
    return absl::NotFoundError(
        absl::StrCat("the network namespace ", netns, ": ", strerror(errno)));
  }
  int result[2];
  if (pipe2(result, O_CLOEXEC) != 0) return absl::InternalError(strerror(errno));
  // setns is for one thread of a process: a child does the work.
  pid_t child = fork();
  if (child < 0) return absl::InternalError(strerror(errno));
  if (child == 0) {
    close(result[0]);
    auto say = [&](const std::string& s) {
      (void)!write(result[1], s.data(), s.size());
      _exit(0);
    };
    if (setns(ns.get(), CLONE_NEWNET) != 0) say(absl::StrCat("setns: ", strerror(errno)));
    TakenNetwork taken;
    std::string why;
    if (!TakeNetwork(&taken, /*required=*/false, &why)) say(why);
    if (taken.nics.empty()) say("ok");  // loopback alone
    if (taken.nics.size() > 3) say("more than three interfaces are not supported yet");
    int status[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, status) != 0) {
      say(absl::StrCat("socketpair: ", strerror(errno)));
    }
    std::string msg = "N";
    std::vector<int> fds = {status[1]};
    for (size_t i = 0; i < taken.nics.size(); i++) {
      net::NicSpec n = taken.nics[i];
      fds.push_back(n.fd);
      n.fd = static_cast<int>(i);
      absl::StrAppend(&msg, "nic ", net::FormatNicSpec(n), "\n");
    }
    for (const net::RouteSpec& r : taken.routes) {
      absl::StrAppend(&msg, "route ", net::FormatRouteSpec(r), "\n");
    }
    if (!SendWithFds(start, msg, fds)) {
      say(absl::StrCat("hand the interfaces to the sandbox: ", strerror(errno)));
    }
    close(status[1]);
    char answer[512];
    ssize_t n = recv(status[0], answer, sizeof(answer), 0);
    if (n <= 0) say("the sandbox did not answer for its interfaces");
    std::string a(answer, static_cast<size_t>(n));
    if (a == "ok\n") say("ok");
    say(a.rfind("error ", 0) == 0 ? a.substr(6, a.size() - 7) : a);
  }
  close(result[1]);
  std::string answer;
  char buf[512];
  ssize_t n;
  while ((n = read(result[0], buf, sizeof(buf))) > 0) answer.append(buf, static_cast<size_t>(n));
  close(result[0]);
  waitpid(child, nullptr, 0);
  if (answer == "ok") return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("the container's network: ", answer.empty() ? "the helper died" : answer));
}

}  // namespace husk::cli
