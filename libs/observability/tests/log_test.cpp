#include <mercado/observability/log.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace mercado::log {
namespace {

namespace json = boost::json;

TEST(Log, LineIsOneJsonObjectWithTheContractFields) {
  init({.service = "svc", .instance = "svc-1", .level = Level::info});
  auto ctx = *obs::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  std::string line = format_line(Level::warn, &ctx, "order \"created\"\n",
                                 {{"order_id", "o-1"}, {"total", 1999}, {"ok", true},
                                  {"ratio", 0.5}, {"none", nullptr}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto v = json::parse(line).as_object();
  EXPECT_EQ(v.at("level").as_string(), "warn");
  EXPECT_EQ(v.at("service").as_string(), "svc");
  EXPECT_EQ(v.at("instance").as_string(), "svc-1");
  EXPECT_EQ(v.at("msg").as_string(), "order \"created\"\n");
  EXPECT_EQ(v.at("trace_id").as_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(v.at("span_id").as_string(), "00f067aa0ba902b7");
  const auto& f = v.at("fields").as_object();
  EXPECT_EQ(f.at("order_id").as_string(), "o-1");
  EXPECT_EQ(f.at("total").as_int64(), 1999);
  EXPECT_TRUE(f.at("ok").as_bool());
  EXPECT_DOUBLE_EQ(f.at("ratio").as_double(), 0.5);
  EXPECT_TRUE(f.at("none").is_null());
  EXPECT_TRUE(v.at("ts").as_string().ends_with("Z"));
}

TEST(Log, ControlCharactersAreEscaped) {
  std::string out;
  append_json_escaped(out, std::string_view("a\x01" "b\x7f", 4));
  EXPECT_EQ(out, "a\\u0001b\\u007f");
}

TEST(Log, LevelsFilterAndFileSinkReceivesLines) {
  std::string path = ::testing::TempDir() + "log_test_" + std::to_string(::getpid()) + ".log";
  std::remove(path.c_str());
  init({.service = "svc", .level = Level::info, .path = path});
  debug("hidden");
  info("shown", {{"k", 1}});
  error("bad");
  init({.service = "svc"});  // flushes and swaps back to stdout
  std::ifstream in(path);
  std::string l1, l2, l3;
  ASSERT_TRUE(std::getline(in, l1));
  ASSERT_TRUE(std::getline(in, l2));
  EXPECT_FALSE(std::getline(in, l3));
  EXPECT_EQ(json::parse(l1).as_object().at("msg").as_string(), "shown");
  EXPECT_EQ(json::parse(l2).as_object().at("level").as_string(), "error");
  std::remove(path.c_str());
}

TEST(Log, ParseLevel) {
  EXPECT_EQ(parse_level("debug"), Level::debug);
  EXPECT_EQ(parse_level("warning"), Level::warn);
  EXPECT_FALSE(parse_level("loud"));
}

}  // namespace
}  // namespace mercado::log
