// The ELF loader: builds a new application image (static or dynamic through
// PT_INTERP, or a #! script) in an empty MemoryManager, with the initial
// stack (argv, envp, auxv) the System V x86_64 ABI describes.
//
// Everything read from the executable is untrusted: a crafted ELF gets
// ENOEXEC (or EACCES, ENOENT, ELOOP, E2BIG, ELIBBAD, EIO as Linux's execve
// gives them), never a sentry crash. Where Linux would only find a bad
// segment after the point of no return and kill the process, husk returns
// ENOEXEC before touching the caller's image.
#ifndef HUSK_SENTRY_LOADER_LOADER_H_
#define HUSK_SENTRY_LOADER_LOADER_H_

#include <string>
#include <vector>

#include "base/result.h"
#include "sentry/mm/mm.h"
#include "sentry/vfs/vfs.h"

namespace husk::loader {

// Who execs: the real and effective ids go to the auxv; the file
// credentials decide search permission on the path and execute permission
// on the file and any interpreter (Linux checks both with the fsuid).
struct Credentials {
  uint32_t uid = 0, euid = 0, gid = 0, egid = 0;
  vfs::Creds fs;
  // RLIMIT_STACK's soft limit: the size of the stack mapping (at least
  // 128 KiB, at most 1 GiB), and a quarter of it (within 128 KiB..6 MiB)
  // bounds argv and envp, as Linux's bprm_stack_limits.
  uint64_t stack_limit = 8 << 20;
};

struct Image {
  uintptr_t entry = 0;  // where the first instruction runs (interpreter's if any)
  uintptr_t stack_pointer = 0;
  vfs::DentryRef exe;             // the ELF file mapped (for a #! script: its interpreter)
  std::vector<std::string> argv;  // after #! rewriting
};

// The vDSO every new image maps (sentry/vdso): its data page ("[vvar]",
// read-only) just before its code ("[vdso]", read+exec), whose ELF header
// AT_SYSINFO_EHDR points at.
struct Vdso {
  std::shared_ptr<const SpecialPages> vvar;
  std::shared_ptr<const SpecialPages> text;
};

// Opens path and resolves #! chains: five scripts may lead to the ELF, a
// sixth gives ELOOP, as on Linux. An empty argv becomes {""}. Maps the
// vDSO if one is given.
Result<Image> Load(MemoryManager& mm, const vfs::FsContext& fs, const std::string& path,
                   std::vector<std::string> argv, const std::vector<std::string>& envp,
                   const Credentials& creds, const Vdso* vdso = nullptr);

// Validates an ELF header and program header table read from a file of
// file_size bytes; header_bytes is the start of the file up to at least the
// end of the program header table (ENOEXEC otherwise). Exposed for tests and
// fuzzing.
Status ValidateElf(const std::string& header_bytes, uint64_t file_size);

}  // namespace husk::loader

#endif  // HUSK_SENTRY_LOADER_LOADER_H_
