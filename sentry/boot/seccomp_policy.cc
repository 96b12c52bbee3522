#include "sentry/boot/seccomp_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>

namespace husk {

Status InstallSentrySeccomp(int memfd, bool host_network) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (ctx == nullptr) return Errno{ENOMEM};
  int rc = 0;
  auto allow = [&](int nr) { rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0); };
  // Data I/O on the fds the sentry holds: stdio handed in by the user, files
  // donated by the gofer, and its own log. Opening anything is refused below.
  for (int nr : {SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(pread64), SCMP_SYS(pwrite64),
                 SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(close), SCMP_SYS(lseek),
                 SCMP_SYS(fstat), SCMP_SYS(dup), SCMP_SYS(fcntl),
                 // fsync(2) of a read-write volume's file reaches the host's disk.
                 SCMP_SYS(fsync)})
    allow(nr);
  // glibc's fstat is newfstatat(fd, "", AT_EMPTY_PATH); the root is empty anyway.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                         SCMP_A3(SCMP_CMP_EQ, AT_EMPTY_PATH));
  // Terminal queries forwarded for the app's stdio (isatty, window size).
  for (unsigned long req : {static_cast<unsigned long>(TCGETS), static_cast<unsigned long>(TIOCGWINSZ),
                            static_cast<unsigned long>(FIONREAD)})
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, req));
  // Gofer protocol: requests out, answers and donated fds in.
  allow(SCMP_SYS(sendmsg));
  allow(SCMP_SYS(recvmsg));
  // The sentry's own memory (malloc, thread stacks) and the memory file.
  for (int nr : {SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(madvise),
                 SCMP_SYS(mremap), SCMP_SYS(brk)})
    allow(nr);
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fallocate), 1,
                         SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(memfd)));
  // Task threads (1:1) and their synchronisation.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  // No process: the ptrace platform's master stub, forked before this
  // filter, makes every stub process.
  // clone3's flags live in memory, out of a filter's reach: glibc falls back to clone.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  for (int nr : {SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(exit),
                 SCMP_SYS(exit_group), SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(getppid),
                 SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity), SCMP_SYS(restart_syscall),
                 // pthread_create reads the creating thread's scheduling policy.
                 SCMP_SYS(sched_getparam), SCMP_SYS(sched_getscheduler)})
    allow(nr);
  // The ptrace platform: trace, wait for, pin and kill stubs.
  for (int nr : {SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(kill), SCMP_SYS(tgkill),
                 SCMP_SYS(sched_setaffinity), SCMP_SYS(getcpu)})
    allow(nr);
  // The systrap platform: a stub process's descriptor, to see it die and to
  // kill it without naming a pid that may have been recycled.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(pidfd_open), 1, SCMP_A1(SCMP_CMP_EQ, 0));
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(pidfd_send_signal), 1,
                         SCMP_A1(SCMP_CMP_EQ, SIGKILL));

  // Signals of the sentry's own threads.
  for (int nr : {SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
                 SCMP_SYS(sigaltstack)})
    allow(nr);
  // Blocking: each task's waiter is an eventfd; a blocked task polls it
  // (with the host descriptors behind stdio, when it waits for those).
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(eventfd2), 1,
                         SCMP_A1(SCMP_CMP_EQ, EFD_CLOEXEC | EFD_NONBLOCK));
  allow(SCMP_SYS(poll));
  // The host poller (sentry/net/host_poller.h): one edge-triggered epoll
  // instance watching the host sockets the sentry keeps for the sandbox.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(epoll_create1), 1,
                         SCMP_A0(SCMP_CMP_EQ, EPOLL_CLOEXEC));
  for (int nr : {SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait)}) allow(nr);
  // Time and randomness the sentry provides to the application.
  // time: the stubs inherit this filter, and a host with vsyscall=xonly
  // emulates a call into the vsyscall page as time(2) through it; the stub's
  // own filter then traps it to the sentry (like gettimeofday and getcpu).
  for (int nr : {SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep),
                 SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getrandom)})
    allow(nr);
  if (host_network) {
    // --network=host alone: inet sockets (TCP, UDP, ICMP echo) in the
    // network namespace husk started in, and the calls on them. No other
    // family: no unix socket reaches the host's names, no packet or raw
    // socket, no netlink.
    // The protocols are named: any other would have the host load a module.
    struct Kind {
      int family, type, protocol;
    };
    for (Kind k :
         {Kind{AF_INET, SOCK_STREAM, 0}, Kind{AF_INET, SOCK_STREAM, IPPROTO_TCP},
          Kind{AF_INET, SOCK_DGRAM, 0}, Kind{AF_INET, SOCK_DGRAM, IPPROTO_UDP},
          Kind{AF_INET, SOCK_DGRAM, IPPROTO_ICMP}, Kind{AF_INET6, SOCK_STREAM, 0},
          Kind{AF_INET6, SOCK_STREAM, IPPROTO_TCP}, Kind{AF_INET6, SOCK_DGRAM, 0},
          Kind{AF_INET6, SOCK_DGRAM, IPPROTO_UDP}, Kind{AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6}}) {
      rc |= seccomp_rule_add(
          ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3,
          SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(k.family)),
          SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(k.type | SOCK_NONBLOCK | SOCK_CLOEXEC)),
          SCMP_A2(SCMP_CMP_EQ, static_cast<scmp_datum_t>(k.protocol)));
    }
    for (int nr : {SCMP_SYS(bind), SCMP_SYS(connect), SCMP_SYS(getsockname)}) allow(nr);
  }
  // The host sockets the sentry holds in any mode (a unix socket on a
  // read-write volume, bound or connected by the gofer; --network=host's):
  // the calls on a socket it has. It cannot make one (socket(2) is
  // --network=host's alone, above) nor name a host address.
  for (int nr : {SCMP_SYS(listen), SCMP_SYS(accept4), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
                 SCMP_SYS(getpeername), SCMP_SYS(shutdown)})
    allow(nr);
  for (unsigned long req :
       {static_cast<unsigned long>(SIOCOUTQ), static_cast<unsigned long>(SIOCOUTQNSD),
        static_cast<unsigned long>(SIOCATMARK)})
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, req));
  // The sentry has no filesystem: an open (from a library's probe) fails
  // quietly instead of killing the sandbox.
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
  if (rc != 0) {
    seccomp_release(ctx);
    return Errno{EINVAL};
  }
  rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) return Errno{-rc};
  return Ok();
}

}  // namespace husk
