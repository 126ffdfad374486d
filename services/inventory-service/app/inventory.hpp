#pragma once
// Inventory commands and queries on the service's database; each command runs inside the
// caller's transaction and stores its event in the outbox there.

#include <optional>
#include <string>
#include <vector>

#include <boost/describe.hpp>

#include <mercado/messaging/outbox.hpp>
#include <mercado/storage/migrations.hpp>
#include <mercado/storage/tx.hpp>

#include "domain/stock.hpp"

namespace inventory::app {

struct ProductView {
  std::string id;
  std::string name;
  std::int64_t price = 0;  // cents
  std::int64_t stock = 0;  // available
};
BOOST_DESCRIBE_STRUCT(ProductView, (), (id, name, price, stock))

struct ItemView {
  std::string product_id;
  std::int64_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(ItemView, (), (product_id, quantity))

struct ReservationView {
  std::string id;
  std::string order_id;
  std::vector<ItemView> items;
  std::string status;
};
BOOST_DESCRIBE_STRUCT(ReservationView, (), (id, order_id, items, status))

// Per product, for invariant checks and operators: available + reserved + shipped.
struct StockLevels {
  std::string id;
  std::int64_t stock = 0;
  std::int64_t reserved = 0;
  std::int64_t shipped = 0;
};
BOOST_DESCRIBE_STRUCT(StockLevels, (), (id, stock, reserved, shipped))

std::span<const mercado::storage::Migration> migrations();

mercado::Result<std::vector<ProductView>> list_products(mercado::storage::Tx& tx);
mercado::Result<std::optional<ProductView>> find_product(mercado::storage::Tx& tx, std::string_view id);
mercado::Result<std::vector<StockLevels>> stock_levels(mercado::storage::Tx& tx);

// Reserves every line or nothing. The order's reservation is returned if it exists
// (RESERVED or COMMITTED); conflict "insufficient-stock" naming the short product;
// unprocessable "unknown-product".
mercado::Result<ReservationView> reserve(mercado::storage::Tx& tx, const mercado::messaging::Outbox& outbox,
                                         std::string_view order_id, const std::vector<domain::Line>& lines,
                                         std::string_view traceparent);
mercado::Result<ReservationView> release(mercado::storage::Tx& tx, const mercado::messaging::Outbox& outbox,
                                         std::string_view reservation_id, std::string_view traceparent);
mercado::Result<ReservationView> commit(mercado::storage::Tx& tx, const mercado::messaging::Outbox& outbox,
                                        std::string_view reservation_id, std::string_view traceparent);
mercado::Result<std::optional<ReservationView>> find_reservation(mercado::storage::Tx& tx, std::string_view id);

}  // namespace inventory::app
