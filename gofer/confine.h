// Confinement of the gofer process: after ConfineGofer returns, the process
// sees only the served tree, holds only the capabilities that reading files
// needs, and can make only the host syscalls Serve() makes.
#ifndef HUSK_GOFER_CONFINE_H_
#define HUSK_GOFER_CONFINE_H_

#include <string>

#include "absl/status/status.h"
#include "base/fd.h"

namespace husk::gofer {

// Confines the calling process (it must be single-threaded) to `root`:
//   1. a private mount namespace (unshare(CLONE_NEWNS), "/" made rprivate);
//   2. a recursive bind copy of `root` (open_tree(OPEN_TREE_CLONE)), made
//      nosuid,nodev — and read-only when `read_only` — with
//      mount_setattr(AT_RECURSIVE), attached over `root`;
//   3. that copy becomes "/" (pivot_root, old root detached; chroot alone
//      when pivot_root is impossible, e.g. on an initramfs root);
//   4. *root_dir = an O_PATH fd on the new "/", to hand to Serve();
//   5. RLIMIT_NOFILE soft limit raised to the hard one (fids hold fds);
//   6. no_new_privs; capabilities (bounding, ambient, permitted, effective,
//      inheritable) cut to CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and
//      CAP_FOWNER, of those the process had;
//   7. the seccomp allowlist of InstallGoferSeccomp().
// Needs CAP_SYS_ADMIN and CAP_SYS_CHROOT (in the caller's user namespace).
// The caller closes every fd Serve() does not need first: an fd opened
// before confinement still reaches outside `root`. Errors name the failing
// step ("gofer: bind mount of / failed: ...").
absl::Status ConfineGofer(const std::string& root, bool read_only, UniqueFd* root_dir);

// Installs the gofer's seccomp filter (libseccomp; any other syscall kills
// the process). `read_only` leaves out what only writes need (ftruncate).
// Writes are allowed to fd 2 only, for diagnostics.
absl::Status InstallGoferSeccomp(bool read_only);

}  // namespace husk::gofer

#endif  // HUSK_GOFER_CONFINE_H_
