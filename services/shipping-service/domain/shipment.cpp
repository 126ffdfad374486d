#include "domain/shipment.hpp"

#include <algorithm>
#include <cctype>

#include <mercado/json/rules.hpp>

namespace shipping::domain {

using mercado::Errc;
using mercado::Error;

std::string_view to_string(ShipmentStatus s) noexcept {
  return s == ShipmentStatus::created ? "CREATED" : "CANCELLED";
}

std::string shipment_id_for(std::string_view order_id) { return "shp-" + std::string(order_id); }

mercado::Result<void> check_address(std::string_view address, const std::vector<std::string>& blocked_regions) {
  namespace rules = mercado::json::rules;
  if (!rules::length_between(address, 5, 200) || !rules::is_printable_utf8(address)) {
    Error e(Errc::invalid_argument, "address must be 5 to 200 printable characters");
    e.fields.push_back({"address", "must be 5 to 200 printable characters"});
    return mercado::fail(std::move(e));
  }
  auto lower = [](std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
  };
  const std::string a = lower(address);
  for (const auto& region : blocked_regions) {
    if (!region.empty() && a.find(lower(region)) != std::string::npos) {
      Error e(Errc::unprocessable, "we do not ship to " + region);
      e.type = "shipping-refused";
      return mercado::fail(std::move(e));
    }
  }
  return {};
}

}  // namespace shipping::domain
