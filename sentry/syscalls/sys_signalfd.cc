// signalfd(2) and signalfd4(2). The file lives in sentry/kernel/signalfd.
#include <errno.h>
#include <sys/signalfd.h>

#include "sentry/kernel/signalfd.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

// Linux's order: the mask's size (EINVAL) and the mask itself (EFAULT),
// then the flags (EINVAL), then the descriptor: -1 makes a file; another
// must be a signalfd (EBADF, EINVAL), whose mask is replaced and whose
// flags stay as they were.
Result<long> Signalfd(Task& t, int fd, uintptr_t mask_addr, size_t mask_size, int flags)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  uint64_t mask;
  if (mask_size != sizeof(mask)) return Errno{EINVAL};
  TRY(t.CopyInObj(mask_addr, &mask));
  if (flags & ~(SFD_CLOEXEC | SFD_NONBLOCK)) return Errno{EINVAL};
  if (fd == -1) {
    auto file = std::make_shared<signalfd::SignalFile>(mask, flags & SFD_NONBLOCK);
    ASSIGN_OR_RETURN(int new_fd, t.fds().Add(std::move(file), (flags & SFD_CLOEXEC) != 0));
    return static_cast<long>(new_fd);
  }
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(fd));
  signalfd::SignalFile* sf = signalfd::AsSignalFile(*f);
  if (sf == nullptr) return Errno{EINVAL};
  sf->SetMask(mask);
  return static_cast<long>(fd);
}

}  // namespace

SyscallResult SysSignalfd(Task& t, const Args& a) {
  return Signalfd(t, a.Int(0), a.Ptr(1), a.Size(2), 0);
}

SyscallResult SysSignalfd4(Task& t, const Args& a) {
  return Signalfd(t, a.Int(0), a.Ptr(1), a.Size(2), a.Int(3));
}

}  // namespace husk::syscalls
