#pragma once
// AMQP topic-exchange matching, used by every transport so that bindings mean the same
// everywhere: a routing key (event type) is a list of words separated by '.'; in a binding
// pattern '*' matches exactly one word and '#' zero or more words. A pattern without
// wildcards matches only the identical key.

#include <string_view>

namespace mercado::messaging {

bool topic_matches(std::string_view pattern, std::string_view routing_key) noexcept;

}  // namespace mercado::messaging
