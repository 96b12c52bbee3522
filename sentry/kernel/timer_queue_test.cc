#include "sentry/kernel/timer_queue.h"

#include <time.h>

#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sentry/kernel/clocks.h"

namespace husk {
namespace {

constexpr int64_t kMs = 1000000;

// Records each call with the time its clock read then.
class Recorder : public Alarm {
 public:
  explicit Recorder(clockid_t clock) : clock_(clock) {}
  void Expire(uint64_t token) override {
    absl::MutexLock l(&mu_);
    calls_.push_back(Call{token, SandboxNow(clock_)});
  }
  struct Call {
    uint64_t token;
    int64_t at;
  };
  // Waits up to 10 s for n calls.
  std::vector<Call> WaitFor(size_t n) {
    absl::MutexLock l(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return calls_;
  }

 private:
  const clockid_t clock_;
  absl::Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

class TimerQueueTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(TimerQueue::Get().Start().ok()); }
};

TEST_F(TimerQueueTest, CallsBackNeverEarlyOnTheAlarmsClock) {
  for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME}) {
    auto r = std::make_shared<Recorder>(clock);
    const int64_t when = SandboxNow(clock) + 20 * kMs;
    TimerQueue::Get().Arm(*r, clock, when, 7);
    auto calls = r->WaitFor(1);
    ASSERT_EQ(calls.size(), 1u) << "clock " << clock;
    EXPECT_EQ(calls[0].token, 7u);
    EXPECT_GE(calls[0].at, when);
  }
}

TEST_F(TimerQueueTest, ArmingAgainReplacesAndDisarmForgets) {
  auto r = std::make_shared<Recorder>(CLOCK_MONOTONIC);
  const int64_t now = SandboxNow(CLOCK_MONOTONIC);
  TimerQueue::Get().Arm(*r, CLOCK_MONOTONIC, now + 10 * kMs, 1);
  TimerQueue::Get().Arm(*r, CLOCK_MONOTONIC, now + 30 * kMs, 2);
  auto calls = r->WaitFor(1);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].token, 2u);
  EXPECT_GE(calls[0].at, now + 30 * kMs);

  auto d = std::make_shared<Recorder>(CLOCK_MONOTONIC);
  const int64_t later = SandboxNow(CLOCK_MONOTONIC);
  TimerQueue::Get().Arm(*d, CLOCK_MONOTONIC, later + 20 * kMs, 3);
  TimerQueue::Get().Disarm(*d);
  // A later alarm's call orders the check: the disarmed one was due before.
  auto last = std::make_shared<Recorder>(CLOCK_MONOTONIC);
  TimerQueue::Get().Arm(*last, CLOCK_MONOTONIC, later + 40 * kMs, 4);
  ASSERT_EQ(last->WaitFor(1).size(), 1u);
  EXPECT_TRUE(d->WaitFor(0).empty());
}

TEST_F(TimerQueueTest, EarliestFirstAndDestroyedAlarmsAreSkipped) {
  const int64_t now = SandboxNow(CLOCK_MONOTONIC);
  std::vector<std::shared_ptr<Recorder>> rs;
  for (int i = 0; i < 5; ++i) {
    rs.push_back(std::make_shared<Recorder>(CLOCK_MONOTONIC));
    TimerQueue::Get().Arm(*rs.back(), CLOCK_MONOTONIC, now + (5 - i) * 5 * kMs, i);
  }
  rs[2].reset();  // destroyed while armed
  for (int i : {0, 1, 3, 4}) {
    auto calls = rs[i]->WaitFor(1);
    ASSERT_EQ(calls.size(), 1u) << i;
    EXPECT_GE(calls[0].at, now + (5 - i) * 5 * kMs);
  }
  EXPECT_LE(rs[4]->WaitFor(1)[0].at, rs[0]->WaitFor(1)[0].at);
}

}  // namespace
}  // namespace husk
