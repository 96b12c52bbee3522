#include "sentry/net/socket.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "sentry/time/sandbox_clock.h"

namespace husk::net {

namespace {
std::atomic<void (*)(std::weak_ptr<vfs::File>, const vfs::File*)> g_urgent_poster{nullptr};
}  // namespace

void PostUrgent(std::weak_ptr<vfs::File> socket, const vfs::File* key) {
  if (auto* post = g_urgent_poster.load()) post(std::move(socket), key);
}

void SetUrgentPoster(void (*post)(std::weak_ptr<vfs::File>, const vfs::File*)) {
  g_urgent_poster.store(post);
}

SocketInode::SocketInode(uid_t uid, gid_t gid)
    : ino_(vfs::NextInodeNumber()), uid_(uid), gid_(gid) {
  time_ = SandboxTimespec(CLOCK_REALTIME);
}

Result<struct stat> SocketInode::Stat() {
  static const dev_t dev = vfs::NewAnonDevice();
  struct stat st {};
  st.st_dev = dev;
  st.st_ino = ino_;
  st.st_mode = S_IFSOCK | 0777;
  st.st_nlink = 1;
  st.st_uid = uid_;
  st.st_gid = gid_;
  st.st_blksize = 4096;
  st.st_atim = st.st_mtim = st.st_ctim = time_;
  return st;
}

Result<size_t> Socket::Read(char* buf, size_t n) {
  if (n == 0) return size_t{0};
  Task* t = Kernel::Current();
  if (t == nullptr) return Errno{EAGAIN};
  t->kernel().mu.AssertHeld();
  ASSIGN_OR_RETURN(Received r, Receive(*t, n, 0));
  std::copy(r.data.begin(), r.data.end(), buf);
  return r.data.size();
}

Result<size_t> Socket::Write(const char* buf, size_t n) {
  Task* t = Kernel::Current();
  if (t == nullptr) return Errno{EAGAIN};
  t->kernel().mu.AssertHeld();
  SendRequest req;
  req.data = std::string_view(buf, n);
  return Send(*t, req);
}

Result<timeval> ParseSocketTimeout(std::string_view value) {
  timeval tv;
  if (value.size() < sizeof(tv)) return Errno{EINVAL};
  memcpy(&tv, value.data(), sizeof(tv));
  if (tv.tv_usec < 0 || tv.tv_usec >= 1000000) return Errno{EDOM};
  if (tv.tv_sec < 0) tv = {0, 1};
  return tv;
}

absl::Time SocketDeadline(const timeval& timeout) {
  const absl::Duration d = absl::Seconds(timeout.tv_sec) + absl::Microseconds(timeout.tv_usec);
  return d == absl::ZeroDuration() ? absl::InfiniteFuture() : MonotonicNow() + d;
}

Result<struct statfs> SocketInode::Statfs() {
  ASSIGN_OR_RETURN(struct statfs s, vfs::Inode::Statfs());
  s.f_type = 0x534F434B;  // SOCKFS_MAGIC
  return s;
}

}  // namespace husk::net
