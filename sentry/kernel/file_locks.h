// Advisory file locks, shared by every process of the sandbox:
//  - flock(2): whole-file shared or exclusive locks owned by the open file
//    description, released when its last descriptor closes;
//  - fcntl(2) record locks (F_SETLK, F_SETLKW, F_GETLK): byte ranges owned
//    by the descriptor table (Linux's fl_owner, the files_struct: one per
//    process unless CLONE_FILES shares it), released when the owner closes
//    any descriptor of the file, and when it goes; F_SETLKW detects
//    deadlocks between owners (EDEADLK);
//  - open file description locks (F_OFD_*): byte ranges owned by the open
//    file description, conflicting with record locks, released with it.
// flock locks and the range locks never conflict with each other (Linux).
// Locks belong to the file (its device and inode number), whichever path or
// descriptor reaches it.
//
// Locking: guarded by the big kernel lock; a waiter blocks with it dropped.
#ifndef HUSK_SENTRY_KERNEL_FILE_LOCKS_H_
#define HUSK_SENTRY_KERNEL_FILE_LOCKS_H_

#include <fcntl.h>

#include "base/result.h"
#include "sentry/vfs/vfs.h"

namespace husk {

class FdTable;
class Task;

namespace file_locks {

// flock(2) on f: LOCK_SH, LOCK_EX or LOCK_UN, with LOCK_NB.
Result<long> Flock(Task& t, const vfs::FileRef& f, int op);
// fcntl(2)'s lock commands on f (reached through t's descriptor table):
// F_GETLK, F_SETLK, F_SETLKW and their F_OFD_ forms. fl is the caller's
// struct flock, already copied in; F_GETLK fills it in.
Result<long> Fcntl(Task& t, const vfs::FileRef& f, int cmd, struct flock* fl);

// Hooks. A descriptor of f in table closes: the table's record locks on the
// file go (POSIX: any close, not only the last one). An open file
// description goes: its flock and OFD locks go.
void OnClose(const FdTable* table, const vfs::File& f);
void OnRelease(const vfs::File& f);

}  // namespace file_locks
}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_FILE_LOCKS_H_
