// Kernel and Task: the sentry's process model.
//
// Every application thread is one sentry host thread (1:1). A task's thread
// runs application code through the platform and handles its syscalls.
//
// Locking: Kernel::mu is the big kernel lock. A task holds it while it runs
// sentry code (syscall handlers, faults) and drops it while application code
// runs and while it blocks (Kernel::cv waits, host I/O on stdio, sleeps).
// It is the only lock above MemoryManager::mu_ and MemoryFile::mu_; finer
// locks replace it subsystem by subsystem as the process model grows.
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
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/result.h"
#include "platform/platform.h"
#include "sentry/kernel/cputime.h"
#include "sentry/kernel/fd_table.h"
#include "sentry/kernel/futex.h"
#include "sentry/kernel/itimer.h"
#include "sentry/kernel/posix_timers.h"
#include "sentry/memfile/memfile.h"
#include "sentry/mm/mm.h"
#include "sentry/vfs/vfs.h"
#include "sentry/vfs/waiter.h"

namespace husk {

class Kernel;
class Task;

// Kernel-internal errnos (Linux's include/linux/errno.h). A handler
// interrupted by a signal returns one; the syscall exit path turns it into a
// restart of the call or EINTR, so the application never sees it.
inline constexpr int kERestartSys = 512;       // restart if the handler has SA_RESTART
inline constexpr int kERestartNoIntr = 513;    // always restart
inline constexpr int kERestartNoHand = 514;    // restart only if no handler runs
inline constexpr int kERestartBlock = 516;     // like NoHand (restart_syscall comes later)

inline constexpr int kMaxSignal = 64;
// The bit of signal sig in a signal mask (sigset_t's first word).
constexpr uint64_t SignalBit(int sig) { return uint64_t{1} << (sig - 1); }
// Signals no mask can hold back (sigprocmask(2)).
inline constexpr uint64_t kUnblockableSignals = SignalBit(SIGKILL) | SignalBit(SIGSTOP);
// A siginfo for a signal sent by process `pid` (user `uid`) with `code`.
siginfo_t MakeSigInfo(int sig, int code, int pid, uint32_t uid);

// struct kernel_sigaction as rt_sigaction(2) passes it on x86_64.
struct SigAction {
  uint64_t handler = 0;  // SIG_DFL
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;
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
  RealTimers real_timers{*this};  // ITIMER_REAL of every process
  PosixTimers posix_timers{*this};  // timer_create(2) timers of every process
  FutexTable futexes;             // tasks in futex(2) waits
  std::string hostname = "husk";
  std::string domainname = "(none)";
  std::string cpuinfo;  // captured from the host at boot (the sentry has no /proc after)
  int cpus = 1;         // the processors cpuinfo lists
  bool strace = false;
  int log_fd = 2;
  timespec boot_time{};

  // Creates task 1 running path; it starts when StartTask is called.
  Result<std::shared_ptr<Task>> CreateInitTask(const std::string& path,
                                               std::vector<std::string> argv,
                                               std::vector<std::string> envp,
                                               const std::string& cwd);
  // A fresh task id.
  int AllocatePid() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return next_pid_++; }
  void AddTask(std::shared_ptr<Task> t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void RemoveTask(int tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  std::shared_ptr<Task> FindTask(int tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Every task not yet reaped (zombies included, as /proc and kill(2) see
  // them on Linux).
  std::vector<int> Pids() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Tasks (zombies included, as Linux counts them until reaped) whose real
  // uid is uid: what RLIMIT_NPROC limits.
  uint64_t CountTasksOfUser(uint32_t uid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  std::vector<std::shared_ptr<Task>> Children(int ppid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Handles the syscall in a task's registers (set by the syscalls library,
  // which sits above the kernel).
  void (*dispatch)(Task&) = nullptr;
  // Starts a host thread running t; the child creates its own address space
  // host process from that thread when it has none (ptrace ties a tracee to
  // its tracer thread). Waits until the task runs: EAGAIN if the host
  // refused the thread or the address space (the task never ran; the caller
  // removes it).
  Status StartTask(std::shared_ptr<Task> t, std::unique_ptr<MemoryManager> mm_without_as)
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
  Task(Kernel& k, int tid) : kernel_(k), tid_(tid), tgid_(tid) {}

  Kernel& kernel() { return kernel_; }
  int tid() const { return tid_; }
  int tgid() const { return tgid_; }

  // Application memory, through the MM (EFAULT on bad addresses).
  MemoryManager& mm() { return *mm_; }
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

  // Replaces the task's image with the program at path (execve(2)).
  Status Exec(const std::string& path, std::vector<std::string> argv,
              std::vector<std::string> envp);
  // Runs the task until it exits; returns nothing, the exit is recorded.
  void Run();
  // Ends the task (and, for now, its thread group) with a wait status.
  void Exit(int wait_status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  bool exiting() const { return exiting_; }

  // Blocks the task with the big lock dropped until its waiter is notified
  // (the caller registered it on the queues it waits for, and re-checks its
  // condition afterwards), the deadline passes (ETIMEDOUT), or a signal is
  // pending (EINTR; checked before sleeping too). host: host descriptors to
  // wait on as well, their revents filled in.
  Status Block(absl::Time deadline = absl::InfiniteFuture(), std::vector<pollfd>* host = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Whether a signal that is not blocked waits for delivery.
  bool SignalPending() const { return (pending_signals & ~sigmask) != 0; }

  // Signals (sentry/kernel/signals.cc). The caller holds the big lock.
  // Queues a signal and wakes the task; false if it was dropped (ignored,
  // or the real-time queue is full).
  bool SendSignal(const siginfo_t& info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // A signal raised by the task's own execution (a fault): delivered even
  // if blocked or ignored, as Linux's force_sig_info.
  void ForceSignal(const siginfo_t& info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Runs before every return to the application: takes pending signals,
  // runs default actions, or builds one handler frame; after_syscall says
  // regs.rax holds a syscall result, which may ask for a restart.
  void DeliverSignals(bool after_syscall) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // rt_sigreturn(2): restores the frame at the stack pointer.
  Result<long> SigReturn();
  // Removes the lowest pending signal among `allowed` (sigtimedwait).
  bool DequeueSignal(uint64_t allowed, siginfo_t* out);
  // sigsuspend/ppoll/pselect: the mask to restore once a signal has been
  // handled (a handler frame saves it instead of the temporary mask).
  void SetSavedSigmask(uint64_t mask) { saved_sigmask_ = mask; }
  // Notifies the waiter and interrupts the application if it runs.
  void Wake();

  // Job control: a task stopped by SIGSTOP/SIGTSTP/SIGTTIN/SIGTTOU waits in
  // the sentry until SIGCONT or SIGKILL. wait4 reports each change once
  // (WUNTRACED, WCONTINUED): these hold the report not yet collected.
  bool stopped() const { return stopped_; }
  // Whether the task waits in Task::Block (the S state of /proc).
  bool sleeping() const { return sleeping_; }
  int stop_report = 0;      // the stop signal to report, or 0
  bool cont_report = false;  // a continue to report

  // Notified by whatever the task waits for, and by signals sent to it.
  Waiter waiter;
  uint64_t pending_signals = 0;  // bit sig-1 for each pending signal

  platform::Registers regs{};
  FdTable fds;
  vfs::FsContext fs;
  uint32_t uid = 0, euid = 0, suid = 0, gid = 0, egid = 0, sgid = 0;
  uint32_t fsuid = 0, fsgid = 0;     // follow euid/egid unless setfs*id moves them
  std::vector<uint32_t> groups;      // supplementary groups, sorted
  // What file permission checks see (vfs/perm.h): fsuid, fsgid, groups,
  // and the file capabilities while the fsuid is 0. Valid until the task's
  // groups change.
  vfs::Creds FsCreds() const;
  // access(2) and faccessat(2) without AT_EACCESS: the real uid and gid,
  // with the capabilities only when the real uid is 0 (access_override_creds).
  vfs::Creds AccessCreds() const;
  std::string comm;
  vfs::DentryRef exe;
  std::vector<std::string> argv;
  std::array<SigAction, 65> sigactions{};
  uint64_t sigmask = 0;
  stack_t altstack{nullptr, SS_DISABLE, 0};
  std::array<struct rlimit, RLIM_NLIMITS> rlimits{};
  TaskCpu cpu;  // CPU time, its own and its waited-for children's (cputime.h)
  uintptr_t clear_child_tid = 0;
  uintptr_t robust_list = 0;  // set_robust_list(2)'s head
  int ppid = 0;
  int pgid = 0, sid = 0;
  int exit_status = 0;  // a wait status, valid once zombie
  bool zombie = false;
  bool vfork_done = true;  // false while a vfork parent waits for us
  int exit_signal = SIGCHLD;

  std::unique_ptr<MemoryManager> mm_;
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
  void OnFault(const platform::StopInfo& stop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  bool SetupFrame(const siginfo_t& info, SigAction& act);

  std::array<std::deque<siginfo_t>, kMaxSignal + 1> sigqueue_;
  uint64_t queued_ = 0;
  std::optional<uint64_t> saved_sigmask_;
  bool stopped_ = false;
  bool sleeping_ = false;
  void Stop(int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  void NotifyParent(int code, int status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel().mu);
  // Forgets every pending instance of sig.
  void DropPending(int sig);
  // The wait status of death by sig, with the core-dump flag as
  // RLIMIT_CORE allows.
  int DumpStatus(int sig) const;

  Kernel& kernel_;
  int tid_;
  int tgid_;
  bool exiting_ = false;
};

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_KERNEL_H_
