// Host files (the sandbox's stdio): data I/O through pipes, socketpairs and
// terminals, the blocking hook, and what must never reach the host.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/fsimpl/host/host_file.h"
#include "sentry/memfile/memfile.h"
#include "sentry/mm/mm.h"

namespace husk::hostfs {
namespace {

// How long a helper thread waits for the file to release the "kernel lock"
// before it reports that the hook was not called (and unblocks the file
// anyway, so that a failure is a message rather than a hang).
constexpr auto kHookTimeout = std::chrono::seconds(20);

struct Pair {
  UniqueFd a, b;
};

Pair MakePipe() {
  int fds[2] = {-1, -1};
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0) << strerror(errno);
  return Pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Pair MakeSocketPair() {
  int fds[2] = {-1, -1};
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0) << strerror(errno);
  return Pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

vfs::FileRef MustWrap(UniqueFd fd, int flags, std::function<void(bool)> hook = nullptr) {
  auto f = NewHostFile(std::move(fd), flags, std::move(hook));
  EXPECT_OK(f);
  return *std::move(f);  // throws (failing the test) if it did not
}

std::string ReadSome(const vfs::FileRef& f, size_t n = 4096) {
  std::string buf(n, '\0');
  auto r = f->Read(buf.data(), n);
  EXPECT_OK(r);
  buf.resize(r.ok() ? *r : 0);
  return buf;
}

// Records the hook's calls, and behaves like the kernel's hook: "entering"
// drops `lock`, "leaving" takes it back.
struct HookLog {
  std::timed_mutex lock;
  std::vector<bool> calls;  // touched only by the thread doing the I/O

  std::function<void(bool)> Hook() {
    return [this](bool entering) {
      calls.push_back(entering);
      if (entering) {
        lock.unlock();
      } else {
        lock.lock();
      }
    };
  }
};

TEST(HostFileTest, RefusesAnInvalidDescriptor) {
  EXPECT_ERRNO(NewHostFile(UniqueFd(), O_RDONLY, nullptr), EBADF);
}

TEST(HostFileTest, ReadsAndWritesThroughAPipe) {
  Pair p = MakePipe();
  int raw_r = p.a.get(), raw_w = p.b.get();
  vfs::FileRef r = MustWrap(std::move(p.a), O_RDONLY);
  vfs::FileRef w = MustWrap(std::move(p.b), O_WRONLY);
  EXPECT_EQ(r->HostFd(), raw_r);
  EXPECT_EQ(w->HostFd(), raw_w);

  auto n = w->Write("hello, pipe", 11);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 11u);
  EXPECT_EQ(ReadSome(r, 5), "hello");
  EXPECT_EQ(ReadSome(r), ", pipe");
  EXPECT_EQ(*w->Write("", 0), 0u);

  // The access mode given at wrapping decides, whatever the host fd allows.
  char c;
  EXPECT_ERRNO(r->Write("x", 1), EBADF);
  EXPECT_ERRNO(w->Read(&c, 1), EBADF);

  // The writer's close is end-of-file for the reader.
  w.reset();
  EXPECT_EQ(*r->Read(&c, 1), 0u);
}

TEST(HostFileTest, ReadsAndWritesBothWaysThroughASocketPair) {
  Pair s = MakeSocketPair();
  vfs::FileRef a = MustWrap(std::move(s.a), O_RDWR);
  vfs::FileRef b = MustWrap(std::move(s.b), O_RDWR);
  ASSERT_OK(a->Write("ping", 4));
  EXPECT_EQ(ReadSome(b), "ping");
  ASSERT_OK(b->Write("pong", 4));
  EXPECT_EQ(ReadSome(a), "pong");
}

TEST(HostFileTest, WritesEverythingItIsGiven) {
  // More than a pipe holds: the reader drains it concurrently, and the one
  // Write call returns only when all of it went through.
  Pair p = MakePipe();
  vfs::FileRef w = MustWrap(std::move(p.b), O_WRONLY);
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 13 + i / 4096);
  std::string got;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = read(p.a.get(), buf, sizeof(buf))) > 0) got.append(buf, n);
  });
  auto n = w->Write(data.data(), data.size());
  w.reset();
  reader.join();
  ASSERT_OK(n);
  EXPECT_EQ(*n, data.size());
  EXPECT_TRUE(got == data) << "got " << got.size() << " bytes, not the " << data.size()
                           << " written";
}

TEST(HostFileTest, WriteToAPipeWithoutReadersIsEpipe) {
  // The sentry ignores SIGPIPE; the syscall layer raises it for the application.
  struct sigaction ign = {}, old = {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ign, &old), 0);
  Pair p = MakePipe();
  vfs::FileRef w = MustWrap(std::move(p.b), O_WRONLY);
  p.a.Reset();
  EXPECT_ERRNO(w->Write("x", 1), EPIPE);
  sigaction(SIGPIPE, &old, nullptr);
}

TEST(HostFileTest, NonBlockingHostDescriptorsGiveEagain) {
  Pair p = MakePipe();
  ASSERT_EQ(fcntl(p.a.get(), F_SETFL, O_NONBLOCK), 0);
  vfs::FileRef r = MustWrap(std::move(p.a), O_RDONLY);
  char c;
  EXPECT_ERRNO(r->Read(&c, 1), EAGAIN);
}

TEST(HostFileTest, HookIsCalledAroundEachReadAndWrite) {
  HookLog log;
  log.lock.lock();
  Pair p = MakePipe();
  vfs::FileRef r = MustWrap(std::move(p.a), O_RDONLY, log.Hook());
  vfs::FileRef w = MustWrap(std::move(p.b), O_WRONLY, log.Hook());
  ASSERT_OK(w->Write("abc", 3));
  EXPECT_EQ(log.calls, (std::vector<bool>{true, false}));
  EXPECT_EQ(ReadSome(r), "abc");
  EXPECT_EQ(log.calls, (std::vector<bool>{true, false, true, false}));
  // A failing read leaves the hook balanced too.
  ASSERT_EQ(fcntl(r->HostFd(), F_SETFL, O_NONBLOCK), 0);
  char c;
  EXPECT_ERRNO(r->Read(&c, 1), EAGAIN);
  EXPECT_EQ(log.calls, (std::vector<bool>{true, false, true, false, true, false}));
  log.lock.unlock();
}

TEST(HostFileTest, BlockedReadRunsWithTheLockReleased) {
  HookLog log;
  log.lock.lock();
  Pair p = MakePipe();
  vfs::FileRef r = MustWrap(std::move(p.a), O_RDONLY, log.Hook());
  UniqueFd w = std::move(p.b);
  // The helper can take the lock only once the read has released it; then
  // it feeds the pipe the read is waiting on.
  std::atomic<bool> got_lock{false};
  std::thread writer([&] {
    got_lock = log.lock.try_lock_for(kHookTimeout);
    EXPECT_EQ(write(w.get(), "late", 4), 4);
    if (got_lock) log.lock.unlock();
  });
  std::string got = ReadSome(r);
  writer.join();
  EXPECT_TRUE(got_lock) << "the read blocked without calling the hook";
  EXPECT_EQ(got, "late");
  EXPECT_EQ(log.calls, (std::vector<bool>{true, false}));
  log.lock.unlock();
}

TEST(HostFileTest, BlockedWriteRunsWithTheLockReleased) {
  HookLog log;
  log.lock.lock();
  Pair p = MakePipe();
  // Fill the pipe so that the next write blocks.
  ASSERT_EQ(fcntl(p.b.get(), F_SETFL, O_NONBLOCK), 0);
  std::string chunk(4096, 'f');
  size_t filled = 0;
  for (;;) {
    ssize_t n = write(p.b.get(), chunk.data(), chunk.size());
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      break;
    }
    filled += static_cast<size_t>(n);
  }
  ASSERT_EQ(fcntl(p.b.get(), F_SETFL, 0), 0);
  vfs::FileRef w = MustWrap(std::move(p.b), O_WRONLY, log.Hook());
  UniqueFd r = std::move(p.a);
  const std::string extra(100, 'x');
  std::atomic<bool> got_lock{false};
  std::string drained;
  std::thread reader([&] {
    got_lock = log.lock.try_lock_for(kHookTimeout);
    char buf[65536];
    while (drained.size() < filled + extra.size()) {
      ssize_t n = read(r.get(), buf, sizeof(buf));
      if (n <= 0) break;
      drained.append(buf, n);
    }
    if (got_lock) log.lock.unlock();
  });
  auto n = w->Write(extra.data(), extra.size());
  reader.join();
  EXPECT_TRUE(got_lock) << "the write blocked without calling the hook";
  ASSERT_OK(n);
  EXPECT_EQ(*n, extra.size());
  EXPECT_EQ(drained, std::string(filled, 'f') + extra);
  EXPECT_EQ(log.calls, (std::vector<bool>{true, false}));
  log.lock.unlock();
}

TEST(HostFileTest, StatShowsTheHostFileType) {
  Pair p = MakePipe();
  struct stat host = {};
  ASSERT_EQ(fstat(p.a.get(), &host), 0);
  vfs::FileRef pipe_file = MustWrap(std::move(p.a), O_RDONLY);
  auto st = pipe_file->Stat();
  ASSERT_OK(st);
  EXPECT_TRUE(S_ISFIFO(st->st_mode));
  // Numbers of the sentry's own: nothing that identifies the host object.
  EXPECT_NE(st->st_ino, host.st_ino);
  EXPECT_NE(st->st_dev, host.st_dev);
  EXPECT_EQ(st->st_uid, 0u);
  EXPECT_EQ(pipe_file->Stat()->st_ino, st->st_ino);  // stable for the file's life
  EXPECT_EQ(pipe_file->inode()->Type(), S_IFIFO);

  Pair s = MakeSocketPair();
  vfs::FileRef sock = MustWrap(std::move(s.a), O_RDWR);
  EXPECT_TRUE(S_ISSOCK(sock->Stat()->st_mode));
  EXPECT_EQ(sock->inode()->Type(), S_IFSOCK);

  vfs::FileRef null = MustWrap(UniqueFd(open("/dev/null", O_RDWR | O_CLOEXEC)), O_RDWR);
  EXPECT_TRUE(S_ISCHR(null->Stat()->st_mode));
  EXPECT_EQ(null->Stat()->st_rdev, makedev(1, 3));
  EXPECT_EQ(null->inode()->Type(), S_IFCHR);
}

TEST(HostFileTest, PositionsDoNotExist) {
  Pair p = MakePipe();
  vfs::FileRef r = MustWrap(std::move(p.a), O_RDONLY);
  vfs::FileRef w = MustWrap(std::move(p.b), O_WRONLY);
  EXPECT_ERRNO(r->Seek(0, SEEK_SET), ESPIPE);
  EXPECT_ERRNO(r->Seek(0, SEEK_CUR), ESPIPE);
  EXPECT_ERRNO(w->Seek(10, SEEK_END), ESPIPE);
  char c;
  EXPECT_ERRNO(r->PRead(&c, 1, 0), ESPIPE);
  EXPECT_ERRNO(w->PWrite("x", 1, 0), ESPIPE);
  EXPECT_TRUE(r->inode()->Stream());
  // And there is nothing to mmap.
  EXPECT_EQ(r->GetMappable(), nullptr);
}

// A platform address space that installs nothing: the MM's copies go
// through the memory file, which is all these tests read.
class NullAddressSpace : public platform::AddressSpace {
 public:
  Status MapFile(uintptr_t, uint64_t, size_t, int) override { return Ok(); }
  Status Unmap(uintptr_t, size_t) override { return Ok(); }
};

// An application address space with one read-write page at kPage.
class IoctlTest : public ::testing::Test {
 protected:
  static constexpr uintptr_t kPage = 0x10000000;

  void SetUp() override {
    auto mf = MemoryFile::Create(1 << 20);
    ASSERT_OK(mf);
    mf_ = *std::move(mf);
    mm_ = std::make_unique<MemoryManager>(*mf_, std::make_unique<NullAddressSpace>(), 0x10000,
                                          uintptr_t{1} << 40);
    MmapRequest req;
    req.addr = kPage;
    req.length = 4096;
    req.prot = PROT_READ | PROT_WRITE;
    req.flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    ASSERT_OK(mm_->Mmap(req));
    // Poison it, so that a copy-out that did not happen shows.
    std::string junk(4096, '\x5a');
    ASSERT_OK(mm_->CopyOut(kPage, junk.data(), junk.size()));
  }

  std::unique_ptr<MemoryFile> mf_;
  std::unique_ptr<MemoryManager> mm_;
};

TEST_F(IoctlTest, TerminalQueriesOnANonTerminalAreEnotty) {
  Pair p = MakePipe();
  vfs::FileRef r = MustWrap(std::move(p.a), O_RDONLY);
  EXPECT_ERRNO(r->Ioctl(*mm_, TCGETS, kPage), ENOTTY);
  EXPECT_ERRNO(r->Ioctl(*mm_, TIOCGWINSZ, kPage), ENOTTY);
  vfs::FileRef null = MustWrap(UniqueFd(open("/dev/null", O_RDWR | O_CLOEXEC)), O_RDWR);
  EXPECT_ERRNO(null->Ioctl(*mm_, TCGETS, kPage), ENOTTY);
  unsigned char first = 0;
  ASSERT_OK(mm_->CopyIn(kPage, &first, 1));
  EXPECT_EQ(first, 0x5a) << "a failed ioctl wrote to the application";
}

TEST_F(IoctlTest, FionreadCountsTheBytesWaiting) {
  Pair p = MakePipe();
  ASSERT_EQ(write(p.b.get(), "12345", 5), 5);
  vfs::FileRef r = MustWrap(std::move(p.a), O_RDONLY);
  auto res = r->Ioctl(*mm_, FIONREAD, kPage + 8);
  ASSERT_OK(res);
  EXPECT_EQ(*res, 0);
  int n = -1;
  ASSERT_OK(mm_->CopyIn(kPage + 8, &n, sizeof(n)));
  EXPECT_EQ(n, 5);
  // An address the application has not mapped.
  EXPECT_ERRNO(r->Ioctl(*mm_, FIONREAD, kPage + 4096), EFAULT);
}

// The kernel's struct termios, which TCGETS copies out (asm-generic/termbits.h).
struct KernelTermios {
  tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
  cc_t c_line;
  cc_t c_cc[19];
};
static_assert(sizeof(KernelTermios) == 36);

// A pseudo-terminal pair; `slave` is the terminal a program would have.
class TerminalTest : public IoctlTest {
 protected:
  void SetUp() override {
    IoctlTest::SetUp();
    master_.Reset(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master_.valid()) GTEST_SKIP() << "no pseudo-terminals here: " << strerror(errno);
    ASSERT_EQ(grantpt(master_.get()), 0);
    ASSERT_EQ(unlockpt(master_.get()), 0);
    const char* name = ptsname(master_.get());
    ASSERT_NE(name, nullptr);
    slave_.Reset(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
    ASSERT_TRUE(slave_.valid()) << name << ": " << strerror(errno);
  }

  UniqueFd master_, slave_;
};

TEST_F(TerminalTest, TcgetsCopiesOutTheKernelTermiosAndNothingMore) {
  // What the host kernel writes for TCGETS: 36 bytes and no more.
  unsigned char host[64];
  memset(host, 0x5a, sizeof(host));
  ASSERT_EQ(ioctl(slave_.get(), TCGETS, host), 0);
  ASSERT_EQ(host[sizeof(KernelTermios)], 0x5a) << "the host wrote more than a kernel termios";

  vfs::FileRef tty = MustWrap(std::move(slave_), O_RDWR);
  auto r = tty->Ioctl(*mm_, TCGETS, kPage);
  ASSERT_OK(r);
  EXPECT_EQ(*r, 0);
  std::string page(4096, '\0');
  ASSERT_OK(mm_->CopyIn(kPage, page.data(), page.size()));
  EXPECT_EQ(memcmp(page.data(), host, sizeof(KernelTermios)), 0);
  // glibc's tcgetattr passes a 36-byte buffer: anything beyond is its stack.
  size_t past = page.find_first_not_of('\x5a', sizeof(KernelTermios));
  EXPECT_EQ(past, std::string::npos)
      << "TCGETS wrote byte " << past << ", past the kernel's struct termios";
}

TEST_F(TerminalTest, TiocgwinszCopiesOutTheWindowSize) {
  struct winsize set = {24, 80, 0, 0};
  set.ws_row = 33;
  set.ws_col = 111;
  ASSERT_EQ(ioctl(master_.get(), TIOCSWINSZ, &set), 0);
  vfs::FileRef tty = MustWrap(std::move(slave_), O_RDWR);
  ASSERT_OK(tty->Ioctl(*mm_, TIOCGWINSZ, kPage));
  struct winsize got = {};
  ASSERT_OK(mm_->CopyIn(kPage, &got, sizeof(got)));
  EXPECT_EQ(got.ws_row, 33);
  EXPECT_EQ(got.ws_col, 111);
  EXPECT_ERRNO(tty->Ioctl(*mm_, TIOCGWINSZ, kPage + 4096), EFAULT);
}

TEST_F(TerminalTest, OtherRequestsNeverReachTheHost) {
  struct termios before = {};
  ASSERT_EQ(tcgetattr(slave_.get(), &before), 0);
  vfs::FileRef tty = MustWrap(std::move(slave_), O_RDWR);
  // Changing the terminal or pushing input into it is refused: TCSETS with
  // raw mode, and TIOCSTI, which would type into the user's terminal.
  KernelTermios raw;
  ASSERT_EQ(ioctl(tty->HostFd(), TCGETS, &raw), 0);
  raw.c_lflag &= ~(ICANON | ECHO | ISIG);
  ASSERT_OK(mm_->CopyOut(kPage, &raw, sizeof(raw)));
  EXPECT_ERRNO(tty->Ioctl(*mm_, TCSETS, kPage), ENOTTY);
  ASSERT_OK(mm_->CopyOut(kPage, "x", 1));
  EXPECT_ERRNO(tty->Ioctl(*mm_, TIOCSTI, kPage), ENOTTY);
  struct termios after = {};
  ASSERT_EQ(tcgetattr(tty->HostFd(), &after), 0);
  EXPECT_EQ(after.c_lflag, before.c_lflag) << "the host terminal changed";
  int pending = -1;
  ASSERT_EQ(ioctl(tty->HostFd(), FIONREAD, &pending), 0);
  EXPECT_EQ(pending, 0) << "input was injected";
}

}  // namespace
}  // namespace husk::hostfs
