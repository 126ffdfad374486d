#pragma once
// The default answers to "what was this HTTP result?" that the policies need. Each is
// replaceable per downstream through PipelineConfig.

#include <chrono>
#include <functional>
#include <optional>

#include <mercado/core/clock.hpp>
#include <mercado/http/client.hpp>
#include <mercado/resilience/outcome.hpp>

namespace mercado::resilience {

// Breaker predicate: failure for connect errors (refused, resolve), timeouts, a closed or
// broken connection (closed, protocol, too_large) and 5xx; success for every other
// response, 4xx included (the downstream is healthy, the request was wrong); ignored for
// invalid_url and cancelled (nothing learnt about the downstream).
Outcome classify_outcome(const http::ClientResult& result) noexcept;

// Retry predicate: transient failures worth another attempt -- refused, resolve, timeout,
// closed, and the statuses 408, 429, 500, 502, 503, 504.
bool is_transient(const http::ClientResult& result) noexcept;

// False only when the request certainly never reached the downstream (then replaying it is
// safe whatever its method).
bool maybe_delivered(const http::ClientResult& result) noexcept;

// The response's Retry-After, if it has a valid one.
std::optional<core::Duration> retry_after_of(const http::ClientResult& result,
                                             std::chrono::system_clock::time_point now) noexcept;

using OutcomeClassifier = std::function<Outcome(const http::ClientResult&)>;
using RetryPredicate = std::function<bool(const http::ClientResult&)>;

}  // namespace mercado::resilience
