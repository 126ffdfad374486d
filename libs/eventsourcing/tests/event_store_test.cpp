#include <mercado/eventsourcing/aggregate.hpp>
#include <mercado/eventsourcing/aggregate_cache.hpp>
#include <mercado/eventsourcing/event_store.hpp>

#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include <thread>

#include "es_fixture.hpp"

namespace mercado::es {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using testing::EsTest;
using testing::run;

std::vector<NewEvent> events(std::initializer_list<std::string_view> types) {
  std::vector<NewEvent> out;
  int i = 0;
  for (auto t : types) out.push_back(NewEvent::make(std::string(t), json::object{{"n", i++}}));
  return out;
}

TEST_P(EsTest, AppendsAndReadsAStream) {
  EventStore store(db_);
  auto r = run(store.append("order-1", events({"OrderCreated", "ItemAdded"}), ExpectedVersion::no_stream()));
  ASSERT_TRUE(r) << r.error().error.message;
  EXPECT_EQ(r->version, 2);
  EXPECT_FALSE(r->replayed);
  auto more = run(store.save_events("order-1", events({"OrderConfirmed"}), 2));
  ASSERT_TRUE(more);
  EXPECT_EQ(more->version, 3);
  auto read = run(store.read_stream("order-1"));
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 3U);
  EXPECT_EQ((*read)[0].event_type, "OrderCreated");
  EXPECT_EQ((*read)[2].version, 3);
  EXPECT_LT((*read)[0].position, (*read)[2].position);
  EXPECT_EQ((*read)[1].json().at("n").as_int64(), 1);
  auto tail = run(store.read_stream("order-1", 2));
  ASSERT_EQ(tail->size(), 1U);
  EXPECT_EQ((*tail)[0].event_type, "OrderConfirmed");
  EXPECT_EQ(*run(store.stream_version("order-1")), 3);
  EXPECT_EQ(*run(store.stream_version("nope")), 0);
}

TEST_P(EsTest, WrongExpectedVersionCarriesTheCurrentVersion) {
  EventStore store(db_);
  ASSERT_TRUE(run(store.append("s", events({"A", "B"}), ExpectedVersion::no_stream())));
  auto r = run(store.save_events("s", events({"C"}), 1));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is_concurrency());
  EXPECT_EQ(r.error().current_version, 2);
  EXPECT_EQ(r.error().error.code, Errc::conflict);
  EXPECT_EQ(r.error().error.type, "wrong-expected-version");
  EXPECT_FALSE(run(store.append("s", events({"C"}), ExpectedVersion::no_stream())));
  EXPECT_FALSE(run(store.append("new", events({"C"}), ExpectedVersion::stream_exists())));
  EXPECT_TRUE(run(store.append("s", events({"C"}), ExpectedVersion::stream_exists())));
  EXPECT_TRUE(run(store.append("s", events({"D"}), ExpectedVersion::any())));
  EXPECT_EQ(run(store.read_stream("s"))->size(), 4U);  // the rejected appends wrote nothing
}

TEST_P(EsTest, AppendingStoredEventIdsIsANoOp) {
  EventStore store(db_);
  auto batch = events({"A", "B"});
  auto first = run(store.append("s", batch, ExpectedVersion::no_stream()));
  ASSERT_TRUE(first);
  auto again = run(store.append("s", batch, ExpectedVersion::no_stream()));  // a retried request
  ASSERT_TRUE(again) << again.error().error.message;
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->version, 2);
  EXPECT_EQ(run(store.read_stream("s"))->size(), 2U);
  auto partly = events({"C"});
  partly.push_back(batch[0]);
  auto r = run(store.append("s", partly, ExpectedVersion::any()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().error.type, "duplicate-event-id");
  auto elsewhere = run(store.append("other", {batch[0]}, ExpectedVersion::any()));
  ASSERT_FALSE(elsewhere);
  EXPECT_EQ(elsewhere.error().error.type, "duplicate-event-id");
  // A batch naming a stored id twice could never have been stored as it is: not a replay.
  auto twice = run(store.append("s", {batch[0], batch[0]}, ExpectedVersion::any()));
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().error.type, "duplicate-event-id");
  EXPECT_EQ(run(store.read_stream("s"))->size(), 2U);
}

TEST_P(EsTest, TwoRacingWritersOneWinsTheOtherGetsTheCurrentVersion) {
  EventStore store(db_);
  ASSERT_TRUE(run(store.append("acct", events({"Opened"}), ExpectedVersion::no_stream())));
  for (int round = 0; round < 20; ++round) {
    const std::int64_t v = *run(store.stream_version("acct"));
    std::promise<AppendOutcome> a, b;
    asio::io_context ca, cb;
    asio::co_spawn(ca, store.append("acct", events({"Deposit"}), ExpectedVersion::exact(v)),
                   [&](std::exception_ptr, AppendOutcome o) { a.set_value(std::move(o)); });
    asio::co_spawn(cb, store.append("acct", events({"Withdraw"}), ExpectedVersion::exact(v)),
                   [&](std::exception_ptr, AppendOutcome o) { b.set_value(std::move(o)); });
    std::thread ta([&] { ca.run(); });
    std::thread tb([&] { cb.run(); });
    ta.join();
    tb.join();
    auto ra = a.get_future().get();
    auto rb = b.get_future().get();
    ASSERT_NE(ra.has_value(), rb.has_value()) << "exactly one writer must win";
    const auto& loser = ra ? rb : ra;
    EXPECT_TRUE(loser.error().is_concurrency());
    EXPECT_EQ(loser.error().current_version, v + 1);
  }
  EXPECT_EQ(*run(store.stream_version("acct")), 21);
}

TEST_P(EsTest, ManyConcurrentAppendsAreGroupedAndAllLand) {
  EventStore store(db_);
  asio::io_context ctx;
  int ok = 0;
  for (int i = 0; i < 200; ++i) {
    asio::co_spawn(ctx, store.append("s-" + std::to_string(i % 20), events({"E"}), ExpectedVersion::any()),
                   [&](std::exception_ptr, AppendOutcome o) { ok += o.has_value() ? 1 : 0; });
  }
  ctx.run();
  EXPECT_EQ(ok, 200);
  auto all = run(store.read_all(0, 1000));
  ASSERT_EQ(all->size(), 200U);
  for (std::size_t i = 1; i < all->size(); ++i) EXPECT_LT((*all)[i - 1].position, (*all)[i].position);
  for (int s = 0; s < 20; ++s) {
    auto stream = run(store.read_stream("s-" + std::to_string(s)));
    ASSERT_EQ(stream->size(), 10U);
    for (std::size_t k = 0; k < stream->size(); ++k) EXPECT_EQ((*stream)[k].version, static_cast<std::int64_t>(k + 1));
  }
}

TEST_P(EsTest, ReadAllIsInGlobalOrderAcrossStreams) {
  EventStore store(db_);
  ASSERT_TRUE(run(store.append("a", events({"A1"}), ExpectedVersion::any())));
  ASSERT_TRUE(run(store.append("b", events({"B1", "B2"}), ExpectedVersion::any())));
  ASSERT_TRUE(run(store.append("a", events({"A2"}), ExpectedVersion::any())));
  auto all = run(store.read_all(0, 10));
  ASSERT_EQ(all->size(), 4U);
  EXPECT_EQ((*all)[0].event_type, "A1");
  EXPECT_EQ((*all)[1].event_type, "B1");
  EXPECT_EQ((*all)[3].event_type, "A2");
  auto after = run(store.read_all((*all)[1].position, 10));
  ASSERT_EQ(after->size(), 2U);
  EXPECT_EQ((*after)[0].event_type, "B2");
}

TEST_P(EsTest, HookRunsInTheSameTransaction) {
  ASSERT_TRUE(db_->transaction_blocking([](storage::Tx& tx) -> Result<bool> {
    auto r = tx.exec_script("CREATE TABLE side (event_id TEXT PRIMARY KEY)");
    if (!r) return fail(r.error());
    return true;
  }));
  bool fail_next = false;
  EventStore store(db_, [&](storage::Tx& tx, std::span<const RecordedEvent> recorded) -> Result<void> {
    for (const auto& e : recorded) {
      auto r = tx.exec("INSERT INTO side (event_id) VALUES ($1)", e.event_id);
      if (!r) return fail(std::move(r.error()));
    }
    if (fail_next) return fail(Errc::unavailable, "outbox full");
    return {};
  });
  ASSERT_TRUE(run(store.append("s", events({"A", "B"}), ExpectedVersion::any())));
  fail_next = true;
  auto r = run(store.append("s", events({"C"}), ExpectedVersion::any()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().error.message, "outbox full");
  auto count = db_->transaction_blocking([](storage::Tx& tx) -> Result<std::int64_t> {
    auto v = tx.query_value<std::int64_t>("SELECT COUNT(*) FROM side");
    if (!v) return fail(v.error());
    return v->value_or(-1);
  });
  EXPECT_EQ(*count, 2);                                       // the failed append left no side row
  EXPECT_EQ(run(store.read_stream("s"))->size(), 2U);         // and no event
}

TEST_P(EsTest, SnapshotsKeepTheNewest) {
  EventStore store(db_);
  EXPECT_FALSE(*run(store.load_snapshot("s")));
  ASSERT_TRUE(run(store.save_snapshot("s", {5, R"({"balance":10})"})));
  ASSERT_TRUE(run(store.save_snapshot("s", {3, R"({"balance":1})"})));  // older: ignored
  auto snap = *run(store.load_snapshot("s"));
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->version, 5);
  EXPECT_EQ(snap->state, R"({"balance":10})");
}

// A tiny aggregate: the rebuilt instance must equal the live one.
class Counter : public Aggregate<Counter> {
 public:
  explicit Counter(std::string id) : Aggregate(std::move(id)) {}
  Result<void> add(std::int64_t n) {
    if (n <= 0) return fail(Errc::invalid_argument, "must be positive");
    raise("Added", {{"n", n}});
    return {};
  }
  void when(std::string_view type, const json::object& data) {
    if (type == "Added") {
      total += data.at("n").as_int64();
      ++adds;
    }
  }
  std::int64_t total = 0;
  int adds = 0;
};

TEST_P(EsTest, RebuiltAggregateEqualsTheLiveOne) {
  EventStore store(db_);
  Counter live("counter-1");
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(live.add(i));
  EXPECT_FALSE(live.add(0));
  ASSERT_TRUE(run(save(store, live)));
  EXPECT_EQ(live.version(), 5);
  EXPECT_TRUE(live.pending_events().empty());
  auto rebuilt = run(load<Counter>(store, "counter-1"));
  ASSERT_TRUE(rebuilt);
  EXPECT_EQ(rebuilt->total, live.total);
  EXPECT_EQ(rebuilt->adds, live.adds);
  EXPECT_EQ(rebuilt->version(), live.version());
  // A stale copy cannot overwrite: its save conflicts.
  auto stale = run(load<Counter>(store, "counter-1"));
  ASSERT_TRUE(rebuilt->add(10));
  ASSERT_TRUE(run(save(store, *rebuilt)));
  ASSERT_TRUE(stale->add(1));
  auto r = run(save(store, *stale));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().current_version, 6);
}

// Saves counter `id` with `first` and caches it; then another writer (another instance, or
// a command that bypassed the cache) appends `later` to the stream.
void cache_then_append_elsewhere(EventStore& store, AggregateCache<Counter>& cache, const std::string& id,
                                 std::int64_t first, std::initializer_list<std::int64_t> later) {
  Counter a(id);
  ASSERT_TRUE(a.add(first));
  ASSERT_TRUE(run(save(store, a)));
  cache.remember(a);
  auto other = run(load<Counter>(store, id));
  for (auto n : later) ASSERT_TRUE(other->add(n));
  ASSERT_TRUE(run(save(store, *other)));
}

TEST_P(EsTest, CachedAggregatesCatchUpWithEventsAppendedElsewhere) {
  EventStore store(db_);
  AggregateCache<Counter> cache(2);
  ASSERT_NO_FATAL_FAILURE(cache_then_append_elsewhere(store, cache, "counter-a", 1, {10, 100}));
  auto cached = run(cache.load(store, "counter-a"));
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->total, 111);
  EXPECT_EQ(cached->adds, 3);
  EXPECT_EQ(cached->version(), 3);
  // A copy from the cache saves like any loaded aggregate, and a stale copy still conflicts.
  auto stale = run(cache.load(store, "counter-a"));
  ASSERT_TRUE(cached->add(5));
  cache.remember(*cached);  // pending events: not cached
  ASSERT_TRUE(run(save(store, *cached)));
  cache.remember(*cached);
  EXPECT_EQ(run(cache.load(store, "counter-a"))->total, 116);
  ASSERT_TRUE(stale->add(1));
  auto r = run(save(store, *stale));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().current_version, 4);
  // A stream that does not exist is not cached; the least recently used entry goes first.
  EXPECT_FALSE(run(cache.load(store, "counter-missing"))->version());
  EXPECT_EQ(cache.size(), 1u);
  for (std::string id : {"counter-b", "counter-c"}) {
    Counter c(id);
    ASSERT_TRUE(c.add(2));
    ASSERT_TRUE(run(save(store, c)));
    EXPECT_EQ(run(cache.load(store, id))->total, 2);
  }
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(run(cache.load(store, "counter-a"))->total, 116);  // evicted, rebuilt from the store
}

// load_in: the same catch-up inside a transaction of the caller's (with its other reads).
TEST_P(EsTest, CachedAggregatesLoadInsideTheCallersTransaction) {
  EventStore store(db_);
  AggregateCache<Counter> cache(4);
  ASSERT_NO_FATAL_FAILURE(cache_then_append_elsewhere(store, cache, "counter-tx", 2, {40}));
  auto loaded = db_->transaction_blocking(
      [&](storage::Tx& tx) { return cache.load_in(tx, "counter-tx"); }, storage::TxMode::read);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->total, 42);
  EXPECT_EQ(loaded->version(), 2);
  // Cached now at version 2: a missing stream is a fresh aggregate, and is not cached.
  auto missing = db_->transaction_blocking(
      [&](storage::Tx& tx) { return cache.load_in(tx, "counter-none"); }, storage::TxMode::read);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->version(), 0);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(run(cache.load(store, "counter-tx"))->total, 42);
}

// peek_in: inside a write transaction, the aggregate with that transaction's own appends,
// not cached -- the transaction may still roll back, and a cached state at a version that
// never committed would hide the events later stored at that version.
TEST_P(EsTest, APeekInsideAWriteTransactionCachesNothingItRead) {
  EventStore store(db_);
  AggregateCache<Counter> cache(4);
  ASSERT_NO_FATAL_FAILURE(cache_then_append_elsewhere(store, cache, "counter-peek", 1, {}));
  std::int64_t seen = 0;
  auto rolled_back = db_->transaction_blocking([&](storage::Tx& tx) -> Result<void> {
    std::vector<NewEvent> more{NewEvent::make("Added", json::object{{"n", 5}})};
    if (auto r = store.append_in(tx, "counter-peek", more, ExpectedVersion::exact(1)); !r) return fail(r.error().error);
    auto peeked = cache.peek_in(tx, "counter-peek");
    if (!peeked) return fail(std::move(peeked.error()));
    seen = peeked->total;
    return fail(Errc::conflict, "the command changed its mind");
  });
  ASSERT_FALSE(rolled_back);
  EXPECT_EQ(seen, 6);  // its own append, uncommitted
  Counter other("counter-peek");
  other.load(*run(store.read_stream("counter-peek")));
  ASSERT_TRUE(other.add(100));
  ASSERT_TRUE(run(save(store, other)));  // version 2, committed this time
  auto loaded = run(cache.load(store, "counter-peek"));
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->total, 101);
  EXPECT_EQ(loaded->version(), 2);
}

INSTANTIATE_TEST_SUITE_P(Backends, EsTest, testing::all_backends(),
                         testing::backend_name);

}  // namespace
}  // namespace mercado::es
