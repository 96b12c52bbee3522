// Legacy entry points of x86-64 (issue 11, finding 5): `int $0x80` and `sysenter` from
// 64-bit code, and the vsyscall page. husk dispatched `int $0x80` as a 64-bit syscall by
// its number (eax=1 became write) and a call into the vsyscall page killed the stub.
//
// What Linux does, and what these tests accept:
//  - `int $0x80` enters the 32-bit syscall table when the kernel has IA-32 emulation (then
//    eax=1 is exit(ebx)); without it, the process gets SIGSEGV. Never the 64-bit table.
//  - `sysenter` from 64-bit code is not a supported entry: SIGSEGV (on Intel, the kernel's
//    compat entry cannot return to a 64-bit caller), SIGILL on AMD (#UD in long mode), or
//    exit(ebx) for eax=1 if the compat path happened to complete. Never the 64-bit table.
//  - vsyscall=emulate/xonly: a call to an entry (gettimeofday +0x0, time +0x400, getcpu
//    +0x800) works; vsyscall=none: SIGSEGV. In every mode a call elsewhere in the page, or
//    with a pointer the kernel cannot write, is SIGSEGV. Only the calling process is hurt.
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "tests/security/security_util.h"

namespace {

using husk_security::DescribeStatus;
using husk_security::ExitedWith;
using husk_security::KilledBy;
using husk_security::WaitWithDeadline;
using husk_test::MakePipe;
using husk_test::Pipe;

constexpr int64_t kDeadlineMs = 10000;
constexpr uintptr_t kVsyscall = 0xffffffffff600000;

const char kLeak[] = "LEAK";

// A process started before the experiment, alive until Finish(): proves that what happened to
// the experiment's child did not take other processes with it.
class Bystander {
 public:
  Bystander() {
    p_ = MakePipe();
    pid_ = fork();
    if (pid_ == 0) {
      p_.w.Reset();
      char c;
      _exit(read(p_.r.get(), &c, 1) == 1 ? 7 : 8);
    }
    p_.r.Reset();
  }
  // Asks the bystander to end and expects it to answer as asked.
  void Finish() {
    ASSERT_GT(pid_, 0);
    char c = 'x';
    EXPECT_EQ(write(p_.w.get(), &c, 1), 1);
    int status = 0;
    ASSERT_TRUE(WaitWithDeadline(pid_, kDeadlineMs, &status)) << "the bystander hangs";
    EXPECT_TRUE(ExitedWith(status, 7)) << DescribeStatus(status);
    pid_ = -1;
  }

 private:
  Pipe p_;
  pid_t pid_ = -1;
};

// Runs body(write end of a pipe) in a child; returns its wait status and what it wrote.
template <typename F>
std::pair<int, std::string> RunWithPipe(F body) {
  Pipe p = MakePipe();
  pid_t pid = fork();
  if (pid == 0) {
    p.r.Reset();
    body(p.w.get());
    _exit(91);
  }
  p.w.Reset();
  int status = -1;
  if (!WaitWithDeadline(pid, kDeadlineMs, &status)) {
    kill(pid, SIGKILL);
    ADD_FAILURE() << "the child hangs";
  }
  return {status, husk_test::ReadAll(p.r.get())};
}

// `int $0x80`, eax=1, ebx=42, and the 64-bit argument registers set up for write(fd, "LEAK",
// 4): a 32-bit dispatch exits with 42, a missing IA-32 emulation faults, a 64-bit dispatch
// would write "LEAK" into the pipe.
void Int80Exit(int fd) {
  register long rdi asm("rdi") = fd;
  register const char* rsi asm("rsi") = kLeak;
  register long rdx asm("rdx") = 4;
  long rax = 1;
  asm volatile("int $0x80"
               : "+a"(rax)
               : "b"(42L), "r"(rdi), "r"(rsi), "r"(rdx)
               : "memory", "rcx", "r11", "r8", "r9", "r10");
}

void SysenterExit(int fd) {
  register long rdi asm("rdi") = fd;
  register const char* rsi asm("rsi") = kLeak;
  register long rdx asm("rdx") = 4;
  long rax = 1;
  asm volatile("sysenter"
               : "+a"(rax)
               : "b"(42L), "r"(rdi), "r"(rsi), "r"(rdx)
               : "memory", "rcx", "r11", "r8", "r9", "r10");
}

// `int $0x80`, eax=60 (64-bit exit; 32-bit umask(ebx)) and rdi=43: a 64-bit dispatch would
// exit with 43. A 32-bit dispatch returns (the old umask) and the child exits 91.
void Int80Sixty(int) {
  register long rdi asm("rdi") = 43;
  long rax = 60;
  asm volatile("int $0x80" : "+a"(rax) : "b"(022L), "r"(rdi) : "memory", "rcx", "r11");
}

TEST(LegacyTest, Int80IsNeverA64BitSyscall) {
  Bystander bystander;
  auto [status, out] = RunWithPipe(Int80Exit);
  EXPECT_EQ(out, "") << "int $0x80 ran the 64-bit write";
  EXPECT_TRUE(KilledBy(status, SIGSEGV) || ExitedWith(status, 42)) << DescribeStatus(status);

  std::tie(status, out) = RunWithPipe(Int80Sixty);
  EXPECT_TRUE(KilledBy(status, SIGSEGV) || ExitedWith(status, 91))
      << DescribeStatus(status) << " (exited 43: int $0x80 ran the 64-bit exit)";
  bystander.Finish();
}

TEST(LegacyTest, SysenterIsNeverA64BitSyscall) {
  Bystander bystander;
  auto [status, out] = RunWithPipe(SysenterExit);
  EXPECT_EQ(out, "") << "sysenter ran the 64-bit write";
  EXPECT_TRUE(KilledBy(status, SIGSEGV) || KilledBy(status, SIGILL) || ExitedWith(status, 42))
      << DescribeStatus(status);
  bystander.Finish();
}

// The three vsyscall entries, each called in its own child: exit 0 when it returned the right
// answer, SIGSEGV under vsyscall=none, another exit code when it returned a wrong one.
int CallGettimeofday() {
  timeval tv{};
  const time_t before = time(nullptr);
  long r = reinterpret_cast<long (*)(timeval*, void*)>(kVsyscall)(&tv, nullptr);
  const time_t after = time(nullptr);
  if (r != 0) return 1;
  if (tv.tv_sec < before || tv.tv_sec > after) return 2;
  return tv.tv_usec >= 0 && tv.tv_usec < 1000000 ? 0 : 3;
}

int CallTime() {
  time_t stored = 0;
  const time_t before = time(nullptr);
  long r = reinterpret_cast<long (*)(time_t*)>(kVsyscall + 0x400)(&stored);
  const time_t after = time(nullptr);
  if (r < before || r > after) return 1;
  return stored == r ? 0 : 2;
}

int CallGetcpu() {
  unsigned cpu = ~0u, node = ~0u;
  long r = reinterpret_cast<long (*)(unsigned*, unsigned*, void*)>(kVsyscall + 0x800)(&cpu, &node,
                                                                                      nullptr);
  if (r != 0) return 1;
  const long cpus = sysconf(_SC_NPROCESSORS_CONF);
  return (cpu < static_cast<unsigned long>(cpus) && node != ~0u) ? 0 : 2;
}

TEST(LegacyTest, VsyscallEntriesWorkOrAllFault) {
  Bystander bystander;
  int worked = 0, faulted = 0;
  for (auto* call : {CallGettimeofday, CallTime, CallGetcpu}) {
    const int code = husk_security::InChildWithin(kDeadlineMs, call);
    EXPECT_TRUE(code == 0 || code == -SIGSEGV)
        << "a vsyscall entry returned a wrong answer (>0), died otherwise (<0) or hung (-1001): "
        << code;
    worked += code == 0;
    faulted += code == -SIGSEGV;
  }
  // One vsyscall= mode for the whole page.
  EXPECT_TRUE(worked == 3 || faulted == 3)
      << worked << " entries worked, " << faulted << " faulted";
  bystander.Finish();
}

TEST(LegacyTest, VsyscallCallsOffTheEntriesFault) {
  Bystander bystander;
  for (uintptr_t off : {uintptr_t{0x1}, uintptr_t{0x8}, uintptr_t{0x401}, uintptr_t{0xc00}}) {
    const int code = husk_security::InChildWithin(kDeadlineMs, [off] {
      reinterpret_cast<long (*)(void*, void*)>(kVsyscall + off)(nullptr, nullptr);
      return 91;
    });
    EXPECT_EQ(code, -SIGSEGV) << "call to vsyscall page + 0x" << std::hex << off;
  }
  bystander.Finish();
}

// Emulated or not, an entry that would write through a bad pointer ends in SIGSEGV
// (arch/x86/entry/vsyscall: write_ok_or_segv), never in a write elsewhere.
TEST(LegacyTest, VsyscallWithABadPointerFaults) {
  Bystander bystander;
  const int code = husk_security::InChildWithin(kDeadlineMs, [] {
    reinterpret_cast<long (*)(void*, void*)>(kVsyscall)(reinterpret_cast<void*>(8), nullptr);
    return 91;
  });
  EXPECT_EQ(code, -SIGSEGV);
  bystander.Finish();
}

}  // namespace
