// FdTable: a task's file descriptors (shared by CLONE_FILES later).
#ifndef HUSK_SENTRY_KERNEL_FD_TABLE_H_
#define HUSK_SENTRY_KERNEL_FD_TABLE_H_

#include <map>

#include "base/result.h"
#include "sentry/vfs/vfs.h"

namespace husk {

class FdTable {
 public:
  FdTable() = default;
  FdTable(const FdTable& other) : fds_(other.fds_), limit_(other.limit_) {}
  FdTable& operator=(const FdTable&) = delete;
  // Closing a descriptor drops this table's record locks on its file.
  ~FdTable();
  struct Entry {
    vfs::FileRef file;
    bool cloexec = false;
  };
  // Installs file at the lowest free descriptor >= min_fd (EMFILE past limit).
  Result<int> Add(vfs::FileRef file, bool cloexec, int min_fd = 0);
  // Installs file at exactly fd, closing what was there.
  Status Set(int fd, vfs::FileRef file, bool cloexec);
  Result<vfs::FileRef> Get(int fd) const;
  // Linux's fdget() as against fdget_raw(): an O_PATH descriptor names a
  // place, not an open file, so the calls that use the file itself (I/O,
  // lseek, fsync, ioctl, fchmod, ...) answer EBADF for it. Get is the raw
  // form, for the calls an O_PATH descriptor serves (fstat, *at dirfds,
  // fchdir, close, dup, F_GETFL).
  Result<vfs::FileRef> GetForIo(int fd) const;
  Result<Entry*> GetEntry(int fd);
  Status Remove(int fd);
  // Drops every close-on-exec descriptor (execve).
  void CloseOnExec();
  const std::map<int, Entry>& entries() const { return fds_; }
  void set_limit(int limit) { limit_ = limit; }
  int limit() const { return limit_; }

 private:
  std::map<int, Entry> fds_;
  int limit_ = 1024;
};

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_FD_TABLE_H_
