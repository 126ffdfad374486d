#pragma once
// Per-service versioned schema migrations, applied at start-up and recorded in the table
// mercado_schema_migrations(scope, version, name, checksum, applied_at).
//
//   static const storage::Migration kOrders[] = {
//     {1, "orders", "CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT NOT NULL)"},
//     {2, "orders.total", "ALTER TABLE orders ADD COLUMN total BIGINT NOT NULL DEFAULT 0"},
//   };
//   auto report = co_await storage::migrate(*db, "orders", kOrders);
//
// A scope names one independent sequence (a service's own tables, or a library's such as
// "mercado_outbox"), so several live in one database. Each pending migration runs in its
// own transaction together with its record: it is applied completely or not at all, and
// exactly once. Migrating concurrently from several processes is safe: a database lock
// (SQLite write lock, PostgreSQL advisory lock) serializes them and each re-checks what is
// applied. Errors: invalid_argument when versions are not strictly increasing and positive;
// internal when an applied migration's SQL changed since (checksum mismatch) or its SQL
// fails (the error names the migration).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/error.hpp>
#include <mercado/storage/database.hpp>

namespace mercado::storage {

struct Migration {
  std::int64_t version = 0;  // > 0, strictly increasing within a scope
  std::string name;
  std::string sql;           // one or more statements, used by every dialect ...
  std::string postgres_sql;  // ... unless the dialect's own text is given here
  std::string sqlite_sql;

  const std::string& sql_for(Dialect d) const noexcept {
    const std::string& own = d == Dialect::postgres ? postgres_sql : sqlite_sql;
    return own.empty() ? sql : own;
  }
};

struct MigrationReport {
  std::vector<std::int64_t> applied;  // versions applied by this call
  std::int64_t version = 0;           // the scope's version afterwards
};

boost::asio::awaitable<Result<MigrationReport>> migrate(Database& db, std::string_view scope,
                                                        std::span<const Migration> migrations);
// The same on the calling thread (not an io thread).
Result<MigrationReport> migrate_blocking(Database& db, std::string_view scope,
                                         std::span<const Migration> migrations);

}  // namespace mercado::storage
