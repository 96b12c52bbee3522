// The sandbox's interfaces for --network=sandbox: husk hands the sentry a
// packet socket (AF_PACKET) per interface of the network namespace it was
// started in, with the interface's name, MAC address, MTU and addresses,
// and the routes; the sentry builds its TCP/IP stack over them and runs it
// on a thread of its own, which reads frames and runs the stack's timers.
// The host's kernel only moves frames: the addresses are the sandbox's.
#ifndef HUSK_SENTRY_NET_NETDEV_H_
#define HUSK_SENTRY_NET_NETDEV_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "sentry/net/stack/wire.h"

namespace husk::net {

struct NicSpec {
  int fd = -1;  // the packet socket, bound to the interface
  std::string name;
  netstack::Mac mac{};
  uint32_t mtu = 1500;
  // The socket has PACKET_VNET_HDR: frames carry a virtio_net_hdr, and
  // TCP may hand the host many segments in one (GSO).
  bool vnet = false;
  // The socket has a PACKET_RX_RING (TPACKET_V2) of ring_blocks blocks of
  // ring_block bytes, each holding whole frames of ring_frame bytes: the
  // host's kernel writes frames into memory the sentry maps, and holds as
  // many as the ring does whatever net.core.rmem_max says. Zero: no ring
  // (frames are read with recvmsg).
  uint32_t ring_frame = 0, ring_block = 0, ring_blocks = 0;
  std::vector<std::pair<netstack::Ip, int>> addrs;  // address, prefix length
  // --network=host: the host's index of the interface, which the sandbox
  // sees as is (fd is -1: the host's kernel drives the interface).
  int ifindex = 0;
};

struct RouteSpec {
  netstack::Ip dst{};
  int prefix = 0;
  netstack::Ip gateway{};
  bool has_gateway = false;
  std::string nic;
};

// The ring husk asks for: a frame holds a GSO or GRO frame of 64 KiB with
// its headers; 16 blocks of 1 MiB (15 frames each) are 240 frames, 16 MiB.
inline constexpr uint32_t kRingFrame = 65536 + 256, kRingBlock = 1 << 20, kRingBlocks = 16;

// Frames the stack sends while a thread holds the sockets' lock go out
// when it lets go: writing a frame to a veth runs the peer's receive path
// (the host's TCP answering, sending more) in the writer's thread, which
// must not keep every other socket waiting meanwhile. Calls nest; the
// outermost SendHeldFrames sends.
void HoldFrames();
void SendHeldFrames();

// `husk boot --nic=FD,NAME,MAC,MTU[,vnet][,ring=FRAME:BLOCK:BLOCKS][,ifindex=N][,ADDR/PREFIX...]`
// and
// `--route=DST/PREFIX,GATEWAY|-,NAME` (IPv4 dotted quads).
bool ParseNicSpec(const std::string& text, NicSpec* out);
bool ParseRouteSpec(const std::string& text, RouteSpec* out);
std::string FormatNicSpec(const NicSpec& n);
std::string FormatRouteSpec(const RouteSpec& r);

// Builds the stack over the interfaces and starts its thread (once:
// EBUSY after).
Status StartNetwork(std::vector<NicSpec> nics, const std::vector<RouteSpec>& routes);

// --network=host: the host's interfaces and routes as the sandbox is to
// see them (netlink, the interface ioctls, /proc/net); no stack runs.
void DescribeHostNetwork(std::vector<NicSpec> nics, std::vector<RouteSpec> routes);

// The interfaces as the sandbox sees them, loopback first (netlink, the
// interface ioctls, /proc/net/dev).
struct InterfaceInfo {
  int index = 0;
  std::string name;
  netstack::Mac mac{};
  uint32_t mtu = 0;
  bool loopback = false;
  std::vector<std::pair<netstack::Ip, int>> addrs;
  uint64_t rx_packets = 0, rx_bytes = 0, rx_dropped = 0, tx_packets = 0, tx_bytes = 0,
           tx_dropped = 0;
};
std::vector<InterfaceInfo> Interfaces();
// The stack's routes (loopback's are implied).
std::vector<RouteSpec> Routes();

}  // namespace husk::net

#endif  // HUSK_SENTRY_NET_NETDEV_H_
