#pragma once
// A value bound to a statement placeholder ($1, $2, ...), with its type fixed at the call
// site: Tx::exec("... WHERE id = $1 AND name = $2", id, name) turns each argument into a
// Param. Text and blob params are views: they must outlive the call, which they do when
// passed as arguments.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mercado::storage {

using Blob = std::vector<std::byte>;

class Param {
 public:
  enum class Kind : std::uint8_t { null, integer, real, boolean, text, blob };

  Param(std::nullptr_t) noexcept {}
  Param(std::nullopt_t) noexcept {}
  Param(bool b) noexcept : kind_(Kind::boolean), integer_(b ? 1 : 0) {}
  // Integers are stored as 64-bit signed values; an unsigned value above INT64_MAX is a
  // programmer error (std::out_of_range).
  template <class T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>)
  Param(T v) : kind_(Kind::integer), integer_(static_cast<std::int64_t>(v)) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (v > static_cast<T>(std::numeric_limits<std::int64_t>::max())) {
        throw std::out_of_range("storage::Param: unsigned value does not fit a 64-bit integer");
      }
    }
  }
  Param(double v) noexcept : kind_(Kind::real), real_(v) {}
  Param(float v) noexcept : kind_(Kind::real), real_(v) {}
  Param(std::string_view s) noexcept : kind_(Kind::text), text_(s) {}
  Param(const std::string& s) noexcept : kind_(Kind::text), text_(s) {}
  Param(const char* s) noexcept : kind_(Kind::text), text_(s) {}
  Param(std::span<const std::byte> b) noexcept
      : kind_(Kind::blob), text_(reinterpret_cast<const char*>(b.data()), b.size()) {}
  Param(const Blob& b) noexcept : Param(std::span<const std::byte>(b)) {}
  template <class T>
  Param(const std::optional<T>& v) : Param(v ? Param(*v) : Param(nullptr)) {}

  Kind kind() const noexcept { return kind_; }
  bool is_null() const noexcept { return kind_ == Kind::null; }
  std::int64_t integer() const noexcept { return integer_; }  // integer and boolean
  double real() const noexcept { return real_; }
  std::string_view text() const noexcept { return text_; }
  std::span<const std::byte> blob() const noexcept {
    return {reinterpret_cast<const std::byte*>(text_.data()), text_.size()};
  }

 private:
  Kind kind_ = Kind::null;
  std::int64_t integer_ = 0;
  double real_ = 0;
  std::string_view text_;  // text and blob bytes
};

}  // namespace mercado::storage
