#include "sentry/net/packet_ring.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace husk::net {
namespace {

// A ring of 2 KiB frames, two to a 4 KiB block, laid out as the kernel
// lays out PACKET_RX_RING; frames are written as tpacket_rcv writes them.
class Ring {
 public:
  static constexpr uint32_t kFrame = 2048, kBlock = 4096, kBlocks = 40;  // 80 frames
  explicit Ring(bool vnet = false)
      : mem_(static_cast<uint8_t*>(aligned_alloc(4096, kBlock * kBlocks))),
        ring_(mem_.get(), kFrame, kBlock, kBlocks, vnet),
        vnet_(vnet) {
    memset(mem_.get(), 0, kBlock * kBlocks);
  }
  tpacket2_hdr* At(uint32_t i) {
    return reinterpret_cast<tpacket2_hdr*>(mem_.get() + (i / 2) * kBlock + (i % 2) * kFrame);
  }
  // Slot i holds `bytes` for the sentry (with a virtio header of gso_type
  // and flags when the ring has them).
  void Put(uint32_t i, const std::string& bytes, uint8_t gso_type = 0, uint8_t flags = 0,
           uint32_t status = TP_STATUS_USER) {
    tpacket2_hdr* h = At(i);
    h->tp_mac = 128;
    h->tp_len = h->tp_snaplen = static_cast<uint32_t>(bytes.size());
    memcpy(reinterpret_cast<uint8_t*>(h) + h->tp_mac, bytes.data(), bytes.size());
    if (vnet_) {
      VnetHeader v{};
      v.gso_type = gso_type;
      v.flags = flags;
      memcpy(reinterpret_cast<uint8_t*>(h) + h->tp_mac - sizeof(v), &v, sizeof(v));
    }
    h->tp_status = status;
  }
  RxRing& ring() { return ring_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { free(p); }
  };
  std::unique_ptr<uint8_t, Free> mem_;
  RxRing ring_;
  bool vnet_;
};

std::string Of(const RxRing::Frame& f) {
  return std::string(reinterpret_cast<const char*>(f.data), f.len);
}

TEST(RxRing, TakesFramesInOrderUntilOneIsTheKernelsAndGivesThemBack) {
  Ring r;
  ASSERT_EQ(r.ring().frames(), 80u);
  r.Put(0, "first");
  r.Put(1, "second", 0, 0, TP_STATUS_USER | TP_STATUS_CSUM_VALID);
  r.Put(2, "third");
  r.At(3)->tp_status = TP_STATUS_KERNEL;
  RxRing::Frame out[64];
  uint64_t dropped = 0;
  ASSERT_EQ(r.ring().Take(64, out, &dropped), 3);
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(Of(out[0]), "first");
  EXPECT_EQ(Of(out[1]), "second");
  EXPECT_EQ(Of(out[2]), "third");
  EXPECT_FALSE(out[0].checksum_ok);
  EXPECT_TRUE(out[1].checksum_ok);
  // Held until given back; then the kernel's again.
  EXPECT_EQ(r.At(0)->tp_status & TP_STATUS_USER, TP_STATUS_USER);
  r.ring().GiveBack();
  for (uint32_t i = 0; i < 3; i++) EXPECT_EQ(r.At(i)->tp_status, TP_STATUS_KERNEL) << i;
  // The next batch starts where the kernel goes on.
  r.Put(3, "fourth");
  ASSERT_EQ(r.ring().Take(64, out, &dropped), 1);
  EXPECT_EQ(Of(out[0]), "fourth");
}

TEST(RxRing, AFullRingOfBadFramesEndsTheBatchAndNeverComesRoundAgain) {
  // Every slot the sentry's, every frame's offsets outside its slot: a
  // batch looks at no more than it has room for, and a second one before
  // GiveBack stops short of the frames still held.
  Ring r;
  for (uint32_t i = 0; i < 80; i++) {
    r.Put(i, "x");
    r.At(i)->tp_mac = Ring::kFrame;  // past the slot
  }
  RxRing::Frame out[64];
  uint64_t dropped = 0;
  EXPECT_EQ(r.ring().Take(64, out, &dropped), 0);
  EXPECT_EQ(dropped, 64u);
  EXPECT_EQ(r.ring().Take(64, out, &dropped), 0);
  EXPECT_EQ(dropped, 80u);  // the 16 left, and no frame twice
  EXPECT_EQ(r.ring().Take(64, out, &dropped), 0);
  EXPECT_EQ(dropped, 80u);
  r.ring().GiveBack();
  for (uint32_t i = 0; i < 80; i++) ASSERT_EQ(r.At(i)->tp_status, TP_STATUS_KERNEL) << i;
}

TEST(RxRing, FramesNotWhollyInTheirSlotAreDropped) {
  Ring r;
  r.Put(0, "cut");
  r.At(0)->tp_len = 5000;  // longer than the slot held: cut short
  r.Put(1, "offset");
  r.At(1)->tp_mac = 4;  // inside the ring's own header
  r.Put(2, "long");
  r.At(2)->tp_snaplen = Ring::kFrame;  // past the slot's end
  r.At(2)->tp_len = Ring::kFrame;
  r.Put(3, "good");
  RxRing::Frame out[8];
  uint64_t dropped = 0;
  ASSERT_EQ(r.ring().Take(8, out, &dropped), 1);
  EXPECT_EQ(dropped, 3u);
  EXPECT_EQ(Of(out[0]), "good");
}

TEST(RxRing, VirtioHeadersMarkChecksumsAndUdpGsoFramesAreDropped) {
  Ring r(/*vnet=*/true);
  r.Put(0, "plain");
  r.Put(1, "offload", 0, kVnetNeedsCsum);
  r.Put(2, "udp-gso", kVnetGsoUdpL4);
  r.Put(3, "tcp-gso", kVnetGsoTcpv4, kVnetNeedsCsum);
  RxRing::Frame out[8];
  uint64_t dropped = 0;
  ASSERT_EQ(r.ring().Take(8, out, &dropped), 3);
  EXPECT_EQ(dropped, 1u);
  EXPECT_EQ(Of(out[0]), "plain");
  EXPECT_FALSE(out[0].checksum_ok);
  EXPECT_EQ(Of(out[1]), "offload");
  EXPECT_TRUE(out[1].checksum_ok);
  EXPECT_EQ(Of(out[2]), "tcp-gso");
}

}  // namespace
}  // namespace husk::net
