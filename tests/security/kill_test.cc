// SIGKILL ends a task wherever it blocks (signal(7): SIGKILL cannot be caught, blocked or
// ignored; a task asleep in the kernel is woken and dies). Issue 11, finding 2: a task in
// FUTEX_WAIT without a timeout could not be killed in husk, even by SIGKILL.
//
// Each test forks a child that blocks every signal, tells the parent it is about to block,
// and blocks in one call with no timeout. The parent waits until /proc shows the child
// asleep, sends SIGKILL, and expects it to die of SIGKILL within kKillDeadlineMs: a child
// that cannot be killed fails the test instead of hanging it.
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "tests/security/security_util.h"

namespace {

using husk_security::DescribeStatus;
using husk_security::WaitUntilSleeping;
using husk_security::WaitWithDeadline;
using husk_test::Fd;
using husk_test::MakePipe;
using husk_test::Pipe;

// Linux ends a killed task within microseconds; 5 s leaves room for a slow, loaded machine.
constexpr int64_t kKillDeadlineMs = 5000;
// How long the child may take to reach its blocking call.
constexpr int64_t kBlockDeadlineMs = 5000;

// Tells the parent that the child is about to block (the last thing before the call).
void Ready(int fd) {
  char c = 'r';
  if (write(fd, &c, 1) != 1) _exit(90);
  close(fd);
}

// Forks a child that blocks all signals and runs block(ready_fd); block calls Ready(ready_fd)
// just before its blocking call and must never return. Then SIGKILLs the child and checks
// that it dies of it.
template <typename F>
void ExpectSigkillEnds(F block) {
  Pipe ready = MakePipe(O_CLOEXEC);
  pid_t pid = fork();
  ASSERT_GE(pid, 0) << husk_test::ErrnoName(errno);
  if (pid == 0) {
    ready.r.Reset();
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, nullptr);  // SIGKILL ignores the mask
    block(ready.w.Release());
    _exit(91);  // the blocking call returned
  }
  ready.w.Reset();
  char c;
  ASSERT_EQ(read(ready.r.get(), &c, 1), 1) << "the child died before blocking";
  const bool slept = WaitUntilSleeping(pid, kBlockDeadlineMs);
  int status = 0;
  if (!slept && waitpid(pid, &status, WNOHANG) == pid)
    FAIL() << "the child never blocked: it " << DescribeStatus(status)
           << " (exit 91: the blocking call returned)";
  ASSERT_EQ(kill(pid, SIGKILL), 0) << husk_test::ErrnoName(errno);
  ASSERT_TRUE(WaitWithDeadline(pid, kKillDeadlineMs, &status))
      << "SIGKILL did not end the blocked child within " << kKillDeadlineMs << " ms";
  EXPECT_TRUE(husk_security::KilledBy(status, SIGKILL)) << DescribeStatus(status);
  EXPECT_TRUE(slept) << "/proc/" << pid << "/stat never showed the child asleep (S)";
}

TEST(KillTest, SigkillEndsPrivateFutexWait) {
  ExpectSigkillEnds([](int ready) {
    static int word = 0;
    Ready(ready);
    syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
  });
}

TEST(KillTest, SigkillEndsSharedFutexWait) {
  ExpectSigkillEnds([](int ready) {
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(92);
    Ready(ready);
    syscall(SYS_futex, p, FUTEX_WAIT, 0, nullptr, nullptr, 0);
  });
}

TEST(KillTest, SigkillEndsFutexWaitBitset) {
  ExpectSigkillEnds([](int ready) {
    static int word = 0;
    Ready(ready);
    syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, nullptr, nullptr,
            FUTEX_BITSET_MATCH_ANY);
  });
}

TEST(KillTest, SigkillEndsReadOfAnEmptyPipe) {
  ExpectSigkillEnds([](int ready) {
    Pipe p = MakePipe();  // the child holds the writer: no EOF
    char c;
    Ready(ready);
    read(p.r.get(), &c, 1);
  });
}

TEST(KillTest, SigkillEndsWriteToAFullPipe) {
  ExpectSigkillEnds([](int ready) {
    Pipe p = MakePipe(O_NONBLOCK);
    char buf[4096] = {};
    while (write(p.w.get(), buf, sizeof(buf)) > 0) {
    }
    if (errno != EAGAIN) _exit(92);
    if (fcntl(p.w.get(), F_SETFL, 0) != 0) _exit(93);
    Ready(ready);
    write(p.w.get(), buf, sizeof(buf));
  });
}

TEST(KillTest, SigkillEndsWait4OnALiveChild) {
  ExpectSigkillEnds([](int ready) {
    // The grandchild reads a pipe whose only writer is the child: it ends with the child.
    Pipe p = MakePipe();
    pid_t grandchild = fork();
    if (grandchild < 0) _exit(92);
    if (grandchild == 0) {
      p.w.Reset();
      char c;
      _exit(read(p.r.get(), &c, 1) == 0 ? 0 : 1);
    }
    int status;
    Ready(ready);
    wait4(grandchild, &status, 0, nullptr);
  });
}

TEST(KillTest, SigkillEndsPollWithoutTimeout) {
  ExpectSigkillEnds([](int ready) {
    Pipe p = MakePipe();
    pollfd pfd{p.r.get(), POLLIN, 0};
    Ready(ready);
    poll(&pfd, 1, -1);
  });
}

TEST(KillTest, SigkillEndsSelectWithoutTimeout) {
  ExpectSigkillEnds([](int ready) {
    Pipe p = MakePipe();
    fd_set rfds;
    FD_ZERO(&rfds);
    FD_SET(p.r.get(), &rfds);
    Ready(ready);
    select(p.r.get() + 1, &rfds, nullptr, nullptr, nullptr);
  });
}

TEST(KillTest, SigkillEndsEpollWaitWithoutTimeout) {
  ExpectSigkillEnds([](int ready) {
    Pipe p = MakePipe();
    Fd ep(epoll_create1(0));
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), &ev) != 0) _exit(92);
    Ready(ready);
    epoll_wait(ep.get(), &ev, 1, -1);
  });
}

TEST(KillTest, SigkillEndsALongNanosleep) {
  ExpectSigkillEnds([](int ready) {
    timespec ts{1000000, 0};
    Ready(ready);
    syscall(SYS_nanosleep, &ts, nullptr);
  });
}

TEST(KillTest, SigkillEndsSigsuspend) {
  ExpectSigkillEnds([](int ready) {
    sigset_t all;
    sigfillset(&all);  // waits with every signal blocked: only SIGKILL (or SIGSTOP) acts
    Ready(ready);
    sigsuspend(&all);
  });
}

TEST(KillTest, SigkillEndsPause) {
  ExpectSigkillEnds([](int ready) {
    Ready(ready);
    pause();
  });
}

// A stopped task (SIGSTOP) is killed by SIGKILL without being continued first.
TEST(KillTest, SigkillEndsAStoppedTask) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    raise(SIGSTOP);
    _exit(91);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << DescribeStatus(status);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitWithDeadline(pid, kKillDeadlineMs, &status)) << "SIGKILL did not end it";
  EXPECT_TRUE(husk_security::KilledBy(status, SIGKILL)) << DescribeStatus(status);
}

// kill(2) of a zombie succeeds (it still exists until it is reaped): kill(pid, 0) is how
// programs probe that a pid is still theirs.
TEST(KillTest, KillOfAZombieSucceeds) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(7);
  const int64_t end = husk_test::NowMs() + kBlockDeadlineMs;
  while (husk_security::ProcState(pid) != 'Z' && husk_test::NowMs() < end) husk_security::Tick();
  ASSERT_EQ(husk_security::ProcState(pid), 'Z') << "the child never became a zombie";
  EXPECT_EQ(kill(pid, 0), 0) << husk_test::ErrnoName(errno);
  EXPECT_EQ(kill(pid, SIGKILL), 0) << husk_test::ErrnoName(errno);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(husk_security::ExitedWith(status, 7)) << DescribeStatus(status);
  errno = 0;
  EXPECT_EQ(kill(pid, 0), -1);  // reaped: gone
  EXPECT_EQ(errno, ESRCH);
}

// Standard input from the host (in husk: a host stdio file, not a sentry pipe). The
// CMake registration runs this binary with stdin a FIFO that it holds open for writing
// itself, so a read blocks forever; run by hand with other stdin, the test is skipped.
TEST(KillTest, SigkillEndsReadOfStdinThatNoOneWrites) {
  struct stat st;
  ASSERT_EQ(fstat(STDIN_FILENO, &st), 0);
  pollfd pfd{STDIN_FILENO, POLLIN, 0};
  if (!S_ISFIFO(st.st_mode) || poll(&pfd, 1, 0) != 0)
    GTEST_SKIP() << "stdin is not a pipe that no one writes (run it as `... <>fifo`)";
  ExpectSigkillEnds([](int ready) {
    char c;
    Ready(ready);
    read(STDIN_FILENO, &c, 1);
  });
}

}  // namespace
