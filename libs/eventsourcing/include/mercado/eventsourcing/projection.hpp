#pragma once
// CQRS read models fed from the event store.
//
// A Projection applies events to its read-model tables. The ProjectionRunner feeds it every
// event in global order, in batches; each batch -- the read-model changes *and* the new
// checkpoint -- commits in one transaction, so a crash at any point never applies an
// event twice and never skips one. It catches up from the stored checkpoint, then follows
// live appends (woken by the EventStore's notifier, with a poll for appends made by other
// processes), and can rebuild the read model from zero.
//
// Thread-safety: run(), stop() and rebuild() are called from one coroutine at a time;
// catch_up() and catch_up_in() may overlap (each batch takes the store's append lock, so
// they apply each event once between them).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include <mercado/eventsourcing/event_store.hpp>
#include <mercado/storage/migrations.hpp>

namespace mercado::es {

class Projection {
 public:
  virtual ~Projection() = default;
  // Stable name: the checkpoint's key.
  virtual std::string_view name() const = 0;
  // Applies one event inside `tx`. Events the projection does not care about: return {}.
  virtual Result<void> apply(storage::Tx& tx, const RecordedEvent& event) = 0;
  // Applies events in global order: a batch of a catch-up, or one append's events. The
  // default calls apply() for each; a projection may override it to fold them into fewer
  // writes (the same read model as apply() one by one).
  virtual Result<void> apply_all(storage::Tx& tx, std::span<const RecordedEvent> events);
  // Empties the read model inside `tx` (for rebuild()).
  virtual Result<void> reset(storage::Tx& tx) = 0;
};

struct ProjectionOptions {
  std::size_t batch = 256;
  std::chrono::milliseconds poll{500};  // how often to look for other processes' appends
  // Test hook: runs inside the transaction after the batch was applied and before the
  // checkpoint is written; throwing simulates a crash at that point.
  std::function<void(std::int64_t last_position)> before_checkpoint;
};

class ProjectionRunner {
 public:
  // Schema of the checkpoints table (scope "mercado_projections").
  static std::span<const storage::Migration> migrations();

  ProjectionRunner(EventStore& store, Projection& projection, ProjectionOptions options = {});

  // Applies every event stored now; returns the checkpoint reached.
  boost::asio::awaitable<Result<std::int64_t>> catch_up();
  // Inline projection: the same catch-up inside the caller's transaction -- call it from the
  // EventStore's append hook, and the read model and its checkpoint commit with the events
  // (read your writes without waiting; no transaction of its own). Events appended before,
  // without the hook, are applied first, so none is skipped. When every append of the store
  // goes through the hook, run() is not needed; rebuild() and wait_for() still work. Call it
  // only from the append hook: it relies on the append lock the appending transaction holds.
  Result<void> catch_up_in(storage::Tx& tx);
  // The same, given the events the hook was called with: when the stored checkpoint is just
  // before them they are applied as given, without reading them back (the common case: every
  // append goes through the hook); otherwise as catch_up_in(tx).
  Result<void> catch_up_in(storage::Tx& tx, std::span<const RecordedEvent> appended);
  // catch_up(), then follow live until stop(). Errors are logged and retried.
  boost::asio::awaitable<void> run();
  void stop() noexcept;
  // Empties the read model and the checkpoint in one transaction, then catches up.
  boost::asio::awaitable<Result<std::int64_t>> rebuild();

  std::int64_t checkpoint() const noexcept { return checkpoint_.load(); }
  // Waits (polling the notifier) until the checkpoint reaches `position` or the timeout.
  boost::asio::awaitable<bool> wait_for(std::int64_t position, std::chrono::milliseconds timeout);

 private:
  Result<std::size_t> apply_batch(storage::Tx& tx, std::int64_t& checkpoint, bool lock);
  Result<std::int64_t> stored_checkpoint(storage::Tx& tx) const;
  Result<void> apply_and_checkpoint(storage::Tx& tx, std::span<const RecordedEvent> events);
  void advance(std::int64_t reached) noexcept;

  EventStore& store_;
  Projection& projection_;
  ProjectionOptions options_;
  std::atomic<std::int64_t> checkpoint_{0};
  std::atomic<bool> stopped_{false};
  core::Notifier progressed_;
};

}  // namespace mercado::es
