#include "app/order_saga.hpp"

#include <gtest/gtest.h>

namespace order::app {
namespace {

TEST(OrderSaga, ReasonsFromFailures) {
  EXPECT_EQ(reason_slug("process_payment: insufficient-funds: balance 0, amount 100"), "insufficient-funds");
  EXPECT_EQ(reason_text("process_payment: insufficient-funds: balance 0, amount 100"), "insufficient-funds: balance 0, amount 100");
  EXPECT_EQ(reason_slug("reserve_inventory: inventory-unavailable: connection refused"), "inventory-unavailable");
  EXPECT_EQ(reason_slug("ship_order: gave up after 3 attempts: shipping did not answer"), "other");
  EXPECT_EQ(reason_slug(""), "other");
}

}  // namespace
}  // namespace order::app
