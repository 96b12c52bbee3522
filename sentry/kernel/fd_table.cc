#include "sentry/kernel/fd_table.h"

#include <errno.h>

#include "sentry/kernel/file_locks.h"

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
  auto it = fds_.find(fd);
  if (it != fds_.end() && it->second.file != nullptr) file_locks::OnClose(this, *it->second.file);
  fds_[fd] = Entry{std::move(file), cloexec};
  return Ok();
}

FdTable::~FdTable() {
  for (auto& [fd, e] : fds_) {
    if (e.file != nullptr) file_locks::OnClose(this, *e.file);
  }
}

Result<vfs::FileRef> FdTable::Get(int fd) const {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return Errno{EBADF};
  return it->second.file;
}

Result<vfs::FileRef> FdTable::GetForIo(int fd) const {
  auto it = fds_.find(fd);
  if (it == fds_.end() || (it->second.file->flags() & O_PATH)) return Errno{EBADF};
  return it->second.file;
}

Result<FdTable::Entry*> FdTable::GetEntry(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return Errno{EBADF};
  return &it->second;
}

Status FdTable::Remove(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return Errno{EBADF};
  vfs::FileRef file = std::move(it->second.file);
  fds_.erase(it);
  if (file != nullptr) file_locks::OnClose(this, *file);
  return Ok();
}

void FdTable::CloseOnExec() {
  for (auto it = fds_.begin(); it != fds_.end();) {
    if (!it->second.cloexec) {
      ++it;
      continue;
    }
    vfs::FileRef file = std::move(it->second.file);
    it = fds_.erase(it);
    if (file != nullptr) file_locks::OnClose(this, *file);
  }
}

}  // namespace husk
