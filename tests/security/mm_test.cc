// Memory-manager arithmetic (issue 11, finding 4): lengths and addresses near 2^47 and 2^64
// must fail the way Linux fails them and leave the address space as it was. In husk, mremap
// to a size near 2^64 succeeded and left mappings whose start was past their end, brk(~0UL)
// unmapped the program, and arch_prctl with an address the host refuses killed the task.
//
// Every case runs in a forked child, so a bug that wrecks the address space kills the child
// and fails one test. The child checks /proc/self/maps afterwards: every mapping must have
// start < end, page-aligned, below the top of the user address space (x86-64 with 4-level
// page tables: TASK_SIZE_MAX = 2^47 - 4096), except the [vsyscall] page.
#include <asm/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <sstream>
#include <string>

#include "tests/security/security_util.h"

namespace {

using husk_security::ExpectChildOk;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kTaskSizeMax = (uint64_t{1} << 47) - kPage;
constexpr uint64_t kVsyscall = 0xffffffffff600000;

bool OneOf(int err, std::initializer_list<int> allowed) {
  for (int a : allowed)
    if (err == a) return true;
  return false;
}

// True if every line of /proc/self/maps is a sane, canonical user mapping (see the top).
bool MapsAreSane() {
  std::istringstream in(husk_test::ReadFile("/proc/self/maps"));
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    uint64_t start = 0, end = 0;
    if (sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64, &start, &end) != 2) {
      fprintf(stderr, "unparsable maps line: %s\n", line.c_str());
      return false;
    }
    const bool vsyscall = start == kVsyscall && end == kVsyscall + kPage;
    if (start >= end || start % kPage != 0 || end % kPage != 0 ||
        (!vsyscall && end > kTaskSizeMax)) {
      fprintf(stderr, "bad mapping: %s\n", line.c_str());
      return false;
    }
  }
  return lines > 0;
}

// One readable and writable anonymous page holding a marker.
void* MarkedPage() {
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED) strcpy(static_cast<char*>(p), "marker");
  return p;
}
bool Marked(void* p) { return strcmp(static_cast<const char*>(p), "marker") == 0; }

// Linux 6.x answers EINVAL for a new size beyond the address space; older kernels (and the
// man page) ENOMEM, from the search for room. Either way nothing moves.
TEST(MmTest, MremapToASizeNear2To64Fails) {
  ExpectChildOk([] {
    void* p = MarkedPage();
    CHILD_CHECK(p != MAP_FAILED, 1);
    for (uint64_t size :
         {~uint64_t{0}, ~uint64_t{0} - kPage + 1, uint64_t{1} << 63, uint64_t{1} << 47}) {
      for (int flags : {MREMAP_MAYMOVE, 0}) {
        errno = 0;
        void* r = mremap(p, kPage, size, flags);
        CHILD_CHECK(r == MAP_FAILED && OneOf(errno, {EINVAL, ENOMEM}), 2);
      }
    }
    CHILD_CHECK(Marked(p), 3);  // still mapped, unchanged
    CHILD_CHECK(MapsAreSane(), 4);
    return 0;
  });
}

// An old size past the end of the mapping: EINVAL on 6.x, EFAULT on older kernels.
TEST(MmTest, MremapFromAHugeOldSizeFails) {
  ExpectChildOk([] {
    void* p = MarkedPage();
    CHILD_CHECK(p != MAP_FAILED, 1);
    errno = 0;
    void* r = mremap(p, ~uint64_t{0} - 100, 2 * kPage, MREMAP_MAYMOVE);
    CHILD_CHECK(r == MAP_FAILED && OneOf(errno, {EINVAL, EFAULT}), 2);
    CHILD_CHECK(Marked(p), 3);
    CHILD_CHECK(MapsAreSane(), 4);
    return 0;
  });
}

// MREMAP_FIXED to a range that ends past TASK_SIZE: EINVAL (mm/mremap.c, mremap_to).
TEST(MmTest, MremapFixedPastTheTopFails) {
  ExpectChildOk([] {
    void* p = MarkedPage();
    CHILD_CHECK(p != MAP_FAILED, 1);
    struct Case {
      uint64_t addr, size;
    };
    for (Case c : {Case{kTaskSizeMax, 2 * kPage}, Case{uint64_t{1} << 47, kPage},
                   Case{~uint64_t{0} - kPage + 1, kPage}, Case{0xffff800000000000, kPage}}) {
      errno = 0;
      void* r =
          mremap(p, kPage, c.size, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(c.addr));
      CHILD_CHECK(r == MAP_FAILED && errno == EINVAL, 2);
    }
    CHILD_CHECK(Marked(p), 3);
    CHILD_CHECK(MapsAreSane(), 4);
    return 0;
  });
}

// brk(2) never fails in the raw syscall: a request it cannot satisfy (beyond the address
// space, wrapping, or below the start of the heap) returns the current break unchanged.
TEST(MmTest, BrkOutOfRangeLeavesTheBreak) {
  ExpectChildOk([] {
    const long cur = syscall(SYS_brk, 0);
    CHILD_CHECK(cur > 0, 1);
    for (uint64_t v : {~uint64_t{0}, ~uint64_t{0} - kPage + 1, uint64_t{1} << 47,
                       uint64_t{0xffff800000000000}, uint64_t{1}}) {
      CHILD_CHECK(syscall(SYS_brk, v) == cur, 2);
    }
    CHILD_CHECK(syscall(SYS_brk, 0) == cur, 3);
    // The program, its heap and its stack are all still there.
    CHILD_CHECK(MapsAreSane(), 4);
    void* m = malloc(1 << 20);
    CHILD_CHECK(m != nullptr, 5);
    memset(m, 1, 1 << 20);
    free(m);
    // And the break still moves: one page up, written, and back.
    const long now = syscall(SYS_brk, 0);
    CHILD_CHECK(syscall(SYS_brk, now + kPage) == static_cast<long>(now + kPage), 6);
    static_cast<volatile char*>(reinterpret_cast<void*>(now))[0] = 1;
    CHILD_CHECK(syscall(SYS_brk, now) == now, 7);
    return 0;
  });
}

// mmap(2): a length that does not fit the address space is ENOMEM; a zero length EINVAL.
TEST(MmTest, MmapOfAnImpossibleLengthFails) {
  ExpectChildOk([] {
    for (uint64_t len :
         {~uint64_t{0}, ~uint64_t{0} - 2 * kPage, uint64_t{1} << 47, uint64_t{1} << 63}) {
      errno = 0;
      void* r = mmap(nullptr, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      CHILD_CHECK(r == MAP_FAILED && errno == ENOMEM, 1);
    }
    errno = 0;
    void* r = mmap(nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(r == MAP_FAILED && errno == EINVAL, 2);
    CHILD_CHECK(MapsAreSane(), 3);
    return 0;
  });
}

// A hint is only a hint: one that does not fit below TASK_SIZE is ignored and the mapping
// lands somewhere that does (x86-64 without 5-level paging).
TEST(MmTest, MmapHintsPastTheTopAreIgnored) {
  ExpectChildOk([] {
    struct Case {
      uint64_t hint, len;
    };
    for (Case c : {Case{kTaskSizeMax, kPage}, Case{kTaskSizeMax - kPage, 2 * kPage + 1},
                   Case{uint64_t{1} << 47, kPage}, Case{0xffff800000000000, kPage},
                   Case{~uint64_t{0} - kPage + 1, 2 * kPage}}) {
      void* r = mmap(reinterpret_cast<void*>(c.hint), c.len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      CHILD_CHECK(r != MAP_FAILED, 1);
      const uint64_t a = reinterpret_cast<uint64_t>(r);
      CHILD_CHECK(a % kPage == 0 && a + c.len <= kTaskSizeMax, 2);
      static_cast<volatile char*>(r)[c.len - 1] = 1;  // usable to the last byte
      CHILD_CHECK(munmap(r, c.len) == 0, 3);
    }
    CHILD_CHECK(MapsAreSane(), 4);
    return 0;
  });
}

// MAP_FIXED past the top (or wrapping past 2^64) is ENOMEM: nothing can be placed there.
TEST(MmTest, MmapFixedPastTheTopFails) {
  ExpectChildOk([] {
    struct Case {
      uint64_t addr, len;
    };
    for (Case c :
         {Case{kTaskSizeMax, kPage}, Case{kTaskSizeMax - kPage, 2 * kPage + 1},
          Case{uint64_t{1} << 47, kPage}, Case{0xffff800000000000, kPage},
          Case{~uint64_t{0} - kPage + 1, kPage}, Case{~uint64_t{0} - kPage + 1, 2 * kPage}}) {
      errno = 0;
      void* r = mmap(reinterpret_cast<void*>(c.addr), c.len, PROT_READ,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      CHILD_CHECK(r == MAP_FAILED && errno == ENOMEM, 1);
    }
    CHILD_CHECK(MapsAreSane(), 2);
    return 0;
  });
}

// munmap(2) and madvise(2) reject a range that wraps or leaves the address space with
// EINVAL; mprotect(2) and msync(2) with ENOMEM. The mapping in the range keeps its contents
// and protection.
TEST(MmTest, WrappingRangesFailAndChangeNothing) {
  ExpectChildOk([] {
    void* p = MarkedPage();
    CHILD_CHECK(p != MAP_FAILED, 1);
    void* top = reinterpret_cast<void*>(~uint64_t{0} - kPage + 1);
    for (uint64_t len : {~uint64_t{0}, ~uint64_t{0} - 2 * kPage}) {
      errno = 0;
      CHILD_CHECK(munmap(p, len) == -1 && errno == EINVAL, 2);
      errno = 0;
      CHILD_CHECK(madvise(p, len, MADV_DONTNEED) == -1 && errno == EINVAL, 3);
      errno = 0;
      CHILD_CHECK(mprotect(p, len, PROT_NONE) == -1 && errno == ENOMEM, 4);
    }
    // msync rounds the length up first: ~0 rounds to 0 and succeeds; this one wraps.
    errno = 0;
    CHILD_CHECK(msync(p, ~uint64_t{0} - 2 * kPage, MS_SYNC) == -1 && errno == ENOMEM, 5);
    for (uint64_t len : {kPage, 2 * kPage}) {
      errno = 0;
      CHILD_CHECK(munmap(top, len) == -1 && errno == EINVAL, 6);
      errno = 0;
      CHILD_CHECK(mprotect(top, len, PROT_READ) == -1 && errno == ENOMEM, 7);
    }
    errno = 0;
    CHILD_CHECK(munmap(reinterpret_cast<void*>(kTaskSizeMax), 2 * kPage) == -1 && errno == EINVAL,
                8);
    // Still mapped, still writable, still holding the marker.
    CHILD_CHECK(Marked(p), 9);
    static_cast<volatile char*>(p)[100] = 1;
    CHILD_CHECK(MapsAreSane(), 10);
    return 0;
  });
}

// arch_prctl(2): an FS or GS base at or above TASK_SIZE_MAX (kernel half, non-canonical, the
// guard page) is EPERM, and the base is unchanged. glibc keeps its thread pointer in FS, so
// only addresses Linux refuses are tried: FS never moves, and errno (a TLS variable) still
// works afterwards.
TEST(MmTest, ArchPrctlRefusesBasesOutsideUserSpace) {
  ExpectChildOk([] {
    unsigned long fs = 0, gs = 0;
    CHILD_CHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) == 0, 1);
    CHILD_CHECK(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) == 0, 2);
    for (uint64_t base : {uint64_t{0xffff800000000000}, uint64_t{1} << 47, ~uint64_t{0},
                          kTaskSizeMax, uint64_t{0x8000000000000000}}) {
      errno = 0;
      CHILD_CHECK(syscall(SYS_arch_prctl, ARCH_SET_FS, base) == -1 && errno == EPERM, 3);
      errno = 0;
      CHILD_CHECK(syscall(SYS_arch_prctl, ARCH_SET_GS, base) == -1 && errno == EPERM, 4);
    }
    unsigned long fs2 = 0, gs2 = 0;
    CHILD_CHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs2) == 0 && fs2 == fs, 5);
    CHILD_CHECK(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs2) == 0 && gs2 == gs, 6);
    // ARCH_GET_FS to a bad pointer is EFAULT; an unknown code EINVAL.
    errno = 0;
    CHILD_CHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, 0xffff800000000000) == -1 && errno == EFAULT,
                7);
    errno = 0;
    CHILD_CHECK(syscall(SYS_arch_prctl, 0x9999, 0) == -1 && errno == EINVAL, 8);
    return 0;
  });
}

}  // namespace
