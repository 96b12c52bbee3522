// Stub processes, shared by the ptrace and systrap platforms: the stub's code
// page, the master stub every stub process is cloned from, the stub's own
// seccomp filter, and running a syscall in a stopped, traced stub thread.
//
// A stub process holds nothing but the code between husk_stub_begin and
// husk_stub_end (stub.S), copied to kStubBase; every other mapping it has is
// one the sentry asked for.
#ifndef HUSK_PLATFORM_PTRACE_STUB_PROCESS_H_
#define HUSK_PLATFORM_PTRACE_STUB_PROCESS_H_

#include <sched.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "base/result.h"
#include "platform/platform.h"
#include "platform/ptrace/ptrace.h"

extern "C" {
extern char husk_stub_begin[];
extern char husk_stub_end[];
}

namespace husk::platform {

// Where a label of stub.S lies in a stub process.
inline uintptr_t StubAddress(const char* label) {
  return kStubBase + static_cast<uintptr_t>(label - husk_stub_begin);
}
uintptr_t StubSyscallAddress();
uintptr_t StubCloneAddress();

// The flags of an injected thread clone (and the only ones the stub's
// filter lets clone take).
inline constexpr uint64_t kStubThreadFlags =
    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;

// Waits for pid, retrying on EINTR; ru, if given, receives what a stub
// that has died used (wait4(2)).
int WaitFor(pid_t pid, int* status, struct rusage* ru = nullptr);

int64_t Nanoseconds(const timeval& tv);

// What stub process pid has used so far, from its CPU clocks (ids as
// clock_getcpuclockid(3) builds them: Linux lets any process in the PID
// namespace read them).
Result<CpuUsage> StubProcessUsage(pid_t pid);

// What a context's Switch and Interrupt share, on both platforms: the stub
// thread it is running (pid << 32 | tid; 0: none) and an interrupt asked
// for before or during a run.
class RunGate {
 public:
  // Runs run() marked as running stub thread tid of process pid, unless an
  // interrupt came first (then kInterrupted at once).
  template <typename Fn>
  Result<StopInfo> Run(pid_t pid, pid_t tid, Fn run) {
    running_.store((static_cast<uint64_t>(pid) << 32) | static_cast<uint32_t>(tid));
    struct Clear {
      std::atomic<uint64_t>& r;
      ~Clear() { r.store(0); }
    } clear{running_};
    if (interrupt_.exchange(false)) {
      StopInfo stop;
      stop.kind = StopInfo::Kind::kInterrupted;
      return stop;
    }
    return run();
  }
  // Context::Interrupt: flagged, and the running stub thread (if any) gets
  // SIGURG, which stops a traced thread and makes systrap's handler report.
  void Interrupt();
  // A run answered the interrupt.
  void Answered() { interrupt_.store(false); }
  std::atomic<bool>* interrupt() { return &interrupt_; }

 private:
  std::atomic<uint64_t> running_{0};
  std::atomic<bool> interrupt_{false};
};

// The stub's own filter (a struct sock_filter array). For the ptrace
// platform (systrap_fd < 0) it allows what the stub's code and the injected
// calls need and nothing else; application syscalls never reach it
// (PTRACE_SYSEMU skips them before seccomp runs). For systrap it allows the
// same, and what the systrap handler needs (mappings of systrap_fd too), to
// code in the stub's page only: every syscall made from anywhere else traps
// (SECCOMP_RET_TRAP), which is how the application's calls reach the sentry.
//
// Stub processes inherit that filter from the master. Systrap stacks a second
// one on each before letting it go: from the stub's page, only what the
// handler needs while the application runs (no process clone, no kill, no
// pause, no disposition or filter changes: the application can jump there).
Result<std::vector<unsigned char>> BuildStubFilter(int memfd, int systrap_fd = -1);
Result<std::vector<unsigned char>> BuildSystrapRuntimeFilter(int memfd, int systrap_fd);

// One stub thread: the host thread of the address space that one sentry
// host thread traces and runs application code in.
struct StubThread {
  pid_t tid = 0;
  Registers init_regs{};  // where injections start from (segments, flags)
  int last_cpu = -1;
  // Exited, released or reaped: never signal, trace or wait for it again
  // (its tid may be any new thread's).
  bool dead = false;
  int status = 0;  // the wait status, once reaped
};

pid_t HostTid();

// Points a stopped stub thread at `rip` with syscall nr and its arguments
// in the registers, and resumes it.
Status StartInjection(const StubThread& th, uintptr_t rip, long nr, uint64_t a0 = 0,
                      uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0,
                      uint64_t a5 = 0);
// Runs one syscall in a stopped stub thread: the registers point at the
// stub's "syscall; int3" (or the clone entry) and the tracer waits for the
// trap that follows. Returns the syscall's raw result.
Result<long> InjectInto(StubThread& th, uintptr_t rip, long nr, uint64_t a0, uint64_t a1,
                        uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5);
// Ends a stub thread we trace: it stops at its exit (PTRACE_EVENT_EXIT) and
// is detached there, so it finishes exiting on its own.
void ReleaseStubThread(StubThread& th);
// Seizes a parked stub thread (made by an injected clone) for the calling
// host thread: PTRACE_SEIZE, then PTRACE_INTERRUPT, then the event stop.
Result<StubThread> SeizeStubThread(pid_t tid);

// The size of the XSAVE area for the features the host enabled (CPUID leaf
// 0xD, sub-leaf 0, EBX), at least the 512-byte FXSAVE area and its header.
size_t XstateSize();

// The master stub: a stub process made at boot that every other stub
// process is cloned from, so the sentry never forks after boot (a fork of
// the sentry costs what its page tables cost). Its host thread traces it,
// takes no sentry lock, and serves one request at a time: an injected
// clone(CLONE_FILES|SIGCHLD) whose child parks until its adopter seizes it.
class MasterStub {
 public:
  MasterStub() = default;
  ~MasterStub();
  MasterStub(const MasterStub&) = delete;
  MasterStub& operator=(const MasterStub&) = delete;

  // filter: the stubs' seccomp filter; must outlive the master.
  Status Start(const std::vector<unsigned char>& filter);
  pid_t pid() const { return pid_; }
  // A new parked stub process; blocks until the master made it.
  Result<pid_t> NewProcess();

 private:
  struct Request {
    bool done = false;
    long result = 0;
  };
  void Serve(const std::vector<unsigned char>& filter);
  int Fork(const std::vector<unsigned char>& filter);

  std::thread thread_;
  pid_t pid_ = 0;
  StubThread th_;  // used by the master's host thread only
  std::mutex mu_;  // a leaf
  std::condition_variable cv_;
  std::deque<Request*> queue_;
  bool started_ = false, stopping_ = false, dead_ = false;
  int start_error_ = 0;
};

}  // namespace husk::platform

#endif  // HUSK_PLATFORM_PTRACE_STUB_PROCESS_H_
