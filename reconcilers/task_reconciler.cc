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

// Objects of `store` in namespace `ns` (via the namespace index).
std::vector<json> InNamespace(const controller::Store& store, const std::string& ns) {
  return Copies(store.ByIndex(controller::Index::kNamespace, ns));
}

bool QuotaRefusal(const kube::Error& error) {
  return error.IsForbidden() && error.message.find("exceeded quota") != std::string::npos;
}

// The Task informer's index of Tasks whose Ready condition says QuotaExceeded, by namespace: a
// ResourceQuota change (its status.used moves with every pod) wakes those Tasks only, not every
// Task in the namespace.
constexpr std::string_view kWaitingForQuota = "waitingForQuota";

std::vector<std::string> WaitingForQuota(const json& task) {
  const json& status = task.value("status", json::object());
  const json& conditions = status.value("conditions", json());
  if (!conditions.is_array()) return {};
  const bool waits = std::any_of(conditions.begin(), conditions.end(), [](const json& c) {
    return c.value("type", "") == "Ready" && c.value("reason", "") == "QuotaExceeded";
  });
  if (!waits) return {};
  return {task.value("metadata", json::object()).value("namespace", "")};
}

}  // namespace

TaskReconciler::TaskReconciler(kube::Client& client, Caches caches,
                               controller::MutationCache written, controller::EventRecorder& events)
    : client_(client), caches_(caches), written_(std::move(written)), events_(events) {}

void TaskReconciler::Event(const api::Task& task, std::string_view type, std::string_view reason,
                           std::string note) {
  RecordEvent(events_, api::Task::kKind, task.metadata,
              PlannedEvent{std::string(type), std::string(reason), std::move(note)});
}

const controller::Informer& TaskReconciler::CacheFor(std::string_view kind) const {
  if (kind == "Deployment") return caches_.deployments;
  if (kind == "Service") return caches_.services;
  return caches_.horizontal_pod_autoscalers;
}

Outcome TaskReconciler::Reconcile(const controller::Request& request,
                                  const controller::ReconcileContext& context) {
  auto cached = DecodeCached<api::Task>(caches_.tasks.store(), written_, request.key);
  if (!cached) return cached.error();
  if (!*cached) return Outcome::Done();  // deleted; owner references take its children
  const api::Task& task = **cached;
  if (task.metadata.deletion_timestamp) return Outcome::Done();
  const std::string& ns = task.metadata.namespace_;
  const std::string& uid = task.metadata.uid;

  ObservedTask observed;
  observed.jobs = Copies(caches_.jobs.store().ByIndex(controller::Index::kControllerOwner, uid));
  for (const Object& pod : caches_.pods.store().ByIndex(
           controller::Index::kLabel, std::string(kTaskLabel) + "=" + task.metadata.name)) {
    if ((*pod)["metadata"].value("namespace", "") == ns) observed.pods.push_back(*pod);
  }
  const std::string key = ns + "/" + task.metadata.name;
  observed.deployment = ControlledBy(caches_.deployments.store(), key, uid);
  observed.service = ControlledBy(caches_.services.store(), key, uid);
  observed.horizontal_pod_autoscaler =
      ControlledBy(caches_.horizontal_pod_autoscalers.store(), key, uid);
  observed.resource_quotas = InNamespace(caches_.resource_quotas.store(), ns);
  observed.limit_ranges = InNamespace(caches_.limit_ranges.store(), ns);
  if (const Object n = caches_.namespaces.store().Get(ns)) {
    const std::string zone = (*n)["metadata"]
                                 .value("labels", json::object())
                                 .value(std::string(kZoneLabel), std::string{});
    if (!zone.empty()) {
      for (const Object& pc : caches_.priority_classes.store().ByIndex(
               controller::Index::kLabel, std::string(kZoneLabel) + "=" + zone)) {
        observed.zone_priority_class = (*pc)["metadata"].value("name", "");
      }
    }
  }

  // The attempt status counts must have a Job; if the cache does not show it yet, ask the API
  // server, so that a lagging cache is never mistaken for a deleted Job.
  const int attempts = task.status ? task.status->attempts.value_or(0) : 0;
  const bool finished = task.status && task.status->phase &&
                        (*task.status->phase == api::TaskPhase::kSucceeded ||
                         *task.status->phase == api::TaskPhase::kFailed ||
                         *task.status->phase == api::TaskPhase::kCancelled);
  if (!task.spec.Streaming() && attempts > 0 && !finished) {
    const std::string name = TaskJobName(task, attempts);
    const bool in_cache =
        std::any_of(observed.jobs.begin(), observed.jobs.end(),
                    [&](const json& j) { return j["metadata"].value("name", "") == name; });
    if (!in_cache) {
      auto live = client_.Get(kube::resources::kJobs, ns, name);
      if (live && api::IsControlledBy(*live, uid)) {
        observed.jobs.push_back(std::move(*live));
      } else if (!live && !live.error().IsNotFound()) {
        return Outcome::TransientError("reading Job " + name + ": " + live.error().ToString());
      }
    }
  }

  // A finished Job whose pod the cache does not yet show finished: read the attempt's pods, so
  // the task never ends on a partial view (no results, or a failure taken for an eviction).
  if (const std::optional<int> attempt = AttemptPodToRead(task, observed)) {
    kube::ListOptions selected;
    selected.label_selector = std::string(kTaskLabel) + "=" + task.metadata.name + "," +
                              std::string(kAttemptLabel) + "=" + std::to_string(*attempt);
    auto live = client_.List(kube::resources::kPods, ns, selected);
    if (!live) {
      return Outcome::TransientError("reading the pods of attempt " + std::to_string(*attempt) +
                                     ": " + live.error().ToString());
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

  TaskPlan plan = PlanTask(task, observed, Now());
  if (plan.create_job) {
    const std::string name = (*plan.create_job)["metadata"]["name"];
    auto created = client_.Create(kube::resources::kJobs, *plan.create_job,
                                  {.field_manager = std::string(kFieldManager)});
    if (!created) {
      const kube::Error& error = created.error();
      if (error.IsAlreadyExists()) {
        // Made by an earlier reconcile whose status write was lost, or by someone else.
        auto live = client_.Get(kube::resources::kJobs, ns, name);
        if (!live)
          return Outcome::TransientError("reading Job " + name + ": " + live.error().ToString());
        if (api::IsControlledBy(*live, uid)) {
          observed.jobs.push_back(std::move(*live));
        } else if (LeftoverOfEarlierOwner(*live, api::Task::kKind, task.metadata.name, uid)) {
          observed.job_blocked = "Job " + name +
                                 " of an earlier Task of this name is being deleted; the attempt "
                                 "starts once it is gone";
        } else {
          observed.job_rejected = "a Job named " + name + " already exists and is not this task's";
        }
      } else if (QuotaRefusal(error) || !(error.IsInvalid() || error.IsForbidden())) {
        return Outcome::TransientError("creating Job " + name + ": " + error.ToString());
      } else {
        observed.job_rejected = error.message;
      }
      plan = PlanTask(task, observed, Now());
      plan.create_job.reset();  // the second plan only records what happened
    } else {
      context.logger.Info("created Job " + name);
      MILLRACE_FAILPOINT("task.after-job-create");
    }
  }

  auto applied =
      ApplyChildren(client_, plan.apply, [this](std::string_view kind, const std::string& k) {
        return CacheFor(kind).store().Get(k);
      });
  if (!applied) {
    const ApplyFailure& f = applied.error();
    if (f.error.IsInvalid() || (f.error.IsForbidden() && !QuotaRefusal(f.error))) {
      Event(task, "Warning", "ApplyRefused", "applying " + f.what + ": " + f.error.message);
      return Outcome::TerminalError("applying " + f.what + ": " + f.error.ToString());
    }
    return Outcome::TransientError("applying " + f.what + ": " + f.error.ToString());
  }
  if (auto error = DeleteChildren(client_, plan.remove)) return Outcome::TransientError(*error);

  for (auto& e : plan.events) Event(task, e.type, e.reason, std::move(e.note));

  MILLRACE_FAILPOINT("task.before-status-patch");
  if (auto error = PatchStatusIfChanged(client_, resources::kTasks, task.metadata,
                                        TaskStatusPatch(task, plan.status), written_)) {
    return Outcome::TransientError(*error);
  }
  if (plan.requeue_after) return Outcome::RequeueAfter(*plan.requeue_after);
  return Outcome::Done();
}

void AddTaskController(controller::Manager& manager, int workers) {
  using controller::InformerOptions;
  const std::string managed = ManagedBySelector();
  auto informer = [&](const kube::ResourceRef& ref, std::string selector) -> controller::Informer& {
    return AddInformer(manager, ref, std::move(selector));
  };
  InformerOptions pod_options;
  pod_options.resource = kube::resources::kPods;
  pod_options.label_selector = std::string(kTaskLabel);
  pod_options.store.trim = TrimTaskPod;
  pod_options.store.indexed_labels = {std::string(kTaskLabel)};

  controller::Informer& tasks = informer(resources::kTasks, "");
  controller::Informer& pods = manager.AddInformer(std::move(pod_options));
  controller::Informer& quotas = informer(resources::kResourceQuotas, "");
  InformerOptions job_options;
  job_options.resource = kube::resources::kJobs;
  job_options.label_selector = managed;
  job_options.store.trim = TrimTaskJob;
  std::vector<controller::Informer*> children = {
      &manager.AddInformer(std::move(job_options)),
      &informer(kube::resources::kDeployments, managed),
      &informer(kube::resources::kServices, managed),
      &informer(resources::kHorizontalPodAutoscalers, managed),
  };
  controller::Informer& priority_classes = informer(resources::kPriorityClasses, managed);
  priority_classes.IndexLabels({std::string(kZoneLabel)});
  const TaskReconciler::Caches caches{
      .tasks = tasks,
      .jobs = *children[0],
      .pods = pods,
      .deployments = *children[1],
      .services = *children[2],
      .horizontal_pod_autoscalers = *children[3],
      .resource_quotas = quotas,
      .limit_ranges = informer(resources::kLimitRanges, ""),
      .namespaces = informer(kube::resources::kNamespaces, ""),
      .priority_classes = priority_classes,
  };
  controller::Controller& tc =
      manager.AddController({.name = "task",
                             .workers = workers,
                             .rate_limits = {},
                             .clock = nullptr,
                             .metrics = nullptr,
                             .logger = {}},
                            std::make_unique<TaskReconciler>(
                                manager.client(), caches, WrittenCache(tasks), manager.events()));
  controller::WorkQueue& queue = tc.queue();

  tasks.AddHandler(controller::EnqueueObject(queue, controller::GenerationOrMetadataChanged));
  const controller::OwnerMatch owner{
      .group = "millrace.io", .kind = "Task", .owner_namespaced = true};
  for (controller::Informer* child : children) {
    child->AddHandler(controller::EnqueueOwner(queue, owner));
  }
  pods.AddHandler(controller::EnqueueMapped(queue, [](const json& pod) {
    const auto& meta = pod["metadata"];
    const std::string task =
        meta.value("labels", json::object()).value(std::string(kTaskLabel), std::string{});
    if (task.empty()) return std::vector<std::string>{};
    return std::vector<std::string>{meta.value("namespace", "") + "/" + task};
  }));
  // Quota freed (or raised) in a namespace: its tasks waiting for quota may start now.
  tasks.AddIndex(std::string(kWaitingForQuota), WaitingForQuota);
  quotas.AddHandler(controller::EnqueueMapped(queue, [&tasks](const json& quota) {
    std::vector<std::string> keys;
    for (const Object& task :
         tasks.store().ByIndex(kWaitingForQuota, quota["metadata"].value("namespace", ""))) {
      keys.push_back(controller::ObjectKey(*task));
    }
    return keys;
  }));
}

}  // namespace millrace::reconcilers
