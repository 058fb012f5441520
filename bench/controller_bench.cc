// Micro benchmarks of the controller runtime: watch event decoding, store insert/lookup and
// memory per object, work queue throughput.
//   build-controller/bench/controller_bench --benchmark_counters_tabular=true
#include <malloc.h>

#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "controller/store.h"
#include "controller/work_queue.h"
#include "kubeclient/watch_decoder.h"
#include "reconcilers/task.h"

namespace millrace::controller {
namespace {

WorkQueueOptions BenchQueue() {
  WorkQueueOptions o;
  o.name = "bench";
  return o;
}

// One thread: Add, Get, Done of distinct keys (the queue's per-key overhead).
void BM_QueueAddGetDone(benchmark::State& state) {
  WorkQueue queue(BenchQueue());
  std::vector<std::string> keys;
  for (int i = 0; i < 1024; ++i) keys.push_back("ns/object-" + std::to_string(i));
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& key = keys[i++ % keys.size()];
    queue.Add(key);
    auto got = queue.Get();
    queue.Done(*got);
  }
  state.counters["keys/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_QueueAddGetDone);

// state.range(0) workers draining 100,000 keys added by one producer (keys/s end to end).
void BM_QueueWorkers(benchmark::State& state) {
  constexpr int kKeys = 100'000;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back("ns/object-" + std::to_string(i));
  for (auto _ : state) {
    WorkQueue queue(BenchQueue());
    std::atomic<int> done{0};
    std::vector<std::jthread> workers;
    for (int w = 0; w < state.range(0); ++w) {
      workers.emplace_back([&] {
        while (auto key = queue.Get()) {
          queue.Done(*key);
          if (++done == kKeys) queue.ShutDown();
        }
      });
    }
    for (const auto& key : keys) queue.Add(key);
    workers.clear();
  }
  state.counters["keys/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * kKeys,
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_QueueWorkers)->Arg(1)->Arg(2)->Arg(4)->UseRealTime();

// A Pod as the API server sends it, with managedFields and a last-applied annotation.
nlohmann::json Pod(int i) {
  const std::string name = "job-" + std::to_string(i / 2) + "-pod-" + std::to_string(i);
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", name},
        {"namespace", "team-" + std::to_string(i % 20)},
        {"uid", "6f1c1d2e-0000-4000-8000-" + std::to_string(100000000000 + i)},
        {"resourceVersion", std::to_string(1000 + i)},
        {"creationTimestamp", "2026-11-22T09:00:00Z"},
        {"labels",
         {{"millrace.io/task", "task-" + std::to_string(i / 2)},
          {"millrace.io/zone", "zone-" + std::to_string(i % 20)},
          {"batch.kubernetes.io/job-name", "job-" + std::to_string(i / 2)}}},
        {"annotations",
         {{"kubectl.kubernetes.io/last-applied-configuration", std::string(600, 'x')}}},
        {"ownerReferences",
         {{{"apiVersion", "batch/v1"},
           {"kind", "Job"},
           {"name", "job-" + std::to_string(i / 2)},
           {"uid", "0a0b0c0d-0000-4000-8000-" + std::to_string(100000000000 + i / 2)},
           {"controller", true},
           {"blockOwnerDeletion", true}}}},
        {"managedFields",
         {{{"manager", "kube-controller-manager"},
           {"operation", "Update"},
           {"apiVersion", "v1"},
           {"fieldsType", "FieldsV1"},
           {"fieldsV1",
            {{"f:metadata", {{"f:labels", {{".", nlohmann::json::object()}}}}},
             {"f:spec", {{"f:containers", nlohmann::json::object()}}}}}}}}}},
      {"spec",
       {{"restartPolicy", "Never"},
        {"nodeName", "kwok-node-" + std::to_string(i % 10)},
        {"containers",
         {{{"name", "main"},
           {"image", "registry.example.com/millrace/bolt:1.4.2"},
           {"args", {"--input", "s3://data/in/2026-11-22", "--output", "s3://data/out"}},
           {"resources",
            {{"requests", {{"cpu", "500m"}, {"memory", "1Gi"}}},
             {"limits", {{"cpu", "1"}, {"memory", "2Gi"}}}}}}}}}},
      {"status",
       {{"phase", "Running"},
        {"podIP", "10.0." + std::to_string(i % 250) + "." + std::to_string(i % 200)},
        {"startTime", "2026-11-22T09:00:01Z"},
        {"conditions",
         {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", "2026-11-22T09:00:02Z"}},
          {{"type", "PodScheduled"},
           {"status", "True"},
           {"lastTransitionTime", "2026-11-22T09:00:00Z"}}}}}}};
}

// One watch event line as the API server streams it: a MODIFIED Pod (about 1.9 KB).
void BM_WatchEventDecode(benchmark::State& state) {
  std::vector<std::string> lines;
  for (int i = 0; i < 256; ++i) {
    lines.push_back(nlohmann::json{{"type", "MODIFIED"}, {"object", Pod(i)}}.dump());
  }
  std::size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& line = lines[i++ % lines.size()];
    auto event = kube::DecodeWatchEvent(line);
    benchmark::DoNotOptimize(event);
    bytes += line.size();
  }
  state.counters["events/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["bytes/event"] = static_cast<double>(bytes) / static_cast<double>(i);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_WatchEventDecode);

// Upsert of a Pod into a store of state.range(0) Pods (trim and indexes included): what the
// informer does for each watch event.
void BM_StoreUpsert(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Store store;
  for (int i = 0; i < n; ++i) store.Upsert(Pod(i));
  std::vector<nlohmann::json> updates;
  for (int i = 0; i < 256; ++i) updates.push_back(Pod(i * (n / 256)));
  std::size_t i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    nlohmann::json update = updates[i++ % updates.size()];
    state.ResumeTiming();
    store.Upsert(std::move(update));
  }
  state.counters["upserts/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_StoreUpsert)->Arg(10'000);

// Get by key and ByIndex by label in a store of 10,000 Pods: what a reconcile reads.
void BM_StoreGet(benchmark::State& state) {
  Store store;
  std::vector<std::string> keys;
  for (int i = 0; i < 10'000; ++i) keys.push_back(ObjectKey(*store.Upsert(Pod(i)).current));
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(store.Get(keys[i++ % keys.size()]));
  state.counters["gets/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_StoreGet);

void BM_StoreByIndex(benchmark::State& state) {
  Store store(StoreOptions{.trim = {}, .indexed_labels = {"millrace.io/task"}});
  for (int i = 0; i < 10'000; ++i) store.Upsert(Pod(i));
  int i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        store.ByIndex(Index::kLabel, "millrace.io/task=task-" + std::to_string(i++ % 5000)));
  }
  state.counters["lookups/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_StoreByIndex);

std::size_t HeapInUse() { return mallinfo2().uordblks; }

// Heap bytes per cached Pod at state.range(0) objects, indexes included. range(1) = 1 drops
// the spec as a reconciler that never reads pod specs would (StoreOptions::trim).
void BM_StoreBytesPerObject(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  double bytes_per_object = 0;
  for (auto _ : state) {
    StoreOptions options{.trim = {}, .indexed_labels = {"millrace.io/task"}};
    if (state.range(1) == 1) options.trim = [](nlohmann::json& o) { o.erase("spec"); };
    const std::size_t before = HeapInUse();
    Store store(std::move(options));
    {
      std::vector<nlohmann::json> list;
      for (int i = 0; i < n; ++i) list.push_back(Pod(i));
      store.Replace(std::move(list), "1");  // the list itself is freed here
    }
    bytes_per_object = (static_cast<double>(HeapInUse()) - static_cast<double>(before)) / n;
    benchmark::DoNotOptimize(store.size());
  }
  state.counters["bytes/object"] = bytes_per_object;
}
BENCHMARK(BM_StoreBytesPerObject)->Args({10'000, 0})->Args({10'000, 1})->Iterations(1);

// A Job as the Task reconciler makes it, with the fields the API server and the Job controller add.
nlohmann::json Job(int i) {
  nlohmann::json pod = Pod(i);
  nlohmann::json job{
      {"apiVersion", "batch/v1"},
      {"kind", "Job"},
      {"metadata", pod["metadata"]},
      {"spec",
       {{"backoffLimit", 0},
        {"completions", 1},
        {"parallelism", 1},
        {"completionMode", "NonIndexed"},
        {"selector", {{"matchLabels", {{"batch.kubernetes.io/controller-uid", "x"}}}}},
        {"template",
         {{"metadata", {{"labels", pod["metadata"]["labels"]}}}, {"spec", pod["spec"]}}}}},
      {"status",
       {{"active", 1},
        {"ready", 1},
        {"startTime", "2026-11-22T09:00:00Z"},
        {"uncountedTerminatedPods", nlohmann::json::object()}}}};
  job["metadata"]["name"] = "task-" + std::to_string(i) + "-1";
  job["metadata"]["ownerReferences"][0]["kind"] = "Task";
  return job;
}

// Heap bytes per object with 10,000 Jobs and 10,000 of their Pods cached as millrace-controller
// caches them (TrimTaskJob, TrimTaskPod, after the store's own trim of managedFields and
// last-applied).
void BM_StoreJobsAndPods(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  double bytes_per_object = 0;
  for (auto _ : state) {
    const std::size_t before = HeapInUse();
    Store jobs(StoreOptions{.trim = reconcilers::TrimTaskJob, .indexed_labels = {}});
    Store pods(
        StoreOptions{.trim = reconcilers::TrimTaskPod, .indexed_labels = {"millrace.io/task"}});
    {
      std::vector<nlohmann::json> job_list, pod_list;
      for (int i = 0; i < n; ++i) {
        job_list.push_back(Job(i));
        pod_list.push_back(Pod(i));
      }
      jobs.Replace(std::move(job_list), "1");
      pods.Replace(std::move(pod_list), "1");
    }
    bytes_per_object = (static_cast<double>(HeapInUse()) - static_cast<double>(before)) / (2 * n);
    benchmark::DoNotOptimize(jobs.size() + pods.size());
  }
  state.counters["bytes/object"] = bytes_per_object;
}
BENCHMARK(BM_StoreJobsAndPods)->Arg(10'000)->Iterations(1);

}  // namespace
}  // namespace millrace::controller

BENCHMARK_MAIN();
