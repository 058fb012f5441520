#include "reconcilers/pipeline_reconciler.h"

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "controller/failpoint.h"
#include "controller/handlers.h"
#include "crds/errors.h"
#include "crds/meta.h"
#include "reconcilers/apply.h"
#include "reconcilers/object.h"
#include "reconcilers/pipeline.h"

namespace millrace::reconcilers {
namespace {

using controller::Object;
using controller::Outcome;
using nlohmann::json;

}  // namespace

PipelineReconciler::PipelineReconciler(kube::Client& client, Caches caches,
                                       controller::MutationCache written,
                                       controller::EventRecorder& events)
    : client_(client), caches_(caches), written_(std::move(written)), events_(events) {}

void PipelineReconciler::Event(const api::Pipeline& pipeline, std::string_view type,
                               std::string_view reason, std::string note) {
  RecordEvent(events_, api::Pipeline::kKind, pipeline.metadata,
              PlannedEvent{std::string(type), std::string(reason), std::move(note)});
}

Outcome PipelineReconciler::Reconcile(const controller::Request& request,
                                      const controller::ReconcileContext& context) {
  auto cached = DecodeCached<api::Pipeline>(caches_.pipelines.store(), written_, request.key);
  if (!cached) return cached.error();
  if (!*cached) return Outcome::Done();  // deleted; owner references take its children
  const api::Pipeline& pipeline = **cached;
  if (pipeline.metadata.deletion_timestamp) return Outcome::Done();
  const std::string& ns = pipeline.metadata.namespace_;
  const std::string& uid = pipeline.metadata.uid;

  ObservedPipeline observed;
  std::set<std::string> seen;
  for (const Object& t : caches_.tasks.store().ByIndex(controller::Index::kControllerOwner, uid)) {
    observed.tasks.push_back(*t);
    seen.insert((*t)["metadata"].value("name", ""));
  }
  // Records naming a Task the cache does not show (yet): ask the API server.
  if (pipeline.status) {
    for (const auto& step : pipeline.status->steps) {
      if (!step.task || seen.contains(*step.task)) continue;
      auto live = client_.Get(resources::kTasks, ns, *step.task);
      if (live && api::IsControlledBy(*live, uid)) {
        observed.tasks.push_back(std::move(*live));
      } else if (!live && !live.error().IsNotFound()) {
        return Outcome::TransientError("reading Task " + *step.task + ": " +
                                       live.error().ToString());
      }
    }
  }

  PipelinePlan plan = PlanPipeline(pipeline, observed, Now());
  if (plan.delete_pipeline) {
    auto deleted = client_.Delete(resources::kPipelines, ns, pipeline.metadata.name,
                                  {.propagation_policy = "Background",
                                   .grace_period_seconds = std::nullopt,
                                   .precondition_uid = uid,
                                   .precondition_resource_version = {},
                                   .dry_run = false});
    if (!deleted && !deleted.error().IsNotFound() && !deleted.error().IsConflict()) {
      return Outcome::TransientError("deleting the pipeline after its TTL: " +
                                     deleted.error().ToString());
    }
    context.logger.Info("deleted after ttlAfterFinished");
    return Outcome::Done();
  }

  for (const json& task : plan.create) {
    const std::string name = task["metadata"]["name"];
    auto created =
        client_.Create(resources::kTasks, task, {.field_manager = std::string(kFieldManager)});
    if (!created && created.error().IsAlreadyExists()) {
      // Ours from an earlier reconcile whose status write was lost, or someone else's: only ours
      // may be recorded as the step's Task.
      auto live = client_.Get(resources::kTasks, ns, name);
      if (!live) {
        if (live.error().IsNotFound()) return Outcome::RequeueAfter(std::chrono::seconds{1});
        return Outcome::TransientError("reading Task " + name + ": " + live.error().ToString());
      }
      if (api::IsControlledBy(*live, uid)) continue;
      if (LeftoverOfEarlierOwner(*live, api::Pipeline::kKind, pipeline.metadata.name, uid)) {
        // A re-created Pipeline: the earlier one's Task is still being garbage-collected. Nothing
        // is recorded until the step's own Task exists.
        context.logger.Info("waiting for Task " + name + " of an earlier Pipeline to be deleted");
        return Outcome::RequeueAfter(std::chrono::seconds{2});
      }
      Event(pipeline, "Warning", "NameTaken",
            "a Task named " + name + " already exists and is not this pipeline's; step waits");
      return Outcome::TransientError("Task " + name + " exists and is not this pipeline's");
    }
    if (!created) {
      // Refused for good (e.g. a step's task the API server finds invalid): the status records
      // nothing for the step yet, so report and let a spec change retry.
      if (created.error().IsInvalid() || created.error().IsForbidden()) {
        Event(pipeline, "Warning", "CreateRefused",
              "creating Task " + name + ": " + created.error().message);
      }
      return Outcome::TransientError("creating Task " + name + ": " + created.error().ToString());
    }
    MILLRACE_FAILPOINT("pipeline.after-task-create");
  }
  for (const json& mv : plan.register_models) {
    auto created = client_.Create(resources::kModelVersions, mv,
                                  {.field_manager = std::string(kFieldManager)});
    if (!created && !created.error().IsAlreadyExists()) {
      const std::string name = mv["metadata"]["name"];
      if (created.error().IsInvalid()) {
        // Nothing a retry can fix (e.g. a version that is not a DNS label after substitution).
        Event(pipeline, "Warning", "RegisterFailed",
              "registering ModelVersion " + name + ": " + created.error().message);
        continue;
      }
      return Outcome::TransientError("registering ModelVersion " + name + ": " +
                                     created.error().ToString());
    }
  }
  for (const std::string& name : plan.cancel) {
    auto patched = client_.Patch(resources::kTasks, ns, name, {{"spec", {{"cancel", true}}}});
    if (!patched && !patched.error().IsNotFound()) {
      return Outcome::TransientError("cancelling Task " + name + ": " + patched.error().ToString());
    }
  }
  for (auto& e : plan.events) Event(pipeline, e.type, e.reason, std::move(e.note));

  if (auto error = PatchStatusIfChanged(client_, resources::kPipelines, pipeline.metadata,
                                        PipelineStatusPatch(pipeline, plan.status), written_)) {
    return Outcome::TransientError(*error);
  }
  if (plan.requeue_after) return Outcome::RequeueAfter(*plan.requeue_after);
  return Outcome::Done();
}

void AddPipelineController(controller::Manager& manager, int workers) {
  controller::Informer& pipelines = AddInformer(manager, resources::kPipelines, "");
  controller::Informer& tasks = AddInformer(manager, resources::kTasks, "");  // shared with Tasks

  controller::Controller& pc =
      manager.AddController({.name = "pipeline",
                             .workers = workers,
                             .rate_limits = {},
                             .clock = nullptr,
                             .metrics = nullptr,
                             .logger = {}},
                            std::make_unique<PipelineReconciler>(
                                manager.client(), PipelineReconciler::Caches{pipelines, tasks},
                                WrittenCache(pipelines), manager.events()));
  controller::WorkQueue& queue = pc.queue();
  pipelines.AddHandler(controller::EnqueueObject(queue, controller::GenerationOrMetadataChanged));
  tasks.AddHandler(controller::EnqueueOwner(
      queue, {.group = "millrace.io", .kind = "Pipeline", .owner_namespaced = true}));
}

}  // namespace millrace::reconcilers
