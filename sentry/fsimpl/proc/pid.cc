// /proc/<pid>, /proc/<pid>/task/<tid>, and their fd/ directories.
#include <errno.h>
#include <stdio.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "sentry/fsimpl/proc/inodes.h"

namespace husk::procfs {
namespace {

enum class Kind {
  kFile,
  kOwnerFile,
  kWritable,  // 0644, with a write handler (Writer)
  kLink,
  kFdDir,
  kFdinfoDir,
  kTaskDir,
  kMem,
};

struct EntrySpec {
  const char* name;
  unsigned slot;  // inode number slot; 0 is the directory itself
  Kind kind;
  bool process_only = false;  // not in task/<tid>/ (Linux's tgid_base_stuff only)
};

// In name order, as listings show them.
constexpr EntrySpec kPidEntries[] = {
    {"auxv", 12, Kind::kOwnerFile},
    {"cgroup", 24, Kind::kFile},
    {"cmdline", 1, Kind::kFile},
    {"comm", 2, Kind::kWritable},
    {"coredump_filter", 15, Kind::kWritable, true},
    {"cwd", 3, Kind::kLink},
    {"environ", 13, Kind::kOwnerFile},
    {"exe", 4, Kind::kLink},
    {"fd", 5, Kind::kFdDir},
    {"fdinfo", 16, Kind::kFdinfoDir},
    {"limits", 17, Kind::kFile},
    {"maps", 6, Kind::kFile},
    {"mem", 18, Kind::kMem},
    {"mountinfo", 14, Kind::kFile},
    {"mounts", 7, Kind::kFile},
    {"oom_adj", 19, Kind::kWritable},
    {"oom_score", 20, Kind::kFile},
    {"oom_score_adj", 21, Kind::kWritable},
    {"root", 11, Kind::kLink},
    {"smaps", 22, Kind::kFile},
    {"stat", 8, Kind::kFile},
    {"statm", 23, Kind::kFile},
    {"status", 9, Kind::kFile},
    {"task", 10, Kind::kTaskDir, true},
};

// OOM_SCORE_ADJ_MIN/MAX, and the legacy oom_adj scale's OOM_DISABLE and
// OOM_ADJUST_MAX.
constexpr int kOomScoreAdjMin = -1000, kOomScoreAdjMax = 1000;
constexpr int kOomDisable = -17, kOomAdjustMax = 15;

// oom_adj as Linux derives it from oom_score_adj (oom_adj_read).
int OomAdjOf(int score_adj) {
  if (score_adj == kOomScoreAdjMax) return kOomAdjustMax;
  return score_adj * -kOomDisable / kOomScoreAdjMax;
}

// An entry of process pid's directory, owned by that process.
template <typename T, typename... Args>
vfs::InodeRef OwnedBy(int pid, Args&&... args) {
  auto inode = std::make_shared<T>(std::forward<Args>(args)...);
  inode->set_owner_pid(pid);
  return inode;
}

uint8_t DirentType(Kind kind) {
  switch (kind) {
    case Kind::kFile:
    case Kind::kOwnerFile:
    case Kind::kWritable:
    case Kind::kMem:
      return DT_REG;
    case Kind::kLink:
      return DT_LNK;
    default:
      return DT_DIR;
  }
}

// A file's text from a per-pid provider call.
std::function<Result<std::string>()> Render(const std::shared_ptr<ProcFs>& fs, int pid,
                                            const std::string& name) {
  ProcProvider* p = fs->provider.get();
  if (name == "cmdline") return [p, pid] { return p->Cmdline(pid); };
  // Every task is in the sandbox's one cgroup, the root of the v2
  // hierarchy it sees (cgroup.cc); no v1 hierarchies.
  if (name == "cgroup") return [] { return Result<std::string>(std::string("0::/\n")); };
  if (name == "auxv") return [p, pid] { return p->Auxv(pid); };
  if (name == "environ") return [p, pid] { return p->Environ(pid); };
  if (name == "maps") return [p, pid] { return p->Maps(pid); };
  if (name == "mounts") return [p, pid] { return p->Mounts(pid); };
  if (name == "mountinfo") return [p, pid] { return p->Mountinfo(pid); };
  if (name == "stat") return [p, pid] { return p->StatText(pid); };
  if (name == "status") return [p, pid] { return p->StatusText(pid); };
  if (name == "comm") {
    return [p, pid]() -> Result<std::string> {
      ASSIGN_OR_RETURN(std::string comm, p->Comm(pid));
      if (comm.empty() || comm.back() != '\n') comm += '\n';  // Linux prints "name\n"
      return comm;
    };
  }
  if (name == "statm") return [p, pid] { return p->Statm(pid); };
  if (name == "smaps") return [p, pid] { return p->Smaps(pid); };
  if (name == "limits") return [p, pid] { return p->Limits(pid); };
  if (name == "oom_score_adj") {
    return [p, pid]() -> Result<std::string> {
      ASSIGN_OR_RETURN(int adj, p->OomScoreAdj(pid));
      return std::to_string(adj) + "\n";
    };
  }
  if (name == "oom_adj") {
    return [p, pid]() -> Result<std::string> {
      ASSIGN_OR_RETURN(int adj, p->OomScoreAdj(pid));
      return std::to_string(OomAdjOf(adj)) + "\n";
    };
  }
  if (name == "oom_score") {
    return [p, pid]() -> Result<std::string> {
      ASSIGN_OR_RETURN(long score, p->OomScore(pid));
      return std::to_string(score) + "\n";
    };
  }
  if (name == "coredump_filter") {
    return [p, pid]() -> Result<std::string> {
      ASSIGN_OR_RETURN(uint32_t filter, p->CoredumpFilter(pid));
      char buf[16];
      snprintf(buf, sizeof(buf), "%08x\n", filter);
      return std::string(buf);
    };
  }
  if (name == "exe") return [p, pid] { return p->ExePath(pid); };
  if (name == "cwd") return [p, pid] { return p->CwdPath(pid); };
  if (name == "root") return [p, pid] { return p->RootPath(pid); };
  return [] { return Result<std::string>(Errno{ENOENT}); };
}

// The bytes of a write, as the kernel's handlers copy them: at most max
// bytes, ending at the first NUL.
std::string Written(const char* buf, size_t n, size_t max) {
  std::string s(buf, std::min(n, max));
  return s.substr(0, s.find('\0'));
}

// What a write to file `name` does (comm, oom_score_adj, oom_adj,
// coredump_filter).
ProcWriter Writer(const std::shared_ptr<ProcFs>& fs, int pid, const std::string& name) {
  ProcProvider* p = fs->provider.get();
  if (name == "comm") {
    // comm_write: the first TASK_COMM_LEN - 1 bytes; the whole count is
    // reported written.
    return [p, pid](const char* buf, size_t n) -> Result<size_t> {
      TRY(p->SetComm(pid, Written(buf, n, 15)));
      return n;
    };
  }
  if (name == "oom_score_adj" || name == "oom_adj") {
    const bool legacy = name == "oom_adj";
    // oom_score_adj_write, oom_adj_write: PROC_NUMBUF - 1 bytes at most
    // (and that is the count reported), blanks around the number ignored.
    return [p, pid, legacy](const char* buf, size_t n) -> Result<size_t> {
      n = std::min<size_t>(n, 12);
      std::string text(absl::StripAsciiWhitespace(Written(buf, n, n)));
      ASSIGN_OR_RETURN(int64_t v, ParseKernelInt(text, INT32_MIN, INT32_MAX));
      int adj;
      if (legacy) {
        if (v < kOomDisable || v > kOomAdjustMax) return Errno{EINVAL};
        // OOM_ADJUST_MAX is the most; the rest scale onto -1000..1000.
        adj = v == kOomAdjustMax ? kOomScoreAdjMax
                                 : static_cast<int>(v * kOomScoreAdjMax / -kOomDisable);
      } else {
        if (v < kOomScoreAdjMin || v > kOomScoreAdjMax) return Errno{EINVAL};
        adj = static_cast<int>(v);
      }
      TRY(p->SetOomScoreAdj(pid, adj, legacy));
      return n;
    };
  }
  if (name == "coredump_filter") {
    // coredump_filter_write: an unsigned number; bits past
    // MMF_DUMP_FILTER_BITS (9) are dropped.
    return [p, pid](const char* buf, size_t n) -> Result<size_t> {
      ASSIGN_OR_RETURN(int64_t v, ParseKernelInt(Written(buf, n, 23), 0, UINT32_MAX));
      TRY(p->SetCoredumpFilter(pid, static_cast<uint32_t>(v) & 0x1ff));
      return n;
    };
  }
  return nullptr;
}

// An open /proc/<pid>/mem: the file offset is an address (mem_rw, mem_lseek).
class MemFile : public vfs::File {
 public:
  MemFile(vfs::InodeRef inode, int flags, std::shared_ptr<MemAccess> mem)
      : File(std::move(inode), flags), mem_(std::move(mem)) {}

  Result<size_t> Read(char* buf, size_t n) override {
    ASSIGN_OR_RETURN(size_t r, PRead(buf, n, static_cast<uint64_t>(offset_)));
    offset_ += static_cast<off_t>(r);
    return r;
  }
  Result<size_t> Write(const char* buf, size_t n) override {
    ASSIGN_OR_RETURN(size_t r, PWrite(buf, n, static_cast<uint64_t>(offset_)));
    offset_ += static_cast<off_t>(r);
    return r;
  }
  // Nothing copied at all is EIO (an unmapped address); a copy that stops
  // part way returns what it did.
  Result<size_t> PRead(char* buf, size_t n, uint64_t offset) override {
    if (!readable()) return Errno{EBADF};
    if (n == 0 || mem_ == nullptr) return size_t{0};
    return mem_->Read(offset, buf, n);
  }
  Result<size_t> PWrite(const char* buf, size_t n, uint64_t offset) override {
    if (!writable()) return Errno{EBADF};
    if (n == 0 || mem_ == nullptr) return size_t{0};
    return mem_->Write(offset, buf, n);
  }
  // mem_lseek: SEEK_SET and SEEK_CUR to any address.
  Result<off_t> Seek(off_t offset, int whence) override {
    switch (whence) {
      case SEEK_SET:
        offset_ = offset;
        return offset_;
      case SEEK_CUR: {
        off_t pos;
        if (__builtin_add_overflow(offset_, offset, &pos)) return Errno{EINVAL};
        offset_ = pos;
        return pos;
      }
      default:
        return Errno{EINVAL};
    }
  }
  std::shared_ptr<Mappable> GetMappable() override { return nullptr; }

 private:
  const std::shared_ptr<MemAccess> mem_;
};

// /proc/<pid>/mem: mode 0600, the process's memory at its addresses.
class MemInode : public ProcInode {
 public:
  MemInode(std::shared_ptr<ProcFs> fs, int pid, uint64_t ino)
      : ProcInode(std::move(fs), S_IFREG | 0600, ino), pid_(pid) {}

  Result<vfs::FileRef> Open(int flags) override {
    TRY(CheckAlive());
    std::shared_ptr<MemAccess> mem;
    if (!(flags & O_PATH)) {
      ASSIGN_OR_RETURN(mem, fs_->provider->OpenMem(pid_));
    }
    return vfs::FileRef(std::make_shared<MemFile>(shared_from_this(), flags, std::move(mem)));
  }
  Result<size_t> ReadAt(char* buf, size_t n, uint64_t offset) override { return Errno{EIO}; }
  Result<size_t> WriteAt(const char* buf, size_t n, uint64_t offset) override { return Errno{EIO}; }

 protected:
  Status CheckAlive() override {
    return PidExists(*fs_->provider, pid_) ? Ok() : Status(Errno{ENOENT});
  }

 private:
  const int pid_;
};

// /proc/<pid>/fdinfo: one file per open descriptor (fs/proc/fd.c).
class FdinfoDir : public ProcDir {
 public:
  FdinfoDir(std::shared_ptr<ProcFs> fs, int pid, uint64_t ino)
      : ProcDir(std::move(fs), S_IFDIR | 0500, ino), pid_(pid) {}

  Result<std::vector<vfs::Dirent>> Entries() override {
    ASSIGN_OR_RETURN(auto fds, fs_->provider->Fds(pid_));
    std::vector<vfs::Dirent> out;
    out.reserve(fds.size());
    for (auto& [fd, target] : fds) {
      out.push_back(vfs::Dirent{std::to_string(fd), FdinfoIno(pid_, fd), DT_REG});
    }
    return out;
  }

  Result<vfs::InodeRef> Child(const std::string& name) override {
    int fd;
    if (!ParseNumber(name, &fd)) return Errno{ENOENT};
    ASSIGN_OR_RETURN(auto fds, fs_->provider->Fds(pid_));
    if (fds.count(fd) == 0) return Errno{ENOENT};
    ProcProvider* p = fs_->provider.get();
    int pid = pid_;
    // seq_show: rendered at open, ENOENT once the descriptor is closed.
    auto render = [p, pid, fd]() -> Result<std::string> {
      ASSIGN_OR_RETURN(FdInfo info, p->FdInfoOf(pid, fd));
      char buf[160];
      snprintf(buf, sizeof(buf), "pos:\t%lld\nflags:\t0%o\nmnt_id:\t%d\nino:\t%llu\n",
               static_cast<long long>(info.pos), static_cast<unsigned>(info.flags), info.mnt_id,
               static_cast<unsigned long long>(info.ino));
      return std::string(buf);
    };
    return OwnedBy<ProcFile>(pid_, fs_, FdinfoIno(pid_, fd), render, EINVAL);
  }

 protected:
  Status CheckAlive() override {
    return PidExists(*fs_->provider, pid_) ? Ok() : Status(Errno{ENOENT});
  }

 private:
  const int pid_;
};

class FdDir : public ProcDir {
 public:
  FdDir(std::shared_ptr<ProcFs> fs, int pid, uint64_t ino)
      : ProcDir(std::move(fs), S_IFDIR | 0500, ino), pid_(pid) {}

  Result<std::vector<vfs::Dirent>> Entries() override {
    ASSIGN_OR_RETURN(auto fds, fs_->provider->Fds(pid_));
    std::vector<vfs::Dirent> out;
    out.reserve(fds.size());
    for (auto& [fd, target] : fds) {
      out.push_back(vfs::Dirent{std::to_string(fd), FdIno(pid_, fd), DT_LNK});
    }
    return out;
  }

  Result<vfs::InodeRef> Child(const std::string& name) override {
    int fd;
    if (!ParseNumber(name, &fd)) return Errno{ENOENT};
    ASSIGN_OR_RETURN(auto fds, fs_->provider->Fds(pid_));
    if (fds.count(fd) == 0) return Errno{ENOENT};
    ProcProvider* p = fs_->provider.get();
    int pid = pid_;
    // The target is read again at each readlink: the fd may have been
    // closed or replaced since the lookup (the VFS caches dentries).
    auto target = [p, pid, fd]() -> Result<std::string> {
      ASSIGN_OR_RETURN(auto now, p->Fds(pid));
      auto it = now.find(fd);
      if (it == now.end()) return Errno{ENOENT};
      return it->second;
    };
    auto magic = [p, pid, fd]() { return p->FdDentry(pid, fd); };
    // Linux shows the open mode (lr-x, l-wx, lrwx); the provider does not say it.
    return OwnedBy<ProcSymlink>(pid_, fs_, 0700, FdIno(pid_, fd), target, magic);
  }

 protected:
  Status CheckAlive() override {
    return PidExists(*fs_->provider, pid_) ? Ok() : Status(Errno{ENOENT});
  }

 private:
  const int pid_;
};

class TaskDir : public ProcDir {
 public:
  TaskDir(std::shared_ptr<ProcFs> fs, int pid, uint64_t ino)
      : ProcDir(std::move(fs), S_IFDIR | 0555, ino), pid_(pid) {}

  Result<std::vector<vfs::Dirent>> Entries() override {
    std::vector<vfs::Dirent> out;
    for (int tid : fs_->provider->Tids(pid_)) {
      out.push_back(vfs::Dirent{std::to_string(tid), ThreadIno(pid_, tid, 0), DT_DIR});
    }
    return out;
  }

  Result<vfs::InodeRef> Child(const std::string& name) override {
    int tid;
    if (!ParseNumber(name, &tid)) return Errno{ENOENT};
    std::vector<int> tids = fs_->provider->Tids(pid_);
    if (std::find(tids.begin(), tids.end(), tid) == tids.end()) return Errno{ENOENT};
    return NewPidDir(fs_, tid, pid_);
  }

 protected:
  Status CheckAlive() override {
    return PidExists(*fs_->provider, pid_) ? Ok() : Status(Errno{ENOENT});
  }
  nlink_t SubdirCount() override { return 1; }

 private:
  const int pid_;
};

class PidDir : public ProcDir {
 public:
  PidDir(std::shared_ptr<ProcFs> fs, int pid, int thread_of)
      : ProcDir(std::move(fs), S_IFDIR | 0555,
                thread_of ? ThreadIno(thread_of, pid, 0) : PidIno(pid, 0)),
        pid_(pid),
        thread_of_(thread_of) {}

  Result<std::vector<vfs::Dirent>> Entries() override {
    std::vector<vfs::Dirent> out;
    for (const EntrySpec& e : kPidEntries) {
      if (!Has(e)) continue;
      out.push_back(vfs::Dirent{e.name, Ino(e.slot), DirentType(e.kind)});
    }
    return out;
  }

  Result<vfs::InodeRef> Child(const std::string& name) override {
    for (const EntrySpec& e : kPidEntries) {
      if (name != e.name || !Has(e)) continue;
      switch (e.kind) {
        case Kind::kFile:
          // seq files answer EINVAL to write(2) (Linux's seq_file has no write).
          // A thread's comm, stat and status are its own.
          return OwnedBy<ProcFile>(process(), fs_, Ino(e.slot),
                                   Render(fs_, PerThread(name) ? pid_ : process(), name), EINVAL);
        case Kind::kOwnerFile:
          // Only the owner reads these (mode 0400), as on Linux.
          return OwnedBy<ProcFile>(process(), fs_, Ino(e.slot), Render(fs_, process(), name),
                                   EINVAL, 0400);
        case Kind::kWritable: {
          const int target = PerThread(name) ? pid_ : process();
          return OwnedBy<ProcFile>(process(), fs_, Ino(e.slot), Render(fs_, target, name), EINVAL,
                                   0644, Writer(fs_, target, name));
        }
        case Kind::kMem:
          return OwnedBy<MemInode>(process(), fs_, process(), Ino(e.slot));
        case Kind::kFdinfoDir:
          return OwnedBy<FdinfoDir>(process(), fs_, process(), Ino(e.slot));
        case Kind::kLink:
          return OwnedBy<ProcSymlink>(process(), fs_, 0777, Ino(e.slot),
                                      Render(fs_, process(), name));
        case Kind::kFdDir:
          return OwnedBy<FdDir>(process(), fs_, process(), Ino(e.slot));
        case Kind::kTaskDir:
          return OwnedBy<TaskDir>(process(), fs_, pid_, Ino(e.slot));
      }
    }
    return Errno{ENOENT};
  }

 protected:
  // A dentry for a process that has exited may still be cached: refuse it.
  Status CheckAlive() override {
    return PidExists(*fs_->provider, process()) ? Ok() : Status(Errno{ENOENT});
  }
  nlink_t SubdirCount() override { return thread_of_ ? 1 : 2; }

 private:
  int process() const { return thread_of_ ? thread_of_ : pid_; }
  static bool PerThread(const std::string& name) {
    return name == "comm" || name == "stat" || name == "status";
  }
  bool Has(const EntrySpec& e) const { return !e.process_only || thread_of_ == 0; }
  uint64_t Ino(unsigned slot) const {
    return thread_of_ ? ThreadIno(thread_of_, pid_, slot) : PidIno(pid_, slot);
  }

  const int pid_;
  const int thread_of_;
};

}  // namespace

vfs::InodeRef NewPidDir(std::shared_ptr<ProcFs> fs, int pid, int thread_of) {
  return OwnedBy<PidDir>(thread_of ? thread_of : pid, std::move(fs), pid, thread_of);
}

}  // namespace husk::procfs
