// Extended attributes: user.* set, got, listed and removed through paths,
// symlinks and fds; the flags and the size protocol (0 asks for the size,
// too small is ERANGE); name and value limits; trusted.* out of reach of a
// process without CAP_SYS_ADMIN in the host's user namespace; user.* only on
// regular files and directories; permission bits; attributes belong to the
// inode (kept by rename and link).
//
// Syscalls: setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr
//           listxattr llistxattr flistxattr removexattr lremovexattr
//           fremovexattr open symlink mkfifo link rename fork setresuid
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <set>
#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

class XattrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFile(P("f"), "data"));
    // Some hosts' /tmp does not keep user attributes at all.
    if (setxattr(P("f").c_str(), "user.probe", "", 0, 0) != 0 && errno == EOPNOTSUPP) {
      GTEST_SKIP() << "the test directory's filesystem has no user xattrs";
    }
    ASSERT_OK(removexattr(P("f").c_str(), "user.probe"));
  }
  std::string P(const std::string& name) const { return dir_.Join(name); }
  std::string Get(const std::string& path, const char* name) {
    char buf[256];
    ssize_t n = getxattr(path.c_str(), name, buf, sizeof(buf));
    return n < 0 ? "<" + ErrnoName(errno) + ">" : std::string(buf, static_cast<size_t>(n));
  }
  std::set<std::string> List(const std::string& path) {
    char buf[4096];
    ssize_t n = llistxattr(path.c_str(), buf, sizeof(buf));
    std::set<std::string> names;
    for (ssize_t i = 0; i < n;) {
      std::string name(buf + i);
      names.insert(name);
      i += static_cast<ssize_t>(name.size()) + 1;
    }
    return names;
  }
  TempDir dir_;
};

TEST_F(XattrTest, SetGetListRemove) {
  const std::string f = P("f");
  ASSERT_OK(setxattr(f.c_str(), "user.colour", "blue", 4, 0));
  ASSERT_OK(setxattr(f.c_str(), "user.empty", "", 0, 0));
  EXPECT_EQ(Get(f, "user.colour"), "blue");
  EXPECT_EQ(Get(f, "user.empty"), "");
  // Size 0 asks for the size; a buffer too small is ERANGE.
  EXPECT_EQ(getxattr(f.c_str(), "user.colour", nullptr, 0), 4);
  char small[2];
  EXPECT_EQ(getxattr(f.c_str(), "user.colour", small, sizeof(small)), -1);
  EXPECT_EQ(errno, ERANGE);
  EXPECT_EQ(List(f), (std::set<std::string>{"user.colour", "user.empty"}));
  const ssize_t need = listxattr(f.c_str(), nullptr, 0);
  EXPECT_EQ(need, static_cast<ssize_t>(sizeof("user.colour") + sizeof("user.empty")));
  char tiny[4];
  EXPECT_EQ(listxattr(f.c_str(), tiny, sizeof(tiny)), -1);
  EXPECT_EQ(errno, ERANGE);
  // Replaced, then removed.
  ASSERT_OK(setxattr(f.c_str(), "user.colour", "green", 5, 0));
  EXPECT_EQ(Get(f, "user.colour"), "green");
  ASSERT_OK(removexattr(f.c_str(), "user.colour"));
  EXPECT_EQ(Get(f, "user.colour"), "<ENODATA>");
  EXPECT_EQ(removexattr(f.c_str(), "user.colour"), -1);
  EXPECT_EQ(errno, ENODATA);
  EXPECT_EQ(List(f), (std::set<std::string>{"user.empty"}));
}

TEST_F(XattrTest, CreateAndReplaceFlags) {
  const std::string f = P("f");
  ASSERT_OK(setxattr(f.c_str(), "user.a", "1", 1, XATTR_CREATE));
  EXPECT_EQ(setxattr(f.c_str(), "user.a", "2", 1, XATTR_CREATE), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(setxattr(f.c_str(), "user.b", "2", 1, XATTR_REPLACE), -1);
  EXPECT_EQ(errno, ENODATA);
  ASSERT_OK(setxattr(f.c_str(), "user.a", "3", 1, XATTR_REPLACE));
  EXPECT_EQ(Get(f, "user.a"), "3");
  EXPECT_EQ(setxattr(f.c_str(), "user.a", "4", 1, 4), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(Get(f, "user.a"), "3");
}

TEST_F(XattrTest, NamesAndSizesHaveLimits) {
  const std::string f = P("f");
  EXPECT_EQ(setxattr(f.c_str(), "", "x", 1, 0), -1);
  EXPECT_EQ(errno, ERANGE);
  std::string longest = "user." + std::string(250, 'n');  // 255 bytes
  ASSERT_OK(setxattr(f.c_str(), longest.c_str(), "x", 1, 0));
  std::string too_long = longest + "n";
  EXPECT_EQ(setxattr(f.c_str(), too_long.c_str(), "x", 1, 0), -1);
  EXPECT_EQ(errno, ERANGE);
  EXPECT_EQ(getxattr(f.c_str(), too_long.c_str(), nullptr, 0), -1);
  EXPECT_EQ(errno, ERANGE);
  // A bare prefix is EINVAL, an unknown one EOPNOTSUPP.
  EXPECT_EQ(setxattr(f.c_str(), "user.", "x", 1, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(setxattr(f.c_str(), "nosuch.name", "x", 1, 0), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  EXPECT_EQ(getxattr(f.c_str(), "nosuch.name", nullptr, 0), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  // Values up to 64 KiB as far as the VFS goes; past it E2BIG, whatever the
  // filesystem.
  std::string big(65537, 'v');
  EXPECT_EQ(setxattr(f.c_str(), "user.big", big.data(), big.size(), 0), -1);
  EXPECT_EQ(errno, E2BIG);
  // Flags are checked before anything else.
  EXPECT_EQ(setxattr(P("missing").c_str(), "", "x", 1, 8), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(setxattr(P("missing").c_str(), "user.x", "x", 1, 0), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(XattrTest, TrustedNamespaceIsOutOfReach) {
  const std::string f = P("f");
  EXPECT_EQ(setxattr(f.c_str(), "trusted.overlay.opaque", "y", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(Get(f, "trusted.overlay.opaque"), "<ENODATA>");
  EXPECT_EQ(removexattr(f.c_str(), "trusted.x"), -1);
  EXPECT_EQ(errno, EPERM);
}

TEST_F(XattrTest, UserAttributesOnlyOnFilesAndDirectories) {
  ASSERT_OK(symlink("f", P("link").c_str()));
  ASSERT_OK(mkfifo(P("fifo").c_str(), 0600));
  ASSERT_OK(mkdir(P("d").c_str(), 0700));
  EXPECT_EQ(lsetxattr(P("link").c_str(), "user.x", "1", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(lgetxattr(P("link").c_str(), "user.x", nullptr, 0), -1);
  EXPECT_EQ(errno, ENODATA);
  EXPECT_EQ(setxattr(P("fifo").c_str(), "user.x", "1", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  ASSERT_OK(setxattr(P("d").c_str(), "user.x", "dir", 3, 0));
  EXPECT_EQ(Get(P("d"), "user.x"), "dir");
  // Through the symlink: the target's attributes.
  ASSERT_OK(setxattr(P("link").c_str(), "user.via", "link", 4, 0));
  EXPECT_EQ(Get(P("f"), "user.via"), "link");
  EXPECT_TRUE(List(P("link")).empty());  // llistxattr: the link's own, none
}

TEST_F(XattrTest, FdVariants) {
  Fd fd(open(P("f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  // The fd's access mode does not matter, the inode's permissions do.
  ASSERT_OK(fsetxattr(fd.get(), "user.fd", "yes", 3, 0));
  char buf[8];
  EXPECT_EQ(fgetxattr(fd.get(), "user.fd", buf, sizeof(buf)), 3);
  EXPECT_EQ(flistxattr(fd.get(), buf, sizeof(buf)), static_cast<ssize_t>(sizeof("user.fd")));
  ASSERT_OK(fremovexattr(fd.get(), "user.fd"));
  EXPECT_EQ(fgetxattr(fd.get(), "user.fd", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, ENODATA);
  Fd path(open(P("f").c_str(), O_PATH | O_CLOEXEC));
  ASSERT_TRUE(path.valid());
  EXPECT_EQ(fgetxattr(path.get(), "user.fd", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(fgetxattr(-1, "user.fd", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST_F(XattrTest, AttributesBelongToTheInode) {
  ASSERT_OK(setxattr(P("f").c_str(), "user.tag", "kept", 4, 0));
  ASSERT_OK(link(P("f").c_str(), P("g").c_str()));
  EXPECT_EQ(Get(P("g"), "user.tag"), "kept");
  ASSERT_OK(rename(P("f").c_str(), P("h").c_str()));
  EXPECT_EQ(Get(P("h"), "user.tag"), "kept");
  ASSERT_OK(removexattr(P("g").c_str(), "user.tag"));
  EXPECT_EQ(Get(P("h"), "user.tag"), "<ENODATA>");
}

TEST_F(XattrTest, PermissionBitsGuardUserAttributes) {
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("ro"), "x", 0644));
  ASSERT_OK(chmod(P("ro").c_str(), 0644));
  ASSERT_OK(setxattr(P("ro").c_str(), "user.a", "1", 1, 0));
  ASSERT_TRUE(WriteFile(P("none"), "x", 0600));
  ASSERT_OK(chmod(P("none").c_str(), 0600));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(10);
    char buf[4];
    // Readable: get and list work; not writable: set and remove are EACCES.
    if (getxattr(P("ro").c_str(), "user.a", buf, sizeof(buf)) != 1) _exit(11);
    if (setxattr(P("ro").c_str(), "user.a", "2", 1, 0) != -1 || errno != EACCES) _exit(12);
    if (removexattr(P("ro").c_str(), "user.a") != -1 || errno != EACCES) _exit(13);
    // Not readable either: get is EACCES, list still works (no check).
    if (getxattr(P("none").c_str(), "user.a", buf, sizeof(buf)) != -1 || errno != EACCES) _exit(14);
    if (listxattr(P("none").c_str(), nullptr, 0) < 0) _exit(15);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(Get(P("ro"), "user.a"), "1");
}

}  // namespace
}  // namespace husk_test
