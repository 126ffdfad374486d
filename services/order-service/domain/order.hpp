#pragma once
// The chapter's Order aggregate, event sourced (pure: no I/O).
//
// Rules: items can be added only while PENDING; confirming needs at least one item;
// an order is cancelled (with a reason) only while PENDING. Money is integer cents.
// Events: OrderCreated {customer_id, address}, ItemAdded {product_id, quantity, price},
//         OrderConfirmed {}, OrderCancelled {reason}.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include <mercado/core/error.hpp>
#include <mercado/eventsourcing/aggregate.hpp>

namespace order::domain {

enum class OrderStatus { pending, confirmed, cancelled };
std::string_view to_string(OrderStatus s) noexcept;  // "PENDING", "CONFIRMED", "CANCELLED"

struct OrderItem {
  std::string product_id;
  std::int64_t quantity = 0;
  std::int64_t price = 0;  // unit price, cents
};

class Order : public mercado::es::Aggregate<Order> {
 public:
  explicit Order(std::string id) : Aggregate(std::move(id)) {}

  // Commands. Errors: invalid_argument for bad input, conflict for a wrong state.
  mercado::Result<void> create(std::string_view customer_id, std::string_view address);
  mercado::Result<void> add_item(std::string_view product_id, std::int64_t quantity, std::int64_t price);
  mercado::Result<void> confirm();
  mercado::Result<void> cancel(std::string_view reason);

  void when(std::string_view type, const boost::json::object& data);

  bool exists() const noexcept { return !customer_id_.empty(); }
  const std::string& customer_id() const noexcept { return customer_id_; }
  const std::string& address() const noexcept { return address_; }
  const std::vector<OrderItem>& items() const noexcept { return items_; }
  OrderStatus status() const noexcept { return status_; }
  const std::string& reason() const noexcept { return reason_; }
  std::int64_t total() const noexcept;

 private:
  std::string customer_id_;
  std::string address_;
  std::vector<OrderItem> items_;
  OrderStatus status_ = OrderStatus::pending;
  std::string reason_;
};

}  // namespace order::domain
