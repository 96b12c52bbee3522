#include "sentry/kernel/fd_table.h"

#include <errno.h>

namespace husk {

Result<int> FdTable::Add(vfs::FileRef file, bool cloexec, int min_fd) {
  // fcntl(F_DUPFD): EINVAL when the minimum is negative or past RLIMIT_NOFILE.
  if (min_fd < 0 || min_fd >= limit_) return Errno{EINVAL};
  int fd = min_fd;
  for (auto it = fds_.lower_bound(min_fd); it != fds_.end() && it->first == fd; ++it) fd++;
  if (fd >= limit_) return Errno{EMFILE};
  fds_[fd] = Entry{std::move(file), cloexec};
  return fd;
}

Status FdTable::Set(int fd, vfs::FileRef file, bool cloexec) {
  if (fd < 0 || fd >= limit_) return Errno{EBADF};
  fds_[fd] = Entry{std::move(file), cloexec};
  return Ok();
}

Result<vfs::FileRef> FdTable::Get(int fd) const {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return Errno{EBADF};
  return it->second.file;
}

Result<FdTable::Entry*> FdTable::GetEntry(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return Errno{EBADF};
  return &it->second;
}

Status FdTable::Remove(int fd) {
  if (fds_.erase(fd) == 0) return Errno{EBADF};
  return Ok();
}

void FdTable::CloseOnExec() {
  for (auto it = fds_.begin(); it != fds_.end();) {
    it = it->second.cloexec ? fds_.erase(it) : std::next(it);
  }
}

}  // namespace husk
