// Rights (issue 11, finding 3): after setuid(65534) an application could read /etc/shadow,
// write /etc/passwd in its overlay, and chmod and chown anything. Linux refuses all of it to
// an ordinary user, by every route (a symlink, a reopen through /proc/self/fd, a directory fd
// kept from root), and allows it to root; permissions are checked when a file is opened, so
// a descriptor root opened before dropping its ids stays usable. Nothing here writes: natively
// these are the host's files.
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "tests/security/security_util.h"

namespace {

using husk_security::BecomeNobody;
using husk_security::InChildWithin;
using husk_test::Fd;
using husk_test::TempDir;

constexpr int64_t kChildDeadlineMs = 30000;

class RightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Not CannotBecomeNobody(): husk has no /proc/self/uid_map yet, and its sandbox maps
    // every id, as the fence's user namespace does.
    if (geteuid() != 0) GTEST_SKIP() << "needs root (in its user namespace) to switch uids";
    struct stat st {};
    if (stat("/etc/shadow", &st) != 0 || st.st_uid != 0 || (st.st_mode & S_IROTH)) {
      GTEST_SKIP() << "/etc/shadow is missing or readable by others here";
    }
    ASSERT_EQ(chmod(dir_.path().c_str(), 0777), 0);
  }

  TempDir dir_;
};

TEST_F(RightsTest, NobodyCannotReadTheShadowFileByAnyRoute) {
  ASSERT_EQ(symlink("/etc/shadow", dir_.Join("link").c_str()), 0);
  std::string link = dir_.Join("link");
  EXPECT_EQ(InChildWithin(kChildDeadlineMs,
                          [&] {
                            Fd etc(open("/etc", O_RDONLY | O_DIRECTORY));
                            if (!BecomeNobody()) return 99;
                            CHILD_CHECK_ERRNO(open("/etc/shadow", O_RDONLY), EACCES, 1);
                            CHILD_CHECK_ERRNO(open(link.c_str(), O_RDONLY), EACCES, 2);
                            // A directory fd root opened does not lend root's rights.
                            CHILD_CHECK_ERRNO(openat(etc.get(), "shadow", O_RDONLY), EACCES, 3);
                            // O_PATH needs no permission, but reopening it does.
                            Fd path(open("/etc/shadow", O_PATH));
                            CHILD_CHECK(path.valid(), 4);
                            std::string proc = "/proc/self/fd/" + std::to_string(path.get());
                            CHILD_CHECK_ERRNO(open(proc.c_str(), O_RDONLY), EACCES, 5);
                            CHILD_CHECK_ERRNO(access("/etc/shadow", R_OK), EACCES, 6);
                            return 0;
                          }),
            0);
}

TEST_F(RightsTest, NobodyCannotChangeThePasswdFile) {
  EXPECT_EQ(InChildWithin(kChildDeadlineMs,
                          [] {
                            if (!BecomeNobody()) return 99;
                            const char* p = "/etc/passwd";
                            CHILD_CHECK_ERRNO(open(p, O_WRONLY), EACCES, 1);
                            CHILD_CHECK_ERRNO(open(p, O_RDWR | O_APPEND), EACCES, 2);
                            CHILD_CHECK_ERRNO(open(p, O_RDONLY | O_TRUNC), EACCES, 3);
                            CHILD_CHECK_ERRNO(truncate(p, 0), EACCES, 4);
                            CHILD_CHECK_ERRNO(chmod(p, 0666), EPERM, 5);
                            CHILD_CHECK_ERRNO(chown(p, 65534, 65534), EPERM, 6);
                            CHILD_CHECK_ERRNO(unlink(p), EACCES, 7);
                            // Within /etc: elsewhere may be another mount (EXDEV first).
                            CHILD_CHECK_ERRNO(rename(p, "/etc/passwd.stolen"), EACCES, 8);
                            CHILD_CHECK_ERRNO(open("/etc/passwd.new", O_CREAT | O_WRONLY, 0644),
                                              EACCES, 9);
                            timespec times[2] = {{0, 0}, {0, 0}};
                            CHILD_CHECK_ERRNO(utimensat(AT_FDCWD, p, times, 0), EPERM, 10);
                            return 0;
                          }),
            0);
}

TEST_F(RightsTest, ADescriptorOpenedAsRootStaysUsable) {
  EXPECT_EQ(InChildWithin(kChildDeadlineMs,
                          [] {
                            Fd shadow(open("/etc/shadow", O_RDONLY));
                            if (!shadow.valid() || !BecomeNobody()) return 99;
                            char byte;
                            CHILD_CHECK(read(shadow.get(), &byte, 1) >= 0, 1);
                            return 0;
                          }),
            0);
}

TEST_F(RightsTest, RootReadsTheShadowFileAndMayOpenPasswdForWriting) {
  Fd shadow(open("/etc/shadow", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(shadow.valid()) << husk_test::ErrnoName(errno);
  char byte;
  EXPECT_GE(read(shadow.get(), &byte, 1), 0);
  Fd passwd(open("/etc/passwd", O_WRONLY | O_CLOEXEC));
  EXPECT_TRUE(passwd.valid()) << husk_test::ErrnoName(errno);
}

}  // namespace
