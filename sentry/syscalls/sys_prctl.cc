// prctl(2), and capabilities: capget(2), capset(2). The capability model is
// described in sentry/kernel/caps.h.
#include <errno.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <optional>

#include "sentry/syscalls/handlers.h"

namespace husk::syscalls {
namespace {

// The header versions of capget/capset and how many 32-bit words of each
// set they carry (cap_validate_magic).
constexpr uint32_t kCapV1 = 0x19980330, kCapV2 = 0x20071026, kCapV3 = 0x20080522;

struct CapHeader {
  uint32_t version;
  int pid;
};
struct CapData {
  uint32_t effective, permitted, inheritable;
};

// The words to copy for the caller's version; an unknown one is EINVAL with
// the kernel's preferred version written back.
Result<int> CapWords(Task& t, uintptr_t header) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  uint32_t version;
  TRY(t.CopyInObj(header, &version));
  switch (version) {
    case kCapV1:
      return 1;
    case kCapV2:
    case kCapV3:
      return 2;
    default:
      TRY(t.CopyOutObj(header, kCapV3));
      return Errno{EINVAL};
  }
}

bool ValidCap(uint64_t cap) { return cap <= static_cast<uint64_t>(kCapLastCap); }

// prctl(PR_CAPBSET_*, PR_CAP_AMBIENT, PR_*_KEEPCAPS, PR_*_SECUREBITS): the
// capability half of prctl, Linux's cap_task_prctl. Returns nullopt for an
// option it does not handle.
std::optional<Result<long>> CapPrctl(Task& t, const Args& a) {
  Capabilities& c = t.caps;
  const uint64_t arg2 = a.U(1), arg3 = a.U(2), arg4 = a.U(3), arg5 = a.U(4);
  switch (a.Int(0)) {
    case PR_CAPBSET_READ:
      if (!ValidCap(arg2)) return Errno{EINVAL};
      return static_cast<long>((c.bounding >> arg2) & 1);
    case PR_CAPBSET_DROP:
      if (!t.Capable(CAP_SETPCAP)) return Errno{EPERM};
      if (!ValidCap(arg2)) return Errno{EINVAL};
      c.bounding &= ~CapBit(static_cast<int>(arg2));
      return 0L;
    case PR_GET_SECUREBITS:
      return static_cast<long>(c.securebits);
    case PR_SET_SECUREBITS: {
      // A locked bit may not change, a lock may not be released, no unknown
      // bit, and CAP_SETPCAP.
      const uint32_t locks = c.securebits & kSecAllLocks;
      if (((locks >> 1) & (c.securebits ^ arg2)) != 0 || (locks & ~arg2) != 0 ||
          (arg2 & ~uint64_t{kSecAllBits | kSecAllLocks}) != 0 || !t.Capable(CAP_SETPCAP)) {
        return Errno{EPERM};
      }
      c.securebits = static_cast<uint32_t>(arg2);
      return 0L;
    }
    case PR_GET_KEEPCAPS:
      return (c.securebits & kSecKeepCaps) ? 1L : 0L;
    case PR_SET_KEEPCAPS:
      if (arg2 > 1) return Errno{EINVAL};
      if (c.securebits & (kSecKeepCaps << 1)) return Errno{EPERM};
      c.securebits = arg2 ? (c.securebits | kSecKeepCaps) : (c.securebits & ~kSecKeepCaps);
      return 0L;
    case PR_CAP_AMBIENT: {
      if (arg2 == PR_CAP_AMBIENT_CLEAR_ALL) {
        if (arg3 | arg4 | arg5) return Errno{EINVAL};
        c.ambient = 0;
        return 0L;
      }
      if (!ValidCap(arg3) || arg4 || arg5) return Errno{EINVAL};
      const uint64_t bit = CapBit(static_cast<int>(arg3));
      switch (arg2) {
        case PR_CAP_AMBIENT_IS_SET:
          return (c.ambient & bit) ? 1L : 0L;
        case PR_CAP_AMBIENT_RAISE:
          // Only what is both permitted and inheritable.
          if (!(c.permitted & bit) || !(c.inheritable & bit) ||
              (c.securebits & kSecNoCapAmbientRaise)) {
            return Errno{EPERM};
          }
          c.ambient |= bit;
          return 0L;
        case PR_CAP_AMBIENT_LOWER:
          c.ambient &= ~bit;
          return 0L;
        default:
          return Errno{EINVAL};
      }
    }
    default:
      return std::nullopt;
  }
}

// prctl(PR_SET_MM): Linux asks CAP_SYS_RESOURCE in the initial user
// namespace, which no task of the sandbox (a user namespace of its own) has:
// after the argument checks every change is EPERM, as for root in a
// container; PR_SET_MM_MAP_SIZE tells the size of struct prctl_mm_map.
Result<long> PrctlSetMm(Task& t, const Args& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu) {
  const uint64_t opt = a.U(1);
  if (a.U(4) != 0 ||
      (a.U(3) != 0 && opt != PR_SET_MM_AUXV && opt != PR_SET_MM_MAP && opt != PR_SET_MM_MAP_SIZE)) {
    return Errno{EINVAL};
  }
  if (opt == PR_SET_MM_MAP_SIZE) {
    TRY(t.CopyOutObj(a.Ptr(2), static_cast<uint32_t>(sizeof(struct prctl_mm_map))));
    return 0L;
  }
  return Errno{EPERM};
}

}  // namespace

SyscallResult SysCapget(Task& t, const Args& a) {
  Result<int> words = CapWords(t, a.Ptr(0));
  // A NULL data pointer asks only for the version: an unknown one is
  // answered (written back) without an error (capget(2)).
  if (a.Ptr(1) == 0) {
    if (words.ok() || words.error() == EINVAL) return 0L;
    return Errno{words.error()};
  }
  if (!words.ok()) return Errno{words.error()};
  CapHeader h;
  TRY(t.CopyInObj(a.Ptr(0), &h));
  if (h.pid < 0) return Errno{EINVAL};
  const Capabilities* c = &t.caps;
  std::shared_ptr<Task> other;
  if (h.pid != 0 && h.pid != t.tid()) {
    other = t.kernel().FindTask(h.pid);
    if (other == nullptr) return Errno{ESRCH};  // a zombie's are still there
    c = &other->caps;
  }
  CapData data[2];
  for (int i = 0; i < 2; i++) {
    data[i].effective = static_cast<uint32_t>(c->effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(c->permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(c->inheritable >> (32 * i));
  }
  TRY(t.CopyOut(a.Ptr(1), data, *words * sizeof(CapData)));
  return 0L;
}

// capset(2), as cap_capset decides: the calling thread only; the new
// inheritable set within the old inheritable and permitted sets (unless
// CAP_SETPCAP) and within the old inheritable and bounding sets; the new
// permitted set within the old; the effective within the new permitted.
// The ambient set loses what is no longer both permitted and inheritable.
SyscallResult SysCapset(Task& t, const Args& a) {
  ASSIGN_OR_RETURN(int words, CapWords(t, a.Ptr(0)));
  CapHeader h;
  TRY(t.CopyInObj(a.Ptr(0), &h));
  if (h.pid != 0 && h.pid != t.tid()) return Errno{EPERM};
  CapData data[2] = {};
  TRY(t.CopyIn(a.Ptr(1), data, words * sizeof(CapData)));
  // Bits past the last capability are dropped (mk_kernel_cap).
  auto join = [](uint32_t lo, uint32_t hi) {
    return (lo | (uint64_t{hi} << 32)) & kAllCapabilities;
  };
  const uint64_t effective = join(data[0].effective, data[1].effective);
  const uint64_t permitted = join(data[0].permitted, data[1].permitted);
  const uint64_t inheritable = join(data[0].inheritable, data[1].inheritable);
  Capabilities& c = t.caps;
  auto subset = [](uint64_t a, uint64_t b) { return (a & ~b) == 0; };
  if (!t.Capable(CAP_SETPCAP) && !subset(inheritable, c.inheritable | c.permitted)) {
    return Errno{EPERM};
  }
  if (!subset(inheritable, c.inheritable | c.bounding)) return Errno{EPERM};
  if (!subset(permitted, c.permitted)) return Errno{EPERM};
  if (!subset(effective, permitted)) return Errno{EPERM};
  c.effective = effective;
  c.permitted = permitted;
  c.inheritable = inheritable;
  c.ambient &= permitted & inheritable;
  return 0L;
}

SyscallResult SysPrctl(Task& t, const Args& a) {
  if (std::optional<Result<long>> r = CapPrctl(t, a)) return *r;
  const uint64_t arg2 = a.U(1);
  switch (a.Int(0)) {
    case PR_SET_NAME: {
      char name[16] = {};
      size_t n = t.mm().CopyInPartial(a.Ptr(1), name, 15);
      if (n == 0) return Errno{EFAULT};
      t.comm = std::string(name, strnlen(name, n));
      return 0L;
    }
    case PR_GET_NAME: {
      char name[16] = {};
      t.comm.copy(name, 15);  // name[15] stays NUL
      TRY(t.CopyOut(a.Ptr(1), name, sizeof(name)));
      return 0L;
    }
    case PR_GET_DUMPABLE:
      return static_cast<long>(t.tg().dumpable);
    case PR_SET_DUMPABLE:
      // SUID_DUMP_DISABLE or SUID_DUMP_USER; 2 (SUID_DUMP_ROOT) only
      // comes from fs.suid_dumpable.
      if (arg2 > 1) return Errno{EINVAL};
      t.tg().dumpable = static_cast<int>(arg2);
      return 0L;
    case PR_SET_PDEATHSIG:
      if (arg2 > static_cast<uint64_t>(kMaxSignal)) return Errno{EINVAL};
      t.pdeath_signal = static_cast<int>(arg2);
      return 0L;
    case PR_GET_PDEATHSIG:
      TRY(t.CopyOutObj(a.Ptr(1), t.pdeath_signal));
      return 0L;
    case PR_SET_CHILD_SUBREAPER:
      t.tg().child_subreaper = arg2 != 0;
      return 0L;
    case PR_GET_CHILD_SUBREAPER:
      TRY(t.CopyOutObj(a.Ptr(1), static_cast<int>(t.tg().child_subreaper)));
      return 0L;
    case PR_SET_NO_NEW_PRIVS:
      if (arg2 != 1 || a.U(2) || a.U(3) || a.U(4)) return Errno{EINVAL};
      t.no_new_privs = true;
      return 0L;
    case PR_GET_NO_NEW_PRIVS:
      if (arg2 || a.U(2) || a.U(3) || a.U(4)) return Errno{EINVAL};
      return t.no_new_privs ? 1L : 0L;
    case PR_GET_TID_ADDRESS:
      TRY(t.CopyOutObj(a.Ptr(1), static_cast<uint64_t>(t.clear_child_tid)));
      return 0L;
    case PR_GET_TIMERSLACK:
      return static_cast<long>(std::min<uint64_t>(t.timer_slack_ns, LONG_MAX));
    case PR_SET_TIMERSLACK:
      // A real-time task keeps a slack of 0 (Linux 4.6 on ignores the call).
      if (t.sched_policy == SCHED_FIFO || t.sched_policy == SCHED_RR) return 0L;
      t.timer_slack_ns = arg2 == 0 ? t.default_timer_slack_ns : arg2;
      return 0L;
    case PR_SET_MM:
      return PrctlSetMm(t, a);
    default:
      return Errno{EINVAL};
  }
}

}  // namespace husk::syscalls
