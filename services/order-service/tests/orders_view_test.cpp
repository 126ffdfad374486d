// The orders read model: an order's creating events folded into one INSERT
// (OrdersProjection::apply_all) give exactly the rows apply() gives one event at a time.
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/storage/database.hpp>

#include "app/orders.hpp"
#include "scratch_database.hpp"

namespace order::app {
namespace {

namespace es = mercado::es;
namespace json = boost::json;
namespace storage = mercado::storage;
using mercado::Result;
using storage::testing::Backend;

es::RecordedEvent event(std::int64_t position, const std::string& order, std::int64_t version,
                        const std::string& type, json::object data, std::int64_t at_ms) {
  return {position, order_stream(order),   version, order + ":" + std::to_string(version),
          type,     json::serialize(data), "{}",    at_ms};
}

// (One append's events share a time; here they differ where that shows which event a
// column comes from.) Creations of one, two and three items, a creation without items, a
// confirmation and a cancellation, two orders' creations in one batch, and an item added after the
// creation in a later batch.
std::vector<std::vector<es::RecordedEvent>> batches() {
  std::int64_t p = 0;
  auto item = [](const char* product, std::int64_t quantity, std::int64_t price) {
    return json::object{{"product_id", product}, {"quantity", quantity}, {"price", price}};
  };
  auto created = [](const char* customer, const char* address) {
    return json::object{{"customer_id", customer}, {"address", address}};
  };
  std::vector<std::vector<es::RecordedEvent>> b;
  b.push_back({event(++p, "o-1", 1, "OrderCreated", created("c-1", "Calle 1"), 1000),
               event(++p, "o-1", 2, "ItemAdded", item("p-1", 2, 1999), 1000)});
  b.push_back({event(++p, "o-2", 1, "OrderCreated", created("c-2", "Calle 2"), 2000),
               event(++p, "o-2", 2, "ItemAdded", item("p-1", 1, 1999), 2000),
               event(++p, "o-2", 3, "ItemAdded", item("p-2", 3, 500), 2000),
               event(++p, "o-2", 4, "ItemAdded", item("p-3", 1, 25), 2002),
               event(++p, "o-3", 1, "OrderCreated", created("c-1", "Calle 3"), 2001),
               event(++p, "o-3", 2, "ItemAdded", item("p-2", 1, 500), 2003)});
  b.push_back({event(++p, "o-1", 3, "OrderConfirmed", {}, 3000),
               event(++p, "o-4", 1, "OrderCreated", created("c-3", "Calle 4"), 3001)});
  b.push_back({event(++p, "o-4", 2, "ItemAdded", item("p-1", 4, 1999), 4000),
               event(++p, "o-2", 5, "OrderCancelled", {{"reason", "insufficient funds"}}, 4001)});
  return b;
}

class OrdersViewTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    MERCADO_SCRATCH_OR_SKIP(scratch_, GetParam());
    auto db = storage::open_database(scratch_->url(), pool_);
    ASSERT_TRUE(db) << db.error().message;
    db_ = *db;
    ASSERT_TRUE(storage::migrate_blocking(*db_, "order", migrations()));
  }

  // Every row of orders_view, in id order, one string per row.
  std::vector<std::string> rows() {
    auto r = db_->transaction_blocking([](storage::Tx& tx) -> Result<std::vector<std::string>> {
      auto q = tx.query(
          "SELECT id, customer_id, address, items, total, status, reason, created_at, updated_at "
          "FROM orders_view ORDER BY id");
      if (!q) return mercado::fail(q.error());
      std::vector<std::string> out;
      for (const auto& row : *q) {
        std::string line;
        for (int c : {0, 1, 2, 3, 6}) line += row.get<std::string>(c) + "|";
        line += std::to_string(row.get<std::int64_t>(4)) + "|" + row.get<std::string>(5) + "|" +
                std::to_string(row.get<std::int64_t>(7)) + "|" +
                std::to_string(row.get<std::int64_t>(8));
        out.push_back(std::move(line));
      }
      return out;
    });
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : std::vector<std::string>{};
  }

  // Applies `batch` with apply_all (folded) or event by event.
  void apply(const std::vector<es::RecordedEvent>& batch, bool folded) {
    auto r = db_->transaction_blocking([&](storage::Tx& tx) -> Result<bool> {
      if (folded) {
        if (auto a = projection_.apply_all(tx, batch); !a) return mercado::fail(a.error());
      } else {
        for (const auto& e : batch) {
          if (auto a = projection_.apply(tx, e); !a) return mercado::fail(a.error());
        }
      }
      return true;
    });
    ASSERT_TRUE(r) << r.error().message;
  }
  void reset() {
    ASSERT_TRUE(db_->transaction_blocking([&](storage::Tx& tx) -> Result<bool> {
      if (auto r = projection_.reset(tx); !r) return mercado::fail(r.error());
      return true;
    }));
  }

  std::optional<storage::testing::ScratchDatabase> scratch_;
  mercado::core::BlockingPool pool_{2};
  std::shared_ptr<storage::Database> db_;
  OrdersProjection projection_;
};

TEST_P(OrdersViewTest, FoldedCreationsGiveTheRowsOfOneEventAtATime) {
  for (const auto& b : batches()) apply(b, false);
  const auto one_by_one = rows();
  ASSERT_EQ(one_by_one.size(), 4u);
  EXPECT_EQ(one_by_one[1],
            "o-2|c-2|Calle "
            "2|[{\"product_id\":\"p-1\",\"quantity\":1,\"price\":1999},{\"product_id\":\"p-2\","
            "\"quantity\":3,"
            "\"price\":500},{\"product_id\":\"p-3\",\"quantity\":1,\"price\":25}]|insufficient "
            "funds|3524|CANCELLED|2000|4001");
  reset();
  for (const auto& b : batches()) apply(b, true);
  EXPECT_EQ(rows(), one_by_one);
}

TEST_P(OrdersViewTest, ACreationWhoseRowExistsIsAppliedAsApplyWould) {
  // The creating batch twice (not something the runner does; the read model must still not
  // depend on which path applied it): the second time apply() adds the items to the row.
  const auto first = batches().front();
  apply(first, false);
  apply(first, false);
  const auto one_by_one = rows();
  reset();
  apply(first, true);
  apply(first, true);
  EXPECT_EQ(rows(), one_by_one);
  EXPECT_NE(one_by_one.front().find("]|"), std::string::npos);
}

std::string backend_name(const ::testing::TestParamInfo<Backend>& param) {
  return storage::testing::to_string(param.param);
}

INSTANTIATE_TEST_SUITE_P(Backends, OrdersViewTest,
                         ::testing::Values(Backend::sqlite, Backend::postgres), backend_name);

}  // namespace
}  // namespace order::app
