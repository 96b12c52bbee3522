#include "sentry/kernel/signalfd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>

#include <cstring>
#include <set>

#include "absl/synchronization/mutex.h"
#include "sentry/kernel/kernel.h"

namespace husk::signalfd {
namespace {

// Every live signalfd, for NotifySignal.
ABSL_CONST_INIT absl::Mutex registry_mu(absl::kConstInit);
std::set<SignalFile*>& Registry() ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu) {
  static auto* const files = new std::set<SignalFile*>();
  return *files;
}

// Which fields a siginfo carries (Linux's enum siginfo_layout, with the
// fault variants folded: a signalfd reports si_addr for them all).
enum class Layout { kKill, kTimer, kPoll, kFault, kFaultMceErr, kChld, kRt, kSys };

// siginfo_layout: a kernel code (0 < code < SI_KERNEL) up to the count of
// the codes a signal defines (NSIGILL, ... in asm-generic/siginfo.h) has
// that signal's layout; other kernel codes up to NSIGPOLL look like
// SIGPOLL's. Codes from user space (< 0) carry a value, SI_TIMER a timer.
Layout LayoutOf(int sig, int code) {
  constexpr int kNsigPoll = 6;
  if (code > SI_USER && code < SI_KERNEL) {
    struct Specific {
      int sig;
      int limit;
      Layout layout;
    };
    static constexpr Specific kSpecific[] = {
        {SIGILL, 11, Layout::kFault},        {SIGFPE, 15, Layout::kFault},
        {SIGSEGV, 9, Layout::kFault},        {SIGBUS, 5, Layout::kFault},
        {SIGTRAP, 6, Layout::kFault},        {SIGCHLD, 6, Layout::kChld},
        {SIGPOLL, kNsigPoll, Layout::kPoll}, {SIGSYS, 2, Layout::kSys},
    };
    for (const Specific& s : kSpecific) {
      if (s.sig != sig || code > s.limit) continue;
      if (sig == SIGBUS && (code == BUS_MCEERR_AR || code == BUS_MCEERR_AO)) {
        return Layout::kFaultMceErr;
      }
      return s.layout;
    }
    return code <= kNsigPoll ? Layout::kPoll : Layout::kKill;
  }
  if (code == SI_TIMER) return Layout::kTimer;
  if (code == SI_SIGIO) return Layout::kPoll;
  return code < 0 ? Layout::kRt : Layout::kKill;
}

}  // namespace

struct signalfd_siginfo ToSignalfdSiginfo(const siginfo_t& info) {
  struct signalfd_siginfo out;
  memset(&out, 0, sizeof(out));
  out.ssi_signo = static_cast<uint32_t>(info.si_signo);
  out.ssi_errno = info.si_errno;
  out.ssi_code = info.si_code;
  switch (LayoutOf(info.si_signo, info.si_code)) {
    case Layout::kKill:
      out.ssi_pid = static_cast<uint32_t>(info.si_pid);
      out.ssi_uid = info.si_uid;
      break;
    case Layout::kTimer:
      out.ssi_tid = static_cast<uint32_t>(info.si_timerid);
      out.ssi_overrun = static_cast<uint32_t>(info.si_overrun);
      out.ssi_ptr = reinterpret_cast<uint64_t>(info.si_ptr);
      out.ssi_int = info.si_int;
      break;
    case Layout::kPoll:
      out.ssi_band = static_cast<uint32_t>(info.si_band);
      out.ssi_fd = info.si_fd;
      break;
    case Layout::kFault:
      out.ssi_addr = reinterpret_cast<uint64_t>(info.si_addr);
      break;
    case Layout::kFaultMceErr:
      out.ssi_addr = reinterpret_cast<uint64_t>(info.si_addr);
      out.ssi_addr_lsb = static_cast<uint16_t>(info.si_addr_lsb);
      break;
    case Layout::kChld:
      out.ssi_pid = static_cast<uint32_t>(info.si_pid);
      out.ssi_uid = info.si_uid;
      out.ssi_status = info.si_status;
      out.ssi_utime = static_cast<uint64_t>(info.si_utime);
      out.ssi_stime = static_cast<uint64_t>(info.si_stime);
      break;
    case Layout::kRt:  // sigqueue(3) and friends
      out.ssi_pid = static_cast<uint32_t>(info.si_pid);
      out.ssi_uid = info.si_uid;
      out.ssi_ptr = reinterpret_cast<uint64_t>(info.si_ptr);
      out.ssi_int = info.si_int;
      break;
    case Layout::kSys:
      out.ssi_call_addr = reinterpret_cast<uint64_t>(info.si_call_addr);
      out.ssi_syscall = info.si_syscall;
      out.ssi_arch = info.si_arch;
      break;
  }
  return out;
}

SignalFile::SignalFile(uint64_t mask, int flags)
    : AnonFile(O_RDWR | (flags & O_NONBLOCK), "[signalfd]"), mask_(mask & ~kUnblockableSignals) {
  absl::MutexLock l(&registry_mu);
  Registry().insert(this);
}

SignalFile::~SignalFile() {
  absl::MutexLock l(&registry_mu);
  Registry().erase(this);
}

void SignalFile::SetMask(uint64_t mask) {
  mask_.store(mask & ~kUnblockableSignals);
  // The new mask may hold a signal already pending.
  queue_.Notify(POLLIN);
}

void SignalFile::Notify(int sig) {
  if (mask_.load() & SignalBit(sig)) queue_.Notify(POLLIN);
}

// signalfd_read: fewer bytes than one struct is EINVAL; the first signal may
// be waited for, the rest are only taken if already pending. A blocked read
// ends with ERESTARTSYS for a signal outside the mask that is not blocked.
Result<size_t> SignalFile::Read(char* buf, size_t n) {
  constexpr size_t kSize = sizeof(struct signalfd_siginfo);
  static_assert(kSize == 128);
  const size_t count = n / kSize;
  if (count == 0) return Errno{EINVAL};
  Task* t = Kernel::Current();
  if (t == nullptr) return Errno{EAGAIN};
  // Reads run inside a syscall, under the big kernel lock.
  t->kernel().mu.AssertHeld();
  for (;;) {
    size_t done = 0;
    siginfo_t info;
    while (done < count && t->DequeueSignal(mask_.load(), &info)) {
      struct signalfd_siginfo out = ToSignalfdSiginfo(info);
      memcpy(buf + done * kSize, &out, kSize);
      done++;
    }
    if (done > 0) return done * kSize;
    if (flags() & O_NONBLOCK) return Errno{EAGAIN};
    // A signal queued for t wakes it directly; the queue also carries the
    // wake-ups of a mask change (and of signals for t's process later).
    ScopedWait wait(&queue_, &t->waiter, POLLIN);
    if (!t->Block().ok()) return Errno{kERestartSys};
  }
}

uint32_t SignalFile::Readiness(uint32_t mask) {
  // The task that polls: as Linux's signalfd_poll looks at current.
  Task* t = Kernel::Current();
  if (t == nullptr) return 0;
  bool ready = (t->PendingSignals() & mask_.load()) != 0;
  return (ready ? POLLIN : 0) & (mask | POLLERR | POLLHUP);
}

SignalFile* AsSignalFile(vfs::File& f) { return dynamic_cast<SignalFile*>(&f); }

void NotifySignal(Task& t, int sig) {
  absl::MutexLock l(&registry_mu);
  for (SignalFile* f : Registry()) f->Notify(sig);
}

}  // namespace husk::signalfd
