// Escape attempts that must fail (issue 11, "defences to add"): `..` and symlink tricks,
// /proc/*/root, /proc/self/fd reopens, chroot, openat2's RESOLVE_* confinement, device
// nodes, mounts, writes to host paths, names and symlink chains past Linux's limits.
//
// Each assertion holds both natively (root in the fence's user namespace, where the host's
// devices and mounts are out of reach) and in husk (root in the sandbox, whose root is the
// container's). Cases that need an ordinary user run in a child as uid/gid 65534.
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <climits>
#include <string>

#include "tests/security/security_util.h"

namespace {

using husk_security::BecomeNobody;
using husk_security::ExpectChildOk;
using husk_test::Fd;
using husk_test::TempDir;
using husk_test::WriteFile;

// True if a and b name the same file (device and inode), following symlinks.
bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

std::string ReadLink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? "" : std::string(buf, n);
}

// Runs body as nobody in a forked child; skips when this cannot be done here.
template <typename F>
void AsNobody(F body) {
  const std::string why = husk_security::CannotBecomeNobody();
  if (!why.empty()) GTEST_SKIP() << why;
  ExpectChildOk([&] {
    if (!BecomeNobody()) return 100;
    return body();
  });
}

long OpenAt2(int dirfd, const char* path, uint64_t resolve) {
  open_how how{};
  how.flags = O_RDONLY;
  how.resolve = resolve;
  return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

// path_resolution(7): ".." of the root directory is the root itself.
TEST(EscapeTest, DotDotAtTheRootStaysThere) {
  EXPECT_TRUE(SameFile("/..", "/"));
  EXPECT_TRUE(SameFile("/../../../../..", "/"));
  EXPECT_TRUE(SameFile("/../../../etc/passwd", "/etc/passwd"));
  Fd root(open("/", O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(root.valid());
  Fd up(openat(root.get(), "../../..", O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(up.valid());
  struct stat a, b;
  ASSERT_EQ(fstat(root.get(), &a), 0);
  ASSERT_EQ(fstat(up.get(), &b), 0);
  EXPECT_TRUE(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
}

// Symlinks, absolute or full of "..", resolve inside the same root.
TEST(EscapeTest, SymlinksResolveInsideTheRoot) {
  TempDir dir;
  std::string ups;
  for (int i = 0; i < 64; ++i) ups += "../";
  ASSERT_EQ(symlink("/", dir.Join("root").c_str()), 0);
  ASSERT_EQ(symlink(ups.c_str(), dir.Join("up").c_str()), 0);
  EXPECT_TRUE(SameFile(dir.Join("root"), "/"));
  EXPECT_TRUE(SameFile(dir.Join("root/../../.."), "/"));
  EXPECT_TRUE(SameFile(dir.Join("up"), "/"));
  EXPECT_TRUE(SameFile(dir.Join("up/etc/passwd"), "/etc/passwd"));
}

// /proc/<pid>/root and /proc/<pid>/cwd show the process's own root and cwd.
TEST(EscapeTest, ProcRootIsTheProcessRoot) {
  EXPECT_EQ(ReadLink("/proc/self/root"), "/");
  EXPECT_TRUE(SameFile("/proc/self/root/.", "/"));
  EXPECT_TRUE(SameFile("/proc/self/root/..", "/"));
  EXPECT_TRUE(SameFile("/proc/1/root/.", "/"));  // init shares the container's root
  EXPECT_TRUE(SameFile("/proc/self/root/etc/passwd", "/etc/passwd"));
  TempDir dir;
  ASSERT_EQ(symlink("/proc/self/root/..", dir.Join("procroot").c_str()), 0);
  EXPECT_TRUE(SameFile(dir.Join("procroot"), "/"));
  ExpectChildOk([&] {
    CHILD_CHECK(chdir(dir.path().c_str()) == 0, 1);
    CHILD_CHECK(ReadLink("/proc/self/cwd") == dir.path(), 2);
    return 0;
  });
}

// chroot(2): afterwards "/", "..", absolute symlinks and /proc/self/root all stop at the new
// root; nothing outside it can be named.
TEST(EscapeTest, ChrootConfinesDotDotAndSymlinks) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Join("marker"), "in the jail"));
  ASSERT_EQ(mkdir(dir.Join("sub").c_str(), 0755), 0);
  ASSERT_EQ(symlink("/", dir.Join("sub/abs").c_str()), 0);
  ASSERT_EQ(symlink("../../../../../..", dir.Join("sub/up").c_str()), 0);
  ExpectChildOk([&] {
    CHILD_CHECK(chroot(dir.path().c_str()) == 0, 1);
    CHILD_CHECK(chdir("/") == 0, 2);
    CHILD_CHECK(SameFile("/..", "/"), 3);
    CHILD_CHECK(SameFile("../../..", "/"), 4);
    CHILD_CHECK(husk_test::ReadFile("/../../marker") == "in the jail", 5);
    CHILD_CHECK(husk_test::ReadFile("/sub/abs/marker") == "in the jail", 6);
    CHILD_CHECK(husk_test::ReadFile("/sub/up/marker") == "in the jail", 7);
    struct stat st;
    CHILD_CHECK_ERRNO(stat("/etc/passwd", &st), ENOENT, 8);
    CHILD_CHECK_ERRNO(stat("/sub/up/etc/passwd", &st), ENOENT, 9);
    return 0;
  });
}

// openat2(2): RESOLVE_BENEATH refuses any step out of the starting directory (EXDEV);
// RESOLVE_IN_ROOT treats it as the root; RESOLVE_NO_SYMLINKS refuses symlinks (ELOOP).
TEST(EscapeTest, Openat2ResolveFlagsConfine) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Join("marker"), "beneath"));
  ASSERT_EQ(symlink("/", dir.Join("abs").c_str()), 0);
  ASSERT_EQ(symlink("../../../..", dir.Join("up").c_str()), 0);
  ASSERT_EQ(symlink("marker", dir.Join("rel").c_str()), 0);
  Fd d(open(dir.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(d.valid());
  EXPECT_ERRNO(OpenAt2(d.get(), "../etc/passwd", RESOLVE_BENEATH), EXDEV);
  EXPECT_ERRNO(OpenAt2(d.get(), "/etc/passwd", RESOLVE_BENEATH), EXDEV);
  EXPECT_ERRNO(OpenAt2(d.get(), "abs/etc/passwd", RESOLVE_BENEATH), EXDEV);
  EXPECT_ERRNO(OpenAt2(d.get(), "up/etc/passwd", RESOLVE_BENEATH), EXDEV);
  Fd ok(static_cast<int>(OpenAt2(d.get(), "rel", RESOLVE_BENEATH)));
  EXPECT_EQ(husk_test::ReadAll(ok.get()), "beneath");
  for (const char* path : {"../../marker", "/marker", "abs/marker", "up/marker"}) {
    Fd in(static_cast<int>(OpenAt2(d.get(), path, RESOLVE_IN_ROOT)));
    EXPECT_EQ(husk_test::ReadAll(in.get()), "beneath") << path;
  }
  EXPECT_ERRNO(OpenAt2(d.get(), "rel", RESOLVE_NO_SYMLINKS), ELOOP);
  EXPECT_ERRNO(
      OpenAt2(d.get(), "/proc/self/root/etc/passwd", RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH),
      EXDEV);
}

// Reopening through /proc/self/fd checks the file's permissions again: an fd opened for
// reading (or an O_PATH fd) never becomes writable for someone who may not write the file.
TEST(EscapeTest, ProcSelfFdReopenChecksPermissions) {
  TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  ASSERT_TRUE(WriteFile(dir.Join("readonly"), "data", 0444));
  ASSERT_TRUE(WriteFile(dir.Join("none"), "data", 0000));
  ASSERT_EQ(chmod(dir.Join("readonly").c_str(), 0444), 0);
  ASSERT_EQ(chmod(dir.Join("none").c_str(), 0000), 0);
  AsNobody([&] {
    const int r = open(dir.Join("readonly").c_str(), O_RDONLY);
    CHILD_CHECK(r >= 0, 1);
    const std::string via_r = "/proc/self/fd/" + std::to_string(r);
    CHILD_CHECK_ERRNO(open(via_r.c_str(), O_WRONLY), EACCES, 2);
    CHILD_CHECK_ERRNO(open(via_r.c_str(), O_RDWR), EACCES, 3);
    CHILD_CHECK(open(via_r.c_str(), O_RDONLY) >= 0, 4);
    const int p = open(dir.Join("none").c_str(), O_PATH);
    CHILD_CHECK(p >= 0, 5);  // O_PATH needs no permission on the file
    const std::string via_p = "/proc/self/fd/" + std::to_string(p);
    CHILD_CHECK_ERRNO(open(via_p.c_str(), O_RDONLY), EACCES, 6);
    return 0;
  });
  EXPECT_EQ(husk_test::ReadFile(dir.Join("readonly")), "data");
}

// mknod(2) of a block or character device needs CAP_MKNOD in the initial user namespace: no
// one in a container has it, root included. A FIFO needs nothing.
TEST(EscapeTest, DeviceNodesCannotBeMade) {
  TempDir dir;
  EXPECT_ERRNO(mknod(dir.Join("blk").c_str(), S_IFBLK | 0600, makedev(8, 0)), EPERM);
  EXPECT_ERRNO(mknod(dir.Join("mem").c_str(), S_IFCHR | 0600, makedev(1, 1)), EPERM);
  EXPECT_EQ(mknod(dir.Join("fifo").c_str(), S_IFIFO | 0600, 0), 0) << husk_test::ErrnoName(errno);
  ASSERT_EQ(chmod(dir.path().c_str(), 0777), 0);
  AsNobody([&] {
    CHILD_CHECK_ERRNO(mknod(dir.Join("blk2").c_str(), S_IFBLK | 0600, makedev(8, 0)), EPERM, 1);
    CHILD_CHECK_ERRNO(mknod(dir.Join("chr2").c_str(), S_IFCHR | 0600, makedev(1, 3)), EPERM, 2);
    return 0;
  });
}

// Mounting a disk filesystem needs CAP_SYS_ADMIN in the initial user namespace (only
// filesystems marked FS_USERNS_MOUNT may be mounted from a container), and an ordinary user
// may not mount, unmount, chroot or pivot_root at all.
TEST(EscapeTest, MountsNeedPrivilege) {
  TempDir dir;
  EXPECT_ERRNO(mount("/dev/husk-no-such-disk", dir.path().c_str(), "ext4", 0, nullptr), EPERM);
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  AsNobody([&] {
    CHILD_CHECK_ERRNO(mount("none", dir.path().c_str(), "tmpfs", 0, nullptr), EPERM, 1);
    CHILD_CHECK_ERRNO(umount2("/", MNT_DETACH), EPERM, 2);
    CHILD_CHECK_ERRNO(chroot(dir.path().c_str()), EPERM, 3);
    CHILD_CHECK_ERRNO(syscall(SYS_pivot_root, dir.path().c_str(), dir.path().c_str()), EPERM, 4);
    return 0;
  });
}

// An ordinary user cannot create anything in the system's directories, by any path.
TEST(EscapeTest, NobodyCannotWriteHostPaths) {
  AsNobody([] {
    CHILD_CHECK_ERRNO(open("/etc/husk-escape-probe", O_WRONLY | O_CREAT, 0644), EACCES, 1);
    CHILD_CHECK_ERRNO(open("/proc/self/root/etc/husk-escape-probe", O_WRONLY | O_CREAT, 0644),
                      EACCES, 2);
    CHILD_CHECK_ERRNO(open("/proc/1/root/usr/husk-escape-probe", O_WRONLY | O_CREAT, 0644), EACCES,
                      3);
    CHILD_CHECK_ERRNO(mkdir("/usr/husk-escape-probe", 0755), EACCES, 4);
    CHILD_CHECK_ERRNO(open("/etc/passwd", O_WRONLY | O_APPEND), EACCES, 5);
    return 0;
  });
  struct stat st;
  EXPECT_ERRNO(stat("/etc/husk-escape-probe", &st), ENOENT);
}

// NAME_MAX (255) bytes per component and PATH_MAX (4096) bytes per path, then ENAMETOOLONG.
TEST(EscapeTest, OverlongNamesAreRefused) {
  TempDir dir;
  const std::string longest(255, 'n');
  const std::string too_long(256, 'n');
  EXPECT_TRUE(WriteFile(dir.Join(longest), "x"));
  EXPECT_ERRNO(open(dir.Join(too_long).c_str(), O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
  EXPECT_ERRNO(mkdir(dir.Join(too_long).c_str(), 0755), ENAMETOOLONG);
  struct stat st;
  EXPECT_ERRNO(stat(("/etc/" + too_long).c_str(), &st), ENAMETOOLONG);
  std::string path = dir.path();
  while (path.size() <= PATH_MAX) path += "/.";
  EXPECT_ERRNO(stat(path.c_str(), &st), ENAMETOOLONG);
}

// Symlink resolution stops with ELOOP: a loop, a chain longer than 40 links (MAXSYMLINKS),
// and O_NOFOLLOW on a symlink.
TEST(EscapeTest, SymlinkLoopsEndInEloop) {
  TempDir dir;
  ASSERT_EQ(symlink("b", dir.Join("a").c_str()), 0);
  ASSERT_EQ(symlink("a", dir.Join("b").c_str()), 0);
  ASSERT_EQ(symlink("self", dir.Join("self").c_str()), 0);
  EXPECT_ERRNO(open(dir.Join("a").c_str(), O_RDONLY), ELOOP);
  EXPECT_ERRNO(open(dir.Join("self/x").c_str(), O_RDONLY), ELOOP);
  ASSERT_TRUE(WriteFile(dir.Join("l0"), "end"));
  for (int i = 1; i <= 41; ++i) {
    ASSERT_EQ(
        symlink(("l" + std::to_string(i - 1)).c_str(), dir.Join("l" + std::to_string(i)).c_str()),
        0);
  }
  EXPECT_EQ(husk_test::ReadFile(dir.Join("l40")), "end");  // 40 links: allowed
  EXPECT_ERRNO(open(dir.Join("l41").c_str(), O_RDONLY), ELOOP);
  EXPECT_ERRNO(open(dir.Join("l1").c_str(), O_RDONLY | O_NOFOLLOW), ELOOP);
}

}  // namespace
