// pipe(2) and pipe2(2). The pipe itself lives in sentry/kernel/pipe.
#include <errno.h>
#include <fcntl.h>

#include "sentry/kernel/pipe.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

Result<long> MakePipe(Task& t, uintptr_t fds_addr, int flags) {
  // O_DIRECT (packet mode) is not supported yet: refuse it rather than
  // silently giving a byte-stream pipe.
  if (flags & ~(O_CLOEXEC | O_NONBLOCK)) return Errno{EINVAL};
  auto [r, w] = pipe::New(flags & O_NONBLOCK, t.euid, t.egid);
  bool cloexec = (flags & O_CLOEXEC) != 0;
  ASSIGN_OR_RETURN(int rfd, t.fds().Add(r, cloexec));
  auto wfd = t.fds().Add(w, cloexec);
  if (!wfd.ok()) {
    (void)t.fds().Remove(rfd);
    return Errno{wfd.error()};
  }
  int fds[2] = {rfd, *wfd};
  if (!t.CopyOut(fds_addr, fds, sizeof(fds)).ok()) {
    (void)t.fds().Remove(rfd);
    (void)t.fds().Remove(*wfd);
    return Errno{EFAULT};
  }
  return 0L;
}

}  // namespace

SyscallResult SysPipe(Task& t, const Args& a) { return MakePipe(t, a.Ptr(0), 0); }

SyscallResult SysPipe2(Task& t, const Args& a) { return MakePipe(t, a.Ptr(0), a.Int(1)); }

}  // namespace husk::syscalls
