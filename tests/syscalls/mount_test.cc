// mount(2) and umount2(2) with tmpfs and bind mounts: files that live and vanish with the mount,
// MS_RDONLY and MS_REMOUNT, MS_NOEXEC, MS_NOSUID, MS_NODEV, MS_BIND and MS_BIND|MS_REC, lazy
// and busy unmounts, /proc/self/mountinfo, statfs, tmpfs size and inode limits, and the
// privacy of a mount namespace.
//
// Every case runs in a child that first enters a mount namespace of its own with
// unshare(CLONE_NEWNS) and makes every mount in it private (MS_REC|MS_PRIVATE on "/"), so that
// nothing it mounts is seen outside: natively the host's mounts are never touched. A caller
// without CAP_SYS_ADMIN gets EPERM and then tries unshare(CLONE_NEWUSER|CLONE_NEWNS) (becoming
// root of a new user namespace); if that is refused too the case is skipped. Any other failure
// of unshare(CLONE_NEWNS), which Linux always supports, fails the case. Inside husk the sandbox
// is root of its own world and takes the first path.
//
// Syscalls: unshare mount umount2 statfs fstatfs openat read write mkdir mknod chmod chdir
// execve mmap setresuid fork wait4
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

// Run as a set-user-ID copy of this binary (NosuidIgnoresTheSetuidBit), it only reports
// whether the set-user-ID bit took effect, before GoogleTest starts.
const bool kEuidProbe = [] {
  if (getenv("HUSK_MOUNT_TEST_EUID_PROBE") != nullptr) _exit(geteuid() == 0 ? 40 : 41);
  return false;
}();

constexpr int kSkipCode = 77;

// In a child: reports a failed check on stderr and makes the child exit with 1.
#define CHILD_CHECK(cond)                                                                \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      const int child_errno_ = errno;                                                    \
      fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #cond, \
              ::husk_test::ErrnoName(child_errno_).c_str());                             \
      return 1;                                                                          \
    }                                                                                    \
  } while (0)

// In a child: `expr` fails with errno `err`.
#define CHILD_CHECK_ERRNO(expr, err)                                                    \
  do {                                                                                  \
    errno = 0;                                                                          \
    const long child_r_ = static_cast<long>(expr);                                      \
    const int child_e_ = errno;                                                         \
    if (child_r_ != -1 || child_e_ != (err)) {                                          \
      fprintf(stderr, "%s:%d: %s: want -1/%s, got %ld/%s\n", __FILE__, __LINE__, #expr, \
              ::husk_test::ErrnoName(err).c_str(), child_r_,                            \
              ::husk_test::ErrnoName(child_e_).c_str());                                \
      return 1;                                                                         \
    }                                                                                   \
  } while (0)

// Becomes root of a new user namespace mapped onto the caller's ids.
bool EnterUserNamespace() {
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
  auto put = [](const char* path, const std::string& data) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    close(fd);
    return ok;
  };
  put("/proc/self/setgroups", "deny");
  return put("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") &&
         put("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n");
}

// Runs `body` in a child in a private mount namespace (see the top of the file) and returns its
// exit code: 0 for success, kSkipCode when no mount namespace can be had.
template <typename F>
int InMountNamespace(F body) {
  return InChild([&]() -> int {
    if (unshare(CLONE_NEWNS) != 0) {
      if (errno != EPERM) {
        fprintf(stderr, "unshare(CLONE_NEWNS): %s\n", ErrnoName(errno).c_str());
        return 90;
      }
      if (!EnterUserNamespace()) return kSkipCode;
    }
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      fprintf(stderr, "making / private: %s\n", ErrnoName(errno).c_str());
      return 91;  // Nothing is mounted then.
    }
    return body();
  });
}

#define RUN_IN_MOUNT_NAMESPACE(...)                                                 \
  do {                                                                              \
    const int code_ = InMountNamespace(__VA_ARGS__);                                \
    if (code_ == kSkipCode) GTEST_SKIP() << "no mount namespace (or no uid 65534)"; \
    EXPECT_EQ(code_, 0) << "the child's checks failed (see its stderr above)";      \
  } while (0)

// One line of /proc/self/mountinfo.
struct MountInfo {
  std::string mount_point, options, fstype, source, super_options;
};

// The mounts at `path` in this process's namespace, bottom first.
std::vector<MountInfo> MountsAt(const std::string& path) {
  std::vector<MountInfo> out;
  std::istringstream in(ReadFile("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root;
    MountInfo m;
    fields >> id >> parent >> dev >> root >> m.mount_point >> m.options;
    std::string field;
    while (fields >> field && field != "-") {
    }
    fields >> m.fstype >> m.source >> m.super_options;
    if (m.mount_point == path) out.push_back(m);
  }
  return out;
}

bool HasOption(const std::string& options, const std::string& want) {
  std::istringstream in(options);
  std::string opt;
  while (std::getline(in, opt, ',')) {
    if (opt == want) return true;
  }
  return false;
}

bool IsMountPoint(const std::string& path) { return !MountsAt(path).empty(); }

// The MS_ flags that a bind remount must repeat to keep what statvfs reports of a mount
// (a user namespace may not clear the flags of mounts it inherited).
unsigned long KeptFlags(const std::string& path) {
  struct statvfs sv {};
  if (statvfs(path.c_str(), &sv) != 0) return 0;
  unsigned long flags = 0;
  if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    // Searchable by all (the set-user-ID case runs as uid 65534), and named without symlinks,
    // as /proc/self/mountinfo names mount points.
    ASSERT_OK(chmod(dir_.path().c_str(), 0755));
    char real[PATH_MAX];
    ASSERT_NE(realpath(dir_.path().c_str(), real), nullptr) << ErrnoName(errno);
    base_ = real;
    mnt_ = base_ + "/mnt";
    ASSERT_OK(mkdir(mnt_.c_str(), 0755));
  }
  std::string P(const std::string& name) const { return base_ + "/" + name; }

  TempDir dir_;
  std::string base_;
  std::string mnt_;
};

TEST_F(MountTest, TmpfsFilesVanishAfterUmount) {
  ASSERT_TRUE(WriteFile(P("mnt/underneath"), "under"));
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    // The new filesystem hides what was in the directory.
    CHILD_CHECK(access((mnt_ + "/underneath").c_str(), F_OK) != 0 && errno == ENOENT);
    CHILD_CHECK(WriteFile(mnt_ + "/file", "on tmpfs"));
    CHILD_CHECK(mkdir((mnt_ + "/dir").c_str(), 0755) == 0);
    CHILD_CHECK(ReadFile(mnt_ + "/file") == "on tmpfs");
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    CHILD_CHECK(access((mnt_ + "/file").c_str(), F_OK) != 0 && errno == ENOENT);
    CHILD_CHECK(access((mnt_ + "/dir").c_str(), F_OK) != 0 && errno == ENOENT);
    CHILD_CHECK(ReadFile(mnt_ + "/underneath") == "under");
    // A new tmpfs starts empty: nothing was kept.
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(access((mnt_ + "/file").c_str(), F_OK) != 0 && errno == ENOENT);
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    return 0;
  });
  // Nothing leaked out of the namespace.
  EXPECT_EQ(access(P("mnt/file").c_str(), F_OK), -1);
  EXPECT_EQ(ReadFile(P("mnt/underneath")), "under");
}

TEST_F(MountTest, StatfsReportsTmpfsMagicAndANewDevice) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    struct stat before {};
    CHILD_CHECK(stat(mnt_.c_str(), &before) == 0);
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, "mode=0711") == 0);
    struct statfs sfs {};
    CHILD_CHECK(statfs(mnt_.c_str(), &sfs) == 0);
    CHILD_CHECK(sfs.f_type == TMPFS_MAGIC);
    struct stat root {};
    CHILD_CHECK(stat(mnt_.c_str(), &root) == 0);
    CHILD_CHECK(root.st_dev != before.st_dev);
    CHILD_CHECK(S_ISDIR(root.st_mode) && (root.st_mode & 07777) == 0711);  // mode= applies.
    // A file's descriptor reports the same filesystem.
    Fd f(open((mnt_ + "/f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    CHILD_CHECK(f.valid());
    CHILD_CHECK(fstatfs(f.get(), &sfs) == 0 && sfs.f_type == TMPFS_MAGIC);
    f.Reset();
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    return 0;
  });
}

TEST_F(MountTest, MountinfoListsTheMountUntilUmount) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK(!IsMountPoint(mnt_));
    CHILD_CHECK(mount("husk-src", mnt_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      "mode=0755") == 0);
    std::vector<MountInfo> found = MountsAt(mnt_);
    CHILD_CHECK(found.size() == 1);
    const MountInfo& m = found[0];
    CHILD_CHECK(m.fstype == "tmpfs");
    CHILD_CHECK(m.source == "husk-src");
    CHILD_CHECK(HasOption(m.options, "rw"));
    CHILD_CHECK(HasOption(m.options, "nosuid"));
    CHILD_CHECK(HasOption(m.options, "nodev"));
    CHILD_CHECK(HasOption(m.options, "noexec"));
    CHILD_CHECK(HasOption(m.super_options, "rw"));
    // /proc/self/mounts lists it as well.
    std::string mounts = ReadFile("/proc/self/mounts");
    CHILD_CHECK(mounts.find("husk-src " + mnt_ + " tmpfs ") != std::string::npos);
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    CHILD_CHECK(!IsMountPoint(mnt_));
    CHILD_CHECK(ReadFile("/proc/self/mounts").find(" " + mnt_ + " ") == std::string::npos);
    return 0;
  });
}

TEST_F(MountTest, ReadOnlyMountIsErofs) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", MS_RDONLY, nullptr) == 0);
    const std::string f = mnt_ + "/f";
    CHILD_CHECK_ERRNO(open(f.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), EROFS);
    CHILD_CHECK_ERRNO(mkdir((mnt_ + "/d").c_str(), 0755), EROFS);
    CHILD_CHECK_ERRNO(symlink("x", (mnt_ + "/l").c_str()), EROFS);
    CHILD_CHECK_ERRNO(chmod(mnt_.c_str(), 0700), EROFS);
    // Reading is fine, and so is opening the root for reading.
    Fd d(open(mnt_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    CHILD_CHECK(d.valid());
    CHILD_CHECK_ERRNO(open(mnt_.c_str(), O_RDWR | O_CLOEXEC), EISDIR);
    d.Reset();
    struct statvfs sv {};
    CHILD_CHECK(statvfs(mnt_.c_str(), &sv) == 0 && (sv.f_flag & ST_RDONLY));
    CHILD_CHECK(HasOption(MountsAt(mnt_).at(0).options, "ro"));
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    return 0;
  });
}

// mnt_want_write() guards attribute changes too: times, truncate(2) and
// extended attributes of a file on a read-only mount are EROFS, before any
// permission check; reading them stays fine.
TEST_F(MountTest, ReadOnlyMountRefusesTimesTruncateAndXattrs) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    const std::string f = mnt_ + "/f";
    CHILD_CHECK(WriteFile(f, "data"));
    CHILD_CHECK(setxattr(f.c_str(), "user.k", "v", 1, 0) == 0);
    CHILD_CHECK(mount(nullptr, mnt_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
    CHILD_CHECK_ERRNO(utimensat(AT_FDCWD, f.c_str(), nullptr, 0), EROFS);
    CHILD_CHECK_ERRNO(truncate(f.c_str(), 1), EROFS);
    CHILD_CHECK_ERRNO(setxattr(f.c_str(), "user.k", "w", 1, 0), EROFS);
    CHILD_CHECK_ERRNO(removexattr(f.c_str(), "user.k"), EROFS);
    Fd r(open(f.c_str(), O_RDONLY | O_CLOEXEC));
    CHILD_CHECK(r.valid());
    CHILD_CHECK_ERRNO(futimens(r.get(), nullptr), EROFS);
    CHILD_CHECK_ERRNO(fsetxattr(r.get(), "user.k", "w", 1, 0), EROFS);
    char v[4];
    CHILD_CHECK(getxattr(f.c_str(), "user.k", v, sizeof(v)) == 1 && v[0] == 'v');
    r.Reset();
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    return 0;
  });
}

TEST_F(MountTest, RemountReadOnlyThenReadWrite) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    const std::string f = mnt_ + "/f";
    CHILD_CHECK(WriteFile(f, "before"));
    {
      // Not while a file is open for writing.
      Fd w(open(f.c_str(), O_WRONLY | O_CLOEXEC));
      CHILD_CHECK(w.valid());
      CHILD_CHECK_ERRNO(mount(nullptr, mnt_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr),
                        EBUSY);
    }
    CHILD_CHECK(mount(nullptr, mnt_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
    CHILD_CHECK_ERRNO(open(f.c_str(), O_WRONLY | O_CLOEXEC), EROFS);
    CHILD_CHECK_ERRNO(open((mnt_ + "/g").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), EROFS);
    CHILD_CHECK_ERRNO(unlink(f.c_str()), EROFS);
    CHILD_CHECK(ReadFile(f) == "before");  // The contents survive the remount.
    CHILD_CHECK(HasOption(MountsAt(mnt_).at(0).options, "ro"));
    CHILD_CHECK(mount(nullptr, mnt_.c_str(), nullptr, MS_REMOUNT, nullptr) == 0);
    CHILD_CHECK(WriteFile(f, "after"));
    CHILD_CHECK(ReadFile(f) == "after");
    CHILD_CHECK(HasOption(MountsAt(mnt_).at(0).options, "rw"));
    // Remounting what is not a mount point is EINVAL.
    CHILD_CHECK(mkdir((mnt_ + "/sub").c_str(), 0755) == 0);
    CHILD_CHECK_ERRNO(
        mount(nullptr, (mnt_ + "/sub").c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr), EINVAL);
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    return 0;
  });
}

// Copies the file at `from` to `to` with mode `mode`.
bool CopyFile(const std::string& from, const std::string& to, mode_t mode) {
  Fd in(open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return false;
  std::string data = ReadAll(in.get(), 256 << 20);
  if (!WriteFile(to, data, mode)) return false;
  return chmod(to.c_str(), mode) == 0;
}

// fork + execve(path) in a child; returns the exit code, or -errno of a failed execve.
int RunProgram(const std::string& path, bool probe_env = false) {
  Pipe p = MakePipe(O_CLOEXEC);
  pid_t pid = fork();
  if (pid < 0) return -1000;
  if (pid == 0) {
    char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
    char probe[] = "HUSK_MOUNT_TEST_EUID_PROBE=1";
    char* envp_probe[] = {probe, nullptr};
    char* envp_none[] = {nullptr};
    execve(path.c_str(), argv, probe_env ? envp_probe : envp_none);
    int err = errno;
    (void)!write(p.w.get(), &err, sizeof(err));
    _exit(127);
  }
  p.w.Reset();
  int err = 0;
  ssize_t n = read(p.r.get(), &err, sizeof(err));
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1001;
  if (n == sizeof(err)) return -err;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -2000 - WTERMSIG(status);
}

TEST_F(MountTest, NoexecRefusesExecveAndExecutableMappings) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    // Control: the same program on an ordinary tmpfs runs.
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(CopyFile("/bin/true", mnt_ + "/true", 0755));
    CHILD_CHECK(RunProgram(mnt_ + "/true") == 0);
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);

    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", MS_NOEXEC, nullptr) == 0);
    CHILD_CHECK(CopyFile("/bin/true", mnt_ + "/true", 0755));
    CHILD_CHECK(RunProgram(mnt_ + "/true") == -EACCES);
    CHILD_CHECK(WriteFile(mnt_ + "/script", "#!/bin/sh\nexit 0\n") &&
                chmod((mnt_ + "/script").c_str(), 0755) == 0);
    CHILD_CHECK(RunProgram(mnt_ + "/script") == -EACCES);
    // Mapping a file of the mount executable is refused; mapping it readable is not.
    Fd f(open((mnt_ + "/true").c_str(), O_RDONLY | O_CLOEXEC));
    CHILD_CHECK(f.valid());
    void* ro = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, f.get(), 0);
    CHILD_CHECK(ro != MAP_FAILED);
    munmap(ro, 4096);
    errno = 0;
    CHILD_CHECK(mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, f.get(), 0) == MAP_FAILED &&
                errno == EPERM);
    f.Reset();
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    return 0;
  });
}

TEST_F(MountTest, NosuidIgnoresTheSetuidBit) {
  ASSERT_OK(chmod(mnt_.c_str(), 0755));
  RUN_IN_MOUNT_NAMESPACE([&]() -> int {
    for (bool nosuid : {false, true}) {
      CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", nosuid ? MS_NOSUID : 0, "mode=0755") ==
                  0);
      const std::string probe = mnt_ + "/probe";
      CHILD_CHECK(CopyFile("/proc/self/exe", probe, 04755));
      struct stat st {};
      CHILD_CHECK(stat(probe.c_str(), &st) == 0 && (st.st_mode & S_ISUID) && st.st_uid == 0);
      int code = InChild([&] {
        if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) {
          return kSkipCode;
        }
        return RunProgram(probe, /*probe_env=*/true);
      });
      if (code == kSkipCode) return kSkipCode;  // uid 65534 is not mapped here.
      // 40: the program ran with euid 0; 41: with the caller's.
      if (code != (nosuid ? 41 : 40)) {
        fprintf(stderr, "nosuid=%d: the probe exited %d\n", nosuid, code);
        return 1;
      }
      CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    }
    return 0;
  });
}

TEST_F(MountTest, NodevRefusesDeviceNodes) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    // A bind mount of /dev/null is a mount of its own whose flags can be changed.
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    const std::string null_copy = mnt_ + "/null";
    CHILD_CHECK(WriteFile(null_copy, ""));
    CHILD_CHECK(mount("/dev/null", null_copy.c_str(), nullptr, MS_BIND, nullptr) == 0);
    {
      Fd ok(open(null_copy.c_str(), O_WRONLY | O_CLOEXEC));
      CHILD_CHECK(ok.valid());
      CHILD_CHECK(write(ok.get(), "x", 1) == 1);
    }
    const unsigned long kept = KeptFlags(null_copy);
    CHILD_CHECK(mount(nullptr, null_copy.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_NODEV | kept,
                      nullptr) == 0);
    CHILD_CHECK_ERRNO(open(null_copy.c_str(), O_WRONLY | O_CLOEXEC), EACCES);
    struct statvfs sv {};
    CHILD_CHECK(statvfs(null_copy.c_str(), &sv) == 0 && (sv.f_flag & ST_NODEV));
    // The node is still there to stat; only opening it is refused.
    struct stat st {};
    CHILD_CHECK(stat(null_copy.c_str(), &st) == 0 && S_ISCHR(st.st_mode));
    CHILD_CHECK(umount2(null_copy.c_str(), 0) == 0);
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    // A tmpfs mounted nodev says so.
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", MS_NODEV, nullptr) == 0);
    CHILD_CHECK(statvfs(mnt_.c_str(), &sv) == 0 && (sv.f_flag & ST_NODEV));
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    return 0;
  });
}

TEST_F(MountTest, BindMountShowsTheSameFiles) {
  ASSERT_OK(mkdir(P("src").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("src/a"), "from src"));
  RUN_IN_MOUNT_NAMESPACE([&] {
    const std::string src = P("src");
    CHILD_CHECK(mount(src.c_str(), mnt_.c_str(), nullptr, MS_BIND, nullptr) == 0);
    CHILD_CHECK(ReadFile(mnt_ + "/a") == "from src");
    struct stat s1 {
    }, s2{};
    CHILD_CHECK(stat((src + "/a").c_str(), &s1) == 0 && stat((mnt_ + "/a").c_str(), &s2) == 0);
    CHILD_CHECK(s1.st_ino == s2.st_ino && s1.st_dev == s2.st_dev);
    // Changes through either path are changes to the one directory.
    CHILD_CHECK(WriteFile(mnt_ + "/b", "via bind"));
    CHILD_CHECK(ReadFile(src + "/b") == "via bind");
    CHILD_CHECK(unlink((src + "/a").c_str()) == 0);
    CHILD_CHECK(access((mnt_ + "/a").c_str(), F_OK) != 0 && errno == ENOENT);
    CHILD_CHECK(IsMountPoint(mnt_));
    // Unmounting the bind leaves the source alone.
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    CHILD_CHECK(ReadFile(src + "/b") == "via bind");
    CHILD_CHECK(access((mnt_ + "/b").c_str(), F_OK) != 0 && errno == ENOENT);
    // A file can be bound onto a file, not onto a directory.
    CHILD_CHECK(WriteFile(base_ + "/target", "target"));
    CHILD_CHECK(
        mount((src + "/b").c_str(), (base_ + "/target").c_str(), nullptr, MS_BIND, nullptr) == 0);
    CHILD_CHECK(ReadFile(base_ + "/target") == "via bind");
    CHILD_CHECK(umount2((base_ + "/target").c_str(), 0) == 0);
    CHILD_CHECK_ERRNO(mount((src + "/b").c_str(), mnt_.c_str(), nullptr, MS_BIND, nullptr),
                      ENOTDIR);
    return 0;
  });
  EXPECT_EQ(ReadFile(P("target")), "target");
}

TEST_F(MountTest, RecursiveBindCarriesSubmounts) {
  ASSERT_OK(mkdir(P("src").c_str(), 0755));
  ASSERT_OK(mkdir(P("src/sub").c_str(), 0755));
  ASSERT_OK(mkdir(P("plain").c_str(), 0755));
  RUN_IN_MOUNT_NAMESPACE([&] {
    const std::string src = P("src"), plain = P("plain");
    CHILD_CHECK(mount("husk-test", (src + "/sub").c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(WriteFile(src + "/sub/inner", "in submount"));
    // MS_BIND alone takes the one mount: the submount's directory is empty there.
    CHILD_CHECK(mount(src.c_str(), plain.c_str(), nullptr, MS_BIND, nullptr) == 0);
    CHILD_CHECK(access((plain + "/sub/inner").c_str(), F_OK) != 0 && errno == ENOENT);
    CHILD_CHECK(!IsMountPoint(plain + "/sub"));
    // MS_BIND|MS_REC takes the submounts too.
    CHILD_CHECK(mount(src.c_str(), mnt_.c_str(), nullptr, MS_BIND | MS_REC, nullptr) == 0);
    CHILD_CHECK(ReadFile(mnt_ + "/sub/inner") == "in submount");
    CHILD_CHECK(IsMountPoint(mnt_ + "/sub"));
    // Unmounting the top while the submount is under it is EBUSY; MNT_DETACH takes both.
    CHILD_CHECK_ERRNO(umount2(mnt_.c_str(), 0), EBUSY);
    CHILD_CHECK(umount2(mnt_.c_str(), MNT_DETACH) == 0);
    CHILD_CHECK(!IsMountPoint(mnt_) && !IsMountPoint(mnt_ + "/sub"));
    CHILD_CHECK(umount2(plain.c_str(), 0) == 0);
    CHILD_CHECK(ReadFile(src + "/sub/inner") == "in submount");
    CHILD_CHECK(umount2((src + "/sub").c_str(), 0) == 0);
    return 0;
  });
}

TEST_F(MountTest, DetachLeavesOpenFilesUsable) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    Fd f(open((mnt_ + "/f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    CHILD_CHECK(f.valid());
    CHILD_CHECK(write(f.get(), "kept", 4) == 4);
    CHILD_CHECK_ERRNO(umount2(mnt_.c_str(), 0), EBUSY);
    CHILD_CHECK(umount2(mnt_.c_str(), MNT_DETACH) == 0);
    // The name is gone at once...
    CHILD_CHECK(!IsMountPoint(mnt_));
    CHILD_CHECK(access((mnt_ + "/f").c_str(), F_OK) != 0 && errno == ENOENT);
    // ...the open file lives on, on its filesystem.
    char buf[8] = {};
    CHILD_CHECK(pread(f.get(), buf, sizeof(buf), 0) == 4 && memcmp(buf, "kept", 4) == 0);
    CHILD_CHECK(write(f.get(), "more", 4) == 4);
    struct statfs sfs {};
    CHILD_CHECK(fstatfs(f.get(), &sfs) == 0 && sfs.f_type == TMPFS_MAGIC);
    return 0;
  });
}

TEST_F(MountTest, DetachedDirectoryStillServesLookups) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(WriteFile(mnt_ + "/old", "old"));
    Fd root(open(mnt_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    CHILD_CHECK(root.valid());
    CHILD_CHECK(umount2(mnt_.c_str(), MNT_DETACH) == 0);
    Fd old(openat(root.get(), "old", O_RDONLY | O_CLOEXEC));
    CHILD_CHECK(old.valid());
    CHILD_CHECK(ReadAll(old.get()) == "old");
    Fd created(openat(root.get(), "new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    CHILD_CHECK(created.valid());
    CHILD_CHECK(access((mnt_ + "/new").c_str(), F_OK) != 0 && errno == ENOENT);
    return 0;
  });
}

TEST_F(MountTest, BusyMountIsEbusy) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(mkdir((mnt_ + "/d").c_str(), 0755) == 0);
    // A working directory inside keeps it busy.
    CHILD_CHECK(chdir((mnt_ + "/d").c_str()) == 0);
    CHILD_CHECK_ERRNO(umount2(mnt_.c_str(), 0), EBUSY);
    CHILD_CHECK(IsMountPoint(mnt_));
    CHILD_CHECK(chdir(base_.c_str()) == 0);
    // So does an open directory.
    {
      Fd d(open((mnt_ + "/d").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      CHILD_CHECK(d.valid());
      CHILD_CHECK_ERRNO(umount2(mnt_.c_str(), 0), EBUSY);
    }
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    CHILD_CHECK(!IsMountPoint(mnt_));
    return 0;
  });
}

TEST_F(MountTest, UmountErrors) {
  ASSERT_OK(mkdir(P("plain").c_str(), 0755));
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK_ERRNO(umount2(P("plain").c_str(), 0), EINVAL);  // Not a mount point.
    CHILD_CHECK_ERRNO(umount2(P("missing").c_str(), 0), ENOENT);
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(mkdir((mnt_ + "/sub").c_str(), 0755) == 0);
    CHILD_CHECK_ERRNO(umount2((mnt_ + "/sub").c_str(), 0), EINVAL);  // Inside, not the root.
    CHILD_CHECK_ERRNO(umount2(mnt_.c_str(), MNT_EXPIRE | MNT_DETACH), EINVAL);
    CHILD_CHECK_ERRNO(umount2(mnt_.c_str(), 0x100), EINVAL);  // No such flag.
    // UMOUNT_NOFOLLOW: a symlink to the mount point names the symlink.
    CHILD_CHECK(symlink(mnt_.c_str(), P("link").c_str()) == 0);
    CHILD_CHECK_ERRNO(umount2(P("link").c_str(), UMOUNT_NOFOLLOW), EINVAL);
    CHILD_CHECK(IsMountPoint(mnt_));
    CHILD_CHECK(umount2(P("link").c_str(), 0) == 0);  // Followed by default.
    CHILD_CHECK(!IsMountPoint(mnt_));
    CHILD_CHECK_ERRNO(umount2(mnt_.c_str(), 0), EINVAL);  // Already unmounted.
    return 0;
  });
}

TEST_F(MountTest, MountErrors) {
  ASSERT_TRUE(WriteFile(P("file"), "x"));
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK_ERRNO(mount("husk-test", P("missing").c_str(), "tmpfs", 0, nullptr), ENOENT);
    CHILD_CHECK_ERRNO(mount("husk-test", P("file").c_str(), "tmpfs", 0, nullptr), ENOTDIR);
    CHILD_CHECK_ERRNO(mount("husk-test", mnt_.c_str(), "no-such-filesystem", 0, nullptr), ENODEV);
    CHILD_CHECK_ERRNO(mount(P("missing").c_str(), mnt_.c_str(), nullptr, MS_BIND, nullptr), ENOENT);
    CHILD_CHECK_ERRNO(mount("husk-test", mnt_.c_str(), "tmpfs", 0, "no_such_option=1"), EINVAL);
    CHILD_CHECK(!IsMountPoint(mnt_));
    // Without CAP_SYS_ADMIN nothing can be mounted or unmounted.
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    int code = InChild([&] {
      if (setresuid(65534, 65534, 65534) != 0) return kSkipCode;
      if (mount("husk-test", P("file").c_str(), "tmpfs", 0, nullptr) != -1 || errno != EPERM) {
        return 1;
      }
      if (umount2(mnt_.c_str(), 0) != -1 || errno != EPERM) return 2;
      return 0;
    });
    CHILD_CHECK(code == 0 || code == kSkipCode);
    CHILD_CHECK(IsMountPoint(mnt_));
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    return 0;
  });
}

TEST_F(MountTest, MountsStackOnOnePoint) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    CHILD_CHECK(mount("lower", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(WriteFile(mnt_ + "/f", "lower"));
    CHILD_CHECK(mount("upper", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
    CHILD_CHECK(access((mnt_ + "/f").c_str(), F_OK) != 0 && errno == ENOENT);
    CHILD_CHECK(WriteFile(mnt_ + "/f", "upper"));
    std::vector<MountInfo> at = MountsAt(mnt_);
    CHILD_CHECK(at.size() == 2 && at[0].source == "lower" && at[1].source == "upper");
    // Unmounting takes the top one off and shows the one beneath again.
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    CHILD_CHECK(ReadFile(mnt_ + "/f") == "lower");
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    CHILD_CHECK(!IsMountPoint(mnt_));
    return 0;
  });
}

TEST_F(MountTest, TmpfsSizeAndInodeLimits) {
  RUN_IN_MOUNT_NAMESPACE([&] {
    const long page = sysconf(_SC_PAGESIZE);
    CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, "size=64k,nr_inodes=8") == 0);
    struct statfs sfs {};
    CHILD_CHECK(statfs(mnt_.c_str(), &sfs) == 0);
    CHILD_CHECK(static_cast<long>(sfs.f_blocks * sfs.f_bsize) == 64 * 1024);
    CHILD_CHECK(sfs.f_files == 8);
    // Writing stops with ENOSPC once the 64 KiB are used.
    Fd f(open((mnt_ + "/big").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    CHILD_CHECK(f.valid());
    std::string chunk(page, 'b');
    long total = 0;
    int err = 0;
    for (int i = 0; i < 64; ++i) {
      ssize_t n = write(f.get(), chunk.data(), chunk.size());
      if (n < 0) {
        err = errno;
        break;
      }
      total += n;
    }
    CHILD_CHECK(err == ENOSPC);
    CHILD_CHECK(total == 64 * 1024);
    struct stat st {};
    CHILD_CHECK(fstat(f.get(), &st) == 0 && st.st_size == total);
    CHILD_CHECK(statfs(mnt_.c_str(), &sfs) == 0 && sfs.f_bfree == 0);
    f.Reset();
    // Freeing the space lets writes through again.
    CHILD_CHECK(unlink((mnt_ + "/big").c_str()) == 0);
    CHILD_CHECK(WriteFile(mnt_ + "/small", "ok"));
    // Inodes: the root is one of the 8, "small" another: 6 more files fit.
    for (int i = 0; i < 6; ++i) CHILD_CHECK(WriteFile(mnt_ + "/n" + std::to_string(i), ""));
    CHILD_CHECK_ERRNO(open((mnt_ + "/one-too-many").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644),
                      ENOSPC);
    CHILD_CHECK_ERRNO(mkdir((mnt_ + "/dir").c_str(), 0755), ENOSPC);
    CHILD_CHECK(umount2(mnt_.c_str(), 0) == 0);
    return 0;
  });
}

TEST_F(MountTest, NamespaceKeepsItsMountsToItself) {
  Pipe ready = MakePipe(O_CLOEXEC);
  Pipe done = MakePipe(O_CLOEXEC);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ready.r.Reset();
    done.w.Reset();
    int code = InMountNamespace([&] {
      CHILD_CHECK(mount("husk-test", mnt_.c_str(), "tmpfs", 0, nullptr) == 0);
      CHILD_CHECK(WriteFile(mnt_ + "/inside", "x"));
      CHILD_CHECK(write(ready.w.get(), "m", 1) == 1);
      char c;
      CHILD_CHECK(read(done.r.get(), &c, 1) == 0);  // Until the parent has looked.
      CHILD_CHECK(access((mnt_ + "/inside").c_str(), F_OK) == 0);
      return 0;
    });
    // Report the inner result (a skip is sent as 'S' before closing).
    if (code == kSkipCode) (void)!write(ready.w.get(), "S", 1);
    _exit(code);
  }
  ready.w.Reset();
  done.r.Reset();
  char c = 0;
  ssize_t n = read(ready.r.get(), &c, 1);
  if (n == 1 && c == 'm') {
    // The mount is live in the child's namespace, and not in this one.
    EXPECT_FALSE(IsMountPoint(mnt_));
    EXPECT_EQ(access(P("mnt/inside").c_str(), F_OK), -1);
  }
  done.w.Reset();
  int status = WaitBounded(pid);
  if (n == 1 && c == 'S') GTEST_SKIP() << "no mount namespace is available";
  EXPECT_EQ(c, 'm');
  EXPECT_TRUE(ExitedWith(status, 0)) << Describe(status);
}

}  // namespace
}  // namespace husk_test
