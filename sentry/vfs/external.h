// Changes made to a filesystem from outside the sandbox (a host process
// writing a read-write volume), as the filesystem that can see them reports
// them, and the inotify side that hears them. The two meet here so that
// neither links the other: a filesystem registers a source, inotify sets
// the hooks.
//
// A source queues what it saw on its own and has it delivered when
// DrainExternalEvents runs, which inotify does before it reads its queue or
// tells whether it is readable, in a task's syscall (the big kernel lock
// held, no filesystem lock). A source that sees new changes arrive while
// no syscall runs calls WakeExternalReaders from any thread, so that a
// task blocked on an inotify instance looks again.
#ifndef HUSK_SENTRY_VFS_EXTERNAL_H_
#define HUSK_SENTRY_VFS_EXTERNAL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace husk::vfs {

// One change, about the inode (dev, ino) as its Stat reports them. mask:
// one IN_* event bit (IN_ISDIR added for a directory); IN_DELETE_SELF means
// the inode is gone; IN_Q_OVERFLOW means events about it were lost. name:
// the child's, for an event a directory hears about one.
struct ExternalEvent {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint32_t mask = 0;
  uint32_t cookie = 0;  // pairs IN_MOVED_FROM with IN_MOVED_TO (the source's numbering)
  std::string name;
};

// inotify's side.
void SetExternalEventHook(void (*hook)(const std::vector<ExternalEvent>&));
void SetExternalWakeHook(void (*hook)());

// A source's side. `drain` delivers what the source queued through
// DeliverExternalEvents; sources live as long as the sentry.
void AddExternalEventSource(std::function<void()> drain);
void DeliverExternalEvents(const std::vector<ExternalEvent>& events);
void WakeExternalReaders();

// Runs every source's drain (nothing, and almost no cost, without sources).
void DrainExternalEvents();

}  // namespace husk::vfs

#endif  // HUSK_SENTRY_VFS_EXTERNAL_H_
