// Validation of path components, shared by the gofer server (names it is
// asked to walk) and the client (names a server lists).
#ifndef HUSK_GOFER_NAMES_H_
#define HUSK_GOFER_NAMES_H_

#include <errno.h>

#include <cstddef>
#include <string_view>

namespace husk::gofer {

// Linux's NAME_MAX.
inline constexpr size_t kMaxNameLength = 255;
// Linux's PATH_MAX, which bounds symlink targets.
inline constexpr size_t kMaxPathLength = 4096;

// Returns 0 if `name` is one plain path component, else the errno Linux
// would give: EINVAL for "", ".", "..", or a name holding '/' or NUL (the
// protocol never carries those), ENAMETOOLONG above NAME_MAX bytes.
inline int CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return EINVAL;
  if (name.size() > kMaxNameLength) return ENAMETOOLONG;
  if (name.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos) return EINVAL;
  return 0;
}

}  // namespace husk::gofer

#endif  // HUSK_GOFER_NAMES_H_
