#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>

#include <new>
#include <string>
#include <system_error>

#include "absl/strings/str_format.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/syscalls.h"

namespace husk::syscalls {
namespace {

constexpr int kMaxSyscall = 512;
using enum Fmt;

struct Table {
  std::array<SyscallInfo, kMaxSyscall> e{};
  void Set(int nr, Handler h, std::array<Fmt, 6> f = {}) {
    e[nr].handler = h;
    e[nr].fmt = f;
  }
  Table() {
#define X(num, sym) e[num].name = #sym;
#include "sentry/syscalls/syscall_names.inc"
#undef X
    // Files.
    Set(SYS_read, SysRead, {kFd, kBufOut, kInt});
    Set(SYS_write, SysWrite, {kFd, kBufIn, kInt});
    Set(SYS_pread64, SysPread64, {kFd, kBufOut, kInt, kInt});
    Set(SYS_pwrite64, SysPwrite64, {kFd, kBufIn, kInt, kInt});
    Set(SYS_pipe, SysPipe, {kPtr});
    Set(SYS_pipe2, SysPipe2, {kPtr, kOpenFlags});
    // Sockets (sys_socket.cc): unix domain sockets.
    Set(SYS_socket, SysSocket, {kInt, kHex, kInt});
    Set(SYS_socketpair, SysSocketpair, {kInt, kHex, kInt, kPtr});
    Set(SYS_bind, SysBind, {kFd, kPtr, kInt});
    Set(SYS_listen, SysListen, {kFd, kInt});
    Set(SYS_accept, SysAccept, {kFd, kPtr, kPtr});
    Set(SYS_accept4, SysAccept4, {kFd, kPtr, kPtr, kHex});
    Set(SYS_connect, SysConnect, {kFd, kPtr, kInt});
    Set(SYS_getsockname, SysGetsockname, {kFd, kPtr, kPtr});
    Set(SYS_getpeername, SysGetpeername, {kFd, kPtr, kPtr});
    Set(SYS_sendto, SysSendto, {kFd, kBufIn, kInt, kHex, kPtr, kInt});
    Set(SYS_recvfrom, SysRecvfrom, {kFd, kBufOut, kInt, kHex, kPtr, kPtr});
    Set(SYS_sendmsg, SysSendmsg, {kFd, kPtr, kHex});
    Set(SYS_recvmsg, SysRecvmsg, {kFd, kPtr, kHex});
    Set(SYS_sendmmsg, SysSendmmsg, {kFd, kPtr, kInt, kHex});
    Set(SYS_recvmmsg, SysRecvmmsg, {kFd, kPtr, kInt, kHex, kPtr});
    Set(SYS_shutdown, SysShutdown, {kFd, kInt});
    Set(SYS_getsockopt, SysGetsockopt, {kFd, kInt, kInt, kPtr, kPtr});
    Set(SYS_setsockopt, SysSetsockopt, {kFd, kInt, kInt, kPtr, kInt});
    Set(SYS_poll, SysPoll, {kPtr, kInt, kInt});
    Set(SYS_ppoll, SysPpoll, {kPtr, kInt, kPtr, kPtr, kInt});
    Set(SYS_select, SysSelect, {kInt, kPtr, kPtr, kPtr, kPtr});
    Set(SYS_pselect6, SysPselect6, {kInt, kPtr, kPtr, kPtr, kPtr, kPtr});
    Set(SYS_eventfd, SysEventfd, {kInt});
    Set(SYS_eventfd2, SysEventfd2, {kInt, kHex});
    Set(SYS_inotify_init, SysInotifyInit, {});
    Set(SYS_inotify_init1, SysInotifyInit1, {kHex});
    Set(SYS_inotify_add_watch, SysInotifyAddWatch, {kFd, kPath, kHex});
    Set(SYS_inotify_rm_watch, SysInotifyRmWatch, {kFd, kInt});
    Set(SYS_timerfd_create, SysTimerfdCreate, {kInt, kHex});
    Set(SYS_timerfd_settime, SysTimerfdSettime, {kFd, kHex, kPtr, kPtr});
    Set(SYS_timerfd_gettime, SysTimerfdGettime, {kFd, kPtr});
    Set(SYS_signalfd, SysSignalfd, {kFd, kPtr, kInt});
    Set(SYS_signalfd4, SysSignalfd4, {kFd, kPtr, kInt, kHex});
    Set(SYS_epoll_create, SysEpollCreate, {kInt});
    Set(SYS_epoll_create1, SysEpollCreate1, {kHex});
    Set(SYS_epoll_ctl, SysEpollCtl, {kFd, kInt, kFd, kPtr});
    Set(SYS_epoll_wait, SysEpollWait, {kFd, kPtr, kInt, kInt});
    Set(SYS_epoll_pwait, SysEpollPwait, {kFd, kPtr, kInt, kInt, kPtr, kInt});
    Set(SYS_epoll_pwait2, SysEpollPwait2, {kFd, kPtr, kInt, kPtr, kPtr, kInt});
    Set(SYS_readv, SysReadv, {kFd, kPtr, kInt});
    Set(SYS_writev, SysWritev, {kFd, kPtr, kInt});
    Set(SYS_preadv, SysPreadv, {kFd, kPtr, kInt, kInt, kInt});
    Set(SYS_pwritev, SysPwritev, {kFd, kPtr, kInt, kInt, kInt});
    Set(SYS_preadv2, SysPreadv2, {kFd, kPtr, kInt, kInt, kInt, kHex});
    Set(SYS_pwritev2, SysPwritev2, {kFd, kPtr, kInt, kInt, kInt, kHex});
    Set(SYS_open, SysOpen, {kPath, kOpenFlags, kOctal});
    Set(SYS_openat, SysOpenat, {kFd, kPath, kOpenFlags, kOctal});
    Set(SYS_creat, SysCreat, {kPath, kOctal});
    Set(SYS_close, SysClose, {kFd});
    Set(SYS_lseek, SysLseek, {kFd, kInt, kInt});
    Set(SYS_dup, SysDup, {kFd});
    Set(SYS_dup2, SysDup2, {kFd, kFd});
    Set(SYS_dup3, SysDup3, {kFd, kFd, kHex});
    Set(SYS_fcntl, SysFcntl, {kFd, kInt, kHex});
    Set(SYS_flock, SysFlock, {kFd, kHex});
    Set(SYS_ioctl, SysIoctl, {kFd, kHex, kHex});
    Set(SYS_fsync, SysFsync, {kFd});
    Set(SYS_fdatasync, SysFsync, {kFd});
    Set(SYS_fallocate, SysFallocate, {kFd, kHex, kInt, kInt});
    Set(SYS_sync, SysSync);
    Set(SYS_syncfs, SysSyncfs, {kFd});
    Set(SYS_sync_file_range, SysSyncFileRange, {kFd, kInt, kInt, kHex});
    Set(SYS_fadvise64, SysFadvise64, {kFd, kInt, kInt, kInt});
    Set(SYS_ftruncate, SysFtruncate, {kFd, kInt});
    Set(SYS_truncate, SysTruncate, {kPath, kInt});
    Set(SYS_getdents64, SysGetdents64, {kFd, kPtr, kInt});
    Set(SYS_getdents, SysGetdents, {kFd, kPtr, kInt});
    Set(SYS_sendfile, SysSendfile, {kFd, kFd, kPtr, kInt});
    Set(SYS_splice, SysSplice, {kFd, kPtr, kFd, kPtr, kInt, kHex});
    Set(SYS_tee, SysTee, {kFd, kFd, kInt, kHex});
    Set(SYS_vmsplice, SysVmsplice, {kFd, kPtr, kInt, kHex});
    Set(SYS_copy_file_range, SysCopyFileRange, {kFd, kPtr, kFd, kPtr, kInt, kHex});
    Set(SYS_stat, SysStat, {kPath, kPtr});
    Set(SYS_lstat, SysLstat, {kPath, kPtr});
    Set(SYS_fstat, SysFstat, {kFd, kPtr});
    Set(SYS_newfstatat, SysNewfstatat, {kFd, kPath, kPtr, kHex});
    Set(SYS_statx, SysStatx, {kFd, kPath, kHex, kHex, kPtr});
    Set(SYS_access, SysAccess, {kPath, kInt});
    Set(SYS_faccessat, SysFaccessat, {kFd, kPath, kInt});
    Set(SYS_faccessat2, SysFaccessat2, {kFd, kPath, kInt, kHex});
    Set(SYS_readlink, SysReadlink, {kPath, kBufOut, kInt});
    Set(SYS_readlinkat, SysReadlinkat, {kFd, kPath, kBufOut, kInt});
    Set(SYS_statfs, SysStatfs, {kPath, kPtr});
    Set(SYS_fstatfs, SysFstatfs, {kFd, kPtr});
    Set(SYS_getxattr, SysGetxattr, {kPath, kPath, kPtr, kInt});
    Set(SYS_lgetxattr, SysLgetxattr, {kPath, kPath, kPtr, kInt});
    Set(SYS_fgetxattr, SysFgetxattr, {kFd, kPath, kPtr, kInt});
    Set(SYS_memfd_create, SysMemfdCreate, {kPath, kHex});
    Set(SYS_setxattr, SysSetxattr, {kPath, kPath, kPtr, kInt, kHex});
    Set(SYS_lsetxattr, SysLsetxattr, {kPath, kPath, kPtr, kInt, kHex});
    Set(SYS_fsetxattr, SysFsetxattr, {kFd, kPath, kPtr, kInt, kHex});
    Set(SYS_listxattr, SysListxattr, {kPath, kPtr, kInt});
    Set(SYS_llistxattr, SysLlistxattr, {kPath, kPtr, kInt});
    Set(SYS_flistxattr, SysFlistxattr, {kFd, kPtr, kInt});
    Set(SYS_removexattr, SysRemovexattr, {kPath, kPath});
    Set(SYS_lremovexattr, SysLremovexattr, {kPath, kPath});
    Set(SYS_fremovexattr, SysFremovexattr, {kFd, kPath});
    Set(SYS_chmod, SysChmod, {kPath, kOctal});
    Set(SYS_fchmod, SysFchmod, {kFd, kOctal});
    Set(SYS_fchmodat, SysFchmodat, {kFd, kPath, kOctal});
    Set(SYS_chown, SysChown, {kPath, kInt, kInt});
    Set(SYS_fchown, SysFchown, {kFd, kInt, kInt});
    Set(SYS_lchown, SysLchown, {kPath, kInt, kInt});
    Set(SYS_fchownat, SysFchownat, {kFd, kPath, kInt, kInt, kHex});
    Set(SYS_utimensat, SysUtimensat, {kFd, kPath, kPtr, kHex});
    // Directories and names.
    Set(SYS_getcwd, SysGetcwd, {kPtr, kInt});
    Set(SYS_chdir, SysChdir, {kPath});
    Set(SYS_fchdir, SysFchdir, {kFd});
    Set(SYS_chroot, SysChroot, {kPath});
    Set(SYS_mount, SysMount, {kPath, kPath, kPath, kHex, kPtr});
    Set(SYS_umount2, SysUmount2, {kPath, kHex});
    Set(SYS_pivot_root, SysMountRefused, {kPath, kPath});
    Set(SYS_mkdir, SysMkdir, {kPath, kOctal});
    Set(SYS_mkdirat, SysMkdirat, {kFd, kPath, kOctal});
    Set(SYS_mknod, SysMknod, {kPath, kOctal, kHex});
    Set(SYS_mknodat, SysMknodat, {kFd, kPath, kOctal, kHex});
    Set(SYS_rmdir, SysRmdir, {kPath});
    Set(SYS_unlink, SysUnlink, {kPath});
    Set(SYS_unlinkat, SysUnlinkat, {kFd, kPath, kHex});
    Set(SYS_rename, SysRename, {kPath, kPath});
    Set(SYS_renameat, SysRenameat, {kFd, kPath, kFd, kPath});
    Set(SYS_renameat2, SysRenameat2, {kFd, kPath, kFd, kPath, kHex});
    Set(SYS_symlink, SysSymlink, {kPath, kPath});
    Set(SYS_symlinkat, SysSymlinkat, {kPath, kFd, kPath});
    Set(SYS_link, SysLink, {kPath, kPath});
    Set(SYS_linkat, SysLinkat, {kFd, kPath, kFd, kPath, kHex});
    Set(SYS_umask, SysUmask, {kOctal});
    // Memory.
    Set(SYS_brk, SysBrk, {kPtr});
    Set(SYS_mmap, SysMmap, {kPtr, kInt, kHex, kHex, kFd, kHex});
    Set(SYS_munmap, SysMunmap, {kPtr, kInt});
    Set(SYS_mprotect, SysMprotect, {kPtr, kInt, kHex});
    Set(SYS_madvise, SysMadvise, {kPtr, kInt, kInt});
    Set(SYS_mremap, SysMremap, {kPtr, kInt, kInt, kHex, kPtr});
    Set(SYS_msync, SysMsync, {kPtr, kInt, kHex});
    Set(SYS_mincore, SysMincore, {kPtr, kInt, kPtr});
    // Processes.
    Set(SYS_getpid, SysGetpid);
    Set(SYS_getppid, SysGetppid);
    Set(SYS_gettid, SysGettid);
    Set(SYS_getuid, SysGetuid);
    Set(SYS_geteuid, SysGeteuid);
    Set(SYS_getgid, SysGetgid);
    Set(SYS_getegid, SysGetegid);
    Set(SYS_getresuid, SysGetresuid, {kPtr, kPtr, kPtr});
    Set(SYS_getresgid, SysGetresgid, {kPtr, kPtr, kPtr});
    Set(SYS_getgroups, SysGetgroups, {kInt, kPtr});
    Set(SYS_setuid, SysSetuid, {kInt});
    Set(SYS_setgid, SysSetgid, {kInt});
    Set(SYS_setgroups, SysSetgroups, {kInt, kPtr});
    Set(SYS_setresuid, SysSetresuid, {kInt, kInt, kInt});
    Set(SYS_setresgid, SysSetresgid, {kInt, kInt, kInt});
    Set(SYS_setreuid, SysSetreuid, {kInt, kInt});
    Set(SYS_setregid, SysSetregid, {kInt, kInt});
    Set(SYS_setfsuid, SysSetfsuid, {kInt});
    Set(SYS_setfsgid, SysSetfsgid, {kInt});
    Set(SYS_getpgrp, SysGetpgrp);
    Set(SYS_getpgid, SysGetpgid, {kInt});
    Set(SYS_setpgid, SysSetpgid, {kInt, kInt});
    Set(SYS_getsid, SysGetsid, {kInt});
    Set(SYS_setsid, SysSetsid);
    Set(SYS_uname, SysUname, {kPtr});
    Set(SYS_sethostname, SysSethostname, {kBufIn, kInt});
    Set(SYS_setdomainname, SysSetdomainname, {kBufIn, kInt});
    Set(SYS_unshare, SysUnshare, {kHex});
    Set(SYS_arch_prctl, SysArchPrctl, {kHex, kHex});
    Set(SYS_set_tid_address, SysSetTidAddress, {kPtr});
    Set(SYS_set_robust_list, SysSetRobustList, {kPtr, kInt});
    Set(SYS_get_robust_list, SysGetRobustList, {kInt, kPtr, kPtr});
    Set(SYS_futex_waitv, SysFutexWaitv, {kPtr, kInt, kHex, kPtr, kInt});
    Set(SYS_prctl, SysPrctl, {kInt, kHex, kHex, kHex, kHex});
    Set(SYS_capget, SysCapget, {kPtr, kPtr});
    Set(SYS_capset, SysCapset, {kPtr, kPtr});
    Set(SYS_getrlimit, SysGetrlimit, {kInt, kPtr});
    Set(SYS_setrlimit, SysSetrlimit, {kInt, kPtr});
    Set(SYS_prlimit64, SysPrlimit64, {kInt, kInt, kPtr, kPtr});
    Set(SYS_getrandom, SysGetrandom, {kPtr, kInt, kHex});
    Set(SYS_sysinfo, SysSysinfo, {kPtr});
    Set(SYS_exit, SysExit, {kInt});
    Set(SYS_exit_group, SysExitGroup, {kInt});
    Set(SYS_wait4, SysWait4, {kInt, kPtr, kHex, kPtr});
    Set(SYS_waitid, SysWaitid, {kInt, kInt, kPtr, kHex, kPtr});
    Set(SYS_pidfd_open, SysPidfdOpen, {kInt, kHex});
    Set(SYS_pidfd_send_signal, SysPidfdSendSignal, {kFd, kSignal, kPtr, kHex});
    Set(SYS_pidfd_getfd, SysPidfdGetfd, {kFd, kInt, kHex});
    Set(SYS_clone, SysClone, {kHex, kPtr, kPtr, kPtr, kHex});
    Set(SYS_clone3, SysClone3, {kPtr, kInt});
    Set(SYS_ptrace, SysPtrace, {kInt, kInt, kPtr, kPtr});
    Set(SYS_fork, SysFork);
    Set(SYS_vfork, SysVfork);
    Set(SYS_execve, SysExecve, {kPath, kPtr, kPtr});
    Set(SYS_futex, SysFutex, {kPtr, kInt, kInt, kPtr, kPtr, kInt});
    // Scheduling.
    Set(SYS_getpriority, SysGetpriority, {kInt, kInt});
    Set(SYS_setpriority, SysSetpriority, {kInt, kInt, kInt});
    Set(SYS_sched_setscheduler, SysSchedSetscheduler, {kInt, kInt, kPtr});
    Set(SYS_sched_setparam, SysSchedSetparam, {kInt, kPtr});
    Set(SYS_sched_getscheduler, SysSchedGetscheduler, {kInt});
    Set(SYS_sched_getparam, SysSchedGetparam, {kInt, kPtr});
    Set(SYS_sched_get_priority_max, SysSchedGetPriorityMax, {kInt});
    Set(SYS_sched_get_priority_min, SysSchedGetPriorityMin, {kInt});
    Set(SYS_sched_rr_get_interval, SysSchedRrGetInterval, {kInt, kPtr});
    Set(SYS_sched_getattr, SysSchedGetattr, {kInt, kPtr, kInt, kHex});
    Set(SYS_sched_setattr, SysSchedSetattr, {kInt, kPtr, kHex});
    Set(SYS_sched_getaffinity, SysSchedGetaffinity, {kInt, kInt, kPtr});
    Set(SYS_sched_setaffinity, SysSchedSetaffinity, {kInt, kInt, kPtr});
    Set(SYS_sched_yield, SysSchedYield);
    Set(SYS_getcpu, SysGetcpu, {kPtr, kPtr, kPtr});
    // Signals.
    Set(SYS_rt_sigaction, SysRtSigaction, {kSignal, kPtr, kPtr, kInt});
    Set(SYS_rt_sigprocmask, SysRtSigprocmask, {kInt, kPtr, kPtr, kInt});
    Set(SYS_sigaltstack, SysSigaltstack, {kPtr, kPtr});
    Set(SYS_kill, SysKill, {kInt, kSignal});
    Set(SYS_tgkill, SysTgkill, {kInt, kInt, kSignal});
    Set(SYS_tkill, SysTkill, {kInt, kSignal});
    Set(SYS_rt_sigqueueinfo, SysRtSigqueueinfo, {kInt, kSignal, kPtr});
    Set(SYS_rt_tgsigqueueinfo, SysRtTgsigqueueinfo, {kInt, kInt, kSignal, kPtr});
    Set(SYS_alarm, SysAlarm, {kInt});
    Set(SYS_getitimer, SysGetitimer, {kInt, kPtr});
    Set(SYS_setitimer, SysSetitimer, {kInt, kPtr, kPtr});
    Set(SYS_timer_create, SysTimerCreate, {kInt, kPtr, kPtr});
    Set(SYS_timer_settime, SysTimerSettime, {kInt, kHex, kPtr, kPtr});
    Set(SYS_timer_gettime, SysTimerGettime, {kInt, kPtr});
    Set(SYS_timer_getoverrun, SysTimerGetoverrun, {kInt});
    Set(SYS_timer_delete, SysTimerDelete, {kInt});
    Set(SYS_rt_sigreturn, SysRtSigreturn, {});
    Set(SYS_rt_sigpending, SysRtSigpending, {kPtr, kInt});
    Set(SYS_pause, SysPause, {});
    Set(SYS_rt_sigsuspend, SysRtSigsuspend, {kPtr, kInt});
    Set(SYS_rt_sigtimedwait, SysRtSigtimedwait, {kPtr, kPtr, kPtr, kInt});
    // Time.
    Set(SYS_clock_gettime, SysClockGettime, {kInt, kPtr});
    Set(SYS_clock_getres, SysClockGetres, {kInt, kPtr});
    Set(SYS_gettimeofday, SysGettimeofday, {kPtr, kPtr});
    Set(SYS_time, SysTime, {kPtr});
    Set(SYS_nanosleep, SysNanosleep, {kPtr, kPtr});
    Set(SYS_clock_nanosleep, SysClockNanosleep, {kInt, kHex, kPtr, kPtr});
    // Resource usage.
    Set(SYS_times, SysTimes, {kPtr});
    Set(SYS_getrusage, SysGetrusage, {kInt, kPtr});
  }
};

const Table& GetTable() {
  static const Table* table = new Table();
  return *table;
}

std::string Quote(const char* p, size_t n, size_t shown) {
  std::string out = "\"";
  for (size_t i = 0; i < std::min(n, shown); i++) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c >= 32 && c < 127) {
          out += static_cast<char>(c);
        } else {
          out += absl::StrFormat("\\%o", c);
        }
    }
  }
  out += "\"";
  if (n > shown) out += "...";
  return out;
}

std::string FormatOpenFlags(uint64_t f) {
  static const struct {
    int bit;
    const char* name;
  } kFlags[] = {{O_CREAT, "O_CREAT"},       {O_EXCL, "O_EXCL"},         {O_NOCTTY, "O_NOCTTY"},
                {O_TRUNC, "O_TRUNC"},       {O_APPEND, "O_APPEND"},     {O_NONBLOCK, "O_NONBLOCK"},
                {O_DIRECTORY, "O_DIRECTORY"}, {O_NOFOLLOW, "O_NOFOLLOW"}, {O_CLOEXEC, "O_CLOEXEC"},
                {O_PATH, "O_PATH"},         {O_DIRECT, "O_DIRECT"},     {O_NOATIME, "O_NOATIME"}};
  std::string out;
  switch (f & O_ACCMODE) {
    case O_RDONLY: out = "O_RDONLY"; break;
    case O_WRONLY: out = "O_WRONLY"; break;
    default: out = "O_RDWR"; break;
  }
  uint64_t rest = f & ~uint64_t{O_ACCMODE};
  for (auto& fl : kFlags) {
    if ((rest & static_cast<uint64_t>(fl.bit)) == static_cast<uint64_t>(fl.bit)) {
      out += "|";
      out += fl.name;
      rest &= ~static_cast<uint64_t>(fl.bit);
    }
  }
  if (rest) out += absl::StrFormat("|%#x", rest);
  return out;
}

std::string FormatArg(Task& t, Fmt f, const Args& args, int i, long ret, bool after) {
  uint64_t v = args.U(i);
  switch (f) {
    case kInt:
      return absl::StrFormat("%d", static_cast<long>(v));
    case kFd:
      if (static_cast<int>(v) == AT_FDCWD) return "AT_FDCWD";
      return absl::StrFormat("%d", static_cast<int>(v));
    case kPath: {
      if (v == 0) return "NULL";
      auto s = t.mm().CopyInString(v, 4096);
      if (!s.ok()) return absl::StrFormat("%#x", v);
      return Quote(s->data(), s->size(), 4096);
    }
    case kBufIn:
    case kBufOut: {
      size_t n = f == kBufIn ? args.Size(i + 1) : (ret > 0 ? static_cast<size_t>(ret) : 0);
      if (f == kBufOut && (!after || ret < 0)) return absl::StrFormat("%#x", v);
      char buf[32];
      size_t got = t.mm().CopyInPartial(v, buf, std::min(n, sizeof(buf)));
      if (got == 0 && n > 0) return absl::StrFormat("%#x", v);
      return Quote(buf, n, got);
    }
    case kOpenFlags:
      return FormatOpenFlags(v);
    case kOctal:
      return absl::StrFormat("%#o", v);
    case kSignal: {
      const char* abbrev = sigabbrev_np(static_cast<int>(v));
      return abbrev ? std::string("SIG") + abbrev : absl::StrFormat("%d", v);
    }
    case kPtr:
      if (v == 0) return "NULL";
      return absl::StrFormat("%#x", v);
    case kHex:
    case kNone:
      return absl::StrFormat("%#x", v);
  }
  return "?";
}

}  // namespace

const SyscallInfo* Lookup(int nr) {
  if (nr < 0 || nr >= kMaxSyscall || GetTable().e[nr].name == nullptr) return nullptr;
  return &GetTable().e[nr];
}

namespace {

// Runs one handler. No exception may cross the syscall boundary: a result
// used unchecked fails the call with that result's errno, a host allocation
// that fails is the ENOMEM Linux gives, a host resource refused is EAGAIN,
// and anything else fails the call with EIO; the bugs among them are
// reported loudly, and none ends the sandbox.
long CallHandler(Task& t, const SyscallInfo& info, const Args& args) {
  try {
    SyscallResult res = info.handler(t, args);
    return res.ok() ? res.value() : -static_cast<long>(res.error());
  } catch (const UncheckedResult& e) {
    std::string line =
        absl::StrFormat("husk: sentry bug: %s: a failed result used unchecked (%s)\n", info.name,
                        strerrorname_np(e.err) ? strerrorname_np(e.err) : "?");
    (void)!write(t.kernel().log_fd, line.data(), line.size());
    return -e.err;
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (const std::system_error& e) {
    return e.code().value() == EAGAIN ? -EAGAIN : -ENOMEM;
  } catch (const std::exception& e) {
    std::string line = absl::StrFormat("husk: sentry bug: %s: uncaught %s\n", info.name, e.what());
    (void)!write(t.kernel().log_fd, line.data(), line.size());
    return -EIO;
  }
}

}  // namespace

void Dispatch(Task& t) {
  Args args;
  platform::Registers& r = t.regs;
  args.a = {r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9};
  int nr = static_cast<int>(r.orig_rax);
  const SyscallInfo* info = Lookup(nr);
  bool trace = t.kernel().strace;
  // Arguments are formatted before the call (execve replaces the memory
  // they live in); output buffers after it.
  std::array<std::string, 6> shown;
  int nargs = 0;
  if (trace && info != nullptr) {
    for (int i = 0; i < 6 && info->fmt[i] != Fmt::kNone; i++, nargs++) {
      if (info->fmt[i] != Fmt::kBufOut) shown[i] = FormatArg(t, info->fmt[i], args, i, 0, false);
    }
  }
  long ret;
  if (info == nullptr || info->handler == nullptr) {
    t.kernel().CountUnimplemented(nr);
    ret = -ENOSYS;
  } else {
    ret = CallHandler(t, *info, args);
  }
  if (!t.exiting()) r.rax = static_cast<uint64_t>(ret);
  if (!trace) return;
  std::string line;
  if (t.tid() != 1) line = absl::StrFormat("[pid %d] ", t.tid());
  line += info ? info->name : absl::StrFormat("syscall_%d", nr);
  line += "(";
  for (int i = 0; i < nargs; i++) {
    if (i) line += ", ";
    line += info->fmt[i] == Fmt::kBufOut ? FormatArg(t, Fmt::kBufOut, args, i, ret, true)
                                         : shown[i];
  }
  if (t.exiting()) {
    line += ") = ?\n";
  } else if (ret < 0 && ret > -4096) {
    const char* name = strerrorname_np(static_cast<int>(-ret));
    line += absl::StrFormat(") = -1 %s (%s)%s\n", name ? name : "E?", strerror(static_cast<int>(-ret)),
                            (info == nullptr || info->handler == nullptr) ? " [unimplemented]" : "");
  } else if (info && (info->fmt[0] == Fmt::kPtr || nr == SYS_mmap || nr == SYS_brk)) {
    line += absl::StrFormat(") = %#x\n", static_cast<uint64_t>(ret));
  } else {
    line += absl::StrFormat(") = %d\n", ret);
  }
  (void)!write(t.kernel().log_fd, line.data(), line.size());
}

void PrintTable(FILE* out) {
  int implemented = 0, total = 0;
  for (int nr = 0; nr < kMaxSyscall; nr++) {
    const SyscallInfo& e = GetTable().e[nr];
    if (e.name == nullptr) continue;
    total++;
    if (e.handler) implemented++;
    fprintf(out, "%3d %-24s %s\n", nr, e.name, e.handler ? "implemented" : "ENOSYS");
  }
  fprintf(out, "%d of %d x86_64 system calls implemented\n", implemented, total);
}

}  // namespace husk::syscalls
