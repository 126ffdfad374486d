#include "domain/shipment.hpp"

#include <gtest/gtest.h>

namespace shipping::domain {
namespace {

TEST(Shipment, AddressRules) {
  const std::vector<std::string> blocked{"Atlantis", "Mordor"};
  EXPECT_TRUE(check_address("Calle Mayor 1, Madrid", blocked));
  auto refused = check_address("1 Coral Way, atlantis", blocked);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, mercado::Errc::unprocessable);
  EXPECT_EQ(refused.error().type, "shipping-refused");
  EXPECT_EQ(refused.error().message, "we do not ship to Atlantis");
  EXPECT_EQ(check_address("abc", blocked).error().code, mercado::Errc::invalid_argument);
  EXPECT_EQ(check_address("line\nbreak street", blocked).error().code, mercado::Errc::invalid_argument);
}

TEST(Shipment, OneIdPerOrder) { EXPECT_EQ(shipment_id_for("o-1"), "shp-o-1"); }

}  // namespace
}  // namespace shipping::domain
