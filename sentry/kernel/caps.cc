#include "sentry/kernel/caps.h"

namespace husk {

void Capabilities::FixSetuid(uint32_t old_r, uint32_t old_e, uint32_t old_s, uint32_t r, uint32_t e,
                             uint32_t s) {
  if (securebits & kSecNoSetuidFixup) return;
  if ((old_r == 0 || old_e == 0 || old_s == 0) && r != 0 && e != 0 && s != 0) {
    if (!(securebits & kSecKeepCaps)) permitted = effective = 0;
    ambient = 0;
  }
  if (old_e == 0 && e != 0) effective = 0;
  if (old_e != 0 && e == 0) effective = permitted;
}

void Capabilities::FixSetfsuid(uint32_t old_fs, uint32_t fs) {
  if (securebits & kSecNoSetuidFixup) return;
  if (old_fs == 0 && fs != 0) effective &= ~kCapFsSet;
  if (old_fs != 0 && fs == 0) effective |= permitted & kCapFsSet;
}

void Capabilities::OnExec(uint32_t uid, uint32_t euid) {
  // Root runs every program as if it had all file capabilities
  // (handle_privileged_root), unless SECBIT_NOROOT.
  const bool root = !(securebits & kSecNoRoot) && (uid == 0 || euid == 0);
  permitted = root ? (bounding | inheritable) : 0;
  // The ambient set is kept (no file capabilities, no set-user-ID).
  permitted |= ambient;
  effective = root && euid == 0 ? permitted : ambient;
  securebits &= ~kSecKeepCaps;
}

}  // namespace husk
