// The gofer server's internals, shared by its two halves: server.cc (the
// request loop and the ops that read) and server_write.cc (the ops that
// change a writable tree). Not part of the gofer's interface.
#ifndef HUSK_GOFER_CONNECTION_H_
#define HUSK_GOFER_CONNECTION_H_

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/fd.h"
#include "base/result.h"
#include "proto/gofer.pb.h"

namespace husk::gofer::internal {

namespace pb = ::husk::gofer::proto;

// Every lookup: a single component, beneath the directory fd, refusing
// symlinks (the final one is opened as itself thanks to O_PATH|O_NOFOLLOW)
// and procfs magic links. Mount crossings are allowed: the served host root
// has submounts.
inline constexpr uint64_t kResolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

// openat2(2), retrying EINTR and the EAGAIN of a racing rename or mount.
int Openat2(int dirfd, const char* name, uint64_t flags, uint64_t resolve);
// Whether the filesystem `fd` (device `dev`) is on holds ordinary files.
bool IsServedFs(int fd, dev_t dev);
void FillAttr(const struct stat& st, pb::Attr* out);
// fstatat(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW).
Result<struct stat> StatFd(int fd);

// A node of the served tree the gofer holds open. Nodes form a chain up to
// the root so that a file can be reopened by (parent fd, name): O_PATH fds
// cannot be upgraded in place without /proc, which the gofer does not have.
// A rename through the gofer updates parent and name of the nodes it moves.
struct Node {
  UniqueFd fd;                   // O_PATH | O_NOFOLLOW
  std::shared_ptr<Node> parent;  // null for the root
  std::string name;              // in parent; empty for the root
  mode_t type = 0;               // S_IFMT bits; an inode never changes type
  dev_t dev = 0;
  ino_t ino = 0;
};

struct FidState {
  std::shared_ptr<Node> node;
  // An open directory stream while a listing is in progress.
  UniqueFd dir;
};

class Connection {
 public:
  Connection(std::shared_ptr<Node> root, bool read_only)
      : root_(std::move(root)), read_only_(read_only) {}

  // Answers one request. `donated` receives the fd an Open hands over.
  void Handle(const pb::Request& req, pb::Response* resp, UniqueFd* donated);

 private:
  Result<uint64_t> AddFid(std::shared_ptr<Node> node);
  Result<FidState*> Lookup(uint64_t fid);
  // A real fd on the file `node` names, checked to be that very file
  // (ESTALE otherwise): regular files and FIFOs by (parent, name) with
  // open(2) `flags`, directories through ".".
  Result<UniqueFd> Reopen(const Node& node, int flags);

  // server.cc: the ops that read.
  Status Attach(pb::AttachResponse* out);
  Status Walk(const pb::WalkRequest& req, pb::WalkResponse* out);
  Status Stat(const pb::StatRequest& req, pb::StatResponse* out);
  Result<UniqueFd> Open(const pb::OpenRequest& req);
  Status Readlink(const pb::ReadlinkRequest& req, pb::ReadlinkResponse* out);
  Status Getdents(const pb::GetdentsRequest& req, pb::GetdentsResponse* out);
  Status Statfs(const pb::StatfsRequest& req, pb::StatfsResponse* out);
  void Close(const google::protobuf::RepeatedField<uint64_t>& fids);

  // server_write.cc: the ops that change the tree (EROFS when read-only).
  // Handles the mutating ops; false if `req` is not one.
  bool HandleWrite(const pb::Request& req, pb::Response* resp, Status* st);
  Result<std::shared_ptr<Node>> WritableDir(uint64_t fid, const std::string& name);
  // The node just made as `name` in `dir`: owned by uid/gid where the gofer
  // may, added as a fid.
  Status NewChild(const std::shared_ptr<Node>& dir, const std::string& name, uint32_t uid,
                  uint32_t gid, pb::FidAttr* out);
  Status Create(const pb::CreateRequest& req, pb::FidAttr* out);
  Status Mkdir(const pb::MkdirRequest& req, pb::FidAttr* out);
  Status Mknod(const pb::MknodRequest& req, pb::FidAttr* out);
  Status Symlink(const pb::SymlinkRequest& req, pb::FidAttr* out);
  Status Link(const pb::LinkRequest& req, pb::Attr* out);
  Status Unlink(const pb::UnlinkRequest& req);
  Status Rename(const pb::RenameRequest& req);
  Status Setattr(const pb::SetattrRequest& req, pb::Attr* out);
  // Host change notification (see proto WatchInitRequest).
  Result<UniqueFd> WatchInit();
  // Unix sockets on a writable tree: Bind gives the bound socket, Connect
  // the connected one.
  Result<UniqueFd> Bind(const pb::BindRequest& req, pb::FidAttr* out);
  Result<UniqueFd> Connect(const pb::ConnectRequest& req);
  Status Watch(const pb::WatchRequest& req, pb::WatchResponse* out);
  // After a rename: nodes named (from, from_name) are now (to, to_name).
  void Moved(const std::shared_ptr<Node>& from, const std::string& from_name,
             const std::shared_ptr<Node>& to, const std::string& to_name, bool exchange);

  std::shared_ptr<Node> root_;
  bool read_only_;
  std::unordered_map<uint64_t, FidState> fids_;
  UniqueFd inotify_;       // made by the first WatchInit
  uint64_t next_fid_ = 1;  // 0 is never a fid
};

}  // namespace husk::gofer::internal

#endif  // HUSK_GOFER_CONNECTION_H_
