#pragma once
// Inventory rules (pure). Per product: available + reserved + shipped stays constant.
// A reservation takes all its items or none; it ends released (stock back) or committed
// (reserved -> shipped).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <mercado/core/error.hpp>

namespace inventory::domain {

enum class ReservationStatus { reserved, released, committed };
std::string_view to_string(ReservationStatus s) noexcept;  // RESERVED, RELEASED, COMMITTED
std::optional<ReservationStatus> parse_reservation_status(std::string_view s) noexcept;

std::string reservation_id_for(std::string_view order_id);

struct Line {
  std::string product_id;
  std::int64_t quantity = 0;
};

// Merges duplicate products and checks quantities (1..10 000 each, 1..100 lines).
mercado::Result<std::vector<Line>> normalize(const std::vector<Line>& lines);

// Which transitions are allowed: release from RESERVED (RELEASED again is a no-op), commit
// from RESERVED (COMMITTED again is a no-op); anything else is a conflict.
mercado::Result<bool> may_release(ReservationStatus current);  // false: already released
mercado::Result<bool> may_commit(ReservationStatus current);   // false: already committed

}  // namespace inventory::domain
