#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/events.h"
#include "controller/informer.h"
#include "controller/manager.h"
#include "controller/mutation_cache.h"
#include "controller/reconciler.h"
#include "crds/zone.h"
#include "kubeclient/client.h"

namespace millrace::reconcilers {

// The finalizer that lets a deleted Zone carry out its deletionPolicy.
inline constexpr std::string_view kZoneFinalizer = "millrace.io/zone-cleanup";

// Zones -> Namespace, ResourceQuota, LimitRange, NetworkPolicy, RoleBindings, PriorityClass
// (reconcilers/zone.h decides what they look like; this class reads the caches and writes).
//
// A reconcile: add the finalizer; refuse a namespace that exists and is not the zone's; apply
// every desired child the cache does not already show; delete children the spec no longer wants;
// patch the status if it changed. Deletion: with deletionPolicy Delete the Namespace is deleted
// (the namespace controller removes its contents), with Retain its zone labels are removed and
// it stays; either way the finalizer goes at once, so a deleted Zone never waits on the operator
// more than one reconcile, and nothing Millrace made carries a finalizer of its own.
class ZoneReconciler final : public controller::Reconciler {
 public:
  struct Caches {
    const controller::Informer& zones;
    const controller::Informer& namespaces;
    const controller::Informer& quotas;
    const controller::Informer& limit_ranges;
    const controller::Informer& network_policies;
    const controller::Informer& role_bindings;
    const controller::Informer& priority_classes;
    const controller::Informer& nodes;
  };
  // `written`: the statuses this controller wrote, over caches.zones (WrittenCache()).
  ZoneReconciler(kube::Client& client, Caches caches, controller::MutationCache written,
                 controller::EventRecorder& events);

  controller::Outcome Reconcile(const controller::Request& request,
                                const controller::ReconcileContext& context) override;

 private:
  controller::Outcome Finalize(const api::Zone& zone, const controller::ReconcileContext& context);
  // A deleted zone whose spec does not decode: its namespace is kept, its finalizer removed.
  controller::Outcome FinalizeUndecodable(const nlohmann::json& zone,
                                          const controller::ReconcileContext& context);
  // Unlabels namespace `ns` and drops its ownerReferences (deletionPolicy Retain).
  std::optional<std::string> RetainNamespace(const std::string& ns);
  controller::Outcome RemoveFinalizer(const std::string& name, const std::string& resource_version,
                                      const std::vector<std::string>& finalizers,
                                      const controller::ReconcileContext& context);
  void Event(const api::Zone& zone, std::string_view type, std::string_view reason,
             std::string note);
  controller::Object Cached(const nlohmann::json& child) const;

  kube::Client& client_;
  Caches caches_;
  controller::MutationCache written_;
  controller::EventRecorder& events_;
};

// Sets up the informers (children selected by label, so the caches hold only Millrace's
// objects), their event handlers and the "zone" controller on `manager`. The reconciler lives as
// long as the manager.
void AddZoneController(controller::Manager& manager, int workers);

}  // namespace millrace::reconcilers
