// eventfd(2) and eventfd2(2). The counter file lives in sentry/kernel/eventfd.
#include <errno.h>
#include <sys/eventfd.h>

#include "sentry/kernel/eventfd.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

Result<long> MakeEventfd(Task& t, uint64_t initval_arg, int flags) {
  if (flags & ~(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE)) return Errno{EINVAL};
  // The initial value is an unsigned int.
  uint64_t initval = initval_arg & 0xffffffffU;
  ASSIGN_OR_RETURN(int fd, t.fds().Add(eventfd::New(initval, flags), (flags & EFD_CLOEXEC) != 0));
  return static_cast<long>(fd);
}

}  // namespace

SyscallResult SysEventfd(Task& t, const Args& a) { return MakeEventfd(t, a.U(0), 0); }

SyscallResult SysEventfd2(Task& t, const Args& a) { return MakeEventfd(t, a.U(0), a.Int(1)); }

}  // namespace husk::syscalls
