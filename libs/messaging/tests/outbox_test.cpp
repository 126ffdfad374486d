// Outbox, relay and inbox end to end: a producer's database (SQLite or PostgreSQL), the bus
// (SQLite or RabbitMQ), a consumer's database with the inbox. Failures are injected at each
// step of the relay (Beast-style fail-count loops): every event is delivered at least once
// and applied exactly once.

#include <mercado/messaging/inbox.hpp>
#include <mercado/messaging/outbox.hpp>
#include <mercado/storage/errors.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "bus_fixture.hpp"

namespace mercado::messaging {
namespace {

using namespace testing;
using storage::testing::Backend;
using storage::testing::ScratchDatabase;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct Combo {
  Backend db;
  Transport bus;
};

// Where the relay's publish fails: before anything reaches the broker, or after the broker
// accepted the batch but before the relay learned it (a lost confirm, a crash).
enum class FailAt { before_publish, after_publish };

// Fails the `fail_call`-th publish_batch (0-based) at the chosen step; forwards all others.
class FaultyPublisher final : public Publisher {
 public:
  FaultyPublisher(std::shared_ptr<Publisher> inner, FailAt at, int fail_call)
      : inner_(std::move(inner)), at_(at), fail_call_(fail_call) {}

  asio::awaitable<Result<void>> publish_batch(std::vector<Message> messages) override {
    int call = calls_++;
    if (call == fail_call_ && at_ == FailAt::before_publish) {
      triggered_ = true;
      co_return fail(Errc::unavailable, "injected: broker refused the batch");
    }
    auto r = co_await inner_->publish_batch(std::move(messages));
    if (call == fail_call_ && at_ == FailAt::after_publish) {
      triggered_ = true;
      co_return fail(Errc::unavailable, "injected: published, but the confirm was lost");
    }
    co_return r;
  }
  bool triggered() const noexcept { return triggered_; }

 private:
  std::shared_ptr<Publisher> inner_;
  FailAt at_;
  int fail_call_;
  std::atomic<int> calls_{0};
  std::atomic<bool> triggered_{false};
};

const storage::Migration kOrders[] = {
    {1, "orders", "CREATE TABLE orders (id TEXT PRIMARY KEY, total BIGINT NOT NULL)"}};
const storage::Migration kReservations[] = {
    {1, "reservations", "CREATE TABLE reservations (order_id TEXT PRIMARY KEY, total BIGINT NOT NULL)"}};

// Counts the outbox's undispatched (or dispatched) rows. SQLite's relay marks with a
// watermark (mercado_outbox_lease.dispatched_through: every row up to it is dispatched),
// PostgreSQL's each row (dispatched_at).
std::string count_marked_sql(storage::Dialect d, bool dispatched) {
  if (d == storage::Dialect::sqlite) {
    return std::string("SELECT COUNT(*) FROM mercado_outbox WHERE seq ") + (dispatched ? "<=" : ">") +
           " (SELECT dispatched_through FROM mercado_outbox_lease WHERE name = 'relay')";
  }
  return std::string("SELECT COUNT(*) FROM mercado_outbox WHERE dispatched_at IS ") + (dispatched ? "NOT NULL" : "NULL");
}

class OutboxTest : public ::testing::TestWithParam<Combo>, public BusTestBase {
 protected:
  void SetUp() override {
    MERCADO_SCRATCH_OR_SKIP(producer_scratch_, GetParam().db);
    MERCADO_SCRATCH_OR_SKIP(consumer_scratch_, GetParam().db);
    MERCADO_BUS_OR_SKIP(place_, GetParam().bus);
    producer_db_ = open_db(*producer_scratch_);
    consumer_db_ = open_db(*consumer_scratch_);
    ASSERT_TRUE(storage::migrate_blocking(*producer_db_, "mercado_outbox", Outbox::migrations()));
    ASSERT_TRUE(storage::migrate_blocking(*producer_db_, "orders", kOrders));
    ASSERT_TRUE(storage::migrate_blocking(*consumer_db_, "mercado_inbox", Inbox::migrations()));
    ASSERT_TRUE(storage::migrate_blocking(*consumer_db_, "inventory", kReservations));
    bus_ = open_bus(*place_, "order-service");
  }
  void TearDown() override { close_buses(); }

  std::shared_ptr<storage::Database> open_db(const ScratchDatabase& s) {
    auto db = storage::open_database(s.url(), pool_);
    if (!db) throw std::runtime_error(db.error().internal);
    return *db;
  }

  // The producer's command: an order and its OrderPlaced event, in one transaction.
  Result<void> place_order(const std::string& id, std::int64_t total, bool then_fail = false) {
    return producer_db_->transaction_blocking([&](storage::Tx& tx) -> Result<void> {
      if (auto r = tx.exec("INSERT INTO orders (id, total) VALUES ($1, $2)", id, total); !r) {
        return std::unexpected(r.error());
      }
      auto e = outbox_.add(tx, "OrderPlaced", {{"order_id", id}, {"total", total}});
      if (!e) return std::unexpected(e.error());
      if (then_fail) return fail(Errc::unprocessable, "credit limit exceeded");
      return {};
    });
  }

  // The consumer: reserves stock for each order through the inbox. `deliveries` sees every
  // delivery, `applied` every committed effect.
  std::shared_ptr<Subscription> consume(const std::string& queue, Collector& deliveries, Collector& applied,
                                        std::function<Result<void>(const Delivery&)> before_apply = {}) {
    auto apply = [&applied, before_apply](storage::Tx& tx, const Delivery& d) -> Result<void> {
      if (before_apply) {
        if (auto r = before_apply(d); !r) return r;
      }
      std::string order = std::string(d.envelope.data.at("order_id").as_string());
      auto r = tx.exec("INSERT INTO reservations (order_id, total) VALUES ($1, $2)", order,
                       d.envelope.data.at("total").as_int64());
      if (!r) return std::unexpected(r.error());
      tx.on_commit([&applied, order] { applied.add(order); });
      return {};
    };
    Handler inner = idempotent(consumer_db_, Inbox(queue), apply, metrics_);
    return subscribe(*bus_, {.queue = queue,
                             .event_types = {"OrderPlaced"},
                             .handler = [inner, &deliveries](const Delivery& d) -> asio::awaitable<Outcome> {
                               deliveries.add(std::string(d.envelope.data.at("order_id").as_string()));
                               co_return co_await inner(d);
                             },
                             .retry_delay = milliseconds(20)});
  }

  std::int64_t count(storage::Database& db, const std::string& sql) {
    auto n = db.transaction_blocking([&](storage::Tx& tx) { return tx.query_value<std::int64_t>(sql); });
    EXPECT_TRUE(n);
    return n && *n ? **n : -1;
  }

  // Adds an OrderPlaced event to the producer's outbox in a transaction of its own.
  void add_event(const Outbox& outbox, const std::string& order_id) {
    add_event(*producer_db_, outbox, {{"order_id", order_id}});
  }
  // The same through any handle on the producer's database (e.g. another process's).
  void add_event(storage::Database& db, const Outbox& outbox, boost::json::object data) {
    ASSERT_TRUE(db.transaction_blocking([&](storage::Tx& tx) -> Result<void> {
      auto e = outbox.add(tx, "OrderPlaced", std::move(data));
      return e ? Result<void>{} : std::unexpected(e.error());
    }));
  }
  std::int64_t outbox_rows() { return count(*producer_db_, "SELECT COUNT(*) FROM mercado_outbox"); }
  std::int64_t undispatched() { return count(*producer_db_, count_marked_sql(producer_db_->dialect(), false)); }
  // A trigger on the producer's outbox that makes every mark fail (PostgreSQL: an UPDATE of
  // a row's dispatched_at; SQLite: of the watermark), or its removal.
  void refuse_marks(bool refuse) {
    const bool pg = producer_db_->dialect() == storage::Dialect::postgres;
    const std::string sql =
        refuse ? (pg ? "CREATE FUNCTION refuse_mark() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'marking refused'; END $$"
                       " LANGUAGE plpgsql;"
                       "CREATE TRIGGER refuse_mark BEFORE UPDATE OF dispatched_at ON mercado_outbox"
                       " FOR EACH ROW EXECUTE FUNCTION refuse_mark()"
                     : "CREATE TRIGGER refuse_mark BEFORE UPDATE OF dispatched_through ON mercado_outbox_lease"
                       " BEGIN SELECT RAISE(ABORT, 'marking refused'); END")
               : (pg ? "DROP TRIGGER refuse_mark ON mercado_outbox; DROP FUNCTION refuse_mark()" : "DROP TRIGGER refuse_mark");
    ASSERT_TRUE(producer_db_->transaction_blocking([&](storage::Tx& tx) { return tx.exec_script(sql); }));
  }

  // Waits (up to 20 s) until the producer's outbox has no undispatched row: the relay's
  // marker works in the background.
  void wait_until_all_marked() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (undispatched() != 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // Runs the relay until it has published `n` events in total; failures are retried at once.
  std::size_t relay_until(OutboxRelay& relay, std::uint64_t n) {
    std::size_t failures = 0;
    for (int guard = 0; relay.published() < n && guard < 100; ++guard) {
      auto r = run(relay.run_once());
      if (!r) ++failures;
    }
    EXPECT_EQ(relay.published(), n);
    return failures;
  }

  std::optional<ScratchDatabase> producer_scratch_, consumer_scratch_;
  std::optional<BusPlace> place_;
  std::shared_ptr<storage::Database> producer_db_, consumer_db_;
  std::shared_ptr<EventBus> bus_;
  Outbox outbox_{"order-service"};
};

TEST_P(OutboxTest, StateAndEventsCommitTogetherOrNotAtAll) {
  Collector& deliveries = collector();
  Collector& applied = collector();
  auto sub = consume(random_name("inventory-"), deliveries, applied);
  ASSERT_TRUE(place_order("o-1", 100));
  auto refused = place_order("o-2", 200, /*then_fail=*/true);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "credit limit exceeded");
  EXPECT_EQ(count(*producer_db_, "SELECT COUNT(*) FROM orders"), 1);
  EXPECT_EQ(count(*producer_db_, "SELECT COUNT(*) FROM mercado_outbox"), 1);

  auto relay = OutboxRelay::create(producer_db_, bus_, outbox_, {.metrics = &metrics_});
  auto first = run(relay->run_once());
  ASSERT_TRUE(first) << first.error().message << " " << first.error().internal;
  EXPECT_EQ(*first, 1U);
  EXPECT_EQ(run(relay->run_once()).value(), 0U);  // marked: not published again
  EXPECT_EQ(undispatched(), 0);

  ASSERT_TRUE(place_order("o-3", 300));
  EXPECT_EQ(run(relay->run_once()).value(), 1U);
  ASSERT_TRUE(applied.wait_distinct(2));
  run(sub->stop());
  EXPECT_EQ(applied.counts(), (std::map<std::string, int>{{"o-1", 1}, {"o-3", 1}}));
  EXPECT_EQ(count(*consumer_db_, "SELECT COUNT(*) FROM reservations"), 2);
  EXPECT_EQ(metric_value(metrics_, "mercado_outbox_published_total"), 2);
}

// The relay's lag histogram: from the row's insert (the outbox's clock) to the bus taking it.
TEST_P(OutboxTest, TheRelayMeasuresEachEventsDispatchLag) {
  core::ManualClock clock(core::SteadyTime{} + std::chrono::hours(24 * 365 * 56));
  Outbox timed("order-service", clock);
  ASSERT_TRUE(producer_db_->transaction_blocking([&](storage::Tx& tx) -> Result<void> {
    auto e = timed.add(tx, "OrderPlaced", {{"order_id", "lag-1"}, {"total", 1}});
    if (!e) return std::unexpected(e.error());
    return {};
  }));
  clock.advance(milliseconds(2500));
  auto relay = OutboxRelay::create(producer_db_, bus_, timed, {.clock = &clock, .metrics = &metrics_});
  EXPECT_EQ(run(relay->run_once()).value(), 1U);
  EXPECT_EQ(metric_value(metrics_, "mercado_outbox_dispatch_lag_seconds_count"), 1);
  EXPECT_DOUBLE_EQ(metric_value(metrics_, "mercado_outbox_dispatch_lag_seconds_sum"), 2.5);
  EXPECT_EQ(metric_value(metrics_, "mercado_outbox_dispatch_lag_seconds_bucket{le=\"1\"}"), 0);
  EXPECT_EQ(metric_value(metrics_, "mercado_outbox_dispatch_lag_seconds_bucket{le=\"2.5\"}"), 1);
}

// The failure-injection loop: for each step and each publish call n, fail call n at that
// step; the invariants hold every time.
TEST_P(OutboxTest, AFailureAtEachRelayStepDeliversAtLeastOnceAndAppliesExactlyOnce) {
  constexpr int kEvents = 5;
  std::uint64_t published_before = 0;
  int iteration = 0;
  for (FailAt step : {FailAt::before_publish, FailAt::after_publish}) {
    for (int n = 0;; ++n) {
      ++iteration;
      SCOPED_TRACE("fail call " + std::to_string(n) +
                   (step == FailAt::before_publish ? " before publish" : " after publish"));
      const std::string queue = random_name("inventory-");
      Collector& deliveries = collector();
      Collector& applied = collector();
      auto sub = consume(queue, deliveries, applied);
      std::vector<std::string> ids;
      for (int i = 0; i < kEvents; ++i) {
        ids.push_back("o-" + std::to_string(iteration) + "-" + std::to_string(i));
        ASSERT_TRUE(place_order(ids.back(), 10 + i));
      }
      auto faulty = std::make_shared<FaultyPublisher>(bus_, step, n);
      auto relay = OutboxRelay::create(producer_db_, faulty, outbox_,
                                       {.batch_size = 2, .relay_id = "relay", .metrics = &metrics_});
      std::size_t failures = relay_until(*relay, kEvents);
      ASSERT_TRUE(applied.wait_distinct(kEvents));
      if (faulty->triggered() && step == FailAt::after_publish) {
        // The failed batch was published twice: wait for its second copy to arrive too.
        ASSERT_TRUE(deliveries.wait_total(kEvents + 1));
      }
      run(sub->stop());

      EXPECT_EQ(failures, faulty->triggered() ? 1U : 0U);
      auto counts = deliveries.counts();
      for (const auto& id : ids) EXPECT_GE(counts[id], 1) << id;  // at least once
      for (const auto& [id, times] : applied.counts()) EXPECT_EQ(times, 1) << id;  // exactly once
      EXPECT_EQ(applied.counts().size(), static_cast<std::size_t>(kEvents));
      std::int64_t rows = 0;
      for (const auto& id : ids) {
        rows += count(*consumer_db_, "SELECT COUNT(*) FROM reservations WHERE order_id = '" + id + "'");
      }
      EXPECT_EQ(rows, kEvents);
      double duplicates =
          metric_value(metrics_, "mercado_inbox_duplicates_total{consumer=\"" + queue + "\"}");
      EXPECT_EQ(duplicates, static_cast<double>(deliveries.total() - kEvents));
      if (step == FailAt::after_publish && faulty->triggered()) {
        EXPECT_GE(duplicates, 1);
      }
      published_before += kEvents;
      EXPECT_EQ(undispatched(), 0);
      if (!faulty->triggered()) break;  // n is past the last publish call: every step was covered
    }
  }
  EXPECT_GE(iteration, 6);
}

// A relay dies between publishing and marking (it neither marks nor releases its lease):
// another relay takes over when the lease runs out and publishes the events again.
TEST_P(OutboxTest, ACrashedRelaysEventsArePublishedByTheNextRelay) {
  core::ManualClock clock(core::SteadyTime{} + std::chrono::hours(24 * 365 * 56));
  Collector& deliveries = collector();
  Collector& applied = collector();
  const std::string queue = random_name("inventory-");
  auto sub = consume(queue, deliveries, applied);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(place_order("c-" + std::to_string(i), i));

  auto crashing = std::make_shared<FaultyPublisher>(bus_, FailAt::after_publish, 0);
  auto a = OutboxRelay::create(producer_db_, crashing, outbox_,
                               {.lease = seconds(10), .relay_id = "relay-a", .clock = &clock, .metrics = &metrics_});
  EXPECT_FALSE(run(a->run_once()));  // published, then "crashed" before marking
  a.reset();                         // gone without stop(): the lease is still held

  auto b = OutboxRelay::create(producer_db_, bus_, outbox_,
                               {.lease = seconds(10), .relay_id = "relay-b", .clock = &clock, .metrics = &metrics_});
  EXPECT_EQ(run(b->run_once()).value(), 0U);  // relay-a's lease has not expired
  clock.advance(seconds(11));
  EXPECT_EQ(run(b->run_once()).value(), 4U);
  ASSERT_TRUE(applied.wait_distinct(4));
  ASSERT_TRUE(deliveries.wait_total(8));  // both copies of every event arrived
  run(sub->stop());
  for (const auto& [id, times] : applied.counts()) EXPECT_EQ(times, 1) << id;
  EXPECT_EQ(count(*consumer_db_, "SELECT COUNT(*) FROM reservations"), 4);
  EXPECT_EQ(metric_value(metrics_, "mercado_inbox_duplicates_total{consumer=\"" + queue + "\"}"), 4);
}

// Publishes through `inner` and lets `elapse` pass on the clock meanwhile (a slow broker).
class SlowPublisher final : public Publisher {
 public:
  SlowPublisher(std::shared_ptr<Publisher> inner, core::ManualClock& clock) : inner_(std::move(inner)), clock_(clock) {}
  asio::awaitable<Result<void>> publish_batch(std::vector<Message> messages) override {
    auto r = co_await inner_->publish_batch(std::move(messages));
    clock_.advance(elapse);
    co_return r;
  }
  std::chrono::seconds elapse{0};

 private:
  std::shared_ptr<Publisher> inner_;
  core::ManualClock& clock_;
};

// A mark writes the lease row only when less than half of the lease is left: a fast round
// leaves it alone (one page fewer per commit), a slow publish still keeps the lease.
TEST_P(OutboxTest, AMarkRenewsTheLeaseOnlyWhenHalfOfItIsGone) {
  core::ManualClock clock(core::SteadyTime{} + std::chrono::hours(24 * 365 * 56));
  Collector& deliveries = collector();
  Collector& applied = collector();
  auto sub = consume(random_name("inventory-"), deliveries, applied);
  auto slow = std::make_shared<SlowPublisher>(bus_, clock);
  auto relay = OutboxRelay::create(producer_db_, slow, outbox_,
                                   {.lease = seconds(10), .relay_id = "relay", .clock = &clock, .metrics = &metrics_});
  auto expires = [&] { return count(*producer_db_, "SELECT expires_at FROM mercado_outbox_lease WHERE name = 'relay'"); };

  ASSERT_TRUE(place_order("l-1", 1));
  slow->elapse = seconds(2);
  EXPECT_EQ(run(relay->run_once()).value(), 1U);  // lease taken at t0, marked at t0 + 2 s
  const std::int64_t first = expires();
  ASSERT_TRUE(place_order("l-2", 2));
  slow->elapse = seconds(2);
  EXPECT_EQ(run(relay->run_once()).value(), 1U);  // marked at t0 + 4 s: 6 s left, not renewed
  EXPECT_EQ(expires(), first);
  ASSERT_TRUE(place_order("l-3", 3));
  slow->elapse = seconds(3);
  EXPECT_EQ(run(relay->run_once()).value(), 1U);  // marked at t0 + 7 s: 3 s left, renewed
  EXPECT_EQ(expires(), first + 7'000);
  ASSERT_TRUE(applied.wait_distinct(3));
  run(sub->stop());
}

// An idle relay deletes the dispatched rows written more than `retention` ago, at most once
// an hour, and keeps the younger ones.
TEST_P(OutboxTest, AnIdleRelayPurgesDispatchedRowsOlderThanTheRetention) {
  core::ManualClock clock(core::SteadyTime{} + std::chrono::hours(24 * 365 * 56));
  const core::Clock& wall = clock;
  Outbox outbox("order-service", wall);
  auto add = [&](const std::string& id) { add_event(outbox, id); };
  auto rows = [&] { return outbox_rows(); };
  auto relay = OutboxRelay::create(producer_db_, bus_, outbox,
                                   {.retention = std::chrono::hours(1), .clock = &clock, .metrics = &metrics_});
  add("p-1");
  add("p-2");
  EXPECT_EQ(run(relay->run_once()).value(), 2U);
  EXPECT_EQ(run(relay->run_once()).value(), 0U);  // idle: purges, but nothing is an hour old
  EXPECT_EQ(rows(), 2);

  clock.advance(std::chrono::minutes(90));
  add("p-3");
  clock.advance(std::chrono::minutes(10));
  EXPECT_EQ(run(relay->run_once()).value(), 1U);
  EXPECT_EQ(run(relay->run_once()).value(), 0U);  // p-1 and p-2 are 100 minutes old: deleted
  EXPECT_EQ(rows(), 1);
  EXPECT_EQ(count(*producer_db_, "SELECT COUNT(*) FROM mercado_outbox WHERE body LIKE '%p-3%'"), 1);

  clock.advance(std::chrono::minutes(55));
  EXPECT_EQ(run(relay->run_once()).value(), 0U);  // p-3 is 65 minutes old, the last purge 55: not yet
  EXPECT_EQ(rows(), 1);
  clock.advance(std::chrono::minutes(6));
  EXPECT_EQ(run(relay->run_once()).value(), 0U);
  EXPECT_EQ(rows(), 0);
}

// A retention of zero keeps the dispatched rows for ever (--outbox-retention-hours 0): no
// purge, however old they are.
TEST_P(OutboxTest, ARetentionOfZeroKeepsTheDispatchedRows) {
  core::ManualClock clock(core::SteadyTime{} + std::chrono::hours(24 * 365 * 56));
  const core::Clock& wall = clock;
  Outbox outbox("order-service", wall);
  obs::Registry metrics;
  auto purged = [&] { return metrics.counter("mercado_outbox_purged_total", "").get().value(); };
  auto relay = OutboxRelay::create(producer_db_, bus_, outbox,
                                   {.retention = std::chrono::milliseconds::zero(), .clock = &clock, .metrics = &metrics});
  add_event(outbox, "kept-1");
  add_event(outbox, "kept-2");
  EXPECT_EQ(run(relay->run_once()).value(), 2U);
  for (int i = 0; i < 3; ++i) {
    clock.advance(std::chrono::hours(24 * 400));
    EXPECT_EQ(run(relay->run_once()).value(), 0U);  // idle, years later
  }
  EXPECT_EQ(outbox_rows(), 2);
  EXPECT_EQ(undispatched(), 0);
  EXPECT_EQ(purged(), 0U);
}

// A backlog is purged in transactions of `purge_batch` rows, oldest first, until the first
// younger row: hours of rows never hold the service's single writer in one transaction. At
// most four batches per idle round (the relay publishes nothing meanwhile); the next idle
// round goes on without waiting for the hour.
TEST_P(OutboxTest, ThePurgeDeletesABacklogInBatchesOverIdleRoundsAndKeepsTheYoungRows) {
  core::ManualClock clock(core::SteadyTime{} + std::chrono::hours(24 * 365 * 56));
  const core::Clock& wall = clock;
  Outbox outbox("order-service", wall);
  auto add = [&](const std::string& id) { add_event(outbox, id); };
  auto rows = [&] { return outbox_rows(); };
  obs::Registry metrics;
  auto purged = [&] { return metrics.counter("mercado_outbox_purged_total", "").get().value(); };
  auto relay = OutboxRelay::create(producer_db_, bus_, outbox,
                                   {.retention = std::chrono::hours(1), .purge_batch = 2, .clock = &clock,
                                    .metrics = &metrics});
  for (int i = 0; i < 11; ++i) add("old-" + std::to_string(i));
  EXPECT_EQ(run(relay->run_once()).value(), 11U);
  EXPECT_EQ(run(relay->run_once()).value(), 0U);  // idle: the first purge, nothing an hour old yet
  clock.advance(std::chrono::minutes(90));
  add("young-1");
  add("young-2");
  EXPECT_EQ(run(relay->run_once()).value(), 2U);
  EXPECT_EQ(rows(), 13);
  const auto writes_before = producer_db_->stats().write_transactions.load();
  EXPECT_EQ(run(relay->run_once()).value(), 0U);  // idle, an hour after the last purge
  EXPECT_EQ(producer_db_->stats().write_transactions.load() - writes_before, 4U) << "four batches of 2";
  EXPECT_EQ(purged(), 8U);
  EXPECT_EQ(rows(), 5);
  EXPECT_EQ(run(relay->run_once()).value(), 0U);  // the next idle round finishes: 2, then 1
  EXPECT_EQ(purged(), 11U);
  EXPECT_EQ(rows(), 2);
  EXPECT_EQ(count(*producer_db_, "SELECT COUNT(*) FROM mercado_outbox WHERE body LIKE '%young-%'"), 2);
  EXPECT_EQ(run(relay->run_once()).value(), 0U);  // done until the next hour
  EXPECT_EQ(rows(), 2);
}

// The mark after a publish fails: the events stay pending and are published again
// (at-least-once), applied once, and marked by a later round.
TEST_P(OutboxTest, AFailedMarkPublishesTheEventsAgainAndAppliesThemOnce) {
  Collector& deliveries = collector();
  Collector& applied = collector();
  const std::string queue = random_name("inventory-");
  auto sub = consume(queue, deliveries, applied);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(place_order("m-" + std::to_string(i), i));
  refuse_marks(true);

  auto relay = OutboxRelay::create(producer_db_, bus_, outbox_, {.relay_id = "relay", .metrics = &metrics_});
  auto refused = run(relay->run_once());
  ASSERT_FALSE(refused);  // published, then the mark failed
  EXPECT_EQ(undispatched(), 3);
  EXPECT_EQ(relay->published(), 0U);
  ASSERT_TRUE(deliveries.wait_total(3));

  refuse_marks(false);
  auto again = run(relay->run_once());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, 3U);  // the same three, once more
  EXPECT_EQ(run(relay->run_once()).value(), 0U);
  EXPECT_EQ(undispatched(), 0);
  ASSERT_TRUE(applied.wait_distinct(3));
  ASSERT_TRUE(deliveries.wait_total(6));
  run(sub->stop());
  for (const auto& [id, times] : applied.counts()) EXPECT_EQ(times, 1) << id;
  EXPECT_EQ(count(*consumer_db_, "SELECT COUNT(*) FROM reservations"), 3);
  EXPECT_EQ(metric_value(metrics_, "mercado_inbox_duplicates_total{consumer=\"" + queue + "\"}"), 3);
}

// The relay loop needs no polling: a commit wakes it (poll interval one hour).
TEST_P(OutboxTest, TheRelayLoopWakesOnCommit) {
  Collector& deliveries = collector();
  Collector& applied = collector();
  auto sub = consume(random_name("inventory-"), deliveries, applied);
  auto relay = OutboxRelay::start(producer_db_, bus_, outbox_, executor(),
                                  {.poll_interval = std::chrono::hours(1), .metrics = &metrics_});
  ASSERT_TRUE(place_order("w-1", 1));
  ASSERT_TRUE(applied.wait_distinct(1, seconds(20)));
  ASSERT_TRUE(place_order("w-2", 2));
  ASSERT_TRUE(applied.wait_distinct(2, seconds(20)));
  run(relay->stop());
  run(sub->stop());
  EXPECT_EQ(relay->published(), 2U);
}

// The loop reads only the rows after those it published (SQLite); when the marker fails to
// mark a batch, those rows are pending again and the loop publishes them again.
TEST_P(OutboxTest, TheRelayLoopPublishesAgainWhatItsMarkerFailedToMark) {
  Collector& deliveries = collector();
  Collector& applied = collector();
  const std::string queue = random_name("inventory-");
  auto sub = consume(queue, deliveries, applied);
  refuse_marks(true);
  auto relay = OutboxRelay::start(producer_db_, bus_, outbox_, executor(),
                                  {.poll_interval = std::chrono::milliseconds(50), .mark_delay = std::chrono::milliseconds(0),
                                   .relay_id = "relay", .metrics = &metrics_});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(place_order("f-" + std::to_string(i), i));
  ASSERT_TRUE(deliveries.wait_total(3, seconds(20)));
  // Every mark fails: the same three go out again (and again), none is lost.
  ASSERT_TRUE(deliveries.wait_total(6, seconds(20)));
  EXPECT_EQ(undispatched(), 3);
  // A later event goes out too, once the marks work again.
  refuse_marks(false);
  ASSERT_TRUE(place_order("f-3", 3));
  ASSERT_TRUE(applied.wait_distinct(4, seconds(20)));
  for (int i = 0; i < 400 && undispatched() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(undispatched(), 0);
  run(relay->stop());
  run(sub->stop());
  for (const auto& [id, times] : applied.counts()) EXPECT_EQ(times, 1) << id;
  EXPECT_EQ(count(*consumer_db_, "SELECT COUNT(*) FROM reservations"), 4);
}

// SQLite: a mark raises the watermark and leaves the rows alone; a relay started later
// (another process, after a restart) publishes none of them again.
TEST_P(OutboxTest, OnSqliteAMarkWritesOnlyTheWatermark) {
  if (producer_db_->dialect() != storage::Dialect::sqlite) GTEST_SKIP() << "PostgreSQL marks each row";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(place_order("w-" + std::to_string(i), i));
  // A lease so short that the second relay takes it over at once.
  auto relay = OutboxRelay::create(producer_db_, bus_, outbox_,
                                   {.lease = std::chrono::milliseconds(1), .relay_id = "first", .metrics = &metrics_});
  auto first = run(relay->run_once());
  ASSERT_TRUE(first) << first.error().internal;
  EXPECT_EQ(*first, 3U);
  EXPECT_EQ(undispatched(), 0);
  EXPECT_EQ(count(*producer_db_, "SELECT COUNT(*) FROM mercado_outbox WHERE dispatched_at IS NOT NULL"), 0);
  EXPECT_EQ(count(*producer_db_, "SELECT dispatched_through FROM mercado_outbox_lease WHERE name = 'relay'"),
            count(*producer_db_, "SELECT MAX(seq) FROM mercado_outbox"));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto later = OutboxRelay::create(producer_db_, bus_, outbox_, {.relay_id = "second", .metrics = &metrics_});
  EXPECT_EQ(run(later->run_once()).value(), 0U);
  EXPECT_EQ(count(*producer_db_, "SELECT COUNT(*) FROM mercado_outbox_lease WHERE owner = 'second'"), 1);  // it leads
  ASSERT_TRUE(place_order("w-3", 3));
  EXPECT_EQ(run(later->run_once()).value(), 1U);
  EXPECT_EQ(undispatched(), 0);
}

// The migration to the watermark (SQLite) starts it just below the first row the per-row
// marks had left undispatched: nothing pending is skipped (what was marked above it goes
// out again, at least once), nothing marked below it goes out again.
TEST_P(OutboxTest, TheWatermarkStartsBelowTheFirstUndispatchedRow) {
  if (producer_db_->dialect() != storage::Dialect::sqlite) GTEST_SKIP() << "PostgreSQL marks each row";
  for (const auto& marked : std::vector<std::vector<int>>{{1, 2, 4}, {}, {1, 2, 3, 4, 5}, {2, 3, 4, 5}}) {
    std::optional<ScratchDatabase> scratch;
    MERCADO_SCRATCH_OR_SKIP(scratch, GetParam().db);
    auto db = open_db(*scratch);
    ASSERT_TRUE(storage::migrate_blocking(*db, "mercado_outbox", Outbox::migrations().first(2)));
    ASSERT_TRUE(db->transaction_blocking([&](storage::Tx& tx) -> Result<void> {
      for (int seq = 1; seq <= 5; ++seq) {
        const bool done = std::find(marked.begin(), marked.end(), seq) != marked.end();
        auto r = tx.exec("INSERT INTO mercado_outbox (seq, message_id, event_type, traceparent, body, created_at,"
                         " dispatched_at) VALUES ($1, $2, 'E', '', '{}', 0, $3)",
                         seq, "m-" + std::to_string(seq), done ? std::optional<std::int64_t>(1) : std::nullopt);
        if (!r) return std::unexpected(r.error());
      }
      return {};
    }));
    ASSERT_TRUE(storage::migrate_blocking(*db, "mercado_outbox", Outbox::migrations()));
    const std::int64_t expected = marked == std::vector<int>{1, 2, 4}          ? 2
                                  : marked == std::vector<int>{1, 2, 3, 4, 5} ? 5
                                                                              : 0;
    EXPECT_EQ(count(*db, "SELECT dispatched_through FROM mercado_outbox_lease WHERE name = 'relay'"), expected)
        << marked.size();
    EXPECT_EQ(count(*db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'mercado_outbox_pending'"), 0);
  }
}

// Lets the first publish wait until the test opens the gate, and tells when the second one
// has gone out (and whether the gate was still "held" by then).
class GatedPublisher final : public Publisher {
 public:
  explicit GatedPublisher(std::shared_ptr<Publisher> inner) : inner_(std::move(inner)) {}
  asio::awaitable<Result<void>> publish_batch(std::vector<Message> messages) override {
    const int call = calls_++;
    if (call == 0) {
      first_started.set_value();
      while (!open_) {
        auto seen = gate_.generation();
        if (open_) break;
        co_await gate_.wait(seen, std::chrono::seconds(20));
      }
    }
    auto r = co_await inner_->publish_batch(std::move(messages));
    if (call == 1) second_published.set_value();
    co_return r;
  }
  void open() {
    open_ = true;
    gate_.notify_all();
  }
  std::promise<void> first_started, second_published;

 private:
  std::shared_ptr<Publisher> inner_;
  std::atomic<int> calls_{0};
  std::atomic<bool> open_{false};
  core::Notifier gate_;
};

// The loop publishes a batch while the previous one's mark is still being written: an event
// committed during a round waits for one publish, not for a publish and a mark. Here the
// first batch's mark is held up (another connection holds the outbox rows: the write lock
// on SQLite, row locks on PostgreSQL) and the second batch still goes out; afterwards every
// batch is marked -- the last one too, with no further commit to wake the loop -- and
// nothing was published twice.
TEST_P(OutboxTest, TheLoopPublishesTheNextBatchWhileThePreviousOneIsMarked) {
  Collector& deliveries = collector();
  Collector& applied = collector();
  auto sub = consume(random_name("inventory-"), deliveries, applied);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(place_order("p-" + std::to_string(i), i));  // batches {0, 1}, {2}
  auto gated = std::make_shared<GatedPublisher>(bus_);
  auto relay = OutboxRelay::start(producer_db_, gated, outbox_, executor(),
                                  {.batch_size = 2, .poll_interval = std::chrono::hours(1), .metrics = &metrics_});
  gated->first_started.get_future().wait();

  auto other = open_db(*producer_scratch_);  // for SQLite: like another process
  std::promise<void> holding, release;
  std::thread holder([&] {
    EXPECT_TRUE(other->transaction_blocking([&](storage::Tx& tx) -> Result<void> {
      if (tx.dialect() == storage::Dialect::postgres) {
        auto rows = tx.query("SELECT seq FROM mercado_outbox FOR UPDATE");
        if (!rows) return std::unexpected(rows.error());
      }
      holding.set_value();
      release.get_future().wait_for(seconds(5));
      return {};
    }));
  });
  holding.get_future().wait();
  gated->open();  // the first batch goes out; its mark waits for the holder
  const bool second_went_out = gated->second_published.get_future().wait_for(seconds(4)) == std::future_status::ready;
  release.set_value();
  holder.join();
  EXPECT_TRUE(second_went_out) << "the second batch waited for the first one's mark";

  ASSERT_TRUE(applied.wait_distinct(3));
  wait_until_all_marked();
  EXPECT_EQ(undispatched(), 0);
  run(relay->stop());
  run(sub->stop());
  EXPECT_EQ(relay->published(), 3U);
  EXPECT_EQ(deliveries.total(), 3U);
}

// Forwards the two-phase publishing to the bus, failing the first `failures` make_durable
// calls; records how many outbox rows were marked when each make_durable call began.
class DeferredPublisher final : public Publisher {
 public:
  DeferredPublisher(std::shared_ptr<Publisher> inner, std::shared_ptr<storage::Database> outbox_db, int failures)
      : inner_(std::move(inner)), outbox_db_(std::move(outbox_db)), failures_(failures) {}
  asio::awaitable<Result<void>> publish_batch(std::vector<Message> messages) override {
    ++plain_calls;
    co_return co_await inner_->publish_batch(std::move(messages));
  }
  asio::awaitable<Result<void>> publish_batch_deferred(std::vector<Message> messages) override {
    ++deferred_calls;
    co_return co_await inner_->publish_batch_deferred(std::move(messages));
  }
  asio::awaitable<Result<void>> make_durable() override {
    auto marked = outbox_db_->transaction_blocking(
        [](storage::Tx& tx) {
          return tx.query_value<std::int64_t>(count_marked_sql(tx.dialect(), true));
        },
        storage::TxMode::read);
    {
      std::lock_guard lock(mutex_);
      marked_at_call_.push_back(marked && *marked ? **marked : -1);
    }
    if (failures_-- > 0) co_return fail(Errc::unavailable, "injected: the log could not be synced");
    co_return co_await inner_->make_durable();
  }
  std::vector<std::int64_t> marked_at_call() {
    std::lock_guard lock(mutex_);
    return marked_at_call_;
  }
  std::atomic<int> plain_calls{0}, deferred_calls{0};

 private:
  std::shared_ptr<Publisher> inner_;
  std::shared_ptr<storage::Database> outbox_db_;
  std::atomic<int> failures_;
  std::mutex mutex_;
  std::vector<std::int64_t> marked_at_call_;
};

// The loop publishes without waiting for the transport's durability and marks only what a
// later make_durable covered: while make_durable fails nothing is marked and the events go
// out again; once it succeeds every row is marked, and each event was applied once.
TEST_P(OutboxTest, TheLoopMarksOnlyWhatTheTransportHasMadeDurable) {
  Collector& deliveries = collector();
  Collector& applied = collector();
  const std::string queue = random_name("inventory-");
  auto sub = consume(queue, deliveries, applied);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(place_order("d-" + std::to_string(i), i));
  auto publisher = std::make_shared<DeferredPublisher>(bus_, producer_db_, 2);
  auto relay = OutboxRelay::start(producer_db_, publisher, outbox_, executor(),
                                  {.poll_interval = milliseconds(20), .metrics = &metrics_});
  ASSERT_TRUE(applied.wait_distinct(3));
  wait_until_all_marked();
  run(relay->stop());
  EXPECT_EQ(undispatched(), 0);
  ASSERT_TRUE(deliveries.wait_total(9));  // each event published three times: twice not made durable
  run(sub->stop());

  const auto marked = publisher->marked_at_call();
  ASSERT_GE(marked.size(), 3U);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(marked[i], 0) << "marked before make_durable call " << i;
  EXPECT_EQ(publisher->plain_calls.load(), 0);
  EXPECT_GE(publisher->deferred_calls.load(), 3);
  for (const auto& [id, times] : applied.counts()) EXPECT_EQ(times, 1) << id;
  EXPECT_EQ(count(*consumer_db_, "SELECT COUNT(*) FROM reservations"), 3);
  EXPECT_EQ(relay->published(), 3U);
}

// RelayOptions::mark_delay: batches published in quick succession are made durable and
// marked together (here two batches, of two events and of one, within the delay: one sync).
TEST_P(OutboxTest, TheMarkerGathersBatchesPublishedWithinTheMarkDelay) {
  Collector& deliveries = collector();
  Collector& applied = collector();
  auto sub = consume(random_name("inventory-"), deliveries, applied);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(place_order("g-" + std::to_string(i), i));
  auto publisher = std::make_shared<DeferredPublisher>(bus_, producer_db_, 0);
  auto relay = OutboxRelay::start(producer_db_, publisher, outbox_, executor(),
                                  {.batch_size = 2, .poll_interval = std::chrono::hours(1),
                                   .mark_delay = milliseconds(500), .metrics = &metrics_});
  ASSERT_TRUE(applied.wait_distinct(3));
  wait_until_all_marked();
  run(relay->stop());
  run(sub->stop());
  EXPECT_EQ(undispatched(), 0);
  EXPECT_EQ(publisher->deferred_calls.load(), 2);
  EXPECT_EQ(publisher->marked_at_call().size(), 1U);
  EXPECT_EQ(deliveries.total(), 3U);
  EXPECT_EQ(relay->published(), 3U);
}

// Forwards to the bus and records every message published, in order.
class RecordingPublisher final : public Publisher {
 public:
  explicit RecordingPublisher(std::shared_ptr<Publisher> inner) : inner_(std::move(inner)) {}
  asio::awaitable<Result<void>> publish_batch(std::vector<Message> messages) override {
    record(messages);
    co_return co_await inner_->publish_batch(std::move(messages));
  }
  asio::awaitable<Result<void>> publish_batch_deferred(std::vector<Message> messages) override {
    record(messages);
    co_return co_await inner_->publish_batch_deferred(std::move(messages));
  }
  asio::awaitable<Result<void>> make_durable() override { co_return co_await inner_->make_durable(); }
  std::vector<Message> published() {
    std::lock_guard lock(mutex_);
    return published_;
  }

 private:
  void record(const std::vector<Message>& messages) {
    std::lock_guard lock(mutex_);
    published_.insert(published_.end(), messages.begin(), messages.end());
  }
  std::shared_ptr<Publisher> inner_;
  std::mutex mutex_;
  std::vector<Message> published_;
};

// SQLite: once the relay has published every row up to the last one, the rows this
// process's transactions add are handed to it at commit and published as they were
// committed, without reading them back: here the stored copy was altered after the commit,
// and the relay published the original.
TEST_P(OutboxTest, OnSqliteTheRelayPublishesWhatThisProcessCommittedWithoutReadingItBack) {
  if (producer_db_->dialect() != storage::Dialect::sqlite) GTEST_SKIP() << "PostgreSQL commits out of seq order";
  auto publisher = std::make_shared<RecordingPublisher>(bus_);
  auto relay = OutboxRelay::create(producer_db_, publisher, outbox_, {.metrics = &metrics_});
  ASSERT_TRUE(place_order("h-0", 0));
  ASSERT_EQ(run(relay->run_once()).value(), 1U);  // the first round reads the table
  ASSERT_TRUE(place_order("h-1", 1));
  ASSERT_TRUE(producer_db_->transaction_blocking([](storage::Tx& tx) {
    return tx.exec("UPDATE mercado_outbox SET event_type = 'Altered' WHERE seq = (SELECT MAX(seq) FROM mercado_outbox)");
  }));
  ASSERT_EQ(run(relay->run_once()).value(), 1U);
  const auto sent = publisher->published();
  ASSERT_EQ(sent.size(), 2U);
  EXPECT_EQ(sent[1].event_type, "OrderPlaced");
  EXPECT_EQ(undispatched(), 0);
}

// SQLite: rows handed over are published only where they continue the published rows. A
// row this process did not hand over (another process's, here) leaves a gap before the next
// handed-over one, and the relay reads the table instead; a rolled-back add hands nothing
// over (and its seq is used again). Every row goes out once, in seq order.
TEST_P(OutboxTest, OnSqliteARowNotHandedOverIsReadFromTheTableInItsPlace) {
  if (producer_db_->dialect() != storage::Dialect::sqlite) GTEST_SKIP() << "PostgreSQL commits out of seq order";
  auto publisher = std::make_shared<RecordingPublisher>(bus_);
  auto relay = OutboxRelay::create(producer_db_, publisher, outbox_, {.metrics = &metrics_});
  ASSERT_TRUE(place_order("g-0", 0));
  ASSERT_EQ(run(relay->run_once()).value(), 1U);
  ASSERT_TRUE(place_order("g-1", 1));
  ASSERT_FALSE(place_order("g-x", 9, /*then_fail=*/true));
  auto other = open_db(*producer_scratch_);  // another process, with an outbox of its own
  const Outbox other_outbox("order-service");
  add_event(*other, other_outbox, {{"order_id", "g-2"}, {"total", 2}});
  ASSERT_TRUE(place_order("g-3", 3));
  for (int i = 0; i < 5 && relay->published() < 4; ++i) ASSERT_TRUE(run(relay->run_once()));
  EXPECT_EQ(relay->published(), 4U);

  std::vector<std::string> stored;
  ASSERT_TRUE(producer_db_->transaction_blocking([&](storage::Tx& tx) -> Result<void> {
    auto rows = tx.query("SELECT message_id FROM mercado_outbox ORDER BY seq");
    if (!rows) return std::unexpected(rows.error());
    for (const auto& r : *rows) stored.push_back(r.get<std::string>(0));
    return {};
  }, storage::TxMode::read));
  std::vector<std::string> sent;
  for (const auto& m : publisher->published()) sent.push_back(m.id);
  EXPECT_EQ(stored.size(), 4U);
  EXPECT_EQ(sent, stored);
  EXPECT_EQ(undispatched(), 0);
}

// Rows that another process adds wake nobody here: the loop finds them within its
// poll_interval, also while this process's own rows are handed to it (SQLite).
TEST_P(OutboxTest, TheLoopFindsAnotherProcesssRowsWithinThePollInterval) {
  Collector& deliveries = collector();
  Collector& applied = collector();
  auto sub = consume(random_name("inventory-"), deliveries, applied);
  auto relay = OutboxRelay::start(producer_db_, bus_, outbox_, executor(),
                                  {.poll_interval = milliseconds(50), .metrics = &metrics_});
  ASSERT_TRUE(place_order("o-0", 0));
  ASSERT_TRUE(applied.wait_distinct(1));
  ASSERT_TRUE(place_order("o-1", 1));
  ASSERT_TRUE(applied.wait_distinct(2));
  auto other = open_db(*producer_scratch_);
  const Outbox other_outbox("order-service");
  add_event(*other, other_outbox, {{"order_id", "o-2"}, {"total", 2}});
  EXPECT_TRUE(applied.wait_distinct(3));
  run(relay->stop());
  run(sub->stop());
  EXPECT_EQ(deliveries.total(), 3U);
}

// Two replicas of a service run a relay each on the same database: the lease lets one
// publish at a time, so without failures every event goes out exactly once.
TEST_P(OutboxTest, ReplicaRelaysShareTheOutboxWithoutDuplicates) {
  constexpr int kCount = 30;
  Collector& deliveries = collector();
  Collector& applied = collector();
  auto sub = consume(random_name("inventory-"), deliveries, applied);
  auto a = OutboxRelay::start(producer_db_, bus_, outbox_, executor(),
                              {.poll_interval = milliseconds(200), .relay_id = "a", .metrics = &metrics_});
  auto b = OutboxRelay::start(producer_db_, bus_, outbox_, executor(),
                              {.poll_interval = milliseconds(200), .relay_id = "b", .metrics = &metrics_});
  for (int i = 0; i < kCount; ++i) ASSERT_TRUE(place_order("r-" + std::to_string(i), i));
  ASSERT_TRUE(applied.wait_distinct(kCount));
  run(a->stop());
  run(b->stop());
  run(sub->stop());
  EXPECT_EQ(a->published() + b->published(), static_cast<std::uint64_t>(kCount));
  EXPECT_EQ(deliveries.total(), static_cast<std::size_t>(kCount));
}

// The consumer's transaction is all or nothing too: a transient failure rolls back the
// effects and the inbox record, the message is retried and applied once; a permanent
// failure dead-letters it with the reason and applies nothing.
TEST_P(OutboxTest, AFailedEffectRollsBackAndIsRetriedOrDeadLettered) {
  const std::string queue = random_name("inventory-");
  Collector& deliveries = collector();
  Collector& applied = collector();
  std::atomic<int> calls{0};
  auto closer = close_buses_on_exit();  // the handler captures `calls`
  auto sub = consume(queue, deliveries, applied, [&](const Delivery& d) -> Result<void> {
    std::string order(d.envelope.data.at("order_id").as_string());
    if (order == "bad") return fail(Errc::unprocessable, "unknown sku");
    if (calls++ == 0) return fail(Errc::unavailable, "stock service busy");
    return {};
  });
  ASSERT_TRUE(place_order("good", 1));
  ASSERT_TRUE(place_order("bad", 2));
  auto relay = OutboxRelay::create(producer_db_, bus_, outbox_, {.metrics = &metrics_});
  EXPECT_EQ(run(relay->run_once()).value(), 2U);
  ASSERT_TRUE(applied.wait_distinct(1));
  ASSERT_TRUE(deliveries.wait_total(3));  // good twice (retried), bad once
  run(sub->stop());
  EXPECT_EQ(applied.counts(), (std::map<std::string, int>{{"good", 1}}));
  EXPECT_EQ(count(*consumer_db_, "SELECT COUNT(*) FROM reservations"), 1);
  EXPECT_EQ(count(*consumer_db_, "SELECT COUNT(*) FROM mercado_inbox"), 1);
  auto letters = run(bus_->take_dead_letters(queue, 10));
  ASSERT_TRUE(letters);
  ASSERT_EQ(letters->size(), 1U);
  EXPECT_NE(letters->front().reason.find("unknown sku"), std::string::npos) << letters->front().reason;
}

TEST_P(OutboxTest, InboxRecordsEachIdOnceAndForgetsOldOnes) {
  Inbox inbox("inventory");
  auto first = consumer_db_->transaction_blocking([&](storage::Tx& tx) { return inbox.record(tx, "m-1"); });
  auto again = consumer_db_->transaction_blocking([&](storage::Tx& tx) { return inbox.record(tx, "m-1"); });
  auto other = consumer_db_->transaction_blocking([&](storage::Tx& tx) { return Inbox("billing").record(tx, "m-1"); });
  ASSERT_TRUE(first && again && other);
  EXPECT_TRUE(*first);
  EXPECT_FALSE(*again);
  EXPECT_TRUE(*other);  // ids are per consumer
  auto purged = consumer_db_->transaction_blocking([&](storage::Tx& tx) { return inbox.purge(tx, milliseconds(-1000)); });
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 1);
  auto after = consumer_db_->transaction_blocking([&](storage::Tx& tx) { return inbox.record(tx, "m-1"); });
  EXPECT_TRUE(*after);
}

TEST_P(OutboxTest, AnEventIdIsStoredOnce) {
  Envelope e = make_envelope("OrderPlaced", {{"order_id", "x"}}, {}, "order-service");
  ASSERT_TRUE(producer_db_->transaction_blocking([&](storage::Tx& tx) { return outbox_.add(tx, e); }));
  auto dup = producer_db_->transaction_blocking([&](storage::Tx& tx) { return outbox_.add(tx, e); });
  ASSERT_FALSE(dup);
  EXPECT_TRUE(storage::is_unique_violation(dup.error()));
}

INSTANTIATE_TEST_SUITE_P(DatabasesAndTransports, OutboxTest,
                         ::testing::Values(Combo{Backend::sqlite, Transport::sqlite},
                                           Combo{Backend::postgres, Transport::amqp},
                                           Combo{Backend::sqlite, Transport::amqp},
                                           Combo{Backend::postgres, Transport::sqlite}),
                         [](const auto& p) {
                           return storage::testing::to_string(p.param.db) + "_" + to_string(p.param.bus);
                         });

}  // namespace
}  // namespace mercado::messaging
