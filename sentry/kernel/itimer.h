// ITIMER_REAL (alarm(2), setitimer(2)): one real-time interval timer per
// process, counting down in wall-clock time and sending SIGALRM when it
// expires. One sentry thread serves every process's timer.
//
// Lock order: Kernel::mu before RealTimers::mu_; the timer thread never
// holds mu_ while it takes Kernel::mu.
#ifndef HUSK_SENTRY_KERNEL_ITIMER_H_
#define HUSK_SENTRY_KERNEL_ITIMER_H_

#include <map>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace husk {

class Kernel;

class RealTimers {
 public:
  struct Setting {
    absl::Duration value = absl::ZeroDuration();     // time left; zero: disarmed
    absl::Duration interval = absl::ZeroDuration();  // reload value
  };

  explicit RealTimers(Kernel& k) : state_(std::make_shared<State>(k)) {}
  ~RealTimers();

  // The timer of process tgid now.
  Setting Get(int tgid);
  // Arms (value > 0) or disarms the timer; returns the previous setting.
  Setting Set(int tgid, Setting s);
  // Forgets the timer of a process that exited.
  void Remove(int tgid) { Set(tgid, Setting{}); }

 private:
  struct Timer {
    absl::Time deadline;
    absl::Duration interval;
  };
  // Shared with the timer thread, which may outlive the kernel object.
  struct State {
    explicit State(Kernel& k) : kernel(&k) {}
    absl::Mutex mu;
    absl::CondVar cv;
    Kernel* kernel ABSL_GUARDED_BY(mu);  // null once the kernel is gone
    std::map<int, Timer> timers ABSL_GUARDED_BY(mu);
    bool thread_started ABSL_GUARDED_BY(mu) = false;
  };
  static void Loop(std::shared_ptr<State> st);

  std::shared_ptr<State> state_;
};

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_ITIMER_H_
