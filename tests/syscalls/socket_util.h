// Helpers shared by the socket conformance tests (unix_socket, inet_loopback,
// socket_semantics): one recv described as a string, and forked children waited for with a
// bound.
#ifndef HUSK_TESTS_SYSCALLS_SOCKET_UTIL_H_
#define HUSK_TESTS_SYSCALLS_SOCKET_UTIL_H_

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>

#include "tests/syscalls/test_util.h"

namespace husk_test {

// One recv(2), described: the bytes, or "[eof]" for 0 and "[ENAME]" for -1. (No data in these
// tests contains '['.)
inline std::string Recv(int fd, size_t max = 4096, int flags = 0) {
  std::string buf(max, '\0');
  const ssize_t n = recv(fd, buf.data(), max, flags);
  if (n < 0) return "[" + ErrnoName(errno) + "]";
  if (n == 0) return "[eof]";
  buf.resize(n);
  return buf;
}

// One recv without waiting.
inline std::string RecvNow(int fd, size_t max = 4096) { return Recv(fd, max, MSG_DONTWAIT); }

// Waits up to kWaitMs for `fd` to poll readable, then receives once.
inline std::string RecvSoon(int fd, size_t max = 4096, int flags = 0) {
  pollfd pfd{fd, POLLIN, 0};
  const int r = poll(&pfd, 1, kWaitMs);
  if (r == 0) return "[timeout]";
  if (r < 0) return "[poll " + ErrnoName(errno) + "]";
  return Recv(fd, max, flags);
}

// Runs body in a forked child; true if it exited 0 within 2 * kWaitMs (else it is killed).
template <typename F>
bool ChildSucceeds(F body) {
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) _exit(body());
  const int status = WaitBounded(pid, 0, 2 * kWaitMs);
  if (!ExitedWith(status, 0)) fprintf(stderr, "child: %s\n", Describe(status).c_str());
  return ExitedWith(status, 0);
}

// A forked child running body(), waited for (with a bound) when this goes out of scope.
class Child {
 public:
  template <typename F>
  explicit Child(F body) : pid_(fork()) {
    if (pid_ == 0) _exit(body());
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) WaitBounded(pid_, 0, 2 * kWaitMs);
  }
  pid_t pid() const { return pid_; }
  bool ok() const { return pid_ > 0; }
  // Waits for it to exit; true if it exited 0.
  bool ExitsZero() {
    if (pid_ <= 0) return false;
    const int status = WaitBounded(std::exchange(pid_, -1), 0, 2 * kWaitMs);
    if (!ExitedWith(status, 0)) fprintf(stderr, "child: %s\n", Describe(status).c_str());
    return ExitedWith(status, 0);
  }

 private:
  pid_t pid_;
};

}  // namespace husk_test

#endif  // HUSK_TESTS_SYSCALLS_SOCKET_UTIL_H_
