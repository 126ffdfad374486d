#pragma once
// The order saga (the chapter's "Saga Pattern"), each step with its own compensation:
//
//   validate_order     order exists, PENDING, has items      <- cancel_order (OrderCancelled + reason)
//   reserve_inventory  POST /reservations                    <- DELETE /reservations/res-<order>
//   process_payment    POST /payments                        <- POST /payments/pay-<order>/refund
//   ship_order         POST /shipments                       <- DELETE /shipments/shp-<order>
//   (completion)       OrderConfirmed, and the reservation recorded for the committer
//                      (app/reservation_committer.hpp), which commits it in a batch:
//                      POST /reservations/commit
//
// Downstream calls go through resilience::ServiceClient (breaker, retry, deadlines) with
// this service's token and the step's idempotency key. A downstream refusal (409, 422) is a
// definite failure of that step; a call that certainly never reached the service (refused,
// breaker open) too -- the order is cancelled with "<service>-unavailable"; a call that may
// have arrived (timeout) is retried by the saga and, if it never succeeds, compensated.

#include <string>

#include <mercado/auth/service_token.hpp>
#include <mercado/observability/metrics.hpp>
#include <mercado/resilience/service_client.hpp>
#include <mercado/saga/saga.hpp>

#include "app/orders.hpp"
#include "app/reservation_committer.hpp"

namespace order::app {

struct Downstreams {
  mercado::resilience::ServiceClient& inventory;
  mercado::resilience::ServiceClient& payment;
  mercado::resilience::ServiceClient& shipping;
  mercado::auth::ServiceToken& token;
};

inline constexpr std::string_view kOrderSaga = "order";

mercado::saga::Definition order_saga(Orders& orders, Downstreams downstreams, const ReservationCommitter& committer);

// The validate_order step (a pure function of the saga's input, which is the order as
// created): it has items, each with a product, a positive quantity and a price, and its
// total is what they add up to.
mercado::saga::StepResult validate_order(const boost::json::object& order);

// "process_payment: insufficient-funds: ..." -> "insufficient-funds" (a metric label).
std::string reason_slug(std::string_view saga_failure);
// "process_payment: insufficient-funds: balance 0" -> "insufficient-funds: balance 0".
std::string reason_text(std::string_view saga_failure);

}  // namespace order::app
