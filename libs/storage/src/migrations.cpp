#include <mercado/storage/migrations.hpp>

#include <ctime>
#include <set>

namespace mercado::storage {
namespace {

constexpr std::string_view kCreateTable =
    "CREATE TABLE IF NOT EXISTS mercado_schema_migrations ("
    " scope TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL,"
    " checksum TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (scope, version))";

// PostgreSQL advisory lock key shared by every migration run ("mercado" in ASCII).
constexpr std::int64_t kMigrationLockKey = 0x6d65726361646fLL;

std::string checksum(std::string_view sql) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  for (unsigned char c : sql) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = kHex[h & 0xf];
  return out;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Serializes migrations across processes and makes sure the record table exists.
Result<void> lock_and_prepare(Tx& tx) {
  if (tx.dialect() == Dialect::postgres) {
    if (auto r = tx.query("SELECT pg_advisory_xact_lock($1)", kMigrationLockKey); !r) {
      return std::unexpected(r.error());
    }
  }
  // SQLite: the write transaction (BEGIN IMMEDIATE) already holds the database's write lock.
  return tx.exec_script(kCreateTable);
}

struct Applied {
  std::int64_t version;
  std::string checksum;
};

Result<std::vector<Applied>> read_applied(Tx& tx, std::string_view scope) {
  auto rows = tx.query("SELECT version, checksum FROM mercado_schema_migrations WHERE scope = $1 ORDER BY version",
                       scope);
  if (!rows) return std::unexpected(rows.error());
  std::vector<Applied> out;
  for (const Row& r : *rows) out.push_back({r.get<std::int64_t>(0), r.get<std::string>(1)});
  return out;
}

Result<void> verify(std::string_view scope, const std::vector<Applied>& applied,
                    std::span<const Migration> migrations, Dialect dialect) {
  for (const Applied& a : applied) {
    for (const Migration& m : migrations) {
      if (m.version == a.version && checksum(m.sql_for(dialect)) != a.checksum) {
        return fail(Errc::internal, "migration " + std::string(scope) + "/" + std::to_string(m.version) + " (" +
                                        m.name + ") was changed after it was applied");
      }
    }
  }
  return {};
}

}  // namespace

Result<MigrationReport> migrate_blocking(Database& db, std::string_view scope,
                                         std::span<const Migration> migrations) {
  if (scope.empty()) return fail(Errc::invalid_argument, "migration scope must not be empty");
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version <= 0 || (i > 0 && migrations[i].version <= migrations[i - 1].version)) {
      return fail(Errc::invalid_argument, "migration versions of " + std::string(scope) +
                                              " must be positive and strictly increasing");
    }
  }
  const Dialect dialect = db.dialect();
  MigrationReport report;

  auto applied = db.transaction_blocking([&](Tx& tx) -> Result<std::vector<Applied>> {
    if (auto r = lock_and_prepare(tx); !r) return std::unexpected(r.error());
    return read_applied(tx, scope);
  });
  if (!applied) return std::unexpected(std::move(applied.error()));
  if (auto v = verify(scope, *applied, migrations, dialect); !v) return std::unexpected(v.error());
  std::set<std::int64_t> done;
  for (const Applied& a : *applied) done.insert(a.version);

  for (const Migration& m : migrations) {
    if (done.contains(m.version)) continue;
    auto ran = db.transaction_blocking([&](Tx& tx) -> Result<bool> {
      if (auto r = lock_and_prepare(tx); !r) return std::unexpected(r.error());
      // Another process may have applied it while we waited for the lock.
      auto existing = tx.query_value<std::string>(
          "SELECT checksum FROM mercado_schema_migrations WHERE scope = $1 AND version = $2", scope, m.version);
      if (!existing) return std::unexpected(existing.error());
      const std::string& sql = m.sql_for(dialect);
      if (*existing) {
        if (**existing != checksum(sql)) {
          return fail(Errc::internal, "migration " + std::string(scope) + "/" + std::to_string(m.version) +
                                          " was applied elsewhere with different SQL");
        }
        return false;
      }
      if (auto r = tx.exec_script(sql); !r) {
        Error e = r.error();
        e.code = Errc::internal;
        e.message = "migration " + std::string(scope) + "/" + std::to_string(m.version) + " (" + m.name +
                    ") failed: " + e.internal;
        return std::unexpected(std::move(e));
      }
      auto rec = tx.exec(
          "INSERT INTO mercado_schema_migrations (scope, version, name, checksum, applied_at)"
          " VALUES ($1, $2, $3, $4, $5)",
          scope, m.version, m.name, checksum(sql), utc_now());
      if (!rec) return std::unexpected(rec.error());
      return true;
    });
    if (!ran) return std::unexpected(std::move(ran.error()));
    if (*ran) report.applied.push_back(m.version);
  }
  report.version = migrations.empty() ? 0 : migrations.back().version;
  for (const Applied& a : *applied) report.version = std::max(report.version, a.version);
  return report;
}

Migration without_rowid(std::int64_t version, std::string_view table, std::string_view columns,
                        std::string_view after) {
  const std::string t(table);
  const std::string rebuilt = t + "__without_rowid";
  Migration m;
  m.version = version;
  m.name = t + " without rowid";
  m.sqlite_sql = "CREATE TABLE " + rebuilt + " (" + std::string(columns) + ") WITHOUT ROWID;" +  //
                 "INSERT INTO " + rebuilt + " SELECT * FROM " + t + ";" +                      //
                 "DROP TABLE " + t + ";" +                                                       //
                 "ALTER TABLE " + rebuilt + " RENAME TO " + t + ";" + std::string(after);
  m.postgres_sql = "SELECT 1";  // nothing to rebuild; recorded like any other migration
  return m;
}

boost::asio::awaitable<Result<MigrationReport>> migrate(Database& db, std::string_view scope,
                                                        std::span<const Migration> migrations) {
  co_return co_await db.pool().run([&] { return migrate_blocking(db, scope, migrations); });
}

}  // namespace mercado::storage
