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
kube::Result<std::vector<api::ModelVersion>> LiveSiblings(kube::Client& client,
                                                          const api::ModelVersion& mv) {
  auto list = client.ListAll(resources::kModelVersions, mv.metadata.namespace_);
  if (!list) return std::unexpected(std::move(list.error()));
  std::vector<api::ModelVersion> siblings;
  for (const json& item : (*list)["items"]) AddSibling(item, mv, siblings);
  return siblings;
}

// The keys of the cached versions in `ns` whose model's label value (Shorten(model, 63), as on
// the stable Service) is `model_label`.
std::vector<std::string> VersionsOf(const controller::Store& store, const std::string& ns,
                                    const std::string& model_label) {
  std::vector<std::string> keys;
  for (const Object& v : store.ByIndex(controller::Index::kNamespace, ns)) {
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

ModelVersionReconciler::ModelVersionReconciler(kube::Client& client, Caches caches,
                                               controller::MutationCache written,
                                               controller::EventRecorder& events)
    : client_(client), caches_(caches), written_(std::move(written)), events_(events) {}

std::shared_ptr<std::mutex> ModelVersionReconciler::ModelLock(const std::string& key) {
  const std::lock_guard lock(locks_mu_);
  auto& m = model_locks_[key];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

std::vector<api::ModelVersion> ModelVersionReconciler::CachedSiblings(
    const api::ModelVersion& mv) const {
  std::vector<api::ModelVersion> siblings;
  const controller::Store& store = caches_.model_versions.store();
  for (const Object& cached :
       store.ByIndex(controller::Index::kNamespace, mv.metadata.namespace_)) {
    const std::string key = controller::ObjectKey(*cached);
    AddSibling(*written_.Newest(key, cached), mv, siblings);
  }
  return siblings;
}

Outcome ModelVersionReconciler::Reconcile(const controller::Request& request,
                                          const controller::ReconcileContext& context) {
  auto peek =
      DecodeCached<api::ModelVersion>(caches_.model_versions.store(), written_, request.key);
  if (!peek) return peek.error();
  if (!*peek) return Outcome::Done();  // deleted; owner references take its children
  // One reconcile of a model's versions at a time; read again under the lock.
  const auto model_lock = ModelLock((*peek)->metadata.namespace_ + "/" + (*peek)->spec.model);
  const std::lock_guard serialised(*model_lock);
  auto cached =
      DecodeCached<api::ModelVersion>(caches_.model_versions.store(), written_, request.key);
  if (!cached) return cached.error();
  if (!*cached) return Outcome::Done();
  const api::ModelVersion& mv = **cached;
  if (mv.metadata.deletion_timestamp) return Outcome::Done();
  const std::string& ns = mv.metadata.namespace_;
  const std::string& uid = mv.metadata.uid;
  const std::string key = ns + "/" + mv.metadata.name;

  ObservedModelVersion observed;
  observed.deployment = ControlledBy(caches_.deployments.store(), key, uid);
  observed.service = ControlledBy(caches_.services.store(), key, uid);
  observed.horizontal_pod_autoscaler =
      ControlledBy(caches_.horizontal_pod_autoscalers.store(), key, uid);
  observed.siblings = CachedSiblings(mv);
  if (const Object stable = caches_.services.store().Get(ns + "/" + mv.spec.model)) {
    observed.stable_service = *stable;
  }
  const bool involved =
      mv.spec.stage == api::Stage::kProduction ||
      (mv.status && mv.status->stage == api::Stage::kProduction) ||
      (observed.stable_service && Str(Sub(Sub(*observed.stable_service, "metadata"), "annotations"),
                                      kProductionVersionAnnotation) == mv.spec.version);
  if (involved) {
    // Who holds traffic decides promotions: never from a cache that may lag behind a switch.
    auto live = client_.Get(kube::resources::kServices, ns, mv.spec.model);
    if (live) {
      observed.stable_service = std::move(*live);
    } else if (live.error().IsNotFound()) {
      observed.stable_service.reset();
    } else {
      return Outcome::TransientError("reading Service " + mv.spec.model + ": " +
                                     live.error().ToString());
    }
  }

  ModelVersionPlan plan = PlanModelVersion(mv, observed, Now());
  const bool to_production = plan.status.stage == api::Stage::kProduction &&
                             !(mv.status && mv.status->stage == api::Stage::kProduction);
  if (to_production) {
    // About to say Production: check the other versions live, so no write of another process
    // (a replica that led a moment ago) the cache has not shown yet is missed.
    auto live = LiveSiblings(client_, mv);
    if (!live)
      return Outcome::TransientError("listing the versions of " + mv.spec.model + ": " +
                                     live.error().ToString());
    observed.siblings = std::move(*live);
    plan = PlanModelVersion(mv, observed, Now());
  }
  auto applied =
      ApplyChildren(client_, plan.apply, [this](std::string_view kind, const std::string& k) {
        const controller::Informer& cache = kind == "Deployment" ? caches_.deployments
                                            : kind == "Service"
                                                ? caches_.services
                                                : caches_.horizontal_pod_autoscalers;
        return cache.store().Get(k);
      });
  if (!applied) {
    return Outcome::TransientError("applying " + applied.error().what + ": " +
                                   applied.error().error.ToString());
  }
  if (auto error = DeleteChildren(client_, plan.remove)) return Outcome::TransientError(*error);

  // Traffic first: only once the stable Service is ours does the status say Production.
  if (plan.stable_service) {
    const json& svc = *plan.stable_service;
    const bool exists = svc["metadata"].contains("resourceVersion");
    auto written = exists ? client_.Update(kube::resources::kServices, svc,
                                           {.field_manager = std::string(kFieldManager)})
                          : client_.Create(kube::resources::kServices, svc,
                                           {.field_manager = std::string(kFieldManager)});
    if (!written) {
      // Conflict / AlreadyExists: another promotion moved first; retry against the new holder.
      return Outcome::TransientError("switching Service " + mv.spec.model + ": " +
                                     written.error().ToString());
    }
    context.logger.Info("stable Service " + mv.spec.model + " now selects version " +
                        mv.spec.version);
    MILLRACE_FAILPOINT("modelversion.after-service-switch");
  }
  // The status patch below is conditional on the resourceVersion read; archiving this very
  // version moves it on, so the status goes on the archived object's.
  api::ObjectMeta meta = mv.metadata;
  if (plan.archive) {
    auto archived = client_.Patch(resources::kModelVersions, ns, *plan.archive,
                                  {{"spec", {{"stage", "Archived"}}}});
    if (!archived && !archived.error().IsNotFound()) {
      return Outcome::TransientError("archiving " + *plan.archive + ": " +
                                     archived.error().ToString());
    }
    if (archived && *plan.archive == mv.metadata.name) {
      meta.resource_version = (*archived)["metadata"].value("resourceVersion", "");
      written_.Written(mv.metadata.resource_version, std::move(*archived));
    }
  }
  if (plan.remove_stable_service && observed.stable_service) {
    auto deleted =
        client_.Delete(kube::resources::kServices, ns, mv.spec.model,
                       {.propagation_policy = {},
                        .grace_period_seconds = std::nullopt,
                        .precondition_uid = {},
                        .precondition_resource_version =
                            (*observed.stable_service)["metadata"].value("resourceVersion", ""),
                        .dry_run = false});
    if (!deleted && !deleted.error().IsNotFound()) {
      return Outcome::TransientError("removing Service " + mv.spec.model + ": " +
                                     deleted.error().ToString());
    }
  }
  for (const auto& e : plan.events) RecordEvent(events_, api::ModelVersion::kKind, mv.metadata, e);

  if (auto error = PatchStatusIfChanged(client_, resources::kModelVersions, meta,
                                        ModelVersionStatusPatch(mv, plan.status), written_)) {
    return Outcome::TransientError(*error);
  }
  if (plan.requeue_after) return Outcome::RequeueAfter(*plan.requeue_after);
  return Outcome::Done();
}

void AddModelVersionController(controller::Manager& manager, int workers) {
  const std::string managed = ManagedBySelector();
  auto informer = [&](const kube::ResourceRef& ref, std::string selector) -> controller::Informer& {
    return AddInformer(manager, ref, std::move(selector));
  };
  controller::Informer& versions = informer(resources::kModelVersions, "");
  std::vector<controller::Informer*> children = {
      &informer(kube::resources::kDeployments, managed),
      &informer(kube::resources::kServices, managed),
      &informer(resources::kHorizontalPodAutoscalers, managed),
  };
  controller::Controller& mc = manager.AddController(
      {.name = "modelversion",
       .workers = workers,
       .rate_limits = {},
       .clock = nullptr,
       .metrics = nullptr,
       .logger = {}},
      std::make_unique<ModelVersionReconciler>(
          manager.client(),
          ModelVersionReconciler::Caches{versions, *children[0], *children[1], *children[2]},
          WrittenCache(versions), manager.events()));
  controller::WorkQueue& queue = mc.queue();
  versions.AddHandler(controller::EnqueueObject(queue, controller::GenerationOrMetadataChanged));
  const controller::OwnerMatch owner{
      .group = "millrace.io", .kind = "ModelVersion", .owner_namespaced = true};
  for (controller::Informer* child : children) {
    child->AddHandler(controller::EnqueueOwner(queue, owner));
  }
  // A version's stage changed: the model's other versions look again (one waiting for the
  // previous Production version to leave can now say Production).
  versions.AddHandler(controller::EnqueueMapped(
      queue,
      [&versions](const json& changed) {
        return VersionsOf(versions.store(), Str(Sub(changed, "metadata"), "namespace"),
                          Shorten(Str(Sub(changed, "spec"), "model"), 63));
      },
      StageChanged));
  // The stable Service changed hands: every version of that model looks again.
  children[1]->AddHandler(controller::EnqueueMapped(queue, [&versions](const json& svc) {
    const json& meta = Sub(svc, "metadata");
    const std::string model = Str(Sub(meta, "labels"), kModelLabel);
    if (model.empty() || !Sub(Sub(meta, "annotations"), kProductionVersionAnnotation).is_string()) {
      return std::vector<std::string>{};
    }
    return VersionsOf(versions.store(), Str(meta, "namespace"), model);
  }));
}

}  // namespace millrace::reconcilers
