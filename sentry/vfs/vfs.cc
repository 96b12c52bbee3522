#include "sentry/vfs/vfs.h"

#include <errno.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/deferred_release.h"

namespace husk::vfs {

uint64_t NextInodeNumber() {
  static std::atomic<uint64_t> next{1000};
  return next.fetch_add(1);
}

dev_t NewAnonDevice() {
  // Anonymous devices use major 0, like Linux's get_anon_bdev().
  static std::atomic<unsigned> next{16};
  return makedev(0, next.fetch_add(1));
}

// A mmap of a regular file reads through the inode.
namespace {
class InodeMappable : public Mappable {
 public:
  InodeMappable(InodeRef inode, DentryRef dentry)
      : inode_(std::move(inode)), dentry_(std::move(dentry)) {}
  Result<size_t> ReadForMapping(uint64_t offset, char* buf, size_t n) override {
    size_t done = 0;
    while (done < n) {
      ASSIGN_OR_RETURN(size_t r, inode_->ReadAt(buf + done, n - done, offset + done));
      if (r == 0) break;
      done += r;
    }
    return done;
  }
  bool SharesPages() const override { return inode_->SharesPages(); }
  Result<uint64_t> SharedPage(uint64_t index) override { return inode_->SharedPage(index); }
  void NoteSharedWrite(uint64_t index) override { inode_->NoteSharedWrite(index); }
  Status Sync(uint64_t offset, uint64_t len) override { return inode_->Sync(offset, len); }
  std::string MapsName() const override { return dentry_ ? dentry_->Path() : ""; }
  uint64_t MapsInode() const override {
    auto st = inode_->Stat();
    return st.ok() ? st->st_ino : 0;
  }
  uint64_t MapsDevice() const override {
    auto st = inode_->Stat();
    return st.ok() ? st->st_dev : 0;
  }

 private:
  InodeRef inode_;
  DentryRef dentry_;
};
}  // namespace

Result<FileRef> Inode::Open(int flags) { return std::make_shared<File>(shared_from_this(), flags); }

Result<off_t> Inode::SeekData(off_t offset, bool hole) {
  ASSIGN_OR_RETURN(struct stat st, Stat());
  return hole ? st.st_size : offset;
}

Result<struct statfs> Inode::Statfs() {
  struct statfs s {};
  s.f_type = 0x01021994;  // TMPFS_MAGIC
  s.f_bsize = s.f_frsize = 4096;
  s.f_namelen = 255;
  s.f_flags = 0x20;  // ST_VALID: f_flags is filled in
  return s;
}

namespace {

// The dentry cache's books (see ShrinkDentryCache). Guarded by the kernel
// lock, like the rest of the VFS for now.
struct DentryCacheState {
  std::vector<std::weak_ptr<Dentry>> cached;  // every cached child, some expired
  // As gVisor's default: enough for a build's working set of directories.
  size_t limit = 1000;
  size_t next_shrink = 1000;  // shrink when `cached` grows past this
  uint64_t clock = 0;
};

DentryCacheState& CacheState() {
  static DentryCacheState* s = new DentryCacheState();  // never destroyed
  return *s;
}

void PurgeExpired(DentryCacheState& s) {
  std::erase_if(s.cached, [](const std::weak_ptr<Dentry>& w) { return w.expired(); });
}

}  // namespace

namespace {
std::atomic<void (*)(Inode&)> g_dentry_release_hook{nullptr};
}  // namespace

void SetDentryReleaseHook(void (*hook)(Inode&)) { g_dentry_release_hook.store(hook); }

Dentry::~Dentry() {
  if (notify_release_ && inode_ != nullptr) {
    if (auto hook = g_dentry_release_hook.load()) hook(*inode_);
  }
  for (auto& [name, child] : children_) DeferRelease(std::move(child));
  DeferRelease(std::move(mounted_));
  DeferRelease(std::move(mountpoint_));
  DeferRelease(std::move(inode_));
  DeferRelease(std::move(parent_));
}

void SetDentryCacheLimit(size_t limit) {
  DentryCacheState& s = CacheState();
  s.limit = std::max<size_t>(limit, 1);
  s.next_shrink = s.limit;
  ShrinkDentryCache();
}

size_t CachedDentries() {
  PurgeExpired(CacheState());
  return CacheState().cached.size();
}

void ShrinkDentryCache() {
  DentryCacheState& s = CacheState();
  PurgeExpired(s);
  const size_t target = s.limit - s.limit / 4;
  // Evicting a leaf can make its parent a leaf: a few rounds reach those.
  for (int round = 0; round < 8 && s.cached.size() > target; round++) {
    std::vector<DentryRef> unused;
    for (const auto& w : s.cached) {
      DentryRef d = w.lock();
      // In use: referenced beyond its parent's cache entry and `d` here.
      if (d == nullptr || d.use_count() > 2) continue;
      if (!d->children_.empty() || d->mounted_ != nullptr || d->mountpoint_ != nullptr ||
          d->magic_file_ != nullptr || d->deleted_ || d->parent_ == nullptr) {
        continue;
      }
      auto it = d->parent_->children_.find(d->name_);
      if (it == d->parent_->children_.end() || it->second != d) continue;
      unused.push_back(std::move(d));
    }
    if (unused.empty()) break;
    std::sort(unused.begin(), unused.end(),
              [](const DentryRef& a, const DentryRef& b) { return a->last_used_ < b->last_used_; });
    size_t evict = std::min(unused.size(), s.cached.size() - target);
    for (size_t i = 0; i < evict; i++) unused[i]->parent_->children_.erase(unused[i]->name_);
    unused.clear();  // the evicted dentries (and their inodes) go here
    PurgeExpired(s);
  }
  // What could not be evicted is in use: then let the cache grow past it
  // before trying again, so that sweeps stay amortised O(1) per lookup.
  s.next_shrink = s.cached.size() <= target ? s.limit : s.cached.size() + s.cached.size() / 2;
}

void Dentry::Cache(const std::shared_ptr<Dentry>& child) {
  DentryCacheState& s = CacheState();
  child->last_used_ = ++s.clock;
  s.cached.push_back(child);
  if (s.cached.size() > s.next_shrink) ShrinkDentryCache();
}

Result<std::shared_ptr<Dentry>> Dentry::Child(const std::string& name) {
  auto it = children_.find(name);
  if (it != children_.end()) {
    if (it->second->inode_->Revalidate()) {
      it->second->last_used_ = ++CacheState().clock;
      return it->second;
    }
    // Stale (a /proc entry of a process that exited): look it up afresh.
    it->second->ReleaseTree();
    children_.erase(it);
  }
  ASSIGN_OR_RETURN(InodeRef inode, inode_->Lookup(name));
  auto d = std::make_shared<Dentry>(name, shared_from_this(), std::move(inode));
  children_.emplace(name, d);
  Cache(d);
  return d;
}

void Dentry::AddChild(const std::string& name, InodeRef inode) {
  auto d = std::make_shared<Dentry>(name, shared_from_this(), std::move(inode));
  auto& slot = children_[name];
  DeferRelease(std::move(slot));
  slot = d;
  Cache(d);
}

void Dentry::ForgetChild(const std::string& name) {
  auto it = children_.find(name);
  if (it == children_.end()) return;
  std::shared_ptr<Dentry> d = std::move(it->second);
  children_.erase(it);
  d->MarkDeleted();
}

void Dentry::MarkDeleted() {
  deleted_ = true;
  ReleaseTree();
}

void Dentry::ReleaseTree() {
  // Iteratively, so a deep tree cannot exhaust the sentry's stack.
  std::vector<std::shared_ptr<Dentry>> work{shared_from_this()};
  while (!work.empty()) {
    std::shared_ptr<Dentry> d = std::move(work.back());
    work.pop_back();
    for (auto& [name, child] : d->children_) work.push_back(std::move(child));
    d->children_.clear();
    if (d->mounted_ != nullptr) {
      d->mounted_->mountpoint_ = nullptr;
      work.push_back(std::move(d->mounted_));
      d->mounted_ = nullptr;
    }
  }
}

void Dentry::MoveChild(const std::string& name, Dentry& new_parent, const std::string& new_name) {
  auto it = children_.find(name);
  if (it == children_.end()) {
    new_parent.ForgetChild(new_name);
    return;
  }
  std::shared_ptr<Dentry> d = it->second;
  children_.erase(it);
  d->name_ = new_name;
  d->parent_ = new_parent.shared_from_this();
  auto& slot = new_parent.children_[new_name];
  if (slot != nullptr && slot != d) slot->MarkDeleted();
  slot = d;
}

void Dentry::ExchangeChild(const std::string& name, Dentry& new_parent,
                           const std::string& new_name) {
  std::shared_ptr<Dentry> a, b;
  if (auto it = children_.find(name); it != children_.end()) {
    a = std::move(it->second);
    children_.erase(it);
  }
  if (auto it = new_parent.children_.find(new_name); it != new_parent.children_.end()) {
    b = std::move(it->second);
    new_parent.children_.erase(it);
  }
  if (a != nullptr) {
    a->name_ = new_name;
    a->parent_ = new_parent.shared_from_this();
    new_parent.children_[new_name] = a;
  }
  if (b != nullptr) {
    b->name_ = name;
    b->parent_ = shared_from_this();
    children_[name] = b;
  }
}

namespace {
const Dentry* MountRoot(const Dentry& d) {
  const Dentry* cur = &d;
  // A mount's root dentry knows what it covers; its parent_ is the
  // covered dentry's parent, so the walk stops there.
  while (cur->mountpoint() == nullptr && cur->parent() != nullptr) cur = cur->parent().get();
  return cur;
}

struct MountRecord {
  int id;
  int parent_id;
  std::weak_ptr<Dentry> root;
  MountSpec spec;
};

struct MountTable {
  absl::Mutex mu;
  std::vector<MountRecord> mounts ABSL_GUARDED_BY(mu);
  int next_id ABSL_GUARDED_BY(mu) = 1;
};

MountTable& Mounts() {
  static auto* table = new MountTable();  // never destroyed: dentries may outlive statics
  return *table;
}

void AddMount(const DentryRef& root, const Dentry* on, const MountSpec& spec) {
  MountTable& t = Mounts();
  absl::MutexLock l(&t.mu);
  int parent = 0;
  if (on != nullptr) {
    const Dentry* holder = MountRoot(*on);
    for (const MountRecord& m : t.mounts) {
      if (m.root.lock().get() == holder) parent = m.id;
    }
  }
  t.mounts.push_back(MountRecord{t.next_id++, parent, root, spec});
}
}  // namespace

std::shared_ptr<Dentry> Dentry::Mount(InodeRef root, const MountSpec& spec) {
  auto d = std::make_shared<Dentry>(name_, parent_, std::move(root));
  d->mountpoint_ = shared_from_this();
  mounted_ = d;
  AddMount(d, this, spec);
  return d;
}

std::shared_ptr<Dentry> Dentry::Mount(InodeRef root) { return Mount(std::move(root), MountSpec{}); }

void SetRootMount(const DentryRef& root, const MountSpec& spec) {
  {
    MountTable& t = Mounts();
    absl::MutexLock l(&t.mu);
    // A new root (a unit test's, or a second boot in one process) starts a
    // new table.
    t.mounts.clear();
  }
  AddMount(root, nullptr, spec);
}

std::string RenderMountTable(bool info) {
  std::vector<MountRecord> mounts;
  {
    MountTable& t = Mounts();
    absl::MutexLock l(&t.mu);
    mounts = t.mounts;
  }
  std::string out;
  for (const MountRecord& m : mounts) {
    DentryRef root = m.root.lock();
    if (root == nullptr) continue;
    const std::string point = root->Path();
    if (!info) {
      absl::StrAppend(&out, m.spec.source, " ", point, " ", m.spec.type, " ", m.spec.options,
                      " 0 0\n");
      continue;
    }
    dev_t dev = 0;
    if (auto st = root->inode()->Stat(); st.ok()) dev = st->st_dev;
    const char* super = m.spec.options.rfind("ro", 0) == 0 ? "ro" : "rw";
    absl::StrAppend(&out, m.id, " ", m.parent_id, " ", major(dev), ":", minor(dev), " / ", point,
                    " ", m.spec.options, " - ", m.spec.type, " ", m.spec.source, " ", super, "\n");
  }
  return out;
}

bool SameMount(const Dentry& a, const Dentry& b) { return MountRoot(a) == MountRoot(b); }

int MountId(const Dentry& d) {
  const Dentry* root = MountRoot(d);
  MountTable& t = Mounts();
  absl::MutexLock l(&t.mu);
  for (const MountRecord& m : t.mounts) {
    if (m.root.lock().get() == root) return m.id;
  }
  return 0;
}

std::string Dentry::Path() const {
  bool reachable;
  return PathFrom(nullptr, &reachable);
}

std::string Dentry::PathFrom(const Dentry* root, bool* reachable) const {
  std::vector<const Dentry*> chain;
  const Dentry* d = this;
  *reachable = root == nullptr;
  while (d != nullptr) {
    if (d == root) {
      *reachable = true;
      break;
    }
    if (d->parent_ == nullptr) {
      if (d->mountpoint_ == nullptr) break;
      d = d->mountpoint_.get();
      continue;
    }
    chain.push_back(d);
    d = d->parent_.get();
  }
  if (chain.empty()) return "/";
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    out += '/';
    out += (*it)->name_;
  }
  if (deleted_) out += " (deleted)";
  return out;
}

void File::set_status_flags(int f) {
  // fcntl(F_SETFL) changes only these (see fcntl(2)).
  constexpr int kChangeable = O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK;
  flags_ = (flags_ & ~kChangeable) | (f & kChangeable);
}

Result<size_t> File::Read(char* buf, size_t n) {
  if (!readable()) return Errno{EBADF};
  if (inode_->IsDir()) return Errno{EISDIR};
  if (inode_->Stream()) return inode_->ReadAt(buf, n, 0);
  ASSIGN_OR_RETURN(size_t r, inode_->ReadAt(buf, n, static_cast<uint64_t>(offset_)));
  offset_ += static_cast<off_t>(r);
  return r;
}

Result<size_t> File::Write(const char* buf, size_t n) {
  if (!writable()) return Errno{EBADF};
  if (inode_->Stream()) return inode_->WriteAt(buf, n, 0);
  if (flags_ & O_APPEND) {
    ASSIGN_OR_RETURN(struct stat st, inode_->Stat());
    offset_ = st.st_size;
  }
  ASSIGN_OR_RETURN(size_t w, inode_->WriteAt(buf, n, static_cast<uint64_t>(offset_)));
  offset_ += static_cast<off_t>(w);
  return w;
}

Result<size_t> File::PRead(char* buf, size_t n, uint64_t offset) {
  if (!readable()) return Errno{EBADF};
  if (inode_->IsDir()) return Errno{EISDIR};
  if (inode_->Stream()) return Errno{ESPIPE};
  return inode_->ReadAt(buf, n, offset);
}

Result<size_t> File::PWrite(const char* buf, size_t n, uint64_t offset) {
  if (!writable()) return Errno{EBADF};
  if (inode_->Stream()) return Errno{ESPIPE};
  // Linux quirk (pwrite(2), BUGS): with O_APPEND, pwrite appends.
  if (flags_ & O_APPEND) {
    ASSIGN_OR_RETURN(struct stat st, inode_->Stat());
    offset = static_cast<uint64_t>(st.st_size);
  }
  return inode_->WriteAt(buf, n, offset);
}

Result<off_t> File::Seek(off_t offset, int whence) {
  if (inode_->Stream()) return off_t{0};  // character devices ignore seeks
  off_t base;
  switch (whence) {
    case SEEK_SET:
      base = 0;
      break;
    case SEEK_CUR:
      base = offset_;
      break;
    case SEEK_END: {
      if (inode_->IsDir()) return Errno{EINVAL};
      ASSIGN_OR_RETURN(struct stat st, inode_->Stat());
      base = st.st_size;
      break;
    }
    case SEEK_DATA:
    case SEEK_HOLE: {
      // generic_file_llseek_size(): at or past the end (a negative offset
      // too) there is neither.
      if (inode_->IsDir()) return Errno{EINVAL};
      ASSIGN_OR_RETURN(struct stat st, inode_->Stat());
      if (offset < 0 || offset >= st.st_size) return Errno{ENXIO};
      ASSIGN_OR_RETURN(off_t pos, inode_->SeekData(offset, whence == SEEK_HOLE));
      offset_ = pos;
      return pos;
    }
    default:
      return Errno{EINVAL};
  }
  off_t pos;
  if (__builtin_add_overflow(base, offset, &pos)) return Errno{EOVERFLOW};
  if (pos < 0) return Errno{EINVAL};
  if (inode_->IsDir() && pos == 0) dir_snapshot_.clear();
  offset_ = pos;
  return pos;
}

Result<std::vector<Dirent>> File::ReadDirBatch(size_t max_entries_hint,
                                               const std::function<bool(const Dirent&)>& fits) {
  if (!inode_->IsDir()) return Errno{ENOTDIR};
  if (offset_ == 0 || dir_snapshot_.empty()) {
    ASSIGN_OR_RETURN(std::vector<Dirent> entries, inode_->ReadDir());
    ASSIGN_OR_RETURN(struct stat self, inode_->Stat());
    uint64_t parent_ino = self.st_ino;
    if (dentry_ && dentry_->parent()) {
      auto pst = dentry_->parent()->inode()->Stat();
      if (pst.ok()) parent_ino = pst->st_ino;
    }
    dir_snapshot_.clear();
    dir_snapshot_.push_back(Dirent{".", self.st_ino, DT_DIR});
    dir_snapshot_.push_back(Dirent{"..", parent_ino, DT_DIR});
    for (auto& e : entries) dir_snapshot_.push_back(std::move(e));
  }
  std::vector<Dirent> out;
  while (static_cast<size_t>(offset_) < dir_snapshot_.size() && out.size() < max_entries_hint) {
    const Dirent& e = dir_snapshot_[static_cast<size_t>(offset_)];
    if (!fits(e)) break;
    out.push_back(e);
    offset_++;
  }
  return out;
}

namespace {
std::atomic<void (*)(const File&)> g_release_hook{nullptr};
std::atomic<void (*)(const File&)> g_close_hook{nullptr};
}  // namespace

void SetFileReleaseHook(void (*hook)(const File&)) { g_release_hook.store(hook); }
void SetFileCloseHook(void (*hook)(const File&)) { g_close_hook.store(hook); }

File::~File() {
  if (notify_close_) {
    if (auto hook = g_close_hook.load()) hook(*this);
  }
  if (uses_locks_) {
    if (auto hook = g_release_hook.load()) hook(*this);
  }
}

std::shared_ptr<Mappable> File::GetMappable() {
  if (!inode_->IsRegular()) return nullptr;
  return std::make_shared<InodeMappable>(inode_, dentry_);
}

namespace {

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') i++;
    size_t j = i;
    while (j < path.size() && path[j] != '/') j++;
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

// Steps to `..` of d, staying inside fs.root and crossing mount roots.
DentryRef Parent(const FsContext& fs, const DentryRef& d) {
  DentryRef cur = d;
  for (;;) {
    if (cur == fs.root) return cur;
    if (cur->parent() != nullptr) return cur->parent();
    if (cur->mountpoint() == nullptr) return cur;
    cur = cur->mountpoint();
  }
}

DentryRef FollowMounts(DentryRef d) {
  while (d->mounted() != nullptr) d = d->mounted();
  return d;
}

Result<DentryRef> WalkComponents(const FsContext& fs, const Creds& creds, DentryRef cur,
                                 const std::vector<std::string>& parts, bool follow_last,
                                 bool trailing_slash, int* links);

// Resolves a symlink found under dir, continuing with the target.
Result<DentryRef> FollowLink(const FsContext& fs, const Creds& creds, const DentryRef& dir,
                             const DentryRef& link, int* links) {
  if (++*links > kMaxSymlinks) return Errno{ELOOP};
  ASSIGN_OR_RETURN(DentryRef magic, link->inode()->FollowMagic());
  if (magic != nullptr) return magic;
  ASSIGN_OR_RETURN(std::string target, link->inode()->Readlink());
  if (target.empty()) return Errno{ENOENT};
  DentryRef start = target[0] == '/' ? fs.root : dir;
  bool slash = target.back() == '/';
  return WalkComponents(fs, creds, FollowMounts(start), SplitPath(target), true, slash, links);
}

Result<DentryRef> WalkComponents(const FsContext& fs, const Creds& creds, DentryRef cur,
                                 const std::vector<std::string>& parts, bool follow_last,
                                 bool trailing_slash, int* links) {
  for (size_t i = 0; i < parts.size(); i++) {
    const std::string& name = parts[i];
    bool last = i + 1 == parts.size();
    if (!cur->inode()->IsDir()) return Errno{ENOTDIR};
    // link_path_walk(): every component, "." and ".." included, needs search
    // permission on the directory it is looked up in (path_resolution(7)).
    TRY(CheckSearch(creds, *cur->inode()));
    if (name.size() > 255) return Errno{ENAMETOOLONG};
    if (name == ".") continue;
    if (name == "..") {
      cur = Parent(fs, cur);
      continue;
    }
    if (!cur->HasCachedChild(name) && i + 1 < parts.size()) {
      // A miss with more to walk: let the filesystem resolve the rest of
      // the plain names in one go.
      std::vector<std::string> ahead;
      for (size_t j = i;
           j < parts.size() && parts[j] != "." && parts[j] != ".." && parts[j].size() <= 255; j++) {
        ahead.push_back(parts[j]);
      }
      if (ahead.size() > 1) cur->inode()->Prefetch(ahead);
    }
    ASSIGN_OR_RETURN(DentryRef next, cur->Child(name));
    next = FollowMounts(next);
    if (next->inode()->IsSymlink() && (!last || follow_last || trailing_slash)) {
      ASSIGN_OR_RETURN(next, FollowLink(fs, creds, cur, next, links));
    }
    cur = next;
  }
  if (trailing_slash && !cur->inode()->IsDir()) return Errno{ENOTDIR};
  return cur;
}

}  // namespace

Result<DentryRef> Resolve(const FsContext& fs, const DentryRef& start, const std::string& path,
                          bool follow, const Creds& creds) {
  if (path.empty()) return Errno{ENOENT};
  if (path.size() >= kPathMax) return Errno{ENAMETOOLONG};
  DentryRef cur = path[0] == '/' ? fs.root : start;
  int links = 0;
  return WalkComponents(fs, creds, FollowMounts(cur), SplitPath(path), follow, path.back() == '/',
                        &links);
}

Result<ParentAndName> ResolveParent(const FsContext& fs, const DentryRef& start,
                                    const std::string& path, const Creds& creds) {
  if (path.empty()) return Errno{ENOENT};
  if (path.size() >= kPathMax) return Errno{ENAMETOOLONG};
  std::vector<std::string> parts = SplitPath(path);
  ParentAndName out;
  out.must_be_dir = path.back() == '/';
  DentryRef cur = path[0] == '/' ? fs.root : start;
  if (parts.empty()) {  // "/" or "///"
    out.parent = FollowMounts(cur);
    return out;
  }
  out.name = parts.back();
  if (out.name.size() > 255) return Errno{ENAMETOOLONG};
  parts.pop_back();
  int links = 0;
  ASSIGN_OR_RETURN(out.parent,
                   WalkComponents(fs, creds, FollowMounts(cur), parts, true, false, &links));
  if (!out.parent->inode()->IsDir()) return Errno{ENOTDIR};
  // The last name is looked up in the parent too: search permission.
  TRY(CheckSearch(creds, *out.parent->inode()));
  return out;
}

}  // namespace husk::vfs
