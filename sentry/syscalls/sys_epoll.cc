// epoll_create(2), epoll_create1(2), epoll_ctl(2), epoll_wait(2),
// epoll_pwait(2) and epoll_pwait2(2), with the argument checks in Linux's
// order (fs/eventpoll.c). The instance itself lives in sentry/kernel/epoll.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/epoll.h>

#include <optional>

#include "sentry/kernel/epoll.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/poll_wait.h"

namespace husk::syscalls {
namespace {

// EP_MAX_EVENTS: what fits in an int's worth of bytes.
constexpr int kMaxEvents = INT_MAX / static_cast<int>(sizeof(epoll_event));
// The top of x86_64 user space (TASK_SIZE_MAX with 4-level paging).
constexpr uint64_t kUserTop = 0x7ffffffff000ULL;

// fdget: an O_PATH descriptor is as good as closed here.
Result<vfs::FileRef> GetFile(Task& t, int fd) {
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(fd));
  if (f->flags() & O_PATH) return Errno{EBADF};
  return f;
}

Result<long> Create(Task& t, int flags) {
  ASSIGN_OR_RETURN(int fd, t.fds().Add(epoll::New(), (flags & EPOLL_CLOEXEC) != 0));
  return static_cast<long>(fd);
}

// do_epoll_wait. Returns EINTR when a signal ends the wait: epoll_wait is
// never restarted (signal(7)).
Result<long> Wait(Task& t, int epfd, uintptr_t events, int maxevents, const Deadline& d)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (maxevents <= 0 || maxevents > kMaxEvents) return Errno{EINVAL};
  // access_ok: only the range is checked up front; faults come per event.
  uint64_t bytes = static_cast<uint64_t>(maxevents) * sizeof(epoll_event);
  if (bytes > kUserTop || events > kUserTop - bytes) return Errno{EFAULT};
  ASSIGN_OR_RETURN(vfs::FileRef file, GetFile(t, epfd));
  epoll::EpollFile* ep = epoll::AsEpoll(*file);
  if (ep == nullptr) return Errno{EINVAL};
  auto emit = [&](int index, uint32_t revents, uint64_t data) {
    epoll_event e{};
    e.events = revents;
    e.data.u64 = data;
    return t.CopyOutObj(events + static_cast<uint64_t>(index) * sizeof(e), e).ok();
  };
  auto scan = [&]() { return ep->Harvest(maxevents, emit); };
  auto reg = [&](WaitSet& w) { w.Add(*file, POLLIN); };
  ASSIGN_OR_RETURN(int n, WaitForEvents(t, d, SignalVsTimeout::kTimeoutWins, scan, reg));
  return static_cast<long>(n);
}

// ep_timeout_to_timespec: a negative timeout waits forever.
Deadline MillisecondsDeadline(int ms) {
  return ms < 0 ? Deadline::Forever() : Deadline::After(absl::Milliseconds(ms));
}

// do_epoll_pwait: the mask first, then the wait.
Result<long> PWait(Task& t, const Args& a, const Deadline& d)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  ASSIGN_OR_RETURN(std::optional<uint64_t> mask, CopyInSigmask(t, a.Ptr(4), a.Size(5)));
  return WithSigmask(t, mask, EINTR, [&] {
    t.kernel().mu.AssertHeld();  // WithSigmask calls this at once, in the handler
    return Wait(t, a.Int(0), a.Ptr(1), a.Int(2), d);
  });
}

}  // namespace

SyscallResult SysEpollCreate(Task& t, const Args& a) {
  // The size is a hint that only has to be positive.
  if (a.Int(0) <= 0) return Errno{EINVAL};
  return Create(t, 0);
}

SyscallResult SysEpollCreate1(Task& t, const Args& a) {
  if (a.Int(0) & ~EPOLL_CLOEXEC) return Errno{EINVAL};
  return Create(t, a.Int(0));
}

SyscallResult SysEpollCtl(Task& t, const Args& a) {
  int op = a.Int(1);
  int fd = a.Int(2);
  epoll_event ev{};
  // Only EPOLL_CTL_DEL goes without an event (ep_op_has_event).
  if (op != EPOLL_CTL_DEL) TRY(t.CopyInObj(a.Ptr(3), &ev));
  ASSIGN_OR_RETURN(vfs::FileRef file, GetFile(t, a.Int(0)));
  ASSIGN_OR_RETURN(vfs::FileRef target, GetFile(t, fd));
  if (!epoll::CanWatch(*target)) return Errno{EPERM};
  epoll::EpollFile* ep = epoll::AsEpoll(*file);
  if (ep == nullptr || file == target) return Errno{EINVAL};
  TRY(ep->Control(op, fd, target, ev.events, ev.data.u64));
  return 0L;
}

SyscallResult SysEpollWait(Task& t, const Args& a) {
  return Wait(t, a.Int(0), a.Ptr(1), a.Int(2), MillisecondsDeadline(a.Int(3)));
}

SyscallResult SysEpollPwait(Task& t, const Args& a) {
  return PWait(t, a, MillisecondsDeadline(a.Int(3)));
}

SyscallResult SysEpollPwait2(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(Deadline d, TimespecDeadline(t, a.Ptr(3)));
  return PWait(t, a, d);
}

}  // namespace husk::syscalls
