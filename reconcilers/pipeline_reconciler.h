#pragma once

#include "controller/events.h"
#include "controller/informer.h"
#include "controller/manager.h"
#include "controller/mutation_cache.h"
#include "controller/reconciler.h"
#include "crds/pipeline.h"
#include "kubeclient/client.h"

namespace millrace::reconcilers {

// Pipelines -> one child Task per started step. reconcilers/pipeline.h decides; this class reads
// the caches, creates and cancels child Tasks, records events and patches the status.
//
// A step's record names its Task only after the Task was created. When a record names a Task the
// cache does not show, the Task is read from the API server before the plan may conclude it was
// deleted, so a lagging cache never fails a step (nor starts one twice: a second create of the
// deterministic name is refused with AlreadyExists).
class PipelineReconciler final : public controller::Reconciler {
 public:
  struct Caches {
    const controller::Informer& pipelines;
    const controller::Informer& tasks;
  };
  // `written`: the statuses this controller wrote, over caches.pipelines (WrittenCache()).
  PipelineReconciler(kube::Client& client, Caches caches, controller::MutationCache written,
                     controller::EventRecorder& events);

  controller::Outcome Reconcile(const controller::Request& request,
                                const controller::ReconcileContext& context) override;

 private:
  void Event(const api::Pipeline& pipeline, std::string_view type, std::string_view reason,
             std::string note);

  kube::Client& client_;
  Caches caches_;
  controller::MutationCache written_;
  controller::EventRecorder& events_;
};

// Sets up the informers, handlers and the "pipeline" controller on `manager`.
void AddPipelineController(controller::Manager& manager, int workers);

}  // namespace millrace::reconcilers
