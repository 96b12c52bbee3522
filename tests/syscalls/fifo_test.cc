// FIFOs and mknod(2): the node types mknod makes and refuses, in Linux's
// order of checks; a FIFO's opens (a blocking reader waits for a writer and
// a writer for a reader, O_NONBLOCK and O_RDWR never wait, a lone
// non-blocking writer is ENXIO, a signal interrupts the wait); one pipe
// shared by every open while any end is open, and gone after the last.
//
// Syscalls: mknod mknodat open read write close fstat stat unlink poll fcntl
//           ioctl(FIONREAD) fork wait4 rt_sigaction setitimer umask
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

class FifoTest : public ::testing::Test {
 protected:
  std::string P(const std::string& name) const { return dir_.Join(name); }
  // A FIFO at P(name), mode 0600.
  std::string Fifo(const std::string& name) {
    std::string path = P(name);
    EXPECT_EQ(mkfifo(path.c_str(), 0600), 0) << ErrnoName(errno);
    return path;
  }
  TempDir dir_;
};

TEST_F(FifoTest, MkfifoMakesAFifoUnderTheUmask) {
  mode_t old = umask(027);
  ASSERT_OK(mkfifo(P("f").c_str(), 0666));
  umask(old);
  struct stat st {};
  ASSERT_OK(stat(P("f").c_str(), &st));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_uid, geteuid());
  // A second FIFO, or anything else, by that name: EEXIST.
  EXPECT_EQ(mkfifo(P("f").c_str(), 0600), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(mknod(P("f").c_str(), S_IFREG | 0600, 0), -1);
  EXPECT_EQ(errno, EEXIST);
}

TEST_F(FifoTest, MknodMakesRegularFilesFifosAndSockets) {
  struct stat st {};
  ASSERT_OK(mknod(P("reg").c_str(), S_IFREG | 0640, 0));
  ASSERT_OK(stat(P("reg").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 0);
  // Type 0 is a regular file too.
  ASSERT_OK(mknod(P("zero").c_str(), 0600, 0));
  ASSERT_OK(stat(P("zero").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_OK(mknodat(AT_FDCWD, P("fifo").c_str(), S_IFIFO | 0600, 0));
  ASSERT_OK(stat(P("fifo").c_str(), &st));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_OK(mknod(P("sock").c_str(), S_IFSOCK | 0600, 0));
  ASSERT_OK(lstat(P("sock").c_str(), &st));
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  // A socket's name opens to nothing.
  EXPECT_EQ(open(P("sock").c_str(), O_RDONLY | O_CLOEXEC), -1);
  EXPECT_EQ(errno, ENXIO);
}

TEST_F(FifoTest, MknodRefusesInLinuxsOrder) {
  // The type first: a directory is EPERM, a symlink or no type at all EINVAL,
  // even where the name exists or the parent is missing.
  ASSERT_TRUE(WriteFile(P("exists"), "x"));
  EXPECT_EQ(mknod(P("d").c_str(), S_IFDIR | 0700, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(mknod(P("exists").c_str(), S_IFLNK | 0700, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(mknod(P("missing/x").c_str(), 0030000 | 0600, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  // Then the name: missing parent ENOENT, an existing name (a dangling
  // symlink too) EEXIST, a trailing slash ENOENT.
  EXPECT_EQ(mknod(P("missing/x").c_str(), S_IFIFO | 0600, 0), -1);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_OK(symlink("nowhere", P("dangling").c_str()));
  EXPECT_EQ(mknod(P("dangling").c_str(), S_IFIFO | 0600, 0), -1);
  EXPECT_EQ(errno, EEXIST);
  struct stat target {};
  EXPECT_EQ(lstat(P("nowhere").c_str(), &target), -1);  // not made through the link
  EXPECT_EQ(mknod(P("slash/").c_str(), S_IFIFO | 0600, 0), -1);
  EXPECT_EQ(errno, ENOENT);
  // Devices need CAP_MKNOD in the host's user namespace: EPERM (this runs in
  // a user namespace natively too).
  EXPECT_EQ(mknod(P("null").c_str(), S_IFCHR | 0600, makedev(1, 3)), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(mknod(P("blk").c_str(), S_IFBLK | 0600, makedev(7, 0)), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(lstat(P("null").c_str(), &target), -1);
}

TEST_F(FifoTest, NonBlockingOpensNeverWait) {
  std::string f = Fifo("f");
  // A lone non-blocking writer: ENXIO.
  EXPECT_EQ(open(f.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC), -1);
  EXPECT_EQ(errno, ENXIO);
  // A non-blocking reader opens at once and reads end of file.
  Fd r(open(f.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(r.valid()) << ErrnoName(errno);
  char c;
  EXPECT_EQ(read(r.get(), &c, 1), 0);
  // Now a writer finds a reader.
  Fd w(open(f.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(w.valid()) << ErrnoName(errno);
  ASSERT_EQ(write(w.get(), "xy", 2), 2);
  char buf[4];
  EXPECT_EQ(read(r.get(), buf, sizeof(buf)), 2);
  // Empty with a writer: EAGAIN.
  EXPECT_EQ(read(r.get(), buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, EAGAIN);
  r.Reset();
  // The reader gone: the write end gets EPIPE (SIGPIPE ignored here).
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ASSERT_OK(sigaction(SIGPIPE, &ign, &old));
  EXPECT_EQ(write(w.get(), "z", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  ASSERT_OK(sigaction(SIGPIPE, &old, nullptr));
}

TEST_F(FifoTest, BlockingReaderWaitsForAWriter) {
  std::string f = Fifo("f");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    usleep(100 * 1000);
    int w = open(f.c_str(), O_WRONLY);
    if (w < 0) _exit(1);
    if (write(w, "hello", 5) != 5) _exit(2);
    _exit(0);
  }
  Fd r(open(f.c_str(), O_RDONLY | O_CLOEXEC));  // blocks until the child opens
  ASSERT_TRUE(r.valid()) << ErrnoName(errno);
  char buf[16];
  std::string got;
  ssize_t n;
  while ((n = read(r.get(), buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(n, 0);  // the writer exited: end of file
  EXPECT_EQ(got, "hello");
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(FifoTest, BlockingWriterWaitsForAReader) {
  std::string f = Fifo("f");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    usleep(100 * 1000);
    int r = open(f.c_str(), O_RDONLY);
    if (r < 0) _exit(1);
    char buf[8] = {};
    if (read(r, buf, 3) != 3 || memcmp(buf, "abc", 3) != 0) _exit(2);
    _exit(0);
  }
  Fd w(open(f.c_str(), O_WRONLY | O_CLOEXEC));  // blocks until the child opens
  ASSERT_TRUE(w.valid()) << ErrnoName(errno);
  ASSERT_EQ(write(w.get(), "abc", 3), 3);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

void OnAlarm(int) {}

TEST_F(FifoTest, SignalInterruptsABlockingOpen) {
  std::string f = Fifo("f");
  struct sigaction sa {
  }, old{};
  sa.sa_handler = OnAlarm;  // no SA_RESTART
  ASSERT_OK(sigaction(SIGALRM, &sa, &old));
  itimerval it{};
  it.it_value.tv_usec = 100 * 1000;
  ASSERT_OK(setitimer(ITIMER_REAL, &it, nullptr));
  EXPECT_EQ(open(f.c_str(), O_RDONLY | O_CLOEXEC), -1);
  EXPECT_EQ(errno, EINTR);
  ASSERT_OK(sigaction(SIGALRM, &old, nullptr));
  // The interrupted open left no reader behind.
  EXPECT_EQ(open(f.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC), -1);
  EXPECT_EQ(errno, ENXIO);
}

TEST_F(FifoTest, ReadWriteOpenNeverWaitsAndSharesOnePipe) {
  std::string f = Fifo("f");
  Fd a(open(f.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(a.valid()) << ErrnoName(errno);
  Fd b(open(f.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(b.valid()) << ErrnoName(errno);
  // Written through one open, read through the other.
  ASSERT_EQ(write(a.get(), "shared", 6), 6);
  int avail = -1;
  ASSERT_OK(ioctl(b.get(), FIONREAD, &avail));
  EXPECT_EQ(avail, 6);
  char buf[16];
  EXPECT_EQ(read(b.get(), buf, sizeof(buf)), 6);
  EXPECT_EQ(fcntl(b.get(), F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(fcntl(a.get(), F_GETPIPE_SZ), 65536);
  // fstat shows the FIFO's own node.
  struct stat by_path {
  }, by_fd{};
  ASSERT_OK(stat(f.c_str(), &by_path));
  ASSERT_OK(fstat(a.get(), &by_fd));
  EXPECT_TRUE(S_ISFIFO(by_fd.st_mode));
  EXPECT_EQ(by_fd.st_ino, by_path.st_ino);
  EXPECT_EQ(by_fd.st_dev, by_path.st_dev);
}

TEST_F(FifoTest, DataGoesWithTheLastClose) {
  std::string f = Fifo("f");
  {
    Fd a(open(f.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(a.valid());
    ASSERT_EQ(write(a.get(), "lost", 4), 4);
  }
  Fd b(open(f.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(b.valid());
  char buf[8];
  EXPECT_EQ(read(b.get(), buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST_F(FifoTest, UnlinkedFifoKeepsItsPipe) {
  std::string f = Fifo("f");
  Fd r(open(f.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(r.valid());
  Fd w(open(f.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(w.valid());
  ASSERT_OK(unlink(f.c_str()));
  ASSERT_EQ(write(w.get(), "still", 5), 5);
  char buf[8];
  EXPECT_EQ(read(r.get(), buf, sizeof(buf)), 5);
  // A new FIFO by the same name is another pipe.
  std::string g = Fifo("f");
  EXPECT_EQ(open(g.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC), -1);
  EXPECT_EQ(errno, ENXIO);
}

TEST_F(FifoTest, ReaderIsHungUpOnlyAfterAWriterCameAndWent) {
  std::string f = Fifo("f");
  Fd r(open(f.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(r.valid());
  pollfd p{r.get(), POLLIN, 0};
  // No writer ever: not readable, not hung up.
  EXPECT_EQ(poll(&p, 1, 0), 0);
  EXPECT_EQ(p.revents, 0);
  {
    Fd w(open(f.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(w.valid());
    p.revents = 0;
    EXPECT_EQ(poll(&p, 1, 0), 0);
  }
  p.revents = 0;
  EXPECT_EQ(poll(&p, 1, 0), 1);
  EXPECT_EQ(p.revents, POLLHUP);
}

}  // namespace
}  // namespace husk_test
