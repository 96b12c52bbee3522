#include "sentry/kernel/anon.h"

#include <sys/stat.h>
#include <time.h>

#include "sentry/time/sandbox_clock.h"

namespace husk::anon {
namespace {

class AnonInode : public vfs::Inode {
 public:
  AnonInode() : ino_(vfs::NextInodeNumber()), dev_(vfs::NewAnonDevice()) {
    time_ = SandboxTimespec(CLOCK_REALTIME);
  }
  // alloc_anon_inode: S_IRUSR | S_IWUSR, owned by whoever made it at boot.
  mode_t Type() override { return 0; }
  bool Stream() override { return true; }  // no positions: pread is ESPIPE, lseek stays at 0
  Result<struct statfs> Statfs() override {
    ASSIGN_OR_RETURN(struct statfs s, vfs::Inode::Statfs());
    s.f_type = 0x09041934;  // ANON_INODE_FS_MAGIC
    return s;
  }
  Result<struct stat> Stat() override {
    struct stat st {};
    st.st_dev = dev_;
    st.st_ino = ino_;
    st.st_mode = S_IRUSR | S_IWUSR;
    st.st_nlink = 1;
    st.st_blksize = 4096;
    st.st_atim = st.st_mtim = st.st_ctim = time_;
    return st;
  }

 private:
  uint64_t ino_;
  dev_t dev_;
  timespec time_{};
};

}  // namespace

vfs::InodeRef Inode() {
  static const vfs::InodeRef inode = std::make_shared<AnonInode>();
  return inode;
}

}  // namespace husk::anon
