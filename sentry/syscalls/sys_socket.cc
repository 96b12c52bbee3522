// The socket calls (socket(2), bind(2), sendmsg(2), ...): arguments, user
// memory, control messages and SIGPIPE here; the protocols in sentry/net.
// Families: unix, inet (loopback, the sandbox's stack, or with
// --network=host the host's), and netlink's route protocol.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "sentry/kernel/inotify.h"
#include "sentry/net/host_socket.h"
#include "sentry/net/netlink.h"
#include "sentry/net/unix.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

constexpr size_t kMaxAddress = sizeof(sockaddr_storage);  // move_addr_to_kernel: EINVAL beyond
constexpr size_t kMaxControl = 20480;                     // net.core.optmem_max: ENOBUFS beyond
constexpr int kMaxFdsPerMessage = 253;                    // SCM_MAX_FD
constexpr size_t kStreamChunk = 256 * 1024;  // bytes gathered per step of a stream send
constexpr size_t kMaxRw = 0x7ffff000;        // MAX_RW_COUNT
constexpr int kMaxIov = 1024;                // UIO_MAXIOV
// What one receive gathers in the sentry at most: MSG_WAITALL on a stream
// waits for this much of a larger request (the rest is the next call's).
constexpr size_t kMaxReceive = 16 << 20;

Result<net::Socket*> SocketOf(Task& t, int fd, vfs::FileRef* keep) {
  ASSIGN_OR_RETURN(*keep, t.fds().GetForIo(fd));
  net::Socket* s = net::AsSocket(**keep);
  if (s == nullptr) return Errno{ENOTSOCK};
  return s;
}

Result<std::string> CopyInAddress(Task& t, uintptr_t addr, int len) {
  if (len < 0 || static_cast<size_t>(len) > kMaxAddress) return Errno{EINVAL};
  std::string out(static_cast<size_t>(len), '\0');
  if (len > 0) TRY(t.CopyIn(addr, out.data(), out.size()));
  return out;
}

// move_addr_to_user: as much of the address as fits, and its whole length
// in *len_addr.
Status CopyOutAddress(Task& t, const std::string& a, uintptr_t addr, uintptr_t len_addr) {
  if (len_addr == 0) return Ok();
  int len;
  TRY(t.CopyInObj(len_addr, &len));
  if (len < 0) return Errno{EINVAL};
  const size_t n = std::min(static_cast<size_t>(len), a.size());
  if (n > 0) TRY(t.CopyOut(addr, a.data(), n));
  return t.CopyOutObj(len_addr, static_cast<int>(a.size()));
}

// The file-system side of unix sockets' names.
Result<vfs::DentryRef> MakeSocketNode(Task& t, const std::string& path, int type, UniqueFd* host)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // called from a socket's bind, under t's kernel lock
  ASSIGN_OR_RETURN(vfs::ParentAndName pn,
                   vfs::ResolveParent(t.fs(), t.fs().cwd, path, t.FsCreds()));
  if (pn.name.empty() || pn.name == "." || pn.name == "..") return Errno{EADDRINUSE};
  if (pn.parent->Child(pn.name).ok()) return Errno{EADDRINUSE};
  if (pn.must_be_dir) return Errno{ENOENT};
  TRY(vfs::CheckWritableMount(t.fs(), *pn.parent));
  TRY(vfs::MayCreate(t.FsCreds(), *pn.parent));
  ASSIGN_OR_RETURN(mode_t perm, CreateMode(t, *pn.parent->inode(), 0777));
  // On a read-write volume the name is the host's too: host processes
  // connect to it.
  vfs::InodeRef inode;
  Result<std::pair<vfs::InodeRef, UniqueFd>> bound =
      pn.parent->inode()->BindHostSocket(pn.name, perm, type);
  if (bound.ok()) {
    inode = std::move(bound->first);
    *host = std::move(bound->second);
  } else if (bound.error() != EOPNOTSUPP) {
    return Errno{bound.error()};
  } else {
    ASSIGN_OR_RETURN(inode, pn.parent->inode()->Mknod(pn.name, perm | S_IFSOCK));
  }
  TRY(InitOwner(t, *pn.parent->inode(), *inode));
  pn.parent->AddChild(pn.name, std::move(inode));
  NotifyDirectory(t, *pn.parent, DN_CREATE);
  inotify::NotifyCreate(*pn.parent, pn.name, false);
  return pn.parent->Child(pn.name);
}

Result<vfs::DentryRef> FindSocketNode(Task& t, const std::string& path) {
  ASSIGN_OR_RETURN(vfs::DentryRef d, vfs::Resolve(t.fs(), t.fs().cwd, path, true, t.FsCreds()));
  // unix_find_bsd: write permission on the node, and a socket there.
  TRY(vfs::CheckPermission(t.FsCreds(), *d->inode(), vfs::kMayWrite));
  if (d->inode()->Type() != S_IFSOCK) return Errno{ECONNREFUSED};
  return d;
}

struct PathOpsInstaller {
  PathOpsInstaller() { net::SetUnixPathOps({&MakeSocketNode, &FindSocketNode}); }
} g_install_path_ops;

// socket(2)'s type argument: the type and SOCK_NONBLOCK/SOCK_CLOEXEC.
Result<int> SplitType(int type, int* file_flags, bool* cloexec) {
  // __sys_socket: unknown flags, and types past SOCK_MAX (11), are EINVAL.
  if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC | 0xf)) || (type & 0xf) >= 11) return Errno{EINVAL};
  *file_flags = (type & SOCK_NONBLOCK) ? O_NONBLOCK : 0;
  *cloexec = type & SOCK_CLOEXEC;
  int t = type & 0xf;
  if (t == SOCK_RAW) t = SOCK_DGRAM;  // unix_create: a raw unix socket is a datagram one
  return t;
}

Result<int> UnixTypeCheck(int domain, int type, int protocol) {
  if (domain != AF_UNIX) return Errno{EAFNOSUPPORT};
  if (protocol != 0 && protocol != PF_UNIX) return Errno{EPROTONOSUPPORT};
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    return Errno{ESOCKTNOSUPPORT};
  }
  return type;
}

// The iovecs of a sendmsg/recvmsg, checked (EMSGSIZE past UIO_MAXIOV,
// EINVAL for a total past SSIZE_MAX).
Result<std::vector<iovec>> CopyInIov(Task& t, uintptr_t addr, size_t count) {
  if (count > static_cast<size_t>(kMaxIov)) return Errno{EMSGSIZE};
  std::vector<iovec> iov(count);
  if (count > 0) TRY(t.CopyIn(addr, iov.data(), count * sizeof(iovec)));
  size_t total = 0;
  for (const iovec& v : iov) {
    if (v.iov_len > static_cast<size_t>(SSIZE_MAX) - total) return Errno{EINVAL};
    total += v.iov_len;
  }
  return iov;
}

size_t IovTotal(const std::vector<iovec>& iov) {
  size_t total = 0;
  for (const iovec& v : iov) total += v.iov_len;
  return total;
}

// Gathers [from, from + n) of the iovecs' bytes.
Result<std::string> Gather(Task& t, const std::vector<iovec>& iov, size_t from, size_t n) {
  std::string out;
  out.reserve(n);
  size_t at = 0;
  for (const iovec& v : iov) {
    if (out.size() == n) break;
    const size_t end = at + v.iov_len;
    if (end > from) {
      const size_t skip = from > at ? from - at : 0;
      const size_t k = std::min(v.iov_len - skip, n - out.size());
      const size_t old = out.size();
      out.resize(old + k);
      TRY(t.CopyIn(reinterpret_cast<uintptr_t>(v.iov_base) + skip, out.data() + old, k));
    }
    at = end;
  }
  return out;
}

Status Scatter(Task& t, const std::vector<iovec>& iov, const std::string& data) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == data.size()) break;
    const size_t k = std::min(v.iov_len, data.size() - done);
    TRY(t.CopyOut(reinterpret_cast<uintptr_t>(v.iov_base), data.data() + done, k));
    done += k;
  }
  return Ok();
}

// __scm_send: SCM_RIGHTS and SCM_CREDENTIALS of SOL_SOCKET; other levels
// go with the request, for the family to take (ip_cmsg_send) or skip.
Status ParseControl(Task& t, uintptr_t addr, size_t len, net::SendRequest* req) {
  if (len == 0) return Ok();
  if (len > kMaxControl) return Errno{ENOBUFS};
  if (len < sizeof(cmsghdr)) return Ok();  // CMSG_FIRSTHDR finds nothing there
  std::string buf(len, '\0');
  TRY(t.CopyIn(addr, buf.data(), len));
  size_t at = 0;
  while (at + sizeof(cmsghdr) <= len) {
    cmsghdr h;
    memcpy(&h, buf.data() + at, sizeof(h));
    if (h.cmsg_len < sizeof(cmsghdr) || h.cmsg_len > len - at) return Errno{EINVAL};
    const size_t data_len = h.cmsg_len - CMSG_LEN(0);
    const char* data = buf.data() + at + CMSG_LEN(0);
    if (h.cmsg_level == SOL_SOCKET) {
      if (h.cmsg_type == SCM_RIGHTS) {
        const size_t n = data_len / sizeof(int);
        if (n == 0 || req->fds.size() + n > static_cast<size_t>(kMaxFdsPerMessage)) {
          return Errno{EINVAL};
        }
        for (size_t i = 0; i < n; i++) {
          int fd;
          memcpy(&fd, data + i * sizeof(int), sizeof(fd));
          ASSIGN_OR_RETURN(vfs::FileRef f, t.fds().Get(fd));
          // An O_PATH descriptor can be passed (it names a place).
          req->fds.push_back(std::move(f));
        }
      } else if (h.cmsg_type == SCM_CREDENTIALS) {
        if (data_len != sizeof(ucred)) return Errno{EINVAL};
        ucred c;
        memcpy(&c, data, sizeof(c));
        // scm_check_creds: one's own ids, unless privileged.
        const bool pid_ok = c.pid == t.tgid() || t.Capable(CAP_SYS_ADMIN);
        const bool uid_ok =
            c.uid == t.uid || c.uid == t.euid || c.uid == t.suid || t.Capable(CAP_SETUID);
        const bool gid_ok =
            c.gid == t.gid || c.gid == t.egid || c.gid == t.sgid || t.Capable(CAP_SETGID);
        if (!pid_ok || !uid_ok || !gid_ok) return Errno{EPERM};
        req->creds = net::Credentials{c.pid, c.uid, c.gid};
      } else {
        return Errno{EINVAL};
      }
    } else {
      req->control.push_back({h.cmsg_level, h.cmsg_type, std::string(data, data_len)});
    }
    at += CMSG_ALIGN(h.cmsg_len);
  }
  return Ok();
}

// scm_recv: SCM_CREDENTIALS, then SCM_RIGHTS installed as far as the
// buffer takes them (MSG_CTRUNC for the rest, which close). Returns the
// control bytes used.
Result<size_t> BuildControl(Task& t, uintptr_t addr, size_t len, net::Received& r, int flags,
                            int* msg_flags) {
  size_t used = 0;
  auto put_at = [&](int level, int type, const void* data, size_t n) -> Status {
    if (len - used < sizeof(cmsghdr)) {
      *msg_flags |= MSG_CTRUNC;
      return Ok();
    }
    size_t cmlen = CMSG_LEN(n);
    if (len - used < cmlen) {
      *msg_flags |= MSG_CTRUNC;
      cmlen = len - used;
    }
    cmsghdr h{};
    h.cmsg_len = cmlen;
    h.cmsg_level = level;
    h.cmsg_type = type;
    std::string out(reinterpret_cast<const char*>(&h), sizeof(h));
    out.append(static_cast<const char*>(data), n);
    out.resize(cmlen);
    TRY(t.CopyOut(addr + used, out.data(), out.size()));
    used += std::min(CMSG_SPACE(n), len - used);
    return Ok();
  };
  auto put = [&](int type, const void* data, size_t n) {
    return put_at(SOL_SOCKET, type, data, n);
  };
  for (const net::ControlMessage& c : r.control) {
    TRY(put_at(c.level, c.type, c.data.data(), c.data.size()));
  }
  if (r.creds.has_value()) {
    ucred c{r.creds->pid, r.creds->uid, r.creds->gid};
    TRY(put(SCM_CREDENTIALS, &c, sizeof(c)));
  }
  if (!r.fds.empty()) {
    const size_t room =
        len - used > sizeof(cmsghdr) ? (len - used - sizeof(cmsghdr)) / sizeof(int) : 0;
    const size_t n = std::min(room, r.fds.size());
    std::vector<int> installed;
    for (size_t i = 0; i < n; i++) {
      Result<int> fd = t.fds().Add(r.fds[i], (flags & MSG_CMSG_CLOEXEC) != 0);
      if (!fd.ok()) {
        *msg_flags |= MSG_CTRUNC;
        break;
      }
      installed.push_back(*fd);
    }
    if (installed.size() < r.fds.size()) *msg_flags |= MSG_CTRUNC;
    if (!installed.empty()) {
      TRY(put(SCM_RIGHTS, installed.data(), installed.size() * sizeof(int)));
    }
  }
  return used;
}

// One sendmsg: the bytes of iov, with control data and an address.
Result<long> SendOne(Task& t, net::Socket& s, const std::vector<iovec>& iov, net::SendRequest req)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  const size_t total = std::min(IovTotal(iov), kMaxRw);
  Result<long> r = Errno{EINVAL};
  if (s.MaxMessage() != 0) {
    if (total > s.MaxMessage()) return Errno{EMSGSIZE};
    ASSIGN_OR_RETURN(std::string data, Gather(t, iov, 0, total));
    req.data = data;
    Result<size_t> n = s.Send(t, req);
    r = n.ok() ? Result<long>(static_cast<long>(*n)) : Result<long>(Errno{n.error()});
  } else {
    // A stream goes in pieces, each sent whole before the next is read in.
    size_t done = 0;
    do {
      const size_t k = std::min(total - done, kStreamChunk);
      ASSIGN_OR_RETURN(std::string data, Gather(t, iov, done, k));
      req.data = data;
      Result<size_t> n = s.Send(t, req);
      req.fds.clear();
      if (!n.ok()) {
        if (done == 0) r = Errno{n.error()};
        break;
      }
      done += *n;
      r = static_cast<long>(done);
      if (*n < k) break;
    } while (done < total);
  }
  if (!r.ok() && r.error() == EPIPE && !(req.flags & MSG_NOSIGNAL)) RaiseOnSelf(t, SIGPIPE);
  return r;
}

// sendmsg(2) of one struct msghdr at hdr_addr.
Result<long> SendMsgAt(Task& t, int fd, uintptr_t hdr_addr, int flags)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, fd, &keep));
  msghdr h;
  TRY(t.CopyInObj(hdr_addr, &h));
  ASSIGN_OR_RETURN(std::vector<iovec> iov,
                   CopyInIov(t, reinterpret_cast<uintptr_t>(h.msg_iov), h.msg_iovlen));
  net::SendRequest req;
  req.flags = flags;
  if (h.msg_name != nullptr && h.msg_namelen > 0) {
    ASSIGN_OR_RETURN(req.to, CopyInAddress(t, reinterpret_cast<uintptr_t>(h.msg_name),
                                           static_cast<int>(h.msg_namelen)));
  }
  TRY(ParseControl(t, reinterpret_cast<uintptr_t>(h.msg_control), h.msg_controllen, &req));
  return SendOne(t, *s, iov, std::move(req));
}

// recvmsg(2) into the struct msghdr at hdr_addr (its lengths and flags
// written back).
Result<long> RecvMsgAt(Task& t, int fd, uintptr_t hdr_addr, int flags)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, fd, &keep));
  msghdr h;
  TRY(t.CopyInObj(hdr_addr, &h));
  ASSIGN_OR_RETURN(std::vector<iovec> iov,
                   CopyInIov(t, reinterpret_cast<uintptr_t>(h.msg_iov), h.msg_iovlen));
  if (static_cast<int>(h.msg_namelen) < 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(net::Received r, s->Receive(t, std::min(IovTotal(iov), kMaxReceive), flags));
  TRY(Scatter(t, iov, r.data));
  int msg_flags = r.msg_flags;
  size_t name_len = 0;
  if (h.msg_name != nullptr && !r.from.empty()) {
    const size_t n = std::min<size_t>(h.msg_namelen, r.from.size());
    TRY(t.CopyOut(reinterpret_cast<uintptr_t>(h.msg_name), r.from.data(), n));
    name_len = r.from.size();
  }
  ASSIGN_OR_RETURN(size_t control, BuildControl(t, reinterpret_cast<uintptr_t>(h.msg_control),
                                                h.msg_controllen, r, flags, &msg_flags));
  h.msg_namelen = static_cast<socklen_t>(h.msg_name != nullptr ? name_len : 0);
  h.msg_controllen = control;
  h.msg_flags = msg_flags;
  TRY(t.CopyOut(hdr_addr + offsetof(msghdr, msg_namelen), &h.msg_namelen, sizeof(h.msg_namelen)));
  TRY(t.CopyOut(hdr_addr + offsetof(msghdr, msg_controllen), &h.msg_controllen,
                sizeof(h.msg_controllen)));
  TRY(t.CopyOut(hdr_addr + offsetof(msghdr, msg_flags), &h.msg_flags, sizeof(h.msg_flags)));
  return static_cast<long>(r.length);
}

}  // namespace

Result<long> SocketVectored(Task& t, int fd, const std::vector<IoVec>& v, bool write) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, fd, &keep));
  std::vector<iovec> iov;
  iov.reserve(v.size());
  for (const IoVec& e : v) iov.push_back({reinterpret_cast<void*>(e.base), e.len});
  if (write) return SendOne(t, *s, iov, net::SendRequest{});
  const size_t total = IovTotal(iov);
  if (total == 0) return 0L;  // sock_read_iter
  ASSIGN_OR_RETURN(net::Received r, s->Receive(t, std::min(total, kMaxReceive), 0));
  TRY(Scatter(t, iov, r.data));
  return static_cast<long>(r.data.size());
}

SyscallResult SysSocket(Task& t, const Args& a) {
  int file_flags;
  bool cloexec;
  ASSIGN_OR_RETURN(int type, SplitType(a.Int(1), &file_flags, &cloexec));
  const int domain = a.Int(0), protocol = a.Int(2);
  vfs::FileRef f;
  if (domain == AF_NETLINK) {
    // netlink_create: raw and datagram sockets alike (not unix's SOCK_RAW).
    ASSIGN_OR_RETURN(f, net::NewNetlinkSocket(t, a.Int(1) & 0xf, protocol, file_flags));
  } else if ((domain == AF_INET || domain == AF_INET6) && net::HostNetworkEnabled()) {
    // --network=host: the host's stack, its types and protocols.
    const int host_type = a.Int(1) & 0xf;
    if (host_type != SOCK_STREAM && host_type != SOCK_DGRAM) return Errno{ESOCKTNOSUPPORT};
    ASSIGN_OR_RETURN(f, net::NewHostSocket(t, domain, host_type, protocol, file_flags));
  } else if (domain == AF_INET || domain == AF_INET6) {
    // inet_create: TCP for streams, UDP for datagrams, and ICMP echo
    // ("ping") sockets over IPv4 and IPv6 (net.ipv4.ping_group_range lets
    // every group have them); raw sockets are not there yet.
    bool ping = false;
    if (type == SOCK_STREAM) {
      if (protocol != 0 && protocol != IPPROTO_TCP) return Errno{EPROTONOSUPPORT};
    } else if ((a.Int(1) & 0xf) == SOCK_DGRAM) {
      ping = (domain == AF_INET && protocol == IPPROTO_ICMP) ||
             (domain == AF_INET6 && protocol == IPPROTO_ICMPV6);
      if (protocol != 0 && protocol != IPPROTO_UDP && !ping) return Errno{EPROTONOSUPPORT};
    } else {
      return Errno{ESOCKTNOSUPPORT};
    }
    ASSIGN_OR_RETURN(f, net::NewInetSocket(t, domain, type, file_flags, ping));
  } else {
    ASSIGN_OR_RETURN(type, UnixTypeCheck(domain, type, protocol));
    ASSIGN_OR_RETURN(f, net::NewUnixSocket(t, type, file_flags));
  }
  ASSIGN_OR_RETURN(int fd, t.fds().Add(std::move(f), cloexec));
  return static_cast<long>(fd);
}

SyscallResult SysSocketpair(Task& t, const Args& a) {
  int file_flags;
  bool cloexec;
  ASSIGN_OR_RETURN(int type, SplitType(a.Int(1), &file_flags, &cloexec));
  if (a.Int(0) == AF_INET || a.Int(0) == AF_INET6) return Errno{EOPNOTSUPP};
  ASSIGN_OR_RETURN(type, UnixTypeCheck(a.Int(0), type, a.Int(2)));
  ASSIGN_OR_RETURN(auto pair, net::NewUnixPair(t, type, file_flags));
  ASSIGN_OR_RETURN(int fd0, t.fds().Add(std::move(pair.first), cloexec));
  Result<int> fd1 = t.fds().Add(std::move(pair.second), cloexec);
  if (!fd1.ok()) {
    (void)t.fds().Remove(fd0);
    return Errno{fd1.error()};
  }
  int fds[2] = {fd0, *fd1};
  if (Status s = t.CopyOut(a.Ptr(3), fds, sizeof(fds)); !s.ok()) {
    (void)t.fds().Remove(fd0);
    (void)t.fds().Remove(*fd1);
    return Errno{s.error()};
  }
  return 0L;
}

SyscallResult SysBind(Task& t, const Args& a) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, a.Int(0), &keep));
  ASSIGN_OR_RETURN(std::string addr, CopyInAddress(t, a.Ptr(1), a.Int(2)));
  TRY(s->Bind(t, addr));
  return 0L;
}

SyscallResult SysListen(Task& t, const Args& a) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, a.Int(0), &keep));
  TRY(s->Listen(t, a.Int(1)));
  return 0L;
}

namespace {
Result<long> AcceptWith(Task& t, const Args& a, int flags)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  if (flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)) return Errno{EINVAL};
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, a.Int(0), &keep));
  if (a.Ptr(2) != 0) {
    int len;
    TRY(t.CopyInObj(a.Ptr(2), &len));
    if (len < 0) return Errno{EINVAL};
  }
  std::string peer;
  ASSIGN_OR_RETURN(vfs::FileRef f, s->Accept(t, (flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0, &peer));
  ASSIGN_OR_RETURN(int fd, t.fds().Add(std::move(f), (flags & SOCK_CLOEXEC) != 0));
  if (a.Ptr(1) != 0) {
    if (Status c = CopyOutAddress(t, peer, a.Ptr(1), a.Ptr(2)); !c.ok()) {
      (void)t.fds().Remove(fd);
      return Errno{c.error()};
    }
  }
  return static_cast<long>(fd);
}
}  // namespace

SyscallResult SysAccept(Task& t, const Args& a) { return AcceptWith(t, a, 0); }
SyscallResult SysAccept4(Task& t, const Args& a) { return AcceptWith(t, a, a.Int(3)); }

SyscallResult SysConnect(Task& t, const Args& a) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, a.Int(0), &keep));
  ASSIGN_OR_RETURN(std::string addr, CopyInAddress(t, a.Ptr(1), a.Int(2)));
  TRY(s->Connect(t, addr));
  return 0L;
}

namespace {
// getsockname(2) and getpeername(2).
Result<long> NameOut(Task& t, const Args& a, bool peer) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, a.Int(0), &keep));
  ASSIGN_OR_RETURN(std::string name, peer ? s->PeerName() : s->SockName());
  TRY(CopyOutAddress(t, name, a.Ptr(1), a.Ptr(2)));
  return 0L;
}
}  // namespace

SyscallResult SysGetsockname(Task& t, const Args& a) { return NameOut(t, a, false); }
SyscallResult SysGetpeername(Task& t, const Args& a) { return NameOut(t, a, true); }

SyscallResult SysSendto(Task& t, const Args& a) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, a.Int(0), &keep));
  net::SendRequest req;
  req.flags = a.Int(3);
  if (a.Ptr(4) != 0) {
    ASSIGN_OR_RETURN(req.to, CopyInAddress(t, a.Ptr(4), a.Int(5)));
  }
  std::vector<iovec> iov = {{reinterpret_cast<void*>(a.Ptr(1)), a.Size(2)}};
  return SendOne(t, *s, iov, std::move(req));
}

SyscallResult SysRecvfrom(Task& t, const Args& a) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, a.Int(0), &keep));
  if (a.Ptr(5) != 0) {
    int len;
    TRY(t.CopyInObj(a.Ptr(5), &len));
    if (len < 0) return Errno{EINVAL};
  }
  ASSIGN_OR_RETURN(net::Received r, s->Receive(t, std::min(a.Size(2), kMaxReceive), a.Int(3)));
  if (!r.data.empty()) TRY(t.CopyOut(a.Ptr(1), r.data.data(), r.data.size()));
  // An unnamed sender, or a stream, gives no address: length 0.
  if (a.Ptr(4) != 0) TRY(CopyOutAddress(t, r.from, a.Ptr(4), a.Ptr(5)));
  return static_cast<long>(r.length);
}

SyscallResult SysSendmsg(Task& t, const Args& a) {
  return SendMsgAt(t, a.Int(0), a.Ptr(1), a.Int(2));
}
SyscallResult SysRecvmsg(Task& t, const Args& a) {
  return RecvMsgAt(t, a.Int(0), a.Ptr(1), a.Int(2));
}

namespace {
// sendmmsg(2)/recvmmsg(2): struct mmsghdr is a msghdr and the length done.
// Each message goes through `one` (sendmsg or recvmsg of a header); the
// count done is returned, or the first message's error.
Result<long> ManyMessages(Task& t, const Args& a, bool receive)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  const unsigned count = std::min<unsigned>(static_cast<unsigned>(a.U(2)), kMaxIov);
  int flags = a.Int(3);
  unsigned done = 0;
  for (; done < count; done++) {
    const uintptr_t at = a.Ptr(1) + done * sizeof(mmsghdr);
    Result<long> r =
        receive ? RecvMsgAt(t, a.Int(0), at, flags) : SendMsgAt(t, a.Int(0), at, flags);
    if (!r.ok()) {
      if (done == 0) return Errno{r.error()};
      break;
    }
    const unsigned len = static_cast<unsigned>(*r);
    TRY(t.CopyOut(at + offsetof(mmsghdr, msg_len), &len, sizeof(len)));
    // MSG_WAITFORONE: only the first receive waits.
    if (receive && (flags & MSG_WAITFORONE)) flags |= MSG_DONTWAIT;
  }
  return static_cast<long>(done);
}
}  // namespace

SyscallResult SysSendmmsg(Task& t, const Args& a) { return ManyMessages(t, a, false); }
SyscallResult SysRecvmmsg(Task& t, const Args& a) { return ManyMessages(t, a, true); }

SyscallResult SysShutdown(Task& t, const Args& a) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, a.Int(0), &keep));
  TRY(s->Shutdown(t, a.Int(1)));
  return 0L;
}

SyscallResult SysGetsockopt(Task& t, const Args& a) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, a.Int(0), &keep));
  int len;
  TRY(t.CopyInObj(a.Ptr(4), &len));
  if (len < 0) return Errno{EINVAL};
  ASSIGN_OR_RETURN(std::string v, s->GetOption(t, a.Int(1), a.Int(2), static_cast<size_t>(len)));
  if (!v.empty()) TRY(t.CopyOut(a.Ptr(3), v.data(), v.size()));
  TRY(t.CopyOutObj(a.Ptr(4), static_cast<int>(v.size())));
  return 0L;
}

SyscallResult SysSetsockopt(Task& t, const Args& a) {
  vfs::FileRef keep;
  ASSIGN_OR_RETURN(net::Socket * s, SocketOf(t, a.Int(0), &keep));
  if (a.Int(4) < 0) return Errno{EINVAL};
  std::string v(std::min<size_t>(static_cast<size_t>(a.Int(4)), 4096), '\0');
  if (!v.empty()) TRY(t.CopyIn(a.Ptr(3), v.data(), v.size()));
  TRY(s->SetOption(t, a.Int(1), a.Int(2), v));
  return 0L;
}

}  // namespace husk::syscalls
