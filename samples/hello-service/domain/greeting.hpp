#pragma once
// The sample's domain: pure functions, no I/O, unit-tested directly.

#include <optional>
#include <string>
#include <string_view>

#include <mercado/core/error.hpp>

namespace hello::domain {

enum class Language { en, es };

std::optional<Language> parse_language(std::string_view code) noexcept;
std::string_view default_word(Language language) noexcept;

// "Hello, Ana!" -- or invalid_argument when the name is empty, longer than 64 characters,
// or not printable UTF-8. An empty `word` means the language's default word.
mercado::Result<std::string> greet(std::string_view name, Language language, std::string_view word = {});

}  // namespace hello::domain
