#include "controller/metrics.h"

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace millrace::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, CounterAndGaugeExposeHelpTypeAndLabels) {
  Registry registry;
  auto& total = registry.AddCounter("controller_runtime_reconcile_total",
                                    "Total number of reconciliations per controller",
                                    {"controller", "result"});
  total.WithLabels({"task", "success"}).Inc();
  total.WithLabels({"task", "success"}).Inc(2);
  total.WithLabels({"task", "error"}).Inc();
  registry.AddGauge("workqueue_depth", "Current depth of workqueue", {"name"})
      .WithLabels({"task"})
      .Set(7);

  EXPECT_EQ(registry.Expose(),
            "# HELP controller_runtime_reconcile_total Total number of reconciliations per "
            "controller\n"
            "# TYPE controller_runtime_reconcile_total counter\n"
            "controller_runtime_reconcile_total{controller=\"task\",result=\"error\"} 1\n"
            "controller_runtime_reconcile_total{controller=\"task\",result=\"success\"} 3\n"
            "# HELP workqueue_depth Current depth of workqueue\n"
            "# TYPE workqueue_depth gauge\n"
            "workqueue_depth{name=\"task\"} 7\n");
}

TEST(MetricsTest, UnlabelledMetricHasNoBraces) {
  Registry registry;
  registry.AddGauge("up", "Up.").WithLabels({}).Set(1);
  EXPECT_THAT(registry.Expose(), HasSubstr("\nup 1\n"));
}

TEST(MetricsTest, GaugeIncDec) {
  Gauge g;
  g.Inc(3);
  g.Dec();
  EXPECT_EQ(g.Value(), 2);
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry registry;
  auto& h = registry.AddHistogram("rt_seconds", "Reconcile time.", {"controller"}, {0.1, 1, 10})
                .WithLabels({"task"});
  h.Observe(0.05);
  h.Observe(0.1);  // le is inclusive
  h.Observe(5);
  h.Observe(100);
  EXPECT_EQ(registry.Expose(),
            "# HELP rt_seconds Reconcile time.\n"
            "# TYPE rt_seconds histogram\n"
            "rt_seconds_bucket{controller=\"task\",le=\"0.1\"} 2\n"
            "rt_seconds_bucket{controller=\"task\",le=\"1\"} 2\n"
            "rt_seconds_bucket{controller=\"task\",le=\"10\"} 3\n"
            "rt_seconds_bucket{controller=\"task\",le=\"+Inf\"} 4\n"
            "rt_seconds_sum{controller=\"task\"} 105.15\n"
            "rt_seconds_count{controller=\"task\"} 4\n");
}

TEST(MetricsTest, DefaultBucketsAreControllerRuntimes) {
  const auto& b = DefaultBuckets();
  ASSERT_EQ(b.size(), 40u);
  EXPECT_EQ(b.front(), 0.005);
  EXPECT_EQ(b.back(), 60);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

TEST(MetricsTest, ExponentialBuckets) {
  EXPECT_EQ(ExponentialBuckets(1, 10, 3), (std::vector<double>{1, 10, 100}));
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Registry registry;
  registry.AddCounter("c_total", "Help with \\ and\nnewline.", {"l"})
      .WithLabels({"a\\b\"c\nd"})
      .Inc();
  const std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("# HELP c_total Help with \\\\ and\\nnewline.\n"));
  EXPECT_THAT(text, HasSubstr("c_total{l=\"a\\\\b\\\"c\\nd\"} 1\n"));
}

TEST(MetricsTest, FormatValueSpecials) {
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
  EXPECT_EQ(FormatValue(0.005), "0.005");
  EXPECT_EQ(FormatValue(42), "42");
}

TEST(MetricsTest, SameRegistrationReturnsTheSameFamily) {
  Registry registry;
  auto& a = registry.AddCounter("x_total", "X.", {"name"});
  auto& b = registry.AddCounter("x_total", "X.", {"name"});
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a.WithLabels({"q"}), &b.WithLabels({"q"}));
}

TEST(MetricsTest, ConflictingOrInvalidRegistrationsThrow) {
  Registry registry;
  registry.AddCounter("x_total", "X.", {"name"});
  EXPECT_THROW(registry.AddGauge("x_total", "X.", {"name"}), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("x_total", "X.", {"other"}), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("1bad", "X."), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("bad-name", "X."), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("ok_total", "X.", {"le"}), std::invalid_argument);
  EXPECT_THROW(registry.AddHistogram("h", "H.", {}, {2, 1}), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("x_total", "X.", {"name"}).WithLabels({}),
               std::invalid_argument);
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  Registry registry;
  auto& family = registry.AddCounter("n_total", "N.", {"k"});
  auto& h = registry.AddHistogram("h_seconds", "H.", {}, {1}).WithLabels({});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kPerThread; ++i) {
          family.WithLabels({"a"}).Inc();
          h.Observe(0.5);
        }
      });
    }
  }
  EXPECT_EQ(family.WithLabels({"a"}).Value(), kThreads * kPerThread);
  EXPECT_EQ(h.Collect().cumulative.back(), static_cast<std::uint64_t>(kThreads * kPerThread));
}

TEST(MetricsTest, CollectHooksRunOnExposeUntilTheHandleDies) {
  Registry registry;
  auto& g = registry.AddGauge("g", "G.").WithLabels({});
  int runs = 0;
  {
    CollectHook hook = registry.OnCollect([&] { g.Set(++runs); });
    EXPECT_THAT(registry.Expose(), HasSubstr("\ng 1\n"));
    CollectHook moved = std::move(hook);
    EXPECT_THAT(registry.Expose(), HasSubstr("\ng 2\n"));
  }
  EXPECT_THAT(registry.Expose(), HasSubstr("\ng 2\n"));
  EXPECT_EQ(runs, 2);
}

TEST(MetricsTest, ParseProcStatHandlesSpacesInCommand) {
  // Fields 14, 15 (utime, stime), 22 (starttime) and 24 (rss); comm holds ") (".
  const std::string stat =
      "1234 (my ) (prog) S 1 2 3 4 5 6 7 8 9 10 150 50 13 14 15 16 17 18 9000 20 321 22 23\n";
  const auto s = ParseProcStat(stat);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->utime_ticks, 150u);
  EXPECT_EQ(s->stime_ticks, 50u);
  EXPECT_EQ(s->start_ticks, 9000u);
  EXPECT_EQ(s->rss_pages, 321u);
  EXPECT_FALSE(ParseProcStat("1234 (x) S 1 2").has_value());
}

TEST(MetricsTest, ParseBootTime) {
  EXPECT_EQ(ParseBootTime("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"), 1700000000u);
  EXPECT_FALSE(ParseBootTime("cpu 1 2 3\n").has_value());
}

TEST(MetricsTest, ProcessMetricsAreExposed) {
  Registry registry;
  CollectHook hook = RegisterProcessMetrics(registry);
  const std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_resident_memory_bytes gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_start_time_seconds gauge\n"));
  EXPECT_THAT(text, Not(HasSubstr("process_resident_memory_bytes 0\n")));
  EXPECT_THAT(text, Not(HasSubstr("process_start_time_seconds 0\n")));
}

}  // namespace
}  // namespace millrace::controller
