#include "sentry/vfs/vfs.h"

#include <errno.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
  bool Unchanging() const override { return inode_->Unchanging(); }
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
  if (it != children_.end() && revalidate_) {
    // The directory is reachable through another dentry tree too (a bind
    // mount): the name may have changed there. Same inode (st_dev, st_ino)
    // keeps the cached dentry; otherwise it is gone or replaced.
    Result<InodeRef> now = inode_->Lookup(name);
    bool same = false;
    if (now.ok()) {
      auto a = (*now)->Stat();
      auto b = it->second->inode_->Stat();
      same = a.ok() && b.ok() && a->st_dev == b->st_dev && a->st_ino == b->st_ino;
    }
    if (!same) {
      std::shared_ptr<Dentry> stale = std::move(it->second);
      children_.erase(it);
      stale->MarkDeleted();
      if (!now.ok()) return Errno{now.error()};
      auto d = std::make_shared<Dentry>(name, shared_from_this(), std::move(*now));
      d->revalidate_ = true;
      children_.emplace(name, d);
      Cache(d);
      return d;
    }
  }
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
  d->revalidate_ = revalidate_;
  children_.emplace(name, d);
  Cache(d);
  return d;
}

void Dentry::AddChild(const std::string& name, InodeRef inode) {
  auto d = std::make_shared<Dentry>(name, shared_from_this(), std::move(inode));
  d->revalidate_ = revalidate_;
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

// Mount ids are unique across namespaces, as Linux's are.
int NextMountId() {
  static std::atomic<int> next{1};
  return next.fetch_add(1);
}

// Whether d has this (a mount root) mounted on it in the initial namespace.
bool LegacyMounted(const Dentry& root) {
  return root.mountpoint() != nullptr && root.mountpoint()->mounted().get() == &root;
}

// The per-mount options /proc shows for flags (show_mnt_opts()).
std::string RenderFlags(unsigned long flags) {
  std::string out = (flags & MS_RDONLY) ? "ro" : "rw";
  if (flags & MS_NOSUID) out += ",nosuid";
  if (flags & MS_NODEV) out += ",nodev";
  if (flags & MS_NOEXEC) out += ",noexec";
  if (flags & MS_NOATIME) out += ",noatime";
  if (flags & MS_NODIRATIME) out += ",nodiratime";
  if (flags & MS_RELATIME) out += ",relatime";
  return out;
}
}  // namespace

MountNamespace& MountNamespace::Initial() {
  // Never destroyed: dentries may outlive statics.
  static MountNamespace* ns = [] {
    auto* n = new MountNamespace();
    n->initial_ = true;
    return n;
  }();
  return *ns;
}

MountNamespace::~MountNamespace() {
  // The mounts only this namespace held: their trees' cycles (a child
  // holds its parent, the parent its cache) are broken, as the initial
  // namespace's are by ReleaseTree on the root.
  for (auto& [point, entry] : mounted_) {
    DentryRef& root = entry.second;
    if (--root->ns_refs_ == 0 && !LegacyMounted(*root)) root->ReleaseTree();
  }
}

std::shared_ptr<MountNamespace> MountNamespace::Copy(const MountNamespace* from) {
  const MountNamespace& src = from != nullptr ? *from : Initial();
  std::vector<Record> recs;
  {
    absl::MutexLock l(&src.mu_);
    recs = src.records_;
  }
  auto ns = std::make_shared<MountNamespace>();
  std::map<int, int> new_ids;
  absl::MutexLock l(&ns->mu_);
  for (const Record& r : recs) {
    DentryRef root = r.root.lock();
    if (root == nullptr) continue;
    DentryRef on = root->mountpoint_;
    // Only what is mounted now (the initial table keeps records of mounts
    // released with their tree).
    if (on == nullptr ? r.parent_id != 0 : src.MountedOn(*on) != root) continue;
    Record c = r;
    c.id = NextMountId();
    auto parent = new_ids.find(r.parent_id);
    c.parent_id = parent == new_ids.end() ? 0 : parent->second;
    c.writers = std::make_shared<int>(0);
    new_ids[r.id] = c.id;
    if (on != nullptr) {
      ns->mounted_[on.get()] = {on, root};
      root->ns_refs_++;
    }
    ns->any_enforced_ |= c.enforced;
    ns->records_.push_back(std::move(c));
  }
  return ns;
}

DentryRef MountNamespace::MountedOn(const Dentry& d) const {
  if (initial_) return d.mounted_;
  auto it = mounted_.find(&d);
  return it == mounted_.end() ? nullptr : it->second.second;
}

const MountNamespace::Record* MountNamespace::Find(const Dentry& root) const {
  for (const Record& r : records_) {
    if (r.root.lock().get() != &root) continue;
    // Attached still (the initial table's records outlive released trees).
    if (root.mountpoint_ == nullptr ? r.parent_id == 0
                                    : MountedOn(*root.mountpoint_).get() == &root)
      return &r;
  }
  return nullptr;
}

// Requires mu_ like the const one it calls, which the analysis cannot tie to
// as_const(*this).mu_; its callers are checked.
MountNamespace::Record* MountNamespace::Find(const Dentry& root) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return const_cast<Record*>(std::as_const(*this).Find(root));
}

bool MountNamespace::IsMountRoot(const Dentry& d) const {
  absl::MutexLock l(&mu_);
  return Find(d) != nullptr;
}

unsigned long MountNamespace::FlagsOf(const Dentry& d) const {
  if (!any_enforced_) return 0;
  absl::MutexLock l(&mu_);
  const Record* r = Find(*MountRoot(d));
  return r != nullptr && r->enforced ? r->flags : 0;
}

std::shared_ptr<void> MountNamespace::WriterRef(const Dentry& d) const {
  if (!any_enforced_) return nullptr;
  absl::MutexLock l(&mu_);
  const Record* r = Find(*MountRoot(d));
  return r != nullptr ? r->writers : nullptr;
}

int MountNamespace::ParentId(const Dentry& on) const {
  const Record* r = Find(*MountRoot(on));
  return r != nullptr ? r->id : 0;
}

void MountNamespace::Attach(const DentryRef& on, const DentryRef& root, Record rec) {
  absl::MutexLock l(&mu_);
  rec.id = NextMountId();
  rec.parent_id = ParentId(*on);
  rec.root = root;
  any_enforced_ |= rec.enforced;
  if (initial_) {
    on->mounted_ = root;
  } else {
    mounted_[on.get()] = {on, root};
    root->ns_refs_++;
  }
  records_.push_back(std::move(rec));
}

void MountNamespace::Detach(const DentryRef& root) {
  {
    absl::MutexLock l(&mu_);
    std::erase_if(records_, [&](const Record& r) { return r.root.lock() == root; });
  }
  const DentryRef& on = root->mountpoint_;
  if (initial_) {
    if (on->mounted_ == root) on->mounted_ = nullptr;
  } else {
    mounted_.erase(on.get());
    root->ns_refs_--;
  }
  // Held by no namespace: the tree's cycles go; whatever still uses a
  // dentry of it (an open file) keeps a working, detached dentry.
  if (root->ns_refs_ == 0 && !LegacyMounted(*root)) root->ReleaseTree();
}

DentryRef MountNamespace::AddMount(const DentryRef& on, InodeRef inode, const MountSpec& spec,
                                   unsigned long flags) {
  auto root = std::make_shared<Dentry>(on->name_, on->parent_, std::move(inode));
  root->mountpoint_ = on;
  Record rec;
  rec.spec = spec;
  rec.flags = flags & kMountFlags;
  rec.enforced = true;
  rec.spec.options = RenderFlags(rec.flags);
  if (!spec.options.empty()) absl::StrAppend(&rec.spec.options, ",", spec.options);
  Attach(on, root, std::move(rec));
  return root;
}

namespace {
// Marks d and its cached subtree as aliased (see Dentry::revalidate_).
void MarkAliased(Dentry& d, std::vector<Dentry*>& work);
}  // namespace

Result<DentryRef> MountNamespace::AddBind(const DentryRef& on, const DentryRef& source,
                                          bool recursive) {
  // graft_tree(): a directory on a directory, a file on a file.
  if (on->inode()->IsDir() != source->inode()->IsDir()) return Errno{ENOTDIR};
  struct Sub {
    DentryRef root;
    std::vector<std::string> names;  // from source down to its mountpoint
    Record rec;
  };
  Record base;
  std::vector<Sub> subs;
  {
    absl::MutexLock l(&mu_);
    if (const Record* r = Find(*MountRoot(*source)); r != nullptr) {
      base.spec = r->spec;
      base.flags = r->flags;
      base.enforced = r->enforced;
    }
    // copy_tree(): the mounts below source, parents first (table order).
    for (const Record& r : recursive ? records_ : std::vector<Record>()) {
      DentryRef root = r.root.lock();
      if (root == nullptr || root->mountpoint_ == nullptr) continue;
      std::vector<std::string> names;
      const Dentry* d = root->mountpoint_.get();
      while (d != nullptr && d != source.get()) {
        names.push_back(d->name_);
        d = d->parent_.get();
      }
      if (d == nullptr) continue;
      std::reverse(names.begin(), names.end());
      subs.push_back(Sub{root, std::move(names), r});
    }
  }
  std::vector<Dentry*> work;
  MarkAliased(*source, work);
  auto top = std::make_shared<Dentry>(on->name_, on->parent_, source->inode_);
  top->mountpoint_ = on;
  top->revalidate_ = true;
  Attach(on, top, base);
  for (Sub& sub : subs) {
    DentryRef cur = top;
    bool found = true;
    for (const std::string& name : sub.names) {
      auto next = cur->Child(name);
      if (!next.ok()) {
        found = false;
        break;
      }
      cur = *next;
      while (DentryRef m = MountedOn(*cur)) cur = m;
    }
    if (!found) continue;
    MarkAliased(*sub.root, work);
    auto copy = std::make_shared<Dentry>(cur->name_, cur->parent_, sub.root->inode_);
    copy->mountpoint_ = cur;
    copy->revalidate_ = true;
    Record rec;
    rec.spec = sub.rec.spec;
    rec.flags = sub.rec.flags;
    rec.enforced = sub.rec.enforced;
    Attach(cur, copy, std::move(rec));
  }
  return top;
}

Status MountNamespace::Remount(const Dentry& root, unsigned long flags) {
  absl::MutexLock l(&mu_);
  Record* r = Find(root);
  if (r == nullptr) return Errno{EINVAL};
  flags &= kMountFlags;
  // mnt_make_readonly(): not while a file of the mount is open for writing.
  if ((flags & MS_RDONLY) && !(r->enforced && (r->flags & MS_RDONLY)) && r->writers.use_count() > 1)
    return Errno{EBUSY};
  r->flags = flags;
  r->enforced = true;
  // The filesystem's own options (mode=, size=) stay after the per-mount ones.
  std::string extra;
  for (absl::string_view opt : absl::StrSplit(r->spec.options, ',')) {
    if (opt.find('=') != absl::string_view::npos) absl::StrAppend(&extra, ",", opt);
  }
  r->spec.options = RenderFlags(flags) + extra;
  any_enforced_ = true;
  return Ok();
}

namespace {
// Whether anything beyond the tree itself (and `holders` references to
// root) uses a dentry of root's cached tree: an open file, a working
// directory, a mapping, a mount of another namespace (propagate_mount_busy
// counts the mount's references; dentries are what carry them here).
bool TreeBusy(const Dentry& root, long holders, long root_links) {
  auto count = [](const Dentry& d) { return d.weak_from_this().use_count(); };
  if (count(root) > holders + root_links + static_cast<long>(root.CachedChildren().size()))
    return true;
  std::vector<const Dentry*> work;
  for (const auto& [name, child] : root.CachedChildren()) work.push_back(child.get());
  while (!work.empty()) {
    const Dentry* d = work.back();
    work.pop_back();
    if (count(*d) > 1 + static_cast<long>(d->CachedChildren().size())) return true;
    for (const auto& [name, child] : d->CachedChildren()) work.push_back(child.get());
  }
  return false;
}
}  // namespace

Status MountNamespace::Unmount(const DentryRef& root, bool detach, long holders) {
  std::vector<DentryRef> doomed{root};
  {
    absl::MutexLock l(&mu_);
    const Record* r = Find(*root);
    // The namespace's root cannot go (it would be EBUSY on Linux, or
    // EINVAL for a root that is not a mountpoint); EINVAL here.
    if (r == nullptr || root->mountpoint_ == nullptr) return Errno{EINVAL};
    // The mounts below, parents first (table order).
    std::vector<int> ids{r->id};
    for (const Record& c : records_) {
      if (std::find(ids.begin(), ids.end(), c.parent_id) == ids.end()) continue;
      DentryRef croot = c.root.lock();
      if (croot == nullptr || Find(*croot) != &c) continue;
      if (!detach) return Errno{EBUSY};
      ids.push_back(c.id);
      doomed.push_back(std::move(croot));
    }
  }
  if (!detach) {
    const long links = root->ns_refs_ + (LegacyMounted(*root) ? 1 : 0);
    // doomed[0] is one more reference of ours.
    if (TreeBusy(*root, holders + 1, links)) return Errno{EBUSY};
  }
  // umount_tree(): the deepest first.
  for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) Detach(*it);
  return Ok();
}

std::string MountNamespace::Render(bool info) const {
  std::vector<Record> mounts;
  {
    absl::MutexLock l(&mu_);
    for (const Record& r : records_) {
      DentryRef root = r.root.lock();
      if (root != nullptr && Find(*root) == &r) mounts.push_back(r);
    }
  }
  std::string out;
  for (const Record& m : mounts) {
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

int MountNamespace::MountId(const Dentry& d) const {
  absl::MutexLock l(&mu_);
  const Record* r = Find(*MountRoot(d));
  return r != nullptr ? r->id : 0;
}

namespace {
void MarkAliased(Dentry& d, std::vector<Dentry*>& work) {
  work.clear();
  work.push_back(&d);
  while (!work.empty()) {
    Dentry* cur = work.back();
    work.pop_back();
    cur->SetRevalidate();
    for (const auto& [name, child] : cur->CachedChildren()) work.push_back(child.get());
  }
}
}  // namespace

std::shared_ptr<Dentry> Dentry::Mount(InodeRef root, const MountSpec& spec) {
  auto d = std::make_shared<Dentry>(name_, parent_, std::move(root));
  d->mountpoint_ = shared_from_this();
  MountNamespace::Record rec;
  rec.spec = spec;
  MountNamespace::Initial().Attach(shared_from_this(), d, std::move(rec));
  return d;
}

std::shared_ptr<Dentry> Dentry::Mount(InodeRef root) { return Mount(std::move(root), MountSpec{}); }

void SetRootMount(const DentryRef& root, const MountSpec& spec) {
  MountNamespace& ns = MountNamespace::Initial();
  absl::MutexLock l(&ns.mu_);
  // A new root (a unit test's, or a second boot in one process) starts a
  // new table.
  ns.records_.clear();
  MountNamespace::Record rec;
  rec.id = NextMountId();
  rec.root = root;
  rec.spec = spec;
  ns.records_.push_back(std::move(rec));
}

std::string RenderMountTable(bool info, const MountNamespace* ns) {
  return (ns != nullptr ? *ns : MountNamespace::Initial()).Render(info);
}

bool SameMount(const Dentry& a, const Dentry& b) { return MountRoot(a) == MountRoot(b); }

int MountId(const Dentry& d, const MountNamespace* ns) {
  return (ns != nullptr ? *ns : MountNamespace::Initial()).MountId(d);
}

const MountNamespace& NamespaceOf(const FsContext& fs) {
  return fs.mnt_ns != nullptr ? *fs.mnt_ns : MountNamespace::Initial();
}

MountNamespace& MutableNamespaceOf(const FsContext& fs) {
  return fs.mnt_ns != nullptr ? *fs.mnt_ns : MountNamespace::Initial();
}

bool IsMountpoint(const FsContext& fs, const Dentry& d) {
  return NamespaceOf(fs).MountedOn(d) != nullptr;
}

Status CheckWritableMount(const FsContext& fs, const Dentry& d) {
  if (NamespaceOf(fs).FlagsOf(d) & MS_RDONLY) return Errno{EROFS};
  return Ok();
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

// The topmost mount on d in fs's namespace (or d).
DentryRef FollowMounts(const FsContext& fs, DentryRef d) {
  if (fs.mnt_ns == nullptr) {
    while (d->mounted() != nullptr) d = d->mounted();
    return d;
  }
  while (DentryRef m = fs.mnt_ns->MountedOn(*d)) d = std::move(m);
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
  return WalkComponents(fs, creds, FollowMounts(fs, start), SplitPath(target), true, slash, links);
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
    next = FollowMounts(fs, next);
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
  return WalkComponents(fs, creds, FollowMounts(fs, cur), SplitPath(path), follow,
                        path.back() == '/', &links);
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
    out.parent = FollowMounts(fs, cur);
    return out;
  }
  out.name = parts.back();
  if (out.name.size() > 255) return Errno{ENAMETOOLONG};
  parts.pop_back();
  int links = 0;
  ASSIGN_OR_RETURN(out.parent,
                   WalkComponents(fs, creds, FollowMounts(fs, cur), parts, true, false, &links));
  if (!out.parent->inode()->IsDir()) return Errno{ENOTDIR};
  // The last name is looked up in the parent too: search permission.
  TRY(CheckSearch(creds, *out.parent->inode()));
  return out;
}

}  // namespace husk::vfs
