#include "sentry/kernel/kernel.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <thread>

#include "absl/strings/str_format.h"
#include "sentry/loader/loader.h"
#include "sentry/memfile/account.h"

namespace husk {
namespace {
constexpr uint64_t kUserCs = 0x33;  // __USER_CS: 64-bit code
constexpr uint64_t kUserDs = 0x2b;  // __USER_DS
thread_local Task* current_task = nullptr;

void Log(Kernel& k, const std::string& s) { (void)!write(k.log_fd, s.data(), s.size()); }

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

std::shared_ptr<Task> Kernel::FindTask(int tid) {
  auto it = tasks_.find(tid);
  return it == tasks_.end() ? nullptr : it->second;
}

std::vector<int> Kernel::Pids() {
  std::vector<int> out;
  for (auto& [tid, t] : tasks_) out.push_back(tid);  // zombies too, until reaped
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
    if (t->ppid == ppid) out.push_back(t);
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
                                                     std::vector<std::string> argv,
                                                     std::vector<std::string> envp,
                                                     const std::string& cwd) {
  absl::MutexLock l(&mu);
  auto t = std::make_shared<Task>(*this, AllocatePid());
  t->fs.root = root;
  t->fs.cwd = root;
  if (!cwd.empty()) {
    auto d = vfs::Resolve(t->fs, root, cwd, true);
    if (d.ok() && (*d)->inode()->IsDir()) t->fs.cwd = *d;
  }
  t->pgid = t->sid = t->tid();
  for (int i = 0; i < RLIM_NLIMITS; i++) t->rlimits[i] = {RLIM_INFINITY, RLIM_INFINITY};
  t->rlimits[RLIMIT_STACK] = {8 << 20, RLIM_INFINITY};
  t->rlimits[RLIMIT_NOFILE] = {1024, 1 << 20};
  t->rlimits[RLIMIT_CORE] = {0, RLIM_INFINITY};
  t->rlimits[RLIMIT_NPROC] = {4096, 4096};
  t->rlimits[RLIMIT_MEMLOCK] = {8 << 20, 8 << 20};
  t->rlimits[RLIMIT_SIGPENDING] = {4096, 4096};
  t->rlimits[RLIMIT_MSGQUEUE] = {819200, 819200};
  t->rlimits[RLIMIT_NICE] = {0, 0};
  t->rlimits[RLIMIT_RTPRIO] = {0, 0};
  AddTask(t);
  return t;
}

Status Kernel::StartTask(std::shared_ptr<Task> t, std::unique_ptr<MemoryManager> mm_without_as) {
  t->start_state_ = Task::StartState::kPending;
  auto body = [this, t, mm = std::move(mm_without_as)]() mutable {
    Kernel::SetCurrent(t.get());
    {
      absl::MutexLock l(&mu);
      t->ctx_ = platform_.NewContext();
      if (mm != nullptr) {
        auto as = platform_.NewAddressSpace();
        if (!as.ok()) {
          // The host refused a process (pids limit, memory): the parent's
          // fork fails with EAGAIN, as Linux's does when it runs out.
          Log(*this, absl::StrFormat("husk: task %d: cannot create an address space: %s\n",
                                     t->tid(), strerror(as.error())));
          t->ctx_.reset();
          t->start_state_ = Task::StartState::kFailed;
          cv.SignalAll();
          return;
        }
        mm->AttachAddressSpace(std::move(*as));
        t->mm_ = std::move(mm);
        if (!t->initial_fp_state.empty()) {
          (void)t->ctx_->SetFpState(t->mm_->address_space(), t->initial_fp_state);
          t->initial_fp_state.clear();
        }
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
    return Errno{EAGAIN};
  }
  while (t->start_state_ == Task::StartState::kPending) cv.Wait(&mu);
  if (t->start_state_ == Task::StartState::kFailed) return Errno{EAGAIN};
  return Ok();
}

void Kernel::StartInit(std::shared_ptr<Task> t, const std::string& path,
                       std::vector<std::string> argv, std::vector<std::string> envp) {
  std::thread([this, t, path, argv = std::move(argv), envp = std::move(envp)]() mutable {
    Kernel::SetCurrent(t.get());
    {
      absl::MutexLock l(&mu);
      t->ctx_ = platform_.NewContext();
      Status st = t->Exec(path, std::move(argv), std::move(envp));
      if (!st.ok()) {
        Log(*this, absl::StrFormat("husk: cannot execute %s: %s\n", path, strerror(st.error())));
        int code = st.error() == ENOENT ? 127 : 126;
        t->kernel().mu.AssertHeld();  // t's kernel is this one
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

// The sandbox's root holds every capability in its user namespace. Linux
// drops the file capabilities (CAP_FS_MASK) from the effective set when the
// fsuid leaves 0 and raises them again when it comes back
// (cap_emulate_setxuid); a setuid away from every root id also empties the
// permitted set, but then no id is 0 and the fsuid cannot return to 0. husk
// has neither capset(2) nor SECBIT_KEEP_CAPS, so the file capabilities are
// held exactly while the fsuid is 0. The others (CAP_SETUID, CAP_SETGID,
// CAP_SYS_RESOURCE) follow the euid in sys_process.cc.
vfs::Creds Task::FsCreds() const {
  return vfs::Creds{fsuid, fsgid, groups, fsuid == 0 ? vfs::kFsCapabilities : 0};
}

vfs::Creds Task::AccessCreds() const {
  return vfs::Creds{uid, gid, groups, uid == 0 ? vfs::kFsCapabilities : 0};
}

Status Task::Exec(const std::string& path, std::vector<std::string> argv,
                  std::vector<std::string> envp) {
  Kernel& k = kernel_;
  ASSIGN_OR_RETURN(std::unique_ptr<platform::AddressSpace> as, k.platform().NewAddressSpace());
  auto mm = std::make_unique<MemoryManager>(k.memory_file(), std::move(as),
                                            k.platform().MinUserAddress(),
                                            k.platform().MaxUserAddress());
  loader::Credentials creds{uid, euid, gid, egid, FsCreds()};
  ASSIGN_OR_RETURN(loader::Image img, loader::Load(*mm, fs, path, std::move(argv), envp, creds));
  // Past the point of no return: the old image goes away, releasing its
  // robust futexes and clear_child_tid first (exec_mm_release).
  ReleaseFutexes(*this);
  RetireTaskAddressSpace(*this);
  k.posix_timers.OnExec(tgid_);
  mm_ = std::move(mm);
  regs = platform::Registers{};
  regs.rip = img.entry;
  regs.rsp = img.stack_pointer;
  regs.cs = kUserCs;
  regs.ss = kUserDs;
  regs.eflags = 0x202;
  regs.orig_rax = ~0ULL;  // not in a syscall: no restart logic on the first resume
  fds.CloseOnExec();
  for (auto& act : sigactions) {
    if (act.handler != reinterpret_cast<uint64_t>(SIG_IGN)) act = SigAction{};
  }
  altstack = stack_t{nullptr, SS_DISABLE, 0};
  comm = Basename(path);
  exe = img.exe;
  this->argv = std::move(img.argv);
  if (!vfork_done) {
    vfork_done = true;
    k.cv.SignalAll();
  }
  return Ok();
}

void Task::Exit(int wait_status) {
  if (exiting_) return;
  exiting_ = true;
  exit_status = wait_status;
  FreezeTaskCpu(*this);
  ReleaseFutexes(*this);
  fds = FdTable();
  kernel().real_timers.Remove(tgid_);
  kernel().posix_timers.OnExit(tgid_);
  vfork_done = true;
  zombie = true;
  // Orphans go to init, as on Linux without a subreaper.
  for (auto& child : kernel().Children(tgid_)) child->ppid = 1;
  std::shared_ptr<Task> parent = ppid != 0 ? kernel().FindTask(ppid) : nullptr;
  if (tid_ == 1) {
    kernel().init_done_ = true;
    kernel().init_status_ = wait_status;
  } else if (parent == nullptr) {
    kernel().RemoveTask(tid_);  // nobody will reap it
  } else {
    // One kernel, one big lock: the parent's is ours.
    parent->kernel().mu.AssertHeld();
    // The parent learns through exit_signal (SIGCHLD) and its wait4 wakes.
    if (exit_signal > 0) {
      int code = WIFSIGNALED(wait_status) ? (WCOREDUMP(wait_status) ? CLD_DUMPED : CLD_KILLED)
                                          : CLD_EXITED;
      siginfo_t info = MakeSigInfo(exit_signal, code, tgid_, uid);
      info.si_status = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : WEXITSTATUS(wait_status);
      SetSigchldTimes(*this, &info);
      parent->SendSignal(info);
    }
    // A parent that ignores SIGCHLD (or set SA_NOCLDWAIT) leaves no zombie
    // to reap (wait(2), NOTES).
    const SigAction& chld = parent->sigactions[SIGCHLD];
    if (exit_signal == SIGCHLD && (chld.handler == reinterpret_cast<uint64_t>(SIG_IGN) ||
                                   (chld.flags & SA_NOCLDWAIT))) {
      kernel().RemoveTask(tid_);
    }
    parent->waiter.Notify();
  }
  kernel().cv.SignalAll();
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
void Task::OnFault(const platform::StopInfo& stop) {
  // A call into the vsyscall page where the host has none.
  if (stop.addr == regs.rip && InVsyscallPage(stop.addr) && EmulateVsyscall(stop.addr, false)) {
    return;
  }
  bool out_of_memory = false;
  if (mm_->HandleFault(stop.addr, &out_of_memory)) return;  // installed
  if (out_of_memory) {
    // The sandbox is at its memory limit: like the memory cgroup's OOM
    // killer, end the process that needs the page (SIGKILL); the rest
    // of the sandbox goes on.
    Log(kernel(), absl::StrFormat("husk: out of memory (limit %d MiB): killed process %d (%s)\n",
                                  MemoryAccount::Sandbox().limit() >> 20, tgid_, comm));
    ForceSignal(MakeSigInfo(SIGKILL, SI_KERNEL, 0, 0));
    return;
  }
  if (kernel().strace) {
    Log(kernel(), absl::StrFormat("--- %s {si_code=%d, si_addr=%#x} (ip %#x) ---\n",
                                  stop.info.si_signo == SIGBUS ? "SIGBUS" : "SIGSEGV",
                                  stop.info.si_code, stop.addr, regs.rip));
  }
  siginfo_t info =
      MakeSigInfo(stop.info.si_signo == SIGBUS ? SIGBUS : SIGSEGV, stop.info.si_code, 0, 0);
  if (info.si_signo == SIGSEGV) {
    // The host saw no mapping either way (pages are installed lazily):
    // the VMAs tell an access error from a missing mapping.
    info.si_code = mm_->HasVma(stop.addr) ? SEGV_ACCERR : SEGV_MAPERR;
  }
  info.si_addr = reinterpret_cast<void*>(stop.addr);
  ForceSignal(info);
}

void Task::Run() {
  Kernel::SetCurrent(this);
  kernel().mu.Lock();
  BindTaskCpu(*this);
  while (!exiting_) {
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
      case platform::StopInfo::Kind::kSyscall:
        if (RefuseLegacyEntry()) {
          DeliverSignals(false);
          break;
        }
        kernel().dispatch(*this);
        // rt_sigreturn leaves orig_rax at -1: nothing to restart then.
        DeliverSignals(regs.orig_rax != ~0ULL);
        break;
      case platform::StopInfo::Kind::kFault:
        OnFault(stop);
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
  // The address space host process dies with the MM.
  mm_.reset();
  ctx_.reset();
  kernel().mu.Unlock();
}

}  // namespace husk
