#include "reconcilers/zone_reconciler.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controller/failpoint.h"
#include "controller/handlers.h"
#include "crds/errors.h"
#include "crds/meta.h"
#include "reconcilers/apply.h"
#include "reconcilers/object.h"
#include "reconcilers/zone.h"

namespace millrace::reconcilers {
namespace {

using controller::Object;
using controller::Outcome;
using nlohmann::json;

std::string ChildKey(const json& object) { return controller::ObjectKey(object); }

const controller::Informer* InformerFor(const ZoneReconciler::Caches& caches,
                                        std::string_view kind) {
  if (kind == "Namespace") return &caches.namespaces;
  if (kind == "ResourceQuota") return &caches.quotas;
  if (kind == "LimitRange") return &caches.limit_ranges;
  if (kind == "NetworkPolicy") return &caches.network_policies;
  if (kind == "RoleBinding") return &caches.role_bindings;
  if (kind == "PriorityClass") return &caches.priority_classes;
  return nullptr;
}

// Permanent refusals a retry cannot fix: a human must change the spec or the RBAC.
bool IsPermanent(const kube::Error& error) { return error.IsForbidden() || error.IsInvalid(); }

std::vector<api::Zone> ParseZones(const controller::Store& store) {
  std::vector<api::Zone> zones;
  for (const Object& object : store.List()) {
    if (auto zone = api::Zone::FromJson(*object)) zones.push_back(std::move(*zone));
  }
  return zones;
}

}  // namespace

ZoneReconciler::ZoneReconciler(kube::Client& client, Caches caches,
                               controller::MutationCache written, controller::EventRecorder& events)
    : client_(client), caches_(caches), written_(std::move(written)), events_(events) {}

Object ZoneReconciler::Cached(const json& child) const {
  const controller::Informer* informer = InformerFor(caches_, child.value("kind", std::string{}));
  return informer != nullptr ? informer->store().Get(ChildKey(child)) : nullptr;
}

void ZoneReconciler::Event(const api::Zone& zone, std::string_view type, std::string_view reason,
                           std::string note) {
  RecordEvent(events_, api::Zone::kKind, zone.metadata,
              PlannedEvent{std::string(type), std::string(reason), std::move(note)});
}

Outcome ZoneReconciler::Finalize(const api::Zone& zone,
                                 const controller::ReconcileContext& context) {
  const auto& finalizers = zone.metadata.finalizers;
  if (std::find(finalizers.begin(), finalizers.end(), kZoneFinalizer) == finalizers.end()) {
    return Outcome::Done();
  }
  const std::string ns = zone.TargetNamespace();
  const Object live_ns = caches_.namespaces.store().Get(ns);
  const bool ours = live_ns && !NamespaceTaken(zone, *live_ns);
  const auto policy = zone.spec.deletion_policy.value_or(api::DeletionPolicy::kRetain);
  if (ours && policy == api::DeletionPolicy::kDelete) {
    if (!(*live_ns)["metadata"].contains("deletionTimestamp")) {
      auto deleted = client_.Delete(kube::resources::kNamespaces, "", ns,
                                    {.propagation_policy = "Background",
                                     .grace_period_seconds = std::nullopt,
                                     .precondition_uid = (*live_ns)["metadata"].value("uid", ""),
                                     .precondition_resource_version = {},
                                     .dry_run = false});
      if (!deleted && !deleted.error().IsNotFound()) {
        return Outcome::TransientError("deleting namespace " + ns + ": " +
                                       deleted.error().ToString());
      }
      Event(zone, "Normal", "NamespaceDeleted",
            "deletionPolicy Delete: namespace " + ns + " and everything in it is being deleted");
    }
  } else if (ours) {
    if (auto error = RetainNamespace(ns)) return Outcome::TransientError(*error);
    Event(zone, "Normal", "NamespaceRetained",
          "deletionPolicy Retain: namespace " + ns + " is kept and no longer belongs to a zone");
  }
  return RemoveFinalizer(zone.metadata.name, zone.metadata.resource_version, finalizers, context);
}

std::optional<std::string> ZoneReconciler::RetainNamespace(const std::string& ns) {
  // The namespace and its workloads stay, no longer marked as the zone's. The zone's fences
  // (quota, defaults, bindings, policy) carry ownerReferences and are garbage collected.
  json patch = {{"metadata",
                 {{"labels", {{kZoneLabel, nullptr}, {kManagedByLabel, nullptr}}},
                  {"ownerReferences", nullptr}}}};
  auto patched = client_.Patch(kube::resources::kNamespaces, "", ns, patch);
  if (!patched && !patched.error().IsNotFound()) {
    return "releasing namespace " + ns + ": " + patched.error().ToString();
  }
  return std::nullopt;
}

Outcome ZoneReconciler::RemoveFinalizer(const std::string& name,
                                        const std::string& resource_version,
                                        const std::vector<std::string>& finalizers,
                                        const controller::ReconcileContext& context) {
  // With the resourceVersion we read: a concurrent change retries.
  json remaining = json::array();
  for (const auto& f : finalizers) {
    if (f != kZoneFinalizer) remaining.push_back(f);
  }
  json patch = {{"metadata", {{"finalizers", remaining}, {"resourceVersion", resource_version}}}};
  auto patched = client_.Patch(resources::kZones, "", name, patch);
  if (!patched && !patched.error().IsNotFound()) {
    return Outcome::TransientError("removing the finalizer: " + patched.error().ToString());
  }
  context.logger.Info("zone finalized");
  return Outcome::Done();
}

Outcome ZoneReconciler::FinalizeUndecodable(const json& zone,
                                            const controller::ReconcileContext& context) {
  // The schema and the webhook keep a zone from failing to decode; one that does anyway (an older
  // schema, an edit behind the webhook's back) must still be deletable. Without its spec the
  // deletionPolicy is unknown: the safe choice is Retain's, keeping the namespace and everything
  // in it.
  const json meta = zone.value("metadata", json::object());
  const json spec = zone.value("spec", json::object());
  const std::string name = meta.value("name", "");
  const std::string ns =
      spec.is_object() && spec.contains("namespace") && spec["namespace"].is_string()
          ? spec["namespace"].get<std::string>()
          : name;
  if (const Object live_ns = caches_.namespaces.store().Get(ns);
      live_ns && api::IsControlledBy(*live_ns, meta.value("uid", ""))) {
    if (auto error = RetainNamespace(ns)) return Outcome::TransientError(*error);
  }
  std::vector<std::string> finalizers;
  for (const json& f : meta.value("finalizers", json::array())) {
    if (f.is_string()) finalizers.push_back(f.get<std::string>());
  }
  events_.Record(controller::EventSpec{
      .regarding = {.api_version = std::string(api::kApiVersion),
                    .kind = std::string(api::Zone::kKind),
                    .ns = "",
                    .name = name,
                    .uid = meta.value("uid", "")},
      .type = "Warning",
      .reason = "NamespaceRetained",
      .action = "Reconcile",
      .note = "the zone's spec does not decode, so its deletionPolicy is unknown: namespace " + ns +
              " is kept, as Retain would",
  });
  return RemoveFinalizer(name, meta.value("resourceVersion", ""), finalizers, context);
}

Outcome ZoneReconciler::Reconcile(const controller::Request& request,
                                  const controller::ReconcileContext& context) {
  auto cached = DecodeCached<api::Zone>(caches_.zones.store(), written_, request.key);
  if (!cached) {
    const Object raw = written_.Newest(request.key, caches_.zones.store().Get(request.key));
    const json meta = raw ? raw->value("metadata", json::object()) : json::object();
    const json finalizers = meta.value("finalizers", json::array());
    if (raw && meta.contains("deletionTimestamp") &&
        std::find(finalizers.begin(), finalizers.end(), json(kZoneFinalizer)) != finalizers.end()) {
      return FinalizeUndecodable(*raw, context);
    }
    return cached.error();
  }
  if (!*cached) return Outcome::Done();  // deleted; owner references take its children
  const api::Zone& zone = **cached;
  if (zone.metadata.deletion_timestamp) return Finalize(zone, context);

  const auto& finalizers = zone.metadata.finalizers;
  if (std::find(finalizers.begin(), finalizers.end(), kZoneFinalizer) == finalizers.end()) {
    json list = json::array();
    for (const auto& f : finalizers) list.push_back(f);
    list.push_back(kZoneFinalizer);
    json patch = {
        {"metadata", {{"finalizers", list}, {"resourceVersion", zone.metadata.resource_version}}}};
    auto patched = client_.Patch(resources::kZones, "", zone.metadata.name, patch);
    if (!patched) {
      // A Conflict means the cache is behind: back off until the watch catches up instead of
      // patching the same stale resourceVersion again at once.
      return Outcome::TransientError("adding the finalizer: " + patched.error().ToString());
    }
    // Until the watch brings it back, reconciles read the zone with its finalizer from here.
    written_.Written(zone.metadata.resource_version, std::move(*patched));
    return Outcome::Done();  // the update brings us back with the new resourceVersion
  }

  ObservedZone observed;
  const std::string ns = zone.TargetNamespace();
  if (const Object live_ns = caches_.namespaces.store().Get(ns)) observed.namespace_ = *live_ns;

  // Guarantees: every zone's, against the schedulable nodes' allocatable.
  if (zone.spec.type == api::ZoneType::kDeployment && zone.spec.guarantees) {
    std::vector<json> nodes;
    for (const Object& node : caches_.nodes.store().List()) nodes.push_back(*node);
    const std::vector<api::Zone> all = ParseZones(caches_.zones.store());
    std::vector<const api::Zone*> pointers;
    for (const auto& z : all) pointers.push_back(&z);
    observed.guarantee = CheckGuarantees(zone, pointers, SumAllocatable(nodes));
  }

  const bool taken = observed.namespace_ && NamespaceTaken(zone, *observed.namespace_);
  bool wrote = false;
  if (!taken) {
    const ZoneChildren desired = DesiredZoneChildren(zone);
    for (const json& child : desired.All()) {
      const kube::ResourceRef* ref =
          ResourceFor(child.value("apiVersion", ""), child.value("kind", ""));
      if (ref == nullptr) continue;
      auto applied = ApplyIfChanged(client_, *ref, child, Cached(child));
      if (!applied) {
        const std::string what =
            child["kind"].get<std::string>() + " " + child["metadata"]["name"].get<std::string>();
        if (!IsPermanent(applied.error())) {
          return Outcome::TransientError("applying " + what + ": " + applied.error().ToString());
        }
        observed.apply_error = "applying " + what + ": " + applied.error().message;
        Event(zone, "Warning", "ApplyRefused", *observed.apply_error);
        break;
      }
      wrote = wrote || *applied;
    }
    for (const ChildRef& stale : StaleZoneChildren(zone)) {
      const kube::ResourceRef* ref = ResourceFor(stale.api_version, stale.kind);
      const controller::Informer* informer = InformerFor(caches_, stale.kind);
      if (ref == nullptr || informer == nullptr) continue;
      const Object live = informer->store().Get(
          stale.namespace_.empty() ? stale.name : stale.namespace_ + "/" + stale.name);
      if (!live || !api::IsControlledBy(*live, zone.metadata.uid)) continue;
      auto deleted = client_.Delete(*ref, stale.namespace_, stale.name);
      if (!deleted && !deleted.error().IsNotFound()) {
        return Outcome::TransientError("deleting " + stale.kind + " " + stale.name + ": " +
                                       deleted.error().ToString());
      }
      wrote = true;
    }
    if (wrote) context.logger.Info("children applied");
    MILLRACE_FAILPOINT("zone.after-children-apply");
  } else {
    Event(zone, "Warning", "NamespaceTaken",
          "namespace " + ns + " exists and does not belong to this zone; it is not taken over");
  }

  const Object quota = caches_.quotas.store().Get(ns + "/" + std::string(kZoneQuotaName));
  if (quota) observed.resource_quota = *quota;
  if (auto error = PatchStatusIfChanged(client_, resources::kZones, zone.metadata,
                                        ZoneStatusPatch(zone, observed, NowRfc3339()), written_)) {
    return Outcome::TransientError(*error);
  }
  if (observed.apply_error) return Outcome::TerminalError(*observed.apply_error);
  return Outcome::Done();
}

void AddZoneController(controller::Manager& manager, int workers) {
  using controller::InformerOptions;
  const std::string managed = ManagedBySelector();
  auto informer = [&](const kube::ResourceRef& ref, std::string selector) -> controller::Informer& {
    return AddInformer(manager, ref, std::move(selector));
  };
  // Nodes carry long image lists and conditions; keep what guarantees read.
  InformerOptions node_options;
  node_options.resource = resources::kNodes;
  node_options.store.trim = [](json& node) {
    json allocatable = node["status"].value("allocatable", json::object());
    const bool unschedulable = node["spec"].value("unschedulable", false);
    node["status"] = {{"allocatable", std::move(allocatable)}};
    node["spec"] = {{"unschedulable", unschedulable}};
  };
  controller::Informer& zones = informer(resources::kZones, "");
  controller::Informer& namespaces = informer(kube::resources::kNamespaces, "");
  controller::Informer& nodes = manager.AddInformer(std::move(node_options));
  std::vector<controller::Informer*> children = {
      &informer(resources::kResourceQuotas, managed),  &informer(resources::kLimitRanges, managed),
      &informer(resources::kNetworkPolicies, managed), &informer(resources::kRoleBindings, managed),
      &informer(resources::kPriorityClasses, managed),
  };
  const ZoneReconciler::Caches caches{
      .zones = zones,
      .namespaces = namespaces,
      .quotas = *children[0],
      .limit_ranges = *children[1],
      .network_policies = *children[2],
      .role_bindings = *children[3],
      .priority_classes = *children[4],
      .nodes = nodes,
  };
  controller::Controller& zc =
      manager.AddController({.name = "zone",
                             .workers = workers,
                             .rate_limits = {},
                             .clock = nullptr,
                             .metrics = nullptr,
                             .logger = {}},
                            std::make_unique<ZoneReconciler>(
                                manager.client(), caches, WrittenCache(zones), manager.events()));
  controller::WorkQueue& queue = zc.queue();

  // Zones with guarantees compete for the same capacity: a change to one re-checks them all.
  auto guaranteed_zones = [&zones](const json&) {
    std::vector<std::string> keys;
    for (const Object& z : zones.store().List()) {
      const auto& spec = (*z)["spec"];
      if (spec.is_object() && spec.contains("guarantees")) {
        keys.push_back((*z)["metadata"]["name"]);
      }
    }
    return keys;
  };
  zones.AddHandler(controller::EnqueueObject(queue, controller::GenerationOrMetadataChanged));
  zones.AddHandler(
      controller::EnqueueMapped(queue, guaranteed_zones, controller::GenerationOrMetadataChanged));
  nodes.AddHandler(controller::EnqueueMapped(queue, guaranteed_zones));

  // A namespace maps to the zones that want it (owned or not: a taken namespace going away
  // unblocks its zone).
  namespaces.AddHandler(controller::EnqueueMapped(queue, [&zones](const json& ns) {
    std::vector<std::string> keys;
    const std::string name = ns["metadata"].value("name", "");
    for (const Object& z : zones.store().List()) {
      const auto& spec = (*z)["spec"];
      const std::string target = spec.is_object() && spec.contains("namespace")
                                     ? spec["namespace"].get<std::string>()
                                     : (*z)["metadata"]["name"].get<std::string>();
      if (target == name) keys.push_back((*z)["metadata"]["name"]);
    }
    return keys;
  }));
  const controller::OwnerMatch owner{
      .group = "millrace.io", .kind = "Zone", .owner_namespaced = false};
  for (controller::Informer* child : children) {
    child->AddHandler(controller::EnqueueOwner(queue, owner));
  }
}

}  // namespace millrace::reconcilers
