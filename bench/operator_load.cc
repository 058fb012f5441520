// Load generator for bench/load: creates objects in one namespace and times what follows, from
// watches on the same API server.
//
//   operator_load --mode tasks|jobs|writes|pipelines|workflows --count N [--rate R]
//                 [--namespace NS] [--threads T] [--label L] [--shape single|chain|diamond|mixed]
//                 [--wait S] [--events E]
//
// tasks:     N batch Tasks; child = the Task's first Job, done = Task Succeeded.
// jobs:      N Jobs shaped like the ones Millrace creates, posted directly (the API server's
//            ceiling for the same writes); child = the Job seen by a watch, done = Job succeeded.
// writes:    what Millrace writes for a batch Task, posted directly with no watch and no
//            reconcile: the Task, its Job (owned by the Task), the Task's three status writes and
//            three events (the API server's ceiling for a Task's writes); child and done as jobs.
//            --events E posts only the first E of the events (default 3).
// pipelines: N Pipelines of --shape (mixed: chains and diamonds alternate); child = the first
//            Task, done = Pipeline Succeeded.
// workflows: N Argo Workflows of --shape, the same containers as the Tasks (the peer);
//            child = the first pod, done = Workflow Succeeded.
// Every mode also records create -> first pod. --rate R paces creates at R per second (0: as
// fast as T threads go). Waits up to --wait seconds (default 900) for everything to be done.
// Uses $KUBECONFIG with no client-side rate limit. Prints one JSON line of results on stdout.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
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
using millrace::kube::ResourceRef;
using nlohmann::json;
namespace resources = millrace::kube::resources;

const ResourceRef kTasks{"millrace.io", "v1alpha1", "tasks", true, "Task"};
const ResourceRef kPipelines{"millrace.io", "v1alpha1", "pipelines", true, "Pipeline"};
const ResourceRef kWorkflows{"argoproj.io", "v1alpha1", "workflows", true, "Workflow"};

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

std::string Label(const json& object, const char* key) {
  return Str(object, {"metadata", "labels", key});
}

using Times = std::map<std::string, Clock::time_point>;

struct Timeline {
  std::mutex mu;
  Times created, child, pod, done;

  void Mark(Times& m, const std::string& key) {
    std::lock_guard lock(mu);
    m.try_emplace(key, Clock::now());
  }
  size_t Count(const Times& m) {
    std::lock_guard lock(mu);
    return m.size();
  }
};

json Percentiles(const Times& from, const Times& to) {
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

// The container every mode runs: what a Task of the benchmark turns into.
json Container(const std::string& name) {
  return {{"name", name},
          {"image", "busybox"},
          {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}}}};
}

json Meta(const std::string& name, const std::string& ns) {
  return {{"name", name}, {"namespace", ns}, {"labels", {{"bench", "load"}}}};
}

json TaskSpec(const std::string& uri, bool spout) {
  json spec = {{"role", spout ? "Spout" : "Bolt"},
               {"image", "busybox"},
               {"output", {{"batch", {{"uri", uri + "/out"}}}}},
               {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}}}};
  if (!spout) spec["input"] = {{"batch", {{"uri", uri + "/in"}}}};
  return spec;
}

json TaskManifest(const std::string& name, const std::string& ns) {
  return {{"apiVersion", "millrace.io/v1alpha1"},
          {"kind", "Task"},
          {"metadata", Meta(name, ns)},
          {"spec", TaskSpec("s3://bench/" + name, true)}};
}

json JobManifest(const std::string& name, const std::string& ns) {
  json pod = {
      {"metadata", {{"labels", {{"bench", "load"}}}}},
      {"spec", {{"restartPolicy", "Never"}, {"containers", json::array({Container("main")})}}}};
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", Meta(name, ns)},
          {"spec", {{"backoffLimit", 0}, {"template", pod}}}};
}

// The writes mode: the statuses a Task goes through (Starting, Running, Succeeded) as Millrace
// writes them, for a Task whose Job is `job`.
std::vector<json> TaskStatuses(const std::string& job) {
  const std::string now = "2026-01-01T00:00:00Z";
  auto condition = [&](const char* type, const char* status, const char* reason,
                       const std::string& message) {
    return json{{"type", type},       {"status", status},        {"reason", reason},
                {"message", message}, {"observedGeneration", 1}, {"lastTransitionTime", now}};
  };
  json starting = {
      {"observedGeneration", 1},
      {"phase", "Pending"},
      {"attempts", 1},
      {"startTime", now},
      {"children", {{"job", job}}},
      {"conditions", {condition("Ready", "False", "Starting", "attempt 1 of 1: Job " + job)}}};
  json running = {
      {"phase", "Running"},
      {"conditions", {condition("Ready", "False", "Running", "attempt 1 of 1 is running")}}};
  const std::string done = "succeeded on attempt 1 of 1";
  json succeeded = {{"phase", "Succeeded"},
                    {"completionTime", now},
                    {"conditions",
                     {condition("Ready", "True", "Succeeded", done),
                      condition("Complete", "True", "Succeeded", done)}}};
  return {{{"status", starting}}, {{"status", running}}, {{"status", succeeded}}};
}

json TaskEvent(const std::string& task, const std::string& ns, size_t i, const std::string& reason,
               const std::string& note) {
  return {{"apiVersion", "events.k8s.io/v1"},
          {"kind", "Event"},
          {"metadata", {{"name", task + "." + std::to_string(i)}, {"namespace", ns}}},
          {"eventTime", "2026-01-01T00:00:00.000000Z"},
          {"reportingController", "millrace.io/controller"},
          {"reportingInstance", "operator-load"},
          {"regarding",
           {{"apiVersion", "millrace.io/v1alpha1"},
            {"kind", "Task"},
            {"namespace", ns},
            {"name", task}}},
          {"type", "Normal"},
          {"reason", reason},
          {"action", "Reconcile"},
          {"note", note}};
}

// The writes mode: Millrace's writes for one batch Task, in the order it makes them.
millrace::kube::Result<json> PostTaskWrites(Client& client, const std::string& name,
                                            const std::string& ns, size_t events) {
  auto task = client.Create(kTasks, TaskManifest(name, ns));
  if (!task) return task;
  const std::string job = name + "-1";
  json manifest = JobManifest(job, ns);
  // Labelled as Millrace labels a Task's Job and its pods.
  for (json* meta : {&manifest["metadata"], &manifest["spec"]["template"]["metadata"]}) {
    (*meta)["labels"]["millrace.io/task"] = name;
  }
  manifest["metadata"]["ownerReferences"] = {{{"apiVersion", "millrace.io/v1alpha1"},
                                              {"kind", "Task"},
                                              {"name", name},
                                              {"uid", Str(*task, {"metadata", "uid"})},
                                              {"controller", true},
                                              {"blockOwnerDeletion", true}}};
  const millrace::kube::WriteOptions manager{
      .field_manager = "operator-load", .dry_run = false, .subresource = ""};
  if (auto r = client.Create(resources::kJobs, manifest, manager); !r) return r;
  const char* reasons[] = {"AttemptStarted", "Running", "Succeeded"};
  const std::vector<json> statuses = TaskStatuses(job);
  for (size_t i = 0; i < statuses.size(); ++i) {
    auto r = client.PatchStatus(kTasks, ns, name, statuses[i],
                                {.type = millrace::kube::PatchType::kMerge,
                                 .field_manager = "operator-load",
                                 .dry_run = false,
                                 .subresource = ""});
    if (!r) return r;
    if (i >= events) continue;
    r = client.Create(resources::kEvents, TaskEvent(name, ns, i, reasons[i], "attempt 1 of 1"),
                      manager);
    if (!r) return r;
  }
  return task;
}

// The steps of a shape as (name, dependencies): a single step, a 10-step chain, or a diamond.
std::vector<std::pair<std::string, std::vector<std::string>>> Steps(const std::string& shape) {
  if (shape == "chain") {
    std::vector<std::pair<std::string, std::vector<std::string>>> steps;
    for (int i = 0; i < 10; ++i) {
      steps.push_back({"s" + std::to_string(i),
                       i == 0 ? std::vector<std::string>{}
                              : std::vector<std::string>{"s" + std::to_string(i - 1)}});
    }
    return steps;
  }
  if (shape == "diamond") {
    return {{"a", {}}, {"b", {"a"}}, {"c", {"a"}}, {"d", {"b", "c"}}};
  }
  return {{"a", {}}};
}

std::string ShapeOf(const std::string& shape, int i) {
  if (shape != "mixed") return shape;
  return i % 2 == 0 ? "chain" : "diamond";
}

json PipelineManifest(const std::string& name, const std::string& ns, const std::string& shape) {
  json steps = json::array();
  for (const auto& [step, deps] : Steps(shape)) {
    json s = {{"name", step}, {"task", TaskSpec("s3://bench/" + name + "/" + step, deps.empty())}};
    if (!deps.empty()) s["dependsOn"] = deps;
    steps.push_back(std::move(s));
  }
  return {{"apiVersion", "millrace.io/v1alpha1"},
          {"kind", "Pipeline"},
          {"metadata", Meta(name, ns)},
          {"spec", {{"steps", steps}}}};
}

json WorkflowManifest(const std::string& name, const std::string& ns, const std::string& shape) {
  // Argo's executor must know the command (it cannot read the image's entrypoint offline).
  json container = Container("main");
  container["command"] = {"sh", "-c", "true"};
  json step = {{"name", "step"}, {"container", container}};
  json templates = json::array({step});
  std::string entrypoint = "step";
  if (shape != "single") {
    json tasks = json::array();
    for (const auto& [task, deps] : Steps(shape)) {
      json t = {{"name", task}, {"template", "step"}};
      if (!deps.empty()) t["dependencies"] = deps;
      tasks.push_back(std::move(t));
    }
    templates.push_back({{"name", "dag"}, {"dag", {{"tasks", tasks}}}});
    entrypoint = "dag";
  }
  return {{"apiVersion", "argoproj.io/v1alpha1"},
          {"kind", "Workflow"},
          {"metadata", Meta(name, ns)},
          {"spec", {{"entrypoint", entrypoint}, {"templates", templates}}}};
}

// Watches `ref` in `ns` from now until the thread is stopped, calling `on` for every object.
std::jthread WatchFrom(Client& client, const ResourceRef& ref, const std::string& ns,
                       std::function<void(const json&)> on) {
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
  std::string mode = "tasks", ns = "load", label = "0", shape = "mixed";
  int count = 1000, threads = 8, wait_seconds = 900, events = 3;
  double rate = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--mode") mode = value;
    if (flag == "--count") count = std::atoi(value.c_str());
    if (flag == "--rate") rate = std::atof(value.c_str());
    if (flag == "--namespace") ns = value;
    if (flag == "--threads") threads = std::atoi(value.c_str());
    if (flag == "--label") label = value;
    if (flag == "--shape") shape = value;
    if (flag == "--wait") wait_seconds = std::atoi(value.c_str());
    if (flag == "--events") events = std::atoi(value.c_str());
  }
  if (mode == "tasks" || mode == "jobs" || mode == "writes") shape = "single";
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
  const std::string prefix = mode.substr(0, 1) + "-" + label + "-";
  auto ours = [&](const std::string& key) { return key.starts_with(prefix); };

  Timeline t;
  std::vector<std::jthread> watches;
  // The key of a pod or Job: the object it was made for.
  const bool task_jobs = mode == "tasks" || mode == "writes";  // Jobs labelled with their Task
  const char* pod_key = task_jobs             ? "millrace.io/task"
                        : mode == "jobs"      ? "job-name"
                        : mode == "pipelines" ? "millrace.io/pipeline"
                                              : "workflows.argoproj.io/workflow";
  watches.push_back(WatchFrom(client, resources::kPods, ns, [&](const json& pod) {
    if (const std::string key = Label(pod, pod_key); ours(key)) {
      t.Mark(t.pod, key);
      if (mode == "workflows") t.Mark(t.child, key);
    }
  }));
  if (task_jobs || mode == "jobs") {
    watches.push_back(WatchFrom(client, resources::kJobs, ns, [&](const json& job) {
      const std::string key =
          task_jobs ? Label(job, "millrace.io/task") : Str(job, {"metadata", "name"});
      if (!ours(key)) return;
      t.Mark(t.child, key);
      const json& succeeded = job["status"]["succeeded"];
      if (mode != "tasks" && succeeded.is_number_integer() && succeeded.get<int>() > 0) {
        t.Mark(t.done, key);
      }
    }));
  }
  if (mode == "tasks" || mode == "pipelines") {
    watches.push_back(WatchFrom(client, kTasks, ns, [&](const json& task) {
      if (mode == "pipelines") {
        if (const std::string key = Label(task, "millrace.io/pipeline"); ours(key)) {
          t.Mark(t.child, key);
        }
      } else if (const std::string name = Str(task, {"metadata", "name"});
                 ours(name) && Str(task, {"status", "phase"}) == "Succeeded") {
        t.Mark(t.done, name);
      }
    }));
  }
  if (mode == "pipelines" || mode == "workflows") {
    watches.push_back(WatchFrom(
        client, mode == "pipelines" ? kPipelines : kWorkflows, ns, [&](const json& object) {
          const std::string name = Str(object, {"metadata", "name"});
          if (ours(name) && Str(object, {"status", "phase"}) == "Succeeded") {
            t.Mark(t.done, name);
          }
        }));
  }

  // One dry-run create before the clock starts: the API server sets up a custom resource's
  // handler (storage, schema, CEL rules) on its first request, which took the first creates on a
  // fresh cluster 2 s; that one-time cost is not what this measures.
  {
    const std::string name = prefix + "warm-up";
    const millrace::kube::WriteOptions dry_run{
        .field_manager = "", .dry_run = true, .subresource = ""};
    millrace::kube::Result<json> r;
    if (task_jobs) r = client.Create(kTasks, TaskManifest(name, ns), dry_run);
    if (mode == "jobs") r = client.Create(resources::kJobs, JobManifest(name, ns), dry_run);
    if (mode == "pipelines") {
      r = client.Create(kPipelines, PipelineManifest(name, ns, ShapeOf(shape, 0)), dry_run);
    }
    if (mode == "workflows") {
      r = client.Create(kWorkflows, WorkflowManifest(name, ns, ShapeOf(shape, 0)), dry_run);
    }
    if (!r) std::fprintf(stderr, "warm-up %s: %s\n", name.c_str(), r.error().ToString().c_str());
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
          millrace::kube::Result<json> r;
          if (mode == "tasks") r = client.Create(kTasks, TaskManifest(name, ns));
          if (mode == "jobs") r = client.Create(resources::kJobs, JobManifest(name, ns));
          if (mode == "writes") r = PostTaskWrites(client, name, ns, static_cast<size_t>(events));
          if (mode == "pipelines") {
            r = client.Create(kPipelines, PipelineManifest(name, ns, ShapeOf(shape, i)));
          }
          if (mode == "workflows") {
            r = client.Create(kWorkflows, WorkflowManifest(name, ns, ShapeOf(shape, i)));
          }
          if (!r) {
            ++errors;
            std::fprintf(stderr, "create %s: %s\n", name.c_str(), r.error().ToString().c_str());
          }
        }
      });
    }
  }
  const double create_seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // Drained: every object is done (which implies its child was seen).
  const auto deadline = Clock::now() + std::chrono::seconds(wait_seconds);
  const size_t want = static_cast<size_t>(count - errors.load());
  while (Clock::now() < deadline && (t.Count(t.child) < want || t.Count(t.done) < want)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the watch results
  }
  const double drain_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  watches.clear();

  std::lock_guard lock(t.mu);
  // Children per second: every child seen, over the time from the first create to the last child.
  double children_seconds = 0;
  for (const auto& [key, seen] : t.child) {
    children_seconds =
        std::max(children_seconds, std::chrono::duration<double>(seen - start).count());
  }
  json out = {{"mode", mode},
              {"shape", shape},
              {"count", count},
              {"rate", rate},
              {"errors", errors.load()},
              {"create_seconds", create_seconds},
              {"creates_per_second", count / create_seconds},
              {"children_seen", t.child.size()},
              {"children_per_second",
               children_seconds > 0 ? static_cast<double>(t.child.size()) / children_seconds : 0.0},
              {"create_to_child", Percentiles(t.created, t.child)},
              {"create_to_pod", Percentiles(t.created, t.pod)},
              {"done", t.done.size()},
              {"create_to_done", Percentiles(t.created, t.done)},
              {"drain_seconds", drain_seconds},
              {"done_per_second", static_cast<double>(t.done.size()) / drain_seconds}};
  std::printf("%s\n", out.dump().c_str());
  return t.done.size() == want ? 0 : 1;
}
