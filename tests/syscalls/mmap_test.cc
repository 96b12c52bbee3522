// Conformance: mmap, munmap, mprotect, madvise(MADV_DONTNEED), mremap, brk, and the
// /proc/self/maps view of them. Invalid memory is never touched directly: EFAULT is observed
// by handing the bad buffer to read(2)/write(2) on a regular file.
// Relies on, beyond the start-up set in test_util.h: mmap munmap mprotect madvise(MADV_DONTNEED)
// mremap brk pwrite64 readlink, and /proc/self/maps; shm_open and sem_open (files in
// /dev/shm), fork and futex for the shared-memory cases.
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

struct MapsEntry {
  uintptr_t start = 0, end = 0;
  std::string perms;
  uint64_t offset = 0;
  std::string path;
};

std::vector<MapsEntry> ReadMaps() {
  std::vector<MapsEntry> out;
  std::istringstream in(ReadFile("/proc/self/maps"));
  std::string line;
  while (std::getline(in, line)) {
    // "start-end perms offset dev inode   path"
    MapsEntry e;
    char perms[8] = {};
    unsigned long long start, end, offset, inode;
    char dev[16] = {};
    int path_at = 0;
    if (sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %llu %n", &start, &end, perms, &offset, dev,
               &inode, &path_at) < 6) {
      continue;
    }
    e.start = start;
    e.end = end;
    e.perms = perms;
    e.offset = offset;
    if (path_at > 0 && static_cast<size_t>(path_at) <= line.size()) e.path = line.substr(path_at);
    out.push_back(e);
  }
  return out;
}

// The maps entry that starts exactly at `p`, or an empty one.
MapsEntry FindMapping(const void* p) {
  for (const auto& e : ReadMaps()) {
    if (e.start == reinterpret_cast<uintptr_t>(p)) return e;
  }
  return MapsEntry{};
}

class MmapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    sink_.Reset(open(dir_.Join("sink").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(sink_.valid());
  }
  void TearDown() override {
    for (auto& [p, len] : maps_) munmap(p, len);
  }
  // An anonymous private mapping, unmapped at the end of the test.
  char* Map(size_t len, int prot = PROT_READ | PROT_WRITE) {
    void* p = mmap(nullptr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED) << ErrnoName(errno);
    if (p == MAP_FAILED) return nullptr;
    maps_.push_back({p, len});
    return static_cast<char*>(p);
  }
  // Writes `len` bytes from `p` to a regular file: -1/EFAULT if `p` is not readable.
  ssize_t WriteFrom(const void* p, size_t len) { return pwrite(sink_.get(), p, len, 0); }
  // Fills a file with `len` bytes of a known pattern and returns it open O_RDWR.
  Fd PatternFile(size_t len) {
    std::string data(len, '\0');
    for (size_t i = 0; i < len; ++i) data[i] = static_cast<char>('a' + i % 26);
    EXPECT_TRUE(WriteFile(dir_.Join("pattern"), data));
    return Fd(open(dir_.Join("pattern").c_str(), O_RDWR | O_CLOEXEC));
  }

  TempDir dir_;
  Fd sink_;
  std::vector<std::pair<void*, size_t>> maps_;
};

TEST_F(MmapTest, AnonymousMappingIsZeroFilledAndWritable) {
  char* p = Map(4 * kPage);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kPage, 0u);
  for (size_t i = 0; i < 4 * kPage; ++i) ASSERT_EQ(p[i], 0) << "at " << i;
  memset(p, 0x5a, 4 * kPage);
  EXPECT_EQ(p[4 * kPage - 1], 0x5a);
  EXPECT_EQ(WriteFrom(p, 4 * kPage), static_cast<ssize_t>(4 * kPage));
}

TEST_F(MmapTest, BadArgumentsFailWithEINVAL) {
  errno = 0;
  EXPECT_EQ(mmap(nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL) << "zero length: " << ErrnoName(errno);
  char* p = Map(2 * kPage);
  ASSERT_NE(p, nullptr);
  errno = 0;
  EXPECT_EQ(mmap(p + 1, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            MAP_FAILED);
  EXPECT_EQ(errno, EINVAL) << "unaligned MAP_FIXED: " << ErrnoName(errno);
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_ANONYMOUS, -1, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL) << "neither MAP_SHARED nor MAP_PRIVATE: " << ErrnoName(errno);
}

TEST_F(MmapTest, FileMappingArgumentErrors) {
  Fd fd = PatternFile(2 * kPage);
  ASSERT_TRUE(fd.valid());
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, -1, 0), MAP_FAILED);
  EXPECT_EQ(errno, EBADF) << "no fd: " << ErrnoName(errno);
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, fd.get(), 1), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL) << "unaligned offset: " << ErrnoName(errno);
  Fd wo(open(dir_.Join("pattern").c_str(), O_WRONLY | O_CLOEXEC));
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, wo.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EACCES) << "write-only fd: " << ErrnoName(errno);
  Fd ro(open(dir_.Join("pattern").c_str(), O_RDONLY | O_CLOEXEC));
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, ro.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EACCES) << "shared writable on read-only fd: " << ErrnoName(errno);
  // A private writable mapping of a read-only fd is fine: writes never reach the file.
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro.get(), 0);
  ASSERT_NE(p, MAP_FAILED) << ErrnoName(errno);
  munmap(p, kPage);
}

TEST_F(MmapTest, MapFixedReplacesExistingMapping) {
  char* p = Map(3 * kPage);
  ASSERT_NE(p, nullptr);
  memset(p, 'x', 3 * kPage);
  void* q = mmap(p + kPage, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0);
  ASSERT_EQ(q, p + kPage) << ErrnoName(errno);
  EXPECT_EQ(p[0], 'x');
  EXPECT_EQ(p[kPage], 0);  // Fresh zero page.
  EXPECT_EQ(p[2 * kPage], 'x');
}

TEST_F(MmapTest, MapFixedNoreplaceOverExistingFailsWithEEXIST) {
  char* p = Map(2 * kPage);
  ASSERT_NE(p, nullptr);
  errno = 0;
  EXPECT_EQ(
      mmap(p + kPage, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0),
      MAP_FAILED);
  EXPECT_EQ(errno, EEXIST) << ErrnoName(errno);
}

TEST_F(MmapTest, WriteFromUnmappedBufferFailsWithEFAULT) {
  char* p = Map(3 * kPage);
  ASSERT_NE(p, nullptr);
  ASSERT_OK(munmap(p + kPage, kPage));  // Punch a hole in the middle.
  EXPECT_EQ(WriteFrom(p, kPage), static_cast<ssize_t>(kPage));
  EXPECT_ERRNO(WriteFrom(p + kPage, kPage), EFAULT);
  EXPECT_EQ(WriteFrom(p + 2 * kPage, kPage), static_cast<ssize_t>(kPage));
}

TEST_F(MmapTest, WriteFromProtNoneBufferFailsWithEFAULT) {
  char* p = Map(kPage, PROT_NONE);
  ASSERT_NE(p, nullptr);
  EXPECT_ERRNO(WriteFrom(p, kPage), EFAULT);
}

TEST_F(MmapTest, ReadIntoReadOnlyMemoryFailsWithEFAULT) {
  char* p = Map(kPage);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(WriteFrom("data", 4), 4);
  ASSERT_OK(mprotect(p, kPage, PROT_READ));
  EXPECT_ERRNO(pread(sink_.get(), p, 4, 0), EFAULT);
  ASSERT_OK(mprotect(p, kPage, PROT_READ | PROT_WRITE));
  EXPECT_EQ(pread(sink_.get(), p, 4, 0), 4);
  EXPECT_EQ(std::string(p, 4), "data");
}

TEST_F(MmapTest, MprotectErrors) {
  char* p = Map(2 * kPage);
  ASSERT_NE(p, nullptr);
  EXPECT_ERRNO(mprotect(p + 1, kPage, PROT_READ), EINVAL);       // Unaligned.
  EXPECT_ERRNO(mprotect(p, kPage, PROT_READ | 0x1000), EINVAL);  // Unknown bit.
  ASSERT_OK(munmap(p + kPage, kPage));
  EXPECT_ERRNO(mprotect(p, 2 * kPage, PROT_READ), ENOMEM);  // Range has a hole.
}

TEST_F(MmapTest, MunmapErrorsAndUnmappedRange) {
  char* p = Map(2 * kPage);
  ASSERT_NE(p, nullptr);
  EXPECT_ERRNO(munmap(p + 1, kPage), EINVAL);
  EXPECT_ERRNO(munmap(p, 0), EINVAL);
  ASSERT_OK(munmap(p, 2 * kPage));
  EXPECT_EQ(munmap(p, 2 * kPage), 0);  // Unmapping nothing is not an error.
}

TEST_F(MmapTest, PrivateFileMappingSeesFileAndCopiesOnWrite) {
  Fd fd = PatternFile(2 * kPage);
  ASSERT_TRUE(fd.valid());
  void* v = mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  ASSERT_NE(v, MAP_FAILED) << ErrnoName(errno);
  maps_.push_back({v, 2 * kPage});
  char* p = static_cast<char*>(v);
  EXPECT_EQ(std::string(p, 4), "abcd");
  EXPECT_EQ(p[kPage + 1], static_cast<char>('a' + (kPage + 1) % 26));
  p[0] = 'Z';
  char c = 0;
  ASSERT_EQ(pread(fd.get(), &c, 1, 0), 1);
  EXPECT_EQ(c, 'a');  // The file is unchanged.
  EXPECT_EQ(p[0], 'Z');
}

TEST_F(MmapTest, SharedFileMappingWritesThrough) {
  Fd fd = PatternFile(kPage);
  ASSERT_TRUE(fd.valid());
  void* v = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(v, MAP_FAILED) << ErrnoName(errno);
  maps_.push_back({v, kPage});
  char* p = static_cast<char*>(v);
  p[1] = 'Q';
  char c = 0;
  ASSERT_EQ(pread(fd.get(), &c, 1, 1), 1);
  EXPECT_EQ(c, 'Q');  // One page cache: visible to read(2) without msync.
  ASSERT_EQ(pwrite(fd.get(), "W", 1, 2), 1);
  EXPECT_EQ(p[2], 'W');
}

TEST_F(MmapTest, FileMappingTailBeyondEofIsZero) {
  Fd fd = PatternFile(100);
  ASSERT_TRUE(fd.valid());
  void* v = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  ASSERT_NE(v, MAP_FAILED) << ErrnoName(errno);
  maps_.push_back({v, kPage});
  const char* p = static_cast<const char*>(v);
  EXPECT_EQ(p[99], static_cast<char>('a' + 99 % 26));
  for (size_t i = 100; i < kPage; ++i) ASSERT_EQ(p[i], 0) << "at " << i;
}

TEST_F(MmapTest, MadviseDontneedZeroesPrivateAnonymousPages) {
  char* p = Map(2 * kPage);
  ASSERT_NE(p, nullptr);
  memset(p, 'x', 2 * kPage);
  ASSERT_OK(madvise(p, kPage, MADV_DONTNEED));
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[kPage - 1], 0);
  EXPECT_EQ(p[kPage], 'x');  // Only the advised range.
}

TEST_F(MmapTest, MadviseDontneedOnPrivateFileMappingRereadsFile) {
  Fd fd = PatternFile(kPage);
  ASSERT_TRUE(fd.valid());
  void* v = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  ASSERT_NE(v, MAP_FAILED) << ErrnoName(errno);
  maps_.push_back({v, kPage});
  char* p = static_cast<char*>(v);
  p[0] = 'Z';
  ASSERT_OK(madvise(p, kPage, MADV_DONTNEED));
  EXPECT_EQ(p[0], 'a');  // The private copy is dropped; the file shows through again.
}

TEST_F(MmapTest, MadviseErrors) {
  char* p = Map(kPage);
  ASSERT_NE(p, nullptr);
  EXPECT_ERRNO(madvise(p + 1, kPage, MADV_DONTNEED), EINVAL);
  EXPECT_ERRNO(madvise(p, kPage, 12345), EINVAL);
}

TEST_F(MmapTest, BrkGrowsAndShrinks) {
  const uintptr_t cur = static_cast<uintptr_t>(syscall(SYS_brk, 0));
  ASSERT_NE(cur, 0u);
  const uintptr_t first_new_page = (cur + kPage - 1) & ~(kPage - 1);
  const uintptr_t want = first_new_page + 4 * kPage;
  // No gtest assertions (which may malloc, and malloc may move the break) until the break is
  // back where it was.
  const uintptr_t grown = static_cast<uintptr_t>(syscall(SYS_brk, want));
  bool zero = true;
  ssize_t written = -1;
  if (grown == want) {
    char* p = reinterpret_cast<char*>(first_new_page);
    for (size_t i = 0; i < 4 * kPage; ++i) zero = zero && p[i] == 0;
    memset(p, 'b', 4 * kPage);
    written = WriteFrom(p, 4 * kPage);
  }
  const uintptr_t shrunk = static_cast<uintptr_t>(syscall(SYS_brk, cur));
  EXPECT_EQ(grown, want);
  EXPECT_TRUE(zero);
  EXPECT_EQ(written, static_cast<ssize_t>(4 * kPage));
  EXPECT_EQ(shrunk, cur);
  // The pages above the break are gone again.
  EXPECT_ERRNO(WriteFrom(reinterpret_cast<char*>(first_new_page) + kPage, 1), EFAULT);
}

TEST_F(MmapTest, BrkBelowStartReturnsCurrentBreak) {
  const long cur = syscall(SYS_brk, 0);
  // brk(2): the raw syscall never fails with -1; it returns the unchanged break.
  EXPECT_EQ(syscall(SYS_brk, 1), cur);
  EXPECT_EQ(syscall(SYS_brk, 0), cur);
}

TEST_F(MmapTest, MremapGrowsAndKeepsContents) {
  char* p = Map(kPage);
  ASSERT_NE(p, nullptr);
  memset(p, 'm', kPage);
  void* q = mremap(p, kPage, 4 * kPage, MREMAP_MAYMOVE);
  if (q == MAP_FAILED && errno == ENOSYS) GTEST_SKIP() << "mremap is not implemented (ENOSYS)";
  ASSERT_NE(q, MAP_FAILED) << ErrnoName(errno);
  maps_[0] = {q, 4 * kPage};
  char* n = static_cast<char*>(q);
  EXPECT_EQ(n[0], 'm');
  EXPECT_EQ(n[kPage - 1], 'm');
  EXPECT_EQ(n[kPage], 0);
  n[4 * kPage - 1] = 1;
}

TEST_F(MmapTest, MremapShrinksInPlace) {
  char* p = Map(4 * kPage);
  ASSERT_NE(p, nullptr);
  void* q = mremap(p, 4 * kPage, kPage, 0);
  if (q == MAP_FAILED && errno == ENOSYS) GTEST_SKIP() << "mremap is not implemented (ENOSYS)";
  EXPECT_EQ(q, p) << ErrnoName(errno);
  EXPECT_ERRNO(WriteFrom(p + kPage, 1), EFAULT);
}

TEST_F(MmapTest, MremapErrors) {
  char* p = Map(2 * kPage);
  ASSERT_NE(p, nullptr);
  errno = 0;
  void* q = mremap(p + 1, kPage, 2 * kPage, MREMAP_MAYMOVE);
  if (q == MAP_FAILED && errno == ENOSYS) GTEST_SKIP() << "mremap is not implemented (ENOSYS)";
  EXPECT_EQ(q, MAP_FAILED);
  EXPECT_EQ(errno, EINVAL) << "unaligned: " << ErrnoName(errno);
  errno = 0;
  EXPECT_EQ(mremap(p, kPage, 0, MREMAP_MAYMOVE), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL) << "zero new size: " << ErrnoName(errno);
  errno = 0;
  EXPECT_EQ(mremap(p, kPage, kPage, MREMAP_FIXED, p + kPage), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL) << "MREMAP_FIXED without MREMAP_MAYMOVE: " << ErrnoName(errno);
}

TEST_F(MmapTest, ProcSelfMapsShowsAnonymousMappingsAndPermissions) {
  // PROT_NONE guard pages on both sides keep the kernel from merging with a neighbour.
  char* g = Map(5 * kPage, PROT_NONE);
  ASSERT_NE(g, nullptr);
  char* p = g + kPage;
  ASSERT_EQ(
      mmap(p, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
      p);
  ASSERT_OK(mprotect(p + kPage, kPage, PROT_READ));
  auto at = [](const char* a) { return reinterpret_cast<uintptr_t>(a); };
  MapsEntry e = FindMapping(p);
  EXPECT_EQ(e.end, at(p + kPage));
  EXPECT_EQ(e.perms, "rw-p");
  EXPECT_EQ(e.path, "");
  e = FindMapping(p + kPage);
  EXPECT_EQ(e.end, at(p + 2 * kPage));
  EXPECT_EQ(e.perms, "r--p");
  e = FindMapping(p + 2 * kPage);
  EXPECT_EQ(e.end, at(p + 3 * kPage));
  EXPECT_EQ(e.perms, "rw-p");
  e = FindMapping(g);
  EXPECT_EQ(e.end, at(p));
  EXPECT_EQ(e.perms, "---p");
}

TEST_F(MmapTest, ProcSelfMapsShowsFileMappingPathAndOffset) {
  Fd fd = PatternFile(3 * kPage);
  ASSERT_TRUE(fd.valid());
  void* v = mmap(nullptr, 2 * kPage, PROT_READ, MAP_SHARED, fd.get(), static_cast<off_t>(kPage));
  ASSERT_NE(v, MAP_FAILED) << ErrnoName(errno);
  maps_.push_back({v, 2 * kPage});
  char real[PATH_MAX];
  ASSERT_NE(realpath(dir_.Join("pattern").c_str(), real), nullptr);
  MapsEntry e = FindMapping(v);
  EXPECT_EQ(e.end, reinterpret_cast<uintptr_t>(v) + 2 * kPage);
  EXPECT_EQ(e.perms, "r--s");
  EXPECT_EQ(e.offset, kPage);
  EXPECT_EQ(e.path, real);
}

// MAP_SHARED|MAP_ANONYMOUS is one object for the parent and its forks: pages touched
// before the fork, and pages first touched after it by either side, are the same memory.
TEST(SharedAnonymousTest, ForkedProcessesShareEveryPage) {
  constexpr size_t kLen = 4 * 4096;
  auto* s = static_cast<volatile int*>(
      mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(s, MAP_FAILED);
  s[0] = 1;  // touched before the fork; the other pages are not
  EXPECT_EQ(InChild([&] {
              s[0] = s[0] + 1;
              s[1024] = 7;  // first touch of page 1, in the child
              return s[2048] == 9 ? 0 : 1;
            }),
            1);  // page 2 was not written yet by the parent
  EXPECT_EQ(s[0], 2);
  EXPECT_EQ(s[1024], 7);
  s[2048] = 9;  // first touch of page 2, in the parent
  EXPECT_EQ(InChild([&] { return s[2048] == 9 && s[1024] == 7 ? 0 : 1; }), 0);
  ASSERT_EQ(munmap(const_cast<int*>(s), kLen), 0);
}

// A file's shared mappings in two processes (each opened it itself) and
// read(2)/write(2) are one object: every write is seen by the others at once.
TEST_F(MmapTest, SharedFileMappingIsOneObjectBetweenProcesses) {
  Fd fd = PatternFile(2 * kPage);
  ASSERT_TRUE(fd.valid());
  auto* p = static_cast<volatile char*>(
      mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
  ASSERT_NE(p, MAP_FAILED) << ErrnoName(errno);
  maps_.push_back({const_cast<char*>(p), 2 * kPage});
  p[10] = 'P';  // before the child maps the file
  const std::string path = dir_.Join("pattern");
  EXPECT_EQ(InChild([&] {
              int cfd = open(path.c_str(), O_RDWR | O_CLOEXEC);
              if (cfd < 0) return 1;
              auto* q = static_cast<volatile char*>(
                  mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0));
              if (q == MAP_FAILED) return 2;
              if (q[10] != 'P') return 3;
              q[kPage + 5] = 'C';  // a page the parent has not touched
              return pwrite(cfd, "W", 1, 20) == 1 ? 0 : 4;
            }),
            0);
  EXPECT_EQ(p[kPage + 5], 'C');
  EXPECT_EQ(p[20], 'W');
  char c = 0;
  ASSERT_EQ(pread(fd.get(), &c, 1, kPage + 5), 1);
  EXPECT_EQ(c, 'C');
}

// Pages of a shared mapping wholly past the end of the file give SIGBUS
// (mmap(2)); once the file grows, the same addresses read its new bytes.
TEST_F(MmapTest, SharedFileMappingPastEndOfFileIsSigbus) {
  Fd fd = PatternFile(100);
  ASSERT_TRUE(fd.valid());
  auto* p = static_cast<volatile char*>(
      mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
  ASSERT_NE(p, MAP_FAILED) << ErrnoName(errno);
  maps_.push_back({const_cast<char*>(p), 2 * kPage});
  EXPECT_EQ(p[99], static_cast<char>('a' + 99 % 26));
  EXPECT_EQ(p[kPage - 1], 0);  // the rest of the last page reads zeros
  EXPECT_EQ(InChild([&] { return p[kPage] == 0 ? 0 : 1; }), -SIGBUS);
  ASSERT_OK(ftruncate(fd.get(), 2 * kPage));
  EXPECT_EQ(InChild([&] { return p[kPage] == 0 ? 0 : 1; }), 0);
}

// mprotect(2): EACCES for write access to a shared mapping of a file open
// read-only; a private mapping of it may become writable.
TEST_F(MmapTest, MprotectWriteOnSharedMappingOfReadOnlyFileIsEacces) {
  ASSERT_TRUE(PatternFile(kPage).valid());
  Fd ro(open(dir_.Join("pattern").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(ro.valid());
  void* shared = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, ro.get(), 0);
  ASSERT_NE(shared, MAP_FAILED) << ErrnoName(errno);
  maps_.push_back({shared, kPage});
  EXPECT_ERRNO(mprotect(shared, kPage, PROT_READ | PROT_WRITE), EACCES);
  void* priv = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, ro.get(), 0);
  ASSERT_NE(priv, MAP_FAILED) << ErrnoName(errno);
  maps_.push_back({priv, kPage});
  EXPECT_EQ(mprotect(priv, kPage, PROT_READ | PROT_WRITE), 0) << ErrnoName(errno);
}

// POSIX shared memory and named semaphores (glibc keeps both in /dev/shm):
// a segment written by one process is read by another, and a semaphore
// posted by the parent wakes a child blocked on it (a futex in the file).
TEST(PosixShmTest, SegmentAndNamedSemaphoreBetweenProcesses) {
  const std::string shm_name = "/husk-test-shm-" + std::to_string(getpid());
  const std::string sem_name = "/husk-test-sem-" + std::to_string(getpid());
  int fd = shm_open(shm_name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0) << ErrnoName(errno);
  ASSERT_OK(ftruncate(fd, 4096));
  auto* seg =
      static_cast<volatile int*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(seg, MAP_FAILED) << ErrnoName(errno);
  close(fd);
  sem_t* sem = sem_open(sem_name.c_str(), O_CREAT | O_EXCL, 0600, 0);
  ASSERT_NE(sem, SEM_FAILED) << ErrnoName(errno);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    timespec deadline{};
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    seg[0] = 1;  // about to wait
    if (sem_timedwait(sem, &deadline) != 0) _exit(1);
    _exit(seg[1] == 42 ? 0 : 2);
  }
  const int64_t end = NowMs() + 20000;
  while (seg[0] != 1 && NowMs() < end) usleep(1000);
  EXPECT_EQ(seg[0], 1);
  usleep(20000);  // most likely blocked in the wait by now (either way is correct)
  seg[1] = 42;
  ASSERT_OK(sem_post(sem));
  int status = Wait(pid);
  EXPECT_TRUE(ExitedWith(status, 0)) << Describe(status);
  // The names are files in /dev/shm until unlinked.
  struct stat st {};
  EXPECT_EQ(stat(("/dev/shm" + shm_name).c_str(), &st), 0) << ErrnoName(errno);
  EXPECT_EQ(st.st_size, 4096);
  ASSERT_OK(sem_close(sem));
  ASSERT_OK(sem_unlink(sem_name.c_str()));
  ASSERT_OK(shm_unlink(shm_name.c_str()));
  EXPECT_ERRNO(shm_open(shm_name.c_str(), O_RDWR, 0), ENOENT);
  munmap(const_cast<int*>(seg), 4096);
}

}  // namespace
}  // namespace husk_test
