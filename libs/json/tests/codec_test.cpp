#include <mercado/json/codec.hpp>
#include <mercado/json/rules.hpp>

#include <gtest/gtest.h>

namespace demo {

struct Item {
  std::string product_id;
  std::int32_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(Item, (), (product_id, quantity))

inline void validate(const Item& i, mercado::json::Validator& v) {
  v.check(i.quantity > 0, "quantity", "must be at least 1");
}

struct Order {
  std::string customer_id;
  std::vector<Item> items;
  std::optional<std::string> note;
  std::int64_t total = 0;
  bool gift = false;
  std::map<std::string, std::string> tags;
};
BOOST_DESCRIBE_STRUCT(Order, (), (customer_id, items, note, total, gift, tags))

inline void validate(const Order& o, mercado::json::Validator& v) {
  v.check(!o.items.empty(), "items", "must not be empty");
}

}  // namespace demo

namespace mercado::json {
namespace {

TEST(JsonCodec, DecodesAValidDocument) {
  auto r = decode<demo::Order>(R"({"customer_id":"c1","items":[{"product_id":"p1","quantity":2}],
                                  "total":1999,"gift":true,"tags":{"a":"b"},"extra":1})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->customer_id, "c1");
  ASSERT_EQ(r->items.size(), 1U);
  EXPECT_EQ(r->items[0].quantity, 2);
  EXPECT_FALSE(r->note);
  EXPECT_EQ(r->total, 1999);
  EXPECT_TRUE(r->gift);
  EXPECT_EQ(r->tags.at("a"), "b");
}

TEST(JsonCodec, ReportsEveryBadFieldWithItsPath) {
  auto r = decode<demo::Order>(R"({"items":[{"product_id":7,"quantity":0},{"quantity":1.5}],
                                  "note":null,"total":"10","gift":true,"tags":{}})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  std::vector<FieldError> want = {
      {"customer_id", "is required"},
      {"items[0].product_id", "must be a string, not an integer"},
      {"items[0].quantity", "must be at least 1"},
      {"items[1].product_id", "is required"},
      {"items[1].quantity", "must be an integer, not a number"},  // one error: not also "at least 1"
      {"total", "must be a string, not a string"},
  };
  // total: an integer field given a string.
  want.back() = {"total", "must be an integer, not a string"};
  EXPECT_EQ(r.error().fields, want);
}

TEST(JsonCodec, OneErrorPerField) {
  // A field that is missing or of the wrong type is not also checked against its rules
  // (they would run on a default value)...
  auto missing = decode<demo::Item>(R"({"product_id":"p"})");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().fields, (std::vector<FieldError>{{"quantity", "is required"}}));
  auto wrong_type = decode<demo::Item>(R"({"product_id":"p","quantity":"2"})");
  ASSERT_FALSE(wrong_type);
  EXPECT_EQ(wrong_type.error().fields, (std::vector<FieldError>{{"quantity", "must be an integer, not a string"}}));
  // ...and validate() reports the first rule a field breaks.
  Validator v;
  v.check(false, "email", "must be an email address");
  v.check(false, "email", "must be at most 254 characters");
  v.check(true, "name", "must not be empty");
  v.fail("name", "must not be empty");
  EXPECT_EQ(v.errors(), (std::vector<FieldError>{{"email", "must be an email address"}, {"name", "must not be empty"}}));
}

TEST(JsonCodec, ThousandsOfBadItemsAreEachReportedOnce) {
  // A body of the default size limit can hold tens of thousands of bad fields; each is
  // reported once, and finding duplicates is not quadratic in their number (a 1 MiB body took
  // 15 s with a linear search per error).
  std::string body = R"({"customer_id":"c","items":[)";
  for (int i = 0; i < 30'000; ++i) body += (i ? "," : "") + std::string(R"({"product_id":"p","quantity":"0"})");
  body += R"(],"total":1,"gift":false,"tags":{}})";
  auto r = decode<demo::Order>(body);
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().fields.size(), 30'000U);
  EXPECT_EQ(r.error().fields[29'999], (FieldError{"items[29999].quantity", "must be an integer, not a string"}));
  Validator v;
  for (int i = 0; i < 30'000; ++i) {
    v.check(false, "items[" + std::to_string(i) + "]", "first");
    v.check(false, "items[" + std::to_string(i) + "]", "second");
  }
  EXPECT_EQ(v.errors().size(), 30'000U);
}

TEST(JsonCodec, NullForARequiredFieldIsAnError) {
  auto r = decode<demo::Item>(R"({"product_id":null,"quantity":1})");
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().fields.size(), 1U);
  EXPECT_EQ(r.error().fields[0], (FieldError{"product_id", "must not be null"}));
}

TEST(JsonCodec, IntegersAreRangeChecked) {
  auto r = decode<demo::Item>(R"({"product_id":"p","quantity":9999999999})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fields[0], (FieldError{"quantity", "is out of range"}));
}

TEST(JsonCodec, SyntaxErrorsAndNonObjects) {
  auto bad = decode<demo::Item>("{\"product_id\":");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().type, "invalid-json");
  auto empty = decode<demo::Item>("");
  ASSERT_FALSE(empty);
  auto arr = decode<demo::Item>("[1,2]");
  ASSERT_FALSE(arr);
  EXPECT_EQ(arr.error().fields[0], (FieldError{"$", "must be an object, not an array"}));
}

TEST(JsonCodec, ContentAfterTheValueIsAnError) {
  for (const char* text : {R"({"product_id":"p","quantity":1} trailing)", R"({"product_id":"p","quantity":1}{"x":1})",
                           R"({"product_id":"p","quantity":1},)"}) {
    auto r = decode<demo::Item>(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().type, "invalid-json") << text;
    EXPECT_NE(r.error().message.find("after the JSON value"), std::string::npos) << r.error().message;
  }
  auto spaced = decode<demo::Item>(" {\"product_id\":\"p\",\"quantity\":1} \r\n\t ");
  ASSERT_TRUE(spaced) << spaced.error().message;
  EXPECT_EQ(spaced->quantity, 1);
}

TEST(JsonCodec, ADuplicateKeyIsAnError) {
  // Boost.JSON would keep the last one; two readers of one body could disagree on which.
  struct Case {
    const char* text;
    const char* key;
  };
  for (const Case& c : {Case{R"({"product_id":"p","quantity":1,"quantity":99})", "\"quantity\""},
                        Case{R"({"customer_id":"c","items":[{"product_id":"p","quantity":1,"product_id":"q"}]})",
                             "\"product_id\""},
                        Case{R"({"customer_id":"c","tags":{"a":"1","b":"2","a":"3"},"items":[]})", "\"a\""},
                        // The same key once escaped: the same name after unescaping.
                        Case{R"({"product_id":"p","quantit\u0079":1,"quantity":2})", "\"quantity\""}}) {
    auto r = parse(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().type, "invalid-json") << c.text;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().message.find(std::string("the key ") + c.key + " appears twice"), std::string::npos)
        << r.error().message;
  }
  // A long key arrives in parts (on_key_part); spelled once with an escape, it is still the
  // same key, and the message quotes only its first 64 bytes.
  const std::string long_key(10'000, 'k');
  auto parts = parse("{\"" + long_key + "\\u0041\":1,\"" + long_key + "A\":2}");
  ASSERT_FALSE(parts);
  EXPECT_NE(parts.error().message.find("\"" + std::string(64, 'k') + "\u2026\" appears twice"), std::string::npos)
      << parts.error().message.substr(0, 200);
  EXPECT_LT(parts.error().message.size(), 200U);
  auto distinct = parse("{\"" + long_key + "\\u0041\":1,\"" + long_key + "B\":2}");
  ASSERT_TRUE(distinct) << distinct.error().message.substr(0, 200);
  EXPECT_EQ(distinct->as_object().size(), 2U);
  // The same key in different objects, and an object as large as an order's, are fine.
  auto ok = decode<demo::Order>(
      R"({"customer_id":"c","items":[{"product_id":"p","quantity":1},{"product_id":"q","quantity":2}],)"
      R"("tags":{"product_id":"x","quantity":"y"},"total":5,"gift":true,"note":null})");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->items.size(), 2u);
  EXPECT_EQ(ok->tags.at("quantity"), "y");
  auto scalar = parse(" 12 ");
  ASSERT_TRUE(scalar) << scalar.error().message;
  EXPECT_EQ(scalar->as_int64(), 12);
}

TEST(JsonCodec, EncodesAndRoundTrips) {
  demo::Order o{"c1", {{"p1", 2}}, std::nullopt, 100, false, {{"k", "v"}}};
  auto text = to_string(o);
  EXPECT_EQ(text, R"({"customer_id":"c1","items":[{"product_id":"p1","quantity":2}],"total":100,"gift":false,"tags":{"k":"v"}})");
  auto back = decode<demo::Order>(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->items[0].product_id, "p1");
}

TEST(JsonCodec, DirectWriterMatchesTheDomSerializer) {
  demo::Order o{"c\"1\\\n\x01\u00e9", {{"p1", 2}, {"p2", 3}}, std::string("note"), -100, true, {{"k", "v"}, {"a", "b"}}};
  EXPECT_EQ(to_string(o), bj::serialize(encode(o)));
  auto back = decode<demo::Order>(to_string(o));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->customer_id, o.customer_id);
  EXPECT_EQ(back->items[1].quantity, 3);
  // boost::json values are serialized straight into the text, in pieces when large.
  const bj::value big{{"list", bj::array(300, bj::value("x"))}, {"s", std::string(5000, 'y')}};
  EXPECT_EQ(to_string(big), bj::serialize(big));
  EXPECT_EQ(to_string(big.as_object()), bj::serialize(big));
  EXPECT_EQ(to_string(big.at("list").as_array()), bj::serialize(big.at("list")));
}

TEST(JsonRules, Email) {
  EXPECT_TRUE(rules::is_email("ana@example.com"));
  EXPECT_FALSE(rules::is_email("ana@"));
  EXPECT_FALSE(rules::is_email("@example.com"));
  EXPECT_FALSE(rules::is_email("ana@example"));
  EXPECT_FALSE(rules::is_email("a na@example.com"));
  EXPECT_FALSE(rules::is_email("a@b@example.com"));
}

TEST(JsonRules, LengthCountsCodePoints) {
  EXPECT_TRUE(rules::length_between("ñandú", 5, 5));
  EXPECT_FALSE(rules::length_between("\xff", 0, 10));
  EXPECT_FALSE(rules::is_printable_utf8("a\nb"));
}

}  // namespace
}  // namespace mercado::json
