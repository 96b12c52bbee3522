#include "sentry/kernel/inotify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>

#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "sentry/kernel/anon.h"
#include "sentry/kernel/kernel.h"
#include "sentry/vfs/external.h"

namespace husk::inotify {

namespace internal {
std::atomic<int> g_watches{0};
}  // namespace internal

namespace {

// What a watch keeps of its inode: its identity, which outlives the Inode
// object (see the header).
using Key = std::pair<uint64_t, uint64_t>;  // st_dev, st_ino

std::optional<Key> KeyOf(vfs::Inode& inode) {
  Result<struct stat> st = inode.Stat();
  if (!st.ok()) return std::nullopt;
  return Key{st->st_dev, st->st_ino};
}

// The bits a watch keeps of inotify_add_watch's mask.
constexpr uint32_t kWatchBits = IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK;

class Instance;

struct Watch {
  Instance* owner;
  int wd;
  uint32_t mask;
  Key key;
};

// Every watch of every instance, by inode. Never destroyed: files and
// dentries may go after static destructors have run.
ABSL_CONST_INIT absl::Mutex g_mu(absl::kConstInit);
struct Registry {
  std::map<Key, std::vector<Watch*>> by_inode;
  std::set<Instance*> instances;
  // Cookies of external IN_MOVED_FROM events, by the source's number, until
  // their IN_MOVED_TO comes: the sandbox sees cookies of its own numbering.
  std::map<uint32_t, uint32_t> external_cookies;
  std::map<uid_t, int> user_watches;
  std::map<uid_t, int> user_instances;
};
Registry& Reg() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* r = new Registry();
  return *r;
}

std::atomic<uint32_t> g_cookie{0};

// A fresh rename cookie (never 0).
uint32_t NextCookie() {
  uint32_t cookie = g_cookie.fetch_add(1, std::memory_order_relaxed) + 1;
  if (cookie == 0) cookie = g_cookie.fetch_add(1, std::memory_order_relaxed) + 1;
  return cookie;
}

// One queued event. Names are padded with NULs to a multiple of the record
// header's size (round_event_name_len), which `len` counts.
struct Event {
  int wd = 0;
  uint32_t mask = 0;
  uint32_t cookie = 0;
  std::string name;

  uint32_t NameLen() const {
    if (name.empty()) return 0;
    constexpr size_t kAlign = sizeof(struct inotify_event);
    return static_cast<uint32_t>((name.size() + 1 + kAlign - 1) / kAlign * kAlign);
  }
  size_t Size() const { return sizeof(struct inotify_event) + NameLen(); }
  bool operator==(const Event&) const = default;
};

class Instance : public anon::AnonFile {
 public:
  Instance(int flags, uid_t uid) : AnonFile(O_RDONLY | (flags & O_NONBLOCK), "inotify"), uid_(uid) {
    absl::MutexLock l(&g_mu);
    Reg().instances.insert(this);
  }

  ~Instance() override {
    absl::MutexLock l(&g_mu);
    Reg().instances.erase(this);
    for (auto& [wd, w] : watches_) Unregister(*w);
    watches_.clear();
    if (--Reg().user_instances[uid_] == 0) Reg().user_instances.erase(uid_);
  }

  // inotify_read: as many whole events as fit; EINVAL when the next one
  // does not fit at all (it stays queued); blocking while there are none.
  Result<size_t> Read(char* buf, size_t n) override {
    Task* t = Kernel::Current();
    for (;;) {
      // Changes the host made to a read-write volume first.
      vfs::DrainExternalEvents();
      {
        absl::MutexLock l(&mu_);
        if (!events_.empty()) return Take(buf, n);
        if ((flags() & O_NONBLOCK) || t == nullptr) return Errno{EAGAIN};
        // Registered under the lock: an event queued after the check wakes us.
        queue_.Add(&t->waiter, POLLIN);
      }
      // Reads run inside a syscall, under the big kernel lock.
      t->kernel().mu.AssertHeld();
      Status s = t->Block();
      queue_.Remove(&t->waiter);
      if (!s.ok()) return Errno{kERestartSys};
    }
  }

  // FIONREAD: the bytes a read would take to empty the queue.
  Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) override {
    if (cmd != FIONREAD) return Errno{ENOTTY};
    vfs::DrainExternalEvents();
    int n;
    {
      absl::MutexLock l(&mu_);
      n = static_cast<int>(bytes_);
    }
    TRY(mm.CopyOut(arg, &n, sizeof(n)));
    return 0L;
  }

  // inotify_poll: readable (EPOLLIN | EPOLLRDNORM) while events are queued.
  uint32_t Readiness(uint32_t mask) override {
    vfs::DrainExternalEvents();
    absl::MutexLock l(&mu_);
    return events_.empty() ? 0 : (mask & (POLLIN | POLLRDNORM));
  }
  WaitQueue* EventQueue() override { return &queue_; }
  // Tasks waiting for the instance look again (external changes arrived).
  void Wake() { queue_.Notify(POLLIN | POLLRDNORM); }

  // Queues an event: merged into the last one if identical, the overflow
  // event instead past the limit (fsnotify_insert_event's order).
  void Queue(int wd, uint32_t mask, uint32_t cookie, const std::string& name) {
    absl::MutexLock l(&mu_);
    if (events_.size() >= kMaxQueuedEvents) {
      if (overflow_queued_) return;
      overflow_queued_ = true;
      events_.push_back(Event{-1, IN_Q_OVERFLOW, 0, ""});
    } else {
      Event e{wd, mask, cookie, name};
      if (!events_.empty() && events_.back() == e) return;
      events_.push_back(std::move(e));
    }
    bytes_ += events_.back().Size();
    queue_.Notify(POLLIN | POLLRDNORM);
  }

  // The registry's side, guarded by g_mu.
  Watch* Find(int wd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    auto it = watches_.find(wd);
    return it == watches_.end() ? nullptr : it->second.get();
  }
  Watch* Add(const Key& key, uint32_t mask) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    // idr_alloc_cyclic: numbers go up and are not reused soon.
    const int wd = next_wd_;
    next_wd_ = next_wd_ == INT32_MAX ? 1 : next_wd_ + 1;
    auto w = std::make_unique<Watch>(Watch{this, wd, mask, key});
    Watch* raw = w.get();
    watches_[wd] = std::move(w);
    Reg().by_inode[key].push_back(raw);
    Reg().user_watches[uid_]++;
    internal::g_watches.fetch_add(1, std::memory_order_relaxed);
    return raw;
  }
  // Removes a watch, queueing IN_IGNORED (inotify_ignored_and_remove_idr).
  void Remove(Watch* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    const int wd = w->wd;
    Unregister(*w);
    Queue(wd, IN_IGNORED, 0, "");
    watches_.erase(wd);
  }
  uid_t uid() const { return uid_; }

 private:
  // Takes the events that fit in n bytes (some do: the caller checked that
  // the queue is not empty).
  Result<size_t> Take(char* buf, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (events_.front().Size() > n) return Errno{EINVAL};
    size_t done = 0;
    while (!events_.empty() && events_.front().Size() <= n - done) {
      const Event& e = events_.front();
      struct inotify_event raw {};
      raw.wd = e.wd;
      raw.mask = e.mask;
      raw.cookie = e.cookie;
      raw.len = e.NameLen();
      memcpy(buf + done, &raw, sizeof(raw));
      if (raw.len > 0) {
        // The name, its NUL, then NUL padding up to len.
        char* name = buf + done + sizeof(raw);
        memcpy(name, e.name.c_str(), e.name.size() + 1);
        memset(name + e.name.size() + 1, 0, raw.len - e.name.size() - 1);
      }
      done += e.Size();
      bytes_ -= e.Size();
      if (e.mask == IN_Q_OVERFLOW && e.wd == -1) overflow_queued_ = false;
      events_.pop_front();
    }
    return done;
  }

  // Drops w from the registry's index and counts (not from watches_).
  void Unregister(const Watch& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
    auto it = Reg().by_inode.find(w.key);
    if (it != Reg().by_inode.end()) {
      std::erase(it->second, &w);
      if (it->second.empty()) Reg().by_inode.erase(it);
    }
    if (--Reg().user_watches[uid_] == 0) Reg().user_watches.erase(uid_);
    internal::g_watches.fetch_sub(1, std::memory_order_relaxed);
  }

  const uid_t uid_;
  std::map<int, std::unique_ptr<Watch>> watches_ ABSL_GUARDED_BY(g_mu);
  int next_wd_ ABSL_GUARDED_BY(g_mu) = 1;

  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(g_mu);
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool overflow_queued_ ABSL_GUARDED_BY(mu_) = false;
  WaitQueue queue_;
};

// Sends an event to the watches of `key` that ask for it (IN_IGNORED and
// IN_Q_OVERFLOW never come this way). unlinked: the event is about an open
// file whose name is gone, which IN_EXCL_UNLINK watches do not hear.
// IN_ONESHOT watches go after their first event.
void DeliverLocked(const Key& key, uint32_t mask, uint32_t cookie, const std::string& name,
                   bool unlinked) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  auto it = Reg().by_inode.find(key);
  if (it == Reg().by_inode.end()) return;
  std::vector<Watch*> oneshot;
  for (Watch* w : it->second) {
    if (!(w->mask & mask & IN_ALL_EVENTS)) continue;
    if (unlinked && (w->mask & IN_EXCL_UNLINK)) continue;
    w->owner->Queue(w->wd, mask, cookie, name);
    if (w->mask & IN_ONESHOT) oneshot.push_back(w);
  }
  for (Watch* w : oneshot) w->owner->Remove(w);
}

// The inode is gone (fsnotify_inoderemove): IN_DELETE_SELF to the watches
// that ask for it, then IN_IGNORED to every one, which goes. Linux sets no
// IN_ISDIR on it, even for a directory.
void DeleteSelfLocked(const Key& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  auto it = Reg().by_inode.find(key);
  if (it == Reg().by_inode.end()) return;
  const std::vector<Watch*> watches = it->second;
  for (Watch* w : watches) {
    if (w->mask & IN_DELETE_SELF) w->owner->Queue(w->wd, IN_DELETE_SELF, 0, "");
    w->owner->Remove(w);
  }
}

uint32_t DirBit(vfs::Inode& inode) { return inode.IsDir() ? IN_ISDIR : 0; }

// The parent whose watches hear about d with d's name: none for the root
// of a mount (IS_ROOT on Linux).
vfs::DentryRef WatchedParent(const vfs::Dentry& d) {
  return d.mountpoint() == nullptr ? d.parent() : nullptr;
}

// The last name of an object went (unlink, rmdir, rename over it): it is
// gone now if nothing but the caller's `child` holds its dentry, else when
// the last holder lets go (the dentry's release hook). Returns whether it
// is gone now.
bool GoneNow(const vfs::DentryRef& child, const std::optional<struct stat>& st, bool dir) {
  const bool last_name = dir || !st.has_value() || st->st_nlink == 0;
  if (!last_name) return false;
  if (child.use_count() <= 1) return true;
  child->set_notify_release();
  return false;
}

std::optional<struct stat> StatOf(vfs::Inode& inode) {
  Result<struct stat> st = inode.Stat();
  if (!st.ok()) return std::nullopt;
  return *st;
}

// vfs hooks.
void OnClose(const vfs::File& f) {
  NotifyFile(f, f.writable() ? IN_CLOSE_WRITE : IN_CLOSE_NOWRITE);
}

void OnDentryRelease(vfs::Inode& inode) {
  if (!Active()) return;
  std::optional<struct stat> st = StatOf(inode);
  if (!st.has_value()) return;
  // Linked again meanwhile (linkat of an O_TMPFILE-like file): not gone.
  if (!inode.IsDir() && st->st_nlink > 0) return;
  absl::MutexLock l(&g_mu);
  DeleteSelfLocked(Key{st->st_dev, st->st_ino});
}

// Changes made outside the sandbox (vfs/external.h), in order.
void OnExternal(const std::vector<vfs::ExternalEvent>& events) {
  absl::MutexLock l(&g_mu);
  for (const vfs::ExternalEvent& e : events) {
    const Key key{e.dev, e.ino};
    if (e.mask & IN_Q_OVERFLOW) {
      auto it = Reg().by_inode.find(key);
      if (it == Reg().by_inode.end()) continue;
      for (Watch* w : it->second) w->owner->Queue(-1, IN_Q_OVERFLOW, 0, "");
      continue;
    }
    if (e.mask & IN_DELETE_SELF) {
      DeleteSelfLocked(key);
      continue;
    }
    uint32_t cookie = 0;
    if (e.mask & (IN_MOVED_FROM | IN_MOVED_TO)) {
      auto& cookies = Reg().external_cookies;
      auto it = cookies.find(e.cookie);
      if (it != cookies.end()) {
        cookie = it->second;
        if (e.mask & IN_MOVED_TO) cookies.erase(it);
      } else {
        cookie = NextCookie();
        // A move out of every watched directory has no IN_MOVED_TO: the
        // map is kept small instead.
        if (cookies.size() >= 64) cookies.clear();
        if (e.mask & IN_MOVED_FROM) cookies[e.cookie] = cookie;
      }
    }
    DeliverLocked(key, e.mask, cookie, e.name, false);
  }
}

void WakeAll() {
  absl::MutexLock l(&g_mu);
  for (Instance* in : Reg().instances) in->Wake();
}

}  // namespace

Result<vfs::FileRef> New(int flags, uid_t uid) {
  vfs::SetFileCloseHook(&OnClose);
  vfs::SetDentryReleaseHook(&OnDentryRelease);
  vfs::SetExternalEventHook(&OnExternal);
  vfs::SetExternalWakeHook(&WakeAll);
  {
    absl::MutexLock l(&g_mu);
    int& n = Reg().user_instances[uid];
    if (n >= kMaxUserInstances) return Errno{EMFILE};
    n++;
  }
  return vfs::FileRef(std::make_shared<Instance>(flags, uid));
}

bool IsInstance(const vfs::File& f) { return dynamic_cast<const Instance*>(&f) != nullptr; }

Result<int> AddWatch(vfs::File& f, vfs::Inode& inode, uint32_t mask) {
  auto* in = dynamic_cast<Instance*>(&f);
  if (in == nullptr) return Errno{EINVAL};
  inode.StartWatching();
  std::optional<Key> key = KeyOf(inode);
  if (!key.has_value()) return Errno{ENOENT};
  absl::MutexLock l(&g_mu);
  auto it = Reg().by_inode.find(*key);
  if (it != Reg().by_inode.end()) {
    for (Watch* w : it->second) {
      if (w->owner != in) continue;
      // inotify_update_existing_watch.
      if (mask & IN_MASK_CREATE) return Errno{EEXIST};
      w->mask = (mask & kWatchBits) | ((mask & IN_MASK_ADD) ? w->mask : 0);
      return w->wd;
    }
  }
  auto users = Reg().user_watches.find(in->uid());
  if (users != Reg().user_watches.end() && users->second >= kMaxUserWatches) {
    return Errno{ENOSPC};
  }
  return in->Add(*key, mask & kWatchBits)->wd;
}

Status RemoveWatch(vfs::File& f, int wd) {
  auto* in = dynamic_cast<Instance*>(&f);
  if (in == nullptr) return Errno{EINVAL};
  absl::MutexLock l(&g_mu);
  Watch* w = in->Find(wd);
  if (w == nullptr) return Errno{EINVAL};
  in->Remove(w);
  return Ok();
}

namespace internal {

void NotifyDentry(const vfs::Dentry& d, uint32_t event) {
  vfs::Inode& inode = *d.inode();
  const uint32_t mask = event | DirBit(inode);
  const std::optional<Key> self = KeyOf(inode);
  std::optional<Key> parent;
  if (vfs::DentryRef p = WatchedParent(d); p != nullptr) parent = KeyOf(*p->inode());
  absl::MutexLock l(&g_mu);
  if (parent.has_value()) DeliverLocked(*parent, mask, 0, d.name(), d.deleted());
  if (self.has_value()) DeliverLocked(*self, mask, 0, "", d.deleted());
}

void NotifyFile(const vfs::File& f, uint32_t event) {
  if (f.dentry() != nullptr) {
    NotifyDentry(*f.dentry(), event);
  } else {
    NotifyInode(*f.inode(), event);
  }
}

void NotifyInode(vfs::Inode& inode, uint32_t event) {
  const std::optional<Key> self = KeyOf(inode);
  if (!self.has_value()) return;
  const uint32_t mask = event | DirBit(inode);
  absl::MutexLock l(&g_mu);
  DeliverLocked(*self, mask, 0, "", false);
}

void NotifyCreate(const vfs::Dentry& parent, const std::string& name, bool is_dir) {
  const std::optional<Key> key = KeyOf(*parent.inode());
  if (!key.has_value()) return;
  absl::MutexLock l(&g_mu);
  DeliverLocked(*key, IN_CREATE | (is_dir ? IN_ISDIR : 0), 0, name, false);
}

// vfs_unlink: fsnotify_link_count, then d_delete (the inode's removal if
// that was its last name and dentry), then fsnotify_delete on the parent.
// vfs_rmdir has no link-count event.
void NotifyRemoved(const vfs::Dentry& parent, const std::string& name, const vfs::DentryRef& child,
                   bool rmdir) {
  const std::optional<struct stat> st = StatOf(*child->inode());
  const std::optional<Key> pkey = KeyOf(*parent.inode());
  const bool now = GoneNow(child, st, rmdir);
  absl::MutexLock l(&g_mu);
  if (st.has_value()) {
    const Key self{st->st_dev, st->st_ino};
    if (!rmdir) DeliverLocked(self, IN_ATTRIB, 0, "", false);
    if (now) DeleteSelfLocked(self);
  }
  if (pkey.has_value()) DeliverLocked(*pkey, IN_DELETE | (rmdir ? IN_ISDIR : 0), 0, name, false);
}

// fsnotify_move, then the final dput of the replaced dentry.
void NotifyRename(const vfs::Dentry& old_parent, const std::string& old_name,
                  const vfs::Dentry& new_parent, const std::string& new_name,
                  const vfs::DentryRef& moved, const vfs::DentryRef& replaced) {
  const uint32_t cookie = NextCookie();
  const uint32_t dir = DirBit(*moved->inode());
  const std::optional<Key> from = KeyOf(*old_parent.inode());
  const std::optional<Key> to = KeyOf(*new_parent.inode());
  const std::optional<Key> self = KeyOf(*moved->inode());
  std::optional<struct stat> rst;
  bool replaced_dir = false, replaced_now = false;
  if (replaced != nullptr) {
    rst = StatOf(*replaced->inode());
    replaced_dir = replaced->inode()->IsDir();
    replaced_now = GoneNow(replaced, rst, replaced_dir);
  }
  absl::MutexLock l(&g_mu);
  if (from.has_value()) DeliverLocked(*from, IN_MOVED_FROM | dir, cookie, old_name, false);
  if (to.has_value()) DeliverLocked(*to, IN_MOVED_TO | dir, cookie, new_name, false);
  std::optional<Key> rkey;
  if (rst.has_value()) {
    rkey = Key{rst->st_dev, rst->st_ino};
    DeliverLocked(*rkey, IN_ATTRIB | (replaced_dir ? IN_ISDIR : 0), 0, "", false);
  }
  // Linux sets no IN_ISDIR on IN_MOVE_SELF.
  if (self.has_value()) DeliverLocked(*self, IN_MOVE_SELF, 0, "", false);
  if (rkey.has_value() && replaced_now) DeleteSelfLocked(*rkey);
}

}  // namespace internal

}  // namespace husk::inotify
