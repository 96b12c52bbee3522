// The sandbox's clocks: CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME and
// their variants as the application sees them, by every path (the
// clock_gettime syscall, husk's vDSO, absolute sleeps and timer deadlines,
// /proc/uptime, sysinfo, process start times).
//
// CLOCK_MONOTONIC and CLOCK_BOOTTIME count from the sandbox's start, plus
// kBaseNs, as a fresh machine's would (they never reveal the host's uptime,
// and are never near zero: programs that take "0" for "never" or subtract
// a minute from now keep working). CLOCK_MONOTONIC_RAW starts with them.
// CLOCK_REALTIME and CLOCK_TAI are the host's.
//
// The time is read from the TSC once it is calibrated against the host's
// CLOCK_MONOTONIC (the parameters live in the vDSO's data page, vvar.h, so
// the sentry and the vDSO compute the same values); until then, or if the
// TSC is not invariant (cpuid) or its calibration disagrees with itself, it
// is the host's clock minus an offset, and the vDSO asks the sentry.
//
// The parameters hold for kRefreshNs past their base. The sentry's timer
// thread calls Tick every half of that, which re-bases them on the host
// clock: never backwards (a clock that ran ahead holds still until the host
// catches up; one that fell behind steps forward), at the long-run rate
// measured since the sandbox started. Should the ticks stall, the first
// reader past kRefreshNs (a vDSO call becomes a syscall) re-bases them.
//
// Lock order: SandboxClock::mu_ is a leaf (readers take it only to refresh).
#ifndef HUSK_SENTRY_TIME_SANDBOX_CLOCK_H_
#define HUSK_SENTRY_TIME_SANDBOX_CLOCK_H_

#include <time.h>

#include <atomic>
#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sentry/time/vvar.h"

namespace husk {

// Where a SandboxClock reads the TSC and the host's clocks (a fake in tests).
class ClockSource {
 public:
  virtual ~ClockSource() = default;
  // The TSC, ordered after earlier instructions.
  virtual uint64_t Tsc() = 0;
  // The host clock's time in nanoseconds.
  virtual int64_t Host(clockid_t id) = 0;
};

class SandboxClock {
 public:
  // CLOCK_MONOTONIC and CLOCK_BOOTTIME when the sandbox starts: 100 s.
  static constexpr int64_t kBaseNs = 100'000'000'000;
  // How long the TSC parameters hold before a reader re-bases them.
  static constexpr int64_t kRefreshNs = 1'000'000'000;
  // Calibration: TSC rates measured over windows at least this long must agree
  // within kAgreePpm, twice in a row, before the TSC is used.
  static constexpr int64_t kCalibrationWindowNs = 5'000'000;
  static constexpr int64_t kAgreePpm = 50;
  static constexpr int kMaxCalibrations = 50;
  // Fixed-point fraction bits of mult.
  static constexpr uint32_t kShift = 32;

  // The sentry's clock, which starts (kBaseNs) on the first call. Its data
  // page is private to the sentry until MoveVvar puts it in the memory file.
  static SandboxClock& Get();

  // A clock on `source`, publishing into `vvar` (zeroed, at least
  // sizeof(husk_vvar)); tsc_usable: whether the TSC may be calibrated at
  // all. `tick_ns`: the coarse clocks' resolution.
  SandboxClock(ClockSource& source, husk_vvar* vvar, bool tsc_usable, int64_t tick_ns);
  SandboxClock(const SandboxClock&) = delete;
  SandboxClock& operator=(const SandboxClock&) = delete;

  // Whether the sandbox has this clock (the host-kept ones: REALTIME,
  // MONOTONIC, their RAW and COARSE variants, BOOTTIME, TAI, the ALARM ones).
  static bool Has(clockid_t id);
  // The clock's time now in nanoseconds (0 for a clock it does not have).
  int64_t Now(clockid_t id);
  // Keeps the clock going without waiting for a reader: a calibration step
  // while the TSC is being calibrated, then a re-base of the parameters
  // once half their life is gone. Returns in how many nanoseconds to call
  // it again, or 0 if there is nothing more to do (no TSC clock).
  int64_t Tick();
  // The coarse clocks' resolution (the host's tick).
  int64_t tick_ns() const { return tick_ns_; }

  // Copies the data page to `page` and publishes there from now on (boot
  // calls it once, before any application code runs).
  void MoveVvar(husk_vvar* page);
  husk_vvar* vvar() const { return vvar_.load(std::memory_order_acquire); }
  // Whether the TSC clock is in use (the vDSO needs no syscall).
  bool UsesTsc();
  // getcpu in the vDSO: how it finds the CPU (HUSK_GETCPU_*) and how many
  // CPUs the sandbox has.
  void SetGetcpu(uint32_t mode, uint32_t ncpus);
  // From now on the vDSO's getcpu asks the sentry (an application narrowed
  // a thread's affinity, which only the syscall knows of).
  void GetcpuBySyscall();

 private:
  struct Sample {
    uint64_t tsc = 0;
    int64_t mono = 0;  // host CLOCK_MONOTONIC at tsc
    int64_t raw = 0;   // host CLOCK_MONOTONIC_RAW at tsc
  };
  // A TSC reading taken just after the host clocks were read (the
  // narrowest of a few tries).
  Sample TakeSample();
  // The host's time on `id` less the sandbox's offset from it (no TSC).
  int64_t FromHost(clockid_t id);
  // Host CLOCK_REALTIME - CLOCK_MONOTONIC, CLOCK_BOOTTIME - CLOCK_MONOTONIC
  // and CLOCK_TAI - CLOCK_REALTIME, each read between two of the other.
  struct HostOffsets {
    int64_t real_mono = 0, boot_mono = 0, tai_real = 0;
  };
  HostOffsets MeasureOffsets();
  // With no TSC clock yet: one calibration step, if a window has passed.
  void TryCalibrate();
  // Re-bases the parameters (or gives the TSC up) once half their life
  // (half_life), or all of it (they are stale), has passed.
  void Refresh(bool half_life);
  // Writes the parameters for the TSC clock, based a little past s.tsc on
  // the host's time, but never behind what the old ones could give.
  void PublishLocked(const Sample& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BeginWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // (a - b) << kShift / (ta - tb): nanoseconds per tick, fixed point.
  static uint64_t MultOf(int64_t ns, uint64_t ticks);

  ClockSource& src_;
  std::atomic<husk_vvar*> vvar_;
  const int64_t tick_ns_;
  // Sandbox clock = host clock - shift, for the clocks read from the host
  // (clock_mode NONE); moved back only if the TSC clock is given up on.
  std::atomic<int64_t> mono_shift_, boot_shift_, raw_shift_;
  std::atomic<bool> calibrating_;

  absl::Mutex mu_;
  Sample anchor_ ABSL_GUARDED_BY(mu_);  // the first sample: the long-run rate's start
  Sample last_ ABSL_GUARDED_BY(mu_);    // the latest calibration sample
  uint64_t last_mult_ ABSL_GUARDED_BY(mu_) = 0;
  int calibrations_ ABSL_GUARDED_BY(mu_) = 0;
};

// The sandbox's time on `id` (SandboxClock::Get().Now), in nanoseconds.
inline int64_t SandboxNow(clockid_t id) { return SandboxClock::Get().Now(id); }
inline timespec SandboxTimespec(clockid_t id) {
  const int64_t ns = SandboxNow(id);
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}
// The sandbox's CLOCK_MONOTONIC as an absl::Time (that long after the Unix
// epoch): what the sentry's deadlines are measured in (Task::Block,
// Waiter::Wait), so that a wait that times out never ends before the
// application's own clock says it may.
inline absl::Time MonotonicNow() {
  return absl::UnixEpoch() + absl::Nanoseconds(SandboxNow(CLOCK_MONOTONIC));
}

}  // namespace husk

#endif  // HUSK_SENTRY_TIME_SANDBOX_CLOCK_H_
