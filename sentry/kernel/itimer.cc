#include "sentry/kernel/itimer.h"

#include <signal.h>

#include <thread>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/time/sandbox_clock.h"

namespace husk {

RealTimers::~RealTimers() {
  absl::MutexLock l(&state_->mu);
  state_->kernel = nullptr;
  state_->timers.clear();
  state_->cv.Signal();
}

RealTimers::Setting RealTimers::Get(int tgid) {
  absl::MutexLock l(&state_->mu);
  auto it = state_->timers.find(tgid);
  if (it == state_->timers.end()) return Setting{};
  // A timer due this instant but not yet fired still reads as armed.
  absl::Duration left = std::max(it->second.deadline - MonotonicNow(), absl::Nanoseconds(1));
  return Setting{left, it->second.interval};
}

RealTimers::Setting RealTimers::Set(int tgid, Setting s) {
  Setting old = Get(tgid);
  absl::MutexLock l(&state_->mu);
  if (s.value <= absl::ZeroDuration()) {
    state_->timers.erase(tgid);
  } else {
    state_->timers[tgid] = Timer{MonotonicNow() + s.value, s.interval};
    if (!state_->thread_started) {
      state_->thread_started = true;
      std::thread(Loop, state_).detach();
    }
  }
  state_->cv.Signal();
  return old;
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): the detached thread's own reference.
void RealTimers::Loop(std::shared_ptr<State> st) {
  for (;;) {
    std::vector<int> due;
    Kernel* k;
    {
      absl::MutexLock l(&st->mu);
      if (st->kernel == nullptr) return;
      absl::Time now = MonotonicNow();
      absl::Time next = absl::InfiniteFuture();
      for (auto it = st->timers.begin(); it != st->timers.end();) {
        Timer& t = it->second;
        if (t.deadline <= now) {
          due.push_back(it->first);
          if (t.interval > absl::ZeroDuration()) {
            // Periods missed while the sandbox was busy collapse into one signal.
            t.deadline += t.interval;
            if (t.deadline <= now) t.deadline = now + t.interval;
          } else {
            it = st->timers.erase(it);
            continue;
          }
        }
        next = std::min(next, t.deadline);
        ++it;
      }
      if (due.empty()) {
        // Deadlines are on the sandbox's clock; the host's sleep only has to
        // get near them (the loop looks again).
        st->cv.WaitWithTimeout(&st->mu, next - now);
        continue;
      }
      k = st->kernel;
    }
    // The kernel outlives every task and lives until the sentry exits.
    absl::MutexLock kl(&k->mu);
    for (int tgid : due) {
      auto task = k->FindTask(tgid);
      if (task != nullptr && !task->tg().zombie) {
        task->kernel().mu.AssertHeld();  // the task's kernel is k
        task->SendProcessSignal(MakeSigInfo(SIGALRM, SI_KERNEL, 0, 0));
      }
    }
  }
}

}  // namespace husk
