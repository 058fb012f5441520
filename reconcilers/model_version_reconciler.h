#pragma once

#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "controller/builder.h"
#include "controller/manager.h"
#include "crds/model_version.h"
#include "reconcilers/model_version.h"
#include "reconcilers/object_reconciler.h"

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
class ModelVersionReconciler final : public ObjectReconciler<api::ModelVersion> {
 public:
  explicit ModelVersionReconciler(controller::ReconcilerDeps deps)
      : ObjectReconciler(std::move(deps)) {}

 private:
  // Takes the model's lock, reads the version again under it and reconciles that.
  controller::Outcome ReconcileObject(const api::ModelVersion& peek,
                                      const controller::ReconcileContext& context) override;
  controller::Outcome ReconcileLocked(const api::ModelVersion& mv,
                                      const controller::ReconcileContext& context);
  // The version's serving children and the model's other versions from the caches, and the
  // stable Service from the API server when the version has to do with Production.
  std::expected<ObservedModelVersion, controller::Outcome> Observe(const api::ModelVersion& mv);
  // PlanModelVersion, planned again from a live list of the other versions when this version is
  // about to say Production.
  std::expected<ModelVersionPlan, controller::Outcome> Plan(const api::ModelVersion& mv,
                                                            ObservedModelVersion& observed);
  // Moves traffic as the plan says: the stable Service switched to this version, the version to
  // archive archived (`status_of` follows when that is this version), the stable Service removed.
  std::optional<controller::Outcome> SwitchTraffic(const api::ModelVersion& mv,
                                                   const ModelVersionPlan& plan,
                                                   const ObservedModelVersion& observed,
                                                   api::ObjectMeta& status_of,
                                                   const controller::ReconcileContext& context);
  // The lock of model `key` ("namespace/model"), made on first use.
  std::shared_ptr<std::mutex> ModelLock(const std::string& key);
  // The model's other versions in `ns`, from the cache and this controller's writes.
  std::vector<api::ModelVersion> CachedSiblings(const api::ModelVersion& mv) const;

  std::mutex locks_mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> model_locks_;  // guarded by locks_mu_
};

// Sets up the informers, handlers and the "modelversion" controller on `manager`.
void AddModelVersionController(controller::Manager& manager, int workers);

}  // namespace millrace::reconcilers
