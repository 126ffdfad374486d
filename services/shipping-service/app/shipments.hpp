#pragma once
// Shipment commands and queries on the service's database. Each command runs inside the
// caller's transaction and stores its event in the outbox there.

#include <optional>
#include <string>
#include <vector>

#include <boost/describe.hpp>

#include <mercado/messaging/outbox.hpp>
#include <mercado/storage/migrations.hpp>
#include <mercado/storage/tx.hpp>

#include "domain/shipment.hpp"

namespace shipping::app {

struct ShipmentView {
  std::string id;
  std::string order_id;
  std::string address;
  std::string status;
};
BOOST_DESCRIBE_STRUCT(ShipmentView, (), (id, order_id, address, status))

std::span<const mercado::storage::Migration> migrations();

// Creates the order's shipment, or returns the existing one (same order: same shipment).
// conflict when the order's shipment was cancelled; the domain's errors for the address.
mercado::Result<ShipmentView> create_shipment(mercado::storage::Tx& tx, const mercado::messaging::Outbox& outbox,
                                              std::string_view order_id, std::string_view address,
                                              const std::vector<std::string>& blocked_regions,
                                              std::string_view traceparent);
// Cancels; cancelling a cancelled shipment is a no-op. not_found when unknown.
mercado::Result<ShipmentView> cancel_shipment(mercado::storage::Tx& tx, const mercado::messaging::Outbox& outbox,
                                              std::string_view id, std::string_view traceparent);
mercado::Result<std::optional<ShipmentView>> find_shipment(mercado::storage::Tx& tx, std::string_view id);

}  // namespace shipping::app
