// Conformance: file descriptor table semantics: lowest-fd allocation, dup/dup2/dup3, fcntl
// (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD/F_SETFD, F_GETFL/F_SETFL), close.
// Relies on, beyond the start-up set in test_util.h: dup dup2 dup3 fcntl(F_DUPFD, F_DUPFD_CLOEXEC,
// F_GETFD, F_SETFD, F_GETFL, F_SETFL) lseek.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

class FdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    path_ = dir_.Join("file");
    ASSERT_TRUE(WriteFile(path_, "0123456789"));
  }
  Fd Open(int flags = O_RDWR) { return Fd(open(path_.c_str(), flags)); }

  TempDir dir_;
  std::string path_;
};

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

// The lowest fd >= `from` that is not open.
int LowestFreeFrom(int from) {
  while (IsOpen(from)) ++from;
  return from;
}

TEST_F(FdTest, NewFdIsTheLowestFree) {
  int want = LowestFreeFrom(0);
  Fd a = Open();
  EXPECT_EQ(a.get(), want);
  want = LowestFreeFrom(0);
  Fd b = Open();
  EXPECT_EQ(b.get(), want);
  int freed = a.get();
  a.Reset();
  Fd c = Open();
  EXPECT_EQ(c.get(), freed);  // The hole left by close is reused first.
  want = LowestFreeFrom(0);
  Fd d(dup(b.get()));
  EXPECT_EQ(d.get(), want);  // dup too takes the lowest free number.
}

TEST_F(FdTest, DupSharesTheFileOffset) {
  Fd a = Open();
  ASSERT_TRUE(a.valid());
  Fd b(dup(a.get()));
  ASSERT_TRUE(b.valid()) << ErrnoName(errno);
  EXPECT_NE(a.get(), b.get());
  ASSERT_EQ(lseek(a.get(), 4, SEEK_SET), 4);
  EXPECT_EQ(lseek(b.get(), 0, SEEK_CUR), 4);
  char c;
  ASSERT_EQ(read(b.get(), &c, 1), 1);
  EXPECT_EQ(c, '4');
  EXPECT_EQ(lseek(a.get(), 0, SEEK_CUR), 5);
}

TEST_F(FdTest, SeparateOpensHaveSeparateOffsets) {
  Fd a = Open(), b = Open();
  ASSERT_TRUE(a.valid() && b.valid());
  ASSERT_EQ(lseek(a.get(), 4, SEEK_SET), 4);
  EXPECT_EQ(lseek(b.get(), 0, SEEK_CUR), 0);
}

TEST_F(FdTest, DupSharesStatusFlagsButNotCloexec) {
  Fd a(open(path_.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(a.valid());
  Fd b(dup(a.get()));
  ASSERT_TRUE(b.valid());
  EXPECT_EQ(fcntl(a.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(b.get(), F_GETFD), 0);  // dup(2): the copy never has FD_CLOEXEC.
  ASSERT_OK(fcntl(a.get(), F_SETFL, O_APPEND));
  EXPECT_TRUE(fcntl(b.get(), F_GETFL) & O_APPEND);  // Status flags live in the open file.
}

TEST_F(FdTest, DupOfBadFdFailsWithEBADF) {
  EXPECT_ERRNO(dup(-1), EBADF);
  EXPECT_ERRNO(dup(LowestFreeFrom(0)), EBADF);
}

TEST_F(FdTest, Dup2OntoItselfReturnsFdWithoutClosingIt) {
  Fd a = Open();
  ASSERT_TRUE(a.valid());
  EXPECT_EQ(dup2(a.get(), a.get()), a.get());
  EXPECT_TRUE(IsOpen(a.get()));
  int bad = LowestFreeFrom(0);
  EXPECT_ERRNO(dup2(bad, bad), EBADF);
}

TEST_F(FdTest, Dup2ReplacesAnOpenTarget) {
  ASSERT_TRUE(WriteFile(dir_.Join("other"), "other"));
  Fd a = Open();
  Fd b(open(dir_.Join("other").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(a.valid() && b.valid());
  ASSERT_EQ(dup2(a.get(), b.get()), b.get());
  struct stat sa, sb;
  ASSERT_OK(fstat(a.get(), &sa));
  ASSERT_OK(fstat(b.get(), &sb));
  EXPECT_EQ(sa.st_ino, sb.st_ino);
  EXPECT_EQ(fcntl(b.get(), F_GETFD), 0);  // The new fd does not inherit FD_CLOEXEC.
}

TEST_F(FdTest, Dup2ToFdBeyondLimitFailsWithEBADF) {
  Fd a = Open();
  ASSERT_TRUE(a.valid());
  struct rlimit rl;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
  EXPECT_ERRNO(dup2(a.get(), static_cast<int>(rl.rlim_cur)), EBADF);
  EXPECT_ERRNO(dup2(a.get(), -1), EBADF);
}

TEST_F(FdTest, Dup3Semantics) {
  Fd a = Open();
  ASSERT_TRUE(a.valid());
  int target = LowestFreeFrom(a.get() + 1);
  // dup3(2): unlike dup2, the same fd twice is an error.
  EXPECT_ERRNO(dup3(a.get(), a.get(), 0), EINVAL);
  EXPECT_ERRNO(dup3(a.get(), target, O_APPEND), EINVAL);  // Only O_CLOEXEC is allowed.
  ASSERT_EQ(dup3(a.get(), target, O_CLOEXEC), target);
  Fd b(target);
  EXPECT_EQ(fcntl(b.get(), F_GETFD), FD_CLOEXEC);
}

TEST_F(FdTest, FcntlDupfdReturnsLowestFreeAtOrAboveArg) {
  Fd a = Open();
  ASSERT_TRUE(a.valid());
  int want = LowestFreeFrom(100);
  Fd b(fcntl(a.get(), F_DUPFD, 100));
  EXPECT_EQ(b.get(), want);
  EXPECT_EQ(fcntl(b.get(), F_GETFD), 0);
  int want2 = LowestFreeFrom(100);
  Fd c(fcntl(a.get(), F_DUPFD_CLOEXEC, 100));
  EXPECT_EQ(c.get(), want2);
  EXPECT_EQ(fcntl(c.get(), F_GETFD), FD_CLOEXEC);
}

TEST_F(FdTest, FcntlDupfdBadArgFailsWithEINVAL) {
  Fd a = Open();
  ASSERT_TRUE(a.valid());
  struct rlimit rl;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
  EXPECT_ERRNO(fcntl(a.get(), F_DUPFD, -1), EINVAL);
  EXPECT_ERRNO(fcntl(a.get(), F_DUPFD, static_cast<int>(rl.rlim_cur)), EINVAL);
}

TEST_F(FdTest, FcntlGetSetFd) {
  Fd a = Open();
  ASSERT_TRUE(a.valid());
  EXPECT_EQ(fcntl(a.get(), F_GETFD), 0);
  ASSERT_OK(fcntl(a.get(), F_SETFD, FD_CLOEXEC));
  EXPECT_EQ(fcntl(a.get(), F_GETFD), FD_CLOEXEC);
  ASSERT_OK(fcntl(a.get(), F_SETFD, 0));
  EXPECT_EQ(fcntl(a.get(), F_GETFD), 0);
  Fd b(open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(fcntl(b.get(), F_GETFD), FD_CLOEXEC);
}

TEST_F(FdTest, FcntlGetFlReportsAccessModeAndStatusFlags) {
  Fd ro = Open(O_RDONLY), wo = Open(O_WRONLY | O_APPEND), rw = Open(O_RDWR);
  ASSERT_TRUE(ro.valid() && wo.valid() && rw.valid());
  EXPECT_EQ(fcntl(ro.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(fcntl(wo.get(), F_GETFL) & O_ACCMODE, O_WRONLY);
  EXPECT_TRUE(fcntl(wo.get(), F_GETFL) & O_APPEND);
  EXPECT_EQ(fcntl(rw.get(), F_GETFL) & O_ACCMODE, O_RDWR);
  EXPECT_FALSE(fcntl(rw.get(), F_GETFL) & O_APPEND);
}

TEST_F(FdTest, FcntlSetFlCannotChangeAccessMode) {
  Fd ro = Open(O_RDONLY);
  ASSERT_TRUE(ro.valid());
  // fcntl(2): the access mode and creation flags in the argument are ignored.
  ASSERT_OK(fcntl(ro.get(), F_SETFL, O_RDWR | O_NONBLOCK));
  int fl = fcntl(ro.get(), F_GETFL);
  EXPECT_EQ(fl & O_ACCMODE, O_RDONLY);
  EXPECT_TRUE(fl & O_NONBLOCK);
  EXPECT_ERRNO(write(ro.get(), "x", 1), EBADF);
  ASSERT_OK(fcntl(ro.get(), F_SETFL, 0));
  EXPECT_FALSE(fcntl(ro.get(), F_GETFL) & O_NONBLOCK);
}

TEST_F(FdTest, FcntlOnBadFdFailsWithEBADF) {
  int bad = LowestFreeFrom(0);
  EXPECT_ERRNO(fcntl(bad, F_GETFD), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_GETFL), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_DUPFD, 0), EBADF);
}

TEST_F(FdTest, CloseFreesTheNumber) {
  Fd a = Open();
  ASSERT_TRUE(a.valid());
  int n = a.Release();
  ASSERT_EQ(close(n), 0);
  EXPECT_FALSE(IsOpen(n));
  EXPECT_ERRNO(close(n), EBADF);
}

TEST_F(FdTest, StdoutAndStderrAreOpen) {
  // gtest's own output needs them; a sandbox must hand them over.
  EXPECT_TRUE(IsOpen(1));
  EXPECT_TRUE(IsOpen(2));
}

}  // namespace
}  // namespace husk_test
