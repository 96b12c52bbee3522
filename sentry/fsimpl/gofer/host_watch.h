// inotify for changes the host makes to a read-write volume (gVisor has no
// such thing). The gofer donates a host inotify instance and adds watches on
// the nodes the sandbox watches; the sentry reads the instance itself.
//
// Telling the host's changes from the sandbox's own. The sandbox's changes
// go through the gofer or through donated fds, and the host reports them
// too; the sentry's VFS already told the sandbox about them, exactly. So
// every change the sentry makes to a watched volume runs inside an
// OwnChange: before it, what the host reported so far is set aside for
// delivery; after it, what the host reported meanwhile is dropped (host
// inotify queues events before the syscall that causes them returns). A
// host change made during the sandbox's own change to the same volume is
// lost with it. Reads, opens and closes are never asked for (see
// gofer::kWatchMask), so the sentry's reads of donated fds and the gofer's
// opens need no such care.
//
// Delivery happens in a task's syscall (vfs::DrainExternalEvents): inotify
// drains before it reads or polls its queue. A thread per watcher moves
// what the host queued into the pending list while no syscall runs and
// wakes the tasks waiting on inotify instances.
#ifndef HUSK_SENTRY_FSIMPL_GOFER_HOST_WATCH_H_
#define HUSK_SENTRY_FSIMPL_GOFER_HOST_WATCH_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "base/fd.h"
#include "base/result.h"
#include "gofer/client.h"

namespace husk::goferfs {

// What a watched node does when the host changed it or, for a directory,
// one of its entries (name non-empty). Returns whether the node itself is
// gone now (a file whose last name the host removed): the watcher then
// reports IN_DELETE_SELF, which the host itself only reports once the gofer
// lets the node go. Runs in a task's syscall.
class HostChangeListener {
 public:
  virtual ~HostChangeListener() = default;
  virtual bool HostChanged(uint32_t mask, const std::string& name) = 0;
};

class HostWatcher {
 public:
  // A watcher on `client`'s tree (a writable one): asks the gofer for its
  // inotify instance and starts the thread.
  static Result<std::shared_ptr<HostWatcher>> Start(std::shared_ptr<gofer::Client> client);

  // Watches the node `fid` names, which Stat reports as (dev, ino).
  Status Watch(gofer::Fid fid, uint64_t dev, uint64_t ino,
               std::weak_ptr<HostChangeListener> listener);

  // Brackets a change the sentry makes to the tree (see the file comment).
  void BeginOwn();
  void EndOwn();

  // Delivers what the host reported (vfs::DrainExternalEvents).
  void Drain();

  explicit HostWatcher(std::shared_ptr<gofer::Client> client, UniqueFd inotify, UniqueFd kick)
      : client_(std::move(client)), fd_(std::move(inotify)), kick_(std::move(kick)) {}

 private:
  struct Target {
    uint64_t dev = 0;
    uint64_t ino = 0;
    std::weak_ptr<HostChangeListener> listener;
    bool gone = false;  // IN_DELETE_SELF told already: later events are stale
  };
  struct Raw {
    int wd;
    uint32_t mask;
    uint32_t cookie;
    std::string name;
  };

  void Loop();
  // Reads what the host queued: kept in pending_, or dropped. False if the
  // descriptor reads as end-of-file (not an inotify instance).
  bool ReadLocked(bool keep) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<gofer::Client> client_;
  const UniqueFd fd_;    // the host inotify instance, nonblocking
  const UniqueFd kick_;  // an eventfd: pending_ filled outside the thread
  absl::Mutex mu_;
  absl::CondVar idle_;  // own_ fell to 0
  int own_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Raw> pending_ ABSL_GUARDED_BY(mu_);
  bool overflow_ ABSL_GUARDED_BY(mu_) = false;
  std::map<int, Target> targets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace husk::goferfs

#endif  // HUSK_SENTRY_FSIMPL_GOFER_HOST_WATCH_H_
