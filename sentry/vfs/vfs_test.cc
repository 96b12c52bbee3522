// Path resolution, the dentry cache and mounts, and the generic File, over
// tmpfs instances (the VFS itself stores nothing).
#include "sentry/vfs/vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"

namespace husk::vfs {
namespace {

class VfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_inode_ = tmpfs::NewTmpfsRoot(0755);
    fs_.root = std::make_shared<Dentry>("/", nullptr, root_inode_);
    fs_.cwd = fs_.root;
    // /a/b/file, /a/link -> b/file, /a/up -> .., /abs -> /a/b, /loop -> loop,
    // /dangling -> nowhere
    InodeRef a = root_inode_->Mkdir("a", 0755).value();
    InodeRef b = a->Mkdir("b", 0755).value();
    file_ = b->Create("file", 0644).value();
    ASSERT_OK(file_->WriteAt("hello", 5, 0));
    ASSERT_OK(a->Symlink("link", "b/file"));
    ASSERT_OK(a->Symlink("up", ".."));
    ASSERT_OK(root_inode_->Symlink("abs", "/a/b"));
    ASSERT_OK(root_inode_->Symlink("loop", "loop"));
    ASSERT_OK(root_inode_->Symlink("dangling", "nowhere"));
  }
  void TearDown() override { fs_.root->ReleaseTree(); }

  Result<DentryRef> Get(const std::string& path, bool follow = true) {
    return Resolve(fs_, fs_.cwd, path, follow);
  }

  InodeRef root_inode_;
  InodeRef file_;
  FsContext fs_;
};

TEST_F(VfsTest, ResolvesAbsoluteAndRelativePaths) {
  ASSERT_OK(Get("/a/b/file"));
  EXPECT_EQ((*Get("/a/b/file"))->inode(), file_);
  EXPECT_EQ((*Get("a//b///file"))->inode(), file_);
  EXPECT_EQ((*Get("/a/./b/../b/file"))->inode(), file_);
  fs_.cwd = *Get("/a/b");
  EXPECT_EQ((*Get("file"))->inode(), file_);
  EXPECT_EQ((*Get("../b/file"))->inode(), file_);
  // The cache gives one dentry per name.
  EXPECT_EQ(*Get("/a/b/file"), *Get("file"));
}

TEST_F(VfsTest, DotDotStopsAtTheRoot) {
  EXPECT_EQ(*Get("/.."), fs_.root);
  EXPECT_EQ(*Get("/../../.."), fs_.root);
  EXPECT_EQ((*Get("/../a/../../a/b/file"))->inode(), file_);
  // A chroot-like context: .. never leaves fs.root.
  FsContext jail{*Get("/a"), *Get("/a"), 022};
  auto d = Resolve(jail, jail.cwd, "../../b/file", true);
  ASSERT_OK(d);
  EXPECT_EQ((*d)->inode(), file_);
}

TEST_F(VfsTest, FollowsSymlinks) {
  EXPECT_EQ((*Get("/a/link"))->inode(), file_);
  EXPECT_TRUE((*Get("/a/link", false))->inode()->IsSymlink());
  // Relative targets resolve from the link's directory; .. in a target too.
  EXPECT_EQ((*Get("/a/up/a/b/file"))->inode(), file_);
  EXPECT_EQ((*Get("/abs/file"))->inode(), file_);
  // A trailing slash follows a link to a directory even without `follow`.
  EXPECT_TRUE((*Get("/abs/", false))->inode()->IsDir());
}

TEST_F(VfsTest, ResolutionErrorsMatchLinux) {
  EXPECT_ERRNO(Get(""), ENOENT);
  EXPECT_ERRNO(Get("/missing"), ENOENT);
  EXPECT_ERRNO(Get("/missing/x"), ENOENT);
  EXPECT_ERRNO(Get("/a/b/file/x"), ENOTDIR);
  EXPECT_ERRNO(Get("/a/b/file/"), ENOTDIR);
  EXPECT_ERRNO(Get("/a/link/"), ENOTDIR);
  EXPECT_ERRNO(Get("/loop"), ELOOP);
  EXPECT_OK(Get("/loop", false));  // the link itself, not followed
  EXPECT_ERRNO(Get("/dangling"), ENOENT);
  EXPECT_OK(Get("/dangling", false));
  EXPECT_ERRNO(Get("/" + std::string(256, 'x')), ENAMETOOLONG);
  EXPECT_ERRNO(Get(std::string(kPathMax, '/')), ENAMETOOLONG);
}

TEST_F(VfsTest, SymlinkLimitIsForty) {
  // l0 -> a/b/file, l1 -> l0, ... : 40 links resolve, 41 give ELOOP.
  ASSERT_OK(root_inode_->Symlink("l0", "a/b/file"));
  for (int i = 1; i <= kMaxSymlinks; i++) {
    ASSERT_OK(root_inode_->Symlink("l" + std::to_string(i), "l" + std::to_string(i - 1)));
  }
  EXPECT_EQ((*Get("/l" + std::to_string(kMaxSymlinks - 1)))->inode(), file_);
  EXPECT_ERRNO(Get("/l" + std::to_string(kMaxSymlinks)), ELOOP);
}

TEST_F(VfsTest, ResolveParentSplitsTheLastComponent) {
  auto pn = ResolveParent(fs_, fs_.cwd, "/a/b/new");
  ASSERT_OK(pn);
  EXPECT_EQ(pn->parent, *Get("/a/b"));
  EXPECT_EQ(pn->name, "new");
  EXPECT_FALSE(pn->must_be_dir);

  pn = ResolveParent(fs_, fs_.cwd, "/abs/dir/");  // the parent goes through a link
  ASSERT_OK(pn);
  EXPECT_EQ(pn->parent, *Get("/a/b"));
  EXPECT_EQ(pn->name, "dir");
  EXPECT_TRUE(pn->must_be_dir);

  pn = ResolveParent(fs_, fs_.cwd, "/");
  ASSERT_OK(pn);
  EXPECT_EQ(pn->parent, fs_.root);
  EXPECT_EQ(pn->name, "");

  pn = ResolveParent(fs_, fs_.cwd, "a/..");
  ASSERT_OK(pn);
  EXPECT_EQ(pn->name, "..");

  EXPECT_ERRNO(ResolveParent(fs_, fs_.cwd, "/a/b/file/x"), ENOTDIR);
  EXPECT_ERRNO(ResolveParent(fs_, fs_.cwd, "/missing/x"), ENOENT);
  EXPECT_ERRNO(ResolveParent(fs_, fs_.cwd, ""), ENOENT);
}

TEST_F(VfsTest, MountsCoverTheirMountpointAndDotDotCrossesBack) {
  InodeRef other = tmpfs::NewTmpfsRoot(01777);
  ASSERT_OK(other->Create("inner", 0600));
  DentryRef point = *Get("/a/b");
  DentryRef mroot = point->Mount(other);
  EXPECT_EQ(point->mounted(), mroot);
  EXPECT_EQ(mroot->mountpoint(), point);

  // Walking to /a/b now gives the mounted root; the covered file is hidden.
  EXPECT_EQ(*Get("/a/b"), mroot);
  EXPECT_OK(Get("/a/b/inner"));
  EXPECT_ERRNO(Get("/a/b/file"), ENOENT);
  // .. from the mount's root is the mountpoint's parent.
  EXPECT_EQ(*Get("/a/b/.."), *Get("/a"));
  EXPECT_EQ((*Get("/a/b/inner"))->Path(), "/a/b/inner");
  EXPECT_EQ(mroot->Path(), "/a/b");
}

TEST_F(VfsTest, PathOfNestedAndDeletedDentries) {
  EXPECT_EQ(fs_.root->Path(), "/");
  EXPECT_EQ((*Get("/a/b/file"))->Path(), "/a/b/file");
  DentryRef f = *Get("/a/b/file");
  DentryRef b = *Get("/a/b");
  ASSERT_OK(b->inode()->Unlink("file"));
  b->ForgetChild("file");
  EXPECT_TRUE(f->deleted());
  EXPECT_EQ(f->Path(), "/a/b/file (deleted)");
  EXPECT_FALSE(b->deleted());
  EXPECT_ERRNO(Get("/a/b/file"), ENOENT);
}

TEST_F(VfsTest, MoveChildKeepsTheDentryAndDeletesTheReplacedOne) {
  DentryRef a = *Get("/a");
  DentryRef f = *Get("/a/b/file");
  ASSERT_OK(a->inode()->Create("target", 0644));
  DentryRef target = *Get("/a/target");
  ASSERT_OK((*Get("/a/b"))->inode()->Rename("file", *a->inode(), "target"));
  (*Get("/a/b"))->MoveChild("file", *a, "target");
  EXPECT_EQ(*Get("/a/target"), f);
  EXPECT_EQ(f->Path(), "/a/target");
  EXPECT_EQ(f->parent(), a);
  EXPECT_TRUE(target->deleted());
  EXPECT_FALSE(f->deleted());
}

TEST_F(VfsTest, ReleaseTreeFreesTheCacheButKeepsHeldDentriesUsable) {
  std::weak_ptr<Dentry> b = *Get("/a/b");
  std::weak_ptr<Dentry> mroot = (*Get("/a/b"))->Mount(tmpfs::NewTmpfsRoot(0755));
  DentryRef held = *Get("/a/link", false);
  std::weak_ptr<Dentry> a = held->parent();
  fs_.root->ReleaseTree();
  // Nothing but the cache held /a/b and its mount.
  EXPECT_TRUE(b.expired());
  EXPECT_TRUE(mroot.expired());
  // A held dentry keeps its ancestors (a child holds its parent).
  EXPECT_FALSE(a.expired());
  EXPECT_EQ(held->Path(), "/a/link");
  held.reset();
  EXPECT_TRUE(a.expired());
  // The tree is usable again afterwards: lookups refill the cache.
  EXPECT_EQ((*Get("/a/b/file"))->inode(), file_);
}

TEST_F(VfsTest, DentryCacheEvictsUnusedEntriesAndKeepsUsedOnes) {
  SetDentryCacheLimit(100);
  InodeRef many = root_inode_->Mkdir("many", 0755).value();
  for (int i = 0; i < 1000; i++) ASSERT_OK(many->Create("f" + std::to_string(i), 0644));
  DentryRef held = *Get("/many/f0");
  std::weak_ptr<Dentry> mounted = *Get("/a");
  (*Get("/a"))->Mount(tmpfs::NewTmpfsRoot(0755));
  for (int i = 0; i < 1000; i++) ASSERT_OK(Get("/many/f" + std::to_string(i)));
  // Bounded: the unused entries went, what is held or mounted on stayed.
  EXPECT_LE(CachedDentries(), 100u);
  EXPECT_EQ(*Get("/many/f0"), held);
  EXPECT_FALSE(mounted.expired());
  EXPECT_EQ(*fs_.root->Child("a"), mounted.lock());
  // Evicted names are looked up again from the filesystem.
  EXPECT_EQ((*Get("/many/f999"))->inode(), *many->Lookup("f999"));
  SetDentryCacheLimit(1000);
}

TEST_F(VfsTest, DeepChainsAreFreedWithoutRecursion) {
  // Deeper than the host stack could take one frame per level.
  constexpr int kDepth = 200000;
  DentryRef cur = fs_.root;
  InodeRef dir = root_inode_->Mkdir("deep", 0755).value();
  cur = *cur->Child("deep");
  for (int i = 0; i < kDepth; i++) {
    dir = dir->Mkdir("d", 0755).value();
    cur = *cur->Child("d");
  }
  std::weak_ptr<Dentry> top = *Get("/deep");
  fs_.root->ForgetChild("deep");  // as rmdir of every level would leave it
  EXPECT_FALSE(top.expired());    // the deepest holds the chain
  cur.reset();
  dir.reset();
  EXPECT_TRUE(top.expired());
}

TEST_F(VfsTest, SameMountTellsMountsApart) {
  DentryRef a = *Get("/a"), b = *Get("/a/b");
  DentryRef mroot = b->Mount(tmpfs::NewTmpfsRoot(0755));
  ASSERT_OK(mroot->inode()->Mkdir("x", 0755));
  DentryRef x = *Get("/a/b/x");
  EXPECT_TRUE(SameMount(*a, *b));
  EXPECT_FALSE(SameMount(*a, *x));
  EXPECT_TRUE(SameMount(*mroot, *x));
}

// Mount namespaces: a copy sees what was mounted, and later mounts stay in
// the namespace that made them.
class MountNamespaceTest : public VfsTest {
 protected:
  void SetUp() override {
    VfsTest::SetUp();
    SetRootMount(fs_.root, {"tmpfs", "none", "rw"});
    ASSERT_OK(root_inode_->Mkdir("boot", 0755));
    boot_mount_ = (*Get("/boot"))->Mount(tmpfs::NewTmpfsRoot(0755), {"tmpfs", "boot", "rw"});
    ASSERT_OK(boot_mount_->inode()->Mkdir("m", 0755));
    ns_fs_ = fs_;
    ns_fs_.mnt_ns = MountNamespace::Copy(nullptr);
  }
  void TearDown() override {
    ns_fs_ = FsContext{};
    VfsTest::TearDown();
  }
  Result<DentryRef> GetIn(const std::string& path, bool follow = true) {
    return Resolve(ns_fs_, ns_fs_.root, path, follow);
  }

  DentryRef boot_mount_;
  FsContext ns_fs_;
};

TEST_F(MountNamespaceTest, ACopyCrossesTheSameMountsAndKeepsNewOnesToItself) {
  // The boot mount is crossed in both.
  EXPECT_EQ(*Get("/boot"), boot_mount_);
  EXPECT_EQ(*GetIn("/boot"), boot_mount_);
  DentryRef m = *GetIn("/boot/m");
  InodeRef t = tmpfs::NewTmpfsRoot(0755);
  ASSERT_OK(t->Create("inside", 0644));
  DentryRef root = ns_fs_.mnt_ns->AddMount(m, t, {"tmpfs", "src", ""}, 0);
  EXPECT_EQ(*GetIn("/boot/m"), root);
  EXPECT_OK(GetIn("/boot/m/inside"));
  // Not in the initial namespace.
  EXPECT_EQ(*Get("/boot/m"), m);
  EXPECT_ERRNO(Get("/boot/m/inside"), ENOENT);
  EXPECT_FALSE(IsMountpoint(fs_, *m));
  EXPECT_TRUE(IsMountpoint(ns_fs_, *m));
  // ".." from the mount's root goes to the directory above the mountpoint.
  EXPECT_EQ(*GetIn("/boot/m/.."), boot_mount_);
  // The tables differ.
  const std::string mine = RenderMountTable(false, ns_fs_.mnt_ns.get());
  EXPECT_NE(mine.find("src /boot/m tmpfs rw"), std::string::npos) << mine;
  EXPECT_NE(mine.find("boot /boot tmpfs rw"), std::string::npos) << mine;
  EXPECT_EQ(RenderMountTable(false).find("/boot/m"), std::string::npos);
  // A copy of the copy has it too, with ids of its own.
  auto again = MountNamespace::Copy(ns_fs_.mnt_ns.get());
  EXPECT_EQ(again->MountedOn(*m), root);
  EXPECT_NE(again->MountId(*root), ns_fs_.mnt_ns->MountId(*root));
  EXPECT_NE(ns_fs_.mnt_ns->MountId(*root), 0);
}

TEST_F(MountNamespaceTest, UnmountIsEinvalOffARootAndEbusyWhileUsed) {
  DentryRef m = *GetIn("/boot/m");
  MountNamespace& ns = *ns_fs_.mnt_ns;
  EXPECT_ERRNO(ns.Unmount(m, false, 1), EINVAL);
  EXPECT_ERRNO(ns.Unmount(ns_fs_.root, false, 1), EINVAL);
  DentryRef root = ns.AddMount(m, tmpfs::NewTmpfsRoot(0755), {"tmpfs", "x", ""}, 0);
  ASSERT_OK(root->inode()->Mkdir("d", 0755));
  DentryRef d = *GetIn("/boot/m/d");  // a working directory, say
  EXPECT_ERRNO(ns.Unmount(root, false, 1), EBUSY);
  d.reset();
  // A mount below makes it busy too; detaching takes both.
  DentryRef sub = ns.AddMount(*GetIn("/boot/m/d"), tmpfs::NewTmpfsRoot(0755), {}, 0);
  sub.reset();
  EXPECT_ERRNO(ns.Unmount(root, false, 1), EBUSY);
  ASSERT_OK(ns.Unmount(root, true, 1));
  EXPECT_EQ(*GetIn("/boot/m"), m);
  EXPECT_FALSE(ns.IsMountRoot(*root));
  EXPECT_EQ(RenderMountTable(false, &ns).find("/boot/m"), std::string::npos);
  // Stacked mounts come off one at a time.
  DentryRef lower = ns.AddMount(m, tmpfs::NewTmpfsRoot(0755), {"tmpfs", "lower", ""}, 0);
  DentryRef upper = ns.AddMount(lower, tmpfs::NewTmpfsRoot(0755), {"tmpfs", "upper", ""}, 0);
  EXPECT_EQ(*GetIn("/boot/m"), upper);
  ASSERT_OK(ns.Unmount(upper, false, 2));
  EXPECT_EQ(*GetIn("/boot/m"), lower);
  ASSERT_OK(ns.Unmount(lower, false, 2));
  EXPECT_EQ(*GetIn("/boot/m"), m);
}

TEST_F(MountNamespaceTest, BindMountsSeeChangesMadeThroughTheOtherPath) {
  MountNamespace& ns = *ns_fs_.mnt_ns;
  DentryRef src = *GetIn("/a/b");
  ASSERT_OK(GetIn("/a/b/file"));  // cached on the source side
  DentryRef m = *GetIn("/boot/m");
  ASSERT_OK(ns.AddBind(m, src, false));
  DentryRef via = *GetIn("/boot/m/file");
  EXPECT_EQ(via->inode(), file_);
  EXPECT_EQ(via->Path(), "/boot/m/file");
  // Removed through the source: gone through the bind as well, and the
  // other way round.
  ASSERT_OK(src->inode()->Unlink("file"));
  src->ForgetChild("file");
  EXPECT_ERRNO(GetIn("/boot/m/file"), ENOENT);
  DentryRef bind_root = *GetIn("/boot/m");
  ASSERT_OK(bind_root->inode()->Create("new", 0644));
  bind_root->AddChild("new", *bind_root->inode()->Lookup("new"));
  ASSERT_OK(GetIn("/a/b/new"));
  ASSERT_OK(bind_root->inode()->Unlink("new"));
  bind_root->ForgetChild("new");
  EXPECT_ERRNO(GetIn("/a/b/new"), ENOENT);
  // A directory does not go on a file.
  ASSERT_OK(root_inode_->Create("rootfile", 0644));
  EXPECT_ERRNO(ns.AddBind(*GetIn("/a"), *GetIn("/rootfile"), false), ENOTDIR);
}

TEST_F(MountNamespaceTest, RecursiveBindCarriesSubmounts) {
  MountNamespace& ns = *ns_fs_.mnt_ns;
  ASSERT_OK(root_inode_->Mkdir("plain", 0755));
  ASSERT_OK(root_inode_->Mkdir("rec", 0755));
  InodeRef t = tmpfs::NewTmpfsRoot(0755);
  ASSERT_OK(t->Create("inner", 0644));
  ns.AddMount(*GetIn("/a/b"), t, {"tmpfs", "sub", ""}, 0);
  ASSERT_OK(ns.AddBind(*GetIn("/plain"), *GetIn("/a"), false));
  EXPECT_ERRNO(GetIn("/plain/b/inner"), ENOENT);
  ASSERT_OK(ns.AddBind(*GetIn("/rec"), *GetIn("/a"), true));
  EXPECT_OK(GetIn("/rec/b/inner"));
  EXPECT_TRUE(ns.IsMountRoot(**GetIn("/rec/b")));
}

TEST_F(MountNamespaceTest, ReadOnlyRemountWaitsForWriters) {
  MountNamespace& ns = *ns_fs_.mnt_ns;
  DentryRef root =
      ns.AddMount(*GetIn("/boot/m"), tmpfs::NewTmpfsRoot(0755), {"tmpfs", "x", "mode=755"}, 0);
  ASSERT_OK(root->inode()->Create("f", 0644));
  DentryRef f = *GetIn("/boot/m/f");
  EXPECT_OK(CheckWritableMount(ns_fs_, *f));
  std::shared_ptr<void> writer = ns.WriterRef(*f);
  ASSERT_NE(writer, nullptr);
  EXPECT_ERRNO(ns.Remount(*root, MountNamespace::kReadOnly), EBUSY);
  writer.reset();
  ASSERT_OK(ns.Remount(*root, MountNamespace::kReadOnly | MountNamespace::kNoExec));
  EXPECT_ERRNO(CheckWritableMount(ns_fs_, *f), EROFS);
  EXPECT_EQ(ns.FlagsOf(*f), MountNamespace::kReadOnly | MountNamespace::kNoExec);
  EXPECT_NE(RenderMountTable(true, &ns).find("/boot/m ro,noexec,mode=755 - tmpfs x ro"),
            std::string::npos)
      << RenderMountTable(true, &ns);
  // Not a mount's root: EINVAL.
  EXPECT_ERRNO(ns.Remount(*f, 0), EINVAL);
  // The initial namespace's mounts are not touched.
  EXPECT_OK(CheckWritableMount(fs_, **Get("/boot/m")));
}

TEST_F(VfsTest, FileReadWriteSeekFollowLinuxSemantics) {
  FileRef f = *file_->Open(O_RDWR);
  char buf[16] = {};
  EXPECT_EQ(*f->Read(buf, 3), 3u);
  EXPECT_EQ(std::string(buf, 3), "hel");
  EXPECT_EQ(*f->Seek(0, SEEK_CUR), 3);
  EXPECT_EQ(*f->Write("P", 1), 1u);  // at offset 3
  EXPECT_EQ(*f->PRead(buf, sizeof(buf), 0), 5u);
  EXPECT_EQ(std::string(buf, 5), "helPo");
  EXPECT_EQ(*f->Seek(-1, SEEK_END), 4);
  EXPECT_ERRNO(f->Seek(-10, SEEK_CUR), EINVAL);
  EXPECT_ERRNO(f->Seek(0, 42), EINVAL);
  ASSERT_OK(f->Seek(1, SEEK_SET));
  EXPECT_ERRNO(f->Seek(INT64_MAX, SEEK_CUR), EOVERFLOW);
  // Reading past the end gives 0; seeking past it is allowed.
  EXPECT_EQ(*f->Seek(100, SEEK_SET), 100);
  EXPECT_EQ(*f->Read(buf, sizeof(buf)), 0u);

  FileRef ro = *file_->Open(O_RDONLY);
  EXPECT_ERRNO(ro->Write("x", 1), EBADF);
  EXPECT_ERRNO(ro->PWrite("x", 1, 0), EBADF);
  FileRef wo = *file_->Open(O_WRONLY);
  EXPECT_ERRNO(wo->Read(buf, 1), EBADF);
  FileRef path = *file_->Open(O_PATH);
  EXPECT_ERRNO(path->Read(buf, 1), EBADF);
}

TEST_F(VfsTest, AppendWritesAtTheEndEvenWithPwrite) {
  FileRef f = *file_->Open(O_WRONLY | O_APPEND);
  EXPECT_EQ(*f->Write("!", 1), 1u);
  EXPECT_EQ(*f->PWrite("?", 1, 0), 1u);  // pwrite(2) BUGS: appends under O_APPEND
  char buf[16] = {};
  EXPECT_EQ(*file_->ReadAt(buf, sizeof(buf), 0), 7u);
  EXPECT_EQ(std::string(buf, 7), "hello!?");
}

TEST_F(VfsTest, StatusFlagsOnlyChangeTheChangeableBits) {
  FileRef f = *file_->Open(O_RDONLY);
  f->set_status_flags(O_WRONLY | O_APPEND | O_NONBLOCK);
  EXPECT_EQ(f->flags() & O_ACCMODE, O_RDONLY);
  EXPECT_TRUE(f->flags() & O_APPEND);
  EXPECT_TRUE(f->flags() & O_NONBLOCK);
  f->set_status_flags(0);
  EXPECT_FALSE(f->flags() & (O_APPEND | O_NONBLOCK));
}

TEST_F(VfsTest, DirectoryListingsIncludeDotEntriesAndResumeAtTheOffset) {
  DentryRef a = *Get("/a");
  FileRef dir = *a->inode()->Open(O_RDONLY | O_DIRECTORY);
  dir->set_dentry(a);
  char c;
  EXPECT_ERRNO(dir->Read(&c, 1), EISDIR);
  auto all = [](const Dirent&) { return true; };
  auto first = dir->ReadDirBatch(2, all);
  ASSERT_OK(first);
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].name, ".");
  EXPECT_EQ((*first)[0].ino, a->inode()->Stat()->st_ino);
  EXPECT_EQ((*first)[1].name, "..");
  EXPECT_EQ((*first)[1].ino, fs_.root->inode()->Stat()->st_ino);
  auto rest = dir->ReadDirBatch(100, all);
  ASSERT_OK(rest);
  std::vector<std::string> names;
  for (const auto& e : *rest) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"b", "link", "up"}));
  EXPECT_TRUE(dir->ReadDirBatch(100, all)->empty());
  // A caller whose buffer fits nothing gets nothing and loses nothing.
  ASSERT_OK(dir->Seek(0, SEEK_SET));
  EXPECT_TRUE(dir->ReadDirBatch(100, [](const Dirent&) { return false; })->empty());
  EXPECT_EQ(dir->ReadDirBatch(100, all)->size(), 5u);
  EXPECT_ERRNO((*file_->Open(O_RDONLY))->ReadDirBatch(1, all), ENOTDIR);
}

TEST_F(VfsTest, FileMappingsReadThroughTheInode) {
  DentryRef d = *Get("/a/b/file");
  FileRef f = *d->inode()->Open(O_RDONLY);
  f->set_dentry(d);
  auto m = f->GetMappable();
  ASSERT_NE(m, nullptr);
  char buf[8] = {};
  EXPECT_EQ(*m->ReadForMapping(1, buf, sizeof(buf)), 4u);
  EXPECT_EQ(std::string(buf, 4), "ello");
  EXPECT_EQ(m->MapsName(), "/a/b/file");
  EXPECT_EQ(m->MapsInode(), file_->Stat()->st_ino);
  EXPECT_EQ((*Get("/a"))->inode()->Open(O_RDONLY).value()->GetMappable(), nullptr);
}

TEST(VfsIds, InodeNumbersAndDevicesAreUnique) {
  EXPECT_NE(NextInodeNumber(), NextInodeNumber());
  dev_t a = NewAnonDevice(), b = NewAnonDevice();
  EXPECT_NE(a, b);
  EXPECT_EQ(major(a), 0u);
}

}  // namespace
}  // namespace husk::vfs
