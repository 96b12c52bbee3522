// The OCI runtime's channel into a running sentry (`husk kill`, `husk
// exec`): one SOCK_SEQPACKET socket from the container's monitor, read on a
// thread of its own. Each message is one packet:
//
//   'S' int32 SIG        a signal for the first program's process, sent as
//                        kill(2) by a host process sends it (SI_USER, pid 0)
//   'A' int32 SIG        the same, for every process of the sandbox (kill --all)
//   'E' CWD\0UID\0GID\0ARGC\0ARGV...\0ENV...   with 4 descriptors: the new
//                        process's stdin, stdout, stderr, and a status
//                        channel on which the sentry writes "pid N\n" (or
//                        "error WHY\n") and, when it ends, "exit STATUS\n"
//                        (the wait status). The process has no parent in
//                        the sandbox (its ppid is 0, as a process runc exec
//                        put into a container).
//   'T' ...              as 'E', for a process on a terminal (exec --tty):
//                        descriptor 0 is the host pty replica that a new
//                        sandbox terminal is bridged to (1 and 2 are
//                        ignored); the process leads a session of its own
//                        with that terminal as its controlling terminal.
//   'W' int32 PID, struct winsize   the host terminal of the console whose
//                        session leader is PID (1: the first program) was
//                        resized.
//   'P'                  with 1 descriptor: the sandbox's processes are
//                        written to it, "PID PPID UID COMM\n" each, and it
//                        is closed.

#ifndef HUSK_SENTRY_BOOT_CONTROL_H_
#define HUSK_SENTRY_BOOT_CONTROL_H_

#include <string>
#include <vector>

#include "base/fd.h"
#include "sentry/kernel/kernel.h"

namespace husk {

// The container's network, handed over on the start channel before the
// first program starts (BootOptions::start_fd): a packet "N" LINES with 2
// to 4 descriptors, a status channel and then a packet socket per
// interface. LINES are "nic SPEC" (a --nic text whose fd is the
// interface's position among the sockets, from 0) and "route SPEC"
// (sentry/net/netdev.h). The sentry's stack takes them, and "ok\n" or
// "error WHY\n" is written on the status channel.
void TakeNetworkMessage(const std::string& lines, std::vector<UniqueFd>& fds);

// Starts the thread; the sentry exits if the host refuses it.
void StartControl(Kernel& k, int fd);

// argv[0] without a slash, looked up in `path` (a PATH value) inside the
// sandbox, like execvp; unchanged if it is nowhere.
std::string FindProgram(Kernel& k, const std::string& name, const std::string& path);

// The host descriptor `fd` (a copy of it) as file `target` of task t.
void InstallHostFd(Kernel& k, Task& t, int fd, int target);

}  // namespace husk

#endif  // HUSK_SENTRY_BOOT_CONTROL_H_
