#include "sentry/fsimpl/gofer/host_watch.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <system_error>
#include <thread>
#include <utility>

#include "gofer/wire.h"
#include "sentry/vfs/external.h"

namespace husk::goferfs {
namespace {

// Host events kept for delivery at most (inotify's own max_queued_events):
// past it, one overflow stands for the rest.
constexpr size_t kMaxPending = 16384;

}  // namespace

Result<std::shared_ptr<HostWatcher>> HostWatcher::Start(std::shared_ptr<gofer::Client> client) {
  ASSIGN_OR_RETURN(UniqueFd in, client->WatchInit());
  UniqueFd kick(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!kick.valid()) return Errno{errno};
  auto w = std::make_shared<HostWatcher>(std::move(client), std::move(in), std::move(kick));
  try {
    // Holds the watcher until the sentry exits, as the source list does.
    std::thread([w] { w->Loop(); }).detach();
  } catch (const std::system_error&) {
    return Errno{EAGAIN};  // a pids or memory limit refused the thread
  }
  vfs::AddExternalEventSource([w] { w->Drain(); });
  return w;
}

Status HostWatcher::Watch(gofer::Fid fid, uint64_t dev, uint64_t ino,
                          std::weak_ptr<HostChangeListener> listener) {
  ASSIGN_OR_RETURN(int wd, client_->Watch(fid));
  absl::MutexLock l(&mu_);
  targets_[wd] = Target{dev, ino, std::move(listener), false};
  return Ok();
}

void HostWatcher::BeginOwn() {
  absl::MutexLock l(&mu_);
  ReadLocked(/*keep=*/true);
  ++own_;
}

void HostWatcher::EndOwn() {
  bool kick;
  {
    absl::MutexLock l(&mu_);
    ReadLocked(/*keep=*/false);
    if (--own_ == 0) idle_.SignalAll();
    kick = !pending_.empty() || overflow_;
  }
  // Events set aside before the change wait for a reader: the thread wakes
  // the waiting tasks (not here: a filesystem lock may be held).
  if (kick) {
    const uint64_t one = 1;
    (void)!write(kick_.get(), &one, sizeof(one));
  }
}

bool HostWatcher::ReadLocked(bool keep) {
  // Whole records only: the kernel never splits one across reads.
  alignas(struct inotify_event) char buf[4096];
  for (;;) {
    ssize_t n = read(fd_.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return true;  // EAGAIN: nothing more queued
    // An inotify instance never reads as end-of-file: what the gofer gave
    // is something else, and is not read again.
    if (n == 0) return false;
    size_t off = 0;
    while (off + sizeof(struct inotify_event) <= static_cast<size_t>(n)) {
      struct inotify_event e;
      memcpy(&e, buf + off, sizeof(e));
      const size_t rest = static_cast<size_t>(n) - off - sizeof(e);
      if (e.len > rest) break;  // not a record the kernel makes: drop the rest
      const char* name = buf + off + sizeof(e);
      off += sizeof(e) + e.len;
      if (e.mask & IN_Q_OVERFLOW) {
        overflow_ = true;
        continue;
      }
      if (e.mask & IN_IGNORED) {
        // The host dropped the watch (its inode is gone): its number may
        // come back for another inode.
        targets_.erase(e.wd);
        continue;
      }
      if (!keep) continue;
      if (pending_.size() >= kMaxPending) {
        overflow_ = true;
        continue;
      }
      pending_.push_back(Raw{e.wd, e.mask, e.cookie, std::string(name, strnlen(name, e.len))});
    }
  }
}

void HostWatcher::Loop() {
  for (;;) {
    pollfd p[2] = {{fd_.get(), POLLIN, 0}, {kick_.get(), POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents & POLLIN) {
      uint64_t v;
      (void)!read(kick_.get(), &v, sizeof(v));
    }
    bool wake;
    {
      absl::MutexLock l(&mu_);
      if (p[0].revents & POLLIN) {
        // Not in the middle of the sandbox's own change: what the host
        // queued then is the change's, to be dropped by EndOwn.
        while (own_ > 0) idle_.Wait(&mu_);
        if (!ReadLocked(/*keep=*/true)) return;
      }
      wake = !pending_.empty() || overflow_;
    }
    if (wake) vfs::WakeExternalReaders();
  }
}

void HostWatcher::Drain() {
  std::vector<Raw> raw;
  bool overflow;
  {
    absl::MutexLock l(&mu_);
    if (own_ == 0) ReadLocked(/*keep=*/true);
    raw.swap(pending_);
    overflow = overflow_;
    overflow_ = false;
  }
  if (raw.empty() && !overflow) return;
  std::vector<vfs::ExternalEvent> out;
  for (Raw& r : raw) {
    Target t;
    {
      absl::MutexLock l(&mu_);
      auto it = targets_.find(r.wd);
      if (it == targets_.end() || it->second.gone) continue;
      t = it->second;
    }
    // Only the events asked for (IN_UNMOUNT comes unasked).
    const uint32_t event = r.mask & gofer::kWatchMask;
    if (event == 0) continue;
    bool gone = (event & IN_DELETE_SELF) != 0;
    if (std::shared_ptr<HostChangeListener> l = t.listener.lock(); l != nullptr) {
      gone = l->HostChanged(event, r.name) || gone;
    }
    if (!(event & IN_DELETE_SELF)) {
      out.push_back(vfs::ExternalEvent{t.dev, t.ino, r.mask, r.cookie, std::move(r.name)});
    }
    if (gone) {
      out.push_back(vfs::ExternalEvent{t.dev, t.ino, IN_DELETE_SELF, 0, ""});
      absl::MutexLock l(&mu_);
      if (auto it = targets_.find(r.wd); it != targets_.end()) it->second.gone = true;
    }
  }
  if (overflow) {
    absl::MutexLock l(&mu_);
    for (const auto& [wd, t] : targets_) {
      if (!t.gone) out.push_back(vfs::ExternalEvent{t.dev, t.ino, IN_Q_OVERFLOW, 0, ""});
    }
  }
  vfs::DeliverExternalEvents(out);
}

}  // namespace husk::goferfs
