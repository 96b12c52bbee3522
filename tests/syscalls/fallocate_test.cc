// fallocate(2), lseek's SEEK_DATA/SEEK_HOLE and the sync family: allocation grows a file (or keeps
// its size with FALLOC_FL_KEEP_SIZE) and reads as zeros; a punched hole reads as zeros and keeps
// the size; vfs_fallocate's errors in Linux's order; sync, syncfs and sync_file_range succeed for
// what they may name and refuse the rest.
//
// Syscalls: fallocate lseek sync syncfs sync_file_range open pread pwrite fstat pipe2 ftruncate
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

class FallocateTest : public ::testing::Test {
 protected:
  std::string P(const std::string& name) const { return dir_.Join(name); }
  off_t Size(int fd) {
    struct stat st {};
    EXPECT_EQ(fstat(fd, &st), 0);
    return st.st_size;
  }
  TempDir dir_;
};

TEST_F(FallocateTest, AllocationGrowsTheFileWithZeros) {
  Fd fd(open(P("f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(pwrite(fd.get(), "abc", 3, 0), 3);
  ASSERT_OK(fallocate(fd.get(), 0, 0, 100000));
  EXPECT_EQ(Size(fd.get()), 100000);
  char buf[8] = {};
  ASSERT_EQ(pread(fd.get(), buf, 3, 0), 3);
  EXPECT_EQ(std::string(buf, 3), "abc");  // data already there stays
  ASSERT_EQ(pread(fd.get(), buf, 8, 50000), 8);
  EXPECT_EQ(std::string(buf, 8), std::string(8, '\0'));
  // KEEP_SIZE allocates past the end without changing the size.
  ASSERT_OK(fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 100000, 8192));
  EXPECT_EQ(Size(fd.get()), 100000);
  // Inside the file, nothing changes either.
  ASSERT_OK(fallocate(fd.get(), 0, 10, 10));
  EXPECT_EQ(Size(fd.get()), 100000);
}

TEST_F(FallocateTest, PunchHoleZeroesAndKeepsTheSize) {
  Fd fd(open(P("f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  std::string data(3 * 4096, 'x');
  ASSERT_EQ(pwrite(fd.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  // From the middle of page 0 to the middle of page 2.
  ASSERT_OK(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2048, 2 * 4096));
  EXPECT_EQ(Size(fd.get()), static_cast<off_t>(data.size()));
  std::string back(data.size(), '?');
  ASSERT_EQ(pread(fd.get(), back.data(), back.size(), 0), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back.substr(0, 2048), std::string(2048, 'x'));
  EXPECT_EQ(back.substr(2048, 2 * 4096), std::string(2 * 4096, '\0'));
  EXPECT_EQ(back.substr(2048 + 2 * 4096), std::string(2048, 'x'));
  // A hole past the end changes nothing.
  ASSERT_OK(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1 << 20, 4096));
  EXPECT_EQ(Size(fd.get()), static_cast<off_t>(data.size()));
}

TEST_F(FallocateTest, ErrorsInLinuxsOrder) {
  Fd fd(open(P("f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(fallocate(-1, 0, 0, 1), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(fallocate(fd.get(), 0, -1, 1), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(fallocate(fd.get(), 0, 0, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  // A hole must keep the size.
  EXPECT_EQ(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE, 0, 1), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  EXPECT_EQ(fallocate(fd.get(), 0x1000, 0, 1), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  // Past the largest file size.
  EXPECT_EQ(fallocate(fd.get(), 0, INT64_MAX - 10, 100), -1);
  EXPECT_EQ(errno, EFBIG);
  // Not open for writing.
  Fd ro(open(P("f").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(fallocate(ro.get(), 0, 0, 1), -1);
  EXPECT_EQ(errno, EBADF);
  // A pipe, a directory.
  int p[2];
  ASSERT_OK(pipe2(p, O_CLOEXEC));
  Fd r(p[0]), w(p[1]);
  EXPECT_EQ(fallocate(w.get(), 0, 0, 1), -1);
  EXPECT_EQ(errno, ESPIPE);
}

// SEEK_DATA and SEEK_HOLE find the written pages of a sparse file.
TEST_F(FallocateTest, SeekDataAndHoleFindWrittenPages) {
  Fd fd(open(P("sparse").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  const off_t far = 1 << 20;
  std::string page(4096, 'd');
  ASSERT_EQ(pwrite(fd.get(), page.data(), page.size(), 0), 4096);
  ASSERT_EQ(pwrite(fd.get(), page.data(), page.size(), far), 4096);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_DATA), 0);
  EXPECT_EQ(lseek(fd.get(), 100, SEEK_DATA), 100);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_HOLE), 4096);
  EXPECT_EQ(lseek(fd.get(), 4096, SEEK_DATA), far);
  EXPECT_EQ(lseek(fd.get(), 8192, SEEK_HOLE), 8192);
  EXPECT_EQ(lseek(fd.get(), far, SEEK_HOLE), far + 4096);  // the end is a hole
  // The position moves to the answer.
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), far + 4096);
  // At or past the end, and before the start: ENXIO.
  EXPECT_EQ(lseek(fd.get(), far + 4096, SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  EXPECT_EQ(lseek(fd.get(), far + 4096, SEEK_HOLE), -1);
  EXPECT_EQ(errno, ENXIO);
  EXPECT_EQ(lseek(fd.get(), -1, SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  // A file that is all hole has no data.
  Fd empty(open(P("hole").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_OK(ftruncate(empty.get(), far));
  EXPECT_EQ(lseek(empty.get(), 0, SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  EXPECT_EQ(lseek(empty.get(), 0, SEEK_HOLE), 0);
}

TEST_F(FallocateTest, SyncFamily) {
  sync();
  Fd fd(open(P("f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(syncfs(fd.get()));
  EXPECT_EQ(syncfs(-1), -1);
  EXPECT_EQ(errno, EBADF);
  ASSERT_OK(sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE));
  EXPECT_EQ(sync_file_range(fd.get(), 0, 0, 0x100), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(sync_file_range(fd.get(), -1, 0, SYNC_FILE_RANGE_WRITE), -1);
  EXPECT_EQ(errno, EINVAL);
  int p[2];
  ASSERT_OK(pipe2(p, O_CLOEXEC));
  Fd r(p[0]), w(p[1]);
  EXPECT_EQ(sync_file_range(w.get(), 0, 0, SYNC_FILE_RANGE_WRITE), -1);
  EXPECT_EQ(errno, ESPIPE);
}

}  // namespace
}  // namespace husk_test
