// The gofer's mutating ops, served only for a writable tree (a read-write
// volume). Every name is one checked component in a directory the gofer
// holds by an O_PATH fd, so a change never lands outside the served tree;
// nodes that are not opened by name (chmod, truncate) are reopened and
// checked to be the very file the fid names (Reopen).
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "gofer/connection.h"
#include "gofer/names.h"
#include "gofer/server.h"
#include "gofer/wire.h"

namespace husk::gofer::internal {
namespace {

timespec ToTimespec(const pb::Timespec& t) {
  timespec ts{};
  ts.tv_sec = t.sec();
  ts.tv_nsec = t.nsec();
  return ts;
}

bool ValidTime(const pb::Timespec& t) {
  return t.nsec() < 1000000000 || t.nsec() == UTIME_NOW || t.nsec() == UTIME_OMIT;
}

}  // namespace

bool Connection::HandleWrite(const pb::Request& req, pb::Response* resp, Status* st) {
  switch (req.op_case()) {
    case pb::Request::kCreate:
      *st = Create(req.create(), resp->mutable_node());
      return true;
    case pb::Request::kMkdir:
      *st = Mkdir(req.mkdir(), resp->mutable_node());
      return true;
    case pb::Request::kMknod:
      *st = Mknod(req.mknod(), resp->mutable_node());
      return true;
    case pb::Request::kSymlink:
      *st = Symlink(req.symlink(), resp->mutable_node());
      return true;
    case pb::Request::kLink:
      *st = Link(req.link(), resp->mutable_attr());
      return true;
    case pb::Request::kUnlink:
      *st = Unlink(req.unlink());
      resp->mutable_done();
      return true;
    case pb::Request::kRename:
      *st = Rename(req.rename());
      resp->mutable_done();
      return true;
    case pb::Request::kSetattr:
      *st = Setattr(req.setattr(), resp->mutable_attr());
      return true;
    case pb::Request::kWatch:
      *st = Watch(req.watch(), resp->mutable_watch());
      return true;
    default:
      return false;
  }
}

Result<std::shared_ptr<Node>> Connection::WritableDir(uint64_t fid, const std::string& name) {
  ASSIGN_OR_RETURN(FidState * fs, Lookup(fid));
  if (!S_ISDIR(fs->node->type)) return Errno{ENOTDIR};
  if (int err = CheckName(name); err != 0) return Errno{err};
  if (read_only_) return Errno{EROFS};
  if (fids_.size() >= kMaxFids) return Errno{ENFILE};
  return fs->node;
}

Status Connection::NewChild(const std::shared_ptr<Node>& dir, const std::string& name, uint32_t uid,
                            uint32_t gid, pb::FidAttr* out) {
  UniqueFd fd(Openat2(dir->fd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC, kResolve));
  if (!fd.valid()) return Errno{errno};
  // The sandbox caller's owner. Without CAP_CHOWN (a gofer that is not
  // host root) the node stays the gofer's, which is what a host user
  // writing the volume directly would get.
  if (fchownat(fd.get(), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 &&
      errno != EPERM) {
    return Errno{errno};
  }
  ASSIGN_OR_RETURN(struct stat st, StatFd(fd.get()));
  auto node = std::make_shared<Node>();
  node->fd = std::move(fd);
  node->parent = dir;
  node->name = name;
  node->type = st.st_mode & S_IFMT;
  node->dev = st.st_dev;
  node->ino = st.st_ino;
  ASSIGN_OR_RETURN(uint64_t fid, AddFid(std::move(node)));
  out->set_fid(fid);
  FillAttr(st, out->mutable_attr());
  return Ok();
}

Status Connection::Create(const pb::CreateRequest& req, pb::FidAttr* out) {
  ASSIGN_OR_RETURN(std::shared_ptr<Node> dir, WritableDir(req.dir(), req.name()));
  // mknod(S_IFREG) makes the file without opening it: the sentry opens it
  // with the access it needs through Open.
  if (mknodat(dir->fd.get(), req.name().c_str(), S_IFREG | (req.mode() & 07777), 0) != 0) {
    return Errno{errno};
  }
  return NewChild(dir, req.name(), req.uid(), req.gid(), out);
}

Status Connection::Mkdir(const pb::MkdirRequest& req, pb::FidAttr* out) {
  ASSIGN_OR_RETURN(std::shared_ptr<Node> dir, WritableDir(req.dir(), req.name()));
  if (mkdirat(dir->fd.get(), req.name().c_str(), req.mode() & 07777) != 0) return Errno{errno};
  return NewChild(dir, req.name(), req.uid(), req.gid(), out);
}

Status Connection::Mknod(const pb::MknodRequest& req, pb::FidAttr* out) {
  ASSIGN_OR_RETURN(std::shared_ptr<Node> dir, WritableDir(req.dir(), req.name()));
  // Only nodes that name nothing on the host: never a device.
  const mode_t type = req.mode() & S_IFMT;
  if (type != S_IFIFO && type != S_IFSOCK) return Errno{EPERM};
  if (mknodat(dir->fd.get(), req.name().c_str(), type | (req.mode() & 07777), 0) != 0) {
    return Errno{errno};
  }
  return NewChild(dir, req.name(), req.uid(), req.gid(), out);
}

Status Connection::Symlink(const pb::SymlinkRequest& req, pb::FidAttr* out) {
  ASSIGN_OR_RETURN(std::shared_ptr<Node> dir, WritableDir(req.dir(), req.name()));
  const std::string& target = req.target();
  if (target.empty()) return Errno{ENOENT};
  if (target.size() >= kMaxPathLength) return Errno{ENAMETOOLONG};
  if (target.find('\0') != std::string::npos) return Errno{EINVAL};
  if (symlinkat(target.c_str(), dir->fd.get(), req.name().c_str()) != 0) return Errno{errno};
  return NewChild(dir, req.name(), req.uid(), req.gid(), out);
}

Status Connection::Link(const pb::LinkRequest& req, pb::Attr* out) {
  ASSIGN_OR_RETURN(std::shared_ptr<Node> dir, WritableDir(req.dir(), req.name()));
  ASSIGN_OR_RETURN(FidState * target_state, Lookup(req.target()));
  const Node& target = *target_state->node;
  if (S_ISDIR(target.type) || target.parent == nullptr) return Errno{EPERM};
  // By (parent, name): linkat(AT_EMPTY_PATH) on the O_PATH fd would need
  // CAP_DAC_READ_SEARCH semantics we do not rely on. The new name is then
  // checked to be the fid's file; if the old name was swapped meanwhile,
  // the link made is taken back.
  if (linkat(target.parent->fd.get(), target.name.c_str(), dir->fd.get(), req.name().c_str(), 0) !=
      0) {
    return Errno{errno == ENOENT ? ESTALE : errno};
  }
  struct stat st;
  if (fstatat(dir->fd.get(), req.name().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
      st.st_dev != target.dev || st.st_ino != target.ino) {
    (void)unlinkat(dir->fd.get(), req.name().c_str(), 0);
    return Errno{ESTALE};
  }
  FillAttr(st, out);
  return Ok();
}

Status Connection::Unlink(const pb::UnlinkRequest& req) {
  ASSIGN_OR_RETURN(std::shared_ptr<Node> dir, WritableDir(req.dir(), req.name()));
  if (unlinkat(dir->fd.get(), req.name().c_str(), req.remove_dir() ? AT_REMOVEDIR : 0) != 0) {
    return Errno{errno};
  }
  return Ok();
}

Status Connection::Rename(const pb::RenameRequest& req) {
  ASSIGN_OR_RETURN(std::shared_ptr<Node> from, WritableDir(req.old_dir(), req.old_name()));
  ASSIGN_OR_RETURN(std::shared_ptr<Node> to, WritableDir(req.new_dir(), req.new_name()));
  const uint32_t flags = req.flags();
  if (flags != 0 && flags != RENAME_NOREPLACE && flags != RENAME_EXCHANGE) return Errno{EINVAL};
  // The system call itself: glibc's renameat2 turns flags 0 into renameat,
  // which the seccomp policy does not list.
  if (syscall(SYS_renameat2, from->fd.get(), req.old_name().c_str(), to->fd.get(),
              req.new_name().c_str(), flags) != 0) {
    return Errno{errno};
  }
  Moved(from, req.old_name(), to, req.new_name(), flags == RENAME_EXCHANGE);
  return Ok();
}

void Connection::Moved(const std::shared_ptr<Node>& from, const std::string& from_name,
                       const std::shared_ptr<Node>& to, const std::string& to_name, bool exchange) {
  // Several nodes may stand for one directory (each walk makes its own):
  // directories are compared by identity.
  auto same_dir = [](const Node* a, const Node& b) {
    return a != nullptr && a->dev == b.dev && a->ino == b.ino;
  };
  // Collected first: with RENAME_EXCHANGE a node must move once, not back.
  std::vector<Node*> forward, backward;
  for (auto& [fid, state] : fids_) {
    Node* n = state.node.get();
    if (same_dir(n->parent.get(), *from) && n->name == from_name) forward.push_back(n);
    if (exchange && same_dir(n->parent.get(), *to) && n->name == to_name) backward.push_back(n);
  }
  for (Node* n : forward) {
    n->parent = to;
    n->name = to_name;
  }
  for (Node* n : backward) {
    n->parent = from;
    n->name = from_name;
  }
}

Status Connection::Setattr(const pb::SetattrRequest& req, pb::Attr* out) {
  ASSIGN_OR_RETURN(FidState * fs, Lookup(req.fid()));
  if (read_only_) return Errno{EROFS};
  const Node& node = *fs->node;
  if (req.has_mode()) {
    if (S_ISLNK(node.type) || S_ISSOCK(node.type)) return Errno{EOPNOTSUPP};
    ASSIGN_OR_RETURN(UniqueFd fd, Reopen(node, O_RDONLY));
    if (fchmod(fd.get(), req.mode() & 07777) != 0) return Errno{errno};
  }
  if (req.has_uid() || req.has_gid()) {
    uid_t uid = req.has_uid() ? req.uid() : static_cast<uid_t>(-1);
    gid_t gid = req.has_gid() ? req.gid() : static_cast<gid_t>(-1);
    if (fchownat(node.fd.get(), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      return Errno{errno};
    }
  }
  if (req.has_size()) {
    if (S_ISDIR(node.type)) return Errno{EISDIR};
    if (!S_ISREG(node.type)) return Errno{EINVAL};
    if (req.size() > static_cast<uint64_t>(INT64_MAX)) return Errno{EFBIG};
    ASSIGN_OR_RETURN(UniqueFd fd, Reopen(node, O_WRONLY));
    if (ftruncate(fd.get(), static_cast<off_t>(req.size())) != 0) return Errno{errno};
  }
  if (req.has_atime() || req.has_mtime()) {
    if (!ValidTime(req.atime()) || !ValidTime(req.mtime())) return Errno{EINVAL};
    timespec times[2];
    times[0] = req.has_atime() ? ToTimespec(req.atime()) : timespec{0, UTIME_OMIT};
    times[1] = req.has_mtime() ? ToTimespec(req.mtime()) : timespec{0, UTIME_OMIT};
    if (utimensat(node.fd.get(), "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      return Errno{errno};
    }
  }
  ASSIGN_OR_RETURN(struct stat st, StatFd(node.fd.get()));
  FillAttr(st, out);
  return Ok();
}

Result<UniqueFd> Connection::WatchInit() {
  if (read_only_) return Errno{EROFS};
  if (!inotify_.valid()) {
    inotify_ = UniqueFd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_.valid()) return Errno{errno};
  }
  // The sentry gets its own descriptor of the same instance.
  UniqueFd copy(fcntl(inotify_.get(), F_DUPFD_CLOEXEC, 0));
  if (!copy.valid()) return Errno{errno};
  return copy;
}

namespace {

// Runs fn with the working directory at dir, then goes back (to the served
// root if going back fails): bind(2) and connect(2) take a path, and the
// gofer has no /proc to name a held directory by.
template <typename Fn>
auto InDirectory(int dir, int root, Fn fn) {
  UniqueFd was(Openat2(AT_FDCWD, ".", O_PATH | O_DIRECTORY | O_CLOEXEC, 0));
  if (fchdir(dir) != 0) return decltype(fn())(Errno{errno});
  auto r = fn();
  (void)fchdir(was.valid() ? was.get() : root);
  return r;
}

bool UnixType(uint32_t type) {
  return type == SOCK_STREAM || type == SOCK_SEQPACKET || type == SOCK_DGRAM;
}

// A sockaddr_un naming `name` (one checked component) relative to the
// working directory; false if it does not fit.
bool UnixAddress(const std::string& name, sockaddr_un* a, socklen_t* len) {
  if (name.size() >= sizeof(a->sun_path)) return false;
  *a = {};
  a->sun_family = AF_UNIX;
  memcpy(a->sun_path, name.data(), name.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
  return true;
}

}  // namespace

Result<UniqueFd> Connection::Bind(const pb::BindRequest& req, pb::FidAttr* out) {
  ASSIGN_OR_RETURN(std::shared_ptr<Node> dir, WritableDir(req.dir(), req.name()));
  if (!UnixType(req.type())) return Errno{EINVAL};
  sockaddr_un a;
  socklen_t len;
  if (!UnixAddress(req.name(), &a, &len)) return Errno{ENAMETOOLONG};
  UniqueFd s(socket(AF_UNIX, static_cast<int>(req.type()) | SOCK_CLOEXEC, 0));
  if (!s.valid()) return Errno{errno};
  // unix_bind makes the node with the socket's mode less the umask: the
  // umask gives it the mode asked for (the gofer's is 0 otherwise).
  Status bound = InDirectory(dir->fd.get(), root_->fd.get(), [&]() -> Status {
    umask(~req.mode() & 0777);
    const int r = bind(s.get(), reinterpret_cast<sockaddr*>(&a), len);
    const int err = errno;
    umask(0);
    if (r != 0) return Errno{err};
    return Ok();
  });
  TRY(bound);
  if (Status made = NewChild(dir, req.name(), req.uid(), req.gid(), out); !made.ok()) {
    (void)unlinkat(dir->fd.get(), req.name().c_str(), 0);
    return Errno{made.error()};
  }
  return s;
}

Result<UniqueFd> Connection::Connect(const pb::ConnectRequest& req) {
  ASSIGN_OR_RETURN(FidState * fs, Lookup(req.fid()));
  if (read_only_) return Errno{EROFS};
  if (!UnixType(req.type())) return Errno{EINVAL};
  const Node& node = *fs->node;
  if (!S_ISSOCK(node.type) || node.parent == nullptr) return Errno{ECONNREFUSED};
  sockaddr_un a;
  socklen_t len;
  if (!UnixAddress(node.name, &a, &len)) return Errno{ENAMETOOLONG};
  UniqueFd s(socket(AF_UNIX, static_cast<int>(req.type()) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.valid()) return Errno{errno};
  Status connected = InDirectory(node.parent->fd.get(), root_->fd.get(), [&]() -> Status {
    // The name must still be the fid's socket (never a symlink put there
    // since: connect(2) would follow it).
    struct stat st {};
    if (fstatat(AT_FDCWD, node.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        st.st_dev != node.dev || st.st_ino != node.ino) {
      return Errno{ESTALE};
    }
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) return Errno{errno};
    return Ok();
  });
  TRY(connected);
  return s;
}

Status Connection::Watch(const pb::WatchRequest& req, pb::WatchResponse* out) {
  ASSIGN_OR_RETURN(FidState * fs, Lookup(req.fid()));
  if (read_only_) return Errno{EROFS};
  if (!inotify_.valid()) return Errno{EBADF};
  const Node& node = *fs->node;
  // inotify_add_watch(2) takes a path, and the gofer has no /proc to name
  // an fd by: the path is relative to a working directory set to a node
  // the gofer holds, and its one component is a checked name, never
  // followed if it is a symlink.
  const bool dir = S_ISDIR(node.type);
  if (!dir && node.parent == nullptr) return Errno{ESTALE};
  const int cwd = dir ? node.fd.get() : node.parent->fd.get();
  const char* name = dir ? "." : node.name.c_str();
  // Back to where the gofer was afterwards (the served root if that fails).
  UniqueFd was(Openat2(AT_FDCWD, ".", O_PATH | O_DIRECTORY | O_CLOEXEC, 0));
  if (fchdir(cwd) != 0) return Errno{errno};
  const int wd =
      inotify_add_watch(inotify_.get(), name, kWatchMask | IN_DONT_FOLLOW | (dir ? IN_ONLYDIR : 0));
  const int err = errno;
  struct stat st {};
  const bool same = wd >= 0 && fstatat(AT_FDCWD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    st.st_dev == node.dev && st.st_ino == node.ino;
  (void)fchdir(was.valid() ? was.get() : root_->fd.get());
  if (wd < 0) return Errno{err};
  if (!same) {
    // The name was swapped for another file meanwhile: that file is not
    // the sandbox's to watch. (A watch the fid's own file already had is
    // lost with it; the sentry asks again.)
    inotify_rm_watch(inotify_.get(), wd);
    return Errno{ESTALE};
  }
  out->set_wd(wd);
  return Ok();
}

}  // namespace husk::gofer::internal
