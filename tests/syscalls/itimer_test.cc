// alarm(2), setitimer(2), getitimer(2) with ITIMER_REAL: SIGALRM arrives
// after the time asked (never before), periodic timers reload, reading a
// timer gives the time left, and fork does not inherit it.
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

}  // namespace
