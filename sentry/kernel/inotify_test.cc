// The inotify event queue and watch registry as inotify(7) describes them:
// merging identical unread events, the overflow event, IN_IGNORED, one-shot
// watches, the parent's event before the child's, short reads, and
// IN_DELETE_SELF waiting for the last holder of an unlinked name.
#include "sentry/kernel/inotify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"

namespace husk::inotify {
namespace {

struct Ev {
  int wd;
  uint32_t mask;
  uint32_t cookie;
  std::string name;
  bool operator==(const Ev& o) const {
    return wd == o.wd && mask == o.mask && cookie == o.cookie && name == o.name;
  }
};

std::ostream& operator<<(std::ostream& os, const Ev& e) {
  return os << "{" << e.wd << ", " << std::hex << e.mask << std::dec << ", " << e.cookie << ", \""
            << e.name << "\"}";
}

// Everything queued on `f` (reads until EAGAIN).
std::vector<Ev> Drain(vfs::File& f) {
  std::vector<Ev> out;
  std::vector<char> buf(1 << 20);
  for (;;) {
    Result<size_t> n = f.Read(buf.data(), buf.size());
    if (!n.ok()) {
      EXPECT_EQ(n.error(), EAGAIN);
      return out;
    }
    for (size_t pos = 0; pos < *n;) {
      struct inotify_event raw;
      memcpy(&raw, buf.data() + pos, sizeof(raw));
      const char* name = buf.data() + pos + sizeof(raw);
      out.push_back({raw.wd, raw.mask, raw.cookie, std::string(name, strnlen(name, raw.len))});
      pos += sizeof(raw) + raw.len;
    }
  }
}

class InotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::make_shared<vfs::Dentry>("/", nullptr, tmpfs::NewTmpfsRoot());
    in_ = New(O_NONBLOCK, 0).value();
  }
  void TearDown() override {
    in_.reset();
    root_->ReleaseTree();
    EXPECT_FALSE(Active()) << "watches outlived their instance";
  }
  vfs::DentryRef MakeFile(const std::string& name) {
    vfs::InodeRef inode = root_->inode()->Create(name, S_IFREG | 0644).value();
    root_->AddChild(name, inode);
    return root_->Child(name).value();
  }
  int Watch(vfs::Inode& inode, uint32_t mask) { return AddWatch(*in_, inode, mask).value(); }

  vfs::DentryRef root_;
  vfs::FileRef in_;
};

TEST_F(InotifyTest, IdenticalUnreadEventsMergeWithTheLastOnly) {
  vfs::DentryRef f = MakeFile("f");
  const int wd = Watch(*f->inode(), IN_MODIFY | IN_ACCESS);
  for (int i = 0; i < 3; i++) NotifyDentry(*f, IN_MODIFY);
  NotifyDentry(*f, IN_ACCESS);
  NotifyDentry(*f, IN_MODIFY);  // not the last one queued: a new event
  std::vector<Ev> want = {{wd, IN_MODIFY, 0, ""}, {wd, IN_ACCESS, 0, ""}, {wd, IN_MODIFY, 0, ""}};
  EXPECT_EQ(Drain(*in_), want);
  // Once read, the same event is queued again.
  NotifyDentry(*f, IN_MODIFY);
  want = {{wd, IN_MODIFY, 0, ""}};
  EXPECT_EQ(Drain(*in_), want);
}

TEST_F(InotifyTest, TheParentHearsFirstWithTheName) {
  vfs::DentryRef f = MakeFile("f");
  const int dwd = Watch(*root_->inode(), IN_ATTRIB);
  const int fwd = Watch(*f->inode(), IN_ATTRIB);
  NotifyDentry(*f, IN_ATTRIB);
  NotifyDentry(*f, IN_MODIFY);  // nobody asked for it
  NotifyDentry(*root_, IN_ATTRIB);
  std::vector<Ev> want = {
      {dwd, IN_ATTRIB, 0, "f"}, {fwd, IN_ATTRIB, 0, ""}, {dwd, IN_ATTRIB | IN_ISDIR, 0, ""}};
  EXPECT_EQ(Drain(*in_), want);
}

TEST_F(InotifyTest, OverflowStandsForWhatWasLost) {
  const int wd = Watch(*root_->inode(), IN_CREATE);
  for (size_t i = 0; i < kMaxQueuedEvents + 10; i++) {
    NotifyCreate(*root_, "n" + std::to_string(i), false);
  }
  std::vector<Ev> got = Drain(*in_);
  ASSERT_EQ(got.size(), kMaxQueuedEvents + 1);
  EXPECT_EQ(got.front(), (Ev{wd, IN_CREATE, 0, "n0"}));
  EXPECT_EQ(got.back(), (Ev{-1, IN_Q_OVERFLOW, 0, ""}));
  // Room again: events queue as before.
  NotifyCreate(*root_, "after", false);
  std::vector<Ev> want = {{wd, IN_CREATE, 0, "after"}};
  EXPECT_EQ(Drain(*in_), want);
}

TEST_F(InotifyTest, RemoveWatchQueuesIgnoredOnce) {
  vfs::DentryRef f = MakeFile("f");
  const int wd = Watch(*f->inode(), IN_MODIFY);
  EXPECT_TRUE(Active());
  ASSERT_OK(RemoveWatch(*in_, wd));
  EXPECT_FALSE(Active());
  EXPECT_ERRNO(RemoveWatch(*in_, wd), EINVAL);
  EXPECT_ERRNO(RemoveWatch(*in_, 999), EINVAL);
  NotifyDentry(*f, IN_MODIFY);
  std::vector<Ev> want = {{wd, IN_IGNORED, 0, ""}};
  EXPECT_EQ(Drain(*in_), want);
  // A new watch gets a new number.
  EXPECT_NE(Watch(*f->inode(), IN_MODIFY), wd);
}

TEST_F(InotifyTest, OneWatchPerInodeAndMaskRules) {
  vfs::DentryRef f = MakeFile("f");
  const int wd = Watch(*f->inode(), IN_MODIFY);
  EXPECT_EQ(Watch(*f->inode(), IN_ATTRIB | IN_MASK_ADD), wd);
  EXPECT_ERRNO(AddWatch(*in_, *f->inode(), IN_OPEN | IN_MASK_CREATE), EEXIST);
  NotifyDentry(*f, IN_MODIFY);
  NotifyDentry(*f, IN_ATTRIB);
  NotifyDentry(*f, IN_OPEN);
  std::vector<Ev> want = {{wd, IN_MODIFY, 0, ""}, {wd, IN_ATTRIB, 0, ""}};
  EXPECT_EQ(Drain(*in_), want);
  // Another instance numbers its own watches and hears the same event.
  vfs::FileRef other = New(O_NONBLOCK, 0).value();
  const int owd = AddWatch(*other, *f->inode(), IN_MODIFY).value();
  NotifyDentry(*f, IN_MODIFY);
  EXPECT_EQ(Drain(*in_), (std::vector<Ev>{{wd, IN_MODIFY, 0, ""}}));
  EXPECT_EQ(Drain(*other), (std::vector<Ev>{{owd, IN_MODIFY, 0, ""}}));
}

TEST_F(InotifyTest, OneshotGoesAfterItsFirstEvent) {
  vfs::DentryRef f = MakeFile("f");
  const int wd = Watch(*f->inode(), IN_MODIFY | IN_ONESHOT);
  NotifyDentry(*f, IN_MODIFY);
  NotifyDentry(*f, IN_MODIFY);
  std::vector<Ev> want = {{wd, IN_MODIFY, 0, ""}, {wd, IN_IGNORED, 0, ""}};
  EXPECT_EQ(Drain(*in_), want);
  EXPECT_FALSE(Active());
}

TEST_F(InotifyTest, ShortReadIsEinvalAndLosesNothing) {
  const int wd = Watch(*root_->inode(), IN_CREATE);
  NotifyCreate(*root_, "name-of-sixteen!", false);  // len 32 with the padding
  char buf[256];
  EXPECT_ERRNO(in_->Read(buf, 0), EINVAL);
  EXPECT_ERRNO(in_->Read(buf, sizeof(struct inotify_event) + 16), EINVAL);
  Result<size_t> n = in_->Read(buf, sizeof(struct inotify_event) + 32);
  ASSERT_OK(n);
  EXPECT_EQ(*n, sizeof(struct inotify_event) + 32);
  struct inotify_event raw;
  memcpy(&raw, buf, sizeof(raw));
  EXPECT_EQ(raw.wd, wd);
  EXPECT_EQ(raw.len, 32u);
  EXPECT_ERRNO(in_->Read(buf, sizeof(buf)), EAGAIN);
  EXPECT_EQ(in_->Readiness(POLLIN), 0u);
  NotifyCreate(*root_, "x", false);
  EXPECT_EQ(in_->Readiness(POLLIN | POLLOUT), static_cast<uint32_t>(POLLIN));
}

TEST_F(InotifyTest, DeleteSelfWaitsForTheLastHolder) {
  vfs::DentryRef f = MakeFile("f");
  const int dwd = Watch(*root_->inode(), IN_DELETE);
  const int fwd = Watch(*f->inode(), IN_DELETE_SELF | IN_ATTRIB);
  vfs::DentryRef holder = f;  // an open file, say
  ASSERT_OK(root_->inode()->Unlink("f"));
  root_->ForgetChild("f");
  NotifyRemoved(*root_, "f", f, false);
  std::vector<Ev> want = {{fwd, IN_ATTRIB, 0, ""}, {dwd, IN_DELETE, 0, "f"}};
  EXPECT_EQ(Drain(*in_), want);
  f.reset();
  EXPECT_TRUE(Drain(*in_).empty());
  holder.reset();  // the last reference
  want = {{fwd, IN_DELETE_SELF, 0, ""}, {fwd, IN_IGNORED, 0, ""}};
  EXPECT_EQ(Drain(*in_), want);
}

TEST_F(InotifyTest, RenameSharesACookieAndMovesSelf) {
  vfs::DentryRef a = MakeFile("a");
  vfs::DentryRef b = MakeFile("b");
  const int dwd = Watch(*root_->inode(), IN_MOVE);
  const int awd = Watch(*a->inode(), IN_MOVE_SELF);
  const int bwd = Watch(*b->inode(), IN_DELETE_SELF);
  ASSERT_OK(root_->inode()->Rename("a", *root_->inode(), "b"));
  root_->MoveChild("a", *root_, "b");
  NotifyRename(*root_, "a", *root_, "b", a, b);
  std::vector<Ev> got = Drain(*in_);
  // Nothing but the caller holds the replaced dentry: it goes at once, after
  // the move.
  ASSERT_EQ(got.size(), 5u);
  EXPECT_NE(got[0].cookie, 0u);
  std::vector<Ev> want = {{dwd, IN_MOVED_FROM, got[0].cookie, "a"},
                          {dwd, IN_MOVED_TO, got[0].cookie, "b"},
                          {awd, IN_MOVE_SELF, 0, ""},
                          {bwd, IN_DELETE_SELF, 0, ""},
                          {bwd, IN_IGNORED, 0, ""}};
  EXPECT_EQ(got, want);
  // The next rename has a cookie of its own.
  NotifyRename(*root_, "b", *root_, "c", a, nullptr);
  got = Drain(*in_);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_NE(got[0].cookie, want[0].cookie);
}

}  // namespace
}  // namespace husk::inotify
