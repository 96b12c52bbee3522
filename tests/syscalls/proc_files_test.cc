// Conformance: the per-process files of /proc as programs read them (ps, top, debuggers,
// language runtimes, sandboxes): /proc/<pid>/{stat,status,statm,cmdline,environ,auxv,maps,
// smaps,limits,oom_score_adj,oom_score,oom_adj,coredump_filter,comm,fdinfo/N,mountinfo,
// mounts,mem,cwd,root,exe,task/TID/...} and /proc/thread-self. Each file's format is checked
// and its values against the syscalls that report the same state (proc(5)).
// Relies on, beyond the start-up set in test_util.h: getpid getppid getpgrp getsid gettid
// getresuid getresgid setresuid setresgid setgroups getgroups umask prctl capget sigprocmask
// sigaction kill tgkill fork execve waitid wait4 ptrace(TRACEME) mmap munmap mprotect madvise
// sbrk getrlimit setrlimit lseek fcntl statx chdir chroot rmdir unlink clone (threads);
// files /proc/self/..., /proc/<pid>/..., /proc/thread-self.
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

const long kPage = sysconf(_SC_PAGESIZE);

// The whole text of a /proc file; a failure to open it is reported with its errno.
std::string Slurp(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    ADD_FAILURE() << "open " << path << ": " << ErrnoName(errno);
    return "";
  }
  return ReadAll(fd.get());
}

std::string Readlink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? "" : std::string(buf, n);
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : "";
}

// Writes `text` to the file at `path` in one write(2); returns 0 or the errno.
int WriteProc(const std::string& path, const std::string& text) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  ssize_t n = write(fd.get(), text.data(), text.size());
  if (n < 0) return errno;
  return n == static_cast<ssize_t>(text.size()) ? 0 : EIO;
}

std::vector<std::string> Words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<std::string> Lines(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The fields of a /proc/<pid>/stat line, field N (proc(5), from 1) at index N-1. The name
// (field 2) is everything between the first "(" and the last ")": it may hold both.
std::vector<std::string> StatFields(const std::string& text) {
  std::vector<std::string> out;
  size_t open_paren = text.find('('), close_paren = text.rfind(')');
  if (open_paren == std::string::npos || close_paren == std::string::npos) return out;
  out.push_back(text.substr(0, open_paren - 1));
  out.push_back(text.substr(open_paren + 1, close_paren - open_paren - 1));
  for (auto& w : Words(text.substr(close_paren + 1))) out.push_back(w);
  return out;
}

// The value of "Key:\tvalue" in a status-like text, without the key; "" if absent.
std::string Field(const std::string& text, const std::string& key) {
  for (const auto& line : Lines(text)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    size_t at = key.size() + 1;
    while (at < line.size() && (line[at] == '\t' || line[at] == ' ')) ++at;
    return line.substr(at);
  }
  return "";
}

// A "NNN kB" value of a status or smaps text, -1 if missing.
long Kb(const std::string& text, const std::string& key) {
  std::string v = Field(text, key);
  if (v.empty()) return -1;
  auto w = Words(v);
  if (w.size() != 2 || w[1] != "kB") return -1;
  return strtol(w[0].c_str(), nullptr, 10);
}

uint64_t Hex(const std::string& s) { return strtoull(s.c_str(), nullptr, 16); }

// One line of /proc/<pid>/maps.
struct Mapping {
  uintptr_t start = 0, end = 0;
  std::string perms, offset, dev, inode, path;
};

bool ParseMapping(const std::string& line, Mapping* m) {
  std::istringstream f(line);
  std::string range;
  if (!(f >> range >> m->perms >> m->offset >> m->dev >> m->inode)) return false;
  size_t dash = range.find('-');
  if (dash == std::string::npos) return false;
  m->start = Hex(range.substr(0, dash));
  m->end = Hex(range.substr(dash + 1));
  std::getline(f, m->path);
  size_t first = m->path.find_first_not_of(' ');
  m->path = first == std::string::npos ? "" : m->path.substr(first);
  return true;
}

std::vector<Mapping> Maps(const std::string& path = "/proc/self/maps") {
  std::vector<Mapping> out;
  for (const auto& line : Lines(Slurp(path))) {
    Mapping m;
    if (ParseMapping(line, &m)) out.push_back(m);
  }
  return out;
}

const Mapping* Find(const std::vector<Mapping>& maps, uintptr_t addr) {
  for (const auto& m : maps) {
    if (m.start <= addr && addr < m.end) return &m;
  }
  return nullptr;
}

// Threads that block until the object is destroyed; tids() are their thread ids.
class Threads {
 public:
  explicit Threads(int n) : ready_(MakePipe(O_CLOEXEC)), stop_(MakePipe(O_CLOEXEC)) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        pid_t tid = gettid();
        (void)!write(ready_.w.get(), &tid, sizeof(tid));
        char c;
        (void)!read(stop_.r.get(), &c, 1);
      });
    }
    for (int i = 0; i < n; ++i) {
      pid_t tid = 0;
      if (read(ready_.r.get(), &tid, sizeof(tid)) == sizeof(tid)) tids_.push_back(tid);
    }
  }
  ~Threads() {
    stop_.w.Reset();
    for (auto& t : threads_) t.join();
  }
  const std::vector<pid_t>& tids() const { return tids_; }
  pthread_t handle(int i) { return threads_[i].native_handle(); }

 private:
  Pipe ready_, stop_;
  std::vector<std::thread> threads_;
  std::vector<pid_t> tids_;
};

// A forked child that runs `body` (which must not return) after fork, for tests that look at
// another process's files. The child is killed and reaped with the object.
class Child {
 public:
  template <typename F>
  explicit Child(F body) {
    pid_ = fork();
    if (pid_ == 0) {
      body();
      _exit(0);
    }
    EXPECT_GT(pid_, 0) << ErrnoName(errno);
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
  }
  pid_t pid() const { return pid_; }
  std::string Path(const std::string& name) const {
    return "/proc/" + std::to_string(pid_) + "/" + name;
  }
  int Reap() {
    reaped_ = true;
    return Wait(pid_);
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// ---------------------------------------------------------------------------------------
// /proc/<pid>/stat

TEST(ProcStatTest, IdsMatchTheSyscalls) {
  auto f = StatFields(Slurp("/proc/self/stat"));
  ASSERT_GE(f.size(), 20u);
  EXPECT_EQ(f[0], std::to_string(getpid()));
  EXPECT_EQ(f[2], "R");  // reading it, the process runs
  EXPECT_EQ(f[3], std::to_string(getppid()));
  EXPECT_EQ(f[4], std::to_string(getpgrp()));
  EXPECT_EQ(f[5], std::to_string(getsid(0)));
  char name[16] = {};
  ASSERT_OK(prctl(PR_GET_NAME, name));
  EXPECT_EQ(f[1], name);
}

// ps and top take the name as what lies between "(" and the LAST ")": a name may contain
// parentheses and spaces.
TEST(ProcStatTest, NameMayHoldParenthesesAndSpaces) {
  EXPECT_EQ(InChild([] {
              if (prctl(PR_SET_NAME, "a) b (c") != 0) return 1;
              std::string text = ReadFile("/proc/self/stat");
              auto f = StatFields(text);
              if (f.size() < 20) return 2;
              if (f[1] != "a) b (c") return 3;
              if (f[2] != "R") return 4;
              return f[0] == std::to_string(getpid()) ? 0 : 5;
            }),
            0);
}

// Since Linux 3.5 a stat line has 52 fields (exit_code is the last); tools index into them.
TEST(ProcStatTest, HasAllFiftyTwoFields) {
  std::string text = Slurp("/proc/self/stat");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_GE(StatFields(text).size(), 52u) << text;
}

TEST(ProcStatTest, NumThreadsCountsThreads) {
  auto before = StatFields(Slurp("/proc/self/stat"));
  ASSERT_GE(before.size(), 20u);
  long base = strtol(before[19].c_str(), nullptr, 10);
  EXPECT_GE(base, 1);
  Threads threads(2);
  ASSERT_EQ(threads.tids().size(), 2u);
  auto during = StatFields(Slurp("/proc/self/stat"));
  ASSERT_GE(during.size(), 20u);
  EXPECT_EQ(strtol(during[19].c_str(), nullptr, 10), base + 2);
}

// Field 22, starttime, in clock ticks since boot: a child starts no earlier than its parent,
// and nobody after now (/proc/uptime).
TEST(ProcStatTest, StartTimeOrdersParentAndChild) {
  auto self = StatFields(Slurp("/proc/self/stat"));
  ASSERT_GE(self.size(), 22u);
  unsigned long long mine = strtoull(self[21].c_str(), nullptr, 10);
  Pipe stop = MakePipe(O_CLOEXEC);
  Child child([&] {
    stop.w.Reset();
    char c;
    (void)!read(stop.r.get(), &c, 1);
  });
  auto theirs = StatFields(Slurp(child.Path("stat")));
  ASSERT_GE(theirs.size(), 22u);
  EXPECT_GE(strtoull(theirs[21].c_str(), nullptr, 10), mine);
  double uptime = strtod(Slurp("/proc/uptime").c_str(), nullptr);
  EXPECT_LE(static_cast<double>(mine) / sysconf(_SC_CLK_TCK), uptime + 1.0);
}

// Fields 23 (vsize, bytes) and 24 (rss, pages).
TEST(ProcStatTest, VsizeAndRssDescribeTheAddressSpace) {
  auto f = StatFields(Slurp("/proc/self/stat"));
  ASSERT_GE(f.size(), 24u);
  unsigned long long vsize = strtoull(f[22].c_str(), nullptr, 10);
  long long rss = strtoll(f[23].c_str(), nullptr, 10);
  EXPECT_GT(vsize, 0u);
  EXPECT_GT(rss, 0);
  EXPECT_GE(vsize, static_cast<unsigned long long>(rss) * kPage);
}

// Fields 48 to 51 (arg_start, arg_end, env_start, env_end) bound argv's and environ's strings.
TEST(ProcStatTest, ArgAndEnvRangesHoldTheStrings) {
  auto f = StatFields(Slurp("/proc/self/stat"));
  ASSERT_GE(f.size(), 51u);
  uintptr_t arg_start = strtoull(f[47].c_str(), nullptr, 10);
  uintptr_t arg_end = strtoull(f[48].c_str(), nullptr, 10);
  uintptr_t env_start = strtoull(f[49].c_str(), nullptr, 10);
  uintptr_t env_end = strtoull(f[50].c_str(), nullptr, 10);
  auto arg0 = reinterpret_cast<uintptr_t>(program_invocation_name);
  EXPECT_EQ(arg0, arg_start);
  EXPECT_LT(arg0, arg_end);
  ASSERT_NE(environ, nullptr);
  ASSERT_NE(environ[0], nullptr);
  auto env0 = reinterpret_cast<uintptr_t>(environ[0]);
  EXPECT_LE(env_start, env0);
  EXPECT_LT(env0, env_end);
  EXPECT_LE(arg_end, env_start);
}

TEST(ProcStatTest, StoppedChildShowsT) {
  Child child([] { raise(SIGSTOP); });
  int status = 0;
  ASSERT_EQ(waitpid(child.pid(), &status, WUNTRACED), child.pid());
  ASSERT_TRUE(WIFSTOPPED(status)) << Describe(status);
  auto f = StatFields(Slurp(child.Path("stat")));
  ASSERT_GE(f.size(), 3u);
  EXPECT_EQ(f[2], "T");
  EXPECT_EQ(Field(Slurp(child.Path("status")), "State"), "T (stopped)");
}

TEST(ProcStatTest, ZombieShowsZAndEmptyCmdline) {
  Child child([] {});
  siginfo_t info{};
  ASSERT_OK(waitid(P_PID, child.pid(), &info, WEXITED | WNOWAIT));
  auto f = StatFields(Slurp(child.Path("stat")));
  ASSERT_GE(f.size(), 3u);
  EXPECT_EQ(f[2], "Z");
  EXPECT_EQ(Field(Slurp(child.Path("status")), "State"), "Z (zombie)");
  EXPECT_EQ(Slurp(child.Path("cmdline")), "");  // its memory is gone
  EXPECT_TRUE(ExitedWith(child.Reap(), 0));
}

// ---------------------------------------------------------------------------------------
// /proc/<pid>/status

TEST(ProcStatusTest, IdsMatchTheSyscalls) {
  std::string s = Slurp("/proc/self/status");
  char name[16] = {};
  ASSERT_OK(prctl(PR_GET_NAME, name));
  EXPECT_EQ(Field(s, "Name"), name);
  EXPECT_EQ(Field(s, "Pid"), std::to_string(getpid()));
  EXPECT_EQ(Field(s, "Tgid"), std::to_string(getpid()));
  EXPECT_EQ(Field(s, "PPid"), std::to_string(getppid()));
  uid_t r, e, sv;
  ASSERT_OK(getresuid(&r, &e, &sv));
  EXPECT_EQ(Words(Field(s, "Uid")),
            (std::vector<std::string>{std::to_string(r), std::to_string(e), std::to_string(sv),
                                      std::to_string(e)}));
  gid_t gr, ge, gs;
  ASSERT_OK(getresgid(&gr, &ge, &gs));
  EXPECT_EQ(Words(Field(s, "Gid")),
            (std::vector<std::string>{std::to_string(gr), std::to_string(ge), std::to_string(gs),
                                      std::to_string(ge)}));
}

// Uid/Gid show real, effective, saved and filesystem ids; the fs id follows the effective.
TEST(ProcStatusTest, IdsFollowSetresuid) {
  EXPECT_EQ(InChild([] {
              if (setresgid(11, 12, 13) != 0) return 1;
              if (setresuid(21, 22, 23) != 0) return 2;
              std::string s = ReadFile("/proc/self/status");
              if (Words(Field(s, "Uid")) != std::vector<std::string>{"21", "22", "23", "22"})
                return 3;
              if (Words(Field(s, "Gid")) != std::vector<std::string>{"11", "12", "13", "12"})
                return 4;
              return 0;
            }),
            0);
}

TEST(ProcStatusTest, GroupsFollowSetgroups) {
  EXPECT_EQ(InChild([] {
              gid_t groups[] = {7, 5, 300};
              if (setgroups(3, groups) != 0) return 1;
              auto w = Words(Field(ReadFile("/proc/self/status"), "Groups"));
              std::set<std::string> got(w.begin(), w.end());
              return got == std::set<std::string>{"5", "7", "300"} ? 0 : 2;
            }),
            0);
}

TEST(ProcStatusTest, ThreadsCountsThreads) {
  long base = strtol(Field(Slurp("/proc/self/status"), "Threads").c_str(), nullptr, 10);
  EXPECT_GE(base, 1);
  Threads threads(3);
  ASSERT_EQ(threads.tids().size(), 3u);
  EXPECT_EQ(Field(Slurp("/proc/self/status"), "Threads"), std::to_string(base + 3));
}

TEST(ProcStatusTest, UmaskFollowsUmask) {
  EXPECT_EQ(InChild([] {
              umask(027);
              return Field(ReadFile("/proc/self/status"), "Umask") == "0027" ? 0 : 1;
            }),
            0);
}

// Bit N-1 of the hex masks stands for signal N.
TEST(ProcStatusTest, SigBlkFollowsSigprocmask) {
  EXPECT_EQ(InChild([] {
              sigset_t set;
              sigemptyset(&set);
              sigaddset(&set, SIGUSR1);
              sigaddset(&set, SIGTERM);
              if (sigprocmask(SIG_SETMASK, &set, nullptr) != 0) return 1;
              uint64_t blk = Hex(Field(ReadFile("/proc/self/status"), "SigBlk"));
              uint64_t want = (1ull << (SIGUSR1 - 1)) | (1ull << (SIGTERM - 1));
              return blk == want ? 0 : 2;
            }),
            0);
}

// A signal sent to the thread (tgkill) is pending for it (SigPnd); one sent to the process
// (kill) is shared (ShdPnd).
TEST(ProcStatusTest, SigPndAndShdPndShowPendingSignals) {
  EXPECT_EQ(InChild([] {
              sigset_t set;
              sigemptyset(&set);
              sigaddset(&set, SIGUSR1);
              sigaddset(&set, SIGUSR2);
              if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return 1;
              if (syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1) != 0) return 2;
              if (kill(getpid(), SIGUSR2) != 0) return 3;
              std::string s = ReadFile("/proc/self/status");
              if (Hex(Field(s, "SigPnd")) != 1ull << (SIGUSR1 - 1)) return 4;
              if (Hex(Field(s, "ShdPnd")) != 1ull << (SIGUSR2 - 1)) return 5;
              return 0;
            }),
            0);
}

void OnSignal(int) {}

TEST(ProcStatusTest, SigIgnAndSigCgtFollowSigaction) {
  EXPECT_EQ(InChild([] {
              struct sigaction ign {
              }, catcher{}, dfl{};
              ign.sa_handler = SIG_IGN;
              catcher.sa_handler = OnSignal;
              dfl.sa_handler = SIG_DFL;
              // Start from a known state for the signals looked at.
              for (int sig : {SIGUSR1, SIGUSR2, SIGHUP}) sigaction(sig, &dfl, nullptr);
              if (sigaction(SIGUSR1, &ign, nullptr) != 0) return 1;
              if (sigaction(SIGUSR2, &catcher, nullptr) != 0) return 2;
              std::string s = ReadFile("/proc/self/status");
              if (Field(s, "SigIgn").empty() || Field(s, "SigCgt").empty()) return 3;
              uint64_t ign_mask = Hex(Field(s, "SigIgn")), cgt = Hex(Field(s, "SigCgt"));
              const uint64_t usr1 = 1ull << (SIGUSR1 - 1), usr2 = 1ull << (SIGUSR2 - 1),
                             hup = 1ull << (SIGHUP - 1);
              if ((ign_mask & (usr1 | usr2 | hup)) != usr1) return 4;
              if ((cgt & (usr1 | usr2 | hup)) != usr2) return 5;
              return 0;
            }),
            0);
}

TEST(ProcStatusTest, CapabilitiesMatchCapget) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  ASSERT_OK(syscall(SYS_capget, &hdr, data));
  auto join = [](uint32_t lo, uint32_t hi) { return (static_cast<uint64_t>(hi) << 32) | lo; };
  std::string s = Slurp("/proc/self/status");
  EXPECT_EQ(Hex(Field(s, "CapEff")), join(data[0].effective, data[1].effective));
  EXPECT_EQ(Hex(Field(s, "CapPrm")), join(data[0].permitted, data[1].permitted));
  EXPECT_EQ(Hex(Field(s, "CapInh")), join(data[0].inheritable, data[1].inheritable));
  EXPECT_EQ(Field(s, "CapEff").size(), 16u);
}

TEST(ProcStatusTest, NoNewPrivsFollowsPrctl) {
  EXPECT_EQ(Field(Slurp("/proc/self/status"), "NoNewPrivs"),
            std::to_string(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)));
  EXPECT_EQ(InChild([] {
              if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 1;
              return Field(ReadFile("/proc/self/status"), "NoNewPrivs") == "1" ? 0 : 2;
            }),
            0);
}

// The VmXxx lines (in kB) that memory tools and runtimes read; peaks bound current values.
TEST(ProcStatusTest, VmLinesDescribeTheAddressSpace) {
  std::string s = Slurp("/proc/self/status");
  for (const char* key : {"VmPeak", "VmSize", "VmHWM", "VmRSS", "VmData", "VmStk", "VmExe", "VmLib",
                          "VmPTE", "RssAnon", "RssFile"}) {
    EXPECT_GE(Kb(s, key), 0) << key << " in\n" << s;
  }
  EXPECT_GT(Kb(s, "VmSize"), 0);
  EXPECT_GE(Kb(s, "VmPeak"), Kb(s, "VmSize"));
  EXPECT_GE(Kb(s, "VmHWM"), Kb(s, "VmRSS"));
  EXPECT_LE(Kb(s, "VmRSS"), Kb(s, "VmSize"));
}

// Cpus_allowed_list is the affinity mask as a CPU list (what nproc-like code parses).
TEST(ProcStatusTest, CpusAllowedListMatchesAffinity) {
  cpu_set_t set;
  ASSERT_OK(sched_getaffinity(0, sizeof(set), &set));
  std::string list = Field(Slurp("/proc/self/status"), "Cpus_allowed_list");
  ASSERT_FALSE(list.empty());
  cpu_set_t shown;
  CPU_ZERO(&shown);
  std::stringstream ss(list);
  for (std::string part; std::getline(ss, part, ',');) {
    int lo = 0, hi = 0;
    int n = sscanf(part.c_str(), "%d-%d", &lo, &hi);
    ASSERT_GE(n, 1) << list;
    if (n == 1) hi = lo;
    for (int c = lo; c <= hi; ++c) CPU_SET(c, &shown);
  }
  EXPECT_TRUE(CPU_EQUAL(&set, &shown)) << list;
}

// A traced process shows its tracer's pid (what anti-debugging checks and gdb look at).
TEST(ProcStatusTest, TracerPidShowsTheTracer) {
  EXPECT_EQ(Field(Slurp("/proc/self/status"), "TracerPid"), "0");
  Child child([] {
    if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(1);
    raise(SIGSTOP);
  });
  int status = 0;
  ASSERT_EQ(waitpid(child.pid(), &status, 0), child.pid());
  ASSERT_TRUE(WIFSTOPPED(status)) << Describe(status);
  EXPECT_EQ(Field(Slurp(child.Path("status")), "TracerPid"), std::to_string(getpid()));
}

// ---------------------------------------------------------------------------------------
// /proc/<pid>/statm

TEST(ProcStatmTest, SevenCountsInPages) {
  std::string text = Slurp("/proc/self/statm");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  auto w = Words(text);
  ASSERT_EQ(w.size(), 7u) << text;
  std::vector<long> v;
  v.reserve(w.size());
  for (auto& x : w) v.push_back(strtol(x.c_str(), nullptr, 10));
  // size resident shared text lib data dt
  EXPECT_GT(v[0], 0);
  EXPECT_GT(v[1], 0);
  EXPECT_GE(v[0], v[1]);
  EXPECT_GE(v[1], v[2]);
  EXPECT_GT(v[3], 0);
  EXPECT_EQ(v[4], 0);  // always 0 since Linux 2.6
  EXPECT_GT(v[5], 0);
  EXPECT_EQ(v[6], 0);
}

// Reads `path` into `buf` without allocating (the address space must not change between two
// reads); returns the length.
size_t ReadInto(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t len = 0;
  for (ssize_t n; len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0;) len += n;
  close(fd);
  buf[len] = '\0';
  return len;
}

// statm's size is the address space in pages: the sum of the mappings maps lists (but for
// [vsyscall], which is no mapping of the process).
TEST(ProcStatmTest, SizeIsTheSumOfTheMappings) {
  static char maps_buf[1 << 18], statm_buf[256];
  ASSERT_GT(ReadInto("/proc/self/maps", maps_buf, sizeof(maps_buf)), 0u);
  ASSERT_GT(ReadInto("/proc/self/statm", statm_buf, sizeof(statm_buf)), 0u);
  uintptr_t total = 0;
  for (const auto& line : Lines(maps_buf)) {
    Mapping m;
    ASSERT_TRUE(ParseMapping(line, &m)) << line;
    if (m.path != "[vsyscall]") total += m.end - m.start;
  }
  EXPECT_EQ(strtoul(statm_buf, nullptr, 10), total / kPage) << maps_buf;
}

TEST(ProcStatmTest, ResidentGrowsWhenPagesAreTouched) {
  const size_t pages = 2048;
  void* p =
      mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  madvise(p, pages * kPage, MADV_NOHUGEPAGE);
  auto resident = [] {
    auto w = Words(Slurp("/proc/self/statm"));
    return w.size() >= 2 ? strtol(w[1].c_str(), nullptr, 10) : -1;
  };
  long before = resident();
  ASSERT_GT(before, 0);
  for (size_t i = 0; i < pages; ++i) static_cast<volatile char*>(p)[i * kPage] = 1;
  long after = resident();
  // The kernel's counters are per-CPU and approximate: ask for half of what was touched.
  EXPECT_GE(after - before, static_cast<long>(pages / 2));
  munmap(p, pages * kPage);
}

// ---------------------------------------------------------------------------------------
// /proc/<pid>/{cmdline,environ,exe} of an exec'd program

// Forks and execs /bin/cat with argv and envp; cat reads its stdin (a pipe held open by
// `stdin_w`), so it stays alive until that is closed. Returns once exec has succeeded.
pid_t SpawnCat(const std::vector<const char*>& argv, const std::vector<const char*>& envp,
               Fd* stdin_w) {
  Pipe in = MakePipe(O_CLOEXEC);
  Pipe exec_status = MakePipe(O_CLOEXEC);
  std::vector<char*> args, env;
  for (const char* a : argv) args.push_back(const_cast<char*>(a));
  args.push_back(nullptr);
  for (const char* e : envp) env.push_back(const_cast<char*>(e));
  env.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (dup2(in.r.get(), 0) < 0 || null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) _exit(126);
    execve("/bin/cat", args.data(), env.data());
    int err = errno;
    (void)!write(exec_status.w.get(), &err, sizeof(err));
    _exit(127);
  }
  exec_status.w.Reset();
  int err = 0;
  // EOF: the close-on-exec write end went away with a successful exec.
  EXPECT_EQ(read(exec_status.r.get(), &err, sizeof(err)), 0) << "exec: " << ErrnoName(err);
  *stdin_w = std::move(in.w);
  return pid;
}

TEST(ProcExecTest, CmdlineEnvironAndExeAreTheExecs) {
  Fd stdin_w;
  pid_t pid = SpawnCat({"cat", "-", "two words", ""}, {"A=1", "B=x y", "EMPTY="}, &stdin_w);
  ASSERT_GT(pid, 0);
  std::string dir = "/proc/" + std::to_string(pid) + "/";
  EXPECT_EQ(Slurp(dir + "cmdline"), std::string("cat\0-\0two words\0\0", 17));
  EXPECT_EQ(Slurp(dir + "environ"), std::string("A=1\0B=x y\0EMPTY=\0", 17));
  EXPECT_EQ(Readlink(dir + "exe"), RealPath("/bin/cat"));
  EXPECT_EQ(Field(Slurp(dir + "status"), "Name"), "cat");
  stdin_w.Reset();
  int status = Wait(pid);
  EXPECT_TRUE(WIFEXITED(status)) << Describe(status);
}

TEST(ProcExecTest, EmptyEnvironmentReadsEmpty) {
  Fd stdin_w;
  pid_t pid = SpawnCat({"cat"}, {}, &stdin_w);
  ASSERT_GT(pid, 0);
  std::string dir = "/proc/" + std::to_string(pid) + "/";
  EXPECT_EQ(Slurp(dir + "cmdline"), std::string("cat\0", 4));
  EXPECT_EQ(Slurp(dir + "environ"), "");
  stdin_w.Reset();
  EXPECT_TRUE(ExitedWith(Wait(pid), 0));
}

// A program may read these files in small pieces: the pieces make up the whole.
TEST(ProcExecTest, SmallReadsMakeUpTheWhole) {
  for (const char* path : {"/proc/self/cmdline", "/proc/self/environ", "/proc/self/auxv"}) {
    std::string whole = Slurp(path);
    Fd fd(open(path, O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid()) << path;
    std::string pieces;
    char buf[7];
    for (ssize_t n; (n = read(fd.get(), buf, sizeof(buf))) > 0;) pieces.append(buf, n);
    EXPECT_EQ(pieces, whole) << path;
  }
}

// ---------------------------------------------------------------------------------------
// /proc/<pid>/auxv

std::map<uint64_t, uint64_t> Auxv() {
  std::string aux = Slurp("/proc/self/auxv");
  std::map<uint64_t, uint64_t> out;
  for (size_t at = 0; at + 16 <= aux.size(); at += 16) {
    uint64_t pair[2];
    memcpy(pair, aux.data() + at, 16);
    if (pair[0] == AT_NULL) break;
    out[pair[0]] = pair[1];
  }
  return out;
}

TEST(ProcAuxvTest, EveryEntryMatchesGetauxval) {
  auto aux = Auxv();
  ASSERT_FALSE(aux.empty());
  for (auto [type, value] : aux) {
    // glibc answers AT_HWCAP on x86-64 from its own reading of cpuid.
    if (type == AT_HWCAP) continue;
    EXPECT_EQ(getauxval(type), value) << "AT_" << type;
  }
  for (unsigned long type :
       {AT_PAGESZ, AT_ENTRY, AT_PHDR, AT_RANDOM, AT_CLKTCK, AT_EXECFN, AT_SYSINFO_EHDR}) {
    EXPECT_TRUE(aux.count(type)) << "no AT_" << type;
  }
  EXPECT_EQ(aux[AT_PAGESZ], static_cast<uint64_t>(kPage));
  EXPECT_EQ(aux[AT_CLKTCK], static_cast<uint64_t>(sysconf(_SC_CLK_TCK)));
}

TEST(ProcAuxvTest, CredentialsAndSecureMatch) {
  auto aux = Auxv();
  EXPECT_EQ(aux[AT_UID], getuid());
  EXPECT_EQ(aux[AT_EUID], geteuid());
  EXPECT_EQ(aux[AT_GID], getgid());
  EXPECT_EQ(aux[AT_EGID], getegid());
  ASSERT_TRUE(aux.count(AT_SECURE));
  EXPECT_EQ(aux[AT_SECURE], 0u);
}

// ---------------------------------------------------------------------------------------
// /proc/<pid>/maps

TEST(ProcMapsTest, AnonymousMappingSplitsOnMprotect) {
  char* p =
      static_cast<char*>(mmap(nullptr, 3 * kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  auto start = reinterpret_cast<uintptr_t>(p);
  auto maps = Maps();
  const Mapping* m = Find(maps, start);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->perms, "r--p");
  EXPECT_EQ(Hex(m->offset), 0u);
  EXPECT_EQ(m->dev, "00:00");
  EXPECT_EQ(m->inode, "0");
  EXPECT_LE(m->start, start);
  EXPECT_GE(m->end, start + 3 * kPage);
  ASSERT_OK(mprotect(p + kPage, kPage, PROT_READ | PROT_WRITE));
  ASSERT_OK(mprotect(p + 2 * kPage, kPage, PROT_NONE));
  maps = Maps();
  const Mapping* a = Find(maps, start);
  const Mapping* b = Find(maps, start + kPage);
  const Mapping* c = Find(maps, start + 2 * kPage);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->perms, "r--p");
  EXPECT_EQ(a->end, start + kPage);
  EXPECT_EQ(b->perms, "rw-p");
  EXPECT_EQ(b->start, start + kPage);
  EXPECT_EQ(b->end, start + 2 * kPage);
  EXPECT_EQ(c->perms, "---p");
  EXPECT_EQ(c->start, start + 2 * kPage);
  munmap(p, 3 * kPage);
}

TEST(ProcMapsTest, FileMappingShowsPathOffsetAndInode) {
  TempDir dir;
  std::string path = dir.Join("mapped");
  ASSERT_TRUE(WriteFile(path, std::string(3 * kPage, 'm')));
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  void* p = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(), kPage);
  ASSERT_NE(p, MAP_FAILED);
  auto maps = Maps();
  const Mapping* m = Find(maps, reinterpret_cast<uintptr_t>(p));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->perms, "r--s");
  EXPECT_EQ(Hex(m->offset), static_cast<uint64_t>(kPage));
  EXPECT_EQ(m->path, RealPath(path));
  EXPECT_NE(m->inode, "0");
  unsigned maj = 0, min = 0;
  EXPECT_EQ(sscanf(m->dev.c_str(), "%x:%x", &maj, &min), 2) << m->dev;
  // Private writable mappings show 'p' and keep the offset.
  void* q = mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  ASSERT_NE(q, MAP_FAILED);
  maps = Maps();
  m = Find(maps, reinterpret_cast<uintptr_t>(q));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->perms, "rw-p");
  EXPECT_EQ(Hex(m->offset), 0u);
  EXPECT_EQ(m->path, RealPath(path));
  munmap(p, kPage);
  munmap(q, 2 * kPage);
}

TEST(ProcMapsTest, UnlinkedFileIsMarkedDeleted) {
  TempDir dir;
  std::string path = dir.Join("gone");
  ASSERT_TRUE(WriteFile(path, std::string(kPage, 'g')));
  std::string real = RealPath(path);
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  void* p = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_OK(unlink(path.c_str()));
  auto maps = Maps();
  const Mapping* m = Find(maps, reinterpret_cast<uintptr_t>(p));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->path, real + " (deleted)");
  munmap(p, kPage);
}

TEST(ProcMapsTest, MappingsAreSortedDisjointAndPageAligned) {
  auto maps = Maps();
  ASSERT_GT(maps.size(), 3u);
  for (size_t i = 0; i < maps.size(); ++i) {
    const Mapping& m = maps[i];
    EXPECT_LT(m.start, m.end);
    EXPECT_EQ(m.start % kPage, 0u);
    EXPECT_EQ(m.end % kPage, 0u);
    EXPECT_EQ(m.perms.size(), 4u);
    EXPECT_TRUE(m.perms[3] == 'p' || m.perms[3] == 's') << m.perms;
    if (i > 0) {
      EXPECT_LE(maps[i - 1].end, m.start);
    }
  }
}

// The vDSO the kernel announced in AT_SYSINFO_EHDR is the [vdso] mapping.
TEST(ProcMapsTest, VdsoIsAtTheAuxvAddress) {
  uintptr_t ehdr = getauxval(AT_SYSINFO_EHDR);
  ASSERT_NE(ehdr, 0u);
  auto maps = Maps();
  const Mapping* m = Find(maps, ehdr);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->path, "[vdso]");
  EXPECT_EQ(m->start, ehdr);
  EXPECT_NE(m->perms.find('x'), std::string::npos);
}

// glibc's pthread_getattr_np finds the main thread's stack through [stack].
TEST(ProcMapsTest, StackHoldsALocalVariable) {
  int local = 0;
  auto maps = Maps();
  const Mapping* m = Find(maps, reinterpret_cast<uintptr_t>(&local));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->path, "[stack]");
  EXPECT_EQ(m->perms, "rw-p");
}

// The program break lies in [heap] once the heap has grown.
TEST(ProcMapsTest, HeapHoldsTheBreak) {
  void* old_brk = sbrk(0);
  ASSERT_NE(sbrk(4 * kPage), reinterpret_cast<void*>(-1));
  auto top = reinterpret_cast<uintptr_t>(sbrk(0));
  auto maps = Maps();
  const Mapping* m = Find(maps, top - 1);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->path, "[heap]");
  EXPECT_EQ(m->perms, "rw-p");
  EXPECT_EQ(m->end, (top + kPage - 1) / kPage * kPage);
  ASSERT_NE(sbrk(-4 * kPage), reinterpret_cast<void*>(-1));
  EXPECT_EQ(sbrk(0), old_brk);
}

// ---------------------------------------------------------------------------------------
// /proc/<pid>/smaps

struct SmapsEntry {
  Mapping m;
  std::string body;
};

std::vector<SmapsEntry> Smaps() {
  std::vector<SmapsEntry> out;
  for (const auto& line : Lines(Slurp("/proc/self/smaps"))) {
    Mapping m;
    // Header lines start with the range ("start-end perms ..."); the rest are "Key: value".
    size_t colon = line.find(':'), dash = line.find('-');
    if (dash != std::string::npos && (colon == std::string::npos || dash < colon) &&
        ParseMapping(line, &m)) {
      out.push_back({m, ""});
    } else if (!out.empty()) {
      out.back().body += line + "\n";
    }
  }
  return out;
}

TEST(ProcSmapsTest, EveryMappingHasSizeAndRss) {
  auto smaps = Smaps();
  ASSERT_GT(smaps.size(), 3u);
  for (const auto& e : smaps) {
    EXPECT_EQ(Kb(e.body, "Size"), static_cast<long>((e.m.end - e.m.start) / 1024))
        << e.m.path << "\n"
        << e.body;
    EXPECT_GE(Kb(e.body, "Rss"), 0) << e.m.path;
    EXPECT_GE(Kb(e.body, "Pss"), 0) << e.m.path;
    EXPECT_LE(Kb(e.body, "Rss"), Kb(e.body, "Size")) << e.m.path;
    EXPECT_FALSE(Field(e.body, "VmFlags").empty()) << e.m.path;
  }
  // The same mappings as maps, in the same order (the program allocates nothing mapped in
  // between: compare the executable's mappings, which do not move).
  std::string exe = Readlink("/proc/self/exe");
  std::vector<uintptr_t> from_maps, from_smaps;
  for (const auto& m : Maps()) {
    if (m.path == exe) from_maps.push_back(m.start);
  }
  for (const auto& e : smaps) {
    if (e.m.path == exe) from_smaps.push_back(e.m.start);
  }
  EXPECT_FALSE(from_maps.empty());
  EXPECT_EQ(from_maps, from_smaps);
}

TEST(ProcSmapsTest, RssCountsTouchedPages) {
  const size_t pages = 16;
  char* p = static_cast<char*>(
      mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  madvise(p, pages * kPage, MADV_NOHUGEPAGE);
  for (size_t i = 0; i < 4; ++i) p[i * 2 * kPage] = 1;  // 4 of the 16 pages
  bool found = false;
  for (const auto& e : Smaps()) {
    if (e.m.start != reinterpret_cast<uintptr_t>(p)) continue;
    found = true;
    EXPECT_EQ(Kb(e.body, "Size"), static_cast<long>(pages * kPage / 1024));
    EXPECT_EQ(Kb(e.body, "Rss"), static_cast<long>(4 * kPage / 1024)) << e.body;
    EXPECT_EQ(Kb(e.body, "Anonymous"), static_cast<long>(4 * kPage / 1024)) << e.body;
  }
  EXPECT_TRUE(found);
  munmap(p, pages * kPage);
}

// ---------------------------------------------------------------------------------------
// /proc/<pid>/limits

struct LimitRow {
  const char* name;
  int resource;
};
constexpr LimitRow kLimitRows[] = {
    {"Max cpu time", RLIMIT_CPU},
    {"Max file size", RLIMIT_FSIZE},
    {"Max data size", RLIMIT_DATA},
    {"Max stack size", RLIMIT_STACK},
    {"Max core file size", RLIMIT_CORE},
    {"Max resident set", RLIMIT_RSS},
    {"Max processes", RLIMIT_NPROC},
    {"Max open files", RLIMIT_NOFILE},
    {"Max locked memory", RLIMIT_MEMLOCK},
    {"Max address space", RLIMIT_AS},
    {"Max file locks", RLIMIT_LOCKS},
    {"Max pending signals", RLIMIT_SIGPENDING},
    {"Max msgqueue size", RLIMIT_MSGQUEUE},
    {"Max nice priority", RLIMIT_NICE},
    {"Max realtime priority", RLIMIT_RTPRIO},
    {"Max realtime timeout", RLIMIT_RTTIME},
};

std::string LimitText(rlim_t v) { return v == RLIM_INFINITY ? "unlimited" : std::to_string(v); }

// Checks every row of a limits text against getrlimit; returns the rows matched.
int CheckLimits(const std::string& text) {
  auto lines = Lines(text);
  EXPECT_FALSE(lines.empty());
  if (lines.empty()) return 0;
  EXPECT_EQ(lines[0].rfind("Limit", 0), 0u) << lines[0];
  int matched = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    // The name fills the first 25 columns; the soft and hard limits follow.
    const std::string& line = lines[i];
    std::string name = line.substr(0, std::min<size_t>(25, line.size()));
    name = name.substr(0, name.find_last_not_of(' ') + 1);
    auto w = Words(line.size() > 25 ? line.substr(25) : "");
    for (const auto& row : kLimitRows) {
      if (name != row.name) continue;
      rlimit rl;
      getrlimit(row.resource, &rl);
      EXPECT_GE(w.size(), 2u) << line;
      if (w.size() < 2) continue;
      EXPECT_EQ(w[0], LimitText(rl.rlim_cur)) << line;
      EXPECT_EQ(w[1], LimitText(rl.rlim_max)) << line;
      ++matched;
    }
  }
  return matched;
}

TEST(ProcLimitsTest, EveryRowMatchesGetrlimit) {
  EXPECT_EQ(CheckLimits(Slurp("/proc/self/limits")), 16);
}

TEST(ProcLimitsTest, FollowsSetrlimitAndShowsUnlimited) {
  rlimit cpu;
  ASSERT_OK(getrlimit(RLIMIT_CPU, &cpu));
  if (cpu.rlim_max != RLIM_INFINITY) GTEST_SKIP() << "RLIMIT_CPU has a hard limit here";
  EXPECT_EQ(
      InChild([] {
        rlimit cpu;
        getrlimit(RLIMIT_CPU, &cpu);
        cpu.rlim_cur = 1000;
        if (setrlimit(RLIMIT_CPU, &cpu) != 0) return 1;
        rlimit nofile;
        getrlimit(RLIMIT_NOFILE, &nofile);
        nofile.rlim_cur = 77;
        if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) return 2;
        std::string text = ReadFile("/proc/self/limits");
        bool ok = false;
        for (const auto& line : Lines(text)) {
          if (line.rfind("Max cpu time", 0) == 0) {
            ok = Words(line.substr(25)) == std::vector<std::string>{"1000", "unlimited", "seconds"};
          }
        }
        if (!ok) return 3;
        if (text.find("Max open files            77 ") == std::string::npos) return 4;
        return CheckLimits(text) == 16 ? 0 : 5;
      }),
      0);
}

// ---------------------------------------------------------------------------------------
// oom_score_adj, oom_score, oom_adj, coredump_filter

// Raising it is always allowed; lowering it back to where it was too (below that needs
// CAP_SYS_RESOURCE in the initial user namespace).
TEST(ProcOomTest, ScoreAdjRoundTrips) {
  EXPECT_EQ(InChild([] {
              std::string initial = ReadFile("/proc/self/oom_score_adj");
              if (initial.empty() || initial.back() != '\n') return 1;
              if (WriteProc("/proc/self/oom_score_adj", "500\n") != 0) return 2;
              if (ReadFile("/proc/self/oom_score_adj") != "500\n") return 3;
              if (WriteProc("/proc/self/oom_score_adj", "1000") != 0) return 4;
              if (ReadFile("/proc/self/oom_score_adj") != "1000\n") return 5;
              if (WriteProc("/proc/self/oom_score_adj", initial) != 0) return 6;
              return ReadFile("/proc/self/oom_score_adj") == initial ? 0 : 7;
            }),
            0);
}

TEST(ProcOomTest, ScoreAdjOutsideTheRangeIsEINVAL) {
  EXPECT_EQ(InChild([] {
              if (WriteProc("/proc/self/oom_score_adj", "1001") != EINVAL) return 1;
              if (WriteProc("/proc/self/oom_score_adj", "-1001") != EINVAL) return 2;
              if (WriteProc("/proc/self/oom_score_adj", "many") != EINVAL) return 3;
              std::string v = ReadFile("/proc/self/oom_score_adj");
              long n = strtol(v.c_str(), nullptr, 10);
              return !v.empty() && n >= -1000 && n <= 1000 ? 0 : 4;
            }),
            0);
}

// oom_adj is the old scale (-17..15) of the same setting: oom_score_adj * 17 / 1000, at most
// 15. oom_score rises with oom_score_adj.
TEST(ProcOomTest, OomAdjAndScoreFollowScoreAdj) {
  EXPECT_EQ(InChild([] {
              std::string low_text = ReadFile("/proc/self/oom_score");
              if (low_text.empty() || low_text.back() != '\n') return 1;
              long low = strtol(low_text.c_str(), nullptr, 10);
              if (WriteProc("/proc/self/oom_score_adj", "500") != 0) return 2;
              if (ReadFile("/proc/self/oom_adj") != "8\n") return 3;
              if (WriteProc("/proc/self/oom_score_adj", "1000") != 0) return 4;
              if (ReadFile("/proc/self/oom_adj") != "15\n") return 5;
              long high = strtol(ReadFile("/proc/self/oom_score").c_str(), nullptr, 10);
              return low >= 0 && high > low ? 0 : 6;
            }),
            0);
}

TEST(ProcCoredumpFilterTest, ReadsEightHexDigitsAndRoundTrips) {
  EXPECT_EQ(InChild([] {
              std::string v = ReadFile("/proc/self/coredump_filter");
              if (v.size() != 9 || v.back() != '\n') return 1;
              if (v.find_first_not_of("0123456789abcdef") != 8) return 2;
              if (WriteProc("/proc/self/coredump_filter", "0x23\n") != 0) return 3;
              if (ReadFile("/proc/self/coredump_filter") != "00000023\n") return 4;
              // Inherited over fork.
              return InChild([] {
                       return ReadFile("/proc/self/coredump_filter") == "00000023\n" ? 0 : 1;
                     }) == 0
                         ? 0
                         : 5;
            }),
            0);
}

// ---------------------------------------------------------------------------------------
// comm

TEST(ProcCommTest, WriteRenamesTheThread) {
  EXPECT_EQ(InChild([] {
              if (WriteProc("/proc/self/comm", "renamed") != 0) return 1;
              if (ReadFile("/proc/self/comm") != "renamed\n") return 2;
              char name[16] = {};
              prctl(PR_GET_NAME, name);
              if (std::string(name) != "renamed") return 3;
              auto f = StatFields(ReadFile("/proc/self/stat"));
              if (f.size() < 2 || f[1] != "renamed") return 4;
              return Field(ReadFile("/proc/self/status"), "Name") == "renamed" ? 0 : 5;
            }),
            0);
}

// TASK_COMM_LEN is 16: the name keeps 15 bytes; write(2) still reports the whole count.
TEST(ProcCommTest, LongNamesAreCutToFifteenBytes) {
  EXPECT_EQ(InChild([] {
              const std::string name = "abcdefghijklmnopqrstuvwxyz";
              Fd fd(open("/proc/self/comm", O_WRONLY | O_CLOEXEC));
              if (!fd.valid()) return 1;
              if (write(fd.get(), name.data(), name.size()) != static_cast<ssize_t>(name.size()))
                return 2;
              return ReadFile("/proc/self/comm") == "abcdefghijklmno\n" ? 0 : 3;
            }),
            0);
}

TEST(ProcCommTest, PrctlNameShowsInComm) {
  EXPECT_EQ(InChild([] {
              if (prctl(PR_SET_NAME, "via-prctl") != 0) return 1;
              return ReadFile("/proc/self/comm") == "via-prctl\n" ? 0 : 2;
            }),
            0);
}

// pthread_setname_np on another thread writes /proc/self/task/<tid>/comm: each thread has
// its own name.
TEST(ProcCommTest, EachThreadHasItsOwnName) {
  std::string own = Slurp("/proc/self/comm");
  Threads threads(1);
  ASSERT_EQ(threads.tids().size(), 1u);
  ASSERT_EQ(pthread_setname_np(threads.handle(0), "worker-7"), 0);
  std::string path = "/proc/self/task/" + std::to_string(threads.tids()[0]) + "/comm";
  EXPECT_EQ(Slurp(path), "worker-7\n");
  char name[16] = {};
  EXPECT_EQ(pthread_getname_np(threads.handle(0), name, sizeof(name)), 0);
  EXPECT_STREQ(name, "worker-7");
  EXPECT_EQ(Slurp("/proc/self/comm"), own);
}

// ---------------------------------------------------------------------------------------
// fdinfo

std::string Fdinfo(int fd) { return Slurp("/proc/self/fdinfo/" + std::to_string(fd)); }

TEST(ProcFdinfoTest, PosFollowsLseekAndReads) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Join("f"), std::string(1000, 'x')));
  Fd fd(open(dir.Join("f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(Field(Fdinfo(fd.get()), "pos"), "0");
  ASSERT_EQ(lseek(fd.get(), 123, SEEK_SET), 123);
  EXPECT_EQ(Field(Fdinfo(fd.get()), "pos"), "123");
  char buf[10];
  ASSERT_EQ(read(fd.get(), buf, sizeof(buf)), 10);
  EXPECT_EQ(Field(Fdinfo(fd.get()), "pos"), "133");
}

// flags: the open flags in octal, with O_CLOEXEC when the descriptor has FD_CLOEXEC.
TEST(ProcFdinfoTest, FlagsShowAccessModeAppendAndCloexec) {
  TempDir dir;
  Fd fd(open(dir.Join("f").c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  const long mask = O_ACCMODE | O_APPEND | O_CLOEXEC | O_NONBLOCK;
  auto flags = [&] {
    std::string v = Field(Fdinfo(fd.get()), "flags");
    EXPECT_EQ(v.rfind('0', 0), 0u) << "not octal: " << v;
    return strtol(v.c_str(), nullptr, 8) & mask;
  };
  EXPECT_EQ(flags(), O_RDWR | O_APPEND | O_CLOEXEC);
  ASSERT_OK(fcntl(fd.get(), F_SETFD, 0));
  EXPECT_EQ(flags(), O_RDWR | O_APPEND);
  ASSERT_OK(fcntl(fd.get(), F_SETFL, O_NONBLOCK));
  EXPECT_EQ(flags(), O_RDWR | O_NONBLOCK);
  Fd wr(open(dir.Join("f").c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(wr.valid());
  EXPECT_EQ(strtol(Field(Fdinfo(wr.get()), "flags").c_str(), nullptr, 8) & mask,
            O_WRONLY | O_CLOEXEC);
}

// mnt_id is the mount's id in mountinfo (and statx's stx_mnt_id); ino is the inode number.
TEST(ProcFdinfoTest, MntIdAndInoIdentifyTheFile) {
  Pipe p = MakePipe(O_CLOEXEC);
  struct stat st;
  ASSERT_OK(fstat(p.r.get(), &st));
  EXPECT_EQ(Field(Fdinfo(p.r.get()), "ino"), std::to_string(st.st_ino));
  Fd fd(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  struct statx stx {};
  ASSERT_OK(statx(fd.get(), "", AT_EMPTY_PATH, STATX_MNT_ID, &stx));
  ASSERT_TRUE(stx.stx_mask & STATX_MNT_ID);
  std::string mnt_id = Field(Fdinfo(fd.get()), "mnt_id");
  EXPECT_EQ(mnt_id, std::to_string(stx.stx_mnt_id));
  bool listed = false;
  for (const auto& line : Lines(Slurp("/proc/self/mountinfo"))) {
    auto w = Words(line);
    if (w.size() > 4 && w[0] == mnt_id) {
      listed = w[4] == "/proc";
    }
  }
  EXPECT_TRUE(listed) << "mount " << mnt_id << " is not /proc";
}

std::set<std::string> Names(const char* path) {
  std::set<std::string> out;
  DIR* d = opendir(path);
  if (d == nullptr) {
    ADD_FAILURE() << "opendir " << path << ": " << ErrnoName(errno);
    return out;
  }
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) out.insert(e->d_name);
  }
  closedir(d);
  return out;
}

TEST(ProcFdinfoTest, ListsTheOpenDescriptorsOnly) {
  Pipe p = MakePipe(O_CLOEXEC);
  auto fds = Names("/proc/self/fd");
  auto infos = Names("/proc/self/fdinfo");
  EXPECT_EQ(fds, infos);
  EXPECT_TRUE(infos.count(std::to_string(p.w.get())));
  int closed = p.w.get();
  p.w.Reset();
  std::string path = "/proc/self/fdinfo/" + std::to_string(closed);
  EXPECT_ERRNO(open(path.c_str(), O_RDONLY | O_CLOEXEC), ENOENT);
}

// ---------------------------------------------------------------------------------------
// mounts and mountinfo

TEST(ProcMountsTest, MountsAndMountinfoListTheSameMountPoints) {
  std::vector<std::string> from_mounts, from_info;
  for (const auto& line : Lines(Slurp("/proc/self/mounts"))) {
    auto w = Words(line);
    ASSERT_EQ(w.size(), 6u) << line;  // fstab(5): spec file vfstype mntops freq passno
    EXPECT_EQ(w[4], "0");
    EXPECT_EQ(w[5], "0");
    from_mounts.push_back(w[1]);
  }
  for (const auto& line : Lines(Slurp("/proc/self/mountinfo"))) {
    auto w = Words(line);
    ASSERT_GE(w.size(), 10u) << line;
    from_info.push_back(w[4]);
  }
  EXPECT_FALSE(from_mounts.empty());
  EXPECT_EQ(from_mounts, from_info);
}

// ---------------------------------------------------------------------------------------
// /proc/<pid>/mem

TEST(ProcMemTest, PreadReadsOwnMemory) {
  static const char kSecret[] = "the quick brown fox";
  Fd fd(open("/proc/self/mem", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  char buf[sizeof(kSecret)] = {};
  ASSERT_EQ(pread(fd.get(), buf, sizeof(buf), reinterpret_cast<off_t>(kSecret)),
            static_cast<ssize_t>(sizeof(buf)))
      << ErrnoName(errno);
  EXPECT_STREQ(buf, kSecret);
  // And through lseek + read.
  ASSERT_EQ(lseek(fd.get(), reinterpret_cast<off_t>(kSecret) + 4, SEEK_SET),
            reinterpret_cast<off_t>(kSecret) + 4);
  ASSERT_EQ(read(fd.get(), buf, 5), 5);
  EXPECT_EQ(std::string(buf, 5), "quick");
}

// Writes go through page protections (FOLL_FORCE): that is how debuggers plant breakpoints.
TEST(ProcMemTest, PwriteWritesOwnMemoryEvenReadOnly) {
  Fd fd(open("/proc/self/mem", O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  volatile long value = 1;
  long two = 2;
  ASSERT_EQ(pwrite(fd.get(), &two, sizeof(two), reinterpret_cast<off_t>(&value)),
            static_cast<ssize_t>(sizeof(two)))
      << ErrnoName(errno);
  EXPECT_EQ(value, 2);
  char* ro =
      static_cast<char*>(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(ro, MAP_FAILED);
  ASSERT_EQ(pwrite(fd.get(), "forced", 6, reinterpret_cast<off_t>(ro)), 6) << ErrnoName(errno);
  EXPECT_EQ(std::string(ro, 6), "forced");
  munmap(ro, kPage);
}

TEST(ProcMemTest, UnmappedAddressIsEIO) {
  char* p = static_cast<char*>(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_OK(munmap(p, kPage));
  Fd fd(open("/proc/self/mem", O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  char buf[8];
  EXPECT_ERRNO(pread(fd.get(), buf, sizeof(buf), reinterpret_cast<off_t>(p)), EIO);
  EXPECT_ERRNO(pwrite(fd.get(), buf, sizeof(buf), reinterpret_cast<off_t>(p)), EIO);
}

volatile long g_child_value = 100;

TEST(ProcMemTest, ParentReadsAndWritesChildMemory) {
  Pipe ready = MakePipe(O_CLOEXEC), stop = MakePipe(O_CLOEXEC);
  Child child([&] {
    stop.w.Reset();
    g_child_value = 200;  // only in the child's copy
    (void)!write(ready.w.get(), "r", 1);
    char c;
    (void)!read(stop.r.get(), &c, 1);
    _exit(g_child_value == 300 ? 0 : 1);
  });
  ready.w.Reset();
  char c;
  ASSERT_EQ(read(ready.r.get(), &c, 1), 1);
  Fd mem(open(child.Path("mem").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(mem.valid()) << ErrnoName(errno);
  long v = 0;
  const auto at = reinterpret_cast<off_t>(&g_child_value);
  ASSERT_EQ(pread(mem.get(), &v, sizeof(v), at), static_cast<ssize_t>(sizeof(v)));
  EXPECT_EQ(v, 200);
  EXPECT_EQ(g_child_value, 100);
  v = 300;
  ASSERT_EQ(pwrite(mem.get(), &v, sizeof(v), at), static_cast<ssize_t>(sizeof(v)));
  stop.w.Reset();
  EXPECT_TRUE(ExitedWith(child.Reap(), 0));
}

// ---------------------------------------------------------------------------------------
// cwd, root

TEST(ProcLinkTest, CwdFollowsChdir) {
  TempDir dir;
  std::string real = RealPath(dir.path());
  EXPECT_EQ(InChild([&] {
              if (chdir(dir.path().c_str()) != 0) return 1;
              return Readlink("/proc/self/cwd") == real ? 0 : 2;
            }),
            0);
  char cwd[PATH_MAX];
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
  EXPECT_EQ(Readlink("/proc/self/cwd"), cwd);
}

TEST(ProcLinkTest, RemovedCwdIsMarkedDeleted) {
  TempDir dir;
  std::string sub = dir.Join("sub");
  ASSERT_OK(mkdir(sub.c_str(), 0755));
  std::string real = RealPath(sub);
  EXPECT_EQ(InChild([&] {
              if (chdir(sub.c_str()) != 0) return 1;
              if (rmdir(sub.c_str()) != 0) return 2;
              return Readlink("/proc/self/cwd") == real + " (deleted)" ? 0 : 3;
            }),
            0);
}

TEST(ProcLinkTest, RootFollowsChroot) {
  TempDir dir;
  std::string real = RealPath(dir.path());
  EXPECT_EQ(Readlink("/proc/self/root"), "/");
  Pipe ready = MakePipe(O_CLOEXEC), stop = MakePipe(O_CLOEXEC);
  Child child([&] {
    stop.w.Reset();
    if (chroot(dir.path().c_str()) != 0) _exit(1);
    (void)!write(ready.w.get(), "r", 1);
    char c;
    (void)!read(stop.r.get(), &c, 1);
  });
  ready.w.Reset();
  char c;
  ASSERT_EQ(read(ready.r.get(), &c, 1), 1);
  EXPECT_EQ(Readlink(child.Path("root")), real);
  stop.w.Reset();
  EXPECT_TRUE(ExitedWith(child.Reap(), 0));
}

// ---------------------------------------------------------------------------------------
// task/ and thread-self

TEST(ProcTaskTest, ListsEveryThread) {
  Threads threads(3);
  ASSERT_EQ(threads.tids().size(), 3u);
  std::set<std::string> want = {std::to_string(getpid())};
  for (pid_t t : threads.tids()) want.insert(std::to_string(t));
  EXPECT_EQ(Names("/proc/self/task"), want);
}

TEST(ProcTaskTest, ThreadFilesDescribeTheThread) {
  Threads threads(1);
  ASSERT_EQ(threads.tids().size(), 1u);
  const std::string tid = std::to_string(threads.tids()[0]);
  const std::string dir = "/proc/self/task/" + tid + "/";
  std::string s = Slurp(dir + "status");
  EXPECT_EQ(Field(s, "Pid"), tid);
  EXPECT_EQ(Field(s, "Tgid"), std::to_string(getpid()));
  auto f = StatFields(Slurp(dir + "stat"));
  ASSERT_GE(f.size(), 4u);
  EXPECT_EQ(f[0], tid);
  EXPECT_EQ(f[3], std::to_string(getppid()));
  // Threads share the process's maps and executable.
  EXPECT_EQ(Readlink(dir + "exe"), Readlink("/proc/self/exe"));
  EXPECT_FALSE(Slurp(dir + "maps").empty());
}

TEST(ProcTaskTest, ThreadSelfNamesTheCallingThread) {
  std::string seen, want;
  std::thread t([&] {
    seen = Readlink("/proc/thread-self");
    want = std::to_string(getpid()) + "/task/" + std::to_string(gettid());
  });
  t.join();
  EXPECT_EQ(seen, want);
  EXPECT_EQ(Readlink("/proc/thread-self"),
            std::to_string(getpid()) + "/task/" + std::to_string(getpid()));
}

// /proc/<tid> of a thread that is not the leader is reachable but not listed in /proc.
TEST(ProcTaskTest, ThreadIdDirIsReachableButNotListed) {
  Threads threads(1);
  ASSERT_EQ(threads.tids().size(), 1u);
  const std::string tid = std::to_string(threads.tids()[0]);
  struct stat st;
  ASSERT_OK(stat(("/proc/" + tid).c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(Field(Slurp("/proc/" + tid + "/status"), "Tgid"), std::to_string(getpid()));
  auto listed = Names("/proc");
  EXPECT_FALSE(listed.count(tid));
  EXPECT_TRUE(listed.count(std::to_string(getpid())));
}

}  // namespace
}  // namespace husk_test
