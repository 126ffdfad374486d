#pragma once
// System-test harness: the five shop services as real child processes on ephemeral ports
// (PORT=0 + READY_FILE), each with its own SQLite file, sharing the SQLite bus, under a
// fresh data directory. Blocking HTTP helpers run the project's client on a private
// io_context.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include <mercado/core/process.hpp>
#include <mercado/http/client.hpp>

namespace shop::testing {

struct Reply {
  int status = 0;  // 0: no answer
  boost::json::value json;
  std::string body;
  std::string error;
};

// The first of `count` consecutive free loopback ports below net.ipv4.ip_local_port_range,
// so that no outgoing connection is ever given one while the service that owns it restarts.
int free_ports_below_ephemeral_range(int count);

// One HTTP request on a private io_context (blocking).
Reply send(mercado::http::ClientRequest request);
Reply call(const std::string& method, const std::string& url, const std::string& body = {},
           const std::string& authorization = {}, const std::string& idempotency_key = {});

// Extra environment for the services: `all` for every one, `per_service` by name (e.g. each
// service's own DATABASE_URL). Later entries win over the harness's defaults.
struct ShopOptions {
  std::vector<std::pair<std::string, std::string>> all;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> per_service;
};

class Shop {
 public:
  explicit Shop(ShopOptions options = {});  // starts every service and waits for /ready
  ~Shop();  // SIGTERM, then SIGKILL

  std::string url(const std::string& service) const { return urls_.at(service); }
  // Stops a service: SIGKILL when `hard`, else SIGTERM and wait.
  void stop(const std::string& service, bool hard = false);
  // Starts it again with the same port, database and instance id; waits for /ready.
  void start(const std::string& service);
  void signal(const std::string& service, int signo);

  Reply call(const std::string& method, const std::string& url, const std::string& body = {},
             const std::string& authorization = {}, const std::string& idempotency_key = {});
  const std::string& service_auth() const { return service_auth_; }

  // A registered, logged-in customer with `deposit` cents in the account.
  struct Customer {
    std::string id;
    std::string auth;
  };
  Customer customer(std::int64_t deposit);

  // Places an order and waits until the saga ended; returns the final order JSON.
  Reply place(const Customer& c, const boost::json::array& items, const std::string& address,
              const std::string& idempotency_key = {});
  Reply wait_final(const Customer& c, const std::string& order_id, std::chrono::seconds timeout = std::chrono::seconds(60));

  // stock + reserved + shipped per product.
  std::map<std::string, std::int64_t> stock_totals();
  std::int64_t balance(const Customer& c);
  std::int64_t captured(const std::vector<std::string>& order_ids);  // COMPLETED payments, cents

  const std::string& data_dir() const { return dir_; }

 private:
  void launch(const std::string& service);
  bool try_launch(const std::string& service, std::string& log_tail);  // false: it exited or never became ready
  ShopOptions options_;
  std::string dir_;
  std::string secret_file_;
  std::string service_auth_;
  std::map<std::string, int> ports_;
  std::map<std::string, std::string> urls_;
  std::map<std::string, std::optional<mercado::core::Process>> procs_;
};

boost::json::array items(std::initializer_list<std::pair<std::string, int>> lines);

}  // namespace shop::testing
