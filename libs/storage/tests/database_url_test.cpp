#include <mercado/storage/database_url.hpp>

#include <gtest/gtest.h>

namespace mercado::storage {
namespace {

TEST(DatabaseUrl, SqliteAbsoluteAndRelativePaths) {
  auto abs = parse_database_url("sqlite:///var/lib/mercado/orders%20db.db");
  ASSERT_TRUE(abs) << abs.error().message;
  EXPECT_EQ(abs->kind, DatabaseUrl::Kind::sqlite);
  EXPECT_EQ(abs->path, "/var/lib/mercado/orders db.db");
  auto rel = parse_database_url("sqlite://data/orders.db?synchronous=normal");
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->path, "data/orders.db");
  EXPECT_EQ(rel->query.at("synchronous"), "normal");
}

TEST(DatabaseUrl, PostgresKeepsTheUrlForLibpqAndRedactsThePassword) {
  auto pg = parse_database_url("postgres://order:s3cret@order-db:5432/orderdb");
  ASSERT_TRUE(pg);
  EXPECT_EQ(pg->kind, DatabaseUrl::Kind::postgres);
  EXPECT_EQ(pg->conninfo, "postgres://order:s3cret@order-db:5432/orderdb");
  EXPECT_EQ(pg->redacted, "postgres://order:***@order-db:5432/orderdb");
  EXPECT_TRUE(parse_database_url("postgresql://h/db"));
}

TEST(DatabaseUrl, RejectsWhatItCannotOpen) {
  for (const char* bad : {"", "mysql://h/db", "sqlite://", "sqlite:///x.db?sync", "sqlite:///x%2.db"}) {
    auto r = parse_database_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << bad;
  }
}

TEST(RedactUrlPassword, OnlyThePasswordIsHidden) {
  EXPECT_EQ(redact_url_password("amqp://guest:guest@127.0.0.1:5672/%2f"), "amqp://guest:***@127.0.0.1:5672/%2f");
  EXPECT_EQ(redact_url_password("amqp://127.0.0.1/x@y"), "amqp://127.0.0.1/x@y");
  EXPECT_EQ(redact_url_password("postgres://user@h/db"), "postgres://user@h/db");
}

}  // namespace
}  // namespace mercado::storage
