// The platform interface: turns "run these registers in this address space
// until something needs the kernel" into host mechanics. Implementations
// (ptrace, later systrap and kvm) never interpret a syscall; they only
// deliver it to the sentry.
#ifndef HUSK_PLATFORM_PLATFORM_H_
#define HUSK_PLATFORM_PLATFORM_H_

#include <errno.h>
#include <signal.h>
#include <sys/user.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"

namespace husk::platform {

// The application's general registers (x86_64 layout).
using Registers = user_regs_struct;

// Why Context::Switch returned.
struct StopInfo {
  enum class Kind {
    kSyscall,  // regs.orig_rax holds the number; regs.rip is past the instruction
    kFault,    // a memory fault at addr (SIGSEGV/SIGBUS raised by the hardware)
    kSignal,   // another synchronous signal raised by the app's own execution (SIGILL, SIGFPE, SIGTRAP)
    kExited,   // the host process holding the address space died (status is a wait status)
    kInterrupted,  // Context::Interrupt was called (regs are the app's, nothing happened)
  };
  Kind kind = Kind::kSyscall;
  uintptr_t addr = 0;
  siginfo_t info{};
  int status = 0;
};

// CPU time the host spent running an address space's code, in nanoseconds:
// user and system as the host's accounting splits them, and the scheduler's
// precise runtime, which need not equal their sum (getrusage(2) scales the
// split to it; so does the sentry).
struct CpuUsage {
  int64_t user = 0;
  int64_t system = 0;
  int64_t runtime = 0;
};

// A host thread made in an address space for a new application thread,
// waiting to be adopted by the context that will run it.
struct ThreadToken {
  int64_t id = 0;
};

// An application address space. All mappings name the sandbox's memory file.
//
// Threads: an address space runs one application thread per context that
// adopted it (the creator's context adopts it first). Every operation below
// acts through the calling host thread's own thread in it.
class AddressSpace {
 public:
  virtual ~AddressSpace() = default;
  // What the host process behind this address space has used so far (its
  // final usage once it is gone); ENOSYS where the platform cannot tell.
  virtual Result<CpuUsage> Usage() { return Errno{ENOSYS}; }
  // Maps [addr, addr+length) to the memory file at offset, MAP_SHARED, with
  // prot; replaces whatever was mapped there.
  virtual Status MapFile(uintptr_t addr, uint64_t offset, size_t length, int prot) = 0;
  // Removes any host mapping in [addr, addr+length).
  virtual Status Unmap(uintptr_t addr, size_t length) = 0;
  // Changes the protection of the host mappings in [addr, addr+length)
  // (copy-on-write write-protects and re-enables writes this way). ENOSYS:
  // not supported; the caller unmaps instead.
  virtual Status Protect(uintptr_t addr, size_t length, int prot) { return Errno{ENOSYS}; }
  // Makes a thread for another application thread sharing this address
  // space (clone(CLONE_VM)); the context that will run it adopts it with
  // Context::Adopt, on its own host thread.
  virtual Result<ThreadToken> NewThread() { return Errno{ENOSYS}; }
  // Ends the calling host thread's thread here (the application thread
  // exited, or exec left this address space); the other threads go on.
  // Idempotent; the address space may then be destroyed by any thread.
  virtual void ReleaseThread() {}
  // Ends a thread NewThread made that no context will adopt (the host
  // refused the host thread meant to run it).
  virtual void DiscardThread(ThreadToken token) {}
};

// An execution context: one host thread's ability to run application code.
class Context {
 public:
  virtual ~Context() = default;
  // Runs regs in as until a syscall, fault, signal or death; regs are updated
  // in place. Floating point state stays with the context's host thread.
  virtual Result<StopInfo> Switch(AddressSpace& as, Registers& regs) = 0;
  // Makes a Switch running (or about to run) on this context's thread
  // return kInterrupted soon; callable from any thread. A signal sent to the
  // task uses it to get the task back into the sentry.
  virtual void Interrupt() = 0;
  // Takes over the thread NewThread made in as, on the calling host thread,
  // which from then on may Switch into as.
  virtual Status Adopt(AddressSpace& as, ThreadToken token) { return Errno{ENOSYS}; }
  // The application's floating-point and vector registers in as, in the
  // XSAVE layout (legacy FXSAVE area first); signal frames carry them.
  virtual Result<std::vector<uint8_t>> GetFpState(AddressSpace& as) = 0;
  // Restores what GetFpState returned (possibly edited by the application
  // in a signal frame: EINVAL if the host refuses it).
  virtual Status SetFpState(AddressSpace& as, const std::vector<uint8_t>& state) = 0;
};

class Platform {
 public:
  virtual ~Platform() = default;
  virtual const char* Name() const = 0;
  // Lowest and one-past-highest address the application may map.
  virtual uintptr_t MinUserAddress() const { return 0x10000; }
  virtual uintptr_t MaxUserAddress() const = 0;
  // Whether address spaces are filled on fault (true) or must be mapped eagerly.
  virtual bool SupportsLazyFaults() const { return true; }
  virtual Result<std::unique_ptr<AddressSpace>> NewAddressSpace() = 0;
  virtual std::unique_ptr<Context> NewContext() = 0;
};

}  // namespace husk::platform

#endif  // HUSK_PLATFORM_PLATFORM_H_
