#include "app/shipments.hpp"

#include <mercado/core/clock.hpp>
#include <mercado/json/codec.hpp>

namespace shipping::app {

using mercado::Errc;
using mercado::fail;
using mercado::Result;
namespace storage = mercado::storage;

std::span<const storage::Migration> migrations() {
  static constexpr std::string_view kShipments =
      "id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, address TEXT NOT NULL, status TEXT NOT NULL, "
      "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL";
  static const storage::Migration kMigrations[] = {
      {.version = 1, .name = "shipments", .sql = "CREATE TABLE shipments (" + std::string(kShipments) + ")"},
      // Keyed by its primary key alone (no rowid B-tree beside it): a page fewer per commit.
      storage::without_rowid(2, "shipments", kShipments),
  };
  return kMigrations;
}

Result<std::optional<ShipmentView>> find_shipment(storage::Tx& tx, std::string_view id) {
  auto rows = tx.query("SELECT id, order_id, address, status FROM shipments WHERE id = $1", id);
  if (!rows) return fail(std::move(rows.error()));
  if (rows->empty()) return std::optional<ShipmentView>();
  const auto r = (*rows)[0];
  return std::optional<ShipmentView>(
      ShipmentView{r.get<std::string>(0), r.get<std::string>(1), r.get<std::string>(2), r.get<std::string>(3)});
}

Result<ShipmentView> create_shipment(storage::Tx& tx, const mercado::messaging::Outbox& outbox, std::string_view order_id,
                                     std::string_view address, const std::vector<std::string>& blocked_regions,
                                     std::string_view traceparent) {
  if (auto ok = domain::check_address(address, blocked_regions); !ok) return fail(std::move(ok.error()));
  const std::string id = domain::shipment_id_for(order_id);
  auto existing = find_shipment(tx, id);
  if (!existing) return fail(std::move(existing.error()));
  if (*existing) {
    if ((*existing)->status == to_string(domain::ShipmentStatus::cancelled)) {
      return fail(Errc::conflict, "the shipment of order " + std::string(order_id) + " was cancelled");
    }
    if ((*existing)->address != address) {
      return fail(Errc::conflict, "order " + std::string(order_id) + " was already shipped to another address");
    }
    return **existing;
  }
  const auto now = mercado::core::unix_millis();
  auto ins = tx.exec("INSERT INTO shipments (id, order_id, address, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
                     id, order_id, address, to_string(domain::ShipmentStatus::created), now);
  if (!ins) return fail(std::move(ins.error()));
  ShipmentView view{id, std::string(order_id), std::string(address), std::string(to_string(domain::ShipmentStatus::created))};
  auto ev = outbox.add(tx, "ShipmentCreated", mercado::json::encode(view), mercado::messaging::trace_headers(traceparent));
  if (!ev) return fail(std::move(ev.error()));
  return view;
}

}  // namespace shipping::app

namespace shipping::app {

Result<ShipmentView> cancel_shipment(storage::Tx& tx, const mercado::messaging::Outbox& outbox, std::string_view id,
                                     std::string_view traceparent) {
  auto existing = find_shipment(tx, id);
  if (!existing) return fail(std::move(existing.error()));
  if (!*existing) return fail(Errc::not_found, "no shipment " + std::string(id));
  ShipmentView view = **existing;
  if (view.status == to_string(domain::ShipmentStatus::cancelled)) return view;
  auto upd = tx.exec("UPDATE shipments SET status = $1, updated_at = $2 WHERE id = $3",
                     to_string(domain::ShipmentStatus::cancelled), mercado::core::unix_millis(), id);
  if (!upd) return fail(std::move(upd.error()));
  view.status = to_string(domain::ShipmentStatus::cancelled);
  auto ev = outbox.add(tx, "ShipmentCancelled", mercado::json::encode(view), mercado::messaging::trace_headers(traceparent));
  if (!ev) return fail(std::move(ev.error()));
  return view;
}

}  // namespace shipping::app
