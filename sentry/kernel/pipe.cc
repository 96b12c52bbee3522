#include "sentry/kernel/pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/memfile/account.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::pipe {
namespace {

constexpr size_t kPage = 4096;

// The bytes in flight and who can still read or write them. Like Linux's, a
// pipe is a ring of page-sized buffers: the capacity counts buffers, and a
// write merges into the last buffer only when its sub-page remainder fits
// there, so what a full pipe holds depends on the sizes written (1000-byte
// writes fill a 16-buffer pipe at 64000 bytes, as on Linux).
class Buffer {
 public:
  explicit Buffer(size_t capacity) : max_slots_(capacity / kPage) {}

  absl::Mutex mu;
  WaitQueue queue;  // readers, writers and pollers of both ends

  // Wake-ups name what changed, as Linux's keyed wake-ups of the pipe's
  // queues do, so that an edge-triggered epoll sees an edge only where
  // Linux has one: every write wakes readers (pipe_write wakes them even
  // when the pipe was not empty once it has been polled); a read wakes
  // writers only if the pipe was full (pipe_read's was_full); an end going
  // away or a new capacity wakes everyone.
  void Wrote() { queue.Notify(POLLIN | POLLRDNORM); }
  void ReadFromFull() { queue.Notify(POLLOUT | POLLWRNORM); }
  void Changed() { queue.Notify(~0U); }
  // splice(2) out of the pipe wakes writers whenever it frees a buffer, full
  // before or not (wakeup_pipe_writers).
  void Freed() { queue.Notify(POLLOUT | POLLWRNORM); }

  bool empty() const { return slots_.empty(); }
  bool full() const { return slots_.size() >= max_slots_; }
  size_t bytes() const {
    size_t n = 0;
    for (const auto& s : slots_) n += s.len;
    return n;
  }
  size_t capacity() const { return max_slots_ * kPage; }
  size_t occupancy() const { return slots_.size(); }
  void set_capacity(size_t capacity) { max_slots_ = capacity / kPage; }

  // Appends the first n bytes of p to the last buffer if they fit there.
  bool Merge(const char* p, size_t n) {
    if (slots_.empty()) return false;
    Slot& last = slots_.back();
    if (last.offset + last.len + n > kPage) return false;
    memcpy(last.data.get() + last.offset + last.len, p, n);
    last.len += n;
    return true;
  }
  // Puts up to a page of p into a new buffer; the caller checks !full().
  // 0 when the sandbox is at its memory limit.
  size_t Push(const char* p, size_t n) {
    Slot s{NewAccountedPage(), 0, std::min(n, kPage)};
    if (s.data == nullptr) return 0;
    memcpy(s.data.get(), p, s.len);
    slots_.push_back(std::move(s));
    return slots_.back().len;
  }
  // A buffer of the ring: a page and the bytes of it in flight.
  struct Slot {
    AccountedPage data;  // charged to the sandbox's memory limit
    size_t offset;
    size_t len;
  };

  // Free buffers, in bytes: what splice(2) into the pipe may add at most.
  size_t room() const { return full() ? 0 : (max_slots_ - slots_.size()) * kPage; }
  // Appends the first n bytes of p as new buffers, one per page given (the
  // caller allocated them, so that data it has already taken from somewhere
  // never lacks a place); ignores the capacity, which the caller checked.
  void Append(std::vector<AccountedPage>& pages, const char* p, size_t n) {
    for (size_t i = 0, done = 0; done < n && i < pages.size(); i++) {
      Slot s{std::move(pages[i]), 0, std::min(n - done, kPage)};
      memcpy(s.data.get(), p + done, s.len);
      done += s.len;
      slots_.push_back(std::move(s));
    }
  }
  // Detaches the front buffers that hold the next n bytes (the last may hold
  // more); Reattach puts back, in front and in order, what the caller did not
  // consume. Nothing is copied or allocated, so a consumer that fails (a
  // file write, a fault in user memory) loses nothing: the bytes stay in the
  // pipe, as they do on Linux.
  std::deque<Slot> Detach(size_t n) {
    std::deque<Slot> held;
    size_t bytes = 0;
    while (bytes < n && !slots_.empty()) {
      bytes += slots_.front().len;
      held.push_back(std::move(slots_.front()));
      slots_.pop_front();
    }
    return held;
  }
  void Reattach(std::deque<Slot> held) {
    while (!held.empty()) {
      slots_.push_front(std::move(held.back()));
      held.pop_back();
    }
  }
  // splice_pipe_to_pipe: moves up to n bytes of the front buffers to dst
  // while dst has a free buffer: whole buffers as they are, the last one
  // split (its first part copied into a new buffer). ENOMEM if not even
  // that copy could be made.
  Result<size_t> MoveTo(Buffer& dst, size_t n) {
    size_t done = 0;
    while (done < n && !slots_.empty() && !dst.full()) {
      Slot& first = slots_.front();
      if (first.len <= n - done) {
        done += first.len;
        dst.slots_.push_back(std::move(first));
        slots_.pop_front();
        continue;
      }
      const size_t k = n - done;
      if (!dst.PushCopy(first, k)) break;
      first.offset += k;
      first.len -= k;
      done += k;
    }
    if (done == 0 && n > 0 && !slots_.empty() && !dst.full()) return Errno{ENOMEM};
    return done;
  }
  // link_pipe (tee(2)): copies up to n bytes of the buffers, buffer by
  // buffer, to dst while dst has a free buffer; consumes nothing.
  Result<size_t> CopyTo(Buffer& dst, size_t n) const {
    size_t done = 0;
    for (const Slot& s : slots_) {
      if (done == n || dst.full()) break;
      const size_t k = std::min(n - done, s.len);
      if (!dst.PushCopy(s, k)) {
        if (done == 0) return Errno{ENOMEM};
        break;
      }
      done += k;
    }
    return done;
  }

  // Takes up to n bytes from the front buffers.
  size_t Take(char* p, size_t n) {
    size_t done = 0;
    while (done < n && !slots_.empty()) {
      Slot& first = slots_.front();
      size_t k = std::min(n - done, first.len);
      memcpy(p + done, first.data.get() + first.offset, k);
      first.offset += k;
      first.len -= k;
      done += k;
      if (first.len == 0) slots_.pop_front();
    }
    return done;
  }

  int readers = 0;
  int writers = 0;
  // Opens of each end so far (Linux's r_counter and w_counter): a FIFO's
  // blocking open waits for the other side's counter to move, and a reader
  // sees POLLHUP only once a writer came after it opened and went.
  uint64_t read_opens = 0;
  uint64_t write_opens = 0;

 private:
  // Appends a new buffer holding the first n bytes of s; false without memory.
  bool PushCopy(const Slot& s, size_t n) {
    Slot copy{NewAccountedPage(), 0, n};
    if (copy.data == nullptr) return false;
    memcpy(copy.data.get(), s.data.get() + s.offset, n);
    slots_.push_back(std::move(copy));
    return true;
  }

  std::deque<Slot> slots_;
  size_t max_slots_;
};

// One pipe's inode: what fstat(2) shows for both ends.
class PipeInode : public vfs::Inode {
 public:
  PipeInode(uid_t uid, gid_t gid) : ino_(vfs::NextInodeNumber()), uid_(uid), gid_(gid) {
    time_ = SandboxTimespec(CLOCK_REALTIME);
  }
  mode_t Type() override { return S_IFIFO; }
  bool Stream() override { return true; }
  Result<struct stat> Stat() override {
    struct stat st {};
    st.st_dev = Device();
    st.st_ino = ino_;
    st.st_mode = S_IFIFO | 0600;
    st.st_nlink = 1;
    st.st_uid = uid_;
    st.st_gid = gid_;
    st.st_blksize = 4096;
    st.st_atim = st.st_mtim = st.st_ctim = time_;
    return st;
  }
  uint64_t ino() const { return ino_; }
  Result<struct statfs> Statfs() override {
    ASSIGN_OR_RETURN(struct statfs s, vfs::Inode::Statfs());
    s.f_type = 0x50495045;  // PIPEFS_MAGIC
    return s;
  }

 private:
  // All pipes live on one pipefs instance, as on Linux.
  static dev_t Device() {
    static const dev_t dev = vfs::NewAnonDevice();
    return dev;
  }
  uint64_t ino_;
  uid_t uid_;
  gid_t gid_;
  timespec time_{};
};

class PipeEnd : public vfs::File {
 public:
  // An end that reads, writes, or (a FIFO opened O_RDWR) both.
  PipeEnd(vfs::InodeRef inode, int flags, std::shared_ptr<Buffer> buf)
      : vfs::File(std::move(inode), flags), buf_(std::move(buf)) {
    absl::MutexLock l(&buf_->mu);
    if (reads()) {
      buf_->readers++;
      buf_->read_opens++;
    }
    if (writes()) {
      buf_->writers++;
      buf_->write_opens++;
    }
    writer_opens_seen_ = buf_->write_opens;
    buf_->Changed();
  }
  ~PipeEnd() override {
    absl::MutexLock l(&buf_->mu);
    if (reads()) buf_->readers--;
    if (writes()) buf_->writers--;
    buf_->Changed();
  }

  Result<size_t> Read(char* out, size_t n) override {
    if (!reads()) return Errno{EBADF};
    if (n == 0) return size_t{0};  // pipe_read: a null read succeeds at once
    return Transfer([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(buf_->mu) -> Result<size_t> {
      if (!buf_->empty()) {
        bool was_full = buf_->full();
        size_t k = buf_->Take(out, n);
        if (was_full) buf_->ReadFromFull();
        return k;
      }
      if (buf_->writers == 0) return size_t{0};  // end of file
      return Errno{EAGAIN};
    });
  }

  Result<size_t> Write(const char* in, size_t n) override {
    if (!writes()) return Errno{EBADF};
    if (n == 0) return size_t{0};  // pipe_write: so does a null write, readers or not
    size_t done = 0;
    bool first = true;
    // pipe_write: the sub-page remainder of the write goes first, into the
    // last buffer if it fits whole; the rest fills new buffers, waiting for
    // free ones unless O_NONBLOCK. A write of at most a page is therefore
    // atomic (PIPE_BUF).
    Result<size_t> r = Transfer([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(buf_->mu) -> Result<size_t> {
      if (buf_->readers == 0) return Errno{EPIPE};
      if (first) {
        first = false;
        size_t chars = n & (kPage - 1);
        if (chars != 0 && buf_->Merge(in, chars)) {
          done = chars;
          buf_->Wrote();
        }
      }
      while (done < n && !buf_->full()) {
        size_t pushed = buf_->Push(in + done, n - done);
        // No memory for a buffer: pipe_write's ENOMEM (or what went in).
        if (pushed == 0) return done > 0 ? Result<size_t>(done) : Errno{ENOMEM};
        done += pushed;
        buf_->Wrote();
      }
      if (done == n) return done;
      if (flags() & O_NONBLOCK) return done > 0 ? Result<size_t>(done) : Errno{EAGAIN};
      return Errno{EAGAIN};  // wait for free buffers
    });
    // A write cut short (by the last reader leaving) reports what went in.
    if (!r.ok() && done > 0) return done;
    return r;
  }

  Result<size_t> PRead(char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<size_t> PWrite(const char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<off_t> Seek(off_t, int) override { return Errno{ESPIPE}; }

  Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) override {
    if (cmd != FIONREAD) return Errno{ENOTTY};
    int n;
    {
      absl::MutexLock l(&buf_->mu);
      n = static_cast<int>(buf_->bytes());
    }
    TRY(mm.CopyOut(arg, &n, sizeof(n)));
    return 0L;
  }

  Buffer& buffer() { return *buf_; }

  uint32_t Readiness(uint32_t mask) override {
    absl::MutexLock l(&buf_->mu);
    uint32_t ready = 0;
    if (reads()) {
      if (!buf_->empty()) ready |= POLLIN | POLLRDNORM;
      // pipe_poll: a FIFO reader that has never had a writer is not hung up.
      if (buf_->writers == 0 && buf_->write_opens != writer_opens_seen_) ready |= POLLHUP;
    }
    if (writes()) {
      if (!buf_->full()) ready |= POLLOUT | POLLWRNORM;
      if (buf_->readers == 0) ready |= POLLERR;
    }
    return ready & (mask | POLLHUP | POLLERR);
  }
  WaitQueue* EventQueue() override { return &buf_->queue; }

  // A FIFO's open (fifo_open): a reader waits for a writer and a writer for
  // a reader, unless O_NONBLOCK or O_RDWR; the wait ends with the other
  // side's open, or with a signal.
  Status WaitForPartner(bool for_writer) {
    Task* t = Kernel::Current();
    for (;;) {
      {
        absl::MutexLock l(&buf_->mu);
        uint64_t seen = for_writer ? buf_->write_opens : buf_->read_opens;
        if (partner_opens_ == UINT64_MAX) partner_opens_ = seen;
        if (seen != partner_opens_ || (for_writer ? buf_->writers : buf_->readers) > 0 ||
            t == nullptr) {
          return Ok();
        }
        buf_->queue.Add(&t->waiter, POLLIN | POLLOUT | POLLHUP | POLLERR);
      }
      t->kernel().mu.AssertHeld();
      Status s = t->Block();
      buf_->queue.Remove(&t->waiter);
      if (!s.ok()) return Errno{kERestartSys};
    }
  }

 private:
  bool reads() const { return (flags() & O_ACCMODE) != O_WRONLY; }
  bool writes() const { return (flags() & O_ACCMODE) != O_RDONLY; }

  // Runs step under the pipe's lock until it stops answering EAGAIN; with
  // O_NONBLOCK the first answer is final. Blocking drops the big lock; a
  // signal ends the wait with ERESTARTSYS (read(2) and write(2) restart
  // under SA_RESTART).
  template <typename Step>
  Result<size_t> Transfer(Step step) {
    Task* t = Kernel::Current();
    for (;;) {
      {
        absl::MutexLock l(&buf_->mu);
        Result<size_t> r = step();
        if (r.ok() || r.error() != EAGAIN || (flags() & O_NONBLOCK) || t == nullptr) return r;
        // Registered under the pipe's lock: a change after this check wakes us.
        buf_->queue.Add(&t->waiter, POLLIN | POLLOUT | POLLHUP | POLLERR);
      }
      // Reads and writes run inside a syscall, under the big kernel lock.
      t->kernel().mu.AssertHeld();
      Status s = t->Block();
      buf_->queue.Remove(&t->waiter);
      if (!s.ok()) return Errno{kERestartSys};
    }
  }

  std::shared_ptr<Buffer> buf_;
  uint64_t writer_opens_seen_ = 0;
  uint64_t partner_opens_ = UINT64_MAX;  // the other side's opens when the wait began
};

// The buffers of FIFOs open somewhere, by inode. An entry lives as long as
// an end holds the buffer (and so the inode); once every end is closed the
// data is gone, as on Linux.
struct FifoTable {
  absl::Mutex mu;
  std::map<const vfs::Inode*, std::weak_ptr<Buffer>> buffers ABSL_GUARDED_BY(mu);
};

FifoTable& Fifos() {
  static auto* table = new FifoTable();  // never destroyed: ends may outlive statics
  return *table;
}

std::shared_ptr<Buffer> FifoBuffer(const vfs::InodeRef& inode) {
  FifoTable& f = Fifos();
  absl::MutexLock l(&f.mu);
  // Drop what expired while here (the table stays as small as the open FIFOs).
  for (auto it = f.buffers.begin(); it != f.buffers.end();) {
    it = it->second.expired() ? f.buffers.erase(it) : std::next(it);
  }
  std::weak_ptr<Buffer>& slot = f.buffers[inode.get()];
  std::shared_ptr<Buffer> buf = slot.lock();
  if (buf == nullptr) {
    buf = std::make_shared<Buffer>(kDefaultCapacity);
    slot = buf;
  }
  return buf;
}

// The pipe-side wait of splice(2), tee(2) and vmsplice(2), as PipeEnd's
// Transfer for read and write: runs step under b's lock until it answers
// something other than EAGAIN; nonblock makes the first answer final. A
// signal ends the wait with ERESTARTSYS.
template <typename Step>
auto Await(Buffer& b, bool nonblock, Step step) -> decltype(step()) {
  Task* t = Kernel::Current();
  for (;;) {
    {
      absl::MutexLock l(&b.mu);
      auto r = step();
      if (r.ok() || r.error() != EAGAIN || nonblock || t == nullptr) return r;
      b.queue.Add(&t->waiter, POLLIN | POLLOUT | POLLHUP | POLLERR);
    }
    // Splices run inside a syscall, under the big kernel lock.
    t->kernel().mu.AssertHeld();
    Status s = t->Block();
    b.queue.Remove(&t->waiter);
    if (!s.ok()) return Errno{kERestartSys};
  }
}

Buffer* BufferOf(vfs::File& f) {
  auto* end = dynamic_cast<PipeEnd*>(&f);
  return end == nullptr ? nullptr : &end->buffer();
}

// ipipe_prep: waits until the pipe holds data or has no writer left (the
// caller then finds it empty: end of file).
Status AwaitData(Buffer& b, bool nonblock) {
  return Await(b, nonblock, [&]() -> Status {
    if (!b.empty() || b.writers == 0) return Ok();
    return Errno{EAGAIN};
  });
}

// opipe_prep and wait_for_space: waits for a free buffer; EPIPE (the
// caller raises SIGPIPE) once no reader is left.
Status AwaitRoom(Buffer& b, bool nonblock) {
  return Await(b, nonblock, [&]() -> Status {
    if (b.readers == 0) return Errno{EPIPE};
    if (!b.full()) return Ok();
    return Errno{EAGAIN};
  });
}

// Locks two pipes' buffers in address order (pipe_double_lock).
class ABSL_SCOPED_LOCKABLE DoubleLock {
 public:
  DoubleLock(Buffer& a, Buffer& b) ABSL_EXCLUSIVE_LOCK_FUNCTION(a.mu, b.mu)
      : first_(std::less<Buffer*>()(&a, &b) ? &a : &b), second_(first_ == &a ? &b : &a) {
    first_->mu.Lock();
    second_->mu.Lock();
  }
  ~DoubleLock() ABSL_UNLOCK_FUNCTION() {
    second_->mu.Unlock();
    first_->mu.Unlock();
  }
  DoubleLock(const DoubleLock&) = delete;
  DoubleLock& operator=(const DoubleLock&) = delete;

 private:
  Buffer* first_;
  Buffer* second_;
};

}  // namespace

Result<vfs::FileRef> OpenFifo(const vfs::InodeRef& inode, int flags) {
  const int acc = flags & O_ACCMODE;
  std::shared_ptr<Buffer> buf = FifoBuffer(inode);
  if (acc == O_WRONLY && (flags & O_NONBLOCK)) {
    // No reader: ENXIO, and no end is made.
    absl::MutexLock l(&buf->mu);
    if (buf->readers == 0) return Errno{ENXIO};
  }
  // Creation flags are not kept (do_dentry_open), the status flags are.
  const int keep = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
  auto end = std::make_shared<PipeEnd>(inode, keep, buf);
  if (acc == O_RDWR || (flags & O_NONBLOCK)) return vfs::FileRef(end);
  // A blocking reader waits for a writer, a blocking writer for a reader;
  // interrupted, the end made for the wait goes away again.
  TRY(end->WaitForPartner(acc == O_RDONLY));
  return vfs::FileRef(end);
}

std::pair<vfs::FileRef, vfs::FileRef> New(int flags, uid_t uid, gid_t gid) {
  auto inode = std::make_shared<PipeInode>(uid, gid);
  auto buf = std::make_shared<Buffer>(kDefaultCapacity);
  int status = flags & O_NONBLOCK;
  auto r = std::make_shared<PipeEnd>(inode, O_RDONLY | status, buf);
  auto w = std::make_shared<PipeEnd>(inode, O_WRONLY | status, buf);
  return {r, w};
}

bool IsPipe(const vfs::File& f) { return dynamic_cast<const PipeEnd*>(&f) != nullptr; }

Result<long> Capacity(vfs::File& f) {
  auto* end = dynamic_cast<PipeEnd*>(&f);
  if (end == nullptr) return Errno{EBADF};
  absl::MutexLock l(&end->buffer().mu);
  return static_cast<long>(end->buffer().capacity());
}

Result<long> SetCapacity(vfs::File& f, long size) {
  auto* end = dynamic_cast<PipeEnd*>(&f);
  if (end == nullptr) return Errno{EBADF};
  // fcntl(2), pipe_fcntl: the size (an unsigned int) is rounded up to a
  // power-of-two number of pages; past pipe-max-size an unprivileged (here:
  // any sandboxed) caller gets EPERM; fewer buffers than in use is EBUSY.
  auto requested = static_cast<unsigned long>(static_cast<unsigned int>(size));
  if (requested > (1UL << 31)) return Errno{EINVAL};
  size_t capacity = kPage;
  while (capacity < requested) capacity *= 2;
  if (capacity > kMaxCapacity) return Errno{EPERM};
  Buffer& b = end->buffer();
  absl::MutexLock l(&b.mu);
  if (capacity / kPage < b.occupancy()) return Errno{EBUSY};
  b.set_capacity(capacity);
  b.Changed();
  return static_cast<long>(capacity);
}

bool SamePipe(vfs::File& a, vfs::File& b) {
  Buffer* x = BufferOf(a);
  return x != nullptr && x == BufferOf(b);
}

Result<size_t> Drain(vfs::File& in, size_t n, bool nonblock, const Sink& sink) {
  Buffer* b = BufferOf(in);
  if (b == nullptr) return Errno{EBADF};
  if (n == 0) return size_t{0};
  TRY(AwaitData(*b, nonblock));
  Task* t = Kernel::Current();
  std::vector<char> chunk(std::min(n, kSpliceChunk));
  size_t done = 0;
  while (done < n) {
    // splice_from_pipe_next: a signal ends a long splice with what it moved.
    if (done > 0 && t != nullptr && t->SignalPending()) break;
    const size_t want = std::min(n - done, chunk.size());
    std::deque<Buffer::Slot> held;
    {
      absl::MutexLock l(&b->mu);
      held = b->Detach(want);
    }
    // Empty again (or at end of file): a splice returns what it moved.
    if (held.empty()) break;
    size_t k = 0;
    for (const Buffer::Slot& s : held) {
      const size_t part = std::min(want - k, s.len);
      memcpy(chunk.data() + k, s.data.get() + s.offset, part);
      k += part;
      if (k == want) break;
    }
    // The consumer runs without the pipe's lock: it may block (a host
    // descriptor) and so let other tasks at this pipe meanwhile. Linux holds
    // the pipe's mutex across the write instead; here a reader that comes
    // then reads past the held bytes, which go back in front of what it
    // left: no byte is lost or doubled, only that reader's order differs.
    Result<size_t> r = sink(chunk.data(), k);
    size_t took = r.ok() ? std::min(*r, k) : 0;
    {
      absl::MutexLock l(&b->mu);
      bool freed = false;
      for (size_t left = took; left > 0;) {
        Buffer::Slot& s = held.front();
        const size_t part = std::min(left, s.len);
        s.offset += part;
        s.len -= part;
        left -= part;
        if (s.len == 0) {
          held.pop_front();
          freed = true;
        }
      }
      b->Reattach(std::move(held));
      if (freed) b->Freed();
    }
    if (!r.ok()) {
      if (done > 0) break;
      return Errno{r.error()};
    }
    done += took;
    if (took < k) break;
  }
  return done;
}

Result<size_t> Fill(vfs::File& out, size_t n, bool nonblock, const Source& source) {
  Buffer* b = BufferOf(out);
  if (b == nullptr) return Errno{EBADF};
  if (n == 0) return size_t{0};
  TRY(AwaitRoom(*b, nonblock));
  {
    // No more than the free buffers hold (do_splice_to's p_space).
    absl::MutexLock l(&b->mu);
    n = std::min(n, b->room());
  }
  std::vector<char> chunk(std::min(n, kSpliceChunk));
  size_t done = 0;
  while (done < n) {
    const size_t want = std::min(n - done, chunk.size());
    // The pages first: what a stream gives must not be lost for want of them.
    std::vector<AccountedPage> pages;
    for (size_t have = 0; have < want; have += kPage) {
      AccountedPage page = NewAccountedPage();
      if (page == nullptr) break;
      pages.push_back(std::move(page));
    }
    const size_t can = std::min(want, pages.size() * kPage);
    if (can == 0) {
      if (done > 0) break;
      return Errno{ENOMEM};
    }
    Result<size_t> r = source(chunk.data(), can);
    if (!r.ok()) {
      if (done > 0) break;
      return Errno{r.error()};
    }
    const size_t got = std::min(*r, can);
    if (got > 0) {
      absl::MutexLock l(&b->mu);
      b->Append(pages, chunk.data(), got);
      b->Wrote();
    }
    done += got;
    if (got < want) break;
  }
  return done;
}

Result<size_t> Move(vfs::File& in, vfs::File& out, size_t n, bool nonblock) {
  Buffer* ib = BufferOf(in);
  Buffer* ob = BufferOf(out);
  if (ib == nullptr || ob == nullptr || ib == ob) return Errno{EINVAL};
  if (n == 0) return size_t{0};
  for (;;) {
    TRY(AwaitData(*ib, nonblock));
    TRY(AwaitRoom(*ob, nonblock));
    DoubleLock l(*ib, *ob);
    if (ob->readers == 0) return Errno{EPIPE};
    if (ib->empty() && ib->writers == 0) return size_t{0};
    if (ib->empty() || ob->full()) {
      // Raced with another reader or writer: 0 would mean end of file, so
      // wait again (splice_pipe_to_pipe's retry).
      if (nonblock) return Errno{EAGAIN};
      continue;
    }
    ASSIGN_OR_RETURN(size_t moved, ib->MoveTo(*ob, n));
    if (moved > 0) {
      ob->Wrote();
      ib->Freed();
    }
    return moved;
  }
}

Result<size_t> Tee(vfs::File& in, vfs::File& out, size_t n, bool nonblock) {
  Buffer* ib = BufferOf(in);
  Buffer* ob = BufferOf(out);
  if (ib == nullptr || ob == nullptr || ib == ob) return Errno{EINVAL};
  if (n == 0) return size_t{0};
  TRY(AwaitData(*ib, nonblock));
  TRY(AwaitRoom(*ob, nonblock));
  DoubleLock l(*ib, *ob);
  if (ob->readers == 0) return Errno{EPIPE};
  // Empty (end of file, or raced): link_pipe copies nothing and says 0.
  ASSIGN_OR_RETURN(size_t copied, ib->CopyTo(*ob, n));
  if (copied > 0) ob->Wrote();
  return copied;
}

}  // namespace husk::pipe
