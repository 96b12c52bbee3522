// Framing: what gets through and what is a framing error.
#include "gofer/wire.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace husk::gofer::wire {
namespace {

class WireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    a_.Reset(sv[0]);
    b_.Reset(sv[1]);
  }
  // Sends raw bytes and up to `nfds` copies of an fd, bypassing Send().
  void SendRaw(const std::string& bytes, int nfds) {
    UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
    int fds[4] = {devnull.get(), devnull.get(), devnull.get(), devnull.get()};
    iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))] = {};
    if (nfds > 0) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
      memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    ASSERT_EQ(sendmsg(a_.get(), &msg, 0), static_cast<ssize_t>(bytes.size()));
  }
  static std::string MakeFrame(Kind kind, const std::string& payload, uint32_t length) {
    FrameHeader h{kMagic, kVersion, static_cast<uint16_t>(kind), length};
    return std::string(reinterpret_cast<const char*>(&h), sizeof(h)) + payload;
  }
  UniqueFd a_, b_;
};

TEST_F(WireTest, RoundTripWithFd) {
  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(Send(a_.get(), Kind::kResponse, "payload", devnull.get()).ok());
  absl::StatusOr<std::optional<Frame>> f = Recv(b_.get(), Kind::kResponse);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE(f->has_value());
  EXPECT_EQ((*f)->payload, "payload");
  ASSERT_TRUE((*f)->fd.valid());
  EXPECT_EQ(fcntl((*f)->fd.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  struct stat x, y;
  ASSERT_EQ(fstat((*f)->fd.get(), &x), 0);
  ASSERT_EQ(fstat(devnull.get(), &y), 0);
  EXPECT_EQ(x.st_rdev, y.st_rdev);
}

TEST_F(WireTest, EmptyPayloadAndMaximumPayload) {
  ASSERT_TRUE(Send(a_.get(), Kind::kRequest, "").ok());
  absl::StatusOr<std::optional<Frame>> f = Recv(b_.get(), Kind::kRequest);
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->payload, "");
  std::string big(kMaxPayload, 'x');
  ASSERT_TRUE(Send(a_.get(), Kind::kRequest, big).ok());
  f = Recv(b_.get(), Kind::kRequest);
  ASSERT_TRUE(f.ok() && f->has_value()) << f.status();
  EXPECT_EQ((*f)->payload, big);
  EXPECT_EQ(Send(a_.get(), Kind::kRequest, big + "x").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(WireTest, EofIsNullopt) {
  a_.Reset();
  absl::StatusOr<std::optional<Frame>> f = Recv(b_.get(), Kind::kRequest);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
  // And sending to a closed peer is an error, not SIGPIPE.
  EXPECT_EQ(Send(b_.get(), Kind::kResponse, "x").code(), absl::StatusCode::kUnavailable);
}

TEST_F(WireTest, OversizedPacketIsTruncatedAndRejected) {
  SendRaw(MakeFrame(Kind::kRequest, std::string(kMaxFrame, 'x'), kMaxFrame), 0);
  EXPECT_EQ(Recv(b_.get(), Kind::kRequest).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(WireTest, TwoFdsAreRejected) {
  SendRaw(MakeFrame(Kind::kRequest, "ab", 2), 2);
  EXPECT_EQ(Recv(b_.get(), Kind::kRequest).status().code(), absl::StatusCode::kDataLoss);
  SendRaw(MakeFrame(Kind::kRequest, "ab", 2), 4);
  EXPECT_EQ(Recv(b_.get(), Kind::kRequest).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(WireTest, BadHeadersAreRejected) {
  SendRaw("short", 0);
  EXPECT_EQ(Recv(b_.get(), Kind::kRequest).status().code(), absl::StatusCode::kDataLoss);
  std::string bad_magic = MakeFrame(Kind::kRequest, "", 0);
  bad_magic[0] ^= 1;
  SendRaw(bad_magic, 0);
  EXPECT_EQ(Recv(b_.get(), Kind::kRequest).status().code(), absl::StatusCode::kDataLoss);
  std::string bad_version = MakeFrame(Kind::kRequest, "", 0);
  bad_version[4] = 9;
  SendRaw(bad_version, 0);
  EXPECT_EQ(Recv(b_.get(), Kind::kRequest).status().code(), absl::StatusCode::kDataLoss);
  SendRaw(MakeFrame(Kind::kResponse, "", 0), 0);  // a response where a request belongs
  EXPECT_EQ(Recv(b_.get(), Kind::kRequest).status().code(), absl::StatusCode::kDataLoss);
  SendRaw(MakeFrame(Kind::kRequest, "abc", 2), 0);  // length disagrees with the packet
  EXPECT_EQ(Recv(b_.get(), Kind::kRequest).status().code(), absl::StatusCode::kDataLoss);
  SendRaw(MakeFrame(Kind::kRequest, "abc", 4), 0);
  EXPECT_EQ(Recv(b_.get(), Kind::kRequest).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace husk::gofer::wire
