#include <mercado/core/config.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

namespace mercado::core {
namespace {

struct EnvGuard {
  std::string name;
  EnvGuard(const char* n, const char* v) : name(n) { ::setenv(n, v, 1); }
  ~EnvGuard() { ::unsetenv(name.c_str()); }
};

std::optional<int> parse(Config& c, std::vector<const char*> args) {
  args.insert(args.begin(), "svc");
  return c.parse(static_cast<int>(args.size()), args.data());
}

// Parses with CLI11's complaint (on stderr) swallowed: for arguments that are refused.
std::optional<int> parse_quietly(Config& c, std::vector<const char*> args) {
  testing::internal::CaptureStderr();
  auto rc = parse(c, std::move(args));
  testing::internal::GetCapturedStderr();
  return rc;
}

TEST(Config, DefaultsWhenNothingGiven) {
  Config c("hello", "test");
  ASSERT_FALSE(parse(c, {}).has_value());
  EXPECT_EQ(c.service().port, 8000);
  EXPECT_EQ(c.service().host, "127.0.0.1");
  EXPECT_TRUE(c.service().instance_id.starts_with("hello-"));
  EXPECT_GE(c.service().io_threads, 1U);
}

TEST(Config, EnvironmentOverridesDefault) {
  EnvGuard port("PORT", "9123");
  EnvGuard db("DATABASE_URL", "sqlite:///tmp/x.db");
  EnvGuard inst("INSTANCE_ID", "a1");
  Config c("hello", "test");
  ASSERT_FALSE(parse(c, {}).has_value());
  EXPECT_EQ(c.service().port, 9123);
  EXPECT_EQ(c.service().database_url, "sqlite:///tmp/x.db");
  EXPECT_EQ(c.service().instance_id, "a1");
}

TEST(Config, FlagWinsOverEnvironment) {
  EnvGuard port("PORT", "9123");
  Config c("hello", "test");
  ASSERT_FALSE(parse(c, {"--port", "9200"}).has_value());
  EXPECT_EQ(c.service().port, 9200);
}

TEST(Config, ExecutableSpecificOption) {
  EnvGuard g("GREETING", "hola");
  Config c("hello", "test");
  std::string greeting = "hello";
  c.cli().add_option("--greeting", greeting, "greeting word")->envname("GREETING");
  ASSERT_FALSE(parse(c, {}).has_value());
  EXPECT_EQ(greeting, "hola");
}

TEST(Config, HelpExitsZeroAndNamesEnvironmentVariables) {
  Config c("hello", "test");
  testing::internal::CaptureStdout();
  auto rc = parse(c, {"--help"});
  std::string out = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0);
  EXPECT_NE(out.find("--port"), std::string::npos);
  EXPECT_NE(out.find("PORT"), std::string::npos);
  EXPECT_NE(out.find("DATABASE_URL"), std::string::npos);
}

// The two retention windows: a week by default, hours (fractions too) from a flag or the
// environment, 0 for ever; a negative one is refused.
TEST(Config, RetentionsInHours) {
  {
    Config c("hello", "test");
    ASSERT_FALSE(parse(c, {}).has_value());
    EXPECT_EQ(c.service().dedupe_retention(), std::chrono::hours(24 * 7));
    EXPECT_EQ(c.service().outbox_retention(), std::chrono::hours(24 * 7));
  }
  {
    EnvGuard g("OUTBOX_RETENTION_HOURS", "0.5");
    Config c("hello", "test");
    ASSERT_FALSE(parse(c, {"--dedupe-retention-hours", "0"}).has_value());
    EXPECT_EQ(c.service().outbox_retention(), std::chrono::minutes(30));
    EXPECT_EQ(c.service().dedupe_retention(), std::chrono::milliseconds::zero());
  }
  {
    Config c("hello", "test");
    auto rc = parse_quietly(c, {"--outbox-retention-hours", "-1"});
    ASSERT_TRUE(rc.has_value());
    EXPECT_NE(*rc, 0);
  }
}

TEST(Config, BadValueIsRejectedWithNonZeroExit) {
  Config c("hello", "test");
  auto rc = parse_quietly(c, {"--port", "notaport"});
  ASSERT_TRUE(rc.has_value());
  EXPECT_NE(*rc, 0);
}

TEST(Config, BadLogLevelIsRejected) {
  Config c("hello", "test");
  auto rc = parse_quietly(c, {"--log-level", "loud"});
  ASSERT_TRUE(rc.has_value());
  EXPECT_NE(*rc, 0);
}

}  // namespace
}  // namespace mercado::core
