// Waiting for files: what poll(2), select(2) and epoll_wait(2) share. A
// timeout argument becomes a Deadline; WaitForEvents runs the caller's scan
// of readiness and, while it finds nothing, blocks the task with its waiter
// on every watched file's event queue (and the host descriptors behind host
// files in the same host poll), re-scanning after every wake-up.
#ifndef HUSK_SENTRY_SYSCALLS_POLL_WAIT_H_
#define HUSK_SENTRY_SYSCALLS_POLL_WAIT_H_

#include <errno.h>
#include <poll.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "base/result.h"
#include "sentry/kernel/kernel.h"
#include "sentry/time/sandbox_clock.h"
#include "sentry/vfs/vfs.h"
#include "sentry/vfs/waiter.h"

namespace husk::syscalls {

// When a wait ends (on the sandbox's CLOCK_MONOTONIC). A zero timeout checks
// once and never blocks.
struct Deadline {
  bool zero = false;
  absl::Time at = absl::InfiniteFuture();

  static Deadline Forever() { return Deadline{}; }
  static Deadline After(absl::Duration d) {
    if (d <= absl::ZeroDuration()) return Deadline{true, MonotonicNow()};
    return Deadline{false, MonotonicNow() + d};
  }
  // The time left, never negative (what select(2) writes back).
  absl::Duration Left() const {
    if (zero) return absl::ZeroDuration();
    return std::max(at - MonotonicNow(), absl::ZeroDuration());
  }
};

// One blocking wait's registrations of the task's waiter.
class WaitSet {
 public:
  explicit WaitSet(Task& t) : t_(t) {}
  WaitSet(const WaitSet&) = delete;
  WaitSet& operator=(const WaitSet&) = delete;

  // Wakes the task when f's readiness for `events` (or POLLERR/POLLHUP) may
  // have changed: through its event queue, its host descriptor, or, for an
  // epoll instance, the host descriptors of the files it watches.
  // (Defined in sys_poll.cc.)
  void Add(vfs::File& f, uint32_t events);
  std::vector<pollfd>* host() { return &host_; }

 private:
  Task& t_;
  std::vector<vfs::FileRef> keep_;  // files whose host descriptors are in host_
  std::deque<ScopedWait> waits_;
  std::vector<pollfd> host_;
};

// Who wins when the deadline has passed with a signal pending and nothing
// ready: poll and select report the signal (do_poll, do_select),
// epoll_wait reports the timeout (ep_poll).
enum class SignalVsTimeout { kSignalWins, kTimeoutWins };

// Runs scan() (returning how many files are ready, or an error) until it
// finds some, the deadline passes (0), or a signal is pending (EINTR; the
// caller turns it into its restart errno). A scan that finds events wins
// over a pending signal, as in Linux. reg(WaitSet&) registers the waits
// before the first sleep; the scan after registering catches changes that
// raced with it.
template <typename Scan, typename Register>
Result<int> WaitForEvents(Task& t, const Deadline& deadline, SignalVsTimeout order, Scan scan,
                          Register reg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  WaitSet waits(t);
  bool registered = false;
  bool timed_out = deadline.zero;
  for (;;) {
    ASSIGN_OR_RETURN(int n, scan());
    if (n > 0) return n;
    if (order == SignalVsTimeout::kSignalWins && t.SignalPending()) return Errno{EINTR};
    if (timed_out) return 0;
    if (t.SignalPending()) return Errno{EINTR};
    if (!registered) {
      // Earlier notifications are stale: the scan below sees their effect.
      t.waiter.Clear();
      reg(waits);
      registered = true;
      continue;
    }
    Status s = t.Block(deadline.at, waits.host());
    if (!s.ok() && s.error() == ETIMEDOUT) timed_out = true;
    // On EINTR the loop scans once more: events found now still win.
  }
}

// poll_select_set_timeout: a negative or unnormalized time is EINVAL.
Result<Deadline> DeadlineFromTimespec(int64_t sec, int64_t nsec);
// A struct timespec timeout argument (copied in); null waits forever.
Result<Deadline> TimespecDeadline(Task& t, uintptr_t addr);

// set_user_sigmask: ppoll, pselect6 and epoll_pwait run with the given mask
// in place of the caller's (SIGKILL and SIGSTOP stay unblocked); no mask
// leaves the caller's, and a mask of the wrong size is EINVAL.
Result<std::optional<uint64_t>> CopyInSigmask(Task& t, uintptr_t addr, size_t size);

// Runs call() with the temporary mask in place of the caller's. Like
// Linux's restore_saved_sigmask_unless, a call that ends with
// `interrupted` (ERESTARTNOHAND for ppoll and pselect6, EINTR for
// epoll_pwait) keeps the temporary mask until the signal is delivered (the
// handler's frame saves the caller's mask, which sigreturn puts back);
// otherwise the caller's mask returns at once.
template <typename Call>
Result<long> WithSigmask(Task& t, std::optional<uint64_t> mask, int interrupted, Call call) {
  if (!mask.has_value()) return call();
  uint64_t saved = t.sigmask;
  t.sigmask = *mask;
  Result<long> r = call();
  if (!r.ok() && r.error() == interrupted) {
    t.SetSavedSigmask(saved);
  } else {
    t.sigmask = saved;
  }
  return r;
}

}  // namespace husk::syscalls

#endif  // HUSK_SENTRY_SYSCALLS_POLL_WAIT_H_
