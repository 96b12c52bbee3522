// clone(2): new processes and new threads, with what each flag shares.
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pidfd.h"

namespace husk {

// What a new task inherits of its creator's scheduling and prctl state
// (copy_process, sched_fork): all but the parent-death signal, and
// SCHED_RESET_ON_FORK puts a real-time policy or a negative nice back.
void Task::CopyProcessControl(Task& child) const {
  child.nice = nice;
  child.sched_policy = sched_policy;
  child.sched_priority = sched_priority;
  child.cpu_mask = cpu_mask;
  child.no_new_privs = no_new_privs;
  child.timer_slack_ns = timer_slack_ns;
  child.default_timer_slack_ns = timer_slack_ns;
  if (sched_reset_on_fork) {
    if (sched_policy == SCHED_FIFO || sched_policy == SCHED_RR) {
      child.sched_policy = SCHED_OTHER;
      child.sched_priority = 0;
    }
    if (child.nice < 0) child.nice = 0;
  }
}

namespace {

constexpr uint64_t kNamespaces = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                 CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
// The namespaces husk makes. A new cgroup namespace is rooted at the
// caller's cgroup, and every task is in the sandbox's one cgroup, which its
// namespace already shows as "/": it changes nothing that can be seen.
constexpr uint64_t kSupportedNamespaces = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWCGROUP;

}  // namespace

Result<long> Task::Clone(const CloneArgs& a) {
  const uint64_t flags = a.flags;
  // copy_process's argument checks, in its order.
  if ((flags & (CLONE_NEWNS | CLONE_FS)) == (CLONE_NEWNS | CLONE_FS)) return Errno{EINVAL};
  if ((flags & (CLONE_NEWUSER | CLONE_FS)) == (CLONE_NEWUSER | CLONE_FS)) return Errno{EINVAL};
  if ((flags & CLONE_THREAD) && !(flags & CLONE_SIGHAND)) return Errno{EINVAL};
  if ((flags & CLONE_SIGHAND) && !(flags & CLONE_VM)) return Errno{EINVAL};
  if ((flags & CLONE_PARENT) && (tg_->sid == tgid() && tgid() == 1)) return Errno{EINVAL};
  if ((flags & CLONE_THREAD) && (flags & (CLONE_NEWUSER | CLONE_NEWPID))) return Errno{EINVAL};
  if ((flags & CLONE_PIDFD) && (flags & CLONE_DETACHED)) return Errno{EINVAL};
  // clone(2) returns the pidfd where the parent's tid would go, and Linux
  // 6.1 gives pidfds to processes only.
  if ((flags & CLONE_PIDFD) && (flags & (CLONE_PARENT_SETTID | CLONE_THREAD))) {
    return Errno{EINVAL};
  }
  // The namespaces not implemented (yet) are refused and counted; the
  // others need CAP_SYS_ADMIN (copy_namespaces, below).
  if (flags & kNamespaces & ~kSupportedNamespaces) {
    kernel().CountUnimplemented(SYS_clone);
    return Errno{ENOSYS};
  }
  // RLIMIT_NPROC counts the threads of the caller's real user;
  // CAP_SYS_RESOURCE or CAP_SYS_ADMIN exempts (copy_process).
  if (!Capable(CAP_SYS_RESOURCE) && !Capable(CAP_SYS_ADMIN) &&
      kernel().CountTasksOfUser(uid) >= tg_->rlimits[RLIMIT_NPROC].rlim_cur) {
    return Errno{EAGAIN};
  }
  // copy_namespaces(): a new namespace needs CAP_SYS_ADMIN.
  if ((flags & kNamespaces) && !Capable(CAP_SYS_ADMIN)) return Errno{EPERM};
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
    child->fds_ = std::make_shared<FdTable>(*fds_);
  }
  if (flags & CLONE_FS) {
    child->fs_ = fs_;
  } else {
    *child->fs_ = *fs_;
  }
  // The child's mounts are a copy of ours; root and working directory stay
  // the same dentries, which every namespace shares.
  if (flags & CLONE_NEWNS) child->fs_->mnt_ns = vfs::MountNamespace::Copy(fs_->mnt_ns.get());
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
  // CLONE_NEWUTS: the child's names start as a copy of ours.
  child->uts_ = (flags & CLONE_NEWUTS) ? std::make_shared<UtsNamespace>(*uts_) : uts_;
  child->uid = uid, child->euid = euid, child->suid = suid, child->fsuid = fsuid;
  child->gid = gid, child->egid = egid, child->sgid = sgid, child->fsgid = fsgid;
  child->groups = groups;
  child->caps = caps;
  CopyProcessControl(*child);
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
    g.ctty = tg_->ctty;
    g.rlimits = tg_->rlimits;
    g.oom_score_adj = tg_->oom_score_adj;
    g.oom_score_adj_min = tg_->oom_score_adj_min;
    g.coredump_filter = tg_->coredump_filter;
    g.exe = tg_->exe;
    g.argv = tg_->argv;
    g.arg_start = tg_->arg_start;
    g.arg_end = tg_->arg_end;
    g.env_start = tg_->env_start;
    g.env_end = tg_->env_end;
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
  // CLONE_PIDFD: the parent's close-on-exec pidfd, written before the
  // child runs; a bad address fails the clone (copy_process).
  int pidfd = -1;
  if (flags & CLONE_PIDFD) {
    ASSIGN_OR_RETURN(pidfd, fds_->Add(pidfd::New(child->tg_, O_RDWR), true));
    if (!CopyOutObj(a.parent_tid, pidfd).ok()) {
      (void)fds_->Remove(pidfd);
      if (token.has_value()) mm_->address_space().DiscardThread(*token);
      return Errno{EFAULT};
    }
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
    if (pidfd >= 0) (void)fds_->Remove(pidfd);
    kernel().RemoveTask(tid);
    return Errno{started.error()};
  }
  // A new process keeps counting against the RLIMIT_CPU it copied.
  if (!thread && child->tg().rlimits[RLIMIT_CPU].rlim_cur != RLIM_INFINITY) {
    kernel().posix_timers.UpdateCpuRlimit(*child);
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

// unshare(2) (ksys_unshare): the checks of check_unshare_flags, then what
// is copied (the filesystem context, the descriptor table), then the new
// namespaces, which need CAP_SYS_ADMIN; nothing changes unless all succeed.
Status Task::Unshare(uint64_t flags) {
  // What one flag implies of the others.
  if (flags & CLONE_NEWUSER) flags |= CLONE_THREAD | CLONE_FS;
  if (flags & CLONE_VM) flags |= CLONE_SIGHAND;
  if (flags & CLONE_SIGHAND) flags |= CLONE_THREAD;
  if (flags & CLONE_NEWNS) flags |= CLONE_FS;
  constexpr uint64_t kAllowed = CLONE_THREAD | CLONE_FS | CLONE_NEWNS | CLONE_SIGHAND | CLONE_VM |
                                CLONE_FILES | CLONE_SYSVSEM | CLONE_NEWUTS | CLONE_NEWIPC |
                                CLONE_NEWNET | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWCGROUP |
                                CLONE_NEWTIME;
  if (flags & ~kAllowed) return Errno{EINVAL};
  // Threads, handlers and memory cannot be unshared, only kept when they
  // are not shared already.
  if (flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)) {
    size_t live = 0;
    for (const Task* thread : tg_->threads) live += thread->exiting_ ? 0 : 1;
    if (live > 1) return Errno{EINVAL};
  }
  if ((flags & (CLONE_SIGHAND | CLONE_VM)) && sighand_.use_count() > 1) return Errno{EINVAL};
  if ((flags & CLONE_VM) && mm_ != nullptr && mm_.use_count() > 1) return Errno{EINVAL};
  // CLONE_SYSVSEM: there are no System V semaphores, so no undo list to
  // leave.
  // unshare_userns(): user namespaces are not implemented (Linux without
  // CONFIG_USER_NS answers EINVAL).
  if (flags & CLONE_NEWUSER) return Errno{EINVAL};
  // unshare_nsproxy_namespaces().
  constexpr uint64_t kNewNamespaces = kNamespaces | CLONE_NEWTIME;
  if ((flags & kNewNamespaces) && !Capable(CAP_SYS_ADMIN)) return Errno{EPERM};
  // create_new_namespaces(): the mount, IPC, network, PID and time
  // namespaces are not implemented: EINVAL, as from a kernel built without
  // them.
  if (flags & kNewNamespaces & ~kSupportedNamespaces) return Errno{EINVAL};

  if ((flags & CLONE_FS) && fs_.use_count() > 1) fs_ = std::make_shared<vfs::FsContext>(*fs_);
  if ((flags & CLONE_FILES) && fds_.use_count() > 1) fds_ = std::make_shared<FdTable>(*fds_);
  if (flags & CLONE_NEWUTS) uts_ = std::make_shared<UtsNamespace>(*uts_);
  if (flags & CLONE_NEWNS) fs_->mnt_ns = vfs::MountNamespace::Copy(fs_->mnt_ns.get());
  return Ok();
}

}  // namespace husk
