// The systrap platform: each address space is a stub process, as with
// ptrace, but its threads are not traced while the application runs. The
// stub runs under a seccomp filter that traps (SECCOMP_RET_TRAP) every
// syscall made outside the stub's own page; the stub's signal handler
// (stub.S) then says "stopped" in a control page it shares with the sentry
// and waits on a futex there, and the sentry reads and edits the signal
// frame in place (registers, FP state) before telling it to go on. Faults
// and the sentry's interrupts arrive the same way. A syscall costs a trap,
// a signal delivery, two futex hand-overs and a sigreturn: several times
// less than ptrace's stops.
//
// Memory is mapped by the stub itself, at the sentry's request through the
// control page (mmap from the stub's page is allowed, and only of the
// memory file or of the control slots). ptrace is used only to set a new
// stub process up (its handlers, its first slot), and then lets go.
//
// Trust: the stub's page and every thread's control slot lie in the
// application's address space, so an application that jumps into the
// stub's code can make the calls the stub may make (map any page of the
// sandbox's memory file or of the control slots into its own address
// space). The sandbox stays the boundary, as with gVisor's systrap; ptrace,
// whose stubs take no call from the application at all, also keeps the
// sandbox's processes from each other's pages. Everything the sentry reads
// from a slot is treated as the application's input.
//
// Lock order: an address space's mutex, then the slot pool's (a leaf).
#ifndef HUSK_PLATFORM_SYSTRAP_SYSTRAP_H_
#define HUSK_PLATFORM_SYSTRAP_SYSTRAP_H_

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "platform/platform.h"
#include "platform/ptrace/ptrace.h"

namespace husk::platform {

// A thread's control slot: its control page, then its signal stack.
inline constexpr size_t kSystrapSlotSize = size_t{64} << 10;
// Threads per address space (each has a slot in the stub's address space,
// just below the stub's page) and slots in all (the pool the sentry maps).
inline constexpr size_t kSystrapMaxThreads = 16384;
inline constexpr size_t kSystrapPoolSlots = 16384;
inline constexpr uintptr_t kSystrapSlotsBase = kStubBase - kSystrapMaxThreads * kSystrapSlotSize;

class MasterStub;

class SystrapPlatform : public Platform {
 public:
  ~SystrapPlatform() override;
  // memfd: the sandbox's memory file (shared with stubs through CLONE_FILES).
  // Must be called before the sentry installs its own seccomp filter (it
  // makes the slot pool, builds the stubs' filter and forks the master).
  static Result<std::unique_ptr<SystrapPlatform>> Create(int memfd);

  const char* Name() const override { return "systrap"; }
  uintptr_t MaxUserAddress() const override { return kSystrapSlotsBase; }
  Result<std::unique_ptr<AddressSpace>> NewAddressSpace() override;
  std::unique_ptr<Context> NewContext() override;

  // For tests: the host pid of the stub process behind as, and of the master.
  static pid_t StubPid(AddressSpace& as);
  pid_t MasterPid() const;

  // The slot pool (internal to the platform's address spaces).
  Result<uint32_t> AllocateSlot();
  void FreeSlot(uint32_t slot);
  uint8_t* SlotAt(uint32_t slot) const { return pool_ + size_t{slot} * kSystrapSlotSize; }
  int pool_fd() const { return pool_fd_.get(); }
  int memfd() const { return memfd_; }
  bool fsgsbase() const { return fsgsbase_; }
  uint64_t spin() const { return spin_; }

 private:
  explicit SystrapPlatform(int memfd);
  int memfd_;
  UniqueFd pool_fd_;
  uint8_t* pool_ = nullptr;  // the pool mapped in the sentry
  bool fsgsbase_ = false;    // user mode may use rdfsbase/wrfsbase
  uint64_t spin_ = 1;        // pause instructions a waiter spins for before it sleeps
  std::mutex mu_;            // a leaf: the pool's free list
  std::vector<uint32_t> free_slots_;
  uint32_t next_slot_ = 0;
  std::vector<unsigned char> stub_filter_;     // every stub's, from the master
  std::vector<unsigned char> runtime_filter_;  // stacked on each before it is let go
  std::unique_ptr<MasterStub> master_;
};

}  // namespace husk::platform

#endif  // HUSK_PLATFORM_SYSTRAP_SYSTRAP_H_
