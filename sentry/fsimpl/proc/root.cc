// /proc itself: the system-wide files, self and thread-self, and one
// directory per process.
#include <errno.h>

#include <algorithm>
#include <map>

#include "sentry/fsimpl/proc/inodes.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::procfs {

Result<std::string> ProcProvider::Mounts(int pid) { return vfs::RenderMountTable(false); }
Result<std::string> ProcProvider::Mountinfo(int pid) { return vfs::RenderMountTable(true); }

bool PidExists(ProcProvider& provider, int pid) {
  std::vector<int> pids = provider.Pids();
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

namespace {

// The filesystems husk implements, as /proc/filesystems lists them.
constexpr char kFilesystems[] =
    "nodev\tsysfs\n"
    "nodev\ttmpfs\n"
    "nodev\tproc\n"
    "nodev\tdevpts\n"
    "nodev\toverlay\n"
    "nodev\t9p\n"
    "nodev\tcgroup2\n";

// The controllers, as a kernel that has only the cgroup v2 hierarchy lists
// them: hierarchy 0, one cgroup (the sandbox's), enabled. The JVM decides
// between v1 and v2 from the hierarchy ids of cpuset, cpu, cpuacct and
// memory here before it looks at /sys/fs/cgroup.
constexpr char kCgroups[] =
    "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
    "cpuset\t0\t1\t1\n"
    "cpu\t0\t1\t1\n"
    "cpuacct\t0\t1\t1\n"
    "blkio\t0\t1\t1\n"
    "memory\t0\t1\t1\n"
    "pids\t0\t1\t1\n";

Result<std::string> Text(std::string s) { return s; }

class RootDir : public ProcDir {
 public:
  explicit RootDir(std::shared_ptr<ProcFs> fs)
      : ProcDir(fs, S_IFDIR | 0555, vfs::NextInodeNumber()) {
    ProcProvider* p = fs->provider.get();
    // Files without a write handler answer EIO to write(2), like Linux.
    auto file = [&](const char* name, std::function<Result<std::string>()> render) {
      fixed_[name] = std::make_shared<ProcFile>(fs, vfs::NextInodeNumber(), std::move(render), EIO);
    };
    auto link = [&](const char* name, std::function<Result<std::string>()> target) {
      fixed_[name] =
          std::make_shared<ProcSymlink>(fs, 0777, vfs::NextInodeNumber(), std::move(target));
    };
    // The lambdas may use the raw provider: each child keeps fs (and with
    // it the provider) alive.
    file("meminfo", [p] { return Text(p->MemInfo()); });
    file("cpuinfo", [p] { return Text(p->CpuInfo()); });
    file("uptime", [p] { return Text(p->Uptime()); });
    file("loadavg", [p] { return Text(p->LoadAvg()); });
    file("stat", [p] { return Text(p->SystemStat()); });
    file("filesystems", [] { return Text(kFilesystems); });
    file("cgroups", [] { return Text(kCgroups); });
    file("version", [p] {
      return Text("Linux version " + p->Release() + " (husk@husk) (husk) " + p->Version() + "\n");
    });
    fixed_["sys"] = NewSysDir(fs);
    // /proc/net: the sandbox's sockets, and its one interface, loopback.
    auto net = std::make_shared<FixedDir>(fs);
    for (const char* name :
         {"unix", "tcp", "tcp6", "udp", "udp6", "dev", "route", "snmp", "netstat", "if_inet6"}) {
      net->File(
          name, [p, n = std::string(name)] { return Text(p->NetFile(n)); }, false);
    }
    fixed_["net"] = net;
    link("self", [p]() -> Result<std::string> {
      int pid = p->CurrentPid();
      if (pid <= 0) return Errno{ENOENT};  // no calling task (Linux: a kernel thread)
      return std::to_string(pid);
    });
    link("thread-self", [p]() -> Result<std::string> {
      int pid = p->CurrentPid();
      if (pid <= 0) return Errno{ENOENT};
      return std::to_string(pid) + "/task/" + std::to_string(p->CurrentTid());
    });
    link("mounts", [] { return Text("self/mounts"); });
  }

  Result<std::vector<vfs::Dirent>> Entries() override {
    std::vector<vfs::Dirent> out;
    for (auto& [name, inode] : fixed_) {
      out.push_back(vfs::Dirent{name, static_cast<ProcInode*>(inode.get())->ino(),
                                static_cast<uint8_t>(IFTODT(inode->Type()))});
    }
    std::vector<int> pids = fs_->provider->Pids();
    std::sort(pids.begin(), pids.end());
    for (int pid : pids) out.push_back(vfs::Dirent{std::to_string(pid), PidIno(pid, 0), DT_DIR});
    return out;
  }

  Result<vfs::InodeRef> Child(const std::string& name) override {
    auto it = fixed_.find(name);
    if (it != fixed_.end()) return it->second;
    int pid;
    if (!ParseNumber(name, &pid)) return Errno{ENOENT};
    if (PidExists(*fs_->provider, pid)) return NewPidDir(fs_, pid);
    // Another thread's id: not listed, but found, as on Linux.
    int process = fs_->provider->ProcessOf(pid);
    if (process > 0 && process != pid) return NewPidDir(fs_, pid, process);
    return Errno{ENOENT};
  }

 protected:
  nlink_t SubdirCount() override { return fs_->provider->Pids().size(); }

 private:
  std::map<std::string, vfs::InodeRef> fixed_;
};

}  // namespace

vfs::InodeRef NewRootDir(std::shared_ptr<ProcFs> fs) {
  return std::make_shared<RootDir>(std::move(fs));
}

vfs::InodeRef NewProcRoot(std::shared_ptr<ProcProvider> provider) {
  auto fs = std::make_shared<ProcFs>();
  fs->provider = std::move(provider);
  fs->dev = vfs::NewAnonDevice();
  fs->mounted = SandboxTimespec(CLOCK_REALTIME);
  return NewRootDir(std::move(fs));
}

}  // namespace husk::procfs
