#include <mercado/auth/password.hpp>

#include <gtest/gtest.h>

namespace mercado::auth {
namespace {

TEST(Password, HashVerifiesOnlyTheSamePassword) {
  auto h = hash_password("correct horse 9");
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->starts_with("$argon2id$"));
  EXPECT_TRUE(verify_password("correct horse 9", *h));
  EXPECT_FALSE(verify_password("correct horse 8", *h));
  EXPECT_FALSE(verify_password("correct horse 9", "not a hash"));
  EXPECT_FALSE(verify_password("x", ""));
  auto again = hash_password("correct horse 9");
  EXPECT_NE(*again, *h);  // salted
}

TEST(Password, Rules) {
  EXPECT_FALSE(password_problem("abcdefg1"));
  EXPECT_EQ(password_problem("short1"), "must be at least 8 characters");
  EXPECT_EQ(password_problem("abcdefghij"), "must contain a letter and a digit");
  EXPECT_EQ(password_problem(std::string(129, 'a') + "1"), "must be at most 128 characters");
  EXPECT_FALSE(hash_password(std::string(2000, 'a')));
}

}  // namespace
}  // namespace mercado::auth
