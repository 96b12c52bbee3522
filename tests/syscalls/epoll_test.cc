// epoll_create(2), epoll_create1(2), epoll_ctl(2), epoll_wait(2),
// epoll_pwait(2) and epoll_pwait2(2): the argument checks, level- and
// edge-triggered reports for pipes and eventfds, EPOLLONESHOT, user data,
// POLLHUP/POLLERR, closed descriptions leaving the set, nesting and loops,
// timeouts, signals, and an instance shared with a child.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::Fd;
using husk_test::MakePipe;
using husk_test::NowMs;
using husk_test::Pause;
using husk_test::Pipe;
using husk_test::Wait;

Fd MakeEpoll() {
  Fd fd(epoll_create1(EPOLL_CLOEXEC));
  EXPECT_TRUE(fd.valid()) << husk_test::ErrnoName(errno);
  return fd;
}

int Ctl(int ep, int op, int fd, uint32_t events, uint64_t data = 0) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  return epoll_ctl(ep, op, fd, &ev);
}

// Waits without blocking; returns what epoll_wait reported.
std::vector<epoll_event> Ready(int ep, int max = 16, int timeout_ms = 0) {
  std::vector<epoll_event> events(max);
  int n = epoll_wait(ep, events.data(), max, timeout_ms);
  EXPECT_GE(n, 0) << husk_test::ErrnoName(errno);
  events.resize(n < 0 ? 0 : n);
  return events;
}

TEST(EpollTest, CreateAndItsFlags) {
  Fd a(epoll_create(1));
  ASSERT_TRUE(a.valid());
  EXPECT_EQ(fcntl(a.get(), F_GETFD), 0);
  EXPECT_EQ(fcntl(a.get(), F_GETFL), O_RDWR);
  Fd b(epoll_create1(EPOLL_CLOEXEC));
  ASSERT_TRUE(b.valid());
  EXPECT_EQ(fcntl(b.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_ERRNO(epoll_create(0), EINVAL);
  EXPECT_ERRNO(epoll_create(-1), EINVAL);
  EXPECT_ERRNO(epoll_create1(1), EINVAL);
  EXPECT_ERRNO(epoll_create1(O_NONBLOCK), EINVAL);
}

TEST(EpollTest, TheInstanceIsAnAnonymousFile) {
  Fd ep = MakeEpoll();
  struct stat st {};
  ASSERT_OK(fstat(ep.get(), &st));
  EXPECT_EQ(st.st_mode, 0600u);
  char link[64] = {};
  std::string path = "/proc/self/fd/" + std::to_string(ep.get());
  ASSERT_GT(readlink(path.c_str(), link, sizeof(link) - 1), 0);
  EXPECT_STREQ(link, "anon_inode:[eventpoll]");
  char buf[8];
  EXPECT_ERRNO(read(ep.get(), buf, sizeof(buf)), EINVAL);
  EXPECT_ERRNO(write(ep.get(), buf, sizeof(buf)), EINVAL);
}

TEST(EpollTest, CtlErrors) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  husk_test::TempDir dir;
  ASSERT_TRUE(husk_test::WriteFile(dir.Join("f"), "x"));
  Fd file(open(dir.Join("f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file.valid());
  Fd dirfd(open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dirfd.valid());
  Fd path(open(dir.path().c_str(), O_PATH | O_CLOEXEC));
  ASSERT_TRUE(path.valid());

  EXPECT_ERRNO(Ctl(-1, EPOLL_CTL_ADD, p.r.get(), EPOLLIN), EBADF);
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_ADD, -1, EPOLLIN), EBADF);
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_ADD, path.get(), EPOLLIN), EBADF);
  // Files that never block cannot be watched.
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_ADD, file.get(), EPOLLIN), EPERM);
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_ADD, dirfd.get(), EPOLLIN), EPERM);
  // The first descriptor must be an epoll instance, and not the target.
  EXPECT_ERRNO(Ctl(p.w.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN), EINVAL);
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_ADD, ep.get(), EPOLLIN), EINVAL);

  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_MOD, p.r.get(), EPOLLIN), ENOENT);
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_DEL, p.r.get(), 0), ENOENT);
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN));
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN), EEXIST);
  EXPECT_ERRNO(Ctl(ep.get(), 99, p.r.get(), EPOLLIN), EINVAL);
  // The event is read before anything else, except for EPOLL_CTL_DEL.
  EXPECT_ERRNO(epoll_ctl(ep.get(), 99, -1, nullptr), EFAULT);
  EXPECT_ERRNO(epoll_ctl(ep.get(), EPOLL_CTL_MOD, p.r.get(), nullptr), EFAULT);
  EXPECT_EQ(epoll_ctl(ep.get(), EPOLL_CTL_DEL, p.r.get(), nullptr), 0);
  EXPECT_ERRNO(epoll_ctl(ep.get(), EPOLL_CTL_DEL, p.r.get(), nullptr), ENOENT);
}

TEST(EpollTest, ExclusiveWakeupRules) {
  Fd ep = MakeEpoll();
  Fd inner = MakeEpoll();
  Pipe p = MakePipe();
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN | EPOLLPRI | EPOLLEXCLUSIVE),
               EINVAL);
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_ADD, inner.get(), EPOLLIN | EPOLLEXCLUSIVE), EINVAL);
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN | EPOLLEXCLUSIVE));
  // An exclusive interest cannot be modified, nor can MOD ask for it.
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_MOD, p.r.get(), EPOLLIN), EINVAL);
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.w.get(), EPOLLOUT));
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_MOD, p.w.get(), EPOLLOUT | EPOLLEXCLUSIVE), EINVAL);
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  auto events = Ready(ep.get());
  EXPECT_EQ(events.size(), 2u);
}

TEST(EpollTest, WaitErrors) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  epoll_event ev[2];
  EXPECT_ERRNO(epoll_wait(ep.get(), ev, 0, 0), EINVAL);
  EXPECT_ERRNO(syscall(SYS_epoll_wait, ep.get(), ev, -1, 0), EINVAL);
  EXPECT_ERRNO(epoll_wait(-1, ev, 2, 0), EBADF);
  EXPECT_ERRNO(epoll_wait(p.r.get(), ev, 2, 0), EINVAL);
  // Kernel addresses fail up front; user addresses only when an event lands.
  EXPECT_ERRNO(syscall(SYS_epoll_wait, ep.get(), 0xffff800000000000ULL, 2, 0), EFAULT);
  EXPECT_EQ(syscall(SYS_epoll_wait, ep.get(), nullptr, 2, 0), 0);
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.w.get(), EPOLLOUT));
  EXPECT_ERRNO(syscall(SYS_epoll_wait, ep.get(), nullptr, 2, 0), EFAULT);
  // The event that could not be copied is still there.
  EXPECT_EQ(Ready(ep.get()).size(), 1u);
}

TEST(EpollTest, LevelTriggeredReportsWhileReady) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN, 0x123456789abcdef0ULL));
  EXPECT_TRUE(Ready(ep.get()).empty());
  ASSERT_EQ(write(p.w.get(), "ab", 2), 2);
  for (int i = 0; i < 2; i++) {
    auto events = Ready(ep.get());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].events, static_cast<uint32_t>(EPOLLIN));
    EXPECT_EQ(events[0].data.u64, 0x123456789abcdef0ULL);
  }
  char buf[2];
  ASSERT_EQ(read(p.r.get(), buf, 2), 2);
  EXPECT_TRUE(Ready(ep.get()).empty());
}

TEST(EpollTest, ReportedEventsAreOnlyThoseAskedFor) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN | EPOLLRDNORM | EPOLLOUT));
  auto events = Ready(ep.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].events, static_cast<uint32_t>(EPOLLIN | EPOLLRDNORM));
  // MOD to events that never hold silences it.
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_MOD, p.r.get(), EPOLLOUT));
  EXPECT_TRUE(Ready(ep.get()).empty());
}

TEST(EpollTest, EdgeTriggeredReportsEachWriteOnce) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN | EPOLLET, 7));
  ASSERT_EQ(write(p.w.get(), "a", 1), 1);
  auto events = Ready(ep.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].events, static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(events[0].data.u64, 7u);
  EXPECT_TRUE(Ready(ep.get()).empty());
  // A new write is a new edge although the pipe stayed readable.
  ASSERT_EQ(write(p.w.get(), "b", 1), 1);
  EXPECT_EQ(Ready(ep.get()).size(), 1u);
  EXPECT_TRUE(Ready(ep.get()).empty());
  // Reading is no edge for a reader.
  char c;
  ASSERT_EQ(read(p.r.get(), &c, 1), 1);
  EXPECT_TRUE(Ready(ep.get()).empty());
}

TEST(EpollTest, EdgeTriggeredWriteEndWakesWhenAFullPipeDrains) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe(O_NONBLOCK);
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.w.get(), EPOLLOUT | EPOLLET));
  // Writable when added: one edge.
  ASSERT_EQ(Ready(ep.get()).size(), 1u);
  EXPECT_TRUE(Ready(ep.get()).empty());
  std::string page(4096, 'x');
  while (write(p.w.get(), page.data(), page.size()) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  EXPECT_TRUE(Ready(ep.get()).empty());
  // Freeing one page buffer makes it writable again.
  ASSERT_EQ(read(p.r.get(), page.data(), page.size()), 4096);
  auto events = Ready(ep.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].events, static_cast<uint32_t>(EPOLLOUT));
}

TEST(EpollTest, OneShotDisarmsUntilModified) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN | EPOLLONESHOT, 1));
  ASSERT_EQ(write(p.w.get(), "a", 1), 1);
  EXPECT_EQ(Ready(ep.get()).size(), 1u);
  ASSERT_EQ(write(p.w.get(), "b", 1), 1);
  EXPECT_TRUE(Ready(ep.get()).empty());
  // Even a hang-up waits for re-arming.
  p.w.Reset();
  EXPECT_TRUE(Ready(ep.get()).empty());
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_MOD, p.r.get(), EPOLLIN | EPOLLONESHOT, 2));
  auto events = Ready(ep.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data.u64, 2u);
  EXPECT_TRUE(Ready(ep.get()).empty());
  // A disarmed interest can still be deleted.
  EXPECT_EQ(Ctl(ep.get(), EPOLL_CTL_DEL, p.r.get(), 0), 0);
}

TEST(EpollTest, LevelTriggeredInterestsTakeTurns) {
  Fd ep = MakeEpoll();
  Pipe a = MakePipe();
  Pipe b = MakePipe();
  ASSERT_EQ(write(a.w.get(), "a", 1), 1);
  ASSERT_EQ(write(b.w.get(), "b", 1), 1);
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, a.r.get(), EPOLLIN, 'a'));
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, b.r.get(), EPOLLIN, 'b'));
  std::string order;
  for (int i = 0; i < 4; i++) {
    auto events = Ready(ep.get(), 1);
    ASSERT_EQ(events.size(), 1u);
    order += static_cast<char>(events[0].data.u64);
  }
  EXPECT_EQ(order, "abab");
  EXPECT_EQ(Ready(ep.get()).size(), 2u);
}

TEST(EpollTest, HangupAndErrorAreAlwaysReported) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  Pipe q = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), 0, 1));
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, q.w.get(), EPOLLOUT, 2));
  // q's write end is writable: only that.
  auto events = Ready(ep.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data.u64, 2u);
  p.w.Reset();
  q.r.Reset();
  events = Ready(ep.get());
  ASSERT_EQ(events.size(), 2u);
  for (const epoll_event& e : events) {
    if (e.data.u64 == 1) {
      EXPECT_EQ(e.events, static_cast<uint32_t>(EPOLLHUP));
    } else {
      EXPECT_EQ(e.events, static_cast<uint32_t>(EPOLLOUT | EPOLLERR));
    }
  }
}

TEST(EpollTest, EdgeTriggeredHangupIsAnEdge) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN | EPOLLET));
  EXPECT_TRUE(Ready(ep.get()).empty());
  p.w.Reset();
  auto events = Ready(ep.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].events, static_cast<uint32_t>(EPOLLHUP));
  EXPECT_TRUE(Ready(ep.get()).empty());
}

TEST(EpollTest, ClosingTheLastDescriptorLeavesTheSet) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  int fd = p.r.get();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, fd, EPOLLIN, 1));
  ASSERT_EQ(Ready(ep.get()).size(), 1u);
  p.r.Reset();
  EXPECT_TRUE(Ready(ep.get()).empty());
  // The same descriptor number for a new file is a new interest.
  Pipe q = MakePipe();
  ASSERT_EQ(q.r.get(), fd);
  EXPECT_EQ(Ctl(ep.get(), EPOLL_CTL_ADD, fd, EPOLLIN, 2), 0);
}

TEST(EpollTest, ADuplicateKeepsTheDescriptionInTheSet) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN, 5));
  Fd dup_fd(dup(p.r.get()));
  int fd = p.r.get();
  p.r.Reset();
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  auto events = Ready(ep.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data.u64, 5u);
  // It cannot be named any more: its descriptor is closed.
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_DEL, fd, 0), EBADF);
  // Nor through the duplicate, which is another (file, fd) pair.
  EXPECT_ERRNO(Ctl(ep.get(), EPOLL_CTL_DEL, dup_fd.get(), 0), ENOENT);
}

TEST(EpollTest, DupedDescriptorsAreSeparateInterests) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  Fd dup_fd(dup(p.r.get()));
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN, 1));
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, dup_fd.get(), EPOLLIN, 2));
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  EXPECT_EQ(Ready(ep.get()).size(), 2u);
}

TEST(EpollTest, EventfdLevelAndEdge) {
  Fd ep = MakeEpoll();
  Fd lt(eventfd(0, EFD_NONBLOCK));
  Fd et(eventfd(0, EFD_NONBLOCK));
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, lt.get(), EPOLLIN, 1));
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, et.get(), EPOLLIN | EPOLLET, 2));
  EXPECT_TRUE(Ready(ep.get()).empty());
  uint64_t one = 1;
  ASSERT_EQ(write(lt.get(), &one, 8), 8);
  ASSERT_EQ(write(et.get(), &one, 8), 8);
  EXPECT_EQ(Ready(ep.get()).size(), 2u);
  auto events = Ready(ep.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data.u64, 1u);
  // Another write is another edge; a read takes the level away.
  ASSERT_EQ(write(et.get(), &one, 8), 8);
  EXPECT_EQ(Ready(ep.get()).size(), 2u);
  uint64_t v;
  ASSERT_EQ(read(lt.get(), &v, 8), 8);
  EXPECT_TRUE(Ready(ep.get()).empty());
}

TEST(EpollTest, EpollInstancesNest) {
  Fd outer = MakeEpoll();
  Fd inner = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(inner.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN, 1));
  ASSERT_OK(Ctl(outer.get(), EPOLL_CTL_ADD, inner.get(), EPOLLIN, 2));
  EXPECT_TRUE(Ready(outer.get()).empty());
  pollfd pfd{inner.get(), POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  EXPECT_EQ(poll(&pfd, 1, 0), 1);
  EXPECT_EQ(pfd.revents, POLLIN);
  auto events = Ready(outer.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].events, static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(events[0].data.u64, 2u);
  // Polling the inner instance consumed nothing.
  events = Ready(inner.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data.u64, 1u);
}

TEST(EpollTest, LoopsAreRefused) {
  Fd a = MakeEpoll();
  Fd b = MakeEpoll();
  Fd c = MakeEpoll();
  ASSERT_OK(Ctl(a.get(), EPOLL_CTL_ADD, b.get(), EPOLLIN));
  ASSERT_OK(Ctl(b.get(), EPOLL_CTL_ADD, c.get(), EPOLLIN));
  EXPECT_ERRNO(Ctl(c.get(), EPOLL_CTL_ADD, a.get(), EPOLLIN), ELOOP);
  EXPECT_ERRNO(Ctl(b.get(), EPOLL_CTL_ADD, a.get(), EPOLLIN), ELOOP);
  // A diamond is no loop.
  ASSERT_OK(Ctl(a.get(), EPOLL_CTL_ADD, c.get(), EPOLLIN));
}

TEST(EpollTest, NestingCanBeReversed) {
  Fd a = MakeEpoll();
  Fd b = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(a.get(), EPOLL_CTL_ADD, b.get(), EPOLLIN));
  ASSERT_OK(Ctl(b.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN));
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  EXPECT_EQ(Ready(a.get()).size(), 1u);
  ASSERT_OK(Ctl(a.get(), EPOLL_CTL_DEL, b.get(), 0));
  ASSERT_OK(Ctl(b.get(), EPOLL_CTL_DEL, p.r.get(), 0));
  ASSERT_OK(Ctl(b.get(), EPOLL_CTL_ADD, a.get(), EPOLLIN));
  ASSERT_OK(Ctl(a.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN));
  ASSERT_EQ(write(p.w.get(), "y", 1), 1);
  EXPECT_EQ(Ready(b.get()).size(), 1u);
  EXPECT_EQ(Ready(a.get()).size(), 1u);
}

TEST(EpollTest, WatchedFilesAndInstancesCanBeClosed) {
  Fd outer = MakeEpoll();
  Fd inner = MakeEpoll();
  Fd efd(eventfd(0, EFD_NONBLOCK));
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(inner.get(), EPOLL_CTL_ADD, efd.get(), EPOLLIN, 1));
  ASSERT_OK(Ctl(inner.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN, 2));
  ASSERT_OK(Ctl(outer.get(), EPOLL_CTL_ADD, inner.get(), EPOLLIN, 3));
  uint64_t one = 1;
  ASSERT_EQ(write(efd.get(), &one, 8), 8);
  EXPECT_EQ(Ready(outer.get()).size(), 1u);
  efd.Reset();
  EXPECT_TRUE(Ready(inner.get()).empty());
  EXPECT_TRUE(Ready(outer.get()).empty());
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  auto events = Ready(inner.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data.u64, 2u);
  EXPECT_EQ(Ready(outer.get()).size(), 1u);
  inner.Reset();
  EXPECT_TRUE(Ready(outer.get()).empty());
  ASSERT_EQ(write(p.w.get(), "y", 1), 1);
  outer.Reset();
  ASSERT_EQ(write(p.w.get(), "z", 1), 1);
}

TEST(EpollTest, ManyReadyDescriptorsAreReportedInTurn) {
  Fd ep = MakeEpoll();
  std::vector<Pipe> pipes;
  for (int i = 0; i < 200; i++) {
    pipes.push_back(MakePipe());
    ASSERT_EQ(write(pipes.back().w.get(), "x", 1), 1);
    ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, pipes.back().r.get(), EPOLLIN, i));
  }
  std::vector<bool> seen(200);
  for (int round = 0; round < 4; round++) {
    auto events = Ready(ep.get(), 64);
    ASSERT_EQ(events.size(), 64u);
    for (const epoll_event& e : events) seen[e.data.u64] = true;
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 200);
  EXPECT_EQ(Ready(ep.get(), 256).size(), 200u);
}

TEST(EpollTest, AWaitBlocksUntilAChildWrites) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN, 9));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    _exit(write(p.w.get(), "x", 1) == 1 ? 0 : 1);
  }
  epoll_event ev{};
  EXPECT_EQ(epoll_wait(ep.get(), &ev, 1, -1), 1);
  EXPECT_EQ(ev.data.u64, 9u);
  EXPECT_EQ(Wait(pid), 0);
}

TEST(EpollTest, AChildsInterestShowsInTheParent) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN, 3) == 0 ? 0 : 1);
  ASSERT_EQ(Wait(pid), 0);
  auto events = Ready(ep.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data.u64, 3u);
}

TEST(EpollTest, TimeoutWaitsAtLeastThatLong) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN));
  epoll_event ev;
  int64_t start = NowMs();
  EXPECT_EQ(epoll_wait(ep.get(), &ev, 1, 100), 0);
  int64_t elapsed = NowMs() - start;
  EXPECT_GE(elapsed, 99);
  EXPECT_LT(elapsed, 10000);
}

volatile sig_atomic_t g_usr1_handled = 0;
void OnUsr1(int) { g_usr1_handled = 1; }

TEST(EpollTest, AHandledSignalInterruptsWithEintrEvenWithSaRestart) {
  struct sigaction sa {}, old {};
  sa.sa_handler = OnUsr1;
  sa.sa_flags = SA_RESTART;
  ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
  g_usr1_handled = 0;
  Fd ep = MakeEpoll();
  pid_t parent = getpid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    _exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
  }
  epoll_event ev;
  EXPECT_ERRNO(epoll_wait(ep.get(), &ev, 1, -1), EINTR);
  EXPECT_EQ(g_usr1_handled, 1);
  EXPECT_EQ(Wait(pid), 0);
  sigaction(SIGUSR1, &old, nullptr);
}

TEST(EpollTest, PwaitMaskChecksAndTheTemporaryMask) {
  Fd ep = MakeEpoll();
  epoll_event ev;
  uint64_t mask = 0;
  EXPECT_ERRNO(syscall(SYS_epoll_pwait, ep.get(), &ev, 1, 0, &mask, 4), EINVAL);
  EXPECT_ERRNO(syscall(SYS_epoll_pwait, ep.get(), &ev, 1, 0, 8, 8), EFAULT);
  // The mask is checked before everything else.
  EXPECT_ERRNO(syscall(SYS_epoll_pwait, -1, &ev, 0, 0, &mask, 4), EINVAL);
  EXPECT_EQ(syscall(SYS_epoll_pwait, ep.get(), &ev, 1, 0, nullptr, 4), 0);

  struct sigaction sa {}, old_action {};
  sa.sa_handler = OnUsr1;
  ASSERT_OK(sigaction(SIGUSR1, &sa, &old_action));
  sigset_t block, old_mask, empty, now;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &block, &old_mask));
  g_usr1_handled = 0;
  ASSERT_OK(raise(SIGUSR1));
  sigemptyset(&empty);
  EXPECT_ERRNO(epoll_pwait(ep.get(), &ev, 1, -1, &empty), EINTR);
  EXPECT_EQ(g_usr1_handled, 1);
  ASSERT_OK(sigprocmask(SIG_SETMASK, nullptr, &now));
  EXPECT_TRUE(sigismember(&now, SIGUSR1));
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGUSR1, &old_action, nullptr);
}

TEST(EpollTest, Pwait2TakesATimespec) {
  Fd ep = MakeEpoll();
  epoll_event ev;
  timespec ts{0, 50 * 1000 * 1000};
  int64_t start = NowMs();
  EXPECT_EQ(syscall(SYS_epoll_pwait2, ep.get(), &ev, 1, &ts, nullptr, 8), 0);
  EXPECT_GE(NowMs() - start, 49);
  ts = timespec{0, 1000000000};
  EXPECT_ERRNO(syscall(SYS_epoll_pwait2, ep.get(), &ev, 1, &ts, nullptr, 8), EINVAL);
  ts = timespec{-1, 0};
  EXPECT_ERRNO(syscall(SYS_epoll_pwait2, ep.get(), &ev, 1, &ts, nullptr, 8), EINVAL);
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.w.get(), EPOLLOUT));
  EXPECT_EQ(syscall(SYS_epoll_pwait2, ep.get(), &ev, 1, nullptr, nullptr, 8), 1);
}

TEST(EpollTest, PollingTheInstanceDoesNotConsumeEdges) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN | EPOLLET));
  pollfd pfd{ep.get(), POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
  ASSERT_EQ(write(p.w.get(), "x", 1), 1);
  EXPECT_EQ(poll(&pfd, 1, 0), 1);
  EXPECT_EQ(poll(&pfd, 1, 0), 1);
  EXPECT_EQ(Ready(ep.get()).size(), 1u);
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
}

TEST(EpollTest, APollerOfTheInstanceWakesForAChildsWrite) {
  Fd ep = MakeEpoll();
  Pipe p = MakePipe();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, p.r.get(), EPOLLIN));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Pause();
    _exit(write(p.w.get(), "x", 1) == 1 ? 0 : 1);
  }
  pollfd pfd{ep.get(), POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, -1), 1);
  EXPECT_EQ(pfd.revents, POLLIN);
  EXPECT_EQ(Wait(pid), 0);
}

TEST(EpollTest, StdoutCanBeWatchedWhenItIsAPipeOrTerminal) {
  struct stat st {};
  ASSERT_OK(fstat(1, &st));
  if (!S_ISFIFO(st.st_mode) && !isatty(1)) {
    GTEST_SKIP() << "stdout is neither a pipe nor a terminal";
  }
  Fd ep = MakeEpoll();
  ASSERT_OK(Ctl(ep.get(), EPOLL_CTL_ADD, 1, EPOLLOUT, 1));
  auto events = Ready(ep.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].events & EPOLLOUT);
}

}  // namespace
