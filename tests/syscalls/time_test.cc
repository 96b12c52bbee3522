// Conformance: clock_gettime, clock_getres, gettimeofday, time, nanosleep, clock_nanosleep.
// glibc answers clock_gettime/gettimeofday/time from the vDSO without a syscall, so the tests
// call the syscalls directly, and one test checks that both paths agree.
// Relies on, beyond the start-up set in test_util.h: clock_gettime clock_getres clock_nanosleep
// nanosleep gettimeofday time.
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

int64_t Ns(const struct timespec& ts) { return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec; }

// clock_gettime through the syscall, never the vDSO.
int64_t SysNow(clockid_t clock) {
  struct timespec ts = {};
  EXPECT_EQ(syscall(SYS_clock_gettime, clock, &ts), 0) << ErrnoName(errno);
  EXPECT_GE(ts.tv_nsec, 0);
  EXPECT_LT(ts.tv_nsec, 1000000000);
  return Ns(ts);
}

int64_t VdsoNow(clockid_t clock) {
  struct timespec ts = {};
  EXPECT_EQ(clock_gettime(clock, &ts), 0) << ErrnoName(errno);
  return Ns(ts);
}

TEST(TimeTest, MonotonicNeverGoesBackwards) {
  int64_t prev = SysNow(CLOCK_MONOTONIC);
  for (int i = 0; i < 1000; ++i) {
    int64_t now = SysNow(CLOCK_MONOTONIC);
    ASSERT_GE(now, prev);
    prev = now;
  }
}

TEST(TimeTest, VdsoAndSyscallAgree) {
  for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_REALTIME}) {
    int64_t a = VdsoNow(clock), b = SysNow(clock), c = VdsoNow(clock);
    EXPECT_LE(a, b) << "clock " << clock;
    EXPECT_LE(b, c) << "clock " << clock;
  }
}

TEST(TimeTest, RealtimeAgreesWithTimeAndGettimeofday) {
  int64_t rt = SysNow(CLOCK_REALTIME);
  struct timeval tv = {};
  ASSERT_OK(syscall(SYS_gettimeofday, &tv, nullptr));
  time_t t = 0;
  long r = syscall(SYS_time, &t);
  EXPECT_EQ(r, static_cast<long>(t));  // time(2) returns what it stores.
  EXPECT_GE(tv.tv_usec, 0);
  EXPECT_LT(tv.tv_usec, 1000000);
  const int64_t rt_sec = rt / 1000000000;  // whole seconds, as tv_sec and time(2) count
  EXPECT_NEAR(static_cast<double>(tv.tv_sec), static_cast<double>(rt_sec), 2.0);
  EXPECT_NEAR(static_cast<double>(t), static_cast<double>(rt_sec), 2.0);
  EXPECT_GT(t, 1500000000);  // After 2017: the clock was set.
  EXPECT_GT(syscall(SYS_time, nullptr), 0);
}

TEST(TimeTest, BoottimeIsNotBehindMonotonic) {
  int64_t mono = SysNow(CLOCK_MONOTONIC);
  int64_t boot = SysNow(CLOCK_BOOTTIME);
  EXPECT_GE(boot, mono);
}

TEST(TimeTest, ProcessCputimeAdvancesWhileSpinning) {
  int64_t start = SysNow(CLOCK_PROCESS_CPUTIME_ID);
  int64_t deadline = SysNow(CLOCK_MONOTONIC) + 2000000000;
  volatile uint64_t sink = 0;
  while (SysNow(CLOCK_PROCESS_CPUTIME_ID) == start && SysNow(CLOCK_MONOTONIC) < deadline) {
    for (int i = 0; i < 100000; ++i) sink = sink + i;
  }
  EXPECT_GT(SysNow(CLOCK_PROCESS_CPUTIME_ID), start);
}

TEST(TimeTest, ClockGettimeErrors) {
  struct timespec ts;
  EXPECT_ERRNO(syscall(SYS_clock_gettime, 12345, &ts), EINVAL);
  EXPECT_ERRNO(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, reinterpret_cast<void*>(8)), EFAULT);
}

TEST(TimeTest, ClockGetres) {
  for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_REALTIME}) {
    struct timespec res = {-1, -1};
    ASSERT_OK(syscall(SYS_clock_getres, clock, &res));
    EXPECT_EQ(res.tv_sec, 0);
    EXPECT_GT(res.tv_nsec, 0);
    EXPECT_LE(res.tv_nsec, 1000000);  // At most a jiffy-ish millisecond.
  }
  EXPECT_EQ(syscall(SYS_clock_getres, CLOCK_MONOTONIC, nullptr), 0);  // NULL is allowed.
  struct timespec res;
  EXPECT_ERRNO(syscall(SYS_clock_getres, 12345, &res), EINVAL);
}

TEST(TimeTest, NanosleepSleepsAtLeastTheRequestedTime) {
  int64_t start = SysNow(CLOCK_MONOTONIC);
  struct timespec req = {0, 10000000}, rem = {-1, -1};
  // glibc's nanosleep calls clock_nanosleep; this is nanosleep(2) itself.
  ASSERT_OK(syscall(SYS_nanosleep, &req, &rem));
  EXPECT_GE(SysNow(CLOCK_MONOTONIC) - start, 10000000);
}

TEST(TimeTest, NanosleepZeroReturnsAtOnce) {
  struct timespec req = {0, 0};
  EXPECT_EQ(nanosleep(&req, nullptr), 0);
}

TEST(TimeTest, NanosleepBadTimespecFailsWithEINVAL) {
  struct timespec big = {0, 1000000000}, negative_ns = {0, -1}, negative_s = {-1, 0};
  EXPECT_ERRNO(nanosleep(&big, nullptr), EINVAL);
  EXPECT_ERRNO(nanosleep(&negative_ns, nullptr), EINVAL);
  EXPECT_ERRNO(nanosleep(&negative_s, nullptr), EINVAL);
  EXPECT_ERRNO(syscall(SYS_nanosleep, &big, nullptr), EINVAL);
}

TEST(TimeTest, ClockNanosleepRelative) {
  int64_t start = SysNow(CLOCK_MONOTONIC);
  struct timespec req = {0, 10000000};
  // clock_nanosleep returns the error number instead of setting errno.
  EXPECT_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr), 0);
  EXPECT_GE(SysNow(CLOCK_MONOTONIC) - start, 10000000);
}

TEST(TimeTest, ClockNanosleepAbsoluteDeadline) {
  int64_t deadline = SysNow(CLOCK_MONOTONIC) + 20000000;
  struct timespec abs = {static_cast<time_t>(deadline / 1000000000), deadline % 1000000000};
  EXPECT_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, nullptr), 0);
  EXPECT_GE(SysNow(CLOCK_MONOTONIC), deadline);
}

TEST(TimeTest, ClockNanosleepAbsoluteInThePastReturnsAtOnce) {
  int64_t start = SysNow(CLOCK_MONOTONIC);
  struct timespec past = {0, 1};
  EXPECT_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, nullptr), 0);
  EXPECT_LT(SysNow(CLOCK_MONOTONIC) - start, 1000000000);
}

TEST(TimeTest, ClockNanosleepErrors) {
  struct timespec bad = {0, 1000000000}, ok = {0, 1000};
  EXPECT_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, nullptr), EINVAL);
  EXPECT_ERRNO(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &bad, nullptr), EINVAL);
  EXPECT_ERRNO(syscall(SYS_clock_nanosleep, 12345, 0, &ok, nullptr), EINVAL);
  // The thread CPU clock cannot be slept on: glibc refuses it with EINVAL before the call
  // (clock_nanosleep(2)); the kernel itself answers EOPNOTSUPP (its clock has no nsleep).
  EXPECT_EQ(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ok, nullptr), EINVAL);
  EXPECT_ERRNO(syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &ok, nullptr), EOPNOTSUPP);
}

// clock_nanosleep on a process's CPU-time clock sleeps until that process
// has used the CPU time: here a second thread spins while the caller waits,
// so the process's clock advances by at least the request.
TEST(TimeTest, ClockNanosleepOnTheProcessCpuClock) {
  std::atomic<bool> stop{false};
  std::thread spinner([&] {
    while (!stop.load()) {
    }
  });
  timespec before{}, after{};
  ASSERT_EQ(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &before), 0);
  timespec req{0, 100000000};  // 100 ms of CPU time
  EXPECT_EQ(clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &req, nullptr), 0);
  ASSERT_EQ(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &after), 0);
  const int64_t used =
      (after.tv_sec - before.tv_sec) * 1000000000LL + (after.tv_nsec - before.tv_nsec);
  EXPECT_GE(used, 100000000);
  // An absolute deadline already passed returns at once.
  EXPECT_EQ(clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, &before, nullptr), 0);
  // Not on the caller's own thread clock, named by pthread_getcpuclockid either.
  clockid_t self_clock;
  ASSERT_EQ(pthread_getcpuclockid(pthread_self(), &self_clock), 0);
  EXPECT_ERRNO(syscall(SYS_clock_nanosleep, self_clock, 0, &req, nullptr), EINVAL);
  stop = true;
  spinner.join();
}

}  // namespace
}  // namespace husk_test
