// GoogleTest assertions for husk::Result values, shared by the unit tests.
#ifndef HUSK_BASE_RESULT_TESTING_H_
#define HUSK_BASE_RESULT_TESTING_H_

#include "gtest/gtest.h"

#define ASSERT_OK(expr) ASSERT_TRUE((expr).ok()) << #expr " failed: errno " << (expr).error()
#define EXPECT_OK(expr) EXPECT_TRUE((expr).ok()) << #expr " failed: errno " << (expr).error()
// expr must fail with errno e.
#define EXPECT_ERRNO(expr, e)          \
  do {                                 \
    const auto& r_ = (expr);           \
    ASSERT_FALSE(r_.ok()) << #expr;    \
    EXPECT_EQ(r_.error(), e) << #expr; \
  } while (0)

#endif  // HUSK_BASE_RESULT_TESTING_H_
