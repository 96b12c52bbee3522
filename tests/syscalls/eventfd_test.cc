// eventfd(2) and eventfd2(2): the counter, EFD_SEMAPHORE, EFD_NONBLOCK and
// EFD_CLOEXEC, 8-byte transfers, the overflow limit, readiness for poll and
// select, blocking reads and writes woken by another process, and what
// fstat and /proc show of the file.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::Fd;
using husk_test::Pause;
using husk_test::Revents;
using husk_test::Wait;

constexpr uint64_t kMaxCount = 0xfffffffffffffffeULL;

Fd MakeEventfd(unsigned int initval, int flags) {
  Fd fd(eventfd(initval, flags));
  EXPECT_TRUE(fd.valid()) << husk_test::ErrnoName(errno);
  return fd;
}

// Reads the counter; -1 as the result on failure (errno set).
int64_t ReadCount(int fd, uint64_t* value) { return read(fd, value, sizeof(*value)); }

bool WriteCount(int fd, uint64_t value) {
  return write(fd, &value, sizeof(value)) == static_cast<ssize_t>(sizeof(value));
}

TEST(EventfdZeroLengthTest, EmptyReadsAndWritesAreEinval) {
  Fd fd = MakeEventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
  uint64_t v = 0;
  EXPECT_ERRNO(read(fd.get(), &v, 0), EINVAL);
  EXPECT_ERRNO(write(fd.get(), &v, 0), EINVAL);
  EXPECT_EQ(ReadCount(fd.get(), &v), 8);  // the counter was untouched
  EXPECT_EQ(v, 1u);
}

TEST(EventfdTest, AReadTakesTheWholeCounter) {
  Fd fd = MakeEventfd(5, EFD_NONBLOCK);
  uint64_t v = 0;
  ASSERT_EQ(ReadCount(fd.get(), &v), 8);
  EXPECT_EQ(v, 5u);
  EXPECT_ERRNO(ReadCount(fd.get(), &v), EAGAIN);
}

TEST(EventfdTest, WritesAddUp) {
  Fd fd = MakeEventfd(0, EFD_NONBLOCK);
  ASSERT_TRUE(WriteCount(fd.get(), 3));
  ASSERT_TRUE(WriteCount(fd.get(), 4));
  ASSERT_TRUE(WriteCount(fd.get(), 0));
  uint64_t v = 0;
  ASSERT_EQ(ReadCount(fd.get(), &v), 8);
  EXPECT_EQ(v, 7u);
}

TEST(EventfdTest, SemaphoreReadsTakeOneAtATime) {
  Fd fd = MakeEventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
  uint64_t v = 0;
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(ReadCount(fd.get(), &v), 8);
    EXPECT_EQ(v, 1u);
  }
  EXPECT_ERRNO(ReadCount(fd.get(), &v), EAGAIN);
}

TEST(EventfdTest, TransfersAreEightBytes) {
  Fd fd = MakeEventfd(1, EFD_NONBLOCK);
  char buf[16] = {};
  uint64_t one = 1;
  memcpy(buf, &one, sizeof(one));
  EXPECT_ERRNO(read(fd.get(), buf, 4), EINVAL);
  EXPECT_ERRNO(write(fd.get(), buf, 7), EINVAL);
  // A write must be exactly eight bytes (Linux 6.9 and later); a read may
  // offer more room and still gets eight.
  EXPECT_ERRNO(write(fd.get(), buf, sizeof(buf)), EINVAL);
  EXPECT_EQ(read(fd.get(), buf, sizeof(buf)), 8);
  uint64_t v;
  memcpy(&v, buf, sizeof(v));
  EXPECT_EQ(v, 1u);
}

TEST(EventfdTest, WritingAllOnesIsEinval) {
  Fd fd = MakeEventfd(0, EFD_NONBLOCK);
  EXPECT_ERRNO(WriteCount(fd.get(), ~uint64_t{0}) ? 0 : -1, EINVAL);
}

TEST(EventfdTest, TheCounterStopsShortOfAllOnes) {
  Fd fd = MakeEventfd(0, EFD_NONBLOCK);
  ASSERT_TRUE(WriteCount(fd.get(), kMaxCount));
  EXPECT_ERRNO(WriteCount(fd.get(), 1) ? 0 : -1, EAGAIN);
  // A full counter is readable but not writable.
  EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT), POLLIN);
  uint64_t v = 0;
  ASSERT_EQ(ReadCount(fd.get(), &v), 8);
  EXPECT_EQ(v, kMaxCount);
  // A write of zero always fits.
  ASSERT_TRUE(WriteCount(fd.get(), kMaxCount));
  EXPECT_TRUE(WriteCount(fd.get(), 0));
}

TEST(EventfdTest, ReadinessFollowsTheCounter) {
  Fd fd = MakeEventfd(0, EFD_NONBLOCK);
  EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT), POLLOUT);
  ASSERT_TRUE(WriteCount(fd.get(), 1));
  EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT), POLLIN | POLLOUT);
  // eventfd reports neither POLLRDNORM nor POLLWRNORM.
  EXPECT_EQ(Revents(fd.get(), POLLRDNORM | POLLWRNORM), 0);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(fd.get(), &rs);
  timeval tv{0, 0};
  EXPECT_EQ(select(fd.get() + 1, &rs, nullptr, nullptr, &tv), 1);
}

TEST(EventfdTest, FlagsAndBadArguments) {
  Fd plain = MakeEventfd(0, 0);
  EXPECT_EQ(fcntl(plain.get(), F_GETFL), O_RDWR);
  EXPECT_EQ(fcntl(plain.get(), F_GETFD), 0);
  Fd flagged = MakeEventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  EXPECT_EQ(fcntl(flagged.get(), F_GETFL), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(fcntl(flagged.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_ERRNO(syscall(SYS_eventfd2, 0, O_APPEND), EINVAL);
  EXPECT_ERRNO(syscall(SYS_eventfd2, 0, 0x40000000), EINVAL);
}

TEST(EventfdTest, OldEventfdAndA32BitInitialValue) {
  Fd old(static_cast<int>(syscall(SYS_eventfd, 9)));
  ASSERT_TRUE(old.valid());
  EXPECT_EQ(fcntl(old.get(), F_GETFL), O_RDWR);
  uint64_t v = 0;
  ASSERT_EQ(ReadCount(old.get(), &v), 8);
  EXPECT_EQ(v, 9u);
  Fd wide(static_cast<int>(syscall(SYS_eventfd2, 0x100000005ULL, EFD_NONBLOCK)));
  ASSERT_TRUE(wide.valid());
  ASSERT_EQ(ReadCount(wide.get(), &v), 8);
  EXPECT_EQ(v, 5u);
}

TEST(EventfdTest, F_SETFLMakesReadsNonBlocking) {
  Fd fd = MakeEventfd(0, 0);
  ASSERT_OK(fcntl(fd.get(), F_SETFL, O_NONBLOCK));
  uint64_t v;
  EXPECT_ERRNO(ReadCount(fd.get(), &v), EAGAIN);
}

TEST(EventfdTest, ABlockedReadWakesForAChildsWrite) {
  Fd fd = MakeEventfd(0, 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    _exit(WriteCount(fd.get(), 42) ? 0 : 1);
  }
  uint64_t v = 0;
  EXPECT_EQ(ReadCount(fd.get(), &v), 8);
  EXPECT_EQ(v, 42u);
  EXPECT_EQ(Wait(pid), 0);
}

TEST(EventfdTest, ABlockedWriteWakesForAChildsRead) {
  Fd fd = MakeEventfd(0, 0);
  ASSERT_TRUE(WriteCount(fd.get(), kMaxCount));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    uint64_t v = 0;
    _exit(ReadCount(fd.get(), &v) == 8 && v == kMaxCount ? 0 : 1);
  }
  EXPECT_TRUE(WriteCount(fd.get(), 1));
  EXPECT_EQ(Wait(pid), 0);
  uint64_t v = 0;
  fcntl(fd.get(), F_SETFL, O_NONBLOCK);
  ASSERT_EQ(ReadCount(fd.get(), &v), 8);
  EXPECT_EQ(v, 1u);
}

volatile sig_atomic_t g_handled = 0;
void OnUsr1(int) { g_handled = 1; }

TEST(EventfdTest, AHandledSignalInterruptsABlockedRead) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = OnUsr1;  // no SA_RESTART
  ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
  g_handled = 0;
  Fd fd = MakeEventfd(0, 0);
  pid_t parent = getpid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    _exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
  }
  uint64_t v;
  EXPECT_ERRNO(ReadCount(fd.get(), &v), EINTR);
  EXPECT_EQ(g_handled, 1);
  EXPECT_EQ(Wait(pid), 0);
  sigaction(SIGUSR1, &old, nullptr);
}

TEST(EventfdTest, APollerWakesForAChildsWrite) {
  Fd fd = MakeEventfd(0, 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    _exit(WriteCount(fd.get(), 1) ? 0 : 1);
  }
  pollfd p{fd.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, -1), 1);
  EXPECT_EQ(p.revents, POLLIN);
  EXPECT_EQ(Wait(pid), 0);
}

TEST(EventfdTest, FstatShowsTheAnonymousInode) {
  Fd a = MakeEventfd(0, 0);
  Fd b = MakeEventfd(0, 0);
  struct stat sa {
  }, sb{};
  ASSERT_OK(fstat(a.get(), &sa));
  ASSERT_OK(fstat(b.get(), &sb));
  // Mode 0600 without file type bits; every anonymous file shares the inode.
  EXPECT_EQ(sa.st_mode, 0600u);
  EXPECT_EQ(sa.st_ino, sb.st_ino);
  EXPECT_EQ(sa.st_dev, sb.st_dev);
  EXPECT_EQ(sa.st_size, 0);
}

TEST(EventfdTest, NotSeekableAndNamedInProc) {
  Fd fd = MakeEventfd(1, EFD_NONBLOCK);
  uint64_t v;
  EXPECT_ERRNO(pread(fd.get(), &v, sizeof(v), 0), ESPIPE);
  EXPECT_ERRNO(pwrite(fd.get(), &v, sizeof(v), 0), ESPIPE);
  // noop_llseek: the position stays 0.
  EXPECT_EQ(lseek(fd.get(), 5, SEEK_SET), 0);
  char link[64] = {};
  std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  ASSERT_GT(readlink(path.c_str(), link, sizeof(link) - 1), 0);
  EXPECT_STREQ(link, "anon_inode:[eventfd]");
}

}  // namespace
