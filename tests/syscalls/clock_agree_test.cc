// Conformance: every way the kernel tells or uses the time reads one clock. A deadline taken
// from clock_gettime is honoured by absolute sleeps, timerfd, POSIX timers and futex waits
// (never early, and not long after); a relative timeout of poll, select, epoll_wait and
// sigtimedwait is at least as long on CLOCK_MONOTONIC; /proc/uptime and sysinfo's uptime are
// CLOCK_BOOTTIME; /proc/stat's btime is the wall clock when CLOCK_BOOTTIME was 0; and
// /proc/<pid>/stat's starttime is when the process was made, on CLOCK_BOOTTIME. (Inside husk
// these clocks count from the sandbox's start, not the host's.)
//
// Relies on, beyond the start-up set in test_util.h: clock_gettime clock_nanosleep
// timerfd_create timerfd_settime timer_create timer_settime timer_delete rt_sigprocmask
// rt_sigtimedwait futex poll pselect6 epoll_create1 epoll_wait sysinfo fork wait4.
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kWait = 30 * kMs;    // how far ahead each deadline is
constexpr int64_t kLate = 2000 * kMs;  // a wake-up later than this is a wrong clock

int64_t Ns(const timespec& ts) { return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec; }
timespec Ts(int64_t ns) { return timespec{ns / 1000000000, ns % 1000000000}; }

// clock_gettime through the syscall.
int64_t SysNow(clockid_t clock) {
  timespec ts{};
  EXPECT_EQ(syscall(SYS_clock_gettime, clock, &ts), 0) << ErrnoName(errno);
  return Ns(ts);
}

// Asserts that a wait for `target` on `clock` ended neither early nor far too late.
void ExpectWokeAt(clockid_t clock, int64_t target) {
  const int64_t now = SysNow(clock);
  EXPECT_GE(now, target) << "woke " << (target - now) << " ns early on clock " << clock;
  EXPECT_LT(now, target + kLate) << "woke " << (now - target) / kMs << " ms late on clock "
                                 << clock;
}

TEST(ClockAgreeTest, AbsoluteSleepsEndAtTheClocksTime) {
  for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME}) {
    const int64_t target = SysNow(clock) + kWait;
    const timespec ts = Ts(target);
    ASSERT_EQ(clock_nanosleep(clock, TIMER_ABSTIME, &ts, nullptr), 0) << clock;
    ExpectWokeAt(clock, target);
  }
}

TEST(ClockAgreeTest, RelativeSleepsLastAtLeastTheirTime) {
  const int64_t start = SysNow(CLOCK_MONOTONIC);
  const timespec ts = Ts(kWait);
  ASSERT_EQ(nanosleep(&ts, nullptr), 0);
  ExpectWokeAt(CLOCK_MONOTONIC, start + kWait);
}

TEST(ClockAgreeTest, TimerfdExpiresAtTheClocksTime) {
  for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME}) {
    Fd fd(timerfd_create(clock, TFD_CLOEXEC));
    ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
    const int64_t target = SysNow(clock) + kWait;
    itimerspec its{};
    its.it_value = Ts(target);
    ASSERT_OK(timerfd_settime(fd.get(), TFD_TIMER_ABSTIME, &its, nullptr));
    uint64_t ticks = 0;
    ASSERT_EQ(read(fd.get(), &ticks, sizeof(ticks)), static_cast<ssize_t>(sizeof(ticks)));
    EXPECT_EQ(ticks, 1u);
    ExpectWokeAt(clock, target);
    // What is left of a relative setting counts down on the same clock.
    its.it_value = Ts(10 * kWait);
    ASSERT_OK(timerfd_settime(fd.get(), 0, &its, nullptr));
    itimerspec cur{};
    ASSERT_OK(timerfd_gettime(fd.get(), &cur));
    EXPECT_GT(Ns(cur.it_value), 9 * kWait);
    EXPECT_LE(Ns(cur.it_value), 10 * kWait);
  }
}

TEST(ClockAgreeTest, PosixTimersExpireAtTheClocksTime) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &set, &old));
  for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME}) {
    sigevent ev{};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    timer_t timer;
    ASSERT_OK(timer_create(clock, &ev, &timer));
    const int64_t target = SysNow(clock) + kWait;
    itimerspec its{};
    its.it_value = Ts(target);
    ASSERT_OK(timer_settime(timer, TIMER_ABSTIME, &its, nullptr));
    const timespec limit = Ts(10 * kLate);
    ASSERT_EQ(sigtimedwait(&set, nullptr, &limit), SIGRTMIN) << ErrnoName(errno);
    ExpectWokeAt(clock, target);
    ASSERT_OK(timer_delete(timer));
  }
  ASSERT_OK(sigprocmask(SIG_SETMASK, &old, nullptr));
}

TEST(ClockAgreeTest, FutexDeadlinesAreOnTheirClock) {
  uint32_t word = 0;
  for (bool realtime : {false, true}) {
    const clockid_t clock = realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    const int64_t target = SysNow(clock) + kWait;
    const timespec ts = Ts(target);
    const int op = FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG | (realtime ? FUTEX_CLOCK_REALTIME : 0);
    EXPECT_ERRNO(syscall(SYS_futex, &word, op, 0, &ts, nullptr, FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    ExpectWokeAt(clock, target);
  }
  // FUTEX_WAIT's timeout is relative, on CLOCK_MONOTONIC.
  const int64_t start = SysNow(CLOCK_MONOTONIC);
  const timespec rel = Ts(kWait);
  EXPECT_ERRNO(syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &rel, nullptr, 0), ETIMEDOUT);
  ExpectWokeAt(CLOCK_MONOTONIC, start + kWait);
}

TEST(ClockAgreeTest, PollSelectAndEpollTimeoutsLastAtLeastTheirTime) {
  Pipe p = MakePipe();
  int64_t start = SysNow(CLOCK_MONOTONIC);
  pollfd pfd{p.r.get(), POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, kWait / kMs), 0);
  ExpectWokeAt(CLOCK_MONOTONIC, start + kWait);

  start = SysNow(CLOCK_MONOTONIC);
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(p.r.get(), &rd);
  timespec ts = Ts(kWait);
  EXPECT_EQ(pselect(p.r.get() + 1, &rd, nullptr, nullptr, &ts, nullptr), 0);
  ExpectWokeAt(CLOCK_MONOTONIC, start + kWait);

  Fd ep(epoll_create1(EPOLL_CLOEXEC));
  ASSERT_GE(ep.get(), 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_OK(epoll_ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
  start = SysNow(CLOCK_MONOTONIC);
  EXPECT_EQ(epoll_wait(ep.get(), &ev, 1, kWait / kMs), 0);
  ExpectWokeAt(CLOCK_MONOTONIC, start + kWait);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  start = SysNow(CLOCK_MONOTONIC);
  ts = Ts(kWait);
  EXPECT_ERRNO(sigtimedwait(&set, nullptr, &ts), EAGAIN);
  ExpectWokeAt(CLOCK_MONOTONIC, start + kWait);
}

TEST(ClockAgreeTest, ProcUptimeAndSysinfoAreBoottime) {
  const int64_t before = SysNow(CLOCK_BOOTTIME);
  const std::string uptime = ReadFile("/proc/uptime");
  struct sysinfo si {};
  ASSERT_OK(sysinfo(&si));
  const int64_t after = SysNow(CLOCK_BOOTTIME);
  double up = -1, idle = -1;
  ASSERT_EQ(sscanf(uptime.c_str(), "%lf %lf", &up, &idle), 2) << uptime;
  // Printed in hundredths, truncated.
  EXPECT_GE(up, static_cast<double>(before) / 1e9 - 0.011) << uptime;
  EXPECT_LE(up, static_cast<double>(after) / 1e9) << uptime;
  // do_sysinfo rounds a started second up.
  EXPECT_GE(si.uptime, before / 1000000000);
  EXPECT_LE(si.uptime, after / 1000000000 + 1);
}

// The starttime field (22) of /proc/<pid>/stat, in clock ticks.
int64_t StartTime(pid_t pid) {
  const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && in >> field; i++) {
    if (i == 22) return std::stoll(field);
  }
  return -1;
}

TEST(ClockAgreeTest, ProcessStartTimesAreOnBoottime) {
  const int64_t hz = sysconf(_SC_CLK_TCK);
  ASSERT_GT(hz, 0);
  const int64_t tick = 1000000000 / hz;
  const int64_t self = StartTime(getpid());
  EXPECT_GE(self, 0);
  EXPECT_LE(self, SysNow(CLOCK_BOOTTIME) / tick);

  Pipe p = MakePipe();
  const int64_t before = SysNow(CLOCK_BOOTTIME);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    (void)!read(p.r.get(), &c, 1);
    _exit(0);
  }
  const int64_t after = SysNow(CLOCK_BOOTTIME);
  const int64_t child = StartTime(pid);
  EXPECT_GE(child, before / tick);
  EXPECT_LE(child, after / tick + 1);
  EXPECT_GE(child, self);
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  EXPECT_EQ(Wait(pid), 0);
}

TEST(ClockAgreeTest, BtimeIsTheWallClockAtBoottimeZero) {
  const std::string stat = ReadFile("/proc/stat");
  const size_t at = stat.find("\nbtime ");
  ASSERT_NE(at, std::string::npos) << stat;
  const int64_t btime = std::stoll(stat.substr(at + 7));
  const int64_t expected = (SysNow(CLOCK_REALTIME) - SysNow(CLOCK_BOOTTIME)) / 1000000000;
  EXPECT_LE(std::abs(btime - expected), 1) << "btime " << btime << ", expected " << expected;
}

}  // namespace
}  // namespace husk_test
