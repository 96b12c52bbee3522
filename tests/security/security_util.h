// Helpers shared by the security regression tests (issue 11). Header-only, like
// tests/syscalls/test_util.h, which it extends: every test binary stays one file.
//
// The tests fork a lot: a child that misbehaves (blocks, faults, runs out of processes) must
// fail the test, never hang it. So every wait here has a deadline, and a child that outlives
// it is reported instead of waited for.
#ifndef HUSK_TESTS_SECURITY_SECURITY_UTIL_H_
#define HUSK_TESTS_SECURITY_SECURITY_UTIL_H_

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>

#include "tests/syscalls/test_util.h"

namespace husk_security {

using husk_test::ErrnoName;
using husk_test::NowMs;

// The overflow uid of Linux ("nobody"): the unprivileged identity the tests switch to.
constexpr uid_t kNobody = 65534;

// Sleeps about one millisecond. Only for polling with a deadline, never for ordering.
inline void Tick() {
  timespec ts{0, 1000 * 1000};
  nanosleep(&ts, nullptr);
}

// Waits until pid ends or deadline_ms passes. Returns true and stores the wait status when it
// ended; false (child left running) when the deadline passed or waitpid failed.
inline bool WaitWithDeadline(pid_t pid, int64_t deadline_ms, int* status) {
  const int64_t end = NowMs() + deadline_ms;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return false;
    if (NowMs() >= end) return false;
    Tick();
  }
}

// Whether a wait status says "killed by signal sig" / "exited with code".
inline bool KilledBy(int status, int sig) { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }
inline bool ExitedWith(int status, int code) {
  return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

// "exited 3", "killed by SIGKILL", ... for failure messages.
inline std::string DescribeStatus(int status) {
  std::ostringstream out;
  if (WIFEXITED(status)) {
    out << "exited " << WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    out << "killed by SIG" << (name ? name : std::to_string(WTERMSIG(status)).c_str());
  } else {
    out << "status 0x" << std::hex << status;
  }
  return out.str();
}

// The state letter of /proc/<pid>/stat (R, S, D, T, Z, ...), or 0 if it cannot be read.
inline char ProcState(pid_t pid) {
  std::string stat = husk_test::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return 0;
  return stat[paren + 2];
}

// Polls /proc/<pid>/stat until the task sleeps (state S) or deadline_ms passes.
inline bool WaitUntilSleeping(pid_t pid, int64_t deadline_ms) {
  const int64_t end = NowMs() + deadline_ms;
  while (NowMs() < end) {
    if (ProcState(pid) == 'S') return true;
    Tick();
  }
  return false;
}

// Drops to uid and gid kNobody with no supplementary groups: an ordinary user, without any
// capability. Returns false on failure. Call it only in a forked child.
inline bool BecomeNobody() {
  return setgroups(0, nullptr) == 0 && setresgid(kNobody, kNobody, kNobody) == 0 &&
         setresuid(kNobody, kNobody, kNobody) == 0;
}

// Why tests that switch to kNobody cannot run here, or "" when they can: they need root (in
// this user namespace) and kNobody mapped in it (tried in a child: setresuid says EINVAL
// for an unmapped id).
inline std::string CannotBecomeNobody() {
  if (geteuid() != 0) return "needs root (in its user namespace) to switch uids";
  pid_t pid = fork();
  if (pid == 0) _exit(BecomeNobody() ? 0 : 1);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return "cannot switch to uid/gid 65534 (not mapped in this user namespace?)";
  return "";
}

// Runs body in a forked child and returns its exit code, -signal if it was killed, -1000 if
// fork failed, or -1001 if the child did not end within deadline_ms (it is then killed).
template <typename F>
int InChildWithin(int64_t deadline_ms, F body) {
  pid_t pid = fork();
  if (pid < 0) return -1000;
  if (pid == 0) _exit(body());
  int status = 0;
  if (!WaitWithDeadline(pid, deadline_ms, &status)) {
    kill(pid, SIGKILL);
    return -1001;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// Runs body in a forked child (see InChildWithin, 60 s) and expects it to return 0.
template <typename F>
void ExpectChildOk(F body) {
  const int code = InChildWithin(60000, body);
  EXPECT_EQ(code, 0) << "the child's failed check (>0, message above), signal (<0) or hang "
                        "(-1001)";
}

}  // namespace husk_security

// In a forked child: on failure, says what failed on stderr and returns `code` from the body.
#define CHILD_CHECK(cond, code)                                                   \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: %s failed (errno %s)\n", __FILE__, __LINE__, #cond, \
              husk_test::ErrnoName(errno).c_str());                               \
      return code;                                                                \
    }                                                                             \
  } while (0)

// In a forked child: `expr` must fail with -1 and errno `err`, else the body returns `code`.
#define CHILD_CHECK_ERRNO(expr, err, code)                                                        \
  do {                                                                                            \
    errno = 0;                                                                                    \
    const long husk_r_ = static_cast<long>(expr);                                                 \
    if (husk_r_ != -1 || errno != (err)) {                                                        \
      fprintf(stderr, "%s:%d: %s = %ld (%s), want -1 (%s)\n", __FILE__, __LINE__, #expr, husk_r_, \
              husk_test::ErrnoName(errno).c_str(), husk_test::ErrnoName(err).c_str());            \
      return code;                                                                                \
    }                                                                                             \
  } while (0)

#endif  // HUSK_TESTS_SECURITY_SECURITY_UTIL_H_
