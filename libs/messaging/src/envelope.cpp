#include <mercado/messaging/envelope.hpp>
#include <mercado/messaging/message.hpp>

#include <ctime>

#include <boost/json.hpp>

#include <mercado/core/uuid.hpp>
#include <mercado/json/codec.hpp>
#include <mercado/observability/trace.hpp>

namespace mercado::messaging {

namespace bj = boost::json;

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  long frac = static_cast<long>(us % 1000000);
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06ldZ", frac);
  return buf;
}

std::optional<std::chrono::system_clock::time_point> parse_timestamp(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z, digits only where digits belong.
  auto digits = [&](std::size_t at, std::size_t n, int& out) {
    if (at + n > text.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  std::tm tm{};
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':' ||
      !digits(0, 4, tm.tm_year) || !digits(5, 2, tm.tm_mon) || !digits(8, 2, tm.tm_mday) ||
      !digits(11, 2, tm.tm_hour) || !digits(14, 2, tm.tm_min) || !digits(17, 2, tm.tm_sec)) {
    return std::nullopt;
  }
  std::size_t at = 19;
  std::int64_t nanos = 0;
  if (text[at] == '.') {
    std::size_t n = 0;
    for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, ++n) {
      if (n < 9) nanos = nanos * 10 + (text[at] - '0');
    }
    if (n == 0) return std::nullopt;
    for (; n < 9; ++n) nanos *= 10;
  }
  if (at + 1 != text.size() || text[at] != 'Z') return std::nullopt;
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(::timegm(&tm)) +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(nanos));
}

Envelope make_envelope(std::string event_type, bj::value data, Headers headers, std::string_view source,
                       const core::Clock& clock) {
  Envelope e;
  e.id = core::new_uuid();
  e.event_type = std::move(event_type);
  e.data = std::move(data);
  e.timestamp = format_timestamp(clock.wall_now());
  e.source = std::string(source);
  std::optional<obs::TraceContext> parent;
  if (auto it = headers.find("traceparent"); it != headers.end()) {
    parent = obs::TraceContext::parse(it->second);
    headers.erase(it);
  }
  if (parent && parent->valid()) {
    e.traceparent = parent->traceparent();
  } else {
    obs::TraceContext root{obs::new_trace_id(), obs::new_span_id(), 0x01};
    e.traceparent = root.traceparent();
  }
  e.headers = std::move(headers);
  return e;
}

// Written directly (the same members in the same order as a boost::json::object of them
// would give, byte for byte except DEL, which is escaped here), not through an object: that
// copied the event's data first.
std::string encode_envelope(const Envelope& e) {
  using json::detail::append_string;
  std::string out;
  out.reserve(192 + e.id.size() + e.event_type.size() + e.source.size() + e.traceparent.size());
  const std::pair<std::string_view, const std::string*> texts[] = {{"id", &e.id},
                                                                   {"event_type", &e.event_type},
                                                                   {"source", &e.source},
                                                                   {"timestamp", &e.timestamp},
                                                                   {"traceparent", &e.traceparent}};
  for (const auto& [key, value] : texts) {
    out += out.empty() ? '{' : ',';
    append_string(out, key);
    out += ':';
    append_string(out, *value);
  }
  out += ",\"data\":";
  json::detail::write_value(out, e.data);
  if (!e.headers.empty()) {
    out += ",\"headers\":";
    json::detail::write_value(out, e.headers);
  }
  out += '}';
  return out;
}

Result<Envelope> decode_envelope(std::string_view body) {
  boost::system::error_code ec;
  bj::value v = bj::parse(bj::string_view(body.data(), body.size()), ec);
  if (ec) return fail(Errc::invalid_argument, "message is not JSON: " + ec.message());
  if (!v.is_object()) return fail(Errc::invalid_argument, "message is not a JSON object");
  auto& o = v.as_object();
  Envelope e;
  auto text = [&](std::string_view key, std::string& out, bool required) -> bool {
    auto* p = o.if_contains(key);
    if (!p) return !required;
    if (!p->is_string()) return false;
    out.assign(p->as_string().data(), p->as_string().size());
    return !required || !out.empty();
  };
  std::vector<std::string> missing;
  if (!text("id", e.id, true)) missing.emplace_back("id");
  if (!text("event_type", e.event_type, true)) missing.emplace_back("event_type");
  if (!text("timestamp", e.timestamp, true)) missing.emplace_back("timestamp");
  if (!text("source", e.source, false)) missing.emplace_back("source");
  std::string traceparent;
  if (!text("traceparent", traceparent, false)) missing.emplace_back("traceparent");
  if (auto* d = o.if_contains("data")) {
    e.data = std::move(*d);
  } else {
    missing.emplace_back("data");
  }
  if (auto* h = o.if_contains("headers")) {
    if (!h->is_object()) {
      missing.emplace_back("headers");
    } else {
      for (const auto& kv : h->as_object()) {
        if (!kv.value().is_string()) {
          missing.emplace_back("headers." + std::string(kv.key()));
          continue;
        }
        e.headers.emplace(std::string(kv.key()), std::string(kv.value().as_string()));
      }
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return fail(Errc::invalid_argument, "message envelope lacks or mistypes: " + list);
  }
  if (auto tc = obs::TraceContext::parse(traceparent); tc && tc->valid()) e.traceparent = tc->traceparent();
  return e;
}

Message to_message(const Envelope& e) {
  return Message{e.id, e.event_type, e.traceparent, encode_envelope(e)};
}

}  // namespace mercado::messaging
