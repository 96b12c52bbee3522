#include "sentry/time/sandbox_clock.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace husk {
namespace {

// A host whose true time advances by `cost` with every read; its TSC ticks
// `rate` times per nanosecond of it (changeable, to model a bad TSC).
class FakeClocks : public ClockSource {
 public:
  int64_t now = 5'000'000'000'000;  // the host's CLOCK_MONOTONIC: 5000 s of uptime
  int64_t cost = 25;
  long double rate = 2.9;
  long double tsc = 1e12;
  int64_t boot_extra = 7'000'000'000;                            // suspended 7 s before
  int64_t wall = 1'700'000'000'000'000'000 - 5'000'000'000'000;  // realtime - monotonic

  void Advance(int64_t ns) {
    now += ns;
    tsc += rate * static_cast<long double>(ns);
  }
  uint64_t Tsc() override {
    Advance(cost);
    return static_cast<uint64_t>(tsc);
  }
  int64_t Host(clockid_t id) override {
    Advance(cost);
    switch (id) {
      case CLOCK_MONOTONIC:
        return now;
      case CLOCK_MONOTONIC_RAW:
        return now - now / 100000;  // NTP has the host 10 ppm fast of its oscillator
      case CLOCK_BOOTTIME:
        return now + boot_extra;
      case CLOCK_REALTIME:
        return now + wall;
      case CLOCK_TAI:
        return now + wall + 37'000'000'000;
      default:
        return 0;
    }
  }
};

constexpr int64_t kTick = 4'000'000;

struct Fixture {
  FakeClocks src;
  husk_vvar page{};
  SandboxClock clock{src, &page, true, kTick};
  // Reads with a gap between reads until the TSC clock is in use.
  void Calibrate() {
    for (int i = 0; i < 20 && !clock.UsesTsc(); i++) {
      src.Advance(SandboxClock::kCalibrationWindowNs);
      clock.Now(CLOCK_MONOTONIC);
    }
    ASSERT_TRUE(clock.UsesTsc());
  }
  // The host's CLOCK_MONOTONIC as the sandbox counts it.
  int64_t Expected() { return src.now - start_ + SandboxClock::kBaseNs; }
  int64_t start_ = src.now;
};

TEST(SandboxClockTest, StartsAtTheBaseNotTheHostUptime) {
  Fixture f;
  EXPECT_FALSE(f.clock.UsesTsc());
  const int64_t mono = f.clock.Now(CLOCK_MONOTONIC);
  EXPECT_GE(mono, SandboxClock::kBaseNs);
  EXPECT_LT(mono, SandboxClock::kBaseNs + 10'000);
  EXPECT_NEAR(f.clock.Now(CLOCK_BOOTTIME), SandboxClock::kBaseNs, 10'000);
  EXPECT_NEAR(f.clock.Now(CLOCK_MONOTONIC_RAW), SandboxClock::kBaseNs, 10'000);
  // The wall clock is the host's.
  EXPECT_NEAR(f.clock.Now(CLOCK_REALTIME), f.src.now + f.src.wall, 1000);
  EXPECT_EQ(f.clock.Now(CLOCK_REALTIME_ALARM) / 1000000, (f.src.now + f.src.wall) / 1000000);
  EXPECT_EQ(f.clock.Now(CLOCK_PROCESS_CPUTIME_ID), 0);
}

TEST(SandboxClockTest, CalibratesAndThenReadsTheTsc) {
  Fixture f;
  f.Calibrate();
  EXPECT_EQ(f.page.clock_mode, HUSK_VCLOCK_TSC);
  // Nothing but the TSC is read now: the host clocks' reads would advance
  // the fake by 25 ns each.
  const int64_t before = f.src.now;
  const int64_t mono = f.clock.Now(CLOCK_MONOTONIC);
  EXPECT_EQ(f.src.now - before, f.src.cost);
  EXPECT_NEAR(mono, f.Expected(), 2000);
  EXPECT_NEAR(f.clock.Now(CLOCK_REALTIME), f.src.now + f.src.wall, 2000);
  EXPECT_NEAR(f.clock.Now(CLOCK_TAI) - f.clock.Now(CLOCK_REALTIME), 37'000'000'000, 1000);
  // BOOTTIME counts the sandbox's own life: the host's earlier suspend is
  // not in it.
  EXPECT_NEAR(f.clock.Now(CLOCK_BOOTTIME), f.Expected(), 2000);
  const int64_t coarse = f.clock.Now(CLOCK_MONOTONIC_COARSE);
  EXPECT_EQ(coarse % kTick, 0);
  EXPECT_LE(coarse, f.clock.Now(CLOCK_MONOTONIC));
  EXPECT_GT(coarse, f.clock.Now(CLOCK_MONOTONIC) - kTick);
  EXPECT_EQ(f.clock.Now(CLOCK_REALTIME_COARSE) % kTick, 0);
}

TEST(SandboxClockTest, VdsoArithmeticMatchesTheSentry) {
  Fixture f;
  f.Calibrate();
  for (clockid_t id : {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
                       CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME, CLOCK_TAI}) {
    husk_vvar p;
    husk_vvar_copy(&f.page, &p);
    const uint64_t t = f.src.Tsc();
    int64_t ns = 0;
    ASSERT_EQ(husk_vclock_ns(&p, id, t, &ns), 0) << id;
    const int64_t sentry = f.clock.Now(id);
    EXPECT_LE(ns, sentry) << id;
    EXPECT_GE(ns + kTick, sentry) << id;
  }
  husk_vvar p = f.page;
  int64_t ns;
  EXPECT_EQ(husk_vclock_ns(&p, CLOCK_PROCESS_CPUTIME_ID, p.tsc_base, &ns), -1);
  EXPECT_EQ(husk_vclock_ns(&p, CLOCK_REALTIME_ALARM, p.tsc_base, &ns), -1);
  // A TSC behind the base reads as the base; one past max_delta is stale.
  ASSERT_EQ(husk_vclock_ns(&p, CLOCK_MONOTONIC, p.tsc_base - 1000, &ns), 0);
  EXPECT_EQ(static_cast<uint64_t>(ns), p.mono_ns);
  EXPECT_EQ(husk_vclock_ns(&p, CLOCK_MONOTONIC, p.tsc_base + p.max_delta + 1, &ns), -1);
  p.clock_mode = HUSK_VCLOCK_NONE;
  EXPECT_EQ(husk_vclock_ns(&p, CLOCK_MONOTONIC, p.tsc_base, &ns), -1);
}

TEST(SandboxClockTest, MultUsesTheFullProduct) {
  husk_vvar p{};
  p.clock_mode = HUSK_VCLOCK_TSC;
  p.shift = 32;
  p.mult = uint64_t{3} << 32;  // 3 ns per tick
  p.max_delta = UINT64_MAX >> 1;
  p.mono_ns = 100;
  p.coarse_ns = 1;
  int64_t ns;
  // (2^40 ticks * 3 << 32) overflows 64 bits.
  ASSERT_EQ(husk_vclock_ns(&p, CLOCK_MONOTONIC, uint64_t{1} << 40, &ns), 0);
  EXPECT_EQ(ns, 100 + 3 * (int64_t{1} << 40));
}

TEST(SandboxClockTest, RefreshesStaleParametersWithoutGoingBack) {
  for (long double drift : {1.0001L, 0.9999L, 1.0L}) {
    Fixture f;
    f.Calibrate();
    uint64_t seq = f.page.seq;
    int64_t last = 0;
    // The TSC runs 100 ppm off its calibration: the clock drifts between
    // refreshes and is put back on the host's time at each.
    f.src.rate *= drift;
    for (int i = 0; i < 5000; i++) {
      f.src.Advance(1'000'000);
      const int64_t now = f.clock.Now(CLOCK_MONOTONIC);
      ASSERT_GE(now, last) << i;
      last = now;
    }
    EXPECT_GT(f.page.seq, seq + 4) << "refreshed every second";
    EXPECT_TRUE(f.clock.UsesTsc());
    EXPECT_NEAR(f.clock.Now(CLOCK_MONOTONIC), f.Expected(), 200'000);
    EXPECT_NEAR(f.clock.Now(CLOCK_REALTIME), f.src.now + f.src.wall, 200'000);
  }
}

TEST(SandboxClockTest, TicksCalibrateAndKeepTheParametersFresh) {
  Fixture f;
  // The timer thread's ticks calibrate the TSC with no reader at all.
  for (int i = 0; i < 20 && !f.clock.UsesTsc(); i++) {
    const int64_t next = f.clock.Tick();
    ASSERT_GT(next, 0);
    f.src.Advance(next);
  }
  ASSERT_TRUE(f.clock.UsesTsc());
  int64_t last = 0;
  for (int i = 0; i < 20; i++) {
    const int64_t next = f.clock.Tick();
    ASSERT_EQ(next, SandboxClock::kRefreshNs / 2);
    // A reader up to the next tick finds fresh parameters: the vDSO needs
    // no syscall.
    for (int64_t t = 0; t < next; t += next / 4) {
      f.src.Advance(next / 4);
      husk_vvar p;
      husk_vvar_copy(&f.page, &p);
      int64_t ns;
      ASSERT_EQ(husk_vclock_ns(&p, CLOCK_MONOTONIC, f.src.Tsc(), &ns), 0) << i;
      ASSERT_GE(ns, last);
      last = ns;
      EXPECT_NEAR(ns, f.Expected(), 2000);
    }
  }
}

TEST(SandboxClockTest, NoTicksWithoutATscClock) {
  FakeClocks src;
  husk_vvar page{};
  SandboxClock clock(src, &page, false, kTick);
  EXPECT_EQ(clock.Tick(), 0);
}

TEST(SandboxClockTest, IdleSandboxCatchesUpInOneStep) {
  Fixture f;
  f.Calibrate();
  const int64_t before = f.clock.Now(CLOCK_MONOTONIC);
  f.src.Advance(3600'000'000'000);  // an hour with no reader
  const int64_t after = f.clock.Now(CLOCK_MONOTONIC);
  EXPECT_NEAR(after - before, 3600'000'000'000, 10'000);
  EXPECT_NEAR(after, f.Expected(), 5000);
}

TEST(SandboxClockTest, HostSuspendAdvancesBoottimeOnly) {
  Fixture f;
  f.Calibrate();
  f.src.boot_extra += 60'000'000'000;
  f.src.Advance(2 * SandboxClock::kRefreshNs);
  const int64_t mono = f.clock.Now(CLOCK_MONOTONIC);
  EXPECT_NEAR(f.clock.Now(CLOCK_BOOTTIME) - mono, 60'000'000'000, 10'000);
}

TEST(SandboxClockTest, WallClockStepsFollowTheHost) {
  Fixture f;
  f.Calibrate();
  f.src.wall -= 3'000'000'000;  // the host's clock was set back 3 s
  f.src.Advance(2 * SandboxClock::kRefreshNs);
  EXPECT_NEAR(f.clock.Now(CLOCK_REALTIME), f.src.now + f.src.wall, 10'000);
}

TEST(SandboxClockTest, StrayingTscIsGivenUpMonotonically) {
  Fixture f;
  f.Calibrate();
  int64_t last = f.clock.Now(CLOCK_MONOTONIC);
  f.src.rate *= 1.05L;  // 5% fast: not a clock
  for (int i = 0; i < 3000 && f.clock.UsesTsc(); i++) {
    f.src.Advance(1'000'000);
    const int64_t now = f.clock.Now(CLOCK_MONOTONIC);
    ASSERT_GE(now, last);
    last = now;
  }
  EXPECT_FALSE(f.clock.UsesTsc());
  for (int i = 0; i < 100; i++) {
    f.src.Advance(1'000'000);
    const int64_t now = f.clock.Now(CLOCK_MONOTONIC);
    ASSERT_GE(now, last);
    last = now;
  }
}

TEST(SandboxClockTest, UnsteadyTscIsNeverUsed) {
  Fixture f;
  for (int i = 0; i < 2 * SandboxClock::kMaxCalibrations; i++) {
    f.src.rate = (i % 2) ? 2.9L : 3.1L;
    f.src.Advance(SandboxClock::kCalibrationWindowNs);
    f.clock.Now(CLOCK_MONOTONIC);
    ASSERT_FALSE(f.clock.UsesTsc());
  }
  EXPECT_NEAR(f.clock.Now(CLOCK_MONOTONIC), f.Expected(), 1000);
}

TEST(SandboxClockTest, NoTscMeansHostClocks) {
  FakeClocks src;
  husk_vvar page{};
  SandboxClock clock(src, &page, false, kTick);
  for (int i = 0; i < 10; i++) {
    src.Advance(SandboxClock::kCalibrationWindowNs);
    clock.Now(CLOCK_MONOTONIC);
  }
  EXPECT_FALSE(clock.UsesTsc());
  EXPECT_EQ(page.clock_mode, HUSK_VCLOCK_NONE);
}

TEST(SandboxClockTest, MoveVvarKeepsTheParameters) {
  Fixture f;
  f.Calibrate();
  husk_vvar moved{};
  const int64_t before = f.clock.Now(CLOCK_MONOTONIC);
  f.clock.MoveVvar(&moved);
  EXPECT_EQ(f.clock.vvar(), &moved);
  EXPECT_EQ(moved.mult, f.page.mult);
  EXPECT_GE(f.clock.Now(CLOCK_MONOTONIC), before);
  f.clock.SetGetcpu(HUSK_GETCPU_RDPID, 2);
  EXPECT_EQ(moved.getcpu_mode, HUSK_GETCPU_RDPID);
  EXPECT_EQ(moved.ncpus, 2u);
  f.clock.GetcpuBySyscall();
  EXPECT_EQ(moved.getcpu_mode, HUSK_GETCPU_SYSCALL);
}

TEST(SandboxClockTest, TheSentrysClockRuns) {
  SandboxClock& c = SandboxClock::Get();
  const int64_t a = c.Now(CLOCK_MONOTONIC);
  const int64_t b = c.Now(CLOCK_MONOTONIC);
  EXPECT_GE(a, SandboxClock::kBaseNs);
  EXPECT_GE(b, a);
  timespec real{};
  clock_gettime(CLOCK_REALTIME, &real);
  EXPECT_NEAR(static_cast<double>(c.Now(CLOCK_REALTIME)) / 1e9,
              static_cast<double>(real.tv_sec) + real.tv_nsec / 1e9, 0.01);
}

}  // namespace
}  // namespace husk
