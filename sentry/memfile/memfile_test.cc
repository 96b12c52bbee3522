#include "sentry/memfile/memfile.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/memfile/account.h"

namespace husk {
namespace {

constexpr size_t kMaxBytes = 64 << 20;

std::unique_ptr<MemoryFile> NewMemoryFile(size_t max_bytes = kMaxBytes) {
  auto mf = MemoryFile::Create(max_bytes);
  EXPECT_TRUE(mf.ok()) << "errno " << (mf.ok() ? 0 : mf.error());
  return mf.ok() ? std::move(mf).value() : nullptr;
}

bool AllZero(const char* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != 0) return false;
  }
  return true;
}

TEST(MemoryFileTest, CreateRoundsSizeUpToPages) {
  auto mf = NewMemoryFile(kPageSize + 1);
  ASSERT_NE(mf, nullptr);
  EXPECT_EQ(mf->max_bytes(), 2 * kPageSize);
  EXPECT_EQ(mf->used_bytes(), 0u);
  EXPECT_GE(mf->fd(), 0);
}

TEST(MemoryFileTest, AllocateZeroPagesIsInvalid) {
  auto mf = NewMemoryFile();
  ASSERT_NE(mf, nullptr);
  EXPECT_ERRNO(mf->Allocate(0), EINVAL);
  EXPECT_EQ(mf->used_bytes(), 0u);
}

TEST(MemoryFileTest, AllocateReturnsDistinctAlignedZeroedPages) {
  auto mf = NewMemoryFile();
  ASSERT_NE(mf, nullptr);
  std::set<uint64_t> seen;
  for (size_t pages : {1, 3, 1, 8}) {
    auto off = mf->Allocate(pages);
    ASSERT_OK(off);
    EXPECT_EQ(*off % kPageSize, 0u);
    EXPECT_LE(*off + pages * kPageSize, mf->max_bytes());
    EXPECT_TRUE(AllZero(mf->At(*off), pages * kPageSize));
    for (size_t i = 0; i < pages; i++) {
      EXPECT_TRUE(seen.insert(*off + i * kPageSize).second) << "page handed out twice";
    }
    // Dirty them so that a page handed out twice would also show as non-zero.
    memset(mf->At(*off), 0x5a, pages * kPageSize);
  }
}

TEST(MemoryFileTest, AtAndFdAreViewsOfTheSameBytes) {
  // Platforms map fd() into application address spaces while the sentry
  // copies through At(): both must see the same memory.
  auto mf = NewMemoryFile();
  ASSERT_NE(mf, nullptr);
  auto off = mf->Allocate(2);
  ASSERT_OK(off);
  const std::string text = "written through At";
  memcpy(mf->At(*off + kPageSize - 4), text.data(), text.size());
  std::string back(text.size(), '\0');
  ASSERT_EQ(pread(mf->fd(), back.data(), back.size(), static_cast<off_t>(*off + kPageSize - 4)),
            static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, text);

  const std::string other = "written through the fd";
  ASSERT_EQ(pwrite(mf->fd(), other.data(), other.size(), static_cast<off_t>(*off)),
            static_cast<ssize_t>(other.size()));
  EXPECT_EQ(std::string(mf->At(*off), other.size()), other);
}

TEST(MemoryFileTest, UsedBytesTracksAllocateAndFree) {
  auto mf = NewMemoryFile();
  ASSERT_NE(mf, nullptr);
  auto a = mf->Allocate(1);
  auto b = mf->Allocate(4);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(mf->used_bytes(), 5 * kPageSize);
  mf->Free(*b, 4);
  EXPECT_EQ(mf->used_bytes(), kPageSize);
  mf->Free(*a, 1);
  EXPECT_EQ(mf->used_bytes(), 0u);
}

TEST(MemoryFileTest, FreedPageIsReusedAndReadsAsZero) {
  auto mf = NewMemoryFile();
  ASSERT_NE(mf, nullptr);
  auto off = mf->Allocate(1);
  ASSERT_OK(off);
  memset(mf->At(*off), 0xab, kPageSize);
  mf->Free(*off, 1);
  EXPECT_EQ(mf->used_bytes(), 0u);
  mf->WaitForReleases();
  EXPECT_EQ(mf->releasing_bytes(), 0u);

  auto again = mf->Allocate(1);
  ASSERT_OK(again);
  EXPECT_EQ(*again, *off);
  EXPECT_TRUE(AllZero(mf->At(*again), kPageSize));
  EXPECT_EQ(mf->used_bytes(), kPageSize);
}

TEST(MemoryFileTest, PagesOfAFreedRunAreReusedOneByOne) {
  auto mf = NewMemoryFile();
  ASSERT_NE(mf, nullptr);
  auto run = mf->Allocate(3);
  ASSERT_OK(run);
  memset(mf->At(*run), 0x11, 3 * kPageSize);
  mf->Free(*run, 3);
  mf->WaitForReleases();

  std::set<uint64_t> reused;
  for (int i = 0; i < 3; i++) {
    auto off = mf->Allocate(1);
    ASSERT_OK(off);
    EXPECT_TRUE(AllZero(mf->At(*off), kPageSize));
    reused.insert(*off);
  }
  EXPECT_EQ(reused, (std::set<uint64_t>{*run, *run + kPageSize, *run + 2 * kPageSize}));
  EXPECT_EQ(mf->used_bytes(), 3 * kPageSize);
}

// Freed pages come back lowest first and in address order, whatever order
// they were freed in, so single-page allocations for neighbouring
// addresses get neighbouring file pages (one host mapping for the lot).
TEST(MemoryFileTest, FreedPagesComeBackInAscendingRuns) {
  auto mf = NewMemoryFile();
  ASSERT_NE(mf, nullptr);
  auto run = mf->Allocate(8);
  ASSERT_OK(run);
  for (int i = 7; i >= 0; i--) mf->Free(*run + i * kPageSize, 1);  // freed backwards
  mf->WaitForReleases();
  for (int i = 0; i < 8; i++) {
    auto off = mf->Allocate(1);
    ASSERT_OK(off);
    EXPECT_EQ(*off, *run + i * kPageSize) << i;
  }
}

// Bytes of host memory the file holds.
uint64_t HeldBytes(const MemoryFile& mf) {
  struct stat st {};
  if (fstat(mf.fd(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

// Once pages are being taken, the pages to be handed out next get host
// memory ahead of time (off the allocating thread), and still read as zeros.
TEST(MemoryFileTest, PagesToBeHandedOutNextArePreparedAhead) {
  auto mf = NewMemoryFile();
  ASSERT_NE(mf, nullptr);
  mf->StartReleaser();
  uint64_t last = 0;
  for (int i = 0; i < 1024; i++) {  // 4 MiB, half the amount prepared
    auto off = mf->Allocate(1);
    ASSERT_OK(off);
    mf->At(*off)[0] = 1;
    last = *off;
  }
  // 4 MiB written, and 8 MiB after it prepared.
  const uint64_t want = (uint64_t{4} + 8) << 20;
  for (int tries = 0; tries < 400 && HeldBytes(*mf) < want; tries++) usleep(5000);
  EXPECT_EQ(HeldBytes(*mf), want);
  auto after = mf->Allocate(1);
  ASSERT_OK(after);
  EXPECT_EQ(*after, last + kPageSize);
  EXPECT_TRUE(AllZero(mf->At(*after), kPageSize));
}

TEST(MemoryFileTest, AllocationBeyondMaxFails) {
  auto mf = NewMemoryFile(16 * kPageSize);
  ASSERT_NE(mf, nullptr);
  EXPECT_ERRNO(mf->Allocate(17), ENOMEM);
  EXPECT_EQ(mf->used_bytes(), 0u);

  auto all = mf->Allocate(16);
  ASSERT_OK(all);
  EXPECT_EQ(mf->used_bytes(), 16 * kPageSize);
  EXPECT_ERRNO(mf->Allocate(1), ENOMEM);
  EXPECT_EQ(mf->used_bytes(), 16 * kPageSize);

  // A freed page can be handed out again once the file is full (at once:
  // the allocation waits for the page to come back from the host).
  mf->Free(*all + 5 * kPageSize, 1);
  auto one = mf->Allocate(1);
  ASSERT_OK(one);
  EXPECT_EQ(*one, *all + 5 * kPageSize);
}

TEST(MemoryFileTest, HugePageCountFailsInsteadOfWrapping) {
  auto mf = NewMemoryFile(16 * kPageSize);
  ASSERT_NE(mf, nullptr);
  // pages * kPageSize wraps to 0 (and to one page) in 64 bits.
  EXPECT_ERRNO(mf->Allocate(SIZE_MAX / kPageSize + 1), ENOMEM);
  EXPECT_ERRNO(mf->Allocate(SIZE_MAX / kPageSize + 2), ENOMEM);
  EXPECT_ERRNO(mf->Allocate(SIZE_MAX), ENOMEM);
  EXPECT_EQ(mf->used_bytes(), 0u);
  // The allocator is still intact.
  auto off = mf->Allocate(16);
  ASSERT_OK(off);
  EXPECT_EQ(*off, 0u);
}

TEST(MemoryAccountTest, LimitCoversMemoryFilePagesAndAccountedPages) {
  MemoryAccount& account = MemoryAccount::Sandbox();
  auto mf = NewMemoryFile(64 * kPageSize);
  ASSERT_NE(mf, nullptr);
  const uint64_t base = account.used();
  account.SetLimit(base + 4 * kPageSize);
  auto three = mf->Allocate(3);
  ASSERT_OK(three);
  AccountedPage page = NewAccountedPage();
  ASSERT_NE(page, nullptr);
  // At the limit: neither kind of memory is handed out.
  EXPECT_ERRNO(mf->Allocate(1), ENOMEM);
  EXPECT_EQ(NewAccountedPage(), nullptr);
  EXPECT_EQ(account.used(), base + 4 * kPageSize);
  // Freeing gives the charge back, once the host has the memory.
  page.reset();
  mf->Free(*three, 3);
  mf->WaitForReleases();
  EXPECT_EQ(account.used(), base);
  ASSERT_OK(mf->Allocate(4));
  account.SetLimit(UINT64_MAX);
}

// Memory freed but not yet returned to the host stays charged; a charge at
// the limit waits for it instead of failing, so freeing and allocating
// again at once works as on Linux.
TEST(MemoryAccountTest, ChargeAtTheLimitWaitsForFreedMemory) {
  MemoryAccount& account = MemoryAccount::Sandbox();
  auto mf = NewMemoryFile(1024 * kPageSize);
  ASSERT_NE(mf, nullptr);
  const uint64_t base = account.used();
  account.SetLimit(base + 256 * kPageSize);
  for (int round = 0; round < 50; round++) {
    auto all = mf->Allocate(256);
    ASSERT_OK(all) << "round " << round;
    memset(mf->At(*all), 0x5a, 256 * kPageSize);
    mf->Free(*all, 256);
    EXPECT_LE(account.used(), base + 256 * kPageSize);
    // Page by page too: singles come from the runs freed before.
    std::vector<uint64_t> singles;
    for (int i = 0; i < 256; i++) {
      auto one = mf->Allocate(1);
      ASSERT_OK(one) << "round " << round << " page " << i;
      EXPECT_TRUE(AllZero(mf->At(*one), kPageSize));
      mf->At(*one)[0] = 1;
      singles.push_back(*one);
    }
    mf->FreePages(std::move(singles));
  }
  mf->WaitForReleases();
  EXPECT_EQ(account.used(), base);
  EXPECT_EQ(mf->used_bytes(), 0u);
  account.SetLimit(UINT64_MAX);
}

}  // namespace
}  // namespace husk
