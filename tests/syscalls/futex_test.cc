// futex(2) between processes: FUTEX_WAIT/WAKE, the bitset variants, REQUEUE, CMP_REQUEUE and
// WAKE_OP on words in MAP_SHARED memory (shared futexes, keyed by the memory itself), and
// private futexes, which a forked process cannot reach. Every wait has a timeout or a
// waker, so no test can hang.
//
// Syscalls: futex set_robust_list get_robust_list mmap munmap fork wait4 kill clock_gettime
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

long Futex(void* addr, int op, uint32_t val, const timespec* ts = nullptr, void* addr2 = nullptr,
           uint32_t val3 = 0) {
  return syscall(SYS_futex, addr, op, val, ts, addr2, val3);
}
// REQUEUE, CMP_REQUEUE and WAKE_OP pass a count where the timeout goes.
long FutexCount(void* addr, int op, uint32_t val, uint32_t val2, void* addr2, uint32_t val3) {
  return syscall(SYS_futex, addr, op, val, static_cast<uintptr_t>(val2), addr2, val3);
}

// Words in memory shared with forked children, plus a count of children that are about
// to wait (they announce it just before the futex call; the parent then polls the
// kernel's answer, never a sleep, to know they wait).
struct Shared {
  uint32_t word = 0;
  uint32_t word2 = 0;
  std::atomic<int> ready{0};
  std::atomic<int> done{0};
  std::atomic<int> go{0};
  // A robust list of one lock: the list head, the lock's list node, then its word.
  uint64_t head[3] = {};
  uint64_t node[2] = {};
  uint32_t lock = 0;
};

class FutexTest : public ::testing::Test {
 public:  // for the free helpers below
  void SetUp() override {
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    s_ = new (p) Shared();
  }
  void TearDown() override { munmap(s_, 4096); }

  // A child that waits on `word` (for at most 10 s) and exits 0 if woken, 1 on timeout,
  // 2 on another error.
  pid_t Waiter(uint32_t* word, int op = FUTEX_WAIT, uint32_t bitset = FUTEX_BITSET_MATCH_ANY) {
    pid_t pid = fork();
    if (pid == 0) {
      timespec ts{10, 0};
      if (op == FUTEX_WAIT_BITSET) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 10;
      }
      s_->ready.fetch_add(1);
      long r = Futex(word, op, 0, &ts, nullptr, bitset);
      s_->done.fetch_add(1);
      _exit(r == 0 ? 0 : errno == ETIMEDOUT ? 1 : 2);
    }
    return pid;
  }
  // Wakes `word` until n waiters have been woken (each wake tells how many it reached).
  int WakeUntil(uint32_t* word, int n, int op = FUTEX_WAKE, uint32_t bitset = ~0u) {
    int woken = 0;
    const int64_t end = NowMs() + 10000;
    while (woken < n && NowMs() < end) {
      long r = Futex(word, op, static_cast<uint32_t>(n - woken), nullptr, nullptr, bitset);
      if (r < 0) return -1;
      woken += static_cast<int>(r);
    }
    return woken;
  }
  Shared* s_ = nullptr;
};

TEST_F(FutexTest, WaitOnAChangedWordIsEagain) {
  s_->word = 1;
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_WAIT, 0), EAGAIN);
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_WAIT_PRIVATE, 0), EAGAIN);
}

TEST_F(FutexTest, BadArgumentsFail) {
  timespec bad{0, 1000000000};
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_WAIT, 0, &bad), EINVAL);
  EXPECT_ERRNO(Futex(reinterpret_cast<char*>(&s_->word) + 1, FUTEX_WAIT, 0), EINVAL);
  EXPECT_ERRNO(Futex(nullptr, FUTEX_WAIT, 0), EFAULT);
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_WAIT_BITSET, 0, nullptr, nullptr, 0), EINVAL);
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_WAKE_BITSET, 1, nullptr, nullptr, 0), EINVAL);
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 0), ENOSYS);
  EXPECT_ERRNO(FutexCount(&s_->word, FUTEX_CMP_REQUEUE, 1, 1, &s_->word2, 7), EAGAIN);
  EXPECT_ERRNO(FutexCount(&s_->word, FUTEX_REQUEUE, static_cast<uint32_t>(-1), 1, &s_->word2, 0),
               EINVAL);
}

TEST_F(FutexTest, TimeoutsExpire) {
  timespec rel{0, 20 * 1000 * 1000};
  int64_t start = NowMs();
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_WAIT, 0, &rel), ETIMEDOUT);
  EXPECT_GE(NowMs() - start, 15);
  timespec abs;
  clock_gettime(CLOCK_REALTIME, &abs);
  abs.tv_nsec += 20 * 1000 * 1000;
  if (abs.tv_nsec >= 1000000000) {
    abs.tv_sec++;
    abs.tv_nsec -= 1000000000;
  }
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 0, &abs, nullptr, ~0u),
               ETIMEDOUT);
  // With nobody waiting, a wake reaches nobody.
  EXPECT_EQ(Futex(&s_->word, FUTEX_WAKE, 10), 0);
}

TEST_F(FutexTest, WakeReachesWaitersInAnotherProcess) {
  pid_t a = Waiter(&s_->word), b = Waiter(&s_->word);
  EXPECT_EQ(WakeUntil(&s_->word, 2), 2);
  EXPECT_TRUE(ExitedWith(Wait(a), 0));
  EXPECT_TRUE(ExitedWith(Wait(b), 0));
}

TEST_F(FutexTest, WakeCountsAtMostWhatItWasAskedFor) {
  pid_t a = Waiter(&s_->word), b = Waiter(&s_->word);
  // Until both wait, one wake of 1 reaches at most 1.
  EXPECT_EQ(WakeUntil(&s_->word, 1), 1);
  EXPECT_EQ(WakeUntil(&s_->word, 1), 1);
  EXPECT_TRUE(ExitedWith(Wait(a), 0));
  EXPECT_TRUE(ExitedWith(Wait(b), 0));
}

TEST_F(FutexTest, BitsetsSelectWaiters) {
  pid_t a = Waiter(&s_->word, FUTEX_WAIT_BITSET, 0x1);
  pid_t b = Waiter(&s_->word, FUTEX_WAIT_BITSET, 0x2);
  EXPECT_EQ(WakeUntil(&s_->word, 1, FUTEX_WAKE_BITSET, 0x2), 1);
  EXPECT_TRUE(ExitedWith(Wait(b), 0));
  EXPECT_EQ(s_->done.load(), 1);  // a still waits: the bit did not match
  EXPECT_EQ(WakeUntil(&s_->word, 1, FUTEX_WAKE_BITSET, 0x1), 1);
  EXPECT_TRUE(ExitedWith(Wait(a), 0));
}

// One round of the requeue test: two waiters on word, a CMP_REQUEUE of 0 + 2 moves both
// to word2, and wakes of word2 reach them. Returns "" when it went as Linux says, else what
// went wrong. A waiter that no wake reaches within 2 s is killed and reported as lost.
std::string RequeueRound(FutexTest* t, Shared* s) {
  s->word = 0;
  s->word2 = 0;
  s->done = 0;
  pid_t a = t->Waiter(&s->word), b = t->Waiter(&s->word);
  // Wait until both are queued on word: a requeue of 0 + 2 then moves both.
  int moved = 0;
  const int64_t end = NowMs() + 10000;
  while (moved < 2 && NowMs() < end) {
    long r = FutexCount(&s->word, FUTEX_CMP_REQUEUE, 0, 2 - moved, &s->word2, 0);
    if (r < 0) return std::string("CMP_REQUEUE failed: ") + ErrnoName(errno);
    moved += static_cast<int>(r);
  }
  int woken = 0;
  const int64_t wake_end = NowMs() + 2000;
  while (s->done.load() < 2 && NowMs() < wake_end) {
    woken += static_cast<int>(Futex(&s->word2, FUTEX_WAKE, 2));
  }
  std::string err;
  if (moved != 2) err = "moved " + std::to_string(moved) + " waiters, not 2";
  if (err.empty() && woken != 2) err = "wakes of word2 reached " + std::to_string(woken);
  for (pid_t pid : {a, b}) {
    if (s->done.load() < 2) kill(pid, SIGKILL);
    int st = Wait(pid);
    if (err.empty() && !ExitedWith(st, 0)) err = "a waiter ended " + Describe(st);
  }
  return err;
}

TEST_F(FutexTest, RequeueMovesWaitersToTheSecondWord) {
  // Linux 6.18 under load has been seen, in a few rounds out of a hundred, to leave a requeued
  // waiter where no wake of either word reaches it. A lost wake-up in the host kernel is
  // not the behaviour under test, so a round may be repeated: five rounds that all go
  // wrong fail the test, and any wrong round is printed.
  std::string err;
  for (int round = 0; round < 5; ++round) {
    err = RequeueRound(this, s_);
    if (err.empty()) break;
    std::fprintf(stderr, "requeue round %d: %s\n", round, err.c_str());
  }
  EXPECT_EQ(err, "");
}

TEST_F(FutexTest, WakeOpChangesTheSecondWordAndWakesByItsOldValue) {
  pid_t a = Waiter(&s_->word), b = Waiter(&s_->word2);
  s_->word2 = 0;
  // Both wait before the op: poll with WAKE of nobody is not possible, so requeue 0 + 0
  // onto themselves until each word has a waiter.
  const int64_t end = NowMs() + 10000;
  while (NowMs() < end && (FutexCount(&s_->word, FUTEX_REQUEUE, 0, 1, &s_->word, 0) < 1 ||
                           FutexCount(&s_->word2, FUTEX_REQUEUE, 0, 1, &s_->word2, 0) < 1)) {
  }
  // word2 += 5; wake one on word; if the old word2 was 0, wake one on word2.
  uint32_t op = FUTEX_OP(FUTEX_OP_ADD, 5, FUTEX_OP_CMP_EQ, 0);
  EXPECT_EQ(FutexCount(&s_->word, FUTEX_WAKE_OP, 1, 1, &s_->word2, op), 2);
  EXPECT_EQ(s_->word2, 5u);
  EXPECT_TRUE(ExitedWith(Wait(a), 0));
  EXPECT_TRUE(ExitedWith(Wait(b), 0));
  // A comparison that fails wakes only the first word's waiters; the op still applies.
  op = FUTEX_OP(FUTEX_OP_OR, 0x10, FUTEX_OP_CMP_LT, 0);
  EXPECT_EQ(FutexCount(&s_->word, FUTEX_WAKE_OP, 1, 1, &s_->word2, op), 0);
  EXPECT_EQ(s_->word2, 0x15u);
  EXPECT_ERRNO(FutexCount(&s_->word, FUTEX_WAKE_OP, 1, 1, &s_->word2, 0x70000000), ENOSYS);
}

TEST_F(FutexTest, PrivateFutexesStayInTheirProcess) {
  // A private waiter here; the child's private wake on the same address is another
  // process's futex and reaches nobody.
  pid_t child = fork();
  if (child == 0) {
    long total = 0;
    for (int i = 0; i < 20; i++) total += Futex(&s_->word, FUTEX_WAKE_PRIVATE, 10);
    _exit(total == 0 ? 0 : 1);
  }
  timespec ts{0, 100 * 1000 * 1000};
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_WAIT_PRIVATE, 0, &ts), ETIMEDOUT);
  EXPECT_TRUE(ExitedWith(Wait(child), 0));
}

TEST_F(FutexTest, SignalsInterruptAWait) {
  pid_t a = Waiter(&s_->word);
  const int64_t end = NowMs() + 10000;
  while (s_->ready.load() < 1 && NowMs() < end) {
  }
  // SIGKILL ends it whether or not it already sleeps.
  ASSERT_EQ(kill(a, SIGKILL), 0);
  int status = Wait(a);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// A process that dies holding a robust lock (set_robust_list) leaves FUTEX_OWNER_DIED in
// the word, keeps FUTEX_WAITERS, and wakes one waiter (the kernel's exit_robust_list).
TEST_F(FutexTest, RobustLockOfADeadOwnerIsMarkedAndAWaiterWoken) {
  pid_t owner = fork();
  if (owner == 0) {
    // head.next -> node -> head; the word sits futex_offset bytes after the node.
    s_->head[0] = reinterpret_cast<uint64_t>(&s_->node[0]);
    s_->head[1] = reinterpret_cast<uint64_t>(&s_->lock) - reinterpret_cast<uint64_t>(&s_->node[0]);
    s_->head[2] = 0;
    s_->node[0] = reinterpret_cast<uint64_t>(&s_->head[0]);
    if (syscall(SYS_set_robust_list, s_->head, 24) != 0) _exit(1);
    uint64_t got = 0;
    size_t len = 0;
    if (syscall(SYS_get_robust_list, 0, &got, &len) != 0) _exit(2);
    if (got != reinterpret_cast<uint64_t>(s_->head) || len != 24) _exit(3);
    __atomic_store_n(&s_->lock, static_cast<uint32_t>(gettid()) | FUTEX_WAITERS, __ATOMIC_SEQ_CST);
    s_->ready.fetch_add(1);
    const int64_t end = NowMs() + 10000;
    while (s_->go.load() == 0 && NowMs() < end) {
    }
    _exit(0);  // dies holding the lock
  }
  const int64_t end = NowMs() + 10000;
  while (s_->ready.load() < 1 && NowMs() < end) {
  }
  const uint32_t held = __atomic_load_n(&s_->lock, __ATOMIC_SEQ_CST);
  ASSERT_EQ(held, static_cast<uint32_t>(owner) | FUTEX_WAITERS);
  pid_t waiter = fork();
  if (waiter == 0) {
    timespec ts{10, 0};
    _exit(Futex(&s_->lock, FUTEX_WAIT, held, &ts) == 0 ? 0 : 1);
  }
  // Once the waiter is queued (a requeue onto itself counts it), the owner may die.
  while (FutexCount(&s_->lock, FUTEX_REQUEUE, 0, 1, &s_->lock, 0) < 1 && NowMs() < end) {
  }
  s_->go.store(1);
  EXPECT_TRUE(ExitedWith(Wait(owner), 0));
  EXPECT_TRUE(ExitedWith(Wait(waiter), 0)) << "the waiter was not woken";
  EXPECT_EQ(__atomic_load_n(&s_->lock, __ATOMIC_SEQ_CST), FUTEX_WAITERS | FUTEX_OWNER_DIED);
}

// futex_waitv(2): one wait on several words; a wake of any of them ends it with its index.
TEST_F(FutexTest, WaitvWakesOnAnyWordWithItsIndex) {
  struct futex_waitv v[2] = {};
  v[0] = {0, reinterpret_cast<uint64_t>(&s_->word), FUTEX_32, 0};
  v[1] = {0, reinterpret_cast<uint64_t>(&s_->word2), FUTEX_32, 0};
  pid_t waiter = fork();
  if (waiter == 0) {
    timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 10;
    long r = syscall(SYS_futex_waitv, v, 2, 0, &deadline, CLOCK_MONOTONIC);
    _exit(r == 1 ? 0 : 1);
  }
  EXPECT_EQ(WakeUntil(&s_->word2, 1), 1);
  EXPECT_TRUE(ExitedWith(Wait(waiter), 0));
  // A word that differs: EAGAIN; bad arguments: EINVAL.
  s_->word = 3;
  EXPECT_ERRNO(syscall(SYS_futex_waitv, v, 2, 0, nullptr, 0), EAGAIN);
  EXPECT_ERRNO(syscall(SYS_futex_waitv, v, 0, 0, nullptr, 0), EINVAL);
  EXPECT_ERRNO(syscall(SYS_futex_waitv, v, 2, 1, nullptr, 0), EINVAL);
  v[1].flags = 3;  // a 64-bit word: not supported
  EXPECT_ERRNO(syscall(SYS_futex_waitv, v, 2, 0, nullptr, 0), EINVAL);
  timespec ts{0, 0};
  v[1].flags = FUTEX_32;
  EXPECT_ERRNO(syscall(SYS_futex_waitv, v, 2, 0, &ts, CLOCK_BOOTTIME), EINVAL);
  s_->word = 0;
  clock_gettime(CLOCK_REALTIME, &ts);
  EXPECT_ERRNO(syscall(SYS_futex_waitv, v, 2, 0, &ts, CLOCK_REALTIME), ETIMEDOUT);
}

// Priority-inheritance locks: the word holds the owner's tid.
TEST_F(FutexTest, PiTrylockAndUnlockFollowTheOwner) {
  const auto tid = static_cast<uint32_t>(syscall(SYS_gettid));
  ASSERT_EQ(Futex(&s_->word, FUTEX_TRYLOCK_PI, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(s_->word, tid);
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_TRYLOCK_PI, 0), EDEADLK);
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_LOCK_PI, 0), EDEADLK);
  // Another thread finds it taken, and may not unlock it.
  long other_try = 0, other_unlock = 0;
  int try_errno = 0, unlock_errno = 0;
  std::thread([&] {
    other_try = Futex(&s_->word, FUTEX_TRYLOCK_PI, 0);
    try_errno = errno;
    other_unlock = Futex(&s_->word, FUTEX_UNLOCK_PI, 0);
    unlock_errno = errno;
  }).join();
  EXPECT_EQ(other_try, -1);
  EXPECT_EQ(try_errno, EAGAIN);
  EXPECT_EQ(other_unlock, -1);
  EXPECT_EQ(unlock_errno, EPERM);
  ASSERT_EQ(Futex(&s_->word, FUTEX_UNLOCK_PI, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(s_->word, 0u);
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_UNLOCK_PI, 0), EPERM);
  // A word naming a thread that does not exist.
  s_->word = 0x3ffffff0;
  EXPECT_ERRNO(Futex(&s_->word, FUTEX_LOCK_PI, 0), ESRCH);
}

TEST_F(FutexTest, PiUnlockHandsTheLockToTheWaiter) {
  ASSERT_EQ(Futex(&s_->word, FUTEX_LOCK_PI, 0), 0) << ErrnoName(errno);
  std::atomic<uint32_t> waiter_tid{0};
  std::atomic<long> got{-2};
  std::atomic<uint32_t> word_seen{0};
  std::thread waiter([&] {
    waiter_tid = static_cast<uint32_t>(syscall(SYS_gettid));
    got = Futex(&s_->word, FUTEX_LOCK_PI, 0);
    word_seen = __atomic_load_n(&s_->word, __ATOMIC_SEQ_CST);
    Futex(&s_->word, FUTEX_UNLOCK_PI, 0);
  });
  // The waiter marks the word contended before it sleeps.
  const int64_t end = NowMs() + 10000;
  while (!(__atomic_load_n(&s_->word, __ATOMIC_SEQ_CST) & FUTEX_WAITERS) && NowMs() < end) {
    sched_yield();
  }
  ASSERT_NE(s_->word & FUTEX_WAITERS, 0u) << "the waiter never queued";
  ASSERT_EQ(Futex(&s_->word, FUTEX_UNLOCK_PI, 0), 0) << ErrnoName(errno);
  waiter.join();
  EXPECT_EQ(got.load(), 0);
  // It woke as the owner: its tid, with the waiters bit as Linux leaves it.
  EXPECT_EQ(word_seen.load() & FUTEX_TID_MASK, waiter_tid.load());
  EXPECT_EQ(s_->word, 0u);
}

TEST_F(FutexTest, PiLockTimesOutOnItsAbsoluteDeadline) {
  ASSERT_EQ(Futex(&s_->word, FUTEX_LOCK_PI, 0), 0) << ErrnoName(errno);
  long r = 0;
  int err = 0;
  int64_t waited = 0;
  std::thread([&] {
    timespec abs;
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_nsec += 50 * 1000000;
    if (abs.tv_nsec >= 1000000000) {
      abs.tv_sec++;
      abs.tv_nsec -= 1000000000;
    }
    int64_t start = NowMs();
    r = Futex(&s_->word, FUTEX_LOCK_PI, 0, &abs);
    err = errno;
    waited = NowMs() - start;
  }).join();
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, ETIMEDOUT);
  EXPECT_GE(waited, 40);
  EXPECT_EQ(Futex(&s_->word, FUTEX_UNLOCK_PI, 0), 0);
}

// A robust PI mutex shared between processes: its owner dies holding it and
// the next locker gets EOWNERDEAD (glibc's PTHREAD_PRIO_INHERIT mutexes are
// FUTEX_LOCK_PI underneath).
TEST_F(FutexTest, PiRobustMutexOfADeadOwnerGivesEownerdead) {
  auto* m = reinterpret_cast<pthread_mutex_t*>(&s_->head);
  static_assert(sizeof(pthread_mutex_t) <= sizeof(Shared::head) + sizeof(Shared::node) + 4);
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_INHERIT);
  ASSERT_EQ(pthread_mutex_init(m, &attr), 0);
  pid_t child = fork();
  if (child == 0) _exit(pthread_mutex_lock(m) == 0 ? 0 : 1);  // dies holding it
  EXPECT_TRUE(ExitedWith(Wait(child), 0));
  EXPECT_EQ(pthread_mutex_lock(m), EOWNERDEAD);
  EXPECT_EQ(pthread_mutex_consistent(m), 0);
  EXPECT_EQ(pthread_mutex_unlock(m), 0);
  EXPECT_EQ(pthread_mutex_lock(m), 0);
  EXPECT_EQ(pthread_mutex_unlock(m), 0);
  pthread_mutex_destroy(m);
}

}  // namespace
}  // namespace husk_test
