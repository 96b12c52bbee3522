// Conformance: memfd_create(2) and file sealing (fcntl F_ADD_SEALS/F_GET_SEALS). A memfd is an
// anonymous regular file: its /proc/self/fd link is "/memfd:NAME (deleted)", it reads, writes,
// truncates and maps like a tmpfs file. With MFD_ALLOW_SEALING it starts with no seals and
// F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE, F_SEAL_FUTURE_WRITE and F_SEAL_SEAL each forbid their
// change with EPERM; F_SEAL_WRITE is EBUSY while a writable shared mapping exists.
//
// Syscalls: memfd_create fcntl(F_ADD_SEALS F_GET_SEALS F_GETFD) read write pread64 pwrite64
// lseek ftruncate fallocate fstat mmap munmap readlink open fork wait4
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace husk_test {
namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

std::string FdLink(int fd) {
  char buf[PATH_MAX];
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? "" : std::string(buf, n);
}

Fd Memfd(const char* name, unsigned flags = MFD_CLOEXEC) {
  Fd fd(memfd_create(name, flags));
  EXPECT_TRUE(fd.valid()) << "memfd_create(" << name << "): " << ErrnoName(errno);
  return fd;
}

// A memfd that allows sealing, `size` bytes long.
Fd Sealable(size_t size = 0) {
  Fd fd = Memfd("sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd.valid() && size > 0) {
    EXPECT_EQ(ftruncate(fd.get(), size), 0) << ErrnoName(errno);
  }
  return fd;
}

TEST(MemfdTest, NameShowsInTheProcFdLink) {
  Fd fd = Memfd("my-buffer");
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(FdLink(fd.get()), "/memfd:my-buffer (deleted)");
  Fd empty = Memfd("");
  ASSERT_TRUE(empty.valid());
  EXPECT_EQ(FdLink(empty.get()), "/memfd: (deleted)");
  // Names need not be unique.
  Fd again = Memfd("my-buffer");
  ASSERT_TRUE(again.valid());
  EXPECT_EQ(FdLink(again.get()), "/memfd:my-buffer (deleted)");
}

TEST(MemfdTest, CloexecFlag) {
  Fd with = Memfd("c", MFD_CLOEXEC);
  Fd without = Memfd("n", 0);
  ASSERT_TRUE(with.valid());
  ASSERT_TRUE(without.valid());
  EXPECT_EQ(fcntl(with.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(without.get(), F_GETFD), 0);
  // Open for reading and writing.
  EXPECT_EQ(fcntl(with.get(), F_GETFL) & O_ACCMODE, O_RDWR);
}

TEST(MemfdTest, BadFlagsAreEinval) {
  EXPECT_ERRNO(memfd_create("x", 0x1000), EINVAL);
  EXPECT_ERRNO(memfd_create("x", 0x80000000u), EINVAL);
  EXPECT_ERRNO(memfd_create(nullptr, 0), EFAULT);
}

// The name may be at most 249 bytes (NAME_MAX less "memfd:").
TEST(MemfdTest, NameLongerThan249BytesIsEinval) {
  const std::string ok(249, 'n');
  Fd fd = Memfd(ok.c_str());
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(FdLink(fd.get()), "/memfd:" + ok + " (deleted)");
  const std::string too_long(250, 'n');
  EXPECT_ERRNO(memfd_create(too_long.c_str(), MFD_CLOEXEC), EINVAL);
}

// A new memfd is an empty regular file that nothing links to.
TEST(MemfdTest, FstatShowsAnEmptyUnlinkedRegularFile) {
  Fd fd = Memfd("stat");
  ASSERT_TRUE(fd.valid());
  struct stat st {};
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode)) << std::oct << st.st_mode;
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(st.st_uid, getuid());
  EXPECT_EQ(st.st_gid, getgid());
}

TEST(MemfdTest, ReadWriteSeekAndTruncate) {
  Fd fd = Memfd("rw");
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(write(fd.get(), "hello memfd", 11), 11);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 11);
  ASSERT_EQ(lseek(fd.get(), 6, SEEK_SET), 6);
  char buf[16] = {};
  EXPECT_EQ(read(fd.get(), buf, sizeof(buf)), 5);
  EXPECT_EQ(std::string(buf, 5), "memfd");
  EXPECT_EQ(read(fd.get(), buf, sizeof(buf)), 0);
  // A write past the end leaves a hole of zeros.
  ASSERT_EQ(pwrite(fd.get(), "!", 1, 20), 1);
  ASSERT_EQ(pread(fd.get(), buf, sizeof(buf), 9), 12);
  EXPECT_EQ(std::string(buf, 12), std::string("fd\0\0\0\0\0\0\0\0\0!", 12));
  ASSERT_OK(ftruncate(fd.get(), 5));
  struct stat st {};
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 5);
  ASSERT_OK(ftruncate(fd.get(), 3 * kPage));
  ASSERT_EQ(pread(fd.get(), buf, 8, 0), 8);
  EXPECT_EQ(std::string(buf, 8), std::string("hello\0\0\0", 8));
}

// Reopening /proc/self/fd/N gives a new open file of the same memfd.
TEST(MemfdTest, ReopenThroughProcSharesTheContents) {
  Fd fd = Memfd("reopen");
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(write(fd.get(), "shared", 6), 6);
  const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  Fd other(open(path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(other.valid()) << ErrnoName(errno);
  EXPECT_EQ(lseek(other.get(), 0, SEEK_CUR), 0);  // its own offset
  EXPECT_EQ(ReadAll(other.get()), "shared");
  ASSERT_EQ(pwrite(other.get(), "S", 1, 0), 1);
  char c = 0;
  ASSERT_EQ(pread(fd.get(), &c, 1, 0), 1);
  EXPECT_EQ(c, 'S');
}

// Shared mappings of a memfd are its contents, also across fork.
TEST(MemfdTest, SharedMappingIsTheContents) {
  Fd fd = Memfd("map");
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(ftruncate(fd.get(), 2 * kPage));
  auto* p = static_cast<volatile char*>(
      mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
  ASSERT_NE(p, MAP_FAILED) << ErrnoName(errno);
  EXPECT_EQ(p[kPage], 0);
  p[0] = 'm';
  char c = 0;
  ASSERT_EQ(pread(fd.get(), &c, 1, 0), 1);
  EXPECT_EQ(c, 'm');
  ASSERT_EQ(pwrite(fd.get(), "w", 1, kPage + 1), 1);
  EXPECT_EQ(p[kPage + 1], 'w');
  EXPECT_EQ(InChild([&] {
              p[2] = 'c';
              return p[0] == 'm' ? 0 : 1;
            }),
            0);
  EXPECT_EQ(p[2], 'c');
  munmap(const_cast<char*>(p), 2 * kPage);
}

// Without MFD_ALLOW_SEALING the file is born sealed with F_SEAL_SEAL: no seal can be added.
TEST(MemfdTest, WithoutAllowSealingNoSealCanBeAdded) {
  Fd fd = Memfd("nosealing");
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(fcntl(fd.get(), F_GET_SEALS), F_SEAL_SEAL);
  EXPECT_ERRNO(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE), EPERM);
  EXPECT_ERRNO(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK), EPERM);
  EXPECT_EQ(fcntl(fd.get(), F_GET_SEALS), F_SEAL_SEAL);
}

// With it, no seals at first; seals add up; F_SEAL_SEAL stops further ones.
TEST(MemfdTest, SealsAccumulateUntilSealSeal) {
  Fd fd = Sealable();
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(fcntl(fd.get(), F_GET_SEALS), 0);
  ASSERT_OK(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK));
  ASSERT_OK(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_GROW));
  ASSERT_OK(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK));  // again: no change
  EXPECT_EQ(fcntl(fd.get(), F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW);
  ASSERT_OK(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SEAL));
  EXPECT_EQ(fcntl(fd.get(), F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_ERRNO(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE), EPERM);
  EXPECT_ERRNO(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK), EPERM);
  // The seals belong to the file, not the open file description.
  const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  Fd other(open(path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(other.valid());
  EXPECT_EQ(fcntl(other.get(), F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
}

TEST(MemfdTest, SealShrinkForbidsMakingItSmaller) {
  Fd fd = Sealable(100);
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK));
  EXPECT_ERRNO(ftruncate(fd.get(), 99), EPERM);
  EXPECT_ERRNO(ftruncate(fd.get(), 0), EPERM);
  EXPECT_EQ(ftruncate(fd.get(), 100), 0) << ErrnoName(errno);
  EXPECT_EQ(ftruncate(fd.get(), 200), 0) << ErrnoName(errno);
  EXPECT_EQ(pwrite(fd.get(), "x", 1, 500), 1);
  EXPECT_ERRNO(ftruncate(fd.get(), 200), EPERM);
  // Punching a hole keeps the size: allowed.
  EXPECT_EQ(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 10), 0)
      << ErrnoName(errno);
}

TEST(MemfdTest, SealGrowForbidsMakingItBigger) {
  Fd fd = Sealable(100);
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_GROW));
  EXPECT_ERRNO(ftruncate(fd.get(), 101), EPERM);
  EXPECT_ERRNO(pwrite(fd.get(), "abc", 3, 99), EPERM);  // would end past 100
  EXPECT_ERRNO(pwrite(fd.get(), "x", 1, 100), EPERM);
  EXPECT_ERRNO(fallocate(fd.get(), 0, 0, 200), EPERM);
  EXPECT_EQ(pwrite(fd.get(), "ab", 2, 98), 2);  // inside: fine
  EXPECT_EQ(ftruncate(fd.get(), 50), 0) << ErrnoName(errno);
  struct stat st {};
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 50);
}

// F_SEAL_WRITE: write, pwrite, fallocate, and new writable shared mappings are EPERM; the size
// may still change; private writable mappings stay allowed.
TEST(MemfdTest, SealWriteForbidsChangingTheContents) {
  Fd fd = Sealable(kPage);
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(pwrite(fd.get(), "before", 6, 0), 6);
  ASSERT_OK(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE));
  EXPECT_ERRNO(write(fd.get(), "x", 1), EPERM);
  EXPECT_ERRNO(pwrite(fd.get(), "x", 1, 0), EPERM);
  EXPECT_ERRNO(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 10), EPERM);
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EPERM) << ErrnoName(errno);
  void* ro = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(ro, MAP_FAILED) << ErrnoName(errno);
  EXPECT_EQ(std::string(static_cast<char*>(ro), 6), "before");
  // The read-only shared mapping may not become writable either.
  EXPECT_ERRNO(mprotect(ro, kPage, PROT_READ | PROT_WRITE), EACCES);
  munmap(ro, kPage);
  void* priv = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  ASSERT_NE(priv, MAP_FAILED) << ErrnoName(errno);
  static_cast<char*>(priv)[0] = 'P';
  munmap(priv, kPage);
  char buf[6];
  ASSERT_EQ(pread(fd.get(), buf, 6, 0), 6);
  EXPECT_EQ(std::string(buf, 6), "before");
  EXPECT_EQ(ftruncate(fd.get(), 2 * kPage), 0) << ErrnoName(errno);
}

// F_SEAL_WRITE cannot be added while a writable shared mapping exists (EBUSY); it can once the
// mapping is gone.
TEST(MemfdTest, SealWriteIsEbusyWhileAWritableSharedMappingExists) {
  Fd fd = Sealable(kPage);
  ASSERT_TRUE(fd.valid());
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(p, MAP_FAILED) << ErrnoName(errno);
  EXPECT_ERRNO(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE), EBUSY);
  EXPECT_EQ(fcntl(fd.get(), F_GET_SEALS), 0);
  // Other seals are not held up by the mapping.
  EXPECT_EQ(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_GROW), 0) << ErrnoName(errno);
  ASSERT_OK(munmap(p, kPage));
  // A read-only shared mapping through a writable fd counts (mprotect could make it writable);
  // one through a read-only fd (since Linux 6.7), and a writable private mapping, do not.
  void* r = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(r, MAP_FAILED);
  EXPECT_ERRNO(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE), EBUSY);
  ASSERT_OK(munmap(r, kPage));
  const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  Fd ro(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(ro.valid());
  r = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, ro.get(), 0);
  void* w = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  ASSERT_NE(r, MAP_FAILED);
  ASSERT_NE(w, MAP_FAILED);
  EXPECT_EQ(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE), 0) << ErrnoName(errno);
  EXPECT_EQ(fcntl(fd.get(), F_GET_SEALS), F_SEAL_GROW | F_SEAL_WRITE);
  munmap(r, kPage);
  munmap(w, kPage);
}

// F_SEAL_FUTURE_WRITE stops new writes and new writable shared mappings, but a writable shared
// mapping made before the seal keeps working.
TEST(MemfdTest, SealFutureWriteLeavesExistingMappingsWritable) {
  Fd fd = Sealable(kPage);
  ASSERT_TRUE(fd.valid());
  auto* p =
      static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
  ASSERT_NE(p, MAP_FAILED) << ErrnoName(errno);
  ASSERT_OK(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
  EXPECT_EQ(fcntl(fd.get(), F_GET_SEALS), F_SEAL_FUTURE_WRITE);
  EXPECT_ERRNO(pwrite(fd.get(), "x", 1, 0), EPERM);
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EPERM) << ErrnoName(errno);
  p[0] = 'o';
  char c = 0;
  ASSERT_EQ(pread(fd.get(), &c, 1, 0), 1);
  EXPECT_EQ(c, 'o');
  munmap(p, kPage);
}

// Adding seals needs a writable fd (EPERM), a file that has seals (EINVAL), and known bits.
TEST(MemfdTest, AddSealsArgumentErrors) {
  Fd fd = Sealable(10);
  ASSERT_TRUE(fd.valid());
  EXPECT_ERRNO(fcntl(fd.get(), F_ADD_SEALS, 0x1000), EINVAL);
  const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  Fd ro(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(ro.valid()) << ErrnoName(errno);
  EXPECT_ERRNO(fcntl(ro.get(), F_ADD_SEALS, F_SEAL_SHRINK), EPERM);
  EXPECT_EQ(fcntl(ro.get(), F_GET_SEALS), 0);  // reading them is fine
  EXPECT_EQ(fcntl(fd.get(), F_GET_SEALS), 0);
}

// Files that cannot be sealed (a pipe here) refuse both seal commands with EINVAL.
TEST(SealTest, APipeRefusesSealsWithEinval) {
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(fcntl(p.w.get(), F_ADD_SEALS, F_SEAL_SHRINK), EINVAL);
  EXPECT_ERRNO(fcntl(p.w.get(), F_GET_SEALS), EINVAL);
  EXPECT_ERRNO(fcntl(p.r.get(), F_GET_SEALS), EINVAL);
}

}  // namespace
}  // namespace husk_test
