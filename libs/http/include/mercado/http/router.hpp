#pragma once
// Method + path-template routing.
//
// Templates are literal segments and parameters: "/users/{id}" (any non-empty segment),
// "/orders/{n:int}" (an optionally negative decimal integer), "/items/{id:uuid}",
// "/files/{rest:path}" (the rest of the path, last only). At each segment a literal beats a
// typed parameter, which beats a plain one, which beats a rest parameter; matching
// backtracks, so "/users/me" and "/users/{id}" coexist. Trailing slashes are significant.
// A GET route also answers HEAD (the server drops the body); a path with routes answers
// OPTIONS with 204 and Allow. A path that matches with another method gives 405 + Allow.
//
// Routes are added before the server starts; matching is then read-only and thread-safe.

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <mercado/http/method.hpp>
#include <mercado/http/request.hpp>
#include <mercado/http/response.hpp>

namespace mercado::http {

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;
// Runs around the route handler: may answer itself or `co_await next(req)`.
using Middleware = std::function<boost::asio::awaitable<Response>(Request&, const Handler& next)>;

struct RouteInfo {
  Method method;
  std::string path_template;
  std::string summary;  // free text, for the OpenAPI document
};

class Router {
 public:
  Router();
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Throws std::invalid_argument for a malformed template, a duplicate (method, template),
  // or two parameters of the same type at one position under different names.
  Router& add(Method method, std::string_view path_template, Handler handler,
              std::string summary = {});
  Router& get(std::string_view t, Handler h, std::string s = {}) { return add(Method::get, t, std::move(h), std::move(s)); }
  Router& post(std::string_view t, Handler h, std::string s = {}) { return add(Method::post, t, std::move(h), std::move(s)); }
  Router& put(std::string_view t, Handler h, std::string s = {}) { return add(Method::put, t, std::move(h), std::move(s)); }
  Router& patch(std::string_view t, Handler h, std::string s = {}) { return add(Method::patch, t, std::move(h), std::move(s)); }
  Router& del(std::string_view t, Handler h, std::string s = {}) { return add(Method::delete_, t, std::move(h), std::move(s)); }

  struct Route {
    Method method;
    std::string path_template;
    Handler handler;  // with middleware applied once the server starts
    std::string summary;
    void* user = nullptr;  // per-route data owned by the server (metric handles)
  };

  struct Match {
    enum class Kind { found, method_not_allowed, not_found } kind = Kind::not_found;
    const Route* route = nullptr;              // found
    std::string_view path_template;            // found or method_not_allowed
    std::string allow;                         // method_not_allowed, and OPTIONS
    bool head_via_get = false;                 // HEAD answered by the GET route
    bool options_auto = false;                 // OPTIONS answered by the router
    PathParams params;
  };
  // `path` is the raw request path (starting with '/').
  Match match(Method method, std::string_view path) const;

  // Wraps every route handler in the middleware, first = outermost. Call once, at start.
  void apply(std::span<const Middleware> middleware);

  std::vector<RouteInfo> routes() const;
  // Every route, for per-route state (server-owned).
  std::vector<Route*> mutable_routes();

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace mercado::http
