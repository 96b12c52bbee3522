// Process file descriptors (pidfd_open, pidfd_send_signal, pidfd_getfd,
// clone's CLONE_PIDFD) and waitid(2) with P_ALL, P_PID, P_PGID and
// P_PIDFD. Children block on pipes until the test releases them.
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::Fd;
using husk_test::MakePipe;
using husk_test::Pipe;

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

int PidfdOpen(pid_t pid, unsigned flags = 0) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, flags));
}

// A child that exits with `code` once the returned pipe's write end closes
// (or a byte is written to it).
struct Held {
  pid_t pid = -1;
  Pipe pipe;
};

Held Spawn(int code) {
  Held h{-1, MakePipe()};
  h.pid = fork();
  if (h.pid == 0) {
    h.pipe.w.Reset();
    char c;
    (void)!read(h.pipe.r.get(), &c, 1);
    _exit(code);
  }
  h.pipe.r.Reset();
  return h;
}

// POLLIN, or 0 if the process has not ended; Linux 6.9 on adds POLLHUP.
short Poll(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int n = poll(&p, 1, timeout_ms);
  return static_cast<short>(n == 1 ? (p.revents & ~POLLHUP) : n);
}

TEST(PidfdTest, OpenErrors) {
  EXPECT_ERRNO(PidfdOpen(0), EINVAL);
  EXPECT_ERRNO(PidfdOpen(-1), EINVAL);
  EXPECT_ERRNO(PidfdOpen(getpid(), 1), EINVAL);
  EXPECT_ERRNO(PidfdOpen(999999), ESRCH);
  Fd self(PidfdOpen(getpid()));
  ASSERT_TRUE(self.valid()) << husk_test::ErrnoName(errno);
  EXPECT_EQ(fcntl(self.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(self.get(), F_GETFL) & O_ACCMODE, O_RDWR);
  char c;
  EXPECT_ERRNO(read(self.get(), &c, 1), EINVAL);
}

TEST(PidfdTest, AThreadIsNotAProcess) {
  struct Shared {
    pid_t tid = 0;
    Pipe go = MakePipe();
  } sh;
  pthread_t th;
  auto body = [](void* arg) -> void* {
    auto* s = static_cast<Shared*>(arg);
    __atomic_store_n(&s->tid, static_cast<pid_t>(syscall(SYS_gettid)), __ATOMIC_SEQ_CST);
    char c;
    (void)!read(s->go.r.get(), &c, 1);
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&th, nullptr, body, &sh), 0);
  while (__atomic_load_n(&sh.tid, __ATOMIC_SEQ_CST) == 0) sched_yield();
  // EINVAL up to Linux 6.8 (husk reports 6.1), ENOENT since PIDFD_THREAD.
  errno = 0;
  EXPECT_EQ(PidfdOpen(sh.tid), -1);
  EXPECT_TRUE(errno == EINVAL || errno == ENOENT) << husk_test::ErrnoName(errno);
  ASSERT_EQ(write(sh.go.w.get(), "g", 1), 1);
  pthread_join(th, nullptr);
}

TEST(PidfdTest, PollsReadableWhenTheProcessEnds) {
  Held h = Spawn(4);
  ASSERT_GT(h.pid, 0);
  Fd fd(PidfdOpen(h.pid));
  ASSERT_TRUE(fd.valid()) << husk_test::ErrnoName(errno);
  EXPECT_EQ(Poll(fd.get(), 0), 0);
  h.pipe.w.Reset();
  EXPECT_EQ(Poll(fd.get(), -1), POLLIN);
  // A zombie until reaped, and still readable after.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PIDFD, fd.get(), &info, WEXITED), 0);
  EXPECT_EQ(info.si_signo, SIGCHLD);
  EXPECT_EQ(info.si_code, CLD_EXITED);
  EXPECT_EQ(info.si_pid, h.pid);
  EXPECT_EQ(info.si_uid, getuid());
  EXPECT_EQ(info.si_status, 4);
  EXPECT_EQ(Poll(fd.get(), 0), POLLIN);
  EXPECT_ERRNO(waitid(P_PIDFD, fd.get(), &info, WEXITED), ECHILD);
}

TEST(PidfdTest, WaitidThroughPidfdErrors) {
  siginfo_t info;
  Fd self(PidfdOpen(getpid()));
  ASSERT_TRUE(self.valid());
  EXPECT_ERRNO(waitid(P_PIDFD, self.get(), &info, WEXITED), ECHILD);  // not a child
  EXPECT_ERRNO(waitid(P_PIDFD, 0x7fff, &info, WEXITED), EBADF);
  Pipe p = MakePipe();
  EXPECT_ERRNO(waitid(P_PIDFD, p.r.get(), &info, WEXITED), EBADF);  // not a pidfd
}

TEST(PidfdTest, NonblockingPidfdWaitIsEagain) {
  Held h = Spawn(0);
  ASSERT_GT(h.pid, 0);
  Fd fd(PidfdOpen(h.pid, PIDFD_NONBLOCK));
  ASSERT_TRUE(fd.valid()) << husk_test::ErrnoName(errno);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  siginfo_t info;
  EXPECT_ERRNO(waitid(P_PIDFD, fd.get(), &info, WEXITED), EAGAIN);
  // With WNOHANG it is the usual empty answer.
  memset(&info, 0xff, sizeof(info));
  EXPECT_EQ(waitid(P_PIDFD, fd.get(), &info, WEXITED | WNOHANG), 0);
  EXPECT_EQ(info.si_pid, 0);
  EXPECT_EQ(info.si_signo, 0);
  h.pipe.w.Reset();
  EXPECT_EQ(Poll(fd.get(), -1), POLLIN);
  EXPECT_EQ(waitid(P_PIDFD, fd.get(), &info, WEXITED), 0);
  EXPECT_EQ(info.si_pid, h.pid);
}

TEST(PidfdTest, SendSignal) {
  Held h = Spawn(0);
  ASSERT_GT(h.pid, 0);
  Fd fd(PidfdOpen(h.pid));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(syscall(SYS_pidfd_send_signal, fd.get(), 0, nullptr, 0), 0);
  EXPECT_ERRNO(syscall(SYS_pidfd_send_signal, fd.get(), SIGKILL, nullptr, 1 << 10), EINVAL);
  EXPECT_ERRNO(syscall(SYS_pidfd_send_signal, fd.get(), 65, nullptr, 0), EINVAL);
  Pipe p = MakePipe();
  EXPECT_ERRNO(syscall(SYS_pidfd_send_signal, p.r.get(), SIGKILL, nullptr, 0), EBADF);
  // A siginfo of one's own making goes only to oneself...
  siginfo_t info{};
  info.si_signo = SIGUSR1;
  info.si_code = SI_USER;
  EXPECT_ERRNO(syscall(SYS_pidfd_send_signal, fd.get(), SIGUSR1, &info, 0), EPERM);
  // ...and must name the signal sent.
  info.si_code = -10;
  EXPECT_ERRNO(syscall(SYS_pidfd_send_signal, fd.get(), SIGUSR2, &info, 0), EINVAL);
  ASSERT_EQ(syscall(SYS_pidfd_send_signal, fd.get(), SIGKILL, nullptr, 0), 0);
  int status = husk_test::Wait(h.pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  // Reaped: gone.
  EXPECT_ERRNO(syscall(SYS_pidfd_send_signal, fd.get(), SIGKILL, nullptr, 0), ESRCH);
}

TEST(PidfdTest, SendSignalToSelfWithInfo) {
  EXPECT_EQ(husk_test::InChild([] {
              Fd self(PidfdOpen(getpid()));
              sigset_t set;
              sigemptyset(&set);
              sigaddset(&set, SIGUSR1);
              sigprocmask(SIG_BLOCK, &set, nullptr);
              siginfo_t info{};
              info.si_signo = SIGUSR1;
              info.si_code = SI_QUEUE;
              info.si_value.sival_int = 77;
              if (syscall(SYS_pidfd_send_signal, self.get(), SIGUSR1, &info, 0) != 0) return 1;
              siginfo_t got{};
              timespec zero{0, 0};
              if (sigtimedwait(&set, &got, &zero) != SIGUSR1) return 2;
              if (got.si_code != SI_QUEUE || got.si_value.sival_int != 77) return 3;
              return 0;
            }),
            0);
}

TEST(PidfdTest, Getfd) {
  Pipe data = MakePipe();
  Pipe hold = MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    hold.w.Reset();
    if (dup2(data.w.get(), 100) != 100) _exit(1);
    data.w.Reset();
    char c;
    (void)!read(hold.r.get(), &c, 1);
    _exit(0);
  }
  hold.r.Reset();
  Fd fd(PidfdOpen(pid));
  ASSERT_TRUE(fd.valid());
  // The child's descriptor 100 appears with its dup2: retry until then.
  int got = -1;
  for (int i = 0; i < 100000 && got < 0; i++) {
    got = static_cast<int>(syscall(SYS_pidfd_getfd, fd.get(), 100, 0));
    if (got < 0 && errno != EBADF) break;
    if (got < 0) sched_yield();
  }
  ASSERT_GE(got, 0) << husk_test::ErrnoName(errno);
  Fd copy(got);
  EXPECT_EQ(fcntl(copy.get(), F_GETFD), FD_CLOEXEC);
  data.w.Reset();
  ASSERT_EQ(write(copy.get(), "z", 1), 1);
  char c = 0;
  ASSERT_EQ(read(data.r.get(), &c, 1), 1);
  EXPECT_EQ(c, 'z');
  EXPECT_ERRNO(syscall(SYS_pidfd_getfd, fd.get(), 1000, 0), EBADF);
  EXPECT_ERRNO(syscall(SYS_pidfd_getfd, fd.get(), 100, 1), EINVAL);
  EXPECT_ERRNO(syscall(SYS_pidfd_getfd, data.r.get(), 100, 0), EBADF);
  hold.w.Reset();
  EXPECT_EQ(husk_test::Wait(pid), 0);
  EXPECT_ERRNO(syscall(SYS_pidfd_getfd, fd.get(), 100, 0), ESRCH);
}

TEST(PidfdTest, GetfdNeedsTheRightToTrace) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (in its user namespace)";
  EXPECT_EQ(husk_test::InChild([] {
              const pid_t root = getppid();
              Fd fd(PidfdOpen(root));
              if (!fd.valid()) return 1;
              if (setresuid(1000, 1000, 1000) != 0) return 2;
              errno = 0;
              if (syscall(SYS_pidfd_getfd, fd.get(), 0, 0) != -1 || errno != EPERM) return 3;
              return 0;
            }),
            0);
}

TEST(PidfdTest, ClonePidfd) {
  int pidfd = -1;
  long pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, nullptr, &pidfd, nullptr, nullptr);
  if (pid == 0) syscall(SYS_exit_group, 6);
  ASSERT_GT(pid, 0) << husk_test::ErrnoName(errno);
  Fd fd(pidfd);
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(Poll(fd.get(), -1), POLLIN);
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PIDFD, fd.get(), &info, WEXITED), 0);
  EXPECT_EQ(info.si_pid, pid);
  EXPECT_EQ(info.si_status, 6);
  // clone(2) puts the pidfd where the parent's tid would go.
  int tid = 0;
  EXPECT_ERRNO(syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, nullptr, &tid,
                       nullptr, nullptr),
               EINVAL);
  EXPECT_ERRNO(
      syscall(SYS_clone, CLONE_PIDFD | CLONE_DETACHED | SIGCHLD, nullptr, &tid, nullptr, nullptr),
      EINVAL);
}

// waitid without pidfds.

TEST(WaitidTest, ArgumentErrors) {
  siginfo_t info;
  EXPECT_ERRNO(waitid(P_ALL, 0, &info, 0), EINVAL);
  EXPECT_ERRNO(waitid(P_ALL, 0, &info, WEXITED | 0x100), EINVAL);
  EXPECT_ERRNO(waitid(static_cast<idtype_t>(7), 0, &info, WEXITED), EINVAL);
  EXPECT_ERRNO(waitid(P_PID, 0, &info, WEXITED), EINVAL);
  EXPECT_ERRNO(waitid(P_PGID, -1, &info, WEXITED), EINVAL);
  EXPECT_ERRNO(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), ECHILD);
}

TEST(WaitidTest, NohangAndNowait) {
  Held h = Spawn(9);
  ASSERT_GT(h.pid, 0);
  siginfo_t info;
  memset(&info, 0xff, sizeof(info));
  ASSERT_EQ(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), 0);
  EXPECT_EQ(info.si_signo, 0);
  EXPECT_EQ(info.si_pid, 0);
  EXPECT_EQ(info.si_status, 0);
  h.pipe.w.Reset();
  // WNOWAIT reports and leaves the zombie.
  ASSERT_EQ(waitid(P_PID, h.pid, &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(info.si_pid, h.pid);
  EXPECT_EQ(info.si_status, 9);
  ASSERT_EQ(waitid(P_PGID, 0, &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(info.si_pid, h.pid);
  int status = husk_test::Wait(h.pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 9);
}

TEST(WaitidTest, StoppedContinuedKilled) {
  Held h = Spawn(0);
  ASSERT_GT(h.pid, 0);
  siginfo_t info{};
  ASSERT_EQ(kill(h.pid, SIGSTOP), 0);
  ASSERT_EQ(waitid(P_PID, h.pid, &info, WSTOPPED), 0);
  EXPECT_EQ(info.si_code, CLD_STOPPED);
  EXPECT_EQ(info.si_status, SIGSTOP);
  // Reported once.
  EXPECT_EQ(waitid(P_PID, h.pid, &info, WSTOPPED | WNOHANG), 0);
  EXPECT_EQ(info.si_pid, 0);
  ASSERT_EQ(kill(h.pid, SIGCONT), 0);
  ASSERT_EQ(waitid(P_PID, h.pid, &info, WCONTINUED), 0);
  EXPECT_EQ(info.si_code, CLD_CONTINUED);
  EXPECT_EQ(info.si_status, SIGCONT);
  ASSERT_EQ(kill(h.pid, SIGKILL), 0);
  ASSERT_EQ(waitid(P_PID, h.pid, &info, WEXITED), 0);
  EXPECT_EQ(info.si_code, CLD_KILLED);
  EXPECT_EQ(info.si_status, SIGKILL);
  EXPECT_ERRNO(waitpid(h.pid, nullptr, WNOHANG), ECHILD);
}

}  // namespace
