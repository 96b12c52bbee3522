#include "gofer/confine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gofer/server.h"

// Not in every libc's headers yet (x86_64 numbers and uapi values).
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define HUSK_GOFER_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define HUSK_GOFER_SANITIZED 1
#endif
#endif
#ifndef HUSK_GOFER_SANITIZED
#define HUSK_GOFER_SANITIZED 0
#endif

namespace husk::gofer {
namespace {

// struct mount_attr (linux/mount.h, MOUNT_ATTR_SIZE_VER0), spelled out
// because libc headers may lack it or clash with the uapi header.
struct MountAttr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};
static_assert(sizeof(MountAttr) == 32);

absl::Status ErrnoError(const std::string& what) {
  int err = errno;
  return absl::InternalError(absl::StrCat("gofer: ", what, " failed: ", strerror(err)));
}

// Steps 1 to 3: a private copy of `root` becomes the process's "/".
absl::Status EnterRoot(const std::string& root, bool read_only) {
  if (unshare(CLONE_NEWNS) != 0) return ErrnoError("unshare(CLONE_NEWNS)");
  // Nothing below may propagate back to the host's mounts.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return ErrnoError("making / rprivate");
  }
  // A detached recursive copy, named by fd: unlike a bind mount over the
  // path, this also works when `root` is "/" (a lookup of "/" does not
  // cross a mount stacked on the root).
  UniqueFd tree(static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, root.c_str(),
                                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
  if (!tree.valid()) return ErrnoError(absl::StrCat("bind mount of ", root));
  MountAttr attr{};
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0);
  if (syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
              sizeof(attr)) != 0) {
    return ErrnoError(absl::StrCat("mount_setattr on the copy of ", root));
  }
  if (syscall(SYS_move_mount, tree.get(), "", AT_FDCWD, root.c_str(), MOVE_MOUNT_F_EMPTY_PATH) !=
      0) {
    return ErrnoError(absl::StrCat("attaching the copy of ", root));
  }
  if (fchdir(tree.get()) != 0) return ErrnoError(absl::StrCat("chdir into the copy of ", root));
  // pivot_root(".", ".") stacks the old root on the new one; detaching it
  // leaves the host's mounts out of this namespace altogether.
  if (syscall(SYS_pivot_root, ".", ".") == 0) {
    if (umount2(".", MNT_DETACH) != 0) return ErrnoError("detaching the old root");
  } else if (errno != EINVAL && errno != EBUSY) {
    return ErrnoError("pivot_root");
  }
  if (chroot(".") != 0) return ErrnoError(absl::StrCat("chroot to ", root));
  if (chdir("/") != 0) return ErrnoError("chdir(/)");
  return absl::OkStatus();
}

// The filesystem types the gofer serves (by name, as the mount table gives
// them; the server checks the magic numbers too): ones that hold ordinary
// files.
bool IsServedFsType(const std::string& type) {
  static const char* const kServed[] = {
      "ext2",    "ext3",     "ext4",  "xfs",     "btrfs", "f2fs", "zfs",   "tmpfs",   "ramfs",
      "overlay", "squashfs", "erofs", "iso9660", "udf",   "vfat", "msdos", "exfat",   "ntfs3",
      "nfs",     "nfs4",     "cifs",  "smb3",    "9p",    "ceph", "fuse",  "fuseblk", "virtiofs"};
  for (const char* t : kServed) {
    if (type == t) return true;
  }
  return type.rfind("fuse.", 0) == 0;
}

// Step 3b: the mounts of the copied tree that are not ordinary file stores
// (the host's /proc, /sys, devtmpfs, devpts, mqueue, cgroup, ...). Each is
// detached where this namespace may (its mountpoint then shows as the empty
// directory below it), and its device is refused by the server either way
// (mounts copied from a more privileged namespace are locked in place).
absl::Status RefuseForeignMounts() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return absl::OkStatus();  // no procfs in the tree: nothing mounted to hide
  std::vector<std::pair<std::string, dev_t>> foreign;
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - type source super
    std::istringstream fields(line);
    std::string id, parent, devno, root, point, field;
    fields >> id >> parent >> devno >> root >> point;
    while (fields >> field && field != "-") {
    }
    std::string type;
    fields >> type;
    unsigned major = 0, minor = 0;
    if (type.empty() || sscanf(devno.c_str(), "%u:%u", &major, &minor) != 2) continue;
    if (!IsServedFsType(type)) foreign.emplace_back(point, makedev(major, minor));
  }
  std::vector<dev_t> devs;
  devs.reserve(foreign.size());
  for (const auto& [point, dev] : foreign) devs.push_back(dev);
  RefuseDevices(devs);
  // Deepest first, so that nothing is detached from under a later one.
  std::sort(foreign.begin(), foreign.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [point, dev] : foreign) {
    if (point == "/") continue;
    (void)umount2(point.c_str(), MNT_DETACH);  // EINVAL for a locked mount: refused anyway
  }
  return absl::OkStatus();
}

// Step 6: capabilities.
absl::Status DropCapabilities(bool read_only) {
  // A writable tree also needs: giving new nodes the sandbox caller's owner
  // (CAP_CHOWN), and keeping set-group-ID bits the sentry allowed
  // (CAP_FSETID; the sentry makes the permission checks).
  const uint64_t kKeep = (uint64_t{1} << CAP_DAC_OVERRIDE) | (uint64_t{1} << CAP_DAC_READ_SEARCH) |
                         (uint64_t{1} << CAP_FOWNER) |
                         (read_only ? 0 : (uint64_t{1} << CAP_CHOWN) | (uint64_t{1} << CAP_FSETID));
  // Bounding set: needs CAP_SETPCAP; without it there is nothing to gain
  // back anyway (no_new_privs is set and permitted is cut below). EINVAL
  // marks the end of the kernel's capability list.
  for (int cap = 0; cap < 64; ++cap) {
    if ((kKeep >> cap) & 1) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;
      if (errno == EPERM) continue;
      return ErrnoError(absl::StrCat("dropping capability ", cap, " from the bounding set"));
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return ErrnoError("clearing ambient capabilities");
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return ErrnoError("capget");
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
    uint32_t keep = static_cast<uint32_t>(kKeep >> (32 * i));
    data[i].permitted &= keep;
    data[i].effective = data[i].permitted;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &header, data) != 0) return ErrnoError("capset");
  return absl::OkStatus();
}

struct ScmpCtxDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};

struct Rule {
  int nr;
  const char* why;
};

}  // namespace

absl::Status InstallGoferSeccomp(bool read_only) {
  std::unique_ptr<void, ScmpCtxDeleter> ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
  if (!ctx) return absl::InternalError("gofer: seccomp_init failed");

  // The policy, one reason per line. Everything else kills the gofer.
  static constexpr Rule kAllowed[] = {
      {SCMP_SYS(recvmsg), "requests, from the sentry"},
      {SCMP_SYS(sendmsg), "responses and donated fds, to the sentry"},
      {SCMP_SYS(openat2), "every lookup and reopen (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)"},
      {SCMP_SYS(newfstatat), "Stat, and fstat() as glibc implements it"},
      {SCMP_SYS(fstat), "fstat() on libcs that still use it"},
      {SCMP_SYS(readlinkat), "Readlink"},
      {SCMP_SYS(getdents64), "Getdents"},
      {SCMP_SYS(lseek), "Getdents: seek a directory stream to the cookie"},
      {SCMP_SYS(fstatfs), "Statfs, and the pseudo-filesystem check of Walk"},
      {SCMP_SYS(close), "Close, and every temporary fd"},
      {SCMP_SYS(brk), "malloc"},
      {SCMP_SYS(munmap), "malloc (large blocks)"},
      {SCMP_SYS(mremap), "malloc (realloc of large blocks)"},
      {SCMP_SYS(madvise), "malloc (trimming)"},
      {SCMP_SYS(futex), "libstdc++ / Abseil one-time initialisation, if contended"},
      {SCMP_SYS(rt_sigreturn), "returning from a signal handler"},
      {SCMP_SYS(clock_gettime), "time, when the vDSO cannot answer"},
      {SCMP_SYS(getpid), "logging"},
      {SCMP_SYS(gettid), "logging"},
      {SCMP_SYS(exit_group), "exit when the sentry hangs up"},
      {SCMP_SYS(exit), "exit"},
  };
  for (const Rule& r : kAllowed) {
    if (seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, r.nr, 0) != 0) {
      return absl::InternalError(absl::StrCat("gofer: seccomp rule for ", r.why, " failed"));
    }
  }
  int rc = 0;
  // malloc's mappings, never executable: the gofer runs no code it did not
  // start with.
  rc |= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                         SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  rc |= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                         SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  // Open: clearing the O_NONBLOCK used while reopening a file.
  rc |= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                         SCMP_A1(SCMP_CMP_EQ, F_GETFL));
  rc |= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                         SCMP_A1(SCMP_CMP_EQ, F_SETFL));
  // Diagnostics, to stderr only.
  rc |= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
                         SCMP_A0(SCMP_CMP_EQ, STDERR_FILENO));
  // A writable tree: the mutating ops.
  if (!read_only) {
    static constexpr Rule kWrites[] = {
        {SCMP_SYS(ftruncate), "Open with O_TRUNC, Setattr of the size"},
        {SCMP_SYS(mknodat), "Create (S_IFREG), Mknod (FIFOs, sockets)"},
        {SCMP_SYS(mkdirat), "Mkdir"},
        {SCMP_SYS(symlinkat), "Symlink"},
        {SCMP_SYS(linkat), "Link"},
        {SCMP_SYS(unlinkat), "Unlink, and undoing a Link that raced"},
        {SCMP_SYS(renameat2), "Rename"},
        {SCMP_SYS(fchmod), "Setattr of the mode, on a reopened fd"},
        {SCMP_SYS(fchownat), "new nodes' owner; Setattr of uid and gid (AT_EMPTY_PATH)"},
        {SCMP_SYS(utimensat), "Setattr of the times (AT_EMPTY_PATH)"},
        {SCMP_SYS(inotify_init1), "WatchInit"},
        {SCMP_SYS(inotify_add_watch), "Watch"},
        {SCMP_SYS(inotify_rm_watch), "Watch of a name swapped meanwhile"},
        {SCMP_SYS(fchdir), "Watch, Bind, Connect: a path relative to a held directory"},
        {SCMP_SYS(bind), "Bind: a unix socket's node in the tree"},
        {SCMP_SYS(connect), "Connect: to a unix socket node in the tree"},
        {SCMP_SYS(umask), "Bind: the new socket node's mode"},
    };
    for (const Rule& r : kWrites) rc |= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, r.nr, 0);
    // Bind and Connect: unix sockets only (stream, seqpacket, datagram).
    for (int type : {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM}) {
      for (int flags : {static_cast<int>(SOCK_CLOEXEC), SOCK_CLOEXEC | SOCK_NONBLOCK}) {
        rc |= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                               SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
                               SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(type | flags)));
      }
    }
    // WatchInit: the sentry's copy of the inotify descriptor.
    rc |= seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                           SCMP_A1(SCMP_CMP_EQ, F_DUPFD_CLOEXEC));
  }
#if HUSK_GOFER_SANITIZED
  // Sanitizer builds only (tests): the ASan/UBSan runtime's own calls —
  // probing memory through a pipe, reporting, and its signal handling.
  for (int nr : {SCMP_SYS(pipe2), SCMP_SYS(write), SCMP_SYS(read), SCMP_SYS(sigaltstack),
                 SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(sched_yield)}) {
    seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0);  // EEXIST for write: fine
  }
#endif
  if (rc != 0) return absl::InternalError("gofer: adding a seccomp argument rule failed");

  if (int err = seccomp_load(ctx.get()); err != 0) {
    return absl::InternalError(
        absl::StrCat("gofer: loading the seccomp filter failed: ", strerror(-err)));
  }
  return absl::OkStatus();
}

absl::Status ConfineGofer(const std::string& root, bool read_only, UniqueFd* root_dir) {
  if (root.empty() || root[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("gofer: root must be an absolute path, got \"", root, "\""));
  }
  if (absl::Status s = EnterRoot(root, read_only); !s.ok()) return s;
  if (absl::Status s = RefuseForeignMounts(); !s.ok()) return s;

  UniqueFd dir(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoError("opening the new root");

  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &lim);  // more fids fit; failure is not fatal
  }

  // New nodes get exactly the modes the sentry asks for: it applied the
  // sandbox's umask already.
  umask(0);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoError("PR_SET_NO_NEW_PRIVS");
  if (absl::Status s = DropCapabilities(read_only); !s.ok()) return s;
  if (absl::Status s = InstallGoferSeccomp(read_only); !s.ok()) return s;
  *root_dir = std::move(dir);
  return absl::OkStatus();
}

}  // namespace husk::gofer
