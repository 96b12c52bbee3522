// The sentry's host syscall allowlist (DESIGN.md section 1): installed
// before any application code runs. Each allowed call says why it is needed.
#ifndef HUSK_SENTRY_BOOT_SECCOMP_POLICY_H_
#define HUSK_SENTRY_BOOT_SECCOMP_POLICY_H_

#include "base/result.h"

namespace husk {

// host_network (--network=host): the socket calls the host's inet sockets
// need are allowed too.
Status InstallSentrySeccomp(int memfd, bool host_network);

}  // namespace husk

#endif  // HUSK_SENTRY_BOOT_SECCOMP_POLICY_H_
