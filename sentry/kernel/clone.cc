// clone(2): new processes and new threads, with what each flag shares.
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "sentry/kernel/kernel.h"

namespace husk {

Result<long> Task::Clone(const CloneArgs& a) {
  const uint64_t flags = a.flags;
  constexpr uint64_t kNamespaces = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                   CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
  // copy_process's argument checks, in its order.
  if ((flags & (CLONE_NEWNS | CLONE_FS)) == (CLONE_NEWNS | CLONE_FS)) return Errno{EINVAL};
  if ((flags & (CLONE_NEWUSER | CLONE_FS)) == (CLONE_NEWUSER | CLONE_FS)) return Errno{EINVAL};
  if ((flags & CLONE_THREAD) && !(flags & CLONE_SIGHAND)) return Errno{EINVAL};
  if ((flags & CLONE_SIGHAND) && !(flags & CLONE_VM)) return Errno{EINVAL};
  if ((flags & CLONE_PARENT) && (tg_->sid == tgid() && tgid() == 1)) return Errno{EINVAL};
  if ((flags & CLONE_THREAD) && (flags & (CLONE_NEWUSER | CLONE_NEWPID))) return Errno{EINVAL};
  if ((flags & CLONE_PIDFD) && (flags & CLONE_DETACHED)) return Errno{EINVAL};
  // Namespaces and pidfds are not implemented (yet): refused and counted.
  if (flags & (kNamespaces | CLONE_PIDFD)) {
    kernel().CountUnimplemented(SYS_clone);
    return Errno{ENOSYS};
  }
  // RLIMIT_NPROC counts the threads of the caller's real user; root (with
  // CAP_SYS_RESOURCE in the sandbox's user namespace) is exempt (copy_process).
  if (euid != 0 && kernel().CountTasksOfUser(uid) >= tg_->rlimits[RLIMIT_NPROC].rlim_cur) {
    return Errno{EAGAIN};
  }
  const bool thread = (flags & CLONE_THREAD) != 0;
  const int tid = kernel().AllocatePid();
  auto child = std::make_shared<Task>(kernel_, tid);
  child->regs = regs;
  child->regs.rax = 0;
  if (a.stack != 0) child->regs.rsp = a.stack;
  if (flags & CLONE_SETTLS) child->regs.fs_base = a.tls;
  // What clone shares, or copies.
  if (flags & CLONE_FILES) {
    child->fds_ = fds_;
  } else {
    *child->fds_ = *fds_;
  }
  if (flags & CLONE_FS) {
    child->fs_ = fs_;
  } else {
    *child->fs_ = *fs_;
  }
  if (flags & CLONE_SIGHAND) {
    child->sighand_ = sighand_;
  } else {
    *child->sighand_ = *sighand_;
    // CLONE_CLEAR_SIGHAND: handled signals go back to their default; ignored stay ignored.
    if (a.clear_sighand) {
      for (SigAction& act : child->sighand_->actions) {
        if (act.handler != reinterpret_cast<uint64_t>(SIG_IGN)) act = SigAction{};
      }
    }
  }
  child->uid = uid, child->euid = euid, child->suid = suid, child->fsuid = fsuid;
  child->gid = gid, child->egid = egid, child->sgid = sgid, child->fsgid = fsgid;
  child->groups = groups;
  child->comm = comm;
  child->sigmask = sigmask;
  // Sharing memory without vfork means a new stack: no alternate signal
  // stack (copy_process's sas_ss_reset).
  if ((flags & (CLONE_VM | CLONE_VFORK)) != CLONE_VM) child->altstack = altstack;
  if (thread) {
    child->tg_ = tg_;  // the child's own new group goes unused
  } else {
    ThreadGroup& g = *child->tg_;
    g.ppid = (flags & CLONE_PARENT) ? tg_->ppid : tgid();
    g.parent_thread = (flags & CLONE_PARENT) ? tg_->parent_thread : tid_;
    g.pgid = tg_->pgid;
    g.sid = tg_->sid;
    g.rlimits = tg_->rlimits;
    g.exe = tg_->exe;
    g.argv = tg_->argv;
    g.exit_signal = a.exit_signal;
  }
  child->vfork_done = !(flags & CLONE_VFORK);

  std::unique_ptr<MemoryManager> forked;
  std::optional<platform::ThreadToken> token;
  if (flags & CLONE_VM) {
    // The same memory: a new host thread in the address space, made
    // through this task's own.
    ASSIGN_OR_RETURN(token, mm_->address_space().NewThread());
    child->mm_ = mm_;
  } else {
    ASSIGN_OR_RETURN(forked, mm_->Fork());
  }
  MemoryManager& child_mm = forked != nullptr ? *forked : *mm_;
  if (flags & CLONE_CHILD_SETTID) (void)child_mm.CopyOut(a.child_tid, &tid, sizeof(tid));
  if (flags & CLONE_CHILD_CLEARTID) child->clear_child_tid = a.child_tid;
  if (flags & CLONE_PARENT_SETTID) (void)CopyOutObj(a.parent_tid, tid);
  // A tracer asking for fork/vfork/clone events gets the child too.
  const int ptrace_event = PtraceInherit(*child, flags, a.exit_signal);
  kernel().AddTask(child);
  if (thread) tg_->threads.push_back(child.get());  // a new process's is in its own group
  // fork(2) copies the floating-point and vector state with the registers;
  // a thread's host thread inherited it from ours at its clone.
  if (forked != nullptr) {
    auto fp = ctx_->GetFpState(mm_->address_space());
    if (fp.ok()) child->initial_fp_state = std::move(*fp);
  }
  if (Status started = kernel().StartTask(child, std::move(forked), token); !started.ok()) {
    if (thread) std::erase(tg_->threads, child.get());
    kernel().RemoveTask(tid);
    return Errno{started.error()};
  }
  if (ptrace_event != 0 && ptrace_ != nullptr) {
    ptrace_->event_msg = static_cast<uint64_t>(tid);
    PtraceStop((ptrace_event << 16) | (SIGTRAP << 8) | 0x7f, nullptr, 0);
  }
  if (flags & CLONE_VFORK) {
    while (!child->vfork_done) kernel().cv.Wait(&kernel().mu);
    PtraceEvent(PTRACE_EVENT_VFORK_DONE, PTRACE_O_TRACEVFORKDONE, static_cast<uint64_t>(tid));
  }
  return static_cast<long>(tid);
}

}  // namespace husk
