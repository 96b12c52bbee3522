#include "sentry/time/sandbox_clock.h"

#include <cpuid.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace husk {
namespace {

static_assert(sizeof(husk_vvar) % sizeof(uint64_t) == 0 && sizeof(husk_vvar) <= HUSK_VVAR_SIZE);

// How far ahead of the writer's TSC reading new parameters start (see
// vvar.h): more than a reader's rdtsc can lag its load of seq.
constexpr int64_t kMarginNs = 1000;
// The host's CLOCK_REALTIME - CLOCK_MONOTONIC changes only when the host's
// wall clock is set; smaller changes are the noise of measuring it.
constexpr int64_t kRealSlackNs = 20000;
// CLOCK_BOOTTIME - CLOCK_MONOTONIC grows while the host is suspended.
constexpr int64_t kBootSlackNs = 1000000;
// A TSC whose rate over one refresh interval (at least kCheckWindowNs)
// strays this far from the rate in use is not a clock: husk stops using it.
constexpr int64_t kCheckWindowNs = 100000000;
constexpr int64_t kStrayPpm = 1000;

class HostClocks : public ClockSource {
 public:
  uint64_t Tsc() override { return husk_rdtsc_ordered(); }
  int64_t Host(clockid_t id) override {
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
};

// An invariant TSC (CPUID.80000007H:EDX[8]: constant rate, runs in deep
// C-states) is the only kind Linux's vDSO reads without a paravirtual clock.
bool TscInvariant() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(d & (1u << 4))) return false;
  if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007) return false;
  __get_cpuid(0x80000007, &a, &b, &c, &d);
  return (d & (1u << 8)) != 0;
}

int64_t HostTickNs() {
  timespec res{};
  clock_getres(CLOCK_REALTIME_COARSE, &res);
  const int64_t ns = static_cast<int64_t>(res.tv_sec) * 1000000000 + res.tv_nsec;
  return ns > 0 ? ns : 4000000;  // HZ=250 if the host won't say
}

int64_t Floor(int64_t ns, int64_t unit) { return ns - ns % unit; }

// The value the parameters give at `tsc` (no staleness check).
uint64_t MonoAt(const husk_vvar& v, uint64_t tsc) {
  const uint64_t delta = tsc > v.tsc_base ? tsc - v.tsc_base : 0;
  return v.mono_ns +
         static_cast<uint64_t>((static_cast<unsigned __int128>(delta) * v.mult) >> v.shift);
}
uint64_t RawAt(const husk_vvar& v, uint64_t tsc) {
  const uint64_t delta = tsc > v.tsc_base ? tsc - v.tsc_base : 0;
  return v.raw_ns +
         static_cast<uint64_t>((static_cast<unsigned __int128>(delta) * v.raw_mult) >> v.shift);
}

// Relaxed atomic stores of the parameters: readers copy them concurrently.
template <typename T>
void Put(T& field, T value) {
  __atomic_store_n(&field, value, __ATOMIC_RELAXED);
}

}  // namespace

SandboxClock& SandboxClock::Get() {
  // Never destroyed: sentry threads read it until the process exits.
  static HostClocks* const source = new HostClocks();
  static husk_vvar* const page = new husk_vvar{};
  static SandboxClock* const clock = new SandboxClock(*source, page, TscInvariant(), HostTickNs());
  return *clock;
}

SandboxClock::SandboxClock(ClockSource& source, husk_vvar* vvar, bool tsc_usable, int64_t tick_ns)
    : src_(source),
      vvar_(vvar),
      tick_ns_(tick_ns),
      mono_shift_(source.Host(CLOCK_MONOTONIC) - kBaseNs),
      boot_shift_(source.Host(CLOCK_BOOTTIME) - kBaseNs),
      raw_shift_(source.Host(CLOCK_MONOTONIC_RAW) - kBaseNs),
      calibrating_(tsc_usable) {
  Put(vvar->clock_mode, HUSK_VCLOCK_NONE);
  Put(vvar->shift, kShift);
  Put(vvar->coarse_ns, static_cast<uint64_t>(tick_ns));
  Put(vvar->getcpu_mode, HUSK_GETCPU_SYSCALL);
  absl::MutexLock l(&mu_);
  anchor_ = last_ = TakeSample();
}

bool SandboxClock::Has(clockid_t id) {
  switch (id) {
    case CLOCK_REALTIME:
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
    case CLOCK_REALTIME_ALARM:
    case CLOCK_BOOTTIME_ALARM:
    case CLOCK_TAI:
      return true;
    default:
      return false;
  }
}

int64_t SandboxClock::FromHost(clockid_t id) {
  switch (id) {
    case CLOCK_MONOTONIC:
      return src_.Host(CLOCK_MONOTONIC) - mono_shift_.load(std::memory_order_relaxed);
    case CLOCK_MONOTONIC_COARSE:
      return Floor(FromHost(CLOCK_MONOTONIC), tick_ns_);
    case CLOCK_MONOTONIC_RAW:
      return src_.Host(CLOCK_MONOTONIC_RAW) - raw_shift_.load(std::memory_order_relaxed);
    case CLOCK_BOOTTIME:
      return src_.Host(CLOCK_BOOTTIME) - boot_shift_.load(std::memory_order_relaxed);
    case CLOCK_REALTIME_COARSE:
      return Floor(src_.Host(CLOCK_REALTIME), tick_ns_);
    default:  // REALTIME, TAI
      return src_.Host(id);
  }
}

int64_t SandboxClock::Now(clockid_t id) {
  if (id == CLOCK_REALTIME_ALARM) id = CLOCK_REALTIME;
  if (id == CLOCK_BOOTTIME_ALARM) id = CLOCK_BOOTTIME;
  if (!Has(id)) return 0;
  for (;;) {
    const husk_vvar* v = vvar();
    const uint32_t seq = husk_vvar_read_begin(v);
    husk_vvar p;
    husk_vvar_copy(v, &p);
    if (p.clock_mode == HUSK_VCLOCK_NONE) {
      const int64_t ns = FromHost(id);
      // Read before the TSC clock took over (if it did): such a value is
      // never later than the TSC clock's first.
      if (husk_vvar_read_retry(v, seq)) continue;
      if (calibrating_.load(std::memory_order_relaxed)) TryCalibrate();
      return ns;
    }
    const uint64_t tsc = src_.Tsc();
    if (husk_vvar_read_retry(v, seq)) continue;
    int64_t ns;
    if (husk_vclock_ns(&p, id, tsc, &ns) == 0) return ns;
    Refresh(false);  // stale
  }
}

uint64_t SandboxClock::MultOf(int64_t ns, uint64_t ticks) {
  if (ticks == 0 || ns <= 0) return 0;
  return static_cast<uint64_t>((static_cast<unsigned __int128>(ns) << kShift) / ticks);
}

SandboxClock::Sample SandboxClock::TakeSample() {
  Sample best;
  uint64_t best_width = UINT64_MAX;
  for (int i = 0; i < 3; i++) {
    const uint64_t before = src_.Tsc();
    Sample s;
    s.mono = src_.Host(CLOCK_MONOTONIC);
    s.raw = src_.Host(CLOCK_MONOTONIC_RAW);
    s.tsc = src_.Tsc();
    if (s.tsc - before < best_width) {
      best_width = s.tsc - before;
      best = s;
    }
  }
  return best;
}

SandboxClock::HostOffsets SandboxClock::MeasureOffsets() {
  HostOffsets o;
  const int64_t m1 = src_.Host(CLOCK_MONOTONIC);
  const int64_t real = src_.Host(CLOCK_REALTIME);
  const int64_t boot = src_.Host(CLOCK_BOOTTIME);
  const int64_t m2 = src_.Host(CLOCK_MONOTONIC);
  const int64_t mono = m1 + (m2 - m1) / 2;
  o.real_mono = real - mono;
  o.boot_mono = boot - mono;
  // TAI - UTC is a whole number of seconds (37 since 2017, or 0 where the
  // host was never told).
  const int64_t r1 = src_.Host(CLOCK_REALTIME);
  const int64_t tai = src_.Host(CLOCK_TAI);
  const int64_t r2 = src_.Host(CLOCK_REALTIME);
  const int64_t diff = tai - (r1 + (r2 - r1) / 2);
  o.tai_real = (diff + (diff >= 0 ? 500000000 : -500000000)) / 1000000000 * 1000000000;
  return o;
}

void SandboxClock::BeginWriteLocked() {
  husk_vvar* v = vvar();
  __atomic_store_n(&v->seq, v->seq + 1, __ATOMIC_RELAXED);
  // The odd seq is visible before any parameter changes, and before the
  // writer reads the TSC for the new ones.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void SandboxClock::EndWriteLocked() {
  husk_vvar* v = vvar();
  __atomic_store_n(&v->seq, v->seq + 1, __ATOMIC_RELEASE);
}

void SandboxClock::TryCalibrate() {
  if (!mu_.TryLock()) return;  // another thread is at it
  if (calibrating_.load(std::memory_order_relaxed) &&
      src_.Host(CLOCK_MONOTONIC) - last_.mono >= kCalibrationWindowNs) {
    const Sample s = TakeSample();
    const uint64_t mult = MultOf(s.mono - last_.mono, s.tsc - last_.tsc);
    last_ = s;
    const uint64_t diff = mult > last_mult_ ? mult - last_mult_ : last_mult_ - mult;
    if (mult != 0 && last_mult_ != 0 &&
        static_cast<unsigned __int128>(diff) * 1000000 <=
            static_cast<unsigned __int128>(mult) * kAgreePpm) {
      BeginWriteLocked();
      const Sample now = TakeSample();
      PublishLocked(now);
      EndWriteLocked();
      calibrating_ = false;
    } else {
      last_mult_ = mult;
      if (++calibrations_ >= kMaxCalibrations) calibrating_ = false;  // never steady: no TSC
    }
  }
  mu_.Unlock();
}

void SandboxClock::PublishLocked(const Sample& s) {
  husk_vvar* v = vvar();
  const bool first = v->clock_mode != HUSK_VCLOCK_TSC;
  // The long-run rates, since the sandbox started.
  const uint64_t mult = MultOf(s.mono - anchor_.mono, s.tsc - anchor_.tsc);
  const uint64_t raw_mult = MultOf(s.raw - anchor_.raw, s.tsc - anchor_.tsc);
  const uint64_t margin = static_cast<uint64_t>(
      (static_cast<unsigned __int128>(kMarginNs) << kShift) / std::max<uint64_t>(mult, 1));
  const int64_t margin_ns = kMarginNs;
  // Where the host clocks are at the new base, never behind what the old
  // parameters could still have given.
  uint64_t mono = static_cast<uint64_t>(s.mono - mono_shift_.load() + margin_ns);
  uint64_t raw = static_cast<uint64_t>(s.raw - raw_shift_.load() + margin_ns);
  if (!first) {
    const uint64_t end = v->tsc_base + v->max_delta;
    const uint64_t upto = std::min(end, s.tsc + margin);
    mono = std::max(mono, MonoAt(*v, upto));
    raw = std::max(raw, RawAt(*v, upto));
  }
  const HostOffsets o = MeasureOffsets();
  const int64_t real_offset = o.real_mono + mono_shift_.load();
  const int64_t boot_offset = o.boot_mono - (boot_shift_.load() - mono_shift_.load());
  Put(v->tsc_base, s.tsc + margin);
  Put(v->mult, mult);
  Put(v->raw_mult, raw_mult);
  Put(v->mono_ns, mono);
  Put(v->raw_ns, raw);
  Put(v->max_delta, static_cast<uint64_t>((static_cast<unsigned __int128>(kRefreshNs) << kShift) /
                                          std::max<uint64_t>(mult, 1)));
  if (first || std::abs(real_offset - v->real_offset) > kRealSlackNs) {
    Put(v->real_offset, real_offset);
  }
  if (first || boot_offset > v->boot_offset + kBootSlackNs) Put(v->boot_offset, boot_offset);
  Put(v->tai_offset, o.tai_real);
  Put(v->clock_mode, HUSK_VCLOCK_TSC);
}

int64_t SandboxClock::Tick() {
  if (calibrating_.load(std::memory_order_relaxed)) {
    TryCalibrate();
    if (calibrating_.load(std::memory_order_relaxed)) return kCalibrationWindowNs;
  }
  if (!UsesTsc()) return 0;
  Refresh(true);
  return kRefreshNs / 2;
}

void SandboxClock::Refresh(bool half_life) {
  absl::MutexLock l(&mu_);
  husk_vvar* v = vvar();
  const uint64_t now = src_.Tsc();
  if (v->clock_mode != HUSK_VCLOCK_TSC) return;
  // Another thread may have refreshed them already.
  const uint64_t age = half_life ? v->max_delta / 2 : v->max_delta;
  if (now < v->tsc_base || now - v->tsc_base <= age) return;
  BeginWriteLocked();
  const Sample s = TakeSample();
  // A TSC whose rate since the last refresh strays from the one in use is
  // not a clock: back to the host's, from where the TSC clock got to.
  const uint64_t recent = MultOf(s.mono - last_.mono, s.tsc - last_.tsc);
  const uint64_t diff = recent > v->mult ? recent - v->mult : v->mult - recent;
  if (s.mono - last_.mono >= kCheckWindowNs &&
      static_cast<unsigned __int128>(diff) * 1000000 >
          static_cast<unsigned __int128>(v->mult) * kStrayPpm) {
    const uint64_t end = v->tsc_base + v->max_delta;
    mono_shift_ = std::min<int64_t>(mono_shift_, s.mono - static_cast<int64_t>(MonoAt(*v, end)));
    raw_shift_ = std::min<int64_t>(raw_shift_, s.raw - static_cast<int64_t>(RawAt(*v, end)));
    const int64_t boot_at_end = static_cast<int64_t>(MonoAt(*v, end)) + v->boot_offset;
    boot_shift_ = std::min<int64_t>(boot_shift_, src_.Host(CLOCK_BOOTTIME) - boot_at_end);
    Put(v->clock_mode, HUSK_VCLOCK_NONE);
  } else {
    PublishLocked(s);
  }
  last_ = s;
  EndWriteLocked();
}

bool SandboxClock::UsesTsc() {
  return __atomic_load_n(&vvar()->clock_mode, __ATOMIC_RELAXED) == HUSK_VCLOCK_TSC;
}

void SandboxClock::MoveVvar(husk_vvar* page) {
  absl::MutexLock l(&mu_);
  memcpy(page, vvar(), sizeof(husk_vvar));
  vvar_.store(page, std::memory_order_release);
}

void SandboxClock::SetGetcpu(uint32_t mode, uint32_t ncpus) {
  husk_vvar* v = vvar();
  Put(v->ncpus, ncpus);
  Put(v->getcpu_mode, mode);
}

void SandboxClock::GetcpuBySyscall() { Put(vvar()->getcpu_mode, HUSK_GETCPU_SYSCALL); }

}  // namespace husk
