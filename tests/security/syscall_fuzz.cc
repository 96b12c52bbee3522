// syscall_fuzz: calls every x86-64 syscall number, implemented by husk or not, with random and
// edge-case arguments for a bounded time, and checks that the kernel under it survives.
// RUN IT ONLY INSIDE A SANDBOX (`husk do`, itself inside husk_fence): natively it would throw
// random system calls at the host kernel. CTest registers only the husk run (security.fuzz.husk).
//
//   --seconds N (60)  --calls N (0: no limit)  --seed N (from the clock; printed)
//   --per-call-timeout-ms N (2000)  --workers N (2)  --trace (each call to stderr first)
//   --only NR, --skip NR,NR,...  fuzz one number only, or leave numbers out
//   --first-gen N     number the first worker N: `--seed S --workers 1 --first-gen N` makes
//                     worker gN's calls again (its calls depend on S and N only; timing and the
//                     files earlier workers left may still change what they do)
//
// The supervisor forks workers. A worker opens a few fds, maps a scratch buffer ending at a
// PROT_NONE page and an arena for the memory-management calls, then loops: it records the call
// in a MAP_SHARED slot, arms a 10 ms ITIMER_REAL (most blocking calls end with EINTR) and makes
// it. A worker that dies is reaped and replaced; after kRecycleCalls it exits on purpose, which
// drops what it piled up (fds, rlimits, masks, mappings). A call without progress for the
// per-call timeout is a hang: the worker is SIGKILLed and counted, blocking is no failure. The
// run FAILs if a SIGKILLed worker never goes away, if the supervisor itself is held up beyond
// the kill grace (the whole sandbox stuck in one call) or if no call was made. A sentry crash
// takes the supervisor with it: `husk do` exits non-zero and the final "syscall_fuzz: OK" line
// is missing; CTest requires both.

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using u64 = uint64_t;
using ull = unsigned long long;

// ---- what gets called ----------------------------------------------------------------------

constexpr long kMaxNr = 470;  // 0..kMaxNr are all called, and the numbers below
// Beyond the table: x32 numbers, far out of range, negative, and values whose low 32 bits name
// a real call (Linux truncates the number to int: 0x100000027 is getpid).
constexpr long kExtraNrs[] = {512,      547,      1000,        4096,        -1,
                              -2,       INT_MAX,  INT_MIN,     0x40000000L, 0x40000000L + 39,
                              LONG_MAX, LONG_MIN, 0xffffffffL, 0x100000027L};
constexpr int kBuckets = kMaxNr + 1 + sizeof(kExtraNrs) / sizeof(kExtraNrs[0]);

long NrOfBucket(int b) { return b <= kMaxNr ? b : kExtraNrs[b - kMaxNr - 1]; }

// Never called, each for one reason. Everything else is called, some with neutered arguments
// (FixArgs): process creation, signals and handles to other processes, address-space changes.
constexpr struct {
  long nr;
  const char* why;
} kDenylist[] = {
    {SYS_rt_sigreturn, "restores a garbage frame from our stack: the worker resumes at a junk pc"},
    {SYS_vfork, "the child runs on the worker's stack until it exits; fork/clone cover creation"},
    {SYS_exit, "ends the worker: nothing to fuzz, only a respawn to pay for"},
    {SYS_exit_group, "ends the worker: nothing to fuzz, only a respawn to pay for"},
    {SYS_ptrace, "could attach to, poke or stop the supervisor or a sibling worker"},
    {SYS_reboot, "would end the whole sandbox if it were ever honoured"},
    {SYS_seccomp, "a random filter kills or traps the worker's own later calls"},
};

const char* DenyReason(long nr) {
  for (const auto& d : kDenylist)
    if (d.nr == nr) return d.why;
  return nullptr;
}

// ---- shared progress -----------------------------------------------------------------------

// One per worker, in a MAP_SHARED|MAP_ANONYMOUS region: the worker writes, the supervisor reads
// (volatile is enough: one writer, x86-64, diagnostics only).
struct Slot {
  volatile u64 seq;      // calls finished
  volatile int64_t nr;   // the call in progress, or the last one
  volatile u64 args[6];  // its arguments
  volatile int in_call;
  volatile uint32_t counts[kBuckets];  // calls made, per bucket
  struct {
    volatile u64 tsc, nr, args[6];  // the last calls and when they started (TSC: no syscall)
  } ring[16];
};

struct Rng {
  u64 s;
  u64 Next() {  // splitmix64
    u64 z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  u64 Below(u64 n) { return Next() % n; }
  bool OneIn(u64 n) { return Below(n) == 0; }
};

struct Options {
  long seconds = 60, timeout_ms = 2000, only = 0;
  u64 calls = 0, seed = 0, first_gen = 1;
  int workers = 2;
  bool has_only = false, trace = false;
  std::set<long> skip;
};

// ---- the worker ----------------------------------------------------------------------------

constexpr u64 kRecycleCalls = 4000;
constexpr size_t kPage = 4096;
constexpr size_t kScratch = 64 * 1024;  // followed by one PROT_NONE page
constexpr size_t kPathArea = 8 * 1024;  // [0, 8K): path strings (and clone3's clone_args)
constexpr size_t kIovArea = 4 * 1024;   // [8K, 12K): {pointer, length} pairs into the rest
constexpr size_t kData = kPathArea + kIovArea;
constexpr size_t kArena = 1024 * 1024;  // where mmap(MAP_FIXED), munmap, mprotect... may act
constexpr int kTraceFd = 777, kNullFd = 778;
constexpr long kTickUs = 10000;  // the ITIMER_REAL armed before each call

// Path strings, NUL-separated; FillScratch adds a > NAME_MAX name, a > PATH_MAX path, a deep one.
constexpr char kPathList[] =
    "/tmp/fz/x\0.\0..\0/tmp/fz\0/tmp/fz/d\0/tmp/fz/new\0/tmp/fz/x/\0/tmp/fz/l\0/tmp/fz/d/../x\0"
    "x\0d\0l\0\0/\0/dev/null\0/dev/zero\0/proc/self/status\0/proc/self/fd/3\0/proc/self/maps\0"
    "/etc/passwd\0/nonexistent/a\0/tmp/fz/sock";
constexpr int kMaxPaths = 32;
const char kNoExec[] = "/nonexistent/husk-fuzz";  // execve's only real path: it runs nothing

struct Worker {
  Rng rng;
  Slot* slot;
  uint8_t *scratch, *arena;
  uintptr_t brk0;
  pid_t self, supervisor;
  std::vector<int> fds;
  size_t path_off[kMaxPaths];
  int num_paths = 0, trace_fd = -1;
  u64 gen;
};

void OnAlarm(int) {}

void ArmWatchdogSignal() {
  struct sigaction sa = {};
  sa.sa_handler = OnAlarm;  // no SA_RESTART: a blocking call returns EINTR
  sigaction(SIGALRM, &sa, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGALRM);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

// Rewrites the scratch buffer: path strings, {pointer, length} pairs, random bytes.
void FillScratch(Worker& w) {
  uint8_t* p = w.scratch;
  memcpy(p, kPathList, sizeof kPathList);
  w.num_paths = 0;
  for (size_t off = 0; off < sizeof kPathList; off += strlen(kPathList + off) + 1) {
    w.path_off[w.num_paths++] = off;
  }
  size_t off = sizeof kPathList;
  const struct {
    size_t len;
    const char* unit;
  } kLong[] = {{300, "n"}, {5000, "a/"}, {600, "../"}};
  for (const auto& l : kLong) {
    w.path_off[w.num_paths++] = off;
    for (size_t i = 0; i < l.len; i++)
      p[off + i] = static_cast<uint8_t>(l.unit[i % strlen(l.unit)]);
    p[off + l.len] = 0;
    off += l.len + 1;
  }
  auto* iov = reinterpret_cast<u64*>(p + kPathArea);
  for (size_t i = 0; i < kIovArea / 8; i += 2) {
    iov[i] = reinterpret_cast<u64>(p + kData + w.rng.Below(kScratch - kData));
    iov[i + 1] = w.rng.OneIn(16) ? w.rng.Next() : w.rng.Below(w.rng.OneIn(4) ? 4096 : 64);
  }
  for (size_t i = kData; i < kScratch; i += 8) {
    const u64 v = w.rng.Next();
    memcpy(p + i, &v, 8);
  }
}

// Best effort: when a fuzzed call (setrlimit, say) makes this fail, the arena stays as the
// fuzzed calls left it.
void MapArena(Worker& w) {
  (void)mmap(w.arena, kArena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
             0);
}

void SetUpWorker(Worker& w) {
  ArmWatchdogSignal();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  setpgid(0, 0);
  // The supervisor's /dev/null (a worker may have unlinked the sandbox's one): the workers'
  // stdio never reaches the test's output or terminal.
  const int null = dup(kNullFd);
  close(kNullFd);
  if (w.trace_fd >= 0) w.trace_fd = dup2(2, kTraceFd);
  for (int fd = 0; fd <= 2; fd++) dup2(null, fd);
  mkdir("/tmp/fz", 0777);
  mkdir("/tmp/fz/d", 0777);
  symlink("l", "/tmp/fz/l");  // a loop: ELOOP
  (void)!chdir("/tmp/fz");    // may fail after an earlier worker's umount or pivot_root
  int p[2], sv[2];
  if (pipe2(p, w.rng.OneIn(2) ? O_NONBLOCK : 0) == 0) {
    w.fds.insert(w.fds.end(), {p[0], p[1]});
    (void)!write(p[1], "fuzz", 4);
  }
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) w.fds.insert(w.fds.end(), {sv[0], sv[1]});
  for (int fd : {null, eventfd(1, 0), open("/tmp/fz/x", O_RDWR | O_CREAT, 0600),
                 open("/tmp/fz", O_RDONLY | O_DIRECTORY), epoll_create1(0)}) {
    if (fd >= 0) w.fds.push_back(fd);
  }
  // The scratch buffer and its guard page; the arena between two holes, so that a range call
  // that runs past its end stops there instead of walking into the worker's other mappings.
  auto* s = static_cast<uint8_t*>(
      mmap(nullptr, kScratch + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  auto* a = static_cast<uint8_t*>(
      mmap(nullptr, kArena + 2 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (s == MAP_FAILED || a == MAP_FAILED) _exit(3);
  mprotect(s + kScratch, kPage, PROT_NONE);
  munmap(a, kPage);
  munmap(a + kPage + kArena, kPage);
  w.scratch = s;
  w.arena = a + kPage;
  MapArena(w);
  FillScratch(w);
  w.brk0 = static_cast<uintptr_t>(syscall(SYS_brk, 0));
  w.self = getpid();
}

// ---- arguments -----------------------------------------------------------------------------

constexpr int64_t kBadFds[] = {-1, 1023, 100000, INT_MAX, -100 /* AT_FDCWD */, 3, 64};
constexpr u64 kLowAddrs[] = {1, 8, 0x1000, 0x10000, 0xdead000, 0x3ff000};
constexpr u64 kKernelAddrs[] = {0xffff800000000000ULL, 0xffff888000000000ULL, 0xffffffff81000000ULL,
                                0xfffffffffffff000ULL, 0xffffffffffffffffULL,
                                // non-canonical, and the last user page
                                0x0000800000000000ULL, 0x8000000000000000ULL, 0x7fffffffffffffffULL,
                                0x00007ffffffff000ULL};
constexpr u64 kHugeLens[] = {SIZE_MAX,    1ULL << 62, 0x7fffffff, 0x80000000,
                             1ULL << 32,  1ULL << 47, 0xffffffff, 1ULL << 20,
                             4096 * 1024, 4095,       4097,       SIZE_MAX / 2};
constexpr int64_t kNegatives[] = {-1, -2, -4095, -4096, INT_MIN, LONG_MIN, -65536, INT_MIN + 1};
constexpr u64 kGuardBack[] = {0, 1, 2, 4, 8, 16, 24, 64, 100, 4095};

template <typename T, size_t N>
T Pick(Rng& r, const T (&a)[N]) {
  return a[r.Below(N)];
}

u64 Ptr(const void* p) { return reinterpret_cast<u64>(p); }

u64 ValidFd(Worker& w) {
  return w.fds.empty() ? 0 : static_cast<u64>(w.fds[w.rng.Below(w.fds.size())]);
}

u64 ArenaAddr(Worker& w) {
  return Ptr(w.arena + w.rng.Below(kArena / kPage) * kPage +
             (w.rng.OneIn(8) ? w.rng.Below(kPage) : 0));
}

// A length for a range that starts at addr in the arena: never past the arena's end, except
// values that wrap around, which Linux rejects before it looks at any mapping.
u64 ArenaLen(Worker& w, u64 addr) {
  const u64 rest = Ptr(w.arena + kArena) - addr;
  // clang-format off
  switch (w.rng.Below(6)) {
    case 0: return 0;
    case 1: return SIZE_MAX;
    case 2: return static_cast<u64>(-4096);
    case 3: return rest;
    default: return w.rng.OneIn(4) ? w.rng.Below(rest + 1) : w.rng.Below(rest / kPage + 1) * kPage;
  }
  // clang-format on
}

u64 Arg(Worker& w) {
  Rng& r = w.rng;
  // clang-format off
  switch (r.Below(17)) {
    case 0: return 0;
    case 1: case 2: return static_cast<u64>(static_cast<int64_t>(r.Below(66)) - 1);  // -1..64
    case 3: return r.Next();
    case 4: return static_cast<u64>(Pick(r, kBadFds));
    case 5: return ValidFd(w);
    case 6: return Ptr(w.scratch + kData + r.Below(kScratch - kData));       // random bytes
    case 7: return Ptr(w.scratch + w.path_off[r.Below(w.num_paths)]);        // a path
    case 8: return Ptr(w.scratch + kPathArea + 16 * r.Below(kIovArea / 16)); // iovec/msghdr-ish
    case 9: return Ptr(w.scratch + kScratch - Pick(r, kGuardBack));  // just before PROT_NONE
    case 10: return Pick(r, kLowAddrs);
    case 11: return Pick(r, kKernelAddrs);
    case 12: return Pick(r, kHugeLens);
    case 13: return static_cast<u64>(r.OneIn(3) ? -static_cast<int64_t>(r.Below(1 << 20))
                                                : Pick(r, kNegatives));
    case 14: return r.OneIn(3) ? 1ULL << r.Below(64)  // flag words
                               : r.Next() & r.Next() & (r.OneIn(2) ? 0xffffffffULL : ~0ULL);
    case 15: return ArenaAddr(w);
    default: return r.Below(4096);
  }
  // clang-format on
}

// A pid that must not name the supervisor (nor, with groups_too, a process group, which could
// hold it): the worker's own pid instead.
void OffSupervisor(Worker& w, u64& v, bool groups_too = true) {
  const int pid = static_cast<int>(v);
  if (pid == w.supervisor || (groups_too && pid <= 0)) v = static_cast<u64>(w.self);
}

// A stopped worker only burns the per-call timeout: stop signals become signal 0.
void NoStop(u64& v) {
  const int sig = static_cast<int>(v);
  if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) v = 0;
}

bool InScratch(Worker& w, u64 p) {
  return p >= Ptr(w.scratch) && p <= Ptr(w.scratch + kScratch - 8);
}

// A signal mask in our scratch buffer must not block SIGALRM, the worker's watchdog.
void AlarmOpen(Worker& w, u64 p) {
  if (InScratch(w, p)) *reinterpret_cast<u64*>(p) &= ~(1ULL << (SIGALRM - 1));
}

u64 BadExecPath(Worker& w) {
  static constexpr u64 kBad[] = {0, 1, 0xffff800000000000ULL, 0x8000000000000000ULL};
  if (w.rng.OneIn(3)) return Ptr(kNoExec);
  if (w.rng.OneIn(3)) return Ptr(w.scratch + kScratch);  // the PROT_NONE page
  return Pick(w.rng, kBad);
}

// Neuters the arguments that could hurt the supervisor or the worker's own bookkeeping (text,
// stack, TLS, its slot). Returns false to skip the call.
bool FixArgs(Worker& w, long nr, u64* a) {
  // clang-format off
  switch (nr) {
    // Signals: never to the supervisor or a process group; no stop signals.
    case SYS_kill: case SYS_tkill: case SYS_rt_sigqueueinfo:
      OffSupervisor(w, a[0]); NoStop(a[1]); break;
    case SYS_tgkill: case SYS_rt_tgsigqueueinfo:
      OffSupervisor(w, a[0]); OffSupervisor(w, a[1]); NoStop(a[2]); break;
    case SYS_pidfd_send_signal: NoStop(a[1]); break;
    // No pidfd to the supervisor, no writes into it, no limits or scheduling policy on it.
    case SYS_pidfd_open: case SYS_process_vm_writev: case SYS_prlimit64:
    case SYS_sched_setscheduler: case SYS_sched_setparam: case SYS_sched_setattr:
      OffSupervisor(w, a[0], false); break;
    case SYS_setpriority: OffSupervisor(w, a[1], false); break;
    // F_SETOWN to the supervisor or a group: SIGIO/SIGURG would reach it.
    case SYS_fcntl: if (static_cast<int>(a[1]) == F_SETOWN) OffSupervisor(w, a[2]); break;
    // prctl(PR_SET_SECCOMP) is seccomp(2), denied.
    case SYS_prctl: return static_cast<int>(a[0]) != PR_SET_SECCOMP;
    // SIGALRM is the worker's watchdog: never ignored, never blocked by a wait's mask.
    case SYS_rt_sigaction: if (static_cast<int>(a[0]) == SIGALRM) a[1] = 0; break;
    case SYS_rt_sigprocmask: AlarmOpen(w, a[1]); break;
    case SYS_rt_sigsuspend: AlarmOpen(w, a[0]); break;
    case SYS_ppoll: AlarmOpen(w, a[3]); break;
    case SYS_epoll_pwait: case 441 /* epoll_pwait2 */: AlarmOpen(w, a[4]); break;
    case SYS_pselect6: if (InScratch(w, a[5])) AlarmOpen(w, *reinterpret_cast<u64*>(a[5])); break;
    // exec only what cannot be executed.
    case SYS_execve: a[0] = BadExecPath(w); break;
    case SYS_execveat: a[1] = BadExecPath(w); a[4] &= ~static_cast<u64>(AT_EMPTY_PATH); break;
    // Address-space changes act inside the arena only.
    case SYS_mmap:
      if (a[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE)) a[1] = ArenaLen(w, a[0] = ArenaAddr(w));
      break;
    case SYS_munmap: case SYS_mprotect: case SYS_madvise: case SYS_pkey_mprotect:
    case SYS_remap_file_pages: case 462 /* mseal */: a[1] = ArenaLen(w, a[0] = ArenaAddr(w)); break;
    case SYS_mremap:
      a[1] = ArenaLen(w, a[0] = ArenaAddr(w));
      if (a[3] & MREMAP_FIXED) a[2] = ArenaLen(w, a[4] = ArenaAddr(w));
      break;
    case SYS_shmat: a[1] = w.rng.OneIn(2) ? 0 : ArenaAddr(w); break;
    case SYS_shmdt: a[0] = ArenaAddr(w); break;
    // Never below the worker's break (static glibc keeps its TLS there); far above is fine.
    case SYS_brk:
      if (a[0] < w.brk0 || a[0] - w.brk0 < (1ULL << 40))
        a[0] = w.rng.OneIn(8) ? 0 : w.brk0 + w.rng.Below(64 << 20);
      break;
    // clang-format on
    // The child of clone/clone3 stays a separate copy (no CLONE_VM, SIGHAND, THREAD or SETTLS,
    // no stack) and exits at once (Spawn); a CLONE_PARENT child's exit signal reaches the
    // supervisor, so it is SIGCHLD; others are mostly SIGCHLD, sometimes anything but a stop.
    case SYS_clone:
    case SYS_clone3: {
      constexpr u64 kSafe = CLONE_FS | CLONE_FILES | CLONE_SYSVSEM | CLONE_VFORK | CLONE_PARENT |
                            CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID |
                            CLONE_PIDFD | CLONE_UNTRACED | CLONE_IO | CLONE_NEWNS | CLONE_NEWUTS |
                            CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                            CLONE_NEWCGROUP;
      const u64 flags = a[0] & kSafe;
      u64 sig = (flags & CLONE_PARENT) || !w.rng.OneIn(8) ? SIGCHLD : w.rng.Below(65);
      NoStop(sig);
      if (nr == SYS_clone) {
        a[0] = flags | sig;
        a[1] = a[4] = 0;  // stack, tls
        return true;
      }
      auto* ca = reinterpret_cast<u64*>(w.scratch + kPathArea - 96);  // struct clone_args
      memset(ca, 0, 88);
      ca[0] = flags;
      ca[1] = Ptr(w.scratch + kScratch - 64);                           // pidfd
      ca[2] = Ptr(w.scratch + kScratch - 128);                          // child_tid
      ca[3] = w.rng.OneIn(4) ? a[2] : Ptr(w.scratch + kScratch - 192);  // parent_tid
      ca[4] = sig;                                                      // exit_signal
      a[0] = Ptr(ca);
      a[1] = w.rng.OneIn(4) ? a[1] : (w.rng.OneIn(2) ? 64 : 88);  // size
      return true;
    }
    default:
      break;
  }
  return true;
}

// fork, clone and clone3 run for real, with the flags FixArgs left; the child exits at once.
void Spawn(long nr, const u64* a) {
  const long r = nr == SYS_fork ? syscall(SYS_fork) : syscall(nr, a[0], a[1], a[2], a[3], a[4]);
  if (r == 0) _exit(0);
  int st;
  while (r > 0 && waitpid(static_cast<pid_t>(r), &st, __WALL) < 0 && errno == EINTR) {
  }
}

[[noreturn]] void RunWorker(Worker& w, const Options& o) {
  SetUpWorker(w);
  Slot* s = w.slot;
  int only_bucket = 0;
  for (int b = 0; b < kBuckets; b++) {
    if (o.has_only && NrOfBucket(b) == o.only) only_bucket = b;
  }
  const itimerval tick = {{0, 0}, {0, kTickUs}};
  for (u64 i = 0; i < kRecycleCalls; i++) {
    if (i % 32 == 31) ArmWatchdogSignal();
    if (i % 256 == 255) {
      FillScratch(w);
      MapArena(w);
    }
    const int b = o.has_only ? only_bucket : static_cast<int>(w.rng.Below(kBuckets));
    const long nr = o.has_only ? o.only : NrOfBucket(b);
    if (DenyReason(nr) || o.skip.count(nr)) continue;
    u64 a[6];
    for (u64& v : a) v = Arg(w);
    if (w.rng.OneIn(3)) a[0] = ValidFd(w);  // many calls take an fd first
    if (!FixArgs(w, nr, a)) continue;
    auto& h = s->ring[s->seq % 16];
    s->nr = nr;
    h.nr = static_cast<u64>(nr);
    for (int k = 0; k < 6; k++) {
      s->args[k] = a[k];
      h.args[k] = a[k];
    }
    h.tsc = __rdtsc();
    s->counts[b] = s->counts[b] + 1;
    if (w.trace_fd >= 0) {  // no malloc here: the fuzzed brk calls move the heap's end
      char line[200];
      const int n = snprintf(
          line, sizeof line, "fz g%llu #%llu nr=%ld %#llx %#llx %#llx %#llx %#llx %#llx\n",
          (ull)w.gen, (ull)i, nr, (ull)a[0], (ull)a[1], (ull)a[2], (ull)a[3], (ull)a[4], (ull)a[5]);
      (void)!write(w.trace_fd, line, static_cast<size_t>(n));
    }
    setitimer(ITIMER_REAL, &tick, nullptr);
    s->in_call = 1;
    if (nr == SYS_fork || nr == SYS_clone || nr == SYS_clone3) {
      Spawn(nr, a);
    } else {
      syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    }
    s->in_call = 0;
    s->seq = s->seq + 1;
  }
  _exit(0);
}

// ---- the supervisor ------------------------------------------------------------------------

u64 NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<u64>(ts.tv_sec) * 1000 + static_cast<u64>(ts.tv_nsec) / 1000000;
}

std::string CallText(long long nr, const volatile u64* a) {
  char buf[200];
  snprintf(buf, sizeof buf, "nr=%lld args=%#llx %#llx %#llx %#llx %#llx %#llx", nr, (ull)a[0],
           (ull)a[1], (ull)a[2], (ull)a[3], (ull)a[4], (ull)a[5]);
  return buf;
}

std::string SlotText(const Slot& s) {
  return CallText(s.nr, s.args) + (s.in_call ? "" : " (returned)");
}

// A worker's last calls, oldest first, each with how long it took (from the TSC).
void PrintRecent(const Slot& s, u64 tsc_now, double tsc_per_ms) {
  std::vector<int> order;
  for (int k = 0; k < 16; k++) {
    if (s.ring[k].tsc) order.push_back(k);
  }
  std::sort(order.begin(), order.end(),
            [&](int x, int y) { return s.ring[x].tsc < s.ring[y].tsc; });
  for (size_t j = 0; j < order.size(); j++) {
    const auto& h = s.ring[order[j]];
    const u64 next = j + 1 < order.size() ? s.ring[order[j + 1]].tsc : tsc_now;
    printf("    %9.1f ms %s\n", static_cast<double>(next - h.tsc) / tsc_per_ms,
           CallText(static_cast<long long>(h.nr), h.args).c_str());
  }
}

std::string KeyText(long k) { return std::to_string(k); }
std::string KeyText(const std::pair<long, long>& k) {
  return std::to_string(k.first) + "/" + std::to_string(k.second);
}

template <typename K>
std::string CountsText(const std::map<K, u64>& m, u64* total = nullptr) {
  std::string out;
  for (const auto& [k, n] : m) {
    out += " " + KeyText(k) + ":" + std::to_string(n);
    if (total) *total += n;
  }
  return out;
}

struct Live {
  pid_t pid = 0;
  u64 gen = 0, last_seq = 0, last_change = 0, killed_at = 0;
};

int Supervise(const Options& o) {
  const size_t bytes = (sizeof(Slot) * static_cast<size_t>(o.workers) + kPage - 1) / kPage * kPage;
  auto* slots = static_cast<Slot*>(
      mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (slots == MAP_FAILED) return perror("syscall_fuzz: mmap"), 1;
  // Nothing a worker sends (SIGIO, a CLONE_PARENT child's exit signal...) may stop us.
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  const pid_t me = getpid();
  std::vector<Live> live(static_cast<size_t>(o.workers));
  const u64 start = NowMs(), end = start + static_cast<u64>(o.seconds) * 1000, tsc0 = __rdtsc();
  const u64 timeout = static_cast<u64>(o.timeout_ms), grace = std::max<u64>(10000, 2 * timeout);
  u64 calls = 0, started = 0, recycled = 0, exits = 0, hangs = 0, orphans = 0, stalls = 0;
  u64 worst_stall = 0, last_loop = start, counts[kBuckets] = {};
  std::map<long, u64> deaths, hang_calls;            // by signal, by nr
  std::map<std::pair<long, long>, u64> death_calls;  // by signal and nr
  bool stopping = false, failed = false;
  int printed[2] = {0, 0};
  auto note = [&](const char* what, const Live& l, const Slot& s, int sig) {
    if (printed[*what == 'h']++ >= 20) return;  // the first 20 deaths and 20 hangs
    printf("syscall_fuzz: %s: worker g%llu after %llu calls, signal %d (%s): %s\n", what,
           (ull)l.gen, (ull)s.seq, sig, sig ? strsignal(sig) : "none", SlotText(s).c_str());
  };
  auto finish = [&](size_t i, int status) {
    Slot& s = slots[i];
    calls += s.seq;
    for (int b = 0; b < kBuckets; b++) counts[b] += s.counts[b];
    if (live[i].killed_at) {
      // a hang (counted when killed), or the end of the run
    } else if (WIFSIGNALED(status)) {
      const int sig = WTERMSIG(status);
      deaths[sig]++;
      death_calls[{sig, static_cast<long>(s.nr)}]++;
      note("death", live[i], s, sig);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !s.in_call) {
      recycled++;
    } else {
      exits++;
      printf("syscall_fuzz: worker g%llu exited with status %d: %s\n", (ull)live[i].gen,
             WEXITSTATUS(status), SlotText(s).c_str());
    }
    live[i] = Live{};
  };
  for (;;) {
    fflush(stdout);
    const u64 now = NowMs();
    if (now - last_loop > timeout) {  // we were held up ourselves: the sandbox was stuck
      stalls++;
      worst_stall = std::max(worst_stall, now - last_loop);
      failed |= now - last_loop > grace;
      printf("syscall_fuzz: %s: the supervisor was held up for %llu ms; the workers' last calls:\n",
             now - last_loop > grace ? "FAIL" : "stall", (ull)(now - last_loop));
      const u64 tsc = __rdtsc();
      for (size_t i = 0; i < live.size(); i++) {
        if (!live[i].pid) continue;
        printf("  g%llu, now in %s\n", (ull)live[i].gen, SlotText(slots[i]).c_str());
        PrintRecent(slots[i], tsc,
                    static_cast<double>(tsc - tsc0) / static_cast<double>(now - start));
      }
    }
    last_loop = now;
    u64 total = calls;
    for (size_t i = 0; i < live.size(); i++) total += live[i].pid ? slots[i].seq : 0;
    if (!stopping && (now >= end || (o.calls && total >= o.calls))) {
      stopping = true;
      for (Live& l : live) {
        if (l.pid && !l.killed_at) kill(l.pid, SIGKILL), l.killed_at = now;
      }
    }
    for (size_t i = 0; i < live.size() && !stopping; i++) {
      if (live[i].pid) continue;
      memset(&slots[i], 0, sizeof(Slot));
      const u64 gen = o.first_gen + started++;
      const pid_t pid = fork();
      if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, nullptr);
        static Worker w;
        w.rng.s = o.seed ^ (gen * 0xd1342543de82ef95ULL);
        w.slot = &slots[i];
        w.supervisor = me;
        w.gen = gen;
        w.trace_fd = o.trace ? 0 : -1;
        RunWorker(w, o);
      }
      if (pid < 0) {
        perror("syscall_fuzz: fork");
        failed = stopping = true;
        break;
      }
      live[i] = Live{pid, gen, 0, now, 0};
    }
    int status;
    for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG | __WALL)) > 0;) {
      size_t i = 0;
      while (i < live.size() && live[i].pid != pid) i++;
      if (i < live.size()) {
        finish(i, status);
      } else {
        orphans++;  // a worker's child, reparented to us
      }
    }
    bool any = false;
    for (size_t i = 0; i < live.size(); i++) {
      Live& l = live[i];
      if (!l.pid) continue;
      any = true;
      if (slots[i].seq != l.last_seq) {
        l.last_seq = slots[i].seq;
        l.last_change = now;
      } else if (!l.killed_at && now - l.last_change > timeout) {
        hangs++;
        hang_calls[static_cast<long>(slots[i].nr)]++;
        note("hang", l, slots[i], 0);
        kill(l.pid, SIGKILL);
        l.killed_at = now;
      } else if (l.killed_at && now - l.killed_at > grace) {
        printf("syscall_fuzz: FAIL: worker g%llu (pid %d) still alive %llu ms after SIGKILL: %s\n",
               (ull)l.gen, l.pid, (ull)grace, SlotText(slots[i]).c_str());
        failed = true;
        calls += slots[i].seq;
        l = Live{};  // give up on it
      }
    }
    if (stopping && !any) break;
    const timespec nap = {0, 10 * 1000 * 1000};
    nanosleep(&nap, nullptr);
  }

  const double secs = static_cast<double>(NowMs() - start) / 1000.0;
  const double rate = secs > 0 ? static_cast<double>(calls) / secs : 0;
  printf(
      "syscall_fuzz: %llu calls in %.1f s (%.0f/s); workers: %llu started, %llu recycled, "
      "%llu exited; %llu orphans reaped\n",
      (ull)calls, secs, rate, (ull)started, (ull)recycled, (ull)exits, (ull)orphans);
  std::string ranges, never;
  for (int lo = 0; lo <= kMaxNr; lo += 32) {
    u64 n = 0;
    for (int b = lo; b < lo + 32 && b <= kMaxNr; b++) n += counts[b];
    ranges += " " + std::to_string(lo) + "-" + std::to_string(std::min<long>(lo + 31, kMaxNr)) +
              ":" + std::to_string(n);
  }
  u64 extra = 0, dead = 0;
  for (int b = kMaxNr + 1; b < kBuckets; b++) extra += counts[b];
  for (int b = 0; b < kBuckets; b++) {
    const long nr = NrOfBucket(b);
    if (!counts[b]) never += " " + std::to_string(nr) + (DenyReason(nr) ? "(denied)" : "");
  }
  printf("syscall_fuzz: calls per nr range:%s other:%llu\n", ranges.c_str(), (ull)extra);
  if (!o.has_only)
    printf("syscall_fuzz: never called:%s\n", never.empty() ? " none" : never.c_str());
  const std::string by_sig = CountsText(deaths, &dead);
  printf("syscall_fuzz: worker deaths: %llu, signal:count%s\n", (ull)dead, by_sig.c_str());
  printf("syscall_fuzz: deaths by signal/last nr:count%s\n", CountsText(death_calls).c_str());
  printf("syscall_fuzz: hangs killed: %llu, nr:count%s; supervisor stalls: %llu (worst %llu ms)\n",
         (ull)hangs, CountsText(hang_calls).c_str(), (ull)stalls, (ull)worst_stall);
  const bool ok = !failed && calls > 0;
  printf("syscall_fuzz: %s calls=%llu seconds=%.1f rate=%.0f/s deaths=%llu hangs=%llu seed=%llu\n",
         ok ? "OK" : "FAIL", (ull)calls, secs, rate, (ull)dead, (ull)hangs, (ull)o.seed);
  fflush(stdout);
  return ok ? 0 : 1;
}

[[noreturn]] void Usage() {
  fprintf(stderr,
          "usage: syscall_fuzz [--seconds N] [--calls N] [--seed N] [--per-call-timeout-ms N]\n"
          "         [--workers N] [--only NR] [--skip NR,NR,...] [--first-gen N] [--trace]\n"
          "Run it only inside husk (`husk do -- syscall_fuzz ...`), never natively.\n");
  exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  o.seed = static_cast<u64>(ts.tv_sec) * 1000000007ULL + static_cast<u64>(ts.tv_nsec);
  for (int i = 1; i < argc; i++) {
    const std::string f = argv[i];
    if (f == "--trace") {
      o.trace = true;
      continue;
    }
    if (i + 1 >= argc) Usage();
    char* v = argv[++i];
    char* endp;
    errno = 0;
    const long long n = strtoll(v, &endp, 0);
    const bool num = errno == 0 && *endp == 0 && endp != v, pos = num && n > 0;
    if (f == "--seconds" && num && n >= 0) {
      o.seconds = n;
    } else if (f == "--calls" && num && n >= 0) {
      o.calls = static_cast<u64>(n);
    } else if (f == "--seed") {
      o.seed = strtoull(v, nullptr, 0);
    } else if (f == "--per-call-timeout-ms" && pos) {
      o.timeout_ms = n;
    } else if (f == "--workers" && pos && n <= 64) {
      o.workers = static_cast<int>(n);
    } else if (f == "--first-gen" && pos) {
      o.first_gen = static_cast<u64>(n);
    } else if (f == "--only" && num) {
      o.has_only = true;
      o.only = n;
    } else if (f == "--skip") {
      for (char* p = v; *p; p += *p == ',') {
        o.skip.insert(strtol(p, &endp, 0));
        if (endp == p || (*endp && *endp != ',')) Usage();
        p = endp;
      }
    } else {
      Usage();
    }
  }
  if (o.has_only && (DenyReason(o.only) || o.skip.count(o.only))) {
    fprintf(stderr, "syscall_fuzz: %ld is denied or skipped\n", o.only);
    return 2;
  }
  printf("syscall_fuzz: seed=%llu seconds=%ld calls=%llu per-call-timeout-ms=%ld workers=%d\n",
         (ull)o.seed, o.seconds, (ull)o.calls, o.timeout_ms, o.workers);
  fflush(stdout);
  mkdir("/tmp/fz", 0777);
  if (dup2(open("/dev/null", O_RDWR), kNullFd) != kNullFd)
    return perror("syscall_fuzz: /dev/null"), 1;
  return Supervise(o);
}
