#include "reconcilers/model_version_reconciler.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controller/failpoint.h"
#include "controller/handlers.h"
#include "crds/errors.h"
#include "crds/meta.h"
#include "reconcilers/apply.h"
#include "reconcilers/model_version.h"
#include "reconcilers/names.h"
#include "reconcilers/object.h"

namespace millrace::reconcilers {
namespace {

using controller::Object;
using controller::Outcome;
using nlohmann::json;

// Adds `item` to `siblings` when it is another version of `mv`'s model.
void AddSibling(const json& item, const api::ModelVersion& mv,
                std::vector<api::ModelVersion>& siblings) {
  auto v = api::ModelVersion::FromJson(item);
  if (v && v->spec.model == mv.spec.model && v->metadata.name != mv.metadata.name) {
    siblings.push_back(std::move(*v));
  }
}

// The model's other versions in the namespace, listed live from the API server.
kube::Result<std::vector<api::ModelVersion>> LiveSiblings(kube::Reader& client,
                                                          const api::ModelVersion& mv) {
  auto list = client.ListAll(resources::kModelVersions, mv.metadata.namespace_);
  if (!list) return std::unexpected(std::move(list.error()));
  std::vector<api::ModelVersion> siblings;
  for (const json& item : (*list)["items"]) AddSibling(item, mv, siblings);
  return siblings;
}

// The keys of the cached versions in `ns` whose model's label value (Shorten(model, 63), as on
// the stable Service) is `model_label`.
std::vector<std::string> VersionsOf(const controller::Cache& versions, const std::string& ns,
                                    const std::string& model_label) {
  std::vector<std::string> keys;
  for (const Object& v : versions.InNamespace(ns)) {
    if (Shorten(Str(Sub(*v, "spec"), "model"), 63) == model_label) {
      keys.push_back(controller::ObjectKey(*v));
    }
  }
  return keys;
}

// Passes updates that change a version's status.stage (leaving Production, say).
bool StageChanged(const controller::ObjectEvent& event) {
  if (event.type != controller::ObjectEvent::Type::kUpdated || !event.previous || !event.current) {
    return false;
  }
  return Str(Sub(*event.previous, "status"), "stage") !=
         Str(Sub(*event.current, "status"), "stage");
}

}  // namespace

std::shared_ptr<std::mutex> ModelVersionReconciler::ModelLock(const std::string& key) {
  const std::lock_guard lock(locks_mu_);
  auto& m = model_locks_[key];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

std::vector<api::ModelVersion> ModelVersionReconciler::CachedSiblings(
    const api::ModelVersion& mv) const {
  std::vector<api::ModelVersion> siblings;
  for (const Object& cached : primary_.InNamespace(mv.metadata.namespace_)) {
    const std::string key = controller::ObjectKey(*cached);
    AddSibling(*written_.Newest(key, cached), mv, siblings);
  }
  return siblings;
}

Outcome ModelVersionReconciler::ReconcileObject(const api::ModelVersion& peek,
                                                const controller::ReconcileContext& context) {
  // One reconcile of a model's versions at a time; read again under the lock.
  const auto model_lock = ModelLock(peek.metadata.namespace_ + "/" + peek.spec.model);
  const std::lock_guard serialised(*model_lock);
  auto cached = Read(peek.metadata.namespace_ + "/" + peek.metadata.name);
  if (!cached) return cached.error();
  const std::optional<api::ModelVersion>& current = *cached;
  if (!current.has_value() || current->metadata.deletion_timestamp) return Outcome::Done();
  return ReconcileLocked(*current, context);
}

std::expected<ObservedModelVersion, Outcome> ModelVersionReconciler::Observe(
    const api::ModelVersion& mv) {
  const std::string& ns = mv.metadata.namespace_;
  const std::string& uid = mv.metadata.uid;
  const std::string key = ns + "/" + mv.metadata.name;
  const controller::Cache& services = caches_.Of(kube::resources::kServices);
  ObservedModelVersion observed;
  observed.deployment = ControlledBy(caches_.Of(kube::resources::kDeployments).store(), key, uid);
  observed.service = ControlledBy(services.store(), key, uid);
  observed.horizontal_pod_autoscaler =
      ControlledBy(caches_.Of(resources::kHorizontalPodAutoscalers).store(), key, uid);
  observed.siblings = CachedSiblings(mv);
  if (const Object stable = services.Get(ns + "/" + mv.spec.model)) {
    observed.stable_service = *stable;
  }
  const bool involved =
      mv.spec.stage == api::Stage::kProduction ||
      (mv.status && mv.status->stage == api::Stage::kProduction) ||
      (observed.stable_service && Str(Sub(Sub(*observed.stable_service, "metadata"), "annotations"),
                                      kProductionVersionAnnotation) == mv.spec.version);
  if (!involved) return observed;
  // Who holds traffic decides promotions: never from a cache that may lag behind a switch.
  auto live = uncached_.Get(kube::resources::kServices, ns, mv.spec.model);
  if (live) {
    observed.stable_service = std::move(*live);
  } else if (live.error().IsNotFound()) {
    observed.stable_service.reset();
  } else {
    return std::unexpected(Outcome::ApiError("reading Service " + mv.spec.model, live.error()));
  }
  return observed;
}

std::expected<ModelVersionPlan, Outcome> ModelVersionReconciler::Plan(
    const api::ModelVersion& mv, ObservedModelVersion& observed) {
  ModelVersionPlan plan = PlanModelVersion(mv, observed, Now());
  const bool to_production = plan.status.stage == api::Stage::kProduction &&
                             !(mv.status && mv.status->stage == api::Stage::kProduction);
  if (!to_production) return plan;
  // About to say Production: check the other versions live, so no write of another process (a
  // replica that led a moment ago) the cache has not shown yet is missed.
  auto live = LiveSiblings(uncached_, mv);
  if (!live) {
    return std::unexpected(
        Outcome::ApiError("listing the versions of " + mv.spec.model, live.error()));
  }
  observed.siblings = std::move(*live);
  return PlanModelVersion(mv, observed, Now());
}

std::optional<Outcome> ModelVersionReconciler::SwitchTraffic(
    const api::ModelVersion& mv, const ModelVersionPlan& plan, const ObservedModelVersion& observed,
    api::ObjectMeta& status_of, const controller::ReconcileContext& context) {
  const std::string& ns = mv.metadata.namespace_;
  // Traffic first: only once the stable Service is ours does the status say Production.
  if (plan.stable_service) {
    const json& svc = *plan.stable_service;
    const bool exists = svc["metadata"].contains("resourceVersion");
    auto written = exists ? writer_.Update(kube::resources::kServices, svc,
                                           {.field_manager = std::string(kFieldManager)})
                          : writer_.Create(kube::resources::kServices, svc,
                                           {.field_manager = std::string(kFieldManager)});
    if (!written) {
      // Conflict / AlreadyExists: another promotion moved first; retry against the new holder.
      return Outcome::ApiError("switching Service " + mv.spec.model, std::move(written.error()));
    }
    context.logger.Info("stable Service " + mv.spec.model + " now selects version " +
                        mv.spec.version);
    MILLRACE_FAILPOINT("modelversion.after-service-switch");
  }
  if (plan.archive) {
    auto archived = writer_.Patch(resources::kModelVersions, ns, *plan.archive,
                                  {{"spec", {{"stage", "Archived"}}}});
    if (!archived && !archived.error().IsNotFound()) {
      return Outcome::ApiError("archiving " + *plan.archive, std::move(archived.error()));
    }
    if (archived && *plan.archive == mv.metadata.name) {
      status_of.resource_version = (*archived)["metadata"].value("resourceVersion", "");
      written_.Written(mv.metadata.resource_version, std::move(*archived));
    }
  }
  if (plan.remove_stable_service && observed.stable_service) {
    auto deleted =
        writer_.Delete(kube::resources::kServices, ns, mv.spec.model,
                       {.propagation_policy = {},
                        .grace_period_seconds = std::nullopt,
                        .precondition_uid = {},
                        .precondition_resource_version =
                            (*observed.stable_service)["metadata"].value("resourceVersion", ""),
                        .dry_run = false});
    if (!deleted && !deleted.error().IsNotFound()) {
      return Outcome::ApiError("removing Service " + mv.spec.model, std::move(deleted.error()));
    }
  }
  return std::nullopt;
}

Outcome ModelVersionReconciler::ReconcileLocked(const api::ModelVersion& mv,
                                                const controller::ReconcileContext& context) {
  auto observed = Observe(mv);
  if (!observed) return observed.error();
  auto plan = Plan(mv, *observed);
  if (!plan) return plan.error();
  // The status patch is conditional on the resourceVersion read; archiving this very version
  // moves it on, so the status goes on the archived object's.
  api::ObjectMeta status_of = mv.metadata;
  return Execute(
      mv,
      {.apply = std::move(plan->apply),
       .remove = std::move(plan->remove),
       .events = std::move(plan->events),
       .status_patch = ModelVersionStatusPatch(mv, plan->status),
       .requeue_after = plan->requeue_after,
       .before_status = [&] { return SwitchTraffic(mv, *plan, *observed, status_of, context); }},
      status_of);
}

namespace {

// A version's stage changed: the model's other versions look again (one waiting for the previous
// Production version to leave can now say Production).
std::vector<std::string> VersionsOfSameModel(const json& changed,
                                             const controller::Caches& caches) {
  return VersionsOf(caches.primary(), Str(Sub(changed, "metadata"), "namespace"),
                    Shorten(Str(Sub(changed, "spec"), "model"), 63));
}

// The stable Service changed hands: every version of that model looks again.
std::vector<std::string> VersionsOfStableService(const json& svc,
                                                 const controller::Caches& caches) {
  const json& meta = Sub(svc, "metadata");
  const std::string model = Str(Sub(meta, "labels"), kModelLabel);
  if (model.empty() || !Sub(Sub(meta, "annotations"), kProductionVersionAnnotation).is_string()) {
    return {};
  }
  return VersionsOf(caches.primary(), Str(meta, "namespace"), model);
}

}  // namespace

void AddModelVersionController(controller::Manager& manager, int workers) {
  const std::string managed = ManagedBySelector();
  controller::ControllerBuilder(manager, "modelversion")
      .For(resources::kModelVersions)
      .Watches(resources::kModelVersions, VersionsOfSameModel, {}, StageChanged)
      .Owns(kube::resources::kDeployments, {.label_selector = managed})
      .Owns(kube::resources::kServices, {.label_selector = managed})
      .Watches(kube::resources::kServices, VersionsOfStableService, {.label_selector = managed})
      .Owns(resources::kHorizontalPodAutoscalers, {.label_selector = managed})
      .Workers(workers)
      .Complete([](controller::ReconcilerDeps deps) {
        return std::make_unique<ModelVersionReconciler>(std::move(deps));
      });
}

}  // namespace millrace::reconcilers
