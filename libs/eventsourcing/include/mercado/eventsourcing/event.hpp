#pragma once
// Events as stored: a stream (one aggregate) is an ordered list of events numbered
// 1, 2, 3, ...; a stream's *version* is the number of its events (0 = no stream), as in
// the chapter's save_events(aggregate_id, events, expected_version). Every event also has
// a global *position* across all streams, increasing in commit order.
//
// Mapping to EventStoreDB's expected revision: exact(n) here is revision n-1 there;
// exact(0) is no_stream.

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace mercado::es {

struct NewEvent {
  std::string event_id;    // unique; appending an id that is already stored is a no-op
  std::string event_type;  // e.g. "OrderCreated"
  std::string data;        // JSON
  std::string metadata = "{}";  // JSON: traceparent, correlation and causation ids, ...

  // A new event with a random id.
  static NewEvent make(std::string type, const boost::json::value& data, const boost::json::value& metadata = {});
};

struct RecordedEvent {
  std::int64_t position = 0;  // global, > 0
  std::string stream_id;
  std::int64_t version = 0;   // within the stream, 1-based
  std::string event_id;
  std::string event_type;
  std::string data;
  std::string metadata;
  std::int64_t recorded_at_ms = 0;  // wall clock, epoch milliseconds

  boost::json::value json() const;  // data parsed (throws std::logic_error on stored garbage)
};

struct ExpectedVersion {
  enum class Kind : std::uint8_t { exact, no_stream, any, stream_exists };
  Kind kind = Kind::any;
  std::int64_t version = 0;

  static ExpectedVersion exact(std::int64_t v) { return {v == 0 ? Kind::no_stream : Kind::exact, v}; }
  static ExpectedVersion no_stream() { return {Kind::no_stream, 0}; }
  static ExpectedVersion any() { return {Kind::any, 0}; }
  static ExpectedVersion stream_exists() { return {Kind::stream_exists, 0}; }
  bool admits(std::int64_t current) const noexcept;
  std::string describe() const;
};

}  // namespace mercado::es
