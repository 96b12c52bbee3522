// Conformance: directories and names: mkdir/mkdirat, rmdir, unlink/unlinkat, rename/renameat,
// getdents64, getcwd, chdir/fchdir, and path resolution of ".", ".." and trailing slashes.
// Relies on, beyond the start-up set in test_util.h: chdir fchdir getcwd getdents64 lseek mkdir
// mkdirat pread64 pwrite64 readlink rename renameat rmdir symlink umask unlink unlinkat.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
#include <cstring>
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

class DirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    saved_umask_ = umask(022);
    cwd_.Reset(open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(cwd_.valid()) << ErrnoName(errno);
  }
  void TearDown() override {
    umask(saved_umask_);
    EXPECT_EQ(fchdir(cwd_.get()), 0);
  }
  std::string P(const std::string& name) const { return dir_.Join(name); }
  bool Exists(const std::string& name) const { return access(P(name).c_str(), F_OK) == 0; }

  TempDir dir_;
  Fd cwd_;
  mode_t saved_umask_ = 0;
};

// Entries of a directory fd, name -> d_type, read with raw getdents64.
std::map<std::string, int> ListDir(int fd, size_t bufsize = 4096) {
  std::map<std::string, int> out;
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, bufsize);
    if (n <= 0) {
      EXPECT_EQ(n, 0) << ErrnoName(errno);
      break;
    }
    for (long off = 0; off < n;) {
      // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[].
      unsigned short reclen;
      memcpy(&reclen, buf + off + 16, sizeof(reclen));
      out[std::string(buf + off + 19)] = static_cast<unsigned char>(buf[off + 18]);
      off += reclen;
    }
  }
  return out;
}

TEST_F(DirTest, MkdirExistingNameFailsWithEEXIST) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  EXPECT_ERRNO(mkdir(P("d").c_str(), 0755), EEXIST);
  ASSERT_TRUE(WriteFile(P("f"), ""));
  EXPECT_ERRNO(mkdir(P("f").c_str(), 0755), EEXIST);
  ASSERT_OK(symlink("missing", P("dangling").c_str()));
  EXPECT_ERRNO(mkdir(P("dangling").c_str(), 0755), EEXIST);  // mkdir never follows.
}

TEST_F(DirTest, MkdirBadParentFails) {
  EXPECT_ERRNO(mkdir(P("missing/d").c_str(), 0755), ENOENT);
  ASSERT_TRUE(WriteFile(P("f"), ""));
  EXPECT_ERRNO(mkdir(P("f/d").c_str(), 0755), ENOTDIR);
}

TEST_F(DirTest, MkdirAppliesUmaskAndAcceptsTrailingSlash) {
  umask(027);
  ASSERT_OK(mkdir(P("d/").c_str(), 0777));
  struct stat st;
  ASSERT_OK(stat(P("d").c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
}

TEST_F(DirTest, MkdiratRelativeToDirfd) {
  Fd dirfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dirfd.valid());
  ASSERT_OK(mkdirat(dirfd.get(), "sub", 0755));
  EXPECT_TRUE(Exists("sub"));
  EXPECT_ERRNO(mkdirat(dirfd.get(), "sub", 0755), EEXIST);
}

TEST_F(DirTest, RmdirNonEmptyFailsWithENOTEMPTY) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("d/f"), ""));
  EXPECT_ERRNO(rmdir(P("d").c_str()), ENOTEMPTY);
  ASSERT_OK(unlink(P("d/f").c_str()));
  EXPECT_EQ(rmdir(P("d").c_str()), 0);
  EXPECT_FALSE(Exists("d"));
}

TEST_F(DirTest, RmdirErrors) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  EXPECT_ERRNO(rmdir(P("f").c_str()), ENOTDIR);
  EXPECT_ERRNO(rmdir(P("missing").c_str()), ENOENT);
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  // rmdir(2): a last component of "." is EINVAL, ".." is ENOTEMPTY.
  EXPECT_ERRNO(rmdir(P("d/.").c_str()), EINVAL);
  EXPECT_ERRNO(rmdir(P("d/..").c_str()), ENOTEMPTY);
  ASSERT_OK(symlink("d", P("dlink").c_str()));
  EXPECT_ERRNO(rmdir(P("dlink").c_str()), ENOTDIR);  // Not followed.
}

TEST_F(DirTest, UnlinkRemovesNameOnly) {
  ASSERT_TRUE(WriteFile(P("f"), "data"));
  ASSERT_OK(symlink("f", P("link").c_str()));
  ASSERT_OK(unlink(P("link").c_str()));
  EXPECT_FALSE(Exists("link"));
  EXPECT_TRUE(Exists("f"));  // The target survives.
  ASSERT_OK(unlink(P("f").c_str()));
  EXPECT_ERRNO(open(P("f").c_str(), O_RDONLY), ENOENT);
  EXPECT_ERRNO(unlink(P("f").c_str()), ENOENT);
}

TEST_F(DirTest, UnlinkedOpenFileStaysUsable) {
  Fd fd(open(P("f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(unlink(P("f").c_str()));
  ASSERT_EQ(pwrite(fd.get(), "still here", 10, 0), 10);
  char buf[10];
  ASSERT_EQ(pread(fd.get(), buf, 10, 0), 10);
  EXPECT_EQ(std::string(buf, 10), "still here");
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 0u);
}

TEST_F(DirTest, UnlinkDirectoryFailsWithEISDIR) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  // POSIX allows EPERM; Linux says EISDIR (unlink(2)).
  EXPECT_ERRNO(unlink(P("d").c_str()), EISDIR);
}

TEST_F(DirTest, UnlinkatFlags) {
  Fd dirfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dirfd.valid());
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("f"), ""));
  EXPECT_ERRNO(unlinkat(dirfd.get(), "d", 0), EISDIR);
  EXPECT_ERRNO(unlinkat(dirfd.get(), "f", AT_REMOVEDIR), ENOTDIR);
  EXPECT_ERRNO(unlinkat(dirfd.get(), "f", 0x1), EINVAL);  // Unknown flag.
  EXPECT_EQ(unlinkat(dirfd.get(), "d", AT_REMOVEDIR), 0);
  EXPECT_EQ(unlinkat(dirfd.get(), "f", 0), 0);
  EXPECT_FALSE(Exists("d"));
  EXPECT_FALSE(Exists("f"));
}

TEST_F(DirTest, RenameReplacesExistingFile) {
  ASSERT_TRUE(WriteFile(P("a"), "from a"));
  ASSERT_TRUE(WriteFile(P("b"), "from b"));
  struct stat before;
  ASSERT_OK(stat(P("a").c_str(), &before));
  ASSERT_OK(rename(P("a").c_str(), P("b").c_str()));
  EXPECT_FALSE(Exists("a"));
  EXPECT_EQ(ReadFile(P("b")), "from a");
  struct stat after;
  ASSERT_OK(stat(P("b").c_str(), &after));
  EXPECT_EQ(after.st_ino, before.st_ino);
}

TEST_F(DirTest, RenameOntoItselfDoesNothing) {
  ASSERT_TRUE(WriteFile(P("a"), "data"));
  EXPECT_EQ(rename(P("a").c_str(), P("a").c_str()), 0);
  EXPECT_EQ(ReadFile(P("a")), "data");
}

TEST_F(DirTest, RenameMovesDirectoryWithContents) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(mkdir(P("d/sub").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("d/sub/f"), "deep"));
  ASSERT_OK(mkdir(P("empty").c_str(), 0755));
  ASSERT_OK(rename(P("d").c_str(), P("empty").c_str()));  // An empty directory is replaced.
  EXPECT_FALSE(Exists("d"));
  EXPECT_EQ(ReadFile(P("empty/sub/f")), "deep");
}

TEST_F(DirTest, RenameTypeMismatchesFail) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(mkdir(P("full").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("full/x"), ""));
  EXPECT_ERRNO(rename(P("f").c_str(), P("d").c_str()), EISDIR);
  EXPECT_ERRNO(rename(P("d").c_str(), P("f").c_str()), ENOTDIR);
  EXPECT_ERRNO(rename(P("d").c_str(), P("full").c_str()), ENOTEMPTY);
  EXPECT_ERRNO(rename(P("missing").c_str(), P("x").c_str()), ENOENT);
  EXPECT_ERRNO(rename(P("f").c_str(), P("missing/x").c_str()), ENOENT);
}

TEST_F(DirTest, RenameDirectoryIntoItselfFailsWithEINVAL) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(mkdir(P("d/sub").c_str(), 0755));
  EXPECT_ERRNO(rename(P("d").c_str(), P("d/sub/new").c_str()), EINVAL);
  EXPECT_ERRNO(rename(P("d").c_str(), P("d/new").c_str()), EINVAL);
}

TEST_F(DirTest, RenameatWithDirfds) {
  ASSERT_OK(mkdir(P("src").c_str(), 0755));
  ASSERT_OK(mkdir(P("dst").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("src/f"), "moved"));
  Fd src(open(P("src").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  Fd dst(open(P("dst").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(src.valid() && dst.valid());
  ASSERT_OK(renameat(src.get(), "f", dst.get(), "g"));
  EXPECT_FALSE(Exists("src/f"));
  EXPECT_EQ(ReadFile(P("dst/g")), "moved");
}

TEST_F(DirTest, Getdents64ListsEntriesWithTypes) {
  ASSERT_TRUE(WriteFile(P("a"), ""));
  ASSERT_TRUE(WriteFile(P("b"), ""));
  ASSERT_OK(mkdir(P("c").c_str(), 0755));
  ASSERT_OK(symlink("a", P("l").c_str()));
  Fd fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  std::map<std::string, int> want = {{".", DT_DIR}, {"..", DT_DIR}, {"a", DT_REG},
                                     {"b", DT_REG}, {"c", DT_DIR},  {"l", DT_LNK}};
  EXPECT_EQ(ListDir(fd.get()), want);
}

// The legacy getdents(2): struct linux_dirent {u64 ino, s64 off, u16 reclen,
// char name[], then a NUL and the type as the record's last byte}.
// Sanitizers' thread listing (/proc/self/task) still uses it.
TEST_F(DirTest, LegacyGetdentsPutsTheTypeLast) {
  ASSERT_TRUE(WriteFile(P("file"), ""));
  ASSERT_OK(mkdir(P("dir").c_str(), 0755));
  Fd fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  std::map<std::string, int> got;
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents, fd.get(), buf, sizeof(buf));
    ASSERT_GE(n, 0) << ErrnoName(errno);
    if (n == 0) break;
    for (long off = 0; off < n;) {
      unsigned short reclen;
      memcpy(&reclen, buf + off + 16, sizeof(reclen));
      ASSERT_EQ(reclen % 8, 0);
      got[std::string(buf + off + 18)] = static_cast<unsigned char>(buf[off + reclen - 1]);
      off += reclen;
    }
  }
  std::map<std::string, int> want = {
      {".", DT_DIR}, {"..", DT_DIR}, {"file", DT_REG}, {"dir", DT_DIR}};
  EXPECT_EQ(got, want);
  // A buffer too small for the next entry.
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  EXPECT_ERRNO(syscall(SYS_getdents, fd.get(), buf, 1), EINVAL);
}

TEST_F(DirTest, Getdents64SmallBufferStillListsEverything) {
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(WriteFile(P("file" + std::to_string(i)), ""));
  Fd fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(ListDir(fd.get(), 64).size(), 52u);  // One or two entries per call.
}

TEST_F(DirTest, Getdents64AtEndReturnsZeroAndRewinds) {
  ASSERT_TRUE(WriteFile(P("a"), ""));
  Fd fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(ListDir(fd.get()).size(), 3u);
  alignas(8) char buf[1024];
  EXPECT_EQ(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)), 0);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  EXPECT_EQ(ListDir(fd.get()).size(), 3u);
}

TEST_F(DirTest, Getdents64Errors) {
  ASSERT_TRUE(WriteFile(P("a"), ""));
  Fd file(open(P("a").c_str(), O_RDONLY | O_CLOEXEC));
  Fd dir(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(file.valid() && dir.valid());
  alignas(8) char buf[1024];
  EXPECT_ERRNO(syscall(SYS_getdents64, file.get(), buf, sizeof(buf)), ENOTDIR);
  EXPECT_ERRNO(syscall(SYS_getdents64, dir.get(), buf, 1), EINVAL);  // Too small for one entry.
  EXPECT_ERRNO(syscall(SYS_getdents64, -1, buf, sizeof(buf)), EBADF);
}

TEST_F(DirTest, ChdirThenGetcwdAndRelativePaths) {
  char real[PATH_MAX];
  ASSERT_NE(realpath(dir_.path().c_str(), real), nullptr);
  ASSERT_OK(mkdir(P("sub").c_str(), 0755));
  ASSERT_OK(chdir(dir_.path().c_str()));
  char buf[PATH_MAX];
  ASSERT_NE(getcwd(buf, sizeof(buf)), nullptr);
  EXPECT_STREQ(buf, real);
  ASSERT_TRUE(WriteFile("rel", "relative"));  // Lands in the new cwd.
  EXPECT_EQ(ReadFile(P("rel")), "relative");
  ASSERT_OK(chdir("sub"));
  ASSERT_NE(getcwd(buf, sizeof(buf)), nullptr);
  EXPECT_EQ(std::string(buf), std::string(real) + "/sub");
  ASSERT_OK(chdir(".."));
  ASSERT_NE(getcwd(buf, sizeof(buf)), nullptr);
  EXPECT_STREQ(buf, real);
}

TEST_F(DirTest, GetcwdSyscallLengthAndErange) {
  char buf[PATH_MAX];
  ASSERT_OK(chdir(dir_.path().c_str()));
  // The raw syscall returns the length including the NUL.
  long n = syscall(SYS_getcwd, buf, sizeof(buf));
  ASSERT_GT(n, 0);
  EXPECT_EQ(static_cast<size_t>(n), strlen(buf) + 1);
  EXPECT_ERRNO(syscall(SYS_getcwd, buf, 1), ERANGE);
}

TEST_F(DirTest, GetcwdOfRemovedDirectoryFailsWithENOENT) {
  ASSERT_OK(mkdir(P("gone").c_str(), 0755));
  ASSERT_OK(chdir(P("gone").c_str()));
  ASSERT_OK(rmdir(P("gone").c_str()));
  char buf[PATH_MAX];
  EXPECT_ERRNO(syscall(SYS_getcwd, buf, sizeof(buf)), ENOENT);
  Fd fd(open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));  // "." still names it.
  EXPECT_TRUE(fd.valid());
  EXPECT_ERRNO(open("new", O_WRONLY | O_CREAT, 0644), ENOENT);  // No creating in it.
}

TEST_F(DirTest, ChdirAndFchdirErrors) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  EXPECT_ERRNO(chdir(P("f").c_str()), ENOTDIR);
  EXPECT_ERRNO(chdir(P("missing").c_str()), ENOENT);
  Fd file(open(P("f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file.valid());
  EXPECT_ERRNO(fchdir(file.get()), ENOTDIR);
  EXPECT_ERRNO(fchdir(-1), EBADF);
}

TEST_F(DirTest, FchdirChangesRelativeLookups) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("d/f"), "in d"));
  Fd d(open(P("d").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(d.valid());
  ASSERT_OK(fchdir(d.get()));
  EXPECT_EQ(ReadFile("f"), "in d");
  EXPECT_EQ(ReadFile("./f"), "in d");
}

TEST_F(DirTest, DotAndDotDotResolution) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(mkdir(P("d/sub").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("d/f"), "f"));
  EXPECT_EQ(ReadFile(P("d/sub/../f")), "f");
  EXPECT_EQ(ReadFile(P("d/./sub/.././f")), "f");
  EXPECT_EQ(ReadFile(P("d//sub///..//f")), "f");
  struct stat a, b;
  ASSERT_OK(stat("/", &a));
  ASSERT_OK(stat("/..", &b));  // ".." of the root is the root.
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_dev, b.st_dev);
  EXPECT_ERRNO(stat(P("missing/..").c_str(), &a), ENOENT);  // ".." is not lexical.
  EXPECT_ERRNO(stat(P("d/f/..").c_str(), &a), ENOTDIR);
}

TEST_F(DirTest, TrailingSlashes) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("f"), ""));
  struct stat st;
  EXPECT_EQ(stat(P("d/").c_str(), &st), 0);
  EXPECT_EQ(stat(P("d//").c_str(), &st), 0);
  EXPECT_ERRNO(stat(P("f/").c_str(), &st), ENOTDIR);
  EXPECT_ERRNO(open(P("f/").c_str(), O_RDONLY), ENOTDIR);
  EXPECT_ERRNO(unlink(P("f/").c_str()), ENOTDIR);
  EXPECT_EQ(rmdir(P("d/").c_str()), 0);
}

}  // namespace
}  // namespace husk_test
