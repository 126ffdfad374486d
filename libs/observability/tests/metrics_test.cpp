#include <mercado/observability/metrics.hpp>

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace mercado::obs {
namespace {

TEST(Metrics, CounterWithLabelsExposesPrometheusText) {
  Registry r;
  auto& fam = r.counter("http_requests_total", "Total HTTP requests",
                        {"method", "endpoint", "status_code"});
  fam.with({"GET", "/users/{id}", "200"}).inc();
  fam.with({"GET", "/users/{id}", "200"}).inc(2);
  fam.with({"POST", "/users", "201"}).inc();
  EXPECT_EQ(r.expose(),
            "# HELP http_requests_total Total HTTP requests\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{method=\"GET\",endpoint=\"/users/{id}\",status_code=\"200\"} 3\n"
            "http_requests_total{method=\"POST\",endpoint=\"/users\",status_code=\"201\"} 1\n");
}

TEST(Metrics, SameLabelsReturnTheSameChild) {
  Registry r;
  auto& fam = r.counter("c_total", "c", {"a"});
  EXPECT_EQ(&fam.with({"x"}), &fam.with({"x"}));
  EXPECT_NE(&fam.with({"x"}), &fam.with({"y"}));
}

TEST(Metrics, LabelValuesAreEscaped) {
  Registry r;
  r.gauge("g", "a \"quoted\" help\\", {"v"}).with({"a\"b\\c\nd"}).set(1.5);
  EXPECT_EQ(r.expose(),
            "# HELP g a \"quoted\" help\\\\\n"
            "# TYPE g gauge\n"
            "g{v=\"a\\\"b\\\\c\\nd\"} 1.5\n");
}

TEST(Metrics, HistogramBucketsAreCumulativeAndEndWithInf) {
  Registry r;
  const double bounds[] = {0.1, 1.0};
  auto& h = r.histogram("d_seconds", "durations", {"m"}, bounds).with({"GET"});
  h.observe(0.05);
  h.observe(0.1);  // le is inclusive
  h.observe(0.5);
  h.observe(3);
  EXPECT_EQ(r.expose(),
            "# HELP d_seconds durations\n"
            "# TYPE d_seconds histogram\n"
            "d_seconds_bucket{m=\"GET\",le=\"0.1\"} 2\n"
            "d_seconds_bucket{m=\"GET\",le=\"1\"} 3\n"
            "d_seconds_bucket{m=\"GET\",le=\"+Inf\"} 4\n"
            "d_seconds_sum{m=\"GET\"} 3.65\n"
            "d_seconds_count{m=\"GET\"} 4\n");
}

TEST(Metrics, GaugeGoesUpAndDown) {
  Registry r;
  auto& g = r.gauge("active_connections", "open connections").get();
  g.inc();
  g.inc();
  g.dec();
  EXPECT_EQ(g.value(), 1);
}

TEST(Metrics, FamiliesAreSortedByName) {
  Registry r;
  r.counter("zeta_total", "z").get().inc();
  r.counter("alpha_total", "a").get().inc();
  auto text = r.expose();
  EXPECT_LT(text.find("alpha_total"), text.find("zeta_total"));
}

TEST(Metrics, ReRegisteringReturnsTheFamilyOrThrowsOnMismatch) {
  Registry r;
  auto& a = r.counter("x_total", "x", {"l"});
  EXPECT_EQ(&a, &r.counter("x_total", "x", {"l"}));
  EXPECT_THROW(r.counter("x_total", "x", {"other"}), std::invalid_argument);
  EXPECT_THROW(r.gauge("x_total", "x", {"l"}), std::invalid_argument);
}

TEST(Metrics, InvalidNamesAndLabelCountsAreProgrammerErrors) {
  Registry r;
  EXPECT_THROW(r.counter("9bad", "x"), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "x", {"__reserved"}), std::invalid_argument);
  auto& fam = r.counter("two_total", "x", {"a", "b"});
  EXPECT_THROW(fam.with({"only-one"}), std::invalid_argument);
  const double bad[] = {1.0, 0.5};
  EXPECT_THROW(r.histogram("h", "x", {}, bad), std::invalid_argument);
}

TEST(Metrics, ConcurrentIncrementsAreAllCounted) {
  Registry r;
  auto& fam = r.counter("n_total", "n", {"k"});
  auto& h = r.histogram("h_seconds", "h").get();
  constexpr int kThreads = 4, kPer = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPer; ++i) {
        fam.with({i % 2 == 0 ? "even" : "odd"}).inc();
        h.observe(0.001);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fam.with({"even"}).value() + fam.with({"odd"}).value(), kThreads * kPer);
  EXPECT_EQ(h.snapshot().count, static_cast<std::uint64_t>(kThreads * kPer));
}

TEST(Metrics, CallbacksAreReadAtScrape) {
  Registry r;
  double v = 1;
  r.gauge_callback("temp", "t", [&] { return v; });
  EXPECT_NE(r.expose().find("temp 1\n"), std::string::npos);
  v = 2.5;
  EXPECT_NE(r.expose().find("temp 2.5\n"), std::string::npos);
}

TEST(Metrics, ProcessMetricsReportResidentMemory) {
  Registry r;
  register_process_metrics(r);
  auto text = r.expose();
  auto pos = text.find("\nprocess_resident_memory_bytes ");
  ASSERT_NE(pos, std::string::npos) << text;
  EXPECT_GT(std::stod(text.substr(pos + 31)), 1e5);
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
}

}  // namespace
}  // namespace mercado::obs
