// Scheduling attributes: nice values (getpriority/setpriority), policies
// (sched_setscheduler, sched_setparam, sched_setattr and their getters),
// CPU affinity and getcpu. Everything that changes an attribute runs in a
// forked child.
//
// Privilege: lowering a nice value or using a real-time policy needs
// CAP_SYS_NICE in the initial user namespace (or RLIMIT_NICE/RLIMIT_RTPRIO,
// which only CAP_SYS_RESOURCE there may raise). The fence's root is root of
// a user namespace and has neither: those tests skip natively, and run in
// husk, whose sandbox is the application's initial namespace.
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::InChild;

constexpr int kNoCapSysNice = 77;  // a child's exit code: skip, with the reason below
constexpr const char* kNoCapSysNiceReason =
    "no CAP_SYS_NICE in the initial user namespace (root of a user namespace, as in the fence)";

// struct sched_attr (linux/sched/types.h), which glibc 2.36 lacks.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t sched_util_min, sched_util_max;
};

int Nice() { return getpriority(PRIO_PROCESS, 0); }

bool DropRoot() { return setresgid(1000, 1000, 1000) == 0 && setresuid(1000, 1000, 1000) == 0; }

void ExpectChild(int code) {
  if (code == kNoCapSysNice) GTEST_SKIP() << kNoCapSysNiceReason;
  EXPECT_EQ(code, 0);
}

class SchedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (in its user namespace)";
    // The tests below move the nice value up from here and need room.
    if (Nice() > 10) GTEST_SKIP() << "started with nice " << Nice();
  }
};

TEST_F(SchedTest, RaisingNiceAndReadingItBack) {
  ExpectChild(InChild([] {
    const int n = Nice();
    // The raw call answers 20 - nice, never negative.
    if (syscall(SYS_getpriority, PRIO_PROCESS, 0) != 20 - n) return 1;
    if (setpriority(PRIO_PROCESS, 0, n + 3) != 0 || Nice() != n + 3) return 2;
    if (syscall(SYS_getpriority, PRIO_PROCESS, getpid()) != 17 - n) return 3;
    // Out of range is clamped to 19.
    if (setpriority(PRIO_PROCESS, 0, 100) != 0 || Nice() != 19) return 4;
    return 0;
  }));
}

TEST_F(SchedTest, ArgumentErrors) {
  EXPECT_ERRNO(getpriority(3, 0), EINVAL);
  EXPECT_ERRNO(setpriority(static_cast<__priority_which_t>(-1), 0, 0), EINVAL);
  EXPECT_ERRNO(getpriority(PRIO_PROCESS, 999999), ESRCH);
  EXPECT_ERRNO(setpriority(PRIO_PROCESS, 999999, 0), ESRCH);
  EXPECT_ERRNO(getpriority(PRIO_PGRP, 999999), ESRCH);
}

TEST_F(SchedTest, UnprivilegedMayOnlyRaiseNice) {
  ExpectChild(InChild([] {
    const int n = Nice();
    if (!DropRoot()) return 1;
    if (setpriority(PRIO_PROCESS, 0, n + 5) != 0) return 2;
    errno = 0;
    if (setpriority(PRIO_PROCESS, 0, n + 2) != -1 || errno != EACCES) return 3;
    if (Nice() != n + 5) return 4;
    // The same value again is no lowering.
    if (setpriority(PRIO_PROCESS, 0, n + 5) != 0) return 5;
    // Another user's process: EPERM.
    errno = 0;
    if (setpriority(PRIO_PROCESS, 1, 19) != -1 || (errno != EPERM && errno != ESRCH)) return 6;
    return 0;
  }));
}

TEST_F(SchedTest, AnotherUsersProcessIsEperm) {
  ExpectChild(InChild([] {
    const pid_t root_pid = getpid();
    return InChild([root_pid] {
      if (!DropRoot()) return 1;
      errno = 0;
      if (setpriority(PRIO_PROCESS, root_pid, 19) != -1 || errno != EPERM) return 2;
      // Reading is allowed.
      errno = 0;
      if (getpriority(PRIO_PROCESS, root_pid) == -1 && errno != 0) return 3;
      return 0;
    });
  }));
}

TEST_F(SchedTest, RootMayLowerNice) {
  ExpectChild(InChild([] {
    const int n = Nice();
    if (setpriority(PRIO_PROCESS, 0, n - 1) != 0) {
      return errno == EACCES ? kNoCapSysNice : 1;
    }
    if (Nice() != n - 1) return 2;
    if (setpriority(PRIO_PROCESS, 0, -20) != 0 || Nice() != -20) return 3;
    if (setpriority(PRIO_PROCESS, 0, -100) != 0 || Nice() != -20) return 4;
    return 0;
  }));
}

TEST_F(SchedTest, NiceIsPerThread) {
  ExpectChild(InChild([] {
    const int n = Nice();
    struct Shared {
      int n;
      int thread_nice = -100;
      pid_t tid = 0;
    } shared{n};
    pthread_t th;
    auto body = [](void* arg) -> void* {
      auto* s = static_cast<Shared*>(arg);
      s->tid = static_cast<pid_t>(syscall(SYS_gettid));
      setpriority(PRIO_PROCESS, s->tid, s->n + 4);
      s->thread_nice = getpriority(PRIO_PROCESS, 0);
      return nullptr;
    };
    if (pthread_create(&th, nullptr, body, &shared) != 0) return 1;
    pthread_join(th, nullptr);
    if (shared.thread_nice != n + 4) return 2;
    if (Nice() != n) return 3;
    // A new thread starts with its creator's value.
    if (setpriority(PRIO_PROCESS, 0, n + 2) != 0) return 4;
    auto read = [](void* arg) -> void* {
      static_cast<Shared*>(arg)->thread_nice = getpriority(PRIO_PROCESS, 0);
      return nullptr;
    };
    if (pthread_create(&th, nullptr, read, &shared) != 0) return 5;
    pthread_join(th, nullptr);
    if (shared.thread_nice != n + 2) return 6;
    // And so does a forked child.
    return InChild([n] { return Nice() == n + 2 ? 0 : 7; });
  }));
}

TEST_F(SchedTest, ProcessGroupAndUser) {
  ExpectChild(InChild([] {
    const int n = Nice();
    if (setpgid(0, 0) != 0) return 1;
    husk_test::Pipe go = husk_test::MakePipe();
    pid_t member = fork();
    if (member < 0) return 2;
    if (member == 0) {
      char c;
      (void)!read(go.r.get(), &c, 1);
      _exit(0);
    }
    if (setpriority(PRIO_PGRP, 0, n + 2) != 0) return 3;
    bool ok = getpriority(PRIO_PROCESS, member) == n + 2 && getpriority(PRIO_PGRP, 0) == n + 2;
    // The best (lowest) value of the group.
    if (setpriority(PRIO_PROCESS, member, n + 6) != 0) return 4;
    ok = ok && getpriority(PRIO_PGRP, getpgrp()) == n + 2;
    (void)!write(go.w.get(), "x", 1);
    husk_test::Wait(member);
    if (!ok) return 5;
    // PRIO_USER: every process of the real uid (0 means the caller's).
    return InChild([n] {
      if (setresuid(4242, 4242, 4242) != 0) return 6;
      if (setpriority(PRIO_USER, 0, n + 7) != 0) return 7;
      if (getpriority(PRIO_USER, 4242) != n + 7 || Nice() != n + 7) return 8;
      errno = 0;
      if (setpriority(PRIO_USER, 4243, 19) != -1 || errno != ESRCH) return 9;
      return 0;
    });
  }));
}

TEST_F(SchedTest, PolicyLimitsAndErrors) {
  EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER);
  EXPECT_EQ(sched_get_priority_max(SCHED_FIFO), 99);
  EXPECT_EQ(sched_get_priority_min(SCHED_FIFO), 1);
  EXPECT_EQ(sched_get_priority_max(SCHED_RR), 99);
  EXPECT_EQ(sched_get_priority_max(SCHED_OTHER), 0);
  EXPECT_EQ(sched_get_priority_min(SCHED_BATCH), 0);
  EXPECT_EQ(sched_get_priority_max(SCHED_IDLE), 0);
  EXPECT_ERRNO(sched_get_priority_max(4), EINVAL);
  EXPECT_ERRNO(sched_get_priority_min(-1), EINVAL);
  struct sched_param p {};
  ASSERT_EQ(sched_getparam(0, &p), 0);
  EXPECT_EQ(p.sched_priority, 0);
  EXPECT_ERRNO(syscall(SYS_sched_getparam, 0, nullptr), EINVAL);
  EXPECT_ERRNO(sched_getparam(-1, &p), EINVAL);
  EXPECT_ERRNO(sched_getparam(999999, &p), ESRCH);
  EXPECT_ERRNO(sched_getscheduler(-1), EINVAL);
  EXPECT_ERRNO(sched_getscheduler(999999), ESRCH);
  EXPECT_ERRNO(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, nullptr), EINVAL);
  EXPECT_ERRNO(sched_setscheduler(-1, SCHED_OTHER, &p), EINVAL);
  EXPECT_ERRNO(sched_setscheduler(0, 4, &p), EINVAL);
  EXPECT_ERRNO(sched_setscheduler(0, -1, &p), EINVAL);
  p.sched_priority = 1;
  EXPECT_ERRNO(sched_setscheduler(0, SCHED_OTHER, &p), EINVAL);
  EXPECT_ERRNO(sched_setparam(0, &p), EINVAL);  // SCHED_OTHER takes only 0
  p.sched_priority = 100;
  EXPECT_ERRNO(sched_setscheduler(0, SCHED_FIFO, &p), EINVAL);
  p.sched_priority = 0;
  EXPECT_ERRNO(sched_setscheduler(0, SCHED_FIFO, &p), EINVAL);
  EXPECT_ERRNO(sched_setscheduler(999999, SCHED_OTHER, &p), ESRCH);
  EXPECT_EQ(sched_setparam(0, &p), 0);
  timespec ts{-1, -1};
  ASSERT_EQ(sched_rr_get_interval(0, &ts), 0);
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_GE(ts.tv_nsec, 0);
  EXPECT_ERRNO(sched_rr_get_interval(-1, &ts), EINVAL);
  EXPECT_ERRNO(sched_rr_get_interval(999999, &ts), ESRCH);
}

TEST_F(SchedTest, BatchAndIdle) {
  ExpectChild(InChild([] {
    const int n = Nice();
    if (!DropRoot()) return 1;
    struct sched_param p {};
    if (sched_setscheduler(0, SCHED_BATCH, &p) != 0) return 2;
    if (sched_getscheduler(0) != SCHED_BATCH || Nice() != n) return 3;
    if (sched_setscheduler(0, SCHED_IDLE, &p) != 0) return 4;
    if (sched_getscheduler(0) != SCHED_IDLE) return 5;
    // SCHED_IDLE counts as nice 20: leaving it takes RLIMIT_NICE (0 here).
    errno = 0;
    if (sched_setscheduler(0, SCHED_OTHER, &p) != -1 || errno != EPERM) return 6;
    // Real-time policies take RLIMIT_RTPRIO (0 here).
    p.sched_priority = 1;
    errno = 0;
    if (sched_setscheduler(0, SCHED_FIFO, &p) != -1 || errno != EPERM) return 7;
    return 0;
  }));
}

TEST_F(SchedTest, ResetOnFork) {
  ExpectChild(InChild([] {
    if (!DropRoot()) return 1;
    struct sched_param p {};
    if (sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &p) != 0) return 2;
    if (sched_getscheduler(0) != (SCHED_BATCH | SCHED_RESET_ON_FORK)) return 3;
    // The child keeps a fair policy, without the flag.
    if (InChild([] { return sched_getscheduler(0) == SCHED_BATCH ? 0 : 1; }) != 0) return 4;
    // Only the privileged may clear it.
    errno = 0;
    if (sched_setscheduler(0, SCHED_BATCH, &p) != -1 || errno != EPERM) return 5;
    // sched_setparam keeps it.
    if (sched_setparam(0, &p) != 0) return 6;
    if (sched_getscheduler(0) != (SCHED_BATCH | SCHED_RESET_ON_FORK)) return 7;
    return 0;
  }));
}

TEST_F(SchedTest, RootMayUseRealTimePolicies) {
  ExpectChild(InChild([] {
    struct sched_param p {};
    p.sched_priority = 10;
    if (sched_setscheduler(0, SCHED_FIFO, &p) != 0) return errno == EPERM ? kNoCapSysNice : 1;
    if (sched_getscheduler(0) != SCHED_FIFO) return 2;
    p.sched_priority = 0;
    if (sched_getparam(0, &p) != 0 || p.sched_priority != 10) return 3;
    p.sched_priority = 20;
    if (sched_setparam(0, &p) != 0) return 4;
    if (sched_setscheduler(0, SCHED_RR, &p) != 0) return 5;
    timespec ts{};
    if (sched_rr_get_interval(0, &ts) != 0 || ts.tv_sec != 0 || ts.tv_nsec != 100'000'000) {
      return 6;
    }
    // A forked child with SCHED_RESET_ON_FORK starts with SCHED_OTHER.
    if (sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &p) != 0) return 7;
    if (InChild([] {
          struct sched_param q {};
          return sched_getscheduler(0) == SCHED_OTHER && sched_getparam(0, &q) == 0 &&
                         q.sched_priority == 0
                     ? 0
                     : 1;
        }) != 0) {
      return 8;
    }
    p.sched_priority = 0;
    if (sched_setscheduler(0, SCHED_OTHER, &p) != 0) return 9;
    return 0;
  }));
}

TEST_F(SchedTest, Getattr) {
  SchedAttr a;
  memset(&a, 0xee, sizeof(a));
  ASSERT_EQ(syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0), 0);
  EXPECT_EQ(a.size, sizeof(a));
  EXPECT_EQ(a.sched_policy, static_cast<uint32_t>(SCHED_OTHER));
  EXPECT_EQ(a.sched_flags, 0u);
  EXPECT_EQ(a.sched_nice, Nice());
  EXPECT_EQ(a.sched_priority, 0u);
  // The first version of the struct (48 bytes) is enough.
  memset(&a, 0xee, sizeof(a));
  ASSERT_EQ(syscall(SYS_sched_getattr, 0, &a, 48, 0), 0);
  EXPECT_EQ(a.size, 48u);
  EXPECT_EQ(a.sched_util_min, 0xeeeeeeeeu);
  EXPECT_ERRNO(syscall(SYS_sched_getattr, 0, &a, 47, 0), EINVAL);
  EXPECT_ERRNO(syscall(SYS_sched_getattr, 0, &a, sizeof(a), 1), EINVAL);
  EXPECT_ERRNO(syscall(SYS_sched_getattr, 0, nullptr, sizeof(a), 0), EINVAL);
  EXPECT_ERRNO(syscall(SYS_sched_getattr, 999999, &a, sizeof(a), 0), ESRCH);
}

TEST_F(SchedTest, Setattr) {
  ExpectChild(InChild([] {
    const int n = Nice();
    SchedAttr a{};
    a.size = sizeof(a);
    a.sched_policy = SCHED_BATCH;
    a.sched_nice = n + 3;
    if (syscall(SYS_sched_setattr, 0, &a, 0) != 0) return 1;
    if (sched_getscheduler(0) != SCHED_BATCH || Nice() != n + 3) return 2;
    // Size 0 means the first version; the nice value is clamped.
    a.size = 0;
    a.sched_policy = SCHED_OTHER;
    a.sched_nice = 100;
    if (syscall(SYS_sched_setattr, 0, &a, 0) != 0) return 3;
    if (sched_getscheduler(0) != SCHED_OTHER || Nice() != 19) return 4;
    // A larger struct is fine while the bytes past the kernel's are zero.
    char big[200] = {};
    auto* b = reinterpret_cast<SchedAttr*>(big);
    b->size = sizeof(big);
    b->sched_policy = SCHED_OTHER;
    b->sched_nice = 19;
    if (syscall(SYS_sched_setattr, 0, b, 0) != 0) return 5;
    big[150] = 1;
    errno = 0;
    if (syscall(SYS_sched_setattr, 0, b, 0) != -1 || errno != E2BIG) return 6;
    if (b->size != sizeof(SchedAttr)) return 7;  // the kernel's size, written back
    a.size = 20;
    errno = 0;
    if (syscall(SYS_sched_setattr, 0, &a, 0) != -1 || errno != E2BIG) return 8;
    a.size = sizeof(a);
    errno = 0;
    if (syscall(SYS_sched_setattr, 0, &a, 1) != -1 || errno != EINVAL) return 9;
    a.sched_policy = 4;
    errno = 0;
    if (syscall(SYS_sched_setattr, 0, &a, 0) != -1 || errno != EINVAL) return 10;
    return 0;
  }));
}

// The CPUs of a mask, lowest first.
std::vector<int> Cpus(const cpu_set_t& set) {
  std::vector<int> out;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
  }
  return out;
}

TEST_F(SchedTest, GetaffinitySizes) {
  cpu_set_t set;
  CPU_ZERO(&set);
  long n = syscall(SYS_sched_getaffinity, 0, sizeof(set), &set);
  ASSERT_GE(n, 8);
  EXPECT_LE(n, static_cast<long>(sizeof(set)));
  EXPECT_EQ(n % 8, 0);
  EXPECT_GE(CPU_COUNT(&set), 1);
  EXPECT_ERRNO(syscall(SYS_sched_getaffinity, 0, 4, &set), EINVAL);
  EXPECT_ERRNO(syscall(SYS_sched_getaffinity, 0, 12, &set), EINVAL);
  EXPECT_ERRNO(syscall(SYS_sched_getaffinity, 999999, sizeof(set), &set), ESRCH);
  EXPECT_ERRNO(syscall(SYS_sched_getaffinity, 0, sizeof(set), nullptr), EFAULT);
}

TEST_F(SchedTest, SetaffinityAndGetcpu) {
  ExpectChild(InChild([] {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
    const std::vector<int> cpus = Cpus(set);
    const int last = cpus.back();
    CPU_ZERO(&set);
    CPU_SET(last, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) return 2;
    cpu_set_t got;
    if (sched_getaffinity(0, sizeof(got), &got) != 0 || Cpus(got) != std::vector<int>{last}) {
      return 3;
    }
    unsigned cpu = 9999, node = 9999;
    if (syscall(SYS_getcpu, &cpu, &node, nullptr) != 0) return 4;
    if (cpu != static_cast<unsigned>(last) || node != 0) return 5;
    // No CPU of the machine: EINVAL, and the mask stays.
    CPU_ZERO(&set);
    errno = 0;
    if (sched_setaffinity(0, sizeof(set), &set) != -1 || errno != EINVAL) return 6;
    CPU_SET(CPU_SETSIZE - 1, &set);
    errno = 0;
    if (sched_setaffinity(0, sizeof(set), &set) != -1 || errno != EINVAL) return 7;
    if (sched_getaffinity(0, sizeof(got), &got) != 0 || Cpus(got) != std::vector<int>{last}) {
      return 8;
    }
    // A forked child inherits the mask.
    return InChild([last] {
      cpu_set_t mask;
      return sched_getaffinity(0, sizeof(mask), &mask) == 0 && Cpus(mask) == std::vector<int>{last}
                 ? 0
                 : 9;
    });
  }));
}

TEST_F(SchedTest, AffinityIsPerThread) {
  ExpectChild(InChild([] {
    cpu_set_t all;
    if (sched_getaffinity(0, sizeof(all), &all) != 0) return 1;
    const int first = Cpus(all).front();
    pthread_t th;
    auto body = [](void* arg) -> void* {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(*static_cast<int*>(arg), &one);
      *static_cast<int*>(arg) = sched_setaffinity(0, sizeof(one), &one);
      return nullptr;
    };
    int arg = first;
    if (pthread_create(&th, nullptr, body, &arg) != 0) return 2;
    pthread_join(th, nullptr);
    if (arg != 0) return 3;
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof(mine), &mine) != 0 || !CPU_EQUAL(&mine, &all)) return 4;
    return 0;
  }));
}

TEST_F(SchedTest, AnotherUsersAffinityIsEperm) {
  ExpectChild(InChild([] {
    const pid_t root_pid = getpid();
    return InChild([root_pid] {
      if (!DropRoot()) return 1;
      cpu_set_t set;
      if (sched_getaffinity(root_pid, sizeof(set), &set) != 0) return 2;
      errno = 0;
      if (sched_setaffinity(root_pid, sizeof(set), &set) != -1 || errno != EPERM) return 3;
      return 0;
    });
  }));
}

TEST_F(SchedTest, GetcpuIsAnAllowedCpu) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  unsigned cpu = 9999;
  ASSERT_EQ(syscall(SYS_getcpu, &cpu, nullptr, nullptr), 0);
  EXPECT_TRUE(CPU_ISSET(cpu, &set)) << cpu;
}

}  // namespace
