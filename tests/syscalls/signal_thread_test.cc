// Signals and threads (signal(7), pthreads(7)): a thread-directed signal (tgkill, tkill) runs
// its handler in its target and interrupts only that thread; a process-directed one (kill,
// sigqueue) goes to a thread that does not block it, or stays pending for the whole process
// until one unblocks it; masks (and thread-directed pending signals) are per thread, handlers
// and default actions per process (a fatal signal sent to one thread ends all of them; a stop
// stops all of them); sigwaitinfo in a dedicated thread; synchronous faults (SIGSEGV, abort)
// in a worker; exit_group while other threads sleep.
//
// Every wait is on a futex, a pipe or a join, and each one that a bug could make endless has a
// timeout. Whatever could end the test process runs in a forked child that has an alarm, and
// the parent asserts on its wait status. Signals sent to this process always have a handler
// installed: a fence may run this binary as its pid namespace's init (../shared/tools/contain
// does), and init does not get the signals it has no handler for.
//
// Syscalls: tgkill tkill kill rt_sigqueueinfo rt_sigaction rt_sigprocmask rt_sigpending
// rt_sigtimedwait ppoll futex mmap mprotect wait4 nanosleep pause exit_group alarm
// prlimit64(RLIMIT_CORE)
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

constexpr unsigned kChildAlarm = 30;  // seconds: no forked child outlives this

// ---- Helpers ----

long Futex(void* addr, int op, uint32_t val, const timespec* ts = nullptr) {
  return syscall(SYS_futex, addr, op, val, ts, nullptr, 0);
}

// Word operations with shared (not _PRIVATE) futex operations, so that they work between
// threads and between processes in MAP_SHARED memory alike. Bump is async-signal-safe.
void Bump(std::atomic<uint32_t>* w) {
  w->fetch_add(1);
  Futex(w, FUTEX_WAKE, INT_MAX);
}
void Store(std::atomic<uint32_t>* w, uint32_t v) {
  w->store(v);
  Futex(w, FUTEX_WAKE, INT_MAX);
}
// Waits until *w >= want, for at most timeout_ms (signal handlers may interrupt the wait:
// it goes on); false on timeout.
bool AwaitAtLeast(std::atomic<uint32_t>* w, uint32_t want, int64_t timeout_ms = 30000) {
  const int64_t end = NowMs() + timeout_ms;
  for (;;) {
    const uint32_t v = w->load();
    if (v >= want) return true;
    const int64_t left = end - NowMs();
    if (left <= 0) return false;
    timespec ts{left / 1000, (left % 1000) * 1000000};
    Futex(w, FUTEX_WAIT, v, &ts);
  }
}
[[noreturn]] void BlockForever() {
  std::atomic<uint32_t> never{0};
  for (;;) Futex(&never, FUTEX_WAIT, 0);
}

// Forks a child that runs body() (which must end the process itself) with no signal
// blocked, default dispositions for the signals these tests send, and an alarm as a guard.
template <typename F>
pid_t ForkChild(F body) {
  const pid_t pid = fork();
  if (pid == 0) {
    for (int sig : {SIGTERM, SIGABRT, SIGSEGV, SIGUSR1, SIGUSR2}) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    alarm(kChildAlarm);
    body();
    _exit(100);
  }
  EXPECT_GT(pid, 0) << ErrnoName(errno);
  return pid;
}

template <typename T>
class SharedBox {
 public:
  SharedBox() {
    void* p = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    t_ = new (p) T();
  }
  ~SharedBox() {
    t_->~T();
    munmap(t_, sizeof(T));
  }
  SharedBox(const SharedBox&) = delete;
  SharedBox& operator=(const SharedBox&) = delete;
  T* operator->() { return t_; }
  T* get() { return t_; }

 private:
  T* t_;
};

sigset_t SetOf(int sig) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  return s;
}

// This thread's mask has `sig` blocked.
bool Blocked(int sig) {
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  return sigismember(&cur, sig) == 1;
}
// `sig` is pending for this thread (its own pending set or the process's).
bool Pending(int sig) {
  sigset_t p;
  sigemptyset(&p);
  sigpending(&p);
  return sigismember(&p, sig) == 1;
}

// What the last handler run saw. Reset between uses, while no signal is in flight.
struct HandlerRecord {
  std::atomic<uint32_t> count{0};
  std::atomic<pid_t> tid{0}, from_pid{0};
  std::atomic<int> sig{0}, code{0};
  std::atomic<uid_t> from_uid{0};
  void Reset() {
    count.store(0);
    tid.store(0);
    from_pid.store(0);
    sig.store(0);
    code.store(0);
    from_uid.store(0);
  }
};
HandlerRecord g_rec;

void RecordingHandler(int sig, siginfo_t* info, void*) {
  const int saved = errno;
  g_rec.tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
  g_rec.sig.store(sig);
  g_rec.code.store(info->si_code);
  g_rec.from_pid.store(info->si_pid);
  g_rec.from_uid.store(info->si_uid);
  Bump(&g_rec.count);
  errno = saved;
}

// Installs RecordingHandler (without SA_RESTART) for sig; restores the old action at the end.
class ScopedHandler {
 public:
  explicit ScopedHandler(int sig) : sig_(sig) {
    struct sigaction sa = {};
    sa.sa_sigaction = RecordingHandler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    EXPECT_EQ(sigaction(sig, &sa, &old_), 0) << ErrnoName(errno);
    g_rec.Reset();
  }
  ~ScopedHandler() { sigaction(sig_, &old_, nullptr); }
  ScopedHandler(const ScopedHandler&) = delete;
  ScopedHandler& operator=(const ScopedHandler&) = delete;

 private:
  int sig_;
  struct sigaction old_ = {};
};

// Blocks sig in the calling thread; at the end drops any instance of it still pending and
// restores the old mask.
class ScopedBlock {
 public:
  explicit ScopedBlock(int sig) : sig_(sig) {
    const sigset_t s = SetOf(sig);
    pthread_sigmask(SIG_BLOCK, &s, &old_);
  }
  ~ScopedBlock() {
    const sigset_t s = SetOf(sig_);
    timespec zero{0, 0};
    while (sigtimedwait(&s, nullptr, &zero) == sig_) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedBlock(const ScopedBlock&) = delete;
  ScopedBlock& operator=(const ScopedBlock&) = delete;

 private:
  int sig_;
  sigset_t old_;
};

// A thread that publishes its tid and then waits (for at most 30 s) until released.
class Parked {
 public:
  Parked() {
    thread_ = std::thread([this] {
      tid_.store(gettid());
      Bump(&ready_);
      AwaitAtLeast(&release_, 1);
    });
    EXPECT_TRUE(AwaitAtLeast(&ready_, 1));
  }
  ~Parked() {
    Store(&release_, 1);
    thread_.join();
  }
  Parked(const Parked&) = delete;
  Parked& operator=(const Parked&) = delete;
  pid_t tid() const { return tid_.load(); }

 private:
  std::atomic<uint32_t> ready_{0}, release_{0};
  std::atomic<pid_t> tid_{0};
  std::thread thread_;
};

// ---- Thread-directed signals ----

TEST(SignalThreadTest, TgkillRunsTheHandlerInTheTargetThread) {
  ScopedHandler handler(SIGUSR1);
  std::atomic<pid_t> worker_tid{0};
  std::atomic<uint32_t> ready{0};
  std::thread worker([&] {
    worker_tid.store(gettid());
    Bump(&ready);
    AwaitAtLeast(&g_rec.count, 1);  // the handler, run in this thread, ends the wait
  });
  ASSERT_TRUE(AwaitAtLeast(&ready, 1));
  ASSERT_OK(tgkill(getpid(), worker_tid.load(), SIGUSR1));
  EXPECT_TRUE(AwaitAtLeast(&g_rec.count, 1));
  worker.join();
  EXPECT_EQ(g_rec.tid.load(), worker_tid.load());
  EXPECT_EQ(g_rec.sig.load(), SIGUSR1);
  EXPECT_EQ(g_rec.code.load(), SI_TKILL);
  EXPECT_EQ(g_rec.from_pid.load(), getpid());
  EXPECT_EQ(g_rec.from_uid.load(), getuid());

  // And the other way: a worker signals the main thread.
  g_rec.Reset();
  const pid_t main_tid = gettid();
  std::thread sender([main_tid] { tgkill(getpid(), main_tid, SIGUSR1); });
  EXPECT_TRUE(AwaitAtLeast(&g_rec.count, 1));
  sender.join();
  EXPECT_EQ(g_rec.tid.load(), main_tid);
  EXPECT_EQ(g_rec.count.load(), 1u);
}

TEST(SignalThreadTest, TkillRunsTheHandlerInTheTargetThread) {
  ScopedHandler handler(SIGUSR2);
  std::atomic<pid_t> worker_tid{0};
  std::atomic<uint32_t> ready{0};
  std::thread worker([&] {
    worker_tid.store(gettid());
    Bump(&ready);
    AwaitAtLeast(&g_rec.count, 1);
  });
  ASSERT_TRUE(AwaitAtLeast(&ready, 1));
  ASSERT_OK(syscall(SYS_tkill, worker_tid.load(), SIGUSR2));
  EXPECT_TRUE(AwaitAtLeast(&g_rec.count, 1));
  worker.join();
  EXPECT_EQ(g_rec.tid.load(), worker_tid.load());
  EXPECT_EQ(g_rec.sig.load(), SIGUSR2);
  EXPECT_EQ(g_rec.code.load(), SI_TKILL);
  EXPECT_EQ(g_rec.from_pid.load(), getpid());
  EXPECT_ERRNO(syscall(SYS_tkill, 0, SIGUSR2), EINVAL);
  EXPECT_ERRNO(syscall(SYS_tkill, -1, SIGUSR2), EINVAL);
}

TEST(SignalThreadTest, TgkillWithAWrongTgidIsEsrch) {
  ScopedHandler handler(SIGUSR1);
  Parked worker;
  const pid_t tid = worker.tid();
  EXPECT_EQ(tgkill(getpid(), tid, 0), 0) << ErrnoName(errno);
  // A tid that is not a thread group's id; then another process's id.
  EXPECT_ERRNO(tgkill(tid, tid, 0), ESRCH);
  EXPECT_ERRNO(tgkill(tid, tid, SIGUSR1), ESRCH);
  Pipe hold = MakePipe(O_CLOEXEC);
  const int hold_r = hold.r.get(), hold_w = hold.w.get();
  const pid_t other = ForkChild([hold_r, hold_w] {
    close(hold_w);
    char c;
    _exit(read(hold_r, &c, 1) == 0 ? 0 : 1);  // until the parent closes its end
  });
  EXPECT_ERRNO(tgkill(other, tid, 0), ESRCH);
  EXPECT_ERRNO(tgkill(other, tid, SIGUSR1), ESRCH);
  EXPECT_ERRNO(tgkill(getpid(), other, 0), ESRCH);  // another process is no thread of this one
  EXPECT_EQ(tgkill(other, other, 0), 0) << ErrnoName(errno);
  // Ids that are never valid, and a signal number that is not one.
  EXPECT_ERRNO(tgkill(0, tid, 0), EINVAL);
  EXPECT_ERRNO(tgkill(getpid(), 0, 0), EINVAL);
  EXPECT_ERRNO(tgkill(-1, tid, 0), EINVAL);
  EXPECT_ERRNO(tgkill(getpid(), tid, 1000), EINVAL);
  hold.w.Reset();
  const int status = WaitBounded(other);
  EXPECT_TRUE(ExitedWith(status, 0)) << Describe(status);
  EXPECT_EQ(g_rec.count.load(), 0u) << "a failed tgkill delivered a signal";
}

TEST(SignalThreadTest, TgkillToAnExitedThreadIsEsrch) {
  std::atomic<pid_t> tid{0};
  std::thread([&] { tid.store(gettid()); }).join();
  // The join returns when the kernel clears the thread's tid word, a moment before the thread
  // is gone: poll (bounded) for ESRCH.
  const int64_t end = NowMs() + 10000;
  while (tgkill(getpid(), tid.load(), 0) == 0 && NowMs() < end) sched_yield();
  EXPECT_ERRNO(tgkill(getpid(), tid.load(), 0), ESRCH);
}

TEST(SignalThreadTest, AThreadDirectedSignalInterruptsOnlyItsTarget) {
  // Both workers block SIGUSR1 except inside ppoll, which unblocks it atomically: the signal
  // interrupts the ppoll of its target whenever it is sent, and never the other one's.
  ScopedHandler handler(SIGUSR1);
  ScopedBlock block(SIGUSR1);  // inherited by both workers
  Pipe a = MakePipe(O_CLOEXEC), b = MakePipe(O_CLOEXEC);
  struct Result {
    std::atomic<pid_t> tid{0};
    std::atomic<int> r{-2}, err{0};
  } results[2];
  std::atomic<uint32_t> ready{0};
  auto body = [&](int i, int fd) {
    results[i].tid.store(gettid());
    Bump(&ready);
    pollfd p{fd, POLLIN, 0};
    timespec limit{30, 0};
    sigset_t none;
    sigemptyset(&none);
    errno = 0;
    results[i].r.store(ppoll(&p, 1, &limit, &none));
    results[i].err.store(errno);
  };
  std::thread ta(body, 0, a.r.get()), tb(body, 1, b.r.get());
  ASSERT_TRUE(AwaitAtLeast(&ready, 2));
  ASSERT_OK(tgkill(getpid(), results[0].tid.load(), SIGUSR1));
  ta.join();
  ASSERT_EQ(write(b.w.get(), "x", 1), 1);
  tb.join();
  EXPECT_EQ(results[0].r.load(), -1);
  EXPECT_EQ(results[0].err.load(), EINTR);
  EXPECT_EQ(results[1].r.load(), 1) << "the other thread's ppoll: " << results[1].err.load();
  EXPECT_EQ(g_rec.count.load(), 1u);
  EXPECT_EQ(g_rec.tid.load(), results[0].tid.load());
}

// ---- Process-directed signals and masks ----

TEST(SignalThreadTest, KillReachesTheOnlyThreadNotBlockingIt) {
  constexpr int kN = 3;
  constexpr int kOpen = 1;  // the worker that does not block SIGUSR1
  ScopedHandler handler(SIGUSR1);
  ScopedBlock block(SIGUSR1);  // this thread, and (inherited) every worker
  std::atomic<uint32_t> ready{0}, release{0};
  std::atomic<pid_t> tids[kN];
  std::vector<std::thread> workers;
  workers.reserve(kN);
  for (int i = 0; i < kN; i++) {
    workers.emplace_back([&, i] {
      tids[i].store(gettid());
      if (i == kOpen) {
        const sigset_t s = SetOf(SIGUSR1);
        pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
      }
      Bump(&ready);
      AwaitAtLeast(&release, 1);
    });
  }
  ASSERT_TRUE(AwaitAtLeast(&ready, kN));
  ASSERT_OK(kill(getpid(), SIGUSR1));
  EXPECT_TRUE(AwaitAtLeast(&g_rec.count, 1));
  Store(&release, 1);
  for (auto& w : workers) w.join();
  EXPECT_EQ(g_rec.tid.load(), tids[kOpen].load());
  EXPECT_EQ(g_rec.count.load(), 1u);
  EXPECT_EQ(g_rec.code.load(), SI_USER);
  EXPECT_EQ(g_rec.from_pid.load(), getpid());
  EXPECT_FALSE(Pending(SIGUSR1));
}

TEST(SignalThreadTest, ASignalEveryThreadBlocksStaysPendingUntilOneUnblocksIt) {
  constexpr int kN = 2;
  ScopedHandler handler(SIGUSR2);
  ScopedBlock block(SIGUSR2);
  // Steps: 1 check pending; 2 worker 0 unblocks; 3 check no longer pending; 4 exit.
  std::atomic<uint32_t> step{0}, acks{0};
  struct Seen {
    std::atomic<pid_t> tid{0};
    std::atomic<int> pending_before{-1}, pending_after{-1}, handled_here{-1};
  } seen[kN];
  std::vector<std::thread> workers;
  workers.reserve(kN);
  for (int i = 0; i < kN; i++) {
    workers.emplace_back([&, i] {
      seen[i].tid.store(gettid());
      Bump(&acks);
      AwaitAtLeast(&step, 1);
      seen[i].pending_before.store(Pending(SIGUSR2));
      Bump(&acks);
      AwaitAtLeast(&step, 2);
      if (i == 0) {
        const sigset_t s = SetOf(SIGUSR2);
        pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
        // The pending signal is handled on the way out of that call, in this thread.
        seen[i].handled_here.store(g_rec.count.load() == 1 && g_rec.tid.load() == gettid());
        Bump(&acks);
      }
      AwaitAtLeast(&step, 3);
      seen[i].pending_after.store(Pending(SIGUSR2));
      Bump(&acks);
      AwaitAtLeast(&step, 4);
    });
  }
  auto next = [&](uint32_t s, uint32_t want_acks) {
    Store(&step, s);
    EXPECT_TRUE(AwaitAtLeast(&acks, want_acks)) << "step " << s;
  };
  EXPECT_TRUE(AwaitAtLeast(&acks, kN));
  ASSERT_OK(kill(getpid(), SIGUSR2));
  EXPECT_TRUE(Pending(SIGUSR2)) << "the main thread's sigpending";
  next(1, 2 * kN);
  EXPECT_EQ(g_rec.count.load(), 0u) << "a blocked signal was handled";
  next(2, 2 * kN + 1);
  next(3, 3 * kN + 1);
  EXPECT_FALSE(Pending(SIGUSR2));
  Store(&step, 4);
  for (auto& w : workers) w.join();
  for (int i = 0; i < kN; i++) {
    EXPECT_EQ(seen[i].pending_before.load(), 1) << "worker " << i;
    EXPECT_EQ(seen[i].pending_after.load(), 0) << "worker " << i;
  }
  EXPECT_EQ(seen[0].handled_here.load(), 1)
      << "handled by " << g_rec.tid.load() << ", not " << seen[0].tid.load();
  EXPECT_EQ(g_rec.count.load(), 1u);
}

TEST(SignalThreadTest, SignalMasksArePerThread) {
  ScopedHandler handler(SIGUSR1);
  struct Seen {
    std::atomic<int> inherited_usr2{-1}, still_usr2{-1}, usr1_blocked{-1}, usr1_pending{-1};
    std::atomic<int> handled_here{-1};
    std::atomic<pid_t> tid{0};
  } seen;
  std::atomic<uint32_t> step{0}, acks{0};
  std::thread worker;
  {
    // A new thread starts with its creator's mask.
    ScopedBlock block(SIGUSR2);
    worker = std::thread([&] {
      seen.tid.store(gettid());
      seen.inherited_usr2.store(Blocked(SIGUSR2));
      const sigset_t s = SetOf(SIGUSR1);
      pthread_sigmask(SIG_BLOCK, &s, nullptr);
      Bump(&acks);
      AwaitAtLeast(&step, 1);  // the main thread unblocked SIGUSR2 and sent SIGUSR1 here
      seen.still_usr2.store(Blocked(SIGUSR2));
      seen.usr1_blocked.store(Blocked(SIGUSR1));
      seen.usr1_pending.store(Pending(SIGUSR1));
      Bump(&acks);
      AwaitAtLeast(&step, 2);
      pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
      seen.handled_here.store(g_rec.count.load() == 1 && g_rec.tid.load() == gettid());
      Bump(&acks);
    });
    EXPECT_TRUE(AwaitAtLeast(&acks, 1));
  }
  EXPECT_FALSE(Blocked(SIGUSR2));
  EXPECT_FALSE(Blocked(SIGUSR1)) << "the worker's sigmask changed the main thread's";
  // A thread-directed signal that its target blocks stays pending there only.
  ASSERT_OK(tgkill(getpid(), seen.tid.load(), SIGUSR1));
  EXPECT_FALSE(Pending(SIGUSR1)) << "the worker's pending signal shows in the main thread";
  Store(&step, 1);
  EXPECT_TRUE(AwaitAtLeast(&acks, 2));
  EXPECT_EQ(g_rec.count.load(), 0u);
  Store(&step, 2);
  EXPECT_TRUE(AwaitAtLeast(&acks, 3));
  worker.join();
  EXPECT_EQ(seen.inherited_usr2.load(), 1);
  EXPECT_EQ(seen.still_usr2.load(), 1) << "the main thread's unblock changed the worker's mask";
  EXPECT_EQ(seen.usr1_blocked.load(), 1);
  EXPECT_EQ(seen.usr1_pending.load(), 1);
  EXPECT_EQ(seen.handled_here.load(), 1);
  EXPECT_EQ(g_rec.count.load(), 1u);
}

TEST(SignalThreadTest, SigwaitinfoInADedicatedThreadTakesAProcessSignal) {
  // The usual pattern: every thread blocks the signal, one waits for it.
  ScopedHandler handler(SIGUSR1);  // runs only if the signal goes astray
  ScopedBlock block(SIGUSR1);
  std::atomic<uint32_t> ready{0};
  struct Got {
    std::atomic<int> r{0}, code{0}, value{0};
    std::atomic<pid_t> pid{0};
  } got;
  std::thread waiter([&] {
    const sigset_t s = SetOf(SIGUSR1);
    Bump(&ready);
    siginfo_t info = {};
    timespec limit{30, 0};
    got.r.store(sigtimedwait(&s, &info, &limit));
    got.code.store(info.si_code);
    got.pid.store(info.si_pid);
    got.value.store(info.si_value.sival_int);
  });
  ASSERT_TRUE(AwaitAtLeast(&ready, 1));
  sigval value;
  value.sival_int = 1234;
  ASSERT_OK(sigqueue(getpid(), SIGUSR1, value));
  waiter.join();
  EXPECT_EQ(got.r.load(), SIGUSR1);
  EXPECT_EQ(got.code.load(), SI_QUEUE);
  EXPECT_EQ(got.pid.load(), getpid());
  EXPECT_EQ(got.value.load(), 1234);
  EXPECT_EQ(g_rec.count.load(), 0u);
  EXPECT_FALSE(Pending(SIGUSR1));
}

// ---- Default actions: per process ----

TEST(SignalThreadTest, SigtermSentToAWorkerKillsTheProcess) {
  // From another process (the worker's tid comes through a pipe), then from within.
  for (int from_inside = 0; from_inside < 2; from_inside++) {
    SCOPED_TRACE(from_inside ? "tgkill from the process's own main thread" : "tgkill from outside");
    Pipe tids = MakePipe(O_CLOEXEC);
    const int tids_w = tids.w.get();
    const pid_t child = ForkChild([tids_w, from_inside] {
      std::atomic<pid_t> worker_tid{0};
      std::atomic<uint32_t> ready{0};
      std::thread worker([&] {
        worker_tid.store(gettid());
        Bump(&ready);
        BlockForever();
      });
      AwaitAtLeast(&ready, 1);
      const pid_t tid = worker_tid.load();
      if (from_inside) {
        tgkill(getpid(), tid, SIGTERM);
      } else if (write(tids_w, &tid, sizeof(tid)) != sizeof(tid)) {
        _exit(1);
      }
      worker.join();  // never returns: the signal ends the process
      _exit(2);
    });
    tids.w.Reset();
    if (!from_inside) {
      pid_t tid = 0;
      ASSERT_EQ(read(tids.r.get(), &tid, sizeof(tid)), static_cast<ssize_t>(sizeof(tid)));
      ASSERT_OK(tgkill(child, tid, SIGTERM));
    }
    const int status = WaitBounded(child);
    EXPECT_TRUE(KilledBy(status, SIGTERM)) << Describe(status);
  }
}

struct Counters {
  std::atomic<uint64_t> worker{0}, leader{0};
  std::atomic<uint32_t> quit{0};
};

TEST(SignalThreadTest, StopAndContinueReachEveryThread) {
  SharedBox<Counters> c;
  Counters* s = c.get();
  const pid_t child = ForkChild([s] {
    // One thread spins without a system call, the other one yields between increments.
    std::thread worker([s] {
      while (s->quit.load(std::memory_order_relaxed) == 0) {
        s->worker.fetch_add(1, std::memory_order_relaxed);
      }
    });
    while (s->quit.load(std::memory_order_relaxed) == 0) {
      s->leader.fetch_add(1, std::memory_order_relaxed);
      sched_yield();
    }
    worker.join();
    _exit(0);
  });
  auto both_past = [s](uint64_t w, uint64_t l) {
    const int64_t end = NowMs() + 30000;
    while (NowMs() < end) {
      if (s->worker.load() > w && s->leader.load() > l) return true;
      sched_yield();
    }
    return false;
  };
  ASSERT_TRUE(both_past(0, 0)) << "the child's threads never ran";

  ASSERT_OK(kill(child, SIGSTOP));
  int status = WaitBounded(child, WUNTRACED);
  ASSERT_TRUE(status != -1 && WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP)
      << Describe(status);
  // Reported stopped means every thread has stopped: neither counter moves any more.
  const uint64_t w = s->worker.load(), l = s->leader.load();
  Pause();
  EXPECT_EQ(s->worker.load(), w) << "the worker ran on after the stop was reported";
  EXPECT_EQ(s->leader.load(), l) << "the leader ran on after the stop was reported";

  ASSERT_OK(kill(child, SIGCONT));
  status = WaitBounded(child, WCONTINUED);
  EXPECT_TRUE(status != -1 && WIFCONTINUED(status)) << Describe(status);
  EXPECT_TRUE(both_past(w, l)) << "a thread did not resume after SIGCONT";

  Store(&s->quit, 1);
  status = WaitBounded(child);
  EXPECT_TRUE(ExitedWith(status, 0)) << Describe(status);
}

// A thread blocked in a system call stops with its process too: data that
// arrives while the process is stopped is not read until SIGCONT.
TEST(SignalThreadTest, AThreadBlockedInReadStopsWithItsProcess) {
  SharedBox<Counters> c;
  Counters* s = c.get();
  int p[2];
  ASSERT_OK(pipe(p));
  const pid_t child = ForkChild([s, p] {
    close(p[1]);
    std::thread worker([s, p] {
      char ch;
      s->worker.store(1);  // about to block
      if (read(p[0], &ch, 1) == 1) s->leader.store(1);
    });
    worker.join();
    _exit(0);
  });
  close(p[0]);
  const int64_t end = NowMs() + 30000;
  while (s->worker.load() == 0 && NowMs() < end) sched_yield();
  Pause();  // let the worker reach its read
  ASSERT_OK(kill(child, SIGSTOP));
  int status = WaitBounded(child, WUNTRACED);
  ASSERT_TRUE(status != -1 && WIFSTOPPED(status)) << Describe(status);
  ASSERT_EQ(write(p[1], "x", 1), 1);
  Pause();
  EXPECT_EQ(s->leader.load(), 0u) << "the blocked thread read while its process was stopped";
  ASSERT_OK(kill(child, SIGCONT));
  while (s->leader.load() == 0 && NowMs() < end) sched_yield();
  EXPECT_EQ(s->leader.load(), 1u);
  close(p[1]);
  status = WaitBounded(child);
  EXPECT_TRUE(ExitedWith(status, 0)) << Describe(status);
}

// ---- Synchronous signals in a worker ----

struct SegvResult {
  std::atomic<pid_t> worker_tid{0}, handler_tid{0};
  std::atomic<uintptr_t> page{0}, fault_addr{0};
  std::atomic<int> fault_code{0}, value{0};
  std::atomic<uint32_t> handled{0};
};
SegvResult* g_segv = nullptr;

TEST(SignalThreadTest, SegvInAWorkerRunsItsHandlerInThatWorker) {
  SharedBox<SegvResult> r;
  g_segv = r.get();
  const pid_t child = ForkChild([] {
    void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) _exit(1);
    g_segv->page.store(reinterpret_cast<uintptr_t>(page));
    // The handler records where it ran and what it saw, then makes the page writable: the
    // faulting store runs again and succeeds.
    struct sigaction sa = {};
    sa.sa_sigaction = [](int, siginfo_t* info, void*) {
      g_segv->handler_tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
      g_segv->fault_addr.store(reinterpret_cast<uintptr_t>(info->si_addr));
      g_segv->fault_code.store(info->si_code);
      g_segv->handled.fetch_add(1);
      mprotect(reinterpret_cast<void*>(g_segv->page.load()), 4096, PROT_READ | PROT_WRITE);
    };
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, nullptr);
    std::thread worker([page] {
      g_segv->worker_tid.store(gettid());
      volatile int* p = static_cast<volatile int*>(page) + 4;
      *p = 55;
      g_segv->value.store(*p);
    });
    worker.join();
    _exit(0);
  });
  const int status = WaitBounded(child);
  EXPECT_TRUE(ExitedWith(status, 0)) << Describe(status);
  EXPECT_EQ(r->handled.load(), 1u);
  EXPECT_NE(r->worker_tid.load(), 0);
  EXPECT_NE(r->worker_tid.load(), child);
  EXPECT_EQ(r->handler_tid.load(), r->worker_tid.load()) << "the handler ran in another thread";
  EXPECT_EQ(r->fault_addr.load(), r->page.load() + 4 * sizeof(int));
  EXPECT_EQ(r->fault_code.load(), SEGV_ACCERR);
  EXPECT_EQ(r->value.load(), 55);
}

TEST(SignalThreadTest, AbortInAWorkerKillsTheProcessWithSigabrt) {
  const pid_t child = ForkChild([] {
    rlimit none{0, 0};
    setrlimit(RLIMIT_CORE, &none);  // no core file (natively, it would land in the cwd)
    std::thread worker([] { abort(); });
    worker.join();  // never returns
    _exit(1);
  });
  const int status = WaitBounded(child);
  EXPECT_TRUE(KilledBy(status, SIGABRT)) << Describe(status);
}

// ---- exit_group while others sleep ----

TEST(SignalThreadTest, ExitGroupEndsThreadsInNanosleepAndPause) {
  // The leader sleeps in pause and a worker in nanosleep when a third thread calls exit_group.
  static std::atomic<uint32_t> ready;
  ready.store(0);
  const pid_t child = ForkChild([] {
    std::thread([] {
      Bump(&ready);
      timespec long_time{3600, 0};
      for (;;) nanosleep(&long_time, nullptr);
    }).detach();
    std::thread([] {
      AwaitAtLeast(&ready, 2);
      Pause();  // both sleepers are most likely asleep by now; they end either way
      syscall(SYS_exit_group, 9);
    }).detach();
    Bump(&ready);
    for (;;) pause();
  });
  const int status = WaitBounded(child);
  EXPECT_TRUE(ExitedWith(status, 9)) << Describe(status);
}

}  // namespace
}  // namespace husk_test
