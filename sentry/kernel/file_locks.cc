#include "sentry/kernel/file_locks.h"

#include <errno.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "sentry/kernel/kernel.h"
#include "sentry/vfs/waiter.h"

namespace husk::file_locks {
namespace {

enum class Kind { kFlock, kPosix, kOfd };

struct Lock {
  Kind kind;
  const void* owner;  // the FdTable (record locks) or the File (flock, OFD)
  short type;         // F_RDLCK or F_WRLCK
  uint64_t start;
  uint64_t end;  // inclusive; UINT64_MAX: to the end of the file, whatever it becomes
  pid_t pid;     // the process that set a record lock (F_GETLK's l_pid); -1 for OFD
};

using FileKey = std::pair<dev_t, ino_t>;

struct FileLocks {
  std::list<Lock> locks;
  WaitQueue queue;  // tasks waiting for a lock of this file
  int waiters = 0;  // on the queue: the entry stays while any waits
};

// The lock table. A leaf below the big kernel lock: hooks run from any
// thread (a File may go wherever its last reference drops).
struct Table {
  absl::Mutex mu;
  std::map<FileKey, std::unique_ptr<FileLocks>> files ABSL_GUARDED_BY(mu);
  // Which owner each blocked record-lock owner waits for (deadlock detection).
  std::map<const void*, const void*> waits_for ABSL_GUARDED_BY(mu);
  // Which files an open file description or table holds locks on, so that
  // the hooks find them without a lookup of their own.
  std::multimap<const void*, FileKey> held ABSL_GUARDED_BY(mu);
};

Table& Locks() {
  static auto* t = new Table();  // never destroyed: files may outlive statics
  return *t;
}

bool Conflicts(const Lock& held, const Lock& want) {
  if (held.owner == want.owner && (held.kind == Kind::kFlock) == (want.kind == Kind::kFlock)) {
    return false;
  }
  // flock locks and range locks live apart.
  if ((held.kind == Kind::kFlock) != (want.kind == Kind::kFlock)) return false;
  if (held.end < want.start || want.end < held.start) return false;
  return held.type == F_WRLCK || want.type == F_WRLCK;
}

const Lock* FirstConflict(const FileLocks& fl, const Lock& want) {
  for (const Lock& l : fl.locks) {
    if (Conflicts(l, want)) return &l;
  }
  return nullptr;
}

// posix_locks_deadlock: whether `owner` waiting for `blocker` closes a cycle
// of record-lock owners waiting for each other.
bool Deadlock(const Table& t, const void* owner, const void* blocker)
    ABSL_SHARED_LOCKS_REQUIRED(t.mu) {
  for (int depth = 0; depth < 10 && blocker != nullptr; depth++) {
    if (blocker == owner) return true;
    auto it = t.waits_for.find(blocker);
    blocker = it == t.waits_for.end() ? nullptr : it->second;
  }
  return false;
}

void Forget(Table& t, const void* owner, const FileKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu) {
  auto range = t.held.equal_range(owner);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == key) {
      t.held.erase(it);
      return;
    }
  }
}

void Remember(Table& t, const void* owner, const FileKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu) {
  auto range = t.held.equal_range(owner);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == key) return;
  }
  t.held.emplace(owner, key);
}

// Whether owner still holds any lock of the kind family in fl.
bool Holds(const FileLocks& fl, const void* owner) {
  for (const Lock& l : fl.locks) {
    if (l.owner == owner) return true;
  }
  return false;
}

// Removes owner's locks of `kind` in [start, end] (splitting those that
// reach past it); wakes the file's waiters if anything changed.
void Unlock(Table& t, const FileKey& key, FileLocks& fl, Kind kind, const void* owner,
            uint64_t start, uint64_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu) {
  bool changed = false;
  for (auto it = fl.locks.begin(); it != fl.locks.end();) {
    Lock& l = *it;
    if (l.owner != owner || l.kind != kind || l.end < start || end < l.start) {
      ++it;
      continue;
    }
    changed = true;
    if (l.start < start && l.end > end) {  // a hole in the middle: split
      Lock right = l;
      right.start = end + 1;
      l.end = start - 1;
      fl.locks.insert(std::next(it), right);
      break;
    }
    if (l.start < start) {
      l.end = start - 1;
      ++it;
    } else if (l.end > end) {
      l.start = end + 1;
      ++it;
    } else {
      it = fl.locks.erase(it);
    }
  }
  if (changed) fl.queue.Notify(POLLIN);
  if (!Holds(fl, owner)) Forget(t, owner, key);
}

// Sets `want` for its owner: its own locks of the range are replaced and
// neighbours of the same type merge (the caller checked for conflicts).
void Apply(Table& t, const FileKey& key, FileLocks& fl, Lock want)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu) {
  Unlock(t, key, fl, want.kind, want.owner, want.start, want.end);
  if (want.kind != Kind::kFlock) {
    for (auto it = fl.locks.begin(); it != fl.locks.end();) {
      const Lock& l = *it;
      const bool touches = (want.start == 0 || l.end >= want.start - 1) &&
                           (want.end == UINT64_MAX || l.start <= want.end + 1);
      if (l.owner == want.owner && l.kind == want.kind && l.type == want.type && touches) {
        want.start = std::min(want.start, l.start);
        want.end = std::max(want.end, l.end);
        it = fl.locks.erase(it);
      } else {
        ++it;
      }
    }
  }
  fl.locks.push_back(want);
  Remember(t, want.owner, key);
  fl.queue.Notify(POLLIN);  // a downgrade may let readers in
}

Result<FileKey> KeyOf(const vfs::File& f) {
  ASSIGN_OR_RETURN(struct stat st, f.inode()->Stat());
  return FileKey{st.st_dev, st.st_ino};
}

// Takes `want`, waiting (if `wait`) until nothing conflicts. Record locks
// that would wait for their own waiters fail with EDEADLK.
Result<long> Acquire(Task& t, const FileKey& key, Lock want, bool wait)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  Table& tab = Locks();
  for (;;) {
    {
      absl::MutexLock l(&tab.mu);
      std::unique_ptr<FileLocks>& fl = tab.files[key];
      if (fl == nullptr) fl = std::make_unique<FileLocks>();
      const Lock* c = FirstConflict(*fl, want);
      if (c == nullptr) {
        tab.waits_for.erase(want.owner);
        Apply(tab, key, *fl, want);
        return 0L;
      }
      if (!wait) return Errno{EAGAIN};
      if (want.kind == Kind::kPosix && c->kind == Kind::kPosix &&
          Deadlock(tab, want.owner, c->owner)) {
        tab.waits_for.erase(want.owner);
        return Errno{EDEADLK};
      }
      if (want.kind == Kind::kPosix) tab.waits_for[want.owner] = c->owner;
      // Registered under the table's lock: an unlock after this check wakes us.
      fl->queue.Add(&t.waiter, POLLIN);
      fl->waiters++;
    }
    Status s = t.Block();
    absl::MutexLock l(&tab.mu);
    FileLocks& fl = *tab.files.at(key);  // kept while we wait on it
    fl.queue.Remove(&t.waiter);
    fl.waiters--;
    if (!s.ok()) {
      tab.waits_for.erase(want.owner);
      return Errno{kERestartSys};
    }
  }
}

// Drops the table entry of a file nobody locks or waits on any more.
void Tidy(Table& t, const FileKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu) {
  auto it = t.files.find(key);
  if (it != t.files.end() && it->second->locks.empty() && it->second->waiters == 0) {
    t.files.erase(it);
  }
}

// The byte range a struct flock names (flock_to_posix_lock), relative to
// f's offset or size for SEEK_CUR and SEEK_END.
Result<std::pair<uint64_t, uint64_t>> RangeOf(vfs::File& f, const struct flock& fl) {
  int64_t base;
  switch (fl.l_whence) {
    case SEEK_SET:
      base = 0;
      break;
    case SEEK_CUR: {
      ASSIGN_OR_RETURN(off_t cur, f.Seek(0, SEEK_CUR));
      base = cur;
      break;
    }
    case SEEK_END: {
      ASSIGN_OR_RETURN(struct stat st, f.Stat());
      base = st.st_size;
      break;
    }
    default:
      return Errno{EINVAL};
  }
  int64_t start;
  if (__builtin_add_overflow(base, static_cast<int64_t>(fl.l_start), &start)) {
    return Errno{EOVERFLOW};
  }
  if (start < 0) return Errno{EINVAL};
  uint64_t end;
  if (fl.l_len > 0) {
    int64_t last;
    if (__builtin_add_overflow(start, static_cast<int64_t>(fl.l_len) - 1, &last)) {
      return Errno{EOVERFLOW};
    }
    end = static_cast<uint64_t>(last);
  } else if (fl.l_len < 0) {
    // The bytes before start: [start + len, start - 1].
    end = static_cast<uint64_t>(start - 1);
    start += fl.l_len;
    if (start < 0) return Errno{EINVAL};
  } else {
    end = UINT64_MAX;
  }
  return std::make_pair(static_cast<uint64_t>(start), end);
}

}  // namespace

Result<long> Flock(Task& t, const vfs::FileRef& f, int op) {
  t.kernel().mu.AssertHeld();  // a syscall handler's caller
  // O_PATH descriptors name a file without opening it (flock: EBADF).
  if (f->flags() & O_PATH) return Errno{EBADF};
  // LOCK_MAND (Samba's, long gone): Linux warns and does nothing.
  constexpr int kLockMand = 32;
  if (op & kLockMand) return 0L;
  const bool nonblock = (op & LOCK_NB) != 0;
  op &= ~LOCK_NB;
  short type;
  switch (op) {
    case LOCK_SH:
      type = F_RDLCK;
      break;
    case LOCK_EX:
      type = F_WRLCK;
      break;
    case LOCK_UN:
      type = F_UNLCK;
      break;
    default:
      return Errno{EINVAL};
  }
  ASSIGN_OR_RETURN(FileKey key, KeyOf(*f));
  Table& tab = Locks();
  {
    // A conversion drops the old lock first (flock(2): not atomic).
    absl::MutexLock l(&tab.mu);
    auto it = tab.files.find(key);
    if (it != tab.files.end()) {
      Unlock(tab, key, *it->second, Kind::kFlock, f.get(), 0, UINT64_MAX);
      if (type == F_UNLCK) Tidy(tab, key);
    }
  }
  if (type == F_UNLCK) return 0L;
  vfs::SetFileReleaseHook(&OnRelease);
  f->set_uses_locks();
  Result<long> r = Acquire(t, key, Lock{Kind::kFlock, f.get(), type, 0, UINT64_MAX, -1}, !nonblock);
  if (r.ok()) return r;
  // EAGAIN from flock is EWOULDBLOCK (the same number on Linux).
  absl::MutexLock l(&tab.mu);
  Tidy(tab, key);
  return r;
}

Result<long> Fcntl(Task& t, const vfs::FileRef& f, int cmd, struct flock* fl) {
  t.kernel().mu.AssertHeld();
  const bool ofd = cmd == F_OFD_GETLK || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
  // OFD locks want l_pid 0 on the way in.
  if (ofd && fl->l_pid != 0) return Errno{EINVAL};
  if (fl->l_type != F_RDLCK && fl->l_type != F_WRLCK && fl->l_type != F_UNLCK) {
    return Errno{EINVAL};
  }
  ASSIGN_OR_RETURN(auto range, RangeOf(*f, *fl));
  ASSIGN_OR_RETURN(FileKey key, KeyOf(*f));
  const void* owner = ofd ? static_cast<const void*>(f.get()) : &t.fds();
  Lock want{ofd ? Kind::kOfd : Kind::kPosix,
            owner,
            fl->l_type,
            range.first,
            range.second,
            ofd ? -1 : t.tgid()};
  Table& tab = Locks();

  if (cmd == F_GETLK || cmd == F_OFD_GETLK) {
    // F_GETLK asks with F_RDLCK or F_WRLCK; F_UNLCK is EINVAL (fcntl_getlk).
    if (fl->l_type == F_UNLCK) return Errno{EINVAL};
    absl::MutexLock l(&tab.mu);
    auto it = tab.files.find(key);
    const Lock* c = it == tab.files.end() ? nullptr : FirstConflict(*it->second, want);
    if (c == nullptr) {
      fl->l_type = F_UNLCK;
      return 0L;
    }
    fl->l_type = c->type;
    fl->l_whence = SEEK_SET;
    fl->l_start = static_cast<off_t>(c->start);
    fl->l_len = c->end == UINT64_MAX ? 0 : static_cast<off_t>(c->end - c->start + 1);
    fl->l_pid = c->pid;
    return 0L;
  }

  // The descriptor must be open for the access the lock stands for.
  if (fl->l_type == F_RDLCK && !f->readable()) return Errno{EBADF};
  if (fl->l_type == F_WRLCK && !f->writable()) return Errno{EBADF};
  if (fl->l_type == F_UNLCK) {
    absl::MutexLock l(&tab.mu);
    auto it = tab.files.find(key);
    if (it != tab.files.end()) {
      Unlock(tab, key, *it->second, want.kind, owner, want.start, want.end);
      Tidy(tab, key);
    }
    return 0L;
  }
  if (ofd) {
    vfs::SetFileReleaseHook(&OnRelease);
    f->set_uses_locks();
  }
  Result<long> r = Acquire(t, key, want, cmd == F_SETLKW || cmd == F_OFD_SETLKW);
  if (!r.ok()) {
    absl::MutexLock l(&tab.mu);
    Tidy(tab, key);
  }
  return r;
}

void OnClose(const FdTable* table, const vfs::File& f) {
  Table& tab = Locks();
  absl::MutexLock l(&tab.mu);
  if (tab.held.find(table) == tab.held.end()) return;  // the common case: no record locks
  auto key = KeyOf(f);
  if (!key.ok()) return;
  auto it = tab.files.find(*key);
  if (it == tab.files.end()) return;
  Unlock(tab, *key, *it->second, Kind::kPosix, table, 0, UINT64_MAX);
  Tidy(tab, *key);
}

void OnRelease(const vfs::File& f) {
  Table& tab = Locks();
  absl::MutexLock l(&tab.mu);
  std::vector<FileKey> keys;
  auto range = tab.held.equal_range(&f);
  for (auto it = range.first; it != range.second; ++it) keys.push_back(it->second);
  for (const FileKey& key : keys) {
    auto it = tab.files.find(key);
    if (it == tab.files.end()) continue;
    Unlock(tab, key, *it->second, Kind::kFlock, &f, 0, UINT64_MAX);
    Unlock(tab, key, *it->second, Kind::kOfd, &f, 0, UINT64_MAX);
    Tidy(tab, key);
  }
  tab.held.erase(&f);
}

}  // namespace husk::file_locks
