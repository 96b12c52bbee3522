// Conformance: process CPU time and POSIX timers. times(2), getrusage(2)
// (RUSAGE_SELF, RUSAGE_THREAD, RUSAGE_CHILDREN), wait4's rusage, SIGCHLD's
// si_utime/si_stime, and the CPU-time clocks (CLOCK_PROCESS_CPUTIME_ID,
// CLOCK_THREAD_CPUTIME_ID, clock_getcpuclockid(3), pthread_getcpuclockid(3)).
// CPU time is spent by spinning until the process CPU clock has advanced, so
// the checks hold on a loaded machine; timing checks are lower bounds only.
// Relies on, beyond the start-up set in test_util.h: clock_gettime
// clock_getres times getrusage fork wait4 pipe2 rt_sigprocmask
// rt_sigtimedwait.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

constexpr int64_t kMs = 1000000;

int64_t Ns(const timespec& ts) { return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec; }
int64_t Ns(const timeval& tv) { return int64_t{tv.tv_sec} * 1000000000 + tv.tv_usec * 1000; }

// clock_gettime through the syscall (the vDSO has no CPU clocks anyway).
int64_t ClockNs(clockid_t clock) {
  timespec ts{};
  EXPECT_EQ(syscall(SYS_clock_gettime, clock, &ts), 0) << ErrnoName(errno);
  return Ns(ts);
}

// Spends `ns` of the process's CPU time in user code.
void Spin(int64_t ns) {
  const int64_t start = ClockNs(CLOCK_PROCESS_CPUTIME_ID);
  volatile uint64_t sink = 0;
  while (ClockNs(CLOCK_PROCESS_CPUTIME_ID) - start < ns) {
    for (int i = 0; i < 1000000; ++i) sink = sink + i;
  }
}

TEST(RusageTest, SelfCountsTheCpuTimeSpent) {
  struct rusage before {};
  ASSERT_OK(getrusage(RUSAGE_SELF, &before));
  Spin(200 * kMs);
  const int64_t clock = ClockNs(CLOCK_PROCESS_CPUTIME_ID);
  struct rusage after {};
  ASSERT_OK(getrusage(RUSAGE_SELF, &after));
  // The split of the total is the kernel's; the total is the CPU clock's (to
  // the microsecond each field is truncated to), read after it.
  EXPECT_GE(Ns(after.ru_utime) + Ns(after.ru_stime) + 2000, clock);
  // Spinning is user time: most of the 200 ms.
  EXPECT_GE(Ns(after.ru_utime) - Ns(before.ru_utime), 100 * kMs);
  EXPECT_GE(Ns(after.ru_stime), Ns(before.ru_stime));
  EXPECT_GT(after.ru_maxrss, 0);
  // One thread: the thread's usage is the process's, and also counts the spin.
  struct rusage thread {};
  ASSERT_OK(getrusage(RUSAGE_THREAD, &thread));
  EXPECT_GE(Ns(thread.ru_utime) - Ns(before.ru_utime), 100 * kMs);
}

TEST(RusageTest, TimesAreMonotonic) {
  struct rusage prev {};
  ASSERT_OK(getrusage(RUSAGE_SELF, &prev));
  for (int i = 0; i < 200; ++i) {
    Spin(kMs / 2);
    struct rusage now {};
    ASSERT_OK(getrusage(RUSAGE_SELF, &now));
    ASSERT_GE(Ns(now.ru_utime), Ns(prev.ru_utime));
    ASSERT_GE(Ns(now.ru_stime), Ns(prev.ru_stime));
    prev = now;
  }
}

TEST(RusageTest, BadArguments) {
  struct rusage ru;
  EXPECT_ERRNO(getrusage(static_cast<__rusage_who>(42), &ru), EINVAL);
  EXPECT_ERRNO(getrusage(static_cast<__rusage_who>(-2), &ru), EINVAL);
  EXPECT_ERRNO(syscall(SYS_getrusage, RUSAGE_SELF, reinterpret_cast<void*>(8)), EFAULT);
  EXPECT_ERRNO(syscall(SYS_times, reinterpret_cast<void*>(8)), EFAULT);
}

TEST(RusageTest, TimesCountsTicks) {
  const long hz = sysconf(_SC_CLK_TCK);
  ASSERT_EQ(hz, 100);
  struct tms before {};
  const clock_t t0 = times(&before);
  ASSERT_NE(t0, static_cast<clock_t>(-1));
  Spin(100 * kMs);
  timespec nap{0, 50 * kMs};
  ASSERT_OK(nanosleep(&nap, nullptr));
  struct tms after {};
  const clock_t t1 = times(&after);
  // At least 150 ms passed (100 of them spinning): 15 ticks, less one for
  // where the tick boundaries fell.
  EXPECT_GE(t1 - t0, 14);
  EXPECT_GE(after.tms_utime + after.tms_stime - before.tms_utime - before.tms_stime, 9);
  EXPECT_GE(after.tms_utime, before.tms_utime);
  // A null buffer: only the tick count (Linux allows it, times(2) NOTES).
  long t2 = syscall(SYS_times, nullptr);
  EXPECT_GE(t2, static_cast<long>(t1));
}

// Runs body in a forked child, whose RUSAGE_CHILDREN starts at zero.
TEST(RusageTest, ChildrenCountOnlyOnceWaitedFor) {
  EXPECT_EQ(InChild([] {
              struct rusage ru {};
              if (getrusage(RUSAGE_CHILDREN, &ru) != 0) return 1;
              if (Ns(ru.ru_utime) != 0 || Ns(ru.ru_stime) != 0) return 2;
              // The child reports its CPU time through a pipe before exiting.
              int fds[2];
              if (pipe2(fds, O_CLOEXEC) != 0) return 3;
              pid_t pid = fork();
              if (pid < 0) return 4;
              if (pid == 0) {
                Spin(150 * kMs);
                int64_t spent = ClockNs(CLOCK_PROCESS_CPUTIME_ID);
                _exit(write(fds[1], &spent, sizeof(spent)) == sizeof(spent) ? 0 : 1);
              }
              close(fds[1]);
              int64_t spent = 0;
              if (read(fds[0], &spent, sizeof(spent)) != sizeof(spent)) return 5;
              // Still unwaited: nothing counted yet, whether it exited or not.
              if (getrusage(RUSAGE_CHILDREN, &ru) != 0) return 6;
              if (Ns(ru.ru_utime) != 0 || Ns(ru.ru_stime) != 0) return 7;
              struct tms tms {};
              times(&tms);
              if (tms.tms_cutime != 0 || tms.tms_cstime != 0) return 8;
              int status = 0;
              struct rusage child {};
              if (wait4(pid, &status, 0, &child) != pid) return 9;
              if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 10;
              // wait4's report covers at least what the child saw of itself.
              if (Ns(child.ru_utime) + Ns(child.ru_stime) + 2000 < spent) return 11;
              if (Ns(child.ru_utime) < 75 * kMs) return 12;
              if (child.ru_maxrss <= 0) return 13;
              if (getrusage(RUSAGE_CHILDREN, &ru) != 0) return 14;
              if (Ns(ru.ru_utime) != Ns(child.ru_utime) || Ns(ru.ru_stime) != Ns(child.ru_stime))
                return 15;
              if (ru.ru_maxrss <= 0) return 16;
              times(&tms);
              if (tms.tms_cutime + tms.tms_cstime < 150 / 10 - 2) return 17;
              return 0;
            }),
            0);
}

TEST(RusageTest, GrandchildrenCountThroughAWaitingChild) {
  EXPECT_EQ(InChild([] {
              pid_t pid = fork();
              if (pid < 0) return 1;
              if (pid == 0) {
                // The child waits for a grandchild that spins, then exits.
                pid_t grandchild = fork();
                if (grandchild < 0) _exit(1);
                if (grandchild == 0) {
                  Spin(120 * kMs);
                  _exit(0);
                }
                int status;
                _exit(waitpid(grandchild, &status, 0) == grandchild ? 0 : 1);
              }
              int status = 0;
              struct rusage child {};
              if (wait4(pid, &status, 0, &child) != pid) return 2;
              if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 3;
              // RUSAGE_BOTH of the child: its own and its waited-for grandchild's.
              if (Ns(child.ru_utime) + Ns(child.ru_stime) < 120 * kMs) return 4;
              struct rusage ru {};
              if (getrusage(RUSAGE_CHILDREN, &ru) != 0) return 5;
              if (Ns(ru.ru_utime) + Ns(ru.ru_stime) < 120 * kMs) return 6;
              return 0;
            }),
            0);
}

TEST(RusageTest, SigchldCarriesTheChildsTimes) {
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &chld, &old));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Spin(100 * kMs);
    _exit(0);
  }
  siginfo_t info{};
  timespec limit{30, 0};
  int sig;
  do {
    sig = sigtimedwait(&chld, &info, &limit);
  } while (sig == SIGCHLD && info.si_pid != pid);
  EXPECT_EQ(sig, SIGCHLD);
  EXPECT_EQ(info.si_code, CLD_EXITED);
  // In clock ticks: about 10 for 100 ms, of which the host may have
  // sampled fewer as user time.
  EXPECT_GE(info.si_utime + info.si_stime, 5);
  EXPECT_EQ(Wait(pid), 0);
  sigprocmask(SIG_SETMASK, &old, nullptr);
}

TEST(CpuClockTest, ProcessAndThreadClocksAdvanceWhileSpinning) {
  for (clockid_t clock : {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID}) {
    int64_t start = ClockNs(clock);
    Spin(20 * kMs);
    EXPECT_GE(ClockNs(clock) - start, 20 * kMs) << "clock " << clock;
    timespec res{-1, -1};
    ASSERT_OK(syscall(SYS_clock_getres, clock, &res));
    EXPECT_EQ(res.tv_sec, 0);
    EXPECT_EQ(res.tv_nsec, 1);  // the scheduler's clock counts nanoseconds
  }
}

TEST(CpuClockTest, ClockGetcpuclockidReadsAnotherProcess) {
  clockid_t self;
  ASSERT_EQ(clock_getcpuclockid(0, &self), 0);
  int64_t mine = ClockNs(self);
  EXPECT_GT(mine, 0);
  ASSERT_EQ(clock_getcpuclockid(getpid(), &self), 0);
  EXPECT_GE(ClockNs(self), mine);

  Pipe ready = MakePipe(O_CLOEXEC);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Spin(50 * kMs);
    char c = 'x';
    (void)!write(ready.w.get(), &c, 1);
    for (;;) pause();
  }
  char c;
  ASSERT_EQ(read(ready.r.get(), &c, 1), 1);
  clockid_t child_clock;
  ASSERT_EQ(clock_getcpuclockid(pid, &child_clock), 0);
  EXPECT_GE(ClockNs(child_clock), 50 * kMs);
  // A zombie's clock still reads (its final time); once reaped, the pid
  // names no process: EINVAL from the kernel, ESRCH from glibc.
  ASSERT_OK(kill(pid, SIGKILL));
  EXPECT_EQ(Wait(pid), SIGKILL);
  timespec ts;
  EXPECT_ERRNO(syscall(SYS_clock_gettime, child_clock, &ts), EINVAL);
  EXPECT_ERRNO(syscall(SYS_clock_getres, child_clock, &ts), EINVAL);
  EXPECT_EQ(clock_getcpuclockid(pid, &child_clock), ESRCH);
}

TEST(CpuClockTest, PthreadClockIsTheThreadsTime) {
  clockid_t clock;
  ASSERT_EQ(pthread_getcpuclockid(pthread_self(), &clock), 0);
  int64_t start = ClockNs(clock);
  Spin(10 * kMs);
  EXPECT_GE(ClockNs(clock) - start, 10 * kMs);
}

TEST(CpuClockTest, MalformedIdsAreInvalid) {
  timespec ts;
  // Which part 3 is CLOCKFD (a clock device's descriptor), not a CPU clock.
  const clockid_t fd_clock = (~static_cast<clockid_t>(0) << 3) | 3;
  EXPECT_ERRNO(syscall(SYS_clock_gettime, fd_clock, &ts), EINVAL);
  EXPECT_ERRNO(syscall(SYS_clock_gettime, 10, &ts), EINVAL);  // CLOCK_SGI_CYCLE: gone
  EXPECT_ERRNO(syscall(SYS_clock_gettime, 16, &ts), EINVAL);
}

}  // namespace
}  // namespace husk_test
