// Conformance: AF_UNIX sockets (unix(7)) as Linux behaves. Covers creating them (socket,
// socketpair, the type and protocol checks, SOCK_NONBLOCK/SOCK_CLOEXEC); socket options
// (SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ACCEPTCONN, SO_ERROR, SO_SNDBUF/SO_RCVBUF doubling,
// SO_PASSCRED, SO_PEERCRED, SO_RCVTIMEO, short option lengths); names (filesystem paths and
// their socket nodes, abstract names, autobind, getsockname/getpeername and the address
// lengths they report); SOCK_STREAM connections (listen, accept, accept4, connect and their
// errors, the backlog, reads and writes with MSG_PEEK/MSG_DONTWAIT/MSG_WAITALL/MSG_NOSIGNAL,
// EOF, shutdown, EPIPE and SIGPIPE, resets, FIONREAD/SIOCINQ/SIOCOUTQ, a full send buffer);
// SOCK_DGRAM (addresses, boundaries, truncation, connected sockets, EMSGSIZE, a full receiver);
// SOCK_SEQPACKET; ancillary data (SCM_RIGHTS, MSG_CMSG_CLOEXEC, MSG_CTRUNC, fds in flight,
// SCM_CREDENTIALS); poll and epoll readiness; sendmmsg and recvmmsg.
//
// Socket paths live in a TempDir; abstract names carry the pid and a counter so that runs
// never collide. Cases that change process state (signal masks, the umask, the working
// directory, capabilities) or need a second process run in a forked child, which reports a
// failed check on stderr and exits 1; every child is waited for with a bound. Blocking calls
// that could hang wait through poll for at most kWaitMs.
//
// Relies on, beyond the start-up set in test_util.h: socket, socketpair, bind, listen,
// accept, accept4, connect, getsockname, getpeername, getsockopt, setsockopt, sendto,
// recvfrom, sendmsg, recvmsg, sendmmsg, recvmmsg, shutdown, ioctl (FIONREAD/SIOCINQ,
// SIOCOUTQ), fcntl, lseek, pwrite64, poll, epoll_create1, epoll_ctl, epoll_wait, pipe2, dup,
// readlink, umask, chdir, fork, wait4, kill, getppid, capset, rt_sigprocmask, rt_sigpending,
// rt_sigtimedwait.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "tests/syscalls/socket_util.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

constexpr socklen_t kPathOffset = offsetof(sockaddr_un, sun_path);  // 2

// A socket address and its length.
struct Addr {
  sockaddr_un sa{};
  socklen_t len = 0;

  sockaddr* get() { return reinterpret_cast<sockaddr*>(&sa); }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&sa); }
  // sun_path as far as len reaches (for abstract names: the leading NUL included).
  std::string path() const {
    if (len <= kPathOffset) return "";
    std::string p(sa.sun_path, len - kPathOffset);
    if (!p.empty() && p[0] != '\0') p = p.c_str();  // a path: up to its NUL
    return p;
  }
};

// A filesystem name; len counts the terminating NUL, as getsockname reports it.
Addr PathAddr(const std::string& path) {
  Addr a;
  a.sa.sun_family = AF_UNIX;
  memcpy(a.sa.sun_path, path.data(), path.size());
  a.len = kPathOffset + path.size() + 1;
  return a;
}

// An abstract name: a NUL and then exactly `name` (no terminator).
Addr AbstractAddr(const std::string& name) {
  Addr a;
  a.sa.sun_family = AF_UNIX;
  memcpy(a.sa.sun_path + 1, name.data(), name.size());
  a.len = kPathOffset + 1 + name.size();
  return a;
}

// A new abstract name, unique to this process and call.
std::string UniqueName() {
  static int counter = 0;
  return "husk-unix-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

Fd Socket(int type) { return Fd(socket(AF_UNIX, type, 0)); }

int Bind(int fd, const Addr& a) { return bind(fd, a.get(), a.len); }
int Connect(int fd, const Addr& a) { return connect(fd, a.get(), a.len); }

Addr SockName(int fd) {
  Addr a;
  a.len = sizeof(a.sa);
  if (getsockname(fd, a.get(), &a.len) != 0) a.len = ~0u;
  return a;
}

Addr PeerName(int fd) {
  Addr a;
  a.len = sizeof(a.sa);
  if (getpeername(fd, a.get(), &a.len) != 0) a.len = ~0u;
  return a;
}

// A bound socket of `type`, listening with `backlog` unless it is a datagram socket.
Fd Listener(const Addr& a, int type = SOCK_STREAM, int backlog = 16) {
  Fd fd = Socket(type);
  if (!fd.valid() || Bind(fd.get(), a) != 0) {
    ADD_FAILURE() << "bind " << a.path() << ": " << ErrnoName(errno);
    return Fd();
  }
  if (type != SOCK_DGRAM && listen(fd.get(), backlog) != 0) {
    ADD_FAILURE() << "listen: " << ErrnoName(errno);
    return Fd();
  }
  return fd;
}

struct Pair {
  Fd a, b;
};

Pair MakePair(int type, int flags = 0) {
  int sv[2] = {-1, -1};
  EXPECT_EQ(socketpair(AF_UNIX, type | flags, 0, sv), 0) << ErrnoName(errno);
  return Pair{Fd(sv[0]), Fd(sv[1])};
}

// A connected pair made with connect and accept on `listener` (bound to `a`): a is the
// connecting end, b the accepted one.
Pair Connected(int listener, const Addr& a, int type = SOCK_STREAM) {
  Pair p;
  p.a = Socket(type);
  if (Connect(p.a.get(), a) != 0) {
    ADD_FAILURE() << "connect: " << ErrnoName(errno);
    return p;
  }
  p.b.Reset(accept(listener, nullptr, nullptr));
  EXPECT_TRUE(p.b.valid()) << "accept: " << ErrnoName(errno);
  return p;
}

bool Send(int fd, std::string_view s, int flags = 0) {
  return send(fd, s.data(), s.size(), flags) == static_cast<ssize_t>(s.size());
}

int GetInt(int fd, int level, int name) {
  int v = -12345;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, level, name, &v, &len) != 0) return -1000 - errno;
  if (len != sizeof(v)) return -2000 - static_cast<int>(len);
  return v;
}

int SetInt(int fd, int level, int name, int v) {
  return setsockopt(fd, level, name, &v, sizeof(v));
}

ucred PeerCred(int fd) {
  ucred c{-2, static_cast<uid_t>(-2), static_cast<gid_t>(-2)};
  socklen_t len = sizeof(c);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0 || len != sizeof(c)) {
    ADD_FAILURE() << "SO_PEERCRED: " << ErrnoName(errno) << " len " << len;
  }
  return c;
}

int Queued(int fd, unsigned long request = FIONREAD) {
  int n = -1;
  return ioctl(fd, request, &n) == 0 ? n : -1000 - errno;
}

// The number the next new descriptor would get.
int LowestFreeFd() {
  const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return fd;
}

// Sends `data` with one SCM_RIGHTS message carrying `fds` (to `to`, if given).
ssize_t SendFds(int sock, const std::vector<int>& fds, std::string_view data = "x",
                const Addr* to = nullptr) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr msg{};
  if (to != nullptr) {
    msg.msg_name = const_cast<sockaddr*>(to->get());
    msg.msg_namelen = to->len;
  }
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  return sendmsg(sock, &msg, 0);
}

// Sends `data` with an SCM_CREDENTIALS message naming `cred`.
ssize_t SendCreds(int sock, const ucred& cred, std::string_view data = "c") {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_CREDENTIALS;
  c->cmsg_len = CMSG_LEN(sizeof(ucred));
  memcpy(CMSG_DATA(c), &cred, sizeof(cred));
  return sendmsg(sock, &msg, 0);
}

// What one recvmsg(2) brought.
struct Received {
  ssize_t n = -1;
  int err = 0;
  std::string data;
  int msg_flags = 0;
  std::vector<Fd> fds;
  bool has_cred = false;
  ucred cred{};
  int cmsgs = 0;
};

// One recvmsg with a `control_len`-byte control buffer (waits at most kWaitMs for data
// unless `flags` has MSG_DONTWAIT).
Received RecvMsg(int sock, size_t max = 256, size_t control_len = 256, int flags = 0) {
  Received r;
  if (!(flags & MSG_DONTWAIT) && Revents(sock, POLLIN, kWaitMs) <= 0) {
    r.err = ETIMEDOUT;
    return r;
  }
  std::string buf(max, '\0');
  iovec iov{buf.data(), buf.size()};
  std::vector<char> control(control_len + 1);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control_len ? control.data() : nullptr;
  msg.msg_controllen = control_len;
  r.n = recvmsg(sock, &msg, flags);
  if (r.n < 0) {
    r.err = errno;
    return r;
  }
  r.data.assign(buf.data(), std::min<size_t>(r.n, max));
  r.msg_flags = msg.msg_flags;
  if (msg.msg_controllen == 0) return r;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    r.cmsgs++;
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        r.fds.emplace_back(fd);
      }
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      r.has_cred = true;
      memcpy(&r.cred, CMSG_DATA(c), sizeof(ucred));
    }
  }
  return r;
}

bool SameFile(int a, int b) {
  struct stat sa, sb;
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

bool BlockSignal(int sig) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  return sigprocmask(SIG_BLOCK, &set, nullptr) == 0;
}

bool Pending(int sig) {
  sigset_t set;
  return sigpending(&set) == 0 && sigismember(&set, sig) == 1;
}

// ---------------------------------------------------------------------------------------
// Creating sockets.

TEST(UnixCreateTest, EachTypeCreatesASocketOfThatType) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET}) {
    Fd fd = Socket(type);
    ASSERT_TRUE(fd.valid()) << type << ": " << ErrnoName(errno);
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_TYPE), type);
    struct stat st;
    ASSERT_OK(fstat(fd.get(), &st));
    EXPECT_TRUE(S_ISSOCK(st.st_mode)) << std::oct << st.st_mode;
  }
}

TEST(UnixCreateTest, SockNonblockAndSockCloexecSetTheFlags) {
  Fd plain = Socket(SOCK_STREAM);
  ASSERT_TRUE(plain.valid());
  EXPECT_EQ(fcntl(plain.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(fcntl(plain.get(), F_GETFD), 0);
  Fd nb = Socket(SOCK_DGRAM | SOCK_NONBLOCK);
  ASSERT_TRUE(nb.valid());
  EXPECT_NE(fcntl(nb.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(fcntl(nb.get(), F_GETFD), 0);
  Fd ce = Socket(SOCK_SEQPACKET | SOCK_CLOEXEC);
  ASSERT_TRUE(ce.valid());
  EXPECT_EQ(fcntl(ce.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(fcntl(ce.get(), F_GETFD), FD_CLOEXEC);
  // The flags are not part of the type.
  EXPECT_EQ(GetInt(nb.get(), SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
  EXPECT_EQ(GetInt(ce.get(), SOL_SOCKET, SO_TYPE), SOCK_SEQPACKET);
}

// unix_create() quietly turns SOCK_RAW into SOCK_DGRAM.
TEST(UnixCreateTest, SockRawIsCreatedAsADatagramSocket) {
  Fd fd = Socket(SOCK_RAW);
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
}

// Types below SOCK_MAX that AF_UNIX lacks are ESOCKTNOSUPPORT; numbers at or beyond
// SOCK_MAX (11) and unknown flag bits are EINVAL before the family is asked.
TEST(UnixCreateTest, BadTypesFailEsocktnosupportOrEinval) {
  EXPECT_ERRNO(socket(AF_UNIX, 0, 0), ESOCKTNOSUPPORT);
  EXPECT_ERRNO(socket(AF_UNIX, SOCK_RDM, 0), ESOCKTNOSUPPORT);
  EXPECT_ERRNO(socket(AF_UNIX, SOCK_DCCP, 0), ESOCKTNOSUPPORT);
  EXPECT_ERRNO(socket(AF_UNIX, SOCK_PACKET, 0), ESOCKTNOSUPPORT);
  EXPECT_ERRNO(socket(AF_UNIX, 11, 0), EINVAL);
  EXPECT_ERRNO(socket(AF_UNIX, 15, 0), EINVAL);
  EXPECT_ERRNO(socket(AF_UNIX, SOCK_STREAM | 0x100, 0), EINVAL);
  int sv[2];
  EXPECT_ERRNO(socketpair(AF_UNIX, SOCK_RDM, 0, sv), ESOCKTNOSUPPORT);
  EXPECT_ERRNO(socketpair(AF_UNIX, 12, 0, sv), EINVAL);
}

// Protocol 0 and PF_UNIX (1) are both accepted; SO_PROTOCOL reports 0 either way.
TEST(UnixCreateTest, ProtocolsOtherThanZeroOrPfUnixFailEprotonosupport) {
  EXPECT_ERRNO(socket(AF_UNIX, SOCK_STREAM, 2), EPROTONOSUPPORT);
  EXPECT_ERRNO(socket(AF_UNIX, SOCK_DGRAM, 17), EPROTONOSUPPORT);
  int sv[2];
  EXPECT_ERRNO(socketpair(AF_UNIX, SOCK_STREAM, 2, sv), EPROTONOSUPPORT);
  Fd one(socket(AF_UNIX, SOCK_STREAM, PF_UNIX));
  ASSERT_TRUE(one.valid()) << ErrnoName(errno);
  EXPECT_EQ(GetInt(one.get(), SOL_SOCKET, SO_PROTOCOL), 0);
}

TEST(UnixCreateTest, SocketpairConnectsTwoSocketsOfEachType) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET}) {
    Pair p = MakePair(type);
    ASSERT_TRUE(p.a.valid() && p.b.valid()) << type;
    EXPECT_EQ(GetInt(p.a.get(), SOL_SOCKET, SO_TYPE), type);
    EXPECT_EQ(GetInt(p.b.get(), SOL_SOCKET, SO_TYPE), type);
    ASSERT_TRUE(Send(p.a.get(), "ping"));
    EXPECT_EQ(RecvNow(p.b.get()), "ping") << type;
    ASSERT_TRUE(Send(p.b.get(), "pong"));
    EXPECT_EQ(RecvNow(p.a.get()), "pong") << type;
  }
}

TEST(UnixCreateTest, SocketpairFlagsApplyToBothEnds) {
  Pair p = MakePair(SOCK_STREAM, SOCK_NONBLOCK | SOCK_CLOEXEC);
  for (int fd : {p.a.get(), p.b.get()}) {
    EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
  }
  EXPECT_EQ(RecvNow(p.a.get()), "[EAGAIN]");
  EXPECT_EQ(Recv(p.a.get()), "[EAGAIN]");  // O_NONBLOCK, not just MSG_DONTWAIT
}

TEST(UnixCreateTest, ProcFdNamesTheSocketByInode) {
  Fd fd = Socket(SOCK_STREAM);
  ASSERT_TRUE(fd.valid());
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  char link[64] = {};
  const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  ASSERT_OK(readlink(path.c_str(), link, sizeof(link) - 1));
  EXPECT_EQ(std::string(link), "socket:[" + std::to_string(st.st_ino) + "]");
}

// Sockets are not seekable and have no file position.
TEST(UnixCreateTest, SocketsCannotSeek) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_ERRNO(lseek(p.a.get(), 0, SEEK_CUR), ESPIPE);
  char c = 0;
  EXPECT_ERRNO(pwrite(p.a.get(), &c, 1, 0), ESPIPE);
}

// ---------------------------------------------------------------------------------------
// Socket options.

TEST(UnixSockoptTest, TypeDomainAndProtocolAreReported) {
  Fd fd = Socket(SOCK_SEQPACKET);
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_TYPE), SOCK_SEQPACKET);
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_DOMAIN), AF_UNIX);
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_PROTOCOL), 0);
  // They are read-only.
  EXPECT_ERRNO(SetInt(fd.get(), SOL_SOCKET, SO_TYPE, SOCK_STREAM), ENOPROTOOPT);
}

TEST(UnixSockoptTest, AcceptconnIsSetByListen) {
  TempDir dir;
  Fd fd = Socket(SOCK_STREAM);
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN), 0);
  ASSERT_OK(Bind(fd.get(), PathAddr(dir.Join("s"))));
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN), 0);
  ASSERT_OK(listen(fd.get(), 1));
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN), 1);
  Pair p = Connected(fd.get(), PathAddr(dir.Join("s")));
  EXPECT_EQ(GetInt(p.a.get(), SOL_SOCKET, SO_ACCEPTCONN), 0);
  EXPECT_EQ(GetInt(p.b.get(), SOL_SOCKET, SO_ACCEPTCONN), 0);
}

TEST(UnixSockoptTest, SoErrorIsZeroOnAHealthySocket) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_EQ(GetInt(p.a.get(), SOL_SOCKET, SO_ERROR), 0);
  Fd fd = Socket(SOCK_DGRAM);
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_ERROR), 0);
}

// Linux stores twice what is asked, to leave room for its bookkeeping.
TEST(UnixSockoptTest, SettingSndbufOrRcvbufStoresTwiceTheValue) {
  Fd fd = Socket(SOCK_STREAM);
  ASSERT_TRUE(fd.valid());
  EXPECT_GT(GetInt(fd.get(), SOL_SOCKET, SO_SNDBUF), 0);
  EXPECT_GT(GetInt(fd.get(), SOL_SOCKET, SO_RCVBUF), 0);
  for (int v : {32768, 40000}) {
    ASSERT_OK(SetInt(fd.get(), SOL_SOCKET, SO_SNDBUF, v));
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_SNDBUF), 2 * v);
    ASSERT_OK(SetInt(fd.get(), SOL_SOCKET, SO_RCVBUF, v));
    EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_RCVBUF), 2 * v);
  }
}

TEST(UnixSockoptTest, PasscredCanBeSetAndCleared) {
  Fd fd = Socket(SOCK_DGRAM);
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_PASSCRED), 0);
  ASSERT_OK(SetInt(fd.get(), SOL_SOCKET, SO_PASSCRED, 1));
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_PASSCRED), 1);
  ASSERT_OK(SetInt(fd.get(), SOL_SOCKET, SO_PASSCRED, 0));
  EXPECT_EQ(GetInt(fd.get(), SOL_SOCKET, SO_PASSCRED), 0);
}

TEST(UnixSockoptTest, PeercredOfASocketpairIsItsCreator) {
  Pair p = MakePair(SOCK_STREAM);
  for (int fd : {p.a.get(), p.b.get()}) {
    const ucred c = PeerCred(fd);
    EXPECT_EQ(c.pid, getpid());
    EXPECT_EQ(c.uid, getuid());
    EXPECT_EQ(c.gid, getgid());
  }
}

// An unconnected socket has no peer: pid 0 and ids of -1.
TEST(UnixSockoptTest, PeercredOfAnUnconnectedSocketIsEmpty) {
  Fd fd = Socket(SOCK_STREAM);
  ASSERT_TRUE(fd.valid());
  const ucred c = PeerCred(fd.get());
  EXPECT_EQ(c.pid, 0);
  EXPECT_EQ(c.uid, static_cast<uid_t>(-1));
  EXPECT_EQ(c.gid, static_cast<gid_t>(-1));
}

// The accepted socket's peer is the process that called connect(), here a child.
TEST(UnixSockoptTest, PeercredOfAnAcceptedSocketIsTheConnectingProcess) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("s"));
  Fd listener = Listener(a);
  ASSERT_TRUE(listener.valid());
  Child child([&] {
    Fd c = Socket(SOCK_STREAM);
    REQUIRE(Connect(c.get(), a) == 0);
    char buf[1];
    REQUIRE(read(c.get(), buf, 1) == 0);  // stays until the parent closes its end
    return 0;
  });
  ASSERT_TRUE(child.ok());
  Fd accepted(accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(accepted.valid()) << ErrnoName(errno);
  const ucred c = PeerCred(accepted.get());
  EXPECT_EQ(c.pid, child.pid());
  EXPECT_EQ(c.uid, getuid());
  EXPECT_EQ(c.gid, getgid());
  accepted.Reset();
  EXPECT_TRUE(child.ExitsZero());
}

// The connecting socket's peer is the process that called listen(), here a child.
TEST(UnixSockoptTest, PeercredOfAConnectingSocketIsTheListeningProcess) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("s"));
  Pipe ready = MakePipe();
  Child child([&] {
    Fd l = Listener(a);
    REQUIRE(l.valid());
    REQUIRE(write(ready.w.get(), "r", 1) == 1);
    Fd s(accept(l.get(), nullptr, nullptr));
    REQUIRE(s.valid());
    char buf[1];
    REQUIRE(read(s.get(), buf, 1) == 0);
    return 0;
  });
  ASSERT_TRUE(child.ok());
  ready.w.Reset();
  char c;
  ASSERT_EQ(read(ready.r.get(), &c, 1), 1);
  Fd s = Socket(SOCK_STREAM);
  ASSERT_OK(Connect(s.get(), a));
  const ucred cred = PeerCred(s.get());
  EXPECT_EQ(cred.pid, child.pid());
  EXPECT_EQ(cred.uid, getuid());
  s.Reset();
  EXPECT_TRUE(child.ExitsZero());
}

// A short optlen gets the value's first bytes and the short length back; a negative one is
// EINVAL.
TEST(UnixSockoptTest, AShortOptlenTruncatesTheValue) {
  Fd fd = Socket(SOCK_SEQPACKET);
  ASSERT_TRUE(fd.valid());
  unsigned char buf[8];
  memset(buf, 0xee, sizeof(buf));
  socklen_t len = 2;
  ASSERT_OK(getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, buf, &len));
  EXPECT_EQ(len, 2u);
  EXPECT_EQ(buf[0], SOCK_SEQPACKET);  // little-endian
  EXPECT_EQ(buf[1], 0);
  EXPECT_EQ(buf[2], 0xee);
  len = 0;
  ASSERT_OK(getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, buf, &len));
  EXPECT_EQ(len, 0u);
  int big[4] = {-1, -1, -1, -1};
  len = sizeof(big);
  ASSERT_OK(getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, big, &len));
  EXPECT_EQ(len, sizeof(int));
  len = static_cast<socklen_t>(-1);
  EXPECT_ERRNO(getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, buf, &len), EINVAL);
}

TEST(UnixSockoptTest, UnknownOptionsFailEnoprotoopt) {
  Fd fd = Socket(SOCK_STREAM);
  ASSERT_TRUE(fd.valid());
  int v = 0;
  socklen_t len = sizeof(v);
  EXPECT_ERRNO(getsockopt(fd.get(), SOL_SOCKET, 9999, &v, &len), ENOPROTOOPT);
  EXPECT_ERRNO(SetInt(fd.get(), SOL_SOCKET, 9999, 1), ENOPROTOOPT);
}

TEST(UnixSockoptTest, RcvtimeoEndsABlockingRecvWithEagain) {
  Pair p = MakePair(SOCK_STREAM);
  timeval tv{0, 20 * 1000};
  ASSERT_OK(setsockopt(p.a.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
  timeval got{};
  socklen_t len = sizeof(got);
  ASSERT_OK(getsockopt(p.a.get(), SOL_SOCKET, SO_RCVTIMEO, &got, &len));
  EXPECT_EQ(got.tv_sec, 0);
  EXPECT_EQ(got.tv_usec, 20000);
  EXPECT_EQ(Recv(p.a.get()), "[EAGAIN]");
}

// ---------------------------------------------------------------------------------------
// Names: paths, abstract names, autobind.

TEST(UnixNameTest, BindingAPathCreatesASocketNode) {
  TempDir dir;
  Fd fd = Socket(SOCK_STREAM);
  ASSERT_TRUE(fd.valid());
  const std::string path = dir.Join("sock");
  ASSERT_OK(Bind(fd.get(), PathAddr(path)));
  struct stat st;
  ASSERT_OK(lstat(path.c_str(), &st));
  EXPECT_TRUE(S_ISSOCK(st.st_mode)) << std::oct << st.st_mode;
  EXPECT_EQ(st.st_uid, geteuid());
  // The node is not the socket: it cannot be opened.
  EXPECT_ERRNO(open(path.c_str(), O_RDWR), ENXIO);
}

// The node gets 0777 less the umask.
TEST(UnixNameTest, TheNodesPermissionsFollowTheUmask) {
  TempDir dir;
  EXPECT_TRUE(ChildSucceeds([&] {
    for (mode_t mask : {022, 077, 0}) {
      umask(mask);
      const std::string path = dir.Join("s" + std::to_string(mask));
      Fd fd = Socket(SOCK_DGRAM);
      REQUIRE(Bind(fd.get(), PathAddr(path)) == 0);
      struct stat st;
      REQUIRE(lstat(path.c_str(), &st) == 0);
      REQUIRE((st.st_mode & 07777) == (0777 & ~mask));
    }
    return 0;
  }));
}

TEST(UnixNameTest, BindingAnExistingPathFailsEaddrinuse) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("s"));
  Fd first = Socket(SOCK_STREAM);
  ASSERT_OK(Bind(first.get(), a));
  Fd second = Socket(SOCK_STREAM);
  EXPECT_ERRNO(Bind(second.get(), a), EADDRINUSE);
  // Any existing file, not only a socket.
  ASSERT_TRUE(WriteFile(dir.Join("f"), "x"));
  EXPECT_ERRNO(Bind(second.get(), PathAddr(dir.Join("f"))), EADDRINUSE);
  // The failed binds left the socket unbound.
  ASSERT_OK(Bind(second.get(), PathAddr(dir.Join("t"))));
}

// Closing the socket leaves its node behind, still in use until unlinked.
TEST(UnixNameTest, APathStaysTakenAfterItsSocketClosesUntilUnlinked) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("s"));
  Fd first = Socket(SOCK_DGRAM);
  ASSERT_OK(Bind(first.get(), a));
  first.Reset();
  Fd second = Socket(SOCK_DGRAM);
  EXPECT_ERRNO(Bind(second.get(), a), EADDRINUSE);
  ASSERT_OK(unlink(dir.Join("s").c_str()));
  EXPECT_EQ(Bind(second.get(), a), 0) << ErrnoName(errno);
}

TEST(UnixNameTest, BindingASocketTwiceFailsEinval) {
  TempDir dir;
  Fd fd = Socket(SOCK_STREAM);
  ASSERT_OK(Bind(fd.get(), PathAddr(dir.Join("a"))));
  EXPECT_ERRNO(Bind(fd.get(), PathAddr(dir.Join("b"))), EINVAL);
  EXPECT_ERRNO(Bind(fd.get(), AbstractAddr(UniqueName())), EINVAL);
  struct stat st;
  EXPECT_ERRNO(lstat(dir.Join("b").c_str(), &st), ENOENT);
  Fd abs = Socket(SOCK_DGRAM);
  ASSERT_OK(Bind(abs.get(), AbstractAddr(UniqueName())));
  EXPECT_ERRNO(Bind(abs.get(), AbstractAddr(UniqueName())), EINVAL);
}

// addrlen may not exceed sizeof(sockaddr_un), nor be shorter than the family; a wrong
// family is EINVAL too.
TEST(UnixNameTest, BadAddressesFailEinval) {
  Fd fd = Socket(SOCK_STREAM);
  ASSERT_TRUE(fd.valid());
  char big[sizeof(sockaddr_un) + 16];
  memset(big, 'a', sizeof(big));
  sa_family_t family = AF_UNIX;
  memcpy(big, &family, sizeof(family));
  EXPECT_ERRNO(bind(fd.get(), reinterpret_cast<sockaddr*>(big), sizeof(big)), EINVAL);
  EXPECT_ERRNO(bind(fd.get(), reinterpret_cast<sockaddr*>(big), sizeof(sockaddr_un) + 1), EINVAL);
  EXPECT_ERRNO(bind(fd.get(), reinterpret_cast<sockaddr*>(big), 1), EINVAL);
  Addr a = AbstractAddr(UniqueName());
  a.sa.sun_family = AF_INET;
  EXPECT_ERRNO(Bind(fd.get(), a), EINVAL);
  EXPECT_EQ(SockName(fd.get()).len, sizeof(sa_family_t));  // still unbound
}

TEST(UnixNameTest, BindingInAMissingDirectoryFailsEnoent) {
  TempDir dir;
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(Bind(fd.get(), PathAddr(dir.Join("no/s"))), ENOENT);
  ASSERT_TRUE(WriteFile(dir.Join("f"), ""));
  EXPECT_ERRNO(Bind(fd.get(), PathAddr(dir.Join("f/s"))), ENOTDIR);
}

// getsockname reports the path with its NUL: offsetof(sun_path) + strlen + 1, whatever
// addrlen bind was given.
TEST(UnixNameTest, GetsocknameReturnsThePathAndItsLength) {
  TempDir dir;
  const std::string path = dir.Join("named");
  Fd fd = Socket(SOCK_STREAM);
  Addr a = PathAddr(path);
  a.len = sizeof(sockaddr_un);  // the whole structure, NULs after the path
  ASSERT_OK(Bind(fd.get(), a));
  const Addr got = SockName(fd.get());
  EXPECT_EQ(got.sa.sun_family, AF_UNIX);
  EXPECT_EQ(got.len, kPathOffset + path.size() + 1);
  EXPECT_EQ(got.path(), path);
  EXPECT_EQ(got.sa.sun_path[path.size()], '\0');
}

TEST(UnixNameTest, ABindAddrlenWithoutTheNulStillCountsIt) {
  TempDir dir;
  const std::string path = dir.Join("s");
  Fd fd = Socket(SOCK_DGRAM);
  Addr a = PathAddr(path);
  a.len -= 1;  // no terminator
  ASSERT_OK(Bind(fd.get(), a));
  EXPECT_EQ(SockName(fd.get()).len, kPathOffset + path.size() + 1);
  struct stat st;
  ASSERT_OK(lstat(path.c_str(), &st));
}

// A getsockname buffer shorter than the name gets the start of it and the full length.
TEST(UnixNameTest, AShortGetsocknameBufferIsTruncated) {
  TempDir dir;
  const std::string path = dir.Join("truncated");
  Fd fd = Socket(SOCK_STREAM);
  ASSERT_OK(Bind(fd.get(), PathAddr(path)));
  char buf[sizeof(sockaddr_un)];
  memset(buf, 'Z', sizeof(buf));
  socklen_t len = 6;
  ASSERT_OK(getsockname(fd.get(), reinterpret_cast<sockaddr*>(buf), &len));
  EXPECT_EQ(len, kPathOffset + path.size() + 1);
  EXPECT_EQ(std::string(buf + kPathOffset, 4), path.substr(0, 4));
  EXPECT_EQ(buf[6], 'Z');
}

// A relative name of all 108 bytes has no room for a NUL and is still accepted; the name
// reported is 111 bytes long, one more than sockaddr_un.
TEST(UnixNameTest, AFullSunPathWithoutANulIsAccepted) {
  TempDir dir;
  EXPECT_TRUE(ChildSucceeds([&] {
    REQUIRE(chdir(dir.path().c_str()) == 0);
    const std::string name(sizeof(sockaddr_un{}.sun_path), 'n');
    Addr a;
    a.sa.sun_family = AF_UNIX;
    memcpy(a.sa.sun_path, name.data(), name.size());
    a.len = sizeof(sockaddr_un);
    Fd fd = Socket(SOCK_STREAM);
    REQUIRE(Bind(fd.get(), a) == 0);
    struct stat st;
    REQUIRE(lstat(name.c_str(), &st) == 0 && S_ISSOCK(st.st_mode));
    char buf[sizeof(sockaddr_un) + 8];
    socklen_t len = sizeof(buf);
    REQUIRE(getsockname(fd.get(), reinterpret_cast<sockaddr*>(buf), &len) == 0);
    REQUIRE(len == kPathOffset + name.size() + 1);
    REQUIRE(std::string(buf + kPathOffset, name.size()) == name);
    return 0;
  }));
}

TEST(UnixNameTest, AnUnboundSocketsNameIsJustTheFamily) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET}) {
    Fd fd = Socket(type);
    const Addr a = SockName(fd.get());
    EXPECT_EQ(a.len, sizeof(sa_family_t));
    EXPECT_EQ(a.sa.sun_family, AF_UNIX);
  }
}

// The abstract name spells a path in the TempDir; no such file appears.
TEST(UnixNameTest, AbstractNamesDoNotAppearInTheFilesystem) {
  TempDir dir;
  const std::string path = dir.Join("abstract");
  Fd fd = Socket(SOCK_STREAM);
  const Addr a = AbstractAddr(path);
  ASSERT_OK(Bind(fd.get(), a));
  struct stat st;
  EXPECT_ERRNO(lstat(path.c_str(), &st), ENOENT);
  const Addr got = SockName(fd.get());
  EXPECT_EQ(got.len, a.len);  // exactly the bound length, no terminator added
  EXPECT_EQ(got.path(), std::string(1, '\0') + path);
}

TEST(UnixNameTest, TwoBindsOfOneAbstractNameConflict) {
  const Addr a = AbstractAddr(UniqueName());
  Fd first = Socket(SOCK_STREAM);
  ASSERT_OK(Bind(first.get(), a));
  Fd second = Socket(SOCK_STREAM);
  EXPECT_ERRNO(Bind(second.get(), a), EADDRINUSE);
}

// Abstract names are looked up by name and type: a datagram socket may hold a name that a
// stream socket holds, and neither can reach the other through it.
TEST(UnixNameTest, EachTypeHasItsOwnAbstractNamespace) {
  const Addr a = AbstractAddr(UniqueName());
  Fd stream = Listener(a);
  Fd dgram = Socket(SOCK_DGRAM);
  EXPECT_EQ(Bind(dgram.get(), a), 0) << ErrnoName(errno);
  Fd seq = Socket(SOCK_SEQPACKET);
  EXPECT_ERRNO(Connect(seq.get(), a), ECONNREFUSED);
  dgram.Reset();
  Fd sender = Socket(SOCK_DGRAM);
  EXPECT_ERRNO(sendto(sender.get(), "x", 1, 0, a.get(), a.len), ECONNREFUSED);
}

// Every byte up to addrlen is part of an abstract name, NULs included.
TEST(UnixNameTest, AbstractNamesOfDifferentLengthsAreDistinct) {
  const std::string name = UniqueName();
  Addr shorter = AbstractAddr(name);
  Addr longer = AbstractAddr(name);
  longer.len += 1;  // one more NUL
  Fd a = Socket(SOCK_DGRAM), b = Socket(SOCK_DGRAM);
  ASSERT_OK(Bind(a.get(), shorter));
  ASSERT_OK(Bind(b.get(), longer));
  EXPECT_EQ(SockName(b.get()).len, longer.len);
  Fd c = Socket(SOCK_DGRAM);
  ASSERT_OK(sendto(c.get(), "L", 1, 0, longer.get(), longer.len));
  EXPECT_EQ(RecvNow(b.get()), "L");
  EXPECT_EQ(RecvNow(a.get()), "[EAGAIN]");
}

TEST(UnixNameTest, AnAbstractNameIsFreedWhenItsSocketCloses) {
  const Addr a = AbstractAddr(UniqueName());
  Fd first = Socket(SOCK_STREAM);
  ASSERT_OK(Bind(first.get(), a));
  first.Reset();
  Fd second = Socket(SOCK_STREAM);
  EXPECT_EQ(Bind(second.get(), a), 0) << ErrnoName(errno);
}

bool IsAutobindName(const Addr& a) {
  if (a.len != kPathOffset + 6 || a.sa.sun_path[0] != '\0') return false;
  for (int i = 1; i <= 5; i++) {
    const char c = a.sa.sun_path[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// bind with only the family picks an abstract name of five lowercase hex digits.
TEST(UnixNameTest, AutobindGivesAnAbstractNameOfFiveHexDigits) {
  Fd a = Socket(SOCK_DGRAM), b = Socket(SOCK_DGRAM);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  ASSERT_OK(bind(a.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa_family_t)));
  ASSERT_OK(bind(b.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa_family_t)));
  const Addr na = SockName(a.get()), nb = SockName(b.get());
  EXPECT_EQ(na.len, kPathOffset + 6);
  EXPECT_TRUE(IsAutobindName(na)) << na.path().substr(1);
  EXPECT_TRUE(IsAutobindName(nb)) << nb.path().substr(1);
  EXPECT_NE(na.path(), nb.path());
  // The name works like any abstract name.
  Fd c = Socket(SOCK_DGRAM);
  ASSERT_OK(sendto(c.get(), "hi", 2, 0, na.get(), na.len));
  EXPECT_EQ(RecvNow(a.get()), "hi");
}

// Asking to autobind a socket that has a name already succeeds and changes nothing.
TEST(UnixNameTest, AutobindOnABoundSocketKeepsItsName) {
  const Addr a = AbstractAddr(UniqueName());
  Fd fd = Socket(SOCK_DGRAM);
  ASSERT_OK(Bind(fd.get(), a));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa_family_t)), 0)
      << ErrnoName(errno);
  EXPECT_EQ(SockName(fd.get()).path(), a.path());
}

// recvfrom from an unbound sender reports an address length of 0, not even the family.
TEST(UnixNameTest, AnUnboundSendersAddressIsEmpty) {
  const Addr a = AbstractAddr(UniqueName());
  Fd rx = Listener(a, SOCK_DGRAM);
  Fd tx = Socket(SOCK_DGRAM);
  ASSERT_OK(Connect(tx.get(), a));
  EXPECT_EQ(SockName(tx.get()).len, sizeof(sa_family_t));  // connect did not bind
  ASSERT_TRUE(Send(tx.get(), "x"));
  sockaddr_un from;
  memset(&from, 0x55, sizeof(from));
  socklen_t len = sizeof(from);
  char c;
  ASSERT_EQ(recvfrom(rx.get(), &c, 1, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len), 1);
  EXPECT_EQ(len, 0u);
}

// With SO_PASSCRED set, connect autobinds the sender, and the receiver sees that name.
TEST(UnixNameTest, PasscredMakesConnectAutobind) {
  const Addr a = AbstractAddr(UniqueName());
  Fd rx = Listener(a, SOCK_DGRAM);
  Fd tx = Socket(SOCK_DGRAM);
  ASSERT_OK(SetInt(tx.get(), SOL_SOCKET, SO_PASSCRED, 1));
  ASSERT_OK(Connect(tx.get(), a));
  const Addr mine = SockName(tx.get());
  EXPECT_TRUE(IsAutobindName(mine));
  ASSERT_TRUE(Send(tx.get(), "x"));
  Addr from;
  from.len = sizeof(from.sa);
  char c;
  ASSERT_EQ(recvfrom(rx.get(), &c, 1, MSG_DONTWAIT, from.get(), &from.len), 1);
  EXPECT_EQ(from.len, mine.len);
  EXPECT_EQ(from.path(), mine.path());
}

TEST(UnixNameTest, GetpeernameFailsEnotconnWhenNotConnected) {
  TempDir dir;
  Fd fd = Socket(SOCK_STREAM);
  sockaddr_un sa;
  socklen_t len = sizeof(sa);
  EXPECT_ERRNO(getpeername(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len), ENOTCONN);
  Fd listener = Listener(PathAddr(dir.Join("s")));
  EXPECT_ERRNO(getpeername(listener.get(), reinterpret_cast<sockaddr*>(&sa), &len), ENOTCONN);
  Fd dgram = Socket(SOCK_DGRAM);
  EXPECT_ERRNO(getpeername(dgram.get(), reinterpret_cast<sockaddr*>(&sa), &len), ENOTCONN);
}

TEST(UnixNameTest, SocketpairEndsAreUnnamed) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_EQ(SockName(p.a.get()).len, sizeof(sa_family_t));
  const Addr peer = PeerName(p.a.get());
  EXPECT_EQ(peer.len, sizeof(sa_family_t));
  EXPECT_EQ(peer.sa.sun_family, AF_UNIX);
}

// ---------------------------------------------------------------------------------------
// SOCK_STREAM connections.

TEST(UnixStreamTest, ConnectAndAcceptOnAPathCarryDataBothWays) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("s"));
  Fd listener = Listener(a);
  Fd client = Socket(SOCK_STREAM);
  ASSERT_OK(Connect(client.get(), a));
  Fd server(accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(server.valid()) << ErrnoName(errno);
  EXPECT_EQ(fcntl(server.get(), F_GETFD), 0);
  EXPECT_EQ(fcntl(server.get(), F_GETFL) & O_NONBLOCK, 0);
  ASSERT_TRUE(Send(client.get(), "request"));
  EXPECT_EQ(RecvSoon(server.get()), "request");
  ASSERT_TRUE(Send(server.get(), "response"));
  EXPECT_EQ(RecvSoon(client.get()), "response");
}

TEST(UnixStreamTest, ConnectAndAcceptOnAnAbstractName) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a);
  Pair p = Connected(listener.get(), a);
  ASSERT_TRUE(p.b.valid());
  ASSERT_TRUE(Send(p.a.get(), "abstract"));
  EXPECT_EQ(RecvSoon(p.b.get()), "abstract");
  EXPECT_EQ(PeerName(p.a.get()).path(), a.path());
}

// The accepted socket carries the listener's name; the client's peer is that name too.
TEST(UnixStreamTest, TheAcceptedSocketIsNamedAfterTheListener) {
  TempDir dir;
  const std::string path = dir.Join("s");
  const Addr a = PathAddr(path);
  Fd listener = Listener(a);
  Pair p = Connected(listener.get(), a);
  ASSERT_TRUE(p.b.valid());
  EXPECT_EQ(SockName(p.b.get()).path(), path);
  EXPECT_EQ(SockName(p.b.get()).len, a.len);
  EXPECT_EQ(PeerName(p.a.get()).path(), path);
  EXPECT_EQ(PeerName(p.a.get()).len, a.len);
  EXPECT_EQ(SockName(p.a.get()).len, sizeof(sa_family_t));  // connect did not bind
}

TEST(UnixStreamTest, AcceptReturnsTheClientsAddress) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("s"));
  Fd listener = Listener(a);
  // A bound client: its path.
  Fd bound = Socket(SOCK_STREAM);
  ASSERT_OK(Bind(bound.get(), PathAddr(dir.Join("c"))));
  ASSERT_OK(Connect(bound.get(), a));
  Addr from;
  from.len = sizeof(from.sa);
  Fd s1(accept(listener.get(), from.get(), &from.len));
  ASSERT_TRUE(s1.valid());
  EXPECT_EQ(from.path(), dir.Join("c"));
  EXPECT_EQ(from.len, kPathOffset + dir.Join("c").size() + 1);
  EXPECT_EQ(PeerName(s1.get()).path(), dir.Join("c"));
  // An unbound client: the family alone.
  Fd unbound = Socket(SOCK_STREAM);
  ASSERT_OK(Connect(unbound.get(), a));
  from.len = sizeof(from.sa);
  Fd s2(accept(listener.get(), from.get(), &from.len));
  ASSERT_TRUE(s2.valid());
  EXPECT_EQ(from.len, sizeof(sa_family_t));
  EXPECT_EQ(from.sa.sun_family, AF_UNIX);
}

TEST(UnixStreamTest, Accept4SetsCloexecAndNonblock) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a);
  Fd c1 = Socket(SOCK_STREAM), c2 = Socket(SOCK_STREAM);
  ASSERT_OK(Connect(c1.get(), a));
  ASSERT_OK(Connect(c2.get(), a));
  Fd s1(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  ASSERT_TRUE(s1.valid()) << ErrnoName(errno);
  EXPECT_EQ(fcntl(s1.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_NE(fcntl(s1.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(Recv(s1.get()), "[EAGAIN]");
  // The flags are the call's, not inherited from the listener.
  Fd s2(accept4(listener.get(), nullptr, nullptr, 0));
  ASSERT_TRUE(s2.valid());
  EXPECT_EQ(fcntl(s2.get(), F_GETFD), 0);
  EXPECT_EQ(fcntl(s2.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_ERRNO(accept4(listener.get(), nullptr, nullptr, O_APPEND), EINVAL);
}

TEST(UnixStreamTest, ConnectingToAMissingPathFailsEnoent) {
  TempDir dir;
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(Connect(fd.get(), PathAddr(dir.Join("nothing"))), ENOENT);
}

// An abstract name nobody holds is refused, not missing.
TEST(UnixStreamTest, ConnectingToAMissingAbstractNameFailsEconnrefused) {
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(Connect(fd.get(), AbstractAddr(UniqueName())), ECONNREFUSED);
}

TEST(UnixStreamTest, ConnectingToANonListeningSocketFailsEconnrefused) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("s"));
  Fd bound = Socket(SOCK_STREAM);
  ASSERT_OK(Bind(bound.get(), a));
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(Connect(fd.get(), a), ECONNREFUSED);
}

// The node outlives the listener: connecting to it is refused until it is unlinked.
TEST(UnixStreamTest, ConnectingToAClosedListenerFailsEconnrefusedThenEnoent) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("s"));
  Fd listener = Listener(a);
  listener.Reset();
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(Connect(fd.get(), a), ECONNREFUSED);
  ASSERT_OK(unlink(dir.Join("s").c_str()));
  EXPECT_ERRNO(Connect(fd.get(), a), ENOENT);
}

// Unlinking the node makes a live listener unreachable by that path.
TEST(UnixStreamTest, UnlinkingTheNodeHidesALiveListener) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("s"));
  Fd listener = Listener(a);
  ASSERT_OK(unlink(dir.Join("s").c_str()));
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(Connect(fd.get(), a), ENOENT);
  // The listener keeps its name, though.
  EXPECT_EQ(SockName(listener.get()).path(), dir.Join("s"));
}

TEST(UnixStreamTest, ConnectingToANonSocketFailsEconnrefused) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Join("f"), "x"));
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(Connect(fd.get(), PathAddr(dir.Join("f"))), ECONNREFUSED);
  EXPECT_ERRNO(Connect(fd.get(), PathAddr(dir.path())), ECONNREFUSED);
}

TEST(UnixStreamTest, ConnectingToADatagramSocketFailsEprototype) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("d"));
  Fd dgram = Listener(a, SOCK_DGRAM);
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(Connect(fd.get(), a), EPROTOTYPE);
  Fd seq = Socket(SOCK_SEQPACKET);
  EXPECT_ERRNO(Connect(seq.get(), a), EPROTOTYPE);
}

TEST(UnixStreamTest, ConnectingAConnectedSocketFailsEisconn) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a);
  Fd fd = Socket(SOCK_STREAM);
  ASSERT_OK(Connect(fd.get(), a));
  EXPECT_ERRNO(Connect(fd.get(), a), EISCONN);
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_ERRNO(Connect(p.a.get(), a), EISCONN);
}

TEST(UnixStreamTest, ConnectingAListenerFailsEinval) {
  const Addr a = AbstractAddr(UniqueName()), b = AbstractAddr(UniqueName());
  Fd la = Listener(a), lb = Listener(b);
  EXPECT_ERRNO(Connect(la.get(), b), EINVAL);
}

// unix(7) sockets must be bound before they listen: there is no autobind here.
TEST(UnixStreamTest, ListenOnAnUnboundSocketFailsEinval) {
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(listen(fd.get(), 1), EINVAL);
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_ERRNO(listen(p.a.get(), 1), EINVAL);  // connected
}

TEST(UnixStreamTest, ListenOnADatagramSocketFailsEopnotsupp) {
  Fd fd = Socket(SOCK_DGRAM);
  ASSERT_OK(Bind(fd.get(), AbstractAddr(UniqueName())));
  EXPECT_ERRNO(listen(fd.get(), 1), EOPNOTSUPP);
}

TEST(UnixStreamTest, ListeningTwiceIsAllowed) {
  const Addr a = AbstractAddr(UniqueName());
  Fd l = Listener(a, SOCK_STREAM, 1);
  EXPECT_EQ(listen(l.get(), 5), 0) << ErrnoName(errno);
  EXPECT_EQ(GetInt(l.get(), SOL_SOCKET, SO_ACCEPTCONN), 1);
}

TEST(UnixStreamTest, AcceptOnANonListeningSocketFailsEinval) {
  TempDir dir;
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(accept(fd.get(), nullptr, nullptr), EINVAL);
  ASSERT_OK(Bind(fd.get(), PathAddr(dir.Join("s"))));
  EXPECT_ERRNO(accept(fd.get(), nullptr, nullptr), EINVAL);
}

TEST(UnixStreamTest, AcceptOnADatagramSocketFailsEopnotsupp) {
  Fd fd = Socket(SOCK_DGRAM);
  EXPECT_ERRNO(accept(fd.get(), nullptr, nullptr), EOPNOTSUPP);
}

TEST(UnixStreamTest, ANonblockingAcceptWithNothingPendingFailsEagain) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a);
  ASSERT_OK(fcntl(listener.get(), F_SETFL, O_NONBLOCK));
  EXPECT_ERRNO(accept(listener.get(), nullptr, nullptr), EAGAIN);
  // SOCK_NONBLOCK at creation does the same.
  Fd nb = Listener(AbstractAddr(UniqueName()), SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(nb.valid());
  EXPECT_ERRNO(accept4(nb.get(), nullptr, nullptr, SOCK_CLOEXEC), EAGAIN);
}

// A connection is queued before accept; a listen backlog of n holds n + 1 of them.
TEST(UnixStreamTest, AFullBacklogMakesANonblockingConnectFailEagain) {
  const Addr a = AbstractAddr(UniqueName());
  for (int backlog : {0, 1, 3}) {
    Fd listener = Listener(a, SOCK_STREAM, backlog);
    ASSERT_TRUE(listener.valid());
    std::vector<Fd> clients;
    for (int i = 0; i <= backlog; i++) {
      clients.push_back(Socket(SOCK_STREAM | SOCK_NONBLOCK));
      ASSERT_EQ(Connect(clients.back().get(), a), 0) << backlog << " #" << i << ErrnoName(errno);
    }
    Fd extra = Socket(SOCK_STREAM | SOCK_NONBLOCK);
    EXPECT_ERRNO(Connect(extra.get(), a), EAGAIN);
    // Accepting one makes room for one more.
    Fd s(accept(listener.get(), nullptr, nullptr));
    ASSERT_TRUE(s.valid());
    EXPECT_EQ(Connect(extra.get(), a), 0) << ErrnoName(errno);
  }
}

// Data written before the server accepts waits in the new connection.
TEST(UnixStreamTest, AClientMayWriteBeforeItIsAccepted) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a);
  Fd client = Socket(SOCK_STREAM);
  ASSERT_OK(Connect(client.get(), a));
  ASSERT_TRUE(Send(client.get(), "early"));
  Fd server(accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(server.valid());
  EXPECT_EQ(RecvNow(server.get()), "early");
}

// Closing a listener drops the connections it never accepted: their clients are reset.
TEST(UnixStreamTest, ClosingAListenerResetsConnectionsNotYetAccepted) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a);
  Fd client = Socket(SOCK_STREAM);
  ASSERT_OK(Connect(client.get(), a));
  listener.Reset();
  EXPECT_EQ(RecvNow(client.get()), "[ECONNRESET]");
  EXPECT_EQ(RecvNow(client.get()), "[eof]");
}

TEST(UnixStreamTest, ReadsMayBePartialAndIgnoreWriteBoundaries) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_TRUE(Send(p.a.get(), "hello "));
  ASSERT_TRUE(Send(p.a.get(), "world"));
  EXPECT_EQ(RecvNow(p.b.get(), 3), "hel");
  EXPECT_EQ(RecvNow(p.b.get(), 100), "lo world");
  EXPECT_EQ(RecvNow(p.b.get()), "[EAGAIN]");
}

TEST(UnixStreamTest, MsgPeekLeavesTheDataQueued) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_TRUE(Send(p.a.get(), "peekaboo"));
  EXPECT_EQ(Recv(p.b.get(), 4, MSG_PEEK), "peek");
  EXPECT_EQ(Recv(p.b.get(), 100, MSG_PEEK), "peekaboo");
  EXPECT_EQ(Queued(p.b.get()), 8);
  EXPECT_EQ(RecvNow(p.b.get(), 100), "peekaboo");
}

TEST(UnixStreamTest, MsgDontwaitFailsEagainOnABlockingSocket) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_EQ(Recv(p.b.get(), 10, MSG_DONTWAIT), "[EAGAIN]");
  EXPECT_EQ(fcntl(p.b.get(), F_GETFL) & O_NONBLOCK, 0);  // the flag is per call
}

// The writer sends in three parts, pausing between them; one MSG_WAITALL read gets all nine
// bytes whenever they arrive.
TEST(UnixStreamTest, MsgWaitallCollectsSeveralWrites) {
  Pair p = MakePair(SOCK_STREAM);
  Child child([&] {
    p.b.Reset();
    for (const char* part : {"abc", "def", "ghi"}) {
      Pause();
      REQUIRE(Send(p.a.get(), part));
    }
    return 0;
  });
  ASSERT_TRUE(child.ok());
  p.a.Reset();
  EXPECT_EQ(Recv(p.b.get(), 9, MSG_WAITALL), "abcdefghi");
  EXPECT_TRUE(child.ExitsZero());
}

TEST(UnixStreamTest, MsgWaitallReturnsShortAtEof) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_TRUE(Send(p.a.get(), "abc"));
  p.a.Reset();
  EXPECT_EQ(Recv(p.b.get(), 10, MSG_WAITALL), "abc");
}

TEST(UnixStreamTest, AZeroByteWriteSendsNothing) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_EQ(write(p.a.get(), "", 0), 0);
  EXPECT_EQ(send(p.a.get(), "", 0, 0), 0);
  EXPECT_EQ(RecvNow(p.b.get()), "[EAGAIN]");
  EXPECT_EQ(Revents(p.b.get(), POLLIN), 0);
}

TEST(UnixStreamTest, ReadsGiveBufferedDataThenEofAfterThePeerCloses) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_TRUE(Send(p.a.get(), "last"));
  p.a.Reset();
  EXPECT_EQ(RecvNow(p.b.get()), "last");
  EXPECT_EQ(RecvNow(p.b.get()), "[eof]");
  EXPECT_EQ(Recv(p.b.get()), "[eof]");
}

// A peer closing with data it never read resets the connection: the next read is
// ECONNRESET (once), then EOF.
TEST(UnixStreamTest, ClosingWithUnreadDataResetsThePeer) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_TRUE(Send(p.a.get(), "unread"));
  p.b.Reset();
  // (The written data went to b, so a's read below finds the error.)
  EXPECT_EQ(RecvNow(p.a.get()), "[ECONNRESET]");
  EXPECT_EQ(RecvNow(p.a.get()), "[eof]");
}

TEST(UnixStreamTest, ShutdownWrGivesThePeerEofWhileTheOtherDirectionWorks) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_TRUE(Send(p.a.get(), "bye"));
  ASSERT_OK(shutdown(p.a.get(), SHUT_WR));
  EXPECT_EQ(RecvNow(p.b.get()), "bye");
  EXPECT_EQ(RecvNow(p.b.get()), "[eof]");
  ASSERT_TRUE(Send(p.b.get(), "still here"));
  EXPECT_EQ(RecvNow(p.a.get()), "still here");
}

// After SHUT_RD, queued data can still be read, then reads give EOF, and the peer's
// writes fail EPIPE.
TEST(UnixStreamTest, ShutdownRdEndsReadingAndThePeersWrites) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_TRUE(Send(p.a.get(), "queued"));
  ASSERT_OK(shutdown(p.b.get(), SHUT_RD));
  EXPECT_EQ(RecvNow(p.b.get()), "queued");
  EXPECT_EQ(RecvNow(p.b.get()), "[eof]");
  EXPECT_ERRNO(send(p.a.get(), "x", 1, MSG_NOSIGNAL), EPIPE);
  // b may still write.
  ASSERT_TRUE(Send(p.b.get(), "out"));
  EXPECT_EQ(RecvNow(p.a.get()), "out");
}

TEST(UnixStreamTest, WritingAfterShutdownWrFailsEpipeAndRaisesSigpipe) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_TRUE(ChildSucceeds([&] {
    REQUIRE(BlockSignal(SIGPIPE));
    REQUIRE(shutdown(p.a.get(), SHUT_WR) == 0);
    REQUIRE(FAILS_WITH(write(p.a.get(), "x", 1), EPIPE));
    REQUIRE(Pending(SIGPIPE));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    timespec zero{0, 0};
    REQUIRE(sigtimedwait(&set, nullptr, &zero) == SIGPIPE);
    return 0;
  }));
}

// The default disposition kills the writer.
TEST(UnixStreamTest, SigpipeKillsAWriterToAClosedPeer) {
  Pair p = MakePair(SOCK_STREAM);
  p.b.Reset();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    const ssize_t r = write(p.a.get(), "x", 1);
    _exit(r < 0 ? 3 : 4);  // reached only if SIGPIPE did not kill us
  }
  const int status = WaitBounded(pid, 0, 2 * kWaitMs);
  EXPECT_TRUE(KilledBy(status, SIGPIPE)) << Describe(status);
}

TEST(UnixStreamTest, MsgNosignalGivesEpipeWithoutSigpipe) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_TRUE(ChildSucceeds([&] {
    REQUIRE(BlockSignal(SIGPIPE));
    REQUIRE(shutdown(p.a.get(), SHUT_WR) == 0);
    REQUIRE(FAILS_WITH(send(p.a.get(), "x", 1, MSG_NOSIGNAL), EPIPE));
    REQUIRE(!Pending(SIGPIPE));
    // And to a closed peer.
    Pair q = MakePair(SOCK_STREAM);
    q.b.Reset();
    REQUIRE(FAILS_WITH(send(q.a.get(), "x", 1, MSG_NOSIGNAL), EPIPE));
    REQUIRE(!Pending(SIGPIPE));
    return 0;
  }));
}

TEST(UnixStreamTest, WritingToAClosedPeerFailsEpipe) {
  Pair p = MakePair(SOCK_STREAM);
  p.b.Reset();
  EXPECT_TRUE(ChildSucceeds([&] {
    REQUIRE(BlockSignal(SIGPIPE));
    REQUIRE(FAILS_WITH(write(p.a.get(), "x", 1), EPIPE));
    REQUIRE(Pending(SIGPIPE));
    return 0;
  }));
}

// unix_shutdown() does not look at the connection: an unconnected socket shuts down fine.
TEST(UnixStreamTest, ShutdownOfAnUnconnectedSocketSucceeds) {
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_EQ(shutdown(fd.get(), SHUT_RDWR), 0) << ErrnoName(errno);
  Fd dgram = Socket(SOCK_DGRAM);
  EXPECT_EQ(shutdown(dgram.get(), SHUT_WR), 0) << ErrnoName(errno);
}

TEST(UnixStreamTest, ShutdownWithABadHowFailsEinval) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_ERRNO(shutdown(p.a.get(), 3), EINVAL);
  EXPECT_ERRNO(shutdown(p.a.get(), -1), EINVAL);
}

TEST(UnixStreamTest, SendingOnAnUnconnectedSocketFailsEnotconn) {
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_ERRNO(send(fd.get(), "x", 1, MSG_NOSIGNAL), ENOTCONN);
}

// Reading from a stream socket that was never connected is EINVAL, not ENOTCONN.
TEST(UnixStreamTest, ReadingOnAnUnconnectedSocketFailsEinval) {
  Fd fd = Socket(SOCK_STREAM);
  char c;
  EXPECT_ERRNO(recv(fd.get(), &c, 1, MSG_DONTWAIT), EINVAL);
}

// A stream socket takes no destination: EISCONN when connected, EOPNOTSUPP otherwise.
TEST(UnixStreamTest, SendtoWithAnAddressIsRefused) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a);
  Pair p = Connected(listener.get(), a);
  EXPECT_ERRNO(sendto(p.a.get(), "x", 1, MSG_NOSIGNAL, a.get(), a.len), EISCONN);
  Fd fresh = Socket(SOCK_STREAM);
  EXPECT_ERRNO(sendto(fresh.get(), "x", 1, MSG_NOSIGNAL, a.get(), a.len), EOPNOTSUPP);
}

TEST(UnixStreamTest, FionreadAndSiocinqCountQueuedBytes) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_EQ(Queued(p.b.get()), 0);
  ASSERT_TRUE(Send(p.a.get(), "12345"));
  ASSERT_TRUE(Send(p.a.get(), "678"));
  EXPECT_EQ(Queued(p.b.get(), FIONREAD), 8);
  EXPECT_EQ(Queued(p.b.get(), SIOCINQ), 8);
  EXPECT_EQ(RecvNow(p.b.get(), 2), "12");
  EXPECT_EQ(Queued(p.b.get()), 6);
  EXPECT_EQ(Queued(p.a.get()), 0);  // the writer's own queue is empty
}

TEST(UnixStreamTest, SiocinqOnAListenerFailsEinval) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a);
  EXPECT_EQ(Queued(listener.get(), SIOCINQ), -1000 - EINVAL);
}

// SIOCOUTQ counts the sender's memory still queued at the peer (buffer overhead included),
// so it is at least the unread bytes, and drops to 0 once they are read.
TEST(UnixStreamTest, SiocoutqCountsWhatThePeerHasNotRead) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_EQ(Queued(p.a.get(), SIOCOUTQ), 0);
  const std::string data(1000, 'q');
  ASSERT_TRUE(Send(p.a.get(), data));
  EXPECT_GE(Queued(p.a.get(), SIOCOUTQ), 1000);
  EXPECT_EQ(Queued(p.b.get(), SIOCOUTQ), 0);
  EXPECT_EQ(RecvNow(p.b.get(), 2000), data);
  EXPECT_EQ(Queued(p.a.get(), SIOCOUTQ), 0);
}

// Writes until EAGAIN (at most 64 MiB); returns the bytes written.
size_t Fill(int fd, size_t chunk) {
  const std::string data(chunk, 'f');
  size_t total = 0;
  for (;;) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN) << ErrnoName(errno);
      return total;
    }
    total += n;
    if (total > (64u << 20)) {
      ADD_FAILURE() << "the socket never filled";
      return total;
    }
  }
}

// Reads without waiting until EAGAIN; returns the bytes read.
size_t Drain(int fd) {
  std::string buf(65536, '\0');
  size_t total = 0;
  for (;;) {
    const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) return total;
    total += n;
  }
}

// The writer's buffer fills (EAGAIN, not writable), and reading it all makes room again.
TEST(UnixStreamTest, AFullSendBufferGivesEagainUntilThePeerReads) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_OK(SetInt(p.a.get(), SOL_SOCKET, SO_SNDBUF, 32768));
  const size_t filled = Fill(p.a.get(), 4096);
  EXPECT_GT(filled, 0u);
  EXPECT_EQ(Revents(p.a.get(), POLLOUT), 0);
  EXPECT_EQ(Drain(p.b.get()), filled);
  EXPECT_EQ(Revents(p.a.get(), POLLOUT), POLLOUT);
  EXPECT_TRUE(Send(p.a.get(), "more", MSG_DONTWAIT));
}

// One blocking write of 4 MiB waits for the reader to drain it and then completes.
TEST(UnixStreamTest, ABlockingWriterWaitsForTheReader) {
  Pair p = MakePair(SOCK_STREAM);
  constexpr size_t kSize = 4 << 20;
  Child child([&] {
    p.b.Reset();
    std::string data(kSize, '\0');
    for (size_t i = 0; i < kSize; i++) data[i] = static_cast<char>(i * 13 + i / 1009);
    return write(p.a.get(), data.data(), data.size()) == static_cast<ssize_t>(kSize) ? 0 : 1;
  });
  ASSERT_TRUE(child.ok());
  p.a.Reset();
  std::string got;
  std::string buf(100000, '\0');
  for (;;) {
    ASSERT_GT(Revents(p.b.get(), POLLIN, kWaitMs), 0);
    const ssize_t n = read(p.b.get(), buf.data(), buf.size());
    ASSERT_GE(n, 0) << ErrnoName(errno);
    if (n == 0) break;
    got.append(buf.data(), n);
  }
  ASSERT_EQ(got.size(), kSize);
  for (size_t i = 0; i < kSize; i++) {
    ASSERT_EQ(got[i], static_cast<char>(i * 13 + i / 1009)) << "byte " << i;
  }
  EXPECT_TRUE(child.ExitsZero());
}

// ---------------------------------------------------------------------------------------
// SOCK_DGRAM.

TEST(UnixDgramTest, SendtoAPathDeliversTheDataAndTheSendersAddress) {
  TempDir dir;
  const Addr rx_addr = PathAddr(dir.Join("rx")), tx_addr = PathAddr(dir.Join("tx"));
  Fd rx = Listener(rx_addr, SOCK_DGRAM);
  Fd tx = Listener(tx_addr, SOCK_DGRAM);
  ASSERT_EQ(sendto(tx.get(), "datagram", 8, 0, rx_addr.get(), rx_addr.len), 8);
  char buf[64];
  Addr from;
  from.len = sizeof(from.sa);
  ASSERT_EQ(recvfrom(rx.get(), buf, sizeof(buf), MSG_DONTWAIT, from.get(), &from.len), 8);
  EXPECT_EQ(std::string(buf, 8), "datagram");
  EXPECT_EQ(from.len, tx_addr.len);
  EXPECT_EQ(from.path(), dir.Join("tx"));
}

TEST(UnixDgramTest, SendtoAnAbstractNameDeliversTheDataAndTheSendersAddress) {
  const Addr rx_addr = AbstractAddr(UniqueName()), tx_addr = AbstractAddr(UniqueName());
  Fd rx = Listener(rx_addr, SOCK_DGRAM);
  Fd tx = Listener(tx_addr, SOCK_DGRAM);
  ASSERT_EQ(sendto(tx.get(), "abs", 3, 0, rx_addr.get(), rx_addr.len), 3);
  char buf[64];
  Addr from;
  from.len = sizeof(from.sa);
  ASSERT_EQ(recvfrom(rx.get(), buf, sizeof(buf), MSG_DONTWAIT, from.get(), &from.len), 3);
  EXPECT_EQ(from.len, tx_addr.len);
  EXPECT_EQ(from.path(), tx_addr.path());
}

TEST(UnixDgramTest, MessageBoundariesAreKept) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_TRUE(Send(p.a.get(), "one"));
  ASSERT_TRUE(Send(p.a.get(), "two"));
  ASSERT_TRUE(Send(p.a.get(), "three"));
  EXPECT_EQ(RecvNow(p.b.get(), 100), "one");
  EXPECT_EQ(RecvNow(p.b.get(), 100), "two");
  EXPECT_EQ(RecvNow(p.b.get(), 100), "three");
  EXPECT_EQ(RecvNow(p.b.get(), 100), "[EAGAIN]");
}

// A short buffer gets the start of the message; the rest is dropped and msg_flags says
// MSG_TRUNC.
TEST(UnixDgramTest, AShortBufferTruncatesTheMessageAndSetsMsgTrunc) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_TRUE(Send(p.a.get(), "0123456789"));
  ASSERT_TRUE(Send(p.a.get(), "next"));
  Received r = RecvMsg(p.b.get(), 4, 0, MSG_DONTWAIT);
  EXPECT_EQ(r.n, 4);
  EXPECT_EQ(r.data, "0123");
  EXPECT_NE(r.msg_flags & MSG_TRUNC, 0);
  r = RecvMsg(p.b.get(), 100, 0, MSG_DONTWAIT);
  EXPECT_EQ(r.data, "next");
  EXPECT_EQ(r.msg_flags & MSG_TRUNC, 0);
}

// recv(MSG_TRUNC) returns the message's real length even though fewer bytes were copied.
TEST(UnixDgramTest, RecvWithMsgTruncReturnsTheFullLength) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_TRUE(Send(p.a.get(), "0123456789"));
  char buf[4] = {};
  EXPECT_EQ(recv(p.b.get(), buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT), 10);
  EXPECT_EQ(std::string(buf, 4), "0123");
  // And with MSG_PEEK it can size a buffer without consuming the message.
  ASSERT_TRUE(Send(p.a.get(), "abcdefg"));
  EXPECT_EQ(recv(p.b.get(), nullptr, 0, MSG_TRUNC | MSG_PEEK | MSG_DONTWAIT), 7);
  EXPECT_EQ(RecvNow(p.b.get()), "abcdefg");
}

TEST(UnixDgramTest, AConnectedSocketSendsWithoutAnAddress) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("rx"));
  Fd rx = Listener(a, SOCK_DGRAM);
  Fd tx = Socket(SOCK_DGRAM);
  ASSERT_OK(Connect(tx.get(), a));
  EXPECT_EQ(PeerName(tx.get()).path(), dir.Join("rx"));
  ASSERT_TRUE(Send(tx.get(), "via connect"));
  EXPECT_EQ(write(tx.get(), "w", 1), 1);
  EXPECT_EQ(RecvNow(rx.get()), "via connect");
  EXPECT_EQ(RecvNow(rx.get()), "w");
}

// An explicit destination overrides the connected peer.
TEST(UnixDgramTest, SendtoOnAConnectedSocketGoesToTheGivenAddress) {
  const Addr a = AbstractAddr(UniqueName()), b = AbstractAddr(UniqueName());
  Fd ra = Listener(a, SOCK_DGRAM), rb = Listener(b, SOCK_DGRAM);
  Fd tx = Socket(SOCK_DGRAM);
  ASSERT_OK(Connect(tx.get(), a));
  ASSERT_EQ(sendto(tx.get(), "to b", 4, 0, b.get(), b.len), 4);
  EXPECT_EQ(RecvNow(rb.get()), "to b");
  EXPECT_EQ(RecvNow(ra.get()), "[EAGAIN]");
}

// A socket connected to someone takes datagrams from that peer only.
TEST(UnixDgramTest, SendingToASocketConnectedElsewhereFailsEperm) {
  const Addr a = AbstractAddr(UniqueName()), b = AbstractAddr(UniqueName());
  Fd sa = Listener(a, SOCK_DGRAM), sb = Listener(b, SOCK_DGRAM);
  ASSERT_OK(Connect(sa.get(), b));
  Fd third = Socket(SOCK_DGRAM);
  EXPECT_ERRNO(sendto(third.get(), "x", 1, 0, a.get(), a.len), EPERM);
  EXPECT_ERRNO(Connect(third.get(), a), EPERM);
  // Its peer may send.
  ASSERT_EQ(sendto(sb.get(), "ok", 2, 0, a.get(), a.len), 2);
  EXPECT_EQ(RecvNow(sa.get()), "ok");
}

TEST(UnixDgramTest, SendtoAMissingPathFailsEnoent) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("nothing"));
  Fd fd = Socket(SOCK_DGRAM);
  EXPECT_ERRNO(sendto(fd.get(), "x", 1, 0, a.get(), a.len), ENOENT);
  EXPECT_ERRNO(Connect(fd.get(), a), ENOENT);
}

// A name whose socket closed (its node remains, or an abstract name nobody holds) refuses.
TEST(UnixDgramTest, SendtoAClosedSocketsNameFailsEconnrefused) {
  TempDir dir;
  const Addr path = PathAddr(dir.Join("gone"));
  Listener(path, SOCK_DGRAM).Reset();
  Fd fd = Socket(SOCK_DGRAM);
  EXPECT_ERRNO(sendto(fd.get(), "x", 1, 0, path.get(), path.len), ECONNREFUSED);
  const Addr abs = AbstractAddr(UniqueName());
  EXPECT_ERRNO(sendto(fd.get(), "x", 1, 0, abs.get(), abs.len), ECONNREFUSED);
}

// (By path: an abstract name of another type is simply not found.)
TEST(UnixDgramTest, SendtoAStreamSocketFailsEprototype) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("stream"));
  Fd listener = Listener(a);
  Fd fd = Socket(SOCK_DGRAM);
  EXPECT_ERRNO(sendto(fd.get(), "x", 1, 0, a.get(), a.len), EPROTOTYPE);
  EXPECT_ERRNO(Connect(fd.get(), a), EPROTOTYPE);
}

TEST(UnixDgramTest, SendingWithoutAPeerOrAddressFailsEnotconn) {
  Fd fd = Socket(SOCK_DGRAM);
  EXPECT_ERRNO(send(fd.get(), "x", 1, 0), ENOTCONN);
  EXPECT_ERRNO(write(fd.get(), "x", 1), ENOTCONN);
}

TEST(UnixDgramTest, ZeroLengthDatagramsAreDelivered) {
  Pair p = MakePair(SOCK_DGRAM);
  EXPECT_EQ(send(p.a.get(), "", 0, 0), 0);
  ASSERT_TRUE(Send(p.a.get(), "after"));
  EXPECT_NE(Revents(p.b.get(), POLLIN) & POLLIN, 0);
  char buf[16];
  EXPECT_EQ(recv(p.b.get(), buf, sizeof(buf), MSG_DONTWAIT), 0);
  EXPECT_EQ(RecvNow(p.b.get()), "after");
  EXPECT_EQ(RecvNow(p.b.get()), "[EAGAIN]");
}

// A datagram must fit the send buffer (less a little overhead) in one piece.
TEST(UnixDgramTest, AMessageLargerThanTheSendBufferFailsEmsgsize) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_OK(SetInt(p.a.get(), SOL_SOCKET, SO_SNDBUF, 8192));
  const int sndbuf = GetInt(p.a.get(), SOL_SOCKET, SO_SNDBUF);
  ASSERT_EQ(sndbuf, 16384);
  const std::string big(sndbuf, 'b');
  EXPECT_ERRNO(send(p.a.get(), big.data(), big.size(), 0), EMSGSIZE);
  const std::string fits(4096, 'f');
  EXPECT_TRUE(Send(p.a.get(), fits));
  EXPECT_EQ(RecvNow(p.b.get(), 10000), fits);
}

// FIONREAD on a datagram socket is the size of the next datagram, not of the queue.
TEST(UnixDgramTest, FionreadGivesTheSizeOfTheNextDatagram) {
  Pair p = MakePair(SOCK_DGRAM);
  EXPECT_EQ(Queued(p.b.get()), 0);
  ASSERT_TRUE(Send(p.a.get(), "12345"));
  ASSERT_TRUE(Send(p.a.get(), "123"));
  EXPECT_EQ(Queued(p.b.get(), FIONREAD), 5);
  EXPECT_EQ(Queued(p.b.get(), SIOCINQ), 5);
  EXPECT_EQ(RecvNow(p.b.get()), "12345");
  EXPECT_EQ(Queued(p.b.get()), 3);
}

TEST(UnixDgramTest, ConnectingToAfUnspecDisconnects) {
  const Addr a = AbstractAddr(UniqueName());
  Fd rx = Listener(a, SOCK_DGRAM);
  Fd tx = Socket(SOCK_DGRAM);
  ASSERT_OK(Connect(tx.get(), a));
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  ASSERT_OK(connect(tx.get(), &unspec, sizeof(unspec)));
  sockaddr_un sa;
  socklen_t len = sizeof(sa);
  EXPECT_ERRNO(getpeername(tx.get(), reinterpret_cast<sockaddr*>(&sa), &len), ENOTCONN);
  EXPECT_ERRNO(send(tx.get(), "x", 1, 0), ENOTCONN);
}

// The first send after the connected peer closed reports ECONNREFUSED and disconnects;
// later ones find no peer.
TEST(UnixDgramTest, SendingToAClosedPeerFailsEconnrefusedThenEnotconn) {
  const Addr a = AbstractAddr(UniqueName());
  Fd rx = Listener(a, SOCK_DGRAM);
  Fd tx = Socket(SOCK_DGRAM);
  ASSERT_OK(Connect(tx.get(), a));
  rx.Reset();
  EXPECT_ERRNO(send(tx.get(), "x", 1, 0), ECONNREFUSED);
  EXPECT_ERRNO(send(tx.get(), "x", 1, 0), ENOTCONN);
}

// A receiver's queue is bounded (net.unix.max_dgram_qlen); a nonblocking sender then gets
// EAGAIN until a datagram is read.
TEST(UnixDgramTest, AFullReceiverMakesANonblockingSenderFailEagain) {
  const Addr a = AbstractAddr(UniqueName());
  Fd rx = Listener(a, SOCK_DGRAM);
  Fd tx = Socket(SOCK_DGRAM | SOCK_NONBLOCK);
  int sent = 0;
  for (; sent < 100000; sent++) {
    if (sendto(tx.get(), "d", 1, 0, a.get(), a.len) != 1) break;
  }
  EXPECT_EQ(errno, EAGAIN) << ErrnoName(errno);
  EXPECT_GT(sent, 0);
  EXPECT_LT(sent, 100000);
  EXPECT_EQ(RecvNow(rx.get()), "d");
  EXPECT_EQ(sendto(tx.get(), "e", 1, 0, a.get(), a.len), 1) << ErrnoName(errno);
}

TEST(UnixDgramTest, ANonblockingRecvWithNothingQueuedFailsEagain) {
  Fd fd = Socket(SOCK_DGRAM | SOCK_NONBLOCK);
  ASSERT_OK(Bind(fd.get(), AbstractAddr(UniqueName())));
  EXPECT_EQ(Recv(fd.get()), "[EAGAIN]");
}

// ---------------------------------------------------------------------------------------
// SOCK_SEQPACKET.

TEST(UnixSeqpacketTest, RecordBoundariesAreKeptOverAConnection) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("seq"));
  Fd listener = Listener(a, SOCK_SEQPACKET);
  Pair p = Connected(listener.get(), a, SOCK_SEQPACKET);
  ASSERT_TRUE(p.b.valid());
  ASSERT_TRUE(Send(p.a.get(), "first"));
  ASSERT_TRUE(Send(p.a.get(), "second"));
  EXPECT_EQ(RecvNow(p.b.get(), 100), "first");
  EXPECT_EQ(RecvNow(p.b.get(), 100), "second");
  ASSERT_TRUE(Send(p.b.get(), "reply"));
  EXPECT_EQ(RecvNow(p.a.get(), 100), "reply");
}

TEST(UnixSeqpacketTest, ATruncatedRecordSetsMsgTruncAndDropsTheRest) {
  Pair p = MakePair(SOCK_SEQPACKET);
  ASSERT_TRUE(Send(p.a.get(), "0123456789"));
  ASSERT_TRUE(Send(p.a.get(), "next"));
  Received r = RecvMsg(p.b.get(), 3, 0, MSG_DONTWAIT);
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.data, "012");
  EXPECT_NE(r.msg_flags & MSG_TRUNC, 0);
  EXPECT_EQ(RecvNow(p.b.get()), "next");
  ASSERT_TRUE(Send(p.a.get(), "abcdef"));
  char buf[2];
  EXPECT_EQ(recv(p.b.get(), buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT), 6);
}

TEST(UnixSeqpacketTest, ReadsGiveEofAfterThePeerCloses) {
  Pair p = MakePair(SOCK_SEQPACKET);
  ASSERT_TRUE(Send(p.a.get(), "last"));
  p.a.Reset();
  EXPECT_EQ(RecvNow(p.b.get()), "last");
  EXPECT_EQ(RecvNow(p.b.get()), "[eof]");
  EXPECT_EQ(Recv(p.b.get()), "[eof]");
}

TEST(UnixSeqpacketTest, SendingOnAnUnconnectedSocketFailsEnotconn) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a, SOCK_SEQPACKET);
  Fd fd = Socket(SOCK_SEQPACKET);
  EXPECT_ERRNO(send(fd.get(), "x", 1, MSG_NOSIGNAL), ENOTCONN);
  // Even with an address: a seqpacket socket must connect.
  EXPECT_ERRNO(sendto(fd.get(), "x", 1, MSG_NOSIGNAL, a.get(), a.len), ENOTCONN);
}

TEST(UnixSeqpacketTest, SendingToAClosedPeerFailsEpipe) {
  Pair p = MakePair(SOCK_SEQPACKET);
  p.b.Reset();
  EXPECT_ERRNO(send(p.a.get(), "x", 1, MSG_NOSIGNAL), EPIPE);
}

// A zero-length record is delivered, and reads as 0 like EOF; the connection goes on.
TEST(UnixSeqpacketTest, AZeroLengthRecordReadsAsZero) {
  Pair p = MakePair(SOCK_SEQPACKET);
  EXPECT_EQ(send(p.a.get(), "", 0, 0), 0);
  EXPECT_NE(Revents(p.b.get(), POLLIN) & POLLIN, 0);
  EXPECT_EQ(RecvNow(p.b.get()), "[eof]");
  EXPECT_EQ(RecvNow(p.b.get()), "[EAGAIN]");
}

// Unlike SOCK_DGRAM, FIONREAD on a seqpacket socket counts every queued byte.
TEST(UnixSeqpacketTest, FionreadCountsAllQueuedRecords) {
  Pair p = MakePair(SOCK_SEQPACKET);
  ASSERT_TRUE(Send(p.a.get(), "12345"));
  ASSERT_TRUE(Send(p.a.get(), "123"));
  EXPECT_EQ(Queued(p.b.get()), 8);
}

// ---------------------------------------------------------------------------------------
// Ancillary data: SCM_RIGHTS and SCM_CREDENTIALS.

TEST(UnixScmTest, ScmRightsPassesAPipeEnd) {
  Pair p = MakePair(SOCK_STREAM);
  Pipe pipe = MakePipe();
  ASSERT_EQ(SendFds(p.a.get(), {pipe.r.get()}, "fd"), 2);
  pipe.r.Reset();  // the copy in flight keeps the read end open
  Received r = RecvMsg(p.b.get());
  ASSERT_EQ(r.n, 2) << ErrnoName(r.err);
  EXPECT_EQ(r.data, "fd");
  ASSERT_EQ(r.fds.size(), 1u);
  EXPECT_EQ(r.msg_flags & MSG_CTRUNC, 0);
  ASSERT_EQ(write(pipe.w.get(), "through", 7), 7);
  char buf[16] = {};
  EXPECT_EQ(read(r.fds[0].get(), buf, sizeof(buf)), 7);
  EXPECT_EQ(std::string(buf, 7), "through");
  EXPECT_EQ(fcntl(r.fds[0].get(), F_GETFD), 0);
  EXPECT_EQ(fcntl(r.fds[0].get(), F_GETFL) & O_ACCMODE, O_RDONLY);
}

TEST(UnixScmTest, SeveralFdsTravelInOneMessageInOrder) {
  Pair p = MakePair(SOCK_DGRAM);
  Pipe p1 = MakePipe(), p2 = MakePipe();
  ASSERT_EQ(SendFds(p.a.get(), {p1.r.get(), p2.w.get(), p1.r.get()}), 1);
  Received r = RecvMsg(p.b.get());
  ASSERT_EQ(r.fds.size(), 3u) << ErrnoName(r.err);
  EXPECT_TRUE(SameFile(r.fds[0].get(), p1.r.get()));
  EXPECT_TRUE(SameFile(r.fds[1].get(), p2.w.get()));
  EXPECT_TRUE(SameFile(r.fds[2].get(), p1.r.get()));
  // Each is a new descriptor, even for a file sent twice.
  EXPECT_NE(r.fds[0].get(), r.fds[2].get());
  ASSERT_EQ(write(r.fds[1].get(), "2", 1), 1);
  char c;
  EXPECT_EQ(read(p2.r.get(), &c, 1), 1);
}

// A socket sent over a socket works for its receiver: what it sends reaches the original
// end's peer.
TEST(UnixScmTest, ASocketCanBePassed) {
  Pair carrier = MakePair(SOCK_SEQPACKET);
  Pair payload = MakePair(SOCK_STREAM);
  ASSERT_EQ(SendFds(carrier.a.get(), {payload.a.get()}), 1);
  payload.a.Reset();
  Received r = RecvMsg(carrier.b.get());
  ASSERT_EQ(r.fds.size(), 1u) << ErrnoName(r.err);
  EXPECT_EQ(GetInt(r.fds[0].get(), SOL_SOCKET, SO_TYPE), SOCK_STREAM);
  ASSERT_TRUE(Send(r.fds[0].get(), "via passed socket"));
  EXPECT_EQ(RecvNow(payload.b.get()), "via passed socket");
}

TEST(UnixScmTest, FdsPassOverADatagramSocketToAName) {
  TempDir dir;
  const Addr a = PathAddr(dir.Join("rx"));
  Fd rx = Listener(a, SOCK_DGRAM);
  Fd tx = Socket(SOCK_DGRAM);
  Pipe pipe = MakePipe();
  ASSERT_EQ(SendFds(tx.get(), {pipe.w.get()}, "dg", &a), 2);
  Received r = RecvMsg(rx.get());
  ASSERT_EQ(r.fds.size(), 1u) << ErrnoName(r.err);
  EXPECT_EQ(r.data, "dg");
  ASSERT_EQ(write(r.fds[0].get(), "w", 1), 1);
  char c;
  EXPECT_EQ(read(pipe.r.get(), &c, 1), 1);
}

// With no data byte at all a stream socket sends nothing, fds included; a datagram can be
// empty and still carry them.
TEST(UnixScmTest, AnEmptyDatagramCarriesFdsButAnEmptyStreamWriteDoesNot) {
  Pair p = MakePair(SOCK_DGRAM);
  Pipe pipe = MakePipe();
  ASSERT_EQ(SendFds(p.a.get(), {pipe.r.get()}, ""), 0);
  Received r = RecvMsg(p.b.get());
  EXPECT_EQ(r.n, 0);
  EXPECT_EQ(r.fds.size(), 1u);
  Pair s = MakePair(SOCK_STREAM);
  EXPECT_EQ(SendFds(s.a.get(), {pipe.r.get()}, ""), 0);
  const Received nothing = RecvMsg(s.b.get(), 16, 256, MSG_DONTWAIT);
  EXPECT_EQ(nothing.err, EAGAIN) << ErrnoName(nothing.err);
  EXPECT_EQ(nothing.fds.size(), 0u);
}

TEST(UnixScmTest, MsgCmsgCloexecSetsFdCloexec) {
  Pair p = MakePair(SOCK_STREAM);
  Pipe pipe = MakePipe();
  ASSERT_EQ(SendFds(p.a.get(), {pipe.r.get()}), 1);
  ASSERT_EQ(SendFds(p.a.get(), {pipe.r.get()}), 1);
  Received r = RecvMsg(p.b.get(), 1, 256, MSG_CMSG_CLOEXEC);
  ASSERT_EQ(r.fds.size(), 1u) << ErrnoName(r.err);
  EXPECT_EQ(fcntl(r.fds[0].get(), F_GETFD), FD_CLOEXEC);
  r = RecvMsg(p.b.get(), 1, 256, 0);
  ASSERT_EQ(r.fds.size(), 1u) << ErrnoName(r.err);
  EXPECT_EQ(fcntl(r.fds[0].get(), F_GETFD), 0);
}

// Room for one of three fds: one is installed (at the lowest free number), MSG_CTRUNC is set,
// and the other two are dropped, not installed.
TEST(UnixScmTest, AShortControlBufferSetsMsgCtruncAndDropsTheRest) {
  Pair p = MakePair(SOCK_DGRAM);
  Pipe pipe = MakePipe();
  ASSERT_EQ(SendFds(p.a.get(), {pipe.r.get(), pipe.r.get(), pipe.r.get()}), 1);
  const int lowest = LowestFreeFd();
  Received r = RecvMsg(p.b.get(), 16, CMSG_LEN(sizeof(int)));
  ASSERT_EQ(r.n, 1) << ErrnoName(r.err);
  EXPECT_NE(r.msg_flags & MSG_CTRUNC, 0);
  ASSERT_EQ(r.fds.size(), 1u);
  EXPECT_EQ(r.fds[0].get(), lowest);
  EXPECT_EQ(LowestFreeFd(), lowest + 1);
}

TEST(UnixScmTest, NoControlBufferDropsEveryFdAndSetsMsgCtrunc) {
  Pair p = MakePair(SOCK_STREAM);
  Pipe pipe = MakePipe();
  ASSERT_EQ(SendFds(p.a.get(), {pipe.r.get(), pipe.w.get()}, "x"), 1);
  const int lowest = LowestFreeFd();
  Received r = RecvMsg(p.b.get(), 16, 0);
  ASSERT_EQ(r.n, 1) << ErrnoName(r.err);
  EXPECT_NE(r.msg_flags & MSG_CTRUNC, 0);
  EXPECT_EQ(r.cmsgs, 0);
  EXPECT_EQ(LowestFreeFd(), lowest);
}

// A pipe's read end in flight keeps the pipe open; once the sender's copy, the sending and
// the receiving socket are all closed, the in-flight copy goes too and the writer sees
// POLLERR (no readers left).
TEST(UnixScmTest, FdsNeverReceivedAreClosedWithTheReceivingSocket) {
  Pair p = MakePair(SOCK_STREAM);
  Pipe pipe = MakePipe();
  ASSERT_EQ(SendFds(p.a.get(), {pipe.r.get()}), 1);
  pipe.r.Reset();
  p.a.Reset();
  EXPECT_EQ(Revents(pipe.w.get(), POLLOUT) & POLLERR, 0);
  p.b.Reset();
  EXPECT_NE(Revents(pipe.w.get(), POLLOUT, kWaitMs) & POLLERR, 0);
}

TEST(UnixScmTest, PassingABadFdFailsEbadf) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_ERRNO(SendFds(p.a.get(), {-1}), EBADF);
  Pipe pipe = MakePipe();
  const int closed = LowestFreeFd();
  EXPECT_ERRNO(SendFds(p.a.get(), {pipe.r.get(), closed}), EBADF);
  EXPECT_EQ(RecvNow(p.b.get()), "[EAGAIN]");  // nothing was sent
}

// SCM_MAX_FD is 253 per message.
TEST(UnixScmTest, MoreThan253FdsInOneMessageFailEinval) {
  Pair p = MakePair(SOCK_DGRAM);
  Pipe pipe = MakePipe();
  EXPECT_ERRNO(SendFds(p.a.get(), std::vector<int>(254, pipe.r.get())), EINVAL);
  ASSERT_EQ(SendFds(p.a.get(), std::vector<int>(253, pipe.r.get())), 1);
  Received r = RecvMsg(p.b.get(), 16, CMSG_SPACE(253 * sizeof(int)));
  EXPECT_EQ(r.fds.size(), 253u);
}

// With SO_PASSCRED on the receiver, each message arrives with the sender's pid, uid and gid,
// here a child's.
TEST(UnixScmTest, PasscredDeliversTheSendersCredentials) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET}) {
    Pair p = MakePair(type);
    ASSERT_OK(SetInt(p.b.get(), SOL_SOCKET, SO_PASSCRED, 1));
    Child child([&] { return Send(p.a.get(), "who") ? 0 : 1; });
    ASSERT_TRUE(child.ok());
    Received r = RecvMsg(p.b.get());
    EXPECT_EQ(r.data, "who") << ErrnoName(r.err);
    ASSERT_TRUE(r.has_cred) << type;
    EXPECT_EQ(r.cred.pid, child.pid());
    EXPECT_EQ(r.cred.uid, getuid());
    EXPECT_EQ(r.cred.gid, getgid());
    EXPECT_TRUE(child.ExitsZero());
  }
}

TEST(UnixScmTest, WithoutPasscredNoCredentialsArrive) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_TRUE(Send(p.a.get(), "anon"));
  Received r = RecvMsg(p.b.get());
  EXPECT_EQ(r.data, "anon");
  EXPECT_FALSE(r.has_cred);
  EXPECT_EQ(r.cmsgs, 0);
}

TEST(UnixScmTest, SendingOwnCredentialsWorks) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_OK(SetInt(p.b.get(), SOL_SOCKET, SO_PASSCRED, 1));
  const ucred mine{getpid(), getuid(), getgid()};
  ASSERT_EQ(SendCreds(p.a.get(), mine), 1) << ErrnoName(errno);
  Received r = RecvMsg(p.b.get());
  ASSERT_TRUE(r.has_cred);
  EXPECT_EQ(r.cred.pid, getpid());
  EXPECT_EQ(r.cred.uid, getuid());
  EXPECT_EQ(r.cred.gid, getgid());
}

// Naming another process needs CAP_SYS_ADMIN (which the test's user namespace root has), so
// the child drops every capability first; its own pid still passes.
TEST(UnixScmTest, SendingAnotherPidWithoutCapSysAdminFailsEperm) {
  Pair p = MakePair(SOCK_DGRAM);
  EXPECT_TRUE(ChildSucceeds([&] {
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2] = {};
    REQUIRE(syscall(SYS_capset, &h, d) == 0);
    const ucred other{getppid(), getuid(), getgid()};
    REQUIRE(FAILS_WITH(SendCreds(p.a.get(), other), EPERM));
    const ucred mine{getpid(), getuid(), getgid()};
    REQUIRE(SendCreds(p.a.get(), mine) == 1);
    return 0;
  }));
  EXPECT_EQ(RecvNow(p.b.get()), "c");
  EXPECT_EQ(RecvNow(p.b.get()), "[EAGAIN]");
}

// ---------------------------------------------------------------------------------------
// poll and epoll.

TEST(UnixPollTest, AListenerIsReadableOnlyWithAConnectionPending) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a);
  EXPECT_EQ(Revents(listener.get(), POLLIN | POLLOUT), 0);  // and never writable
  Fd client = Socket(SOCK_STREAM);
  ASSERT_OK(Connect(client.get(), a));
  EXPECT_EQ(Revents(listener.get(), POLLIN | POLLOUT, kWaitMs), POLLIN);
  Fd s(accept(listener.get(), nullptr, nullptr));
  EXPECT_EQ(Revents(listener.get(), POLLIN), 0);
}

TEST(UnixPollTest, AStreamSocketIsWritableAndReadableWithData) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_EQ(Revents(p.b.get(), POLLIN | POLLOUT), POLLOUT);
  ASSERT_TRUE(Send(p.a.get(), "x"));
  EXPECT_EQ(Revents(p.b.get(), POLLIN | POLLOUT), POLLIN | POLLOUT);
}

// A stream socket that was never connected polls as hung up (and writable).
TEST(UnixPollTest, AnUnconnectedStreamSocketPollsHup) {
  Fd fd = Socket(SOCK_STREAM);
  EXPECT_EQ(Revents(fd.get(), POLLIN | POLLOUT), POLLOUT | POLLHUP);
}

TEST(UnixPollTest, ThePeerClosingGivesPollhupAndPollin) {
  Pair p = MakePair(SOCK_STREAM);
  p.a.Reset();
  const int r = Revents(p.b.get(), POLLIN | POLLRDHUP);
  EXPECT_EQ(r & (POLLIN | POLLHUP | POLLRDHUP), POLLIN | POLLHUP | POLLRDHUP) << r;
}

// POLLRDHUP is reported only when asked for.
TEST(UnixPollTest, ThePeersShutdownWrGivesPollrdhupButNotPollhup) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_OK(shutdown(p.a.get(), SHUT_WR));
  EXPECT_EQ(Revents(p.b.get(), POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
  EXPECT_EQ(Revents(p.b.get(), POLLIN), POLLIN);
  EXPECT_EQ(Revents(p.a.get(), POLLIN | POLLOUT | POLLRDHUP), POLLOUT);
}

// Shutting down both directions of one's own socket is a hang-up too.
TEST(UnixPollTest, OwnShutdownRdwrGivesPollhup) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_OK(shutdown(p.a.get(), SHUT_RDWR));
  EXPECT_EQ(Revents(p.a.get(), POLLIN | POLLRDHUP) & (POLLIN | POLLHUP | POLLRDHUP),
            POLLIN | POLLHUP | POLLRDHUP);
}

TEST(UnixPollTest, ADatagramSocketIsReadableWithAMessage) {
  Pair p = MakePair(SOCK_DGRAM);
  EXPECT_EQ(Revents(p.b.get(), POLLIN | POLLOUT), POLLOUT);
  ASSERT_TRUE(Send(p.a.get(), "m"));
  EXPECT_EQ(Revents(p.b.get(), POLLIN | POLLOUT), POLLIN | POLLOUT);
}

TEST(UnixPollTest, EpolletReportsEachWriteOnce) {
  Pair p = MakePair(SOCK_STREAM);
  Fd ep(epoll_create1(EPOLL_CLOEXEC));
  ASSERT_TRUE(ep.valid());
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = 42;
  ASSERT_OK(epoll_ctl(ep.get(), EPOLL_CTL_ADD, p.b.get(), &ev));
  epoll_event out[4];
  EXPECT_EQ(epoll_wait(ep.get(), out, 4, 0), 0);
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(Send(p.a.get(), "e"));
    ASSERT_EQ(epoll_wait(ep.get(), out, 4, kWaitMs), 1) << i;
    EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLIN));
    EXPECT_EQ(out[0].data.u64, 42u);
    EXPECT_EQ(epoll_wait(ep.get(), out, 4, 0), 0) << i;  // nothing new, though data waits
  }
  EXPECT_EQ(Queued(p.b.get()), 3);
}

TEST(UnixPollTest, EpollReportsAPendingConnection) {
  const Addr a = AbstractAddr(UniqueName());
  Fd listener = Listener(a);
  Fd ep(epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_OK(epoll_ctl(ep.get(), EPOLL_CTL_ADD, listener.get(), &ev));
  epoll_event out[2];
  EXPECT_EQ(epoll_wait(ep.get(), out, 2, 0), 0);
  Fd client = Socket(SOCK_STREAM);
  ASSERT_OK(Connect(client.get(), a));
  ASSERT_EQ(epoll_wait(ep.get(), out, 2, kWaitMs), 1);
  EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLIN));
}

// ---------------------------------------------------------------------------------------
// sendmmsg and recvmmsg.

TEST(UnixMmsgTest, SendmmsgSendsEachMessageAndFillsMsgLen) {
  Pair p = MakePair(SOCK_DGRAM);
  std::string parts[3] = {"a", "bb", "cccc"};
  iovec iov[3];
  mmsghdr msgs[3] = {};
  for (int i = 0; i < 3; i++) {
    iov[i] = {parts[i].data(), parts[i].size()};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_len = 999;
  }
  ASSERT_EQ(sendmmsg(p.a.get(), msgs, 3, 0), 3) << ErrnoName(errno);
  EXPECT_EQ(msgs[0].msg_len, 1u);
  EXPECT_EQ(msgs[1].msg_len, 2u);
  EXPECT_EQ(msgs[2].msg_len, 4u);
  EXPECT_EQ(RecvNow(p.b.get()), "a");
  EXPECT_EQ(RecvNow(p.b.get()), "bb");
  EXPECT_EQ(RecvNow(p.b.get()), "cccc");
}

// recvmmsg takes what is queued, up to vlen, and fills each msg_len.
TEST(UnixMmsgTest, RecvmmsgReceivesSeveralAndFillsMsgLen) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_TRUE(Send(p.a.get(), "one"));
  ASSERT_TRUE(Send(p.a.get(), "three"));
  ASSERT_TRUE(Send(p.a.get(), "xy"));
  char bufs[4][16];
  iovec iov[4];
  mmsghdr msgs[4] = {};
  for (int i = 0; i < 4; i++) {
    iov[i] = {bufs[i], sizeof(bufs[i])};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  ASSERT_EQ(recvmmsg(p.b.get(), msgs, 2, MSG_DONTWAIT, nullptr), 2) << ErrnoName(errno);
  EXPECT_EQ(msgs[0].msg_len, 3u);
  EXPECT_EQ(std::string(bufs[0], 3), "one");
  EXPECT_EQ(msgs[1].msg_len, 5u);
  EXPECT_EQ(std::string(bufs[1], 5), "three");
  ASSERT_EQ(recvmmsg(p.b.get(), msgs, 4, MSG_DONTWAIT, nullptr), 1);
  EXPECT_EQ(msgs[0].msg_len, 2u);
  EXPECT_EQ(std::string(bufs[0], 2), "xy");
  EXPECT_ERRNO(recvmmsg(p.b.get(), msgs, 4, MSG_DONTWAIT, nullptr), EAGAIN);
}

// With MSG_WAITFORONE, a blocking recvmmsg waits for the first message only.
TEST(UnixMmsgTest, RecvmmsgWaitforoneReturnsWhatIsQueued) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_TRUE(Send(p.a.get(), "only"));
  char buf[4][16];
  iovec iov[4];
  mmsghdr msgs[4] = {};
  for (int i = 0; i < 4; i++) {
    iov[i] = {buf[i], sizeof(buf[i])};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  ASSERT_EQ(recvmmsg(p.b.get(), msgs, 4, MSG_WAITFORONE, nullptr), 1) << ErrnoName(errno);
  EXPECT_EQ(msgs[0].msg_len, 4u);
}

}  // namespace

// /proc/net/unix lists a bound socket: its abstract name with '@' and its inode.
TEST(UnixNameTest, ProcNetUnixListsAnAbstractName) {
  Fd fd = Socket(SOCK_DGRAM);
  const std::string name = UniqueName();
  ASSERT_OK(Bind(fd.get(), AbstractAddr(name)));
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  const std::string table = ReadFile("/proc/net/unix");
  const size_t at = table.find(" @" + name + "\n");
  ASSERT_NE(at, std::string::npos) << table;
  const size_t line = table.rfind('\n', at);
  const std::string row = table.substr(line + 1, at - line - 1);
  EXPECT_NE(row.find(" " + std::to_string(st.st_ino)), std::string::npos) << row;
  EXPECT_NE(row.find(" 0002 "), std::string::npos) << row;  // SOCK_DGRAM
}

// A read takes bytes up to and including a message that carries files, with the files, and
// stops there; MSG_WAITALL does not wait past it.
TEST(UnixRightsTest, AReadStopsAfterTheMessageCarryingFiles) {
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  Fd a(sv[0]), b(sv[1]);
  ASSERT_EQ(send(a.get(), "x", 1, 0), 1);
  char byte = 'y';
  iovec iov = {&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof(control);
  cmsghdr* h = CMSG_FIRSTHDR(&mh);
  h->cmsg_level = SOL_SOCKET;
  h->cmsg_type = SCM_RIGHTS;
  h->cmsg_len = CMSG_LEN(sizeof(int));
  const int passed = a.get();
  memcpy(CMSG_DATA(h), &passed, sizeof(int));
  ASSERT_EQ(sendmsg(a.get(), &mh, 0), 1);
  ASSERT_EQ(send(a.get(), "z", 1, 0), 1);
  char buf[100];
  alignas(cmsghdr) char rcontrol[CMSG_SPACE(sizeof(int))] = {};
  iovec riov = {buf, sizeof(buf)};
  msghdr rm = {};
  rm.msg_iov = &riov;
  rm.msg_iovlen = 1;
  rm.msg_control = rcontrol;
  rm.msg_controllen = sizeof(rcontrol);
  ASSERT_EQ(recvmsg(b.get(), &rm, MSG_WAITALL), 2);
  EXPECT_EQ(std::string(buf, 2), "xy");
  ASSERT_NE(CMSG_FIRSTHDR(&rm), nullptr);
  int got;
  memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&rm)), sizeof(got));
  Fd received(got);
  EXPECT_EQ(recv(b.get(), buf, sizeof(buf), MSG_DONTWAIT), 1);
  EXPECT_EQ(buf[0], 'z');
}

}  // namespace husk_test
