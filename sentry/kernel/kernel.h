// Kernel, ThreadGroup and Task: the sentry's process model.
//
// Every application thread is a Task and one sentry host thread (1:1). A
// task's thread runs application code through the platform and handles its
// syscalls. A ThreadGroup is a process: the threads of one clone(CLONE_THREAD)
// family and what they share (ids, limits, the shared signal queue, exit and
// job-control state). Memory, descriptors, filesystem context and signal
// handlers are shared objects of their own, as clone(2)'s CLONE_VM,
// CLONE_FILES, CLONE_FS and CLONE_SIGHAND share them.
//
// Locking: Kernel::mu is the big kernel lock. A task holds it while it runs
// sentry code (syscall handlers, faults) and drops it while application code
// runs and while it blocks (Kernel::cv waits, host I/O on stdio, sleeps).
// It is the only lock above MemoryManager::mu_ and MemoryFile::mu_.
//
// How it gives way: the subsystems below it already have locks of their own
// (the memory manager, the memory file and its caches, tmpfs and overlay
// instances, epoll, the timer queue), so the big lock guards only the
// process model itself (task and thread-group fields, the task table, signal
// queues, wait queues) and the VFS's dentry tree. As threads of one process
// come to contend for it, it splits in this order: (1) a per-ThreadGroup
// lock for signal state and a per-Task lock for its own fields, with the
// task table under a reader/writer lock (kill and wait4 look up, clone and
// exit change it); (2) a lock per dentry for the VFS tree, with rename
// taking the two parents in address order as Linux does; (3) futex buckets
// by key. Each step moves annotations from kernel().mu to the new lock and
// keeps the order: process-model locks, then VFS, then MemoryManager::mu_,
// then the leaves (MemoryFile::mu_, FileCache, tmpfs/overlay, platform).
//
// Clang checks the annotations (-Wthread-safety in the HUSK_FUZZ build):
// syscall handlers and Task methods that need the lock say
// ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) / (kernel().mu). There is one
// Kernel, so every task's kernel().mu is the same lock, which the analysis
// cannot know: code acting on another task (a parent, a signal's target)
// states it with that task's kernel().mu.AssertHeld(). Kernel is defined
// before Task so that Task's annotations can name its lock.
#ifndef HUSK_SENTRY_KERNEL_KERNEL_H_
#define HUSK_SENTRY_KERNEL_KERNEL_H_

#include <sys/resource.h>

#include <array>
#include <atomic>
#include <bitset>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/result.h"
#include "platform/platform.h"
#include "sentry/kernel/caps.h"
#include "sentry/kernel/cputime.h"
#include "sentry/kernel/fd_table.h"
#include "sentry/kernel/futex.h"
#include "sentry/kernel/itimer.h"
#include "sentry/kernel/posix_timers.h"
#include "sentry/loader/loader.h"
#include "sentry/memfile/memfile.h"
#include "sentry/mm/mm.h"
#include "sentry/time/sandbox_clock.h"
#include "sentry/vfs/vfs.h"
#include "sentry/vfs/waiter.h"

namespace husk {

class Kernel;
class Task;
namespace tty {
class Terminal;
}  // namespace tty

// Kernel-internal errnos (Linux's include/linux/errno.h). A handler
// interrupted by a signal returns one; the syscall exit path turns it into a
// restart of the call or EINTR, so the application never sees it.
inline constexpr int kERestartSys = 512;     // restart if the handler has SA_RESTART
inline constexpr int kERestartNoIntr = 513;  // always restart
inline constexpr int kERestartNoHand = 514;  // restart only if no handler runs
inline constexpr int kERestartBlock = 516;   // like NoHand (restart_syscall comes later)

// The segment selectors of 64-bit user code (__USER_CS, __USER_DS).
inline constexpr uint64_t kUserCs = 0x33;
inline constexpr uint64_t kUserDs = 0x2b;

inline constexpr int kMaxSignal = 64;
// The bit of signal sig in a signal mask (sigset_t's first word).
constexpr uint64_t SignalBit(int sig) { return uint64_t{1} << (sig - 1); }
// Signals no mask can hold back (sigprocmask(2)).
inline constexpr uint64_t kUnblockableSignals = SignalBit(SIGKILL) | SignalBit(SIGSTOP);
// A siginfo for a signal sent by process `pid` (user `uid`) with `code`.
siginfo_t MakeSigInfo(int sig, int code, int pid, uint32_t uid);
// How a child's exit shows in SIGCHLD and waitid: si_code (CLD_EXITED,
// CLD_KILLED, CLD_DUMPED) and si_status, from its wait status.
struct ChildExit {
  int code;
  int status;
};
ChildExit ChildExitOf(int wait_status);

// struct kernel_sigaction as rt_sigaction(2) passes it on x86_64.
struct SigAction {
  uint64_t handler = 0;  // SIG_DFL
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;
};

// Pending signals of a thread or of a thread group: standard signals
// coalesce, real-time ones queue with their siginfo.
class SignalQueue {
 public:
  uint64_t pending() const { return pending_; }
  size_t queued() const { return queued_; }
  // Queues info; false if a real-time signal found `limit` queued already.
  bool Push(const siginfo_t& info, uint64_t limit);
  // Forgets every pending instance of sig.
  void Drop(int sig);
  // Removes the lowest pending signal among `allowed`, synchronous faults
  // first (Linux's SYNCHRONOUS_MASK).
  bool Take(uint64_t allowed, siginfo_t* out);

 private:
  std::array<std::deque<siginfo_t>, kMaxSignal + 1> q_;
  uint64_t pending_ = 0;
  size_t queued_ = 0;
};

// A set of CPUs (sched_setaffinity(2)), as large as glibc's cpu_set_t.
inline constexpr int kMaxCpus = 1024;
using CpuMask = std::bitset<kMaxCpus>;

// Signal dispositions, shared by CLONE_SIGHAND.
struct SignalHandlers {
  std::array<SigAction, kMaxSignal + 1> actions{};
};

// A process: what the threads of a thread group share. Guarded by the big
// kernel lock.
class ThreadGroup {
 public:
  explicit ThreadGroup(int tgid) : tgid(tgid) {}

  int tgid;
  std::vector<Task*> threads;  // the threads that have not exited, in creation order
  int ppid = 0;                // the parent process
  int parent_thread = 0;       // the thread of it that forked this one (wait4's __WNOTHREAD)
  int pgid = 0, sid = 0;
  // The controlling terminal (sentry/kernel/tty.h): inherited by fork,
  // dropped by setsid and when the session's terminal hangs up.
  std::shared_ptr<tty::Terminal> ctty;
  int exit_signal = SIGCHLD;  // sent to the parent when the process ends
  std::array<struct rlimit, RLIM_NLIMITS> rlimits{};
  SignalQueue shared_pending;  // process-directed signals
  vfs::DentryRef exe;
  std::vector<std::string> argv;
  std::string auxv;     // the auxiliary vector exec gave the program (/proc/pid/auxv)
  std::string environ;  // the environment exec gave it, NUL-terminated strings (/proc/pid/environ)
  // Where exec put the argument and environment strings in the process's
  // memory, [arg_start, arg_end) and [env_start, env_end): what
  // /proc/<pid>/cmdline and environ read, so that a program rewriting its
  // argv in place (setproctitle) shows there as on Linux. Zero: not known.
  uintptr_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;

  // Group exit (exit_group, a fatal signal): every thread is on its way out
  // and the process's status is exit_code.
  bool exiting = false;
  int exit_code = 0;
  // The thread in execve waiting for the others to go (de_thread), or null.
  Task* execing = nullptr;
  // Set when the last thread has exited: the status wait4 reports.
  bool zombie = false;
  int exit_status = 0;

  // Job control: stopped by a stop signal until SIGCONT or SIGKILL; wait4
  // reports each change once (WUNTRACED, WCONTINUED).
  bool stopped = false;
  int stop_report = 0;
  bool cont_report = false;

  // Woken when a child or a tracee changes state (exits, stops, continues): wait4.
  WaitQueue child_events;
  // Tracees of this process's threads that exited and were not its own
  // children: (tid, wait status) for wait4 to report once.
  std::vector<std::pair<int, int>> tracee_exits;

  // Process control (issue 12; prctl(2), pidfds).
  bool child_subreaper = false;  // PR_SET_CHILD_SUBREAPER: orphans below come here
  int dumpable = 1;              // PR_SET_DUMPABLE (Linux keeps it in the mm)
  bool execed = false;           // called execve since fork (setpgid's EACCES)
  // /proc/<pid>/oom_score_adj (Linux's signal->oom_score_adj, -1000..1000)
  // and the floor below which only CAP_SYS_RESOURCE lowers it
  // (oom_score_adj_min); both inherited by fork, kept by exec.
  int oom_score_adj = 0;
  int oom_score_adj_min = 0;
  // /proc/<pid>/coredump_filter (Linux keeps it in mm->flags; fork and exec
  // keep it): MMF_DUMP_FILTER_DEFAULT, anonymous private and shared memory,
  // ELF headers and private huge pages.
  uint32_t coredump_filter = 0x33;
  WaitQueue exit_events;  // POLLIN when the process has ended (pidfd poll)
  // Called with the wait status when the process ends, for a process
  // started from outside the sandbox (the OCI runtime's exec), which has
  // no parent inside to reap it.
  std::function<void(int)> on_exit;
  // Killed by the out-of-memory killer, at that moment: while it dies
  // (and gives its memory back) no other process is chosen.
  std::optional<absl::Time> oom_killed_at;
};

// A UTS namespace (uts_namespaces(7)): the names uname(2) reports, which
// sethostname(2), setdomainname(2) and /proc/sys/kernel/{hostname,domainname}
// change. Tasks share one until unshare(CLONE_NEWUTS) or clone(CLONE_NEWUTS)
// gives a task a copy of its own (Linux's nsproxy->uts_ns, per task). Under
// the kernel lock.
struct UtsNamespace {
  std::string hostname = "husk";
  std::string domainname = "(none)";
};

class Kernel {
 public:
  Kernel(platform::Platform& platform, MemoryFile& mf) : platform_(platform), mf_(mf) {}
  ~Kernel() {
    if (root != nullptr) root->ReleaseTree();
  }

  platform::Platform& platform() { return platform_; }
  // The sandbox's memory as the application sees it (sysinfo, /proc/meminfo):
  // the limit, and what is charged against it.
  uint64_t MemoryTotal() const;
  uint64_t MemoryUsed() const;
  MemoryFile& memory_file() { return mf_; }

  absl::Mutex mu;    // the big kernel lock (see the top of this file)
  absl::CondVar cv;  // signalled when any task exits or execs

  vfs::DentryRef root;
  RealTimers real_timers{*this};    // ITIMER_REAL of every process
  PosixTimers posix_timers{*this};  // timer_create(2) timers of every process
  FutexTable futexes;               // tasks in futex(2) waits
  // The first UTS namespace: task 1's, and every task's that made no other.
  std::shared_ptr<UtsNamespace> init_uts = std::make_shared<UtsNamespace>();
  std::string cpuinfo;  // captured from the host at boot (the sentry has no /proc after)
  int cpus = 1;         // the processors cpuinfo lists: the sandbox's CPUs are 0..cpus-1
  bool strace = false;
  // Task 1 is a container's init (the OCI runtime's, not husk do's): it
  // has the init of a PID namespace's signal rules (UnkillableInitDrops).
  bool container_init = false;
  int log_fd = 2;
  // The vDSO every exec maps (sentry/vdso; none if boot made none).
  loader::Vdso vdso;

  // Creates task 1 running path; it starts when StartTask is called.
  Result<std::shared_ptr<Task>> CreateInitTask(const std::string& path,
                                               const std::vector<std::string>& argv,
                                               const std::vector<std::string>& envp,
                                               const std::string& cwd);
  // A fresh task id.
  int AllocatePid() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return next_pid_++; }
  void AddTask(std::shared_ptr<Task> t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void RemoveTask(int tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The task with this thread id (any thread; a process's leader by its pid).
  std::shared_ptr<Task> FindTask(int tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Every process not yet reaped, by pid (zombies included, as /proc and
  // kill(2) see them on Linux).
  std::vector<int> Pids() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The thread ids of process pid that have not exited (a leader that
  // exited before its threads stays listed, as a zombie thread).
  std::vector<int> Tids(int pid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Tasks (zombies included, as Linux counts them until reaped) whose real
  // uid is uid: what RLIMIT_NPROC limits.
  uint64_t CountTasksOfUser(uint32_t uid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The tasks ptrace(2) attached to a thread of process tgid.
  std::vector<std::shared_ptr<Task>> Tracees(int tgid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The processes (their leaders' tasks) whose parent is process ppid.
  std::vector<std::shared_ptr<Task>> Children(int ppid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Handles the syscall in a task's registers (set by the syscalls library,
  // which sits above the kernel).
  void (*dispatch)(Task&) = nullptr;
  // Starts a host thread running t. A forked child creates its own address
  // space host process from that thread (mm_without_as: ptrace ties a
  // tracee to its tracer thread); a task sharing its creator's memory
  // adopts `thread`, made by NewThread in that address space. Waits until
  // the task runs: EAGAIN if the host refused the thread or the address
  // space (the task never ran; the caller removes it).
  Status StartTask(const std::shared_ptr<Task>& t, std::unique_ptr<MemoryManager> mm_without_as,
                   std::optional<platform::ThreadToken> thread = std::nullopt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Starts task 1: its thread execs path (reporting a failure on stderr
  // with the shell's conventions, 127 for a missing program, 126 otherwise).
  void StartInit(std::shared_ptr<Task> t, const std::string& path, std::vector<std::string> argv,
                 std::vector<std::string> envp);
  // Blocks until task 1 exits; returns its wait status.
  int WaitForInit();
  // The task whose host thread is the caller.
  static Task* Current();
  static void SetCurrent(Task* t);

  // Unimplemented syscalls, by number (ENOSYS, never forwarded).
  void CountUnimplemented(int nr);
  std::map<int, uint64_t> Unimplemented();

 private:
  platform::Platform& platform_;
  MemoryFile& mf_;
  // Re-keys a task under a new thread id (execve by a non-leader thread).
  void RenameTask(int old_tid, int new_tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  std::map<int, std::shared_ptr<Task>> tasks_ ABSL_GUARDED_BY(mu);
  int next_pid_ ABSL_GUARDED_BY(mu) = 1;
  bool init_done_ ABSL_GUARDED_BY(mu) = false;
  int init_status_ ABSL_GUARDED_BY(mu) = 0;
  absl::Mutex unimpl_mu_;
  std::map<int, uint64_t> unimplemented_ ABSL_GUARDED_BY(unimpl_mu_);
  friend class Task;
};

class Task {
 public:
  // A task that is the first thread of a new process (its own thread group).
  Task(Kernel& k, int tid)
      : kernel_(k),
        tid_(tid),
        tg_(std::make_shared<ThreadGroup>(tid)),
        fds_(std::make_shared<FdTable>()),
        fs_(std::make_shared<vfs::FsContext>()),
        sighand_(std::make_shared<SignalHandlers>()),
        uts_(k.init_uts) {
    tg_->threads.push_back(this);
  }

  Kernel& kernel() { return kernel_; }
  int tid() const { return tid_; }
  int tgid() const { return tg_->tgid; }
  // The process this thread belongs to.
  ThreadGroup& tg() { return *tg_; }
  const ThreadGroup& tg() const { return *tg_; }
  std::shared_ptr<ThreadGroup> shared_tg() { return tg_; }  // what a pidfd holds
  bool is_leader() const { return tid_ == tg_->tgid; }

  // Application memory, through the MM (EFAULT on bad addresses).
  MemoryManager& mm() { return *mm_; }
  // The task's memory, null once it has let go of it (exit).
  MemoryManager* mm_if_any() { return mm_.get(); }
  Status CopyIn(uintptr_t addr, void* dst, size_t n) { return mm_->CopyIn(addr, dst, n); }
  Status CopyOut(uintptr_t addr, const void* src, size_t n) { return mm_->CopyOut(addr, src, n); }
  template <typename T>
  Status CopyInObj(uintptr_t addr, T* obj) {
    return CopyIn(addr, obj, sizeof(T));
  }
  template <typename T>
  Status CopyOutObj(uintptr_t addr, const T& obj) {
    return CopyOut(addr, &obj, sizeof(T));
  }
  Result<std::string> CopyInPath(uintptr_t addr) {
    return mm_->CopyInString(addr, vfs::kPathMax - 1);
  }

  // The objects clone(2) may share between tasks.
  FdTable& fds() { return *fds_; }
  vfs::FsContext& fs() { return *fs_; }
  std::array<SigAction, kMaxSignal + 1>& sigactions() { return sighand_->actions; }
  // The task's UTS namespace.
  UtsNamespace& uts() { return *uts_; }

  // Replaces the process's image with the program at path (execve(2)); the
  // process's other threads end first.
  Status Exec(const std::string& path, std::vector<std::string> argv,
              const std::vector<std::string>& envp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // clone(2) (sentry/kernel/clone.cc): a new thread or process as flags
  // say; returns its tid, after it has started.
  struct CloneArgs {
    uint64_t flags = 0;  // CLONE_* without the exit signal
    int exit_signal = 0;
    uintptr_t stack = 0, parent_tid = 0, child_tid = 0, tls = 0;
    bool clear_sighand = false;  // clone3's CLONE_CLEAR_SIGHAND
  };
  Result<long> Clone(const CloneArgs& args) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // unshare(2) (sentry/kernel/clone.cc): stops sharing what flags name
  // (CLONE_FILES, CLONE_FS, CLONE_NEWUTS, ...) with other tasks, and enters
  // a copy of its mount namespace (CLONE_NEWNS).
  Status Unshare(uint64_t flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // What clone gives a new task of this one's scheduling and prctl state.
  void CopyProcessControl(Task& child) const;
  // Runs the task until it exits; returns nothing, the exit is recorded.
  void Run();
  // Ends the whole process with a wait status (exit_group(2), a fatal
  // signal): the other threads are killed, then this one exits.
  void Exit(int wait_status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Ends this thread alone (exit(2)); the process ends with its last thread.
  void ExitThread(int wait_status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  bool exiting() const { return exiting_; }
  // The thread has exited (its Task stays while it is a zombie leader).
  bool exited() const { return exiting_; }

  // Blocks the task with the big lock dropped until its waiter is notified
  // (the caller registered it on the queues it waits for, and re-checks its
  // condition afterwards), the deadline passes (ETIMEDOUT), or a signal is
  // pending (EINTR; checked before sleeping too). host: host descriptors to
  // wait on as well, their revents filled in.
  Status Block(absl::Time deadline = absl::InfiniteFuture(), std::vector<pollfd>* host = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Whether the task must leave a blocking call for DeliverSignals: a
  // signal that is not blocked waits for delivery to this thread (its own,
  // or its process's), or the process is stopping, or a tracer asked for
  // PTRACE_INTERRUPT. The call then returns an interruption (EINTR or a
  // restart), as Linux's signal_pending does for all three.
  bool SignalPending() const {
    if ((PendingSignals() & ~sigmask) != 0) return true;
    return !stop_waiting_ && (tg_->stopped || (ptrace_ != nullptr && ptrace_->interrupt));
  }
  // The signals pending for this thread and for its process.
  uint64_t PendingSignals() const { return pending_.pending() | tg_->shared_pending.pending(); }
  // The signals pending for this thread alone.
  uint64_t ThreadPendingSignals() const { return pending_.pending(); }

  // Signals (sentry/kernel/signals.cc). The caller holds the big lock.
  // Queues a thread-directed signal (tgkill, a fault) and wakes the task;
  // false if it was dropped (ignored, or the real-time queue is full).
  // `forced`: a fault's signal (ForceSignal), which kills even a container's init.
  bool SendSignal(const siginfo_t& info, bool forced = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Queues a process-directed signal (kill, sigqueue, SIGCHLD, timers) on
  // this task's process and wakes a thread that does not block it.
  bool SendProcessSignal(const siginfo_t& info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // A signal raised by the task's own execution (a fault): delivered even
  // if blocked or ignored, as Linux's force_sig_info.
  void ForceSignal(const siginfo_t& info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Runs before every return to the application: takes pending signals,
  // runs default actions, or builds one handler frame; after_syscall says
  // regs.rax holds a syscall result, which may ask for a restart.
  void DeliverSignals(bool after_syscall) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // rt_sigreturn(2): restores the frame at the stack pointer.
  Result<long> SigReturn() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Removes the lowest pending signal among `allowed`, the thread's own
  // first, then the process's (sigtimedwait).
  bool DequeueSignal(uint64_t allowed, siginfo_t* out);
  // Changes the signal mask; a process-directed signal this thread now
  // blocks goes to another thread that does not.
  void SetSigmask(uint64_t mask) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // sigsuspend/ppoll/pselect: the mask to restore once a signal has been
  // handled (a handler frame saves it instead of the temporary mask).
  void SetSavedSigmask(uint64_t mask) { saved_sigmask_ = mask; }
  // Notifies the waiter and interrupts the application if it runs.
  void Wake();

  // Whether the task's process is stopped by job control.
  bool stopped() const { return tg_->stopped; }
  // Whether the task waits in Task::Block (the S state of /proc).
  bool sleeping() const { return sleeping_; }

  // Notified by whatever the task waits for, and by signals sent to it.
  Waiter waiter;

  platform::Registers regs{};
  uint32_t uid = 0, euid = 0, suid = 0, gid = 0, egid = 0, sgid = 0;
  uint32_t fsuid = 0, fsgid = 0;  // follow euid/egid unless setfs*id moves them
  std::vector<uint32_t> groups;   // supplementary groups, sorted
  // What file permission checks see (vfs/perm.h): fsuid, fsgid, groups,
  // and the file capabilities while the fsuid is 0. Valid until the task's
  // groups change.
  vfs::Creds FsCreds() const;
  // access(2) and faccessat(2) without AT_EACCESS: the real uid and gid,
  // with the capabilities only when the real uid is 0 (access_override_creds).
  vfs::Creds AccessCreds() const;
  std::string comm;
  // Process control (issue 12: sys_sched.cc, prctl): per thread, as on Linux.
  Capabilities caps;  // the model is in caps.h
  bool Capable(int cap) const { return caps.Has(cap); }
  int nice = 0;            // -20..19 (setpriority(2))
  int sched_policy = 0;    // SCHED_OTHER
  int sched_priority = 0;  // 1..99 for SCHED_FIFO and SCHED_RR
  bool sched_reset_on_fork = false;
  CpuMask cpu_mask;                 // sched_setaffinity(2): what the task sees (no host pinning)
  int pdeath_signal = 0;            // PR_SET_PDEATHSIG: sent when the parent thread exits
  bool no_new_privs = false;        // PR_SET_NO_NEW_PRIVS: one-way, inherited
  uint64_t timer_slack_ns = 50000;  // PR_SET_TIMERSLACK
  uint64_t default_timer_slack_ns = 50000;
  uint64_t sigmask = 0;
  // The mask before sigtimedwait unblocked what it waits for: a signal
  // blocked here is not dropped as ignored (Linux's real_blocked).
  uint64_t real_blocked = 0;
  stack_t altstack{nullptr, SS_DISABLE, 0};
  TaskCpu cpu;  // CPU time, its own and its waited-for children's (cputime.h)
  // When the thread was made, on the sandbox's CLOCK_BOOTTIME (Linux's
  // start_boottime: /proc/[pid]/stat's starttime).
  const int64_t start_boottime_ns = SandboxNow(CLOCK_BOOTTIME);
  uintptr_t clear_child_tid = 0;
  uintptr_t robust_list = 0;  // set_robust_list(2)'s head
  bool vfork_done = true;     // false while a vfork parent waits for us
  int exit_code = 0;          // this thread's own exit status, once exited

  // ptrace(2) of this task by another (sentry/kernel/ptrace.cc); null
  // while untraced.
  struct Ptrace {
    enum class Resume { kNone, kCont, kSyscall, kSysemu, kStep, kListen, kDetach, kKill };
    int tracer = 0;  // the tracing thread's tid
    bool seized = false;
    uint32_t options = 0;
    Resume mode = Resume::kCont;    // how the tracer last resumed it
    Resume resume = Resume::kNone;  // set by the tracer to end the current stop
    int resume_sig = 0;
    int stop_status = 0;  // the current ptrace-stop's wait status, 0 when running
    bool stop_reported = false;
    bool interrupt = false;  // PTRACE_INTERRUPT asked for a stop
    int syscall_stop = 0;    // 1: at syscall entry, 2: at exit (PTRACE_GET_SYSCALL_INFO)
    siginfo_t siginfo{};
    uint64_t event_msg = 0;
    bool stepping = false;  // the trap flag was set for PTRACE_SINGLESTEP
    // The FPU state while stopped, for the tracer (read and written on the
    // tracee's own host thread, which owns its stub thread).
    std::vector<uint8_t> fp;
    bool fp_dirty = false;
  };
  std::unique_ptr<Ptrace> ptrace_;
  // Enters a ptrace-stop reporting `status` (a wait status) and waits for
  // the tracer; returns the signal it resumed with (0 for none).
  int PtraceStop(int status, const siginfo_t* info, int syscall_stop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // A PTRACE_EVENT_* stop if the tracer asked for it (option bit `option`).
  void PtraceEvent(int event, uint32_t option, uint64_t msg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Attaches a new child to this task's tracer if the options say so (a
  // fork, vfork or clone event); returns the event to report, or 0.
  int PtraceInherit(Task& child, uint64_t flags, int exit_signal)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Detaches every task this thread traces (it exits), or kills them
  // (PTRACE_O_EXITKILL).
  void PtraceReleaseTracees() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);

  std::shared_ptr<MemoryManager> mm_;
  std::unique_ptr<platform::Context> ctx_;
  // FPU state a forked child starts with (set once its address space exists).
  std::vector<uint8_t> initial_fp_state;

 private:
  friend class Kernel;
  enum class StartState { kPending, kRunning, kFailed };
  StartState start_state_ = StartState::kRunning;

  void RestartSyscall(bool handler_runs, const SigAction* act);
  // Legacy entry points (kernel.cc): int $0x80 and sysenter fault; a call
  // into the vsyscall page is emulated. Each returns whether it handled
  // the stop.
  bool RefuseLegacyEntry() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  static bool InVsyscallPage(uintptr_t addr);
  bool EmulateVsyscall(uintptr_t entry, bool returned) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  void OnFault(const platform::StopInfo& stop, uint64_t switch_generation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // A fault found the sandbox at its memory limit (kernel.cc).
  void OutOfMemory() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  bool SetupFrame(const siginfo_t& info, SigAction& act);
  // The process's last thread is gone: it becomes a zombie for its parent.
  void ExitProcess() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Where the process's orphans go (sys_prctl.cc's PR_SET_CHILD_SUBREAPER).
  std::shared_ptr<Task> FindReaper() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Tells the parent of this zombie process that it ended (exit signal,
  // wait wake-up), or reaps it at once for a parent ignoring SIGCHLD.
  void ReportExit(uint32_t exit_uid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // execve's de_thread: the other threads end; a non-leader takes the pid.
  Status DeThread() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // What a signal's generation does before it is queued: job control's
  // side effects, and whether it is dropped as ignored (`blocked`: the
  // receiving mask).
  bool PrepareSignal(int sig, uint64_t blocked) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Whether a container's init drops the signal (sig_task_ignored).
  bool UnkillableInitDrops(const siginfo_t& info) const;
  // Wakes a thread of the process that may take sig (complete_signal).
  void WakeSignalTarget(int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Kills every other thread of the process (group exit, exec).
  void KillOtherThreads() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);

  SignalQueue pending_;        // thread-directed signals
  bool stop_waiting_ = false;  // in a stop already (group stop, ptrace-stop)
  std::optional<uint64_t> saved_sigmask_;
  bool sleeping_ = false;
  void Stop(int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Waits in the sentry while the process is stopped (until SIGCONT, or
  // until SIGKILL is pending).
  void WaitWhileStopped() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // One sleep of a stopped task (group stop, ptrace-stop): only a wake-up or
  // a pending SIGKILL ends it; other signals stay pending.
  void SleepInStop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  void NotifyParent(int code, int status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // The wait status of death by sig, with the core-dump flag as
  // RLIMIT_CORE allows.
  int DumpStatus(int sig) const;

  Kernel& kernel_;
  int tid_;
  std::shared_ptr<ThreadGroup> tg_;
  std::shared_ptr<FdTable> fds_;
  std::shared_ptr<vfs::FsContext> fs_;
  std::shared_ptr<SignalHandlers> sighand_;
  std::shared_ptr<UtsNamespace> uts_;
  bool exiting_ = false;
};

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_KERNEL_H_
