#include "sentry/kernel/posix_timers.h"

#include <errno.h>

#include <algorithm>
#include <climits>
#include <optional>

#include "sentry/kernel/clocks.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/timer_queue.h"

namespace husk {
namespace {

constexpr int kSigevThreadId = 4;  // SIGEV_THREAD_ID
// A CPU clock id whose part is CLOCKFD names a clock device (clock_posix_dynamic).
constexpr clockid_t kClockFd = 3;
// Timers a process may hold: RLIMIT_SIGPENDING (each takes a preallocated
// signal on Linux), and never more than this many of the sentry's memory.
constexpr uint64_t kMaxTimersPerProcess = 65536;

// timer_overrun_to_int.
int ClampOverrun(int64_t v) { return static_cast<int>(std::clamp<int64_t>(v, 0, INT_MAX)); }

}  // namespace

class PosixTimers::Timer final : public Alarm {
 public:
  Timer(Kernel& k, int id, clockid_t clock, std::optional<CpuClock> cpu, int notify, int signo,
        sigval value, int target)
      : kernel_(k),
        id_(id),
        clock_(clock),
        cpu_(std::move(cpu)),
        notify_(notify),
        signo_(signo),
        value_(value),
        target_(target) {}

  void Expire(uint64_t token) override {
    absl::MutexLock l(&kernel_.mu);
    if (deleted_ || token != gen_ || !armed_) return;
    int64_t now = Now();
    if (now < next_) {
      ArmLocked();  // a CPU clock sampled early, or a clock behind its estimate
      return;
    }
    Fire(now);
  }

  // The public methods run in syscalls, under the big kernel lock.
  itimerspec Set(bool absolute, const itimerspec& v) {
    kernel_.mu.AssertHeld();
    itimerspec old = Current();
    // common_timer_set: a new generation (a signal queued before restarts
    // nothing), no reported overrun, and the timer stopped until armed.
    gen_++;
    overrun_last_ = 0;
    armed_ = false;
    interval_ = 0;
    TimerQueue::Get().Disarm(*this);
    const int64_t value = TimespecToNs(v.it_value);
    if (value == 0) return old;
    interval_ = TimespecToNs(v.it_interval);
    next_ = absolute ? value : SaturatingAdd(Now(), value);
    armed_ = true;
    ArmLocked();
    return old;
  }

  // common_timer_get: the interval of a periodic timer; the time left, or
  // 1 ns for a timer due whose signal is not out yet; zeros for a disarmed
  // or fired one-shot timer, but for SIGEV_NONE's, which shows 0 left.
  itimerspec Current() {
    kernel_.mu.AssertHeld();
    itimerspec cur{};
    if (!armed_) return cur;
    const bool sig_none = notify_ == SIGEV_NONE;
    cur.it_interval = NsToTimespec(interval_);
    const int64_t now = Now();
    // A periodic timer waiting for its signal to be taken, or one that
    // sends none, is moved past now, the periods counted as overruns.
    if (interval_ > 0 && (RequeuePending() || sig_none)) overrun_ += Forward(now);
    const int64_t remaining = next_ - now;
    if (remaining > 0) {
      cur.it_value = NsToTimespec(remaining);
    } else if (!sig_none) {
      cur.it_value.tv_nsec = 1;
    }
    return cur;
  }

  int overrun_last() {
    kernel_.mu.AssertHeld();
    return ClampOverrun(overrun_last_);
  }

  void Delete() {
    kernel_.mu.AssertHeld();
    deleted_ = true;
    armed_ = false;
    gen_++;
    TimerQueue::Get().Disarm(*this);
  }

  // posixtimer_rearm: the signal is taken. Its overrun is what expired
  // while it was queued; a periodic timer restarts, its missed periods
  // counted too.
  void OnDequeue(siginfo_t* info) {
    kernel_.mu.AssertHeld();
    if (!queued_) return;
    queued_ = false;
    const int64_t bumps = sig_bumps_;
    sig_bumps_ = 0;
    if (interval_ > 0 && armed_ && queued_gen_ == gen_) {
      overrun_ += Forward(Now());
      overrun_last_ = overrun_;
      overrun_ = -1;
      info->si_overrun = ClampOverrun(overrun_last_ + bumps);
      ArmLocked();
    } else {
      info->si_overrun = ClampOverrun(bumps);
    }
  }

 private:
  int64_t Now() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel_.mu) {
    return cpu_ ? CpuClockNow(*cpu_) : SandboxNow(clock_);
  }

  bool RequeuePending() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel_.mu) {
    return queued_ && queued_gen_ == gen_;
  }

  // hrtimer_forward: moves next_ past now by whole intervals; returns how
  // many (0 if next_ is still ahead).
  int64_t Forward(int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel_.mu) {
    if (now < next_ || interval_ == 0) return 0;
    const int64_t periods = (now - next_) / interval_ + 1;
    next_ = SaturatingAdd(next_, static_cast<__int128>(periods) * interval_);
    return periods;
  }

  void ArmLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel_.mu) {
    if (!armed_ || notify_ == SIGEV_NONE) {
      TimerQueue::Get().Disarm(*this);
      return;
    }
    if (!cpu_) {
      TimerQueue::Get().Arm(*this, clock_, next_, gen_);
      return;
    }
    // The CPU time of a task that has exited no longer grows.
    cpu_->task->kernel().mu.AssertHeld();  // one kernel, one big lock
    if (cpu_->task->exiting()) {
      TimerQueue::Get().Disarm(*this);
      return;
    }
    const int64_t wait = std::max(next_ - CpuClockNow(*cpu_), ClockTickNs());
    TimerQueue::Get().Arm(*this, CLOCK_MONOTONIC, SaturatingAdd(SandboxNow(CLOCK_MONOTONIC), wait),
                          gen_);
  }

  // The timer expired (posix_timer_fn): send the signal unless the last
  // one still waits; a periodic timer whose signal went out stops until it
  // is taken; one whose signal is ignored runs on.
  void Fire(int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel_.mu) {
    const bool periodic = interval_ > 0;
    if (!periodic) armed_ = false;
    if (queued_) {
      // send_sigqueue: an expiry while the signal is queued is an overrun
      // of it; the queued signal now belongs to this generation.
      sig_bumps_ = std::min<int64_t>(sig_bumps_ + 1, INT_MAX);
      queued_gen_ = gen_;
      return;
    }
    std::shared_ptr<Task> target = kernel_.FindTask(target_);
    if (target == nullptr || target->exiting()) return;
    target->kernel().mu.AssertHeld();  // one kernel, one big lock
    // A standard signal already pending has no room beside it in husk's
    // queue (see the top of posix_timers.h).
    const bool swallowed = signo_ < SIGRTMIN && (target->PendingSignals() & SignalBit(signo_));
    bool sent = false;
    if (!swallowed) {
      siginfo_t info = MakeSigInfo(signo_, SI_TIMER, 0, 0);
      info.si_timerid = id_;
      info.si_overrun = 0;
      info.si_value = value_;
      // Process-directed unless SIGEV_THREAD_ID named the thread.
      sent =
          (notify_ & kSigevThreadId) ? target->SendSignal(info) : target->SendProcessSignal(info);
    }
    if (sent) {
      queued_ = true;
      queued_gen_ = gen_;
      sig_bumps_ = 0;
      return;
    }
    if (periodic) {
      // Linux lets an ignored timer with an interval under a tick expire
      // once a tick, to recheck the signal's disposition.
      const int64_t tick = ClockTickNs();
      overrun_ += Forward(interval_ < tick ? SaturatingAdd(now, tick) : now);
      ArmLocked();
    }
  }

  Kernel& kernel_;
  const int id_;
  const clockid_t clock_;
  const std::optional<CpuClock> cpu_;  // set for a CPU-time clock
  const int notify_;
  const int signo_;
  const sigval value_;
  const int target_;  // the tid (SIGEV_THREAD_ID) or tgid to signal

  bool deleted_ ABSL_GUARDED_BY(kernel_.mu) = false;
  bool armed_ ABSL_GUARDED_BY(kernel_.mu) = false;    // has a setting (one-shot: not yet fired)
  int64_t next_ ABSL_GUARDED_BY(kernel_.mu) = 0;      // the expiry, on the timer's clock
  int64_t interval_ ABSL_GUARDED_BY(kernel_.mu) = 0;  // 0: one-shot
  uint64_t gen_ ABSL_GUARDED_BY(kernel_.mu) = 0;      // bumped by each setting
  bool queued_ ABSL_GUARDED_BY(kernel_.mu) = false;   // our signal waits in a queue
  uint64_t queued_gen_ ABSL_GUARDED_BY(kernel_.mu) = 0;
  int64_t sig_bumps_ ABSL_GUARDED_BY(kernel_.mu) = 0;  // expiries while queued
  int64_t overrun_ ABSL_GUARDED_BY(kernel_.mu) = -1;   // Linux's it_overrun
  int64_t overrun_last_ ABSL_GUARDED_BY(kernel_.mu) = 0;
};

// An interval timer of setitimer(2) on the process's CPU time: Linux's
// cpu_itimer (an absolute expiry on the process's clock, 0: disarmed, and
// an interval), checked by the timer thread at most once a tick.
class PosixTimers::CpuItimer final : public Alarm {
 public:
  CpuItimer(Kernel& k, int tgid, CpuClockPart part)
      : kernel_(k),
        tgid_(tgid),
        part_(part),
        signo_(part == CpuClockPart::kProf ? SIGPROF : SIGVTALRM) {}

  void Expire(uint64_t token) override {
    absl::MutexLock l(&kernel_.mu);
    if (token != gen_ || expires_ == 0) return;
    std::optional<int64_t> now = Sample();
    if (!now) return;  // the process is going: nothing counts any more
    // check_cpu_itimer: one expiry per check, the interval added once.
    if (*now >= expires_) {
      expires_ = interval_ > 0 ? SaturatingAdd(expires_, interval_) : 0;
      std::shared_ptr<Task> leader = kernel_.FindTask(tgid_);
      if (leader != nullptr) {
        leader->kernel().mu.AssertHeld();  // one kernel, one big lock
        // __group_send_sig_info with SEND_SIG_PRIV: SI_KERNEL, no sender.
        leader->SendProcessSignal(MakeSigInfo(signo_, SI_KERNEL, 0, 0));
      }
    }
    ArmLocked(*now);
  }

  // set_cpu_itimer: the old setting relative to now (a tick if it is due),
  // and a new value counted from now plus a tick, as Linux adds TICK_NSEC.
  itimerspec Set(const itimerspec& v) {
    kernel_.mu.AssertHeld();
    int64_t oval = expires_;
    const int64_t ointerval = interval_;
    int64_t nval = TimespecToNs(v.it_value);
    const int64_t ninterval = TimespecToNs(v.it_interval);
    std::optional<int64_t> now;
    if (oval != 0 || nval != 0) now = Sample();
    const int64_t base = now.value_or(0);
    if (oval != 0) oval = oval <= base ? ClockTickNs() : oval - base;
    if (nval != 0) nval = SaturatingAdd(SaturatingAdd(nval, ClockTickNs()), base);
    expires_ = nval;
    interval_ = ninterval;
    gen_++;
    if (expires_ != 0 && now) {
      ArmLocked(*now);
    } else {
      TimerQueue::Get().Disarm(*this);
    }
    return itimerspec{NsToTimespec(ointerval), NsToTimespec(oval)};
  }

  // get_cpu_itimer: the time left, a tick if the timer is due.
  itimerspec Get() {
    kernel_.mu.AssertHeld();
    int64_t cval = expires_;
    if (cval != 0) {
      const int64_t now = Sample().value_or(0);
      cval = cval < now ? ClockTickNs() : cval - now;
    }
    return itimerspec{NsToTimespec(interval_), NsToTimespec(cval)};
  }

  // The process exits: the timer stops for good.
  void Stop() {
    kernel_.mu.AssertHeld();
    expires_ = 0;
    interval_ = 0;
    gen_++;
    TimerQueue::Get().Disarm(*this);
  }

 private:
  // The process's CPU time on the timer's clock (the leader's, as the
  // process clocks count it); none once the leader has exited. The leader
  // is looked up each time: exec by another thread makes a new one.
  std::optional<int64_t> Sample() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel_.mu) {
    std::shared_ptr<Task> leader = kernel_.FindTask(tgid_);
    if (leader == nullptr) return std::nullopt;
    leader->kernel().mu.AssertHeld();  // one kernel, one big lock
    if (leader->exiting()) return std::nullopt;
    return CpuClockNow(CpuClock{std::move(leader), false, part_});
  }

  // The CPU time grows no faster than the wall clock: wake after the time
  // still missing, at least a tick apart.
  void ArmLocked(int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel_.mu) {
    if (expires_ == 0) {
      TimerQueue::Get().Disarm(*this);
      return;
    }
    const int64_t wait = std::max(expires_ - now, ClockTickNs());
    TimerQueue::Get().Arm(*this, CLOCK_MONOTONIC, SaturatingAdd(SandboxNow(CLOCK_MONOTONIC), wait),
                          gen_);
  }

  Kernel& kernel_;
  const int tgid_;
  const CpuClockPart part_;
  const int signo_;
  int64_t expires_ ABSL_GUARDED_BY(kernel_.mu) = 0;   // on the process's clock; 0: disarmed
  int64_t interval_ ABSL_GUARDED_BY(kernel_.mu) = 0;  // 0: one-shot
  uint64_t gen_ ABSL_GUARDED_BY(kernel_.mu) = 0;      // bumped by each setting
};

PosixTimers::~PosixTimers() = default;

// do_timer_create's order: the clock's kind (EINVAL, EOPNOTSUPP), an id,
// the sigevent (EINVAL), the id copied out (EFAULT), then what the clock
// itself checks (EPERM for the alarm clocks, EINVAL for a CPU clock naming
// no task). A creation that fails after the id was taken uses it up.
Result<int> PosixTimers::Create(Task& t, clockid_t clock, const sigevent* ev, uintptr_t id_addr) {
  kernel_.mu.AssertHeld();  // every caller is a syscall handler
  const bool cpu_clock = IsCpuClockId(clock);
  bool alarm_clock = false;
  if (cpu_clock) {
    if (clock < 0 && (clock & 7) == kClockFd) return Errno{EOPNOTSUPP};
  } else {
    switch (clock) {
      case CLOCK_REALTIME:
      case CLOCK_MONOTONIC:
      case CLOCK_BOOTTIME:
      case CLOCK_TAI:
        break;
      case CLOCK_REALTIME_ALARM:
      case CLOCK_BOOTTIME_ALARM:
        alarm_clock = true;
        break;
      case CLOCK_MONOTONIC_RAW:
      case CLOCK_REALTIME_COARSE:
      case CLOCK_MONOTONIC_COARSE:
        return Errno{EOPNOTSUPP};  // clocks without timers
      default:
        return Errno{EINVAL};
    }
  }
  TRY(TimerQueue::Get().Start());

  // posix_timer_add: the next free id of the process.
  Process& p = processes_[t.tgid()];
  if (p.timers.size() >=
      std::min<uint64_t>(t.tg().rlimits[RLIMIT_SIGPENDING].rlim_cur, kMaxTimersPerProcess)) {
    return Errno{EAGAIN};
  }
  int id;
  do {
    id = p.next_id;
    p.next_id = p.next_id == INT_MAX ? 0 : p.next_id + 1;
  } while (p.timers.count(id) != 0);

  // good_sigevent.
  int notify = SIGEV_SIGNAL, signo = SIGALRM, target = t.tgid();
  sigval value{};
  value.sival_int = id;
  if (ev != nullptr) {
    notify = ev->sigev_notify;
    signo = ev->sigev_signo;
    value = ev->sigev_value;
    switch (notify) {
      case SIGEV_SIGNAL | kSigevThreadId: {
        // sigev_notify_thread_id (a _GNU_SOURCE name for this field): a
        // thread of the caller's process.
        std::shared_ptr<Task> thread = kernel_.FindTask(ev->_sigev_un._tid);
        if (thread == nullptr || thread->tgid() != t.tgid()) return Errno{EINVAL};
        target = thread->tid();
        [[fallthrough]];
      }
      case SIGEV_SIGNAL:
      case SIGEV_THREAD:  // glibc makes SIGEV_THREAD of SIGEV_THREAD_ID
        if (signo <= 0 || signo > kMaxSignal) return Errno{EINVAL};
        break;
      case SIGEV_NONE:
        break;
      default:
        return Errno{EINVAL};
    }
  }
  // The kernel's timer_t is an int.
  if (!t.CopyOutObj(id_addr, id).ok()) return Errno{EFAULT};
  // CAP_WAKE_ALARM in the initial user namespace: never in the sandbox's.
  if (alarm_clock) return Errno{EPERM};
  std::optional<CpuClock> cpu;
  if (cpu_clock) {
    ASSIGN_OR_RETURN(CpuClock c, ResolveCpuClock(t, clock));
    cpu = std::move(c);
  }
  p.timers[id] =
      std::make_shared<Timer>(kernel_, id, clock, std::move(cpu), notify, signo, value, target);
  return id;
}

Result<PosixTimers::Timer*> PosixTimers::Find(Task& t, int id) {
  auto p = processes_.find(t.tgid());
  if (p == processes_.end()) return Errno{EINVAL};
  auto it = p->second.timers.find(id);
  if (it == p->second.timers.end()) return Errno{EINVAL};
  return it->second.get();
}

Result<itimerspec> PosixTimers::Set(Task& t, int id, bool absolute, const itimerspec& value) {
  kernel_.mu.AssertHeld();
  ASSIGN_OR_RETURN(Timer * timer, Find(t, id));
  return timer->Set(absolute, value);
}

Result<itimerspec> PosixTimers::Get(Task& t, int id) {
  kernel_.mu.AssertHeld();
  ASSIGN_OR_RETURN(Timer * timer, Find(t, id));
  return timer->Current();
}

Result<int> PosixTimers::Overrun(Task& t, int id) {
  kernel_.mu.AssertHeld();
  ASSIGN_OR_RETURN(Timer * timer, Find(t, id));
  return timer->overrun_last();
}

Status PosixTimers::Delete(Task& t, int id) {
  kernel_.mu.AssertHeld();
  ASSIGN_OR_RETURN(Timer * timer, Find(t, id));
  timer->Delete();
  processes_[t.tgid()].timers.erase(id);
  return Ok();
}

// RLIMIT_CPU: an alarm at the next CPU time where check_process_timers
// would act (the soft limit, or the hard one).
class PosixTimers::CpuRlimit final : public Alarm {
 public:
  CpuRlimit(Kernel& k, int tgid) : kernel_(k), tgid_(tgid) {}

  void Expire(uint64_t token) override {
    absl::MutexLock l(&kernel_.mu);
    if (token == gen_) CheckLocked();
  }
  void Update() {
    kernel_.mu.AssertHeld();
    gen_++;
    CheckLocked();
  }
  void Stop() {
    kernel_.mu.AssertHeld();
    gen_++;
    TimerQueue::Get().Disarm(*this);
  }

 private:
  static int64_t Seconds(rlim_t s) {
    return s >= static_cast<rlim_t>(INT64_MAX / 1000000000) ? INT64_MAX
                                                            : static_cast<int64_t>(s) * 1000000000;
  }

  void CheckLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kernel_.mu) {
    std::shared_ptr<Task> leader = kernel_.FindTask(tgid_);
    if (leader == nullptr) return;
    leader->kernel().mu.AssertHeld();  // one kernel, one big lock
    if (leader->exiting()) return;
    struct rlimit& lim = leader->tg().rlimits[RLIMIT_CPU];
    if (lim.rlim_cur == RLIM_INFINITY) {
      TimerQueue::Get().Disarm(*this);
      return;
    }
    const int64_t now = CpuClockNow(CpuClock{leader, false, CpuClockPart::kProf});
    const bool hard_set = lim.rlim_max != RLIM_INFINITY;
    if (hard_set && now >= Seconds(lim.rlim_max)) {
      leader->SendProcessSignal(MakeSigInfo(SIGKILL, SI_KERNEL, 0, 0));
      TimerQueue::Get().Disarm(*this);
      return;
    }
    if (now >= Seconds(lim.rlim_cur)) {
      // The next SIGXCPU a second later, unless the soft limit is the hard one.
      if (!hard_set || lim.rlim_cur < lim.rlim_max) lim.rlim_cur++;
      leader->SendProcessSignal(MakeSigInfo(SIGXCPU, SI_KERNEL, 0, 0));
    }
    int64_t next = Seconds(lim.rlim_cur);
    if (hard_set) next = std::min(next, Seconds(lim.rlim_max));
    if (next <= now) next = hard_set ? Seconds(lim.rlim_max) : now;
    // CPU time grows no faster than the wall clock: wake after the time
    // still missing, at least a tick apart.
    const int64_t wait = std::max(next - now, ClockTickNs());
    TimerQueue::Get().Arm(*this, CLOCK_MONOTONIC, SaturatingAdd(SandboxNow(CLOCK_MONOTONIC), wait),
                          gen_);
  }

  Kernel& kernel_;
  const int tgid_;
  uint64_t gen_ ABSL_GUARDED_BY(kernel_.mu) = 0;
};

void PosixTimers::UpdateCpuRlimit(Task& t) {
  kernel_.mu.AssertHeld();
  t.kernel().mu.AssertHeld();  // one kernel, one big lock
  std::shared_ptr<CpuRlimit>& r = processes_[t.tgid()].cpu_rlimit;
  if (t.tg().rlimits[RLIMIT_CPU].rlim_cur == RLIM_INFINITY) {
    if (r != nullptr) r->Stop();
    return;
  }
  if (!TimerQueue::Get().Start().ok()) return;  // no timer thread: the limit cannot be kept
  if (r == nullptr) r = std::make_shared<CpuRlimit>(kernel_, t.tgid());
  r->Update();
}

Result<itimerspec> PosixTimers::SetCpuItimer(Task& t, CpuClockPart part, const itimerspec& value) {
  kernel_.mu.AssertHeld();
  if (TimespecToNs(value.it_value) != 0) TRY(TimerQueue::Get().Start());
  std::shared_ptr<CpuItimer>& it = processes_[t.tgid()].itimers[static_cast<int>(part)];
  if (it == nullptr) it = std::make_shared<CpuItimer>(kernel_, t.tgid(), part);
  return it->Set(value);
}

itimerspec PosixTimers::GetCpuItimer(Task& t, CpuClockPart part) {
  kernel_.mu.AssertHeld();
  auto p = processes_.find(t.tgid());
  if (p == processes_.end()) return itimerspec{};
  const std::shared_ptr<CpuItimer>& it = p->second.itimers[static_cast<int>(part)];
  return it == nullptr ? itimerspec{} : it->Get();
}

void PosixTimers::OnExec(int tgid) {
  kernel_.mu.AssertHeld();
  auto p = processes_.find(tgid);
  if (p == processes_.end()) return;
  for (auto& [id, timer] : p->second.timers) timer->Delete();
  p->second.timers.clear();  // the id counter runs on
}

void PosixTimers::OnExit(int tgid) {
  OnExec(tgid);
  auto p = processes_.find(tgid);
  if (p != processes_.end()) {
    for (auto& it : p->second.itimers) {
      if (it != nullptr) it->Stop();
    }
    if (p->second.cpu_rlimit != nullptr) p->second.cpu_rlimit->Stop();
  }
  processes_.erase(tgid);
}

void PosixTimers::OnDequeue(Task& t, siginfo_t* info) {
  kernel_.mu.AssertHeld();
  auto timer = Find(t, info->si_timerid);
  if (timer.ok()) (*timer)->OnDequeue(info);
}

}  // namespace husk
