#include <mercado/service/idempotency.hpp>

#include <chrono>

#include <boost/beast/core/string.hpp>

#include <mercado/http/problem.hpp>
#include <mercado/storage/errors.hpp>

namespace mercado::service {

std::span<const storage::Migration> idempotency_migrations() {
  static constexpr std::string_view kColumns =
      "key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, status INTEGER NOT NULL, content_type TEXT NOT NULL, "
      "body TEXT NOT NULL, created_at BIGINT NOT NULL";
  static const storage::Migration kMigrations[] = {
      {.version = 1,
       .name = "idempotency keys",
       .sql = "CREATE TABLE idempotency_keys (" + std::string(kColumns) + ")"},
      // One B-tree per key instead of a rowid table and its key's index: a page fewer per
      // commit of every POST that carries a key.
      storage::without_rowid(2, "idempotency_keys", kColumns),
      // Keys are purged by age (service::Housekeeper). Keys are written in time order, so
      // each commit adds to the index's last leaf only.
      {.version = 3,
       .name = "idempotency keys by age",
       .sql = "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)"},
  };
  return kMigrations;
}

namespace {

// FNV-1a over method, path and body: tells a reused key from a retried request.
std::string fingerprint(const http::Request& req) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
  };
  mix(req.method_name());
  mix(req.path());
  mix(req.body());
  return std::to_string(h);
}

struct Stored {
  std::string fingerprint;
  http::Response response;
};

Result<std::optional<Stored>> lookup(storage::Tx& tx, std::string_view key) {
  auto rows = tx.query("SELECT fingerprint, status, content_type, body FROM idempotency_keys WHERE key = $1", key);
  if (!rows) return fail(std::move(rows.error()));
  if (rows->empty()) return std::optional<Stored>();
  const auto r = (*rows)[0];
  Stored s{r.get<std::string>(0), http::Response(r.get<int>(1), r.get<std::string>(2), r.get<std::string>(3))};
  s.response.headers.set("Idempotent-Replayed", "true");
  return std::optional<Stored>(std::move(s));
}

http::Response replay(const http::Request& req, Stored s, const std::string& fp) {
  if (s.fingerprint != fp) return http::problem(req, key_reused_error("request"));
  return std::move(s.response);
}

}  // namespace

Error key_reused_error(std::string_view what) {
  Error e(Errc::unprocessable, "this Idempotency-Key was used with a different " + std::string(what));
  e.type = "idempotency-key-reused";
  return e;
}

Result<std::optional<std::string_view>> idempotency_key(const http::Request& req) {
  std::optional<std::string_view> key;
  for (const auto& h : req.headers()) {
    if (!boost::beast::iequals(h.name, "Idempotency-Key")) continue;
    if (key) return fail(Errc::invalid_argument, "send one Idempotency-Key header, not several");
    key = h.value;
  }
  if (key && (key->empty() || key->size() > 255)) {
    return fail(Errc::invalid_argument, "Idempotency-Key must be 1 to 255 characters");
  }
  return key;
}

boost::asio::awaitable<http::Response> idempotent(storage::Database& db, const http::Request& req, Command command) {
  auto key_header = idempotency_key(req);
  if (!key_header) co_return http::problem(req, key_header.error());
  if (!*key_header) {
    auto r = co_await db.transaction([&](storage::Tx& tx) { return command(tx); }, storage::TxMode::write,
                                     storage::Rerun::allowed);
    co_return r ? std::move(*r) : http::problem(req, r.error());
  }
  const std::string key(**key_header);
  const std::string fp = fingerprint(req);
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  std::optional<Stored> earlier;
  auto r = co_await db.transaction([&](storage::Tx& tx) -> Result<http::Response> {
    earlier.reset();
    auto found = lookup(tx, key);
    if (!found) return fail(std::move(found.error()));
    if (*found) {
      earlier = std::move(**found);
      return http::Response();
    }
    auto res = command(tx);
    if (!res) return res;
    if (res->status >= 200 && res->status < 300) {
      auto ins = tx.exec(
          "INSERT INTO idempotency_keys (key, fingerprint, status, content_type, body, created_at) "
          "VALUES ($1, $2, $3, $4, $5, $6)",
          key, fp, res->status, res->content_type, res->body, now);
      if (!ins) return fail(std::move(ins.error()));
    }
    return res;
  }, storage::TxMode::write, storage::Rerun::allowed);
  // `earlier` counts only when the transaction succeeded: a run that found the key may have
  // been rolled back (its group ran again, or its commit failed) and seen an uncommitted row.
  if (r && earlier) co_return replay(req, std::move(*earlier), fp);
  if (r) co_return std::move(*r);
  if (storage::is_unique_violation(r.error())) {
    // A concurrent request with this key committed first: answer what it answered.
    auto again = co_await db.transaction([&](storage::Tx& tx) { return lookup(tx, key); }, storage::TxMode::read);
    if (again && *again) co_return replay(req, std::move(**again), fp);
  }
  co_return http::problem(req, r.error());
}

}  // namespace mercado::service
