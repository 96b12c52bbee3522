// getdents64(2) in depth: large directories read through small buffers, d_type and d_ino
// against lstat, "." and "..", resuming at a d_off (lseek, telldir/seekdir), directories that
// change while they are read, the errors (EINVAL, ENOTDIR, EBADF for O_PATH, EFAULT, ENOENT
// for a removed directory), and /proc/self/fd listing exactly the open descriptors.
//
// Syscalls: getdents64 lseek openat mkdir rmdir unlink symlink link mknod mkfifo fcntl
// newfstatat close
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

// One struct linux_dirent64 record.
struct Entry {
  uint64_t ino = 0;
  int64_t off = 0;
  unsigned reclen = 0;
  unsigned char type = 0;
  std::string name;
};

// Decodes the `n` bytes that one getdents64 call returned.
std::vector<Entry> Decode(const char* buf, long n) {
  std::vector<Entry> out;
  for (long pos = 0; pos < n;) {
    Entry e;
    uint16_t reclen;
    memcpy(&e.ino, buf + pos, 8);
    memcpy(&e.off, buf + pos + 8, 8);
    memcpy(&reclen, buf + pos + 16, 2);
    e.reclen = reclen;
    e.type = static_cast<unsigned char>(buf[pos + 18]);
    e.name = std::string(buf + pos + 19, strnlen(buf + pos + 19, reclen - 19));
    out.push_back(e);
    if (reclen == 0) break;  // A broken record; the caller's checks fail on it.
    pos += reclen;
  }
  return out;
}

// One getdents64 call with a `size`-byte buffer; returns its result and appends the records.
long ReadOnce(int fd, size_t size, std::vector<Entry>* out) {
  alignas(8) static char buf[65536];
  long n = syscall(SYS_getdents64, fd, buf, size);
  if (n > 0) {
    for (Entry& e : Decode(buf, n)) out->push_back(std::move(e));
  }
  return n;
}

// Every remaining record of `fd`, read `size` bytes at a time.
std::vector<Entry> ReadAllEntries(int fd, size_t size = 4096) {
  std::vector<Entry> out;
  for (int calls = 0; calls < 100000; ++calls) {
    long n = ReadOnce(fd, size, &out);
    if (n == 0) return out;
    if (n < 0) {
      ADD_FAILURE() << "getdents64: " << ErrnoName(errno);
      return out;
    }
  }
  ADD_FAILURE() << "getdents64 never reached the end";
  return out;
}

// How many times each name was returned.
std::map<std::string, int> Count(const std::vector<Entry>& entries) {
  std::map<std::string, int> out;
  for (const Entry& e : entries) ++out[e.name];
  return out;
}

class GetdentsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }
  std::string P(const std::string& name) const { return dir_.Join(name); }
  Fd OpenDir(const std::string& path) const {
    return Fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  void MakeFiles(int count, const std::string& prefix = "entry-") {
    for (int i = 0; i < count; ++i) {
      Fd f(open(P(prefix + std::to_string(i)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      ASSERT_TRUE(f.valid()) << ErrnoName(errno);
    }
  }

  TempDir dir_;
};

TEST_F(GetdentsTest, ThousandEntriesEachReturnedOnceAcrossSmallBuffers) {
  MakeFiles(1000);
  Fd fd = OpenDir(dir_.path());
  ASSERT_TRUE(fd.valid());
  // 64 bytes hold one or two of these records; the others hold a few to many.
  for (size_t size : {64u, 100u, 512u, 4096u, 65536u}) {
    ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
    std::map<std::string, int> counts = Count(ReadAllEntries(fd.get(), size));
    EXPECT_EQ(counts.size(), 1002u) << "buffer " << size;
    for (const auto& [name, n] : counts) EXPECT_EQ(n, 1) << name << " with buffer " << size;
    for (int i = 0; i < 1000; ++i) {
      EXPECT_EQ(counts.count("entry-" + std::to_string(i)), 1u) << "buffer " << size;
    }
  }
}

TEST_F(GetdentsTest, RecordsAreAlignedTerminatedAndFillNoMoreThanAsked) {
  MakeFiles(40);
  ASSERT_OK(mkdir(P(std::string(255, 'n')).c_str(), 0755));  // The longest legal name.
  Fd fd = OpenDir(dir_.path());
  ASSERT_TRUE(fd.valid());
  alignas(8) char buf[1024];
  memset(buf, 0x5a, sizeof(buf));
  size_t total = 0;
  for (;;) {
    long n = syscall(SYS_getdents64, fd.get(), buf, 700);
    ASSERT_GE(n, 0) << ErrnoName(errno);
    if (n == 0) break;
    ASSERT_LE(n, 700);
    EXPECT_EQ(static_cast<unsigned char>(buf[700]), 0x5a) << "wrote past the buffer";
    long pos = 0;
    for (const Entry& e : Decode(buf, n)) {
      EXPECT_EQ(e.reclen % 8, 0u) << e.name;
      // The name and its NUL fit in the record.
      EXPECT_LE(19 + e.name.size() + 1, e.reclen) << e.name;
      EXPECT_EQ(buf[pos + 19 + e.name.size()], '\0');
      pos += e.reclen;
      ++total;
    }
    EXPECT_EQ(pos, n);  // The records exactly fill what was returned.
  }
  EXPECT_EQ(total, 43u);
}

TEST_F(GetdentsTest, TypeMatchesLstat) {
  ASSERT_TRUE(WriteFile(P("reg"), "x"));
  ASSERT_OK(mkdir(P("dir").c_str(), 0755));
  ASSERT_OK(symlink("reg", P("lnk").c_str()));
  ASSERT_OK(symlink("missing", P("dangling").c_str()));
  ASSERT_OK(mkfifo(P("fifo").c_str(), 0644));
  // A socket inode needs no privilege and no bound socket: mknod(2) makes one.
  ASSERT_OK(mknod(P("sock").c_str(), S_IFSOCK | 0644, 0));

  Fd fd = OpenDir(dir_.path());
  ASSERT_TRUE(fd.valid());
  std::map<std::string, unsigned> types;
  for (const Entry& e : ReadAllEntries(fd.get())) types[e.name] = e.type;
  std::map<std::string, unsigned> want = {{".", DT_DIR},     {"..", DT_DIR},   {"reg", DT_REG},
                                          {"dir", DT_DIR},   {"lnk", DT_LNK},  {"dangling", DT_LNK},
                                          {"fifo", DT_FIFO}, {"sock", DT_SOCK}};
  EXPECT_EQ(types, want);
  for (const auto& [name, type] : types) {
    struct stat st {};
    ASSERT_OK(lstat(P(name).c_str(), &st));
    EXPECT_EQ(type, IFTODT(st.st_mode)) << name;
  }
}

TEST_F(GetdentsTest, InodeNumbersMatchStat) {
  ASSERT_OK(mkdir(P("sub").c_str(), 0755));
  ASSERT_TRUE(WriteFile(P("sub/file"), "x"));
  ASSERT_OK(mkdir(P("sub/child").c_str(), 0755));
  ASSERT_OK(symlink("file", P("sub/link").c_str()));
  ASSERT_TRUE(WriteFile(P("sub/hard1"), "y"));
  ASSERT_OK(link(P("sub/hard1").c_str(), P("sub/hard2").c_str()));
  Fd fd = OpenDir(P("sub"));
  ASSERT_TRUE(fd.valid());
  std::map<std::string, uint64_t> inos;
  for (const Entry& e : ReadAllEntries(fd.get())) inos[e.name] = e.ino;
  ASSERT_EQ(inos.size(), 7u);
  // "." is the directory itself and ".." its parent.
  std::map<std::string, std::string> paths = {{".", P("sub")},          {"..", dir_.path()},
                                              {"file", P("sub/file")},  {"child", P("sub/child")},
                                              {"link", P("sub/link")},  {"hard1", P("sub/hard1")},
                                              {"hard2", P("sub/hard2")}};
  // overlayfs whose layers are on different filesystems (and without xino) gives directories
  // inode numbers of its own while d_ino is the layer's (Documentation/filesystems/
  // overlayfs.rst): there only non-directories are compared.
  struct statfs sfs {};
  ASSERT_OK(statfs(P("sub").c_str(), &sfs));
  const bool overlay = sfs.f_type == OVERLAYFS_SUPER_MAGIC;
  for (const auto& [name, path] : paths) {
    struct stat st {};
    ASSERT_OK(lstat(path.c_str(), &st));
    if (overlay && S_ISDIR(st.st_mode)) continue;
    EXPECT_EQ(inos[name], st.st_ino) << name;
  }
  EXPECT_EQ(inos["hard1"], inos["hard2"]);
  EXPECT_NE(inos["file"], inos["link"]);
}

TEST_F(GetdentsTest, EmptyDirectoryHasOnlyDotAndDotDot) {
  ASSERT_OK(mkdir(P("empty").c_str(), 0755));
  Fd fd = OpenDir(P("empty"));
  ASSERT_TRUE(fd.valid());
  std::vector<Entry> entries = ReadAllEntries(fd.get());
  ASSERT_EQ(entries.size(), 2u);
  std::set<std::string> names = {entries[0].name, entries[1].name};
  EXPECT_EQ(names, (std::set<std::string>{".", ".."}));
  for (const Entry& e : entries) EXPECT_EQ(e.type, DT_DIR) << e.name;
  // Reading again at the end keeps returning 0.
  alignas(8) char buf[256];
  EXPECT_EQ(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)), 0);
  EXPECT_EQ(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)), 0);
}

TEST_F(GetdentsTest, BufferTooSmallForTheNextRecordIsEinval) {
  ASSERT_OK(mkdir(P("empty").c_str(), 0755));
  Fd fd = OpenDir(P("empty"));
  ASSERT_TRUE(fd.valid());
  alignas(8) char buf[256];
  EXPECT_ERRNO(syscall(SYS_getdents64, fd.get(), buf, 0), EINVAL);
  EXPECT_ERRNO(syscall(SYS_getdents64, fd.get(), buf, 1), EINVAL);
  // "." and ".." each take 24 bytes (19 of header, the name, a NUL, padding to 8): 23 is
  // too small, 24 returns exactly one record.
  EXPECT_ERRNO(syscall(SYS_getdents64, fd.get(), buf, 23), EINVAL);
  EXPECT_EQ(syscall(SYS_getdents64, fd.get(), buf, 24), 24);
  EXPECT_EQ(syscall(SYS_getdents64, fd.get(), buf, 24), 24);
  EXPECT_EQ(syscall(SYS_getdents64, fd.get(), buf, 24), 0);
}

TEST_F(GetdentsTest, LongNameWaitsForABiggerBuffer) {
  const std::string long_name(255, 'L');
  ASSERT_TRUE(WriteFile(P(long_name), ""));
  Fd fd = OpenDir(dir_.path());
  ASSERT_TRUE(fd.valid());
  // 32 bytes fit "." and ".." one at a time but never the 280-byte record, so reading stops
  // with EINVAL when that record is next (the order of the three is the filesystem's).
  std::vector<Entry> got;
  long n;
  while ((n = ReadOnce(fd.get(), 32, &got)) > 0) {
  }
  const int err = errno;
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EINVAL) << ErrnoName(err);
  EXPECT_LT(got.size(), 3u);
  // Nothing was skipped: a big enough buffer gets the long record next, then the rest.
  std::vector<Entry> rest = ReadAllEntries(fd.get(), 512);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest[0].name, long_name);
  EXPECT_EQ(rest[0].reclen, 280u);  // 19 + 255 + 1, rounded up to 8.
  for (const Entry& e : rest) got.push_back(e);
  std::map<std::string, int> want = {{".", 1}, {"..", 1}, {long_name, 1}};
  EXPECT_EQ(Count(got), want);
}

TEST_F(GetdentsTest, NotADirectoryIsEnotdir) {
  ASSERT_TRUE(WriteFile(P("file"), "contents"));
  Fd file(open(P("file").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file.valid());
  alignas(8) char buf[1024];
  EXPECT_ERRNO(syscall(SYS_getdents64, file.get(), buf, sizeof(buf)), ENOTDIR);
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(syscall(SYS_getdents64, p.r.get(), buf, sizeof(buf)), ENOTDIR);
  // The file's offset was not touched.
  EXPECT_EQ(lseek(file.get(), 0, SEEK_CUR), 0);
}

TEST_F(GetdentsTest, OPathDescriptorIsEbadf) {
  Fd path(open(dir_.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(path.valid()) << ErrnoName(errno);
  alignas(8) char buf[1024];
  EXPECT_ERRNO(syscall(SYS_getdents64, path.get(), buf, sizeof(buf)), EBADF);
  EXPECT_ERRNO(syscall(SYS_getdents64, -1, buf, sizeof(buf)), EBADF);
}

TEST_F(GetdentsTest, UnwritableBufferIsEfault) {
  Fd fd = OpenDir(dir_.path());
  ASSERT_TRUE(fd.valid());
  EXPECT_ERRNO(syscall(SYS_getdents64, fd.get(), nullptr, 4096), EFAULT);
  // Nothing was consumed by the failed call.
  EXPECT_EQ(ReadAllEntries(fd.get()).size(), 2u);
}

TEST_F(GetdentsTest, RemovedDirectoryIsEnoent) {
  ASSERT_OK(mkdir(P("gone").c_str(), 0755));
  Fd fd = OpenDir(P("gone"));
  ASSERT_TRUE(fd.valid());
  ASSERT_OK(rmdir(P("gone").c_str()));
  alignas(8) char buf[1024];
  EXPECT_ERRNO(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)), ENOENT);
}

TEST_F(GetdentsTest, LseekToZeroRestarts) {
  MakeFiles(100);
  Fd fd = OpenDir(dir_.path());
  ASSERT_TRUE(fd.valid());
  std::vector<Entry> first;
  ASSERT_GT(ReadOnce(fd.get(), 256, &first), 0);
  ASSERT_GT(ReadOnce(fd.get(), 256, &first), 0);
  ASSERT_LT(first.size(), 102u);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  std::vector<Entry> all = ReadAllEntries(fd.get(), 256);
  EXPECT_EQ(Count(all).size(), 102u);
  EXPECT_EQ(all.size(), 102u);
  // The restart gives the same order as the first pass.
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(all[i].name, first[i].name) << i;
}

TEST_F(GetdentsTest, SeekingToADoffResumesAfterThatEntry) {
  MakeFiles(200);
  Fd fd = OpenDir(dir_.path());
  ASSERT_TRUE(fd.valid());
  std::vector<Entry> all = ReadAllEntries(fd.get(), 4096);
  ASSERT_EQ(all.size(), 202u);
  // d_off is the position of the next record: seeking there continues after the entry.
  for (size_t k : {size_t{0}, size_t{1}, size_t{57}, size_t{150}, size_t{200}}) {
    ASSERT_EQ(lseek(fd.get(), all[k].off, SEEK_SET), all[k].off) << ErrnoName(errno);
    std::vector<Entry> rest = ReadAllEntries(fd.get(), 512);
    ASSERT_EQ(rest.size(), all.size() - k - 1) << "after entry " << k;
    for (size_t i = 0; i < rest.size(); ++i) {
      EXPECT_EQ(rest[i].name, all[k + 1 + i].name) << "after entry " << k;
    }
  }
  // The last record's d_off is the end: nothing follows it.
  ASSERT_EQ(lseek(fd.get(), all.back().off, SEEK_SET), all.back().off);
  alignas(8) char buf[512];
  EXPECT_EQ(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)), 0);
}

TEST_F(GetdentsTest, TelldirSeekdirResume) {
  MakeFiles(120);
  DIR* d = opendir(dir_.path().c_str());
  ASSERT_NE(d, nullptr);
  std::vector<std::string> names;
  std::vector<long> positions;  // positions[i]: telldir() before reading names[i].
  for (;;) {
    long pos = telldir(d);
    errno = 0;
    dirent* e = readdir(d);
    if (e == nullptr) {
      EXPECT_EQ(errno, 0) << ErrnoName(errno);
      break;
    }
    positions.push_back(pos);
    names.push_back(e->d_name);
  }
  ASSERT_EQ(names.size(), 122u);
  for (size_t k : {size_t{0}, size_t{5}, size_t{64}, size_t{121}}) {
    seekdir(d, positions[k]);
    std::vector<std::string> rest;
    while (dirent* e = readdir(d)) rest.push_back(e->d_name);
    ASSERT_EQ(rest.size(), names.size() - k) << "from entry " << k;
    for (size_t i = 0; i < rest.size(); ++i) EXPECT_EQ(rest[i], names[k + i]);
  }
  rewinddir(d);
  dirent* first = readdir(d);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(std::string(first->d_name), names[0]);
  closedir(d);
}

TEST_F(GetdentsTest, ChangesDuringIterationNeverDuplicateSurvivors) {
  MakeFiles(300, "old-");
  Fd fd = OpenDir(dir_.path());
  ASSERT_TRUE(fd.valid());
  std::vector<Entry> seen;
  for (int i = 0; i < 10; ++i) ASSERT_GT(ReadOnce(fd.get(), 256, &seen), 0);
  // Half of the old names go (some already read, some not) and new ones arrive.
  std::set<std::string> removed;
  for (int i = 0; i < 300; i += 2) {
    std::string name = "old-" + std::to_string(i);
    ASSERT_OK(unlink(P(name).c_str()));
    removed.insert(name);
  }
  MakeFiles(300, "new-");
  for (const Entry& e : ReadAllEntries(fd.get(), 256)) seen.push_back(e);
  std::map<std::string, int> counts = Count(seen);
  for (const auto& [name, n] : counts) EXPECT_EQ(n, 1) << name << " returned twice";
  // Every name that existed throughout is returned, exactly once.
  for (int i = 1; i < 300; i += 2) {
    EXPECT_EQ(counts["old-" + std::to_string(i)], 1) << "old-" << i;
  }
  EXPECT_EQ(counts["."], 1);
  EXPECT_EQ(counts[".."], 1);
  // Anything else returned is a removed old name or a new one.
  for (const auto& [name, n] : counts) {
    if (name == "." || name == ".." || name.rfind("new-", 0) == 0 || removed.count(name)) continue;
    EXPECT_EQ(name.rfind("old-", 0), 0u) << name;
  }
}

TEST_F(GetdentsTest, ProcSelfFdListsExactlyTheOpenDescriptors) {
  Fd extra1(open("/dev/null", O_RDONLY | O_CLOEXEC));
  Fd extra2(fcntl(extra1.get(), F_DUPFD_CLOEXEC, 200));
  ASSERT_TRUE(extra1.valid() && extra2.valid());
  Fd fd = OpenDir("/proc/self/fd");
  ASSERT_TRUE(fd.valid()) << ErrnoName(errno);
  std::set<int> listed;
  for (const Entry& e : ReadAllEntries(fd.get(), 128)) {
    if (e.name == "." || e.name == "..") {
      EXPECT_EQ(e.type, DT_DIR);
      continue;
    }
    EXPECT_EQ(e.type, DT_LNK) << e.name;
    listed.insert(std::stoi(e.name));
  }
  std::set<int> open_fds;
  for (int i = 0; i < 1024; ++i) {
    if (fcntl(i, F_GETFD) != -1) open_fds.insert(i);
  }
  EXPECT_EQ(listed, open_fds);
  EXPECT_TRUE(listed.count(fd.get()));
  EXPECT_TRUE(listed.count(extra2.get()));
  // A closed descriptor disappears from a fresh listing.
  int closed = extra2.get();
  extra2.Reset();
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  std::set<std::string> names;
  for (const Entry& e : ReadAllEntries(fd.get())) names.insert(e.name);
  EXPECT_FALSE(names.count(std::to_string(closed)));
  EXPECT_TRUE(names.count(std::to_string(extra1.get())));
}

}  // namespace
}  // namespace husk_test
