#include "sentry/boot/proc_provider.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sentry/kernel/anon.h"
#include "sentry/kernel/tty.h"
#include "sentry/kernel/version.h"
#include "sentry/net/unix.h"

namespace husk {
namespace {

// Called from syscall handlers, which hold the kernel lock.

// Page-table pages an address space needs, estimated from what it holds:
// one per 512 resident pages and one for each level above (VmPTE).
uint64_t PageTablePages(const MemoryUsage& u) { return u.rss() / 512 + (u.rss() > 0 ? 3 : 0); }

// The signals the task's process ignores and catches (collect_sigign_sigcgt).
void DispositionMasks(Task& t, uint64_t* ign, uint64_t* cgt) {
  *ign = *cgt = 0;
  const auto& actions = t.sigactions();
  for (int sig = 1; sig <= kMaxSignal; sig++) {
    const uint64_t handler = actions[sig].handler;
    if (handler == reinterpret_cast<uint64_t>(SIG_IGN)) {
      *ign |= SignalBit(sig);
    } else if (handler != reinterpret_cast<uint64_t>(SIG_DFL)) {
      *cgt |= SignalBit(sig);
    }
  }
}

// "%*pb" over the sandbox's CPUs (nr_cpu_ids): the mask in hex, 32 bits per comma-separated group,
// as wide as the CPU count needs.
std::string CpuMaskHex(const CpuMask& mask, int cpus) {
  cpus = std::clamp(cpus, 1, kMaxCpus);
  std::string out;
  for (int group = (cpus - 1) / 32; group >= 0; group--) {
    uint32_t bits = 0;
    for (int i = 0; i < 32 && group * 32 + i < cpus; i++) {
      const int cpu = group * 32 + i;
      if (mask.test(static_cast<size_t>(cpu))) bits |= uint32_t{1} << i;
    }
    const int width = group == (cpus - 1) / 32 ? ((cpus - 1) % 32) / 4 + 1 : 8;
    absl::StrAppendFormat(&out, "%s%0*x", out.empty() ? "" : ",", width, bits);
  }
  return out;
}

// "%*pbl": the mask as a list of ranges ("0-3,6").
std::string CpuMaskList(const CpuMask& mask, int cpus) {
  cpus = std::clamp(cpus, 1, kMaxCpus);
  std::string out;
  for (int i = 0; i < cpus; i++) {
    if (!mask.test(static_cast<size_t>(i))) continue;
    int j = i;
    while (j + 1 < cpus) {
      const int next = j + 1;
      if (!mask.test(static_cast<size_t>(next))) break;
      j = next;
    }
    if (!out.empty()) out += ',';
    out += j > i ? absl::StrFormat("%d-%d", i, j) : absl::StrCat(i);
    i = j;
  }
  return out;
}

// /proc/<pid>/mem of one address space. It holds the MM weakly, as
// Linux's mem file holds the mm_struct but not its pages: once the process
// exits or execs, reads find nothing. Called with the kernel lock held,
// under which tasks drop their MMs, so a locked MM is never the last
// reference.
class TaskMemory : public procfs::MemAccess {
 public:
  explicit TaskMemory(std::weak_ptr<MemoryManager> mm) : mm_(std::move(mm)) {}

  Result<size_t> Read(uint64_t addr, char* buf, size_t n) override {
    return Copy(addr, buf, n, false);
  }
  Result<size_t> Write(uint64_t addr, const char* buf, size_t n) override {
    return Copy(addr, const_cast<char*>(buf), n, true);
  }

 private:
  // access_remote_vm page by page: stops at the first page that fails.
  Result<size_t> Copy(uint64_t addr, char* buf, size_t n, bool write) {
    std::shared_ptr<MemoryManager> mm = mm_.lock();
    if (mm == nullptr) return size_t{0};
    size_t done = 0;
    while (done < n) {
      const uint64_t at = addr + done;
      if (at < addr || at >= kTaskSize) break;
      const size_t chunk = std::min<size_t>(n - done, PageDown(at) + kPageSize - at);
      Status s =
          write ? mm->ForceCopyOut(at, buf + done, chunk) : mm->ForceCopyIn(at, buf + done, chunk);
      if (!s.ok()) break;
      done += chunk;
    }
    if (done == 0) return Errno{EIO};
    return done;
  }

  std::weak_ptr<MemoryManager> mm_;
};

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
  // The mount table of the process's own namespace.
  Result<std::string> Mounts(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    return vfs::RenderMountTable(false, t->fs().mnt_ns.get());
  }
  Result<std::string> Mountinfo(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    return vfs::RenderMountTable(true, t->fs().mnt_ns.get());
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
    const int tracer = t->ptrace_ != nullptr ? t->ptrace_->tracer : 0;
    std::string out = absl::StrFormat(
        "Name:\t%s\nUmask:\t%04o\nState:\t%s\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\n"
        "TracerPid:\t%d\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nFDSize:\t%d\nGroups:\t%s\n",
        t->comm, t->fs().umask, StateName(*t), t->tgid(), t->tid(), t->tg().ppid, tracer, t->uid,
        t->euid, t->suid, t->fsuid, t->gid, t->egid, t->sgid, t->fsgid, t->fds().limit(),
        absl::StrJoin(t->groups, " ") + (t->groups.empty() ? "" : " "));
    // The memory lines only while the process has an address space
    // (task_mem: a zombie shows none).
    if (MemoryManager* mm = t->mm_if_any()) {
      const MemoryUsage u = mm->Usage();
      auto kb = [&out](const char* name, uint64_t pages) {
        absl::StrAppendFormat(&out, "%s:\t%8d kB\n", name, pages * (kPageSize / 1024));
      };
      kb("VmPeak", std::max(u.peak_total, u.total));
      kb("VmSize", u.total);
      kb("VmLck", 0);
      kb("VmPin", 0);
      kb("VmHWM", std::max(u.peak_rss, u.rss()));
      kb("VmRSS", u.rss());
      kb("RssAnon", u.rss_anon);
      kb("RssFile", u.rss_file);
      kb("RssShmem", u.rss_shmem);
      kb("VmData", u.data);
      kb("VmStk", u.stack);
      kb("VmExe", u.text);
      kb("VmLib", u.exec > u.text ? u.exec - u.text : 0);
      kb("VmPTE", PageTablePages(u));
      kb("VmSwap", 0);
      out += "HugetlbPages:\t       0 kB\n";
    }
    uint64_t ign = 0, cgt = 0;
    DispositionMasks(*t, &ign, &cgt);
    absl::StrAppendFormat(
        &out,
        "Threads:\t%d\nSigQ:\t%d/%d\nSigPnd:\t%016x\nShdPnd:\t%016x\nSigBlk:\t%016x\n"
        "SigIgn:\t%016x\nSigCgt:\t%016x\n"
        "CapInh:\t%016x\nCapPrm:\t%016x\nCapEff:\t%016x\nCapBnd:\t%016x\nCapAmb:\t%016x\n"
        "NoNewPrivs:\t%d\nSeccomp:\t0\nCpus_allowed:\t%s\nCpus_allowed_list:\t%s\n"
        "Mems_allowed:\t1\nMems_allowed_list:\t0\n"
        "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
        t->tg().threads.size(), 0, t->tg().rlimits[RLIMIT_SIGPENDING].rlim_cur,
        t->ThreadPendingSignals(), t->tg().shared_pending.pending(), t->sigmask, ign, cgt,
        t->caps.inheritable, t->caps.permitted, t->caps.effective, t->caps.bounding,
        t->caps.ambient, t->no_new_privs ? 1 : 0, CpuMaskHex(t->cpu_mask, k_.cpus),
        CpuMaskList(t->cpu_mask, k_.cpus));
    return out;
  }
  Result<std::string> StatText(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    // utime, stime, cutime and cstime (fields 14 to 17) in clock ticks;
    // priority: 20 + nice, or -1 - the real-time priority (fs/proc/array.c).
    CpuTimes self = TaskTimes(*t);
    const bool rt = t->sched_policy == SCHED_FIFO || t->sched_policy == SCHED_RR;
    const int priority = rt ? -1 - t->sched_priority : 20 + t->nice;
    MemoryUsage u;
    if (MemoryManager* mm = t->mm_if_any()) u = mm->Usage();
    const ThreadGroup& g = t->tg();
    uint64_t ign = 0, cgt = 0;
    DispositionMasks(*t, &ign, &cgt);
    // starttime (field 22): when the thread was made, in clock ticks of
    // the sandbox's CLOCK_BOOTTIME. vsize (23) in bytes, rss (24) in pages,
    // rsslim (25) RLIMIT_RSS's soft limit; the address-space fields (26 to
    // 28, 45 to 51) only while there is one, as do_task_stat shows them.
    // exit_signal (38) is -1 for a thread that is not a leader.
    const bool has_mm = t->mm_if_any() != nullptr;
    const tty::StatFields tty = tty::ProcStatFields(g);  // tty_nr (7), tpgid (8)
    std::string out = absl::StrFormat(
        "%d (%s) %c %d %d %d %u %d 0 0 0 0 0 %d %d %d %d %d %d %d 0 %d %d %d %u", t->tid(), t->comm,
        StateName(*t)[0], g.ppid, g.pgid, g.sid, tty.tty_nr, tty.tpgid, NsToClockTicks(self.user),
        NsToClockTicks(self.system), NsToClockTicks(t->cpu.children.user),
        NsToClockTicks(t->cpu.children.system), priority, t->nice,
        std::max<size_t>(g.threads.size(), 1), NsToClockTicks(t->start_boottime_ns),
        u.total * kPageSize, u.rss(), g.rlimits[RLIMIT_RSS].rlim_cur);
    absl::StrAppendFormat(&out, " %u %u %u 0 0", has_mm ? u.start_code : 0, has_mm ? u.end_code : 0,
                          has_mm ? u.start_stack : 0);
    absl::StrAppendFormat(&out, " %u %u %u %u 0 0 0 %d 0 %d %d 0 0 0", t->ThreadPendingSignals(),
                          t->sigmask, ign, cgt, t->is_leader() ? g.exit_signal : -1,
                          rt ? t->sched_priority : 0, t->sched_policy);
    if (has_mm) {
      absl::StrAppendFormat(&out, " %u %u %u %u %u %u %u", u.start_data, u.end_data, u.start_brk,
                            g.arg_start, g.arg_end, g.env_start, g.env_end);
    } else {
      out += " 0 0 0 0 0 0 0";
    }
    absl::StrAppendFormat(&out, " %d\n", t->exited() ? t->exit_code : 0);
    return out;
  }
  // statm (task_statm): size resident shared text lib data dt, in pages;
  // lib and dt are 0 since Linux 2.6.
  Result<std::string> Statm(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    MemoryManager* mm = t->mm_if_any();
    if (mm == nullptr) return std::string("0 0 0 0 0 0 0\n");
    const MemoryUsage u = mm->Usage();
    return absl::StrFormat("%d %d %d %d 0 %d 0\n", u.total, u.rss(), u.rss_file + u.rss_shmem,
                           u.text, u.data + u.stack);
  }
  Result<std::string> Smaps(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    MemoryManager* mm = t->mm_if_any();
    if (mm == nullptr) return std::string();
    return mm->ProcSmaps();
  }
  // proc_pid_limits: a header and one row per resource, "unlimited" for
  // RLIM_INFINITY, the unit last where there is one.
  Result<std::string> Limits(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    struct Row {
      const char* name;
      const char* unit;
    };
    static constexpr Row kRows[RLIM_NLIMITS] = {
        {"Max cpu time", "seconds"},        {"Max file size", "bytes"},
        {"Max data size", "bytes"},         {"Max stack size", "bytes"},
        {"Max core file size", "bytes"},    {"Max resident set", "bytes"},
        {"Max processes", "processes"},     {"Max open files", "files"},
        {"Max locked memory", "bytes"},     {"Max address space", "bytes"},
        {"Max file locks", "locks"},        {"Max pending signals", "signals"},
        {"Max msgqueue size", "bytes"},     {"Max nice priority", nullptr},
        {"Max realtime priority", nullptr}, {"Max realtime timeout", "us"},
    };
    auto value = [](rlim_t v) {
      return v == RLIM_INFINITY ? std::string("unlimited") : absl::StrCat(v);
    };
    std::string out =
        absl::StrFormat("%-25s %-20s %-20s %-10s\n", "Limit", "Soft Limit", "Hard Limit", "Units");
    for (int i = 0; i < RLIM_NLIMITS; i++) {
      const struct rlimit& r = t->tg().rlimits[i];
      absl::StrAppendFormat(&out, "%-25s %-20s %-20s ", kRows[i].name, value(r.rlim_cur),
                            value(r.rlim_max));
      if (kRows[i].unit != nullptr) {
        absl::StrAppendFormat(&out, "%-10s\n", kRows[i].unit);
      } else {
        out += '\n';
      }
    }
    return out;
  }
  Result<int> OomScoreAdj(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    return t->tg().oom_score_adj;
  }
  // __set_oom_adj: lowering below the floor (legacy oom_adj: below the
  // current value) needs CAP_SYS_RESOURCE; a writer that has it sets the
  // floor.
  Status SetOomScoreAdj(int pid, int value, bool legacy) override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    Task* caller = Kernel::Current();
    const bool capable = caller == nullptr || caller->Capable(CAP_SYS_RESOURCE);
    ThreadGroup& g = t->tg();
    const int floor = legacy ? g.oom_score_adj : g.oom_score_adj_min;
    if (value < floor && !capable) return Errno{EACCES};
    g.oom_score_adj = value;
    if (!legacy && capable) g.oom_score_adj_min = value;
    return Ok();
  }
  // proc_oom_score: oom_badness (resident and page-table pages, moved by
  // oom_score_adj in thousandths of memory) on a 0..2000 scale. Init and
  // a process at OOM_SCORE_ADJ_MIN are never chosen: 0.
  Result<long> OomScore(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    const int adj = t->tg().oom_score_adj;
    MemoryManager* mm = t->mm_if_any();
    if (t->tgid() == 1 || adj == -1000 || mm == nullptr) return 0L;
    const long total = std::max<long>(static_cast<long>(k_.MemoryTotal() / kPageSize), 1);
    const MemoryUsage u = mm->Usage();
    long badness = static_cast<long>(u.rss() + PageTablePages(u));
    badness += static_cast<long>(adj) * (total / 1000);
    return (1000 + badness * 1000 / total) * 2 / 3;
  }
  Result<uint32_t> CoredumpFilter(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    return t->tg().coredump_filter;
  }
  Status SetCoredumpFilter(int pid, uint32_t filter) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    t->tg().coredump_filter = filter;
    return Ok();
  }
  // comm_write: only a thread of the writer's own process is renamed.
  Status SetComm(int tid, const std::string& name) override {
    ASSIGN_OR_RETURN(Task * t, Find(tid));
    Task* caller = Kernel::Current();
    if (caller == nullptr || caller->tgid() != t->tgid()) return Errno{EINVAL};
    t->comm = name.substr(0, 15);
    return Ok();
  }
  // seq_show: the offset, the flags as the file keeps them (open's
  // creation flags gone) with O_CLOEXEC for FD_CLOEXEC, the mount, the inode.
  Result<procfs::FdInfo> FdInfoOf(int pid, int fd) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    const auto& entries = t->fds().entries();
    auto it = entries.find(fd);
    if (it == entries.end()) return Errno{ENOENT};
    const vfs::FileRef& f = it->second.file;
    procfs::FdInfo info;
    if (!f->inode()->Stream() && f->inode()->Type() != S_IFIFO && f->HostFd() < 0) {
      auto pos = f->Seek(0, SEEK_CUR);
      if (pos.ok()) info.pos = *pos;
    }
    info.flags = f->flags() & ~(O_CLOEXEC | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC);
    if (it->second.cloexec) info.flags |= O_CLOEXEC;
    if (f->dentry() != nullptr) info.mnt_id = vfs::MountId(*f->dentry(), t->fs().mnt_ns.get());
    auto st = f->Stat();
    if (st.ok()) info.ino = st->st_ino;
    return info;
  }
  Result<std::shared_ptr<procfs::MemAccess>> OpenMem(int pid) override {
    ASSIGN_OR_RETURN(Task * t, Find(pid));
    return std::shared_ptr<procfs::MemAccess>(std::make_shared<TaskMemory>(t->mm_));
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
      } else if (e.file->inode()->Type() == S_IFSOCK) {
        auto st = e.file->Stat();
        out[fd] = absl::StrFormat("socket:[%d]", st.ok() ? st->st_ino : 0);
      } else if (e.file->HostFd() >= 0) {
        out[fd] = absl::StrFormat("host:[%d]", fd);
      } else {
        auto* anon = dynamic_cast<const anon::AnonFile*>(e.file.get());
        out[fd] = "anon_inode:" + (anon != nullptr ? anon->name() : std::string("[unknown]"));
      }
    }
    return out;
  }
  std::string NetFile(const std::string& name) override {
    if (name == "unix") return net::ProcNetUnix();
    if (name == "dev") return net::ProcNetDev();
    if (name == "route") return net::ProcNetRoute();
    if (name == "snmp") return net::ProcNetSnmp();
    if (name == "netstat") return net::ProcNetNetstat();
    if (name == "if_inet6") return net::ProcNetIfInet6();
    return net::ProcNetInet(name.rfind("tcp", 0) == 0 ? SOCK_STREAM : SOCK_DGRAM,
                            name.back() == '6' ? AF_INET6 : AF_INET);
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
  std::string Hostname() override { return Uts().hostname; }
  std::string Domainname() override { return Uts().domainname; }
  Status SetHostname(const std::string& name) override {
    Uts().hostname = name;
    return Ok();
  }
  Status SetDomainname(const std::string& name) override {
    Uts().domainname = name;
    return Ok();
  }
  // The sandbox's cgroup: its memory limit and account, memory.stat's
  // split summed over the address spaces (file pages that no process maps,
  // the page cache's and tmpfs's, fall to "file"), and the CPU time of
  // every task and of the children they waited for.
  procfs::CgroupUsage Cgroup() override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    procfs::CgroupUsage u;
    u.memory_max = k_.MemoryTotal();
    u.memory_current = k_.MemoryUsed();
    uint64_t anon = 0, shmem = 0, mapped = 0;
    CpuTimes cpu;
    for (int pid : k_.Pids()) {
      std::shared_ptr<Task> leader = k_.FindTask(pid);
      if (leader == nullptr) continue;
      if (MemoryManager* mm = leader->mm_if_any()) {
        const MemoryUsage m = mm->Usage();
        anon += m.rss_anon * kPageSize;
        shmem += m.rss_shmem * kPageSize;
        mapped += m.rss_file * kPageSize;
      }
      for (int tid : k_.Tids(pid)) {
        std::shared_ptr<Task> t = k_.FindTask(tid);
        if (t == nullptr) continue;
        const CpuTimes times = TaskTimes(*t);
        cpu.user += times.user + t->cpu.children.user;
        cpu.system += times.system + t->cpu.children.system;
      }
    }
    u.anon = std::min(anon, u.memory_current);
    u.shmem = std::min(shmem, u.memory_current - u.anon);
    u.file = u.memory_current - u.anon;
    u.file_mapped = std::min(mapped, u.file);
    u.cpu_user_us = static_cast<uint64_t>(std::max<int64_t>(cpu.user, 0)) / 1000;
    u.cpu_system_us = static_cast<uint64_t>(std::max<int64_t>(cpu.system, 0)) / 1000;
    u.cpu_usage_us = u.cpu_user_us + u.cpu_system_us;
    return u;
  }
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

  // The calling task's UTS namespace (the first one for a caller that is
  // no task).
  UtsNamespace& Uts() {
    Task* t = Kernel::Current();
    return t != nullptr ? t->uts() : *k_.init_uts;
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
