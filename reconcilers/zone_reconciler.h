#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/builder.h"
#include "controller/manager.h"
#include "crds/zone.h"
#include "reconcilers/object_reconciler.h"
#include "reconcilers/zone.h"

namespace millrace::reconcilers {

// The finalizer that lets a deleted Zone carry out its deletionPolicy.
inline constexpr std::string_view kZoneFinalizer = "millrace.io/zone-cleanup";

// Zones -> Namespace, ResourceQuota, LimitRange, NetworkPolicy, RoleBindings, PriorityClass
// (reconcilers/zone.h decides what they look like; this class reads the caches and writes).
//
// A reconcile: add the finalizer (ObjectReconciler, reconcilers/finalizer.h); refuse a namespace
// that exists and is not the zone's; apply every desired child the cache does not already show;
// delete children the spec no longer wants; patch the status if it changed. Deletion: with
// deletionPolicy Delete the Namespace is deleted (the namespace controller removes its contents),
// with Retain its zone labels are removed and it stays; either way the finalizer goes at once, so a
// deleted Zone never waits on the operator more than one reconcile, and nothing Millrace made
// carries a finalizer of its own.
class ZoneReconciler final : public ObjectReconciler<api::Zone> {
 public:
  explicit ZoneReconciler(controller::ReconcilerDeps deps)
      : ObjectReconciler(std::move(deps), kZoneFinalizer) {}

 private:
  controller::Outcome ReconcileObject(const api::Zone& zone,
                                      const controller::ReconcileContext& context) override;
  // The deletionPolicy: the namespace deleted (Delete) or released (Retain).
  controller::Outcome Cleanup(const api::Zone& zone,
                              const controller::ReconcileContext& context) override;
  // A deleted zone whose spec does not decode: its namespace is kept, its finalizer removed.
  controller::Outcome Undecodable(const nlohmann::json& zone, controller::Outcome error,
                                  const controller::ReconcileContext& context) override;
  // Applies the zone's children and deletes the ones its spec no longer wants; `observed` gets a
  // refusal a retry cannot fix. An outcome when the reconcile must stop there.
  std::optional<controller::Outcome> ApplyZoneChildren(const api::Zone& zone,
                                                       ObservedZone& observed,
                                                       const controller::ReconcileContext& context);
  // Unlabels namespace `ns` and drops its ownerReferences (deletionPolicy Retain).
  kube::Result<void> RetainNamespace(const std::string& ns);
};

// Sets up the informers (children selected by label, so the caches hold only Millrace's
// objects), their event handlers and the "zone" controller on `manager`. The reconciler lives as
// long as the manager.
void AddZoneController(controller::Manager& manager, int workers);

}  // namespace millrace::reconcilers
