// Conformance: the system-wide files programs read to size and describe themselves:
// /proc/sys/{kernel,fs,vm,net}/..., /proc/{meminfo,cpuinfo,stat,uptime,loadavg,version,
// filesystems}, /proc/self/cgroup, and /sys/devices/system/cpu. Values differ between hosts:
// the tests check formats and the relationships with the syscalls that report the same
// limits (setrlimit against nr_open, F_SETPIPE_SZ against pipe-max-size, PR_CAPBSET_READ
// against cap_last_cap, setgroups against ngroups_max, sysinfo against MemTotal, ...).
// Relies on, beyond the start-up set in test_util.h: uname sethostname unshare(CLONE_NEWUTS,
// CLONE_NEWUSER) setgroups setrlimit getrlimit prctl(PR_CAPBSET_READ) capget capset
// pipe2 fcntl(F_SETPIPE_SZ, F_GETPIPE_SZ) sysinfo sched_getaffinity clock_gettime fork;
// files under /proc/sys, /proc, /sys/devices/system/cpu.
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cctype>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

// The whole text of a file; a failure to open it is reported with its errno.
std::string Slurp(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    ADD_FAILURE() << "open " << path << ": " << ErrnoName(errno);
    return "";
  }
  return ReadAll(fd.get());
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

bool IsNumber(const std::string& s, bool allow_sign = false) {
  size_t at = allow_sign && !s.empty() && s[0] == '-' ? 1 : 0;
  if (at >= s.size()) return false;
  for (; at < s.size(); ++at) {
    if (!isdigit(static_cast<unsigned char>(s[at]))) return false;
  }
  return true;
}

// A sysctl file holding one decimal number and a newline (proc_dointvec's format): the
// number, or -1 with a test failure.
long long SysctlNumber(const std::string& path) {
  std::string text = Slurp(path);
  if (text.empty() || text.back() != '\n' || !IsNumber(text.substr(0, text.size() - 1))) {
    ADD_FAILURE() << path << " is not a number and a newline: \"" << text << "\"";
    return -1;
  }
  return strtoll(text.c_str(), nullptr, 10);
}

// The CPUs of a cpulist ("0-3,6,8-9\n").
std::set<int> CpuList(const std::string& text) {
  std::set<int> out;
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, ',');) {
    int lo = 0, hi = 0;
    int n = sscanf(part.c_str(), "%d-%d", &lo, &hi);
    if (n < 1) {
      ADD_FAILURE() << "bad cpulist part \"" << part << "\" in " << text;
      continue;
    }
    if (n == 1) hi = lo;
    for (int c = lo; c <= hi; ++c) out.insert(c);
  }
  return out;
}

// Writes `text` to `path` in one write(2); returns 0 or the errno.
int WriteTo(const std::string& path, const std::string& text) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  ssize_t n = write(fd.get(), text.data(), text.size());
  if (n < 0) return errno;
  return n == static_cast<ssize_t>(text.size()) ? 0 : EIO;
}

// ---------------------------------------------------------------------------------------
// /proc/sys/kernel

TEST(ProcSysKernelTest, PidMaxBoundsPids) {
  long long pid_max = SysctlNumber("/proc/sys/kernel/pid_max");
  EXPECT_GT(pid_max, getpid());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  EXPECT_LT(child, pid_max);
  EXPECT_TRUE(ExitedWith(Wait(child), 0));
}

// glibc's sysconf(_SC_NGROUPS_MAX) reads this file; setgroups takes at most that many.
TEST(ProcSysKernelTest, NgroupsMaxBoundsSetgroups) {
  long long n = SysctlNumber("/proc/sys/kernel/ngroups_max");
  ASSERT_GT(n, 0);
  EXPECT_EQ(n, sysconf(_SC_NGROUPS_MAX));
  EXPECT_EQ(InChild([n] {
              std::vector<gid_t> groups(n + 1, 0);
              errno = 0;
              if (setgroups(n + 1, groups.data()) != -1 || errno != EINVAL) return 1;
              return setgroups(n, groups.data()) == 0 ? 0 : 2;
            }),
            0);
}

TEST(ProcSysKernelTest, OverflowIdsAreSixteenBitIds) {
  long long uid = SysctlNumber("/proc/sys/kernel/overflowuid");
  long long gid = SysctlNumber("/proc/sys/kernel/overflowgid");
  EXPECT_GE(uid, 0);
  EXPECT_LE(uid, 65535);
  EXPECT_GE(gid, 0);
  EXPECT_LE(gid, 65535);
}

// In a new user namespace without mappings, every id shows as the overflow ids.
TEST(ProcSysKernelTest, UnmappedIdsShowAsOverflowIds) {
  long long uid = SysctlNumber("/proc/sys/kernel/overflowuid");
  long long gid = SysctlNumber("/proc/sys/kernel/overflowgid");
  ASSERT_GE(uid, 0);
  ASSERT_GE(gid, 0);
  EXPECT_EQ(InChild([uid, gid] {
              if (unshare(CLONE_NEWUSER) != 0) return 1;
              if (static_cast<long long>(getuid()) != uid) return 2;
              if (static_cast<long long>(getgid()) != gid) return 3;
              return static_cast<long long>(geteuid()) == uid ? 0 : 4;
            }),
            0);
}

TEST(ProcSysKernelTest, OsreleaseOstypeAndVersionMatchUname) {
  struct utsname u;
  ASSERT_OK(uname(&u));
  EXPECT_EQ(Slurp("/proc/sys/kernel/osrelease"), std::string(u.release) + "\n");
  EXPECT_EQ(Slurp("/proc/sys/kernel/ostype"), std::string(u.sysname) + "\n");
  EXPECT_EQ(Slurp("/proc/sys/kernel/version"), std::string(u.version) + "\n");
  EXPECT_EQ(Slurp("/proc/sys/kernel/hostname"), std::string(u.nodename) + "\n");
  EXPECT_EQ(Slurp("/proc/sys/kernel/domainname"), std::string(u.domainname) + "\n");
}

// hostname is the UTS namespace's: sethostname shows in it, and writing it sets the name
// uname reports.
TEST(ProcSysKernelTest, HostnameFollowsTheUtsNamespace) {
  EXPECT_EQ(InChild([] {
              if (unshare(CLONE_NEWUTS) != 0) return 1;
              const char name[] = "husk-uts-test";
              if (sethostname(name, strlen(name)) != 0) return 2;
              if (ReadFile("/proc/sys/kernel/hostname") != "husk-uts-test\n") return 3;
              if (WriteTo("/proc/sys/kernel/hostname", "written-name\n") != 0) return 4;
              struct utsname u;
              if (uname(&u) != 0) return 5;
              return std::string(u.nodename) == "written-name" ? 0 : 6;
            }),
            0);
}

bool IsUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!isxdigit(static_cast<unsigned char>(s[i])) ||
               isupper(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

// random/uuid is a fresh version-4 UUID at every read (libuuid, systemd use it).
TEST(ProcSysKernelTest, RandomUuidIsFreshEveryRead) {
  std::string a = Slurp("/proc/sys/kernel/random/uuid");
  std::string b = Slurp("/proc/sys/kernel/random/uuid");
  ASSERT_EQ(a.size(), 37u) << a;
  ASSERT_EQ(a.back(), '\n');
  EXPECT_TRUE(IsUuid(a.substr(0, 36))) << a;
  EXPECT_TRUE(IsUuid(b.substr(0, 36))) << b;
  EXPECT_EQ(a[14], '4') << "version nibble: " << a;
  EXPECT_TRUE(strchr("89ab", a[19]) != nullptr) << "variant: " << a;
  EXPECT_NE(a, b);
}

// random/boot_id is one UUID for the life of the system.
TEST(ProcSysKernelTest, RandomBootIdIsStable) {
  std::string a = Slurp("/proc/sys/kernel/random/boot_id");
  ASSERT_EQ(a.size(), 37u) << a;
  EXPECT_TRUE(IsUuid(a.substr(0, 36))) << a;
  EXPECT_EQ(a.back(), '\n');
  EXPECT_EQ(InChild([a] { return ReadFile("/proc/sys/kernel/random/boot_id") == a ? 0 : 1; }), 0);
  EXPECT_EQ(Slurp("/proc/sys/kernel/random/boot_id"), a);
}

// libcap reads cap_last_cap; PR_CAPBSET_READ answers for every capability up to it and
// EINVAL just above; the bounding set has no bit beyond it.
TEST(ProcSysKernelTest, CapLastCapBoundsTheCapabilities) {
  long long last = SysctlNumber("/proc/sys/kernel/cap_last_cap");
  ASSERT_GE(last, CAP_SETFCAP);  // 31: every kernel since 2.6.25 has it
  for (long long cap = 0; cap <= last; ++cap) {
    EXPECT_GE(prctl(PR_CAPBSET_READ, cap, 0, 0, 0), 0) << "cap " << cap << ": " << ErrnoName(errno);
  }
  EXPECT_ERRNO(prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0), EINVAL);
  std::string status = Slurp("/proc/self/status");
  size_t at = status.find("CapBnd:\t");
  ASSERT_NE(at, std::string::npos);
  uint64_t bnd = strtoull(status.c_str() + at + 8, nullptr, 16);
  if (last < 63) {
    EXPECT_EQ(bnd >> (last + 1), 0u) << std::hex << bnd;
  }
}

// ---------------------------------------------------------------------------------------
// /proc/sys/fs

// file-nr: allocated handles, 0, and file-max.
TEST(ProcSysFsTest, FileMaxAndFileNrAgree) {
  long long max = SysctlNumber("/proc/sys/fs/file-max");
  EXPECT_GT(max, 0);
  auto nr = Words(Slurp("/proc/sys/fs/file-nr"));
  ASSERT_EQ(nr.size(), 3u);
  for (const auto& w : nr) EXPECT_TRUE(IsNumber(w)) << w;
  EXPECT_GT(strtoll(nr[0].c_str(), nullptr, 10), 0);  // this process holds some
  EXPECT_EQ(strtoll(nr[2].c_str(), nullptr, 10), max);
}

// nr_open is the ceiling of RLIMIT_NOFILE: above it setrlimit fails with EPERM, even with
// privilege (and RLIM_INFINITY is above it).
TEST(ProcSysFsTest, NrOpenBoundsRlimitNofile) {
  long long nr_open = SysctlNumber("/proc/sys/fs/nr_open");
  ASSERT_GT(nr_open, 0);
  rlimit now;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &now));
  EXPECT_LE(now.rlim_max, static_cast<rlim_t>(nr_open));
  EXPECT_EQ(InChild([nr_open, now] {
              rlimit above{static_cast<rlim_t>(nr_open) + 1, static_cast<rlim_t>(nr_open) + 1};
              errno = 0;
              if (setrlimit(RLIMIT_NOFILE, &above) != -1 || errno != EPERM) return 1;
              rlimit inf{RLIM_INFINITY, RLIM_INFINITY};
              errno = 0;
              if (setrlimit(RLIMIT_NOFILE, &inf) != -1 || errno != EPERM) return 2;
              rlimit same{now.rlim_max, now.rlim_max};
              return setrlimit(RLIMIT_NOFILE, &same) == 0 ? 0 : 3;
            }),
            0);
}

// Drops CAP_SYS_RESOURCE from the effective set (it lets a process exceed pipe-max-size).
bool DropSysResource() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  data[CAP_SYS_RESOURCE / 32].effective &= ~(1u << (CAP_SYS_RESOURCE % 32));
  return syscall(SYS_capset, &hdr, data) == 0;
}

// pipe-max-size is the largest F_SETPIPE_SZ an unprivileged process may ask for.
TEST(ProcSysFsTest, PipeMaxSizeBoundsSetPipeSz) {
  long long max = SysctlNumber("/proc/sys/fs/pipe-max-size");
  ASSERT_GE(max, sysconf(_SC_PAGESIZE));
  EXPECT_EQ(InChild([max] {
              if (!DropSysResource()) return 1;
              int fds[2];
              if (pipe2(fds, O_CLOEXEC) != 0) return 2;
              int rc = 0;
              if (fcntl(fds[0], F_SETPIPE_SZ, static_cast<int>(max)) < 0) rc = 3;
              if (rc == 0 && fcntl(fds[0], F_GETPIPE_SZ) < max) rc = 4;
              errno = 0;
              if (rc == 0 &&
                  (fcntl(fds[0], F_SETPIPE_SZ, static_cast<int>(max) + 1) != -1 || errno != EPERM))
                rc = 5;
              close(fds[0]);
              close(fds[1]);
              return rc;
            }),
            0);
}

// ---------------------------------------------------------------------------------------
// /proc/sys/vm and /proc/sys/net

TEST(ProcSysVmTest, OvercommitMemoryIsAMode) {
  long long mode = SysctlNumber("/proc/sys/vm/overcommit_memory");
  EXPECT_GE(mode, 0);
  EXPECT_LE(mode, 2);
}

// The JVM and Elasticsearch read max_map_count; a process has fewer mappings than it.
TEST(ProcSysVmTest, MaxMapCountBoundsTheMappings) {
  long long max = SysctlNumber("/proc/sys/vm/max_map_count");
  EXPECT_GT(max, 0);
  size_t mappings = Lines(Slurp("/proc/self/maps")).size();
  EXPECT_LT(static_cast<long long>(mappings), max);
}

// Go's net package reads somaxconn for its listen backlog.
TEST(ProcSysNetTest, SomaxconnIsANumber) {
  EXPECT_GT(SysctlNumber("/proc/sys/net/core/somaxconn"), 0);
}

TEST(ProcSysTest, TopLevelDirectoriesAndModes) {
  for (const char* dir : {"/proc/sys", "/proc/sys/kernel", "/proc/sys/fs", "/proc/sys/vm"}) {
    struct stat st;
    ASSERT_EQ(stat(dir, &st), 0) << dir << ": " << ErrnoName(errno);
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << dir;
  }
  // Tunables are 0644, read-only facts 0444; both regular files of size 0.
  struct stat st;
  ASSERT_OK(stat("/proc/sys/kernel/pid_max", &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(st.st_size, 0);
  ASSERT_OK(stat("/proc/sys/kernel/osrelease", &st));
  EXPECT_EQ(st.st_mode & 0777, 0444u);
}

// ---------------------------------------------------------------------------------------
// /proc/meminfo, cpuinfo, stat, uptime, loadavg, version, filesystems

// Every line is "Key:" then a number, with " kB" for sizes; MemTotal is sysinfo's totalram
// (glibc's _SC_PHYS_PAGES comes from sysinfo too).
TEST(ProcMeminfoTest, LinesParseAndTotalsMatchSysinfo) {
  std::map<std::string, long long> kb;
  for (const auto& line : Lines(Slurp("/proc/meminfo"))) {
    size_t colon = line.find(':');
    ASSERT_NE(colon, std::string::npos) << line;
    auto w = Words(line.substr(colon + 1));
    ASSERT_TRUE(w.size() == 1 || (w.size() == 2 && w[1] == "kB")) << line;
    ASSERT_TRUE(IsNumber(w[0])) << line;
    kb[line.substr(0, colon)] = strtoll(w[0].c_str(), nullptr, 10);
  }
  for (const char* key : {"MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal",
                          "SwapFree", "Shmem"}) {
    EXPECT_TRUE(kb.count(key)) << "no " << key;
  }
  struct sysinfo si;
  ASSERT_OK(sysinfo(&si));
  EXPECT_EQ(kb["MemTotal"], static_cast<long long>(si.totalram) * si.mem_unit / 1024);
  EXPECT_EQ(kb["SwapTotal"], static_cast<long long>(si.totalswap) * si.mem_unit / 1024);
  EXPECT_EQ(kb["MemTotal"], sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / 1024);
  EXPECT_LE(kb["MemFree"], kb["MemTotal"]);
  EXPECT_LE(kb["MemAvailable"], kb["MemTotal"]);
  EXPECT_LE(kb["SwapFree"], kb["SwapTotal"]);
}

// "processor : N" numbers the blocks from 0; x86 blocks carry the flags programs grep.
TEST(ProcCpuinfoTest, ProcessorsAreNumberedFromZero) {
  std::vector<int> ids;
  int flags = 0;
  for (const auto& line : Lines(Slurp("/proc/cpuinfo"))) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    if (key == "processor") ids.push_back(atoi(line.c_str() + colon + 1));
    if (key == "flags") ++flags;
  }
  ASSERT_FALSE(ids.empty());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<int>(i));
#if defined(__x86_64__)
  EXPECT_EQ(flags, static_cast<int>(ids.size()));
#endif
  EXPECT_EQ(static_cast<long>(ids.size()), sysconf(_SC_NPROCESSORS_ONLN));
}

// One "cpuN" line per online CPU, each with the ten time columns of Linux >= 2.6.33.
TEST(ProcSystemStatTest, ListsEveryOnlineCpu) {
  int cpus = 0;
  bool total = false;
  std::map<std::string, long long> counters;
  for (const auto& line : Lines(Slurp("/proc/stat"))) {
    auto w = Words(line);
    if (w.empty()) continue;
    if (w[0].rfind("cpu", 0) == 0) {
      EXPECT_GE(w.size(), 11u) << line;
      for (size_t i = 1; i < w.size(); ++i) EXPECT_TRUE(IsNumber(w[i])) << line;
      if (w[0] == "cpu") {
        total = true;
      } else {
        ++cpus;
      }
    } else if (w.size() >= 2) {
      counters[w[0]] = strtoll(w[1].c_str(), nullptr, 10);
    }
  }
  EXPECT_TRUE(total);
  EXPECT_EQ(cpus, sysconf(_SC_NPROCESSORS_ONLN));
  for (const char* key : {"ctxt", "btime", "processes", "procs_running", "procs_blocked"}) {
    EXPECT_TRUE(counters.count(key)) << "no " << key;
  }
  EXPECT_GE(counters["procs_running"], 1);  // the reader
  EXPECT_GE(counters["processes"], 1);
}

// btime is the wall-clock time of boot: now minus the uptime (to a second's rounding each).
TEST(ProcSystemStatTest, BtimeIsNowMinusUptime) {
  std::string stat = Slurp("/proc/stat");
  size_t at = stat.find("\nbtime ");
  ASSERT_NE(at, std::string::npos);
  long long btime = strtoll(stat.c_str() + at + 7, nullptr, 10);
  double uptime = strtod(Slurp("/proc/uptime").c_str(), nullptr);
  double boot = static_cast<double>(time(nullptr)) - uptime;
  EXPECT_NEAR(static_cast<double>(btime), boot, 2.0);
}

bool ParseHundredths(const std::string& s, double* out) {
  size_t dot = s.find('.');
  if (dot == std::string::npos || s.size() - dot != 3) return false;
  if (!IsNumber(s.substr(0, dot)) || !IsNumber(s.substr(dot + 1))) return false;
  *out = strtod(s.c_str(), nullptr);
  return true;
}

// "uptime idle\n", both with two decimals; uptime is CLOCK_BOOTTIME and never goes back.
TEST(ProcUptimeTest, TwoDecimalsThatFollowBoottime) {
  std::string first = Slurp("/proc/uptime");
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first.back(), '\n');
  auto w = Words(first);
  ASSERT_EQ(w.size(), 2u) << first;
  double up = 0, idle = 0;
  EXPECT_TRUE(ParseHundredths(w[0], &up)) << first;
  EXPECT_TRUE(ParseHundredths(w[1], &idle)) << first;
  EXPECT_GE(idle, 0);
  timespec ts;
  ASSERT_OK(clock_gettime(CLOCK_BOOTTIME, &ts));
  double boottime = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  EXPECT_LE(up, boottime + 0.01);
  EXPECT_NEAR(up, boottime, 2.0);
  double again = 0;
  ASSERT_TRUE(ParseHundredths(Words(Slurp("/proc/uptime"))[0], &again));
  EXPECT_GE(again, up);
}

// "0.00 0.01 0.05 running/total last_pid\n".
TEST(ProcLoadavgTest, ThreeAveragesTasksAndLastPid) {
  std::string text = Slurp("/proc/loadavg");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  auto w = Words(text);
  ASSERT_EQ(w.size(), 5u) << text;
  for (int i = 0; i < 3; ++i) {
    double v = -1;
    EXPECT_TRUE(ParseHundredths(w[i], &v)) << text;
    EXPECT_GE(v, 0);
  }
  long running = 0, total = 0;
  ASSERT_EQ(sscanf(w[3].c_str(), "%ld/%ld", &running, &total), 2) << text;
  EXPECT_GE(running, 1);  // the reader
  EXPECT_LE(running, total);
  EXPECT_TRUE(IsNumber(w[4])) << text;
}

TEST(ProcVersionTest, StartsWithLinuxVersionAndRelease) {
  struct utsname u;
  ASSERT_OK(uname(&u));
  std::string text = Slurp("/proc/version");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.rfind(std::string("Linux version ") + u.release + " ", 0), 0u) << text;
  EXPECT_EQ(text.back(), '\n');
  // The build string uname's version reports is in it too.
  EXPECT_NE(text.find(u.version), std::string::npos) << text;
}

std::map<std::string, bool> Filesystems() {
  std::map<std::string, bool> nodev;
  for (const auto& line : Lines(Slurp("/proc/filesystems"))) {
    size_t tab = line.find('\t');
    EXPECT_NE(tab, std::string::npos) << line;
    if (tab == std::string::npos) continue;
    std::string flag = line.substr(0, tab);
    EXPECT_TRUE(flag.empty() || flag == "nodev") << line;
    nodev[line.substr(tab + 1)] = flag == "nodev";
  }
  return nodev;
}

// "nodev\tname" or "\tname" per line; tmpfs and proc need no device.
TEST(ProcFilesystemsTest, ListsTmpfsAndProcAsNodev) {
  auto fs = Filesystems();
  ASSERT_TRUE(fs.count("tmpfs"));
  ASSERT_TRUE(fs.count("proc"));
  EXPECT_TRUE(fs["tmpfs"]);
  EXPECT_TRUE(fs["proc"]);
}

// Every mounted filesystem type is registered (a "fuse.x" subtype counts as "fuse").
TEST(ProcFilesystemsTest, ListsEveryMountedType) {
  auto fs = Filesystems();
  for (const auto& line : Lines(Slurp("/proc/self/mounts"))) {
    auto w = Words(line);
    ASSERT_GE(w.size(), 3u) << line;
    std::string type = w[2].substr(0, w[2].find('.'));
    EXPECT_TRUE(fs.count(type)) << type << " (mounted on " << w[1] << ") is not listed";
  }
}

// ---------------------------------------------------------------------------------------
// cgroups as runtimes (JVM, Go, systemd) find them

// Each line is "hierarchy-id:controllers:path" (cgroups(7)); a v2 line is "0::path".
TEST(ProcCgroupTest, LinesAreIdControllersPath) {
  auto lines = Lines(Slurp("/proc/self/cgroup"));
  ASSERT_FALSE(lines.empty());
  std::set<std::string> ids;
  for (const auto& line : lines) {
    size_t a = line.find(':');
    ASSERT_NE(a, std::string::npos) << line;
    size_t b = line.find(':', a + 1);
    ASSERT_NE(b, std::string::npos) << line;
    std::string id = line.substr(0, a), controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    EXPECT_TRUE(IsNumber(id)) << line;
    EXPECT_TRUE(ids.insert(id).second) << "hierarchy " << id << " twice";
    EXPECT_EQ(path.rfind('/', 0), 0u) << line;
    if (id == "0") {
      EXPECT_EQ(controllers, "") << line;
    }
  }
  // A child is in its parent's cgroups.
  EXPECT_EQ(InChild([text = Slurp("/proc/self/cgroup")] {
              return ReadFile("/proc/self/cgroup") == text ? 0 : 1;
            }),
            0);
}

// What a runtime does to find its limits: every hierarchy of /proc/self/cgroup has a mount in
// mountinfo: v1 controllers on a "cgroup" mount whose options name them, the v2 line on a
// "cgroup2" mount.
TEST(ProcCgroupTest, EveryHierarchyIsMounted) {
  struct Mount {
    std::string point, type, options;
  };
  std::vector<Mount> mounts;
  for (const auto& line : Lines(Slurp("/proc/self/mountinfo"))) {
    auto w = Words(line);
    size_t dash = 6;
    while (dash < w.size() && w[dash] != "-") ++dash;
    ASSERT_LT(dash + 3, w.size()) << line;
    mounts.push_back({w[4], w[dash + 1], w[dash + 3]});
  }
  for (const auto& line : Lines(Slurp("/proc/self/cgroup"))) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    ASSERT_NE(b, std::string::npos) << line;
    std::string controllers = line.substr(a + 1, b - a - 1);
    bool found = false;
    for (const auto& m : mounts) {
      if (controllers.empty()) {
        found = found || m.type == "cgroup2";
        continue;
      }
      if (m.type != "cgroup") continue;
      std::set<std::string> opts;
      std::stringstream ss(m.options);
      for (std::string o; std::getline(ss, o, ',');) opts.insert(o);
      bool all = true;
      std::stringstream cs(controllers);
      for (std::string c; std::getline(cs, c, ',');) all = all && opts.count(c) > 0;
      found = found || all;
    }
    EXPECT_TRUE(found) << "no mount for \"" << line << "\"";
  }
}

TEST(SysCgroupTest, SysFsCgroupIsADirectory) {
  struct stat st;
  ASSERT_EQ(stat("/sys/fs/cgroup", &st), 0) << ErrnoName(errno);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

// ---------------------------------------------------------------------------------------
// /sys/devices/system/cpu

// Every CPU this process may run on is online; the online count is what sysconf reports.
TEST(SysCpuTest, OnlineCoversTheAffinityMask) {
  std::string text = Slurp("/sys/devices/system/cpu/online");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  auto online = CpuList(text);
  cpu_set_t set;
  ASSERT_OK(sched_getaffinity(0, sizeof(set), &set));
  int allowed = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    ++allowed;
    EXPECT_TRUE(online.count(c)) << "cpu " << c << " is allowed but not online: " << text;
  }
  EXPECT_EQ(allowed, CPU_COUNT(&set));
  EXPECT_GE(static_cast<int>(online.size()), allowed);
  EXPECT_EQ(static_cast<long>(online.size()), sysconf(_SC_NPROCESSORS_ONLN));
}

// possible contains present contains online; each online CPU has its cpuN directory.
TEST(SysCpuTest, PossibleCoversPresentCoversOnline) {
  auto possible = CpuList(Slurp("/sys/devices/system/cpu/possible"));
  auto present = CpuList(Slurp("/sys/devices/system/cpu/present"));
  auto online = CpuList(Slurp("/sys/devices/system/cpu/online"));
  ASSERT_FALSE(online.empty());
  for (int c : present) EXPECT_TRUE(possible.count(c)) << c;
  for (int c : online) {
    EXPECT_TRUE(present.count(c)) << c;
    struct stat st;
    std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(c);
    EXPECT_EQ(stat(dir.c_str(), &st), 0) << dir << ": " << ErrnoName(errno);
  }
  EXPECT_GE(sysconf(_SC_NPROCESSORS_CONF), static_cast<long>(online.size()));
}

}  // namespace
}  // namespace husk_test
