#include "reconcilers/model_version_reconciler.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controller/handlers.h"
#include "crds/errors.h"
#include "crds/meta.h"
#include "reconcilers/apply.h"
#include "reconcilers/model_version.h"
#include "reconcilers/object.h"

namespace millrace::reconcilers {
namespace {

using controller::Object;
using controller::Outcome;
using nlohmann::json;

}  // namespace

ModelVersionReconciler::ModelVersionReconciler(kube::Client& client, Caches caches,
                                               controller::MutationCache written,
                                               controller::EventRecorder& events)
    : client_(client), caches_(caches), written_(std::move(written)), events_(events) {}

Outcome ModelVersionReconciler::Reconcile(const controller::Request& request,
                                          const controller::ReconcileContext& context) {
  auto cached =
      DecodeCached<api::ModelVersion>(caches_.model_versions.store(), written_, request.key);
  if (!cached) return cached.error();
  if (!*cached) return Outcome::Done();  // deleted; owner references take its children
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
  if (const Object stable = caches_.services.store().Get(ns + "/" + mv.spec.model)) {
    observed.stable_service = *stable;
  }

  ModelVersionPlan plan = PlanModelVersion(mv, observed, Now());
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
  }
  if (plan.archive) {
    auto archived = client_.Patch(resources::kModelVersions, ns, *plan.archive,
                                  {{"spec", {{"stage", "Archived"}}}});
    if (!archived && !archived.error().IsNotFound()) {
      return Outcome::TransientError("archiving " + *plan.archive + ": " +
                                     archived.error().ToString());
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

  if (auto error = PatchStatusIfChanged(client_, resources::kModelVersions, mv.metadata,
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
  // The stable Service changed hands: every version of that model looks again.
  children[1]->AddHandler(controller::EnqueueMapped(queue, [&versions](const json& svc) {
    std::vector<std::string> keys;
    const auto& meta = svc["metadata"];
    const std::string model =
        meta.value("labels", json::object()).value(std::string(kModelLabel), std::string{});
    if (model.empty() || !meta.value("annotations", json::object())
                              .contains(std::string(kProductionVersionAnnotation))) {
      return keys;
    }
    for (const Object& v :
         versions.store().ByIndex(controller::Index::kNamespace, meta.value("namespace", ""))) {
      if ((*v)["spec"].value("model", "") == model) keys.push_back(controller::ObjectKey(*v));
    }
    return keys;
  }));
}

}  // namespace millrace::reconcilers
