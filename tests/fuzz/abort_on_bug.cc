// Linked into every fuzz target with -Wl,--wrap=__cxa_throw: a thrown
// UncheckedResult (a failed Result used unchecked, base/result.h) aborts at
// the throw, with its stack, instead of being caught and logged by the
// gofer's request loop or the syscall boundary. It is always a bug, and the
// fuzzer should report it as one.
#include <cstdio>
#include <cstdlib>
#include <typeinfo>

#include "base/result.h"

extern "C" {

// NOLINTBEGIN(readability-identifier-naming,clang-diagnostic-reserved-identifier): the names
// the linker's --wrap=__cxa_throw gives.
[[noreturn]] void __real___cxa_throw(void* object, std::type_info* type, void (*destroy)(void*));

[[noreturn]] void __wrap___cxa_throw(void* object, std::type_info* type, void (*destroy)(void*)) {
  if (type != nullptr && *type == typeid(husk::UncheckedResult)) {
    fprintf(stderr, "fuzz: UncheckedResult thrown (errno %d): a bug\n",
            static_cast<husk::UncheckedResult*>(object)->err);
    abort();
  }
  __real___cxa_throw(object, type, destroy);
}
// NOLINTEND(readability-identifier-naming,clang-diagnostic-reserved-identifier)

}  // extern "C"
