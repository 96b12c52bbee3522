// Conformance: the vectored and positional read/write calls on regular files. readv/writev,
// preadv/pwritev (offset given, file offset untouched), preadv2/pwritev2 (offset -1 meaning the
// file offset; RWF_APPEND, RWF_NOWAIT, RWF_HIPRI, RWF_DSYNC, RWF_SYNC; unknown flags
// EOPNOTSUPP), iovec checks (iovcnt > IOV_MAX, zero-length entries, a total past SSIZE_MAX),
// pwrite on an O_APPEND file (appends: a Linux quirk), and the errors for directories, pipes and
// the wrong access mode.
//
// Syscalls: read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 lseek open
// fstat fstatfs pipe2 mmap munmap uname
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

#ifndef RWF_NOAPPEND
#define RWF_NOAPPEND 0x00000020
#endif

namespace husk_test {
namespace {

class RwTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    path_ = dir_.Join("f");
  }
  // Fills the file with `contents` and opens it with `flags`.
  Fd Open(const std::string& contents, int flags = O_RDWR) {
    EXPECT_TRUE(WriteFile(path_, contents));
    return Fd(open(path_.c_str(), flags | O_CLOEXEC));
  }
  static off_t Offset(int fd) { return lseek(fd, 0, SEEK_CUR); }
  std::string Contents() const { return ReadFile(path_); }

  TempDir dir_;
  std::string path_;
};

// Whether the kernel (as uname reports it) is at least major.minor.
bool KernelAtLeast(int major, int minor) {
  utsname u{};
  int ma = 0, mi = 0;
  if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

iovec Iov(void* p, size_t len) { return iovec{p, len}; }
iovec Iov(const char* s) { return iovec{const_cast<char*>(s), strlen(s)}; }

// readv fills the buffers in order and stops at the end of the file; writev gathers them.
TEST_F(RwTest, ReadvScattersAndStopsAtEndOfFile) {
  Fd fd = Open("abcdefgh");
  ASSERT_TRUE(fd.valid());
  char a[3], b[10];
  iovec iov[2] = {Iov(a, 3), Iov(b, 10)};
  EXPECT_EQ(readv(fd.get(), iov, 2), 8);
  EXPECT_EQ(std::string(a, 3), "abc");
  EXPECT_EQ(std::string(b, 5), "defgh");
  EXPECT_EQ(Offset(fd.get()), 8);
  EXPECT_EQ(readv(fd.get(), iov, 2), 0);  // at the end
  iovec w[3] = {Iov("12"), Iov("345"), Iov("6")};
  EXPECT_EQ(writev(fd.get(), w, 3), 6);
  EXPECT_EQ(Contents(), "abcdefgh123456");
}

// preadv/pwritev work at the offset given and leave the file offset alone.
TEST_F(RwTest, PreadvPwritevLeaveTheFileOffset) {
  Fd fd = Open("0123456789");
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(lseek(fd.get(), 2, SEEK_SET), 2);
  char a[2], b[2];
  iovec iov[2] = {Iov(a, 2), Iov(b, 2)};
  EXPECT_EQ(preadv(fd.get(), iov, 2, 5), 4);
  EXPECT_EQ(std::string(a, 2) + std::string(b, 2), "5678");
  EXPECT_EQ(preadv(fd.get(), iov, 2, 8), 2);  // short at the end
  EXPECT_EQ(preadv(fd.get(), iov, 2, 100), 0);
  iovec w[2] = {Iov("AB"), Iov("CD")};
  EXPECT_EQ(pwritev(fd.get(), w, 2, 3), 4);
  EXPECT_EQ(Offset(fd.get()), 2);
  EXPECT_EQ(Contents(), "012ABCD789");
  // Past the end: a hole of zeros before the data.
  EXPECT_EQ(pwritev(fd.get(), w, 1, 12), 2);
  EXPECT_EQ(Contents(), std::string("012ABCD789\0\0AB", 14));
}

// For preadv2/pwritev2 an offset of -1 means "at the file offset, and move it" (like readv).
TEST_F(RwTest, OffsetMinusOneUsesAndMovesTheFileOffset) {
  Fd fd = Open("0123456789");
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(lseek(fd.get(), 3, SEEK_SET), 3);
  char buf[4];
  iovec iov = Iov(buf, 4);
  EXPECT_EQ(preadv2(fd.get(), &iov, 1, -1, 0), 4) << ErrnoName(errno);
  EXPECT_EQ(std::string(buf, 4), "3456");
  EXPECT_EQ(Offset(fd.get()), 7);
  iovec w = Iov("xy");
  EXPECT_EQ(pwritev2(fd.get(), &w, 1, -1, 0), 2) << ErrnoName(errno);
  EXPECT_EQ(Offset(fd.get()), 9);
  EXPECT_EQ(Contents(), "0123456xy9");
  // Any other offset leaves the file offset.
  EXPECT_EQ(preadv2(fd.get(), &iov, 1, 0, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "0123");
  EXPECT_EQ(pwritev2(fd.get(), &w, 1, 0, 0), 2);
  EXPECT_EQ(Offset(fd.get()), 9);
  EXPECT_EQ(Contents(), "xy23456xy9");
}

// Other negative offsets are EINVAL, for every positional call.
TEST_F(RwTest, NegativeOffsetsAreEinval) {
  Fd fd = Open("data");
  ASSERT_TRUE(fd.valid());
  char buf[4];
  iovec iov = Iov(buf, 4);
  EXPECT_ERRNO(preadv2(fd.get(), &iov, 1, -2, 0), EINVAL);
  EXPECT_ERRNO(pwritev2(fd.get(), &iov, 1, -2, 0), EINVAL);
  EXPECT_ERRNO(preadv(fd.get(), &iov, 1, -1), EINVAL);  // -1 is special only for the "2" calls
  EXPECT_ERRNO(pwritev(fd.get(), &iov, 1, -1), EINVAL);
  EXPECT_ERRNO(pwrite(fd.get(), buf, 4, -1), EINVAL);
  EXPECT_EQ(Contents(), "data");
}

// RWF_APPEND writes at the end whatever the offset given; only with -1 does the file offset move.
TEST_F(RwTest, RwfAppendWritesAtTheEnd) {
  Fd fd = Open("base");
  ASSERT_TRUE(fd.valid());
  iovec w = Iov("+1");
  EXPECT_EQ(pwritev2(fd.get(), &w, 1, 0, RWF_APPEND), 2) << ErrnoName(errno);
  EXPECT_EQ(Contents(), "base+1");
  EXPECT_EQ(Offset(fd.get()), 0);
  w = Iov("+2");
  EXPECT_EQ(pwritev2(fd.get(), &w, 1, -1, RWF_APPEND), 2) << ErrnoName(errno);
  EXPECT_EQ(Contents(), "base+1+2");
  EXPECT_EQ(Offset(fd.get()), 8);
  // It is per call: the next plain write goes at the offset again.
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  EXPECT_EQ(write(fd.get(), "B", 1), 1);
  EXPECT_EQ(Contents(), "Base+1+2");
}

// RWF_NOAPPEND (Linux 6.9) lets a pwritev2 on an O_APPEND fd write where it says.
TEST_F(RwTest, RwfNoappendOverridesOAppend) {
  if (!KernelAtLeast(6, 9)) GTEST_SKIP() << "RWF_NOAPPEND is new in Linux 6.9";
  Fd fd = Open("0123", O_WRONLY | O_APPEND);
  ASSERT_TRUE(fd.valid());
  struct statfs sfs {};
  ASSERT_OK(fstatfs(fd.get(), &sfs));
  if (sfs.f_type == OVERLAYFS_SUPER_MAGIC) {
    // overlayfs writes through its backing file, opened O_APPEND, which appends anyway.
    GTEST_SKIP() << "overlayfs ignores RWF_NOAPPEND";
  }
  iovec w = Iov("x");
  errno = 0;
  ssize_t n = pwritev2(fd.get(), &w, 1, 1, RWF_NOAPPEND);
  EXPECT_EQ(n, 1) << ErrnoName(errno);
  EXPECT_EQ(Contents(), "0x23");
  // With -1 it writes at the file offset, and moves it.
  ASSERT_EQ(lseek(fd.get(), 2, SEEK_SET), 2);
  EXPECT_EQ(pwritev2(fd.get(), &w, 1, -1, RWF_NOAPPEND), 1) << ErrnoName(errno);
  EXPECT_EQ(Contents(), "0xx3");
  EXPECT_EQ(Offset(fd.get()), 3);
}

// pwrite on an O_APPEND file appends, whatever the offset (pwrite(2) BUGS); the file offset
// does not move.
TEST_F(RwTest, PwriteOnAnAppendFileAppends) {
  Fd fd = Open("start", O_RDWR | O_APPEND);
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(pwrite(fd.get(), "A", 1, 0), 1);
  EXPECT_EQ(Contents(), "startA");
  iovec w = Iov("BC");
  EXPECT_EQ(pwritev(fd.get(), &w, 1, 1), 2);
  EXPECT_EQ(pwritev2(fd.get(), &w, 1, 2, 0), 2);
  EXPECT_EQ(Contents(), "startABCBC");
  EXPECT_EQ(Offset(fd.get()), 0);
  // A plain write moves the offset to the new end.
  EXPECT_EQ(write(fd.get(), "!", 1), 1);
  EXPECT_EQ(Offset(fd.get()), 11);
}

// RWF_NOWAIT on a regular file: where the filesystem supports it (ext4, xfs, btrfs), data
// already in memory (just written) is read without blocking; tmpfs and overlayfs do not
// (their files lack FMODE_NOWAIT), and refuse the flag with EOPNOTSUPP.
TEST_F(RwTest, RwfNowaitReadsCachedDataWhereSupported) {
  Fd fd = Open("cached data");
  ASSERT_TRUE(fd.valid());
  struct statfs sfs {};
  ASSERT_OK(fstatfs(fd.get(), &sfs));
  char buf[16] = {};
  iovec iov = Iov(buf, sizeof(buf));
  errno = 0;
  const ssize_t n = preadv2(fd.get(), &iov, 1, 0, RWF_NOWAIT);
  const int err = errno;
  switch (static_cast<unsigned long>(sfs.f_type)) {
    case TMPFS_MAGIC:
    case OVERLAYFS_SUPER_MAGIC:
      EXPECT_EQ(n, -1);
      EXPECT_EQ(err, EOPNOTSUPP) << ErrnoName(err);
      return;
    case EXT4_SUPER_MAGIC:
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
      ASSERT_EQ(n, 11) << ErrnoName(err);
      break;
    default:  // another filesystem: either answer, but nothing else
      if (n < 0) {
        EXPECT_EQ(err, EOPNOTSUPP) << ErrnoName(err);
        return;
      }
      ASSERT_EQ(n, 11);
  }
  EXPECT_EQ(std::string(buf, 11), "cached data");
  EXPECT_EQ(preadv2(fd.get(), &iov, 1, 100, RWF_NOWAIT), 0) << ErrnoName(errno);
}

// The synchronous-I/O and polling hints are accepted on a regular file and change nothing
// visible.
TEST_F(RwTest, HipriDsyncAndSyncFlagsAreAccepted) {
  Fd fd = Open("");
  ASSERT_TRUE(fd.valid());
  iovec w = Iov("a");
  EXPECT_EQ(pwritev2(fd.get(), &w, 1, 0, RWF_DSYNC), 1) << ErrnoName(errno);
  EXPECT_EQ(pwritev2(fd.get(), &w, 1, 1, RWF_SYNC), 1) << ErrnoName(errno);
  EXPECT_EQ(pwritev2(fd.get(), &w, 1, 2, RWF_HIPRI), 1) << ErrnoName(errno);
  EXPECT_EQ(pwritev2(fd.get(), &w, 1, 3, RWF_DSYNC | RWF_SYNC | RWF_HIPRI), 1) << ErrnoName(errno);
  char buf[8];
  iovec r = Iov(buf, sizeof(buf));
  EXPECT_EQ(preadv2(fd.get(), &r, 1, 0, RWF_HIPRI), 4) << ErrnoName(errno);
  EXPECT_EQ(Contents(), "aaaa");
}

TEST_F(RwTest, UnknownRwfFlagsAreEopnotsupp) {
  Fd fd = Open("data");
  ASSERT_TRUE(fd.valid());
  char buf[4];
  iovec iov = Iov(buf, 4);
  for (int flags : {0x10000, 0x40000000, static_cast<int>(0x80000000u)}) {
    EXPECT_ERRNO(preadv2(fd.get(), &iov, 1, 0, flags), EOPNOTSUPP);
    EXPECT_ERRNO(pwritev2(fd.get(), &iov, 1, 0, flags), EOPNOTSUPP);
  }
  EXPECT_EQ(Contents(), "data");
}

// At most IOV_MAX (1024) iovecs; one more is EINVAL. Exactly IOV_MAX works.
TEST_F(RwTest, IovcntAboveIovMaxIsEinval) {
  Fd fd = Open("");
  ASSERT_TRUE(fd.valid());
  std::string data(IOV_MAX + 1, 'v');
  std::vector<iovec> iov(IOV_MAX + 1);
  for (size_t i = 0; i < iov.size(); ++i) iov[i] = Iov(&data[i], 1);
  EXPECT_ERRNO(writev(fd.get(), iov.data(), IOV_MAX + 1), EINVAL);
  EXPECT_ERRNO(pwritev(fd.get(), iov.data(), IOV_MAX + 1, 0), EINVAL);
  EXPECT_ERRNO(readv(fd.get(), iov.data(), IOV_MAX + 1), EINVAL);
  EXPECT_ERRNO(preadv2(fd.get(), iov.data(), IOV_MAX + 1, 0, 0), EINVAL);
  EXPECT_EQ(writev(fd.get(), iov.data(), IOV_MAX), IOV_MAX) << ErrnoName(errno);
  EXPECT_EQ(Contents(), std::string(IOV_MAX, 'v'));
  EXPECT_ERRNO(syscall(SYS_readv, fd.get(), iov.data(), -1), EINVAL);
}

// Zero-length iovecs are skipped (even with a null base); no iovecs at all is a 0-byte transfer.
TEST_F(RwTest, ZeroLengthIovecsAreSkipped) {
  Fd fd = Open("");
  ASSERT_TRUE(fd.valid());
  iovec w[4] = {Iov(nullptr, 0), Iov("ab"), Iov(nullptr, 0), Iov("cd")};
  EXPECT_EQ(writev(fd.get(), w, 4), 4);
  EXPECT_EQ(Contents(), "abcd");
  char x[1], y[3];
  iovec r[3] = {Iov(x, 1), Iov(nullptr, 0), Iov(y, 3)};
  EXPECT_EQ(preadv(fd.get(), r, 3, 0), 4);
  EXPECT_EQ(std::string(x, 1) + std::string(y, 3), "abcd");
  EXPECT_EQ(writev(fd.get(), w, 0), 0);
  EXPECT_EQ(readv(fd.get(), r, 0), 0);
  EXPECT_EQ(writev(fd.get(), w, 1), 0);  // only a zero-length one
  EXPECT_EQ(Contents(), "abcd");
}

// An iov_len past SSIZE_MAX is EINVAL; a buffer or an iovec array outside the address space is
// EFAULT.
TEST_F(RwTest, IovecArrayErrors) {
  Fd fd = Open("data");
  ASSERT_TRUE(fd.valid());
  char buf[4];
  // A length that is negative as an ssize_t.
  iovec neg[2] = {Iov(buf, 1), Iov(buf, static_cast<size_t>(SSIZE_MAX) + 1)};
  EXPECT_ERRNO(readv(fd.get(), neg, 2), EINVAL);
  EXPECT_ERRNO(writev(fd.get(), neg, 2), EINVAL);
  // A range that runs past the user address space.
  iovec past[2] = {Iov(buf, 1), Iov(buf, SSIZE_MAX)};
  EXPECT_ERRNO(readv(fd.get(), past, 2), EFAULT);
  EXPECT_ERRNO(writev(fd.get(), past, 2), EFAULT);
  // (Raw syscalls: the compiler rejects a literal bad pointer to the wrappers.)
  EXPECT_ERRNO(syscall(SYS_readv, fd.get(), 8L, 1), EFAULT);
  EXPECT_ERRNO(syscall(SYS_pwritev, fd.get(), 8L, 1, 0L, 0L), EFAULT);
  EXPECT_EQ(Contents(), "data");
}

// A buffer that faults part way: the bytes before the fault are transferred and counted; a
// fault before any byte is EFAULT.
TEST_F(RwTest, WritevStopsAtAFaultingBuffer) {
  Fd fd = Open("");
  ASSERT_TRUE(fd.valid());
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* hole = mmap(nullptr, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(hole, MAP_FAILED);
  iovec w[2] = {Iov("prefix"), Iov(hole, 10)};
  EXPECT_EQ(writev(fd.get(), w, 2), 6);
  EXPECT_EQ(Contents(), "prefix");
  EXPECT_ERRNO(writev(fd.get(), &w[1], 1), EFAULT);
  char buf[3];
  iovec r[2] = {Iov(buf, 3), Iov(hole, 3)};
  EXPECT_EQ(preadv(fd.get(), r, 2, 0), 3);
  EXPECT_EQ(std::string(buf, 3), "pre");
  EXPECT_ERRNO(preadv(fd.get(), &r[1], 1, 0), EFAULT);
  munmap(hole, page);
}

// Zero-byte reads and writes succeed with 0 and change nothing; the access mode is still
// checked.
TEST_F(RwTest, ZeroByteTransfers) {
  Fd fd = Open("abc");
  ASSERT_TRUE(fd.valid());
  char c = 0;
  EXPECT_EQ(read(fd.get(), &c, 0), 0);
  EXPECT_EQ(write(fd.get(), &c, 0), 0);
  EXPECT_EQ(pwrite(fd.get(), &c, 0, 100), 0);  // does not extend the file
  EXPECT_EQ(Offset(fd.get()), 0);
  EXPECT_EQ(Contents(), "abc");
  // A null buffer is fine for zero bytes.
  EXPECT_EQ(read(fd.get(), nullptr, 0), 0);
  EXPECT_EQ(write(fd.get(), nullptr, 0), 0);
  Fd ro(open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  Fd wo(open(path_.c_str(), O_WRONLY | O_CLOEXEC));
  EXPECT_ERRNO(write(ro.get(), &c, 0), EBADF);
  EXPECT_ERRNO(read(wo.get(), &c, 0), EBADF);
}

// Every read flavour on a directory is EISDIR.
TEST_F(RwTest, ReadingADirectoryIsEisdir) {
  Fd dir(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir.valid());
  char buf[16];
  iovec iov = Iov(buf, sizeof(buf));
  EXPECT_ERRNO(read(dir.get(), buf, sizeof(buf)), EISDIR);
  EXPECT_ERRNO(pread(dir.get(), buf, sizeof(buf), 0), EISDIR);
  EXPECT_ERRNO(readv(dir.get(), &iov, 1), EISDIR);
  EXPECT_ERRNO(preadv(dir.get(), &iov, 1, 0), EISDIR);
  EXPECT_ERRNO(preadv2(dir.get(), &iov, 1, -1, 0), EISDIR);
  // Writing needs an fd open for writing, which a directory never is.
  EXPECT_ERRNO(write(dir.get(), "x", 1), EBADF);
}

// Writing through an fd open read-only is EBADF, and reading through a write-only one.
TEST_F(RwTest, WrongAccessModeIsEbadfForEveryFlavour) {
  Fd ro = Open("data", O_RDONLY);
  Fd wo(open(path_.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(ro.valid());
  ASSERT_TRUE(wo.valid());
  char buf[4] = {'x', 'x', 'x', 'x'};
  iovec iov = Iov(buf, 4);
  EXPECT_ERRNO(write(ro.get(), buf, 4), EBADF);
  EXPECT_ERRNO(pwrite(ro.get(), buf, 4, 0), EBADF);
  EXPECT_ERRNO(writev(ro.get(), &iov, 1), EBADF);
  EXPECT_ERRNO(pwritev(ro.get(), &iov, 1, 0), EBADF);
  EXPECT_ERRNO(pwritev2(ro.get(), &iov, 1, -1, 0), EBADF);
  EXPECT_ERRNO(read(wo.get(), buf, 4), EBADF);
  EXPECT_ERRNO(preadv(wo.get(), &iov, 1, 0), EBADF);
  EXPECT_ERRNO(preadv2(wo.get(), &iov, 1, 0, 0), EBADF);
  Fd path(open(path_.c_str(), O_PATH | O_CLOEXEC));
  EXPECT_ERRNO(read(path.get(), buf, 4), EBADF);
  EXPECT_ERRNO(write(path.get(), buf, 4), EBADF);
  EXPECT_EQ(Contents(), "data");
}

// A pipe has no offset: the positional calls are ESPIPE, but preadv2/pwritev2 with -1 (no
// position) work.
TEST_F(RwTest, PositionalCallsOnAPipeAreEspipe) {
  Pipe p = MakePipe(O_CLOEXEC);
  char buf[8];
  iovec iov = Iov(buf, sizeof(buf));
  iovec w = Iov("pipe");
  EXPECT_ERRNO(pwrite(p.w.get(), "x", 1, 0), ESPIPE);
  EXPECT_ERRNO(pwritev(p.w.get(), &w, 1, 0), ESPIPE);
  EXPECT_ERRNO(pwritev2(p.w.get(), &w, 1, 0, 0), ESPIPE);
  EXPECT_EQ(pwritev2(p.w.get(), &w, 1, -1, 0), 4) << ErrnoName(errno);
  EXPECT_ERRNO(pread(p.r.get(), buf, 1, 0), ESPIPE);
  EXPECT_ERRNO(preadv(p.r.get(), &iov, 1, 0), ESPIPE);
  EXPECT_ERRNO(preadv2(p.r.get(), &iov, 1, 0, 0), ESPIPE);
  EXPECT_EQ(preadv2(p.r.get(), &iov, 1, -1, 0), 4) << ErrnoName(errno);
  EXPECT_EQ(std::string(buf, 4), "pipe");
}

// RWF_NOWAIT on an empty pipe does not block: EAGAIN, like O_NONBLOCK for that one call.
TEST_F(RwTest, RwfNowaitOnAnEmptyPipeIsEagain) {
  Pipe p = MakePipe(O_CLOEXEC);
  char buf[4];
  iovec iov = Iov(buf, sizeof(buf));
  EXPECT_ERRNO(preadv2(p.r.get(), &iov, 1, -1, RWF_NOWAIT), EAGAIN);
  ASSERT_EQ(write(p.w.get(), "n", 1), 1);
  EXPECT_EQ(preadv2(p.r.get(), &iov, 1, -1, RWF_NOWAIT), 1) << ErrnoName(errno);
}

}  // namespace
}  // namespace husk_test
