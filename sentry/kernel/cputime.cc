#include "sentry/kernel/cputime.h"

#include <pthread.h>

#include <algorithm>

#include "sentry/kernel/kernel.h"

namespace husk {
namespace {

int64_t Ns(const timespec& ts) { return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec; }

// ns_to_kernel_old_timeval: whole microseconds, truncated.
timeval Timeval(int64_t ns) {
  return timeval{static_cast<time_t>(ns / 1000000000),
                 static_cast<suseconds_t>((ns % 1000000000) / 1000)};
}

platform::AddressSpace* AddressSpaceOf(Task& t) {
  return t.mm_ != nullptr ? &t.mm_->address_space() : nullptr;
}

uint64_t ResidentOf(Task& t) { return t.mm_ != nullptr ? t.mm_->ResidentBytes() : 0; }

struct rusage MakeRusage(const CpuTimes& times, int64_t maxrss_kib) {
  struct rusage ru {};
  ru.ru_utime = Timeval(times.user);
  ru.ru_stime = Timeval(times.system);
  ru.ru_maxrss = maxrss_kib;
  return ru;
}

}  // namespace

void TaskCpu::BindHostThread() {
  clockid_t clock;
  if (pthread_getcpuclockid(pthread_self(), &clock) == 0) host_clock_ = clock;
}

int64_t TaskCpu::HostThreadRuntime() const {
  timespec ts;
  // Only read while the thread lives: a task's clock is frozen at its exit,
  // before its thread ends and the thread id can name another sentry thread.
  if (!host_clock_ || clock_gettime(*host_clock_, &ts) != 0) return 0;
  return Ns(ts);
}

platform::CpuUsage TaskCpu::StubUsage(platform::AddressSpace* as) const {
  if (as == nullptr) return {};
  Result<platform::CpuUsage> u = as->Usage();
  return u.ok() ? *u : platform::CpuUsage{};
}

CpuTimes TaskCpu::Adjust(const platform::CpuUsage& u) {
  const int64_t runtime = u.runtime;
  // The split so far already covers this much (or the runtime went back,
  // which the host's clock never should): report it again.
  if (prev_stub_.total() >= runtime) return prev_stub_;
  int64_t system;
  if (u.system == 0) {
    system = 0;  // no system ticks yet: all user, until the ticks say otherwise
  } else if (u.user == 0) {
    system = runtime;
  } else {
    system = static_cast<int64_t>(static_cast<__int128>(u.system) * runtime /
                                  (static_cast<__int128>(u.system) + u.user));
  }
  // Neither part may go backwards: the runtime only grows, so keeping one
  // part at least its previous value leaves the other at least its own.
  system = std::max(system, prev_stub_.system);
  int64_t user = runtime - system;
  if (user < prev_stub_.user) {
    user = prev_stub_.user;
    system = runtime - user;
  }
  prev_stub_ = CpuTimes{user, system};
  return prev_stub_;
}

CpuTimes TaskCpu::Times(platform::AddressSpace* as) {
  if (frozen_) return *frozen_;
  CpuTimes t = retired_;
  t += Adjust(StubUsage(as));
  t.system += HostThreadRuntime();
  return t;
}

int64_t TaskCpu::Runtime(platform::AddressSpace* as) {
  if (frozen_) return frozen_runtime_;
  return retired_runtime_ + std::max(StubUsage(as).runtime, prev_stub_.total()) +
         HostThreadRuntime();
}

int64_t TaskCpu::MaxRssKib(uint64_t resident_bytes) {
  maxrss_kib_ = std::max(maxrss_kib_, static_cast<int64_t>(resident_bytes / 1024));
  return maxrss_kib_;
}

void TaskCpu::RetireAddressSpace(platform::AddressSpace& as, uint64_t resident_bytes) {
  if (frozen_) return;
  platform::CpuUsage u = StubUsage(&as);
  retired_ += Adjust(u);
  retired_runtime_ += std::max(u.runtime, prev_stub_.total());
  prev_stub_ = CpuTimes{};
  MaxRssKib(resident_bytes);
}

void TaskCpu::Freeze(platform::AddressSpace* as, uint64_t resident_bytes) {
  if (frozen_) return;
  MaxRssKib(resident_bytes);
  // One reading for both: the CPU clock then equals what getrusage reports.
  CpuTimes t = Times(as);
  frozen_runtime_ = t.total();
  frozen_ = t;
  host_clock_.reset();
}

CpuTimes TaskTimes(Task& t) { return t.cpu.Times(AddressSpaceOf(t)); }

int64_t TaskRuntime(Task& t) { return t.cpu.Runtime(AddressSpaceOf(t)); }

struct rusage SelfRusage(Task& t) {
  return MakeRusage(TaskTimes(t), t.cpu.MaxRssKib(ResidentOf(t)));
}

struct rusage ChildrenRusage(Task& t) {
  return MakeRusage(t.cpu.children, t.cpu.children_maxrss_kib);
}

struct rusage BothRusage(Task& t) {
  CpuTimes both = TaskTimes(t);
  both += t.cpu.children;
  return MakeRusage(both, std::max(t.cpu.MaxRssKib(ResidentOf(t)), t.cpu.children_maxrss_kib));
}

void BindTaskCpu(Task& t) { t.cpu.BindHostThread(); }

void RetireTaskAddressSpace(Task& t) {
  if (t.mm_ != nullptr) t.cpu.RetireAddressSpace(t.mm_->address_space(), ResidentOf(t));
}

void FreezeTaskCpu(Task& t) { t.cpu.Freeze(AddressSpaceOf(t), ResidentOf(t)); }

void SetSigchldTimes(Task& child, siginfo_t* info) {
  CpuTimes times = TaskTimes(child);
  info->si_utime = NsToClockTicks(times.user);
  info->si_stime = NsToClockTicks(times.system);
}

void AccountReapedChild(Task& parent, Task& child) {
  TaskCpu& p = parent.cpu;
  p.children += TaskTimes(child);
  p.children += child.cpu.children;
  p.children_maxrss_kib =
      std::max({p.children_maxrss_kib, child.cpu.MaxRssKib(0), child.cpu.children_maxrss_kib});
}

}  // namespace husk
