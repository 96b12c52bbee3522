// A packet socket's receive ring (PACKET_RX_RING, TPACKET_V2) as the
// sentry's network thread reads it: the host's kernel writes each frame
// into the next slot of memory the sentry maps and hands the slot over by
// its status (TP_STATUS_USER); the sentry hands it back (TP_STATUS_KERNEL)
// once the stack has copied what it keeps. Apart from netdev.cc so that a
// test can give it a ring of its own making.
#ifndef HUSK_SENTRY_NET_PACKET_RING_H_
#define HUSK_SENTRY_NET_PACKET_RING_H_

#include <linux/if_packet.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace husk::net {

// struct virtio_net_hdr (linux/virtio_net.h, which C++ cannot include):
// what PACKET_VNET_HDR puts before each frame, in the host's byte order.
struct VnetHeader {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len, gso_size, csum_start, csum_offset;
};
static_assert(sizeof(VnetHeader) == 10);
inline constexpr uint8_t kVnetNeedsCsum = 1, kVnetDataValid = 2;  // VIRTIO_NET_HDR_F_*
inline constexpr uint8_t kVnetGsoTcpv4 = 1, kVnetGsoTcpv6 = 4;  // VIRTIO_NET_HDR_GSO_TCPV4, _TCPV6
inline constexpr uint8_t kVnetGsoUdpL4 = 5;                     // VIRTIO_NET_HDR_GSO_UDP_L4

// A GSO frame of UDP segments (UDP_SEGMENT on the host's side): many
// datagrams the stack would take for one, so dropped.
inline bool IsUdpGso(const VnetHeader& v) { return (v.gso_type & 0x7f) == kVnetGsoUdpL4; }
// The host vouches for a frame's transport checksum: by its virtio header
// (left to offload, or checked), or by the status the packet socket gives
// it (tpacket_auxdata's or the ring slot's tp_status).
inline bool VnetChecksumOk(const VnetHeader& v) {
  return (v.flags & (kVnetNeedsCsum | kVnetDataValid)) != 0;
}
inline bool StatusChecksumOk(uint32_t tp_status) {
  return (tp_status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID)) != 0;
}

class RxRing {
 public:
  RxRing() = default;
  // `blocks` blocks of block_size bytes at base, each holding whole frames
  // of frame_size bytes (packet_set_ring's layout). vnet: frames carry a
  // VnetHeader before their bytes.
  RxRing(uint8_t* base, uint32_t frame_size, uint32_t block_size, uint32_t blocks, bool vnet);
  bool valid() const { return frames_ != 0; }
  uint32_t frames() const { return frames_; }

  struct Frame {
    const uint8_t* data = nullptr;
    size_t len = 0;
    // The host vouches for the transport checksum (checked, or left to
    // offload by a local sender).
    bool checksum_ok = false;
  };
  // Looks at up to `room` frames in the kernel's order, stopping at the
  // first still the kernel's, and never at one it holds already: each
  // frame looked at stays the sentry's until GiveBack. Good frames go to
  // out (returns how many); frames whose bytes are not all in their slot
  // (cut to the slot's size, or offsets out of it) and UDP GSO frames (many
  // datagrams the stack would take for one) are dropped and counted in
  // *dropped.
  int Take(int room, Frame* out, uint64_t* dropped);
  // Hands every frame looked at since the last call back to the kernel.
  void GiveBack();

 private:
  tpacket2_hdr* At(uint32_t i) const;

  uint8_t* base_ = nullptr;
  uint32_t frame_size_ = 0, block_size_ = 0, per_block_ = 0, frames_ = 0;
  bool vnet_ = false;
  uint32_t next_ = 0;  // the slot the kernel fills next
  std::vector<tpacket2_hdr*> held_;
};

}  // namespace husk::net

#endif  // HUSK_SENTRY_NET_PACKET_RING_H_
