#include "sentry/net/netdev.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <system_error>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "sentry/net/stack/stack.h"
#include "sentry/net/stack/tcp.h"
#include "sentry/net/unix.h"

namespace husk::net {
namespace {

// struct virtio_net_hdr (linux/virtio_net.h, which C++ cannot include):
// what PACKET_VNET_HDR puts before each frame, in the host's byte order.
struct VnetHeader {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len, gso_size, csum_start, csum_offset;
};
static_assert(sizeof(VnetHeader) == 10);
constexpr uint8_t kVnetNeedsCsum = 1, kVnetDataValid = 2;  // VIRTIO_NET_HDR_F_*
constexpr uint8_t kVnetGsoTcpv4 = 1, kVnetGsoTcpv6 = 4;    // VIRTIO_NET_HDR_GSO_TCPV4, _TCPV6
constexpr uint8_t kVnetGsoUdpL4 = 5;                       // VIRTIO_NET_HDR_GSO_UDP_L4

// Frames go out with write(2) on the packet socket; a full queue drops
// them, as a full device queue does (TCP sends them again).
class PacketLink : public netstack::Link {
 public:
  PacketLink(int fd, bool vnet) : fd_(fd), vnet_(vnet) {}
  void Transmit(netstack::Bytes frame, const netstack::GsoInfo& gso) override {
    ssize_t n;
    if (vnet_) {
      VnetHeader h{};
      if (gso.size != 0) {
        h.flags = kVnetNeedsCsum;
        h.gso_type = gso.v6 ? kVnetGsoTcpv6 : kVnetGsoTcpv4;
        h.hdr_len = gso.hdr_len;
        h.gso_size = gso.size;
        h.csum_start = gso.csum_start;
        h.csum_offset = gso.csum_offset;
      }
      iovec iov[2] = {{&h, sizeof(h)}, {const_cast<uint8_t*>(frame.data()), frame.size()}};
      n = writev(fd_, iov, 2);
    } else {
      n = write(fd_, frame.data(), frame.size());
    }
    if (n < 0) dropped_.fetch_add(1);
  }

 private:
  int fd_;
  bool vnet_;
  std::atomic<uint64_t> dropped_{0};
};

struct Network {
  std::vector<NicSpec> specs;
  std::vector<std::unique_ptr<PacketLink>> links;
  std::unique_ptr<netstack::Stack> stack;
  std::vector<int> nic_index;  // the stack's index of specs[i]
  int wake_fd = -1;
};

Network* g_net = nullptr;  // set once, before the thread and any socket use it

// --network=host's view of the host's interfaces and routes (set once at
// boot, before any task runs).
struct HostView {
  std::vector<NicSpec> nics;
  std::vector<RouteSpec> routes;
};
HostView* g_host = nullptr;

void Kick() {
  uint64_t one = 1;
  if (g_net != nullptr && write(g_net->wake_fd, &one, sizeof(one)) < 0) {
    // Already pending: the thread wakes anyway.
  }
}

int64_t Now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void Loop(Network* net) {
  constexpr int kBatch = 64;
  constexpr size_t kFrame = 65536 + 256;  // a GRO'd frame from a veth may be that big
  struct Slot {
    std::vector<uint8_t> buf = std::vector<uint8_t>(kFrame);
    size_t len = 0;
    int nic = 0;
    bool checksum_ok = false;
  };
  std::vector<Slot> slots(kBatch);
  std::vector<pollfd> fds;
  for (const NicSpec& n : net->specs) fds.push_back({n.fd, POLLIN, 0});
  fds.push_back({net->wake_fd, POLLIN, 0});
  size_t first = 0;  // the interface read first, in turn, so none starves the others
  for (;;) {
    int got = 0;
    bool more = false;
    first = (first + 1) % net->specs.size();
    for (size_t k = 0; k < net->specs.size(); k++) {
      const size_t i = (first + k) % net->specs.size();
      int from_this = 0;
      while (got < kBatch) {
        Slot& s = slots[got];
        const bool vnet = net->specs[i].vnet;
        VnetHeader vh{};
        iovec iov[2] = {{&vh, sizeof(vh)}, {s.buf.data(), s.buf.size()}};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(tpacket_auxdata))];
        msghdr mh{};
        mh.msg_iov = vnet ? iov : iov + 1;
        mh.msg_iovlen = vnet ? 2 : 1;
        mh.msg_control = control;
        mh.msg_controllen = sizeof(control);
        ssize_t n = recvmsg(net->specs[i].fd, &mh, MSG_DONTWAIT);
        if (n <= 0) break;
        // A GSO frame of UDP segments (UDP_SEGMENT on the host's side) is
        // many datagrams the stack would take for one: it is dropped.
        if (vnet &&
            (n < static_cast<ssize_t>(sizeof(vh)) || (vh.gso_type & 0x7f) == kVnetGsoUdpL4)) {
          continue;
        }
        s.len = static_cast<size_t>(n) - (vnet ? sizeof(vh) : 0);
        s.nic = net->nic_index[i];
        // A frame of the host's own with its checksum left to offload (or
        // one the host checked).
        s.checksum_ok = vnet && (vh.flags & (kVnetNeedsCsum | kVnetDataValid)) != 0;
        for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
          if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
            tpacket_auxdata aux;
            memcpy(&aux, CMSG_DATA(c), sizeof(aux));
            // Checked by the host's driver, or made locally with the
            // checksum left to offload (the bytes are as sent).
            s.checksum_ok = s.checksum_ok ||
                            (aux.tp_status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID)) != 0;
          }
        }
        got++;
        from_this++;
      }
      if (got == kBatch) more = true;
    }
    int64_t next = RunStack([&](netstack::Stack& st, int64_t now) {
      for (int k = 0; k < got; k++) {
        st.Input(slots[k].nic, netstack::Bytes(slots[k].buf.data(), slots[k].len),
                 slots[k].checksum_ok, now);
      }
    });
    if (more) continue;
    int timeout = -1;
    if (next != INT64_MAX) {
      int64_t ms = (next - Now() + 999999) / 1000000;
      timeout = static_cast<int>(std::clamp<int64_t>(ms, 0, 60000));
    }
    if (poll(fds.data(), fds.size(), timeout) > 0 && (fds.back().revents & POLLIN)) {
      uint64_t v;
      if (read(net->wake_fd, &v, sizeof(v)) < 0) {
        // Nothing was pending.
      }
    }
  }
}

// An IPv4 dotted quad or an IPv6 address.
bool ParseIp4(const std::string& s, netstack::Ip* out) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) == 1) {
    *out = netstack::V4(ntohl(a.s_addr));
    return true;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, s.c_str(), &a6) != 1) return false;
  memcpy(out->data(), &a6, 16);
  return !netstack::IsV4(*out);
}

bool ParsePrefixed(const std::string& s, netstack::Ip* ip, int* prefix) {
  std::vector<std::string> p = absl::StrSplit(s, '/');
  return p.size() == 2 && ParseIp4(p[0], ip) && absl::SimpleAtoi(p[1], prefix) && *prefix >= 0 &&
         *prefix <= (netstack::IsV4(*ip) ? 32 : 128);
}

// The network an address of `prefix` bits is in.
netstack::Ip NetworkOf(const netstack::Ip& ip, int prefix) {
  netstack::Ip net = ip;
  int bits = netstack::IsV4(ip) ? 96 + prefix : prefix;
  for (int i = 0; i < 16; i++, bits -= 8) {
    if (bits >= 8) continue;
    net[i] = bits <= 0 ? 0 : static_cast<uint8_t>(net[i] & (0xff << (8 - bits)));
  }
  return net;
}

std::string Ip4(const netstack::Ip& ip) { return netstack::IpString(ip); }

}  // namespace

bool ParseNicSpec(const std::string& text, NicSpec* out) {
  std::vector<std::string> p = absl::StrSplit(text, ',');
  if (p.size() < 4 || !absl::SimpleAtoi(p[0], &out->fd) || p[1].empty() || p[1].size() > 15) {
    return false;
  }
  out->name = p[1];
  unsigned m[6];
  if (sscanf(p[2].c_str(), "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
    return false;
  }
  for (int i = 0; i < 6; i++) out->mac[i] = static_cast<uint8_t>(m[i]);
  if (!absl::SimpleAtoi(p[3], &out->mtu) || out->mtu < 576 || out->mtu > 65535) return false;
  size_t first = 4;
  if (p.size() > first && p[first] == "vnet") {
    out->vnet = true;
    first++;
  }
  if (p.size() > first && absl::StartsWith(p[first], "ifindex=")) {
    if (!absl::SimpleAtoi(p[first].substr(8), &out->ifindex) || out->ifindex <= 0) return false;
    first++;
  }
  for (size_t i = first; i < p.size(); i++) {
    netstack::Ip ip;
    int prefix;
    if (!ParsePrefixed(p[i], &ip, &prefix)) return false;
    out->addrs.emplace_back(ip, prefix);
  }
  return true;
}

bool ParseRouteSpec(const std::string& text, RouteSpec* out) {
  std::vector<std::string> p = absl::StrSplit(text, ',');
  if (p.size() != 3 || !ParsePrefixed(p[0], &out->dst, &out->prefix) || p[2].empty()) return false;
  out->has_gateway = p[1] != "-";
  if (out->has_gateway && !ParseIp4(p[1], &out->gateway)) return false;
  out->nic = p[2];
  return true;
}

std::string FormatNicSpec(const NicSpec& n) {
  std::string s = absl::StrFormat("%d,%s,%02x:%02x:%02x:%02x:%02x:%02x,%u", n.fd, n.name, n.mac[0],
                                  n.mac[1], n.mac[2], n.mac[3], n.mac[4], n.mac[5], n.mtu);
  if (n.vnet) s += ",vnet";
  if (n.ifindex > 0) absl::StrAppend(&s, ",ifindex=", n.ifindex);
  for (const auto& [ip, prefix] : n.addrs) absl::StrAppend(&s, ",", Ip4(ip), "/", prefix);
  return s;
}

std::string FormatRouteSpec(const RouteSpec& r) {
  return absl::StrCat(Ip4(r.dst), "/", r.prefix, ",", r.has_gateway ? Ip4(r.gateway) : "-", ",",
                      r.nic);
}

Status StartNetwork(std::vector<NicSpec> nics, const std::vector<RouteSpec>& routes) {
  if (nics.empty()) return Ok();
  if (g_net != nullptr) return Errno{EBUSY};  // the sandbox has its interfaces
  auto net = std::make_unique<Network>();
  net->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (net->wake_fd < 0) return Errno{errno};
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) seed = static_cast<uint64_t>(Now());
  net->stack = std::make_unique<netstack::Stack>(SocketUpcalls(), seed);
  uint64_t key[2] = {};
  if (getrandom(key, sizeof(key), 0) == sizeof(key)) net->stack->SetCookieKey(key[0], key[1]);
  net->specs = std::move(nics);
  for (const NicSpec& n : net->specs) {
    net->links.push_back(std::make_unique<PacketLink>(n.fd, n.vnet));
    int index = net->stack->AddNic(n.name, n.mac, n.mtu, net->links.back().get(), n.vnet);
    net->nic_index.push_back(index);
    for (const auto& [ip, prefix] : n.addrs) {
      net->stack->AddAddress(index, ip, prefix);
      // The interface's own subnet is reached directly.
      netstack::Route r;
      r.dst = NetworkOf(ip, prefix);
      r.prefix = prefix;
      r.nic = index;
      net->stack->AddRoute(r);
    }
  }
  for (const RouteSpec& rs : routes) {
    for (size_t i = 0; i < net->specs.size(); i++) {
      if (net->specs[i].name != rs.nic) continue;
      netstack::Route r;
      r.dst = rs.dst;
      r.prefix = rs.prefix;
      r.gateway = rs.gateway;
      r.has_gateway = rs.has_gateway;
      r.nic = net->nic_index[i];
      net->stack->AddRoute(r);
    }
  }
  g_net = net.release();
  InstallStack(g_net->stack.get(), Kick);
  try {
    std::thread([] { Loop(g_net); }).detach();
  } catch (const std::system_error&) {
    return Errno{EAGAIN};
  }
  return Ok();
}

void DescribeHostNetwork(std::vector<NicSpec> nics, std::vector<RouteSpec> routes) {
  delete g_host;
  g_host = new HostView{std::move(nics), std::move(routes)};
}

std::vector<InterfaceInfo> Interfaces() {
  std::vector<InterfaceInfo> out;
  InterfaceInfo lo;
  lo.index = 1;
  lo.name = "lo";
  lo.mtu = 65536;
  lo.loopback = true;
  lo.addrs.emplace_back(netstack::V4(0x7f000001), 8);
  netstack::Ip v6lo{};
  v6lo[15] = 1;
  lo.addrs.emplace_back(v6lo, 128);
  out.push_back(lo);
  if (g_host != nullptr) {
    for (const NicSpec& n : g_host->nics) {
      InterfaceInfo i;
      i.index = n.ifindex;
      i.name = n.name;
      i.mac = n.mac;
      i.mtu = n.mtu;
      i.addrs = n.addrs;
      out.push_back(std::move(i));
    }
  }
  if (g_net == nullptr) return out;
  RunStack([&](netstack::Stack& st, int64_t) {
    for (const netstack::Nic& n : st.nics()) {
      InterfaceInfo i;
      i.index = n.index;
      i.name = n.name;
      i.mac = n.mac;
      i.mtu = n.mtu;
      i.addrs = n.addrs;
      i.rx_packets = n.rx_packets;
      i.rx_bytes = n.rx_bytes;
      i.rx_dropped = n.rx_dropped;
      i.tx_packets = n.tx_packets;
      i.tx_bytes = n.tx_bytes;
      i.tx_dropped = n.tx_dropped;
      out.push_back(std::move(i));
    }
  });
  return out;
}

std::vector<RouteSpec> Routes() {
  if (g_host != nullptr) return g_host->routes;
  std::vector<RouteSpec> out;
  if (g_net == nullptr) return out;
  RunStack([&](netstack::Stack& st, int64_t) {
    for (const netstack::Route& r : st.routes()) {
      RouteSpec rs;
      rs.dst = r.dst;
      rs.prefix = r.prefix;
      rs.gateway = r.gateway;
      rs.has_gateway = r.has_gateway;
      for (const netstack::Nic& n : st.nics()) {
        if (n.index == r.nic) rs.nic = n.name;
      }
      out.push_back(std::move(rs));
    }
  });
  return out;
}

}  // namespace husk::net

namespace husk::net {

std::string ProcNetDev() {
  std::string out =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n";
  for (const InterfaceInfo& i : Interfaces()) {
    absl::StrAppendFormat(&out,
                          "%6s:%8u %7u %4u %4u %4u %5u %10u %9u %8u %7u %4u %4u %4u %5u %7u %10u\n",
                          i.name, i.rx_bytes, i.rx_packets, 0, i.rx_dropped, 0, 0, 0, 0, i.tx_bytes,
                          i.tx_packets, 0, i.tx_dropped, 0, 0, 0, 0);
  }
  return out;
}

std::string ProcNetRoute() {
  // Addresses in the byte order the kernel prints a __be32 with %08X.
  auto hex = [](const netstack::Ip& ip) {
    return absl::StrFormat("%08X", htonl(netstack::V4Of(ip)));
  };
  auto mask = [](int prefix) {
    uint32_t m = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
    return absl::StrFormat("%08X", htonl(m));
  };
  std::string out =
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
      "                                                       \n";
  for (const RouteSpec& r : Routes()) {
    if (!netstack::IsV4(r.dst)) continue;                    // IPv6's are /proc/net/ipv6_route's
    const unsigned flags = 0x1 | (r.has_gateway ? 0x2 : 0);  // RTF_UP, RTF_GATEWAY
    absl::StrAppendFormat(&out, "%s\t%s\t%s\t%04X\t0\t0\t0\t%s\t0\t0\t0\n", r.nic, hex(r.dst),
                          hex(r.gateway), flags, mask(r.prefix));
  }
  return out;
}

std::string ProcNetIfInet6() {
  std::string out;
  for (const InterfaceInfo& i : Interfaces()) {
    for (const auto& [ip, prefix] : i.addrs) {
      if (netstack::IsV4(ip)) continue;
      std::string hex;
      for (uint8_t b : ip) absl::StrAppendFormat(&hex, "%02x", b);
      // Scope: host (loopback), link (fe80::/10), global.
      const int scope = i.loopback ? 0x10 : (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80) ? 0x20 : 0;
      absl::StrAppendFormat(&out, "%s %02x %02x %02x %02x %8s\n", hex, i.index, prefix, scope, 0x80,
                            i.name);
    }
  }
  return out;
}

std::string ProcNetSnmp() {
  netstack::Counters c;
  unsigned established = 0;
  RunStack([&](netstack::Stack& st, int64_t) {
    c = st.counters();
    for (const auto& ep : st.Connections()) {
      const auto s = ep->state();
      if (s == netstack::TcpEndpoint::kEstablished || s == netstack::TcpEndpoint::kCloseWait) {
        established++;
      }
    }
  });
  std::string out;
  absl::StrAppend(&out,
                  "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams "
                  "InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes "
                  "ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates\n");
  absl::StrAppendFormat(&out, "Ip: 2 64 %u %u %u 0 %u %u %u %u 0 %u %u %u %u %u %u 0 %u\n",
                        c.ip_in_receives, c.ip_in_hdr_errors, c.ip_in_addr_errors,
                        c.ip_in_unknown_protos, c.ip_in_discards, c.ip_in_delivers,
                        c.ip_out_requests, c.ip_out_no_routes, c.ip_reasm_timeout, c.ip_reasm_reqds,
                        c.ip_reasm_oks, c.ip_reasm_fails, c.ip_frag_oks, c.ip_frag_creates);
  absl::StrAppend(&out,
                  "Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs "
                  "InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps "
                  "InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal "
                  "OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs "
                  "OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks "
                  "OutAddrMaskReps\n");
  absl::StrAppendFormat(
      &out, "Icmp: %u %u 0 %u 0 0 0 0 %u %u 0 0 0 0 %u 0 0 0 %u 0 0 0 0 0 %u 0 0 0 0\n",
      c.icmp_in_msgs, c.icmp_in_errors, c.icmp_in_dest_unreachs, c.icmp_in_echos,
      c.icmp_in_echo_reps, c.icmp_out_msgs, c.icmp_out_dest_unreachs, c.icmp_out_echo_reps);
  absl::StrAppend(&out,
                  "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails "
                  "EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n");
  absl::StrAppendFormat(&out, "Tcp: 1 200 120000 -1 %u %u %u %u %u %u %u %u %u %u 0\n",
                        c.tcp_active_opens, c.tcp_passive_opens, c.tcp_attempt_fails,
                        c.tcp_estab_resets, established, c.tcp_in_segs, c.tcp_out_segs,
                        c.tcp_retrans_segs, c.tcp_in_errs, c.tcp_out_rsts);
  absl::StrAppend(&out,
                  "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors "
                  "InCsumErrors IgnoredMulti MemErrors\n");
  absl::StrAppendFormat(&out, "Udp: %u %u %u %u 0 0 0 0 0\n", c.udp_in_datagrams, c.udp_no_ports,
                        c.udp_in_errors, c.udp_out_datagrams);
  return out;
}

}  // namespace husk::net
