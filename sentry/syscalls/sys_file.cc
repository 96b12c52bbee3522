// File I/O and descriptors: read/write family, open/close, dup, fcntl, ioctl,
// lseek, truncate, getdents64.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include <climits>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "sentry/fsimpl/tmpfs/tmpfs.h"
#include "sentry/kernel/file_locks.h"
#include "sentry/kernel/inotify.h"
#include "sentry/kernel/pipe.h"
#include "sentry/net/socket.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

constexpr size_t kMaxChunk = 1 << 20;  // bounce buffer per step
constexpr size_t kMaxRw = 0x7ffff000;  // MAX_RW_COUNT: Linux caps one read/write

// The file of a call that uses it (fdget): EBADF for an O_PATH descriptor.
Result<vfs::FileRef> GetFile(Task& t, int fd) { return t.fds().GetForIo(fd); }

}  // namespace

// file_remove_privs(): a write or truncate clears S_ISUID, and S_ISGID
// where Linux does, of a regular file (vfs::ModeAfterWrite).
Status DropPrivs(Task& t, vfs::Inode& inode) {
  if (!inode.IsRegular()) return Ok();
  ASSIGN_OR_RETURN(struct stat st, inode.Stat());
  if (!(st.st_mode & (S_ISUID | S_ISGID))) return Ok();
  std::optional<mode_t> mode = vfs::ModeAfterWrite(t.FsCreds(), st);
  if (!mode) return Ok();
  vfs::SetAttr attr;
  attr.set_mode = true;
  attr.mode = *mode;
  return inode.SetAttributes(attr);
}

// A blocking read or write of a host descriptor (stdio) first waits in
// the sentry, with the host descriptor in the task's wait, so that a signal
// (SIGKILL above all) ends the wait as it ends any other; the host call then
// finds data or room (or reports the hang-up or error itself).
Status WaitHostReady(Task& t, vfs::File& f, short events)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (f.HostFd() < 0 || (f.flags() & O_NONBLOCK)) return Ok();
  for (;;) {
    if (f.Readiness(events | POLLHUP | POLLERR) != 0) return Ok();
    std::vector<pollfd> host{{f.HostFd(), events, 0}};
    Status s = t.Block(absl::InfiniteFuture(), &host);
    if (!s.ok() && s.error() == EINTR) return Errno{kERestartSys};
  }
}

// RLIMIT_FSIZE, as generic_write_check_limits applies it to a regular
// file: a write starting at or past the limit raises SIGXFSZ and fails with
// EFBIG; one that would cross it is cut short there. pos: the offset a
// positional write names, else the file's (its size under O_APPEND).
Result<size_t> FsizeLimit(Task& t, vfs::File& f, std::optional<uint64_t> pos, size_t n)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  const rlim_t limit = t.tg().rlimits[RLIMIT_FSIZE].rlim_cur;
  if (limit == RLIM_INFINITY || n == 0 || !f.inode()->IsRegular()) return n;
  if (!pos.has_value()) {
    if (f.flags() & O_APPEND) {
      ASSIGN_OR_RETURN(struct stat st, f.Stat());
      pos = static_cast<uint64_t>(st.st_size);
    } else {
      ASSIGN_OR_RETURN(off_t cur, f.Seek(0, SEEK_CUR));
      pos = static_cast<uint64_t>(cur);
    }
  }
  if (*pos >= limit) {
    RaiseOnSelf(t, SIGXFSZ);
    return Errno{EFBIG};
  }
  return std::min<uint64_t>(n, limit - *pos);
}

Result<std::vector<IoVec>> CopyInIovecs(Task& t, uintptr_t addr, int count) {
  if (count < 0 || count > IOV_MAX) return Errno{EINVAL};
  std::vector<IoVec> iov(static_cast<size_t>(count));
  if (count > 0) TRY(t.CopyIn(addr, iov.data(), iov.size() * sizeof(IoVec)));
  // import_iovec, segment by segment: a length negative as an ssize_t is
  // EINVAL; the total is cut at MAX_RW_COUNT; a range (as cut) that leaves
  // the user address space is EFAULT.
  uint64_t total = 0;
  for (auto& v : iov) {
    if (static_cast<int64_t>(v.len) < 0) return Errno{EINVAL};
    v.len = std::min<uint64_t>(v.len, kMaxRw - total);
    if (v.base > kTaskSize || v.len > kTaskSize - v.base) return Errno{EFAULT};
    total += v.len;
  }
  return iov;
}

namespace {

Result<long> Long(Result<int> r) {
  if (!r.ok()) return Errno{r.error()};
  return static_cast<long>(*r);
}

Result<long> Long(Result<size_t> r) {
  if (!r.ok()) return Errno{r.error()};
  return static_cast<long>(*r);
}

// A read that returned data is IN_ACCESS, a write that wrote some IN_MODIFY
// (fsnotify_access and fsnotify_modify: only when ret > 0).
Result<long> Notified(const vfs::File& f, Result<long> r, uint32_t event) {
  if (r.ok() && *r > 0) inotify::NotifyFile(f, event);
  return r;
}

// Reads into application memory at addr, at most n bytes, in chunks.
Result<long> ReadInto(Task& t, const vfs::FileRef& f, uintptr_t addr, size_t n, bool positional,
                      uint64_t off) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  TRY(WaitHostReady(t, *f, POLLIN));
  n = std::min(n, kMaxRw);
  if (auto* s = dynamic_cast<net::Socket*>(f.get()); s != nullptr && !positional) {
    if (n == 0) return 0L;  // takes nothing (Socket::Read, sock_read_iter)
    // A socket's read is a receive without flags (Socket::Read), here
    // with no bounce buffer between the socket's bytes and the task's.
    ASSIGN_OR_RETURN(net::Received r, s->Receive(t, std::min(n, kMaxChunk), 0));
    if (!r.data.empty() && !t.CopyOut(addr, r.data.data(), r.data.size()).ok()) {
      return Errno{EFAULT};
    }
    return static_cast<long>(r.data.size());
  }
  // Not zeroed: every byte used is written first.
  const size_t cap = std::min(n, kMaxChunk);
  auto buf = std::make_unique_for_overwrite<char[]>(cap);
  size_t done = 0;
  while (done < n) {
    size_t want = std::min(n - done, cap);
    Result<size_t> r =
        positional ? f->PRead(buf.get(), want, off + done) : f->Read(buf.get(), want);
    if (!r.ok()) {
      if (done > 0) break;
      return Errno{r.error()};
    }
    if (*r > 0) {
      auto c = t.CopyOut(addr + done, buf.get(), *r);
      if (!c.ok()) {
        if (done > 0) break;
        return Errno{EFAULT};
      }
    }
    done += *r;
    // A short read ends the call: streams return what they have.
    if (*r < want || f->inode()->Stream() || f->HostFd() >= 0) break;
  }
  return static_cast<long>(done);
}

// truncate(2)/ftruncate(2) growing a file past RLIMIT_FSIZE: SIGXFSZ and
// EFBIG (inode_newsize_ok); shrinking is always allowed.
Status FsizeTruncate(Task& t, vfs::Inode& inode, uint64_t size)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  const rlim_t limit = t.tg().rlimits[RLIMIT_FSIZE].rlim_cur;
  if (limit == RLIM_INFINITY || size <= limit) return Ok();
  ASSIGN_OR_RETURN(struct stat st, inode.Stat());
  if (size <= static_cast<uint64_t>(st.st_size)) return Ok();
  RaiseOnSelf(t, SIGXFSZ);
  return Errno{EFBIG};
}

Result<long> WriteFrom(Task& t, const vfs::FileRef& f, uintptr_t addr, size_t n, bool positional,
                       uint64_t off) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  TRY(WaitHostReady(t, *f, POLLOUT));
  n = std::min(n, kMaxRw);
  ASSIGN_OR_RETURN(n,
                   FsizeLimit(t, *f, positional ? std::optional<uint64_t>(off) : std::nullopt, n));
  TRY(DropPrivs(t, *f->inode()));
  // Not zeroed: every byte used is written first.
  const size_t cap = std::min(n, kMaxChunk);
  auto buf = std::make_unique_for_overwrite<char[]>(cap);
  size_t done = 0;
  while (done < n) {
    size_t want = std::min(n - done, cap);
    auto c = t.CopyIn(addr + done, buf.get(), want);
    if (!c.ok()) {
      if (done > 0) break;
      return Errno{EFAULT};
    }
    Result<size_t> w =
        positional ? f->PWrite(buf.get(), want, off + done) : f->Write(buf.get(), want);
    if (!w.ok()) {
      if (done > 0) break;
      return Errno{w.error()};
    }
    done += *w;
    if (*w < want) break;
  }
  return static_cast<long>(done);
}

// write(2): EPIPE comes with SIGPIPE for the writer.
Result<long> RaiseSigpipe(Task& t, Result<long> r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (!r.ok() && r.error() == EPIPE) RaiseOnSelf(t, SIGPIPE);
  return r;
}

Result<long> OpenAt(Task& t, int dirfd, uintptr_t path_addr, int flags, mode_t mode)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(path_addr));
  if (path.empty()) return Errno{ENOENT};
  // build_open_flags(): O_TMPFILE wants write access and no O_CREAT.
  const bool tmpfile = (flags & __O_TMPFILE) == __O_TMPFILE;
  if (tmpfile && ((flags & O_CREAT) || (flags & O_ACCMODE) == O_RDONLY)) return Errno{EINVAL};
  ASSIGN_OR_RETURN(vfs::DentryRef start,
                   path[0] == '/' ? Result<vfs::DentryRef>(t.fs().root) : StartDir(t, dirfd));
  vfs::Creds creds = t.FsCreds();
  if (tmpfile) {
    // An unnamed file in the directory (vfs_tmpfile): the directory must be
    // writable and searchable, and its filesystem able to (tmpfs here).
    ASSIGN_OR_RETURN(vfs::DentryRef dir, vfs::Resolve(t.fs(), start, path, true, creds));
    if (!dir->inode()->IsDir()) return Errno{ENOTDIR};
    TRY(vfs::CheckWritableMount(t.fs(), *dir));
    TRY(vfs::MayCreate(creds, *dir));
    Result<vfs::InodeRef> made = tmpfs::NewUnnamedFile(*dir->inode(), mode & ~t.fs().umask & 07777,
                                                       F_SEAL_SEAL, !(flags & O_EXCL));
    if (!made.ok()) return Errno{made.error() == ENOTDIR ? EOPNOTSUPP : made.error()};
    TRY(InitOwner(t, *dir->inode(), **made));
    ASSIGN_OR_RETURN(vfs::FileRef file,
                     (*made)->Open(flags & ~(O_CLOEXEC | __O_TMPFILE | O_EXCL | O_TRUNC)));
    auto st = (*made)->Stat();
    file->set_dentry(
        vfs::Dentry::NewDeleted("#" + std::to_string(st.ok() ? st->st_ino : 0), dir, *made));
    return Long(t.fds().Add(std::move(file), (flags & O_CLOEXEC) != 0));
  }
  vfs::DentryRef d;
  bool created = false;
  if (flags & O_CREAT) {
    if (flags & O_DIRECTORY) return Errno{EINVAL};
    ASSIGN_OR_RETURN(vfs::ParentAndName pn, vfs::ResolveParent(t.fs(), start, path, creds));
    if (pn.name.empty() || pn.name == "." || pn.name == ".." || pn.must_be_dir)
      return Errno{EISDIR};
    auto existing = pn.parent->Child(pn.name);
    // O_CREAT follows a final symlink (unless O_EXCL or O_NOFOLLOW), and
    // creates the target of a dangling one (open(2)).
    for (int hops = 0; existing.ok() && (*existing)->inode()->IsSymlink() &&
                       !vfs::IsMountpoint(t.fs(), **existing) && !(flags & O_EXCL);
         hops++) {
      if (flags & O_NOFOLLOW) return Errno{ELOOP};
      if (hops >= vfs::kMaxSymlinks) return Errno{ELOOP};
      ASSIGN_OR_RETURN(vfs::DentryRef magic, (*existing)->inode()->FollowMagic());
      if (magic != nullptr) {  // /proc/self/fd/N: the open file itself
        existing = magic;
        break;
      }
      ASSIGN_OR_RETURN(std::string target, (*existing)->inode()->Readlink());
      ASSIGN_OR_RETURN(pn, vfs::ResolveParent(t.fs(), pn.parent, target, creds));
      if (pn.name.empty() || pn.name == "." || pn.name == ".." || pn.must_be_dir)
        return Errno{EISDIR};
      existing = pn.parent->Child(pn.name);
    }
    if (existing.ok()) {
      if (flags & O_EXCL) return Errno{EEXIST};
      d = *existing;
      while (vfs::DentryRef m = vfs::NamespaceOf(t.fs()).MountedOn(*d)) d = std::move(m);
    } else if (existing.error() != ENOENT) {
      return Errno{existing.error()};
    } else {
      // lookup_open(): no write access to the mount (EROFS) is checked
      // before may_o_create(): a new name needs write and search on the
      // directory; an existing file needs neither.
      TRY(vfs::CheckWritableMount(t.fs(), *pn.parent));
      TRY(vfs::MayCreate(creds, *pn.parent));
      ASSIGN_OR_RETURN(mode_t m, CreateMode(t, *pn.parent->inode(), mode & 07777));
      ASSIGN_OR_RETURN(vfs::InodeRef inode, pn.parent->inode()->Create(pn.name, m | S_IFREG));
      TRY(InitOwner(t, *pn.parent->inode(), *inode));
      pn.parent->AddChild(pn.name, inode);
      inotify::NotifyCreate(*pn.parent, pn.name, false);
      ASSIGN_OR_RETURN(d, pn.parent->Child(pn.name));
      created = true;
      NotifyDirectory(t, *pn.parent, DN_CREATE);
    }
  } else {
    ASSIGN_OR_RETURN(d, vfs::Resolve(t.fs(), start, path, !(flags & O_NOFOLLOW), creds));
    if (d->inode()->IsSymlink() && !(flags & O_PATH)) return Errno{ELOOP};
  }
  int acc = flags & O_ACCMODE;
  // A nameless file reached through /proc/self/fd (a pipe, the terminal):
  // the new descriptor shares its open file description.
  if (const vfs::FileRef& shared = d->magic_file(); shared != nullptr && !(flags & O_PATH)) {
    if ((acc != O_WRONLY && !shared->readable()) || (acc != O_RDONLY && !shared->writable()))
      return Errno{EACCES};
    return Long(t.fds().Add(shared, (flags & O_CLOEXEC) != 0));
  }
  vfs::InodeRef inode = d->inode();
  if ((flags & O_DIRECTORY) && !inode->IsDir()) return Errno{ENOTDIR};
  if (inode->IsDir() && !(flags & O_PATH) &&
      (acc != O_RDONLY || (flags & O_TRUNC) || (flags & O_CREAT)))
    return Errno{EISDIR};
  if (acc == O_ACCMODE && !(flags & O_PATH)) return Errno{EINVAL};
  const unsigned long mnt_flags = vfs::NamespaceOf(t.fs()).FlagsOf(*d);
  // may_open(): devices on a nodev mount cannot be opened, before any
  // permission check.
  if ((mnt_flags & vfs::MountNamespace::kNoDev) && !(flags & O_PATH) &&
      (inode->Type() == S_IFCHR || inode->Type() == S_IFBLK))
    return Errno{EACCES};
  // may_open(): a file this call created is opened without a check, as
  // Linux does, whatever mode it was given.
  if (!created) TRY(vfs::MayOpen(creds, *inode, flags));
  // do_dentry_open()'s mnt_want_write for regular files and directories
  // opened to write (special files are not written to the filesystem).
  const bool writes = !(flags & O_PATH) && (acc != O_RDONLY || (flags & O_TRUNC)) &&
                      (inode->IsRegular() || inode->IsDir());
  if (writes && (mnt_flags & vfs::MountNamespace::kReadOnly)) return Errno{EROFS};
  vfs::FileRef file;
  if (inode->Type() == S_IFIFO && !(flags & O_PATH)) {
    // A FIFO on any filesystem is a pipe of the sandbox's own.
    ASSIGN_OR_RETURN(file, pipe::OpenFifo(inode, flags));
  } else {
    ASSIGN_OR_RETURN(file, inode->Open(flags & ~O_CLOEXEC));
  }
  if (file->dentry() == nullptr) file->set_dentry(d);
  if (writes) file->set_mount_writer(vfs::NamespaceOf(t.fs()).WriterRef(*d));
  if (!(flags & O_PATH)) {
    // fsnotify_open, and fsnotify_close when the description goes.
    file->set_notify_close();
    inotify::NotifyFile(*file, IN_OPEN);
  }
  // Filesystems may truncate in Open already (tmpfs, overlay); this keeps
  // O_TRUNC right for those that do not, at the cost of a no-op there.
  if ((flags & O_TRUNC) && !created && inode->IsRegular() && acc != O_RDONLY) {
    vfs::SetAttr a;
    a.set_size = true;
    a.size = 0;
    TRY(file->inode()->SetAttributes(a));
    inotify::NotifyFile(*file, IN_MODIFY);  // handle_truncate's notify_change
  }
  if ((flags & O_TRUNC) && !created) TRY(DropPrivs(t, *file->inode()));
  return Long(t.fds().Add(std::move(file), (flags & O_CLOEXEC) != 0));
}

}  // namespace

Result<vfs::DentryRef> StartDir(Task& t, int dirfd) {
  if (dirfd == AT_FDCWD) return t.fs().cwd;
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(dirfd));
  if (f->dentry() == nullptr) return Errno{ENOTDIR};
  return f->dentry();
}

Result<vfs::DentryRef> ResolveAt(Task& t, int dirfd, const std::string& path, bool follow,
                                 bool empty_ok) {
  return ResolveAtWith(t, t.FsCreds(), dirfd, path, follow, empty_ok);
}

Result<vfs::DentryRef> ResolveAtWith(Task& t, const vfs::Creds& creds, int dirfd,
                                     const std::string& path, bool follow, bool empty_ok) {
  if (path.empty()) {
    if (!empty_ok) return Errno{ENOENT};
    if (dirfd == AT_FDCWD) return t.fs().cwd;
    ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(dirfd));
    if (f->dentry() == nullptr) return Errno{EBADF};
    return f->dentry();
  }
  ASSIGN_OR_RETURN(vfs::DentryRef start,
                   path[0] == '/' ? Result<vfs::DentryRef>(t.fs().root) : StartDir(t, dirfd));
  return vfs::Resolve(t.fs(), start, path, follow, creds);
}

Result<mode_t> CreateMode(Task& t, vfs::Inode& dir, mode_t mode) {
  mode &= ~t.fs().umask;
  if ((mode & (S_ISGID | S_IXGRP)) != (S_ISGID | S_IXGRP)) return mode;
  ASSIGN_OR_RETURN(struct stat dir_st, dir.Stat());
  return vfs::StripSgidForCreate(t.FsCreds(), dir_st, mode | S_IFREG) & 07777;
}

Status InitOwner(Task& t, vfs::Inode& dir, vfs::Inode& created) {
  vfs::Creds creds = t.FsCreds();
  // What every filesystem here gives a new inode already: uid 0, gid 0
  // unless the directory passes its own on.
  if (creds.fsuid == 0 && creds.fsgid == 0) return Ok();
  ASSIGN_OR_RETURN(struct stat dir_st, dir.Stat());
  ASSIGN_OR_RETURN(struct stat st, created.Stat());
  vfs::SetAttr attr;
  if (!vfs::NewInodeOwner(creds, dir_st, st, &attr)) return Ok();
  return created.SetAttributes(attr);
}

SyscallResult SysRead(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  if (!f->readable()) return Errno{EBADF};
  // A zero-length read still asks the file: a directory answers EISDIR, an
  // eventfd EINVAL, a pipe and a regular file 0.
  if (a.Size(2) == 0) {
    char none;
    return Long(f->Read(&none, 0));
  }
  return Notified(*f, ReadInto(t, f, a.Ptr(1), a.Size(2), false, 0), IN_ACCESS);
}

SyscallResult SysWrite(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  if (!f->writable()) return Errno{EBADF};
  if (a.Size(2) == 0) {
    char none = 0;
    return Long(f->Write(&none, 0));
  }
  return Notified(*f, RaiseSigpipe(t, WriteFrom(t, f, a.Ptr(1), a.Size(2), false, 0)), IN_MODIFY);
}

SyscallResult SysPread64(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  if (a.Long(3) < 0) return Errno{EINVAL};
  if (!f->readable()) return Errno{EBADF};
  if (f->inode()->Stream() || f->HostFd() >= 0) return Errno{ESPIPE};
  if (a.Size(2) == 0) return 0L;
  return Notified(*f, ReadInto(t, f, a.Ptr(1), a.Size(2), true, a.U(3)), IN_ACCESS);
}

SyscallResult SysPwrite64(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  if (a.Long(3) < 0) return Errno{EINVAL};
  if (!f->writable()) return Errno{EBADF};
  if (f->inode()->Stream() || f->HostFd() >= 0) return Errno{ESPIPE};
  if (a.Size(2) == 0) return 0L;
  return Notified(*f, WriteFrom(t, f, a.Ptr(1), a.Size(2), true, a.U(3)), IN_MODIFY);
}

namespace {

// The preadv2/pwritev2 flags of Linux 6.1 (RWF_NOAPPEND came in 6.9).
constexpr int kRwfKnown = RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND;

// readv, writev and their positional and flagged forms (do_readv/do_preadv
// and vfs_iter_read/write's checks). offset -1 with `positional` unset is
// the file's own offset.
Result<long> Vectored(Task& t, const Args& a, bool write, bool positional, int64_t offset, int rwf)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (rwf & ~kRwfKnown) return Errno{EOPNOTSUPP};
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  if (positional && offset < 0) return Errno{EINVAL};
  if (write ? !f->writable() : !f->readable()) return Errno{EBADF};
  ASSIGN_OR_RETURN(std::vector<IoVec> iov, CopyInIovecs(t, a.Ptr(1), a.Int(2)));
  if (positional && (f->inode()->Stream() || f->HostFd() >= 0 || f->inode()->Type() == S_IFIFO)) {
    return Errno{ESPIPE};
  }
  if (!write && f->inode()->IsDir()) return Errno{EISDIR};
  if (!positional && rwf == 0 && f->inode()->Type() == S_IFSOCK && f->HostFd() < 0) {
    return SocketVectored(t, a.Int(0), iov, write);
  }
  if (rwf & RWF_NOWAIT) {
    // Regular files here answer as tmpfs does; anything that could block
    // fails with EAGAIN instead of waiting.
    if (f->inode()->IsRegular()) return Errno{EOPNOTSUPP};
    const uint32_t want = write ? POLLOUT : POLLIN;
    if (!(f->Readiness(want) & (want | POLLHUP | POLLERR))) return Errno{EAGAIN};
  }
  uint64_t pos = static_cast<uint64_t>(offset);
  if (write && (rwf & RWF_APPEND) && f->inode()->IsRegular()) {
    // At the end, as with O_APPEND; the file offset moves only when it was used.
    ASSIGN_OR_RETURN(struct stat st, f->inode()->Stat());
    if (positional) {
      pos = static_cast<uint64_t>(st.st_size);
    } else {
      TRY(f->Seek(0, SEEK_END));
    }
  }
  long total = 0;
  for (auto& v : iov) {
    if (v.len == 0) continue;
    auto r = write ? WriteFrom(t, f, v.base, v.len, positional, pos + total)
                   : ReadInto(t, f, v.base, v.len, positional, pos + total);
    if (!r.ok()) {
      if (total > 0) break;
      return write ? RaiseSigpipe(t, r) : r;
    }
    total += *r;
    if (static_cast<uint64_t>(*r) < v.len) break;
  }
  return Notified(*f, total, write ? IN_MODIFY : IN_ACCESS);
}

}  // namespace

SyscallResult SysReadv(Task& t, const Args& a) { return Vectored(t, a, false, false, -1, 0); }
SyscallResult SysWritev(Task& t, const Args& a) { return Vectored(t, a, true, false, -1, 0); }
SyscallResult SysPreadv(Task& t, const Args& a) {
  return Vectored(t, a, false, true, a.Long(3), 0);
}
SyscallResult SysPwritev(Task& t, const Args& a) {
  return Vectored(t, a, true, true, a.Long(3), 0);
}
// preadv2/pwritev2: offset -1 is the file's offset, as for readv/writev.
SyscallResult SysPreadv2(Task& t, const Args& a) {
  return Vectored(t, a, false, a.Long(3) != -1, a.Long(3), a.Int(5));
}
SyscallResult SysPwritev2(Task& t, const Args& a) {
  return Vectored(t, a, true, a.Long(3) != -1, a.Long(3), a.Int(5));
}

SyscallResult SysOpen(Task& t, const Args& a) {
  return OpenAt(t, AT_FDCWD, a.Ptr(0), a.Int(1), static_cast<mode_t>(a.U(2)));
}

SyscallResult SysOpenat(Task& t, const Args& a) {
  return OpenAt(t, a.Int(0), a.Ptr(1), a.Int(2), static_cast<mode_t>(a.U(3)));
}

SyscallResult SysCreat(Task& t, const Args& a) {
  return OpenAt(t, AT_FDCWD, a.Ptr(0), O_CREAT | O_WRONLY | O_TRUNC, static_cast<mode_t>(a.U(1)));
}

SyscallResult SysClose(Task& t, const Args& a) {
  TRY(t.fds().Remove(a.Int(0)));
  return 0L;
}

SyscallResult SysLseek(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  if (f->HostFd() >= 0) return Errno{ESPIPE};
  ASSIGN_OR_RETURN(off_t r, f->Seek(static_cast<off_t>(a.Long(1)), a.Int(2)));
  return static_cast<long>(r);
}

SyscallResult SysDup(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
  return Long(t.fds().Add(std::move(f), false));
}

SyscallResult SysDup2(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
  if (a.Int(0) == a.Int(1)) return static_cast<long>(a.Int(1));
  TRY(t.fds().Set(a.Int(1), std::move(f), false));
  return static_cast<long>(a.Int(1));
}

SyscallResult SysDup3(Task& t, const Args& a) {
  if (a.Int(2) & ~O_CLOEXEC) return Errno{EINVAL};
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
  if (a.Int(0) == a.Int(1)) return Errno{EINVAL};
  TRY(t.fds().Set(a.Int(1), std::move(f), (a.Int(2) & O_CLOEXEC) != 0));
  return static_cast<long>(a.Int(1));
}

namespace {

// Whether a task, process, process group or session has this id (Linux's
// find_vpid(), which f_setown and f_setown_ex ask: any live struct pid).
bool IdInUse(Kernel& k, int id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu) {
  if (k.FindTask(id) != nullptr) return true;
  for (int pid : k.Pids()) {
    std::shared_ptr<Task> p = k.FindTask(pid);
    if (p != nullptr && (p->tg().pgid == id || p->tg().sid == id)) return true;
  }
  return false;
}

// F_SETOWN (f_setown): a negative argument is a process group.
Result<long> SetOwner(Task& t, vfs::File& f, int who) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  vfs::File::Owner o{F_OWNER_PID, who, t.uid, t.euid};
  if (who < 0) {
    if (who == INT_MIN) return Errno{EINVAL};
    o = {F_OWNER_PGRP, -who, t.uid, t.euid};
  }
  if (o.id != 0 && !IdInUse(t.kernel(), o.id)) return Errno{ESRCH};
  if (o.id != 0) TRY(StartOwnerSignals(t.kernel()));  // SIGURG comes from its thread
  f.set_owner(o);
  return 0L;
}

// F_SETOWN_EX (f_setown_ex): the type is checked before the id.
Result<long> SetOwnerEx(Task& t, vfs::File& f, uintptr_t addr)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  f_owner_ex ex;
  TRY(t.CopyInObj(addr, &ex));
  if (ex.type != F_OWNER_TID && ex.type != F_OWNER_PID && ex.type != F_OWNER_PGRP) {
    return Errno{EINVAL};
  }
  if (ex.pid != 0 && !IdInUse(t.kernel(), ex.pid)) return Errno{ESRCH};
  if (ex.pid != 0) TRY(StartOwnerSignals(t.kernel()));
  f.set_owner({static_cast<int>(ex.type), ex.pid, t.uid, t.euid});
  return 0L;
}

// F_SETLEASE (fcntl_setlease, vfs_setlease, generic_setlease): the owner of
// a regular file (or CAP_LEASE) records a read or write lease. Nothing in
// one sandbox breaks it yet (another opener would), so it is a record that
// F_GETLEASE reports.
Result<long> SetLease(Task& t, vfs::File& f, long type)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (type != F_RDLCK && type != F_WRLCK && type != F_UNLCK) return Errno{EINVAL};
  ASSIGN_OR_RETURN(struct stat st, f.inode()->Stat());
  if (t.FsCreds().fsuid != st.st_uid && !t.Capable(CAP_LEASE)) return Errno{EACCES};
  if (!S_ISREG(st.st_mode)) return Errno{EINVAL};
  // A write lease needs a writable description (Linux: no other opener).
  if (type == F_WRLCK && !f.writable()) return Errno{EAGAIN};
  f.set_lease(static_cast<int>(type));
  return 0L;
}

// dnotify (F_NOTIFY): the directories watched, by dentry. Each watch is
// one open file description's, made through descriptor fd of process tgid;
// it lasts while that descriptor still names the description (Linux drops
// it when the descriptor is closed, dnotify_flush). Guarded by the big
// kernel lock, as every handler runs under it.
struct DirWatch {
  std::weak_ptr<vfs::File> file;
  int fd = -1;
  int tgid = 0;
  uint32_t mask = 0;  // DN_* events, and DN_MULTISHOT
};
std::map<const vfs::Dentry*, std::vector<DirWatch>>& DirWatches() {
  static auto* watches = new std::map<const vfs::Dentry*, std::vector<DirWatch>>();
  return *watches;
}

// Whether watch w still stands: its description lives, is still the
// directory's, and the descriptor still names it.
bool WatchStands(Kernel& k, const DirWatch& w, const vfs::Dentry* dir, vfs::FileRef* file)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu) {
  *file = w.file.lock();
  if (*file == nullptr || (*file)->dentry().get() != dir) return false;
  std::shared_ptr<Task> owner = k.FindTask(w.tgid);
  if (owner == nullptr || owner->tg().zombie) return false;
  Result<vfs::FileRef> now = owner->fds().Get(w.fd);
  return now.ok() && *now == *file;
}

// The signal to the file's owner (F_SETOWN), as sigio_perm allows it.
void SignalOwnerWith(Kernel& k, vfs::File& f, const siginfo_t& info)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu) {
  const vfs::File::Owner& o = f.owner();
  if (o.id == 0) return;
  // sigio_perm: the owner's setter, root or one of the target's ids.
  auto may = [&o](const Task& p) {
    return o.euid == 0 || o.euid == p.suid || o.euid == p.uid || o.uid == p.suid || o.uid == p.uid;
  };
  if (o.type == F_OWNER_PGRP) {
    for (int pid : k.Pids()) {
      std::shared_ptr<Task> p = k.FindTask(pid);
      if (p == nullptr) continue;
      p->kernel().mu.AssertHeld();  // one kernel, one lock
      if (p->tg().pgid == o.id && !p->tg().zombie && may(*p)) p->SendProcessSignal(info);
    }
    return;
  }
  std::shared_ptr<Task> target = k.FindTask(o.id);
  if (target == nullptr || !may(*target)) return;
  target->kernel().mu.AssertHeld();  // one kernel, one lock
  if (o.type == F_OWNER_TID) {
    target->SendSignal(info);
  } else {
    target->SendProcessSignal(info);
  }
}

}  // namespace

// send_sigio(): the signal F_SETSIG chose (with si_code, its band and
// si_fd), or a plain SIGIO, to the file's owner.
void SignalOwner(Kernel& k, vfs::File& f, int fd, int code, long band) {
  siginfo_t info{};
  if (f.owner_signal() != 0) {
    info.si_signo = f.owner_signal();
    info.si_code = code;
    info.si_band = band;
    info.si_fd = fd;
  } else {
    info.si_signo = SIGIO;
    info.si_code = SI_KERNEL;
  }
  SignalOwnerWith(k, f, info);
}

void SignalOwnerUrgent(Kernel& k, vfs::File& f) {
  siginfo_t info{};
  info.si_signo = SIGURG;
  info.si_code = SI_KERNEL;
  SignalOwnerWith(k, f, info);
}

namespace {

// fcntl_dirnotify(): events DN_* (none, but for DN_MULTISHOT, drops the
// watch); the caller's process becomes the file's owner.
Result<long> DirNotify(Task& t, const vfs::FileRef& f, int fd, unsigned long arg)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  auto& all = DirWatches();
  const vfs::Dentry* dir = f->dentry().get();
  auto drop = [&] {
    auto it = all.find(dir);
    if (it == all.end()) return;
    std::erase_if(it->second, [&](const DirWatch& w) { return w.file.lock() == f; });
    if (it->second.empty()) all.erase(it);
  };
  if ((arg & ~static_cast<unsigned long>(DN_MULTISHOT)) == 0) {
    drop();
    return 0L;
  }
  if (!f->inode()->IsDir() || dir == nullptr) return Errno{ENOTDIR};
  auto& list = all[dir];
  uint32_t mask = static_cast<uint32_t>(arg);
  for (auto it = list.begin(); it != list.end(); ++it) {
    if (it->file.lock() == f) {
      mask |= it->mask;  // attach_dn(): the same description adds events
      list.erase(it);
      break;
    }
  }
  list.push_back(DirWatch{f, fd, t.tgid(), mask});
  f->set_owner({F_OWNER_PID, t.tgid(), t.uid, t.euid});
  return 0L;
}

}  // namespace

void NotifyDirectory(Task& t, const vfs::Dentry& dir, uint32_t event) {
  auto& all = DirWatches();
  if (all.empty()) return;
  auto it = all.find(&dir);
  if (it == all.end()) return;
  std::vector<std::pair<vfs::FileRef, int>> to_signal;
  std::vector<DirWatch> kept;
  for (const DirWatch& w : it->second) {
    vfs::FileRef f;
    if (!WatchStands(t.kernel(), w, &dir, &f)) continue;
    if (!(w.mask & event)) {
      kept.push_back(w);
      continue;
    }
    to_signal.emplace_back(f, w.fd);
    if (w.mask & DN_MULTISHOT) kept.push_back(w);  // else one event, as dnotify
  }
  if (kept.empty()) {
    all.erase(it);
  } else {
    it->second = std::move(kept);
  }
  for (auto& [f, fd] : to_signal) {
    SignalOwner(t.kernel(), *f, fd, POLL_MSG, POLLIN | POLLRDNORM | POLLMSG);
  }
}

SyscallResult SysFcntl(Task& t, const Args& a) {
  int fd = a.Int(0);
  ASSIGN_OR_RETURN(FdTable::Entry * e, t.fds().GetEntry(fd));
  // do_fcntl(): an O_PATH descriptor serves only the descriptor commands
  // and F_GETFL (check_fcntl_cmd); anything else is EBADF, even unknown.
  if (e->file->flags() & O_PATH) {
    const int cmd = a.Int(1);
    if (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC && cmd != F_GETFD && cmd != F_SETFD &&
        cmd != F_GETFL) {
      return Errno{EBADF};
    }
  }
  switch (a.Int(1)) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
      return Long(t.fds().Add(e->file, a.Int(1) == F_DUPFD_CLOEXEC, a.Int(2)));
    case F_GETFD:
      return e->cloexec ? long{FD_CLOEXEC} : 0L;
    case F_SETFD:
      e->cloexec = (a.Int(2) & FD_CLOEXEC) != 0;
      return 0L;
    case F_GETFL:
      // do_dentry_open() drops the flags that only mean something to
      // open itself.
      return static_cast<long>(e->file->flags() &
                               ~(O_CLOEXEC | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC));
    case F_SETFL: {
      const bool was_async = e->file->flags() & O_ASYNC;
      e->file->set_status_flags(a.Int(2));
      const bool async = e->file->flags() & O_ASYNC;
      if (async != was_async) TRY(SetAsync(t, e->file, fd, async));
      return 0L;
    }
    case F_GET_SEALS:
      return Long(e->file->inode()->Seals());
    case F_ADD_SEALS: {
      // memfd_add_seals(): a file without seals, then a read-only fd, then
      // unknown bits.
      TRY(e->file->inode()->Seals());
      if (!e->file->writable()) return Errno{EPERM};
      constexpr int kAllSeals =
          F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
      if (a.Int(2) & ~kAllSeals) return Errno{EINVAL};
      TRY(e->file->inode()->AddSeals(a.Int(2)));
      return 0L;
    }
    case F_GETPIPE_SZ:
      return pipe::Capacity(*e->file);
    case F_SETPIPE_SZ:
      return pipe::SetCapacity(*e->file, a.Long(2));
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW: {
      struct flock fl;
      TRY(t.CopyInObj(a.Ptr(2), &fl));
      vfs::FileRef f = e->file;  // the entry may go while the task waits
      ASSIGN_OR_RETURN(long r, file_locks::Fcntl(t, f, a.Int(1), &fl));
      if (a.Int(1) == F_GETLK || a.Int(1) == F_OFD_GETLK) TRY(t.CopyOutObj(a.Ptr(2), fl));
      return r;
    }
    case F_GETOWN: {
      const vfs::File::Owner& o = e->file->owner();
      return static_cast<long>(o.type == F_OWNER_PGRP ? -o.id : o.id);
    }
    case F_SETOWN:
      return SetOwner(t, *e->file, a.Int(2));
    case F_GETOWN_EX: {
      const vfs::File::Owner& o = e->file->owner();
      f_owner_ex ex{static_cast<__pid_type>(o.type), o.id};
      TRY(t.CopyOutObj(a.Ptr(2), ex));
      return 0L;
    }
    case F_SETOWN_EX:
      return SetOwnerEx(t, *e->file, a.Ptr(2));
    case F_GETSIG:
      return static_cast<long>(e->file->owner_signal());
    case F_SETSIG:
      // 0 restores SIGIO; anything past the last signal is EINVAL.
      if (a.U(2) > static_cast<uint64_t>(kMaxSignal)) return Errno{EINVAL};
      e->file->set_owner_signal(static_cast<int>(a.U(2)));
      return 0L;
    case F_GETLEASE:
      return static_cast<long>(e->file->lease());
    case F_SETLEASE:
      return SetLease(t, *e->file, a.Long(2));
    case F_NOTIFY:
      return DirNotify(t, e->file, fd, a.U(2));
    default:
      return Errno{EINVAL};
  }
}

// flock(2): whole-file advisory locks of the open file description.
SyscallResult SysFlock(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  return file_locks::Flock(t, f, a.Int(1));
}

SyscallResult SysIoctl(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(FdTable::Entry * e, t.fds().GetEntry(a.Int(0)));
  if (e->file->flags() & O_PATH) return Errno{EBADF};  // fdget(), as every ioctl
  unsigned long cmd = a.U(1);
  switch (cmd) {
    case FIOCLEX:
      e->cloexec = true;
      return 0L;
    case FIONCLEX:
      e->cloexec = false;
      return 0L;
    case FIONBIO: {
      // Any file: the same as F_SETFL with or without O_NONBLOCK (do_vfs_ioctl).
      int on;
      TRY(t.CopyInObj(a.Ptr(2), &on));
      int fl = e->file->flags();
      e->file->set_status_flags(on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
      return 0L;
    }
    case FIOASYNC: {
      // ioctl_fioasync: O_ASYNC for files that can signal (sockets, pipes,
      // terminals); ENOTTY for the rest. (Sockets raise SIGIO: fasync.cc;
      // pipes and terminals keep the flag.)
      const mode_t type = e->file->inode()->Type();
      if (type != S_IFSOCK && type != S_IFIFO && type != S_IFCHR) return Errno{ENOTTY};
      int on;
      TRY(t.CopyInObj(a.Ptr(2), &on));
      int fl = e->file->flags();
      e->file->set_status_flags(on ? (fl | O_ASYNC) : (fl & ~O_ASYNC));
      if (((fl & O_ASYNC) != 0) != (on != 0)) TRY(SetAsync(t, e->file, a.Int(0), on != 0));
      return 0L;
    }
    case FIONREAD:
      if (e->file->inode()->IsRegular()) {
        // Bytes between the offset and the end of the file.
        ASSIGN_OR_RETURN(struct stat st, e->file->Stat());
        ASSIGN_OR_RETURN(off_t pos, e->file->Seek(0, SEEK_CUR));
        int n = static_cast<int>(std::max<off_t>(0, st.st_size - pos));
        TRY(t.CopyOutObj(a.Ptr(2), n));
        return 0L;
      }
      return e->file->Ioctl(t.mm(), cmd, a.Ptr(2));
    default:
      return e->file->Ioctl(t.mm(), cmd, a.Ptr(2));
  }
}

SyscallResult SysFsync(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  // What mappings changed goes to the file (a read-write volume's host
  // file); every other byte already lives in the sentry or on the host.
  TRY(f->inode()->Sync(0, UINT64_MAX));
  return 0L;
}

// fallocate(2), vfs_fallocate()'s checks in its order.
SyscallResult SysFallocate(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  const int mode = a.Int(1);
  const int64_t offset = a.Long(2), len = a.Long(3);
  if (offset < 0 || len <= 0) return Errno{EINVAL};
  constexpr int kKnown = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE |
                         FALLOC_FL_ZERO_RANGE | FALLOC_FL_INSERT_RANGE | FALLOC_FL_UNSHARE_RANGE;
  if (mode & ~kKnown) return Errno{EOPNOTSUPP};
  if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE)) return Errno{EOPNOTSUPP};
  if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) return Errno{EOPNOTSUPP};
  if ((mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) &&
      (mode & ~(FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE))) {
    return Errno{EINVAL};
  }
  if (!f->writable() || (f->flags() & O_PATH)) return Errno{EBADF};
  const mode_t type = f->inode()->Type();
  if (type == S_IFIFO) return Errno{ESPIPE};
  if (type == S_IFDIR) return Errno{EISDIR};
  if (type != S_IFREG) return Errno{ENODEV};
  if (static_cast<uint64_t>(offset) + static_cast<uint64_t>(len) > uint64_t{INT64_MAX}) {
    return Errno{EFBIG};
  }
  TRY(f->inode()->Allocate(mode, static_cast<uint64_t>(offset), static_cast<uint64_t>(len)));
  inotify::NotifyFile(*f, IN_MODIFY);
  return 0L;
}

// Nothing the sandbox writes waits in a cache for the host: its files live
// in sentry memory, and volumes are read-only.
SyscallResult SysSync(Task& t, const Args& a) { return 0L; }
SyscallResult SysSyncfs(Task& t, const Args& a) {
  TRY(GetFile(t, a.Int(0)));
  return 0L;
}
SyscallResult SysSyncFileRange(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
  if (f->flags() & O_PATH) return Errno{EBADF};
  const int64_t offset = a.Long(1), nbytes = a.Long(2);
  const unsigned flags = static_cast<unsigned>(a.U(3));
  if (flags & ~(SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)) {
    return Errno{EINVAL};
  }
  if (offset < 0 || nbytes < 0 || nbytes > INT64_MAX - offset) return Errno{EINVAL};
  const mode_t type = f->inode()->Type();
  if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK) return Errno{ESPIPE};
  return 0L;
}

SyscallResult SysFadvise64(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  if (f->HostFd() >= 0) return Errno{ESPIPE};
  if (a.Int(3) < POSIX_FADV_NORMAL || a.Int(3) > POSIX_FADV_NOREUSE) return Errno{EINVAL};
  return 0L;  // advice only
}

SyscallResult SysFtruncate(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  if (a.Long(1) < 0) return Errno{EINVAL};
  if (!f->writable() || !f->inode()->IsRegular()) return Errno{EINVAL};
  TRY(DropPrivs(t, *f->inode()));
  TRY(FsizeTruncate(t, *f->inode(), a.U(1)));
  vfs::SetAttr attr;
  attr.set_size = true;
  attr.size = a.U(1);
  TRY(f->inode()->SetAttributes(attr));
  inotify::NotifyFile(*f, IN_MODIFY);
  return 0L;
}

SyscallResult SysTruncate(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(std::string path, t.CopyInPath(a.Ptr(0)));
  if (a.Long(1) < 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(vfs::DentryRef d, ResolveAt(t, AT_FDCWD, path, true, false));
  if (d->inode()->IsDir()) return Errno{EISDIR};
  if (!d->inode()->IsRegular()) return Errno{EINVAL};
  TRY(vfs::CheckWritableMount(t.fs(), *d));  // mnt_want_write(): EROFS
  // vfs_truncate(): write permission on the file.
  TRY(vfs::CheckPermission(t.FsCreds(), *d->inode(), vfs::kMayWrite));
  // Open for writing first, so that a lower (read-only) file is copied up.
  ASSIGN_OR_RETURN(vfs::FileRef f, d->inode()->Open(O_WRONLY));
  TRY(DropPrivs(t, *f->inode()));
  TRY(FsizeTruncate(t, *f->inode(), a.U(1)));
  vfs::SetAttr attr;
  attr.set_size = true;
  attr.size = a.U(1);
  TRY(f->inode()->SetAttributes(attr));
  // The path's object, not the file opened for it (which has no name of its own).
  inotify::NotifyDentry(*d, IN_MODIFY);
  return 0L;
}

namespace {

// getdents64(2)'s struct linux_dirent64 {ino, off, reclen, type, name}, or
// legacy getdents(2)'s struct linux_dirent {ino, off, reclen, name, 0,
// type}, whose type is the record's last byte.
Result<long> Getdents(Task& t, const Args& a, bool legacy)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  ASSIGN_OR_RETURN(vfs::FileRef f, GetFile(t, a.Int(0)));
  if (!f->inode()->IsDir()) return Errno{ENOTDIR};
  // iterate_dir(): a directory that was removed (IS_DEADDIR) lists nothing,
  // not even "." and "..".
  if (f->dentry() != nullptr && f->dentry()->deleted()) return Errno{ENOENT};
  size_t cap = std::min<size_t>(a.Size(2), 1 << 20);
  std::vector<char> out;
  out.reserve(cap);
  auto reclen = [legacy](const vfs::Dirent& e) {
    return ((legacy ? 18 + e.name.size() + 2 : 19 + e.name.size() + 1) + 7) & ~size_t{7};
  };
  size_t used = 0;
  bool refused = false;
  ASSIGN_OR_RETURN(std::vector<vfs::Dirent> batch,
                   f->ReadDirBatch(SIZE_MAX, [&](const vfs::Dirent& e) {
                     if (used + reclen(e) > cap) {
                       refused = true;
                       return false;
                     }
                     used += reclen(e);
                     return true;
                   }));
  // iterate_dir reports IN_ACCESS whatever the listing returned.
  inotify::NotifyFile(*f, IN_ACCESS);
  // Linux: EINVAL when the buffer cannot hold the next entry at all.
  if (batch.empty() && refused) return Errno{EINVAL};
  ASSIGN_OR_RETURN(off_t pos, f->Seek(0, SEEK_CUR));
  long next = static_cast<long>(pos) - static_cast<long>(batch.size());
  for (auto& e : batch) {
    size_t len = reclen(e);
    size_t at = out.size();
    out.resize(at + len, '\0');
    uint64_t ino = e.ino;
    int64_t off = ++next;
    uint16_t rl = static_cast<uint16_t>(len);
    memcpy(&out[at], &ino, 8);
    memcpy(&out[at + 8], &off, 8);
    memcpy(&out[at + 16], &rl, 2);
    if (legacy) {
      memcpy(&out[at + 18], e.name.data(), e.name.size());
      out[at + len - 1] = static_cast<char>(e.type);
    } else {
      out[at + 18] = static_cast<char>(e.type);
      memcpy(&out[at + 19], e.name.data(), e.name.size());
    }
  }
  if (!out.empty() && !t.CopyOut(a.Ptr(1), out.data(), out.size()).ok()) {
    // Linux fills the buffer as it goes and fails on its first entry: the
    // entries not given stay to be read.
    TRY(f->Seek(pos - static_cast<off_t>(batch.size()), SEEK_SET));
    return Errno{EFAULT};
  }
  return static_cast<long>(out.size());
}

}  // namespace

SyscallResult SysGetdents64(Task& t, const Args& a) { return Getdents(t, a, false); }
SyscallResult SysGetdents(Task& t, const Args& a) { return Getdents(t, a, true); }

SyscallResult SysSendfile(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef out, GetFile(t, a.Int(0)));
  ASSIGN_OR_RETURN(vfs::FileRef in, GetFile(t, a.Int(1)));
  if (!in->readable() || !out->writable()) return Errno{EBADF};
  // The source must be splice-able: a regular file or a block device (Linux
  // answers EINVAL for pipes, eventfds, sockets and the like).
  mode_t in_type = in->inode()->Type();
  if (in_type != S_IFREG && in_type != S_IFBLK) return Errno{EINVAL};
  if (out->flags() & O_APPEND) return Errno{EINVAL};
  size_t n = std::min(a.Size(3), kMaxRw);
  if (n > 0) TRY(DropPrivs(t, *out->inode()));
  int64_t off = 0;
  bool use_off = a.Ptr(2) != 0;
  if (use_off) {
    TRY(t.CopyInObj(a.Ptr(2), &off));
    if (off < 0) return Errno{EINVAL};
  }
  // Not zeroed: every byte used is written first.
  const size_t cap = std::min(n, kMaxChunk);
  auto buf = std::make_unique_for_overwrite<char[]>(cap);
  size_t done = 0;
  while (done < n) {
    // A long copy stops for a signal (do_splice_direct checks between
    // chunks): what was copied so far is the result.
    if (t.SignalPending()) {
      if (done) break;
      return Errno{kERestartSys};
    }
    const size_t chunk = std::min(n - done, cap);
    Result<size_t> room = FsizeLimit(t, *out, std::nullopt, chunk);
    if (!room.ok()) {
      if (done) break;
      return Errno{room.error()};
    }
    size_t want = *room;
    Result<size_t> r = use_off ? in->PRead(buf.get(), want, static_cast<uint64_t>(off) + done)
                               : in->Read(buf.get(), want);
    if (!r.ok()) {
      if (done) break;
      return Errno{r.error()};
    }
    if (*r == 0) break;
    auto w = out->Write(buf.get(), *r);
    if (!w.ok()) {
      if (done) break;
      return Errno{w.error()};
    }
    done += *w;
    if (*w < *r || want < chunk) break;  // short, or cut at RLIMIT_FSIZE
  }
  if (done > 0) {
    inotify::NotifyFile(*in, IN_ACCESS);
    inotify::NotifyFile(*out, IN_MODIFY);
  }
  if (use_off) {
    off += static_cast<int64_t>(done);
    TRY(t.CopyOutObj(a.Ptr(2), off));
  }
  return static_cast<long>(done);
}

}  // namespace husk::syscalls
