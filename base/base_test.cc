// Result<T>, Status and the TRY/ASSIGN_OR_RETURN macros; UniqueFd.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "base/result_testing.h"
#include "gtest/gtest.h"

namespace husk {
namespace {

// --- Result<T> ---

Result<int> Half(int x) {
  if (x % 2 != 0) return Errno{EINVAL};
  return x / 2;
}

TEST(ResultTest, HoldsAValueOrAnErrno) {
  Result<int> good = Half(8);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good.value(), 4);
  EXPECT_EQ(*good, 4);

  Result<int> bad = Half(7);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), EINVAL);
}

TEST(ResultTest, ValueIsMutableThroughEveryAccessor) {
  Result<std::string> r = std::string("abc");
  r.value() += "d";
  *r += "e";
  r->push_back('f');
  EXPECT_EQ(r.value(), "abcdef");
  const Result<std::string>& cr = r;
  EXPECT_EQ(cr->size(), 6u);
  EXPECT_EQ(*cr, "abcdef");
}

TEST(ResultTest, AccessorsReturnReferencesOnLvaluesAndValuesOnTemporaries) {
  using R = Result<std::string>;
  static_assert(std::is_same_v<decltype(std::declval<R&>().value()), std::string&>);
  static_assert(std::is_same_v<decltype(std::declval<const R&>().value()), const std::string&>);
  static_assert(std::is_same_v<decltype(std::declval<R&&>().value()), std::string>);
  static_assert(std::is_same_v<decltype(*std::declval<R&>()), std::string&>);
  static_assert(std::is_same_v<decltype(*std::declval<R&&>()), std::string>);
}

Result<std::vector<std::string>> Words() {
  // Long enough that the strings live on the heap: a dangling reference
  // would be a use-after-free for ASan to report.
  return std::vector<std::string>{std::string(100, 'a'), std::string(100, 'b')};
}

TEST(ResultTest, RangeForOverATemporarysValueDoesNotDangle) {
  std::string joined;
  for (const std::string& w : Words().value()) joined += w;
  EXPECT_EQ(joined, std::string(100, 'a') + std::string(100, 'b'));
  size_t total = 0;
  for (const std::string& w : *Words()) total += w.size();
  EXPECT_EQ(total, 200u);
}

Result<std::unique_ptr<int>> MakeBox(int v) {
  if (v < 0) return Errno{ERANGE};
  return std::make_unique<int>(v);
}

TEST(ResultTest, HoldsMoveOnlyValues) {
  static_assert(!std::is_copy_constructible_v<Result<std::unique_ptr<int>>>);
  Result<std::unique_ptr<int>> r = MakeBox(7);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, 7);
  std::unique_ptr<int> taken = std::move(r).value();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 7);
  std::unique_ptr<int> direct = *MakeBox(9);
  EXPECT_EQ(*direct, 9);
  EXPECT_EQ(MakeBox(-1).error(), ERANGE);
}

TEST(ResultTest, IsMovableWithItsValue) {
  Result<std::unique_ptr<int>> a = MakeBox(3);
  Result<std::unique_ptr<int>> b = std::move(a);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(**b, 3);
  Result<std::unique_ptr<int>> c = Errno{EIO};
  c = std::move(b);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(**c, 3);
  c = Errno{ENOSPC};
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.error(), ENOSPC);
}

TEST(StatusTest, OkAndErrors) {
  Status ok = Ok();
  EXPECT_TRUE(ok.ok());
  Status bad = Errno{EPERM};
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), EPERM);
}

// --- TRY and ASSIGN_OR_RETURN ---

// Counts evaluations, so the macros are seen to evaluate their argument once.
struct Counter {
  int calls = 0;
  Result<int> Next(int v) {
    calls++;
    return Half(v);
  }
  Status Check(bool good) {
    calls++;
    if (!good) return Errno{EAGAIN};
    return Ok();
  }
};

Status TryBoth(Counter& c, bool first, bool second, int* reached) {
  TRY(c.Check(first));
  *reached = 1;
  TRY(c.Next(second ? 2 : 3));  // TRY accepts any Result, not only Status
  *reached = 2;
  return Ok();
}

TEST(TryTest, ReturnsTheFirstErrnoAndStopsThere) {
  Counter c;
  int reached = 0;
  Status s = TryBoth(c, false, true, &reached);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), EAGAIN);
  EXPECT_EQ(reached, 0);
  EXPECT_EQ(c.calls, 1);

  c = Counter{};
  s = TryBoth(c, true, false, &reached);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), EINVAL);
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(c.calls, 2);

  c = Counter{};
  EXPECT_OK(TryBoth(c, true, true, &reached));
  EXPECT_EQ(reached, 2);
  EXPECT_EQ(c.calls, 2);
}

// Chains ASSIGN_OR_RETURN into a result of another type.
Result<std::string> Quarter(Counter& c, int v) {
  ASSIGN_OR_RETURN(int half, c.Next(v));
  int quarter = 0;
  ASSIGN_OR_RETURN(quarter, c.Next(half));  // assigns to an existing variable
  return std::to_string(quarter);
}

TEST(AssignOrReturnTest, BindsTheValueOrPropagatesTheErrno) {
  Counter c;
  Result<std::string> r = Quarter(c, 12);
  ASSERT_OK(r);
  EXPECT_EQ(*r, "3");
  EXPECT_EQ(c.calls, 2);

  c = Counter{};
  r = Quarter(c, 6);  // 6 / 2 = 3 is odd: the second step fails
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), EINVAL);
  EXPECT_EQ(c.calls, 2);

  c = Counter{};
  r = Quarter(c, 5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), EINVAL);
  EXPECT_EQ(c.calls, 1);
}

Result<int> Unbox(int v) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> box, MakeBox(v));
  return *box + 1;
}

TEST(AssignOrReturnTest, MovesMoveOnlyValues) {
  Result<int> r = Unbox(41);
  ASSERT_OK(r);
  EXPECT_EQ(*r, 42);
  EXPECT_ERRNO(Unbox(-5), ERANGE);
}

// --- UniqueFd ---

struct Pipe {
  int r = -1, w = -1;
};

Pipe MakePipe() {
  int fds[2] = {-1, -1};
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0) << strerror(errno);
  return Pipe{fds[0], fds[1]};
}

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

// The read end sees end-of-file only once every write end is closed: a test
// of closing that fd-number reuse cannot fool.
bool WriteEndClosed(int read_fd) {
  char c;
  return read(read_fd, &c, 1) == 0;
}

TEST(UniqueFdTest, DefaultIsEmpty) {
  UniqueFd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
  EXPECT_EQ(fd.Release(), -1);
  fd.Reset();  // closing nothing is fine
  EXPECT_FALSE(fd.valid());
}

TEST(UniqueFdTest, ClosesOnDestruction) {
  Pipe p = MakePipe();
  UniqueFd r(p.r);
  {
    UniqueFd w(p.w);
    EXPECT_TRUE(w.valid());
    EXPECT_TRUE(w);
    EXPECT_EQ(w.get(), p.w);
  }
  EXPECT_TRUE(WriteEndClosed(r.get()));
}

TEST(UniqueFdTest, ReleaseGivesUpOwnershipWithoutClosing) {
  Pipe p = MakePipe();
  UniqueFd r(p.r);
  int raw;
  {
    UniqueFd w(p.w);
    raw = w.Release();
    EXPECT_FALSE(w.valid());
    EXPECT_EQ(w.get(), -1);
  }
  EXPECT_EQ(raw, p.w);
  ASSERT_TRUE(IsOpen(raw));
  ASSERT_EQ(write(raw, "x", 1), 1);
  close(raw);
  char c;
  EXPECT_EQ(read(r.get(), &c, 1), 1);
  EXPECT_TRUE(WriteEndClosed(r.get()));
}

TEST(UniqueFdTest, ResetClosesTheOldDescriptor) {
  Pipe a = MakePipe();
  Pipe b = MakePipe();
  UniqueFd ar(a.r), br(b.r);
  UniqueFd w(a.w);
  w.Reset(b.w);
  EXPECT_TRUE(WriteEndClosed(ar.get()));
  EXPECT_EQ(w.get(), b.w);
  ASSERT_TRUE(IsOpen(b.w));
  w.Reset();
  EXPECT_FALSE(w.valid());
  EXPECT_TRUE(WriteEndClosed(br.get()));
}

TEST(UniqueFdTest, MoveConstructionTransfersOwnership) {
  Pipe p = MakePipe();
  UniqueFd r(p.r);
  UniqueFd w(p.w);
  UniqueFd moved(std::move(w));
  EXPECT_FALSE(w.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_EQ(moved.get(), p.w);
  ASSERT_TRUE(IsOpen(p.w));
  moved.Reset();
  EXPECT_TRUE(WriteEndClosed(r.get()));
}

TEST(UniqueFdTest, MoveAssignmentClosesTheTargetsDescriptor) {
  Pipe a = MakePipe();
  Pipe b = MakePipe();
  UniqueFd ar(a.r), br(b.r);
  UniqueFd target(a.w);
  UniqueFd source(b.w);
  target = std::move(source);
  EXPECT_TRUE(WriteEndClosed(ar.get()));
  EXPECT_FALSE(source.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(target.get(), b.w);
  ASSERT_TRUE(IsOpen(b.w));

  // Moving into itself keeps the descriptor open and owned.
  UniqueFd& alias = target;
  target = std::move(alias);
  EXPECT_EQ(target.get(), b.w);
  ASSERT_TRUE(IsOpen(b.w));
  target = UniqueFd();
  EXPECT_TRUE(WriteEndClosed(br.get()));
}

}  // namespace
TEST(ResultTest, UncheckedUseIsACheckedFailureCarryingTheErrno) {
  Result<int> failed = Errno{ENOENT};
  try {
    (void)failed.value();
    ADD_FAILURE() << "no exception";
  } catch (const UncheckedResult& e) {
    EXPECT_EQ(e.err, ENOENT);
  }
  EXPECT_THROW((void)*failed, UncheckedResult);
  Result<std::string> s = Errno{EACCES};
  EXPECT_THROW((void)s->size(), UncheckedResult);
  Result<int> fine = 3;
  EXPECT_THROW((void)fine.error(), UncheckedResult);
  EXPECT_EQ(*fine, 3);
}

}  // namespace husk
