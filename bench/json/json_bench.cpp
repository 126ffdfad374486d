// Reading an order's body (POST /orders, the shop's most frequent request body):
//   baseline  boost::json::parse (no duplicate-key check)
//   parse     mercado::json::parse: the same DOM, and more keys than members is refused
//   decode    mercado::json::decode<Order>: parse, then the typed, validated struct
// Prints each one's CPU time as a ratio of the baseline's, measured in the same run.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>

#include <boost/json/parse.hpp>

#include <mercado/json/codec.hpp>

namespace {

struct Item {
  std::string product_id;
  std::int32_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(Item, (), (product_id, quantity))

struct Order {
  std::string customer_id;
  std::vector<Item> items;
  std::string address;
};
BOOST_DESCRIBE_STRUCT(Order, (), (customer_id, items, address))

const std::string kBody =
    R"({"customer_id":"0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b","items":[{"product_id":"p-1","quantity":2},)"
    R"({"product_id":"p-3","quantity":1}],"address":"Calle Mayor 1, 28013 Madrid"})";

void BM_BoostJsonParse(benchmark::State& state) {
  for (auto _ : state) {
    boost::system::error_code ec;
    auto v = boost::json::parse(kBody, ec);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_BoostJsonParse);

void BM_MercadoJsonParse(benchmark::State& state) {
  for (auto _ : state) {
    auto v = mercado::json::parse(kBody);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_MercadoJsonParse);

void BM_MercadoDecodeOrder(benchmark::State& state) {
  for (auto _ : state) {
    auto v = mercado::json::decode<Order>(kBody);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_MercadoDecodeOrder);

// The console output, then each benchmark's CPU time against the baseline's.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    // The median of repetitions when there are some, else the single run.
    for (const auto& r : runs) {
      const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      if (median || (r.run_type == Run::RT_Iteration && r.repetitions <= 1)) {
        cpu_[r.run_name.function_name] = r.GetAdjustedCPUTime();
      }
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    auto base = cpu_.find("BM_BoostJsonParse");
    if (base == cpu_.end() || base->second <= 0) return;
    for (const auto& [name, t] : cpu_) std::printf("%-24s %.2fx the baseline\n", name.c_str(), t / base->second);
  }

 private:
  std::map<std::string, double> cpu_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
