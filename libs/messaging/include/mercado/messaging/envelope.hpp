#pragma once
// The message envelope every Mercado event travels in: the chapter's
// {"event_type", "data", "timestamp"} plus "id", "source" and "traceparent" (W3C), and
// optional string headers:
//
//   {"id":"5f0c…","event_type":"OrderCreated","source":"order-service",
//    "timestamp":"2026-11-26T07:42:40.123456Z","traceparent":"00-…-…-01",
//    "data":{"order_id":"o-1","total":1999},"headers":{"correlation_id":"…"}}
//
// The id identifies the message for its whole life: redeliveries and relayed copies keep
// it, and consumers deduplicate by it (inbox.hpp).

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/core/error.hpp>

namespace mercado::messaging {

using Headers = std::map<std::string, std::string, std::less<>>;

// Headers that carry `traceparent` (none when it is empty): what an outbox event of a
// request-handling transaction gets, so the consumer continues the request's trace.
inline Headers trace_headers(std::string_view traceparent) {
  Headers h;
  if (!traceparent.empty()) h.emplace("traceparent", traceparent);
  return h;
}

struct Envelope {
  std::string id;           // unique (UUID v4 unless the producer chose one)
  std::string event_type;   // routing key, e.g. "OrderCreated" or "order.created"
  boost::json::value data;  // the event's payload
  std::string timestamp;    // RFC 3339 UTC with microseconds, when the event was created
  std::string source;       // the producing service
  std::string traceparent;  // W3C trace context of the producing operation
  Headers headers;          // anything else (correlation ids, ...)
};

// A new envelope: fresh id, timestamp from `clock`. The traceparent is taken from
// headers["traceparent"] when that is valid (and removed from the headers); otherwise a
// new sampled root trace is started so that every message is traceable.
Envelope make_envelope(std::string event_type, boost::json::value data, Headers headers,
                       std::string_view source, const core::Clock& clock = core::SystemClock::instance());

// The JSON text of an envelope.
std::string encode_envelope(const Envelope& e);

// Parses and checks a received body. invalid_argument (with the reason) when it is not
// JSON, not an object, or lacks a string id, event_type, timestamp or the data member.
// An invalid traceparent is dropped (as W3C asks), not an error.
Result<Envelope> decode_envelope(std::string_view body);

// "2026-11-26T07:42:40.123456Z"
std::string format_timestamp(std::chrono::system_clock::time_point t);
// The inverse of format_timestamp (fewer fraction digits are accepted too); nullopt when
// `text` is not in that form.
std::optional<std::chrono::system_clock::time_point> parse_timestamp(std::string_view text);

}  // namespace mercado::messaging
