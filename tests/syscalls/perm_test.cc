// Discretionary access control (path_resolution(7), credentials(7)): the
// owner/group/other bits with supplementary groups, search permission on
// every directory walked, write permission on the parent for creating and
// removing names, the sticky bit, and what root's capabilities override,
// through open, execve, chdir, mkdir, unlink, rename, symlink, chmod, chown,
// utimensat, truncate and access. Fixtures are made by root in a fresh
// directory; each check runs in a forked child that became another user.
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::ErrnoName;
using husk_test::Fd;
using husk_test::ReadAll;
using husk_test::TempDir;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr uid_t kOtherUser = 1000;
constexpr gid_t kSharedGroup = 2000;   // a supplementary group of the test user
constexpr gid_t kForeignGroup = 3000;  // a group the test user is not in

// Failures seen in a child; the parent reports them.
struct Checks {
  std::string failures;

  // `got` is (result, errno) of a call returning -1 on failure; want 0
  // means success.
  void Expect(int line, const char* what, std::pair<long, int> got, int want) {
    if (want == 0 && got.first != -1) return;
    if (want != 0 && got.first == -1 && got.second == want) return;
    failures += "line " + std::to_string(line) + ": " + what + ": want " +
                (want == 0 ? std::string("success") : ErrnoName(want)) + ", got " +
                (got.first == -1 ? ErrnoName(got.second) : "success") + "\n";
  }
  void True(int line, const char* what, bool ok) {
    if (!ok) failures += "line " + std::to_string(line) + ": " + what + " is false\n";
  }
};

#define CHECK_CALL(c, expr, want)          \
  (c).Expect(                              \
      __LINE__, #expr,                     \
      [&] {                                \
        errno = 0;                         \
        long r_ = static_cast<long>(expr); \
        return std::make_pair(r_, errno);  \
      }(),                                 \
      want)
#define CHECK_OK(c, expr) CHECK_CALL(c, expr, 0)
#define CHECK_TRUE(c, expr) (c).True(__LINE__, #expr, (expr))

struct Ids {
  uid_t uid = kNobody;
  gid_t gid = kNogroup;
  std::vector<gid_t> groups;
};

// Runs body(Checks&) in a child that dropped root for `ids` (all three
// uids and gids, as setuid(2) by root does), and reports what it found.
template <typename F>
void RunAs(const Ids& ids, F body) {
  husk_test::Pipe p = husk_test::MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    Checks c;
    if (setgroups(ids.groups.size(), ids.groups.data()) != 0 ||
        setresgid(ids.gid, ids.gid, ids.gid) != 0 || setresuid(ids.uid, ids.uid, ids.uid) != 0) {
      c.failures = "cannot become the user: " + ErrnoName(errno);
    } else {
      body(c);
    }
    size_t done = 0;
    while (done < c.failures.size()) {
      ssize_t n = write(p.w.get(), c.failures.data() + done, c.failures.size() - done);
      if (n <= 0) break;
      done += n;
    }
    _exit(0);
  }
  p.w.Reset();
  std::string failures = ReadAll(p.r.get());
  int status = husk_test::Wait(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_EQ(failures, "") << "as uid " << ids.uid;
}

Ids Nobody() { return Ids{}; }
Ids NobodyWithGroup() { return Ids{kNobody, kNogroup, {kSharedGroup}}; }

// Runs path with no arguments in a child; 0 if it ran and exited 0,
// execve's errno if it could not start.
int ExecErrno(const std::string& path) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
    _exit(100 + errno);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  int code = WEXITSTATUS(status);
  return code >= 100 ? code - 100 : code == 0 ? 0 : -1;
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

class PermTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (in its user namespace)";
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0) << ErrnoName(errno);
  }

  std::string P(const std::string& name) const { return dir_.Join(name); }

  void File(const std::string& name, mode_t mode, uid_t uid = 0, gid_t gid = 0,
            const std::string& data = "data") {
    ASSERT_TRUE(husk_test::WriteFile(P(name), data, 0600)) << name << ": " << ErrnoName(errno);
    Own(name, mode, uid, gid);
  }
  void Dir(const std::string& name, mode_t mode, uid_t uid = 0, gid_t gid = 0) {
    ASSERT_EQ(mkdir(P(name).c_str(), 0700), 0) << name << ": " << ErrnoName(errno);
    Own(name, mode, uid, gid);
  }
  // chown first: it clears set-user-ID and set-group-ID bits.
  void Own(const std::string& name, mode_t mode, uid_t uid, gid_t gid) {
    ASSERT_EQ(chown(P(name).c_str(), uid, gid), 0) << name << ": " << ErrnoName(errno);
    ASSERT_EQ(chmod(P(name).c_str(), mode), 0) << name << ": " << ErrnoName(errno);
  }

  TempDir dir_;
};

TEST_F(PermTest, UsersCannotReadShadowOrWritePasswdAndRootCan) {
  struct stat st {};
  if (stat("/etc/shadow", &st) != 0 || (st.st_mode & S_IROTH) || st.st_uid != 0) {
    GTEST_SKIP() << "/etc/shadow is missing or readable by others here";
  }
  RunAs(Nobody(), [](Checks& c) {
    CHECK_CALL(c, open("/etc/shadow", O_RDONLY), EACCES);
    CHECK_CALL(c, open("/etc/passwd", O_WRONLY), EACCES);
    CHECK_CALL(c, open("/etc/passwd", O_RDWR | O_APPEND), EACCES);
    CHECK_CALL(c, truncate("/etc/passwd", 0), EACCES);
    CHECK_CALL(c, access("/etc/shadow", R_OK), EACCES);
    CHECK_CALL(c, access("/etc/passwd", W_OK), EACCES);
    CHECK_CALL(c, chmod("/etc/passwd", 0666), EPERM);
    CHECK_CALL(c, chown("/etc/shadow", kNobody, kNogroup), EPERM);
    CHECK_CALL(c, unlink("/etc/passwd"), EACCES);
    CHECK_CALL(c, rename("/etc/passwd", "/etc/passwd.x"), EACCES);
    Fd fd(open("/etc/passwd", O_RDONLY));
    CHECK_TRUE(c, fd.valid() && !ReadAll(fd.get(), 64).empty());
  });
  // Root reads the shadow file and may open passwd for writing (nothing
  // is written: natively these are the host's files).
  Fd shadow(open("/etc/shadow", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(shadow.valid()) << ErrnoName(errno);
  char byte;
  EXPECT_GE(read(shadow.get(), &byte, 1), 0) << ErrnoName(errno);
  Fd passwd(open("/etc/passwd", O_WRONLY | O_CLOEXEC));
  EXPECT_TRUE(passwd.valid()) << ErrnoName(errno);
  EXPECT_EQ(access("/etc/shadow", R_OK | W_OK), 0) << ErrnoName(errno);
}

TEST_F(PermTest, TheCallersClassOfBitsDecides) {
  File("owner-rw", 0600, kNobody, kForeignGroup);
  File("owner-none-others-all", 0077, kNobody, kForeignGroup);
  File("group-r", 0040, 0, kNogroup);
  File("group-none-others-r", 0704, 0, kNogroup);
  File("supplementary-rw", 0060, 0, kSharedGroup);
  File("others-r", 0644, 0, kForeignGroup);
  File("others-none", 0640, 0, kForeignGroup);
  RunAs(NobodyWithGroup(), [this](Checks& c) {
    CHECK_OK(c, open(P("owner-rw").c_str(), O_RDWR));
    // The owner's bits apply to the owner even when others have more.
    CHECK_CALL(c, open(P("owner-none-others-all").c_str(), O_RDONLY), EACCES);
    CHECK_OK(c, open(P("group-r").c_str(), O_RDONLY));
    CHECK_CALL(c, open(P("group-r").c_str(), O_WRONLY), EACCES);
    // A member gets the group's bits, even fewer than the others'.
    CHECK_CALL(c, open(P("group-none-others-r").c_str(), O_RDONLY), EACCES);
    CHECK_OK(c, open(P("supplementary-rw").c_str(), O_RDWR));
    CHECK_OK(c, open(P("others-r").c_str(), O_RDONLY));
    CHECK_CALL(c, open(P("others-r").c_str(), O_RDWR), EACCES);
    CHECK_CALL(c, open(P("others-none").c_str(), O_RDONLY), EACCES);
    // O_TRUNC asks for write permission even with O_RDONLY; O_PATH asks
    // for nothing.
    CHECK_CALL(c, open(P("others-r").c_str(), O_RDONLY | O_TRUNC), EACCES);
    CHECK_OK(c, open(P("others-none").c_str(), O_PATH));
    // O_NOATIME is for the owner.
    CHECK_CALL(c, open(P("others-r").c_str(), O_RDONLY | O_NOATIME), EPERM);
    CHECK_OK(c, open(P("owner-rw").c_str(), O_RDONLY | O_NOATIME));
  });
  // Without the supplementary group, the file's others bits apply.
  RunAs(Nobody(), [this](Checks& c) {
    CHECK_CALL(c, open(P("supplementary-rw").c_str(), O_RDONLY), EACCES);
  });
}

TEST_F(PermTest, EveryWalkedDirectoryNeedsSearchPermission) {
  Dir("closed", 0700);
  File("closed/f", 0644);
  Dir("search-only", 0711);
  File("search-only/f", 0644);
  Dir("list-only", 0744);
  File("list-only/f", 0644);
  Dir("open", 0755);
  ASSERT_EQ(symlink("../closed/f", P("open/to-closed").c_str()), 0);
  ASSERT_EQ(symlink("../closed", P("open/closed-dir").c_str()), 0);
  RunAs(Nobody(), [this](Checks& c) {
    struct stat st;
    CHECK_CALL(c, open(P("closed/f").c_str(), O_RDONLY), EACCES);
    CHECK_CALL(c, stat(P("closed/f").c_str(), &st), EACCES);
    // A missing name is not even looked up.
    CHECK_CALL(c, stat(P("closed/missing").c_str(), &st), EACCES);
    CHECK_CALL(c, stat(P("closed/.").c_str(), &st), EACCES);
    CHECK_CALL(c, stat(P("closed/..").c_str(), &st), EACCES);
    // The directory itself may be stat'ed from its parent.
    CHECK_OK(c, stat(P("closed").c_str(), &st));
    CHECK_OK(c, stat(P("search-only/f").c_str(), &st));
    CHECK_OK(c, open(P("search-only/f").c_str(), O_RDONLY));
    CHECK_CALL(c, open(P("search-only").c_str(), O_RDONLY | O_DIRECTORY), EACCES);
    CHECK_OK(c, open(P("list-only").c_str(), O_RDONLY | O_DIRECTORY));
    CHECK_CALL(c, stat(P("list-only/f").c_str(), &st), EACCES);
    // Symlinks: the components of the target are searched too.
    CHECK_CALL(c, open(P("open/to-closed").c_str(), O_RDONLY), EACCES);
    CHECK_CALL(c, stat(P("open/closed-dir/f").c_str(), &st), EACCES);
    CHECK_OK(c, lstat(P("open/to-closed").c_str(), &st));
    // The *at calls search from the directory fd too.
    Fd dirfd(open(P("list-only").c_str(), O_RDONLY | O_DIRECTORY));
    CHECK_CALL(c, fstatat(dirfd.get(), "f", &st, 0), EACCES);
    CHECK_CALL(c, openat(dirfd.get(), "f", O_RDONLY), EACCES);
  });
}

TEST_F(PermTest, NewNamesNeedWriteAndSearchOnTheParent) {
  Dir("ro", 0755);
  File("ro/existing", 0666);
  Dir("ro/sub", 0777);
  Dir("wx-missing-x", 0776);
  Dir("rw", 0777);
  RunAs(Nobody(), [this](Checks& c) {
    CHECK_CALL(c, open(P("ro/new").c_str(), O_CREAT | O_WRONLY, 0644), EACCES);
    CHECK_CALL(c, mkdir(P("ro/new").c_str(), 0755), EACCES);
    CHECK_CALL(c, symlink("x", P("ro/new").c_str()), EACCES);
    CHECK_CALL(c, open(P("wx-missing-x/new").c_str(), O_CREAT | O_WRONLY, 0644), EACCES);
    // An existing name: EEXIST wins, and O_CREAT without O_EXCL just opens.
    CHECK_CALL(c, mkdir(P("ro/existing").c_str(), 0755), EEXIST);
    CHECK_CALL(c, symlink("x", P("ro/sub").c_str()), EEXIST);
    CHECK_CALL(c, open(P("ro/existing").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    CHECK_OK(c, open(P("ro/existing").c_str(), O_CREAT | O_RDWR, 0644));
    // A new file is the caller's, opened as asked whatever its mode.
    CHECK_OK(c, open(P("rw/file").c_str(), O_CREAT | O_RDWR, 0));
    CHECK_OK(c, mkdir(P("rw/dir").c_str(), 0700));
    CHECK_OK(c, symlink("file", P("rw/link").c_str()));
    struct stat st;
    for (const char* name : {"rw/file", "rw/dir", "rw/link"}) {
      CHECK_OK(c, lstat(P(name).c_str(), &st));
      CHECK_TRUE(c, st.st_uid == kNobody && st.st_gid == kNogroup);
    }
    CHECK_OK(c, open(P("rw/dir/deeper").c_str(), O_CREAT | O_WRONLY, 0600));
  });
}

TEST_F(PermTest, ASetGroupIdDirectoryPassesItsGroupOn) {
  Dir("sgid", 02777, 0, kForeignGroup);
  RunAs(Nobody(), [this](Checks& c) {
    CHECK_OK(c, open(P("sgid/file").c_str(), O_CREAT | O_WRONLY, 0644));
    CHECK_OK(c, mkdir(P("sgid/dir").c_str(), 0755));
    // Not in the directory's group: S_ISGID is dropped from a
    // group-executable new file (mode_strip_sgid).
    CHECK_OK(c, open(P("sgid/prog").c_str(), O_CREAT | O_WRONLY, 02755));
  });
  struct stat st {};
  ASSERT_EQ(stat(P("sgid/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kForeignGroup);
  ASSERT_EQ(stat(P("sgid/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kForeignGroup);
  EXPECT_EQ(st.st_mode & 07777, 02755u);
  EXPECT_EQ(ModeOf(P("sgid/prog")), 0755u);
}

TEST_F(PermTest, RemovingAndRenamingNeedWriteOnTheParent) {
  Dir("ro", 0755);
  File("ro/f", 0666);
  Dir("ro/d", 0777);
  Dir("rw", 0777);
  File("rw/f", 0600);
  RunAs(Nobody(), [this](Checks& c) {
    CHECK_CALL(c, unlink(P("ro/f").c_str()), EACCES);
    CHECK_CALL(c, rmdir(P("ro/d").c_str()), EACCES);
    // The permission check comes before the type check...
    CHECK_CALL(c, unlink(P("ro/d").c_str()), EACCES);
    CHECK_CALL(c, rmdir(P("ro/f").c_str()), EACCES);
    // ...and after the lookup.
    CHECK_CALL(c, unlink(P("ro/missing").c_str()), ENOENT);
    CHECK_CALL(c, rename(P("ro/f").c_str(), P("ro/g").c_str()), EACCES);
    CHECK_CALL(c, rename(P("ro/f").c_str(), P("rw/g").c_str()), EACCES);
    CHECK_CALL(c, rename(P("rw/f").c_str(), P("ro/g").c_str()), EACCES);
    CHECK_CALL(c, rename(P("rw/f").c_str(), P("ro/f").c_str()), EACCES);
    // A file the caller cannot even read goes with write on the directory.
    CHECK_OK(c, rename(P("rw/f").c_str(), P("rw/g").c_str()));
    CHECK_OK(c, unlink(P("rw/g").c_str()));
  });
}

TEST_F(PermTest, ADirectoryMovingToAnotherParentNeedsWriteOnItself) {
  Dir("a", 0777);
  Dir("b", 0777);
  Dir("a/fixed", 0755);
  Dir("a/mine", 0755, kNobody, kNogroup);
  RunAs(Nobody(), [this](Checks& c) {
    CHECK_CALL(c, rename(P("a/fixed").c_str(), P("b/fixed").c_str()), EACCES);
    // Within one parent its ".." does not change.
    CHECK_OK(c, rename(P("a/fixed").c_str(), P("a/renamed").c_str()));
    CHECK_OK(c, rename(P("a/mine").c_str(), P("b/mine").c_str()));
  });
}

TEST_F(PermTest, TheStickyBitKeepsOthersFilesApart) {
  Dir("sticky", 01777);
  File("sticky/others", 0666, kOtherUser, kOtherUser);
  File("sticky/mine", 0600, kNobody, kNogroup);
  Dir("sticky/others-dir", 0777, kOtherUser, kOtherUser);
  Dir("owned-sticky", 01777, kNobody, kNogroup);
  File("owned-sticky/others", 0600, kOtherUser, kOtherUser);
  RunAs(Nobody(), [this](Checks& c) {
    CHECK_CALL(c, unlink(P("sticky/others").c_str()), EPERM);
    CHECK_CALL(c, rmdir(P("sticky/others-dir").c_str()), EPERM);
    CHECK_CALL(c, rename(P("sticky/others").c_str(), P("sticky/x").c_str()), EPERM);
    // Replacing someone else's file is removing it.
    CHECK_CALL(c, rename(P("sticky/mine").c_str(), P("sticky/others").c_str()), EPERM);
    // Writing it is not.
    CHECK_OK(c, open(P("sticky/others").c_str(), O_WRONLY));
    CHECK_OK(c, rename(P("sticky/mine").c_str(), P("sticky/mine2").c_str()));
    CHECK_OK(c, unlink(P("sticky/mine2").c_str()));
    // The directory's owner may remove anything in it.
    CHECK_OK(c, unlink(P("owned-sticky/others").c_str()));
  });
  // Root (CAP_FOWNER) too.
  EXPECT_EQ(unlink(P("sticky/others").c_str()), 0) << ErrnoName(errno);
}

TEST_F(PermTest, ExecNeedsExecutePermissionAndRootSomeExecuteBit) {
  std::string program = husk_test::ReadFile("/bin/true");
  ASSERT_FALSE(program.empty());
  File("all", 0755, 0, 0, program);
  File("owner-only", 0700, 0, 0, program);
  File("no-x", 0644, 0, 0, program);
  File("group-x", 0610, 0, kSharedGroup, program);
  Dir("closed", 0700);
  File("closed/prog", 0755, 0, 0, program);
  RunAs(NobodyWithGroup(), [this](Checks& c) {
    CHECK_TRUE(c, ExecErrno(P("all")) == 0);
    CHECK_TRUE(c, ExecErrno(P("owner-only")) == EACCES);
    CHECK_TRUE(c, ExecErrno(P("no-x")) == EACCES);
    CHECK_TRUE(c, ExecErrno(P("closed/prog")) == EACCES);
    // Execute alone is enough for an ELF file.
    CHECK_TRUE(c, ExecErrno(P("group-x")) == 0);
  });
  EXPECT_EQ(ExecErrno(P("owner-only")), 0);
  EXPECT_EQ(ExecErrno(P("group-x")), 0);
  EXPECT_EQ(ExecErrno(P("no-x")), EACCES);
  EXPECT_EQ(ExecErrno(P("closed/prog")), 0);
}

TEST_F(PermTest, ChdirNeedsSearchPermission) {
  Dir("readable", 0644);
  Dir("searchable", 0711);
  RunAs(Nobody(), [this](Checks& c) {
    CHECK_CALL(c, chdir(P("readable").c_str()), EACCES);
    Fd fd(open(P("readable").c_str(), O_RDONLY | O_DIRECTORY));
    CHECK_TRUE(c, fd.valid());
    CHECK_CALL(c, fchdir(fd.get()), EACCES);
    CHECK_OK(c, chdir(P("searchable").c_str()));
  });
}

TEST_F(PermTest, OnlyTheOwnerOrRootChangesTheMode) {
  File("roots", 0666);
  File("mine", 0644, kNobody, kNogroup);
  File("mine-foreign-group", 0644, kNobody, kForeignGroup);
  RunAs(Nobody(), [this](Checks& c) {
    CHECK_CALL(c, chmod(P("roots").c_str(), 0600), EPERM);
    Fd fd(open(P("roots").c_str(), O_RDWR));
    CHECK_CALL(c, fchmod(fd.get(), 0600), EPERM);
    CHECK_OK(c, chmod(P("mine").c_str(), 04755));
    // S_ISGID silently goes when the owner is not in the file's group.
    CHECK_OK(c, chmod(P("mine-foreign-group").c_str(), 02755));
  });
  EXPECT_EQ(ModeOf(P("mine")), 04755u);
  EXPECT_EQ(ModeOf(P("mine-foreign-group")), 0755u);
  EXPECT_EQ(chmod(P("mine-foreign-group").c_str(), 02755), 0);
  EXPECT_EQ(ModeOf(P("mine-foreign-group")), 02755u);
}

TEST_F(PermTest, OwnersOnlyChangeTheGroupToTheirOwn) {
  File("roots", 0666);
  File("mine", 0644, kNobody, kNogroup);
  File("mine-sgid", 02775, kNobody, kNogroup);
  RunAs(NobodyWithGroup(), [this](Checks& c) {
    CHECK_CALL(c, chown(P("roots").c_str(), kNobody, -1), EPERM);
    CHECK_CALL(c, chown(P("roots").c_str(), -1, kNogroup), EPERM);
    CHECK_CALL(c, chown(P("mine").c_str(), kOtherUser, -1), EPERM);
    CHECK_CALL(c, chown(P("mine").c_str(), -1, kForeignGroup), EPERM);
    // No change of owner, and a group the caller is in.
    CHECK_OK(c, chown(P("mine").c_str(), kNobody, kSharedGroup));
    // A change of group drops S_ISGID from a group-executable file.
    CHECK_OK(c, lchown(P("mine-sgid").c_str(), -1, kSharedGroup));
  });
  struct stat st {};
  ASSERT_EQ(stat(P("mine").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kSharedGroup);
  EXPECT_EQ(ModeOf(P("mine-sgid")), 0775u);
}

TEST_F(PermTest, ChownClearsSetUserIdEvenForRoot) {
  File("suid", 04755, kNobody, kNogroup);
  ASSERT_EQ(chown(P("suid").c_str(), kOtherUser, kOtherUser), 0) << ErrnoName(errno);
  EXPECT_EQ(ModeOf(P("suid")), 0755u);
  // Directories keep theirs.
  Dir("sgid-dir", 02755);
  ASSERT_EQ(chown(P("sgid-dir").c_str(), kOtherUser, kOtherUser), 0) << ErrnoName(errno);
  EXPECT_EQ(ModeOf(P("sgid-dir")), 02755u);
}

TEST_F(PermTest, ExplicitTimesNeedTheOwnerAndNowNeedsWrite) {
  File("writable", 0666);
  File("readonly", 0644);
  File("mine", 0444, kNobody, kNogroup);
  RunAs(Nobody(), [this](Checks& c) {
    timespec explicit_times[2] = {{1, 0}, {2, 0}};
    timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    timespec now_and_omit[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
    timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    CHECK_OK(c, utimensat(AT_FDCWD, P("writable").c_str(), nullptr, 0));
    CHECK_OK(c, utimensat(AT_FDCWD, P("writable").c_str(), now, 0));
    CHECK_CALL(c, utimensat(AT_FDCWD, P("writable").c_str(), explicit_times, 0), EPERM);
    CHECK_CALL(c, utimensat(AT_FDCWD, P("writable").c_str(), now_and_omit, 0), EPERM);
    CHECK_CALL(c, utimensat(AT_FDCWD, P("readonly").c_str(), nullptr, 0), EACCES);
    CHECK_CALL(c, utimensat(AT_FDCWD, P("readonly").c_str(), explicit_times, 0), EPERM);
    CHECK_OK(c, utimensat(AT_FDCWD, P("mine").c_str(), explicit_times, 0));
    CHECK_OK(c, utimensat(AT_FDCWD, P("mine").c_str(), nullptr, 0));
    // Both omitted: nothing to do, the path is not even looked up.
    CHECK_OK(c, utimensat(AT_FDCWD, P("missing").c_str(), omit, 0));
  });
}

TEST_F(PermTest, TruncateNeedsWritePermission) {
  File("readonly", 0644);
  File("writable", 0666);
  RunAs(Nobody(), [this](Checks& c) {
    CHECK_CALL(c, truncate(P("readonly").c_str(), 0), EACCES);
    CHECK_OK(c, truncate(P("writable").c_str(), 1));
  });
  struct stat st {};
  ASSERT_EQ(stat(P("writable").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1);
}

// Even root's writes clear them: only CAP_FSETID in the initial user
// namespace spares them, and neither the sandbox nor the fenced native run
// is there.
TEST_F(PermTest, WritingClearsSetIdBits) {
  File("suid", 04666);
  File("sgid-gx", 02676);
  File("sgid-no-gx", 02666, 0, kNogroup);
  RunAs(Nobody(), [this](Checks& c) {
    for (const char* name : {"suid", "sgid-gx", "sgid-no-gx"}) {
      Fd fd(open(P(name).c_str(), O_WRONLY));
      CHECK_TRUE(c, fd.valid() && write(fd.get(), "x", 1) == 1);
    }
  });
  EXPECT_EQ(ModeOf(P("suid")), 0666u);
  EXPECT_EQ(ModeOf(P("sgid-gx")), 0676u);
  // S_ISGID without group execute stays for a member of the group.
  EXPECT_EQ(ModeOf(P("sgid-no-gx")), 02666u);
  File("roots", 06676);
  Fd fd(open(P("roots").c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(write(fd.get(), "x", 1), 1);
  EXPECT_EQ(ModeOf(P("roots")), 0676u);
  File("truncated", 04666);
  ASSERT_EQ(truncate(P("truncated").c_str(), 0), 0);
  EXPECT_EQ(ModeOf(P("truncated")), 0666u);
}

TEST_F(PermTest, AccessChecksTheRealIdsUnlessEaccess) {
  File("roots", 0600);
  File("nobodys", 0600, kNobody, kNogroup);
  File("plain", 0644);
  Dir("dir", 0644);
  // Real uid nobody, effective root.
  EXPECT_EQ(husk_test::InChild([this] {
              if (setresuid(kNobody, 0, 0) != 0) return 1;
              if (access(P("roots").c_str(), R_OK) != -1 || errno != EACCES) return 2;
              if (faccessat(AT_FDCWD, P("roots").c_str(), R_OK, AT_EACCESS) != 0) return 3;
              if (access(P("nobodys").c_str(), R_OK | W_OK) != 0) return 4;
              return 0;
            }),
            0);
  // Real root, effective nobody.
  EXPECT_EQ(husk_test::InChild([this] {
              if (setresuid(0, kNobody, 0) != 0) return 1;
              if (access(P("roots").c_str(), R_OK | W_OK) != 0) return 2;
              if (faccessat(AT_FDCWD, P("roots").c_str(), R_OK, AT_EACCESS) != -1) return 3;
              if (errno != EACCES) return 4;
              return 0;
            }),
            0);
  // Root: any read and write, execute only with some execute bit, and
  // search on any directory.
  EXPECT_EQ(access(P("plain").c_str(), R_OK | W_OK), 0);
  errno = 0;
  EXPECT_EQ(access(P("plain").c_str(), X_OK), -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_EQ(access(P("dir").c_str(), X_OK), 0);
  EXPECT_EQ(access(P("dir/missing").c_str(), F_OK), -1);
  EXPECT_EQ(errno, ENOENT);
  RunAs(Nobody(), [this](Checks& c) {
    CHECK_CALL(c, access(P("dir/missing").c_str(), F_OK), EACCES);
    CHECK_OK(c, access(P("nobodys").c_str(), R_OK | W_OK));
    CHECK_CALL(c, access(P("nobodys").c_str(), X_OK), EACCES);
    CHECK_OK(c, access(P("plain").c_str(), F_OK));
  });
}

TEST_F(PermTest, RootOverridesReadWriteAndSearch) {
  File("none", 0000, kOtherUser, kOtherUser);
  Dir("none-dir", 0000, kOtherUser, kOtherUser);
  File("none-dir/f", 0000, kOtherUser, kOtherUser);
  Fd fd(open(P("none").c_str(), O_RDWR | O_CLOEXEC));
  EXPECT_TRUE(fd.valid()) << ErrnoName(errno);
  Fd dir(open(P("none-dir").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_TRUE(dir.valid()) << ErrnoName(errno);
  Fd inner(open(P("none-dir/f").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(inner.valid()) << ErrnoName(errno);
  EXPECT_EQ(mkdir(P("none-dir/new").c_str(), 0755), 0) << ErrnoName(errno);
  EXPECT_EQ(chmod(P("none").c_str(), 0640), 0) << ErrnoName(errno);
  EXPECT_EQ(chown(P("none").c_str(), kNobody, kNogroup), 0) << ErrnoName(errno);
}

// /proc/self/fd is mode 0500, yet a process that left root still lists its
// own descriptors (Linux: proc_fd_permission).
TEST_F(PermTest, AProcessThatLeftRootStillSeesItsOwnProcEntries) {
  RunAs(Nobody(), [](Checks& c) {
    Fd fd(open("/proc/self/fd", O_RDONLY | O_DIRECTORY));
    CHECK_TRUE(c, fd.valid());
    struct stat st;
    CHECK_OK(c, fstatat(fd.get(), "0", &st, AT_SYMLINK_NOFOLLOW));
    CHECK_OK(c, open("/proc/self/status", O_RDONLY));
    CHECK_OK(c, open("/proc/self/cmdline", O_RDONLY));
  });
}

// Linux drops the file capabilities while the fsuid is not 0, and gives
// them back when it returns to 0.
TEST_F(PermTest, AnFsuidOtherThanRootLosesTheOverrides) {
  File("roots", 0600);
  EXPECT_EQ(husk_test::InChild([this] {
              setfsuid(kNobody);
              if (open(P("roots").c_str(), O_RDONLY) != -1 || errno != EACCES) return 1;
              if (chmod(P("roots").c_str(), 0644) != -1 || errno != EPERM) return 2;
              setfsuid(0);
              if (open(P("roots").c_str(), O_RDONLY) < 0) return 3;
              return 0;
            }),
            0);
}

}  // namespace
