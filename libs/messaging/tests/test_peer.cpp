// A second process for the SQLite transport's cross-process tests:
//   messaging_test_peer publish <bus url> <event type> <count>
// publishes <count> messages, one transaction each, and exits 0 (1 on any failure).

#include <cstdio>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/core/io_runtime.hpp>
#include <mercado/messaging/event_bus.hpp>

namespace asio = boost::asio;
using namespace mercado;

asio::awaitable<int> publish_all(std::shared_ptr<messaging::EventBus> bus, std::string type, int count) {
  for (int i = 0; i < count; ++i) {
    // (GCC 12 cannot keep an initializer list alive across co_await: build the value first.)
    boost::json::value data = {{"i", i}};
    auto r = co_await bus->publish(type, std::move(data));
    if (!r) {
      std::fprintf(stderr, "publish: %s %s\n", r.error().message.c_str(), r.error().internal.c_str());
      co_return 1;
    }
  }
  co_await bus->close();
  co_return 0;
}

int main(int argc, char** argv) {
  if (argc != 5 || std::string(argv[1]) != "publish") {
    std::fprintf(stderr, "usage: %s publish <bus url> <event type> <count>\n", argv[0]);
    return 2;
  }
  core::IoRuntime io(1);
  io.start();
  core::BlockingPool pool(2);
  messaging::BusOptions options;
  options.source = "test-peer";
  options.executor = io.context(0).get_executor();
  options.pool = &pool;
  int rc = 0;
  {
    auto bus = messaging::open_event_bus(argv[2], options);
    if (!bus) {
      std::fprintf(stderr, "open: %s\n", bus.error().message.c_str());
      return 1;
    }
    int count = std::stoi(argv[4]);
    auto done = asio::co_spawn(io.context(0), publish_all(*bus, argv[3], count), asio::use_future);
    rc = done.get();
  }
  io.stop();
  io.join();
  return rc;
}
