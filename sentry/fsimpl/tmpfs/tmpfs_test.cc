#include "sentry/fsimpl/tmpfs/tmpfs.h"

#include <errno.h>
#include <sys/sysmacros.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/memfile/memfile.h"

namespace husk::tmpfs {
namespace {

struct stat StatOf(const vfs::InodeRef& inode) {
  auto st = inode->Stat();
  EXPECT_TRUE(st.ok());
  return st.ok() ? st.value() : (struct stat){};
}

std::string ReadAll(const vfs::InodeRef& inode) {
  std::string out(StatOf(inode).st_size, '\0');
  auto r = inode->ReadAt(out.data(), out.size(), 0);
  EXPECT_TRUE(r.ok());
  out.resize(r.ok() ? *r : 0);
  return out;
}

std::vector<std::string> Names(const vfs::InodeRef& dir) {
  std::vector<std::string> out;
  auto entries = dir->ReadDir();
  EXPECT_TRUE(entries.ok());
  if (entries.ok()) {
    for (auto& e : *entries) out.push_back(e.name);
  }
  return out;
}

bool Before(const timespec& a, const timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

// Sets atime and mtime of `inode` to the epoch so that later updates show.
void AgeTimes(const vfs::InodeRef& inode) {
  vfs::SetAttr a;
  a.set_mtime = a.set_atime = true;
  a.mtime = a.atime = timespec{1, 0};
  ASSERT_OK(inode->SetAttributes(a));
}

TEST(TmpfsTest, RootStat) {
  vfs::InodeRef root = NewTmpfsRoot();
  struct stat st = StatOf(root);
  EXPECT_EQ(st.st_mode, S_IFDIR | 01777);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_blksize, 4096);
  EXPECT_EQ(major(st.st_dev), 0u);
  EXPECT_EQ(st.st_size, 40);
  EXPECT_GT(st.st_mtim.tv_sec, 1000000000);
  EXPECT_TRUE(IsTmpfsInode(*root));

  vfs::InodeRef other = NewTmpfsRoot(0755);
  EXPECT_EQ(StatOf(other).st_mode, S_IFDIR | 0755);
  EXPECT_NE(StatOf(other).st_dev, st.st_dev);
  EXPECT_NE(StatOf(other).st_ino, st.st_ino);
}

// mount(2)'s size= and nr_inodes=: ENOSPC past them, and statfs reports them.
TEST(TmpfsTest, SizeAndInodeLimits) {
  vfs::InodeRef root = NewTmpfsRoot(0755, Limits{.max_bytes = 3 * 4096 - 100, .max_inodes = 3});
  auto s = root->Statfs();
  ASSERT_OK(s);
  EXPECT_EQ(s->f_blocks, 3u);
  EXPECT_EQ(s->f_bfree, 3u);
  EXPECT_EQ(s->f_files, 3u);
  EXPECT_EQ(s->f_ffree, 2u);  // the root is one
  vfs::InodeRef f = root->Create("f", 0644).value();
  std::string page(4096, 'x');
  for (int i = 0; i < 3; i++) ASSERT_OK(f->WriteAt(page.data(), page.size(), i * 4096));
  EXPECT_ERRNO(f->WriteAt(page.data(), page.size(), 3 * 4096), ENOSPC);
  EXPECT_EQ(root->Statfs()->f_bfree, 0u);
  ASSERT_OK(root->Mkdir("d", 0755));
  EXPECT_ERRNO(root->Create("g", 0644), ENOSPC);
  EXPECT_ERRNO(root->Symlink("l", "x"), ENOSPC);
  // Freed with the inode: room again.
  ASSERT_OK(root->Unlink("f"));
  f.reset();
  EXPECT_EQ(root->Statfs()->f_bfree, 3u);
  ASSERT_OK(root->Create("g", 0644));
}

TEST(TmpfsTest, CreateLookupAndErrors) {
  vfs::InodeRef root = NewTmpfsRoot();
  auto f = root->Create("f", 0640);
  ASSERT_OK(f);
  struct stat st = StatOf(*f);
  EXPECT_EQ(st.st_mode, S_IFREG | 0640);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_dev, StatOf(root).st_dev);
  auto again = root->Lookup("f");
  ASSERT_OK(again);
  EXPECT_EQ(again->get(), f->get());

  EXPECT_ERRNO(root->Create("f", 0644), EEXIST);
  EXPECT_ERRNO(root->Mkdir("f", 0755), EEXIST);
  EXPECT_ERRNO(root->Symlink("f", "x"), EEXIST);
  EXPECT_ERRNO(root->Lookup("missing"), ENOENT);
  EXPECT_ERRNO(root->Lookup(std::string(256, 'a')), ENAMETOOLONG);
  EXPECT_ERRNO(root->Create(std::string(256, 'a'), 0644), ENAMETOOLONG);
  ASSERT_OK(root->Create(std::string(255, 'a'), 0644));
  EXPECT_ERRNO((*f)->Lookup("x"), ENOTDIR);
  EXPECT_ERRNO((*f)->Create("x", 0644), EROFS);  // Inode's default for non-directories
}

TEST(TmpfsTest, ReadWriteHolesAndTruncate) {
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef f = root->Create("f", 0644).value();
  ASSERT_OK(f->WriteAt("hello", 5, 0));
  EXPECT_EQ(ReadAll(f), "hello");
  EXPECT_EQ(StatOf(f).st_blocks, 8);

  // A write far past the end leaves a hole that reads as zeros.
  auto w = f->WriteAt("end", 3, 3 * 4096 + 10);
  ASSERT_OK(w);
  EXPECT_EQ(*w, 3u);
  struct stat st = StatOf(f);
  EXPECT_EQ(st.st_size, 3 * 4096 + 13);
  EXPECT_EQ(st.st_blocks, 16);  // the two pages written; the hole holds none
  std::string all = ReadAll(f);
  EXPECT_EQ(all.substr(0, 5), "hello");
  EXPECT_EQ(all.substr(5, 3 * 4096 + 5), std::string(3 * 4096 + 5, '\0'));
  EXPECT_EQ(all.substr(3 * 4096 + 10), "end");

  // Reads at and past the end.
  char buf[16];
  auto r = f->ReadAt(buf, sizeof(buf), 3 * 4096 + 11);
  ASSERT_OK(r);
  EXPECT_EQ(*r, 2u);
  r = f->ReadAt(buf, sizeof(buf), 1 << 20);
  ASSERT_OK(r);
  EXPECT_EQ(*r, 0u);

  // Shrinking then growing reads zeros where data was.
  vfs::SetAttr a;
  a.set_size = true;
  a.size = 2;
  ASSERT_OK(f->SetAttributes(a));
  a.size = 10;
  ASSERT_OK(f->SetAttributes(a));
  EXPECT_EQ(ReadAll(f), std::string("he") + std::string(8, '\0'));
  EXPECT_EQ(StatOf(f).st_blocks, 8);

  // A huge sparse size costs nothing.
  a.size = 1ull << 40;
  ASSERT_OK(f->SetAttributes(a));
  EXPECT_EQ(StatOf(f).st_size, 1ll << 40);
  EXPECT_EQ(StatOf(f).st_blocks, 8);
  a.size = 1ull << 63;
  EXPECT_ERRNO(f->SetAttributes(a), EFBIG);

  // truncate(2) on a directory is EISDIR, on a symlink EINVAL.
  a.size = 0;
  EXPECT_ERRNO(root->SetAttributes(a), EISDIR);
  vfs::InodeRef l = root->Symlink("l", "f").value();
  EXPECT_ERRNO(l->SetAttributes(a), EINVAL);
}

TEST(TmpfsTest, WriteUpdatesTimes) {
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef f = root->Create("f", 0644).value();
  AgeTimes(f);
  struct stat before = StatOf(f);
  EXPECT_EQ(before.st_mtim.tv_sec, 1);
  ASSERT_OK(f->WriteAt("x", 1, 0));
  struct stat after = StatOf(f);
  EXPECT_TRUE(Before(before.st_mtim, after.st_mtim));
  EXPECT_EQ(after.st_atim.tv_sec, 1);
}

TEST(TmpfsTest, OpenTruncAndGenericFile) {
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef f = root->Create("f", 0644).value();
  {
    auto file = f->Open(O_RDWR);
    ASSERT_OK(file);
    ASSERT_OK((*file)->Write("abcdef", 6));
    ASSERT_OK((*file)->Seek(0, SEEK_SET));
    char buf[8] = {};
    auto r = (*file)->Read(buf, sizeof(buf));
    ASSERT_OK(r);
    EXPECT_EQ(std::string(buf, *r), "abcdef");
  }
  {
    auto file = f->Open(O_WRONLY | O_APPEND);
    ASSERT_OK(file);
    ASSERT_OK((*file)->Write("gh", 2));
    EXPECT_EQ(ReadAll(f), "abcdefgh");
  }
  EXPECT_ERRNO(root->Open(O_RDWR), EISDIR);
  EXPECT_ERRNO(root->Open(O_RDONLY | O_TRUNC), EISDIR);
  ASSERT_OK(root->Open(O_RDONLY | O_DIRECTORY));
  ASSERT_OK(root->Open(O_WRONLY | O_PATH));
  AgeTimes(f);
  ASSERT_OK(f->Open(O_WRONLY | O_TRUNC));
  EXPECT_EQ(StatOf(f).st_size, 0);
  EXPECT_GT(StatOf(f).st_mtim.tv_sec, 1);
}

TEST(TmpfsTest, DirectoryLinkCountsAndSize) {
  vfs::InodeRef root = NewTmpfsRoot();
  ASSERT_OK(root->Mkdir("a", 0755));
  ASSERT_OK(root->Mkdir("b", 0755));
  ASSERT_OK(root->Create("f", 0644));
  EXPECT_EQ(StatOf(root).st_nlink, 4u);
  EXPECT_EQ(StatOf(root).st_size, 100);
  vfs::InodeRef a = root->Lookup("a").value();
  EXPECT_EQ(StatOf(a).st_nlink, 2u);
  EXPECT_EQ(StatOf(a).st_mode, S_IFDIR | 0755);
  ASSERT_OK(root->Rmdir("b"));
  EXPECT_EQ(StatOf(root).st_nlink, 3u);
  ASSERT_OK(root->Rmdir("a"));
  EXPECT_EQ(StatOf(a).st_nlink, 0u);
  // A removed directory (still someone's cwd) takes no new entries.
  EXPECT_ERRNO(a->Create("x", 0644), ENOENT);
  EXPECT_ERRNO(a->Mkdir("x", 0755), ENOENT);
  EXPECT_TRUE(Names(a).empty());
}

TEST(TmpfsTest, MkdirKeepsPermissionAndStickyBitsOnly) {
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef d = root->Mkdir("d", 07777).value();
  EXPECT_EQ(StatOf(d).st_mode, S_IFDIR | 01777);
}

TEST(TmpfsTest, SetGidDirectoryPassesGroup) {
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef d = root->Mkdir("d", 0755).value();
  vfs::SetAttr a;
  a.set_mode = true;
  a.mode = 02775;
  a.set_gid = true;
  a.gid = 50;
  ASSERT_OK(d->SetAttributes(a));
  vfs::InodeRef f = d->Create("f", 0644).value();
  vfs::InodeRef sub = d->Mkdir("sub", 0755).value();
  EXPECT_EQ(StatOf(f).st_gid, 50u);
  EXPECT_EQ(StatOf(sub).st_gid, 50u);
  EXPECT_EQ(StatOf(sub).st_mode, S_IFDIR | 02755);
}

TEST(TmpfsTest, UnlinkAndRmdirErrors) {
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef d = root->Mkdir("d", 0755).value();
  vfs::InodeRef f = root->Create("f", 0644).value();
  ASSERT_OK(d->Create("inner", 0644));
  EXPECT_ERRNO(root->Unlink("d"), EISDIR);
  EXPECT_ERRNO(root->Rmdir("f"), ENOTDIR);
  EXPECT_ERRNO(root->Rmdir("d"), ENOTEMPTY);
  EXPECT_ERRNO(root->Unlink("missing"), ENOENT);
  EXPECT_ERRNO(root->Rmdir("missing"), ENOENT);

  AgeTimes(root);
  ASSERT_OK(root->Unlink("f"));
  EXPECT_GT(StatOf(root).st_mtim.tv_sec, 1);
  EXPECT_GT(StatOf(root).st_ctim.tv_sec, 1);
  EXPECT_EQ(StatOf(f).st_nlink, 0u);
  // The data stays readable through the inode (an open file).
  ASSERT_OK(f->WriteAt("x", 1, 0));
  EXPECT_EQ(ReadAll(f), "x");
  EXPECT_ERRNO(root->Lookup("f"), ENOENT);
}

TEST(TmpfsTest, CreateUpdatesDirectoryTimes) {
  vfs::InodeRef root = NewTmpfsRoot();
  AgeTimes(root);
  ASSERT_OK(root->Create("f", 0644));
  EXPECT_GT(StatOf(root).st_mtim.tv_sec, 1);
  AgeTimes(root);
  ASSERT_OK(root->Mkdir("d", 0755));
  EXPECT_GT(StatOf(root).st_mtim.tv_sec, 1);
  AgeTimes(root);
  ASSERT_OK(root->Symlink("l", "d"));
  EXPECT_GT(StatOf(root).st_mtim.tv_sec, 1);
}

TEST(TmpfsTest, Symlinks) {
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef l = root->Symlink("l", "some/target").value();
  EXPECT_TRUE(l->IsSymlink());
  struct stat st = StatOf(l);
  EXPECT_EQ(st.st_mode, S_IFLNK | 0777);
  EXPECT_EQ(st.st_size, 11);
  EXPECT_EQ(l->Readlink().value(), "some/target");
  EXPECT_ERRNO(root->Readlink(), EINVAL);
  EXPECT_ERRNO(root->Symlink("empty", ""), ENOENT);
  EXPECT_ERRNO(root->Symlink("long", std::string(4096, 'x')), ENAMETOOLONG);
}

TEST(TmpfsTest, ReadDirIsOrderedWithInodesAndTypes) {
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef c = root->Create("c", 0644).value();
  vfs::InodeRef a = root->Mkdir("a", 0755).value();
  vfs::InodeRef b = root->Symlink("b", "c").value();
  auto entries = root->ReadDir();
  ASSERT_OK(entries);
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].name, "a");
  EXPECT_EQ((*entries)[0].type, DT_DIR);
  EXPECT_EQ((*entries)[0].ino, StatOf(a).st_ino);
  EXPECT_EQ((*entries)[1].name, "b");
  EXPECT_EQ((*entries)[1].type, DT_LNK);
  EXPECT_EQ((*entries)[1].ino, StatOf(b).st_ino);
  EXPECT_EQ((*entries)[2].name, "c");
  EXPECT_EQ((*entries)[2].type, DT_REG);
  EXPECT_EQ((*entries)[2].ino, StatOf(c).st_ino);
}

TEST(TmpfsTest, SetAttributes) {
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef f = root->Create("f", 0644).value();
  vfs::SetAttr a;
  a.set_mode = true;
  a.mode = S_IFDIR | 04755;  // type bits are ignored
  a.set_uid = a.set_gid = true;
  a.uid = 1000;
  a.gid = 100;
  a.set_atime = a.set_mtime = true;
  a.atime = timespec{100, 5};
  a.mtime = timespec{200, 6};
  ASSERT_OK(f->SetAttributes(a));
  struct stat st = StatOf(f);
  EXPECT_EQ(st.st_mode, S_IFREG | 04755);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 100u);
  EXPECT_EQ(st.st_atim.tv_sec, 100);
  EXPECT_EQ(st.st_atim.tv_nsec, 5);
  EXPECT_EQ(st.st_mtim.tv_sec, 200);
  EXPECT_GT(st.st_ctim.tv_sec, 200);

  // UTIME_OMIT leaves a time alone; UTIME_NOW takes the clock.
  vfs::SetAttr t;
  t.set_atime = t.set_mtime = true;
  t.atime.tv_nsec = UTIME_OMIT;
  t.mtime.tv_nsec = UTIME_NOW;
  ASSERT_OK(f->SetAttributes(t));
  EXPECT_EQ(StatOf(f).st_atim.tv_sec, 100);
  EXPECT_GT(StatOf(f).st_mtim.tv_sec, 200);

  // chown(2) clears set-user-ID (and set-group-ID with group execute).
  vfs::SetAttr mode;
  mode.set_mode = true;
  mode.mode = 06755;
  ASSERT_OK(f->SetAttributes(mode));
  vfs::SetAttr own;
  own.set_uid = true;
  own.uid = 0;
  ASSERT_OK(f->SetAttributes(own));
  EXPECT_EQ(StatOf(f).st_mode, S_IFREG | 0755);
  // Not on directories.
  vfs::InodeRef d = root->Mkdir("d", 0755).value();
  mode.mode = 02755;
  ASSERT_OK(d->SetAttributes(mode));
  ASSERT_OK(d->SetAttributes(own));
  EXPECT_EQ(StatOf(d).st_mode, S_IFDIR | 02755);
}

class TmpfsRenameTest : public ::testing::Test {
 protected:
  // root/x/{b/{c/, f}, g}, root/e/
  void SetUp() override {
    x_ = root_->Mkdir("x", 0755).value();
    b_ = x_->Mkdir("b", 0755).value();
    c_ = b_->Mkdir("c", 0755).value();
    f_ = b_->Create("f", 0644).value();
    g_ = x_->Create("g", 0644).value();
    e_ = root_->Mkdir("e", 0755).value();
  }
  vfs::InodeRef root_ = NewTmpfsRoot();
  vfs::InodeRef x_, b_, c_, f_, g_, e_;
};

// The errnos below were checked against Linux tmpfs.
TEST_F(TmpfsRenameTest, Errors) {
  EXPECT_ERRNO(b_->Rename("f", *x_, "b"), ENOTEMPTY);     // target is the source's parent
  EXPECT_ERRNO(x_->Rename("b", *b_, "z"), EINVAL);        // into itself
  EXPECT_ERRNO(x_->Rename("b", *c_, "z"), EINVAL);        // below itself
  EXPECT_ERRNO(b_->Rename("c", *root_, "x"), ENOTEMPTY);  // over an ancestor
  EXPECT_ERRNO(x_->Rename("g", *x_, "b"), EISDIR);
  EXPECT_ERRNO(x_->Rename("b", *x_, "g"), ENOTDIR);
  EXPECT_ERRNO(root_->Rename("e", *x_, "b"), ENOTEMPTY);
  EXPECT_ERRNO(x_->Rename("missing", *x_, "y"), ENOENT);
  EXPECT_ERRNO(x_->Rename("g", *g_, "y"), ENOTDIR);
  vfs::InodeRef other = NewTmpfsRoot();
  EXPECT_ERRNO(x_->Rename("g", *other, "g"), EXDEV);
}

TEST_F(TmpfsRenameTest, SameNameIsANoOp) {
  ASSERT_OK(x_->Rename("b", *x_, "b"));
  ASSERT_OK(x_->Rename("g", *x_, "g"));
  EXPECT_EQ(x_->Lookup("b").value(), b_);
  EXPECT_EQ(StatOf(x_).st_nlink, 3u);
}

TEST_F(TmpfsRenameTest, MovesFilesAndReplaces) {
  ASSERT_OK(x_->Rename("g", *e_, "g2"));
  EXPECT_ERRNO(x_->Lookup("g"), ENOENT);
  EXPECT_EQ(e_->Lookup("g2").value(), g_);
  // Replacing a file drops the old one's link.
  ASSERT_OK(b_->Rename("f", *e_, "g2"));
  EXPECT_EQ(e_->Lookup("g2").value(), f_);
  EXPECT_EQ(StatOf(g_).st_nlink, 0u);
  EXPECT_EQ(Names(b_), std::vector<std::string>{"c"});
}

TEST_F(TmpfsRenameTest, MovesDirectoriesAndFixesLinkCounts) {
  EXPECT_EQ(StatOf(root_).st_nlink, 4u);
  EXPECT_EQ(StatOf(x_).st_nlink, 3u);
  // Move b (with children) from x to e.
  ASSERT_OK(x_->Rename("b", *e_, "b"));
  EXPECT_EQ(StatOf(x_).st_nlink, 2u);
  EXPECT_EQ(StatOf(e_).st_nlink, 3u);
  // The parent link moved too: now x can go below b.
  ASSERT_OK(root_->Rename("x", *c_, "x"));
  EXPECT_EQ(StatOf(root_).st_nlink, 3u);
  // Replacing an empty directory.
  vfs::InodeRef empty = root_->Mkdir("empty", 0755).value();
  ASSERT_OK(e_->Rename("b", *root_, "empty"));
  EXPECT_EQ(StatOf(empty).st_nlink, 0u);
  EXPECT_EQ(root_->Lookup("empty").value(), b_);
  EXPECT_EQ(StatOf(root_).st_nlink, 4u);  // 2 + {e, empty}
  EXPECT_EQ(StatOf(e_).st_nlink, 2u);
}

TEST_F(TmpfsRenameTest, UpdatesTimes) {
  AgeTimes(x_);
  AgeTimes(e_);
  AgeTimes(g_);
  ASSERT_OK(x_->Rename("g", *e_, "g"));
  EXPECT_GT(StatOf(x_).st_mtim.tv_sec, 1);
  EXPECT_GT(StatOf(e_).st_mtim.tv_sec, 1);
  EXPECT_EQ(StatOf(g_).st_mtim.tv_sec, 1);
  EXPECT_GT(StatOf(g_).st_ctim.tv_sec, 1);
}

// RENAME_WHITEOUT: the file moves and a character device 0:0 with mode 0
// takes its old name (a directory moves the same way); errors leave both
// names as they were.
TEST_F(TmpfsRenameTest, WhiteoutTakesTheOldName) {
  vfs::InodeRef w = x_->RenameWhiteout("g", *e_, "g2").value();
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(e_->Lookup("g2").value(), g_);
  EXPECT_EQ(x_->Lookup("g").value(), w);
  struct stat st = StatOf(w);
  EXPECT_EQ(st.st_mode, S_IFCHR);
  EXPECT_EQ(st.st_rdev, 0u);
  EXPECT_EQ(st.st_size, 0);
  ASSERT_OK(x_->Unlink("g"));
  // A directory: its old parent keeps one link less (the whiteout is no
  // directory).
  ASSERT_NE(x_->RenameWhiteout("b", *e_, "b").value(), nullptr);
  EXPECT_EQ(StatOf(x_).st_nlink, 2u);
  EXPECT_EQ(StatOf(e_).st_nlink, 3u);
  EXPECT_EQ(x_->Lookup("b").value()->Type(), S_IFCHR);
  // Errors change nothing.
  EXPECT_ERRNO(e_->RenameWhiteout("g2", *e_, "b"), EISDIR);
  EXPECT_EQ(e_->Lookup("g2").value(), g_);
  EXPECT_ERRNO(e_->RenameWhiteout("missing", *e_, "y"), ENOENT);
  EXPECT_ERRNO(e_->Lookup("missing"), ENOENT);
  // Two names of one inode: nothing happens, no whiteout.
  ASSERT_OK(e_->Link("g3", g_));
  EXPECT_EQ(e_->RenameWhiteout("g2", *e_, "g3").value(), nullptr);
  EXPECT_EQ(e_->Lookup("g2").value(), g_);
}

// A minimal foreign inode, as a device node would be.
class FakeDevice : public vfs::Inode {
 public:
  Result<struct stat> Stat() override {
    struct stat st {};
    st.st_ino = 4242;
    st.st_mode = S_IFCHR | 0666;
    return st;
  }
  mode_t Type() override { return S_IFCHR; }
};

// File data lives in the sandbox's memory file: a shared page is the very
// page read(2) and write(2) use, holes are allocated on demand, pages wholly
// past the end are refused, and freeing the file gives the memory back.
TEST(TmpfsTest, SharedPagesAreTheFilesOwnData) {
  MemoryFile& mf = MemoryFile::Sandbox();
  const size_t before = mf.used_bytes();
  {
    vfs::InodeRef root = NewTmpfsRoot();
    auto f = root->Create("f", 0644);
    ASSERT_TRUE(f.ok());
    vfs::InodeRef file = *f;
    EXPECT_TRUE(file->SharesPages());
    const std::string text = "abcdefghijklmnopqrstuvwxyz";
    ASSERT_EQ(file->WriteAt(text.data(), text.size(), 4096 + 10).value(), text.size());
    // Page 0 stays a hole.
    EXPECT_EQ(mf.used_bytes(), before + 4096);
    auto page1 = file->SharedPage(1);
    ASSERT_TRUE(page1.ok());
    EXPECT_EQ(std::string(mf.At(*page1) + 10, 3), "abc");
    memcpy(mf.At(*page1) + 20, "xyz", 3);  // a write through a mapping
    char buf[3];
    ASSERT_EQ(file->ReadAt(buf, 3, 4096 + 20).value(), 3u);
    EXPECT_EQ(std::string(buf, 3), "xyz");
    auto page0 = file->SharedPage(0);  // the hole gets a page, zeroed
    ASSERT_TRUE(page0.ok());
    EXPECT_EQ(mf.At(*page0)[100], 0);
    EXPECT_EQ(file->SharedPage(2).error(), EFAULT);  // wholly past the end (4132 bytes)
    // The mapper's references keep the pages after the file lets go.
    ASSERT_TRUE(root->Unlink("f").ok());
    file.reset();
    EXPECT_EQ(mf.used_bytes(), before + 2 * 4096);
    mf.Free(*page0, 1);
    mf.Free(*page1, 1);
  }
  EXPECT_EQ(mf.used_bytes(), before);
}

TEST(TmpfsTest, TruncateReturnsPagesToTheMemoryFile) {
  MemoryFile& mf = MemoryFile::Sandbox();
  const size_t before = mf.used_bytes();
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef file = root->Create("f", 0644).value();
  std::string data(5 * 4096, 'd');
  ASSERT_EQ(file->WriteAt(data.data(), data.size(), 0).value(), data.size());
  EXPECT_EQ(mf.used_bytes(), before + 5 * 4096);
  vfs::SetAttr trunc;
  trunc.set_size = true;
  trunc.size = 4096 + 1;
  ASSERT_TRUE(file->SetAttributes(trunc).ok());
  EXPECT_EQ(mf.used_bytes(), before + 2 * 4096);
  trunc.size = 3 * 4096;  // the tail of page 1 reads zeros after growing again
  ASSERT_TRUE(file->SetAttributes(trunc).ok());
  char c = 'x';
  ASSERT_EQ(file->ReadAt(&c, 1, 4096 + 1).value(), 1u);
  EXPECT_EQ(c, 0);
}

TEST(TmpfsTest, AddChild) {
  vfs::InodeRef root = NewTmpfsRoot();
  auto dev = std::make_shared<FakeDevice>();
  ASSERT_OK(AddChild(*root, "null", dev));
  EXPECT_EQ(root->Lookup("null").value(), dev);
  auto entries = root->ReadDir().value();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].ino, 4242u);
  EXPECT_EQ(entries[0].type, DT_CHR);
  EXPECT_ERRNO(AddChild(*root, "null", dev), EEXIST);
  EXPECT_ERRNO(AddChild(*dev, "x", dev), ENOTDIR);
  vfs::InodeRef f = root->Create("f", 0644).value();
  EXPECT_ERRNO(AddChild(*f, "x", dev), ENOTDIR);
  // A tmpfs file of the same instance gets a second name (a hard link).
  ASSERT_OK(AddChild(*root, "f2", f));
  EXPECT_EQ(StatOf(f).st_nlink, 2u);
  ASSERT_OK(root->Unlink("f"));
  EXPECT_EQ(StatOf(f).st_nlink, 1u);
  // Directories cannot get a second name (link(2): EPERM).
  vfs::InodeRef d = root->Mkdir("d", 0755).value();
  EXPECT_ERRNO(AddChild(*root, "d2", d), EPERM);
  // Device nodes can be removed and renamed like files.
  ASSERT_OK(root->Rename("null", *d, "null"));
  ASSERT_OK(d->Unlink("null"));
}

TEST(TmpfsTest, ResolveThroughVfs) {
  vfs::InodeRef root = NewTmpfsRoot();
  vfs::InodeRef a = root->Mkdir("a", 0755).value();
  vfs::InodeRef f = a->Create("f", 0644).value();
  ASSERT_OK(root->Symlink("l", "a/f"));
  vfs::FsContext fs;
  fs.root = std::make_shared<vfs::Dentry>("", nullptr, root);
  absl::Cleanup release = [&fs] { fs.root->ReleaseTree(); };
  fs.cwd = fs.root;
  auto d = vfs::Resolve(fs, fs.cwd, "/l", true);
  ASSERT_OK(d);
  EXPECT_EQ((*d)->inode(), f);
  EXPECT_EQ((*d)->Path(), "/a/f");
  EXPECT_ERRNO(vfs::Resolve(fs, fs.cwd, "/a/f/", true), ENOTDIR);
  EXPECT_ERRNO(vfs::Resolve(fs, fs.cwd, "/a/missing", true), ENOENT);
}

}  // namespace
}  // namespace husk::tmpfs
