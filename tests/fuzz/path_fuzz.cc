// Fuzzes path resolution (vfs::Resolve, vfs::ResolveParent) over a tmpfs
// tree full of awkward symlinks: loops, a self link, absolute and relative
// links, "..", a chain longer than the 40 links Linux follows, links out of
// a chroot and across a mount, a directory nobody may search, and a removed
// working directory. The dentry cache is kept small so that lookups evict
// and Child/ForgetChild/ShrinkDentryCache run all the time.
//
// Input: byte 0 holds flags (kFollow...), byte 1 picks the start directory,
// the rest is the path.
//
// Checked on every successful resolution: the result lies under the root of
// the resolution (a chroot is never escaped), and resolving its path again
// from that root without following gives the same inode. After a shrink the
// cache holds no more dentries than the tree has names.
#include <stddef.h>
#include <stdint.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "sentry/fsimpl/tmpfs/tmpfs.h"
#include "sentry/vfs/perm.h"
#include "sentry/vfs/vfs.h"

namespace husk {
namespace {

// Byte 0.
constexpr uint8_t kFollow = 1 << 0;
constexpr uint8_t kParent = 1 << 1;        // ResolveParent instead of Resolve
constexpr uint8_t kUnprivileged = 1 << 2;  // uid 1000 without capabilities
constexpr uint8_t kChroot = 1 << 3;        // the root is /jail
constexpr uint8_t kForget = 1 << 4;        // ForgetChild the result afterwards
constexpr uint8_t kShrink = 1 << 5;        // ShrinkDentryCache afterwards

constexpr size_t kCacheLimit = 16;
constexpr int kChain = 45;  // links chain0 -> chain1 -> ... -> chain44 -> /a

void Check(bool ok, const char* what, const std::string& path) {
  if (!ok) {
    fprintf(stderr, "path_fuzz: %s (path \"%s\")\n", what, path.c_str());
    abort();
  }
}

vfs::InodeRef Must(Result<vfs::InodeRef> r, const char* what) {
  Check(r.ok(), "cannot build the tree", what);
  return *r;
}

class World {
 public:
  World() {
    vfs::SetDentryCacheLimit(kCacheLimit);
    root_ = std::make_shared<vfs::Dentry>("/", nullptr, tmpfs::NewTmpfsRoot(0755));
    vfs::Inode& r = *root_->inode();
    vfs::InodeRef a = Dir(r, "a");
    vfs::InodeRef b = Dir(*a, "b");
    Dir(*b, "c");
    Must(b->Create("file", 0644), "file");
    Link(*b, "up", "../..");
    Link(*b, "self", ".");
    Link(r, "loop1", "loop2");
    Link(r, "loop2", "loop1");
    Link(r, "self", "self");
    Link(r, "abs", "/a/b");
    Link(r, "rel", "a/b/../b/c");
    Link(r, "dotdot", "..");
    Link(r, "dangling", "/nonexistent");
    Link(r, "trail", "a/");
    Link(r, "filedir", "a/b/file/");
    Link(r, "long", std::string(300, 'x'));
    for (int i = 0; i < kChain; i++) {
      Link(r, "chain" + std::to_string(i),
           i + 1 < kChain ? "chain" + std::to_string(i + 1) : std::string("/a"));
    }
    vfs::InodeRef jail = Dir(r, "jail");
    Dir(*jail, "in");
    Link(*jail, "esc", "../../..");
    Link(*jail, "abs", "/a/b");
    Link(*jail, "root", "/");
    vfs::InodeRef noperm = Dir(r, "noperm");
    Must(noperm->Create("f", 0644), "noperm/f");
    Dir(r, "mnt");
    Dir(r, "gone");

    // A second tmpfs mounted on /mnt, with links that leave it.
    vfs::InodeRef mroot = tmpfs::NewTmpfsRoot(0755);
    vfs::InodeRef deep = Dir(*mroot, "deep");
    Link(*deep, "x", "../..");
    Link(*mroot, "back", "/a");
    Link(*mroot, "up", "..");
    auto mnt = root_->Child("mnt");
    Check(mnt.ok(), "no /mnt", "/mnt");
    mnt_root_ = (*mnt)->Mount(mroot);

    // A working directory that was removed (rmdir while still in use).
    auto gone = root_->Child("gone");
    Check(gone.ok(), "no /gone", "/gone");
    gone_ = *gone;
    Check(r.Rmdir("gone").ok(), "cannot remove /gone", "/gone");
    root_->ForgetChild("gone");

    // Last, or building below it would need the permission it loses.
    vfs::SetAttr none;
    none.set_mode = true;
    none.mode = 0;
    Check(noperm->SetAttributes(none).ok(), "cannot chmod /noperm", "/noperm");
    names_ = 64 + kChain;  // every name above, generously
  }

  void Run(const uint8_t* data, size_t size) {
    if (size < 2) return;
    const uint8_t flags = data[0];
    std::string path(reinterpret_cast<const char*>(data) + 2, size - 2);

    vfs::FsContext fs;
    fs.root = root_;
    if (flags & kChroot) fs.root = Lookup(root_, "jail");
    fs.cwd = StartDir(data[1], fs.root);
    vfs::Creds user{1000, 1000, {}, 0};
    const vfs::Creds& creds = (flags & kUnprivileged) ? user : vfs::KernelCreds();

    vfs::DentryRef result;
    if (flags & kParent) {
      auto r = vfs::ResolveParent(fs, fs.cwd, path, creds);
      if (verbose_) Report(r.ok() ? 0 : r.error(), r.ok() ? r->parent->Path() + " " + r->name : "");
      if (r.ok()) {
        Check(r->parent->inode()->IsDir(), "ResolveParent gave a non-directory", path);
        Check(r->name.size() <= 255, "ResolveParent gave a name longer than NAME_MAX", path);
        result = r->parent;
      }
    } else {
      auto r = vfs::Resolve(fs, fs.cwd, path, (flags & kFollow) != 0, creds);
      if (verbose_) Report(r.ok() ? 0 : r.error(), r.ok() ? (*r)->Path() : "");
      if (r.ok()) result = *r;
    }
    // A relative path from a working directory outside the root (chroot
    // without chdir, or a removed directory) may end outside it, as on Linux.
    std::string unused;
    bool inside = (!path.empty() && path[0] == '/') || Under(*fs.cwd, *fs.root, &unused);
    if (result != nullptr && inside) {
      std::string again;
      Check(Under(*result, *fs.root, &again), "the result escaped the root", path);
      if (!again.empty()) {
        auto r = vfs::Resolve(fs, fs.root, again, false);
        Check(r.ok() && (*r)->inode() == result->inode(),
              "resolving the result's own path again gives another inode", path);
      }
      if ((flags & kForget) && Forgettable(*result, fs)) {
        result->parent()->ForgetChild(result->name());
      }
    }
    if (flags & kShrink) {
      result = nullptr;
      fs = vfs::FsContext();
      vfs::ShrinkDentryCache();
      Check(vfs::CachedDentries() <= names_, "the dentry cache outgrew the tree", path);
    }
  }

 private:
  static void Report(int err, const std::string& what) {
    fprintf(stderr, "path_fuzz: errno %d %s\n", err, what.c_str());
  }
  static vfs::InodeRef Dir(vfs::Inode& parent, const std::string& name) {
    return Must(parent.Mkdir(name, 0755), name.c_str());
  }
  static void Link(vfs::Inode& parent, const std::string& name, const std::string& target) {
    Must(parent.Symlink(name, target), name.c_str());
  }
  static vfs::DentryRef Lookup(const vfs::DentryRef& dir, const std::string& name) {
    auto d = dir->Child(name);
    Check(d.ok(), "lost a directory of the tree", name);
    return *d;
  }

  vfs::DentryRef StartDir(uint8_t pick, const vfs::DentryRef& root) {
    switch (pick % 8) {
      case 0:
        return root;
      case 1:
        return Lookup(Lookup(root_, "a"), "b");
      case 2:
        return mnt_root_;
      case 3:
        return Lookup(Lookup(root_, "jail"), "in");
      case 4:
        return Lookup(Lookup(Lookup(root_, "a"), "b"), "file");  // not a directory
      case 5:
        return Lookup(mnt_root_, "deep");
      case 6:
        return gone_;
      default:
        return Lookup(root_, "noperm");
    }
  }

  // Whether d lies under root (through mounts); if so, *path is its path
  // relative to root ("" when d is the removed directory or under it).
  static bool Under(const vfs::Dentry& d, const vfs::Dentry& root, std::string* path) {
    std::vector<const vfs::Dentry*> chain;
    bool deleted = false;
    const vfs::Dentry* cur = &d;
    while (cur != &root) {
      deleted |= cur->deleted();
      if (cur->mountpoint() != nullptr) {
        // A mount's root: its name is the covered dentry's.
        chain.push_back(cur);
        cur = cur->mountpoint()->parent().get();
      } else if (cur->parent() != nullptr) {
        chain.push_back(cur);
        cur = cur->parent().get();
      } else {
        // The top of the tree without meeting root. The removed working
        // directory is outside every root: resolving from it may end there.
        return false;
      }
      if (cur == nullptr) return false;
    }
    path->clear();
    if (deleted) return true;
    *path = "/";
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      if (it != chain.rbegin()) *path += '/';
      *path += (*it)->name();
    }
    return true;
  }

  // ForgetChild may drop any cached name but the ones whose dentries carry
  // state of their own (mountpoints) or that this world holds on to.
  bool Forgettable(const vfs::Dentry& d, const vfs::FsContext& fs) const {
    return d.parent() != nullptr && d.mounted() == nullptr && d.mountpoint() == nullptr &&
           &d != fs.root.get() && &d != gone_.get();
  }

  vfs::DentryRef root_;
  vfs::DentryRef mnt_root_;
  vfs::DentryRef gone_;
  size_t names_ = 0;
  const bool verbose_ = getenv("HUSK_FUZZ_VERBOSE") != nullptr;  // the outcome of each input
};

}  // namespace
}  // namespace husk

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static husk::World* world = new husk::World();  // kept for the whole run
  world->Run(data, size);
  return 0;
}
