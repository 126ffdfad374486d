#include "domain/greeting.hpp"

#include <mercado/json/rules.hpp>

namespace hello::domain {

std::optional<Language> parse_language(std::string_view code) noexcept {
  if (code == "en") return Language::en;
  if (code == "es") return Language::es;
  return std::nullopt;
}

std::string_view default_word(Language language) noexcept {
  return language == Language::es ? "Hola" : "Hello";
}

mercado::Result<std::string> greet(std::string_view name, Language language, std::string_view word) {
  namespace rules = mercado::json::rules;
  if (!rules::length_between(name, 1, 64) || !rules::is_printable_utf8(name)) {
    mercado::Error e(mercado::Errc::invalid_argument, "name must be 1 to 64 printable characters");
    e.fields.push_back({"name", "must be 1 to 64 printable characters"});
    return mercado::fail(std::move(e));
  }
  std::string out(word.empty() ? default_word(language) : word);
  out += ", ";
  out += name;
  out += '!';
  return out;
}

}  // namespace hello::domain
