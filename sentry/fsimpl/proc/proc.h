// procfs: /proc, generated from what the kernel tells it through
// ProcProvider. Every file is rendered when it is opened and read from that
// snapshot, so reads at increasing offsets see one consistent text.
#ifndef HUSK_SENTRY_FSIMPL_PROC_PROC_H_
#define HUSK_SENTRY_FSIMPL_PROC_PROC_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "sentry/vfs/vfs.h"

namespace husk::procfs {

// What /proc/<pid>/fdinfo/<fd> shows of an open descriptor (fs/proc/fd.c).
struct FdInfo {
  int64_t pos = 0;   // the file offset
  int flags = 0;     // the open file's flags, O_CLOEXEC when the descriptor has FD_CLOEXEC
  int mnt_id = 0;    // the mount's id in mountinfo
  uint64_t ino = 0;  // the inode number
};

// What the sandbox's cgroup shows: cgroup v2, with every process of the
// sandbox in one cgroup that is the root of what they see (as a container
// in its own cgroup namespace sees itself).
struct CgroupUsage {
  uint64_t memory_max = 0;      // the memory limit in bytes (memory.max)
  uint64_t memory_current = 0;  // what is charged against it (memory.current)
  // memory.stat, in bytes: anonymous memory, file pages (the page cache,
  // tmpfs and shared memory included, as Linux counts them), and of those
  // the shared memory and what is mapped.
  uint64_t anon = 0, file = 0, shmem = 0, file_mapped = 0;
  int64_t cpu_quota_us = -1;  // cpu.max's quota; -1: none ("max")
  uint64_t cpu_period_us = 100000;
  uint64_t cpu_usage_us = 0;  // cpu.stat: the CPU time of the sandbox's tasks
  uint64_t cpu_user_us = 0, cpu_system_us = 0;
};

// /proc/<pid>/mem's access to one address space, taken when the file is
// opened (Linux's proc_mem_open holds the mm, not the task: an exec or the
// exit of the process leaves the file reading nothing).
class MemAccess {
 public:
  virtual ~MemAccess() = default;
  // Copies what it can of [addr, addr+n) with ptrace's force (protections
  // ignored), in order; returns the bytes copied: EIO if the first byte is
  // not mapped, 0 once the address space is gone (mem_rw).
  virtual Result<size_t> Read(uint64_t addr, char* buf, size_t n) = 0;
  virtual Result<size_t> Write(uint64_t addr, const char* buf, size_t n) = 0;
};

// What /proc shows, supplied by the kernel (the kernel implements it).
// Per-pid calls return ESRCH (or ENOENT) for a pid that does not exist; the
// provider is called without procfs locks held.
class ProcProvider {
 public:
  virtual ~ProcProvider() = default;
  virtual int CurrentPid() = 0;                      // the calling task's pid, for /proc/self
  virtual int CurrentTid() { return CurrentPid(); }  // its thread id, for /proc/thread-self
  virtual std::vector<int> Pids() = 0;
  // The thread ids of process pid (/proc/pid/task); empty if there is none.
  virtual std::vector<int> Tids(int pid) { return {pid}; }
  // The process of thread tid, 0 if there is none.
  virtual int ProcessOf(int tid) { return tid; }
  virtual Result<std::string> Maps(int pid) = 0;     // text of /proc/pid/maps
  virtual Result<std::string> ExePath(int pid) = 0;  // target of /proc/pid/exe
  virtual Result<std::string> CwdPath(int pid) = 0;
  // Target of /proc/pid/root: the process's root directory (chroot(2)).
  virtual Result<std::string> RootPath(int pid) { return std::string("/"); }
  virtual Result<std::string> Cmdline(int pid) = 0;  // NUL-separated
  // The auxiliary vector exec gave the process (binary pairs).
  virtual Result<std::string> Auxv(int pid) { return Errno{ENOENT}; }
  // The environment exec gave the process (NUL-terminated strings).
  virtual Result<std::string> Environ(int pid) { return Errno{ENOENT}; }
  virtual Result<std::string> Comm(int pid) = 0;                // the name, with or without "\n"
  virtual Result<std::string> StatusText(int pid) = 0;          // whole /proc/pid/status
  virtual Result<std::string> StatText(int pid) = 0;            // whole /proc/pid/stat
  virtual Result<std::map<int, std::string>> Fds(int pid) = 0;  // fd -> link target
  // What following /proc/pid/fd/N reaches: the open file's dentry (a
  // nameless one carrying the file for pipes and the like). ENOSYS: the
  // link is followed by its text instead.
  virtual Result<vfs::DentryRef> FdDentry(int pid, int fd) { return Errno{ENOSYS}; }
  // Who owns /proc/pid and everything in it: the process's effective uid
  // and gid, as Linux's task_dump_owner() shows a dumpable process. root
  // by default.
  virtual Result<std::pair<uint32_t, uint32_t>> Owner(int pid) {
    return std::pair<uint32_t, uint32_t>{0, 0};
  }
  // /proc/pid/statm, smaps and limits: their whole texts.
  virtual Result<std::string> Statm(int pid) { return Errno{ENOENT}; }
  virtual Result<std::string> Smaps(int pid) { return Errno{ENOENT}; }
  virtual Result<std::string> Limits(int pid) { return Errno{ENOENT}; }
  // The process's oom_score_adj (-1000..1000).
  virtual Result<int> OomScoreAdj(int pid) { return Errno{ENOENT}; }
  // Sets it for the calling task (range checked by the caller). Lowering it
  // below the floor (legacy oom_adj: below its current value) needs
  // CAP_SYS_RESOURCE: EACCES (__set_oom_adj).
  virtual Status SetOomScoreAdj(int pid, int value, bool legacy) { return Errno{EACCES}; }
  // /proc/pid/oom_score: the badness, 0..2000 (proc_oom_score).
  virtual Result<long> OomScore(int pid) { return Errno{ENOENT}; }
  // /proc/pid/coredump_filter's bits.
  virtual Result<uint32_t> CoredumpFilter(int pid) { return Errno{ENOENT}; }
  virtual Status SetCoredumpFilter(int pid, uint32_t filter) { return Errno{EACCES}; }
  // Renames thread tid (at most 15 bytes); EINVAL unless the calling task
  // is of the same process (comm_write).
  virtual Status SetComm(int tid, const std::string& name) { return Errno{EINVAL}; }
  // /proc/pid/fdinfo/fd; ENOENT for a descriptor that is not open.
  virtual Result<FdInfo> FdInfoOf(int pid, int fd) { return Errno{ENOENT}; }
  // /proc/pid/mem opened by the calling task.
  virtual Result<std::shared_ptr<MemAccess>> OpenMem(int pid) { return Errno{ENOENT}; }
  virtual std::string MemInfo() = 0;
  virtual std::string CpuInfo() = 0;
  virtual std::string Uptime() = 0;
  virtual std::string LoadAvg() = 0;
  // /proc/stat: CPU time lines, btime, process counts. Empty by default.
  virtual std::string SystemStat() { return ""; }
  // /proc/net/NAME (unix, tcp, tcp6, udp, udp6): the sandbox's sockets.
  virtual std::string NetFile(const std::string& name) { return ""; }
  // What uname(2) tells, for /proc/version and /proc/sys/kernel.
  // The names are the calling task's UTS namespace's; setting them (a
  // write to /proc/sys/kernel/hostname or domainname) changes that one.
  virtual std::string Hostname() { return "localhost"; }
  virtual std::string Domainname() { return "(none)"; }
  virtual Status SetHostname(const std::string& name) { return Errno{EPERM}; }
  virtual Status SetDomainname(const std::string& name) { return Errno{EPERM}; }
  // The sandbox's cgroup (/sys/fs/cgroup, /proc/cgroups).
  virtual CgroupUsage Cgroup() { return CgroupUsage{}; }
  virtual std::string Release() { return "6.1.0"; }
  virtual std::string Version() { return "#1"; }
  // /proc/pid/mounts (fstab(5) format) and mountinfo: the VFS's mount
  // table (one mount namespace for the whole sandbox).
  virtual Result<std::string> Mounts(int pid);
  virtual Result<std::string> Mountinfo(int pid);
};

// A new procfs instance (its own st_dev) showing `provider`.
vfs::InodeRef NewProcRoot(std::shared_ptr<ProcProvider> provider);

// A new cgroup2 instance (its own st_dev, CGROUP2_SUPER_MAGIC): the root
// directory of the sandbox's cgroup, with the interface files runtimes read
// to size themselves (memory.max, cpu.max, ...), from `provider`. Read-only:
// the limits are the sandbox's, set at boot (cgroup.cc).
vfs::InodeRef NewCgroupRoot(std::shared_ptr<ProcProvider> provider);

}  // namespace husk::procfs

#endif  // HUSK_SENTRY_FSIMPL_PROC_PROC_H_
