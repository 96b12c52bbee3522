// poll(2), ppoll(2), select(2) and pselect6(2), after Linux's fs/select.c:
// the argument checks and their order, the revents filter, POLLNVAL against
// EBADF, the time left written back, and the restart errnos.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include <optional>
#include <vector>

#include "sentry/kernel/epoll.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/poll_wait.h"

namespace husk::syscalls {

void WaitSet::Add(vfs::File& f, uint32_t events) {
  uint32_t mask = events | POLLERR | POLLHUP;
  if (WaitQueue* q = f.EventQueue()) waits_.emplace_back(q, &t_.waiter, mask);
  if (f.HostFd() >= 0) {
    host_.push_back(pollfd{f.HostFd(), static_cast<short>(mask & 0xffff), 0});
  }
  if (epoll::EpollFile* ep = epoll::AsEpoll(f)) ep->HostFds(&host_, &keep_);
}

Result<std::optional<uint64_t>> CopyInSigmask(Task& t, uintptr_t addr, size_t size) {
  if (addr == 0) return std::optional<uint64_t>();
  if (size != sizeof(uint64_t)) return Errno{EINVAL};
  uint64_t mask;
  TRY(t.CopyInObj(addr, &mask));
  return std::optional<uint64_t>(mask & ~kUnblockableSignals);
}

// poll_select_set_timeout: a negative or unnormalized time is EINVAL.
Result<Deadline> DeadlineFromTimespec(int64_t sec, int64_t nsec) {
  if (sec < 0 || nsec < 0 || nsec >= 1000000000) return Errno{EINVAL};
  return Deadline::After(absl::Seconds(sec) + absl::Nanoseconds(nsec));
}

Result<Deadline> TimespecDeadline(Task& t, uintptr_t addr) {
  if (addr == 0) return Deadline::Forever();
  timespec ts;
  TRY(t.CopyInObj(addr, &ts));
  return DeadlineFromTimespec(ts.tv_sec, ts.tv_nsec);
}

namespace {

// select(2)'s event sets (POLLIN_SET, POLLOUT_SET, POLLEX_SET in fs/select.c).
// POLLNVAL is in all three since Linux 5.17 (and the stable kernels): a
// descriptor select cannot look at counts as ready rather than sleeping.
constexpr uint32_t kPollInSet = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR | POLLNVAL;
constexpr uint32_t kPollOutSet = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR | POLLNVAL;
constexpr uint32_t kPollExSet = POLLPRI | POLLNVAL;

// The file behind fd if poll and select can look at it: fdget refuses
// O_PATH descriptors, so poll reports POLLNVAL for them and select finds
// them ready in every set it was asked about.
vfs::FileRef Pollable(Task& t, int fd) {
  auto f = t.fds().Get(fd);
  if (!f.ok() || ((*f)->flags() & O_PATH)) return nullptr;
  return *f;
}

// poll_select_finish: Linux writes the time left back into the timeout
// argument (not for a zero timeout). If that write faults the call cannot be
// restarted with the time left, so an interrupted call reports EINTR; a
// call that succeeded still succeeds.
Result<long> WriteTimeLeft(Task& t, Result<long> r, uintptr_t addr, const Deadline& d,
                           bool timeval) {
  if (addr == 0 || d.zero) return r;
  timespec left = absl::ToTimespec(d.Left());
  Status written = timeval ? t.CopyOutObj(addr, ::timeval{left.tv_sec, left.tv_nsec / 1000})
                           : t.CopyOutObj(addr, left);
  if (!written.ok() && !r.ok() && r.error() == kERestartNoHand) return Errno{EINTR};
  return r;
}

// do_sys_poll. Returns EINTR when a signal ended the wait.
Result<long> DoPoll(Task& t, uintptr_t addr, uint64_t nfds, const Deadline& d)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  // RLIMIT_NOFILE never exceeds fs.nr_open (1048576) on Linux; holding
  // nfds to that too keeps an unlimited rlimit from sizing the copy.
  constexpr uint64_t kNrOpen = 1 << 20;
  if (nfds > t.tg().rlimits[RLIMIT_NOFILE].rlim_cur || nfds > kNrOpen) return Errno{EINVAL};
  std::vector<pollfd> fds(nfds);
  if (nfds > 0) TRY(t.CopyIn(addr, fds.data(), nfds * sizeof(pollfd)));
  std::vector<vfs::FileRef> files(nfds);
  for (size_t i = 0; i < nfds; i++) {
    if (fds[i].fd >= 0) files[i] = Pollable(t, fds[i].fd);
  }
  // What each entry may report: its events plus POLLERR and POLLHUP.
  auto filter = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<uint16_t>(fds[i].events)) | POLLERR | POLLHUP;
  };
  auto scan = [&]() -> Result<int> {
    int n = 0;
    for (size_t i = 0; i < nfds; i++) {
      uint32_t revents = 0;
      if (fds[i].fd >= 0) revents = files[i] ? files[i]->Readiness(filter(i)) & filter(i) : POLLNVAL;
      fds[i].revents = static_cast<short>(revents);
      if (revents != 0) n++;
    }
    return n;
  };
  auto reg = [&](WaitSet& w) {
    for (size_t i = 0; i < nfds; i++) {
      if (files[i]) w.Add(*files[i], filter(i));
    }
  };
  Result<int> r = WaitForEvents(t, d, SignalVsTimeout::kSignalWins, scan, reg);
  // Linux writes every revents back, even when a signal ended the wait.
  if (nfds > 0 && !t.CopyOut(addr, fds.data(), nfds * sizeof(pollfd)).ok()) return Errno{EFAULT};
  if (!r.ok()) return Errno{r.error()};
  return static_cast<long>(*r);
}

// The size of Linux's descriptor table for a process whose table grew only
// as far as its highest open descriptor: 64 at first, then 128 times a power
// of two (alloc_fdtable). select ignores descriptors past it instead of
// reporting EBADF.
int MaxFds(const FdTable& fds) {
  if (fds.entries().empty()) return 64;
  int highest = fds.entries().rbegin()->first;
  if (highest < 64) return 64;
  int units = 1;
  while (units < highest / 128 + 1) units *= 2;
  return units * 128;
}

// core_sys_select. Returns EINTR when a signal ended the wait.
Result<long> DoSelect(Task& t, int nfds, uintptr_t in_addr, uintptr_t out_addr, uintptr_t ex_addr,
                      const Deadline& d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (nfds < 0) return Errno{EINVAL};
  int n = std::min(nfds, MaxFds(t.fds()));
  size_t words = (static_cast<size_t>(n) + 63) / 64;
  std::vector<uint64_t> in(words), out(words), ex(words);
  // The sets hold whole longs: n bits rounded up (FDS_BYTES).
  auto get = [&](uintptr_t addr, std::vector<uint64_t>& set) -> Status {
    if (addr == 0 || words == 0) return Ok();
    return t.CopyIn(addr, set.data(), words * sizeof(uint64_t));
  };
  TRY(get(in_addr, in));
  TRY(get(out_addr, out));
  TRY(get(ex_addr, ex));
  auto bit = [](const std::vector<uint64_t>& set, int fd) {
    return ((set[fd / 64] >> (fd % 64)) & 1) != 0;
  };
  struct Watched {
    int fd;
    uint32_t sets;      // POLLIN, POLLOUT, POLLPRI: the sets that name fd
    vfs::FileRef file;  // null for O_PATH
  };
  // The events that count for a descriptor in the given sets.
  auto events_of = [](uint32_t sets) {
    return ((sets & POLLIN) ? kPollInSet : 0) | ((sets & POLLOUT) ? kPollOutSet : 0) |
           ((sets & POLLPRI) ? kPollExSet : 0);
  };
  std::vector<Watched> watched;
  for (int fd = 0; fd < n; fd++) {
    uint32_t sets = (bit(in, fd) ? POLLIN : 0) | (bit(out, fd) ? POLLOUT : 0) |
                    (bit(ex, fd) ? POLLPRI : 0);
    if (sets == 0) continue;
    // max_select_fd: a set bit for a descriptor that is not open is EBADF.
    if (!t.fds().Get(fd).ok()) return Errno{EBADF};
    watched.push_back(Watched{fd, sets, Pollable(t, fd)});
  }
  std::vector<uint64_t> rin(words), rout(words), rex(words);
  auto scan = [&]() -> Result<int> {
    std::fill(rin.begin(), rin.end(), 0);
    std::fill(rout.begin(), rout.end(), 0);
    std::fill(rex.begin(), rex.end(), 0);
    int found = 0;
    for (const Watched& w : watched) {
      uint32_t ready = w.file ? w.file->Readiness(events_of(w.sets)) : POLLNVAL;
      auto mark = [&](std::vector<uint64_t>& set) {
        set[w.fd / 64] |= uint64_t{1} << (w.fd % 64);
        found++;
      };
      if ((w.sets & POLLIN) && (ready & kPollInSet)) mark(rin);
      if ((w.sets & POLLOUT) && (ready & kPollOutSet)) mark(rout);
      if ((w.sets & POLLPRI) && (ready & kPollExSet)) mark(rex);
    }
    return found;
  };
  auto reg = [&](WaitSet& ws) {
    for (const Watched& w : watched) {
      if (w.file) ws.Add(*w.file, events_of(w.sets));
    }
  };
  ASSIGN_OR_RETURN(int found, WaitForEvents(t, d, SignalVsTimeout::kSignalWins, scan, reg));
  auto put = [&](uintptr_t addr, const std::vector<uint64_t>& set) -> Status {
    if (addr == 0 || words == 0) return Ok();
    return t.CopyOut(addr, set.data(), words * sizeof(uint64_t));
  };
  if (!put(in_addr, rin).ok() || !put(out_addr, rout).ok() || !put(ex_addr, rex).ok())
    return Errno{EFAULT};
  return static_cast<long>(found);
}

// The interrupted poll family asks to be restarted unless a handler runs.
Result<long> Restartable(Result<long> r, int restart_errno) {
  if (!r.ok() && r.error() == EINTR) return Errno{restart_errno};
  return r;
}

}  // namespace

SyscallResult SysPoll(Task& t, const Args& a) {
  int timeout_ms = a.Int(2);
  Deadline d = timeout_ms < 0 ? Deadline::Forever() : Deadline::After(absl::Milliseconds(timeout_ms));
  // sys_poll restarts through the restart block (with the time left);
  // ERESTART_RESTARTBLOCK behaves as ERESTARTNOHAND here.
  return Restartable(DoPoll(t, a.Ptr(0), a.U(1) & 0xffffffffU, d), kERestartBlock);
}

SyscallResult SysPpoll(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(Deadline d, TimespecDeadline(t, a.Ptr(2)));
  ASSIGN_OR_RETURN(std::optional<uint64_t> mask, CopyInSigmask(t, a.Ptr(3), a.Size(4)));
  Result<long> r = WithSigmask(t, mask, kERestartNoHand, [&] {
    t.kernel().mu.AssertHeld();  // WithSigmask calls this at once, in the handler
    return Restartable(DoPoll(t, a.Ptr(0), a.U(1) & 0xffffffffU, d), kERestartNoHand);
  });
  return WriteTimeLeft(t, r, a.Ptr(2), d, /*timeval=*/false);
}

SyscallResult SysSelect(Task& t, const Args& a) {
  Deadline d;
  if (a.Ptr(4) != 0) {
    timeval tv;
    TRY(t.CopyInObj(a.Ptr(4), &tv));
    // kern_select carries whole seconds out of tv_usec (wrapping as Linux
    // does); a negative remainder is EINVAL.
    auto sec = static_cast<int64_t>(static_cast<uint64_t>(tv.tv_sec) +
                                    static_cast<uint64_t>(tv.tv_usec / 1000000));
    ASSIGN_OR_RETURN(d, DeadlineFromTimespec(sec, (tv.tv_usec % 1000000) * 1000));
  }
  Result<long> r =
      Restartable(DoSelect(t, a.Int(0), a.Ptr(1), a.Ptr(2), a.Ptr(3), d), kERestartNoHand);
  return WriteTimeLeft(t, r, a.Ptr(4), d, /*timeval=*/true);
}

SyscallResult SysPselect6(Task& t, const Args& a) {
  // The sixth argument points to {const sigset_t* mask; size_t size}.
  struct {
    uint64_t mask;
    uint64_t size;
  } pack{0, 0};
  if (a.Ptr(5) != 0) TRY(t.CopyInObj(a.Ptr(5), &pack));
  ASSIGN_OR_RETURN(Deadline d, TimespecDeadline(t, a.Ptr(4)));
  ASSIGN_OR_RETURN(std::optional<uint64_t> mask, CopyInSigmask(t, pack.mask, pack.size));
  Result<long> r = WithSigmask(t, mask, kERestartNoHand, [&] {
    t.kernel().mu.AssertHeld();  // WithSigmask calls this at once, in the handler
    return Restartable(DoSelect(t, a.Int(0), a.Ptr(1), a.Ptr(2), a.Ptr(3), d), kERestartNoHand);
  });
  return WriteTimeLeft(t, r, a.Ptr(4), d, /*timeval=*/false);
}

}  // namespace husk::syscalls
