#include "domain/stock.hpp"

#include <map>

namespace inventory::domain {

using mercado::Errc;
using mercado::Error;
using mercado::fail;

std::string_view to_string(ReservationStatus s) noexcept {
  switch (s) {
    case ReservationStatus::reserved: return "RESERVED";
    case ReservationStatus::released: return "RELEASED";
    case ReservationStatus::committed: return "COMMITTED";
  }
  return "RESERVED";
}

std::optional<ReservationStatus> parse_reservation_status(std::string_view s) noexcept {
  if (s == "RESERVED") return ReservationStatus::reserved;
  if (s == "RELEASED") return ReservationStatus::released;
  if (s == "COMMITTED") return ReservationStatus::committed;
  return std::nullopt;
}

std::string reservation_id_for(std::string_view order_id) { return "res-" + std::string(order_id); }

mercado::Result<std::vector<Line>> normalize(const std::vector<Line>& lines) {
  Error e(Errc::invalid_argument, "invalid items");
  if (lines.empty() || lines.size() > 100) e.fields.push_back({"items", "must have 1 to 100 lines"});
  std::map<std::string, std::int64_t> merged;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& l = lines[i];
    if (l.product_id.empty()) e.fields.push_back({"items[" + std::to_string(i) + "].product_id", "is required"});
    if (l.quantity < 1 || l.quantity > 10'000) {
      e.fields.push_back({"items[" + std::to_string(i) + "].quantity", "must be 1 to 10000"});
    }
    merged[l.product_id] += l.quantity;
  }
  if (!e.fields.empty()) {
    e.type = "validation";
    return fail(std::move(e));
  }
  std::vector<Line> out;
  for (auto& [p, q] : merged) out.push_back({p, q});
  return out;
}

mercado::Result<bool> may_release(ReservationStatus current) {
  if (current == ReservationStatus::released) return false;
  if (current == ReservationStatus::committed) return fail(Errc::conflict, "a committed reservation cannot be released");
  return true;
}

mercado::Result<bool> may_commit(ReservationStatus current) {
  if (current == ReservationStatus::committed) return false;
  if (current == ReservationStatus::released) return fail(Errc::conflict, "a released reservation cannot be committed");
  return true;
}

}  // namespace inventory::domain
