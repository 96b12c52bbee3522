// Scheduling as the application sees it: nice values (getpriority,
// setpriority), policies and priorities (sched_setscheduler and friends,
// sched_setattr), CPU affinity, sched_yield and getcpu.
//
// husk keeps these per thread, as Linux does, and reports them faithfully,
// but the host schedules the sentry's threads on its own: no nice value,
// policy or affinity reaches the host (the sandbox has no right to change
// them there). Privilege is CAP_SYS_NICE in the sandbox's user namespace,
// which husk treats as the application's initial namespace (caps.h): root
// may lower nice values and use real-time policies. Natively, a test run as
// root of a user namespace lacks it (Linux asks the initial namespace).
#include <errno.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <vector>

#include "sentry/kernel/blocking.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::syscalls {
namespace {

constexpr int kMinNice = -20, kMaxNice = 19;
constexpr int kMaxRtPriority = 99;  // MAX_RT_PRIO - 1
constexpr int kSchedDeadline = 6;
constexpr int kSchedResetOnFork = 0x40000000;
constexpr int kKeepPolicy = -1;  // sched_setparam: SETPARAM_POLICY
// sched_attr.sched_flags (linux/sched.h).
constexpr uint64_t kFlagResetOnFork = 0x01, kFlagKeepPolicy = 0x08, kFlagKeepParams = 0x10;
constexpr uint64_t kFlagUtilClamp = 0x60;
constexpr uint64_t kFlagsKnown = 0x7f;
// cpumask_size(): the bytes of a CPU mask sched_getaffinity copies at most.
constexpr size_t kCpuMaskBytes = kMaxCpus / 8;

// The thread a sched_* or *priority call names: 0 is the caller
// (find_process_by_pid; any thread id, a zombie leader included).
Result<std::shared_ptr<Task>> ThreadOf(Task& t, int pid)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  std::shared_ptr<Task> target = t.kernel().FindTask(pid == 0 ? t.tid() : pid);
  if (target == nullptr) return Errno{ESRCH};
  return target;
}

bool RtPolicy(int policy) { return policy == SCHED_FIFO || policy == SCHED_RR; }

bool ValidPolicy(int policy) {
  return policy == SCHED_OTHER || policy == SCHED_BATCH || policy == SCHED_IDLE ||
         RtPolicy(policy) || policy == kSchedDeadline;
}

// can_nice(): a nice value at or above 20 - RLIMIT_NICE, or CAP_SYS_NICE.
bool CanNice(Task& caller, Task& target, int nice) {
  return static_cast<rlim_t>(20 - nice) <= target.tg().rlimits[RLIMIT_NICE].rlim_cur ||
         caller.Capable(CAP_SYS_NICE);
}

// check_same_owner(): the caller's euid is the target's euid or real uid.
bool SameOwner(const Task& caller, const Task& target) {
  return caller.euid == target.euid || caller.euid == target.uid;
}

// Linux's real-time tasks have no timer slack (6.7 on); others get their
// default back.
void SetPolicy(Task& p, int policy, int priority, bool reset_on_fork) {
  p.sched_policy = policy;
  p.sched_priority = RtPolicy(policy) ? priority : 0;
  p.sched_reset_on_fork = reset_on_fork;
  p.timer_slack_ns = RtPolicy(policy) ? 0 : p.default_timer_slack_ns;
}

struct SchedRequest {
  int policy;  // kKeepPolicy: the target's own
  int priority;
  int nice;
  bool reset_on_fork;
};

// __sched_setscheduler: the argument checks, then the rules for callers
// without CAP_SYS_NICE, then the change.
Result<long> SetScheduler(Task& t, Task& p, SchedRequest r) {
  if (r.policy == kKeepPolicy) {
    r.policy = p.sched_policy;
    r.reset_on_fork = p.sched_reset_on_fork;
  }
  if (!ValidPolicy(r.policy)) return Errno{EINVAL};
  if (r.priority < 0 || r.priority > kMaxRtPriority) return Errno{EINVAL};
  if (r.policy == kSchedDeadline || RtPolicy(r.policy) != (r.priority != 0)) return Errno{EINVAL};
  if (!t.Capable(CAP_SYS_NICE)) {
    const bool fair = r.policy == SCHED_OTHER || r.policy == SCHED_BATCH;
    if (fair && r.nice < p.nice && !CanNice(t, p, r.nice)) return Errno{EPERM};
    if (RtPolicy(r.policy)) {
      const rlim_t limit = p.tg().rlimits[RLIMIT_RTPRIO].rlim_cur;
      if (r.policy != p.sched_policy && limit == 0) return Errno{EPERM};
      if (r.priority > p.sched_priority && static_cast<rlim_t>(r.priority) > limit) {
        return Errno{EPERM};
      }
    }
    // SCHED_IDLE counts as nice 20: leaving it takes what RLIMIT_NICE
    // allows for the task's own nice value.
    if (p.sched_policy == SCHED_IDLE && r.policy != SCHED_IDLE && !CanNice(t, p, p.nice)) {
      return Errno{EPERM};
    }
    if (!SameOwner(t, p)) return Errno{EPERM};
    if (p.sched_reset_on_fork && !r.reset_on_fork) return Errno{EPERM};
  }
  SetPolicy(p, r.policy, r.priority, r.reset_on_fork);
  if (r.policy == SCHED_OTHER || r.policy == SCHED_BATCH || r.policy == SCHED_IDLE) p.nice = r.nice;
  return 0L;
}

// The PRIO_* targets of getpriority/setpriority: threads, as Linux's
// PRIO_PGRP and PRIO_USER walk every thread.
Result<std::vector<std::shared_ptr<Task>>> PriorityTargets(Task& t, int which, int who)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  Kernel& k = t.kernel();
  k.mu.AssertHeld();  // t's
  std::vector<std::shared_ptr<Task>> out;
  switch (which) {
    case PRIO_PROCESS: {
      // Zombies count, as long as Linux still finds them (until reaped).
      std::shared_ptr<Task> p = k.FindTask(who == 0 ? t.tid() : who);
      if (p != nullptr) out.push_back(std::move(p));
      return out;
    }
    case PRIO_PGRP:
    case PRIO_USER: {
      const int pgid = who == 0 ? t.tg().pgid : who;
      const uint32_t uid = who == 0 ? t.uid : static_cast<uint32_t>(who);
      for (int pid : k.Pids()) {
        std::shared_ptr<Task> leader = k.FindTask(pid);
        if (leader == nullptr) continue;
        leader->kernel().mu.AssertHeld();  // one kernel, one lock
        for (int tid : k.Tids(pid)) {
          std::shared_ptr<Task> p = k.FindTask(tid);
          if (p == nullptr) continue;
          if (which == PRIO_PGRP ? p->tg().pgid == pgid : p->uid == uid) out.push_back(p);
        }
      }
      return out;
    }
    default:
      return Errno{EINVAL};
  }
}

}  // namespace

// getpriority(2): the raw call answers 20 - nice, the best (highest) of the
// targets, so that it is never negative; glibc turns it back.
SyscallResult SysGetpriority(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(std::vector<std::shared_ptr<Task>> targets,
                   PriorityTargets(t, a.Int(0), a.Int(1)));
  if (targets.empty()) return Errno{ESRCH};
  int best = 0;
  for (auto& p : targets) best = std::max(best, 20 - p->nice);
  return static_cast<long>(best);
}

// setpriority(2): the value is clamped to -20..19. Each target needs the
// caller's euid to be its real or effective uid (or CAP_SYS_NICE: EPERM);
// a lower nice value needs RLIMIT_NICE or CAP_SYS_NICE (EACCES). The last
// error wins, but any success clears ESRCH.
SyscallResult SysSetpriority(Task& t, const Args& a) {
  const int nice = std::clamp(a.Int(2), kMinNice, kMaxNice);
  ASSIGN_OR_RETURN(std::vector<std::shared_ptr<Task>> targets,
                   PriorityTargets(t, a.Int(0), a.Int(1)));
  int error = ESRCH;
  for (auto& p : targets) {
    if (p->uid != t.euid && p->euid != t.euid && !t.Capable(CAP_SYS_NICE)) {
      error = EPERM;
      continue;
    }
    if (nice < p->nice && !CanNice(t, *p, nice)) {
      error = EACCES;
      continue;
    }
    if (error == ESRCH) error = 0;
    p->nice = nice;
  }
  if (error != 0) return Errno{error};
  return 0L;
}

SyscallResult SysSchedSetscheduler(Task& t, const Args& a) {
  if (a.Ptr(2) == 0 || a.Int(0) < 0) return Errno{EINVAL};
  struct sched_param param;
  TRY(t.CopyInObj(a.Ptr(2), &param));
  ASSIGN_OR_RETURN(std::shared_ptr<Task> p, ThreadOf(t, a.Int(0)));
  int policy = a.Int(1);
  // A negative policy is EINVAL here, not "keep" as for sched_setparam.
  if (policy < 0) return Errno{EINVAL};
  const bool reset_on_fork = (policy & kSchedResetOnFork) != 0;
  policy &= ~kSchedResetOnFork;
  return SetScheduler(t, *p, {policy, param.sched_priority, p->nice, reset_on_fork});
}

SyscallResult SysSchedSetparam(Task& t, const Args& a) {
  if (a.Ptr(1) == 0 || a.Int(0) < 0) return Errno{EINVAL};
  struct sched_param param;
  TRY(t.CopyInObj(a.Ptr(1), &param));
  ASSIGN_OR_RETURN(std::shared_ptr<Task> p, ThreadOf(t, a.Int(0)));
  return SetScheduler(t, *p, {kKeepPolicy, param.sched_priority, p->nice, false});
}

SyscallResult SysSchedGetscheduler(Task& t, const Args& a) {
  if (a.Int(0) < 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::shared_ptr<Task> p, ThreadOf(t, a.Int(0)));
  return static_cast<long>(p->sched_policy | (p->sched_reset_on_fork ? kSchedResetOnFork : 0));
}

SyscallResult SysSchedGetparam(Task& t, const Args& a) {
  if (a.Ptr(1) == 0 || a.Int(0) < 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::shared_ptr<Task> p, ThreadOf(t, a.Int(0)));
  struct sched_param param {};
  param.sched_priority = p->sched_priority;
  TRY(t.CopyOutObj(a.Ptr(1), param));
  return 0L;
}

SyscallResult SysSchedGetPriorityMax(Task&, const Args& a) {
  const int policy = a.Int(0);
  if (RtPolicy(policy)) return static_cast<long>(kMaxRtPriority);
  if (ValidPolicy(policy)) return 0L;
  return Errno{EINVAL};
}

SyscallResult SysSchedGetPriorityMin(Task&, const Args& a) {
  const int policy = a.Int(0);
  if (RtPolicy(policy)) return 1L;
  if (ValidPolicy(policy)) return 0L;
  return Errno{EINVAL};
}

// sched_rr_get_interval(2): SCHED_RR's 100 ms quantum (RR_TIMESLICE); 0 for
// SCHED_FIFO and, here, for the fair policies too (Linux gives CFS's slice
// when other tasks share the run queue, 0 when none does).
SyscallResult SysSchedRrGetInterval(Task& t, const Args& a) {
  if (a.Int(0) < 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::shared_ptr<Task> p, ThreadOf(t, a.Int(0)));
  timespec ts{0, p->sched_policy == SCHED_RR ? 100'000'000 : 0};
  TRY(t.CopyOutObj(a.Ptr(1), ts));
  return 0L;
}

namespace {

// struct sched_attr (linux/sched/types.h), SCHED_ATTR_SIZE_VER1.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t sched_util_min, sched_util_max;
};
static_assert(sizeof(SchedAttr) == 56);
constexpr uint32_t kSchedAttrSizeVer0 = 48;

}  // namespace

SyscallResult SysSchedGetattr(Task& t, const Args& a) {
  const size_t usize = a.Size(2);
  if (a.Ptr(1) == 0 || a.Int(0) < 0 || usize > kPageSize || usize < kSchedAttrSizeVer0 ||
      a.U(3) != 0) {
    return Errno{EINVAL};
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Task> p, ThreadOf(t, a.Int(0)));
  SchedAttr attr{};
  attr.size = static_cast<uint32_t>(std::min(usize, sizeof(attr)));
  attr.sched_policy = static_cast<uint32_t>(p->sched_policy);
  if (p->sched_reset_on_fork) attr.sched_flags |= kFlagResetOnFork;
  if (RtPolicy(p->sched_policy)) {
    attr.sched_priority = static_cast<uint32_t>(p->sched_priority);
  } else {
    attr.sched_nice = p->nice;
  }
  TRY(t.CopyOut(a.Ptr(1), &attr, attr.size));
  return 0L;
}

// sched_setattr(2): a larger struct than the kernel's is fine if the bytes
// past it are zero (else E2BIG, with the kernel's size written back);
// SCHED_DEADLINE is refused (EPERM, as for a caller without CAP_SYS_NICE:
// husk has no deadline scheduling to report) and utilization clamping is
// EOPNOTSUPP, as on a kernel built without CONFIG_UCLAMP_TASK.
SyscallResult SysSchedSetattr(Task& t, const Args& a) {
  if (a.Ptr(1) == 0 || a.Int(0) < 0 || a.U(2) != 0) return Errno{EINVAL};
  uint32_t size;
  TRY(t.CopyInObj(a.Ptr(1), &size));
  if (size == 0) size = kSchedAttrSizeVer0;
  if (size < kSchedAttrSizeVer0 || size > kPageSize) {
    TRY(t.CopyOutObj(a.Ptr(1), static_cast<uint32_t>(sizeof(SchedAttr))));
    return Errno{E2BIG};
  }
  SchedAttr attr{};
  TRY(t.CopyIn(a.Ptr(1), &attr, std::min<size_t>(size, sizeof(attr))));
  if (size > sizeof(attr)) {
    std::vector<char> rest(size - sizeof(attr));
    TRY(t.CopyIn(a.Ptr(1) + sizeof(attr), rest.data(), rest.size()));
    if (std::any_of(rest.begin(), rest.end(), [](char c) { return c != 0; })) {
      TRY(t.CopyOutObj(a.Ptr(1), static_cast<uint32_t>(sizeof(SchedAttr))));
      return Errno{E2BIG};
    }
  }
  attr.sched_nice = std::clamp(attr.sched_nice, kMinNice, kMaxNice);
  if (static_cast<int>(attr.sched_policy) < 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::shared_ptr<Task> p, ThreadOf(t, a.Int(0)));
  if (attr.sched_flags & kFlagKeepParams) {
    attr.sched_priority = static_cast<uint32_t>(p->sched_priority);
    attr.sched_nice = p->nice;
  }
  if (attr.sched_flags & ~kFlagsKnown) return Errno{EINVAL};
  int policy =
      (attr.sched_flags & kFlagKeepPolicy) ? kKeepPolicy : static_cast<int>(attr.sched_policy);
  if (policy == kSchedDeadline) return Errno{EPERM};
  if (attr.sched_flags & kFlagUtilClamp) return Errno{EOPNOTSUPP};
  if (attr.sched_priority > static_cast<uint32_t>(kMaxRtPriority)) return Errno{EINVAL};
  return SetScheduler(t, *p,
                      {policy, static_cast<int>(attr.sched_priority), attr.sched_nice,
                       (attr.sched_flags & kFlagResetOnFork) != 0});
}

// sched_getaffinity(2): the thread's mask; the buffer must hold the
// sandbox's CPUs and be a whole number of longs. Returns the bytes copied.
SyscallResult SysSchedGetaffinity(Task& t, const Args& a) {
  const size_t len = a.Size(1);
  if (len * 8 < static_cast<size_t>(t.kernel().cpus) || (len & 7) != 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::shared_ptr<Task> p, ThreadOf(t, a.Int(0)));
  uint8_t bytes[kCpuMaskBytes] = {};
  for (int cpu = 0; cpu < kMaxCpus; cpu++) {
    if (p->cpu_mask.test(cpu)) bytes[cpu / 8] |= static_cast<uint8_t>(1u << (cpu % 8));
  }
  const size_t n = std::min(len, kCpuMaskBytes);
  TRY(t.CopyOut(a.Ptr(2), bytes, n));
  return static_cast<long>(n);
}

// sched_setaffinity(2): what the mask holds of the sandbox's CPUs (bits past
// them are ignored); EINVAL if that is none. A shorter buffer than a whole
// mask is read as far as it goes. Another owner's thread needs CAP_SYS_NICE.
SyscallResult SysSchedSetaffinity(Task& t, const Args& a) {
  uint8_t bytes[kCpuMaskBytes] = {};
  TRY(t.CopyIn(a.Ptr(2), bytes, std::min(a.Size(1), kCpuMaskBytes)));
  ASSIGN_OR_RETURN(std::shared_ptr<Task> p, ThreadOf(t, a.Int(0)));
  if (!SameOwner(t, *p) && !t.Capable(CAP_SYS_NICE)) return Errno{EPERM};
  CpuMask mask;
  for (int cpu = 0; cpu < std::min(t.kernel().cpus, kMaxCpus); cpu++) {
    if (bytes[cpu / 8] & (1u << (cpu % 8))) mask.set(cpu);
  }
  if (mask.none()) return Errno{EINVAL};
  p->cpu_mask = mask;
  // The vDSO's getcpu reads the CPU the thread runs on, which need not be
  // one its mask allows (husk does not pin): from now on it asks SysGetcpu.
  if (mask.count() < static_cast<size_t>(std::min(t.kernel().cpus, kMaxCpus))) {
    SandboxClock::Get().GetcpuBySyscall();
  }
  return 0L;
}

SyscallResult SysSchedYield(Task& t, const Args&) {
  ScopedBlocking unlocked(t.kernel());
  sched_yield();
  return 0L;
}

// getcpu(2): the host CPU the sentry's thread runs on, when it is one the
// task's affinity allows; else the first CPU it allows (the sentry does not
// pin threads by the application's mask). NUMA node 0. The vDSO's getcpu
// gives the same without a syscall (the stub thread runs on its tracer's
// CPU) until some thread narrows its mask.
SyscallResult SysGetcpu(Task& t, const Args& a) {
  int cpu = sched_getcpu();
  if (cpu < 0 || cpu >= kMaxCpus || !t.cpu_mask.test(static_cast<size_t>(cpu))) {
    cpu = 0;
    while (cpu < kMaxCpus - 1 && !t.cpu_mask.test(static_cast<size_t>(cpu))) cpu++;
  }
  if (a.Ptr(0) != 0) TRY(t.CopyOutObj(a.Ptr(0), static_cast<unsigned>(cpu)));
  if (a.Ptr(1) != 0) TRY(t.CopyOutObj(a.Ptr(1), 0u));
  return 0L;
}

}  // namespace husk::syscalls
