#pragma once
// An OpenAPI 3.0 document generated from the router: every route with its method, summary,
// path parameters (typed from the template: {id:int} is an integer, {id:uuid} a uuid
// string) and the standard error responses (RFC 9457 problem). Request and response
// schemas are added per route with `describe()` from Boost.Describe'd structs.
//
//   http::OpenApi api{"order-service", "0.1.0", "Orders and the order saga"};
//   api.describe(Method::post, "/orders", {.request = http::schema_of<CreateOrder>(),
//                                          .response = http::schema_of<OrderView>(), .status = 202});
//   http::add_openapi_route(server, api);   // GET /openapi.json

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include <mercado/http/server.hpp>
#include <mercado/json/schema.hpp>

namespace mercado::http {

// A query parameter or request header of an operation (path parameters come from the route
// template).
struct ParameterDoc {
  std::string name;
  std::string in = "query";  // "query" or "header"
  bool required = false;
  std::string description;
};

// The Idempotency-Key header of a command that has its effect once (service::idempotent).
ParameterDoc idempotency_key_header();

struct OperationDoc {
  boost::json::value request;   // JSON Schema of the body (null: none)
  boost::json::value response;  // JSON Schema of the success body (null: none)
  int status = 200;             // success status
  bool bearer = false;          // requires Authorization: Bearer
  std::vector<ParameterDoc> parameters;               // query parameters and headers
  std::vector<std::pair<int, std::string>> errors;    // further error statuses, and when
  bool not_found = true;  // with path parameters: 404 when the resource does not exist
};

struct OpenApi {
  std::string title;
  std::string version = "0.1.0";
  std::string description;
  std::map<std::pair<Method, std::string>, OperationDoc> operations;

  void describe(Method m, std::string path_template, OperationDoc doc) {
    operations[{m, std::move(path_template)}] = std::move(doc);
  }
  // The document for the routes registered in `router` now.
  boost::json::object document(const Router& router) const;
};

template <class T>
boost::json::value schema_of() {
  return json::schema<T>();
}

// Adds GET /openapi.json serving the document of every route (computed at the first request).
void add_openapi_route(Server& server, OpenApi api);

}  // namespace mercado::http
