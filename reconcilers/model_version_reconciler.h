#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "controller/events.h"
#include "controller/informer.h"
#include "controller/manager.h"
#include "controller/mutation_cache.h"
#include "controller/reconciler.h"
#include "crds/model_version.h"
#include "kubeclient/client.h"

namespace millrace::reconcilers {

// ModelVersions -> serving Deployment, Service and HPA per served version, and the model's stable
// Service. reconcilers/model_version.h decides; this class reads the caches and writes.
//
// The arbiter of a model's promotions: reconciles of one model's versions never run at the same
// time (a lock per model, in this process; the leader lease and its write fence keep other
// replicas out), the stable Service is read live, the other versions are read from the cache
// with this controller's own status writes laid over it (MutationCache), and before a version
// first says Production the other versions are listed live. So a claim, a switch or an archive
// written by one reconcile is what the next one reads, and the Service changes once per
// completed promotion.
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
  // The lock of model `key` ("namespace/model"), made on first use.
  std::shared_ptr<std::mutex> ModelLock(const std::string& key);
  // The model's other versions in `ns`, from the cache and this controller's writes.
  std::vector<api::ModelVersion> CachedSiblings(const api::ModelVersion& mv) const;

  kube::Client& client_;
  Caches caches_;
  controller::MutationCache written_;
  controller::EventRecorder& events_;
  std::mutex locks_mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> model_locks_;  // guarded by locks_mu_
};

// Sets up the informers, handlers and the "modelversion" controller on `manager`.
void AddModelVersionController(controller::Manager& manager, int workers);

}  // namespace millrace::reconcilers
