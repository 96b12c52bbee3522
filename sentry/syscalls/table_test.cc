// The syscall table: names against the kernel headers' numbers, which
// entries have handlers, the argument formats --strace relies on, and the
// listing `husk syscalls` prints.
#include <stdio.h>
#include <sys/syscall.h>

#include <climits>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sentry/syscalls/syscalls.h"

namespace husk::syscalls {
namespace {

struct Known {
  int nr;
  const char* name;
};
// The name string comes from the same token as the <sys/syscall.h> number.
#define NR(name) \
  Known { __NR_##name, #name }

const std::vector<Known>& KnownSyscalls() {
  static const std::vector<Known> known = {
      NR(read),
      NR(write),
      NR(open),
      NR(close),
      NR(stat),
      NR(mmap),
      NR(rt_sigreturn),
      NR(ioctl),
      NR(pread64),
      NR(pwrite64),
      NR(execve),
      NR(exit),
      NR(wait4),
      NR(kill),
      NR(uname),
      NR(fcntl),
      NR(getdents),
      NR(rename),
      NR(uselib),
      NR(arch_prctl),
      NR(_sysctl),
      NR(umount2),
      NR(create_module),
      NR(afs_syscall),
      NR(tuxcall),
      NR(security),
      NR(gettid),
      NR(futex),
      NR(epoll_ctl_old),
      NR(getdents64),
      NR(exit_group),
      NR(vserver),
      NR(openat),
      NR(newfstatat),
      NR(pselect6),
      NR(pipe2),
      NR(prlimit64),
      NR(execveat),
      NR(statx),
      NR(rseq),
      NR(pidfd_send_signal),
      NR(io_uring_setup),
      NR(clone3),
      NR(close_range),
      NR(openat2),
      NR(faccessat2),
      NR(epoll_pwait2),
      NR(landlock_restrict_self),
      NR(memfd_secret),
      NR(futex_waitv),
      NR(set_mempolicy_home_node),
  };
  return known;
}

TEST(SyscallTableTest, KnownNumbersHaveTheirNames) {
  for (const Known& k : KnownSyscalls()) {
    const SyscallInfo* info = Lookup(k.nr);
    ASSERT_NE(info, nullptr) << k.name << " (" << k.nr << ")";
    ASSERT_NE(info->name, nullptr) << k.nr;
    EXPECT_STREQ(info->name, k.name) << k.nr;
  }
  // A few spelled out, in case the macro above hides a mistake.
  EXPECT_STREQ(Lookup(0)->name, "read");
  EXPECT_STREQ(Lookup(59)->name, "execve");
  EXPECT_STREQ(Lookup(231)->name, "exit_group");
  EXPECT_STREQ(Lookup(257)->name, "openat");
  EXPECT_STREQ(Lookup(435)->name, "clone3");
}

TEST(SyscallTableTest, NumbersThatAreNotSyscallsGiveNull) {
  for (int nr : {-1, -2, INT_MIN, 512, 1000, 100000, INT_MAX}) {
    EXPECT_EQ(Lookup(nr), nullptr) << nr;
  }
  // x86_64 never assigned 335..423 (kept free to line numbers up across
  // architectures), and x32 calls are not x86_64 numbers.
  for (int nr = __NR_rseq + 1; nr < __NR_pidfd_send_signal; nr++) {
    EXPECT_EQ(Lookup(nr), nullptr) << nr;
  }
  EXPECT_EQ(Lookup(0x40000000), nullptr);  // __X32_SYSCALL_BIT | read
}

TEST(SyscallTableTest, EveryAssignedNumberHasAName) {
  int highest = 0;
  for (const Known& k : KnownSyscalls()) highest = std::max(highest, k.nr);
  for (int nr = 0; nr <= highest; nr++) {
    if (nr > __NR_rseq && nr < __NR_pidfd_send_signal) continue;
    const SyscallInfo* info = Lookup(nr);
    ASSERT_NE(info, nullptr) << nr;
    ASSERT_NE(info->name, nullptr) << nr;
    EXPECT_GT(strlen(info->name), 0u) << nr;
  }
}

// Every number the build machine's kernel headers define is in the table
// under the same name (tools/gen_syscall_names.sh reads the same file).
TEST(SyscallTableTest, MatchesTheKernelHeaders) {
  std::ifstream in("/usr/include/x86_64-linux-gnu/asm/unistd_64.h");
  if (!in) in.open("/usr/include/asm/unistd_64.h");
  if (!in) GTEST_SKIP() << "no asm/unistd_64.h on this machine";
  std::regex define(R"(^#define __NR_([a-z0-9_]+) ([0-9]+)$)");
  int count = 0;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, define)) continue;
    int nr = std::stoi(m[2]);
    const SyscallInfo* info = Lookup(nr);
    ASSERT_NE(info, nullptr) << m[1] << " (" << nr
                             << ") is missing: rerun tools/gen_syscall_names.sh";
    EXPECT_EQ(std::string(info->name), m[1].str()) << nr;
    count++;
  }
  EXPECT_GT(count, 360);
}

TEST(SyscallTableTest, UnimplementedCallsHaveNoHandler) {
  // Calls a sandbox must never pass on or emulate: they get ENOSYS.
  for (int nr : {__NR_kexec_load, __NR_kexec_file_load, __NR_init_module, __NR_finit_module,
                 __NR_delete_module, __NR_reboot, __NR_swapon, __NR_swapoff, __NR_bpf,
                 __NR_userfaultfd, __NR_io_uring_setup, __NR_iopl, __NR_ioperm, __NR_tuxcall,
                 __NR_afs_syscall, __NR_vserver, __NR__sysctl, __NR_create_module}) {
    const SyscallInfo* info = Lookup(nr);
    ASSERT_NE(info, nullptr) << nr;
    EXPECT_EQ(info->handler, nullptr) << info->name;
  }
}

TEST(SyscallTableTest, CoreCallsHaveHandlers) {
  for (int nr :
       {__NR_read,   __NR_write,      __NR_openat,       __NR_close,          __NR_mmap,
        __NR_munmap, __NR_brk,        __NR_execve,       __NR_exit,           __NR_exit_group,
        __NR_fstat,  __NR_newfstatat, __NR_rt_sigaction, __NR_rt_sigprocmask, __NR_clone,
        __NR_wait4,  __NR_futex,      __NR_arch_prctl,   __NR_getpid,         __NR_clock_gettime}) {
    const SyscallInfo* info = Lookup(nr);
    ASSERT_NE(info, nullptr) << nr;
    EXPECT_NE(info->handler, nullptr) << info->name;
  }
  // Aliases share a handler.
  EXPECT_EQ(Lookup(__NR_fsync)->handler, Lookup(__NR_fdatasync)->handler);
}

TEST(SyscallTableTest, ArgumentFormatsAreWellFormed) {
  for (int nr = 0; nr < 1024; nr++) {
    const SyscallInfo* info = Lookup(nr);
    if (info == nullptr) continue;
    // Dispatch prints arguments up to the first kNone: none may follow it.
    bool ended = false;
    for (int i = 0; i < 6; i++) {
      if (info->fmt[i] == Fmt::kNone) {
        ended = true;
      } else {
        EXPECT_FALSE(ended) << info->name << " argument " << i << " follows a kNone";
      }
      // A buffer's length is the next argument.
      if (info->fmt[i] == Fmt::kBufIn) {
        ASSERT_LT(i, 5) << info->name;
        EXPECT_NE(info->fmt[i + 1], Fmt::kNone) << info->name;
      }
    }
    if (info->handler == nullptr) {
      for (Fmt f : info->fmt) EXPECT_EQ(f, Fmt::kNone) << info->name;
    }
  }
  EXPECT_EQ(Lookup(__NR_openat)->fmt[0], Fmt::kFd);
  EXPECT_EQ(Lookup(__NR_openat)->fmt[1], Fmt::kPath);
  EXPECT_EQ(Lookup(__NR_openat)->fmt[2], Fmt::kOpenFlags);
  EXPECT_EQ(Lookup(__NR_write)->fmt[1], Fmt::kBufIn);
  EXPECT_EQ(Lookup(__NR_read)->fmt[1], Fmt::kBufOut);
  EXPECT_EQ(Lookup(__NR_execve)->fmt[0], Fmt::kPath);
  EXPECT_EQ(Lookup(__NR_kill)->fmt[1], Fmt::kSignal);
}

std::string PrintedTable() {
  FILE* f = tmpfile();
  if (f == nullptr) {
    ADD_FAILURE() << "tmpfile: " << strerror(errno);
    return "";
  }
  PrintTable(f);
  fflush(f);
  rewind(f);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), f)) > 0;) out.append(buf, n);
  fclose(f);
  return out;
}

TEST(SyscallTableTest, PrintTableListsEveryNumberOnce) {
  std::istringstream in(PrintedTable());
  std::regex row(R"(^ *([0-9]+) ([a-z0-9_]+) +(implemented|ENOSYS)$)");
  std::regex summary(R"(^([0-9]+) of ([0-9]+) x86_64 system calls implemented$)");
  std::map<int, std::string> rows;
  int last = -1, implemented = 0, total = 0;
  bool saw_summary = false;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, row)) {
      EXPECT_FALSE(saw_summary) << "row after the summary: " << line;
      int nr = std::stoi(m[1]);
      EXPECT_GT(nr, last) << "out of order: " << line;
      last = nr;
      const SyscallInfo* info = Lookup(nr);
      ASSERT_NE(info, nullptr) << line;
      EXPECT_EQ(m[2].str(), info->name) << line;
      EXPECT_EQ(m[3].str(), info->handler ? "implemented" : "ENOSYS") << line;
      rows[nr] = m[2];
      total++;
      if (info->handler) implemented++;
    } else if (std::regex_match(line, m, summary)) {
      saw_summary = true;
      EXPECT_EQ(std::stoi(m[1]), implemented);
      EXPECT_EQ(std::stoi(m[2]), total);
    } else {
      ADD_FAILURE() << "unexpected line: '" << line << "'";
    }
  }
  EXPECT_TRUE(saw_summary);
  // Every number Lookup knows is printed.
  for (int nr = 0; nr < 1024; nr++) {
    EXPECT_EQ(Lookup(nr) != nullptr, rows.count(nr) == 1) << nr;
  }
  EXPECT_EQ(rows[__NR_read], "read");
  EXPECT_EQ(rows[__NR_clone3], "clone3");
  EXPECT_GT(implemented, 100);
  EXPECT_LT(implemented, total);
}

}  // namespace
}  // namespace husk::syscalls
