// Conformance: open/openat flags, read, write, lseek, pread64/pwrite64, readv/writev,
// truncate/ftruncate, umask and ioctl(FIONREAD) on regular files.
// Relies on, beyond the start-up set in test_util.h: open (legacy) ftruncate truncate lseek readv
// writev pwrite64 ioctl(FIONREAD) umask.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>
#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    path_ = dir_.Join("file");
  }
  // Opens path_ after filling it with `contents`.
  Fd OpenWith(const std::string& contents, int flags) {
    EXPECT_TRUE(WriteFile(path_, contents));
    return Fd(open(path_.c_str(), flags | O_CLOEXEC));
  }

  TempDir dir_;
  std::string path_;
};

TEST_F(FileTest, ZeroLengthReadsAskTheFile) {
  ASSERT_TRUE(WriteFile(path_, "data"));
  Fd f(open(path_.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(f.valid());
  char c;
  EXPECT_EQ(read(f.get(), &c, 0), 0);
  EXPECT_EQ(write(f.get(), &c, 0), 0);
  // A directory refuses even an empty read (generic_read_dir).
  Fd d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(d.valid());
  EXPECT_ERRNO(read(d.get(), &c, 0), EISDIR);
}

TEST_F(FileTest, CreatExclOnExistingFileFailsWithEEXIST) {
  ASSERT_TRUE(WriteFile(path_, "x"));
  EXPECT_ERRNO(open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
}

TEST_F(FileTest, CreatExclCreatesNewFile) {
  Fd fd(open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(FileTest, LegacyOpenSyscall) {
  // glibc always uses openat; older static binaries still call open(2) itself.
  ASSERT_TRUE(WriteFile(path_, "x"));
  Fd fd(static_cast<int>(syscall(SYS_open, path_.c_str(), O_RDONLY | O_CLOEXEC)));
  EXPECT_TRUE(fd.valid()) << ErrnoName(errno);
  EXPECT_ERRNO(syscall(SYS_open, path_.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
  EXPECT_ERRNO(syscall(SYS_open, dir_.Join("missing").c_str(), O_RDONLY), ENOENT);
}

TEST_F(FileTest, OpenMissingFileFailsWithENOENT) {
  EXPECT_ERRNO(open(path_.c_str(), O_RDONLY), ENOENT);
}

TEST_F(FileTest, CreatInMissingDirectoryFailsWithENOENT) {
  EXPECT_ERRNO(open(dir_.Join("nodir/file").c_str(), O_WRONLY | O_CREAT, 0644), ENOENT);
}

TEST_F(FileTest, CreatWithTrailingSlashFailsWithEISDIR) {
  // open(2): O_CREAT on "name/" is refused because only a directory may end in a slash.
  EXPECT_ERRNO(open((path_ + "/").c_str(), O_WRONLY | O_CREAT, 0644), EISDIR);
}

TEST_F(FileTest, TruncEmptiesExistingFile) {
  ASSERT_TRUE(WriteFile(path_, "hello"));
  Fd fd(open(path_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(FileTest, AppendWritesAtEndWhateverTheOffset) {
  Fd fd = OpenWith("hello", O_WRONLY | O_APPEND);
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  ASSERT_EQ(write(fd.get(), "xyz", 3), 3);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 8);
  EXPECT_EQ(ReadFile(path_), "helloxyz");
}

TEST_F(FileTest, DirectoryFlagOnRegularFileFailsWithENOTDIR) {
  ASSERT_TRUE(WriteFile(path_, "x"));
  EXPECT_ERRNO(open(path_.c_str(), O_RDONLY | O_DIRECTORY), ENOTDIR);
}

TEST_F(FileTest, OpeningDirectoryForWritingFailsWithEISDIR) {
  EXPECT_ERRNO(open(dir_.path().c_str(), O_WRONLY), EISDIR);
  EXPECT_ERRNO(open(dir_.path().c_str(), O_RDWR), EISDIR);
}

TEST_F(FileTest, ReadingDirectoryFdFailsWithEISDIR) {
  Fd fd(open(dir_.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  char c;
  EXPECT_ERRNO(read(fd.get(), &c, 1), EISDIR);
}

TEST_F(FileTest, PathLongerThanPathMaxFailsWithENAMETOOLONG) {
  std::string path = "/tmp/";
  while (path.size() <= PATH_MAX) path += "a/";
  EXPECT_ERRNO(open(path.c_str(), O_RDONLY), ENAMETOOLONG);
}

TEST_F(FileTest, ComponentLongerThanNameMaxFailsWithENAMETOOLONG) {
  std::string name(NAME_MAX + 1, 'n');
  EXPECT_ERRNO(open(dir_.Join(name).c_str(), O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
}

TEST_F(FileTest, WriteThenReadBackThenEof) {
  Fd fd(open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(write(fd.get(), "hello world", 11), 11);
  EXPECT_EQ(write(fd.get(), "", 0), 0);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  char buf[32] = {};
  EXPECT_EQ(read(fd.get(), buf, sizeof(buf)), 11);
  EXPECT_STREQ(buf, "hello world");
  EXPECT_EQ(read(fd.get(), buf, sizeof(buf)), 0);  // EOF.
}

TEST_F(FileTest, LseekWhenceValues) {
  Fd fd = OpenWith("0123456789", O_RDONLY);
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(lseek(fd.get(), 3, SEEK_SET), 3);
  EXPECT_EQ(lseek(fd.get(), 2, SEEK_CUR), 5);
  EXPECT_EQ(lseek(fd.get(), -1, SEEK_CUR), 4);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_END), 10);
  EXPECT_EQ(lseek(fd.get(), -4, SEEK_END), 6);
  char c;
  ASSERT_EQ(read(fd.get(), &c, 1), 1);
  EXPECT_EQ(c, '6');
}

TEST_F(FileTest, LseekToNegativeOffsetFailsWithEINVAL) {
  Fd fd = OpenWith("0123456789", O_RDONLY);
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(lseek(fd.get(), 4, SEEK_SET), 4);
  EXPECT_ERRNO(lseek(fd.get(), -1, SEEK_SET), EINVAL);
  EXPECT_ERRNO(lseek(fd.get(), -5, SEEK_CUR), EINVAL);
  EXPECT_ERRNO(lseek(fd.get(), -11, SEEK_END), EINVAL);
  EXPECT_ERRNO(lseek(fd.get(), 0, 42), EINVAL);  // Bad whence.
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 4);    // A failed lseek leaves the offset alone.
}

TEST_F(FileTest, WritePastEofLeavesHoleOfZeros) {
  Fd fd(open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(lseek(fd.get(), 10000, SEEK_SET), 10000);  // Seeking past EOF is allowed...
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 0);  // ...and does not change the size.
  ASSERT_EQ(write(fd.get(), "x", 1), 1);
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 10001);
  std::string all = ReadFile(path_);
  ASSERT_EQ(all.size(), 10001u);
  EXPECT_EQ(all.find_first_not_of('\0'), 10000u);
}

TEST_F(FileTest, PreadPwriteDoNotMoveTheOffset) {
  Fd fd = OpenWith("abcdef", O_RDWR);
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(lseek(fd.get(), 1, SEEK_SET), 1);
  char buf[3] = {};
  EXPECT_EQ(pread(fd.get(), buf, 2, 3), 2);
  EXPECT_EQ(std::string(buf, 2), "de");
  EXPECT_EQ(pwrite(fd.get(), "XY", 2, 4), 2);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 1);
  EXPECT_EQ(ReadFile(path_), "abcdXY");
  EXPECT_EQ(pread(fd.get(), buf, sizeof(buf), 6), 0);  // At EOF.
}

TEST_F(FileTest, PreadNegativeOffsetFailsWithEINVAL) {
  Fd fd = OpenWith("abc", O_RDWR);
  ASSERT_TRUE(fd.valid());
  char c;
  EXPECT_ERRNO(pread(fd.get(), &c, 1, -1), EINVAL);
  EXPECT_ERRNO(pwrite(fd.get(), &c, 1, -1), EINVAL);
}

TEST_F(FileTest, ReadvWritevScatterAndGather) {
  Fd fd(open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid());
  char a[] = "abc", b[] = "", c[] = "defgh";
  struct iovec out[3] = {{a, 3}, {b, 0}, {c, 5}};
  EXPECT_EQ(writev(fd.get(), out, 3), 8);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  char x[2], y[10] = {};
  struct iovec in[2] = {{x, 2}, {y, sizeof(y)}};
  EXPECT_EQ(readv(fd.get(), in, 2), 8);
  EXPECT_EQ(std::string(x, 2), "ab");
  EXPECT_EQ(std::string(y, 6), "cdefgh");
}

TEST_F(FileTest, ReadvWithNegativeCountFailsWithEINVAL) {
  Fd fd = OpenWith("abc", O_RDONLY);
  ASSERT_TRUE(fd.valid());
  char x[2];
  struct iovec in[1] = {{x, 2}};
  // Raw syscalls: the glibc prototype lets the compiler reject these bad counts.
  EXPECT_ERRNO(syscall(SYS_readv, fd.get(), in, -1), EINVAL);
  EXPECT_ERRNO(syscall(SYS_readv, fd.get(), in, IOV_MAX + 1), EINVAL);
}

TEST_F(FileTest, WrongAccessModeFailsWithEBADF) {
  Fd ro = OpenWith("abc", O_RDONLY);
  ASSERT_TRUE(ro.valid());
  EXPECT_ERRNO(write(ro.get(), "x", 1), EBADF);
  Fd wo(open(path_.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(wo.valid());
  char c;
  EXPECT_ERRNO(read(wo.get(), &c, 1), EBADF);
}

TEST_F(FileTest, ClosedFdFailsWithEBADF) {
  Fd fd = OpenWith("abc", O_RDWR);
  ASSERT_TRUE(fd.valid());
  int raw = fd.Release();
  ASSERT_EQ(close(raw), 0);
  char c;
  struct stat st;
  EXPECT_ERRNO(read(raw, &c, 1), EBADF);
  EXPECT_ERRNO(write(raw, "x", 1), EBADF);
  EXPECT_ERRNO(lseek(raw, 0, SEEK_SET), EBADF);
  EXPECT_ERRNO(fstat(raw, &st), EBADF);
  EXPECT_ERRNO(close(raw), EBADF);
  EXPECT_ERRNO(close(-1), EBADF);
}

TEST_F(FileTest, FtruncateShrinksAndExtendsWithZeros) {
  Fd fd = OpenWith("abcdef", O_RDWR);
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(ftruncate(fd.get(), 3));
  EXPECT_EQ(ReadFile(path_), "abc");
  ASSERT_OK(ftruncate(fd.get(), 6));
  EXPECT_EQ(ReadFile(path_), std::string("abc\0\0\0", 6));
}

TEST_F(FileTest, TruncateByPath) {
  ASSERT_TRUE(WriteFile(path_, "abcdef"));
  ASSERT_OK(truncate(path_.c_str(), 2));
  EXPECT_EQ(ReadFile(path_), "ab");
  EXPECT_ERRNO(truncate(dir_.Join("missing").c_str(), 0), ENOENT);
  EXPECT_ERRNO(truncate(dir_.path().c_str(), 0), EISDIR);
}

TEST_F(FileTest, FtruncateErrors) {
  Fd ro = OpenWith("abc", O_RDONLY);
  ASSERT_TRUE(ro.valid());
  // Linux answers EINVAL, not EBADF, for an fd not open for writing (ftruncate(2)).
  EXPECT_ERRNO(ftruncate(ro.get(), 0), EINVAL);
  Fd rw(open(path_.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(rw.valid());
  EXPECT_ERRNO(ftruncate(rw.get(), -1), EINVAL);
}

TEST_F(FileTest, UmaskReturnsPreviousValueAndMasksCreatMode) {
  mode_t saved = umask(022);
  EXPECT_EQ(umask(027), 022u);
  Fd fd(open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0777));
  ASSERT_TRUE(fd.valid());
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(umask(saved), 027u);
}

TEST_F(FileTest, FionreadReportsBytesLeft) {
  Fd fd = OpenWith("0123456789", O_RDONLY);
  ASSERT_TRUE(fd.valid());
  int n = -1;
  ASSERT_OK(ioctl(fd.get(), FIONREAD, &n));
  EXPECT_EQ(n, 10);
  ASSERT_EQ(lseek(fd.get(), 7, SEEK_SET), 7);
  ASSERT_OK(ioctl(fd.get(), FIONREAD, &n));
  EXPECT_EQ(n, 3);
}

TEST_F(FileTest, OpenatRelativeToDirectoryFd) {
  Fd dirfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dirfd.valid());
  Fd fd(openat(dirfd.get(), "rel", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  EXPECT_EQ(access(dir_.Join("rel").c_str(), F_OK), 0);
  // An absolute path ignores dirfd, even an invalid one.
  Fd abs(openat(-1, dir_.Join("rel").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(abs.valid()) << ErrnoName(errno);
}

TEST_F(FileTest, OpenatWithFileAsDirfdFailsWithENOTDIR) {
  Fd file = OpenWith("x", O_RDONLY);
  ASSERT_TRUE(file.valid());
  EXPECT_ERRNO(openat(file.get(), "x", O_RDONLY), ENOTDIR);
  EXPECT_ERRNO(openat(1000000, "x", O_RDONLY), EBADF);
}

// sendfile(2) reads only from what can be spliced: a regular file, not a pipe or an
// eventfd (EINVAL); it copies from the file's offset or the one given, and refuses an
// O_APPEND destination.
TEST(SendfileTest, NeedsARegularSource) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Join("src"), "hello world"));
  Fd src(open(dir.Join("src").c_str(), O_RDONLY));
  Pipe p = MakePipe();
  off_t off = 6;
  EXPECT_EQ(sendfile(p.w.get(), src.get(), &off, 100), 5);
  EXPECT_EQ(off, 11);
  EXPECT_EQ(sendfile(p.w.get(), src.get(), nullptr, 5), 5);
  char buf[16] = {};
  EXPECT_EQ(read(p.r.get(), buf, sizeof(buf)), 10);
  EXPECT_EQ(std::string(buf, 10), "worldhello");

  Fd efd(eventfd(5, 0));
  EXPECT_ERRNO(sendfile(p.w.get(), efd.get(), nullptr, 8), EINVAL);
  EXPECT_ERRNO(sendfile(efd.get(), efd.get(), nullptr, size_t{1} << 40), EINVAL);
  ASSERT_EQ(write(p.w.get(), "abc", 3), 3);
  Fd out(open(dir.Join("out").c_str(), O_CREAT | O_WRONLY, 0644));
  EXPECT_ERRNO(sendfile(out.get(), p.r.get(), nullptr, 3), EINVAL);
  Fd append(open(dir.Join("out").c_str(), O_WRONLY | O_APPEND));
  EXPECT_ERRNO(sendfile(append.get(), src.get(), nullptr, 3), EINVAL);
}

}  // namespace
}  // namespace husk_test
