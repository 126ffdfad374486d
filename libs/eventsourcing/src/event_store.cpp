#include <mercado/eventsourcing/event_store.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <deque>
#include <set>
#include <limits>
#include <mutex>

#include <mercado/core/uuid.hpp>
#include <mercado/observability/log.hpp>
#include <mercado/storage/errors.hpp>

namespace mercado::es {

namespace asio = boost::asio;
namespace json = boost::json;

// ---------------------------------------------------------------- events

NewEvent NewEvent::make(std::string type, const json::value& data, const json::value& metadata) {
  return NewEvent{core::new_uuid(), std::move(type), json::serialize(data),
                  metadata.is_null() ? std::string("{}") : json::serialize(metadata)};
}

json::value RecordedEvent::json() const {
  boost::system::error_code ec;
  auto v = json::parse(data, ec);
  if (ec) throw std::logic_error("event " + event_id + " holds invalid JSON");
  return v;
}

bool ExpectedVersion::admits(std::int64_t current) const noexcept {
  switch (kind) {
    case Kind::exact: return current == version;
    case Kind::no_stream: return current == 0;
    case Kind::any: return true;
    case Kind::stream_exists: return current > 0;
  }
  return false;
}

std::string ExpectedVersion::describe() const {
  switch (kind) {
    case Kind::exact: return "version " + std::to_string(version);
    case Kind::no_stream: return "no stream";
    case Kind::any: return "any version";
    case Kind::stream_exists: return "an existing stream";
  }
  return "?";
}

// ---------------------------------------------------------------- schema

std::span<const storage::Migration> EventStore::migrations() {
  static const storage::Migration kMigrations[] = {
      {.version = 1,
       .name = "events, snapshots",
       .postgres_sql = R"(
CREATE TABLE es_events (
  position BIGSERIAL PRIMARY KEY,
  stream_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  event_id TEXT NOT NULL UNIQUE,
  event_type TEXT NOT NULL,
  data TEXT NOT NULL,
  metadata TEXT NOT NULL,
  recorded_at BIGINT NOT NULL,
  UNIQUE (stream_id, version));
CREATE TABLE es_snapshots (
  stream_id TEXT PRIMARY KEY,
  version BIGINT NOT NULL,
  state TEXT NOT NULL,
  recorded_at BIGINT NOT NULL);)",
       .sqlite_sql = R"(
CREATE TABLE es_events (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  stream_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  event_id TEXT NOT NULL UNIQUE,
  event_type TEXT NOT NULL,
  data TEXT NOT NULL,
  metadata TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  UNIQUE (stream_id, version));
CREATE TABLE es_snapshots (
  stream_id TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  state TEXT NOT NULL,
  recorded_at INTEGER NOT NULL);)"},
  };
  return kMigrations;
}

// ---------------------------------------------------------------- append

namespace {

constexpr std::int64_t kAppendLockKey = 7'351'001;  // pg_advisory_xact_lock key of appends
constexpr std::size_t kMaxGroup = 256;
constexpr std::string_view kColumns =
    "position, stream_id, version, event_id, event_type, data, metadata, recorded_at";

AppendError storage_error(Error e) { return AppendError{std::move(e), std::nullopt}; }

RecordedEvent from_row(const storage::Row& r) {
  return RecordedEvent{r.get<std::int64_t>(0), r.get<std::string>(1), r.get<std::int64_t>(2), r.get<std::string>(3),
                       r.get<std::string>(4),  r.get<std::string>(5), r.get<std::string>(6), r.get<std::int64_t>(7)};
}

struct StoredEvent {
  std::string stream_id;
  std::int64_t version = 0;
  std::int64_t position = 0;
};

// The stored events among `events` (by event id), each once even if the batch names it twice
// (as `IN` would). One statement per 32 ids, each id a point lookup in the event_id index
// joined by UNION ALL: `event_id IN ($1, $2, ...)` would make SQLite build a temporary B-tree
// of the list for every append (an order's batch has three or more ids).
Result<std::vector<StoredEvent>> stored_events(storage::Tx& tx, std::span<const NewEvent> events) {
  constexpr std::size_t kPerStatement = 32;
  std::vector<StoredEvent> out;
  std::set<std::string, std::less<>> seen;
  for (std::size_t from = 0; from < events.size(); from += kPerStatement) {
    const std::size_t n = std::min(kPerStatement, events.size() - from);
    std::vector<storage::Param> ids;
    ids.reserve(n);
    std::string sql;
    for (std::size_t i = 0; i < n; ++i) {
      ids.emplace_back(events[from + i].event_id);
      if (i) sql += " UNION ALL ";
      sql += "SELECT stream_id, version, position, event_id FROM es_events WHERE event_id = $" + std::to_string(i + 1);
    }
    auto rows = tx.query_params(sql, ids);
    if (!rows) return fail(std::move(rows.error()));
    for (const auto& r : *rows) {
      if (!seen.insert(r.get<std::string>(3)).second) continue;
      out.push_back({r.get<std::string>(0), r.get<std::int64_t>(1), r.get<std::int64_t>(2)});
    }
  }
  return out;
}

}  // namespace

Result<void> EventStore::lock_appends_in(storage::Tx& tx) {
  if (tx.dialect() != storage::Dialect::postgres) return {};
  auto locked = tx.query("SELECT pg_advisory_xact_lock($1)", kAppendLockKey);
  if (!locked) return fail(std::move(locked.error()));
  return {};
}

AppendOutcome EventStore::append_in(storage::Tx& tx, std::string_view stream, std::span<const NewEvent> events,
                                    ExpectedVersion expected) {
  if (events.empty()) return std::unexpected(storage_error(Error(Errc::invalid_argument, "no events to append")));
  if (stream.empty()) return std::unexpected(storage_error(Error(Errc::invalid_argument, "empty stream id")));
  if (auto locked = lock_appends_in(tx); !locked) return std::unexpected(storage_error(std::move(locked.error())));
  // Idempotency: events already stored make the append a no-op (all) or a conflict (some).
  auto existing = stored_events(tx, events);
  if (!existing) return std::unexpected(storage_error(std::move(existing.error())));
  const std::size_t stored = existing->size();
  std::int64_t replay_version = 0, replay_position = 0;
  for (const auto& row : *existing) {
    if (row.stream_id != stream) {
      Error err(Errc::conflict, "an event id of this batch is already stored in another stream");
      err.type = "duplicate-event-id";
      return std::unexpected(storage_error(std::move(err)));
    }
    replay_version = std::max(replay_version, row.version);
    replay_position = std::max(replay_position, row.position);
  }
  if (stored == events.size()) return AppendResult{replay_version, replay_position, true};
  if (stored > 0) {
    Error err(Errc::conflict, "some of these events are already stored");
    err.type = "duplicate-event-id";
    return std::unexpected(storage_error(std::move(err)));
  }

  auto cur = tx.query_value<std::int64_t>("SELECT COALESCE(MAX(version), 0) FROM es_events WHERE stream_id = $1", stream);
  if (!cur) return std::unexpected(storage_error(std::move(cur.error())));
  const std::int64_t current = cur->value_or(0);
  if (!expected.admits(current)) {
    Error err(Errc::conflict, "stream " + std::string(stream) + ": expected " + expected.describe() +
                                  ", current version is " + std::to_string(current));
    err.type = "wrong-expected-version";
    return std::unexpected(AppendError{std::move(err), current});
  }

  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.wall_now().time_since_epoch()).count();
  // One multi-row INSERT ... RETURNING for the whole batch.
  std::vector<storage::Param> params;
  params.reserve(events.size() * 7);
  std::string sql = "INSERT INTO es_events (stream_id, version, event_id, event_type, data, metadata, recorded_at) VALUES ";
  std::int64_t version = current;
  std::vector<std::int64_t> versions;
  versions.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    versions.push_back(++version);
    const auto& e = events[i];
    const std::size_t b = i * 7;
    sql += i == 0 ? "(" : ", (";
    for (std::size_t k = 1; k <= 7; ++k) sql += "$" + std::to_string(b + k) + (k < 7 ? ", " : ")");
    params.emplace_back(stream);
    params.emplace_back(versions.back());
    params.emplace_back(e.event_id);
    params.emplace_back(e.event_type);
    params.emplace_back(e.data);
    params.emplace_back(e.metadata);
    params.emplace_back(now_ms);
  }
  sql += " RETURNING position";
  auto inserted = tx.query_params(sql, params);
  if (!inserted) {
    if (storage::is_unique_violation(inserted.error())) {
      // A concurrent writer outside this store's lock took the version.
      Error err(Errc::conflict, "stream " + std::string(stream) + " changed concurrently");
      err.type = "wrong-expected-version";
      return std::unexpected(AppendError{std::move(err), current + 1});
    }
    return std::unexpected(storage_error(std::move(inserted.error())));
  }
  // RETURNING yields one row per inserted row; positions increase with the insert order.
  std::vector<std::int64_t> positions;
  for (const auto& row : *inserted) positions.push_back(row.get<std::int64_t>(0));
  std::sort(positions.begin(), positions.end());
  std::vector<RecordedEvent> recorded;
  recorded.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    recorded.push_back(RecordedEvent{positions[i], std::string(stream), versions[i], e.event_id, e.event_type, e.data,
                                     e.metadata, now_ms});
  }
  if (hook_) {
    if (auto h = hook_(tx, recorded); !h) return std::unexpected(storage_error(std::move(h.error())));
  }
  return AppendResult{version, recorded.back().position, false};
}

struct EventStore::GroupRequest {
  std::string stream;
  std::vector<NewEvent> events;
  ExpectedVersion expected;
  asio::any_completion_handler<void(AppendOutcome)> handler;
  asio::any_io_executor work;  // keeps the caller's io_context alive until completion
};

struct EventStore::Group {
  std::mutex mutex;
  std::deque<GroupRequest> queue;
  bool leader = false;
};

void EventStore::append_group(std::vector<GroupRequest>& batch, std::vector<AppendOutcome>& results) {
  // One transaction for the whole group (one commit, one fsync). A concurrency error only
  // rejects its own append (it wrote nothing); any other failure aborts the transaction.
  auto group = db_->transaction_blocking([&](storage::Tx& tx) -> Result<bool> {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      results[i] = append_in(tx, batch[i].stream, batch[i].events, batch[i].expected);
      if (!results[i] && !results[i].error().is_concurrency()) return fail(results[i].error().error);
    }
    return true;
  });
  if (group) return;
  if (batch.size() == 1) {
    if (results[0]) results[0] = std::unexpected(storage_error(group.error()));
    return;
  }
  // One append failed the shared transaction: give each its own, so that only it fails.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    AppendOutcome one = std::unexpected(storage_error(Error(Errc::internal, "not run")));
    auto r = db_->transaction_blocking([&](storage::Tx& tx) -> Result<bool> {
      one = append_in(tx, batch[i].stream, batch[i].events, batch[i].expected);
      if (!one && !one.error().is_concurrency()) return fail(one.error().error);
      return true;
    });
    if (!r && one) one = std::unexpected(storage_error(std::move(r.error())));  // the commit failed
    results[i] = std::move(one);
  }
}

EventStore::EventStore(std::shared_ptr<storage::Database> db, AppendHook hook, const core::Clock& clock)
    : db_(std::move(db)), hook_(std::move(hook)), clock_(clock), group_(std::make_unique<Group>()) {}

EventStore::~EventStore() = default;

asio::awaitable<AppendOutcome> EventStore::append(std::string stream, std::vector<NewEvent> events,
                                                  ExpectedVersion expected) {
  if (db_->groups_writes()) {
    // The database groups every write of the process (the service's own transactions
    // too) into shared commits: the append joins those, so one commit covers appends and
    // everything else written meanwhile. It may run more than once (storage::Rerun): the
    // hook, like the append, acts through the transaction and its commit hooks only.
    std::optional<AppendError> refused;
    auto r = co_await db_->transaction([&](storage::Tx& tx) -> Result<AppendOutcome> {
      refused.reset();
      auto out = append_in(tx, stream, events, expected);
      // A refused append wrote nothing. If a statement failed on the way (PostgreSQL: a
      // unique violation), the savepoint is undone and `refused` still says why.
      if (!out) refused = out.error();
      if (!out && !out.error().is_concurrency()) return fail(out.error().error);  // undoes this savepoint only
      if (out && !out->replayed) tx.on_commit([this] { appended_.notify_all(); });
      return out;
    }, storage::TxMode::write, storage::Rerun::allowed);
    if (r) co_return std::move(*r);
    if (refused) co_return std::unexpected(std::move(*refused));
    co_return std::unexpected(storage_error(std::move(r.error())));  // the shared commit failed
  }
  auto drain = [this] {
    for (;;) {
      std::vector<GroupRequest> batch;
      {
        std::lock_guard lock(group_->mutex);
        if (group_->queue.empty()) {
          group_->leader = false;
          return;
        }
        while (!group_->queue.empty() && batch.size() < kMaxGroup) {
          batch.push_back(std::move(group_->queue.front()));
          group_->queue.pop_front();
        }
      }
      std::vector<AppendOutcome> results(batch.size(), std::unexpected(storage_error(Error(Errc::internal, "not run"))));
      try {
        append_group(batch, results);
      } catch (const std::exception& e) {
        // A broken invariant (e.g. schema and code disagree): fail these appends loudly
        // rather than leaving their callers waiting forever.
        log::error("event store append failed", {{"error", e.what()}});
        for (auto& r : results) r = std::unexpected(storage_error(Error(Errc::internal, "event store failure")));
      }
      bool any = false;
      for (auto& r : results) any = any || (r && !r->replayed);
      if (any) appended_.notify_all();
      // Decide before waking the callers: once the last caller is woken it may destroy the
      // store, so `this` must not be touched after that.
      bool more;
      {
        std::lock_guard lock(group_->mutex);
        more = !group_->queue.empty();
        if (!more) group_->leader = false;
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        auto ex = batch[i].work;
        asio::dispatch(ex, [h = std::move(batch[i].handler), r = std::move(results[i])]() mutable {
          std::move(h)(std::move(r));
        });
      }
      if (!more) return;
    }
  };

  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(AppendOutcome)>(  // coro-capture-ok: trivially destructible captures
      [this, drain, &stream, &events, expected](auto handler) {
        auto work = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
        bool lead;
        {
          std::lock_guard lock(group_->mutex);
          group_->queue.push_back(GroupRequest{std::move(stream), std::move(events), expected, std::move(handler),
                                                 asio::any_io_executor(std::move(work))});
          lead = !group_->leader;
          group_->leader = true;
        }
        if (lead) db_->pool().post(drain);
      },
      asio::use_awaitable);
}

// ---------------------------------------------------------------- reads

asio::awaitable<Result<std::vector<RecordedEvent>>> EventStore::read_stream(std::string stream,
                                                                             std::int64_t from_version,
                                                                             std::size_t max) {
  const std::int64_t limit = max == 0 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(max);
  co_return co_await db_->transaction(
      [&](storage::Tx& tx) { return read_stream_in(tx, stream, from_version, limit); }, storage::TxMode::read);
}

Result<std::vector<RecordedEvent>> EventStore::read_stream_in(storage::Tx& tx, std::string_view stream,
                                                              std::int64_t from_version) {
  return read_stream_in(tx, stream, from_version, std::numeric_limits<std::int64_t>::max());
}

Result<std::vector<RecordedEvent>> EventStore::read_stream_in(storage::Tx& tx, std::string_view stream,
                                                              std::int64_t from_version, std::int64_t limit) {
  auto rows = tx.query("SELECT " + std::string(kColumns) +
                           " FROM es_events WHERE stream_id = $1 AND version > $2 ORDER BY version LIMIT $3",
                       stream, from_version, limit);
  if (!rows) return fail(std::move(rows.error()));
  std::vector<RecordedEvent> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(from_row(r));
  return out;
}

asio::awaitable<Result<std::optional<RecordedEvent>>> EventStore::read_event(std::string event_id) {
  co_return co_await db_->transaction(
      [&](storage::Tx& tx) -> Result<std::optional<RecordedEvent>> {
        auto rows = tx.query("SELECT " + std::string(kColumns) + " FROM es_events WHERE event_id = $1", event_id);
        if (!rows) return fail(std::move(rows.error()));
        if (rows->empty()) return std::optional<RecordedEvent>();
        return std::optional<RecordedEvent>(from_row((*rows)[0]));
      },
      storage::TxMode::read);
}

Result<std::vector<RecordedEvent>> EventStore::read_all_in(storage::Tx& tx, std::int64_t after_position,
                                                           std::size_t max) {
  auto rows = tx.query("SELECT " + std::string(kColumns) + " FROM es_events WHERE position > $1 ORDER BY position LIMIT $2",
                       after_position, static_cast<std::int64_t>(max == 0 ? 1000 : max));
  if (!rows) return fail(std::move(rows.error()));
  std::vector<RecordedEvent> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(from_row(r));
  return out;
}

asio::awaitable<Result<std::vector<RecordedEvent>>> EventStore::read_all(std::int64_t after_position, std::size_t max) {
  co_return co_await db_->transaction([&](storage::Tx& tx) { return read_all_in(tx, after_position, max); },
                                      storage::TxMode::read);
}

asio::awaitable<Result<std::int64_t>> EventStore::stream_version(std::string stream) {
  co_return co_await db_->transaction(
      [&](storage::Tx& tx) -> Result<std::int64_t> {
        auto v = tx.query_value<std::int64_t>("SELECT COALESCE(MAX(version), 0) FROM es_events WHERE stream_id = $1", stream);
        if (!v) return fail(std::move(v.error()));
        return v->value_or(0);
      },
      storage::TxMode::read);
}

asio::awaitable<Result<void>> EventStore::save_snapshot(std::string stream, Snapshot snapshot) {
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.wall_now().time_since_epoch()).count();
  co_return co_await db_->transaction([&](storage::Tx& tx) -> Result<void> {
    // Keep the newest snapshot only; an older one never replaces a newer one.
    auto r = tx.exec(
        "INSERT INTO es_snapshots (stream_id, version, state, recorded_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, state = excluded.state, "
        "recorded_at = excluded.recorded_at WHERE es_snapshots.version < excluded.version",
        stream, snapshot.version, snapshot.state, now_ms);
    if (!r) return fail(std::move(r.error()));
    return {};
  });
}

asio::awaitable<Result<std::optional<Snapshot>>> EventStore::load_snapshot(std::string stream) {
  co_return co_await db_->transaction(
      [&](storage::Tx& tx) -> Result<std::optional<Snapshot>> {
        auto rows = tx.query("SELECT version, state FROM es_snapshots WHERE stream_id = $1", stream);
        if (!rows) return fail(std::move(rows.error()));
        if (rows->empty()) return std::optional<Snapshot>();
        return std::optional<Snapshot>(Snapshot{(*rows)[0].get<std::int64_t>(0), (*rows)[0].get<std::string>(1)});
      },
      storage::TxMode::read);
}

}  // namespace mercado::es
