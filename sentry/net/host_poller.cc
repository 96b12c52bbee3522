#include "sentry/net/host_poller.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <system_error>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace husk::net {
namespace {

class Poller {
 public:
  Status Watch(int fd, WaitQueue* q, std::function<void(uint32_t)> also) {
    absl::MutexLock l(&mu_);
    if (ep_ < 0) {
      ep_ = epoll_create1(EPOLL_CLOEXEC);
      if (ep_ < 0) return Errno{errno};
      try {
        std::thread([this, ep = ep_] { Loop(ep); }).detach();
      } catch (const std::system_error&) {
        close(ep_);
        ep_ = -1;
        return Errno{EAGAIN};
      }
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) return Errno{errno};
    queues_[fd] = {q, std::move(also)};
    return Ok();
  }

  void Unwatch(int fd) {
    // Under the lock: the thread notifies only under it, so q hears
    // nothing once this returns.
    absl::MutexLock l(&mu_);
    if (queues_.erase(fd) == 0) return;
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
  }

 private:
  void Loop(int ep) {
    constexpr int kBatch = 64;
    epoll_event events[kBatch];
    for (;;) {
      int n = epoll_wait(ep, events, kBatch, -1);
      if (n < 0) continue;  // EINTR
      absl::MutexLock l(&mu_);
      for (int i = 0; i < n; i++) {
        // A descriptor unwatched (and perhaps reused) since the host
        // reported it: its queue is gone, or the new one's hears a
        // spurious event, which waiters tolerate.
        auto it = queues_.find(events[i].data.fd);
        if (it == queues_.end()) continue;
        uint32_t e = events[i].events;
        if (e & EPOLLIN) e |= EPOLLRDNORM;
        if (e & EPOLLOUT) e |= EPOLLWRNORM;
        if (it->second.also) it->second.also(e);
        it->second.q->Notify(e);
      }
    }
  }

  absl::Mutex mu_;
  int ep_ ABSL_GUARDED_BY(mu_) = -1;  // once made, kept for the sentry's life
  struct Watched {
    WaitQueue* q;
    std::function<void(uint32_t)> also;
  };
  std::map<int, Watched> queues_ ABSL_GUARDED_BY(mu_);
};

Poller& ThePoller() {
  static auto* p = new Poller();
  return *p;
}

}  // namespace

Status WatchHostFd(int fd, WaitQueue* q, std::function<void(uint32_t)> also) {
  return ThePoller().Watch(fd, q, std::move(also));
}
void UnwatchHostFd(int fd) { ThePoller().Unwatch(fd); }

}  // namespace husk::net
