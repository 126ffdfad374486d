#include <mercado/resilience/retry.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <stdexcept>

#include <mercado/observability/log.hpp>

namespace mercado::resilience {

std::string_view to_string(RetryVerdict verdict) noexcept {
  switch (verdict) {
    case RetryVerdict::retry: return "retry";
    case RetryVerdict::attempts_exhausted: return "attempts_exhausted";
    case RetryVerdict::not_retryable: return "not_retryable";
    case RetryVerdict::unsafe: return "unsafe";
    case RetryVerdict::retry_after_too_long: return "retry_after_too_long";
    case RetryVerdict::deadline: return "deadline";
    case RetryVerdict::budget_exhausted: return "budget_exhausted";
  }
  return "not_retryable";
}

Retry::Retry(std::string name, RetryConfig config, Env env, RetryBudget* budget)
    : name_(std::move(name)), config_(config), env_(env), budget_(budget) {
  if (config_.max_attempts == 0) throw std::invalid_argument("retry: max_attempts must be >= 1");
  if (!(config_.backoff.multiplier >= 1.0)) throw std::invalid_argument("retry: multiplier must be >= 1");
  if (!(config_.backoff.jitter >= 0.0 && config_.backoff.jitter <= 1.0)) {
    throw std::invalid_argument("retry: jitter must be in [0, 1]");
  }
  if (config_.backoff.initial.count() < 0 || config_.backoff.max.count() < 0) {
    throw std::invalid_argument("retry: backoff durations must be >= 0");
  }
  attempts_total_ = &env_.metrics->counter("retry_attempts_total", "Retries made (attempts after the first)", {"name"})
                         .with({name_});
  budget_exhausted_total_ =
      &env_.metrics->counter("retry_budget_exhausted_total", "Retries refused because the retry budget was spent", {"name"})
           .with({name_});
}

RetryDecision Retry::decide(const FailedAttempt& failed) noexcept {
  if (failed.attempt >= config_.max_attempts) return {RetryVerdict::attempts_exhausted};
  if (!failed.retryable) return {RetryVerdict::not_retryable};
  if (!failed.safe) return {RetryVerdict::unsafe};
  core::Duration delay = backoff_delay(config_.backoff, failed.attempt, env_.random->next_unit());
  if (config_.honour_retry_after && failed.retry_after) {
    if (*failed.retry_after > config_.max_retry_after) return {RetryVerdict::retry_after_too_long};
    delay = std::max(delay, *failed.retry_after);
  }
  if (env_.clock->now() + delay >= failed.deadline) return {RetryVerdict::deadline};
  if (budget_ != nullptr && !budget_->try_spend()) {
    budget_exhausted_total_->inc();
    log::warn("retry budget exhausted", {{"name", name_}, {"attempt", failed.attempt}});
    return {RetryVerdict::budget_exhausted};
  }
  attempts_total_->inc();
  log::info("retrying call",
            {{"name", name_},
             {"attempt", failed.attempt + 1},
             {"delay_ms", std::chrono::duration<double, std::milli>(delay).count()}});
  return {RetryVerdict::retry, delay};
}

namespace {

bool parse_uint(std::string_view s, int& out) noexcept {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// IMF-fixdate (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::chrono::system_clock::time_point> parse_imf_fixdate(std::string_view s) noexcept {
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
      s[22] != ':' || s.substr(25) != " GMT") {
    return std::nullopt;
  }
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  unsigned month = 0;
  for (unsigned i = 0; i < 12; ++i) {
    if (s.substr(8, 3) == kMonths[i]) month = i + 1;
  }
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  if (month == 0 || !parse_uint(s.substr(5, 2), day) || !parse_uint(s.substr(12, 4), year) ||
      !parse_uint(s.substr(17, 2), hh) || !parse_uint(s.substr(20, 2), mm) || !parse_uint(s.substr(23, 2), ss)) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(month),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok() || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  return std::chrono::sys_days(ymd) + std::chrono::hours(hh) + std::chrono::minutes(mm) + std::chrono::seconds(ss);
}

}  // namespace

std::optional<core::Duration> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) noexcept {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    constexpr std::int64_t kMaxSeconds = 1'000'000'000;  // saturate: ~31 years
    std::int64_t secs = 0;
    for (char c : value) {
      secs = std::min(kMaxSeconds, secs * 10 + (c - '0'));
    }
    return std::chrono::seconds(secs);
  }
  auto when = parse_imf_fixdate(value);
  if (!when) return std::nullopt;
  return std::max(core::Duration(0), std::chrono::duration_cast<core::Duration>(*when - now));
}

}  // namespace mercado::resilience
