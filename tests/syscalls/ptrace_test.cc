// ptrace(2) between processes of the sandbox: the stops a tracer sees
// (signal-delivery, syscall entry and exit, fork/exec/exit events,
// PTRACE_INTERRUPT), what it may read and change, and how tracing ends.
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace {

volatile uint64_t g_word = 0x1122334455667788;

// Waits for pid (any kind of child or tracee) and returns its status.
int WaitStatus(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }
  return status;
}

bool StoppedBy(int status, int sig) { return WIFSTOPPED(status) && WSTOPSIG(status) == sig; }

// The state letter of /proc/<pid>/stat ('S' sleeping, 'R' running, ...).
char ProcState(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE* f = fopen(path, "r");
  if (f == nullptr) return '?';
  int ignored;
  char comm[64], state = '?';
  if (fscanf(f, "%d %63s %c", &ignored, comm, &state) != 3) state = '?';
  fclose(f);
  return state;
}

// A child that asks to be traced and stops itself with SIGSTOP; `then`
// runs once the tracer resumes it, and its result is the exit code.
template <typename F>
pid_t TracedChild(F then) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(100);
    raise(SIGSTOP);
    _exit(then());
  }
  return pid;
}

TEST(PtraceTest, TracemeStopsAtSignalsAndTheTracerMaySuppressThem) {
  pid_t pid = TracedChild([] {
    raise(SIGUSR1);  // no handler: deadly unless the tracer suppresses it
    return 7;
  });
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(StoppedBy(WaitStatus(pid), SIGSTOP));
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, nullptr), 0) << strerror(errno);
  ASSERT_TRUE(StoppedBy(WaitStatus(pid), SIGUSR1));
  siginfo_t si{};
  ASSERT_EQ(ptrace(PTRACE_GETSIGINFO, pid, nullptr, &si), 0);
  EXPECT_EQ(si.si_signo, SIGUSR1);
  EXPECT_EQ(si.si_pid, pid);
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, nullptr), 0);  // signal 0: suppressed
  int status = WaitStatus(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7) << status;
}

TEST(PtraceTest, ResumingWithASignalDeliversIt) {
  pid_t pid = TracedChild([] {
    raise(SIGUSR1);
    return 0;
  });
  ASSERT_TRUE(StoppedBy(WaitStatus(pid), SIGSTOP));
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, nullptr), 0);
  ASSERT_TRUE(StoppedBy(WaitStatus(pid), SIGUSR1));
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(SIGTERM)), 0);
  int status = WaitStatus(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
}

TEST(PtraceTest, SyscallStopsShowTheCallAndItsResult) {
  pid_t pid = TracedChild([] { return syscall(SYS_getppid) == getppid() ? 0 : 1; });
  ASSERT_TRUE(StoppedBy(WaitStatus(pid), SIGSTOP));
  ASSERT_EQ(ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACESYSGOOD), 0);
  bool entered = false, exited = false;
  for (int i = 0; i < 200 && !exited; i++) {
    ASSERT_EQ(ptrace(PTRACE_SYSCALL, pid, nullptr, nullptr), 0) << strerror(errno);
    int status = WaitStatus(pid);
    ASSERT_TRUE(StoppedBy(status, SIGTRAP | 0x80)) << status;
    user_regs_struct regs{};
    ASSERT_EQ(ptrace(PTRACE_GETREGS, pid, nullptr, &regs), 0);
    if (regs.orig_rax != SYS_getppid) continue;
    if (!entered) {
      entered = true;
      EXPECT_EQ(static_cast<int64_t>(regs.rax), -ENOSYS);  // at entry, as Linux shows it
    } else {
      exited = true;
      EXPECT_EQ(static_cast<pid_t>(regs.rax), getpid());
    }
  }
  EXPECT_TRUE(exited);
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, nullptr), 0);
  int status = WaitStatus(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(PtraceTest, TheTracerChangesASyscallsResultAndMemory) {
  pid_t pid = TracedChild([] {
    long r = syscall(SYS_getppid);
    return r == 4242 && g_word == 0xabcdef ? 0 : 1;
  });
  ASSERT_TRUE(StoppedBy(WaitStatus(pid), SIGSTOP));
  // Memory: the child's copy of g_word, read and rewritten.
  errno = 0;
  long word = ptrace(PTRACE_PEEKDATA, pid, &g_word, nullptr);
  ASSERT_EQ(errno, 0);
  EXPECT_EQ(static_cast<uint64_t>(word), 0x1122334455667788u);
  ASSERT_EQ(ptrace(PTRACE_POKEDATA, pid, &g_word, reinterpret_cast<void*>(0xabcdef)), 0);
  EXPECT_EQ(g_word, 0x1122334455667788u);  // the tracer's own copy is untouched
  ASSERT_EQ(ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACESYSGOOD), 0);
  // The getppid's exit stop gets a new result.
  bool in_getppid = false;
  for (int i = 0; i < 200; i++) {
    ASSERT_EQ(ptrace(PTRACE_SYSCALL, pid, nullptr, nullptr), 0);
    ASSERT_TRUE(StoppedBy(WaitStatus(pid), SIGTRAP | 0x80));
    user_regs_struct regs{};
    ASSERT_EQ(ptrace(PTRACE_GETREGS, pid, nullptr, &regs), 0);
    if (regs.orig_rax != SYS_getppid) continue;
    if (!in_getppid) {
      in_getppid = true;
      continue;
    }
    regs.rax = 4242;
    ASSERT_EQ(ptrace(PTRACE_SETREGS, pid, nullptr, &regs), 0);
    break;
  }
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, nullptr), 0);
  int status = WaitStatus(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(PtraceTest, ForkExecAndExitEvents) {
  pid_t pid = TracedChild([] {
    pid_t c = fork();
    if (c == 0) {
      execl("/bin/true", "true", nullptr);
      _exit(127);
    }
    int st = 0;
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) + 3 : 1;
  });
  ASSERT_TRUE(StoppedBy(WaitStatus(pid), SIGSTOP));
  ASSERT_EQ(ptrace(PTRACE_SETOPTIONS, pid, nullptr,
                   PTRACE_O_TRACEFORK | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT),
            0);
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, nullptr), 0);
  // The fork event, with the new child's pid; the child starts stopped.
  int status = WaitStatus(pid);
  ASSERT_EQ(status >> 8, SIGTRAP | (PTRACE_EVENT_FORK << 8)) << std::hex << status;
  unsigned long child = 0;
  ASSERT_EQ(ptrace(PTRACE_GETEVENTMSG, pid, nullptr, &child), 0);
  ASSERT_GT(child, 0u);
  auto cpid = static_cast<pid_t>(child);
  ASSERT_TRUE(StoppedBy(WaitStatus(cpid), SIGSTOP));
  ASSERT_EQ(ptrace(PTRACE_CONT, cpid, nullptr, nullptr), 0);
  // The grandchild's exec and exit events; then the parent's exit event.
  status = WaitStatus(cpid);
  EXPECT_EQ(status >> 8, SIGTRAP | (PTRACE_EVENT_EXEC << 8)) << std::hex << status;
  ASSERT_EQ(ptrace(PTRACE_CONT, cpid, nullptr, nullptr), 0);
  status = WaitStatus(cpid);
  EXPECT_EQ(status >> 8, SIGTRAP | (PTRACE_EVENT_EXIT << 8)) << std::hex << status;
  ASSERT_EQ(ptrace(PTRACE_CONT, cpid, nullptr, nullptr), 0);
  status = WaitStatus(cpid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // The grandchild's SIGCHLD stops the child first: pass it on.
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, nullptr), 0);
  status = WaitStatus(pid);
  while (StoppedBy(status, SIGCHLD)) {
    ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(SIGCHLD)), 0);
    status = WaitStatus(pid);
  }
  ASSERT_EQ(status >> 8, SIGTRAP | (PTRACE_EVENT_EXIT << 8)) << std::hex << status;
  unsigned long code = 0;
  ASSERT_EQ(ptrace(PTRACE_GETEVENTMSG, pid, nullptr, &code), 0);
  EXPECT_TRUE(WIFEXITED(code) && WEXITSTATUS(code) == 3) << code;
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, nullptr), 0);
  status = WaitStatus(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << status;
}

TEST(PtraceTest, SeizeInterruptAndDetach) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    char c;
    // Blocks until the tracer has seized and interrupted it.
    _exit(read(p[0], &c, 1) == 1 ? 0 : 1);
  }
  close(p[0]);
  // Let it block in its read first: the interrupt must reach a task that
  // sleeps in a system call too.
  for (int i = 0; i < 5000 && ProcState(pid) != 'S'; i++) usleep(1000);
  ASSERT_EQ(ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), 0) << strerror(errno);
  EXPECT_ERRNO(ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), EPERM);  // traced already
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr), 0);
  int status = WaitStatus(pid);
  EXPECT_EQ(status >> 16, PTRACE_EVENT_STOP) << std::hex << status;
  // Only the tracer's requests on a stopped tracee work.
  EXPECT_ERRNO(ptrace(PTRACE_CONT, getpid(), nullptr, nullptr), ESRCH);
  ASSERT_EQ(ptrace(PTRACE_DETACH, pid, nullptr, nullptr), 0);
  EXPECT_ERRNO(ptrace(PTRACE_CONT, pid, nullptr, nullptr), ESRCH);
  ASSERT_EQ(write(p[1], "x", 1), 1);
  close(p[1]);
  status = WaitStatus(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(PtraceTest, AttachStopsTheTraceeWithSigstop) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    for (;;) pause();
  }
  ASSERT_EQ(ptrace(PTRACE_ATTACH, pid, nullptr, nullptr), 0) << strerror(errno);
  ASSERT_TRUE(StoppedBy(WaitStatus(pid), SIGSTOP));
  user_regs_struct regs{};
  EXPECT_EQ(ptrace(PTRACE_GETREGS, pid, nullptr, &regs), 0);
  EXPECT_NE(regs.rip, 0u);
  ASSERT_EQ(ptrace(PTRACE_KILL, pid, nullptr, nullptr), 0);
  int status = WaitStatus(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  // Nobody may trace itself.
  EXPECT_ERRNO(ptrace(PTRACE_ATTACH, getpid(), nullptr, nullptr), EPERM);
}

TEST(PtraceTest, ExitkillTakesTheTraceeWithTheTracer) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t tracer = fork();
  if (tracer == 0) {
    alarm(30);
    pid_t tracee = fork();
    if (tracee == 0) {
      for (;;) pause();
    }
    if (ptrace(PTRACE_SEIZE, tracee, nullptr, PTRACE_O_EXITKILL) != 0) _exit(1);
    if (write(p[1], &tracee, sizeof(tracee)) != sizeof(tracee)) _exit(2);
    _exit(0);  // the tracee dies with us
  }
  close(p[1]);
  pid_t tracee = 0;
  ASSERT_EQ(read(p[0], &tracee, sizeof(tracee)), static_cast<ssize_t>(sizeof(tracee)));
  close(p[0]);
  int status = WaitStatus(tracer);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // The tracee was the tracer's child, now an orphan: gone once SIGKILL
  // lands, or a zombie killed by SIGKILL when this test is the init that
  // orphans go to.
  bool gone = false;
  for (int i = 0; i < 2000 && !gone; i++) {
    int st = 0;
    if (waitpid(tracee, &st, WNOHANG) == tracee) {
      EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << st;
      gone = true;
    } else {
      gone = kill(tracee, 0) != 0;
    }
    if (!gone) usleep(1000);
  }
  EXPECT_TRUE(gone) << "the tracee outlived a PTRACE_O_EXITKILL tracer";
}

}  // namespace
