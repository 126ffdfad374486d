#include <mercado/storage/rows.hpp>

namespace mercado::storage {

std::size_t Row::index(std::string_view column) const {
  const auto& cols = rows_->columns_;
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (cols[i] == column) return i;
  }
  throw std::logic_error("storage::Row: no column named '" + std::string(column) + "'");
}

void Row::type_error(std::size_t column, std::string_view wanted) const {
  const Value& v = value(column);
  static constexpr std::string_view kNames[] = {"null", "integer", "real", "text", "blob"};
  throw std::logic_error("storage::Row: column '" + rows_->columns_[column] + "' holds " +
                         std::string(kNames[v.index()]) + ", not " + std::string(wanted));
}

Row Rows::front() const {
  if (empty()) throw std::logic_error("storage::Rows::front: no rows");
  return (*this)[0];
}

}  // namespace mercado::storage
