#include "sentry/fsimpl/gofer/gofer_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/fsimpl/gofer/host_watch.h"
#include "sentry/memfile/file_cache.h"

namespace husk::goferfs {
namespace {

// The unix socket types a read-write volume shares with host processes
// (the gofer binds and connects these).
bool HostSocketType(int type) {
  return type == SOCK_STREAM || type == SOCK_SEQPACKET || type == SOCK_DGRAM;
}

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

// What every inode of one gofer mount shares.
struct Mount {
  Mount(std::shared_ptr<gofer::Client> c, bool w)
      : client(std::move(c)), fds(kHostFdsPerMount), writable(w) {}
  std::shared_ptr<gofer::Client> client;
  HostFdCache fds;
  const bool writable;

  // The host change watcher, once the sandbox watches something here.
  std::shared_ptr<HostWatcher> watcher() {
    absl::MutexLock l(&watcher_mu_);
    return watcher_;
  }
  Result<std::shared_ptr<HostWatcher>> StartWatcher() {
    absl::MutexLock l(&watcher_mu_);
    if (watcher_ == nullptr) {
      ASSIGN_OR_RETURN(watcher_, HostWatcher::Start(client));
    }
    return watcher_;
  }

 private:
  absl::Mutex watcher_mu_;
  std::shared_ptr<HostWatcher> watcher_ ABSL_GUARDED_BY(watcher_mu_);
};

// A change the sentry makes to a watched tree (see host_watch.h): what the
// host reports of it is the sandbox's own, already told.
class OwnChange {
 public:
  explicit OwnChange(Mount& m) : w_(m.writable ? m.watcher() : nullptr) {
    if (w_ != nullptr) w_->BeginOwn();
  }
  ~OwnChange() {
    if (w_ != nullptr) w_->EndOwn();
  }
  OwnChange(const OwnChange&) = delete;
  OwnChange& operator=(const OwnChange&) = delete;

 private:
  const std::shared_ptr<HostWatcher> w_;
};

// Where a writable file's cache writes its dirty pages back: a descriptor
// of its own (the inode's may be evicted from the mount's cache at any
// time), opened on first use. The inode marks it dead when it goes, after a
// last write-back; a reclaim of the cache after that writes nothing.
class Backing {
 public:
  Backing(std::shared_ptr<Mount> mount, gofer::Fid fid) : mount_(std::move(mount)), fid_(fid) {}

  Status Write(uint64_t offset, const char* buf, size_t n) {
    OwnChange own(*mount_);
    absl::MutexLock l(&mu_);
    if (dead_) return Errno{EIO};
    if (!fd_.valid()) {
      ASSIGN_OR_RETURN(fd_, mount_->client->Open(fid_, O_RDWR));
    }
    return PWriteAll(fd_.get(), buf, n, offset);
  }
  void Kill() {
    OwnChange own(*mount_);  // the close of a written file is heard as IN_CLOSE_WRITE
    absl::MutexLock l(&mu_);
    dead_ = true;
    fd_.Reset();
  }

  static Status PWriteAll(int fd, const char* buf, size_t n, uint64_t offset) {
    size_t done = 0;
    while (done < n) {
      ssize_t w = pwrite(fd, buf + done, n - done, static_cast<off_t>(offset + done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Errno{errno};
      if (w == 0) return Errno{EIO};
      done += static_cast<size_t>(w);
    }
    return Ok();
  }

 private:
  const std::shared_ptr<Mount> mount_;
  const gofer::Fid fid_;
  absl::Mutex mu_;
  UniqueFd fd_ ABSL_GUARDED_BY(mu_);
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
};

timespec Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

class GoferInode : public vfs::Inode, public HostChangeListener {
 public:
  GoferInode(std::shared_ptr<Mount> mount, gofer::WalkStep step)
      : mount_(std::move(mount)),
        fid_(step.fid),
        type_(step.attr.mode & S_IFMT),
        attr_(step.attr) {}
  ~GoferInode() override {
    std::shared_ptr<FileCache> cache;
    std::shared_ptr<Backing> backing;
    {
      absl::MutexLock l(&mu_);
      cache = std::move(cache_);
      backing = std::move(backing_);
    }
    // What mappings wrote reaches the host file before the fid goes.
    if (cache != nullptr) (void)cache->WriteBack(0, UINT64_MAX);
    if (backing != nullptr) backing->Kill();
    {
      OwnChange own(*mount_);
      mount_->fds.Drop(this);
    }
    mount_->client->Close(fid_);
  }

  // inotify watches this inode: on a writable tree, the host's changes to
  // it are heard too (host_watch.h). Without them (no thread, a gofer that
  // refuses) the sandbox still hears its own.
  void StartWatching() override {
    if (!mount_->writable) return;
    Result<std::shared_ptr<HostWatcher>> w = mount_->StartWatcher();
    if (!w.ok()) return;
    gofer::Attr a;
    {
      absl::MutexLock l(&mu_);
      a = attr_;
    }
    (void)(*w)->Watch(fid_, a.dev, a.ino, std::static_pointer_cast<GoferInode>(shared_from_this()));
  }

  // The host changed this node, or the entry `name` of this directory.
  bool HostChanged(uint32_t mask, const std::string& name) override {
    Touched();
    if (!name.empty()) {
      auto it = children_.find(name);
      std::shared_ptr<GoferInode> child = it == children_.end() ? nullptr : it->second.lock();
      if (mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)) {
        // The name holds another file now, or none: the next lookup asks.
        if (child != nullptr) child->host_gone_ = true;
        if (it != children_.end()) children_.erase(it);
        prefetched_.erase(name);
      } else if (child != nullptr) {
        child->Touched();
      }
      return false;
    }
    if ((mask & IN_ATTRIB) && !IsDir()) {
      // Its link count may have dropped to 0: then it is gone for the
      // sandbox too, though the gofer still holds it.
      Result<gofer::Attr> a = mount_->client->Stat(fid_);
      if (a.ok()) {
        SetAttr(*a);
        if (a->nlink == 0) {
          host_gone_ = true;
          return true;
        }
      }
    }
    return false;
  }
  // A dentry of a name the host removed or replaced is looked up again.
  bool Revalidate() override { return !host_gone_; }

  Result<struct stat> Stat() override {
    bool stale;
    {
      absl::MutexLock l(&mu_);
      stale = stale_;
      stale_ = false;
    }
    if (stale) {
      if (auto a = mount_->client->Stat(fid_); a.ok()) SetAttr(*a);
    }
    if (mount_->writable && type_ == S_IFREG) {
      // A descriptor in use tells the host's current size and times.
      if (std::shared_ptr<UniqueFd> fd = mount_->fds.Get(this); fd != nullptr) {
        struct stat st;
        if (fstat(fd->get(), &st) == 0) {
          absl::MutexLock l(&mu_);
          attr_.size = st.st_size;
          attr_.blocks = st.st_blocks;
          attr_.nlink = static_cast<uint32_t>(st.st_nlink);
          attr_.mode = st.st_mode;
          // Not the owner: the sentry's user namespace maps host ids
          // otherwise than the gofer's, which reported them.
          attr_.atime = st.st_atim;
          attr_.mtime = st.st_mtim;
          attr_.ctime = st.st_ctim;
        }
      }
    }
    absl::MutexLock l(&mu_);
    return ToStat(attr_);
  }
  // The host filesystem's own figures (a volume's).
  Result<struct statfs> Statfs() override {
    ASSIGN_OR_RETURN(struct statfs s, mount_->client->Statfs(fid_));
    s.f_flags |= 0x20;  // ST_VALID
    if (!mount_->writable) s.f_flags |= ST_RDONLY;
    s.f_fsid = {};  // the host's device number stays out
    return s;
  }
  mode_t Type() override { return type_; }

  Result<vfs::InodeRef> Lookup(const std::string& name) override {
    if (!IsDir()) return Errno{ENOTDIR};
    // What a Prefetch just resolved: consumed once.
    if (auto it = prefetched_.find(name); it != prefetched_.end()) {
      Result<vfs::InodeRef> r = it->second.ok() ? Result<vfs::InodeRef>(vfs::InodeRef(*it->second))
                                                : Result<vfs::InodeRef>(Errno{it->second.error()});
      prefetched_.erase(it);
      return r;
    }
    auto cached = children_.find(name);
    if (cached != children_.end()) {
      if (auto strong = cached->second.lock(); strong != nullptr && !strong->host_gone_) {
        return vfs::InodeRef(strong);
      }
    }
    ASSIGN_OR_RETURN(std::vector<gofer::WalkStep> steps, mount_->client->Walk(fid_, {name}));
    if (steps.empty()) return Errno{ENOENT};
    return Remember(name, steps[0]);
  }

  // One Walk for the whole chain of names; each inode along it keeps the
  // next one (or why it is missing) for the Lookup that follows. Read-only
  // trees only: an answer kept a while stays true there.
  void Prefetch(const std::vector<std::string>& names) override {
    if (mount_->writable || !IsDir() || names.size() < 2) return;
    if (auto it = children_.find(names[0]); it != children_.end() && !it->second.expired()) return;
    Result<gofer::WalkResult> r = mount_->client->WalkFull(fid_, names);
    if (!r.ok()) return;  // the Lookup asks again and gets the error itself
    GoferInode* dir = this;
    for (size_t i = 0; i < r->steps.size(); i++) {
      auto inode = std::make_shared<GoferInode>(mount_, r->steps[i]);
      dir->children_[names[i]] = inode;
      dir->prefetched_.clear();  // at most one pending answer per directory
      dir->prefetched_.emplace(names[i], Result<std::shared_ptr<GoferInode>>(inode));
      dir = inode.get();
    }
    if (r->stop_errno != 0 && r->steps.size() < names.size() && dir->IsDir()) {
      dir->prefetched_.clear();
      dir->prefetched_.emplace(names[r->steps.size()],
                               Result<std::shared_ptr<GoferInode>>(Errno{r->stop_errno}));
    }
  }

  Result<std::vector<vfs::Dirent>> ReadDir() override {
    if (!IsDir()) return Errno{ENOTDIR};
    // A read-only tree's directory never changes: its listing is kept for
    // as long as the inode lives (the dentry cache bounds how many do).
    if (!mount_->writable) {
      absl::MutexLock l(&mu_);
      if (listing_ != nullptr) return *listing_;
    }
    ASSIGN_OR_RETURN(std::vector<gofer::DirEntry> entries, mount_->client->ReadDir(fid_));
    std::vector<vfs::Dirent> out;
    out.reserve(entries.size());
    for (auto& e : entries) out.push_back(vfs::Dirent{std::move(e.name), e.ino, e.type});
    if (!mount_->writable) {
      absl::MutexLock l(&mu_);
      listing_ = std::make_shared<const std::vector<vfs::Dirent>>(out);
    }
    return out;
  }

  // The mutating ops, on a writable tree. New nodes are made owned by 0:0
  // with the mode given; the syscall layer then gives them the caller's
  // owner (InitOwner), as for every filesystem.
  Result<vfs::InodeRef> Create(const std::string& name, mode_t mode) override {
    TRY(CheckWritableDir());
    OwnChange own(*mount_);
    ASSIGN_OR_RETURN(gofer::WalkStep step, mount_->client->Create(fid_, name, mode & 07777, 0, 0));
    Touched();
    return Remember(name, step);
  }
  Result<vfs::InodeRef> Mkdir(const std::string& name, mode_t mode) override {
    TRY(CheckWritableDir());
    OwnChange own(*mount_);
    ASSIGN_OR_RETURN(gofer::WalkStep step, mount_->client->Mkdir(fid_, name, mode & 07777, 0, 0));
    Touched();
    return Remember(name, step);
  }
  Result<vfs::InodeRef> Symlink(const std::string& name, const std::string& target) override {
    TRY(CheckWritableDir());
    OwnChange own(*mount_);
    ASSIGN_OR_RETURN(gofer::WalkStep step, mount_->client->Symlink(fid_, name, target, 0, 0));
    Touched();
    return Remember(name, step);
  }
  Result<vfs::InodeRef> Mknod(const std::string& name, mode_t mode) override {
    TRY(CheckWritableDir());
    // FIFOs and sockets only: a whiteout has no place on a host tree.
    if (!S_ISFIFO(mode) && !S_ISSOCK(mode)) return Errno{EPERM};
    OwnChange own(*mount_);
    ASSIGN_OR_RETURN(gofer::WalkStep step, mount_->client->Mknod(fid_, name, mode, 0, 0));
    Touched();
    return Remember(name, step);
  }
  // Unix sockets of a read-write volume are the host's too: a name bound
  // in the sandbox is a socket host processes connect (or send) to, and a
  // host process's socket can be connected (or sent) to.
  Result<std::pair<vfs::InodeRef, UniqueFd>> BindHostSocket(const std::string& name, mode_t mode,
                                                            int type) override {
    TRY(CheckWritableDir());
    if (!HostSocketType(type)) return Errno{EOPNOTSUPP};
    OwnChange own(*mount_);
    ASSIGN_OR_RETURN(auto bound, mount_->client->BindSocket(fid_, name, type, mode & 07777, 0, 0));
    Touched();
    return std::make_pair(Remember(name, bound.first), std::move(bound.second));
  }
  Result<UniqueFd> ConnectHostSocket(int type) override {
    if (!mount_->writable || !HostSocketType(type)) return Errno{EOPNOTSUPP};
    if (type_ != S_IFSOCK) return Errno{ECONNREFUSED};
    return mount_->client->ConnectSocket(fid_, type);
  }
  Status Unlink(const std::string& name) override {
    TRY(CheckWritableDir());
    OwnChange own(*mount_);
    TRY(mount_->client->Unlink(fid_, name, false));
    Forget(name);
    return Ok();
  }
  Status Rmdir(const std::string& name) override {
    TRY(CheckWritableDir());
    OwnChange own(*mount_);
    TRY(mount_->client->Unlink(fid_, name, true));
    Forget(name);
    Touched();
    return Ok();
  }
  // NOLINTNEXTLINE(performance-unnecessary-value-param): the base's signature.
  Status Link(const std::string& name, vfs::InodeRef target) override {
    TRY(CheckWritableDir());
    auto* t = dynamic_cast<GoferInode*>(target.get());
    if (t == nullptr || t->mount_ != mount_) return Errno{EXDEV};
    OwnChange own(*mount_);
    ASSIGN_OR_RETURN(gofer::Attr a, mount_->client->Link(fid_, name, t->fid_));
    t->SetAttr(a);
    children_[name] = std::static_pointer_cast<GoferInode>(target);
    Touched();
    return Ok();
  }
  Status Rename(const std::string& name, vfs::Inode& new_dir,
                const std::string& new_name) override {
    TRY(CheckWritableDir());
    auto* to = dynamic_cast<GoferInode*>(&new_dir);
    if (to == nullptr || to->mount_ != mount_) return Errno{EXDEV};
    OwnChange own(*mount_);
    TRY(mount_->client->Rename(fid_, name, to->fid_, new_name, 0));
    std::weak_ptr<GoferInode> moved;
    if (auto it = children_.find(name); it != children_.end()) {
      moved = it->second;
      children_.erase(it);
    }
    to->Forget(new_name);
    if (auto m = moved.lock()) {
      to->children_[new_name] = m;
      m->Touched();  // its ctime (and a directory's "..")
    }
    Touched();
    return Ok();
  }

  Status Exchange(const std::string& name, vfs::Inode& new_dir,
                  const std::string& new_name) override {
    TRY(CheckWritableDir());
    auto* to = dynamic_cast<GoferInode*>(&new_dir);
    if (to == nullptr || to->mount_ != mount_) return Errno{EXDEV};
    OwnChange own(*mount_);
    TRY(mount_->client->Rename(fid_, name, to->fid_, new_name, RENAME_EXCHANGE));
    std::weak_ptr<GoferInode> a, b;
    if (auto it = children_.find(name); it != children_.end()) a = it->second;
    if (auto it = to->children_.find(new_name); it != to->children_.end()) b = it->second;
    children_.erase(name);
    to->children_.erase(new_name);
    if (auto s = a.lock()) to->children_[new_name] = s;
    if (auto s = b.lock()) children_[name] = s;
    Touched();
    to->Touched();
    return Ok();
  }

  Result<std::string> Readlink() override {
    if (!IsSymlink()) return Errno{EINVAL};
    if (!link_cached_) {
      ASSIGN_OR_RETURN(link_, mount_->client->Readlink(fid_));
      link_cached_ = true;
    }
    return link_;
  }

  Result<vfs::FileRef> Open(int flags) override {
    if (!mount_->writable && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))) {
      return Errno{EROFS};
    }
    if (!IsRegular() && !IsDir() && !(flags & O_PATH)) {
      // Host devices, sockets and fifos are never opened through the gofer.
      return Errno{EACCES};
    }
    return Inode::Open(flags);
  }

  // A read-only tree: chmod(2), chown(2), truncate(2) and utimensat(2) give
  // EROFS there, not the EPERM of the VFS default.
  Status SetAttributes(const vfs::SetAttr& attr) override {
    if (!mount_->writable) return Errno{EROFS};
    gofer::SetattrArgs args;
    if (attr.set_mode) args.mode = attr.mode & 07777;
    if (attr.set_uid) args.uid = attr.uid;
    if (attr.set_gid) args.gid = attr.gid;
    if (attr.set_size) args.size = attr.size;
    if (attr.set_atime) args.atime = attr.atime;
    if (attr.set_mtime) args.mtime = attr.mtime;
    OwnChange own(*mount_);
    ASSIGN_OR_RETURN(gofer::Attr a, mount_->client->Setattr(fid_, args));
    SetAttr(a);
    if (attr.set_size) {
      if (std::shared_ptr<FileCache> cache = Cache(); cache != nullptr) cache->Resize(attr.size);
    }
    return Ok();
  }

  // Mappings share the file's pages in the memory file, read a chunk at a
  // time on first use. A writable tree's file writes them back (Sync).
  bool SharesPages() override { return IsRegular(); }
  bool Unchanging() override { return !mount_->writable; }
  Result<uint64_t> SharedPage(uint64_t index) override {
    if (!IsRegular()) return Errno{ENODEV};
    std::shared_ptr<FileCache> cache;
    {
      absl::MutexLock l(&mu_);
      if (cache_ == nullptr) {
        if (mount_->writable) {
          backing_ = std::make_shared<Backing>(mount_, fid_);
          cache_ =
              FileCache::CreateWritable(MemoryFile::Sandbox(), static_cast<uint64_t>(attr_.size),
                                        [b = backing_](uint64_t off, const char* buf, size_t n) {
                                          return b->Write(off, buf, n);
                                        });
        } else {
          cache_ = FileCache::Create(MemoryFile::Sandbox(), static_cast<uint64_t>(attr_.size));
        }
      }
      cache = cache_;
    }
    return cache->Page(
        index, [this](uint64_t offset, char* buf, size_t n) { return HostRead(buf, n, offset); });
  }
  void NoteSharedWrite(uint64_t index) override {
    if (std::shared_ptr<FileCache> cache = Cache(); cache != nullptr) cache->MarkDirty(index);
  }
  Status Sync(uint64_t offset, uint64_t len) override {
    if (!mount_->writable || !IsRegular()) return Ok();
    if (std::shared_ptr<FileCache> cache = Cache(); cache != nullptr) {
      TRY(cache->WriteBack(offset, len));
    }
    if (std::shared_ptr<UniqueFd> fd = mount_->fds.Get(this); fd != nullptr) {
      if (fsync(fd->get()) != 0 && errno != EINVAL) return Errno{errno};
    }
    return Ok();
  }

  Result<size_t> ReadAt(char* buf, size_t n, uint64_t offset) override {
    if (!IsRegular()) return Errno{EINVAL};
    // A file with a cache reads its cached pages from it: what a shared
    // mapping wrote and has not been written back yet.
    if (std::shared_ptr<FileCache> cache = Cache(); cache != nullptr && mount_->writable) {
      return cache->Read(offset, buf, n, [this](uint64_t off, char* b, size_t len) {
        return HostRead(b, len, off);
      });
    }
    return HostRead(buf, n, offset);
  }

  Result<size_t> WriteAt(const char* buf, size_t n, uint64_t offset) override {
    if (!IsRegular()) return Errno{EINVAL};
    if (!mount_->writable) return Errno{EROFS};
    if (offset > static_cast<uint64_t>(INT64_MAX) ||
        n > static_cast<uint64_t>(INT64_MAX) - offset) {
      return Errno{EFBIG};
    }
    ASSIGN_OR_RETURN(std::shared_ptr<UniqueFd> fd, HostFd(/*write=*/true));
    {
      OwnChange own(*mount_);
      TRY(Backing::PWriteAll(fd->get(), buf, n, offset));
    }
    if (std::shared_ptr<FileCache> cache = Cache(); cache != nullptr) cache->Update(offset, buf, n);
    absl::MutexLock l(&mu_);
    attr_.size = std::max<int64_t>(attr_.size, static_cast<int64_t>(offset + n));
    attr_.mtime = attr_.ctime = Now();
    return n;
  }

 private:
  Status CheckWritableDir() {
    if (!IsDir()) return Errno{ENOTDIR};
    if (!mount_->writable) return Errno{EROFS};
    return Ok();
  }

  // A child just walked to or made: found again by Lookup while it lives.
  vfs::InodeRef Remember(const std::string& name, const gofer::WalkStep& step) {
    auto inode = std::make_shared<GoferInode>(mount_, step);
    // The map only finds live inodes again (the VFS's caches own them);
    // entries of dead ones are dropped as the map grows.
    if (children_.size() >= purge_at_) {
      std::erase_if(children_, [](const auto& e) { return e.second.expired(); });
      purge_at_ = std::max<size_t>(64, children_.size() * 2);
    }
    children_[name] = inode;
    return inode;
  }
  void Forget(const std::string& name) {
    children_.erase(name);
    if (mount_->writable) Touched();
  }
  // A directory whose entries changed: its times and link count come from
  // the host on the next stat.
  void Touched() {
    absl::MutexLock l(&mu_);
    stale_ = true;
  }

  void SetAttr(const gofer::Attr& a) {
    absl::MutexLock l(&mu_);
    attr_ = a;
  }
  std::shared_ptr<FileCache> Cache() {
    absl::MutexLock l(&mu_);
    return cache_;
  }

  // The donated descriptor, opened on first use: read-write on a writable
  // tree where the host lets the gofer (else read-only, for reads).
  Result<std::shared_ptr<UniqueFd>> HostFd(bool write) {
    std::shared_ptr<UniqueFd> fd = mount_->fds.Get(this);
    if (fd != nullptr) {
      if (!write) return fd;
      int fl = fcntl(fd->get(), F_GETFL);
      if (fl >= 0 && (fl & O_ACCMODE) == O_RDWR) return fd;
    }
    Result<UniqueFd> opened = mount_->client->Open(fid_, mount_->writable ? O_RDWR : O_RDONLY);
    if (!opened.ok() && mount_->writable && !write) opened = mount_->client->Open(fid_, O_RDONLY);
    if (!opened.ok()) return Errno{opened.error()};
    fd = std::make_shared<UniqueFd>(std::move(opened).value());
    OwnChange own(*mount_);  // an evicted written file's close is IN_CLOSE_WRITE
    mount_->fds.Put(this, fd);
    return fd;
  }

  Result<size_t> HostRead(char* buf, size_t n, uint64_t offset) {
    ASSIGN_OR_RETURN(std::shared_ptr<UniqueFd> fd, HostFd(/*write=*/false));
    ssize_t r;
    do {
      r = pread(fd->get(), buf, n, static_cast<off_t>(offset));
    } while (r < 0 && errno == EINTR);
    if (r < 0) return Errno{errno};
    return static_cast<size_t>(r);
  }

  const std::shared_ptr<Mount> mount_;
  const gofer::Fid fid_;
  const mode_t type_;  // an inode never changes type
  std::map<std::string, std::weak_ptr<GoferInode>> children_;
  // A Prefetch's answer for the next Lookup of that name (holds the inode
  // until then).
  std::map<std::string, Result<std::shared_ptr<GoferInode>>> prefetched_;
  size_t purge_at_ = 64;
  std::string link_;
  bool link_cached_ = false;
  absl::Mutex mu_;
  gofer::Attr attr_ ABSL_GUARDED_BY(mu_);
  bool stale_ ABSL_GUARDED_BY(mu_) = false;  // attr_ to be fetched again
  std::atomic<bool> host_gone_{false};       // the host removed or replaced it (HostChanged)
  // A read-only directory's listing, after the first ReadDir.
  std::shared_ptr<const std::vector<vfs::Dirent>> listing_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<FileCache> cache_ ABSL_GUARDED_BY(mu_);  // made on the first mapping
  std::shared_ptr<Backing> backing_ ABSL_GUARDED_BY(mu_);  // a writable cache's
};

}  // namespace

Result<vfs::InodeRef> NewGoferRoot(std::shared_ptr<gofer::Client> client, bool writable) {
  ASSIGN_OR_RETURN(gofer::WalkStep root, client->Attach());
  if ((root.attr.mode & S_IFMT) != S_IFDIR) return Errno{ENOTDIR};
  return vfs::InodeRef(
      std::make_shared<GoferInode>(std::make_shared<Mount>(std::move(client), writable), root));
}

}  // namespace husk::goferfs
