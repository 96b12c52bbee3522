// Discretionary access control (issue 11, finding 3; path_resolution(7), inode_permission in
// fs/namei.c, setattr_prepare in fs/attr.c, capabilities(7)). In husk, after setuid(65534) a
// program could read /etc/shadow, write /etc/passwd in its overlay, chmod and chown anything.
//
// The test process is root in its user namespace (natively: the fence's; in husk: the
// sandbox's). It prepares files in a fresh directory, then each case runs in a forked child
// that drops to uid/gid 65534 ("nobody", no capabilities) or stays root, and checks what
// Linux allows: owner/group/other bits (the first class that matches decides), supplementary
// groups, search permission on every directory walked, write and search permission on the
// parent to create or remove, the sticky bit, and what root's capabilities override.
#include <grp.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "tests/security/security_util.h"

namespace {

using husk_security::BecomeNobody;
using husk_security::ExpectChildOk;
using husk_security::kNobody;
using husk_test::ReadFile;
using husk_test::TempDir;
using husk_test::WriteFile;

constexpr gid_t kGroup = 1234;  // a group neither root nor nobody belongs to at first

class PermTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = husk_security::CannotBecomeNobody();
    if (!why.empty()) GTEST_SKIP() << why;
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);  // nobody may walk into it
  }

  // Creates path owned by uid:gid with mode (set after creation, so no umask applies).
  void Make(const std::string& name, mode_t mode, uid_t uid = 0, gid_t gid = 0,
            const std::string& data = "data") {
    const std::string path = dir_.Join(name);
    ASSERT_TRUE(WriteFile(path, data)) << path;
    ASSERT_EQ(chown(path.c_str(), uid, gid), 0) << husk_test::ErrnoName(errno);
    ASSERT_EQ(chmod(path.c_str(), mode), 0) << husk_test::ErrnoName(errno);
  }
  void MakeDir(const std::string& name, mode_t mode, uid_t uid = 0, gid_t gid = 0) {
    const std::string path = dir_.Join(name);
    ASSERT_EQ(mkdir(path.c_str(), 0700), 0) << path << ": " << husk_test::ErrnoName(errno);
    ASSERT_EQ(chown(path.c_str(), uid, gid), 0) << husk_test::ErrnoName(errno);
    ASSERT_EQ(chmod(path.c_str(), mode), 0) << husk_test::ErrnoName(errno);
  }
  std::string P(const std::string& name) const { return dir_.Join(name); }
  mode_t Mode(const std::string& name) const {
    struct stat st {};
    EXPECT_EQ(stat(P(name).c_str(), &st), 0) << name;
    return st.st_mode & 07777;
  }

  TempDir dir_;
};

// Runs body as nobody in a forked child and expects it to return 0.
template <typename F>
void AsNobody(F body) {
  ExpectChildOk([&] {
    if (!BecomeNobody()) return 100;
    return body();
  });
}

TEST_F(PermTest, NobodyCannotReadAnotherUsersPrivateFile) {
  Make("secret", 0600);
  Make("group-only", 0640);
  AsNobody([&] {
    CHILD_CHECK_ERRNO(open(P("secret").c_str(), O_RDONLY), EACCES, 1);
    CHILD_CHECK_ERRNO(open(P("group-only").c_str(), O_RDONLY), EACCES, 2);
    return 0;
  });
}

TEST_F(PermTest, NobodyCannotWriteAReadOnlyFile) {
  Make("file", 0644);
  AsNobody([&] {
    CHILD_CHECK_ERRNO(open(P("file").c_str(), O_WRONLY), EACCES, 1);
    CHILD_CHECK_ERRNO(open(P("file").c_str(), O_RDWR), EACCES, 2);
    CHILD_CHECK_ERRNO(open(P("file").c_str(), O_WRONLY | O_TRUNC), EACCES, 3);
    CHILD_CHECK_ERRNO(truncate(P("file").c_str(), 0), EACCES, 4);
    CHILD_CHECK(ReadFile(P("file")) == "data", 5);  // reading is allowed
    return 0;
  });
  EXPECT_EQ(ReadFile(P("file")), "data");
}

// Creating or removing a name needs write and search permission on the directory.
TEST_F(PermTest, NobodyCannotChangeARootDirectory) {
  MakeDir("ro", 0755);
  Make("ro/file", 0666);
  MakeDir("ro/sub", 0777);
  MakeDir("wx-less", 0776);  // write without search is not enough
  MakeDir("mine", 0755, kNobody, kNobody);
  Make("mine/own", 0644, kNobody, kNobody);
  AsNobody([&] {
    CHILD_CHECK_ERRNO(open(P("ro/new").c_str(), O_WRONLY | O_CREAT, 0644), EACCES, 1);
    CHILD_CHECK_ERRNO(mkdir(P("ro/newdir").c_str(), 0755), EACCES, 2);
    CHILD_CHECK_ERRNO(mkfifo(P("ro/fifo").c_str(), 0644), EACCES, 3);
    CHILD_CHECK_ERRNO(symlink("file", P("ro/link").c_str()), EACCES, 4);
    CHILD_CHECK_ERRNO(unlink(P("ro/file").c_str()), EACCES, 5);
    CHILD_CHECK_ERRNO(rmdir(P("ro/sub").c_str()), EACCES, 6);
    CHILD_CHECK_ERRNO(rename(P("ro/file").c_str(), P("ro/moved").c_str()), EACCES, 7);
    CHILD_CHECK_ERRNO(rename(P("mine/own").c_str(), P("ro/own").c_str()), EACCES, 8);
    CHILD_CHECK_ERRNO(open(P("wx-less/new").c_str(), O_WRONLY | O_CREAT, 0644), EACCES, 9);
    // A writable file in it may still be written: the directory guards names, not data.
    CHILD_CHECK(WriteFile(P("ro/file"), "changed"), 10);
    return 0;
  });
  EXPECT_EQ(ReadFile(P("ro/file")), "changed");
}

// Every directory on a path needs search (x) permission; listing needs read (r).
TEST_F(PermTest, SearchPermissionOnEveryComponent) {
  MakeDir("closed", 0700);
  Make("closed/file", 0644);
  MakeDir("closed/sub", 0755);
  Make("closed/sub/file", 0644);
  MakeDir("x-only", 0711);
  Make("x-only/file", 0644);
  MakeDir("r-only", 0744);
  Make("r-only/file", 0644);
  AsNobody([&] {
    struct stat st;
    CHILD_CHECK_ERRNO(stat(P("closed/file").c_str(), &st), EACCES, 1);
    CHILD_CHECK_ERRNO(open(P("closed/file").c_str(), O_RDONLY), EACCES, 2);
    CHILD_CHECK_ERRNO(stat(P("closed/sub/file").c_str(), &st), EACCES, 3);
    CHILD_CHECK_ERRNO(chdir(P("closed").c_str()), EACCES, 4);
    CHILD_CHECK_ERRNO(open(P("closed").c_str(), O_RDONLY | O_DIRECTORY), EACCES, 5);
    // Search without read: names can be used but not listed.
    CHILD_CHECK(ReadFile(P("x-only/file")) == "data", 6);
    CHILD_CHECK_ERRNO(open(P("x-only").c_str(), O_RDONLY | O_DIRECTORY), EACCES, 7);
    // Read without search: names can be listed but not used.
    CHILD_CHECK(open(P("r-only").c_str(), O_RDONLY | O_DIRECTORY) >= 0, 8);
    CHILD_CHECK_ERRNO(stat(P("r-only/file").c_str(), &st), EACCES, 9);
    return 0;
  });
}

// The sticky bit (1777, like /tmp): only the owner of a file (or of the directory) may
// remove or rename it, even though everyone may write the directory.
TEST_F(PermTest, StickyDirectoryProtectsOtherUsersFiles) {
  MakeDir("sticky", 01777);
  Make("sticky/roots", 0666);
  MakeDir("sticky/rootdir", 0777);
  MakeDir("open", 0777);
  Make("open/roots", 0666);
  AsNobody([&] {
    CHILD_CHECK_ERRNO(unlink(P("sticky/roots").c_str()), EPERM, 1);
    CHILD_CHECK_ERRNO(rename(P("sticky/roots").c_str(), P("sticky/x").c_str()), EPERM, 2);
    CHILD_CHECK_ERRNO(rmdir(P("sticky/rootdir").c_str()), EPERM, 3);
    CHILD_CHECK(WriteFile(P("sticky/mine"), "m"), 4);
    CHILD_CHECK_ERRNO(rename(P("sticky/mine").c_str(), P("sticky/roots").c_str()), EPERM, 5);
    CHILD_CHECK(unlink(P("sticky/mine").c_str()) == 0, 6);  // its own file: fine
    CHILD_CHECK(unlink(P("open/roots").c_str()) == 0, 7);   // no sticky bit: fine
    return 0;
  });
  EXPECT_EQ(ReadFile(P("sticky/roots")), "data");
}

// chmod and chown (chmod(2), chown(2)): only the owner may change the mode; only root may
// change the owner; the owner may change the group only to one of its own groups.
TEST_F(PermTest, OnlyTheOwnerChangesModeAndOnlyRootChangesOwner) {
  Make("roots", 0666);
  Make("own", 0644, kNobody, kNobody);
  AsNobody([&] {
    CHILD_CHECK_ERRNO(chmod(P("roots").c_str(), 0777), EPERM, 1);
    CHILD_CHECK_ERRNO(chown(P("roots").c_str(), kNobody, -1), EPERM, 2);
    CHILD_CHECK_ERRNO(chown(P("roots").c_str(), -1, kNobody), EPERM, 3);
    const int fd = open(P("roots").c_str(), O_RDWR);
    CHILD_CHECK(fd >= 0, 4);
    CHILD_CHECK_ERRNO(fchmod(fd, 0777), EPERM, 5);
    CHILD_CHECK_ERRNO(fchown(fd, kNobody, kNobody), EPERM, 6);
    CHILD_CHECK(chmod(P("own").c_str(), 0600) == 0, 7);
    CHILD_CHECK_ERRNO(chown(P("own").c_str(), 0, -1), EPERM, 8);
    CHILD_CHECK_ERRNO(chown(P("own").c_str(), -1, kGroup), EPERM, 9);
    CHILD_CHECK(chown(P("own").c_str(), kNobody, kNobody) == 0, 10);  // no change: allowed
    return 0;
  });
  EXPECT_EQ(Mode("roots"), 0666u);
  EXPECT_EQ(Mode("own"), 0600u);
}

// utimensat(2): explicit times need ownership; "now" (NULL or UTIME_NOW twice) needs
// ownership or write permission.
TEST_F(PermTest, SettingTimesNeedsOwnershipOrWriteAccess) {
  Make("writable", 0666);
  Make("readonly", 0644);
  Make("own", 0444, kNobody, kNobody);
  AsNobody([&] {
    const timespec explicit_times[2] = {{1000, 0}, {2000, 0}};
    const timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    CHILD_CHECK_ERRNO(utimensat(AT_FDCWD, P("writable").c_str(), explicit_times, 0), EPERM, 1);
    CHILD_CHECK(utimensat(AT_FDCWD, P("writable").c_str(), nullptr, 0) == 0, 2);
    CHILD_CHECK(utimensat(AT_FDCWD, P("writable").c_str(), now, 0) == 0, 3);
    CHILD_CHECK_ERRNO(utimensat(AT_FDCWD, P("readonly").c_str(), nullptr, 0), EACCES, 4);
    CHILD_CHECK_ERRNO(utimensat(AT_FDCWD, P("readonly").c_str(), now, 0), EACCES, 5);
    CHILD_CHECK(utimensat(AT_FDCWD, P("own").c_str(), explicit_times, 0) == 0, 6);
    return 0;
  });
  struct stat st {};
  ASSERT_EQ(stat(P("own").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
}

TEST_F(PermTest, TruncateNeedsWritePermission) {
  Make("readonly", 0644);
  Make("writable", 0666);
  AsNobody([&] {
    CHILD_CHECK_ERRNO(truncate(P("readonly").c_str(), 1), EACCES, 1);
    CHILD_CHECK(truncate(P("writable").c_str(), 1) == 0, 2);
    const int fd = open(P("writable").c_str(), O_RDONLY);
    CHILD_CHECK(fd >= 0, 3);
    CHILD_CHECK_ERRNO(ftruncate(fd, 0), EINVAL, 4);  // not open for writing
    return 0;
  });
  EXPECT_EQ(ReadFile(P("readonly")), "data");
  EXPECT_EQ(ReadFile(P("writable")), "d");
}

// access(2) checks with the real uid (and real root's capabilities), open(2) with the
// effective one; faccessat(AT_EACCESS) with the effective one too.
TEST_F(PermTest, AccessChecksTheRealUid) {
  Make("secret", 0600);
  ExpectChildOk([&] {
    if (setresuid(kNobody, 0, 0) != 0) return 100;  // real nobody, effective root
    CHILD_CHECK(open(P("secret").c_str(), O_RDONLY) >= 0, 1);
    CHILD_CHECK_ERRNO(access(P("secret").c_str(), R_OK), EACCES, 2);
    CHILD_CHECK(faccessat(AT_FDCWD, P("secret").c_str(), R_OK, AT_EACCESS) == 0, 3);
    return 0;
  });
  ExpectChildOk([&] {
    if (setresuid(0, kNobody, 0) != 0) return 100;  // real root, effective nobody
    CHILD_CHECK_ERRNO(open(P("secret").c_str(), O_RDONLY), EACCES, 1);
    CHILD_CHECK(access(P("secret").c_str(), R_OK | W_OK) == 0, 2);
    CHILD_CHECK_ERRNO(faccessat(AT_FDCWD, P("secret").c_str(), R_OK, AT_EACCESS), EACCES, 3);
    return 0;
  });
}

// The group class applies to the file's group and every supplementary group; the first
// class that matches decides, even when a later one would allow more.
TEST_F(PermTest, SupplementaryGroupsGrantGroupBits) {
  Make("group-rw", 0660, 0, kGroup);
  Make("group-r", 0640, 0, kGroup);
  Make("group-none", 0604, 0, kGroup);
  Make("owner-none", 0066, kNobody, kNobody);
  ExpectChildOk([&] {
    const gid_t groups[] = {kGroup};
    if (setgroups(1, groups) != 0 || setresgid(kNobody, kNobody, kNobody) != 0 ||
        setresuid(kNobody, kNobody, kNobody) != 0)
      return 100;
    CHILD_CHECK(open(P("group-rw").c_str(), O_RDWR) >= 0, 1);
    CHILD_CHECK(open(P("group-r").c_str(), O_RDONLY) >= 0, 2);
    CHILD_CHECK_ERRNO(open(P("group-r").c_str(), O_WRONLY), EACCES, 3);
    CHILD_CHECK_ERRNO(open(P("group-none").c_str(), O_RDONLY), EACCES, 4);  // other has r
    CHILD_CHECK_ERRNO(open(P("owner-none").c_str(), O_RDONLY), EACCES, 5);  // others have rw
    return 0;
  });
  AsNobody([&] {  // without the supplementary group: other bits
    CHILD_CHECK_ERRNO(open(P("group-rw").c_str(), O_RDONLY), EACCES, 1);
    CHILD_CHECK(open(P("group-none").c_str(), O_RDONLY) >= 0, 2);
    return 0;
  });
}

// Root (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) reads, writes and searches regardless of the
// mode bits, but executes a regular file only if some execute bit is set.
TEST_F(PermTest, RootOverridesModesButNotTheExecuteBits) {
  const std::string true_bin = ReadFile("/bin/true");
  ASSERT_FALSE(true_bin.empty());
  Make("none", 0000);
  MakeDir("closed", 0000);
  Make("noexec", 0644, 0, 0, true_bin);
  Make("owner-x", 0744, 0, 0, true_bin);
  Make("group-x", 0610, 0, 0, true_bin);
  auto run = [](const std::string& path) {  // exit status of path, or -errno of execve
    pid_t pid = fork();
    if (pid == 0) {
      execl(path.c_str(), path.c_str(), nullptr);
      _exit(100 + errno);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status) >= 100 ? -(WEXITSTATUS(status) - 100) : WEXITSTATUS(status);
  };
  ExpectChildOk([&] {
    CHILD_CHECK(open(P("none").c_str(), O_RDWR) >= 0, 1);
    CHILD_CHECK(open(P("closed").c_str(), O_RDONLY | O_DIRECTORY) >= 0, 2);
    CHILD_CHECK(WriteFile(P("closed/new"), "x"), 3);
    CHILD_CHECK(run(P("noexec")) == -EACCES, 4);
    CHILD_CHECK(run(P("owner-x")) == 0, 5);
    CHILD_CHECK(run(P("group-x")) == 0, 6);
    return 0;
  });
  AsNobody([&] {
    CHILD_CHECK(run(P("owner-x")) == -EACCES, 1);  // the owner's x bit is not nobody's
    return 0;
  });
}

// Root may change the mode and owner of any file (CAP_FOWNER, CAP_CHOWN). A change of owner
// clears set-user-ID, even by root (chown(2)).
TEST_F(PermTest, RootChangesAnyOwnerAndChownClearsSetuid) {
  Make("nobodys", 0644, kNobody, kNobody);
  ExpectChildOk([&] {
    CHILD_CHECK(chmod(P("nobodys").c_str(), 04755) == 0, 1);
    CHILD_CHECK(chown(P("nobodys").c_str(), 0, kGroup) == 0, 2);
    return 0;
  });
  struct stat st {};
  ASSERT_EQ(stat(P("nobodys").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, kGroup);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

// A write by someone else clears set-user-ID (no CAP_FSETID); so does set-group-ID when the
// group may execute. An owner who is not in the file's group cannot set set-group-ID: chmod
// succeeds without it.
TEST_F(PermTest, WritesAndChmodByOrdinaryUsersDropSetIdBits) {
  Make("suid", 06777);
  Make("own", 0644, kNobody, kGroup);
  AsNobody([&] {
    const int fd = open(P("suid").c_str(), O_WRONLY);
    CHILD_CHECK(fd >= 0, 1);
    CHILD_CHECK(write(fd, "x", 1) == 1, 2);
    CHILD_CHECK(chmod(P("own").c_str(), 02755) == 0, 3);
    return 0;
  });
  EXPECT_EQ(Mode("suid"), 0777u);
  EXPECT_EQ(Mode("own"), 0755u);
}

// The host's account files, as a program in a container relies on: nobody cannot read
// /etc/shadow or write /etc/passwd; root can do both. (Checked with access(2) for root, so
// that nothing is ever opened for writing.)
TEST_F(PermTest, AccountFilesAreGuarded) {
  struct stat st;
  if (stat("/etc/shadow", &st) != 0 || (st.st_mode & S_IROTH) != 0)
    GTEST_SKIP() << "no /etc/shadow, or it is world-readable here";
  AsNobody([] {
    CHILD_CHECK_ERRNO(open("/etc/shadow", O_RDONLY), EACCES, 1);
    CHILD_CHECK_ERRNO(open("/etc/passwd", O_WRONLY), EACCES, 2);
    CHILD_CHECK_ERRNO(open("/etc/nobody-was-here", O_WRONLY | O_CREAT, 0644), EACCES, 3);
    return 0;
  });
  ExpectChildOk([] {
    const int fd = open("/etc/shadow", O_RDONLY);
    CHILD_CHECK(fd >= 0, 1);
    char c;
    CHILD_CHECK(read(fd, &c, 1) == 1, 2);
    CHILD_CHECK(access("/etc/passwd", R_OK | W_OK) == 0, 3);
    return 0;
  });
}

}  // namespace
