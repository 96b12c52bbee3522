// pipe(2), pipe2(2) and pipe(7): reading, writing, end of file, EPIPE and
// SIGPIPE, O_NONBLOCK, PIPE_BUF atomicity, the capacity, signal-driven I/O
// (O_ASYNC), and pipes between processes.
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::BlockedSignal;
using husk_test::Fd;
using husk_test::kWaitMs;
using husk_test::MakePipe;
using husk_test::Pipe;
using husk_test::Wait;

TEST(PipeTest, BytesComeOutInOrder) {
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "hello ", 6), 6);
  ASSERT_EQ(write(p.w.get(), "world", 5), 5);
  char buf[32] = {};
  // A read returns what is buffered, even when it asked for more.
  ASSERT_EQ(read(p.r.get(), buf, sizeof(buf)), 11);
  EXPECT_EQ(std::string(buf, 11), "hello world");
  ASSERT_EQ(write(p.w.get(), "abc", 3), 3);
  ASSERT_EQ(read(p.r.get(), buf, 2), 2);
  EXPECT_EQ(std::string(buf, 2), "ab");
  ASSERT_EQ(read(p.r.get(), buf, 2), 1);
  EXPECT_EQ(buf[0], 'c');
}

TEST(PipeTest, ZeroLengthTransfersSucceedAtOnce) {
  Pipe p = MakePipe();
  char c;
  EXPECT_EQ(read(p.r.get(), &c, 0), 0);  // empty, a writer exists: still no wait
  p.r.Reset();
  EXPECT_EQ(write(p.w.get(), &c, 0), 0);  // no reader: no EPIPE for nothing
}

// FIONBIO works on any file, as F_SETFL's O_NONBLOCK (libuv sets it on stdio pipes).
TEST(PipeTest, FionbioTogglesNonBlocking) {
  Pipe p = MakePipe();
  int on = 1;
  ASSERT_OK(ioctl(p.r.get(), FIONBIO, &on));
  EXPECT_NE(fcntl(p.r.get(), F_GETFL) & O_NONBLOCK, 0);
  char c;
  EXPECT_ERRNO(read(p.r.get(), &c, 1), EAGAIN);
  on = 0;
  ASSERT_OK(ioctl(p.r.get(), FIONBIO, &on));
  EXPECT_EQ(fcntl(p.r.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_ERRNO(ioctl(p.r.get(), FIONBIO, nullptr), EFAULT);
}

TEST(PipeTest, PlainPipeGivesReadAndWriteEnds) {
  int fds[2];
  ASSERT_OK(pipe(fds));
  Fd r(fds[0]), w(fds[1]);
  EXPECT_EQ(fcntl(r.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(fcntl(w.get(), F_GETFL) & O_ACCMODE, O_WRONLY);
  EXPECT_EQ(fcntl(r.get(), F_GETFD), 0);
  char c;
  EXPECT_ERRNO(write(r.get(), "x", 1), EBADF);
  EXPECT_ERRNO(read(w.get(), &c, 1), EBADF);
}

TEST(PipeTest, Pipe2FlagsAndBadArguments) {
  Pipe p = MakePipe(O_CLOEXEC | O_NONBLOCK);
  EXPECT_EQ(fcntl(p.r.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(p.w.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_TRUE(fcntl(p.r.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(p.w.get(), F_GETFL) & O_NONBLOCK);
  int fds[2];
  EXPECT_ERRNO(pipe2(fds, O_RDWR | O_APPEND | 0x4000000), EINVAL);
  EXPECT_ERRNO(syscall(SYS_pipe2, nullptr, 0), EFAULT);
}

TEST(PipeTest, FstatShowsAFifoSharedByBothEnds) {
  Pipe p = MakePipe();
  struct stat rs{}, ws{};
  ASSERT_OK(fstat(p.r.get(), &rs));
  ASSERT_OK(fstat(p.w.get(), &ws));
  EXPECT_TRUE(S_ISFIFO(rs.st_mode));
  EXPECT_EQ(rs.st_mode & 0777, 0600u);
  EXPECT_EQ(rs.st_ino, ws.st_ino);
  EXPECT_EQ(rs.st_dev, ws.st_dev);
  EXPECT_EQ(rs.st_uid, geteuid());
  Pipe q = MakePipe();
  struct stat qs{};
  ASSERT_OK(fstat(q.r.get(), &qs));
  EXPECT_NE(qs.st_ino, rs.st_ino);
}

TEST(PipeTest, ProcFdNamesThePipe) {
  Pipe p = MakePipe();
  struct stat st{};
  ASSERT_OK(fstat(p.r.get(), &st));
  char link[64] = {};
  std::string path = "/proc/self/fd/" + std::to_string(p.r.get());
  ASSERT_OK(readlink(path.c_str(), link, sizeof(link) - 1));
  EXPECT_EQ(std::string(link), "pipe:[" + std::to_string(st.st_ino) + "]");
}

TEST(PipeTest, PipesCannotSeek) {
  Pipe p = MakePipe();
  char c = 'x';
  EXPECT_ERRNO(lseek(p.r.get(), 0, SEEK_SET), ESPIPE);
  EXPECT_ERRNO(lseek(p.w.get(), 0, SEEK_CUR), ESPIPE);
  EXPECT_ERRNO(pwrite(p.w.get(), &c, 1, 0), ESPIPE);
  EXPECT_ERRNO(pread(p.r.get(), &c, 1, 0), ESPIPE);
}

TEST(PipeTest, ClosingTheWriteEndGivesEndOfFile) {
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "last", 4), 4);
  p.w.Reset();
  char buf[8];
  EXPECT_EQ(read(p.r.get(), buf, sizeof(buf)), 4);  // buffered data first
  EXPECT_EQ(read(p.r.get(), buf, sizeof(buf)), 0);
  EXPECT_EQ(read(p.r.get(), buf, sizeof(buf)), 0);
}

TEST(PipeTest, AWriterDupKeepsThePipeOpen) {
  Pipe p = MakePipe(O_NONBLOCK);
  Fd dup_w(dup(p.w.get()));
  ASSERT_TRUE(dup_w.valid());
  p.w.Reset();
  char c;
  EXPECT_ERRNO(read(p.r.get(), &c, 1), EAGAIN);  // a writer remains: not EOF
  dup_w.Reset();
  EXPECT_EQ(read(p.r.get(), &c, 1), 0);
}

TEST(PipeTest, WritingWithoutReadersIsEpipeWhenSigpipeIsIgnored) {
  Pipe p = MakePipe();
  p.r.Reset();
  struct sigaction ign{}, old{};
  ign.sa_handler = SIG_IGN;
  ASSERT_OK(sigaction(SIGPIPE, &ign, &old));
  EXPECT_ERRNO(write(p.w.get(), "x", 1), EPIPE);
  ASSERT_OK(sigaction(SIGPIPE, &old, nullptr));
}

TEST(PipeTest, WritingWithoutReadersKillsWithSigpipeByDefault) {
  Pipe p = MakePipe();
  p.r.Reset();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    ssize_t r = write(p.w.get(), "x", 1);
    _exit(r < 0 ? 3 : 4);  // reached only if SIGPIPE did not kill us
  }
  int status = Wait(pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGPIPE);
}

TEST(PipeTest, NonBlockingEndsGiveEagain) {
  Pipe p = MakePipe(O_NONBLOCK);
  char c;
  EXPECT_ERRNO(read(p.r.get(), &c, 1), EAGAIN);
  // F_SETFL clears O_NONBLOCK on one end only.
  ASSERT_OK(fcntl(p.w.get(), F_SETFL, 0));
  EXPECT_TRUE(fcntl(p.r.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_FALSE(fcntl(p.w.get(), F_GETFL) & O_NONBLOCK);
}

// Fills a non-blocking pipe with writes of `chunk` bytes; returns the total.
size_t Fill(int fd, size_t chunk) {
  std::vector<char> data(chunk, 'z');
  size_t total = 0;
  for (;;) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN);
      return total;
    }
    total += static_cast<size_t>(n);
    if (total > (1 << 20)) {
      ADD_FAILURE() << "the pipe never filled";
      return total;
    }
  }
}

TEST(PipeTest, CapacityIs64KiBAndAFullPipeGivesEagain) {
  Pipe p = MakePipe(O_NONBLOCK);
  EXPECT_EQ(fcntl(p.w.get(), F_GETPIPE_SZ), 65536);
  EXPECT_EQ(fcntl(p.r.get(), F_GETPIPE_SZ), 65536);
  EXPECT_EQ(Fill(p.w.get(), 4096), 65536u);
  int avail = 0;
  ASSERT_OK(ioctl(p.r.get(), FIONREAD, &avail));
  EXPECT_EQ(avail, 65536);
  // Reading a page makes room for a page again.
  std::vector<char> buf(4096);
  ASSERT_EQ(read(p.r.get(), buf.data(), buf.size()), 4096);
  EXPECT_EQ(write(p.w.get(), buf.data(), buf.size()), 4096);
  EXPECT_ERRNO(write(p.w.get(), buf.data(), 1), EAGAIN);
}

TEST(PipeTest, CapacityCountsPageBuffersNotBytes) {
  // Linux keeps 16 page buffers; a 1000-byte write merges into the last
  // buffer only while it fits whole, so four fit per page: 16 * 4000 bytes.
  Pipe p = MakePipe(O_NONBLOCK);
  EXPECT_EQ(Fill(p.w.get(), 1000), 64000u);
  int avail = 0;
  ASSERT_OK(ioctl(p.r.get(), FIONREAD, &avail));
  EXPECT_EQ(avail, 64000);
}

TEST(PipeTest, WritesUpToPipeBufAreAtomic) {
  Pipe p = MakePipe(O_NONBLOCK);
  ASSERT_OK(fcntl(p.w.get(), F_SETPIPE_SZ, 4096 * 2));
  std::vector<char> big(8192 - 100, 'a');
  ASSERT_EQ(write(p.w.get(), big.data(), big.size()), static_cast<ssize_t>(big.size()));
  // 100 bytes of room: a PIPE_BUF-sized write does not go in piecemeal...
  std::vector<char> block(PIPE_BUF, 'b');
  EXPECT_ERRNO(write(p.w.get(), block.data(), block.size()), EAGAIN);
  // ...but a larger, non-atomic one writes what fits: its sub-page
  // remainder (1 byte) merges into the last buffer, and no buffer is free
  // for the rest.
  std::vector<char> bigger(PIPE_BUF + 1, 'c');
  EXPECT_EQ(write(p.w.get(), bigger.data(), bigger.size()), 1);
}

TEST(PipeTest, SetPipeSizeRoundsUpAndRefusesToDropData) {
  Pipe p = MakePipe();
  EXPECT_EQ(fcntl(p.w.get(), F_SETPIPE_SZ, 5000), 8192);
  EXPECT_EQ(fcntl(p.w.get(), F_GETPIPE_SZ), 8192);
  EXPECT_EQ(fcntl(p.w.get(), F_SETPIPE_SZ, 1), 4096);
  std::vector<char> data(4096, 'd');
  ASSERT_EQ(write(p.w.get(), data.data(), data.size()), 4096);
  ASSERT_EQ(fcntl(p.w.get(), F_SETPIPE_SZ, 65536), 65536);
  ASSERT_EQ(write(p.w.get(), data.data(), data.size()), 4096);
  EXPECT_ERRNO(fcntl(p.w.get(), F_SETPIPE_SZ, 4096), EBUSY);
  // The data survived the resizes in order.
  std::vector<char> buf(8192);
  EXPECT_EQ(read(p.r.get(), buf.data(), buf.size()), 8192);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), std::string(8192, 'd'));
  Fd file(open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file.valid());
  EXPECT_ERRNO(fcntl(file.get(), F_GETPIPE_SZ), EBADF);
}

TEST(PipeTest, AReaderBlocksUntilAnotherProcessWrites) {
  Pipe p = MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    p.r.Reset();
    timespec ts{0, 50 * 1000 * 1000};
    nanosleep(&ts, nullptr);
    bool ok = write(p.w.get(), "late", 4) == 4;
    _exit(ok ? 0 : 1);
  }
  p.w.Reset();
  char buf[8] = {};
  EXPECT_EQ(read(p.r.get(), buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "late");
  EXPECT_EQ(read(p.r.get(), buf, sizeof(buf)), 0);  // the child exited: no writers left
  int status = Wait(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(PipeTest, AMegabyteCrossesBetweenProcessesIntact) {
  Pipe p = MakePipe();
  constexpr size_t kSize = 1 << 20;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    p.r.Reset();
    std::vector<unsigned char> data(kSize);
    for (size_t i = 0; i < kSize; i++) data[i] = static_cast<unsigned char>(i * 7 + i / 251);
    // One write larger than the pipe: it blocks until the reader has drained it all.
    ssize_t n = write(p.w.get(), data.data(), data.size());
    _exit(n == static_cast<ssize_t>(kSize) ? 0 : 1);
  }
  p.w.Reset();
  std::vector<unsigned char> got;
  std::vector<unsigned char> buf(10000);
  for (;;) {
    ssize_t n = read(p.r.get(), buf.data(), buf.size());
    ASSERT_GE(n, 0) << husk_test::ErrnoName(errno);
    if (n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + n);
  }
  ASSERT_EQ(got.size(), kSize);
  for (size_t i = 0; i < kSize; i++) {
    ASSERT_EQ(got[i], static_cast<unsigned char>(i * 7 + i / 251)) << "byte " << i;
  }
  int status = Wait(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(PipeTest, AShellPipelineRuns) {
  Pipe p = MakePipe(O_CLOEXEC);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(p.w.get(), 1);
    execl("/bin/sh", "sh", "-c", "printf 'b\\na\\nc\\n' | sort | tr a-z A-Z", nullptr);
    _exit(127);
  }
  p.w.Reset();
  EXPECT_EQ(husk_test::ReadAll(p.r.get()), "A\nB\nC\n");
  int status = Wait(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// O_ASYNC: the reading end's owner hears of each write with SIGIO; without
// O_ASYNC, or once it is off, nothing comes.
TEST(PipeTest, AsyncReadingEndIsSignalledWhenWrittenTo) {
  BlockedSignal sigio(SIGIO);
  Pipe p = MakePipe();
  ASSERT_EQ(fcntl(p.r.get(), F_SETOWN, getpid()), 0);
  ASSERT_EQ(write(p.w.get(), "a", 1), 1);
  EXPECT_EQ(sigio.Wait(200).si_signo, 0) << "a signal without O_ASYNC";
  ASSERT_EQ(fcntl(p.r.get(), F_SETFL, fcntl(p.r.get(), F_GETFL) | O_ASYNC), 0);
  EXPECT_NE(fcntl(p.r.get(), F_GETFL) & O_ASYNC, 0);
  ASSERT_EQ(write(p.w.get(), "b", 1), 1);
  EXPECT_EQ(sigio.Wait(kWaitMs).si_signo, SIGIO);
  ASSERT_EQ(fcntl(p.r.get(), F_SETFL, fcntl(p.r.get(), F_GETFL) & ~O_ASYNC), 0);
  sigio.Drain();
  ASSERT_EQ(write(p.w.get(), "c", 1), 1);
  EXPECT_EQ(sigio.Wait(200).si_signo, 0) << "a signal after O_ASYNC was cleared";
}

// F_SETSIG's signal says which end and why: POLL_IN and the reading end's
// descriptor for a write, POLL_OUT and the writing end's for room made in
// a full pipe.
TEST(PipeTest, FSetsigNamesTheEndAndTheReason) {
  const int sig = SIGRTMIN + 3;
  BlockedSignal rt(sig);
  Pipe p = MakePipe();
  for (int fd : {p.r.get(), p.w.get()}) {
    ASSERT_EQ(fcntl(fd, F_SETOWN, getpid()), 0);
    ASSERT_EQ(fcntl(fd, F_SETSIG, sig), 0);
    ASSERT_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK), 0);
  }
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  siginfo_t in = rt.Wait(kWaitMs);
  ASSERT_EQ(in.si_signo, sig);
  EXPECT_EQ(in.si_code, POLL_IN);
  EXPECT_EQ(in.si_fd, p.r.get());
  EXPECT_NE(in.si_band & POLLIN, 0);
  // Full, then the signals of the filling taken, then room made.
  std::vector<char> chunk(4096, 'y');
  while (write(p.w.get(), chunk.data(), chunk.size()) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  usleep(100 * 1000);  // husk signals from a thread of its own: let it catch up
  rt.Drain();
  ASSERT_GT(read(p.r.get(), chunk.data(), chunk.size()), 0);
  siginfo_t out = rt.Wait(kWaitMs);
  ASSERT_EQ(out.si_signo, sig);
  EXPECT_EQ(out.si_code, POLL_OUT);
  EXPECT_EQ(out.si_fd, p.w.get());
  EXPECT_NE(out.si_band & POLLOUT, 0);
  // Closing either end signals the other (pipe_release): off first, so that
  // nothing is left pending when the signal is unblocked.
  for (int fd : {p.r.get(), p.w.get()}) {
    ASSERT_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_ASYNC), 0);
  }
  p.w.Reset();
  p.r.Reset();
  usleep(100 * 1000);
  rt.Drain();
}

}  // namespace
