// fcntl(2) commands beyond the basics in fd_test (F_DUPFD against RLIMIT_NOFILE, F_SETFD,
// F_GETFL/F_SETFL, pipe sizes, owners, leases, dnotify, unknown commands), O_PATH descriptors,
// the open(2) flag errors (O_DIRECTORY, O_NOFOLLOW, O_CREAT on a directory, O_TRUNC with
// O_RDONLY), faccessat2 with AT_EACCESS, utimensat/futimens and statx against fstat.
//
// Syscalls: fcntl openat dup dup2 close read write lseek pipe2 fstat newfstatat statx statfs
// fstatfs fchmod fchown ftruncate fsync fchdir readlinkat symlink mkdir faccessat faccessat2
// utimensat setrlimit setresuid rt_sigprocmask rt_sigtimedwait fork execve wait4
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

constexpr int kSkipCode = 77;  // A child's exit code for "this host cannot run the check".

class FcntlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    // Searchable by all, so that children running as uid 65534 reach the files.
    ASSERT_OK(chmod(dir_.path().c_str(), 0755));
    ASSERT_TRUE(WriteFile(P("file"), "0123456789"));
  }
  std::string P(const std::string& name) const { return dir_.Join(name); }
  Fd Open(const std::string& name, int flags) const {
    return Fd(open(P(name).c_str(), flags | O_CLOEXEC));
  }

  TempDir dir_;
};

// Runs `body` in a child whose real and effective uids are `ruid` and `euid` (the saved uid is
// 0 and the gids stay), and returns its exit code; kSkipCode when the uids cannot be set.
template <typename F>
int AsUids(uid_t ruid, uid_t euid, F body) {
  return InChild([&] {
    if (setresuid(ruid, euid, 0) != 0) return kSkipCode;
    return body();
  });
}

// A timestamp in nanoseconds, to compare and order timestamps.
int64_t Ns(const timespec& t) { return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec; }
std::string Str(const timespec& t) {
  return std::to_string(t.tv_sec) + "." + std::to_string(t.tv_nsec);
}
timespec Ts(const statx_timestamp& t) { return timespec{t.tv_sec, static_cast<long>(t.tv_nsec)}; }

// The earliest a timestamp taken from now on can be: file times come from the coarse clock
// (or later, finer ones), never from before it.
timespec CoarseNow() {
  timespec t;
  clock_gettime(CLOCK_REALTIME_COARSE, &t);
  return t;
}
timespec FineNow() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

// ---- F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD/F_SETFD ----

TEST_F(FcntlTest, DupfdTakesTheLowestFreeAtOrAboveArgWithinTheLimit) {
  Fd a = Open("file", O_RDONLY);
  ASSERT_TRUE(a.valid());
  int code = InChild([&] {
    // 50, 51 and 53 are taken: the lowest free at or above 50 is 52.
    for (int n : {50, 51, 53}) {
      if (dup2(a.get(), n) != n) return 1;
    }
    if (fcntl(a.get(), F_DUPFD, 50) != 52) return 2;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 3;
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 4;
    // An argument at or past the soft limit is EINVAL, as is a negative one.
    if (fcntl(a.get(), F_DUPFD, 64) != -1 || errno != EINVAL) return 5;
    if (fcntl(a.get(), F_DUPFD_CLOEXEC, 1000) != -1 || errno != EINVAL) return 6;
    if (fcntl(a.get(), F_DUPFD, -1) != -1 || errno != EINVAL) return 7;
    // Below the limit but with every number from there up taken: EMFILE.
    close(63);
    if (fcntl(a.get(), F_DUPFD, 63) != 63) return 8;
    if (fcntl(a.get(), F_DUPFD, 63) != -1 || errno != EMFILE) return 9;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST_F(FcntlTest, DupfdCloexecMarksOnlyTheNewDescriptor) {
  Fd a = Open("file", O_RDONLY);
  ASSERT_OK(fcntl(a.get(), F_SETFD, 0));
  Fd b(fcntl(a.get(), F_DUPFD_CLOEXEC, 0));
  ASSERT_TRUE(b.valid()) << ErrnoName(errno);
  EXPECT_EQ(fcntl(b.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(a.get(), F_GETFD), 0);
  // Both name one open file description: one offset and one set of status flags.
  ASSERT_EQ(lseek(b.get(), 4, SEEK_SET), 4);
  EXPECT_EQ(lseek(a.get(), 0, SEEK_CUR), 4);
  ASSERT_OK(fcntl(b.get(), F_SETFL, O_NONBLOCK));
  EXPECT_TRUE(fcntl(a.get(), F_GETFL) & O_NONBLOCK);
}

TEST_F(FcntlTest, SetfdKeepsOnlyTheCloexecBit) {
  Fd a = Open("file", O_RDONLY);
  ASSERT_OK(fcntl(a.get(), F_SETFD, ~0));
  EXPECT_EQ(fcntl(a.get(), F_GETFD), FD_CLOEXEC);
  ASSERT_OK(fcntl(a.get(), F_SETFD, 0xfe));  // Every bit but FD_CLOEXEC.
  EXPECT_EQ(fcntl(a.get(), F_GETFD), 0);
}

TEST_F(FcntlTest, CloexecDescriptorsAreClosedByExecve) {
  Fd keep(open(P("file").c_str(), O_RDONLY));  // No O_CLOEXEC.
  Fd drop = Open("file", O_RDONLY);
  ASSERT_TRUE(keep.valid() && drop.valid());
  ASSERT_EQ(fcntl(keep.get(), F_GETFD), 0);
  std::string script = "[ -e /proc/self/fd/" + std::to_string(keep.get()) +
                       " ] && [ ! -e /proc/self/fd/" + std::to_string(drop.get()) + " ]";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = WaitBounded(pid);
  EXPECT_TRUE(ExitedWith(status, 0)) << Describe(status);
}

// ---- F_GETFL, F_SETFL ----

TEST_F(FcntlTest, GetflHidesTheOpenOnlyFlags) {
  Fd fd(open(P("new").c_str(),
             O_RDWR | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC | O_APPEND | O_NONBLOCK,
             0644));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  int fl = fcntl(fd.get(), F_GETFL);
  ASSERT_NE(fl, -1);
  EXPECT_EQ(fl & O_ACCMODE, O_RDWR);
  EXPECT_TRUE(fl & O_APPEND);
  EXPECT_TRUE(fl & O_NONBLOCK);
  EXPECT_EQ(fl & (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC), 0) << std::hex << fl;
}

TEST_F(FcntlTest, SetflAppendSendsWritesToTheEnd) {
  Fd fd = Open("file", O_WRONLY);
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(fcntl(fd.get(), F_SETFL, O_APPEND));
  ASSERT_EQ(write(fd.get(), "A", 1), 1);  // At offset 0 but appended.
  EXPECT_EQ(ReadFile(P("file")), "0123456789A");
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 11);
  ASSERT_OK(fcntl(fd.get(), F_SETFL, 0));
  EXPECT_FALSE(fcntl(fd.get(), F_GETFL) & O_APPEND);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  ASSERT_EQ(write(fd.get(), "B", 1), 1);
  EXPECT_EQ(ReadFile(P("file")), "B123456789A");
}

TEST_F(FcntlTest, SetflNonblockMakesAnEmptyPipeReadEagain) {
  Pipe p = MakePipe(O_CLOEXEC);
  Fd other(dup(p.r.get()));
  ASSERT_OK(fcntl(p.r.get(), F_SETFL, O_NONBLOCK));
  char c;
  EXPECT_ERRNO(read(p.r.get(), &c, 1), EAGAIN);
  EXPECT_ERRNO(read(other.get(), &c, 1), EAGAIN);  // The flag is the description's.
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  EXPECT_EQ(read(p.r.get(), &c, 1), 1);
  ASSERT_OK(fcntl(other.get(), F_SETFL, 0));
  EXPECT_FALSE(fcntl(p.r.get(), F_GETFL) & O_NONBLOCK);
}

TEST_F(FcntlTest, SetflIgnoresAccessModeAndCreationFlags) {
  Fd fd = Open("file", O_RDONLY);
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(fcntl(fd.get(), F_SETFL, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY));
  int fl = fcntl(fd.get(), F_GETFL);
  EXPECT_EQ(fl & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(fl & (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY), 0) << std::hex << fl;
  EXPECT_ERRNO(write(fd.get(), "x", 1), EBADF);
  EXPECT_EQ(ReadFile(P("file")), "0123456789");  // O_TRUNC truncated nothing.
}

// ---- F_GETPIPE_SZ, F_SETPIPE_SZ ----

TEST_F(FcntlTest, PipeSizeRoundsUpToAPowerOfTwoPages) {
  const long page = sysconf(_SC_PAGESIZE);
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_EQ(fcntl(p.r.get(), F_GETPIPE_SZ), 16 * page);  // The default: 16 pages.
  struct Case {
    long ask, want;
  };
  for (Case c :
       {Case{0, page}, Case{1, page}, Case{page, page}, Case{page + 1, 2 * page},
        Case{3 * page, 4 * page}, Case{5 * page - 7, 8 * page}, Case{32 * page, 32 * page}}) {
    EXPECT_EQ(fcntl(p.w.get(), F_SETPIPE_SZ, c.ask), c.want) << "asked " << c.ask;
    // Both ends see the one pipe's size.
    EXPECT_EQ(fcntl(p.r.get(), F_GETPIPE_SZ), c.want) << "asked " << c.ask;
    EXPECT_EQ(fcntl(p.w.get(), F_GETPIPE_SZ), c.want) << "asked " << c.ask;
  }
  // Past 2^31 bytes there is no power of two to round to.
  EXPECT_ERRNO(fcntl(p.w.get(), F_SETPIPE_SZ, 0x80000001u), EINVAL);
}

TEST_F(FcntlTest, PipeCannotShrinkBelowItsContents) {
  const long page = sysconf(_SC_PAGESIZE);
  Pipe p = MakePipe(O_CLOEXEC);
  std::string data(4 * page, 'q');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(write(p.w.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  // Four full pages are buffered: one or two pages of room is too few.
  EXPECT_ERRNO(fcntl(p.w.get(), F_SETPIPE_SZ, page), EBUSY);
  EXPECT_ERRNO(fcntl(p.w.get(), F_SETPIPE_SZ, 2 * page), EBUSY);
  EXPECT_EQ(fcntl(p.w.get(), F_GETPIPE_SZ), 16 * page);
  EXPECT_EQ(fcntl(p.w.get(), F_SETPIPE_SZ, 4 * page), 4 * page);
  std::string got(data.size(), '\0');
  ASSERT_EQ(read(p.r.get(), got.data(), got.size()), static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, data);
  // Empty again, it can shrink to one page.
  EXPECT_EQ(fcntl(p.w.get(), F_SETPIPE_SZ, page), page);
}

TEST_F(FcntlTest, PipeSizeOfANonPipeIsEbadf) {
  Fd fd = Open("file", O_RDWR);
  ASSERT_TRUE(fd.valid());
  EXPECT_ERRNO(fcntl(fd.get(), F_GETPIPE_SZ), EBADF);
  EXPECT_ERRNO(fcntl(fd.get(), F_SETPIPE_SZ, 4096), EBADF);
}

// ---- F_SETOWN, F_GETOWN, F_SETOWN_EX, F_GETOWN_EX ----

TEST_F(FcntlTest, OwnerIsAProcessAGroupOrAThread) {
  Pipe p = MakePipe(O_CLOEXEC);
  const int fd = p.r.get();
  // glibc's fcntl(F_GETOWN) goes through F_GETOWN_EX; the raw command is checked too.
  EXPECT_EQ(syscall(SYS_fcntl, fd, F_GETOWN), 0);
  f_owner_ex ex{};
  ASSERT_OK(fcntl(fd, F_GETOWN_EX, &ex));
  EXPECT_EQ(ex.pid, 0);

  ASSERT_OK(fcntl(fd, F_SETOWN, getpid()));
  EXPECT_EQ(syscall(SYS_fcntl, fd, F_GETOWN), getpid());
  ASSERT_OK(fcntl(fd, F_GETOWN_EX, &ex));
  EXPECT_EQ(ex.type, F_OWNER_PID);
  EXPECT_EQ(ex.pid, getpid());

  // A negative owner is a process group: a child's own group (this process's group may lie
  // outside its PID namespace).
  Pipe hold = MakePipe(O_CLOEXEC);
  pid_t leader = fork();
  ASSERT_GE(leader, 0);
  if (leader == 0) {
    hold.w.Reset();
    setpgid(0, 0);
    char c;
    _exit(read(hold.r.get(), &c, 1) == 0 ? 0 : 1);
  }
  setpgid(leader, leader);  // Either this or the child's own call makes it a group leader.
  ASSERT_OK(fcntl(fd, F_SETOWN, -leader));
  ASSERT_OK(fcntl(fd, F_GETOWN_EX, &ex));
  EXPECT_EQ(ex.type, F_OWNER_PGRP);
  EXPECT_EQ(ex.pid, leader);
  EXPECT_EQ(fcntl(fd, F_GETOWN), -leader);
  hold.w.Reset();
  EXPECT_TRUE(ExitedWith(WaitBounded(leader), 0));

  ex = {F_OWNER_TID, gettid()};
  ASSERT_OK(fcntl(fd, F_SETOWN_EX, &ex));
  ex = {};
  ASSERT_OK(fcntl(fd, F_GETOWN_EX, &ex));
  EXPECT_EQ(ex.type, F_OWNER_TID);
  EXPECT_EQ(ex.pid, gettid());
  EXPECT_EQ(syscall(SYS_fcntl, fd, F_GETOWN), gettid());

  ASSERT_OK(fcntl(fd, F_SETOWN, 0));
  EXPECT_EQ(syscall(SYS_fcntl, fd, F_GETOWN), 0);
}

TEST_F(FcntlTest, OwnerErrors) {
  pid_t gone = fork();
  ASSERT_GE(gone, 0);
  if (gone == 0) _exit(0);
  ASSERT_TRUE(ExitedWith(Wait(gone), 0));
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(fcntl(p.r.get(), F_SETOWN, gone), ESRCH);
  f_owner_ex ex = {F_OWNER_TID, gone};
  EXPECT_ERRNO(fcntl(p.r.get(), F_SETOWN_EX, &ex), ESRCH);
  ex = {static_cast<__pid_type>(99), getpid()};
  EXPECT_ERRNO(fcntl(p.r.get(), F_SETOWN_EX, &ex), EINVAL);
  EXPECT_ERRNO(fcntl(p.r.get(), F_SETOWN_EX, nullptr), EFAULT);
  // The failures left no owner.
  EXPECT_EQ(syscall(SYS_fcntl, p.r.get(), F_GETOWN), 0);
}

// ---- F_GETLEASE, F_SETLEASE, F_NOTIFY ----

TEST_F(FcntlTest, LeaseOnAFile) {
  Fd fd = Open("file", O_RDONLY);
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_UNLCK);
  std::string enabled = ReadFile("/proc/sys/fs/leases-enable");
  if (!enabled.empty() && enabled[0] == '0') GTEST_SKIP() << "fs.leases-enable is 0";
  // The owner may take a read lease through a read-only descriptor.
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_RDLCK));
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_RDLCK);
  ASSERT_OK(fcntl(fd.get(), F_SETLEASE, F_UNLCK));
  EXPECT_EQ(fcntl(fd.get(), F_GETLEASE), F_UNLCK);
  EXPECT_ERRNO(fcntl(fd.get(), F_SETLEASE, 99), EINVAL);
  // Only regular files take leases.
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(fcntl(p.r.get(), F_SETLEASE, F_RDLCK), EINVAL);
}

TEST_F(FcntlTest, NotifySignalsDirectoryChanges) {
  ASSERT_OK(mkdir(P("watched").c_str(), 0755));
  const std::string watched = P("watched");
  const std::string file = P("file");
  int code = InChild([&] {
    const int sig = SIGRTMIN + 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return 1;
    int dir = open(watched.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return 2;
    if (fcntl(dir, F_SETSIG, sig) != 0) return 3;
    if (fcntl(dir, F_NOTIFY, DN_CREATE | DN_DELETE | DN_MULTISHOT) != 0) {
      return errno == EINVAL ? kSkipCode : 4;  // A kernel built without CONFIG_DNOTIFY.
    }
    // Creating a file queues the signal before creat(2) returns.
    int f = open((watched + "/new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) return 5;
    close(f);
    timespec zero{0, 0};
    siginfo_t si{};
    if (sigtimedwait(&set, &si, &zero) != sig) return 6;
    if (si.si_fd != dir) return 7;
    if (!(si.si_band & POLL_IN) && si.si_code != POLL_MSG && si.si_code != SI_SIGIO) return 8;
    // DN_MULTISHOT: the unlink is reported too.
    if (unlink((watched + "/new").c_str()) != 0) return 9;
    if (sigtimedwait(&set, &si, &zero) != sig) return 10;
    // A directory notification needs a directory.
    int reg = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (reg < 0) return 11;
    if (fcntl(reg, F_NOTIFY, DN_CREATE) != -1 || errno != ENOTDIR) return 12;
    return 0;
  });
  if (code == kSkipCode) GTEST_SKIP() << "F_NOTIFY is EINVAL: no dnotify in this kernel";
  EXPECT_EQ(code, 0);
}

// ---- Unknown commands and bad descriptors ----

TEST_F(FcntlTest, UnknownCommandIsEinval) {
  Fd fd = Open("file", O_RDONLY);
  ASSERT_TRUE(fd.valid());
  EXPECT_ERRNO(syscall(SYS_fcntl, fd.get(), 12345, 0), EINVAL);
  EXPECT_ERRNO(syscall(SYS_fcntl, fd.get(), -1, 0), EINVAL);
  EXPECT_ERRNO(syscall(SYS_fcntl, fd.get(), 1023, 0), EINVAL);
}

TEST_F(FcntlTest, ClosedDescriptorIsEbadfForEveryCommand) {
  int bad;
  {
    Fd fd = Open("file", O_RDONLY);
    bad = fd.get();
  }
  struct flock lk {};
  lk.l_type = F_RDLCK;
  f_owner_ex ex{};
  EXPECT_ERRNO(fcntl(bad, F_DUPFD, 0), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_DUPFD_CLOEXEC, 0), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_GETFD), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_SETFD, FD_CLOEXEC), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_GETFL), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_SETFL, O_NONBLOCK), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_GETLK, &lk), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_SETOWN, getpid()), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_GETOWN_EX, &ex), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_GETPIPE_SZ), EBADF);
  EXPECT_ERRNO(fcntl(bad, F_GETLEASE), EBADF);
  // The descriptor is checked before the command.
  EXPECT_ERRNO(syscall(SYS_fcntl, bad, 12345, 0), EBADF);
}

// ---- O_PATH ----

TEST_F(FcntlTest, OPathDescriptorStatsDupsAndReportsOPath) {
  Fd fd = Open("file", O_PATH);
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  struct stat st {
  }, want{};
  ASSERT_OK(fstat(fd.get(), &st));
  ASSERT_OK(stat(P("file").c_str(), &want));
  EXPECT_EQ(st.st_ino, want.st_ino);
  EXPECT_EQ(st.st_size, 10);
  int fl = fcntl(fd.get(), F_GETFL);
  ASSERT_NE(fl, -1);
  EXPECT_TRUE(fl & O_PATH) << std::hex << fl;
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
  ASSERT_OK(fcntl(fd.get(), F_SETFD, 0));
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), 0);
  Fd copy(fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
  ASSERT_TRUE(copy.valid()) << ErrnoName(errno);
  EXPECT_TRUE(fcntl(copy.get(), F_GETFL) & O_PATH);
  struct statfs sfs {};
  ASSERT_OK(fstatfs(fd.get(), &sfs));
  // /proc/self/fd names the file, and reopening through it gives real access.
  char target[4096];
  std::string link = "/proc/self/fd/" + std::to_string(fd.get());
  ssize_t n = readlink(link.c_str(), target, sizeof(target));
  ASSERT_GT(n, 0) << ErrnoName(errno);
  EXPECT_EQ(std::string(target, n), P("file"));
  Fd reopened(open(link.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(reopened.valid()) << ErrnoName(errno);
  EXPECT_EQ(ReadAll(reopened.get()), "0123456789");
}

TEST_F(FcntlTest, OPathDescriptorRefusesIo) {
  Fd fd = Open("file", O_PATH);
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  char buf[4];
  EXPECT_ERRNO(read(fd.get(), buf, sizeof(buf)), EBADF);
  EXPECT_ERRNO(write(fd.get(), "x", 1), EBADF);
  EXPECT_ERRNO(pread(fd.get(), buf, sizeof(buf), 0), EBADF);
  EXPECT_ERRNO(lseek(fd.get(), 0, SEEK_SET), EBADF);
  EXPECT_ERRNO(fchmod(fd.get(), 0600), EBADF);
  EXPECT_ERRNO(fchown(fd.get(), 0, 0), EBADF);
  EXPECT_ERRNO(ftruncate(fd.get(), 0), EBADF);
  EXPECT_ERRNO(fsync(fd.get()), EBADF);
  int avail = 0;
  EXPECT_ERRNO(ioctl(fd.get(), FIONREAD, &avail), EBADF);
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, fd.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EBADF) << ErrnoName(errno);
  // Of fcntl's commands only the descriptor ones and F_GETFL work on O_PATH.
  EXPECT_ERRNO(fcntl(fd.get(), F_SETFL, O_NONBLOCK), EBADF);
  struct flock lk {};
  lk.l_type = F_RDLCK;
  EXPECT_ERRNO(fcntl(fd.get(), F_GETLK, &lk), EBADF);
  EXPECT_ERRNO(fcntl(fd.get(), F_SETOWN, getpid()), EBADF);
  // Nothing changed the file.
  struct stat st {};
  ASSERT_OK(stat(P("file").c_str(), &st));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(ReadFile(P("file")), "0123456789");
}

TEST_F(FcntlTest, OPathDirectoryIsADirfdAndAChdirTarget) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("d/inner"), "in"));
  Fd dir = Open("d", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(dir.valid()) << ErrnoName(errno);
  Fd inner(openat(dir.get(), "inner", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(inner.valid()) << ErrnoName(errno);
  EXPECT_EQ(ReadAll(inner.get()), "in");
  struct stat st {};
  ASSERT_OK(fstatat(dir.get(), "inner", &st, 0));
  EXPECT_EQ(st.st_size, 2);
  Fd cwd(open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(cwd.valid());
  ASSERT_OK(fchdir(dir.get()));
  EXPECT_EQ(access("inner", R_OK), 0);
  ASSERT_OK(fchdir(cwd.get()));
}

TEST_F(FcntlTest, OPathNofollowOpensTheSymlinkItself) {
  ASSERT_OK(symlink("file", P("link").c_str()));
  Fd fd = Open("link", O_PATH | O_NOFOLLOW);
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  struct stat st {};
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_OK(fstatat(fd.get(), "", &st, AT_EMPTY_PATH));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  // readlinkat with an empty path reads the link the descriptor is.
  char buf[64];
  ssize_t n = readlinkat(fd.get(), "", buf, sizeof(buf));
  ASSERT_GT(n, 0) << ErrnoName(errno);
  EXPECT_EQ(std::string(buf, n), "file");
  // Without O_NOFOLLOW O_PATH follows to the file.
  Fd followed = Open("link", O_PATH);
  ASSERT_OK(fstat(followed.get(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

// ---- open(2) flag errors ----

TEST_F(FcntlTest, OpenatDirectoryFlagNeedsADirectory) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(symlink("d", P("dirlink").c_str()));
  ASSERT_OK(symlink("file", P("filelink").c_str()));
  Fd dir(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir.valid());
  EXPECT_ERRNO(openat(dir.get(), "file", O_RDONLY | O_DIRECTORY | O_CLOEXEC), ENOTDIR);
  EXPECT_ERRNO(openat(dir.get(), "filelink", O_RDONLY | O_DIRECTORY | O_CLOEXEC), ENOTDIR);
  EXPECT_ERRNO(openat(dir.get(), "file/", O_RDONLY | O_CLOEXEC), ENOTDIR);
  EXPECT_ERRNO(openat(dir.get(), "file", O_PATH | O_DIRECTORY | O_CLOEXEC), ENOTDIR);
  Fd ok(openat(dir.get(), "dirlink", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_TRUE(ok.valid()) << ErrnoName(errno);
}

TEST_F(FcntlTest, NofollowOnAFinalSymlinkIsEloop) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("d/f"), "in d"));
  ASSERT_OK(symlink("file", P("link").c_str()));
  ASSERT_OK(symlink("d", P("dirlink").c_str()));
  ASSERT_OK(symlink("nowhere", P("dangling").c_str()));
  EXPECT_ERRNO(open(P("link").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ELOOP);
  EXPECT_ERRNO(open(P("dirlink").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ELOOP);
  // O_CREAT does not create through a final symlink with O_NOFOLLOW.
  EXPECT_ERRNO(open(P("dangling").c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644),
               ELOOP);
  EXPECT_ERRNO(open(P("dangling").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), EEXIST);
  EXPECT_ERRNO(access(P("nowhere").c_str(), F_OK), ENOENT);
  // Only the last component is affected: a symlink earlier in the path is followed.
  Fd fd(open(P("dirlink/f").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  EXPECT_EQ(ReadAll(fd.get()), "in d");
}

TEST_F(FcntlTest, CreatOnADirectoryIsEisdir) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  EXPECT_ERRNO(open(P("d").c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644), EISDIR);
  EXPECT_ERRNO(open(P("d").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), EISDIR);
  EXPECT_ERRNO(open(P("d").c_str(), O_RDWR | O_CLOEXEC), EISDIR);
  EXPECT_ERRNO(open(P("d").c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), EEXIST);
  struct stat st {};
  ASSERT_OK(stat(P("d").c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(FcntlTest, TruncWithReadOnlyAccess) {
  // Linux truncates when the caller may write the file, whatever the access mode...
  {
    Fd fd = Open("file", O_RDONLY | O_TRUNC);
    ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
    struct stat st {};
    ASSERT_OK(fstat(fd.get(), &st));
    EXPECT_EQ(st.st_size, 0);
    EXPECT_ERRNO(write(fd.get(), "x", 1), EBADF);
  }
  // ...and refuses the open when it may only read it.
  ASSERT_TRUE(WriteFile(P("readable"), "keep me", 0644));
  ASSERT_OK(chmod(P("readable").c_str(), 0644));
  const std::string path = P("readable");
  int code = AsUids(65534, 65534, [&] {
    if (open(path.c_str(), O_RDONLY | O_TRUNC | O_CLOEXEC) != -1 || errno != EACCES) return 1;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? 0 : 2;
  });
  if (code == kSkipCode) GTEST_SKIP() << "uid 65534 is not available";
  EXPECT_EQ(code, 0);
  EXPECT_EQ(ReadFile(P("readable")), "keep me");
}

// ---- faccessat, faccessat2 ----

TEST_F(FcntlTest, FaccessatChecksTheRealIdsUnlessAtEaccess) {
  ASSERT_TRUE(WriteFile(P("private"), "p", 0600));
  ASSERT_OK(chmod(P("private").c_str(), 0600));
  const std::string path = P("private");
  // Real uid 65534, effective root: access(2) answers for 65534, AT_EACCESS for root.
  int code = AsUids(65534, 0, [&] {
    if (syscall(SYS_faccessat, AT_FDCWD, path.c_str(), R_OK) != -1 || errno != EACCES) return 1;
    if (syscall(SYS_faccessat2, AT_FDCWD, path.c_str(), R_OK, 0) != -1 || errno != EACCES) {
      return 2;
    }
    if (syscall(SYS_faccessat2, AT_FDCWD, path.c_str(), R_OK | W_OK, AT_EACCESS) != 0) return 3;
    return 0;
  });
  if (code == kSkipCode) GTEST_SKIP() << "uid 65534 is not available";
  EXPECT_EQ(code, 0);
  // Real root, effective 65534: the other way round.
  code = AsUids(0, 65534, [&] {
    if (syscall(SYS_faccessat2, AT_FDCWD, path.c_str(), R_OK, 0) != 0) return 1;
    if (syscall(SYS_faccessat2, AT_FDCWD, path.c_str(), R_OK, AT_EACCESS) != -1 ||
        errno != EACCES) {
      return 2;
    }
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST_F(FcntlTest, Faccessat2SymlinkNofollowAndFlags) {
  ASSERT_OK(symlink("nowhere", P("dangling").c_str()));
  ASSERT_OK(symlink("file", P("link").c_str()));
  EXPECT_ERRNO(syscall(SYS_faccessat2, AT_FDCWD, P("dangling").c_str(), F_OK, 0), ENOENT);
  EXPECT_EQ(syscall(SYS_faccessat2, AT_FDCWD, P("dangling").c_str(), F_OK, AT_SYMLINK_NOFOLLOW), 0);
  EXPECT_EQ(
      syscall(SYS_faccessat2, AT_FDCWD, P("link").c_str(), R_OK, AT_SYMLINK_NOFOLLOW | AT_EACCESS),
      0);
  // AT_EMPTY_PATH checks the descriptor's file.
  Fd fd = Open("file", O_PATH);
  EXPECT_EQ(syscall(SYS_faccessat2, fd.get(), "", R_OK, AT_EMPTY_PATH), 0);
  EXPECT_ERRNO(syscall(SYS_faccessat2, fd.get(), "", R_OK, 0), ENOENT);
  EXPECT_ERRNO(syscall(SYS_faccessat2, AT_FDCWD, P("file").c_str(), R_OK, AT_NO_AUTOMOUNT), EINVAL);
  EXPECT_ERRNO(syscall(SYS_faccessat2, AT_FDCWD, P("file").c_str(), 8, 0), EINVAL);
}

// ---- utimensat, futimens ----

TEST_F(FcntlTest, UtimensatKeepsNanosecondsAndOmits) {
  const std::string path = P("file");
  timespec set[2] = {{1000, 123456789}, {2000, 987654321}};
  ASSERT_OK(utimensat(AT_FDCWD, path.c_str(), set, 0));
  struct stat st {};
  ASSERT_OK(stat(path.c_str(), &st));
  EXPECT_EQ(Ns(st.st_atim), Ns(set[0])) << Str(st.st_atim);
  EXPECT_EQ(Ns(st.st_mtim), Ns(set[1])) << Str(st.st_mtim);

  // UTIME_NOW for one, UTIME_OMIT for the other.
  timespec before = CoarseNow();
  timespec now_omit[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  ASSERT_OK(utimensat(AT_FDCWD, path.c_str(), now_omit, 0));
  timespec after = FineNow();
  ASSERT_OK(stat(path.c_str(), &st));
  EXPECT_TRUE(Ns(before) <= Ns(st.st_atim) && Ns(st.st_atim) <= Ns(after)) << Str(st.st_atim);
  EXPECT_EQ(Ns(st.st_mtim), Ns(set[1])) << Str(st.st_mtim);
  // Any change of times sets ctime to now.
  EXPECT_TRUE(Ns(before) <= Ns(st.st_ctim) && Ns(st.st_ctim) <= Ns(after)) << Str(st.st_ctim);

  timespec omit_now[2] = {{5, UTIME_OMIT}, {6, UTIME_NOW}};  // tv_sec is ignored.
  before = CoarseNow();
  ASSERT_OK(utimensat(AT_FDCWD, path.c_str(), omit_now, 0));
  after = FineNow();
  struct stat st2 {};
  ASSERT_OK(stat(path.c_str(), &st2));
  EXPECT_EQ(Ns(st2.st_atim), Ns(st.st_atim));
  EXPECT_TRUE(Ns(before) <= Ns(st2.st_mtim) && Ns(st2.st_mtim) <= Ns(after)) << Str(st2.st_mtim);

  // Both omitted: nothing at all changes, not even ctime.
  ASSERT_OK(utimensat(AT_FDCWD, path.c_str(), set, 0));
  ASSERT_OK(stat(path.c_str(), &st));
  timespec omit_omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  ASSERT_OK(utimensat(AT_FDCWD, path.c_str(), omit_omit, 0));
  ASSERT_OK(stat(path.c_str(), &st2));
  EXPECT_EQ(Ns(st2.st_atim), Ns(set[0]));
  EXPECT_EQ(Ns(st2.st_mtim), Ns(set[1]));
  EXPECT_EQ(Ns(st2.st_ctim), Ns(st.st_ctim));
}

TEST_F(FcntlTest, UtimensatNullTimesMeansNow) {
  const std::string path = P("file");
  timespec old[2] = {{1, 0}, {2, 0}};
  ASSERT_OK(utimensat(AT_FDCWD, path.c_str(), old, 0));
  timespec before = CoarseNow();
  ASSERT_OK(utimensat(AT_FDCWD, path.c_str(), nullptr, 0));
  timespec after = FineNow();
  struct stat st {};
  ASSERT_OK(stat(path.c_str(), &st));
  EXPECT_TRUE(Ns(before) <= Ns(st.st_atim) && Ns(st.st_atim) <= Ns(after)) << Str(st.st_atim);
  EXPECT_TRUE(Ns(before) <= Ns(st.st_mtim) && Ns(st.st_mtim) <= Ns(after)) << Str(st.st_mtim);
}

TEST_F(FcntlTest, FutimensSetsTheDescriptorsFile) {
  Fd fd = Open("file", O_RDONLY);
  ASSERT_TRUE(fd.valid());
  timespec set[2] = {{3000, 1}, {4000, 999999999}};
  ASSERT_OK(futimens(fd.get(), set));
  struct stat st {};
  ASSERT_OK(stat(P("file").c_str(), &st));
  EXPECT_EQ(Ns(st.st_atim), Ns(set[0]));
  EXPECT_EQ(Ns(st.st_mtim), Ns(set[1]));
  // The raw call with a NULL path is the same operation (futimens is built on it).
  timespec set2[2] = {{5000, 5}, {6000, 6}};
  ASSERT_OK(syscall(SYS_utimensat, fd.get(), nullptr, set2, 0));
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(Ns(st.st_mtim), Ns(set2[1]));
  // An O_PATH descriptor cannot be used this way.
  Fd path = Open("file", O_PATH);
  EXPECT_ERRNO(futimens(path.get(), set), EBADF);
  EXPECT_ERRNO(futimens(-1, set), EBADF);
}

TEST_F(FcntlTest, UtimensatNofollowSetsTheSymlinksOwnTimes) {
  ASSERT_OK(symlink("file", P("link").c_str()));
  timespec file_times[2] = {{100, 1}, {200, 2}};
  ASSERT_OK(utimensat(AT_FDCWD, P("file").c_str(), file_times, 0));
  timespec link_times[2] = {{300, 3}, {400, 4}};
  ASSERT_OK(utimensat(AT_FDCWD, P("link").c_str(), link_times, AT_SYMLINK_NOFOLLOW));
  struct stat l {
  }, f{};
  ASSERT_OK(lstat(P("link").c_str(), &l));
  ASSERT_OK(stat(P("file").c_str(), &f));
  EXPECT_EQ(Ns(l.st_mtim), Ns(link_times[1]));
  EXPECT_EQ(Ns(f.st_mtim), Ns(file_times[1]));
  // Without the flag the target is changed.
  timespec through[2] = {{500, 5}, {600, 6}};
  ASSERT_OK(utimensat(AT_FDCWD, P("link").c_str(), through, 0));
  ASSERT_OK(lstat(P("link").c_str(), &l));
  ASSERT_OK(stat(P("file").c_str(), &f));
  EXPECT_EQ(Ns(l.st_mtim), Ns(link_times[1]));
  EXPECT_EQ(Ns(f.st_mtim), Ns(through[1]));
}

TEST_F(FcntlTest, UtimensatErrors) {
  const std::string path = P("file");
  timespec bad_nsec[2] = {{0, 1000000000}, {0, 0}};
  EXPECT_ERRNO(utimensat(AT_FDCWD, path.c_str(), bad_nsec, 0), EINVAL);
  timespec negative[2] = {{0, 0}, {0, -1}};
  EXPECT_ERRNO(utimensat(AT_FDCWD, path.c_str(), negative, 0), EINVAL);
  EXPECT_ERRNO(utimensat(AT_FDCWD, path.c_str(), nullptr, 0x1), EINVAL);
  EXPECT_ERRNO(utimensat(AT_FDCWD, P("missing").c_str(), nullptr, 0), ENOENT);
  Fd fd = Open("file", O_RDONLY);
  // A NULL path names the descriptor, which AT_SYMLINK_NOFOLLOW cannot apply to.
  EXPECT_ERRNO(syscall(SYS_utimensat, fd.get(), nullptr, nullptr, AT_SYMLINK_NOFOLLOW), EINVAL);
}

TEST_F(FcntlTest, UtimensatPermissions) {
  ASSERT_TRUE(WriteFile(P("shared"), "s", 0666));
  ASSERT_OK(chmod(P("shared").c_str(), 0666));
  ASSERT_OK(chmod(P("file").c_str(), 0644));
  const std::string shared = P("shared");
  const std::string file = P("file");
  int code = AsUids(65534, 65534, [&] {
    // Whoever may write the file may set both times to now...
    if (utimensat(AT_FDCWD, shared.c_str(), nullptr, 0) != 0) return 1;
    timespec now_now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    if (utimensat(AT_FDCWD, shared.c_str(), now_now, 0) != 0) return 2;
    // ...but only the owner may set them to anything else.
    timespec set[2] = {{1, 0}, {2, 0}};
    if (utimensat(AT_FDCWD, shared.c_str(), set, 0) != -1 || errno != EPERM) return 3;
    if (utimensat(AT_FDCWD, file.c_str(), nullptr, 0) != -1 || errno != EACCES) return 4;
    if (utimensat(AT_FDCWD, file.c_str(), set, 0) != -1 || errno != EPERM) return 5;
    return 0;
  });
  if (code == kSkipCode) GTEST_SKIP() << "uid 65534 is not available";
  EXPECT_EQ(code, 0);
}

// ---- statx ----

TEST_F(FcntlTest, StatxAgreesWithFstat) {
  ASSERT_TRUE(WriteFile(P("file"), std::string(10000, 'z')));
  // A regular file and a character device (whose rdev must come through).
  for (const std::string& path : {P("file"), std::string("/dev/null")}) {
    Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(f.valid()) << path;
    struct stat st {};
    ASSERT_OK(fstat(f.get(), &st));
    struct statx stx {};
    ASSERT_OK(statx(f.get(), "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx));
    EXPECT_EQ(stx.stx_mask & STATX_BASIC_STATS, STATX_BASIC_STATS)
        << path << std::hex << stx.stx_mask;
    EXPECT_EQ(stx.stx_mode, st.st_mode) << path;
    EXPECT_EQ(stx.stx_ino, st.st_ino) << path;
    EXPECT_EQ(stx.stx_nlink, st.st_nlink) << path;
    EXPECT_EQ(stx.stx_uid, st.st_uid) << path;
    EXPECT_EQ(stx.stx_gid, st.st_gid) << path;
    EXPECT_EQ(static_cast<off_t>(stx.stx_size), st.st_size) << path;
    EXPECT_EQ(static_cast<blkcnt_t>(stx.stx_blocks), st.st_blocks) << path;
    EXPECT_EQ(static_cast<blksize_t>(stx.stx_blksize), st.st_blksize) << path;
    EXPECT_EQ(makedev(stx.stx_dev_major, stx.stx_dev_minor), st.st_dev) << path;
    EXPECT_EQ(makedev(stx.stx_rdev_major, stx.stx_rdev_minor), st.st_rdev) << path;
    EXPECT_EQ(Ns(Ts(stx.stx_atime)), Ns(st.st_atim)) << path;
    EXPECT_EQ(Ns(Ts(stx.stx_mtime)), Ns(st.st_mtim)) << path;
    EXPECT_EQ(Ns(Ts(stx.stx_ctime)), Ns(st.st_ctim)) << path;
  }
}

TEST_F(FcntlTest, StatxBirthTimeWhenReported) {
  timespec before = CoarseNow();
  ASSERT_TRUE(WriteFile(P("born"), "b"));
  struct statx stx {};
  ASSERT_OK(statx(AT_FDCWD, P("born").c_str(), 0, STATX_BASIC_STATS | STATX_BTIME, &stx));
  if (!(stx.stx_mask & STATX_BTIME)) GTEST_SKIP() << "this filesystem keeps no birth time";
  const timespec born = Ts(stx.stx_btime);
  EXPECT_TRUE(Ns(before) <= Ns(born)) << Str(born) << " before " << Str(before);
  EXPECT_TRUE(Ns(born) <= Ns(Ts(stx.stx_ctime))) << Str(born);
  // Setting the other times leaves it alone.
  timespec set[2] = {{1, 0}, {2, 0}};
  ASSERT_OK(utimensat(AT_FDCWD, P("born").c_str(), set, 0));
  ASSERT_OK(statx(AT_FDCWD, P("born").c_str(), 0, STATX_BTIME, &stx));
  EXPECT_EQ(Ns(Ts(stx.stx_btime)), Ns(born));
}

TEST_F(FcntlTest, StatxSyncFlags) {
  struct statx stx {};
  const std::string path = P("file");
  EXPECT_EQ(statx(AT_FDCWD, path.c_str(), AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, &stx), 0);
  EXPECT_EQ(stx.stx_size, 10u);
  EXPECT_EQ(statx(AT_FDCWD, path.c_str(), AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &stx), 0);
  EXPECT_EQ(statx(AT_FDCWD, path.c_str(), AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &stx), 0);
  EXPECT_ERRNO(statx(AT_FDCWD, path.c_str(), AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC,
                     STATX_BASIC_STATS, &stx),
               EINVAL);
  EXPECT_ERRNO(statx(AT_FDCWD, path.c_str(), AT_REMOVEDIR, STATX_BASIC_STATS, &stx), EINVAL);
}

TEST_F(FcntlTest, StatxEmptyPath) {
  Fd path_fd = Open("file", O_PATH);
  Fd dir(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(path_fd.valid() && dir.valid());
  struct stat file_st {
  }, dir_st{};
  ASSERT_OK(stat(P("file").c_str(), &file_st));
  ASSERT_OK(stat(dir_.path().c_str(), &dir_st));
  struct statx stx {};
  // An O_PATH descriptor is enough for AT_EMPTY_PATH.
  ASSERT_OK(statx(path_fd.get(), "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx));
  EXPECT_EQ(stx.stx_ino, file_st.st_ino);
  ASSERT_OK(statx(dir.get(), "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx));
  EXPECT_EQ(stx.stx_ino, dir_st.st_ino);
  EXPECT_TRUE(S_ISDIR(stx.stx_mode));
  // AT_FDCWD with an empty path is the working directory.
  Fd cwd(open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_OK(fchdir(dir.get()));
  int r = statx(AT_FDCWD, "", AT_EMPTY_PATH, STATX_INO, &stx);
  ASSERT_OK(fchdir(cwd.get()));
  ASSERT_EQ(r, 0);
  EXPECT_EQ(stx.stx_ino, dir_st.st_ino);
  // Without AT_EMPTY_PATH an empty path names nothing; with it a bad descriptor is EBADF.
  EXPECT_ERRNO(statx(path_fd.get(), "", 0, STATX_BASIC_STATS, &stx), ENOENT);
  EXPECT_ERRNO(statx(-1, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx), EBADF);
  // A relative path against a file descriptor is ENOTDIR.
  EXPECT_ERRNO(statx(path_fd.get(), "x", 0, STATX_BASIC_STATS, &stx), ENOTDIR);
}

}  // namespace
}  // namespace husk_test
