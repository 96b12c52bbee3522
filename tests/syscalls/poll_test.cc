// poll(2), ppoll(2), select(2) and pselect6(2): readiness of pipe ends and
// regular files, POLLHUP/POLLERR/POLLNVAL, the revents filter, EBADF, the
// argument checks, timeouts (and the time left written back), the signal
// mask of ppoll/pselect6, and a poller woken by another process.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::Fd;
using husk_test::MakePipe;
using husk_test::NowMs;
using husk_test::Pause;
using husk_test::Pipe;
using husk_test::Wait;

// Polls one descriptor; returns poll's result and stores revents.
int PollOne(int fd, short events, int timeout_ms, short* revents) {
  pollfd p{fd, events, 0};
  int n = poll(&p, 1, timeout_ms);
  *revents = p.revents;
  return n;
}

// A descriptor number that is not open.
int ClosedFd() {
  int fd = dup(0);
  if (fd >= 0) close(fd);
  return fd;
}

TEST(PollTest, EmptyPipeIsWritableButNotReadable) {
  Pipe p = MakePipe();
  short revents = -1;
  EXPECT_EQ(PollOne(p.r.get(), POLLIN, 0, &revents), 0);
  EXPECT_EQ(revents, 0);
  EXPECT_EQ(PollOne(p.w.get(), POLLOUT, 0, &revents), 1);
  EXPECT_EQ(revents, POLLOUT);
}

TEST(PollTest, DataMakesTheReadEndReadable) {
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  short revents = 0;
  // A read end is never writable, and a pipe has no priority data.
  EXPECT_EQ(PollOne(p.r.get(), POLLIN | POLLOUT | POLLPRI, 0, &revents), 1);
  EXPECT_EQ(revents, POLLIN);
  EXPECT_EQ(PollOne(p.r.get(), POLLIN | POLLRDNORM, 0, &revents), 1);
  EXPECT_EQ(revents, POLLIN | POLLRDNORM);
}

TEST(PollTest, ReventsHoldOnlyRequestedEvents) {
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  short revents = -1;
  EXPECT_EQ(PollOne(p.w.get(), POLLIN, 0, &revents), 0);
  EXPECT_EQ(revents, 0);
  EXPECT_EQ(PollOne(p.r.get(), POLLRDNORM, 0, &revents), 1);
  EXPECT_EQ(revents, POLLRDNORM);
  EXPECT_EQ(PollOne(p.r.get(), 0, 0, &revents), 0);
  EXPECT_EQ(revents, 0);
}

TEST(PollTest, RegularFilesAreAlwaysReady) {
  husk_test::TempDir dir;
  ASSERT_TRUE(husk_test::WriteFile(dir.Join("f"), ""));
  Fd fd(open(dir.Join("f").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  short revents = 0;
  EXPECT_EQ(PollOne(fd.get(), POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM | POLLPRI, 0, &revents), 1);
  EXPECT_EQ(revents, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
}

TEST(PollTest, HangupWhenTheLastWriterCloses) {
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  p.w.Reset();
  short revents = 0;
  // POLLHUP is reported even when not asked for.
  EXPECT_EQ(PollOne(p.r.get(), POLLIN, 0, &revents), 1);
  EXPECT_EQ(revents, POLLIN | POLLHUP);
  char c;
  ASSERT_EQ(read(p.r.get(), &c, 1), 1);
  EXPECT_EQ(PollOne(p.r.get(), 0, 0, &revents), 1);
  EXPECT_EQ(revents, POLLHUP);
}

TEST(PollTest, WriteEndWithoutReadersReportsAnError) {
  Pipe p = MakePipe();
  p.r.Reset();
  short revents = 0;
  EXPECT_EQ(PollOne(p.w.get(), POLLOUT, 0, &revents), 1);
  EXPECT_EQ(revents, POLLOUT | POLLERR);
  EXPECT_EQ(PollOne(p.w.get(), 0, 0, &revents), 1);
  EXPECT_EQ(revents, POLLERR);
}

TEST(PollTest, ClosedDescriptorIsPollnval) {
  short revents = 0;
  EXPECT_EQ(PollOne(ClosedFd(), POLLIN, 0, &revents), 1);
  EXPECT_EQ(revents, POLLNVAL);
  EXPECT_EQ(PollOne(ClosedFd(), 0, 0, &revents), 1);
  EXPECT_EQ(revents, POLLNVAL);
}

TEST(PollTest, OPathDescriptorIsPollnval) {
  husk_test::TempDir dir;
  Fd fd(open(dir.path().c_str(), O_PATH | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  short revents = 0;
  EXPECT_EQ(PollOne(fd.get(), POLLIN, 0, &revents), 1);
  EXPECT_EQ(revents, POLLNVAL);
}

TEST(PollTest, NegativeDescriptorsAreIgnoredAndTheirReventsCleared) {
  Pipe p = MakePipe();
  pollfd fds[3] = {{-1, POLLIN, 0x7fff}, {p.w.get(), POLLOUT, 0}, {-42, POLLOUT, POLLOUT}};
  EXPECT_EQ(poll(fds, 3, 0), 1);
  EXPECT_EQ(fds[0].revents, 0);
  EXPECT_EQ(fds[1].revents, POLLOUT);
  EXPECT_EQ(fds[2].revents, 0);
  // poll leaves fd and events as they were.
  EXPECT_EQ(fds[0].fd, -1);
  EXPECT_EQ(fds[0].events, POLLIN);
}

TEST(PollTest, TheCountIsOfDescriptorsNotEvents) {
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  pollfd fds[3] = {{p.r.get(), POLLIN, 0}, {p.w.get(), POLLOUT, 0}, {p.r.get(), POLLIN, 0}};
  EXPECT_EQ(poll(fds, 3, 0), 3);
}

TEST(PollTest, MoreDescriptorsThanTheLimitIsEinval) {
  rlimit rl{};
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
  if (rl.rlim_cur >= 0xffffffffU) GTEST_SKIP() << "RLIMIT_NOFILE does not fit poll's nfds";
  EXPECT_ERRNO(syscall(SYS_poll, nullptr, rl.rlim_cur + 1, 0), EINVAL);
  // nfds is an unsigned int: the upper half of the register is ignored.
  EXPECT_EQ(syscall(SYS_poll, nullptr, 0xffffffff00000000ULL, 0), 0);
  EXPECT_ERRNO(syscall(SYS_poll, nullptr, 0xffffffffULL, 0), EINVAL);
}

TEST(PollTest, BadArraysAreEfault) {
  EXPECT_ERRNO(syscall(SYS_poll, 8, 1, 0), EFAULT);
  // An array that can be read but not written: revents cannot be stored.
  long page = sysconf(_SC_PAGESIZE);
  void* mem = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  Pipe p = MakePipe();
  auto* fds = static_cast<pollfd*>(mem);
  fds[0] = pollfd{p.w.get(), POLLOUT, 0};
  ASSERT_OK(mprotect(mem, page, PROT_READ));
  EXPECT_ERRNO(poll(fds, 1, 0), EFAULT);
  munmap(mem, page);
}

TEST(PollTest, TimeoutWaitsAtLeastThatLong) {
  Pipe p = MakePipe();
  short revents = -1;
  int64_t start = NowMs();
  EXPECT_EQ(PollOne(p.r.get(), POLLIN, 100, &revents), 0);
  int64_t elapsed = NowMs() - start;
  EXPECT_EQ(revents, 0);
  EXPECT_GE(elapsed, 99);
  EXPECT_LT(elapsed, 10000);
}

TEST(PollTest, NoDescriptorsSleepsForTheTimeout) {
  int64_t start = NowMs();
  EXPECT_EQ(poll(nullptr, 0, 50), 0);
  EXPECT_GE(NowMs() - start, 49);
}

TEST(PollTest, AChildsWriteWakesThePoller) {
  Pipe p = MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    _exit(write(p.w.get(), "x", 1) == 1 ? 0 : 1);
  }
  short revents = 0;
  EXPECT_EQ(PollOne(p.r.get(), POLLIN, -1, &revents), 1);
  EXPECT_EQ(revents, POLLIN);
  char c;
  EXPECT_EQ(read(p.r.get(), &c, 1), 1);
  EXPECT_EQ(Wait(pid), 0);
}

TEST(PollTest, TheLastWriterExitingWakesThePollerWithPollhup) {
  Pipe p = MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    p.r.Reset();
    Pause();
    _exit(0);  // closes the last write end
  }
  p.w.Reset();
  short revents = 0;
  EXPECT_EQ(PollOne(p.r.get(), POLLIN, -1, &revents), 1);
  EXPECT_EQ(revents, POLLHUP);
  EXPECT_EQ(Wait(pid), 0);
}

TEST(PollTest, StdoutIsWritable) {
  short revents = 0;
  EXPECT_EQ(PollOne(1, POLLOUT, 0, &revents), 1);
  EXPECT_TRUE(revents & POLLOUT);
}

TEST(PpollTest, TheTimeLeftIsWrittenBack) {
  Pipe p = MakePipe();
  pollfd fd{p.r.get(), POLLIN, 0};
  timespec ts{0, 50 * 1000 * 1000};
  int64_t start = NowMs();
  EXPECT_EQ(syscall(SYS_ppoll, &fd, 1, &ts, nullptr, 8), 0);
  EXPECT_GE(NowMs() - start, 49);
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_EQ(ts.tv_nsec, 0);
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  ts = timespec{100, 0};
  EXPECT_EQ(syscall(SYS_ppoll, &fd, 1, &ts, nullptr, 8), 1);
  EXPECT_EQ(fd.revents, POLLIN);
  EXPECT_LE(ts.tv_sec, 100);
  EXPECT_GE(ts.tv_sec, 90);
  // A zero timeout is not written.
  ts = timespec{0, 0};
  EXPECT_EQ(syscall(SYS_ppoll, &fd, 1, &ts, nullptr, 8), 1);
}

TEST(PpollTest, BadTimeoutsAndMasks) {
  Pipe p = MakePipe();
  pollfd fd{p.w.get(), POLLOUT, 0};
  timespec ts{-1, 0};
  EXPECT_ERRNO(syscall(SYS_ppoll, &fd, 1, &ts, nullptr, 8), EINVAL);
  ts = timespec{0, 1000000000};
  EXPECT_ERRNO(syscall(SYS_ppoll, &fd, 1, &ts, nullptr, 8), EINVAL);
  ts = timespec{0, -1};
  EXPECT_ERRNO(syscall(SYS_ppoll, &fd, 1, &ts, nullptr, 8), EINVAL);
  EXPECT_ERRNO(syscall(SYS_ppoll, &fd, 1, 8, nullptr, 8), EFAULT);
  uint64_t mask = 0;
  EXPECT_ERRNO(syscall(SYS_ppoll, &fd, 1, nullptr, &mask, 4), EINVAL);
  EXPECT_ERRNO(syscall(SYS_ppoll, &fd, 1, nullptr, 8, 8), EFAULT);
  // Without a mask its size is not looked at.
  EXPECT_EQ(syscall(SYS_ppoll, &fd, 1, nullptr, nullptr, 4), 1);
  EXPECT_EQ(syscall(SYS_ppoll, &fd, 1, nullptr, &mask, 8), 1);
}

TEST(PpollTest, TheCallersMaskIsBackAfterwards) {
  sigset_t block, old, now;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &block, &old));
  sigset_t empty;
  sigemptyset(&empty);
  timespec ts{0, 0};
  EXPECT_EQ(ppoll(nullptr, 0, &ts, &empty), 0);
  ASSERT_OK(sigprocmask(SIG_SETMASK, nullptr, &now));
  EXPECT_TRUE(sigismember(&now, SIGUSR1));
  ASSERT_OK(sigprocmask(SIG_SETMASK, &old, nullptr));
}

volatile sig_atomic_t g_usr1_handled = 0;
void OnUsr1(int) { g_usr1_handled = 1; }

// Blocks SIGUSR1, makes it pending with a handler installed, and undoes it all.
class PendingUsr1 {
 public:
  PendingUsr1() {
    struct sigaction sa {};
    sa.sa_handler = OnUsr1;
    EXPECT_EQ(sigaction(SIGUSR1, &sa, &old_action_), 0);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    EXPECT_EQ(sigprocmask(SIG_BLOCK, &block, &old_mask_), 0);
    g_usr1_handled = 0;
    EXPECT_EQ(raise(SIGUSR1), 0);
  }
  ~PendingUsr1() {
    sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    sigaction(SIGUSR1, &old_action_, nullptr);
  }
  static bool StillBlocked() {
    sigset_t now;
    sigprocmask(SIG_SETMASK, nullptr, &now);
    return sigismember(&now, SIGUSR1);
  }

 private:
  struct sigaction old_action_ {};
  sigset_t old_mask_{};
};

TEST(PpollTest, TheTemporaryMaskLetsAPendingSignalIn) {
  PendingUsr1 pending;
  Pipe p = MakePipe();
  pollfd fd{p.r.get(), POLLIN, 0};
  sigset_t empty;
  sigemptyset(&empty);
  EXPECT_ERRNO(ppoll(&fd, 1, nullptr, &empty), EINTR);
  EXPECT_EQ(g_usr1_handled, 1);
  EXPECT_TRUE(PendingUsr1::StillBlocked());
}

TEST(PselectTest, TheTemporaryMaskLetsAPendingSignalIn) {
  PendingUsr1 pending;
  Pipe p = MakePipe();
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p.r.get(), &rs);
  sigset_t empty;
  sigemptyset(&empty);
  EXPECT_ERRNO(pselect(p.r.get() + 1, &rs, nullptr, nullptr, nullptr, &empty), EINTR);
  EXPECT_EQ(g_usr1_handled, 1);
  EXPECT_TRUE(PendingUsr1::StillBlocked());
}

// Installs OnUsr1 for SIGUSR1 with SA_RESTART, and puts the old action back.
class Usr1Handler {
 public:
  Usr1Handler() {
    struct sigaction sa {};
    sa.sa_handler = OnUsr1;
    sa.sa_flags = SA_RESTART;
    EXPECT_EQ(sigaction(SIGUSR1, &sa, &old_), 0);
    g_usr1_handled = 0;
  }
  ~Usr1Handler() { sigaction(SIGUSR1, &old_, nullptr); }

 private:
  struct sigaction old_ {};
};

// Forks a child that sends SIGUSR1 to the caller a little later.
pid_t SignalParentLater() {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    Pause();
    _exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
  }
  return pid;
}

// poll and select are never restarted after a handler, SA_RESTART or not.
TEST(PollTest, AHandledSignalInterruptsWithEintr) {
  Usr1Handler handler;
  Pipe p = MakePipe();
  pid_t pid = SignalParentLater();
  ASSERT_GE(pid, 0);
  pollfd fd{p.r.get(), POLLIN, 0};
  EXPECT_ERRNO(poll(&fd, 1, -1), EINTR);
  EXPECT_EQ(g_usr1_handled, 1);
  EXPECT_EQ(Wait(pid), 0);
}

TEST(SelectTest, AHandledSignalInterruptsWithEintr) {
  Usr1Handler handler;
  Pipe p = MakePipe();
  pid_t pid = SignalParentLater();
  ASSERT_GE(pid, 0);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p.r.get(), &rs);
  EXPECT_ERRNO(select(p.r.get() + 1, &rs, nullptr, nullptr, nullptr), EINTR);
  EXPECT_EQ(g_usr1_handled, 1);
  EXPECT_EQ(Wait(pid), 0);
}

TEST(SelectTest, ReadableAndWritableSets) {
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  fd_set rs, ws, es;
  FD_ZERO(&rs);
  FD_ZERO(&ws);
  FD_ZERO(&es);
  for (int fd : {p.r.get(), p.w.get()}) {
    FD_SET(fd, &rs);
    FD_SET(fd, &ws);
    FD_SET(fd, &es);
  }
  timeval tv{0, 0};
  int nfds = std::max(p.r.get(), p.w.get()) + 1;
  EXPECT_EQ(select(nfds, &rs, &ws, &es, &tv), 2);
  EXPECT_TRUE(FD_ISSET(p.r.get(), &rs));
  EXPECT_FALSE(FD_ISSET(p.w.get(), &rs));
  EXPECT_TRUE(FD_ISSET(p.w.get(), &ws));
  EXPECT_FALSE(FD_ISSET(p.r.get(), &ws));
  EXPECT_FALSE(FD_ISSET(p.r.get(), &es));
  EXPECT_FALSE(FD_ISSET(p.w.get(), &es));
}

TEST(SelectTest, NothingReadyClearsTheSets) {
  Pipe p = MakePipe();
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p.r.get(), &rs);
  timeval tv{0, 0};
  EXPECT_EQ(select(p.r.get() + 1, &rs, nullptr, nullptr, &tv), 0);
  EXPECT_FALSE(FD_ISSET(p.r.get(), &rs));
}

TEST(SelectTest, RegularFileIsReadableAndWritable) {
  husk_test::TempDir dir;
  ASSERT_TRUE(husk_test::WriteFile(dir.Join("f"), "data"));
  Fd fd(open(dir.Join("f").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  fd_set rs, ws, es;
  FD_ZERO(&rs);
  FD_ZERO(&ws);
  FD_ZERO(&es);
  FD_SET(fd.get(), &rs);
  FD_SET(fd.get(), &ws);
  FD_SET(fd.get(), &es);
  timeval tv{0, 0};
  EXPECT_EQ(select(fd.get() + 1, &rs, &ws, &es, &tv), 2);
  EXPECT_TRUE(FD_ISSET(fd.get(), &rs));
  EXPECT_TRUE(FD_ISSET(fd.get(), &ws));
  EXPECT_FALSE(FD_ISSET(fd.get(), &es));
}

TEST(SelectTest, WriteEndWithoutReadersIsReadableToo) {
  Pipe p = MakePipe();
  p.r.Reset();
  fd_set rs, ws;
  FD_ZERO(&rs);
  FD_ZERO(&ws);
  FD_SET(p.w.get(), &rs);
  FD_SET(p.w.get(), &ws);
  timeval tv{0, 0};
  // POLLERR belongs to both the read and the write set.
  EXPECT_EQ(select(p.w.get() + 1, &rs, &ws, nullptr, &tv), 2);
}

TEST(SelectTest, HangupIsReadable) {
  Pipe p = MakePipe();
  p.w.Reset();
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p.r.get(), &rs);
  timeval tv{0, 0};
  EXPECT_EQ(select(p.r.get() + 1, &rs, nullptr, nullptr, &tv), 1);
}

TEST(SelectTest, ClosedDescriptorIsEbadf) {
  fd_set rs;
  FD_ZERO(&rs);
  int fd = ClosedFd();
  FD_SET(fd, &rs);
  timeval tv{0, 0};
  EXPECT_ERRNO(select(fd + 1, &rs, nullptr, nullptr, &tv), EBADF);
  // Also when only the exception set names it.
  fd_set es;
  FD_ZERO(&es);
  FD_SET(fd, &es);
  EXPECT_ERRNO(select(fd + 1, nullptr, nullptr, &es, &tv), EBADF);
}

TEST(SelectTest, OPathDescriptorIsReadyInEverySet) {
  husk_test::TempDir dir;
  Fd fd(open(dir.path().c_str(), O_PATH | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  fd_set rs, ws, es;
  FD_ZERO(&rs);
  FD_ZERO(&ws);
  FD_ZERO(&es);
  FD_SET(fd.get(), &rs);
  FD_SET(fd.get(), &ws);
  FD_SET(fd.get(), &es);
  timeval tv{0, 0};
  // It is open (no EBADF), but select cannot look at it: Linux since 5.17
  // reports it in every set rather than never (POLLNVAL is in all three).
  EXPECT_EQ(select(fd.get() + 1, &rs, &ws, &es, &tv), 3);
}

TEST(SelectTest, BitsPastNfdsAreIgnored) {
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p.r.get(), &rs);
  FD_SET(ClosedFd(), &rs);
  timeval tv{0, 0};
  EXPECT_EQ(select(p.r.get(), &rs, nullptr, nullptr, &tv), 0);
}

TEST(SelectTest, BadArguments) {
  timeval tv{0, 0};
  EXPECT_ERRNO(syscall(SYS_select, -1, nullptr, nullptr, nullptr, &tv), EINVAL);
  tv = timeval{-1, 0};
  EXPECT_ERRNO(syscall(SYS_select, 0, nullptr, nullptr, nullptr, &tv), EINVAL);
  tv = timeval{0, -1};
  EXPECT_ERRNO(syscall(SYS_select, 0, nullptr, nullptr, nullptr, &tv), EINVAL);
  EXPECT_ERRNO(syscall(SYS_select, 0, nullptr, nullptr, nullptr, 8), EFAULT);
  Pipe p = MakePipe();
  tv = timeval{0, 0};
  EXPECT_ERRNO(syscall(SYS_select, p.r.get() + 1, 8, nullptr, nullptr, &tv), EFAULT);
}

TEST(SelectTest, MicrosecondsCarryIntoSeconds) {
  Pipe p = MakePipe();
  fd_set ws;
  FD_ZERO(&ws);
  FD_SET(p.w.get(), &ws);
  // 2.5 seconds written as microseconds is valid: select normalizes it.
  timeval tv{0, 2500000};
  EXPECT_EQ(syscall(SYS_select, p.w.get() + 1, nullptr, &ws, nullptr, &tv), 1);
  EXPECT_LE(tv.tv_sec, 2);
  EXPECT_GE(tv.tv_sec, 1);
  EXPECT_LT(tv.tv_usec, 1000000);
}

TEST(SelectTest, TheTimeLeftIsWrittenBack) {
  Pipe p = MakePipe();
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p.r.get(), &rs);
  timeval tv{0, 50000};
  int64_t start = NowMs();
  EXPECT_EQ(syscall(SYS_select, p.r.get() + 1, &rs, nullptr, nullptr, &tv), 0);
  EXPECT_GE(NowMs() - start, 49);
  EXPECT_EQ(tv.tv_sec, 0);
  EXPECT_EQ(tv.tv_usec, 0);
}

TEST(SelectTest, NoSetsSleepsForTheTimeout) {
  timeval tv{0, 50000};
  int64_t start = NowMs();
  EXPECT_EQ(select(0, nullptr, nullptr, nullptr, &tv), 0);
  EXPECT_GE(NowMs() - start, 49);
}

TEST(SelectTest, AChildsWriteWakesSelect) {
  Pipe p = MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    _exit(write(p.w.get(), "x", 1) == 1 ? 0 : 1);
  }
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p.r.get(), &rs);
  EXPECT_EQ(select(p.r.get() + 1, &rs, nullptr, nullptr, nullptr), 1);
  EXPECT_TRUE(FD_ISSET(p.r.get(), &rs));
  EXPECT_EQ(Wait(pid), 0);
}

TEST(PselectTest, TimespecMaskAndTheirChecks) {
  Pipe p = MakePipe();
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p.r.get(), &rs);
  uint64_t mask = 0;
  struct {
    const void* mask;
    size_t size;
  } pack{&mask, 8};
  timespec ts{0, 50 * 1000 * 1000};
  int64_t start = NowMs();
  EXPECT_EQ(syscall(SYS_pselect6, p.r.get() + 1, &rs, nullptr, nullptr, &ts, &pack), 0);
  EXPECT_GE(NowMs() - start, 49);
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_EQ(ts.tv_nsec, 0);
  ts = timespec{0, 0};
  pack.size = 4;
  EXPECT_ERRNO(syscall(SYS_pselect6, p.r.get() + 1, &rs, nullptr, nullptr, &ts, &pack), EINVAL);
  EXPECT_ERRNO(syscall(SYS_pselect6, p.r.get() + 1, &rs, nullptr, nullptr, &ts, 8), EFAULT);
  // A null mask in the pack leaves the size unchecked.
  pack.mask = nullptr;
  FD_SET(p.r.get(), &rs);
  EXPECT_EQ(syscall(SYS_pselect6, p.r.get() + 1, &rs, nullptr, nullptr, &ts, &pack), 0);
  ts = timespec{0, 1000000000};
  EXPECT_ERRNO(syscall(SYS_pselect6, p.r.get() + 1, &rs, nullptr, nullptr, &ts, nullptr),
               EINVAL);
}

}  // namespace
