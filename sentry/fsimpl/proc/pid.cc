// /proc/<pid>, /proc/<pid>/task/<tid>, and their fd/ directories.
#include <errno.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "sentry/fsimpl/proc/inodes.h"

namespace husk::procfs {
namespace {

enum class Kind { kFile, kOwnerFile, kLink, kFdDir, kTaskDir };

struct EntrySpec {
  const char* name;
  unsigned slot;  // inode number slot; 0 is the directory itself
  Kind kind;
};

// In name order, as listings show them.
constexpr EntrySpec kPidEntries[] = {
    {"auxv", 12, Kind::kOwnerFile},    {"cmdline", 1, Kind::kFile},
    {"comm", 2, Kind::kFile},          {"cwd", 3, Kind::kLink},
    {"environ", 13, Kind::kOwnerFile}, {"exe", 4, Kind::kLink},
    {"fd", 5, Kind::kFdDir},           {"maps", 6, Kind::kFile},
    {"mountinfo", 14, Kind::kFile},    {"mounts", 7, Kind::kFile},
    {"root", 11, Kind::kLink},         {"stat", 8, Kind::kFile},
    {"status", 9, Kind::kFile},        {"task", 10, Kind::kTaskDir},
};

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
  if (name == "exe") return [p, pid] { return p->ExePath(pid); };
  if (name == "cwd") return [p, pid] { return p->CwdPath(pid); };
  if (name == "root") return [p, pid] { return p->RootPath(pid); };
  return [] { return Result<std::string>(Errno{ENOENT}); };
}

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
  bool Has(const EntrySpec& e) const { return e.kind != Kind::kTaskDir || thread_of_ == 0; }
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
