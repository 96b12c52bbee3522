// The wire formats of the sandbox's TCP/IP stack: Ethernet, ARP, IPv4,
// IPv6 (and its Fragment header), ICMP, UDP and TCP headers, parsed from
// and written to raw frames, and the Internet checksum. Everything here
// reads hostile input (frames from the network): a parser checks every
// length against the bytes it was given and says no rather than read past
// them.
//
// Addresses are 16 bytes, IPv4 ones v4-mapped (::ffff:a.b.c.d), as the
// socket layer keeps them.
#ifndef HUSK_SENTRY_NET_STACK_WIRE_H_
#define HUSK_SENTRY_NET_STACK_WIRE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace husk::netstack {

using Ip = std::array<uint8_t, 16>;
using Mac = std::array<uint8_t, 6>;
using Bytes = std::span<const uint8_t>;

inline constexpr Mac kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// IPv4 addresses in host byte order <-> v4-mapped Ip.
Ip V4(uint32_t addr);
bool IsV4(const Ip& ip);
uint32_t V4Of(const Ip& ip);
std::string IpString(const Ip& ip);

// Big-endian loads and stores.
inline uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Copies b to p (nothing for an empty span, whose data may be null).
inline void CopyBytes(uint8_t* p, Bytes b) {
  if (!b.empty()) __builtin_memcpy(p, b.data(), b.size());
}

// The Internet checksum (RFC 1071): Sum adds bytes to a running 32-bit sum
// (an odd length is padded with a zero byte), Fold makes the final
// complemented 16 bits.
uint32_t Sum(Bytes b, uint32_t acc = 0);
uint16_t Fold(uint32_t acc);
// The IPv4 pseudo-header's part of a TCP or UDP checksum.
uint32_t PseudoSum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);
// The pseudo-header's part for either family (RFC 8200 8.1 for IPv6).
uint32_t PseudoSumFor(const Ip& src, const Ip& dst, uint8_t proto, uint32_t len);

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherArp = 0x0806;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr size_t kEthLen = 14;

struct EthHeader {
  Mac dst{}, src{};
  uint16_t type = 0;
};
bool ParseEth(Bytes frame, EthHeader* h, Bytes* payload);
void WriteEth(uint8_t* p, const EthHeader& h);

// ARP for IPv4 over Ethernet (RFC 826).
constexpr uint16_t kArpRequest = 1, kArpReply = 2;
constexpr size_t kArpLen = 28;
struct ArpPacket {
  uint16_t op = 0;
  Mac sha{}, tha{};
  uint32_t spa = 0, tpa = 0;
};
bool ParseArp(Bytes b, ArpPacket* a);
void WriteArp(uint8_t* p, const ArpPacket& a);

constexpr uint8_t kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17, kProtoIcmp6 = 58;
constexpr size_t kIpv4Len = 20;
struct Ipv4Header {
  uint8_t ihl = 5;  // in 32-bit words
  uint8_t tos = 0;
  uint16_t total_len = 0;
  uint16_t id = 0;
  uint16_t frag = 0;  // flags (DF 0x4000, MF 0x2000) and offset in 8-byte units
  uint8_t ttl = 64;
  uint8_t proto = 0;
  uint32_t src = 0, dst = 0;  // host byte order
};
constexpr uint16_t kIpDf = 0x4000, kIpMf = 0x2000, kIpOffsetMask = 0x1fff;
// Checks the version, the header length, the total length (the frame may
// carry padding after it, which *payload leaves out) and, when
// verify_checksum, the header's checksum.
bool ParseIpv4(Bytes b, bool verify_checksum, Ipv4Header* h, Bytes* payload);
// Writes a 20-byte header with its checksum.
void WriteIpv4(uint8_t* p, const Ipv4Header& h);

// IPv6 (RFC 8200): the fixed header. Extension headers are the caller's.
constexpr size_t kIpv6Len = 40;
struct Ipv6Header {
  uint8_t tclass = 0;
  uint16_t payload_len = 0;
  uint8_t next = 0;
  uint8_t hop_limit = 64;
  Ip src{}, dst{};
};
// Checks the version and the payload length (the frame may carry padding
// after it, which *payload leaves out).
bool ParseIpv6(Bytes b, Ipv6Header* h, Bytes* payload);
void WriteIpv6(uint8_t* p, const Ipv6Header& h);
// The extension headers the stack knows (RFC 8200 4): hop-by-hop options,
// routing, fragment and destination options.
constexpr uint8_t kIpv6HopByHop = 0, kIpv6Routing = 43, kIpv6Fragment = 44, kIpv6DestOpts = 60;
// The Fragment header (RFC 8200 4.5): 8 bytes.
constexpr size_t kIpv6FragLen = 8;
struct Ipv6Frag {
  uint8_t next = 0;     // the fragmentable part's first header
  uint16_t offset = 0;  // in bytes, a multiple of 8
  bool more = false;    // the M flag: not the last fragment
  uint32_t id = 0;
};
// Checks that the 8 bytes are there; the reserved bits are ignored.
bool ParseIpv6Frag(Bytes b, Ipv6Frag* f);
void WriteIpv6Frag(uint8_t* p, const Ipv6Frag& f);
// ICMPv6 (RFC 4443) and neighbour discovery (RFC 4861).
constexpr uint8_t kIcmp6Unreachable = 1, kIcmp6PacketTooBig = 2, kIcmp6EchoRequest = 128,
                  kIcmp6EchoReply = 129, kNdpSolicit = 135, kNdpAdvert = 136;
// Destination Unreachable's codes (RFC 4443 3.1).
constexpr uint8_t kIcmp6NoRoute = 0, kIcmp6AdminProhibited = 1, kIcmp6AddrUnreachable = 3,
                  kIcmp6PortUnreachable = 4;
// Types below 128 are errors (RFC 4443 2.1).
constexpr uint8_t kIcmp6InfoMin = 128;
// The least MTU a link carrying IPv6 has (RFC 8200 5).
constexpr uint32_t kIpv6MinMtu = 1280;
constexpr uint8_t kNdpSourceMac = 1, kNdpTargetMac = 2;  // option types
// Multicast listener discovery (RFC 2710, RFC 3810): queries, version 1
// reports and version 2 reports, and version 2's record types.
constexpr uint8_t kMldQuery = 130, kMldV1Report = 131, kMldV2Report = 143;
constexpr uint8_t kMldIsExclude = 2, kMldToInclude = 3, kMldToExclude = 4;
// IGMP (RFC 1112, RFC 2236, RFC 3376): protocol 2, its message types; the
// version 3 record types are MLDv2's.
constexpr uint8_t kProtoIgmp = 2;
constexpr uint8_t kIgmpQuery = 0x11, kIgmpV1Report = 0x12, kIgmpV2Report = 0x16,
                  kIgmpV3Report = 0x22;

// ICMP (RFC 792): the types the stack answers or reports.
constexpr uint8_t kIcmpEchoReply = 0, kIcmpUnreachable = 3, kIcmpEchoRequest = 8,
                  kIcmpTimeExceeded = 11;
constexpr uint8_t kIcmpPortUnreachable = 3, kIcmpFragNeeded = 4;
constexpr size_t kIcmpLen = 8;
struct IcmpHeader {
  uint8_t type = 0, code = 0;
  uint32_t rest = 0;  // id and sequence of an echo; the next-hop MTU; ...
};
bool ParseIcmp(Bytes b, bool verify_checksum, IcmpHeader* h, Bytes* payload);

constexpr size_t kUdpLen = 8;
struct UdpHeader {
  uint16_t sport = 0, dport = 0, len = 0, csum = 0;
};
// Checks the length field against the bytes; the checksum is the caller's
// (it needs the pseudo-header).
bool ParseUdp(Bytes b, UdpHeader* h, Bytes* payload);

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10, kUrg = 0x20;
constexpr size_t kTcpLen = 20;
struct TcpOptions {
  uint16_t mss = 0;  // 0: absent
  int wscale = -1;   // -1: absent
  bool sack_ok = false;
  bool has_ts = false;
  uint32_t tsval = 0, tsecr = 0;
  int nsack = 0;  // SACK blocks, [start, end)
  std::array<std::array<uint32_t, 2>, 4> sack{};
};
struct TcpHeader {
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  uint16_t urgent = 0;
  TcpOptions opts;
};
// Checks the data offset against the bytes and reads the options (a
// malformed option ends the list, as Linux's tcp_parse_options does).
bool ParseTcp(Bytes b, TcpHeader* h, Bytes* payload);
// The options' bytes, padded to a multiple of four (at most 40).
std::string TcpOptionBytes(const TcpOptions& o, bool syn);
// Writes the header (20 bytes + options) with a zero checksum.
void WriteTcp(uint8_t* p, const TcpHeader& h, const std::string& options);

// SipHash-2-4 (Aumasson and Bernstein) of `data` under the 128-bit key
// (k0, k1): a keyed hash whose outputs an attacker who sees many of them
// cannot forge for inputs of their choosing (SYN cookies).
uint64_t SipHash24(uint64_t k0, uint64_t k1, Bytes data);

}  // namespace husk::netstack

#endif  // HUSK_SENTRY_NET_STACK_WIRE_H_
