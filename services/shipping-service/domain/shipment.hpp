#pragma once
// Shipping rules (pure). A shipment belongs to one order; its id is derived from the order
// id, so creating it again for the same order finds the same shipment.

#include <string>
#include <string_view>
#include <vector>

#include <mercado/core/error.hpp>

namespace shipping::domain {

enum class ShipmentStatus { created, cancelled };
std::string_view to_string(ShipmentStatus s) noexcept;  // "CREATED", "CANCELLED"

std::string shipment_id_for(std::string_view order_id);

// The address must be 5..200 printable characters and not in a region we do not ship to
// (case-insensitive match of any word of `blocked_regions`): unprocessable, type
// "shipping-refused", naming the region.
mercado::Result<void> check_address(std::string_view address, const std::vector<std::string>& blocked_regions);

}  // namespace shipping::domain
