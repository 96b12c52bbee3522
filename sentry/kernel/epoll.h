// epoll(7): an epoll instance is a file holding an interest set of (file,
// descriptor) pairs, each with the events it asks for and 64 bits of user
// data, and a ready list, as in Linux's fs/eventpoll.c.
//
// Each interest hangs on its file's event queue. A wake-up there puts the
// interest on the ready list (and wakes the instance's own queue: tasks in
// epoll_wait, pollers of the epoll file, epolls watching this one).
// Harvesting polls each listed file again and reports what is really ready:
// a level-triggered interest goes back on the list after it is reported; an
// edge-triggered one (EPOLLET) waits for the next wake-up; an EPOLLONESHOT
// one is disarmed until EPOLL_CTL_MOD. Files with a host descriptor (stdio)
// have no queue: they are polled at every harvest instead, and EPOLLET on
// them reports when their readiness gains a bit.
//
// An interest holds its file weakly: once the open file description is
// gone (its last descriptor closed), the interest leaves the set, as Linux's
// eventpoll_release does.
//
// Lock order: the big kernel lock, then EpollFile::mu_, one lock for all
// instances (Linux's ep->mtx and epmutex in one: instances watch each
// other, and per-instance locks would nest in whatever order the
// application chose), then the watched files' own locks, then each
// instance's ready_mu_ (ep->lock; a wake-up takes it with the notifying
// file's lock held), then WaitQueue locks. File references taken while
// mu_ is held are dropped after it is released, so no file is destroyed
// under it. A watched file's queue may die before the interest is removed;
// the interest then hears OnQueueGone. Files are created and destroyed,
// and interests added and removed, under the big kernel lock, which keeps
// a queue alive between an interest reading its pointer and unregistering
// from it.
#ifndef HUSK_SENTRY_KERNEL_EPOLL_H_
#define HUSK_SENTRY_KERNEL_EPOLL_H_

#include <poll.h>
#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/result.h"
#include "sentry/kernel/anon.h"
#include "sentry/vfs/vfs.h"
#include "sentry/vfs/waiter.h"

namespace husk::epoll {

// How deep epoll instances may nest below the one being added (EP_MAX_NESTS).
inline constexpr int kMaxNests = 4;

class EpollFile : public anon::AnonFile {
 public:
  EpollFile();
  ~EpollFile() override;

  // epoll_ctl(2) with the target already looked up (fd names it in the key).
  // events: as given (EPOLLERR and EPOLLHUP are added here).
  Status Control(int op, int fd, const vfs::FileRef& target, uint32_t events, uint64_t data);

  // Reports up to `max` ready events through emit(index, events, data),
  // which returns false if the event could not be copied out. Returns how
  // many were reported, or EFAULT if the first could not be.
  Result<int> Harvest(int max, const std::function<bool(int, uint32_t, uint64_t)>& emit);

  // POLLIN | POLLRDNORM when a harvest would report something.
  uint32_t Readiness(uint32_t mask) override;
  WaitQueue* EventQueue() override { return &queue_; }
  // Host descriptors that a wait for this instance must poll (of watched
  // host files, through nested instances too), with the events watched;
  // `keep` gets the files, which the waiter holds so that their
  // descriptors stay open while it polls them.
  void HostFds(std::vector<pollfd>* out, std::vector<vfs::FileRef>* keep);

 private:
  struct Interest;
  using Key = std::pair<const vfs::File*, int>;
  // References to watched files taken under mu_, released after it.
  using Hold = std::vector<vfs::FileRef>;

  uint32_t ReadinessLocked(Hold& hold) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HostFdsLocked(std::vector<pollfd>* out, Hold& hold) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The readiness of a watched file within `events` (through the locked
  // path for a nested instance).
  static uint32_t FileReadiness(vfs::File& f, uint32_t events, Hold& hold)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The interest for key, dropping it if its file has gone away.
  Interest* Find(const Key& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(Interest* i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A wake-up from a watched file's queue (ep_poll_callback).
  void Wake(Interest* i, uint32_t events);
  // Puts i at the tail of the ready list unless it is there.
  void MarkReady(Interest* i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ready_mu_);
  // Whether adding this instance to `into` keeps the epoll graph acyclic
  // and no more than kMaxNests deep below it (ep_loop_check_proc); each
  // instance is walked once.
  bool LoopCheck(const EpollFile* into, int depth, std::set<const EpollFile*>& visited, Hold& hold)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the ready list for a scan, queueing host files that may be ready
  // first; Done puts back what the scan left (ep_start_scan/ep_done_scan).
  std::list<Interest*> StartScan(Hold& hold) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DoneScan(std::list<Interest*>& left) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What the interest's file reports now, within its events; 0 if the
  // file is gone (the interest is then removed).
  uint32_t Poll(Interest* i, Hold& hold) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  static absl::Mutex mu_;
  std::map<Key, std::unique_ptr<Interest>> interests_ ABSL_GUARDED_BY(mu_);
  int polled_count_ ABSL_GUARDED_BY(mu_) = 0;  // interests polled at every scan
  absl::Mutex ready_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::list<Interest*> ready_ ABSL_GUARDED_BY(ready_mu_);
  WaitQueue queue_;
};

// A new epoll instance (its descriptor's O_CLOEXEC is the caller's).
vfs::FileRef New();
// Whether f can be watched (file_can_poll; EPERM otherwise): its readiness
// can change under it, so it has an event queue, or it is a host pipe,
// socket or terminal. Regular files, directories and /dev/null cannot, as
// on Linux.
bool CanWatch(vfs::File& f);
// The epoll instance behind f, or null.
EpollFile* AsEpoll(vfs::File& f);

}  // namespace husk::epoll

#endif  // HUSK_SENTRY_KERNEL_EPOLL_H_
