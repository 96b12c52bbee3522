#include "sentry/kernel/eventfd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>

#include <cstring>

#include "absl/synchronization/mutex.h"
#include "sentry/kernel/anon.h"
#include "sentry/kernel/kernel.h"

namespace husk::eventfd {
namespace {

constexpr uint64_t kMax = ~uint64_t{0};  // ULLONG_MAX: never reached by writes

class EventFile : public anon::AnonFile {
 public:
  EventFile(uint64_t count, int flags)
      : AnonFile(O_RDWR | (flags & O_NONBLOCK), "[eventfd]"),
        count_(count),
        semaphore_((flags & EFD_SEMAPHORE) != 0) {}

  // eventfd_read: the counter (or 1) as 8 bytes in host order.
  Result<size_t> Read(char* buf, size_t n) override {
    if (n < sizeof(uint64_t)) return Errno{EINVAL};
    uint64_t value = 0;
    TRY(Wait(POLLIN, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (count_ == 0) return false;
      value = semaphore_ ? 1 : count_;
      count_ -= value;
      queue_.Notify(POLLOUT);
      return true;
    }));
    memcpy(buf, &value, sizeof(value));
    return sizeof(value);
  }

  // eventfd_write: adds the 8-byte value; ULLONG_MAX itself is EINVAL. Any
  // other length is EINVAL since Linux 6.9 (earlier ones took the first 8
  // bytes of a longer buffer).
  Result<size_t> Write(const char* buf, size_t n) override {
    if (n != sizeof(uint64_t)) return Errno{EINVAL};
    uint64_t value;
    memcpy(&value, buf, sizeof(value));
    if (value == kMax) return Errno{EINVAL};
    TRY(Wait(POLLOUT, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (kMax - count_ <= value) return false;
      count_ += value;
      // Linux wakes readers even for a write of 0 (an edge for EPOLLET).
      queue_.Notify(POLLIN);
      return true;
    }));
    return sizeof(value);
  }

  // eventfd_poll reports only POLLIN, POLLOUT and POLLERR (no RDNORM/WRNORM).
  uint32_t Readiness(uint32_t mask) override {
    absl::MutexLock l(&mu_);
    uint32_t ready = 0;
    if (count_ > 0) ready |= POLLIN;
    if (count_ == kMax) ready |= POLLERR;
    if (count_ < kMax - 1) ready |= POLLOUT;
    return ready & (mask | POLLERR | POLLHUP);
  }
  WaitQueue* EventQueue() override { return &queue_; }

 private:
  // Runs step under the lock until it succeeds; meanwhile fails with EAGAIN
  // under O_NONBLOCK, or blocks for `event`. A signal ends the wait with
  // ERESTARTSYS (read and write restart under SA_RESTART).
  template <typename Step>
  Status Wait(uint32_t event, Step step) {
    Task* t = Kernel::Current();
    for (;;) {
      {
        absl::MutexLock l(&mu_);
        if (step()) return Ok();
        if ((flags() & O_NONBLOCK) || t == nullptr) return Errno{EAGAIN};
        // Registered under the lock: a change after the check wakes us.
        queue_.Add(&t->waiter, event);
      }
      // Reads and writes run inside a syscall, under the big kernel lock.
      t->kernel().mu.AssertHeld();
      Status s = t->Block();
      queue_.Remove(&t->waiter);
      if (!s.ok()) return Errno{kERestartSys};
    }
  }

  absl::Mutex mu_;
  uint64_t count_ ABSL_GUARDED_BY(mu_);
  const bool semaphore_;
  WaitQueue queue_;
};

}  // namespace

vfs::FileRef New(uint64_t initval, int flags) {
  return std::make_shared<EventFile>(initval, flags);
}

}  // namespace husk::eventfd
