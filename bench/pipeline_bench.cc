// Micro benchmarks of Pipeline DAG scheduling: validation and one reconcile's plan of a DAG of
// state.range(0) steps, in layers of 100 where each step depends on two steps of the layer
// before. (The CRD admits at most 500 steps; 10,000 shows the headroom.)
//   build/bench/pipeline_bench --benchmark_counters_tabular=true
#include <stdexcept>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "crds/pipeline.h"
#include "crds/validation.h"
#include "reconcilers/pipeline.h"

namespace millrace::reconcilers {
namespace {

using nlohmann::json;

constexpr int kLayer = 100;

std::string StepName(int i) { return "s" + std::to_string(i); }

api::Pipeline LayeredPipeline(int steps) {
  json list = json::array();
  for (int i = 0; i < steps; ++i) {
    json step = {{"name", StepName(i)},
                 {"task",
                  {{"role", i < kLayer ? "Spout" : "Bolt"},
                   {"image", "busybox"},
                   {"output", {{"batch", {{"uri", "s3://bench/" + StepName(i)}}}}}}}};
    if (i >= kLayer) {
      const int base = (i / kLayer - 1) * kLayer;
      step["dependsOn"] = {StepName(base + i % kLayer), StepName(base + (i + 1) % kLayer)};
      step["task"]["input"] = {{"batch", {{"uri", "s3://bench/in"}}}};
    }
    list.push_back(std::move(step));
  }
  json p = {{"apiVersion", "millrace.io/v1alpha1"},
            {"kind", "Pipeline"},
            {"metadata",
             {{"name", "dag"}, {"namespace", "bench"}, {"uid", "uid-dag"}, {"generation", 1}}},
            {"spec", {{"steps", list}}}};
  auto pipeline = api::Pipeline::FromJson(p);
  if (!pipeline) throw std::runtime_error(api::ToString(pipeline.error()));
  return *pipeline;
}

// The child Tasks of the first `done` steps, Succeeded.
ObservedPipeline Succeeded(const api::Pipeline& p, int done) {
  ObservedPipeline observed;
  for (int i = 0; i < done; ++i) {
    observed.tasks.push_back({{"metadata",
                               {{"name", StepTaskName(p, StepName(i))},
                                {"labels", {{"millrace.io/step", StepName(i)}}}}},
                              {"spec", {{"role", "Bolt"}, {"image", "busybox"}}},
                              {"status", {{"phase", "Succeeded"}, {"attempts", 1}}}});
  }
  return observed;
}

const api::Time kNow = *api::ParseTime("2026-11-23T10:00:00Z");

void BM_ValidatePipeline(benchmark::State& state) {
  const api::Pipeline p = LayeredPipeline(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(api::Validate(p));
  state.counters["steps"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_ValidatePipeline)->Arg(500)->Arg(10'000)->Unit(benchmark::kMillisecond);

// range(1): the percentage of steps already Succeeded when the plan is made (0: the first
// reconcile, which creates the first layer; 50: halfway, one layer ready to start).
void BM_PlanPipeline(benchmark::State& state) {
  const int steps = static_cast<int>(state.range(0));
  const api::Pipeline p = LayeredPipeline(steps);
  const ObservedPipeline observed = Succeeded(p, steps * static_cast<int>(state.range(1)) / 100);
  std::size_t created = 0;
  for (auto _ : state) {
    const PipelinePlan plan = PlanPipeline(p, observed, kNow);
    created = plan.create.size();
    benchmark::DoNotOptimize(plan);
  }
  state.counters["steps"] = static_cast<double>(steps);
  state.counters["tasks_to_create"] = static_cast<double>(created);
}
BENCHMARK(BM_PlanPipeline)
    ->Args({500, 0})
    ->Args({500, 50})
    ->Args({10'000, 0})
    ->Args({10'000, 50})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace millrace::reconcilers

BENCHMARK_MAIN();
