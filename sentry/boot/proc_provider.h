// The kernel's side of /proc: what procfs shows about tasks and the machine.
#ifndef HUSK_SENTRY_BOOT_PROC_PROVIDER_H_
#define HUSK_SENTRY_BOOT_PROC_PROVIDER_H_

#include <memory>

#include "sentry/fsimpl/proc/proc.h"
#include "sentry/kernel/kernel.h"

namespace husk {

std::shared_ptr<procfs::ProcProvider> NewKernelProcProvider(Kernel& k);

}  // namespace husk

#endif  // HUSK_SENTRY_BOOT_PROC_PROVIDER_H_
