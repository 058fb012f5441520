// Load generator for bench/load: creates objects in one namespace and times what follows, from
// watches on the same API server.
//
//   operator_load --mode tasks|jobs --count N [--rate R] [--namespace NS] [--threads T]
//                 [--label L]
//
// tasks: N batch Tasks (load-<L>-<i>); records create -> first Job of the task and create ->
//        Task Succeeded. jobs: N Jobs shaped like the ones Millrace creates, posted directly (the
//        API server's ceiling for the same writes); records create -> Job seen by a watch.
// --rate R paces creates at R per second (0: as fast as T threads go). Uses $KUBECONFIG with no
// client-side rate limit. Prints one JSON line of results on stdout.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "kubeclient/client.h"
#include "kubeclient/config.h"

namespace {

using Clock = std::chrono::steady_clock;
using millrace::kube::Client;
using nlohmann::json;
namespace resources = millrace::kube::resources;

// object[k1][k2]... as a string, "" when any level is missing or of another type.
std::string Str(const json& object, std::initializer_list<const char*> path) {
  const json* at = &object;
  for (const char* key : path) {
    if (!at->is_object()) return "";
    const auto it = at->find(key);
    if (it == at->end()) return "";
    at = &*it;
  }
  return at->is_string() ? at->get<std::string>() : "";
}

const millrace::kube::ResourceRef kTasks{"millrace.io", "v1alpha1", "tasks", true, "Task"};

struct Timeline {
  std::mutex mu;
  std::map<std::string, Clock::time_point> created, child_seen, succeeded;

  void Mark(std::map<std::string, Clock::time_point>& m, const std::string& key) {
    std::lock_guard lock(mu);
    m.try_emplace(key, Clock::now());
  }
  size_t Count(const std::map<std::string, Clock::time_point>& m) {
    std::lock_guard lock(mu);
    return m.size();
  }
};

json Percentiles(const std::map<std::string, Clock::time_point>& from,
                 const std::map<std::string, Clock::time_point>& to) {
  std::vector<double> ms;
  for (const auto& [key, end] : to) {
    if (auto start = from.find(key); start != from.end()) {
      ms.push_back(std::chrono::duration<double, std::milli>(end - start->second).count());
    }
  }
  if (ms.empty()) return nullptr;
  std::sort(ms.begin(), ms.end());
  auto at = [&](double p) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))];
  };
  return {{"n", ms.size()},
          {"p50_ms", at(0.50)},
          {"p95_ms", at(0.95)},
          {"p99_ms", at(0.99)},
          {"max_ms", ms.back()}};
}

json TaskManifest(const std::string& name, const std::string& ns) {
  return {{"apiVersion", "millrace.io/v1alpha1"},
          {"kind", "Task"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"bench", "load"}}}}},
          {"spec",
           {{"role", "Spout"},
            {"image", "busybox"},
            {"output", {{"batch", {{"uri", "s3://bench/" + name}}}}},
            {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}}}}}};
}

json JobManifest(const std::string& name, const std::string& ns) {
  json container = {{"name", "main"},
                    {"image", "busybox"},
                    {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}}}};
  json pod = {{"metadata", {{"labels", {{"bench", "load"}}}}},
              {"spec", {{"restartPolicy", "Never"}, {"containers", json::array({container})}}}};
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"bench", "load"}}}}},
          {"spec", {{"backoffLimit", 0}, {"template", pod}}}};
}

// Watches `ref` in `ns` from now until `stop`, calling `on` for every object event.
std::jthread WatchFrom(Client& client, const millrace::kube::ResourceRef& ref,
                       const std::string& ns, std::function<void(const json&)> on) {
  auto list = client.List(ref, ns, {.label_selector = "", .limit = 1});
  std::string rv = list ? Str(*list, {"metadata", "resourceVersion"}) : "";
  return std::jthread([&client, ref, ns, rv, on](std::stop_token stop) mutable {
    while (!stop.stop_requested()) {
      auto r = client.Watch(
          ref, ns, {.resource_version = rv, .allow_bookmarks = true, .timeout_seconds = 60},
          [&](millrace::kube::WatchEvent&& e) {
            if (auto v = Str(e.object, {"metadata", "resourceVersion"}); !v.empty()) rv = v;
            on(e.object);
            return !stop.stop_requested();
          },
          stop);
      if (!r) rv = "";  // Gone or an error: from now on
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "tasks", ns = "load", label = "0";
  int count = 1000, threads = 8;
  double rate = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--mode") mode = value;
    if (flag == "--count") count = std::atoi(value.c_str());
    if (flag == "--rate") rate = std::atof(value.c_str());
    if (flag == "--namespace") ns = value;
    if (flag == "--threads") threads = std::atoi(value.c_str());
    if (flag == "--label") label = value;
  }
  auto config = millrace::kube::LoadDefault();
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().ToString().c_str());
    return 1;
  }
  config->qps = 0;  // no client-side limit: the server is what is measured
  auto client_or = millrace::kube::NewClient(*config);
  if (!client_or) {
    std::fprintf(stderr, "%s\n", client_or.error().ToString().c_str());
    return 1;
  }
  Client& client = **client_or;
  const bool tasks = mode == "tasks";
  const std::string prefix = std::string(tasks ? "load-" : "direct-") + label + "-";

  Timeline t;
  std::vector<std::jthread> watches;
  watches.push_back(WatchFrom(client, resources::kJobs, ns, [&](const json& job) {
    const std::string key = tasks ? Str(job, {"metadata", "labels", "millrace.io/task"})
                                  : Str(job, {"metadata", "name"});
    if (key.starts_with(prefix)) t.Mark(t.child_seen, key);
  }));
  if (tasks) {
    watches.push_back(WatchFrom(client, kTasks, ns, [&](const json& task) {
      const std::string name = Str(task, {"metadata", "name"});
      if (name.starts_with(prefix) && Str(task, {"status", "phase"}) == "Succeeded") {
        t.Mark(t.succeeded, name);
      }
    }));
  }

  std::atomic<int> next{0}, errors{0};
  const auto start = Clock::now();
  {
    std::vector<std::jthread> creators;
    for (int w = 0; w < threads; ++w) {
      creators.emplace_back([&] {
        for (int i = next++; i < count; i = next++) {
          if (rate > 0) {
            std::this_thread::sleep_until(  // open-loop pacing of the load generator
                start + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(i / rate)));
          }
          const std::string name = prefix + std::to_string(i);
          t.Mark(t.created, name);
          auto r = tasks ? client.Create(kTasks, TaskManifest(name, ns))
                         : client.Create(resources::kJobs, JobManifest(name, ns));
          if (!r) {
            ++errors;
            std::fprintf(stderr, "create %s: %s\n", name.c_str(), r.error().ToString().c_str());
          }
        }
      });
    }
  }
  const double create_seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // Drained: every object has its child (and, for tasks, succeeded); 10 minutes at most.
  const auto deadline = Clock::now() + std::chrono::minutes(10);
  const size_t want = static_cast<size_t>(count - errors.load());
  while (Clock::now() < deadline &&
         (t.Count(t.child_seen) < want || (tasks && t.Count(t.succeeded) < want))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the watch results
  }
  const double drain_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  watches.clear();

  std::lock_guard lock(t.mu);
  json out = {{"mode", mode},
              {"count", count},
              {"rate", rate},
              {"errors", errors.load()},
              {"create_seconds", create_seconds},
              {"creates_per_second", count / create_seconds},
              {"children_seen", t.child_seen.size()},
              {"create_to_child", Percentiles(t.created, t.child_seen)}};
  if (tasks) {
    out["succeeded"] = t.succeeded.size();
    out["create_to_succeeded"] = Percentiles(t.created, t.succeeded);
    out["drain_seconds"] = drain_seconds;
    out["succeeded_per_second"] = static_cast<double>(t.succeeded.size()) / drain_seconds;
  }
  std::printf("%s\n", out.dump().c_str());
  return t.child_seen.size() == want ? 0 : 1;
}
