#include "reconcilers/pipeline_reconciler.h"

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "controller/failpoint.h"
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

std::optional<Outcome> PipelineReconciler::CreateTasks(
    const api::Pipeline& pipeline, const std::vector<json>& tasks,
    const controller::ReconcileContext& context) {
  // Until a step's own Task exists, its record names none.
  for (const json& task : tasks) {
    if (auto stopped = CreateOwned(pipeline, resources::kTasks, task, context)) return stopped;
    MILLRACE_FAILPOINT("pipeline.after-task-create");
  }
  return std::nullopt;
}

std::expected<ObservedPipeline, Outcome> PipelineReconciler::Observe(
    const api::Pipeline& pipeline) {
  const std::string& uid = pipeline.metadata.uid;
  ObservedPipeline observed;
  std::set<std::string> seen;
  for (const Object& t : caches_.Of(resources::kTasks).ControlledBy(uid)) {
    observed.tasks.push_back(*t);
    seen.insert((*t)["metadata"].value("name", ""));
  }
  // Records naming a Task the cache does not show (yet): ask the API server.
  if (!pipeline.status) return observed;
  std::vector<std::string> recorded;
  for (const auto& step : pipeline.status->steps) {
    if (step.task) recorded.push_back(*step.task);
    // A fan-out step that is still running made its items 0 to started-1.
    const bool final = step.phase == api::StepPhase::kSucceeded ||
                       step.phase == api::StepPhase::kFailed ||
                       step.phase == api::StepPhase::kCancelled;
    if (!step.children || final) continue;
    for (int32_t k = 0; k < step.children->started; ++k) {
      recorded.push_back(FanOutTaskName(pipeline, step.name, static_cast<size_t>(k)));
    }
  }
  for (const std::string& name : recorded) {
    if (seen.contains(name)) continue;
    auto live = uncached_.Get(resources::kTasks, pipeline.metadata.namespace_, name);
    if (live && api::IsControlledBy(*live, uid)) {
      observed.tasks.push_back(std::move(*live));
    } else if (!live && !live.error().IsNotFound()) {
      return std::unexpected(Outcome::ApiError("reading Task " + name, live.error()));
    }
  }
  return observed;
}

Outcome PipelineReconciler::DeleteAfterTtl(const api::Pipeline& pipeline,
                                           const controller::ReconcileContext& context) {
  auto deleted =
      writer_.Delete(resources::kPipelines, pipeline.metadata.namespace_, pipeline.metadata.name,
                     {.propagation_policy = "Background",
                      .grace_period_seconds = std::nullopt,
                      .precondition_uid = pipeline.metadata.uid,
                      .precondition_resource_version = {},
                      .dry_run = false});
  if (!deleted && !deleted.error().IsNotFound() && !deleted.error().IsConflict()) {
    return Outcome::ApiError("deleting the pipeline after its TTL", std::move(deleted.error()));
  }
  context.logger.Info("deleted after ttlAfterFinished");
  return Outcome::Done();
}

std::optional<Outcome> PipelineReconciler::RegisterAndCancel(const api::Pipeline& pipeline,
                                                             const PipelinePlan& plan) {
  for (const json& mv : plan.register_models) {
    auto created = writer_.Create(resources::kModelVersions, mv,
                                  {.field_manager = std::string(kFieldManager)});
    if (!created && !created.error().IsAlreadyExists()) {
      const std::string name = mv["metadata"]["name"];
      if (created.error().IsInvalid()) {
        // Nothing a retry can fix (e.g. a version that is not a DNS label after substitution).
        Event(pipeline, "Warning", "RegisterFailed",
              "registering ModelVersion " + name + ": " + created.error().message);
        continue;
      }
      return Outcome::ApiError("registering ModelVersion " + name, std::move(created.error()));
    }
  }
  for (const std::string& name : plan.cancel) {
    auto patched = writer_.Patch(resources::kTasks, pipeline.metadata.namespace_, name,
                                 {{"spec", {{"cancel", true}}}});
    if (!patched && !patched.error().IsNotFound()) {
      return Outcome::ApiError("cancelling Task " + name, std::move(patched.error()));
    }
  }
  return std::nullopt;
}

Outcome PipelineReconciler::ReconcileObject(const api::Pipeline& pipeline,
                                            const controller::ReconcileContext& context) {
  auto observed = Observe(pipeline);
  if (!observed) return observed.error();
  PipelinePlan plan = PlanPipeline(pipeline, *observed, Now());
  if (plan.delete_pipeline) return DeleteAfterTtl(pipeline, context);
  if (auto stopped = CreateTasks(pipeline, plan.create, context)) return *stopped;
  if (auto stopped = RegisterAndCancel(pipeline, plan)) return *stopped;
  return Execute(pipeline, {.apply = {},
                            .remove = {},
                            .events = std::move(plan.events),
                            .status_patch = PipelineStatusPatch(pipeline, plan.status),
                            .requeue_after = plan.requeue_after,
                            .before_status = {}});
}

void AddPipelineController(controller::Manager& manager, int workers) {
  controller::ControllerBuilder(manager, "pipeline")
      .For(resources::kPipelines)
      .Owns(resources::kTasks)  // the Task controller's informer, shared
      .Workers(workers)
      .Complete([](controller::ReconcilerDeps deps) {
        return std::make_unique<PipelineReconciler>(std::move(deps));
      });
}

}  // namespace millrace::reconcilers
