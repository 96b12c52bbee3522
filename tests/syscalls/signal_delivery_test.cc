// Signal delivery (signal(7), sigaction(2), sigreturn(2)): handlers run with
// the right arguments, masks and stacks, return to the interrupted code with
// every register intact, interrupt blocking calls (EINTR or SA_RESTART), and
// signals travel between processes (kill, SIGCHLD, default actions).
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::Fd;

volatile sig_atomic_t g_count = 0;
volatile sig_atomic_t g_sig = 0;
siginfo_t g_info;
sigset_t g_mask_in_handler;
volatile uintptr_t g_handler_sp = 0;

void CountingHandler(int sig) {
  g_count = g_count + 1;
  g_sig = sig;
  sigprocmask(SIG_BLOCK, nullptr, &g_mask_in_handler);
}

void InfoHandler(int sig, siginfo_t* info, void* uc) {
  g_sig = sig;
  g_info = *info;
  g_count = g_count + 1;
  (void)uc;
}

void StackHandler(int sig) {
  int local;
  g_handler_sp = reinterpret_cast<uintptr_t>(&local);
  g_count = g_count + 1;
}

// Installs handler for sig for the scope of a test; restores the old action.
class ScopedAction {
 public:
  ScopedAction(int sig, void (*handler)(int), int flags = 0, const sigset_t* mask = nullptr)
      : sig_(sig) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    if (mask) sa.sa_mask = *mask;
    EXPECT_EQ(sigaction(sig, &sa, &old_), 0);
  }
  ScopedAction(int sig, void (*handler)(int, siginfo_t*, void*), int flags = 0) : sig_(sig) {
    struct sigaction sa {};
    sa.sa_sigaction = handler;
    sa.sa_flags = flags | SA_SIGINFO;
    EXPECT_EQ(sigaction(sig, &sa, &old_), 0);
  }
  ~ScopedAction() { sigaction(sig_, &old_, nullptr); }

 private:
  int sig_;
  struct sigaction old_ {};
};

class SignalDeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_count = 0;
    g_sig = 0;
    memset(&g_info, 0, sizeof(g_info));
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, &old_mask_);
  }
  void TearDown() override { sigprocmask(SIG_SETMASK, &old_mask_, nullptr); }
  sigset_t old_mask_;
};

TEST_F(SignalDeliveryTest, RaiseRunsTheHandlerBeforeReturning) {
  ScopedAction a(SIGUSR1, CountingHandler);
  ASSERT_EQ(raise(SIGUSR1), 0);
  EXPECT_EQ(g_count, 1);
  EXPECT_EQ(g_sig, SIGUSR1);
  // The signal itself is blocked while its handler runs, then unblocked.
  EXPECT_TRUE(sigismember(&g_mask_in_handler, SIGUSR1));
  sigset_t now;
  sigprocmask(SIG_BLOCK, nullptr, &now);
  EXPECT_FALSE(sigismember(&now, SIGUSR1));
}

TEST_F(SignalDeliveryTest, SiginfoNamesTheSender) {
  ScopedAction a(SIGUSR2, InfoHandler);
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  EXPECT_EQ(g_count, 1);
  EXPECT_EQ(g_info.si_signo, SIGUSR2);
  EXPECT_EQ(g_info.si_code, SI_USER);
  EXPECT_EQ(g_info.si_pid, getpid());
  EXPECT_EQ(g_info.si_uid, getuid());
  ASSERT_EQ(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2), 0);
  EXPECT_EQ(g_count, 2);
  EXPECT_EQ(g_info.si_code, SI_TKILL);
}

TEST_F(SignalDeliveryTest, SaMaskAndSaNodeferShapeTheHandlerMask) {
  sigset_t extra;
  sigemptyset(&extra);
  sigaddset(&extra, SIGTERM);
  {
    ScopedAction a(SIGUSR1, CountingHandler, 0, &extra);
    raise(SIGUSR1);
    EXPECT_TRUE(sigismember(&g_mask_in_handler, SIGTERM));
    EXPECT_TRUE(sigismember(&g_mask_in_handler, SIGUSR1));
  }
  {
    ScopedAction a(SIGUSR1, CountingHandler, SA_NODEFER);
    raise(SIGUSR1);
    EXPECT_FALSE(sigismember(&g_mask_in_handler, SIGUSR1));
  }
}

TEST_F(SignalDeliveryTest, SaResethandRestoresTheDefault) {
  ScopedAction a(SIGUSR1, CountingHandler, SA_RESETHAND);
  raise(SIGUSR1);
  EXPECT_EQ(g_count, 1);
  struct sigaction now {};
  ASSERT_EQ(sigaction(SIGUSR1, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST_F(SignalDeliveryTest, ABlockedSignalWaitsUntilUnblocked) {
  ScopedAction a(SIGUSR1, CountingHandler);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &set, nullptr), 0);
  raise(SIGUSR1);
  raise(SIGUSR1);  // standard signals do not queue: one delivery
  EXPECT_EQ(g_count, 0);
  sigset_t pending;
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_TRUE(sigismember(&pending, SIGUSR1));
  ASSERT_EQ(sigprocmask(SIG_UNBLOCK, &set, nullptr), 0);
  EXPECT_EQ(g_count, 1);
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_FALSE(sigismember(&pending, SIGUSR1));
}

TEST_F(SignalDeliveryTest, RealTimeSignalsQueue) {
  ScopedAction a(SIGRTMIN + 1, CountingHandler);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN + 1);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &set, nullptr), 0);
  for (int i = 0; i < 3; i++) raise(SIGRTMIN + 1);
  ASSERT_EQ(sigprocmask(SIG_UNBLOCK, &set, nullptr), 0);
  EXPECT_EQ(g_count, 3);
}

TEST_F(SignalDeliveryTest, IgnoredSignalsAreDropped) {
  ScopedAction a(SIGUSR1, SIG_IGN);
  ASSERT_EQ(raise(SIGUSR1), 0);
  sigset_t pending;
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_FALSE(sigismember(&pending, SIGUSR1));
}

// Sends SIGUSR1 to ourselves in the middle of code that keeps values in
// many registers: the handler must not disturb any of them.
TEST_F(SignalDeliveryTest, RegistersSurviveAHandler) {
  ScopedAction a(SIGUSR1, CountingHandler);
  uint64_t out[6];
  pid_t pid = getpid();
  register uint64_t r12 asm("r12") = 0x1212121212121212;
  register uint64_t r13 asm("r13") = 0x1313131313131313;
  register uint64_t r14 asm("r14") = 0x1414141414141414;
  register uint64_t r15 asm("r15") = 0x1515151515151515;
  uint64_t rbx_in = 0xb0b0b0b0b0b0b0b0, rbx_out, rdx_out;
  asm volatile(
      "mov %[rbx_in], %%rbx\n"
      "mov $0xd0d0d0d0, %%rdx\n"
      "mov %[pid], %%edi\n"
      "mov %[sig], %%esi\n"
      "mov %[nr], %%eax\n"
      "syscall\n"  // kill(pid, SIGUSR1): the handler runs on the way out
      "mov %%rbx, %[rbx_out]\n"
      "mov %%rdx, %[rdx_out]\n"
      : [rbx_out] "=m"(rbx_out), [rdx_out] "=m"(rdx_out), "+r"(r12), "+r"(r13), "+r"(r14), "+r"(r15)
      : [rbx_in] "m"(rbx_in), [pid] "m"(pid), [sig] "i"(SIGUSR1), [nr] "i"(SYS_kill)
      : "rax", "rbx", "rcx", "rdx", "rdi", "rsi", "r11", "memory");
  out[0] = r12, out[1] = r13, out[2] = r14, out[3] = r15, out[4] = rbx_out, out[5] = rdx_out;
  EXPECT_EQ(g_count, 1);
  EXPECT_EQ(out[0], 0x1212121212121212u);
  EXPECT_EQ(out[1], 0x1313131313131313u);
  EXPECT_EQ(out[2], 0x1414141414141414u);
  EXPECT_EQ(out[3], 0x1515151515151515u);
  EXPECT_EQ(out[4], 0xb0b0b0b0b0b0b0b0u);
  EXPECT_EQ(out[5], 0xd0d0d0d0u);
}

void FpClobberHandler(int) {
  // Uses vector registers heavily; the interrupted code must not notice.
  volatile double x = 1.0;
  for (int i = 0; i < 100; i++) x = x * 1.5 + 0.25;
  asm volatile("pxor %%xmm8, %%xmm8" ::: "xmm8");
  g_count = g_count + 1;
}

TEST_F(SignalDeliveryTest, VectorRegistersSurviveAHandler) {
  ScopedAction a(SIGUSR1, FpClobberHandler);
  alignas(16) uint64_t in[2] = {0x0123456789abcdef, 0xfedcba9876543210};
  alignas(16) uint64_t out[2] = {0, 0};
  pid_t pid = getpid();
  asm volatile(
      "movdqa %[in], %%xmm8\n"
      "mov %[pid], %%edi\n"
      "mov %[sig], %%esi\n"
      "mov %[nr], %%eax\n"
      "syscall\n"  // the handler (which uses the vector unit) runs on the way out
      "movdqa %%xmm8, %[out]\n"
      : [out] "=m"(out)
      : [in] "m"(in), [pid] "m"(pid), [sig] "i"(SIGUSR1), [nr] "i"(SYS_kill)
      : "rax", "rcx", "rdi", "rsi", "r11", "xmm8", "memory");
  EXPECT_EQ(g_count, 1);
  EXPECT_EQ(out[0], in[0]);
  EXPECT_EQ(out[1], in[1]);
}

TEST_F(SignalDeliveryTest, SaOnstackRunsOnTheAlternateStack) {
  std::vector<char> stack(64 * 1024);
  stack_t ss{};
  ss.ss_sp = stack.data();
  ss.ss_size = stack.size();
  ASSERT_EQ(sigaltstack(&ss, nullptr), 0);
  {
    ScopedAction a(SIGUSR1, StackHandler, SA_ONSTACK);
    raise(SIGUSR1);
  }
  EXPECT_EQ(g_count, 1);
  auto lo = reinterpret_cast<uintptr_t>(stack.data());
  EXPECT_GE(g_handler_sp, lo);
  EXPECT_LT(g_handler_sp, lo + stack.size());
  // Without SA_ONSTACK the normal stack is used.
  {
    ScopedAction a(SIGUSR1, StackHandler);
    raise(SIGUSR1);
  }
  EXPECT_TRUE(g_handler_sp < lo || g_handler_sp >= lo + stack.size());
  stack_t off{};
  off.ss_flags = SS_DISABLE;
  ASSERT_EQ(sigaltstack(&off, nullptr), 0);
}

sigjmp_buf g_jump;
void SegvHandler(int sig, siginfo_t* info, void*) {
  g_info = *info;
  siglongjmp(g_jump, 1);
}

TEST_F(SignalDeliveryTest, AFaultReachesASigsegvHandlerWithTheAddress) {
  ScopedAction a(SIGSEGV, SegvHandler);
  volatile int* bad = reinterpret_cast<volatile int*>(0x10);
  if (sigsetjmp(g_jump, 1) == 0) {
    *bad = 1;
    FAIL() << "the store did not fault";
  }
  EXPECT_EQ(g_info.si_signo, SIGSEGV);
  EXPECT_EQ(g_info.si_code, SEGV_MAPERR);
  EXPECT_EQ(g_info.si_addr, reinterpret_cast<void*>(0x10));
}

void AlarmHandler(int) { g_count = g_count + 1; }

// Forks a child that sends `sig` to the parent after a short delay.
pid_t SignalParentLater(int sig) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    timespec ts{0, 100 * 1000 * 1000};
    nanosleep(&ts, nullptr);
    kill(parent, sig);
    _exit(0);
  }
  return pid;
}

TEST_F(SignalDeliveryTest, ASignalInterruptsABlockingReadWithEintr) {
  ScopedAction a(SIGUSR1, AlarmHandler);  // no SA_RESTART
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  Fd r(fds[0]), w(fds[1]);
  pid_t child = SignalParentLater(SIGUSR1);
  ASSERT_GT(child, 0);
  char c;
  EXPECT_ERRNO(read(r.get(), &c, 1), EINTR);
  EXPECT_EQ(g_count, 1);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
}

TEST_F(SignalDeliveryTest, SaRestartRestartsTheRead) {
  ScopedAction a(SIGUSR1, AlarmHandler, SA_RESTART);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  Fd r(fds[0]), w(fds[1]);
  pid_t parent = getpid();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    timespec ts{0, 100 * 1000 * 1000};
    nanosleep(&ts, nullptr);
    kill(parent, SIGUSR1);
    nanosleep(&ts, nullptr);
    _exit(write(fds[1], "k", 1) == 1 ? 0 : 1);
  }
  char c = 0;
  EXPECT_EQ(read(r.get(), &c, 1), 1);  // restarted after the handler
  EXPECT_EQ(c, 'k');
  EXPECT_EQ(g_count, 1);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
}

TEST_F(SignalDeliveryTest, NanosleepInterruptedReportsTheTimeLeft) {
  ScopedAction a(SIGUSR1, AlarmHandler);
  pid_t child = SignalParentLater(SIGUSR1);
  ASSERT_GT(child, 0);
  timespec req{5, 0}, rem{};
  EXPECT_ERRNO(nanosleep(&req, &rem), EINTR);
  EXPECT_EQ(g_count, 1);
  EXPECT_GT(rem.tv_sec + rem.tv_nsec / 1e9, 3.0);
  EXPECT_LE(rem.tv_sec, 5);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
}

TEST_F(SignalDeliveryTest, SigsuspendWaitsWithATemporaryMask) {
  ScopedAction a(SIGUSR1, AlarmHandler);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &block, nullptr), 0);
  pid_t child = SignalParentLater(SIGUSR1);
  ASSERT_GT(child, 0);
  sigset_t empty;
  sigemptyset(&empty);
  EXPECT_ERRNO(sigsuspend(&empty), EINTR);
  EXPECT_EQ(g_count, 1);
  // The old mask (SIGUSR1 blocked) is back.
  sigset_t now;
  sigprocmask(SIG_BLOCK, nullptr, &now);
  EXPECT_TRUE(sigismember(&now, SIGUSR1));
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
}

TEST_F(SignalDeliveryTest, SigtimedwaitTakesABlockedSignal) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &set, nullptr), 0);
  raise(SIGUSR2);
  siginfo_t info{};
  timespec zero{0, 0};
  EXPECT_EQ(sigtimedwait(&set, &info, &zero), SIGUSR2);
  EXPECT_EQ(info.si_pid, getpid());
  EXPECT_ERRNO(sigtimedwait(&set, &info, &zero), EAGAIN);
  timespec bad{0, -1};
  EXPECT_ERRNO(sigtimedwait(&set, &info, &bad), EINVAL);
}

TEST_F(SignalDeliveryTest, KillTerminatesAnotherProcess) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    (void)!write(fds[1], "r", 1);
    for (;;) pause();
  }
  close(fds[1]);
  char c;
  ASSERT_EQ(read(fds[0], &c, 1), 1);  // the child runs
  close(fds[0]);
  ASSERT_EQ(kill(child, SIGTERM), 0);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_ERRNO(kill(child, 0), ESRCH);  // reaped
}

TEST_F(SignalDeliveryTest, KillZeroOnlyChecks) {
  EXPECT_EQ(kill(getpid(), 0), 0);
  EXPECT_ERRNO(kill(getpid(), 65), EINVAL);
  EXPECT_ERRNO(kill(-2000000, SIGUSR1), ESRCH);
}

TEST_F(SignalDeliveryTest, SigchldReportsTheChildsExit) {
  ScopedAction a(SIGCHLD, InfoHandler);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(7);
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7);
  EXPECT_GE(g_count, 1);
  EXPECT_EQ(g_info.si_signo, SIGCHLD);
  EXPECT_EQ(g_info.si_code, CLD_EXITED);
  EXPECT_EQ(g_info.si_pid, child);
  EXPECT_EQ(g_info.si_status, 7);
}

TEST_F(SignalDeliveryTest, IgnoringSigchldLeavesNoZombie) {
  ScopedAction a(SIGCHLD, SIG_IGN);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int status;
  // wait(2): with SIGCHLD ignored, the child is reaped automatically and
  // waitpid blocks until it is gone, then fails with ECHILD.
  EXPECT_ERRNO(waitpid(child, &status, 0), ECHILD);
}

TEST_F(SignalDeliveryTest, StopAndContinueAreReportedToWaitpid) {
  ScopedAction a(SIGCHLD, InfoHandler);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (;;) pause();
  }
  ASSERT_EQ(kill(child, SIGSTOP), 0);
  int status = 0;
  pid_t r;
  while ((r = waitpid(child, &status, WUNTRACED)) < 0 && errno == EINTR) {
  }
  ASSERT_EQ(r, child);
  ASSERT_TRUE(WIFSTOPPED(status)) << status;
  EXPECT_EQ(WSTOPSIG(status), SIGSTOP);
  // Reported once: a second WUNTRACED|WNOHANG wait finds nothing new.
  EXPECT_EQ(waitpid(child, &status, WUNTRACED | WNOHANG), 0);
  {
    std::string path = "/proc/" + std::to_string(child) + "/status";
    Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(f.valid());
    std::string text = husk_test::ReadAll(f.get());
    EXPECT_NE(text.find("State:\tT (stopped)"), std::string::npos) << text;
  }

  ASSERT_EQ(kill(child, SIGCONT), 0);
  while ((r = waitpid(child, &status, WCONTINUED)) < 0 && errno == EINTR) {
  }
  ASSERT_EQ(r, child);
  EXPECT_TRUE(WIFCONTINUED(status)) << status;

  ASSERT_EQ(kill(child, SIGTERM), 0);
  while ((r = waitpid(child, &status, 0)) < 0 && errno == EINTR) {
  }
  ASSERT_EQ(r, child);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST_F(SignalDeliveryTest, SigkillEndsAStoppedProcess) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    raise(SIGSTOP);
    _exit(0);  // only reached if the stop were ignored
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, WUNTRACED), child);
  ASSERT_TRUE(WIFSTOPPED(status)) << status;
  ASSERT_EQ(kill(child, SIGKILL), 0);
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

}  // namespace
