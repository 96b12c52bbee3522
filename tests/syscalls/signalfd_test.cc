// Conformance: signalfd(2) and signalfd4(2): reads dequeue the reader's pending signals of the
// mask as struct signalfd_siginfo, block or fail with EAGAIN, poll and epoll readiness, mask
// updates, fork, and signals interrupting a blocked read.
// Relies on, beyond the start-up set in test_util.h: signalfd4 rt_sigprocmask rt_sigaction
// rt_sigpending rt_sigtimedwait kill poll epoll_create1 epoll_ctl epoll_wait fcntl fork wait4
// setitimer readlink.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

constexpr size_t kInfoSize = sizeof(signalfd_siginfo);
static_assert(kInfoSize == 128);

sigset_t Set(std::initializer_list<int> sigs) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : sigs) sigaddset(&set, s);
  return set;
}

// Blocks SIGUSR1, SIGUSR2, SIGRTMIN and SIGCHLD for each test and clears what is left pending.
class SignalfdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sigset_t block = Set({SIGUSR1, SIGUSR2, SIGRTMIN, SIGCHLD});
    ASSERT_OK(sigprocmask(SIG_BLOCK, &block, &saved_mask_));
  }
  void TearDown() override {
    sigset_t all = Set({SIGUSR1, SIGUSR2, SIGRTMIN, SIGCHLD});
    timespec zero{0, 0};
    while (sigtimedwait(&all, nullptr, &zero) > 0) {
    }
    sigprocmask(SIG_SETMASK, &saved_mask_, nullptr);
  }
  sigset_t saved_mask_;
};

Fd NewSignalfd(std::initializer_list<int> sigs, int flags = SFD_CLOEXEC) {
  sigset_t mask = Set(sigs);
  Fd fd(signalfd(-1, &mask, flags));
  EXPECT_TRUE(fd.valid()) << ErrnoName(errno);
  return fd;
}

bool Pending(int sig) {
  sigset_t set;
  sigpending(&set);
  return sigismember(&set, sig) == 1;
}

TEST_F(SignalfdTest, CreateFlags) {
  Fd fd = NewSignalfd({SIGUSR1}, 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR);
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), 0);
  Fd nb = NewSignalfd({SIGUSR1}, SFD_NONBLOCK | SFD_CLOEXEC);
  EXPECT_EQ(fcntl(nb.get(), F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(fcntl(nb.get(), F_GETFD), FD_CLOEXEC);
  char link[64] = {};
  std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  ASSERT_GT(readlink(path.c_str(), link, sizeof(link) - 1), 0) << ErrnoName(errno);
  EXPECT_STREQ(link, "anon_inode:[signalfd]");
}

TEST_F(SignalfdTest, Errors) {
  sigset_t mask = Set({SIGUSR1});
  EXPECT_ERRNO(signalfd(-1, &mask, 1), EINVAL);
  EXPECT_ERRNO(signalfd(-1, &mask, O_RDWR), EINVAL);
  // The kernel takes the mask's size: only its own sigset (8 bytes) will do,
  // and the size is checked before the mask is read.
  EXPECT_ERRNO(syscall(SYS_signalfd4, -1, &mask, 4, 0), EINVAL);
  EXPECT_ERRNO(syscall(SYS_signalfd4, -1, &mask, 128, 0), EINVAL);
  EXPECT_ERRNO(syscall(SYS_signalfd4, -1, reinterpret_cast<void*>(8), 4, 0), EINVAL);
  EXPECT_ERRNO(syscall(SYS_signalfd4, -1, reinterpret_cast<void*>(8), 8, 0), EFAULT);
  EXPECT_ERRNO(syscall(SYS_signalfd, -1, reinterpret_cast<void*>(8), 8), EFAULT);
  // An existing descriptor must be a signalfd; flags are checked before it.
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(signalfd(p.r.get(), &mask, 0), EINVAL);
  EXPECT_ERRNO(signalfd(999, &mask, 0), EBADF);
  EXPECT_ERRNO(signalfd(-2, &mask, 0), EBADF);
  EXPECT_ERRNO(signalfd(999, &mask, 1), EINVAL);
}

TEST_F(SignalfdTest, ReadDequeuesThePendingSignalsOfTheMask) {
  Fd fd = NewSignalfd({SIGUSR1, SIGUSR2}, SFD_NONBLOCK);
  ASSERT_OK(kill(getpid(), SIGUSR2));
  ASSERT_OK(kill(getpid(), SIGUSR1));
  ASSERT_TRUE(Pending(SIGUSR1));
  signalfd_siginfo info[4] = {};
  ASSERT_EQ(read(fd.get(), info, sizeof(info)), static_cast<ssize_t>(2 * kInfoSize));
  // Lowest signal number first.
  EXPECT_EQ(info[0].ssi_signo, static_cast<uint32_t>(SIGUSR1));
  EXPECT_EQ(info[1].ssi_signo, static_cast<uint32_t>(SIGUSR2));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(info[i].ssi_code, SI_USER);
    EXPECT_EQ(info[i].ssi_pid, static_cast<uint32_t>(getpid()));
    EXPECT_EQ(info[i].ssi_uid, getuid());
    EXPECT_EQ(info[i].ssi_errno, 0);
  }
  EXPECT_FALSE(Pending(SIGUSR1));
  EXPECT_FALSE(Pending(SIGUSR2));
  EXPECT_ERRNO(read(fd.get(), info, sizeof(info)), EAGAIN);
}

TEST_F(SignalfdTest, AReadTakesOnlyWhatFits) {
  Fd fd = NewSignalfd({SIGRTMIN}, SFD_NONBLOCK);
  // Real-time signals queue: three instances, read one by one.
  for (int i = 0; i < 3; ++i) ASSERT_OK(kill(getpid(), SIGRTMIN));
  signalfd_siginfo info[2];
  char small[kInfoSize - 1];
  EXPECT_ERRNO(read(fd.get(), small, sizeof(small)), EINVAL);
  EXPECT_ERRNO(read(fd.get(), small, 0), EINVAL);
  EXPECT_EQ(read(fd.get(), info, kInfoSize + 64), static_cast<ssize_t>(kInfoSize));
  EXPECT_EQ(read(fd.get(), info, sizeof(info)), static_cast<ssize_t>(2 * kInfoSize));
  EXPECT_EQ(info[1].ssi_signo, static_cast<uint32_t>(SIGRTMIN));
  EXPECT_ERRNO(read(fd.get(), info, sizeof(info)), EAGAIN);
  char c = 0;
  EXPECT_ERRNO(write(fd.get(), &c, 1), EINVAL);
}

TEST_F(SignalfdTest, SignalsOutsideTheMaskStayPending) {
  Fd fd = NewSignalfd({SIGUSR1}, SFD_NONBLOCK);
  ASSERT_OK(kill(getpid(), SIGUSR2));
  signalfd_siginfo info;
  EXPECT_ERRNO(read(fd.get(), &info, sizeof(info)), EAGAIN);
  EXPECT_TRUE(Pending(SIGUSR2));
  pollfd p{fd.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
}

TEST_F(SignalfdTest, ABlockingReadWaitsForASignal) {
  Fd fd = NewSignalfd({SIGUSR1});
  const pid_t parent = getpid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();  // the parent is likely blocked by now; the result does not depend on it
    _exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
  }
  signalfd_siginfo info{};
  ASSERT_EQ(read(fd.get(), &info, sizeof(info)), static_cast<ssize_t>(kInfoSize))
      << ErrnoName(errno);
  EXPECT_EQ(info.ssi_signo, static_cast<uint32_t>(SIGUSR1));
  EXPECT_EQ(info.ssi_pid, static_cast<uint32_t>(pid));
  EXPECT_EQ(Wait(pid), 0);
}

TEST_F(SignalfdTest, PollAndEpollSeeAPendingSignal) {
  Fd fd = NewSignalfd({SIGUSR1}, SFD_NONBLOCK);
  pollfd p{fd.get(), POLLIN | POLLOUT, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  Fd ep(epoll_create1(EPOLL_CLOEXEC));
  ASSERT_TRUE(ep.valid());
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 7;
  ASSERT_OK(epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd.get(), &ev));
  epoll_event out{};
  EXPECT_EQ(epoll_wait(ep.get(), &out, 1, 0), 0);

  // Another process sends the signal while epoll_wait blocks.
  const pid_t parent = getpid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    _exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
  }
  ASSERT_EQ(epoll_wait(ep.get(), &out, 1, 10000), 1) << ErrnoName(errno);
  EXPECT_EQ(out.data.u64, 7u);
  EXPECT_EQ(out.events, static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(Wait(pid), 0);
  ASSERT_EQ(poll(&p, 1, 0), 1);
  EXPECT_EQ(p.revents, POLLIN);  // never writable
  // Reported while pending (level-triggered); gone once read.
  EXPECT_EQ(epoll_wait(ep.get(), &out, 1, 0), 1);
  signalfd_siginfo info;
  ASSERT_EQ(read(fd.get(), &info, sizeof(info)), static_cast<ssize_t>(kInfoSize));
  EXPECT_EQ(epoll_wait(ep.get(), &out, 1, 0), 0);
  EXPECT_EQ(poll(&p, 1, 0), 0);
}

TEST_F(SignalfdTest, PollWaitsForASignalFromAnotherProcess) {
  Fd fd = NewSignalfd({SIGUSR2}, SFD_NONBLOCK);
  const pid_t parent = getpid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    _exit(kill(parent, SIGUSR2) == 0 ? 0 : 1);
  }
  pollfd p{fd.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  EXPECT_EQ(p.revents, POLLIN);
  EXPECT_EQ(Wait(pid), 0);
}

TEST_F(SignalfdTest, SignalfdOnAnExistingFileReplacesItsMask) {
  Fd fd = NewSignalfd({SIGUSR1}, 0);
  ASSERT_OK(kill(getpid(), SIGUSR2));
  pollfd p{fd.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  // The same descriptor comes back; its status flags do not change.
  sigset_t usr2 = Set({SIGUSR2});
  EXPECT_EQ(signalfd(fd.get(), &usr2, SFD_NONBLOCK), fd.get());
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(poll(&p, 1, 0), 1);
  signalfd_siginfo info;
  ASSERT_EQ(read(fd.get(), &info, sizeof(info)), static_cast<ssize_t>(kInfoSize));
  EXPECT_EQ(info.ssi_signo, static_cast<uint32_t>(SIGUSR2));
  // SIGKILL and SIGSTOP in a mask are ignored without an error.
  sigset_t all;
  sigfillset(&all);
  EXPECT_EQ(signalfd(fd.get(), &all, 0), fd.get());
  Fd every(signalfd(-1, &all, SFD_CLOEXEC));
  EXPECT_TRUE(every.valid()) << ErrnoName(errno);
}

TEST_F(SignalfdTest, AForkedChildReadsItsOwnSignals) {
  Fd fd = NewSignalfd({SIGUSR1});
  Pipe go = MakePipe(O_CLOEXEC);
  const pid_t parent = getpid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    if (read(go.r.get(), &c, 1) != 1) _exit(1);
    signalfd_siginfo info{};
    if (read(fd.get(), &info, sizeof(info)) != static_cast<ssize_t>(kInfoSize)) _exit(2);
    if (info.ssi_signo != static_cast<uint32_t>(SIGUSR1)) _exit(3);
    if (info.ssi_pid != static_cast<uint32_t>(parent)) _exit(4);
    _exit(0);
  }
  ASSERT_OK(kill(pid, SIGUSR1));
  char c = 'g';
  ASSERT_EQ(write(go.w.get(), &c, 1), 1);
  EXPECT_EQ(Wait(pid), 0);
  // The parent's own signals were not touched.
  EXPECT_FALSE(Pending(SIGUSR1));
}

TEST_F(SignalfdTest, SigchldCarriesTheChildsStatus) {
  Fd fd = NewSignalfd({SIGCHLD});
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(3);
  signalfd_siginfo info{};
  do {
    ASSERT_EQ(read(fd.get(), &info, sizeof(info)), static_cast<ssize_t>(kInfoSize));
  } while (info.ssi_pid != static_cast<uint32_t>(pid));
  EXPECT_EQ(info.ssi_signo, static_cast<uint32_t>(SIGCHLD));
  EXPECT_EQ(info.ssi_code, CLD_EXITED);
  EXPECT_EQ(info.ssi_status, 3);
  EXPECT_EQ(info.ssi_uid, getuid());
  int status;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
}

volatile sig_atomic_t g_alarms = 0;
volatile sig_atomic_t g_raise = 0;
void OnAlarm(int) {
  g_alarms = g_alarms + 1;
  if (g_raise) kill(getpid(), SIGUSR1);  // what a restarted read then takes
}

TEST_F(SignalfdTest, ABlockedReadIsInterruptedByAHandledSignal) {
  for (bool restart : {false, true}) {
    struct sigaction sa {
    }, old{};
    sa.sa_handler = OnAlarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    ASSERT_OK(sigaction(SIGALRM, &sa, &old));
    g_alarms = 0;
    g_raise = restart;
    Fd fd = NewSignalfd({SIGUSR1});
    // Without SA_RESTART, SIGALRM comes every 30 ms, so one arrives while the read blocks:
    // EINTR. With it, the handler raises SIGUSR1 and the restarted read returns it.
    itimerval it{};
    it.it_value.tv_usec = 30000;
    if (!restart) it.it_interval.tv_usec = 30000;
    ASSERT_OK(setitimer(ITIMER_REAL, &it, nullptr));
    signalfd_siginfo info{};
    ssize_t n = read(fd.get(), &info, sizeof(info));
    int err = errno;
    itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    if (restart) {
      EXPECT_EQ(n, static_cast<ssize_t>(kInfoSize)) << ErrnoName(err);
      EXPECT_EQ(info.ssi_signo, static_cast<uint32_t>(SIGUSR1));
    } else {
      EXPECT_EQ(n, -1);
      EXPECT_EQ(err, EINTR);
      EXPECT_FALSE(Pending(SIGUSR1));
    }
    EXPECT_GE(g_alarms, 1);
    sigaction(SIGALRM, &old, nullptr);
  }
}

}  // namespace
}  // namespace husk_test
