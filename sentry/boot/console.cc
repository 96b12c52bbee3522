#include "sentry/boot/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "sentry/time/sandbox_clock.h"

namespace husk {

class Console : public std::enable_shared_from_this<Console> {
 public:
  Console(Kernel& k, UniqueFd host, vfs::FileRef master)
      : k_(k), host_(std::move(host)), master_(std::move(master)) {}

  void Start() {
    std::shared_ptr<Console> self = shared_from_this();
    std::thread([self] { self->Run(); }).detach();
  }

  void Resize(const tty::WindowSize& ws) {
    absl::MutexLock l(&k_.mu);
    if (master_ != nullptr) tty::SetWindowSize(k_, *master_, ws);
  }

  void Finish(absl::Duration limit) {
    finish_by_ns_.store(absl::ToUnixNanos(MonotonicNow() + limit));
    waiter_.Notify();
    done_.WaitForNotificationWithTimeout(limit + absl::Milliseconds(100));
  }

 private:
  void Run();

  Kernel& k_;
  UniqueFd host_;
  // Read here without the kernel lock (only this thread lets it go, and
  // does so under the lock, because the last close of a master hangs up
  // the terminal); Resize reads it under the lock.
  vfs::FileRef master_;
  Waiter waiter_;
  std::atomic<int64_t> finish_by_ns_{INT64_MAX};
  absl::Notification done_;
};

namespace {

absl::Mutex g_consoles_mu;
std::map<int, std::weak_ptr<Console>>& Consoles() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_consoles_mu) {
  static auto* m = new std::map<int, std::weak_ptr<Console>>();
  return *m;
}

}  // namespace

void Console::Run() {
  std::string out;  // from the sandbox, for the host
  std::string in;   // from the host, for the sandbox
  bool host_done = false;
  std::vector<char> buf(16384);
  {
    ScopedWait wait(master_->EventQueue(), &waiter_, ~0U);
    for (;;) {
      const bool finishing = finish_by_ns_.load() != INT64_MAX;
      bool sandbox_done = false;
      if (out.empty()) {
        Result<size_t> r = master_->Read(buf.data(), buf.size());
        if (r.ok()) {
          out.assign(buf.data(), *r);
        } else if (r.error() == EIO) {
          sandbox_done = true;  // no replica is open any more
        }
      }
      if (!out.empty() && !host_done) {
        ssize_t n = write(host_.get(), out.data(), out.size());
        if (n > 0) {
          out.erase(0, static_cast<size_t>(n));
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          host_done = true;
        }
      }
      if (host_done) out.clear();
      if (in.empty() && !host_done && !finishing) {
        ssize_t n = read(host_.get(), buf.data(), buf.size());
        if (n > 0) {
          in.assign(buf.data(), static_cast<size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          host_done = true;  // the engine closed the host terminal
        }
      }
      if (!in.empty() && !host_done) {
        absl::MutexLock l(&k_.mu);
        Result<size_t> r = master_->Write(in.data(), in.size());
        if (r.ok()) in.erase(0, *r);
      }
      if (host_done || (sandbox_done && out.empty()) || (finishing && out.empty())) break;
      const absl::Time deadline =
          finishing ? absl::FromUnixNanos(finish_by_ns_.load()) : absl::InfiniteFuture();
      if (finishing && MonotonicNow() >= deadline) break;
      std::vector<pollfd> host = {{host_.get(), 0, 0}};
      if (in.empty() && !finishing) host[0].events |= POLLIN;
      if (!out.empty()) host[0].events |= POLLOUT;
      waiter_.Wait(deadline, &host);
      if ((host[0].revents & (POLLHUP | POLLERR)) && !(host[0].revents & POLLIN)) host_done = true;
    }
  }
  {
    // Dropping the master hangs the terminal up: its session leader hears
    // SIGHUP, as when an engine closes a runc container's console.
    absl::MutexLock l(&k_.mu);
    master_.reset();
  }
  host_.Reset();
  done_.Notify();
}

Result<std::shared_ptr<Console>> AttachConsole(Kernel& k, Task& t, UniqueFd host) {
  const int fl = fcntl(host.get(), F_GETFL);
  if (fl < 0 || fcntl(host.get(), F_SETFL, fl | O_NONBLOCK) != 0) return Errno{errno};
  tty::WindowSize ws;
  if (ioctl(host.get(), TIOCGWINSZ, &ws) != 0) ws = {};
  vfs::FsContext fs{k.root, k.root, 022};
  ASSIGN_OR_RETURN(vfs::DentryRef pts, vfs::Resolve(fs, k.root, "/dev/pts", true));
  ASSIGN_OR_RETURN(tty::Pair pair, tty::OpenPair(k, pts));
  tty::SetWindowSize(k, *pair.master, ws);
  t.kernel().mu.AssertHeld();  // k's
  for (int fd = 0; fd < 3; fd++) TRY(t.fds().Set(fd, pair.replica, false));
  tty::SetControllingTerminal(t.tg(), *pair.replica);
  auto c = std::make_shared<Console>(k, std::move(host), std::move(pair.master));
  try {
    c->Start();
  } catch (const std::system_error&) {
    return Errno{EAGAIN};
  }
  absl::MutexLock l(&g_consoles_mu);
  auto& m = Consoles();
  for (auto it = m.begin(); it != m.end();) it = it->second.expired() ? m.erase(it) : std::next(it);
  m[t.tgid()] = c;
  return c;
}

bool ResizeConsole(Kernel& k, int pid, const tty::WindowSize& ws) {
  std::shared_ptr<Console> c;
  {
    absl::MutexLock l(&g_consoles_mu);
    auto it = Consoles().find(pid);
    if (it != Consoles().end()) c = it->second.lock();
  }
  if (c == nullptr) return false;
  c->Resize(ws);
  return true;
}

void FinishConsole(Console& c, absl::Duration limit) { c.Finish(limit); }

}  // namespace husk
