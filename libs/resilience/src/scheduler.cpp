#include <mercado/resilience/scheduler.hpp>

#include <memory>

#include <boost/asio/steady_timer.hpp>

namespace mercado::resilience {

void AsioScheduler::schedule_after(core::Duration delay, std::function<void()> task) {
  // The timer owns itself through its handler; destroying the io_context drops both.
  auto timer = std::make_shared<boost::asio::steady_timer>(executor_, delay);
  timer->async_wait([timer, task = std::move(task)](const boost::system::error_code& ec) {
    if (!ec) task();
  });
}

}  // namespace mercado::resilience
