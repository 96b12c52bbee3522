#include "sentry/fsimpl/gofer/gofer_fs.h"

#include <errno.h>
#include <unistd.h>

#include <map>

namespace husk::goferfs {
namespace {

struct stat ToStat(const gofer::Attr& a) {
  struct stat st{};
  st.st_ino = a.ino;
  st.st_dev = a.dev;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_rdev = a.rdev;
  st.st_size = a.size;
  st.st_blksize = a.blksize;
  st.st_blocks = a.blocks;
  st.st_atim = a.atime;
  st.st_mtim = a.mtime;
  st.st_ctim = a.ctime;
  return st;
}

class GoferInode : public vfs::Inode {
 public:
  GoferInode(std::shared_ptr<gofer::Client> client, gofer::WalkStep step)
      : client_(std::move(client)), fid_(step.fid), attr_(step.attr) {}
  ~GoferInode() override { client_->Close(fid_); }

  Result<struct stat> Stat() override { return ToStat(attr_); }
  mode_t Type() override { return attr_.mode & S_IFMT; }

  Result<vfs::InodeRef> Lookup(const std::string& name) override {
    if (!IsDir()) return Errno{ENOTDIR};
    auto cached = children_.find(name);
    if (cached != children_.end()) {
      if (auto strong = cached->second.lock()) return vfs::InodeRef(strong);
    }
    ASSIGN_OR_RETURN(std::vector<gofer::WalkStep> steps, client_->Walk(fid_, {name}));
    if (steps.empty()) return Errno{ENOENT};
    auto inode = std::make_shared<GoferInode>(client_, steps[0]);
    children_[name] = inode;
    return vfs::InodeRef(inode);
  }

  Result<std::vector<vfs::Dirent>> ReadDir() override {
    if (!IsDir()) return Errno{ENOTDIR};
    ASSIGN_OR_RETURN(std::vector<gofer::DirEntry> entries, client_->ReadDir(fid_));
    std::vector<vfs::Dirent> out;
    out.reserve(entries.size());
    for (auto& e : entries) out.push_back(vfs::Dirent{std::move(e.name), e.ino, e.type});
    return out;
  }

  Result<std::string> Readlink() override {
    if (!IsSymlink()) return Errno{EINVAL};
    if (!link_cached_) {
      ASSIGN_OR_RETURN(link_, client_->Readlink(fid_));
      link_cached_ = true;
    }
    return link_;
  }

  Result<vfs::FileRef> Open(int flags) override {
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return Errno{EROFS};
    if (!IsRegular() && !IsDir() && !(flags & O_PATH)) {
      // Host devices, sockets and fifos are never opened through the gofer.
      return Errno{EACCES};
    }
    return Inode::Open(flags);
  }

  // The served tree is read-only: chmod(2), chown(2), truncate(2) and
  // utimensat(2) give EROFS there, not the EPERM of the VFS default.
  Status SetAttributes(const vfs::SetAttr& attr) override { return Errno{EROFS}; }

  Result<size_t> ReadAt(char* buf, size_t n, uint64_t offset) override {
    if (!IsRegular()) return Errno{EINVAL};
    if (!host_fd_) {
      ASSIGN_OR_RETURN(host_fd_, client_->Open(fid_, O_RDONLY));
    }
    ssize_t r;
    do {
      r = pread(host_fd_.get(), buf, n, static_cast<off_t>(offset));
    } while (r < 0 && errno == EINTR);
    if (r < 0) return Errno{errno};
    return static_cast<size_t>(r);
  }

 private:
  std::shared_ptr<gofer::Client> client_;
  gofer::Fid fid_;
  gofer::Attr attr_;
  std::map<std::string, std::weak_ptr<GoferInode>> children_;
  std::string link_;
  bool link_cached_ = false;
  UniqueFd host_fd_;  // donated by the gofer, read-only
};

}  // namespace

Result<vfs::InodeRef> NewGoferRoot(std::shared_ptr<gofer::Client> client) {
  ASSIGN_OR_RETURN(gofer::WalkStep root, client->Attach());
  if ((root.attr.mode & S_IFMT) != S_IFDIR) return Errno{ENOTDIR};
  return vfs::InodeRef(std::make_shared<GoferInode>(std::move(client), root));
}

}  // namespace husk::goferfs
