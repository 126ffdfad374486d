#pragma once
// The result of a query, fully read into memory: column names and row-major cells.
//
//   auto rows = tx.query("SELECT id, name, note FROM users WHERE age > $1", 18);
//   for (const storage::Row& r : *rows) {
//     std::int64_t id = r.get<std::int64_t>(0);
//     std::string name = r.get<std::string>("name");
//     std::optional<std::string> note = r.get<std::optional<std::string>>(2);
//   }
//
// Cells hold what the backend returned: null, a 64-bit integer (also booleans), a double,
// text, or a blob. get<T>() converts where lossless (integer -> double, integer -> bool,
// text that spells a number -> number, e.g. PostgreSQL NUMERIC). Asking for a type the
// cell cannot give, a null as a non-optional, or a column that does not exist is a
// programmer error (schema and code disagree): it throws std::logic_error.
// Not thread-safe; a Row is a view valid while its Rows lives.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include <mercado/storage/param.hpp>

namespace mercado::storage {

using Value = std::variant<std::monostate, std::int64_t, double, std::string, Blob>;

class Rows;

class Row {
 public:
  std::size_t size() const noexcept;
  bool is_null(std::size_t column) const;
  const Value& value(std::size_t column) const;
  // Index of a column by name; throws std::logic_error when there is none.
  std::size_t index(std::string_view column) const;

  template <class T>
  T get(std::size_t column) const;
  template <class T>
  T get(std::string_view column) const {
    return get<T>(index(column));
  }

 private:
  friend class Rows;
  Row(const Rows* rows, std::size_t row) noexcept : rows_(rows), row_(row) {}
  [[noreturn]] void type_error(std::size_t column, std::string_view wanted) const;
  const Rows* rows_;
  std::size_t row_;
};

class Rows {
 public:
  Rows() = default;
  explicit Rows(std::vector<std::string> columns) : columns_(std::move(columns)) {}

  const std::vector<std::string>& columns() const noexcept { return columns_; }
  std::size_t size() const noexcept { return columns_.empty() ? 0 : cells_.size() / columns_.size(); }
  bool empty() const noexcept { return size() == 0; }
  Row operator[](std::size_t row) const noexcept { return Row(this, row); }
  // Throws std::logic_error when there is no first row.
  Row front() const;

  class Iterator {
   public:
    using value_type = Row;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    Iterator(const Rows* rows, std::size_t i) : rows_(rows), i_(i) {}
    Row operator*() const { return (*rows_)[i_]; }
    Iterator& operator++() { ++i_; return *this; }
    Iterator operator++(int) { auto t = *this; ++i_; return t; }
    bool operator==(const Iterator& o) const noexcept { return i_ == o.i_; }

   private:
    const Rows* rows_ = nullptr;
    std::size_t i_ = 0;
  };
  Iterator begin() const noexcept { return {this, 0}; }
  Iterator end() const noexcept { return {this, size()}; }

  // For backends: append one cell of the current row (row-major).
  void push(Value v) { cells_.push_back(std::move(v)); }
  void reserve_rows(std::size_t n) { cells_.reserve(n * columns_.size()); }

 private:
  friend class Row;
  std::vector<std::string> columns_;
  std::vector<Value> cells_;
};

namespace detail {
template <class T> struct IsOptional : std::false_type {};
template <class T> struct IsOptional<std::optional<T>> : std::true_type {};

template <class T>
bool parse_number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace detail

inline std::size_t Row::size() const noexcept { return rows_->columns_.size(); }
inline const Value& Row::value(std::size_t column) const {
  if (column >= size()) throw std::logic_error("storage::Row: no column " + std::to_string(column));
  return rows_->cells_[row_ * size() + column];
}
inline bool Row::is_null(std::size_t column) const {
  return std::holds_alternative<std::monostate>(value(column));
}

template <class T>
T Row::get(std::size_t column) const {
  const Value& v = value(column);
  if constexpr (detail::IsOptional<T>::value) {
    if (std::holds_alternative<std::monostate>(v)) return std::nullopt;
    return T(get<typename T::value_type>(column));
  } else if constexpr (std::is_same_v<T, bool>) {
    if (auto* i = std::get_if<std::int64_t>(&v)) return *i != 0;
    type_error(column, "bool");
  } else if constexpr (std::is_integral_v<T>) {
    std::int64_t x = 0;
    if (auto* i = std::get_if<std::int64_t>(&v)) {
      x = *i;
    } else if (auto* s = std::get_if<std::string>(&v); s && detail::parse_number(*s, x)) {
    } else {
      type_error(column, "integer");
    }
    if (x < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
        (x > 0 && static_cast<std::uint64_t>(x) > std::numeric_limits<T>::max())) {
      type_error(column, "integer in range");
    }
    return static_cast<T>(x);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (auto* d = std::get_if<double>(&v)) return static_cast<T>(*d);
    if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<T>(*i);
    double x = 0;
    if (auto* s = std::get_if<std::string>(&v); s && detail::parse_number(*s, x)) return static_cast<T>(x);
    type_error(column, "number");
  } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
    if (auto* s = std::get_if<std::string>(&v)) return T(*s);
    type_error(column, "text");
  } else if constexpr (std::is_same_v<T, Blob>) {
    if (auto* b = std::get_if<Blob>(&v)) return *b;
    if (auto* s = std::get_if<std::string>(&v)) {
      const auto* p = reinterpret_cast<const std::byte*>(s->data());
      return Blob(p, p + s->size());
    }
    type_error(column, "blob");
  } else {
    static_assert(sizeof(T) == 0, "storage::Row::get: unsupported type");
  }
}

}  // namespace mercado::storage
