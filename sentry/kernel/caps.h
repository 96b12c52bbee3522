// Capabilities (capabilities(7)) of a task in the sandbox's user namespace.
//
// The model: the sandbox is one user namespace, created by husk, and its
// root holds every capability in it, as root in a fresh user namespace does
// on Linux. Each task carries Linux's five sets (permitted, effective,
// inheritable, bounding, ambient) and securebits, changed exactly where
// Linux changes them: capset(2), prctl(2) (PR_CAPBSET_DROP,
// PR_CAP_AMBIENT, PR_SET_KEEPCAPS, PR_SET_SECUREBITS), the set*id calls
// (cap_emulate_setxuid and the fsuid fix-up) and execve (root gets
// bounding | inheritable; others only the ambient set: husk has neither
// set-user-ID execution nor file capabilities). Every privilege check in
// the sentry asks Task::Capable(CAP_...) on the effective set, so what
// capget(2) reports is what husk enforces. Linux asks some checks of the
// initial user namespace (capable(): lowering a nice value, real-time
// policies, raising a hard rlimit); husk treats the sandbox's namespace as
// the application's initial one and answers them from the same sets, so
// its root may do what root of a container cannot (the native runs of the
// conformance tests, in a user namespace, skip those cases). The
// namespace's capabilities bear only on the sandbox: none reaches the host
// (husk itself runs without any).
#ifndef HUSK_SENTRY_KERNEL_CAPS_H_
#define HUSK_SENTRY_KERNEL_CAPS_H_

#include <linux/capability.h>

#include <cstdint>

namespace husk {

// The last capability Linux 6.1 (the release husk reports) knows:
// CAP_CHECKPOINT_RESTORE; /proc/sys/kernel/cap_last_cap.
inline constexpr int kCapLastCap = 40;
inline constexpr uint64_t kAllCapabilities = (uint64_t{1} << (kCapLastCap + 1)) - 1;
constexpr uint64_t CapBit(int cap) { return uint64_t{1} << cap; }

// include/linux/capability.h's CAP_FS_SET: what a zero fsuid brings and a
// non-zero one takes away.
inline constexpr uint64_t kCapFsSet = CapBit(CAP_CHOWN) | CapBit(CAP_MKNOD) |
                                      CapBit(CAP_DAC_OVERRIDE) | CapBit(CAP_DAC_READ_SEARCH) |
                                      CapBit(CAP_FOWNER) | CapBit(CAP_FSETID) |
                                      CapBit(CAP_MAC_OVERRIDE) | CapBit(CAP_LINUX_IMMUTABLE);

// securebits (linux/securebits.h).
inline constexpr uint32_t kSecNoRoot = 1u << 0;
inline constexpr uint32_t kSecNoSetuidFixup = 1u << 2;
inline constexpr uint32_t kSecKeepCaps = 1u << 4;
inline constexpr uint32_t kSecNoCapAmbientRaise = 1u << 6;
// Each bit above and its lock (the next bit up).
inline constexpr uint32_t kSecAllBits =
    kSecNoRoot | kSecNoSetuidFixup | kSecKeepCaps | kSecNoCapAmbientRaise;
inline constexpr uint32_t kSecAllLocks = kSecAllBits << 1;

struct Capabilities {
  // Root's at boot: everything the namespace has.
  uint64_t permitted = kAllCapabilities;
  uint64_t effective = kAllCapabilities;
  uint64_t inheritable = 0;
  uint64_t bounding = kAllCapabilities;
  uint64_t ambient = 0;
  uint32_t securebits = 0;

  bool Has(int cap) const { return cap >= 0 && cap <= kCapLastCap && (effective & CapBit(cap)); }

  // setuid, setreuid, setresuid (cap_emulate_setxuid): leaving every root
  // id clears the permitted and effective sets (unless SECBIT_KEEP_CAPS)
  // and the ambient set; a non-zero euid clears the effective set, and a
  // zero one restores it from the permitted set.
  void FixSetuid(uint32_t old_r, uint32_t old_e, uint32_t old_s, uint32_t r, uint32_t e,
                 uint32_t s);
  // setfsuid and the fsuid that follows the euid: CAP_FS_SET leaves the
  // effective set with a non-zero fsuid and comes back (from the permitted
  // set) with a zero one.
  void FixSetfsuid(uint32_t old_fs, uint32_t fs);
  // execve: the sets the new image starts with (cap_bprm_creds_from_file
  // for a file without capabilities or set-user-ID bits).
  void OnExec(uint32_t uid, uint32_t euid);
};

}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_CAPS_H_
