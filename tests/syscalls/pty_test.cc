// Conformance: pseudo-terminals and the n_tty line discipline, as Linux 6.1 behaves.
// Covers allocating a pair (posix_openpt, grantpt, unlockpt, ptsname, TIOCGPTN, TIOCSPTLCK,
// TIOCGPTPEER) and what the two ends are; the default termios, which both ends share;
// canonical input and its editing characters; echo; output processing; non-canonical
// VMIN/VTIME reads; signal characters; window size and SIGWINCH; queue ioctls and poll;
// hang-ups when either end closes; and controlling terminals with job control (TIOCSCTTY,
// TIOCNOTTY, tcsetpgrp, SIGTTIN/SIGTTOU, SIGHUP).
//
// Cases that change session, process group or signal state run in a forked child (InChild),
// which reports a failed check on stderr and exits 1. The others open both ends with
// O_NOCTTY and leave the test process as it was. Reads wait through poll for at most
// kWaitMs, so a missing byte fails a case instead of hanging the binary.
// Relies on, beyond the start-up set in test_util.h: ioctl (TCGETS, TCSETS*, TCFLSH, TCSBRK,
// TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK, TIOCGPTPEER, TIOCGWINSZ, TIOCSWINSZ, FIONREAD, TIOCOUTQ,
// TIOCSCTTY, TIOCNOTTY, TIOCGPGRP, TIOCSPGRP, TIOCGSID), poll, fcntl, readlink, fork,
// wait4, setsid, setpgid, getppid, kill, rt_sigprocmask, rt_sigpending, rt_sigtimedwait.
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

struct Pty {
  Fd master, replica;
  int index = -1;
  std::string path;  // "/dev/pts/<index>"
};

// A new pair: the master opened with O_NOCTTY and unlocked, the replica opened by path with
// `replica_flags` (without O_NOCTTY, a session leader with no controlling terminal acquires it).
bool OpenPty(Pty* p, int replica_flags = O_RDWR | O_NOCTTY) {
  p->master.Reset(posix_openpt(O_RDWR | O_NOCTTY));
  if (!p->master.valid()) return false;
  if (grantpt(p->master.get()) != 0 || unlockpt(p->master.get()) != 0) return false;
  if (ioctl(p->master.get(), TIOCGPTN, &p->index) != 0) return false;
  p->path = "/dev/pts/" + std::to_string(p->index);
  p->replica.Reset(open(p->path.c_str(), replica_flags));
  return p->replica.valid();
}

// One read(2), described: the bytes, or "[eof]" for 0 and "[ENAME]" for -1. (No data in these
// tests contains '['.)
std::string ReadRaw(int fd, size_t max) {
  std::string buf(max, '\0');
  const ssize_t n = read(fd, buf.data(), max);
  if (n < 0) return "[" + ErrnoName(errno) + "]";
  if (n == 0) return "[eof]";
  buf.resize(n);
  return buf;
}

// Waits up to kWaitMs for `fd` to poll readable, then reads once.
std::string ReadOnce(int fd, size_t max = 4096) {
  pollfd pfd{fd, POLLIN, 0};
  const int r = poll(&pfd, 1, kWaitMs);
  if (r == 0) return "[timeout]";
  if (r < 0) return "[poll " + ErrnoName(errno) + "]";
  return ReadRaw(fd, max);
}

// One read with O_NONBLOCK set on the open file for its duration.
std::string ReadNow(int fd, size_t max = 4096) {
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  std::string r = ReadRaw(fd, max);
  fcntl(fd, F_SETFL, flags);
  return r;
}

// Reads until `n` bytes arrived; a failed or timed-out read ends it, its description appended.
std::string ReadExactly(int fd, size_t n) {
  std::string out;
  while (out.size() < n) {
    const std::string part = ReadOnce(fd, n - out.size());
    out += part;
    if (part[0] == '[') break;
  }
  return out;
}

// Reads until what was read ends with `last` (or a read fails or times out).
std::string ReadThrough(int fd, char last) {
  std::string out;
  while (out.empty() || out.back() != last) {
    const std::string part = ReadOnce(fd);
    out += part;
    if (part[0] == '[') break;
  }
  return out;
}

bool Type(int fd, std::string_view s) {
  return write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

// tcgetattr, edit, tcsetattr(TCSANOW).
template <typename F>
bool Change(int fd, F edit) {
  termios t;
  if (tcgetattr(fd, &t) != 0) return false;
  edit(t);
  return tcsetattr(fd, TCSANOW, &t) == 0;
}

// Non-canonical without echo, with the given VMIN and VTIME.
bool MakeRaw(int fd, cc_t vmin, cc_t vtime) {
  return Change(fd, [&](termios& t) {
    t.c_lflag &= ~(ICANON | ECHO);
    t.c_cc[VMIN] = vmin;
    t.c_cc[VTIME] = vtime;
  });
}

int InputQueued(int fd) {
  int n = -1;
  return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

std::string Readlink(const std::string& path) {
  char buf[256];
  const ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? "[" + ErrnoName(errno) + "]" : std::string(buf, n);
}

bool BlockSignal(int sig) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  return sigprocmask(SIG_BLOCK, &set, nullptr) == 0;
}

bool Pending(int sig) {
  sigset_t set;
  return sigpending(&set) == 0 && sigismember(&set, sig) == 1;
}

// Waits up to kWaitMs for `sig`, which the caller blocks, and consumes it.
bool Await(int sig) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  timespec ts{kWaitMs / 1000, 0};
  return sigtimedwait(&set, nullptr, &ts) == sig;
}

// 0 if /dev/tty opens (the caller has a controlling terminal), else the errno.
int OpenDevTty() {
  const int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

// For a forked child: leads a new session whose controlling terminal is a new pty's replica
// (opened without O_NOCTTY). SIGHUP is blocked (and inherited so by children): closing the
// master when the body returns hangs the terminal up, which sends the leader SIGHUP.
bool LeadSessionWithCtty(Pty* p) {
  return BlockSignal(SIGHUP) && setsid() >= 0 && OpenPty(p, O_RDWR);
}

// A forked child, killed (SIGKILL) and reaped when this goes out of scope unless a wait
// already reaped it.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
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
  // Waits for it to stop; true if `sig` stopped it. It is killed and reaped afterwards.
  bool StopsWith(int sig) {
    if (pid_ <= 0) return false;
    const int status = WaitBounded(pid_, WUNTRACED, 2 * kWaitMs);
    if (status == -1 || !WIFSTOPPED(status)) {
      fprintf(stderr, "child did not stop: %s\n", Describe(status).c_str());
      pid_ = -1;
      return false;
    }
    return WSTOPSIG(status) == sig;
  }

 private:
  pid_t pid_;
};

// Forks a child into a process group of its own in the caller's session (a background group
// while the caller's is in the foreground); the child _exits with body()'s result.
template <typename F>
pid_t ForkInBackground(F body) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    _exit(body());
  }
  if (pid > 0) setpgid(pid, pid);  // either call may win the race; both mean the same
  return pid;
}

// ---------------------------------------------------------------------------------------
// Allocation and identity.

TEST(PtyOpenTest, PosixOpenptGivesALockedMasterThatUnlockptUnlocks) {
  Fd master(posix_openpt(O_RDWR | O_NOCTTY));
  ASSERT_TRUE(master.valid()) << ErrnoName(errno);
  int locked = -1;
  ASSERT_OK(ioctl(master.get(), TIOCGPTLCK, &locked));
  EXPECT_EQ(locked, 1);
  ASSERT_OK(grantpt(master.get()));
  ASSERT_OK(unlockpt(master.get()));
  ASSERT_OK(ioctl(master.get(), TIOCGPTLCK, &locked));
  EXPECT_EQ(locked, 0);
  const char* name = ptsname(master.get());
  ASSERT_NE(name, nullptr) << ErrnoName(errno);
  EXPECT_EQ(std::string(name).rfind("/dev/pts/", 0), 0u) << name;
  Fd replica(open(name, O_RDWR | O_NOCTTY));
  EXPECT_TRUE(replica.valid()) << ErrnoName(errno);
}

// TIOCGPTN is the master's: the replica does not know it.
TEST(PtyOpenTest, TiocgptnMatchesPtsnameAndIsTheMastersOnly) {
  Pty a, b;
  ASSERT_TRUE(OpenPty(&a)) << ErrnoName(errno);
  ASSERT_TRUE(OpenPty(&b)) << ErrnoName(errno);
  const char* name = ptsname(a.master.get());
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(std::string(name), a.path);
  EXPECT_NE(a.index, b.index);
  int n;
  EXPECT_ERRNO(ioctl(a.replica.get(), TIOCGPTN, &n), ENOTTY);
}

// The replica cannot be opened before unlockpt, nor after TIOCSPTLCK locks it again.
TEST(PtyOpenTest, OpeningALockedReplicaFailsEio) {
  Fd master(posix_openpt(O_RDWR | O_NOCTTY));
  ASSERT_TRUE(master.valid()) << ErrnoName(errno);
  int index = -1;
  ASSERT_OK(ioctl(master.get(), TIOCGPTN, &index));
  const std::string path = "/dev/pts/" + std::to_string(index);
  EXPECT_ERRNO(open(path.c_str(), O_RDWR | O_NOCTTY), EIO);
  int lock = 0;
  ASSERT_OK(ioctl(master.get(), TIOCSPTLCK, &lock));
  {
    Fd replica(open(path.c_str(), O_RDWR | O_NOCTTY));
    EXPECT_TRUE(replica.valid()) << ErrnoName(errno);
  }
  lock = 1;
  ASSERT_OK(ioctl(master.get(), TIOCSPTLCK, &lock));
  EXPECT_ERRNO(open(path.c_str(), O_RDWR | O_NOCTTY), EIO);
}

TEST(PtyOpenTest, TiocgptpeerOpensTheReplica) {
  Fd master(posix_openpt(O_RDWR | O_NOCTTY));
  ASSERT_TRUE(master.valid()) << ErrnoName(errno);
  EXPECT_ERRNO(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY), EIO);  // still locked
  ASSERT_OK(unlockpt(master.get()));
  Fd peer(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY));
  ASSERT_TRUE(peer.valid()) << ErrnoName(errno);
  struct stat by_fd, by_path;
  ASSERT_OK(fstat(peer.get(), &by_fd));
  ASSERT_OK(stat(ptsname(master.get()), &by_path));
  EXPECT_EQ(by_fd.st_rdev, by_path.st_rdev);
  ASSERT_TRUE(Type(peer.get(), "x"));
  EXPECT_EQ(ReadOnce(master.get()), "x");
}

// Unix98 replicas are majors 136..143: index N is 136 + N / 256, minor N % 256.
TEST(PtyOpenTest, TheReplicaIsACharDeviceNumberedByItsIndex) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  struct stat st;
  ASSERT_OK(fstat(p.replica.get(), &st));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 136u + p.index / 256);
  EXPECT_EQ(minor(st.st_rdev), static_cast<unsigned>(p.index % 256));
}

TEST(PtyOpenTest, TheMasterIsCharDevice5Comma2) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  struct stat st;
  ASSERT_OK(fstat(p.master.get(), &st));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 5u);
  EXPECT_EQ(minor(st.st_rdev), 2u);
}

TEST(PtyOpenTest, BothEndsAreTerminals) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  EXPECT_EQ(isatty(p.master.get()), 1);
  EXPECT_EQ(isatty(p.replica.get()), 1);
  Pipe pipe = MakePipe();
  errno = 0;
  EXPECT_EQ(isatty(pipe.r.get()), 0);
  EXPECT_EQ(errno, ENOTTY);
}

TEST(PtyOpenTest, TheReplicaIsNamedByItsPtsPath) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  EXPECT_STREQ(ttyname(p.replica.get()), p.path.c_str());
  EXPECT_EQ(Readlink("/proc/self/fd/" + std::to_string(p.replica.get())), p.path);
  EXPECT_EQ(Readlink("/proc/self/fd/" + std::to_string(p.master.get())), "/dev/ptmx");
}

// ---------------------------------------------------------------------------------------
// termios.

// The pty driver's defaults: as tty_std_termios but c_cflag without HUPCL.
TEST(TermiosTest, ANewPtyHasTheDefaultFlags) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  termios t;
  ASSERT_OK(tcgetattr(p.replica.get(), &t));
  EXPECT_EQ(t.c_iflag, static_cast<tcflag_t>(ICRNL | IXON));
  EXPECT_EQ(t.c_oflag, static_cast<tcflag_t>(OPOST | ONLCR));
  EXPECT_EQ(t.c_cflag, static_cast<tcflag_t>(B38400 | CS8 | CREAD));
  EXPECT_EQ(t.c_lflag, static_cast<tcflag_t>(ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL |
                                             ECHOKE | IEXTEN));
  EXPECT_EQ(t.c_line, 0);  // N_TTY
}

TEST(TermiosTest, ANewPtyHasTheDefaultControlCharacters) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  termios t;
  ASSERT_OK(tcgetattr(p.replica.get(), &t));
  EXPECT_EQ(t.c_cc[VINTR], 003);    // ^C
  EXPECT_EQ(t.c_cc[VQUIT], 034);    // ^backslash
  EXPECT_EQ(t.c_cc[VERASE], 0177);  // DEL
  EXPECT_EQ(t.c_cc[VKILL], 025);    // ^U
  EXPECT_EQ(t.c_cc[VEOF], 004);     // ^D
  EXPECT_EQ(t.c_cc[VTIME], 0);
  EXPECT_EQ(t.c_cc[VMIN], 1);
  EXPECT_EQ(t.c_cc[VSWTC], 0);
  EXPECT_EQ(t.c_cc[VSTART], 021);  // ^Q
  EXPECT_EQ(t.c_cc[VSTOP], 023);   // ^S
  EXPECT_EQ(t.c_cc[VSUSP], 032);   // ^Z
  EXPECT_EQ(t.c_cc[VEOL], 0);
  EXPECT_EQ(t.c_cc[VREPRINT], 022);  // ^R
  EXPECT_EQ(t.c_cc[VDISCARD], 017);  // ^O
  EXPECT_EQ(t.c_cc[VWERASE], 027);   // ^W
  EXPECT_EQ(t.c_cc[VLNEXT], 026);    // ^V
  EXPECT_EQ(t.c_cc[VEOL2], 0);
}

TEST(TermiosTest, ANewPtyRunsAt38400Baud) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  termios t;
  ASSERT_OK(tcgetattr(p.replica.get(), &t));
  EXPECT_EQ(cfgetispeed(&t), static_cast<speed_t>(B38400));
  EXPECT_EQ(cfgetospeed(&t), static_cast<speed_t>(B38400));
}

// The master shows no termios of its own: TCGETS and TCSETS on it reach the replica's.
TEST(TermiosTest, SettingsMadeOnTheReplicaAreReadOnTheMaster) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) {
    t.c_iflag |= IGNCR;
    t.c_oflag &= ~ONLCR;
    t.c_lflag &= ~(ECHO | ICANON);
    t.c_cc[VERASE] = 010;
  }));
  termios t;
  ASSERT_OK(tcgetattr(p.master.get(), &t));
  EXPECT_EQ(t.c_iflag, static_cast<tcflag_t>(ICRNL | IXON | IGNCR));
  EXPECT_EQ(t.c_oflag, static_cast<tcflag_t>(OPOST));
  EXPECT_EQ(t.c_lflag & (ECHO | ICANON), 0u);
  EXPECT_EQ(t.c_cc[VERASE], 010);
}

TEST(TermiosTest, SettingsMadeOnTheMasterApplyToTheReplica) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.master.get(), [](termios& t) {
    t.c_lflag &= ~ECHO;
    t.c_cc[VKILL] = 030;
  }));
  termios t;
  ASSERT_OK(tcgetattr(p.replica.get(), &t));
  EXPECT_EQ(t.c_lflag & ECHO, 0u);
  EXPECT_EQ(t.c_cc[VKILL], 030);
  // And the line discipline uses them: ^X now kills the line.
  ASSERT_TRUE(Type(p.master.get(), "abc\030xyz\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "xyz\n");
}

// ---------------------------------------------------------------------------------------
// Canonical input (what is typed on the master, read on the replica).

TEST(CanonicalTest, ALineIsReadOnlyOnceItsNewlineArrives) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "abc"));
  EXPECT_EQ(ReadNow(p.replica.get()), "[EAGAIN]");
  ASSERT_TRUE(Type(p.master.get(), "\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "abc\n");
}

TEST(CanonicalTest, OneReadReturnsAtMostOneLine) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "one\ntwo\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "one\n");
  EXPECT_EQ(ReadOnce(p.replica.get()), "two\n");
}

TEST(CanonicalTest, AShortReadLeavesTheRestOfTheLine) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "hello\n"));
  EXPECT_EQ(ReadOnce(p.replica.get(), 3), "hel");
  EXPECT_EQ(ReadOnce(p.replica.get()), "lo\n");
}

// VERASE removes one character, and never reaches back into a line already ended.
TEST(CanonicalTest, VeraseErasesTheLastCharacterOfTheLine) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "abc\177\177d\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "ad\n");
  ASSERT_TRUE(Type(p.master.get(), "x\n\177\177y\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "x\n");
  EXPECT_EQ(ReadOnce(p.replica.get()), "y\n");
}

TEST(CanonicalTest, VkillErasesTheWholeLine) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "abc\025def\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "def\n");
}

// VWERASE removes the last word and any blanks after it, back to the previous blank.
TEST(CanonicalTest, VweraseErasesTheLastWord) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "one two\027three\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "one three\n");
  ASSERT_TRUE(Type(p.master.get(), "one two  \027x\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "one x\n");
}

// An empty line ended by VEOF is a zero-byte read; reading goes on afterwards.
TEST(CanonicalTest, VeofAtTheStartOfALineReadsAsEndOfFile) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "\004"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "[eof]");
  ASSERT_TRUE(Type(p.master.get(), "x\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "x\n");
}

TEST(CanonicalTest, VeofMidLineEndsThePartialLineWithoutTheEofCharacter) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "ab\004"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "ab");
  EXPECT_EQ(ReadNow(p.replica.get()), "[EAGAIN]");
}

TEST(CanonicalTest, VlnextQuotesTheNextCharacter) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "\026\025\026\177z\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "\025\177z\n");
}

// VEOL is an extra line terminator, kept in the line.
TEST(CanonicalTest, VeolEndsALine) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_cc[VEOL] = ';'; }));
  ASSERT_TRUE(Type(p.master.get(), "ab;cd\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "ab;");
  EXPECT_EQ(ReadOnce(p.replica.get()), "cd\n");
}

TEST(CanonicalTest, IcrnlTurnsCarriageReturnIntoNewline) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "ab\r"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "ab\n");
}

TEST(CanonicalTest, IgncrDropsCarriageReturn) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_iflag |= IGNCR; }));
  ASSERT_TRUE(Type(p.master.get(), "a\rb\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "ab\n");
}

// INLCR makes a newline a carriage return, which does not end a canonical line; a typed
// carriage return still becomes a newline under ICRNL.
TEST(CanonicalTest, InlcrTurnsNewlineIntoCarriageReturn) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_iflag |= INLCR; }));
  ASSERT_TRUE(Type(p.master.get(), "a\nb\r"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "a\rb\n");
}

// ---------------------------------------------------------------------------------------
// Echo (typed on the master, echoed back to be read from the master).

// The echo goes through output processing: ONLCR makes the newline "\r\n".
TEST(EchoTest, TypedInputIsEchoedToTheMaster) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "hi\n"));
  EXPECT_EQ(ReadExactly(p.master.get(), 4), "hi\r\n");
}

// Pending echo is written ahead of the replica's own output, so the marker "X" the replica
// writes shows that nothing was echoed before it.
TEST(EchoTest, WithEchoOffNothingIsEchoed) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_lflag &= ~ECHO; }));
  ASSERT_TRUE(Type(p.master.get(), "hi\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "hi\n");
  ASSERT_TRUE(Type(p.replica.get(), "X"));
  EXPECT_EQ(ReadThrough(p.master.get(), 'X'), "X");
}

TEST(EchoTest, EchonlEchoesTheNewlineWithEchoOff) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) {
    t.c_lflag &= ~ECHO;
    t.c_lflag |= ECHONL;
  }));
  ASSERT_TRUE(Type(p.master.get(), "hi\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "hi\n");
  ASSERT_TRUE(Type(p.replica.get(), "X"));
  EXPECT_EQ(ReadThrough(p.master.get(), 'X'), "\r\nX");
}

TEST(EchoTest, EchoctlEchoesAControlCharacterAsCaretLetter) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "\001\n"));
  EXPECT_EQ(ReadExactly(p.master.get(), 4), "^A\r\n");
}

TEST(EchoTest, WithoutEchoctlAControlCharacterEchoesAsItself) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_lflag &= ~ECHOCTL; }));
  ASSERT_TRUE(Type(p.master.get(), "\001\n"));
  EXPECT_EQ(ReadExactly(p.master.get(), 3), "\001\r\n");
}

TEST(EchoTest, EchoeEchoesAnEraseAsBackspaceSpaceBackspace) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "ab\177\n"));
  EXPECT_EQ(ReadExactly(p.master.get(), 7), "ab\b \b\r\n");
  EXPECT_EQ(ReadOnce(p.replica.get()), "a\n");
}

// Without ECHOE the erase character itself is echoed (as "^?" under ECHOCTL).
TEST(EchoTest, WithoutEchoeTheEraseCharacterIsEchoed) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_lflag &= ~ECHOE; }));
  ASSERT_TRUE(Type(p.master.get(), "ab\177\n"));
  EXPECT_EQ(ReadExactly(p.master.get(), 6), "ab^?\r\n");
  EXPECT_EQ(ReadOnce(p.replica.get()), "a\n");
}

// With ECHOKE (and ECHOE, ECHOK) a killed line is rubbed out one character at a time.
TEST(EchoTest, EchokeRubsOutAKilledLine) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "ab\025"));
  EXPECT_EQ(ReadExactly(p.master.get(), 8), "ab\b \b\b \b");
}

// ---------------------------------------------------------------------------------------
// Output processing (written on the replica, read on the master).

TEST(OutputTest, OnlcrTurnsNewlineIntoCrLf) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.replica.get(), "a\nb\n"));
  EXPECT_EQ(ReadExactly(p.master.get(), 6), "a\r\nb\r\n");
}

TEST(OutputTest, WithoutOpostBytesPassUnchanged) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_oflag &= ~OPOST; }));
  ASSERT_TRUE(Type(p.replica.get(), "a\nb\r"));
  EXPECT_EQ(ReadExactly(p.master.get(), 4), "a\nb\r");
}

// The newline OCRNL makes is not expanded again by ONLCR.
TEST(OutputTest, OcrnlTurnsCarriageReturnIntoNewline) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_oflag |= OCRNL; }));
  ASSERT_TRUE(Type(p.replica.get(), "a\rb"));
  EXPECT_EQ(ReadExactly(p.master.get(), 3), "a\nb");
}

// ---------------------------------------------------------------------------------------
// Non-canonical input.

TEST(NonCanonicalTest, BytesAreReadableWithoutANewline) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(MakeRaw(p.replica.get(), 1, 0));
  ASSERT_TRUE(Type(p.master.get(), "ab"));
  EXPECT_EQ(ReadExactly(p.replica.get(), 2), "ab");
}

// A blocking read, yet it returns 0 (not EAGAIN) at once with nothing queued.
TEST(NonCanonicalTest, VminZeroVtimeZeroReturnsZeroAtOnce) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(MakeRaw(p.replica.get(), 0, 0));
  char c;
  EXPECT_EQ(read(p.replica.get(), &c, 1), 0);
  ASSERT_TRUE(Type(p.master.get(), "z"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "z");
}

// With VMIN=3 and VTIME=0 a read for more waits until three bytes are there; the third
// comes from another process a little later.
TEST(NonCanonicalTest, VminWaitsForThatManyBytes) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(MakeRaw(p.replica.get(), 3, 0));
  ASSERT_TRUE(Type(p.master.get(), "ab"));
  Child writer(fork());
  if (writer.pid() == 0) {
    Pause();
    _exit(Type(p.master.get(), "c") ? 0 : 1);
  }
  ASSERT_TRUE(writer.ok());
  char buf[16];
  const ssize_t n = read(p.replica.get(), buf, sizeof(buf));
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "abc");
  EXPECT_TRUE(writer.ExitsZero());
}

// VMIN=0 with VTIME=1: a read with nothing arriving gives up after 0.1 s and returns 0.
TEST(NonCanonicalTest, VtimeTimesOutWithZeroBytes) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(MakeRaw(p.replica.get(), 0, 1));
  char c;
  EXPECT_EQ(read(p.replica.get(), &c, 1), 0);
}

// Leaving canonical mode makes a partial line readable as it is.
TEST(NonCanonicalTest, LeavingCanonicalModeReleasesAPartialLine) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "ab"));
  EXPECT_EQ(ReadNow(p.replica.get()), "[EAGAIN]");  // also waits until "ab" is queued
  ASSERT_TRUE(MakeRaw(p.replica.get(), 1, 0));
  EXPECT_EQ(ReadOnce(p.replica.get()), "ab");
}

// ---------------------------------------------------------------------------------------
// Signal characters.

// In a new session with the pty as controlling terminal (the leader's group in the
// foreground), typing `c` on the master raises `sig`.
int TypingRaises(char c, int sig) {
  Pty p;
  REQUIRE(LeadSessionWithCtty(&p));
  REQUIRE(BlockSignal(sig));
  REQUIRE(Type(p.master.get(), std::string(1, c)));
  REQUIRE(Await(sig));
  return 0;
}

TEST(TtySignalTest, VintrSendsSigintToTheForegroundGroup) {
  EXPECT_EQ(InChild([] { return TypingRaises('\003', SIGINT); }), 0);
}

TEST(TtySignalTest, VquitSendsSigquitToTheForegroundGroup) {
  EXPECT_EQ(InChild([] { return TypingRaises('\034', SIGQUIT); }), 0);
}

TEST(TtySignalTest, VsuspSendsSigtstpToTheForegroundGroup) {
  EXPECT_EQ(InChild([] { return TypingRaises('\032', SIGTSTP); }), 0);
}

// The leader's group is in the background: only the foreground group gets SIGINT.
TEST(TtySignalTest, VintrSignalsOnlyTheForegroundGroup) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              REQUIRE(BlockSignal(SIGINT));  // inherited by the child
              Child fg(ForkInBackground([] { return Await(SIGINT) ? 0 : 1; }));
              REQUIRE(fg.ok());
              REQUIRE(tcsetpgrp(p.replica.get(), fg.pid()) == 0);
              REQUIRE(Type(p.master.get(), "\003"));
              REQUIRE(fg.ExitsZero());
              REQUIRE(!Pending(SIGINT));
              return 0;
            }),
            0);
}

// No session owns this pty, so no one is signalled; the line is flushed all the same.
TEST(TtySignalTest, ASignalCharacterFlushesQueuedInput) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "abc\003def\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "def\n");
}

TEST(TtySignalTest, WithNoflshQueuedInputIsKept) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_lflag |= NOFLSH; }));
  ASSERT_TRUE(Type(p.master.get(), "abc\003def\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "abcdef\n");
}

TEST(TtySignalTest, WithoutIsigSignalCharactersAreData) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_lflag &= ~ISIG; }));
  ASSERT_TRUE(Type(p.master.get(), "a\003\034\032b\n"));
  EXPECT_EQ(ReadOnce(p.replica.get()), "a\003\034\032b\n");
}

TEST(TtySignalTest, VintrIsEchoedAsCaretC) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "\003"));
  EXPECT_EQ(ReadExactly(p.master.get(), 2), "^C");
}

// ---------------------------------------------------------------------------------------
// Window size.

TEST(WinsizeTest, ANewPtyHasAZeroWindowSize) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  for (int fd : {p.master.get(), p.replica.get()}) {
    winsize ws{1, 1, 1, 1};
    ASSERT_OK(ioctl(fd, TIOCGWINSZ, &ws));
    EXPECT_EQ(ws.ws_row, 0);
    EXPECT_EQ(ws.ws_col, 0);
    EXPECT_EQ(ws.ws_xpixel, 0);
    EXPECT_EQ(ws.ws_ypixel, 0);
  }
}

TEST(WinsizeTest, TheSizeSetOnEitherEndIsSeenOnTheOther) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  winsize set{24, 80, 640, 480}, got{};
  ASSERT_OK(ioctl(p.master.get(), TIOCSWINSZ, &set));
  ASSERT_OK(ioctl(p.replica.get(), TIOCGWINSZ, &got));
  EXPECT_EQ(got.ws_row, 24);
  EXPECT_EQ(got.ws_col, 80);
  EXPECT_EQ(got.ws_xpixel, 640);
  EXPECT_EQ(got.ws_ypixel, 480);
  set = {50, 132, 0, 0};
  ASSERT_OK(ioctl(p.replica.get(), TIOCSWINSZ, &set));
  ASSERT_OK(ioctl(p.master.get(), TIOCGWINSZ, &got));
  EXPECT_EQ(got.ws_row, 50);
  EXPECT_EQ(got.ws_col, 132);
}

TEST(WinsizeTest, ASizeChangeSendsSigwinchToTheForegroundGroup) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              REQUIRE(BlockSignal(SIGWINCH));
              winsize ws{24, 80, 0, 0};
              REQUIRE(ioctl(p.master.get(), TIOCSWINSZ, &ws) == 0);
              REQUIRE(Pending(SIGWINCH));  // sent before the ioctl returns
              REQUIRE(Await(SIGWINCH));
              return 0;
            }),
            0);
}

TEST(WinsizeTest, SettingTheSameSizeAgainSendsNoSigwinch) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              REQUIRE(BlockSignal(SIGWINCH));
              winsize ws{24, 80, 0, 0};
              REQUIRE(ioctl(p.master.get(), TIOCSWINSZ, &ws) == 0);
              REQUIRE(Await(SIGWINCH));
              REQUIRE(ioctl(p.master.get(), TIOCSWINSZ, &ws) == 0);
              REQUIRE(ioctl(p.replica.get(), TIOCSWINSZ, &ws) == 0);
              REQUIRE(!Pending(SIGWINCH));
              return 0;
            }),
            0);
}

// ---------------------------------------------------------------------------------------
// Queues: FIONREAD, TIOCOUTQ, tcflush, tcdrain.

// In canonical mode only complete lines count; TIOCINQ is the same request.
TEST(TtyQueueTest, FionreadCountsCompleteLinesInCanonicalMode) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "abc\ndef"));
  ASSERT_EQ(Revents(p.replica.get(), POLLIN, kWaitMs), POLLIN);
  EXPECT_EQ(InputQueued(p.replica.get()), 4);
  int inq = -1;
  ASSERT_OK(ioctl(p.replica.get(), TIOCINQ, &inq));
  EXPECT_EQ(inq, 4);
}

TEST(TtyQueueTest, FionreadCountsEveryByteInNonCanonicalMode) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(MakeRaw(p.replica.get(), 1, 0));
  ASSERT_TRUE(Type(p.master.get(), "abc"));
  ASSERT_EQ(Revents(p.replica.get(), POLLIN, kWaitMs), POLLIN);
  EXPECT_EQ(InputQueued(p.replica.get()), 3);
}

// The master's input is the replica's output, already processed (OPOST off here so that it
// arrives in one piece).
TEST(TtyQueueTest, FionreadOnTheMasterCountsTheReplicasOutput) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Change(p.replica.get(), [](termios& t) { t.c_oflag &= ~OPOST; }));
  ASSERT_TRUE(Type(p.replica.get(), "hi\n"));
  ASSERT_EQ(Revents(p.master.get(), POLLIN, kWaitMs), POLLIN);
  EXPECT_EQ(InputQueued(p.master.get()), 3);
}

// A pty keeps no output queue of its own: written bytes are already the other end's input.
TEST(TtyQueueTest, TiocoutqIsZeroOnBothEnds) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.replica.get(), "unread\n"));
  ASSERT_TRUE(Type(p.master.get(), "partial"));
  int outq = -1;
  ASSERT_OK(ioctl(p.replica.get(), TIOCOUTQ, &outq));
  EXPECT_EQ(outq, 0);
  outq = -1;
  ASSERT_OK(ioctl(p.master.get(), TIOCOUTQ, &outq));
  EXPECT_EQ(outq, 0);
}

TEST(TtyQueueTest, TciflushDiscardsQueuedInput) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "abc\n"));
  ASSERT_EQ(Revents(p.replica.get(), POLLIN, kWaitMs), POLLIN);
  ASSERT_OK(tcflush(p.replica.get(), TCIFLUSH));
  EXPECT_EQ(InputQueued(p.replica.get()), 0);
  EXPECT_EQ(ReadNow(p.replica.get()), "[EAGAIN]");
}

// A flush of input on the master discards the replica's output that the master has not read.
TEST(TtyQueueTest, TciflushOnTheMasterDiscardsTheReplicasUnreadOutput) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.replica.get(), "lost"));
  ASSERT_EQ(Revents(p.master.get(), POLLIN, kWaitMs), POLLIN);
  ASSERT_OK(tcflush(p.master.get(), TCIFLUSH));
  EXPECT_EQ(InputQueued(p.master.get()), 0);
  EXPECT_EQ(ReadNow(p.master.get()), "[EAGAIN]");
}

// TCOFLUSH leaves the input queue alone. (On a pty it drops only bytes still in transit to
// the other end, which a test cannot catch reliably.)
TEST(TtyQueueTest, TcoflushKeepsQueuedInput) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "in\n"));
  ASSERT_EQ(Revents(p.replica.get(), POLLIN, kWaitMs), POLLIN);
  ASSERT_OK(tcflush(p.replica.get(), TCOFLUSH));
  EXPECT_EQ(ReadOnce(p.replica.get()), "in\n");
}

TEST(TtyQueueTest, TcioflushDiscardsQueuedInputAndABadQueueIsEinval) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "in\n"));
  ASSERT_EQ(Revents(p.replica.get(), POLLIN, kWaitMs), POLLIN);
  ASSERT_OK(tcflush(p.replica.get(), TCIOFLUSH));
  EXPECT_EQ(ReadNow(p.replica.get()), "[EAGAIN]");
  EXPECT_ERRNO(ioctl(p.replica.get(), TCFLSH, 7), EINVAL);
}

// tcdrain waits for output to be transmitted; on a pty it is handed over at once, read or not.
TEST(TtyQueueTest, TcdrainReturnsWithOutputUnread) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.replica.get(), "unread"));
  EXPECT_EQ(tcdrain(p.replica.get()), 0) << ErrnoName(errno);
  EXPECT_EQ(tcdrain(p.master.get()), 0) << ErrnoName(errno);
  EXPECT_EQ(ReadExactly(p.master.get(), 6), "unread");
}

TEST(TtyQueueTest, TcsaflushDiscardsQueuedInput) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "abc\n"));
  ASSERT_EQ(Revents(p.replica.get(), POLLIN, kWaitMs), POLLIN);
  termios t;
  ASSERT_OK(tcgetattr(p.replica.get(), &t));
  ASSERT_OK(tcsetattr(p.replica.get(), TCSAFLUSH, &t));
  EXPECT_EQ(ReadNow(p.replica.get()), "[EAGAIN]");
}

// ---------------------------------------------------------------------------------------
// poll.

TEST(TtyPollTest, TheReplicaIsNotReadableUntilALineIsComplete) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "ab"));
  EXPECT_EQ(Revents(p.replica.get(), POLLIN, 0), 0);
  ASSERT_TRUE(Type(p.master.get(), "\n"));
  EXPECT_EQ(Revents(p.replica.get(), POLLIN, kWaitMs), POLLIN);
}

TEST(TtyPollTest, TheMasterIsReadableWhenOutputIsQueued) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  EXPECT_EQ(Revents(p.master.get(), POLLIN, 0), 0);
  ASSERT_TRUE(Type(p.replica.get(), "x"));
  EXPECT_EQ(Revents(p.master.get(), POLLIN, kWaitMs), POLLIN);
}

TEST(TtyPollTest, BothEndsAreWritable) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  EXPECT_EQ(Revents(p.master.get(), POLLOUT, 0), POLLOUT);
  EXPECT_EQ(Revents(p.replica.get(), POLLOUT, 0), POLLOUT);
}

// ---------------------------------------------------------------------------------------
// Hang-ups. Closing the last master fd hangs the replica up (vhangup): its open files read
// EOF, fail writes and ioctls with EIO. Closing the last replica fd leaves the master
// readable until the output is drained, then EIO.

// Input queued before the hang-up is not delivered: the hung-up file reads EOF at once.
TEST(HangupTest, AfterTheMasterClosesReplicaReadsReturnZero) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.master.get(), "abc\n"));
  ASSERT_EQ(Revents(p.replica.get(), POLLIN, kWaitMs), POLLIN);
  p.master.Reset();
  EXPECT_EQ(ReadRaw(p.replica.get(), 16), "[eof]");
  EXPECT_EQ(ReadRaw(p.replica.get(), 16), "[eof]");
}

TEST(HangupTest, AfterTheMasterClosesReplicaWritesFailEio) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  p.master.Reset();
  EXPECT_ERRNO(write(p.replica.get(), "x", 1), EIO);
}

TEST(HangupTest, AfterTheMasterClosesPollReportsHangupAndError) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  p.master.Reset();
  EXPECT_EQ(Revents(p.replica.get(), POLLIN | POLLOUT), POLLIN | POLLOUT | POLLERR | POLLHUP);
}

// Every ioctl on the hung-up file fails EIO, except TIOCSPGRP, which fails ENOTTY.
TEST(HangupTest, AfterTheMasterClosesReplicaIoctlsFail) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  p.master.Reset();
  termios t;
  EXPECT_ERRNO(tcgetattr(p.replica.get(), &t), EIO);
  int n;
  EXPECT_ERRNO(ioctl(p.replica.get(), FIONREAD, &n), EIO);
  pid_t pgrp = getpgrp();
  EXPECT_ERRNO(ioctl(p.replica.get(), TIOCSPGRP, &pgrp), ENOTTY);
  EXPECT_EQ(isatty(p.replica.get()), 0);
}

TEST(HangupTest, ThePtsNodeGoesAwayWhenTheMasterCloses) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  struct stat st;
  ASSERT_OK(stat(p.path.c_str(), &st));
  p.master.Reset();
  EXPECT_ERRNO(stat(p.path.c_str(), &st), ENOENT);  // though the replica is still open
}

TEST(HangupTest, AfterTheReplicaClosesTheMasterReadsTheOutputThenEio) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  ASSERT_TRUE(Type(p.replica.get(), "bye\n"));
  p.replica.Reset();
  EXPECT_EQ(ReadExactly(p.master.get(), 5), "bye\r\n");
  EXPECT_EQ(ReadNow(p.master.get()), "[EIO]");
  EXPECT_EQ(ReadRaw(p.master.get(), 16), "[EIO]");  // does not block either
}

// The master polls POLLHUP (but not POLLIN) and still takes writes, which queue as input
// for the next opener of the replica.
TEST(HangupTest, AfterTheReplicaClosesTheMasterPollsHangupButTakesWrites) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  p.replica.Reset();
  EXPECT_EQ(Revents(p.master.get(), POLLIN | POLLOUT), POLLOUT | POLLHUP);
  EXPECT_EQ(write(p.master.get(), "x\n", 2), 2) << ErrnoName(errno);
  p.replica.Reset(open(p.path.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_TRUE(p.replica.valid()) << ErrnoName(errno);
  EXPECT_EQ(ReadOnce(p.replica.get()), "x\n");
}

// The hang-up comes with the last replica close and ends when the replica is opened again.
TEST(HangupTest, TheMasterHangsUpOnlyWhileNoReplicaIsOpen) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  Fd second(open(p.path.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_TRUE(second.valid()) << ErrnoName(errno);
  p.replica.Reset();
  EXPECT_EQ(ReadNow(p.master.get()), "[EAGAIN]");
  second.Reset();
  EXPECT_EQ(ReadNow(p.master.get()), "[EIO]");
  p.replica.Reset(open(p.path.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_TRUE(p.replica.valid()) << ErrnoName(errno);
  EXPECT_EQ(ReadNow(p.master.get()), "[EAGAIN]");
  EXPECT_EQ(Revents(p.master.get(), POLLIN | POLLOUT), POLLOUT);
}

// Before any replica open the master is not hung up, and what it writes waits for the reader.
TEST(HangupTest, BeforeTheReplicaIsFirstOpenedTheMasterIsNotHungUp) {
  Fd master(posix_openpt(O_RDWR | O_NOCTTY));
  ASSERT_TRUE(master.valid()) << ErrnoName(errno);
  ASSERT_OK(unlockpt(master.get()));
  EXPECT_EQ(ReadNow(master.get()), "[EAGAIN]");
  EXPECT_EQ(Revents(master.get(), POLLIN | POLLOUT), POLLOUT);
  ASSERT_TRUE(Type(master.get(), "early\n"));
  Fd replica(open(ptsname(master.get()), O_RDWR | O_NOCTTY));
  ASSERT_TRUE(replica.valid()) << ErrnoName(errno);
  EXPECT_EQ(ReadOnce(replica.get()), "early\n");
}

// Closing the master of a session's controlling terminal signals the session leader with
// SIGHUP and SIGCONT and leaves the session without a controlling terminal.
TEST(HangupTest, ClosingTheMasterHangsUpTheControllingSession) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              REQUIRE(BlockSignal(SIGCONT));
              REQUIRE(OpenDevTty() == 0);
              p.master.Reset();
              REQUIRE(Pending(SIGHUP));
              REQUIRE(Pending(SIGCONT));
              REQUIRE(OpenDevTty() == ENXIO);
              return 0;
            }),
            0);
}

// ---------------------------------------------------------------------------------------
// Controlling terminal.

TEST(CttyTest, WithoutAControllingTerminalDevTtyIsEnxio) {
  EXPECT_EQ(InChild([] {
              REQUIRE(setsid() >= 0);
              REQUIRE(FAILS_WITH(open("/dev/tty", O_RDWR), ENXIO));
              return 0;
            }),
            0);
}

TEST(CttyTest, ASessionLeaderOpeningTheReplicaAcquiresIt) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              REQUIRE(OpenDevTty() == 0);
              pid_t sid = -1;
              REQUIRE(ioctl(p.replica.get(), TIOCGSID, &sid) == 0);
              REQUIRE(sid == getpid());
              REQUIRE(tcgetpgrp(p.replica.get()) == getpid());
              return 0;
            }),
            0);
}

TEST(CttyTest, OpeningWithONocttyDoesNotAcquireIt) {
  EXPECT_EQ(InChild([] {
              REQUIRE(setsid() >= 0);
              Pty p;
              REQUIRE(OpenPty(&p, O_RDWR | O_NOCTTY));
              REQUIRE(OpenDevTty() == ENXIO);
              pid_t sid;
              REQUIRE(FAILS_WITH(ioctl(p.replica.get(), TIOCGSID, &sid), ENOTTY));
              return 0;
            }),
            0);
}

// A terminal opened without read access is never acquired.
TEST(CttyTest, OpeningTheReplicaWriteOnlyDoesNotAcquireIt) {
  EXPECT_EQ(InChild([] {
              REQUIRE(setsid() >= 0);
              Pty p;
              REQUIRE(OpenPty(&p, O_WRONLY));
              REQUIRE(OpenDevTty() == ENXIO);
              return 0;
            }),
            0);
}

TEST(CttyTest, OpeningTheMasterDoesNotAcquireIt) {
  EXPECT_EQ(InChild([] {
              REQUIRE(setsid() >= 0);
              Fd master(posix_openpt(O_RDWR));  // no O_NOCTTY
              REQUIRE(master.valid());
              REQUIRE(OpenDevTty() == ENXIO);
              return 0;
            }),
            0);
}

TEST(CttyTest, AProcessThatLeadsNoSessionDoesNotAcquireIt) {
  EXPECT_EQ(InChild([] {
              REQUIRE(setsid() >= 0);
              Pty p;
              REQUIRE(OpenPty(&p, O_RDWR | O_NOCTTY));
              Child member(fork());
              if (member.pid() == 0) {
                Fd replica(open(p.path.c_str(), O_RDWR));
                _exit(replica.valid() && OpenDevTty() == ENXIO ? 0 : 1);
              }
              REQUIRE(member.ExitsZero());
              REQUIRE(OpenDevTty() == ENXIO);
              return 0;
            }),
            0);
}

TEST(CttyTest, TiocscttyMakesItTheControllingTerminal) {
  EXPECT_EQ(InChild([] {
              REQUIRE(BlockSignal(SIGHUP));  // for the hang-up when the master closes
              REQUIRE(setsid() >= 0);
              Pty p;
              REQUIRE(OpenPty(&p, O_RDWR | O_NOCTTY));
              REQUIRE(ioctl(p.replica.get(), TIOCSCTTY, 0) == 0);
              REQUIRE(OpenDevTty() == 0);
              REQUIRE(tcgetpgrp(p.replica.get()) == getpid());
              REQUIRE(ioctl(p.replica.get(), TIOCSCTTY, 0) == 0);  // already ours: no-op
              return 0;
            }),
            0);
}

TEST(CttyTest, TiocscttyByAProcessThatLeadsNoSessionIsEperm) {
  EXPECT_EQ(InChild([] {
              REQUIRE(setsid() >= 0);
              Pty p;
              REQUIRE(OpenPty(&p, O_RDWR | O_NOCTTY));
              Child member(fork());
              if (member.pid() == 0) {
                _exit(FAILS_WITH(ioctl(p.replica.get(), TIOCSCTTY, 0), EPERM) ? 0 : 1);
              }
              REQUIRE(member.ExitsZero());
              return 0;
            }),
            0);
}

TEST(CttyTest, TiocscttyWhileHavingAControllingTerminalIsEperm) {
  EXPECT_EQ(InChild([] {
              Pty p, q;
              REQUIRE(LeadSessionWithCtty(&p));
              REQUIRE(OpenPty(&q, O_RDWR | O_NOCTTY));
              REQUIRE(FAILS_WITH(ioctl(q.replica.get(), TIOCSCTTY, 0), EPERM));
              return 0;
            }),
            0);
}

// Another session's leader can neither take the terminal with TIOCSCTTY (without
// CAP_SYS_ADMIN and arg 1) nor acquire it by opening it.
TEST(CttyTest, AnotherSessionsControllingTerminalCannotBeTaken) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Child other(fork());
              if (other.pid() == 0) {
                if (setsid() < 0) _exit(1);
                if (!FAILS_WITH(ioctl(p.replica.get(), TIOCSCTTY, 0), EPERM)) _exit(2);
                Fd again(open(p.path.c_str(), O_RDWR));
                if (!again.valid() || OpenDevTty() != ENXIO) _exit(3);
                _exit(0);
              }
              REQUIRE(other.ExitsZero());
              pid_t sid = -1;
              REQUIRE(ioctl(p.master.get(), TIOCGSID, &sid) == 0 && sid == getpid());
              return 0;
            }),
            0);
}

TEST(CttyTest, DevTtyReachesTheControllingTerminal) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Fd tty(open("/dev/tty", O_RDWR));
              REQUIRE(tty.valid());
              REQUIRE(Type(tty.get(), "via tty"));
              REQUIRE(ReadExactly(p.master.get(), 7) == "via tty");
              REQUIRE(Type(p.master.get(), "back\n"));
              REQUIRE(ReadOnce(tty.get()) == "back\n");
              return 0;
            }),
            0);
}

// TIOCGSID and TIOCGPGRP on the master answer anyone, where the replica answers only
// processes whose controlling terminal it is.
TEST(CttyTest, TheMasterReportsSessionAndForegroundGroupToAnyone) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              const pid_t leader = getpid();
              Child outsider(fork());
              if (outsider.pid() == 0) {
                if (setsid() < 0) _exit(1);
                pid_t sid = -1;
                if (ioctl(p.master.get(), TIOCGSID, &sid) != 0 || sid != leader) _exit(2);
                if (tcgetpgrp(p.master.get()) != leader) _exit(3);
                if (!FAILS_WITH(tcgetpgrp(p.replica.get()), ENOTTY)) _exit(4);
                if (!FAILS_WITH(ioctl(p.replica.get(), TIOCGSID, &sid), ENOTTY)) _exit(5);
                _exit(0);
              }
              REQUIRE(outsider.ExitsZero());
              return 0;
            }),
            0);
}

TEST(CttyTest, WithoutASessionTheMasterReportsNone) {
  Pty p;
  ASSERT_TRUE(OpenPty(&p)) << ErrnoName(errno);
  pid_t sid;
  EXPECT_ERRNO(ioctl(p.master.get(), TIOCGSID, &sid), ENOTTY);
  EXPECT_EQ(tcgetpgrp(p.master.get()), 0);
  EXPECT_ERRNO(tcgetpgrp(p.replica.get()), ENOTTY);
}

TEST(CttyTest, TcsetpgrpMovesTheForegroundGroup) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Pipe release = MakePipe();
              Child job(ForkInBackground([&] {
                release.w.Reset();
                char c;
                return read(release.r.get(), &c, 1) == 0 ? 0 : 1;
              }));
              REQUIRE(job.ok());
              REQUIRE(tcsetpgrp(p.replica.get(), job.pid()) == 0);
              REQUIRE(tcgetpgrp(p.replica.get()) == job.pid());
              REQUIRE(tcgetpgrp(p.master.get()) == job.pid());
              // Taking it back from the background needs SIGTTOU ignored, as shells do.
              signal(SIGTTOU, SIG_IGN);
              REQUIRE(tcsetpgrp(p.replica.get(), getpgrp()) == 0);
              REQUIRE(tcgetpgrp(p.replica.get()) == getpid());
              release.w.Reset();
              REQUIRE(job.ExitsZero());
              return 0;
            }),
            0);
}

TEST(CttyTest, TcsetpgrpToAGroupOfAnotherSessionIsEperm) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Pipe ready = MakePipe(), release = MakePipe();
              Child other(fork());
              if (other.pid() == 0) {
                release.w.Reset();
                const pid_t sid = setsid();
                (void)!write(ready.w.get(), &sid, sizeof(sid));
                char c;
                _exit(read(release.r.get(), &c, 1) == 0 ? 0 : 1);
              }
              REQUIRE(other.ok());
              ready.w.Reset();
              pid_t sid = -1;
              REQUIRE(read(ready.r.get(), &sid, sizeof(sid)) == sizeof(sid));
              REQUIRE(sid == other.pid());
              REQUIRE(FAILS_WITH(tcsetpgrp(p.replica.get(), other.pid()), EPERM));
              REQUIRE(tcgetpgrp(p.replica.get()) == getpid());
              release.w.Reset();
              REQUIRE(other.ExitsZero());
              return 0;
            }),
            0);
}

TEST(CttyTest, TcsetpgrpToNoGroupIsEsrchAndANegativeOneEinval) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              const pid_t gone = fork();  // a process id that was just freed
              if (gone == 0) _exit(0);
              REQUIRE(gone > 0 && waitpid(gone, nullptr, 0) == gone);
              REQUIRE(FAILS_WITH(tcsetpgrp(p.replica.get(), gone), ESRCH));
              REQUIRE(FAILS_WITH(tcsetpgrp(p.replica.get(), -1), EINVAL));
              return 0;
            }),
            0);
}

TEST(CttyTest, TcsetpgrpOnATerminalThatIsNotTheCallersIsEnotty) {
  EXPECT_EQ(InChild([] {
              Pty p, q;
              REQUIRE(LeadSessionWithCtty(&p));
              REQUIRE(OpenPty(&q, O_RDWR | O_NOCTTY));
              REQUIRE(FAILS_WITH(tcsetpgrp(q.replica.get(), getpgrp()), ENOTTY));
              REQUIRE(FAILS_WITH(tcgetpgrp(q.replica.get()), ENOTTY));
              return 0;
            }),
            0);
}

// ---------------------------------------------------------------------------------------
// Job control: a background group using its controlling terminal. Each case leads a session
// whose foreground group is the leader's, and forks the job into a group of its own.

TEST(JobControlTest, ABackgroundReadStopsWithSigttin) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Child job(ForkInBackground([&] {
                char c;
                (void)!read(p.replica.get(), &c, 1);
                return 9;  // not reached: stopped, then killed
              }));
              REQUIRE(job.StopsWith(SIGTTIN));
              return 0;
            }),
            0);
}

TEST(JobControlTest, ABackgroundReadWithSigttinIgnoredFailsEio) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              REQUIRE(Type(p.master.get(), "queued\n"));  // even with input waiting
              Child job(ForkInBackground([&] {
                signal(SIGTTIN, SIG_IGN);
                char c;
                return FAILS_WITH(read(p.replica.get(), &c, 1), EIO) ? 0 : 1;
              }));
              REQUIRE(job.ExitsZero());
              return 0;
            }),
            0);
}

TEST(JobControlTest, ABackgroundReadWithSigttinBlockedFailsEio) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Child job(ForkInBackground([&] {
                if (!BlockSignal(SIGTTIN)) return 2;
                char c;
                if (!FAILS_WITH(read(p.replica.get(), &c, 1), EIO)) return 1;
                return Pending(SIGTTIN) ? 3 : 0;
              }));
              REQUIRE(job.ExitsZero());
              return 0;
            }),
            0);
}

// The job's group is orphaned once its only member's parent (the middle process) exits:
// nothing in the session could continue it, so the read fails EIO instead of stopping.
TEST(JobControlTest, ABackgroundReadFromAnOrphanedGroupFailsEio) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Pipe result = MakePipe();
              Child middle(ForkInBackground([&] {
                const pid_t me = getpid();
                const pid_t job = fork();
                if (job == 0) {
                  result.r.Reset();
                  for (int i = 0; i < kWaitMs && getppid() == me; i++) {
                    timespec ts{0, 1000 * 1000};
                    nanosleep(&ts, nullptr);
                  }
                  char c;
                  const char verdict = FAILS_WITH(read(p.replica.get(), &c, 1), EIO) ? 'y' : 'n';
                  (void)!write(result.w.get(), &verdict, 1);
                  _exit(0);
                }
                if (job < 0) return 1;
                // Tell the leader whom to kill should the job hang.
                return write(result.w.get(), &job, sizeof(job)) == sizeof(job) ? 0 : 1;
              }));
              REQUIRE(middle.ExitsZero());
              result.w.Reset();
              pid_t job = -1;
              REQUIRE(read(result.r.get(), &job, sizeof(job)) == sizeof(job));
              const std::string verdict = ReadOnce(result.r.get(), 1);
              if (verdict != "y" && verdict != "[eof]") kill(job, SIGKILL);
              REQUIRE(verdict == "y");
              return 0;
            }),
            0);
}

TEST(JobControlTest, ABackgroundWriteWithTostopStopsWithSigttou) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              REQUIRE(Change(p.replica.get(), [](termios& t) { t.c_lflag |= TOSTOP; }));
              Child job(ForkInBackground([&] {
                (void)!write(p.replica.get(), "x", 1);
                return 9;
              }));
              REQUIRE(job.StopsWith(SIGTTOU));
              return 0;
            }),
            0);
}

TEST(JobControlTest, ABackgroundWriteWithoutTostopSucceeds) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Child job(ForkInBackground([&] { return Type(p.replica.get(), "bg") ? 0 : 1; }));
              REQUIRE(job.ExitsZero());
              REQUIRE(ReadExactly(p.master.get(), 2) == "bg");
              return 0;
            }),
            0);
}

TEST(JobControlTest, ABackgroundWriteWithTostopAndSigttouIgnoredSucceeds) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              REQUIRE(Change(p.replica.get(), [](termios& t) { t.c_lflag |= TOSTOP; }));
              Child job(ForkInBackground([&] {
                signal(SIGTTOU, SIG_IGN);
                return Type(p.replica.get(), "bg") ? 0 : 1;
              }));
              REQUIRE(job.ExitsZero());
              REQUIRE(ReadExactly(p.master.get(), 2) == "bg");
              return 0;
            }),
            0);
}

// Changing the terminal's settings from the background stops, TOSTOP or not.
TEST(JobControlTest, ABackgroundTcsetattrStopsWithSigttou) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Child job(ForkInBackground([&] {
                (void)!Change(p.replica.get(), [](termios& t) { t.c_lflag &= ~ECHO; });
                return 9;
              }));
              REQUIRE(job.StopsWith(SIGTTOU));
              termios t;
              REQUIRE(tcgetattr(p.replica.get(), &t) == 0 && (t.c_lflag & ECHO) != 0);
              return 0;
            }),
            0);
}

TEST(JobControlTest, ABackgroundTcsetattrWithSigttouIgnoredOrBlockedSucceeds) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Child ignoring(ForkInBackground([&] {
                signal(SIGTTOU, SIG_IGN);
                return Change(p.replica.get(), [](termios& t) { t.c_lflag &= ~ECHO; }) ? 0 : 1;
              }));
              REQUIRE(ignoring.ExitsZero());
              termios t;
              REQUIRE(tcgetattr(p.replica.get(), &t) == 0 && (t.c_lflag & ECHO) == 0);
              Child blocking(ForkInBackground([&] {
                if (!BlockSignal(SIGTTOU)) return 2;
                if (!Change(p.replica.get(), [](termios& t) { t.c_lflag |= ECHO; })) return 1;
                return Pending(SIGTTOU) ? 3 : 0;
              }));
              REQUIRE(blocking.ExitsZero());
              REQUIRE(tcgetattr(p.replica.get(), &t) == 0 && (t.c_lflag & ECHO) != 0);
              return 0;
            }),
            0);
}

TEST(JobControlTest, ABackgroundJobMayReadTheSettingsAndForegroundGroup) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              const pid_t leader = getpid();
              Child job(ForkInBackground([&] {
                termios t;
                winsize ws;
                if (tcgetattr(p.replica.get(), &t) != 0) return 1;
                if (ioctl(p.replica.get(), TIOCGWINSZ, &ws) != 0) return 2;
                return tcgetpgrp(p.replica.get()) == leader ? 0 : 3;
              }));
              REQUIRE(job.ExitsZero());
              return 0;
            }),
            0);
}

TEST(JobControlTest, ABackgroundTcsetpgrpStopsWithSigttou) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Child job(ForkInBackground([&] {
                (void)!tcsetpgrp(p.replica.get(), getpgrp());
                return 9;
              }));
              REQUIRE(job.StopsWith(SIGTTOU));
              REQUIRE(tcgetpgrp(p.replica.get()) == getpid());
              return 0;
            }),
            0);
}

// TIOCNOTTY by the session leader sends the foreground group SIGHUP and SIGCONT, and the
// whole session loses its controlling terminal.
TEST(JobControlTest, TiocnottyByTheLeaderHangsUpTheForegroundGroup) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Pipe ready = MakePipe(), done = MakePipe();
              Child fg(ForkInBackground([&] {
                ready.r.Reset();
                done.w.Reset();
                if (!BlockSignal(SIGCONT)) return 1;  // SIGHUP is blocked already
                (void)!write(ready.w.get(), "r", 1);
                if (!Await(SIGHUP)) return 2;
                if (!Await(SIGCONT)) return 3;
                if (ReadOnce(done.r.get()) != "[eof]") return 4;
                return OpenDevTty() == ENXIO ? 0 : 5;
              }));
              REQUIRE(fg.ok());
              ready.w.Reset();
              REQUIRE(ReadOnce(ready.r.get(), 1) == "r");
              REQUIRE(tcsetpgrp(p.replica.get(), fg.pid()) == 0);
              REQUIRE(ioctl(p.replica.get(), TIOCNOTTY) == 0);
              REQUIRE(OpenDevTty() == ENXIO);
              pid_t sid;
              REQUIRE(FAILS_WITH(ioctl(p.master.get(), TIOCGSID, &sid), ENOTTY));
              REQUIRE(!Pending(SIGHUP));  // the leader is not in the foreground group
              done.w.Reset();
              REQUIRE(fg.ExitsZero());
              return 0;
            }),
            0);
}

TEST(JobControlTest, TiocnottyByAnotherMemberDropsOnlyItsOwnTerminal) {
  EXPECT_EQ(InChild([] {
              Pty p;
              REQUIRE(LeadSessionWithCtty(&p));
              Child member(fork());
              if (member.pid() == 0) {
                if (ioctl(p.replica.get(), TIOCNOTTY) != 0) _exit(1);
                _exit(OpenDevTty() == ENXIO ? 0 : 2);
              }
              REQUIRE(member.ExitsZero());
              REQUIRE(OpenDevTty() == 0);
              REQUIRE(!Pending(SIGHUP));
              REQUIRE(tcgetpgrp(p.replica.get()) == getpid());
              return 0;
            }),
            0);
}

TEST(JobControlTest, TiocnottyOnATerminalThatIsNotTheCallersIsEnotty) {
  EXPECT_EQ(InChild([] {
              REQUIRE(setsid() >= 0);
              Pty p;
              REQUIRE(OpenPty(&p, O_RDWR | O_NOCTTY));
              REQUIRE(FAILS_WITH(ioctl(p.replica.get(), TIOCNOTTY), ENOTTY));
              return 0;
            }),
            0);
}

// When the leader exits its controlling pty stays (the master is open elsewhere), and the
// foreground group gets SIGHUP. The group is orphaned then; its member reports by pipe.
TEST(JobControlTest, WhenTheSessionLeaderExitsTheForegroundGroupGetsSighup) {
  EXPECT_EQ(InChild([] {
              Fd master(posix_openpt(O_RDWR | O_NOCTTY));
              REQUIRE(master.valid() && unlockpt(master.get()) == 0);
              const std::string path = ptsname(master.get());
              Pipe result = MakePipe();
              Child leader(fork());
              if (leader.pid() == 0) {
                result.r.Reset();
                if (setsid() < 0) _exit(1);
                Fd replica(open(path.c_str(), O_RDWR));
                if (!replica.valid()) _exit(2);
                Pipe ready = MakePipe();
                const pid_t fg = ForkInBackground([&] {
                  if (!BlockSignal(SIGHUP)) return 1;
                  (void)!write(ready.w.get(), "r", 1);
                  const char verdict = Await(SIGHUP) ? 'y' : 'n';
                  (void)!write(result.w.get(), &verdict, 1);
                  return 0;
                });
                ready.w.Reset();
                char c;
                if (fg < 0 || read(ready.r.get(), &c, 1) != 1) _exit(3);
                if (tcsetpgrp(replica.get(), fg) != 0) _exit(4);
                _exit(0);
              }
              result.w.Reset();
              REQUIRE(leader.ExitsZero());
              REQUIRE(ReadOnce(result.r.get(), 1) == "y");
              return 0;
            }),
            0);
}

// O_ASYNC on a terminal: the master's owner hears with SIGIO when the
// replica writes (n_tty's kill_fasync on input).
TEST(PtyAsyncTest, MasterIsSignalledWhenTheReplicaWrites) {
  BlockedSignal sigio(SIGIO);
  Pty p;
  ASSERT_TRUE(OpenPty(&p));
  ASSERT_EQ(fcntl(p.master.get(), F_SETOWN, getpid()), 0);
  ASSERT_EQ(fcntl(p.master.get(), F_SETFL, fcntl(p.master.get(), F_GETFL) | O_ASYNC), 0);
  ASSERT_EQ(write(p.replica.get(), "hi\n", 3), 3);
  EXPECT_EQ(sigio.Wait(kWaitMs).si_signo, SIGIO);
  EXPECT_EQ(ReadOnce(p.master.get()), "hi\r\n");
  ASSERT_EQ(fcntl(p.master.get(), F_SETFL, fcntl(p.master.get(), F_GETFL) & ~O_ASYNC), 0);
  sigio.Drain();
}

}  // namespace
}  // namespace husk_test
