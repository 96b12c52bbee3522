// Conformance: stat, lstat, fstat, newfstatat, statx, access/faccessat/faccessat2,
// symlink/symlinkat, readlink/readlinkat, symlink-following rules.
// Relies on, beyond the start-up set in test_util.h: stat lstat fstat newfstatat statx access
// faccessat faccessat2 readlink readlinkat symlink symlinkat umask getuid geteuid getegid.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

class StatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    saved_umask_ = umask(022);
    file_ = dir_.Join("file");
    ASSERT_TRUE(WriteFile(file_, "hello", 0644));
  }
  void TearDown() override { umask(saved_umask_); }

  TempDir dir_;
  std::string file_;
  mode_t saved_umask_ = 0;
};

TEST_F(StatTest, RegularFile) {
  struct stat st;
  ASSERT_OK(stat(file_.c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_size, 5);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_gid, getegid());
  EXPECT_GT(st.st_blksize, 0);
  EXPECT_NE(st.st_ino, 0u);
}

TEST_F(StatTest, LegacyStatSyscallsAgreeWithNewfstatat) {
  // glibc implements stat/lstat/fstat with newfstatat; older binaries call these directly.
  ASSERT_OK(symlink("file", dir_.Join("link").c_str()));
  struct stat want, st;
  ASSERT_OK(fstatat(AT_FDCWD, file_.c_str(), &want, 0));
  ASSERT_OK(syscall(SYS_stat, file_.c_str(), &st));
  EXPECT_EQ(st.st_ino, want.st_ino);
  EXPECT_EQ(st.st_size, 5);
  ASSERT_OK(syscall(SYS_stat, dir_.Join("link").c_str(), &st));
  EXPECT_EQ(st.st_ino, want.st_ino);
  ASSERT_OK(syscall(SYS_lstat, dir_.Join("link").c_str(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  Fd fd(open(file_.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_OK(syscall(SYS_fstat, fd.get(), &st));
  EXPECT_EQ(st.st_ino, want.st_ino);
  EXPECT_ERRNO(syscall(SYS_stat, dir_.Join("missing").c_str(), &st), ENOENT);
  EXPECT_ERRNO(syscall(SYS_fstat, -1, &st), EBADF);
}

TEST_F(StatTest, DirectoryLinkCountCountsSubdirectories) {
  std::string d = dir_.Join("d");
  ASSERT_OK(mkdir(d.c_str(), 0755));
  struct stat st;
  ASSERT_OK(stat(d.c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_nlink, 2u);  // "." and the entry in the parent.
  ASSERT_OK(mkdir((d + "/sub").c_str(), 0755));
  ASSERT_OK(stat(d.c_str(), &st));
  EXPECT_EQ(st.st_nlink, 3u);  // Plus "sub/..".
}

TEST_F(StatTest, FstatMatchesStatAndTracksSize) {
  Fd fd(open(file_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  struct stat by_path, by_fd;
  ASSERT_OK(stat(file_.c_str(), &by_path));
  ASSERT_OK(fstat(fd.get(), &by_fd));
  EXPECT_EQ(by_path.st_dev, by_fd.st_dev);
  EXPECT_EQ(by_path.st_ino, by_fd.st_ino);
  ASSERT_EQ(write(fd.get(), " world", 6), 6);
  ASSERT_OK(fstat(fd.get(), &by_fd));
  EXPECT_EQ(by_fd.st_size, 11);
}

TEST_F(StatTest, SymlinkLstatVersusStat) {
  std::string link = dir_.Join("link");
  ASSERT_OK(symlink("file", link.c_str()));
  struct stat l, s, f;
  ASSERT_OK(lstat(link.c_str(), &l));
  EXPECT_TRUE(S_ISLNK(l.st_mode));
  EXPECT_EQ(l.st_size, 4);  // The length of the target, without a NUL.
  ASSERT_OK(stat(link.c_str(), &s));
  ASSERT_OK(stat(file_.c_str(), &f));
  EXPECT_TRUE(S_ISREG(s.st_mode));
  EXPECT_EQ(s.st_ino, f.st_ino);
  EXPECT_NE(l.st_ino, f.st_ino);
}

TEST_F(StatTest, TrailingSlashFollowsSymlinkToDirectory) {
  ASSERT_OK(mkdir(dir_.Join("d").c_str(), 0755));
  std::string link = dir_.Join("dlink");
  ASSERT_OK(symlink("d", link.c_str()));
  struct stat st;
  ASSERT_OK(lstat(link.c_str(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_OK(lstat((link + "/").c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(StatTest, MissingAndEmptyPathsFailWithENOENT) {
  struct stat st;
  EXPECT_ERRNO(stat(dir_.Join("missing").c_str(), &st), ENOENT);
  EXPECT_ERRNO(lstat(dir_.Join("missing").c_str(), &st), ENOENT);
  EXPECT_ERRNO(stat("", &st), ENOENT);
}

TEST_F(StatTest, FileAsDirectoryComponentFailsWithENOTDIR) {
  struct stat st;
  EXPECT_ERRNO(stat((file_ + "/x").c_str(), &st), ENOTDIR);
  EXPECT_ERRNO(stat((file_ + "/").c_str(), &st), ENOTDIR);
  EXPECT_ERRNO(stat((file_ + "/.").c_str(), &st), ENOTDIR);
}

TEST_F(StatTest, FstatatFlags) {
  Fd dirfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dirfd.valid());
  ASSERT_OK(symlink("file", dir_.Join("link").c_str()));
  struct stat st, want;
  ASSERT_OK(stat(file_.c_str(), &want));
  ASSERT_OK(fstatat(dirfd.get(), "file", &st, 0));
  EXPECT_EQ(st.st_ino, want.st_ino);
  ASSERT_OK(fstatat(dirfd.get(), "link", &st, AT_SYMLINK_NOFOLLOW));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  Fd fd(open(file_.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_OK(fstatat(fd.get(), "", &st, AT_EMPTY_PATH));
  EXPECT_EQ(st.st_ino, want.st_ino);
  EXPECT_ERRNO(fstatat(fd.get(), "", &st, 0), ENOENT);
  EXPECT_ERRNO(fstatat(dirfd.get(), "file", &st, 0x1), EINVAL);  // Unknown flag.
}

TEST_F(StatTest, StatxBasicStats) {
  struct statx stx;
  struct stat st;
  ASSERT_OK(stat(file_.c_str(), &st));
  ASSERT_OK(statx(AT_FDCWD, file_.c_str(), 0, STATX_BASIC_STATS, &stx));
  const unsigned want = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_INO | STATX_SIZE;
  EXPECT_EQ(stx.stx_mask & want, want);
  EXPECT_EQ(stx.stx_mode, st.st_mode);
  EXPECT_EQ(stx.stx_ino, st.st_ino);
  EXPECT_EQ(stx.stx_size, 5u);
  EXPECT_EQ(stx.stx_nlink, 1u);
  EXPECT_EQ(makedev(stx.stx_dev_major, stx.stx_dev_minor), st.st_dev);
}

TEST_F(StatTest, StatxSymlinkAndErrors) {
  ASSERT_OK(symlink("file", dir_.Join("link").c_str()));
  struct statx stx;
  ASSERT_OK(statx(AT_FDCWD, dir_.Join("link").c_str(), AT_SYMLINK_NOFOLLOW, STATX_TYPE, &stx));
  EXPECT_TRUE(S_ISLNK(stx.stx_mode));
  EXPECT_ERRNO(statx(AT_FDCWD, dir_.Join("missing").c_str(), 0, STATX_BASIC_STATS, &stx), ENOENT);
  EXPECT_ERRNO(statx(AT_FDCWD, file_.c_str(), 0, 0x80000000u, &stx), EINVAL);  // Reserved bit.
}

TEST_F(StatTest, AccessModes) {
  EXPECT_EQ(access(file_.c_str(), F_OK), 0);
  EXPECT_EQ(access(file_.c_str(), R_OK | W_OK), 0);
  // Even root needs an execute bit to get X_OK on a regular file (access(2)).
  EXPECT_ERRNO(access(file_.c_str(), X_OK), EACCES);
  EXPECT_EQ(access(dir_.path().c_str(), X_OK), 0);
  EXPECT_ERRNO(access(dir_.Join("missing").c_str(), F_OK), ENOENT);
  EXPECT_ERRNO(access(file_.c_str(), 8), EINVAL);  // Mode outside R_OK|W_OK|X_OK.
}

TEST_F(StatTest, AccessToReadOnlyFileDependsOnPrivilege) {
  std::string ro = dir_.Join("ro");
  ASSERT_TRUE(WriteFile(ro, "x", 0444));
  EXPECT_EQ(access(ro.c_str(), R_OK), 0);
  if (getuid() == 0) {
    EXPECT_EQ(access(ro.c_str(), W_OK), 0);  // CAP_DAC_OVERRIDE.
  } else {
    EXPECT_ERRNO(access(ro.c_str(), W_OK), EACCES);
  }
}

TEST_F(StatTest, FaccessatWithDirfdAndFlags) {
  Fd dirfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dirfd.valid());
  EXPECT_EQ(faccessat(dirfd.get(), "file", R_OK, 0), 0);
  // With flags glibc calls faccessat2.
  EXPECT_EQ(faccessat(dirfd.get(), "file", R_OK, AT_EACCESS), 0);
  ASSERT_OK(symlink("missing", dir_.Join("dangling").c_str()));
  EXPECT_ERRNO(faccessat(dirfd.get(), "dangling", F_OK, 0), ENOENT);
  EXPECT_EQ(faccessat(dirfd.get(), "dangling", F_OK, AT_SYMLINK_NOFOLLOW), 0);
  EXPECT_ERRNO(syscall(SYS_faccessat2, dirfd.get(), "file", F_OK, 0x1), EINVAL);
  // The original faccessat has no flags argument; glibc no longer calls it.
  EXPECT_EQ(syscall(SYS_faccessat, dirfd.get(), "file", R_OK), 0);
  EXPECT_ERRNO(syscall(SYS_faccessat, dirfd.get(), "missing", F_OK), ENOENT);
}

TEST_F(StatTest, ReadlinkReturnsTargetWithoutNul) {
  ASSERT_OK(symlink("some/target", dir_.Join("link").c_str()));
  char buf[64];
  memset(buf, 'x', sizeof(buf));
  EXPECT_EQ(readlink(dir_.Join("link").c_str(), buf, sizeof(buf)), 11);
  EXPECT_EQ(std::string(buf, 11), "some/target");
  EXPECT_EQ(buf[11], 'x');  // Not NUL-terminated.
  // A short buffer truncates silently.
  EXPECT_EQ(readlink(dir_.Join("link").c_str(), buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "some");
}

TEST_F(StatTest, ReadlinkErrors) {
  char buf[64];
  EXPECT_ERRNO(readlink(file_.c_str(), buf, sizeof(buf)), EINVAL);  // Not a symlink.
  EXPECT_ERRNO(readlink(dir_.Join("missing").c_str(), buf, sizeof(buf)), ENOENT);
  ASSERT_OK(symlink("file", dir_.Join("link").c_str()));
  EXPECT_ERRNO(syscall(SYS_readlink, dir_.Join("link").c_str(), buf, 0), EINVAL);
}

TEST_F(StatTest, ReadlinkatRelativeToDirfd) {
  ASSERT_OK(symlinkat("file", AT_FDCWD, dir_.Join("link").c_str()));
  Fd dirfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dirfd.valid());
  ASSERT_OK(symlinkat("file", dirfd.get(), "link2"));
  char buf[16];
  EXPECT_EQ(readlinkat(dirfd.get(), "link", buf, sizeof(buf)), 4);
  EXPECT_EQ(readlinkat(dirfd.get(), "link2", buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "file");
}

TEST_F(StatTest, SymlinkOntoExistingNameFailsWithEEXIST) {
  EXPECT_ERRNO(symlink("anything", file_.c_str()), EEXIST);
  EXPECT_ERRNO(symlink("anything", dir_.Join("nodir/link").c_str()), ENOENT);
}

TEST_F(StatTest, DanglingSymlink) {
  std::string link = dir_.Join("dangling");
  ASSERT_OK(symlink("missing", link.c_str()));
  struct stat st;
  EXPECT_ERRNO(stat(link.c_str(), &st), ENOENT);
  ASSERT_OK(lstat(link.c_str(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_ERRNO(open(link.c_str(), O_RDONLY), ENOENT);
  // O_CREAT through a dangling symlink creates the target.
  Fd fd(open(link.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  EXPECT_EQ(access(dir_.Join("missing").c_str(), F_OK), 0);
}

TEST_F(StatTest, SymlinkLoopFailsWithELOOP) {
  ASSERT_OK(symlink("b", dir_.Join("a").c_str()));
  ASSERT_OK(symlink("a", dir_.Join("b").c_str()));
  struct stat st;
  EXPECT_ERRNO(stat(dir_.Join("a").c_str(), &st), ELOOP);
  EXPECT_ERRNO(open(dir_.Join("a").c_str(), O_RDONLY), ELOOP);
  EXPECT_ERRNO(stat(dir_.Join("a/x").c_str(), &st), ELOOP);
  ASSERT_OK(lstat(dir_.Join("a").c_str(), &st));
}

TEST_F(StatTest, SymlinkChainLimitIsForty) {
  // path_resolution(7): at most 40 symlinks are followed in one lookup.
  ASSERT_OK(symlink("file", dir_.Join("l0").c_str()));
  for (int i = 1; i <= 40; ++i) {
    std::string target = "l" + std::to_string(i - 1);
    ASSERT_OK(symlink(target.c_str(), dir_.Join("l" + std::to_string(i)).c_str()));
  }
  struct stat st;
  EXPECT_EQ(stat(dir_.Join("l39").c_str(), &st), 0) << ErrnoName(errno);  // 40 links.
  EXPECT_ERRNO(stat(dir_.Join("l40").c_str(), &st), ELOOP);               // 41 links.
}

TEST_F(StatTest, NoFollowOnSymlinkFailsWithELOOP) {
  ASSERT_OK(symlink("file", dir_.Join("link").c_str()));
  EXPECT_ERRNO(open(dir_.Join("link").c_str(), O_RDONLY | O_NOFOLLOW), ELOOP);
  Fd fd(open(file_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  EXPECT_TRUE(fd.valid());  // Only the last component is concerned.
}

}  // namespace
}  // namespace husk_test
