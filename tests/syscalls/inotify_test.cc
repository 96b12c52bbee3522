// inotify(7): inotify_init1's flags, watches on directories (create, delete, modify, open and
// close, attrib, moves with a shared cookie, names) and on files (modify, delete_self then
// ignored), IN_ONESHOT, IN_MASK_ADD and IN_MASK_CREATE, one watch per inode, inotify_rm_watch,
// FIONREAD, poll, short reads, IN_ONLYDIR, and identical unread events merged into one.
// Events are queued before the syscall that causes them returns, so no test waits for them.
//
// Syscalls: inotify_init inotify_init1 inotify_add_watch inotify_rm_watch read ioctl poll
// openat write close unlink mkdir rmdir rename chmod link symlink utimensat fcntl fork wait4
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

struct Event {
  int wd = 0;
  uint32_t mask = 0;
  uint32_t cookie = 0;
  uint32_t len = 0;
  std::string name;
};

std::string MaskName(uint32_t mask) {
  static const std::pair<uint32_t, const char*> kBits[] = {{IN_ACCESS, "ACCESS"},
                                                           {IN_MODIFY, "MODIFY"},
                                                           {IN_ATTRIB, "ATTRIB"},
                                                           {IN_CLOSE_WRITE, "CLOSE_WRITE"},
                                                           {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
                                                           {IN_OPEN, "OPEN"},
                                                           {IN_MOVED_FROM, "MOVED_FROM"},
                                                           {IN_MOVED_TO, "MOVED_TO"},
                                                           {IN_CREATE, "CREATE"},
                                                           {IN_DELETE, "DELETE"},
                                                           {IN_DELETE_SELF, "DELETE_SELF"},
                                                           {IN_MOVE_SELF, "MOVE_SELF"},
                                                           {IN_UNMOUNT, "UNMOUNT"},
                                                           {IN_Q_OVERFLOW, "Q_OVERFLOW"},
                                                           {IN_IGNORED, "IGNORED"},
                                                           {IN_ISDIR, "ISDIR"}};
  std::string out;
  for (const auto& [bit, name] : kBits) {
    if (mask & bit) out += (out.empty() ? "" : "|") + std::string(name);
  }
  return out.empty() ? "0" : out;
}

std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "{wd " << e.wd << ", " << MaskName(e.mask) << ", cookie " << e.cookie << ", \""
            << e.name << "\"}";
}

// Decodes `n` bytes of struct inotify_event records.
std::vector<Event> Decode(const char* buf, ssize_t n) {
  std::vector<Event> out;
  for (ssize_t pos = 0; pos + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
    inotify_event raw;
    memcpy(&raw, buf + pos, sizeof(raw));
    Event e{raw.wd, raw.mask, raw.cookie, raw.len, ""};
    const char* name = buf + pos + sizeof(raw);
    e.name = std::string(name, strnlen(name, raw.len));
    out.push_back(e);
    pos += static_cast<ssize_t>(sizeof(raw) + raw.len);
  }
  return out;
}

// Everything queued on a non-blocking inotify fd (an empty vector when nothing is).
std::vector<Event> Drain(int fd) {
  std::vector<Event> out;
  alignas(inotify_event) static char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN) << ErrnoName(errno);
      return out;
    }
    for (Event& e : Decode(buf, n)) out.push_back(std::move(e));
  }
}

// The (wd, mask, name) triples of `events`, for whole-sequence comparisons.
struct Brief {
  int wd;
  uint32_t mask;
  std::string name;
  bool operator==(const Brief& o) const { return wd == o.wd && mask == o.mask && name == o.name; }
};
std::ostream& operator<<(std::ostream& os, const Brief& b) {
  return os << "{wd " << b.wd << ", " << MaskName(b.mask) << ", \"" << b.name << "\"}";
}
std::vector<Brief> Briefly(const std::vector<Event>& events) {
  std::vector<Brief> out;
  out.reserve(events.size());
  for (const Event& e : events) out.push_back({e.wd, e.mask, e.name});
  return out;
}

class InotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    fd_.Reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    ASSERT_TRUE(fd_.valid()) << "inotify_init1: " << ErrnoName(errno);
  }
  std::string P(const std::string& name) const { return dir_.Join(name); }
  int Watch(const std::string& path, uint32_t mask) {
    int wd = inotify_add_watch(fd_.get(), path.c_str(), mask);
    EXPECT_GE(wd, 1) << "inotify_add_watch(" << path << "): " << ErrnoName(errno);
    return wd;
  }
  std::vector<Event> Events() { return Drain(fd_.get()); }

  TempDir dir_;
  Fd fd_;
};

TEST(InotifyInitTest, Init1Flags) {
  Fd plain(inotify_init1(0));
  ASSERT_TRUE(plain.valid()) << ErrnoName(errno);
  EXPECT_EQ(fcntl(plain.get(), F_GETFD), 0);
  EXPECT_FALSE(fcntl(plain.get(), F_GETFL) & O_NONBLOCK);
  Fd flagged(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  ASSERT_TRUE(flagged.valid()) << ErrnoName(errno);
  EXPECT_EQ(fcntl(flagged.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_TRUE(fcntl(flagged.get(), F_GETFL) & O_NONBLOCK);
  // Nothing is queued yet.
  char buf[256];
  EXPECT_ERRNO(read(flagged.get(), buf, sizeof(buf)), EAGAIN);
  // The original call takes no flags.
  Fd old(static_cast<int>(syscall(SYS_inotify_init)));
  ASSERT_TRUE(old.valid()) << ErrnoName(errno);
  EXPECT_EQ(fcntl(old.get(), F_GETFD), 0);
  // Only IN_NONBLOCK and IN_CLOEXEC are flags.
  EXPECT_ERRNO(inotify_init1(0x1), EINVAL);
  EXPECT_ERRNO(inotify_init1(IN_CLOEXEC | O_APPEND), EINVAL);
}

TEST_F(InotifyTest, CreateReportsTheNewName) {
  int wd = Watch(dir_.path(), IN_CREATE);
  ASSERT_TRUE(WriteFile(P("file"), "x"));
  ASSERT_OK(mkdir(P("sub").c_str(), 0755));
  ASSERT_OK(symlink("file", P("link").c_str()));
  ASSERT_OK(mkfifo(P("fifo").c_str(), 0644));
  std::vector<Event> ev = Events();
  std::vector<Brief> want = {{wd, IN_CREATE, "file"},
                             {wd, IN_CREATE | IN_ISDIR, "sub"},
                             {wd, IN_CREATE, "link"},
                             {wd, IN_CREATE, "fifo"}};
  EXPECT_EQ(Briefly(ev), want);
  for (const Event& e : ev) {
    EXPECT_EQ(e.cookie, 0u) << e;
    // The name is NUL-terminated and padded: len counts the padding, not just the name.
    EXPECT_GT(e.len, e.name.size()) << e;
    EXPECT_EQ(e.len % sizeof(inotify_event), 0u) << e;
  }
}

TEST_F(InotifyTest, DeleteReportsTheRemovedName) {
  ASSERT_TRUE(WriteFile(P("file"), "x"));
  ASSERT_OK(mkdir(P("sub").c_str(), 0755));
  int wd = Watch(dir_.path(), IN_DELETE);
  ASSERT_OK(unlink(P("file").c_str()));
  ASSERT_OK(rmdir(P("sub").c_str()));
  std::vector<Brief> want = {{wd, IN_DELETE, "file"}, {wd, IN_DELETE | IN_ISDIR, "sub"}};
  EXPECT_EQ(Briefly(Events()), want);
}

TEST_F(InotifyTest, OpenModifyAndCloseOfAChild) {
  ASSERT_TRUE(WriteFile(P("file"), "x"));
  int wd = Watch(dir_.path(), IN_OPEN | IN_MODIFY | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
  {
    Fd w(open(P("file").c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(w.valid());
    ASSERT_EQ(write(w.get(), "y", 1), 1);
  }
  {
    Fd r(open(P("file").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(r.valid());
  }
  ASSERT_OK(truncate(P("file").c_str(), 0));  // Truncation is a modification too.
  std::vector<Brief> want = {{wd, IN_OPEN, "file"},          {wd, IN_MODIFY, "file"},
                             {wd, IN_CLOSE_WRITE, "file"},   {wd, IN_OPEN, "file"},
                             {wd, IN_CLOSE_NOWRITE, "file"}, {wd, IN_MODIFY, "file"}};
  EXPECT_EQ(Briefly(Events()), want);
}

TEST_F(InotifyTest, OpeningTheWatchedDirectoryItself) {
  int wd = Watch(dir_.path(), IN_OPEN | IN_CLOSE_NOWRITE);
  {
    Fd d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(d.valid());
  }
  // Events about the watched object itself carry no name.
  std::vector<Event> ev = Events();
  std::vector<Brief> want = {{wd, IN_OPEN | IN_ISDIR, ""}, {wd, IN_CLOSE_NOWRITE | IN_ISDIR, ""}};
  EXPECT_EQ(Briefly(ev), want);
  for (const Event& e : ev) EXPECT_EQ(e.len, 0u) << e;
}

TEST_F(InotifyTest, AttribOnChmodTimesAndLinks) {
  ASSERT_TRUE(WriteFile(P("file"), "x"));
  int dwd = Watch(dir_.path(), IN_ATTRIB);
  int fwd = Watch(P("file"), IN_ATTRIB);
  ASSERT_NE(dwd, fwd);
  // A change of mode or times goes to the directory's watch (with the name), then the file's.
  std::vector<Brief> both = {{dwd, IN_ATTRIB, "file"}, {fwd, IN_ATTRIB, ""}};
  ASSERT_OK(chmod(P("file").c_str(), 0600));
  EXPECT_EQ(Briefly(Events()), both);
  ASSERT_OK(utimensat(AT_FDCWD, P("file").c_str(), nullptr, 0));
  EXPECT_EQ(Briefly(Events()), both);
  // A new link changes the link count, which only the file's own watch hears about.
  ASSERT_OK(link(P("file").c_str(), P("second").c_str()));
  std::vector<Brief> self = {{fwd, IN_ATTRIB, ""}};
  EXPECT_EQ(Briefly(Events()), self);
}

TEST_F(InotifyTest, RenameInsideADirectorySharesACookie) {
  ASSERT_TRUE(WriteFile(P("a"), "x"));
  ASSERT_TRUE(WriteFile(P("c"), "x"));
  int wd = Watch(dir_.path(), IN_MOVED_FROM | IN_MOVED_TO);
  ASSERT_OK(rename(P("a").c_str(), P("b").c_str()));
  ASSERT_OK(rename(P("c").c_str(), P("d").c_str()));
  std::vector<Event> ev = Events();
  std::vector<Brief> want = {{wd, IN_MOVED_FROM, "a"},
                             {wd, IN_MOVED_TO, "b"},
                             {wd, IN_MOVED_FROM, "c"},
                             {wd, IN_MOVED_TO, "d"}};
  ASSERT_EQ(Briefly(ev), want);
  EXPECT_NE(ev[0].cookie, 0u);
  EXPECT_EQ(ev[0].cookie, ev[1].cookie);
  EXPECT_EQ(ev[2].cookie, ev[3].cookie);
  EXPECT_NE(ev[0].cookie, ev[2].cookie);  // Each rename has its own.
}

TEST_F(InotifyTest, RenameAcrossDirectoriesAndMoveSelf) {
  ASSERT_OK(mkdir(P("from").c_str(), 0755));
  ASSERT_OK(mkdir(P("to").c_str(), 0755));
  ASSERT_OK(mkdir(P("from/sub").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("from/f"), "x"));
  int from = Watch(P("from"), IN_MOVE);
  int to = Watch(P("to"), IN_MOVE);
  int self = Watch(P("from/f"), IN_MOVE_SELF);
  ASSERT_OK(rename(P("from/f").c_str(), P("to/g").c_str()));
  ASSERT_OK(rename(P("from/sub").c_str(), P("to/sub").c_str()));
  std::vector<Event> ev = Events();
  std::vector<Brief> want = {{from, IN_MOVED_FROM, "f"},
                             {to, IN_MOVED_TO, "g"},
                             {self, IN_MOVE_SELF, ""},
                             {from, IN_MOVED_FROM | IN_ISDIR, "sub"},
                             {to, IN_MOVED_TO | IN_ISDIR, "sub"}};
  ASSERT_EQ(Briefly(ev), want);
  EXPECT_NE(ev[0].cookie, 0u);
  EXPECT_EQ(ev[0].cookie, ev[1].cookie);
  EXPECT_EQ(ev[3].cookie, ev[4].cookie);
  EXPECT_NE(ev[0].cookie, ev[3].cookie);
  EXPECT_EQ(ev[2].cookie, 0u);
}

TEST_F(InotifyTest, RenameOverAnExistingNameReportsOnlyTheMove) {
  ASSERT_TRUE(WriteFile(P("a"), "x"));
  ASSERT_TRUE(WriteFile(P("b"), "y"));
  int wd = Watch(dir_.path(), IN_MOVE | IN_DELETE | IN_CREATE);
  ASSERT_OK(rename(P("a").c_str(), P("b").c_str()));
  std::vector<Brief> want = {{wd, IN_MOVED_FROM, "a"}, {wd, IN_MOVED_TO, "b"}};
  EXPECT_EQ(Briefly(Events()), want);
}

TEST_F(InotifyTest, FileWatchModifyThenDeleteSelfThenIgnored) {
  ASSERT_TRUE(WriteFile(P("file"), "x"));
  int wd = Watch(P("file"), IN_MODIFY | IN_DELETE_SELF);
  {
    Fd w(open(P("file").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    ASSERT_EQ(write(w.get(), "more", 4), 4);
  }
  ASSERT_OK(unlink(P("file").c_str()));
  std::vector<Event> ev = Events();
  // IN_IGNORED is reported whatever the mask: the watch is gone with the inode.
  std::vector<Brief> want = {{wd, IN_MODIFY, ""}, {wd, IN_DELETE_SELF, ""}, {wd, IN_IGNORED, ""}};
  EXPECT_EQ(Briefly(ev), want);
  for (const Event& e : ev) EXPECT_EQ(e.len, 0u) << e;
  EXPECT_ERRNO(inotify_rm_watch(fd_.get(), wd), EINVAL);
}

TEST_F(InotifyTest, DeleteSelfWaitsForTheLastReference) {
  ASSERT_TRUE(WriteFile(P("file"), "x"));
  Fd open_fd(open(P("file").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(open_fd.valid());
  int wd = Watch(P("file"), IN_DELETE_SELF | IN_ATTRIB);
  ASSERT_OK(unlink(P("file").c_str()));
  // Only the link count changed while the file is still open.
  std::vector<Brief> want = {{wd, IN_ATTRIB, ""}};
  EXPECT_EQ(Briefly(Events()), want);
  open_fd.Reset();
  want = {{wd, IN_DELETE_SELF, ""}, {wd, IN_IGNORED, ""}};
  EXPECT_EQ(Briefly(Events()), want);
}

TEST_F(InotifyTest, RemovingTheWatchedDirectory) {
  ASSERT_OK(mkdir(P("sub").c_str(), 0755));
  int parent = Watch(dir_.path(), IN_DELETE);
  int wd = Watch(P("sub"), IN_DELETE_SELF);
  ASSERT_OK(rmdir(P("sub").c_str()));
  std::vector<Brief> want = {
      {wd, IN_DELETE_SELF, ""}, {wd, IN_IGNORED, ""}, {parent, IN_DELETE | IN_ISDIR, "sub"}};
  EXPECT_EQ(Briefly(Events()), want);
}

TEST_F(InotifyTest, WatchesAreNotRecursive) {
  ASSERT_OK(mkdir(P("sub").c_str(), 0755));
  int wd = Watch(dir_.path(), IN_CREATE | IN_MODIFY | IN_DELETE);
  ASSERT_TRUE(WriteFile(P("sub/inner"), "x"));
  ASSERT_OK(unlink(P("sub/inner").c_str()));
  EXPECT_TRUE(Events().empty());
  ASSERT_TRUE(WriteFile(P("top"), ""));
  std::vector<Brief> want = {{wd, IN_CREATE, "top"}};
  EXPECT_EQ(Briefly(Events()), want);
}

TEST_F(InotifyTest, OneshotReportsOnceThenIgnored) {
  ASSERT_TRUE(WriteFile(P("file"), "x"));
  int wd = Watch(P("file"), IN_MODIFY | IN_ONESHOT);
  Fd w(open(P("file").c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(w.valid());
  ASSERT_EQ(write(w.get(), "a", 1), 1);
  ASSERT_EQ(write(w.get(), "b", 1), 1);
  std::vector<Event> ev = Events();
  ASSERT_EQ(ev.size(), 2u);
  // The event carries the event bit only, not IN_ONESHOT.
  EXPECT_EQ(Briefly(ev)[0], (Brief{wd, IN_MODIFY, ""}));
  EXPECT_EQ(Briefly(ev)[1], (Brief{wd, IN_IGNORED, ""}));
  ASSERT_EQ(write(w.get(), "c", 1), 1);
  EXPECT_TRUE(Events().empty());
  EXPECT_ERRNO(inotify_rm_watch(fd_.get(), wd), EINVAL);
  // The path can be watched again afresh, under a new descriptor.
  int again = Watch(P("file"), IN_MODIFY);
  EXPECT_NE(again, wd);
}

TEST_F(InotifyTest, MaskAddWidensReplacingNarrows) {
  int wd = Watch(dir_.path(), IN_CREATE);
  EXPECT_EQ(Watch(dir_.path(), IN_DELETE | IN_MASK_ADD), wd);
  ASSERT_TRUE(WriteFile(P("a"), ""));
  ASSERT_OK(unlink(P("a").c_str()));
  std::vector<Brief> want = {{wd, IN_CREATE, "a"}, {wd, IN_DELETE, "a"}};
  EXPECT_EQ(Briefly(Events()), want);
  // Without IN_MASK_ADD the new mask replaces the old one.
  EXPECT_EQ(Watch(dir_.path(), IN_DELETE), wd);
  ASSERT_TRUE(WriteFile(P("b"), ""));
  ASSERT_OK(unlink(P("b").c_str()));
  want = {{wd, IN_DELETE, "b"}};
  EXPECT_EQ(Briefly(Events()), want);
}

TEST_F(InotifyTest, MaskCreateRefusesAnExistingWatch) {
  // IN_MASK_CREATE (Linux 4.18): only create a watch, never change one.
  int wd = Watch(dir_.path(), IN_CREATE | IN_MASK_CREATE);
  EXPECT_ERRNO(inotify_add_watch(fd_.get(), dir_.path().c_str(), IN_DELETE | IN_MASK_CREATE),
               EEXIST);
  EXPECT_ERRNO(
      inotify_add_watch(fd_.get(), dir_.path().c_str(), IN_DELETE | IN_MASK_CREATE | IN_MASK_ADD),
      EINVAL);
  // The failed calls left the mask alone.
  ASSERT_TRUE(WriteFile(P("a"), ""));
  ASSERT_OK(unlink(P("a").c_str()));
  std::vector<Brief> want = {{wd, IN_CREATE, "a"}};
  EXPECT_EQ(Briefly(Events()), want);
}

TEST_F(InotifyTest, OneWatchPerInode) {
  ASSERT_TRUE(WriteFile(P("file"), "x"));
  ASSERT_OK(link(P("file").c_str(), P("hard").c_str()));
  ASSERT_OK(symlink("file", P("sym").c_str()));
  int wd = Watch(P("file"), IN_MODIFY);
  EXPECT_EQ(Watch(P("file"), IN_MODIFY), wd);
  EXPECT_EQ(Watch(P("hard"), IN_MODIFY), wd);                 // Another name of the same inode.
  EXPECT_EQ(Watch(P("sym"), IN_MODIFY), wd);                  // Symlinks are followed...
  int link_wd = Watch(P("sym"), IN_ATTRIB | IN_DONT_FOLLOW);  // ...unless IN_DONT_FOLLOW.
  EXPECT_NE(link_wd, wd);
  // A second inotify instance numbers its watches independently.
  Fd other(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  ASSERT_TRUE(other.valid());
  int other_wd = inotify_add_watch(other.get(), P("file").c_str(), IN_MODIFY);
  ASSERT_GE(other_wd, 1);
  ASSERT_TRUE(WriteFile(P("hard"), "y"));  // One write, one event per instance.
  std::vector<Brief> want = {{wd, IN_MODIFY, ""}};
  EXPECT_EQ(Briefly(Events()), want);
  want = {{other_wd, IN_MODIFY, ""}};
  EXPECT_EQ(Briefly(Drain(other.get())), want);
}

TEST_F(InotifyTest, RmWatchQueuesIgnored) {
  int wd = Watch(dir_.path(), IN_CREATE);
  ASSERT_OK(inotify_rm_watch(fd_.get(), wd));
  std::vector<Brief> want = {{wd, IN_IGNORED, ""}};
  EXPECT_EQ(Briefly(Events()), want);
  ASSERT_TRUE(WriteFile(P("after"), ""));
  EXPECT_TRUE(Events().empty());
  EXPECT_ERRNO(inotify_rm_watch(fd_.get(), wd), EINVAL);
  EXPECT_ERRNO(inotify_rm_watch(fd_.get(), 12345), EINVAL);
  EXPECT_ERRNO(inotify_rm_watch(fd_.get(), -1), EINVAL);
  // The descriptor must be an inotify instance.
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(inotify_rm_watch(p.r.get(), 1), EINVAL);
  EXPECT_ERRNO(inotify_rm_watch(-1, 1), EBADF);
}

TEST_F(InotifyTest, AddWatchErrors) {
  ASSERT_TRUE(WriteFile(P("file"), "x"));
  ASSERT_OK(symlink("missing", P("dangling").c_str()));
  EXPECT_ERRNO(inotify_add_watch(fd_.get(), P("file").c_str(), IN_MODIFY | IN_ONLYDIR), ENOTDIR);
  EXPECT_ERRNO(inotify_add_watch(fd_.get(), P("missing").c_str(), IN_MODIFY), ENOENT);
  EXPECT_ERRNO(inotify_add_watch(fd_.get(), P("dangling").c_str(), IN_MODIFY), ENOENT);
  EXPECT_ERRNO(inotify_add_watch(fd_.get(), P("file").c_str(), 0), EINVAL);  // No event.
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(inotify_add_watch(p.r.get(), P("file").c_str(), IN_MODIFY), EINVAL);
  EXPECT_ERRNO(inotify_add_watch(-1, P("file").c_str(), IN_MODIFY), EBADF);
  // IN_ONLYDIR on a directory, and IN_DONT_FOLLOW on a dangling symlink, are fine.
  EXPECT_GE(inotify_add_watch(fd_.get(), dir_.path().c_str(), IN_CREATE | IN_ONLYDIR), 1);
  EXPECT_GE(inotify_add_watch(fd_.get(), P("dangling").c_str(), IN_ATTRIB | IN_DONT_FOLLOW), 1);
}

TEST_F(InotifyTest, FionreadCountsQueuedBytes) {
  int avail = -1;
  ASSERT_OK(ioctl(fd_.get(), FIONREAD, &avail));
  EXPECT_EQ(avail, 0);
  Watch(dir_.path(), IN_CREATE);
  ASSERT_TRUE(WriteFile(P("a"), ""));
  ASSERT_TRUE(WriteFile(P("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"), ""));
  ASSERT_OK(ioctl(fd_.get(), FIONREAD, &avail));
  alignas(inotify_event) char buf[4096];
  ssize_t n = read(fd_.get(), buf, sizeof(buf));
  ASSERT_GT(n, 0) << ErrnoName(errno);
  EXPECT_EQ(avail, n);
  EXPECT_EQ(Decode(buf, n).size(), 2u);
  ASSERT_OK(ioctl(fd_.get(), FIONREAD, &avail));
  EXPECT_EQ(avail, 0);
}

TEST_F(InotifyTest, PollIsReadableOnlyWithEvents) {
  Watch(dir_.path(), IN_CREATE);
  pollfd pfd{fd_.get(), POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
  ASSERT_TRUE(WriteFile(P("a"), ""));
  pfd.revents = 0;
  ASSERT_EQ(poll(&pfd, 1, 0), 1);
  EXPECT_EQ(pfd.revents, POLLIN);
  Events();
  pfd.revents = 0;
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
}

TEST_F(InotifyTest, BlockingReadWaitsForAnEvent) {
  Fd blocking(inotify_init1(IN_CLOEXEC));
  ASSERT_TRUE(blocking.valid());
  int wd = inotify_add_watch(blocking.get(), dir_.path().c_str(), IN_CREATE);
  ASSERT_GE(wd, 1);
  const std::string path = P("from-child");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(WriteFile(path, "") ? 0 : 1);
  // Returns once the child's creation is queued, whether or not it came first.
  alignas(inotify_event) char buf[4096];
  ssize_t n = read(blocking.get(), buf, sizeof(buf));
  EXPECT_TRUE(ExitedWith(WaitBounded(pid), 0));
  ASSERT_GT(n, 0) << ErrnoName(errno);
  std::vector<Brief> want = {{wd, IN_CREATE, "from-child"}};
  EXPECT_EQ(Briefly(Decode(buf, n)), want);
}

TEST_F(InotifyTest, ReadTooSmallForTheNextEventIsEinval) {
  int wd = Watch(dir_.path(), IN_CREATE);
  ASSERT_TRUE(WriteFile(P("name-of-sixteen!"), ""));  // 16 bytes: len is 32 with padding.
  ASSERT_TRUE(WriteFile(P("x"), ""));
  alignas(inotify_event) char buf[4096];
  EXPECT_ERRNO(read(fd_.get(), buf, 0), EINVAL);
  EXPECT_ERRNO(read(fd_.get(), buf, sizeof(inotify_event)), EINVAL);
  EXPECT_ERRNO(read(fd_.get(), buf, sizeof(inotify_event) + 16), EINVAL);
  // Nothing was lost; a buffer that fits exactly one event returns just that one.
  int avail = 0;
  ASSERT_OK(ioctl(fd_.get(), FIONREAD, &avail));
  ssize_t n = read(fd_.get(), buf, sizeof(inotify_event) + 32);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(inotify_event) + 32)) << ErrnoName(errno);
  std::vector<Brief> want = {{wd, IN_CREATE, "name-of-sixteen!"}};
  EXPECT_EQ(Briefly(Decode(buf, n)), want);
  want = {{wd, IN_CREATE, "x"}};
  EXPECT_EQ(Briefly(Events()), want);
  EXPECT_GT(avail, n);
}

TEST_F(InotifyTest, IdenticalUnreadEventsAreMerged) {
  ASSERT_TRUE(WriteFile(P("file"), ""));
  int wd = Watch(P("file"), IN_MODIFY);
  Fd w(open(P("file").c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(w.valid());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(write(w.get(), "x", 1), 1);
  std::vector<Brief> want = {{wd, IN_MODIFY, ""}};
  EXPECT_EQ(Briefly(Events()), want);
  // Once read, the next identical event is queued again.
  ASSERT_EQ(write(w.get(), "x", 1), 1);
  EXPECT_EQ(Briefly(Events()), want);
}

TEST_F(InotifyTest, DifferentEventsAreNotMerged) {
  int wd = Watch(dir_.path(), IN_CREATE | IN_DELETE | IN_MODIFY);
  ASSERT_TRUE(WriteFile(P("a"), "1"));  // create, modify
  ASSERT_TRUE(WriteFile(P("b"), "2"));  // create, modify
  {
    Fd w(open(P("a").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    ASSERT_EQ(write(w.get(), "3", 1), 1);  // Merges into nothing: the last event is b's.
  }
  ASSERT_OK(unlink(P("a").c_str()));
  std::vector<Brief> want = {{wd, IN_CREATE, "a"}, {wd, IN_MODIFY, "a"}, {wd, IN_CREATE, "b"},
                             {wd, IN_MODIFY, "b"}, {wd, IN_MODIFY, "a"}, {wd, IN_DELETE, "a"}};
  EXPECT_EQ(Briefly(Events()), want);
}

}  // namespace
}  // namespace husk_test
