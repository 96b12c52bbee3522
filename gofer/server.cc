#include "gofer/server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/result.h"
#include "gofer/connection.h"
#include "gofer/names.h"
#include "gofer/wire.h"
#include "proto/gofer.pb.h"

namespace husk::gofer {
namespace {

// Getdents batches: name bytes plus this much per entry (the proto encoding
// of an entry's other fields and framing is under 20 bytes) stay under
// kDirentBudget, so a batch always fits in one frame.
constexpr size_t kDirentOverhead = 32;
constexpr size_t kDirentBudget = size_t{48} * 1024;

// open(2) flags a client may ask for on a regular file. O_CLOEXEC is
// accepted and ignored: the gofer sets it on every fd it holds, and the flag
// does not travel with a donated descriptor anyway.
constexpr int kOpenFlagsAllowed = O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_DSYNC | O_SYNC |
                                  O_DIRECT | O_NOATIME | O_LARGEFILE | O_CLOEXEC;

}  // namespace

namespace internal {

int Openat2(int dirfd, const char* name, uint64_t flags, uint64_t resolve) {
  open_how how{};
  how.flags = flags;
  how.resolve = resolve;
  for (int attempt = 0;; ++attempt) {
    long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
    // EAGAIN: a concurrent rename or mount raced the lookup; retry a little.
    if (fd < 0 && (errno == EINTR || (errno == EAGAIN && attempt < 8))) continue;
    return static_cast<int>(fd);
  }
}

// The filesystems the gofer serves: ones that hold ordinary files. Anything
// else below the root (the host's /proc, /sys, /dev, devpts, mqueue, cgroup,
// debugfs, bpf, ... and any type not listed here) describes the host rather
// than holds the container's files, so a walk that crosses into it is
// EACCES. An allowlist, so that a host filesystem type nobody thought of is
// refused rather than served.
std::vector<dev_t>& RefusedDevices() {
  static auto* devs = new std::vector<dev_t>();
  return *devs;
}

bool IsServedFs(int fd, dev_t dev) {
  for (dev_t refused : RefusedDevices()) {
    if (refused == dev) return false;
  }
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return false;  // unknown: refuse
  switch (static_cast<unsigned long>(fs.f_type)) {
    case EXT4_SUPER_MAGIC:  // ext2, ext3 and ext4 share it
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case 0xf2f52010:  // f2fs
    case 0x2fc12fc1:  // zfs
    case TMPFS_MAGIC:
    case RAMFS_MAGIC:
    case OVERLAYFS_SUPER_MAGIC:
    case SQUASHFS_MAGIC:
    case 0xe0f5e1e2:  // erofs
    case ISOFS_SUPER_MAGIC:
    case 0x15013346:         // udf
    case MSDOS_SUPER_MAGIC:  // vfat and msdos
    case 0x2011bab0:         // exfat
    case 0x7366746e:         // ntfs3
    case NFS_SUPER_MAGIC:
    case 0xff534d42:  // cifs
    case 0xfe534d42:  // smb2
    case V9FS_MAGIC:
    case 0x00c36400:        // ceph
    case FUSE_SUPER_MAGIC:  // virtiofs, fuse-overlayfs, sshfs: user-space file stores
      return true;
    default:
      return false;
  }
}

}  // namespace internal

void RefuseDevices(const std::vector<dev_t>& devs) {
  internal::RefusedDevices().insert(internal::RefusedDevices().end(), devs.begin(), devs.end());
}

namespace internal {
namespace {

void FillTimespec(const struct timespec& ts, pb::Timespec* out) {
  out->set_sec(ts.tv_sec);
  out->set_nsec(static_cast<uint32_t>(ts.tv_nsec));
}

}  // namespace

void FillAttr(const struct stat& st, pb::Attr* out) {
  out->set_ino(st.st_ino);
  out->set_dev(st.st_dev);
  out->set_mode(st.st_mode);
  out->set_nlink(st.st_nlink);
  out->set_uid(st.st_uid);
  out->set_gid(st.st_gid);
  out->set_rdev(st.st_rdev);
  out->set_size(st.st_size);
  out->set_blksize(st.st_blksize);
  out->set_blocks(st.st_blocks);
  FillTimespec(st.st_atim, out->mutable_atime());
  FillTimespec(st.st_mtim, out->mutable_mtime());
  FillTimespec(st.st_ctim, out->mutable_ctime());
}

Result<struct stat> StatFd(int fd) {
  struct stat st;
  if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return Errno{errno};
  return st;
}

Result<uint64_t> Connection::AddFid(std::shared_ptr<Node> node) {
  if (fids_.size() >= kMaxFids) return Errno{ENFILE};
  uint64_t fid = next_fid_++;
  fids_.emplace(fid, FidState{std::move(node), UniqueFd()});
  return fid;
}

Result<FidState*> Connection::Lookup(uint64_t fid) {
  auto it = fids_.find(fid);
  if (it == fids_.end()) return Errno{EBADF};
  return &it->second;
}

void Connection::Close(const google::protobuf::RepeatedField<uint64_t>& fids) {
  for (uint64_t fid : fids) fids_.erase(fid);  // unknown fids: nothing to do
}

Status Connection::Attach(pb::AttachResponse* out) {
  ASSIGN_OR_RETURN(struct stat st, StatFd(root_->fd.get()));
  // The root itself is held to the same rule as every mount crossed below
  // it: a volume of the host's /proc or /sys is not served.
  if (!IsServedFs(root_->fd.get(), st.st_dev)) return Errno{EACCES};
  ASSIGN_OR_RETURN(uint64_t fid, AddFid(root_));
  out->mutable_root()->set_fid(fid);
  FillAttr(st, out->mutable_root()->mutable_attr());
  return Ok();
}

Status Connection::Walk(const pb::WalkRequest& req, pb::WalkResponse* out) {
  ASSIGN_OR_RETURN(FidState * start, Lookup(req.dir()));
  if (req.names_size() == 0 || static_cast<size_t>(req.names_size()) > kMaxWalkNames) {
    return Errno{EINVAL};
  }
  for (const std::string& name : req.names()) {
    if (int err = CheckName(name); err != 0) return Errno{err};
  }
  std::shared_ptr<Node> cur = start->node;
  int stop_err = 0;
  for (const std::string& name : req.names()) {
    if (!S_ISDIR(cur->type)) {
      stop_err = ENOTDIR;
      break;
    }
    if (fids_.size() >= kMaxFids) {
      stop_err = ENFILE;
      break;
    }
    UniqueFd fd(Openat2(cur->fd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC, kResolve));
    if (!fd.valid()) {
      stop_err = errno;
      break;
    }
    Result<struct stat> st = StatFd(fd.get());
    if (!st.ok()) {
      stop_err = st.error();
      break;
    }
    if (st->st_dev != cur->dev && !IsServedFs(fd.get(), st->st_dev)) {
      stop_err = EACCES;
      break;
    }
    auto node = std::make_shared<Node>();
    node->fd = std::move(fd);
    node->parent = cur;
    node->name = name;
    node->type = st->st_mode & S_IFMT;
    node->dev = st->st_dev;
    node->ino = st->st_ino;
    ASSIGN_OR_RETURN(uint64_t fid, AddFid(node));  // cannot fail: checked above
    pb::FidAttr* step = out->add_steps();
    step->set_fid(fid);
    FillAttr(*st, step->mutable_attr());
    cur = std::move(node);
    if (S_ISLNK(cur->type)) break;  // the sentry resolves it, inside the sandbox
  }
  if (out->steps_size() == 0) return Errno{stop_err != 0 ? stop_err : ENOENT};
  if (out->steps_size() < req.names_size() && !S_ISLNK(cur->type)) out->set_stop_err(stop_err);
  return Ok();
}

Status Connection::Stat(const pb::StatRequest& req, pb::StatResponse* out) {
  ASSIGN_OR_RETURN(FidState * fs, Lookup(req.fid()));
  ASSIGN_OR_RETURN(struct stat st, StatFd(fs->node->fd.get()));
  FillAttr(st, out->mutable_attr());
  return Ok();
}

Result<UniqueFd> Connection::Reopen(const Node& node, int flags) {
  if (S_ISDIR(node.type)) {
    // "." of the O_PATH fd: the directory itself, whatever its name is now.
    UniqueFd fd(Openat2(node.fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, kResolve));
    if (!fd.valid()) return Errno{errno};
    return fd;
  }
  if (node.parent == nullptr) return Errno{ENXIO};
  // By (parent, name). O_NONBLOCK keeps a FIFO (asked for, or swapped in
  // under the name) from blocking the gofer; the identity check below
  // rejects a file that is not the one the fid names.
  UniqueFd fd(Openat2(node.parent->fd.get(), node.name.c_str(),
                      flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, kResolve));
  if (!fd.valid()) return Errno{errno == ELOOP ? ESTALE : errno};
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Errno{errno};
  // The name now holds another file: the fid is stale (as NFS says).
  if ((st.st_mode & S_IFMT) != node.type || st.st_dev != node.dev || st.st_ino != node.ino) {
    return Errno{ESTALE};
  }
  return fd;
}

Result<UniqueFd> Connection::Open(const pb::OpenRequest& req) {
  ASSIGN_OR_RETURN(FidState * fs, Lookup(req.fid()));
  const int flags = req.flags();
  const int access = flags & O_ACCMODE;
  if (access == O_ACCMODE) return Errno{EINVAL};
  if (read_only_ && (access != O_RDONLY || (flags & (O_TRUNC | O_CREAT)) != 0)) {
    return Errno{EROFS};
  }
  // O_CREAT, O_EXCL, O_TMPFILE, O_PATH, O_DIRECTORY, ...: creation has its
  // own op, and the rest have no meaning for a donated regular file.
  if ((flags & ~kOpenFlagsAllowed) != 0) return Errno{EINVAL};
  const Node& node = *fs->node;
  if (S_ISDIR(node.type)) return Errno{EISDIR};
  if (S_ISLNK(node.type)) return Errno{ELOOP};  // as open(O_NOFOLLOW) of a symlink
  if (!S_ISREG(node.type) || node.parent == nullptr) return Errno{ENXIO};

  // O_TRUNC waits until we know the file is the one the fid names.
  const bool truncate = (flags & O_TRUNC) != 0 && access != O_RDONLY;
  ASSIGN_OR_RETURN(UniqueFd fd, Reopen(node, flags & ~(O_CLOEXEC | O_TRUNC)));
  if (truncate && ftruncate(fd.get(), 0) != 0) return Errno{errno};
  if ((flags & O_NONBLOCK) == 0) {
    int fl = fcntl(fd.get(), F_GETFL);
    if (fl < 0 || fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) return Errno{errno};
  }
  return fd;
}

Status Connection::Readlink(const pb::ReadlinkRequest& req, pb::ReadlinkResponse* out) {
  ASSIGN_OR_RETURN(FidState * fs, Lookup(req.fid()));
  if (!S_ISLNK(fs->node->type)) return Errno{EINVAL};  // as readlink(2)
  char buf[kMaxPathLength];
  ssize_t n = readlinkat(fs->node->fd.get(), "", buf, sizeof(buf));
  if (n < 0) return Errno{errno};
  if (static_cast<size_t>(n) >= sizeof(buf)) return Errno{ENAMETOOLONG};
  out->set_target(buf, static_cast<size_t>(n));
  return Ok();
}

Status Connection::Getdents(const pb::GetdentsRequest& req, pb::GetdentsResponse* out) {
  ASSIGN_OR_RETURN(FidState * fs, Lookup(req.dir()));
  if (!S_ISDIR(fs->node->type)) return Errno{ENOTDIR};
  if (!fs->dir.valid()) {
    ASSIGN_OR_RETURN(fs->dir, Reopen(*fs->node, O_RDONLY));
  }
  // The cookie is the d_off of the last entry returned: where to resume.
  uint64_t cookie = req.cookie();
  if (lseek(fs->dir.get(), static_cast<off_t>(cookie), SEEK_SET) < 0) return Errno{errno};

  alignas(8) char buf[16 * 1024];
  size_t used = 0;
  bool full = false;
  bool eof = false;
  while (!full) {
    long n = syscall(SYS_getdents64, fs->dir.get(), buf, sizeof(buf));
    if (n < 0) return Errno{errno};
    if (n == 0) {
      eof = true;
      break;
    }
    for (long off = 0; off < n;) {
      struct dirent64 d;
      size_t fixed = offsetof(struct dirent64, d_name);
      if (static_cast<size_t>(n - off) < fixed) break;
      memcpy(&d, buf + off, fixed);
      if (d.d_reclen < fixed || d.d_reclen > n - off) break;  // cannot happen; be safe
      const char* name_ptr = buf + off + fixed;
      std::string_view name(name_ptr, strnlen(name_ptr, d.d_reclen - fixed));
      off += d.d_reclen;
      if (name == "." || name == "..") {
        cookie = static_cast<uint64_t>(d.d_off);
        continue;
      }
      if (CheckName(name) != 0) {  // the kernel never lists such names; skip
        cookie = static_cast<uint64_t>(d.d_off);
        continue;
      }
      if (used + name.size() + kDirentOverhead > kDirentBudget) {
        full = true;
        break;
      }
      used += name.size() + kDirentOverhead;
      pb::Dirent* e = out->add_entries();
      e->set_name(name.data(), name.size());
      e->set_ino(d.d_ino);
      e->set_type(d.d_type);
      cookie = static_cast<uint64_t>(d.d_off);
    }
  }
  out->set_next_cookie(cookie);
  out->set_eof(eof);
  if (eof) fs->dir.Reset();  // the listing is done: give the fd back
  return Ok();
}

Status Connection::Statfs(const pb::StatfsRequest& req, pb::StatfsResponse* out) {
  ASSIGN_OR_RETURN(FidState * fs, Lookup(req.fid()));
  struct statfs s;
  if (fstatfs(fs->node->fd.get(), &s) != 0) return Errno{errno};
  out->set_type(s.f_type);
  out->set_bsize(s.f_bsize);
  out->set_blocks(s.f_blocks);
  out->set_bfree(s.f_bfree);
  out->set_bavail(s.f_bavail);
  out->set_files(s.f_files);
  out->set_ffree(s.f_ffree);
  int fsid[2];
  static_assert(sizeof(fsid) == sizeof(s.f_fsid));
  memcpy(fsid, &s.f_fsid, sizeof(fsid));
  out->set_fsid0(fsid[0]);
  out->set_fsid1(fsid[1]);
  out->set_namelen(s.f_namelen);
  out->set_frsize(s.f_frsize);
  out->set_flags(s.f_flags);
  return Ok();
}

void Connection::Handle(const pb::Request& req, pb::Response* resp, UniqueFd* donated) {
  Close(req.close_fids());
  Status st = Ok();
  switch (req.op_case()) {
    case pb::Request::kAttach:
      st = Attach(resp->mutable_attach());
      break;
    case pb::Request::kWalk:
      st = Walk(req.walk(), resp->mutable_walk());
      break;
    case pb::Request::kStat:
      st = Stat(req.stat(), resp->mutable_stat());
      break;
    case pb::Request::kOpen: {
      Result<UniqueFd> fd = Open(req.open());
      if (fd.ok()) {
        *donated = std::move(fd).value();
        resp->mutable_open();
      } else {
        st = Errno{fd.error()};
      }
      break;
    }
    case pb::Request::kReadlink:
      st = Readlink(req.readlink(), resp->mutable_readlink());
      break;
    case pb::Request::kGetdents:
      st = Getdents(req.getdents(), resp->mutable_getdents());
      break;
    case pb::Request::kStatfs:
      st = Statfs(req.statfs(), resp->mutable_statfs());
      break;
    case pb::Request::kWatchInit: {
      Result<UniqueFd> fd = WatchInit();
      if (fd.ok()) {
        *donated = std::move(fd).value();
        resp->mutable_watch_init();
      } else {
        st = Errno{fd.error()};
      }
      break;
    }
    case pb::Request::kBind: {
      Result<UniqueFd> fd = Bind(req.bind(), resp->mutable_node());
      if (fd.ok()) {
        *donated = std::move(fd).value();
      } else {
        st = Errno{fd.error()};
      }
      break;
    }
    case pb::Request::kConnect: {
      Result<UniqueFd> fd = Connect(req.connect());
      if (fd.ok()) {
        *donated = std::move(fd).value();
        resp->mutable_done();
      } else {
        st = Errno{fd.error()};
      }
      break;
    }
    case pb::Request::kClose:
      Close(req.close().fids());
      resp->mutable_close();
      break;
    case pb::Request::OP_NOT_SET:  // empty, or an op this gofer does not know
      st = Errno{EINVAL};
      break;
    default:
      if (!HandleWrite(req, resp, &st)) st = Errno{EINVAL};
      break;
  }
  if (!st.ok()) {
    resp->Clear();
    resp->set_err(st.error());
  }
}

}  // namespace internal

absl::Status Serve(UniqueFd sock, UniqueFd root_dir, bool read_only) {
  struct stat st;
  if (fstat(root_dir.get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError("gofer: the root to serve is not a directory fd");
  }
  auto root = std::make_shared<internal::Node>();
  root->fd = std::move(root_dir);
  root->type = S_IFDIR;
  root->dev = st.st_dev;
  root->ino = st.st_ino;
  internal::Connection conn(std::move(root), read_only);

  std::string out;
  for (;;) {
    absl::StatusOr<std::optional<wire::Frame>> frame = wire::Recv(sock.get(), wire::Kind::kRequest);
    if (!frame.ok()) return frame.status();
    if (!frame->has_value()) return absl::OkStatus();  // the sentry hung up

    internal::pb::Request req;
    internal::pb::Response resp;
    UniqueFd donated;
    // Requests never carry descriptors (the one that came is closed here).
    if ((*frame)->fd.valid() || !req.ParseFromString((*frame)->payload)) {
      resp.set_err(EINVAL);
    } else {
      try {
        conn.Handle(req, &resp, &donated);
      } catch (const UncheckedResult& e) {
        // A bug of ours (a failed result used unchecked): this request
        // fails with that result's errno; the connection goes on.
        fprintf(stderr, "husk gofer: bug: a failed result used unchecked (errno %d)\n", e.err);
        resp.Clear();
        resp.set_err(e.err);
        donated.Reset();
      }
    }
    if (resp.ByteSizeLong() > wire::kMaxPayload) {  // the batch limits make this impossible
      resp.Clear();
      resp.set_err(EOVERFLOW);
      donated.Reset();
    }
    out.clear();
    resp.SerializeToString(&out);
    if (absl::Status s = wire::Send(sock.get(), wire::Kind::kResponse, out, donated.get());
        !s.ok()) {
      return s;
    }
  }
}

}  // namespace husk::gofer
