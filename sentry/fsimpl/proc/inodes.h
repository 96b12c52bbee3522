// procfs internals: the inode kinds every /proc entry is built from. Only
// proc/*.cc include this header.
//
// Lock order: procfs holds no locks; its inodes are immutable and all
// dynamic state lives behind ProcProvider.
#ifndef HUSK_SENTRY_FSIMPL_PROC_INODES_H_
#define HUSK_SENTRY_FSIMPL_PROC_INODES_H_

#include <time.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sentry/fsimpl/proc/proc.h"
#include "sentry/vfs/vfs.h"

namespace husk::procfs {

// One procfs instance.
struct ProcFs {
  std::shared_ptr<ProcProvider> provider;
  dev_t dev;
  timespec mounted;
  // What statfs(2) tells of it: PROC_SUPER_MAGIC, or CGROUP2_SUPER_MAGIC
  // for the cgroup2 instance built from the same inodes.
  long magic = 0x9fa0;
};

// Inode numbers of per-process entries are derived from the pid (and the
// thread id or fd), so the same entry has the same number in every lookup
// and in its parent's listing. Root entries take numbers from
// vfs::NextInodeNumber(), far below these ranges.
uint64_t PidIno(int pid, unsigned slot);
uint64_t ThreadIno(int pid, int tid, unsigned slot);
uint64_t FdIno(int pid, int fd);
uint64_t FdinfoIno(int pid, int fd);

// Parses a decimal pid or fd ("0" allowed, no sign, no leading zeros).
bool ParseNumber(const std::string& name, int* out);

// Parses what a /proc write handler takes as a number, as the kernel's
// kstrtoll(s, 0) does: an optional sign, then decimal, octal after "0" or
// hex after "0x", then at most one '\n'. EINVAL for anything else (or a
// sign on a negative-less range: min >= 0), ERANGE outside [min, max].
Result<int64_t> ParseKernelInt(const std::string& s, int64_t min, int64_t max);

class ProcInode : public vfs::Inode {
 public:
  ProcInode(std::shared_ptr<ProcFs> fs, mode_t mode, uint64_t ino);

  Result<struct stat> Stat() override;
  mode_t Type() override { return mode_ & S_IFMT; }
  // Linux refuses chmod on per-process entries (proc_setattr); husk keeps
  // every /proc attribute fixed.
  Status SetAttributes(const vfs::SetAttr& attr) override { return Errno{EPERM}; }
  // The instance's magic; no blocks or inodes to count, as on Linux.
  Result<struct statfs> Statfs() override {
    ASSIGN_OR_RETURN(struct statfs s, vfs::Inode::Statfs());
    s.f_type = fs_->magic;
    return s;
  }

  uint64_t ino() const { return ino_; }
  // A cached dentry of a process that has exited is dropped at the next
  // walk (Linux's pid_revalidate).
  bool Revalidate() override { return CheckAlive().ok(); }
  // Makes the entry belong to process pid (ProcProvider::Owner) rather than
  // to root; called once, before the inode is shared.
  void set_owner_pid(int pid) { owner_pid_ = pid; }

 protected:
  // ENOENT once the process this entry belongs to has gone.
  virtual Status CheckAlive() { return Ok(); }
  virtual nlink_t NLink() { return 1; }

  const std::shared_ptr<ProcFs> fs_;

 private:
  const mode_t mode_;
  const uint64_t ino_;
  const timespec time_;
  int owner_pid_ = 0;  // 0: owned by root
};

// A directory whose entries are computed. Linux's /proc has no create,
// mkdir, unlink, rmdir or rename, and its lookups of missing names fail with
// ENOENT, so: EEXIST or ENOENT for the creating calls, ENOENT for a missing
// name, and EPERM (after the type checks) for removing or renaming.
class ProcDir : public ProcInode {
 public:
  using ProcInode::ProcInode;

  // What a listing shows, without "." and "..".
  virtual Result<std::vector<vfs::Dirent>> Entries() = 0;
  // The child `name`, or ENOENT.
  virtual Result<vfs::InodeRef> Child(const std::string& name) = 0;

  // open(2): EISDIR for write access or O_TRUNC.
  Result<vfs::FileRef> Open(int flags) override;
  Result<vfs::InodeRef> Lookup(const std::string& name) override;
  Result<std::vector<vfs::Dirent>> ReadDir() override;
  Result<vfs::InodeRef> Create(const std::string& name, mode_t mode) override;
  Result<vfs::InodeRef> Mkdir(const std::string& name, mode_t mode) override;
  Result<vfs::InodeRef> Symlink(const std::string& name, const std::string& target) override;
  Status Unlink(const std::string& name) override;
  Status Rmdir(const std::string& name) override;
  Status Rename(const std::string& name, vfs::Inode& new_dir, const std::string& new_name) override;

 protected:
  // Stat()'s link count: 2 + subdirectories.
  virtual nlink_t SubdirCount() { return 0; }
  nlink_t NLink() override { return 2 + SubdirCount(); }
};

// A symlink whose target is computed when read.
class ProcSymlink : public ProcInode {
 public:
  ProcSymlink(std::shared_ptr<ProcFs> fs, mode_t perm, uint64_t ino,
              std::function<Result<std::string>()> target,
              std::function<Result<vfs::DentryRef>()> magic = nullptr)
      : ProcInode(std::move(fs), S_IFLNK | perm, ino),
        target_(std::move(target)),
        magic_(std::move(magic)) {}

  Result<std::string> Readlink() override { return target_(); }
  Result<vfs::DentryRef> FollowMagic() override {
    if (!magic_) return vfs::DentryRef();
    auto d = magic_();
    if (!d.ok() && d.error() == ENOSYS) return vfs::DentryRef();  // follow the text
    return d;
  }

 private:
  std::function<Result<std::string>()> target_;
  std::function<Result<vfs::DentryRef>()> magic_;
};

// What a write(2) to a /proc file does with the bytes written (Linux's
// proc write handlers: they take the buffer whatever the offset); returns
// the count reported, or the errno.
using ProcWriter = std::function<Result<size_t>(const char* buf, size_t n)>;

// A file whose text is rendered at open, read-only unless it has a writer.
class ProcFile : public ProcInode {
 public:
  // write_errno: what write(2) on a file opened for writing answers (Linux:
  // EIO for files without a write handler, EINVAL for seq files).
  // mode: 0444, or 0400 for what only the owner may read (environ, auxv),
  // 0644 for the writable ones.
  ProcFile(std::shared_ptr<ProcFs> fs, uint64_t ino, std::function<Result<std::string>()> render,
           int write_errno, mode_t mode = 0444, ProcWriter write = nullptr)
      : ProcInode(std::move(fs), S_IFREG | mode, ino),
        render_(std::move(render)),
        write_errno_(write_errno),
        write_(std::move(write)) {}

  Result<vfs::FileRef> Open(int flags) override;
  Result<size_t> ReadAt(char* buf, size_t n, uint64_t offset) override;
  Result<size_t> WriteAt(const char* buf, size_t n, uint64_t offset) override {
    if (write_) return write_(buf, n);
    return Errno{write_errno_};
  }

 private:
  std::function<Result<std::string>()> render_;
  int write_errno_;
  ProcWriter write_;
};

// A directory of fixed entries (/proc/sys and below, the cgroup2 root).
class FixedDir : public ProcDir {
 public:
  explicit FixedDir(std::shared_ptr<ProcFs> fs)
      : ProcDir(std::move(fs), S_IFDIR | 0555, vfs::NextInodeNumber()) {}

  void Add(const std::string& name, vfs::InodeRef inode) { entries_[name] = std::move(inode); }
  // A file rendered at open; tunable files are 0644 and refuse writes.
  void File(const std::string& name, std::function<Result<std::string>()> render,
            bool tunable = true) {
    Add(name, std::make_shared<ProcFile>(fs_, vfs::NextInodeNumber(), std::move(render),
                                         tunable ? EPERM : EIO, tunable ? 0644 : 0444));
  }
  // A 0644 file whose writes go to `write`.
  void Writable(const std::string& name, std::function<Result<std::string>()> render,
                ProcWriter write) {
    Add(name, std::make_shared<ProcFile>(fs_, vfs::NextInodeNumber(), std::move(render), EPERM,
                                         0644, std::move(write)));
  }
  void Value(const std::string& name, const std::string& text, bool tunable = true) {
    File(
        name, [text]() -> Result<std::string> { return text; }, tunable);
  }

  Result<std::vector<vfs::Dirent>> Entries() override {
    std::vector<vfs::Dirent> out;
    for (auto& [name, inode] : entries_) {
      out.push_back(vfs::Dirent{name, static_cast<ProcInode*>(inode.get())->ino(),
                                static_cast<uint8_t>(IFTODT(inode->Type()))});
    }
    return out;
  }
  Result<vfs::InodeRef> Child(const std::string& name) override {
    auto it = entries_.find(name);
    if (it == entries_.end()) return Errno{ENOENT};
    return it->second;
  }

 protected:
  nlink_t SubdirCount() override {
    nlink_t n = 0;
    for (auto& [name, inode] : entries_) n += inode->IsDir() ? 1 : 0;
    return n;
  }

 private:
  std::map<std::string, vfs::InodeRef> entries_;
};

// The root directory (root.cc).
vfs::InodeRef NewRootDir(std::shared_ptr<ProcFs> fs);
// /proc/sys (sys.cc).
vfs::InodeRef NewSysDir(const std::shared_ptr<ProcFs>& fs);
// /proc/<pid> (pid.cc); thread_of != 0 makes it /proc/<thread_of>/task/<pid>.
vfs::InodeRef NewPidDir(std::shared_ptr<ProcFs> fs, int pid, int thread_of = 0);
// Whether pid is one of the provider's pids.
bool PidExists(ProcProvider& provider, int pid);

}  // namespace husk::procfs

#endif  // HUSK_SENTRY_FSIMPL_PROC_INODES_H_
