// ptrace(2) on the tracee's side: its stops and what ends them. The tracer's
// requests are in sentry/syscalls/sys_ptrace.cc.
//
// A tracee in a ptrace-stop waits in the sentry, its registers in its Task
// and its FPU state copied out (only the tracee's host thread may touch its
// stub thread); the tracer reads and edits both, then resumes it.
#include <errno.h>
#include <linux/ptrace.h>
#include <signal.h>
#include <sys/wait.h>

#include "sentry/kernel/kernel.h"

namespace husk {

std::vector<std::shared_ptr<Task>> Kernel::Tracees(int tgid) {
  std::vector<std::shared_ptr<Task>> out;
  for (auto& [tid, t] : tasks_) {
    if (t->ptrace_ == nullptr) continue;
    auto tracer = FindTask(t->ptrace_->tracer);
    if (tracer != nullptr && tracer->tgid() == tgid) out.push_back(t);
  }
  return out;
}

int Task::PtraceStop(int status, const siginfo_t* info, int syscall_stop) {
  Ptrace& p = *ptrace_;
  std::shared_ptr<Task> tracer = kernel().FindTask(p.tracer);
  if (tracer == nullptr || tracer->exited()) {
    ptrace_.reset();  // the tracer is gone: as if detached
    return status >> 8 & 0x7f;
  }
  tracer->kernel().mu.AssertHeld();  // one kernel, one lock
  p.stop_status = status;
  p.stop_reported = false;
  p.resume = Ptrace::Resume::kNone;
  p.syscall_stop = syscall_stop;
  if (info != nullptr) {
    p.siginfo = *info;
  } else {
    p.siginfo = MakeSigInfo(SIGTRAP, status >> 8, 0, 0);
  }
  auto fp = ctx_->GetFpState(mm_->address_space());
  p.fp = fp.ok() ? std::move(*fp) : std::vector<uint8_t>();
  p.fp_dirty = false;
  // The tracer hears of it as of a child's stop (CLD_TRAPPED).
  siginfo_t chld = MakeSigInfo(SIGCHLD, CLD_TRAPPED, tid_, uid);
  chld.si_status = (status >> 8) & 0xff;
  tracer->SendProcessSignal(chld);
  tracer->tg().child_events.Notify(~0u);
  // Only SIGKILL (or the tracer's going) ends the stop early.
  stop_waiting_ = true;
  while (ptrace_ != nullptr && ptrace_->resume == Ptrace::Resume::kNone &&
         !(pending_.pending() & SignalBit(SIGKILL)) && !exiting_) {
    auto t = kernel().FindTask(ptrace_->tracer);
    if (t == nullptr || t->exited()) break;
    SleepInStop();
  }
  stop_waiting_ = false;
  if (ptrace_ == nullptr) return 0;
  Ptrace& q = *ptrace_;
  if (q.fp_dirty && !q.fp.empty()) (void)ctx_->SetFpState(mm_->address_space(), q.fp);
  q.fp.clear();
  q.stop_status = 0;
  q.syscall_stop = 0;
  const Ptrace::Resume how = q.resume;
  const int sig = q.resume_sig;
  q.resume = Ptrace::Resume::kNone;
  q.resume_sig = 0;
  // Single-stepping sets the trap flag for the next instruction; any other
  // resume clears it if it was ours.
  if (how == Ptrace::Resume::kStep) {
    regs.eflags |= 0x100;
    q.stepping = true;
  } else if (q.stepping) {
    regs.eflags &= ~uint64_t{0x100};
    q.stepping = false;
  }
  switch (how) {
    case Ptrace::Resume::kKill:
      ptrace_.reset();
      Exit(SIGKILL);
      return 0;
    case Ptrace::Resume::kDetach:
      ptrace_.reset();
      return sig;
    case Ptrace::Resume::kNone:  // SIGKILL, or the tracer went away
      if (kernel().FindTask(q.tracer) == nullptr) ptrace_.reset();
      return 0;
    default:
      q.mode = how;
      return sig;
  }
}

void Task::PtraceEvent(int event, uint32_t option, uint64_t msg) {
  if (ptrace_ == nullptr || !(ptrace_->options & option)) return;
  ptrace_->event_msg = msg;
  PtraceStop((event << 16) | (SIGTRAP << 8) | 0x7f, nullptr, 0);
}

int Task::PtraceInherit(Task& child, uint64_t flags, int exit_signal) {
  if (ptrace_ == nullptr || (flags & CLONE_UNTRACED)) return 0;
  int event;
  uint32_t option;
  if (flags & CLONE_VFORK) {
    event = PTRACE_EVENT_VFORK, option = PTRACE_O_TRACEVFORK;
  } else if (exit_signal == SIGCHLD && !(flags & CLONE_THREAD)) {
    event = PTRACE_EVENT_FORK, option = PTRACE_O_TRACEFORK;
  } else {
    event = PTRACE_EVENT_CLONE, option = PTRACE_O_TRACECLONE;
  }
  if (!(ptrace_->options & option)) return 0;
  child.ptrace_ = std::make_unique<Ptrace>();
  child.ptrace_->tracer = ptrace_->tracer;
  child.ptrace_->seized = ptrace_->seized;
  child.ptrace_->options = ptrace_->options;
  // The child stops before its first instruction: with SIGSTOP, or with a
  // PTRACE_EVENT_STOP when seized (Run sees `interrupt`).
  if (child.ptrace_->seized) {
    child.ptrace_->interrupt = true;
  } else {
    child.pending_.Push(MakeSigInfo(SIGSTOP, SI_USER, 0, 0), UINT64_MAX);
  }
  return event;
}

void Task::PtraceReleaseTracees() {
  for (auto& t : kernel().Tracees(tgid())) {
    if (t->ptrace_ == nullptr || t->ptrace_->tracer != tid_) continue;
    t->kernel().mu.AssertHeld();  // one kernel, one lock
    bool kill = (t->ptrace_->options & PTRACE_O_EXITKILL) != 0;
    if (t->ptrace_->stop_status != 0) {
      t->ptrace_->resume = Task::Ptrace::Resume::kDetach;
      t->ptrace_->resume_sig = 0;
      t->waiter.Notify();
    } else {
      t->ptrace_.reset();
    }
    if (kill) t->SendSignal(MakeSigInfo(SIGKILL, SI_KERNEL, 0, 0));
  }
}

}  // namespace husk
