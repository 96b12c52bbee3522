// fork(2): what the child inherits and what it gets a copy of.
#include <fcntl.h>
#include <fenv.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::InChild;

TEST(ForkTest, ChildSeesZeroAndParentSeesThePid) {
  int fds[2];
  ASSERT_OK(pipe(fds));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    pid_t me = getpid();
    (void)!write(fds[1], &me, sizeof(me));
    _exit(getppid() > 0 ? 0 : 1);
  }
  pid_t reported = 0;
  ASSERT_EQ(read(fds[0], &reported, sizeof(reported)), static_cast<ssize_t>(sizeof(reported)));
  EXPECT_EQ(reported, pid);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(fds[0]);
  close(fds[1]);
}

TEST(ForkTest, MemoryIsCopiedNotShared) {
  static int value = 1;
  EXPECT_EQ(InChild([] {
              value = 2;
              return value == 2 ? 0 : 1;
            }),
            0);
  EXPECT_EQ(value, 1);
}

TEST(ForkTest, OpenFileDescriptionsAndTheirOffsetsAreShared) {
  husk_test::TempDir dir;
  std::string path = dir.Join("f");
  ASSERT_TRUE(husk_test::WriteFile(path, "abcdef"));
  husk_test::Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  int raw = fd.get();
  EXPECT_EQ(InChild([raw] {
              char c;
              return read(raw, &c, 1) == 1 && c == 'a' ? 0 : 1;
            }),
            0);
  char c;
  ASSERT_EQ(read(fd.get(), &c, 1), 1);
  EXPECT_EQ(c, 'b');  // the child's read moved the shared offset
}

TEST(ForkTest, TheChildInheritsTheFloatingPointEnvironment) {
  ASSERT_EQ(fesetround(FE_UPWARD), 0);
  int code = InChild([] { return fegetround() == FE_UPWARD ? 0 : 1; });
  fesetround(FE_TONEAREST);
  EXPECT_EQ(code, 0);
}

TEST(ForkTest, TheChildInheritsTheSignalMaskAndDispositions) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &set, &old));
  struct sigaction ign{}, old_act{};
  ign.sa_handler = SIG_IGN;
  ASSERT_OK(sigaction(SIGUSR2, &ign, &old_act));
  int code = InChild([] {
    sigset_t now;
    sigprocmask(SIG_BLOCK, nullptr, &now);
    struct sigaction a{};
    sigaction(SIGUSR2, nullptr, &a);
    sigset_t pending;
    sigpending(&pending);
    return sigismember(&now, SIGUSR1) && a.sa_handler == SIG_IGN && !sigismember(&pending, SIGUSR1)
               ? 0
               : 1;
  });
  sigprocmask(SIG_SETMASK, &old, nullptr);
  sigaction(SIGUSR2, &old_act, nullptr);
  EXPECT_EQ(code, 0);
}

TEST(ForkTest, PendingSignalsAreNotInherited) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &set, &old));
  raise(SIGUSR1);  // pending in the parent only
  int code = InChild([] {
    sigset_t pending;
    sigpending(&pending);
    return sigismember(&pending, SIGUSR1) ? 1 : 0;
  });
  siginfo_t info;
  timespec zero{0, 0};
  EXPECT_EQ(sigtimedwait(&set, &info, &zero), SIGUSR1);  // consume it
  sigprocmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(code, 0);
}

}  // namespace
