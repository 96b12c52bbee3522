// The sentry's side of the gofer protocol: one Client per gofer connection.
//
// Thread-safe: calls from any thread are serialized on one mutex (the
// protocol has one request in flight per connection). Errors are Linux
// errnos as the gofer reported them; a broken transport or a response that
// breaks the protocol is EIO, and the connection is then dead for good
// (every later call is EIO). The client trusts nothing the server sends:
// counts, sizes, names, types and donated descriptors are checked.
//
// Fids name nodes of the served tree and stay valid until Close.
#ifndef HUSK_GOFER_CLIENT_H_
#define HUSK_GOFER_CLIENT_H_

#include <sys/statfs.h>
#include <time.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "base/fd.h"
#include "base/result.h"

namespace husk::gofer {

namespace proto {
class Request;
class Response;
}  // namespace proto

using Fid = uint64_t;

// A node's attributes, as the host's fstatat(AT_SYMLINK_NOFOLLOW) gave them.
struct Attr {
  uint64_t ino = 0, dev = 0;
  uint32_t mode = 0, nlink = 0, uid = 0, gid = 0;
  uint64_t rdev = 0;
  int64_t size = 0, blksize = 0, blocks = 0;
  timespec atime{}, mtime{}, ctime{};
};

// Setattr's changes: the fields set are applied (times as in utimensat(2),
// UTIME_NOW and UTIME_OMIT included).
struct SetattrArgs {
  std::optional<uint32_t> mode, uid, gid;
  std::optional<uint64_t> size;
  std::optional<timespec> atime, mtime;
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint8_t type = 0;  // DT_*
};

struct WalkStep {
  Fid fid;
  Attr attr;
};

// Walk's answer in full: the resolved prefix and, when it is shorter than
// the names asked for and does not end at a symlink, why the next component
// failed (ENOENT, ENOTDIR, EACCES, ...). stop_errno is 0 otherwise.
struct WalkResult {
  std::vector<WalkStep> steps;
  int stop_errno = 0;
};

class Client {
 public:
  // Closes still queued at destruction are not sent: the gofer releases
  // every fid of a connection when the connection closes.
  explicit Client(UniqueFd sock);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // A new fid for the root of the served tree.
  Result<WalkStep> Attach();

  // Resolves `names` (single components, never "", ".", "..", or holding
  // '/') from directory `dir`, one fid per resolved component. Symlinks are
  // not followed: a symlink component ends the walk as its last step. If
  // some components resolved, returns them (fewer steps than names means
  // the rest failed: use WalkFull to learn why); if none did, the errno
  // (ENOENT, ENOTDIR when `dir` is not a directory, EINVAL for a bad name,
  // ...). Walks of any length: long ones take several round trips.
  Result<std::vector<WalkStep>> Walk(Fid dir, const std::vector<std::string>& names);
  Result<WalkResult> WalkFull(Fid dir, const std::vector<std::string>& names);

  Result<Attr> Stat(Fid fid);

  // A host fd open on the regular file `fid` names, with open(2) `flags`
  // (access mode, O_APPEND, O_TRUNC, O_NONBLOCK, O_DSYNC, O_SYNC, O_DIRECT,
  // O_NOATIME). EISDIR for a directory, ELOOP for a symlink, ENXIO for other
  // types, EROFS for write access to a read-only tree, ESTALE if the name
  // now holds another file. The fd has FD_CLOEXEC.
  Result<UniqueFd> Open(Fid fid, int flags);

  // The target of symlink `fid` (EINVAL if it is not one).
  Result<std::string> Readlink(Fid fid);

  // The whole listing of directory `dir` without "." and "..", through as
  // many Getdents round trips as needed.
  Result<std::vector<DirEntry>> ReadDir(Fid dir);

  Result<struct statfs> Statfs(Fid fid);

  // The mutating ops, on a writable tree (EROFS on a read-only one). `name`
  // is one component in directory `dir`. New nodes get mode's permission
  // bits as given (the caller applies the umask) and are owned by uid/gid
  // where the gofer may change owners.
  // A regular file; EEXIST if the name exists.
  Result<WalkStep> Create(Fid dir, const std::string& name, uint32_t mode, uint32_t uid,
                          uint32_t gid);
  Result<WalkStep> Mkdir(Fid dir, const std::string& name, uint32_t mode, uint32_t uid,
                         uint32_t gid);
  // A FIFO or socket node (mode holds the type); other types are EPERM.
  Result<WalkStep> Mknod(Fid dir, const std::string& name, uint32_t mode, uint32_t uid,
                         uint32_t gid);
  Result<WalkStep> Symlink(Fid dir, const std::string& name, const std::string& target,
                           uint32_t uid, uint32_t gid);
  // A new name for the non-directory `target`; its attributes after.
  Result<Attr> Link(Fid dir, const std::string& name, Fid target);
  Status Unlink(Fid dir, const std::string& name, bool remove_dir);
  // renameat2(2) with flags 0, RENAME_NOREPLACE or RENAME_EXCHANGE.
  Status Rename(Fid old_dir, const std::string& old_name, Fid new_dir, const std::string& new_name,
                uint32_t flags);
  // The attributes after the change.
  Result<Attr> Setattr(Fid fid, const SetattrArgs& args);

  // Host change notification, on a writable tree (EROFS on a read-only
  // one). WatchInit: a descriptor of the connection's host inotify
  // instance (nonblocking, FD_CLOEXEC; the same instance every time).
  // Watch: the watch descriptor of `fid`'s node in that instance, for the
  // events kWatchMask (gofer/wire.h) lists; ESTALE if its name holds
  // another file now.
  Result<UniqueFd> WatchInit();
  // Unix sockets on a writable tree (a read-write volume), reachable by
  // host processes: BindSocket makes a socket of `type` (SOCK_STREAM,
  // SOCK_SEQPACKET or SOCK_DGRAM) bound at dir/name, with mode and owner,
  // and gives its node and the bound host socket; ConnectSocket gives a
  // non-blocking host socket connected to the socket node `fid`. Both
  // descriptors are non-blocking, and checked to be unix sockets of that
  // type.
  Result<std::pair<WalkStep, UniqueFd>> BindSocket(Fid dir, const std::string& name, int type,
                                                   uint32_t mode, uint32_t uid, uint32_t gid);
  Result<UniqueFd> ConnectSocket(Fid fid, int type);
  Result<int> Watch(Fid fid);

  // Releases `fid`. Queued: sent along with the next request, or on its own
  // when 64 are queued. Never fails.
  void Close(Fid fid);
  // Sends the queued closes now (one round trip if any are queued).
  void FlushCloses();

 private:
  // One round trip. Queued closes ride along. Transport or protocol errors
  // are EIO and break the connection.
  Result<UniqueFd> RoundTrip(proto::Request& req, proto::Response* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RoundTrip, then: the server's errno, or EIO (and a broken connection)
  // unless the result is of kind `expected` (a proto::Response::ResultCase).
  Result<UniqueFd> Call(proto::Request& req, proto::Response* resp, int expected)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Result<WalkResult> WalkOnce(Fid dir, const std::string* names, size_t count)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status SendCloses() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A round trip of an op that makes a node (Create, Mkdir, ...).
  Result<WalkStep> NewNode(proto::Request& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the connection dead after a transport or protocol failure.
  Errno Break() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  UniqueFd sock_ ABSL_GUARDED_BY(mu_);
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Fid> pending_closes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace husk::gofer

#endif  // HUSK_GOFER_CLIENT_H_
