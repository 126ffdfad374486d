#include <mercado/messaging/envelope.hpp>
#include <mercado/messaging/message.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <mercado/observability/trace.hpp>

namespace mercado::messaging {
namespace {

TEST(Envelope, CarriesTheChaptersFieldsPlusIdSourceAndTrace) {
  core::ManualClock clock;
  const std::string parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  Envelope e = make_envelope("OrderCreated", boost::json::value{{"order_id", "o-1"}, {"total", 1999}},
                             {{"traceparent", parent}, {"correlation_id", "c-9"}}, "order-service", clock);
  EXPECT_EQ(e.id.size(), 36U);
  EXPECT_EQ(e.event_type, "OrderCreated");
  EXPECT_EQ(e.source, "order-service");
  EXPECT_EQ(e.traceparent, parent);
  EXPECT_EQ(e.headers.size(), 1U);  // traceparent moved out of the headers
  EXPECT_EQ(e.timestamp.size(), std::string("2026-11-26T07:42:40.123456Z").size());
  EXPECT_EQ(e.timestamp.back(), 'Z');

  auto body = boost::json::parse(encode_envelope(e)).as_object();
  for (const char* key : {"id", "event_type", "data", "timestamp", "source", "traceparent", "headers"}) {
    EXPECT_TRUE(body.contains(key)) << key;
  }
  auto back = decode_envelope(encode_envelope(e));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->id, e.id);
  EXPECT_EQ(back->data, e.data);
  EXPECT_EQ(back->traceparent, parent);
  EXPECT_EQ(back->headers.at("correlation_id"), "c-9");
}

// The body is written by hand: it must be the JSON that serializing the same members as an
// object gives, escapes, nesting, large data and all.
// An envelope with fixed id, source, timestamp and trace, and these contents.
Envelope envelope_of(std::string event_type, boost::json::value data, Headers headers) {
  Envelope e;
  e.id = "id-\"1\"";
  e.event_type = std::move(event_type);
  e.source = "order-service";
  e.timestamp = "2026-11-28T01:02:03.000004Z";
  e.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  e.data = std::move(data);
  e.headers = std::move(headers);
  return e;
}

TEST(Envelope, TheBodyIsTheSerializedObjectOfItsMembers) {
  std::string big(5000, 'x');
  for (boost::json::value data : {boost::json::value(nullptr), boost::json::value(42),
                                  boost::json::value{{"quote\"back\\slash", "tab\tnew\nline\x01 é €"},
                                                     {"nested", {{"list", {1, 2.5, true, nullptr, "s"}}}}},
                                  boost::json::value{{"big", big}}}) {
    for (Headers headers : {Headers{}, Headers{{"correlation_id", "c\"9"}, {"a", "b\\"}}}) {
      Envelope e = envelope_of("Order\nCreated", data, headers);
      boost::json::object o;
      o.emplace("id", e.id);
      o.emplace("event_type", e.event_type);
      o.emplace("source", e.source);
      o.emplace("timestamp", e.timestamp);
      o.emplace("traceparent", e.traceparent);
      o.emplace("data", e.data);
      if (!headers.empty()) {
        boost::json::object h;
        for (const auto& [k, v] : headers) h.emplace(k, v);
        o.emplace("headers", std::move(h));
      }
      EXPECT_EQ(encode_envelope(e), boost::json::serialize(o));
    }
  }
  // DEL (0x7F) is escaped here (\u007f) and written raw by Boost.JSON: the same JSON string.
  Envelope e = envelope_of("del\x7f", boost::json::value{{"k", "del\x7f"}}, {{"h\x7f", "v\x7f"}});
  auto back = decode_envelope(encode_envelope(e));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->event_type, e.event_type);
  EXPECT_EQ(back->data, e.data);
  EXPECT_EQ(back->headers, e.headers);
}

TEST(Envelope, WithoutAValidTraceparentStartsANewSampledTrace) {
  Envelope e = make_envelope("X", nullptr, {{"traceparent", "garbage"}}, "s");
  auto tc = obs::TraceContext::parse(e.traceparent);
  ASSERT_TRUE(tc);
  EXPECT_TRUE(tc->valid());
  EXPECT_TRUE(tc->sampled());
  EXPECT_NE(make_envelope("X", nullptr, {}, "s").id, e.id);
}

TEST(Envelope, DecodeRejectsWhatIsNotAnEnvelopeAndSaysWhy) {
  auto not_json = decode_envelope("{nope");
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error().code, Errc::invalid_argument);
  EXPECT_NE(not_json.error().message.find("not JSON"), std::string::npos);
  EXPECT_FALSE(decode_envelope("[1,2]"));
  auto missing = decode_envelope(R"({"event_type":"X","data":{}})");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("id"), std::string::npos);
  EXPECT_NE(missing.error().message.find("timestamp"), std::string::npos);
  // The chapter's minimal envelope plus an id is enough; a bad traceparent is dropped.
  auto minimal = decode_envelope(
      R"({"id":"1","event_type":"X","data":null,"timestamp":"2026-01-01T00:00:00Z","traceparent":"zz"})");
  ASSERT_TRUE(minimal) << minimal.error().message;
  EXPECT_TRUE(minimal->traceparent.empty());
}

TEST(Envelope, FormatTimestampIsRfc3339Utc) {
  auto t = std::chrono::system_clock::time_point(std::chrono::microseconds(1764142960123456));
  EXPECT_EQ(format_timestamp(t), "2025-11-26T07:42:40.123456Z");
}

TEST(Envelope, ParseTimestampInvertsFormatAndRejectsOtherForms) {
  auto t = std::chrono::system_clock::time_point(std::chrono::microseconds(1764142960123456));
  EXPECT_EQ(parse_timestamp(format_timestamp(t)), t);
  EXPECT_EQ(parse_timestamp("2025-11-26T07:42:40Z"), t - std::chrono::microseconds(123456));
  EXPECT_EQ(parse_timestamp("2025-11-26T07:42:40.5Z"), t - std::chrono::microseconds(123456 - 500000));
  for (const char* bad : {"", "2025-11-26", "2025-11-26T07:42:40", "2025-11-26T07:42:40.Z", "2025-11-26 07:42:40Z",
                          "2025-13-26T07:42:40Z", "2025-11-26T07:42:40.123+01:00", "2025-11-26T07:4x:40Z",
                          "2025-11-26T07:42:40.123Zjunk"}) {
    EXPECT_FALSE(parse_timestamp(bad)) << bad;
  }
}

TEST(Message, CarriesTheRoutingFieldsAndTheEncodedEnvelope) {
  Envelope e = make_envelope("PaymentCompleted", {{"amount", 5}}, {}, "payment-service");
  Message m = to_message(e);
  EXPECT_EQ(m.id, e.id);
  EXPECT_EQ(m.event_type, "PaymentCompleted");
  EXPECT_EQ(m.traceparent, e.traceparent);
  EXPECT_EQ(m.body, encode_envelope(e));
}

}  // namespace
}  // namespace mercado::messaging
