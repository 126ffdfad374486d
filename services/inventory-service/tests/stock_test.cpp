#include "domain/stock.hpp"

#include <gtest/gtest.h>

namespace inventory::domain {
namespace {

TEST(Stock, NormalizeMergesAndValidates) {
  auto n = normalize({{"p-1", 2}, {"p-2", 1}, {"p-1", 3}});
  ASSERT_TRUE(n);
  ASSERT_EQ(n->size(), 2U);
  EXPECT_EQ((*n)[0].product_id, "p-1");
  EXPECT_EQ((*n)[0].quantity, 5);
  auto bad = normalize({{"", 0}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().fields.size(), 2U);
  EXPECT_FALSE(normalize({}));
}

TEST(Stock, Transitions) {
  EXPECT_TRUE(*may_release(ReservationStatus::reserved));
  EXPECT_FALSE(*may_release(ReservationStatus::released));
  EXPECT_EQ(may_release(ReservationStatus::committed).error().code, mercado::Errc::conflict);
  EXPECT_TRUE(*may_commit(ReservationStatus::reserved));
  EXPECT_FALSE(*may_commit(ReservationStatus::committed));
  EXPECT_FALSE(may_commit(ReservationStatus::released));
  EXPECT_EQ(reservation_id_for("o-9"), "res-o-9");
}

}  // namespace
}  // namespace inventory::domain
