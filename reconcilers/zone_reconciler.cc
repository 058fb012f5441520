#include "reconcilers/zone_reconciler.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controller/failpoint.h"
#include "crds/meta.h"
#include "reconcilers/apply.h"
#include "reconcilers/object.h"

namespace millrace::reconcilers {
namespace {

using controller::Object;
using controller::Outcome;
using nlohmann::json;

std::vector<api::Zone> ParseZones(const controller::Cache& zones) {
  std::vector<api::Zone> parsed;
  for (const Object& object : zones.List()) {
    if (auto zone = api::Zone::FromJson(*object)) parsed.push_back(std::move(*zone));
  }
  return parsed;
}

// The namespace a zone wants, read from its JSON (its spec may not decode).
std::string TargetNamespaceOf(const json& zone) {
  const json& ns = Sub(Sub(zone, "spec"), "namespace");
  return ns.is_string() ? ns.get<std::string>() : Str(Sub(zone, "metadata"), "name");
}

// Zones with guarantees compete for the same capacity: a change to one, or to a node, re-checks
// them all.
std::vector<std::string> GuaranteedZones(const json& /*changed*/,
                                         const controller::Caches& caches) {
  std::vector<std::string> keys;
  for (const Object& z : caches.primary().List()) {
    if (Sub(Sub(*z, "spec"), "guarantees").is_object()) keys.push_back(controller::ObjectKey(*z));
  }
  return keys;
}

// A namespace -> the zones that want it (owned or not: a taken namespace going away unblocks its
// zone).
std::vector<std::string> ZonesOfNamespace(const json& ns, const controller::Caches& caches) {
  std::vector<std::string> keys;
  const std::string name = Str(Sub(ns, "metadata"), "name");
  for (const Object& z : caches.primary().List()) {
    if (TargetNamespaceOf(*z) == name) keys.push_back(controller::ObjectKey(*z));
  }
  return keys;
}

// Nodes carry long image lists and conditions; keep what guarantees read.
void TrimNode(json& node) {
  json allocatable = node["status"].value("allocatable", json::object());
  const bool unschedulable = node["spec"].value("unschedulable", false);
  node["status"] = {{"allocatable", std::move(allocatable)}};
  node["spec"] = {{"unschedulable", unschedulable}};
}

}  // namespace

Outcome ZoneReconciler::Cleanup(const api::Zone& zone,
                                const controller::ReconcileContext& /*context*/) {
  const std::string& ns = api::TargetNamespace(zone);
  const Object live_ns = caches_.Of(kube::resources::kNamespaces).Get(ns);
  if (!live_ns || NamespaceTaken(zone, *live_ns)) return Outcome::Done();
  const auto policy = zone.spec.deletion_policy.value_or(api::DeletionPolicy::kRetain);
  if (policy == api::DeletionPolicy::kRetain) {
    if (auto retained = RetainNamespace(ns); !retained) {
      return Outcome::ApiError("releasing namespace " + ns, std::move(retained.error()));
    }
    Event(zone, "Normal", "NamespaceRetained",
          "deletionPolicy Retain: namespace " + ns + " is kept and no longer belongs to a zone");
    return Outcome::Done();
  }
  if ((*live_ns)["metadata"].contains("deletionTimestamp")) return Outcome::Done();
  auto deleted = writer_.Delete(kube::resources::kNamespaces, "", ns,
                                {.propagation_policy = "Background",
                                 .grace_period_seconds = std::nullopt,
                                 .precondition_uid = (*live_ns)["metadata"].value("uid", ""),
                                 .precondition_resource_version = {},
                                 .dry_run = false});
  if (!deleted && !deleted.error().IsNotFound()) {
    return Outcome::ApiError("deleting namespace " + ns, std::move(deleted.error()));
  }
  Event(zone, "Normal", "NamespaceDeleted",
        "deletionPolicy Delete: namespace " + ns + " and everything in it is being deleted");
  return Outcome::Done();
}

kube::Result<void> ZoneReconciler::RetainNamespace(const std::string& ns) {
  // The namespace and its workloads stay, no longer marked as the zone's. The zone's fences
  // (quota, defaults, bindings, policy) carry ownerReferences and are garbage collected.
  const json patch = {{"metadata",
                       {{"labels", {{kZoneLabel, nullptr}, {kManagedByLabel, nullptr}}},
                        {"ownerReferences", nullptr}}}};
  auto patched = writer_.Patch(kube::resources::kNamespaces, "", ns, patch);
  if (!patched && !patched.error().IsNotFound()) return std::unexpected(patched.error());
  return {};
}

Outcome ZoneReconciler::Undecodable(const json& zone, Outcome error,
                                    const controller::ReconcileContext& context) {
  const json& meta = Sub(zone, "metadata");
  std::vector<std::string> finalizers;
  for (const json& f : Sub(meta, "finalizers")) {
    if (f.is_string()) finalizers.push_back(f.get<std::string>());
  }
  if (!meta.contains("deletionTimestamp") || !HasFinalizer(finalizers, finalizer_)) return error;
  // The schema and the webhook keep a zone from failing to decode; one that does anyway (an older
  // schema, an edit behind the webhook's back) must still be deletable. Without its spec the
  // deletionPolicy is unknown: the safe choice is Retain's, keeping the namespace and everything
  // in it.
  const std::string name = Str(meta, "name");
  const std::string ns = TargetNamespaceOf(zone);
  if (const Object live_ns = caches_.Of(kube::resources::kNamespaces).Get(ns);
      live_ns && api::IsControlledBy(*live_ns, Str(meta, "uid"))) {
    if (auto retained = RetainNamespace(ns); !retained) {
      return Outcome::ApiError("releasing namespace " + ns, std::move(retained.error()));
    }
  }
  events_.Record(controller::EventSpec{
      .regarding = {.api_version = std::string(api::kApiVersion),
                    .kind = std::string(api::Zone::kKind),
                    .ns = "",
                    .name = name,
                    .uid = Str(meta, "uid")},
      .type = "Warning",
      .reason = "NamespaceRetained",
      .action = "Reconcile",
      .note = "the zone's spec does not decode, so its deletionPolicy is unknown: namespace " + ns +
              " is kept, as Retain would",
  });
  api::ObjectMeta read;
  read.name = name;
  read.resource_version = Str(meta, "resourceVersion");
  read.finalizers = std::move(finalizers);
  return RemoveOwnFinalizer(read, context);
}

std::optional<Outcome> ZoneReconciler::ApplyZoneChildren(
    const api::Zone& zone, ObservedZone& observed, const controller::ReconcileContext& context) {
  int written = 0;
  if (auto applied = reconcilers::ApplyChildren(writer_, DesiredZoneChildren(zone).All(), caches_);
      !applied) {
    ApplyFailure& f = applied.error();
    if (!controller::IsTerminal(f.error)) {
      return Outcome::ApiError("applying " + f.what, std::move(f.error));
    }
    // Refused for good (a human must change the spec or the RBAC): the status says so.
    observed.apply_error = "applying " + f.what + ": " + f.error.message;
    Event(zone, "Warning", "ApplyRefused", *observed.apply_error);
  } else {
    written = *applied;
  }
  for (const ChildRef& stale : StaleZoneChildren(zone)) {
    const kube::ResourceRef& ref = ResourceOf(stale.api_version, stale.kind);
    const Object live = caches_.Of(ref).Get(
        stale.namespace_.empty() ? stale.name : stale.namespace_ + "/" + stale.name);
    if (!live || !api::IsControlledBy(*live, zone.metadata.uid)) continue;
    // Conditional on the uid seen: a late delete never removes a newer object of the name.
    auto deleted = writer_.Delete(ref, stale.namespace_, stale.name,
                                  {.propagation_policy = {},
                                   .grace_period_seconds = std::nullopt,
                                   .precondition_uid = Str(Sub(*live, "metadata"), "uid"),
                                   .precondition_resource_version = {},
                                   .dry_run = false});
    if (!deleted && !deleted.error().IsNotFound()) {
      return Outcome::ApiError("deleting " + stale.kind + " " + stale.name,
                               std::move(deleted.error()));
    }
    ++written;
  }
  if (written > 0) context.logger.Info("children applied");
  MILLRACE_FAILPOINT("zone.after-children-apply");
  return std::nullopt;
}

Outcome ZoneReconciler::ReconcileObject(const api::Zone& zone,
                                        const controller::ReconcileContext& context) {
  ObservedZone observed;
  const std::string& ns = api::TargetNamespace(zone);
  if (const Object live_ns = caches_.Of(kube::resources::kNamespaces).Get(ns)) {
    observed.namespace_ = *live_ns;
  }

  // Guarantees: every zone's, against the schedulable nodes' allocatable.
  if (zone.spec.type == api::ZoneType::kDeployment && zone.spec.guarantees) {
    const std::vector<Object> cached_nodes = caches_.Of(resources::kNodes).List();
    std::vector<json> nodes;
    nodes.reserve(cached_nodes.size());
    for (const Object& node : cached_nodes) nodes.push_back(*node);
    const std::vector<api::Zone> all = ParseZones(primary_);
    std::vector<const api::Zone*> pointers;
    pointers.reserve(all.size());
    for (const auto& z : all) pointers.push_back(&z);
    observed.guarantee = CheckGuarantees(zone, pointers, SumAllocatable(nodes));
  }

  if (observed.namespace_ && NamespaceTaken(zone, *observed.namespace_)) {
    Event(zone, "Warning", "NamespaceTaken",
          "namespace " + ns + " exists and does not belong to this zone; it is not taken over");
  } else if (auto stopped = ApplyZoneChildren(zone, observed, context)) {
    return *stopped;
  }

  if (const Object quota =
          caches_.Of(resources::kResourceQuotas).Get(ns + "/" + std::string(kZoneQuotaName))) {
    observed.resource_quota = *quota;
  }
  if (auto patched = PatchStatusIfChanged(status_writer_, resources::kZones, zone.metadata,
                                          ZoneStatusPatch(zone, observed, NowRfc3339()), written_);
      !patched) {
    return Outcome::ApiError("patching the status", std::move(patched.error()));
  }
  if (observed.apply_error) return Outcome::TerminalError(*observed.apply_error);
  return Outcome::Done();
}

void AddZoneController(controller::Manager& manager, int workers) {
  const controller::CacheOptions managed{.label_selector = ManagedBySelector()};
  controller::ControllerBuilder(manager, "zone")
      .For(resources::kZones)
      .Watches(resources::kZones, GuaranteedZones, {}, controller::GenerationOrMetadataChanged)
      .Watches(resources::kNodes, GuaranteedZones, {.trim = TrimNode})
      .Watches(kube::resources::kNamespaces, ZonesOfNamespace)
      .Owns(resources::kResourceQuotas, managed)
      .Owns(resources::kLimitRanges, managed)
      .Owns(resources::kNetworkPolicies, managed)
      .Owns(resources::kRoleBindings, managed)
      .Owns(resources::kPriorityClasses, managed)
      .Workers(workers)
      .Complete([](controller::ReconcilerDeps deps) {
        return std::make_unique<ZoneReconciler>(std::move(deps));
      });
}

}  // namespace millrace::reconcilers
