// The in-kernel copies: splice(2) between a pipe and a file or two pipes,
// tee(2) between two pipes, vmsplice(2) between a pipe and user memory, and
// copy_file_range(2) between two regular files. Checks come in the order of
// fs/splice.c and fs/read_write.c (Linux 6.1). The pipe side waits and moves
// data through pipe::Drain, Fill, Move and Tee; the file side reads and
// writes as read(2) and write(2) do, in chunks of at most 64 KiB, and a short
// transfer ends the call with what it moved. sendfile(2) is in sys_file.cc.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "sentry/kernel/inotify.h"
#include "sentry/kernel/pipe.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

// SPLICE_F_ALL: what splice, tee and vmsplice accept; other bits are EINVAL.
constexpr unsigned kSpliceKnown = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT;
constexpr uint64_t kMaxRw = 0x7ffff000;  // MAX_RW_COUNT
constexpr size_t kChunk = pipe::kSpliceChunk;

// Whether f has positions (FMODE_PREAD and FMODE_PWRITE on Linux): not a
// stream (a pipe, a character device, an anonymous file) nor a host
// descriptor, whose offsets are the host's.
bool Positional(vfs::File& f) { return !f.inode()->Stream() && f.HostFd() < 0; }

// Whether f's file operations splice (->splice_read, ->splice_write): regular
// files and devices do, and host stdio is read and written as it is; a
// directory or an anonymous file (eventfd, epoll, timerfd, ...) is EINVAL.
bool Spliceable(vfs::File& f) {
  if (f.HostFd() >= 0) return true;
  switch (f.inode()->Type()) {
    case S_IFREG:
    case S_IFBLK:
    case S_IFCHR:
    case S_IFSOCK:
      return true;
    default:
      return false;
  }
}

// The file offset, for a file that has one (f_pos; 0 for the others).
int64_t FilePos(vfs::File& f) {
  if (!Positional(f)) return 0;
  Result<off_t> pos = f.Seek(0, SEEK_CUR);
  return pos.ok() ? static_cast<int64_t>(*pos) : 0;
}

// rw_verify_area for a file with signed offsets: a count negative as an
// ssize_t, a negative position, or one the count carries past the largest
// loff_t is EINVAL.
Status VerifyArea(int64_t pos, uint64_t count) {
  if (static_cast<int64_t>(count) < 0 || pos < 0) return Errno{EINVAL};
  if (static_cast<int64_t>(static_cast<uint64_t>(pos) + count) < 0) return Errno{EINVAL};
  return Ok();
}

// An loff_t the caller points at (nullopt for a null pointer); EFAULT.
Result<std::optional<int64_t>> ReadOffset(Task& t, uintptr_t addr) {
  if (addr == 0) return std::optional<int64_t>();
  int64_t off = 0;
  if (!t.CopyInObj(addr, &off).ok()) return Errno{EFAULT};
  return std::optional<int64_t>(off);
}

// Result<size_t> as a syscall's value; EPIPE raises SIGPIPE as a write to a
// pipe without readers does (wait_for_space, opipe_prep, link_pipe).
Result<long> Finish(Task& t, const Result<size_t>& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (r.ok()) return static_cast<long>(*r);
  if (r.error() == EPIPE) RaiseOnSelf(t, SIGPIPE);
  return Errno{r.error()};
}

// splice from the pipe `in` to the file `out` (do_splice's ipipe branch,
// iter_file_splice_write): written at *off (advanced by what was written)
// or at the file offset.
Result<size_t> PipeToFile(Task& t, vfs::File& in, vfs::File& out, std::optional<int64_t>& off,
                          size_t len, unsigned flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (off && !Positional(out)) return Errno{EINVAL};
  if (out.flags() & O_APPEND) return Errno{EINVAL};
  const int64_t pos = off ? *off : FilePos(out);
  TRY(VerifyArea(pos, len));
  const bool nonblock = (flags & SPLICE_F_NONBLOCK) || (in.flags() & O_NONBLOCK);
  if (!Spliceable(out)) return Errno{EINVAL};
  uint64_t written = 0;
  bool privs_dropped = false;
  pipe::Sink sink = [&](const char* data, size_t n)
                        ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) -> Result<size_t> {
    const std::optional<uint64_t> at =
        off ? std::optional<uint64_t>(static_cast<uint64_t>(*off) + written) : std::nullopt;
    // What vfs_iter_write checks on each write: RLIMIT_FSIZE (a chunk cut
    // there ends the splice), and the set-id bits a write clears.
    ASSIGN_OR_RETURN(size_t room, FsizeLimit(t, out, at, n));
    if (!privs_dropped) {
      TRY(DropPrivs(t, *out.inode()));
      privs_dropped = true;
    }
    TRY(WaitHostReady(t, out, POLLOUT));
    Result<size_t> w = at ? out.PWrite(data, room, *at) : out.Write(data, room);
    if (w.ok()) written += *w;
    return w;
  };
  ASSIGN_OR_RETURN(size_t done, pipe::Drain(in, std::min<uint64_t>(len, kMaxRw), nonblock, sink));
  if (off) *off += static_cast<int64_t>(done);
  return done;
}

// splice from the file `in` into the pipe `out` (do_splice's opipe branch,
// splice_file_to_pipe): read from *off (advanced) or the file offset, no
// more than the pipe's free buffers hold.
Result<size_t> FileToPipe(Task& t, vfs::File& in, vfs::File& out, std::optional<int64_t>& off,
                          size_t len, unsigned flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  const bool positional = Positional(in);
  if (off && !positional) return Errno{EINVAL};
  const int64_t pos = off ? *off : FilePos(in);
  const bool nonblock = (flags & SPLICE_F_NONBLOCK) || (out.flags() & O_NONBLOCK);
  // do_splice_to's checks, with the count as the pipe could take it at most.
  TRY(VerifyArea(pos, std::min<uint64_t>(len, pipe::kMaxCapacity)));
  if (!Spliceable(in)) return Errno{EINVAL};
  uint64_t got = 0;
  pipe::Source source = [&](char* buf, size_t n)
                            ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) -> Result<size_t> {
    if (!positional) {
      // A stream gives what it has once: asking again could wait for more.
      if (got > 0) return size_t{0};
      TRY(WaitHostReady(t, in, POLLIN));
    }
    Result<size_t> r = off ? in.PRead(buf, n, static_cast<uint64_t>(*off) + got) : in.Read(buf, n);
    if (r.ok()) got += *r;
    return r;
  };
  ASSIGN_OR_RETURN(size_t done, pipe::Fill(out, std::min<uint64_t>(len, kMaxRw), nonblock, source));
  if (off) *off = pos + static_cast<int64_t>(done);
  return done;
}

// A cursor over the iovecs of a vmsplice: the bytes of user memory they
// name, in order.
class IovCursor {
 public:
  IovCursor(Task& t, std::vector<IoVec> iov) : t_(t), iov_(std::move(iov)) {}

  uint64_t total() const {
    uint64_t n = 0;
    for (const IoVec& v : iov_) n += v.len;
    return n;
  }
  // Copies the next n bytes of user memory to buf (In) or from buf to it
  // (Out); a fault ends the copy there: what was copied, or EFAULT.
  Result<size_t> In(char* buf, size_t n) {
    return Walk(n,
                [&](uint64_t addr, size_t at, size_t k) { return t_.CopyIn(addr, buf + at, k); });
  }
  Result<size_t> Out(const char* buf, size_t n) {
    return Walk(n,
                [&](uint64_t addr, size_t at, size_t k) { return t_.CopyOut(addr, buf + at, k); });
  }

 private:
  template <typename Op>
  Result<size_t> Walk(size_t n, Op op) {
    size_t done = 0;
    while (done < n && seg_ < iov_.size()) {
      const IoVec& v = iov_[seg_];
      const size_t k = std::min<uint64_t>(n - done, v.len - seg_off_);
      if (k > 0 && !op(v.base + seg_off_, done, k).ok()) {
        if (done > 0) return done;
        return Errno{EFAULT};
      }
      done += k;
      seg_off_ += k;
      if (seg_off_ == v.len) {
        seg_++;
        seg_off_ = 0;
      }
    }
    return done;
  }

  Task& t_;
  std::vector<IoVec> iov_;
  size_t seg_ = 0;
  uint64_t seg_off_ = 0;
};

}  // namespace

// splice(2): one end must be a pipe; an offset pointer only for the other.
SyscallResult SysSplice(Task& t, const Args& a) {
  const uintptr_t off_in_addr = a.Ptr(1);
  const uintptr_t off_out_addr = a.Ptr(3);
  const size_t len = a.Size(4);
  const auto flags = static_cast<unsigned>(a.U(5));
  if (len == 0) return 0L;
  if (flags & ~kSpliceKnown) return Errno{EINVAL};
  ASSIGN_OR_RETURN(vfs::FileRef in, t.fds().Get(a.Int(0)));
  ASSIGN_OR_RETURN(vfs::FileRef out, t.fds().Get(a.Int(2)));
  // __do_splice: ESPIPE and the offsets come before the access modes.
  const bool in_pipe = pipe::IsPipe(*in);
  const bool out_pipe = pipe::IsPipe(*out);
  if ((in_pipe && off_in_addr != 0) || (out_pipe && off_out_addr != 0)) return Errno{ESPIPE};
  ASSIGN_OR_RETURN(std::optional<int64_t> off_out, ReadOffset(t, off_out_addr));
  ASSIGN_OR_RETURN(std::optional<int64_t> off_in, ReadOffset(t, off_in_addr));
  if (!in->readable() || !out->writable()) return Errno{EBADF};
  Result<size_t> r = Errno{EINVAL};  // neither end a pipe
  if (in_pipe && out_pipe) {
    if (pipe::SamePipe(*in, *out)) return Errno{EINVAL};
    const bool nonblock =
        (flags & SPLICE_F_NONBLOCK) || ((in->flags() | out->flags()) & O_NONBLOCK);
    r = pipe::Move(*in, *out, len, nonblock);
  } else if (in_pipe) {
    r = PipeToFile(t, *in, *out, off_out, len, flags);
  } else if (out_pipe) {
    r = FileToPipe(t, *in, *out, off_in, len, flags);
  }
  ASSIGN_OR_RETURN(long done, Finish(t, r));
  if (done > 0) {
    // do_splice: fsnotify_access on the source, fsnotify_modify on the sink.
    inotify::NotifyFile(*in, IN_ACCESS);
    inotify::NotifyFile(*out, IN_MODIFY);
  }
  if (off_out) TRY(t.CopyOutObj(off_out_addr, *off_out));
  if (off_in) TRY(t.CopyOutObj(off_in_addr, *off_in));
  return done;
}

// tee(2): both ends pipes, two different ones.
SyscallResult SysTee(Task& t, const Args& a) {
  const size_t len = a.Size(2);
  const auto flags = static_cast<unsigned>(a.U(3));
  if (flags & ~kSpliceKnown) return Errno{EINVAL};
  if (len == 0) return 0L;
  ASSIGN_OR_RETURN(vfs::FileRef in, t.fds().Get(a.Int(0)));
  ASSIGN_OR_RETURN(vfs::FileRef out, t.fds().Get(a.Int(1)));
  if (!in->readable() || !out->writable()) return Errno{EBADF};
  if (!pipe::IsPipe(*in) || !pipe::IsPipe(*out) || pipe::SamePipe(*in, *out)) {
    return Errno{EINVAL};
  }
  const bool nonblock = (flags & SPLICE_F_NONBLOCK) || ((in->flags() | out->flags()) & O_NONBLOCK);
  return Finish(t, pipe::Tee(*in, *out, len, nonblock));
}

// vmsplice(2): an end open for writing takes user memory; one open only for
// reading gives its bytes to user memory. Only SPLICE_F_NONBLOCK makes it
// non-blocking: Linux 6.1 does not look at the pipe's O_NONBLOCK here.
SyscallResult SysVmsplice(Task& t, const Args& a) {
  const auto flags = static_cast<unsigned>(a.U(3));
  if (flags & ~kSpliceKnown) return Errno{EINVAL};
  ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(a.Int(0)));
  const bool to_pipe = f->writable();
  if (!to_pipe && !f->readable()) return Errno{EBADF};
  if (a.U(2) > IOV_MAX) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::vector<IoVec> iov, CopyInIovecs(t, a.Ptr(1), static_cast<int>(a.U(2))));
  IovCursor user(t, std::move(iov));
  const uint64_t total = user.total();
  if (total == 0) return 0L;
  if (!pipe::IsPipe(*f)) return Errno{EBADF};
  const bool nonblock = (flags & SPLICE_F_NONBLOCK) != 0;
  if (to_pipe) {
    return Finish(
        t, pipe::Fill(*f, total, nonblock, [&](char* buf, size_t n) { return user.In(buf, n); }));
  }
  return Finish(t, pipe::Drain(*f, total, nonblock,
                               [&](const char* buf, size_t n) { return user.Out(buf, n); }));
}

// copy_file_range(2): generic_copy_file_checks and rw_verify_area in their
// order, then do_splice_direct's copy, positional on both files.
SyscallResult SysCopyFileRange(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(vfs::FileRef in, t.fds().Get(a.Int(0)));
  ASSIGN_OR_RETURN(vfs::FileRef out, t.fds().Get(a.Int(2)));
  const uintptr_t off_in_addr = a.Ptr(1);
  const uintptr_t off_out_addr = a.Ptr(3);
  ASSIGN_OR_RETURN(std::optional<int64_t> off_in, ReadOffset(t, off_in_addr));
  ASSIGN_OR_RETURN(std::optional<int64_t> off_out, ReadOffset(t, off_out_addr));
  int64_t pos_in = off_in ? *off_in : FilePos(*in);
  int64_t pos_out = off_out ? *off_out : FilePos(*out);
  if (static_cast<unsigned>(a.U(5)) != 0) return Errno{EINVAL};
  // generic_file_rw_checks.
  if (in->inode()->IsDir() || out->inode()->IsDir()) return Errno{EISDIR};
  if (!in->inode()->IsRegular() || !out->inode()->IsRegular()) return Errno{EINVAL};
  if (!in->readable() || !out->writable() || (out->flags() & O_APPEND)) return Errno{EBADF};
  // Linux 6.1 copies between two superblocks only for filesystems with
  // their own ->copy_file_range: EXDEV, and the caller (cp, cat, Go's
  // io.Copy) falls back to read and write. A host descriptor is another
  // filesystem too.
  ASSIGN_OR_RETURN(struct stat in_st, in->Stat());
  ASSIGN_OR_RETURN(struct stat out_st, out->Stat());
  if (in->HostFd() >= 0 || out->HostFd() >= 0 || in_st.st_dev != out_st.st_dev) {
    return Errno{EXDEV};
  }
  // Offsets must not wrap, compared as unsigned as Linux does: a negative
  // one is EOVERFLOW once the count is added.
  uint64_t count = a.Size(4);
  const auto uin = static_cast<uint64_t>(pos_in);
  const auto uout = static_cast<uint64_t>(pos_out);
  if (uin + count < uin || uout + count < uout) return Errno{EOVERFLOW};
  // Shortened to the end of the source.
  if (pos_in >= in_st.st_size) {
    count = 0;
  } else {
    count = std::min<uint64_t>(count, static_cast<uint64_t>(in_st.st_size) - uin);
  }
  // generic_write_check_limits: RLIMIT_FSIZE even for nothing to copy.
  const rlim_t limit = t.tg().rlimits[RLIMIT_FSIZE].rlim_cur;
  if (limit != RLIM_INFINITY) {
    if (pos_out >= 0 && uout >= limit) {
      RaiseOnSelf(t, SIGXFSZ);
      return Errno{EFBIG};
    }
    count = std::min<uint64_t>(count, limit - uout);
  }
  // No overlapping ranges within one file (two opens of it are one file).
  const bool same = in->inode() == out->inode() ||
                    (in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino);
  if (same && uout + count > uin && uout < uin + count) return Errno{EINVAL};
  TRY(VerifyArea(pos_in, count));
  TRY(VerifyArea(pos_out, count));
  if (count == 0) return 0L;
  count = std::min(count, kMaxRw);
  TRY(DropPrivs(t, *out->inode()));
  std::vector<char> buf(std::min<uint64_t>(count, kChunk));
  uint64_t done = 0;
  while (done < count) {
    // A long copy stops for a signal between chunks with what it copied
    // (never with nothing: the copy never waits).
    if (done > 0 && t.SignalPending()) break;
    const size_t want = std::min<uint64_t>(count - done, buf.size());
    Result<size_t> r = in->PRead(buf.data(), want, uin + done);
    if (!r.ok()) {
      if (done > 0) break;
      return Errno{r.error()};
    }
    if (*r == 0) break;
    Result<size_t> w = out->PWrite(buf.data(), *r, uout + done);
    if (!w.ok()) {
      if (done > 0) break;
      return Errno{w.error()};
    }
    done += *w;
    if (*r < want || *w < *r) break;
  }
  if (done == 0) return 0L;
  inotify::NotifyFile(*in, IN_ACCESS);
  inotify::NotifyFile(*out, IN_MODIFY);
  // The offsets move by what was copied: the pointers', else the files'. A
  // pointer that cannot be written is EFAULT, though the data was copied.
  Result<long> ret = static_cast<long>(done);
  pos_in += static_cast<int64_t>(done);
  pos_out += static_cast<int64_t>(done);
  if (off_in) {
    if (!t.CopyOutObj(off_in_addr, pos_in).ok()) ret = Errno{EFAULT};
  } else {
    TRY(in->Seek(pos_in, SEEK_SET));
  }
  if (off_out) {
    if (!t.CopyOutObj(off_out_addr, pos_out).ok()) ret = Errno{EFAULT};
  } else {
    TRY(out->Seek(pos_out, SEEK_SET));
  }
  return ret;
}

}  // namespace husk::syscalls
