// Sockets as the syscall layer sees them (socket(2), bind(2), sendmsg(2),
// ...): a vfs::File with the socket operations. Families implement it:
// unix domain sockets (sentry/net/unix.h), and later the sandbox's own
// TCP/IP stack. Addresses travel as the raw bytes of a struct sockaddr, as
// the application passed or will receive them.
//
// Every operation runs in a task's syscall, under the big kernel lock;
// blocking drops it (Task::Block).
#ifndef HUSK_SENTRY_NET_SOCKET_H_
#define HUSK_SENTRY_NET_SOCKET_H_

#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "base/result.h"
#include "sentry/kernel/kernel.h"
#include "sentry/vfs/vfs.h"

namespace husk::net {

// SCM_CREDENTIALS (struct ucred).
struct Credentials {
  int32_t pid = 0;
  uint32_t uid = 0, gid = 0;
};

// A control message a send carries or a receive gives (cmsg(3)): IP_PKTINFO, IP_TTL,
// SCM_TIMESTAMP, ... (SCM_RIGHTS and SCM_CREDENTIALS have fields of their
// own below).
struct ControlMessage {
  int level = 0, type = 0;
  std::string data;
};

// One message to send: the bytes, the descriptors (SCM_RIGHTS) and
// credentials (SCM_CREDENTIALS) that go with them, and where to (empty:
// the connected peer).
struct SendRequest {
  std::string_view data;
  std::vector<vfs::FileRef> fds;
  std::optional<Credentials> creds;
  std::string to;
  int flags = 0;  // MSG_DONTWAIT, MSG_NOSIGNAL, MSG_EOR, ...
  // Control messages of levels other than SOL_SOCKET (IP_PKTINFO, IP_TOS,
  // ...), as given; a family takes those it knows.
  std::vector<ControlMessage> control;
};

// What a receive got. `length` is what recv(2) returns: the bytes taken,
// or with MSG_TRUNC on a datagram socket the message's whole length.
struct Received {
  std::string data;
  size_t length = 0;
  std::vector<vfs::FileRef> fds;
  std::optional<Credentials> creds;     // when the receiver asked (SO_PASSCRED)
  std::string from;                     // the sender's address (datagrams)
  int msg_flags = 0;                    // MSG_TRUNC, ...
  std::vector<ControlMessage> control;  // after the credentials and descriptors' messages
};

class Socket : public vfs::File {
 public:
  using vfs::File::File;

  virtual int Domain() const = 0;
  virtual int SockType() const = 0;

  virtual Status Bind(Task& t, std::string_view addr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) = 0;
  virtual Status Listen(Task& t, int backlog) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) = 0;
  // The new connection's file (its status flags from `flags`: O_NONBLOCK)
  // and, in *peer, the address of whoever connected.
  virtual Result<vfs::FileRef> Accept(Task& t, int flags, std::string* peer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) = 0;
  virtual Status Connect(Task& t, std::string_view addr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) = 0;
  virtual Result<size_t> Send(Task& t, SendRequest& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) = 0;
  // flags: MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_TRUNC.
  virtual Result<Received> Receive(Task& t, size_t n, int flags)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) = 0;
  virtual Status Shutdown(Task& t, int how) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) = 0;
  virtual Result<std::string> SockName() = 0;
  virtual Result<std::string> PeerName() = 0;
  // Options as bytes: GetOption answers at most `len` bytes of the value.
  virtual Result<std::string> GetOption(Task& t, int level, int name, size_t len)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) = 0;
  virtual Status SetOption(Task& t, int level, int name, std::string_view value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) = 0;
  // The largest datagram Send may take whole (EMSGSIZE beyond); 0 for a
  // stream, which the syscall layer may send in pieces.
  virtual size_t MaxMessage() const = 0;

  // read(2) and write(2): a Receive and a Send without flags, as
  // sock_read_iter and sock_write_iter make them (a read of 0 bytes takes
  // nothing; descriptors that came with the bytes are not taken: they
  // close). A socket has no position.
  Result<size_t> Read(char* buf, size_t n) override;
  Result<size_t> Write(const char* buf, size_t n) override;
  Result<size_t> PRead(char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<size_t> PWrite(const char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<off_t> Seek(off_t, int) override { return Errno{ESPIPE}; }
};

// Urgent data announced to a TCP socket (tcp_check_urg): its owner
// (F_SETOWN) hears SIGURG, as sk_send_sigurg sends it, whatever O_ASYNC
// says. The syscalls layer installs the sender (it needs the kernel's
// lock, so it sends from a thread of its own); callable under any lock.
// `key` is the socket itself, named without locking `socket`.
void PostUrgent(std::weak_ptr<vfs::File> socket, const vfs::File* key);
void SetUrgentPoster(void (*post)(std::weak_ptr<vfs::File>, const vfs::File*));

// SO_RCVTIMEO and SO_SNDTIMEO as setsockopt gives them (sock_set_timeout):
// a timeval, its microseconds in range (EDOM), a negative time taken as the
// shortest one. Zero is no timeout.
Result<timeval> ParseSocketTimeout(std::string_view value);
// The deadline (MonotonicNow's clock) of a wait that starts now under such a
// timeout: none for zero.
absl::Time SocketDeadline(const timeval& timeout);

// netdevice(7)'s interface ioctls (SIOCGIFINDEX, SIOCGIFNAME, SIOCGIFFLAGS,
// SIOCGIFCONF, ...) on any socket, for the sandbox's loopback; ENOTTY for
// other requests (sentry/net/interfaces.cc).
Result<long> InterfaceIoctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg);

// What every socket's file stands on: an inode of sockfs (one device for
// all sockets, mode S_IFSOCK|0777, owned by its creator).
class SocketInode : public vfs::Inode {
 public:
  SocketInode(uid_t uid, gid_t gid);
  mode_t Type() override { return S_IFSOCK; }
  bool Stream() override { return true; }
  Result<struct stat> Stat() override;
  Result<struct statfs> Statfs() override;
  uint64_t ino() const { return ino_; }

 private:
  uint64_t ino_;
  uid_t uid_;
  gid_t gid_;
  timespec time_{};
};

// The socket behind f, or null.
inline Socket* AsSocket(vfs::File& f) { return dynamic_cast<Socket*>(&f); }

}  // namespace husk::net

#endif  // HUSK_SENTRY_NET_SOCKET_H_
