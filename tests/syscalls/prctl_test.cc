// prctl(2) process control: the parent-death signal (per thread), child
// subreapers, dumpability, no_new_privs, the clear_child_tid address, timer
// slack, PR_SET_MM. Changes happen in forked children; orphans are caught
// by a child that made itself a subreaper, so that nothing is left to the
// fence's init (or, in husk, to the test itself).
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::InChild;
using husk_test::MakePipe;
using husk_test::Pipe;

// Reads one byte (false at EOF or on an error).
bool ReadByte(int fd, char* c) { return read(fd, c, 1) == 1; }

class PrctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (in its user namespace)";
  }
};

TEST_F(PrctlTest, PdeathsigIsStoredNotInheritedAndValidated) {
  EXPECT_EQ(InChild([] {
              int sig = -1;
              if (prctl(PR_GET_PDEATHSIG, &sig) != 0 || sig != 0) return 1;
              if (prctl(PR_SET_PDEATHSIG, SIGUSR1) != 0) return 2;
              if (prctl(PR_GET_PDEATHSIG, &sig) != 0 || sig != SIGUSR1) return 3;
              errno = 0;
              if (prctl(PR_SET_PDEATHSIG, 65) != -1 || errno != EINVAL) return 4;
              errno = 0;
              if (prctl(PR_GET_PDEATHSIG, nullptr) != -1 || errno != EFAULT) return 5;
              // A forked child starts without one.
              if (InChild([] {
                    int s = -1;
                    return prctl(PR_GET_PDEATHSIG, &s) == 0 && s == 0 ? 0 : 1;
                  }) != 0) {
                return 6;
              }
              // Changing the effective uid forgets it (commit_creds).
              if (seteuid(1000) != 0) return 7;
              if (prctl(PR_GET_PDEATHSIG, &sig) != 0 || sig != 0) return 8;
              return 0;
            }),
            0);
}

// The subreaper C forks A, A forks B; B asks for SIGUSR1 when its parent
// goes and blocks; A exits; B dies of SIGUSR1 and C, its new parent, reaps it.
TEST_F(PrctlTest, PdeathsigArrivesWhenTheParentExits) {
  EXPECT_EQ(InChild([] {
              if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return 1;
              Pipe ready = MakePipe(), hold = MakePipe();
              pid_t a = fork();
              if (a < 0) return 2;
              if (a == 0) {
                pid_t b = fork();
                if (b < 0) _exit(1);
                if (b == 0) {
                  if (prctl(PR_SET_PDEATHSIG, SIGUSR1) != 0) _exit(1);
                  (void)!write(ready.w.get(), "r", 1);
                  char c;
                  (void)!read(hold.r.get(), &c, 1);
                  _exit(3);  // not signalled
                }
                char c;
                _exit(ReadByte(ready.r.get(), &c) ? 0 : 1);
              }
              if (husk_test::Wait(a) != 0) return 3;
              int status = 0;
              pid_t got = wait(&status);
              if (got <= 0) return 4;
              if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGUSR1) return 5;
              return 0;
            }),
            0);
}

// The parent-death signal is about the thread that forked: it fires when
// that thread exits, although its process lives on.
TEST_F(PrctlTest, PdeathsigFollowsTheParentThread) {
  EXPECT_EQ(InChild([] {
              struct Shared {
                Pipe ready = MakePipe(), hold = MakePipe();
                pid_t child = -1;
              } sh;
              auto body = [](void* arg) -> void* {
                auto* s = static_cast<Shared*>(arg);
                s->child = fork();
                if (s->child == 0) {
                  if (prctl(PR_SET_PDEATHSIG, SIGUSR2) != 0) _exit(1);
                  (void)!write(s->ready.w.get(), "r", 1);
                  char c;
                  (void)!read(s->hold.r.get(), &c, 1);
                  _exit(3);
                }
                char c;
                (void)!read(s->ready.r.get(), &c, 1);
                return nullptr;
              };
              pthread_t th;
              if (pthread_create(&th, nullptr, body, &sh) != 0) return 1;
              pthread_join(th, nullptr);
              if (sh.child <= 0) return 2;
              int status = 0;
              if (waitpid(sh.child, &status, 0) != sh.child) return 3;
              if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGUSR2) return 4;
              return 0;
            }),
            0);
}

TEST_F(PrctlTest, SubreaperAdoptsOrphans) {
  EXPECT_EQ(InChild([] {
              int v = -1;
              if (prctl(PR_GET_CHILD_SUBREAPER, &v) != 0 || v != 0) return 1;
              if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return 2;
              if (prctl(PR_GET_CHILD_SUBREAPER, &v) != 0 || v != 1) return 3;
              const pid_t me = getpid();
              Pipe go = MakePipe(), answer = MakePipe(), pid_pipe = MakePipe();
              pid_t a = fork();
              if (a < 0) return 4;
              if (a == 0) {
                pid_t b = fork();
                if (b < 0) _exit(1);
                if (b == 0) {
                  char c;
                  if (!ReadByte(go.r.get(), &c)) _exit(1);
                  pid_t ppid = getppid();
                  (void)!write(answer.w.get(), &ppid, sizeof(ppid));
                  _exit(7);
                }
                (void)!write(pid_pipe.w.get(), &b, sizeof(b));
                _exit(0);
              }
              pid_pipe.w.Reset();
              pid_t b = -1;
              if (read(pid_pipe.r.get(), &b, sizeof(b)) != sizeof(b)) return 5;
              if (husk_test::Wait(a) != 0) return 6;
              // A is gone and reaped: B is ours now.
              if (write(go.w.get(), "g", 1) != 1) return 7;
              pid_t ppid = -1;
              if (read(answer.r.get(), &ppid, sizeof(ppid)) != sizeof(ppid)) return 8;
              if (ppid != me) return 9;
              int status = 0;
              if (waitpid(b, &status, 0) != b) return 10;
              if (!WIFEXITED(status) || WEXITSTATUS(status) != 7) return 11;
              return 0;
            }),
            0);
}

// An orphan that is already a zombie when its parent exits is announced to
// the subreaper, whose wait finds it.
TEST_F(PrctlTest, SubreaperReapsZombieOrphans) {
  EXPECT_EQ(InChild([] {
              if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return 1;
              Pipe pid_pipe = MakePipe();
              pid_t a = fork();
              if (a < 0) return 2;
              if (a == 0) {
                pid_t b = fork();
                if (b < 0) _exit(1);
                if (b == 0) _exit(5);
                // B is a zombie once this wait says it can be seen.
                siginfo_t info;
                if (waitid(P_PID, b, &info, WEXITED | WNOWAIT) != 0) _exit(1);
                (void)!write(pid_pipe.w.get(), &b, sizeof(b));
                _exit(0);
              }
              pid_pipe.w.Reset();
              pid_t b = -1;
              if (read(pid_pipe.r.get(), &b, sizeof(b)) != sizeof(b)) return 3;
              if (husk_test::Wait(a) != 0) return 4;
              int status = 0;
              if (waitpid(b, &status, 0) != b) return 5;
              if (!WIFEXITED(status) || WEXITSTATUS(status) != 5) return 6;
              errno = 0;
              if (waitpid(-1, &status, WNOHANG) != -1 || errno != ECHILD) return 7;
              return 0;
            }),
            0);
}

TEST_F(PrctlTest, Dumpable) {
  EXPECT_EQ(InChild([] {
              if (prctl(PR_GET_DUMPABLE) != 1) return 1;
              if (prctl(PR_SET_DUMPABLE, 0) != 0 || prctl(PR_GET_DUMPABLE) != 0) return 2;
              errno = 0;
              if (prctl(PR_SET_DUMPABLE, 2) != -1 || errno != EINVAL) return 3;
              if (prctl(PR_SET_DUMPABLE, 1) != 0 || prctl(PR_GET_DUMPABLE) != 1) return 4;
              return 0;
            }),
            0);
}

TEST_F(PrctlTest, NoNewPrivsIsOneWayAndInherited) {
  EXPECT_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
  EXPECT_ERRNO(prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0), EINVAL);
  EXPECT_ERRNO(prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0), EINVAL);
  EXPECT_ERRNO(prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0), EINVAL);
  EXPECT_EQ(InChild([] {
              if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 1;
              if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return 2;
              return InChild([] { return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : 3; });
            }),
            0);
}

TEST_F(PrctlTest, TidAddress) {
  EXPECT_EQ(InChild([] {
              static int word;
              if (syscall(SYS_set_tid_address, &word) != getpid()) return 1;
              int* got = nullptr;
              if (prctl(PR_GET_TID_ADDRESS, &got) != 0 || got != &word) return 2;
              return 0;
            }),
            0);
}

TEST_F(PrctlTest, TimerSlack) {
  EXPECT_EQ(InChild([] {
              // A forked child's default is its slack at the fork.
              const int initial = prctl(PR_GET_TIMERSLACK);
              if (initial <= 0) return 1;
              if (prctl(PR_SET_TIMERSLACK, 12345) != 0) return 2;
              if (prctl(PR_GET_TIMERSLACK) != 12345) return 3;
              if (InChild([] { return prctl(PR_GET_TIMERSLACK) == 12345 ? 0 : 1; }) != 0) return 4;
              if (prctl(PR_SET_TIMERSLACK, 0) != 0) return 5;
              if (prctl(PR_GET_TIMERSLACK) != initial) return 6;
              return 0;
            }),
            0);
}

TEST_F(PrctlTest, SetMm) {
  unsigned size = 0;
  EXPECT_EQ(prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0), 0);
  EXPECT_EQ(size, 104u);  // sizeof(struct prctl_mm_map)
  EXPECT_ERRNO(prctl(PR_SET_MM, PR_SET_MM_START_CODE, 0x400000, 0, 1), EINVAL);
  EXPECT_ERRNO(prctl(PR_SET_MM, PR_SET_MM_START_CODE, 0x400000, 1, 0), EINVAL);
  // CAP_SYS_RESOURCE in the initial user namespace: no task of a container has it.
  EXPECT_ERRNO(prctl(PR_SET_MM, PR_SET_MM_START_CODE, 0x400000, 0, 0), EPERM);
}

TEST_F(PrctlTest, UnknownOptionIsEinval) { EXPECT_ERRNO(prctl(0x7fff0000, 0, 0, 0, 0), EINVAL); }

}  // namespace
