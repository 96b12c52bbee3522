// The syscall table and dispatcher. One table lists every x86_64 syscall
// number with its name, argument formats (for --strace) and handler; a
// number without a handler returns ENOSYS and is counted, never forwarded to
// the host. Handlers live one file per family (sys_file.cc, sys_mmap.cc, ...).
#ifndef HUSK_SENTRY_SYSCALLS_SYSCALLS_H_
#define HUSK_SENTRY_SYSCALLS_SYSCALLS_H_

#include <array>
#include <cstdint>
#include <cstdio>

#include "base/result.h"
#include "sentry/kernel/kernel.h"

namespace husk::syscalls {

struct Args {
  std::array<uint64_t, 6> a{};
  int Int(int i) const { return static_cast<int>(a[i]); }
  long Long(int i) const { return static_cast<long>(a[i]); }
  uint64_t U(int i) const { return a[i]; }
  uintptr_t Ptr(int i) const { return static_cast<uintptr_t>(a[i]); }
  size_t Size(int i) const { return static_cast<size_t>(a[i]); }
};

using SyscallResult = Result<long>;
using Handler = SyscallResult (*)(Task&, const Args&);

// How --strace prints an argument.
enum class Fmt : uint8_t {
  kNone,
  kInt,
  kHex,
  kFd,       // AT_FDCWD printed by name
  kPath,     // NUL-terminated string
  kBufIn,    // bytes whose length is the next argument
  kBufOut,   // bytes written by the call; length is the return value
  kOpenFlags,
  kOctal,
  kPtr,
  kSignal,
};

struct SyscallInfo {
  const char* name = nullptr;
  Handler handler = nullptr;
  std::array<Fmt, 6> fmt{};
};

// The entry for nr, or null if nr is not an x86_64 syscall number.
const SyscallInfo* Lookup(int nr);
// Handles the syscall in t.regs and stores the result in rax.
void Dispatch(Task& t);
// Prints the table (number, name, implemented or not): `husk syscalls`.
void PrintTable(FILE* out);

}  // namespace husk::syscalls

#endif  // HUSK_SENTRY_SYSCALLS_SYSCALLS_H_
