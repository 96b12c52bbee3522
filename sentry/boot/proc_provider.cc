#include "sentry/boot/proc_provider.h"

#include <errno.h>
#include <sched.h>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sentry/kernel/anon.h"
#include "sentry/kernel/version.h"

namespace husk {
namespace {

// Called from syscall handlers, which hold the kernel lock.
// The state letter and word of /proc/[pid]/status (fs/proc/array.c).
const char* StateName(const Task& t) {
  if (t.tg().zombie || t.exited()) return "Z (zombie)";
  if (t.stopped()) return "T (stopped)";
  if (t.sleeping()) return "S (sleeping)";
  return "R (running)";
}

class KernelProcProvider : public procfs::ProcProvider {
 public:
  explicit KernelProcProvider(Kernel& k) : k_(k) {}

  int CurrentPid() override {
    Task* t = Kernel::Current();
    return t ? t->tgid() : 1;
  }
  int CurrentTid() override {
    Task* t = Kernel::Current();
    return t ? t->tid() : 1;
  }
  std::vector<int> Pids() override ABSL_NO_THREAD_SAFETY_ANALYSIS { return k_.Pids(); }
  std::vector<int> Tids(int pid) override ABSL_NO_THREAD_SAFETY_ANALYSIS { return k_.Tids(pid); }
  int ProcessOf(int tid) override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto t = k_.FindTask(tid);
    return t ? t->tgid() : 0;
  }
  Result<std::string> Maps(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    if (t->mm_ == nullptr) return std::string();
    return t->mm_->ProcMaps();
  }
  Result<std::string> ExePath(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    if (t->tg().exe == nullptr) return Errno{ENOENT};
    return t->tg().exe->Path();
  }
  Result<std::string> CwdPath(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    return t->fs().cwd->Path();
  }
  Result<std::string> RootPath(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    return t->fs().root->Path();
  }
  // get_mm_cmdline: the argument area as the process's memory holds it now.
  // If the NUL that ends it was overwritten, the program set its own title
  // (setproctitle): then the string at arg_start, up to a page, is shown.
  Result<std::string> Cmdline(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    const ThreadGroup& g = t->tg();
    MemoryManager* mm = t->mm_if_any();
    if (mm == nullptr) return std::string();  // a zombie shows none, as on Linux
    if (g.arg_end <= g.arg_start) {
      std::string out;
      for (auto& a : g.argv) {
        out += a;
        out += '\0';
      }
      return out;
    }
    std::string area = ReadArea(*mm, g.arg_start, g.arg_end);
    if (area.size() == g.arg_end - g.arg_start && !area.empty() && area.back() != '\0') {
      std::string title = ReadArea(*mm, g.arg_start, g.arg_start + kPageSize);
      size_t nul = title.find('\0');
      return nul == std::string::npos ? title : title.substr(0, nul + 1);
    }
    return area;
  }
  Result<std::string> Environ(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    const ThreadGroup& g = t->tg();
    MemoryManager* mm = t->mm_if_any();
    if (mm == nullptr) return std::string();
    if (g.env_end <= g.env_start) return g.environ;
    return ReadArea(*mm, g.env_start, g.env_end);
  }
  Result<std::string> Auxv(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    return t->tg().auxv;
  }
  Result<std::string> Comm(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    return t->comm + "\n";
  }
  Result<std::string> StatusText(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    size_t rss_kb = t->mm_ ? t->mm_->ResidentBytes() / 1024 : 0;
    return absl::StrFormat(
        "Name:\t%s\nUmask:\t%04o\nState:\t%s\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\n"
        "TracerPid:\t0\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nFDSize:\t%d\nGroups:\t%s\n"
        "VmRSS:\t%d kB\nThreads:\t%d\nSigQ:\t%d/%d\nSigPnd:\t%016x\nShdPnd:\t%016x\n"
        "SigBlk:\t%016x\nCapInh:\t%016x\nCapPrm:\t%016x\nCapEff:\t%016x\nCapBnd:\t%016x\n"
        "CapAmb:\t%016x\nNoNewPrivs:\t%d\nSeccomp:\t0\n",
        t->comm, t->fs().umask, StateName(*t), t->tgid(), t->tid(), t->tg().ppid, t->uid, t->euid,
        t->suid, t->fsuid, t->gid, t->egid, t->sgid, t->fsgid, t->fds().limit(),
        absl::StrJoin(t->groups, " ") + (t->groups.empty() ? "" : " "), rss_kb,
        t->tg().threads.size(), 0, t->tg().rlimits[RLIMIT_SIGPENDING].rlim_cur,
        t->ThreadPendingSignals(), t->tg().shared_pending.pending(), t->sigmask,
        t->caps.inheritable, t->caps.permitted, t->caps.effective, t->caps.bounding,
        t->caps.ambient, t->no_new_privs ? 1 : 0);
  }
  Result<std::string> StatText(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    // utime, stime, cutime and cstime (fields 14 to 17) in clock ticks;
    // priority: 20 + nice, or -1 - the real-time priority (fs/proc/array.c).
    CpuTimes self = TaskTimes(*t);
    const bool rt = t->sched_policy == SCHED_FIFO || t->sched_policy == SCHED_RR;
    const int priority = rt ? -1 - t->sched_priority : 20 + t->nice;
    // starttime (field 22): when the thread was made, in clock ticks of
    // the sandbox's CLOCK_BOOTTIME.
    return absl::StrFormat(
        "%d (%s) %c %d %d %d 0 -1 0 0 0 0 0 %d %d %d %d %d %d %d 0 %d 0 0\n", t->tid(), t->comm,
        StateName(*t)[0], t->tg().ppid, t->tg().pgid, t->tg().sid, NsToClockTicks(self.user),
        NsToClockTicks(self.system), NsToClockTicks(t->cpu.children.user),
        NsToClockTicks(t->cpu.children.system), priority, t->nice,
        std::max<size_t>(t->tg().threads.size(), 1), NsToClockTicks(t->start_boottime_ns));
  }
  Result<std::pair<uint32_t, uint32_t>> Owner(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    return std::pair<uint32_t, uint32_t>{t->euid, t->egid};
  }
  Result<vfs::DentryRef> FdDentry(int pid, int fd) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    ASSIGN_OR_RETURN(vfs::FileRef f, t->fds().Get(fd));
    if (f->dentry() != nullptr) return f->dentry();
    auto d = std::make_shared<vfs::Dentry>("", nullptr, f->inode());
    d->set_magic_file(f);
    return d;
  }

  Result<std::map<int, std::string>> Fds(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    std::map<int, std::string> out;
    for (auto& [fd, e] : t->fds().entries()) {
      if (e.file->dentry()) {
        out[fd] = e.file->dentry()->Path();
      } else if (e.file->inode()->Type() == S_IFIFO) {
        auto st = e.file->Stat();
        out[fd] = absl::StrFormat("pipe:[%d]", st.ok() ? st->st_ino : 0);
      } else if (e.file->HostFd() >= 0) {
        out[fd] = absl::StrFormat("host:[%d]", fd);
      } else {
        auto* anon = dynamic_cast<const anon::AnonFile*>(e.file.get());
        out[fd] = "anon_inode:" + (anon != nullptr ? anon->name() : std::string("[unknown]"));
      }
    }
    return out;
  }
  std::string MemInfo() override {
    uint64_t total_kb = k_.MemoryTotal() / 1024;
    uint64_t used_kb = k_.MemoryUsed() / 1024;
    return absl::StrFormat(
        "MemTotal:       %8d kB\nMemFree:        %8d kB\nMemAvailable:   %8d kB\n"
        "Buffers:               0 kB\nCached:                0 kB\nSwapCached:            0 kB\n"
        "SwapTotal:             0 kB\nSwapFree:              0 kB\nShmem:                 0 kB\n",
        total_kb, total_kb - used_kb, total_kb - used_kb);
  }
  std::string CpuInfo() override { return k_.cpuinfo; }
  std::string Hostname() override { return k_.hostname; }
  std::string Domainname() override { return k_.domainname; }
  std::string Release() override { return kHuskRelease; }
  std::string Version() override { return kHuskVersion; }
  // The sandbox's CLOCK_BOOTTIME, in hundredths as Linux prints it (and
  // the same again for the idle time).
  std::string Uptime() override {
    const int64_t up = SandboxNow(CLOCK_BOOTTIME);
    const int64_t s = up / 1000000000, cs = up % 1000000000 / 10000000;
    return absl::StrFormat("%d.%02d %d.%02d\n", s, cs, s, cs);
  }
  std::string SystemStat() override {
    // btime: the wall clock's time when CLOCK_BOOTTIME was 0 (getboottime64).
    const int64_t boot = SandboxNow(CLOCK_BOOTTIME);
    const int64_t btime = (SandboxNow(CLOCK_REALTIME) - boot) / 1000000000;
    // No per-task CPU accounting yet: the time lines show the CPUs, idle.
    const int64_t ticks = NsToClockTicks(boot);
    int cpus = k_.cpus;
    std::string out = absl::StrFormat("cpu  0 0 0 %d 0 0 0 0 0 0\n", ticks * cpus);
    for (int i = 0; i < cpus; i++) out += absl::StrFormat("cpu%d 0 0 0 %d 0 0 0 0 0 0\n", i, ticks);
    out += absl::StrFormat(
        "intr 0\nctxt 0\nbtime %d\nprocesses %d\nprocs_running 1\nprocs_blocked 0\nsoftirq 0\n",
        btime, Pids().size());
    return out;
  }
  std::string LoadAvg() override {
    return absl::StrFormat("0.00 0.00 0.00 1/%d %d\n", Pids().size(), CurrentPid());
  }

 private:
  // What of [start, end) is readable, in order (access_remote_vm).
  static std::string ReadArea(MemoryManager& mm, uintptr_t start, uintptr_t end) {
    std::string out(end - start, '\0');
    out.resize(mm.CopyInPartial(start, out.data(), out.size()));
    return out;
  }

  Result<Task*> Find(int pid) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto t = k_.FindTask(pid);
    if (!t) return Errno{ENOENT};
    return t.get();
  }
  Kernel& k_;
};

}  // namespace

std::shared_ptr<procfs::ProcProvider> NewKernelProcProvider(Kernel& k) {
  return std::make_shared<KernelProcProvider>(k);
}

}  // namespace husk
