// A sandbox terminal bridged to a host one: the OCI runtime's console
// (process.terminal, `husk exec --tty`). The sandbox's programs see a pty
// pair of the sentry's own (sentry/kernel/tty.h), whose line discipline
// does all the terminal work; the host side is a host pty replica that the
// runtime put in raw mode, so that the host's line discipline passes bytes
// through untouched. A thread of the console copies bytes both ways.
//
// The host pty's master goes to the engine (containerd's shim, through
// --console-socket). When the engine closes it, the host replica reads
// end-of-file or EIO, and the sandbox's terminal hangs up as it would
// under runc: its session leader hears SIGHUP.
#ifndef HUSK_SENTRY_BOOT_CONSOLE_H_
#define HUSK_SENTRY_BOOT_CONSOLE_H_

#include <memory>

#include "absl/time/time.h"
#include "base/fd.h"
#include "base/result.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/tty.h"

namespace husk {

class Console;

// Makes a sandbox pty pair for host descriptor `host`, sized as the host
// terminal is, and gives its replica to task t as descriptors 0, 1 and 2
// and as its controlling terminal (t leads its session). The bridge starts
// at once (its thread waits for the lock) and is known by t's pid
// (ResizeConsole).
Result<std::shared_ptr<Console>> AttachConsole(Kernel& k, Task& t, UniqueFd host)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu);

// A new size for the console of session leader `pid` (the host terminal
// was resized): SIGWINCH to its foreground group if it changed. False if
// there is no such console.
bool ResizeConsole(Kernel& k, int pid, const tty::WindowSize& ws);

// Waits until what the sandbox wrote to the console has reached the host
// (at most `limit`), then stops the bridge: at the sandbox's end, so that
// the last output is not lost.
void FinishConsole(Console& c, absl::Duration limit);

}  // namespace husk

#endif  // HUSK_SENTRY_BOOT_CONSOLE_H_
