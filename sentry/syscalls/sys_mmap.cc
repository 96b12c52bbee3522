// Memory: brk, mmap, munmap, mprotect, madvise, mremap, msync, mincore.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {

namespace {

// RLIMIT_AS and RLIMIT_DATA, for the calls that grow an address space.
VmLimits Limits(const Task& t) {
  auto bytes = [](rlim_t v) { return v == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(v); };
  const auto& r = t.tg().rlimits;
  return VmLimits{bytes(r[RLIMIT_AS].rlim_cur), bytes(r[RLIMIT_DATA].rlim_cur),
                  bytes(r[RLIMIT_DATA].rlim_max)};
}

}  // namespace

SyscallResult SysBrk(Task& t, const Args& a) {
  return static_cast<long>(t.mm().Brk(a.Ptr(0), Limits(t)));
}

SyscallResult SysMmap(Task& t, const Args& a) {
  MmapRequest req;
  req.addr = a.Ptr(0);
  req.length = a.Size(1);
  req.prot = a.Int(2);
  req.flags = a.Int(3);
  req.offset = a.U(5);
  req.limits = Limits(t);
  vfs::InodeRef inode;  // of a file mapping
  if (!(req.flags & MAP_ANONYMOUS)) {
    ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(4)));
    inode = f->inode();
    if (f->flags() & O_PATH) return Errno{EBADF};
    // MAP_SHARED_VALIDATE: a flag Linux does not know (or this file does not
    // support, such as MAP_SYNC) is EOPNOTSUPP rather than ignored.
    constexpr int kLegacyFlags = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS |
                                 MAP_DENYWRITE | MAP_EXECUTABLE | 0x4000000 /* UNINITIALIZED */ |
                                 MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE |
                                 MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB;
    if ((req.flags & MAP_TYPE) == MAP_SHARED_VALIDATE && (req.flags & ~kLegacyFlags)) {
      return Errno{EOPNOTSUPP};
    }
    // mmap(2): EACCES unless the file is open for reading, and for shared
    // writable mappings also for writing.
    if (!f->readable()) return Errno{EACCES};
    bool shared = (req.flags & MAP_TYPE) != MAP_PRIVATE;
    if (shared && (req.prot & PROT_WRITE) && !f->writable()) return Errno{EACCES};
    // do_mmap(): a file of a noexec mount cannot be mapped executable.
    if ((req.prot & PROT_EXEC) && f->dentry() != nullptr &&
        (vfs::NamespaceOf(t.fs()).FlagsOf(*f->dentry()) & vfs::MountNamespace::kNoExec))
      return Errno{EPERM};
    req.file = f->GetMappable();
    if (req.file == nullptr) return Errno{ENODEV};
    if (shared) {
      // Writes through a shared mapping reach the file only where it shares
      // its pages (tmpfs, gofer files through their cache); elsewhere refuse
      // rather than silently lose writes.
      req.may_write = f->writable() && req.file->SharesPages();
      if ((req.prot & PROT_WRITE) && !req.may_write) return Errno{ENODEV};
      // A write-sealed memfd: no new writable shared mapping, and a
      // read-only one may not become writable (EPERM, then EACCES).
      if (auto seals = f->inode()->Seals();
          seals.ok() && (*seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) {
        if (req.prot & PROT_WRITE) return Errno{EPERM};
        req.may_write = false;
      }
    }
  } else {
    req.offset = 0;
  }
  ASSIGN_OR_RETURN(uintptr_t addr, t.mm().Mmap(req));
  if (inode != nullptr && req.may_write && (req.flags & MAP_TYPE) != MAP_PRIVATE) {
    inode->NoteWritableMapping(req.file);  // for F_SEAL_WRITE's EBUSY while it lives
  }
  return static_cast<long>(addr);
}

SyscallResult SysMunmap(Task& t, const Args& a) {
  TRY(t.mm().Munmap(a.Ptr(0), a.Size(1)));
  return 0L;
}

SyscallResult SysMprotect(Task& t, const Args& a) {
  TRY(t.mm().Mprotect(a.Ptr(0), a.Size(1), a.Int(2)));
  return 0L;
}

SyscallResult SysMadvise(Task& t, const Args& a) {
  TRY(t.mm().Madvise(a.Ptr(0), a.Size(1), a.Int(2)));
  return 0L;
}

SyscallResult SysMremap(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(uintptr_t r,
                   t.mm().Mremap(a.Ptr(0), a.Size(1), a.Size(2), a.Int(3), a.Ptr(4), Limits(t)));
  return static_cast<long>(r);
}

SyscallResult SysMincore(Task& t, const Args& a) {
  if (a.Ptr(0) % kPageSize != 0) return Errno{EINVAL};
  if (a.Size(1) == 0) return 0L;
  ASSIGN_OR_RETURN(std::vector<uint8_t> vec, t.mm().Mincore(a.Ptr(0), a.Size(1)));
  TRY(t.CopyOut(a.Ptr(2), vec.data(), vec.size()));
  return 0L;
}

SyscallResult SysMsync(Task& t, const Args& a) {
  if (a.Ptr(0) % kPageSize != 0) return Errno{EINVAL};
  int flags = a.Int(2);
  if (flags & ~(MS_ASYNC | MS_SYNC | MS_INVALIDATE)) return Errno{EINVAL};
  if ((flags & MS_ASYNC) && (flags & MS_SYNC)) return Errno{EINVAL};
  // A wrapping range or one with unmapped pages: ENOMEM (msync(2)). MS_ASYNC
  // writes back too (now rather than later); MS_INVALIDATE has nothing to
  // drop, as mappings share the file's cached pages.
  TRY(t.mm().Msync(a.Ptr(0), a.Size(1)));
  return 0L;
}

}  // namespace husk::syscalls
