// The gofer filesystem end to end: a real gofer server (gofer/server.h, in a
// thread, unconfined) serves a temporary host tree over a socketpair, and the
// tests drive it through the sentry's VFS, mounted on /mnt of a tmpfs root.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "base/result_testing.h"
#include "gofer/server.h"
#include "gtest/gtest.h"
#include "sentry/fsimpl/gofer/gofer_fs.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"
#include "sentry/memfile/memfile.h"
#include "sentry/mm/mm.h"

namespace husk::goferfs {
namespace {

namespace fs = std::filesystem;

constexpr size_t kDataSize = 10000;  // two pages and a bit

// Bytes that differ from offset to offset, so a read at the wrong offset shows.
std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return s;
}

void WriteHostFile(const fs::path& p, const std::string& content, mode_t mode) {
  std::ofstream(p, std::ios::binary) << content;
  ASSERT_EQ(chmod(p.c_str(), mode), 0) << p;
}

struct stat HostLstat(const fs::path& p) {
  struct stat st = {};
  EXPECT_EQ(lstat(p.c_str(), &st), 0) << p << ": " << strerror(errno);
  return st;
}

struct stat StatOf(const vfs::DentryRef& d) {
  auto st = d->inode()->Stat();
  EXPECT_OK(st);
  return st.ok() ? *st : (struct stat){};
}

// Reads a whole file through a VFS file, in chunks smaller than a page.
std::string ReadThroughFile(const vfs::FileRef& f) {
  std::string out;
  char buf[1000];
  for (;;) {
    auto r = f->Read(buf, sizeof(buf));
    EXPECT_OK(r);
    if (!r.ok() || *r == 0) break;
    out.append(buf, *r);
  }
  return out;
}

// A platform address space that installs nothing: the MM's copies go
// through the memory file, which is all these tests read.
class NullAddressSpace : public platform::AddressSpace {
 public:
  Status MapFile(uintptr_t, uint64_t, size_t, int) override { return Ok(); }
  Status Unmap(uintptr_t, size_t) override { return Ok(); }
};

class GoferFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/goferfs_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << strerror(errno);
    base_ = tmpl;
    root_ = base_ / "root";
    outside_ = base_ / "outside";
    fs::create_directories(root_ / "dir/sub");
    fs::create_directories(root_ / "outside");
    fs::create_directories(outside_);
    ASSERT_EQ(chmod(root_.c_str(), 0755), 0);
    ASSERT_EQ(chmod((root_ / "dir").c_str(), 0750), 0);
    data_ = Pattern(kDataSize);
    WriteHostFile(root_ / "data", data_, 0640);
    ASSERT_EQ(link((root_ / "data").c_str(), (root_ / "data.link").c_str()), 0);
    WriteHostFile(root_ / "empty", "", 0600);
    WriteHostFile(root_ / "dir/inner.txt", "inner", 0644);
    WriteHostFile(root_ / "outside/secret", "decoy in the served tree", 0644);
    WriteHostFile(outside_ / "secret", "host secret", 0644);
    fs::create_symlink("dir/inner.txt", root_ / "rel");
    fs::create_symlink("dir", root_ / "dirlink");
    fs::create_symlink("../outside/secret", root_ / "up");
    fs::create_symlink(outside_ / "secret", root_ / "abs");
    fs::create_symlink("nowhere", root_ / "dangling");
    fs::create_symlink("loop", root_ / "loop");
    ASSERT_EQ(mkfifo((root_ / "fifo").c_str(), 0600), 0);
    // On the host, both escaping links do reach the file outside the root:
    // the tests below would prove nothing otherwise.
    ASSERT_EQ(ReadHost(root_ / "up"), "host secret");
    ASSERT_EQ(ReadHost(root_ / "abs"), "host secret");

    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd server_end(sv[1]);
    UniqueFd client_end(sv[0]);
    hangup_.Reset(dup(client_end.get()));
    ASSERT_TRUE(hangup_.valid());
    UniqueFd root_fd(open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd.valid());
    server_ = std::thread([this, s = server_end.Release(), r = root_fd.Release()] {
      server_status_ = gofer::Serve(UniqueFd(s), UniqueFd(r), /*read_only=*/true);
    });
    auto client = std::make_shared<gofer::Client>(std::move(client_end));
    client_ = client;

    auto groot = NewGoferRoot(std::move(client));
    ASSERT_OK(groot);
    gofer_root_ = *groot;
    // The sentry's own tree: a tmpfs root with the gofer mounted on /mnt.
    vfs::InodeRef troot = tmpfs::NewTmpfsRoot(0755);
    fs_.root = std::make_shared<vfs::Dentry>("/", nullptr, troot);
    fs_.cwd = fs_.root;
    auto mnt = troot->Mkdir("mnt", 0755);
    ASSERT_OK(mnt);
    auto mnt_dentry = fs_.root->Child("mnt");
    ASSERT_OK(mnt_dentry);
    (*mnt_dentry)->Mount(gofer_root_);
  }

  void TearDown() override {
    if (fs_.root) fs_.root->ReleaseTree();
    fs_ = vfs::FsContext{};
    gofer_root_.reset();
    // Every inode holds the client; with all of them gone the client (and
    // its socket) must be gone too, which ends Serve.
    EXPECT_TRUE(client_.expired()) << "gofer inodes are still alive";
    // If they are not, hang up by hand rather than wait forever.
    if (hangup_.valid()) shutdown(hangup_.get(), SHUT_RDWR);
    if (server_.joinable()) {
      server_.join();
      EXPECT_TRUE(server_status_.ok()) << server_status_;
    }
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  static std::string ReadHost(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  Result<vfs::DentryRef> Resolve(const std::string& path, bool follow = true) {
    return vfs::Resolve(fs_, fs_.root, path, follow);
  }

  // On failure these report it and throw (Result's accessors do), which
  // fails the test without a null dereference.
  vfs::DentryRef MustResolve(const std::string& path, bool follow = true) {
    auto d = Resolve(path, follow);
    EXPECT_OK(d) << path;
    return *std::move(d);
  }

  vfs::FileRef OpenFile(const std::string& path, int flags = O_RDONLY) {
    vfs::DentryRef d = MustResolve(path);
    auto f = d->inode()->Open(flags);
    EXPECT_OK(f) << path;
    vfs::FileRef file = *std::move(f);
    file->set_dentry(d);
    return file;
  }

  fs::path base_, root_, outside_;
  std::string data_;
  UniqueFd hangup_;  // a second descriptor for the client's socket
  std::thread server_;
  absl::Status server_status_;
  std::weak_ptr<gofer::Client> client_;
  vfs::InodeRef gofer_root_;
  vfs::FsContext fs_;
};

TEST_F(GoferFsTest, StatShowsTheHostAttributes) {
  for (const char* name : {"data", "data.link", "empty", "dir", "dir/inner.txt", "rel", "fifo"}) {
    SCOPED_TRACE(name);
    struct stat host = HostLstat(root_ / name);
    struct stat st = StatOf(MustResolve(std::string("/mnt/") + name, /*follow=*/false));
    EXPECT_EQ(st.st_mode, host.st_mode);
    EXPECT_EQ(st.st_ino, host.st_ino);
    EXPECT_EQ(st.st_nlink, host.st_nlink);
    EXPECT_EQ(st.st_size, host.st_size);
    EXPECT_EQ(st.st_uid, host.st_uid);
    EXPECT_EQ(st.st_gid, host.st_gid);
    EXPECT_EQ(st.st_mtim.tv_sec, host.st_mtim.tv_sec);
    EXPECT_EQ(st.st_mtim.tv_nsec, host.st_mtim.tv_nsec);
  }
  struct stat data = StatOf(MustResolve("/mnt/data"));
  EXPECT_EQ(data.st_mode, S_IFREG | 0640);
  EXPECT_EQ(data.st_size, static_cast<off_t>(kDataSize));
  EXPECT_EQ(data.st_nlink, 2u);  // data and data.link
  EXPECT_EQ(StatOf(MustResolve("/mnt/data.link")).st_ino, data.st_ino);
  struct stat dir = StatOf(MustResolve("/mnt/dir"));
  EXPECT_EQ(dir.st_mode, S_IFDIR | 0750);
  EXPECT_EQ(StatOf(MustResolve("/mnt/rel", false)).st_mode & S_IFMT, S_IFLNK);
  EXPECT_EQ(StatOf(MustResolve("/mnt/fifo")).st_mode, S_IFIFO | 0600);
  EXPECT_EQ(StatOf(MustResolve("/mnt")).st_ino, HostLstat(root_).st_ino);
}

TEST_F(GoferFsTest, InodeNumbersAreStableAcrossLookups) {
  ino_t host_ino = HostLstat(root_ / "dir/inner.txt").st_ino;
  auto dir = gofer_root_->Lookup("dir");
  ASSERT_OK(dir);
  auto first = (*dir)->Lookup("inner.txt");
  ASSERT_OK(first);
  // While an inode lives, looking its name up again gives the same inode.
  auto again = (*dir)->Lookup("inner.txt");
  ASSERT_OK(again);
  EXPECT_EQ(first->get(), again->get());
  EXPECT_EQ((*first)->Stat()->st_ino, host_ino);
  // Once it is gone, a new lookup walks a new fid: the number stays.
  *first = nullptr;
  *again = nullptr;
  auto later = (*dir)->Lookup("inner.txt");
  ASSERT_OK(later);
  EXPECT_EQ((*later)->Stat()->st_ino, host_ino);
  // And a path through a symlink reaches the same file.
  EXPECT_EQ(StatOf(MustResolve("/mnt/dirlink/inner.txt")).st_ino, host_ino);
  EXPECT_EQ(StatOf(MustResolve("/mnt/rel")).st_ino, host_ino);
}

TEST_F(GoferFsTest, ReadDirListsTheHostDirectory) {
  auto entries = MustResolve("/mnt")->inode()->ReadDir();
  ASSERT_OK(entries);
  std::map<std::string, vfs::Dirent> got;
  for (const auto& e : *entries) {
    EXPECT_TRUE(got.emplace(e.name, e).second) << e.name << " listed twice";
  }
  std::map<std::string, uint8_t> want = {
      {"data", DT_REG},    {"data.link", DT_REG}, {"empty", DT_REG},   {"dir", DT_DIR},
      {"outside", DT_DIR}, {"rel", DT_LNK},       {"dirlink", DT_LNK}, {"up", DT_LNK},
      {"abs", DT_LNK},     {"dangling", DT_LNK},  {"loop", DT_LNK},    {"fifo", DT_FIFO},
  };
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, type] : want) {
    SCOPED_TRACE(name);
    auto it = got.find(name);
    ASSERT_NE(it, got.end());
    EXPECT_EQ(it->second.type, type);
    EXPECT_EQ(it->second.ino, HostLstat(root_ / name).st_ino);
  }
  auto sub = MustResolve("/mnt/dir/sub")->inode()->ReadDir();
  ASSERT_OK(sub);
  EXPECT_TRUE(sub->empty());
}

TEST_F(GoferFsTest, DirectoryFilesListDotEntriesFirst) {
  vfs::FileRef f = OpenFile("/mnt/dir");
  auto batch = f->ReadDirBatch(100, [](const vfs::Dirent&) { return true; });
  ASSERT_OK(batch);
  std::vector<std::string> names;
  for (const auto& e : *batch) names.push_back(e.name);
  std::sort(names.begin() + 2, names.end());
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "inner.txt", "sub"}));
  EXPECT_EQ((*batch)[0].ino, HostLstat(root_ / "dir").st_ino);
  EXPECT_EQ((*batch)[1].ino, HostLstat(root_).st_ino);
}

TEST_F(GoferFsTest, ReadsAtOffsetsAndPastTheEnd) {
  vfs::InodeRef inode = MustResolve("/mnt/data")->inode();
  std::string buf(5000, '\0');
  struct Case {
    uint64_t offset;
    size_t n;
    size_t want;
  } cases[] = {
      {0, 100, 100},                // start
      {4000, 5000, 5000},           // across a page boundary
      {kDataSize - 10, 100, 10},    // short at the end
      {kDataSize, 100, 0},          // at the end
      {kDataSize + 4096, 100, 0},   // past the end
      {uint64_t{1} << 40, 100, 0},  // far past the end
      {7, 0, 0},                    // nothing asked
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "offset " << c.offset << " n " << c.n);
    auto r = inode->ReadAt(buf.data(), c.n, c.offset);
    ASSERT_OK(r);
    ASSERT_EQ(*r, c.want);
    if (c.want > 0) {
      EXPECT_EQ(buf.substr(0, c.want), data_.substr(c.offset, c.want));
    }
  }

  vfs::FileRef f = OpenFile("/mnt/data");
  auto p = f->PRead(buf.data(), 50, 9000);
  ASSERT_OK(p);
  ASSERT_EQ(*p, 50u);
  EXPECT_EQ(buf.substr(0, 50), data_.substr(9000, 50));
  EXPECT_EQ(*f->PRead(buf.data(), 50, kDataSize + 1), 0u);
  // pread leaves the file offset alone: a whole read starts at 0.
  EXPECT_EQ(ReadThroughFile(f), data_);
  EXPECT_EQ(*f->Read(buf.data(), 10), 0u);  // at end of file
  auto end = f->Seek(0, SEEK_END);
  ASSERT_OK(end);
  EXPECT_EQ(*end, static_cast<off_t>(kDataSize));
  ASSERT_OK(f->Seek(kDataSize - 3, SEEK_SET));
  ASSERT_EQ(*f->Read(buf.data(), 10), 3u);
  EXPECT_EQ(buf.substr(0, 3), data_.substr(kDataSize - 3));

  vfs::FileRef empty = OpenFile("/mnt/empty");
  EXPECT_EQ(ReadThroughFile(empty), "");
  EXPECT_EQ(ReadThroughFile(OpenFile("/mnt/dir/inner.txt")), "inner");
}

TEST_F(GoferFsTest, ReadlinkGivesTheTargetAsStored) {
  EXPECT_EQ(*MustResolve("/mnt/rel", false)->inode()->Readlink(), "dir/inner.txt");
  EXPECT_EQ(*MustResolve("/mnt/up", false)->inode()->Readlink(), "../outside/secret");
  EXPECT_EQ(*MustResolve("/mnt/abs", false)->inode()->Readlink(), (outside_ / "secret").string());
  EXPECT_EQ(*MustResolve("/mnt/dangling", false)->inode()->Readlink(), "nowhere");
  // Asked twice (the second answer may come from the cache).
  EXPECT_EQ(*MustResolve("/mnt/rel", false)->inode()->Readlink(), "dir/inner.txt");
  EXPECT_ERRNO(MustResolve("/mnt/data")->inode()->Readlink(), EINVAL);
  EXPECT_ERRNO(MustResolve("/mnt/dir")->inode()->Readlink(), EINVAL);
}

TEST_F(GoferFsTest, SymlinksAreResolvedByTheSentryNeverByTheHost) {
  // The gofer hands back the links themselves.
  EXPECT_TRUE(MustResolve("/mnt/up", false)->inode()->IsSymlink());
  EXPECT_TRUE(MustResolve("/mnt/abs", false)->inode()->IsSymlink());
  auto walked = gofer_root_->Lookup("abs");
  ASSERT_OK(walked);
  EXPECT_TRUE((*walked)->IsSymlink());

  // Following them is the VFS's job, inside the sentry's own tree. Give that
  // tree the files the targets name: "/mnt/.." is the tmpfs root, and the
  // absolute target is a path of the sentry's root, not the host's.
  vfs::InodeRef dir = fs_.root->inode();
  for (const auto& part : outside_) {
    if (part == "/") continue;
    auto next = dir->Lookup(part);
    if (!next.ok()) next = dir->Mkdir(part, 0755);
    ASSERT_OK(next);
    dir = *next;
  }
  auto abs_secret = dir->Create("secret", 0644);
  ASSERT_OK(abs_secret);
  const std::string kAbsText = "sentry file at the absolute path";
  ASSERT_OK((*abs_secret)->WriteAt(kAbsText.data(), kAbsText.size(), 0));
  auto tmp_outside = fs_.root->inode()->Mkdir("outside", 0755);
  ASSERT_OK(tmp_outside);
  auto up_secret = (*tmp_outside)->Create("secret", 0644);
  ASSERT_OK(up_secret);
  const std::string kUpText = "sentry file next to /mnt";
  ASSERT_OK((*up_secret)->WriteAt(kUpText.data(), kUpText.size(), 0));

  EXPECT_EQ(ReadThroughFile(OpenFile("/mnt/abs")), kAbsText);
  EXPECT_EQ(ReadThroughFile(OpenFile("/mnt/up")), kUpText);
  EXPECT_EQ(MustResolve("/mnt/abs")->Path(), (outside_ / "secret").string());
  EXPECT_EQ(MustResolve("/mnt/up")->Path(), "/outside/secret");
}

TEST_F(GoferFsTest, EscapingSymlinksMissWhenTheSentryTreeLacksTheTarget) {
  EXPECT_ERRNO(Resolve("/mnt/abs"), ENOENT);
  EXPECT_ERRNO(Resolve("/mnt/up"), ENOENT);
  // With the gofer as the VFS root, ".." stops at the root, so the relative
  // link lands on the decoy inside the served tree.
  vfs::FsContext gofer_only;
  gofer_only.root = std::make_shared<vfs::Dentry>("/", nullptr, gofer_root_);
  gofer_only.cwd = gofer_only.root;
  absl::Cleanup release = [&] { gofer_only.root->ReleaseTree(); };
  auto d = vfs::Resolve(gofer_only, gofer_only.root, "/up", true);
  ASSERT_OK(d);
  auto f = (*d)->inode()->Open(O_RDONLY);
  ASSERT_OK(f);
  EXPECT_EQ(ReadThroughFile(*f), "decoy in the served tree");
  EXPECT_ERRNO(vfs::Resolve(gofer_only, gofer_only.root, "/abs", true), ENOENT);
}

TEST_F(GoferFsTest, ResolutionErrors) {
  EXPECT_ERRNO(Resolve("/mnt/missing"), ENOENT);
  EXPECT_ERRNO(Resolve("/mnt/dir/missing"), ENOENT);
  EXPECT_ERRNO(Resolve("/mnt/dangling"), ENOENT);
  EXPECT_TRUE(MustResolve("/mnt/dangling", false)->inode()->IsSymlink());
  EXPECT_ERRNO(Resolve("/mnt/data/x"), ENOTDIR);
  EXPECT_ERRNO(Resolve("/mnt/data/"), ENOTDIR);
  EXPECT_ERRNO(Resolve("/mnt/rel/"), ENOTDIR);  // follows to a regular file
  EXPECT_ERRNO(Resolve("/mnt/loop"), ELOOP);
  EXPECT_TRUE(MustResolve("/mnt/dirlink/")->inode()->IsDir());

  vfs::InodeRef data = MustResolve("/mnt/data")->inode();
  EXPECT_ERRNO(data->Lookup("x"), ENOTDIR);
  EXPECT_ERRNO(data->ReadDir(), ENOTDIR);
  char c;
  EXPECT_ERRNO(MustResolve("/mnt/dir")->inode()->ReadAt(&c, 1, 0), EINVAL);
  EXPECT_ERRNO(MustResolve("/mnt/rel", false)->inode()->ReadAt(&c, 1, 0), EINVAL);
  vfs::FileRef dirf = OpenFile("/mnt/dir");
  EXPECT_ERRNO(dirf->Read(&c, 1), EISDIR);
}

TEST_F(GoferFsTest, IsReadOnly) {
  vfs::InodeRef root = MustResolve("/mnt")->inode();
  vfs::InodeRef dir = MustResolve("/mnt/dir")->inode();
  vfs::InodeRef data = MustResolve("/mnt/data")->inode();
  EXPECT_ERRNO(root->Create("new", 0644), EROFS);
  EXPECT_ERRNO(root->Create("data", 0644), EROFS);
  EXPECT_ERRNO(root->Mkdir("newdir", 0755), EROFS);
  EXPECT_ERRNO(root->Symlink("newlink", "data"), EROFS);
  EXPECT_ERRNO(root->Unlink("data"), EROFS);
  EXPECT_ERRNO(root->Rmdir("dir"), EROFS);
  EXPECT_ERRNO(root->Rename("data", *dir, "moved"), EROFS);
  EXPECT_ERRNO(data->Open(O_WRONLY), EROFS);
  EXPECT_ERRNO(data->Open(O_RDWR), EROFS);
  EXPECT_ERRNO(data->Open(O_RDONLY | O_TRUNC), EROFS);
  // chmod, chown, truncate and utimes on a read-only filesystem: EROFS, as
  // chmod(2), truncate(2) and utimensat(2) give it.
  vfs::SetAttr mode;
  mode.set_mode = true;
  mode.mode = 0777;
  EXPECT_ERRNO(data->SetAttributes(mode), EROFS);
  vfs::SetAttr size;
  size.set_size = true;
  EXPECT_ERRNO(data->SetAttributes(size), EROFS);
  EXPECT_ERRNO(dir->SetAttributes(mode), EROFS);

  // Nothing reached the host.
  EXPECT_FALSE(fs::exists(root_ / "new"));
  EXPECT_FALSE(fs::exists(root_ / "newdir"));
  EXPECT_EQ(ReadHost(root_ / "data"), data_);
  EXPECT_EQ(HostLstat(root_ / "data").st_mode, S_IFREG | 0640u);
  EXPECT_TRUE(fs::exists(root_ / "dir"));
}

TEST_F(GoferFsTest, OnlyRegularFilesAndDirectoriesOpen) {
  // Host fifos, sockets and devices are never opened through the gofer.
  vfs::InodeRef fifo = MustResolve("/mnt/fifo")->inode();
  EXPECT_ERRNO(fifo->Open(O_RDONLY), EACCES);
  EXPECT_OK(fifo->Open(O_PATH));
  EXPECT_OK(MustResolve("/mnt/dir")->inode()->Open(O_RDONLY | O_DIRECTORY));
}

TEST_F(GoferFsTest, MapsThroughGetMappable) {
  vfs::FileRef f = OpenFile("/mnt/data");
  std::shared_ptr<Mappable> m = f->GetMappable();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->MapsName(), "/mnt/data");
  EXPECT_EQ(m->MapsInode(), HostLstat(root_ / "data").st_ino);
  std::string buf(4096, '\0');
  auto r = m->ReadForMapping(4096, buf.data(), buf.size());
  ASSERT_OK(r);
  ASSERT_EQ(*r, 4096u);
  EXPECT_EQ(buf, data_.substr(4096, 4096));
  r = m->ReadForMapping(8192, buf.data(), buf.size());  // the partial last page
  ASSERT_OK(r);
  EXPECT_EQ(*r, kDataSize - 8192);
  EXPECT_EQ(*m->ReadForMapping(3 * 4096, buf.data(), buf.size()), 0u);

  // And through a MemoryManager, as mmap(2) and the loader use it.
  // On the sandbox's memory file, where the file's cached pages live.
  MemoryManager mm(MemoryFile::Sandbox(), std::make_unique<NullAddressSpace>(), 0x10000,
                   uintptr_t{1} << 40);
  constexpr uintptr_t kAddr = 0x10000000;
  MmapRequest req;
  req.addr = kAddr;
  req.length = 3 * 4096;
  req.prot = PROT_READ;
  req.flags = MAP_PRIVATE | MAP_FIXED;
  req.file = m;
  auto addr = mm.Mmap(req);
  ASSERT_OK(addr);
  ASSERT_EQ(*addr, kAddr);
  std::string mapped(3 * 4096, 'x');
  ASSERT_OK(mm.CopyIn(kAddr, mapped.data(), mapped.size()));
  EXPECT_EQ(mapped.substr(0, kDataSize), data_);
  EXPECT_EQ(mapped.substr(kDataSize), std::string(3 * 4096 - kDataSize, '\0'));
  // A mapping at a file offset starts there.
  req.addr = kAddr + 0x100000;
  req.length = 4096;
  req.offset = 4096;
  ASSERT_OK(mm.Mmap(req));
  std::string page(4096, '\0');
  ASSERT_OK(mm.CopyIn(req.addr, page.data(), page.size()));
  EXPECT_EQ(page, data_.substr(4096, 4096));

  // Directories and symlinks have nothing to map.
  EXPECT_EQ(OpenFile("/mnt/dir")->GetMappable(), nullptr);
}

}  // namespace
}  // namespace husk::goferfs
