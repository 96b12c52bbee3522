#include "sentry/net/packet_ring.h"

#include <algorithm>
#include <cstring>

namespace husk::net {

RxRing::RxRing(uint8_t* base, uint32_t frame_size, uint32_t block_size, uint32_t blocks, bool vnet)
    : base_(base),
      frame_size_(frame_size),
      block_size_(block_size),
      per_block_(frame_size == 0 ? 0 : block_size / frame_size),
      frames_(per_block_ * blocks),
      vnet_(vnet) {
  held_.reserve(frames_);
}

tpacket2_hdr* RxRing::At(uint32_t i) const {
  return reinterpret_cast<tpacket2_hdr*>(base_ + size_t{i / per_block_} * block_size_ +
                                         size_t{i % per_block_} * frame_size_);
}

int RxRing::Take(int room, Frame* out, uint64_t* dropped) {
  // Never past the frames still held: the scan would come round to them.
  const auto free = static_cast<int>(frames_ - held_.size());
  room = std::min(room, free);
  int got = 0;
  for (int seen = 0; seen < room; seen++) {
    tpacket2_hdr* h = At(next_);
    const uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if ((status & TP_STATUS_USER) == 0) break;
    next_ = (next_ + 1) % frames_;
    held_.push_back(h);
    // The kernel's offsets, checked all the same.
    const size_t mac = h->tp_mac, len = h->tp_snaplen;
    const size_t header = sizeof(tpacket2_hdr) + (vnet_ ? sizeof(VnetHeader) : 0);
    if (mac < header || mac + len > frame_size_ || len != h->tp_len) {
      ++*dropped;
      continue;
    }
    const uint8_t* frame = reinterpret_cast<const uint8_t*>(h) + mac;
    bool checksum_ok = StatusChecksumOk(status);
    if (vnet_) {
      VnetHeader vh;
      memcpy(&vh, frame - sizeof(vh), sizeof(vh));
      if (IsUdpGso(vh)) {
        ++*dropped;
        continue;
      }
      checksum_ok = checksum_ok || VnetChecksumOk(vh);
    }
    out[got++] = Frame{frame, len, checksum_ok};
  }
  return got;
}

void RxRing::GiveBack() {
  for (tpacket2_hdr* h : held_) __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
  held_.clear();
}

}  // namespace husk::net
