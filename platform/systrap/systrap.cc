#include "platform/systrap/systrap.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>

#include "platform/ptrace/stub_process.h"

extern "C" {
extern char husk_systrap_handler[];
extern char husk_systrap_restorer[];
extern char husk_systrap_park[];
}

namespace husk::platform {
namespace {

// The kernel's signal frame on x86_64 (struct ucontext and struct sigcontext
// of arch/x86/include/uapi/asm/sigcontext.h), as the handler receives it.
struct KSigcontext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip,
      eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2, fpstate;
  uint64_t reserved[8];
};
struct KUcontext {
  uint64_t flags, link;
  uint64_t ss_sp;
  int32_t ss_flags, ss_pad;
  uint64_t ss_size;
  KSigcontext mc;
  uint64_t sigmask;
};
static_assert(sizeof(KSigcontext) == 256);
static_assert(offsetof(KUcontext, mc) == 40 && sizeof(KUcontext) == 304);

// struct kernel_sigaction, as rt_sigaction(2) reads it.
struct KSigaction {
  uint64_t handler, flags, restorer, mask;
};

// A thread's control page; stub.S names the same offsets (CTL_*).
struct SystrapCtl {
  std::atomic<uint32_t> state;  // a futex word: ST_* below; 0 once the thread is gone
  uint32_t pad;
  uint64_t sig, info, uctx;  // what the handler was given (stub addresses)
  uint64_t fs, cur_fs;       // the thread pointer wanted, and the one in force
  uint64_t gs, cur_gs;
  uint64_t nr, args[6], ret;  // a syscall the sentry asks the stub to make
  uint64_t fsgsbase;          // nonzero: the handler reads the bases itself
  uint64_t zero_mask;         // always 0: a new thread's signal mask
  uint64_t ss_sp;             // the thread's signal stack (stack_t)
  int32_t ss_flags, ss_pad;
  uint64_t ss_size;
  KSigaction act;  // the handler's disposition, installed at set-up
  uint64_t spin;   // how many pause instructions the handler spins for before it sleeps
};
static_assert(offsetof(SystrapCtl, sig) == 8 && offsetof(SystrapCtl, uctx) == 24);
static_assert(offsetof(SystrapCtl, fs) == 32 && offsetof(SystrapCtl, cur_gs) == 56);
static_assert(offsetof(SystrapCtl, nr) == 64 && offsetof(SystrapCtl, ret) == 120);
static_assert(offsetof(SystrapCtl, fsgsbase) == 128 && offsetof(SystrapCtl, ss_sp) == 144);
static_assert(offsetof(SystrapCtl, act) == 168 && offsetof(SystrapCtl, spin) == 200);
static_assert(sizeof(SystrapCtl) <= 4096);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

enum : uint32_t {
  kGone = 0,  // written by the kernel at the thread's exit (CLONE_CHILD_CLEARTID)
  kStopped = 1,
  kRun = 2,
  kSyscall = 3,
  kClone = 4,
  kStarting = 5,  // set by the sentry before the thread first reports
  // Or'ed into the state by a waiter about to sleep on it: whoever changes
  // the state then wakes it (and only then makes the futex call).
  kSleeping = 0x80000000,
};

constexpr uint64_t kSaRestorer = 0x04000000;  // SA_RESTORER: the kernel's, not in glibc's headers
constexpr size_t kCtlBytes = 4096;
// How long either side of a hand-over spins, at most, before it sleeps.
constexpr int kSpinMicros = 20;  // the signal stack is the rest of the slot
constexpr int kSysSeccomp = 1;   // si_code of a seccomp SIGSYS
constexpr uint32_t kFpXstateMagic1 = 0x46505853;
constexpr uintptr_t kVsyscallPage = 0xffffffffff600000;

// The signals the stub takes: the seccomp trap, the application's
// synchronous faults and signals, and the sentry's interrupt.
constexpr int kHandledSignals[] = {SIGSYS, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGURG};

long Futex(std::atomic<uint32_t>* word, int op, uint32_t val, const timespec* timeout = nullptr) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, val, timeout, nullptr, 0);
}

// Gives th an order (kRun, kSyscall, kClone), waking it if it sleeps.
void Order(SystrapCtl* c, uint32_t order) {
  if ((c->state.exchange(order, std::memory_order_acq_rel) & kSleeping) != 0) {
    Futex(&c->state, FUTEX_WAKE, INT32_MAX);
  }
}

// How many pause instructions take about `us` microseconds here.
uint64_t PausesFor(int us) {
  constexpr int kProbe = 20000;
  timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < kProbe; i++) __builtin_ia32_pause();
  clock_gettime(CLOCK_MONOTONIC, &b);
  const double ns =
      static_cast<double>(b.tv_sec - a.tv_sec) * 1e9 + static_cast<double>(b.tv_nsec - a.tv_nsec);
  const double per = std::max(ns / kProbe, 1.0);
  return std::max<uint64_t>(static_cast<uint64_t>(us * 1000.0 / per), 1);
}

uintptr_t SlotAddress(uint32_t index) { return kSystrapSlotsBase + index * kSystrapSlotSize; }

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A wait shorter than this is spun through rather than slept through: a
// futex hand-over between two processes costs two context switches (about
// 8 us each on the build machines, whose kernels isolate page tables), a
// spin only the time it lasts, on a CPU that may have had other work.
constexpr int64_t kSpinWindowNs = 10'000;
// The same for the application's runs, which as measured also hold the
// trap, the signal delivery and the sigreturn (about 5 us here).
constexpr int64_t kAppSpinWindowNs = 20'000;

// One stub thread of an address space and the slot it owns, and what its
// waits have taken lately, to choose between spinning and sleeping.
struct Thread {
  pid_t tid = 0;
  uint32_t index = 0;  // its slot in the stub's address space
  uint32_t pool = 0;   // its slot in the pool
  bool dead = false;
  int64_t app_ns = 0;      // average run of the application between stops
  int64_t stopped_at = 0;  // when the last stop was seen
  int last_nr = -1;        // the syscall of the last stop, if it was one
  unsigned probes = 0;
  // Average time the sentry took over each syscall, in microseconds.
  std::array<uint16_t, 512> handle_us{};
};

bool ProcessGone(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

class SystrapAddressSpace : public AddressSpace {
 public:
  SystrapAddressSpace(SystrapPlatform& platform, pid_t pid, UniqueFd pidfd)
      : platform_(platform), pid_(pid), pidfd_(std::move(pidfd)) {}

  ~SystrapAddressSpace() override {
    // Ends the process (pidfd_send_signal cannot hit a recycled pid) and
    // waits until it is gone, so no slot returns to the pool while a stub
    // thread may still write to it.
    syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    pollfd p{pidfd_.get(), POLLIN, 0};
    int ready = 0;
    for (int i = 0; i < 100 && (ready = poll(&p, 1, 100)) == 0; i++) {
    }
    // Still there after 10 s (the host did not schedule its end): its
    // slots are lost rather than handed to another process.
    if (ready <= 0) return;
    std::lock_guard<std::mutex> l(mu_);
    for (uint32_t pool : pool_of_index_) {
      madvise(platform_.SlotAt(pool), kSystrapSlotSize, MADV_REMOVE);
      platform_.FreeSlot(pool);
    }
  }

  pid_t pid() const { return pid_; }
  uint64_t spin() const { return platform_.spin(); }
  SystrapCtl* Ctl(const Thread& th) const {
    return reinterpret_cast<SystrapCtl*>(platform_.SlotAt(th.pool));
  }

  // The calling host thread's stub thread, or null. Only its owner uses an
  // entry, and entries stay put (std::map), so it is used unlocked.
  Thread* Self() {
    std::lock_guard<std::mutex> l(mu_);
    auto it = threads_.find(HostTid());
    return it == threads_.end() ? nullptr : &it->second;
  }

  // How a wait for a stop ends when the stub does not report: a stub that
  // runs the application may take any time, but answers an interrupt at
  // once; one that runs a call of the sentry's answers within moments. A
  // stub the application broke (it can write its control page, and jump
  // into the stub's code) never hangs the sentry: past its limit it is
  // killed, and the wait ends as if it had died.
  struct WaitLimit {
    const std::atomic<bool>* interrupt = nullptr;  // resent as SIGURG while pending
    int64_t limit_ns = 0;                          // 0: none but the interrupt's
  };
  static constexpr int64_t kCallLimitNs = int64_t{10} * 1000 * 1000 * 1000;
  static constexpr int64_t kInterruptLimitNs = int64_t{5} * 1000 * 1000 * 1000;

  // Waits until th reports (kStopped): ESRCH if it or its process is gone.
  // Spins a while first: the stub's answer often comes within microseconds,
  // and a futex hand-over between processes costs far more.
  Status WaitStopped(Thread& th, bool spin = true, bool* caught = nullptr,
                     WaitLimit limit = WaitLimit{nullptr, kCallLimitNs}) {
    SystrapCtl* c = Ctl(th);
    const uint64_t budget = spin ? platform_.spin() : 0;
    for (uint64_t i = 0; i < budget; i++) {
      uint32_t s = c->state.load(std::memory_order_acquire);
      if ((s & ~kSleeping) == kStopped) {  // the stub may already sleep on it
        if (caught != nullptr) *caught = true;
        return Ok();
      }
      if (s == kGone) break;
      __builtin_ia32_pause();
    }
    const int64_t start = NowNs();
    int64_t interrupted_at = 0;
    for (;;) {
      uint32_t s = c->state.load(std::memory_order_acquire);
      if ((s & ~kSleeping) == kStopped) return Ok();
      if (s == kGone) {
        th.dead = true;
        return Errno{ESRCH};
      }
      if ((s & kSleeping) == 0) {
        if (!c->state.compare_exchange_strong(s, s | kSleeping)) continue;
        s |= kSleeping;
      }
      // A stub killed from outside never reports: look at the process now
      // and then.
      timespec timeout{0, 50 * 1000 * 1000};
      if (Futex(&c->state, FUTEX_WAIT, s, &timeout) == 0 || errno != ETIMEDOUT) continue;
      if (ProcessGone(pidfd_.get())) return Dead(th);
      const int64_t now = NowNs();
      if (limit.limit_ns != 0 && now - start > limit.limit_ns) return KillProcess(th);
      if (limit.interrupt != nullptr && limit.interrupt->load()) {
        if (interrupted_at == 0) interrupted_at = now;
        if (now - interrupted_at > kInterruptLimitNs) return KillProcess(th);
        syscall(SYS_tgkill, pid_, th.tid, SIGURG);
      }
    }
  }

  // Ends the stub process (through its pidfd: its pid may be recycled).
  Status KillProcess(Thread& th) {
    syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    return Dead(th);
  }

  Status Dead(Thread& th) {
    th.dead = true;
    std::lock_guard<std::mutex> l(mu_);
    gone_ = true;
    return Errno{ESRCH};
  }

  // Has th make syscall nr in the stub and returns its raw result.
  Result<long> Call(Thread& th, long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
                    uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0, uint32_t order = kSyscall) {
    if (th.dead) return Errno{ESRCH};
    SystrapCtl* c = Ctl(th);
    c->nr = static_cast<uint64_t>(nr);
    c->args[0] = a0, c->args[1] = a1, c->args[2] = a2;
    c->args[3] = a3, c->args[4] = a4, c->args[5] = a5;
    // The sentry's calls come in runs (a fault's mappings, a fork's): the
    // stub waits for the next one spinning.
    c->spin = spin();
    Order(c, order);
    TRY(WaitStopped(th));
    return static_cast<long>(c->ret);
  }

  Result<long> CallSelf(long nr, uint64_t a0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                        uint64_t a4 = 0, uint64_t a5 = 0) {
    Thread* self = Self();
    if (self == nullptr) return Errno{EPERM};  // a sentry bug: not our address space
    return Call(*self, nr, a0, a1, a2, a3, a4, a5);
  }

  Status MapFile(uintptr_t addr, uint64_t offset, size_t length, int prot) override {
    ASSIGN_OR_RETURN(
        long r, CallSelf(SYS_mmap, addr, length, static_cast<uint64_t>(prot),
                         MAP_SHARED | MAP_FIXED, static_cast<uint64_t>(platform_.memfd()), offset));
    if (r < 0 && r > -4096) return Errno{static_cast<int>(-r)};
    if (static_cast<uintptr_t>(r) != addr) return Errno{EFAULT};
    return Ok();
  }

  Status Unmap(uintptr_t addr, size_t length) override {
    ASSIGN_OR_RETURN(long r, CallSelf(SYS_munmap, addr, length));
    if (r < 0) return Errno{static_cast<int>(-r)};
    return Ok();
  }

  Status Protect(uintptr_t addr, size_t length, int prot) override {
    ASSIGN_OR_RETURN(long r, CallSelf(SYS_mprotect, addr, length, static_cast<uint64_t>(prot)));
    if (r < 0) return Errno{static_cast<int>(-r)};
    return Ok();
  }

  // Prepares a fresh slot's control page for a thread whose thread pointers
  // are fs and gs.
  void InitCtl(uint32_t index, uint32_t pool, uint64_t fs, uint64_t gs) {
    auto* c = reinterpret_cast<SystrapCtl*>(platform_.SlotAt(pool));
    memset(static_cast<void*>(c), 0, sizeof(SystrapCtl));
    c->state.store(kStarting, std::memory_order_relaxed);
    c->fs = c->cur_fs = fs;
    c->gs = c->cur_gs = gs;
    c->fsgsbase = platform_.fsgsbase() ? 1 : 0;
    c->spin = platform_.spin();
    c->ss_sp = SlotAddress(index) + kCtlBytes;
    c->ss_size = kSystrapSlotSize - kCtlBytes;
    c->act.handler = StubAddress(husk_systrap_handler);
    c->act.flags = SA_SIGINFO | SA_ONSTACK | kSaRestorer;
    c->act.restorer = StubAddress(husk_systrap_restorer);
    c->act.mask = ~uint64_t{0};
  }

  // A slot for a new thread: one whose thread has exited, or a new one.
  Result<std::pair<uint32_t, uint32_t>> TakeSlot(bool* fresh) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = released_.begin(); it != released_.end(); ++it) {
      auto* c = reinterpret_cast<SystrapCtl*>(platform_.SlotAt(pool_of_index_[*it]));
      if (c->state.load(std::memory_order_acquire) != kGone) continue;
      uint32_t index = *it;
      released_.erase(it);
      *fresh = false;
      return std::make_pair(index, pool_of_index_[index]);
    }
    if (pool_of_index_.size() >= kSystrapMaxThreads) return Errno{EAGAIN};
    ASSIGN_OR_RETURN(uint32_t pool, platform_.AllocateSlot());
    pool_of_index_.push_back(pool);
    *fresh = true;
    return std::make_pair(static_cast<uint32_t>(pool_of_index_.size() - 1), pool);
  }

  void ReturnSlot(uint32_t index) {
    std::lock_guard<std::mutex> l(mu_);
    released_.push_back(index);
  }

  Result<ThreadToken> NewThread() override {
    Thread* self = Self();
    if (self == nullptr || self->dead) return Errno{EPERM};
    bool fresh = false;
    ASSIGN_OR_RETURN(auto slot, TakeSlot(&fresh));
    auto [index, pool] = slot;
    if (fresh) {
      auto mapped =
          Call(*self, SYS_mmap, SlotAddress(index), kSystrapSlotSize, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_FIXED, static_cast<uint64_t>(platform_.pool_fd()),
               uint64_t{pool} * kSystrapSlotSize);
      if (!mapped.ok() || static_cast<uintptr_t>(*mapped) != SlotAddress(index)) {
        ReturnSlot(index);  // its state is 0: reusable
        return Errno{mapped.ok() ? ENOMEM : mapped.error()};
      }
    }
    SystrapCtl* parent = Ctl(*self);
    InitCtl(index, pool, parent->cur_fs, parent->cur_gs);
    auto* child_ctl = reinterpret_cast<SystrapCtl*>(platform_.SlotAt(pool));
    auto cloned = Call(*self, SYS_clone, kStubThreadFlags | CLONE_CHILD_CLEARTID,
                       SlotAddress(index) + kSystrapSlotSize, 0, SlotAddress(index), 0, 0, kClone);
    if (!cloned.ok()) {
      child_ctl->state.store(kGone);
      ReturnSlot(index);
      return Errno{cloned.error()};
    }
    const long tid = *cloned;
    if (tid < 0) {
      child_ctl->state.store(kGone);
      ReturnSlot(index);
      return Errno{static_cast<int>(-tid)};
    }
    Thread th;
    th.tid = static_cast<pid_t>(tid);
    th.index = index;
    th.pool = pool;
    if (Status parked = WaitStopped(th); !parked.ok()) {
      ReturnSlot(index);
      return Errno{EAGAIN};
    }
    std::lock_guard<std::mutex> l(mu_);
    pending_[tid] = th;
    return ThreadToken{tid};
  }

  Status AdoptThread(ThreadToken token) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pending_.find(token.id);
    if (it == pending_.end()) return Errno{ESRCH};
    threads_[HostTid()] = it->second;
    pending_.erase(it);
    return Ok();
  }

  // Asks th to exit; its slot is reused once the kernel says it is gone.
  void EndThread(Thread& th) {
    if (th.dead) return;
    th.dead = true;
    SystrapCtl* c = Ctl(th);
    c->nr = SYS_exit;
    c->args[0] = 0;
    Order(c, kSyscall);
    ReturnSlot(th.index);
  }

  void ReleaseThread() override {
    Thread* self = Self();
    if (self == nullptr || self->dead) return;
    EndThread(*self);
  }

  void DiscardThread(ThreadToken token) override {
    Thread th;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = pending_.find(token.id);
      if (it == pending_.end()) return;
      th = it->second;
      pending_.erase(it);
    }
    EndThread(th);
  }

  void AddThread(const Thread& th) {
    std::lock_guard<std::mutex> l(mu_);
    threads_[HostTid()] = th;
    pool_of_index_.push_back(th.pool);
  }

  Result<CpuUsage> Usage() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (gone_) return final_usage_;
    }
    if (ProcessGone(pidfd_.get())) {
      std::lock_guard<std::mutex> l(mu_);
      gone_ = true;
      return final_usage_;
    }
    ASSIGN_OR_RETURN(CpuUsage u, StubProcessUsage(pid_));
    std::lock_guard<std::mutex> l(mu_);
    final_usage_ = u;  // the last reading stands once the process is gone
    return u;
  }

  // Where stub address addr lies in the sentry's view of th's signal stack,
  // if [addr, addr+len) lies wholly inside it; null otherwise (the frame is
  // the application's to scribble on).
  uint8_t* InStack(const Thread& th, uint64_t addr, size_t len) const {
    const uint64_t lo = SlotAddress(th.index) + kCtlBytes;
    const uint64_t hi = SlotAddress(th.index) + kSystrapSlotSize;
    if (addr < lo || addr > hi || len > hi - addr) return nullptr;
    return platform_.SlotAt(th.pool) + (addr - SlotAddress(th.index));
  }

 private:
  SystrapPlatform& platform_;
  const pid_t pid_;
  const UniqueFd pidfd_;
  std::mutex mu_;                        // a leaf
  std::map<pid_t, Thread> threads_;      // by sentry host tid
  std::map<int64_t, Thread> pending_;    // made by NewThread, not adopted yet
  std::vector<uint32_t> pool_of_index_;  // slot index -> pool slot
  std::vector<uint32_t> released_;       // slot indexes whose threads were told to exit
  bool gone_ = false;
  CpuUsage final_usage_;
};

// The FP area of a stopped thread's frame: its address in the sentry and its
// size, or null where the frame does not describe one inside the stack.
std::pair<uint8_t*, size_t> FpArea(SystrapAddressSpace& sas, const Thread& th) {
  SystrapCtl* c = sas.Ctl(th);
  uint8_t* uc = sas.InStack(th, c->uctx, sizeof(KUcontext));
  if (uc == nullptr) return {nullptr, 0};
  KUcontext u;
  memcpy(&u, uc, sizeof(u));
  uint8_t* fp = sas.InStack(th, u.mc.fpstate, 512);
  if (fp == nullptr) return {nullptr, 0};
  // struct _fpx_sw_bytes, in the FXSAVE area's software-reserved bytes:
  // magic1, extended_size, xfeatures, xstate_size.
  uint32_t magic, size;
  memcpy(&magic, fp + 464, 4);
  memcpy(&size, fp + 464 + 16, 4);
  if (magic != kFpXstateMagic1) return {fp, 512};
  size = std::clamp<uint32_t>(size, 512 + 64, static_cast<uint32_t>(XstateSize()));
  if (sas.InStack(th, u.mc.fpstate, size) == nullptr) return {nullptr, 0};
  return {fp, size};
}

class SystrapContext : public Context {
 public:
  void Interrupt() override { gate_.Interrupt(); }

  Status Adopt(AddressSpace& as, ThreadToken token) override {
    return static_cast<SystrapAddressSpace&>(as).AdoptThread(token);
  }

  Result<std::vector<uint8_t>> GetFpState(AddressSpace& as) override {
    auto& sas = static_cast<SystrapAddressSpace&>(as);
    Thread* th = sas.Self();
    if (th == nullptr || th->dead) return Errno{ESRCH};
    auto [fp, size] = FpArea(sas, *th);
    if (fp == nullptr) return Errno{EFAULT};
    std::vector<uint8_t> out(XstateSize(), 0);
    memcpy(out.data(), fp, std::min(size, out.size()));
    return out;
  }

  Status SetFpState(AddressSpace& as, const std::vector<uint8_t>& state) override {
    auto& sas = static_cast<SystrapAddressSpace&>(as);
    Thread* th = sas.Self();
    if (th == nullptr || th->dead) return Errno{ESRCH};
    auto [fp, size] = FpArea(sas, *th);
    if (fp == nullptr) return Errno{EFAULT};
    if (state.size() < 512) return Errno{EINVAL};
    // What sigreturn would refuse (and answer with SIGSEGV) is refused here:
    // reserved MXCSR bits, and an XSAVE header the frame cannot carry.
    uint32_t mxcsr, mask;
    memcpy(&mxcsr, state.data() + 24, 4);
    memcpy(&mask, fp + 28, 4);
    if (mask == 0) mask = 0xffbf;
    if ((mxcsr & ~mask) != 0) return Errno{EINVAL};
    size_t n = std::min(size, state.size());
    if (size > 512) {
      if (n < 512 + 64) return Errno{EINVAL};
      uint64_t xfeatures, bv, comp;
      memcpy(&xfeatures, fp + 464 + 4 + 4, 8);
      memcpy(&bv, state.data() + 512, 8);
      memcpy(&comp, state.data() + 520, 8);
      if ((bv & ~xfeatures) != 0 || comp != 0) return Errno{EINVAL};
      for (size_t i = 528; i < 576; i++) {
        if (state[i] != 0) return Errno{EINVAL};
      }
    }
    // The software-reserved bytes (the frame's own description) stay.
    memcpy(fp, state.data(), 464);
    if (n > 512) memcpy(fp + 512, state.data() + 512, n - 512);
    return Ok();
  }

  Result<StopInfo> Switch(AddressSpace& as, Registers& regs) override {
    auto& sas = static_cast<SystrapAddressSpace&>(as);
    Thread* th = sas.Self();
    if (th == nullptr) return Errno{EPERM};  // a sentry bug: not adopted here
    return gate_.Run(sas.pid(), th->tid, [&] { return Run(sas, *th, regs); });
  }

 private:
  static StopInfo Exited() {
    StopInfo stop;
    stop.kind = StopInfo::Kind::kExited;
    stop.status = SIGKILL;  // a wait status: killed by SIGKILL
    return stop;
  }

  Result<StopInfo> Run(SystrapAddressSpace& sas, Thread& th, Registers& regs) {
    if (th.dead) return Exited();
    SystrapCtl* c = sas.Ctl(th);
    uint8_t* frame = sas.InStack(th, c->uctx, sizeof(KUcontext));
    if (frame == nullptr) return Kill(sas, th);
    KUcontext uc;
    memcpy(&uc, frame, sizeof(uc));
    KSigcontext& m = uc.mc;
    m.r8 = regs.r8, m.r9 = regs.r9, m.r10 = regs.r10, m.r11 = regs.r11;
    m.r12 = regs.r12, m.r13 = regs.r13, m.r14 = regs.r14, m.r15 = regs.r15;
    m.rdi = regs.rdi, m.rsi = regs.rsi, m.rbp = regs.rbp, m.rbx = regs.rbx;
    m.rdx = regs.rdx, m.rax = regs.rax, m.rcx = regs.rcx, m.rsp = regs.rsp;
    m.rip = regs.rip, m.eflags = regs.eflags;
    uc.sigmask = 0;  // nothing blocked while the application runs
    memcpy(frame, &uc, sizeof(uc));
    c->fs = regs.fs_base;
    c->gs = regs.gs_base;
    // What the sentry took over the last stop teaches the next ones.
    int64_t now = NowNs();
    if (th.last_nr >= 0 && th.stopped_at != 0) {
      uint16_t& avg = th.handle_us[static_cast<size_t>(th.last_nr)];
      const int64_t us = std::min<int64_t>((now - th.stopped_at) / 1000, 60000);
      avg = static_cast<uint16_t>((3 * int64_t{avg} + us) / 4);
    }
    c->spin = sas.spin();
    Order(c, kRun);
    // Spin for the next stop when the application's runs have been short
    // (and now and then regardless: a run measured across a sleep includes
    // the wake-ups, and only a spin measures it truly).
    const bool spin = th.app_ns < kAppSpinWindowNs || (++th.probes % 32) == 0;
    bool caught = false;
    if (!sas.WaitStopped(th, spin, &caught, {gate_.interrupt(), 0}).ok()) return Exited();
    th.stopped_at = NowNs();
    const int64_t ran = th.stopped_at - now;
    th.app_ns = caught ? ran : (3 * th.app_ns + ran) / 4;
    th.last_nr = -1;

    frame = sas.InStack(th, c->uctx, sizeof(KUcontext));
    uint8_t* info = sas.InStack(th, c->info, sizeof(siginfo_t));
    if (frame == nullptr || info == nullptr) return Kill(sas, th);
    memcpy(&uc, frame, sizeof(uc));
    StopInfo stop;
    memcpy(&stop.info, info, sizeof(stop.info));
    regs.r8 = m.r8, regs.r9 = m.r9, regs.r10 = m.r10, regs.r11 = m.r11;
    regs.r12 = m.r12, regs.r13 = m.r13, regs.r14 = m.r14, regs.r15 = m.r15;
    regs.rdi = m.rdi, regs.rsi = m.rsi, regs.rbp = m.rbp, regs.rbx = m.rbx;
    regs.rdx = m.rdx, regs.rax = m.rax, regs.rcx = m.rcx, regs.rsp = m.rsp;
    regs.rip = m.rip, regs.eflags = m.eflags;
    regs.cs = m.cs, regs.ss = m.ss;
    regs.fs_base = c->cur_fs;
    regs.gs_base = c->cur_gs;
    regs.orig_rax = ~0ULL;
    const int sig = stop.info.si_signo;
    const int code = stop.info.si_code;
    if (sig == SIGSYS && code == kSysSeccomp) {
      auto call = reinterpret_cast<uintptr_t>(stop.info.si_call_addr);
      if (stop.info.si_arch == AUDIT_ARCH_X86_64 && (call & ~uintptr_t{0xfff}) != kVsyscallPage) {
        // As PTRACE_SYSEMU leaves it: the number in orig_rax, -ENOSYS in rax.
        regs.orig_rax = static_cast<uint64_t>(stop.info.si_syscall);
        regs.rax = static_cast<uint64_t>(-ENOSYS);
        // A syscall the sentry usually takes long over: the stub sleeps now.
        if (stop.info.si_syscall >= 0 && stop.info.si_syscall < 512) {
          th.last_nr = stop.info.si_syscall;
          if (th.handle_us[static_cast<size_t>(th.last_nr)] * int64_t{1000} > kSpinWindowNs) {
            c->spin = 0;
          }
        }
        stop.kind = StopInfo::Kind::kSyscall;
        return stop;
      }
      stop.kind = StopInfo::Kind::kSignal;  // a vsyscall, or a 32-bit call
      return stop;
    }
    if (code > 0 && (sig == SIGSEGV || sig == SIGBUS)) {
      stop.kind = StopInfo::Kind::kFault;
      stop.addr = reinterpret_cast<uintptr_t>(stop.info.si_addr);
      return stop;
    }
    if (code > 0 && (sig == SIGILL || sig == SIGFPE || sig == SIGTRAP)) {
      stop.kind = StopInfo::Kind::kSignal;
      stop.addr = reinterpret_cast<uintptr_t>(stop.info.si_addr);
      return stop;
    }
    // Sent from outside: Interrupt's SIGURG, or a stray signal.
    gate_.Answered();
    stop.kind = StopInfo::Kind::kInterrupted;
    return stop;
  }

  // The frame is not where it must be: the application broke its own stub.
  StopInfo Kill(SystrapAddressSpace& sas, Thread& th) {
    (void)sas.KillProcess(th);
    return Exited();
  }

  RunGate gate_;
};

}  // namespace

SystrapPlatform::SystrapPlatform(int memfd) : memfd_(memfd) {}

SystrapPlatform::~SystrapPlatform() {
  master_.reset();
  if (pool_ != nullptr) munmap(pool_, kSystrapPoolSlots * kSystrapSlotSize);
}

Result<std::unique_ptr<SystrapPlatform>> SystrapPlatform::Create(int memfd) {
  if (static_cast<size_t>(husk_stub_end - husk_stub_begin) > kStubSize) return Errno{E2BIG};
  std::unique_ptr<SystrapPlatform> p(new SystrapPlatform(memfd));
  int fd = static_cast<int>(syscall(SYS_memfd_create, "husk-systrap", MFD_CLOEXEC));
  if (fd < 0) return Errno{errno};
  p->pool_fd_.Reset(fd);
  const size_t bytes = kSystrapPoolSlots * kSystrapSlotSize;
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) return Errno{errno};
  void* pool = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (pool == MAP_FAILED) return Errno{errno};
  p->pool_ = static_cast<uint8_t*>(pool);
  // HWCAP2_FSGSBASE: the kernel lets user mode read and write the bases.
  p->fsgsbase_ = (getauxval(AT_HWCAP2) & 2) != 0;
  p->spin_ = PausesFor(kSpinMicros);
  ASSIGN_OR_RETURN(p->stub_filter_, BuildStubFilter(memfd, fd));
  ASSIGN_OR_RETURN(p->runtime_filter_, BuildSystrapRuntimeFilter(memfd, fd));
  if (p->runtime_filter_.size() + 16 > kSystrapSlotSize - kCtlBytes) return Errno{E2BIG};
  p->master_ = std::make_unique<MasterStub>();
  TRY(p->master_->Start(p->stub_filter_));
  return p;
}

Result<uint32_t> SystrapPlatform::AllocateSlot() {
  std::lock_guard<std::mutex> l(mu_);
  if (!free_slots_.empty()) {
    uint32_t s = free_slots_.back();
    free_slots_.pop_back();
    return s;
  }
  if (next_slot_ >= kSystrapPoolSlots) return Errno{EAGAIN};
  return next_slot_++;
}

void SystrapPlatform::FreeSlot(uint32_t slot) {
  std::lock_guard<std::mutex> l(mu_);
  free_slots_.push_back(slot);
}

Result<std::unique_ptr<AddressSpace>> SystrapPlatform::NewAddressSpace() {
  ASSIGN_OR_RETURN(pid_t pid, master_->NewProcess());
  auto seized = SeizeStubThread(pid);
  if (!seized.ok()) {
    kill(pid, SIGKILL);  // parked and untraced, a child of the master: the host reaps it
    return Errno{seized.error()};
  }
  StubThread& st = *seized;
  // From here on the stub is traced by this thread until it is let go;
  // any failure kills it (its pid stays ours while it is traced).
  auto fail = [&](int err) -> Result<std::unique_ptr<AddressSpace>> {
    kill(pid, SIGKILL);
    int status;
    WaitFor(pid, &status);
    return Errno{err};
  };
  auto inject = [&](long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                    uint64_t a4 = 0, uint64_t a5 = 0) {
    return InjectInto(st, StubSyscallAddress(), nr, a0, a1, a2, a3, a4, a5);
  };
  auto set = inject(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  auto parent = inject(SYS_getppid);
  if (!set.ok() || *set != 0 || !parent.ok() || *parent != master_->pid()) return fail(ESRCH);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return fail(errno);
  auto as = std::make_unique<SystrapAddressSpace>(*this, pid, UniqueFd(pidfd));
  auto pool = AllocateSlot();
  if (!pool.ok()) return fail(pool.error());
  Thread th;
  th.tid = pid;
  th.index = 0;
  th.pool = *pool;
  as->AddThread(th);  // the slot now belongs to as, which frees it
  as->InitCtl(0, th.pool, st.init_regs.fs_base, st.init_regs.gs_base);
  const uintptr_t ctl = SlotAddress(0);
  auto mapped =
      inject(SYS_mmap, ctl, kSystrapSlotSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
             static_cast<uint64_t>(pool_fd_.get()), uint64_t{th.pool} * kSystrapSlotSize);
  if (!mapped.ok() || static_cast<uintptr_t>(*mapped) != ctl) return fail(ENOMEM);
  for (int sig : kHandledSignals) {
    auto r =
        inject(SYS_rt_sigaction, static_cast<uint64_t>(sig), ctl + offsetof(SystrapCtl, act), 0, 8);
    if (!r.ok() || *r != 0) return fail(EINVAL);
  }
  auto ss = inject(SYS_sigaltstack, ctl + offsetof(SystrapCtl, ss_sp), 0);
  auto tid = inject(SYS_set_tid_address, ctl + offsetof(SystrapCtl, state));
  auto mask = inject(SYS_rt_sigprocmask, SIG_SETMASK, ctl + offsetof(SystrapCtl, zero_mask), 0, 8);
  if (!ss.ok() || *ss != 0 || !tid.ok() || !mask.ok() || *mask != 0) return fail(EINVAL);
  // No core dumps, then the runtime filter, laid out in the signal stack
  // (unused until the first signal): a struct sock_fprog, then the program.
  auto undumpable = inject(SYS_prctl, PR_SET_DUMPABLE, 0);
  if (!undumpable.ok() || *undumpable != 0) return fail(EINVAL);
  uint8_t* stack = SlotAt(th.pool) + kCtlBytes;
  const uintptr_t stack_addr = ctl + kCtlBytes;
  struct Fprog {
    uint16_t len;
    uint16_t pad[3];
    uint64_t filter;
  } fprog{static_cast<uint16_t>(runtime_filter_.size() / 8), {}, stack_addr + sizeof(Fprog)};
  memcpy(stack, &fprog, sizeof(fprog));
  memcpy(stack + sizeof(fprog), runtime_filter_.data(), runtime_filter_.size());
  auto filtered = inject(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, stack_addr);
  if (!filtered.ok() || *filtered != 0) return fail(EPERM);
  // Let go: the stub parks in its handler (int3), and from then on answers
  // through its control page.
  Registers r = st.init_regs;
  r.rip = StubAddress(husk_systrap_park);
  r.orig_rax = ~0ULL;
  if (ptrace(PTRACE_SETREGS, pid, nullptr, &r) != 0) return fail(errno);
  if (ptrace(PTRACE_DETACH, pid, nullptr, nullptr) != 0) return fail(errno);
  Thread* self = as->Self();
  if (!as->WaitStopped(*self).ok()) return Errno{ESRCH};
  return std::unique_ptr<AddressSpace>(std::move(as));
}

pid_t SystrapPlatform::StubPid(AddressSpace& as) {
  return static_cast<SystrapAddressSpace&>(as).pid();
}

pid_t SystrapPlatform::MasterPid() const { return master_->pid(); }

std::unique_ptr<Context> SystrapPlatform::NewContext() {
  return std::make_unique<SystrapContext>();
}

}  // namespace husk::platform
