#pragma once
// Idempotency-Key for commands (IETF draft "The Idempotency-Key HTTP Header Field"): a
// POST that carries a key has its effect once.
//
//   co_return co_await service::idempotent(db, req, [&](storage::Tx& tx) -> Result<http::Response> {
//     ... effects in tx ...
//     return http::json_response(201, view);
//   });
//
// - No key: the command runs in a transaction; its error becomes a problem response.
// - A new key: the command runs and its *successful* response is stored with the key in the
//   same transaction as its effects (a failed command stores nothing, so it may be retried).
// - A known key: the stored response is returned and nothing runs. Concurrent first uses of
//   one key: one commits, the other's transaction rolls back on the key's uniqueness and it
//   returns the stored response -- the effect happens once.
// - The same key with another request (method, path or body differ): 422.
// - An empty, over-long or repeated key header: 400, nothing runs (idempotency_key()).
// - The command may run more than once (storage::Rerun::allowed: its transaction shares a
//   group commit without a savepoint of its own); only its last run counts. So it acts
//   through the Tx, its response and on_commit hooks, and whatever else it writes it writes
//   on every run (or resets first).
// Each key costs one row in `idempotency_keys`, kept for --dedupe-retention-hours (7 days by
// default) and then deleted by service::Housekeeper: a retry after that runs again (a saga
// that resumes runs its steps again with their keys; docs/saga.md).

#include <functional>
#include <optional>
#include <span>

#include <boost/asio/awaitable.hpp>

#include <mercado/http/request.hpp>
#include <mercado/http/response.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

namespace mercado::service {

// Schema (scope "mercado_idempotency").
std::span<const storage::Migration> idempotency_migrations();

using Command = std::function<Result<http::Response>(storage::Tx&)>;

// The request's Idempotency-Key: nullopt when absent; invalid_argument (400) when it is
// empty, longer than 255 characters, or sent more than once (two keys name no one request).
Result<std::optional<std::string_view>> idempotency_key(const http::Request& req);

// The 422 "idempotency-key-reused" error: "this Idempotency-Key was used with a different
// <what>". For commands that recognise retries themselves (an event id derived from the key).
Error key_reused_error(std::string_view what);

boost::asio::awaitable<http::Response> idempotent(storage::Database& db, const http::Request& req, Command command);

}  // namespace mercado::service
