#include "sentry/kernel/kernel.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_format.h"
#include "sentry/kernel/tty.h"
#include "sentry/loader/loader.h"
#include "sentry/memfile/account.h"

namespace husk {
namespace {
thread_local Task* current_task = nullptr;

void Log(Kernel& k, const std::string& s) { (void)!write(k.log_fd, s.data(), s.size()); }

// The auxiliary vector on a new program's stack: past argc, argv and envp,
// (type, value) pairs up to and including AT_NULL.
std::string ReadAuxv(MemoryManager& mm, uintptr_t sp) {
  uint64_t argc = 0;
  if (!mm.CopyIn(sp, &argc, sizeof(argc)).ok()) return "";
  uintptr_t p = sp + 8 * (argc + 2);      // argc, argv[], NULL
  for (uint64_t v = 1; v != 0; p += 8) {  // envp[], NULL
    if (!mm.CopyIn(p, &v, sizeof(v)).ok()) return "";
  }
  std::string out;
  for (int i = 0; i < 64; i++, p += 16) {
    uint64_t pair[2];
    if (!mm.CopyIn(p, pair, sizeof(pair)).ok()) break;
    out.append(reinterpret_cast<const char*>(pair), sizeof(pair));
    if (pair[0] == 0) break;  // AT_NULL
  }
  return out;
}

// The string areas of a new image (mm->arg_start and friends): from the
// pointers in argv[] and envp[] on the new stack, and the strings' lengths.
void SetStringAreas(MemoryManager& mm, uintptr_t sp, const std::vector<std::string>& argv,
                    const std::vector<std::string>& envp, ThreadGroup& g) {
  g.arg_start = g.arg_end = g.env_start = g.env_end = 0;
  uint64_t first = 0, last = 0;
  const uintptr_t args = sp + 8;  // argc, then argv[]
  if (!argv.empty() && mm.CopyIn(args, &first, 8).ok() &&
      mm.CopyIn(args + 8 * (argv.size() - 1), &last, 8).ok()) {
    g.arg_start = first;
    g.arg_end = last + argv.back().size() + 1;
  }
  const uintptr_t envs = args + 8 * (argv.size() + 1);
  if (!envp.empty() && mm.CopyIn(envs, &first, 8).ok() &&
      mm.CopyIn(envs + 8 * (envp.size() - 1), &last, 8).ok()) {
    g.env_start = first;
    g.env_end = last + envp.back().size() + 1;
  } else {
    g.env_start = g.env_end = g.arg_end;
  }
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string b = slash == std::string::npos ? path : path.substr(slash + 1);
  return b.substr(0, 15);  // TASK_COMM_LEN - 1
}
}  // namespace

Task* Kernel::Current() { return current_task; }

uint64_t Kernel::MemoryTotal() const {
  return std::min<uint64_t>(MemoryAccount::Sandbox().limit(), mf_.max_bytes());
}

uint64_t Kernel::MemoryUsed() const {
  return std::min(MemoryAccount::Sandbox().used(), MemoryTotal());
}
void Kernel::SetCurrent(Task* t) { current_task = t; }

void Kernel::AddTask(std::shared_ptr<Task> t) { tasks_[t->tid()] = std::move(t); }
void Kernel::RemoveTask(int tid) { tasks_.erase(tid); }

void Kernel::RenameTask(int old_tid, int new_tid) {
  auto it = tasks_.find(old_tid);
  if (it == tasks_.end()) return;
  std::shared_ptr<Task> t = std::move(it->second);
  tasks_.erase(it);
  t->tid_ = new_tid;
  tasks_[new_tid] = std::move(t);
}

std::shared_ptr<Task> Kernel::FindTask(int tid) {
  auto it = tasks_.find(tid);
  return it == tasks_.end() ? nullptr : it->second;
}

std::vector<int> Kernel::Pids() {
  std::vector<int> out;
  for (auto& [tid, t] : tasks_) {
    if (t->is_leader()) out.push_back(tid);  // zombies too, until reaped
  }
  return out;
}

std::vector<int> Kernel::Tids(int pid) {
  std::vector<int> out;
  auto leader = FindTask(pid);
  if (leader == nullptr || !leader->is_leader()) return out;
  if (leader->tg().zombie || leader->exited()) out.push_back(pid);
  for (Task* t : leader->tg().threads) out.push_back(t->tid());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

uint64_t Kernel::CountTasksOfUser(uint32_t uid) {
  uint64_t n = 0;
  for (auto& [tid, t] : tasks_) n += t->uid == uid ? 1 : 0;
  return n;
}

std::vector<std::shared_ptr<Task>> Kernel::Children(int ppid) {
  std::vector<std::shared_ptr<Task>> out;
  for (auto& [tid, t] : tasks_) {
    if (t->is_leader() && t->tg().ppid == ppid) out.push_back(t);
  }
  return out;
}

void Kernel::CountUnimplemented(int nr) {
  absl::MutexLock l(&unimpl_mu_);
  unimplemented_[nr]++;
}

std::map<int, uint64_t> Kernel::Unimplemented() {
  absl::MutexLock l(&unimpl_mu_);
  return unimplemented_;
}

Result<std::shared_ptr<Task>> Kernel::CreateInitTask(const std::string& path,
                                                     const std::vector<std::string>& argv,
                                                     const std::vector<std::string>& envp,
                                                     const std::string& cwd) {
  absl::MutexLock l(&mu);
  auto t = std::make_shared<Task>(*this, AllocatePid());
  t->fs().root = root;
  t->fs().cwd = root;
  if (!cwd.empty()) {
    auto d = vfs::Resolve(t->fs(), root, cwd, true);
    if (d.ok() && (*d)->inode()->IsDir()) t->fs().cwd = *d;
  }
  ThreadGroup& g = t->tg();
  g.pgid = g.sid = t->tid();
  for (int i = 0; i < RLIM_NLIMITS; i++) g.rlimits[i] = {RLIM_INFINITY, RLIM_INFINITY};
  g.rlimits[RLIMIT_STACK] = {8 << 20, RLIM_INFINITY};
  g.rlimits[RLIMIT_NOFILE] = {1024, 1 << 20};
  g.rlimits[RLIMIT_CORE] = {0, RLIM_INFINITY};
  g.rlimits[RLIMIT_NPROC] = {4096, 4096};
  g.rlimits[RLIMIT_MEMLOCK] = {8 << 20, 8 << 20};
  g.rlimits[RLIMIT_SIGPENDING] = {4096, 4096};
  g.rlimits[RLIMIT_MSGQUEUE] = {819200, 819200};
  g.rlimits[RLIMIT_NICE] = {0, 0};
  g.rlimits[RLIMIT_RTPRIO] = {0, 0};
  for (int cpu = 0; cpu < std::min(cpus, kMaxCpus); cpu++) t->cpu_mask.set(cpu);
  AddTask(t);
  return t;
}

Status Kernel::StartTask(const std::shared_ptr<Task>& t,
                         std::unique_ptr<MemoryManager> mm_without_as,
                         std::optional<platform::ThreadToken> thread) {
  t->start_state_ = Task::StartState::kPending;
  auto body = [this, t, mm = std::move(mm_without_as), thread]() mutable {
    Kernel::SetCurrent(t.get());
    {
      absl::MutexLock l(&mu);
      t->ctx_ = platform_.NewContext();
      Status ready = Ok();
      if (thread.has_value()) {
        // A thread of an address space that already exists.
        ready = t->ctx_->Adopt(t->mm_->address_space(), *thread);
      } else if (mm != nullptr) {
        auto as = platform_.NewAddressSpace();
        if (as.ok()) {
          mm->AttachAddressSpace(std::move(*as));
          t->mm_ = std::move(mm);
          if (!t->initial_fp_state.empty()) {
            (void)t->ctx_->SetFpState(t->mm_->address_space(), t->initial_fp_state);
            t->initial_fp_state.clear();
          }
        } else {
          ready = Errno{as.error()};
        }
      }
      if (!ready.ok()) {
        // The host refused a process or a thread (pids limit, memory): the
        // parent's clone fails with EAGAIN, as Linux's does when it runs out.
        Log(*this, absl::StrFormat("husk: task %d: cannot start: %s\n", t->tid(),
                                   strerror(ready.error())));
        t->ctx_.reset();
        if (thread.has_value()) t->mm_.reset();
        t->start_state_ = Task::StartState::kFailed;
        cv.SignalAll();
        return;
      }
      t->start_state_ = Task::StartState::kRunning;
      cv.SignalAll();
    }
    t->Run();
  };
  try {
    std::thread(std::move(body)).detach();
  } catch (const std::system_error&) {
    // No host thread (a pids or memory limit): EAGAIN, as fork(2) gives.
    if (thread.has_value()) t->mm_->address_space().DiscardThread(*thread);
    t->mm_.reset();
    return Errno{EAGAIN};
  }
  while (t->start_state_ == Task::StartState::kPending) cv.Wait(&mu);
  if (t->start_state_ == Task::StartState::kFailed) return Errno{EAGAIN};
  return Ok();
}

void Kernel::StartInit(std::shared_ptr<Task> t, const std::string& path,
                       std::vector<std::string> argv, std::vector<std::string> envp) {
  std::thread([this, t = std::move(t), path, argv = std::move(argv),
               envp = std::move(envp)]() mutable {
    Kernel::SetCurrent(t.get());
    {
      absl::MutexLock l(&mu);
      t->ctx_ = platform_.NewContext();
      t->kernel().mu.AssertHeld();  // t's kernel is this one
      Status st = t->Exec(path, std::move(argv), envp);
      if (!st.ok()) {
        Log(*this, absl::StrFormat("husk: cannot execute %s: %s\n", path, strerror(st.error())));
        int code = st.error() == ENOENT ? 127 : 126;
        t->Exit(code << 8);
        return;
      }
    }
    t->Run();
  }).detach();
}

int Kernel::WaitForInit() {
  absl::MutexLock l(&mu);
  mu.Await(absl::Condition(&init_done_));
  return init_status_;
}

// File permission checks see the effective capabilities (caps.h); the
// fsuid's moves add and remove CAP_FS_SET in them (Capabilities::FixSetfsuid).
vfs::Creds Task::FsCreds() const {
  return vfs::Creds{fsuid, fsgid, groups,
                    static_cast<uint32_t>(caps.effective) & vfs::kFsCapabilities};
}

// access_override_creds: the real ids, with the permitted capabilities when
// the real uid is 0 and none otherwise (unless SECBIT_NO_SETUID_FIXUP).
vfs::Creds Task::AccessCreds() const {
  uint64_t c = caps.effective;
  if (!(caps.securebits & kSecNoSetuidFixup)) c = uid == 0 ? caps.permitted : 0;
  return vfs::Creds{uid, gid, groups, static_cast<uint32_t>(c) & vfs::kFsCapabilities};
}

Status Task::Exec(const std::string& path, std::vector<std::string> argv,
                  const std::vector<std::string>& envp) {
  Kernel& k = kernel_;
  ASSIGN_OR_RETURN(std::unique_ptr<platform::AddressSpace> as, k.platform().NewAddressSpace());
  auto mm = std::make_shared<MemoryManager>(
      k.memory_file(), std::move(as), k.platform().MinUserAddress(), k.platform().MaxUserAddress());
  loader::Credentials creds{uid, euid, gid, egid, FsCreds(), tg_->rlimits[RLIMIT_STACK].rlim_cur};
  ASSIGN_OR_RETURN(loader::Image img, loader::Load(*mm, fs(), path, std::move(argv), envp, creds,
                                                   k.vdso.text != nullptr ? &k.vdso : nullptr));
  // Past the point of no return: the other threads go, then the old image,
  // releasing its robust futexes and clear_child_tid first (exec_mm_release).
  TRY(DeThread());
  ReleaseFutexes(*this);
  RetireTaskAddressSpace(*this);
  k.posix_timers.OnExec(tgid());
  if (mm_ != nullptr && mm_.use_count() > 1) mm_->address_space().ReleaseThread();
  mm_ = std::move(mm);
  regs = platform::Registers{};
  regs.rip = img.entry;
  regs.rsp = img.stack_pointer;
  regs.cs = kUserCs;
  regs.ss = kUserDs;
  regs.eflags = 0x202;
  regs.orig_rax = ~0ULL;  // not in a syscall: no restart logic on the first resume
  // A table shared with another process is copied first (unshare_files),
  // and so are shared handlers, which exec resets.
  if (fds_.use_count() > 1) fds_ = std::make_shared<FdTable>(*fds_);
  fds_->CloseOnExec();
  if (sighand_.use_count() > 1) sighand_ = std::make_shared<SignalHandlers>(*sighand_);
  for (auto& act : sighand_->actions) {
    if (act.handler != reinterpret_cast<uint64_t>(SIG_IGN)) act = SigAction{};
  }
  altstack = stack_t{nullptr, SS_DISABLE, 0};
  comm = Basename(path);
  caps.OnExec(uid, euid);
  tg_->execed = true;
  tg_->dumpable = 1;
  tg_->exe = img.exe;
  SetStringAreas(*mm_, img.stack_pointer, img.argv, envp, *tg_);
  tg_->argv = std::move(img.argv);
  tg_->auxv = ReadAuxv(*mm_, img.stack_pointer);
  tg_->environ.clear();
  for (const std::string& e : envp) {
    tg_->environ += e;
    tg_->environ += '\0';
  }
  if (!vfork_done) {
    vfork_done = true;
    k.cv.SignalAll();
  }
  return Ok();
}

void Task::KillOtherThreads() {
  for (Task* o : tg_->threads) {
    if (o == this) continue;
    o->pending_.Push(MakeSigInfo(SIGKILL, SI_KERNEL, 0, 0), UINT64_MAX);
    o->Wake();
  }
}

Status Task::DeThread() {
  ThreadGroup& g = *tg_;
  if (g.threads.size() == 1 && is_leader()) return Ok();
  if (g.exiting || g.execing != nullptr) return Errno{EAGAIN};  // dying anyway
  g.execing = this;
  KillOtherThreads();
  // Every other thread exits in its own host thread, which takes the lock.
  while (g.threads.size() > 1 && !(pending_.pending() & SignalBit(SIGKILL))) {
    kernel().cv.Wait(&kernel().mu);
  }
  g.execing = nullptr;
  if (g.threads.size() > 1) return Errno{EAGAIN};  // killed meanwhile: the exec is moot
  if (!is_leader()) {
    // The former leader is gone for good, silently; this thread takes its
    // pid (execve(2): "all other threads ... are destroyed", and the
    // thread id becomes the process id).
    const int tgid = g.tgid;
    kernel().RemoveTask(tgid);
    kernel().RenameTask(tid_, tgid);
  }
  return Ok();
}

void Task::Exit(int wait_status) {
  ThreadGroup& g = *tg_;
  // Killed by execve's de_thread: this thread alone goes.
  if (g.execing != nullptr && g.execing != this) {
    ExitThread(wait_status);
    return;
  }
  if (!g.exiting) {
    g.exiting = true;
    g.exit_code = wait_status;
    KillOtherThreads();
  }
  ExitThread(g.exit_code);
}

void Task::ExitThread(int wait_status) {
  if (exiting_) return;
  // PTRACE_O_TRACEEXIT: the tracer sees the exit before it happens (not
  // when SIGKILL ends the task).
  if (ptrace_ != nullptr && !(pending_.pending() & SignalBit(SIGKILL))) {
    PtraceEvent(PTRACE_EVENT_EXIT, PTRACE_O_TRACEEXIT, static_cast<uint64_t>(wait_status));
    if (exiting_) return;
  }
  exiting_ = true;
  exit_code = wait_status;
  ThreadGroup& g = *tg_;
  PtraceReleaseTracees();
  FreezeTaskCpu(*this);
  ReleaseFutexes(*this);
  // The thread's descriptor table reference goes (files close with the
  // last one); an empty table stays for /proc.
  fds_ = std::make_shared<FdTable>();
  vfork_done = true;
  std::erase(g.threads, this);
  // Its children stay the process's, now of another of its threads. Their
  // threads that asked for it (PR_SET_PDEATHSIG) hear that their parent
  // thread is gone, process-directed, as forget_original_parent sends it.
  for (auto& child : kernel().Children(g.tgid)) {
    ThreadGroup& c = child->tg();
    if (c.parent_thread != tid_) continue;
    c.parent_thread = g.threads.empty() ? 0 : g.threads.front()->tid();
    child->kernel().mu.AssertHeld();  // one kernel, one lock
    for (Task* ct : std::vector<Task*>(c.threads)) {
      ct->kernel().mu.AssertHeld();
      if (ct->pdeath_signal != 0 && !c.zombie) {
        ct->SendProcessSignal(MakeSigInfo(ct->pdeath_signal, SI_USER, g.tgid, ct->uid));
      }
    }
  }
  // A process-directed signal meant for this thread goes to another.
  if (g.shared_pending.pending() != 0 && !g.threads.empty()) {
    for (int sig = 1; sig <= kMaxSignal; sig++) {
      if (g.shared_pending.pending() & SignalBit(sig)) WakeSignalTarget(sig);
    }
  }
  if (ptrace_ != nullptr) {
    // The tracer reaps this tracee's exit too, unless it is the parent that
    // reaps the process anyway.
    std::shared_ptr<Task> tracer = kernel().FindTask(ptrace_->tracer);
    const int status = g.exiting ? g.exit_code : wait_status;
    if (tracer != nullptr && !(g.threads.empty() && tracer->tgid() == g.ppid)) {
      tracer->kernel().mu.AssertHeld();  // one kernel, one lock
      tracer->tg().tracee_exits.push_back({tid_, status});
      tracer->tg().child_events.Notify(~0u);
    }
    ptrace_.reset();
  }
  if (!is_leader()) kernel().RemoveTask(tid_);  // nobody waits for a thread
  if (g.threads.empty()) ExitProcess();
  kernel().cv.SignalAll();
}

// find_new_reaper: the nearest ancestor process that made itself a child
// subreaper (PR_SET_CHILD_SUBREAPER) and still has a live thread, else init.
std::shared_ptr<Task> Task::FindReaper() {
  std::shared_ptr<Task> p = kernel().FindTask(tg_->ppid);
  for (int hops = 0; p != nullptr && p->tgid() != 1 && hops < (1 << 20); hops++) {
    p->kernel().mu.AssertHeld();  // one kernel, one lock
    ThreadGroup& a = p->tg();
    if (a.child_subreaper && !a.exiting) {
      for (Task* th : a.threads) {
        if (!th->exiting()) return kernel().FindTask(th->tid());
      }
    }
    p = kernel().FindTask(a.ppid);
  }
  return kernel().FindTask(1);
}

void Task::ExitProcess() {
  ThreadGroup& g = *tg_;
  // A session leader's terminal hangs up (disassociate_ctty).
  tty::SessionLeaderExit(kernel(), g);
  // The status: the group's exit code, or the leader's own (wait_task_zombie).
  std::shared_ptr<Task> leader = kernel().FindTask(g.tgid);
  int wait_status = g.exiting ? g.exit_code : (leader ? leader->exit_code : exit_code);
  g.exit_status = wait_status;
  kernel().real_timers.Remove(g.tgid);
  kernel().posix_timers.OnExit(g.tgid);
  g.zombie = true;
  // The executable goes with the process's memory (exit_mm drops the mm's
  // exe_file): a zombie keeps no mount busy, and its /proc/<pid>/exe is
  // ENOENT, as on Linux.
  g.exe = nullptr;
  g.exit_events.Notify(POLLIN);
  // Orphans go to the nearest subreaper or init; one that is a zombie
  // already is announced to its new parent (reparent_leader), which sees
  // SIGCHLD from it whatever it was forked with.
  std::vector<std::shared_ptr<Task>> orphans = kernel().Children(g.tgid);
  if (!orphans.empty()) {
    std::shared_ptr<Task> reaper = FindReaper();
    for (auto& child : orphans) {
      child->kernel().mu.AssertHeld();  // one kernel, one lock
      ThreadGroup& c = child->tg();
      c.ppid = reaper != nullptr ? reaper->tgid() : 1;
      c.parent_thread = reaper != nullptr ? reaper->tid() : 1;
      c.exit_signal = SIGCHLD;
      if (c.zombie && reaper != nullptr) child->ReportExit(child->uid);
    }
  }
  if (g.tgid == 1) {
    kernel().init_done_ = true;
    kernel().init_status_ = wait_status;
    return;
  }
  if (g.on_exit) {
    g.on_exit(wait_status);
    g.on_exit = nullptr;
  }
  ReportExit(uid);
}

void Task::ReportExit(uint32_t exit_uid) {
  ThreadGroup& g = *tg_;
  std::shared_ptr<Task> parent = g.ppid != 0 ? kernel().FindTask(g.ppid) : nullptr;
  if (parent == nullptr) {
    kernel().RemoveTask(g.tgid);  // nobody will reap it
    return;
  }
  // One kernel, one big lock: the parent's is ours.
  parent->kernel().mu.AssertHeld();
  const int wait_status = g.exit_status;
  // The parent learns through exit_signal (SIGCHLD) and its wait4 wakes.
  if (g.exit_signal > 0) {
    const ChildExit how = ChildExitOf(wait_status);
    siginfo_t info = MakeSigInfo(g.exit_signal, how.code, g.tgid, exit_uid);
    info.si_status = how.status;
    SetSigchldTimes(*this, &info);
    parent->SendProcessSignal(info);
  }
  // A parent that ignores SIGCHLD (or set SA_NOCLDWAIT) leaves no zombie
  // to reap (wait(2), NOTES).
  const SigAction& chld = parent->sigactions()[SIGCHLD];
  if (g.exit_signal == SIGCHLD &&
      (chld.handler == reinterpret_cast<uint64_t>(SIG_IGN) || (chld.flags & SA_NOCLDWAIT))) {
    kernel().RemoveTask(g.tgid);
  }
  parent->tg().child_events.Notify(~0u);
}

Status Task::Block(absl::Time deadline, std::vector<pollfd>* host) {
  if (SignalPending()) return Errno{EINTR};
  sleeping_ = true;
  kernel().mu.Unlock();
  bool woken = waiter.Wait(deadline, host);
  kernel().mu.Lock();
  sleeping_ = false;
  if (SignalPending()) return Errno{EINTR};
  if (!woken) return Errno{ETIMEDOUT};
  return Ok();
}

namespace {
constexpr uintptr_t kVsyscallPage = 0xffffffffff600000;
constexpr int kSysSeccomp = 1;  // si_code of a seccomp SIGSYS (asm-generic/siginfo.h)
}  // namespace

bool Task::InVsyscallPage(uintptr_t addr) {
  return addr >= kVsyscallPage && addr < kVsyscallPage + 4096;
}

// husk is a kernel without IA-32 emulation: `int $0x80` and `sysenter` from
// 64-bit code raise a general protection fault, a SIGSEGV (SI_KERNEL), as
// they do on Linux built without CONFIG_IA32_EMULATION; never a 64-bit
// syscall by their number. The host tells them apart from `syscall`: a
// sysenter arrives through the compat entry (the 32-bit code segment), an
// int $0x80 left its two bytes just before the instruction pointer.
bool Task::RefuseLegacyEntry() {
  bool legacy = regs.cs != kUserCs;
  if (!legacy) {
    uint8_t insn[2];
    legacy =
        mm_->CopyIn(regs.rip - 2, insn, sizeof(insn)).ok() && insn[0] == 0xcd && insn[1] == 0x80;
    if (legacy) regs.rip -= 2;  // the fault is at the instruction
  }
  if (!legacy) return false;
  regs.cs = kUserCs;
  regs.ss = kUserDs;
  regs.rax = regs.orig_rax;
  regs.orig_rax = ~0ULL;  // not in a syscall: nothing to restart
  ForceSignal(MakeSigInfo(SIGSEGV, SI_KERNEL, 0, 0));
  return true;
}

// vsyscall=emulate, as Linux's emulate_vsyscall: a call to one of the three
// entries (gettimeofday, time, getcpu, 1 KiB apart) runs that syscall and
// returns to the caller; a bad pointer in its arguments is a SIGSEGV, not
// EFAULT. `returned`: the host already popped the return address.
bool Task::EmulateVsyscall(uintptr_t entry, bool returned) {
  static constexpr int kNumbers[] = {SYS_gettimeofday, SYS_time, SYS_getcpu};
  if ((entry & 0x3ff) != 0 || ((entry >> 10) & 3) > 2) return false;
  int nr = kNumbers[(entry >> 10) & 3];
  if (!returned) {
    uint64_t ret_addr;
    if (!mm_->CopyIn(regs.rsp, &ret_addr, sizeof(ret_addr)).ok()) return false;
    regs.rip = ret_addr;
    regs.rsp += 8;
  }
  regs.orig_rax = static_cast<uint64_t>(nr);
  kernel_.dispatch(*this);
  regs.orig_rax = ~0ULL;
  if (static_cast<int64_t>(regs.rax) == -EFAULT) {
    ForceSignal(MakeSigInfo(SIGSEGV, SI_KERNEL, 0, 0));
  }
  return true;
}

// A memory fault: installs the page, or emulates a vsyscall, or kills the
// process when the sandbox is out of memory, or raises SIGSEGV/SIGBUS.
void Task::OnFault(const platform::StopInfo& stop, uint64_t switch_generation) {
  // A call into the vsyscall page where the host has none.
  if (stop.addr == regs.rip && InVsyscallPage(stop.addr) && EmulateVsyscall(stop.addr, false)) {
    return;
  }
  FaultFailure why = FaultFailure::kInvalid;
  // Installed now (or by a sibling thread since this one was switched in).
  if (mm_->HandleFault(stop.addr, &why, switch_generation)) return;
  if (why == FaultFailure::kOutOfMemory) {
    OutOfMemory();
    return;
  }
  siginfo_t info =
      MakeSigInfo(stop.info.si_signo == SIGBUS ? SIGBUS : SIGSEGV, stop.info.si_code, 0, 0);
  if (why == FaultFailure::kPastEnd) {
    // A shared file page past the end of the file (mmap(2)'s SIGBUS).
    info.si_signo = SIGBUS;
    info.si_code = BUS_ADRERR;
  } else if (info.si_signo == SIGSEGV) {
    // The host saw no mapping either way (pages are installed lazily):
    // the VMAs tell an access error from a missing mapping.
    info.si_code = mm_->HasVma(stop.addr) ? SEGV_ACCERR : SEGV_MAPERR;
  }
  if (kernel().strace) {
    Log(kernel(), absl::StrFormat("--- %s {si_code=%d, si_addr=%#x} (ip %#x) ---\n",
                                  info.si_signo == SIGBUS ? "SIGBUS" : "SIGSEGV", info.si_code,
                                  stop.addr, regs.rip));
  }
  info.si_addr = reinterpret_cast<void*>(stop.addr);
  ForceSignal(info);
}

// The memory cgroup's OOM killer (mem_cgroup_out_of_memory): the process
// with the most resident and page-table pages, moved by oom_score_adj in
// thousandths of memory (oom_badness), gets SIGKILL; one at
// OOM_SCORE_ADJ_MIN never does. While a victim dies no other is chosen:
// the faulting task waits a little and faults again, and so gets the page
// once the victim's memory is back. A victim that takes over a second to
// go no longer holds the others back (what the OOM reaper ensures). With
// no process to choose, the faulting one goes.
void Task::OutOfMemory() {
  Kernel& k = kernel();
  k.mu.AssertHeld();  // kernel() is k
  // The host's monotonic clock, which Block's deadline is on.
  const absl::Time now = MonotonicNow();
  const long total = std::max<long>(static_cast<long>(k.MemoryTotal() / kPageSize), 1);
  Task* victim = nullptr;
  long best = 0;
  for (int pid : k.Pids()) {
    std::shared_ptr<Task> leader = k.FindTask(pid);
    if (leader == nullptr) continue;
    ThreadGroup& g = leader->tg();
    if (g.zombie || g.threads.empty()) continue;
    if (g.oom_killed_at.has_value() && now - *g.oom_killed_at < absl::Seconds(1)) {
      // oom_evaluate_task's abort: a victim is on its way out.
      if (&g != &tg()) (void)Block(now + absl::Milliseconds(5));
      return;
    }
    if (g.exiting || g.oom_score_adj == -1000) continue;
    MemoryManager* mm = g.threads.front()->mm_if_any();
    if (mm == nullptr) continue;
    const MemoryUsage u = mm->Usage();
    long badness = static_cast<long>(u.rss() + u.rss() / 512 + 3);
    badness += static_cast<long>(g.oom_score_adj) * (total / 1000);
    if (victim == nullptr || badness > best) {
      victim = g.threads.front();
      best = badness;
    }
  }
  if (victim == nullptr || &victim->tg() == &tg()) {
    tg().oom_killed_at = now;
    Log(k, absl::StrFormat("husk: out of memory (limit %d MiB): killed process %d (%s)\n",
                           MemoryAccount::Sandbox().limit() >> 20, tgid(), comm));
    ForceSignal(MakeSigInfo(SIGKILL, SI_KERNEL, 0, 0));
    return;
  }
  victim->kernel().mu.AssertHeld();  // one kernel
  victim->tg().oom_killed_at = now;
  Log(k, absl::StrFormat("husk: out of memory (limit %d MiB): killed process %d (%s)\n",
                         MemoryAccount::Sandbox().limit() >> 20, victim->tgid(), victim->comm));
  victim->SendProcessSignal(MakeSigInfo(SIGKILL, SI_KERNEL, 0, 0));
  // This task faults again once the victim's memory is back.
  (void)Block(now + absl::Milliseconds(5));
}

void Task::Run() {
  Kernel::SetCurrent(this);
  kernel().mu.Lock();
  BindTaskCpu(*this);
  // A child its parent's tracer attached stops before its first instruction.
  if (ptrace_ != nullptr) DeliverSignals(false);
  while (!exiting_) {
    mm_->ApplyPendingUnmaps();
    // Pages installed after this point by sibling threads may fault here
    // before they were installed: such a fault is retried, not signalled.
    const uint64_t generation = mm_->install_generation();
    kernel().mu.Unlock();
    Result<platform::StopInfo> r = ctx_->Switch(mm_->address_space(), regs);
    kernel().mu.Lock();
    if (!r.ok()) {
      Log(kernel(),
          absl::StrFormat("husk: task %d: platform failure: %s\n", tid_, strerror(r.error())));
      Exit(SIGKILL);
      break;
    }
    const platform::StopInfo& stop = *r;
    switch (stop.kind) {
      case platform::StopInfo::Kind::kSyscall: {
        if (RefuseLegacyEntry()) {
          DeliverSignals(false);
          break;
        }
        // Under PTRACE_SYSCALL or PTRACE_SYSEMU the tracer sees the entry
        // (rax -ENOSYS, as Linux shows it), may change the call or skip it
        // (orig_rax -1); SYSEMU never runs it, SYSCALL stops again at exit.
        bool run = true, exit_stop = false;
        if (ptrace_ != nullptr && (ptrace_->mode == Ptrace::Resume::kSyscall ||
                                   ptrace_->mode == Ptrace::Resume::kSysemu)) {
          const bool sysemu = ptrace_->mode == Ptrace::Resume::kSysemu;
          const int trap = SIGTRAP | ((ptrace_->options & PTRACE_O_TRACESYSGOOD) ? 0x80 : 0);
          regs.rax = static_cast<uint64_t>(-ENOSYS);
          PtraceStop((trap << 8) | 0x7f, nullptr, 1);
          if (exiting_) break;
          run = !sysemu && regs.orig_rax != ~0ULL;
          exit_stop = !sysemu && ptrace_ != nullptr && ptrace_->mode == Ptrace::Resume::kSyscall;
        }
        if (run) kernel().dispatch(*this);
        if (exit_stop && ptrace_ != nullptr && !exiting_) {
          const int trap = SIGTRAP | ((ptrace_->options & PTRACE_O_TRACESYSGOOD) ? 0x80 : 0);
          PtraceStop((trap << 8) | 0x7f, nullptr, 2);
        }
        // rt_sigreturn leaves orig_rax at -1: nothing to restart then.
        DeliverSignals(run && regs.orig_rax != ~0ULL);
        break;
      }
      case platform::StopInfo::Kind::kFault:
        OnFault(stop, generation);
        DeliverSignals(false);
        break;
      case platform::StopInfo::Kind::kSignal:
        // The host emulated a vsyscall for the stub and its seccomp filter
        // trapped the call: the sentry answers it instead.
        if (stop.info.si_signo == SIGSYS && stop.info.si_code == kSysSeccomp) {
          auto entry = reinterpret_cast<uintptr_t>(stop.info.si_call_addr);
          if (!InVsyscallPage(entry) || !EmulateVsyscall(entry, true)) {
            ForceSignal(MakeSigInfo(SIGSEGV, SI_KERNEL, 0, 0));
          }
          DeliverSignals(false);
          break;
        }
        ForceSignal(stop.info);
        DeliverSignals(false);
        break;
      case platform::StopInfo::Kind::kInterrupted:
        DeliverSignals(false);
        break;
      case platform::StopInfo::Kind::kExited:
        Exit(SIGKILL);
        break;
    }
  }
  // This thread leaves the address space; the host process dies with the
  // MM's last user.
  if (mm_ != nullptr && mm_.use_count() > 1) mm_->address_space().ReleaseThread();
  mm_.reset();
  ctx_.reset();
  kernel().mu.Unlock();
}

}  // namespace husk
