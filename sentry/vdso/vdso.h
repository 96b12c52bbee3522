// husk's vDSO (image/): the code glibc calls instead of the clock_gettime,
// gettimeofday, time, getcpu and clock_getres syscalls, and the data page
// it reads (sentry/time/vvar.h), which the sandbox clock keeps.
//
// Both are pages of the memory file that every address space maps (the
// loader does, at exec; fork keeps them): "[vvar]", read-only, then
// "[vdso]", read+exec, at an address mmap picks, as Linux lays them out.
#ifndef HUSK_SENTRY_VDSO_VDSO_H_
#define HUSK_SENTRY_VDSO_VDSO_H_

#include <string_view>

#include "base/result.h"
#include "sentry/loader/loader.h"
#include "sentry/memfile/memfile.h"

namespace husk::vdso {

// The image built into the sentry.
std::string_view Image();

// Checks that an image is what the loader can map: a 64-bit ELF shared
// object with one PT_LOAD at address 0 holding the whole file, and no
// writable segment. ENOEXEC otherwise.
Status CheckImage(std::string_view image);

// Puts the data page and the image in the memory file, moves the sandbox
// clock's data page there, and sets up getcpu for a sandbox of `ncpus`
// CPUs (numbered like the host's first ones).
Result<loader::Vdso> Create(MemoryFile& mf, int ncpus);

// How the vDSO's getcpu can find the CPU on this host (HUSK_GETCPU_*):
// the first of RDPID, RDTSCP and the per-CPU segment that cpuid offers
// and that agrees with sched_getcpu(3); else the syscall.
uint32_t ChooseGetcpu();

}  // namespace husk::vdso

#endif  // HUSK_SENTRY_VDSO_VDSO_H_
