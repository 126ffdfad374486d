#include <mercado/http/openapi.hpp>

#include <gtest/gtest.h>

namespace demo {
struct Item {
  std::string product_id;
  std::int32_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(Item, (), (product_id, quantity))
struct CreateOrder {
  std::string customer_id;
  std::vector<Item> items;
  std::optional<std::string> note;
};
BOOST_DESCRIBE_STRUCT(CreateOrder, (), (customer_id, items, note))
}  // namespace demo

namespace mercado::http {
namespace {

namespace bj = boost::json;

Handler ok() {
  return [](Request&) -> boost::asio::awaitable<Response> { co_return Response(200); };
}

TEST(OpenApi, DocumentsRoutesParametersAndSchemas) {
  Router r;
  r.post("/orders", ok(), "Places an order");
  r.get("/orders/{id}", ok(), "Reads an order");
  r.get("/items/{n:int}", ok());
  OpenApi api{"order-service", "0.1.0", "Orders"};
  api.describe(Method::post, "/orders", {.request = schema_of<demo::CreateOrder>(), .status = 202, .bearer = true});
  auto doc = api.document(r);
  EXPECT_EQ(doc.at("openapi").as_string(), "3.0.3");
  const auto& post = doc.at("paths").at("/orders").at("post");
  EXPECT_EQ(post.at("summary").as_string(), "Places an order");
  EXPECT_TRUE(post.at("responses").as_object().contains("202"));
  EXPECT_TRUE(post.at("responses").as_object().contains("401"));
  const auto& schema = post.at("requestBody").at("content").at("application/json").at("schema");
  EXPECT_EQ(schema.at("required").as_array().size(), 2U);  // note is optional
  EXPECT_EQ(schema.at("properties").at("items").at("items").at("properties").at("quantity").at("type").as_string(), "integer");
  const auto& typed = doc.at("paths").at("/items/{n}").at("get");
  EXPECT_EQ(typed.at("parameters").at(0).at("schema").at("type").as_string(), "integer");
  EXPECT_EQ(doc.at("paths").at("/orders/{id}").at("get").at("parameters").at(0).at("name").as_string(), "id");
}

TEST(OpenApi, DocumentsQueryParametersHeadersAndFurtherErrors) {
  Router r;
  r.post("/orders", ok());
  r.get("/orders", ok());
  r.post("/accounts/{id}/deposits", ok());
  r.get("/accounts/{id}", ok());
  OpenApi api{"demo", "0.1.0", ""};
  api.describe(Method::post, "/orders",
               {.status = 202, .parameters = {idempotency_key_header()}, .errors = {{422, "An unknown product"}}});
  api.describe(Method::get, "/orders", {.parameters = {{.name = "customer_id", .required = true}}});
  api.describe(Method::post, "/accounts/{id}/deposits", {.status = 201, .not_found = false});
  auto doc = api.document(r);
  const auto& post = doc.at("paths").at("/orders").at("post");
  const auto& header = post.at("parameters").at(0);
  EXPECT_EQ(header.at("name").as_string(), "Idempotency-Key");
  EXPECT_EQ(header.at("in").as_string(), "header");
  EXPECT_FALSE(header.at("required").as_bool());
  EXPECT_EQ(post.at("responses").at("422").at("description").as_string(), "An unknown product");
  const auto& query = doc.at("paths").at("/orders").at("get").at("parameters").at(0);
  EXPECT_EQ(query.at("in").as_string(), "query");
  EXPECT_TRUE(query.at("required").as_bool());
  // A path parameter and the 404 by default; an operation that creates what it names says so.
  const auto& get = doc.at("paths").at("/accounts/{id}").at("get");
  EXPECT_TRUE(get.at("responses").as_object().contains("404"));
  const auto& deposit = doc.at("paths").at("/accounts/{id}/deposits").at("post");
  EXPECT_FALSE(deposit.at("responses").as_object().contains("404"));
  EXPECT_EQ(deposit.at("parameters").at(0).at("in").as_string(), "path");
}

}  // namespace
}  // namespace mercado::http
