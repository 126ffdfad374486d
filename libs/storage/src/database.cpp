#include <mercado/storage/database.hpp>
#include <mercado/storage/database_url.hpp>

#include "postgres_database.hpp"
#include "sqlite_database.hpp"

namespace mercado::storage {

boost::asio::awaitable<Result<void>> Database::sync_log() {
  return pool_.run([this] { return sync_log_blocking(); });
}

Result<std::shared_ptr<Database>> open_database(std::string_view url, core::BlockingPool& pool,
                                                const DatabaseOptions& options) {
  auto parsed = parse_database_url(url);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  if (parsed->kind == DatabaseUrl::Kind::postgres) {
    auto db = detail::PostgresDatabase::open(*parsed, pool, options);
    if (!db) return std::unexpected(std::move(db.error()));
    return std::shared_ptr<Database>(std::move(*db));
  }
  auto db = detail::SqliteDatabase::open(*parsed, pool, options);
  if (!db) return std::unexpected(std::move(db.error()));
  return std::shared_ptr<Database>(std::move(*db));
}

}  // namespace mercado::storage
