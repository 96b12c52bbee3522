// alarm(2), setitimer(2), getitimer(2) with ITIMER_REAL: SIGALRM arrives
// after the time asked (never before), periodic timers reload, reading a
// timer gives the time left, and fork does not inherit it. ITIMER_PROF and
// ITIMER_VIRTUAL count the process's CPU time (user and system, user
// only): they fire while it spins and not while it sleeps, send SIGPROF and
// SIGVTALRM with SI_KERNEL, survive execve and are not inherited by fork.
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <functional>

#include "tests/syscalls/test_util.h"

namespace {

volatile sig_atomic_t g_alarms = 0;
void OnAlarm(int) { g_alarms = g_alarms + 1; }

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

class ItimerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_alarms = 0;
    struct sigaction sa {};
    sa.sa_handler = OnAlarm;
    ASSERT_EQ(sigaction(SIGALRM, &sa, &old_), 0);
  }
  void TearDown() override {
    itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    sigaction(SIGALRM, &old_, nullptr);
  }
  struct sigaction old_ {};
};

TEST_F(ItimerTest, SetitimerFiresOnceAfterTheValue) {
  itimerval v{};
  v.it_value.tv_usec = 100000;  // 100 ms
  double t0 = Now();
  ASSERT_OK(setitimer(ITIMER_REAL, &v, nullptr));
  while (g_alarms == 0 && Now() - t0 < 5) pause();
  double elapsed = Now() - t0;
  EXPECT_EQ(g_alarms, 1);
  EXPECT_GE(elapsed, 0.099);
  EXPECT_LT(elapsed, 5.0);
  itimerval cur{};
  ASSERT_OK(getitimer(ITIMER_REAL, &cur));  // one-shot: disarmed now
  EXPECT_EQ(cur.it_value.tv_sec, 0);
  EXPECT_EQ(cur.it_value.tv_usec, 0);
}

TEST_F(ItimerTest, AnIntervalReloadsTheTimer) {
  itimerval v{};
  v.it_value.tv_usec = 20000;
  v.it_interval.tv_usec = 20000;
  ASSERT_OK(setitimer(ITIMER_REAL, &v, nullptr));
  double t0 = Now();
  while (g_alarms < 3 && Now() - t0 < 5) pause();
  EXPECT_GE(g_alarms, 3);
  itimerval cur{};
  ASSERT_OK(getitimer(ITIMER_REAL, &cur));
  EXPECT_EQ(cur.it_interval.tv_sec, 0);
  EXPECT_EQ(cur.it_interval.tv_usec, 20000);
}

TEST_F(ItimerTest, GetitimerShowsTheTimeLeftAndSetitimerTheOldValue) {
  itimerval v{};
  v.it_value.tv_sec = 100;
  ASSERT_OK(setitimer(ITIMER_REAL, &v, nullptr));
  itimerval cur{};
  ASSERT_OK(getitimer(ITIMER_REAL, &cur));
  EXPECT_GE(cur.it_value.tv_sec, 98);
  EXPECT_LE(cur.it_value.tv_sec, 100);
  itimerval off{}, old{};
  ASSERT_OK(setitimer(ITIMER_REAL, &off, &old));
  EXPECT_GE(old.it_value.tv_sec, 98);
  ASSERT_OK(getitimer(ITIMER_REAL, &cur));
  EXPECT_EQ(cur.it_value.tv_sec, 0);
  EXPECT_EQ(cur.it_value.tv_usec, 0);
  EXPECT_EQ(g_alarms, 0);
}

TEST_F(ItimerTest, AlarmReturnsTheSecondsLeft) {
  EXPECT_EQ(alarm(100), 0u);
  unsigned left = alarm(50);
  EXPECT_GE(left, 99u);
  EXPECT_LE(left, 100u);
  left = alarm(0);  // cancels
  EXPECT_GE(left, 49u);
  EXPECT_LE(left, 50u);
  EXPECT_EQ(alarm(0), 0u);
}

TEST_F(ItimerTest, AlarmInterruptsABlockingCall) {
  alarm(1);
  int fds[2];
  ASSERT_OK(pipe(fds));
  char c;
  double t0 = Now();
  EXPECT_ERRNO(read(fds[0], &c, 1), EINTR);
  EXPECT_GE(Now() - t0, 0.99);
  EXPECT_EQ(g_alarms, 1);
  close(fds[0]);
  close(fds[1]);
}

TEST_F(ItimerTest, BadArguments) {
  itimerval v{};
  v.it_value.tv_usec = 1000000;
  EXPECT_ERRNO(setitimer(ITIMER_REAL, &v, nullptr), EINVAL);
  v.it_value.tv_usec = -1;
  EXPECT_ERRNO(setitimer(ITIMER_REAL, &v, nullptr), EINVAL);
  v.it_value.tv_usec = 0;
  EXPECT_ERRNO(setitimer(static_cast<__itimer_which>(42), &v, nullptr), EINVAL);
  EXPECT_ERRNO(getitimer(static_cast<__itimer_which>(-1), &v), EINVAL);
}

TEST_F(ItimerTest, ForkedChildrenStartWithoutATimer) {
  alarm(100);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    itimerval cur{};
    getitimer(ITIMER_REAL, &cur);
    _exit(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0 ? 0 : 1);
  }
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  alarm(0);
}

TEST_F(ItimerTest, DefaultSigalrmTerminates) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL);
    itimerval v{};
    v.it_value.tv_usec = 10000;
    setitimer(ITIMER_REAL, &v, nullptr);
    for (;;) pause();
  }
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGALRM);
}

// The CPU-time timers. Each case runs in a child, which a stray SIGPROF or
// SIGVTALRM can only kill alone.

int64_t Us(const timeval& tv) { return static_cast<int64_t>(tv.tv_sec) * 1000000 + tv.tv_usec; }

int64_t CpuUs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

int64_t UserUs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return Us(ru.ru_utime);
}

volatile sig_atomic_t g_cpu_signals = 0;
volatile sig_atomic_t g_cpu_code = 0;
void OnCpuSignal(int, siginfo_t* info, void*) {
  g_cpu_signals = g_cpu_signals + 1;
  g_cpu_code = info->si_code;
}

// Some user-space work (about a millisecond or less).
volatile int g_sink = 0;
void Burn() {
  for (int i = 0; i < 100000; i++) g_sink = i;
}

// Spins in user space until `count` signals came or 20 s passed.
void SpinUntil(int count) {
  const double t0 = Now();
  while (g_cpu_signals < count && Now() - t0 < 20) {
    Burn();
  }
}

// Runs body in a child with a handler for sig; the child's exit status is
// body's result (0: success).
int InChild(int sig, const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    struct sigaction sa {};
    sa.sa_sigaction = OnCpuSignal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    if (sigaction(sig, &sa, nullptr) != 0) _exit(100);
    _exit(body());
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + status;
}

itimerval Value(int64_t value_us, int64_t interval_us = 0) {
  itimerval v{};
  v.it_value.tv_sec = value_us / 1000000;
  v.it_value.tv_usec = value_us % 1000000;
  v.it_interval.tv_sec = interval_us / 1000000;
  v.it_interval.tv_usec = interval_us % 1000000;
  return v;
}

TEST(CpuItimerTest, ProfFiresWhileSpinningAndNotWhileSleeping) {
  EXPECT_EQ(InChild(SIGPROF,
                    [] {
                      itimerval v = Value(50000);
                      const int64_t cpu0 = CpuUs();
                      if (setitimer(ITIMER_PROF, &v, nullptr) != 0) return 1;
                      timespec sleep{0, 200000000};
                      if (nanosleep(&sleep, nullptr) != 0) return 2;
                      if (g_cpu_signals != 0) return 3;
                      itimerval cur{};
                      if (getitimer(ITIMER_PROF, &cur) != 0) return 4;
                      if (Us(cur.it_value) <= 0) return 5;  // still armed
                      if (Us(cur.it_interval) != 0) return 6;
                      SpinUntil(1);
                      if (g_cpu_signals != 1) return 7;
                      if (CpuUs() - cpu0 < 40000) return 8;
                      if (g_cpu_code != SI_KERNEL) return 9;
                      // One-shot: disarmed now.
                      if (getitimer(ITIMER_PROF, &cur) != 0) return 10;
                      return Us(cur.it_value) == 0 && Us(cur.it_interval) == 0 ? 0 : 11;
                    }),
            0);
}

TEST(CpuItimerTest, VirtualFiresWhileSpinningInUserSpace) {
  EXPECT_EQ(InChild(SIGVTALRM,
                    [] {
                      itimerval v = Value(50000);
                      const int64_t user0 = UserUs();
                      if (setitimer(ITIMER_VIRTUAL, &v, nullptr) != 0) return 1;
                      timespec sleep{0, 200000000};
                      if (nanosleep(&sleep, nullptr) != 0) return 2;
                      if (g_cpu_signals != 0) return 3;
                      SpinUntil(1);
                      if (g_cpu_signals != 1) return 4;
                      if (g_cpu_code != SI_KERNEL) return 5;
                      // User time is sampled at ticks: allow some ticks less.
                      return UserUs() - user0 >= 20000 ? 0 : 6;
                    }),
            0);
}

TEST(CpuItimerTest, TheTimeLeftShrinksOnlyWhileSpinning) {
  for (int which : {ITIMER_PROF, ITIMER_VIRTUAL}) {
    EXPECT_EQ(InChild(SIGPROF,
                      [which] {
                        itimerval v = Value(10000000);
                        if (setitimer(which, &v, nullptr) != 0) return 1;
                        itimerval a{}, b{}, c{};
                        if (getitimer(which, &a) != 0) return 2;
                        // Linux adds a tick (at most 10 ms) to the value.
                        if (Us(a.it_value) <= 9000000 || Us(a.it_value) > 10010000) return 3;
                        timespec sleep{0, 200000000};
                        if (nanosleep(&sleep, nullptr) != 0) return 4;
                        if (getitimer(which, &b) != 0) return 5;
                        if (Us(a.it_value) - Us(b.it_value) > 100000) return 6;
                        // Spin for 300 ms of the time the timer counts (user time
                        // for ITIMER_VIRTUAL: the clock reads themselves are system
                        // time, a lot of it where they trap).
                        auto counted = [which] {
                          return which == ITIMER_VIRTUAL ? UserUs() : CpuUs();
                        };
                        const int64_t cpu0 = counted();
                        const double t0 = Now();
                        while (counted() - cpu0 < 300000 && Now() - t0 < 20) {
                          for (int i = 0; i < 10; i++) Burn();
                        }
                        if (getitimer(which, &c) != 0) return 7;
                        return Us(b.it_value) - Us(c.it_value) >= 100000 ? 0 : 8;
                      }),
              0)
        << "which " << which;
  }
}

TEST(CpuItimerTest, AnIntervalFiresRepeatedly) {
  EXPECT_EQ(InChild(SIGPROF,
                    [] {
                      itimerval v = Value(20000, 20000);
                      const int64_t cpu0 = CpuUs();
                      if (setitimer(ITIMER_PROF, &v, nullptr) != 0) return 1;
                      SpinUntil(3);
                      if (g_cpu_signals < 3) return 2;
                      // Three expiries 20 ms of CPU apart: well past one interval of
                      // CPU time (Linux under load has been seen to deliver the third
                      // a little short of 50 ms by CLOCK_PROCESS_CPUTIME_ID).
                      if (CpuUs() - cpu0 < 30000) return 3;
                      itimerval cur{};
                      if (getitimer(ITIMER_PROF, &cur) != 0) return 4;
                      if (Us(cur.it_interval) != 20000) return 5;
                      return Us(cur.it_value) > 0 ? 0 : 6;
                    }),
            0);
}

TEST(CpuItimerTest, SetitimerReturnsTheOldValue) {
  for (int which : {ITIMER_PROF, ITIMER_VIRTUAL}) {
    EXPECT_EQ(InChild(SIGPROF,
                      [which] {
                        itimerval v = Value(10000000, 2000001);
                        itimerval old{};
                        if (setitimer(which, &v, &old) != 0) return 1;
                        if (Us(old.it_value) != 0 || Us(old.it_interval) != 0) return 2;
                        itimerval off{};
                        if (setitimer(which, &off, &old) != 0) return 3;
                        if (Us(old.it_interval) != 2000001) return 4;
                        if (Us(old.it_value) <= 9000000 || Us(old.it_value) > 10010000) return 5;
                        itimerval cur{};
                        if (getitimer(which, &cur) != 0) return 6;
                        return Us(cur.it_value) == 0 && Us(cur.it_interval) == 0 ? 0 : 7;
                      }),
              0)
        << "which " << which;
  }
}

TEST(CpuItimerTest, TheTimersAreApart) {
  EXPECT_EQ(InChild(SIGPROF,
                    [] {
                      itimerval v = Value(10000000, 3000000);
                      if (setitimer(ITIMER_VIRTUAL, &v, nullptr) != 0) return 1;
                      itimerval cur{};
                      if (getitimer(ITIMER_PROF, &cur) != 0) return 2;
                      if (Us(cur.it_value) != 0 || Us(cur.it_interval) != 0) return 3;
                      if (getitimer(ITIMER_REAL, &cur) != 0) return 4;
                      if (Us(cur.it_value) != 0 || Us(cur.it_interval) != 0) return 5;
                      if (getitimer(ITIMER_VIRTUAL, &cur) != 0) return 6;
                      return Us(cur.it_interval) == 3000000 ? 0 : 7;
                    }),
            0);
}

TEST(CpuItimerTest, BadArguments) {
  itimerval v = Value(0);
  v.it_interval.tv_usec = 1000000;
  EXPECT_ERRNO(setitimer(ITIMER_PROF, &v, nullptr), EINVAL);
  v.it_interval.tv_usec = 0;
  v.it_value.tv_sec = -1;
  EXPECT_ERRNO(setitimer(ITIMER_VIRTUAL, &v, nullptr), EINVAL);
  v.it_value.tv_sec = 0;
  EXPECT_ERRNO(setitimer(static_cast<__itimer_which>(3), &v, nullptr), EINVAL);
  EXPECT_ERRNO(getitimer(static_cast<__itimer_which>(3), &v), EINVAL);
}

TEST(CpuItimerTest, ForkedChildrenStartWithoutCpuTimers) {
  EXPECT_EQ(InChild(SIGPROF,
                    [] {
                      itimerval v = Value(100000000, 1000000);
                      if (setitimer(ITIMER_PROF, &v, nullptr) != 0) return 1;
                      if (setitimer(ITIMER_VIRTUAL, &v, nullptr) != 0) return 2;
                      pid_t pid = fork();
                      if (pid < 0) return 3;
                      if (pid == 0) {
                        itimerval p{}, u{};
                        getitimer(ITIMER_PROF, &p);
                        getitimer(ITIMER_VIRTUAL, &u);
                        _exit(Us(p.it_value) == 0 && Us(p.it_interval) == 0 &&
                                      Us(u.it_value) == 0 && Us(u.it_interval) == 0
                                  ? 0
                                  : 1);
                      }
                      int status = 0;
                      if (waitpid(pid, &status, 0) != pid) return 4;
                      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 5;
                      itimerval cur{};  // the parent's stay
                      if (getitimer(ITIMER_PROF, &cur) != 0) return 6;
                      return Us(cur.it_value) > 0 ? 0 : 7;
                    }),
            0);
}

// Run by ExecKeepsCpuTimers in a re-executed child, which set the variable.
TEST(CpuItimerExecHelper, AfterExec) {
  if (getenv("HUSK_ITIMER_EXEC_HELPER") == nullptr) GTEST_SKIP() << "run by ExecKeepsCpuTimers";
  itimerval cur{};
  ASSERT_OK(getitimer(ITIMER_PROF, &cur));
  EXPECT_GT(Us(cur.it_value), 90000000);
  EXPECT_EQ(Us(cur.it_interval), 1500001);
  ASSERT_OK(getitimer(ITIMER_VIRTUAL, &cur));
  EXPECT_GT(Us(cur.it_value), 80000000);
  EXPECT_EQ(Us(cur.it_interval), 2500002);
}

TEST(CpuItimerTest, ExecKeepsCpuTimers) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    itimerval v = Value(100000000, 1500001);
    if (setitimer(ITIMER_PROF, &v, nullptr) != 0) _exit(101);
    v = Value(90000000, 2500002);
    if (setitimer(ITIMER_VIRTUAL, &v, nullptr) != 0) _exit(102);
    setenv("HUSK_ITIMER_EXEC_HELPER", "1", 1);
    char arg0[] = "syscalls_itimer_test";
    char filter[] = "--gtest_filter=CpuItimerExecHelper.*";
    char* argv[] = {arg0, filter, nullptr};
    execv("/proc/self/exe", argv);
    _exit(103);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(CpuItimerTest, DefaultSigprofTerminates) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGPROF, SIG_DFL);
    itimerval v = Value(10000);
    setitimer(ITIMER_PROF, &v, nullptr);
    const double t0 = Now();
    while (Now() - t0 < 20) {
      Burn();
    }
    _exit(0);
  }
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGPROF);
}

}  // namespace
