#include "sentry/net/netdev.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <system_error>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "sentry/net/packet_ring.h"
#include "sentry/net/stack/stack.h"
#include "sentry/net/stack/tcp.h"
#include "sentry/net/unix.h"

namespace husk::net {
namespace {

class PacketLink;

struct HeldFrame {
  PacketLink* link;
  VnetHeader vnet;
  std::string bytes;
};
// The frames the stack made and nobody wrote yet, in the order it made
// them (it runs under the sockets' lock, so they queue in that order),
// and the lock that lets one thread at a time write them, first to last:
// frames of two threads never overtake each other on the wire.
ABSL_CONST_INIT absl::Mutex g_tx_mu(absl::kConstInit);
std::deque<HeldFrame>* g_tx ABSL_GUARDED_BY(g_tx_mu) = nullptr;
ABSL_CONST_INIT absl::Mutex g_send_mu(absl::kConstInit);
// How many holds (HoldFrames) this thread is within.
thread_local int t_hold_depth = 0;

void WriteQueuedFrames();

// Frames go out with write(2) on the packet socket; a full queue drops
// them, as a full device queue does (TCP sends them again).
class PacketLink : public netstack::Link {
 public:
  PacketLink(int fd, bool vnet) : fd_(fd), vnet_(vnet) {}
  void Transmit(netstack::Bytes frame, const netstack::GsoInfo& gso) override {
    VnetHeader h{};
    if (gso.size != 0) {
      h.flags = kVnetNeedsCsum;
      h.gso_type = gso.v6 ? kVnetGsoTcpv6 : kVnetGsoTcpv4;
      h.hdr_len = gso.hdr_len;
      h.gso_size = gso.size;
      h.csum_start = gso.csum_start;
      h.csum_offset = gso.csum_offset;
    }
    {
      absl::MutexLock l(&g_tx_mu);
      if (g_tx == nullptr) g_tx = new std::deque<HeldFrame>();
      g_tx->push_back(
          {this, h, std::string(reinterpret_cast<const char*>(frame.data()), frame.size())});
    }
    // Outside any hold (no path drives the stack so, but if one did): at once.
    if (t_hold_depth == 0) WriteQueuedFrames();
  }
  void Send(const VnetHeader& h, const uint8_t* frame, size_t len) {
    ssize_t n;
    if (vnet_) {
      iovec iov[2] = {{const_cast<VnetHeader*>(&h), sizeof(h)}, {const_cast<uint8_t*>(frame), len}};
      n = writev(fd_, iov, 2);
    } else {
      n = write(fd_, frame, len);
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
  std::vector<RxRing> rings;  // specs[i]'s, or one not valid()
  // Frames the host's kernel dropped before the stack read them (a full
  // receive queue or ring), by PACKET_STATISTICS, which counts from its
  // last reading, and frames the ring cut short: specs[i]'s.
  std::unique_ptr<std::atomic<uint64_t>[]> host_drops;
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

// Whether the network thread has work it was told of, and whether it is
// (about to be) asleep in poll(2). A kick writes the eventfd only in the
// second case: while the thread is busy it sees the flag before it sleeps,
// so a reader opening the window after every read costs no system call and
// no cross-CPU wake-up. (Both sides store, then load the other's flag, all
// sequentially consistent: at least one of them sees the other's store.)
std::atomic<bool> g_kicked{false};
std::atomic<bool> g_asleep{false};

void Kick() {
  if (g_net == nullptr) return;
  g_kicked.store(true);
  if (!g_asleep.load()) return;
  uint64_t one = 1;
  if (write(g_net->wake_fd, &one, sizeof(one)) < 0) {
    // Already pending: the thread wakes anyway.
  }
}

int64_t Now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Frames the network thread reads before it runs the stack over them.
constexpr int kBatch = 64;

// A frame read, for the stack: in a slot of the thread's, or in a ring.
struct Frame {
  const uint8_t* data = nullptr;
  size_t len = 0;
  int nic = 0;
  bool checksum_ok = false;
};

// Reads frames from the packet socket into the thread's slots (one per
// Frame of out): at most `room` looked at, taken or dropped (counted in
// *dropped), as the ring's reader does, so that a flood of frames to drop
// ends the batch all the same.
int TakeFromSocket(Network* net, size_t i, Frame* out, std::vector<uint8_t>* slots, int room,
                   uint64_t* dropped) {
  const bool vnet = net->specs[i].vnet;
  int got = 0;
  while (got + static_cast<int>(*dropped) < room) {
    std::vector<uint8_t>& buf = slots[got];
    VnetHeader vh{};
    iovec iov[2] = {{&vh, sizeof(vh)}, {buf.data(), buf.size()}};
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
    if (vnet && (n < static_cast<ssize_t>(sizeof(vh)) || IsUdpGso(vh))) {
      ++*dropped;
      continue;
    }
    Frame& f = out[got];
    f.data = buf.data();
    f.len = static_cast<size_t>(n) - (vnet ? sizeof(vh) : 0);
    f.nic = net->nic_index[i];
    // A frame of the host's own with its checksum left to offload (or
    // one the host checked).
    f.checksum_ok = vnet && VnetChecksumOk(vh);
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
        tpacket_auxdata aux;
        memcpy(&aux, CMSG_DATA(c), sizeof(aux));
        // Checked by the host's driver, or made locally with the
        // checksum left to offload (the bytes are as sent).
        f.checksum_ok = f.checksum_ok || StatusChecksumOk(aux.tp_status);
      }
    }
    got++;
  }
  return got;
}

void Loop(Network* net) {
  constexpr size_t kFrame = 65536 + 256;  // a GRO'd frame from a veth may be that big
  bool any_socket = false;
  for (const RxRing& r : net->rings) any_socket = any_socket || !r.valid();
  // Slots for frames read with recvmsg (interfaces without a ring).
  std::vector<std::vector<uint8_t>> slots(any_socket ? kBatch : 0, std::vector<uint8_t>(kFrame));
  std::vector<Frame> frames(kBatch);
  RxRing::Frame from_ring[kBatch];
  std::vector<pollfd> fds;
  for (const NicSpec& n : net->specs) fds.push_back({n.fd, POLLIN, 0});
  fds.push_back({net->wake_fd, POLLIN, 0});
  size_t first = 0;  // the interface read first, in turn, so none starves the others
  for (;;) {
    int got = 0;
    bool more = false;
    first = (first + 1) % net->specs.size();
    int used = 0;  // frames looked at: taken, or dropped on the way
    for (size_t k = 0; k < net->specs.size() && used < kBatch; k++) {
      const size_t i = (first + k) % net->specs.size();
      if (RxRing& ring = net->rings[i]; ring.valid()) {
        uint64_t dropped = 0;
        const int n = ring.Take(kBatch - used, from_ring, &dropped);
        for (int k = 0; k < n; k++) {
          frames[got + k] = Frame{from_ring[k].data, from_ring[k].len, net->nic_index[i],
                                  from_ring[k].checksum_ok};
        }
        got += n;
        used += n + static_cast<int>(dropped);
        if (dropped != 0) net->host_drops[i].fetch_add(dropped);
      } else {
        uint64_t dropped = 0;
        const int n = TakeFromSocket(net, i, frames.data() + got, slots.data() + got, kBatch - used,
                                     &dropped);
        got += n;
        used += n + static_cast<int>(dropped);
        if (dropped != 0) net->host_drops[i].fetch_add(dropped);
      }
    }
    if (used == kBatch) more = true;
    HoldFrames();
    int64_t next = RunStack([&](netstack::Stack& st, int64_t now) {
      st.BeginBatch();
      for (int k = 0; k < got; k++) {
        st.Input(frames[k].nic, netstack::Bytes(frames[k].data, frames[k].len),
                 frames[k].checksum_ok, now);
      }
      st.EndBatch(now);
    });
    // The stack has copied what it keeps: the ring's frames go back.
    for (RxRing& ring : net->rings) ring.GiveBack();
    SendHeldFrames();
    if (more) continue;
    g_asleep.store(true);
    if (g_kicked.exchange(false)) {
      g_asleep.store(false);
      continue;
    }
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
    g_asleep.store(false);
    g_kicked.store(false);  // this pass runs the stack anyway
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

namespace {

void WriteQueuedFrames() {
  absl::MutexLock s(&g_send_mu);
  for (;;) {
    std::deque<HeldFrame> batch;
    {
      absl::MutexLock l(&g_tx_mu);
      if (g_tx == nullptr || g_tx->empty()) return;
      batch.swap(*g_tx);
    }
    for (const HeldFrame& f : batch) {
      f.link->Send(f.vnet, reinterpret_cast<const uint8_t*>(f.bytes.data()), f.bytes.size());
    }
  }
}

}  // namespace

void HoldFrames() { t_hold_depth++; }

void SendHeldFrames() {
  if (--t_hold_depth > 0) return;
  WriteQueuedFrames();
}

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
  if (p.size() > first && absl::StartsWith(p[first], "ring=")) {
    std::vector<std::string> r = absl::StrSplit(p[first].substr(5), ':');
    // packet_set_ring's rules: frames of TPACKET_ALIGNMENT, whole pages
    // per block, whole frames per block; and a bound of our own.
    if (r.size() != 3 || !absl::SimpleAtoi(r[0], &out->ring_frame) ||
        !absl::SimpleAtoi(r[1], &out->ring_block) || !absl::SimpleAtoi(r[2], &out->ring_blocks) ||
        out->ring_frame < 2048 || out->ring_frame % TPACKET_ALIGNMENT != 0 ||
        out->ring_block % 4096 != 0 || out->ring_block < out->ring_frame ||
        out->ring_block > (64U << 20) || out->ring_blocks == 0 || out->ring_blocks > 1024 ||
        uint64_t{out->ring_block} * out->ring_blocks > (uint64_t{1} << 30) ||
        (out->ring_block / out->ring_frame) * out->ring_blocks < kBatch) {
      return false;
    }
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
  if (n.ring_blocks != 0)
    absl::StrAppend(&s, ",ring=", n.ring_frame, ":", n.ring_block, ":", n.ring_blocks);
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
  net->host_drops = std::make_unique<std::atomic<uint64_t>[]>(net->specs.size());
  for (const NicSpec& n : net->specs) {
    RxRing ring;
    if (n.ring_blocks != 0) {
      void* p = mmap(nullptr, size_t{n.ring_block} * n.ring_blocks, PROT_READ | PROT_WRITE,
                     MAP_SHARED, n.fd, 0);
      if (p == MAP_FAILED) return Errno{errno};
      ring = RxRing(static_cast<uint8_t*>(p), n.ring_frame, n.ring_block, n.ring_blocks, n.vnet);
    }
    net->rings.push_back(std::move(ring));
  }
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
  g_net->stack->SetOutputThread(Kick);
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

namespace {

// Adds the frames each packet socket dropped since the last reading.
void ReadHostDrops(Network* net) {
  for (size_t i = 0; i < net->specs.size(); i++) {
    tpacket_stats st{};
    socklen_t len = sizeof(st);
    if (getsockopt(net->specs[i].fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
      net->host_drops[i].fetch_add(st.tp_drops);
    }
  }
}

}  // namespace

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
  ReadHostDrops(g_net);
  RunStack([&](netstack::Stack& st, int64_t) {
    for (const netstack::Nic& n : st.nics()) {
      uint64_t host_drops = 0;
      for (size_t k = 0; k < g_net->specs.size(); k++) {
        if (g_net->nic_index[k] == n.index) host_drops = g_net->host_drops[k].load();
      }
      InterfaceInfo i;
      i.index = n.index;
      i.name = n.name;
      i.mac = n.mac;
      i.mtu = n.mtu;
      i.addrs = n.addrs;
      i.rx_packets = n.rx_packets;
      i.rx_bytes = n.rx_bytes;
      i.rx_dropped = n.rx_dropped + host_drops;
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

std::string ProcNetNetstat() {
  netstack::Counters c;
  RunStack([&](netstack::Stack& st, int64_t) { c = st.counters(); });
  return absl::StrFormat(
      "TcpExt: TCPOFOQueue TCPOFODrop TCPRcvQDrop TCPZeroWindowDrop\n"
      "TcpExt: %u %u %u %u\n",
      c.tcp_ofo_queue, c.tcp_ofo_drop, c.tcp_rcvq_drop, c.tcp_zero_window_drop);
}

}  // namespace husk::net
