// libFuzzer target: raw bytes through the server's request parsing (Beast parser into a
// Request, including pipelined requests and split reads), routing, query and parameter
// decoding, and response serialization. Built by the `fuzz` preset (clang).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <mercado/http/problem.hpp>
#include <mercado/http/router.hpp>

#include "request_parser.hpp"
#include "response_writer.hpp"

namespace {

using namespace mercado::http;

Handler noop() {
  return [](Request&) -> boost::asio::awaitable<Response> { co_return Response(200); };
}

Router& router() {
  static Router* r = [] {
    auto* x = new Router();
    x->get("/", noop());
    x->get("/users/{id}", noop());
    x->get("/users/me", noop());
    x->put("/users/{id}/profile", noop());
    x->get("/orders/{n:int}", noop());
    x->get("/items/{id:uuid}", noop());
    x->get("/files/{rest:path}", noop());
    x->post("/orders", noop());
    return x;
  }();
  return *r;
}

void exercise(Request& req) {
  auto m = router().match(req.method(), req.path());
  req.set_route(m.path_template, m.params);
  (void)req.query_valid();
  (void)req.query_params();
  (void)req.query("q");
  (void)req.param("id");
  (void)req.param_int("n");
  (void)req.header("Content-Type");
  Response res = problem(req, m.kind == Router::Match::Kind::not_found ? 404 : 200, "x");
  res.headers.add(std::string(req.method_name()), std::string(req.target()));
  std::string out;
  detail::write_head(out, res, req.keep_alive(), req.version());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte chooses where the input is split, as if it arrived in two reads.
  const std::size_t split = data[0] % (size + 1);
  std::string buffer;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t offered = std::min(split, input.size());
  std::size_t begin = 0;
  for (int requests = 0; requests < 8; ++requests) {
    Request req;
    detail::RequestParser parser(req, 4096, 2048);
    detail::ParseFailure failure = detail::ParseFailure::none;
    std::string why;
    while (!parser.is_done()) {
      std::size_t used = parser.feed(input.substr(begin, offered - begin), failure, why);
      begin += used;
      if (failure != detail::ParseFailure::none) return 0;
      if (parser.is_done()) break;
      if (offered == input.size() && used == 0) return 0;  // needs bytes we do not have
      if (used == 0) offered = input.size();               // the second "read" arrives
    }
    exercise(req);
    if (!parser.keep_alive() || begin >= input.size()) return 0;
  }
  return 0;
}
