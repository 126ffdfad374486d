#include <mercado/eventsourcing/projection.hpp>

#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <thread>

#include "es_fixture.hpp"

namespace mercado::es {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using testing::EsTest;
using testing::run;

// Read model: how many events of each type, plus the sum of their "n".
class TypeCounts final : public Projection {
 public:
  std::string_view name() const override { return "type-counts"; }
  Result<void> apply(storage::Tx& tx, const RecordedEvent& e) override {
    auto r = tx.exec(
        "INSERT INTO type_counts (type, n, total) VALUES ($1, 1, $2) "
        "ON CONFLICT (type) DO UPDATE SET n = type_counts.n + 1, total = type_counts.total + excluded.total",
        e.event_type, e.json().at("n").as_int64());
    if (!r) return fail(std::move(r.error()));
    return {};
  }
  Result<void> reset(storage::Tx& tx) override {
    auto r = tx.exec("DELETE FROM type_counts");
    if (!r) return fail(std::move(r.error()));
    return {};
  }
};

class ProjectionTest : public EsTest {
 protected:
  void SetUp() override {
    EsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(db_->transaction_blocking([](storage::Tx& tx) -> Result<bool> {
      auto r = tx.exec_script("CREATE TABLE type_counts (type TEXT PRIMARY KEY, n BIGINT NOT NULL, total BIGINT NOT NULL)");
      if (!r) return fail(r.error());
      return true;
    }));
    store_.emplace(db_);
  }
  void append(const std::string& stream, const std::string& type, std::int64_t n) {
    auto r = run(store_->append(stream, {NewEvent::make(type, json::object{{"n", n}})}, ExpectedVersion::any()));
    ASSERT_TRUE(r) << r.error().error.message;
  }
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> counts() {
    auto r = db_->transaction_blocking([](storage::Tx& tx) -> Result<std::map<std::string, std::pair<std::int64_t, std::int64_t>>> {
      auto rows = tx.query("SELECT type, n, total FROM type_counts");
      if (!rows) return fail(rows.error());
      std::map<std::string, std::pair<std::int64_t, std::int64_t>> out;
      for (const auto& row : *rows) out[row.get<std::string>(0)] = {row.get<std::int64_t>(1), row.get<std::int64_t>(2)};
      return out;
    });
    return *r;
  }
  std::optional<EventStore> store_;
  TypeCounts projection_;
};

TEST_P(ProjectionTest, CatchUpAppliesEveryEventOnceAndCheckpoints) {
  for (int i = 1; i <= 7; ++i) append("s" + std::to_string(i % 2), i % 3 == 0 ? "Big" : "Small", i);
  ProjectionRunner runner(*store_, projection_, {.batch = 3});
  auto cp = run(runner.catch_up());
  ASSERT_TRUE(cp);
  auto c = counts();
  EXPECT_EQ(c["Big"], std::make_pair(std::int64_t{2}, std::int64_t{9}));
  EXPECT_EQ(c["Small"], std::make_pair(std::int64_t{5}, std::int64_t{19}));
  auto again = run(runner.catch_up());  // nothing new: nothing changes
  EXPECT_EQ(*again, *cp);
  EXPECT_EQ(counts(), c);
}

TEST_P(ProjectionTest, ACrashBetweenReadModelWriteAndCheckpointNeverAppliesTwice) {
  for (int i = 1; i <= 10; ++i) append("s", "E", i);
  // Crash at each batch boundary in turn: before the k-th checkpoint write.
  for (int crash_at = 1; crash_at <= 4; ++crash_at) {
    int batches = 0;
    ProjectionRunner crashing(*store_, projection_, {.batch = 3, .before_checkpoint = [&](std::int64_t) {
                                                       if (++batches == crash_at) throw std::runtime_error("crash");
                                                     }});
    EXPECT_THROW(run(crashing.catch_up()), std::runtime_error);
    ProjectionRunner restarted(*store_, projection_, {.batch = 3});
    ASSERT_TRUE(run(restarted.catch_up()));
    EXPECT_EQ(counts()["E"], std::make_pair(std::int64_t{10}, std::int64_t{55})) << "crash at batch " << crash_at;
    // Reset for the next round.
    ASSERT_TRUE(run(restarted.rebuild()));
    ASSERT_TRUE(db_->transaction_blocking([&](storage::Tx& tx) -> Result<bool> {
      if (auto r = projection_.reset(tx); !r) return fail(r.error());
      auto d = tx.exec("DELETE FROM es_checkpoints");
      if (!d) return fail(d.error());
      return true;
    }));
  }
}

TEST_P(ProjectionTest, RebuildFromZeroGivesTheSameReadModel) {
  for (int i = 1; i <= 6; ++i) append("s", i % 2 ? "Odd" : "Even", i);
  ProjectionRunner runner(*store_, projection_);
  ASSERT_TRUE(run(runner.catch_up()));
  auto before = counts();
  // Corrupt the read model, then rebuild.
  ASSERT_TRUE(db_->transaction_blocking([](storage::Tx& tx) -> Result<bool> {
    auto r = tx.exec("UPDATE type_counts SET n = 999");
    if (!r) return fail(r.error());
    return true;
  }));
  auto cp = run(runner.rebuild());
  ASSERT_TRUE(cp);
  EXPECT_EQ(counts(), before);
}

TEST_P(ProjectionTest, InlineProjectionCommitsWithTheAppendAndAppliesEarlierEventsFirst) {
  // Two events appended before the projection was inline (no hook): the first inline
  // append applies them, then its own.
  append("a-1", "Opened", 1);
  append("a-1", "Deposited", 10);
  ProjectionRunner* inline_runner = nullptr;
  bool refuse = false;
  // The hook hands the runner the appended events: applied as given when the checkpoint is
  // just before them, else read from the store from the checkpoint on.
  EventStore hooked(db_, [&](storage::Tx& tx, std::span<const RecordedEvent> appended) -> Result<void> {
    if (refuse) return fail(Errc::unavailable, "refused");
    return inline_runner->catch_up_in(tx, appended);
  });
  ProjectionRunner runner(hooked, projection_);
  inline_runner = &runner;
  auto r = run(hooked.append("a-2", {NewEvent::make("Deposited", json::object{{"n", 5}})}, ExpectedVersion::any()));
  ASSERT_TRUE(r) << r.error().error.message;
  // Read your writes at once, with no runner running.
  EXPECT_EQ(counts(), (std::map<std::string, std::pair<std::int64_t, std::int64_t>>{{"Deposited", {2, 15}},
                                                                                      {"Opened", {1, 1}}}));
  EXPECT_EQ(runner.checkpoint(), r->last_position);
  EXPECT_TRUE(run(runner.wait_for(r->last_position, std::chrono::milliseconds(1))));
  for (int i = 0; i < 300; ++i) {  // each append applied inline, past one batch size in all
    ASSERT_TRUE(run(hooked.append("a-3", {NewEvent::make("Deposited", json::object{{"n", 1}})}, ExpectedVersion::any())));
  }
  EXPECT_EQ(counts()["Deposited"], (std::pair<std::int64_t, std::int64_t>{302, 315}));
  // A catch-up running while inline appends commit (as at a service's start-up) applies
  // nothing twice: both take the store's append lock around checkpoint and apply.
  std::atomic<bool> appending{true};
  std::thread catcher([&] {
    while (appending) EXPECT_TRUE(run(runner.catch_up()));
  });
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(run(hooked.append("a-5", {NewEvent::make("Deposited", json::object{{"n", 2}})}, ExpectedVersion::any())));
  }
  appending = false;
  catcher.join();
  EXPECT_EQ(counts()["Deposited"], (std::pair<std::int64_t, std::int64_t>{402, 515}));
  // A hook that fails undoes the append and the read model's change together.
  refuse = true;
  auto refused = run(hooked.append("a-4", {NewEvent::make("Opened", json::object{{"n", 7}})}, ExpectedVersion::any()));
  EXPECT_FALSE(refused);
  refuse = false;
  EXPECT_EQ(counts()["Opened"], (std::pair<std::int64_t, std::int64_t>{1, 1}));
  // The stored checkpoint is the runner's: a catch-up finds nothing to do, a rebuild gives
  // the same read model.
  const auto before = counts();
  auto cp = run(runner.catch_up());
  ASSERT_TRUE(cp);
  EXPECT_EQ(counts(), before);
  ASSERT_TRUE(run(runner.rebuild()));
  EXPECT_EQ(counts(), before);
}

TEST_P(ProjectionTest, FollowsLiveAppends) {
  ProjectionRunner runner(*store_, projection_, {.poll = std::chrono::seconds(60)});
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  asio::co_spawn(ctx, runner.run(), asio::detached);
  std::thread io([&] { ctx.run(); });
  append("live", "Tick", 1);
  append("live", "Tick", 2);
  auto last = run(store_->read_all(0, 100))->back().position;
  // The notifier wakes the runner at once (the 60 s poll would fail this wait).
  bool reached = run(runner.wait_for(last, std::chrono::seconds(20)));
  EXPECT_TRUE(reached);
  EXPECT_EQ(counts()["Tick"], std::make_pair(std::int64_t{2}, std::int64_t{3}));
  runner.stop();
  guard.reset();
  io.join();
}

INSTANTIATE_TEST_SUITE_P(Backends, ProjectionTest,
                         testing::all_backends(), testing::backend_name);

}  // namespace
}  // namespace mercado::es
