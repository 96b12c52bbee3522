// Process file descriptors: pidfd_open, pidfd_send_signal, pidfd_getfd.
// The pidfd file lives in sentry/kernel/pidfd; waitid(P_PIDFD) is in
// sys_process.cc and clone's CLONE_PIDFD in sentry/kernel/clone.cc.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>

#include "sentry/kernel/pidfd.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

// The process a pidfd names: EBADF if fd is not open or not a pidfd.
Result<std::shared_ptr<ThreadGroup>> GroupOfFd(Task& t, int fd)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(fd));
  std::shared_ptr<ThreadGroup> group = pidfd::GroupOf(*f);
  if (group == nullptr) return Errno{EBADF};
  return group;
}

// The leader task of the process a pidfd names, while it is not reaped
// (a zombie counts): ESRCH once it is.
Result<std::shared_ptr<Task>> LeaderOf(Task& t, const std::shared_ptr<ThreadGroup>& group)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  std::shared_ptr<Task> leader = t.kernel().FindTask(group->tgid);
  if (leader == nullptr || &leader->tg() != group.get()) return Errno{ESRCH};
  return leader;
}

// ptrace_may_access(PTRACE_MODE_ATTACH_REALCREDS): the caller's real uid
// and gid are all of the target's, or CAP_SYS_PTRACE; a target that is not
// dumpable needs CAP_SYS_PTRACE too.
bool MayAttach(const Task& t, Task& target) {
  if (&target.tg() == &t.tg()) return true;
  const bool same = t.uid == target.uid && t.uid == target.euid && t.uid == target.suid &&
                    t.gid == target.gid && t.gid == target.egid && t.gid == target.sgid;
  if (!same && !t.Capable(CAP_SYS_PTRACE)) return false;
  return target.tg().dumpable == 1 || t.Capable(CAP_SYS_PTRACE);
}

}  // namespace

// pidfd_open(2): a process (a thread id that is not a leader is EINVAL),
// zombies included; always close-on-exec.
SyscallResult SysPidfdOpen(Task& t, const Args& a) {
  const int pid = a.Int(0);
  if (a.U(1) & ~uint64_t{O_NONBLOCK}) return Errno{EINVAL};
  if (pid <= 0) return Errno{EINVAL};
  std::shared_ptr<Task> target = t.kernel().FindTask(pid);
  if (target == nullptr) return Errno{ESRCH};
  if (!target->is_leader()) return Errno{EINVAL};
  ASSIGN_OR_RETURN(int fd, t.fds().Add(pidfd::New(target->shared_tg(), a.Int(1)), true));
  return static_cast<long>(fd);
}

// pidfd_send_signal(2): kill(2) to the process the pidfd names; a siginfo
// of the caller's own making goes only to its own process, as
// rt_sigqueueinfo's.
SyscallResult SysPidfdSendSignal(Task& t, const Args& a) {
  const int sig = a.Int(1);
  if (a.U(3) != 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::shared_ptr<ThreadGroup> group, GroupOfFd(t, a.Int(0)));
  siginfo_t info = MakeSigInfo(sig, SI_USER, t.tgid(), t.uid);
  if (a.Ptr(2) != 0) {
    TRY(t.CopyInObj(a.Ptr(2), &info));
    if (info.si_signo != sig) return Errno{EINVAL};
    if (group.get() != &t.tg() && (info.si_code >= 0 || info.si_code == SI_TKILL)) {
      return Errno{EPERM};
    }
  }
  // A reaped process is ESRCH before a bad signal number is EINVAL.
  ASSIGN_OR_RETURN(std::shared_ptr<Task> leader, LeaderOf(t, group));
  if (sig < 0 || sig > kMaxSignal) return Errno{EINVAL};
  // kill(2)'s permission: CAP_KILL or a matching uid.
  if (!t.Capable(CAP_KILL) && t.euid != leader->uid && t.euid != leader->suid &&
      t.uid != leader->uid && t.uid != leader->suid) {
    return Errno{EPERM};
  }
  leader->kernel().mu.AssertHeld();  // one kernel, one lock
  if (sig == 0 || group->zombie) return 0L;
  leader->SendProcessSignal(info);
  return 0L;
}

// pidfd_getfd(2): a duplicate of another process's descriptor, close-on-exec,
// with the right to ptrace it (EPERM); EBADF if it has no such descriptor.
SyscallResult SysPidfdGetfd(Task& t, const Args& a) {
  if (a.U(2) != 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::shared_ptr<ThreadGroup> group, GroupOfFd(t, a.Int(0)));
  ASSIGN_OR_RETURN(std::shared_ptr<Task> leader, LeaderOf(t, group));
  // The leader may have exited before its threads: any live thread holds
  // the process's descriptors.
  Task* holder = group->threads.empty() ? leader.get() : group->threads.front();
  if (!MayAttach(t, *holder)) return Errno{EPERM};
  ASSIGN_OR_RETURN(vfs::FileRef f, holder->fds().Get(a.Int(1)));
  ASSIGN_OR_RETURN(int fd, t.fds().Add(f, true));
  return static_cast<long>(fd);
}

}  // namespace husk::syscalls
