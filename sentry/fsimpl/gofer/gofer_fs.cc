#include "sentry/fsimpl/gofer/gofer_fs.h"

#include <errno.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <list>
#include <map>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/memfile/file_cache.h"

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

// The host descriptors the gofer donated for reading, a bounded number per
// mount: the least recently used is closed when a new one would pass the
// bound, and its inode asks the gofer again on its next read. A reader holds
// its own reference, so a descriptor closes only once no read uses it.
class HostFdCache {
 public:
  explicit HostFdCache(size_t capacity) : capacity_(capacity) {}

  std::shared_ptr<UniqueFd> Get(const void* owner) {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(owner);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }

  void Put(const void* owner, std::shared_ptr<UniqueFd> fd) {
    std::shared_ptr<UniqueFd> evicted;  // closed outside the lock
    absl::MutexLock lock(&mu_);
    if (auto it = index_.find(owner); it != index_.end()) {
      it->second->second = std::move(fd);
      lru_.splice(lru_.begin(), lru_, it->second);
      return;
    }
    lru_.emplace_front(owner, std::move(fd));
    index_[owner] = lru_.begin();
    if (lru_.size() > capacity_) {
      evicted = std::move(lru_.back().second);
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }

  void Drop(const void* owner) {
    std::shared_ptr<UniqueFd> dropped;
    absl::MutexLock lock(&mu_);
    auto it = index_.find(owner);
    if (it == index_.end()) return;
    dropped = std::move(it->second->second);
    lru_.erase(it->second);
    index_.erase(it);
  }

 private:
  using Entry = std::pair<const void*, std::shared_ptr<UniqueFd>>;
  const size_t capacity_;
  absl::Mutex mu_;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  std::map<const void*, std::list<Entry>::iterator> index_ ABSL_GUARDED_BY(mu_);
};

// Donated descriptors kept open per gofer mount.
constexpr size_t kHostFdsPerMount = 64;

class GoferInode : public vfs::Inode {
 public:
  GoferInode(std::shared_ptr<gofer::Client> client, std::shared_ptr<HostFdCache> fds,
             gofer::WalkStep step)
      : client_(std::move(client)), fds_(std::move(fds)), fid_(step.fid), attr_(step.attr) {}
  ~GoferInode() override {
    fds_->Drop(this);
    client_->Close(fid_);
  }

  Result<struct stat> Stat() override { return ToStat(attr_); }
  // The host filesystem's own figures (a volume's), read-only as served.
  Result<struct statfs> Statfs() override {
    ASSIGN_OR_RETURN(struct statfs s, client_->Statfs(fid_));
    s.f_flags |= 0x20 | ST_RDONLY;  // ST_VALID
    s.f_fsid = {};                  // the host's device number stays out
    return s;
  }
  mode_t Type() override { return attr_.mode & S_IFMT; }

  Result<vfs::InodeRef> Lookup(const std::string& name) override {
    if (!IsDir()) return Errno{ENOTDIR};
    auto cached = children_.find(name);
    if (cached != children_.end()) {
      if (auto strong = cached->second.lock()) return vfs::InodeRef(strong);
    }
    ASSIGN_OR_RETURN(std::vector<gofer::WalkStep> steps, client_->Walk(fid_, {name}));
    if (steps.empty()) return Errno{ENOENT};
    auto inode = std::make_shared<GoferInode>(client_, fds_, steps[0]);
    // The map only finds live inodes again (the VFS's caches own them);
    // entries of dead ones are dropped as the map grows.
    if (children_.size() >= purge_at_) {
      std::erase_if(children_, [](const auto& e) { return e.second.expired(); });
      purge_at_ = std::max<size_t>(64, children_.size() * 2);
    }
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

  // Mappings share the file's pages in the memory file (read-only tree: the
  // file does not change under them), read a chunk at a time on first use.
  bool SharesPages() override { return IsRegular(); }
  Result<uint64_t> SharedPage(uint64_t index) override {
    if (!IsRegular()) return Errno{ENODEV};
    std::shared_ptr<FileCache> cache;
    {
      absl::MutexLock l(&cache_mu_);
      if (cache_ == nullptr) cache_ = FileCache::Create(MemoryFile::Sandbox(), attr_.size);
      cache = cache_;
    }
    return cache->Page(
        index, [this](uint64_t offset, char* buf, size_t n) { return ReadAt(buf, n, offset); });
  }

  Result<size_t> ReadAt(char* buf, size_t n, uint64_t offset) override {
    if (!IsRegular()) return Errno{EINVAL};
    std::shared_ptr<UniqueFd> fd = fds_->Get(this);
    if (fd == nullptr) {
      ASSIGN_OR_RETURN(UniqueFd opened, client_->Open(fid_, O_RDONLY));
      fd = std::make_shared<UniqueFd>(std::move(opened));
      fds_->Put(this, fd);
    }
    ssize_t r;
    do {
      r = pread(fd->get(), buf, n, static_cast<off_t>(offset));
    } while (r < 0 && errno == EINTR);
    if (r < 0) return Errno{errno};
    return static_cast<size_t>(r);
  }

 private:
  std::shared_ptr<gofer::Client> client_;
  std::shared_ptr<HostFdCache> fds_;
  gofer::Fid fid_;
  gofer::Attr attr_;
  std::map<std::string, std::weak_ptr<GoferInode>> children_;
  size_t purge_at_ = 64;
  std::string link_;
  bool link_cached_ = false;
  absl::Mutex cache_mu_;
  std::shared_ptr<FileCache> cache_ ABSL_GUARDED_BY(cache_mu_);  // made on the first mapping
};

}  // namespace

Result<vfs::InodeRef> NewGoferRoot(std::shared_ptr<gofer::Client> client) {
  ASSIGN_OR_RETURN(gofer::WalkStep root, client->Attach());
  if ((root.attr.mode & S_IFMT) != S_IFDIR) return Errno{ENOTDIR};
  return vfs::InodeRef(std::make_shared<GoferInode>(
      std::move(client), std::make_shared<HostFdCache>(kHostFdsPerMount), root));
}

}  // namespace husk::goferfs
