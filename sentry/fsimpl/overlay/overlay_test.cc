#include "sentry/fsimpl/overlay/overlay.h"

#include <errno.h>

#include <string>
#include <vector>

#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"

namespace husk::overlay {
namespace {

// The lower as the gofer presents it: every change is EROFS. It counts the
// attempts, which the overlay must never make.
class ReadOnly : public vfs::Inode {
 public:
  explicit ReadOnly(vfs::InodeRef in, int* attempts) : in_(std::move(in)), attempts_(attempts) {}

  Result<struct stat> Stat() override { return in_->Stat(); }
  mode_t Type() override { return in_->Type(); }
  Result<vfs::InodeRef> Lookup(const std::string& name) override {
    ASSIGN_OR_RETURN(vfs::InodeRef child, in_->Lookup(name));
    return vfs::InodeRef(std::make_shared<ReadOnly>(child, attempts_));
  }
  Result<std::vector<vfs::Dirent>> ReadDir() override { return in_->ReadDir(); }
  Result<std::string> Readlink() override { return in_->Readlink(); }
  Result<size_t> ReadAt(char* buf, size_t n, uint64_t offset) override {
    return in_->ReadAt(buf, n, offset);
  }
  Result<vfs::FileRef> Open(int flags) override {
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return Refuse();
    return Inode::Open(flags);
  }
  Result<vfs::InodeRef> Create(const std::string&, mode_t) override { return Refuse(); }
  Result<vfs::InodeRef> Mkdir(const std::string&, mode_t) override { return Refuse(); }
  Result<vfs::InodeRef> Symlink(const std::string&, const std::string&) override {
    return Refuse();
  }
  Status Unlink(const std::string&) override { return Refuse(); }
  Status Rmdir(const std::string&) override { return Refuse(); }
  Status Rename(const std::string&, vfs::Inode&, const std::string&) override { return Refuse(); }
  Result<size_t> WriteAt(const char*, size_t, uint64_t) override { return Refuse(); }
  Status SetAttributes(const vfs::SetAttr&) override { return Refuse(); }

 private:
  Errno Refuse() {
    ++*attempts_;
    return Errno{EROFS};
  }
  vfs::InodeRef in_;
  int* attempts_;
};

vfs::SetAttr Mode(mode_t mode) {
  vfs::SetAttr a;
  a.set_mode = true;
  a.mode = mode;
  return a;
}

class OverlayTest : public ::testing::Test {
 protected:
  // lower: /etc/{passwd, hosts, sub/deep}, /bin/sh, /link -> etc/passwd,
  //        /empty/, /both/{lower_only}, /sparse (a hole then "end")
  // upper: /both/{upper_only, shadowed}
  void SetUp() override {
    vfs::InodeRef etc = lower_->Mkdir("etc", 0755).value();
    Write(etc->Create("passwd", 0644).value(), "root:x:0:0\n");
    Write(etc->Create("hosts", 0600).value(), "127.0.0.1 localhost\n");
    vfs::InodeRef sub = etc->Mkdir("sub", 0750).value();
    Write(sub->Create("deep", 0644).value(), "deep");
    vfs::InodeRef bin = lower_->Mkdir("bin", 0755).value();
    Write(bin->Create("sh", 0755).value(), std::string(100000, 'x'));
    ASSERT_OK(lower_->Symlink("link", "etc/passwd"));
    ASSERT_OK(lower_->Mkdir("empty", 0700));
    vfs::InodeRef both = lower_->Mkdir("both", 0755).value();
    Write(both->Create("lower_only", 0644).value(), "L");
    Write(both->Create("shadowed", 0644).value(), "lower");
    ASSERT_OK(lower_->Create("sparse", 0644).value()->WriteAt("end", 3, 1 << 20));
    ASSERT_OK(lower_->SetAttributes(Mode(0755)));

    vfs::InodeRef ub = upper_->Mkdir("both", 0755).value();
    Write(ub->Create("upper_only", 0644).value(), "U");
    Write(ub->Create("shadowed", 0644).value(), "upper");

    root_ = NewOverlayRoot(upper_, std::make_shared<ReadOnly>(lower_, &lower_changes_));
    fs_.root = std::make_shared<vfs::Dentry>("", nullptr, root_);
    fs_.cwd = fs_.root;
  }

  void TearDown() override {
    EXPECT_EQ(lower_changes_, 0) << "the overlay tried to change the lower";
    fs_.root->ReleaseTree();
  }

  static void Write(const vfs::InodeRef& f, const std::string& s) {
    ASSERT_OK(f->WriteAt(s.data(), s.size(), 0));
  }
  static std::string Read(const vfs::InodeRef& inode) {
    std::string out(inode->Stat().value().st_size, '\0');
    auto r = inode->ReadAt(out.data(), out.size(), 0);
    EXPECT_TRUE(r.ok());
    out.resize(r.ok() ? *r : 0);
    return out;
  }
  // Walks from `dir` without the VFS.
  static Result<vfs::InodeRef> At(vfs::InodeRef dir, const std::string& path) {
    size_t i = 0;
    while (i < path.size()) {
      size_t j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      ASSIGN_OR_RETURN(dir, dir->Lookup(path.substr(i, j - i)));
      i = j + 1;
    }
    return dir;
  }
  Result<vfs::InodeRef> O(const std::string& path) { return At(root_, path); }
  Result<vfs::InodeRef> U(const std::string& path) { return At(upper_, path); }
  Result<vfs::InodeRef> L(const std::string& path) { return At(lower_, path); }
  std::vector<std::string> List(const std::string& path) {
    std::vector<std::string> out;
    auto dir = path.empty() ? Result<vfs::InodeRef>(root_) : O(path);
    EXPECT_TRUE(dir.ok()) << path;
    if (!dir.ok()) return out;
    auto entries = (*dir)->ReadDir();
    EXPECT_TRUE(entries.ok()) << path;
    if (!entries.ok()) return out;
    for (auto& e : *entries) out.push_back(e.name);
    return out;
  }
  std::string ReadFile(const std::string& path) {
    auto f = O(path);
    EXPECT_TRUE(f.ok()) << path;
    return f.ok() ? Read(*f) : "";
  }

  int lower_changes_ = 0;
  vfs::InodeRef lower_ = tmpfs::NewTmpfsRoot(0755);
  vfs::InodeRef upper_ = tmpfs::NewTmpfsRoot();
  vfs::InodeRef root_;
  vfs::FsContext fs_;
};

TEST_F(OverlayTest, LookupPrefersUpperAndMergesDirectories) {
  EXPECT_EQ(ReadFile("etc/passwd"), "root:x:0:0\n");
  EXPECT_EQ(ReadFile("both/shadowed"), "upper");
  EXPECT_EQ(ReadFile("both/lower_only"), "L");
  EXPECT_EQ(ReadFile("both/upper_only"), "U");
  EXPECT_EQ(O("link").value()->Readlink().value(), "etc/passwd");
  EXPECT_ERRNO(O("nothing"), ENOENT);
  EXPECT_ERRNO(O("etc/passwd/x"), ENOTDIR);
  EXPECT_EQ(List(""), (std::vector<std::string>{"both", "bin", "empty", "etc", "link", "sparse"}));
  EXPECT_EQ(List("both"), (std::vector<std::string>{"shadowed", "upper_only", "lower_only"}));
}

TEST_F(OverlayTest, SamePathSameInode) {
  EXPECT_EQ(O("etc/passwd").value(), O("etc/passwd").value());
  EXPECT_EQ(O("etc").value(), O("etc").value());
}

TEST_F(OverlayTest, StatIdentity) {
  struct stat root = root_->Stat().value();
  struct stat lower_root = lower_->Stat().value();
  struct stat passwd = O("etc/passwd").value()->Stat().value();
  struct stat lower_passwd = L("etc/passwd").value()->Stat().value();
  EXPECT_NE(root.st_dev, lower_root.st_dev);
  EXPECT_NE(root.st_dev, upper_->Stat().value().st_dev);
  EXPECT_EQ(passwd.st_dev, root.st_dev);
  EXPECT_EQ(passwd.st_ino, lower_passwd.st_ino);
  EXPECT_EQ(passwd.st_mode, S_IFREG | 0644);
  EXPECT_EQ(passwd.st_size, 11);
  // The root looks like the lower root; a merged directory has one link.
  EXPECT_EQ(root.st_mode, S_IFDIR | 0755);
  EXPECT_EQ(root.st_nlink, 1u);
  EXPECT_EQ(O("etc").value()->Stat()->st_nlink, 3u);  // lower only: the lower's count
  // Upper-only objects get numbers no lower object has.
  uint64_t upper_only = O("both/upper_only").value()->Stat()->st_ino;
  EXPECT_NE(upper_only, U("both/upper_only").value()->Stat()->st_ino);
  EXPECT_GE(upper_only, uint64_t{1} << 62);
  // Listings agree with stat.
  for (const std::string dir : {"", "both", "etc"}) {
    vfs::InodeRef d = dir.empty() ? root_ : O(dir).value();
    std::vector<vfs::Dirent> entries = d->ReadDir().value();
    for (auto& e : entries) {
      struct stat st = d->Lookup(e.name).value()->Stat().value();
      EXPECT_EQ(e.ino, st.st_ino) << dir << "/" << e.name;
      EXPECT_EQ(e.type, IFTODT(st.st_mode)) << dir << "/" << e.name;
    }
  }
}

TEST_F(OverlayTest, WriteOpenCopiesUp) {
  vfs::InodeRef passwd = O("etc/passwd").value();
  uint64_t ino = passwd->Stat()->st_ino;
  vfs::InodeRef etc = O("etc").value();
  timespec etc_mtime = etc->Stat()->st_mtim;
  auto file = passwd->Open(O_WRONLY | O_APPEND);
  ASSERT_OK(file);
  EXPECT_EQ((*file)->inode(), passwd);
  ASSERT_OK((*file)->Write("bin:x:1:1\n", 10));
  EXPECT_EQ(ReadFile("etc/passwd"), "root:x:0:0\nbin:x:1:1\n");
  // The lower is untouched, the upper holds the copy with the same mode,
  // the parent chain was made with the lower's modes and times.
  EXPECT_EQ(Read(L("etc/passwd").value()), "root:x:0:0\n");
  EXPECT_EQ(Read(U("etc/passwd").value()), "root:x:0:0\nbin:x:1:1\n");
  EXPECT_EQ(U("etc/passwd").value()->Stat()->st_mode, S_IFREG | 0644);
  EXPECT_EQ(U("etc").value()->Stat()->st_mode, S_IFDIR | 0755);
  EXPECT_ERRNO(U("etc/hosts"), ENOENT);  // only what changed
  // Identity is stable across copy-up; the copy is not a change of etc.
  EXPECT_EQ(passwd->Stat()->st_ino, ino);
  EXPECT_EQ(O("etc/passwd").value(), passwd);
  EXPECT_EQ(etc->Stat()->st_mtim.tv_sec, etc_mtime.tv_sec);
  EXPECT_EQ(etc->Stat()->st_mtim.tv_nsec, etc_mtime.tv_nsec);
  // The merged etc lists each name once.
  EXPECT_EQ(List("etc"), (std::vector<std::string>{"passwd", "hosts", "sub"}));
}

TEST_F(OverlayTest, DeepCopyUpKeepsModes) {
  vfs::InodeRef deep = O("etc/sub/deep").value();
  ASSERT_OK(deep->SetAttributes(Mode(0600)));
  EXPECT_EQ(U("etc/sub").value()->Stat()->st_mode, S_IFDIR | 0750);
  EXPECT_EQ(U("etc/sub/deep").value()->Stat()->st_mode, S_IFREG | 0600);
  EXPECT_EQ(Read(U("etc/sub/deep").value()), "deep");
  EXPECT_EQ(deep->Stat()->st_mode, S_IFREG | 0600);
  EXPECT_EQ(L("etc/sub/deep").value()->Stat()->st_mode, S_IFREG | 0644);
}

TEST_F(OverlayTest, CopyUpKeepsTimesAndOwner) {
  vfs::SetAttr a;
  a.set_mtime = a.set_atime = a.set_uid = a.set_gid = true;
  a.mtime = a.atime = timespec{1234, 5};
  a.uid = 1000;
  a.gid = 1000;
  ASSERT_OK(L("etc/hosts").value()->SetAttributes(a));
  vfs::InodeRef hosts = O("etc/hosts").value();
  ASSERT_OK(hosts->Open(O_RDWR));
  struct stat st = U("etc/hosts").value()->Stat().value();
  EXPECT_EQ(st.st_mtim.tv_sec, 1234);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1000u);
  EXPECT_EQ(st.st_mode, S_IFREG | 0600);
}

TEST_F(OverlayTest, TruncatingOpenCopiesUpEmpty) {
  vfs::InodeRef sh = O("bin/sh").value();
  ASSERT_OK(sh->Open(O_WRONLY | O_TRUNC));
  EXPECT_EQ(sh->Stat()->st_size, 0);
  EXPECT_EQ(U("bin/sh").value()->Stat()->st_mode, S_IFREG | 0755);
  EXPECT_EQ(L("bin/sh").value()->Stat()->st_size, 100000);
}

TEST_F(OverlayTest, CopyUpKeepsHoles) {
  vfs::InodeRef sparse = O("sparse").value();
  ASSERT_OK(sparse->WriteAt("x", 1, 0));
  struct stat st = U("sparse").value()->Stat().value();
  EXPECT_EQ(st.st_size, (1 << 20) + 3);
  EXPECT_EQ(st.st_blocks, 16);  // the first page and the last one
  std::string all = ReadFile("sparse");
  EXPECT_EQ(all.substr(0, 1), "x");
  EXPECT_EQ(all.substr(1 << 20), "end");
  EXPECT_EQ(all.substr(1, (1 << 20) - 1), std::string((1 << 20) - 1, '\0'));
}

TEST_F(OverlayTest, ReadOnlyOpenReadsTheLower) {
  vfs::InodeRef sh = O("bin/sh").value();
  auto file = sh->Open(O_RDONLY);
  ASSERT_OK(file);
  EXPECT_EQ((*file)->inode(), sh);
  EXPECT_EQ((*file)->Stat()->st_dev, root_->Stat()->st_dev);
  char buf[10];
  EXPECT_EQ((*file)->Read(buf, sizeof(buf)).value(), 10u);
  EXPECT_EQ((*file)->Seek(0, SEEK_END).value(), 100000);
  EXPECT_ERRNO((*file)->Write("x", 1), EBADF);
  auto mappable = (*file)->GetMappable();
  ASSERT_NE(mappable, nullptr);
  EXPECT_EQ(mappable->MapsInode(), sh->Stat()->st_ino);
  EXPECT_EQ(mappable->MapsDevice(), static_cast<uint64_t>(root_->Stat()->st_dev));
  EXPECT_EQ(mappable->ReadForMapping(0, buf, 4).value(), 4u);
  EXPECT_ERRNO(U("bin"), ENOENT);  // nothing copied up
  // Directories open read-only; writing a directory is EISDIR.
  ASSERT_OK(O("etc").value()->Open(O_RDONLY | O_DIRECTORY));
  EXPECT_ERRNO(O("etc").value()->Open(O_RDWR), EISDIR);
}

TEST_F(OverlayTest, UnlinkLeavesAWhiteout) {
  ASSERT_OK(O("etc").value()->Unlink("passwd"));
  EXPECT_ERRNO(O("etc/passwd"), ENOENT);
  EXPECT_EQ(List("etc"), (std::vector<std::string>{"hosts", "sub"}));
  EXPECT_EQ(Read(L("etc/passwd").value()), "root:x:0:0\n");
  EXPECT_ERRNO(O("etc").value()->Unlink("passwd"), ENOENT);
  // A new file of that name starts empty, not with the lower's data.
  vfs::InodeRef fresh = O("etc").value()->Create("passwd", 0600).value();
  EXPECT_EQ(Read(fresh), "");
  EXPECT_EQ(List("etc"), (std::vector<std::string>{"passwd", "hosts", "sub"}));
  // Unlinking that one keeps the lower hidden.
  ASSERT_OK(O("etc").value()->Unlink("passwd"));
  EXPECT_ERRNO(O("etc/passwd"), ENOENT);
  // Unlinking a merged entry removes the upper and hides the lower.
  ASSERT_OK(O("both").value()->Unlink("shadowed"));
  EXPECT_ERRNO(O("both/shadowed"), ENOENT);
  EXPECT_ERRNO(U("both/shadowed"), ENOENT);
}

TEST_F(OverlayTest, UnlinkedInodeReportsNoLinks) {
  vfs::InodeRef hosts = O("etc/hosts").value();
  ASSERT_OK(O("etc").value()->Unlink("hosts"));
  EXPECT_EQ(hosts->Stat()->st_nlink, 0u);
  EXPECT_EQ(Read(hosts), "127.0.0.1 localhost\n");
  EXPECT_ERRNO(hosts->SetAttributes(Mode(0644)), ENOENT);
}

TEST_F(OverlayTest, ErrnosOfDirectoryChanges) {
  vfs::InodeRef etc = O("etc").value();
  EXPECT_ERRNO(etc->Create("passwd", 0644), EEXIST);
  EXPECT_ERRNO(etc->Mkdir("sub", 0755), EEXIST);
  EXPECT_ERRNO(root_->Symlink("link", "x"), EEXIST);
  EXPECT_ERRNO(root_->Unlink("etc"), EISDIR);
  EXPECT_ERRNO(etc->Rmdir("passwd"), ENOTDIR);
  EXPECT_ERRNO(root_->Rmdir("etc"), ENOTEMPTY);
  EXPECT_ERRNO(root_->Rmdir("both"), ENOTEMPTY);
  EXPECT_ERRNO(root_->Unlink("nothing"), ENOENT);
  EXPECT_ERRNO(root_->Rmdir("nothing"), ENOENT);
  EXPECT_ERRNO(root_->Lookup(std::string(256, 'x')), ENAMETOOLONG);
  EXPECT_ERRNO(O("etc/passwd").value()->Create("x", 0644), ENOTDIR);
  EXPECT_ERRNO(root_->Symlink("s", ""), ENOENT);  // tmpfs's answer
  EXPECT_TRUE(List("etc") == (std::vector<std::string>{"hosts", "passwd", "sub"}));
}

TEST_F(OverlayTest, RmdirSeesTheMergedView) {
  vfs::InodeRef both = O("both").value();
  EXPECT_ERRNO(root_->Rmdir("both"), ENOTEMPTY);
  ASSERT_OK(both->Unlink("upper_only"));
  ASSERT_OK(both->Unlink("shadowed"));
  EXPECT_ERRNO(root_->Rmdir("both"), ENOTEMPTY);  // lower_only is still there
  ASSERT_OK(both->Unlink("lower_only"));
  EXPECT_TRUE(List("both").empty());
  ASSERT_OK(root_->Rmdir("both"));
  EXPECT_ERRNO(O("both"), ENOENT);
  EXPECT_ERRNO(U("both"), ENOENT);
  EXPECT_EQ(both->Stat()->st_nlink, 0u);
  EXPECT_ERRNO(both->Create("x", 0644), ENOENT);
  // A new directory of that name is opaque: the lower's entries stay hidden.
  vfs::InodeRef again = root_->Mkdir("both", 0700).value();
  EXPECT_TRUE(List("both").empty());
  EXPECT_ERRNO(O("both/lower_only"), ENOENT);
  EXPECT_EQ(again->Stat()->st_mode, S_IFDIR | 0700);
  EXPECT_EQ(again->Stat()->st_nlink, 2u);
}

TEST_F(OverlayTest, RmdirOfLowerOnlyEmptyDirectory) {
  ASSERT_OK(root_->Rmdir("empty"));
  EXPECT_ERRNO(O("empty"), ENOENT);
  EXPECT_EQ(List(""), (std::vector<std::string>{"both", "bin", "etc", "link", "sparse"}));
}

TEST_F(OverlayTest, CreateInLowerDirectoryCopiesTheChainUp) {
  vfs::InodeRef sub = O("etc/sub").value();
  vfs::InodeRef f = sub->Create("new", 0640).value();
  Write(f, "n");
  EXPECT_EQ(Read(U("etc/sub/new").value()), "n");
  EXPECT_EQ(List("etc/sub"), (std::vector<std::string>{"new", "deep"}));
  EXPECT_EQ(sub->Stat()->st_nlink, 1u);  // now merged
  vfs::InodeRef d = sub->Mkdir("dir", 0755).value();
  EXPECT_TRUE(d->IsDir());
  vfs::InodeRef l = sub->Symlink("sym", "deep").value();
  EXPECT_EQ(l->Readlink().value(), "deep");
}

TEST_F(OverlayTest, RenameFileFromTheLower) {
  vfs::InodeRef etc = O("etc").value();
  vfs::InodeRef passwd = O("etc/passwd").value();
  uint64_t ino = passwd->Stat()->st_ino;
  ASSERT_OK(etc->Rename("passwd", *root_, "moved"));
  EXPECT_ERRNO(O("etc/passwd"), ENOENT);
  EXPECT_EQ(O("moved").value(), passwd);
  EXPECT_EQ(ReadFile("moved"), "root:x:0:0\n");
  EXPECT_EQ(passwd->Stat()->st_ino, ino);
  EXPECT_EQ(Read(L("etc/passwd").value()), "root:x:0:0\n");
  // Over a lower file: the lower one stays hidden, even after an unlink.
  ASSERT_OK(root_->Rename("moved", *etc, "hosts"));
  EXPECT_EQ(ReadFile("etc/hosts"), "root:x:0:0\n");
  ASSERT_OK(etc->Unlink("hosts"));
  EXPECT_ERRNO(O("etc/hosts"), ENOENT);
  EXPECT_EQ(List("etc"), std::vector<std::string>{"sub"});
}

TEST_F(OverlayTest, RenameSymlinkFromTheLower) {
  ASSERT_OK(root_->Rename("link", *root_, "link2"));
  EXPECT_EQ(O("link2").value()->Readlink().value(), "etc/passwd");
  EXPECT_ERRNO(O("link"), ENOENT);
}

TEST_F(OverlayTest, RenameDirectories) {
  vfs::InodeRef etc = O("etc").value();
  // A directory with a lower part cannot move (overlayfs without redirect_dir).
  EXPECT_ERRNO(root_->Rename("etc", *root_, "etc2"), EXDEV);
  EXPECT_ERRNO(root_->Rename("both", *root_, "both2"), EXDEV);
  // One made in the upper can, with its contents.
  vfs::InodeRef d = root_->Mkdir("d", 0755).value();
  Write(d->Create("f", 0644).value(), "f");
  ASSERT_OK(root_->Rename("d", *etc, "d"));
  EXPECT_EQ(ReadFile("etc/d/f"), "f");
  EXPECT_EQ(O("etc/d").value(), d);
  // Errnos in Linux's order.
  EXPECT_ERRNO(etc->Rename("d", *d, "x"), EINVAL);
  EXPECT_ERRNO(etc->Rename("d", *etc, "passwd"), ENOTDIR);
  EXPECT_ERRNO(etc->Rename("passwd", *etc, "d"), EISDIR);
  EXPECT_ERRNO(etc->Rename("d", *root_, "both"), ENOTEMPTY);
  EXPECT_ERRNO(O("etc/sub").value()->Rename("deep", *root_, "etc"), ENOTEMPTY);
  EXPECT_ERRNO(etc->Rename("nothing", *etc, "x"), ENOENT);
  ASSERT_OK(etc->Rename("d", *etc, "d"));
  vfs::InodeRef other = tmpfs::NewTmpfsRoot();
  EXPECT_ERRNO(etc->Rename("d", *other, "d"), EXDEV);
  // Over an empty lower directory: the moved one replaces it, opaque.
  ASSERT_OK(etc->Rename("d", *root_, "empty"));
  EXPECT_EQ(List("empty"), std::vector<std::string>{"f"});
  EXPECT_EQ(O("empty").value(), d);
}

TEST_F(OverlayTest, RenameOverAnAncestorIsNotEmpty) {
  vfs::InodeRef d = root_->Mkdir("d", 0755).value();
  vfs::InodeRef e = d->Mkdir("e", 0755).value();
  ASSERT_OK(e->Create("f", 0644));
  EXPECT_ERRNO(e->Rename("f", *root_, "d"), ENOTEMPTY);
  EXPECT_ERRNO(e->Rename("f", *d, "e"), ENOTEMPTY);
}

TEST_F(OverlayTest, SetAttributesOnSymlinkCopiesItUp) {
  vfs::SetAttr a;
  a.set_uid = true;
  a.uid = 7;
  ASSERT_OK(O("link").value()->SetAttributes(a));
  EXPECT_EQ(U("link").value()->Readlink().value(), "etc/passwd");
  EXPECT_EQ(O("link").value()->Stat()->st_uid, 7u);
}

TEST_F(OverlayTest, ThroughTheVfs) {
  auto d = vfs::Resolve(fs_, fs_.cwd, "/link", true);
  ASSERT_OK(d);
  EXPECT_EQ((*d)->inode(), O("etc/passwd").value());
  auto pn = vfs::ResolveParent(fs_, fs_.cwd, "/etc/sub/newfile");
  ASSERT_OK(pn);
  ASSERT_OK(pn->parent->inode()->Create(pn->name, 0644));
  EXPECT_EQ(vfs::Resolve(fs_, fs_.cwd, "/etc/sub/newfile", true).value()->Path(),
            "/etc/sub/newfile");
}

TEST(OverlayNoLowerTest, UpperOnly) {
  vfs::InodeRef root = NewOverlayRoot(tmpfs::NewTmpfsRoot(), nullptr);
  vfs::InodeRef f = root->Create("f", 0644).value();
  ASSERT_OK(f->WriteAt("x", 1, 0));
  ASSERT_OK(root->Unlink("f"));
  EXPECT_TRUE(root->ReadDir().value().empty());
  EXPECT_EQ(root->Stat()->st_nlink, 2u);
}

}  // namespace
}  // namespace husk::overlay
