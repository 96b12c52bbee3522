// Terminals: pseudo-terminal pairs (pty(7)) with Linux's line discipline
// (n_tty: canonical editing, echo, output processing, the signal
// characters), the terminal side of sessions and job control (the
// controlling terminal, its foreground process group, SIGTTIN/SIGTTOU,
// hang-ups), and the devpts filesystem that names the pairs (/dev/pts/N,
// /dev/pts/ptmx).
//
// Everything here is the sandbox's own: no byte typed into a sandbox
// terminal reaches a host terminal's line discipline. A container's console
// (the OCI runtime's process.terminal) is a pair made here whose master the
// sentry bridges to a host pty in raw mode (sentry/boot/console.cc).
//
// Locking: Terminal::mu is taken under the big kernel lock, like a pipe's.
// The session and foreground group of a terminal, and ThreadGroup::ctty,
// are guarded by the big lock. Signals the discipline raises are sent after
// mu is released.
#ifndef HUSK_SENTRY_KERNEL_TTY_H_
#define HUSK_SENTRY_KERNEL_TTY_H_

#include <cstdint>
#include <memory>

#include "base/result.h"
#include "sentry/kernel/kernel.h"
#include "sentry/vfs/vfs.h"

namespace husk::tty {

class Terminal;

// struct winsize (TIOCGWINSZ).
struct WindowSize {
  uint16_t rows = 0, cols = 0, xpixel = 0, ypixel = 0;
};

// A new devpts filesystem: its root directory holds "ptmx" (opening it
// makes a new pair) and one node per pair, named by its index. One instance
// serves the sandbox.
vfs::InodeRef NewDevpts();

// /dev/ptmx (5:2) on a filesystem whose st_dev is fs_dev: opening it
// makes a new pair on `devpts` (a NewDevpts root), as pts/ptmx does.
vfs::InodeRef NewPtmxDevice(dev_t fs_dev, const vfs::InodeRef& devpts);

// /dev/tty (5:0): opening it opens the caller's controlling terminal
// (ENXIO without one). fs_dev: the st_dev of the filesystem holding it.
vfs::InodeRef NewTtyDevice(dev_t fs_dev);

// A new pair on `devpts` (the dentry a NewDevpts root is mounted as),
// unlocked, for the sentry's own use (a container's console): its master
// and an open replica, both O_RDWR. The master never blocks when read or
// written outside a task; whoever does so, and drops it, holds k's lock.
struct Pair {
  vfs::FileRef master;
  vfs::FileRef replica;
};
Result<Pair> OpenPair(Kernel& k, const vfs::DentryRef& devpts);

// Makes the terminal of `replica` (a file OpenPair gave) the controlling
// terminal of session leader g, with g's group in the foreground
// (TIOCSCTTY). Under the kernel lock.
void SetControllingTerminal(ThreadGroup& g, vfs::File& replica);

// TIOCSWINSZ on a pair's master, from outside any task (a resize of the
// host console): SIGWINCH to the foreground group if the size changed.
// Under the kernel lock.
void SetWindowSize(Kernel& k, vfs::File& master, const WindowSize& ws)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu);

// Whether f is a pair's master.
bool IsMaster(const vfs::File& f);

// Process lifecycle hooks, under the kernel lock. setsid(2) drops the
// caller's controlling terminal; a session leader's exit hangs up its
// session's terminal: SIGHUP to the foreground group, and no process of the
// session keeps it as its controlling terminal (disassociate_ctty).
void DropControllingTerminal(ThreadGroup& g);
void SessionLeaderExit(Kernel& k, ThreadGroup& g) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu);

// What /proc/<pid>/stat shows of process g's terminal: the device number
// of its controlling terminal (tty_nr, 0 if none) and that terminal's
// foreground group (tpgid, -1 if none). Under the kernel lock.
struct StatFields {
  uint32_t tty_nr = 0;
  int tpgid = -1;
};
StatFields ProcStatFields(const ThreadGroup& g);

}  // namespace husk::tty

#endif  // HUSK_SENTRY_KERNEL_TTY_H_
