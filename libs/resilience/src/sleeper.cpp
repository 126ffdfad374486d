#include <mercado/resilience/sleeper.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mercado::resilience {

boost::asio::awaitable<void> AsioSleeper::sleep(core::Duration delay) {
  if (delay.count() <= 0) co_return;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, delay);
  // Cancellation ends the wait early; the caller notices it through its own state.
  co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
}

AsioSleeper& AsioSleeper::instance() noexcept {
  static AsioSleeper* const sleeper = new AsioSleeper();
  return *sleeper;
}

}  // namespace mercado::resilience
