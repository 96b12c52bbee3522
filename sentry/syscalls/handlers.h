// Handlers of every implemented syscall, grouped by family file.
#ifndef HUSK_SENTRY_SYSCALLS_HANDLERS_H_
#define HUSK_SENTRY_SYSCALLS_HANDLERS_H_

#include <optional>
#include <string>
#include <vector>

#include "sentry/syscalls/syscalls.h"

namespace husk::syscalls {

// Every handler runs under the big kernel lock, which Dispatch's caller
// holds (Task::Run); the analysis checks what handlers call against it.
#define HUSK_HANDLER(name) \
  SyscallResult name(Task& t, const Args& args) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu)

// sys_file.cc
HUSK_HANDLER(SysRead); HUSK_HANDLER(SysWrite); HUSK_HANDLER(SysPread64);
HUSK_HANDLER(SysPwrite64); HUSK_HANDLER(SysReadv); HUSK_HANDLER(SysWritev);
HUSK_HANDLER(SysPreadv); HUSK_HANDLER(SysPwritev); HUSK_HANDLER(SysPreadv2);
HUSK_HANDLER(SysPwritev2);
HUSK_HANDLER(SysOpen); HUSK_HANDLER(SysOpenat); HUSK_HANDLER(SysCreat); HUSK_HANDLER(SysClose);
HUSK_HANDLER(SysLseek); HUSK_HANDLER(SysDup); HUSK_HANDLER(SysDup2); HUSK_HANDLER(SysDup3);
HUSK_HANDLER(SysFcntl); HUSK_HANDLER(SysFlock); HUSK_HANDLER(SysIoctl); HUSK_HANDLER(SysFsync);
HUSK_HANDLER(SysFallocate); HUSK_HANDLER(SysSync); HUSK_HANDLER(SysSyncfs);
HUSK_HANDLER(SysSyncFileRange);
HUSK_HANDLER(SysFadvise64); HUSK_HANDLER(SysFtruncate); HUSK_HANDLER(SysTruncate);
HUSK_HANDLER(SysGetdents64); HUSK_HANDLER(SysGetdents); HUSK_HANDLER(SysSendfile);
// sys_socket.cc
HUSK_HANDLER(SysSocket);
HUSK_HANDLER(SysSocketpair);
HUSK_HANDLER(SysBind);
HUSK_HANDLER(SysListen);
HUSK_HANDLER(SysAccept);
HUSK_HANDLER(SysAccept4);
HUSK_HANDLER(SysConnect);
HUSK_HANDLER(SysGetsockname);
HUSK_HANDLER(SysGetpeername);
HUSK_HANDLER(SysSendto);
HUSK_HANDLER(SysRecvfrom);
HUSK_HANDLER(SysSendmsg);
HUSK_HANDLER(SysRecvmsg);
HUSK_HANDLER(SysSendmmsg);
HUSK_HANDLER(SysRecvmmsg);
HUSK_HANDLER(SysShutdown);
HUSK_HANDLER(SysGetsockopt);
HUSK_HANDLER(SysSetsockopt);
// sys_splice.cc
HUSK_HANDLER(SysSplice); HUSK_HANDLER(SysTee); HUSK_HANDLER(SysVmsplice);
HUSK_HANDLER(SysCopyFileRange);
// sys_stat.cc
HUSK_HANDLER(SysStat); HUSK_HANDLER(SysLstat); HUSK_HANDLER(SysFstat);
HUSK_HANDLER(SysNewfstatat); HUSK_HANDLER(SysStatx); HUSK_HANDLER(SysAccess);
HUSK_HANDLER(SysFaccessat); HUSK_HANDLER(SysFaccessat2); HUSK_HANDLER(SysReadlink);
HUSK_HANDLER(SysReadlinkat); HUSK_HANDLER(SysStatfs); HUSK_HANDLER(SysFstatfs);
// sys_memfd.cc
HUSK_HANDLER(SysMemfdCreate);
// sys_xattr.cc
HUSK_HANDLER(SysGetxattr); HUSK_HANDLER(SysLgetxattr); HUSK_HANDLER(SysFgetxattr);
HUSK_HANDLER(SysSetxattr); HUSK_HANDLER(SysLsetxattr); HUSK_HANDLER(SysFsetxattr);
HUSK_HANDLER(SysListxattr); HUSK_HANDLER(SysLlistxattr); HUSK_HANDLER(SysFlistxattr);
HUSK_HANDLER(SysRemovexattr); HUSK_HANDLER(SysLremovexattr); HUSK_HANDLER(SysFremovexattr);
HUSK_HANDLER(SysChmod); HUSK_HANDLER(SysFchmod); HUSK_HANDLER(SysFchmodat);
HUSK_HANDLER(SysChown); HUSK_HANDLER(SysFchown); HUSK_HANDLER(SysLchown);
HUSK_HANDLER(SysFchownat); HUSK_HANDLER(SysUtimensat);
// sys_dir.cc
HUSK_HANDLER(SysGetcwd); HUSK_HANDLER(SysChdir); HUSK_HANDLER(SysFchdir); HUSK_HANDLER(SysChroot);
HUSK_HANDLER(SysMountRefused);
// sys_mount.cc
HUSK_HANDLER(SysMount); HUSK_HANDLER(SysUmount2);
HUSK_HANDLER(SysMkdir); HUSK_HANDLER(SysMkdirat); HUSK_HANDLER(SysMknod); HUSK_HANDLER(SysMknodat);
HUSK_HANDLER(SysRmdir);
HUSK_HANDLER(SysUnlink); HUSK_HANDLER(SysUnlinkat); HUSK_HANDLER(SysRename);
HUSK_HANDLER(SysRenameat); HUSK_HANDLER(SysRenameat2); HUSK_HANDLER(SysSymlink);
HUSK_HANDLER(SysSymlinkat); HUSK_HANDLER(SysUmask); HUSK_HANDLER(SysLink); HUSK_HANDLER(SysLinkat);
// sys_mmap.cc
HUSK_HANDLER(SysBrk); HUSK_HANDLER(SysMmap); HUSK_HANDLER(SysMunmap);
HUSK_HANDLER(SysMprotect); HUSK_HANDLER(SysMadvise); HUSK_HANDLER(SysMremap);
HUSK_HANDLER(SysMsync); HUSK_HANDLER(SysMincore);
// sys_process.cc
HUSK_HANDLER(SysGetpid); HUSK_HANDLER(SysGetppid); HUSK_HANDLER(SysGettid);
HUSK_HANDLER(SysGetuid); HUSK_HANDLER(SysGeteuid); HUSK_HANDLER(SysGetgid);
HUSK_HANDLER(SysGetegid); HUSK_HANDLER(SysGetresuid); HUSK_HANDLER(SysGetresgid);
HUSK_HANDLER(SysGetgroups); HUSK_HANDLER(SysSetuid); HUSK_HANDLER(SysSetgid);
HUSK_HANDLER(SysSetgroups); HUSK_HANDLER(SysSetresuid); HUSK_HANDLER(SysSetresgid);
HUSK_HANDLER(SysSetreuid); HUSK_HANDLER(SysSetregid); HUSK_HANDLER(SysSetfsuid);
HUSK_HANDLER(SysSetfsgid);
HUSK_HANDLER(SysGetpgrp); HUSK_HANDLER(SysGetpgid); HUSK_HANDLER(SysSetpgid);
HUSK_HANDLER(SysGetsid); HUSK_HANDLER(SysSetsid);
HUSK_HANDLER(SysUname); HUSK_HANDLER(SysSethostname); HUSK_HANDLER(SysSetdomainname);
HUSK_HANDLER(SysUnshare); HUSK_HANDLER(SysArchPrctl);
HUSK_HANDLER(SysSetTidAddress); HUSK_HANDLER(SysSetRobustList); HUSK_HANDLER(SysGetRobustList);
HUSK_HANDLER(SysFutexWaitv);
HUSK_HANDLER(SysGetrlimit); HUSK_HANDLER(SysSetrlimit); HUSK_HANDLER(SysPrlimit64);
HUSK_HANDLER(SysGetrandom); HUSK_HANDLER(SysSysinfo); HUSK_HANDLER(SysExit);
HUSK_HANDLER(SysExitGroup); HUSK_HANDLER(SysWait4); HUSK_HANDLER(SysWaitid); HUSK_HANDLER(SysClone);
HUSK_HANDLER(SysClone3);
// sys_ptrace.cc
HUSK_HANDLER(SysPtrace);
HUSK_HANDLER(SysFork); HUSK_HANDLER(SysVfork); HUSK_HANDLER(SysExecve); HUSK_HANDLER(SysFutex);
// sys_sched.cc
HUSK_HANDLER(SysGetpriority); HUSK_HANDLER(SysSetpriority); HUSK_HANDLER(SysSchedSetscheduler);
HUSK_HANDLER(SysSchedSetparam); HUSK_HANDLER(SysSchedGetscheduler); HUSK_HANDLER(SysSchedGetparam);
HUSK_HANDLER(SysSchedGetPriorityMax); HUSK_HANDLER(SysSchedGetPriorityMin);
HUSK_HANDLER(SysSchedRrGetInterval); HUSK_HANDLER(SysSchedGetattr); HUSK_HANDLER(SysSchedSetattr);
HUSK_HANDLER(SysSchedGetaffinity); HUSK_HANDLER(SysSchedSetaffinity); HUSK_HANDLER(SysSchedYield);
HUSK_HANDLER(SysGetcpu);
// sys_prctl.cc
HUSK_HANDLER(SysPrctl); HUSK_HANDLER(SysCapget); HUSK_HANDLER(SysCapset);
// sys_pidfd.cc
HUSK_HANDLER(SysPidfdOpen); HUSK_HANDLER(SysPidfdSendSignal); HUSK_HANDLER(SysPidfdGetfd);
// sys_signal.cc
HUSK_HANDLER(SysRtSigaction); HUSK_HANDLER(SysRtSigprocmask); HUSK_HANDLER(SysSigaltstack);
HUSK_HANDLER(SysKill); HUSK_HANDLER(SysTgkill); HUSK_HANDLER(SysTkill);
HUSK_HANDLER(SysRtSigqueueinfo); HUSK_HANDLER(SysRtTgsigqueueinfo);
HUSK_HANDLER(SysRtSigreturn); HUSK_HANDLER(SysRtSigpending); HUSK_HANDLER(SysPause);
HUSK_HANDLER(SysRtSigsuspend); HUSK_HANDLER(SysRtSigtimedwait);
// sys_pipe.cc
HUSK_HANDLER(SysPipe); HUSK_HANDLER(SysPipe2);
// sys_epoll.cc
HUSK_HANDLER(SysEpollCreate); HUSK_HANDLER(SysEpollCreate1); HUSK_HANDLER(SysEpollCtl);
HUSK_HANDLER(SysEpollWait); HUSK_HANDLER(SysEpollPwait); HUSK_HANDLER(SysEpollPwait2);
// sys_eventfd.cc
HUSK_HANDLER(SysEventfd); HUSK_HANDLER(SysEventfd2);
// sys_inotify.cc
HUSK_HANDLER(SysInotifyInit); HUSK_HANDLER(SysInotifyInit1); HUSK_HANDLER(SysInotifyAddWatch);
HUSK_HANDLER(SysInotifyRmWatch);
// sys_poll.cc
HUSK_HANDLER(SysPoll); HUSK_HANDLER(SysPpoll); HUSK_HANDLER(SysSelect); HUSK_HANDLER(SysPselect6);
// sys_time.cc
HUSK_HANDLER(SysClockGettime); HUSK_HANDLER(SysClockGetres); HUSK_HANDLER(SysGettimeofday);
HUSK_HANDLER(SysTime); HUSK_HANDLER(SysNanosleep); HUSK_HANDLER(SysClockNanosleep);
HUSK_HANDLER(SysAlarm); HUSK_HANDLER(SysGetitimer); HUSK_HANDLER(SysSetitimer);
// sys_rusage.cc
HUSK_HANDLER(SysTimes); HUSK_HANDLER(SysGetrusage);
// sys_timerfd.cc
HUSK_HANDLER(SysTimerfdCreate); HUSK_HANDLER(SysTimerfdSettime); HUSK_HANDLER(SysTimerfdGettime);
// sys_signalfd.cc
HUSK_HANDLER(SysSignalfd); HUSK_HANDLER(SysSignalfd4);
// sys_timer.cc
HUSK_HANDLER(SysTimerCreate); HUSK_HANDLER(SysTimerSettime); HUSK_HANDLER(SysTimerGettime);
HUSK_HANDLER(SysTimerGetoverrun); HUSK_HANDLER(SysTimerDelete);

#undef HUSK_HANDLER

// Shared helpers for handlers.
// Resolves (dirfd, path) like the *at family; empty path needs AT_EMPTY_PATH.
// Directories are searched with the task's file credentials.
Result<vfs::DentryRef> ResolveAt(Task& t, int dirfd, const std::string& path, bool follow,
                                 bool empty_ok);
// The same with other credentials (access(2) searches with the real ids).
Result<vfs::DentryRef> ResolveAtWith(Task& t, const vfs::Creds& creds, int dirfd,
                                     const std::string& path, bool follow, bool empty_ok);
// The permission bits a new non-directory in dir asks for: the umask
// applied, and S_ISGID dropped where mode_strip_sgid() drops it.
Result<mode_t> CreateMode(Task& t, vfs::Inode& dir, mode_t mode);
// After a name was created in dir by the task: makes the new inode the
// task's (its fsuid, and its fsgid unless dir is set-group-ID).
Status InitOwner(Task& t, vfs::Inode& dir, vfs::Inode& created);
// dnotify: a name in dir was created (DN_CREATE), removed (DN_DELETE) or
// moved (DN_RENAME); the descriptors watching dir with F_NOTIFY signal
// their owners before the call returns.
void NotifyDirectory(Task& t, const vfs::Dentry& dir, uint32_t event)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
// The directory a relative path starts from.
Result<vfs::DentryRef> StartDir(Task& t, int dirfd);
// send_sigio(): the signal F_SETSIG chose (with si_code `code`, si_band
// `band` and si_fd `fd`), or a plain SIGIO, to f's owner (F_SETOWN).
void SignalOwner(Kernel& k, vfs::File& f, int fd, int code, long band)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu);
// send_sigurg(): SIGURG (si_code SI_KERNEL) to f's owner, whatever F_SETSIG
// says.
void SignalOwnerUrgent(Kernel& k, vfs::File& f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu);
// The thread that signals files' owners from outside the kernel's lock
// (fasync.cc): F_SETOWN starts it, so that an owner hears SIGURG.
Status StartOwnerSignals(Kernel& k);
// O_ASYNC set on or cleared from f, descriptor fd (F_SETFL, FIOASYNC): a
// socket then signals its owner as it may have become readable or writable
// (fasync.cc).
Status SetAsync(Task& t, const vfs::FileRef& f, int fd, bool on)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
// A signal the kernel raises on the caller itself (SIGPIPE from a write to a
// pipe without readers).
void RaiseOnSelf(Task& t, int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
// sys_file.cc's file I/O pieces that the in-kernel copies (sys_splice.cc)
// share. file_remove_privs(): a write clears S_ISUID (and S_ISGID where
// Linux does) of a regular file.
Status DropPrivs(Task& t, vfs::Inode& inode);
// Before a blocking read (events POLLIN) or write (POLLOUT) of a host
// descriptor: waits in the sentry, so that a signal ends the wait
// (ERESTARTSYS). Nothing for other files or under O_NONBLOCK.
Status WaitHostReady(Task& t, vfs::File& f, short events)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
// RLIMIT_FSIZE for a write of n bytes at pos (nullopt: the file's offset, or
// its end under O_APPEND) to a regular file: the bytes it may write; at or
// past the limit SIGXFSZ and EFBIG.
Result<size_t> FsizeLimit(Task& t, vfs::File& f, std::optional<uint64_t> pos, size_t n)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
// struct iovec, and import_iovec: count past IOV_MAX or a length negative as
// ssize_t is EINVAL, a segment outside the user address space EFAULT; the
// total is cut at MAX_RW_COUNT.
struct IoVec {
  uint64_t base;
  uint64_t len;
};
Result<std::vector<IoVec>> CopyInIovecs(Task& t, uintptr_t addr, int count);
// readv(2) and writev(2) of a socket (the file at fd must be one): one
// message, as sock_read_iter and sock_write_iter make, so a datagram is
// gathered or scattered whole (sys_socket.cc).
Result<long> SocketVectored(Task& t, int fd, const std::vector<IoVec>& iov, bool write)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu);
// The sentry's wake-up time (on the sandbox's CLOCK_MONOTONIC, MonotonicNow)
// for a timeout ts on `clock`: from now if relative, else the moment ts
// names on that clock.
absl::Time DeadlineOf(const timespec& ts, int clock, bool absolute);

}  // namespace husk::syscalls

#endif  // HUSK_SENTRY_SYSCALLS_HANDLERS_H_
