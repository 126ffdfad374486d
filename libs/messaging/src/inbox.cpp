#include <mercado/messaging/inbox.hpp>

#include <mercado/observability/log.hpp>
#include <mercado/storage/errors.hpp>

namespace mercado::messaging {

namespace {

constexpr std::string_view kInboxColumns =
    "consumer TEXT NOT NULL, message_id TEXT NOT NULL, processed_at BIGINT NOT NULL, PRIMARY KEY (consumer, message_id)";
constexpr std::string_view kInboxIndex = "CREATE INDEX mercado_inbox_processed ON mercado_inbox (processed_at);";

const storage::Migration kInboxSchema[] = {
    {1, "inbox", "CREATE TABLE mercado_inbox (" + std::string(kInboxColumns) + ");" + std::string(kInboxIndex)},
    // One B-tree for (consumer, message_id) instead of a rowid table and its key's index.
    storage::without_rowid(2, "mercado_inbox", kInboxColumns, kInboxIndex),
};

std::int64_t now_ms(const core::Clock& c) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(c.wall_now().time_since_epoch()).count();
}

}  // namespace

std::span<const storage::Migration> Inbox::migrations() { return kInboxSchema; }

Inbox::Inbox(std::string consumer, const core::Clock& clock) : consumer_(std::move(consumer)), clock_(clock) {}

Result<bool> Inbox::record(storage::Tx& tx, std::string_view message_id) const {
  auto r = tx.exec(
      "INSERT INTO mercado_inbox (consumer, message_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
      consumer_, message_id, now_ms(clock_));
  if (!r) return std::unexpected(r.error());
  return *r == 1;
}

Result<std::int64_t> Inbox::purge(storage::Tx& tx, std::chrono::milliseconds age) const {
  return tx.exec("DELETE FROM mercado_inbox WHERE consumer = $1 AND processed_at < $2", consumer_,
                 now_ms(clock_) - age.count());
}

namespace {

struct Idempotent {
  std::shared_ptr<storage::Database> db;
  Inbox inbox;
  TxHandler apply;
  obs::Counter* duplicates;
};

// A free coroutine holding its state by value, so that it never depends on the lifetime of
// the std::function that started it.
boost::asio::awaitable<Outcome> handle_once(std::shared_ptr<const Idempotent> s, const Delivery& d) {
  bool duplicate = false;
  auto r = co_await s->db->transaction([&](storage::Tx& tx) -> Result<void> {
    auto fresh = s->inbox.record(tx, d.envelope.id);
    if (!fresh) return std::unexpected(fresh.error());
    if (!*fresh) {
      duplicate = true;
      return {};
    }
    return s->apply(tx, d);
  });
  if (r) {
    if (duplicate) s->duplicates->inc();
    co_return Outcome::ack();
  }
  std::string reason = r.error().message;
  if (!r.error().internal.empty()) reason += " (" + r.error().internal + ")";
  if (storage::is_transient(r.error())) co_return Outcome::retry(std::move(reason));
  co_return Outcome::dead_letter(std::move(reason));
}

}  // namespace

Handler idempotent(std::shared_ptr<storage::Database> db, Inbox inbox, TxHandler apply, obs::Registry& metrics) {
  auto* duplicates = &metrics.counter("mercado_inbox_duplicates_total",
                                      "Messages skipped because the inbox had already processed them", {"consumer"})
                          .with({inbox.consumer()});
  auto state = std::make_shared<const Idempotent>(Idempotent{std::move(db), std::move(inbox), std::move(apply), duplicates});
  return [state](const Delivery& d) { return handle_once(state, d); };
}

}  // namespace mercado::messaging
