#include "reconcilers/task_reconciler.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controller/failpoint.h"
#include "controller/handlers.h"
#include "crds/errors.h"
#include "crds/meta.h"
#include "reconcilers/apply.h"
#include "reconcilers/names.h"
#include "reconcilers/object.h"
#include "reconcilers/task.h"
#include "reconcilers/zone.h"

namespace millrace::reconcilers {
namespace {

using controller::Object;
using controller::Outcome;
using nlohmann::json;

std::vector<json> Copies(const std::vector<Object>& objects) {
  std::vector<json> out;
  out.reserve(objects.size());
  for (const Object& o : objects) out.push_back(*o);
  return out;
}

// The Task informer's index of Tasks whose Ready condition says QuotaExceeded, by namespace: a
// ResourceQuota change (its status.used moves with every pod) wakes those Tasks only, not every
// Task in the namespace.
constexpr std::string_view kWaitingForQuota = "waitingForQuota";

std::vector<std::string> WaitingForQuota(const json& task) {
  const json& status = task.value("status", json::object());
  const json& conditions = status.value("conditions", json());
  if (!conditions.is_array()) return {};
  const bool waits = std::ranges::any_of(conditions, [](const json& c) {
    return c.value("type", "") == "Ready" && c.value("reason", "") == "QuotaExceeded";
  });
  if (!waits) return {};
  return {task.value("metadata", json::object()).value("namespace", "")};
}

// A pod labelled with its Task's name -> that Task.
std::vector<std::string> TaskOfPod(const json& pod, const controller::Caches& /*caches*/) {
  const json& meta = Sub(pod, "metadata");
  const std::string task = Str(Sub(meta, "labels"), kTaskLabel);
  if (task.empty()) return {};
  return {Str(meta, "namespace") + "/" + task};
}

// A ResourceQuota -> the Tasks of its namespace waiting for quota.
std::vector<std::string> TasksWaitingForQuota(const json& quota, const controller::Caches& caches) {
  std::vector<std::string> keys;
  for (const Object& task :
       caches.primary().ByIndex(kWaitingForQuota, Str(Sub(quota, "metadata"), "namespace"))) {
    keys.push_back(controller::ObjectKey(*task));
  }
  return keys;
}

bool Finished(const std::optional<api::TaskPhase>& phase) {
  return phase && (*phase == api::TaskPhase::kSucceeded || *phase == api::TaskPhase::kFailed ||
                   *phase == api::TaskPhase::kCancelled);
}

}  // namespace

ObservedTask TaskReconciler::Observe(const api::Task& task) const {
  const std::string& ns = task.metadata.namespace_;
  const std::string& uid = task.metadata.uid;
  ObservedTask observed;
  observed.jobs = Copies(caches_.Of(kube::resources::kJobs).ControlledBy(uid));
  for (const Object& pod :
       caches_.Of(kube::resources::kPods).WithLabel(kTaskLabel, task.metadata.name)) {
    if ((*pod)["metadata"].value("namespace", "") == ns) observed.pods.push_back(*pod);
  }
  const std::string key = ns + "/" + task.metadata.name;
  observed.deployment = ControlledBy(caches_.Of(kube::resources::kDeployments).store(), key, uid);
  observed.service = ControlledBy(caches_.Of(kube::resources::kServices).store(), key, uid);
  observed.horizontal_pod_autoscaler =
      ControlledBy(caches_.Of(resources::kHorizontalPodAutoscalers).store(), key, uid);
  observed.resource_quotas = Copies(caches_.Of(resources::kResourceQuotas).InNamespace(ns));
  observed.limit_ranges = Copies(caches_.Of(resources::kLimitRanges).InNamespace(ns));
  if (const Object n = caches_.Of(kube::resources::kNamespaces).Get(ns)) {
    const std::string zone = Str(Sub(Sub(*n, "metadata"), "labels"), kZoneLabel);
    if (!zone.empty()) {
      for (const Object& pc : caches_.Of(resources::kPriorityClasses).WithLabel(kZoneLabel, zone)) {
        observed.zone_priority_class = (*pc)["metadata"].value("name", "");
      }
    }
  }
  return observed;
}

std::optional<Outcome> TaskReconciler::ReadWhatTheCacheLags(const api::Task& task,
                                                            ObservedTask& observed) {
  const std::string& ns = task.metadata.namespace_;
  const std::string& uid = task.metadata.uid;
  // The attempt status counts must have a Job; if the cache does not show it yet, ask the API
  // server, so that a lagging cache is never mistaken for a deleted Job.
  const int attempts = task.status ? task.status->attempts.value_or(0) : 0;
  const bool finished = task.status && Finished(task.status->phase);
  if (!api::Streaming(task.spec) && attempts > 0 && !finished) {
    const std::string name = TaskJobName(task, attempts);
    const bool in_cache = std::ranges::any_of(
        observed.jobs, [&](const json& j) { return j["metadata"].value("name", "") == name; });
    if (!in_cache) {
      auto live = uncached_.Get(kube::resources::kJobs, ns, name);
      if (live && api::IsControlledBy(*live, uid)) {
        observed.jobs.push_back(std::move(*live));
      } else if (!live && !live.error().IsNotFound()) {
        return Outcome::ApiError("reading Job " + name, std::move(live.error()));
      }
    }
  }

  // A finished Job whose pod the cache does not yet show finished: read the attempt's pods, so
  // the task never ends on a partial view (no results, or a failure taken for an eviction).
  if (const std::optional<int> attempt = AttemptPodToRead(task, observed)) {
    kube::ListOptions selected;
    selected.label_selector = std::string(kTaskLabel) + "=" + task.metadata.name + "," +
                              std::string(kAttemptLabel) + "=" + std::to_string(*attempt);
    auto live = uncached_.List(kube::resources::kPods, ns, selected);
    if (!live) {
      return Outcome::ApiError("reading the pods of attempt " + std::to_string(*attempt),
                               std::move(live.error()));
    }
    const std::string attempt_label = std::to_string(*attempt);
    std::erase_if(observed.pods, [&](const json& pod) {
      return Str(Sub(Sub(pod, "metadata"), "labels"), kAttemptLabel) == attempt_label;
    });
    for (json& pod : (*live)["items"]) {
      TrimTaskPod(pod);
      observed.pods.push_back(std::move(pod));
    }
  }

  return std::nullopt;
}

std::expected<bool, Outcome> TaskReconciler::CreateJob(
    const api::Task& task, const json& job, ObservedTask& observed,
    const controller::ReconcileContext& context) {
  const std::string& ns = task.metadata.namespace_;
  const std::string& uid = task.metadata.uid;
  const std::string name = job["metadata"]["name"];
  auto created =
      writer_.Create(kube::resources::kJobs, job, {.field_manager = std::string(kFieldManager)});
  if (created) {
    context.logger.Info("created Job " + name);
    MILLRACE_FAILPOINT("task.after-job-create");
    return true;
  }
  const kube::Error& error = created.error();
  if (error.IsAlreadyExists()) {
    // Made by an earlier reconcile whose status write was lost, or by someone else.
    auto live = uncached_.Get(kube::resources::kJobs, ns, name);
    if (!live) return std::unexpected(Outcome::ApiError("reading Job " + name, live.error()));
    if (api::IsControlledBy(*live, uid)) {
      observed.jobs.push_back(std::move(*live));
    } else if (LeftoverOfEarlierOwner(*live, api::Task::kKind, task.metadata.name, uid)) {
      observed.job_blocked = "Job " + name +
                             " of an earlier Task of this name is being deleted; the attempt "
                             "starts once it is gone";
    } else {
      observed.job_rejected = "a Job named " + name + " already exists and is not this task's";
    }
  } else if (!controller::IsTerminal(error)) {
    return std::unexpected(Outcome::ApiError("creating Job " + name, error));
  } else {
    observed.job_rejected = error.message;  // the Task fails with the API server's reason
  }
  return false;
}

std::expected<bool, Outcome> TaskReconciler::FindUnrecordedJob(const api::Task& task,
                                                               const TaskPlan& plan,
                                                               ObservedTask& observed) {
  // A plan that ends the task Succeeded comes from its latest Job's completion, after which no
  // later attempt is ever made: nothing to look for (and no request for every task that succeeds).
  const bool ending = !api::Streaming(task.spec) && !plan.create_job &&
                      Finished(plan.status.phase) &&
                      plan.status.phase != api::TaskPhase::kSucceeded &&
                      !(task.status && Finished(task.status->phase));
  if (!ending) return false;
  const std::string name = TaskJobName(task, plan.status.attempts.value_or(0) + 1);
  if (std::ranges::any_of(observed.jobs,
                          [&](const json& j) { return Str(Sub(j, "metadata"), "name") == name; })) {
    return false;
  }
  auto live = uncached_.Get(kube::resources::kJobs, task.metadata.namespace_, name);
  if (live && api::IsControlledBy(*live, task.metadata.uid)) {
    observed.jobs.push_back(std::move(*live));
    return true;
  }
  if (!live && !live.error().IsNotFound()) {
    return std::unexpected(Outcome::ApiError("reading Job " + name, live.error()));
  }
  return false;
}

Outcome TaskReconciler::ReconcileObject(const api::Task& task,
                                        const controller::ReconcileContext& context) {
  ObservedTask observed = Observe(task);
  if (auto stopped = ReadWhatTheCacheLags(task, observed)) return *stopped;
  TaskPlan plan = PlanTask(task, observed, Now());
  auto unrecorded = FindUnrecordedJob(task, plan, observed);
  if (!unrecorded) return unrecorded.error();
  if (*unrecorded) plan = PlanTask(task, observed, Now());
  if (plan.create_job) {
    auto created = CreateJob(task, *plan.create_job, observed, context);
    if (!created) return created.error();
    if (!*created) {
      plan = PlanTask(task, observed, Now());  // records what happened instead
      plan.create_job.reset();
    }
  }
  return Execute(task, {.apply = std::move(plan.apply),
                        .remove = std::move(plan.remove),
                        .events = std::move(plan.events),
                        .status_patch = TaskStatusPatch(task, plan.status),
                        .requeue_after = plan.requeue_after,
                        .before_status = [] {
                          MILLRACE_FAILPOINT("task.before-status-patch");
                          return std::optional<Outcome>();
                        }});
}

void AddTaskController(controller::Manager& manager, int workers) {
  const std::string managed = ManagedBySelector();
  controller::ControllerBuilder(manager, "task")
      .For(resources::kTasks, controller::GenerationOrMetadataChanged,
           {.indexes = {{std::string(kWaitingForQuota), WaitingForQuota}}})
      .Owns(kube::resources::kJobs, {.label_selector = managed, .trim = TrimTaskJob})
      .Owns(kube::resources::kDeployments, {.label_selector = managed})
      .Owns(kube::resources::kServices, {.label_selector = managed})
      .Owns(resources::kHorizontalPodAutoscalers, {.label_selector = managed})
      .Watches(kube::resources::kPods, TaskOfPod,
               {.label_selector = std::string(kTaskLabel),
                .trim = TrimTaskPod,
                .indexed_labels = {std::string(kTaskLabel)}})
      // Quota freed (or raised) in a namespace: its tasks waiting for quota may start now.
      .Watches(resources::kResourceQuotas, TasksWaitingForQuota)
      .Reads(resources::kLimitRanges)
      .Reads(kube::resources::kNamespaces)
      .Reads(resources::kPriorityClasses,
             {.label_selector = managed, .indexed_labels = {std::string(kZoneLabel)}})
      .Workers(workers)
      .Complete([](controller::ReconcilerDeps deps) {
        return std::make_unique<TaskReconciler>(std::move(deps));
      });
}

}  // namespace millrace::reconcilers
