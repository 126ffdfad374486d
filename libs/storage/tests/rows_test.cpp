#include <mercado/storage/rows.hpp>

#include <gtest/gtest.h>

namespace mercado::storage {
namespace {

Rows sample() {
  Rows rows({"id", "price", "name", "note", "payload", "amount"});
  rows.push(std::int64_t{7});
  rows.push(2.5);
  rows.push(std::string("tea"));
  rows.push(std::monostate{});
  rows.push(Blob{std::byte{1}, std::byte{2}});
  rows.push(std::string("12345678901"));  // e.g. PostgreSQL NUMERIC, read as text
  return rows;
}

TEST(Rows, TypedGettersByIndexAndName) {
  Rows rows = sample();
  ASSERT_EQ(rows.size(), 1U);
  Row r = rows.front();
  EXPECT_EQ(r.get<std::int64_t>(0), 7);
  EXPECT_EQ(r.get<int>("id"), 7);
  EXPECT_EQ(r.get<double>("id"), 7.0);
  EXPECT_TRUE(r.get<bool>("id"));
  EXPECT_EQ(r.get<double>(1), 2.5);
  EXPECT_EQ(r.get<std::string>("name"), "tea");
  EXPECT_EQ(r.get<std::optional<std::string>>("note"), std::nullopt);
  EXPECT_EQ(r.get<std::optional<std::string>>("name"), "tea");
  EXPECT_EQ(r.get<Blob>("payload").size(), 2U);
  EXPECT_EQ(r.get<std::int64_t>("amount"), 12345678901);
  EXPECT_TRUE(r.is_null(3));
}

TEST(Rows, MismatchesAreProgrammerErrors) {
  Rows rows = sample();
  Row r = rows.front();
  EXPECT_THROW(r.get<std::string>("id"), std::logic_error);
  EXPECT_THROW(r.get<std::int64_t>("name"), std::logic_error);
  EXPECT_THROW(r.get<std::string>("note"), std::logic_error);
  EXPECT_THROW(r.get<std::int8_t>("amount"), std::logic_error);
  EXPECT_THROW(r.get<int>("nope"), std::logic_error);
  EXPECT_THROW(r.get<int>(99), std::logic_error);
  EXPECT_THROW(Rows({"x"}).front(), std::logic_error);
}

TEST(Rows, IteratesInOrder) {
  Rows rows({"n"});
  for (std::int64_t i = 0; i < 5; ++i) rows.push(i);
  std::int64_t expect = 0;
  for (const Row& r : rows) EXPECT_EQ(r.get<std::int64_t>(0), expect++);
  EXPECT_EQ(expect, 5);
}

}  // namespace
}  // namespace mercado::storage
