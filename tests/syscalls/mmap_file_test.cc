// Conformance: mappings of regular files. A MAP_SHARED mapping and read(2)/write(2) are one
// page cache, so stores and writes see each other at once; MAP_PRIVATE copies a page on its first
// store and until then follows the file. Pages wholly past the end of the file raise SIGBUS
// (BUS_ADRERR, observed with a handler and sigsetjmp); ftruncate moves that line both ways. Also
// msync, mremap, mprotect, mincore and madvise(MADV_DONTNEED) on file mappings, and mmap's
// errors for the wrong kind of fd or access mode.
//
// Syscalls: mmap munmap msync mremap mprotect mincore madvise ftruncate pread64 pwrite64 open
// fstat rt_sigaction readlink fork wait4
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif

namespace husk_test {
namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
// A page count as a file offset.
off_t Off(size_t bytes) { return static_cast<off_t>(bytes); }

// What one guarded access saw: whether it raised SIGBUS, and the siginfo if so.
struct Fault {
  bool sigbus = false;
  int code = 0;
  void* addr = nullptr;
};

sigjmp_buf g_jump;
volatile sig_atomic_t g_code;
void* volatile g_addr;

void OnSigbus(int, siginfo_t* info, void*) {
  g_code = info->si_code;
  g_addr = info->si_addr;
  siglongjmp(g_jump, 1);
}

// Loads (or stores to) the byte at `p` with a SIGBUS handler installed; the handler jumps back
// here, so a fault is reported instead of killing the test.
Fault Touch(volatile char* p, bool store) {
  struct sigaction sa {};
  struct sigaction old {};
  sa.sa_sigaction = OnSigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  EXPECT_EQ(sigaction(SIGBUS, &sa, &old), 0);
  Fault f;
  if (sigsetjmp(g_jump, 1) == 0) {
    if (store) {
      *p = 'S';
    } else {
      (void)*p;
    }
  } else {
    f.sigbus = true;
    f.code = g_code;
    f.addr = g_addr;
  }
  sigaction(SIGBUS, &old, nullptr);
  return f;
}

char Pattern(size_t i) { return static_cast<char>('a' + i % 26); }

class MmapFileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }
  void TearDown() override {
    for (auto& [p, len] : maps_) munmap(p, len);
  }
  std::string P(const std::string& name) const { return dir_.Join(name); }
  // Creates `name` holding `len` bytes of Pattern() and returns it open with `flags`.
  Fd PatternFile(size_t len, int flags = O_RDWR, const std::string& name = "f") {
    std::string data(len, '\0');
    for (size_t i = 0; i < len; ++i) data[i] = Pattern(i);
    EXPECT_TRUE(WriteFile(P(name), data));
    return Fd(open(P(name).c_str(), flags | O_CLOEXEC));
  }
  // mmap that records the mapping for TearDown; nullptr (after a failure) if it failed.
  char* Map(size_t len, int prot, int flags, int fd, off_t off = 0) {
    void* p = mmap(nullptr, len, prot, flags, fd, off);
    EXPECT_NE(p, MAP_FAILED) << ErrnoName(errno);
    if (p == MAP_FAILED) return nullptr;
    maps_.push_back({p, len});
    return static_cast<char*>(p);
  }
  // Forgets a mapping the test unmapped or moved itself.
  void Forget(void* p) {
    for (auto& m : maps_) {
      if (m.first == p) m = {nullptr, 0};
    }
    std::erase_if(maps_, [](const auto& m) { return m.first == nullptr; });
  }
  std::string Pread(int fd, size_t len, off_t off) {
    std::string out(len, '\0');
    ssize_t n = pread(fd, out.data(), len, off);
    out.resize(n < 0 ? 0 : n);
    return out;
  }
  off_t Size(int fd) {
    struct stat st {};
    EXPECT_EQ(fstat(fd, &st), 0);
    return st.st_size;
  }

  TempDir dir_;
  std::vector<std::pair<void*, size_t>> maps_;
};

// write(2) and pwrite(2) after the mapping exists show through it at once, on every page.
TEST_F(MmapFileTest, WritesShowThroughASharedMapping) {
  Fd fd = PatternFile(3 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(3 * kPage, PROT_READ, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], 'a');
  ASSERT_EQ(write(fd.get(), "XYZ", 3), 3);  // at the file offset, 0
  EXPECT_EQ(std::string(p, 3), "XYZ");
  ASSERT_EQ(pwrite(fd.get(), "tail", 4, 3 * kPage - 4), 4);
  EXPECT_EQ(std::string(p + 3 * kPage - 4, 4), "tail");
  // Across a page boundary.
  ASSERT_EQ(pwrite(fd.get(), "border", 6, kPage - 3), 6);
  EXPECT_EQ(std::string(p + kPage - 3, 6), "border");
}

// Stores through a shared mapping are what pread(2) returns, from this fd or another open.
TEST_F(MmapFileTest, StoresThroughASharedMappingAreReadBack) {
  Fd fd = PatternFile(2 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  memset(p + kPage - 8, 'M', 16);
  EXPECT_EQ(Pread(fd.get(), 16, kPage - 8), std::string(16, 'M'));
  EXPECT_EQ(Pread(fd.get(), 1, kPage - 9), std::string(1, Pattern(kPage - 9)));
  Fd other(open(P("f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(other.valid());
  EXPECT_EQ(Pread(other.get(), 16, kPage - 8), std::string(16, 'M'));
  // The size is the file's: stores never change it.
  EXPECT_EQ(Size(fd.get()), static_cast<off_t>(2 * kPage));
}

// Two shared mappings of one file (one through a second open, at an offset) are the same bytes.
TEST_F(MmapFileTest, TwoSharedMappingsSeeEachOther) {
  Fd fd = PatternFile(3 * kPage);
  ASSERT_TRUE(fd.valid());
  Fd fd2(open(P("f").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd2.valid());
  char* a = Map(3 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  char* b = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd2.get(), Off(kPage));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(a, b);
  EXPECT_EQ(b[0], Pattern(kPage));
  a[kPage + 7] = '1';
  EXPECT_EQ(b[7], '1');
  b[kPage + 9] = '2';
  EXPECT_EQ(a[2 * kPage + 9], '2');
  char* c = Map(kPage, PROT_READ, MAP_SHARED, fd.get());
  ASSERT_NE(c, nullptr);
  a[0] = '3';
  EXPECT_EQ(c[0], '3');
}

// A MAP_PRIVATE store copies the page: neither the file nor a shared mapping sees it.
TEST_F(MmapFileTest, PrivateStoresDoNotReachTheFile) {
  Fd fd = PatternFile(2 * kPage);
  ASSERT_TRUE(fd.valid());
  char* priv = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get());
  char* shared = Map(2 * kPage, PROT_READ, MAP_SHARED, fd.get());
  ASSERT_NE(priv, nullptr);
  ASSERT_NE(shared, nullptr);
  memset(priv + kPage, 'P', kPage);
  EXPECT_EQ(shared[kPage], Pattern(kPage));
  EXPECT_EQ(Pread(fd.get(), 1, kPage + 100), std::string(1, Pattern(kPage + 100)));
  ASSERT_OK(munmap(priv, 2 * kPage));
  Forget(priv);
  // A fresh private mapping starts from the file again.
  char* again = Map(2 * kPage, PROT_READ, MAP_PRIVATE, fd.get());
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again[kPage], Pattern(kPage));
}

// Until it is stored to, a private page follows the file; after, it keeps its copy.
TEST_F(MmapFileTest, PrivateMappingFollowsTheFileUntilWritten) {
  Fd fd = PatternFile(2 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], 'a');  // page 0 read (not copied)
  p[kPage + 1] = 'C';    // page 1 copied
  ASSERT_EQ(pwrite(fd.get(), "00", 2, 0), 2);
  ASSERT_EQ(pwrite(fd.get(), "11", 2, kPage), 2);
  EXPECT_EQ(std::string(p, 2), "00");
  EXPECT_EQ(p[kPage], Pattern(kPage));  // the copy, not the file
  EXPECT_EQ(p[kPage + 1], 'C');
}

// A private mapping's copies are the process's own: a forked child's store is not seen.
TEST_F(MmapFileTest, PrivateCopiesAreNotSharedWithAChild) {
  Fd fd = PatternFile(kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get());
  char* s = Map(kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  ASSERT_NE(s, nullptr);
  p[0] = 'p';
  EXPECT_EQ(InChild([&] {
              if (p[0] != 'p') return 1;
              p[0] = 'c';
              s[1] = 'c';  // the shared one does reach the parent
              return 0;
            }),
            0);
  EXPECT_EQ(p[0], 'p');
  EXPECT_EQ(s[1], 'c');
  EXPECT_EQ(Pread(fd.get(), 1, 1), "c");
}

// Loading from a page wholly past the end of the file raises SIGBUS with BUS_ADRERR at the
// address; the rest of the last partial page reads as zeros.
TEST_F(MmapFileTest, LoadPastEndOfFileIsSigbus) {
  Fd fd = PatternFile(kPage + 10);
  ASSERT_TRUE(fd.valid());
  char* p = Map(3 * kPage, PROT_READ, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[kPage + 9], Pattern(kPage + 9));
  for (size_t i = kPage + 10; i < 2 * kPage; ++i) ASSERT_EQ(p[i], 0) << "at " << i;
  Fault f = Touch(p + 2 * kPage + 5, false);
  EXPECT_TRUE(f.sigbus);
  EXPECT_EQ(f.code, BUS_ADRERR);
  EXPECT_EQ(f.addr, p + 2 * kPage + 5);
  EXPECT_FALSE(Touch(p + kPage + 10, false).sigbus);
}

// Stores past the end of the file fault too, in private mappings as well as shared ones; stores
// into the partial last page are allowed and do not grow the file.
TEST_F(MmapFileTest, StorePastEndOfFileIsSigbusPrivateOrShared) {
  Fd fd = PatternFile(100);
  ASSERT_TRUE(fd.valid());
  char* s = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  char* p = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get());
  ASSERT_NE(s, nullptr);
  ASSERT_NE(p, nullptr);
  Fault f = Touch(s + kPage, true);
  EXPECT_TRUE(f.sigbus);
  EXPECT_EQ(f.addr, s + kPage);
  EXPECT_TRUE(Touch(p + kPage + 1, true).sigbus);
  EXPECT_TRUE(Touch(p + kPage + 1, false).sigbus);
  EXPECT_FALSE(Touch(s + 200, true).sigbus);
  EXPECT_EQ(s[200], 'S');
  EXPECT_EQ(Size(fd.get()), 100);
  EXPECT_EQ(Pread(fd.get(), 10, 200), "");
}

// A mapping may start wholly past the end of the file: mmap succeeds, access faults.
TEST_F(MmapFileTest, MappingAtAnOffsetPastEndOfFileFaultsOnAccess) {
  Fd fd = PatternFile(kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(kPage, PROT_READ, MAP_SHARED, fd.get(), Off(4 * kPage));
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(Touch(p, false).sigbus);
  ASSERT_OK(ftruncate(fd.get(), 5 * kPage));
  EXPECT_FALSE(Touch(p + kPage - 1, false).sigbus);
  EXPECT_EQ(p[0], 0);
}

// Growing the file makes the mapped pages past the old end usable: they read zeros, and stores
// reach the file.
TEST_F(MmapFileTest, FtruncateGrowingMakesNewPagesAccessible) {
  Fd fd = PatternFile(kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(4 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(Touch(p + 2 * kPage, false).sigbus);
  ASSERT_OK(ftruncate(fd.get(), 3 * kPage));
  EXPECT_FALSE(Touch(p + 2 * kPage, false).sigbus);
  EXPECT_EQ(p[kPage], 0);
  EXPECT_EQ(p[3 * kPage - 1], 0);
  p[2 * kPage + 3] = 'G';
  EXPECT_EQ(Pread(fd.get(), 1, 2 * kPage + 3), "G");
  EXPECT_TRUE(Touch(p + 3 * kPage, false).sigbus);
}

// Shrinking the file takes the pages back: they fault, and the cut part of the last page reads
// as zeros even through a mapping that had already loaded it.
TEST_F(MmapFileTest, FtruncateShrinkingFaultsAndZeroesTheTail) {
  Fd fd = PatternFile(3 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(3 * kPage, PROT_READ, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[2 * kPage], Pattern(2 * kPage));
  EXPECT_EQ(p[kPage + 200], Pattern(kPage + 200));
  ASSERT_OK(ftruncate(fd.get(), kPage + 100));
  EXPECT_EQ(p[kPage + 99], Pattern(kPage + 99));
  EXPECT_EQ(p[kPage + 200], 0);
  Fault f = Touch(p + 2 * kPage, false);
  EXPECT_TRUE(f.sigbus);
  EXPECT_EQ(f.code, BUS_ADRERR);
  // Growing again brings zeros, not the old bytes.
  ASSERT_OK(ftruncate(fd.get(), 3 * kPage));
  EXPECT_EQ(p[2 * kPage], 0);
}

TEST_F(MmapFileTest, MsyncFlagsAreAccepted) {
  Fd fd = PatternFile(2 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  p[0] = 'y';
  EXPECT_EQ(msync(p, 2 * kPage, MS_SYNC), 0) << ErrnoName(errno);
  EXPECT_EQ(msync(p, kPage, MS_ASYNC), 0) << ErrnoName(errno);
  EXPECT_EQ(msync(p, kPage, MS_INVALIDATE), 0) << ErrnoName(errno);
  EXPECT_EQ(msync(p, kPage, MS_SYNC | MS_INVALIDATE), 0) << ErrnoName(errno);
  EXPECT_EQ(msync(p, 0, MS_SYNC), 0) << ErrnoName(errno);
  // The length is rounded up to whole pages.
  EXPECT_EQ(msync(p, 1, MS_SYNC), 0) << ErrnoName(errno);
  // MS_INVALIDATE does not throw away what was stored.
  EXPECT_EQ(p[0], 'y');
  EXPECT_EQ(Pread(fd.get(), 1, 0), "y");
  // A private file mapping and an anonymous one may be synced too.
  char* priv = Map(kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get());
  ASSERT_NE(priv, nullptr);
  EXPECT_EQ(msync(priv, kPage, MS_SYNC), 0) << ErrnoName(errno);
  char* anon = Map(kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  ASSERT_NE(anon, nullptr);
  EXPECT_EQ(msync(anon, kPage, MS_ASYNC), 0) << ErrnoName(errno);
}

TEST_F(MmapFileTest, MsyncBadFlagsAndUnalignedAddressAreEinval) {
  Fd fd = PatternFile(kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  EXPECT_ERRNO(msync(p, kPage, MS_SYNC | MS_ASYNC), EINVAL);
  EXPECT_ERRNO(msync(p, kPage, 8), EINVAL);
  EXPECT_ERRNO(msync(p, kPage, MS_SYNC | 0x100), EINVAL);
  EXPECT_ERRNO(msync(p + 1, kPage - 1, MS_SYNC), EINVAL);
}

// A range with anything unmapped in it is ENOMEM (after syncing what is mapped).
TEST_F(MmapFileTest, MsyncOverAnUnmappedRangeIsEnomem) {
  Fd fd = PatternFile(3 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(3 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  ASSERT_OK(munmap(p + kPage, kPage));
  EXPECT_ERRNO(msync(p, 3 * kPage, MS_SYNC), ENOMEM);
  EXPECT_ERRNO(msync(p + kPage, kPage, MS_ASYNC), ENOMEM);
  EXPECT_EQ(msync(p + 2 * kPage, kPage, MS_SYNC), 0) << ErrnoName(errno);
}

// mmap needs read access to the file, whatever the protection; a shared writable mapping needs
// write access too; a private writable one does not (its stores never reach the file).
TEST_F(MmapFileTest, AccessModeOfTheFdLimitsTheMapping) {
  ASSERT_TRUE(PatternFile(kPage).valid());
  Fd wo(open(P("f").c_str(), O_WRONLY | O_CLOEXEC));
  Fd ro(open(P("f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(wo.valid());
  ASSERT_TRUE(ro.valid());
  for (int flags : {MAP_SHARED, MAP_PRIVATE}) {
    errno = 0;
    EXPECT_EQ(mmap(nullptr, kPage, PROT_WRITE, flags, wo.get(), 0), MAP_FAILED);
    EXPECT_EQ(errno, EACCES) << ErrnoName(errno);
    errno = 0;
    EXPECT_EQ(mmap(nullptr, kPage, PROT_NONE, flags, wo.get(), 0), MAP_FAILED);
    EXPECT_EQ(errno, EACCES) << ErrnoName(errno);
  }
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, ro.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EACCES) << ErrnoName(errno);
  char* s = Map(kPage, PROT_READ, MAP_SHARED, ro.get());
  ASSERT_NE(s, nullptr);
  char* p = Map(kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro.get());
  ASSERT_NE(p, nullptr);
  p[0] = 'W';
  EXPECT_EQ(s[0], 'a');
  EXPECT_EQ(Pread(ro.get(), 1, 0), "a");
}

// mprotect may add PROT_WRITE to a shared mapping only if the fd was open for writing.
TEST_F(MmapFileTest, MprotectAddingWriteFollowsTheFdsAccessMode) {
  ASSERT_TRUE(PatternFile(kPage).valid());
  Fd ro(open(P("f").c_str(), O_RDONLY | O_CLOEXEC));
  Fd rw(open(P("f").c_str(), O_RDWR | O_CLOEXEC));
  char* r = Map(kPage, PROT_READ, MAP_SHARED, ro.get());
  char* w = Map(kPage, PROT_READ, MAP_SHARED, rw.get());
  ASSERT_NE(r, nullptr);
  ASSERT_NE(w, nullptr);
  EXPECT_ERRNO(mprotect(r, kPage, PROT_READ | PROT_WRITE), EACCES);
  EXPECT_ERRNO(mprotect(r, kPage, PROT_WRITE), EACCES);
  EXPECT_EQ(mprotect(r, kPage, PROT_NONE), 0) << ErrnoName(errno);
  EXPECT_EQ(mprotect(r, kPage, PROT_READ), 0) << ErrnoName(errno);
  ASSERT_OK(mprotect(w, kPage, PROT_READ | PROT_WRITE));
  w[0] = 'm';
  EXPECT_EQ(r[0], 'm');
  EXPECT_EQ(Pread(rw.get(), 1, 0), "m");
}

TEST_F(MmapFileTest, OffsetMustBePageAligned) {
  Fd fd = PatternFile(3 * kPage);
  ASSERT_TRUE(fd.valid());
  for (off_t off : {off_t{1}, static_cast<off_t>(kPage / 2), static_cast<off_t>(kPage + 1)}) {
    errno = 0;
    EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(), off), MAP_FAILED);
    EXPECT_EQ(errno, EINVAL) << "offset " << off << ": " << ErrnoName(errno);
  }
  char* p = Map(kPage, PROT_READ, MAP_PRIVATE, fd.get(), Off(2 * kPage));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], Pattern(2 * kPage));
}

// Only what can be mapped is: a directory or a pipe is ENODEV, an O_PATH fd EBADF.
TEST_F(MmapFileTest, DirectoriesPipesAndPathFdsCannotBeMapped) {
  Fd dir(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir.valid());
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, dir.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, ENODEV) << ErrnoName(errno);
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, dir.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, ENODEV) << ErrnoName(errno);
  Pipe pipe = MakePipe(O_CLOEXEC);
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, pipe.r.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, ENODEV) << ErrnoName(errno);
  ASSERT_TRUE(PatternFile(kPage).valid());
  Fd path(open(P("f").c_str(), O_PATH | O_CLOEXEC));
  ASSERT_TRUE(path.valid());
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, path.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EBADF) << ErrnoName(errno);
}

// MAP_SHARED_VALIDATE is MAP_SHARED that refuses flags it does not know (EOPNOTSUPP).
TEST_F(MmapFileTest, MapSharedValidateChecksFlags) {
  Fd fd = PatternFile(kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(kPage, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE, fd.get());
  ASSERT_NE(p, nullptr);
  p[0] = 'v';
  EXPECT_EQ(Pread(fd.get(), 1, 0), "v");
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_SHARED_VALIDATE | 0x800000, fd.get(), 0),
            MAP_FAILED);
  EXPECT_EQ(errno, EOPNOTSUPP) << ErrnoName(errno);
}

// mremap grows a file mapping over more of the file and keeps what was there; moved with
// MREMAP_FIXED it keeps its data too, and stays shared with the file.
TEST_F(MmapFileTest, MremapKeepsTheFileData) {
  Fd fd = PatternFile(3 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  p[5] = '#';
  void* q = mremap(p, kPage, 3 * kPage, MREMAP_MAYMOVE);
  ASSERT_NE(q, MAP_FAILED) << ErrnoName(errno);
  Forget(p);
  maps_.push_back({q, 3 * kPage});
  char* n = static_cast<char*>(q);
  EXPECT_EQ(n[5], '#');
  EXPECT_EQ(n[kPage], Pattern(kPage));
  EXPECT_EQ(n[3 * kPage - 1], Pattern(3 * kPage - 1));
  n[2 * kPage] = '$';
  EXPECT_EQ(Pread(fd.get(), 1, 2 * kPage), "$");
  // Move it to a reserved spot.
  char* spot = Map(3 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  ASSERT_NE(spot, nullptr);
  void* m = mremap(n, 3 * kPage, 3 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
  ASSERT_EQ(m, spot) << ErrnoName(errno);
  Forget(n);
  EXPECT_EQ(spot[5], '#');
  EXPECT_EQ(spot[2 * kPage], '$');
  spot[kPage] = '%';
  EXPECT_EQ(Pread(fd.get(), 1, kPage), "%");
}

// Shrinking a file mapping with mremap keeps the front and unmaps the rest.
TEST_F(MmapFileTest, MremapShrinksAFileMapping) {
  Fd fd = PatternFile(3 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(3 * kPage, PROT_READ, MAP_PRIVATE, fd.get());
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(mremap(p, 3 * kPage, kPage, 0), p) << ErrnoName(errno);
  EXPECT_EQ(p[kPage - 1], Pattern(kPage - 1));
  EXPECT_ERRNO(msync(p + kPage, kPage, MS_ASYNC), ENOMEM);
}

// mincore reports the pages of a file mapping that are in memory; touched pages are.
TEST_F(MmapFileTest, MincoreReportsTouchedPagesResident) {
  Fd fd = PatternFile(4 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(4 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  p[0] = 1;
  EXPECT_EQ(p[2 * kPage + 1], Pattern(2 * kPage + 1));
  unsigned char vec[4] = {0xff, 0xff, 0xff, 0xff};
  ASSERT_EQ(mincore(p, 4 * kPage, vec), 0) << ErrnoName(errno);
  EXPECT_EQ(vec[0] & 1, 1);
  EXPECT_EQ(vec[2] & 1, 1);
  for (unsigned char v : vec) EXPECT_EQ(v & ~1, 0);  // the other bits are reserved, zero
  // A length that is not a page multiple covers its partial page.
  unsigned char one[2] = {0xff, 0xee};
  ASSERT_EQ(mincore(p, 1, one), 0) << ErrnoName(errno);
  EXPECT_EQ(one[0], 1);
  EXPECT_EQ(one[1], 0xee);  // not written
}

TEST_F(MmapFileTest, MincoreErrors) {
  Fd fd = PatternFile(2 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(2 * kPage, PROT_READ, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  unsigned char vec[2];
  EXPECT_ERRNO(mincore(p + 1, kPage, vec), EINVAL);
  EXPECT_ERRNO(mincore(p, 2 * kPage, reinterpret_cast<unsigned char*>(8)), EFAULT);
  ASSERT_OK(munmap(p + kPage, kPage));
  EXPECT_ERRNO(mincore(p, 2 * kPage, vec), ENOMEM);
}

// MADV_DONTNEED on a shared file mapping only drops the page table entries: the next access
// reads the file again, which holds what was stored.
TEST_F(MmapFileTest, MadviseDontneedOnASharedMappingKeepsTheData) {
  Fd fd = PatternFile(2 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  p[3] = 'K';
  ASSERT_OK(madvise(p, 2 * kPage, MADV_DONTNEED));
  EXPECT_EQ(p[3], 'K');
  EXPECT_EQ(p[4], Pattern(4));
  ASSERT_EQ(pwrite(fd.get(), "N", 1, kPage), 1);
  ASSERT_OK(madvise(p, 2 * kPage, MADV_DONTNEED));
  EXPECT_EQ(p[kPage], 'N');
}

// Stores through a shared mapping stay in the file after munmap, and after close of the fd the
// mapping still works (it holds its own reference to the file).
TEST_F(MmapFileTest, MappingOutlivesTheFdAndTheName) {
  Fd fd = PatternFile(kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  fd.Reset();
  ASSERT_OK(unlink(P("f").c_str()));
  p[0] = 'U';
  EXPECT_EQ(p[1], 'b');
  // /proc/self/maps still names it, marked deleted.
  char start[32];
  snprintf(start, sizeof(start), "%lx-", reinterpret_cast<unsigned long>(p));
  std::string maps = ReadFile("/proc/self/maps");
  size_t at = maps.find(start);
  ASSERT_NE(at, std::string::npos) << maps;
  std::string line = maps.substr(at, maps.find('\n', at) - at);
  EXPECT_NE(line.find("/f (deleted)"), std::string::npos) << line;
}

TEST_F(MmapFileTest, StoresPersistAfterMunmap) {
  Fd fd = PatternFile(2 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  memset(p + kPage, 'z', kPage);
  ASSERT_OK(munmap(p, 2 * kPage));
  Forget(p);
  fd.Reset();
  std::string all = ReadFile(P("f"));
  ASSERT_EQ(all.size(), 2 * kPage);
  EXPECT_EQ(all.substr(kPage), std::string(kPage, 'z'));
  EXPECT_EQ(all[0], 'a');
}

// MAP_POPULATE fills the mapping up front; the bytes are the file's.
TEST_F(MmapFileTest, MapPopulateReadsTheFile) {
  Fd fd = PatternFile(3 * kPage);
  ASSERT_TRUE(fd.valid());
  char* p = Map(3 * kPage, PROT_READ, MAP_SHARED | MAP_POPULATE, fd.get());
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < 3 * kPage; i += 511) ASSERT_EQ(p[i], Pattern(i)) << "at " << i;
}

// A shared read-only mapping of a system file (not in TempDir) holds the same bytes as pread.
TEST_F(MmapFileTest, SharedMappingOfASystemBinaryMatchesPread) {
  Fd fd(open("/bin/sh", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) GTEST_SKIP() << "/bin/sh: " << ErrnoName(errno);
  const off_t size = Size(fd.get());
  ASSERT_GT(size, 4);
  const size_t len = std::min<size_t>(size, 16 * kPage);
  char* p = Map(len, PROT_READ, MAP_SHARED, fd.get());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::string(p, 4),
            "\x7f"
            "ELF");
  EXPECT_EQ(std::string(p, len), Pread(fd.get(), len, 0));
  // A writable shared mapping of it needs write access, which O_RDONLY does not give.
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EACCES) << ErrnoName(errno);
}

}  // namespace
}  // namespace husk_test
