// O_ASYNC on sockets, pipes and terminals (fcntl F_SETFL, ioctl FIOASYNC):
// a file that may have become readable or writable signals its owner
// (F_SETOWN) with SIGIO, or F_SETSIG's signal with si_code POLL_IN,
// POLL_OUT, ... and si_fd, as Linux's kill_fasync does. A file hears of
// changes from any thread and under any lock (its queue's Notify); the
// signal needs the kernel's lock, so a thread of the sentry's sends it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include <deque>
#include <map>
#include <memory>
#include <system_error>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "sentry/net/socket.h"
#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

constexpr uint32_t kHeard =
    POLLIN | POLLOUT | POLLPRI | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM | POLLRDHUP;

// The signals waiting for the kernel's lock, one per file (events merged).
class Signaller {
 public:
  static Signaller& Get() {
    static auto* s = new Signaller();
    return *s;
  }

  Status Start(Kernel& k) {
    absl::MutexLock l(&mu_);
    if (kernel_ != nullptr) return Ok();
    try {
      std::thread([this, &k] { Loop(k); }).detach();
    } catch (const std::system_error&) {
      return Errno{EAGAIN};
    }
    kernel_ = &k;
    return Ok();
  }

  void Post(std::weak_ptr<vfs::File> file, const vfs::File* key, int fd, bool socket,
            uint32_t events) {
    absl::MutexLock l(&mu_);
    auto [it, fresh] = pending_.try_emplace(key);
    // An entry left by a file gone since (another may have its address
    // now) is this file's no more.
    if (!fresh && !SameFile(it->second.file, file)) it->second = Pending{};
    if (it->second.fd < 0) {
      it->second.file = std::move(file);
      it->second.fd = fd;
      it->second.socket = socket;
    }
    it->second.events |= events;
  }

  // Urgent data came to a socket: SIGURG for its owner. Before the thread
  // runs no file has an owner (F_SETOWN starts it), so nothing is kept.
  // (Called under the sockets' lock: the file is never locked here, as its
  // last reference must not go under that lock.)
  void PostUrgent(std::weak_ptr<vfs::File> file, const vfs::File* key) {
    absl::MutexLock l(&mu_);
    if (kernel_ == nullptr) return;
    auto [it, fresh] = pending_.try_emplace(key);
    if (!fresh && !SameFile(it->second.file, file)) it->second = Pending{};
    if (it->second.file.expired()) {
      it->second.file = std::move(file);
      it->second.socket = true;
    }
    it->second.urgent = true;
  }

 private:
  // Whether two references name the same live file.
  static bool SameFile(const std::weak_ptr<vfs::File>& a, const std::weak_ptr<vfs::File>& b) {
    return !a.expired() && !a.owner_before(b) && !b.owner_before(a);
  }

  struct Pending {
    std::weak_ptr<vfs::File> file;
    int fd = -1;
    bool socket = false;
    uint32_t events = 0;
    bool urgent = false;  // SIGURG for the owner
  };

  // Why a pipe's or a terminal's end is signalled (pipe_write, pipe_read,
  // pipe_release, n_tty): its reader hears of input and of the writers
  // going (POLL_IN), its writer of room and of the readers going
  // (POLL_OUT). False: nothing for this end.
  static bool StreamReason(const vfs::File& f, uint32_t events, uint32_t ready, int* code,
                           long* band) {
    const int mode = f.flags() & O_ACCMODE;
    if (mode != O_WRONLY && (events & (POLLIN | POLLRDNORM | POLLHUP)) &&
        (ready & (POLLIN | POLLHUP))) {
      *code = POLL_IN;
      *band = POLLIN | POLLRDNORM;
      return true;
    }
    // Room to write: a change about writing alone (a terminal's own input
    // notifies everything, and must not signal its writer).
    if (mode != O_RDONLY && (events & (POLLOUT | POLLWRNORM | POLLERR)) &&
        !(events & (POLLIN | POLLRDNORM)) && (ready & (POLLOUT | POLLERR))) {
      *code = POLL_OUT;
      *band = POLLOUT | POLLWRNORM | POLLWRBAND;
      return true;
    }
    return false;
  }

  void Loop(Kernel& k) {
    for (;;) {
      std::map<const vfs::File*, Pending> batch;
      {
        absl::MutexLock l(&mu_);
        mu_.Await(absl::Condition(
            +[](std::map<const vfs::File*, Pending>* p) { return !p->empty(); }, &pending_));
        batch.swap(pending_);
      }
      std::vector<vfs::FileRef> keep;  // let go after the kernel's lock
      {
        absl::MutexLock kl(&k.mu);
        for (auto& [key, p] : batch) {
          vfs::FileRef f = p.file.lock();
          if (f == nullptr) continue;
          if (p.urgent) SignalOwnerUrgent(k, *f);
          keep.push_back(f);
          if (!(f->flags() & O_ASYNC) || p.events == 0) continue;
          // sock_wake_async's reasons, from what the socket is now and
          // what the change was about: input, urgent data, a hang-up, or
          // room to write (a change about writing alone). A change that
          // left nothing of the kind (the socket's own reads) signals
          // nothing.
          const uint32_t ready = f->Readiness(kHeard);
          int code;
          long band;
          if (!p.socket) {
            if (!StreamReason(*f, p.events, ready, &code, &band)) continue;
          } else if ((p.events & (POLLIN | POLLRDNORM)) && (ready & POLLIN)) {
            code = POLL_IN;
            band = POLLIN | POLLRDNORM;
          } else if ((p.events & POLLPRI) && (ready & POLLPRI)) {
            code = POLL_PRI;
            band = POLLPRI | POLLRDBAND;
          } else if ((p.events & (POLLERR | POLLHUP)) && (ready & (POLLERR | POLLHUP))) {
            code = POLL_HUP;
            band = POLLHUP | POLLERR;
          } else if ((p.events & POLLOUT) && !(p.events & POLLIN) && (ready & POLLOUT)) {
            code = POLL_OUT;
            band = POLLOUT | POLLWRNORM | POLLWRBAND;
          } else {
            continue;
          }
          SignalOwner(k, *f, p.fd, code, band);
        }
      }
    }
  }

  absl::Mutex mu_;
  Kernel* kernel_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::map<const vfs::File*, Pending> pending_ ABSL_GUARDED_BY(mu_);
};

// One file's O_ASYNC, registered on its queue. A socket's queue lives as
// long as the socket does; a pipe's or a terminal's may outlive the file
// (another description of it stays open), so a registration whose file is
// gone is taken off at the next change of O_ASYNC anywhere.
class Registration final : public WaitEntry {
 public:
  Registration(const vfs::FileRef& f, int fd, bool socket, WaitQueue* q)
      : file_(f), key_(f.get()), fd_(fd), socket_(socket), q_(q) {}

  void OnEvents(uint32_t events) override {
    if (file_.expired()) return;  // a description gone: nobody to signal
    Signaller::Get().Post(file_, key_, fd_, socket_, events);
  }
  void OnQueueGone() override {
    absl::MutexLock l(&mu_);
    gone_ = true;
  }
  // Off the queue, unless the queue (and its socket) is gone already.
  void Leave() {
    absl::MutexLock l(&mu_);
    if (!gone_) q_->Remove(this);
    gone_ = true;
  }
  bool Gone() {
    absl::MutexLock l(&mu_);
    return gone_;
  }
  bool FileGone() const { return file_.expired(); }

 private:
  const std::weak_ptr<vfs::File> file_;
  const vfs::File* const key_;
  const int fd_;
  const bool socket_;
  WaitQueue* const q_;
  absl::Mutex mu_;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;
};

absl::Mutex g_registrations_mu;
std::map<const vfs::File*, std::unique_ptr<Registration>>& Registrations()
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_registrations_mu) {
  static auto* m = new std::map<const vfs::File*, std::unique_ptr<Registration>>();
  return *m;
}

}  // namespace

Status StartOwnerSignals(Kernel& k) { return Signaller::Get().Start(k); }

namespace {
// Installed before any socket exists.
struct UrgentPosterInstaller {
  UrgentPosterInstaller() {
    net::SetUrgentPoster(+[](std::weak_ptr<vfs::File> f, const vfs::File* key) {
      Signaller::Get().PostUrgent(std::move(f), key);
    });
  }
} g_install_urgent_poster;
}  // namespace

Status SetAsync(Task& t, const vfs::FileRef& f, int fd, bool on) {
  const bool socket = net::AsSocket(*f) != nullptr;
  // Sockets, pipes and terminals: the files whose queue says when they
  // became readable or writable (an eventfd's or a timerfd's has no SIGIO
  // on Linux either).
  auto st = socket ? Result<struct stat>(Errno{ENOTSOCK}) : f->Stat();
  const bool stream = st.ok() && (S_ISFIFO(st->st_mode) || S_ISCHR(st->st_mode));
  WaitQueue* q = socket || stream ? f->EventQueue() : nullptr;
  if (q == nullptr) return Ok();
  absl::MutexLock l(&g_registrations_mu);
  auto& all = Registrations();
  // Those whose queue went (it told them), and those whose file went.
  std::erase_if(all, [](const auto& e) {
    if (e.second->Gone()) return true;
    if (!e.second->FileGone()) return false;
    e.second->Leave();
    return true;
  });
  if (auto it = all.find(f.get()); it != all.end()) {
    it->second->Leave();
    all.erase(it);
  }
  if (!on) return Ok();
  TRY(Signaller::Get().Start(t.kernel()));
  auto r = std::make_unique<Registration>(f, fd, socket, q);
  q->Add(r.get(), kHeard);
  all[f.get()] = std::move(r);
  return Ok();
}

}  // namespace husk::syscalls
