// The ptrace platform: each address space is a stub host process traced with
// PTRACE_SYSEMU, so the host never executes an application syscall. Memory is
// mapped by injecting mmap/munmap into the stub, which shares the sentry's fd
// table (CLONE_FILES) and can therefore name the memory file directly.
//
// Processes: a master stub, made when the platform is created, clones every
// stub process; the host thread that asks for one seizes it (PTRACE_SEIZE),
// so the sentry never forks after boot.
//
// Threads: ptrace binds a tracee to the host thread that traced it. Each
// sentry host thread running application code traces its own stub thread in
// the address space (NewThread, Context::Adopt), and every operation on an
// address space goes through the calling host thread's stub thread.
//
// Lock order: an address space's mutex and the master stub's are leaves,
// held only around their maps and flags, never across an injected syscall or
// a wait for a stop; callers (the memory manager) may hold their own locks.
#ifndef HUSK_PLATFORM_PTRACE_PTRACE_H_
#define HUSK_PLATFORM_PTRACE_PTRACE_H_

#include <sys/types.h>

#include <memory>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "platform/platform.h"

namespace husk::platform {

// Where the stub's code lives in every application address space; the
// application may map anything below it.
inline constexpr uintptr_t kStubBase = 0x7ffffffd0000;
inline constexpr size_t kStubSize = 0x1000;

class MasterStub;

class PtracePlatform : public Platform {
 public:
  ~PtracePlatform() override;
  // memfd: the sandbox's memory file (shared with stubs through CLONE_FILES).
  // Must be called before the sentry installs its own seccomp filter: it
  // precomputes the stubs' filter and forks the master stub.
  static Result<std::unique_ptr<PtracePlatform>> Create(int memfd);

  const char* Name() const override { return "ptrace"; }
  uintptr_t MaxUserAddress() const override { return kStubBase; }
  Result<std::unique_ptr<AddressSpace>> NewAddressSpace() override;
  std::unique_ptr<Context> NewContext() override;

  // Reserves kStubBase in the calling (sentry) process so nothing of the
  // sentry's lands there. Returns false if the range is already taken.
  static bool ReserveStubRange();

  // For tests: the host pid of the stub process behind as, and of the master.
  static pid_t StubPid(AddressSpace& as);
  pid_t MasterPid() const;

 private:
  explicit PtracePlatform(int memfd);
  int memfd_;
  std::vector<unsigned char> stub_filter_;  // a struct sock_filter array
  std::unique_ptr<MasterStub> master_;
};

}  // namespace husk::platform

#endif  // HUSK_PLATFORM_PTRACE_PTRACE_H_
