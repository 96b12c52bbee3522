// The memory character devices. Their data never touches the host except
// for random bytes, which come from the sentry's own getrandom(2).
#include <errno.h>
#include <sys/random.h>
#include <sys/sysmacros.h>
#include <time.h>

#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/fsimpl/dev/dev.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::devfs {
namespace {

timespec Now() { return SandboxTimespec(CLOCK_REALTIME); }

unsigned Minor(MemDevice kind) {
  switch (kind) {
    case MemDevice::kNull:
      return 3;
    case MemDevice::kZero:
      return 5;
    case MemDevice::kFull:
      return 7;
    case MemDevice::kRandom:
      return 8;
    case MemDevice::kURandom:
      return 9;
  }
  return 0;
}

Result<size_t> FillRandom(char* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    // getrandom(2) may return fewer bytes (at most 32 MiB - 1 per call) or
    // be interrupted; the urandom pool never blocks once initialised.
    ssize_t r = getrandom(buf + done, n - done, 0);
    if (r < 0) {
      if (errno == EINTR) {
        if (done > 0) break;
        continue;
      }
      if (done > 0) break;
      return Errno{errno};
    }
    done += static_cast<size_t>(r);
  }
  return done;
}

// A private mapping of /dev/zero is zero-filled memory.
class ZeroMappable : public Mappable {
 public:
  ZeroMappable(uint64_t ino, dev_t dev) : ino_(ino), dev_(dev) {}
  Result<size_t> ReadForMapping(uint64_t offset, char* buf, size_t n) override {
    memset(buf, 0, n);
    return n;
  }
  std::string MapsName() const override { return "/dev/zero"; }
  uint64_t MapsInode() const override { return ino_; }
  uint64_t MapsDevice() const override { return dev_; }

 private:
  uint64_t ino_;
  dev_t dev_;
};

class MemDeviceInode;

// Linux lets pread/pwrite work on these devices (the offset is ignored),
// where the generic stream file would answer ESPIPE.
class MemDeviceFile : public vfs::File {
 public:
  MemDeviceFile(vfs::InodeRef inode, int flags, MemDevice kind)
      : File(std::move(inode), flags), kind_(kind) {}

  Result<size_t> PRead(char* buf, size_t n, uint64_t offset) override {
    if (!readable()) return Errno{EBADF};
    return inode_->ReadAt(buf, n, offset);
  }
  Result<size_t> PWrite(const char* buf, size_t n, uint64_t offset) override {
    if (!writable()) return Errno{EBADF};
    return inode_->WriteAt(buf, n, offset);
  }
  std::shared_ptr<Mappable> GetMappable() override;

 private:
  MemDevice kind_;
};

class MemDeviceInode : public vfs::Inode {
 public:
  MemDeviceInode(MemDevice kind, dev_t fs_dev)
      : kind_(kind), fs_dev_(fs_dev), ino_(vfs::NextInodeNumber()) {
    atime_ = mtime_ = ctime_ = Now();
  }

  uint64_t ino() const { return ino_; }
  dev_t fs_dev() const { return fs_dev_; }

  Result<struct stat> Stat() override {
    struct stat st {};
    absl::MutexLock lock(&mu_);
    st.st_dev = fs_dev_;
    st.st_ino = ino_;
    st.st_mode = S_IFCHR | perm_;
    st.st_nlink = 1;
    st.st_uid = uid_;
    st.st_gid = gid_;
    st.st_rdev = makedev(1, Minor(kind_));
    st.st_blksize = 4096;
    st.st_atim = atime_;
    st.st_mtim = mtime_;
    st.st_ctim = ctime_;
    return st;
  }

  mode_t Type() override { return S_IFCHR; }
  bool Stream() override { return true; }

  Result<vfs::FileRef> Open(int flags) override {
    // O_TRUNC means nothing to a character device.
    return vfs::FileRef(std::make_shared<MemDeviceFile>(shared_from_this(), flags, kind_));
  }

  Result<size_t> ReadAt(char* buf, size_t n, uint64_t offset) override {
    switch (kind_) {
      case MemDevice::kNull:
        return size_t{0};
      case MemDevice::kZero:
      case MemDevice::kFull:
        memset(buf, 0, n);
        return n;
      case MemDevice::kRandom:
      case MemDevice::kURandom:
        return FillRandom(buf, n);
    }
    return Errno{EINVAL};
  }

  Result<size_t> WriteAt(const char* buf, size_t n, uint64_t offset) override {
    // full(4): "Writes to /dev/full always fail with the error ENOSPC".
    if (kind_ == MemDevice::kFull) return Errno{ENOSPC};
    // random(4): writes would mix into the entropy pool; they are dropped.
    return n;
  }

  Status SetAttributes(const vfs::SetAttr& attr) override {
    // truncate(2) of anything but a regular file is EINVAL.
    if (attr.set_size) return Errno{EINVAL};
    absl::MutexLock lock(&mu_);
    if (attr.set_mode) perm_ = attr.mode & 07777;
    if (attr.set_uid) uid_ = attr.uid;
    if (attr.set_gid) gid_ = attr.gid;
    if (attr.set_atime) SetTime(attr.atime, &atime_);
    if (attr.set_mtime) SetTime(attr.mtime, &mtime_);
    ctime_ = Now();
    return Ok();
  }

 private:
  static void SetTime(const timespec& t, timespec* field) {
    if (t.tv_nsec == UTIME_OMIT) return;
    *field = t.tv_nsec == UTIME_NOW ? Now() : t;
  }

  const MemDevice kind_;
  const dev_t fs_dev_;
  const uint64_t ino_;
  absl::Mutex mu_;
  mode_t perm_ ABSL_GUARDED_BY(mu_) = 0666;
  uid_t uid_ ABSL_GUARDED_BY(mu_) = 0;
  gid_t gid_ ABSL_GUARDED_BY(mu_) = 0;
  timespec atime_ ABSL_GUARDED_BY(mu_);
  timespec mtime_ ABSL_GUARDED_BY(mu_);
  timespec ctime_ ABSL_GUARDED_BY(mu_);
};

std::shared_ptr<Mappable> MemDeviceFile::GetMappable() {
  // mmap of /dev/zero gives zeroed memory (zero(4)); the others have no mmap.
  if (kind_ != MemDevice::kZero) return nullptr;
  auto* dev = static_cast<MemDeviceInode*>(inode_.get());
  return std::make_shared<ZeroMappable>(dev->ino(), dev->fs_dev());
}

}  // namespace

vfs::InodeRef NewMemDevice(MemDevice kind, dev_t fs_dev) {
  return std::make_shared<MemDeviceInode>(kind, fs_dev);
}

}  // namespace husk::devfs
