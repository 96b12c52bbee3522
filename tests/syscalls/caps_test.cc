// Capabilities (capabilities(7)): capget/capset with the v1, v2 and v3
// headers, the bounding set (PR_CAPBSET_READ/DROP), the ambient set
// (PR_CAP_AMBIENT), keepcaps and securebits, and how setuid, seteuid and
// setfsuid change the sets. The tests run as root in a user namespace (the
// fence's, or husk's sandbox), which holds every capability of its
// namespace. Anything that changes the sets runs in a forked child.
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::InChild;

struct Sets {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};

long Capget(uint32_t version, int pid, __user_cap_data_struct* data) {
  __user_cap_header_struct h{version, pid};
  return syscall(SYS_capget, &h, data);
}

bool Get(Sets* s, int pid = 0) {
  __user_cap_data_struct d[2] = {};
  if (Capget(_LINUX_CAPABILITY_VERSION_3, pid, d) != 0) return false;
  s->effective = d[0].effective | (uint64_t{d[1].effective} << 32);
  s->permitted = d[0].permitted | (uint64_t{d[1].permitted} << 32);
  s->inheritable = d[0].inheritable | (uint64_t{d[1].inheritable} << 32);
  return true;
}

long Set(const Sets& s, int pid = 0) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, pid};
  __user_cap_data_struct d[2];
  for (int i = 0; i < 2; i++) {
    d[i].effective = static_cast<uint32_t>(s.effective >> (32 * i));
    d[i].permitted = static_cast<uint32_t>(s.permitted >> (32 * i));
    d[i].inheritable = static_cast<uint32_t>(s.inheritable >> (32 * i));
  }
  return syscall(SYS_capset, &h, d);
}

constexpr uint64_t Bit(int cap) { return uint64_t{1} << cap; }

// The last capability the kernel knows: PR_CAPBSET_READ is EINVAL past it.
int LastCap() {
  int cap = 0;
  while (prctl(PR_CAPBSET_READ, cap + 1) >= 0) cap++;
  return cap;
}

uint64_t BoundingSet() {
  uint64_t set = 0;
  for (int cap = 0; cap <= LastCap(); cap++) {
    if (prctl(PR_CAPBSET_READ, cap) == 1) set |= Bit(cap);
  }
  return set;
}

class CapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (in its user namespace)";
  }
};

TEST_F(CapsTest, RootHoldsTheWholeBoundingSet) {
  const int last = LastCap();
  EXPECT_GE(last, CAP_AUDIT_READ);  // 37, Linux 3.16
  EXPECT_ERRNO(prctl(PR_CAPBSET_READ, last + 1), EINVAL);
  EXPECT_ERRNO(prctl(PR_CAPBSET_READ, -1L), EINVAL);
  const uint64_t all = (last == 63 ? 0 : Bit(last + 1)) - 1;
  EXPECT_EQ(BoundingSet(), all);
  Sets s;
  ASSERT_TRUE(Get(&s));
  EXPECT_EQ(s.permitted, all);
  EXPECT_EQ(s.effective, all);
  EXPECT_EQ(s.inheritable, 0u);
}

TEST_F(CapsTest, VersionsAndTheirSizes) {
  __user_cap_data_struct d[3];
  memset(d, 0xa5, sizeof(d));
  // v1 fills one word of each set, v2 and v3 two.
  ASSERT_EQ(Capget(_LINUX_CAPABILITY_VERSION_1, 0, d), 0);
  EXPECT_EQ(d[0].effective, static_cast<uint32_t>(BoundingSet()));
  EXPECT_EQ(d[1].effective, 0xa5a5a5a5u);
  ASSERT_EQ(Capget(_LINUX_CAPABILITY_VERSION_2, 0, d), 0);
  EXPECT_EQ(d[1].effective, static_cast<uint32_t>(BoundingSet() >> 32));
  EXPECT_EQ(d[2].effective, 0xa5a5a5a5u);
  ASSERT_EQ(Capget(_LINUX_CAPABILITY_VERSION_3, 0, d), 0);
}

TEST_F(CapsTest, UnknownVersionIsEinvalWithThePreferredWrittenBack) {
  __user_cap_data_struct d[2];
  __user_cap_header_struct h{0x12345678, 0};
  EXPECT_ERRNO(syscall(SYS_capget, &h, d), EINVAL);
  EXPECT_EQ(h.version, static_cast<uint32_t>(_LINUX_CAPABILITY_VERSION_3));
  // With no data pointer it is how libcap asks: no error.
  h.version = 0;
  EXPECT_EQ(syscall(SYS_capget, &h, nullptr), 0);
  EXPECT_EQ(h.version, static_cast<uint32_t>(_LINUX_CAPABILITY_VERSION_3));
  h.version = 1;
  EXPECT_ERRNO(syscall(SYS_capset, &h, d), EINVAL);
  EXPECT_EQ(h.version, static_cast<uint32_t>(_LINUX_CAPABILITY_VERSION_3));
}

TEST_F(CapsTest, CapgetOfOtherTasks) {
  __user_cap_data_struct d[2];
  EXPECT_ERRNO(Capget(_LINUX_CAPABILITY_VERSION_3, -1, d), EINVAL);
  // A child that dropped everything.
  husk_test::Pipe ready = husk_test::MakePipe(), done = husk_test::MakePipe();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    bool ok = Set(Sets{}) == 0;
    char c = ok ? 'y' : 'n';
    (void)!write(ready.w.get(), &c, 1);
    (void)!read(done.r.get(), &c, 1);
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready.r.get(), &c, 1), 1);
  EXPECT_EQ(c, 'y');
  Sets s;
  ASSERT_TRUE(Get(&s, pid));
  EXPECT_EQ(s.permitted, 0u);
  EXPECT_EQ(s.effective, 0u);
  // capset acts on the caller alone.
  EXPECT_ERRNO(Set(Sets{}, pid), EPERM);
  ASSERT_EQ(write(done.w.get(), "x", 1), 1);
  EXPECT_EQ(husk_test::Wait(pid), 0);
  // Reaped: gone.
  EXPECT_ERRNO(Capget(_LINUX_CAPABILITY_VERSION_3, pid, d), ESRCH);
}

TEST_F(CapsTest, CapsetMayDropAndRaiseFromPermitted) {
  EXPECT_EQ(InChild([] {
              Sets s;
              if (!Get(&s)) return 1;
              // Without CAP_SETUID in the effective set, setuid is refused...
              Sets less = s;
              less.effective &= ~Bit(CAP_SETUID);
              if (Set(less) != 0) return 2;
              errno = 0;
              if (setuid(1000) != -1 || errno != EPERM) return 3;
              // ...until it is raised again from the permitted set.
              if (Set(s) != 0) return 4;
              Sets back;
              if (!Get(&back) || back.effective != s.effective) return 5;
              // Dropped from the permitted set, it cannot come back.
              less = s;
              less.permitted &= ~Bit(CAP_SETUID);
              less.effective &= ~Bit(CAP_SETUID);
              if (Set(less) != 0) return 6;
              errno = 0;
              if (Set(s) != -1 || errno != EPERM) return 7;
              // The effective set must stay within the permitted set.
              Sets bad = less;
              bad.effective |= Bit(CAP_SETUID);
              errno = 0;
              if (Set(bad) != -1 || errno != EPERM) return 8;
              return 0;
            }),
            0);
}

TEST_F(CapsTest, InheritableStaysWithinTheBoundingSet) {
  EXPECT_EQ(InChild([] {
              Sets s;
              if (!Get(&s)) return 1;
              if (prctl(PR_CAPBSET_DROP, CAP_NET_RAW) != 0) return 2;
              if (prctl(PR_CAPBSET_READ, CAP_NET_RAW) != 0) return 3;
              // Still permitted, but not for the inheritable set.
              Sets i = s;
              i.inheritable = Bit(CAP_NET_RAW);
              errno = 0;
              if (Set(i) != -1 || errno != EPERM) return 4;
              i.inheritable = Bit(CAP_CHOWN);
              if (Set(i) != 0) return 5;
              errno = 0;
              if (prctl(PR_CAPBSET_DROP, 1000) != -1 || errno != EINVAL) return 6;
              // Without CAP_SETPCAP, no more drops.
              Sets no = s;
              no.effective &= ~Bit(CAP_SETPCAP);
              if (Set(no) != 0) return 7;
              errno = 0;
              if (prctl(PR_CAPBSET_DROP, CAP_CHOWN) != -1 || errno != EPERM) return 8;
              return 0;
            }),
            0);
}

TEST_F(CapsTest, AmbientNeedsPermittedAndInheritable) {
  EXPECT_EQ(
      InChild([] {
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0) != 0) return 1;
        errno = 0;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0) != -1 || errno != EPERM) {
          return 2;
        }
        Sets s;
        if (!Get(&s)) return 3;
        s.inheritable = Bit(CAP_CHOWN) | Bit(CAP_KILL);
        if (Set(s) != 0) return 4;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0) != 0) return 5;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0) != 0) return 6;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0) != 1) return 7;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_CHOWN, 0, 0) != 0) return 8;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0) != 0) return 9;
        // Leaving the inheritable set takes it out of the ambient set.
        s.inheritable = 0;
        if (Set(s) != 0) return 10;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0) != 0) return 11;
        errno = 0;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0) != -1 || errno != EINVAL) {
          return 12;
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return 13;
        errno = 0;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 1000, 0, 0) != -1 || errno != EINVAL) {
          return 14;
        }
        errno = 0;
        if (prctl(PR_CAP_AMBIENT, 99, CAP_CHOWN, 0, 0) != -1 || errno != EINVAL) return 15;
        return 0;
      }),
      0);
}

TEST_F(CapsTest, LeavingRootClearsTheSets) {
  EXPECT_EQ(InChild([] {
              if (setresuid(1000, 1000, 1000) != 0) return 1;
              Sets s;
              if (!Get(&s)) return 2;
              if (s.permitted != 0 || s.effective != 0 || s.inheritable != 0) return 3;
              // Nothing to raise.
              Sets all;
              all.permitted = all.effective = 1;
              errno = 0;
              if (Set(all) != -1 || errno != EPERM) return 4;
              return 0;
            }),
            0);
}

TEST_F(CapsTest, KeepcapsKeepsThePermittedSet) {
  EXPECT_EQ(InChild([] {
              Sets before;
              if (!Get(&before)) return 1;
              if (prctl(PR_GET_KEEPCAPS) != 0) return 2;
              if (prctl(PR_SET_KEEPCAPS, 1) != 0) return 3;
              if (prctl(PR_GET_KEEPCAPS) != 1) return 4;
              if (prctl(PR_GET_SECUREBITS) != SECBIT_KEEP_CAPS) return 5;
              if (setresuid(1000, 1000, 1000) != 0) return 6;
              Sets s;
              if (!Get(&s)) return 7;
              if (s.permitted != before.permitted || s.effective != 0) return 8;
              // They may be made effective again.
              s.effective = Bit(CAP_SETUID);
              if (Set(s) != 0) return 9;
              if (setuid(0) != 0 || getuid() != 0) return 10;
              errno = 0;
              if (prctl(PR_SET_KEEPCAPS, 2) != -1 || errno != EINVAL) return 11;
              return 0;
            }),
            0);
}

TEST_F(CapsTest, EffectiveFollowsTheEffectiveUid) {
  EXPECT_EQ(InChild([] {
              Sets root;
              if (!Get(&root)) return 1;
              if (seteuid(1000) != 0) return 2;
              Sets s;
              if (!Get(&s)) return 3;
              if (s.effective != 0 || s.permitted != root.permitted) return 4;
              if (seteuid(0) != 0) return 5;
              if (!Get(&s) || s.effective != root.permitted) return 6;
              return 0;
            }),
            0);
}

TEST_F(CapsTest, FsuidTakesTheFileCapabilities) {
  constexpr uint64_t kFsSet = Bit(CAP_CHOWN) | Bit(CAP_DAC_OVERRIDE) | Bit(CAP_DAC_READ_SEARCH) |
                              Bit(CAP_FOWNER) | Bit(CAP_FSETID) | Bit(CAP_MKNOD) |
                              Bit(CAP_LINUX_IMMUTABLE) | Bit(CAP_MAC_OVERRIDE);
  EXPECT_EQ(InChild([] {
              Sets root;
              if (!Get(&root)) return 1;
              setfsuid(1000);
              Sets s;
              if (!Get(&s)) return 2;
              if (s.effective != (root.effective & ~kFsSet)) return 3;
              setfsuid(0);
              if (!Get(&s) || s.effective != root.effective) return 4;
              return 0;
            }),
            0);
}

TEST_F(CapsTest, Securebits) {
  EXPECT_EQ(prctl(PR_GET_SECUREBITS), 0);
  EXPECT_EQ(InChild([] {
              errno = 0;
              if (prctl(PR_SET_SECUREBITS, 1UL << 20) != -1 || errno != EPERM) return 1;
              if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED) != 0) {
                return 2;
              }
              if (prctl(PR_GET_KEEPCAPS) != 1) return 3;
              // Locked: neither the bit nor its lock may change.
              errno = 0;
              if (prctl(PR_SET_KEEPCAPS, 0) != -1 || errno != EPERM) return 4;
              errno = 0;
              if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS) != -1 || errno != EPERM) return 5;
              if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED |
                                               SECBIT_NO_CAP_AMBIENT_RAISE) != 0) {
                return 6;
              }
              return 0;
            }),
            0);
}

}  // namespace
