#include <mercado/messaging/outbox.hpp>

#include "outbox_handoff.hpp"

namespace mercado::messaging {

namespace {

const storage::Migration kOutboxSchema[] = {
    {1, "outbox",
     /*sql=*/"",
     /*postgres_sql=*/
     "CREATE TABLE mercado_outbox (seq BIGSERIAL PRIMARY KEY, message_id TEXT NOT NULL UNIQUE,"
     " event_type TEXT NOT NULL, traceparent TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,"
     " dispatched_at BIGINT);"
     "CREATE INDEX mercado_outbox_pending ON mercado_outbox (seq) WHERE dispatched_at IS NULL;"
     "CREATE INDEX mercado_outbox_dispatched ON mercado_outbox (dispatched_at) WHERE dispatched_at IS NOT NULL;"
     "CREATE TABLE mercado_outbox_lease (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at BIGINT NOT NULL);"
     "INSERT INTO mercado_outbox_lease (name, owner, expires_at) VALUES ('relay', '', 0);",
     /*sqlite_sql=*/
     "CREATE TABLE mercado_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE,"
     " event_type TEXT NOT NULL, traceparent TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,"
     " dispatched_at INTEGER);"
     "CREATE INDEX mercado_outbox_pending ON mercado_outbox (seq) WHERE dispatched_at IS NULL;"
     "CREATE INDEX mercado_outbox_dispatched ON mercado_outbox (dispatched_at) WHERE dispatched_at IS NOT NULL;"
     "CREATE TABLE mercado_outbox_lease (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL);"
     "INSERT INTO mercado_outbox_lease (name, owner, expires_at) VALUES ('relay', '', 0);"},
    // The purge finds old rows by `seq` (they were written in that order), so this index
    // only cost a page in every mark's commit.
    {2, "outbox without the dispatched index", "DROP INDEX mercado_outbox_dispatched"},
    // SQLite: the relay marks what it dispatched with one number, every row up to
    // `dispatched_through` (its rows are published in seq order and commit in seq order),
    // instead of writing each row's dispatched_at and removing it from the pending index --
    // pages rewritten in every mark's commit. PostgreSQL commits rows out of seq order, so it
    // keeps the per-row marks (the column is there, unused).
    {3, "outbox dispatched through a watermark",
     /*sql=*/"",
     /*postgres_sql=*/
     "ALTER TABLE mercado_outbox_lease ADD COLUMN dispatched_through BIGINT NOT NULL DEFAULT 0",
     /*sqlite_sql=*/
     "ALTER TABLE mercado_outbox_lease ADD COLUMN dispatched_through INTEGER NOT NULL DEFAULT 0;"
     "UPDATE mercado_outbox_lease SET dispatched_through = COALESCE("
     "(SELECT MIN(seq) - 1 FROM mercado_outbox WHERE dispatched_at IS NULL),"
     " (SELECT MAX(seq) FROM mercado_outbox), 0);"
     "DROP INDEX mercado_outbox_pending"},
};

constexpr std::string_view kInsert =
    "INSERT INTO mercado_outbox (message_id, event_type, traceparent, body, created_at) VALUES ($1, $2, $3, $4, $5)";
// The same, with the seq the relay needs to trust a handed-over row (relay.cpp, take_handed).
const std::string kInsertReturningSeq = std::string(kInsert) + " RETURNING seq";

}  // namespace

std::span<const storage::Migration> Outbox::migrations() { return kOutboxSchema; }

Outbox::Outbox(std::string source, const core::Clock& clock)
    : source_(std::move(source)),
      clock_(clock),
      committed_(std::make_shared<core::Notifier>()),
      handoff_(std::make_shared<detail::OutboxHandoff>()) {}

Result<Envelope> Outbox::add(storage::Tx& tx, std::string event_type, boost::json::value data, Headers headers) const {
  Envelope e = make_envelope(std::move(event_type), std::move(data), std::move(headers), source_, clock_);
  if (auto r = add(tx, e); !r) return std::unexpected(r.error());
  return e;
}

Result<void> Outbox::add(storage::Tx& tx, const Envelope& envelope) const {
  auto created = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.wall_now().time_since_epoch()).count();
  std::string body = encode_envelope(envelope);
  if (!handoff_->enabled() || tx.dialect() != storage::Dialect::sqlite) {
    auto r = tx.exec(kInsert, envelope.id, envelope.event_type, envelope.traceparent, body, created);
    if (!r) return std::unexpected(r.error());
    // A row a relay taking handed-over rows never saw (inserted before the relay was created,
    // or through a transaction on another database): the relay reads the table next. (The
    // first is already excluded by the lease: a new relay's first round writes the lease,
    // after this transaction's commit, and then reads the table. Cheap insurance.)
    tx.on_commit([n = committed_, h = handoff_] {
      if (h->enabled()) h->lose();
      n->notify_all();
    });
    return {};
  }
  // The relay's copy of the row, with its seq.
  auto seq =
      tx.query_value<std::int64_t>(kInsertReturningSeq, envelope.id, envelope.event_type, envelope.traceparent, body, created);
  if (!seq) return std::unexpected(seq.error());
  if (!*seq) return fail(Errc::internal, "outbox: the insert returned no seq");
  tx.on_commit([n = committed_, h = handoff_,
                row = detail::HandedRow{**seq, created,
                                        Message{envelope.id, envelope.event_type, envelope.traceparent,
                                                std::move(body)}}]() mutable {
    h->push(std::move(row));
    n->notify_all();
  });
  return {};
}

}  // namespace mercado::messaging
