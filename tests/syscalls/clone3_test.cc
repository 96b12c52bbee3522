// clone3(2): the struct clone_args interface. glibc's pthread_create and
// posix_spawn try it first, so thread_test exercises its thread form; this
// file checks the argument rules and the process form.
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace {

long Clone3(void* args, size_t size) { return syscall(SYS_clone3, args, size); }

// The version-0 layout (64 bytes) and the later fields.
struct Args {
  uint64_t flags = 0, pidfd = 0, child_tid = 0, parent_tid = 0, exit_signal = 0, stack = 0,
           stack_size = 0, tls = 0, set_tid = 0, set_tid_size = 0, cgroup = 0;
};

int WaitStatus(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }
  return status;
}

TEST(Clone3Test, ForksAProcessWithItsExitSignal) {
  Args a;
  a.exit_signal = SIGCHLD;
  long pid = Clone3(&a, 64);
  ASSERT_GE(pid, 0) << strerror(errno);
  if (pid == 0) _exit(getppid() > 0 ? 21 : 1);
  int status = WaitStatus(static_cast<pid_t>(pid));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 21);
}

TEST(Clone3Test, ParentSetTidGetsTheChildsPid) {
  Args a;
  a.exit_signal = SIGCHLD;
  pid_t ptid = 0;
  a.flags = CLONE_PARENT_SETTID;
  a.parent_tid = reinterpret_cast<uint64_t>(&ptid);
  long pid = Clone3(&a, sizeof(a));
  ASSERT_GE(pid, 0) << strerror(errno);
  if (pid == 0) _exit(0);
  EXPECT_EQ(ptid, pid);
  EXPECT_TRUE(WIFEXITED(WaitStatus(static_cast<pid_t>(pid))));
}

// A child without SIGCHLD as its exit signal is a "clone" child: waitpid
// sees it only with __WCLONE or __WALL.
TEST(Clone3Test, NoExitSignalMakesACloneChild) {
  Args a;
  long pid = Clone3(&a, 64);
  ASSERT_GE(pid, 0) << strerror(errno);
  if (pid == 0) _exit(4);
  int status = 0;
  EXPECT_ERRNO(waitpid(static_cast<pid_t>(pid), &status, WNOHANG), ECHILD);
  ASSERT_EQ(waitpid(static_cast<pid_t>(pid), &status, __WCLONE), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 4);
}

TEST(Clone3Test, SizeRules) {
  Args a;
  a.exit_signal = SIGCHLD;
  EXPECT_ERRNO(Clone3(&a, 63), EINVAL);
  EXPECT_ERRNO(Clone3(&a, 0), EINVAL);
  std::vector<uint8_t> big(8192, 0);
  memcpy(big.data(), &a, sizeof(a));
  EXPECT_ERRNO(Clone3(big.data(), 4097), E2BIG);
  // Bytes past the known structure must be zero.
  big[200] = 1;
  EXPECT_ERRNO(Clone3(big.data(), 256), E2BIG);
  EXPECT_ERRNO(Clone3(nullptr, 64), EFAULT);
}

TEST(Clone3Test, ArgumentRules) {
  Args a;
  a.exit_signal = 65;
  EXPECT_ERRNO(Clone3(&a, 64), EINVAL);
  a.exit_signal = SIGCHLD | 0x100;
  EXPECT_ERRNO(Clone3(&a, 64), EINVAL);
  a = Args{};
  a.flags = SIGCHLD;  // clone's way of passing the signal is refused
  EXPECT_ERRNO(Clone3(&a, 64), EINVAL);
  a = Args{};
  a.exit_signal = SIGCHLD;
  a.stack_size = 4096;  // a size without a stack
  EXPECT_ERRNO(Clone3(&a, 64), EINVAL);
  a.stack_size = 0;
  a.stack = 0x10000;  // a stack without a size
  EXPECT_ERRNO(Clone3(&a, 64), EINVAL);
  a = Args{};
  a.flags = CLONE_THREAD;  // a thread needs CLONE_SIGHAND
  EXPECT_ERRNO(Clone3(&a, 64), EINVAL);
  a.flags = CLONE_SIGHAND;  // and that needs CLONE_VM
  EXPECT_ERRNO(Clone3(&a, 64), EINVAL);
  a.flags = CLONE_CLEAR_SIGHAND | CLONE_SIGHAND | CLONE_VM;
  EXPECT_ERRNO(Clone3(&a, 64), EINVAL);
}

void Handler(int) {}

TEST(Clone3Test, ClearSighandResetsHandlersButKeepsIgnored) {
  struct sigaction sa {};
  sa.sa_handler = Handler;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
  sa.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGUSR2, &sa, nullptr), 0);
  Args a;
  a.flags = CLONE_CLEAR_SIGHAND;
  a.exit_signal = SIGCHLD;
  long pid = Clone3(&a, 64);
  ASSERT_GE(pid, 0) << strerror(errno);
  if (pid == 0) {
    struct sigaction now {};
    sigaction(SIGUSR1, nullptr, &now);
    if (now.sa_handler != SIG_DFL) _exit(1);
    sigaction(SIGUSR2, nullptr, &now);
    if (now.sa_handler != SIG_IGN) _exit(2);
    _exit(0);
  }
  int status = WaitStatus(static_cast<pid_t>(pid));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // The parent keeps its handler.
  struct sigaction mine {};
  sigaction(SIGUSR1, nullptr, &mine);
  EXPECT_EQ(mine.sa_handler, Handler);
  signal(SIGUSR1, SIG_DFL);
  signal(SIGUSR2, SIG_DFL);
}

}  // namespace
