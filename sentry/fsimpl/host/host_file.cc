#include "sentry/fsimpl/host/host_file.h"

#include <errno.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

namespace husk::hostfs {
namespace {

// What TCGETS copies out: the kernel's struct termios (NCCS 19, see
// asm-generic/termbits.h), 36 bytes. glibc's struct termios is bigger
// (c_cc[32] and two speeds); glibc's tcgetattr hands the kernel a buffer of
// this size, so copying glibc's struct out would write 24 bytes past it.
struct KernelTermios {
  tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
  cc_t c_line;
  cc_t c_cc[19];
};
static_assert(sizeof(KernelTermios) == 36);

// The device every host stdio file shows, made by the sentry like the
// pipefs and sockfs devices of Linux.
dev_t HostFilesDevice() {
  static const dev_t dev = vfs::NewAnonDevice();
  return dev;
}

class HostInode : public vfs::Inode {
 public:
  explicit HostInode(int fd) : fd_(fd), ino_(vfs::NextInodeNumber()) {}
  // The host's device and inode numbers would identify host objects, and
  // its owner ids mean nothing in the sandbox: the sandbox sees numbers of
  // the sentry's own, owned by its root. The type, mode, size, times and a
  // character device's number (which tells /dev/null from a terminal) stay.
  Result<struct stat> Stat() override {
    struct stat st;
    if (fstat(fd_, &st) != 0) return Errno{errno};
    st.st_dev = HostFilesDevice();
    st.st_ino = ino_;
    st.st_uid = 0;
    st.st_gid = 0;
    st.st_nlink = 1;
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) st.st_rdev = 0;
    return st;
  }
  mode_t Type() override {
    struct stat st;
    return fstat(fd_, &st) == 0 ? (st.st_mode & S_IFMT) : S_IFIFO;
  }
  bool Stream() override { return true; }

 private:
  int fd_;
  const uint64_t ino_;
};

class HostFile : public vfs::File {
 public:
  HostFile(UniqueFd fd, int flags, std::function<void(bool)> hook)
      : File(std::make_shared<HostInode>(fd.get()), flags),
        fd_(std::move(fd)),
        hook_(std::move(hook)) {}

  Result<size_t> Read(char* buf, size_t n) override {
    if (!readable()) return Errno{EBADF};
    if (hook_) hook_(true);
    ssize_t r;
    do {
      r = read(fd_.get(), buf, n);
    } while (r < 0 && errno == EINTR);
    int err = errno;
    if (hook_) hook_(false);
    if (r < 0) return Errno{err};
    return static_cast<size_t>(r);
  }

  Result<size_t> Write(const char* buf, size_t n) override {
    if (!writable()) return Errno{EBADF};
    // A full pipe or a stopped terminal blocks a write as an empty one
    // blocks a read: the kernel must not stay locked meanwhile.
    if (hook_) hook_(true);
    size_t done = 0;
    int err = 0;
    while (done < n) {
      ssize_t w = write(fd_.get(), buf + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        err = errno;
        break;
      }
      done += static_cast<size_t>(w);
    }
    if (hook_) hook_(false);
    if (done == 0 && err != 0) return Errno{err};
    return done;
  }

  Result<size_t> PRead(char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<size_t> PWrite(const char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<off_t> Seek(off_t, int) override { return Errno{ESPIPE}; }
  std::shared_ptr<Mappable> GetMappable() override { return nullptr; }
  int HostFd() const override { return fd_.get(); }
  // What the host says of its descriptor right now (a zero-timeout poll);
  // blocking waits put the descriptor itself in the task's host poll.
  uint32_t Readiness(uint32_t mask) override {
    pollfd p{fd_.get(), static_cast<short>(mask & 0xffff), 0};
    int n;
    do {
      n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return 0;
    return static_cast<uint16_t>(p.revents) & (mask | POLLERR | POLLHUP);
  }

  // Terminal queries the sandbox needs to behave like a terminal program
  // (isatty, window size); each is a fixed-size read of host tty state.
  Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) override {
    switch (cmd) {
      case TCGETS: {
        KernelTermios tio;
        if (ioctl(fd_.get(), TCGETS, &tio) != 0) return Errno{errno};
        TRY(mm.CopyOut(arg, &tio, sizeof(tio)));
        return 0L;
      }
      case TIOCGWINSZ: {
        struct winsize ws;
        if (ioctl(fd_.get(), TIOCGWINSZ, &ws) != 0) return Errno{errno};
        TRY(mm.CopyOut(arg, &ws, sizeof(ws)));
        return 0L;
      }
      case FIONREAD: {
        int n = 0;
        if (ioctl(fd_.get(), FIONREAD, &n) != 0) return Errno{errno};
        TRY(mm.CopyOut(arg, &n, sizeof(n)));
        return 0L;
      }
      default:
        return Errno{ENOTTY};
    }
  }

 private:
  UniqueFd fd_;
  std::function<void(bool)> hook_;
};

}  // namespace

Result<vfs::FileRef> NewHostFile(UniqueFd fd, int flags, std::function<void(bool)> block_hook) {
  if (!fd) return Errno{EBADF};
  return vfs::FileRef(std::make_shared<HostFile>(std::move(fd), flags, std::move(block_hook)));
}

}  // namespace husk::hostfs
