// statfs(2) and fstatfs(2): each filesystem answers with its own magic
// number (procfs, tmpfs, pipes, anonymous inodes), through paths, fds and
// O_PATH fds; the errors for a missing path and a bad fd.
//
// Syscalls: statfs fstatfs open pipe2 eventfd2 close
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

constexpr long kProcMagic = 0x9fa0;
constexpr long kTmpfsMagic = 0x01021994;
constexpr long kPipefsMagic = 0x50495045;
constexpr long kAnonInodeMagic = 0x09041934;

TEST(StatfsTest, ProcIsProcfs) {
  struct statfs s {};
  ASSERT_OK(statfs("/proc", &s));
  EXPECT_EQ(s.f_type, kProcMagic);
  ASSERT_OK(statfs("/proc/self/status", &s));
  EXPECT_EQ(s.f_type, kProcMagic);
  Fd fd(open("/proc/self/stat", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(fstatfs(fd.get(), &s));
  EXPECT_EQ(s.f_type, kProcMagic);
}

TEST(StatfsTest, DevShmIsTmpfs) {
  struct stat st {};
  if (stat("/dev/shm", &st) != 0) GTEST_SKIP() << "no /dev/shm here";
  struct statfs s {};
  ASSERT_OK(statfs("/dev/shm", &s));
  EXPECT_EQ(s.f_type, kTmpfsMagic);
  EXPECT_EQ(s.f_bsize, 4096);
  EXPECT_EQ(s.f_namelen, 255);
  EXPECT_GT(s.f_blocks, 0u);
  EXPECT_LE(s.f_bfree, s.f_blocks);
  // An O_PATH descriptor is enough for fstatfs.
  Fd path(open("/dev/shm", O_PATH | O_CLOEXEC));
  ASSERT_TRUE(path.valid());
  struct statfs by_fd {};
  ASSERT_OK(fstatfs(path.get(), &by_fd));
  EXPECT_EQ(by_fd.f_type, kTmpfsMagic);
}

TEST(StatfsTest, PipesAndAnonymousInodes) {
  int p[2];
  ASSERT_OK(pipe2(p, O_CLOEXEC));
  Fd r(p[0]), w(p[1]);
  struct statfs s {};
  ASSERT_OK(fstatfs(r.get(), &s));
  EXPECT_EQ(s.f_type, kPipefsMagic);
  Fd ev(eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(ev.valid());
  ASSERT_OK(fstatfs(ev.get(), &s));
  EXPECT_EQ(s.f_type, kAnonInodeMagic);
}

TEST(StatfsTest, Errors) {
  struct statfs s {};
  EXPECT_EQ(statfs("/nonexistent/path", &s), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(fstatfs(-1, &s), -1);
  EXPECT_EQ(errno, EBADF);
  // A buffer that is not the caller's (the libc wrapper's nonnull would
  // refuse a plain null at compile time).
  auto* unmapped = reinterpret_cast<struct statfs*>(8);
  EXPECT_EQ(statfs("/proc", unmapped), -1);
  EXPECT_EQ(errno, EFAULT);
}

}  // namespace
}  // namespace husk_test
