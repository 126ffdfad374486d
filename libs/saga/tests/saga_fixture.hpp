#pragma once
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <optional>
#include <thread>

#include <mercado/saga/saga.hpp>
#include <mercado/storage/migrations.hpp>

#include "scratch_database.hpp"

namespace mercado::saga::testing {

using storage::testing::Backend;

template <class T>
T run(boost::asio::awaitable<T> a) {
  boost::asio::io_context ctx;
  std::optional<T> out;
  std::exception_ptr error;
  boost::asio::co_spawn(
      ctx, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(a)); },
      [&](std::exception_ptr e) { error = e; });
  ctx.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

// A scratch database and an io thread on which orchestrators drive their sagas.
class SagaTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    MERCADO_SCRATCH_OR_SKIP(scratch_, GetParam());
    auto db = storage::open_database(scratch_->url(), pool_);
    ASSERT_TRUE(db) << db.error().message;
    db_ = *db;
    ASSERT_TRUE(storage::migrate_blocking(*db_, "mercado_saga", Orchestrator::migrations()));
    io_ = std::thread([this] { ctx_.run(); });
  }
  void TearDown() override {
    guard_.reset();
    if (io_.joinable()) io_.join();
  }

  std::optional<storage::testing::ScratchDatabase> scratch_;
  core::BlockingPool pool_{4};
  std::shared_ptr<storage::Database> db_;
  boost::asio::io_context ctx_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_ = boost::asio::make_work_guard(ctx_);
  std::thread io_;
  obs::Registry metrics_;
};

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return storage::testing::to_string(info.param);
}

}  // namespace mercado::saga::testing
