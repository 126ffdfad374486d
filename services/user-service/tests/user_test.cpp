#include "domain/user.hpp"

#include <gtest/gtest.h>

namespace user::domain {
namespace {

TEST(User, RegistrationReportsEveryProblem) {
  auto r = mercado::json::decode<Registration>(R"({"email":"nope","password":"short","name":""})");
  ASSERT_FALSE(r);
  std::vector<std::string> fields;
  for (const auto& f : r.error().fields) fields.push_back(f.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"email", "password", "name"}));
  EXPECT_TRUE(mercado::json::decode<Registration>(R"({"email":"Ana@Example.com","password":"abcdefg1","name":"Ana"})"));
  EXPECT_EQ(normalize_email("Ana@Example.COM"), "ana@example.com");
}

TEST(User, PreferencesAndProfileRules) {
  EXPECT_FALSE(mercado::json::decode<Preferences>(R"({"language":"fr","currency":"eur","newsletter":true})"));
  EXPECT_TRUE(mercado::json::decode<Preferences>(R"({"language":"es","currency":"ARS","newsletter":true})"));
  EXPECT_FALSE(mercado::json::decode<Profile>(R"({"name":"Ana","phone":"call me"})"));
  EXPECT_TRUE(mercado::json::decode<Profile>(R"({"name":"Ana","phone":"+34 600-000-000"})"));
}

}  // namespace
}  // namespace user::domain
