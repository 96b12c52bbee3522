#include "gofer/client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "gofer/names.h"
#include "gofer/wire.h"
#include "proto/gofer.pb.h"

namespace husk::gofer {
namespace {

namespace pb = ::husk::gofer::proto;

// Closes queued before they go out on their own.
constexpr size_t kCloseBatch = 64;
// Per Walk round trip: the server's limit on names, and a bound on their
// bytes so that the request fits in a frame.
constexpr size_t kWalkChunkNames = 256;
constexpr size_t kWalkChunkBytes = size_t{32} * 1024;
// A listing longer than this is taken for a server that never says eof.
constexpr size_t kMaxDirEntries = size_t{1} << 22;
// Linux errnos are below 4096 (MAX_ERRNO).
constexpr int kMaxErrno = 4095;

bool ValidType(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFDIR:
    case S_IFLNK:
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
      return true;
    default:
      return false;
  }
}

std::optional<struct timespec> ToTimespec(const pb::Timespec& t) {
  if (t.nsec() >= 1000000000u) return std::nullopt;
  timespec ts{};
  ts.tv_sec = t.sec();
  ts.tv_nsec = t.nsec();
  return ts;
}

// EIO for attributes no host file could have.
Result<Attr> ToAttr(const pb::Attr& a) {
  if (!ValidType(a.mode())) return Errno{EIO};
  Attr out;
  out.ino = a.ino();
  out.dev = a.dev();
  out.mode = a.mode();
  out.nlink =
      static_cast<uint32_t>(std::min<uint64_t>(a.nlink(), std::numeric_limits<uint32_t>::max()));
  out.uid = a.uid();
  out.gid = a.gid();
  out.rdev = a.rdev();
  out.size = a.size();
  out.blksize = a.blksize();
  out.blocks = a.blocks();
  if (out.size < 0 || out.blksize < 0 || out.blocks < 0) return Errno{EIO};
  auto at = ToTimespec(a.atime()), mt = ToTimespec(a.mtime()), ct = ToTimespec(a.ctime());
  if (!at || !mt || !ct) return Errno{EIO};
  out.atime = *at;
  out.mtime = *mt;
  out.ctime = *ct;
  return out;
}

Result<WalkStep> ToStep(const pb::FidAttr& fa) {
  if (fa.fid() == 0) return Errno{EIO};
  ASSIGN_OR_RETURN(Attr attr, ToAttr(fa.attr()));
  return WalkStep{fa.fid(), attr};
}

}  // namespace

Client::Client(UniqueFd sock) : sock_(std::move(sock)) {}

Result<UniqueFd> Client::RoundTrip(pb::Request& req, pb::Response* resp) {
  if (broken_) return Errno{EIO};
  for (Fid fid : pending_closes_) req.add_close_fids(fid);
  pending_closes_.clear();
  std::string payload;
  if (!req.SerializeToString(&payload) || payload.size() > wire::kMaxPayload) {
    // Callers keep requests small (walks are split), so this is a bug: keep
    // the closes for the next request and fail this one alone.
    pending_closes_.assign(req.close_fids().begin(), req.close_fids().end());
    return Errno{ENAMETOOLONG};
  }

  if (!wire::Send(sock_.get(), wire::Kind::kRequest, payload).ok()) return Break();
  absl::StatusOr<std::optional<wire::Frame>> frame = wire::Recv(sock_.get(), wire::Kind::kResponse);
  if (!frame.ok() || !frame->has_value()) return Break();
  if (!resp->ParseFromString((*frame)->payload)) return Break();
  if (resp->err() < 0 || resp->err() > kMaxErrno) return Break();
  // Only a successful Open, WatchInit, Bind or Connect carries a descriptor.
  const bool fd_expected = resp->err() == 0 && (resp->result_case() == pb::Response::kOpen ||
                                                resp->result_case() == pb::Response::kWatchInit ||
                                                req.op_case() == pb::Request::kBind ||
                                                req.op_case() == pb::Request::kConnect);
  // The sentry's own descriptor table is full: this call fails (as Linux's
  // open fails at the system-wide limit), the connection goes on.
  if (fd_expected && (*frame)->fd_lost) return Errno{ENFILE};
  if ((*frame)->fd.valid() != fd_expected || (*frame)->fd_lost) return Break();
  return std::move((*frame)->fd);
}

Errno Client::Break() {
  broken_ = true;
  sock_.Reset();  // the gofer sees EOF, drops every fid and exits
  return Errno{EIO};
}

Result<UniqueFd> Client::Call(pb::Request& req, pb::Response* resp, int expected) {
  ASSIGN_OR_RETURN(UniqueFd fd, RoundTrip(req, resp));
  if (resp->err() != 0) return Errno{resp->err()};
  if (resp->result_case() != expected) return Break();
  return fd;
}

Result<WalkStep> Client::Attach() {
  absl::MutexLock lock(&mu_);
  pb::Request req;
  req.mutable_attach();
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kAttach));
  Result<WalkStep> step = ToStep(resp.attach().root());
  if (!step.ok() || (step->attr.mode & S_IFMT) != S_IFDIR) return Break();
  return step;
}

Result<WalkResult> Client::WalkOnce(Fid dir, const std::string* names, size_t count) {
  pb::Request req;
  pb::WalkRequest* w = req.mutable_walk();
  w->set_dir(dir);
  for (size_t i = 0; i < count; ++i) w->add_names(names[i]);
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kWalk));

  const pb::WalkResponse& r = resp.walk();
  if (r.steps_size() == 0 || static_cast<size_t>(r.steps_size()) > count) return Break();
  WalkResult out;
  for (int i = 0; i < r.steps_size(); ++i) {
    Result<WalkStep> step = ToStep(r.steps(i));
    if (!step.ok()) return Break();
    // The walk went on from every step but the last, so those are directories.
    bool last = i + 1 == r.steps_size();
    if (!last && (step->attr.mode & S_IFMT) != S_IFDIR) return Break();
    out.steps.push_back(step.value());
  }
  bool at_symlink = (out.steps.back().attr.mode & S_IFMT) == S_IFLNK;
  if (out.steps.size() < count && !at_symlink) {
    if (r.stop_err() <= 0 || r.stop_err() > kMaxErrno) return Break();
    out.stop_errno = r.stop_err();
  }
  return out;
}

Result<WalkResult> Client::WalkFull(Fid dir, const std::vector<std::string>& names) {
  if (names.empty()) return Errno{EINVAL};
  for (const std::string& name : names) {
    if (int err = CheckName(name); err != 0) return Errno{err};
  }
  absl::MutexLock lock(&mu_);
  WalkResult all;
  size_t i = 0;
  Fid cur = dir;
  while (i < names.size()) {
    size_t n = 0, bytes = 0;
    while (i + n < names.size() && n < kWalkChunkNames &&
           bytes + names[i + n].size() <= kWalkChunkBytes) {
      bytes += names[i + n].size();
      ++n;
    }
    Result<WalkResult> part = WalkOnce(cur, &names[i], n);
    if (!part.ok()) {
      if (all.steps.empty()) return Errno{part.error()};
      all.stop_errno = part.error();  // the chunk's first component failed
      return all;
    }
    for (WalkStep& s : part->steps) all.steps.push_back(s);
    if (part->steps.size() < n || (all.steps.back().attr.mode & S_IFMT) == S_IFLNK) {
      all.stop_errno = part->stop_errno;
      return all;
    }
    cur = all.steps.back().fid;
    i += n;
  }
  return all;
}

Result<std::vector<WalkStep>> Client::Walk(Fid dir, const std::vector<std::string>& names) {
  ASSIGN_OR_RETURN(WalkResult r, WalkFull(dir, names));
  return std::move(r.steps);
}

Result<Attr> Client::Stat(Fid fid) {
  absl::MutexLock lock(&mu_);
  pb::Request req;
  req.mutable_stat()->set_fid(fid);
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kStat));
  Result<Attr> attr = ToAttr(resp.stat().attr());
  if (!attr.ok()) return Break();
  return attr;
}

Result<UniqueFd> Client::Open(Fid fid, int flags) {
  absl::MutexLock lock(&mu_);
  pb::Request req;
  pb::OpenRequest* o = req.mutable_open();
  o->set_fid(fid);
  o->set_flags(flags);
  pb::Response resp;
  ASSIGN_OR_RETURN(UniqueFd fd, Call(req, &resp, pb::Response::kOpen));
  // The descriptor must be what was asked for: a regular file, opened (not
  // O_PATH) with the requested access mode.
  struct stat st;
  int fl = fcntl(fd.get(), F_GETFL);
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || fl < 0 || (fl & O_PATH) != 0 ||
      (fl & O_ACCMODE) != (flags & O_ACCMODE)) {
    return Break();
  }
  return fd;
}

Result<UniqueFd> Client::WatchInit() {
  absl::MutexLock lock(&mu_);
  pb::Request req;
  req.mutable_watch_init();
  pb::Response resp;
  ASSIGN_OR_RETURN(UniqueFd fd, Call(req, &resp, pb::Response::kWatchInit));
  // Must be something that queues bytes to read (an inotify instance
  // answers FIONREAD), not a file or directory: its records
  // are then parsed as the hostile input they may be.
  int queued = 0;
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ||
      ioctl(fd.get(), FIONREAD, &queued) != 0) {
    return Break();
  }
  if (fcntl(fd.get(), F_SETFL, O_NONBLOCK) != 0) return Errno{errno};
  return fd;
}

namespace {

// The gofer's socket is what it says: a unix socket of `type`.
bool IsUnixSocket(int fd, int type) {
  struct stat st;
  int domain = 0, got = 0;
  socklen_t len = sizeof(int);
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX) return false;
  len = sizeof(int);
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &got, &len) == 0 && got == type;
}

}  // namespace

Result<std::pair<WalkStep, UniqueFd>> Client::BindSocket(Fid dir, const std::string& name, int type,
                                                         uint32_t mode, uint32_t uid,
                                                         uint32_t gid) {
  if (int err = CheckName(name); err != 0) return Errno{err};
  absl::MutexLock lock(&mu_);
  pb::Request req;
  pb::BindRequest* b = req.mutable_bind();
  b->set_dir(dir);
  b->set_name(name);
  b->set_type(static_cast<uint32_t>(type));
  b->set_mode(mode);
  b->set_uid(uid);
  b->set_gid(gid);
  pb::Response resp;
  ASSIGN_OR_RETURN(UniqueFd fd, Call(req, &resp, pb::Response::kNode));
  Result<WalkStep> step = ToStep(resp.node());
  if (!step.ok() || !fd.valid() || !IsUnixSocket(fd.get(), type)) return Break();
  // The sentry never waits in the host: its accepts must not block.
  if (fcntl(fd.get(), F_SETFL, O_NONBLOCK) != 0) return Errno{errno};
  return std::make_pair(*step, std::move(fd));
}

Result<UniqueFd> Client::ConnectSocket(Fid fid, int type) {
  absl::MutexLock lock(&mu_);
  pb::Request req;
  req.mutable_connect()->set_fid(fid);
  req.mutable_connect()->set_type(static_cast<uint32_t>(type));
  pb::Response resp;
  ASSIGN_OR_RETURN(UniqueFd fd, Call(req, &resp, pb::Response::kDone));
  if (!fd.valid() || !IsUnixSocket(fd.get(), type)) return Break();
  if (fcntl(fd.get(), F_SETFL, O_NONBLOCK) != 0) return Errno{errno};
  return fd;
}

Result<int> Client::Watch(Fid fid) {
  absl::MutexLock lock(&mu_);
  pb::Request req;
  req.mutable_watch()->set_fid(fid);
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kWatch));
  if (resp.watch().wd() <= 0) return Break();
  return resp.watch().wd();
}

Result<std::string> Client::Readlink(Fid fid) {
  absl::MutexLock lock(&mu_);
  pb::Request req;
  req.mutable_readlink()->set_fid(fid);
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kReadlink));
  const std::string& target = resp.readlink().target();
  // Linux symlink targets: 1 to PATH_MAX-1 bytes, no NUL.
  if (target.empty() || target.size() >= kMaxPathLength || target.find('\0') != std::string::npos) {
    return Break();
  }
  return target;
}

Result<std::vector<DirEntry>> Client::ReadDir(Fid dir) {
  absl::MutexLock lock(&mu_);
  std::vector<DirEntry> out;
  uint64_t cookie = 0;
  for (;;) {
    pb::Request req;
    pb::GetdentsRequest* g = req.mutable_getdents();
    g->set_dir(dir);
    g->set_cookie(cookie);
    pb::Response resp;
    TRY(Call(req, &resp, pb::Response::kGetdents));
    const pb::GetdentsResponse& r = resp.getdents();
    // A batch that is neither last nor makes progress would loop forever.
    if (!r.eof() && r.entries_size() == 0) return Break();
    if (out.size() + r.entries_size() > kMaxDirEntries) return Break();
    for (const pb::Dirent& e : r.entries()) {
      if (CheckName(e.name()) != 0 || e.type() > DT_WHT) return Break();
      out.push_back(DirEntry{e.name(), e.ino(), static_cast<uint8_t>(e.type())});
    }
    if (r.eof()) return out;
    cookie = r.next_cookie();
  }
}

Result<struct statfs> Client::Statfs(Fid fid) {
  absl::MutexLock lock(&mu_);
  pb::Request req;
  req.mutable_statfs()->set_fid(fid);
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kStatfs));
  const pb::StatfsResponse& r = resp.statfs();
  struct statfs s = {};
  s.f_type = r.type();
  s.f_bsize = r.bsize();
  s.f_blocks = r.blocks();
  s.f_bfree = r.bfree();
  s.f_bavail = r.bavail();
  s.f_files = r.files();
  s.f_ffree = r.ffree();
  int fsid[2] = {r.fsid0(), r.fsid1()};
  static_assert(sizeof(fsid) == sizeof(s.f_fsid));
  memcpy(&s.f_fsid, fsid, sizeof(fsid));
  s.f_namelen = r.namelen();
  s.f_frsize = r.frsize();
  s.f_flags = r.flags();
  return s;
}

Result<WalkStep> Client::NewNode(pb::Request& req) {
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kNode));
  Result<WalkStep> step = ToStep(resp.node());
  if (!step.ok()) return Break();
  return step;
}

namespace {

// Create, Mkdir and Mknod ask the same of their requests.
template <typename NodeRequest>
void FillNodeRequest(NodeRequest* r, Fid dir, const std::string& name, uint32_t mode, uint32_t uid,
                     uint32_t gid) {
  r->set_dir(dir);
  r->set_name(name);
  r->set_mode(mode);
  r->set_uid(uid);
  r->set_gid(gid);
}

}  // namespace

Result<WalkStep> Client::Create(Fid dir, const std::string& name, uint32_t mode, uint32_t uid,
                                uint32_t gid) {
  if (int err = CheckName(name); err != 0) return Errno{err};
  absl::MutexLock lock(&mu_);
  pb::Request req;
  FillNodeRequest(req.mutable_create(), dir, name, mode, uid, gid);
  return NewNode(req);
}

Result<WalkStep> Client::Mkdir(Fid dir, const std::string& name, uint32_t mode, uint32_t uid,
                               uint32_t gid) {
  if (int err = CheckName(name); err != 0) return Errno{err};
  absl::MutexLock lock(&mu_);
  pb::Request req;
  FillNodeRequest(req.mutable_mkdir(), dir, name, mode, uid, gid);
  return NewNode(req);
}

Result<WalkStep> Client::Mknod(Fid dir, const std::string& name, uint32_t mode, uint32_t uid,
                               uint32_t gid) {
  if (int err = CheckName(name); err != 0) return Errno{err};
  absl::MutexLock lock(&mu_);
  pb::Request req;
  FillNodeRequest(req.mutable_mknod(), dir, name, mode, uid, gid);
  return NewNode(req);
}

Result<WalkStep> Client::Symlink(Fid dir, const std::string& name, const std::string& target,
                                 uint32_t uid, uint32_t gid) {
  if (int err = CheckName(name); err != 0) return Errno{err};
  absl::MutexLock lock(&mu_);
  pb::Request req;
  pb::SymlinkRequest* s = req.mutable_symlink();
  s->set_dir(dir);
  s->set_name(name);
  s->set_target(target);
  s->set_uid(uid);
  s->set_gid(gid);
  return NewNode(req);
}

Result<Attr> Client::Link(Fid dir, const std::string& name, Fid target) {
  if (int err = CheckName(name); err != 0) return Errno{err};
  absl::MutexLock lock(&mu_);
  pb::Request req;
  pb::LinkRequest* l = req.mutable_link();
  l->set_dir(dir);
  l->set_name(name);
  l->set_target(target);
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kAttr));
  Result<Attr> attr = ToAttr(resp.attr());
  if (!attr.ok()) return Break();
  return attr;
}

Status Client::Unlink(Fid dir, const std::string& name, bool remove_dir) {
  if (int err = CheckName(name); err != 0) return Errno{err};
  absl::MutexLock lock(&mu_);
  pb::Request req;
  pb::UnlinkRequest* u = req.mutable_unlink();
  u->set_dir(dir);
  u->set_name(name);
  u->set_remove_dir(remove_dir);
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kDone));
  return Ok();
}

Status Client::Rename(Fid old_dir, const std::string& old_name, Fid new_dir,
                      const std::string& new_name, uint32_t flags) {
  if (int err = CheckName(old_name); err != 0) return Errno{err};
  if (int err = CheckName(new_name); err != 0) return Errno{err};
  absl::MutexLock lock(&mu_);
  pb::Request req;
  pb::RenameRequest* r = req.mutable_rename();
  r->set_old_dir(old_dir);
  r->set_old_name(old_name);
  r->set_new_dir(new_dir);
  r->set_new_name(new_name);
  r->set_flags(flags);
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kDone));
  return Ok();
}

Result<Attr> Client::Setattr(Fid fid, const SetattrArgs& args) {
  absl::MutexLock lock(&mu_);
  pb::Request req;
  pb::SetattrRequest* s = req.mutable_setattr();
  s->set_fid(fid);
  if (args.mode) {
    s->set_mode(*args.mode);
  }
  if (args.uid) {
    s->set_uid(*args.uid);
  }
  if (args.gid) {
    s->set_gid(*args.gid);
  }
  if (args.size) {
    s->set_size(*args.size);
  }
  auto set_time = [](const timespec& ts, pb::Timespec* out) {
    out->set_sec(ts.tv_sec);
    out->set_nsec(static_cast<uint32_t>(ts.tv_nsec));
  };
  if (args.atime) {
    set_time(*args.atime, s->mutable_atime());
  }
  if (args.mtime) {
    set_time(*args.mtime, s->mutable_mtime());
  }
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kAttr));
  Result<Attr> attr = ToAttr(resp.attr());
  if (!attr.ok()) return Break();
  return attr;
}

Status Client::SendCloses() {
  if (pending_closes_.empty()) return Ok();
  pb::Request req;
  req.mutable_close();  // the queued fids ride in close_fids
  pb::Response resp;
  TRY(Call(req, &resp, pb::Response::kClose));
  return Ok();
}

void Client::Close(Fid fid) {
  absl::MutexLock lock(&mu_);
  if (broken_) return;
  pending_closes_.push_back(fid);
  if (pending_closes_.size() >= kCloseBatch) (void)SendCloses();
}

void Client::FlushCloses() {
  absl::MutexLock lock(&mu_);
  (void)SendCloses();
}

}  // namespace husk::gofer
