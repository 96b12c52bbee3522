// The merged view: lookup, listing, attributes and data.
#include "sentry/fsimpl/overlay/inode.h"

#include <errno.h>
#include <limits.h>

#include <algorithm>

#include "base/deferred_release.h"
#include "sentry/fsimpl/overlay/overlay.h"

namespace husk::overlay {

OverlayInode::OverlayInode(std::shared_ptr<OverlayFs> fs, mode_t type, vfs::InodeRef upper,
                           vfs::InodeRef lower, std::weak_ptr<OverlayInode> parent,
                           std::string name)
    : fs_(std::move(fs)),
      type_(type),
      lower_(std::move(lower)),
      upper_(std::move(upper)),
      parent_(std::move(parent)),
      name_(std::move(name)) {
  if (upper_ == nullptr) parent_hold_ = parent_.lock();
}

OverlayInode::~OverlayInode() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (auto& [name, entry] : children_) DeferRelease(std::move(entry.pinned));
  DeferRelease(std::move(parent_hold_));
}

OverlayRef OverlayInode::CachedChildLocked(const std::string& name) {
  auto it = children_.find(name);
  if (it == children_.end()) return nullptr;
  if (it->second.pinned != nullptr) return it->second.pinned;
  OverlayRef child = it->second.weak.lock();
  if (child == nullptr) children_.erase(it);
  return child;
}

// Every inode of one overlay shares fs_->mu (see CopyUpLocked).
void OverlayInode::CacheChildLocked(const std::string& name,
                                    const OverlayRef& child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (children_.size() >= purge_at_) {
    std::erase_if(children_, [](const auto& e) {
      return e.second.pinned == nullptr && e.second.weak.expired();
    });
    purge_at_ = std::max<size_t>(64, children_.size() * 2);
  }
  children_[name] = ChildEntry{child, child->upper_ != nullptr ? child : nullptr};
}

vfs::InodeRef OverlayInode::Real() {
  absl::MutexLock lock(&fs_->mu);
  return upper_ != nullptr ? upper_ : lower_;
}

uint64_t OverlayInode::InoLocked() {
  if (ino_ != 0) return ino_;
  if (lower_ != nullptr) {
    if (auto st = lower_->Stat(); st.ok()) {
      if (st->st_dev == fs_->lower_dev) {
        ino_ = st->st_ino;
      } else {
        // Another host filesystem below the root: keep its objects apart, and
        // its hard links together.
        auto [it, inserted] = fs_->remapped.try_emplace({st->st_dev, st->st_ino}, 0);
        if (inserted) it->second = fs_->next_synthetic++;
        ino_ = it->second;
      }
    }
  }
  if (ino_ == 0 && lower_ == nullptr && upper_ != nullptr) {
    // Made in the sandbox: numbered by its upper inode, so that every name
    // of it (hard links, found again after the dentry cache let go) shows
    // the one number. Above the synthetic numbers (from 2^62 up) and any
    // host filesystem's, with nothing to remember per file.
    if (auto st = upper_->Stat(); st.ok()) ino_ = (uint64_t{3} << 61) + st->st_ino;
  }
  if (ino_ == 0) ino_ = fs_->next_synthetic++;
  return ino_;
}

Result<struct stat> OverlayInode::Stat() {
  absl::MutexLock lock(&fs_->mu);
  vfs::InodeRef real = upper_ != nullptr ? upper_ : lower_;
  ASSIGN_OR_RETURN(struct stat st, real->Stat());
  st.st_dev = fs_->dev;
  st.st_ino = InoLocked();
  // Like Linux overlayfs: a merged directory reports one link rather than
  // counting the subdirectories of both layers.
  if (type_ == S_IFDIR && upper_ != nullptr && lower_ != nullptr) st.st_nlink = 1;
  if (unlinked_) st.st_nlink = 0;
  return st;
}

// ---- Lookup and listing ----

void OverlayInode::Prefetch(const std::vector<std::string>& names) {
  vfs::InodeRef lower;
  {
    absl::MutexLock lock(&fs_->mu);
    // Only what the lower answers by round trips; a name the overlay knows
    // (cached, whited out, or of a directory made in the sandbox) is not.
    if (lower_ == nullptr || CachedChildLocked(names[0]) != nullptr ||
        whiteouts_.contains(names[0])) {
      return;
    }
    lower = lower_;
  }
  lower->Prefetch(names);
}

Result<vfs::InodeRef> OverlayInode::Lookup(const std::string& name) {
  absl::MutexLock lock(&fs_->mu);
  ASSIGN_OR_RETURN(OverlayRef child, LookupLocked(name));
  return vfs::InodeRef(std::move(child));
}

Result<OverlayRef> OverlayInode::LookupLocked(const std::string& name) {
  if (type_ != S_IFDIR) return Errno{ENOTDIR};
  if (name.size() > NAME_MAX) return Errno{ENAMETOOLONG};
  if (OverlayRef cached = CachedChildLocked(name)) return cached;
  if (unlinked_) return Errno{ENOENT};

  vfs::InodeRef up, low;
  if (upper_ != nullptr) {
    auto r = upper_->Lookup(name);
    if (r.ok()) {
      up = std::move(r).value();
    } else if (r.error() != ENOENT) {
      return Errno{r.error()};
    }
  }
  // The lower entry counts unless a whiteout hides it or an upper
  // non-directory covers it.
  if (lower_ != nullptr && whiteouts_.count(name) == 0 && (up == nullptr || up->IsDir())) {
    auto r = lower_->Lookup(name);
    if (r.ok()) {
      low = std::move(r).value();
    } else if (r.error() != ENOENT) {
      return Errno{r.error()};
    }
  }
  if (up == nullptr && low == nullptr) return Errno{ENOENT};
  // An upper directory over a lower non-directory is opaque.
  if (up != nullptr && low != nullptr && !low->IsDir()) low = nullptr;

  mode_t type = up != nullptr ? up->Type() : low->Type();
  auto child = std::make_shared<OverlayInode>(
      fs_, type, std::move(up), std::move(low),
      std::static_pointer_cast<OverlayInode>(shared_from_this()), name);
  CacheChildLocked(name, child);
  return child;
}

Result<std::vector<vfs::Dirent>> OverlayInode::ReadDir() {
  absl::MutexLock lock(&fs_->mu);
  return ReadDirLocked();
}

// Upper entries first, then the lower entries they do not cover and no
// whiteout hides (Linux overlayfs lists in the same order).
Result<std::vector<vfs::Dirent>> OverlayInode::ReadDirLocked() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (type_ != S_IFDIR) return Errno{ENOTDIR};
  std::vector<vfs::Dirent> out;
  std::set<std::string> seen;
  if (upper_ != nullptr) {
    ASSIGN_OR_RETURN(std::vector<vfs::Dirent> upper, upper_->ReadDir());
    for (vfs::Dirent& e : upper) {
      // The overlay's number differs from the upper's: ask the child. The
      // upper is in memory, so this costs no round trip.
      ASSIGN_OR_RETURN(OverlayRef child, LookupLocked(e.name));
      e.ino = child->InoLocked();
      seen.insert(e.name);
      out.push_back(std::move(e));
    }
  }
  if (lower_ != nullptr) {
    ASSIGN_OR_RETURN(std::vector<vfs::Dirent> lower, lower_->ReadDir());
    for (vfs::Dirent& e : lower) {
      if (seen.count(e.name) != 0 || whiteouts_.count(e.name) != 0) continue;
      // Uncached lower entries keep the lower's number (the same the child
      // will report, unless it lives on another host device).
      if (OverlayRef cached = CachedChildLocked(e.name)) e.ino = cached->InoLocked();
      out.push_back(std::move(e));
    }
  }
  return out;
}

// ---- Data ----

Result<std::string> OverlayInode::Readlink() { return Real()->Readlink(); }

bool OverlayInode::Stream() { return Real()->Stream(); }

// A lower file has no shared pages; a copied-up one shares the upper's.
bool OverlayInode::SharesPages() { return Real()->SharesPages(); }
Result<uint64_t> OverlayInode::SharedPage(uint64_t index) { return Real()->SharedPage(index); }

Result<size_t> OverlayInode::ReadAt(char* buf, size_t n, uint64_t offset) {
  return Real()->ReadAt(buf, n, offset);
}

Result<size_t> OverlayInode::WriteAt(const char* buf, size_t n, uint64_t offset) {
  vfs::InodeRef up;
  {
    absl::MutexLock lock(&fs_->mu);
    if (type_ == S_IFREG) TRY(CopyUpLocked());
    up = upper_ != nullptr ? upper_ : lower_;
  }
  return up->WriteAt(buf, n, offset);
}

Status OverlayInode::SetAttributes(const vfs::SetAttr& attr) {
  absl::MutexLock lock(&fs_->mu);
  // Truncating to zero needs none of the old data.
  TRY(CopyUpLocked(!(attr.set_size && attr.size == 0)));
  return upper_->SetAttributes(attr);
}

namespace {

// A mapping of a lower file: the lower's data under the overlay's identity.
class LowerMappable : public Mappable {
 public:
  LowerMappable(std::shared_ptr<Mappable> inner, std::string name, uint64_t ino, uint64_t dev)
      : inner_(std::move(inner)), name_(std::move(name)), ino_(ino), dev_(dev) {}
  Result<size_t> ReadForMapping(uint64_t offset, char* buf, size_t n) override {
    return inner_->ReadForMapping(offset, buf, n);
  }
  bool SharesPages() const override { return inner_->SharesPages(); }
  Result<uint64_t> SharedPage(uint64_t index) override { return inner_->SharedPage(index); }
  // A copy-up later leaves this mapping on the lower file, as on Linux.
  bool Unchanging() const override { return inner_->Unchanging(); }
  std::string MapsName() const override { return name_.empty() ? inner_->MapsName() : name_; }
  uint64_t MapsInode() const override { return ino_; }
  uint64_t MapsDevice() const override { return dev_; }

 private:
  std::shared_ptr<Mappable> inner_;
  std::string name_;
  uint64_t ino_;
  uint64_t dev_;
};

// An open lower object: I/O goes to the lower's own file (for the gofer, its
// donated host fd); stat(2) and the identity are the overlay's.
class LowerFile : public vfs::File {
 public:
  LowerFile(vfs::InodeRef overlay_inode, int flags, vfs::FileRef inner)
      : File(std::move(overlay_inode), flags), inner_(std::move(inner)) {}

  Result<size_t> Read(char* buf, size_t n) override { return inner_->Read(buf, n); }
  Result<size_t> Write(const char* buf, size_t n) override { return inner_->Write(buf, n); }
  Result<size_t> PRead(char* buf, size_t n, uint64_t offset) override {
    return inner_->PRead(buf, n, offset);
  }
  Result<size_t> PWrite(const char* buf, size_t n, uint64_t offset) override {
    return inner_->PWrite(buf, n, offset);
  }
  Result<off_t> Seek(off_t offset, int whence) override { return inner_->Seek(offset, whence); }
  Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) override {
    return inner_->Ioctl(mm, cmd, arg);
  }
  int HostFd() const override { return inner_->HostFd(); }
  std::shared_ptr<Mappable> GetMappable() override {
    std::shared_ptr<Mappable> m = inner_->GetMappable();
    if (m == nullptr) return nullptr;
    auto st = inode_->Stat();
    if (!st.ok()) return m;
    return std::make_shared<LowerMappable>(std::move(m), dentry_ ? dentry_->Path() : "", st->st_ino,
                                           st->st_dev);
  }

 private:
  vfs::FileRef inner_;
};

bool NeedsWrite(int flags) {
  if (flags & O_PATH) return false;
  return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

}  // namespace

// open(2). Regular files opened for writing (or with O_TRUNC) are copied up
// first, as Linux overlayfs does; other types never are. A read-only open
// of a file that is still only in the lower reads the lower directly; it
// keeps seeing the lower's data if the file is copied up later (Linux
// overlayfs behaved the same way before 4.19).
Result<vfs::FileRef> OverlayInode::Open(int flags) {
  vfs::InodeRef real;
  bool generic;
  {
    absl::MutexLock lock(&fs_->mu);
    if (type_ == S_IFDIR) {
      if (NeedsWrite(flags)) return Errno{EISDIR};
    } else if (type_ == S_IFREG && NeedsWrite(flags)) {
      TRY(CopyUpLocked(/*copy_data=*/!(flags & O_TRUNC)));
    }
    if (type_ == S_IFREG && upper_ != nullptr && (flags & O_TRUNC)) {
      vfs::SetAttr trunc;
      trunc.set_size = true;
      TRY(upper_->SetAttributes(trunc));
    }
    real = upper_ != nullptr ? upper_ : lower_;
    // Directories list through ReadDir and upper regular files go through
    // ReadAt/WriteAt of this inode, so the generic file serves both (and
    // keeps fcntl(F_SETFL) flags such as O_APPEND in one place).
    generic = type_ == S_IFDIR || type_ == S_IFLNK || (type_ == S_IFREG && upper_ != nullptr);
  }
  if (generic) return Inode::Open(flags);
  ASSIGN_OR_RETURN(vfs::FileRef inner, real->Open(flags));
  return vfs::FileRef(std::make_shared<LowerFile>(shared_from_this(), flags, std::move(inner)));
}

// ---- The root ----

vfs::InodeRef NewOverlayRoot(vfs::InodeRef upper_root, vfs::InodeRef lower_root) {
  auto fs = std::make_shared<OverlayFs>();
  fs->dev = vfs::NewAnonDevice();
  fs->upper_root = upper_root;
  if (lower_root != nullptr) {
    if (auto st = lower_root->Stat(); st.ok()) {
      fs->lower_dev = st->st_dev;
      // The root shows the lower root's attributes, as a copied-up directory would.
      vfs::SetAttr a;
      a.set_mode = a.set_uid = a.set_gid = a.set_atime = a.set_mtime = true;
      a.mode = st->st_mode & 07777;
      a.uid = st->st_uid;
      a.gid = st->st_gid;
      a.atime = st->st_atim;
      a.mtime = st->st_mtim;
      (void)upper_root->SetAttributes(a);  // best effort: a fixed upper keeps its own
    }
  }
  return std::make_shared<OverlayInode>(std::move(fs), S_IFDIR, std::move(upper_root),
                                        std::move(lower_root), std::weak_ptr<OverlayInode>(), "");
}

}  // namespace husk::overlay
