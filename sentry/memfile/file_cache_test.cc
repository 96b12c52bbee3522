#include "sentry/memfile/file_cache.h"

#include <errno.h>

#include <cstdint>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "sentry/memfile/account.h"
#include "sentry/memfile/memfile.h"

namespace husk {
namespace {

// A file of `size` bytes whose byte at offset o is 'a' + o % 23; counts reads.
struct FakeFile {
  uint64_t size;
  int reads = 0;
  int fail_with = 0;
  Result<size_t> Read(uint64_t offset, char* buf, size_t n) {
    reads++;
    if (fail_with != 0) return Errno{fail_with};
    if (offset >= size) return size_t{0};
    n = static_cast<size_t>(std::min<uint64_t>(n, size - offset));
    for (size_t i = 0; i < n; i++) buf[i] = static_cast<char>('a' + (offset + i) % 23);
    return n;
  }
};

class FileCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mf = MemoryFile::Create(size_t{1} << 30);
    ASSERT_TRUE(mf.ok());
    mf_ = std::move(*mf);
    FileCache::SetBudget(size_t{1} << 20);
  }
  void TearDown() override { FileCache::SetBudget(size_t{64} << 20 >> 12); }
  Result<uint64_t> Page(FileCache& c, FakeFile& f, uint64_t index) {
    return c.Page(index, [&f](uint64_t o, char* b, size_t n) { return f.Read(o, b, n); });
  }
  std::unique_ptr<MemoryFile> mf_;
};

TEST_F(FileCacheTest, AChunkIsReadOnceAndSharedWithEveryCaller) {
  FakeFile f{3 * FileCache::kChunkPages * kPageSize + 100};
  auto cache = FileCache::Create(*mf_, f.size);
  auto p5 = Page(*cache, f, 5);
  ASSERT_TRUE(p5.ok());
  EXPECT_EQ(f.reads, 1);
  EXPECT_EQ(mf_->At(*p5)[7], static_cast<char>('a' + (5 * kPageSize + 7) % 23));
  // The rest of the chunk came with it, in neighbouring pages.
  auto p6 = Page(*cache, f, 6);
  ASSERT_TRUE(p6.ok());
  EXPECT_EQ(*p6, *p5 + kPageSize);
  EXPECT_EQ(Page(*cache, f, 5).value(), *p5);
  EXPECT_EQ(f.reads, 1);
  EXPECT_EQ(cache->cached_pages(), FileCache::kChunkPages);
  // Each caller holds a reference of its own next to the cache's.
  EXPECT_TRUE(mf_->Shared(*p5));
  // The last page: the bytes past the end read zeros; beyond it, EFAULT.
  const uint64_t last = f.size / kPageSize;
  auto pl = Page(*cache, f, last);
  ASSERT_TRUE(pl.ok());
  EXPECT_EQ(mf_->At(*pl)[99], static_cast<char>('a' + (last * kPageSize + 99) % 23));
  EXPECT_EQ(mf_->At(*pl)[100], 0);
  EXPECT_EQ(Page(*cache, f, last + 1).error(), EFAULT);
}

TEST_F(FileCacheTest, ReadErrorsReachTheCallerAndCacheNothing) {
  FakeFile f{10 * kPageSize};
  f.fail_with = EIO;
  auto cache = FileCache::Create(*mf_, f.size);
  const size_t used = mf_->used_bytes();
  EXPECT_EQ(Page(*cache, f, 0).error(), EIO);
  EXPECT_EQ(cache->cached_pages(), 0u);
  EXPECT_EQ(mf_->used_bytes(), used);
}

TEST_F(FileCacheTest, DropAndDestructionGiveBackWhatOnlyTheCacheHeld) {
  FakeFile f{8 * kPageSize};
  const size_t used = mf_->used_bytes();
  uint64_t held;
  {
    auto cache = FileCache::Create(*mf_, f.size);
    held = Page(*cache, f, 2).value();
    EXPECT_EQ(mf_->used_bytes(), used + 8 * kPageSize);
    cache->Drop();
    // The page a mapping holds stays; the other seven are back.
    EXPECT_EQ(mf_->used_bytes(), used + kPageSize);
    EXPECT_EQ(mf_->At(held)[0], static_cast<char>('a' + (2 * kPageSize) % 23));
    // Read again on the next use.
    ASSERT_TRUE(Page(*cache, f, 3).ok());
    EXPECT_EQ(f.reads, 2);
  }
  mf_->Free(held, 1);
  // The second read's caller reference (page 3) is still out: give it back.
  EXPECT_EQ(mf_->used_bytes(), used + kPageSize);
}

TEST_F(FileCacheTest, TheBudgetEvictsTheLeastRecentlyUsed) {
  FileCache::SetBudget(2 * FileCache::kChunkPages);
  FakeFile f{FileCache::kChunkPages * kPageSize};
  auto a = FileCache::Create(*mf_, f.size);
  auto b = FileCache::Create(*mf_, f.size);
  auto c = FileCache::Create(*mf_, f.size);
  for (auto* cache : {a.get(), b.get(), c.get()}) mf_->Free(Page(*cache, f, 0).value(), 1);
  // Filling c passed the budget: a, the least recently used, was dropped.
  EXPECT_EQ(a->cached_pages(), 0u);
  EXPECT_EQ(b->cached_pages(), FileCache::kChunkPages);
  EXPECT_EQ(c->cached_pages(), FileCache::kChunkPages);
  EXPECT_LE(FileCache::TotalPages(), 2 * FileCache::kChunkPages);
}

TEST_F(FileCacheTest, AShortAccountReclaimsCaches) {
  FakeFile f{FileCache::kChunkPages * kPageSize};
  auto cache = FileCache::Create(*mf_, f.size);
  mf_->Free(Page(*cache, f, 0).value(), 1);
  MemoryAccount& account = MemoryAccount::Sandbox();
  const uint64_t old_limit = account.limit();
  // Room for nothing more than what is in use: a charge must reclaim.
  account.SetLimit(account.used());
  auto page = mf_->Allocate(1);
  account.SetLimit(old_limit);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(cache->cached_pages(), 0u);
  mf_->Free(*page, 1);
}

}  // namespace
}  // namespace husk
