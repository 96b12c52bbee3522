// rename(2), renameat(2) and renameat2(2): what replaces what, the errors for
// mismatched types, ancestors, "." and "..", and trailing slashes, what stays
// the same (open descriptors, hard links) and what changes (link counts,
// ctime), the renameat2 flags RENAME_NOREPLACE, RENAME_EXCHANGE and
// RENAME_WHITEOUT, and the permission rules for an unprivileged caller
// (write on the parents, the sticky bit).
//
// Syscalls: rename renameat renameat2 open stat lstat fstat mkdir rmdir
// symlink link unlink readlink statfs clock_gettime fork setresuid
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

// renameat2 through the raw system call, so that flags glibc might check reach the kernel.
long Rename2(const std::string& from, const std::string& to, unsigned flags) {
  return syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
}

bool SameTime(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool Later(const timespec& a, const timespec& b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

// Spins until the coarse real-time clock (the one file timestamps come from) has moved past
// `t`, so that any timestamp taken afterwards is later than `t`. Bounded to a few seconds.
bool ClockPast(const timespec& t) {
  const int64_t end = NowMs() + 5000;
  timespec now{};
  do {
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (Later(now, t)) return true;
  } while (NowMs() < end);
  return false;
}

class RenameTest : public ::testing::Test {
 protected:
  std::string P(const std::string& name) const { return dir_.Join(name); }
  bool Exists(const std::string& name) const {
    struct stat st {};
    return lstat(P(name).c_str(), &st) == 0;
  }
  ino_t Ino(const std::string& name) const {
    struct stat st {};
    return lstat(P(name).c_str(), &st) == 0 ? st.st_ino : 0;
  }
  nlink_t Nlink(const std::string& name) const {
    struct stat st {};
    return lstat(P(name).c_str(), &st) == 0 ? st.st_nlink : 0;
  }
  TempDir dir_;
};

// ---- plain rename ----

TEST_F(RenameTest, FileOverFileDropsTheOldTargetButKeepsItOpen) {
  ASSERT_TRUE(WriteFile(P("a"), "new"));
  ASSERT_TRUE(WriteFile(P("b"), "old"));
  const ino_t a = Ino("a");
  Fd old(open(P("b").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(old.valid());
  ASSERT_OK(rename(P("a").c_str(), P("b").c_str()));
  EXPECT_FALSE(Exists("a"));
  EXPECT_EQ(Ino("b"), a);
  EXPECT_EQ(ReadFile(P("b")), "new");
  // The replaced inode has no name left but its open description still reads.
  struct stat st {};
  ASSERT_OK(fstat(old.get(), &st));
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(ReadAll(old.get()), "old");
}

TEST_F(RenameTest, DirectoryOverEmptyDirectory) {
  ASSERT_OK(mkdir(P("src").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("src/f"), "inside"));
  ASSERT_OK(mkdir(P("dst").c_str(), 0700));
  const ino_t src = Ino("src");
  Fd gone(open(P("dst").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(gone.valid());
  ASSERT_OK(rename(P("src").c_str(), P("dst").c_str()));
  EXPECT_FALSE(Exists("src"));
  EXPECT_EQ(Ino("dst"), src);
  EXPECT_EQ(ReadFile(P("dst/f")), "inside");
  // The replaced directory is dead: no links, and nothing can be created in it.
  struct stat st {};
  ASSERT_OK(fstat(gone.get(), &st));
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_ERRNO(openat(gone.get(), "x", O_WRONLY | O_CREAT | O_CLOEXEC, 0644), ENOENT);
  EXPECT_ERRNO(mkdirat(gone.get(), "x", 0755), ENOENT);
}

TEST_F(RenameTest, DirectoryOverNonEmptyDirectoryIsENOTEMPTY) {
  ASSERT_OK(mkdir(P("a").c_str(), 0755));
  ASSERT_OK(mkdir(P("b").c_str(), 0755));
  ASSERT_OK(mkdir(P("b/sub").c_str(), 0755));
  // A subdirectory counts as much as a file does.
  EXPECT_ERRNO(rename(P("a").c_str(), P("b").c_str()), ENOTEMPTY);
  ASSERT_OK(rmdir(P("b/sub").c_str()));
  ASSERT_TRUE(WriteFile(P("b/f"), ""));
  EXPECT_ERRNO(rename(P("a").c_str(), P("b").c_str()), ENOTEMPTY);
  EXPECT_TRUE(Exists("a"));
  EXPECT_TRUE(Exists("b/f"));
}

TEST_F(RenameTest, FileOverDirectoryIsEISDIR) {
  ASSERT_TRUE(WriteFile(P("f"), "x"));
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  EXPECT_ERRNO(rename(P("f").c_str(), P("d").c_str()), EISDIR);
  // Even a non-empty directory: the type is checked first.
  ASSERT_TRUE(WriteFile(P("d/g"), ""));
  EXPECT_ERRNO(rename(P("f").c_str(), P("d").c_str()), EISDIR);
  EXPECT_EQ(ReadFile(P("f")), "x");
}

TEST_F(RenameTest, DirectoryOverFileIsENOTDIR) {
  ASSERT_TRUE(WriteFile(P("f"), "x"));
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  EXPECT_ERRNO(rename(P("d").c_str(), P("f").c_str()), ENOTDIR);
  // A symlink to a directory is not a directory either.
  ASSERT_OK(mkdir(P("e").c_str(), 0755));
  ASSERT_OK(symlink("e", P("elink").c_str()));
  EXPECT_ERRNO(rename(P("d").c_str(), P("elink").c_str()), ENOTDIR);
  EXPECT_TRUE(Exists("d"));
}

TEST_F(RenameTest, DirectoryIntoItsOwnSubtreeIsEINVAL) {
  ASSERT_OK(mkdir(P("a").c_str(), 0755));
  ASSERT_OK(mkdir(P("a/b").c_str(), 0755));
  ASSERT_OK(mkdir(P("a/b/c").c_str(), 0755));
  EXPECT_ERRNO(rename(P("a").c_str(), P("a/b/c/d").c_str()), EINVAL);
  // Onto an existing empty directory beneath itself as well.
  EXPECT_ERRNO(rename(P("a").c_str(), P("a/b/c").c_str()), EINVAL);
  // Relative to a descriptor for the subtree.
  Fd c(open(P("a/b/c").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(c.valid());
  EXPECT_ERRNO(renameat(AT_FDCWD, P("a").c_str(), c.get(), "x"), EINVAL);
  EXPECT_TRUE(Exists("a/b/c"));
}

TEST_F(RenameTest, AnAncestorAsTheTargetIsENOTEMPTY) {
  ASSERT_OK(mkdir(P("a").c_str(), 0755));
  ASSERT_OK(mkdir(P("a/b").c_str(), 0755));
  // The target contains the source, so it is not empty.
  EXPECT_ERRNO(rename(P("a/b").c_str(), P("a").c_str()), ENOTEMPTY);
  // With RENAME_EXCHANGE the same pair is EINVAL.
  EXPECT_ERRNO(Rename2(P("a/b"), P("a"), RENAME_EXCHANGE), EINVAL);
  EXPECT_ERRNO(Rename2(P("a"), P("a/b"), RENAME_EXCHANGE), EINVAL);
  EXPECT_TRUE(Exists("a/b"));
}

TEST_F(RenameTest, HardLinksToTheSameFileAreANoOp) {
  ASSERT_TRUE(WriteFile(P("a"), "same"));
  ASSERT_OK(link(P("a").c_str(), P("b").c_str()));
  ASSERT_OK(rename(P("a").c_str(), P("b").c_str()));
  // rename(2): "If oldpath and newpath are existing hard links referring to the same file,
  // then rename() does nothing": both names remain.
  EXPECT_TRUE(Exists("a"));
  EXPECT_TRUE(Exists("b"));
  EXPECT_EQ(Ino("a"), Ino("b"));
  EXPECT_EQ(Nlink("a"), 2u);
}

TEST_F(RenameTest, ExchangingHardLinksToTheSameFileIsANoOp) {
  ASSERT_TRUE(WriteFile(P("a"), "same"));
  ASSERT_OK(link(P("a").c_str(), P("b").c_str()));
  ASSERT_OK(Rename2(P("a"), P("b"), RENAME_EXCHANGE));
  EXPECT_TRUE(Exists("a") && Exists("b"));
  EXPECT_EQ(Ino("a"), Ino("b"));
  EXPECT_EQ(Nlink("b"), 2u);
}

TEST_F(RenameTest, ANameOntoItselfIsANoOp) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("d/f"), "x"));
  ASSERT_OK(rename(P("d").c_str(), P("d").c_str()));
  ASSERT_OK(rename(P("d/f").c_str(), P("d/../d/f").c_str()));
  EXPECT_EQ(ReadFile(P("d/f")), "x");
  ASSERT_OK(symlink("nowhere", P("s").c_str()));
  ASSERT_OK(rename(P("s").c_str(), P("s").c_str()));
  EXPECT_TRUE(Exists("s"));
}

TEST_F(RenameTest, DotAndDotDotAsEitherNameAreEBUSY) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_OK(mkdir(P("d/sub").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("f"), ""));
  EXPECT_ERRNO(rename(P("d/.").c_str(), P("x").c_str()), EBUSY);
  EXPECT_ERRNO(rename(P("d/sub/..").c_str(), P("x").c_str()), EBUSY);
  EXPECT_ERRNO(rename(P("f").c_str(), P("d/.").c_str()), EBUSY);
  EXPECT_ERRNO(rename(P("f").c_str(), P("d/sub/..").c_str()), EBUSY);
  EXPECT_TRUE(Exists("d/sub"));
  EXPECT_TRUE(Exists("f"));
  EXPECT_FALSE(Exists("x"));
}

TEST_F(RenameTest, NoReplaceOntoDotOrDotDotIsEEXIST) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("f"), ""));
  // "." and ".." always exist, so RENAME_NOREPLACE reports them as such; as the source they
  // are still EBUSY.
  EXPECT_ERRNO(Rename2(P("f"), P("d/."), RENAME_NOREPLACE), EEXIST);
  EXPECT_ERRNO(Rename2(P("f"), P("d/.."), RENAME_NOREPLACE), EEXIST);
  EXPECT_ERRNO(Rename2(P("d/."), P("x"), RENAME_NOREPLACE), EBUSY);
  EXPECT_TRUE(Exists("f"));
}

TEST_F(RenameTest, TheRootAndTheCwdAsDotAreEBUSY) {
  EXPECT_ERRNO(rename("/", "/."), EBUSY);
  ASSERT_TRUE(WriteFile(P("f"), ""));
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  Fd d(open(P("d").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(d.valid());
  EXPECT_ERRNO(renameat(d.get(), ".", AT_FDCWD, P("x").c_str()), EBUSY);
  EXPECT_ERRNO(renameat(AT_FDCWD, P("f").c_str(), d.get(), ".."), EBUSY);
}

TEST_F(RenameTest, TrailingSlashesNeedDirectories) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  // A slash after a file's name, on either side, is ENOTDIR.
  EXPECT_ERRNO(rename(P("f/").c_str(), P("g").c_str()), ENOTDIR);
  EXPECT_ERRNO(rename(P("f").c_str(), P("g/").c_str()), ENOTDIR);
  EXPECT_FALSE(Exists("g"));
  // Directories take them on both sides.
  ASSERT_OK(rename(P("d/").c_str(), P("e/").c_str()));
  ASSERT_OK(rename(P("e//").c_str(), P("d").c_str()));
  EXPECT_TRUE(Exists("d"));
  // A trailing slash does not make rename follow a symlink: the link itself is no directory.
  ASSERT_OK(symlink("d", P("dlink").c_str()));
  EXPECT_ERRNO(rename(P("dlink/").c_str(), P("moved").c_str()), ENOTDIR);
  EXPECT_TRUE(Exists("dlink"));
}

TEST_F(RenameTest, MissingNamesAreENOENT) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  EXPECT_ERRNO(rename(P("missing").c_str(), P("g").c_str()), ENOENT);
  EXPECT_ERRNO(rename(P("missing").c_str(), P("f").c_str()), ENOENT);
  EXPECT_ERRNO(rename(P("f").c_str(), P("nodir/g").c_str()), ENOENT);
  EXPECT_ERRNO(rename(P("nodir/f").c_str(), P("g").c_str()), ENOENT);
  EXPECT_ERRNO(rename("", P("g").c_str()), ENOENT);
  EXPECT_ERRNO(rename(P("f").c_str(), ""), ENOENT);
  // A file where a directory is needed is ENOTDIR instead.
  EXPECT_ERRNO(rename(P("f/x").c_str(), P("g").c_str()), ENOTDIR);
  EXPECT_ERRNO(rename(P("f").c_str(), P("f/x").c_str()), ENOTDIR);
  EXPECT_TRUE(Exists("f"));
}

TEST_F(RenameTest, ANameTooLongIsENAMETOOLONG) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  const std::string longname(NAME_MAX + 1, 'n');
  EXPECT_ERRNO(rename(P("f").c_str(), P(longname).c_str()), ENAMETOOLONG);
  EXPECT_ERRNO(rename(P(longname).c_str(), P("g").c_str()), ENAMETOOLONG);
  // NAME_MAX itself is fine.
  ASSERT_OK(rename(P("f").c_str(), P(std::string(NAME_MAX, 'n')).c_str()));
}

TEST_F(RenameTest, OpenDescriptorsFollowTheFile) {
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  Fd fd(open(P("d/f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(write(fd.get(), "one ", 4), 4);
  ASSERT_OK(rename(P("d/f").c_str(), P("g").c_str()));
  ASSERT_EQ(write(fd.get(), "two", 3), 3);
  EXPECT_EQ(ReadFile(P("g")), "one two");
  // The descriptor's path in /proc names the file where it is now.
  char buf[4096];
  const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
  ssize_t n = readlink(self.c_str(), buf, sizeof(buf));
  ASSERT_GT(n, 0) << ErrnoName(errno);
  EXPECT_EQ(std::string(buf, n), P("g"));
}

TEST_F(RenameTest, ADirectoryDescriptorKeepsWorkingAfterTheMove) {
  ASSERT_OK(mkdir(P("a").c_str(), 0755));
  ASSERT_OK(mkdir(P("b").c_str(), 0755));
  ASSERT_OK(mkdir(P("a/d").c_str(), 0755));
  Fd d(open(P("a/d").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(d.valid());
  ASSERT_OK(rename(P("a/d").c_str(), P("b/d2").c_str()));
  Fd f(openat(d.get(), "made-after", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(f.valid()) << ErrnoName(errno);
  EXPECT_TRUE(Exists("b/d2/made-after"));
  // ".." of the moved directory is its new parent.
  struct stat up {
  }, b{};
  ASSERT_OK(fstatat(d.get(), "..", &up, 0));
  ASSERT_OK(stat(P("b").c_str(), &b));
  EXPECT_EQ(up.st_ino, b.st_ino);
}

TEST_F(RenameTest, MovingADirectoryMovesParentLinkCounts) {
  ASSERT_OK(mkdir(P("p1").c_str(), 0755));
  ASSERT_OK(mkdir(P("p2").c_str(), 0755));
  ASSERT_OK(mkdir(P("p1/d").c_str(), 0755));
  ASSERT_EQ(Nlink("p1"), 3u);
  ASSERT_EQ(Nlink("p2"), 2u);
  ASSERT_OK(rename(P("p1/d").c_str(), P("p2/d").c_str()));
  EXPECT_EQ(Nlink("p1"), 2u);
  EXPECT_EQ(Nlink("p2"), 3u);
  EXPECT_EQ(Nlink("p2/d"), 2u);
  // Replacing an empty directory in p1 from p2: p2 loses one, p1 keeps its count.
  ASSERT_OK(mkdir(P("p1/e").c_str(), 0755));
  ASSERT_OK(rename(P("p2/d").c_str(), P("p1/e").c_str()));
  EXPECT_EQ(Nlink("p1"), 3u);
  EXPECT_EQ(Nlink("p2"), 2u);
  // Moving a file changes neither.
  ASSERT_TRUE(WriteFile(P("p1/f"), ""));
  ASSERT_OK(rename(P("p1/f").c_str(), P("p2/f").c_str()));
  EXPECT_EQ(Nlink("p1"), 3u);
  EXPECT_EQ(Nlink("p2"), 2u);
  EXPECT_EQ(Nlink("p2/f"), 1u);
}

TEST_F(RenameTest, ReplacingAHardLinkedFileDropsOneLink) {
  ASSERT_TRUE(WriteFile(P("a"), "a"));
  ASSERT_TRUE(WriteFile(P("b"), "b"));
  ASSERT_OK(link(P("b").c_str(), P("b2").c_str()));
  ASSERT_EQ(Nlink("b2"), 2u);
  ASSERT_OK(rename(P("a").c_str(), P("b").c_str()));
  EXPECT_EQ(Nlink("b2"), 1u);
  EXPECT_EQ(ReadFile(P("b2")), "b");
  EXPECT_EQ(Nlink("b"), 1u);
}

TEST_F(RenameTest, RenameUpdatesCtimeAndTheParentsTimes) {
  ASSERT_OK(mkdir(P("p1").c_str(), 0755));
  ASSERT_OK(mkdir(P("p2").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("p1/f"), "data"));
  struct stat f0 {
  }, p10{}, p20{};
  ASSERT_OK(stat(P("p1/f").c_str(), &f0));
  ASSERT_OK(stat(P("p1").c_str(), &p10));
  ASSERT_OK(stat(P("p2").c_str(), &p20));
  timespec newest = f0.st_ctim;
  for (const timespec& t : {p10.st_mtim, p20.st_mtim, p10.st_ctim, p20.st_ctim}) {
    if (Later(t, newest)) newest = t;
  }
  ASSERT_TRUE(ClockPast(newest)) << "the real-time clock did not advance";
  ASSERT_OK(rename(P("p1/f").c_str(), P("p2/g").c_str()));
  struct stat f1 {
  }, p11{}, p21{};
  ASSERT_OK(stat(P("p2/g").c_str(), &f1));
  ASSERT_OK(stat(P("p1").c_str(), &p11));
  ASSERT_OK(stat(P("p2").c_str(), &p21));
  EXPECT_TRUE(Later(f1.st_ctim, f0.st_ctim)) << "the renamed inode's ctime";
  EXPECT_TRUE(SameTime(f1.st_mtim, f0.st_mtim)) << "the renamed inode's mtime must not change";
  EXPECT_TRUE(Later(p11.st_mtim, p10.st_mtim)) << "old parent mtime";
  EXPECT_TRUE(Later(p11.st_ctim, p10.st_ctim)) << "old parent ctime";
  EXPECT_TRUE(Later(p21.st_mtim, p20.st_mtim)) << "new parent mtime";
  EXPECT_TRUE(Later(p21.st_ctim, p20.st_ctim)) << "new parent ctime";
}

TEST_F(RenameTest, ReplacingAFileUpdatesTheVictimsCtime) {
  ASSERT_TRUE(WriteFile(P("a"), "a"));
  ASSERT_TRUE(WriteFile(P("b"), "b"));
  Fd victim(open(P("b").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(victim.valid());
  struct stat before {};
  ASSERT_OK(fstat(victim.get(), &before));
  ASSERT_TRUE(ClockPast(before.st_ctim)) << "the real-time clock did not advance";
  ASSERT_OK(rename(P("a").c_str(), P("b").c_str()));
  struct stat after {};
  ASSERT_OK(fstat(victim.get(), &after));
  EXPECT_EQ(after.st_nlink, 0u);
  EXPECT_TRUE(Later(after.st_ctim, before.st_ctim));
}

TEST_F(RenameTest, SymlinksAreRenamedNotFollowed) {
  ASSERT_TRUE(WriteFile(P("target"), "t"));
  ASSERT_TRUE(WriteFile(P("other"), "o"));
  ASSERT_OK(symlink("target", P("link").c_str()));
  ASSERT_OK(symlink("target", P("link2").c_str()));
  // The link moves, the target stays where it is.
  ASSERT_OK(rename(P("link").c_str(), P("moved").c_str()));
  char buf[64];
  ssize_t n = readlink(P("moved").c_str(), buf, sizeof(buf));
  ASSERT_EQ(n, 6);
  EXPECT_EQ(std::string(buf, n), "target");
  EXPECT_EQ(ReadFile(P("target")), "t");
  // A symlink as the target is replaced, not what it points to.
  ASSERT_OK(rename(P("other").c_str(), P("link2").c_str()));
  struct stat st {};
  ASSERT_OK(lstat(P("link2").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(ReadFile(P("target")), "t");
}

TEST_F(RenameTest, RenameatResolvesRelativeToEachDescriptor) {
  ASSERT_OK(mkdir(P("a").c_str(), 0755));
  ASSERT_OK(mkdir(P("b").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("a/f"), "f"));
  Fd a(open(P("a").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  Fd b(open(P("b").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(a.valid() && b.valid());
  // O_PATH descriptors are good enough as directory descriptors.
  ASSERT_OK(renameat(a.get(), "f", b.get(), "g"));
  EXPECT_EQ(ReadFile(P("b/g")), "f");
  // An absolute path ignores its descriptor, a relative one with a file descriptor is
  // ENOTDIR, and a bad descriptor is EBADF.
  ASSERT_OK(renameat(-1, P("b/g").c_str(), a.get(), "h"));
  Fd file(open(P("a/h").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file.valid());
  EXPECT_ERRNO(renameat(file.get(), "x", a.get(), "y"), ENOTDIR);
  EXPECT_ERRNO(renameat(a.get(), "h", file.get(), "y"), ENOTDIR);
  EXPECT_ERRNO(renameat(-1, "h", a.get(), "y"), EBADF);
  EXPECT_TRUE(Exists("a/h"));
}

TEST_F(RenameTest, AcrossMountsIsEXDEV) {
  ASSERT_TRUE(WriteFile(P("f"), ""));
  struct stat mine {
  }, proc{};
  ASSERT_OK(stat(dir_.path().c_str(), &mine));
  ASSERT_OK(stat("/proc/self", &proc));
  ASSERT_NE(mine.st_dev, proc.st_dev);
  // Both directions; the mount check comes before anything is looked up in either.
  EXPECT_ERRNO(rename(P("f").c_str(), "/proc/self/husk-rename-test"), EXDEV);
  EXPECT_ERRNO(rename("/proc/self/husk-rename-test", P("g").c_str()), EXDEV);
  EXPECT_ERRNO(Rename2(P("f"), "/proc/self/husk-rename-test", RENAME_NOREPLACE), EXDEV);
  EXPECT_TRUE(Exists("f"));
}

// ---- renameat2 flags ----

TEST_F(RenameTest, NoReplaceRefusesAnExistingTarget) {
  ASSERT_TRUE(WriteFile(P("a"), "a"));
  ASSERT_TRUE(WriteFile(P("b"), "b"));
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  EXPECT_ERRNO(Rename2(P("a"), P("b"), RENAME_NOREPLACE), EEXIST);
  EXPECT_ERRNO(Rename2(P("a"), P("d"), RENAME_NOREPLACE), EEXIST);
  EXPECT_ERRNO(Rename2(P("d"), P("a"), RENAME_NOREPLACE), EEXIST);
  // Even a dangling symlink is an existing name.
  ASSERT_OK(symlink("nowhere", P("s").c_str()));
  EXPECT_ERRNO(Rename2(P("a"), P("s"), RENAME_NOREPLACE), EEXIST);
  EXPECT_EQ(ReadFile(P("a")), "a");
  EXPECT_EQ(ReadFile(P("b")), "b");
  // A free name is taken as by rename.
  ASSERT_OK(Rename2(P("a"), P("c"), RENAME_NOREPLACE));
  EXPECT_FALSE(Exists("a"));
  EXPECT_EQ(ReadFile(P("c")), "a");
  EXPECT_ERRNO(Rename2(P("missing"), P("e"), RENAME_NOREPLACE), ENOENT);
  // The glibc wrapper passes the same flags.
  EXPECT_ERRNO(renameat2(AT_FDCWD, P("c").c_str(), AT_FDCWD, P("b").c_str(), RENAME_NOREPLACE),
               EEXIST);
}

TEST_F(RenameTest, ExchangeSwapsTwoFiles) {
  ASSERT_TRUE(WriteFile(P("a"), "content of a"));
  ASSERT_TRUE(WriteFile(P("b"), "content of b"));
  const ino_t a = Ino("a"), b = Ino("b");
  ASSERT_OK(Rename2(P("a"), P("b"), RENAME_EXCHANGE));
  EXPECT_EQ(Ino("a"), b);
  EXPECT_EQ(Ino("b"), a);
  EXPECT_EQ(ReadFile(P("a")), "content of b");
  EXPECT_EQ(ReadFile(P("b")), "content of a");
  EXPECT_EQ(Nlink("a"), 1u);
  EXPECT_EQ(Nlink("b"), 1u);
}

TEST_F(RenameTest, ExchangeSwapsAFileAndADirectoryAcrossParents) {
  ASSERT_OK(mkdir(P("p1").c_str(), 0755));
  ASSERT_OK(mkdir(P("p2").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("p1/f"), "file"));
  ASSERT_OK(mkdir(P("p2/d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("p2/d/inner"), "inner"));
  ASSERT_EQ(Nlink("p1"), 2u);
  ASSERT_EQ(Nlink("p2"), 3u);
  ASSERT_OK(Rename2(P("p1/f"), P("p2/d"), RENAME_EXCHANGE));
  EXPECT_EQ(ReadFile(P("p1/f/inner")), "inner");
  EXPECT_EQ(ReadFile(P("p2/d")), "file");
  // The directory's parent changed, and with it both parents' link counts and its "..".
  EXPECT_EQ(Nlink("p1"), 3u);
  EXPECT_EQ(Nlink("p2"), 2u);
  EXPECT_EQ(Ino("p1/f/.."), Ino("p1"));
}

TEST_F(RenameTest, ExchangeSwapsNonEmptyDirectories) {
  ASSERT_OK(mkdir(P("a").c_str(), 0755));
  ASSERT_OK(mkdir(P("b").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("a/fa"), "a"));
  ASSERT_TRUE(WriteFile(P("b/fb"), "b"));
  ASSERT_OK(Rename2(P("a"), P("b"), RENAME_EXCHANGE));
  EXPECT_EQ(ReadFile(P("b/fa")), "a");
  EXPECT_EQ(ReadFile(P("a/fb")), "b");
  EXPECT_FALSE(Exists("a/fa"));
}

TEST_F(RenameTest, ExchangeNeedsBothNames) {
  ASSERT_TRUE(WriteFile(P("a"), "a"));
  EXPECT_ERRNO(Rename2(P("a"), P("missing"), RENAME_EXCHANGE), ENOENT);
  EXPECT_ERRNO(Rename2(P("missing"), P("a"), RENAME_EXCHANGE), ENOENT);
  EXPECT_ERRNO(Rename2(P("a"), P("nodir/x"), RENAME_EXCHANGE), ENOENT);
  EXPECT_TRUE(Exists("a"));
  EXPECT_FALSE(Exists("missing"));
  // A trailing slash on a file is ENOTDIR here too, and "." is EBUSY.
  ASSERT_TRUE(WriteFile(P("b"), "b"));
  EXPECT_ERRNO(Rename2(P("a/"), P("b"), RENAME_EXCHANGE), ENOTDIR);
  ASSERT_OK(mkdir(P("d").c_str(), 0755));
  EXPECT_ERRNO(Rename2(P("a"), P("d/."), RENAME_EXCHANGE), EBUSY);
}

TEST_F(RenameTest, ExchangeWithNoReplaceIsEINVAL) {
  ASSERT_TRUE(WriteFile(P("a"), "a"));
  ASSERT_TRUE(WriteFile(P("b"), "b"));
  EXPECT_ERRNO(Rename2(P("a"), P("b"), RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
  EXPECT_ERRNO(Rename2(P("a"), P("c"), RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
  EXPECT_ERRNO(Rename2(P("a"), P("b"), RENAME_EXCHANGE | RENAME_WHITEOUT), EINVAL);
  EXPECT_EQ(ReadFile(P("a")), "a");
  EXPECT_EQ(ReadFile(P("b")), "b");
}

TEST_F(RenameTest, UnknownFlagsAreEINVAL) {
  ASSERT_TRUE(WriteFile(P("a"), "a"));
  EXPECT_ERRNO(Rename2(P("a"), P("b"), 1u << 3), EINVAL);
  EXPECT_ERRNO(Rename2(P("a"), P("b"), 1u << 31), EINVAL);
  // The flags are checked before the names.
  EXPECT_ERRNO(Rename2(P("missing"), P("b"), 1u << 8), EINVAL);
  EXPECT_TRUE(Exists("a"));
  EXPECT_FALSE(Exists("b"));
  // No flags at all is plain rename.
  ASSERT_OK(Rename2(P("a"), P("b"), 0));
  EXPECT_EQ(ReadFile(P("b")), "a");
}

TEST_F(RenameTest, WhiteoutLeavesACharacterDeviceZeroZero) {
  ASSERT_TRUE(WriteFile(P("a"), "a"));
  ASSERT_TRUE(WriteFile(P("b"), "b"));
  errno = 0;
  long r = Rename2(P("a"), P("b"), RENAME_WHITEOUT);
  const int err = errno;
  if (r != 0 && err == EINVAL) {
    struct statfs fs {};
    ASSERT_OK(statfs(dir_.path().c_str(), &fs));
    // overlayfs does not offer whiteouts to its users: its rename takes only the other two.
    if (fs.f_type == OVERLAYFS_SUPER_MAGIC) GTEST_SKIP() << "no RENAME_WHITEOUT on overlayfs";
  }
  ASSERT_EQ(r, 0) << ErrnoName(err);
  EXPECT_EQ(ReadFile(P("b")), "a");
  // The old name is now a whiteout: a character device with device number 0/0.
  struct stat st {};
  ASSERT_OK(lstat(P("a").c_str(), &st));
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << std::oct << st.st_mode;
  EXPECT_EQ(major(st.st_rdev), 0u);
  EXPECT_EQ(minor(st.st_rdev), 0u);
  EXPECT_EQ(st.st_size, 0);
  // It is an ordinary name: it can be removed.
  ASSERT_OK(unlink(P("a").c_str()));
}

TEST_F(RenameTest, WhiteoutNeedsNoCapabilityForItsOwnFile) {
  // Since Linux 5.8 a whiteout (character device 0/0) needs no CAP_MKNOD: neither through
  // renameat2 nor through mknod. Other character devices still do.
  ASSERT_OK(chmod(dir_.path().c_str(), 0777));
  ASSERT_TRUE(WriteFile(P("a"), "a"));
  ASSERT_OK(chown(P("a").c_str(), kNobody, kNogroup));
  struct statfs fs {};
  ASSERT_OK(statfs(dir_.path().c_str(), &fs));
  if (fs.f_type == OVERLAYFS_SUPER_MAGIC) GTEST_SKIP() << "no RENAME_WHITEOUT on overlayfs";
  const std::string a = P("a"), b = P("b"), w = P("w"), c = P("c");
  int rc = InChild([&] {
    if (setresgid(kNogroup, kNogroup, kNogroup) != 0 || setresuid(kNobody, kNobody, kNobody) != 0)
      return 10;
    if (Rename2(a, b, RENAME_WHITEOUT) != 0) return 11;
    if (mknod(w.c_str(), S_IFCHR | 0600, makedev(0, 0)) != 0) return 12;
    if (mknod(c.c_str(), S_IFCHR | 0600, makedev(1, 3)) != -1 || errno != EPERM) return 13;
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(ReadFile(P("b")), "a");
  struct stat st {};
  ASSERT_OK(lstat(P("a").c_str(), &st));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_uid, kNobody);
  ASSERT_OK(lstat(P("w").c_str(), &st));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_FALSE(Exists("c"));
}

// ---- permissions for an unprivileged caller ----

TEST_F(RenameTest, StickyDirectoryKeepsOthersFilesInPlace) {
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  ASSERT_OK(mkdir(P("sticky").c_str(), 0777));
  ASSERT_OK(chmod(P("sticky").c_str(), 01777));
  ASSERT_TRUE(WriteFile(P("sticky/roots"), "r"));
  ASSERT_OK(chmod(P("sticky/roots").c_str(), 0666));
  const std::string s = P("sticky");
  int rc = InChild([&] {
    if (setresgid(kNogroup, kNogroup, kNogroup) != 0 || setresuid(kNobody, kNobody, kNobody) != 0)
      return 10;
    // Another user's file can be neither moved away nor replaced, nor swapped.
    if (rename((s + "/roots").c_str(), (s + "/x").c_str()) != -1 || errno != EPERM) return 11;
    int fd = open((s + "/mine").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return 12;
    close(fd);
    if (rename((s + "/mine").c_str(), (s + "/roots").c_str()) != -1 || errno != EPERM) return 13;
    // One's own file moves freely, also onto a free name.
    if (rename((s + "/mine").c_str(), (s + "/mine2").c_str()) != 0) return 15;
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(ReadFile(P("sticky/roots")), "r");
  EXPECT_TRUE(Exists("sticky/mine2"));
}

TEST_F(RenameTest, StickyDirectoryForbidsExchangingOthersFiles) {
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  ASSERT_OK(mkdir(P("sticky").c_str(), 0777));
  ASSERT_OK(chmod(P("sticky").c_str(), 01777));
  ASSERT_TRUE(WriteFile(P("sticky/roots"), "r"));
  ASSERT_OK(chmod(P("sticky/roots").c_str(), 0666));
  ASSERT_TRUE(WriteFile(P("sticky/mine"), "m"));
  ASSERT_OK(chown(P("sticky/mine").c_str(), kNobody, kNogroup));
  const std::string s = P("sticky");
  int rc = InChild([&] {
    if (setresgid(kNogroup, kNogroup, kNogroup) != 0 || setresuid(kNobody, kNobody, kNobody) != 0)
      return 10;
    // Both sides are removed from their names, so both must be the caller's.
    if (Rename2(s + "/mine", s + "/roots", RENAME_EXCHANGE) != -1 || errno != EPERM) return 11;
    if (Rename2(s + "/roots", s + "/mine", RENAME_EXCHANGE) != -1 || errno != EPERM) return 12;
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(ReadFile(P("sticky/roots")), "r");
  EXPECT_EQ(ReadFile(P("sticky/mine")), "m");
}

TEST_F(RenameTest, TheOwnerOfAStickyDirectoryMovesAnyFileInIt) {
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  ASSERT_OK(mkdir(P("sticky").c_str(), 0777));
  ASSERT_OK(chmod(P("sticky").c_str(), 01777));
  ASSERT_OK(chown(P("sticky").c_str(), kNobody, kNogroup));
  ASSERT_TRUE(WriteFile(P("sticky/roots"), "r"));
  const std::string s = P("sticky");
  int rc = InChild([&] {
    if (setresgid(kNogroup, kNogroup, kNogroup) != 0 || setresuid(kNobody, kNobody, kNobody) != 0)
      return 10;
    if (rename((s + "/roots").c_str(), (s + "/moved").c_str()) != 0) return 11;
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(ReadFile(P("sticky/moved")), "r");
}

TEST_F(RenameTest, NonRootNeedsWriteOnBothParents) {
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  ASSERT_OK(mkdir(P("mine").c_str(), 0755));
  ASSERT_OK(chown(P("mine").c_str(), kNobody, kNogroup));
  ASSERT_OK(mkdir(P("locked").c_str(), 0755));  // root's, read and search only for others
  ASSERT_TRUE(WriteFile(P("locked/f"), "f"));
  ASSERT_OK(chown(P("locked/f").c_str(), kNobody, kNogroup));
  const std::string mine = P("mine"), locked = P("locked");
  int rc = InChild([&] {
    if (setresgid(kNogroup, kNogroup, kNogroup) != 0 || setresuid(kNobody, kNobody, kNobody) != 0)
      return 10;
    int fd = open((mine + "/g").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return 11;
    close(fd);
    // Into a directory without write permission.
    if (rename((mine + "/g").c_str(), (locked + "/g").c_str()) != -1 || errno != EACCES) return 12;
    // Out of one, even when the file is one's own.
    if (rename((locked + "/f").c_str(), (mine + "/f").c_str()) != -1 || errno != EACCES) return 13;
    // Within one.
    if (rename((locked + "/f").c_str(), (locked + "/f2").c_str()) != -1 || errno != EACCES)
      return 14;
    // An existing target is reported before the missing permission.
    if (Rename2(mine + "/g", locked + "/f", RENAME_NOREPLACE) != -1 || errno != EEXIST) return 15;
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(Exists("mine/g"));
  EXPECT_TRUE(Exists("locked/f"));
}

TEST_F(RenameTest, NonRootNeedsSearchOnTheWay) {
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  ASSERT_OK(mkdir(P("closed").c_str(), 0777));
  ASSERT_OK(chmod(P("closed").c_str(), 0776));  // write but no search for others
  ASSERT_TRUE(WriteFile(P("closed/f"), ""));
  ASSERT_OK(mkdir(P("open").c_str(), 0777));
  ASSERT_OK(chmod(P("open").c_str(), 0777));
  const std::string closed = P("closed"), open_dir = P("open");
  int rc = InChild([&] {
    if (setresgid(kNogroup, kNogroup, kNogroup) != 0 || setresuid(kNobody, kNobody, kNobody) != 0)
      return 10;
    if (rename((closed + "/f").c_str(), (open_dir + "/f").c_str()) != -1 || errno != EACCES)
      return 11;
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(Exists("closed/f"));
}

}  // namespace
}  // namespace husk_test
