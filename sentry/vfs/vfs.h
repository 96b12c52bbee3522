// The sentry's VFS: inodes (what a filesystem stores), dentries (a name in a
// directory, with the mount tree and the lookup cache), files (open file
// descriptions) and path resolution. Filesystem implementations live in
// sentry/fsimpl/<fs>/ and only implement Inode (and File where they need
// their own read/write behaviour).
//
// Everything that the sandbox writes stays in the sentry: the gofer
// filesystem is read-only and the root is an overlay with a memory upper.
//
// Lock order: the VFS is driven by one task at a time for now (the process
// model will add Dentry::mu_ before Inode locks).
#ifndef HUSK_SENTRY_VFS_VFS_H_
#define HUSK_SENTRY_VFS_VFS_H_

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/result.h"
#include "sentry/mm/mm.h"
#include "sentry/vfs/perm.h"
#include "sentry/vfs/waiter.h"

namespace husk::vfs {

class Dentry;
class File;
class Inode;
class MountNamespace;
using InodeRef = std::shared_ptr<Inode>;
using FileRef = std::shared_ptr<File>;

struct Dirent {
  std::string name;
  uint64_t ino = 0;
  uint8_t type = DT_UNKNOWN;  // DT_*
};

// Attribute changes, applied together (chmod/chown/truncate/utimes).
struct SetAttr {
  bool set_mode = false;
  mode_t mode = 0;
  bool set_size = false;
  uint64_t size = 0;
  bool set_uid = false, set_gid = false;
  uid_t uid = 0;
  gid_t gid = 0;
  bool set_atime = false, set_mtime = false;
  timespec atime{}, mtime{};
};

// Allocates inode numbers and a device number per filesystem instance.
uint64_t NextInodeNumber();
dev_t NewAnonDevice();

class Inode : public std::enable_shared_from_this<Inode> {
 public:
  virtual ~Inode() = default;

  virtual Result<struct stat> Stat() = 0;
  // S_IFMT bits of the mode; cheap and stable for the inode's life.
  virtual mode_t Type() = 0;
  bool IsDir() { return Type() == S_IFDIR; }
  bool IsSymlink() { return Type() == S_IFLNK; }
  bool IsRegular() { return Type() == S_IFREG; }

  // Directories. Names are single components (never "", ".", "..").
  virtual Result<InodeRef> Lookup(const std::string& name) { return Errno{ENOTDIR}; }
  // A hint before Lookup(names[0]) on a path walk that will go on with
  // names[1], names[2], ... (none "." or ".."): a filesystem whose lookups
  // are round trips (the gofer's) may resolve them all at once and answer
  // the coming Lookups from that. Nothing by default.
  virtual void Prefetch(const std::vector<std::string>& names) {}
  // All entries except "." and "..".
  virtual Result<std::vector<Dirent>> ReadDir() { return Errno{ENOTDIR}; }
  virtual Result<InodeRef> Create(const std::string& name, mode_t mode) { return Errno{EROFS}; }
  virtual Result<InodeRef> Mkdir(const std::string& name, mode_t mode) { return Errno{EROFS}; }
  virtual Result<InodeRef> Symlink(const std::string& name, const std::string& target) {
    return Errno{EROFS};
  }
  // A FIFO, socket or whiteout (a character device 0:0) node; mode holds the
  // type and permission bits (mknod(2); regular files go through Create).
  virtual Result<InodeRef> Mknod(const std::string& name, mode_t mode) { return Errno{EROFS}; }
  // Unix socket names the host reaches (a read-write volume's): a host
  // socket of `type` bound at name, its node made with mode's permission
  // bits; the node and the bound socket. EOPNOTSUPP where the filesystem
  // has no host side (the name is then the sandbox's alone).
  virtual Result<std::pair<InodeRef, UniqueFd>> BindHostSocket(const std::string& name, mode_t mode,
                                                               int type) {
    return Errno{EOPNOTSUPP};
  }
  // A host socket of `type` connected to the host's listener at this
  // socket node; EOPNOTSUPP where the host is not to be reached.
  virtual Result<UniqueFd> ConnectHostSocket(int type) { return Errno{EOPNOTSUPP}; }
  virtual Status Unlink(const std::string& name) { return Errno{EROFS}; }
  // A new name for `target`, an inode of the same filesystem that is not a
  // directory (link(2)); EPERM where the filesystem has no hard links.
  // NOLINTNEXTLINE(performance-unnecessary-value-param): a reference of their own for overrides.
  virtual Status Link(const std::string& name, InodeRef target) { return Errno{EPERM}; }
  virtual Status Rmdir(const std::string& name) { return Errno{EROFS}; }
  // Moves name to new_dir/new_name, replacing a compatible target.
  virtual Status Rename(const std::string& name, Inode& new_dir, const std::string& new_name) {
    return Errno{EROFS};
  }
  // renameat2(RENAME_WHITEOUT): Rename, and in the same step a whiteout (a
  // character device 0:0, mode 0) takes the old name; returns the whiteout
  // (null when nothing moved: two names of one inode). EINVAL where the
  // filesystem has no whiteouts.
  virtual Result<InodeRef> RenameWhiteout(const std::string& name, Inode& new_dir,
                                          const std::string& new_name) {
    return Errno{EINVAL};
  }
  // renameat2(RENAME_EXCHANGE): the two names, both existing, swap their
  // inodes atomically. EINVAL where the filesystem cannot.
  virtual Status Exchange(const std::string& name, Inode& new_dir, const std::string& new_name) {
    return Errno{EINVAL};
  }

  // Symbolic links.
  virtual Result<std::string> Readlink() { return Errno{EINVAL}; }
  // A "magic" link (/proc/[pid]/fd/N, /proc/[pid]/exe): following it gives
  // the open file's dentry itself rather than resolving the link's text.
  // A null dentry: an ordinary link.
  virtual Result<std::shared_ptr<Dentry>> FollowMagic() { return std::shared_ptr<Dentry>(); }

  // Opens the inode; the default gives a generic file over ReadAt/WriteAt.
  virtual Result<FileRef> Open(int flags);
  // Data of regular files and devices.
  virtual Result<size_t> ReadAt(char* buf, size_t n, uint64_t offset) { return Errno{EINVAL}; }
  virtual Result<size_t> WriteAt(const char* buf, size_t n, uint64_t offset) {
    return Errno{EINVAL};
  }
  virtual Status SetAttributes(const SetAttr& attr) { return Errno{EPERM}; }
  // lseek(2)'s SEEK_DATA (hole false) and SEEK_HOLE (hole true) from
  // offset, which is below the size. The default knows no holes: data up to
  // the size, the hole at the end.
  virtual Result<off_t> SeekData(off_t offset, bool hole);
  // fallocate(2) on a regular file: mode is 0, FALLOC_FL_KEEP_SIZE or
  // FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE (the syscall checked the rest);
  // a filesystem without it answers EOPNOTSUPP.
  virtual Status Allocate(int mode, uint64_t offset, uint64_t len) { return Errno{EOPNOTSUPP}; }
  // statfs(2) of the filesystem the inode is on. The default describes a
  // filesystem in sentry memory (TMPFS_MAGIC).
  virtual Result<struct statfs> Statfs();
  // Extended attributes, by full name ("user.x"); the syscall layer checks
  // names, sizes and permissions first. A filesystem without them answers
  // EOPNOTSUPP and lists none. flags: XATTR_CREATE, XATTR_REPLACE.
  virtual Result<std::string> GetXattr(const std::string& name) { return Errno{EOPNOTSUPP}; }
  virtual Result<std::vector<std::string>> ListXattr() { return std::vector<std::string>(); }
  virtual Status SetXattr(const std::string& name, const std::string& value, int flags) {
    return Errno{EOPNOTSUPP};
  }
  virtual Status RemoveXattr(const std::string& name) { return Errno{EOPNOTSUPP}; }
  // The pages behind MAP_SHARED mappings, for files that keep their data in
  // the memory file (see Mappable::SharesPages and SharedPage).
  virtual bool SharesPages() { return false; }
  virtual Result<uint64_t> SharedPage(uint64_t index) { return Errno{ENODEV}; }
  // See Mappable::Unchanging.
  virtual bool Unchanging() { return false; }
  // See Mappable::NoteSharedWrite and Mappable::Sync. Sync also serves
  // fsync(2): what the sentry holds of the file goes to where the file
  // lives (a read-write volume's host file).
  virtual void NoteSharedWrite(uint64_t index) {}
  virtual Status Sync(uint64_t offset, uint64_t len) { return Ok(); }
  // File seals (fcntl F_GET_SEALS/F_ADD_SEALS, memfd_create(2)): EINVAL for
  // files that cannot be sealed (anything but tmpfs files). AddSeals gets
  // known seal bits only.
  virtual Result<int> Seals() { return Errno{EINVAL}; }
  // Whether a file with no name may get one with link(2): an O_TMPFILE file
  // opened without O_EXCL (Linux's I_LINKABLE). Others with no link are
  // ENOENT.
  virtual bool LinkableUnnamed() { return false; }
  virtual Status AddSeals(int seals) { return Errno{EINVAL}; }
  // A shared mapping that may write (now, or after mprotect) was made: while
  // `m` lives, F_SEAL_WRITE cannot be added (EBUSY).
  virtual void NoteWritableMapping(const std::shared_ptr<Mappable>& m) {}
  // Whether reads and writes ignore the file offset (character devices).
  virtual bool Stream() { return false; }
  // Whether a cached dentry for this inode may still be used (Linux's
  // d_revalidate): false for /proc entries of a process that has gone, so
  // the next lookup fails as on Linux instead of reaching a dead object.
  virtual bool Revalidate() { return true; }
  // An inotify watch now names this inode: a filesystem whose files change
  // outside the sandbox starts reporting those changes (vfs/external.h).
  virtual void StartWatching() {}
};

class Dentry : public std::enable_shared_from_this<Dentry> {
 public:
  Dentry(std::string name, std::shared_ptr<Dentry> parent, InodeRef inode)
      : name_(std::move(name)), parent_(std::move(parent)), inode_(std::move(inode)) {}
  // A dentry for a file that has no name (O_TMPFILE, memfd_create): never
  // in its parent's cache, shown as "<parent>/<name> (deleted)".
  static std::shared_ptr<Dentry> NewDeleted(std::string name, std::shared_ptr<Dentry> parent,
                                            InodeRef inode) {
    auto d = std::make_shared<Dentry>(std::move(name), std::move(parent), std::move(inode));
    d->deleted_ = true;
    return d;
  }
  // Frees the parent chain and the cache below without recursing (a chain
  // is as deep as the application made it).
  ~Dentry();
  Dentry(const Dentry&) = delete;
  Dentry& operator=(const Dentry&) = delete;

  const std::string& name() const { return name_; }
  const InodeRef& inode() const { return inode_; }
  std::shared_ptr<Dentry> parent() const { return parent_; }
  // Root of a filesystem mounted on this dentry in the initial mount
  // namespace, if any (other namespaces keep theirs in MountNamespace).
  std::shared_ptr<Dentry> mounted() const { return mounted_; }
  // For the root dentry of a mount: the dentry it covers.
  std::shared_ptr<Dentry> mountpoint() const { return mountpoint_; }

  // The child named `name`, from the cache or the inode (positive entries
  // only are cached; every change made through the VFS updates the cache).
  // The cache is bounded: see ShrinkDentryCache.
  Result<std::shared_ptr<Dentry>> Child(const std::string& name);
  void AddChild(const std::string& name, InodeRef inode);
  // The cached children (busy checks of umount2 walk them).
  const std::map<std::string, std::shared_ptr<Dentry>>& CachedChildren() const { return children_; }
  // See revalidate_.
  void SetRevalidate() { revalidate_ = true; }
  // Whether `name` is in the cache (no lookup).
  bool HasCachedChild(const std::string& name) const { return children_.contains(name); }
  void ForgetChild(const std::string& name);
  // Moves the cached child `name` under new_parent as new_name.
  void MoveChild(const std::string& name, Dentry& new_parent, const std::string& new_name);
  // Swaps the cached children `name` and new_parent's `new_name`.
  void ExchangeChild(const std::string& name, Dentry& new_parent, const std::string& new_name);

  // Mounts a filesystem whose root is `root` on this dentry in the initial
  // mount namespace (boot's mounts); spec is what the mount table shows of
  // it. mount(2) goes through MountNamespace instead.
  std::shared_ptr<Dentry> Mount(InodeRef root, const struct MountSpec& spec);
  std::shared_ptr<Dentry> Mount(InodeRef root);

  // Absolute path from the VFS root, e.g. "/usr/bin/ls"; a dentry whose
  // name was removed gets " (deleted)" appended, as Linux's d_path does.
  std::string Path() const;
  // The path as a task whose root is `root` sees it (d_path against a
  // chroot): relative to root when the walk up meets it; otherwise the path
  // from the VFS root, with *reachable set false (getcwd's "(unreachable)").
  std::string PathFrom(const Dentry* root, bool* reachable) const;
  // Whether the name was unlinked, removed or renamed over (d_unlinked).
  bool deleted() const { return deleted_; }
  // For a nameless file reached through a magic link (a pipe, a terminal):
  // the open file description that opening this dentry shares.
  const std::shared_ptr<File>& magic_file() const { return magic_file_; }
  void set_magic_file(std::shared_ptr<File> f) { magic_file_ = std::move(f); }
  // The name was removed while something still used the dentry (an open
  // file, a working directory): the release hook (SetDentryReleaseHook) runs
  // when the last reference goes, as Linux reports IN_DELETE_SELF from the
  // final dput of an unlinked dentry.
  void set_notify_release() { notify_release_ = true; }

  // Dentries form cycles (a child holds its parent; the parent's cache and
  // mount hold the children). The owner of a tree (the kernel, a test)
  // calls this on its root when it is done with it, like the dcache being
  // shrunk at unmount: every cached child and mount below is dropped, and
  // dentries still referenced elsewhere stay valid, detached.
  void ReleaseTree();

 private:
  friend void ShrinkDentryCache();
  friend class MountNamespace;
  // Puts a new cached child on the cache's books (and shrinks it when due).
  void Cache(const std::shared_ptr<Dentry>& child);

  // Marks a dentry whose name is gone; a removed directory is empty, so its
  // cache is dropped too (breaking its cycles).
  void MarkDeleted();

  std::string name_;
  std::shared_ptr<Dentry> parent_;
  InodeRef inode_;
  std::map<std::string, std::shared_ptr<Dentry>> children_;
  std::shared_ptr<Dentry> mounted_;
  std::shared_ptr<Dentry> mountpoint_;
  bool deleted_ = false;
  std::shared_ptr<File> magic_file_;
  uint64_t last_used_ = 0;  // a tick of the dentry cache's clock
  bool notify_release_ = false;
  // How many mount namespaces other than the initial one hold this dentry
  // as the root of one of their mounts.
  int ns_refs_ = 0;
  // The directory's inode is reachable through another dentry tree too (a
  // bind mount's, or the tree a bind mount was made from): cached children
  // are checked against the inode before use, so that a change made through
  // one tree is seen through the other. Inherited by new children.
  bool revalidate_ = false;
};
using DentryRef = std::shared_ptr<Dentry>;

// The id mountinfo shows for the mount d belongs to (statx's stx_mnt_id,
// fdinfo's mnt_id) in namespace ns (null: the initial one); 0 if it is in
// no mount of the table.
int MountId(const Dentry& d, const MountNamespace* ns = nullptr);
// Whether two dentries lie in the same mount (rename and link cannot cross
// mounts: EXDEV).
bool SameMount(const Dentry& a, const Dentry& b);

// What /proc/<pid>/mounts and mountinfo show of a mount.
struct MountSpec {
  std::string type = "tmpfs";
  std::string source = "none";
  std::string options = "rw";  // per-mount options ("rw,nosuid,nodev")
};
// The initial mount namespace's table: the root mount, then every
// Dentry::Mount (and mount(2) there) in order, for as long as the mounted
// root lives.
void SetRootMount(const DentryRef& root, const MountSpec& spec);
// /proc/<pid>/mounts (fstab(5) lines) or, with info, mountinfo (proc(5)),
// of namespace ns (null: the initial one).
std::string RenderMountTable(bool info, const MountNamespace* ns = nullptr);

// A mount namespace (mount_namespaces(7)): which filesystem is mounted on
// which dentry, with each mount's flags. Dentries are shared by every
// namespace (a mount's root dentry belongs to the mount); what differs is
// which mounts a path walk crosses. The initial namespace keeps its mounts
// in Dentry::mounted() links and the global table above (SetRootMount,
// Dentry::Mount); a namespace made by unshare(CLONE_NEWNS) or
// clone(CLONE_NEWNS) starts as a copy of its creator's and keeps its own
// map, so that later mounts in either are invisible to the other.
//
// Every member is called with the kernel lock held; mu_ guards the table
// for readers of /proc that may race with a change.
class MountNamespace {
 public:
  // The per-mount flags mount(2) sets and the VFS checks: MS_RDONLY (1),
  // MS_NOSUID (2), MS_NODEV (4), MS_NOEXEC (8), and the atime ones shown.
  // (Numbers, so that this header need not include <sys/mount.h>, which
  // clashes with <linux/fs.h>.)
  static constexpr unsigned long kReadOnly = 0x1, kNoSuid = 0x2, kNoDev = 0x4, kNoExec = 0x8;
  static constexpr unsigned long kMountFlags =
      0x1 | 0x2 | 0x4 | 0x8 | 0x400 | 0x800 | (1UL << 21) | (1UL << 24);
  MountNamespace() = default;
  ~MountNamespace();
  MountNamespace(const MountNamespace&) = delete;
  MountNamespace& operator=(const MountNamespace&) = delete;

  // The initial namespace: the global table and the Dentry::mounted() links.
  static MountNamespace& Initial();
  // A new namespace holding a copy of every mount of `from` (null: the
  // initial namespace), with new ids (copy_mnt_ns).
  static std::shared_ptr<MountNamespace> Copy(const MountNamespace* from);

  // The root of what is mounted on d here (the topmost of a stack is found
  // by asking again with the result), or null.
  DentryRef MountedOn(const Dentry& d) const;
  // Whether d is the root dentry of a mount of this namespace.
  bool IsMountRoot(const Dentry& d) const;
  // The flags (MS_RDONLY, ...) of the mount d lies in; 0 for the mounts
  // made at boot (their options are for show: the filesystems enforce what
  // they must) and for detached mounts.
  unsigned long FlagsOf(const Dentry& d) const;
  // Counts (in its use_count) the writers of the mount d lies in: open(2)
  // keeps what this returns in a file opened for writing, and a remount
  // read-only is EBUSY while one lives. Null when d is in no mount here.
  std::shared_ptr<void> WriterRef(const Dentry& d) const;

  // mount(2) of a new filesystem whose root is `root` on `on` (the top of
  // what the walk reached), flags MS_RDONLY, MS_NOSUID, ... Returns the new
  // mount's root dentry.
  DentryRef AddMount(const DentryRef& on, InodeRef root, const MountSpec& spec,
                     unsigned long flags);
  // mount(MS_BIND): `source`'s directory or file seen at `on` too, with the
  // flags of source's mount; recursive: the mounts below source as well.
  // ENOTDIR when one is a directory and the other not.
  Result<DentryRef> AddBind(const DentryRef& on, const DentryRef& source, bool recursive);
  // mount(MS_REMOUNT): new flags for the mount whose root is `root`.
  // EINVAL if it is no mount root here; EBUSY going read-only while a file
  // of it is open for writing.
  Status Remount(const Dentry& root, unsigned long flags);
  // umount2(2) of the mount whose root is `root`: EINVAL if it is no mount
  // root here (or is the namespace's root); without detach, EBUSY while a
  // mount sits below it or something (an open file, a working directory,
  // `holders` references of the caller's excepted) uses it. detach takes
  // the mounts below with it and leaves users working on the detached tree.
  Status Unmount(const DentryRef& root, bool detach, long holders);

  std::string Render(bool info) const;
  int MountId(const Dentry& d) const;

 private:
  struct Record {
    int id = 0;
    int parent_id = 0;
    std::weak_ptr<Dentry> root;
    MountSpec spec;
    unsigned long flags = 0;
    bool enforced = false;  // made or changed by mount(2): flags apply
    std::shared_ptr<int> writers = std::make_shared<int>(0);
  };
  const Record* Find(const Dentry& root) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Record* Find(const Dentry& root) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Attach(const DentryRef& on, const DentryRef& root, Record rec);
  void Detach(const DentryRef& root);
  int ParentId(const Dentry& on) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  friend class Dentry;
  friend void SetRootMount(const DentryRef& root, const MountSpec& spec);

  bool initial_ = false;
  bool any_enforced_ = false;  // some mount has flags that apply
  mutable absl::Mutex mu_;
  std::vector<Record> records_ ABSL_GUARDED_BY(mu_);
  // Mountpoint -> the mountpoint itself and the root mounted on it (not in
  // the initial namespace).
  std::map<const Dentry*, std::pair<DentryRef, DentryRef>> mounted_;
};

// The namespace a task with FsContext fs walks (fs.mnt_ns, or the initial).
const MountNamespace& NamespaceOf(const struct FsContext& fs);
MountNamespace& MutableNamespaceOf(const struct FsContext& fs);
// Whether d has something mounted on it in fs's namespace (rmdir, rename:
// EBUSY).
bool IsMountpoint(const struct FsContext& fs, const Dentry& d);
// EROFS when d lies in a read-only mount of fs's namespace.
Status CheckWritableMount(const struct FsContext& fs, const Dentry& d);

// The dentry cache. Every looked-up child stays cached while something uses
// it (an open file, a working directory, a cached child of its own, a
// mount); the rest, which hold gofer fids and host descriptors through their
// inodes, are evicted least recently used first once the cache holds more
// than the limit, like Linux's dcache shrinker. Objects whose state lives
// only in the cache (mountpoints, nameless magic-link dentries) are never
// evicted. Called with the kernel lock held (the VFS is not yet internally
// locked).
void SetDentryCacheLimit(size_t limit);
// Cached child dentries alive now, evictable or not.
size_t CachedDentries();
// Evicts unused dentries until the cache is back under its limit.
void ShrinkDentryCache();

// An open file description (shared by dup'd descriptors).
class File {
 public:
  File(InodeRef inode, int flags) : inode_(std::move(inode)), flags_(flags) {}
  virtual ~File();

  const InodeRef& inode() const { return inode_; }
  const DentryRef& dentry() const { return dentry_; }
  void set_dentry(DentryRef d) { dentry_ = std::move(d); }
  // O_ACCMODE bits and status flags (O_APPEND, O_NONBLOCK, ...).
  int flags() const { return flags_; }
  void set_status_flags(int f);
  bool readable() const { return (flags_ & O_ACCMODE) != O_WRONLY && !(flags_ & O_PATH); }
  // A file opened for writing holds its mount's writer count (see
  // MountNamespace::WriterRef) for as long as it lives.
  void set_mount_writer(std::shared_ptr<void> w) { mount_writer_ = std::move(w); }
  bool writable() const { return (flags_ & O_ACCMODE) != O_RDONLY && !(flags_ & O_PATH); }

  virtual Result<size_t> Read(char* buf, size_t n);
  virtual Result<size_t> Write(const char* buf, size_t n);
  virtual Result<size_t> PRead(char* buf, size_t n, uint64_t offset);
  virtual Result<size_t> PWrite(const char* buf, size_t n, uint64_t offset);
  virtual Result<off_t> Seek(off_t offset, int whence);
  virtual Result<struct stat> Stat() { return inode_->Stat(); }
  // ioctl(2); the file copies its argument through mm. ENOTTY by default.
  virtual Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) {
    return Errno{ENOTTY};
  }
  // Next directory entries (with "." and ".."), starting at the file's
  // position; `fits` says whether one more entry fits the caller's buffer.
  Result<std::vector<Dirent>> ReadDirBatch(size_t max_entries_hint,
                                           const std::function<bool(const Dirent&)>& fits);
  // What backs a mmap of this file (null: ENODEV).
  virtual std::shared_ptr<Mappable> GetMappable();
  // The file holds (or held) flock or OFD locks: they go when it does (the
  // release hook, see SetFileReleaseHook).
  void set_uses_locks() { uses_locks_ = true; }

  // fcntl(2)'s per-description settings (Linux's struct fown_struct and
  // its lease): who is signalled for the file (F_SETOWN, F_SETOWN_EX), with
  // which signal (F_SETSIG; 0 is SIGIO), and the lease taken (F_SETLEASE).
  struct Owner {
    int type = F_OWNER_TID;  // F_OWNER_TID, F_OWNER_PID or F_OWNER_PGRP
    int id = 0;              // 0: no owner
    // Who set it (__f_setown's uid and euid): sigio_perm lets the signal
    // reach only processes these ids may signal.
    uint32_t uid = 0, euid = 0;
  };
  const Owner& owner() const { return owner_; }
  void set_owner(Owner o) { owner_ = o; }
  int owner_signal() const { return owner_signal_; }
  void set_owner_signal(int sig) { owner_signal_ = sig; }
  int lease() const { return lease_; }
  void set_lease(int type) { lease_ = type; }
  // The file was opened by open(2): its last close is reported (the close
  // hook, see SetFileCloseHook), as Linux's __fput calls fsnotify_close.
  void set_notify_close() { notify_close_ = true; }
  // A host descriptor behind this file, for poll-like waiting (stdio); -1 if none.
  virtual int HostFd() const { return -1; }
  // poll(2): the events of `mask` that hold now, plus POLLERR and POLLHUP
  // whenever they hold. Files that never block are always readable and
  // writable (Linux's DEFAULT_POLLMASK).
  virtual uint32_t Readiness(uint32_t mask) {
    return mask & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
  }
  // The queue notified whenever Readiness may have changed; null if it only
  // changes through the caller's own I/O (or, for host files, see HostFd).
  virtual WaitQueue* EventQueue() { return nullptr; }

 protected:
  InodeRef inode_;
  DentryRef dentry_;
  int flags_;
  bool uses_locks_ = false;
  Owner owner_;
  int owner_signal_ = 0;
  int lease_ = F_UNLCK;
  bool notify_close_ = false;
  std::shared_ptr<void> mount_writer_;
  off_t offset_ = 0;
  std::vector<Dirent> dir_snapshot_;  // taken when a listing starts at position 0
};

// What runs when an open file description that held locks goes (the
// kernel's file-lock table sets it).
void SetFileReleaseHook(void (*hook)(const File&));
// What runs when an open file description marked set_notify_close goes, and
// when a dentry marked set_notify_release goes (with its inode); inotify sets
// both.
void SetFileCloseHook(void (*hook)(const File&));
void SetDentryReleaseHook(void (*hook)(Inode&));

// Per-task filesystem context.
struct FsContext {
  DentryRef root;
  DentryRef cwd;
  mode_t umask = 022;
  // The task's mount namespace; null: the initial one. (Linux keeps it in
  // the nsproxy; here it sits with root and cwd, which unshare(CLONE_NEWNS)
  // unshares anyway.)
  std::shared_ptr<MountNamespace> mnt_ns;
};

inline constexpr int kMaxSymlinks = 40;
inline constexpr size_t kPathMax = 4096;

// Resolves path relative to `start` (used when the path is relative).
// follow: follow a symlink in the last component. Every directory walked,
// those in symlink targets included, needs search permission for `creds`
// (EACCES); the default is the kernel's own, which may search anything, so
// a syscall must pass its caller's.
Result<DentryRef> Resolve(const FsContext& fs, const DentryRef& start, const std::string& path,
                          bool follow, const Creds& creds = KernelCreds());

// Resolves all but the last component. For "a/b/c" gives (dentry of a/b, "c").
// The last name is "" for "/", "." or ".." for those, and must_be_dir is set
// when the path ends in a slash.
struct ParentAndName {
  DentryRef parent;
  std::string name;
  bool must_be_dir = false;
};
// The parent itself needs search permission too, as on Linux.
Result<ParentAndName> ResolveParent(const FsContext& fs, const DentryRef& start,
                                    const std::string& path, const Creds& creds = KernelCreds());

}  // namespace husk::vfs

#endif  // HUSK_SENTRY_VFS_VFS_H_
