#include <mercado/messaging/topic.hpp>

#include <vector>

namespace mercado::messaging {
namespace {

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    auto dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

bool match(const std::vector<std::string_view>& p, std::size_t i, const std::vector<std::string_view>& k,
           std::size_t j) {
  while (i < p.size()) {
    if (p[i] == "#") {
      // '#' swallows zero or more words: try every split.
      for (std::size_t rest = j; rest <= k.size(); ++rest) {
        if (match(p, i + 1, k, rest)) return true;
      }
      return false;
    }
    if (j >= k.size()) return false;
    if (p[i] != "*" && p[i] != k[j]) return false;
    ++i;
    ++j;
  }
  return j == k.size();
}

}  // namespace

bool topic_matches(std::string_view pattern, std::string_view routing_key) noexcept {
  if (pattern.find_first_of("*#") == std::string_view::npos) return pattern == routing_key;
  return match(words(pattern), 0, words(routing_key), 0);
}

}  // namespace mercado::messaging
