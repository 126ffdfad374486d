#include "app/catalogue.hpp"

#include <gtest/gtest.h>

namespace order::app {
namespace {

using std::chrono::milliseconds;

TEST(PriceCache, KeepsAPriceForItsTtlThenForgetsIt) {
  mercado::core::ManualClock clock;
  PriceCache cache(milliseconds(5000), 100, clock);
  EXPECT_FALSE(cache.get("p-1"));
  cache.put("p-1", 899);
  EXPECT_EQ(cache.get("p-1"), 899);
  clock.advance(milliseconds(4999));
  EXPECT_EQ(cache.get("p-1"), 899);
  clock.advance(milliseconds(1));
  EXPECT_FALSE(cache.get("p-1"));  // expired: the next order asks the catalogue again
  EXPECT_EQ(cache.size(), 0U);
  cache.put("p-1", 950);
  EXPECT_EQ(cache.get("p-1"), 950);
}

TEST(PriceCache, ATtlOfZeroKeepsNothing) {
  mercado::core::ManualClock clock;
  PriceCache cache(milliseconds(0), 100, clock);
  cache.put("p-1", 899);
  EXPECT_FALSE(cache.get("p-1"));
  EXPECT_EQ(cache.size(), 0U);
}

TEST(PriceCache, StaysWithinItsSizeExpiredEntriesGoFirst) {
  mercado::core::ManualClock clock;
  PriceCache cache(milliseconds(1000), 3, clock);
  cache.put("old", 1);
  clock.advance(milliseconds(1000));  // "old" has expired, not yet been asked for
  cache.put("a", 2);
  cache.put("b", 3);
  cache.put("c", 4);  // full: the expired entry makes room
  EXPECT_EQ(cache.size(), 3U);
  EXPECT_EQ(cache.get("a"), 2);
  EXPECT_EQ(cache.get("b"), 3);
  EXPECT_EQ(cache.get("c"), 4);
  cache.put("d", 5);  // full of live entries: one of them goes
  EXPECT_EQ(cache.size(), 3U);
  EXPECT_EQ(cache.get("d"), 5);
}

}  // namespace
}  // namespace order::app
