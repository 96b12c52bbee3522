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

// What /proc shows, supplied by the kernel (the kernel implements it).
// Per-pid calls return ESRCH (or ENOENT) for a pid that does not exist; the
// provider is called without procfs locks held.
class ProcProvider {
 public:
  virtual ~ProcProvider() = default;
  virtual int CurrentPid() = 0;  // the calling task's pid, for /proc/self
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
  virtual Result<std::string> Cmdline(int pid) = 0;             // NUL-separated
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
  virtual std::string MemInfo() = 0;
  virtual std::string CpuInfo() = 0;
  virtual std::string Uptime() = 0;
  virtual std::string LoadAvg() = 0;
  // /proc/stat: CPU time lines, btime, process counts. Empty by default.
  virtual std::string SystemStat() { return ""; }
  // What uname(2) tells, for /proc/version and /proc/sys/kernel.
  virtual std::string Hostname() { return "localhost"; }
  virtual std::string Domainname() { return "(none)"; }
  virtual std::string Release() { return "6.1.0"; }
  virtual std::string Version() { return "#1"; }
  // /proc/pid/mounts (fstab(5) format) and mountinfo: the VFS's mount
  // table (one mount namespace for the whole sandbox).
  virtual Result<std::string> Mounts(int pid);
  virtual Result<std::string> Mountinfo(int pid);
};

// A new procfs instance (its own st_dev) showing `provider`.
vfs::InodeRef NewProcRoot(std::shared_ptr<ProcProvider> provider);

}  // namespace husk::procfs

#endif  // HUSK_SENTRY_FSIMPL_PROC_PROC_H_
