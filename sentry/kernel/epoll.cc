#include "sentry/kernel/epoll.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>

namespace husk::epoll {
namespace {

// Flags that are not events (EP_PRIVATE_BITS).
constexpr uint32_t kPrivateBits = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
// What EPOLLEXCLUSIVE may be combined with (EPOLLEXCLUSIVE_OK_BITS).
constexpr uint32_t kExclusiveOkBits =
    EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;

}  // namespace

struct EpollFile::Interest final : WaitEntry {
  Interest(EpollFile* ep, const vfs::FileRef& f, int fd)
      : ep(ep),
        file(f),
        key(f.get(), fd),
        host_fd(f->HostFd()),
        polled(f->HostFd() >= 0 || AsEpoll(*f) != nullptr) {}

  void OnEvents(uint32_t events) override { ep->Wake(this, events); }
  // The file's queue died with it (an eventfd closed): queue the interest
  // so the next scan finds the file gone and drops it.
  void OnQueueGone() override {
    queue = nullptr;
    absl::MutexLock l(&ep->ready_mu_);
    ep->MarkReady(this);
  }

  EpollFile* const ep;
  const std::weak_ptr<vfs::File> file;
  const Key key;
  const int host_fd;  // the file's host descriptor, or -1
  // Polled at every scan: host files (no queue wakes us for them) and
  // nested instances (which may hold host files).
  const bool polled;
  WaitQueue* queue = nullptr;  // the file's queue while registered there
  // Written under mu_ and ready_mu_ both; read under either.
  uint32_t events = 0;
  uint64_t data = 0;        // mu_
  uint32_t seen = 0;        // polled interests: the readiness last seen (mu_)
  bool ready = false;       // on ready_ (ready_mu_)
  std::list<Interest*>::iterator ready_pos;  // ready_mu_
};

ABSL_CONST_INIT absl::Mutex EpollFile::mu_(absl::kConstInit);

EpollFile::EpollFile() : anon::AnonFile(O_RDWR, "[eventpoll]") {}

EpollFile::~EpollFile() {
  absl::MutexLock l(&mu_);
  while (!interests_.empty()) Remove(interests_.begin()->second.get());
}

bool CanWatch(vfs::File& f) {
  if (f.EventQueue() != nullptr) return true;
  if (f.HostFd() < 0) return false;
  // Host stdio: pipes, sockets and terminals have a poll method; regular
  // files, directories and /dev/null do not.
  Result<struct stat> st = f.Stat();
  if (!st.ok()) return false;
  switch (st->st_mode & S_IFMT) {
    case S_IFIFO:
    case S_IFSOCK:
      return true;
    case S_IFCHR: {
      termios tio;
      return ioctl(f.HostFd(), TCGETS, &tio) == 0;
    }
    default:
      return false;
  }
}

EpollFile* AsEpoll(vfs::File& f) { return dynamic_cast<EpollFile*>(&f); }

vfs::FileRef New() { return std::make_shared<EpollFile>(); }

EpollFile::Interest* EpollFile::Find(const Key& key) {
  auto it = interests_.find(key);
  if (it == interests_.end()) return nullptr;
  // A description that is gone left its interest behind under an address
  // that a new file may reuse: it no longer counts.
  if (it->second->file.expired()) {
    Remove(it->second.get());
    return nullptr;
  }
  return it->second.get();
}

void EpollFile::Remove(Interest* i) {
  if (i->queue != nullptr) i->queue->Remove(i);
  if (i->polled) polled_count_--;
  {
    absl::MutexLock l(&ready_mu_);
    if (i->ready) ready_.erase(i->ready_pos);
    i->ready = false;
  }
  interests_.erase(i->key);
}

void EpollFile::MarkReady(Interest* i) {
  if (i->ready) return;
  i->ready_pos = ready_.insert(ready_.end(), i);
  i->ready = true;
}

void EpollFile::Wake(Interest* i, uint32_t events) {
  {
    absl::MutexLock l(&ready_mu_);
    // ep_poll_callback: a disarmed EPOLLONESHOT interest hears nothing, and
    // a wake-up for events the interest does not watch is not an event.
    uint32_t watched = i->events & ~kPrivateBits;
    if ((watched & events) == 0) return;
    MarkReady(i);
  }
  queue_.Notify(POLLIN | POLLRDNORM);
}

uint32_t EpollFile::FileReadiness(vfs::File& f, uint32_t events, Hold& hold) {
  if (EpollFile* inner = AsEpoll(f)) return inner->ReadinessLocked(hold) & events;
  return f.Readiness(events & ~kPrivateBits) & events;
}

uint32_t EpollFile::Poll(Interest* i, Hold& hold) {
  vfs::FileRef f = i->file.lock();
  if (f == nullptr) {
    Remove(i);
    return 0;
  }
  hold.push_back(f);
  return FileReadiness(*f, i->events, hold);
}

std::list<EpollFile::Interest*> EpollFile::StartScan(Hold& hold) {
  if (polled_count_ > 0) {
    std::vector<Interest*> gone;
    for (auto& [key, i] : interests_) {
      if (!i->polled) continue;
      vfs::FileRef f = i->file.lock();
      if (f == nullptr) {
        gone.push_back(i.get());
        continue;
      }
      hold.push_back(f);
      uint32_t now = FileReadiness(*f, i->events, hold);
      // Edge-triggered: only readiness that gained a bit is an edge.
      bool event = (i->events & EPOLLET) ? (now & ~i->seen) != 0 : now != 0;
      i->seen = now;
      if (event && (i->events & ~kPrivateBits) != 0) {
        absl::MutexLock l(&ready_mu_);
        MarkReady(i.get());
      }
    }
    for (Interest* i : gone) Remove(i);
  }
  absl::MutexLock l(&ready_mu_);
  std::list<Interest*> scan;
  scan.swap(ready_);
  for (Interest* i : scan) i->ready = false;
  return scan;
}

void EpollFile::DoneScan(std::list<Interest*>& left) {
  absl::MutexLock l(&ready_mu_);
  // Back at the head, in order, unless a wake-up queued them meanwhile.
  for (auto it = left.rbegin(); it != left.rend(); ++it) {
    Interest* i = *it;
    if (i->ready) continue;
    ready_.push_front(i);
    i->ready_pos = ready_.begin();
    i->ready = true;
  }
  left.clear();
}

Result<int> EpollFile::Harvest(int max, const std::function<bool(int, uint32_t, uint64_t)>& emit) {
  Hold hold;
  absl::MutexLock l(&mu_);
  std::list<Interest*> scan = StartScan(hold);
  std::vector<Interest*> again;  // level-triggered: back on the list
  int n = 0;
  while (!scan.empty() && n < max) {
    Interest* i = scan.front();
    scan.pop_front();
    // Not ready (any more): off the list until the next wake-up. A file
    // that is gone is removed here.
    uint32_t revents = Poll(i, hold);
    if (revents == 0) continue;
    if (!emit(n, revents, i->data)) {
      scan.push_front(i);
      if (n == 0) {
        DoneScan(scan);
        return Errno{EFAULT};
      }
      break;
    }
    n++;
    if (i->events & EPOLLONESHOT) {
      absl::MutexLock r(&ready_mu_);
      i->events &= kPrivateBits;  // disarmed until EPOLL_CTL_MOD
    } else if (!(i->events & EPOLLET)) {
      again.push_back(i);
    }
  }
  {
    absl::MutexLock r(&ready_mu_);
    for (Interest* i : again) MarkReady(i);
  }
  DoneScan(scan);
  return n;
}

uint32_t EpollFile::Readiness(uint32_t mask) {
  Hold hold;
  absl::MutexLock l(&mu_);
  return ReadinessLocked(hold) & (mask | POLLERR | POLLHUP);
}

uint32_t EpollFile::ReadinessLocked(Hold& hold) {
  std::list<Interest*> scan = StartScan(hold);
  uint32_t ready = 0;
  // ep_eventpoll_poll: the first listed interest that is really ready
  // makes the instance readable; the ones that are not leave the list.
  while (!scan.empty()) {
    Interest* i = scan.front();
    scan.pop_front();
    if (Poll(i, hold) != 0) {
      scan.push_front(i);
      ready = POLLIN | POLLRDNORM;
      break;
    }
  }
  DoneScan(scan);
  return ready;
}

void EpollFile::HostFds(std::vector<pollfd>* out, std::vector<vfs::FileRef>* keep) {
  Hold hold;
  {
    absl::MutexLock l(&mu_);
    HostFdsLocked(out, hold);
  }
  keep->insert(keep->end(), hold.begin(), hold.end());
}

void EpollFile::HostFdsLocked(std::vector<pollfd>* out, Hold& hold) {
  if (polled_count_ == 0) return;
  for (auto& [key, i] : interests_) {
    if (!i->polled) continue;
    vfs::FileRef f = i->file.lock();
    if (f == nullptr) continue;
    hold.push_back(f);
    if (EpollFile* inner = AsEpoll(*f)) {
      inner->HostFdsLocked(out, hold);
      continue;
    }
    auto watched = static_cast<uint16_t>(i->events & ~kPrivateBits);
    // An edge-triggered host file already reported ready would wake the
    // host poll at once, again and again: it is watched again once a scan
    // has seen it not ready. (Linux would also report new data arriving
    // while it stays ready; a host poll cannot tell.)
    if (watched == 0 || ((i->events & EPOLLET) && i->seen != 0)) continue;
    out->push_back(pollfd{i->host_fd, static_cast<short>(watched), 0});
  }
}

bool EpollFile::LoopCheck(const EpollFile* into, int depth, std::set<const EpollFile*>& visited,
                          Hold& hold) {
  for (auto& [key, i] : interests_) {
    vfs::FileRef f = i->file.lock();
    EpollFile* inner = f ? AsEpoll(*f) : nullptr;
    if (inner == nullptr || !visited.insert(inner).second) continue;
    hold.push_back(f);
    if (inner == into || depth > kMaxNests) return false;
    if (!inner->LoopCheck(into, depth + 1, visited, hold)) return false;
  }
  return true;
}

Status EpollFile::Control(int op, int fd, const vfs::FileRef& target, uint32_t events,
                          uint64_t data) {
  // do_epoll_ctl's order: EPOLLEXCLUSIVE rules, the loop check, then the op.
  bool has_event = op != EPOLL_CTL_DEL;
  EpollFile* inner = AsEpoll(*target);
  if (has_event && (events & EPOLLEXCLUSIVE)) {
    if (op == EPOLL_CTL_MOD) return Errno{EINVAL};
    if (op == EPOLL_CTL_ADD && (inner != nullptr || (events & ~kExclusiveOkBits))) {
      return Errno{EINVAL};
    }
  }
  Hold hold;
  absl::MutexLock l(&mu_);
  if (op == EPOLL_CTL_ADD && inner != nullptr) {
    // Adding an instance must not close a loop or nest more than
    // kMaxNests instances below it (ep_loop_check).
    std::set<const EpollFile*> visited{inner};
    if (!inner->LoopCheck(this, 0, visited, hold)) return Errno{ELOOP};
  }
  Interest* i = Find(Key(target.get(), fd));
  switch (op) {
    case EPOLL_CTL_ADD: {
      if (i != nullptr) return Errno{EEXIST};
      // Gone descriptions linger until a scan meets them; sweep them now
      // and then so that add-and-close loops cannot grow the set.
      if (interests_.size() >= 64 && (interests_.size() & (interests_.size() - 1)) == 0) {
        std::vector<Interest*> gone;
        for (auto& [key, e] : interests_) {
          if (e->file.expired()) gone.push_back(e.get());
        }
        for (Interest* e : gone) Remove(e);
      }
      auto owned = std::make_unique<Interest>(this, target, fd);
      i = owned.get();
      interests_.emplace(i->key, std::move(owned));
      {
        absl::MutexLock r(&ready_mu_);
        i->events = events | EPOLLERR | EPOLLHUP;
      }
      i->data = data;
      if (i->polled) polled_count_++;
      // Every wake-up reaches Wake, which filters by the current events
      // (EPOLL_CTL_MOD changes them without registering again).
      if (WaitQueue* q = target->EventQueue()) {
        i->queue = q;
        q->Add(i, ~0U);
      }
      break;
    }
    case EPOLL_CTL_DEL:
      if (i == nullptr) return Errno{ENOENT};
      Remove(i);
      return Ok();
    case EPOLL_CTL_MOD:
      if (i == nullptr) return Errno{ENOENT};
      if (i->events & EPOLLEXCLUSIVE) return Errno{EINVAL};
      {
        absl::MutexLock r(&ready_mu_);
        i->events = events | EPOLLERR | EPOLLHUP;
      }
      i->data = data;
      break;
    default:
      return Errno{EINVAL};
  }
  // ep_insert and ep_modify: a file that is ready now goes on the list.
  uint32_t revents = FileReadiness(*target, i->events, hold);
  i->seen = revents;
  if (revents != 0) {
    {
      absl::MutexLock r(&ready_mu_);
      MarkReady(i);
    }
    queue_.Notify(POLLIN | POLLRDNORM);
  }
  return Ok();
}

}  // namespace husk::epoll
