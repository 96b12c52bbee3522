#include "sentry/net/stack/wire.h"

#include <cstring>

#include "absl/strings/str_format.h"

namespace husk::netstack {

Ip V4(uint32_t addr) {
  Ip ip{};
  ip[10] = ip[11] = 0xff;
  Store32(&ip[12], addr);
  return ip;
}

bool IsV4(const Ip& ip) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(ip.data(), kPrefix, 12) == 0;
}

uint32_t V4Of(const Ip& ip) { return Load32(&ip[12]); }

std::string IpString(const Ip& ip) {
  if (IsV4(ip)) return absl::StrFormat("%d.%d.%d.%d", ip[12], ip[13], ip[14], ip[15]);
  std::string s;
  for (int i = 0; i < 16; i += 2) {
    absl::StrAppendFormat(&s, "%s%x", i == 0 ? "" : ":", Load16(&ip[i]));
  }
  return s;
}

uint32_t Sum(Bytes b, uint32_t acc) {
  uint64_t sum = acc;
  size_t i = 0;
  for (; i + 1 < b.size(); i += 2) sum += Load16(&b[i]);
  if (i < b.size()) sum += uint32_t{b[i]} << 8;
  while (sum >> 32) sum = (sum & 0xffffffff) + (sum >> 32);
  return static_cast<uint32_t>(sum);
}

uint16_t Fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

uint32_t PseudoSum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len) {
  uint64_t s = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
  return static_cast<uint32_t>((s & 0xffffffff) + (s >> 32));
}

uint32_t PseudoSumFor(const Ip& src, const Ip& dst, uint8_t proto, uint32_t len) {
  if (IsV4(src) && IsV4(dst))
    return PseudoSum(V4Of(src), V4Of(dst), proto, static_cast<uint16_t>(len));
  uint32_t acc = Sum(Bytes(src.data(), src.size()));
  acc = Sum(Bytes(dst.data(), dst.size()), acc);
  uint64_t s = uint64_t{acc} + (len >> 16) + (len & 0xffff) + proto;
  return static_cast<uint32_t>((s & 0xffffffff) + (s >> 32));
}

bool ParseIpv6(Bytes b, Ipv6Header* h, Bytes* payload) {
  if (b.size() < kIpv6Len || (b[0] >> 4) != 6) return false;
  h->tclass = static_cast<uint8_t>((b[0] << 4) | (b[1] >> 4));
  h->payload_len = Load16(&b[4]);
  h->next = b[6];
  h->hop_limit = b[7];
  memcpy(h->src.data(), &b[8], 16);
  memcpy(h->dst.data(), &b[24], 16);
  if (kIpv6Len + h->payload_len > b.size()) return false;
  *payload = b.subspan(kIpv6Len, h->payload_len);
  return true;
}

void WriteIpv6(uint8_t* p, const Ipv6Header& h) {
  p[0] = static_cast<uint8_t>(0x60 | (h.tclass >> 4));
  p[1] = static_cast<uint8_t>(h.tclass << 4);
  p[2] = p[3] = 0;
  Store16(p + 4, h.payload_len);
  p[6] = h.next;
  p[7] = h.hop_limit;
  memcpy(p + 8, h.src.data(), 16);
  memcpy(p + 24, h.dst.data(), 16);
}

bool ParseIpv6Frag(Bytes b, Ipv6Frag* f) {
  if (b.size() < kIpv6FragLen) return false;
  f->next = b[0];
  f->offset = static_cast<uint16_t>(Load16(&b[2]) & ~7u);
  f->more = (b[3] & 1) != 0;
  f->id = Load32(&b[4]);
  return true;
}

void WriteIpv6Frag(uint8_t* p, const Ipv6Frag& f) {
  p[0] = f.next;
  p[1] = 0;
  Store16(p + 2, static_cast<uint16_t>((f.offset & ~7u) | (f.more ? 1 : 0)));
  Store32(p + 4, f.id);
}

bool ParseEth(Bytes frame, EthHeader* h, Bytes* payload) {
  if (frame.size() < kEthLen) return false;
  memcpy(h->dst.data(), &frame[0], 6);
  memcpy(h->src.data(), &frame[6], 6);
  h->type = Load16(&frame[12]);
  *payload = frame.subspan(kEthLen);
  return true;
}

void WriteEth(uint8_t* p, const EthHeader& h) {
  memcpy(p, h.dst.data(), 6);
  memcpy(p + 6, h.src.data(), 6);
  Store16(p + 12, h.type);
}

bool ParseArp(Bytes b, ArpPacket* a) {
  // Ethernet hardware (1), IPv4 protocol, 6- and 4-byte addresses.
  if (b.size() < kArpLen || Load16(&b[0]) != 1 || Load16(&b[2]) != kEtherIpv4 || b[4] != 6 ||
      b[5] != 4) {
    return false;
  }
  a->op = Load16(&b[6]);
  memcpy(a->sha.data(), &b[8], 6);
  a->spa = Load32(&b[14]);
  memcpy(a->tha.data(), &b[18], 6);
  a->tpa = Load32(&b[24]);
  return true;
}

void WriteArp(uint8_t* p, const ArpPacket& a) {
  Store16(p, 1);
  Store16(p + 2, kEtherIpv4);
  p[4] = 6;
  p[5] = 4;
  Store16(p + 6, a.op);
  memcpy(p + 8, a.sha.data(), 6);
  Store32(p + 14, a.spa);
  memcpy(p + 18, a.tha.data(), 6);
  Store32(p + 24, a.tpa);
}

bool ParseIpv4(Bytes b, bool verify_checksum, Ipv4Header* h, Bytes* payload) {
  if (b.size() < kIpv4Len || (b[0] >> 4) != 4) return false;
  h->ihl = b[0] & 0xf;
  size_t hlen = size_t{h->ihl} * 4;
  h->tos = b[1];
  h->total_len = Load16(&b[2]);
  if (hlen < kIpv4Len || h->total_len < hlen || h->total_len > b.size()) return false;
  h->id = Load16(&b[4]);
  h->frag = Load16(&b[6]);
  h->ttl = b[8];
  h->proto = b[9];
  h->src = Load32(&b[12]);
  h->dst = Load32(&b[16]);
  if (verify_checksum && Fold(Sum(b.first(hlen))) != 0) return false;
  *payload = b.subspan(hlen, h->total_len - hlen);
  return true;
}

void WriteIpv4(uint8_t* p, const Ipv4Header& h) {
  p[0] = 0x45;
  p[1] = h.tos;
  Store16(p + 2, h.total_len);
  Store16(p + 4, h.id);
  Store16(p + 6, h.frag);
  p[8] = h.ttl;
  p[9] = h.proto;
  Store16(p + 10, 0);
  Store32(p + 12, h.src);
  Store32(p + 16, h.dst);
  Store16(p + 10, Fold(Sum(Bytes(p, kIpv4Len))));
}

bool ParseIcmp(Bytes b, bool verify_checksum, IcmpHeader* h, Bytes* payload) {
  if (b.size() < kIcmpLen) return false;
  if (verify_checksum && Fold(Sum(b)) != 0) return false;
  h->type = b[0];
  h->code = b[1];
  h->rest = Load32(&b[4]);
  *payload = b.subspan(kIcmpLen);
  return true;
}

bool ParseUdp(Bytes b, UdpHeader* h, Bytes* payload) {
  if (b.size() < kUdpLen) return false;
  h->sport = Load16(&b[0]);
  h->dport = Load16(&b[2]);
  h->len = Load16(&b[4]);
  h->csum = Load16(&b[6]);
  if (h->len < kUdpLen || h->len > b.size()) return false;
  *payload = b.subspan(kUdpLen, h->len - kUdpLen);
  return true;
}

namespace {

constexpr uint8_t kOptEnd = 0, kOptNop = 1, kOptMss = 2, kOptWscale = 3, kOptSackOk = 4,
                  kOptSack = 5, kOptTs = 8;

void ParseTcpOptions(Bytes o, TcpOptions* out) {
  size_t i = 0;
  while (i < o.size()) {
    uint8_t kind = o[i];
    if (kind == kOptEnd) return;
    if (kind == kOptNop) {
      i++;
      continue;
    }
    if (i + 1 >= o.size()) return;
    size_t len = o[i + 1];
    if (len < 2 || i + len > o.size()) return;
    const uint8_t* v = &o[i + 2];
    switch (kind) {
      case kOptMss:
        if (len == 4) out->mss = Load16(v);
        break;
      case kOptWscale:
        if (len == 3) out->wscale = v[0] > 14 ? 14 : v[0];  // RFC 7323: at most 14
        break;
      case kOptSackOk:
        if (len == 2) out->sack_ok = true;
        break;
      case kOptTs:
        if (len == 10) {
          out->has_ts = true;
          out->tsval = Load32(v);
          out->tsecr = Load32(v + 4);
        }
        break;
      case kOptSack:
        if ((len - 2) % 8 == 0) {
          out->nsack = 0;
          for (size_t k = 0; k + 8 <= len - 2 && out->nsack < 4; k += 8) {
            out->sack[out->nsack++] = {Load32(v + k), Load32(v + k + 4)};
          }
        }
        break;
      default:
        break;
    }
    i += len;
  }
}

}  // namespace

bool ParseTcp(Bytes b, TcpHeader* h, Bytes* payload) {
  if (b.size() < kTcpLen) return false;
  size_t off = static_cast<size_t>(b[12] >> 4) * 4;
  if (off < kTcpLen || off > b.size()) return false;
  h->sport = Load16(&b[0]);
  h->dport = Load16(&b[2]);
  h->seq = Load32(&b[4]);
  h->ack = Load32(&b[8]);
  h->flags = b[13] & 0x3f;
  h->window = Load16(&b[14]);
  h->urgent = Load16(&b[18]);
  h->opts = TcpOptions{};
  ParseTcpOptions(b.subspan(kTcpLen, off - kTcpLen), &h->opts);
  *payload = b.subspan(off);
  return true;
}

std::string TcpOptionBytes(const TcpOptions& o, bool syn) {
  std::string s;
  auto put = [&](std::initializer_list<uint8_t> bytes) {
    for (uint8_t c : bytes) s.push_back(static_cast<char>(c));
  };
  auto put32 = [&](uint32_t v) {
    put({static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
         static_cast<uint8_t>(v)});
  };
  if (syn && o.mss != 0) {
    put({kOptMss, 4, static_cast<uint8_t>(o.mss >> 8), static_cast<uint8_t>(o.mss)});
  }
  if (syn && o.sack_ok) {
    if (o.has_ts) {
      put({kOptSackOk, 2});  // SACK_PERM and timestamps share a word, as Linux lays them
    } else {
      put({kOptNop, kOptNop, kOptSackOk, 2});
    }
  } else if (o.has_ts) {
    put({kOptNop, kOptNop});
  }
  if (o.has_ts) {
    put({kOptTs, 10});
    put32(o.tsval);
    put32(o.tsecr);
  }
  if (syn && o.wscale >= 0) put({kOptNop, kOptWscale, 3, static_cast<uint8_t>(o.wscale)});
  if (!syn && o.nsack > 0) {
    // What fits: 40 bytes less what is already there, 4 + 8 per block.
    int room = static_cast<int>((40 - s.size() - 4) / 8);
    int n = o.nsack < room ? o.nsack : room;
    if (n > 0) {
      put({kOptNop, kOptNop, kOptSack, static_cast<uint8_t>(2 + 8 * n)});
      for (int i = 0; i < n; i++) {
        put32(o.sack[i][0]);
        put32(o.sack[i][1]);
      }
    }
  }
  while (s.size() % 4 != 0) s.push_back(static_cast<char>(kOptNop));
  return s;
}

void WriteTcp(uint8_t* p, const TcpHeader& h, const std::string& options) {
  Store16(p, h.sport);
  Store16(p + 2, h.dport);
  Store32(p + 4, h.seq);
  Store32(p + 8, h.ack);
  p[12] = static_cast<uint8_t>(((kTcpLen + options.size()) / 4) << 4);
  p[13] = h.flags;
  Store16(p + 14, h.window);
  Store16(p + 16, 0);
  Store16(p + 18, h.urgent);
  CopyBytes(p + kTcpLen, Bytes(reinterpret_cast<const uint8_t*>(options.data()), options.size()));
}

namespace {

uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct SipState {
  uint64_t v0, v1, v2, v3;
  void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }
  void Absorb(uint64_t m) {
    v3 ^= m;
    Round();
    Round();
    v0 ^= m;
  }
};

}  // namespace

uint64_t SipHash24(uint64_t k0, uint64_t k1, Bytes data) {
  SipState s{k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
             k1 ^ 0x7465646279746573ULL};
  // Eight bytes at a time, little-endian; the last block holds what is
  // left and the length's low byte at the top.
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t m = 0;
    for (int k = 7; k >= 0; k--) m = (m << 8) | data[i + k];
    s.Absorb(m);
  }
  uint64_t last = uint64_t{data.size() & 0xff} << 56;
  for (size_t k = 0; i + k < data.size(); k++) last |= uint64_t{data[i + k]} << (8 * k);
  s.Absorb(last);
  s.v2 ^= 0xff;
  for (int r = 0; r < 4; r++) s.Round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace husk::netstack
