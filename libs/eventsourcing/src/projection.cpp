#include <mercado/eventsourcing/projection.hpp>

#include <mercado/observability/log.hpp>

namespace mercado::es {

namespace asio = boost::asio;

std::span<const storage::Migration> ProjectionRunner::migrations() {
  static const storage::Migration kMigrations[] = {
      {.version = 1,
       .name = "checkpoints",
       .sql = "CREATE TABLE es_checkpoints (name TEXT PRIMARY KEY, position BIGINT NOT NULL)"},
  };
  return kMigrations;
}

ProjectionRunner::ProjectionRunner(EventStore& store, Projection& projection, ProjectionOptions options)
    : store_(store), projection_(projection), options_(std::move(options)) {}

Result<void> Projection::apply_all(storage::Tx& tx, std::span<const RecordedEvent> events) {
  for (const auto& e : events) {
    if (auto r = apply(tx, e); !r) {
      Error err = std::move(r.error());
      err.internal = "projection " + std::string(name()) + " failed at position " + std::to_string(e.position) + ": " +
                     err.message;
      return fail(std::move(err));
    }
  }
  return {};
}

Result<std::int64_t> ProjectionRunner::stored_checkpoint(storage::Tx& tx) const {
  auto cp = tx.query_value<std::int64_t>("SELECT position FROM es_checkpoints WHERE name = $1",
                                          std::string(projection_.name()));
  if (!cp) return fail(std::move(cp.error()));
  return cp->value_or(0);
}

Result<void> ProjectionRunner::apply_and_checkpoint(storage::Tx& tx, std::span<const RecordedEvent> events) {
  if (auto r = projection_.apply_all(tx, events); !r) return r;
  const std::int64_t last = events.back().position;
  if (options_.before_checkpoint) options_.before_checkpoint(last);
  auto w = tx.exec(
      "INSERT INTO es_checkpoints (name, position) VALUES ($1, $2) "
      "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
      std::string(projection_.name()), last);
  if (!w) return fail(std::move(w.error()));
  return {};
}

Result<std::size_t> ProjectionRunner::apply_batch(storage::Tx& tx, std::int64_t& checkpoint, bool lock) {
  // No append or other catch-up of this read model between reading the checkpoint and
  // writing the new one (PostgreSQL runs READ COMMITTED: without the lock, an inline append
  // committing meanwhile would be applied by both). Inside an append the lock is held already.
  if (lock) {
    if (auto locked = EventStore::lock_appends_in(tx); !locked) return fail(std::move(locked.error()));
  }
  auto cp = stored_checkpoint(tx);
  if (!cp) return fail(std::move(cp.error()));
  checkpoint = *cp;
  auto events = EventStore::read_all_in(tx, checkpoint, options_.batch);
  if (!events) return fail(std::move(events.error()));
  if (events->empty()) return std::size_t{0};
  if (auto r = apply_and_checkpoint(tx, *events); !r) return fail(std::move(r.error()));
  checkpoint = events->back().position;
  return events->size();
}

asio::awaitable<Result<std::int64_t>> ProjectionRunner::catch_up() {
  for (;;) {
    std::int64_t reached = 0;
    auto n = co_await store_.database().transaction([&](storage::Tx& tx) { return apply_batch(tx, reached, true); });
    if (!n) co_return fail(std::move(n.error()));
    advance(reached);
    if (*n > 0) progressed_.notify_all();
    if (*n < options_.batch) co_return reached;
  }
}

Result<void> ProjectionRunner::catch_up_in(storage::Tx& tx) {
  std::int64_t reached = 0;
  for (;;) {
    auto n = apply_batch(tx, reached, false);  // the append hook's transaction holds the lock
    if (!n) return fail(std::move(n.error()));
    if (*n < options_.batch) break;
  }
  tx.on_commit([this, reached] {
    advance(reached);
    progressed_.notify_all();
  });
  return {};
}

Result<void> ProjectionRunner::catch_up_in(storage::Tx& tx, std::span<const RecordedEvent> appended) {
  // When the stored checkpoint is just before the appended events (every append went through
  // the hook), they are all there is to apply: applied as the hook got them, without reading
  // them back. Otherwise (events appended without the hook, a gap in the positions) the
  // catch-up reads from the checkpoint on.
  const bool contiguous =
      !appended.empty() &&
      appended.back().position - appended.front().position == static_cast<std::int64_t>(appended.size()) - 1;
  if (!contiguous) return catch_up_in(tx);
  auto cp = stored_checkpoint(tx);
  if (!cp) return fail(std::move(cp.error()));
  if (*cp + 1 != appended.front().position) return catch_up_in(tx);
  if (auto r = apply_and_checkpoint(tx, appended); !r) return r;
  const std::int64_t reached = appended.back().position;
  tx.on_commit([this, reached] {
    advance(reached);
    progressed_.notify_all();
  });
  return {};
}

void ProjectionRunner::advance(std::int64_t reached) noexcept {
  // Monotonic: a catch-up and an inline append may finish in either order.
  auto seen = checkpoint_.load();
  while (seen < reached && !checkpoint_.compare_exchange_weak(seen, reached)) {
  }
}

asio::awaitable<void> ProjectionRunner::run() {
  std::chrono::milliseconds backoff{100};
  while (!stopped_) {
    const auto seen = store_.appended().generation();
    auto r = co_await catch_up();
    if (!r) {
      log::error("projection failed; retrying", {{"projection", projection_.name()}, {"error", r.error().message},
                                                 {"detail", r.error().internal}});
      co_await store_.appended().wait(store_.appended().generation(), backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    co_await store_.appended().wait(seen, options_.poll);
  }
}

void ProjectionRunner::stop() noexcept {
  stopped_ = true;
  store_.appended().notify_all();
}

asio::awaitable<Result<std::int64_t>> ProjectionRunner::rebuild() {
  auto r = co_await store_.database().transaction([&](storage::Tx& tx) -> Result<void> {
    if (auto locked = EventStore::lock_appends_in(tx); !locked) return locked;
    if (auto z = projection_.reset(tx); !z) return z;
    auto d = tx.exec("DELETE FROM es_checkpoints WHERE name = $1", std::string(projection_.name()));
    if (!d) return fail(std::move(d.error()));
    return {};
  });
  if (!r) co_return fail(std::move(r.error()));
  checkpoint_.store(0);
  co_return co_await catch_up();
}

asio::awaitable<bool> ProjectionRunner::wait_for(std::int64_t position, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto seen = progressed_.generation();
    if (checkpoint_.load() >= position) co_return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) co_return false;
    co_await progressed_.wait(seen, left);
  }
}

}  // namespace mercado::es
