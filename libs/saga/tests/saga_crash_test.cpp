// A real child process is SIGKILLed at every step boundary in turn and restarted: every
// saga must reach a terminal state and every effect must have happened exactly once
// (completed sagas moved the ledger by +10 per step; compensated ones by 0 net).
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <iostream>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/core/process.hpp>
#include <mercado/storage/database.hpp>

#include "scratch_database.hpp"

namespace mercado::saga {
namespace {

using storage::testing::Backend;
using namespace std::chrono_literals;

class SagaCrashTest : public ::testing::TestWithParam<Backend> {};

std::map<std::string, std::int64_t> ledger(const std::string& path) {
  core::BlockingPool pool(1);
  auto db = storage::open_database("sqlite://" + path, pool);
  auto r = (*db)->transaction_blocking([](storage::Tx& tx) -> Result<std::map<std::string, std::int64_t>> {
    auto rows = tx.query("SELECT name, value FROM ledger");
    if (!rows) return fail(rows.error());
    std::map<std::string, std::int64_t> out;
    for (const auto& row : *rows) out[row.get<std::string>(0)] = row.get<std::int64_t>(1);
    return out;
  });
  return *r;
}

TEST_P(SagaCrashTest, KilledAtEachBoundaryAndRestartedEverySagaFinishesAndEffectsHappenOnce) {
  constexpr int kSagas = 4;  // fail_at 0, 1, 2 (compensated) and 3 (completed)
  // Every forward checkpoint mode, with the fewest boundaries it must have exercised: 4 sagas
  // x (3 forward steps and their compensations) x up to 3 boundaries each (before, after,
  // persisted; the last step's transition also ends its saga, so the terminal states add
  // none; deferred forward successes add no "persisted" boundary).
  for (auto [mode, fewest] : {std::pair{"awaited", 35}, std::pair{"background", 35}, std::pair{"deferred", 30}}) {
  SCOPED_TRACE(std::string("forward checkpoints: ") + mode);
  int crash_at = 1;
  for (;; ++crash_at) {
    std::optional<storage::testing::ScratchDatabase> scratch;
    MERCADO_SCRATCH_OR_SKIP(scratch, GetParam());
    storage::testing::ScratchDir dir;
    const std::string ledger_path = dir.path() + "/ledger.db";
    auto args = std::vector<std::string>{scratch->url(), ledger_path, std::to_string(kSagas)};
    auto crashing = core::Process::spawn({.path = SAGA_CRASH_WORKER, .args = args,
                                          .env = {{"CRASH_AT", std::to_string(crash_at)}, {"LOG_LEVEL", "off"},
                                                  {"FORWARD_CHECKPOINT", mode}},
                                          .output_path = dir.path() + "/crash.log"});
    ASSERT_TRUE(crashing);
    auto status = crashing->wait_for(120s);
    ASSERT_TRUE(status) << "worker hung at boundary " << crash_at;
    if (*status == 0) break;  // crash_at is past the last boundary: everything ran
    ASSERT_EQ(*status, 128 + SIGKILL) << "crash_at " << crash_at;

    auto recovery = core::Process::spawn({.path = SAGA_CRASH_WORKER, .args = args,
                                          .env = {{"FORWARD_CHECKPOINT", mode}},
                                          .output_path = dir.path() + "/recover.log"});
    ASSERT_TRUE(recovery);
    ASSERT_EQ(recovery->wait_for(120s), 0) << "recovery after a kill at boundary " << crash_at;
    // Saga 3 completed all three steps (+10 each); sagas 0..2 were compensated (net 0).
    auto l = ledger(ledger_path);
    EXPECT_EQ(l["reserve"], 10) << "crash_at " << crash_at;
    EXPECT_EQ(l["charge"], 10) << "crash_at " << crash_at;
    EXPECT_EQ(l["ship"], 10) << "crash_at " << crash_at;
    ASSERT_LT(crash_at, 500) << "the worker never finished without crashing";
  }
  EXPECT_GT(crash_at, fewest) << "too few boundaries were exercised";
  std::cout << "killed and recovered at " << crash_at - 1 << " boundaries (forward checkpoints: " << mode << ")\n";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, SagaCrashTest, ::testing::Values(Backend::sqlite, Backend::postgres),
                         [](const auto& p) { return storage::testing::to_string(p.param); });

}  // namespace
}  // namespace mercado::saga
