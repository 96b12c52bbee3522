// Resource limits that the kernel enforces: RLIMIT_FSIZE (writes and
// truncation, SIGXFSZ), RLIMIT_AS and RLIMIT_DATA (mmap, mremap, brk),
// RLIMIT_STACK (execve's argument space), RLIMIT_NOFILE, RLIMIT_CPU
// (SIGXCPU, SIGKILL), and prlimit64 on another process. Every limit is set in a forked child.
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::InChild;
using husk_test::TempDir;

constexpr size_t kMiB = 1 << 20;

bool SetLimit(int resource, rlim_t cur, rlim_t max) {
  struct rlimit r {
    cur, max
  };
  return setrlimit(resource, &r) == 0;
}

// A new soft limit under the hard limit as it is.
bool SetSoft(int resource, rlim_t cur) {
  struct rlimit r {};
  if (getrlimit(resource, &r) != 0) return false;
  r.rlim_cur = cur;
  return setrlimit(resource, &r) == 0;
}

bool XfszPending() {
  sigset_t set;
  return sigpending(&set) == 0 && sigismember(&set, SIGXFSZ) == 1;
}

// Blocks SIGXFSZ so that it stays pending to be seen, and takes one
// already pending.
void BlockXfsz() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGXFSZ);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  timespec zero{0, 0};
  sigtimedwait(&set, nullptr, &zero);
}

TEST(RlimitTest, FsizeCutsWritesShortThenRefuses) {
  TempDir dir;
  const std::string path = dir.Join("f");
  EXPECT_EQ(InChild([&] {
              BlockXfsz();
              if (!SetSoft(RLIMIT_FSIZE, 100)) return 1;
              husk_test::Fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
              if (!fd.valid()) return 2;
              char buf[150] = {};
              if (write(fd.get(), buf, 150) != 100) return 3;  // cut at the limit
              if (XfszPending()) return 4;
              errno = 0;
              if (write(fd.get(), buf, 1) != -1 || errno != EFBIG) return 5;
              if (!XfszPending()) return 6;
              BlockXfsz();
              // Nothing to write is no write.
              if (write(fd.get(), buf, 0) != 0 || XfszPending()) return 7;
              if (pwrite(fd.get(), buf, 10, 50) != 10) return 8;
              if (pwrite(fd.get(), buf, 10, 95) != 5) return 9;
              errno = 0;
              if (pwrite(fd.get(), buf, 10, 100) != -1 || errno != EFBIG) return 10;
              iovec iov[2] = {{buf, 10}, {buf, 10}};
              if (lseek(fd.get(), 90, SEEK_SET) != 90) return 11;
              if (writev(fd.get(), iov, 2) != 10) return 12;
              return 0;
            }),
            0);
}

TEST(RlimitTest, FsizeAppendAndTruncate) {
  TempDir dir;
  const std::string path = dir.Join("f");
  EXPECT_EQ(InChild([&] {
              BlockXfsz();
              if (!SetSoft(RLIMIT_FSIZE, 100)) return 1;
              husk_test::Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644));
              if (!fd.valid()) return 2;
              char buf[64] = {};
              if (write(fd.get(), buf, 64) != 64) return 3;
              if (write(fd.get(), buf, 64) != 36) return 4;  // appends end at the limit too
              errno = 0;
              if (write(fd.get(), buf, 1) != -1 || errno != EFBIG) return 5;
              BlockXfsz();
              husk_test::Fd rw(open(path.c_str(), O_RDWR));
              // Growing past the limit: EFBIG and SIGXFSZ; up to it, or down, is fine.
              errno = 0;
              if (ftruncate(rw.get(), 101) != -1 || errno != EFBIG) return 6;
              if (!XfszPending()) return 7;
              BlockXfsz();
              if (ftruncate(rw.get(), 10) != 0 || ftruncate(rw.get(), 100) != 0) return 8;
              errno = 0;
              if (truncate(path.c_str(), 4096) != -1 || errno != EFBIG) return 9;
              if (truncate(path.c_str(), 5) != 0) return 10;
              // Pipes are not files with a size.
              husk_test::Pipe p = husk_test::MakePipe();
              if (write(p.w.get(), buf, 64) != 64 || write(p.w.get(), buf, 64) != 64) return 11;
              return 0;
            }),
            0);
}

TEST(RlimitTest, FsizeKillsByDefault) {
  TempDir dir;
  const std::string path = dir.Join("f");
  const int r = InChild([&] {
    if (!SetSoft(RLIMIT_CORE, 0)) return 1;
    if (!SetSoft(RLIMIT_FSIZE, 10)) return 2;
    husk_test::Fd fd(open(path.c_str(), O_WRONLY | O_CREAT, 0644));
    char buf[20] = {};
    (void)!write(fd.get(), buf, 20);
    (void)!write(fd.get(), buf, 20);
    return 3;
  });
  EXPECT_EQ(r, -SIGXFSZ);
}

TEST(RlimitTest, AddressSpace) {
  EXPECT_EQ(
      InChild([] {
        if (!SetSoft(RLIMIT_AS, 512 * kMiB)) return 1;
        void* p = mmap(nullptr, 256 * kMiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 2;
        errno = 0;
        if (mmap(nullptr, 300 * kMiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) !=
                MAP_FAILED ||
            errno != ENOMEM) {
          return 3;
        }
        // Replacing a mapping does not count it twice.
        if (mmap(p, 256 * kMiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p) {
          return 4;
        }
        errno = 0;
        if (mremap(p, 256 * kMiB, 600 * kMiB, MREMAP_MAYMOVE) != MAP_FAILED || errno != ENOMEM) {
          return 5;
        }
        if (munmap(p, 256 * kMiB) != 0) return 6;
        void* q = mmap(nullptr, 300 * kMiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q == MAP_FAILED) return 7;
        return 0;
      }),
      0);
}

TEST(RlimitTest, Data) {
  EXPECT_EQ(InChild([] {
              if (!SetSoft(RLIMIT_DATA, 256 * kMiB)) return 1;
              // Private writable memory counts...
              errno = 0;
              if (mmap(nullptr, 512 * kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                       0) != MAP_FAILED ||
                  errno != ENOMEM) {
                return 2;
              }
              // ...read-only or shared memory does not.
              if (mmap(nullptr, 512 * kMiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
                  MAP_FAILED) {
                return 3;
              }
              if (mmap(nullptr, 512 * kMiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
                       0) == MAP_FAILED) {
                return 4;
              }
              // The heap is data.
              void* before = sbrk(0);
              errno = 0;
              if (sbrk(512 * kMiB) != reinterpret_cast<void*>(-1) || errno != ENOMEM) return 5;
              if (sbrk(0) != before) return 6;
              if (sbrk(1 * kMiB) != before) return 7;
              return 0;
            }),
            0);
}

TEST(RlimitTest, ZeroDataLimitDefersToTheHardLimit) {
  EXPECT_EQ(InChild([] {
              // Valgrind's case: soft 0 with a higher hard limit.
              if (!SetSoft(RLIMIT_DATA, 0)) return 1;
              if (mmap(nullptr, 16 * kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                       0) == MAP_FAILED) {
                return 2;
              }
              return 0;
            }),
            0);
}

// execve of /bin/true with `strings` environment strings of 100 KiB each
// (one string may hold at most 128 KiB, MAX_ARG_STRLEN); returns errno.
int ExecWithEnv(int strings) {
  std::vector<std::string> vars;
  std::vector<char*> envp;
  vars.reserve(strings);
  envp.reserve(strings + 1);
  for (int i = 0; i < strings; i++) {
    vars.push_back("BIG" + std::to_string(i) + "=" + std::string(100 << 10, 'x'));
  }
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>("true"), nullptr};
  execve("/bin/true", argv, envp.data());
  return errno;
}

// argv and envp get a quarter of RLIMIT_STACK, and at least 128 KiB.
TEST(RlimitTest, StackLimitBoundsExecArguments) {
  EXPECT_EQ(InChild([] {
              if (!SetSoft(RLIMIT_STACK, 256 << 10)) return 1;
              return ExecWithEnv(1) == 0 ? 0 : 2;  // true exits 0
            }),
            0);
  EXPECT_EQ(InChild([] {
              if (!SetSoft(RLIMIT_STACK, 256 << 10)) return 1;
              return ExecWithEnv(2) == E2BIG ? 0 : 2;
            }),
            0);
  EXPECT_EQ(InChild([] {
              if (!SetSoft(RLIMIT_STACK, 1 << 20)) return 1;
              return ExecWithEnv(2) == 0 ? 0 : 2;
            }),
            0);
}

TEST(RlimitTest, Nofile) {
  EXPECT_EQ(InChild([] {
              if (!SetLimit(RLIMIT_NOFILE, 10, 10)) return 1;
              std::vector<int> fds;
              int fd;
              while ((fd = open("/dev/null", O_RDONLY)) >= 0) fds.push_back(fd);
              if (errno != EMFILE) return 2;
              for (int f : fds) {
                if (f >= 10) return 3;
              }
              errno = 0;
              if (dup2(0, 10) != -1 || errno != EBADF) return 4;
              errno = 0;
              if (fcntl(0, F_DUPFD, 10) != -1 || errno != EINVAL) return 5;
              // Without CAP_SYS_RESOURCE, not above the hard limit.
              if (geteuid() == 0 && setresuid(1000, 1000, 1000) != 0) return 6;
              errno = 0;
              if (SetLimit(RLIMIT_NOFILE, 10, 20) || errno != EPERM) return 7;
              if (!SetLimit(RLIMIT_NOFILE, 5, 9)) return 8;
              return 0;
            }),
            0);
  // Never past fs.nr_open, whoever asks.
  struct rlimit r {
    1 << 20, (1 << 20) + 1
  };
  EXPECT_ERRNO(setrlimit(RLIMIT_NOFILE, &r), EPERM);
}

TEST(RlimitTest, PrlimitOnAnotherProcess) {
  husk_test::Pipe go = husk_test::MakePipe(), answer = husk_test::MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    go.w.Reset();
    char c;
    (void)!read(go.r.get(), &c, 1);
    struct rlimit r {};
    getrlimit(RLIMIT_NOFILE, &r);
    // The new soft limit binds the descriptor table too.
    int fd = 0;
    while (fd >= 0 && fd < 100) fd = open("/dev/null", O_RDONLY);
    int result[3] = {static_cast<int>(r.rlim_cur), static_cast<int>(r.rlim_max), errno};
    (void)!write(answer.w.get(), result, sizeof(result));
    _exit(0);
  }
  go.r.Reset();
  struct rlimit old {
  }, nl{50, 60};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &nl, &old), 0) << husk_test::ErrnoName(errno);
  struct rlimit check {};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, nullptr, &check), 0);
  EXPECT_EQ(check.rlim_cur, 50u);
  EXPECT_EQ(check.rlim_max, 60u);
  EXPECT_ERRNO(prlimit(pid, RLIM_NLIMITS, nullptr, &check), EINVAL);
  ASSERT_EQ(write(go.w.get(), "g", 1), 1);
  int result[3] = {};
  ASSERT_EQ(read(answer.r.get(), result, sizeof(result)), static_cast<ssize_t>(sizeof(result)));
  EXPECT_EQ(result[0], 50);
  EXPECT_EQ(result[1], 60);
  EXPECT_EQ(result[2], EMFILE);
  EXPECT_EQ(husk_test::Wait(pid), 0);
  EXPECT_ERRNO(prlimit(pid, RLIMIT_NOFILE, nullptr, &check), ESRCH);
}

TEST(RlimitTest, PrlimitNeedsTheSameIdsOrCapSysResource) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (in its user namespace)";
  EXPECT_EQ(InChild([] {
              const pid_t root = getppid();
              if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0) return 1;
              struct rlimit r {};
              errno = 0;
              if (prlimit(root, RLIMIT_NOFILE, nullptr, &r) != -1 || errno != EPERM) return 2;
              // Its own, by pid, is fine.
              if (prlimit(getpid(), RLIMIT_NOFILE, nullptr, &r) != 0) return 3;
              return 0;
            }),
            0);
  EXPECT_ERRNO(prlimit(999999, RLIMIT_NOFILE, nullptr, nullptr), ESRCH);
}

// RLIMIT_CPU: SIGXCPU once the process has used its soft limit of CPU time,
// with the soft limit moved up a second (check_process_timers), then SIGKILL
// at the hard limit.
volatile sig_atomic_t g_xcpu = 0;
volatile sig_atomic_t g_soft_after = 0;
void OnXcpu(int) {
  g_xcpu = g_xcpu + 1;
  struct rlimit r {};
  if (getrlimit(RLIMIT_CPU, &r) == 0) g_soft_after = static_cast<sig_atomic_t>(r.rlim_cur);
}

TEST(RlimitTest, CpuSendsSigxcpuAtTheSoftLimitAndKillsAtTheHard) {
  husk_test::Pipe report = husk_test::MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXCPU, OnXcpu);
    if (!SetLimit(RLIMIT_CPU, 1, 2)) _exit(10);
    // Spin on the CPU (at most 30 s of wall time) until killed.
    const int64_t end = husk_test::NowMs() + 30000;
    int reported = 0;
    while (husk_test::NowMs() < end) {
      if (g_xcpu > reported) {
        reported = g_xcpu;
        char line[2] = {static_cast<char>('0' + g_soft_after), '\n'};
        (void)!write(report.w.get(), line, 2);
      }
    }
    _exit(11);  // never killed
  }
  report.w.Reset();
  int status = husk_test::WaitBounded(pid, 0, 60000);
  EXPECT_TRUE(husk_test::KilledBy(status, SIGKILL)) << husk_test::Describe(status);
  // One SIGXCPU, seen with the soft limit already moved up to the hard one.
  EXPECT_EQ(husk_test::ReadAll(report.r.get()), "2\n");
}

TEST(RlimitTest, CpuSigxcpuTerminatesByDefault) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!SetLimit(RLIMIT_CPU, 1, RLIM_INFINITY)) _exit(10);
    const int64_t end = husk_test::NowMs() + 30000;
    while (husk_test::NowMs() < end) {
    }
    _exit(11);
  }
  int status = husk_test::WaitBounded(pid, 0, 60000);
  EXPECT_TRUE(husk_test::KilledBy(status, SIGXCPU)) << husk_test::Describe(status);
}

// The limit is the process's: a forked child counts its own CPU time
// against the limit it inherited.
TEST(RlimitTest, CpuLimitIsInheritedByFork) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!SetLimit(RLIMIT_CPU, 1, 1)) _exit(10);
    pid_t grandchild = fork();
    if (grandchild < 0) _exit(12);
    if (grandchild == 0) {
      const int64_t end = husk_test::NowMs() + 30000;
      while (husk_test::NowMs() < end) {
      }
      _exit(11);
    }
    int st = husk_test::WaitBounded(grandchild, 0, 60000);
    _exit(husk_test::KilledBy(st, SIGKILL) ? 0 : 13);
  }
  int status = husk_test::WaitBounded(pid, 0, 70000);
  EXPECT_TRUE(husk_test::ExitedWith(status, 0)) << husk_test::Describe(status);
}

}  // namespace
