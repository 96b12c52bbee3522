// The cgroup2 filesystem the sandbox sees at /sys/fs/cgroup: one cgroup,
// the sandbox, at the root of its hierarchy, as a container in a cgroup
// namespace of its own sees itself ("0::/" in /proc/<pid>/cgroup). Its
// interface files (Documentation/admin-guide/cgroup-v2.rst) tell the
// sandbox's limits and usage, which is what runtimes read to size
// themselves: the JVM and Go read memory.max and cpu.max. Nothing can be
// changed: the mount is read-only (EROFS), as a container's usually is.
#include <errno.h>

#include <algorithm>
#include <string>

#include "sentry/fsimpl/proc/inodes.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::procfs {
namespace {

constexpr long kCgroup2SuperMagic = 0x63677270;

Result<std::string> Text(std::string s) { return s; }

// The root directory: a fixed set of files, none of which can be added to
// (a child cgroup would need a mkdir the read-only mount refuses).
class CgroupDir : public FixedDir {
 public:
  using FixedDir::FixedDir;

  // What the read-only mount answers (the syscalls found an existing name
  // first: EEXIST).
  Result<vfs::InodeRef> Create(const std::string& name, mode_t mode) override {
    return Errno{EROFS};
  }
  Result<vfs::InodeRef> Mkdir(const std::string& name, mode_t mode) override {
    return Errno{EROFS};
  }
  Result<vfs::InodeRef> Symlink(const std::string& name, const std::string& target) override {
    return Errno{EROFS};
  }
  Status Unlink(const std::string& name) override { return Errno{EROFS}; }
  Status Rmdir(const std::string& name) override { return Errno{EROFS}; }
  Status Rename(const std::string& name, vfs::Inode& new_dir,
                const std::string& new_name) override {
    return Errno{EROFS};
  }
};

// The pids of the sandbox's processes or (threads) of every thread, sorted,
// one per line: cgroup.procs and cgroup.threads.
std::string IdList(ProcProvider& p, bool threads) {
  std::vector<int> ids;
  for (int pid : p.Pids()) {
    if (!threads) {
      ids.push_back(pid);
      continue;
    }
    for (int tid : p.Tids(pid)) ids.push_back(tid);
  }
  std::sort(ids.begin(), ids.end());
  std::string out;
  for (int id : ids) out += std::to_string(id) + "\n";
  return out;
}

size_t TaskCount(ProcProvider& p) {
  size_t n = 0;
  for (int pid : p.Pids()) n += p.Tids(pid).size();
  return n;
}

}  // namespace

vfs::InodeRef NewCgroupRoot(std::shared_ptr<ProcProvider> provider) {
  auto fs = std::make_shared<ProcFs>();
  fs->provider = std::move(provider);
  fs->dev = vfs::NewAnonDevice();
  fs->mounted = SandboxTimespec(CLOCK_REALTIME);
  fs->magic = kCgroup2SuperMagic;
  ProcProvider* p = fs->provider.get();
  auto root = std::make_shared<CgroupDir>(fs);

  // Files whose writes the read-only mount refuses: 0644 where Linux lets
  // the owner write (the limits, the membership), 0444 for the reports.
  auto file = [&](const std::string& name, std::function<Result<std::string>()> render,
                  bool tunable) {
    root->Add(name, std::make_shared<ProcFile>(fs, vfs::NextInodeNumber(), std::move(render), EROFS,
                                               tunable ? 0644 : 0444));
  };
  auto value = [&](const std::string& name, const std::string& text, bool tunable) {
    file(
        name, [text] { return Text(text); }, tunable);
  };

  // The core interface: a domain cgroup with the three controllers husk
  // enforces or counts, and no children.
  value("cgroup.controllers", "cpu memory pids\n", false);
  value("cgroup.subtree_control", "\n", true);
  value("cgroup.type", "domain\n", true);
  file(
      "cgroup.procs", [p] { return Text(IdList(*p, false)); }, true);
  file(
      "cgroup.threads", [p] { return Text(IdList(*p, true)); }, true);
  value("cgroup.events", "populated 1\nfrozen 0\n", false);
  value("cgroup.freeze", "0\n", true);
  value("cgroup.max.depth", "max\n", true);
  value("cgroup.max.descendants", "max\n", true);
  value("cgroup.stat", "nr_descendants 0\nnr_dying_descendants 0\n", false);

  // cpu: no quota unless the sandbox has one (cpu.max is "$MAX $PERIOD").
  file(
      "cpu.max",
      [p] {
        CgroupUsage u = p->Cgroup();
        std::string quota = u.cpu_quota_us < 0 ? "max" : std::to_string(u.cpu_quota_us);
        return Text(quota + " " + std::to_string(u.cpu_period_us) + "\n");
      },
      true);
  value("cpu.weight", "100\n", true);
  file(
      "cpu.stat",
      [p] {
        CgroupUsage u = p->Cgroup();
        return Text("usage_usec " + std::to_string(u.cpu_usage_us) + "\nuser_usec " +
                    std::to_string(u.cpu_user_us) + "\nsystem_usec " +
                    std::to_string(u.cpu_system_us) +
                    "\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n");
      },
      false);

  // memory: the sandbox's limit, what is charged against it, and no swap.
  file(
      "memory.max", [p] { return Text(std::to_string(p->Cgroup().memory_max) + "\n"); }, true);
  file(
      "memory.current", [p] { return Text(std::to_string(p->Cgroup().memory_current) + "\n"); },
      false);
  value("memory.high", "max\n", true);
  value("memory.low", "0\n", true);
  value("memory.min", "0\n", true);
  value("memory.swap.max", "0\n", true);
  value("memory.swap.current", "0\n", false);
  value("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", false);
  file(
      "memory.stat",
      [p] {
        CgroupUsage u = p->Cgroup();
        std::string out;
        auto line = [&out](const char* key, uint64_t v) {
          out += std::string(key) + " " + std::to_string(v) + "\n";
        };
        line("anon", u.anon);
        line("file", u.file);
        line("kernel", 0);
        line("kernel_stack", 0);
        line("pagetables", 0);
        line("sock", 0);
        line("shmem", u.shmem);
        line("file_mapped", u.file_mapped);
        line("file_dirty", 0);
        line("file_writeback", 0);
        line("swapcached", 0);
        line("inactive_anon", 0);
        line("active_anon", u.anon);
        line("inactive_file", 0);
        line("active_file", u.file);
        line("unevictable", 0);
        return Text(out);
      },
      false);

  // pids: no limit of its own (RLIMIT_NPROC still applies).
  value("pids.max", "max\n", true);
  file(
      "pids.current", [p] { return Text(std::to_string(TaskCount(*p)) + "\n"); }, false);
  return root;
}

}  // namespace husk::procfs
