#include "app/inventory.hpp"

#include <algorithm>

#include <mercado/core/clock.hpp>
#include <mercado/json/codec.hpp>

namespace inventory::app {

using mercado::Errc;
using mercado::Error;
using mercado::fail;
using mercado::Result;
namespace storage = mercado::storage;

std::span<const storage::Migration> migrations() {
  static constexpr std::string_view kReservations =
      "id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, status TEXT NOT NULL, created_at BIGINT NOT NULL, "
      "updated_at BIGINT NOT NULL";
  static constexpr std::string_view kItems =
      "reservation_id TEXT NOT NULL, product_id TEXT NOT NULL, quantity BIGINT NOT NULL, "
      "PRIMARY KEY (reservation_id, product_id)";
  static const storage::Migration kMigrations[] = {
      {.version = 1,
       .name = "products and reservations",
       .sql = "CREATE TABLE products (id TEXT PRIMARY KEY, name TEXT NOT NULL, price BIGINT NOT NULL CHECK (price >= 0), "
              "stock BIGINT NOT NULL CHECK (stock >= 0), reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0), "
              "shipped BIGINT NOT NULL DEFAULT 0 CHECK (shipped >= 0));"
              "CREATE TABLE reservations (" + std::string(kReservations) + ");" +
              "CREATE TABLE reservation_items (" + std::string(kItems) + ");"},
      {.version = 2,
       .name = "demo catalogue",
       .sql = "INSERT INTO products (id, name, price, stock) VALUES "
              "('p-1', 'Mate gourd', 1999, 100), "
              "('p-2', 'Yerba mate 1 kg', 899, 1000000), "
              "('p-3', 'Bombilla (straw)', 1250, 200), "
              "('p-4', 'Thermos 1 l', 4500, 50), "
              "('p-5', 'Alfajores x12', 1599, 1000000), "
              "('p-6', 'Dulce de leche 450 g', 650, 3)"},
      // Keyed by their primary keys alone (no rowid B-tree beside them): fewer pages per commit.
      storage::without_rowid(3, "reservations", kReservations),
      storage::without_rowid(4, "reservation_items", kItems),
  };
  return kMigrations;
}

namespace {

Result<void> emit(storage::Tx& tx, const mercado::messaging::Outbox& outbox, std::string type,
                  const ReservationView& view, std::string_view traceparent) {
  auto ev = outbox.add(tx, std::move(type), mercado::json::encode(view), mercado::messaging::trace_headers(traceparent));
  if (!ev) return fail(std::move(ev.error()));
  return {};
}

Result<void> set_status(storage::Tx& tx, std::string_view id, domain::ReservationStatus s) {
  auto r = tx.exec("UPDATE reservations SET status = $1, updated_at = $2 WHERE id = $3", to_string(s), mercado::core::unix_millis(), id);
  if (!r) return fail(std::move(r.error()));
  return {};
}

}  // namespace

Result<std::vector<ProductView>> list_products(storage::Tx& tx) {
  auto rows = tx.query("SELECT id, name, price, stock FROM products ORDER BY id");
  if (!rows) return fail(std::move(rows.error()));
  std::vector<ProductView> out;
  for (const auto& r : *rows) {
    out.push_back({r.get<std::string>(0), r.get<std::string>(1), r.get<std::int64_t>(2), r.get<std::int64_t>(3)});
  }
  return out;
}

Result<std::optional<ProductView>> find_product(storage::Tx& tx, std::string_view id) {
  auto rows = tx.query("SELECT id, name, price, stock FROM products WHERE id = $1", id);
  if (!rows) return fail(std::move(rows.error()));
  if (rows->empty()) return std::optional<ProductView>();
  const auto r = (*rows)[0];
  return std::optional<ProductView>(
      ProductView{r.get<std::string>(0), r.get<std::string>(1), r.get<std::int64_t>(2), r.get<std::int64_t>(3)});
}

Result<std::vector<StockLevels>> stock_levels(storage::Tx& tx) {
  auto rows = tx.query("SELECT id, stock, reserved, shipped FROM products ORDER BY id");
  if (!rows) return fail(std::move(rows.error()));
  std::vector<StockLevels> out;
  for (const auto& r : *rows) {
    out.push_back({r.get<std::string>(0), r.get<std::int64_t>(1), r.get<std::int64_t>(2), r.get<std::int64_t>(3)});
  }
  return out;
}

Result<std::optional<ReservationView>> find_reservation(storage::Tx& tx, std::string_view id) {
  auto rows = tx.query("SELECT id, order_id, status FROM reservations WHERE id = $1", id);
  if (!rows) return fail(std::move(rows.error()));
  if (rows->empty()) return std::optional<ReservationView>();
  ReservationView v{(*rows)[0].get<std::string>(0), (*rows)[0].get<std::string>(1), {}, (*rows)[0].get<std::string>(2)};
  auto items = tx.query("SELECT product_id, quantity FROM reservation_items WHERE reservation_id = $1 ORDER BY product_id", id);
  if (!items) return fail(std::move(items.error()));
  for (const auto& r : *items) v.items.push_back({r.get<std::string>(0), r.get<std::int64_t>(1)});
  return std::optional<ReservationView>(std::move(v));
}

Result<ReservationView> reserve(storage::Tx& tx, const mercado::messaging::Outbox& outbox, std::string_view order_id,
                                const std::vector<domain::Line>& lines, std::string_view traceparent) {
  auto norm = domain::normalize(lines);
  if (!norm) return fail(std::move(norm.error()));
  const std::string id = domain::reservation_id_for(order_id);
  auto existing = find_reservation(tx, id);
  if (!existing) return fail(std::move(existing.error()));
  if (*existing) {
    if ((*existing)->status == to_string(domain::ReservationStatus::released)) {
      return fail(Errc::conflict, "the reservation of order " + std::string(order_id) + " was released");
    }
    // A retry has the same lines (the saga sends them again); other lines are another
    // request under this order's id, refused like a payment with other details.
    // (Sorted here as normalize() sorts: the database's ORDER BY follows its collation.)
    auto had = (*existing)->items;
    std::sort(had.begin(), had.end(), [](const auto& a, const auto& b) { return a.product_id < b.product_id; });
    const bool same = std::equal(had.begin(), had.end(), norm->begin(), norm->end(), [](const auto& a, const auto& b) {
      return a.product_id == b.product_id && a.quantity == b.quantity;
    });
    if (!same) return fail(Errc::conflict, "order " + std::string(order_id) + " was already reserved with other items");
    return **existing;
  }
  for (const auto& line : *norm) {
    auto n = tx.exec("UPDATE products SET stock = stock - $1, reserved = reserved + $1 WHERE id = $2 AND stock >= $1",
                     line.quantity, line.product_id);
    if (!n) return fail(std::move(n.error()));
    if (*n == 1) continue;
    // Not reserved: say why. The caller's transaction rolls back whatever this loop did.
    auto product = find_product(tx, line.product_id);
    if (!product) return fail(std::move(product.error()));
    if (!*product) {
      Error e(Errc::unprocessable, "unknown product " + line.product_id);
      e.type = "unknown-product";
      return fail(std::move(e));
    }
    Error e(Errc::conflict, "insufficient stock for " + line.product_id + ": " + std::to_string((*product)->stock) +
                                " available, " + std::to_string(line.quantity) + " requested");
    e.type = "insufficient-stock";
    return fail(std::move(e));
  }
  const auto now = mercado::core::unix_millis();
  auto ins = tx.exec("INSERT INTO reservations (id, order_id, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)", id,
                     order_id, to_string(domain::ReservationStatus::reserved), now);
  if (!ins) return fail(std::move(ins.error()));
  ReservationView view{id, std::string(order_id), {}, std::string(to_string(domain::ReservationStatus::reserved))};
  for (const auto& line : *norm) {
    auto li = tx.exec("INSERT INTO reservation_items (reservation_id, product_id, quantity) VALUES ($1, $2, $3)", id,
                      line.product_id, line.quantity);
    if (!li) return fail(std::move(li.error()));
    view.items.push_back({line.product_id, line.quantity});
  }
  if (auto e = emit(tx, outbox, "StockReserved", view, traceparent); !e) return fail(std::move(e.error()));
  return view;
}

Result<ReservationView> release(storage::Tx& tx, const mercado::messaging::Outbox& outbox, std::string_view id,
                                std::string_view traceparent) {
  auto existing = find_reservation(tx, id);
  if (!existing) return fail(std::move(existing.error()));
  if (!*existing) return fail(Errc::not_found, "no reservation " + std::string(id));
  ReservationView view = **existing;
  auto go = domain::may_release(*domain::parse_reservation_status(view.status));
  if (!go) return fail(std::move(go.error()));
  if (!*go) return view;
  for (const auto& item : view.items) {
    auto n = tx.exec("UPDATE products SET stock = stock + $1, reserved = reserved - $1 WHERE id = $2", item.quantity,
                     item.product_id);
    if (!n) return fail(std::move(n.error()));
  }
  if (auto s = set_status(tx, id, domain::ReservationStatus::released); !s) return fail(std::move(s.error()));
  view.status = to_string(domain::ReservationStatus::released);
  if (auto e = emit(tx, outbox, "StockReleased", view, traceparent); !e) return fail(std::move(e.error()));
  return view;
}

Result<ReservationView> commit(storage::Tx& tx, const mercado::messaging::Outbox& outbox, std::string_view id,
                               std::string_view traceparent) {
  auto existing = find_reservation(tx, id);
  if (!existing) return fail(std::move(existing.error()));
  if (!*existing) return fail(Errc::not_found, "no reservation " + std::string(id));
  ReservationView view = **existing;
  auto go = domain::may_commit(*domain::parse_reservation_status(view.status));
  if (!go) return fail(std::move(go.error()));
  if (!*go) return view;
  for (const auto& item : view.items) {
    auto n = tx.exec("UPDATE products SET reserved = reserved - $1, shipped = shipped + $1 WHERE id = $2", item.quantity,
                     item.product_id);
    if (!n) return fail(std::move(n.error()));
  }
  if (auto s = set_status(tx, id, domain::ReservationStatus::committed); !s) return fail(std::move(s.error()));
  view.status = to_string(domain::ReservationStatus::committed);
  if (auto e = emit(tx, outbox, "StockCommitted", view, traceparent); !e) return fail(std::move(e.error()));
  return view;
}

}  // namespace inventory::app
