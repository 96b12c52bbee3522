// Processes: ids, uname, arch_prctl, rlimits, randomness, fork/vfork/clone
// (new processes), execve, wait4, exit.
#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "sentry/kernel/blocking.h"
#include "sentry/kernel/pidfd.h"
#include "sentry/kernel/tty.h"
#include "sentry/kernel/version.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {

SyscallResult SysGetpid(Task& t, const Args&) { return static_cast<long>(t.tgid()); }
SyscallResult SysGettid(Task& t, const Args&) { return static_cast<long>(t.tid()); }
SyscallResult SysGetppid(Task& t, const Args&) { return static_cast<long>(t.tg().ppid); }
SyscallResult SysGetuid(Task& t, const Args&) { return static_cast<long>(t.uid); }
SyscallResult SysGeteuid(Task& t, const Args&) { return static_cast<long>(t.euid); }
SyscallResult SysGetgid(Task& t, const Args&) { return static_cast<long>(t.gid); }
SyscallResult SysGetegid(Task& t, const Args&) { return static_cast<long>(t.egid); }

SyscallResult SysGetresuid(Task& t, const Args& a) {
  TRY(t.CopyOutObj(a.Ptr(0), t.uid));
  TRY(t.CopyOutObj(a.Ptr(1), t.euid));
  TRY(t.CopyOutObj(a.Ptr(2), t.suid));
  return 0L;
}
SyscallResult SysGetresgid(Task& t, const Args& a) {
  TRY(t.CopyOutObj(a.Ptr(0), t.gid));
  TRY(t.CopyOutObj(a.Ptr(1), t.egid));
  TRY(t.CopyOutObj(a.Ptr(2), t.sgid));
  return 0L;
}
SyscallResult SysGetgroups(Task& t, const Args& a) {
  int size = a.Int(0);
  if (size < 0) return Errno{EINVAL};
  auto n = static_cast<int>(t.groups.size());
  if (size == 0) return static_cast<long>(n);  // just the count
  if (size < n) return Errno{EINVAL};
  if (n > 0) TRY(t.CopyOut(a.Ptr(1), t.groups.data(), t.groups.size() * sizeof(uint32_t)));
  return static_cast<long>(n);
}

SyscallResult SysSetgroups(Task& t, const Args& a) {
  constexpr int kNgroupsMax = 65536;
  int size = a.Int(0);
  if (size < 0 || size > kNgroupsMax) return Errno{EINVAL};
  if (!t.Capable(CAP_SETGID)) return Errno{EPERM};
  std::vector<uint32_t> groups(static_cast<size_t>(size));
  if (size > 0) TRY(t.CopyIn(a.Ptr(1), groups.data(), groups.size() * sizeof(uint32_t)));
  // The kernel keeps them sorted (groups_sort); getgroups returns that order.
  std::sort(groups.begin(), groups.end());
  t.groups = std::move(groups);
  return 0L;
}

namespace {

constexpr uint32_t kKeep = UINT32_MAX;  // (uid_t)-1: leave this id as it is

bool OneOf(uint32_t id, uint32_t a, uint32_t b, uint32_t c) { return id == a || id == b || id == c; }

// setresuid(2)/setresgid(2): an unprivileged caller may only shuffle its
// current real, effective and saved ids.
Status SetRes(bool privileged, uint32_t& r, uint32_t& e, uint32_t& s, uint32_t& fs, uint32_t nr,
              uint32_t ne, uint32_t ns) {
  if (!privileged) {
    for (uint32_t id : {nr, ne, ns}) {
      if (id != kKeep && !OneOf(id, r, e, s)) return Errno{EPERM};
    }
  }
  if (nr != kKeep) r = nr;
  if (ne != kKeep) e = ne;
  if (ns != kKeep) s = ns;
  fs = e;
  return Ok();
}

// setreuid(2)/setregid(2), as kernel/sys.c does it.
Status SetRe(bool privileged, uint32_t& r, uint32_t& e, uint32_t& s, uint32_t& fs, uint32_t nr,
             uint32_t ne) {
  uint32_t old_r = r;
  if (nr != kKeep && !privileged && nr != r && nr != e) return Errno{EPERM};
  if (ne != kKeep && !privileged && !OneOf(ne, r, e, s)) return Errno{EPERM};
  if (nr != kKeep) r = nr;
  if (ne != kKeep) e = ne;
  // The saved id follows the effective one when the real id is set or the
  // effective id moves away from the old real id.
  if (nr != kKeep || (ne != kKeep && ne != old_r)) s = e;
  fs = e;
  return Ok();
}

// What commit_creds does once a set*id call has changed a task's ids: the
// capability fix-ups (cap_task_fix_setuid, see caps.h), and if the euid,
// egid, fsuid or fsgid moved, the parent-death signal is forgotten and the
// process stops being dumpable (fs.suid_dumpable, 0 by default).
class CredChange {
 public:
  enum Kind { kUid, kFsuid, kGid };
  explicit CredChange(Task& t)
      : t_(t),
        uid_(t.uid),
        euid_(t.euid),
        suid_(t.suid),
        fsuid_(t.fsuid),
        egid_(t.egid),
        fsgid_(t.fsgid) {}
  void Commit(Kind kind) {
    if (kind == kUid) t_.caps.FixSetuid(uid_, euid_, suid_, t_.uid, t_.euid, t_.suid);
    if (kind == kFsuid) t_.caps.FixSetfsuid(fsuid_, t_.fsuid);
    if (euid_ != t_.euid || egid_ != t_.egid || fsuid_ != t_.fsuid || fsgid_ != t_.fsgid) {
      t_.pdeath_signal = 0;
      t_.tg().dumpable = 0;
    }
  }

 private:
  Task& t_;
  const uint32_t uid_, euid_, suid_, fsuid_, egid_, fsgid_;
};

}  // namespace

SyscallResult SysSetresuid(Task& t, const Args& a) {
  CredChange change(t);
  TRY(SetRes(t.Capable(CAP_SETUID), t.uid, t.euid, t.suid, t.fsuid, static_cast<uint32_t>(a.U(0)),
             static_cast<uint32_t>(a.U(1)), static_cast<uint32_t>(a.U(2))));
  change.Commit(CredChange::kUid);
  return 0L;
}

SyscallResult SysSetresgid(Task& t, const Args& a) {
  CredChange change(t);
  TRY(SetRes(t.Capable(CAP_SETGID), t.gid, t.egid, t.sgid, t.fsgid, static_cast<uint32_t>(a.U(0)),
             static_cast<uint32_t>(a.U(1)), static_cast<uint32_t>(a.U(2))));
  change.Commit(CredChange::kGid);
  return 0L;
}

SyscallResult SysSetreuid(Task& t, const Args& a) {
  CredChange change(t);
  TRY(SetRe(t.Capable(CAP_SETUID), t.uid, t.euid, t.suid, t.fsuid, static_cast<uint32_t>(a.U(0)),
            static_cast<uint32_t>(a.U(1))));
  change.Commit(CredChange::kUid);
  return 0L;
}

SyscallResult SysSetregid(Task& t, const Args& a) {
  CredChange change(t);
  TRY(SetRe(t.Capable(CAP_SETGID), t.gid, t.egid, t.sgid, t.fsgid, static_cast<uint32_t>(a.U(0)),
            static_cast<uint32_t>(a.U(1))));
  change.Commit(CredChange::kGid);
  return 0L;
}

// setfsuid(2)/setfsgid(2) return the old value whether or not they change it.
SyscallResult SysSetfsuid(Task& t, const Args& a) {
  CredChange change(t);
  uint32_t old = t.fsuid, id = static_cast<uint32_t>(a.U(0));
  if (id != kKeep && (t.Capable(CAP_SETUID) || OneOf(id, t.uid, t.euid, t.suid) || id == t.fsuid)) {
    t.fsuid = id;
  }
  change.Commit(CredChange::kFsuid);
  return static_cast<long>(old);
}

SyscallResult SysSetfsgid(Task& t, const Args& a) {
  CredChange change(t);
  uint32_t old = t.fsgid, id = static_cast<uint32_t>(a.U(0));
  if (id != kKeep && (t.Capable(CAP_SETGID) || OneOf(id, t.gid, t.egid, t.sgid) || id == t.fsgid)) {
    t.fsgid = id;
  }
  change.Commit(CredChange::kGid);
  return static_cast<long>(old);
}

SyscallResult SysSetuid(Task& t, const Args& a) {
  CredChange change(t);
  uint32_t id = static_cast<uint32_t>(a.U(0));
  if (id == UINT32_MAX) return Errno{EINVAL};
  if (t.Capable(CAP_SETUID)) {
    t.uid = t.euid = t.suid = id;
  } else if (id == t.uid || id == t.suid) {
    t.euid = id;
  } else {
    return Errno{EPERM};
  }
  t.fsuid = t.euid;
  change.Commit(CredChange::kUid);
  return 0L;
}

SyscallResult SysSetgid(Task& t, const Args& a) {
  CredChange change(t);
  uint32_t id = static_cast<uint32_t>(a.U(0));
  if (id == UINT32_MAX) return Errno{EINVAL};
  if (t.Capable(CAP_SETGID)) {
    t.gid = t.egid = t.sgid = id;
  } else if (id == t.gid || id == t.sgid) {
    t.egid = id;
  } else {
    return Errno{EPERM};
  }
  t.fsgid = t.egid;
  change.Commit(CredChange::kGid);
  return 0L;
}

SyscallResult SysGetpgrp(Task& t, const Args&) { return static_cast<long>(t.tg().pgid); }
SyscallResult SysGetpgid(Task& t, const Args& a) {
  if (a.Int(0) == 0 || a.Int(0) == t.tgid()) return static_cast<long>(t.tg().pgid);
  auto other = t.kernel().FindTask(a.Int(0));
  if (!other) return Errno{ESRCH};
  return static_cast<long>(other->tg().pgid);
}
namespace {

// The session of process group pgid, if any process is in it (zombies
// included, as they stay in their group until reaped).
std::optional<int> GroupSession(Kernel& k, int pgid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu) {
  for (int pid : k.Pids()) {
    std::shared_ptr<Task> p = k.FindTask(pid);
    if (p == nullptr) continue;
    p->kernel().mu.AssertHeld();  // one kernel, one lock
    if (p->tg().pgid == pgid) return p->tg().sid;
  }
  return std::nullopt;
}

}  // namespace

// setpgid(2) in Linux's order: the caller or a child of its process (one
// that has not called execve: EACCES; in the same session: EPERM), never a
// session leader, into its own group or an existing one of the session.
SyscallResult SysSetpgid(Task& t, const Args& a) {
  const int pid = a.Int(0) == 0 ? t.tgid() : a.Int(0);
  const int pgid = a.Int(1) == 0 ? pid : a.Int(1);
  if (pgid < 0) return Errno{EINVAL};
  std::shared_ptr<Task> target = t.kernel().FindTask(pid);
  if (target == nullptr) return Errno{ESRCH};
  if (!target->is_leader()) return Errno{EINVAL};
  ThreadGroup& g = target->tg();
  if (&g != &t.tg()) {
    if (g.ppid != t.tgid()) return Errno{ESRCH};
    if (g.sid != t.tg().sid) return Errno{EPERM};
    if (g.execed) return Errno{EACCES};
  }
  if (g.sid == g.tgid) return Errno{EPERM};
  if (pgid != pid && GroupSession(t.kernel(), pgid) != t.tg().sid) return Errno{EPERM};
  g.pgid = pgid;
  return 0L;
}
SyscallResult SysGetsid(Task& t, const Args& a) {
  if (a.Int(0) == 0 || a.Int(0) == t.tgid()) return static_cast<long>(t.tg().sid);
  auto other = t.kernel().FindTask(a.Int(0));
  if (!other) return Errno{ESRCH};
  return static_cast<long>(other->tg().sid);
}
// setsid(2): not for a session leader, nor while any process group has the
// caller's pid as its id (the caller's own, or one it left behind).
SyscallResult SysSetsid(Task& t, const Args&) {
  if (t.tg().sid == t.tgid() || GroupSession(t.kernel(), t.tgid()).has_value()) {
    return Errno{EPERM};
  }
  t.tg().sid = t.tg().pgid = t.tgid();
  tty::DropControllingTerminal(t.tg());
  return static_cast<long>(t.tg().sid);
}

SyscallResult SysUname(Task& t, const Args& a) {
  struct utsname u{};
  auto put = [](char* dst, const std::string& s) { strncpy(dst, s.c_str(), 64); };
  put(u.sysname, "Linux");
  put(u.nodename, t.uts().hostname);
  put(u.release, kHuskRelease);
  put(u.version, kHuskVersion);
  put(u.machine, "x86_64");
  put(u.domainname, t.uts().domainname);
  TRY(t.CopyOutObj(a.Ptr(0), u));
  return 0L;
}

namespace {

// sethostname(2) and setdomainname(2): CAP_SYS_ADMIN over the UTS
// namespace first, then the length (an int, at most __NEW_UTS_LEN); the
// name is the bytes given, up to a NUL.
Result<std::string> UtsNameArg(Task& t, const Args& a) {
  if (!t.Capable(CAP_SYS_ADMIN)) return Errno{EPERM};
  const int len = a.Int(1);
  if (len < 0 || len > 64) return Errno{EINVAL};
  std::string name(static_cast<size_t>(len), '\0');
  TRY(t.CopyIn(a.Ptr(0), name.data(), name.size()));
  return name.substr(0, name.find('\0'));
}

}  // namespace

SyscallResult SysSethostname(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(t.uts().hostname, UtsNameArg(t, a));
  return 0L;
}

SyscallResult SysSetdomainname(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(t.uts().domainname, UtsNameArg(t, a));
  return 0L;
}

// unshare(2): Task::Unshare does the work.
SyscallResult SysUnshare(Task& t, const Args& a) {
  TRY(t.Unshare(a.U(0)));
  return 0L;
}

// arch_prctl accepts bases below TASK_SIZE_MAX (kTaskSize): EPERM above,
// as on Linux.

SyscallResult SysArchPrctl(Task& t, const Args& a) {
  switch (a.Int(0)) {
    case ARCH_SET_FS:
      if (a.U(1) >= kTaskSize) return Errno{EPERM};
      t.regs.fs_base = a.U(1);
      return 0L;
    case ARCH_GET_FS:
      TRY(t.CopyOutObj(a.Ptr(1), static_cast<uint64_t>(t.regs.fs_base)));
      return 0L;
    case ARCH_SET_GS:
      if (a.U(1) >= kTaskSize) return Errno{EPERM};
      t.regs.gs_base = a.U(1);
      return 0L;
    case ARCH_GET_GS:
      TRY(t.CopyOutObj(a.Ptr(1), static_cast<uint64_t>(t.regs.gs_base)));
      return 0L;
    default:
      return Errno{EINVAL};
  }
}

SyscallResult SysSetTidAddress(Task& t, const Args& a) {
  t.clear_child_tid = a.Ptr(0);
  return static_cast<long>(t.tid());
}

SyscallResult SysSetRobustList(Task& t, const Args& a) {
  if (a.Size(1) != 24) return Errno{EINVAL};  // sizeof(struct robust_list_head)
  t.robust_list = a.Ptr(0);
  return 0L;
}

// get_robust_list(2): the caller's own list, or another task's with the
// right to ptrace it (here: the same real uid, or root).
SyscallResult SysGetRobustList(Task& t, const Args& a) {
  Task* target = &t;
  std::shared_ptr<Task> other;
  if (a.Int(0) != 0 && a.Int(0) != t.tid()) {
    other = t.kernel().FindTask(a.Int(0));
    if (other == nullptr || other->exited()) return Errno{ESRCH};
    if (!t.Capable(CAP_SYS_PTRACE) && other->uid != t.uid) return Errno{EPERM};
    target = other.get();
  }
  TRY(t.CopyOutObj(a.Ptr(1), static_cast<uint64_t>(target->robust_list)));
  TRY(t.CopyOutObj(a.Ptr(2), uint64_t{24}));
  return 0L;
}

namespace {
constexpr rlim_t kNrOpen = 1 << 20;  // /proc/sys/fs/nr_open's default

// do_prlimit on process `target` (the caller's own for getrlimit/setrlimit).
// Raising a hard limit takes CAP_SYS_RESOURCE; RLIMIT_NOFILE's new soft
// limit is the target's descriptor table's.
Result<long> Prlimit(Task& t, Task& target, int resource, uintptr_t new_addr, uintptr_t old_addr)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (resource < 0 || resource >= RLIM_NLIMITS) return Errno{EINVAL};
  struct rlimit nl;
  if (new_addr != 0) {
    TRY(t.CopyInObj(new_addr, &nl));
    if (nl.rlim_cur > nl.rlim_max) return Errno{EINVAL};
    // No descriptor table grows past fs.nr_open (1 << 20), even for root.
    if (resource == RLIMIT_NOFILE && nl.rlim_max > kNrOpen) return Errno{EPERM};
  }
  target.kernel().mu.AssertHeld();  // one kernel, one lock
  ThreadGroup& g = target.tg();
  if (g.zombie) return Errno{ESRCH};
  if (new_addr != 0 && nl.rlim_max > g.rlimits[resource].rlim_max && !t.Capable(CAP_SYS_RESOURCE)) {
    return Errno{EPERM};
  }
  const struct rlimit old = g.rlimits[resource];
  if (new_addr != 0) {
    g.rlimits[resource] = nl;
    if (resource == RLIMIT_NOFILE) {
      for (Task* th : g.threads) th->fds().set_limit(static_cast<int>(nl.rlim_cur));
    }
    if (resource == RLIMIT_CPU) target.kernel().posix_timers.UpdateCpuRlimit(target);
  }
  if (old_addr != 0) TRY(t.CopyOutObj(old_addr, old));
  return 0L;
}
}  // namespace

// getrlimit(2)/setrlimit(2) always copy (a NULL pointer is EFAULT); only
// prlimit64 takes NULL to mean "not this direction".
SyscallResult SysGetrlimit(Task& t, const Args& a) {
  if (a.Ptr(1) == 0 && a.Int(0) >= 0 && a.Int(0) < RLIM_NLIMITS) return Errno{EFAULT};
  return Prlimit(t, t, a.Int(0), 0, a.Ptr(1));
}
SyscallResult SysSetrlimit(Task& t, const Args& a) {
  if (a.Ptr(1) == 0) return Errno{EFAULT};
  return Prlimit(t, t, a.Int(0), a.Ptr(1), 0);
}

// prlimit64(2) on another process (any of its thread ids) needs the
// caller's real uid and gid to be all of the target's, or CAP_SYS_RESOURCE
// (check_prlimit_permission).
SyscallResult SysPrlimit64(Task& t, const Args& a) {
  std::shared_ptr<Task> target = t.kernel().FindTask(a.Int(0) == 0 ? t.tid() : a.Int(0));
  if (target == nullptr) return Errno{ESRCH};
  if (&target->tg() != &t.tg()) {
    const bool same = t.uid == target->uid && t.uid == target->euid && t.uid == target->suid &&
                      t.gid == target->gid && t.gid == target->egid && t.gid == target->sgid;
    if (!same && !t.Capable(CAP_SYS_RESOURCE)) return Errno{EPERM};
  }
  return Prlimit(t, *target, a.Int(1), a.Ptr(2), a.Ptr(3));
}

SyscallResult SysGetrandom(Task& t, const Args& a) {
  unsigned flags = static_cast<unsigned>(a.U(2));
  if (flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) return Errno{EINVAL};
  if ((flags & GRND_INSECURE) && (flags & GRND_RANDOM)) return Errno{EINVAL};
  size_t n = std::min<size_t>(a.Size(1), 33554431);
  std::vector<char> buf(std::min<size_t>(n, 1 << 20));
  size_t done = 0;
  while (done < n) {
    size_t want = std::min(n - done, buf.size());
    ssize_t r = getrandom(buf.data(), want, 0);
    if (r <= 0) return Errno{EIO};
    auto c = t.CopyOut(a.Ptr(0) + done, buf.data(), static_cast<size_t>(r));
    if (!c.ok()) {
      if (done) break;
      return Errno{EFAULT};
    }
    done += static_cast<size_t>(r);
  }
  return static_cast<long>(done);
}

SyscallResult SysSysinfo(Task& t, const Args& a) {
  struct sysinfo si{};
  // The sandbox's CLOCK_BOOTTIME, a started second counting whole, as
  // Linux's do_sysinfo rounds it.
  const timespec up = SandboxTimespec(CLOCK_BOOTTIME);
  si.uptime = up.tv_sec + (up.tv_nsec != 0 ? 1 : 0);
  si.totalram = t.kernel().MemoryTotal();
  si.freeram = si.totalram - t.kernel().MemoryUsed();
  si.procs = static_cast<unsigned short>(t.kernel().Pids().size());
  si.mem_unit = 1;
  TRY(t.CopyOutObj(a.Ptr(0), si));
  return 0L;
}

SyscallResult SysExit(Task& t, const Args& a) {
  // This thread alone; the process ends with its last thread.
  t.ExitThread((a.Int(0) & 0xff) << 8);
  return 0L;
}

SyscallResult SysExitGroup(Task& t, const Args& a) {
  t.Exit((a.Int(0) & 0xff) << 8);
  return 0L;
}

namespace {

// Which children a wait names: every one, one process, or a process group.
struct WaitTarget {
  enum Kind { kAll, kPid, kPgid } kind = kAll;
  int id = 0;
};

// What a wait found: the child, and how it changed.
struct WaitFound {
  int pid = 0;
  uint32_t uid = 0;      // the child's real uid (siginfo's si_uid)
  int status = 0;        // as wait4 reports it
  int code = 0;          // as waitid reports it: CLD_EXITED, CLD_KILLED, ...
  int child_status = 0;  // si_status
  struct rusage ru {};   // the child's usage with its waited-for children's (RUSAGE_BOTH)
};

// The wait family's view of ptrace(2): tracees of the caller's process that
// exited (when the caller is not the parent that reaps them anyway) or sit
// in a ptrace-stop not yet reported; *any when some tracee matches.
std::optional<WaitFound> WaitForTracee(Task& t, WaitTarget target, int options, bool* any)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  const bool consume = !(options & WNOWAIT);
  auto& exits = t.tg().tracee_exits;
  for (auto it = exits.begin(); it != exits.end(); ++it) {
    if (target.kind == WaitTarget::kPid && target.id != it->first) continue;
    if (target.kind == WaitTarget::kPgid) continue;
    *any = true;
    if (!(options & WEXITED)) continue;
    WaitFound found;
    found.pid = it->first;
    found.status = it->second;
    const ChildExit how = ChildExitOf(found.status);
    found.code = how.code;
    found.child_status = how.status;
    if (consume) exits.erase(it);
    return found;
  }
  for (auto& tracee : t.kernel().Tracees(t.tgid())) {
    tracee->kernel().mu.AssertHeld();  // one kernel, one lock
    if (target.kind == WaitTarget::kPid && tracee->tid() != target.id) continue;
    if (target.kind == WaitTarget::kPgid && tracee->tg().pgid != target.id) continue;
    const bool clone_child = !tracee->is_leader() || tracee->tg().exit_signal != SIGCHLD;
    if (!(options & __WALL) && clone_child != ((options & __WCLONE) != 0)) continue;
    if ((options & __WNOTHREAD) && tracee->ptrace_->tracer != t.tid()) continue;
    *any = true;
    Task::Ptrace& p = *tracee->ptrace_;
    if (p.stop_status == 0 || p.stop_reported) continue;
    WaitFound found{tracee->tid(), tracee->uid};
    found.status = p.stop_status;
    found.code = CLD_TRAPPED;
    found.child_status = (p.stop_status >> 8) & 0xff;
    if (consume) p.stop_reported = true;
    return found;
  }
  return std::nullopt;
}

// The wait family's loop (do_wait): the first child that matches and has
// a change the options ask for (WEXITED, WSTOPPED, WCONTINUED) is reported,
// and reaped or its report consumed unless WNOWAIT. 0 with WNOHANG when a
// child matches but none changed; ECHILD when none matches.
Result<WaitFound> DoWait(Task& t, WaitTarget target, int options)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  // Any thread of the process may reap any of its children; a child's
  // change wakes the process's queue.
  ScopedWait wait(&t.tg().child_events, &t.waiter, ~0u);
  for (;;) {
    bool any = false;
    if (auto traced = WaitForTracee(t, target, options, &any)) return *traced;
    for (auto& child : t.kernel().Children(t.tgid())) {
      ThreadGroup& c = child->tg();
      bool match = target.kind == WaitTarget::kAll ||
                   (target.kind == WaitTarget::kPid && child->tgid() == target.id) ||
                   (target.kind == WaitTarget::kPgid && c.pgid == target.id);
      // A "clone" child (one that signals its parent with something other
      // than SIGCHLD) is seen only with __WCLONE, the others only without;
      // __WALL sees both (eligible_child).
      const bool clone_child = c.exit_signal != SIGCHLD;
      if (!(options & __WALL) && clone_child != ((options & __WCLONE) != 0)) match = false;
      // __WNOTHREAD: only the children this thread forked.
      if ((options & __WNOTHREAD) && c.parent_thread != t.tid()) match = false;
      if (!match) continue;
      any = true;
      const bool consume = !(options & WNOWAIT);
      WaitFound found{child->tgid(), child->uid};
      found.ru = BothRusage(*child);
      if (c.zombie && (options & WEXITED)) {
        found.status = c.exit_status;
        const ChildExit how = ChildExitOf(c.exit_status);
        found.code = how.code;
        found.child_status = how.status;
        if (consume) {
          // A reaped child's times add to the caller's children's.
          AccountReapedChild(t, *child);
          t.kernel().RemoveTask(found.pid);
        }
      } else if (!c.zombie && (options & WSTOPPED) && c.stop_report != 0) {
        found.status = (c.stop_report << 8) | 0x7f;
        found.code = CLD_STOPPED;
        found.child_status = c.stop_report;
        if (consume) c.stop_report = 0;
      } else if (!c.zombie && (options & WCONTINUED) && c.cont_report) {
        found.status = 0xffff;
        found.code = CLD_CONTINUED;
        found.child_status = SIGCONT;
        if (consume) c.cont_report = false;
      } else {
        continue;
      }
      return found;
    }
    if (!any) return Errno{ECHILD};
    if (options & WNOHANG) return WaitFound{};
    // A signal interrupts.
    if (!t.Block().ok()) return Errno{kERestartSys};
  }
}

}  // namespace

SyscallResult SysWait4(Task& t, const Args& a) {
  int pid = a.Int(0);
  int options = a.Int(2);
  if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WALL | __WCLONE | __WNOTHREAD))
    return Errno{EINVAL};
  if (pid == INT32_MIN) return Errno{ESRCH};
  WaitTarget target;
  if (pid > 0) {
    target = {WaitTarget::kPid, pid};
  } else if (pid == 0) {
    target = {WaitTarget::kPgid, t.tg().pgid};
  } else if (pid < -1) {
    target = {WaitTarget::kPgid, -pid};
  }
  // wait4 always waits for exits; WUNTRACED is WSTOPPED.
  ASSIGN_OR_RETURN(WaitFound found, DoWait(t, target, options | WEXITED));
  if (found.pid == 0) return 0L;
  if (a.Ptr(1) != 0) TRY(t.CopyOutObj(a.Ptr(1), found.status));
  if (a.Ptr(3) != 0) TRY(t.CopyOutObj(a.Ptr(3), found.ru));
  return static_cast<long>(found.pid);
}

// waitid(2): P_ALL, P_PID, P_PGID (0: the caller's group) and P_PIDFD (a
// pidfd of a child; on a PIDFD_NONBLOCK one, EAGAIN instead of blocking). The siginfo gets
// si_signo SIGCHLD, si_code, si_pid, si_uid and si_status, all zero when
// WNOHANG found nothing; only those fields are written.
SyscallResult SysWaitid(Task& t, const Args& a) {
  const int idtype = a.Int(0);
  const int id = a.Int(1);
  int options = a.Int(3);
  if (options &
      ~(WNOHANG | WNOWAIT | WEXITED | WSTOPPED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL)) {
    return Errno{EINVAL};
  }
  if (!(options & (WEXITED | WSTOPPED | WCONTINUED))) return Errno{EINVAL};
  WaitTarget target;
  bool nonblocking = false;
  switch (idtype) {
    case P_ALL:
      break;
    case P_PID:
      if (id <= 0) return Errno{EINVAL};
      target = {WaitTarget::kPid, id};
      break;
    case P_PGID:
      if (id < 0) return Errno{EINVAL};
      target = {WaitTarget::kPgid, id == 0 ? t.tg().pgid : id};
      break;
    case P_PIDFD: {
      if (id < 0) return Errno{EINVAL};
      ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(id));
      std::shared_ptr<ThreadGroup> group = pidfd::GroupOf(*f);
      if (group == nullptr) return Errno{EBADF};
      target = {WaitTarget::kPid, group->tgid};
      nonblocking = (f->flags() & O_NONBLOCK) != 0;
      break;
    }
    default:
      return Errno{EINVAL};
  }
  ASSIGN_OR_RETURN(WaitFound found, DoWait(t, target, options | (nonblocking ? WNOHANG : 0)));
  // Nothing yet through a PIDFD_NONBLOCK pidfd, without WNOHANG: EAGAIN.
  if (found.pid == 0 && nonblocking && !(options & WNOHANG)) return Errno{EAGAIN};
  if (found.pid != 0 && a.Ptr(4) != 0) TRY(t.CopyOutObj(a.Ptr(4), found.ru));
  if (a.Ptr(2) != 0) {
    // Only these fields are written; the rest of the caller's siginfo
    // stays as it was.
    const int32_t head[3] = {found.pid != 0 ? SIGCHLD : 0, 0, found.code};
    const int32_t child[3] = {found.pid, static_cast<int32_t>(found.uid), found.child_status};
    static_assert(offsetof(siginfo_t, si_code) == 8 && offsetof(siginfo_t, si_pid) == 16 &&
                  offsetof(siginfo_t, si_uid) == 20 && offsetof(siginfo_t, si_status) == 24);
    TRY(t.CopyOut(a.Ptr(2), head, sizeof(head)));
    TRY(t.CopyOut(a.Ptr(2) + offsetof(siginfo_t, si_pid), child, sizeof(child)));
  }
  return 0L;
}

namespace {

Result<std::vector<std::string>> CopyInStrings(Task& t, uintptr_t addr) {
  std::vector<std::string> out;
  if (addr == 0) return out;
  size_t total = 0;
  for (size_t i = 0;; i++) {
    if (i >= 0x7fffffff / 8) return Errno{E2BIG};
    uint64_t p;
    TRY(t.CopyInObj(addr + i * 8, &p));
    if (p == 0) break;
    // Linux's copy_strings reads at most MAX_ARG_STRLEN (32 pages) bytes of
    // a string, its NUL included: no NUL among them is E2BIG, not the
    // ENAMETOOLONG of a too-long path; a fault among them is EFAULT.
    Result<std::string> copied = t.mm().CopyInString(p, 32 * kPageSize - 1);
    if (!copied.ok()) return Errno{copied.error() == ENAMETOOLONG ? E2BIG : copied.error()};
    std::string s = std::move(copied).value();
    total += s.size() + 1;
    if (total > (2u << 20)) return Errno{E2BIG};
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

SyscallResult SysClone(Task& t, const Args& a) {
  // x86_64 order: flags, stack, parent_tid, child_tid, tls.
  Task::CloneArgs args;
  args.flags = a.U(0) & ~uint64_t{0xff};
  args.exit_signal = static_cast<int>(a.U(0) & 0xff);
  args.stack = a.Ptr(1);
  args.parent_tid = a.Ptr(2);
  args.child_tid = a.Ptr(3);
  args.tls = a.Ptr(4);
  // clone(2) ignores the flags clone3 alone may pass.
  args.flags &= 0xffffffff;
  return t.Clone(args);
}
// clone3(2): the arguments in a struct clone_args of `size` bytes (64 in
// its first version; a larger one must be zero past what is known).
SyscallResult SysClone3(Task& t, const Args& a) {
  struct CloneArgs3 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
  };
  constexpr size_t kVer0 = 64;
  const size_t size = a.Size(1);
  if (size < kVer0) return Errno{EINVAL};
  if (size > kPageSize) return Errno{E2BIG};
  CloneArgs3 ca{};
  std::vector<uint8_t> raw(size);
  TRY(t.CopyIn(a.Ptr(0), raw.data(), size));
  memcpy(&ca, raw.data(), std::min(size, sizeof(ca)));
  for (size_t i = sizeof(ca); i < size; i++) {
    if (raw[i] != 0) return Errno{E2BIG};
  }
  constexpr uint64_t kClearSighand = 0x100000000ULL, kIntoCgroup = 0x200000000ULL;
  // clone3 takes the exit signal apart and refuses clone's legacy bits.
  if ((ca.exit_signal & ~uint64_t{CSIGNAL}) != 0 || ca.exit_signal > kMaxSignal) {
    return Errno{EINVAL};
  }
  if (ca.flags & (CSIGNAL | CLONE_DETACHED)) return Errno{EINVAL};
  if ((ca.flags & kClearSighand) && (ca.flags & CLONE_SIGHAND)) return Errno{EINVAL};
  if ((ca.stack == 0) != (ca.stack_size == 0)) return Errno{EINVAL};
  if (ca.set_tid_size > 32 || (ca.set_tid == 0) != (ca.set_tid_size == 0)) return Errno{EINVAL};
  if (ca.flags & ~(uint64_t{0xffffffff} | kClearSighand | kIntoCgroup)) return Errno{EINVAL};
  if (ca.set_tid_size != 0 || (ca.flags & kIntoCgroup)) {
    // Choosing pids needs CAP_SYS_ADMIN over a PID namespace; cgroups are
    // not the sandbox's to choose.
    if (t.euid != 0) return Errno{EPERM};
    t.kernel().CountUnimplemented(SYS_clone3);
    return Errno{ENOSYS};
  }
  Task::CloneArgs args;
  args.flags = ca.flags & ~kClearSighand;
  args.exit_signal = static_cast<int>(ca.exit_signal);
  // The stack is its lowest address and size; x86 stacks grow down.
  args.stack = ca.stack != 0 ? ca.stack + ca.stack_size : 0;
  args.parent_tid = ca.parent_tid;
  args.child_tid = ca.child_tid;
  args.tls = ca.tls;
  args.clear_sighand = (ca.flags & kClearSighand) != 0;
  return t.Clone(args);
}

SyscallResult SysFork(Task& t, const Args&) {
  Task::CloneArgs args;
  args.exit_signal = SIGCHLD;
  return t.Clone(args);
}
SyscallResult SysVfork(Task& t, const Args&) {
  Task::CloneArgs args;
  args.flags = CLONE_VM | CLONE_VFORK;
  args.exit_signal = SIGCHLD;
  return t.Clone(args);
}

SyscallResult SysExecve(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(a.Ptr(0)));
  ASSIGN_OR_RETURN(std::vector<std::string> argv, CopyInStrings(t, a.Ptr(1)));
  ASSIGN_OR_RETURN(std::vector<std::string> envp, CopyInStrings(t, a.Ptr(2)));
  if (path.empty()) return Errno{ENOENT};
  const int old_tid = t.tid();
  TRY(t.Exec(path, std::move(argv), envp));
  // Under ptrace: PTRACE_EVENT_EXEC (its message the thread's former id),
  // or a plain SIGTRAP for a tracer that did not ask for the event.
  if (t.ptrace_ != nullptr) {
    t.regs.rax = 0;  // the tracer sees execve's result already
    if (t.ptrace_->options & PTRACE_O_TRACEEXEC) {
      t.PtraceEvent(PTRACE_EVENT_EXEC, PTRACE_O_TRACEEXEC, static_cast<uint64_t>(old_tid));
    } else if (!t.ptrace_->seized) {
      t.SendSignal(MakeSigInfo(SIGTRAP, SI_USER, 0, 0));
    }
  }
  return 0L;
}

namespace {

// The deadline of a futex wait: FUTEX_WAIT's timeout is relative (on
// CLOCK_MONOTONIC), FUTEX_WAIT_BITSET's absolute on CLOCK_MONOTONIC or,
// with FUTEX_CLOCK_REALTIME, CLOCK_REALTIME.
Result<absl::Time> FutexDeadline(Task& t, uintptr_t addr, bool relative, bool realtime) {
  if (addr == 0) return absl::InfiniteFuture();
  timespec ts;
  TRY(t.CopyInObj(addr, &ts));
  if (ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000 || ts.tv_sec < 0) return Errno{EINVAL};
  return DeadlineOf(ts, realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, !relative);
}

Result<long> FutexWait(Task& t, uintptr_t addr, bool private_op, uint32_t val, absl::Time deadline,
                       uint32_t bitset, bool timed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  ASSIGN_OR_RETURN(FutexKey key, t.mm().GetFutexKey(addr, private_op));
  uint32_t cur;
  TRY(t.CopyInObj(addr, &cur));
  if (cur != val) return Errno{EAGAIN};
  FutexWaiter w{&t, key, bitset};
  FutexTable& table = t.kernel().futexes;
  table.Enqueue(&w);
  for (;;) {
    Status s = t.Block(deadline);
    // A wake beats a timeout, and a timeout beats a signal (futex(2)).
    if (w.woken) return 0L;
    if (s.ok()) continue;  // woken for something else: keep waiting
    table.Remove(&w);
    if (s.error() == ETIMEDOUT) return Errno{ETIMEDOUT};
    // Interrupted: an untimed wait restarts under SA_RESTART; a timed one
    // is EINTR if a handler runs (restart_syscall comes later).
    return Errno{timed ? kERestartNoHand : kERestartSys};
  }
}

// FUTEX_WAKE_OP's operation on the second word, and its comparison.
uint32_t OpSet(uint32_t, uint32_t arg) { return arg; }
uint32_t OpAdd(uint32_t old, uint32_t arg) { return old + arg; }
uint32_t OpOr(uint32_t old, uint32_t arg) { return old | arg; }
uint32_t OpAndn(uint32_t old, uint32_t arg) { return old & ~arg; }
uint32_t OpXor(uint32_t old, uint32_t arg) { return old ^ arg; }

Result<long> FutexWakeOp(Task& t, const Args& a, bool private_op)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  const uint32_t encoded = static_cast<uint32_t>(a.U(5));
  int op = static_cast<int>((encoded >> 28) & 7);
  const int cmp = static_cast<int>((encoded >> 24) & 15);
  // 12-bit signed fields (sign_extend32(..., 11)).
  int32_t oparg = static_cast<int32_t>(((encoded >> 12) & 0xfff) << 20) >> 20;
  const int32_t cmparg = static_cast<int32_t>((encoded & 0xfff) << 20) >> 20;
  if (op & FUTEX_OP_OPARG_SHIFT) {
    op &= ~FUTEX_OP_OPARG_SHIFT;
    oparg = static_cast<int32_t>(1u << (oparg & 31));
  }
  static constexpr uint32_t (*kOps[])(uint32_t, uint32_t) = {OpSet, OpAdd, OpOr, OpAndn, OpXor};
  if (op > FUTEX_OP_XOR || cmp > FUTEX_OP_CMP_GE) return Errno{ENOSYS};
  // As FUTEX_WAKE, each wakes at least one.
  const int n_wake = std::max(a.Int(2), 1), n_wake2 = std::max(static_cast<int>(a.U(3)), 1);
  ASSIGN_OR_RETURN(FutexKey key1, t.mm().GetFutexKey(a.Ptr(0), private_op));
  ASSIGN_OR_RETURN(FutexKey key2, t.mm().GetFutexKey(a.Ptr(4), private_op));
  ASSIGN_OR_RETURN(uint32_t old_raw,
                   t.mm().AtomicRmw32(a.Ptr(4), kOps[op], static_cast<uint32_t>(oparg)));
  const int32_t old = static_cast<int32_t>(old_raw);
  FutexTable& table = t.kernel().futexes;
  int woken = table.Wake(key1, n_wake, ~0u);
  bool hit = false;
  switch (cmp) {
    case FUTEX_OP_CMP_EQ:
      hit = old == cmparg;
      break;
    case FUTEX_OP_CMP_NE:
      hit = old != cmparg;
      break;
    case FUTEX_OP_CMP_LT:
      hit = old < cmparg;
      break;
    case FUTEX_OP_CMP_LE:
      hit = old <= cmparg;
      break;
    case FUTEX_OP_CMP_GT:
      hit = old > cmparg;
      break;
    case FUTEX_OP_CMP_GE:
      hit = old >= cmparg;
      break;
  }
  if (hit) woken += table.Wake(key2, n_wake2, ~0u);
  return static_cast<long>(woken);
}

constexpr uint32_t kFutexTidMask = 0x3fffffff;
constexpr uint32_t kFutexWaitersBit = 0x80000000;
constexpr uint32_t kFutexOwnerDiedBit = 0x40000000;

// FUTEX_LOCK_PI, LOCK_PI2 and TRYLOCK_PI: the word holds the owner's tid.
// A free word (no tid) is taken at once, keeping FUTEX_OWNER_DIED; a held
// one is marked FUTEX_WAITERS and the caller waits until the owner's
// FUTEX_UNLOCK_PI hands it the lock (husk schedules no priorities, so the
// inheritance itself has nothing to boost). Interrupted waits restart.
Result<long> FutexLockPi(Task& t, uintptr_t addr, bool private_op, absl::Time deadline,
                         bool try_only) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  ASSIGN_OR_RETURN(FutexKey key, t.mm().GetFutexKey(addr, private_op));
  const auto tid = static_cast<uint32_t>(t.tid());
  FutexTable& table = t.kernel().futexes;
  for (;;) {
    const bool contended = table.HasWaiters(key);
    ASSIGN_OR_RETURN(uint32_t old, t.mm().AtomicUpdate32(addr, [&](uint32_t v) {
      if ((v & kFutexTidMask) == 0) {
        return tid | (v & kFutexOwnerDiedBit) | (contended ? kFutexWaitersBit : 0);
      }
      if ((v & kFutexTidMask) == tid || try_only) return v;
      return v | kFutexWaitersBit;
    }));
    if ((old & kFutexTidMask) == 0) return 0L;
    if ((old & kFutexTidMask) == tid) return Errno{EDEADLK};
    if (try_only) return Errno{EAGAIN};
    // The owner must be a live thread (attach_to_pi_owner).
    auto owner = t.kernel().FindTask(static_cast<int>(old & kFutexTidMask));
    if (owner == nullptr || owner->exited()) return Errno{ESRCH};
    FutexWaiter w{&t, key, ~0u};
    table.Enqueue(&w);
    for (;;) {
      Status s = t.Block(deadline);
      if (w.handed) return 0L;  // the owner's unlock made this thread the owner
      if (w.woken) break;       // the owner died: try again
      if (s.ok()) continue;
      table.Remove(&w);
      if (s.error() == ETIMEDOUT) return Errno{ETIMEDOUT};
      return Errno{kERestartNoIntr};
    }
  }
}

// FUTEX_UNLOCK_PI: the first waiter becomes the owner (the word gets its tid
// and FUTEX_WAITERS, as Linux's wake_futex_pi); without one the word is 0.
Result<long> FutexUnlockPi(Task& t, uintptr_t addr, bool private_op)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  ASSIGN_OR_RETURN(FutexKey key, t.mm().GetFutexKey(addr, private_op));
  const auto tid = static_cast<uint32_t>(t.tid());
  uint32_t cur;
  TRY(t.CopyInObj(addr, &cur));
  if ((cur & kFutexTidMask) != tid) return Errno{EPERM};
  FutexTable& table = t.kernel().futexes;
  FutexWaiter* next = table.TakeFirst(key);
  const uint32_t value =
      next != nullptr ? (static_cast<uint32_t>(next->task->tid()) | kFutexWaitersBit) : 0;
  ASSIGN_OR_RETURN(uint32_t old, t.mm().AtomicUpdate32(addr, [&](uint32_t v) {
    return (v & kFutexTidMask) == tid ? value : v;
  }));
  if ((old & kFutexTidMask) != tid) {
    if (next != nullptr) table.Enqueue(next);  // changed under us: nothing handed over
    return Errno{EPERM};
  }
  if (next != nullptr) {
    next->woken = next->handed = true;
    next->task->waiter.Notify();
  }
  return 0L;
}

}  // namespace

// futex_waitv(2): one wait on up to 128 futexes; the result is the index of
// the one that woke it. Linux's checks, in its order: flags 0, a count in
// 1..128 and an array, the clock (with a timeout), then each entry (only
// 32-bit words, private or not, a value that fits, a zero reserved field).
SyscallResult SysFutexWaitv(Task& t, const Args& a) {
  constexpr uint32_t kSize32 = 2, kPrivate = 128, kNuma = 4, kSizeMask = 3;
  const uint32_t nr = static_cast<uint32_t>(a.U(1));
  if (a.U(2) != 0) return Errno{EINVAL};
  if (nr == 0 || nr > FUTEX_WAITV_MAX || a.Ptr(0) == 0) return Errno{EINVAL};
  absl::Time deadline = absl::InfiniteFuture();
  if (a.Ptr(3) != 0) {
    const int clock = a.Int(4);
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return Errno{EINVAL};
    ASSIGN_OR_RETURN(deadline, FutexDeadline(t, a.Ptr(3), false, clock == CLOCK_REALTIME));
  }
  struct Entry {
    uint64_t val, uaddr;
    uint32_t flags, reserved;
  };
  std::vector<Entry> entries(nr);
  TRY(t.CopyIn(a.Ptr(0), entries.data(), nr * sizeof(Entry)));
  std::vector<FutexWaiter> waiters(nr);
  for (uint32_t i = 0; i < nr; i++) {
    const Entry& e = entries[i];
    if ((e.flags & ~(kSizeMask | kNuma | kPrivate)) || e.reserved != 0) return Errno{EINVAL};
    if ((e.flags & kSizeMask) != kSize32 || (e.flags & kNuma)) return Errno{EINVAL};
    if (e.val > UINT32_MAX) return Errno{EINVAL};
    ASSIGN_OR_RETURN(FutexKey key, t.mm().GetFutexKey(e.uaddr, (e.flags & kPrivate) != 0));
    waiters[i] = FutexWaiter{&t, key, ~0u};
  }
  for (uint32_t i = 0; i < nr; i++) {
    uint32_t cur;
    TRY(t.CopyInObj(entries[i].uaddr, &cur));
    if (cur != entries[i].val) return Errno{EAGAIN};
  }
  FutexTable& table = t.kernel().futexes;
  for (FutexWaiter& w : waiters) table.Enqueue(&w);
  for (;;) {
    Status s = t.Block(deadline);
    long woken = -1;
    for (uint32_t i = 0; i < nr; i++) {
      if (waiters[i].woken) woken = i;
    }
    if (woken < 0 && s.ok()) continue;  // woken for something else
    for (FutexWaiter& w : waiters) {
      if (!w.woken) table.Remove(&w);
    }
    if (woken >= 0) return woken;
    if (s.error() == ETIMEDOUT) return Errno{ETIMEDOUT};
    return Errno{kERestartSys};
  }
}

// futex(2): waits and wakes on a table keyed per address space for private
// futexes and by memory-file offset for shared ones, so that processes
// sharing a MAP_SHARED mapping meet. The priority-inheritance operations
// come with threads.
SyscallResult SysFutex(Task& t, const Args& a) {
  const int op = a.Int(1) & FUTEX_CMD_MASK;
  const bool private_op = (a.Int(1) & FUTEX_PRIVATE_FLAG) != 0;
  const bool realtime = (a.Int(1) & FUTEX_CLOCK_REALTIME) != 0;
  // Linux accepts FUTEX_CLOCK_REALTIME only with the bitset and PI waits.
  if (realtime && op != FUTEX_WAIT_BITSET && op != FUTEX_WAIT_REQUEUE_PI && op != FUTEX_LOCK_PI2) {
    return Errno{ENOSYS};
  }
  FutexTable& table = t.kernel().futexes;
  switch (op) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
      const uint32_t bitset = op == FUTEX_WAIT ? ~0u : static_cast<uint32_t>(a.U(5));
      if (bitset == 0) return Errno{EINVAL};
      ASSIGN_OR_RETURN(absl::Time deadline, FutexDeadline(t, a.Ptr(3), op == FUTEX_WAIT, realtime));
      return FutexWait(t, a.Ptr(0), private_op, static_cast<uint32_t>(a.U(2)), deadline, bitset,
                       a.Ptr(3) != 0);
    }
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET: {
      const uint32_t bitset = op == FUTEX_WAKE ? ~0u : static_cast<uint32_t>(a.U(5));
      if (bitset == 0) return Errno{EINVAL};
      ASSIGN_OR_RETURN(FutexKey key, t.mm().GetFutexKey(a.Ptr(0), private_op));
      // Linux wakes one even when asked for none (futex_wake's ++ret >= nr_wake).
      return static_cast<long>(table.Wake(key, std::max(a.Int(2), 1), bitset));
    }
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE: {
      // The fourth argument is a count here, not a timeout.
      const int n_wake = a.Int(2), n_requeue = static_cast<int>(a.U(3));
      if (n_wake < 0 || n_requeue < 0) return Errno{EINVAL};
      ASSIGN_OR_RETURN(FutexKey from, t.mm().GetFutexKey(a.Ptr(0), private_op));
      ASSIGN_OR_RETURN(FutexKey to, t.mm().GetFutexKey(a.Ptr(4), private_op));
      if (op == FUTEX_CMP_REQUEUE) {
        uint32_t cur;
        TRY(t.CopyInObj(a.Ptr(0), &cur));
        if (cur != static_cast<uint32_t>(a.U(5))) return Errno{EAGAIN};
      }
      return static_cast<long>(table.Requeue(from, to, n_wake, n_requeue));
    }
    case FUTEX_WAKE_OP:
      return FutexWakeOp(t, a, private_op);
    case FUTEX_LOCK_PI:
    case FUTEX_LOCK_PI2: {
      // LOCK_PI's timeout is absolute on CLOCK_REALTIME; LOCK_PI2's on
      // CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME says otherwise.
      ASSIGN_OR_RETURN(absl::Time deadline,
                       FutexDeadline(t, a.Ptr(3), false, op == FUTEX_LOCK_PI || realtime));
      return FutexLockPi(t, a.Ptr(0), private_op, deadline, false);
    }
    case FUTEX_TRYLOCK_PI:
      return FutexLockPi(t, a.Ptr(0), private_op, absl::InfiniteFuture(), true);
    case FUTEX_UNLOCK_PI:
      return FutexUnlockPi(t, a.Ptr(0), private_op);
    default:
      t.kernel().CountUnimplemented(SYS_futex);
      return Errno{ENOSYS};
  }
}

}  // namespace husk::syscalls
