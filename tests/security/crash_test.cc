// Programs that crashed the sentry (issue 11, finding 1). On Linux each of them gets an errno
// or simply works, and the caller goes on: a husk crash shows here as the whole test binary
// dying with the sandbox.
//  - a rename into /proc/<pid> of a reaped process (an unchecked Result in the rename path);
//  - a tree deeper than any path, an fd kept on its deepest directory, every level removed
//    bottom-up, then close(fd) (the dentry chain was freed by recursion on the host stack);
//  - a fork bomb: RLIMIT_NPROC was never checked and a failed host thread start was not caught.
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tests/security/security_util.h"

namespace {

using husk_security::DescribeStatus;
using husk_security::ExitedWith;
using husk_security::ProcState;
using husk_security::WaitWithDeadline;
using husk_test::Fd;
using husk_test::MakePipe;
using husk_test::Pipe;
using husk_test::TempDir;

constexpr int64_t kDeadlineMs = 10000;

// A child blocked in pause(), killed and then left a zombie (reaped: false) or reaped.
pid_t DeadChild(bool reaped) {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  if (pid < 0 || kill(pid, SIGKILL) != 0) return -1;
  if (reaped) {
    int status;
    return waitpid(pid, &status, 0) == pid ? pid : -1;
  }
  const int64_t end = husk_test::NowMs() + kDeadlineMs;
  while (ProcState(pid) != 'Z' && husk_test::NowMs() < end) husk_security::Tick();
  return ProcState(pid) == 'Z' ? pid : -1;
}

std::string ProcDir(pid_t pid) { return "/proc/" + std::to_string(pid); }

// A zombie's /proc directory still exists: a rename into it crosses filesystems (EXDEV).
TEST(CrashTest, RenameIntoAZombiesProcDirIsExdev) {
  TempDir dir;
  ASSERT_TRUE(husk_test::WriteFile(dir.Join("f"), "data"));
  pid_t pid = DeadChild(/*reaped=*/false);
  ASSERT_GT(pid, 0);
  EXPECT_ERRNO(rename(dir.Join("f").c_str(), (ProcDir(pid) + "/x").c_str()), EXDEV);
  EXPECT_EQ(husk_test::ReadFile(dir.Join("f")), "data");
  int status;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
}

// Once reaped, /proc/<pid> is gone: every path into it is ENOENT, and nothing moves.
TEST(CrashTest, PathsIntoAReapedProcDirAreEnoent) {
  TempDir dir;
  ASSERT_TRUE(husk_test::WriteFile(dir.Join("f"), "data"));
  pid_t pid = DeadChild(/*reaped=*/true);
  ASSERT_GT(pid, 0);
  const std::string x = ProcDir(pid) + "/x";
  const std::string status = ProcDir(pid) + "/status";
  EXPECT_ERRNO(rename(dir.Join("f").c_str(), x.c_str()), ENOENT);
  EXPECT_ERRNO(rename(status.c_str(), dir.Join("g").c_str()), ENOENT);
  EXPECT_ERRNO(symlink(dir.Join("f").c_str(), x.c_str()), ENOENT);
  EXPECT_ERRNO(mkdir(x.c_str(), 0755), ENOENT);
  EXPECT_ERRNO(unlink(status.c_str()), ENOENT);
  EXPECT_ERRNO(open(status.c_str(), O_RDONLY), ENOENT);
  EXPECT_ERRNO(open(x.c_str(), O_WRONLY | O_CREAT, 0644), ENOENT);
  struct stat st;
  EXPECT_ERRNO(stat(ProcDir(pid).c_str(), &st), ENOENT);
  EXPECT_EQ(husk_test::ReadFile(dir.Join("f")), "data");
}

TEST(CrashTest, LinkIntoAReapedProcDirIsEnoent) {
  TempDir dir;
  ASSERT_TRUE(husk_test::WriteFile(dir.Join("f"), "data"));
  pid_t pid = DeadChild(/*reaped=*/true);
  ASSERT_GT(pid, 0);
  EXPECT_ERRNO(link(dir.Join("f").c_str(), (ProcDir(pid) + "/x").c_str()), ENOENT);
  EXPECT_EQ(husk_test::ReadFile(dir.Join("f")), "data");
}

// Files opened in /proc/<pid> before the process was reaped stay open but answer ESRCH (the
// task is gone: proc_pid_permission, proc_single_show) or ENOENT (its directory listing).
TEST(CrashTest, ProcFdsOfAReapedProcessFailCleanly) {
  TempDir dir;
  ASSERT_TRUE(husk_test::WriteFile(dir.Join("f"), "data"));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    pause();
    _exit(0);
  }
  Fd dfd(open(ProcDir(pid).c_str(), O_RDONLY | O_DIRECTORY));
  Fd sfd(open((ProcDir(pid) + "/status").c_str(), O_RDONLY));
  ASSERT_TRUE(dfd.valid() && sfd.valid()) << husk_test::ErrnoName(errno);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int wstatus;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);

  EXPECT_ERRNO(openat(dfd.get(), "status", O_RDONLY), ESRCH);
  EXPECT_ERRNO(openat(dfd.get(), "x", O_RDONLY | O_CREAT, 0644), ESRCH);
  EXPECT_ERRNO(mkdirat(dfd.get(), "x", 0755), ESRCH);
  EXPECT_ERRNO(renameat(AT_FDCWD, dir.Join("f").c_str(), dfd.get(), "x"), ESRCH);
  struct stat st;
  EXPECT_ERRNO(fstatat(dfd.get(), "status", &st, 0), ESRCH);
  EXPECT_EQ(fstat(dfd.get(), &st), 0) << husk_test::ErrnoName(errno);
  EXPECT_EQ(fstat(sfd.get(), &st), 0) << husk_test::ErrnoName(errno);
  char buf[4096];
  EXPECT_ERRNO(syscall(SYS_getdents64, dfd.get(), buf, sizeof(buf)), ENOENT);
  EXPECT_ERRNO(read(sfd.get(), buf, sizeof(buf)), ESRCH);
  EXPECT_ERRNO(readlinkat(dfd.get(), "exe", buf, sizeof(buf)), ESRCH);
  EXPECT_ERRNO(fchdir(dfd.get()), ESRCH);
  EXPECT_EQ(husk_test::ReadFile(dir.Join("f")), "data");
}

// Deeper than any path (PATH_MAX is 4096; this is 200,000 levels of "d/", 400,000 bytes),
// built and torn down only relative to directory fds: the depth at which husk crashed.
//
// HUSK_SECURITY_DEPTH overrides it, and the native registration sets 5,000: while the fd
// pins the chain of removed directories below, each rmdir on Linux walks that whole dead
// chain (vfs_rmdir -> shrink_dcache_parent), so tearing the tree down costs O(depth^2) on
// Linux: about 3 s for 10,000 levels, 150 s for 40,000, hours for 200,000. husk must
// survive the full depth.
constexpr int kDepth = 200000;

int Depth() {
  const char* env = getenv("HUSK_SECURITY_DEPTH");
  return env != nullptr && atoi(env) > 0 ? atoi(env) : kDepth;
}

TEST(CrashTest, DeepTreeRemovedBottomUpThenClosed) {
  const int depth = Depth();
  TempDir dir;
  Fd top(open(dir.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(top.valid());
  Fd cur(dup(top.get()));
  for (int i = 0; i < depth; ++i) {
    ASSERT_EQ(mkdirat(cur.get(), "d", 0700), 0)
        << "level " << i << ": " << husk_test::ErrnoName(errno);
    Fd next(openat(cur.get(), "d", O_RDONLY | O_DIRECTORY));
    ASSERT_TRUE(next.valid()) << "level " << i << ": " << husk_test::ErrnoName(errno);
    cur = std::move(next);
  }
  Fd deepest(dup(cur.get()));
  ASSERT_TRUE(deepest.valid());
  // Bottom-up: from each directory, step to its parent and remove the child.
  for (int i = depth; i > 0; --i) {
    Fd parent(openat(cur.get(), "..", O_RDONLY | O_DIRECTORY));
    ASSERT_TRUE(parent.valid()) << "level " << i << ": " << husk_test::ErrnoName(errno);
    ASSERT_EQ(unlinkat(parent.get(), "d", AT_REMOVEDIR), 0)
        << "level " << i << ": " << husk_test::ErrnoName(errno);
    cur = std::move(parent);
  }
  struct stat top_st, cur_st;
  ASSERT_EQ(fstat(top.get(), &top_st), 0);
  ASSERT_EQ(fstat(cur.get(), &cur_st), 0);
  EXPECT_EQ(cur_st.st_ino, top_st.st_ino);  // back at the top
  // The deepest directory is removed but still open: it has no links and takes no entries.
  struct stat st;
  ASSERT_EQ(fstat(deepest.get(), &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_ERRNO(openat(deepest.get(), "x", O_WRONLY | O_CREAT, 0600), ENOENT);
  // The last reference to the chain of dead directories goes.
  EXPECT_EQ(close(deepest.Release()), 0);
  EXPECT_EQ(mkdirat(top.get(), "after", 0700), 0) << husk_test::ErrnoName(errno);
  EXPECT_EQ(unlinkat(top.get(), "after", AT_REMOVEDIR), 0);
}

// Forks children that block until `release` closes; returns how many forks succeeded before
// the first failure (or `cap`), with errno of that failure in *err (0 if none failed).
int ForkUntilFailure(int cap, int release_r, int release_w, int* err) {
  *err = 0;
  for (int n = 0; n < cap; ++n) {
    pid_t pid = fork();
    if (pid < 0) {
      *err = errno;
      return n;
    }
    if (pid == 0) {
      close(release_w);
      char c;
      _exit(read(release_r, &c, 1) == 0 ? 0 : 1);
    }
  }
  return cap;
}

// Reaps every child of this process (they end once the release pipe closes).
bool ReapAll(int64_t deadline_ms) {
  const int64_t end = husk_test::NowMs() + deadline_ms;
  for (;;) {
    int status;
    pid_t r = waitpid(-1, &status, WNOHANG);
    if (r < 0) return errno == ECHILD;
    if (r == 0) {
      if (husk_test::NowMs() >= end) return false;
      husk_security::Tick();
    }
  }
}

// RLIMIT_NPROC (setrlimit(2)): fork fails with EAGAIN once the real uid owns that many
// processes, unless the caller has CAP_SYS_RESOURCE/CAP_SYS_ADMIN (so: as an ordinary user).
TEST(CrashTest, ForkBombUnderRlimitNprocGetsEagain) {
  const std::string why = husk_security::CannotBecomeNobody();
  if (!why.empty()) GTEST_SKIP() << why;
  constexpr int kLimit = 50;
  const int code = husk_security::InChildWithin(60000, [] {
    rlimit lim{kLimit, kLimit};
    if (setrlimit(RLIMIT_NPROC, &lim) != 0) return 1;
    if (!husk_security::BecomeNobody()) return 2;
    Pipe release = MakePipe();
    int err = 0;
    // This process is one of the uid's kLimit; a husk without the check gets the cap.
    const int n = ForkUntilFailure(2 * kLimit, release.r.get(), release.w.get(), &err);
    release.w.Reset();
    if (!ReapAll(30000)) return 3;
    if (n != kLimit - 1) {
      fprintf(stderr, "%d forks succeeded (want %d), then %s\n", n, kLimit - 1,
              err != 0 ? husk_test::ErrnoName(err).c_str() : "none failed");
      return 4;
    }
    if (err != EAGAIN) return 5;
    // The children are gone: forking works again.
    pid_t pid = fork();
    if (pid == 0) _exit(42);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !ExitedWith(status, 42)) return 6;
    return 0;
  });
  EXPECT_EQ(code, 0) << "a failed check (>0, see above), a signal (<0) or a hang (-1001)";
}

// A fork bomb as root: no rlimit binds; the pids cgroup of the fence (husk_fence --pids) or
// the host's limit on threads does. Linux answers EAGAIN and the process goes on. Opt-in
// (HUSK_SECURITY_STORM=1) because it relies on such a limit being there.
TEST(CrashTest, ForkBombAsRootGetsEagainUnderAPidsLimit) {
  const char* storm = getenv("HUSK_SECURITY_STORM");
  if (storm == nullptr || std::string(storm) != "1")
    GTEST_SKIP() << "set HUSK_SECURITY_STORM=1 to run a fork bomb (needs a pids limit, e.g. "
                    "husk_fence --pids 1024)";
  const int code = husk_security::InChildWithin(240000, [] {
    Pipe release = MakePipe();
    int err = 0;
    const int n = ForkUntilFailure(1 << 20, release.r.get(), release.w.get(), &err);
    release.w.Reset();
    if (!ReapAll(120000)) return 1;
    fprintf(stderr, "%d forks succeeded, then %s\n", n,
            err != 0 ? husk_test::ErrnoName(err).c_str() : "none failed");
    if (n == 0 || err != EAGAIN) return 2;
    pid_t pid = fork();
    if (pid == 0) _exit(42);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !ExitedWith(status, 42)) return 3;
    return 0;
  });
  EXPECT_EQ(code, 0) << "a failed check (>0, see above), a signal (<0) or a hang (-1001)";
}

}  // namespace
