#include "app/reservation_committer.hpp"

#include <atomic>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include <mercado/core/notifier.hpp>
#include <mercado/observability/log.hpp>

namespace order::app {

namespace asio = boost::asio;
namespace bj = boost::json;
namespace http = mercado::http;
namespace log = mercado::log;
namespace storage = mercado::storage;
using mercado::Errc;
using mercado::fail;
using mercado::Result;

struct ReservationCommitter::State {
  std::shared_ptr<storage::Database> db;
  mercado::resilience::ServiceClient& inventory;
  mercado::auth::ServiceToken& token;
  CommitterOptions options;
  mercado::obs::CounterFamily* commits = nullptr;
  mercado::obs::Counter* failed_rounds = nullptr;
  std::shared_ptr<mercado::core::Notifier> recorded = std::make_shared<mercado::core::Notifier>();
  std::atomic<bool> started{false};
  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{false};
  mercado::core::Notifier stop_requested;
  mercado::core::Notifier finished_notifier;

  State(std::shared_ptr<storage::Database> d, mercado::resilience::ServiceClient& i, mercado::auth::ServiceToken& t,
        CommitterOptions o)
      : db(std::move(d)), inventory(i), token(t), options(o) {}

  asio::awaitable<Result<std::size_t>> round() {
    // In key order (the table's own order: no sort, however many are waiting while inventory
    // is away); ids carry UUIDv7 order ids, so this is roughly the order they were recorded.
    auto ids = co_await db->transaction([&](storage::Tx& tx) -> Result<std::vector<std::string>> {
      auto rows = tx.query("SELECT reservation_id FROM reservation_commits ORDER BY reservation_id LIMIT $1",
                           static_cast<std::int64_t>(options.batch));
      if (!rows) return std::unexpected(rows.error());
      std::vector<std::string> out;
      for (const auto& r : *rows) out.push_back(r.get<std::string>(0));
      return out;
    }, storage::TxMode::read);
    if (!ids) co_return std::unexpected(ids.error());
    if (ids->empty()) co_return std::size_t{0};

    bj::array list;
    for (const auto& id : *ids) list.emplace_back(id);
    http::ClientRequest req;
    req.method = http::Method::post;
    req.url = "/reservations/commit";
    req.body = bj::serialize(bj::object{{"ids", std::move(list)}});
    req.content_type = "application/json";
    req.headers.add("Authorization", token.authorization());
    auto r = co_await inventory.send(std::move(req), {});
    if (!r) co_return fail(Errc::unavailable, "inventory did not answer: " + r.error().message);
    if (r->status != 200) co_return fail(Errc::unavailable, "inventory answered HTTP " + std::to_string(r->status));
    boost::system::error_code ec;
    auto answer = bj::parse(r->body, ec);
    const auto* o = ec ? nullptr : answer.if_object();
    const auto* committed = o ? o->if_contains("committed") : nullptr;
    const auto* refused = o ? o->if_contains("failed") : nullptr;
    if (committed == nullptr || !committed->is_array() || refused == nullptr || !refused->is_array()) {
      co_return fail(Errc::unavailable, "inventory's answer has no committed/failed lists: " + r->body.substr(0, 200));
    }
    std::vector<std::string> done;
    for (const auto& v : committed->as_array()) {
      if (v.is_string()) done.emplace_back(v.as_string());
    }
    commits->with({"committed"}).inc(done.size());
    for (const auto& v : refused->as_array()) {
      const auto* f = v.if_object();
      const auto* id = f ? f->if_contains("id") : nullptr;
      if (id == nullptr || !id->is_string()) continue;
      const auto* why = f->if_contains("reason");
      log::error("inventory refused to commit the reservation of a confirmed order",
                 {{"reservation_id", std::string(id->as_string())},
                  {"reason", why && why->is_string() ? std::string(why->as_string()) : std::string()}});
      commits->with({"refused"}).inc();
      done.emplace_back(id->as_string());
    }
    auto forgot = co_await db->transaction([&](storage::Tx& tx) -> Result<void> {
      for (const auto& id : done) {
        if (auto d = tx.exec("DELETE FROM reservation_commits WHERE reservation_id = $1", id); !d) {
          return std::unexpected(d.error());
        }
      }
      return {};
    }, storage::TxMode::write, storage::Rerun::allowed);
    if (!forgot) co_return std::unexpected(forgot.error());
    co_return ids->size();
  }

  asio::awaitable<void> loop() {
    auto backoff = options.retry_min;
    while (!stopping) {
      const auto seen = recorded->generation();
      auto r = co_await round();
      if (!r) {
        failed_rounds->inc();
        log::warn("reservation commits: round failed, will retry",
                  {{"error", r.error().message}, {"backoff_ms", backoff.count()}});
        const auto stop_seen = stop_requested.generation();
        if (!stopping) co_await stop_requested.wait(stop_seen, backoff);
        backoff = std::min(backoff * 2, options.retry_max);
        continue;
      }
      backoff = options.retry_min;
      if (*r == options.batch) continue;  // more may be recorded
      co_await recorded->wait(seen, options.poll_interval);
    }
    finished = true;
    finished_notifier.notify_all();
  }
};

storage::Migration ReservationCommitter::migration(std::int64_t version) {
  storage::Migration m;
  m.version = version;
  m.name = "reservation commits";
  m.postgres_sql = "CREATE TABLE reservation_commits (reservation_id TEXT PRIMARY KEY, created_at BIGINT NOT NULL)";
  m.sqlite_sql = m.postgres_sql + " WITHOUT ROWID";
  return m;
}

ReservationCommitter::ReservationCommitter(std::shared_ptr<storage::Database> db,
                                           mercado::resilience::ServiceClient& inventory,
                                           mercado::auth::ServiceToken& token, mercado::obs::Registry& metrics,
                                           CommitterOptions options)
    : state_(std::make_shared<State>(std::move(db), inventory, token, options)) {
  if (state_->options.batch == 0) state_->options.batch = 1;
  state_->commits = &metrics.counter("reservation_commits_total",
                                     "Reservations of confirmed orders sent to inventory, by outcome", {"outcome"});
  state_->failed_rounds = &metrics.counter("reservation_commit_failures_total",
                                           "Rounds of reservation commits that failed (retried)").get();
}

ReservationCommitter::~ReservationCommitter() = default;

Result<void> ReservationCommitter::enqueue_in(storage::Tx& tx, std::string_view reservation_id) const {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  auto r = tx.exec("INSERT INTO reservation_commits (reservation_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                   reservation_id, now);
  if (!r) return std::unexpected(r.error());
  tx.on_commit([n = state_->recorded] { n->notify_all(); });
  return {};
}

void ReservationCommitter::start(asio::any_io_executor executor) {
  if (state_->started.exchange(true)) return;
  asio::co_spawn(std::move(executor), [s = state_]() -> asio::awaitable<void> { co_await s->loop(); }, asio::detached);
}

asio::awaitable<void> ReservationCommitter::stop() {
  auto s = state_;
  s->stopping = true;
  s->stop_requested.notify_all();
  s->recorded->notify_all();
  if (!s->started) co_return;
  while (!s->finished) {
    const auto seen = s->finished_notifier.generation();
    if (s->finished) break;
    co_await s->finished_notifier.wait(seen, std::chrono::hours(1));
  }
}

asio::awaitable<Result<std::size_t>> ReservationCommitter::run_once() {
  auto s = state_;
  co_return co_await s->round();
}

}  // namespace order::app
