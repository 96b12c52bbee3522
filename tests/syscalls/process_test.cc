// Conformance: process identity and attributes of a single-threaded process: getpid/gettid/
// getppid, credentials and groups, uname, prctl(PR_SET_NAME/PR_GET_NAME), rlimits
// (getrlimit/setrlimit/prlimit64), sched_getaffinity, sched_yield, getrandom, set_tid_address,
// set_robust_list, arch_prctl; execve's argument limits and execute permission.
// Relies on, beyond the start-up set in test_util.h: getpid gettid getppid getuid geteuid getgid
// getegid getgroups uname prctl getrlimit setrlimit prlimit64 sched_getaffinity sched_yield
// getrandom dup set_tid_address set_robust_list arch_prctl(ARCH_GET_FS); for execve: fork
// execve wait4 pipe2 mprotect setuid setgid chmod chown.
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#if defined(__x86_64__)
#include <asm/prctl.h>
#endif

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

TEST(ProcessTest, MainThreadTidIsThePid) {
  EXPECT_GT(getpid(), 0);
  EXPECT_EQ(gettid(), getpid());
  EXPECT_EQ(syscall(SYS_gettid), syscall(SYS_getpid));
  // The parent may live outside the process's PID namespace, where getppid is 0: no > 0 check.
  EXPECT_GE(getppid(), 0);
  EXPECT_NE(getppid(), getpid());
}

TEST(ProcessTest, CredentialsAreConsistent) {
  // A test binary is not set-id, so real and effective ids agree.
  EXPECT_EQ(getuid(), geteuid());
  EXPECT_EQ(getgid(), getegid());
}

TEST(ProcessTest, GetgroupsCountAndErrors) {
  int n = getgroups(0, nullptr);  // Size 0 asks for the count only.
  ASSERT_GE(n, 0) << ErrnoName(errno);
  std::vector<gid_t> groups(n + 1);
  EXPECT_EQ(getgroups(n + 1, groups.data()), n);
  if (n >= 2) {
    EXPECT_ERRNO(getgroups(1, groups.data()), EINVAL);  // Too small and not zero.
  }
  EXPECT_ERRNO(syscall(SYS_getgroups, -1, groups.data()), EINVAL);
}

bool NulTerminated(const char* field, size_t size) { return memchr(field, '\0', size) != nullptr; }

TEST(ProcessTest, UnameFields) {
  struct utsname u;
  memset(&u, 'x', sizeof(u));
  ASSERT_OK(uname(&u));
  EXPECT_TRUE(NulTerminated(u.sysname, sizeof(u.sysname)));
  EXPECT_TRUE(NulTerminated(u.nodename, sizeof(u.nodename)));
  EXPECT_TRUE(NulTerminated(u.release, sizeof(u.release)));
  EXPECT_TRUE(NulTerminated(u.version, sizeof(u.version)));
  EXPECT_TRUE(NulTerminated(u.machine, sizeof(u.machine)));
  EXPECT_TRUE(NulTerminated(u.domainname, sizeof(u.domainname)));
  EXPECT_STREQ(u.sysname, "Linux");
  EXPECT_GT(strlen(u.release), 0u);
  EXPECT_GT(strlen(u.version), 0u);
#if defined(__x86_64__)
  EXPECT_STREQ(u.machine, "x86_64");
#elif defined(__aarch64__)
  EXPECT_STREQ(u.machine, "aarch64");
#endif
  // glibc reads the release as "major.minor..." to decide on features.
  EXPECT_TRUE(u.release[0] >= '1' && u.release[0] <= '9') << u.release;
  EXPECT_NE(strchr(u.release, '.'), nullptr) << u.release;
}

class PrctlNameTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(prctl(PR_GET_NAME, saved_)); }
  void TearDown() override { prctl(PR_SET_NAME, saved_); }
  char saved_[16] = {};
};

TEST_F(PrctlNameTest, SetThenGetRoundTrips) {
  ASSERT_OK(prctl(PR_SET_NAME, "husk-test"));
  char name[16];
  memset(name, 'x', sizeof(name));
  ASSERT_OK(prctl(PR_GET_NAME, name));
  EXPECT_STREQ(name, "husk-test");
}

TEST_F(PrctlNameTest, LongNameIsTruncatedToFifteenBytes) {
  ASSERT_OK(prctl(PR_SET_NAME, "0123456789abcdefghij"));
  char name[32];
  memset(name, 'x', sizeof(name));
  ASSERT_OK(prctl(PR_GET_NAME, name));
  EXPECT_STREQ(name, "0123456789abcde");  // TASK_COMM_LEN is 16 with the NUL.
}

TEST(ProcessTest, PrctlUnknownOptionFailsWithEINVAL) {
  EXPECT_ERRNO(prctl(0x7fff1234, 0, 0, 0, 0), EINVAL);
}

TEST(ProcessTest, GetrlimitValuesAreSane) {
  struct rlimit rl;
  ASSERT_OK(getrlimit(RLIMIT_STACK, &rl));
  EXPECT_GT(rl.rlim_cur, 0u);
  EXPECT_TRUE(rl.rlim_max == RLIM_INFINITY || rl.rlim_cur <= rl.rlim_max);
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
  EXPECT_GE(rl.rlim_cur, 3u);
  EXPECT_LE(rl.rlim_cur, rl.rlim_max);
  EXPECT_ERRNO(syscall(SYS_getrlimit, 1000, &rl), EINVAL);  // Unknown resource.
  // Unlike prlimit64, getrlimit and setrlimit have no "not this direction".
  EXPECT_ERRNO(syscall(SYS_getrlimit, RLIMIT_CPU, nullptr), EFAULT);
  EXPECT_ERRNO(syscall(SYS_setrlimit, RLIMIT_CPU, nullptr), EFAULT);
  EXPECT_ERRNO(syscall(SYS_getrlimit, 1000, nullptr), EINVAL);
}

TEST(ProcessTest, Prlimit64MatchesGetrlimit) {
  for (int resource : {RLIMIT_STACK, RLIMIT_NOFILE, RLIMIT_AS, RLIMIT_CORE}) {
    struct rlimit want;
    ASSERT_OK(getrlimit(resource, &want));
    struct rlimit64 got = {};
    ASSERT_OK(syscall(SYS_prlimit64, 0, resource, nullptr, &got));
    EXPECT_EQ(got.rlim_cur, want.rlim_cur) << "resource " << resource;
    EXPECT_EQ(got.rlim_max, want.rlim_max) << "resource " << resource;
    struct rlimit64 by_pid = {};
    ASSERT_OK(syscall(SYS_prlimit64, getpid(), resource, nullptr, &by_pid));
    EXPECT_EQ(by_pid.rlim_cur, want.rlim_cur);
  }
}

TEST(ProcessTest, NofileCannotExceedNrOpen) {
  // fs.nr_open bounds RLIMIT_NOFILE even for root (setrlimit(2), EPERM).
  rlim_t nr_open = 1 << 20;
  if (FILE* f = fopen("/proc/sys/fs/nr_open", "re")) {
    unsigned long v = 0;
    if (fscanf(f, "%lu", &v) == 1) nr_open = v;
    fclose(f);
  }
  struct rlimit rl{};
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
  struct rlimit over{rl.rlim_cur, nr_open + 1};
  EXPECT_ERRNO(setrlimit(RLIMIT_NOFILE, &over), EPERM);
  struct rlimit inf{rl.rlim_cur, RLIM_INFINITY};
  EXPECT_ERRNO(setrlimit(RLIMIT_NOFILE, &inf), EPERM);
  struct rlimit now{};
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &now));
  EXPECT_EQ(now.rlim_max, rl.rlim_max);  // unchanged
}

TEST(ProcessTest, SetrlimitSoftAboveHardFailsWithEINVAL) {
  struct rlimit rl;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
  struct rlimit bad = {rl.rlim_max, rl.rlim_max - 1};
  EXPECT_ERRNO(setrlimit(RLIMIT_NOFILE, &bad), EINVAL);
  // glibc uses prlimit64; the old setrlimit(2) must agree.
  EXPECT_ERRNO(syscall(SYS_setrlimit, RLIMIT_NOFILE, &bad), EINVAL);
  EXPECT_EQ(syscall(SYS_setrlimit, RLIMIT_NOFILE, &rl), 0);  // Same values: a no-op.
  struct rlimit raw;
  ASSERT_OK(syscall(SYS_getrlimit, RLIMIT_NOFILE, &raw));
  EXPECT_EQ(raw.rlim_cur, rl.rlim_cur);
  EXPECT_EQ(raw.rlim_max, rl.rlim_max);
}

TEST(ProcessTest, NofileSoftLimitIsEnforcedWithEMFILE) {
  struct rlimit saved;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &saved));
  constexpr rlim_t kLimit = 32;
  struct rlimit low = {kLimit, saved.rlim_max};
  ASSERT_OK(setrlimit(RLIMIT_NOFILE, &low));
  struct rlimit check;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &check));
  EXPECT_EQ(check.rlim_cur, kLimit);
  std::vector<Fd> fds;
  int last_errno = 0;
  for (int i = 0; i < 64; ++i) {
    int fd = dup(1);
    if (fd < 0) {
      last_errno = errno;
      break;
    }
    fds.emplace_back(fd);
  }
  int highest = fds.empty() ? -1 : fds.back().get();
  fds.clear();
  ASSERT_OK(setrlimit(RLIMIT_NOFILE, &saved));
  EXPECT_EQ(last_errno, EMFILE);
  EXPECT_EQ(highest, static_cast<int>(kLimit) - 1);
}

TEST(ProcessTest, SchedGetaffinityHasAtLeastOneCpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_OK(sched_getaffinity(0, sizeof(set), &set));
  EXPECT_GE(CPU_COUNT(&set), 1);
  // The raw syscall returns the number of bytes it wrote, a multiple of sizeof(long).
  long n = syscall(SYS_sched_getaffinity, 0, sizeof(set), &set);
  EXPECT_GT(n, 0);
  EXPECT_EQ(n % static_cast<long>(sizeof(long)), 0);
  EXPECT_LE(n, static_cast<long>(sizeof(set)));
  EXPECT_ERRNO(syscall(SYS_sched_getaffinity, 0, 3, &set), EINVAL);  // Not a multiple of long.
}

TEST(ProcessTest, SchedYieldSucceeds) { EXPECT_EQ(sched_yield(), 0); }

TEST(ProcessTest, GetrandomFillsBuffer) {
  unsigned char a[64] = {}, b[64] = {}, zero[64] = {};
  EXPECT_EQ(getrandom(a, sizeof(a), 0), 64);
  EXPECT_EQ(getrandom(b, sizeof(b), GRND_NONBLOCK), 64);
  EXPECT_NE(memcmp(a, b, sizeof(a)), 0);
  EXPECT_NE(memcmp(a, zero, sizeof(a)), 0);
  EXPECT_EQ(getrandom(a, 0, 0), 0);
}

TEST(ProcessTest, GetrandomBadFlagsFailWithEINVAL) {
  unsigned char a[8];
  EXPECT_ERRNO(getrandom(a, sizeof(a), 0x1000), EINVAL);
}

// The kernel writes 0 here when the thread exits; a static outlives it.
pid_t g_clear_tid = -1;

TEST(ProcessTest, SetTidAddressReturnsTid) {
  EXPECT_EQ(syscall(SYS_set_tid_address, &g_clear_tid), gettid());
}

TEST(ProcessTest, SetRobustListRejectsBadLength) {
  struct robust_list_head head = {};
  EXPECT_ERRNO(syscall(SYS_set_robust_list, &head, sizeof(head) - 1), EINVAL);
}

#if defined(__x86_64__)
TEST(ProcessTest, ArchPrctlGetFsIsTheThreadPointer) {
  unsigned long fs = 0;
  ASSERT_OK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
  // x86-64 TLS: %fs points at glibc's thread control block, which is pthread_self().
  EXPECT_EQ(fs, static_cast<unsigned long>(pthread_self()));
  EXPECT_ERRNO(syscall(SYS_arch_prctl, 0x7777, &fs), EINVAL);
}
#endif

// --- execve ---

// What ExecInChild saw: the errno execve failed with, or the exit status of the program it ran.
struct ExecOutcome {
  int error = 0;        // 0: execve succeeded; negative: -errno of the child's setup
  int wait_status = 0;  // valid when error == 0
};

// Prepares the child before its execve; returns 0 or an errno.
using ChildSetup = int (*)();

// Runs `setup` and then execve(path, argv, envp) in a forked child, so that an execve that
// succeeds by mistake cannot replace the test. The child reports execve's errno through a
// close-on-exec pipe: end-of-file without a report means the program ran.
ExecOutcome ExecInChild(const char* path, const std::vector<const char*>& argv,
                        const std::vector<const char*>& envp, ChildSetup setup = nullptr) {
  std::vector<char*> av, ev;
  for (const char* a : argv) av.push_back(const_cast<char*>(a));
  av.push_back(nullptr);
  for (const char* e : envp) ev.push_back(const_cast<char*>(e));
  ev.push_back(nullptr);
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0) << ErrnoName(errno);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int err = setup != nullptr ? -setup() : 0;
    if (err == 0) {
      execve(path, av.data(), ev.data());
      err = errno;
    }
    (void)!write(fds[1], &err, sizeof(err));
    _exit(127);
  }
  close(fds[1]);
  ExecOutcome out;
  EXPECT_GT(pid, 0) << ErrnoName(errno);
  if (pid < 0) {
    close(fds[0]);
    out.error = -1;
    return out;
  }
  int err = 0;
  if (read(fds[0], &err, sizeof(err)) == sizeof(err)) out.error = err;
  close(fds[0]);
  EXPECT_EQ(waitpid(pid, &out.wait_status, 0), pid) << ErrnoName(errno);
  return out;
}

// Expects execve to fail with `err`, or (err == 0) to run the program and see it exit 0.
void ExpectExec(int err, const char* path, const std::vector<const char*>& argv,
                const std::vector<const char*>& envp = {}, ChildSetup setup = nullptr) {
  ExecOutcome out = ExecInChild(path, argv, envp, setup);
  ASSERT_GE(out.error, 0) << "the child's setup failed: " << ErrnoName(-out.error);
  if (err != 0) {
    EXPECT_EQ(out.error, err) << path << ": want " << ErrnoName(err) << ", got "
                              << (out.error == 0 ? "success" : ErrnoName(out.error));
    return;
  }
  ASSERT_EQ(out.error, 0) << path << ": " << ErrnoName(out.error);
  EXPECT_TRUE(WIFEXITED(out.wait_status) && WEXITSTATUS(out.wait_status) == 0)
      << path << ": wait status " << out.wait_status;
}

// MAX_ARG_STRLEN: 32 pages, the terminating NUL included (see execve(2), "Limits on size").
constexpr size_t kMaxArgStrlen = 32 * 4096;
constexpr const char* kTrue = "/bin/true";

TEST(ExecveTest, StringsOfMaxArgStrlenWithTheirNulAreAccepted) {
  std::string longest(kMaxArgStrlen - 1, 'a');
  ExpectExec(0, kTrue, {"true", longest.c_str()});
  std::string env = "V=" + std::string(kMaxArgStrlen - 3, 'e');
  ExpectExec(0, kTrue, {"true"}, {env.c_str()});
}

TEST(ExecveTest, LongerStringsGiveE2BIG) {
  // One byte over, and far over (which the kernel stops reading at the limit).
  for (size_t len : {kMaxArgStrlen, kMaxArgStrlen + 1, 2 * kMaxArgStrlen, size_t{1} << 20}) {
    SCOPED_TRACE(testing::Message() << "strlen " << len);
    std::string s(len, 'a');
    ExpectExec(E2BIG, kTrue, {"true", s.c_str()});
    ExpectExec(E2BIG, kTrue, {"true"}, {s.c_str()});
    ExpectExec(E2BIG, kTrue, {s.c_str()});
  }
}

TEST(ExecveTest, OnlyMaxArgStrlenBytesOfAStringAreRead) {
  // 32 pages of 'x' with no NUL, then an inaccessible page. From the start of the pages the
  // limit is reached before the hole: E2BIG. One byte further in, the read runs into the hole
  // before the limit: EFAULT.
  const size_t kPage = 4096;
  char* area = static_cast<char*>(mmap(nullptr, kMaxArgStrlen + kPage, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(area, MAP_FAILED) << ErrnoName(errno);
  memset(area, 'x', kMaxArgStrlen);
  ASSERT_EQ(mprotect(area + kMaxArgStrlen, kPage, PROT_NONE), 0) << ErrnoName(errno);
  ExpectExec(E2BIG, kTrue, {"true", area});
  ExpectExec(EFAULT, kTrue, {"true", area + 1});
  ExpectExec(E2BIG, kTrue, {"true"}, {area});
  ExpectExec(EFAULT, kTrue, {"true"}, {area + 1});
  munmap(area, kMaxArgStrlen + kPage);
}

// Execute permission (path_resolution(7), "Permissions"): the owner's bits if the effective
// uid owns the file, else the group's if the effective gid or a supplementary group matches,
// else the others'. Root needs only some execute bit. The test runs as root, natively in the
// fence's user namespace as inside husk; the non-root cases run in a child that switches to
// kUid/kGid (it keeps root's supplementary groups natively, so files use other group ids).
constexpr uid_t kUid = 1000;
constexpr gid_t kGid = 1000;
constexpr uid_t kOtherUid = 2000;
constexpr gid_t kOtherGid = 3000;

int BecomeUnprivileged() {
  if (setgid(kGid) != 0 || setuid(kUid) != 0) return errno;
  return 0;
}

class ExecPermissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs to run as root (uid 0 in the fence)";
    // The program: a copy of /bin/true, in a directory everyone may search.
    bytes_ = ReadFile(kTrue);
    ASSERT_FALSE(bytes_.empty()) << "cannot read " << kTrue;
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0) << ErrnoName(errno);
    // Can this process's ids become kUid/kGid here? Natively that needs them mapped in the
    // user namespace the test runs in.
    pid_t pid = fork();
    if (pid == 0) _exit(BecomeUnprivileged() == 0 ? 0 : 1);
    ASSERT_GT(pid, 0) << ErrnoName(errno);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    can_switch_ = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  // A copy of /bin/true owned by uid:gid with mode `mode`; returns its path.
  std::string Program(const std::string& name, mode_t mode, uid_t uid = 0, gid_t gid = 0) {
    std::string path = dir_.Join(name);
    EXPECT_TRUE(WriteFile(path, bytes_, 0700)) << path;
    EXPECT_EQ(chown(path.c_str(), uid, gid), 0) << path << ": " << ErrnoName(errno);
    EXPECT_EQ(chmod(path.c_str(), mode), 0) << path << ": " << ErrnoName(errno);
    return path;
  }

  TempDir dir_;
  std::string bytes_;
  bool can_switch_ = false;
};

TEST_F(ExecPermissionTest, RootNeedsSomeExecuteBit) {
  struct Case {
    mode_t mode;
    uid_t uid;
    gid_t gid;
    int err;
  } cases[] = {
      {0600, 0, 0, EACCES},  // no execute bit at all: not even root
      {0000, 0, 0, EACCES},
      {0666, kOtherUid, kOtherGid, EACCES},
      {0100, 0, 0, 0},
      {0010, 0, 0, 0},
      {0001, 0, 0, 0},  // only "others" may execute, and root is no "other": still fine
      {0001, kOtherUid, kOtherGid, 0},
      {0010, kOtherUid, kOtherGid, 0},
  };
  int i = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "mode 0" << std::oct << c.mode << std::dec << " owner "
                                    << c.uid << ":" << c.gid);
    std::string path = Program("prog" + std::to_string(i++), c.mode, c.uid, c.gid);
    ExpectExec(c.err, path.c_str(), {"prog"});
  }
}

TEST_F(ExecPermissionTest, OthersUseTheOwnerGroupOrOtherBits) {
  if (!can_switch_) {
    GTEST_SKIP() << "cannot switch to uid " << kUid << "/gid " << kGid
                 << " here (not mapped in this user namespace)";
  }
  struct Case {
    const char* what;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    int err;
  } cases[] = {
      {"owner x", 0100, kUid, kOtherGid, 0},
      {"owner without x, the rest with", 0677, kUid, kOtherGid, EACCES},
      {"group x", 0010, kOtherUid, kGid, 0},
      {"group without x, others with", 0765, kOtherUid, kGid, EACCES},
      {"others x", 0001, kOtherUid, kOtherGid, 0},
      {"others without x, owner and group with", 0776, kOtherUid, kOtherGid, EACCES},
      {"owner's group is ours but the owner rules", 0610, kUid, kGid, EACCES},
  };
  int i = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::string path = Program("prog" + std::to_string(i++), c.mode, c.uid, c.gid);
    ExpectExec(c.err, path.c_str(), {"prog"}, {}, BecomeUnprivileged);
  }
}

}  // namespace
}  // namespace husk_test
