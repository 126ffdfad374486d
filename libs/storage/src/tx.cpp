#include <mercado/storage/tx.hpp>

namespace mercado::storage {

std::string_view to_string(Dialect d) noexcept {
  return d == Dialect::postgres ? "postgres" : "sqlite";
}

Result<std::int64_t> Tx::exec_params(std::string_view sql, std::span<const Param> params) {
  if (failure_) return std::unexpected(*failure_);
  return remember(do_exec(sql, params));
}

Result<Rows> Tx::query_params(std::string_view sql, std::span<const Param> params) {
  if (failure_) return std::unexpected(*failure_);
  return remember(do_query(sql, params));
}

Result<void> Tx::exec_script(std::string_view sql) {
  if (failure_) return std::unexpected(*failure_);
  return remember(do_script(sql));
}

}  // namespace mercado::storage
