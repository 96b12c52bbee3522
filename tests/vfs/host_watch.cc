// inotify of a directory that another process (the host, for a read-write
// volume) changes: the watcher's own changes first, then whatever others do,
// printed one event per line until "done" is created. Run natively on a host
// directory and in husk on the volume of that directory: the lines must be
// the same.
//
//   host_watch DIR   (DIR holds a file "f"; prints "ready" once watching)
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>

namespace {

// Changes only: what a read-write volume's host reports (reads and opens
// are the sandbox's own business).
constexpr uint32_t kMask = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                           IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF;

std::string Bits(uint32_t mask) {
  static const std::pair<uint32_t, const char*> kNames[] = {
      {IN_ACCESS, "ACCESS"},
      {IN_MODIFY, "MODIFY"},
      {IN_ATTRIB, "ATTRIB"},
      {IN_CLOSE_WRITE, "CLOSE_WRITE"},
      {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
      {IN_OPEN, "OPEN"},
      {IN_MOVED_FROM, "MOVED_FROM"},
      {IN_MOVED_TO, "MOVED_TO"},
      {IN_CREATE, "CREATE"},
      {IN_DELETE, "DELETE"},
      {IN_DELETE_SELF, "DELETE_SELF"},
      {IN_MOVE_SELF, "MOVE_SELF"},
      {IN_IGNORED, "IGNORED"},
      {IN_Q_OVERFLOW, "Q_OVERFLOW"},
      {IN_ISDIR, "ISDIR"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if (!(mask & bit)) continue;
    if (!out.empty()) out += "|";
    out += name;
  }
  return out;
}

int Fail(const char* what) {
  printf("FAIL %s: %s\n", what, strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: host_watch DIR\n");
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string dir = argv[1];
  int in = inotify_init1(IN_CLOEXEC);
  if (in < 0) return Fail("inotify_init1");
  int dwd = inotify_add_watch(in, dir.c_str(), kMask);
  if (dwd < 0) return Fail("watch dir");
  int fwd = inotify_add_watch(in, (dir + "/f").c_str(), kMask);
  if (fwd < 0) return Fail("watch f");
  std::map<int, std::string> who = {{dwd, "dir"}, {fwd, "f"}};

  // The watcher's own change: heard once, not again from the host.
  int fd = open((dir + "/own").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) return Fail("create own");
  if (write(fd, "own\n", 4) != 4) return Fail("write own");
  close(fd);
  printf("ready\n");

  // Each read waits in poll first: a host change must wake it.
  std::map<uint32_t, int> cookies;  // shown as small numbers in order of appearance
  alignas(struct inotify_event) char buf[8192];
  for (bool done = false; !done;) {
    pollfd p{in, POLLIN, 0};
    int n = poll(&p, 1, 20000);
    if (n < 0) return Fail("poll");
    if (n == 0) {
      printf("FAIL timed out waiting for events\n");
      return 1;
    }
    ssize_t got = read(in, buf, sizeof(buf));
    if (got <= 0) return Fail("read");
    // Nothing after "done": its close may or may not have come yet.
    for (ssize_t off = 0; off < got && !done;) {
      const auto* e = reinterpret_cast<const struct inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(*e) + e->len);
      std::string line = (who.contains(e->wd) ? who[e->wd] : "wd?") + " " + Bits(e->mask);
      if (e->len > 0) line += std::string(" ") + e->name;
      if (e->cookie != 0) {
        int& c = cookies[e->cookie];
        if (c == 0) c = static_cast<int>(cookies.size());
        line += " cookie" + std::to_string(c);
      }
      printf("%s\n", line.c_str());
      if ((e->mask & IN_CREATE) && e->len > 0 && strcmp(e->name, "done") == 0) done = true;
    }
  }
  // What the names say now: the host's changes, not a cached view.
  struct stat st;
  for (const char* name : {"f", "a", "b", "own"}) {
    if (stat((dir + "/" + name).c_str(), &st) == 0) {
      printf("stat %s: size %lld\n", name, static_cast<long long>(st.st_size));
    } else {
      printf("stat %s: %s\n", name, strerror(errno));
    }
  }
  return 0;
}
