// Helpers shared by the syscall conformance tests. Header-only so that each test is one
// self-contained binary; uses only calls that the first husk sandbox supports (see README).
//
// The start-up set: what every test binary calls before and around its tests (ld.so, glibc,
// libstdc++, gtest, and TempDir): execve, brk, access("/etc/ld.so.preload"), openat, read,
// pread64, newfstatat (also as fstat with AT_EMPTY_PATH), mmap, mprotect, munmap, close,
// arch_prctl(ARCH_SET_FS), set_tid_address, set_robust_list, rseq, prlimit64(RLIMIT_STACK),
// getrandom(GRND_NONBLOCK), futex(FUTEX_WAKE_PRIVATE), getcwd, ioctl(TCGETS on stdout), write,
// exit_group; and for TempDir: mkdir (via mkdtemp), getdents64, unlink, rmdir.
#ifndef HUSK_TESTS_SYSCALLS_TEST_UTIL_H_
#define HUSK_TESTS_SYSCALLS_TEST_UTIL_H_

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "gtest/gtest.h"

// Asserts that `expr` fails with -1 and errno == `err`; prints errno names on failure.
#define EXPECT_ERRNO(expr, err)                                                                \
  do {                                                                                         \
    errno = 0;                                                                                 \
    const long husk_r_ = static_cast<long>(expr);                                              \
    const int husk_e_ = errno;                                                                 \
    EXPECT_EQ(husk_r_, -1L) << #expr;                                                          \
    EXPECT_EQ(husk_e_, (err)) << #expr << ": want " << ::husk_test::ErrnoName(err) << ", got " \
                              << ::husk_test::ErrnoName(husk_e_);                              \
  } while (0)

// Asserts that `expr` (returning -1 on failure) succeeds; prints errno on failure.
#define ASSERT_OK(expr)                                                        \
  do {                                                                         \
    errno = 0;                                                                 \
    const long husk_r_ = static_cast<long>(expr);                              \
    ASSERT_NE(husk_r_, -1L) << #expr << ": " << ::husk_test::ErrnoName(errno); \
  } while (0)

// In a forked child's body: unless `cond` holds, says on stderr which check failed (with
// errno) and returns 1.
#define REQUIRE(cond)                                                                             \
  do {                                                                                            \
    errno = 0;                                                                                    \
    if (!(cond)) {                                                                                \
      const int require_errno_ = errno;                                                           \
      fprintf(stderr, "%s:%d: in child %d: %s failed (errno %s)\n", __FILE__, __LINE__, getpid(), \
              #cond, ::husk_test::ErrnoName(require_errno_).c_str());                             \
      return 1;                                                                                   \
    }                                                                                             \
  } while (0)

// True if `expr` returns -1 with errno `err`.
#define FAILS_WITH(expr, err) ((errno = 0, static_cast<long>(expr)) == -1 && errno == (err))

namespace husk_test {

// How long a test waits for what should come at once (a wake-up, a peer's answer).
inline constexpr int kWaitMs = 5000;

inline std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : std::to_string(err);
}

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) Reset(std::exchange(o.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// Removes `path` and everything under it; never follows symlinks.
inline void RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = opendir(path.c_str())) {
      while (struct dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        RemoveTree(std::string(path).append("/").append(name));
      }
      closedir(d);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

// A fresh, uniquely named directory under /tmp, removed with its contents at the end. Tests
// never write anywhere else: natively, anything outside it would be the host's.
class TempDir {
 public:
  TempDir() {
    char templ[] = "/tmp/husk-syscalls-XXXXXX";
    if (mkdtemp(templ) == nullptr) {
      ADD_FAILURE() << "mkdtemp: " << ErrnoName(errno);
      return;
    }
    path_ = templ;
  }
  ~TempDir() {
    if (!path_.empty()) RemoveTree(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Creates (or truncates) `path` holding `contents`. Returns false on any error.
inline bool WriteFile(const std::string& path, const std::string& contents, mode_t mode = 0644) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return false;
  bool ok = write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size());
  return close(fd) == 0 && ok;
}

// Reads from `fd` until EOF (at most `limit` bytes).
inline std::string ReadAll(int fd, size_t limit = 1 << 20) {
  std::string out;
  char buf[4096];
  while (out.size() < limit) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

inline std::string ReadFile(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  return ReadAll(fd.get());
}

// Both ends of a pipe, closed with the object.
struct Pipe {
  Fd r, w;
};

inline Pipe MakePipe(int flags = 0) {
  int fds[2] = {-1, -1};
  EXPECT_EQ(pipe2(fds, flags), 0) << ErrnoName(errno);
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

// CLOCK_MONOTONIC in milliseconds.
inline int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Waits for child pid and returns its wait status.
inline int Wait(pid_t pid) {
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid) << ErrnoName(errno);
  return status;
}

// A wait status in words, for failure messages (-1: no status).
inline std::string Describe(int status) {
  if (status == -1) return "no status";
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + sigabbrev_np(WTERMSIG(status));
  if (WIFSTOPPED(status)) return std::string("stopped by ") + sigabbrev_np(WSTOPSIG(status));
  if (WIFCONTINUED(status)) return "continued";
  return "status " + std::to_string(status);
}

// waitpid(pid, options) for at most timeout_ms; then the child is killed
// and -1 returned (a failure).
inline int WaitBounded(pid_t pid, int options = 0, int64_t timeout_ms = 60000) {
  const int64_t end = NowMs() + timeout_ms;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, options | WNOHANG);
    if (r == pid) return status;
    if (r < 0) {
      ADD_FAILURE() << "waitpid(" << pid << "): " << ErrnoName(errno);
      return -1;
    }
    if (NowMs() > end) {
      ADD_FAILURE() << "child " << pid << " did not change state in " << timeout_ms << " ms";
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    timespec ts{0, 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

inline bool ExitedWith(int status, int code) {
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == code;
}
inline bool KilledBy(int status, int sig) {
  return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

// A 50 ms pause. Ordering never depends on it: it only makes it likely that
// the other process is already blocked when this one acts.
inline void Pause() {
  timespec ts{0, 50 * 1000 * 1000};
  nanosleep(&ts, nullptr);
}

// Runs body in a forked child and returns the child's exit code (body's
// result), or -signal if it was killed; -1000/-1001 if fork/waitpid failed.
template <typename F>
int InChild(F body) {
  pid_t pid = fork();
  if (pid < 0) return -1000;
  if (pid == 0) _exit(body());
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1001;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// poll(2) on one fd: its revents, or -1.
inline int Revents(int fd, short events, int timeout_ms = 0) {
  pollfd pfd{fd, events, 0};
  return poll(&pfd, 1, timeout_ms) < 0 ? -1 : pfd.revents;
}

// Blocks `sig` for the scope, so a test can take it with sigtimedwait.
class BlockedSignal {
 public:
  explicit BlockedSignal(int sig) {
    sigemptyset(&set_);
    sigaddset(&set_, sig);
    sigprocmask(SIG_BLOCK, &set_, &old_);
    siginfo_t drop;
    timespec zero{0, 0};
    while (sigtimedwait(&set_, &drop, &zero) > 0) {
    }
  }
  ~BlockedSignal() { sigprocmask(SIG_SETMASK, &old_, nullptr); }
  // Takes every instance of the signal pending now.
  void Drain() {
    siginfo_t drop;
    timespec zero{0, 0};
    while (sigtimedwait(&set_, &drop, &zero) > 0) {
    }
  }
  // The signal's info, or si_signo 0 if none came within ms.
  siginfo_t Wait(int ms) {
    siginfo_t info{};
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    if (sigtimedwait(&set_, &info, &ts) < 0) info.si_signo = 0;
    return info;
  }

 private:
  sigset_t set_{}, old_{};
};

}  // namespace husk_test

#endif  // HUSK_TESTS_SYSCALLS_TEST_UTIL_H_
