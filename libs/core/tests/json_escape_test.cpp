#include <mercado/core/json_escape.hpp>

#include <gtest/gtest.h>

namespace mercado::core {
namespace {

TEST(JsonEscape, EscapesQuotesBackslashesControlsAndDelAndKeepsTheRest) {
  std::string out = "x";
  append_json_escaped(out, std::string_view("a\"b\\c\n\r\t\b\f\x01\x1f\x7f \xc3\xa9z", 17));
  EXPECT_EQ(out, "xa\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f \xc3\xa9z");
  out.clear();
  append_json_escaped(out, "plain");
  EXPECT_EQ(out, "plain");
}

}  // namespace
}  // namespace mercado::core
