#pragma once
// An event store on libs/storage (SQLite or PostgreSQL), with EventStoreDB's append rules:
//
//   auto r = co_await store.append("order-42", events, ExpectedVersion::exact(3));
//   if (!r && r.error().is_concurrency()) { /* someone else wrote: reload, retry */ }
//
// - append checks the expected version against the stream's current version and writes
//   the events with the next versions, all in one transaction. A mismatch is an
//   AppendError with code conflict, type "wrong-expected-version" and the current version.
// - Appending events whose ids are already stored (a retried request) is a no-op that
//   reports the versions they were written at; a batch that is only partly stored is a
//   conflict ("duplicate-event-id").
// - The append hook runs inside the same transaction with the recorded events: services
//   put them into their outbox there, so events and the state they describe commit
//   together.
// - Global positions follow commit order (SQLite serializes writers; on PostgreSQL
//   appends take a transaction-level advisory lock), so a reader of read_all() never sees
//   a position after a gap that later fills.
// - Concurrent appends are grouped: single appends waiting for the write lock are
//   committed together in one transaction (each in its own savepoint, so one append's
//   failure does not affect the others) -- group commit, see docs/eventsourcing.md.
//
// Thread-safety: all methods may be called from any thread/coroutine.

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/core/error.hpp>
#include <mercado/core/notifier.hpp>
#include <mercado/eventsourcing/event.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

namespace mercado::es {

struct AppendResult {
  std::int64_t version = 0;        // the stream's version after the append
  std::int64_t last_position = 0;  // global position of the last event
  bool replayed = false;           // the events were already stored (idempotent no-op)
};

struct AppendError {
  Error error;
  std::optional<std::int64_t> current_version;  // set for wrong-expected-version
  bool is_concurrency() const noexcept { return current_version.has_value(); }
};
// The chapter's ConcurrencyError: an AppendError with is_concurrency().
using AppendOutcome = std::expected<AppendResult, AppendError>;

struct Snapshot {
  std::int64_t version = 0;
  std::string state;  // JSON
};

class EventStore {
 public:
  // Runs inside every append's transaction, with the events just stored (an outbox, a
  // projection, a saga's start). An append through a group-committing database may run more
  // than once (storage::Rerun::allowed), so the hook acts through the Tx and its on_commit
  // hooks only.
  using AppendHook = std::function<Result<void>(storage::Tx&, std::span<const RecordedEvent>)>;

  // The schema (scope "mercado_eventstore"); apply with storage::migrate at start-up.
  static std::span<const storage::Migration> migrations();

  explicit EventStore(std::shared_ptr<storage::Database> db, AppendHook hook = {},
                      const core::Clock& clock = core::SystemClock::instance());
  ~EventStore();

  boost::asio::awaitable<AppendOutcome> append(std::string stream, std::vector<NewEvent> events,
                                               ExpectedVersion expected);
  // The chapter's name: save_events(aggregate_id, events, expected_version).
  boost::asio::awaitable<AppendOutcome> save_events(std::string aggregate_id, std::vector<NewEvent> events,
                                                    std::int64_t expected_version) {
    return append(std::move(aggregate_id), std::move(events), ExpectedVersion::exact(expected_version));
  }
  // Appends inside the caller's transaction (with its own other writes). Does not group.
  AppendOutcome append_in(storage::Tx& tx, std::string_view stream, std::span<const NewEvent> events,
                          ExpectedVersion expected);

  // Events of a stream with version > from_version, in order (max 0 = all).
  boost::asio::awaitable<Result<std::vector<RecordedEvent>>> read_stream(std::string stream,
                                                                         std::int64_t from_version = 0,
                                                                         std::size_t max = 0);
  static Result<std::vector<RecordedEvent>> read_stream_in(storage::Tx& tx, std::string_view stream,
                                                            std::int64_t from_version = 0);
  // The event stored with this id, if any (ids are unique across streams: a command that
  // sets deterministic ids finds what an earlier attempt stored).
  boost::asio::awaitable<Result<std::optional<RecordedEvent>>> read_event(std::string event_id);
  // Events of every stream with position > after_position, in position order.
  boost::asio::awaitable<Result<std::vector<RecordedEvent>>> read_all(std::int64_t after_position, std::size_t max);
  static Result<std::vector<RecordedEvent>> read_all_in(storage::Tx& tx, std::int64_t after_position, std::size_t max);
  boost::asio::awaitable<Result<std::int64_t>> stream_version(std::string stream);
  // Takes the lock appends take (PostgreSQL: a transaction-level advisory lock; SQLite: the
  // write transaction already excludes other writers), so that nothing is appended until
  // `tx` ends. Projections take it to read their checkpoint and apply without a concurrent
  // append or catch-up slipping in between.
  static Result<void> lock_appends_in(storage::Tx& tx);

  boost::asio::awaitable<Result<void>> save_snapshot(std::string stream, Snapshot snapshot);
  boost::asio::awaitable<Result<std::optional<Snapshot>>> load_snapshot(std::string stream);

  // Signalled after every append committed through this EventStore (projections follow it).
  core::Notifier& appended() noexcept { return appended_; }
  storage::Database& database() noexcept { return *db_; }

 private:
  struct Group;
  struct GroupRequest;
  void append_group(std::vector<GroupRequest>& batch, std::vector<AppendOutcome>& results);
  static Result<std::vector<RecordedEvent>> read_stream_in(storage::Tx& tx, std::string_view stream,
                                                            std::int64_t from_version, std::int64_t limit);
  std::shared_ptr<storage::Database> db_;
  AppendHook hook_;
  const core::Clock& clock_;
  core::Notifier appended_;
  std::unique_ptr<Group> group_;
};

}  // namespace mercado::es
