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

// A migration that rebuilds a SQLite table as WITHOUT ROWID: its primary key becomes the
// table's own B-tree instead of a separate index beside a rowid B-tree, so an insert writes
// one B-tree fewer (one page fewer per commit). For tables with a TEXT or composite primary
// key and small rows (SQLite's advice: under ~1/20 of a page; larger rows spill to overflow
// pages sooner than in a rowid table). `columns` repeats the table's column definitions and
// constraints in their present order (rows are copied with SELECT *); `after` recreates its
// indexes. On PostgreSQL (no rowid) it does nothing.
//
//   without_rowid(3, "reservations", "id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, ...")
Migration without_rowid(std::int64_t version, std::string_view table, std::string_view columns,
                        std::string_view after = {});

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
