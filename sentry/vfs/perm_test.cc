// The permission decisions of perm.h, case by case against what Linux's
// generic_permission, may_delete, setattr_prepare and inode_init_owner
// decide (the conformance test tests/syscalls/perm_test.cc checks the same
// rules through syscalls, natively and in husk).
#include "sentry/vfs/perm.h"

#include <errno.h>
#include <fcntl.h>

#include <vector>

#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"
#include "sentry/vfs/vfs.h"

namespace husk::vfs {
namespace {

constexpr uint32_t kUser = 1000, kGroup = 100, kOther = 2000, kOtherGroup = 200;

struct stat StatOf(mode_t mode, uid_t uid = 0, gid_t gid = 0) {
  struct stat st {};
  st.st_mode = mode;
  st.st_uid = uid;
  st.st_gid = gid;
  return st;
}

Creds User(std::span<const uint32_t> groups = {}) { return Creds{kUser, kGroup, groups, 0}; }
Creds Root() { return Creds{0, 0, {}, kFsCapabilities}; }

int ErrnoOf(const Status& s) { return s.ok() ? 0 : s.error(); }

TEST(PermTest, OneClassOfBitsAppliesByOwnershipThenGroup) {
  std::vector<uint32_t> groups = {7, 300};
  struct Case {
    const char* what;
    struct stat st;
    int mask;
    int err;
  } cases[] = {
      {"owner rw", StatOf(S_IFREG | 0600, kUser), kMayRead | kMayWrite, 0},
      {"owner without r, others with", StatOf(S_IFREG | 0077, kUser), kMayRead, EACCES},
      {"group r by fsgid", StatOf(S_IFREG | 0040, kOther, kGroup), kMayRead, 0},
      {"group w missing", StatOf(S_IFREG | 0040, kOther, kGroup), kMayWrite, EACCES},
      {"group has less than others", StatOf(S_IFREG | 0704, kOther, kGroup), kMayRead, EACCES},
      {"supplementary group", StatOf(S_IFREG | 0060, kOther, 300), kMayRead | kMayWrite, 0},
      {"others r", StatOf(S_IFREG | 0604, kOther, kOtherGroup), kMayRead, 0},
      {"others nothing", StatOf(S_IFREG | 0660, kOther, kOtherGroup), kMayRead, EACCES},
      {"nothing asked", StatOf(S_IFREG | 0000, kOther, kOtherGroup), 0, 0},
      {"directory search", StatOf(S_IFDIR | 0711, kOther, kOtherGroup), kMayExec, 0},
      {"directory no search", StatOf(S_IFDIR | 0744, kOther, kOtherGroup), kMayExec, EACCES},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(ErrnoOf(CheckPermission(User(groups), c.st, c.mask)), c.err);
  }
}

TEST(PermTest, RootOverridesAllButExecutingWhatNoOneMayExecute) {
  EXPECT_OK(CheckPermission(Root(), StatOf(S_IFREG | 0000, kOther), kMayRead | kMayWrite));
  EXPECT_OK(CheckPermission(Root(), StatOf(S_IFREG | 0001, kOther), kMayExec));
  EXPECT_OK(CheckPermission(Root(), StatOf(S_IFREG | 0010, kOther), kMayExec));
  EXPECT_EQ(ErrnoOf(CheckPermission(Root(), StatOf(S_IFREG | 0666, kOther), kMayExec)), EACCES);
  // Directories: any search, read and write.
  EXPECT_OK(CheckPermission(Root(), StatOf(S_IFDIR | 0000, kOther), kMayExec | kMayWrite));
}

TEST(PermTest, ReadSearchAloneDoesNotGrantWriting) {
  Creds c{kUser, kGroup, {}, kCapDacReadSearch};
  EXPECT_OK(CheckPermission(c, StatOf(S_IFREG | 0000, kOther), kMayRead));
  EXPECT_OK(CheckPermission(c, StatOf(S_IFDIR | 0000, kOther), kMayRead | kMayExec));
  EXPECT_EQ(ErrnoOf(CheckPermission(c, StatOf(S_IFREG | 0000, kOther), kMayWrite)), EACCES);
  EXPECT_EQ(ErrnoOf(CheckPermission(c, StatOf(S_IFDIR | 0000, kOther), kMayWrite)), EACCES);
  EXPECT_EQ(ErrnoOf(CheckPermission(c, StatOf(S_IFREG | 0000, kOther), kMayRead | kMayExec)),
            EACCES);
}

TEST(PermTest, ChmodIsForTheOwnerAndKeepsSetGroupIdForMembers) {
  mode_t mode = 02755;
  EXPECT_EQ(ErrnoOf(CheckChmod(User(), StatOf(S_IFREG | 0644, kOther, kGroup), &mode)), EPERM);
  EXPECT_OK(CheckChmod(User(), StatOf(S_IFREG | 0644, kUser, kGroup), &mode));
  EXPECT_EQ(mode, 02755u);
  EXPECT_OK(CheckChmod(User(), StatOf(S_IFREG | 0644, kUser, kOtherGroup), &mode));
  EXPECT_EQ(mode, 0755u);
  mode = 02755;
  EXPECT_OK(CheckChmod(Root(), StatOf(S_IFREG | 0644, kOther, kOtherGroup), &mode));
  EXPECT_EQ(mode, 02755u);
}

TEST(PermTest, ChownNeedsCapChownButOwnersPickTheirGroups) {
  std::vector<uint32_t> groups = {300};
  struct stat mine = StatOf(S_IFREG | 0644, kUser, kGroup);
  SetAttr attr;
  attr.set_uid = true;
  attr.uid = kOther;
  EXPECT_EQ(ErrnoOf(CheckChown(User(groups), mine, &attr)), EPERM);
  attr.uid = kUser;  // no change
  EXPECT_OK(CheckChown(User(groups), mine, &attr));
  attr = SetAttr{};
  attr.set_gid = true;
  attr.gid = 300;
  EXPECT_OK(CheckChown(User(groups), mine, &attr));
  attr.gid = kOtherGroup;
  EXPECT_EQ(ErrnoOf(CheckChown(User(groups), mine, &attr)), EPERM);
  EXPECT_OK(CheckChown(Root(), mine, &attr));
}

TEST(PermTest, ChownClearsSetIdBitsOfFilesOnly) {
  SetAttr attr;
  attr.set_uid = true;
  attr.uid = kOther;
  EXPECT_OK(CheckChown(Root(), StatOf(S_IFREG | 06755, kUser, kGroup), &attr));
  EXPECT_TRUE(attr.set_mode);
  EXPECT_EQ(attr.mode, 0755u);
  // Without group execute, S_ISGID marks mandatory locking: root keeps it.
  attr = SetAttr{};
  EXPECT_OK(CheckChown(Root(), StatOf(S_IFREG | 02744, kUser, kGroup), &attr));
  EXPECT_FALSE(attr.set_mode);
  attr = SetAttr{};
  attr.set_uid = true;
  attr.uid = kOther;
  EXPECT_OK(CheckChown(Root(), StatOf(S_IFDIR | 06755, kUser, kGroup), &attr));
  EXPECT_FALSE(attr.set_mode);
  // A non-owner's chown(-1, -1) of a set-user-ID file would change its mode.
  attr = SetAttr{};
  EXPECT_EQ(ErrnoOf(CheckChown(User(), StatOf(S_IFREG | 04755, kOther, kGroup), &attr)), EPERM);
}

TEST(PermTest, WritesClearSetUserIdAlwaysAndSetGroupIdWhereLinuxDoes) {
  EXPECT_EQ(ModeAfterWrite(Root(), StatOf(S_IFREG | 04755)), std::optional<mode_t>(0755));
  EXPECT_EQ(ModeAfterWrite(Root(), StatOf(S_IFREG | 02775)), std::optional<mode_t>(0775));
  EXPECT_EQ(ModeAfterWrite(Root(), StatOf(S_IFREG | 02745)), std::nullopt);
  EXPECT_EQ(ModeAfterWrite(User(), StatOf(S_IFREG | 02745, kOther, kGroup)), std::nullopt);
  EXPECT_EQ(ModeAfterWrite(User(), StatOf(S_IFREG | 02745, kOther, kOtherGroup)),
            std::optional<mode_t>(0745));
  EXPECT_EQ(ModeAfterWrite(User(), StatOf(S_IFREG | 0644)), std::nullopt);
  EXPECT_EQ(ModeAfterWrite(User(), StatOf(S_IFDIR | 04755)), std::nullopt);
}

TEST(PermTest, NewInodesBelongToTheFsuidAndMaybeTheDirectorysGroup) {
  SetAttr attr;
  struct stat created = StatOf(S_IFREG | 04644);
  ASSERT_TRUE(NewInodeOwner(User(), StatOf(S_IFDIR | 0777), created, &attr));
  EXPECT_EQ(attr.uid, kUser);
  EXPECT_EQ(attr.gid, kGroup);
  EXPECT_EQ(attr.mode, 04644u);  // the filesystem's chown must not clear it
  attr = SetAttr{};
  created = StatOf(S_IFREG | 0644, 0, kOtherGroup);
  ASSERT_TRUE(NewInodeOwner(User(), StatOf(S_IFDIR | 02777, 0, kOtherGroup), created, &attr));
  EXPECT_EQ(attr.gid, kOtherGroup);
  EXPECT_FALSE(NewInodeOwner(Root(), StatOf(S_IFDIR | 0777), StatOf(S_IFREG | 0644), &attr));
  // mode_strip_sgid(): only group-executable files in a set-group-ID
  // directory whose group the creator is not in.
  struct stat sgid_dir = StatOf(S_IFDIR | 02777, 0, kOtherGroup);
  EXPECT_EQ(StripSgidForCreate(User(), sgid_dir, S_IFREG | 02755), S_IFREG | 0755u);
  EXPECT_EQ(StripSgidForCreate(User(), sgid_dir, S_IFREG | 02745), S_IFREG | 02745u);
  EXPECT_EQ(StripSgidForCreate(Root(), sgid_dir, S_IFREG | 02755), S_IFREG | 02755u);
  EXPECT_EQ(StripSgidForCreate(User(), StatOf(S_IFDIR | 0777), S_IFREG | 02755), S_IFREG | 02755u);
}

// The checks that ask inodes, over a tmpfs.
class PermInodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmpfs::NewTmpfsRoot(0755);
    dentry_ = std::make_shared<Dentry>("/", nullptr, root_);
  }
  void TearDown() override { dentry_->ReleaseTree(); }

  InodeRef Make(const InodeRef& dir, const std::string& name, mode_t mode, uid_t uid) {
    InodeRef inode = S_ISDIR(mode) ? dir->Mkdir(name, mode & 07777).value()
                                   : dir->Create(name, mode & 07777).value();
    SetAttr attr;
    attr.set_uid = attr.set_mode = true;
    attr.uid = uid;
    attr.mode = mode & 07777;
    EXPECT_OK(inode->SetAttributes(attr));
    return inode;
  }

  InodeRef root_;
  DentryRef dentry_;
};

TEST_F(PermInodeTest, DeletingNeedsWriteOnTheDirectoryAndRespectsTheStickyBit) {
  InodeRef ro = Make(root_, "ro", S_IFDIR | 0755, 0);
  InodeRef in_ro = Make(ro, "f", S_IFREG | 0666, kUser);
  EXPECT_EQ(ErrnoOf(MayDelete(User(), *ro, *in_ro, false)), EACCES);
  InodeRef sticky = Make(root_, "sticky", S_IFDIR | 01777, 0);
  InodeRef others = Make(sticky, "others", S_IFREG | 0666, kOther);
  InodeRef mine = Make(sticky, "mine", S_IFREG | 0600, kUser);
  InodeRef dir = Make(sticky, "dir", S_IFDIR | 0777, kUser);
  EXPECT_EQ(ErrnoOf(MayDelete(User(), *sticky, *others, false)), EPERM);
  EXPECT_OK(MayDelete(User(), *sticky, *mine, false));
  EXPECT_OK(MayDelete(Root(), *sticky, *others, false));
  // Types are checked last.
  EXPECT_EQ(ErrnoOf(MayDelete(User(), *sticky, *dir, false)), EISDIR);
  EXPECT_EQ(ErrnoOf(MayDelete(User(), *sticky, *mine, true)), ENOTDIR);
  EXPECT_EQ(ErrnoOf(MayDelete(User(), *sticky, *others, true)), EPERM);
  // The directory's owner removes anything.
  InodeRef owned = Make(root_, "owned", S_IFDIR | 01777, kUser);
  InodeRef foreign = Make(owned, "foreign", S_IFREG | 0600, kOther);
  EXPECT_OK(MayDelete(User(), *owned, *foreign, false));
}

TEST_F(PermInodeTest, OpenAsksWhatTheFlagsAsk) {
  InodeRef f = Make(root_, "f", S_IFREG | 0644, kOther);
  EXPECT_OK(MayOpen(User(), *f, O_RDONLY));
  EXPECT_EQ(ErrnoOf(MayOpen(User(), *f, O_WRONLY)), EACCES);
  EXPECT_EQ(ErrnoOf(MayOpen(User(), *f, O_RDONLY | O_TRUNC)), EACCES);
  EXPECT_EQ(ErrnoOf(MayOpen(User(), *f, O_RDONLY | O_NOATIME)), EPERM);
  EXPECT_OK(MayOpen(Root(), *f, O_RDONLY | O_NOATIME));
  InodeRef none = Make(root_, "none", S_IFREG | 0000, kOther);
  EXPECT_OK(MayOpen(User(), *none, O_PATH));
  InodeRef dir = Make(root_, "d", S_IFDIR | 0777, kUser);
  EXPECT_EQ(ErrnoOf(MayOpen(User(), *dir, O_WRONLY)), EISDIR);
}

TEST_F(PermInodeTest, UtimesNeedTheOwnerOrWriteForNow) {
  InodeRef writable = Make(root_, "w", S_IFREG | 0666, kOther);
  InodeRef readonly = Make(root_, "r", S_IFREG | 0644, kOther);
  EXPECT_OK(CheckUtimes(User(), *writable, true));
  EXPECT_EQ(ErrnoOf(CheckUtimes(User(), *writable, false)), EPERM);
  EXPECT_EQ(ErrnoOf(CheckUtimes(User(), *readonly, true)), EACCES);
  EXPECT_OK(CheckUtimes(Root(), *readonly, false));
}

TEST_F(PermInodeTest, CreatingNeedsWriteAndSearchAndALiveDirectory) {
  Make(root_, "ro", S_IFDIR | 0755, 0);
  Make(root_, "rw", S_IFDIR | 0777, 0);
  EXPECT_EQ(ErrnoOf(MayCreate(User(), *dentry_->Child("ro").value())), EACCES);
  EXPECT_OK(MayCreate(User(), *dentry_->Child("rw").value()));
  DentryRef rw = dentry_->Child("rw").value();
  ASSERT_OK(root_->Rmdir("rw"));
  dentry_->ForgetChild("rw");
  EXPECT_EQ(ErrnoOf(MayCreate(Root(), *rw)), ENOENT);
}

TEST_F(PermInodeTest, ResolutionSearchesEveryDirectoryWithTheCallersCreds) {
  InodeRef closed = Make(root_, "closed", S_IFDIR | 0700, 0);
  Make(closed, "f", S_IFREG | 0644, 0);
  InodeRef open = Make(root_, "open", S_IFDIR | 0755, 0);
  ASSERT_OK(open->Symlink("to-closed", "/closed/f"));
  FsContext fs{dentry_, dentry_};
  Creds user = User();
  EXPECT_ERRNO(Resolve(fs, dentry_, "/closed/f", true, user), EACCES);
  EXPECT_ERRNO(Resolve(fs, dentry_, "/closed/missing", true, user), EACCES);
  EXPECT_ERRNO(Resolve(fs, dentry_, "/closed/..", true, user), EACCES);
  EXPECT_ERRNO(Resolve(fs, dentry_, "/open/to-closed", true, user), EACCES);
  EXPECT_OK(Resolve(fs, dentry_, "/open/to-closed", false, user));
  EXPECT_OK(Resolve(fs, dentry_, "/closed", true, user));
  EXPECT_ERRNO(ResolveParent(fs, dentry_, "/closed/new", user), EACCES);
  EXPECT_OK(ResolveParent(fs, dentry_, "/open/new", user));
  // The kernel's own lookups search anything.
  EXPECT_OK(Resolve(fs, dentry_, "/closed/f", true));
  EXPECT_OK(Resolve(fs, dentry_, "/open/to-closed", true, Root()));
}

}  // namespace
}  // namespace husk::vfs
