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

// A backend, and whether its database groups write transactions into shared commits
// (DatabaseOptions::group_commit, what the services use): appends then join those groups
// instead of the store's own.
struct EsParam {
  Backend backend;
  bool group_commit;
};

class EsTest : public ::testing::TestWithParam<EsParam> {
 protected:
  void SetUp() override {
    MERCADO_SCRATCH_OR_SKIP(scratch_, GetParam().backend);
    auto db = storage::open_database(scratch_->url(), pool_, {.group_commit = GetParam().group_commit});
    ASSERT_TRUE(db) << db.error().message;
    db_ = *db;
    ASSERT_TRUE(storage::migrate_blocking(*db_, "mercado_eventstore", EventStore::migrations()));
    ASSERT_TRUE(storage::migrate_blocking(*db_, "mercado_projections", ProjectionRunner::migrations()));
  }

  std::optional<storage::testing::ScratchDatabase> scratch_;
  core::BlockingPool pool_{4};
  std::shared_ptr<storage::Database> db_;
};

inline std::string backend_name(const ::testing::TestParamInfo<EsParam>& info) {
  return storage::testing::to_string(info.param.backend) + (info.param.group_commit ? "_grouped" : "");
}

inline auto all_backends() {
  return ::testing::Values(EsParam{Backend::sqlite, false}, EsParam{Backend::postgres, false},
                           EsParam{Backend::sqlite, true}, EsParam{Backend::postgres, true});
}

}  // namespace mercado::es::testing
