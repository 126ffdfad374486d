#include "domain/order.hpp"

namespace order::domain {

using mercado::Errc;
using mercado::fail;
using mercado::Result;

std::string_view to_string(OrderStatus s) noexcept {
  switch (s) {
    case OrderStatus::pending: return "PENDING";
    case OrderStatus::confirmed: return "CONFIRMED";
    case OrderStatus::cancelled: return "CANCELLED";
  }
  return "PENDING";
}

Result<void> Order::create(std::string_view customer_id, std::string_view address) {
  if (exists()) return fail(Errc::conflict, "order already exists");
  if (customer_id.empty()) return fail(Errc::invalid_argument, "customer_id is required");
  raise("OrderCreated", {{"customer_id", customer_id}, {"address", address}});
  return {};
}

Result<void> Order::add_item(std::string_view product_id, std::int64_t quantity, std::int64_t price) {
  if (!exists()) return fail(Errc::not_found, "no such order");
  if (status_ != OrderStatus::pending) return fail(Errc::conflict, "Cannot modify confirmed order");
  if (product_id.empty()) return fail(Errc::invalid_argument, "product_id is required");
  if (quantity <= 0) return fail(Errc::invalid_argument, "quantity must be at least 1");
  if (price < 0) return fail(Errc::invalid_argument, "price must not be negative");
  raise("ItemAdded", {{"product_id", product_id}, {"quantity", quantity}, {"price", price}});
  return {};
}

Result<void> Order::confirm() {
  if (!exists()) return fail(Errc::not_found, "no such order");
  if (status_ != OrderStatus::pending) return fail(Errc::conflict, "only a pending order can be confirmed");
  if (items_.empty()) return fail(Errc::conflict, "Cannot confirm empty order");
  raise("OrderConfirmed", {});
  return {};
}

Result<void> Order::cancel(std::string_view reason) {
  if (!exists()) return fail(Errc::not_found, "no such order");
  if (status_ != OrderStatus::pending) return fail(Errc::conflict, "only a pending order can be cancelled");
  raise("OrderCancelled", {{"reason", reason}});
  return {};
}

void Order::when(std::string_view type, const boost::json::object& d) {
  if (type == "OrderCreated") {
    customer_id_ = d.at("customer_id").as_string();
    address_ = d.at("address").as_string();
  } else if (type == "ItemAdded") {
    items_.push_back({std::string(d.at("product_id").as_string()), d.at("quantity").as_int64(), d.at("price").as_int64()});
  } else if (type == "OrderConfirmed") {
    status_ = OrderStatus::confirmed;
  } else if (type == "OrderCancelled") {
    status_ = OrderStatus::cancelled;
    reason_ = d.at("reason").as_string();
  }
}

std::int64_t Order::total() const noexcept {
  std::int64_t t = 0;
  for (const auto& i : items_) t += i.quantity * i.price;
  return t;
}

}  // namespace order::domain
