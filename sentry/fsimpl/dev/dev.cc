#include "sentry/fsimpl/dev/dev.h"

#include <cassert>

#include "sentry/fsimpl/tmpfs/tmpfs.h"

namespace husk::devfs {

vfs::InodeRef NewDevRoot() {
  // Like devtmpfs: a tmpfs whose device nodes share its st_dev.
  vfs::InodeRef root = tmpfs::NewTmpfsRoot(0755);
  dev_t dev = root->Stat().value().st_dev;
  const struct {
    const char* name;
    MemDevice kind;
  } kDevices[] = {
      {"null", MemDevice::kNull},     {"zero", MemDevice::kZero},       {"full", MemDevice::kFull},
      {"random", MemDevice::kRandom}, {"urandom", MemDevice::kURandom},
  };
  // A fresh tmpfs cannot refuse these names; a failure is a bug here.
  for (const auto& d : kDevices) {
    [[maybe_unused]] Status s = tmpfs::AddChild(*root, d.name, NewMemDevice(d.kind, dev));
    assert(s.ok());
  }
  [[maybe_unused]] bool ok = root->Mkdir("pts", 0755).ok() && root->Mkdir("shm", 01777).ok() &&
                             root->Symlink("fd", "/proc/self/fd").ok() &&
                             root->Symlink("stdin", "/proc/self/fd/0").ok() &&
                             root->Symlink("stdout", "/proc/self/fd/1").ok() &&
                             root->Symlink("stderr", "/proc/self/fd/2").ok();
  assert(ok);
  return root;
}

}  // namespace husk::devfs
