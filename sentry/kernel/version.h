// What uname(2) reports inside the sandbox: husk's own release, never the host's.
#ifndef HUSK_SENTRY_KERNEL_VERSION_H_
#define HUSK_SENTRY_KERNEL_VERSION_H_

namespace husk {
inline constexpr char kHuskRelease[] = "6.1.0-husk";
inline constexpr char kHuskVersion[] = "#1 SMP husk 0.1";
}  // namespace husk

#endif  // HUSK_SENTRY_KERNEL_VERSION_H_
