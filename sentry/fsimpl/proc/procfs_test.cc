#include <errno.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/fsimpl/proc/inodes.h"
#include "sentry/fsimpl/proc/proc.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"

namespace husk::procfs {
namespace {

class FakeProvider : public ProcProvider {
 public:
  int CurrentPid() override { return current; }
  std::vector<int> Pids() override {
    std::vector<int> out;
    for (auto& [pid, p] : procs) out.push_back(pid);
    return out;
  }
  Result<std::string> Maps(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return p->maps;
  }
  Result<std::string> ExePath(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return p->exe;
  }
  Result<std::string> CwdPath(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return p->cwd;
  }
  Result<std::string> Cmdline(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return p->cmdline;
  }
  Result<std::string> Comm(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return p->comm;
  }
  Result<std::string> StatusText(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return "Name:\t" + p->comm + "\nPid:\t" + std::to_string(pid) + "\n";
  }
  Result<std::string> StatText(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return std::to_string(pid) + " (" + p->comm + ") R 1\n";
  }
  Result<std::map<int, std::string>> Fds(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return p->fds;
  }
  Result<std::pair<uint32_t, uint32_t>> Owner(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return std::pair<uint32_t, uint32_t>{p->uid, p->gid};
  }
  Result<std::string> Statm(int pid) override {
    TRY(Find(pid));
    return std::string("3 2 1 1 0 1 0\n");
  }
  Result<int> OomScoreAdj(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return p->oom_score_adj;
  }
  Status SetOomScoreAdj(int pid, int value, bool legacy) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    p->oom_score_adj = value;
    return Ok();
  }
  Result<long> OomScore(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return 666L + p->oom_score_adj * 2 / 3;
  }
  Result<uint32_t> CoredumpFilter(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return p->coredump_filter;
  }
  Status SetCoredumpFilter(int pid, uint32_t filter) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    p->coredump_filter = filter;
    return Ok();
  }
  Status SetComm(int tid, const std::string& name) override {
    ASSIGN_OR_RETURN(Proc * p, Find(tid));
    if (tid != current) return Errno{EINVAL};
    p->comm = name;
    return Ok();
  }
  Result<FdInfo> FdInfoOf(int pid, int fd) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    if (p->fds.count(fd) == 0) return Errno{ENOENT};
    return FdInfo{100 + fd, O_RDWR | O_CLOEXEC, 22, 7000u + static_cast<unsigned>(fd)};
  }
  // The process's memory: `mem` at address kMemBase.
  static constexpr uint64_t kMemBase = 0x10000;
  class FakeMem : public MemAccess {
   public:
    explicit FakeMem(std::string* mem) : mem_(mem) {}
    Result<size_t> Read(uint64_t addr, char* buf, size_t n) override {
      ASSIGN_OR_RETURN(size_t at, Offset(addr));
      size_t r = std::min(n, mem_->size() - at);
      mem_->copy(buf, r, at);
      return r;
    }
    Result<size_t> Write(uint64_t addr, const char* buf, size_t n) override {
      ASSIGN_OR_RETURN(size_t at, Offset(addr));
      size_t r = std::min(n, mem_->size() - at);
      mem_->replace(at, r, buf, r);
      return r;
    }

   private:
    Result<size_t> Offset(uint64_t addr) {
      if (addr < kMemBase || addr >= kMemBase + mem_->size()) return Errno{EIO};
      return static_cast<size_t>(addr - kMemBase);
    }
    std::string* mem_;
  };
  Result<std::shared_ptr<MemAccess>> OpenMem(int pid) override {
    ASSIGN_OR_RETURN(Proc * p, Find(pid));
    return std::shared_ptr<MemAccess>(std::make_shared<FakeMem>(&p->mem));
  }
  std::string MemInfo() override { return "MemTotal:       1024 kB\n"; }
  std::string CpuInfo() override { return "processor\t: 0\n"; }
  std::string Uptime() override { return uptime; }
  std::string LoadAvg() override { return "0.00 0.00 0.00 1/1 1\n"; }
  std::string Hostname() override { return hostname; }
  Status SetHostname(const std::string& name) override {
    hostname = name;
    return Ok();
  }
  CgroupUsage Cgroup() override { return cgroup; }

  struct Proc {
    std::string maps, exe, cwd, cmdline, comm;
    std::map<int, std::string> fds;
    uint32_t uid = 0, gid = 0;
    int oom_score_adj = 0;
    uint32_t coredump_filter = 0x33;
    std::string mem = "0123456789abcdef";
  };
  Result<Proc*> Find(int pid) {
    auto it = procs.find(pid);
    if (it == procs.end()) return Errno{ESRCH};
    return &it->second;
  }

  int current = 1;
  std::string uptime = "1.00 1.00\n";
  std::string hostname = "husk";
  CgroupUsage cgroup;
  std::map<int, Proc> procs;
};

class ProcfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    provider_->procs[1] = {"00400000-00401000 r-xp 00000000 00:10 5 /bin/init\n",
                           "/bin/init",
                           "/",
                           std::string("init\0--flag\0", 12),
                           "init",
                           {{0, "/dev/null"}, {1, "pipe:[7]"}, {2, "/dev/null"}}};
    provider_->procs[42] = {"", "/usr/bin/sh", "/tmp", std::string("sh\0", 3), "sh\n", {}};
    root_ = NewProcRoot(provider_);
  }

  // A small walker following symlinks (the VFS's Resolve is exercised in
  // ThroughTheVfs only).
  Result<vfs::InodeRef> Walk(const std::string& path, bool follow = true, int depth = 0) {
    if (depth > 8) return Errno{ELOOP};
    vfs::InodeRef cur = root_;
    size_t i = 0;
    while (i < path.size()) {
      size_t j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      std::string name = path.substr(i, j - i);
      i = j + 1;
      if (name.empty()) continue;
      ASSIGN_OR_RETURN(vfs::InodeRef next, cur->Lookup(name));
      if (next->IsSymlink() && (follow || i < path.size())) {
        ASSIGN_OR_RETURN(std::string target, next->Readlink());
        // A relative target starts in the directory holding the link.
        std::string dir = path.substr(0, j - name.size());
        ASSIGN_OR_RETURN(next, Walk(target[0] == '/' ? target : dir + target, true, depth + 1));
      }
      cur = next;
    }
    return cur;
  }

  std::string ReadFile(const std::string& path) {
    auto inode = Walk(path);
    EXPECT_TRUE(inode.ok()) << path;
    if (!inode.ok()) return "";
    auto file = (*inode)->Open(O_RDONLY);
    EXPECT_TRUE(file.ok()) << path;
    if (!file.ok()) return "";
    std::string out;
    char buf[3];  // small reads exercise the offsets
    for (;;) {
      auto r = (*file)->Read(buf, sizeof(buf));
      EXPECT_TRUE(r.ok());
      if (!r.ok() || *r == 0) break;
      out.append(buf, *r);
    }
    return out;
  }

  std::vector<std::string> List(const std::string& path) {
    std::vector<std::string> out;
    auto inode = Walk(path);
    EXPECT_TRUE(inode.ok()) << path;
    if (!inode.ok()) return out;
    auto entries = (*inode)->ReadDir();
    EXPECT_TRUE(entries.ok()) << path;
    if (!entries.ok()) return out;
    for (auto& e : *entries) out.push_back(e.name);
    return out;
  }

  std::shared_ptr<FakeProvider> provider_ = std::make_shared<FakeProvider>();
  vfs::InodeRef root_;
};

TEST_F(ProcfsTest, RootListing) {
  EXPECT_EQ(List("/"), (std::vector<std::string>{"cgroups", "cpuinfo", "filesystems", "loadavg",
                                                 "meminfo", "mounts", "net", "self", "stat", "sys",
                                                 "thread-self", "uptime", "version", "1", "42"}));
  struct stat st = root_->Stat().value();
  EXPECT_EQ(st.st_mode, S_IFDIR | 0555);
  EXPECT_EQ(st.st_nlink, 4u);  // 2 + two process directories
  EXPECT_EQ(st.st_uid, 0u);
}

TEST_F(ProcfsTest, SystemFiles) {
  EXPECT_EQ(ReadFile("/meminfo"), "MemTotal:       1024 kB\n");
  EXPECT_EQ(ReadFile("/cpuinfo"), "processor\t: 0\n");
  EXPECT_EQ(ReadFile("/uptime"), "1.00 1.00\n");
  EXPECT_EQ(ReadFile("/loadavg"), "0.00 0.00 0.00 1/1 1\n");
  EXPECT_NE(ReadFile("/filesystems").find("nodev\tproc\n"), std::string::npos);
  struct stat st = Walk("/meminfo").value()->Stat().value();
  EXPECT_EQ(st.st_mode, S_IFREG | 0444);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_dev, root_->Stat().value().st_dev);
}

TEST_F(ProcfsTest, SelfAndThreadSelf) {
  EXPECT_EQ(Walk("/self", false).value()->Readlink().value(), "1");
  EXPECT_EQ(Walk("/thread-self", false).value()->Readlink().value(), "1/task/1");
  EXPECT_EQ(Walk("/self", false).value()->Stat().value().st_mode, S_IFLNK | 0777);
  EXPECT_EQ(ReadFile("/self/comm"), "init\n");
  EXPECT_EQ(ReadFile("/thread-self/comm"), "init\n");
  provider_->current = 42;
  EXPECT_EQ(ReadFile("/self/cmdline"), std::string("sh\0", 3));
  EXPECT_EQ(Walk("/mounts", false).value()->Readlink().value(), "self/mounts");
  provider_->current = 0;
  EXPECT_ERRNO(Walk("/self", false).value()->Readlink(), ENOENT);
}

// mounts and mountinfo show the VFS's mount table: the root, then each
// mount with its parent's id and its place.
TEST_F(ProcfsTest, MountTable) {
  auto top = std::make_shared<vfs::Dentry>("/", nullptr, tmpfs::NewTmpfsRoot(0755));
  vfs::SetRootMount(top, {"overlay", "none", "rw,relatime"});
  ASSERT_OK(top->inode()->Mkdir("proc", 0555));
  auto point = top->Child("proc");
  ASSERT_OK(point);
  (*point)->Mount(root_, {"proc", "proc", "rw,nosuid"});
  EXPECT_EQ(ReadFile("/1/mounts"),
            "none / overlay rw,relatime 0 0\nproc /proc proc rw,nosuid 0 0\n");
  const std::string info = ReadFile("/1/mountinfo");
  const dev_t dev = root_->Stat().value().st_dev;
  const std::string want_proc = "2 1 " + std::to_string(major(dev)) + ":" +
                                std::to_string(minor(dev)) + " / /proc rw,nosuid - proc proc rw\n";
  EXPECT_EQ(info.substr(0, 2), "1 ");
  EXPECT_NE(info.find(" / / rw,relatime - overlay none rw\n"), std::string::npos) << info;
  EXPECT_NE(info.find(want_proc), std::string::npos) << info;
}

TEST_F(ProcfsTest, PidDirectory) {
  EXPECT_EQ(List("/1"),
            (std::vector<std::string>{
                "auxv",    "cgroup",    "cmdline", "comm",    "coredump_filter", "cwd",
                "environ", "exe",       "fd",      "fdinfo",  "limits",          "maps",
                "mem",     "mountinfo", "mounts",  "oom_adj", "oom_score",       "oom_score_adj",
                "root",    "smaps",     "stat",    "statm",   "status",          "task"}));
  EXPECT_EQ(ReadFile("/1/maps"), "00400000-00401000 r-xp 00000000 00:10 5 /bin/init\n");
  EXPECT_EQ(ReadFile("/1/cmdline"), std::string("init\0--flag\0", 12));
  EXPECT_EQ(ReadFile("/42/comm"), "sh\n");  // no second newline
  EXPECT_EQ(ReadFile("/42/status"), "Name:\tsh\n\nPid:\t42\n");
  EXPECT_EQ(ReadFile("/42/stat"), "42 (sh\n) R 1\n");
  EXPECT_EQ(Walk("/1/exe", false).value()->Readlink().value(), "/bin/init");
  EXPECT_EQ(Walk("/42/cwd", false).value()->Readlink().value(), "/tmp");
  struct stat st = Walk("/1").value()->Stat().value();
  EXPECT_EQ(st.st_mode, S_IFDIR | 0555);
  EXPECT_EQ(st.st_nlink, 4u);
  EXPECT_ERRNO(Walk("/7"), ENOENT);
  EXPECT_ERRNO(Walk("/01"), ENOENT);
  EXPECT_ERRNO(Walk("/1/nothing"), ENOENT);
}

TEST_F(ProcfsTest, InodeNumbersAreStableAndMatchListings) {
  auto check_dir = [&](const std::string& path) {
    vfs::InodeRef dir = Walk(path).value();
    std::vector<vfs::Dirent> entries = dir->ReadDir().value();
    for (auto& e : entries) {
      vfs::InodeRef child = dir->Lookup(e.name).value();
      struct stat st = child->Stat().value();
      EXPECT_EQ(e.ino, st.st_ino) << path << "/" << e.name;
      EXPECT_EQ(e.type, IFTODT(st.st_mode)) << path << "/" << e.name;
    }
  };
  check_dir("/");
  check_dir("/1");
  check_dir("/1/fd");
  check_dir("/1/task");
  check_dir("/1/task/1");
  EXPECT_EQ(Walk("/1").value()->Stat().value().st_ino, root_->Lookup("1").value()->Stat()->st_ino);
  EXPECT_NE(Walk("/1/maps").value()->Stat()->st_ino, Walk("/42/maps").value()->Stat()->st_ino);
  EXPECT_NE(Walk("/1/maps").value()->Stat()->st_ino,
            Walk("/1/task/1/maps").value()->Stat()->st_ino);
}

TEST_F(ProcfsTest, FdDirectory) {
  EXPECT_EQ(List("/1/fd"), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_TRUE(List("/42/fd").empty());
  EXPECT_EQ(Walk("/1/fd").value()->Stat()->st_mode, S_IFDIR | 0500);
  vfs::InodeRef link = root_->Lookup("1").value()->Lookup("fd").value()->Lookup("1").value();
  EXPECT_EQ(link->Readlink().value(), "pipe:[7]");
  EXPECT_EQ(link->Stat()->st_mode, S_IFLNK | 0700);
  // Readlink follows the fd table, not the lookup.
  provider_->procs[1].fds[1] = "/etc/passwd";
  EXPECT_EQ(link->Readlink().value(), "/etc/passwd");
  provider_->procs[1].fds.erase(1);
  EXPECT_ERRNO(link->Readlink(), ENOENT);
  EXPECT_ERRNO(Walk("/1/fd/1", false), ENOENT);
  EXPECT_ERRNO(Walk("/1/fd/x", false), ENOENT);
}

// Linux's task_dump_owner(): /proc/<pid> and all it holds belong to the
// process's effective ids; what is not per-process belongs to root.
TEST_F(ProcfsTest, PerProcessEntriesBelongToTheProcess) {
  provider_->procs[42].uid = 1000;
  provider_->procs[42].gid = 100;
  for (const char* path : {"/42", "/42/fd", "/42/status", "/42/task/42", "/42/task/42/fd"}) {
    SCOPED_TRACE(path);
    auto st = Walk(path, false).value()->Stat();
    ASSERT_OK(st);
    EXPECT_EQ(st->st_uid, 1000u);
    EXPECT_EQ(st->st_gid, 100u);
  }
  EXPECT_EQ(Walk("/42/exe", false).value()->Stat()->st_uid, 1000u);
  EXPECT_EQ(Walk("/1/fd/0", false).value()->Stat()->st_uid, 0u);
  EXPECT_EQ(Walk("/uptime").value()->Stat()->st_uid, 0u);
}

TEST_F(ProcfsTest, TaskDirectory) {
  EXPECT_EQ(List("/42/task"), std::vector<std::string>{"42"});
  // The same but for task/ and coredump_filter (tid_base_stuff).
  EXPECT_EQ(List("/42/task/42"),
            (std::vector<std::string>{
                "auxv",      "cgroup", "cmdline", "comm",      "cwd",           "environ",
                "exe",       "fd",     "fdinfo",  "limits",    "maps",          "mem",
                "mountinfo", "mounts", "oom_adj", "oom_score", "oom_score_adj", "root",
                "smaps",     "stat",   "statm",   "status"}));
  EXPECT_EQ(ReadFile("/42/task/42/comm"), "sh\n");
  EXPECT_EQ(Walk("/42/task/42").value()->Stat()->st_nlink, 3u);
  EXPECT_ERRNO(Walk("/42/task/1"), ENOENT);
}

TEST_F(ProcfsTest, ExitedProcessDisappears) {
  vfs::InodeRef dir = Walk("/42").value();
  vfs::InodeRef fd_dir = Walk("/42/fd").value();
  vfs::InodeRef status = Walk("/42/status").value();
  provider_->procs.erase(42);
  EXPECT_ERRNO(dir->Stat(), ENOENT);
  EXPECT_ERRNO(dir->Lookup("status"), ENOENT);
  EXPECT_ERRNO(dir->ReadDir(), ENOENT);
  EXPECT_ERRNO(fd_dir->ReadDir(), ENOENT);
  EXPECT_ERRNO(status->Open(O_RDONLY), ESRCH);
  EXPECT_ERRNO(root_->Lookup("42"), ENOENT);
  EXPECT_EQ(List("/").back(), "1");
}

TEST_F(ProcfsTest, SnapshotAtOpen) {
  vfs::FileRef f = Walk("/uptime").value()->Open(O_RDONLY).value();
  char buf[4] = {};
  ASSERT_OK(f->Read(buf, 2));
  provider_->uptime = "999999.99 5.00\n";
  auto r = f->Read(buf, sizeof(buf));
  ASSERT_OK(r);
  EXPECT_EQ(std::string(buf, *r), "00 1");
  EXPECT_EQ(f->PRead(buf, 4, 0).value(), 4u);
  EXPECT_EQ(std::string(buf, 4), "1.00");
  EXPECT_EQ(f->Seek(1, SEEK_SET).value(), 1);
  EXPECT_EQ(f->Seek(1, SEEK_CUR).value(), 2);
  EXPECT_ERRNO(f->Seek(0, SEEK_END), EINVAL);
  EXPECT_ERRNO(f->Seek(-5, SEEK_SET), EINVAL);
  EXPECT_EQ(f->GetMappable(), nullptr);
  EXPECT_EQ(f->Stat()->st_size, 0);
  // A new open sees the new text.
  EXPECT_EQ(ReadFile("/uptime"), "999999.99 5.00\n");
}

// Linux, as root: opening for writing works; write(2) then fails with EIO
// (no write handler) or EINVAL (seq files). Non-root callers get EACCES
// from the VFS permission check on mode 0444.
TEST_F(ProcfsTest, WritesFail) {
  vfs::FileRef meminfo = Walk("/meminfo").value()->Open(O_WRONLY).value();
  EXPECT_ERRNO(meminfo->Write("x", 1), EIO);
  vfs::FileRef status = Walk("/1/status").value()->Open(O_RDWR).value();
  EXPECT_ERRNO(status->Write("x", 1), EINVAL);
  EXPECT_ERRNO(status->PWrite("x", 1, 0), EINVAL);
  EXPECT_ERRNO(Walk("/1").value()->Open(O_WRONLY), EISDIR);
  ASSERT_OK(Walk("/1/fd").value()->Open(O_RDONLY | O_DIRECTORY));
  vfs::FileRef ro = Walk("/1/status").value()->Open(O_RDONLY).value();
  EXPECT_ERRNO(ro->Write("x", 1), EBADF);
  char c;
  EXPECT_ERRNO(meminfo->Read(&c, 1), EBADF);
}

// Checked against Linux /proc as root.
TEST_F(ProcfsTest, ChangesAreRefused) {
  vfs::InodeRef pid = Walk("/1").value();
  EXPECT_ERRNO(root_->Mkdir("foo", 0755), ENOENT);
  EXPECT_ERRNO(root_->Create("foo", 0644), ENOENT);
  EXPECT_ERRNO(root_->Symlink("foo", "x"), ENOENT);
  EXPECT_ERRNO(root_->Mkdir("self", 0755), EEXIST);
  EXPECT_ERRNO(root_->Unlink("meminfo"), EPERM);
  EXPECT_ERRNO(root_->Unlink("1"), EISDIR);
  EXPECT_ERRNO(root_->Unlink("nothing"), ENOENT);
  EXPECT_ERRNO(pid->Rmdir("fd"), EPERM);
  EXPECT_ERRNO(pid->Rmdir("maps"), ENOTDIR);
  EXPECT_ERRNO(root_->Rename("meminfo", *root_, "x"), ENOENT);
  EXPECT_ERRNO(root_->Rename("meminfo", *root_, "cpuinfo"), EPERM);
  EXPECT_ERRNO(root_->Rename("meminfo", *root_, "1"), EISDIR);
  vfs::InodeRef other = NewProcRoot(provider_);
  EXPECT_ERRNO(root_->Rename("meminfo", *other, "meminfo"), EXDEV);
  vfs::SetAttr a;
  a.set_mode = true;
  EXPECT_ERRNO(Walk("/1/maps").value()->SetAttributes(a), EPERM);
  EXPECT_ERRNO(root_->Lookup(std::string(256, '1')), ENAMETOOLONG);
}

// Writes `text` to the file at path in one write(2), as a program would.
Result<size_t> WriteTo(const vfs::InodeRef& inode, const std::string& text) {
  ASSIGN_OR_RETURN(vfs::FileRef f, inode->Open(O_WRONLY));
  return f->Write(text.data(), text.size());
}

TEST_F(ProcfsTest, OomScoreAdjReadsWritesAndChecksTheRange) {
  vfs::InodeRef adj = Walk("/1/oom_score_adj").value();
  EXPECT_EQ(adj->Stat()->st_mode, S_IFREG | 0644);
  EXPECT_EQ(ReadFile("/1/oom_score_adj"), "0\n");
  EXPECT_EQ(WriteTo(adj, "500\n").value(), 4u);
  EXPECT_EQ(ReadFile("/1/oom_score_adj"), "500\n");
  EXPECT_EQ(ReadFile("/1/oom_adj"), "8\n");  // 500 * 17 / 1000
  EXPECT_EQ(ReadFile("/1/oom_score"), "999\n");
  EXPECT_ERRNO(WriteTo(adj, "1001"), EINVAL);
  EXPECT_ERRNO(WriteTo(adj, "-1001"), EINVAL);
  EXPECT_ERRNO(WriteTo(adj, "many"), EINVAL);
  EXPECT_ERRNO(WriteTo(adj, ""), EINVAL);
  EXPECT_ERRNO(WriteTo(adj, "99999999999"), ERANGE);
  EXPECT_EQ(provider_->procs[1].oom_score_adj, 500);
  // Blanks around the number, hex and octal, as kstrtoint(strstrip(), 0).
  EXPECT_OK(WriteTo(adj, "  -0x10 \n"));
  EXPECT_EQ(provider_->procs[1].oom_score_adj, -16);
  EXPECT_OK(WriteTo(adj, "010"));
  EXPECT_EQ(provider_->procs[1].oom_score_adj, 8);
  // At most PROC_NUMBUF - 1 bytes are taken, and reported.
  EXPECT_EQ(WriteTo(adj, "           7 and more").value(), 12u);
  EXPECT_EQ(provider_->procs[1].oom_score_adj, 7);
}

TEST_F(ProcfsTest, OomAdjIsTheLegacyScale) {
  vfs::InodeRef adj = Walk("/42/oom_adj").value();
  EXPECT_OK(WriteTo(adj, "15"));
  EXPECT_EQ(provider_->procs[42].oom_score_adj, 1000);
  EXPECT_EQ(ReadFile("/42/oom_adj"), "15\n");
  EXPECT_OK(WriteTo(adj, "-17"));
  EXPECT_EQ(provider_->procs[42].oom_score_adj, -1000);
  EXPECT_EQ(ReadFile("/42/oom_adj"), "-17\n");
  EXPECT_OK(WriteTo(adj, "3"));
  EXPECT_EQ(provider_->procs[42].oom_score_adj, 176);  // 3 * 1000 / 17
  EXPECT_ERRNO(WriteTo(adj, "16"), EINVAL);
  EXPECT_ERRNO(WriteTo(adj, "-18"), EINVAL);
}

TEST_F(ProcfsTest, CoredumpFilterIsEightHexDigits) {
  EXPECT_EQ(ReadFile("/1/coredump_filter"), "00000033\n");
  vfs::InodeRef filter = Walk("/1/coredump_filter").value();
  EXPECT_EQ(WriteTo(filter, "0x23\n").value(), 5u);
  EXPECT_EQ(ReadFile("/1/coredump_filter"), "00000023\n");
  EXPECT_OK(WriteTo(filter, "0xffff"));  // bits past MMF_DUMP_FILTER_BITS go
  EXPECT_EQ(ReadFile("/1/coredump_filter"), "000001ff\n");
  EXPECT_ERRNO(WriteTo(filter, "-1"), EINVAL);
  EXPECT_ERRNO(WriteTo(filter, " 1"), EINVAL);
  EXPECT_ERRNO(WriteTo(filter, "1\n\n"), EINVAL);
  EXPECT_ERRNO(WriteTo(filter, "0x100000000"), ERANGE);
}

TEST_F(ProcfsTest, CommWriteRenamesTheThread) {
  vfs::InodeRef comm = Walk("/1/comm").value();
  EXPECT_EQ(comm->Stat()->st_mode, S_IFREG | 0644);
  EXPECT_EQ(WriteTo(comm, "renamed").value(), 7u);
  EXPECT_EQ(ReadFile("/1/comm"), "renamed\n");
  // TASK_COMM_LEN: 15 bytes kept, the whole count reported.
  EXPECT_EQ(WriteTo(comm, "abcdefghijklmnopqrstuvwxyz").value(), 26u);
  EXPECT_EQ(provider_->procs[1].comm, "abcdefghijklmno");
  EXPECT_EQ(WriteTo(comm, std::string("ab\0cd", 5)).value(), 5u);
  EXPECT_EQ(provider_->procs[1].comm, "ab");
  // Another process's thread: EINVAL (the fake's rule for comm_write's).
  EXPECT_ERRNO(WriteTo(Walk("/42/task/42/comm").value(), "x"), EINVAL);
}

TEST_F(ProcfsTest, FdinfoListsAndDescribesDescriptors) {
  EXPECT_EQ(List("/1/fdinfo"), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_TRUE(List("/42/fdinfo").empty());
  EXPECT_EQ(Walk("/1/fdinfo").value()->Stat()->st_mode, S_IFDIR | 0500);
  EXPECT_EQ(Walk("/1/fdinfo/1").value()->Stat()->st_mode, S_IFREG | 0444);
  EXPECT_EQ(ReadFile("/1/fdinfo/1"), "pos:\t101\nflags:\t02000002\nmnt_id:\t22\nino:\t7001\n");
  EXPECT_ERRNO(Walk("/1/fdinfo/3"), ENOENT);
  EXPECT_ERRNO(Walk("/1/fdinfo/01"), ENOENT);
  // Its own inode numbers, not fd/N's.
  EXPECT_NE(Walk("/1/fdinfo/1").value()->Stat()->st_ino,
            Walk("/1/fd/1", false).value()->Stat()->st_ino);
  // Closed after the lookup: the open fails.
  vfs::InodeRef info = Walk("/1/fdinfo/2").value();
  provider_->procs[1].fds.erase(2);
  EXPECT_ERRNO(info->Open(O_RDONLY), ENOENT);
}

TEST_F(ProcfsTest, MemReadsAndWritesAtAddresses) {
  constexpr uint64_t kBase = FakeProvider::kMemBase;
  vfs::InodeRef mem = Walk("/42/mem").value();
  EXPECT_EQ(mem->Stat()->st_mode, S_IFREG | 0600);
  vfs::FileRef f = mem->Open(O_RDWR).value();
  char buf[8] = {};
  ASSERT_EQ(f->PRead(buf, 4, kBase + 2).value(), 4u);
  EXPECT_EQ(std::string(buf, 4), "2345");
  // A read past the end of the memory stops there; one wholly outside is EIO.
  EXPECT_EQ(f->PRead(buf, 8, kBase + 12).value(), 4u);
  EXPECT_ERRNO(f->PRead(buf, 8, kBase + 16), EIO);
  EXPECT_ERRNO(f->PRead(buf, 8, 0), EIO);
  EXPECT_ERRNO(f->PRead(buf, 8, UINT64_MAX - 3), EIO);
  EXPECT_ERRNO(f->PWrite("x", 1, kBase - 1), EIO);
  // The file offset is the address.
  ASSERT_EQ(f->Seek(static_cast<off_t>(kBase) + 10, SEEK_SET).value(),
            static_cast<off_t>(kBase) + 10);
  ASSERT_EQ(f->Read(buf, 3).value(), 3u);
  EXPECT_EQ(std::string(buf, 3), "abc");
  EXPECT_EQ(f->Seek(0, SEEK_CUR).value(), static_cast<off_t>(kBase) + 13);
  EXPECT_ERRNO(f->Seek(0, SEEK_END), EINVAL);
  ASSERT_EQ(f->PWrite("XY", 2, kBase).value(), 2u);
  EXPECT_EQ(provider_->procs[42].mem, "XY23456789abcdef");
  EXPECT_OK(f->Read(buf, 0));
  // Opened read-only: no writes.
  vfs::FileRef ro = mem->Open(O_RDONLY).value();
  EXPECT_ERRNO(ro->PWrite("x", 1, kBase), EBADF);
  // A process that is gone: the entry is.
  provider_->procs.erase(42);
  EXPECT_ERRNO(mem->Open(O_RDONLY), ENOENT);
}

TEST_F(ProcfsTest, StatmComesFromTheProvider) {
  EXPECT_EQ(ReadFile("/1/statm"), "3 2 1 1 0 1 0\n");
  // A provider without the file answers ENOENT at open.
  EXPECT_ERRNO(Walk("/1/limits").value()->Open(O_RDONLY), ENOENT);
}

// Every process is in the one v2 cgroup; /proc/cgroups lists the
// controllers on hierarchy 0, as a v2-only kernel does.
TEST_F(ProcfsTest, CgroupFiles) {
  EXPECT_EQ(ReadFile("/1/cgroup"), "0::/\n");
  EXPECT_EQ(ReadFile("/42/task/42/cgroup"), "0::/\n");
  std::string cgroups = ReadFile("/cgroups");
  EXPECT_EQ(cgroups.rfind("#subsys_name\thierarchy\tnum_cgroups\tenabled\n", 0), 0u);
  for (const char* c : {"cpuset", "cpu", "cpuacct", "memory", "pids"}) {
    EXPECT_NE(cgroups.find(std::string("\n") + c + "\t0\t1\t1\n"), std::string::npos) << c;
  }
  EXPECT_NE(ReadFile("/filesystems").find("nodev\tcgroup2\n"), std::string::npos);
}

// /proc/sys/kernel/hostname reads and writes the provider's (the caller's
// UTS namespace's) name: up to the newline, at most 64 bytes.
TEST_F(ProcfsTest, HostnameIsWritable) {
  vfs::InodeRef host = Walk("/sys/kernel/hostname").value();
  EXPECT_EQ(host->Stat()->st_mode, S_IFREG | 0644);
  EXPECT_EQ(ReadFile("/sys/kernel/hostname"), "husk\n");
  EXPECT_EQ(WriteTo(host, "box\nignored").value(), 11u);
  EXPECT_EQ(provider_->hostname, "box");
  EXPECT_EQ(ReadFile("/sys/kernel/hostname"), "box\n");
  ASSERT_OK(WriteTo(host, std::string(100, 'h')));
  EXPECT_EQ(provider_->hostname, std::string(64, 'h'));
}

class CgroupfsTest : public ProcfsTest {
 protected:
  void SetUp() override {
    ProcfsTest::SetUp();
    root_ = NewCgroupRoot(provider_);
  }
};

TEST_F(CgroupfsTest, ReportsTheSandboxsLimitsAndUsage) {
  provider_->cgroup.memory_max = uint64_t{512} << 20;
  provider_->cgroup.memory_current = 12345;
  provider_->cgroup.anon = 4096;
  provider_->cgroup.file = 8249;
  EXPECT_EQ(ReadFile("/cgroup.controllers"), "cpu memory pids\n");
  EXPECT_EQ(ReadFile("/memory.max"), "536870912\n");
  EXPECT_EQ(ReadFile("/memory.current"), "12345\n");
  EXPECT_EQ(ReadFile("/cpu.max"), "max 100000\n");
  provider_->cgroup.cpu_quota_us = 150000;
  EXPECT_EQ(ReadFile("/cpu.max"), "150000 100000\n");
  EXPECT_EQ(ReadFile("/pids.max"), "max\n");
  EXPECT_EQ(ReadFile("/pids.current"), "2\n");
  EXPECT_EQ(ReadFile("/cgroup.procs"), "1\n42\n");
  std::string stat = ReadFile("/memory.stat");
  EXPECT_EQ(stat.rfind("anon 4096\nfile 8249\n", 0), 0u) << stat;
  struct statfs fs = root_->Statfs().value();
  EXPECT_EQ(fs.f_type, 0x63677270);
  EXPECT_NE(root_->Stat()->st_dev, NewProcRoot(provider_)->Stat()->st_dev);
}

TEST_F(CgroupfsTest, NothingChanges) {
  EXPECT_ERRNO(root_->Mkdir("child", 0755), EROFS);
  EXPECT_ERRNO(root_->Create("x", 0644), EROFS);
  EXPECT_ERRNO(root_->Unlink("memory.max"), EROFS);
  vfs::InodeRef max = Walk("/memory.max").value();
  EXPECT_EQ(max->Stat()->st_mode, S_IFREG | 0644);
  EXPECT_ERRNO(WriteTo(max, "1G\n"), EROFS);
  EXPECT_EQ(Walk("/memory.current").value()->Stat()->st_mode, S_IFREG | 0444);
}

TEST(ParseKernelIntTest, FollowsKstrtoll) {
  EXPECT_EQ(ParseKernelInt("42", -100, 100).value(), 42);
  EXPECT_EQ(ParseKernelInt("42\n", -100, 100).value(), 42);
  EXPECT_EQ(ParseKernelInt("+42", -100, 100).value(), 42);
  EXPECT_EQ(ParseKernelInt("-42", -100, 100).value(), -42);
  EXPECT_EQ(ParseKernelInt("0x1f", 0, 100).value(), 31);
  EXPECT_EQ(ParseKernelInt("0X1F", 0, 100).value(), 31);
  EXPECT_EQ(ParseKernelInt("017", 0, 100).value(), 15);
  EXPECT_EQ(ParseKernelInt("0", 0, 100).value(), 0);
  EXPECT_ERRNO(ParseKernelInt("", 0, 100), EINVAL);
  EXPECT_ERRNO(ParseKernelInt("\n", 0, 100), EINVAL);
  EXPECT_ERRNO(ParseKernelInt("0x", 0, 100), EINVAL);
  EXPECT_ERRNO(ParseKernelInt("08", 0, 100), EINVAL);
  EXPECT_ERRNO(ParseKernelInt("1a", 0, 100), EINVAL);
  EXPECT_ERRNO(ParseKernelInt("-1", 0, 100), EINVAL);
  EXPECT_ERRNO(ParseKernelInt(" 1", 0, 100), EINVAL);
  EXPECT_ERRNO(ParseKernelInt("101", 0, 100), ERANGE);
  EXPECT_ERRNO(ParseKernelInt("99999999999999999999999", 0, 100), ERANGE);
}

TEST_F(ProcfsTest, ThroughTheVfs) {
  vfs::FsContext fs;
  fs.root = std::make_shared<vfs::Dentry>("", nullptr, root_);
  absl::Cleanup release = [&fs] { fs.root->ReleaseTree(); };
  fs.cwd = fs.root;
  auto d = vfs::Resolve(fs, fs.cwd, "/self/fd/1", false);
  ASSERT_OK(d);
  EXPECT_EQ((*d)->inode()->Readlink().value(), "pipe:[7]");
  EXPECT_EQ((*d)->Path(), "/1/fd/1");
  auto comm = vfs::Resolve(fs, fs.cwd, "/thread-self/comm", true);
  ASSERT_OK(comm);
  EXPECT_EQ((*comm)->Path(), "/1/task/1/comm");
}

}  // namespace
}  // namespace husk::procfs
