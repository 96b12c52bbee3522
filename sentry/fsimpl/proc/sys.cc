// /proc/sys: the sysctl files programs read. Values are the sandbox's own
// (its limits, its uname) or Linux's defaults; nothing of the host shows.
// The tunables are 0644 as on Linux, and a write is refused (EPERM): the
// sandbox's kernel does not change them.
#include <errno.h>
#include <stdio.h>

#include <map>
#include <random>
#include <string>

#include "sentry/fsimpl/proc/inodes.h"

namespace husk::procfs {
namespace {

// A directory of fixed entries.
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

// A random (version 4) UUID, as the kernel's random/uuid gives.
std::string NewUuid() {
  static std::mt19937_64 gen{std::random_device{}()};
  uint64_t hi = gen(), lo = gen();
  hi = (hi & ~uint64_t{0xf000}) | 0x4000;                    // version 4
  lo = (lo & ~(uint64_t{0xc} << 60)) | (uint64_t{8} << 60);  // variant 10
  char buf[40];
  snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx\n", static_cast<unsigned>(hi >> 32),
           static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
           static_cast<unsigned>(lo >> 48),
           static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

}  // namespace

vfs::InodeRef NewSysDir(const std::shared_ptr<ProcFs>& fs) {
  ProcProvider* p = fs->provider.get();
  auto sys = std::make_shared<FixedDir>(fs);

  auto kernel = std::make_shared<FixedDir>(fs);
  kernel->Value("pid_max", "4194304\n");
  kernel->Value("ngroups_max", "65536\n", false);
  kernel->Value("overflowuid", "65534\n");
  kernel->Value("overflowgid", "65534\n");
  kernel->Value("cap_last_cap", "40\n", false);
  kernel->Value("ostype", "Linux\n", false);
  kernel->File(
      "osrelease", [p]() -> Result<std::string> { return p->Release() + "\n"; }, false);
  kernel->File(
      "version", [p]() -> Result<std::string> { return p->Version() + "\n"; }, false);
  kernel->File("hostname", [p]() -> Result<std::string> { return p->Hostname() + "\n"; });
  kernel->File("domainname", [p]() -> Result<std::string> { return p->Domainname() + "\n"; });
  kernel->Value("threads-max", "126452\n");
  auto random = std::make_shared<FixedDir>(fs);
  random->File(
      "uuid", []() -> Result<std::string> { return NewUuid(); }, false);
  random->Value("boot_id", NewUuid(), false);  // one per sandbox boot
  random->Value("poolsize", "256\n", false);
  random->Value("entropy_avail", "256\n", false);
  kernel->Add("random", random);
  sys->Add("kernel", kernel);

  auto fsdir = std::make_shared<FixedDir>(fs);
  fsdir->Value("file-max", "9223372036854775807\n");
  // Open file descriptions: the sandbox's descriptors, a little high when
  // several share one (Linux counts the descriptions).
  fsdir->File(
      "file-nr",
      [p]() -> Result<std::string> {
        size_t open = 0;
        for (int pid : p->Pids()) {
          if (auto fds = p->Fds(pid); fds.ok()) open += fds->size();
        }
        return std::to_string(open) + "\t0\t9223372036854775807\n";
      },
      false);
  fsdir->Value("nr_open", "1048576\n");
  fsdir->Value("pipe-max-size", "1048576\n");
  fsdir->Value("protected_hardlinks", "1\n");
  fsdir->Value("protected_symlinks", "1\n");
  auto inotify = std::make_shared<FixedDir>(fs);
  inotify->Value("max_user_watches", "8192\n");
  inotify->Value("max_user_instances", "128\n");
  inotify->Value("max_queued_events", "16384\n");
  fsdir->Add("inotify", inotify);
  sys->Add("fs", fsdir);

  auto vm = std::make_shared<FixedDir>(fs);
  vm->Value("overcommit_memory", "0\n");
  vm->Value("max_map_count", "65530\n");
  vm->Value("mmap_min_addr", "65536\n");
  sys->Add("vm", vm);

  auto net = std::make_shared<FixedDir>(fs);
  auto core = std::make_shared<FixedDir>(fs);
  core->Value("somaxconn", "4096\n");
  net->Add("core", core);
  sys->Add("net", net);
  return sys;
}

}  // namespace husk::procfs
