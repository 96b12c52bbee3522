// ptrace(2): the tracer's requests. Stops and their ends live on the
// tracee's side in sentry/kernel/ptrace.cc. Everything goes through the
// sentry: a tracer reads and writes the tracee's memory and registers as
// the sentry holds them, and no host process is ever traced by the
// application.
#include <elf.h>
#include <errno.h>
#include <linux/ptrace.h>
#include <signal.h>
#include <stddef.h>
#include <sys/user.h>

#include <cstring>

#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

using How = Task::Ptrace::Resume;

constexpr long kPtraceGetSyscallInfo = 0x420e;
constexpr uint32_t kAllOptions =
    PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
    PTRACE_O_TRACEEXEC | PTRACE_O_TRACEVFORKDONE | PTRACE_O_TRACEEXIT | PTRACE_O_TRACESECCOMP |
    PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP;
// Flags a tracer may change (arch/x86 FLAG_MASK).
constexpr uint64_t kFlagMask = 0x40dd5;

// PTRACE_MODE_ATTACH: the same user, or root in the sandbox; never a
// thread of the caller's own process.
bool MayAttach(Task& t, Task& target) {
  if (target.tgid() == t.tgid()) return false;
  if (t.euid == 0) return true;
  return t.uid == target.uid && t.uid == target.euid && t.uid == target.suid &&
         t.gid == target.gid && t.gid == target.egid && t.gid == target.sgid;
}

// The tracee of t named by pid, in a ptrace-stop unless `running_ok`.
Result<std::shared_ptr<Task>> Tracee(Task& t, int pid, bool running_ok)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  auto target = t.kernel().FindTask(pid);
  if (target == nullptr || target->exited()) return Errno{ESRCH};
  target->kernel().mu.AssertHeld();  // one kernel, one lock
  if (target->ptrace_ == nullptr || target->ptrace_->tracer != t.tid()) return Errno{ESRCH};
  if (!running_ok && target->ptrace_->stop_status == 0) return Errno{ESRCH};
  return target;
}

// Checks and applies a user_regs_struct the tracer wrote (putreg's rules).
Status SetRegs(Task& target, const user_regs_struct& r) {
  if (r.cs != kUserCs || r.ss != kUserDs) return Errno{EIO};
  if (r.fs_base >= kTaskSize || r.gs_base >= kTaskSize) return Errno{EIO};
  user_regs_struct n = r;
  n.eflags = (target.regs.eflags & ~kFlagMask) | (r.eflags & kFlagMask);
  n.ds = target.regs.ds, n.es = target.regs.es, n.fs = target.regs.fs, n.gs = target.regs.gs;
  target.regs = n;
  return Ok();
}

Result<long> ResumeTracee(Task& target, How how, uint64_t sig)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(target.kernel().mu) {
  if (sig > static_cast<uint64_t>(kMaxSignal)) return Errno{EIO};
  Task::Ptrace& p = *target.ptrace_;
  p.resume = how;
  p.resume_sig = static_cast<int>(sig);
  // A detach takes effect now for the tracer: the tracee is no longer its
  // to wait for or command, even before it runs again.
  if (how == How::kDetach) p.tracer = 0;
  target.waiter.Notify();
  return 0L;
}

Result<long> PeekUser(Task& t, Task& target, uint64_t off, uintptr_t out) {
  if (off % 8 != 0 || off >= sizeof(struct user)) return Errno{EIO};
  uint64_t value = 0;
  if (off < sizeof(user_regs_struct)) {
    memcpy(&value, reinterpret_cast<const char*>(&target.regs) + off, 8);
  }
  // Everything else (the FPU image, debug registers) reads as 0: husk
  // offers no hardware breakpoints or watchpoints.
  TRY(t.CopyOutObj(out, value));
  return 0L;
}

Result<long> PokeUser(Task& target, uint64_t off, uint64_t value) {
  if (off % 8 != 0 || off >= sizeof(struct user)) return Errno{EIO};
  if (off < sizeof(user_regs_struct)) {
    user_regs_struct r = target.regs;
    memcpy(reinterpret_cast<char*>(&r) + off, &value, 8);
    TRY(SetRegs(target, r));
    return 0L;
  }
  constexpr uint64_t kDebugRegs = offsetof(struct user, u_debugreg);
  if (off >= kDebugRegs && off < kDebugRegs + 8 * 8 && value == 0) return 0L;  // nothing armed
  return Errno{EIO};
}

}  // namespace

SyscallResult SysPtrace(Task& t, const Args& a) {
  const long req = a.Long(0);
  const int pid = a.Int(1);
  const uintptr_t addr = a.Ptr(2), data = a.Ptr(3);

  if (req == PTRACE_TRACEME) {
    // The parent process traces us (its thread that forked us, or its leader).
    if (t.ptrace_ != nullptr) return Errno{EPERM};
    auto parent =
        t.kernel().FindTask(t.tg().parent_thread != 0 ? t.tg().parent_thread : t.tg().ppid);
    if (parent == nullptr || parent->exited()) parent = t.kernel().FindTask(t.tg().ppid);
    if (parent == nullptr || t.tg().ppid == 0) return Errno{EPERM};
    t.ptrace_ = std::make_unique<Task::Ptrace>();
    t.ptrace_->tracer = parent->tid();
    return 0L;
  }
  if (req == PTRACE_ATTACH || req == PTRACE_SEIZE) {
    auto target = t.kernel().FindTask(pid);
    if (target == nullptr || target->exited()) return Errno{ESRCH};
    target->kernel().mu.AssertHeld();
    if (!MayAttach(t, *target)) return Errno{EPERM};
    if (target->ptrace_ != nullptr) return Errno{EPERM};
    if (req == PTRACE_SEIZE && (addr != 0 || (data & ~uint64_t{kAllOptions}))) return Errno{EIO};
    target->ptrace_ = std::make_unique<Task::Ptrace>();
    target->ptrace_->tracer = t.tid();
    if (req == PTRACE_SEIZE) {
      target->ptrace_->seized = true;
      target->ptrace_->options = static_cast<uint32_t>(data);
    } else {
      // PTRACE_ATTACH stops the tracee with a SIGSTOP of its own.
      target->SendSignal(MakeSigInfo(SIGSTOP, SI_USER, t.tgid(), t.uid));
    }
    return 0L;
  }

  switch (req) {
    case PTRACE_INTERRUPT: {
      ASSIGN_OR_RETURN(auto target, Tracee(t, pid, true));
      if (!target->ptrace_->seized) return Errno{EIO};
      if (target->ptrace_->stop_status == 0) {
        target->ptrace_->interrupt = true;
        target->Wake();
      }
      return 0L;
    }
    case PTRACE_KILL: {
      ASSIGN_OR_RETURN(auto target, Tracee(t, pid, true));
      target->kernel().mu.AssertHeld();  // one kernel, one lock
      target->SendSignal(MakeSigInfo(SIGKILL, SI_KERNEL, 0, 0));
      return 0L;
    }
    default:
      break;
  }

  ASSIGN_OR_RETURN(auto target, Tracee(t, pid, false));
  target->kernel().mu.AssertHeld();  // one kernel, one lock
  Task::Ptrace& p = *target->ptrace_;
  switch (req) {
    case PTRACE_PEEKTEXT:
    case PTRACE_PEEKDATA: {
      uint64_t word;
      TRY(target->mm().ForceCopyIn(addr, &word, sizeof(word)));
      TRY(t.CopyOutObj(data, word));
      return 0L;
    }
    case PTRACE_POKETEXT:
    case PTRACE_POKEDATA: {
      uint64_t word = data;
      TRY(target->mm().ForceCopyOut(addr, &word, sizeof(word)));
      return 0L;
    }
    case PTRACE_PEEKUSR:
      return PeekUser(t, *target, addr, data);
    case PTRACE_POKEUSR:
      return PokeUser(*target, addr, data);
    case PTRACE_GETREGS:
      TRY(t.CopyOutObj(data, target->regs));
      return 0L;
    case PTRACE_SETREGS: {
      user_regs_struct r;
      TRY(t.CopyInObj(data, &r));
      TRY(SetRegs(*target, r));
      return 0L;
    }
    case PTRACE_GETFPREGS: {
      if (p.fp.size() < sizeof(user_fpregs_struct)) return Errno{EIO};
      TRY(t.CopyOut(data, p.fp.data(), sizeof(user_fpregs_struct)));
      return 0L;
    }
    case PTRACE_SETFPREGS: {
      if (p.fp.size() < sizeof(user_fpregs_struct)) return Errno{EIO};
      TRY(t.CopyIn(data, p.fp.data(), sizeof(user_fpregs_struct)));
      p.fp_dirty = true;
      return 0L;
    }
    case PTRACE_GETREGSET:
    case PTRACE_SETREGSET: {
      struct iovec iov;
      TRY(t.CopyInObj(data, &iov));
      char* src;
      size_t size;
      if (addr == NT_PRSTATUS) {
        src = reinterpret_cast<char*>(&target->regs);
        size = sizeof(user_regs_struct);
      } else if (addr == NT_PRFPREG || addr == NT_X86_XSTATE) {
        if (p.fp.empty()) return Errno{EIO};
        src = reinterpret_cast<char*>(p.fp.data());
        size = addr == NT_PRFPREG ? sizeof(user_fpregs_struct) : p.fp.size();
      } else {
        return Errno{EINVAL};
      }
      size_t n = std::min(size, iov.iov_len);
      if (req == PTRACE_GETREGSET) {
        TRY(t.CopyOut(reinterpret_cast<uintptr_t>(iov.iov_base), src, n));
        iov.iov_len = n;
        TRY(t.CopyOutObj(data, iov));
        return 0L;
      }
      if (addr == NT_PRSTATUS) {
        user_regs_struct r = target->regs;
        TRY(t.CopyIn(reinterpret_cast<uintptr_t>(iov.iov_base), &r, n));
        TRY(SetRegs(*target, r));
      } else {
        TRY(t.CopyIn(reinterpret_cast<uintptr_t>(iov.iov_base), src, n));
        p.fp_dirty = true;
      }
      return 0L;
    }
    case PTRACE_GETSIGINFO:
      TRY(t.CopyOutObj(data, p.siginfo));
      return 0L;
    case PTRACE_SETSIGINFO:
      TRY(t.CopyInObj(data, &p.siginfo));
      return 0L;
    case PTRACE_SETOPTIONS:
      if (data & ~uint64_t{kAllOptions}) return Errno{EINVAL};
      p.options = static_cast<uint32_t>(data);
      return 0L;
    case PTRACE_GETEVENTMSG:
      TRY(t.CopyOutObj(data, static_cast<unsigned long>(p.event_msg)));
      return 0L;
    case kPtraceGetSyscallInfo: {
      // struct ptrace_syscall_info: op, arch, ip, sp, then entry or exit.
      struct Info {
        uint8_t op;
        uint8_t pad[3];
        uint32_t arch;
        uint64_t ip, sp;
        uint64_t u[7];
      } info{};
      info.arch = 0xc000003e;  // AUDIT_ARCH_X86_64
      info.ip = target->regs.rip;
      info.sp = target->regs.rsp;
      size_t size = offsetof(Info, u);
      const platform::Registers& r = target->regs;
      if (p.syscall_stop == 1) {
        info.op = 1;  // PTRACE_SYSCALL_INFO_ENTRY
        uint64_t entry[7] = {r.orig_rax, r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9};
        memcpy(info.u, entry, sizeof(entry));
        size = offsetof(Info, u) + sizeof(entry);
      } else if (p.syscall_stop == 2) {
        info.op = 2;  // PTRACE_SYSCALL_INFO_EXIT
        const auto rval = static_cast<int64_t>(r.rax);
        info.u[0] = r.rax;
        info.u[1] = (rval < 0 && rval >= -4095) ? 1 : 0;
        size = offsetof(Info, u) + 2 * sizeof(uint64_t) - 7;  // rval, is_error (u8)
      }
      TRY(t.CopyOut(data, &info, std::min<size_t>(addr, size)));
      return static_cast<long>(size);
    }
    case PTRACE_CONT:
      return ResumeTracee(*target, How::kCont, data);
    case PTRACE_SYSCALL:
      return ResumeTracee(*target, How::kSyscall, data);
    case PTRACE_SYSEMU:
      return ResumeTracee(*target, How::kSysemu, data);
    case PTRACE_SINGLESTEP:
      return ResumeTracee(*target, How::kStep, data);
    case PTRACE_LISTEN:
      if (!p.seized) return Errno{EIO};
      // Stays stopped until a new event; husk treats it as a plain
      // continue of a group-stop only when SIGCONT arrives.
      return 0L;
    case PTRACE_DETACH:
      return ResumeTracee(*target, How::kDetach, data);
    default:
      return Errno{EIO};
  }
}

}  // namespace husk::syscalls
