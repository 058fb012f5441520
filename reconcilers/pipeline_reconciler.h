#pragma once

#include <expected>
#include <optional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/builder.h"
#include "controller/manager.h"
#include "crds/pipeline.h"
#include "reconcilers/object_reconciler.h"
#include "reconcilers/pipeline.h"

namespace millrace::reconcilers {

// Pipelines -> one child Task per started step. reconcilers/pipeline.h decides; this class reads
// the caches, creates and cancels child Tasks, records events and patches the status.
//
// A step's record names its Task only after the Task was created. When a record names a Task the
// cache does not show, the Task is read from the API server before the plan may conclude it was
// deleted, so a lagging cache never fails a step (nor starts one twice: a second create of the
// deterministic name is refused with AlreadyExists).
class PipelineReconciler final : public ObjectReconciler<api::Pipeline> {
 public:
  explicit PipelineReconciler(controller::ReconcilerDeps deps)
      : ObjectReconciler(std::move(deps)) {}

 private:
  controller::Outcome ReconcileObject(const api::Pipeline& pipeline,
                                      const controller::ReconcileContext& context) override;
  // The pipeline's Tasks from the cache, and from the API server those its status records that
  // the cache does not show (yet).
  std::expected<ObservedPipeline, controller::Outcome> Observe(const api::Pipeline& pipeline);
  // ttlAfterFinished has passed.
  controller::Outcome DeleteAfterTtl(const api::Pipeline& pipeline,
                                     const controller::ReconcileContext& context);
  // Registers the plan's ModelVersions and cancels its Tasks to cancel; an outcome when the
  // reconcile must stop there.
  std::optional<controller::Outcome> RegisterAndCancel(const api::Pipeline& pipeline,
                                                       const PipelinePlan& plan);
  // Creates the plan's Tasks; an outcome when the reconcile must stop there.
  std::optional<controller::Outcome> CreateTasks(const api::Pipeline& pipeline,
                                                 const std::vector<nlohmann::json>& tasks,
                                                 const controller::ReconcileContext& context);
};

// Sets up the informers, handlers and the "pipeline" controller on `manager`.
void AddPipelineController(controller::Manager& manager, int workers);

}  // namespace millrace::reconcilers
