#include "sentry/net/unix.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <deque>
#include <map>
#include <memory>

#include "absl/strings/str_format.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::net {
namespace {

constexpr size_t kDefaultBuffer = 212992;   // net.core.{w,r}mem_default
constexpr size_t kMaxBuffer = 4194304;      // net.core.wmem_max: what SO_SNDBUF takes at most
constexpr size_t kMinSendBuffer = 4608;     // SOCK_MIN_SNDBUF
constexpr size_t kMinReceiveBuffer = 2304;  // SOCK_MIN_RCVBUF
constexpr size_t kMaxDatagramQueue = 10;    // net.unix.max_dgram_qlen
constexpr int kSomaxconn = 4096;            // net.core.somaxconn
constexpr size_t kPathOffset = offsetof(sockaddr_un, sun_path);
// Linux's shutdown bits (sk_shutdown).
constexpr int kRcvShutdown = 1, kSendShutdown = 2, kShutdownMask = 3;

PathOps g_path_ops;
absl::Mutex g_mu;

class UnixSocket;

// One sent message waiting in a receive queue (an skb): its bytes, the
// files and credentials it carries, who sent it (their buffer counts it
// until it is read), and the sender's address.
struct Message {
  std::string data;
  size_t off = 0;  // bytes of a stream message already read
  std::vector<vfs::FileRef> fds;
  Credentials creds;
  std::string from;
  std::weak_ptr<UnixSocket> sender;
  size_t left() const { return data.size() - off; }
};

// What every socket's file stands on: an inode of sockfs.
class SocketInode : public vfs::Inode {
 public:
  SocketInode(uid_t uid, gid_t gid) : ino_(vfs::NextInodeNumber()), uid_(uid), gid_(gid) {
    time_ = SandboxTimespec(CLOCK_REALTIME);
  }
  mode_t Type() override { return S_IFSOCK; }
  bool Stream() override { return true; }
  Result<struct stat> Stat() override {
    struct stat st {};
    st.st_dev = Device();
    st.st_ino = ino_;
    st.st_mode = S_IFSOCK | 0777;
    st.st_nlink = 1;
    st.st_uid = uid_;
    st.st_gid = gid_;
    st.st_blksize = 4096;
    st.st_atim = st.st_mtim = st.st_ctim = time_;
    return st;
  }
  Result<struct statfs> Statfs() override {
    ASSIGN_OR_RETURN(struct statfs s, vfs::Inode::Statfs());
    s.f_type = 0x534F434B;  // SOCKFS_MAGIC
    return s;
  }
  uint64_t ino() const { return ino_; }

 private:
  static dev_t Device() {
    static const dev_t dev = vfs::NewAnonDevice();
    return dev;
  }
  uint64_t ino_;
  uid_t uid_;
  gid_t gid_;
  timespec time_{};
};

// The bound names: filesystem nodes by (device, inode), abstract names by
// their bytes.
using NodeKey = std::pair<dev_t, ino_t>;
std::map<NodeKey, std::weak_ptr<UnixSocket>>& Nodes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* m = new std::map<NodeKey, std::weak_ptr<UnixSocket>>();
  return *m;
}
// Each socket type has an abstract namespace of its own.
using AbstractKey = std::pair<int, std::string>;
std::map<AbstractKey, std::weak_ptr<UnixSocket>>& Abstract() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* m = new std::map<AbstractKey, std::weak_ptr<UnixSocket>>();
  return *m;
}
// Every socket, for /proc/net/unix.
std::map<UnixSocket*, std::weak_ptr<UnixSocket>>& All() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* m = new std::map<UnixSocket*, std::weak_ptr<UnixSocket>>();
  return *m;
}
uint32_t g_autobind ABSL_GUARDED_BY(g_mu) = 0;

Credentials CredsOf(const Task& t) { return {t.tgid(), t.uid, t.gid}; }

// A parsed sockaddr_un: a path, or an abstract name (its bytes, starting
// with the NUL); `raw` is the address as getsockname reports it.
struct Name {
  bool abstract = false;
  std::string path;  // a path, or the abstract bytes
  std::string raw;
};

// unix_validate_addr and unix_mkname: the family, and a length that holds
// more than the family and no more than a sockaddr_un.
Result<Name> ParseName(std::string_view addr) {
  if (addr.size() < sizeof(sa_family_t)) return Errno{EINVAL};
  sa_family_t family;
  memcpy(&family, addr.data(), sizeof(family));
  if (family != AF_UNIX) return Errno{EINVAL};
  if (addr.size() <= kPathOffset || addr.size() > sizeof(sockaddr_un)) return Errno{EINVAL};
  std::string_view body = addr.substr(kPathOffset);
  Name n;
  if (body[0] == '\0') {
    n.abstract = true;
    n.path = std::string(body);
    n.raw = std::string(addr);
  } else {
    n.path = std::string(body.substr(0, body.find('\0')));
    n.raw = std::string(addr.substr(0, kPathOffset)) + n.path + std::string(1, '\0');
  }
  return n;
}

class UnixSocket : public Socket, public std::enable_shared_from_this<UnixSocket> {
 public:
  UnixSocket(vfs::InodeRef inode, int flags, int type)
      : Socket(std::move(inode), O_RDWR | (flags & O_NONBLOCK)), type_(type) {}
  ~UnixSocket() override;

  // Registers a new socket for /proc/net/unix.
  void Register() {
    absl::MutexLock l(&g_mu);
    All()[this] = weak_from_this();
  }

  int Domain() const override { return AF_UNIX; }
  int SockType() const override { return type_; }
  size_t MaxMessage() const override {
    absl::MutexLock l(&g_mu);
    return type_ == SOCK_STREAM ? 0 : sndbuf_ - 32;
  }

  Status Bind(Task& t, std::string_view addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Status Listen(Task& t, int backlog) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Result<vfs::FileRef> Accept(Task& t, int flags, std::string* peer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Status Connect(Task& t, std::string_view addr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Result<size_t> Send(Task& t, SendRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Result<Received> Receive(Task& t, size_t n, int flags)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Status Shutdown(Task& t, int how) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Result<std::string> SockName() override;
  Result<std::string> PeerName() override;
  Result<std::string> GetOption(Task& t, int level, int name, size_t len)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;
  Status SetOption(Task& t, int level, int name, std::string_view value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) override;

  Result<size_t> Read(char* buf, size_t n) override;
  Result<size_t> Write(const char* buf, size_t n) override;
  Result<size_t> PRead(char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<size_t> PWrite(const char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<off_t> Seek(off_t, int) override { return Errno{ESPIPE}; }
  Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) override;
  uint32_t Readiness(uint32_t mask) override;
  WaitQueue* EventQueue() override { return &queue_; }

  // Connects two new sockets (socketpair).
  static void Pair(const std::shared_ptr<UnixSocket>& a, const std::shared_ptr<UnixSocket>& b,
                   const Credentials& creds);
  std::string ProcLine();

 private:
  // Blocks the task on this socket's queue until something changes, a
  // signal (ERESTARTSYS) or the deadline (EAGAIN, as SO_RCVTIMEO and
  // SO_SNDTIMEO end a wait); 0 when woken.
  int Wait(Task& t, absl::Time deadline = absl::InfiniteFuture())
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu, g_mu);
  // The deadline of a wait that starts now (SO_RCVTIMEO, SO_SNDTIMEO).
  static absl::Time Deadline(absl::Duration timeout) {
    return timeout == absl::ZeroDuration() ? absl::InfiniteFuture() : MonotonicNow() + timeout;
  }
  bool Nonblocking(int msg_flags) const {
    return (flags() & O_NONBLOCK) || (msg_flags & MSG_DONTWAIT);
  }
  // Wakes this socket's waiters and its peer's.
  void Changed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // The bytes this socket has in others' queues may grow by n.
  bool Writable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) { return inflight_ < sndbuf_; }
  Status AutobindLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // The socket a name is bound to (ECONNREFUSED if none is any more).
  Result<std::shared_ptr<UnixSocket>> Lookup(Task& t, const Name& n)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  Result<size_t> SendStream(Task& t, SendRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  Result<size_t> SendDatagram(Task& t, SendRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
  // Takes what a receive gets from the queue (the caller holds g_mu);
  // messages fully read go to *gone, to be let go without the lock.
  void TakeStream(size_t n, int flags, Received* r, std::deque<Message>* gone)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  void TakeMessage(size_t n, int flags, Received* r, std::deque<Message>* gone)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);
  // A message left the queue: its sender may send again.
  static void Consumed(const Message& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu);

  const int type_;
  WaitQueue queue_;
  Name name_ ABSL_GUARDED_BY(g_mu);  // bound name (raw empty: unbound)
  vfs::DentryRef node_ ABSL_GUARDED_BY(g_mu);
  NodeKey node_key_ ABSL_GUARDED_BY(g_mu){};
  bool listening_ ABSL_GUARDED_BY(g_mu) = false;
  int backlog_ ABSL_GUARDED_BY(g_mu) = 0;
  std::deque<std::shared_ptr<UnixSocket>> pending_ ABSL_GUARDED_BY(g_mu);  // accept queue
  // Stream and seqpacket: the other end (connected_ once it had one);
  // datagram: the default destination.
  std::weak_ptr<UnixSocket> peer_ ABSL_GUARDED_BY(g_mu);
  bool connected_ ABSL_GUARDED_BY(g_mu) = false;
  bool embryo_ ABSL_GUARDED_BY(g_mu) = false;  // made by connect, not yet accepted
  std::deque<Message> queue_msgs_ ABSL_GUARDED_BY(g_mu);
  size_t queued_bytes_ ABSL_GUARDED_BY(g_mu) = 0;
  size_t inflight_ ABSL_GUARDED_BY(g_mu) = 0;  // sent, not yet read (sk_wmem_alloc)
  int shutdown_ ABSL_GUARDED_BY(g_mu) = 0;
  bool passcred_ ABSL_GUARDED_BY(g_mu) = false;
  size_t sndbuf_ ABSL_GUARDED_BY(g_mu) = kDefaultBuffer;
  size_t rcvbuf_ ABSL_GUARDED_BY(g_mu) = kDefaultBuffer;
  std::optional<Credentials> peercred_ ABSL_GUARDED_BY(g_mu);
  Credentials own_creds_ ABSL_GUARDED_BY(g_mu);  // at listen: what connectors see
  int error_ ABSL_GUARDED_BY(g_mu) = 0;          // SO_ERROR
  // SO_RCVTIMEO and SO_SNDTIMEO as set (zero: wait without end).
  timeval rcvtimeo_ ABSL_GUARDED_BY(g_mu){}, sndtimeo_ ABSL_GUARDED_BY(g_mu){};
  static absl::Duration Timeout(const timeval& tv) {
    return absl::Seconds(tv.tv_sec) + absl::Microseconds(tv.tv_usec);
  }
};

UnixSocket::~UnixSocket() {
  // What the socket held: files in flight and pending connections go once
  // the lock is let go (their own release takes it).
  std::deque<Message> msgs;
  std::deque<std::shared_ptr<UnixSocket>> pending;
  std::shared_ptr<UnixSocket> peer;
  {
    absl::MutexLock l(&g_mu);
    All().erase(this);
    if (!name_.raw.empty()) {
      if (name_.abstract) {
        auto it = Abstract().find({type_, name_.path});
        if (it != Abstract().end() && it->second.expired()) Abstract().erase(it);
      } else {
        auto it = Nodes().find(node_key_);
        if (it != Nodes().end() && it->second.expired()) Nodes().erase(it);
      }
    }
    peer = peer_.lock();
    if (peer != nullptr && type_ != SOCK_DGRAM) {
      // unix_release_sock: the peer's connection is over; unread data here
      // makes it a reset.
      peer->shutdown_ = kShutdownMask;
      if (!queue_msgs_.empty() || embryo_) peer->error_ = ECONNRESET;
      peer->queue_.Notify(~0U);
    }
    for (Message& m : queue_msgs_) Consumed(m);
    msgs.swap(queue_msgs_);
    pending.swap(pending_);
  }
}

void UnixSocket::Changed() {
  queue_.Notify(~0U);
  if (std::shared_ptr<UnixSocket> p = peer_.lock()) p->queue_.Notify(~0U);
}

int UnixSocket::Wait(Task& t, absl::Time deadline) {
  queue_.Add(&t.waiter, ~0U);
  g_mu.Unlock();
  Status s = t.Block(deadline);
  queue_.Remove(&t.waiter);
  g_mu.Lock();
  if (s.ok()) return 0;
  return s.error() == ETIMEDOUT ? EAGAIN : kERestartSys;
}

void UnixSocket::Consumed(const Message& m) {
  if (std::shared_ptr<UnixSocket> s = m.sender.lock()) {
    s->inflight_ -= std::min(s->inflight_, m.data.size());
    s->queue_.Notify(POLLOUT | POLLWRNORM);
  }
}

void UnixSocket::Pair(const std::shared_ptr<UnixSocket>& a, const std::shared_ptr<UnixSocket>& b,
                      const Credentials& creds) {
  absl::MutexLock l(&g_mu);
  a->peer_ = b;
  b->peer_ = a;
  a->connected_ = b->connected_ = true;
  a->peercred_ = b->peercred_ = creds;
}

Status UnixSocket::AutobindLocked() {
  // unix_autobind: five hex digits in the abstract namespace.
  for (int tries = 0; tries < 0xfffff; tries++) {
    const uint32_t n = g_autobind++ & 0xfffff;
    std::string name = std::string(1, '\0') + absl::StrFormat("%05x", n);
    if (auto it = Abstract().find({type_, name}); it != Abstract().end() && !it->second.expired()) {
      continue;
    }
    sa_family_t family = AF_UNIX;
    name_.abstract = true;
    name_.path = name;
    name_.raw = std::string(reinterpret_cast<const char*>(&family), sizeof(family)) + name;
    Abstract()[{type_, name}] = weak_from_this();
    return Ok();
  }
  return Errno{ENOSPC};
}

Status UnixSocket::Bind(Task& t, std::string_view addr) {
  if (addr.size() >= sizeof(sa_family_t)) {
    sa_family_t family;
    memcpy(&family, addr.data(), sizeof(family));
    if (family != AF_UNIX) return Errno{EINVAL};
  }
  if (addr.size() == sizeof(sa_family_t)) {
    absl::MutexLock l(&g_mu);
    if (!name_.raw.empty()) return Ok();  // unix_autobind: named already
    return AutobindLocked();
  }
  ASSIGN_OR_RETURN(Name n, ParseName(addr));
  {
    absl::MutexLock l(&g_mu);
    if (!name_.raw.empty()) return Errno{EINVAL};
    if (n.abstract) {
      if (auto it = Abstract().find({type_, n.path});
          it != Abstract().end() && !it->second.expired()) {
        return Errno{EADDRINUSE};
      }
      Abstract()[{type_, n.path}] = weak_from_this();
      name_ = std::move(n);
      return Ok();
    }
  }
  // A path: the node is made first (EADDRINUSE if the name exists).
  if (g_path_ops.make_node == nullptr) return Errno{EOPNOTSUPP};
  ASSIGN_OR_RETURN(vfs::DentryRef node, g_path_ops.make_node(t, n.path));
  ASSIGN_OR_RETURN(struct stat st, node->inode()->Stat());
  absl::MutexLock l(&g_mu);
  if (!name_.raw.empty()) return Errno{EINVAL};  // bound meanwhile by another thread
  node_ = std::move(node);
  node_key_ = {st.st_dev, st.st_ino};
  Nodes()[node_key_] = weak_from_this();
  name_ = std::move(n);
  return Ok();
}

Status UnixSocket::Listen(Task& t, int backlog) {
  absl::MutexLock l(&g_mu);
  if (type_ == SOCK_DGRAM) return Errno{EOPNOTSUPP};
  if (connected_) return Errno{EINVAL};
  if (name_.raw.empty()) return Errno{EINVAL};  // unix_listen: not bound
  // listen(2): a backlog above somaxconn is cut to it; the queue holds one
  // more than the backlog (sk_ack_backlog > sk_max_ack_backlog is full).
  backlog_ = std::clamp(backlog, 0, kSomaxconn);
  listening_ = true;
  own_creds_ = CredsOf(t);
  queue_.Notify(~0U);
  return Ok();
}

Result<std::shared_ptr<UnixSocket>> UnixSocket::Lookup(Task& t, const Name& n) {
  if (n.abstract) {
    absl::MutexLock l(&g_mu);
    auto it = Abstract().find({type_, n.path});
    std::shared_ptr<UnixSocket> s = it == Abstract().end() ? nullptr : it->second.lock();
    if (s == nullptr) return Errno{ECONNREFUSED};
    return s;
  }
  if (g_path_ops.find_node == nullptr) return Errno{ECONNREFUSED};
  ASSIGN_OR_RETURN(vfs::DentryRef node, g_path_ops.find_node(t, n.path));
  ASSIGN_OR_RETURN(struct stat st, node->inode()->Stat());
  absl::MutexLock l(&g_mu);
  auto it = Nodes().find({st.st_dev, st.st_ino});
  std::shared_ptr<UnixSocket> s = it == Nodes().end() ? nullptr : it->second.lock();
  if (s == nullptr) return Errno{ECONNREFUSED};
  return s;
}

Status UnixSocket::Connect(Task& t, std::string_view addr) {
  if (type_ == SOCK_DGRAM && addr.size() >= sizeof(sa_family_t)) {
    sa_family_t family;
    memcpy(&family, addr.data(), sizeof(family));
    if (family == AF_UNSPEC) {
      // unix_dgram_connect: AF_UNSPEC dissolves the association.
      std::shared_ptr<UnixSocket> old;
      absl::MutexLock l(&g_mu);
      old = peer_.lock();
      peer_.reset();
      connected_ = false;
      return Ok();
    }
  }
  {
    absl::MutexLock l(&g_mu);
    if (listening_) return Errno{EINVAL};
  }
  ASSIGN_OR_RETURN(Name n, ParseName(addr));
  ASSIGN_OR_RETURN(std::shared_ptr<UnixSocket> other, Lookup(t, n));
  if (other->type_ != type_) return Errno{EPROTOTYPE};
  if (type_ == SOCK_DGRAM) {
    std::shared_ptr<UnixSocket> old;
    std::shared_ptr<UnixSocket> their;
    absl::MutexLock l(&g_mu);
    // unix_may_send: a socket connected elsewhere hears its peer only.
    their = other->peer_.lock();
    if (other.get() != this && other->connected_ && their != nullptr && their.get() != this) {
      return Errno{EPERM};
    }
    if (passcred_ && name_.raw.empty()) TRY(AutobindLocked());
    old = peer_.lock();
    peer_ = other;
    connected_ = true;
    return Ok();
  }
  // Stream and seqpacket: a new socket joins the listener's queue at once
  // (unix_stream_connect); accept hands it out.
  const Credentials creds = CredsOf(t);
  std::shared_ptr<UnixSocket> embryo;
  {
    absl::MutexLock l(&g_mu);
    if (connected_) {
      return peer_.expired() && (shutdown_ == kShutdownMask) ? Errno{EINVAL} : Errno{EISCONN};
    }
  }
  auto inode = std::make_shared<SocketInode>(t.fsuid, t.fsgid);
  embryo = std::make_shared<UnixSocket>(inode, O_RDWR, type_);
  embryo->Register();
  absl::MutexLock l(&g_mu);
  for (;;) {
    if (connected_) return Errno{EISCONN};
    if (!other->listening_) return Errno{ECONNREFUSED};
    if (other->pending_.size() <= static_cast<size_t>(other->backlog_)) break;
    // The listener's queue is full: wait for an accept, unless O_NONBLOCK.
    if (flags() & O_NONBLOCK) return Errno{EAGAIN};
    other->queue_.Add(&t.waiter, ~0U);
    g_mu.Unlock();
    Status s = t.Block();
    other->queue_.Remove(&t.waiter);
    g_mu.Lock();
    if (!s.ok()) return Errno{kERestartSys};
  }
  if (passcred_ && name_.raw.empty()) TRY(AutobindLocked());
  embryo->peer_ = weak_from_this();
  embryo->connected_ = true;
  embryo->embryo_ = true;
  embryo->name_ = other->name_;
  embryo->peercred_ = creds;
  embryo->passcred_ = other->passcred_;
  peer_ = embryo;
  connected_ = true;
  peercred_ = other->own_creds_;
  other->pending_.push_back(embryo);
  other->queue_.Notify(POLLIN | POLLRDNORM);
  queue_.Notify(~0U);
  return Ok();
}

Result<vfs::FileRef> UnixSocket::Accept(Task& t, int flags, std::string* peer) {
  std::shared_ptr<UnixSocket> s;
  absl::MutexLock l(&g_mu);
  if (type_ == SOCK_DGRAM) return Errno{EOPNOTSUPP};
  if (!listening_) return Errno{EINVAL};
  const absl::Time deadline = Deadline(Timeout(rcvtimeo_));
  while (pending_.empty()) {
    if (Nonblocking(0)) return Errno{EAGAIN};
    if (int e = Wait(t, deadline); e != 0) return Errno{e};
    if (!listening_) return Errno{EINVAL};
  }
  s = std::move(pending_.front());
  pending_.pop_front();
  s->embryo_ = false;
  s->set_status_flags(O_RDWR | (flags & O_NONBLOCK));
  if (std::shared_ptr<UnixSocket> client = s->peer_.lock()) {
    *peer = client->name_.raw;
  }
  if (peer->empty()) {
    sa_family_t family = AF_UNIX;
    *peer = std::string(reinterpret_cast<const char*>(&family), sizeof(family));
  }
  queue_.Notify(POLLOUT);
  return vfs::FileRef(s);
}

Result<size_t> UnixSocket::Send(Task& t, SendRequest& req) {
  return type_ == SOCK_STREAM ? SendStream(t, req) : SendDatagram(t, req);
}

Result<size_t> UnixSocket::SendStream(Task& t, SendRequest& req) {
  const Credentials creds = req.creds.value_or(CredsOf(t));
  std::shared_ptr<UnixSocket> peer;
  size_t done = 0;
  absl::MutexLock l(&g_mu);
  if (!req.to.empty() && !connected_) return Errno{EOPNOTSUPP};
  if (!req.to.empty()) return Errno{EISCONN};
  const absl::Time deadline = Deadline(Timeout(sndtimeo_));
  for (;;) {
    if (shutdown_ & kSendShutdown) return done > 0 ? Result<size_t>(done) : Errno{EPIPE};
    if (!connected_) return Errno{ENOTCONN};
    peer = peer_.lock();
    if (peer == nullptr || (peer->shutdown_ & kRcvShutdown)) {
      return done > 0 ? Result<size_t>(done) : Errno{EPIPE};
    }
    if (done == req.data.size()) return done;  // a zero-length send sends nothing
    if (Writable()) {
      // unix_stream_sendmsg: pieces of at most half the send buffer.
      const size_t piece = std::min(req.data.size() - done, std::max<size_t>(sndbuf_ / 2 - 64, 1));
      Message m;
      m.data = std::string(req.data.substr(done, piece));
      m.fds = std::move(req.fds);
      req.fds.clear();
      m.creds = creds;
      m.sender = weak_from_this();
      inflight_ += m.data.size();
      peer->queued_bytes_ += m.data.size();
      peer->queue_msgs_.push_back(std::move(m));
      done += piece;
      peer->queue_.Notify(POLLIN | POLLRDNORM);
      if (done == req.data.size()) return done;
      continue;
    }
    if (Nonblocking(req.flags)) return done > 0 ? Result<size_t>(done) : Errno{EAGAIN};
    if (int e = Wait(t, deadline); e != 0) return done > 0 ? Result<size_t>(done) : Errno{e};
  }
}

Result<size_t> UnixSocket::SendDatagram(Task& t, SendRequest& req) {
  const Credentials creds = req.creds.value_or(CredsOf(t));
  std::shared_ptr<UnixSocket> peer;
  if (type_ == SOCK_SEQPACKET) {
    absl::MutexLock l(&g_mu);
    if (!connected_) return Errno{ENOTCONN};
    if (shutdown_ & kSendShutdown) return Errno{EPIPE};
    peer = peer_.lock();
    if (peer == nullptr || (peer->shutdown_ & kRcvShutdown)) return Errno{EPIPE};
  } else if (!req.to.empty()) {
    ASSIGN_OR_RETURN(Name n, ParseName(req.to));
    ASSIGN_OR_RETURN(peer, Lookup(t, n));
  } else {
    absl::MutexLock l(&g_mu);
    if (!connected_) return Errno{ENOTCONN};
    peer = peer_.lock();
    if (peer == nullptr) {
      // The peer went: this send says so, and the socket is unconnected.
      connected_ = false;
      peer_.reset();
      return Errno{ECONNREFUSED};
    }
  }
  absl::MutexLock l(&g_mu);
  if (type_ == SOCK_DGRAM) {
    if (peer->type_ != SOCK_DGRAM) return Errno{EPROTOTYPE};
    if (shutdown_ & kSendShutdown) return Errno{EPIPE};
    if (req.data.size() > sndbuf_ - 32) return Errno{EMSGSIZE};
    // A socket connected elsewhere takes datagrams from its peer only.
    if (std::shared_ptr<UnixSocket> their = peer->peer_.lock();
        their != nullptr && their.get() != this && peer->connected_) {
      return Errno{EPERM};
    }
    if (passcred_ && name_.raw.empty()) TRY(AutobindLocked());
  } else if (req.data.size() > sndbuf_ - 32) {
    return Errno{EMSGSIZE};
  }
  const absl::Time deadline = Deadline(Timeout(sndtimeo_));
  for (;;) {
    if (peer->shutdown_ & kRcvShutdown) return Errno{EPIPE};
    const bool queue_full = type_ == SOCK_DGRAM && peer->queue_msgs_.size() > kMaxDatagramQueue;
    if (!queue_full && Writable()) break;
    if (Nonblocking(req.flags)) return Errno{EAGAIN};
    // Wakes come on the receiver's queue (it read) or ours (freed bytes).
    peer->queue_.Add(&t.waiter, ~0U);
    queue_.Add(&t.waiter, ~0U);
    g_mu.Unlock();
    Status s = t.Block(deadline);
    peer->queue_.Remove(&t.waiter);
    queue_.Remove(&t.waiter);
    g_mu.Lock();
    if (!s.ok()) return Errno{s.error() == ETIMEDOUT ? EAGAIN : kERestartSys};
  }
  Message m;
  m.data = std::string(req.data);
  m.fds = std::move(req.fds);
  m.creds = creds;
  m.from = name_.raw;
  m.sender = weak_from_this();
  inflight_ += m.data.size();
  peer->queued_bytes_ += m.data.size();
  peer->queue_msgs_.push_back(std::move(m));
  peer->queue_.Notify(POLLIN | POLLRDNORM);
  return req.data.size();
}

void UnixSocket::TakeStream(size_t n, int flags, Received* r, std::deque<Message>* gone) {
  const bool peek = flags & MSG_PEEK;
  size_t at = 0;  // with MSG_PEEK, the message looked at
  while (r->data.size() < n && at < queue_msgs_.size()) {
    // Files already taken end the read.
    if (!r->fds.empty()) break;
    Message& m = queue_msgs_[at];
    // A message carrying files starts a read of its own, and ends it.
    if (!m.fds.empty() && !r->data.empty()) break;
    const size_t k = std::min(n - r->data.size(), m.left());
    r->data.append(m.data, m.off, k);
    if (!r->creds.has_value()) r->creds = m.creds;
    const bool had_fds = !m.fds.empty();
    if (had_fds && !peek) r->fds = std::move(m.fds);
    if (peek) {
      at++;
    } else {
      m.off += k;
      queued_bytes_ -= k;
      if (std::shared_ptr<UnixSocket> s = m.sender.lock()) {
        s->inflight_ -= std::min(s->inflight_, k);
        s->queue_.Notify(POLLOUT | POLLWRNORM);
      }
      if (m.left() == 0) {
        m.data.clear();
        m.sender.reset();
        gone->push_back(std::move(m));
        queue_msgs_.pop_front();
      }
    }
    if (had_fds) break;
  }
  r->length = r->data.size();
}

void UnixSocket::TakeMessage(size_t n, int flags, Received* r, std::deque<Message>* gone) {
  Message& m = queue_msgs_.front();
  const size_t k = std::min(n, m.data.size());
  r->data.assign(m.data, 0, k);
  r->length = (flags & MSG_TRUNC) ? m.data.size() : k;
  if (k < m.data.size()) r->msg_flags |= MSG_TRUNC;
  r->creds = m.creds;
  r->from = m.from;
  if (flags & MSG_PEEK) return;
  r->fds = std::move(m.fds);
  queued_bytes_ -= m.data.size();
  Consumed(m);
  m.sender.reset();
  gone->push_back(std::move(m));
  queue_msgs_.pop_front();
}

Result<Received> UnixSocket::Receive(Task& t, size_t n, int flags) {
  Received r;
  std::deque<Message> gone;  // let go after the lock
  {
    absl::MutexLock l(&g_mu);
    // unix_stream_read_generic: EINVAL unless connected (a listener too);
    // unix_seqpacket_recvmsg: ENOTCONN.
    if (type_ == SOCK_STREAM && !connected_) return Errno{EINVAL};
    if (type_ == SOCK_SEQPACKET && !connected_) return Errno{ENOTCONN};
    const bool waitall = type_ == SOCK_STREAM && (flags & MSG_WAITALL) && !(flags & MSG_PEEK);
    const absl::Time deadline = Deadline(Timeout(rcvtimeo_));
    bool took = false;
    for (;;) {
      if (!queue_msgs_.empty()) {
        took = true;
        if (type_ != SOCK_STREAM) {
          TakeMessage(n, flags, &r, &gone);
          break;
        }
        TakeStream(n, flags, &r, &gone);
        // MSG_WAITALL: on until n bytes, files, the end, or a signal.
        if (!waitall || r.data.size() >= n || !r.fds.empty()) break;
        continue;
      }
      const bool some = !r.data.empty();
      if (error_ != 0) {
        if (some) break;
        int e = error_;
        error_ = 0;
        return Errno{e};
      }
      if (shutdown_ & kRcvShutdown) break;  // end of file (0), or what came
      if (n == 0) break;
      if (Nonblocking(flags)) {
        if (some) break;
        return Errno{EAGAIN};
      }
      if (int e = Wait(t, deadline); e != 0) {
        if (some) break;
        return Errno{e};
      }
    }
    if (!passcred_) r.creds.reset();
    if (took) Changed();
  }
  return r;
}

Status UnixSocket::Shutdown(Task& t, int how) {
  if (how < SHUT_RD || how > SHUT_RDWR) return Errno{EINVAL};
  const int mode = how + 1;  // SHUT_RD 0 -> RCV_SHUTDOWN 1, ...
  absl::MutexLock l(&g_mu);
  shutdown_ |= mode;
  if (type_ != SOCK_DGRAM) {
    if (std::shared_ptr<UnixSocket> p = peer_.lock()) {
      int peer_mode = 0;
      if (mode & kRcvShutdown) peer_mode |= kSendShutdown;
      if (mode & kSendShutdown) peer_mode |= kRcvShutdown;
      p->shutdown_ |= peer_mode;
    }
  }
  Changed();
  return Ok();
}

Result<std::string> UnixSocket::SockName() {
  absl::MutexLock l(&g_mu);
  if (!name_.raw.empty()) return name_.raw;
  sa_family_t family = AF_UNIX;
  return std::string(reinterpret_cast<const char*>(&family), sizeof(family));
}

Result<std::string> UnixSocket::PeerName() {
  std::shared_ptr<UnixSocket> p;
  absl::MutexLock l(&g_mu);
  if (!connected_) return Errno{ENOTCONN};
  p = peer_.lock();
  if (p == nullptr) return Errno{ENOTCONN};
  if (!p->name_.raw.empty()) return p->name_.raw;
  sa_family_t family = AF_UNIX;
  return std::string(reinterpret_cast<const char*>(&family), sizeof(family));
}

Result<std::string> UnixSocket::GetOption(Task& t, int level, int name, size_t len) {
  if (level != SOL_SOCKET) return Errno{EOPNOTSUPP};
  auto int_value = [&](int v) -> Result<std::string> {
    std::string out(reinterpret_cast<const char*>(&v), sizeof(v));
    out.resize(std::min(len, out.size()));
    return out;
  };
  absl::MutexLock l(&g_mu);
  switch (name) {
    case SO_TYPE:
      return int_value(type_);
    case SO_DOMAIN:
      return int_value(AF_UNIX);
    case SO_PROTOCOL:
      return int_value(0);
    case SO_ACCEPTCONN:
      return int_value(listening_ ? 1 : 0);
    case SO_ERROR: {
      int e = error_;
      error_ = 0;
      return int_value(e);
    }
    case SO_SNDBUF:
      return int_value(static_cast<int>(sndbuf_));
    case SO_RCVBUF:
      return int_value(static_cast<int>(rcvbuf_));
    case SO_PASSCRED:
      return int_value(passcred_ ? 1 : 0);
    case SO_PEERCRED: {
      ucred c{};
      if (peercred_.has_value()) {
        c.pid = peercred_->pid;
        c.uid = peercred_->uid;
        c.gid = peercred_->gid;
      } else {
        c.uid = c.gid = static_cast<uint32_t>(-1);  // overflow ids: no peer
      }
      std::string out(reinterpret_cast<const char*>(&c), sizeof(c));
      out.resize(std::min(len, out.size()));
      return out;
    }
    case SO_REUSEADDR:
    case SO_KEEPALIVE:
    case SO_BROADCAST:
    case SO_DONTROUTE:
    case SO_OOBINLINE:
      return int_value(0);
    case SO_LINGER: {
      linger lg{};
      std::string out(reinterpret_cast<const char*>(&lg), sizeof(lg));
      out.resize(std::min(len, out.size()));
      return out;
    }
    case SO_SNDTIMEO:
    case SO_RCVTIMEO: {
      const timeval tv = name == SO_RCVTIMEO ? rcvtimeo_ : sndtimeo_;
      std::string out(reinterpret_cast<const char*>(&tv), sizeof(tv));
      out.resize(std::min(len, out.size()));
      return out;
    }
    default:
      return Errno{ENOPROTOOPT};
  }
}

Status UnixSocket::SetOption(Task& t, int level, int name, std::string_view value) {
  if (level != SOL_SOCKET) return Errno{EOPNOTSUPP};
  int v = 0;
  auto need_int = [&]() -> Status {
    if (value.size() < sizeof(int)) return Errno{EINVAL};
    memcpy(&v, value.data(), sizeof(v));
    return Ok();
  };
  absl::MutexLock l(&g_mu);
  switch (name) {
    case SO_SNDBUF:
    case SO_RCVBUF: {
      TRY(need_int());
      // sock_setsockopt: at most the sysctl's maximum, then doubled for
      // the kernel's bookkeeping, and never below the minimum.
      const size_t want = std::min<size_t>(static_cast<size_t>(std::max(v, 0)), kMaxBuffer) * 2;
      if (name == SO_SNDBUF) {
        sndbuf_ = std::max(want, kMinSendBuffer);
        queue_.Notify(POLLOUT | POLLWRNORM);
      } else {
        rcvbuf_ = std::max(want, kMinReceiveBuffer);
      }
      return Ok();
    }
    case SO_PASSCRED:
      TRY(need_int());
      passcred_ = v != 0;
      return Ok();
    case SO_REUSEADDR:
    case SO_KEEPALIVE:
    case SO_BROADCAST:
    case SO_DONTROUTE:
    case SO_OOBINLINE:
    case SO_SNDTIMEO:
    case SO_RCVTIMEO: {
      // sock_set_timeout: usec in range (EDOM); a negative time is zero.
      timeval tv;
      if (value.size() < sizeof(tv)) return Errno{EINVAL};
      memcpy(&tv, value.data(), sizeof(tv));
      if (tv.tv_usec < 0 || tv.tv_usec >= 1000000) return Errno{EDOM};
      if (tv.tv_sec < 0) tv = {0, 1};
      (name == SO_RCVTIMEO ? rcvtimeo_ : sndtimeo_) = tv;
      return Ok();
    }
    case SO_LINGER:
    case SO_PRIORITY:
      // Accepted: they change nothing a unix socket does here.
      return value.size() < sizeof(int) ? Errno{EINVAL} : Ok();
    default:
      return Errno{ENOPROTOOPT};
  }
}

Result<size_t> UnixSocket::Read(char* buf, size_t n) {
  Task* t = Kernel::Current();
  if (t == nullptr) return Errno{EAGAIN};
  t->kernel().mu.AssertHeld();
  ASSIGN_OR_RETURN(Received r, Receive(*t, n, 0));
  std::copy(r.data.begin(), r.data.end(), buf);
  // Files that came with the bytes are not taken by read(2): they close.
  return r.data.size();
}

Result<size_t> UnixSocket::Write(const char* buf, size_t n) {
  Task* t = Kernel::Current();
  if (t == nullptr) return Errno{EAGAIN};
  t->kernel().mu.AssertHeld();
  SendRequest req;
  req.data = std::string_view(buf, n);
  return Send(*t, req);
}

Result<long> UnixSocket::Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) {
  int n = 0;
  {
    absl::MutexLock l(&g_mu);
    switch (cmd) {
      case SIOCINQ:
        if (listening_) return Errno{EINVAL};
        if (type_ != SOCK_DGRAM) {
          n = static_cast<int>(queued_bytes_);  // what is left to read
        } else {
          n = queue_msgs_.empty() ? 0 : static_cast<int>(queue_msgs_.front().data.size());
        }
        break;
      case SIOCOUTQ:
        n = static_cast<int>(inflight_);
        break;
      default:
        return Errno{ENOTTY};
    }
  }
  TRY(mm.CopyOut(arg, &n, sizeof(n)));
  return 0L;
}

uint32_t UnixSocket::Readiness(uint32_t mask) {
  absl::MutexLock l(&g_mu);
  uint32_t ready = 0;
  if (error_ != 0) ready |= POLLERR;
  if (shutdown_ == kShutdownMask) ready |= POLLHUP;
  if (shutdown_ & kRcvShutdown) ready |= POLLRDHUP | POLLIN | POLLRDNORM;
  if (listening_ ? !pending_.empty() : !queue_msgs_.empty()) ready |= POLLIN | POLLRDNORM;
  if (type_ != SOCK_DGRAM && !connected_ && !listening_) ready |= POLLHUP;
  // unix_writable: what this socket has in flight is at most a quarter of
  // its send buffer; a datagram socket also needs room at its peer.
  bool writable = inflight_ * 4 <= sndbuf_;
  if (type_ == SOCK_DGRAM && writable) {
    if (std::shared_ptr<UnixSocket> p = peer_.lock(); p != nullptr && connected_) {
      std::shared_ptr<UnixSocket> their = p->peer_.lock();
      if ((their == nullptr || their.get() == this) && p->queue_msgs_.size() > kMaxDatagramQueue) {
        writable = false;
      }
    }
  }
  if (writable && !listening_) ready |= POLLOUT | POLLWRNORM | POLLWRBAND;
  return ready & (mask | POLLHUP | POLLERR);
}

std::string UnixSocket::ProcLine() {
  // Num RefCount Protocol Flags Type St Inode Path (unix_seq_show).
  absl::MutexLock l(&g_mu);
  const int state = listening_ ? 1 : connected_ ? 3 : 1;  // SS_UNCONNECTED 1, SS_CONNECTED 3
  std::string path;
  if (!name_.raw.empty()) {
    path = " " + name_.path;
    if (name_.abstract) path[1] = '@';
  }
  const uint64_t ino = static_cast<SocketInode&>(*inode()).ino();
  return absl::StrFormat("%016x: %08X %08X %08X %04X %02X %5u%s\n", 0, 2, 0,
                         listening_ ? 0x10000 : 0, type_, state, ino, path);
}

}  // namespace

void SetUnixPathOps(const PathOps& ops) { g_path_ops = ops; }

Result<vfs::FileRef> NewUnixSocket(Task& t, int type, int flags) {
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    return Errno{ESOCKTNOSUPPORT};
  }
  auto s =
      std::make_shared<UnixSocket>(std::make_shared<SocketInode>(t.fsuid, t.fsgid), flags, type);
  s->Register();
  return vfs::FileRef(s);
}

Result<std::pair<vfs::FileRef, vfs::FileRef>> NewUnixPair(Task& t, int type, int flags) {
  ASSIGN_OR_RETURN(vfs::FileRef a, NewUnixSocket(t, type, flags));
  ASSIGN_OR_RETURN(vfs::FileRef b, NewUnixSocket(t, type, flags));
  UnixSocket::Pair(std::static_pointer_cast<UnixSocket>(a), std::static_pointer_cast<UnixSocket>(b),
                   CredsOf(t));
  return std::make_pair(std::move(a), std::move(b));
}

std::string ProcNetUnix() {
  std::vector<std::shared_ptr<UnixSocket>> all;
  {
    absl::MutexLock l(&g_mu);
    for (auto& [p, w] : All()) {
      if (std::shared_ptr<UnixSocket> s = w.lock()) all.push_back(std::move(s));
    }
  }
  std::string out = "Num       RefCount Protocol Flags    Type St Inode Path\n";
  for (const auto& s : all) out += s->ProcLine();
  return out;
}

}  // namespace husk::net
