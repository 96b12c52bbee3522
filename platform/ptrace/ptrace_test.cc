// Drives the ptrace and systrap platforms directly with hand-assembled x86_64
// code and no sentry: syscall stops, faults, synchronous signals, mappings,
// and the lifetime of the stub process behind each address space. Every case
// runs on both.
//
// ptrace binds a stub to the thread that created it, so every test creates
// and switches into its address spaces on the main test thread.
#include "platform/ptrace/ptrace.h"

#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "platform/systrap/systrap.h"
#include "sentry/memfile/memfile.h"

extern "C" {
extern char husk_stub_begin[];
extern char husk_stub_syscall[];
}

namespace husk::platform {
namespace {

using Kind = StopInfo::Kind;

constexpr size_t kMemoryFileBytes = size_t{64} << 20;
constexpr uintptr_t kCodeAddr = 0x400000;
constexpr uintptr_t kDataAddr = 0x500000;
constexpr uint64_t kSysGetpid = 39;
constexpr uint64_t kSysExit = 60;
constexpr uint64_t kSysExitGroup = 231;

// mov eax, 39 (getpid); syscall; mov rdi, rax; mov eax, 60 (exit); syscall
constexpr uint8_t kRoundTripCode[] = {
    0xb8, 0x27, 0x00, 0x00, 0x00,  // mov eax, 39
    0x0f, 0x05,                    // syscall
    0x48, 0x89, 0xc7,              // mov rdi, rax
    0xb8, 0x3c, 0x00, 0x00, 0x00,  // mov eax, 60
    0x0f, 0x05,                    // syscall
};

// Loads the 32-bit word at kDataAddr + 0x123 and reports it in rdi through getpid.
constexpr uintptr_t kLoadAddr = kDataAddr + 0x123;
constexpr uintptr_t kLoadRip = kCodeAddr + 5;
constexpr uint8_t kLoadCode[] = {
    0xbb, 0x23, 0x01, 0x50, 0x00,  // mov ebx, 0x500123
    0x8b, 0x03,                    // mov eax, dword ptr [rbx]
    0x89, 0xc7,                    // mov edi, eax
    0xb8, 0x27, 0x00, 0x00, 0x00,  // mov eax, 39
    0x0f, 0x05,                    // syscall
};

// Stores 0xdeadbeef at kDataAddr + 0x10, then calls getpid.
constexpr uintptr_t kStoreAddr = kDataAddr + 0x10;
constexpr uintptr_t kStoreRip = kCodeAddr + 5;
constexpr uint8_t kStoreCode[] = {
    0xbb, 0x10, 0x00, 0x50, 0x00,        // mov ebx, 0x500010
    0xc7, 0x03, 0xef, 0xbe, 0xad, 0xde,  // mov dword ptr [rbx], 0xdeadbeef
    0xb8, 0x27, 0x00, 0x00, 0x00,        // mov eax, 39
    0x0f, 0x05,                          // syscall
};

// getpid in a loop, for timing.
constexpr uint8_t kGetpidLoopCode[] = {
    0xb8, 0x27, 0x00, 0x00, 0x00,  // loop: mov eax, 39
    0x0f, 0x05,                    // syscall
    0xeb, 0xf7,                    // jmp loop
};

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kSyscall:
      return "kSyscall";
    case Kind::kFault:
      return "kFault";
    case Kind::kSignal:
      return "kSignal";
    case Kind::kExited:
      return "kExited";
    case Kind::kInterrupted:
      return "kInterrupted";
  }
  return "?";
}

// Passes when r is a stop of kind k; otherwise says what happened instead.
::testing::AssertionResult StoppedWith(const Result<StopInfo>& r, Kind k, const Registers& regs) {
  if (!r.ok()) return ::testing::AssertionFailure() << "Switch failed: errno " << r.error();
  if (r->kind == k) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected " << KindName(k) << ", stopped with " << KindName(r->kind) << " (signo "
         << r->info.si_signo << " code " << r->info.si_code << " addr 0x" << std::hex << r->addr
         << " rip 0x" << regs.rip << " orig_rax " << std::dec << regs.orig_rax << " status 0x"
         << std::hex << r->status << ")";
}

// Registers for entering fresh code at rip, as the sentry sets them after exec.
Registers EntryRegs(uintptr_t rip) {
  Registers r{};
  r.rip = rip;
  r.cs = 0x33;  // __USER_CS
  r.ss = 0x2b;  // __USER_DS
  r.eflags = 0x202;
  r.orig_rax = ~0ULL;
  return r;
}

// Empty if this process may trace a child; otherwise why not. A forked child
// asks to be traced, which is what a stub does, and reports the outcome.
std::string PtraceRefusal() {
  pid_t pid = fork();
  if (pid < 0) return std::string("fork: ") + strerror(errno);
  if (pid == 0) _exit(ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0 ? 0 : errno);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status)) return std::string("PTRACE_TRACEME: ") + strerror(WEXITSTATUS(status));
  return "the PTRACE_TRACEME probe was killed by signal " + std::to_string(WTERMSIG(status));
}

// Empty if the platform can run here; checked once per process because the
// stub range can only be reserved once.
std::string WhyUnusable() {
  std::string refusal = PtraceRefusal();
  if (!refusal.empty()) return "ptrace is not permitted here (" + refusal + ")";
  if (!PtracePlatform::ReserveStubRange()) {
    return "the stub's fixed page is already mapped in this process (address-space "
           "randomisation put something there); run again";
  }
  return "";
}

// Passes once process pid no longer exists, zombie included (within 2 s:
// a released stub finishes exiting on its own).
::testing::AssertionResult ProcessGone(pid_t pid) {
  for (int i = 0; i < 2000; i++) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return ::testing::AssertionFailure() << "process " << pid << " is still there";
}

// The host pid of the stub process behind as.
pid_t StubPid(AddressSpace& as, const std::string& platform) {
  return platform == "systrap" ? SystrapPlatform::StubPid(as) : PtracePlatform::StubPid(as);
}

class PlatformTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    static const std::string* const unusable = new std::string(WhyUnusable());
    if (!unusable->empty()) GTEST_SKIP() << *unusable;
    auto mf = MemoryFile::Create(kMemoryFileBytes);
    ASSERT_OK(mf);
    mf_ = std::move(mf).value();
    if (GetParam() == "systrap") {
      auto platform = SystrapPlatform::Create(mf_->fd());
      ASSERT_OK(platform);
      master_pid_ = (*platform)->MasterPid();
      platform_ = std::move(platform).value();
    } else {
      auto platform = PtracePlatform::Create(mf_->fd());
      ASSERT_OK(platform);
      master_pid_ = (*platform)->MasterPid();
      platform_ = std::move(platform).value();
    }
    auto as = platform_->NewAddressSpace();
    ASSERT_OK(as);
    as_ = std::move(as).value();
    ctx_ = platform_->NewContext();
  }

  // Copies code into a fresh memory-file page mapped read+exec at addr in as;
  // returns the page's file offset.
  Result<uint64_t> LoadCode(AddressSpace& as, uintptr_t addr, std::span<const uint8_t> code) {
    ASSIGN_OR_RETURN(uint64_t off, mf_->Allocate(1));
    memcpy(mf_->At(off), code.data(), code.size());
    TRY(as.MapFile(addr, off, kPageSize, PROT_READ | PROT_EXEC));
    return off;
  }

  // Maps a fresh zeroed memory-file page at addr in as with prot; returns its offset.
  Result<uint64_t> MapData(AddressSpace& as, uintptr_t addr, int prot) {
    ASSIGN_OR_RETURN(uint64_t off, mf_->Allocate(1));
    TRY(as.MapFile(addr, off, kPageSize, prot));
    return off;
  }

  void Poke32(uint64_t off, uint32_t v) { memcpy(mf_->At(off), &v, sizeof(v)); }
  uint32_t Peek32(uint64_t off) {
    uint32_t v;
    memcpy(&v, mf_->At(off), sizeof(v));
    return v;
  }

  std::unique_ptr<MemoryFile> mf_;
  pid_t StubPid(AddressSpace& as) { return husk::platform::StubPid(as, GetParam()); }
  pid_t MasterPid() const { return master_pid_; }

  std::unique_ptr<Platform> platform_;
  pid_t master_pid_ = 0;
  std::unique_ptr<AddressSpace> as_;
  std::unique_ptr<Context> ctx_;
};

TEST_P(PlatformTest, SyscallStopsAndTakesReturnValue) {
  auto code = LoadCode(*as_, kCodeAddr, kRoundTripCode);
  ASSERT_OK(code);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysGetpid);
  EXPECT_EQ(regs.rip, kCodeAddr + 7);
  // The syscall instruction itself left the return address in rcx.
  EXPECT_EQ(regs.rcx, kCodeAddr + 7);

  // The sentry's answer goes back in rax; the code hands it on in rdi.
  regs.rax = 0x1122334455667788;
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysExit);
  EXPECT_EQ(regs.rdi, 0x1122334455667788u);
  EXPECT_EQ(regs.rip, kCodeAddr + sizeof(kRoundTripCode));
}

// An endless loop with no syscall: only Interrupt gets control back.
constexpr uint8_t kSpinCode[] = {
    0xeb, 0xfe,  // loop: jmp loop
};

TEST_P(PlatformTest, InterruptFromAnotherThreadStopsARunningSwitch) {
  ASSERT_OK(LoadCode(*as_, kCodeAddr, kSpinCode));
  Registers regs = EntryRegs(kCodeAddr);
  std::thread other([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ctx_->Interrupt();
  });
  auto stop = ctx_->Switch(*as_, regs);
  other.join();
  ASSERT_TRUE(StoppedWith(stop, Kind::kInterrupted, regs));
  EXPECT_EQ(regs.rip, kCodeAddr);  // still in the loop, nothing else happened
  // An Interrupt that arrives between switches makes the next one return at
  // once, without running anything.
  ctx_->Interrupt();
  regs.rip = 0;  // would fault if it ran
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kInterrupted, regs));
  // And the one after that runs normally again.
  ASSERT_OK(LoadCode(*as_, kCodeAddr + kPageSize, kRoundTripCode));
  regs = EntryRegs(kCodeAddr + kPageSize);
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
}

// The stub's CPU time is the application's: a spin of 200 ms of wall time
// shows as at least 100 ms of user time (the host may run others meanwhile,
// so only a loose lower bound), and the figures survive the stub's death.
TEST_P(PlatformTest, UsageCountsTheStubsCpuTime) {
  auto before = as_->Usage();
  ASSERT_OK(before);
  ASSERT_OK(LoadCode(*as_, kCodeAddr, kSpinCode));
  Registers regs = EntryRegs(kCodeAddr);
  // Interrupted once the stub has spun for 200 ms of CPU (not of wall time:
  // on a loaded machine it may get little of it), or after 10 s.
  clockid_t stub_clock;
  ASSERT_EQ(clock_getcpuclockid(StubPid(*as_), &stub_clock), 0);
  std::thread other([this, stub_clock] {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      timespec cpu{};
      if (clock_gettime(stub_clock, &cpu) != 0) break;
      if (cpu.tv_sec * 1'000'000'000L + cpu.tv_nsec >= 200'000'000L) break;
      if (std::chrono::steady_clock::now() > give_up) break;
    }
    ctx_->Interrupt();
  });
  auto start = std::chrono::steady_clock::now();
  auto stop = ctx_->Switch(*as_, regs);
  auto wall = std::chrono::steady_clock::now() - start;
  other.join();
  ASSERT_TRUE(StoppedWith(stop, Kind::kInterrupted, regs));
  auto after = as_->Usage();
  ASSERT_OK(after);
  EXPECT_GE(after->user - before->user, 50'000'000) << "user ns after 200 ms of CPU spinning";
  EXPECT_GE(after->runtime, after->user / 2);
  EXPECT_LE(after->runtime,
            std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count() + 100'000'000);
  // Once the stub is killed and reaped, Usage reports what wait4 saw: the
  // runtime split in the ratio of the tick-sampled user and system times (the
  // samples alone may exceed the runtime), so at least the runtime read live.
  ASSERT_EQ(kill(StubPid(*as_), SIGKILL), 0) << strerror(errno);
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kExited, regs));
  auto final_usage = as_->Usage();
  ASSERT_OK(final_usage);
  if (GetParam() == "systrap") {
    // Not a child of ours: the last reading taken while it lived stands.
    EXPECT_GE(final_usage->runtime, after->runtime);
  } else {
    // wait4 reports microseconds: allow the rounding.
    EXPECT_GE(final_usage->user + final_usage->system + 2000, after->runtime);
  }
}

TEST_P(PlatformTest, FpStateRoundTrips) {
  ASSERT_OK(LoadCode(*as_, kCodeAddr, kRoundTripCode));
  Registers regs = EntryRegs(kCodeAddr);
  ASSERT_TRUE(StoppedWith(ctx_->Switch(*as_, regs), Kind::kSyscall, regs));
  auto fp = ctx_->GetFpState(*as_);
  ASSERT_OK(fp);
  ASSERT_GE(fp->size(), 512u);
  // xmm8 lives at byte 160 + 8 * 16 of the FXSAVE area.
  std::vector<uint8_t> edited = *fp;
  for (int i = 0; i < 16; i++) edited[160 + 8 * 16 + i] = static_cast<uint8_t>(0xa0 + i);
  ASSERT_OK(ctx_->SetFpState(*as_, edited));
  auto back = ctx_->GetFpState(*as_);
  ASSERT_OK(back);
  EXPECT_TRUE(std::equal(edited.begin() + 160, edited.begin() + 160 + 16 * 16,
                         back->begin() + 160));
}

// A stub that cannot answer an interrupt (stopped here from outside; an
// application that blocked the interrupt's signal through the stub's code
// looks the same) does not keep its task from the sentry: ptrace reports the
// stop, systrap ends the stub after a few seconds.
TEST_P(PlatformTest, AStubThatNeverAnswersAnInterruptLetsTheTaskGo) {
  ASSERT_OK(LoadCode(*as_, kCodeAddr, kSpinCode));
  Registers regs = EntryRegs(kCodeAddr);
  const pid_t stub = StubPid(*as_);
  std::thread other([this, stub] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    kill(stub, SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ctx_->Interrupt();
  });
  auto start = std::chrono::steady_clock::now();
  auto stop = ctx_->Switch(*as_, regs);
  other.join();
  kill(stub, SIGCONT);
  ASSERT_TRUE(stop.ok());
  EXPECT_TRUE(stop->kind == Kind::kExited || stop->kind == Kind::kInterrupted)
      << "stopped with kind " << static_cast<int>(stop->kind);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

// The vector registers' upper halves (XSAVE's AVX component, at 576 in the
// standard layout) set by the sentry reach the application and come back
// from it: through a signal frame on systrap, through ptrace's regset.
TEST_P(PlatformTest, AvxStateSurvivesARun) {
  ASSERT_OK(LoadCode(*as_, kCodeAddr, kGetpidLoopCode));
  Registers regs = EntryRegs(kCodeAddr);
  ASSERT_TRUE(StoppedWith(ctx_->Switch(*as_, regs), Kind::kSyscall, regs));
  auto fp = ctx_->GetFpState(*as_);
  ASSERT_OK(fp);
  constexpr size_t kAvx = 576, kYmm8High = kAvx + 8 * 16;
  if (fp->size() < kAvx + 256) GTEST_SKIP() << "the host saves no AVX state";
  std::vector<uint8_t> edited = *fp;
  for (int i = 0; i < 16; i++) edited[kYmm8High + i] = static_cast<uint8_t>(0x51 + i);
  edited[512] |= 4;  // XSTATE_BV: the AVX component is in use
  ASSERT_OK(ctx_->SetFpState(*as_, edited));
  // Run it: the application's own next syscall saves what the CPU holds.
  ASSERT_TRUE(StoppedWith(ctx_->Switch(*as_, regs), Kind::kSyscall, regs));
  auto back = ctx_->GetFpState(*as_);
  ASSERT_OK(back);
  ASSERT_GE(back->size(), kYmm8High + 16);
  EXPECT_TRUE(std::equal(edited.begin() + kYmm8High, edited.begin() + kYmm8High + 16,
                         back->begin() + kYmm8High));
}

// An application that jumps into the stub's code to make a host call it
// chooses gets no host call: ptrace stops it like any syscall; under systrap
// the stub's filter allows no kill from there, and ends the process.
TEST_P(PlatformTest, AJumpIntoTheStubMakesNoHostCall) {
  const uint64_t target = kStubBase + static_cast<uint64_t>(husk_stub_syscall - husk_stub_begin);
  std::vector<uint8_t> code = {
      0xb8, 0x3e, 0x00, 0x00, 0x00,              // mov eax, 62 (kill)
      0x48, 0xc7, 0xc7, 0xff, 0xff, 0xff, 0xff,  // mov rdi, -1 (every process it may signal)
      0xbe, 0x13, 0x00, 0x00, 0x00,              // mov esi, 19 (SIGSTOP)
      0x48, 0xb9,                                // movabs rcx, target
  };
  for (int i = 0; i < 8; i++) code.push_back(static_cast<uint8_t>(target >> (8 * i)));
  code.insert(code.end(), {0xff, 0xe1});  // jmp rcx
  ASSERT_OK(LoadCode(*as_, kCodeAddr, code));
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  if (GetParam() == "systrap") {
    ASSERT_TRUE(StoppedWith(stop, Kind::kExited, regs));
  } else {
    ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
    EXPECT_EQ(regs.orig_rax, 62u);
  }
  EXPECT_EQ(kill(MasterPid(), 0), 0) << "the master is gone";
}

TEST_P(PlatformTest, ExitGroupDoesNotRunOnHost) {
  constexpr uint8_t kCode[] = {
      0xbf, 0x07, 0x00, 0x00, 0x00,  // mov edi, 7
      0xb8, 0xe7, 0x00, 0x00, 0x00,  // mov eax, 231 (exit_group)
      0x0f, 0x05,                    // syscall
      0xb8, 0x27, 0x00, 0x00, 0x00,  // mov eax, 39
      0x0f, 0x05,                    // syscall
  };
  auto code = LoadCode(*as_, kCodeAddr, kCode);
  ASSERT_OK(code);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysExitGroup);
  EXPECT_EQ(regs.rdi, 7u);

  // Had exit_group reached the host, the stub would be gone (a zombie).
  siginfo_t si{};
  ASSERT_EQ(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL), 0) << strerror(errno);
  EXPECT_EQ(si.si_pid, 0) << "a child exited";
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysGetpid);
}

TEST_P(PlatformTest, LoadFromUnmappedPageFaultsUntilMapped) {
  auto code = LoadCode(*as_, kCodeAddr, kLoadCode);
  ASSERT_OK(code);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kFault, regs));
  EXPECT_EQ(stop->addr, kLoadAddr);
  EXPECT_EQ(stop->info.si_signo, SIGSEGV);
  EXPECT_EQ(stop->info.si_code, SEGV_MAPERR);
  EXPECT_EQ(regs.rip, kLoadRip);

  auto data = MapData(*as_, kDataAddr, PROT_READ);
  ASSERT_OK(data);
  // Written after mapping: the stub maps the same memfd pages the sentry sees.
  Poke32(*data + (kLoadAddr - kDataAddr), 0xfeedface);
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysGetpid);
  EXPECT_EQ(regs.rdi, 0xfeedfaceu);
}

TEST_P(PlatformTest, StoreToReadOnlyPageFaultsUntilWritable) {
  auto code = LoadCode(*as_, kCodeAddr, kStoreCode);
  ASSERT_OK(code);
  auto data = MapData(*as_, kDataAddr, PROT_READ);
  ASSERT_OK(data);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kFault, regs));
  EXPECT_EQ(stop->addr, kStoreAddr);
  EXPECT_EQ(stop->info.si_signo, SIGSEGV);
  EXPECT_EQ(stop->info.si_code, SEGV_ACCERR);
  EXPECT_EQ(regs.rip, kStoreRip);
  EXPECT_EQ(Peek32(*data + (kStoreAddr - kDataAddr)), 0u);

  ASSERT_OK(as_->MapFile(kDataAddr, *data, kPageSize, PROT_READ | PROT_WRITE));
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysGetpid);
  EXPECT_EQ(Peek32(*data + (kStoreAddr - kDataAddr)), 0xdeadbeefu);
}

TEST_P(PlatformTest, UnmapRemovesMapping) {
  auto code = LoadCode(*as_, kCodeAddr, kLoadCode);
  ASSERT_OK(code);
  auto data = MapData(*as_, kDataAddr, PROT_READ | PROT_WRITE);
  ASSERT_OK(data);
  Poke32(*data + (kLoadAddr - kDataAddr), 0x5a5a5a5a);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.rdi, 0x5a5a5a5au);

  ASSERT_OK(as_->Unmap(kDataAddr, kPageSize));
  regs = EntryRegs(kCodeAddr);
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kFault, regs));
  EXPECT_EQ(stop->addr, kLoadAddr);
  EXPECT_EQ(stop->info.si_code, SEGV_MAPERR);
  EXPECT_EQ(regs.rip, kLoadRip);
}

TEST_P(PlatformTest, FailedMapFileLeavesStubUsable) {
  auto code = LoadCode(*as_, kCodeAddr, kRoundTripCode);
  ASSERT_OK(code);
  // mmap(2) wants page-aligned addresses and offsets.
  EXPECT_ERRNO(as_->MapFile(kDataAddr + 1, 0, kPageSize, PROT_READ), EINVAL);
  EXPECT_ERRNO(as_->MapFile(kDataAddr, 1, kPageSize, PROT_READ), EINVAL);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysGetpid);
}

TEST_P(PlatformTest, Ud2RaisesSigill) {
  constexpr uint8_t kCode[] = {
      0x0f, 0x0b,  // ud2
  };
  auto code = LoadCode(*as_, kCodeAddr, kCode);
  ASSERT_OK(code);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSignal, regs));
  EXPECT_EQ(stop->info.si_signo, SIGILL);
  EXPECT_EQ(stop->info.si_code, ILL_ILLOPN);
  // A fault: rip and si_addr name the offending instruction.
  EXPECT_EQ(regs.rip, kCodeAddr);
  EXPECT_EQ(stop->addr, kCodeAddr);
}

TEST_P(PlatformTest, Int3RaisesSigtrapAndResumes) {
  constexpr uint8_t kCode[] = {
      0xcc,                          // int3
      0xb8, 0x27, 0x00, 0x00, 0x00,  // mov eax, 39
      0x0f, 0x05,                    // syscall
  };
  auto code = LoadCode(*as_, kCodeAddr, kCode);
  ASSERT_OK(code);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSignal, regs));
  EXPECT_EQ(stop->info.si_signo, SIGTRAP);
  // Linux raises int3's SIGTRAP with SI_KERNEL; a trap, so rip is past it.
  EXPECT_EQ(stop->info.si_code, SI_KERNEL);
  EXPECT_EQ(regs.rip, kCodeAddr + 1);

  // The tracer swallowed the signal: the code runs on to its syscall.
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysGetpid);
}

TEST_P(PlatformTest, DivideByZeroRaisesSigfpe) {
  constexpr uint8_t kCode[] = {
      0x31, 0xc9,  // xor ecx, ecx
      0xf7, 0xf1,  // div ecx
  };
  auto code = LoadCode(*as_, kCodeAddr, kCode);
  ASSERT_OK(code);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSignal, regs));
  EXPECT_EQ(stop->info.si_signo, SIGFPE);
  EXPECT_EQ(stop->info.si_code, FPE_INTDIV);
  EXPECT_EQ(regs.rip, kCodeAddr + 2);
  EXPECT_EQ(stop->addr, kCodeAddr + 2);
}

TEST_P(PlatformTest, AddressSpacesAreIndependent) {
  auto other_or = platform_->NewAddressSpace();
  ASSERT_OK(other_or);
  std::unique_ptr<AddressSpace> other = std::move(other_or).value();
  // Both run the same code page; only as_ has the data page.
  auto code = LoadCode(*as_, kCodeAddr, kLoadCode);
  ASSERT_OK(code);
  ASSERT_OK(other->MapFile(kCodeAddr, *code, kPageSize, PROT_READ | PROT_EXEC));
  auto mine = MapData(*as_, kDataAddr, PROT_READ);
  ASSERT_OK(mine);
  Poke32(*mine + (kLoadAddr - kDataAddr), 0x11111111);

  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*other, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kFault, regs));
  EXPECT_EQ(stop->addr, kLoadAddr);

  regs = EntryRegs(kCodeAddr);
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.rdi, 0x11111111u);

  // A different page at the same address in the other space.
  auto theirs = MapData(*other, kDataAddr, PROT_READ);
  ASSERT_OK(theirs);
  Poke32(*theirs + (kLoadAddr - kDataAddr), 0x22222222);
  regs = EntryRegs(kCodeAddr);
  stop = ctx_->Switch(*other, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.rdi, 0x22222222u);

  regs = EntryRegs(kCodeAddr);
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.rdi, 0x11111111u);
}

TEST_P(PlatformTest, RegistersSurviveSyscallStops) {
  constexpr uint8_t kCode[] = {
      0x0f, 0x05,  // syscall
      0x0f, 0x05,  // syscall
  };
  auto code = LoadCode(*as_, kCodeAddr, kCode);
  ASSERT_OK(code);
  Registers regs = EntryRegs(kCodeAddr);
  regs.rax = kSysGetpid;
  regs.rbx = 0x0101010101010101;
  regs.rdx = 0x0202020202020202;
  regs.rsi = 0x0303030303030303;
  regs.rdi = 0x0404040404040404;
  regs.rbp = 0x0505050505050505;
  regs.rsp = 0x0000060606060600;  // nothing here touches the (unmapped) stack
  regs.r8 = 0x0808080808080808;
  regs.r9 = 0x0909090909090909;
  regs.r10 = 0x0a0a0a0a0a0a0a0a;
  regs.r12 = 0x0c0c0c0c0c0c0c0c;
  regs.r13 = 0x0d0d0d0d0d0d0d0d;
  regs.r14 = 0x0e0e0e0e0e0e0e0e;
  regs.r15 = 0x0f0f0f0f0f0f0f0f;
  const Registers before = regs;
  auto expect_preserved = [&](const Registers& r) {
    EXPECT_EQ(r.rbx, before.rbx);
    EXPECT_EQ(r.rdx, before.rdx);
    EXPECT_EQ(r.rsi, before.rsi);
    EXPECT_EQ(r.rdi, before.rdi);
    EXPECT_EQ(r.rbp, before.rbp);
    EXPECT_EQ(r.rsp, before.rsp);
    EXPECT_EQ(r.r8, before.r8);
    EXPECT_EQ(r.r9, before.r9);
    EXPECT_EQ(r.r10, before.r10);
    EXPECT_EQ(r.r12, before.r12);
    EXPECT_EQ(r.r13, before.r13);
    EXPECT_EQ(r.r14, before.r14);
    EXPECT_EQ(r.r15, before.r15);
  };

  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysGetpid);
  EXPECT_EQ(regs.rip, kCodeAddr + 2);
  EXPECT_EQ(regs.rcx, kCodeAddr + 2);
  expect_preserved(regs);

  // The return value is the next call's number, since the code doesn't touch rax.
  regs.rax = kSysExitGroup;
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysExitGroup);
  EXPECT_EQ(regs.rip, kCodeAddr + 4);
  expect_preserved(regs);
}

TEST_P(PlatformTest, DestroyingAddressSpaceReapsStub) {
  auto code = LoadCode(*as_, kCodeAddr, kRoundTripCode);
  ASSERT_OK(code);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  pid_t stub = StubPid(*as_);
  // The stub is the master stub's child (the test process forks nothing
  // but the master), alive until the address space goes, and then gone
  // without a zombie.
  ASSERT_EQ(kill(stub, 0), 0) << strerror(errno);
  EXPECT_NE(stub, MasterPid());
  as_.reset();
  EXPECT_TRUE(ProcessGone(stub));
  EXPECT_EQ(kill(MasterPid(), 0), 0) << "the master died with a stub";
}

// Creates a process that just sleeps, with pid `pid` (clone3 set_tid); -1 if
// this process may not choose pids (it needs CAP_SYS_ADMIN over its PID namespace).
pid_t SpawnSleeperWithPid(pid_t pid) {
  clone_args args{};
  args.exit_signal = SIGCHLD;
  uint64_t tid = static_cast<uint64_t>(pid);
  args.set_tid = reinterpret_cast<uint64_t>(&tid);
  args.set_tid_size = 1;
  long r = syscall(SYS_clone3, &args, sizeof(args));
  if (r == 0) {
    for (;;) pause();
  }
  return r < 0 ? -1 : static_cast<pid_t>(r);
}

TEST_P(PlatformTest, StubDeathIsReportedAndItsPidLeftAlone) {
  auto code = LoadCode(*as_, kCodeAddr, kRoundTripCode);
  ASSERT_OK(code);
  pid_t stub = StubPid(*as_);
  ASSERT_EQ(kill(stub, SIGKILL), 0) << strerror(errno);
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kExited, regs));
  EXPECT_TRUE(WIFSIGNALED(stop->status));
  EXPECT_EQ(WTERMSIG(stop->status), SIGKILL);
  // The death stays reported; the address space no longer takes mappings.
  stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kExited, regs));
  EXPECT_EQ(WTERMSIG(stop->status), SIGKILL);
  EXPECT_ERRNO(as_->MapFile(kDataAddr, *code, kPageSize, PROT_READ), ESRCH);

  // Switch reaped the stub, so its pid is free for anyone. Destroying the
  // address space must not signal or reap whoever holds it now.
  pid_t sleeper = SpawnSleeperWithPid(stub);
  if (sleeper < 0) {
    std::printf("[     INFO ] cannot reuse pid %d (%s): only checking a clean teardown\n", stub,
                strerror(errno));
  }
  as_.reset();
  if (sleeper > 0) {
    int status = 0;
    EXPECT_EQ(waitpid(sleeper, &status, WNOHANG), 0) << "the process now using the stub's old pid "
                                                        "was killed and reaped";
    kill(sleeper, SIGKILL);
    waitpid(sleeper, &status, 0);
  } else {
    EXPECT_TRUE(ProcessGone(stub));
  }
}

// Threads: a second host thread adopts a thread NewThread made through the
// first; both run in one address space, and mappings made through either
// are seen by both.
TEST_P(PlatformTest, AdoptedThreadSharesTheAddressSpace) {
  auto code = LoadCode(*as_, kCodeAddr, kLoadCode);
  ASSERT_OK(code);
  auto data = MapData(*as_, kDataAddr, PROT_READ | PROT_WRITE);
  ASSERT_OK(data);
  Poke32(*data + 0x123, 0xfeedf00d);
  auto token = as_->NewThread();
  ASSERT_OK(token);
  std::atomic<bool> failed{false};
  std::thread other([&] {
    auto ctx = platform_->NewContext();
    if (!ctx->Adopt(*as_, *token).ok()) {
      failed = true;
      return;
    }
    Registers regs = EntryRegs(kLoadRip - 5);
    auto stop = ctx->Switch(*as_, regs);
    if (!StoppedWith(stop, Kind::kSyscall, regs) || regs.rdi != 0xfeedf00d) failed = true;
    // A mapping made through this thread, for the first one to use.
    if (!LoadCode(*as_, kCodeAddr + kPageSize, kRoundTripCode).ok()) failed = true;
    as_->ReleaseThread();
  });
  other.join();
  ASSERT_FALSE(failed);
  Registers regs = EntryRegs(kCodeAddr + kPageSize);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  EXPECT_EQ(regs.orig_rax, kSysGetpid);
  // The released thread is gone; the stub goes with the address space.
  pid_t stub = StubPid(*as_);
  as_.reset();
  EXPECT_TRUE(ProcessGone(stub));
}

// Interrupt reaches only the thread of its context; the leader's host thread
// may release its thread first and the other thread goes on, then destroys
// the address space and leaves nothing behind.
TEST_P(PlatformTest, ThreadsInterruptAndReleaseIndependently) {
  ASSERT_OK(LoadCode(*as_, kCodeAddr, kSpinCode));
  ASSERT_OK(LoadCode(*as_, kCodeAddr + kPageSize, kRoundTripCode));
  pid_t stub = StubPid(*as_);
  auto token = as_->NewThread();
  ASSERT_OK(token);
  std::unique_ptr<Context> ctx2 = platform_->NewContext();
  std::atomic<int> phase{0};
  std::atomic<bool> failed{false};
  std::thread other([&] {
    if (!ctx2->Adopt(*as_, *token).ok()) {
      failed = true;
      phase = 1;
      return;
    }
    phase = 1;
    Registers regs = EntryRegs(kCodeAddr);
    auto stop = ctx2->Switch(*as_, regs);  // spins until interrupted
    if (!StoppedWith(stop, Kind::kInterrupted, regs) || regs.rip != kCodeAddr) failed = true;
    while (phase.load() < 2) std::this_thread::yield();
    // The leader's thread is released: this one still runs.
    regs = EntryRegs(kCodeAddr + kPageSize);
    stop = ctx2->Switch(*as_, regs);
    if (!StoppedWith(stop, Kind::kSyscall, regs) || regs.orig_rax != kSysGetpid) failed = true;
    as_.reset();
  });
  while (phase.load() < 1) std::this_thread::yield();
  // The leader runs a syscall round trip while the other thread spins.
  Registers regs = EntryRegs(kCodeAddr + kPageSize);
  auto stop = ctx_->Switch(*as_, regs);
  EXPECT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ctx2->Interrupt();
  as_->ReleaseThread();
  phase = 2;
  other.join();
  EXPECT_FALSE(failed);
  EXPECT_TRUE(ProcessGone(stub));
}

// A thread nobody adopts is discarded without touching the others.
TEST_P(PlatformTest, DiscardedThreadLeavesTheRestRunning) {
  ASSERT_OK(LoadCode(*as_, kCodeAddr, kRoundTripCode));
  auto token = as_->NewThread();
  ASSERT_OK(token);
  as_->DiscardThread(*token);
  // It finishes exiting on its own once detached at its exit stop.
  EXPECT_TRUE(ProcessGone(static_cast<pid_t>(token->id))) << "the discarded thread lives on";
  Registers regs = EntryRegs(kCodeAddr);
  auto stop = ctx_->Switch(*as_, regs);
  ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
}

// Many threads made and released in turn: the thread-creation cost.
TEST_P(PlatformTest, ThreadCreationTime) {
  ASSERT_OK(LoadCode(*as_, kCodeAddr, kRoundTripCode));
  constexpr int kRounds = 50;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; i++) {
    auto token = as_->NewThread();
    ASSERT_OK(token);
    bool ok = false;
    std::thread other([&] {
      auto ctx = platform_->NewContext();
      if (!ctx->Adopt(*as_, *token).ok()) return;
      Registers regs = EntryRegs(kCodeAddr);
      ok = StoppedWith(ctx->Switch(*as_, regs), Kind::kSyscall, regs);
      as_->ReleaseThread();
    });
    other.join();
    ASSERT_TRUE(ok) << "round " << i;
  }
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  std::printf("[     INFO ] thread create+adopt+run+release: %.0f us\n",
              static_cast<double>(us) / kRounds);
}

// Stub processes come from the master stub; killing the master takes every
// stub it made with it (their PR_SET_PDEATHSIG), and a Switch then reports
// the death instead of hanging.
TEST_P(PlatformTest, StubsDieWithTheMaster) {
  ASSERT_OK(LoadCode(*as_, kCodeAddr, kGetpidLoopCode));
  pid_t stub = StubPid(*as_);
  ASSERT_EQ(kill(MasterPid(), SIGKILL), 0);
  // The death signal reaches the stub asynchronously: it may still make a
  // few calls first, then every Switch reports its death.
  Registers regs = EntryRegs(kCodeAddr);
  Result<StopInfo> stop = Errno{EAGAIN};
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    stop = ctx_->Switch(*as_, regs);
    ASSERT_TRUE(stop.ok());
  } while (stop->kind == Kind::kSyscall && std::chrono::steady_clock::now() < end);
  ASSERT_TRUE(StoppedWith(stop, Kind::kExited, regs));
  EXPECT_EQ(WTERMSIG(stop->status), SIGKILL);
  as_.reset();
  // An untraced stub outliving its master is an orphan, for the PID
  // namespace's init to reap; this test may be that init.
  std::thread reaper([stub] {
    for (int i = 0; i < 2000 && waitpid(stub, nullptr, __WALL | WNOHANG) == 0; i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  reaper.join();
  EXPECT_TRUE(ProcessGone(stub));
  // No new address space can be made any more.
  EXPECT_FALSE(platform_->NewAddressSpace().ok());
}

// The cost of a new address space: a clone of the master, seized, tied to
// the master's life.
TEST_P(PlatformTest, AddressSpaceCreationTime) {
  constexpr int kRounds = 50;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; i++) {
    auto as = platform_->NewAddressSpace();
    ASSERT_OK(as);
  }
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  std::printf("[     INFO ] address space create+destroy: %.0f us\n",
              static_cast<double>(us) / kRounds);
}

TEST_P(PlatformTest, SyscallRoundTripTime) {
  auto code = LoadCode(*as_, kCodeAddr, kGetpidLoopCode);
  ASSERT_OK(code);
  Registers regs = EntryRegs(kCodeAddr);
  for (int i = 0; i < 100; i++) {
    auto stop = ctx_->Switch(*as_, regs);
    ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  }
  constexpr int kRounds = 2000;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; i++) {
    regs.rax = 1;
    auto stop = ctx_->Switch(*as_, regs);
    ASSERT_TRUE(StoppedWith(stop, Kind::kSyscall, regs));
  }
  std::chrono::duration<double, std::micro> spent = std::chrono::steady_clock::now() - start;
  double per_switch = spent.count() / kRounds;
  // Information only: the cost depends on the host and on CPU placement.
  std::printf("[     INFO ] syscall stop round trip: %.2f us per Switch (%d rounds)\n", per_switch,
              kRounds);
  RecordProperty("syscall_round_trip_ns", static_cast<int>(per_switch * 1000));
}

INSTANTIATE_TEST_SUITE_P(Platforms, PlatformTest, ::testing::Values("ptrace", "systrap"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace husk::platform
