// Two stacks joined by a wire the test controls (it may lose, reorder or
// corrupt frames), driven by a clock the test advances: ARP, ping, UDP
// and TCP between them, and hostile frames fed to one.
#include <errno.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sentry/net/stack/stack.h"
#include "sentry/net/stack/tcp.h"

namespace husk::netstack {
namespace {

constexpr int64_t kMs = 1000000;

struct Host : Upcalls {
  std::shared_ptr<TcpListener> listener;
  uint16_t listen_port = 0;
  std::vector<std::string> udp;
  std::vector<Ip> udp_dst;       // where each datagram in udp was sent
  std::vector<int> udp_nic;      // and the interface it came on
  std::vector<uint8_t> udp_ttl;  // with what TTL or hop limit
  std::vector<int> udp_errors;
  std::shared_ptr<TcpListener> FindListener(const Ip&, uint16_t port) override {
    return port == listen_port ? listener : nullptr;
  }
  bool DeliverUdp(const UdpDatagram& d) override {
    if (d.dport != 53) return false;
    udp.emplace_back(d.payload.begin(), d.payload.end());
    udp_dst.push_back(d.dst);
    udp_nic.push_back(d.nic);
    udp_ttl.push_back(d.ttl);
    return true;
  }
  void UdpError(const Ip&, uint16_t, const Ip&, uint16_t, int err) override {
    udp_errors.push_back(err);
  }
};

// Cuts a GSO frame (Ethernet, IPv4, TCP) into segments of gso.size bytes
// as the host's kernel does: each with its own IP length, id and checksum,
// sequence number, TCP checksum, and FIN/PSH on the last alone.
std::vector<std::string> Segment(const std::string& frame, const GsoInfo& gso) {
  std::vector<std::string> out;
  const size_t hdr = gso.hdr_len;
  const auto* f = reinterpret_cast<const uint8_t*>(frame.data());
  const uint32_t seq = Load32(f + gso.csum_start + 4);
  const uint8_t flags = f[gso.csum_start + 13];
  const uint16_t id = Load16(f + kEthLen + 4);
  for (size_t off = hdr, k = 0; off < frame.size(); off += gso.size, k++) {
    const size_t len = std::min<size_t>(gso.size, frame.size() - off);
    std::string seg = frame.substr(0, hdr) + frame.substr(off, len);
    auto* p = reinterpret_cast<uint8_t*>(seg.data());
    uint8_t* ip = p + kEthLen;
    uint8_t* tcp = p + gso.csum_start;
    Store16(ip + 2, static_cast<uint16_t>(seg.size() - kEthLen));
    Store16(ip + 4, static_cast<uint16_t>(id + k));
    Store16(ip + 10, 0);
    Store16(ip + 10, Fold(Sum(Bytes(ip, kIpv4Len))));
    Store32(tcp + 4, seq + static_cast<uint32_t>(off - hdr));
    const bool last = off + len >= frame.size();
    tcp[13] = last ? flags : static_cast<uint8_t>(flags & ~(kFin | kPsh));
    const auto tlen = static_cast<uint16_t>(seg.size() - gso.csum_start);
    Store16(tcp + 16, 0);
    Store16(tcp + 16, Fold(Sum(Bytes(tcp, tlen),
                               PseudoSum(Load32(ip + 12), Load32(ip + 16), kProtoTcp, tlen))));
    out.push_back(std::move(seg));
  }
  return out;
}

// Frames in flight from one side to the other.
struct Wire : Link {
  std::deque<std::string>* out;
  std::function<bool(const std::string&)> drop;  // true: lose this frame
  size_t gso_frames = 0;
  explicit Wire(std::deque<std::string>* q) : out(q) {}
  void Transmit(Bytes frame, const GsoInfo& gso) override {
    std::string f(frame.begin(), frame.end());
    std::vector<std::string> segs;
    if (gso.size != 0) {
      gso_frames++;
      segs = Segment(f, gso);
    } else {
      segs.push_back(std::move(f));
    }
    for (std::string& seg : segs) {
      if (drop && drop(seg)) continue;
      out->push_back(std::move(seg));
    }
  }
};

const Mac kMacA = {2, 0, 0, 0, 0, 1};
const Mac kMacB = {2, 0, 0, 0, 0, 2};
const Ip kIpA = V4(0x0ac90001);  // 10.201.0.1
const Ip kIpB = V4(0x0ac90002);  // 10.201.0.2

class Pair : public ::testing::Test {
 protected:
  Pair() : a(&ha, 1), b(&hb, 2), wa(&to_b), wb(&to_a) {
    int na = a.AddNic("eth0", kMacA, 1500, &wa);
    int nb = b.AddNic("eth0", kMacB, 1500, &wb);
    a.AddAddress(na, kIpA, 30);
    b.AddAddress(nb, kIpB, 30);
    a.AddRoute(Route{V4(0x0ac90000), 30, {}, false, na});
    b.AddRoute(Route{V4(0x0ac90000), 30, {}, false, nb});
  }

  // Delivers frames and runs timers until nothing moves or `until` holds.
  void Run(int64_t limit_ms, const std::function<bool()>& until = nullptr) {
    int64_t end = now + limit_ms * kMs;
    while (now < end) {
      bool moved = false;
      while (!to_a.empty() || !to_b.empty()) {
        if (!to_b.empty()) {
          std::string f = std::move(to_b.front());
          to_b.pop_front();
          b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(f.data()), f.size()), false, now);
        }
        if (!to_a.empty()) {
          std::string f = std::move(to_a.front());
          to_a.pop_front();
          a.Input(2, Bytes(reinterpret_cast<const uint8_t*>(f.data()), f.size()), false, now);
        }
        moved = true;
        if (until && until()) return;
      }
      if (until && until()) return;
      int64_t next = std::min(a.Tick(now), b.Tick(now));
      if (!to_a.empty() || !to_b.empty()) continue;
      if (next == INT64_MAX) {
        if (!moved) return;
        continue;
      }
      now = std::max(now + kMs, next);  // a millisecond a step
    }
  }

  std::shared_ptr<TcpEndpoint> Listen(uint16_t port, int backlog = 16) {
    hb.listen_port = port;
    hb.listener = std::make_shared<TcpListener>();
    hb.listener->backlog = backlog;
    return nullptr;
  }

  Host ha, hb;
  Stack a, b;
  std::deque<std::string> to_a, to_b;
  Wire wa, wb;
  int64_t now = 1000 * kMs;
};

std::string Ping(uint16_t id, uint16_t seq) {
  std::string m(16, 'p');
  auto* p = reinterpret_cast<uint8_t*>(m.data());
  p[0] = kIcmpEchoRequest;
  p[1] = 0;
  Store16(p + 2, 0);
  Store16(p + 4, id);
  Store16(p + 6, seq);
  Store16(p + 2, Fold(Sum(Bytes(p, m.size()))));
  return m;
}

// An Ethernet frame (to, from) carrying an IPv4 packet from src to dst.
std::string Ipv4Frame(const Mac& to, const Mac& from, const Ip& src, const Ip& dst, uint8_t proto,
                      const std::string& payload, uint16_t id = 0, uint16_t frag = 0) {
  std::string f(kEthLen + kIpv4Len + payload.size(), '\0');
  auto* p = reinterpret_cast<uint8_t*>(f.data());
  WriteEth(p, EthHeader{to, from, kEtherIpv4});
  Ipv4Header ip;
  ip.total_len = static_cast<uint16_t>(kIpv4Len + payload.size());
  ip.proto = proto;
  ip.id = id;
  ip.frag = frag;
  ip.src = V4Of(src);
  ip.dst = V4Of(dst);
  WriteIpv4(p + kEthLen, ip);
  CopyBytes(p + kEthLen + kIpv4Len,
            Bytes(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  return f;
}

TEST_F(Pair, ArpThenUdpArrives) {
  std::string msg = "hello";
  UdpDatagram d{kIpA, kIpB, 4000, 53, Bytes(reinterpret_cast<const uint8_t*>(msg.data()), 5)};
  EXPECT_EQ(a.SendUdp(d, now), 0);
  ASSERT_EQ(to_b.size(), 1u);  // an ARP request first; the datagram waits
  Run(100);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], "hello");
  EXPECT_EQ(b.counters().udp_in_datagrams, 1u);
}

TEST_F(Pair, UdpToClosedPortGetsPortUnreachable) {
  std::string msg = "x";
  UdpDatagram d{kIpA, kIpB, 4000, 54, Bytes(reinterpret_cast<const uint8_t*>(msg.data()), 1)};
  EXPECT_EQ(a.SendUdp(d, now), 0);
  Run(100);
  EXPECT_EQ(b.counters().udp_no_ports, 1u);
  ASSERT_EQ(ha.udp_errors.size(), 1u);
  EXPECT_EQ(ha.udp_errors[0], ECONNREFUSED);
}

TEST_F(Pair, LargeUdpIsFragmentedAndReassembled) {
  std::string big(4000, 'z');
  big[3999] = 'e';
  UdpDatagram d{kIpA, kIpB, 4000, 53, Bytes(reinterpret_cast<const uint8_t*>(big.data()), 4000)};
  EXPECT_EQ(a.SendUdp(d, now), 0);
  Run(100);
  EXPECT_EQ(a.counters().ip_frag_creates, 3u);
  EXPECT_EQ(b.counters().ip_reasm_oks, 1u);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], big);
}

TEST_F(Pair, FragmentsArriveInAnyOrder) {
  std::string big(3000, 'q');
  UdpDatagram d{kIpA, kIpB, 4000, 53, Bytes(reinterpret_cast<const uint8_t*>(big.data()), 3000)};
  UdpDatagram warm{kIpA, kIpB, 1, 53, {}};
  a.SendUdp(warm, now);  // learn b's address first
  Run(50);
  hb.udp.clear();
  EXPECT_EQ(a.SendUdp(d, now), 0);
  ASSERT_EQ(to_b.size(), 3u);
  std::swap(to_b[0], to_b[2]);
  Run(100);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], big);
}

// A fragment of a UDP datagram from a to b: offset in bytes, more to come.
std::string Fragment(uint16_t id, uint32_t offset, bool more, const std::string& data) {
  return Ipv4Frame(kMacB, kMacA, kIpA, kIpB, kProtoUdp, data, id,
                   static_cast<uint16_t>(offset / 8 | (more ? kIpMf : 0)));
}

TEST_F(Pair, OverlappingFragmentsDropTheDatagram) {
  // A UDP header (no checksum) and 24 bytes, sent as 16 + 16 bytes where
  // the second overlaps the first by 8.
  std::string udp(8 + 24, 'o');
  auto* u = reinterpret_cast<uint8_t*>(udp.data());
  Store16(u, 4000);
  Store16(u + 2, 53);
  Store16(u + 4, 32);
  Store16(u + 6, 0);
  for (const std::string& f :
       {Fragment(9, 0, true, udp.substr(0, 16)), Fragment(9, 8, false, udp.substr(8, 24))}) {
    b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(f.data()), f.size()), false, now);
  }
  EXPECT_TRUE(hb.udp.empty());
  EXPECT_EQ(b.counters().ip_reasm_fails, 1u);
  // The same bytes without the overlap make the datagram.
  for (const std::string& f :
       {Fragment(10, 0, true, udp.substr(0, 16)), Fragment(10, 16, false, udp.substr(16))}) {
    b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(f.data()), f.size()), false, now);
  }
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], udp.substr(8));
}

TEST_F(Pair, LoneFragmentsExpire) {
  for (uint16_t id = 0; id < 100; id++) {
    std::string f = Fragment(id, 0, true, std::string(1024, 'x'));
    b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(f.data()), f.size()), false, now);
  }
  now += 31000 * kMs;
  b.Tick(now);
  EXPECT_EQ(b.counters().ip_reasm_timeout, 100u);
  EXPECT_TRUE(hb.udp.empty());
}

TEST_F(Pair, NoRouteIsEnetunreach) {
  Ip src;
  EXPECT_EQ(a.SourceFor(V4(0x08080808), &src), ENETUNREACH);
  EXPECT_EQ(a.SourceFor(kIpB, &src), 0);
  EXPECT_EQ(src, kIpA);
}

TEST_F(Pair, EchoRequestIsAnswered) {
  // Stacks send no echo requests (no ping sockets yet): b gets one as a
  // frame, once a's address is known to it, and a counts the reply.
  std::string ping = Ping(7, 1);
  UdpDatagram warm{kIpA, kIpB, 1, 53, {}};
  a.SendUdp(warm, now);
  Run(50);
  const std::string frame = Ipv4Frame(kMacB, kMacA, kIpA, kIpB, kProtoIcmp, ping);
  b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(frame.data()), frame.size()), false, now);
  ASSERT_EQ(to_a.size(), 1u);
  EXPECT_EQ(b.counters().icmp_out_echo_reps, 1u);
  Run(10);
  EXPECT_EQ(a.counters().icmp_in_echo_reps, 1u);
}

struct Conn {
  std::shared_ptr<TcpEndpoint> client, server;
};

class TcpPair : public Pair {
 protected:
  Conn Open(TcpSettings s = {}) {
    Listen(80);
    Conn c;
    c.client = a.Connect(kIpA, 40000, kIpB, 80, s, now);
    Run(1000, [&] { return !hb.listener->ready.empty() && c.client->Established(); });
    if (!hb.listener->ready.empty()) {
      c.server = hb.listener->ready.front();
      hb.listener->ready.pop_front();
    }
    return c;
  }

  // A connection from client port `port` to a listener whose connections
  // have a receive buffer of `rcvbuf` bytes.
  Conn OpenToASmallBuffer(uint16_t port, uint32_t rcvbuf = 65536) {
    TcpSettings small;
    small.rcvbuf = rcvbuf;
    Listen(80);
    hb.listener->settings = small;
    Conn c;
    c.client = a.Connect(kIpA, port, kIpB, 80, {}, now);
    Run(100);
    if (!hb.listener->ready.empty()) {
      c.server = hb.listener->ready.front();
      hb.listener->ready.pop_front();
    }
    return c;
  }

  void WriteAll(TcpEndpoint& from, const std::string& d, bool urgent = false) {
    from.Write(Bytes(reinterpret_cast<const uint8_t*>(d.data()), d.size()), now, urgent);
  }
  // "ab", then "c" sent urgent (MSG_OOB), then "de", delivered.
  void SendAroundAnUrgentByte(TcpEndpoint& from) {
    WriteAll(from, "ab");
    Run(100);
    WriteAll(from, "c", /*urgent=*/true);
    WriteAll(from, "de");
    Run(100);
  }

  // Sends `data` from one end to the other through the wire, reading as
  // it comes; returns what arrived.
  std::string Transfer(TcpEndpoint& from, TcpEndpoint& to, const std::string& data,
                       int64_t limit_ms = 60000) {
    size_t sent = 0;
    std::string got;
    Run(limit_ms, [&] {
      if (sent < data.size()) {
        sent += from.Write(
            Bytes(reinterpret_cast<const uint8_t*>(data.data()) + sent, data.size() - sent), now);
      }
      got += to.Read(1 << 20, false, now);
      return got.size() >= data.size();
    });
    return got;
  }
};

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  std::mt19937 rng(42);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST_F(TcpPair, HandshakeNegotiatesOptions) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  EXPECT_EQ(c.client->state(), TcpEndpoint::kEstablished);
  EXPECT_EQ(c.server->state(), TcpEndpoint::kEstablished);
  TcpInfoData i = c.client->Info(now);
  EXPECT_EQ(i.options & 7, 7);  // timestamps, SACK, window scaling
  EXPECT_EQ(i.snd_mss, 1448u);
  EXPECT_EQ(a.counters().tcp_active_opens, 1u);
  EXPECT_EQ(b.counters().tcp_passive_opens, 1u);
}

TEST_F(TcpPair, ConnectToClosedPortIsRefused) {
  auto c = a.Connect(kIpA, 40001, kIpB, 81, {}, now);
  Run(1000);
  EXPECT_EQ(c->state(), TcpEndpoint::kClosed);
  EXPECT_EQ(c->error(), ECONNREFUSED);
}

TEST_F(TcpPair, BulkDataArrivesInOrder) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  std::string data = Pattern(3 << 20);
  EXPECT_EQ(Transfer(*c.client, *c.server, data), data);
  std::string back = Pattern(100000);
  EXPECT_EQ(Transfer(*c.server, *c.client, back), back);
  EXPECT_EQ(a.counters().tcp_retrans_segs, 0u);
}

// The same pair over IPv6 (fd00::1 and fd00::2 on a /64): neighbour
// discovery, then TCP and UDP.
Ip Six(uint8_t last) {
  Ip ip{};
  ip[0] = 0xfd;
  ip[15] = last;
  return ip;
}

class Ipv6Pair : public TcpPair {
 protected:
  Ipv6Pair() {
    a.AddAddress(2, Six(1), 64);
    b.AddAddress(2, Six(2), 64);
    a.AddRoute(Route{Six(0), 64, {}, false, 2});
    b.AddRoute(Route{Six(0), 64, {}, false, 2});
  }

  // A connection from a (fd00::1 port `port`) to b's listener on 80.
  Conn Open6(uint16_t port = 40000) {
    Listen(80);
    Conn c;
    c.client = a.Connect(Six(1), port, Six(2), 80, {}, now);
    Run(1000, [&] { return !hb.listener->ready.empty() && c.client->Established(); });
    if (!hb.listener->ready.empty()) {
      c.server = hb.listener->ready.front();
      hb.listener->ready.pop_front();
    }
    return c;
  }
};

TEST_F(Ipv6Pair, TcpAndUdpAfterNeighbourDiscovery) {
  hb.listen_port = 80;
  hb.listener = std::make_shared<TcpListener>();
  hb.listener->backlog = 4;
  auto client = a.Connect(Six(1), 40000, Six(2), 80, {}, now);
  Run(1000, [&] { return !hb.listener->ready.empty() && client->Established(); });
  ASSERT_FALSE(hb.listener->ready.empty());
  auto server = hb.listener->ready.front();
  EXPECT_EQ(server->remote(), Six(1));
  EXPECT_EQ(client->Info(now).snd_mss, 1500u - 40 - 20 - 12);
  std::string data = Pattern(1 << 20);
  EXPECT_EQ(Transfer(*client, *server, data), data);
  std::string msg = "over six";
  UdpDatagram d{Six(1), Six(2), 4000, 53, Bytes(reinterpret_cast<const uint8_t*>(msg.data()), 8)};
  EXPECT_EQ(a.SendUdp(d, now), 0);
  Run(100);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], msg);
}

// An Ethernet frame (to, from) carrying an IPv6 packet from src to dst
// whose first header is `next`.
std::string Ipv6Frame(const Mac& to, const Mac& from, const Ip& src, const Ip& dst, uint8_t next,
                      const std::string& payload) {
  std::string f(kEthLen + kIpv6Len + payload.size(), '\0');
  auto* p = reinterpret_cast<uint8_t*>(f.data());
  WriteEth(p, EthHeader{to, from, kEtherIpv6});
  Ipv6Header ip;
  ip.payload_len = static_cast<uint16_t>(payload.size());
  ip.next = next;
  ip.src = src;
  ip.dst = dst;
  WriteIpv6(p + kEthLen, ip);
  CopyBytes(p + kEthLen + kIpv6Len,
            Bytes(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  return f;
}

// A UDP datagram from src:sport to dst:dport carrying data, checksum made.
std::string Udp(const Ip& src, const Ip& dst, uint16_t sport, uint16_t dport,
                const std::string& data) {
  std::string u(kUdpLen + data.size(), '\0');
  auto* p = reinterpret_cast<uint8_t*>(u.data());
  Store16(p, sport);
  Store16(p + 2, dport);
  Store16(p + 4, static_cast<uint16_t>(u.size()));
  CopyBytes(p + kUdpLen, Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  const uint16_t csum = Fold(
      Sum(Bytes(p, u.size()), PseudoSumFor(src, dst, kProtoUdp, static_cast<uint32_t>(u.size()))));
  Store16(p + 6, csum == 0 ? 0xffff : csum);
  return u;
}

// A Fragment header (next, offset in bytes, more, id) and its data.
std::string Frag6(uint8_t next, uint32_t offset, bool more, uint32_t id, const std::string& data) {
  std::string h(kIpv6FragLen, '\0');
  Ipv6Frag f;
  f.next = next;
  f.offset = static_cast<uint16_t>(offset);
  f.more = more;
  f.id = id;
  WriteIpv6Frag(reinterpret_cast<uint8_t*>(h.data()), f);
  return h + data;
}

// A fragment of a UDP datagram from a to b over IPv6.
std::string Fragment6(uint32_t id, uint32_t offset, bool more, const std::string& data) {
  return Ipv6Frame(kMacB, kMacA, Six(1), Six(2), kIpv6Fragment,
                   Frag6(kProtoUdp, offset, more, id, data));
}

void Feed(Stack& s, const std::string& f, int64_t now) {
  s.Input(2, Bytes(reinterpret_cast<const uint8_t*>(f.data()), f.size()), false, now);
}

// An IGMP message b sent: the IPv4 header's fields (with its router alert
// option), the message (checksum checked), and a version 3 report's
// records as (type, group).
struct Igmp {
  Mac to{};
  uint32_t src = 0, dst = 0;
  uint8_t ttl = 0;
  bool router_alert = false;
  uint8_t type = 0;
  bool checksum_ok = false;
  uint32_t group = 0;  // a version 1 or 2 report's
  std::vector<std::pair<uint8_t, uint32_t>> records;
};

bool ParseIgmp(const std::string& f, Igmp* m) {
  const auto* p = reinterpret_cast<const uint8_t*>(f.data());
  if (f.size() < kEthLen + 24 + 8) return false;
  memcpy(m->to.data(), p, 6);
  Ipv4Header ip;
  Bytes msg;
  if (!ParseIpv4(Bytes(p + kEthLen, f.size() - kEthLen), true, &ip, &msg)) return false;
  if (ip.proto != kProtoIgmp || ip.ihl != 6) return false;
  m->src = ip.src;
  m->dst = ip.dst;
  m->ttl = ip.ttl;
  const uint8_t* opt = p + kEthLen + kIpv4Len;
  m->router_alert = opt[0] == 0x94 && opt[1] == 4 && opt[2] == 0 && opt[3] == 0;
  m->type = msg[0];
  m->checksum_ok = Fold(Sum(msg)) == 0;
  m->group = Load32(&msg[4]);
  if (m->type == kIgmpV3Report) {
    const size_t n = (size_t{msg[6]} << 8) | msg[7];
    if (msg.size() < 8 + n * 8) return false;
    for (size_t k = 0; k < n; k++) {
      m->records.emplace_back(msg[8 + k * 8], Load32(&msg[8 + k * 8 + 4]));
    }
  }
  return true;
}

// An IGMP query from the router 10.201.0.1 about `group` (0 for all), of
// version 3 (12 bytes), 2 (8, a response time) or 1 (8, none), with `ttl`.
std::string IgmpQuery(uint32_t group, int version, uint8_t ttl = 1) {
  std::string q(version == 3 ? 12 : 8, '\0');
  auto* p = reinterpret_cast<uint8_t*>(q.data());
  p[0] = kIgmpQuery;
  p[1] = version == 1 ? 0 : 100;
  Store32(p + 4, group);
  Store16(p + 2, Fold(Sum(Bytes(p, q.size()))));
  const Mac all_systems = {0x01, 0x00, 0x5e, 0, 0, 1};
  std::string f =
      Ipv4Frame(all_systems, kMacA, kIpA, V4(group == 0 ? 0xe0000001 : group), kProtoIgmp, q);
  auto* ip = reinterpret_cast<uint8_t*>(f.data()) + kEthLen;
  ip[8] = ttl;
  Store16(ip + 10, 0);
  Store16(ip + 10, Fold(Sum(Bytes(ip, kIpv4Len))));
  return f;
}

// IGMPv3 (RFC 3376): the first membership of an IPv4 group on an interface
// is reported (CHANGE_TO_EXCLUDE) and the end of the last one
// (CHANGE_TO_INCLUDE), to 224.0.0.22 with TTL 1 and a router alert;
// queries are answered in the querier's version; all-systems is never
// reported.
TEST_F(Pair, Ipv4GroupMembershipsAreReportedAndQueriesAnswered) {
  const uint32_t group = 0xefc80001;  // 239.200.0.1
  b.JoinGroup(2, V4(group));
  ASSERT_EQ(to_a.size(), 1u);
  Igmp m;
  ASSERT_TRUE(ParseIgmp(to_a.front(), &m));
  EXPECT_EQ(m.to, (Mac{0x01, 0x00, 0x5e, 0, 0, 0x16}));
  EXPECT_EQ(m.dst, 0xe0000016u);
  EXPECT_EQ(m.src, V4Of(kIpB));
  EXPECT_EQ(m.ttl, 1);
  EXPECT_TRUE(m.router_alert);
  EXPECT_EQ(m.type, kIgmpV3Report);
  EXPECT_TRUE(m.checksum_ok);
  ASSERT_EQ(m.records.size(), 1u);
  EXPECT_EQ(m.records[0], std::make_pair(kMldToExclude, group));
  to_a.clear();
  b.JoinGroup(2, V4(group));
  b.JoinGroup(2, V4(0xe0000001));
  EXPECT_TRUE(to_a.empty());

  // From beyond the link (TTL 64): ignored.
  Feed(b, IgmpQuery(0, 3, 64), now);
  EXPECT_TRUE(to_a.empty());
  Feed(b, IgmpQuery(0, 3), now);
  ASSERT_EQ(to_a.size(), 1u);
  // A flood of queries is no flood of answers: one per 100 ms.
  Feed(b, IgmpQuery(0, 3), now);
  EXPECT_EQ(to_a.size(), 1u);
  m = Igmp{};
  ASSERT_TRUE(ParseIgmp(to_a.front(), &m));
  EXPECT_TRUE(m.checksum_ok);
  ASSERT_EQ(m.records.size(), 1u);
  EXPECT_EQ(m.records[0], std::make_pair(kMldIsExclude, group));
  to_a.clear();
  for (int version : {2, 1}) {
    now += 200 * kMs;
    Feed(b, IgmpQuery(group, version), now);
    ASSERT_EQ(to_a.size(), 1u) << "version " << version;
    m = Igmp{};
    ASSERT_TRUE(ParseIgmp(to_a.front(), &m));
    EXPECT_EQ(m.type, version == 2 ? kIgmpV2Report : kIgmpV1Report);
    EXPECT_EQ(m.dst, group);
    EXPECT_EQ(m.group, group);
    EXPECT_TRUE(m.checksum_ok);
    to_a.clear();
  }
  now += 200 * kMs;
  Feed(b, IgmpQuery(0xefc80002, 3), now);  // a group b is not in
  EXPECT_TRUE(to_a.empty());

  b.LeaveGroup(2, V4(group));
  EXPECT_TRUE(to_a.empty());
  b.LeaveGroup(2, V4(group));
  ASSERT_EQ(to_a.size(), 1u);
  m = Igmp{};
  ASSERT_TRUE(ParseIgmp(to_a.front(), &m));
  ASSERT_EQ(m.records.size(), 1u);
  EXPECT_EQ(m.records[0], std::make_pair(kMldToInclude, group));
}

TEST_F(Ipv6Pair, FragmentsAreReassembledInAnyOrderAndDuplicatesIgnored) {
  const std::string data = Pattern(3000);
  const std::string udp = Udp(Six(1), Six(2), 4000, 53, data);
  // 1232 + 1232 + the rest, sent last first, the middle one twice.
  const std::string f0 = Fragment6(77, 0, true, udp.substr(0, 1232));
  const std::string f1 = Fragment6(77, 1232, true, udp.substr(1232, 1232));
  const std::string f2 = Fragment6(77, 2464, false, udp.substr(2464));
  for (const std::string* f : {&f2, &f1, &f1, &f0}) Feed(b, *f, now);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], data);
  EXPECT_EQ(b.counters().ip_reasm_oks, 1u);
  EXPECT_EQ(b.counters().ip_reasm_fails, 0u);
  EXPECT_EQ(b.ReassemblyCount(), 0u);
  EXPECT_EQ(b.ReassemblyHeld(), 0u);
}

TEST_F(Ipv6Pair, UnfragmentablePartIsKeptFromTheFirstFragment) {
  // A hop-by-hop header (8 bytes of padding options) before each
  // Fragment header: the datagram is put back together behind it.
  const std::string data = Pattern(2000);
  const std::string udp = Udp(Six(1), Six(2), 4000, 53, data);
  auto frag = [&](uint32_t off, bool more, const std::string& part) {
    std::string hbh(8, '\0');
    hbh[0] = static_cast<char>(kIpv6Fragment);
    hbh[2] = 1;  // PadN of 4 bytes
    hbh[3] = 4;
    return Ipv6Frame(kMacB, kMacA, Six(1), Six(2), kIpv6HopByHop,
                     hbh + Frag6(kProtoUdp, off, more, 9, part));
  };
  Feed(b, frag(1024, false, udp.substr(1024)), now);
  Feed(b, frag(0, true, udp.substr(0, 1024)), now);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], data);
}

TEST_F(Ipv6Pair, AtomicFragmentIsTakenAtOnceAndAlone) {
  // A datagram of id 5 waits for its second half when an atomic fragment
  // of the same id comes: that one is taken at once, and the other still
  // completes.
  const std::string udp = Udp(Six(1), Six(2), 4000, 53, Pattern(100));
  Feed(b, Fragment6(5, 0, true, udp.substr(0, 56)), now);
  Feed(b, Fragment6(5, 0, false, Udp(Six(1), Six(2), 4000, 53, "atomic")), now);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], "atomic");
  Feed(b, Fragment6(5, 56, false, udp.substr(56)), now);
  ASSERT_EQ(hb.udp.size(), 2u);
  EXPECT_EQ(hb.udp[1], Pattern(100));
}

TEST_F(Ipv6Pair, OverlappingFragmentsDropTheDatagram) {
  const std::string udp = Udp(Six(1), Six(2), 4000, 53, std::string(24, 'o'));
  // 16 + 24 bytes where the second overlaps the first by 8 (RFC 5722).
  Feed(b, Fragment6(9, 0, true, udp.substr(0, 16)), now);
  Feed(b, Fragment6(9, 8, false, udp.substr(8)), now);
  EXPECT_TRUE(hb.udp.empty());
  EXPECT_EQ(b.counters().ip_reasm_fails, 1u);
  EXPECT_EQ(b.ReassemblyCount(), 0u);
  // A third fragment that would complete it starts a datagram anew.
  Feed(b, Fragment6(9, 16, false, udp.substr(16)), now);
  EXPECT_TRUE(hb.udp.empty());
  // Without the overlap the same bytes make the datagram.
  Feed(b, Fragment6(10, 0, true, udp.substr(0, 16)), now);
  Feed(b, Fragment6(10, 16, false, udp.substr(16)), now);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], std::string(24, 'o'));
}

TEST_F(Ipv6Pair, MalformedFragmentsAreDropped) {
  const std::string udp = Udp(Six(1), Six(2), 4000, 53, Pattern(64));
  const size_t delivered = hb.udp.size();
  // A non-final fragment whose length is not a multiple of 8.
  Feed(b, Fragment6(1, 0, true, udp.substr(0, 20)), now);
  // One reaching past 65535 bytes of payload.
  Feed(b, Fragment6(2, 65528, false, std::string(16, 'x')), now);
  // One carrying nothing.
  Feed(b, Fragment6(3, 8, true, ""), now);
  // A first fragment that stops inside the UDP header (RFC 7112).
  Feed(b, Fragment6(4, 0, true, std::string()), now);
  Feed(b,
       Ipv6Frame(kMacB, kMacA, Six(1), Six(2), kIpv6Fragment,
                 Frag6(kIpv6DestOpts, 0, true, 4, std::string(8, '\0') + std::string(8, 'u'))),
       now);
  // A Fragment header cut short.
  Feed(b, Ipv6Frame(kMacB, kMacA, Six(1), Six(2), kIpv6Fragment, std::string(4, '\0')), now);
  // A datagram whose fragmentable part holds a Fragment header again:
  // its first fragment drops what came of it before.
  const std::string inner = Frag6(kProtoUdp, 0, false, 11, udp);
  Feed(b,
       Ipv6Frame(kMacB, kMacA, Six(1), Six(2), kIpv6Fragment,
                 Frag6(kIpv6Fragment, 32, false, 12, inner.substr(32))),
       now);
  Feed(b,
       Ipv6Frame(kMacB, kMacA, Six(1), Six(2), kIpv6Fragment,
                 Frag6(kIpv6Fragment, 0, true, 12, inner.substr(0, 32))),
       now);
  // Two last fragments that disagree on the length, and a fragment past
  // the end the last one set.
  Feed(b, Fragment6(13, 64, false, std::string(8, 'x')), now);
  Feed(b, Fragment6(13, 80, false, std::string(8, 'x')), now);
  Feed(b, Fragment6(14, 64, false, std::string(8, 'x')), now);
  Feed(b, Fragment6(14, 72, true, std::string(8, 'x')), now);
  EXPECT_EQ(hb.udp.size(), delivered);
  EXPECT_EQ(b.ReassemblyCount(), 0u);
  EXPECT_EQ(b.ReassemblyHeld(), 0u);
  EXPECT_EQ(b.counters().ip_reasm_fails, 8u);
  // Neighbour discovery in a fragment is not answered (RFC 6980).
  std::string ns(32, '\0');
  auto* m = reinterpret_cast<uint8_t*>(ns.data());
  m[0] = kNdpSolicit;
  memcpy(m + 8, Six(2).data(), 16);
  m[24] = kNdpSourceMac;
  m[25] = 1;
  memcpy(m + 26, kMacA.data(), 6);
  Store16(m + 2, Fold(Sum(Bytes(m, ns.size()), PseudoSumFor(Six(1), Six(2), kProtoIcmp6, 32))));
  std::string frame =
      Ipv6Frame(kMacB, kMacA, Six(1), Six(2), kIpv6Fragment, Frag6(kProtoIcmp6, 0, false, 15, ns));
  frame[kEthLen + 7] = static_cast<char>(255);  // hop limit
  to_a.clear();
  Feed(b, frame, now);
  EXPECT_TRUE(to_a.empty());
}

TEST_F(Ipv6Pair, ReassemblyIsBoundedAndTimesOut) {
  // 2000 datagrams' first 4000 bytes, none completed: what is kept stays
  // under the limits (4 MB, 256 datagrams), the oldest let go first.
  const std::string udp = Udp(Six(1), Six(2), 4000, 53, Pattern(4100));
  for (uint32_t id = 0; id < 2000; id++) Feed(b, Fragment6(id, 0, true, udp.substr(0, 4000)), now);
  EXPECT_LE(b.ReassemblyHeld(), size_t{4} << 20);
  EXPECT_LE(b.ReassemblyCount(), 256u);
  EXPECT_GT(b.ReassemblyCount(), 0u);
  EXPECT_GT(b.counters().ip_reasm_fails, 1000u);
  // The newest still completes; the first long gone does not.
  Feed(b, Fragment6(1999, 4000, false, udp.substr(4000)), now);
  Feed(b, Fragment6(0, 4000, false, udp.substr(4000)), now);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], Pattern(4100));
  // IPv6 keeps fragments 60 seconds (RFC 8200 4.5), then lets them go.
  const size_t waiting = b.ReassemblyCount();
  now += 59000 * kMs;
  b.Tick(now);
  EXPECT_EQ(b.ReassemblyCount(), waiting);
  now += 2000 * kMs;
  EXPECT_EQ(b.Tick(now), INT64_MAX);
  EXPECT_EQ(b.ReassemblyCount(), 0u);
  EXPECT_EQ(b.ReassemblyHeld(), 0u);
  EXPECT_EQ(b.counters().ip_reasm_timeout, waiting);
  Feed(b, Fragment6(1998, 4000, false, udp.substr(4000)), now);
  EXPECT_EQ(hb.udp.size(), 1u);
}

// Whether a frame carries IPv6 with a Fragment header first.
bool IsFragment6(const std::string& f) {
  return f.size() >= kEthLen + kIpv6Len + kIpv6FragLen &&
         Load16(reinterpret_cast<const uint8_t*>(f.data()) + 12) == kEtherIpv6 &&
         static_cast<uint8_t>(f[kEthLen + 6]) == kIpv6Fragment;
}

TEST_F(Ipv6Pair, LargeUdpIsFragmentedAndReassembled) {
  std::string big = Pattern(4000);
  UdpDatagram d{Six(1), Six(2), 4000, 53,
                Bytes(reinterpret_cast<const uint8_t*>(big.data()), 4000)};
  std::vector<std::string> frags;
  wa.drop = [&](const std::string& f) {
    if (IsFragment6(f)) frags.push_back(f);
    return false;
  };
  EXPECT_EQ(a.SendUdp(d, now), 0);
  Run(100);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], big);
  EXPECT_EQ(a.counters().ip_frag_oks, 1u);
  EXPECT_EQ(b.counters().ip_reasm_oks, 1u);
  // 4008 bytes of UDP in pieces of 1448, 1448 and 1112, each frame within
  // the MTU, sharing an identification.
  ASSERT_EQ(frags.size(), 3u);
  uint32_t id = 0;
  for (size_t i = 0; i < frags.size(); i++) {
    const auto* p = reinterpret_cast<const uint8_t*>(frags[i].data()) + kEthLen;
    EXPECT_LE(frags[i].size() - kEthLen, 1500u);
    Ipv6Frag f;
    ASSERT_TRUE(ParseIpv6Frag(Bytes(p + kIpv6Len, kIpv6FragLen), &f));
    const size_t len = Load16(p + 4) - kIpv6FragLen;
    EXPECT_EQ(f.next, kProtoUdp);
    EXPECT_EQ(f.offset, i * 1448);
    EXPECT_EQ(f.more, i < 2);
    EXPECT_EQ(len, i < 2 ? 1448u : 1112u);
    if (i == 0) id = f.id;
    EXPECT_EQ(f.id, id);
  }
  // The next datagram has an identification of its own.
  frags.clear();
  EXPECT_EQ(a.SendUdp(d, now), 0);
  Run(100);
  ASSERT_EQ(frags.size(), 3u);
  Ipv6Frag f;
  ASSERT_TRUE(ParseIpv6Frag(
      Bytes(reinterpret_cast<const uint8_t*>(frags[0].data()) + kEthLen + kIpv6Len, 8), &f));
  EXPECT_NE(f.id, id);
  ASSERT_EQ(hb.udp.size(), 2u);
}

TEST_F(Ipv6Pair, FragmentsReorderedAndDuplicatedStillMakeTheDatagram) {
  UdpDatagram warm{Six(1), Six(2), 1, 53, {}};
  a.SendUdp(warm, now);  // learn b's address first
  Run(50);
  hb.udp.clear();
  std::string big = Pattern(4000);
  UdpDatagram d{Six(1), Six(2), 4000, 53,
                Bytes(reinterpret_cast<const uint8_t*>(big.data()), 4000)};
  EXPECT_EQ(a.SendUdp(d, now), 0);
  ASSERT_EQ(to_b.size(), 3u);
  // Last first, then the middle one twice.
  std::swap(to_b[0], to_b[2]);
  to_b.insert(to_b.begin() + 2, to_b[1]);
  Run(100);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], big);
  EXPECT_EQ(b.counters().ip_reasm_fails, 0u);
  EXPECT_EQ(b.ReassemblyCount(), 0u);
}

TEST_F(Ipv6Pair, LargestUdpGoesAndLargerIsRefused) {
  // 65527 bytes: with the UDP header, the largest IPv6 payload.
  std::string big = Pattern(65527);
  UdpDatagram d{Six(1), Six(2), 4000, 53,
                Bytes(reinterpret_cast<const uint8_t*>(big.data()), big.size())};
  EXPECT_EQ(a.SendUdp(d, now), 0);
  Run(100);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], big);
  big.push_back('x');
  d.payload = Bytes(reinterpret_cast<const uint8_t*>(big.data()), big.size());
  EXPECT_EQ(a.SendUdp(d, now), EMSGSIZE);
}

TEST_F(Ipv6Pair, LargeEchoIsFragmentedBothWays) {
  // A 3000-byte echo request from a (ICMPv6, as a ping socket sends it):
  // b puts it back together and answers in fragments too.
  std::string echo = Pattern(3000);
  echo[0] = static_cast<char>(kIcmp6EchoRequest);
  echo[1] = 0;
  EXPECT_EQ(a.SendIcmp(Six(1), Six(2),
                       Bytes(reinterpret_cast<const uint8_t*>(echo.data()), echo.size()), 64, now),
            0);
  Run(100);
  EXPECT_EQ(b.counters().icmp_in_echos, 1u);
  EXPECT_EQ(b.counters().ip_frag_oks, 1u);
  EXPECT_EQ(a.counters().icmp_in_echo_reps, 1u);
  EXPECT_EQ(a.counters().ip_reasm_oks, 1u);
}

// An ICMPv6 error (type, code, and the 32 bits after the checksum) from b
// to a, quoting as much of `frame` (a's) as fits in 1280 bytes.
std::string Icmp6Error(const std::string& frame, uint8_t type, uint8_t code, uint32_t rest,
                       size_t quote_max = 1280 - 48) {
  const std::string quote = frame.substr(kEthLen, quote_max);
  std::string msg(kIcmpLen + quote.size(), '\0');
  auto* m = reinterpret_cast<uint8_t*>(msg.data());
  m[0] = type;
  m[1] = code;
  Store32(m + 4, rest);
  CopyBytes(m + kIcmpLen, Bytes(reinterpret_cast<const uint8_t*>(quote.data()), quote.size()));
  Store16(m + 2, Fold(Sum(Bytes(m, msg.size()), PseudoSumFor(Six(2), Six(1), kProtoIcmp6,
                                                             static_cast<uint32_t>(msg.size())))));
  return Ipv6Frame(kMacA, kMacB, Six(2), Six(1), kProtoIcmp6, msg);
}

// Whether a frame carries IPv6 whose first header is `next`.
bool Is6(const std::string& f, uint8_t next) {
  return f.size() >= kEthLen + kIpv6Len &&
         Load16(reinterpret_cast<const uint8_t*>(f.data()) + 12) == kEtherIpv6 &&
         static_cast<uint8_t>(f[kEthLen + 6]) == next;
}

TEST_F(Ipv6Pair, PacketTooBigShrinksTheSegments) {
  Conn c = Open6();
  ASSERT_NE(c.server, nullptr);
  EXPECT_EQ(c.client->Info(now).snd_mss, 1500u - 40 - 20 - 12);
  // A hop of MTU 1280 on the way to b: what is bigger is dropped, and the
  // hop says so (ICMPv6 type 2, quoting the dropped packet).
  constexpr size_t kHop = 1280;
  size_t dropped = 0;
  wa.drop = [&](const std::string& f) {
    if (f.size() <= kEthLen + kHop) return false;
    dropped++;
    to_a.push_back(Icmp6Error(f, kIcmp6PacketTooBig, 0, kHop));
    return true;
  };
  std::string data = Pattern(1 << 20);
  EXPECT_EQ(Transfer(*c.client, *c.server, data, 60000), data);
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(c.client->Info(now).snd_mss, kHop - 40 - 20 - 12);
}

TEST_F(Ipv6Pair, PacketTooBigIsCheckedAndNeverBelow1280) {
  Conn c = Open6();
  ASSERT_NE(c.server, nullptr);
  // a's first data segment is lost on the way.
  std::string lost;
  wa.drop = [&](const std::string& f) {
    if (!lost.empty() || f.size() < kEthLen + 1000) return false;
    lost = f;
    return true;
  };
  std::string data = Pattern(4000);
  c.client->Write(Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()), now);
  ASSERT_FALSE(lost.empty());
  // A Packet Too Big quoting a sequence number outside what is in flight
  // (RFC 5927) changes nothing...
  std::string stale = lost;
  auto* tcp = reinterpret_cast<uint8_t*>(stale.data()) + kEthLen + kIpv6Len;
  Store32(tcp + 4, Load32(tcp + 4) - 100000);
  Feed(a, Icmp6Error(stale, kIcmp6PacketTooBig, 0, 1280), now);
  EXPECT_EQ(c.client->Info(now).snd_mss, 1500u - 40 - 20 - 12);
  // ...nor does one for another connection, or one quoting too little.
  std::string other = lost;
  Store16(reinterpret_cast<uint8_t*>(other.data()) + kEthLen + kIpv6Len, 40001);
  Feed(a, Icmp6Error(other, kIcmp6PacketTooBig, 0, 1280), now);
  Feed(a, Icmp6Error(lost, kIcmp6PacketTooBig, 0, 1280, kIpv6Len + 6), now);
  EXPECT_EQ(c.client->Info(now).snd_mss, 1500u - 40 - 20 - 12);
  // The real one with an MTU below IPv6's least: segments fit 1280.
  Feed(a, Icmp6Error(lost, kIcmp6PacketTooBig, 0, 500), now);
  EXPECT_EQ(c.client->Info(now).snd_mss, 1280u - 40 - 20 - 12);
  std::string got;
  Run(5000, [&] {
    got += c.server->Read(1 << 20, false, now);
    return got.size() >= data.size();
  });
  EXPECT_EQ(got, data);
}

TEST_F(Ipv6Pair, UnreachableFailsATcpConnect) {
  // b's answer to each SYN is an ICMPv6 Destination Unreachable instead,
  // of code `code`; the connect fails with what Linux reports.
  Listen(80);
  const std::pair<uint8_t, int> cases[] = {{kIcmp6PortUnreachable, ECONNREFUSED},
                                           {kIcmp6AdminProhibited, EACCES},
                                           {kIcmp6NoRoute, ENETUNREACH},
                                           {kIcmp6AddrUnreachable, EHOSTUNREACH},
                                           {9, EPROTO}};
  uint16_t port = 41000;
  for (const auto& [code, err] : cases) {
    wa.drop = [&, code = code](const std::string& f) {
      if (!Is6(f, kProtoTcp)) return false;
      to_a.push_back(Icmp6Error(f, kIcmp6Unreachable, code, 0));
      return true;
    };
    auto c = a.Connect(Six(1), port++, Six(2), 80, {}, now);
    Run(1000, [&] { return c->state() == TcpEndpoint::kClosed; });
    EXPECT_EQ(c->state(), TcpEndpoint::kClosed) << int{code};
    EXPECT_EQ(c->error(), err) << int{code};
  }
  EXPECT_EQ(a.counters().icmp_in_dest_unreachs, 5u);
}

TEST_F(Ipv6Pair, UnreachableFailsAConnectedUdpSender) {
  // Each datagram a sends is answered by an ICMPv6 Destination
  // Unreachable quoting it; the socket layer hears the errno.
  uint8_t code = kIcmp6PortUnreachable;
  wa.drop = [&](const std::string& f) {
    if (!Is6(f, kProtoUdp)) return false;
    to_a.push_back(Icmp6Error(f, kIcmp6Unreachable, code, 0));
    return true;
  };
  std::string msg = "anyone?";
  UdpDatagram d{Six(1), Six(2), 4000, 54, Bytes(reinterpret_cast<const uint8_t*>(msg.data()), 7)};
  const std::pair<uint8_t, int> cases[] = {{kIcmp6PortUnreachable, ECONNREFUSED},
                                           {kIcmp6AdminProhibited, EACCES},
                                           {kIcmp6NoRoute, ENETUNREACH},
                                           {kIcmp6AddrUnreachable, EHOSTUNREACH}};
  for (const auto& [c, err] : cases) {
    code = c;
    ha.udp_errors.clear();
    EXPECT_EQ(a.SendUdp(d, now), 0);
    Run(100);
    ASSERT_EQ(ha.udp_errors.size(), 1u) << int{c};
    EXPECT_EQ(ha.udp_errors[0], err) << int{c};
  }
  // A Packet Too Big about a datagram is not an error for its socket, and
  // an error quoting a packet from someone else's address is ignored.
  ha.udp_errors.clear();
  wa.drop = [&](const std::string& f) {
    if (!Is6(f, kProtoUdp)) return false;
    to_a.push_back(Icmp6Error(f, kIcmp6PacketTooBig, 0, 1280));
    std::string forged = f;
    forged[kEthLen + 8 + 15] = 7;  // the quoted source: fd00::7
    to_a.push_back(Icmp6Error(forged, kIcmp6Unreachable, kIcmp6PortUnreachable, 0));
    return true;
  };
  EXPECT_EQ(a.SendUdp(d, now), 0);
  Run(100);
  EXPECT_TRUE(ha.udp_errors.empty());
}

TEST_F(Ipv6Pair, UdpToClosedPortGetsPortUnreachable) {
  // b has no socket on port 54: it answers with an ICMPv6 port
  // unreachable quoting the datagram, and a's sender hears ECONNREFUSED.
  std::string msg = "x";
  UdpDatagram d{Six(1), Six(2), 4000, 54, Bytes(reinterpret_cast<const uint8_t*>(msg.data()), 1)};
  std::vector<std::string> errors;
  wb.drop = [&](const std::string& f) {
    if (Is6(f, kProtoIcmp6) && static_cast<uint8_t>(f[kEthLen + kIpv6Len]) < kIcmp6InfoMin) {
      errors.push_back(f);
    }
    return false;
  };
  EXPECT_EQ(a.SendUdp(d, now), 0);
  Run(100);
  EXPECT_EQ(b.counters().udp_no_ports, 1u);
  EXPECT_EQ(b.counters().icmp_out_dest_unreachs, 1u);
  ASSERT_EQ(ha.udp_errors.size(), 1u);
  EXPECT_EQ(ha.udp_errors[0], ECONNREFUSED);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(static_cast<uint8_t>(errors[0][kEthLen + kIpv6Len]), kIcmp6Unreachable);
  EXPECT_EQ(static_cast<uint8_t>(errors[0][kEthLen + kIpv6Len + 1]), kIcmp6PortUnreachable);
  // A 4000-byte datagram comes back quoted as far as fits in 1280 bytes.
  errors.clear();
  ha.udp_errors.clear();
  std::string big = Pattern(4000);
  d.payload = Bytes(reinterpret_cast<const uint8_t*>(big.data()), big.size());
  EXPECT_EQ(a.SendUdp(d, now), 0);
  Run(100);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].size(), kEthLen + 1280);
  ASSERT_EQ(ha.udp_errors.size(), 1u);
  EXPECT_EQ(ha.udp_errors[0], ECONNREFUSED);
}

// ff02::1 and its Ethernet group address.
const Ip kAllNodes6 = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const Mac kAllNodesMac = {0x33, 0x33, 0, 0, 0, 1};

TEST_F(Ipv6Pair, NoPortUnreachableForGroupsOrErrors) {
  UdpDatagram warm{Six(1), Six(2), 1, 53, {}};
  a.SendUdp(warm, now);  // b learns a's address
  Run(50);
  to_a.clear();
  const std::string udp = Udp(Six(1), Six(2), 4000, 54, "x");
  // To a closed port, but in a frame to the all-nodes group's address.
  Feed(b, Ipv6Frame(kAllNodesMac, kMacA, Six(1), Six(2), kProtoUdp, udp), now);
  // To the all-nodes group itself.
  Feed(b,
       Ipv6Frame(kMacB, kMacA, Six(1), kAllNodes6, kProtoUdp,
                 Udp(Six(1), kAllNodes6, 4000, 54, "x")),
       now);
  // From the unspecified address.
  Feed(b, Ipv6Frame(kMacB, kMacA, Ip{}, Six(2), kProtoUdp, Udp(Ip{}, Six(2), 4000, 54, "x")), now);
  // An ICMPv6 error about something b never sent.
  std::string err(kIcmpLen + kIpv6Len + 8, '\0');
  auto* m = reinterpret_cast<uint8_t*>(err.data());
  m[0] = kIcmp6Unreachable;
  m[kIcmpLen] = 0x60;
  m[kIcmpLen + 6] = kProtoUdp;
  Store16(m + 2, Fold(Sum(Bytes(m, err.size()), PseudoSumFor(Six(1), Six(2), kProtoIcmp6,
                                                             static_cast<uint32_t>(err.size())))));
  Feed(b, Ipv6Frame(kMacB, kMacA, Six(1), Six(2), kProtoIcmp6, err), now);
  EXPECT_TRUE(to_a.empty());
  EXPECT_EQ(b.counters().icmp_out_dest_unreachs, 0u);
  // The same datagram to b's own address and link address is answered.
  Feed(b, Ipv6Frame(kMacB, kMacA, Six(1), Six(2), kProtoUdp, udp), now);
  EXPECT_EQ(to_a.size(), 1u);
  EXPECT_EQ(b.counters().icmp_out_dest_unreachs, 1u);
}

// ff12::1:2, a link-scope group, and its Ethernet group address.
const Ip kGroup6 = {0xff, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2};
const Mac kGroup6Mac = {0x33, 0x33, 0, 1, 0, 2};

// An MLD message b sent: the IPv6 header's fields, the hop-by-hop header's
// router alert, the ICMPv6 message (checksum checked) and, for a version 2
// report, its records as (type, group).
struct Mld {
  Ip src{}, dst{};
  uint8_t hop_limit = 0;
  bool router_alert = false;
  uint8_t type = 0;
  bool checksum_ok = false;
  std::vector<std::pair<uint8_t, Ip>> records;
  Ip v1_group{};
  Mac to{};
};

bool ParseMld(const std::string& f, Mld* m) {
  const auto* p = reinterpret_cast<const uint8_t*>(f.data());
  if (f.size() < kEthLen + kIpv6Len + 8 + 8) return false;
  memcpy(m->to.data(), p, 6);
  Ipv6Header ip;
  Bytes payload;
  if (!ParseIpv6(Bytes(p + kEthLen, f.size() - kEthLen), &ip, &payload)) return false;
  if (ip.next != kIpv6HopByHop || payload.size() < 16) return false;
  m->src = ip.src;
  m->dst = ip.dst;
  m->hop_limit = ip.hop_limit;
  m->router_alert = payload[2] == 5 && payload[3] == 2 && payload[4] == 0 && payload[5] == 0;
  if (payload[0] != kProtoIcmp6 || payload[1] != 0) return false;
  Bytes msg = payload.subspan(8);
  m->type = msg[0];
  m->checksum_ok = Fold(Sum(msg, PseudoSumFor(ip.src, ip.dst, kProtoIcmp6,
                                              static_cast<uint32_t>(msg.size())))) == 0;
  if (m->type == kMldV1Report && msg.size() >= 24) memcpy(m->v1_group.data(), &msg[8], 16);
  if (m->type == kMldV2Report) {
    const size_t n = (size_t{msg[6]} << 8) | msg[7];
    if (msg.size() < 8 + n * 20) return false;
    for (size_t k = 0; k < n; k++) {
      Ip g;
      memcpy(g.data(), &msg[8 + k * 20 + 4], 16);
      m->records.emplace_back(msg[8 + k * 20], g);
    }
  }
  return true;
}

// An MLD query from a router on the link (fe80::1) about `group` (:: for
// all), version 2 (28 bytes) or 1 (24), with hop limit `hops`.
std::string MldQuery(const Ip& group, bool v2, uint8_t hops = 1) {
  const Ip router = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  std::string q(v2 ? 28 : 24, '\0');
  auto* p = reinterpret_cast<uint8_t*>(q.data());
  p[0] = kMldQuery;
  Store16(p + 4, 1000);  // maximum response delay
  memcpy(p + 8, group.data(), 16);
  const Ip dst = group == Ip{} ? kAllNodes6 : group;
  Store16(p + 2, Fold(Sum(Bytes(p, q.size()), PseudoSumFor(router, dst, kProtoIcmp6,
                                                           static_cast<uint32_t>(q.size())))));
  std::string hbh = {static_cast<char>(kProtoIcmp6), 0, 5, 2, 0, 0, 1, 0};
  std::string f = Ipv6Frame(kAllNodesMac, kMacA, router, dst, kIpv6HopByHop, hbh + q);
  f[kEthLen + 7] = static_cast<char>(hops);
  return f;
}

// MLDv2 (RFC 3810): the first membership of a group on an interface is
// reported (CHANGE_TO_EXCLUDE, no sources) and the end of the last one
// too (CHANGE_TO_INCLUDE), to ff02::16 with hop limit 1 and a router
// alert, so that a switch snooping MLD forwards the group's traffic; a
// router's queries are answered with what the interface listens to, in the
// querier's version; all-nodes and interface-local groups are not reported,
// and a query from off the link is ignored.
TEST_F(Ipv6Pair, GroupMembershipsAreReportedAndQueriesAnswered) {
  b.JoinGroup(2, kGroup6);
  ASSERT_EQ(to_a.size(), 1u);
  Mld m;
  ASSERT_TRUE(ParseMld(to_a.front(), &m));
  EXPECT_EQ(m.to, (Mac{0x33, 0x33, 0, 0, 0, 0x16}));
  const Ip routers = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16};
  EXPECT_EQ(m.dst, routers);
  EXPECT_EQ(m.src, Ip{});  // b has no link-local address: unspecified
  EXPECT_EQ(m.hop_limit, 1);
  EXPECT_TRUE(m.router_alert);
  EXPECT_EQ(m.type, kMldV2Report);
  EXPECT_TRUE(m.checksum_ok);
  ASSERT_EQ(m.records.size(), 1u);
  EXPECT_EQ(m.records[0], std::make_pair(kMldToExclude, kGroup6));
  to_a.clear();
  b.JoinGroup(2, kGroup6);  // a second membership: nothing new to say
  b.JoinGroup(2, kAllNodes6);
  const Ip interface_local = {0xff, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
  b.JoinGroup(2, interface_local);
  EXPECT_TRUE(to_a.empty());

  // A general query: the joined group and b's solicited-node group.
  Feed(b, MldQuery(Ip{}, true), now);
  ASSERT_EQ(to_a.size(), 1u);
  Feed(b, MldQuery(Ip{}, true), now);  // one answer per 100 ms
  EXPECT_EQ(to_a.size(), 1u);
  m = Mld{};
  ASSERT_TRUE(ParseMld(to_a.front(), &m));
  EXPECT_TRUE(m.checksum_ok);
  const Ip solicited{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2};
  std::vector<std::pair<uint8_t, Ip>> want = {{kMldIsExclude, kGroup6}, {kMldIsExclude, solicited}};
  std::sort(m.records.begin(), m.records.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(m.records, want);
  to_a.clear();
  // A version 1 querier about one group: a version 1 report, to the group.
  now += 200 * kMs;
  Feed(b, MldQuery(kGroup6, false), now);
  ASSERT_EQ(to_a.size(), 1u);
  m = Mld{};
  ASSERT_TRUE(ParseMld(to_a.front(), &m));
  EXPECT_EQ(m.type, kMldV1Report);
  EXPECT_EQ(m.dst, kGroup6);
  EXPECT_EQ(m.v1_group, kGroup6);
  EXPECT_TRUE(m.checksum_ok);
  to_a.clear();
  // From beyond the link (hop limit 64): ignored. About a group b is not in:
  // nothing to say.
  now += 200 * kMs;
  Feed(b, MldQuery(Ip{}, true, 64), now);
  now += 200 * kMs;
  const Ip other = {0xff, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 9};
  Feed(b, MldQuery(other, true), now);
  EXPECT_TRUE(to_a.empty());

  // The last membership's end is reported.
  b.LeaveGroup(2, kGroup6);
  EXPECT_TRUE(to_a.empty());
  b.LeaveGroup(2, kGroup6);
  ASSERT_EQ(to_a.size(), 1u);
  m = Mld{};
  ASSERT_TRUE(ParseMld(to_a.front(), &m));
  ASSERT_EQ(m.records.size(), 1u);
  EXPECT_EQ(m.records[0], std::make_pair(kMldToInclude, kGroup6));
}

TEST_F(Ipv6Pair, UdpToAJoinedGroupArrivesAndToOthersIsDropped) {
  const std::string udp = Udp(Six(1), kGroup6, 4000, 53, "to the group");
  const std::string frame = Ipv6Frame(kGroup6Mac, kMacA, Six(1), kGroup6, kProtoUdp, udp);
  // Nobody joined: the frame is not ours.
  Feed(b, frame, now);
  EXPECT_TRUE(hb.udp.empty());
  EXPECT_EQ(b.counters().ip_in_addr_errors, 1u);
  EXPECT_FALSE(b.InGroup(2, kGroup6));
  EXPECT_TRUE(b.InGroup(2, kAllNodes6));
  Ip solicited{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2};  // Six(2)'s
  EXPECT_TRUE(b.InGroup(2, solicited));
  EXPECT_FALSE(b.InGroup(3, kAllNodes6));  // no such interface
  // Joined (twice, as two sockets would): it reaches UDP, with the group as its destination
  // and the interface it came on.
  b.JoinGroup(2, kGroup6);
  b.JoinGroup(2, kGroup6);
  EXPECT_TRUE(b.InGroup(2, kGroup6));
  EXPECT_EQ(to_a.size(), 1u);  // the first membership's MLD report
  to_a.clear();
  Feed(b, frame, now);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], "to the group");
  EXPECT_EQ(hb.udp_dst[0], kGroup6);
  EXPECT_EQ(hb.udp_nic[0], 2);
  // To a port no socket has: dropped without a port unreachable (to a group).
  Feed(
      b,
      Ipv6Frame(kGroup6Mac, kMacA, Six(1), kGroup6, kProtoUdp, Udp(Six(1), kGroup6, 4000, 54, "x")),
      now);
  EXPECT_EQ(b.counters().udp_no_ports, 1u);
  EXPECT_EQ(b.counters().icmp_out_dest_unreachs, 0u);
  // TCP to a group is nobody's: no reset answers a SYN.
  std::string syn(kTcpLen, '\0');
  auto* t = reinterpret_cast<uint8_t*>(syn.data());
  TcpHeader h;
  h.sport = 1000;
  h.dport = 53;
  h.flags = kSyn;
  h.window = 1000;
  WriteTcp(t, h, "");
  Store16(t + 16, Fold(Sum(Bytes(t, kTcpLen), PseudoSumFor(Six(1), kGroup6, kProtoTcp, kTcpLen))));
  Feed(b, Ipv6Frame(kGroup6Mac, kMacA, Six(1), kGroup6, kProtoTcp, syn), now);
  EXPECT_TRUE(to_a.empty());
  EXPECT_EQ(b.counters().tcp_out_rsts, 0u);
  // One membership left keeps the group; none drops it again.
  b.LeaveGroup(2, kGroup6);
  Feed(b, frame, now);
  EXPECT_EQ(hb.udp.size(), 2u);
  b.LeaveGroup(2, kGroup6);
  b.LeaveGroup(2, kGroup6);  // one too many: nothing to leave
  EXPECT_FALSE(b.InGroup(2, kGroup6));
  Feed(b, frame, now);
  EXPECT_EQ(hb.udp.size(), 2u);
}

TEST_F(Ipv6Pair, UdpToAGroupLeavesByItsInterfaceToTheGroupsAddress) {
  // No route covers the group: it leaves by the interface asked for, at once (nothing to
  // resolve), to 33:33 and the group's last four bytes, with the hop limit asked for.
  const std::string msg = "to the group";
  UdpDatagram d{Six(1), kGroup6, 4000, 53,
                Bytes(reinterpret_cast<const uint8_t*>(msg.data()), msg.size())};
  d.ttl = 2;
  d.nic = 2;
  ASSERT_EQ(a.SendUdp(d, now), 0);
  ASSERT_EQ(to_b.size(), 1u);
  const std::string f = to_b.front();
  EthHeader eth;
  Bytes payload;
  ASSERT_TRUE(
      ParseEth(Bytes(reinterpret_cast<const uint8_t*>(f.data()), f.size()), &eth, &payload));
  EXPECT_EQ(eth.dst, kGroup6Mac);
  EXPECT_EQ(eth.src, kMacA);
  EXPECT_EQ(eth.type, kEtherIpv6);
  Ipv6Header ip;
  Bytes l4;
  ASSERT_TRUE(ParseIpv6(payload, &ip, &l4));
  EXPECT_EQ(ip.hop_limit, 2);
  EXPECT_EQ(ip.dst, kGroup6);
  EXPECT_EQ(ip.src, Six(1));
  // b takes it once it joined, with the hop limit it came with.
  to_b.clear();
  b.JoinGroup(2, kGroup6);
  d.nic = 0;  // the first interface
  ASSERT_EQ(a.SendUdp(d, now), 0);
  Run(10);
  ASSERT_EQ(hb.udp.size(), 1u);
  EXPECT_EQ(hb.udp[0], msg);
  EXPECT_EQ(hb.udp_ttl[0], 2);
  // No such interface: ENETUNREACH. Hop limit 0: for this host's members alone, so nothing
  // leaves.
  d.nic = 3;
  EXPECT_EQ(a.SendUdp(d, now), ENETUNREACH);
  d.nic = 2;
  d.ttl = 0;
  EXPECT_EQ(a.SendUdp(d, now), 0);
  EXPECT_TRUE(to_b.empty());
}

TEST_F(Ipv6Pair, AGroupsSourceIsItsInterfacesAddressOfTheSameScope) {
  Ip src{};
  EXPECT_EQ(a.SourceOn(2, kGroup6, &src), 0);
  EXPECT_EQ(src, Six(1));
  EXPECT_EQ(a.SourceOn(3, kGroup6, &src), ENETUNREACH);
  EXPECT_EQ(a.SourceOn(2, kIpB, &src), 0);  // IPv4's: the interface's IPv4 address
  EXPECT_EQ(src, kIpA);
  // With a link-local address too: that one for a link-scope group, the global one for a
  // global group (RFC 6724 rule 2).
  const Ip link_local = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  a.AddAddress(2, link_local, 64);
  EXPECT_EQ(a.SourceOn(2, kGroup6, &src), 0);
  EXPECT_EQ(src, link_local);
  const Ip global_group = {0xff, 0x1e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
  EXPECT_EQ(a.SourceOn(2, global_group, &src), 0);
  EXPECT_EQ(src, Six(1));
  // An interface without an address of the family: EADDRNOTAVAIL.
  Stack c(&ha, 3);
  const int nc = c.AddNic("eth0", kMacA, 1500, nullptr);
  c.AddAddress(nc, kIpA, 30);
  EXPECT_EQ(c.SourceOn(nc, kGroup6, &src), EADDRNOTAVAIL);
}

TEST_F(Ipv6Pair, Icmp6ErrorNeverReachesAnIpv4Connection) {
  // An IPv4 connect whose SYNs are lost: an ICMPv6 error quoting IPv4's
  // addresses (v4-mapped) with its ports and sequence number leaves it be.
  std::string syn;
  wa.drop = [&](const std::string& f) {
    if (f.size() < kEthLen + kIpv4Len + kTcpLen ||
        Load16(reinterpret_cast<const uint8_t*>(f.data()) + 12) != kEtherIpv4) {
      return false;
    }
    syn = f;
    return true;
  };
  auto c = a.Connect(kIpA, 40007, kIpB, 80, {}, now);
  Run(100, [&] { return !syn.empty(); });
  ASSERT_FALSE(syn.empty());
  // The quoted packet: an IPv6 header between the mapped addresses, then
  // the SYN's TCP header.
  std::string quoted(kEthLen + kIpv6Len, '\0');
  Ipv6Header ip;
  ip.next = kProtoTcp;
  ip.src = kIpA;
  ip.dst = kIpB;
  WriteIpv6(reinterpret_cast<uint8_t*>(quoted.data()) + kEthLen, ip);
  quoted += syn.substr(kEthLen + kIpv4Len);
  Feed(a, Icmp6Error(quoted, kIcmp6Unreachable, kIcmp6PortUnreachable, 0), now);
  EXPECT_EQ(c->state(), TcpEndpoint::kSynSent);
  EXPECT_EQ(c->error(), 0);
}

// A stack whose link takes GSO frames: a's TCP sends many segments in one
// frame once b's address is known; the wire cuts them as the host would.
class GsoPair : public TcpPair {
 protected:
  GsoPair() { a.SetGso(2, true); }
};

TEST_F(GsoPair, BulkDataGoesInGsoFramesAndArrivesIntact) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  std::string data = Pattern(4 << 20);
  EXPECT_EQ(Transfer(*c.client, *c.server, data), data);
  EXPECT_GT(wa.gso_frames, 10u);
  EXPECT_EQ(b.counters().tcp_in_errs, 0u);
}

TEST_F(GsoPair, LostSegmentsOfAGsoFrameAreSentAgain) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  int n = 0;
  wa.drop = [&](const std::string&) { return ++n % 17 == 0; };
  std::string data = Pattern(1 << 20);
  EXPECT_EQ(Transfer(*c.client, *c.server, data, 600000), data);
  EXPECT_GT(wa.gso_frames, 0u);
  EXPECT_GT(a.counters().tcp_retrans_segs, 0u);
}

TEST_F(TcpPair, LossIsRepairedBySackAndTimeouts) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  std::mt19937 rng(7);
  int n = 0;
  wa.drop = [&](const std::string&) { return ++n % 13 == 0 || rng() % 50 == 0; };
  std::string data = Pattern(1 << 20);
  EXPECT_EQ(Transfer(*c.client, *c.server, data, 600000), data);
  EXPECT_GT(a.counters().tcp_retrans_segs, 0u);
}

TEST_F(TcpPair, ReorderingIsHandled) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  int n = 0;
  // Every fifth frame from a is held back and sent after the next one.
  std::string held;
  wa.drop = [&](const std::string& f) {
    if (++n % 5 == 0 && held.empty()) {
      held = f;
      return true;
    }
    if (!held.empty()) {
      to_b.push_back(f);
      to_b.push_back(std::move(held));
      held.clear();
      return true;
    }
    return false;
  };
  std::string data = Pattern(500000);
  EXPECT_EQ(Transfer(*c.client, *c.server, data, 600000), data);
}

TEST_F(TcpPair, CloseWalksTheStatesToTimeWait) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  c.client->Close(false, now);
  Run(100);
  EXPECT_EQ(c.client->state(), TcpEndpoint::kFinWait2);
  EXPECT_EQ(c.server->state(), TcpEndpoint::kCloseWait);
  EXPECT_TRUE(c.server->ReadEof());
  c.server->Close(false, now);
  Run(100);
  EXPECT_EQ(c.server->state(), TcpEndpoint::kClosed);
  EXPECT_EQ(c.client->state(), TcpEndpoint::kTimeWait);
  now += 61000 * kMs;
  a.Tick(now);
  EXPECT_EQ(c.client->state(), TcpEndpoint::kClosed);
  EXPECT_TRUE(a.Connections().empty());
}

TEST_F(TcpPair, UnreadDataMakesCloseReset) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  std::string data = "unread";
  c.client->Write(Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()), now);
  Run(100);
  EXPECT_EQ(c.server->Readable(), 6u);
  c.server->Close(false, now);
  Run(100);
  EXPECT_EQ(c.client->state(), TcpEndpoint::kClosed);
  EXPECT_EQ(c.client->error(), ECONNRESET);
}

TEST_F(TcpPair, ZeroWindowIsProbedAndReopens) {
  Conn c = OpenToASmallBuffer(40002);
  ASSERT_NE(c.server, nullptr);
  std::string data = Pattern(200000);
  size_t sent =
      c.client->Write(Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()), now);
  Run(5000);
  // Full, the window shut: the buffer, and what the windows offered past
  // it by rounding up to their scale (an offer is never taken back).
  EXPECT_GE(c.server->Readable(), 65536u);
  EXPECT_LT(c.server->Readable(), 65536u + 4096);
  EXPECT_EQ(c.server->Info(now).rcv_space, 0u);
  std::string got = c.server->Read(1 << 20, false, now);
  got += Transfer(*c.client, *c.server, data.substr(sent), 60000);
  Run(2000, [&] {
    got += c.server->Read(1 << 20, false, now);
    return got.size() >= data.size();
  });
  EXPECT_EQ(got, data);
}

TEST_F(TcpPair, DataInsideTheOfferedWindowIsNeverDropped) {
  // A small buffer read a little at a time: each window is rounded up to
  // its scale past the buffer's room, and the sender fills what it was
  // offered. A lossless wire must need no retransmission.
  Conn c = OpenToASmallBuffer(40004);
  ASSERT_NE(c.server, nullptr);
  const std::string data = Pattern(1 << 20);
  size_t sent = 0;
  std::string got;
  int frames = 0;
  Run(60000, [&] {
    if (sent < data.size()) {
      sent += c.client->Write(
          Bytes(reinterpret_cast<const uint8_t*>(data.data()) + sent, data.size() - sent), now);
    }
    if (++frames % 8 == 0) got += c.server->Read(3000, false, now);
    return got.size() >= data.size();
  });
  // Then read at once (where the slow reader left the window shut).
  Run(60000, [&] {
    got += c.server->Read(1 << 20, false, now);
    return got.size() >= data.size();
  });
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_EQ(c.client->Info(now).total_retrans, 0u);
  EXPECT_EQ(b.counters().tcp_rcvq_drop, 0u);
  EXPECT_EQ(b.counters().tcp_ofo_drop, 0u);
}

TEST_F(TcpPair, ABatchOfFramesEarnsOneAck) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  // Ten full segments reach b as one batch (as a busy link's frames do).
  const std::string data = Pattern(10 * 1448);
  c.client->Write(Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()), now);
  ASSERT_GE(to_b.size(), 5u);
  const uint64_t acks_before = b.counters().tcp_out_segs;
  b.BeginBatch();
  while (!to_b.empty()) {
    std::string f = std::move(to_b.front());
    to_b.pop_front();
    b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(f.data()), f.size()), false, now);
  }
  EXPECT_EQ(b.counters().tcp_out_segs, acks_before);  // none yet
  b.EndBatch(now);
  EXPECT_EQ(b.counters().tcp_out_segs, acks_before + 1);
  EXPECT_EQ(c.server->Readable(), data.size());
  // The ACK covers everything: the sender has nothing left in flight.
  Run(10);
  EXPECT_EQ(c.client->Info(now).unacked, 0u);
  // Outside a batch, every second segment is ACKed at once again.
  c.client->Write(Bytes(reinterpret_cast<const uint8_t*>(data.data()), 2 * 1448), now);
  const uint64_t before = b.counters().tcp_out_segs;
  while (!to_b.empty()) {
    std::string f = std::move(to_b.front());
    to_b.pop_front();
    b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(f.data()), f.size()), false, now);
  }
  EXPECT_EQ(b.counters().tcp_out_segs, before + 1);
}

TEST_F(TcpPair, ADuplicateSegmentIsReportedInADsackBlock) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  const std::string data = Pattern(1000);
  c.client->Write(Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()), now);
  ASSERT_FALSE(to_b.empty());
  const std::string copy = to_b.front();  // the data segment, as sent
  Run(100);
  ASSERT_EQ(c.server->Readable(), data.size());
  // The same segment again (a needless retransmission, or a reordered
  // copy): b's ACK names its range first (RFC 2883).
  auto tcp_of = [](const std::string& frame, TcpHeader* h) {
    Bytes payload;
    const size_t ip = 14 + 4 * (static_cast<uint8_t>(frame[14]) & 0xf);
    return ParseTcp(Bytes(reinterpret_cast<const uint8_t*>(frame.data()) + ip, frame.size() - ip),
                    h, &payload);
  };
  TcpHeader seg;
  ASSERT_TRUE(tcp_of(copy, &seg));
  to_a.clear();
  b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(copy.data()), copy.size()), false, now);
  ASSERT_EQ(to_a.size(), 1u);
  TcpHeader ack;
  ASSERT_TRUE(tcp_of(to_a.front(), &ack));
  ASSERT_GE(ack.opts.nsack, 1);
  EXPECT_EQ(ack.opts.sack[0][0], seg.seq);
  EXPECT_EQ(ack.opts.sack[0][1], seg.seq + static_cast<uint32_t>(data.size()));
  EXPECT_EQ(ack.ack, seg.seq + static_cast<uint32_t>(data.size()));
  // Reported once: the next ACK has no such block.
  Run(10);
  c.server->Read(1 << 20, false, now);
  std::vector<std::string> from_b;
  wb.drop = [&](const std::string& f) {
    from_b.push_back(f);
    return false;
  };
  c.client->Write(Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()), now);
  Run(100, [&] { return !from_b.empty(); });
  ASSERT_FALSE(from_b.empty());
  ASSERT_TRUE(tcp_of(from_b.front(), &ack));
  EXPECT_EQ(ack.opts.nsack, 0);
}

// SO_KEEPALIVE set on an open connection (as programs set it, after connect or accept):
// probes start keepidle after the last segment; a live peer answers them, a silent one is
// given keepcnt probes, then the connection fails with ETIMEDOUT.
TEST_F(TcpPair, KeepaliveSetOnAnOpenConnectionProbesThenTimesOut) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  c.client->settings.keepidle = 2;
  c.client->settings.keepintvl = 1;
  c.client->settings.keepcnt = 3;
  auto set_keepalive = [&](bool on) {
    const TcpSettings before = c.client->settings;
    c.client->settings.keepalive = on;
    c.client->ApplySettings(before, now);
  };
  // On (the first probe keepidle from now), then off again: nothing is due.
  set_keepalive(true);
  EXPECT_EQ(c.client->Deadline(), now + 2000 * kMs);
  set_keepalive(false);
  EXPECT_EQ(c.client->Deadline(), INT64_MAX);
  // On: probes every keepidle of silence, each answered.
  set_keepalive(true);
  const uint32_t heard = c.server->Info(now).segs_in;
  Run(6000);
  EXPECT_EQ(c.client->state(), TcpEndpoint::kEstablished);
  EXPECT_GE(c.server->Info(now).segs_in, heard + 2);
  wb.drop = [](const std::string&) { return true; };  // the peer goes silent
  Run(20000);
  EXPECT_EQ(c.client->state(), TcpEndpoint::kClosed);
  EXPECT_EQ(c.client->error(), ETIMEDOUT);
}

// Urgent data (send's MSG_OOB): "ab", then "c" urgent, then "de". The urgent byte leaves the
// stream: reads stop short of its mark, FIONREAD's count ends there, and once read past it
// the urgent data is forgotten. The segments before the pointer carry URG and the pointer
// (one past the urgent byte, as Linux sends it), in single segments even where GSO is on.
TEST_F(GsoPair, UrgentDataLeavesTheStreamAndReadsStopAtItsMark) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  std::vector<TcpHeader> sent;
  wa.drop = [&](const std::string& f) {
    TcpHeader h;
    Bytes payload;
    const size_t ip = 14 + 4 * (static_cast<uint8_t>(f[14]) & 0xf);
    if (ParseTcp(Bytes(reinterpret_cast<const uint8_t*>(f.data()) + ip, f.size() - ip), &h,
                 &payload) &&
        !payload.empty()) {
      sent.push_back(h);
    }
    return false;
  };
  auto write = [&](const std::string& d, bool urgent) { WriteAll(*c.client, d, urgent); };
  SendAroundAnUrgentByte(*c.client);
  ASSERT_EQ(c.server->urgent(), TcpEndpoint::Urgent::kValid);
  EXPECT_EQ(c.server->urgent_byte(), 'c');
  EXPECT_EQ(c.server->Readable(), 4u);  // "abde": the urgent byte is not in the stream
  EXPECT_EQ(c.server->ReadableBeforeMark(), 2u);
  EXPECT_FALSE(c.server->AtUrgentMark());
  EXPECT_EQ(c.server->Read(100, /*peek=*/true, now), "ab");
  EXPECT_EQ(c.server->Read(100, false, now), "ab");
  EXPECT_TRUE(c.server->AtUrgentMark());
  EXPECT_EQ(c.server->ReadableBeforeMark(), 0u);
  EXPECT_EQ(c.server->TakeUrgentByte(), 'c');
  EXPECT_EQ(c.server->urgent(), TcpEndpoint::Urgent::kRead);
  EXPECT_EQ(c.server->Read(100, false, now), "de");
  EXPECT_EQ(c.server->urgent(), TcpEndpoint::Urgent::kNone);
  EXPECT_FALSE(c.server->AtUrgentMark());
  // On the wire: "ab" without URG; "c" (and "de", sent before "c" was acked) with the
  // pointer just past "c".
  ASSERT_GE(sent.size(), 2u);
  EXPECT_EQ(sent[0].flags & kUrg, 0);
  const uint32_t up = sent[1].seq + 1;
  for (size_t i = 1; i < sent.size(); i++) {
    if (sent[i].seq - up < (1u << 31)) break;  // past the pointer: no URG needed
    EXPECT_NE(sent[i].flags & kUrg, 0) << i;
    EXPECT_EQ(sent[i].seq + sent[i].urgent, up) << i;
  }
  // Once acknowledged, segments carry no pointer any more.
  sent.clear();
  write("fg", false);
  Run(100);
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent.back().flags & kUrg, 0);
  EXPECT_EQ(c.server->Read(100, false, now), "fg");
  // A large urgent send: GSO is on, yet the frames up to the pointer are single segments,
  // each with the pointer.
  sent.clear();
  const size_t frames_before = wa.gso_frames;
  const std::string big = Pattern(20000);
  write(big, true);
  Run(1000);
  EXPECT_EQ(wa.gso_frames, frames_before);
  ASSERT_FALSE(sent.empty());
  for (const TcpHeader& h : sent) EXPECT_NE(h.flags & kUrg, 0);
  std::string got;
  for (int i = 0; i < 100 && got.size() < big.size() - 1; i++)
    got += c.server->Read(1 << 20, false, now);
  EXPECT_EQ(got, big.substr(0, big.size() - 1));
  EXPECT_EQ(c.server->TakeUrgentByte(), static_cast<uint8_t>(big.back()));
}

// With SO_OOBINLINE the urgent byte stays in the stream; the mark is the byte itself.
TEST_F(TcpPair, InlineUrgentDataStaysInTheStream) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  c.server->settings.oobinline = true;
  SendAroundAnUrgentByte(*c.client);
  ASSERT_EQ(c.server->urgent(), TcpEndpoint::Urgent::kValid);
  EXPECT_EQ(c.server->Readable(), 5u);
  EXPECT_EQ(c.server->Read(100, false, now), "ab");
  EXPECT_TRUE(c.server->AtUrgentMark());
  EXPECT_EQ(c.server->Read(100, false, now), "cde");
  EXPECT_EQ(c.server->urgent(), TcpEndpoint::Urgent::kNone);
}

// Urgent data gets through a closed window: within 64 KiB of what was acknowledged, the
// pointer rides on a zero-window probe the reader takes (tcp_write_wakeup's), so it learns
// of it while its buffer is full (tcp_urg takes every acceptable segment's); the byte
// follows once the window opens.
TEST_F(TcpPair, AnUrgentPointerPassesAClosedWindow) {
  Conn c = OpenToASmallBuffer(40003);
  ASSERT_NE(c.server, nullptr);
  int announced = 0;
  c.server->on_urgent = [&] { announced++; };
  const std::string data = Pattern(100000);
  c.client->Write(Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()), now);
  Run(3000);
  ASSERT_EQ(c.server->Info(now).rcv_space, 0u);  // shut
  ASSERT_LT(c.server->Readable(), data.size());
  WriteAll(*c.client, "!", /*urgent=*/true);
  Run(3000);
  EXPECT_EQ(c.server->urgent(), TcpEndpoint::Urgent::kPending);
  EXPECT_EQ(announced, 1);
  std::string got;
  Run(60000, [&] {
    got += c.server->Read(1 << 20, false, now);
    return c.server->urgent() == TcpEndpoint::Urgent::kValid && c.server->Readable() == 0;
  });
  EXPECT_EQ(got, data);
  EXPECT_EQ(c.server->TakeUrgentByte(), '!');
  EXPECT_EQ(announced, 1);  // one pointer, however many segments carried it
}

// A segment sent again with the urgent pointer of a byte already received (or read past)
// announces nothing new.
TEST_F(TcpPair, AnUrgentPointerToBytesAlreadyReceivedIsIgnored) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  std::string copy;
  wa.drop = [&](const std::string& f) {
    if (copy.empty() && f.size() > 54) copy = f;
    return false;
  };
  c.client->Write(Bytes(reinterpret_cast<const uint8_t*>("xy"), 2), now, /*urgent=*/true);
  Run(100);
  ASSERT_FALSE(copy.empty());
  EXPECT_EQ(c.server->Read(100, false, now), "x");
  EXPECT_EQ(c.server->TakeUrgentByte(), 'y');
  b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(copy.data()), copy.size()), false, now);
  Run(10);
  EXPECT_EQ(c.server->urgent(), TcpEndpoint::Urgent::kRead);
  EXPECT_EQ(c.server->Readable(), 0u);
}

TEST_F(TcpPair, TimersFireOnTimeAmongManyConnectionsWithoutWalkingAllPerFrame) {
  // 400 connections (past the count below which every Tick walks them all).
  Listen(80, 512);
  std::vector<std::shared_ptr<TcpEndpoint>> clients;
  for (uint16_t i = 0; i < 400; i++) {
    clients.push_back(a.Connect(kIpA, static_cast<uint16_t>(42000 + i), kIpB, 80, {}, now));
  }
  Run(2000, [&] { return hb.listener->ready.size() == clients.size(); });
  ASSERT_EQ(hb.listener->ready.size(), clients.size());
  for (const auto& c : clients) ASSERT_TRUE(c->Established());
  // One segment of one connection is lost once: its retransmission timer
  // must still fire, and the data arrive.
  bool lost = false;
  wa.drop = [&](const std::string& f) {
    if (lost || f.size() < 54 + 100) return false;
    lost = true;
    return true;
  };
  const std::string data = Pattern(1000);
  auto& victim = clients[123];
  victim->Write(Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()), now);
  ASSERT_TRUE(lost);
  std::shared_ptr<TcpEndpoint> server;
  for (const auto& s : hb.listener->ready) {
    if (s->rport() == victim->lport()) server = s;
  }
  ASSERT_NE(server, nullptr);
  const int64_t start = now;
  const uint64_t walks = a.timer_walks();
  std::string got;
  Run(5000, [&] {
    got += server->Read(1 << 20, false, now);
    return got.size() >= data.size();
  });
  EXPECT_EQ(got, data);
  EXPECT_LE(now - start, 1500 * kMs);  // the initial RTO (1 s) and a little
  EXPECT_GE(victim->Info(now).total_retrans, 1u);
  EXPECT_LT(a.timer_walks() - walks, 100u);
  // A busy link ticks the stack after every batch of frames: 1,000 ticks
  // 10 us apart, with no timer due, walk the connections at most twice.
  Run(1000);
  const uint64_t before = a.timer_walks();
  for (int i = 0; i < 1000; i++) {
    now += 10000;
    a.Tick(now);
  }
  EXPECT_LE(a.timer_walks() - before, 2u);
}

TEST_F(TcpPair, ConnectToAnAddressNobodyHasIsHostUnreachable) {
  // A route straight to 10.9.0.0/16 on the wire, where nobody answers ARP.
  a.AddRoute(Route{V4(0x0a090000), 16, {}, false, 2});
  int64_t start = now;
  auto c = a.Connect(kIpA, 40003, V4(0x0a090001), 80, {}, now);
  Run(60000, [&] { return c->state() == TcpEndpoint::kClosed; });
  EXPECT_EQ(c->state(), TcpEndpoint::kClosed);
  EXPECT_EQ(c->error(), EHOSTUNREACH);
  EXPECT_LE(now - start, 5000 * kMs);  // after ARP's three tries, not SYN's six
}

TEST_F(TcpPair, ManyUnreadConnectionsHoldNoMoreThanTheStacksLimit) {
  b.SetReceiveLimit(2 << 20);
  Listen(80, 64);
  std::vector<std::shared_ptr<TcpEndpoint>> clients;
  std::string chunk = Pattern(256 << 10);
  for (uint16_t i = 0; i < 32; i++) {
    clients.push_back(a.Connect(kIpA, static_cast<uint16_t>(41000 + i), kIpB, 80, {}, now));
  }
  // Every client writes 256 KiB nobody on b reads.
  Run(2000, [&] {
    for (auto& c : clients) {
      if (c->Established() && c->SendQueued() == 0) {
        c->Write(Bytes(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size()), now);
      }
    }
    return false;
  });
  EXPECT_EQ(hb.listener->ready.size(), 32u);
  EXPECT_LE(b.ReceiveHeld(), size_t{2} << 20);
  EXPECT_GT(b.ReceiveHeld(), size_t{1} << 20);
  // Reading frees room, and the rest comes.
  size_t got = 0;
  Run(20000, [&] {
    for (auto& s : hb.listener->ready) got += s->Read(1 << 20, false, now).size();
    return false;
  });
  EXPECT_GE(got, 32u * chunk.size());
  EXPECT_EQ(b.ReceiveHeld(), 0u);
}

TEST_F(TcpPair, SequenceNumbersWrapMidTransfer) {
  // Both sides start just below 2^32: the send buffers straddle the wrap
  // while data is queued and acknowledged.
  a.SetIsnForTest(0xffff0000u);
  b.SetIsnForTest(0xfffff000u);
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  std::string data = Pattern(2 << 20);
  EXPECT_EQ(Transfer(*c.client, *c.server, data), data);
  EXPECT_EQ(Transfer(*c.server, *c.client, data), data);
}

TEST_F(TcpPair, AHandshakeCompletedAfterItsListenerClosedIsReset) {
  Listen(80);
  // The client's final ACK is held back until the listener is gone.
  std::deque<std::string> held;
  bool hold = true;
  int n = 0;
  wa.drop = [&](const std::string& f) {
    if (!hold || ++n <= 2) return false;  // a's ARP request and SYN pass
    held.push_back(f);
    return true;
  };
  auto client = a.Connect(kIpA, 40004, kIpB, 80, {}, now);
  Run(200, [&] { return client->Established(); });
  ASSERT_TRUE(client->Established());
  hb.listener->Close(now);
  hold = false;
  for (std::string& f : held) to_b.push_back(std::move(f));
  Run(1000);
  EXPECT_TRUE(b.Connections().empty());
  EXPECT_EQ(client->state(), TcpEndpoint::kClosed);
  EXPECT_EQ(client->error(), ECONNRESET);
}

// An ICMP destination-unreachable frame from b to a with `code` and
// `rest`, quoting the IP header and 8 bytes of `frame` (a's).
std::string Unreachable(const std::string& frame, uint8_t code, uint32_t rest) {
  const std::string quote = frame.substr(kEthLen, kIpv4Len + 8);
  std::string msg(kIcmpLen + quote.size(), '\0');
  auto* m = reinterpret_cast<uint8_t*>(msg.data());
  m[0] = kIcmpUnreachable;
  m[1] = code;
  Store32(m + 4, rest);
  CopyBytes(m + kIcmpLen, Bytes(reinterpret_cast<const uint8_t*>(quote.data()), quote.size()));
  Store16(m + 2, Fold(Sum(Bytes(m, msg.size()))));
  return Ipv4Frame(kMacA, kMacB, kIpB, kIpA, kProtoIcmp, msg);
}

TEST_F(TcpPair, HostUnreachableFailsAConnect) {
  Listen(80);
  // b's answer to the SYN is an ICMP host unreachable instead.
  wa.drop = [&](const std::string& f) {
    if (f.size() < kEthLen + kIpv4Len + kTcpLen ||
        Load16(reinterpret_cast<const uint8_t*>(f.data()) + 12) != kEtherIpv4) {
      return false;
    }
    to_a.push_back(Unreachable(f, 1, 0));
    return true;
  };
  auto c = a.Connect(kIpA, 40005, kIpB, 80, {}, now);
  Run(1000, [&] { return c->state() == TcpEndpoint::kClosed; });
  EXPECT_EQ(c->state(), TcpEndpoint::kClosed);
  EXPECT_EQ(c->error(), EHOSTUNREACH);
}

TEST_F(TcpPair, FragmentationNeededShrinksTheSegments) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  // A hop of MTU 1200 on the way to b: what is bigger is dropped, and the
  // hop says so (ICMP type 3 code 4, quoting the dropped header).
  constexpr size_t kHop = 1200;
  size_t dropped = 0;
  wa.drop = [&](const std::string& f) {
    if (f.size() <= kEthLen + kHop) return false;
    dropped++;
    to_a.push_back(Unreachable(f, kIcmpFragNeeded, kHop));
    return true;
  };
  std::string data = Pattern(1 << 20);
  EXPECT_EQ(Transfer(*c.client, *c.server, data, 60000), data);
  EXPECT_GT(dropped, 0u);
  EXPECT_LE(c.client->Info(now).snd_mss, kHop - 20 - 20 - 12);
}

TEST_F(TcpPair, SilentPeerTimesOut) {
  Conn c = Open();
  ASSERT_NE(c.server, nullptr);
  wa.drop = [](const std::string&) { return true; };
  std::string data = "lost";
  c.client->Write(Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()), now);
  Run(3600 * 1000);
  EXPECT_EQ(c.client->state(), TcpEndpoint::kClosed);
  EXPECT_EQ(c.client->error(), ETIMEDOUT);
}

TEST_F(TcpPair, SynFloodStopsAtTheBacklog) {
  Listen(80, 4);
  for (uint16_t port = 1000; port < 1100; port++) {
    // SYNs whose answers go nowhere.
    std::string syn(kTcpLen, '\0');
    auto* t = reinterpret_cast<uint8_t*>(syn.data());
    TcpHeader h;
    h.sport = port;
    h.dport = 80;
    h.seq = port * 1000u;
    h.flags = kSyn;
    h.window = 1000;
    WriteTcp(t, h, "");
    Store16(t + 16,
            Fold(Sum(Bytes(t, kTcpLen), PseudoSum(V4Of(kIpA), V4Of(kIpB), kProtoTcp, kTcpLen))));
    const std::string frame = Ipv4Frame(kMacB, kMacA, kIpA, kIpB, kProtoTcp, syn);
    b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(frame.data()), frame.size()), false, now);
  }
  EXPECT_EQ(hb.listener->half_open, 5);
  EXPECT_EQ(b.Connections().size(), 5u);
  to_a.clear();
  // The half-open ones give up after their SYN-ACK retries.
  for (int i = 0; i < 200; i++) {
    now += 1000 * kMs;
    b.Tick(now);
  }
  to_a.clear();
  EXPECT_EQ(hb.listener->half_open, 0);
  EXPECT_TRUE(b.Connections().empty());
}

// Past a SYN flood that fills the half-open queue, a real client still connects: its SYN
// is answered with a SYN cookie, and the ACK that comes back makes the connection,
// established without state kept between (no window scaling, SACK or timestamps, the MSS the
// cookie kept). An ACK with a forged cookie is reset and makes nothing.
TEST_F(TcpPair, ASynFloodLeavesRoomThroughCookies) {
  Listen(80, 4);
  auto syn_from = [&](uint16_t port, uint8_t flags, uint32_t seq, uint32_t ack) {
    std::string seg(kTcpLen, '\0');
    auto* t = reinterpret_cast<uint8_t*>(seg.data());
    TcpHeader h;
    h.sport = port;
    h.dport = 80;
    h.seq = seq;
    h.ack = ack;
    h.flags = flags;
    h.window = 1000;
    WriteTcp(t, h, "");
    Store16(t + 16,
            Fold(Sum(Bytes(t, kTcpLen), PseudoSum(V4Of(kIpA), V4Of(kIpB), kProtoTcp, kTcpLen))));
    const std::string frame = Ipv4Frame(kMacB, kMacA, kIpA, kIpB, kProtoTcp, seg);
    b.Input(2, Bytes(reinterpret_cast<const uint8_t*>(frame.data()), frame.size()), false, now);
  };
  for (uint16_t port = 1000; port < 1100; port++) syn_from(port, kSyn, port * 1000u, 0);
  EXPECT_EQ(hb.listener->half_open, 5);
  EXPECT_EQ(b.Connections().size(), 5u);
  EXPECT_EQ(b.syncookies_sent(), 95u);
  to_a.clear();  // the flood's answers go nowhere

  auto client = a.Connect(kIpA, 40000, kIpB, 80, {}, now);
  Run(10000, [&] { return !hb.listener->ready.empty() && client->Established(); });
  ASSERT_FALSE(hb.listener->ready.empty())
      << "sent " << b.syncookies_sent() << " recv " << b.syncookies_recv() << " failed "
      << b.syncookies_failed() << " client " << static_cast<int>(client->state());
  std::shared_ptr<TcpEndpoint> server = hb.listener->ready.front();
  hb.listener->ready.pop_front();
  EXPECT_EQ(b.syncookies_sent(), 96u);
  EXPECT_EQ(b.syncookies_recv(), 1u);
  EXPECT_EQ(server->state(), TcpEndpoint::kEstablished);
  EXPECT_EQ(server->Info(now).options & 7, 0);  // no timestamps, SACK or window scaling
  EXPECT_EQ(server->Info(now).snd_mss, 1460u);
  const std::string data = Pattern(300000);
  EXPECT_EQ(Transfer(*client, *server, data), data);
  EXPECT_EQ(Transfer(*server, *client, data), data);

  // A cookie nobody was given: reset, and no connection.
  const size_t conns = b.Connections().size();
  to_a.clear();
  syn_from(2000, kAck, 777, 0x12345678);
  EXPECT_EQ(b.syncookies_failed(), 1u);
  EXPECT_EQ(b.Connections().size(), conns);
  ASSERT_EQ(to_a.size(), 1u);  // the reset
  EXPECT_TRUE(hb.listener->ready.empty());
  // Long after the last cookie went out, an ACK is not taken for one at all.
  now += 300000 * kMs;
  to_a.clear();
  syn_from(2001, kAck, 778, 0x12345678);
  EXPECT_EQ(b.syncookies_failed(), 1u);
  EXPECT_FALSE(to_a.empty());  // reset all the same (after resolving the peer again)
}

TEST(Wire, HostileFramesAreRefused) {
  Host h;
  Stack s(&h, 3);
  std::deque<std::string> out;
  Wire w(&out);
  int nic = s.AddNic("eth0", kMacB, 1500, &w);
  s.AddAddress(nic, kIpB, 30);
  s.AddRoute(Route{V4(0x0ac90000), 30, {}, false, nic});
  std::mt19937 rng(1);
  // Random frames, and real headers with random lengths and options.
  for (int i = 0; i < 20000; i++) {
    std::string f(rng() % 120, '\0');
    for (char& c : f) c = static_cast<char>(rng());
    if (f.size() >= kEthLen + kIpv4Len && i % 2 == 0) {
      auto* p = reinterpret_cast<uint8_t*>(f.data());
      WriteEth(p, EthHeader{kMacB, kMacA, kEtherIpv4});
      Ipv4Header ip;
      ip.total_len = static_cast<uint16_t>(rng() % (f.size() - kEthLen + 8));
      ip.proto = (i % 3 == 0) ? kProtoTcp : (i % 3 == 1) ? kProtoUdp : kProtoIcmp;
      ip.src = 0x0ac90001;
      ip.dst = 0x0ac90002;
      WriteIpv4(p + kEthLen, ip);
    }
    s.Input(nic, Bytes(reinterpret_cast<const uint8_t*>(f.data()), f.size()), i % 4 == 0,
            1000 * kMs + i);
  }
  EXPECT_GT(s.counters().ip_in_hdr_errors + s.counters().tcp_in_errs, 0u);
}

TEST(Wire, HostileIpv6FragmentsAndErrorsAreRefused) {
  Host h;
  Stack s(&h, 3);
  std::deque<std::string> out;
  Wire w(&out);
  int nic = s.AddNic("eth0", kMacB, 1500, &w);
  s.AddAddress(nic, Six(2), 64);
  s.AddRoute(Route{Six(0), 64, {}, false, nic});
  int64_t now = 1000 * kMs;
  // Something for errors to find: a connection opening to fd00::1.
  auto c = s.Connect(Six(2), 40000, Six(1), 80, {}, now);
  std::mt19937 rng(1);
  auto random = [&](size_t n) {
    std::string r(n, '\0');
    for (char& ch : r) ch = static_cast<char>(rng());
    return r;
  };
  const uint8_t nexts[] = {kProtoUdp,     kProtoTcp,     kProtoIcmp6,  kIpv6Fragment,
                           kIpv6DestOpts, kIpv6HopByHop, kIpv6Routing, 99};
  for (int i = 0; i < 50000; i++) {
    std::string payload;
    uint8_t first = kIpv6Fragment;
    switch (i % 4) {
      case 0: {
        // Fragments of a few ids, at offsets and lengths that often meet:
        // overlaps, holes, completions, nested headers, odd lengths.
        const size_t len = rng() % 3 == 0 ? rng() % 80 : 8 * (rng() % 9);
        payload = Frag6(nexts[rng() % 8], 8 * (rng() % 10), rng() % 2 == 0, rng() % 4, random(len));
        break;
      }
      case 1: {
        // Extension headers of random lengths before a Fragment header, or
        // a Fragment header cut short.
        first = nexts[rng() % 8];
        payload = random(rng() % 64);
        if (!payload.empty()) payload[0] = static_cast<char>(kIpv6Fragment);
        if (payload.size() > 1) payload[1] = static_cast<char>(rng() % 3);
        break;
      }
      default: {
        // An ICMPv6 error (checksum right) quoting a packet that looks
        // like the connection's, cut anywhere, with random headers after
        // its IPv6 header.
        std::string q(kIpv6Len, '\0');
        Ipv6Header ip;
        ip.next = nexts[rng() % 8];
        ip.src = Six(2);
        ip.dst = Six(1);
        WriteIpv6(reinterpret_cast<uint8_t*>(q.data()), ip);
        std::string l4 = random(rng() % 64);
        if (l4.size() >= 4) {
          Store16(reinterpret_cast<uint8_t*>(l4.data()), 40000);
          Store16(reinterpret_cast<uint8_t*>(l4.data()) + 2, 80);
        }
        q += l4;
        q.resize(rng() % (q.size() + 1));
        std::string m(kIcmpLen, '\0');
        m[0] = static_cast<char>(rng() % 2 == 0 ? kIcmp6Unreachable : kIcmp6PacketTooBig);
        m[1] = static_cast<char>(rng() % 8);
        Store32(reinterpret_cast<uint8_t*>(m.data()) + 4, rng());
        m += q;
        auto* p = reinterpret_cast<uint8_t*>(m.data());
        Store16(p + 2,
                Fold(Sum(Bytes(p, m.size()), PseudoSumFor(Six(1), Six(2), kProtoIcmp6,
                                                          static_cast<uint32_t>(m.size())))));
        first = kProtoIcmp6;
        payload = m;
        break;
      }
    }
    Feed(s, Ipv6Frame(kMacB, kMacA, Six(1), Six(2), first, payload), now);
    if (i % 1000 == 0) {
      now += kMs;
      s.Tick(now);
      out.clear();
    }
    ASSERT_LE(s.ReassemblyHeld(), size_t{4} << 20);
    ASSERT_LE(s.ReassemblyCount(), 256u);
  }
  EXPECT_GT(s.counters().ip_reasm_fails, 0u);
  EXPECT_GT(s.counters().icmp_in_errors, 0u);
  // None of the errors quoted a sequence number the connection sent.
  EXPECT_EQ(c->state(), TcpEndpoint::kSynSent);
  // What is left goes within a minute.
  now += 61000 * kMs;
  s.Tick(now);
  EXPECT_EQ(s.ReassemblyCount(), 0u);
  EXPECT_EQ(s.ReassemblyHeld(), 0u);
}

TEST(Wire, SipHashMatchesTheReferenceVectors) {
  // The SipHash paper's key 00 01 .. 0f over the messages 00, 00 01, ...:
  // the first outputs of its vectors.h (the 15-byte one is the paper's
  // worked example, a129ca6149be45e5).
  const uint64_t k0 = 0x0706050403020100ULL, k1 = 0x0f0e0d0c0b0a0908ULL;
  uint8_t msg[64];
  for (int i = 0; i < 64; i++) msg[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(SipHash24(k0, k1, Bytes(msg, 0)), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(SipHash24(k0, k1, Bytes(msg, 1)), 0x74f839c593dc67fdULL);
  EXPECT_EQ(SipHash24(k0, k1, Bytes(msg, 15)), 0xa129ca6149be45e5ULL);
  // A different key, a different hash.
  EXPECT_NE(SipHash24(k0 ^ 1, k1, Bytes(msg, 15)), 0xa129ca6149be45e5ULL);
}

TEST(Wire, TcpOptionsRoundTrip) {
  TcpOptions o;
  o.mss = 1460;
  o.wscale = 7;
  o.sack_ok = true;
  o.has_ts = true;
  o.tsval = 0x01020304;
  o.tsecr = 0x05060708;
  std::string bytes = TcpOptionBytes(o, true);
  EXPECT_EQ(bytes.size() % 4, 0u);
  EXPECT_LE(bytes.size(), 40u);
  std::string seg(kTcpLen + bytes.size(), '\0');
  TcpHeader h;
  h.opts = o;
  WriteTcp(reinterpret_cast<uint8_t*>(seg.data()), h, bytes);
  TcpHeader back;
  Bytes payload;
  ASSERT_TRUE(
      ParseTcp(Bytes(reinterpret_cast<const uint8_t*>(seg.data()), seg.size()), &back, &payload));
  EXPECT_EQ(back.opts.mss, 1460);
  EXPECT_EQ(back.opts.wscale, 7);
  EXPECT_TRUE(back.opts.sack_ok);
  EXPECT_EQ(back.opts.tsval, 0x01020304u);
  EXPECT_EQ(back.opts.tsecr, 0x05060708u);
  // Three SACK blocks fit beside timestamps.
  TcpOptions s;
  s.has_ts = true;
  s.nsack = 4;
  for (int i = 0; i < 4; i++) s.sack[i] = {uint32_t(i * 100), uint32_t(i * 100 + 50)};
  std::string sb = TcpOptionBytes(s, false);
  EXPECT_LE(sb.size(), 40u);
  std::string seg2(kTcpLen + sb.size(), '\0');
  TcpHeader h2;
  WriteTcp(reinterpret_cast<uint8_t*>(seg2.data()), h2, sb);
  ASSERT_TRUE(
      ParseTcp(Bytes(reinterpret_cast<const uint8_t*>(seg2.data()), seg2.size()), &back, &payload));
  EXPECT_EQ(back.opts.nsack, 3);
  EXPECT_EQ(back.opts.sack[2][1], 250u);
}

}  // namespace
}  // namespace husk::netstack
