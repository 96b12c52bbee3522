// memfd_create(2): an anonymous tmpfs file, sealable on request.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

#include <string>

#include "sentry/fsimpl/tmpfs/tmpfs.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

// Linux's MFD_NAME_MAX_LEN: NAME_MAX less the "memfd:" prefix.
constexpr size_t kMaxMemfdName = 255 - 6;

// The one tmpfs instance memfds live on (Linux's internal shm mount), and
// the directory their nameless dentries hang from, so that /proc/pid/fd
// shows "/memfd:NAME (deleted)".
vfs::DentryRef& MemfdDir() {
  static auto* dir =
      new vfs::DentryRef(std::make_shared<vfs::Dentry>("", nullptr, tmpfs::NewTmpfsRoot(01777)));
  return *dir;
}

}  // namespace

SyscallResult SysMemfdCreate(Task& t, const Args& a) {
  const auto flags = static_cast<unsigned>(a.U(1));
  // Linux 6.1 knows MFD_CLOEXEC and MFD_ALLOW_SEALING here; MFD_HUGETLB
  // needs hugetlbfs, which the sandbox has not.
  if (flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING)) return Errno{EINVAL};
  Result<std::string> name = t.mm().CopyInString(a.Ptr(0), kMaxMemfdName);
  if (!name.ok()) return Errno{name.error() == ENAMETOOLONG ? EINVAL : name.error()};
  const vfs::DentryRef& dir = MemfdDir();
  ASSIGN_OR_RETURN(
      vfs::InodeRef inode,
      tmpfs::NewUnnamedFile(*dir->inode(), 0777, (flags & MFD_ALLOW_SEALING) ? 0 : F_SEAL_SEAL));
  TRY(InitOwner(t, *dir->inode(), *inode));
  ASSIGN_OR_RETURN(vfs::FileRef f, inode->Open(O_RDWR | O_LARGEFILE));
  f->set_dentry(vfs::Dentry::NewDeleted("memfd:" + *name, dir, inode));
  ASSIGN_OR_RETURN(int fd, t.fds().Add(std::move(f), (flags & MFD_CLOEXEC) != 0));
  return static_cast<long>(fd);
}

}  // namespace husk::syscalls
