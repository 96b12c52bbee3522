// Conformance: timerfd_create(2), timerfd_settime(2), timerfd_gettime(2) and the timer file:
// read's expiration count, blocking and EAGAIN, poll and epoll readiness, signals, fork.
// Timing checks are lower bounds only (an expiry never comes early).
// Relies on, beyond the start-up set in test_util.h: timerfd_create timerfd_settime
// timerfd_gettime clock_gettime clock_nanosleep poll epoll_create1 epoll_ctl epoll_wait
// fcntl fork wait4 kill rt_sigaction setitimer readlink.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

constexpr int64_t kMs = 1000000;

int64_t Ns(const timespec& ts) { return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec; }
timespec Ts(int64_t ns) { return timespec{static_cast<time_t>(ns / 1000000000), ns % 1000000000}; }

int64_t Now(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return Ns(ts);
}

itimerspec Spec(int64_t value_ns, int64_t interval_ns = 0) {
  return itimerspec{Ts(interval_ns), Ts(value_ns)};
}

// Sleeps until `clock` reads at least `deadline`.
void SleepUntil(clockid_t clock, int64_t deadline) {
  timespec ts = Ts(deadline);
  while (clock_nanosleep(clock, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

Fd NewTimer(clockid_t clock = CLOCK_MONOTONIC, int flags = TFD_CLOEXEC) {
  Fd fd(timerfd_create(clock, flags));
  EXPECT_TRUE(fd.valid()) << ErrnoName(errno);
  return fd;
}

// timerfd_settime with a value built in place.
int Settime(int fd, int flags, const itimerspec& value, itimerspec* old) {
  return timerfd_settime(fd, flags, &value, old);
}

uint64_t ReadTicks(int fd) {
  uint64_t ticks = 0;
  EXPECT_EQ(read(fd, &ticks, sizeof(ticks)), static_cast<ssize_t>(sizeof(ticks)))
      << ErrnoName(errno);
  return ticks;
}

TEST(TimerfdTest, CreateTakesTheTimerClocksAndFlags) {
  for (clockid_t clock : {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME}) {
    Fd fd(timerfd_create(clock, 0));
    ASSERT_TRUE(fd.valid()) << clock << ": " << ErrnoName(errno);
    EXPECT_EQ(fcntl(fd.get(), F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR);
    EXPECT_EQ(fcntl(fd.get(), F_GETFD), 0);
  }
  Fd fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
  char link[64] = {};
  std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  ASSERT_GT(readlink(path.c_str(), link, sizeof(link) - 1), 0) << ErrnoName(errno);
  EXPECT_STREQ(link, "anon_inode:[timerfd]");
}

TEST(TimerfdTest, CreateErrors) {
  EXPECT_ERRNO(timerfd_create(CLOCK_MONOTONIC, 1), EINVAL);
  EXPECT_ERRNO(timerfd_create(CLOCK_MONOTONIC, O_RDWR), EINVAL);
  for (clockid_t clock : {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW,
                          CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_TAI, 12345, -1}) {
    EXPECT_ERRNO(timerfd_create(clock, 0), EINVAL);
  }
  // The alarm clocks need CAP_WAKE_ALARM in the initial user namespace, which
  // a process in a container's (the test fence's, husk's sandbox's) never has.
  EXPECT_ERRNO(timerfd_create(CLOCK_REALTIME_ALARM, 0), EPERM);
  EXPECT_ERRNO(timerfd_create(CLOCK_BOOTTIME_ALARM, TFD_CLOEXEC), EPERM);
  // Bad flags are checked first.
  EXPECT_ERRNO(timerfd_create(CLOCK_REALTIME_ALARM, 1), EINVAL);
}

TEST(TimerfdTest, ADisarmedTimerIsNotReadable) {
  Fd fd = NewTimer(CLOCK_MONOTONIC, TFD_NONBLOCK);
  itimerspec cur = Spec(1, 1);
  ASSERT_OK(timerfd_gettime(fd.get(), &cur));
  EXPECT_EQ(Ns(cur.it_value), 0);
  EXPECT_EQ(Ns(cur.it_interval), 0);
  uint64_t ticks;
  EXPECT_ERRNO(read(fd.get(), &ticks, sizeof(ticks)), EAGAIN);
  pollfd p{fd.get(), POLLIN | POLLOUT, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
}

TEST(TimerfdTest, OneShotExpiresOnceAfterItsValue) {
  Fd fd = NewTimer();
  const int64_t start = Now(CLOCK_MONOTONIC);
  ASSERT_OK(Settime(fd.get(), 0, Spec(50 * kMs), nullptr));
  itimerspec cur{};
  ASSERT_OK(timerfd_gettime(fd.get(), &cur));
  EXPECT_GT(Ns(cur.it_value), 0);
  EXPECT_LE(Ns(cur.it_value), 50 * kMs);
  EXPECT_EQ(ReadTicks(fd.get()), 1u);  // blocks until the expiry
  EXPECT_GE(Now(CLOCK_MONOTONIC) - start, 50 * kMs);
  ASSERT_OK(timerfd_gettime(fd.get(), &cur));
  EXPECT_EQ(Ns(cur.it_value), 0);  // expired: disarmed
  ASSERT_OK(fcntl(fd.get(), F_SETFL, O_NONBLOCK));
  uint64_t ticks;
  EXPECT_ERRNO(read(fd.get(), &ticks, sizeof(ticks)), EAGAIN);
}

TEST(TimerfdTest, PeriodicTimerCountsEveryExpiry) {
  Fd fd = NewTimer();
  ASSERT_OK(Settime(fd.get(), 0, Spec(10 * kMs, 10 * kMs), nullptr));
  const int64_t armed = Now(CLOCK_MONOTONIC);  // after the timer's start
  SleepUntil(CLOCK_MONOTONIC, armed + 55 * kMs);
  // Expiries at 10, 20, 30, 40 and 50 ms at least have passed.
  EXPECT_GE(ReadTicks(fd.get()), 5u);
  itimerspec cur{};
  ASSERT_OK(timerfd_gettime(fd.get(), &cur));
  EXPECT_EQ(Ns(cur.it_interval), 10 * kMs);
  EXPECT_GT(Ns(cur.it_value), 0);
  EXPECT_LE(Ns(cur.it_value), 10 * kMs);
  // It goes on: the next read blocks for the next expiry only.
  EXPECT_GE(ReadTicks(fd.get()), 1u);
}

TEST(TimerfdTest, AbsoluteTimes) {
  for (clockid_t clock : {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME}) {
    Fd fd = NewTimer(clock);
    const int64_t deadline = Now(clock) + 30 * kMs;
    ASSERT_OK(Settime(fd.get(), TFD_TIMER_ABSTIME, Spec(deadline), nullptr));
    EXPECT_EQ(ReadTicks(fd.get()), 1u);
    EXPECT_GE(Now(clock), deadline) << "clock " << clock;
  }
  // A moment in the past expires at once; a periodic timer counts every
  // period since then.
  Fd fd = NewTimer(CLOCK_MONOTONIC, TFD_NONBLOCK);
  const int64_t past = Now(CLOCK_MONOTONIC) - 1000 * kMs;
  ASSERT_OK(Settime(fd.get(), TFD_TIMER_ABSTIME, Spec(past, 100 * kMs), nullptr));
  pollfd p{fd.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 10000), 1);
  EXPECT_GE(ReadTicks(fd.get()), 11u);
  // TFD_TIMER_CANCEL_ON_SET goes with an absolute CLOCK_REALTIME time.
  Fd rt = NewTimer(CLOCK_REALTIME);
  const itimerspec later = Spec(Now(CLOCK_REALTIME) + 10000 * kMs);
  ASSERT_OK(
      timerfd_settime(rt.get(), TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &later, nullptr));
}

TEST(TimerfdTest, SettimeReturnsTheOldSettingAndForgetsExpiries) {
  Fd fd = NewTimer(CLOCK_MONOTONIC, TFD_NONBLOCK);
  ASSERT_OK(Settime(fd.get(), 0, Spec(10000 * kMs, 500 * kMs), nullptr));
  itimerspec old{};
  ASSERT_OK(Settime(fd.get(), 0, Spec(0, 200 * kMs), &old));
  EXPECT_GT(Ns(old.it_value), 9000 * kMs);
  EXPECT_LE(Ns(old.it_value), 10000 * kMs);
  EXPECT_EQ(Ns(old.it_interval), 500 * kMs);
  // A zero value disarms; the interval given stays as it was set.
  itimerspec cur{};
  ASSERT_OK(timerfd_gettime(fd.get(), &cur));
  EXPECT_EQ(Ns(cur.it_value), 0);
  EXPECT_EQ(Ns(cur.it_interval), 200 * kMs);
  // Expire it, then set it again before reading: the expiry is forgotten.
  ASSERT_OK(Settime(fd.get(), TFD_TIMER_ABSTIME, Spec(1), nullptr));
  pollfd p{fd.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  ASSERT_OK(Settime(fd.get(), 0, Spec(10000 * kMs), &old));
  EXPECT_EQ(Ns(old.it_value), 0);
  uint64_t ticks;
  EXPECT_ERRNO(read(fd.get(), &ticks, sizeof(ticks)), EAGAIN);
  EXPECT_EQ(poll(&p, 1, 0), 0);
}

TEST(TimerfdTest, ReadNeedsEightBytes) {
  Fd fd = NewTimer(CLOCK_MONOTONIC, TFD_NONBLOCK);
  ASSERT_OK(Settime(fd.get(), TFD_TIMER_ABSTIME, Spec(1), nullptr));
  char small[7];
  EXPECT_ERRNO(read(fd.get(), small, sizeof(small)), EINVAL);
  EXPECT_ERRNO(read(fd.get(), small, 0), EINVAL);
  // A larger buffer gets the 8 bytes.
  uint64_t big[2] = {0, 0};
  pollfd p{fd.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  EXPECT_EQ(read(fd.get(), big, sizeof(big)), 8);
  EXPECT_EQ(big[0], 1u);
  uint64_t one = 1;
  EXPECT_ERRNO(write(fd.get(), &one, sizeof(one)), EINVAL);
}

TEST(TimerfdTest, SettimeAndGettimeErrors) {
  Fd fd = NewTimer();
  itimerspec ok = Spec(10000 * kMs);
  EXPECT_ERRNO(timerfd_settime(fd.get(), 4, &ok, nullptr), EINVAL);
  itimerspec bad = ok;
  bad.it_value.tv_nsec = 1000000000;
  EXPECT_ERRNO(timerfd_settime(fd.get(), 0, &bad, nullptr), EINVAL);
  bad = ok;
  bad.it_interval.tv_nsec = -1;
  EXPECT_ERRNO(timerfd_settime(fd.get(), 0, &bad, nullptr), EINVAL);
  bad = ok;
  bad.it_value.tv_sec = -1;
  EXPECT_ERRNO(timerfd_settime(fd.get(), 0, &bad, nullptr), EINVAL);
  // The value is checked before the descriptor, and copied in before both.
  EXPECT_ERRNO(timerfd_settime(-1, 0, &bad, nullptr), EINVAL);
  EXPECT_ERRNO(syscall(SYS_timerfd_settime, -1, 0, reinterpret_cast<void*>(8), nullptr), EFAULT);
  EXPECT_ERRNO(timerfd_settime(-1, 0, &ok, nullptr), EBADF);
  EXPECT_ERRNO(timerfd_gettime(-1, &ok), EBADF);
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(timerfd_settime(p.r.get(), 0, &ok, nullptr), EINVAL);
  EXPECT_ERRNO(timerfd_gettime(p.r.get(), &ok), EINVAL);
  EXPECT_ERRNO(syscall(SYS_timerfd_gettime, fd.get(), reinterpret_cast<void*>(8)), EFAULT);
  // The timer is set even when the old value cannot be copied out.
  EXPECT_ERRNO(syscall(SYS_timerfd_settime, fd.get(), 0, &ok, reinterpret_cast<void*>(8)), EFAULT);
  itimerspec cur{};
  ASSERT_OK(timerfd_gettime(fd.get(), &cur));
  EXPECT_GT(Ns(cur.it_value), 0);
}

TEST(TimerfdTest, PollWaitsForTheExpiry) {
  Fd fd = NewTimer();
  const int64_t start = Now(CLOCK_MONOTONIC);
  ASSERT_OK(Settime(fd.get(), 0, Spec(30 * kMs), nullptr));
  pollfd p{fd.get(), POLLIN | POLLOUT, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  EXPECT_EQ(p.revents, POLLIN);  // never writable
  EXPECT_GE(Now(CLOCK_MONOTONIC) - start, 30 * kMs);
  EXPECT_EQ(ReadTicks(fd.get()), 1u);
  EXPECT_EQ(poll(&p, 1, 0), 0);
}

TEST(TimerfdTest, EpollLevelAndEdgeTriggered) {
  Fd ep(epoll_create1(EPOLL_CLOEXEC));
  ASSERT_TRUE(ep.valid());
  Fd level = NewTimer(CLOCK_MONOTONIC, TFD_NONBLOCK);
  Fd edge = NewTimer(CLOCK_MONOTONIC, TFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 1;
  ASSERT_OK(epoll_ctl(ep.get(), EPOLL_CTL_ADD, level.get(), &ev));
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = 2;
  ASSERT_OK(epoll_ctl(ep.get(), EPOLL_CTL_ADD, edge.get(), &ev));
  epoll_event out[2];
  EXPECT_EQ(epoll_wait(ep.get(), out, 2, 0), 0);

  const int64_t start = Now(CLOCK_MONOTONIC);
  ASSERT_OK(Settime(level.get(), 0, Spec(20 * kMs), nullptr));
  ASSERT_EQ(epoll_wait(ep.get(), out, 2, 10000), 1);
  EXPECT_EQ(out[0].data.u64, 1u);
  EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLIN));
  EXPECT_GE(Now(CLOCK_MONOTONIC) - start, 20 * kMs);
  // Level-triggered: reported until read.
  ASSERT_EQ(epoll_wait(ep.get(), out, 2, 0), 1);
  EXPECT_EQ(ReadTicks(level.get()), 1u);
  EXPECT_EQ(epoll_wait(ep.get(), out, 2, 0), 0);

  // Edge-triggered, periodic: one event per expiry that follows a read.
  ASSERT_OK(Settime(edge.get(), 0, Spec(10 * kMs, 10 * kMs), nullptr));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(epoll_wait(ep.get(), out, 2, 10000), 1) << i;
    EXPECT_EQ(out[0].data.u64, 2u);
    EXPECT_GE(ReadTicks(edge.get()), 1u);
  }
}

volatile sig_atomic_t g_alarms = 0;
void OnAlarm(int) { g_alarms = g_alarms + 1; }

TEST(TimerfdTest, ABlockedReadIsInterruptedBySignals) {
  for (bool restart : {false, true}) {
    struct sigaction sa {
    }, old{};
    sa.sa_handler = OnAlarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    ASSERT_OK(sigaction(SIGALRM, &sa, &old));
    g_alarms = 0;
    Fd fd = NewTimer();
    // Without SA_RESTART the read fails with EINTR: SIGALRM comes every 30 ms, so one
    // arrives while it blocks, and the timer never expires first. With SA_RESTART the read
    // restarts after the signal and returns the timer's one expiry.
    ASSERT_OK(Settime(fd.get(), 0, Spec((restart ? 300 : 100000) * kMs), nullptr));
    itimerval it{};
    it.it_value.tv_usec = 30000;
    if (!restart) it.it_interval.tv_usec = 30000;
    ASSERT_OK(setitimer(ITIMER_REAL, &it, nullptr));
    uint64_t ticks = 0;
    ssize_t n = read(fd.get(), &ticks, sizeof(ticks));
    int err = errno;
    itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    if (restart) {
      EXPECT_EQ(n, 8) << ErrnoName(err);
      EXPECT_EQ(ticks, 1u);
    } else {
      EXPECT_EQ(n, -1);
      EXPECT_EQ(err, EINTR);
    }
    EXPECT_GE(g_alarms, 1);
    sigaction(SIGALRM, &old, nullptr);
  }
}

TEST(TimerfdTest, ForkedChildSharesTheTimer) {
  Fd fd = NewTimer(CLOCK_MONOTONIC, 0);
  Pipe ready = MakePipe(O_CLOEXEC);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child blocks on the disarmed timer until the parent arms it.
    char c = 'r';
    (void)!write(ready.w.get(), &c, 1);
    uint64_t ticks = 0;
    _exit(read(fd.get(), &ticks, sizeof(ticks)) == 8 && ticks == 1 ? 0 : 1);
  }
  char c;
  ASSERT_EQ(read(ready.r.get(), &c, 1), 1);
  Pause();  // likely blocked by now; the result does not depend on it
  ASSERT_OK(Settime(fd.get(), 0, Spec(10 * kMs), nullptr));
  EXPECT_EQ(Wait(pid), 0);
  // The child took the expiry: nothing is left for the parent.
  ASSERT_OK(fcntl(fd.get(), F_SETFL, O_NONBLOCK));
  uint64_t ticks;
  EXPECT_ERRNO(read(fd.get(), &ticks, sizeof(ticks)), EAGAIN);
}

TEST(TimerfdTest, ClosingAnArmedTimerIsQuiet) {
  for (int i = 0; i < 50; ++i) {
    Fd fd = NewTimer();
    ASSERT_OK(Settime(fd.get(), 0, Spec(1 + i * 10000, 10000), nullptr));
  }
  // Timers closed while their expiry was due leave nothing behind; a new one works.
  Fd fd = NewTimer();
  ASSERT_OK(Settime(fd.get(), 0, Spec(kMs), nullptr));
  EXPECT_EQ(ReadTicks(fd.get()), 1u);
}

}  // namespace
}  // namespace husk_test
