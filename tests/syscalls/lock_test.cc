// Advisory file locks: flock(2), fcntl(2) record locks (F_SETLK, F_SETLKW,
// F_GETLK) and open file description locks (F_OFD_*), between processes and
// between descriptions, with the release rules Linux has (a record lock goes
// with any close of the file by its process; flock and OFD locks with the
// last descriptor of their description) and EDEADLK for F_SETLKW.
//
// Syscalls: flock fcntl open close fork wait4 kill pipe read write
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

class LockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Join("f");
    ASSERT_TRUE(WriteFile(path_, std::string(100, 'x')));
  }
  Fd Open(int flags = O_RDWR) { return Fd(open(path_.c_str(), flags | O_CLOEXEC)); }
  TempDir dir_;
  std::string path_;
};

struct flock Range(short type, off_t start, off_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fl;
}

// In a forked child: F_SETLK of the range on a fresh descriptor of path, 0
// or the errno.
int ChildSetlk(const std::string& path, short type, off_t start, off_t len) {
  return InChild([&] {
    int fd = open(path.c_str(), O_RDWR);
    if (fd < 0) return 100;
    struct flock fl = Range(type, start, len);
    return fcntl(fd, F_SETLK, &fl) == 0 ? 0 : errno;
  });
}

TEST_F(LockTest, FlockExcludesOtherDescriptionsAndConverts) {
  Fd a = Open(), b = Open();
  ASSERT_TRUE(a.valid() && b.valid());
  ASSERT_OK(flock(a.get(), LOCK_EX));
  EXPECT_ERRNO(flock(b.get(), LOCK_SH | LOCK_NB), EWOULDBLOCK);
  // The same description may take it again, or convert it.
  ASSERT_OK(flock(a.get(), LOCK_SH));
  ASSERT_OK(flock(b.get(), LOCK_SH | LOCK_NB));  // shared with shared
  EXPECT_ERRNO(flock(a.get(), LOCK_EX | LOCK_NB), EWOULDBLOCK);
  ASSERT_OK(flock(b.get(), LOCK_UN));
  ASSERT_OK(flock(a.get(), LOCK_EX | LOCK_NB));
  // A dup shares the description and its lock; closing one keeps it.
  int dup = fcntl(a.get(), F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(dup, 0);
  a.Reset();
  EXPECT_ERRNO(flock(b.get(), LOCK_EX | LOCK_NB), EWOULDBLOCK);
  // The last descriptor goes: so does the lock.
  close(dup);
  ASSERT_OK(flock(b.get(), LOCK_EX | LOCK_NB));
  EXPECT_ERRNO(flock(b.get(), 0), EINVAL);
  EXPECT_ERRNO(flock(b.get(), LOCK_SH | LOCK_EX), EINVAL);
  // LOCK_MAND is obsolete: Linux ignores the call and succeeds.
  EXPECT_EQ(flock(b.get(), 32 /* LOCK_MAND */ | LOCK_SH), 0);
  EXPECT_ERRNO(flock(999, LOCK_SH), EBADF);
}

TEST_F(LockTest, FlockWaitsForTheHolderInAnotherProcess) {
  Fd a = Open();
  ASSERT_OK(flock(a.get(), LOCK_EX));
  Pipe p = MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = open(path_.c_str(), O_RDONLY);
    if (flock(fd, LOCK_EX | LOCK_NB) != -1) _exit(1);
    (void)!write(p.w.get(), "w", 1);
    if (flock(fd, LOCK_EX) != 0) _exit(2);  // blocks until the parent lets go
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(p.r.get(), &c, 1), 1);
  usleep(50000);
  ASSERT_OK(flock(a.get(), LOCK_UN));
  EXPECT_TRUE(ExitedWith(WaitBounded(pid), 0));
}

TEST_F(LockTest, RecordLocksConflictByRangeAndType) {
  Fd a = Open();
  struct flock w = Range(F_WRLCK, 10, 10);  // bytes 10..19
  ASSERT_OK(fcntl(a.get(), F_SETLK, &w));
  EXPECT_EQ(ChildSetlk(path_, F_RDLCK, 0, 10), 0);  // 0..9: free
  EXPECT_EQ(ChildSetlk(path_, F_RDLCK, 15, 1), EAGAIN);
  EXPECT_EQ(ChildSetlk(path_, F_WRLCK, 19, 0), EAGAIN);  // 19 to the end
  EXPECT_EQ(ChildSetlk(path_, F_WRLCK, 20, 0), 0);
  // F_GETLK from another process describes the conflicting lock.
  EXPECT_EQ(InChild([&] {
              int fd = open(path_.c_str(), O_RDWR);
              struct flock q = Range(F_RDLCK, 0, 0);
              if (fcntl(fd, F_GETLK, &q) != 0) return 1;
              if (q.l_type != F_WRLCK || q.l_start != 10 || q.l_len != 10) return 2;
              if (q.l_whence != SEEK_SET || q.l_pid != getppid()) return 3;
              struct flock free_range = Range(F_WRLCK, 30, 5);
              if (fcntl(fd, F_GETLK, &free_range) != 0 || free_range.l_type != F_UNLCK) return 4;
              return 0;
            }),
            0);
  // The owner never conflicts with itself, and unlocking a middle part splits.
  struct flock r = Range(F_RDLCK, 12, 2);
  ASSERT_OK(fcntl(a.get(), F_SETLK, &r));  // 10..11 W, 12..13 R, 14..19 W
  EXPECT_EQ(ChildSetlk(path_, F_RDLCK, 12, 2), 0);
  EXPECT_EQ(ChildSetlk(path_, F_RDLCK, 11, 1), EAGAIN);
  struct flock u = Range(F_UNLCK, 0, 0);
  ASSERT_OK(fcntl(a.get(), F_SETLK, &u));
  EXPECT_EQ(ChildSetlk(path_, F_WRLCK, 0, 0), 0);
}

TEST_F(LockTest, RecordLockArgumentErrors) {
  Fd ro = Open(O_RDONLY), wo = Open(O_WRONLY);
  struct flock w = Range(F_WRLCK, 0, 1);
  EXPECT_ERRNO(fcntl(ro.get(), F_SETLK, &w), EBADF);  // a write lock needs write access
  struct flock r = Range(F_RDLCK, 0, 1);
  EXPECT_ERRNO(fcntl(wo.get(), F_SETLK, &r), EBADF);
  struct flock bad = Range(F_RDLCK, -5, 1);
  EXPECT_ERRNO(fcntl(ro.get(), F_SETLK, &bad), EINVAL);
  struct flock type = Range(42, 0, 1);
  EXPECT_ERRNO(fcntl(ro.get(), F_SETLK, &type), EINVAL);
  struct flock whence = Range(F_RDLCK, 0, 1);
  whence.l_whence = 7;
  EXPECT_ERRNO(fcntl(ro.get(), F_SETLK, &whence), EINVAL);
  // OFD locks want l_pid zero.
  struct flock ofd = Range(F_RDLCK, 0, 1);
  ofd.l_pid = 1;
  EXPECT_ERRNO(fcntl(ro.get(), F_OFD_SETLK, &ofd), EINVAL);
}

// POSIX: a process's record locks on a file go when it closes any descriptor
// of that file, even one it did not lock through.
TEST_F(LockTest, AnyCloseDropsTheProcessesRecordLocks) {
  Fd a = Open(), b = Open();
  struct flock w = Range(F_WRLCK, 0, 0);
  ASSERT_OK(fcntl(a.get(), F_SETLK, &w));
  EXPECT_EQ(ChildSetlk(path_, F_RDLCK, 0, 1), EAGAIN);
  b.Reset();
  EXPECT_EQ(ChildSetlk(path_, F_RDLCK, 0, 1), 0);
}

// An OFD lock belongs to its description: a second description of the same
// process conflicts with it, a record lock of the process too, and closing
// another descriptor of the file leaves it.
TEST_F(LockTest, OfdLocksBelongToTheDescription) {
  Fd a = Open(), b = Open(), c = Open();
  struct flock w = Range(F_WRLCK, 0, 10);
  ASSERT_OK(fcntl(a.get(), F_OFD_SETLK, &w));
  struct flock r = Range(F_RDLCK, 5, 1);
  EXPECT_ERRNO(fcntl(b.get(), F_OFD_SETLK, &r), EAGAIN);
  EXPECT_ERRNO(fcntl(b.get(), F_SETLK, &r), EAGAIN);
  struct flock q = Range(F_RDLCK, 0, 1);
  ASSERT_OK(fcntl(b.get(), F_OFD_GETLK, &q));
  EXPECT_EQ(q.l_type, F_WRLCK);
  EXPECT_EQ(q.l_pid, -1);
  c.Reset();
  EXPECT_ERRNO(fcntl(b.get(), F_OFD_SETLK, &r), EAGAIN);
  a.Reset();  // the description goes
  ASSERT_OK(fcntl(b.get(), F_OFD_SETLK, &r));
}

void NoOp(int) {}

// Two processes each hold a byte and wait for the other's: whichever request
// closes the cycle fails with EDEADLK (the other then gets its byte).
TEST_F(LockTest, SetlkwWaitsAndDetectsDeadlock) {
  Fd a = Open();
  struct flock first = Range(F_WRLCK, 0, 1);
  ASSERT_OK(fcntl(a.get(), F_SETLK, &first));
  Pipe ready = MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = open(path_.c_str(), O_RDWR);
    struct flock second = Range(F_WRLCK, 1, 1);
    if (fcntl(fd, F_SETLK, &second) != 0) _exit(1);
    (void)!write(ready.w.get(), "r", 1);
    struct flock want = Range(F_WRLCK, 0, 1);  // held by the parent: wait
    if (fcntl(fd, F_SETLKW, &want) == 0) _exit(0);
    _exit(errno == EDEADLK ? 2 : 3);
  }
  char ch;
  ASSERT_EQ(read(ready.r.get(), &ch, 1), 1);
  usleep(100000);  // most likely the child waits by now; either order is checked
  struct sigaction sa {
  }, old{};
  sa.sa_handler = NoOp;  // no SA_RESTART: a stuck wait ends with EINTR
  sigaction(SIGALRM, &sa, &old);
  alarm(20);
  struct flock want = Range(F_WRLCK, 1, 1);
  int r = fcntl(a.get(), F_SETLKW, &want);
  int err = r == 0 ? 0 : errno;
  alarm(0);
  sigaction(SIGALRM, &old, nullptr);
  if (err == EDEADLK) {
    struct flock u = Range(F_UNLCK, 0, 0);
    ASSERT_OK(fcntl(a.get(), F_SETLK, &u));  // the child gets byte 0
    EXPECT_TRUE(ExitedWith(WaitBounded(pid), 0));
  } else {
    // The child asked second and was refused; its exit gave us byte 1.
    EXPECT_EQ(err, 0) << ErrnoName(err);
    EXPECT_TRUE(ExitedWith(WaitBounded(pid), 2));
  }
}

TEST_F(LockTest, ExitReleasesEveryLock) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = open(path_.c_str(), O_RDWR);
    struct flock w = Range(F_WRLCK, 0, 0);
    if (fcntl(fd, F_SETLK, &w) != 0) _exit(1);
    int fd2 = open(path_.c_str(), O_RDWR);
    if (flock(fd2, LOCK_EX) != 0) _exit(2);
    _exit(0);  // without closing anything
  }
  EXPECT_TRUE(ExitedWith(WaitBounded(pid), 0));
  Fd a = Open();
  struct flock w = Range(F_WRLCK, 0, 0);
  EXPECT_EQ(fcntl(a.get(), F_SETLK, &w), 0) << ErrnoName(errno);
  EXPECT_EQ(flock(a.get(), LOCK_EX | LOCK_NB), 0) << ErrnoName(errno);
}

}  // namespace
}  // namespace husk_test
