#include "sentry/fsimpl/proc/inodes.h"

#include <errno.h>
#include <limits.h>

#include <algorithm>
#include <cstring>
#include <tuple>

namespace husk::procfs {

uint64_t PidIno(int pid, unsigned slot) {
  return (uint64_t{1} << 60) | (static_cast<uint64_t>(pid) << 12) | slot;
}

uint64_t ThreadIno(int pid, int tid, unsigned slot) {
  return (uint64_t{1} << 61) | (static_cast<uint64_t>(pid) << 32) |
         (static_cast<uint64_t>(tid) << 8) | slot;
}

uint64_t FdIno(int pid, int fd) {
  return (uint64_t{1} << 62) | (static_cast<uint64_t>(pid) << 24) | static_cast<uint64_t>(fd);
}

uint64_t FdinfoIno(int pid, int fd) { return FdIno(pid, fd) | (uint64_t{1} << 23); }

Result<int64_t> ParseKernelInt(const std::string& text, int64_t min, int64_t max) {
  std::string s = text;
  if (!s.empty() && s.back() == '\n') s.pop_back();
  size_t at = 0;
  bool negative = false;
  // kstrtoull takes a '+'; kstrtoll a '-' as well.
  if (at < s.size() && s[at] == '+') {
    at++;
  } else if (at < s.size() && s[at] == '-' && min < 0) {
    negative = true;
    at++;
  }
  unsigned base = 10;
  if (s.size() - at >= 2 && s[at] == '0' && (s[at + 1] == 'x' || s[at + 1] == 'X')) {
    base = 16;
    at += 2;
  } else if (s.size() - at >= 2 && s[at] == '0') {
    base = 8;
    at++;
  }
  if (at >= s.size()) return Errno{EINVAL};
  uint64_t v = 0;
  for (; at < s.size(); at++) {
    const char c = s[at];
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return Errno{EINVAL};
    }
    if (digit >= base) return Errno{EINVAL};
    if (v > (uint64_t{1} << 62) / base) return Errno{ERANGE};
    v = v * base + digit;
  }
  const int64_t value = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  if (value < min || value > max) return Errno{ERANGE};
  return value;
}

bool ParseNumber(const std::string& name, int* out) {
  if (name.empty() || name.size() > 9) return false;
  if (name.size() > 1 && name[0] == '0') return false;
  int v = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

ProcInode::ProcInode(std::shared_ptr<ProcFs> fs, mode_t mode, uint64_t ino)
    : fs_(std::move(fs)), mode_(mode), ino_(ino), time_(fs_->mounted) {}

Result<struct stat> ProcInode::Stat() {
  TRY(CheckAlive());
  struct stat st {};
  st.st_dev = fs_->dev;
  st.st_ino = ino_;
  st.st_mode = mode_;
  st.st_nlink = NLink();
  if (owner_pid_ != 0) {
    // A process that is gone leaves its entries to root.
    auto owner = fs_->provider->Owner(owner_pid_);
    if (owner.ok()) std::tie(st.st_uid, st.st_gid) = *owner;
  }
  // Linux reports size 0 for generated files and a 1 KiB block size.
  st.st_blksize = 1024;
  st.st_atim = st.st_mtim = st.st_ctim = time_;
  return st;
}

// ---- Directories ----

Result<vfs::FileRef> ProcDir::Open(int flags) {
  bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
  if (write && !(flags & O_PATH)) return Errno{EISDIR};
  TRY(CheckAlive());
  return Inode::Open(flags);
}

Result<vfs::InodeRef> ProcDir::Lookup(const std::string& name) {
  if (name.size() > NAME_MAX) return Errno{ENAMETOOLONG};
  TRY(CheckAlive());
  return Child(name);
}

Result<std::vector<vfs::Dirent>> ProcDir::ReadDir() {
  TRY(CheckAlive());
  return Entries();
}

namespace {
// The creating calls: the name exists (EEXIST) or the lookup failed (its errno).
Errno CreateError(const Result<vfs::InodeRef>& existing) {
  return existing.ok() ? Errno{EEXIST} : Errno{existing.error()};
}
}  // namespace

Result<vfs::InodeRef> ProcDir::Create(const std::string& name, mode_t mode) {
  return CreateError(Lookup(name));
}

Result<vfs::InodeRef> ProcDir::Mkdir(const std::string& name, mode_t mode) {
  return CreateError(Lookup(name));
}

Result<vfs::InodeRef> ProcDir::Symlink(const std::string& name, const std::string& target) {
  return CreateError(Lookup(name));
}

Status ProcDir::Unlink(const std::string& name) {
  ASSIGN_OR_RETURN(vfs::InodeRef child, Lookup(name));
  if (child->IsDir()) return Errno{EISDIR};
  return Errno{EPERM};
}

Status ProcDir::Rmdir(const std::string& name) {
  ASSIGN_OR_RETURN(vfs::InodeRef child, Lookup(name));
  if (!child->IsDir()) return Errno{ENOTDIR};
  return Errno{EPERM};
}

Status ProcDir::Rename(const std::string& name, vfs::Inode& new_dir, const std::string& new_name) {
  auto* target_dir = dynamic_cast<ProcDir*>(&new_dir);
  if (target_dir == nullptr || target_dir->fs_ != fs_) return Errno{EXDEV};
  ASSIGN_OR_RETURN(vfs::InodeRef src, Lookup(name));
  ASSIGN_OR_RETURN(vfs::InodeRef dst, target_dir->Lookup(new_name));
  if (src->IsDir() && !dst->IsDir()) return Errno{ENOTDIR};
  if (!src->IsDir() && dst->IsDir()) return Errno{EISDIR};
  return Errno{EPERM};
}

// ---- Files ----

namespace {

// An open /proc file: the text rendered at open.
class SnapshotFile : public vfs::File {
 public:
  SnapshotFile(vfs::InodeRef inode, int flags, std::string text, int write_errno, ProcWriter write)
      : File(std::move(inode), flags),
        text_(std::move(text)),
        write_errno_(write_errno),
        write_(std::move(write)) {}

  Result<size_t> Read(char* buf, size_t n) override {
    ASSIGN_OR_RETURN(size_t r, PRead(buf, n, static_cast<uint64_t>(offset_)));
    offset_ += static_cast<off_t>(r);
    return r;
  }
  Result<size_t> PRead(char* buf, size_t n, uint64_t offset) override {
    if (!readable()) return Errno{EBADF};
    if (offset >= text_.size()) return size_t{0};
    size_t r = std::min(n, text_.size() - static_cast<size_t>(offset));
    memcpy(buf, text_.data() + offset, r);
    return r;
  }
  Result<size_t> Write(const char* buf, size_t n) override { return PWrite(buf, n, 0); }
  Result<size_t> PWrite(const char* buf, size_t n, uint64_t offset) override {
    if (!writable()) return Errno{EBADF};
    if (write_) return write_(buf, n);
    return Errno{write_errno_};
  }
  // seq_lseek(): SEEK_SET and SEEK_CUR only.
  Result<off_t> Seek(off_t offset, int whence) override {
    off_t pos;
    switch (whence) {
      case SEEK_SET:
        pos = offset;
        break;
      case SEEK_CUR:
        if (__builtin_add_overflow(offset_, offset, &pos)) return Errno{EINVAL};
        break;
      default:
        return Errno{EINVAL};
    }
    if (pos < 0) return Errno{EINVAL};
    offset_ = pos;
    return pos;
  }
  // /proc files cannot be mapped (mmap(2): ENODEV).
  std::shared_ptr<Mappable> GetMappable() override { return nullptr; }

 private:
  const std::string text_;
  const int write_errno_;
  const ProcWriter write_;
};

}  // namespace

Result<vfs::FileRef> ProcFile::Open(int flags) {
  std::string text;
  // Opened for reading: render now, so the reader sees one snapshot.
  if ((flags & O_ACCMODE) != O_WRONLY && !(flags & O_PATH)) {
    ASSIGN_OR_RETURN(text, render_());
  }
  return vfs::FileRef(std::make_shared<SnapshotFile>(shared_from_this(), flags, std::move(text),
                                                     write_errno_, write_));
}

Result<size_t> ProcFile::ReadAt(char* buf, size_t n, uint64_t offset) {
  ASSIGN_OR_RETURN(std::string text, render_());
  if (offset >= text.size()) return size_t{0};
  size_t r = std::min(n, text.size() - static_cast<size_t>(offset));
  text.copy(buf, r, offset);
  return r;
}

}  // namespace husk::procfs
