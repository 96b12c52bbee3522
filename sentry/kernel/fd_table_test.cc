// Descriptor numbering as open(2), dup(2), fcntl(F_DUPFD) and execve(2)
// describe it.
#include "sentry/kernel/fd_table.h"

#include <errno.h>
#include <fcntl.h>

#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"

namespace husk {
namespace {

vfs::FileRef NewFile() {
  static vfs::InodeRef root = tmpfs::NewTmpfsRoot();
  static int n = 0;
  vfs::InodeRef f = root->Create("f" + std::to_string(n++), 0644).value();
  return f->Open(O_RDWR).value();
}

TEST(FdTableTest, AddUsesTheLowestFreeNumber) {
  FdTable t;
  EXPECT_EQ(*t.Add(NewFile(), false), 0);
  EXPECT_EQ(*t.Add(NewFile(), false), 1);
  EXPECT_EQ(*t.Add(NewFile(), false), 2);
  ASSERT_OK(t.Remove(1));
  EXPECT_EQ(*t.Add(NewFile(), false), 1);
  EXPECT_EQ(*t.Add(NewFile(), false), 3);
}

TEST(FdTableTest, AddHonoursTheMinimumLikeFDupfd) {
  FdTable t;
  EXPECT_EQ(*t.Add(NewFile(), false, 10), 10);
  EXPECT_EQ(*t.Add(NewFile(), false, 10), 11);
  EXPECT_EQ(*t.Add(NewFile(), false, 5), 5);
  EXPECT_EQ(*t.Add(NewFile(), false), 0);
  EXPECT_ERRNO(t.Add(NewFile(), false, -1), EINVAL);
  EXPECT_ERRNO(t.Add(NewFile(), false, t.limit()), EINVAL);
}

TEST(FdTableTest, TheLimitGivesEmfile) {
  FdTable t;
  t.set_limit(3);
  for (int i = 0; i < 3; i++) ASSERT_OK(t.Add(NewFile(), false));
  EXPECT_ERRNO(t.Add(NewFile(), false), EMFILE);
  EXPECT_ERRNO(t.Add(NewFile(), false, 2), EMFILE);
  EXPECT_ERRNO(t.Set(3, NewFile(), false), EBADF);  // dup2(2): newfd out of range
}

TEST(FdTableTest, SetReplacesAndGetFindsTheSameDescription) {
  FdTable t;
  vfs::FileRef a = NewFile(), b = NewFile();
  ASSERT_OK(t.Set(7, a, false));
  EXPECT_EQ(*t.Get(7), a);
  ASSERT_OK(t.Set(7, b, true));
  EXPECT_EQ(*t.Get(7), b);
  EXPECT_TRUE((*t.GetEntry(7))->cloexec);
  EXPECT_ERRNO(t.Get(6), EBADF);
  EXPECT_ERRNO(t.Get(-1), EBADF);
  EXPECT_ERRNO(t.GetEntry(8), EBADF);
  EXPECT_ERRNO(t.Set(-1, a, false), EBADF);
  // Two descriptors can share one open file description (dup).
  ASSERT_OK(t.Add(a, false));
  EXPECT_EQ(*t.Get(0), a);
}

TEST(FdTableTest, RemoveTwiceIsEbadf) {
  FdTable t;
  int fd = *t.Add(NewFile(), false);
  ASSERT_OK(t.Remove(fd));
  EXPECT_ERRNO(t.Remove(fd), EBADF);
  EXPECT_TRUE(t.entries().empty());
}

TEST(FdTableTest, CloseOnExecDropsOnlyMarkedDescriptors) {
  FdTable t;
  ASSERT_OK(t.Add(NewFile(), false));  // 0
  ASSERT_OK(t.Add(NewFile(), true));   // 1
  ASSERT_OK(t.Add(NewFile(), false));  // 2
  ASSERT_OK(t.Add(NewFile(), true));   // 3
  t.CloseOnExec();
  ASSERT_EQ(t.entries().size(), 2u);
  EXPECT_OK(t.Get(0));
  EXPECT_ERRNO(t.Get(1), EBADF);
  EXPECT_OK(t.Get(2));
  EXPECT_ERRNO(t.Get(3), EBADF);
  EXPECT_EQ(*t.Add(NewFile(), false), 1);
}

}  // namespace
}  // namespace husk
