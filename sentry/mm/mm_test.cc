#include "sentry/mm/mm.h"

#include <errno.h>
#include <sys/mman.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "base/result_testing.h"
#include "gtest/gtest.h"

namespace husk {
namespace {

constexpr uintptr_t kMinAddr = 0x10000;
constexpr uintptr_t kMaxAddr = uintptr_t{1} << 40;
// A region the tests place MAP_FIXED mappings in, far below the mmap base.
constexpr uintptr_t kFixedArea = 0x10000000;
constexpr size_t kPage = kPageSize;
constexpr int kRw = PROT_READ | PROT_WRITE;

// What a fake platform address space has installed, and the calls it saw.
struct HostState {
  struct Installed {
    uint64_t offset;
    int prot;
  };
  struct MapCall {
    uintptr_t addr;
    uint64_t offset;
    size_t length;
    int prot;
  };
  std::map<uintptr_t, Installed> pages;
  std::vector<MapCall> map_calls;
  std::vector<std::pair<uintptr_t, size_t>> unmap_calls;
  bool supports_protect = true;  // false: Protect fails with ENOSYS

  bool IsInstalled(uintptr_t page) const { return pages.count(page) != 0; }
  // Installed pages in [start, end).
  size_t InstalledIn(uintptr_t start, uintptr_t end) const {
    return std::distance(pages.lower_bound(start), pages.lower_bound(end));
  }
  // Whether some Unmap call covered all of [start, end).
  bool UnmapCovered(uintptr_t start, uintptr_t end) const {
    for (const auto& [a, n] : unmap_calls) {
      if (a <= start && a + n >= end) return true;
    }
    return false;
  }
};

class FakeAddressSpace : public platform::AddressSpace {
 public:
  explicit FakeAddressSpace(HostState* state) : state_(state) {}

  Status MapFile(uintptr_t addr, uint64_t offset, size_t length, int prot) override {
    EXPECT_EQ(addr % kPage, 0u);
    EXPECT_EQ(offset % kPage, 0u);
    EXPECT_EQ(length % kPage, 0u);
    EXPECT_GT(length, 0u);
    state_->map_calls.push_back({addr, offset, length, prot});
    for (size_t i = 0; i < length; i += kPage) state_->pages[addr + i] = {offset + i, prot};
    return Ok();
  }

  Status Protect(uintptr_t addr, size_t length, int prot) override {
    if (!state_->supports_protect) return Errno{ENOSYS};
    for (auto it = state_->pages.lower_bound(addr);
         it != state_->pages.end() && it->first < addr + length; ++it) {
      it->second.prot = prot;
    }
    return Ok();
  }

  Status Unmap(uintptr_t addr, size_t length) override {
    state_->unmap_calls.emplace_back(addr, length);
    state_->pages.erase(state_->pages.lower_bound(addr), state_->pages.lower_bound(addr + length));
    return Ok();
  }

 private:
  HostState* state_;
};

// A file whose pages the MM copies in on first touch.
class FakeFile : public Mappable {
 public:
  explicit FakeFile(std::string data) : data_(std::move(data)) {}

  Result<size_t> ReadForMapping(uint64_t offset, char* buf, size_t n) override {
    reads_++;
    if (offset >= data_.size()) return size_t{0};
    n = std::min<size_t>(n, data_.size() - offset);
    memcpy(buf, data_.data() + offset, n);
    return n;
  }
  std::string MapsName() const override { return "/lib/libfake.so"; }
  uint64_t MapsInode() const override { return 4242; }

  const std::string& data() const { return data_; }
  int reads() const { return reads_; }

 private:
  std::string data_;
  int reads_ = 0;
};

// n bytes that differ from page to page and from offset to offset, never NUL.
std::string Pattern(size_t n, char seed = 'a') {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = static_cast<char>('!' + (seed + i * 7 + i / kPage) % 90);
  return s;
}

// Compares byte strings, naming the first difference rather than printing
// pages of both.
::testing::AssertionResult SameBytes(const std::string& got, const std::string& want) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "size " << got.size() << ", want " << want.size();
  }
  auto [g, w] = std::mismatch(got.begin(), got.end(), want.begin());
  if (g == got.end()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "first difference at byte " << (g - got.begin()) << ": got " << static_cast<int>(*g)
         << ", want " << static_cast<int>(*w);
}

struct MapsLine {
  uintptr_t start = 0;
  uintptr_t end = 0;
  std::string perms;
  uint64_t offset = 0;
  uint64_t inode = 0;
  std::string name;
};

std::vector<MapsLine> ParseMaps(const std::string& text) {
  std::vector<MapsLine> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    MapsLine m;
    char perms[5] = {};
    int name_at = 0;
    unsigned dev_major = 0, dev_minor = 0;
    int n = sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " %4s %" SCNx64 " %x:%x %" SCNu64 " %n",
                   &m.start, &m.end, perms, &m.offset, &dev_major, &dev_minor, &m.inode, &name_at);
    EXPECT_EQ(n, 7) << "bad maps line: " << line;
    m.perms = perms;
    if (name_at > 0) m.name = line.substr(name_at);
    out.push_back(m);
  }
  return out;
}

MmapRequest Anon(uintptr_t addr, size_t length, int prot = kRw, int flags = MAP_PRIVATE) {
  MmapRequest r;
  r.addr = addr;
  r.length = length;
  r.prot = prot;
  r.flags = flags | MAP_ANONYMOUS;
  return r;
}

class MmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mf = MemoryFile::Create(64 << 20);
    ASSERT_OK(mf);
    mf_ = std::move(mf).value();
    mm_ = std::make_unique<MemoryManager>(*mf_, std::make_unique<FakeAddressSpace>(&host_),
                                          kMinAddr, kMaxAddr);
  }

  // Maps anonymous memory at exactly addr (MAP_FIXED).
  uintptr_t MapFixed(uintptr_t addr, size_t length, int prot = kRw, int type = MAP_PRIVATE) {
    auto r = mm_->Mmap(Anon(addr, length, prot, type | MAP_FIXED));
    EXPECT_TRUE(r.ok()) << "errno " << (r.ok() ? 0 : r.error());
    if (!r.ok()) return 0;
    EXPECT_EQ(*r, addr);
    return *r;
  }

  uintptr_t MapFile(std::shared_ptr<FakeFile> file, uintptr_t addr, size_t length, uint64_t offset,
                    uintptr_t file_end = UINTPTR_MAX, int prot = kRw) {
    MmapRequest req;
    req.addr = addr;
    req.length = length;
    req.prot = prot;
    req.flags = MAP_PRIVATE | MAP_FIXED;
    req.file = std::move(file);
    req.offset = offset;
    req.file_end = file_end;
    auto r = mm_->Mmap(req);
    EXPECT_TRUE(r.ok()) << "errno " << (r.ok() ? 0 : r.error());
    return r.ok() ? *r : 0;
  }

  std::string Read(uintptr_t addr, size_t n) {
    std::string s(n, '\0');
    auto r = mm_->CopyIn(addr, s.data(), n);
    EXPECT_TRUE(r.ok()) << "CopyIn(" << std::hex << addr << ") errno " << std::dec
                        << (r.ok() ? 0 : r.error());
    return s;
  }

  void Write(uintptr_t addr, const std::string& s) {
    auto r = mm_->CopyOut(addr, s.data(), s.size());
    EXPECT_TRUE(r.ok()) << "CopyOut(" << std::hex << addr << ") errno " << std::dec
                        << (r.ok() ? 0 : r.error());
  }

  std::vector<MapsLine> Maps() { return ParseMaps(mm_->ProcMaps()); }

  // The mapping that contains addr, or an empty one.
  MapsLine MapsAt(uintptr_t addr) {
    for (const auto& m : Maps()) {
      if (m.start <= addr && addr < m.end) return m;
    }
    return {};
  }

  size_t MappedBytesIn(const std::vector<HostState::MapCall>& calls) {
    size_t n = 0;
    for (const auto& c : calls) n += c.length;
    return n;
  }

  // Declared before mm_, which refers to both.
  HostState host_;
  std::unique_ptr<MemoryFile> mf_;
  std::unique_ptr<MemoryManager> mm_;
};

// --- mmap ---

TEST_F(MmTest, MmapWithoutHintIsPageAlignedBelowTheMmapBase) {
  constexpr uintptr_t kBase = 0x40000000;
  mm_->SetMmapBase(kBase);
  auto a = mm_->Mmap(Anon(0, 5000));
  ASSERT_OK(a);
  EXPECT_EQ(*a % kPage, 0u);
  EXPECT_GE(*a, kMinAddr);
  EXPECT_LE(*a + 2 * kPage, kBase);

  // The length is rounded up to whole pages.
  MapsLine m = MapsAt(*a);
  EXPECT_EQ(m.start, *a);
  EXPECT_EQ(m.end, *a + 2 * kPage);
  EXPECT_EQ(m.perms, "rw-p");
  char c = 1;
  EXPECT_OK(mm_->CopyOut(*a + 2 * kPage - 1, &c, 1));

  // A second mapping lands elsewhere, also below the base.
  auto b = mm_->Mmap(Anon(0, 3 * kPage));
  ASSERT_OK(b);
  EXPECT_EQ(*b % kPage, 0u);
  EXPECT_LE(*b + 3 * kPage, kBase);
  EXPECT_TRUE(*b + 3 * kPage <= *a || *b >= *a + 2 * kPage) << "mappings overlap";
}

TEST_F(MmTest, MmapSkipsOccupiedRangesBelowTheBase) {
  constexpr uintptr_t kBase = 0x40000000;
  mm_->SetMmapBase(kBase);
  // Occupy the pages right below the base.
  MapFixed(kBase - 4 * kPage, 4 * kPage);
  auto a = mm_->Mmap(Anon(0, 8 * kPage));
  ASSERT_OK(a);
  EXPECT_LE(*a + 8 * kPage, kBase - 4 * kPage);
  EXPECT_EQ(MapsAt(kBase - 4 * kPage).end, kBase);
}

TEST_F(MmTest, MmapWithoutRoomFailsWithEnomem) {
  mm_->SetMmapBase(kMinAddr + 4 * kPage);
  EXPECT_ERRNO(mm_->Mmap(Anon(0, 5 * kPage)), ENOMEM);
  auto a = mm_->Mmap(Anon(0, 4 * kPage));
  ASSERT_OK(a);
  EXPECT_EQ(*a, kMinAddr);
  EXPECT_ERRNO(mm_->Mmap(Anon(0, kPage)), ENOMEM);
}

TEST_F(MmTest, MmapUsesAFreeHint) {
  auto a = mm_->Mmap(Anon(kFixedArea, kPage));
  ASSERT_OK(a);
  EXPECT_EQ(*a, kFixedArea);
  // The hint is taken, so the next one goes elsewhere and nothing is replaced.
  Write(kFixedArea, "keep");
  auto b = mm_->Mmap(Anon(kFixedArea, kPage));
  ASSERT_OK(b);
  EXPECT_NE(*b, kFixedArea);
  EXPECT_TRUE(SameBytes(Read(kFixedArea, 4), "keep"));
}

TEST_F(MmTest, MmapMemoryStartsZeroed) {
  auto a = mm_->Mmap(Anon(0, 3 * kPage));
  ASSERT_OK(a);
  EXPECT_TRUE(SameBytes(Read(*a, 3 * kPage), std::string(3 * kPage, '\0')));
}

TEST_F(MmTest, MmapIsLazy) {
  auto a = mm_->Mmap(Anon(0, 64 * kPage));
  ASSERT_OK(a);
  EXPECT_TRUE(host_.map_calls.empty());
  EXPECT_EQ(mm_->ResidentBytes(), 0u);
  EXPECT_EQ(mf_->used_bytes(), 0u);
}

TEST_F(MmTest, MmapZeroLengthIsInvalid) {
  EXPECT_ERRNO(mm_->Mmap(Anon(0, 0)), EINVAL);
  EXPECT_ERRNO(mm_->Mmap(Anon(kFixedArea, 0, kRw, MAP_PRIVATE | MAP_FIXED)), EINVAL);
  EXPECT_TRUE(Maps().empty());
}

TEST_F(MmTest, MmapFixedUnalignedAddressIsInvalid) {
  EXPECT_ERRNO(mm_->Mmap(Anon(kFixedArea + 1, kPage, kRw, MAP_PRIVATE | MAP_FIXED)), EINVAL);
  EXPECT_ERRNO(mm_->Mmap(Anon(kFixedArea + 100, kPage, kRw, MAP_PRIVATE | MAP_FIXED_NOREPLACE)),
               EINVAL);
  EXPECT_TRUE(Maps().empty());
}

TEST_F(MmTest, MmapRejectsBadArguments) {
  // Neither MAP_PRIVATE nor MAP_SHARED.
  MmapRequest no_type = Anon(0, kPage);
  no_type.flags = MAP_ANONYMOUS;
  EXPECT_ERRNO(mm_->Mmap(no_type), EINVAL);
  // Offset not a multiple of the page size.
  auto file = std::make_shared<FakeFile>(Pattern(2 * kPage));
  MmapRequest bad_offset;
  bad_offset.length = kPage;
  bad_offset.prot = PROT_READ;
  bad_offset.flags = MAP_PRIVATE;
  bad_offset.file = file;
  bad_offset.offset = 100;
  EXPECT_ERRNO(mm_->Mmap(bad_offset), EINVAL);
  // Unknown protection bits.
  EXPECT_ERRNO(mm_->Mmap(Anon(0, kPage, 0x100)), EINVAL);
  // Lengths no address space can hold.
  EXPECT_ERRNO(mm_->Mmap(Anon(0, SIZE_MAX)), ENOMEM);
  EXPECT_ERRNO(mm_->Mmap(Anon(0, kMaxAddr + kPage)), ENOMEM);
  EXPECT_TRUE(Maps().empty());
}

TEST_F(MmTest, MmapFixedReplacesExistingMapping) {
  uintptr_t a = MapFixed(kFixedArea, 4 * kPage);
  Write(a, Pattern(4 * kPage));
  ASSERT_TRUE(mm_->HandleFault(a));
  ASSERT_TRUE(host_.IsInstalled(a + kPage));
  size_t resident = mm_->ResidentBytes();

  // Replace the middle two pages with a fresh read-only mapping.
  auto r = mm_->Mmap(Anon(a + kPage, 2 * kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED));
  ASSERT_OK(r);
  EXPECT_EQ(*r, a + kPage);
  EXPECT_EQ(mm_->ResidentBytes(), resident - 2 * kPage);
  EXPECT_EQ(mf_->used_bytes(), resident - 2 * kPage);

  auto maps = Maps();
  ASSERT_EQ(maps.size(), 3u);
  EXPECT_EQ(maps[0].start, a);
  EXPECT_EQ(maps[0].perms, "rw-p");
  EXPECT_EQ(maps[1].start, a + kPage);
  EXPECT_EQ(maps[1].end, a + 3 * kPage);
  EXPECT_EQ(maps[1].perms, "r--p");
  EXPECT_EQ(maps[2].start, a + 3 * kPage);
  EXPECT_EQ(maps[2].perms, "rw-p");

  // The old contents are gone from the middle, kept at both ends, and the
  // host no longer maps the replaced pages.
  std::string old = Pattern(4 * kPage);
  EXPECT_TRUE(SameBytes(Read(a, kPage), old.substr(0, kPage)));
  EXPECT_TRUE(SameBytes(Read(a + kPage, 2 * kPage), std::string(2 * kPage, '\0')));
  EXPECT_TRUE(SameBytes(Read(a + 3 * kPage, kPage), old.substr(3 * kPage)));
  EXPECT_TRUE(host_.UnmapCovered(a + kPage, a + 3 * kPage));
  EXPECT_EQ(host_.InstalledIn(a + kPage, a + 3 * kPage), 0u);
}

TEST_F(MmTest, MmapFixedNoReplaceOnOverlapFailsWithEexist) {
  uintptr_t a = MapFixed(kFixedArea, 4 * kPage);
  Write(a, "precious");

  EXPECT_ERRNO(
      mm_->Mmap(Anon(a + 2 * kPage, 4 * kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE)),
      EEXIST);
  EXPECT_ERRNO(mm_->Mmap(Anon(a - kPage, 2 * kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE)),
               EEXIST);
  // With MAP_FIXED also set, Linux still refuses to clobber (do_mmap checks
  // MAP_FIXED_NOREPLACE after choosing the address).
  EXPECT_ERRNO(mm_->Mmap(Anon(a, kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_FIXED_NOREPLACE)),
               EEXIST);

  auto maps = Maps();
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_EQ(maps[0].start, a);
  EXPECT_EQ(maps[0].end, a + 4 * kPage);
  EXPECT_EQ(maps[0].perms, "rw-p");
  EXPECT_TRUE(SameBytes(Read(a, 8), "precious"));

  // Right next to the mapping is free, and the address is taken exactly.
  auto r = mm_->Mmap(Anon(a + 4 * kPage, kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE));
  ASSERT_OK(r);
  EXPECT_EQ(*r, a + 4 * kPage);
}

// --- munmap ---

TEST_F(MmTest, MunmapSplitsAVma) {
  uintptr_t a = MapFixed(kFixedArea, 5 * kPage);
  std::string data = Pattern(5 * kPage);
  Write(a, data);
  ASSERT_OK(mm_->Munmap(a + 2 * kPage, kPage));

  auto maps = Maps();
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0].start, a);
  EXPECT_EQ(maps[0].end, a + 2 * kPage);
  EXPECT_EQ(maps[1].start, a + 3 * kPage);
  EXPECT_EQ(maps[1].end, a + 5 * kPage);

  char c;
  EXPECT_ERRNO(mm_->CopyIn(a + 2 * kPage, &c, 1), EFAULT);
  EXPECT_TRUE(SameBytes(Read(a, 2 * kPage), data.substr(0, 2 * kPage)));
  EXPECT_TRUE(SameBytes(Read(a + 3 * kPage, 2 * kPage), data.substr(3 * kPage)));
}

TEST_F(MmTest, MunmapRoundsLengthUpAndIgnoresHoles) {
  uintptr_t a = MapFixed(kFixedArea, 4 * kPage);
  // One byte unmaps a whole page.
  ASSERT_OK(mm_->Munmap(a, 1));
  EXPECT_EQ(MapsAt(a).end, 0u);
  EXPECT_EQ(MapsAt(a + kPage).start, a + kPage);
  // A range that is partly or entirely unmapped is not an error.
  EXPECT_OK(mm_->Munmap(a, 2 * kPage));
  EXPECT_OK(mm_->Munmap(a + 100 * kPage, kPage));
  ASSERT_EQ(Maps().size(), 1u);
  EXPECT_EQ(Maps()[0].start, a + 2 * kPage);
}

TEST_F(MmTest, MunmapRejectsBadArguments) {
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  EXPECT_ERRNO(mm_->Munmap(a + 1, kPage), EINVAL);
  EXPECT_ERRNO(mm_->Munmap(a, 0), EINVAL);
  // Ranges that wrap past the top of the address space (Linux: len >
  // TASK_SIZE - addr), whether or not rounding up to a page hides the wrap.
  EXPECT_ERRNO(mm_->Munmap(a, SIZE_MAX), EINVAL);
  EXPECT_ERRNO(mm_->Munmap(a, SIZE_MAX - kPage + 1), EINVAL);
  EXPECT_EQ(Maps().size(), 1u);
}

TEST_F(MmTest, MunmapRemovesHostPagesAndFreesMemory) {
  uintptr_t a = MapFixed(kFixedArea, 4 * kPage);
  ASSERT_TRUE(mm_->HandleFault(a));
  ASSERT_EQ(host_.InstalledIn(a, a + 4 * kPage), 4u);
  size_t used = mf_->used_bytes();
  EXPECT_EQ(used, 4 * kPage);

  ASSERT_OK(mm_->Munmap(a, 4 * kPage));
  EXPECT_EQ(host_.InstalledIn(a, a + 4 * kPage), 0u);
  EXPECT_TRUE(host_.UnmapCovered(a, a + 4 * kPage));
  EXPECT_EQ(mf_->used_bytes(), 0u);
  EXPECT_FALSE(mm_->HandleFault(a));
}

// --- mprotect ---

TEST_F(MmTest, MprotectOnAHoleFailsWithEnomem) {
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  MapFixed(a + 3 * kPage, 2 * kPage);
  // Covers both mappings and the unmapped page between them.
  EXPECT_ERRNO(mm_->Mprotect(a, 5 * kPage, PROT_READ), ENOMEM);
  // Entirely unmapped.
  EXPECT_ERRNO(mm_->Mprotect(a + 2 * kPage, kPage, PROT_READ), ENOMEM);
  EXPECT_ERRNO(mm_->Mprotect(kFixedArea + 0x100000, kPage, PROT_READ), ENOMEM);
  // Starting in the hole changes nothing.
  EXPECT_ERRNO(mm_->Mprotect(a + 2 * kPage, 3 * kPage, PROT_READ), ENOMEM);
  EXPECT_EQ(MapsAt(a + 3 * kPage).perms, "rw-p");
  Write(a + 3 * kPage, "still writable");
}

TEST_F(MmTest, MprotectChangesPermissionsOfPartOfAVma) {
  uintptr_t a = MapFixed(kFixedArea, 3 * kPage);
  Write(a + kPage, "data");
  ASSERT_OK(mm_->Mprotect(a + kPage, kPage, PROT_READ));

  auto maps = Maps();
  ASSERT_EQ(maps.size(), 3u);
  EXPECT_EQ(maps[0].perms, "rw-p");
  EXPECT_EQ(maps[1].start, a + kPage);
  EXPECT_EQ(maps[1].end, a + 2 * kPage);
  EXPECT_EQ(maps[1].perms, "r--p");
  EXPECT_EQ(maps[2].perms, "rw-p");

  char c = 'x';
  EXPECT_ERRNO(mm_->CopyOut(a + kPage, &c, 1), EFAULT);
  EXPECT_TRUE(SameBytes(Read(a + kPage, 4), "data"));
  EXPECT_OK(mm_->CopyOut(a, &c, 1));
  EXPECT_OK(mm_->CopyOut(a + 2 * kPage, &c, 1));
}

TEST_F(MmTest, MprotectRestoringProtectionMergesTheVmas) {
  // Linux merges neighbouring VMAs that become identical again, so a
  // temporary mprotect leaves one line in /proc/self/maps.
  uintptr_t a = MapFixed(kFixedArea, 3 * kPage);
  ASSERT_OK(mm_->Mprotect(a + kPage, kPage, PROT_READ));
  ASSERT_EQ(Maps().size(), 3u);
  ASSERT_OK(mm_->Mprotect(a + kPage, kPage, kRw));
  auto maps = Maps();
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_EQ(maps[0].start, a);
  EXPECT_EQ(maps[0].end, a + 3 * kPage);
  EXPECT_EQ(maps[0].perms, "rw-p");
}

TEST_F(MmTest, MprotectTakingAwayWriteChangesInstalledPagesInPlace) {
  uintptr_t a = MapFixed(kFixedArea, 4 * kPage);
  Write(a, "contents");
  ASSERT_TRUE(mm_->HandleFault(a));
  ASSERT_EQ(host_.InstalledIn(a, a + 4 * kPage), 4u);

  // No write access: the installed run takes the new protection where it is.
  ASSERT_OK(mm_->Mprotect(a, 4 * kPage, PROT_READ));
  EXPECT_EQ(host_.InstalledIn(a, a + 4 * kPage), 4u);
  EXPECT_TRUE(host_.unmap_calls.empty());
  EXPECT_EQ(host_.pages.at(a + kPage).prot, PROT_READ);
  EXPECT_FALSE(mm_->HandleFault(a + kPage));  // a write there is a protection fault

  ASSERT_OK(mm_->Mprotect(a, 4 * kPage, PROT_NONE));
  EXPECT_EQ(host_.pages.at(a).prot, PROT_NONE);
  EXPECT_FALSE(mm_->HandleFault(a));
  EXPECT_EQ(MapsAt(a).perms, "---p");

  // Giving write access back unmaps (a page may be shared copy-on-write);
  // faults reinstall with the new protection.
  ASSERT_OK(mm_->Mprotect(a, 4 * kPage, kRw));
  EXPECT_EQ(host_.InstalledIn(a, a + 4 * kPage), 0u);
  EXPECT_TRUE(host_.UnmapCovered(a, a + 4 * kPage));
  host_.map_calls.clear();
  ASSERT_TRUE(mm_->HandleFault(a + kPage));
  ASSERT_FALSE(host_.map_calls.empty());
  for (const auto& c : host_.map_calls) EXPECT_EQ(c.prot, kRw);
  // The memory survives the round trip through PROT_NONE.
  EXPECT_TRUE(SameBytes(Read(a, 8), "contents"));
}

TEST_F(MmTest, MprotectUnmapsWhenThePlatformCannotProtectOrTheRunsAreMany) {
  uintptr_t a = MapFixed(kFixedArea, 16 * kPage);
  Write(a, "x");
  ASSERT_TRUE(mm_->HandleFault(a));
  host_.supports_protect = false;
  ASSERT_OK(mm_->Mprotect(a, 16 * kPage, PROT_READ));
  EXPECT_EQ(host_.InstalledIn(a, a + 16 * kPage), 0u);
  EXPECT_TRUE(host_.UnmapCovered(a, a + 16 * kPage));
  host_.supports_protect = true;
  // Every other page installed: too many runs to protect one by one.
  ASSERT_OK(mm_->Mprotect(a, 16 * kPage, kRw));
  ASSERT_TRUE(mm_->HandleFault(a));
  ASSERT_EQ(host_.InstalledIn(a, a + 16 * kPage), 16u);
  for (int i = 1; i < 16; i += 2) ASSERT_OK(mm_->Madvise(a + i * kPage, kPage, MADV_DONTNEED));
  ASSERT_EQ(host_.InstalledIn(a, a + 16 * kPage), 8u);
  host_.unmap_calls.clear();
  ASSERT_OK(mm_->Mprotect(a, 16 * kPage, PROT_READ));
  EXPECT_TRUE(host_.UnmapCovered(a, a + 16 * kPage));
  EXPECT_EQ(host_.InstalledIn(a, a + 16 * kPage), 0u);
  EXPECT_EQ(MapsAt(a).perms, "r--p");
}

TEST_F(MmTest, MprotectRejectsBadArguments) {
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  EXPECT_ERRNO(mm_->Mprotect(a + 1, kPage, PROT_READ), EINVAL);
  EXPECT_ERRNO(mm_->Mprotect(a, kPage, 0x100), EINVAL);
  // Wrapping past the top of the address space.
  EXPECT_ERRNO(mm_->Mprotect(a, SIZE_MAX, PROT_READ), ENOMEM);
  EXPECT_ERRNO(mm_->Mprotect(a, SIZE_MAX - kPage + 1, PROT_READ), ENOMEM);
  // A zero length succeeds without looking at the range.
  EXPECT_OK(mm_->Mprotect(a + 10 * kPage, 0, PROT_READ));
  EXPECT_EQ(MapsAt(a).perms, "rw-p");
}

// --- copying ---

TEST_F(MmTest, CopyInAndOutRoundTripAcrossPageBoundaries) {
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  // A neighbour with a different protection: the copy spans two VMAs.
  MapFixed(a + 2 * kPage, 2 * kPage, PROT_READ | PROT_WRITE | PROT_EXEC);
  std::string data = Pattern(3 * kPage + 10);
  Write(a + 3000, data);
  EXPECT_TRUE(SameBytes(Read(a + 3000, data.size()), data));
  EXPECT_TRUE(SameBytes(Read(a, 3000), std::string(3000, '\0')));
  // Single bytes on either side of a page boundary.
  EXPECT_TRUE(SameBytes(Read(a + kPage - 1, 2), data.substr(kPage - 1 - 3000, 2)));
}

TEST_F(MmTest, CopyOutToAReadOnlyMappingFailsWithEfault) {
  uintptr_t ro = MapFixed(kFixedArea, kPage, PROT_READ);
  uintptr_t none = MapFixed(kFixedArea + 2 * kPage, kPage, PROT_NONE);
  char buf[16] = "abc";
  EXPECT_ERRNO(mm_->CopyOut(ro, buf, sizeof(buf)), EFAULT);
  EXPECT_ERRNO(mm_->CopyOut(none, buf, sizeof(buf)), EFAULT);
  EXPECT_TRUE(SameBytes(Read(ro, 3), std::string(3, '\0')));
}

TEST_F(MmTest, CopyOutFailsIfAnyByteIsNotWritable) {
  uintptr_t a = MapFixed(kFixedArea, kPage);
  MapFixed(a + kPage, kPage, PROT_READ);
  std::string data(16, 'z');
  EXPECT_ERRNO(mm_->CopyOut(a + kPage - 8, data.data(), data.size()), EFAULT);
}

TEST_F(MmTest, CopyInNeedsReadableMemory) {
  uintptr_t a = MapFixed(kFixedArea, kPage);
  uintptr_t none = MapFixed(kFixedArea + 2 * kPage, kPage, PROT_NONE);
  // On x86 every mapping but PROT_NONE is readable, write-only included.
  uintptr_t wo = MapFixed(kFixedArea + 4 * kPage, kPage, PROT_WRITE);
  char buf[32];
  EXPECT_ERRNO(mm_->CopyIn(none, buf, 1), EFAULT);
  EXPECT_ERRNO(mm_->CopyIn(kFixedArea + 0x100000, buf, 1), EFAULT);
  // Starts mapped, runs into the unmapped page after it.
  EXPECT_ERRNO(mm_->CopyIn(a + kPage - 16, buf, sizeof(buf)), EFAULT);
  // A range that wraps around the top of the address space.
  EXPECT_ERRNO(mm_->CopyIn(UINTPTR_MAX - 8, buf, sizeof(buf)), EFAULT);
  EXPECT_OK(mm_->CopyIn(wo, buf, sizeof(buf)));
  EXPECT_OK(mm_->CopyIn(a + kPage - 16, buf, 16));
}

TEST_F(MmTest, CopyInStringReadsUpToTheNul) {
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  // Spans the page boundary.
  std::string s = Pattern(300);
  std::string with_nul = s + '\0' + "trailing";
  Write(a + kPage - 100, with_nul);
  auto r = mm_->CopyInString(a + kPage - 100, 4096);
  ASSERT_OK(r);
  EXPECT_EQ(*r, s);

  // Exactly max bytes before the NUL is allowed; one more is not.
  auto exact = mm_->CopyInString(a + kPage - 100, s.size());
  ASSERT_OK(exact);
  EXPECT_EQ(*exact, s);
  EXPECT_ERRNO(mm_->CopyInString(a + kPage - 100, s.size() - 1), ENAMETOOLONG);

  // The empty string.
  auto empty = mm_->CopyInString(a + kPage - 100 + s.size(), 10);
  ASSERT_OK(empty);
  EXPECT_EQ(*empty, "");
}

TEST_F(MmTest, CopyInStringWithoutNulWithinMaxIsTooLong) {
  uintptr_t a = MapFixed(kFixedArea, kPage);
  Write(a, std::string(kPage, 'x'));
  EXPECT_ERRNO(mm_->CopyInString(a, 100), ENAMETOOLONG);
  // The max + 1 bytes examined end exactly at the end of the mapping: the
  // string is too long, not a fault, because nothing past them is read.
  EXPECT_ERRNO(mm_->CopyInString(a + kPage - 11, 10), ENAMETOOLONG);
  // The string runs into unmapped memory before max: a fault.
  EXPECT_ERRNO(mm_->CopyInString(a + kPage - 11, 11), EFAULT);
  EXPECT_ERRNO(mm_->CopyInString(a + kPage - 11, 4096), EFAULT);
  EXPECT_ERRNO(mm_->CopyInString(kFixedArea + 0x100000, 4096), EFAULT);
}

TEST_F(MmTest, CopyInPartialStopsAtTheFirstUnreadablePage) {
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  MapFixed(a + 3 * kPage, kPage);  // beyond a hole
  std::string data = Pattern(2 * kPage);
  Write(a, data);

  std::string buf(4 * kPage, '\0');
  EXPECT_EQ(mm_->CopyInPartial(a + 100, buf.data(), buf.size()), 2 * kPage - 100);
  EXPECT_TRUE(SameBytes(buf.substr(0, 2 * kPage - 100), data.substr(100)));

  // A PROT_NONE page stops it too.
  ASSERT_OK(mm_->Mprotect(a + kPage, kPage, PROT_NONE));
  EXPECT_EQ(mm_->CopyInPartial(a + 100, buf.data(), buf.size()), kPage - 100);
  // Nothing readable at the start; everything readable.
  EXPECT_EQ(mm_->CopyInPartial(a + 2 * kPage, buf.data(), 10), 0u);
  EXPECT_EQ(mm_->CopyInPartial(a + 10, buf.data(), 1000), 1000u);
  EXPECT_TRUE(SameBytes(buf.substr(0, 1000), data.substr(10, 1000)));
}

// --- faults ---

TEST_F(MmTest, HandleFaultOnAnInvalidAddressReturnsFalse) {
  uintptr_t none = MapFixed(kFixedArea, 4 * kPage, PROT_NONE);
  EXPECT_FALSE(mm_->HandleFault(none));
  EXPECT_FALSE(mm_->HandleFault(none + kPage + 17));
  EXPECT_FALSE(mm_->HandleFault(kFixedArea + 0x100000));
  EXPECT_FALSE(mm_->HandleFault(0));
  EXPECT_FALSE(mm_->HandleFault(kMaxAddr + kPage));
  EXPECT_TRUE(host_.map_calls.empty());
  EXPECT_EQ(mm_->ResidentBytes(), 0u);
}

TEST_F(MmTest, HandleFaultInstallsThePageAndItsNeighbours) {
  uintptr_t a = MapFixed(kFixedArea, 64 * kPage);
  Write(a + 5 * kPage + 8, "hello");
  ASSERT_TRUE(mm_->HandleFault(a + 5 * kPage + 123));

  // The faulting page and the kFaultAround - 1 pages after it, within the VMA.
  constexpr size_t kAround = MemoryManager::kFaultAround;
  EXPECT_EQ(host_.InstalledIn(a, a + 64 * kPage), kAround);
  EXPECT_EQ(host_.InstalledIn(a + 5 * kPage, a + (5 + kAround) * kPage), kAround);
  EXPECT_EQ(MappedBytesIn(host_.map_calls), kAround * kPage);
  for (const auto& c : host_.map_calls) EXPECT_EQ(c.prot, kRw);
  EXPECT_EQ(mm_->ResidentBytes(), kAround * kPage);

  // The host maps the memory-file page that holds what the sentry wrote.
  uint64_t off = host_.pages.at(a + 5 * kPage).offset;
  EXPECT_EQ(std::string(mf_->At(off) + 8, 5), "hello");
  // Writes by the application land where the sentry reads.
  memcpy(mf_->At(host_.pages.at(a + 6 * kPage).offset), "world", 5);
  EXPECT_TRUE(SameBytes(Read(a + 6 * kPage, 5), "world"));
}

// A fault where the previous window ended doubles the window (up to
// kMaxFaultAround); a fault elsewhere starts again at kFaultAround.
TEST_F(MmTest, SequentialFaultsGrowTheWindow) {
  constexpr size_t kAround = MemoryManager::kFaultAround;
  uintptr_t a = MapFixed(kFixedArea, 1024 * kPage);
  ASSERT_TRUE(mm_->HandleFault(a));
  EXPECT_EQ(host_.InstalledIn(a, a + 1024 * kPage), kAround);
  ASSERT_TRUE(mm_->HandleFault(a + kAround * kPage));
  EXPECT_EQ(host_.InstalledIn(a, a + 1024 * kPage), kAround + 2 * kAround);
  ASSERT_TRUE(mm_->HandleFault(a + 3 * kAround * kPage));
  EXPECT_EQ(host_.InstalledIn(a, a + 1024 * kPage), 7 * kAround);
  // Elsewhere: back to the base window.
  ASSERT_TRUE(mm_->HandleFault(a + 900 * kPage));
  EXPECT_EQ(host_.InstalledIn(a + 900 * kPage, a + 1024 * kPage), kAround);
}

TEST_F(MmTest, FaultAroundStopsAtTheEndOfTheVma) {
  uintptr_t a = MapFixed(kFixedArea, 3 * kPage);
  MapFixed(a + 3 * kPage, 8 * kPage, PROT_READ);
  ASSERT_TRUE(mm_->HandleFault(a + kPage));
  EXPECT_EQ(host_.InstalledIn(a, a + 11 * kPage), 2u);
  EXPECT_TRUE(host_.IsInstalled(a + kPage));
  EXPECT_TRUE(host_.IsInstalled(a + 2 * kPage));
  EXPECT_EQ(mm_->ResidentBytes(), 2 * kPage);
}

TEST_F(MmTest, FaultAroundStopsAtAnInstalledPage) {
  uintptr_t a = MapFixed(kFixedArea, 64 * kPage);
  ASSERT_TRUE(mm_->HandleFault(a + 10 * kPage));
  host_.map_calls.clear();
  ASSERT_TRUE(mm_->HandleFault(a));
  EXPECT_EQ(MappedBytesIn(host_.map_calls), 10 * kPage);
  for (const auto& c : host_.map_calls) EXPECT_LE(c.addr + c.length, a + 10 * kPage);
  EXPECT_EQ(host_.InstalledIn(a, a + 64 * kPage), 10 + MemoryManager::kFaultAround);
}

TEST_F(MmTest, FaultOnAnInstalledPageIsAProtectionFault) {
  // The first fault on a read-only page installs it; a second one (a write)
  // must become SIGSEGV.
  uintptr_t a = MapFixed(kFixedArea, kPage, PROT_READ);
  ASSERT_TRUE(mm_->HandleFault(a));
  EXPECT_EQ(host_.pages.at(a).prot, PROT_READ);
  EXPECT_FALSE(mm_->HandleFault(a));
}

// Threads: a fault on a page that another thread installed after this one
// was switched in (its install generation is newer than the one noted) is
// retried, not a protection fault; an older full page still is one.
TEST_F(MmTest, FaultOnAPageASiblingInstalledMeanwhileIsRetried) {
  uintptr_t a = MapFixed(kFixedArea, kPage);
  const uint64_t noted = mm_->install_generation();  // this thread is switched in
  ASSERT_TRUE(mm_->HandleFault(a));                  // a sibling's fault installs it
  EXPECT_TRUE(mm_->HandleFault(a, nullptr, noted)) << "installed after the note: retry";
  EXPECT_FALSE(mm_->HandleFault(a, nullptr, mm_->install_generation()))
      << "installed before the note: a real protection fault";
  // A read-only page faulted on again after its install: a protection fault.
  uintptr_t b = MapFixed(kFixedArea + 16 * kPage, kPage, PROT_READ);
  ASSERT_TRUE(mm_->HandleFault(b));
  EXPECT_FALSE(mm_->HandleFault(b, nullptr, mm_->install_generation()));
}

// --- file mappings ---

TEST_F(MmTest, PrivateFileMappingReadsTheFile) {
  auto file = std::make_shared<FakeFile>(Pattern(3 * kPage + 100));
  uintptr_t a = MapFile(file, kFixedArea, 4 * kPage, kPage);
  EXPECT_EQ(file->reads(), 0) << "file pages are read on first touch";

  // File offset kPage onwards; the tail of the last page past EOF is zeros.
  EXPECT_TRUE(SameBytes(Read(a, 2 * kPage + 100), file->data().substr(kPage)));
  EXPECT_TRUE(SameBytes(Read(a + 2 * kPage + 100, kPage - 100), std::string(kPage - 100, '\0')));
  EXPECT_TRUE(SameBytes(Read(a + 3 * kPage, kPage), std::string(kPage, '\0')));

  MapsLine m = MapsAt(a);
  EXPECT_EQ(m.perms, "rw-p");
  EXPECT_EQ(m.offset, kPage);
  EXPECT_EQ(m.inode, 4242u);
  EXPECT_EQ(m.name, "/lib/libfake.so");
}

TEST_F(MmTest, FaultingAFileMappingInstallsTheFileContents) {
  auto file = std::make_shared<FakeFile>(Pattern(2 * kPage));
  uintptr_t a = MapFile(file, kFixedArea, 2 * kPage, 0, UINTPTR_MAX, PROT_READ | PROT_EXEC);
  ASSERT_TRUE(mm_->HandleFault(a));
  ASSERT_EQ(host_.InstalledIn(a, a + 2 * kPage), 2u);
  EXPECT_EQ(host_.pages.at(a).prot, PROT_READ | PROT_EXEC);
  uint64_t off = host_.pages.at(a + kPage).offset;
  EXPECT_EQ(std::string(mf_->At(off), kPage), file->data().substr(kPage));
}

TEST_F(MmTest, BytesPastFileEndReadAsZero) {
  // An ELF data segment: the file has more bytes, but past file_end is bss.
  auto file = std::make_shared<FakeFile>(Pattern(4 * kPage));
  uintptr_t file_end = kFixedArea + kPage + 300;
  uintptr_t a = MapFile(file, kFixedArea, 3 * kPage, 0, file_end);
  EXPECT_TRUE(SameBytes(Read(a, kPage + 300), file->data().substr(0, kPage + 300)));
  EXPECT_TRUE(SameBytes(Read(file_end, 2 * kPage - 300), std::string(2 * kPage - 300, '\0')));
}

TEST_F(MmTest, WritesToAPrivateFileMappingDoNotReachTheFile) {
  std::string original = Pattern(2 * kPage);
  auto file = std::make_shared<FakeFile>(original);
  uintptr_t a = MapFile(file, kFixedArea, 2 * kPage, 0);
  uintptr_t b = MapFile(file, kFixedArea + 4 * kPage, 2 * kPage, 0);
  Write(a + 10, "scribble");
  EXPECT_TRUE(SameBytes(Read(a + 10, 8), "scribble"));
  EXPECT_EQ(file->data(), original);
  EXPECT_TRUE(SameBytes(Read(b, 2 * kPage), original));

  // Dropping the private copy brings back the file's bytes.
  ASSERT_OK(mm_->Madvise(a, 2 * kPage, MADV_DONTNEED));
  EXPECT_TRUE(SameBytes(Read(a, 2 * kPage), original));
}

TEST_F(MmTest, SplittingAFileMappingKeepsOffsets) {
  auto file = std::make_shared<FakeFile>(Pattern(4 * kPage));
  uintptr_t a = MapFile(file, kFixedArea, 4 * kPage, 0);
  ASSERT_OK(mm_->Munmap(a, kPage));
  ASSERT_OK(mm_->Mprotect(a + 2 * kPage, kPage, PROT_READ));
  auto maps = Maps();
  ASSERT_EQ(maps.size(), 3u);
  EXPECT_EQ(maps[0].offset, kPage);
  EXPECT_EQ(maps[1].offset, 2 * kPage);
  EXPECT_EQ(maps[2].offset, 3 * kPage);
  EXPECT_TRUE(SameBytes(Read(a + kPage, 3 * kPage), file->data().substr(kPage)));
}

// --- madvise ---

TEST_F(MmTest, MadviseDontneedZeroesPrivateAnonymousMemory) {
  uintptr_t a = MapFixed(kFixedArea, 4 * kPage);
  std::string data = Pattern(4 * kPage);
  Write(a, data);
  ASSERT_TRUE(mm_->HandleFault(a));
  EXPECT_EQ(mm_->ResidentBytes(), 4 * kPage);

  ASSERT_OK(mm_->Madvise(a + kPage, 2 * kPage, MADV_DONTNEED));
  EXPECT_EQ(mm_->ResidentBytes(), 2 * kPage);
  EXPECT_EQ(host_.InstalledIn(a + kPage, a + 3 * kPage), 0u);
  EXPECT_TRUE(host_.UnmapCovered(a + kPage, a + 3 * kPage));
  EXPECT_TRUE(SameBytes(Read(a + kPage, 2 * kPage), std::string(2 * kPage, '\0')));
  EXPECT_TRUE(SameBytes(Read(a, kPage), data.substr(0, kPage)));
  EXPECT_TRUE(SameBytes(Read(a + 3 * kPage, kPage), data.substr(3 * kPage)));
  // The mapping itself stays.
  EXPECT_EQ(Maps().size(), 1u);
}

TEST_F(MmTest, MadviseDontneedKeepsSharedAnonymousMemory) {
  // madvise(2): shared anonymous mappings are repopulated from their
  // (shmem) contents, not zero-filled.
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage, kRw, MAP_SHARED);
  Write(a, "shared");
  ASSERT_OK(mm_->Madvise(a, 2 * kPage, MADV_DONTNEED));
  EXPECT_TRUE(SameBytes(Read(a, 6), "shared"));
}

TEST_F(MmTest, MadviseChecksItsArguments) {
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  EXPECT_ERRNO(mm_->Madvise(a + 1, kPage, MADV_DONTNEED), EINVAL);
  EXPECT_ERRNO(mm_->Madvise(a, kPage, 12345), EINVAL);
  EXPECT_ERRNO(mm_->Madvise(a, 4 * kPage, MADV_DONTNEED), ENOMEM);
  EXPECT_ERRNO(mm_->Madvise(a, SIZE_MAX, MADV_DONTNEED), EINVAL);
  EXPECT_ERRNO(mm_->Madvise(a, SIZE_MAX - kPage + 1, MADV_DONTNEED), EINVAL);
  EXPECT_OK(mm_->Madvise(a, 2 * kPage, MADV_WILLNEED));
  EXPECT_OK(mm_->Madvise(a, 0, MADV_DONTNEED));
}

// --- brk ---

TEST_F(MmTest, BrkGrowsAndShrinks) {
  constexpr uintptr_t kBrkBase = 0x600000 + 0x123;
  mm_->SetBrkBase(kBrkBase);
  EXPECT_EQ(mm_->Brk(0), kBrkBase);
  uintptr_t heap = PageUp(kBrkBase);

  uintptr_t top = kBrkBase + 3 * kPage;
  EXPECT_EQ(mm_->Brk(top), top);
  MapsLine m = MapsAt(heap);
  EXPECT_EQ(m.start, heap);
  EXPECT_EQ(m.end, PageUp(top));
  EXPECT_EQ(m.perms, "rw-p");
  EXPECT_EQ(m.name, "[heap]");
  Write(top - 10, "0123456789");
  Write(heap, "heap");

  // Shrinking unmaps the pages past the new break; growing again reads zeros.
  EXPECT_EQ(mm_->Brk(heap + 10), heap + 10);
  EXPECT_EQ(MapsAt(heap).end, heap + kPage);
  char c;
  EXPECT_ERRNO(mm_->CopyIn(heap + kPage, &c, 1), EFAULT);
  EXPECT_TRUE(SameBytes(Read(heap, 4), "heap"));
  EXPECT_EQ(mm_->Brk(top), top);
  EXPECT_TRUE(SameBytes(Read(top - 10, 10), std::string(10, '\0')));
  EXPECT_EQ(mm_->Brk(0), top);
}

TEST_F(MmTest, BrkNeverGoesBelowTheBase) {
  constexpr uintptr_t kBrkBase = 0x600000;
  mm_->SetBrkBase(kBrkBase);
  EXPECT_EQ(mm_->Brk(kBrkBase + kPage), kBrkBase + kPage);
  EXPECT_EQ(mm_->Brk(kBrkBase - kPage), kBrkBase + kPage);
  EXPECT_EQ(mm_->Brk(1), kBrkBase + kPage);
  EXPECT_EQ(MapsAt(kBrkBase).end, kBrkBase + kPage);
  // Back to the base empties the heap.
  EXPECT_EQ(mm_->Brk(kBrkBase), kBrkBase);
  EXPECT_TRUE(Maps().empty());
}

TEST_F(MmTest, BrkDoesNotGrowOverAMapping) {
  constexpr uintptr_t kBrkBase = 0x600000;
  mm_->SetBrkBase(kBrkBase);
  uintptr_t blocker = MapFixed(kBrkBase + 4 * kPage, kPage);
  Write(blocker, "mine");
  EXPECT_EQ(mm_->Brk(kBrkBase + 8 * kPage), kBrkBase);
  EXPECT_EQ(mm_->Brk(kBrkBase + 4 * kPage), kBrkBase + 4 * kPage);
  EXPECT_TRUE(SameBytes(Read(blocker, 4), "mine"));
  EXPECT_EQ(MapsAt(blocker).name, "");
}

// --- mremap ---

TEST_F(MmTest, MremapGrowsInPlace) {
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  std::string data = Pattern(2 * kPage);
  Write(a, data);
  auto r = mm_->Mremap(a, 2 * kPage, 5 * kPage, 0, 0);
  ASSERT_OK(r);
  EXPECT_EQ(*r, a);
  auto maps = Maps();
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_EQ(maps[0].start, a);
  EXPECT_EQ(maps[0].end, a + 5 * kPage);
  EXPECT_TRUE(SameBytes(Read(a, 2 * kPage), data));
  EXPECT_TRUE(SameBytes(Read(a + 2 * kPage, 3 * kPage), std::string(3 * kPage, '\0')));
}

TEST_F(MmTest, MremapCannotGrowInPlaceIntoAMapping) {
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  MapFixed(a + 3 * kPage, kPage, PROT_READ);
  EXPECT_ERRNO(mm_->Mremap(a, 2 * kPage, 4 * kPage, 0, 0), ENOMEM);
  EXPECT_EQ(MapsAt(a).end, a + 2 * kPage);
}

TEST_F(MmTest, MremapMayMoveMovesAndPreservesContents) {
  uintptr_t a = MapFixed(kFixedArea, 3 * kPage);
  MapFixed(a + 3 * kPage, kPage, PROT_READ);  // blocks growing in place
  std::string data = Pattern(3 * kPage);
  Write(a, data);
  ASSERT_TRUE(mm_->HandleFault(a));
  size_t resident = mm_->ResidentBytes();

  auto r = mm_->Mremap(a, 3 * kPage, 6 * kPage, MREMAP_MAYMOVE, 0);
  ASSERT_OK(r);
  uintptr_t b = *r;
  EXPECT_NE(b, a);
  EXPECT_EQ(b % kPage, 0u);
  EXPECT_TRUE(SameBytes(Read(b, 3 * kPage), data));
  EXPECT_TRUE(SameBytes(Read(b + 3 * kPage, 3 * kPage), std::string(3 * kPage, '\0')));
  MapsLine m = MapsAt(b);
  EXPECT_EQ(m.start, b);
  EXPECT_EQ(m.end, b + 6 * kPage);
  EXPECT_EQ(m.perms, "rw-p");

  // The old range is gone, from the MM and from the host.
  char c;
  EXPECT_ERRNO(mm_->CopyIn(a, &c, 1), EFAULT);
  EXPECT_EQ(host_.InstalledIn(a, a + 3 * kPage), 0u);
  EXPECT_FALSE(mm_->HandleFault(a));
  // The pages moved rather than being copied; the new tail was only read.
  EXPECT_EQ(mm_->ResidentBytes(), resident + 3 * kPage);
  EXPECT_TRUE(mm_->HandleFault(b));
  EXPECT_EQ(std::string(mf_->At(host_.pages.at(b).offset), 16), data.substr(0, 16));
}

TEST_F(MmTest, MremapMovingAFileMappingKeepsItsZeroTail) {
  // The bss past file_end must still read as zeros once the mapping moves.
  auto file = std::make_shared<FakeFile>(Pattern(4 * kPage));
  uintptr_t a = MapFile(file, kFixedArea, 2 * kPage, 0, kFixedArea + kPage + 300);
  MapFixed(a + 2 * kPage, kPage);  // blocks growing in place
  auto r = mm_->Mremap(a, 2 * kPage, 3 * kPage, MREMAP_MAYMOVE, 0);
  ASSERT_OK(r);
  uintptr_t b = *r;
  ASSERT_NE(b, a);
  EXPECT_TRUE(SameBytes(Read(b, kPage + 300), file->data().substr(0, kPage + 300)));
  EXPECT_TRUE(
      SameBytes(Read(b + kPage + 300, 2 * kPage - 300), std::string(2 * kPage - 300, '\0')));
}

TEST_F(MmTest, MremapShrinks) {
  uintptr_t a = MapFixed(kFixedArea, 4 * kPage);
  Write(a, "keep");
  ASSERT_TRUE(mm_->HandleFault(a));
  auto r = mm_->Mremap(a, 4 * kPage, kPage, 0, 0);
  ASSERT_OK(r);
  EXPECT_EQ(*r, a);
  EXPECT_EQ(MapsAt(a).end, a + kPage);
  EXPECT_TRUE(SameBytes(Read(a, 4), "keep"));
  char c;
  EXPECT_ERRNO(mm_->CopyIn(a + kPage, &c, 1), EFAULT);
  EXPECT_EQ(host_.InstalledIn(a + kPage, a + 4 * kPage), 0u);
  EXPECT_EQ(mm_->ResidentBytes(), kPage);
}

TEST_F(MmTest, MremapChecksItsArguments) {
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  EXPECT_ERRNO(mm_->Mremap(a + 1, kPage, 2 * kPage, MREMAP_MAYMOVE, 0), EINVAL);
  EXPECT_ERRNO(mm_->Mremap(a, 2 * kPage, 0, MREMAP_MAYMOVE, 0), EINVAL);
  EXPECT_ERRNO(mm_->Mremap(a, 2 * kPage, 4 * kPage, 0x100, 0), EINVAL);
  EXPECT_ERRNO(mm_->Mremap(a, 2 * kPage, 4 * kPage, MREMAP_FIXED, a + 8 * kPage), EINVAL);
  // Not mapped, or the old range runs past the mapping.
  EXPECT_ERRNO(mm_->Mremap(kFixedArea + 0x100000, kPage, 2 * kPage, MREMAP_MAYMOVE, 0), EFAULT);
  EXPECT_ERRNO(mm_->Mremap(a, 3 * kPage, 4 * kPage, MREMAP_MAYMOVE, 0), EFAULT);
  EXPECT_EQ(MapsAt(a).end, a + 2 * kPage);
}

// --- fork ---

TEST_F(MmTest, ForkGivesAnIndependentCopy) {
  mm_->SetBrkBase(0x600000);
  ASSERT_EQ(mm_->Brk(0x600000 + 2 * kPage), 0x600000 + 2 * kPage);
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  std::string data = Pattern(2 * kPage);
  Write(a, data);
  ASSERT_TRUE(mm_->HandleFault(a));

  auto forked = mm_->Fork();
  ASSERT_OK(forked);
  std::unique_ptr<MemoryManager> child = std::move(forked).value();
  HostState child_host;
  child->AttachAddressSpace(std::make_unique<FakeAddressSpace>(&child_host));

  EXPECT_EQ(child->ProcMaps(), mm_->ProcMaps());
  EXPECT_EQ(child->Brk(0), 0x600000 + 2 * kPage);
  EXPECT_EQ(child->ResidentBytes(), mm_->ResidentBytes());
  std::string seen(data.size(), '\0');
  ASSERT_OK(child->CopyIn(a, seen.data(), seen.size()));
  EXPECT_TRUE(SameBytes(seen, data));

  // Child writes stay in the child; parent writes stay in the parent.
  ASSERT_OK(child->CopyOut(a, "child", 5));
  EXPECT_TRUE(SameBytes(Read(a, 5), data.substr(0, 5)));
  Write(a + kPage, "parent");
  ASSERT_OK(child->CopyIn(a + kPage, seen.data(), 6));
  EXPECT_EQ(seen.substr(0, 6), data.substr(kPage, 6));

  // The child's faults install its own memory-file pages (fork took the
  // parent's host mappings away: its next touch faults them back in).
  ASSERT_TRUE(child->HandleFault(a));
  ASSERT_TRUE(mm_->HandleFault(a));
  EXPECT_NE(child_host.pages.at(a).offset, host_.pages.at(a).offset);
  EXPECT_EQ(std::string(mf_->At(child_host.pages.at(a).offset), 5), "child");

  // Unmapping in the child leaves the parent alone.
  ASSERT_OK(child->Munmap(a, 2 * kPage));
  EXPECT_TRUE(SameBytes(Read(a, 5), data.substr(0, 5)));
  // Destroying the child returns its pages and only its pages.
  child.reset();
  EXPECT_EQ(mf_->used_bytes(), mm_->ResidentBytes());
  EXPECT_TRUE(SameBytes(Read(a + kPage, 6), "parent"));
}

TEST_F(MmTest, ForkSharesPagesUntilOneSideWrites) {
  uintptr_t a = MapFixed(kFixedArea, 4 * kPage);
  std::string data = Pattern(4 * kPage);
  Write(a, data);
  ASSERT_TRUE(mm_->HandleFault(a));
  ASSERT_EQ(mf_->used_bytes(), 4 * kPage);
  EXPECT_TRUE(host_.pages.at(a).prot & PROT_WRITE);

  auto forked = mm_->Fork();
  ASSERT_OK(forked);
  std::unique_ptr<MemoryManager> child = std::move(forked).value();
  HostState child_host;
  child->AttachAddressSpace(std::make_unique<FakeAddressSpace>(&child_host));
  // Nothing was copied, and the parent's host mappings became read-only.
  EXPECT_EQ(mf_->used_bytes(), 4 * kPage);
  ASSERT_EQ(host_.pages.count(a), 1u);
  EXPECT_FALSE(host_.pages.at(a).prot & PROT_WRITE);

  // The child's first touch installs the shared page read-only.
  ASSERT_TRUE(child->HandleFault(a));
  EXPECT_EQ(child_host.pages.at(a).offset, host_.pages.at(a).offset);
  EXPECT_FALSE(child_host.pages.at(a).prot & PROT_WRITE);
  EXPECT_FALSE(host_.pages.at(a).prot & PROT_WRITE);

  // A write fault on it (the page is installed) copies it for the writer.
  uint64_t shared = host_.pages.at(a).offset;
  ASSERT_TRUE(child->HandleFault(a));
  EXPECT_NE(child_host.pages.at(a).offset, shared);
  EXPECT_TRUE(child_host.pages.at(a).prot & PROT_WRITE);
  EXPECT_EQ(mf_->used_bytes(), 5 * kPage);
  memcpy(mf_->At(child_host.pages.at(a).offset), "CHILD", 5);
  EXPECT_TRUE(SameBytes(Read(a, 5), data.substr(0, 5)));
  std::string seen(5, '\0');
  ASSERT_OK(child->CopyIn(a, seen.data(), 5));
  EXPECT_EQ(seen, "CHILD");
  // The parent is now the page's only holder: its write fault keeps it, and
  // the next pages, still shared with the child, stay read-only.
  ASSERT_TRUE(mm_->HandleFault(a));
  EXPECT_EQ(host_.pages.at(a).offset, shared);
  EXPECT_TRUE(host_.pages.at(a).prot & PROT_WRITE);
  EXPECT_FALSE(host_.pages.at(a + kPage).prot & PROT_WRITE);
  EXPECT_EQ(mf_->used_bytes(), 5 * kPage);

  // A sentry write (CopyOut) into a shared page (installed read-only in the
  // child by the first fault's fault-around) copies it too, and drops the
  // stale read-only host mapping.
  ASSERT_EQ(child_host.pages.count(a + 2 * kPage), 1u);
  EXPECT_FALSE(child_host.pages.at(a + 2 * kPage).prot & PROT_WRITE);
  ASSERT_OK(child->CopyOut(a + 2 * kPage, "copy", 4));
  EXPECT_EQ(child_host.pages.count(a + 2 * kPage), 0u);
  EXPECT_TRUE(SameBytes(Read(a + 2 * kPage, 4), data.substr(2 * kPage, 4)));
  EXPECT_EQ(mf_->used_bytes(), 6 * kPage);

  // The child going away drops its references only; then one write fault
  // in the parent re-enables writes on the pages that are its own again.
  child.reset();
  EXPECT_EQ(mf_->used_bytes(), 4 * kPage);
  EXPECT_TRUE(SameBytes(Read(a, 4 * kPage), data));
  ASSERT_TRUE(mm_->HandleFault(a + kPage));
  for (uintptr_t p = a + kPage; p < a + 4 * kPage; p += kPage) {
    EXPECT_TRUE(host_.pages.at(p).prot & PROT_WRITE) << (p - a) / kPage;
  }
  EXPECT_EQ(mf_->used_bytes(), 4 * kPage);
}

TEST_F(MmTest, ForkUnmapsWhenThePlatformCannotWriteProtect) {
  host_.supports_protect = false;
  uintptr_t a = MapFixed(kFixedArea, 2 * kPage);
  Write(a, "x");
  ASSERT_TRUE(mm_->HandleFault(a));
  auto forked = mm_->Fork();
  ASSERT_OK(forked);
  EXPECT_EQ(host_.pages.count(a), 0u);  // no writable mapping survives
  ASSERT_TRUE(mm_->HandleFault(a));     // reinstalled read-only (shared)
  EXPECT_FALSE(host_.pages.at(a).prot & PROT_WRITE);
  ASSERT_TRUE(mm_->HandleFault(a));  // the write fault copies
  EXPECT_TRUE(host_.pages.at(a).prot & PROT_WRITE);
}

TEST_F(MmTest, ForkKeepsSharedMappingsShared) {
  MmapRequest req;
  req.length = kPage;
  req.prot = PROT_READ | PROT_WRITE;
  req.flags = MAP_SHARED | MAP_ANONYMOUS;
  auto a = mm_->Mmap(req);
  ASSERT_OK(a);
  Write(*a, "before");
  auto forked = mm_->Fork();
  ASSERT_OK(forked);
  std::unique_ptr<MemoryManager> child = std::move(forked).value();
  HostState child_host;
  child->AttachAddressSpace(std::make_unique<FakeAddressSpace>(&child_host));
  ASSERT_OK(child->CopyOut(*a, "after!", 6));
  EXPECT_EQ(Read(*a, 6), "after!");  // MAP_SHARED: both see the write
  ASSERT_TRUE(child->HandleFault(*a));
  EXPECT_TRUE(child_host.pages.at(*a).prot & PROT_WRITE);
}

// --- accounting ---

TEST_F(MmTest, ResidentBytesFollowsTouchedPages) {
  uintptr_t a = MapFixed(kFixedArea, 8 * kPage);
  EXPECT_EQ(mm_->ResidentBytes(), 0u);
  Write(a, "x");
  EXPECT_EQ(mm_->ResidentBytes(), kPage);
  Write(a + 5, "y");
  EXPECT_EQ(mm_->ResidentBytes(), kPage);
  Write(a + 3 * kPage, "z");
  Write(a + 7 * kPage - 4, "straddles");
  EXPECT_EQ(mm_->ResidentBytes(), 4 * kPage);
  EXPECT_EQ(mf_->used_bytes(), 4 * kPage);

  ASSERT_OK(mm_->Munmap(a + 3 * kPage, kPage));
  EXPECT_EQ(mm_->ResidentBytes(), 3 * kPage);
  ASSERT_OK(mm_->Munmap(a, 8 * kPage));
  EXPECT_EQ(mm_->ResidentBytes(), 0u);
  EXPECT_EQ(mf_->used_bytes(), 0u);
}

TEST_F(MmTest, DestroyingTheAddressSpaceReturnsItsMemory) {
  uintptr_t a = MapFixed(kFixedArea, 32 * kPage);
  ASSERT_TRUE(mm_->HandleFault(a));
  Write(a + 20 * kPage, "x");
  EXPECT_GT(mf_->used_bytes(), 0u);
  mm_.reset();
  EXPECT_EQ(mf_->used_bytes(), 0u);
}

// --- special mappings (the vDSO's pages) ---

class SpecialTest : public MmTest {
 protected:
  void SetUp() override {
    MmTest::SetUp();
    auto off = mf_->Allocate(2);
    ASSERT_OK(off);
    memcpy(mf_->At(*off), Pattern(2 * kPage).data(), 2 * kPage);
    code_ =
        std::make_shared<SpecialPages>(*mf_, *off, 2, "[vdso]", PROT_READ | PROT_WRITE | PROT_EXEC);
    auto data = mf_->Allocate(1);
    ASSERT_OK(data);
    data_ = std::make_shared<SpecialPages>(*mf_, *data, 1, "[vvar]", PROT_READ);
  }
  void TearDown() override {
    mm_.reset();
    code_.reset();
    data_.reset();
    EXPECT_EQ(mf_->used_bytes(), 0u);
  }
  uintptr_t MapSpecial(std::shared_ptr<SpecialPages> pages, uintptr_t addr, int prot) {
    MmapRequest req;
    req.addr = addr;
    req.length = pages->bytes();
    req.prot = prot;
    req.flags = MAP_PRIVATE | MAP_FIXED;
    req.special = std::move(pages);
    auto r = mm_->Mmap(req);
    EXPECT_TRUE(r.ok()) << "errno " << (r.ok() ? 0 : r.error());
    return r.ok() ? *r : 0;
  }
  std::shared_ptr<SpecialPages> code_, data_;
};

TEST_F(SpecialTest, EveryAddressSpaceMapsTheSamePages) {
  const uintptr_t v = MapSpecial(data_, kFixedArea, PROT_READ);
  const uintptr_t c = MapSpecial(code_, kFixedArea + kPage, PROT_READ | PROT_EXEC);
  ASSERT_TRUE(mm_->HandleFault(c));
  ASSERT_TRUE(mm_->HandleFault(v));
  EXPECT_EQ(host_.pages.at(c).offset, code_->offset());
  EXPECT_EQ(host_.pages.at(c + kPage).offset, code_->offset() + kPage);
  EXPECT_EQ(host_.pages.at(c).prot, PROT_READ | PROT_EXEC);
  EXPECT_EQ(host_.pages.at(v).offset, data_->offset());
  EXPECT_EQ(host_.pages.at(v).prot, PROT_READ);
  // What the sentry writes to its page, the application reads.
  memcpy(mf_->At(data_->offset()), "tick", 4);
  EXPECT_EQ(Read(v, 4), "tick");
  EXPECT_TRUE(SameBytes(Read(c, 2 * kPage), Pattern(2 * kPage)));
  // No memory of its own: the pages are the sentry's.
  EXPECT_EQ(mf_->used_bytes(), 3 * kPage);

  auto maps = Maps();
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0].name, "[vvar]");
  EXPECT_EQ(maps[0].perms, "r--p");
  EXPECT_EQ(maps[1].name, "[vdso]");
  EXPECT_EQ(maps[1].perms, "r-xp");
  EXPECT_EQ(maps[1].end - maps[1].start, 2 * kPage);

  // A fork maps them too.
  auto forked = mm_->Fork();
  ASSERT_OK(forked);
  std::unique_ptr<MemoryManager> child = std::move(forked).value();
  HostState child_host;
  child->AttachAddressSpace(std::make_unique<FakeAddressSpace>(&child_host));
  ASSERT_TRUE(child->HandleFault(c));
  EXPECT_EQ(child_host.pages.at(c).offset, code_->offset());
  EXPECT_EQ(child->ProcMaps(), mm_->ProcMaps());
}

TEST_F(SpecialTest, WritesCopyThePageForOneAddressSpace) {
  const uintptr_t c = MapSpecial(code_, kFixedArea, PROT_READ | PROT_EXEC);
  // A debugger's breakpoint (ptrace's forced write).
  ASSERT_OK(mm_->ForceCopyOut(c + 8, "\xcc", 1));
  EXPECT_EQ(Read(c + 8, 1), "\xcc");
  EXPECT_EQ(mf_->At(code_->offset())[8], Pattern(1 + 8)[8]);
  // mprotect may make the code writable; the write is this space's own.
  ASSERT_OK(mm_->Mprotect(c + kPage, kPage, PROT_READ | PROT_WRITE));
  Write(c + kPage, "mine");
  EXPECT_NE(std::string(mf_->At(code_->offset() + kPage), 4), "mine");
  // MADV_DONTNEED brings the original back.
  ASSERT_OK(mm_->Madvise(c, 2 * kPage, MADV_DONTNEED));
  EXPECT_TRUE(SameBytes(Read(c, 2 * kPage), Pattern(2 * kPage)));
}

TEST_F(SpecialTest, TheDataPageStaysReadOnly) {
  const uintptr_t v = MapSpecial(data_, kFixedArea, PROT_READ);
  EXPECT_EQ(mm_->Mprotect(v, kPage, PROT_READ | PROT_WRITE).error(), EACCES);
  EXPECT_EQ(mm_->Mprotect(v, kPage, PROT_READ | PROT_EXEC).error(), EACCES);
  ASSERT_OK(mm_->Mprotect(v, kPage, PROT_NONE));
  ASSERT_OK(mm_->Mprotect(v, kPage, PROT_READ));
  EXPECT_EQ(MapsAt(v).name, "[vvar]");
  EXPECT_FALSE(mm_->CopyOut(v, "x", 1).ok());
  // Nor does ptrace write it (it would get a copy the clock never updates).
  EXPECT_EQ(mm_->ForceCopyOut(v, "x", 1).error(), EFAULT);
  char c;
  EXPECT_OK(mm_->ForceCopyIn(v, &c, 1));
}

TEST_F(SpecialTest, MremapMovesButNeverGrows) {
  const uintptr_t c = MapSpecial(code_, kFixedArea, PROT_READ | PROT_EXEC);
  EXPECT_EQ(mm_->Mremap(c, 2 * kPage, 3 * kPage, MREMAP_MAYMOVE, 0).error(), EFAULT);
  auto moved =
      mm_->Mremap(c, 2 * kPage, 2 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, kFixedArea + 16 * kPage);
  ASSERT_OK(moved);
  EXPECT_EQ(MapsAt(*moved).name, "[vdso]");
  EXPECT_TRUE(SameBytes(Read(*moved, 2 * kPage), Pattern(2 * kPage)));
  ASSERT_TRUE(mm_->HandleFault(*moved + kPage));
  EXPECT_EQ(host_.pages.at(*moved + kPage).offset, code_->offset() + kPage);
  // Unmapping part of it keeps the rest at its offset.
  ASSERT_OK(mm_->Munmap(*moved, kPage));
  EXPECT_TRUE(SameBytes(Read(*moved + kPage, kPage), Pattern(2 * kPage).substr(kPage)));
}

TEST_F(SpecialTest, MmapChecksTheRequest) {
  MmapRequest req;
  req.addr = kFixedArea;
  req.length = 3 * kPage;  // longer than the pages
  req.prot = PROT_READ;
  req.flags = MAP_PRIVATE | MAP_FIXED;
  req.special = code_;
  EXPECT_EQ(mm_->Mmap(req).error(), EINVAL);
  req.length = kPage;
  req.flags = MAP_SHARED | MAP_FIXED;
  EXPECT_EQ(mm_->Mmap(req).error(), EINVAL);
}

}  // namespace
}  // namespace husk

namespace husk {
namespace {

// --- /proc counters ---

TEST_F(MmTest, UsageCountsMappingsByKindAndResidentPages) {
  uintptr_t data = MapFixed(kFixedArea, 8 * kPage);
  Write(data, "x");
  Write(data + 5 * kPage, "y");
  auto file = std::make_shared<FakeFile>(std::string(4 * kPage, 'f'));
  uintptr_t text =
      MapFile(file, kFixedArea + 16 * kPage, 4 * kPage, 0, UINTPTR_MAX, PROT_READ | PROT_EXEC);
  ASSERT_EQ(Read(text, 1), "f");
  mm_->SetCodeRange(text + 10, text + 3 * kPage - 1);

  MemoryUsage u = mm_->Usage();
  EXPECT_EQ(u.total, 12u);
  EXPECT_EQ(u.data, 8u);
  EXPECT_EQ(u.exec, 4u);
  EXPECT_EQ(u.stack, 0u);
  EXPECT_EQ(u.text, 3u);
  EXPECT_EQ(u.rss_anon, 2u);
  EXPECT_EQ(u.rss_file, 1u);
  EXPECT_EQ(u.rss(), mm_->ResidentBytes() / kPage);
  EXPECT_EQ(u.start_code, text + 10);

  // The high-water marks stay where they were when the memory goes.
  ASSERT_OK(mm_->Munmap(data, 8 * kPage));
  u = mm_->Usage();
  EXPECT_EQ(u.total, 4u);
  EXPECT_EQ(u.peak_total, 12u);
  EXPECT_EQ(u.rss(), 1u);
  EXPECT_EQ(u.peak_rss, 3u);
}

TEST_F(MmTest, SmapsFollowsEachMapsLineWithItsCounters) {
  uintptr_t a = MapFixed(kFixedArea, 4 * kPage);
  Write(a + kPage, "x");
  std::string smaps = mm_->ProcSmaps();
  EXPECT_EQ(smaps.rfind(mm_->ProcMaps(), 0), 0u) << smaps;
  EXPECT_NE(smaps.find("\nSize:                 16 kB\n"), std::string::npos) << smaps;
  EXPECT_NE(smaps.find("\nRss:                   4 kB\n"), std::string::npos) << smaps;
  EXPECT_NE(smaps.find("\nPss:                   4 kB\n"), std::string::npos) << smaps;
  EXPECT_NE(smaps.find("\nAnonymous:             4 kB\n"), std::string::npos) << smaps;
  EXPECT_NE(smaps.find("\nPrivate_Dirty:         4 kB\n"), std::string::npos) << smaps;
  EXPECT_NE(smaps.find("\nVmFlags: rd wr mr mw me ac \n"), std::string::npos) << smaps;

  // Shared with a fork: each holds half of the page.
  auto forked = mm_->Fork();
  ASSERT_OK(forked);
  smaps = mm_->ProcSmaps();
  EXPECT_NE(smaps.find("\nPss:                   2 kB\n"), std::string::npos) << smaps;
  EXPECT_NE(smaps.find("\nShared_Dirty:          4 kB\n"), std::string::npos) << smaps;
}

}  // namespace
}  // namespace husk
