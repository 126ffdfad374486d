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

TEST(OrderSaga, ValidateOrderChecksTheOrderItSaysItIs) {
  namespace json = boost::json;
  auto order = [](json::array items, std::int64_t total) {
    return json::object{{"order_id", "o-1"}, {"customer_id", "c-1"}, {"address", "Calle Mayor 1"},
                        {"items", std::move(items)}, {"total", total}};
  };
  auto item = [](std::string_view product, std::int64_t quantity, std::int64_t price) {
    return json::object{{"product_id", product}, {"quantity", quantity}, {"price", price}};
  };
  auto outcome = [](const json::object& o) { return validate_order(o).kind; };
  EXPECT_EQ(outcome(order({item("p-1", 2, 899), item("p-5", 1, 1599)}, 3397)), mercado::saga::StepResult::Kind::ok);
  EXPECT_EQ(outcome(order({}, 0)), mercado::saga::StepResult::Kind::failed);
  EXPECT_EQ(outcome(order({item("p-1", 2, 899)}, 899)), mercado::saga::StepResult::Kind::failed);  // wrong total
  EXPECT_EQ(outcome(order({item("p-1", 0, 899)}, 0)), mercado::saga::StepResult::Kind::failed);    // no quantity
  EXPECT_EQ(outcome(order({item("p-1", 1, -5)}, -5)), mercado::saga::StepResult::Kind::failed);    // negative price
  EXPECT_EQ(outcome(order({item("", 1, 5)}, 5)), mercado::saga::StepResult::Kind::failed);         // no product
  EXPECT_EQ(outcome(order({json::value("p-1")}, 0)), mercado::saga::StepResult::Kind::failed);     // not an item
  auto no_id = order({item("p-1", 1, 5)}, 5);
  no_id.erase("order_id");
  EXPECT_EQ(outcome(no_id), mercado::saga::StepResult::Kind::failed);
  EXPECT_NE(validate_order(order({}, 0)).reason.find("invalid-order"), std::string::npos);
}

}  // namespace
}  // namespace order::app
