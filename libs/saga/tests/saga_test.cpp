#include <mercado/saga/saga.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <map>
#include <mutex>

#include "saga_fixture.hpp"

namespace mercado::saga {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using testing::run;
using testing::SagaTest;
using namespace std::chrono_literals;

// Records every call, and by idempotency key how many times each effect was requested.
struct Journal {
  std::mutex m;
  std::vector<std::string> calls;
  std::map<std::string, int> by_key;
  void record(const StepContext& c, std::string_view what) {
    std::lock_guard lock(m);
    calls.push_back(std::string(what));
    ++by_key[c.idempotency_key];
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(m);
    return calls;
  }
};

// A saga of `n` steps; `fail_at` makes that step fail definitively (-1: none).
Definition make_saga(Journal& j, int n, int fail_at) {
  Definition d{"test", {}};
  d.initial_backoff = 1ms;
  d.max_backoff = 5ms;
  for (int i = 0; i < n; ++i) {
    std::string name = "s" + std::to_string(i);
    d.steps.push_back(Step{
        name,
        [&j, i, fail_at, name](const StepContext& c) -> asio::awaitable<StepResult> {
          if (i == fail_at) {
            j.record(c, name + ":refused");
            co_return StepResult::failed("no stock");
          }
          j.record(c, name);
          co_return StepResult::ok({{name + "_id", name + "-" + c.saga_id}});
        },
        [&j, name](const StepContext& c) -> asio::awaitable<StepResult> {
          j.record(c, "undo " + name);
          co_return StepResult::ok();
        }});
  }
  return d;
}

TEST_P(SagaTest, HappyPathRunsEveryStepAndMergesOutputs) {
  Journal j;
  Orchestrator o(db_, ctx_.get_executor(), {.metrics = &metrics_});
  o.define(make_saga(j, 3, -1));
  auto started = run(o.start("test", "saga-1", {{"order_id", "o-1"}}));
  ASSERT_TRUE(started) << started.error().message;
  auto done = run(o.wait("saga-1", 20s));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, Status::completed);
  EXPECT_EQ(j.snapshot(), (std::vector<std::string>{"s0", "s1", "s2"}));
  auto full = *run(o.get("saga-1"));
  ASSERT_TRUE(full);
  EXPECT_EQ(full->data.at("order_id").as_string(), "o-1");
  EXPECT_EQ(full->data.at("s2_id").as_string(), "s2-saga-1");
  ASSERT_GE(full->history.size(), 5U);
  EXPECT_EQ(full->history.front().event, "started");
  EXPECT_EQ(full->history.back().event, "completed");
  EXPECT_EQ(metrics_.counter("saga_finished_total", "", {"type", "outcome"}).with({"test", "completed"}).value(), 1U);
}

TEST_P(SagaTest, FailingEachStepInTurnCompensatesExactlyTheCompletedStepsInReverse) {
  for (int fail_at = 0; fail_at < 4; ++fail_at) {
    Journal j;
    Orchestrator o(db_, ctx_.get_executor(), {.metrics = &metrics_});
    o.define(make_saga(j, 4, fail_at));
    std::string id = "saga-fail-" + std::to_string(fail_at);
    ASSERT_TRUE(run(o.start("test", id, {})));
    auto done = run(o.wait(id, 20s));
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, Status::compensated);
    EXPECT_EQ(done->failure, "s" + std::to_string(fail_at) + ": no stock");
    std::vector<std::string> want;
    for (int i = 0; i < fail_at; ++i) want.push_back("s" + std::to_string(i));
    want.push_back("s" + std::to_string(fail_at) + ":refused");
    for (int i = fail_at - 1; i >= 0; --i) want.push_back("undo s" + std::to_string(i));
    EXPECT_EQ(j.snapshot(), want) << "failing step " << fail_at;
  }
}

TEST_P(SagaTest, TransientFailuresAreRetriedWithTheSameIdempotencyKey) {
  Journal j;
  std::atomic<int> calls{0};
  Definition d{"flaky", {}};
  d.initial_backoff = 1ms;
  d.max_attempts = 5;
  d.steps.push_back(Step{"pay", [&](const StepContext& c) -> asio::awaitable<StepResult> {
                           j.record(c, "pay");
                           if (++calls < 3) co_return StepResult::retry("timeout");
                           co_return StepResult::ok();
                         }, {}});
  Orchestrator o(db_, ctx_.get_executor(), {.metrics = &metrics_});
  o.define(d);
  ASSERT_TRUE(run(o.start("flaky", "f-1", {})));
  auto done = run(o.wait("f-1", 20s));
  EXPECT_EQ(done->status, Status::completed);
  EXPECT_EQ(j.by_key.size(), 1U);
  EXPECT_EQ(j.by_key["f-1:pay"], 3);  // three calls, one key: the callee applies it once
}

TEST_P(SagaTest, GivingUpOnAnUncertainStepCompensatesItToo) {
  Journal j;
  Definition d{"uncertain", {}};
  d.initial_backoff = 1ms;
  d.max_attempts = 2;
  d.steps.push_back(Step{"reserve", [&](const StepContext& c) -> asio::awaitable<StepResult> {
                           j.record(c, "reserve");
                           co_return StepResult::ok();
                         }, [&](const StepContext& c) -> asio::awaitable<StepResult> {
                           j.record(c, "release");
                           co_return StepResult::ok();
                         }});
  d.steps.push_back(Step{"pay", [&](const StepContext& c) -> asio::awaitable<StepResult> {
                           j.record(c, "pay");
                           throw std::runtime_error("connection reset");  // counts as retry
                           co_return StepResult::ok();
                         }, [&](const StepContext& c) -> asio::awaitable<StepResult> {
                           j.record(c, "refund");
                           co_return StepResult::ok();
                         }});
  Orchestrator o(db_, ctx_.get_executor(), {.metrics = &metrics_});
  o.define(d);
  ASSERT_TRUE(run(o.start("uncertain", "u-1", {})));
  auto done = run(o.wait("u-1", 20s));
  EXPECT_EQ(done->status, Status::compensated);
  EXPECT_EQ(j.snapshot(), (std::vector<std::string>{"reserve", "pay", "pay", "refund", "release"}));
  EXPECT_NE(done->failure.find("gave up after 2 attempts"), std::string::npos) << done->failure;
}

TEST_P(SagaTest, CompensationsRetryUntilTheySucceedAndStuckSagasAreVisible) {
  Journal j;
  std::atomic<int> refunds{0};
  Definition d{"stubborn", {}};
  d.initial_backoff = 1ms;
  d.max_backoff = 2ms;
  d.steps.push_back(Step{"pay", [&](const StepContext& c) -> asio::awaitable<StepResult> {
                           j.record(c, "pay");
                           co_return StepResult::ok();
                         }, [&](const StepContext& c) -> asio::awaitable<StepResult> {
                           j.record(c, "refund");
                           if (++refunds < 6) co_return StepResult::retry("payments down");
                           co_return StepResult::ok();
                         }});
  d.steps.push_back(Step{"ship", [&](const StepContext& c) -> asio::awaitable<StepResult> {
                           j.record(c, "ship");
                           co_return StepResult::failed("address unreachable");
                         }, {}});
  double max_stuck = 0;
  Orchestrator o(db_, ctx_.get_executor(), {.stuck_after = 3, .metrics = &metrics_, .on_boundary = [&](std::string_view) {
                                              max_stuck = std::max(max_stuck, metrics_.gauge("saga_stuck", "", {"type"})
                                                                                  .with({"stubborn"}).value());
                                            }});
  o.define(d);
  ASSERT_TRUE(run(o.start("stubborn", "st-1", {})));
  auto done = run(o.wait("st-1", 20s));
  EXPECT_EQ(done->status, Status::compensated);
  EXPECT_EQ(refunds.load(), 6);
  EXPECT_EQ(max_stuck, 1.0);  // it was reported stuck while the refund kept failing
  EXPECT_EQ(metrics_.gauge("saga_stuck", "", {"type"}).with({"stubborn"}).value(), 0.0);  // and cleared
  auto full = *run(o.get("st-1"));
  int failures = 0;
  for (const auto& h : full->history) failures += h.event == "compensation_failed" ? 1 : 0;
  EXPECT_EQ(failures, 5);
}

TEST_P(SagaTest, StartingTheSameSagaTwiceRunsItOnce) {
  Journal j;
  Orchestrator o(db_, ctx_.get_executor(), {.metrics = &metrics_});
  o.define(make_saga(j, 2, -1));
  ASSERT_TRUE(run(o.start("test", "dup", {{"n", 1}})));
  auto again = run(o.start("test", "dup", {{"n", 2}}));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->data.at("n").as_int64(), 1);  // the first start's input stands
  ASSERT_EQ(run(o.wait("dup", 20s))->status, Status::completed);
  EXPECT_EQ(j.snapshot().size(), 2U);
  EXPECT_FALSE(run(o.start("other-type", "dup", {})));
}

TEST_P(SagaTest, ManySagasRunConcurrently) {
  Journal j;
  Orchestrator o(db_, ctx_.get_executor(), {.metrics = &metrics_});
  o.define(make_saga(j, 3, -1));
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(run(o.start("test", "many-" + std::to_string(i), {})));
  for (int i = 0; i < 60; ++i) {
    auto s = run(o.wait("many-" + std::to_string(i), 60s));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->status, Status::completed) << i;
  }
  EXPECT_EQ(j.snapshot().size(), 180U);
  auto completed = run(o.list(Status::completed, 1000));
  EXPECT_EQ(completed->size(), 60U);
}

TEST_P(SagaTest, ACrashedDriverResumesAndEveryEffectHappensOnce) {
  // The driver "crashes" (its coroutine dies) right after a step ran and before the
  // transition was persisted; a new orchestrator (same instance id) resumes the saga.
  Journal j;
  {
    Orchestrator crashing(db_, ctx_.get_executor(), {.owner = "order-service-1", .metrics = &metrics_,
                                                     .on_boundary = [](std::string_view b) {
                                                       if (b == "after:s1") throw std::runtime_error("power cut");
                                                     }});
    crashing.define(make_saga(j, 3, -1));
    ASSERT_TRUE(run(crashing.start("test", "crash-1", {})));
    auto state = run(crashing.wait("crash-1", 2s));  // never finishes
    EXPECT_EQ(state->status, Status::running);
    EXPECT_EQ(state->step, 1);  // s1 ran but its success was not persisted
  }
  Orchestrator restarted(db_, ctx_.get_executor(), {.owner = "order-service-1", .metrics = &metrics_});
  restarted.define(make_saga(j, 3, -1));
  EXPECT_EQ(*run(restarted.resume_all()), 1U);
  auto done = run(restarted.wait("crash-1", 20s));
  EXPECT_EQ(done->status, Status::completed);
  // s1 was called twice with the same key, so an idempotent callee applied it once.
  EXPECT_EQ(j.by_key["crash-1:s0"], 1);
  EXPECT_EQ(j.by_key["crash-1:s1"], 2);
  EXPECT_EQ(j.by_key["crash-1:s2"], 1);
}

TEST_P(SagaTest, WriteBehindKeepsTransitionsInOrderAndACrashRepeatsOnlyIdempotentSteps) {
  Journal j;
  {
    // Many sagas at once: every one completes with its history in step order.
    Orchestrator o(db_, ctx_.get_executor(), {.forward_checkpoint = ForwardCheckpoint::background, .metrics = &metrics_});
    o.define(make_saga(j, 3, -1));
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(run(o.start("test", "wb-" + std::to_string(i), {})));
    for (int i = 0; i < 20; ++i) {
      auto s = run(o.wait("wb-" + std::to_string(i), 60s));
      ASSERT_TRUE(s);
      ASSERT_EQ(s->status, Status::completed) << i;
      std::vector<std::string> events;
      for (const auto& h : s->history) events.push_back(h.event + ":" + h.step);
      EXPECT_EQ(events, (std::vector<std::string>{"started:", "step_succeeded:s0", "step_succeeded:s1",
                                                  "step_succeeded:s2", "completed:"}))
          << i;
    }
  }
  {
    // A crash after s2's call: s0's and s1's successes may not be stored yet, so they may
    // run again, but with the same keys, and the saga completes.
    Orchestrator crashing(db_, ctx_.get_executor(), {.owner = "wb-owner", .forward_checkpoint = ForwardCheckpoint::background,
                                                     .metrics = &metrics_, .on_boundary = [](std::string_view b) {
                                                       if (b == "after:s2") throw std::runtime_error("power cut");
                                                     }});
    crashing.define(make_saga(j, 3, -1));
    ASSERT_TRUE(run(crashing.start("test", "wb-crash", {})));
    auto state = run(crashing.wait("wb-crash", 2s));
    EXPECT_EQ(state->status, Status::running);
    EXPECT_GE(state->step, 1);  // at most one transition behind: s1's success is stored
  }
  Orchestrator restarted(db_, ctx_.get_executor(), {.owner = "wb-owner", .metrics = &metrics_});
  restarted.define(make_saga(j, 3, -1));
  EXPECT_EQ(*run(restarted.resume_all()), 1U);
  EXPECT_EQ(run(restarted.wait("wb-crash", 20s))->status, Status::completed);
  EXPECT_EQ(j.by_key["wb-crash:s0"], 1);
  EXPECT_LE(j.by_key["wb-crash:s1"], 2);
  EXPECT_EQ(j.by_key["wb-crash:s2"], 2);
}

TEST_P(SagaTest, DeferredCheckpointsWriteOnlyAtTheEndsShowLiveProgressAndACrashRepeatsIdempotentSteps) {
  auto history_rows = [&](const std::string& id) {
    auto n = db_->transaction_blocking([&](storage::Tx& tx) {
      return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM saga_history WHERE saga_id = $1", id);
    });
    return n ? n->value_or(-1) : -1;
  };
  Journal j;
  {
    // While s2 runs, get() shows s0's and s1's successes, which are not stored yet.
    Orchestrator o(db_, ctx_.get_executor(), {.forward_checkpoint = ForwardCheckpoint::deferred, .metrics = &metrics_});
    auto def = make_saga(j, 3, -1);
    std::optional<State> seen_during_s2;
    std::int64_t stored_during_s2 = -1;
    auto s2 = def.steps[2].action;
    def.steps[2].action = [&, s2](const StepContext& c) -> asio::awaitable<StepResult> {
      if (c.saga_id == "deferred-1") {
        auto now = co_await o.get(c.saga_id);
        if (now && *now) seen_during_s2 = **now;
        stored_during_s2 = history_rows(c.saga_id);
      }
      co_return co_await s2(c);
    };
    o.define(def);
    for (int i = 1; i <= 20; ++i) ASSERT_TRUE(run(o.start("test", "deferred-" + std::to_string(i), {})));
    for (int i = 1; i <= 20; ++i) {
      auto s = run(o.wait("deferred-" + std::to_string(i), 60s));
      ASSERT_TRUE(s);
      ASSERT_EQ(s->status, Status::completed) << i;
      std::vector<std::string> events;
      for (const auto& h : s->history) events.push_back(h.event + ":" + h.step);
      EXPECT_EQ(events, (std::vector<std::string>{"started:", "step_succeeded:s0", "step_succeeded:s1",
                                                  "step_succeeded:s2", "completed:"}))
          << i;
      EXPECT_EQ(s->data.at("s1_id").as_string(), "s1-deferred-" + std::to_string(i));
    }
    ASSERT_TRUE(seen_during_s2);
    EXPECT_EQ(seen_during_s2->status, Status::running);
    EXPECT_EQ(seen_during_s2->step, 2);
    EXPECT_EQ(seen_during_s2->data.at("s1_id").as_string(), "s1-deferred-1");
    EXPECT_EQ(seen_during_s2->data.at("s0_id").as_string(), "s0-deferred-1");  // both deferred outputs
    EXPECT_FALSE(seen_during_s2->data.contains("s2_id"));
    std::vector<std::string> live;
    for (const auto& h : seen_during_s2->history) live.push_back(h.event + ":" + h.step);
    EXPECT_EQ(live, (std::vector<std::string>{"started:", "step_succeeded:s0", "step_succeeded:s1"}));
    EXPECT_EQ(stored_during_s2, 1);  // only "started" was written before the end
  }
  {
    // A crash after s2's call: nothing after the creation was stored, so s0 and s1 run again
    // (same keys) and the saga completes.
    Orchestrator crashing(db_, ctx_.get_executor(), {.owner = "deferred-owner",
                                                     .forward_checkpoint = ForwardCheckpoint::deferred,
                                                     .metrics = &metrics_, .on_boundary = [](std::string_view b) {
                                                       if (b == "after:s2") throw std::runtime_error("power cut");
                                                     }});
    crashing.define(make_saga(j, 3, -1));
    ASSERT_TRUE(run(crashing.start("test", "deferred-crash", {})));
    auto state = run(crashing.wait("deferred-crash", 2s));
    EXPECT_EQ(state->status, Status::running);
    EXPECT_EQ(state->step, 0);  // the driver died: its unstored progress is not shown either
    EXPECT_EQ(state->history.size(), 1U);
  }
  Orchestrator restarted(db_, ctx_.get_executor(), {.owner = "deferred-owner",
                                                    .forward_checkpoint = ForwardCheckpoint::deferred,
                                                    .metrics = &metrics_});
  restarted.define(make_saga(j, 3, -1));
  EXPECT_EQ(*run(restarted.resume_all()), 1U);
  EXPECT_EQ(run(restarted.wait("deferred-crash", 20s))->status, Status::completed);
  EXPECT_EQ(j.by_key["deferred-crash:s0"], 2);
  EXPECT_EQ(j.by_key["deferred-crash:s1"], 2);
  EXPECT_EQ(j.by_key["deferred-crash:s2"], 2);
}

TEST_P(SagaTest, DeferredCheckpointsStoreTheProgressWithAFailureAndCompensate) {
  Journal j;
  Orchestrator o(db_, ctx_.get_executor(), {.forward_checkpoint = ForwardCheckpoint::deferred, .metrics = &metrics_});
  o.define(make_saga(j, 4, 2));
  ASSERT_TRUE(run(o.start("test", "deferred-fail", {})));
  auto done = run(o.wait("deferred-fail", 20s));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, Status::compensated);
  EXPECT_EQ(j.snapshot(), (std::vector<std::string>{"s0", "s1", "s2:refused", "undo s1", "undo s0"}));
  std::vector<std::string> events;
  for (const auto& h : done->history) events.push_back(h.event + ":" + h.step);
  EXPECT_EQ(events, (std::vector<std::string>{"started:", "step_succeeded:s0", "step_succeeded:s1", "step_failed:s2",
                                              "compensated_step:s1", "compensated_step:s0", "compensated:"}));
}

TEST_P(SagaTest, TheCompletionHookCommitsWithTheTerminalStateAndARefusalRetriesTheLastStep) {
  ASSERT_TRUE(db_->transaction_blocking([](storage::Tx& tx) -> Result<void> {
    auto r = tx.exec_script("CREATE TABLE concluded (saga_id TEXT PRIMARY KEY, steps_seen BIGINT NOT NULL)");
    if (!r) return r;
    return {};
  }));
  Journal j;
  std::atomic<int> hook_calls{0};
  Orchestrator o(db_, ctx_.get_executor(), {.forward_checkpoint = ForwardCheckpoint::background, .metrics = &metrics_});
  auto def = make_saga(j, 2, -1);
  def.on_completed = [&](storage::Tx& tx, const State& s) -> Result<void> {
    if (++hook_calls == 1) return fail(Errc::unavailable, "not yet");  // the first attempt is refused
    auto r = tx.exec("INSERT INTO concluded (saga_id, steps_seen) VALUES ($1, $2)", s.id, std::int64_t{s.step});
    if (!r) return fail(std::move(r.error()));
    return {};
  };
  o.define(def);
  ASSERT_TRUE(run(o.start("test", "hooked", {})));
  auto done = run(o.wait("hooked", 20s));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, Status::completed);
  EXPECT_EQ(hook_calls.load(), 2);
  EXPECT_EQ(j.by_key["hooked:s0"], 1);
  EXPECT_EQ(j.by_key["hooked:s1"], 2);  // the last step ran again after the refusal
  auto rows = db_->transaction_blocking([](storage::Tx& tx) {
    return tx.query_value<std::int64_t>("SELECT steps_seen FROM concluded WHERE saga_id = 'hooked'");
  });
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->value_or(-1), 2);
}

TEST_P(SagaTest, ASagaLeasedByAnotherLiveInstanceIsNotTakenOver) {
  Journal j;
  core::ManualClock clock;
  auto def = make_saga(j, 1, -1);
  {
    Orchestrator a(db_, ctx_.get_executor(), {.owner = "a", .lease = 30s, .metrics = &metrics_, .clock = &clock,
                                              .on_boundary = [](std::string_view b) {
                                                if (b == "before:s0") throw std::runtime_error("a dies");
                                              }});
    a.define(def);
    ASSERT_TRUE(run(a.start("test", "leased", {})));
    run(a.wait("leased", 1s));
  }
  Orchestrator b(db_, ctx_.get_executor(), {.owner = "b", .lease = 30s, .metrics = &metrics_, .clock = &clock});
  b.define(def);
  EXPECT_EQ(*run(b.resume_all()), 0U);  // a's lease is still valid
  clock.advance(31s);
  EXPECT_EQ(*run(b.resume_all()), 1U);
  EXPECT_EQ(run(b.wait("leased", 20s))->status, Status::completed);
}

INSTANTIATE_TEST_SUITE_P(Backends, SagaTest, ::testing::Values(testing::Backend::sqlite, testing::Backend::postgres),
                         testing::backend_name);

}  // namespace
}  // namespace mercado::saga
