// Conformance: signal state without delivery: rt_sigaction, rt_sigprocmask, sigaltstack.
// Nothing here raises a signal; delivery tests come with signal support.
// Relies on, beyond the start-up set in test_util.h: rt_sigaction rt_sigprocmask sigaltstack.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

void Handler(int) {}
void InfoHandler(int, siginfo_t*, void*) {}

// The kernel's struct sigaction for rt_sigaction on x86-64 (glibc's differs in layout).
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

class SignalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(sigaction(SIGUSR1, nullptr, &saved_usr1_));
    ASSERT_OK(sigaction(SIGUSR2, nullptr, &saved_usr2_));
    ASSERT_OK(sigprocmask(SIG_SETMASK, nullptr, &saved_mask_));
  }
  void TearDown() override {
    sigaction(SIGUSR1, &saved_usr1_, nullptr);
    sigaction(SIGUSR2, &saved_usr2_, nullptr);
    sigprocmask(SIG_SETMASK, &saved_mask_, nullptr);
  }
  struct sigaction saved_usr1_ = {}, saved_usr2_ = {};
  sigset_t saved_mask_;
};

TEST_F(SignalTest, SigactionInstallsAndReadsBack) {
  struct sigaction act = {}, old = {}, now = {};
  act.sa_handler = Handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, SIGUSR2);
  ASSERT_OK(sigaction(SIGUSR1, &act, &old));
  EXPECT_EQ(old.sa_handler, saved_usr1_.sa_handler);
  ASSERT_OK(sigaction(SIGUSR1, nullptr, &now));
  EXPECT_EQ(now.sa_handler, Handler);
  EXPECT_TRUE(now.sa_flags & SA_RESTART);
  EXPECT_FALSE(now.sa_flags & SA_SIGINFO);
  EXPECT_TRUE(sigismember(&now.sa_mask, SIGUSR2));
  EXPECT_FALSE(sigismember(&now.sa_mask, SIGINT));
}

TEST_F(SignalTest, SigactionSiginfoFlagsRoundTrip) {
  struct sigaction act = {}, now = {};
  act.sa_sigaction = InfoHandler;
  act.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESETHAND;
  ASSERT_OK(sigaction(SIGUSR2, &act, nullptr));
  ASSERT_OK(sigaction(SIGUSR2, nullptr, &now));
  EXPECT_EQ(now.sa_sigaction, InfoHandler);
  const int want = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESETHAND;
  EXPECT_EQ(now.sa_flags & want, want);
}

TEST_F(SignalTest, SigIgnAndSigDflRoundTrip) {
  ASSERT_EQ(signal(SIGUSR1, SIG_IGN), saved_usr1_.sa_handler);
  EXPECT_EQ(signal(SIGUSR1, SIG_DFL), SIG_IGN);
  EXPECT_EQ(signal(SIGUSR1, SIG_DFL), SIG_DFL);
}

TEST_F(SignalTest, SigkillAndSigstopCannotBeCaught) {
  struct sigaction act = {}, old = {};
  act.sa_handler = Handler;
  EXPECT_ERRNO(sigaction(SIGKILL, &act, nullptr), EINVAL);
  EXPECT_ERRNO(sigaction(SIGSTOP, &act, nullptr), EINVAL);
  act.sa_handler = SIG_IGN;
  EXPECT_ERRNO(sigaction(SIGKILL, &act, nullptr), EINVAL);
  EXPECT_EQ(sigaction(SIGKILL, nullptr, &old), 0);  // Reading them is fine.
  EXPECT_EQ(old.sa_handler, SIG_DFL);
}

TEST_F(SignalTest, RtSigactionErrors) {
  KernelSigaction old = {};
  EXPECT_ERRNO(syscall(SYS_rt_sigaction, 0, nullptr, &old, 8), EINVAL);        // No signal 0.
  EXPECT_ERRNO(syscall(SYS_rt_sigaction, 65, nullptr, &old, 8), EINVAL);       // Past _NSIG.
  EXPECT_ERRNO(syscall(SYS_rt_sigaction, SIGUSR1, nullptr, &old, 4), EINVAL);  // sigsetsize.
  EXPECT_EQ(syscall(SYS_rt_sigaction, 64, nullptr, &old, 8), 0);               // SIGRTMAX exists.
}

TEST_F(SignalTest, SigactionMaskNeverContainsSigkillOrSigstop) {
  struct sigaction act = {}, now = {};
  act.sa_handler = Handler;
  sigfillset(&act.sa_mask);
  ASSERT_OK(sigaction(SIGUSR1, &act, nullptr));
  ASSERT_OK(sigaction(SIGUSR1, nullptr, &now));
  EXPECT_TRUE(sigismember(&now.sa_mask, SIGUSR2));
  EXPECT_FALSE(sigismember(&now.sa_mask, SIGKILL));
  EXPECT_FALSE(sigismember(&now.sa_mask, SIGSTOP));
}

TEST_F(SignalTest, SigprocmaskBlockQueryUnblock) {
  sigset_t set, old, now;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &set, &old));
  EXPECT_FALSE(sigismember(&old, SIGUSR2));
  ASSERT_OK(sigprocmask(SIG_SETMASK, nullptr, &now));
  EXPECT_TRUE(sigismember(&now, SIGUSR2));
  ASSERT_OK(sigprocmask(SIG_UNBLOCK, &set, nullptr));
  ASSERT_OK(sigprocmask(SIG_SETMASK, nullptr, &now));
  EXPECT_FALSE(sigismember(&now, SIGUSR2));
  sigaddset(&set, SIGUSR1);
  ASSERT_OK(sigprocmask(SIG_SETMASK, &set, nullptr));
  ASSERT_OK(sigprocmask(SIG_SETMASK, nullptr, &now));
  EXPECT_TRUE(sigismember(&now, SIGUSR1));
  EXPECT_TRUE(sigismember(&now, SIGUSR2));
}

TEST_F(SignalTest, SigkillAndSigstopCannotBeBlocked) {
  uint64_t all = ~uint64_t{0}, now = 0;
  // Raw syscall: glibc would quietly drop its own internal signals from the set.
  ASSERT_OK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, nullptr, 8));
  ASSERT_OK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &now, 8));
  EXPECT_EQ(now & (uint64_t{1} << (SIGKILL - 1)), 0u);
  EXPECT_EQ(now & (uint64_t{1} << (SIGSTOP - 1)), 0u);
  EXPECT_NE(now & (uint64_t{1} << (SIGUSR1 - 1)), 0u);
}

TEST_F(SignalTest, RtSigprocmaskErrors) {
  uint64_t set = 0;
  EXPECT_ERRNO(syscall(SYS_rt_sigprocmask, 99, &set, nullptr, 8), EINVAL);  // Bad how.
  EXPECT_ERRNO(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, nullptr, 4), EINVAL);
}

TEST(SigaltstackTest, SetQueryDisable) {
  stack_t saved;
  ASSERT_OK(sigaltstack(nullptr, &saved));
  std::vector<char> mem(64 * 1024);
  stack_t ss = {}, now = {};
  ss.ss_sp = mem.data();
  ss.ss_size = mem.size();
  ASSERT_OK(sigaltstack(&ss, nullptr));
  ASSERT_OK(sigaltstack(nullptr, &now));
  EXPECT_EQ(now.ss_sp, mem.data());
  EXPECT_EQ(now.ss_size, mem.size());
  EXPECT_EQ(now.ss_flags, 0);  // Not SS_ONSTACK: we are not running on it.
  ss.ss_flags = SS_DISABLE;
  ASSERT_OK(sigaltstack(&ss, nullptr));
  ASSERT_OK(sigaltstack(nullptr, &now));
  EXPECT_EQ(now.ss_flags, SS_DISABLE);
  sigaltstack(&saved, nullptr);
}

TEST(SigaltstackTest, Errors) {
  std::vector<char> mem(64 * 1024);
  stack_t ss = {};
  ss.ss_sp = mem.data();
  ss.ss_size = 1024;  // Below MINSIGSTKSZ.
  EXPECT_ERRNO(sigaltstack(&ss, nullptr), ENOMEM);
  ss.ss_size = 2047;
  EXPECT_ERRNO(sigaltstack(&ss, nullptr), ENOMEM);
  // The kernel's minimum is 2048 bytes, however large the CPU's signal frame (glibc's
  // MINSIGSTKSZ may say more); Go's runtime gives its signal stacks 32 KiB.
  stack_t saved;
  ASSERT_OK(sigaltstack(nullptr, &saved));
  for (size_t size : {size_t{2048}, size_t{32 * 1024}}) {
    ss.ss_size = size;
    EXPECT_EQ(sigaltstack(&ss, nullptr), 0) << size << ": " << ErrnoName(errno);
  }
  sigaltstack(&saved, nullptr);
  ss.ss_size = mem.size();
  ss.ss_flags = 0x1234;
  EXPECT_ERRNO(sigaltstack(&ss, nullptr), EINVAL);
}

}  // namespace
}  // namespace husk_test
