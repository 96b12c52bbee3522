#include "sentry/net/stack/stack.h"

#include <errno.h>

#include <algorithm>
#include <cstring>

#include "sentry/net/stack/tcp.h"

namespace husk::netstack {
namespace {

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kArpReachable = 30 * kSecond;
constexpr int64_t kArpRetry = kSecond;
constexpr int kArpTries = 3;
constexpr size_t kArpQueue = 64;  // packets kept per unresolved address
constexpr size_t kMaxNeighbors = 1024;
constexpr size_t kMaxConnections = 65536;
// Fragments: kept 30 s (ipfrag_time), at most 4 MB of them (ipfrag_high_thresh).
constexpr int64_t kReasmTimeout = 30 * kSecond;
constexpr size_t kReasmMaxBytes = 4 << 20;
constexpr size_t kReasmOverhead = 128;      // a kept fragment's cost beyond its bytes
constexpr size_t kReasmMaxDatagrams = 256;  // datagrams being put back together
// IPv6's fragments are kept 60 s (RFC 8200 4.5; ip6frag_time), under the
// same limits as IPv4's, which they share.
constexpr int64_t kReasm6Timeout = 60 * kSecond;
constexpr size_t kPendingMaxBytes = 4 << 20;  // packets waiting for addresses to resolve

bool InPrefix(const Ip& a, const Ip& net, int prefix) {
  for (int i = 0; i < 16 && prefix > 0; i++, prefix -= 8) {
    uint8_t mask = prefix >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - prefix));
    if ((a[i] & mask) != (net[i] & mask)) return false;
  }
  return true;
}

// The prefix of an IPv4 route or address in the 128-bit space.
int Prefix128(const Ip& ip, int prefix) { return IsV4(ip) ? 96 + prefix : prefix; }

bool IsMulticast6(const Ip& ip) { return !IsV4(ip) && ip[0] == 0xff; }
bool IsLinkLocal6(const Ip& ip) { return !IsV4(ip) && ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80; }
// A group of interface-local or link-local scope (ff01::/16, ff02::/16,
// and the same scopes with flags: ff12::/16...).
bool IsLinkScopeGroup6(const Ip& ip) { return IsMulticast6(ip) && (ip[1] & 0x0f) <= 2; }

// ff02::1:ffXX:XXXX, the solicited-node group of an address.
Ip SolicitedNode(const Ip& ip) {
  Ip g{};
  g[0] = 0xff;
  g[1] = 0x02;
  g[11] = 0x01;
  g[12] = 0xff;
  g[13] = ip[13];
  g[14] = ip[14];
  g[15] = ip[15];
  return g;
}

// 33:33 and the group's last four bytes.
Mac MulticastMac(const Ip& group) {
  return Mac{0x33, 0x33, group[12], group[13], group[14], group[15]};
}

constexpr Ip kAllNodes = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
// ff02::16, where MLDv2 reports go.
constexpr Ip kAllMldRouters = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16};

// Whether a membership of `group` is reported (RFC 3810 6: never all-nodes,
// nor a group of interface-local or reserved scope).
bool MldReported(const Ip& group) {
  return IsMulticast6(group) && group != kAllNodes && (group[1] & 0x0f) > 1;
}

// At most one query per interface and protocol is answered in this time,
// and an answer in an old version (a report per group) names at most
// kMaxOldReports groups.
constexpr int64_t kQueryAnswerGap = int64_t{100} * 1000 * 1000;  // 100 ms
constexpr size_t kMaxOldReports = 64;

constexpr uint32_t kAllSystems = 0xe0000001;     // 224.0.0.1
constexpr uint32_t kIgmpV3Routers = 0xe0000016;  // 224.0.0.22

// Whether a membership of IPv4 group `group` is reported (RFC 3376 5: never
// all-systems).
bool IgmpReported(const Ip& group) {
  return IsV4(group) && (V4Of(group) >> 28) == 0xe && V4Of(group) != kAllSystems;
}

// A group's Ethernet address: 01:00:5e and its low 23 bits.
Mac GroupMac4(uint32_t group) {
  return Mac{0x01,
             0x00,
             0x5e,
             static_cast<uint8_t>((group >> 16) & 0x7f),
             static_cast<uint8_t>(group >> 8),
             static_cast<uint8_t>(group)};
}

// Whether a datagram has all its bytes: its first fragment, its last, and
// no hole between.
bool Whole(const std::map<uint32_t, std::string>& frags, uint32_t total, bool have_first) {
  if (total == 0 || !have_first) return false;
  uint32_t at = 0;
  for (const auto& [o, data] : frags) {
    if (o != at) return false;  // a hole
    at += static_cast<uint32_t>(data.size());
  }
  return at == total;
}

// Whether the first fragment of an IPv6 datagram (b: its fragmentable
// part, whose first header is `next`) holds every header through the
// transport's (RFC 8200 4.5, as RFC 7112 asks; Linux's
// ipv6_frag_thdr_truncated): a filter must see the ports in the first. A
// Fragment header there would fragment the datagram twice.
bool HeadersComplete(uint8_t next, Bytes b) {
  size_t at = 0;
  for (int i = 0; i < 8 && (next == kIpv6HopByHop || next == kIpv6Routing || next == kIpv6DestOpts);
       i++) {
    if (b.size() - at < 8) return false;
    const size_t len = (size_t{b[at + 1]} + 1) * 8;
    if (len > b.size() - at) return false;
    next = b[at];
    at += len;
  }
  if (next == kIpv6Fragment) return false;
  const size_t need = next == kProtoTcp     ? kTcpLen
                      : next == kProtoUdp   ? kUdpLen
                      : next == kProtoIcmp6 ? kIcmpLen
                                            : 1;
  return b.size() - at >= need;
}

// The packet an ICMPv6 error quotes (RFC 4443 2.4(c)): its IPv6 header
// and as much after it as fitted, cut anywhere. Finds its addresses and
// the first 8 bytes of its transport header (the ports, and TCP's
// sequence number) past its extension headers; false if they are not all
// there, or the packet was a fragment other than the first.
bool ParseQuote6(Bytes q, Ip* src, Ip* dst, uint8_t* proto, Bytes* l4) {
  if (q.size() < kIpv6Len || (q[0] >> 4) != 6) return false;
  memcpy(src->data(), &q[8], 16);
  memcpy(dst->data(), &q[24], 16);
  uint8_t next = q[6];
  size_t at = kIpv6Len;
  for (int i = 0; i < 8; i++) {
    if (next == kIpv6Fragment) {
      Ipv6Frag f;
      if (!ParseIpv6Frag(q.subspan(at), &f) || f.offset != 0) return false;
      next = f.next;
      at += kIpv6FragLen;
      continue;
    }
    if (next != kIpv6HopByHop && next != kIpv6Routing && next != kIpv6DestOpts) break;
    if (q.size() - at < 8) return false;
    const size_t len = (size_t{q[at + 1]} + 1) * 8;
    if (len > q.size() - at) return false;
    next = q[at];
    at += len;
  }
  if (q.size() - at < 8) return false;
  *proto = next;
  *l4 = q.subspan(at, 8);
  return true;
}

// The errno a Destination Unreachable's code means, as Linux's
// icmpv6_err_convert says: no route, administratively prohibited, beyond
// the source's scope, address and port unreachable, source address
// failed policy, reject route; EPROTO for codes it does not know.
int Unreachable6Errno(uint8_t code) {
  static constexpr int kErr[7] = {ENETUNREACH,  EACCES, EHOSTUNREACH, EHOSTUNREACH,
                                  ECONNREFUSED, EACCES, EACCES};
  return code < 7 ? kErr[code] : EPROTO;
}

}  // namespace

namespace {
uint64_t Mix(uint64_t h, uint64_t v);
}  // namespace

Stack::Stack(Upcalls* up, uint64_t seed)
    : up_(up), rng_(seed | 1), ip_id_(static_cast<uint16_t>(seed >> 16)) {
  // Until SetCookieKey: from the seed, mixed (not the generator's stream).
  cookie_key_[0] = Mix(seed, 0x636f6f6b69653031ULL);
  cookie_key_[1] = Mix(seed, 0x636f6f6b69653032ULL);
}

namespace {

// The MSS values a SYN cookie can keep (3 bits), as Linux's msstab: the
// largest not above the peer's is kept.
constexpr uint16_t kCookieMss[8] = {536, 1000, 1200, 1300, 1400, 1440, 1460, 8960};
constexpr int64_t kCookiePeriod = 64 * kSecond;  // a cookie's counter ticks this often

uint64_t Mix(uint64_t h, uint64_t v) {
  // A splitmix64 step over the running hash and the next input.
  h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBULL;
  return h ^ (h >> 31);
}

}  // namespace

uint32_t Stack::CookieHash(const Ip& local, uint16_t lport, const Ip& remote, uint16_t rport,
                           uint32_t peer_isn, uint32_t count, uint32_t mss_index) const {
  // The connection, the counter and the MSS's index under the stack's
  // secret key (SipHash, as Linux's cookies use since 4.13).
  uint8_t m[16 + 16 + 2 + 2 + 4 + 4 + 1];
  uint8_t* p = m;
  memcpy(p, local.data(), 16);
  memcpy(p + 16, remote.data(), 16);
  p += 32;
  Store16(p, lport);
  Store16(p + 2, rport);
  Store32(p + 4, peer_isn);
  Store32(p + 8, count);
  p[12] = static_cast<uint8_t>(mss_index);
  return static_cast<uint32_t>(SipHash24(cookie_key_[0], cookie_key_[1], Bytes(m, sizeof(m))));
}

uint32_t Stack::SynCookie(const Ip& local, uint16_t lport, const Ip& remote, uint16_t rport,
                          uint32_t peer_isn, uint16_t peer_mss, int64_t now) const {
  uint32_t m = 0;
  while (m + 1 < 8 && kCookieMss[m + 1] <= peer_mss) m++;
  const auto count = static_cast<uint32_t>(now / kCookiePeriod) & 31;
  // 5 bits of counter, 3 of MSS, 24 of keyed hash.
  return (count << 27) | (m << 24) |
         (CookieHash(local, lport, remote, rport, peer_isn, count, m) & 0xFFFFFF);
}

uint16_t Stack::CheckSynCookie(const Ip& local, uint16_t lport, const Ip& remote, uint16_t rport,
                               uint32_t peer_isn, uint32_t cookie, int64_t now) const {
  const uint32_t count = cookie >> 27, m = (cookie >> 24) & 7;
  const auto current = static_cast<uint32_t>(now / kCookiePeriod) & 31;
  // This period's or the last one's: at most two minutes old.
  if (count != current && count != ((current + 31) & 31)) return 0;
  if ((CookieHash(local, lport, remote, rport, peer_isn, count, m) & 0xFFFFFF) !=
      (cookie & 0xFFFFFF)) {
    return 0;
  }
  return kCookieMss[m];
}

void Stack::SendCookie(const Ip& local, const Ip& remote, const TcpHeader& syn, int64_t now) {
  // Our MSS, and nothing that would need state: no window scaling, SACK
  // or timestamps (Linux keeps those in the timestamp; without it, none).
  TcpHeader h;
  h.sport = syn.dport;
  h.dport = syn.sport;
  const uint16_t peer_mss = syn.opts.mss != 0 ? syn.opts.mss : 536;
  h.seq = SynCookie(local, syn.dport, remote, syn.sport, syn.seq, peer_mss, now);
  h.ack = syn.seq + 1;
  h.flags = kSyn | kAck;
  h.window = 65535;
  h.opts.mss = MssFor(remote);
  syncookies_sent_++;
  last_cookie_at_ = now;
  SendTcp(local, remote, h, {}, 0, now);
}

Stack::~Stack() {
  for (auto& [key, ep] : conns_) ep->Detach();
}

uint32_t Stack::Random() {
  // xorshift64*: not for secrets, for numbers an off-path guesser should
  // not know in advance (the seed comes from getrandom).
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return static_cast<uint32_t>((rng_ * 0x2545F4914F6CDD1DULL) >> 32);
}

uint32_t Stack::NewIsn(int64_t now) {
  if (isn_set_) return isn_for_test_;
  // RFC 6528: a clock (4 us ticks) plus a per-connection random part.
  return static_cast<uint32_t>(now / 4000) + Random();
}

int Stack::AddNic(const std::string& name, const Mac& mac, uint32_t mtu, Link* link, bool gso) {
  Nic n;
  n.index = static_cast<int>(nics_.size()) + 2;
  n.name = name;
  n.mac = mac;
  n.mtu = std::clamp<uint32_t>(mtu, 576, 65535);
  n.link = link;
  n.gso = gso;
  nics_.push_back(std::move(n));
  return nics_.back().index;
}

void Stack::AddAddress(int nic, const Ip& addr, int prefix) {
  if (Nic* n = NicByIndex(nic)) n->addrs.emplace_back(addr, prefix);
}

void Stack::SetGso(int nic, bool on) {
  if (Nic* n = NicByIndex(nic)) n->gso = on;
}

void Stack::AddRoute(const Route& r) {
  routes_.push_back(r);
  std::stable_sort(routes_.begin(), routes_.end(), [](const Route& a, const Route& b) {
    return Prefix128(a.dst, a.prefix) > Prefix128(b.dst, b.prefix);
  });
}

Nic* Stack::NicByIndex(int index) {
  for (Nic& n : nics_) {
    if (n.index == index) return &n;
  }
  return nullptr;
}

const Route* Stack::Lookup(const Ip& dst) const {
  for (const Route& r : routes_) {
    if (IsV4(r.dst) == IsV4(dst) && InPrefix(dst, r.dst, Prefix128(r.dst, r.prefix))) return &r;
  }
  return nullptr;
}

int Stack::SourceOn(int nic, const Ip& dst, Ip* src) const {
  for (const Nic& n : nics_) {
    if (n.index != nic) continue;
    for (const auto& [addr, prefix] : n.addrs) {
      if (IsV4(addr) == IsV4(dst)) {
        *src = NicAddress(n, dst);
        return 0;
      }
    }
    return EADDRNOTAVAIL;
  }
  return ENETUNREACH;
}

void Stack::JoinGroup(int nic, const Ip& group) {
  Nic* n = NicByIndex(nic);
  if (n == nullptr) return;
  if (++n->groups[group] != 1) return;
  if (IgmpReported(group)) SendIgmpReport(*n, {group}, kMldToExclude);
  if (MldReported(group)) SendMldReport(*n, {group}, kMldToExclude);
}

void Stack::LeaveGroup(int nic, const Ip& group) {
  Nic* n = NicByIndex(nic);
  if (n == nullptr) return;
  auto it = n->groups.find(group);
  if (it != n->groups.end() && --it->second <= 0) {
    n->groups.erase(it);
    if (IgmpReported(group)) SendIgmpReport(*n, {group}, kMldToInclude);
    if (MldReported(group)) SendMldReport(*n, {group}, kMldToInclude);
  }
}

void Stack::SendMldReport(Nic& nic, const std::vector<Ip>& groups, uint8_t type) {
  // RFC 3810 5.2: from the interface's link-local address (unspecified if
  // it has none yet), to all MLDv2 routers, hop limit 1, with a router
  // alert in a hop-by-hop header; as many records as a packet holds.
  constexpr size_t kRecord = 20;
  // Records per packet: as many as the interface's MTU holds (IPv6, the
  // hop-by-hop header and the report's own 8 bytes first), at most 64.
  const size_t per_packet =
      std::clamp<size_t>((std::max<size_t>(nic.mtu, kIpv6MinMtu) - kIpv6Len - 16) / kRecord, 1, 64);
  const Ip src = NicAddress(nic, kAllMldRouters);
  const Ip from = IsLinkLocal6(src) ? src : Ip{};
  for (size_t first = 0; first < groups.size(); first += per_packet) {
    const size_t n = std::min(per_packet, groups.size() - first);
    std::string packet(kIpv6Len + 8 + 8 + n * kRecord, '\0');
    auto* p = reinterpret_cast<uint8_t*>(packet.data());
    uint8_t* hbh = p + kIpv6Len;
    hbh[0] = kProtoIcmp6;
    hbh[2] = 5;  // router alert, 2 bytes: MLD (0)
    hbh[3] = 2;
    hbh[6] = 1;  // PadN, 0 bytes
    uint8_t* msg = hbh + 8;
    const size_t len = 8 + n * kRecord;
    msg[0] = kMldV2Report;
    Store16(msg + 6, static_cast<uint16_t>(n));
    for (size_t k = 0; k < n; k++) {
      uint8_t* r = msg + 8 + k * kRecord;
      r[0] = type;
      memcpy(r + 4, groups[first + k].data(), 16);
    }
    Store16(msg + 2, Fold(Sum(Bytes(msg, len), PseudoSumFor(from, kAllMldRouters, kProtoIcmp6,
                                                            static_cast<uint32_t>(len)))));
    Ipv6Header h;
    h.payload_len = static_cast<uint16_t>(8 + len);
    h.next = kIpv6HopByHop;
    h.hop_limit = 1;
    h.src = from;
    h.dst = kAllMldRouters;
    WriteIpv6(p, h);
    counters_.icmp_out_msgs++;
    Transmit(nic, MulticastMac(kAllMldRouters), kEtherIpv6, Bytes(p, packet.size()));
  }
}

void Stack::SendMldV1Report(Nic& nic, const Ip& group) {
  // RFC 2710 3: to the group itself, hop limit 1, router alert.
  const Ip src = NicAddress(nic, kAllMldRouters);
  const Ip from = IsLinkLocal6(src) ? src : Ip{};
  uint8_t packet[kIpv6Len + 8 + 24] = {};
  uint8_t* hbh = packet + kIpv6Len;
  hbh[0] = kProtoIcmp6;
  hbh[2] = 5;
  hbh[3] = 2;
  hbh[6] = 1;
  uint8_t* msg = hbh + 8;
  msg[0] = kMldV1Report;
  memcpy(msg + 8, group.data(), 16);
  Store16(msg + 2, Fold(Sum(Bytes(msg, 24), PseudoSumFor(from, group, kProtoIcmp6, 24))));
  Ipv6Header h;
  h.payload_len = 8 + 24;
  h.next = kIpv6HopByHop;
  h.hop_limit = 1;
  h.src = from;
  h.dst = group;
  WriteIpv6(packet, h);
  counters_.icmp_out_msgs++;
  Transmit(nic, MulticastMac(group), kEtherIpv6, Bytes(packet, sizeof(packet)));
}

void Stack::SendIgmp(Nic& nic, uint32_t dst, Bytes msg) {
  // RFC 3376 4: TTL 1, a router alert option, from the interface's address
  // (0.0.0.0 if it has none); DF and the precedence Linux gives them.
  const Ip addr = NicAddress(nic, V4(dst));
  const uint32_t src = IsV4(addr) ? V4Of(addr) : 0;
  constexpr size_t kHeader = kIpv4Len + 4;
  std::string packet(kHeader + msg.size(), '\0');
  auto* p = reinterpret_cast<uint8_t*>(packet.data());
  p[0] = 0x46;  // version 4, 6 words
  p[1] = 0xc0;
  Store16(p + 2, static_cast<uint16_t>(packet.size()));
  Store16(p + 4, ip_id_++);
  Store16(p + 6, kIpDf);
  p[8] = 1;
  p[9] = kProtoIgmp;
  Store32(p + 12, src);
  Store32(p + 16, dst);
  p[20] = 0x94;  // router alert, 4 bytes, value 0
  p[21] = 4;
  Store16(p + 10, Fold(Sum(Bytes(p, kHeader))));
  CopyBytes(p + kHeader, msg);
  counters_.ip_out_requests++;
  Transmit(nic, GroupMac4(dst), kEtherIpv4, Bytes(p, packet.size()));
}

void Stack::SendIgmpReport(Nic& nic, const std::vector<Ip>& groups, uint8_t type) {
  constexpr size_t kRecord = 8;
  const size_t per_packet =
      std::clamp<size_t>((std::max<size_t>(nic.mtu, 576) - kIpv4Len - 4 - 8) / kRecord, 1, 64);
  for (size_t first = 0; first < groups.size(); first += per_packet) {
    const size_t n = std::min(per_packet, groups.size() - first);
    std::string msg(8 + n * kRecord, '\0');
    auto* m = reinterpret_cast<uint8_t*>(msg.data());
    m[0] = kIgmpV3Report;
    Store16(m + 6, static_cast<uint16_t>(n));
    for (size_t k = 0; k < n; k++) {
      uint8_t* r = m + 8 + k * kRecord;
      r[0] = type;
      Store32(r + 4, V4Of(groups[first + k]));
    }
    Store16(m + 2, Fold(Sum(Bytes(m, msg.size()))));
    SendIgmp(nic, kIgmpV3Routers, Bytes(m, msg.size()));
  }
}

void Stack::SendIgmpOldReport(Nic& nic, uint32_t group, uint8_t type) {
  uint8_t m[8] = {};
  m[0] = type;
  Store32(m + 4, group);
  Store16(m + 2, Fold(Sum(Bytes(m, sizeof(m)))));
  SendIgmp(nic, group, Bytes(m, sizeof(m)));
}

void Stack::InputIgmp(Nic& nic, const Ipv4Header& ip, Bytes b, int64_t now) {
  // Queries alone (another host's report asks nothing of us), from the
  // link (TTL 1) to a group: version 1's and 2's are 8 bytes (1's with no
  // response time, and always general), version 3's at least 12. Answered
  // at once, in the querier's version, at most once per kQueryAnswerGap.
  if (b.size() < 8 || b[0] != kIgmpQuery || (b.size() > 8 && b.size() < 12) || Fold(Sum(b)) != 0 ||
      ip.ttl != 1 || (ip.dst >> 28) != 0xe) {
    return;
  }
  if (now - nic.igmp_answered < kQueryAnswerGap) return;
  nic.igmp_answered = now;
  const uint32_t asked = b.size() == 8 && b[1] == 0 ? 0 : Load32(&b[4]);
  const bool general = asked == 0;
  if (!general && (asked >> 28) != 0xe) return;
  std::vector<Ip> groups;
  for (const auto& [g, count] : nic.groups) {
    if (IgmpReported(g) && (general || V4Of(g) == asked)) groups.push_back(g);
  }
  if (b.size() >= 12) {
    SendIgmpReport(nic, groups, kMldIsExclude);
    return;
  }
  for (size_t k = 0; k < groups.size() && k < kMaxOldReports; k++) {
    SendIgmpOldReport(nic, V4Of(groups[k]), b[1] == 0 ? kIgmpV1Report : kIgmpV2Report);
  }
}

void Stack::InputMldQuery(Nic& nic, const Ipv6Header& ip, Bytes b, int64_t now) {
  // RFC 3810 5.1.14: a query from a router on the link (link-local source,
  // hop limit 1) is answered; others are dropped. Version 1's is 24 bytes,
  // version 2's at least 28. Answered at once, not after a random delay of
  // up to the maximum response time: the sandbox is one listener.
  if (ip.hop_limit != 1 || !IsLinkLocal6(ip.src) || (b.size() != 24 && b.size() < 28)) return;
  if (now - nic.mld_answered < kQueryAnswerGap) return;
  nic.mld_answered = now;
  Ip asked;
  memcpy(asked.data(), &b[8], 16);
  const bool general = asked == Ip{};
  if (!general && !IsMulticast6(asked)) return;
  // What this interface listens to: the groups joined, and the
  // solicited-node groups of its addresses.
  std::vector<Ip> groups;
  for (const auto& [g, count] : nic.groups) {
    if (MldReported(g) && (general || g == asked)) groups.push_back(g);
  }
  for (const auto& [addr, prefix] : nic.addrs) {
    if (IsV4(addr)) continue;
    const Ip g = SolicitedNode(addr);
    if ((general || g == asked) && std::find(groups.begin(), groups.end(), g) == groups.end()) {
      groups.push_back(g);
    }
  }
  if (b.size() == 24) {
    for (size_t k = 0; k < groups.size() && k < kMaxOldReports; k++)
      SendMldV1Report(nic, groups[k]);
    return;
  }
  SendMldReport(nic, groups, kMldIsExclude);
}

bool Stack::InGroup(int nic, const Ip& group) const {
  for (const Nic& n : nics_) {
    if (n.index != nic) continue;
    if (group == kAllNodes || n.groups.contains(group)) return true;
    for (const auto& [addr, prefix] : n.addrs) {
      if (!IsV4(addr) && group == SolicitedNode(addr)) return true;
    }
  }
  return false;
}

int Stack::SourceFor(const Ip& dst, Ip* src) const {
  const Route* r = Lookup(dst);
  if (r == nullptr) return ENETUNREACH;
  for (const Nic& n : nics_) {
    if (n.index != r->nic) continue;
    for (const auto& [addr, prefix] : n.addrs) {
      if (IsV4(addr) == IsV4(dst)) {
        *src = NicAddress(n, dst);
        return 0;
      }
    }
  }
  return ENETUNREACH;
}

bool Stack::IsBroadcast(const Ip& ip) const {
  if (!IsV4(ip)) return false;
  const uint32_t a = V4Of(ip);
  if (a == 0xffffffff) return true;
  for (const Nic& n : nics_) {
    for (const auto& [addr, prefix] : n.addrs) {
      if (!IsV4(addr) || prefix >= 31) continue;
      const uint32_t host = prefix == 0 ? 0xffffffff : (1u << (32 - prefix)) - 1;
      if ((V4Of(addr) | host) == a) return true;
    }
  }
  return false;
}

bool Stack::IsLocal(const Ip& ip) const {
  for (const Nic& n : nics_) {
    for (const auto& [addr, prefix] : n.addrs) {
      if (addr == ip) return true;
    }
  }
  return false;
}

uint16_t Stack::MssFor(const Ip& dst) const {
  uint32_t mtu = 1500;
  if (const Route* r = Lookup(dst)) {
    for (const Nic& n : nics_) {
      if (n.index == r->nic) mtu = n.mtu;
    }
  }
  return static_cast<uint16_t>(mtu - (IsV4(dst) ? kIpv4Len : kIpv6Len) - kTcpLen);
}

void Stack::Input(int nic_index, Bytes frame, bool checksum_ok, int64_t now) {
  Nic* nic = NicByIndex(nic_index);
  if (nic == nullptr) return;
  nic->rx_packets++;
  nic->rx_bytes += frame.size();
  EthHeader eth;
  Bytes payload;
  if (!ParseEth(frame, &eth, &payload) ||
      (eth.dst != nic->mac && eth.dst != kBroadcastMac && (eth.dst[0] & 1) == 0)) {
    nic->rx_dropped++;
    return;
  }
  switch (eth.type) {
    case kEtherArp:
      InputArp(*nic, payload, now);
      break;
    case kEtherIpv4:
      InputIpv4(*nic, payload, checksum_ok, now);
      break;
    case kEtherIpv6:
      InputIpv6(*nic, payload, checksum_ok, eth.src, /*link_multicast=*/eth.dst != nic->mac, now);
      break;
    default:
      nic->rx_dropped++;
      break;
  }
}

void Stack::InputArp(Nic& nic, Bytes b, int64_t now) {
  ArpPacket a;
  if (!ParseArp(b, &a) || a.spa == 0) return;
  bool for_us = IsLocal(V4(a.tpa));
  // RFC 826: update a known entry; learn a new one only from a packet for us.
  Learn(nic, V4(a.spa), a.sha, for_us, now);
  if (for_us && a.op == kArpRequest) SendArp(nic, kArpReply, a.sha, a.spa, a.sha);
}

void Stack::Learn(Nic& nic, const Ip& ip, const Mac& mac, bool create, int64_t now) {
  auto it = neighbors_.find(ip);
  if (it == neighbors_.end() && (!create || neighbors_.size() >= kMaxNeighbors)) return;
  Neighbor& n = neighbors_[ip];
  n.mac = mac;
  n.resolved = true;
  n.expires = now + kArpReachable;
  n.tries = 0;
  n.stale_probes = 0;
  std::deque<std::string> pending = std::move(n.pending);
  n.pending.clear();
  for (const std::string& p : pending) pending_bytes_ -= std::min(pending_bytes_, p.size());
  for (const std::string& p : pending) {
    Transmit(nic, n.mac, IsV4(ip) ? kEtherIpv4 : kEtherIpv6,
             Bytes(reinterpret_cast<const uint8_t*>(p.data()), p.size()));
  }
}

void Stack::SendArp(Nic& nic, uint16_t op, const Mac& tha, uint32_t tpa, const Mac& dst_mac) {
  ArpPacket a;
  a.op = op;
  a.sha = nic.mac;
  a.tha = tha;
  a.tpa = tpa;
  for (const auto& [addr, prefix] : nic.addrs) {
    if (IsV4(addr)) {
      a.spa = V4Of(addr);
      break;
    }
  }
  uint8_t buf[kArpLen];
  WriteArp(buf, a);
  Transmit(nic, dst_mac, kEtherArp, Bytes(buf, sizeof(buf)));
}

void Stack::Transmit(Nic& nic, const Mac& dst, uint16_t type, Bytes packet, const GsoInfo& gso) {
  frame_.resize(kEthLen + packet.size());
  auto* p = reinterpret_cast<uint8_t*>(frame_.data());
  WriteEth(p, EthHeader{dst, nic.mac, type});
  CopyBytes(p + kEthLen, packet);
  nic.tx_packets++;
  nic.tx_bytes += frame_.size();
  if (nic.link != nullptr) nic.link->Transmit(Bytes(p, frame_.size()), gso);
}

void Stack::Resolve(Nic& nic, const Ip& next_hop, std::string packet, int64_t now) {
  const uint16_t type = IsV4(next_hop) ? kEtherIpv4 : kEtherIpv6;
  if (IsMulticast6(next_hop)) {
    Transmit(nic, MulticastMac(next_hop), type,
             Bytes(reinterpret_cast<const uint8_t*>(packet.data()), packet.size()));
    return;
  }
  auto it = neighbors_.find(next_hop);
  if (it != neighbors_.end() && it->second.resolved && it->second.expires > now) {
    Transmit(nic, it->second.mac, type,
             Bytes(reinterpret_cast<const uint8_t*>(packet.data()), packet.size()));
    return;
  }
  if (it == neighbors_.end()) {
    if (neighbors_.size() >= kMaxNeighbors) {
      // Forget the unresolved first, then anything.
      auto victim = std::find_if(neighbors_.begin(), neighbors_.end(),
                                 [](const auto& e) { return !e.second.resolved; });
      auto gone = victim != neighbors_.end() ? victim : neighbors_.begin();
      for (const std::string& p : gone->second.pending) {
        pending_bytes_ -= std::min(pending_bytes_, p.size());
      }
      neighbors_.erase(gone);
    }
    it = neighbors_.emplace(next_hop, Neighbor{}).first;
  }
  Neighbor& n = it->second;
  if (n.resolved) {
    // Stale: the old address is used meanwhile, while it is asked again
    // (a few times; an answer makes it fresh).
    Transmit(nic, n.mac, type,
             Bytes(reinterpret_cast<const uint8_t*>(packet.data()), packet.size()));
    if (n.stale_probes >= kArpTries) {
      neighbors_.erase(it);
      return;
    }
    n.stale_probes++;
    n.expires = now + kArpRetry;
    if (IsV4(next_hop)) {
      SendArp(nic, kArpRequest, Mac{}, V4Of(next_hop), kBroadcastMac);
    } else {
      SendSolicit(nic, next_hop);
    }
    return;
  }
  if (n.pending.size() >= kArpQueue || pending_bytes_ + packet.size() > kPendingMaxBytes) {
    if (n.pending.empty()) {
      nic.tx_dropped++;
      return;
    }
    pending_bytes_ -= n.pending.front().size();
    n.pending.pop_front();
    nic.tx_dropped++;
  }
  pending_bytes_ += packet.size();
  n.pending.push_back(std::move(packet));
  if (n.tries == 0) {
    n.tries = 1;
    n.expires = now + kArpRetry;
    if (IsV4(next_hop)) {
      SendArp(nic, kArpRequest, Mac{}, V4Of(next_hop), kBroadcastMac);
    } else {
      SendSolicit(nic, next_hop);
    }
  }
}

int Stack::SendIpv4(uint32_t src, uint32_t dst, uint8_t proto, uint8_t tos, uint8_t ttl, bool df,
                    Bytes l4, int64_t now) {
  const Route* r = Lookup(V4(dst));
  Nic* nic = r != nullptr ? NicByIndex(r->nic) : nullptr;
  if (nic == nullptr) {
    counters_.ip_out_no_routes++;
    return ENETUNREACH;
  }
  counters_.ip_out_requests++;
  const Ip next_hop = r->has_gateway ? r->gateway : V4(dst);
  const bool broadcast = IsBroadcast(V4(dst));
  // A group's frames go to its Ethernet address (01:00:5e and its low 23
  // bits), unresolved.
  const bool multicast = (dst >> 28) == 0xe;
  const Mac group_mac = {0x01,
                         0x00,
                         0x5e,
                         static_cast<uint8_t>((dst >> 16) & 0x7f),
                         static_cast<uint8_t>(dst >> 8),
                         static_cast<uint8_t>(dst)};
  Ipv4Header h;
  h.tos = tos;
  h.ttl = ttl;
  h.proto = proto;
  h.src = src;
  h.dst = dst;
  h.id = ip_id_++;
  size_t max_payload = (nic->mtu - kIpv4Len) & ~size_t{7};
  if (l4.size() + kIpv4Len <= nic->mtu) {
    h.total_len = static_cast<uint16_t>(kIpv4Len + l4.size());
    h.frag = df ? kIpDf : 0;
    std::string packet(h.total_len, '\0');
    auto* p = reinterpret_cast<uint8_t*>(packet.data());
    WriteIpv4(p, h);
    CopyBytes(p + kIpv4Len, l4);
    if (broadcast || multicast) {
      Transmit(*nic, multicast ? group_mac : kBroadcastMac, kEtherIpv4, Bytes(p, packet.size()));
    } else {
      Resolve(*nic, next_hop, std::move(packet), now);
    }
    return 0;
  }
  if (df) return EMSGSIZE;
  // Fragments of up to max_payload bytes, each a multiple of 8 but the last.
  for (size_t off = 0; off < l4.size(); off += max_payload) {
    size_t len = std::min(max_payload, l4.size() - off);
    h.total_len = static_cast<uint16_t>(kIpv4Len + len);
    h.frag = static_cast<uint16_t>((off / 8) | (off + len < l4.size() ? kIpMf : 0));
    std::string packet(h.total_len, '\0');
    auto* p = reinterpret_cast<uint8_t*>(packet.data());
    WriteIpv4(p, h);
    CopyBytes(p + kIpv4Len, l4.subspan(off, len));
    if (broadcast || multicast) {
      Transmit(*nic, multicast ? group_mac : kBroadcastMac, kEtherIpv4, Bytes(p, packet.size()));
    } else {
      Resolve(*nic, next_hop, std::move(packet), now);
    }
    counters_.ip_frag_creates++;
  }
  counters_.ip_frag_oks++;
  return 0;
}

void Stack::InputIpv4(Nic& nic, Bytes b, bool checksum_ok, int64_t now) {
  counters_.ip_in_receives++;
  Ipv4Header ip;
  Bytes payload;
  if (!ParseIpv4(b, /*verify_checksum=*/true, &ip, &payload)) {
    counters_.ip_in_hdr_errors++;
    return;
  }
  // Broadcasts and multicast groups reach the sockets (UDP) that take them.
  bool broadcast = ip.dst == 0xffffffff || (ip.dst >> 28) == 0xe;
  for (const auto& [addr, prefix] : nic.addrs) {
    if (IsV4(addr) && prefix < 31) {
      uint32_t host = prefix == 0 ? 0xffffffff : (1u << (32 - prefix)) - 1;
      if ((V4Of(addr) | host) == ip.dst) broadcast = true;
    }
  }
  if (!broadcast && !IsLocal(V4(ip.dst))) {
    counters_.ip_in_addr_errors++;  // the sandbox does not forward
    return;
  }
  // Martian sources (RFC 1812 5.3.7): nobody on the wire is 0.0.0.0,
  // loopback, multicast, a broadcast address or this sandbox.
  const uint32_t src = ip.src;
  if (src == 0 || (src >> 24) == 127 || (src >> 28) == 0xe || IsBroadcast(V4(src)) ||
      IsLocal(V4(src))) {
    counters_.ip_in_addr_errors++;
    return;
  }
  if ((ip.frag & (kIpMf | kIpOffsetMask)) != 0) {
    // IGMP is never fragmented (its messages are small): only UDP and the
    // rest are put back together.
    if (ip.proto != kProtoIgmp) Reassemble(ip, payload, broadcast, now);
    return;
  }
  if (ip.proto == kProtoIgmp) {
    counters_.ip_in_delivers++;
    InputIgmp(nic, ip, payload, now);
    return;
  }
  DeliverIpv4(ip, payload, b.first(ip.total_len), checksum_ok, broadcast, now);
}

void Stack::DropReassembly(const ReasmKey& key) {
  counters_.ip_reasm_fails++;
  auto it = reasm_.find(key);
  if (it != reasm_.end()) {
    reasm_bytes_ -= it->second.bytes;
    reasm_.erase(it);
  }
}

Stack::Reassembly* Stack::KeepFragment(const ReasmKey& key, uint32_t off, bool more, Bytes payload,
                                       uint32_t max_end, size_t extra, int64_t timeout,
                                       int64_t now) {
  counters_.ip_reasm_reqds++;
  const auto len = static_cast<uint32_t>(payload.size());
  // Every fragment carries bytes, all but the last a multiple of 8, and
  // none reaches past the largest datagram.
  if ((more && len % 8 != 0) || off + len > max_end || len == 0) {
    DropReassembly(key);
    return nullptr;
  }
  // Each fragment is charged its bytes and what keeping it costs; every
  // fragment, not just a datagram's first, makes room by letting the
  // oldest datagrams go, and so does a datagram past the count's limit.
  const size_t charge = len + extra + kReasmOverhead;
  const bool fresh = reasm_.find(key) == reasm_.end();
  while (!reasm_.empty() && (reasm_bytes_ + charge > kReasmMaxBytes ||
                             (fresh && reasm_.size() >= kReasmMaxDatagrams))) {
    auto oldest = std::min_element(reasm_.begin(), reasm_.end(), [](const auto& a, const auto& b) {
      return a.second.born < b.second.born;
    });
    if (!fresh && oldest->first == key) break;
    reasm_bytes_ -= oldest->second.bytes;
    reasm_.erase(oldest);
    counters_.ip_reasm_fails++;
  }
  if (reasm_bytes_ + charge > kReasmMaxBytes) {
    DropReassembly(key);
    return nullptr;
  }
  if (fresh) {
    Reassembly& n = reasm_[key];
    n.born = now;
    n.expires = now + timeout;
  }
  Reassembly& r = reasm_[key];
  // Overlapping fragments end the datagram (as Linux has since 4.19, and
  // RFC 5722 asks of IPv6): they are how filters are fooled.
  for (const auto& [o, data] : r.frags) {
    const auto l = static_cast<uint32_t>(data.size());
    if (o == off && l == len) return nullptr;  // a duplicate
    if (off < o + l && o < off + len) {
      DropReassembly(key);
      return nullptr;
    }
  }
  if (!more) {
    if ((r.total != 0 && r.total != off + len) ||
        (!r.frags.empty() &&
         std::prev(r.frags.end())->first + std::prev(r.frags.end())->second.size() > off + len)) {
      DropReassembly(key);
      return nullptr;
    }
    r.total = off + len;
  } else if (r.total != 0 && off + len > r.total) {
    DropReassembly(key);
    return nullptr;
  }
  r.frags.emplace(off, std::string(payload.begin(), payload.end()));
  r.bytes += charge;
  reasm_bytes_ += charge;
  return &r;
}

void Stack::Reassemble(const Ipv4Header& ip, Bytes payload, bool broadcast, int64_t now) {
  const uint32_t off = uint32_t{static_cast<uint16_t>(ip.frag & kIpOffsetMask)} * 8;
  const ReasmKey key{V4(ip.src), V4(ip.dst), ip.id, ip.proto};
  Reassembly* r = KeepFragment(key, off, (ip.frag & kIpMf) != 0, payload, 65535 - kIpv4Len,
                               /*extra=*/0, kReasmTimeout, now);
  if (r == nullptr) return;
  if (off == 0) {
    r->first = ip;
    r->have_first = true;
  }
  if (!Whole(r->frags, r->total, r->have_first)) return;
  std::string whole(kIpv4Len + r->total, '\0');
  auto* p = reinterpret_cast<uint8_t*>(whole.data());
  Ipv4Header h = r->first;
  h.frag = 0;
  h.total_len = static_cast<uint16_t>(kIpv4Len + r->total);
  WriteIpv4(p, h);
  for (const auto& [o, data] : r->frags) {
    CopyBytes(p + kIpv4Len + o, Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  }
  reasm_bytes_ -= r->bytes;
  reasm_.erase(key);
  counters_.ip_reasm_oks++;
  DeliverIpv4(h, Bytes(p + kIpv4Len, h.total_len - kIpv4Len), Bytes(p, h.total_len),
              /*checksum_ok=*/false, broadcast, now);
}

void Stack::DeliverIpv4(const Ipv4Header& ip, Bytes payload, Bytes whole, bool checksum_ok,
                        bool broadcast, int64_t now) {
  counters_.ip_in_delivers++;
  switch (ip.proto) {
    case kProtoIcmp:
      if (!broadcast) InputIcmp(ip, payload, now);
      break;
    case kProtoUdp:
    case kProtoTcp: {
      IpMeta meta;
      meta.src = V4(ip.src);
      meta.dst = V4(ip.dst);
      meta.tos = ip.tos;
      meta.ttl = ip.ttl;
      meta.v4 = ip;
      if (ip.proto == kProtoUdp) {
        InputUdp(meta, payload, checksum_ok, whole, now);
      } else if (!broadcast) {
        InputTcp(meta, payload, checksum_ok, now);
      }
      break;
    }
    default:
      counters_.ip_in_unknown_protos++;
      break;
  }
}

void Stack::InputIcmp(const Ipv4Header& ip, Bytes b, int64_t now) {
  counters_.icmp_in_msgs++;
  IcmpHeader h;
  Bytes payload;
  if (!ParseIcmp(b, /*verify_checksum=*/true, &h, &payload)) {
    counters_.icmp_in_errors++;
    return;
  }
  if (h.type == kIcmpEchoRequest) {
    counters_.icmp_in_echos++;
    std::string reply(b.begin(), b.end());
    auto* p = reinterpret_cast<uint8_t*>(reply.data());
    p[0] = kIcmpEchoReply;
    Store16(p + 2, 0);
    Store16(p + 2, Fold(Sum(Bytes(p, reply.size()))));
    counters_.icmp_out_msgs++;
    counters_.icmp_out_echo_reps++;
    SendIpv4(ip.dst, ip.src, kProtoIcmp, ip.tos, 64, false, Bytes(p, reply.size()), now);
    return;
  }
  if (h.type == kIcmpEchoReply) {
    counters_.icmp_in_echo_reps++;
    up_->DeliverEchoReply(V4(ip.src), V4(ip.dst), static_cast<uint16_t>(h.rest >> 16), b, ip.ttl);
    return;
  }
  if (h.type == kIcmpUnreachable) {
    counters_.icmp_in_dest_unreachs++;
    // The offending datagram's header and first 8 bytes come back.
    Ipv4Header inner;
    Bytes rest;
    if (payload.size() < kIpv4Len) return;
    size_t ihl = static_cast<size_t>(payload[0] & 0xfu) * 4;
    if (ihl < kIpv4Len || payload.size() < ihl + 8 || (payload[0] >> 4) != 4) return;
    inner.proto = payload[9];
    inner.src = Load32(&payload[12]);
    inner.dst = Load32(&payload[16]);
    rest = payload.subspan(ihl);
    if (inner.proto == kProtoTcp) {
      // RFC 5927: only for a connection of ours whose unacknowledged
      // sequence space holds the quoted segment's.
      auto it =
          conns_.find(ConnKey{V4(inner.src), Load16(&rest[0]), V4(inner.dst), Load16(&rest[2])});
      if (it == conns_.end()) return;
      std::shared_ptr<TcpEndpoint> ep = it->second;
      const uint32_t seq = Load32(&rest[4]);
      if (!ep->SentAndUnacked(seq)) return;
      if (h.code == kIcmpFragNeeded) {
        ep->PathMtu(static_cast<uint16_t>(h.rest & 0xffff), now);
      } else if (h.code <= 3) {
        // net, host, protocol, port: a connection still opening fails.
        static constexpr int kErr[4] = {ENETUNREACH, EHOSTUNREACH, ENOPROTOOPT, ECONNREFUSED};
        ep->Unreachable(kErr[h.code]);
      }
      return;
    }
    if (inner.proto == kProtoUdp && h.code == kIcmpPortUnreachable) {
      up_->UdpError(V4(inner.src), Load16(&rest[0]), V4(inner.dst), Load16(&rest[2]), ECONNREFUSED);
    } else if (inner.proto == kProtoUdp && h.code <= 1) {
      up_->UdpError(V4(inner.src), Load16(&rest[0]), V4(inner.dst), Load16(&rest[2]),
                    h.code == 0 ? ENETUNREACH : EHOSTUNREACH);
    }
  }
}

void Stack::InputUdp(const IpMeta& ip, Bytes b, bool checksum_ok, Bytes whole, int64_t now) {
  UdpHeader h;
  Bytes payload;
  if (!ParseUdp(b, &h, &payload)) {
    counters_.udp_in_errors++;
    return;
  }
  // A zero checksum means none over IPv4; IPv6 requires one.
  if ((ip.v6 && h.csum == 0) ||
      (!checksum_ok && h.csum != 0 &&
       Fold(Sum(b.first(h.len), PseudoSumFor(ip.src, ip.dst, kProtoUdp, h.len))) != 0)) {
    counters_.udp_in_errors++;
    return;
  }
  UdpDatagram d;
  d.src = ip.src;
  d.dst = ip.dst;
  d.sport = h.sport;
  d.dport = h.dport;
  d.payload = payload;
  d.tos = ip.tos;
  d.ttl = ip.ttl;
  d.nic = ip.nic;
  if (up_->DeliverUdp(d)) {
    counters_.udp_in_datagrams++;
    return;
  }
  counters_.udp_no_ports++;
  if (ip.v6) {
    SendIcmp6Error(ip, whole, kIcmp6Unreachable, kIcmp6PortUnreachable, now);
  } else if (ip.v4.dst != 0xffffffff && IsLocal(ip.dst)) {
    SendIcmpError(ip.v4, whole, kIcmpUnreachable, kIcmpPortUnreachable, now);
  }
}

void Stack::SendIcmpError(const Ipv4Header& ip, Bytes whole, uint8_t type, uint8_t code,
                          int64_t now) {
  // RFC 1812: the offending header and as much of the datagram as fits in
  // 576 bytes.
  size_t quote = std::min(whole.size(), size_t{576} - kIpv4Len - kIcmpLen);
  std::string msg(kIcmpLen + quote, '\0');
  auto* p = reinterpret_cast<uint8_t*>(msg.data());
  p[0] = type;
  p[1] = code;
  CopyBytes(p + kIcmpLen, whole.first(quote));
  Store16(p + 2, Fold(Sum(Bytes(p, msg.size()))));
  counters_.icmp_out_msgs++;
  counters_.icmp_out_dest_unreachs++;
  SendIpv4(ip.dst, ip.src, kProtoIcmp, 0, 64, false, Bytes(p, msg.size()), now);
}

void Stack::SendIcmp6Error(const IpMeta& ip, Bytes whole, uint8_t type, uint8_t code, int64_t now) {
  // RFC 4443 2.4(e): not for a packet to a group (or a frame to one: all
  // its listeners would answer), nor to the unspecified address.
  if (ip.link_multicast || !IsLocal(ip.dst) || ip.src == Ip{} || IsMulticast6(ip.src)) return;
  // 2.4(c): the offending packet, as much of it as fits in the least MTU.
  const size_t quote = std::min(whole.size(), size_t{kIpv6MinMtu} - kIpv6Len - kIcmpLen);
  std::string msg(kIcmpLen + quote, '\0');
  auto* p = reinterpret_cast<uint8_t*>(msg.data());
  p[0] = type;
  p[1] = code;
  CopyBytes(p + kIcmpLen, whole.first(quote));
  Store16(p + 2, Fold(Sum(Bytes(p, msg.size()), PseudoSumFor(ip.dst, ip.src, kProtoIcmp6,
                                                             static_cast<uint32_t>(msg.size())))));
  counters_.icmp_out_msgs++;
  if (type == kIcmp6Unreachable) counters_.icmp_out_dest_unreachs++;
  SendIpv6(ip.dst, ip.src, kProtoIcmp6, 0, 64, Bytes(p, msg.size()), /*frag_ok=*/false, now);
}

int Stack::SendIcmp(const Ip& src, const Ip& dst, Bytes icmp, uint8_t ttl, int64_t now) {
  if (IsV4(src) != IsV4(dst) || icmp.size() < kIcmpLen) return EINVAL;
  std::string msg(icmp.begin(), icmp.end());
  auto* p = reinterpret_cast<uint8_t*>(msg.data());
  Store16(p + 2, 0);
  counters_.icmp_out_msgs++;
  if (!IsV4(dst)) {
    // ICMPv6's checksum covers the pseudo-header too.
    Store16(p + 2,
            Fold(Sum(Bytes(p, msg.size()),
                     PseudoSumFor(src, dst, kProtoIcmp6, static_cast<uint32_t>(msg.size())))));
    return SendIpv6(src, dst, kProtoIcmp6, 0, ttl, Bytes(p, msg.size()), /*frag_ok=*/true, now);
  }
  Store16(p + 2, Fold(Sum(Bytes(p, msg.size()))));
  return SendIpv4(V4Of(src), V4Of(dst), kProtoIcmp, 0, ttl, false, Bytes(p, msg.size()), now);
}

int Stack::SendUdp(const UdpDatagram& d, int64_t now) {
  if (IsV4(d.src) != IsV4(d.dst)) return ENETUNREACH;
  size_t len = kUdpLen + d.payload.size();
  if (len > 65535 - (IsV4(d.dst) ? kIpv4Len : 0)) return EMSGSIZE;
  std::string seg(len, '\0');
  auto* p = reinterpret_cast<uint8_t*>(seg.data());
  Store16(p, d.sport);
  Store16(p + 2, d.dport);
  Store16(p + 4, static_cast<uint16_t>(len));
  CopyBytes(p + kUdpLen, d.payload);
  uint16_t csum =
      Fold(Sum(Bytes(p, len), PseudoSumFor(d.src, d.dst, kProtoUdp, static_cast<uint32_t>(len))));
  Store16(p + 6, csum == 0 ? 0xffff : csum);
  int err = SendIp(d.src, d.dst, kProtoUdp, d.tos, d.ttl, false, Bytes(p, len), now, d.nic);
  if (err == 0) counters_.udp_out_datagrams++;
  return err;
}

int Stack::SendIp(const Ip& src, const Ip& dst, uint8_t proto, uint8_t tos, uint8_t ttl, bool df,
                  Bytes l4, int64_t now, int nic) {
  if (IsV4(src) && IsV4(dst)) return SendIpv4(V4Of(src), V4Of(dst), proto, tos, ttl, df, l4, now);
  if (IsV4(src) || IsV4(dst)) return ENETUNREACH;
  return SendIpv6(src, dst, proto, tos, ttl, l4, /*frag_ok=*/!df, now, nic);
}

int Stack::SendIpv6(const Ip& src, const Ip& dst, uint8_t proto, uint8_t tclass, uint8_t hop_limit,
                    Bytes l4, bool frag_ok, int64_t now, int nic_index) {
  // A group's packets leave by the interface asked for, or the first
  // (where Linux's ff00::/8 multicast route would send them).
  const Route* r = IsMulticast6(dst) ? nullptr : Lookup(dst);
  Nic* nic = r != nullptr ? NicByIndex(r->nic) : nullptr;
  if (IsMulticast6(dst)) {
    nic = nic_index != 0 ? NicByIndex(nic_index) : nics_.empty() ? nullptr : &nics_.front();
  }
  if (nic == nullptr) {
    counters_.ip_out_no_routes++;
    return ENETUNREACH;
  }
  // What does not fit goes in fragments, if it may (not TCP, whose
  // segments fit), and if it is no longer than the largest payload.
  const bool fits = l4.size() + kIpv6Len <= nic->mtu;
  if (l4.size() > 65535 || (!fits && !frag_ok)) return EMSGSIZE;
  counters_.ip_out_requests++;
  // A packet to a group with hop limit 0 is for this host's own members
  // alone (the socket layer loops it back): it leaves no interface, as
  // ip6_finish_output2 discards it.
  if (IsMulticast6(dst) && hop_limit == 0) return 0;
  const Ip next_hop = r != nullptr && r->has_gateway ? r->gateway : dst;
  Ipv6Header h;
  h.tclass = tclass;
  h.next = proto;
  h.hop_limit = hop_limit;
  h.src = src;
  h.dst = dst;
  if (fits) {
    h.payload_len = static_cast<uint16_t>(l4.size());
    std::string packet(kIpv6Len + l4.size(), '\0');
    auto* p = reinterpret_cast<uint8_t*>(packet.data());
    WriteIpv6(p, h);
    CopyBytes(p + kIpv6Len, l4);
    Resolve(*nic, next_hop, std::move(packet), now);
    return 0;
  }
  // RFC 8200 4.5: a Fragment header (an identification of its own per
  // datagram, RFC 7739's random) before each piece of up to max_payload
  // bytes, each a multiple of 8 but the last.
  const size_t max_payload = (nic->mtu - kIpv6Len - kIpv6FragLen) & ~size_t{7};
  Ipv6Frag f;
  f.next = proto;
  f.id = Random();
  h.next = kIpv6Fragment;
  for (size_t off = 0; off < l4.size(); off += max_payload) {
    const size_t len = std::min(max_payload, l4.size() - off);
    f.offset = static_cast<uint16_t>(off);
    f.more = off + len < l4.size();
    h.payload_len = static_cast<uint16_t>(kIpv6FragLen + len);
    std::string packet(kIpv6Len + kIpv6FragLen + len, '\0');
    auto* p = reinterpret_cast<uint8_t*>(packet.data());
    WriteIpv6(p, h);
    WriteIpv6Frag(p + kIpv6Len, f);
    CopyBytes(p + kIpv6Len + kIpv6FragLen, l4.subspan(off, len));
    Resolve(*nic, next_hop, std::move(packet), now);
    counters_.ip_frag_creates++;
  }
  counters_.ip_frag_oks++;
  return 0;
}

Ip Stack::NicAddress(const Nic& nic, const Ip& like) const {
  Ip found{};
  bool have = false;
  for (const auto& [addr, prefix] : nic.addrs) {
    if (IsV4(addr) != IsV4(like)) continue;
    // IPv6: a global address unless the destination is link-local; a
    // link-local one for a group of link scope or less (RFC 6724 rule 2:
    // the same scope), if the interface has one.
    const bool link_group = IsLinkScopeGroup6(like);
    if (!have || (!IsV4(addr) && IsLinkLocal6(found) && !IsLinkLocal6(like) && !link_group) ||
        (!IsV4(addr) && link_group && !IsLinkLocal6(found) && IsLinkLocal6(addr))) {
      found = addr;
      have = true;
    }
  }
  return found;
}

void Stack::SendSolicit(Nic& nic, const Ip& target) {
  // RFC 4861 4.3: to the target's solicited-node group, with our link
  // address.
  const Ip src = NicAddress(nic, target);
  const Ip group = SolicitedNode(target);
  uint8_t msg[32] = {};
  msg[0] = kNdpSolicit;
  memcpy(msg + 8, target.data(), 16);
  msg[24] = kNdpSourceMac;
  msg[25] = 1;
  memcpy(msg + 26, nic.mac.data(), 6);
  Store16(msg + 2, Fold(Sum(Bytes(msg, sizeof(msg)), PseudoSumFor(src, group, kProtoIcmp6, 32))));
  Ipv6Header h;
  h.payload_len = sizeof(msg);
  h.next = kProtoIcmp6;
  h.hop_limit = 255;
  h.src = src;
  h.dst = group;
  uint8_t packet[kIpv6Len + sizeof(msg)];
  WriteIpv6(packet, h);
  memcpy(packet + kIpv6Len, msg, sizeof(msg));
  Transmit(nic, MulticastMac(group), kEtherIpv6, Bytes(packet, sizeof(packet)));
}

void Stack::InputIpv6(Nic& nic, Bytes b, bool checksum_ok, const Mac& from, bool link_multicast,
                      int64_t now) {
  counters_.ip_in_receives++;
  Ipv6Header ip;
  Bytes payload;
  if (!ParseIpv6(b, &ip, &payload)) {
    counters_.ip_in_hdr_errors++;
    return;
  }
  // No IPv4 in IPv6's clothes, and no source that cannot be a neighbour's
  // (multicast, loopback, this sandbox; unspecified is duplicate address
  // detection's own).
  if (IsV4(ip.dst) || IsV4(ip.src) || IsMulticast6(ip.src) ||
      ip.src == Ip{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1} || IsLocal(ip.src)) {
    counters_.ip_in_addr_errors++;
    return;
  }
  // Ours: an address of this sandbox, or a group the interface is in
  // (all-nodes, a solicited-node group, one a socket joined).
  const bool ours = IsLocal(ip.dst) || InGroup(nic.index, ip.dst);
  if (!ours) {
    counters_.ip_in_addr_errors++;  // the sandbox does not forward
    return;
  }
  DeliverIpv6(nic, ip, b.first(kIpv6Len + payload.size()), checksum_ok, from, link_multicast,
              /*reassembled=*/false, now);
}

void Stack::DeliverIpv6(Nic& nic, const Ipv6Header& ip, Bytes whole, bool checksum_ok,
                        const Mac& from, bool link_multicast, bool reassembled, int64_t now) {
  // Extension headers: hop-by-hop, destination options and a spent routing
  // header are stepped over; a fragment is kept until its datagram is
  // whole. `at` is where the header `next` names starts, next_at the byte
  // that names it.
  uint8_t next = ip.next;
  size_t at = kIpv6Len, next_at = 6;
  bool fragmented = reassembled;
  for (int i = 0; i < 8 && (next == kIpv6HopByHop || next == kIpv6DestOpts ||
                            next == kIpv6Routing || next == kIpv6Fragment);
       i++) {
    if (next == kIpv6Fragment) {
      Ipv6Frag f;
      if (reassembled || !ParseIpv6Frag(whole.subspan(at), &f)) {
        // A datagram's fragments are not fragmented again.
        counters_.ip_in_hdr_errors++;
        return;
      }
      if (f.offset != 0 || f.more) {
        Reassemble6(nic, ip, whole, at, next_at, f, from, link_multicast, now);
        return;
      }
      // An atomic fragment (offset 0, the last) is a whole datagram,
      // taken at once and apart from any others of its id (RFC 6946).
      fragmented = true;
      checksum_ok = false;
      next_at = at;
      next = f.next;
      at += kIpv6FragLen;
      continue;
    }
    if (whole.size() - at < 8) {
      counters_.ip_in_hdr_errors++;
      return;
    }
    const size_t len = (size_t{whole[at + 1]} + 1) * 8;
    if (len > whole.size() - at || (next == kIpv6Routing && whole[at + 3] != 0)) {
      counters_.ip_in_hdr_errors++;
      return;
    }
    next_at = at;
    next = whole[at];
    at += len;
  }
  const Bytes payload = whole.subspan(at);
  counters_.ip_in_delivers++;
  if (next == kProtoIcmp6) {
    InputIcmp6(nic, ip, payload, from, fragmented, now);
    return;
  }
  // Of what is sent to a group, UDP alone reaches the sockets (which of
  // them take it is theirs to say).
  if (IsMulticast6(ip.dst) && next != kProtoUdp) return;
  IpMeta meta;
  meta.src = ip.src;
  meta.dst = ip.dst;
  meta.tos = ip.tclass;
  meta.ttl = ip.hop_limit;
  meta.v6 = true;
  meta.link_multicast = link_multicast;
  meta.nic = nic.index;
  if (next == kProtoUdp) {
    InputUdp(meta, payload, checksum_ok, whole, now);
  } else if (next == kProtoTcp) {
    InputTcp(meta, payload, checksum_ok, now);
  } else {
    counters_.ip_in_unknown_protos++;
  }
}

void Stack::Reassemble6(Nic& nic, const Ipv6Header& ip, Bytes whole, size_t frag_at, size_t next_at,
                        const Ipv6Frag& f, const Mac& from, bool link_multicast, int64_t now) {
  const Bytes payload = whole.subspan(frag_at + kIpv6FragLen);
  const ReasmKey key{ip.src, ip.dst, f.id, 0};
  // The first fragment holds every header up to the transport's.
  if (f.offset == 0 && !HeadersComplete(f.next, payload)) {
    counters_.ip_reasm_reqds++;
    DropReassembly(key);
    return;
  }
  // No fragment makes the datagram's payload (its unfragmentable part's
  // extension headers and the fragmentable part) longer than 65535 bytes;
  // the first fragment's unfragmentable part is kept too, and charged.
  const auto unfragmentable = static_cast<uint32_t>(frag_at - kIpv6Len);
  Reassembly* r = KeepFragment(key, f.offset, f.more, payload, 65535 - unfragmentable,
                               f.offset == 0 ? frag_at : 0, kReasm6Timeout, now);
  if (r == nullptr) return;
  if (f.offset == 0) {
    r->head.assign(reinterpret_cast<const char*>(whole.data()), frag_at);
    r->head[next_at] = static_cast<char>(f.next);
    r->have_first = true;
  }
  r->link_multicast = r->link_multicast || link_multicast;
  if (!Whole(r->frags, r->total, r->have_first)) return;
  const size_t len = r->head.size() + r->total;
  if (len - kIpv6Len > 65535) {
    DropReassembly(key);
    return;
  }
  // The datagram as if it had not been fragmented: the first fragment's
  // unfragmentable part, its Fragment header gone, and the fragmentable
  // part whole.
  std::string packet(len, '\0');
  auto* p = reinterpret_cast<uint8_t*>(packet.data());
  CopyBytes(p, Bytes(reinterpret_cast<const uint8_t*>(r->head.data()), r->head.size()));
  Store16(p + 4, static_cast<uint16_t>(len - kIpv6Len));
  for (const auto& [o, data] : r->frags) {
    CopyBytes(p + r->head.size() + o,
              Bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  }
  const bool group = r->link_multicast;
  reasm_bytes_ -= r->bytes;
  reasm_.erase(key);
  counters_.ip_reasm_oks++;
  Ipv6Header h;
  Bytes rest;
  if (!ParseIpv6(Bytes(p, len), &h, &rest)) return;
  DeliverIpv6(nic, h, Bytes(p, len), /*checksum_ok=*/false, from, group, /*reassembled=*/true, now);
}

void Stack::InputIcmp6(Nic& nic, const Ipv6Header& ip, Bytes b, const Mac& from, bool fragmented,
                       int64_t now) {
  counters_.icmp_in_msgs++;
  if (b.size() < kIcmpLen || Fold(Sum(b, PseudoSumFor(ip.src, ip.dst, kProtoIcmp6,
                                                      static_cast<uint32_t>(b.size())))) != 0) {
    counters_.icmp_in_errors++;
    return;
  }
  // A neighbour discovery option of `type` (a link address), if any.
  auto option = [&](size_t at, uint8_t type, Mac* mac) {
    while (at + 8 <= b.size()) {
      const size_t len = size_t{b[at + 1]} * 8;
      if (len == 0 || at + len > b.size()) return false;
      if (b[at] == type && len >= 8) {
        memcpy(mac->data(), &b[at + 2], 6);
        return true;
      }
      at += len;
    }
    return false;
  };
  switch (b[0]) {
    case kIcmp6Unreachable:
    case kIcmp6PacketTooBig:
      if (!IsMulticast6(ip.dst)) InputIcmp6Error(b, now);
      return;
    case kIcmp6EchoRequest: {
      if (IsMulticast6(ip.dst)) return;
      counters_.icmp_in_echos++;
      std::string reply(b.begin(), b.end());
      auto* p = reinterpret_cast<uint8_t*>(reply.data());
      p[0] = kIcmp6EchoReply;
      Store16(p + 2, 0);
      Store16(p + 2,
              Fold(Sum(Bytes(p, reply.size()), PseudoSumFor(ip.dst, ip.src, kProtoIcmp6,
                                                            static_cast<uint32_t>(reply.size())))));
      counters_.icmp_out_msgs++;
      counters_.icmp_out_echo_reps++;
      SendIpv6(ip.dst, ip.src, kProtoIcmp6, 0, 64, Bytes(p, reply.size()), /*frag_ok=*/true, now);
      return;
    }
    case kIcmp6EchoReply:
      // For a ping socket: the identifier is its "port".
      if (b.size() < 8) return;
      counters_.icmp_in_echo_reps++;
      up_->DeliverEchoReply(ip.src, ip.dst, static_cast<uint16_t>((b[4] << 8) | b[5]), b,
                            ip.hop_limit);
      return;
    case kNdpSolicit: {
      // RFC 4861 7.1.1: from the link itself (hop limit 255), for one of
      // our addresses; never in fragments (RFC 6980).
      if (ip.hop_limit != 255 || b.size() < 24 || fragmented) return;
      Ip target;
      memcpy(target.data(), &b[8], 16);
      if (!IsLocal(target)) return;
      const bool dad = ip.src == Ip{};
      Mac mac;
      if (!dad && option(24, kNdpSourceMac, &mac)) Learn(nic, ip.src, mac, true, now);
      uint8_t msg[32] = {};
      msg[0] = kNdpAdvert;
      msg[4] = dad ? 0x20 : 0x60;  // override, and solicited unless for DAD
      memcpy(msg + 8, target.data(), 16);
      msg[24] = kNdpTargetMac;
      msg[25] = 1;
      memcpy(msg + 26, nic.mac.data(), 6);
      const Ip to = dad ? kAllNodes : ip.src;
      Store16(msg + 2,
              Fold(Sum(Bytes(msg, sizeof(msg)), PseudoSumFor(target, to, kProtoIcmp6, 32))));
      Ipv6Header h;
      h.payload_len = sizeof(msg);
      h.next = kProtoIcmp6;
      h.hop_limit = 255;
      h.src = target;
      h.dst = to;
      uint8_t packet[kIpv6Len + sizeof(msg)];
      WriteIpv6(packet, h);
      memcpy(packet + kIpv6Len, msg, sizeof(msg));
      Transmit(nic, dad ? MulticastMac(kAllNodes) : (option(24, kNdpSourceMac, &mac) ? mac : from),
               kEtherIpv6, Bytes(packet, sizeof(packet)));
      return;
    }
    case kMldQuery:
      if (!fragmented) InputMldQuery(nic, ip, b, now);
      return;
    case kNdpAdvert: {
      if (ip.hop_limit != 255 || b.size() < 24 || fragmented) return;
      Ip target;
      memcpy(target.data(), &b[8], 16);
      Mac mac = from;
      option(24, kNdpTargetMac, &mac);
      Learn(nic, target, mac, /*create=*/false, now);
      return;
    }
    default:
      return;  // router advertisements and the rest: the routes came from the host
  }
}

void Stack::InputIcmp6Error(Bytes b, int64_t now) {
  const uint8_t type = b[0], code = b[1];
  if (type == kIcmp6Unreachable) counters_.icmp_in_dest_unreachs++;
  // The offending packet's header and as much of it as fitted come back:
  // it must be one of ours, over IPv6 (never an IPv4 connection's).
  Ip src, dst;
  uint8_t proto;
  Bytes l4;
  if (!ParseQuote6(b.subspan(kIcmpLen), &src, &dst, &proto, &l4)) {
    counters_.icmp_in_errors++;
    return;
  }
  if (IsV4(src) || IsV4(dst) || !IsLocal(src)) return;
  const uint16_t sport = Load16(&l4[0]), dport = Load16(&l4[2]);
  if (proto == kProtoTcp) {
    // RFC 5927: only for a connection of ours whose unacknowledged
    // sequence space holds the quoted segment's.
    auto it = conns_.find(ConnKey{src, sport, dst, dport});
    if (it == conns_.end()) return;
    std::shared_ptr<TcpEndpoint> ep = it->second;
    if (!ep->SentAndUnacked(Load32(&l4[4]))) return;
    if (type == kIcmp6PacketTooBig) {
      // The next hop's MTU (TCP takes no less than IPv6's least, 1280).
      ep->PathMtu(static_cast<uint16_t>(std::min<uint32_t>(Load32(&b[4]), 65535)), now);
    } else {
      ep->Unreachable(Unreachable6Errno(code));  // a connection still opening fails
    }
    return;
  }
  if (proto == kProtoUdp && type == kIcmp6Unreachable) {
    up_->UdpError(src, sport, dst, dport, Unreachable6Errno(code));
  }
}

uint32_t Stack::GsoMax(const Ip& dst, int64_t now) const {
  const Route* r = Lookup(dst);
  if (r == nullptr) return 0;
  for (const Nic& n : nics_) {
    if (n.index != r->nic || !n.gso) continue;
    auto it = neighbors_.find(r->has_gateway ? r->gateway : dst);
    if (it == neighbors_.end() || !it->second.resolved || it->second.expires <= now) return 0;
    return 65535 - kIpv6Len - kTcpLen - 40;
  }
  return 0;
}

void Stack::SendTcp(const Ip& src, const Ip& dst, const TcpHeader& h, Bytes payload, uint8_t tos,
                    int64_t now, uint16_t gso_size) {
  if (IsV4(src) != IsV4(dst)) return;
  const bool v6 = !IsV4(dst);
  const size_t iplen = v6 ? kIpv6Len : kIpv4Len;
  std::string opts = TcpOptionBytes(h.opts, (h.flags & kSyn) != 0);
  size_t len = kTcpLen + opts.size() + payload.size();
  if (gso_size != 0 && payload.size() > gso_size && len + iplen <= 65535) {
    // One frame of many segments: the checksum field holds the
    // pseudo-header's sum for the whole length, as CHECKSUM_PARTIAL wants.
    const Route* r = Lookup(dst);
    Nic* nic = r != nullptr ? NicByIndex(r->nic) : nullptr;
    auto nb = neighbors_.find(r != nullptr && r->has_gateway ? r->gateway : dst);
    if (nic != nullptr && nb != neighbors_.end() && nb->second.resolved) {
      std::string packet(iplen + len, '\0');
      auto* p = reinterpret_cast<uint8_t*>(packet.data());
      if (v6) {
        Ipv6Header ip;
        ip.tclass = tos;
        ip.next = kProtoTcp;
        ip.payload_len = static_cast<uint16_t>(len);
        ip.src = src;
        ip.dst = dst;
        WriteIpv6(p, ip);
      } else {
        Ipv4Header ip;
        ip.tos = tos;
        ip.proto = kProtoTcp;
        ip.src = V4Of(src);
        ip.dst = V4Of(dst);
        ip.id = ip_id_;
        ip_id_ = static_cast<uint16_t>(ip_id_ + (payload.size() + gso_size - 1) / gso_size);
        ip.frag = kIpDf;
        ip.total_len = static_cast<uint16_t>(kIpv4Len + len);
        WriteIpv4(p, ip);
      }
      WriteTcp(p + iplen, h, opts);
      CopyBytes(p + iplen + kTcpLen + opts.size(), payload);
      Store16(p + iplen + 16, static_cast<uint16_t>(~Fold(
                                  PseudoSumFor(src, dst, kProtoTcp, static_cast<uint32_t>(len)))));
      GsoInfo gso;
      gso.size = gso_size;
      gso.hdr_len = static_cast<uint16_t>(kEthLen + iplen + kTcpLen + opts.size());
      gso.csum_start = static_cast<uint16_t>(kEthLen + iplen);
      gso.csum_offset = 16;
      gso.v6 = v6;
      counters_.ip_out_requests++;
      counters_.tcp_out_segs += (payload.size() + gso_size - 1) / gso_size;
      Transmit(*nic, nb->second.mac, v6 ? kEtherIpv6 : kEtherIpv4, Bytes(p, packet.size()), gso);
      return;
    }
  }
  std::string seg(len, '\0');
  auto* p = reinterpret_cast<uint8_t*>(seg.data());
  WriteTcp(p, h, opts);
  CopyBytes(p + kTcpLen + opts.size(), payload);
  Store16(p + 16,
          Fold(Sum(Bytes(p, len), PseudoSumFor(src, dst, kProtoTcp, static_cast<uint32_t>(len)))));
  counters_.tcp_out_segs++;
  if (h.flags & kRst) counters_.tcp_out_rsts++;
  SendIp(src, dst, kProtoTcp, tos, 64, true, Bytes(p, len), now);
}

void Stack::SendReset(const Ip& src, const Ip& dst, const TcpHeader& in, size_t payload_len,
                      int64_t now) {
  if (in.flags & kRst) return;
  TcpHeader h;
  h.sport = in.dport;
  h.dport = in.sport;
  if (in.flags & kAck) {
    h.seq = in.ack;
    h.flags = kRst;
  } else {
    h.ack = in.seq + static_cast<uint32_t>(payload_len) + ((in.flags & kSyn) ? 1 : 0) +
            ((in.flags & kFin) ? 1 : 0);
    h.flags = kRst | kAck;
  }
  SendTcp(src, dst, h, {}, 0, now);
}

void Stack::InputTcp(const IpMeta& ip, Bytes b, bool checksum_ok, int64_t now) {
  counters_.tcp_in_segs++;
  if (!checksum_ok &&
      Fold(Sum(b, PseudoSumFor(ip.src, ip.dst, kProtoTcp, static_cast<uint32_t>(b.size())))) != 0) {
    counters_.tcp_in_errs++;
    return;
  }
  TcpHeader h;
  Bytes payload;
  if (!ParseTcp(b, &h, &payload) || h.sport == 0 || h.dport == 0) {
    counters_.tcp_in_errs++;
    return;
  }
  const Ip& src = ip.src;
  const Ip& dst = ip.dst;
  auto it = conns_.find(ConnKey{dst, h.dport, src, h.sport});
  if (it != conns_.end() && it->second->Dead()) {
    conns_.erase(it);
    it = conns_.end();
  }
  if (it != conns_.end()) {
    std::shared_ptr<TcpEndpoint> ep = it->second;  // may leave conns_ meanwhile
    ep->Input(h, payload, now);
    return;
  }
  if ((h.flags & (kSyn | kAck | kRst | kFin)) == kSyn) {
    std::shared_ptr<TcpListener> l = up_->FindListener(dst, h.dport);
    if (l != nullptr && !l->closed) {
      // A full accept queue drops the SYN (the client retries), as Linux
      // does; a full queue of half-open connections, or the stack's limit
      // on connections, answers with a SYN cookie and keeps nothing.
      if (static_cast<int>(l->ready.size()) > l->backlog) return;
      if (l->half_open + static_cast<int>(l->ready.size()) > l->backlog ||
          conns_.size() >= kMaxConnections) {
        SendCookie(dst, src, h, now);
        return;
      }
      auto ep = std::make_shared<TcpEndpoint>(this, dst, h.dport, src, h.sport, l->settings);
      conns_[ConnKey{dst, h.dport, src, h.sport}] = ep;
      l->half_open++;
      counters_.tcp_passive_opens++;
      ep->StartPassive(h, l, now);
      return;
    }
  }
  if ((h.flags & (kSyn | kAck | kRst)) == kAck && last_cookie_at_ != INT64_MIN &&
      now - last_cookie_at_ < 2 * kCookiePeriod) {
    // The ACK of a SYN-ACK whose state was not kept: a cookie of ours
    // (sent lately: none is taken otherwise) makes the connection,
    // established, for the listener to accept.
    std::shared_ptr<TcpListener> l = up_->FindListener(dst, h.dport);
    if (l != nullptr && !l->closed) {
      const uint16_t mss = CheckSynCookie(dst, h.dport, src, h.sport, h.seq - 1, h.ack - 1, now);
      if (mss == 0) {
        syncookies_failed_++;
      } else if (static_cast<int>(l->ready.size()) <= l->backlog &&
                 conns_.size() < kMaxConnections) {
        syncookies_recv_++;
        auto ep = std::make_shared<TcpEndpoint>(this, dst, h.dport, src, h.sport, l->settings);
        conns_[ConnKey{dst, h.dport, src, h.sport}] = ep;
        counters_.tcp_passive_opens++;
        ep->StartFromCookie(h, mss, now);
        l->ready.push_back(ep);
        if (l->notify) l->notify();
        // Data that came with the ACK is the connection's.
        if (!payload.empty() || (h.flags & kFin)) ep->Input(h, payload, now);
        return;
      } else {
        return;  // the accept queue filled meanwhile: the client sends again
      }
    }
  }
  SendReset(dst, src, h, payload.size(), now);
}

std::shared_ptr<TcpEndpoint> Stack::Connect(const Ip& src, uint16_t sport, const Ip& dst,
                                            uint16_t dport, const TcpSettings& s, int64_t now) {
  auto ep = std::make_shared<TcpEndpoint>(this, src, sport, dst, dport, s);
  ConnKey key{src, sport, dst, dport};
  auto it = conns_.find(key);
  if (it != conns_.end()) {
    // Only a connection in TIME_WAIT may be there (the socket layer keeps
    // ports apart); a new one takes its place, as tcp_tw_reuse lets it.
    it->second->Detach();
  }
  conns_[key] = ep;
  counters_.tcp_active_opens++;
  ep->StartConnect(now);
  return ep;
}

std::vector<std::shared_ptr<TcpEndpoint>> Stack::Connections() const {
  std::vector<std::shared_ptr<TcpEndpoint>> out;
  out.reserve(conns_.size());
  for (const auto& [key, ep] : conns_) out.push_back(ep);
  return out;
}

void TcpEndpoint::Arm(int64_t* timer, int64_t when) {
  *timer = when;
  if (stack_ != nullptr) stack_->NoteDeadline(when);
}

void Stack::EndBatch(int64_t now) {
  batching_ = false;
  std::vector<std::shared_ptr<TcpEndpoint>> acks;
  acks.swap(deferred_acks_);
  for (const std::shared_ptr<TcpEndpoint>& ep : acks) ep->FlushDeferredAck(now);
}

int64_t Stack::Tick(int64_t now) {
  int64_t next = INT64_MAX;
  for (auto it = reasm_.begin(); it != reasm_.end();) {
    if (it->second.expires <= now) {
      counters_.ip_reasm_timeout++;
      counters_.ip_reasm_fails++;
      reasm_bytes_ -= it->second.bytes;
      it = reasm_.erase(it);
      continue;
    }
    next = std::min(next, it->second.expires);
    ++it;
  }
  for (auto it = neighbors_.begin(); it != neighbors_.end();) {
    Neighbor& n = it->second;
    if (!n.resolved && n.expires <= now) {
      if (n.tries >= kArpTries) {
        // Its packets are lost, as Linux's are, and connections still
        // opening to it fail (EHOSTUNREACH, as the local ICMP error says).
        const Ip gone = it->first;
        for (const std::string& p : n.pending) pending_bytes_ -= std::min(pending_bytes_, p.size());
        it = neighbors_.erase(it);
        for (auto& [key, ep] : conns_) {
          const Route* r = Lookup(ep->remote());
          const Ip hop = r != nullptr && r->has_gateway ? r->gateway : ep->remote();
          if (hop == gone) ep->Unreachable(EHOSTUNREACH);
        }
        continue;
      }
      n.tries++;
      n.expires = now + kArpRetry;
      for (Nic& nic : nics_) {
        const Route* r = Lookup(it->first);
        if (r != nullptr && r->nic == nic.index) {
          if (IsV4(it->first)) {
            SendArp(nic, kArpRequest, Mac{}, V4Of(it->first), kBroadcastMac);
          } else {
            SendSolicit(nic, it->first);
          }
        }
      }
    }
    if (!n.resolved) next = std::min(next, n.expires);
    ++it;
  }
  // A walk costs every connection: with thousands, one per batch of
  // frames would cost more than the frames.
  constexpr size_t kWalkAlways = 256;
  constexpr int64_t kWalkEvery = kSecond / 100;  // 10 ms
  if (conns_.size() > kWalkAlways && now < timer_hint_ && now - last_walk_ < kWalkEvery) {
    return std::min({next, timer_hint_, last_walk_ + kWalkEvery});
  }
  timer_walks_++;
  last_walk_ = now;
  int64_t earliest = INT64_MAX;
  for (auto it = conns_.begin(); it != conns_.end();) {
    std::shared_ptr<TcpEndpoint> ep = it->second;
    if (ep->Deadline() <= now) ep->OnTimer(now);
    if (ep->Dead() || ep->stack_ == nullptr) {
      it = conns_.erase(it);
      continue;
    }
    earliest = std::min(earliest, ep->Deadline());
    ++it;
  }
  // Arms during the walk (OnTimer's) lowered the hint; the walk saw them.
  timer_hint_ = earliest;
  return std::min(next, earliest);
}

}  // namespace husk::netstack
