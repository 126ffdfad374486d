#include <mercado/core/error.hpp>

#include <gtest/gtest.h>

namespace mercado {
namespace {

Result<int> half(int v) {
  if (v % 2 != 0) return fail(Errc::invalid_argument, "odd");
  return v / 2;
}

TEST(Error, ResultCarriesValueOrError) {
  ASSERT_TRUE(half(4).has_value());
  EXPECT_EQ(*half(4), 2);
  auto r = half(3);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_EQ(r.error().message, "odd");
}

TEST(Error, CodesHaveStableNames) {
  EXPECT_EQ(to_string(Errc::not_found), "not-found");
  EXPECT_EQ(to_string(Errc::conflict), "conflict");
  EXPECT_EQ(to_string(Errc::timeout), "timeout");
}

}  // namespace
}  // namespace mercado
