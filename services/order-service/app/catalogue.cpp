#include "app/catalogue.hpp"

#include <boost/json.hpp>

namespace order::app {

namespace json = boost::json;
using mercado::Errc;
using mercado::Error;
using mercado::fail;
using mercado::Result;

std::optional<std::int64_t> PriceCache::get(const std::string& product) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(product);
  if (it == entries_.end()) return std::nullopt;
  if (clock_.now() >= it->second.expires) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.price;
}

void PriceCache::put(const std::string& product, std::int64_t price) {
  if (ttl_.count() <= 0 || max_entries_ == 0) return;
  const auto now = clock_.now();
  std::lock_guard lock(mutex_);
  if (entries_.size() >= max_entries_ && !entries_.contains(product)) {
    std::erase_if(entries_, [&](const auto& e) { return now >= e.second.expires; });
    if (entries_.size() >= max_entries_) entries_.erase(entries_.begin());  // full of live ones: drop any
  }
  entries_.insert_or_assign(product, Entry{price, now + ttl_});
}

std::size_t PriceCache::size() {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

boost::asio::awaitable<Result<std::map<std::string, std::int64_t>>> Catalogue::prices(
    std::vector<std::string> products, mercado::resilience::CallContext ctx) {
  std::map<std::string, std::int64_t> out;
  for (const auto& product : products) out.emplace(product, 0);  // each product once
  for (auto& [product, price] : out) {
    if (auto cached = cache_.get(product)) {
      price = *cached;
      continue;
    }
    auto asked = co_await ask(product, ctx);
    if (!asked) co_return fail(std::move(asked.error()));
    price = *asked;
    cache_.put(product, price);
  }
  co_return out;
}

boost::asio::awaitable<Result<std::int64_t>> Catalogue::ask(const std::string& product,
                                                            mercado::resilience::CallContext ctx) {
  auto p = co_await inventory_.get("/products/" + product, ctx);
  if (!p) co_return fail(mercado::resilience::to_error(p.error(), "inventory"));
  if (p->status == 404) {
    Error e(Errc::unprocessable, "unknown product " + product);
    e.type = "unknown-product";
    co_return fail(std::move(e));
  }
  if (!p->ok()) co_return fail(Errc::unavailable, "the catalogue is unavailable");
  boost::system::error_code ec;
  auto v = json::parse(p->body, ec);
  const auto* price = !ec && v.is_object() ? v.as_object().if_contains("price") : nullptr;
  if (price == nullptr || !price->is_int64() || price->as_int64() < 0) {
    co_return fail(Errc::unavailable, "the catalogue answered nonsense");
  }
  co_return price->as_int64();
}

}  // namespace order::app
