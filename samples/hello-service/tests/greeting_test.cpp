#include "domain/greeting.hpp"

#include <gtest/gtest.h>

namespace hello::domain {
namespace {

TEST(Greeting, GreetsInTheChosenLanguage) {
  EXPECT_EQ(*greet("Ana", Language::en), "Hello, Ana!");
  EXPECT_EQ(*greet("Ana", Language::es), "Hola, Ana!");
  EXPECT_EQ(*greet("Ana", Language::es, "Buenas"), "Buenas, Ana!");
}

TEST(Greeting, RejectsBadNames) {
  for (std::string_view bad : {std::string_view(""), std::string_view("a\nb"), std::string_view("\xff")}) {
    auto r = greet(bad, Language::en);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, mercado::Errc::invalid_argument);
    EXPECT_EQ(r.error().fields.at(0).field, "name");
  }
  EXPECT_FALSE(greet(std::string(65, 'a'), Language::en));
  EXPECT_TRUE(greet(std::string(64, 'a'), Language::en));
}

TEST(Greeting, ParsesLanguages) {
  EXPECT_EQ(parse_language("es"), Language::es);
  EXPECT_FALSE(parse_language("fr"));
}

}  // namespace
}  // namespace hello::domain
