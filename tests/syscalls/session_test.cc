// Sessions and process groups: setsid, setpgid, getsid, getpgid, with the
// errors of setpgid(2) and setsid(2). Each case runs in a forked child that
// is not a group leader to begin with.
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::InChild;
using husk_test::MakePipe;
using husk_test::Pipe;

// A child blocked on a pipe until `release` closes; exits 0.
pid_t Blocked(Pipe& release) {
  pid_t pid = fork();
  if (pid == 0) {
    release.w.Reset();
    char c;
    (void)!read(release.r.get(), &c, 1);
    _exit(0);
  }
  return pid;
}

TEST(SessionTest, SetsidMakesANewSessionOnce) {
  EXPECT_EQ(InChild([] {
              const pid_t me = getpid();
              if (getpgrp() == me) return 1;  // a forked child is no group leader
              if (setsid() != me) return 2;
              if (getsid(0) != me || getpgrp() != me || getpgid(0) != me) return 3;
              // A session leader may neither start another nor change group.
              errno = 0;
              if (setsid() != -1 || errno != EPERM) return 4;
              errno = 0;
              if (setpgid(0, 0) != -1 || errno != EPERM) return 5;
              return 0;
            }),
            0);
}

TEST(SessionTest, SetsidFailsForAGroupLeader) {
  EXPECT_EQ(InChild([] {
              if (setpgid(0, 0) != 0) return 1;
              errno = 0;
              if (setsid() != -1 || errno != EPERM) return 2;
              return 0;
            }),
            0);
}

// A process that left the group it led cannot take a session id that the
// group still uses.
TEST(SessionTest, SetsidFailsWhileItsGroupIdIsInUse) {
  EXPECT_EQ(InChild([] {
              const pid_t me = getpid();
              if (setpgid(0, 0) != 0) return 1;
              Pipe release = MakePipe();
              pid_t member = Blocked(release);  // stays in group `me`
              pid_t other = Blocked(release);
              if (member < 0 || other < 0) return 2;
              if (setpgid(other, other) != 0) return 3;
              if (setpgid(0, other) != 0 || getpgrp() != other) return 4;
              errno = 0;
              int r = setsid() == -1 && errno == EPERM ? 0 : 5;
              if (getpgid(member) != me) r = 6;
              release.w.Reset();
              husk_test::Wait(member);
              husk_test::Wait(other);
              return r;
            }),
            0);
}

TEST(SessionTest, SetpgidOfAChild) {
  EXPECT_EQ(InChild([] {
              // A group of our own (natively the fence's may lie outside
              // its pid namespace, where getpgrp() says 0).
              if (setpgid(0, 0) != 0) return 9;
              Pipe release = MakePipe();
              pid_t child = Blocked(release);
              if (child < 0) return 1;
              int r = 0;
              if (setpgid(child, child) != 0 || getpgid(child) != child) r = 2;
              // Back into the caller's group (it exists in the session).
              if (r == 0 && (setpgid(child, getpgrp()) != 0 || getpgid(child) != getpgrp())) r = 3;
              // A group that does not exist.
              errno = 0;
              if (r == 0 && (setpgid(child, 999999) != -1 || errno != EPERM)) r = 4;
              errno = 0;
              if (r == 0 && (setpgid(child, -1) != -1 || errno != EINVAL)) r = 5;
              release.w.Reset();
              husk_test::Wait(child);
              return r;
            }),
            0);
}

TEST(SessionTest, SetpgidAfterTheChildExecedIsEacces) {
  EXPECT_EQ(InChild([] {
              Pipe stdin_pipe = MakePipe();
              Pipe execed = MakePipe(O_CLOEXEC);
              pid_t child = fork();
              if (child < 0) return 1;
              if (child == 0) {
                dup2(stdin_pipe.r.get(), 0);
                stdin_pipe.w.Reset();
                execl("/bin/cat", "cat", nullptr);
                _exit(127);
              }
              execed.w.Reset();
              char c;
              // EOF once the exec closed the close-on-exec end.
              if (read(execed.r.get(), &c, 1) != 0) return 2;
              errno = 0;
              int r = setpgid(child, child) == -1 && errno == EACCES ? 0 : 3;
              stdin_pipe.w.Reset();
              if (husk_test::Wait(child) != 0) r = 4;
              return r;
            }),
            0);
}

TEST(SessionTest, SetpgidAcrossSessionsIsEperm) {
  EXPECT_EQ(InChild([] {
              Pipe ready = MakePipe(), release = MakePipe();
              pid_t child = fork();
              if (child < 0) return 1;
              if (child == 0) {
                release.w.Reset();
                pid_t sid = setsid();
                (void)!write(ready.w.get(), &sid, sizeof(sid));
                char c;
                (void)!read(release.r.get(), &c, 1);
                _exit(0);
              }
              pid_t sid = -1;
              if (read(ready.r.get(), &sid, sizeof(sid)) != sizeof(sid) || sid != child) return 2;
              int r = 0;
              errno = 0;
              if (setpgid(child, getpgrp()) != -1 || errno != EPERM) r = 3;  // its session
              errno = 0;
              if (r == 0 && (setpgid(0, child) != -1 || errno != EPERM)) r = 4;  // its group
              if (r == 0 && getsid(child) != child) r = 5;
              release.w.Reset();
              husk_test::Wait(child);
              return r;
            }),
            0);
}

TEST(SessionTest, SetpgidOfNeitherSelfNorChildIsEsrch) {
  EXPECT_EQ(InChild([] {
              errno = 0;
              if (setpgid(getppid(), 0) != -1 || errno != ESRCH) return 1;
              errno = 0;
              if (setpgid(999999, 0) != -1 || errno != ESRCH) return 2;
              errno = 0;
              if (getsid(999999) != -1 || errno != ESRCH) return 3;
              errno = 0;
              if (getpgid(999999) != -1 || errno != ESRCH) return 4;
              return 0;
            }),
            0);
}

TEST(SessionTest, SetpgidOfAThreadIsEinval) {
  EXPECT_EQ(InChild([] {
              // A live thread's id names no process.
              pthread_t th;
              Pipe hold = MakePipe();
              struct Live {
                Pipe* hold;
                pid_t tid;
              } live{&hold, 0};
              auto wait_body = [](void* arg) -> void* {
                auto* l = static_cast<Live*>(arg);
                __atomic_store_n(&l->tid, static_cast<pid_t>(syscall(SYS_gettid)),
                                 __ATOMIC_SEQ_CST);
                char c;
                (void)!read(l->hold->r.get(), &c, 1);
                return nullptr;
              };
              if (pthread_create(&th, nullptr, wait_body, &live) != 0) return 2;
              while (__atomic_load_n(&live.tid, __ATOMIC_SEQ_CST) == 0) sched_yield();
              errno = 0;
              int r = setpgid(live.tid, 0) == -1 && errno == EINVAL ? 0 : 3;
              hold.w.Reset();
              pthread_join(th, nullptr);
              return r;
            }),
            0);
}

}  // namespace
