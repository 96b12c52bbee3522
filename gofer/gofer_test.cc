// The gofer server and client, end to end over a socketpair: the server runs
// in a thread (no confinement) against a temporary tree.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gofer/client.h"
#include "gofer/server.h"
#include "gofer/wire.h"
#include "gtest/gtest.h"
#include "proto/gofer.pb.h"

namespace husk::gofer {
namespace {

namespace fs = std::filesystem;
namespace pb = ::husk::gofer::proto;

void WriteFile(const fs::path& p, const std::string& content) {
  std::ofstream(p, std::ios::binary) << content;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  return out;
}

// Serve() on one end of a socketpair, in a thread.
class ServerThread {
 public:
  ServerThread(const fs::path& root, bool read_only) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    client_end_.Reset(sv[0]);
    UniqueFd root_fd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    EXPECT_TRUE(root_fd.valid());
    thread_ = std::thread([this, s = sv[1], r = root_fd.Release(), read_only] {
      status_ = Serve(UniqueFd(s), UniqueFd(r), read_only);
    });
  }
  ~ServerThread() {
    if (thread_.joinable()) thread_.join();
  }
  UniqueFd TakeClientEnd() { return std::move(client_end_); }
  int client_end() const { return client_end_.get(); }
  // Waits for Serve() to return (the client end must be closed by then).
  absl::Status Join() {
    thread_.join();
    return status_;
  }

 private:
  UniqueFd client_end_;
  std::thread thread_;
  absl::Status status_;
};

class GoferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    umask(0);  // as ConfineGofer leaves it
    char tmpl[] = "/tmp/gofer_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "a/b/c");
    WriteFile(root_ / "a/b/c/file.txt", "hello from c");
    WriteFile(root_ / "file", "top file");
    fs::create_symlink("a/b", root_ / "link");
    fs::create_symlink("/etc/passwd", root_ / "evil");
    fs::create_symlink("/etc", root_ / "evildir");
    fs::create_symlink("../../..", root_ / "a/up");
    ASSERT_EQ(mkfifo((root_ / "fifo").c_str(), 0600), 0);
  }
  void TearDown() override {
    client_.reset();  // hang up: the server must then return OK
    if (server_) {
      absl::Status s = server_->Join();
      if (!expect_server_error_) {
        EXPECT_TRUE(s.ok()) << s;
      }
      server_.reset();
    }
    fs::remove_all(root_);
  }

  void Start(bool read_only = true) {
    server_.emplace(root_, read_only);
    client_.emplace(server_->TakeClientEnd());
    Result<WalkStep> r = client_->Attach();
    ASSERT_TRUE(r.ok()) << r.error();
    root_fid_ = r->fid;
  }

  Fid WalkOne(Fid dir, const std::vector<std::string>& names) {
    Result<std::vector<WalkStep>> r = client_->Walk(dir, names);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return 0;
    EXPECT_EQ(r->size(), names.size());
    return r->back().fid;
  }

  fs::path root_;
  std::optional<ServerThread> server_;
  std::optional<Client> client_;
  Fid root_fid_ = 0;
  bool expect_server_error_ = false;
};

TEST_F(GoferTest, AttachGivesTheRoot) {
  Start();
  Result<Attr> a = client_->Stat(root_fid_);
  ASSERT_TRUE(a.ok());
  struct stat st;
  ASSERT_EQ(stat(root_.c_str(), &st), 0);
  EXPECT_EQ(a->ino, st.st_ino);
  EXPECT_EQ(a->dev, st.st_dev);
  EXPECT_TRUE(S_ISDIR(a->mode));
}

// A root on a host pseudo-filesystem (a volume of /proc or /sys) is refused
// at Attach, as such a mount is refused when a walk would cross into it.
TEST(GoferRootTest, PseudoFilesystemRootIsNotServed) {
  for (const char* root : {"/proc", "/sys"}) {
    struct stat st;
    if (stat(root, &st) != 0) continue;
    ServerThread server(root, true);
    Client client(server.TakeClientEnd());
    Result<WalkStep> r = client.Attach();
    ASSERT_FALSE(r.ok()) << root;
    EXPECT_EQ(r.error(), EACCES) << root;
  }
}

TEST_F(GoferTest, WalkManyComponents) {
  Start();
  Result<std::vector<WalkStep>> r = client_->Walk(root_fid_, {"a", "b", "c", "file.txt"});
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->size(), 4u);
  const char* paths[] = {"a", "a/b", "a/b/c", "a/b/c/file.txt"};
  std::set<Fid> fids;
  for (size_t i = 0; i < 4; ++i) {
    struct stat st;
    ASSERT_EQ(lstat((root_ / paths[i]).c_str(), &st), 0);
    EXPECT_EQ((*r)[i].attr.ino, st.st_ino) << paths[i];
    EXPECT_EQ((*r)[i].attr.mode, st.st_mode) << paths[i];
    EXPECT_EQ((*r)[i].attr.size, st.st_size) << paths[i];
    EXPECT_EQ((*r)[i].attr.mtime.tv_sec, st.st_mtim.tv_sec) << paths[i];
    EXPECT_EQ((*r)[i].attr.mtime.tv_nsec, st.st_mtim.tv_nsec) << paths[i];
    fids.insert((*r)[i].fid);
  }
  EXPECT_EQ(fids.size(), 4u) << "every step gets its own fid";
  // Fids are usable as walk starting points.
  Result<std::vector<WalkStep>> r2 = client_->Walk((*r)[1].fid, {"c"});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ((*r2)[0].attr.ino, (*r)[2].attr.ino);
}

TEST_F(GoferTest, WalkStopsAfterSymlink) {
  Start();
  Result<WalkResult> r = client_->WalkFull(root_fid_, {"link", "c", "file.txt"});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->steps.size(), 1u);
  EXPECT_TRUE(S_ISLNK(r->steps[0].attr.mode));
  EXPECT_EQ(r->stop_errno, 0);
  Result<std::string> target = client_->Readlink(r->steps[0].fid);
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(*target, "a/b");
}

TEST_F(GoferTest, WalkMissingAndNotDir) {
  Start();
  Result<std::vector<WalkStep>> r = client_->Walk(root_fid_, {"nope"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), ENOENT);

  Result<WalkResult> partial = client_->WalkFull(root_fid_, {"a", "nope", "x"});
  ASSERT_TRUE(partial.ok());
  ASSERT_EQ(partial->steps.size(), 1u) << "the missing component is not included";
  EXPECT_EQ(partial->stop_errno, ENOENT);

  Result<WalkResult> notdir = client_->WalkFull(root_fid_, {"file", "x"});
  ASSERT_TRUE(notdir.ok());
  ASSERT_EQ(notdir->steps.size(), 1u);
  EXPECT_TRUE(S_ISREG(notdir->steps[0].attr.mode));
  EXPECT_EQ(notdir->stop_errno, ENOTDIR);

  r = client_->Walk(notdir->steps[0].fid, {"x"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), ENOTDIR);
}

TEST_F(GoferTest, BadNamesAreRejected) {
  Start();
  for (const std::string& bad : {std::string(".."), std::string("."), std::string("a/b"),
                                 std::string(""), std::string("a\0b", 3), std::string("/etc")}) {
    Result<std::vector<WalkStep>> r = client_->Walk(root_fid_, {"a", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error(), EINVAL) << bad;
  }
  Result<std::vector<WalkStep>> r = client_->Walk(root_fid_, {std::string(256, 'x')});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), ENAMETOOLONG);
  r = client_->Walk(root_fid_, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), EINVAL);
}

TEST_F(GoferTest, OpenDonatesARegularFile) {
  Start();
  Fid f = WalkOne(root_fid_, {"a", "b", "c", "file.txt"});
  Result<UniqueFd> fd = client_->Open(f, O_RDONLY);
  ASSERT_TRUE(fd.ok()) << fd.error();
  EXPECT_EQ(ReadAll(fd->get()), "hello from c");
  EXPECT_EQ(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0) << "O_NONBLOCK only if asked for";
  // Write access is refused by a read-only tree.
  ASSERT_EQ(write(fd->get(), "x", 1), -1);
}

TEST_F(GoferTest, OpenRefusesEverythingButRegularFiles) {
  Start();
  struct Case {
    std::vector<std::string> path;
    int err;
  } cases[] = {
      {{"a"}, EISDIR},
      {{"link"}, ELOOP},
      {{"evil"}, ELOOP},
      {{"fifo"}, ENXIO},
  };
  for (const Case& c : cases) {
    Fid f = WalkOne(root_fid_, c.path);
    Result<UniqueFd> fd = client_->Open(f, O_RDONLY);
    ASSERT_FALSE(fd.ok()) << c.path[0];
    EXPECT_EQ(fd.error(), c.err) << c.path[0];
  }
  Result<UniqueFd> fd = client_->Open(root_fid_, O_RDONLY);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error(), EISDIR);
}

TEST_F(GoferTest, ReadOnlyTreeRefusesWrites) {
  Start(/*read_only=*/true);
  Fid f = WalkOne(root_fid_, {"file"});
  for (int flags :
       {O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_APPEND, O_RDONLY | O_CREAT}) {
    Result<UniqueFd> fd = client_->Open(f, flags);
    ASSERT_FALSE(fd.ok()) << flags;
    EXPECT_EQ(fd.error(), EROFS) << flags;
  }
  std::ifstream in(root_ / "file");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "top file");
}

TEST_F(GoferTest, WritableTreeOpensForWriting) {
  Start(/*read_only=*/false);
  Fid f = WalkOne(root_fid_, {"file"});
  Result<UniqueFd> fd = client_->Open(f, O_RDWR | O_TRUNC);
  ASSERT_TRUE(fd.ok()) << fd.error();
  ASSERT_EQ(write(fd->get(), "new", 3), 3);
  std::ifstream in(root_ / "file");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "new");
  // Creation and odd flags have no place in Open.
  for (int flags : {O_RDWR | O_CREAT, O_RDONLY | O_DIRECTORY, O_RDONLY | O_PATH, O_ACCMODE}) {
    Result<UniqueFd> bad = client_->Open(f, flags);
    ASSERT_FALSE(bad.ok()) << flags;
    EXPECT_EQ(bad.error(), EINVAL) << flags;
  }
}

TEST_F(GoferTest, OpenOfAReplacedFileIsStale) {
  Start(/*read_only=*/false);
  Fid f = WalkOne(root_fid_, {"file"});
  WriteFile(root_ / "other", "other");
  fs::rename(root_ / "other", root_ / "file");
  Result<UniqueFd> fd = client_->Open(f, O_RDONLY);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error(), ESTALE);
  // A fifo swapped in under the name neither blocks the gofer nor gets opened.
  Fid g = WalkOne(root_fid_, {"a", "b", "c", "file.txt"});
  fs::remove(root_ / "a/b/c/file.txt");
  ASSERT_EQ(mkfifo((root_ / "a/b/c/file.txt").c_str(), 0600), 0);
  fd = client_->Open(g, O_RDONLY);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error(), ESTALE);
}

std::string HostContent(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The events queued on inotify descriptor `fd` (nonblocking): "wd:mask:name".
std::vector<std::string> Events(int fd) {
  std::vector<std::string> out;
  alignas(struct inotify_event) char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    for (ssize_t off = 0; off < n;) {
      const auto* e = reinterpret_cast<const struct inotify_event*>(buf + off);
      out.push_back(std::to_string(e->wd) + ":" + std::to_string(e->mask) + ":" +
                    (e->len > 0 ? std::string(e->name) : ""));
      off += static_cast<ssize_t>(sizeof(*e) + e->len);
    }
  }
  return out;
}

std::string Ev(int wd, uint32_t mask, const std::string& name = "") {
  return std::to_string(wd) + ":" + std::to_string(mask) + ":" + name;
}

TEST_F(GoferTest, WatchReportsHostChangesToWatchedNodes) {
  Start(/*read_only=*/false);
  Result<UniqueFd> in = client_->WatchInit();
  ASSERT_TRUE(in.ok()) << in.error();
  Fid c = WalkOne(root_fid_, {"a", "b", "c"});
  Fid f = WalkOne(c, {"file.txt"});
  Result<int> dir_wd = client_->Watch(c);
  ASSERT_TRUE(dir_wd.ok()) << dir_wd.error();
  Result<int> file_wd = client_->Watch(f);
  ASSERT_TRUE(file_wd.ok()) << file_wd.error();
  EXPECT_NE(*dir_wd, *file_wd);
  // The same node again: the same descriptor. Another instance (a second
  // WatchInit) is the same instance.
  EXPECT_EQ(client_->Watch(c).value(), *dir_wd);
  Result<UniqueFd> again = client_->WatchInit();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(Events(in->get()).empty());

  // A host process appends to the file and makes a name beside it: the
  // file's own watch and its directory's hear the change, reads do not.
  { std::ofstream(root_ / "a/b/c/file.txt", std::ios::app) << "more"; }
  EXPECT_EQ(HostContent(root_ / "a/b/c/file.txt"), "hello from cmore");
  WriteFile(root_ / "a/b/c/new", "n");
  std::vector<std::string> got = Events(again->get());
  std::vector<std::string> want = {
      Ev(*dir_wd, IN_MODIFY, "file.txt"),      Ev(*file_wd, IN_MODIFY),
      Ev(*dir_wd, IN_CLOSE_WRITE, "file.txt"), Ev(*file_wd, IN_CLOSE_WRITE),
      Ev(*dir_wd, IN_CREATE, "new"),           Ev(*dir_wd, IN_MODIFY, "new"),
      Ev(*dir_wd, IN_CLOSE_WRITE, "new")};
  EXPECT_EQ(got, want);
  // Removed on the host: the file's link count changes now; it is gone
  // (IN_DELETE_SELF) only once the gofer lets its node go, as for any
  // file something still holds.
  fs::remove(root_ / "a/b/c/file.txt");
  got = Events(in->get());
  want = {Ev(*file_wd, IN_ATTRIB), Ev(*dir_wd, IN_DELETE, "file.txt")};
  EXPECT_EQ(got, want);
  client_->Close(f);
  client_->FlushCloses();
  got = Events(in->get());
  want = {Ev(*file_wd, IN_DELETE_SELF), Ev(*file_wd, IN_IGNORED)};
  EXPECT_EQ(got, want);
}

TEST_F(GoferTest, WatchRefusesReadOnlyTreesAndSwappedNames) {
  Start(/*read_only=*/true);
  EXPECT_EQ(client_->WatchInit().error(), EROFS);
  EXPECT_EQ(client_->Watch(root_fid_).error(), EROFS);
}

TEST_F(GoferTest, WatchOfAReplacedFileIsStale) {
  Start(/*read_only=*/false);
  Fid f = WalkOne(root_fid_, {"file"});
  // No instance yet.
  EXPECT_EQ(client_->Watch(f).error(), EBADF);
  ASSERT_TRUE(client_->WatchInit().ok());
  WriteFile(root_ / "other", "other");
  fs::rename(root_ / "other", root_ / "file");
  EXPECT_EQ(client_->Watch(f).error(), ESTALE);
  // A symlink under the name is not followed: still not the fid's file.
  Fid g = WalkOne(root_fid_, {"a", "b", "c", "file.txt"});
  fs::remove(root_ / "a/b/c/file.txt");
  fs::create_symlink("../../../file", root_ / "a/b/c/file.txt");
  EXPECT_EQ(client_->Watch(g).error(), ESTALE);
  EXPECT_EQ(client_->Watch(12345).error(), EBADF);
}

TEST_F(GoferTest, ReadOnlyTreeRefusesEveryChange) {
  Start(/*read_only=*/true);
  Fid f = WalkOne(root_fid_, {"file"});
  EXPECT_EQ(client_->Create(root_fid_, "n", 0644, 0, 0).error(), EROFS);
  EXPECT_EQ(client_->Mkdir(root_fid_, "n", 0755, 0, 0).error(), EROFS);
  EXPECT_EQ(client_->Mknod(root_fid_, "n", S_IFIFO | 0644, 0, 0).error(), EROFS);
  EXPECT_EQ(client_->Symlink(root_fid_, "n", "file", 0, 0).error(), EROFS);
  EXPECT_EQ(client_->Link(root_fid_, "n", f).error(), EROFS);
  EXPECT_EQ(client_->Unlink(root_fid_, "file", false).error(), EROFS);
  EXPECT_EQ(client_->Rename(root_fid_, "file", root_fid_, "n", 0).error(), EROFS);
  SetattrArgs chmod;
  chmod.mode = 0600;
  EXPECT_EQ(client_->Setattr(f, chmod).error(), EROFS);
  EXPECT_FALSE(fs::exists(root_ / "n"));
  EXPECT_EQ(HostContent(root_ / "file"), "top file");
}

// Bind makes a listening-ready unix socket in the tree, with the mode asked for, that a host
// process reaches by its path; Connect reaches a host process's socket in the tree.
TEST_F(GoferTest, BindAndConnectJoinUnixSocketsInTheTreeWithTheHost) {
  Start(/*read_only=*/false);
  auto bound = client_->BindSocket(root_fid_, "s.sock", SOCK_STREAM, 0750, getuid(), getgid());
  ASSERT_TRUE(bound.ok()) << bound.error();
  EXPECT_EQ(bound->first.attr.mode, S_IFSOCK | 0750u);
  ASSERT_EQ(listen(bound->second.get(), 4), 0);
  EXPECT_EQ(client_->BindSocket(root_fid_, "s.sock", SOCK_STREAM, 0750, 0, 0).error(), EADDRINUSE);
  EXPECT_EQ(client_->BindSocket(root_fid_, "r", SOCK_RAW, 0750, 0, 0).error(), EINVAL);
  auto addr_of = [](const fs::path& p) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", p.c_str());
    return a;
  };
  // A host process connects by the path.
  UniqueFd host(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a = addr_of(root_ / "s.sock");
  ASSERT_EQ(connect(host.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << errno;
  UniqueFd accepted(accept4(bound->second.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted.valid());
  ASSERT_EQ(write(host.get(), "hi", 2), 2);
  char buf[8] = {};
  EXPECT_EQ(read(accepted.get(), buf, sizeof(buf)), 2);
  EXPECT_STREQ(buf, "hi");

  // Connect: to a host listener's node, found by a walk.
  UniqueFd listener(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un b = addr_of(root_ / "host.sock");
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&b), sizeof(b)), 0);
  ASSERT_EQ(listen(listener.get(), 4), 0);
  Fid node = WalkOne(root_fid_, {"host.sock"});
  EXPECT_EQ(client_->ConnectSocket(node, SOCK_STREAM).error(), EPROTOTYPE);
  Result<UniqueFd> c = client_->ConnectSocket(node, SOCK_SEQPACKET);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_NE(fcntl(c->get(), F_GETFL) & O_NONBLOCK, 0);
  UniqueFd peer(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(peer.valid());
  ASSERT_EQ(write(c->get(), "msg", 3), 3);
  EXPECT_EQ(read(peer.get(), buf, sizeof(buf)), 3);
  // Not a socket: refused; a name swapped for a symlink since the walk: ESTALE.
  EXPECT_EQ(client_->ConnectSocket(WalkOne(root_fid_, {"file"}), SOCK_STREAM).error(),
            ECONNREFUSED);
  listener.Reset();
  fs::remove(root_ / "host.sock");
  fs::create_symlink("s.sock", root_ / "host.sock");
  EXPECT_EQ(client_->ConnectSocket(node, SOCK_SEQPACKET).error(), ESTALE);
}

// Datagram sockets too: a name bound through the gofer hears a host process's sendto, and a
// socket connected through it reaches a host process's datagram socket.
TEST_F(GoferTest, DatagramSocketsInTheTreeReachTheHostBothWays) {
  Start(/*read_only=*/false);
  auto bound = client_->BindSocket(root_fid_, "d.sock", SOCK_DGRAM, 0700, getuid(), getgid());
  ASSERT_TRUE(bound.ok()) << bound.error();
  EXPECT_EQ(bound->first.attr.mode, S_IFSOCK | 0700u);
  EXPECT_NE(fcntl(bound->second.get(), F_GETFL) & O_NONBLOCK, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", (root_ / "d.sock").c_str());
  UniqueFd host(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(sendto(host.get(), "ping", 4, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 4);
  char buf[8] = {};
  EXPECT_EQ(recv(bound->second.get(), buf, sizeof(buf), 0), 4);
  EXPECT_STREQ(buf, "ping");

  UniqueFd receiver(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un b{};
  b.sun_family = AF_UNIX;
  snprintf(b.sun_path, sizeof(b.sun_path), "%s", (root_ / "h.sock").c_str());
  ASSERT_EQ(bind(receiver.get(), reinterpret_cast<sockaddr*>(&b), sizeof(b)), 0);
  Fid node = WalkOne(root_fid_, {"h.sock"});
  EXPECT_EQ(client_->ConnectSocket(node, SOCK_STREAM).error(), EPROTOTYPE);
  Result<UniqueFd> c = client_->ConnectSocket(node, SOCK_DGRAM);
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_EQ(send(c->get(), "pong", 4, 0), 4);
  memset(buf, 0, sizeof(buf));
  EXPECT_EQ(recv(receiver.get(), buf, sizeof(buf), 0), 4);
  EXPECT_STREQ(buf, "pong");
  // The receiver gone, its name left behind: refused, as connect(2) says.
  receiver.Reset();
  EXPECT_EQ(client_->ConnectSocket(node, SOCK_DGRAM).error(), ECONNREFUSED);
}

TEST_F(GoferTest, ReadOnlyTreeRefusesSocketsToo) {
  Start(/*read_only=*/true);
  EXPECT_EQ(client_->BindSocket(root_fid_, "s", SOCK_STREAM, 0700, 0, 0).error(), EROFS);
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", (root_ / "ro.sock").c_str());
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(listener.get(), 4), 0);
  EXPECT_EQ(client_->ConnectSocket(WalkOne(root_fid_, {"ro.sock"}), SOCK_STREAM).error(), EROFS);
}

TEST_F(GoferTest, CreateMakesAFileWithTheModeAskedFor) {
  Start(/*read_only=*/false);
  Result<WalkStep> made = client_->Create(root_fid_, "new", 0640, getuid(), getgid());
  ASSERT_TRUE(made.ok()) << made.error();
  EXPECT_EQ(made->attr.mode, S_IFREG | 0640u);  // no umask applied by the gofer
  EXPECT_EQ(made->attr.size, 0);
  EXPECT_EQ(client_->Create(root_fid_, "new", 0640, getuid(), getgid()).error(), EEXIST);
  Result<UniqueFd> fd = client_->Open(made->fid, O_RDWR);
  ASSERT_TRUE(fd.ok()) << fd.error();
  ASSERT_EQ(write(fd->get(), "data", 4), 4);
  EXPECT_EQ(HostContent(root_ / "new"), "data");
  struct stat st;
  ASSERT_EQ(stat((root_ / "new").c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, made->attr.ino);
}

TEST_F(GoferTest, MkdirSymlinkAndMknodMakeTheirTypes) {
  Start(/*read_only=*/false);
  Result<WalkStep> d = client_->Mkdir(root_fid_, "d", 0750, getuid(), getgid());
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->attr.mode, S_IFDIR | 0750u);
  // The new directory's fid works as a directory at once.
  Result<WalkStep> inner = client_->Create(d->fid, "inner", 0600, getuid(), getgid());
  ASSERT_TRUE(inner.ok()) << inner.error();
  EXPECT_TRUE(fs::is_regular_file(root_ / "d/inner"));

  // The target is stored as given and never followed by the gofer.
  Result<WalkStep> l = client_->Symlink(root_fid_, "sl", "/etc/shadow", getuid(), getgid());
  ASSERT_TRUE(l.ok()) << l.error();
  EXPECT_TRUE(S_ISLNK(l->attr.mode));
  EXPECT_EQ(fs::read_symlink(root_ / "sl"), "/etc/shadow");
  EXPECT_EQ(client_->Readlink(l->fid).value(), "/etc/shadow");
  EXPECT_EQ(client_->Symlink(root_fid_, "empty", "", 0, 0).error(), ENOENT);

  Result<WalkStep> p = client_->Mknod(root_fid_, "p", S_IFIFO | 0600, getuid(), getgid());
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_TRUE(S_ISFIFO(p->attr.mode));
  // Devices are never made on the host.
  for (uint32_t type : {S_IFCHR, S_IFBLK, S_IFREG, S_IFDIR}) {
    EXPECT_EQ(client_->Mknod(root_fid_, "dev", type | 0600, 0, 0).error(), EPERM) << type;
  }
  EXPECT_FALSE(fs::exists(root_ / "dev"));
}

TEST_F(GoferTest, ChangesStayInsideTheTree) {
  Start(/*read_only=*/false);
  // Bad names are refused before anything is made.
  for (const char* bad : {"..", ".", "a/b", ""}) {
    EXPECT_EQ(client_->Create(root_fid_, bad, 0644, 0, 0).error(), EINVAL) << bad;
    EXPECT_EQ(client_->Unlink(root_fid_, bad, false).error(), EINVAL) << bad;
  }
  // A symlink to a directory outside is not a directory to create in.
  Fid evildir = WalkOne(root_fid_, {"evildir"});
  EXPECT_EQ(client_->Create(evildir, "x", 0644, 0, 0).error(), ENOTDIR);
  // Creating over an existing symlink does not follow it.
  EXPECT_EQ(client_->Create(root_fid_, "evil", 0644, 0, 0).error(), EEXIST);
  EXPECT_EQ(client_->Mkdir(root_fid_, "evildir", 0755, 0, 0).error(), EEXIST);
  // Unlinking a symlink removes the link, not what it points to.
  ASSERT_TRUE(client_->Unlink(root_fid_, "evil", false).ok());
  EXPECT_TRUE(fs::exists("/etc/passwd"));
  EXPECT_FALSE(fs::is_symlink(root_ / "evil"));
}

TEST_F(GoferTest, LinkAndUnlink) {
  Start(/*read_only=*/false);
  Fid f = WalkOne(root_fid_, {"file"});
  Fid c = WalkOne(root_fid_, {"a", "b", "c"});
  Result<Attr> a = client_->Link(c, "hard", f);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(a->nlink, 2u);
  EXPECT_EQ(HostContent(root_ / "a/b/c/hard"), "top file");
  EXPECT_EQ(client_->Link(root_fid_, "dirlink", c).error(), EPERM);
  EXPECT_EQ(client_->Link(root_fid_, "file", f).error(), EEXIST);

  ASSERT_TRUE(client_->Unlink(root_fid_, "file", false).ok());
  EXPECT_FALSE(fs::exists(root_ / "file"));
  EXPECT_EQ(client_->Stat(f).value().nlink, 1u);
  EXPECT_EQ(client_->Unlink(root_fid_, "file", false).error(), ENOENT);
  EXPECT_EQ(client_->Unlink(root_fid_, "a", false).error(), EISDIR);
  EXPECT_EQ(client_->Unlink(root_fid_, "a", true).error(), ENOTEMPTY);
  ASSERT_TRUE(client_->Mkdir(root_fid_, "e", 0755, getuid(), getgid()).ok());
  EXPECT_TRUE(client_->Unlink(root_fid_, "e", true).ok());
  EXPECT_FALSE(fs::exists(root_ / "e"));
}

TEST_F(GoferTest, RenameMovesAndFidsFollow) {
  Start(/*read_only=*/false);
  Fid f = WalkOne(root_fid_, {"file"});
  Fid c = WalkOne(root_fid_, {"a", "b", "c"});
  ASSERT_TRUE(client_->Rename(root_fid_, "file", c, "moved", 0).ok());
  EXPECT_EQ(HostContent(root_ / "a/b/c/moved"), "top file");
  // The fid names the file under its new name: it still opens.
  Result<UniqueFd> fd = client_->Open(f, O_RDONLY);
  ASSERT_TRUE(fd.ok()) << fd.error();
  EXPECT_EQ(ReadAll(fd->get()), "top file");

  EXPECT_EQ(client_->Rename(c, "moved", c, "file.txt", RENAME_NOREPLACE).error(), EEXIST);
  Fid g = WalkOne(c, {"file.txt"});
  ASSERT_TRUE(client_->Rename(c, "moved", c, "file.txt", RENAME_EXCHANGE).ok());
  EXPECT_EQ(HostContent(root_ / "a/b/c/file.txt"), "top file");
  EXPECT_EQ(HostContent(root_ / "a/b/c/moved"), "hello from c");
  // Both fids followed the exchange.
  EXPECT_EQ(ReadAll(client_->Open(f, O_RDONLY).value().get()), "top file");
  EXPECT_EQ(ReadAll(client_->Open(g, O_RDONLY).value().get()), "hello from c");
  EXPECT_EQ(client_->Rename(c, "moved", c, "x", RENAME_WHITEOUT).error(), EINVAL);
  EXPECT_EQ(client_->Rename(c, "missing", c, "x", 0).error(), ENOENT);
}

TEST_F(GoferTest, SetattrChangesModeSizeAndTimes) {
  Start(/*read_only=*/false);
  Fid f = WalkOne(root_fid_, {"file"});
  SetattrArgs args;
  args.mode = 0604;
  args.size = 3;
  args.mtime = timespec{1000000, 123456789};
  args.atime = timespec{0, UTIME_OMIT};
  Result<Attr> a = client_->Setattr(f, args);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(a->mode, S_IFREG | 0604u);
  EXPECT_EQ(a->size, 3);
  EXPECT_EQ(a->mtime.tv_sec, 1000000);
  EXPECT_EQ(a->mtime.tv_nsec, 123456789);
  EXPECT_EQ(HostContent(root_ / "file"), "top");
  struct stat st;
  ASSERT_EQ(stat((root_ / "file").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode, S_IFREG | 0604u);

  Fid d = WalkOne(root_fid_, {"a"});
  SetattrArgs dir_mode;
  dir_mode.mode = 0700;
  ASSERT_TRUE(client_->Setattr(d, dir_mode).ok());
  ASSERT_EQ(stat((root_ / "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode, S_IFDIR | 0700u);
  SetattrArgs dir_size;
  dir_size.size = 0;
  EXPECT_EQ(client_->Setattr(d, dir_size).error(), EISDIR);
  SetattrArgs bad_time;
  bad_time.mtime = timespec{0, 2000000000};
  EXPECT_EQ(client_->Setattr(f, bad_time).error(), EINVAL);

  // A file replaced behind the fid is not the one changed.
  WriteFile(root_ / "other", "other");
  fs::rename(root_ / "other", root_ / "file");
  EXPECT_EQ(client_->Setattr(f, dir_mode).error(), ESTALE);
  ASSERT_EQ(stat((root_ / "file").c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 07777, 0700u);
}

TEST_F(GoferTest, Readlink) {
  Start();
  Fid evil = WalkOne(root_fid_, {"evil"});
  Result<std::string> t = client_->Readlink(evil);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "/etc/passwd");
  Result<std::string> not_link = client_->Readlink(root_fid_);
  ASSERT_FALSE(not_link.ok());
  EXPECT_EQ(not_link.error(), EINVAL);
}

TEST_F(GoferTest, SymlinksNeverLeadOutside) {
  Start();
  // Each escape route ends at the symlink itself.
  for (const std::vector<std::string>& path :
       {std::vector<std::string>{"evil"}, {"evildir", "passwd"}, {"a", "up", "etc", "passwd"}}) {
    Result<std::vector<WalkStep>> r = client_->Walk(root_fid_, path);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(S_ISLNK(r->back().attr.mode));
    if (path.size() > 1) {
      EXPECT_LT(r->size(), path.size());
    }
    Result<UniqueFd> fd = client_->Open(r->back().fid, O_RDONLY);
    EXPECT_FALSE(fd.ok());
    Result<std::vector<DirEntry>> list = client_->ReadDir(r->back().fid);
    ASSERT_FALSE(list.ok());
    EXPECT_EQ(list.error(), ENOTDIR);
    Result<std::vector<WalkStep>> beyond = client_->Walk(r->back().fid, {"passwd"});
    ASSERT_FALSE(beyond.ok());
    EXPECT_EQ(beyond.error(), ENOTDIR);
  }
}

TEST_F(GoferTest, ReadDirSmall) {
  Start();
  Result<std::vector<DirEntry>> list = client_->ReadDir(root_fid_);
  ASSERT_TRUE(list.ok()) << list.error();
  std::set<std::string> names;
  for (const DirEntry& e : *list) {
    names.insert(e.name);
    struct stat st;
    ASSERT_EQ(lstat((root_ / e.name).c_str(), &st), 0);
    EXPECT_EQ(e.ino, st.st_ino) << e.name;
    if (e.name == "a") {
      EXPECT_EQ(e.type, DT_DIR);
    }
    if (e.name == "evil") {
      EXPECT_EQ(e.type, DT_LNK);
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"a", "file", "link", "evil", "evildir", "fifo"}));
}

TEST_F(GoferTest, ReadDirManyEntriesInSeveralBatches) {
  fs::create_directory(root_ / "big");
  std::set<std::string> want;
  for (int i = 0; i < 2000; ++i) {
    // Long names so that the listing (~400 KiB of names) takes many batches.
    std::string name = std::to_string(i) + "_" + std::string(200, 'n');
    WriteFile(root_ / "big" / name, "");
    want.insert(name);
  }
  Start();
  Fid big = WalkOne(root_fid_, {"big"});
  Result<std::vector<DirEntry>> list = client_->ReadDir(big);
  ASSERT_TRUE(list.ok()) << list.error();
  EXPECT_EQ(list->size(), 2000u) << "no duplicates, none missing";
  std::set<std::string> got;
  for (const DirEntry& e : *list) got.insert(e.name);
  EXPECT_EQ(got, want);
  // Listing again starts afresh.
  Result<std::vector<DirEntry>> again = client_->ReadDir(big);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 2000u);
}

TEST_F(GoferTest, Statfs) {
  Start();
  Result<struct statfs> s = client_->Statfs(root_fid_);
  ASSERT_TRUE(s.ok());
  struct statfs want;
  ASSERT_EQ(statfs(root_.c_str(), &want), 0);
  EXPECT_EQ(s->f_type, want.f_type);
  EXPECT_EQ(s->f_bsize, want.f_bsize);
  EXPECT_EQ(s->f_namelen, want.f_namelen);
}

TEST_F(GoferTest, UnknownFidIsEbadf) {
  Start();
  constexpr Fid kBogus = 0xdeadbeef;
  EXPECT_EQ(client_->Stat(kBogus).error(), EBADF);
  EXPECT_EQ(client_->Open(kBogus, O_RDONLY).error(), EBADF);
  EXPECT_EQ(client_->Readlink(kBogus).error(), EBADF);
  EXPECT_EQ(client_->ReadDir(kBogus).error(), EBADF);
  EXPECT_EQ(client_->Statfs(kBogus).error(), EBADF);
  EXPECT_EQ(client_->Walk(kBogus, {"a"}).error(), EBADF);
  EXPECT_EQ(client_->Stat(0).error(), EBADF);
}

TEST_F(GoferTest, ClosedFidsAreGone) {
  Start();
  Fid f = WalkOne(root_fid_, {"a"});
  client_->Close(f);
  // The close rides with this request and is served before it.
  EXPECT_EQ(client_->Stat(f).error(), EBADF);
  // A batch of 64 goes out on its own.
  std::vector<Fid> many;
  many.reserve(64);
  for (int i = 0; i < 64; ++i) many.push_back(WalkOne(root_fid_, {"file"}));
  for (Fid g : many) client_->Close(g);
  for (Fid g : many) EXPECT_EQ(client_->Stat(g).error(), EBADF);
  EXPECT_TRUE(client_->Stat(root_fid_).ok());
}

TEST_F(GoferTest, LongWalksAreSplit) {
  // 300 nested directories: more names than one request carries.
  fs::path p = root_;
  std::vector<std::string> names;
  for (int i = 0; i < 300; ++i) {
    names.push_back("d");
    p /= "d";
  }
  fs::create_directories(p);
  Start();
  Result<std::vector<WalkStep>> r = client_->Walk(root_fid_, names);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->size(), 300u);
  names.push_back("missing");
  Result<WalkResult> full = client_->WalkFull(root_fid_, names);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->steps.size(), 300u);
  EXPECT_EQ(full->stop_errno, ENOENT);
}

TEST_F(GoferTest, ConcurrentCallers) {
  Start();
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        Result<std::vector<WalkStep>> r = client_->Walk(root_fid_, {"a", "b"});
        if (!r.ok() || r->size() != 2) {
          ++failures;
          continue;
        }
        if (!client_->Stat(r->back().fid).ok()) ++failures;
        for (const WalkStep& s : *r) client_->Close(s.fid);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// --- The server against a hostile client: raw frames. ----------------------

pb::Response RawCall(int sock, const pb::Request& req, UniqueFd* fd_out = nullptr) {
  std::string payload;
  req.SerializeToString(&payload);
  EXPECT_TRUE(wire::Send(sock, wire::Kind::kRequest, payload).ok());
  absl::StatusOr<std::optional<wire::Frame>> f = wire::Recv(sock, wire::Kind::kResponse);
  EXPECT_TRUE(f.ok() && f->has_value());
  pb::Response resp;
  if (!f.ok() || !f->has_value()) return resp;
  EXPECT_TRUE(resp.ParseFromString((*f)->payload));
  if (fd_out != nullptr) *fd_out = std::move((*f)->fd);
  return resp;
}

class RawGoferTest : public GoferTest {
 protected:
  void StartRaw() {
    server_.emplace(root_, true);
    sock_ = server_->TakeClientEnd();
    pb::Request req;
    req.mutable_attach();
    pb::Response resp = RawCall(sock_.get(), req);
    ASSERT_EQ(resp.err(), 0);
    root_fid_ = resp.attach().root().fid();
  }
  void TearDown() override {
    sock_.Reset();
    GoferTest::TearDown();
  }
  pb::Response Walk(Fid dir, const std::vector<std::string>& names) {
    pb::Request req;
    req.mutable_walk()->set_dir(dir);
    for (const std::string& n : names) req.mutable_walk()->add_names(n);
    return RawCall(sock_.get(), req);
  }
  UniqueFd sock_;
};

TEST_F(RawGoferTest, ServerValidatesNames) {
  StartRaw();
  for (const std::string& bad : {std::string(".."), std::string("."), std::string("a/b"),
                                 std::string(""), std::string("a\0b", 3), std::string("/")}) {
    pb::Response r = Walk(root_fid_, {"a", bad});
    EXPECT_EQ(r.err(), EINVAL) << bad;
    EXPECT_EQ(r.walk().steps_size(), 0) << "nothing is resolved";
  }
  EXPECT_EQ(Walk(root_fid_, {std::string(256, 'x')}).err(), ENAMETOOLONG);
  EXPECT_EQ(Walk(root_fid_, {}).err(), EINVAL);
  EXPECT_EQ(Walk(root_fid_, std::vector<std::string>(kMaxWalkNames + 1, "a")).err(), EINVAL);
  // Non-UTF-8 names are fine: names are bytes.
  EXPECT_EQ(Walk(root_fid_, {"\xff\xfe"}).err(), ENOENT);
}

TEST_F(RawGoferTest, HostileRequestsGetErrors) {
  StartRaw();
  pb::Request req;
  // No op at all.
  EXPECT_EQ(RawCall(sock_.get(), req).err(), EINVAL);
  // Unparseable payload in a well-formed frame.
  ASSERT_TRUE(wire::Send(sock_.get(), wire::Kind::kRequest, "\xff\xff\xff\xff garbage").ok());
  absl::StatusOr<std::optional<wire::Frame>> f = wire::Recv(sock_.get(), wire::Kind::kResponse);
  ASSERT_TRUE(f.ok() && f->has_value());
  pb::Response resp;
  ASSERT_TRUE(resp.ParseFromString((*f)->payload));
  EXPECT_EQ(resp.err(), EINVAL);
  // A request carrying a descriptor.
  req.mutable_stat()->set_fid(root_fid_);
  std::string payload;
  req.SerializeToString(&payload);
  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(wire::Send(sock_.get(), wire::Kind::kRequest, payload, devnull.get()).ok());
  f = wire::Recv(sock_.get(), wire::Kind::kResponse);
  ASSERT_TRUE(f.ok() && f->has_value());
  ASSERT_TRUE(resp.ParseFromString((*f)->payload));
  EXPECT_EQ(resp.err(), EINVAL);
  // Getdents on a file, at a wild cookie; open with O_PATH.
  pb::Response w = Walk(root_fid_, {"file"});
  ASSERT_EQ(w.err(), 0);
  Fid file = w.walk().steps(0).fid();
  req.Clear();
  req.mutable_getdents()->set_dir(file);
  EXPECT_EQ(RawCall(sock_.get(), req).err(), ENOTDIR);
  req.mutable_getdents()->set_dir(root_fid_);
  req.mutable_getdents()->set_cookie(~uint64_t{0} - 5);
  pb::Response g = RawCall(sock_.get(), req);  // any answer, as long as there is one
  EXPECT_TRUE(g.err() != 0 || g.getdents().eof());
  req.Clear();
  req.mutable_open()->set_fid(file);
  req.mutable_open()->set_flags(O_PATH);
  EXPECT_EQ(RawCall(sock_.get(), req).err(), EINVAL);
  // Still serving.
  req.Clear();
  req.mutable_stat()->set_fid(root_fid_);
  EXPECT_EQ(RawCall(sock_.get(), req).err(), 0);
}

TEST_F(RawGoferTest, GarbageFrameEndsTheConnection) {
  StartRaw();
  expect_server_error_ = true;
  const char junk[] = "this is not a gofer frame at all";
  ASSERT_EQ(send(sock_.get(), junk, sizeof(junk), 0), static_cast<ssize_t>(sizeof(junk)));
  // The server hangs up instead of answering.
  absl::StatusOr<std::optional<wire::Frame>> f = wire::Recv(sock_.get(), wire::Kind::kResponse);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
  sock_.Reset();
  absl::Status s = server_->Join();
  server_.reset();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
}

TEST_F(RawGoferTest, LyingLengthEndsTheConnection) {
  StartRaw();
  expect_server_error_ = true;
  wire::FrameHeader h{wire::kMagic, wire::kVersion, static_cast<uint16_t>(wire::Kind::kRequest),
                      1000};
  ASSERT_EQ(send(sock_.get(), &h, sizeof(h), 0), static_cast<ssize_t>(sizeof(h)));
  absl::StatusOr<std::optional<wire::Frame>> f = wire::Recv(sock_.get(), wire::Kind::kResponse);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
  sock_.Reset();
  absl::Status s = server_->Join();
  server_.reset();
  EXPECT_FALSE(s.ok());
}

// --- The client against a hostile server. ----------------------------------

// Answers each request with `reply` (and `fd`, if any), then hangs up.
class FakeServer {
 public:
  FakeServer(const pb::Response& reply, int fd) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    client_end_.Reset(sv[0]);
    thread_ = std::thread([s = UniqueFd(sv[1]), reply, fd]() mutable {
      for (;;) {
        absl::StatusOr<std::optional<wire::Frame>> f = wire::Recv(s.get(), wire::Kind::kRequest);
        if (!f.ok() || !f->has_value()) return;
        std::string out;
        reply.SerializeToString(&out);
        if (!wire::Send(s.get(), wire::Kind::kResponse, out, fd).ok()) return;
      }
    });
  }
  ~FakeServer() { thread_.join(); }
  UniqueFd TakeClientEnd() { return std::move(client_end_); }

 private:
  UniqueFd client_end_;
  std::thread thread_;
};

TEST(GoferClientTest, WrongResultKindIsEio) {
  pb::Response reply;
  reply.mutable_readlink()->set_target("x");
  FakeServer server(reply, -1);
  {
    Client c(server.TakeClientEnd());
    EXPECT_EQ(c.Stat(1).error(), EIO);
    EXPECT_EQ(c.Stat(1).error(), EIO) << "the connection stays dead";
  }
}

TEST(GoferClientTest, UnexpectedFdIsEio) {
  pb::Response reply;
  reply.mutable_stat()->mutable_attr()->set_mode(S_IFREG | 0644);
  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  FakeServer server(reply, devnull.get());
  {
    Client c(server.TakeClientEnd());
    EXPECT_EQ(c.Stat(1).error(), EIO);
  }
}

TEST(GoferClientTest, DonatedDirectoryIsEio) {
  pb::Response reply;
  reply.mutable_open();
  UniqueFd dir(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  FakeServer server(reply, dir.get());
  {
    Client c(server.TakeClientEnd());
    EXPECT_EQ(c.Open(1, O_RDONLY).error(), EIO);
  }
}

TEST(GoferClientTest, BogusWalkAndDirentsAreEio) {
  {
    pb::Response reply;  // more steps than names
    for (int i = 0; i < 3; ++i) {
      pb::FidAttr* s = reply.mutable_walk()->add_steps();
      s->set_fid(i + 1);
      s->mutable_attr()->set_mode(S_IFDIR | 0755);
    }
    FakeServer server(reply, -1);
    Client c(server.TakeClientEnd());
    EXPECT_EQ(c.Walk(1, {"a", "b"}).error(), EIO);
  }
  {
    pb::Response reply;  // a name with a slash
    pb::Dirent* d = reply.mutable_getdents()->add_entries();
    d->set_name("../etc");
    reply.mutable_getdents()->set_eof(true);
    FakeServer server(reply, -1);
    Client c(server.TakeClientEnd());
    EXPECT_EQ(c.ReadDir(1).error(), EIO);
  }
  {
    pb::Response reply;  // never done, no progress
    reply.mutable_getdents()->set_eof(false);
    FakeServer server(reply, -1);
    Client c(server.TakeClientEnd());
    EXPECT_EQ(c.ReadDir(1).error(), EIO);
  }
  {
    pb::Response reply;
    reply.set_err(100000);  // not an errno
    FakeServer server(reply, -1);
    Client c(server.TakeClientEnd());
    EXPECT_EQ(c.Stat(1).error(), EIO);
  }
}

}  // namespace
}  // namespace husk::gofer
