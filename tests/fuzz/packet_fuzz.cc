// Fuzzes the sandbox's TCP/IP stack (sentry/net/stack) with frames from a
// hostile network: one stack with an address, a listener on port 80 and a
// connection it opened to 10.0.0.1:80, fed the input's frames.
//
// Input: records of [flags][length, 2 bytes][bytes]. Flags:
//   bit 0: the harness wraps the bytes in an Ethernet and IPv4 header with a
//          valid checksum (protocol from bits 4-5: TCP, UDP, ICMP, raw), so
//          the fuzzer reaches the transport parsers and TCP's states;
//   bit 1: the link vouches for the transport checksum;
//   bit 2: the clock jumps by length's low byte in seconds before the frame
//          (timers run: retransmissions, TIME_WAIT, ARP);
//   bit 3: with bit 0, the header is IPv6's (fd00::1 to fd00::2; bits 4-5:
//          TCP, UDP, ICMPv6, or a Fragment header), reaching neighbour
//          discovery and reassembly too.
//
// Checked: nothing crashes or leaks (ASan), and the stack keeps no more
// connections than the listener's backlog and the one it opened allow.
#include <stddef.h>
#include <stdint.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "sentry/net/stack/stack.h"
#include "sentry/net/stack/tcp.h"

namespace husk::netstack {
namespace {

constexpr int64_t kSecond = 1000000000;
constexpr int kBacklog = 8;

struct Sink : Link {
  size_t frames = 0;
  void Transmit(Bytes frame, const GsoInfo& /*gso*/) override {
    frames++;
    if (frame.size() < kEthLen) abort();
  }
};

struct Up : Upcalls {
  std::shared_ptr<TcpListener> listener = std::make_shared<TcpListener>();
  std::shared_ptr<TcpListener> FindListener(const Ip&, uint16_t port) override {
    return port == 80 ? listener : nullptr;
  }
  bool DeliverUdp(const UdpDatagram& d) override { return d.dport == 53; }
  void UdpError(const Ip&, uint16_t, const Ip&, uint16_t, int) override {}
};

const Mac kOurs = {2, 0, 0, 0, 0, 2};
const Mac kTheirs = {2, 0, 0, 0, 0, 1};

}  // namespace
}  // namespace husk::netstack

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace husk::netstack;  // NOLINT(google-build-using-namespace)
  Up up;
  up.listener->backlog = kBacklog;
  Sink sink;
  int64_t now = 1000 * kSecond;
  {
    Stack s(&up, 1);
    int nic = s.AddNic("eth0", kOurs, 1500, &sink);
    s.AddAddress(nic, V4(0x0a000002), 24);
    s.AddRoute(Route{V4(0x0a000000), 24, {}, false, nic});
    s.AddRoute(Route{V4(0), 0, V4(0x0a000001), true, nic});
    Ip six_ours{}, six_theirs{}, six_net{};
    six_ours[0] = six_theirs[0] = six_net[0] = 0xfd;
    six_ours[15] = 2;
    six_theirs[15] = 1;
    s.AddAddress(nic, six_ours, 64);
    s.AddRoute(Route{six_net, 64, {}, false, nic});
    std::shared_ptr<TcpEndpoint> client =
        s.Connect(V4(0x0a000002), 40000, V4(0x0a000001), 80, {}, now);
    size_t at = 0;
    std::string frame;
    while (at + 3 <= size) {
      uint8_t flags = data[at];
      size_t len = size_t{data[at + 1]} << 8 | data[at + 2];
      at += 3;
      if (len > size - at) len = size - at;
      Bytes body(data + at, len);
      at += len;
      if (flags & 4) now += int64_t{static_cast<uint8_t>(len)} * kSecond;
      if ((flags & 9) == 9) {
        static constexpr uint8_t kNext[4] = {kProtoTcp, kProtoUdp, kProtoIcmp6, 44};
        frame.assign(kEthLen + kIpv6Len + body.size(), '\0');
        auto* p = reinterpret_cast<uint8_t*>(frame.data());
        WriteEth(p, EthHeader{kOurs, kTheirs, kEtherIpv6});
        Ipv6Header ip;
        ip.payload_len = static_cast<uint16_t>(std::min<size_t>(body.size(), 65535));
        ip.next = kNext[(flags >> 4) & 3];
        ip.hop_limit = 255;
        ip.src = six_theirs;
        ip.dst = six_ours;
        WriteIpv6(p + kEthLen, ip);
        CopyBytes(p + kEthLen + kIpv6Len, body);
        s.Input(nic, Bytes(p, frame.size()), (flags & 2) != 0, now);
      } else if (flags & 1) {
        static constexpr uint8_t kProtos[4] = {kProtoTcp, kProtoUdp, kProtoIcmp, 99};
        frame.assign(kEthLen + kIpv4Len + body.size(), '\0');
        auto* p = reinterpret_cast<uint8_t*>(frame.data());
        WriteEth(p, EthHeader{kOurs, kTheirs, kEtherIpv4});
        Ipv4Header ip;
        ip.total_len = static_cast<uint16_t>(std::min<size_t>(kIpv4Len + body.size(), 65535));
        ip.proto = kProtos[(flags >> 4) & 3];
        ip.src = 0x0a000001;
        ip.dst = 0x0a000002;
        WriteIpv4(p + kEthLen, ip);
        CopyBytes(p + kEthLen + kIpv4Len, body);
        s.Input(nic, Bytes(p, frame.size()), (flags & 2) != 0, now);
      } else {
        s.Input(nic, body, (flags & 2) != 0, now);
      }
      // The application reads and writes a little as it goes.
      while (!up.listener->ready.empty()) {
        std::shared_ptr<TcpEndpoint> ep = up.listener->ready.front();
        up.listener->ready.pop_front();
        ep->Read(1 << 16, false, now);
        ep->Write(Bytes(data, std::min<size_t>(size, 3000)), now);
        ep->Close(false, now);
      }
      client->Read(100, false, now);
      s.Tick(now);
      if (s.Connections().size() > static_cast<size_t>(kBacklog) + 2 + 8) {
        fprintf(stderr, "packet_fuzz: %zu connections past a backlog of %d\n",
                s.Connections().size(), kBacklog);
        abort();
      }
    }
    client->Close(false, now);
  }
  return 0;
}
