#pragma once

#include "controller/events.h"
#include "controller/informer.h"
#include "controller/manager.h"
#include "controller/mutation_cache.h"
#include "controller/reconciler.h"
#include "crds/model_version.h"
#include "kubeclient/client.h"

namespace millrace::reconcilers {

// ModelVersions -> serving Deployment, Service and HPA per served version, and the model's stable
// Service. reconcilers/model_version.h decides; this class reads the caches and writes. The stable
// Service is switched before the status says Production and before the previous version is
// archived, so a failed or conflicting switch leaves nothing half done: the queue retries.
class ModelVersionReconciler final : public controller::Reconciler {
 public:
  struct Caches {
    const controller::Informer& model_versions;
    const controller::Informer& deployments;
    const controller::Informer& services;
    const controller::Informer& horizontal_pod_autoscalers;
  };
  // `written`: the statuses this controller wrote, over caches.model_versions (WrittenCache()).
  ModelVersionReconciler(kube::Client& client, Caches caches, controller::MutationCache written,
                         controller::EventRecorder& events);

  controller::Outcome Reconcile(const controller::Request& request,
                                const controller::ReconcileContext& context) override;

 private:
  kube::Client& client_;
  Caches caches_;
  controller::MutationCache written_;
  controller::EventRecorder& events_;
};

// Sets up the informers, handlers and the "modelversion" controller on `manager`.
void AddModelVersionController(controller::Manager& manager, int workers);

}  // namespace millrace::reconcilers
