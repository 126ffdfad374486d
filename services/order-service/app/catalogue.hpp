#pragma once
// Prices from inventory-service's catalogue (GET /products/{id}), kept for a while.
//
// An order is priced from what the catalogue answered at most `ttl` ago: the catalogue has
// no way to change a price while it runs (prices are seeded), so the TTL only bounds how
// long a price seen before a redeploy can be used after it. With ttl = 0 every order asks.
// Unknown products and failures are never kept.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/core/error.hpp>
#include <mercado/resilience/service_client.hpp>

namespace order::app {

// The cache alone (pure: no I/O), so that its rules are tested without a catalogue.
class PriceCache {
 public:
  PriceCache(std::chrono::milliseconds ttl, std::size_t max_entries, const mercado::core::Clock& clock)
      : ttl_(ttl), max_entries_(max_entries), clock_(clock) {}

  std::optional<std::int64_t> get(const std::string& product);
  void put(const std::string& product, std::int64_t price);
  std::size_t size();

 private:
  struct Entry {
    std::int64_t price;
    mercado::core::SteadyTime expires;
  };
  std::chrono::milliseconds ttl_;
  std::size_t max_entries_;
  const mercado::core::Clock& clock_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mutex_
};

class Catalogue {
 public:
  struct Options {
    std::chrono::milliseconds ttl{5000};
    std::size_t max_entries = 10'000;
    const mercado::core::Clock* clock = &mercado::core::SystemClock::instance();
  };
  Catalogue(mercado::resilience::ServiceClient& inventory, Options options)
      : inventory_(inventory), cache_(options.ttl, options.max_entries, *options.clock) {}

  // The price (cents) of each product. Errors: unknown-product (422), or the catalogue
  // unavailable (503) / refusing (its problem, mapped by resilience::to_error).
  boost::asio::awaitable<mercado::Result<std::map<std::string, std::int64_t>>> prices(
      std::vector<std::string> products, mercado::resilience::CallContext ctx);

 private:
  boost::asio::awaitable<mercado::Result<std::int64_t>> ask(const std::string& product,
                                                            mercado::resilience::CallContext ctx);

  mercado::resilience::ServiceClient& inventory_;
  PriceCache cache_;
};

}  // namespace order::app
