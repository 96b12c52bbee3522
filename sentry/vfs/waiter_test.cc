// Waiter and WaitQueue: masks, entries other than waiters, removal, and a
// queue that dies with entries still on it.
#include "sentry/vfs/waiter.h"

#include <poll.h>

#include <thread>

#include "gtest/gtest.h"
#include "sentry/time/sandbox_clock.h"

namespace husk {
namespace {

// Records what it hears.
class Recorder : public WaitEntry {
 public:
  void OnEvents(uint32_t events) override {
    heard |= events;
    calls++;
  }
  void OnQueueGone() override { gone = true; }

  uint32_t heard = 0;
  int calls = 0;
  bool gone = false;
};

TEST(WaiterTest, ANotificationBeforeTheWaitIsNotLost) {
  Waiter w;
  w.Notify();
  EXPECT_TRUE(w.Wait(MonotonicNow() + absl::Seconds(10)));
  // Consumed: the next wait times out.
  EXPECT_FALSE(w.Wait(MonotonicNow() + absl::Milliseconds(10)));
}

TEST(WaiterTest, ClearForgetsNotifications) {
  Waiter w;
  w.Notify();
  w.Clear();
  EXPECT_FALSE(w.Wait(MonotonicNow() + absl::Milliseconds(10)));
}

TEST(WaitQueueTest, OnlyEntriesWhoseMaskMatchesHear) {
  WaitQueue q;
  Recorder in, out;
  q.Add(&in, POLLIN);
  q.Add(&out, POLLOUT);
  q.Notify(POLLIN | POLLRDNORM);
  EXPECT_EQ(in.heard, static_cast<uint32_t>(POLLIN | POLLRDNORM));
  EXPECT_EQ(out.calls, 0);
  q.Notify(~0U);
  EXPECT_EQ(in.calls, 2);
  EXPECT_EQ(out.calls, 1);
  q.Remove(&in);
  q.Remove(&out);
}

TEST(WaitQueueTest, RemovedEntriesHearNothing) {
  WaitQueue q;
  Recorder r;
  q.Add(&r, POLLIN);
  q.Remove(&r);
  q.Notify(POLLIN);
  EXPECT_EQ(r.calls, 0);
  // Removing what is not there is harmless.
  q.Remove(&r);
}

TEST(WaitQueueTest, AWaiterOnAQueueIsWoken) {
  WaitQueue q;
  Waiter w;
  {
    ScopedWait sw(&q, &w, POLLIN);
    std::thread t([&] { q.Notify(POLLIN); });
    EXPECT_TRUE(w.Wait(MonotonicNow() + absl::Seconds(10)));
    t.join();
  }
  q.Notify(POLLIN);
  EXPECT_FALSE(w.Wait(MonotonicNow() + absl::Milliseconds(10)));
}

TEST(WaitQueueTest, ADyingQueueTellsItsEntries) {
  Recorder stays, leaves;
  {
    WaitQueue q;
    q.Add(&stays, POLLIN);
    q.Add(&leaves, POLLIN);
    q.Remove(&leaves);
  }
  EXPECT_TRUE(stays.gone);
  EXPECT_FALSE(leaves.gone);
}

// An entry may notify another queue, whose entries may notify the first:
// queue locks are not held while entries hear events.
class Relay : public WaitEntry {
 public:
  explicit Relay(WaitQueue* to) : to_(to) {}
  void OnEvents(uint32_t events) override {
    if (!busy_) {
      busy_ = true;
      to_->Notify(events);
      busy_ = false;
    }
  }

 private:
  WaitQueue* to_;
  bool busy_ = false;
};

TEST(WaitQueueTest, EntriesMayNotifyOtherQueuesBothWays) {
  WaitQueue a, b;
  Relay a_to_b(&b), b_to_a(&a);
  Recorder r;
  a.Add(&a_to_b, ~0U);
  b.Add(&b_to_a, ~0U);
  b.Add(&r, POLLIN);
  a.Notify(POLLIN);  // relayed to b once
  EXPECT_EQ(r.calls, 1);
  b.Notify(POLLIN);  // heard directly, and again relayed back through a
  EXPECT_EQ(r.calls, 3);
  a.Remove(&a_to_b);
  b.Remove(&b_to_a);
  b.Remove(&r);
}

}  // namespace
}  // namespace husk
