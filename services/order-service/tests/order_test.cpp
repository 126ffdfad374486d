#include "domain/order.hpp"

#include <gtest/gtest.h>

namespace order::domain {
namespace {

// Replays the pending events of `live` into a fresh aggregate (as the store would).
Order rebuild(const Order& live) {
  std::vector<mercado::es::RecordedEvent> history;
  std::int64_t v = 0;
  for (const auto& e : live.pending_events()) {
    history.push_back({++v, live.id(), v, e.event_id, e.event_type, e.data, e.metadata, 0});
  }
  Order copy(live.id());
  copy.load(history);
  return copy;
}

TEST(Order, LifecycleAndRules) {
  Order o("o-1");
  EXPECT_EQ(o.add_item("p", 1, 100).error().code, mercado::Errc::not_found);  // not created yet
  EXPECT_TRUE(o.pending_events().empty());
  ASSERT_TRUE(o.create("c-1", "Calle 1"));
  EXPECT_EQ(o.create("c-1", "x").error().code, mercado::Errc::conflict);
  EXPECT_EQ(o.confirm().error().message, "Cannot confirm empty order");
  ASSERT_TRUE(o.add_item("p-1", 2, 1999));
  ASSERT_TRUE(o.add_item("p-2", 1, 500));
  EXPECT_EQ(o.add_item("p-3", 0, 1).error().code, mercado::Errc::invalid_argument);
  EXPECT_EQ(o.total(), 2 * 1999 + 500);
  ASSERT_TRUE(o.confirm());
  EXPECT_EQ(o.status(), OrderStatus::confirmed);
  auto late = o.add_item("p-4", 1, 1);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().message, "Cannot modify confirmed order");
  EXPECT_FALSE(o.cancel("too late"));
  // One event per change.
  std::vector<std::string> types;
  for (const auto& e : o.pending_events()) types.push_back(e.event_type);
  EXPECT_EQ(types, (std::vector<std::string>{"OrderCreated", "ItemAdded", "ItemAdded", "OrderConfirmed"}));
}

TEST(Order, CancelKeepsTheReasonAndRebuildEqualsLive) {
  Order o("o-2");
  ASSERT_TRUE(o.create("c-1", "Calle 2"));
  ASSERT_TRUE(o.add_item("p-1", 3, 250));
  ASSERT_TRUE(o.cancel("insufficient stock for p-1"));
  auto copy = rebuild(o);
  EXPECT_EQ(copy.status(), OrderStatus::cancelled);
  EXPECT_EQ(copy.reason(), "insufficient stock for p-1");
  EXPECT_EQ(copy.customer_id(), o.customer_id());
  EXPECT_EQ(copy.total(), o.total());
  EXPECT_EQ(copy.items().size(), o.items().size());
  EXPECT_EQ(copy.version(), 3);
  EXPECT_EQ(to_string(copy.status()), "CANCELLED");
}

}  // namespace
}  // namespace order::domain
