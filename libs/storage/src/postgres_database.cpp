#include "postgres_database.hpp"

#include "libpq.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include <mercado/storage/errors.hpp>

#include "sql_text.hpp"

namespace mercado::storage::detail {
namespace {

// Type OIDs from PostgreSQL's pg_type.h (stable across versions).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kOidOid = 26;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;

struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { pq().PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

Error connection_error(PGconn* conn, std::string_view what) {
  std::string detail = conn ? pq().PQerrorMessage(conn) : "out of memory";
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  return db_error(Errc::unavailable, kConnection, "database unavailable", std::string(what) + ": " + detail);
}

Error result_error(PGconn* conn, const PGresult* res, std::string_view sql) {
  if (pq().PQstatus(conn) != CONNECTION_OK) return connection_error(conn, "connection lost");
  const char* state = res ? pq().PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string code = state ? state : "";
  std::string detail = res ? pq().PQresultErrorMessage(res) : pq().PQerrorMessage(conn);
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  std::string internal = detail + " [" + code + "]";
  if (!sql.empty()) internal += " in: " + excerpt(sql);
  if (code == "23505") return db_error(Errc::conflict, kUniqueViolation, "duplicate record", internal);
  if (code == "23503") {
    return db_error(Errc::conflict, kForeignKeyViolation, "referenced record missing or in use", internal);
  }
  if (code == "23502") return db_error(Errc::unprocessable, kNotNullViolation, "a required value is missing", internal);
  if (code == "23514") return db_error(Errc::unprocessable, kCheckViolation, "a value violates a rule", internal);
  if (code == "40001") return db_error(Errc::conflict, kSerializationFailure, "concurrent update, retry", internal);
  if (code == "40P01") return db_error(Errc::conflict, kDeadlock, "concurrent update, retry", internal);
  if (code == "57014") return db_error(Errc::timeout, "", "database statement timed out", internal);
  if (code.starts_with("08") || code.starts_with("57P") || code == "53300") {
    return db_error(Errc::unavailable, kConnection, "database unavailable", internal);
  }
  return db_error(Errc::internal, "", "database statement failed", internal);
}

void ignore_notice(void*, const char*) {}

std::vector<std::byte> decode_bytea_hex(std::string_view text) {
  std::vector<std::byte> out;
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x') return out;
  out.reserve((text.size() - 2) / 2);
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
  };
  for (std::size_t i = 2; i + 1 < text.size(); i += 2) {
    out.push_back(static_cast<std::byte>(digit(text[i]) * 16 + digit(text[i + 1])));
  }
  return out;
}

}  // namespace

// One libpq connection and its prepared statements. Used by one thread at a time.
class PgConnection {
 public:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  ~PgConnection() { pq().PQfinish(conn_); }
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  bool healthy() const noexcept { return pq().PQstatus(conn_) == CONNECTION_OK; }

  // Runs a parameterless command through the simple query protocol.
  Result<std::string> command(std::string_view sql) {
    std::string text(sql);
    PgResult res(pq().PQexec(conn_, text.c_str()));
    auto status = res ? pq().PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
      return std::unexpected(result_error(conn_, res.get(), sql));
    }
    return std::string(pq().PQcmdStatus(res.get()));
  }

  Result<std::int64_t> run(std::string_view sql, std::span<const Param> params, Rows* rows) {
    // Statement key: the SQL plus the parameter types it was prepared with.
    std::string key(sql);
    key.push_back('\x1f');
    std::array<Oid, 32> small_types{};
    std::vector<Oid> big_types;
    Oid* types = small_types.data();
    if (params.size() > small_types.size()) {
      big_types.resize(params.size());
      types = big_types.data();
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      switch (params[i].kind()) {
        case Param::Kind::integer: types[i] = kInt8Oid; key.push_back('i'); break;
        case Param::Kind::real: types[i] = kFloat8Oid; key.push_back('r'); break;
        case Param::Kind::boolean: types[i] = kBoolOid; key.push_back('b'); break;
        case Param::Kind::blob: types[i] = kByteaOid; key.push_back('x'); break;
        default: types[i] = 0; key.push_back('t'); break;  // text and null: inferred by the server
      }
    }
    auto it = prepared_.find(key);
    if (it == prepared_.end()) {
      std::string name = "mercado_" + std::to_string(prepared_.size() + 1);
      std::string text(sql);
      PgResult res(pq().PQprepare(conn_, name.c_str(), text.c_str(), static_cast<int>(params.size()), types));
      if (!res || pq().PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
        return std::unexpected(result_error(conn_, res.get(), sql));
      }
      PgResult described(pq().PQdescribePrepared(conn_, name.c_str()));
      if (!described || pq().PQresultStatus(described.get()) != PGRES_COMMAND_OK) {
        return std::unexpected(result_error(conn_, described.get(), sql));
      }
      it = prepared_.emplace(std::move(key), Prepared{std::move(name), pq().PQnparams(described.get())}).first;
    }
    if (it->second.params != static_cast<int>(params.size())) {
      return std::unexpected(db_error(Errc::internal, "", "database statement failed",
                                      "statement takes " + std::to_string(it->second.params) + " parameters, " +
                                          std::to_string(params.size()) + " given: " + excerpt(sql)));
    }

    std::vector<std::string> scratch(params.size());
    std::vector<const char*> values(params.size());
    std::vector<int> lengths(params.size());
    std::vector<int> formats(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Param& p = params[i];
      switch (p.kind()) {
        case Param::Kind::null: values[i] = nullptr; break;
        case Param::Kind::integer: scratch[i] = std::to_string(p.integer()); break;
        case Param::Kind::boolean: scratch[i] = p.integer() ? "t" : "f"; break;
        case Param::Kind::real: {
          double d = p.real();
          if (std::isnan(d)) {
            scratch[i] = "NaN";
          } else if (std::isinf(d)) {
            scratch[i] = d > 0 ? "Infinity" : "-Infinity";
          } else {
            char buf[32];
            auto r = std::to_chars(buf, buf + sizeof buf, d);
            scratch[i].assign(buf, r.ptr);
          }
          break;
        }
        case Param::Kind::text: scratch[i].assign(p.text()); break;
        case Param::Kind::blob:
          values[i] = p.text().data();  // raw bytes, binary format
          lengths[i] = static_cast<int>(p.text().size());
          formats[i] = 1;
          break;
      }
      if (p.kind() != Param::Kind::null && p.kind() != Param::Kind::blob) values[i] = scratch[i].c_str();
    }
    PgResult res(pq().PQexecPrepared(conn_, it->second.name.c_str(), static_cast<int>(params.size()), values.data(),
                                lengths.data(), formats.data(), 0));
    auto status = res ? pq().PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return std::unexpected(result_error(conn_, res.get(), sql));
    }
    if (rows) read_rows(res.get(), *rows);
    const char* affected = pq().PQcmdTuples(res.get());
    return affected && *affected ? std::strtoll(affected, nullptr, 10) : std::int64_t{0};
  }

  Result<void> script(std::string_view sql) {
    auto r = command(sql);
    if (!r) return std::unexpected(std::move(r.error()));
    return {};
  }

 private:
  static void read_rows(const PGresult* res, Rows& rows) {
    int n = pq().PQntuples(res);
    int columns = pq().PQnfields(res);
    std::vector<std::string> names;
    std::vector<Oid> types;
    for (int c = 0; c < columns; ++c) {
      names.emplace_back(pq().PQfname(res, c));
      types.push_back(pq().PQftype(res, c));
    }
    rows = Rows(std::move(names));
    rows.reserve_rows(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < columns; ++c) {
        if (pq().PQgetisnull(res, r, c)) {
          rows.push(std::monostate{});
          continue;
        }
        std::string_view text(pq().PQgetvalue(res, r, c), static_cast<std::size_t>(pq().PQgetlength(res, r, c)));
        switch (types[static_cast<std::size_t>(c)]) {
          case kInt2Oid:
          case kInt4Oid:
          case kInt8Oid:
          case kOidOid: {
            std::int64_t v = 0;
            std::from_chars(text.data(), text.data() + text.size(), v);
            rows.push(v);
            break;
          }
          case kFloat4Oid:
          case kFloat8Oid: {
            double v = 0;
            if (text == "NaN") {
              v = std::nan("");
            } else if (text == "Infinity" || text == "-Infinity") {
              v = text[0] == '-' ? -HUGE_VAL : HUGE_VAL;
            } else {
              std::from_chars(text.data(), text.data() + text.size(), v);
            }
            rows.push(v);
            break;
          }
          case kBoolOid: rows.push(std::int64_t{text == "t" ? 1 : 0}); break;
          case kByteaOid: rows.push(decode_bytea_hex(text)); break;
          default: rows.push(std::string(text)); break;
        }
      }
    }
  }

  struct Prepared {
    std::string name;
    int params;
  };
  PGconn* conn_;
  std::unordered_map<std::string, Prepared> prepared_;
};

namespace {

class PgTx final : public Tx {
 public:
  explicit PgTx(PgConnection& c) : c_(c) {}
  Dialect dialect() const noexcept override { return Dialect::postgres; }
  std::vector<std::function<void()>> hooks() noexcept { return take_hooks(); }

 protected:
  Result<std::int64_t> do_exec(std::string_view sql, std::span<const Param> params) override {
    return c_.run(sql, params, nullptr);
  }
  Result<Rows> do_query(std::string_view sql, std::span<const Param> params) override {
    Rows rows;
    auto r = c_.run(sql, params, &rows);
    if (!r) return std::unexpected(std::move(r.error()));
    return rows;
  }
  Result<void> do_script(std::string_view sql) override { return c_.script(sql); }

 private:
  PgConnection& c_;
};

}  // namespace

PostgresDatabase::PostgresDatabase(core::BlockingPool& pool, std::string conninfo, std::string redacted,
                                   const DatabaseOptions& options)
    : Database(pool, options.group_commit ? std::max<std::size_t>(options.group_commit_max, 1) : 0),
      conninfo_(std::move(conninfo)),
      redacted_(std::move(redacted)),
      options_(options) {
  if (options_.max_connections == 0) options_.max_connections = 1;
}

PostgresDatabase::~PostgresDatabase() = default;

Result<std::shared_ptr<PostgresDatabase>> PostgresDatabase::open(const DatabaseUrl& url, core::BlockingPool& pool,
                                                                 const DatabaseOptions& options) {
  if (auto api = load_libpq(); !api) return std::unexpected(std::move(api.error()));
  auto db = std::make_shared<PostgresDatabase>(pool, url.conninfo, url.redacted, options);
  auto conn = db->connect();
  if (!conn) return std::unexpected(std::move(conn.error()));
  db->open_ = 1;
  db->release(std::move(*conn));
  return db;
}

Result<std::unique_ptr<PgConnection>> PostgresDatabase::connect() const {
  std::string timeout = std::to_string(options_.connect_timeout.count());
  // Later keywords override the URL's own parameters; earlier ones are defaults it may override.
  const char* keys[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "mercado", conninfo_.c_str(), nullptr};
  PGconn* conn = pq().PQconnectdbParams(keys, values, 1);
  if (conn == nullptr || pq().PQstatus(conn) != CONNECTION_OK) {
    Error e = connection_error(conn, "cannot connect to " + redacted_);
    pq().PQfinish(conn);
    return std::unexpected(std::move(e));
  }
  pq().PQsetNoticeProcessor(conn, ignore_notice, nullptr);
  return std::make_unique<PgConnection>(conn);
}

Result<std::unique_ptr<PgConnection>> PostgresDatabase::acquire() {
  std::unique_lock lock(mutex_);
  auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  while (idle_.empty() && open_ >= options_.max_connections) {
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.max_connections) {
      return std::unexpected(db_error(Errc::unavailable, kBusy, "database busy",
                                      "no free PostgreSQL connection within the acquire timeout"));
    }
  }
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  ++open_;
  lock.unlock();
  auto c = connect();
  if (!c) release(nullptr);
  return c;
}

void PostgresDatabase::release(std::unique_ptr<PgConnection> c) {
  std::unique_ptr<PgConnection> dropped;
  {
    std::lock_guard lock(mutex_);
    if (c && c->healthy()) {
      idle_.push_back(std::move(c));
    } else {
      dropped = std::move(c);
      --open_;
    }
    cv_.notify_one();
  }
}

Result<void> PostgresDatabase::sync_log_blocking() {
  // A transaction with an id writes a commit record, and a synchronous commit returns once
  // the log is flushed up to it: everything committed before, unsynced or not, with it.
  return run(TxMode::write, [](Tx& tx) -> Result<void> {
    auto r = tx.query("SELECT pg_current_xact_id()");
    if (!r) return std::unexpected(r.error());
    return {};
  });
}

Result<void> PostgresDatabase::run(TxMode mode, const std::function<Result<void>(Tx&)>& body) {
  const char* begin = mode == TxMode::write            ? "BEGIN"
                      : mode == TxMode::write_unsynced ? "BEGIN; SET LOCAL synchronous_commit = off"
                                                       : "BEGIN READ ONLY";
  std::unique_ptr<PgConnection> conn;
  // A pooled connection may have died while idle (server restart): nothing has run yet, so
  // one retry on a fresh connection is safe.
  for (int attempt = 0; attempt < 2 && !conn; ++attempt) {
    auto c = acquire();
    if (!c) return std::unexpected(std::move(c.error()));
    auto r = (*c)->command(begin);
    if (r) {
      conn = std::move(*c);
    } else {
      bool broken = !(*c)->healthy();
      release(std::move(*c));
      if (!broken || attempt == 1) return std::unexpected(std::move(r.error()));
    }
  }
  PgTx tx(*conn);
  Result<void> outcome;
  try {
    outcome = body(tx);
  } catch (...) {
    (void)conn->command("ROLLBACK");
    release(std::move(conn));
    throw;
  }
  if (outcome && tx.failure()) outcome = std::unexpected(*tx.failure());
  if (!outcome) {
    (void)conn->command("ROLLBACK");
    release(std::move(conn));
    return outcome;
  }
  auto commit = conn->command("COMMIT");
  if (commit && *commit != "COMMIT") {
    commit = std::unexpected(db_error(Errc::conflict, kSerializationFailure, "concurrent update, retry",
                                      "COMMIT answered " + *commit));
  }
  release(std::move(conn));
  if (!commit) return std::unexpected(std::move(commit.error()));
  for (auto& hook : tx.hooks()) hook();
  return {};
}

}  // namespace mercado::storage::detail
