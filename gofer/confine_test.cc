// ConfineGofer for real: a forked child confines itself and serves, the
// test talks to it with the Client. Needs root (a mount namespace, chroot);
// skips itself otherwise. Proves the seccomp allowlist covers what Serve()
// does and that the mount really is read-only.
#include "gofer/confine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gofer/client.h"
#include "gofer/server.h"
#include "gtest/gtest.h"

namespace husk::gofer {
namespace {

namespace fs = std::filesystem;

bool CanConfine() {
  if (geteuid() != 0) return false;
  pid_t pid = fork();
  if (pid == 0) _exit(unshare(CLONE_NEWNS) == 0 ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A forked child running `body` after ConfineGofer(root, read_only).
class ConfinedChild {
 public:
  ConfinedChild(const std::string& root, bool read_only,
                const std::function<int(UniqueFd sock, UniqueFd root_dir)>& body) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(sv[0]);
      UniqueFd root_dir;
      absl::Status s = ConfineGofer(root, read_only, &root_dir);
      if (!s.ok()) {
        std::string msg = s.ToString() + "\n";
        (void)!write(2, msg.data(), msg.size());
        _exit(100);
      }
      _exit(body(UniqueFd(sv[1]), std::move(root_dir)));
    }
    close(sv[1]);
    sock_.Reset(sv[0]);
  }
  UniqueFd TakeSock() { return std::move(sock_); }
  pid_t pid() const { return pid_; }
  // The child's wait status.
  int Wait() {
    sock_.Reset();
    int status = 0;
    EXPECT_EQ(waitpid(pid_, &status, 0), pid_);
    return status;
  }

 private:
  pid_t pid_ = -1;
  UniqueFd sock_;
};

std::string Describe(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "?";
}

int ServeBody(bool read_only, UniqueFd sock, UniqueFd root_dir) {
  absl::Status s = Serve(std::move(sock), std::move(root_dir), read_only);
  if (!s.ok()) {
    std::string msg = s.ToString() + "\n";
    (void)!write(2, msg.data(), msg.size());
  }
  return s.ok() ? 0 : 3;
}

class ConfineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CanConfine()) GTEST_SKIP() << "needs root and mount namespaces";
    char tmpl[] = "/tmp/gofer_confine_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "dir");
    std::ofstream(root_ / "dir/file") << "confined content";
    fs::create_symlink("/etc/passwd", root_ / "evil");
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }
  fs::path root_;
};

TEST_F(ConfineTest, EveryOpWorksUnderTheFilter) {
  ConfinedChild child(root_, true, [](UniqueFd s, UniqueFd r) {
    return ServeBody(true, std::move(s), std::move(r));
  });
  {
    Client c(child.TakeSock());
    Result<WalkStep> root = c.Attach();
    ASSERT_TRUE(root.ok()) << root.error();
    Result<std::vector<WalkStep>> w = c.Walk(root->fid, {"dir", "file"});
    ASSERT_TRUE(w.ok()) << w.error();
    Result<UniqueFd> fd = c.Open(w->back().fid, O_RDONLY);
    ASSERT_TRUE(fd.ok()) << fd.error();
    char buf[64] = {};
    ASSERT_GT(read(fd->get(), buf, sizeof(buf)), 0);
    EXPECT_STREQ(buf, "confined content");
    EXPECT_EQ(c.Open(w->back().fid, O_RDWR).error(), EROFS);
    EXPECT_TRUE(c.Stat(w->front().fid).ok());
    Result<std::vector<DirEntry>> list = c.ReadDir(root->fid);
    ASSERT_TRUE(list.ok()) << list.error();
    EXPECT_EQ(list->size(), 2u);
    Result<std::vector<WalkStep>> evil = c.Walk(root->fid, {"evil"});
    ASSERT_TRUE(evil.ok());
    Result<std::string> target = c.Readlink(evil->back().fid);
    ASSERT_TRUE(target.ok());
    EXPECT_EQ(*target, "/etc/passwd");
    EXPECT_EQ(c.Open(evil->back().fid, O_RDONLY).error(), ELOOP);
    EXPECT_TRUE(c.Statfs(root->fid).ok());
    EXPECT_EQ(c.Walk(root->fid, {"missing"}).error(), ENOENT);
    EXPECT_EQ(c.Stat(12345).error(), EBADF);
    c.Close(w->front().fid);
    c.FlushCloses();
    EXPECT_EQ(c.Stat(w->front().fid).error(), EBADF);
  }
  int status = child.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
}

TEST_F(ConfineTest, TheMountItselfIsReadOnly) {
  // The server would allow writes; the read-only bind mount refuses them.
  ConfinedChild child(root_, true, [](UniqueFd s, UniqueFd r) {
    return ServeBody(false, std::move(s), std::move(r));
  });
  {
    Client c(child.TakeSock());
    Result<WalkStep> root = c.Attach();
    ASSERT_TRUE(root.ok());
    Result<std::vector<WalkStep>> w = c.Walk(root->fid, {"dir", "file"});
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(c.Open(w->back().fid, O_RDWR).error(), EROFS);
    EXPECT_TRUE(c.Open(w->back().fid, O_RDONLY).ok());
  }
  int status = child.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
}

TEST_F(ConfineTest, WritableTree) {
  ConfinedChild child(root_, false, [](UniqueFd s, UniqueFd r) {
    return ServeBody(false, std::move(s), std::move(r));
  });
  {
    Client c(child.TakeSock());
    Result<WalkStep> root = c.Attach();
    ASSERT_TRUE(root.ok());
    Result<std::vector<WalkStep>> w = c.Walk(root->fid, {"dir", "file"});
    ASSERT_TRUE(w.ok());
    Result<UniqueFd> fd = c.Open(w->back().fid, O_WRONLY | O_TRUNC);
    ASSERT_TRUE(fd.ok()) << fd.error();
    ASSERT_EQ(write(fd->get(), "rewritten", 9), 9);
    // Every mutating op under the filter (a missing rule kills the gofer,
    // and then every call below is EIO).
    Fid dir = w->front().fid;
    Result<WalkStep> made = c.Create(dir, "new", 0600, 0, 0);
    ASSERT_TRUE(made.ok()) << made.error();
    Result<WalkStep> sub = c.Mkdir(dir, "sub", 0700, 0, 0);
    ASSERT_TRUE(sub.ok()) << sub.error();
    EXPECT_TRUE(c.Symlink(dir, "sl", "file", 0, 0).ok());
    EXPECT_TRUE(c.Mknod(dir, "fifo", S_IFIFO | 0600, 0, 0).ok());
    EXPECT_TRUE(c.Link(sub->fid, "hard", w->back().fid).ok());
    EXPECT_TRUE(c.Rename(dir, "new", sub->fid, "renamed", 0).ok());
    Status un = c.Unlink(dir, "sl", false);
    EXPECT_TRUE(un.ok()) << un.error();
    SetattrArgs args;
    args.mode = 0640;
    args.uid = 0;
    args.size = 2;
    args.mtime = timespec{0, UTIME_NOW};
    Result<Attr> a = c.Setattr(w->back().fid, args);
    ASSERT_TRUE(a.ok()) << a.error();
    EXPECT_EQ(a->mode, S_IFREG | 0640u);
    // Host change notification: the instance, a directory's watch and a
    // file's (through its parent).
    Result<UniqueFd> in = c.WatchInit();
    ASSERT_TRUE(in.ok()) << in.error();
    Result<int> wd = c.Watch(dir);
    ASSERT_TRUE(wd.ok()) << wd.error();
    Result<int> fwd = c.Watch(w->back().fid);
    ASSERT_TRUE(fwd.ok()) << fwd.error();
    EXPECT_NE(*wd, *fwd);
    EXPECT_TRUE(c.Stat(dir).ok());  // the gofer lives on
  }
  int status = child.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
  std::ifstream in(root_ / "dir/file");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "re");
  EXPECT_TRUE(fs::is_regular_file(root_ / "dir/sub/renamed"));
  EXPECT_TRUE(fs::is_regular_file(root_ / "dir/sub/hard"));
  EXPECT_TRUE(fs::is_fifo(root_ / "dir/fifo"));
  EXPECT_FALSE(fs::exists(root_ / "dir/sl"));
}

TEST_F(ConfineTest, HostRootReadOnlyWithoutPseudoFilesystems) {
  ConfinedChild child("/", true, [](UniqueFd s, UniqueFd r) {
    return ServeBody(false, std::move(s), std::move(r));
  });
  {
    Client c(child.TakeSock());
    Result<WalkStep> root = c.Attach();
    ASSERT_TRUE(root.ok());
    Result<std::vector<WalkStep>> w = c.Walk(root->fid, {"etc", "passwd"});
    ASSERT_TRUE(w.ok()) << w.error();
    ASSERT_EQ(w->size(), 2u);
    EXPECT_TRUE(c.Open(w->back().fid, O_RDONLY).ok());
    EXPECT_EQ(c.Open(w->back().fid, O_RDWR).error(), EROFS) << "the bind copy of / is read-only";
    // Mounts are crossed (the temp tree may be on a tmpfs), but only into
    // filesystems that hold ordinary files: the host's procfs, sysfs and
    // devtmpfs (with the devpts and mqueue below it) are detached, leaving
    // the empty directory below them, or refused where they are locked in.
    for (const char* name : {"proc", "sys", "dev"}) {
      Result<std::vector<WalkStep>> pseudo = c.Walk(root->fid, {name});
      if (!pseudo.ok()) {
        EXPECT_EQ(pseudo.error(), EACCES) << name;
        continue;
      }
      ASSERT_EQ(pseudo->size(), 1u) << name;
      EXPECT_EQ(pseudo->back().attr.dev, root->attr.dev)
          << name << " is not the root filesystem's own directory";
    }
  }
  int status = child.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
  // The host's / is still writable: nothing propagated back.
  fs::path probe = root_ / "probe";
  std::ofstream(probe) << "x";
  EXPECT_TRUE(fs::exists(probe));
}

// What the kernel says about a serving gofer, read from outside.
TEST_F(ConfineTest, CredentialsAndMountsSeenFromOutside) {
  ConfinedChild child(root_, true, [](UniqueFd s, UniqueFd r) {
    return ServeBody(true, std::move(s), std::move(r));
  });
  {
    Client c(child.TakeSock());
    ASSERT_TRUE(c.Attach().ok());  // confinement is done once it answers
    std::ifstream status("/proc/" + std::to_string(child.pid()) + "/status");
    std::map<std::string, std::string> fields;
    for (std::string line; std::getline(status, line);) {
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      size_t v = line.find_first_not_of(" \t", colon + 1);
      fields[line.substr(0, colon)] = v == std::string::npos ? "" : line.substr(v);
    }
    // CAP_DAC_OVERRIDE (1), CAP_DAC_READ_SEARCH (2), CAP_FOWNER (3).
    EXPECT_EQ(fields["CapEff"], "000000000000000e");
    EXPECT_EQ(fields["CapPrm"], "000000000000000e");
    EXPECT_EQ(fields["CapBnd"], "000000000000000e");
    EXPECT_EQ(fields["CapInh"], "0000000000000000");
    EXPECT_EQ(fields["CapAmb"], "0000000000000000");
    EXPECT_EQ(fields["NoNewPrivs"], "1");
    EXPECT_EQ(fields["Seccomp"], "2");
    // The old root is detached: the namespace holds the tree's copy only.
    std::ifstream mountinfo("/proc/" + std::to_string(child.pid()) + "/mountinfo");
    std::vector<std::string> mounts;
    for (std::string line; std::getline(mountinfo, line);) mounts.push_back(line);
    ASSERT_EQ(mounts.size(), 1u) << mounts[0];
    EXPECT_NE(mounts[0].find(" / ro,nosuid,nodev"), std::string::npos) << mounts[0];
  }
  int status = child.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
}

TEST_F(ConfineTest, RootIsTheTree) {
  ConfinedChild child(root_, true, [](UniqueFd, UniqueFd) {
    // openat2 is allowed, so a lookup of the host's /etc/passwd reaches the
    // VFS: it must not exist in the confined view.
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    long fd = syscall(SYS_openat2, AT_FDCWD, "/etc/passwd", &how, sizeof(how));
    if (fd >= 0 || errno != ENOENT) return 10;
    fd = syscall(SYS_openat2, AT_FDCWD, "/dir/file", &how, sizeof(how));
    if (fd < 0) return 11;
    return 0;
  });
  int status = child.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
}

TEST_F(ConfineTest, OtherSyscallsKill) {
  ConfinedChild child(root_, true, [](UniqueFd, UniqueFd) {
    syscall(SYS_getppid);
    return 0;
  });
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) << Describe(status);
  ConfinedChild child2(root_, true, [](UniqueFd, UniqueFd) {
    // Plain openat: every lookup must go through openat2's RESOLVE_* checks.
    int fd = open("/dir/file", O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? 0 : 1;
  });
  status = child2.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) << Describe(status);
}

}  // namespace
}  // namespace husk::gofer
