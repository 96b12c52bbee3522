// signalfd(2): a file from which a task reads its own pending signals. A
// read dequeues the pending signals in the file's mask of the task that
// reads (not of the one that made the file: a forked child reads its own),
// as many 128-byte struct signalfd_siginfo as fit, blocking while there are
// none (EAGAIN under O_NONBLOCK). The file is readable while a signal in
// its mask is pending for the task that polls it. SIGKILL and SIGSTOP are
// never in a mask.
//
// Wake-ups: Task::SendSignal calls NotifySignal, which wakes the pollers of
// every signalfd whose mask holds the signal, whoever they poll for; each
// re-checks its own task's pending set (Linux wakes the sighand's queue).
//
// Locking: the registry's mutex is a leaf above the files' WaitQueues;
// reads and NotifySignal run under the big kernel lock.
#ifndef HUSK_SENTRY_KERNEL_SIGNALFD_H_
#define HUSK_SENTRY_KERNEL_SIGNALFD_H_

#include <signal.h>
#include <sys/signalfd.h>

#include <atomic>
#include <cstdint>

#include "sentry/kernel/anon.h"
#include "sentry/vfs/waiter.h"

namespace husk {
class Task;
}

namespace husk::signalfd {

class SignalFile : public anon::AnonFile {
 public:
  // mask: bit sig-1 for each signal; flags: O_NONBLOCK.
  SignalFile(uint64_t mask, int flags);
  ~SignalFile() override;

  // signalfd(2) on an existing signalfd: replaces the mask.
  void SetMask(uint64_t mask);
  uint64_t mask() const { return mask_.load(); }

  Result<size_t> Read(char* buf, size_t n) override;
  uint32_t Readiness(uint32_t mask) override;
  WaitQueue* EventQueue() override { return &queue_; }

  // Wakes this file's pollers if its mask holds sig.
  void Notify(int sig);

 private:
  std::atomic<uint64_t> mask_;
  WaitQueue queue_;
};

// The signalfd behind f, or null.
SignalFile* AsSignalFile(vfs::File& f);

// A signal was queued for t (Task::SendSignal).
void NotifySignal(Task& t, int sig);

// The struct signalfd_siginfo a read returns for info: the fields that
// info's layout (Linux's siginfo_layout) carries, zeros elsewhere.
struct signalfd_siginfo ToSignalfdSiginfo(const siginfo_t& info);

}  // namespace husk::signalfd

#endif  // HUSK_SENTRY_KERNEL_SIGNALFD_H_
