// The pipe side of splice(2), tee(2) and vmsplice(2): what Drain, Fill, Move
// and Tee take from and leave in a pipe. Outside a task nothing blocks: a
// wait answers EAGAIN, as with SPLICE_F_NONBLOCK.
#include "sentry/kernel/pipe.h"

#include <errno.h>
#include <fcntl.h>

#include <string>

#include "base/result_testing.h"
#include "gtest/gtest.h"

namespace husk::pipe {
namespace {

struct Ends {
  vfs::FileRef r;
  vfs::FileRef w;
};

Ends NewPipe() {
  auto [r, w] = New(O_NONBLOCK, 0, 0);
  return {r, w};
}

void Put(vfs::File& w, const std::string& s) {
  Result<size_t> n = w.Write(s.data(), s.size());
  ASSERT_OK(n);
  ASSERT_EQ(*n, s.size());
}

// What the pipe holds now (it is non-blocking).
std::string Contents(vfs::File& r) {
  std::string out;
  char buf[4096];
  for (;;) {
    Result<size_t> n = r.Read(buf, sizeof(buf));
    if (!n.ok() || *n == 0) return out;
    out.append(buf, *n);
  }
}

// A sink that keeps at most `limit` bytes of each chunk.
Sink Keep(std::string* out, size_t limit = SIZE_MAX) {
  return [out, limit](const char* p, size_t n) -> Result<size_t> {
    const size_t k = std::min(n, limit);
    out->append(p, k);
    return k;
  };
}

TEST(PipeSpliceTest, DrainLeavesWhatTheSinkDidNotTake) {
  Ends p = NewPipe();
  Put(*p.w, "hello, world");
  std::string got;
  Result<size_t> n = Drain(*p.r, 100, true, Keep(&got, 5));
  ASSERT_OK(n);
  EXPECT_EQ(*n, 5U);
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(Contents(*p.r), ", world");
}

TEST(PipeSpliceTest, DrainKeepsEverythingWhenTheSinkFails) {
  Ends p = NewPipe();
  Put(*p.w, "abc");
  Put(*p.w, std::string(5000, 'x'));  // a second buffer
  EXPECT_ERRNO(
      Drain(*p.r, 100, true, [](const char*, size_t) -> Result<size_t> { return Errno{EFBIG}; }),
      EFBIG);
  EXPECT_EQ(Contents(*p.r), "abc" + std::string(5000, 'x'));
}

TEST(PipeSpliceTest, DrainStopsAtNAndAtEndOfFile) {
  Ends p = NewPipe();
  Put(*p.w, "0123456789");
  std::string got;
  ASSERT_OK(Drain(*p.r, 4, true, Keep(&got)));
  EXPECT_EQ(got, "0123");
  Result<size_t> none = Drain(*p.r, 0, true, Keep(&got));
  ASSERT_OK(none);
  EXPECT_EQ(*none, 0U);
  got.clear();
  ASSERT_OK(Drain(*p.r, 100, true, Keep(&got)));
  EXPECT_EQ(got, "456789");
  // Empty with a writer: EAGAIN; with none: end of file.
  EXPECT_ERRNO(Drain(*p.r, 100, true, Keep(&got)), EAGAIN);
  p.w.reset();
  Result<size_t> eof = Drain(*p.r, 100, true, Keep(&got));
  ASSERT_OK(eof);
  EXPECT_EQ(*eof, 0U);
}

TEST(PipeSpliceTest, DrainMovesABigPipeInBoundedChunksInOrder) {
  Ends p = NewPipe();
  ASSERT_OK(SetCapacity(*p.w, 1 << 20));
  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 7 + i / 4096);
  Put(*p.w, data);
  std::string got;
  size_t biggest = 0;
  Result<size_t> n = Drain(*p.r, SIZE_MAX, true, [&](const char* d, size_t k) -> Result<size_t> {
    biggest = std::max(biggest, k);
    got.append(d, k);
    return k;
  });
  ASSERT_OK(n);
  EXPECT_EQ(*n, data.size());
  EXPECT_TRUE(got == data);
  EXPECT_LE(biggest, kSpliceChunk);
}

TEST(PipeSpliceTest, FillTakesNoMoreThanTheFreeBuffers) {
  Ends p = NewPipe();
  Put(*p.w, std::string(4096 * 15, 'a'));  // one buffer of sixteen left
  size_t asked = 0;
  Result<size_t> n = Fill(*p.w, 100000, true, [&](char* buf, size_t k) -> Result<size_t> {
    asked += k;
    std::fill(buf, buf + k, 'b');
    return k;
  });
  ASSERT_OK(n);
  EXPECT_EQ(*n, 4096U);
  EXPECT_EQ(asked, 4096U);
  // Full now: EAGAIN, and the source is not asked.
  EXPECT_ERRNO(Fill(*p.w, 10, true,
                    [&](char*, size_t) -> Result<size_t> {
                      ADD_FAILURE() << "asked a source for a full pipe";
                      return size_t{0};
                    }),
               EAGAIN);
  EXPECT_EQ(Contents(*p.r), std::string(4096 * 15, 'a') + std::string(4096, 'b'));
}

TEST(PipeSpliceTest, FillStopsAtAShortSourceAndFailsWithoutReaders) {
  Ends p = NewPipe();
  Result<size_t> n = Fill(*p.w, 100, true, [](char* buf, size_t k) -> Result<size_t> {
    buf[0] = 'z';
    return size_t{1};
  });
  ASSERT_OK(n);
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(Contents(*p.r), "z");
  p.r.reset();
  EXPECT_ERRNO(Fill(*p.w, 1, true, [](char*, size_t k) -> Result<size_t> { return k; }), EPIPE);
}

TEST(PipeSpliceTest, MoveSplitsTheLastBuffer) {
  Ends a = NewPipe();
  Ends b = NewPipe();
  Put(*a.w, "pipe2pipe");
  Result<size_t> n = Move(*a.r, *b.w, 5, true);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 5U);
  EXPECT_EQ(Contents(*b.r), "pipe2");
  EXPECT_EQ(Contents(*a.r), "pipe");
  EXPECT_ERRNO(Move(*a.r, *b.w, 5, true), EAGAIN);  // empty
  EXPECT_ERRNO(Move(*a.r, *a.w, 5, true), EINVAL);  // one pipe
  a.w.reset();
  Result<size_t> eof = Move(*a.r, *b.w, 5, true);
  ASSERT_OK(eof);
  EXPECT_EQ(*eof, 0U);
  b.r.reset();
  Ends c = NewPipe();
  Put(*c.w, "x");
  EXPECT_ERRNO(Move(*c.r, *b.w, 1, true), EPIPE);
  EXPECT_EQ(Contents(*c.r), "x");
}

TEST(PipeSpliceTest, MoveIsBoundedByTheOutputsRoom) {
  Ends a = NewPipe();
  Ends b = NewPipe();
  Put(*a.w, std::string(3 * 4096, 'm'));
  Put(*b.w, std::string(15 * 4096, 'o'));
  Result<size_t> n = Move(*a.r, *b.w, SIZE_MAX, true);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 4096U);
  EXPECT_EQ(Contents(*a.r), std::string(2 * 4096, 'm'));
}

TEST(PipeSpliceTest, TeeCopiesWithoutConsuming) {
  Ends a = NewPipe();
  Ends b = NewPipe();
  Put(*a.w, "teetime");
  Result<size_t> n = Tee(*a.r, *b.w, 3, true);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 3U);
  n = Tee(*a.r, *b.w, 100, true);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 7U);
  EXPECT_EQ(Contents(*b.r), "teeteetime");
  EXPECT_EQ(Contents(*a.r), "teetime");
  EXPECT_ERRNO(Tee(*a.r, *b.w, 1, true), EAGAIN);
  a.w.reset();
  n = Tee(*a.r, *b.w, 1, true);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 0U);
}

TEST(PipeSpliceTest, SamePipe) {
  Ends a = NewPipe();
  Ends b = NewPipe();
  EXPECT_TRUE(SamePipe(*a.r, *a.w));
  EXPECT_FALSE(SamePipe(*a.r, *b.w));
}

}  // namespace
}  // namespace husk::pipe
