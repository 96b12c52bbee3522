// Names and their lookup (path_resolution(7)): mkdir/mkdirat and the link counts they touch,
// rmdir and unlink with their "." / ".." / root special cases, unlinkat(AT_REMOVEDIR),
// symlink/symlinkat/readlink/readlinkat, the 40-symlink limit, creating through a dangling
// symlink, name and path length limits, a file used as a directory, umask(2) and what it
// masks, chroot(2), mknod(2) file types, and O_TMPFILE with linkat(2).
//
// Syscalls: mkdir mkdirat rmdir unlink unlinkat symlink symlinkat readlink readlinkat open
// openat linkat mknod mknodat umask chroot chdir getcwd getdents64 stat lstat fstat fstatat
// statfs fork setresuid
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

class NameiTest : public ::testing::Test {
 protected:
  // Every test may change the umask; each starts from 022 and leaves the old one behind.
  void SetUp() override { saved_umask_ = umask(022); }
  void TearDown() override { umask(saved_umask_); }

  std::string P(const std::string& name) const { return dir_.Join(name); }
  bool Exists(const std::string& name) const {
    struct stat st {};
    return lstat(P(name).c_str(), &st) == 0;
  }
  struct stat Lstat(const std::string& name) const {
    struct stat st {};
    EXPECT_EQ(lstat(P(name).c_str(), &st), 0) << name << ": " << ErrnoName(errno);
    return st;
  }
  std::string Readlink(const std::string& name) const {
    char buf[PATH_MAX];
    ssize_t n = readlink(P(name).c_str(), buf, sizeof(buf));
    return n < 0 ? "" : std::string(buf, n);
  }
  // tmpfs has had O_TMPFILE since Linux 3.11; other filesystems (overlayfs before 6.6) may not.
  bool OnTmpfs() const {
    struct statfs fs {};
    return statfs(dir_.path().c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC;
  }

  TempDir dir_;
  mode_t saved_umask_ = 022;
};

// ---- mkdir ----

TEST_F(NameiTest, MkdirModeIsMaskedByUmaskAndKeepsTheStickyBit) {
  umask(0);
  ASSERT_OK(mkdir(P("all").c_str(), 07777));
  // mkdir(2): the set-user-ID bit is dropped, the sticky bit kept; set-group-ID comes only
  // from the parent.
  EXPECT_EQ(Lstat("all").st_mode & 07777, 01777u);
  umask(077);
  ASSERT_OK(mkdir(P("private").c_str(), 0777));
  EXPECT_EQ(Lstat("private").st_mode & 07777, 0700u);
  umask(0222);
  ASSERT_OK(mkdir(P("readonly").c_str(), 01777));
  EXPECT_EQ(Lstat("readonly").st_mode & 07777, 01555u);
}

TEST_F(NameiTest, MkdirInASetGroupIdDirectoryInheritsTheBit) {
  ASSERT_OK(mkdir(P("sgid").c_str(), 0755));
  ASSERT_OK(chmod(P("sgid").c_str(), 02755));
  ASSERT_OK(chown(P("sgid").c_str(), 0, 4242));
  ASSERT_OK(mkdir(P("sgid/sub").c_str(), 0755));
  struct stat st = Lstat("sgid/sub");
  EXPECT_EQ(st.st_mode & 07777, 02755u);
  EXPECT_EQ(st.st_gid, 4242u);
  // Files take the group but not the bit.
  ASSERT_TRUE(WriteFile(P("sgid/f"), ""));
  st = Lstat("sgid/f");
  EXPECT_EQ(st.st_gid, 4242u);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(NameiTest, MkdirAndRmdirMoveTheParentsLinkCount) {
  ASSERT_OK(mkdir(P("p").c_str(), 0755));
  EXPECT_EQ(Lstat("p").st_nlink, 2u);
  for (int i = 0; i < 3; ++i) ASSERT_OK(mkdir(P("p/d" + std::to_string(i)).c_str(), 0755));
  EXPECT_EQ(Lstat("p").st_nlink, 5u);
  EXPECT_EQ(Lstat("p/d0").st_nlink, 2u);
  // Files and symlinks do not count.
  ASSERT_TRUE(WriteFile(P("p/f"), ""));
  ASSERT_OK(symlink("d0", P("p/s").c_str()));
  EXPECT_EQ(Lstat("p").st_nlink, 5u);
  ASSERT_OK(rmdir(P("p/d1").c_str()));
  EXPECT_EQ(Lstat("p").st_nlink, 4u);
  ASSERT_OK(unlinkat(AT_FDCWD, P("p/d2").c_str(), AT_REMOVEDIR));
  EXPECT_EQ(Lstat("p").st_nlink, 3u);
}

TEST_F(NameiTest, MkdirExistingNamesAreEEXIST) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(symlink("d", P("dlink").c_str()));
  EXPECT_ERRNO(mkdir(P("d/").c_str(), 0755), EEXIST);
  EXPECT_ERRNO(mkdir(P("dlink").c_str(), 0755), EEXIST);
  EXPECT_ERRNO(mkdir(P("dlink/").c_str(), 0755), EEXIST);
  EXPECT_ERRNO(mkdir(P("d/.").c_str(), 0755), EEXIST);
  EXPECT_ERRNO(mkdir(P("d/..").c_str(), 0755), EEXIST);
  EXPECT_ERRNO(mkdir("/", 0755), EEXIST);
  EXPECT_EQ(Lstat("d").st_nlink, 2u);
}

TEST_F(NameiTest, MkdiratDescriptorRules) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  Fd file(open(P("f").c_str(), O_RDONLY | O_CLOEXEC));
  Fd dir(open(dir_.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(file.valid() && dir.valid());
  EXPECT_ERRNO(mkdirat(file.get(), "x", 0755), ENOTDIR);
  EXPECT_ERRNO(mkdirat(-1, "x", 0755), EBADF);
  EXPECT_ERRNO(mkdirat(1000000, "x", 0755), EBADF);
  // An absolute path ignores the descriptor, even a bad one.
  ASSERT_OK(mkdirat(-1, P("abs").c_str(), 0755));
  // O_PATH directory descriptors work.
  ASSERT_OK(mkdirat(dir.get(), "rel", 0755));
  EXPECT_TRUE(S_ISDIR(Lstat("rel").st_mode));
  EXPECT_ERRNO(mkdirat(dir.get(), "", 0755), ENOENT);
}

// ---- rmdir, unlink, unlinkat ----

TEST_F(NameiTest, RmdirSpecialNames) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(mkdir(P("d/sub").c_str(), 0755));
  // A directory holding only a subdirectory is not empty.
  EXPECT_ERRNO(rmdir(P("d").c_str()), ENOTEMPTY);
  EXPECT_ERRNO(rmdir(P("d/sub/.").c_str()), EINVAL);
  EXPECT_ERRNO(rmdir(P("d/sub/..").c_str()), ENOTEMPTY);
  // Trailing slashes are fine on a directory.
  ASSERT_OK(rmdir(P("d/sub//").c_str()));
  ASSERT_OK(rmdir(P("d/").c_str()));
  EXPECT_FALSE(Exists("d"));
}

TEST_F(NameiTest, TheRootCannotBeRemovedOrMade) {
  // rmdir(2): EBUSY for a mount point or the root, before emptiness is considered.
  EXPECT_ERRNO(rmdir("/"), EBUSY);
  EXPECT_ERRNO(rmdir("//"), EBUSY);
  EXPECT_ERRNO(unlinkat(AT_FDCWD, "/", AT_REMOVEDIR), EBUSY);
  EXPECT_ERRNO(mkdir("/", 0755), EEXIST);
}

TEST_F(NameiTest, RmdirOfDotAndDotDotRelativeToTheCwd) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  const std::string d = P("d");
  int rc = InChild([&] {
    if (chdir(d.c_str()) != 0) return 10;
    if (rmdir(".") != -1 || errno != EINVAL) return 11;
    if (rmdir("..") != -1 || errno != ENOTEMPTY) return 12;
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(Exists("d"));
}

TEST_F(NameiTest, RmdirOfNonDirectoriesIsENOTDIR) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  ASSERT_OK(symlink("missing", P("dangling").c_str()));
  ASSERT_OK(mkfifo(P("fifo").c_str(), 0644));
  EXPECT_ERRNO(rmdir(P("f").c_str()), ENOTDIR);
  EXPECT_ERRNO(rmdir(P("f/").c_str()), ENOTDIR);
  EXPECT_ERRNO(rmdir(P("dangling").c_str()), ENOTDIR);
  EXPECT_ERRNO(rmdir(P("fifo").c_str()), ENOTDIR);
  EXPECT_ERRNO(rmdir(P("f/x").c_str()), ENOTDIR);
  EXPECT_ERRNO(rmdir(""), ENOENT);
}

TEST_F(NameiTest, ARemovedCwdTakesNoNewNames) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  const std::string d = P("d");
  int rc = InChild([&] {
    if (chdir(d.c_str()) != 0) return 10;
    if (rmdir(d.c_str()) != 0) return 11;
    struct stat st {};
    if (stat(".", &st) != 0 || st.st_nlink != 0) return 12;
    if (open("f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644) != -1 || errno != ENOENT) return 13;
    if (mkdir("sub", 0755) != -1 || errno != ENOENT) return 14;
    if (symlink("x", "s") != -1 || errno != ENOENT) return 15;
    if (mknod("n", S_IFIFO | 0644, 0) != -1 || errno != ENOENT) return 16;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST_F(NameiTest, ListingARemovedDirectoryIsENOENT) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  Fd fd(open(P("d").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(rmdir(P("d").c_str()));
  // Not even "." and ".." are listed: getdents on a dead directory fails.
  char buf[256];
  EXPECT_ERRNO(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)), ENOENT);
}

TEST_F(NameiTest, UnlinkOfADirectoryIsEISDIRInEveryForm) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(mkdir(P("full").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("full/f"), ""));
  EXPECT_ERRNO(unlink(P("d").c_str()), EISDIR);
  EXPECT_ERRNO(unlink(P("d/").c_str()), EISDIR);
  EXPECT_ERRNO(unlink(P("d/.").c_str()), EISDIR);
  EXPECT_ERRNO(unlink(P("d/..").c_str()), EISDIR);
  EXPECT_ERRNO(unlink(P("full").c_str()), EISDIR);
  EXPECT_ERRNO(unlink("/"), EISDIR);
  // A symlink to a directory is removed: it is not followed.
  ASSERT_OK(symlink("d", P("dlink").c_str()));
  ASSERT_OK(unlink(P("dlink").c_str()));
  EXPECT_TRUE(Exists("d"));
  EXPECT_FALSE(Exists("dlink"));
}

TEST_F(NameiTest, UnlinkatRemoveDirMatchesRmdir) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(mkdir(P("d/sub").c_str(), 0755));
  ASSERT_OK(symlink("sub", P("d/slink").c_str()));
  Fd d(open(P("d").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(d.valid());
  EXPECT_ERRNO(unlinkat(d.get(), ".", AT_REMOVEDIR), EINVAL);
  EXPECT_ERRNO(unlinkat(d.get(), "..", AT_REMOVEDIR), ENOTEMPTY);
  EXPECT_ERRNO(unlinkat(d.get(), "slink", AT_REMOVEDIR), ENOTDIR);
  EXPECT_ERRNO(unlinkat(d.get(), "missing", AT_REMOVEDIR), ENOENT);
  EXPECT_ERRNO(unlinkat(AT_FDCWD, P("d").c_str(), AT_REMOVEDIR), ENOTEMPTY);
  // Only AT_REMOVEDIR is a valid flag.
  EXPECT_ERRNO(unlinkat(d.get(), "sub", AT_REMOVEDIR | AT_SYMLINK_NOFOLLOW), EINVAL);
  EXPECT_TRUE(Exists("d/sub"));
  ASSERT_OK(unlinkat(d.get(), "sub", AT_REMOVEDIR));
  ASSERT_OK(unlinkat(d.get(), "slink", 0));
  // The descriptor's own directory can then go, by absolute name.
  ASSERT_OK(unlinkat(d.get(), P("d").c_str(), AT_REMOVEDIR));
  EXPECT_FALSE(Exists("d"));
}

// ---- symlinks ----

TEST_F(NameiTest, SymlinkStoresTheTargetVerbatim) {
  const std::string targets[] = {"plain", "../up/./and//back/", "/abs/path", "with space",
                                 std::string(1, '\x01') + "\xff"};
  int i = 0;
  for (const std::string& t : targets) {
    const std::string name = "s" + std::to_string(i++);
    ASSERT_OK(symlink(t.c_str(), P(name).c_str()));
    EXPECT_EQ(Readlink(name), t);
    struct stat st = Lstat(name);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0777u);  // The umask does not apply.
    EXPECT_EQ(st.st_size, static_cast<off_t>(t.size()));
  }
}

TEST_F(NameiTest, ReadlinkTruncatesWithoutANul) {
  ASSERT_OK(symlink("0123456789", P("s").c_str()));
  char buf[16];
  memset(buf, '#', sizeof(buf));
  EXPECT_EQ(readlink(P("s").c_str(), buf, 1), 1);
  EXPECT_EQ(buf[0], '0');
  EXPECT_EQ(buf[1], '#');
  memset(buf, '#', sizeof(buf));
  EXPECT_EQ(readlink(P("s").c_str(), buf, 10), 10);  // Exactly fits: still no NUL.
  EXPECT_EQ(std::string(buf, 11), "0123456789#");
  Fd d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(d.valid());
  memset(buf, '#', sizeof(buf));
  EXPECT_EQ(readlinkat(d.get(), "s", buf, 3), 3);
  EXPECT_EQ(std::string(buf, 4), "012#");
}

TEST_F(NameiTest, ReadlinkOfNonLinksIsEINVAL) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(symlink("f", P("s").c_str()));
  char buf[16];
  EXPECT_ERRNO(readlink(P("f").c_str(), buf, sizeof(buf)), EINVAL);
  EXPECT_ERRNO(readlink(P("d").c_str(), buf, sizeof(buf)), EINVAL);
  // A trailing slash follows the link, and what it reaches is no link.
  EXPECT_ERRNO(readlink(P("s/").c_str(), buf, sizeof(buf)), ENOTDIR);
  EXPECT_ERRNO(readlink(P("f/x").c_str(), buf, sizeof(buf)), ENOTDIR);
  EXPECT_ERRNO(readlink(P("missing").c_str(), buf, sizeof(buf)), ENOENT);
}

TEST_F(NameiTest, ReadlinkatWithAnEmptyPathReadsAnOPathLink) {
  ASSERT_OK(symlink("the-target", P("s").c_str()));
  ASSERT_TRUE(WriteFile(P("f"), ""));
  Fd link(open(P("s").c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  ASSERT_TRUE(link.valid()) << ErrnoName(errno);
  char buf[32];
  ssize_t n = readlinkat(link.get(), "", buf, sizeof(buf));
  ASSERT_EQ(n, 10) << ErrnoName(errno);
  EXPECT_EQ(std::string(buf, n), "the-target");
}

TEST_F(NameiTest, ReadlinkOfAnEmptyPathIsENOENT) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  char buf[32];
  EXPECT_ERRNO(readlink("", buf, sizeof(buf)), ENOENT);
  // With an empty path, a descriptor for anything but a symlink is ENOENT (not EINVAL).
  Fd file(open(P("f").c_str(), O_PATH | O_CLOEXEC));
  ASSERT_TRUE(file.valid());
  EXPECT_ERRNO(readlinkat(file.get(), "", buf, sizeof(buf)), ENOENT);
  EXPECT_ERRNO(readlinkat(AT_FDCWD, "", buf, sizeof(buf)), ENOENT);
}

TEST_F(NameiTest, SymlinkErrors) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  EXPECT_ERRNO(symlink("", P("empty").c_str()), ENOENT);
  EXPECT_ERRNO(symlink("t", P("f").c_str()), EEXIST);
  EXPECT_ERRNO(symlink("t", P("f/x").c_str()), ENOTDIR);
  EXPECT_ERRNO(symlink("t", P("missing/x").c_str()), ENOENT);
  // A target longer than PATH_MAX - 1 is ENAMETOOLONG; PATH_MAX - 1 itself is stored whole.
  EXPECT_ERRNO(symlink(std::string(PATH_MAX, 'x').c_str(), P("long").c_str()), ENAMETOOLONG);
  const std::string longest(PATH_MAX - 1, 'y');
  ASSERT_OK(symlink(longest.c_str(), P("longest").c_str()));
  EXPECT_EQ(Readlink("longest"), longest);
  EXPECT_FALSE(Exists("empty"));
}

TEST_F(NameiTest, OnlyDirectoriesAreCreatedWithATrailingSlash) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  // A new name ending in "/" must become a directory: anything else is ENOENT, and open with
  // O_CREAT says EISDIR.
  EXPECT_ERRNO(symlink("t", P("new/").c_str()), ENOENT);
  EXPECT_ERRNO(mknod(P("new/").c_str(), S_IFIFO | 0644, 0), ENOENT);
  EXPECT_ERRNO(link(P("f").c_str(), P("new/").c_str()), ENOENT);
  EXPECT_ERRNO(open(P("new/").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), EISDIR);
  EXPECT_FALSE(Exists("new"));
  ASSERT_OK(mkdir(P("new/").c_str(), 0755));
  EXPECT_TRUE(S_ISDIR(Lstat("new").st_mode));
}

TEST_F(NameiTest, SymlinkatRelativeToADescriptor) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("d/f"), "via d"));
  Fd d(open(P("d").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(d.valid());
  // The target is stored as given and resolved later relative to the link's own directory.
  ASSERT_OK(symlinkat("f", d.get(), "s"));
  EXPECT_EQ(ReadFile(P("d/s")), "via d");
  Fd f(open(P("d/f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(f.valid());
  EXPECT_ERRNO(symlinkat("f", f.get(), "s2"), ENOTDIR);
  EXPECT_ERRNO(symlinkat("f", -1, "s2"), EBADF);
}

TEST_F(NameiTest, NoFollowStopsOnlyAtTheLastComponent) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("d/f"), "f"));
  ASSERT_OK(symlink("d", P("dl").c_str()));
  ASSERT_OK(symlink("self", P("self").c_str()));
  EXPECT_ERRNO(open(P("dl").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ELOOP);
  // Links in the middle of the path are followed.
  Fd f(open(P("dl/f").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  EXPECT_TRUE(f.valid()) << ErrnoName(errno);
  // A looping link is ELOOP with or without O_NOFOLLOW, and in the middle of a path.
  EXPECT_ERRNO(open(P("self").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ELOOP);
  EXPECT_ERRNO(open(P("self").c_str(), O_RDONLY | O_CLOEXEC), ELOOP);
  EXPECT_ERRNO(open(P("self/x").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ELOOP);
  // O_PATH | O_NOFOLLOW opens the link itself.
  Fd l(open(P("self").c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  ASSERT_TRUE(l.valid()) << ErrnoName(errno);
  struct stat st {};
  ASSERT_OK(fstat(l.get(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST_F(NameiTest, TheFortyLinkLimitCountsTheWholeLookup) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("d/f"), "end"));
  // Two chains of directory links: a0 -> d and a_i -> a_{i-1}; b likewise.
  ASSERT_OK(symlink("d", P("a0").c_str()));
  ASSERT_OK(symlink(P("d").c_str(), P("b0").c_str()));
  for (int i = 1; i < 40; ++i) {
    ASSERT_OK(symlink(("a" + std::to_string(i - 1)).c_str(), P("a" + std::to_string(i)).c_str()));
    ASSERT_OK(symlink(("b" + std::to_string(i - 1)).c_str(), P("b" + std::to_string(i)).c_str()));
  }
  ASSERT_OK(symlink("a39", P("a40").c_str()));
  // 40 links as a directory component are fine, 41 are not.
  EXPECT_EQ(ReadFile(P("a39/f")), "end");
  struct stat st {};
  EXPECT_ERRNO(stat(P("a40/f").c_str(), &st), ELOOP);
  // 20 links for one component and 20 for the next make 40: fine; 20 and 21 are too many.
  // d/up -> .. lets the walk come back to the top directory.
  ASSERT_OK(symlink("..", P("d/up").c_str()));
  EXPECT_EQ(ReadFile(P("a19/up/a18/f")), "end");              // 20 + 1 + 19 = 40
  EXPECT_ERRNO(stat(P("a19/up/a19/f").c_str(), &st), ELOOP);  // 20 + 1 + 20 = 41
  // Absolute targets count the same.
  EXPECT_EQ(ReadFile(P("b39/f")), "end");
  EXPECT_ERRNO(stat(P("b19/up/b19/f").c_str(), &st), ELOOP);
}

TEST_F(NameiTest, CreatingThroughADanglingSymlinkCreatesTheTarget) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(symlink("d/new", P("s").c_str()));
  umask(027);
  Fd fd(open(P("s").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  ASSERT_EQ(write(fd.get(), "through", 7), 7);
  struct stat st = Lstat("d/new");
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(ReadFile(P("d/new")), "through");
  EXPECT_TRUE(S_ISLNK(Lstat("s").st_mode));
  // A dangling link into a missing directory creates nothing.
  ASSERT_OK(symlink("nodir/new", P("s2").c_str()));
  EXPECT_ERRNO(open(P("s2").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), ENOENT);
  // With O_NOFOLLOW the link is not followed to create anything.
  ASSERT_OK(symlink("d/other", P("s3").c_str()));
  EXPECT_ERRNO(open(P("s3").c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644), ELOOP);
  EXPECT_FALSE(Exists("d/other"));
}

TEST_F(NameiTest, ExclusiveCreateNeverFollowsASymlink) {
  ASSERT_TRUE(WriteFile(P("f"), "keep"));
  ASSERT_OK(symlink("missing", P("dangling").c_str()));
  ASSERT_OK(symlink("f", P("good").c_str()));
  EXPECT_ERRNO(open(P("dangling").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), EEXIST);
  EXPECT_FALSE(Exists("missing"));
  EXPECT_ERRNO(open(P("good").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0644),
               EEXIST);
  EXPECT_EQ(ReadFile(P("f")), "keep");
}

// ---- lengths and file components ----

TEST_F(NameiTest, ComponentsLongerThanNameMaxAreENAMETOOLONG) {
  const std::string ok(NAME_MAX, 'k');
  const std::string bad(NAME_MAX + 1, 'b');
  ASSERT_TRUE(WriteFile(P(ok), ""));
  struct stat st {};
  EXPECT_ERRNO(stat(P(bad).c_str(), &st), ENAMETOOLONG);
  EXPECT_ERRNO(mkdir(P(bad).c_str(), 0755), ENAMETOOLONG);
  EXPECT_ERRNO(symlink("t", P(bad).c_str()), ENAMETOOLONG);
  EXPECT_ERRNO(unlink(P(bad).c_str()), ENAMETOOLONG);
  EXPECT_ERRNO(rmdir(P(bad).c_str()), ENAMETOOLONG);
  EXPECT_ERRNO(mknod(P(bad).c_str(), S_IFIFO | 0644, 0), ENAMETOOLONG);
  // In the middle of a path too, before anything is known about existence.
  EXPECT_ERRNO(stat(P(bad + "/x").c_str(), &st), ENAMETOOLONG);
  // A symlink whose target has an overlong component fails when followed.
  ASSERT_OK(symlink(bad.c_str(), P("s").c_str()));
  EXPECT_ERRNO(stat(P("s").c_str(), &st), ENAMETOOLONG);
}

TEST_F(NameiTest, PathsOfPathMaxBytesAreENAMETOOLONG) {
  // A path is at most PATH_MAX bytes with its NUL: PATH_MAX - 1 characters is a valid
  // (missing) path, PATH_MAX characters is too long.
  std::string fits = dir_.path() + "/";
  while (fits.size() + 3 < PATH_MAX) fits += "./";
  fits.append(PATH_MAX - 1 - fits.size(), 'm');
  ASSERT_EQ(fits.size(), static_cast<size_t>(PATH_MAX - 1));
  struct stat st {};
  EXPECT_ERRNO(stat(fits.c_str(), &st), ENOENT);
  EXPECT_ERRNO(stat((fits + "m").c_str(), &st), ENAMETOOLONG);
  EXPECT_ERRNO(mkdir((fits + "m").c_str(), 0755), ENAMETOOLONG);
}

TEST_F(NameiTest, AFileAsADirectoryComponentIsENOTDIR) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  ASSERT_OK(symlink("f", P("flink").c_str()));
  struct stat st {};
  char buf[8];
  for (const std::string& path : {P("f/x"), P("f/."), P("f/.."), P("flink/x"), P("f/")}) {
    SCOPED_TRACE(path);
    EXPECT_ERRNO(stat(path.c_str(), &st), ENOTDIR);
    EXPECT_ERRNO(open(path.c_str(), O_RDONLY | O_CLOEXEC), ENOTDIR);
    EXPECT_ERRNO(chdir(path.c_str()), ENOTDIR);
    EXPECT_ERRNO(readlink(path.c_str(), buf, sizeof(buf)), ENOTDIR);
  }
  EXPECT_ERRNO(open(P("f/x").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), ENOTDIR);
  EXPECT_ERRNO(mkdir(P("f/x").c_str(), 0755), ENOTDIR);
  EXPECT_ERRNO(unlink(P("f/x").c_str()), ENOTDIR);
  EXPECT_ERRNO(symlink("t", P("f/x").c_str()), ENOTDIR);
  EXPECT_ERRNO(mknod(P("f/x").c_str(), S_IFIFO | 0644, 0), ENOTDIR);
  EXPECT_ERRNO(link(P("f").c_str(), P("flink/x").c_str()), ENOTDIR);
  Fd f(open(P("f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(f.valid());
  EXPECT_ERRNO(openat(f.get(), "x", O_RDONLY | O_CLOEXEC), ENOTDIR);
  EXPECT_ERRNO(fstatat(f.get(), "x", &st, 0), ENOTDIR);
}

// ---- umask ----

TEST_F(NameiTest, UmaskReturnsTheOldMaskOfPermissionBitsOnly) {
  EXPECT_EQ(umask(0777), 022u);
  EXPECT_EQ(umask(07777), 0777u);
  // Only the permission bits are kept.
  EXPECT_EQ(umask(0), 0777u);
  EXPECT_EQ(umask(0), 0u);
}

TEST_F(NameiTest, UmaskMasksEveryKindOfCreation) {
  umask(027);
  Fd f(open(P("f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666));
  ASSERT_TRUE(f.valid());
  ASSERT_OK(mkdir(P("d").c_str(), 0777));
  ASSERT_OK(mknod(P("fifo").c_str(), S_IFIFO | 0666, 0));
  ASSERT_OK(mknod(P("reg").c_str(), S_IFREG | 0666, 0));
  ASSERT_OK(mkfifoat(AT_FDCWD, P("fifo2").c_str(), 0777));
  EXPECT_EQ(Lstat("f").st_mode & 07777, 0640u);
  EXPECT_EQ(Lstat("d").st_mode & 07777, 0750u);
  EXPECT_EQ(Lstat("fifo").st_mode & 07777, 0640u);
  EXPECT_EQ(Lstat("reg").st_mode & 07777, 0640u);
  EXPECT_EQ(Lstat("fifo2").st_mode & 07777, 0750u);
  // It never adds bits, and chmod ignores it.
  ASSERT_OK(chmod(P("f").c_str(), 0666));
  EXPECT_EQ(Lstat("f").st_mode & 07777, 0666u);
  // An existing file keeps its mode on O_CREAT.
  umask(0777);
  Fd again(open(P("f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0));
  ASSERT_TRUE(again.valid());
  EXPECT_EQ(Lstat("f").st_mode & 07777, 0666u);
}

TEST_F(NameiTest, UmaskIsInheritedAndPrivateToTheProcess) {
  umask(077);
  const std::string f = P("child");
  int rc = InChild([&] {
    if (umask(0) != 077) return 10;  // Inherited across fork.
    int fd = open(f.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return 11;
    close(fd);
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(Lstat("child").st_mode & 07777, 0666u);
  EXPECT_EQ(umask(022), 077u);  // The child's change stayed there.
}

TEST_F(NameiTest, UmaskShowsInProcStatus) {
  umask(0026);
  const std::string status = ReadFile("/proc/self/status");
  EXPECT_NE(status.find("\nUmask:\t0026\n"), std::string::npos) << status;
}

// ---- mknod ----

TEST_F(NameiTest, MknodFileTypes) {
  ASSERT_OK(mknod(P("reg").c_str(), S_IFREG | 0600, 0));
  ASSERT_OK(mknod(P("zero").c_str(), 0600, 0));  // Type 0 means a regular file.
  ASSERT_OK(mknod(P("fifo").c_str(), S_IFIFO | 0600, 0));
  ASSERT_OK(mknod(P("sock").c_str(), S_IFSOCK | 0600, 0));
  EXPECT_TRUE(S_ISREG(Lstat("reg").st_mode));
  EXPECT_TRUE(S_ISREG(Lstat("zero").st_mode));
  EXPECT_TRUE(S_ISFIFO(Lstat("fifo").st_mode));
  EXPECT_TRUE(S_ISSOCK(Lstat("sock").st_mode));
  EXPECT_EQ(Lstat("reg").st_size, 0);
  // Directories are made by mkdir only; an unknown type is EINVAL.
  EXPECT_ERRNO(mknod(P("dir").c_str(), S_IFDIR | 0755, 0), EPERM);
  EXPECT_ERRNO(mknod(P("bad").c_str(), 0170000 | 0644, 0), EINVAL);
  EXPECT_ERRNO(mknod(P("reg").c_str(), S_IFREG | 0600, 0), EEXIST);
  EXPECT_FALSE(Exists("dir"));
  EXPECT_FALSE(Exists("bad"));
}

TEST_F(NameiTest, MknodatRelativeToADescriptor) {
  Fd d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(d.valid());
  ASSERT_OK(mknodat(d.get(), "fifo", S_IFIFO | 0600, 0));
  EXPECT_TRUE(S_ISFIFO(Lstat("fifo").st_mode));
  ASSERT_OK(mknodat(d.get(), "sock", S_IFSOCK | 0600, 0));
  EXPECT_TRUE(S_ISSOCK(Lstat("sock").st_mode));
  // A regular node has no device number, whatever was passed.
  ASSERT_OK(mknodat(d.get(), "plain", S_IFREG | 0600, makedev(1, 3)));
  EXPECT_EQ(Lstat("plain").st_rdev, 0u);
  Fd f(open(P("plain").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(f.valid());
  EXPECT_ERRNO(mknodat(f.get(), "x", S_IFIFO | 0600, 0), ENOTDIR);
  EXPECT_ERRNO(mknodat(d.get(), "fifo", S_IFIFO | 0600, 0), EEXIST);
}

// ---- chroot ----

TEST_F(NameiTest, ChrootConfinesAbsolutePathsAndDotDot) {
  ASSERT_OK(mkdir(P("root").c_str(), 0755));
  ASSERT_OK(mkdir(P("root/etc").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("root/etc/name"), "inside"));
  ASSERT_OK(symlink("/etc/name", P("root/abs").c_str()));
  const std::string root = P("root");
  int rc = InChild([&] {
    if (chroot(root.c_str()) != 0) return 10;
    if (chdir("/") != 0) return 11;
    if (ReadFile("/etc/name") != "inside") return 12;
    // ".." at the new root is the root.
    if (ReadFile("/../../etc/name") != "inside") return 13;
    if (ReadFile("../etc/../../etc/name") != "inside") return 14;
    struct stat a {
    }, b{};
    if (stat("/", &a) != 0 || stat("/..", &b) != 0) return 15;
    if (a.st_ino != b.st_ino || a.st_dev != b.st_dev) return 16;
    // Absolute symlink targets resolve inside the new root.
    if (ReadFile("/abs") != "inside") return 17;
    if (chdir("etc") != 0 || ReadFile("name") != "inside") return 18;
    if (chdir("../..") != 0 || ReadFile("etc/name") != "inside") return 19;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST_F(NameiTest, ChrootLeavesTheCwdWhereItWas) {
  ASSERT_OK(mkdir(P("root").c_str(), 0755));
  ASSERT_OK(mkdir(P("outside").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("outside/f"), "out"));
  const std::string root = P("root"), outside = P("outside");
  int rc = InChild([&] {
    if (chdir(outside.c_str()) != 0) return 10;
    if (chroot(root.c_str()) != 0) return 11;
    // chroot(2) does not change the cwd: relative names still resolve outside the root.
    if (ReadFile("f") != "out") return 12;
    if (chdir("/") != 0) return 15;
    struct stat st {};
    if (stat("/f", &st) != -1 || errno != ENOENT) return 16;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST_F(NameiTest, GetcwdInsideAChrootIsRelativeToIt) {
  ASSERT_OK(mkdir(P("root").c_str(), 0755));
  ASSERT_OK(mkdir(P("root/sub").c_str(), 0755));
  const std::string root = P("root");
  int rc = InChild([&] {
    if (chroot(root.c_str()) != 0) return 10;
    if (chdir("/sub") != 0) return 11;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == nullptr || std::string(cwd) != "/sub") return 12;
    if (chdir("..") != 0) return 13;
    if (getcwd(cwd, sizeof(cwd)) == nullptr || std::string(cwd) != "/") return 14;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST_F(NameiTest, GetcwdOutsideTheRootIsUnreachable) {
  ASSERT_OK(mkdir(P("root").c_str(), 0755));
  ASSERT_OK(mkdir(P("outside").c_str(), 0755));
  const std::string root = P("root"), outside = P("outside");
  int rc = InChild([&] {
    if (chdir(outside.c_str()) != 0) return 10;
    if (chroot(root.c_str()) != 0) return 11;
    // getcwd(2) marks a cwd outside the root with "(unreachable)"; glibc turns that into
    // ENOENT.
    char cwd[PATH_MAX];
    long n = syscall(SYS_getcwd, cwd, sizeof(cwd));
    if (n <= 0 || std::string(cwd).rfind("(unreachable)", 0) != 0) return 12;
    if (getcwd(cwd, sizeof(cwd)) != nullptr || errno != ENOENT) return 13;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST_F(NameiTest, ChrootErrors) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  const std::string f = P("f"), missing = P("missing"), d = P("d");
  int rc = InChild([&] {
    if (chroot(f.c_str()) != -1 || errno != ENOTDIR) return 10;
    if (chroot(missing.c_str()) != -1 || errno != ENOENT) return 11;
    if (chroot("") != -1 || errno != ENOENT) return 12;
    if (setresgid(kNogroup, kNogroup, kNogroup) != 0 || setresuid(kNobody, kNobody, kNobody) != 0)
      return 13;
    // Without CAP_SYS_CHROOT.
    if (chroot(d.c_str()) != -1 || errno != EPERM) return 14;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

// ---- O_TMPFILE ----

#define OPEN_TMPFILE_OR_SKIP(fd, flags, mode)                                \
  Fd fd(open(dir_.path().c_str(), O_TMPFILE | (flags), (mode)));             \
  if (!(fd).valid() && errno == EOPNOTSUPP && !OnTmpfs()) {                  \
    GTEST_SKIP() << "the temporary directory's filesystem has no O_TMPFILE"; \
  }                                                                          \
  ASSERT_TRUE((fd).valid()) << ErrnoName(errno)

TEST_F(NameiTest, TmpfileIsUnnamedUntilLinkedThroughProc) {
  umask(022);
  OPEN_TMPFILE_OR_SKIP(fd, O_RDWR | O_CLOEXEC, 0666);
  struct stat st {};
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  // Nothing shows in the directory.
  {
    Fd d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    char buf[1024];
    long n = syscall(SYS_getdents64, d.get(), buf, sizeof(buf));
    ASSERT_GT(n, 0);
    int entries = 0;
    for (long off = 0; off < n;) {
      auto* e = reinterpret_cast<dirent64*>(buf + off);
      ++entries;
      off += e->d_reclen;
    }
    EXPECT_EQ(entries, 2);  // "." and "..".
  }
  ASSERT_EQ(write(fd.get(), "unnamed", 7), 7);
  const std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  ASSERT_OK(linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, P("named").c_str(), AT_SYMLINK_FOLLOW));
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(ReadFile(P("named")), "unnamed");
  EXPECT_EQ(Lstat("named").st_ino, st.st_ino);
  // It can get a second name, and more writes are seen under both.
  ASSERT_OK(linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, P("again").c_str(), AT_SYMLINK_FOLLOW));
  ASSERT_EQ(write(fd.get(), "!", 1), 1);
  EXPECT_EQ(ReadFile(P("again")), "unnamed!");
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 2u);
}

TEST_F(NameiTest, TmpfileLinkedWithEmptyPath) {
  OPEN_TMPFILE_OR_SKIP(fd, O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_EQ(write(fd.get(), "by fd", 5), 5);
  // Relative to a directory descriptor as well.
  Fd d(open(dir_.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(d.valid());
  Fd other(openat(d.get(), ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
  EXPECT_TRUE(other.valid()) << ErrnoName(errno);
  ASSERT_OK(linkat(fd.get(), "", AT_FDCWD, P("named").c_str(), AT_EMPTY_PATH));
  EXPECT_EQ(ReadFile(P("named")), "by fd");
  EXPECT_EQ(Lstat("named").st_mode & 07777, 0600u);
  // Once it has a name, unlinking that name brings it back to zero links but it stays usable.
  ASSERT_OK(unlink(P("named").c_str()));
  struct stat st {};
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 0u);
}

TEST_F(NameiTest, TmpfileWithExclCannotBeLinked) {
  OPEN_TMPFILE_OR_SKIP(fd, O_RDWR | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_EQ(write(fd.get(), "x", 1), 1);
  const std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  EXPECT_ERRNO(linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, P("a").c_str(), AT_SYMLINK_FOLLOW), ENOENT);
  EXPECT_ERRNO(linkat(fd.get(), "", AT_FDCWD, P("b").c_str(), AT_EMPTY_PATH), ENOENT);
  EXPECT_FALSE(Exists("a"));
  EXPECT_FALSE(Exists("b"));
  // It is otherwise an ordinary file.
  char c = 0;
  ASSERT_EQ(pread(fd.get(), &c, 1, 0), 1);
  EXPECT_EQ(c, 'x');
}

TEST_F(NameiTest, TmpfileFlagRules) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  // These are checked before the filesystem is asked. It needs write access.
  EXPECT_ERRNO(open(dir_.path().c_str(), O_TMPFILE | O_RDONLY | O_CLOEXEC, 0600), EINVAL);
  // O_CREAT does not combine with it.
  EXPECT_ERRNO(open(dir_.path().c_str(), O_TMPFILE | O_CREAT | O_RDWR | O_CLOEXEC, 0600), EINVAL);
  // The path names a directory.
  EXPECT_ERRNO(open(P("f").c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), ENOTDIR);
  EXPECT_ERRNO(open(P("missing").c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), ENOENT);
  EXPECT_FALSE(Exists("missing"));
}

TEST_F(NameiTest, TmpfileNeedsWritePermissionOnTheDirectory) {
  { OPEN_TMPFILE_OR_SKIP(probe, O_RDWR | O_CLOEXEC, 0600); }
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  ASSERT_OK(mkdir(P("ro").c_str(), 0755));
  ASSERT_OK(mkdir(P("rw").c_str(), 0777));
  ASSERT_OK(chmod(P("rw").c_str(), 0777));
  const std::string ro = P("ro"), rw = P("rw");
  int rc = InChild([&] {
    if (setresgid(kNogroup, kNogroup, kNogroup) != 0 || setresuid(kNobody, kNobody, kNobody) != 0)
      return 10;
    if (open(ro.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600) != -1 || errno != EACCES) return 11;
    int fd = open(rw.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return 12;
    struct stat st {};
    bool mine = fstat(fd, &st) == 0 && st.st_uid == kNobody && st.st_gid == kNogroup;
    close(fd);
    return mine ? 0 : 13;
  });
  EXPECT_EQ(rc, 0);
}

}  // namespace
}  // namespace husk_test
