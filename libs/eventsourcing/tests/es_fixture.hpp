#pragma once
// A scratch database (SQLite or PostgreSQL), a blocking pool, an io thread and an
// EventStore with its schema, for the event-sourcing suites.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <future>
#include <optional>

#include <mercado/eventsourcing/event_store.hpp>
#include <mercado/eventsourcing/projection.hpp>
#include <mercado/storage/migrations.hpp>

#include "scratch_database.hpp"

namespace mercado::es::testing {

using storage::testing::Backend;

// Runs a coroutine to completion on a private io_context and returns its value.
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

class EsTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    MERCADO_SCRATCH_OR_SKIP(scratch_, GetParam());
    auto db = storage::open_database(scratch_->url(), pool_);
    ASSERT_TRUE(db) << db.error().message;
    db_ = *db;
    ASSERT_TRUE(storage::migrate_blocking(*db_, "mercado_eventstore", EventStore::migrations()));
    ASSERT_TRUE(storage::migrate_blocking(*db_, "mercado_projections", ProjectionRunner::migrations()));
  }

  std::optional<storage::testing::ScratchDatabase> scratch_;
  core::BlockingPool pool_{4};
  std::shared_ptr<storage::Database> db_;
};

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return storage::testing::to_string(info.param);
}

}  // namespace mercado::es::testing
