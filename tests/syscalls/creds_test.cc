// Credentials (credentials(7)): setresuid/setresgid, setreuid/setregid,
// setuid, setfsuid, setgroups/getgroups, as root and after dropping root.
// Every case runs in a forked child, so the test process keeps its ids.
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "tests/syscalls/test_util.h"

namespace {

using husk_test::InChild;

bool Ids(uid_t r, uid_t e, uid_t s) {
  uid_t a, b, c;
  return getresuid(&a, &b, &c) == 0 && a == r && b == e && c == s;
}
bool Gids(gid_t r, gid_t e, gid_t s) {
  gid_t a, b, c;
  return getresgid(&a, &b, &c) == 0 && a == r && b == e && c == s;
}

class CredsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (in its user namespace)";
  }
};

TEST_F(CredsTest, RootSetsAnyCombinationWithSetresuid) {
  EXPECT_EQ(InChild([] {
              if (setresuid(1000, 1001, 1002) != 0) return 1;
              if (!Ids(1000, 1001, 1002)) return 2;
              // Unprivileged now: only the current ids can be shuffled.
              if (setresuid(1002, 1000, 1001) != 0) return 3;
              if (!Ids(1002, 1000, 1001)) return 4;
              errno = 0;
              if (setresuid(-1, 0, -1) != -1 || errno != EPERM) return 5;
              if (!Ids(1002, 1000, 1001)) return 6;  // unchanged on failure
              // -1 keeps a value.
              if (setresuid(-1, 1002, -1) != 0 || !Ids(1002, 1002, 1001)) return 7;
              return 0;
            }),
            0);
}

TEST_F(CredsTest, SavedRootLetsTheEffectiveIdReturn) {
  EXPECT_EQ(InChild([] {
              if (setresuid(1000, 1000, 0) != 0) return 1;
              if (geteuid() != 1000) return 2;
              if (seteuid(0) != 0) return 3;  // 0 is the saved id
              if (!Ids(1000, 0, 0)) return 4;
              return 0;
            }),
            0);
}

TEST_F(CredsTest, SetreuidMovesTheSavedIdAsLinuxDoes) {
  EXPECT_EQ(InChild([] {
              // Setting the real id makes saved = new effective.
              if (setreuid(1000, 1001) != 0 || !Ids(1000, 1001, 1001)) return 1;
              // Unprivileged: real may become the effective id...
              if (setreuid(1001, -1) != 0 || !Ids(1001, 1001, 1001)) return 2;
              // ...but not an id it does not hold.
              errno = 0;
              if (setreuid(1005, -1) != -1 || errno != EPERM) return 3;
              return 0;
            }),
            0);
  EXPECT_EQ(InChild([] {
              // Only the effective id, equal to the real one: saved unchanged.
              if (setresuid(0, 0, 7) != 0) return 1;
              if (setreuid(-1, 0) != 0 || !Ids(0, 0, 7)) return 2;
              // Effective set away from the real id: saved follows.
              if (setreuid(-1, 1000) != 0 || !Ids(0, 1000, 1000)) return 3;
              return 0;
            }),
            0);
}

TEST_F(CredsTest, SetuidAsRootSetsAllThree) {
  EXPECT_EQ(InChild([] {
              if (setuid(1000) != 0 || !Ids(1000, 1000, 1000)) return 1;
              errno = 0;
              if (setuid(0) != -1 || errno != EPERM) return 2;  // root is gone
              return 0;
            }),
            0);
}

TEST_F(CredsTest, GroupIdsFollowTheSameRules) {
  EXPECT_EQ(InChild([] {
              if (setresgid(2000, 2001, 2002) != 0 || !Gids(2000, 2001, 2002)) return 1;
              if (setregid(2001, -1) != 0 || !Gids(2001, 2001, 2001)) return 2;
              // Drop root, then only current gids are allowed.
              if (setresuid(1000, 1000, 1000) != 0) return 3;
              errno = 0;
              if (setresgid(-1, 5, -1) != -1 || errno != EPERM) return 4;
              return 0;
            }),
            0);
}

TEST_F(CredsTest, SetfsuidReturnsTheOldValue) {
  EXPECT_EQ(InChild([] {
              if (setfsuid(1234) != 0) return 1;   // old fsuid: 0
              if (setfsuid(-1) != 1234) return 2;  // -1 only reads it
              if (setresuid(1000, 1000, 1000) != 0) return 3;
              if (setfsuid(-1) != 1000) return 4;                          // follows euid
              if (setfsuid(55) != 1000 || setfsuid(-1) != 1000) return 5;  // refused
              return 0;
            }),
            0);
}

TEST_F(CredsTest, SupplementaryGroupsAreSetSortedAndChecked) {
  EXPECT_EQ(InChild([] {
              gid_t set[] = {30, 10, 20};
              if (setgroups(3, set) != 0) return 1;
              if (getgroups(0, nullptr) != 3) return 2;
              gid_t got[3] = {};
              if (getgroups(3, got) != 3) return 3;
              std::vector<gid_t> v(got, got + 3);
              // Linux keeps the list sorted (groups_sort).
              if (v != std::vector<gid_t>({10, 20, 30})) return 4;
              gid_t small[2];
              errno = 0;
              if (getgroups(2, small) != -1 || errno != EINVAL) return 5;
              if (setgroups(0, nullptr) != 0 || getgroups(0, nullptr) != 0) return 6;
              if (setresuid(1000, 1000, 1000) != 0) return 7;
              errno = 0;
              if (setgroups(1, set) != -1 || errno != EPERM) return 8;
              return 0;
            }),
            0);
}

}  // namespace
