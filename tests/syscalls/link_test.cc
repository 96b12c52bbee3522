// link(2) and linkat(2): a second name for the same inode, the flags
// (AT_SYMLINK_FOLLOW, AT_EMPTY_PATH), the errors in Linux's order, and
// fs.protected_hardlinks for an unprivileged caller.
//
// Syscalls: link linkat open unlink stat fstat symlink mkdir fork setresuid
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

class LinkTest : public ::testing::Test {
 protected:
  std::string P(const std::string& name) const { return dir_.Join(name); }
  TempDir dir_;
};

TEST_F(LinkTest, SecondNameIsTheSameInode) {
  ASSERT_TRUE(WriteFile(P("a"), "hello"));
  ASSERT_OK(link(P("a").c_str(), P("b").c_str()));
  struct stat sa {
  }, sb{};
  ASSERT_OK(stat(P("a").c_str(), &sa));
  ASSERT_OK(stat(P("b").c_str(), &sb));
  EXPECT_EQ(sa.st_ino, sb.st_ino);
  EXPECT_EQ(sa.st_dev, sb.st_dev);
  EXPECT_EQ(sa.st_nlink, 2u);
  // Data written through one name is read through the other.
  Fd w(open(P("b").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  ASSERT_TRUE(w.valid()) << ErrnoName(errno);
  ASSERT_EQ(write(w.get(), " world", 6), 6);
  EXPECT_EQ(ReadFile(P("a")), "hello world");
  // Removing one name leaves the other, with one link.
  ASSERT_OK(unlink(P("a").c_str()));
  ASSERT_OK(stat(P("b").c_str(), &sb));
  EXPECT_EQ(sb.st_nlink, 1u);
  EXPECT_EQ(ReadFile(P("b")), "hello world");
}

TEST_F(LinkTest, LinkCountFollowsEveryName) {
  ASSERT_TRUE(WriteFile(P("f"), "x"));
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(link(P("f").c_str(), P("n" + std::to_string(i)).c_str()));
  }
  Fd fd(open(P("f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  struct stat st {};
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 6u);
  for (int i = 0; i < 5; ++i) ASSERT_OK(unlink(P("n" + std::to_string(i)).c_str()));
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(LinkTest, Errors) {
  ASSERT_TRUE(WriteFile(P("f"), "x"));
  ASSERT_TRUE(WriteFile(P("g"), "y"));
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  EXPECT_ERRNO(link(P("f").c_str(), P("g").c_str()), EEXIST);
  EXPECT_ERRNO(link(P("f").c_str(), P("d").c_str()), EEXIST);
  EXPECT_ERRNO(link(P("missing").c_str(), P("h").c_str()), ENOENT);
  EXPECT_ERRNO(link(P("f").c_str(), P("nodir/h").c_str()), ENOENT);
  EXPECT_ERRNO(link(P("f/x").c_str(), P("h").c_str()), ENOTDIR);
  EXPECT_ERRNO(link(P("d").c_str(), P("d2").c_str()), EPERM);
  EXPECT_ERRNO(link("", P("h").c_str()), ENOENT);
  EXPECT_ERRNO(linkat(AT_FDCWD, P("f").c_str(), AT_FDCWD, P("h").c_str(), 0x1000000), EINVAL);
  // The new name is still free after every failure.
  struct stat st {};
  EXPECT_ERRNO(lstat(P("h").c_str(), &st), ENOENT);
  ASSERT_OK(stat(P("f").c_str(), &st));
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(LinkTest, AcrossFilesystemsIsExdev) {
  // /proc is never the filesystem of a temporary directory.
  EXPECT_ERRNO(link("/proc/self/status", P("status").c_str()), EXDEV);
}

TEST_F(LinkTest, SymlinksAreLinkedThemselvesUnlessFollowed) {
  ASSERT_TRUE(WriteFile(P("target"), "t"));
  ASSERT_OK(symlink("target", P("sym").c_str()));
  // link(2) does not follow: the new name is another name of the symlink.
  ASSERT_OK(link(P("sym").c_str(), P("hard-sym").c_str()));
  struct stat st {
  }, target{};
  ASSERT_OK(lstat(P("hard-sym").c_str(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  // AT_SYMLINK_FOLLOW links what it points to.
  ASSERT_OK(
      linkat(AT_FDCWD, P("sym").c_str(), AT_FDCWD, P("hard-target").c_str(), AT_SYMLINK_FOLLOW));
  ASSERT_OK(lstat(P("hard-target").c_str(), &st));
  ASSERT_OK(stat(P("target").c_str(), &target));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_ino, target.st_ino);
  EXPECT_EQ(target.st_nlink, 2u);
}

TEST_F(LinkTest, LinkatRelativeToDirectoryDescriptors) {
  ASSERT_OK(mkdir(P("src").c_str(), 0755));
  ASSERT_OK(mkdir(P("dst").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("src/f"), "data"));
  Fd src(open(P("src").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  Fd dst(open(P("dst").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(src.valid() && dst.valid());
  ASSERT_OK(linkat(src.get(), "f", dst.get(), "g", 0));
  EXPECT_EQ(ReadFile(P("dst/g")), "data");
}

TEST_F(LinkTest, EmptyPathLinksTheOpenFile) {
  // As root (CAP_DAC_READ_SEARCH): the file an fd refers to gets a name.
  ASSERT_TRUE(WriteFile(P("f"), "by fd"));
  Fd fd(open(P("f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(linkat(fd.get(), "", AT_FDCWD, P("g").c_str(), AT_EMPTY_PATH));
  EXPECT_EQ(ReadFile(P("g")), "by fd");
  // Without AT_EMPTY_PATH an empty name is ENOENT.
  EXPECT_ERRNO(linkat(fd.get(), "", AT_FDCWD, P("h").c_str(), 0), ENOENT);
  // A file whose last name is gone cannot get one back.
  ASSERT_OK(unlink(P("f").c_str()));
  ASSERT_OK(unlink(P("g").c_str()));
  EXPECT_ERRNO(linkat(fd.get(), "", AT_FDCWD, P("h").c_str(), AT_EMPTY_PATH), ENOENT);
}

// fs.protected_hardlinks=1 (Debian's default, and husk's rule): nobody may
// link a root-owned file they cannot read and write, but may link one they
// can, and their own files.
TEST_F(LinkTest, ProtectedHardlinksForAnUnprivilegedCaller) {
  {
    std::string v = ReadFile("/proc/sys/fs/protected_hardlinks");
    if (!v.empty() && v[0] == '0') GTEST_SKIP() << "protected_hardlinks is off on this host";
  }
  ASSERT_OK(chmod(dir_.path().c_str(), 0777));
  ASSERT_TRUE(WriteFile(P("secret"), "s", 0600));
  ASSERT_TRUE(WriteFile(P("shared"), "s", 0666));
  ASSERT_OK(chmod(P("shared").c_str(), 0666));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(10);
    if (link(P("secret").c_str(), P("l1").c_str()) != -1 || errno != EPERM) _exit(11);
    if (link(P("shared").c_str(), P("l2").c_str()) != 0) _exit(12);
    int fd = open(P("mine").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0400);
    if (fd < 0) _exit(13);
    close(fd);
    if (link(P("mine").c_str(), P("l3").c_str()) != 0) _exit(14);
    _exit(0);
  }
  int status = Wait(pid);
  EXPECT_TRUE(ExitedWith(status, 0)) << Describe(status);
}

}  // namespace
}  // namespace husk_test
