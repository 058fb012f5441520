#pragma once

// The pure part of the Zone reconciler: the children a Zone should have, the ones it should no
// longer have, whether its guarantee fits the cluster, and its status. No I/O, no clock, no
// threads; the reconciler reads the cache, calls these, and applies the results.
//
// Choices made where docs/api/zone.md is silent (what a demanding cluster admin expects):
// - Order of apply (ZoneChildren::All): Namespace, PriorityClass, LimitRange, ResourceQuota,
//   NetworkPolicy, RoleBindings. Defaults exist before the quota that needs them, and the fences
//   (quota, isolation) exist before anybody is given access.
// - Namespace ownership is the label millrace.io/zone=ZoneLabelValue(zone). The Namespace carries
//   an ownerReference to the Zone only with deletionPolicy Delete: with Retain (the default) the
//   garbage collector must never be able to delete the namespace, even if the finalizer is removed
//   by hand. Switching Delete -> Retain drops the reference on the next server-side apply.
// - Pod Security admission: Development zones enforce `baseline`; Deployment zones enforce
//   `baseline` and warn and audit at `restricted`, so production work sees what to fix.
// - ResourceQuota: gpu maps to `requests.nvidia.com/gpu` only. Kubernetes allows only the
//   `requests.` prefix for extended resources, and their requests must equal their limits, so
//   that one entry caps both. Object counts use the names in docs/api/zone.md.
// - LimitRange: a quota on cpu or memory makes the API server reject containers that do not name
//   requests and limits for it. So whenever spec.limits caps cpu (memory), the LimitRange gets a
//   default limit and, when needed, a default request for it, even if spec.defaults does not
//   say: default limit = max(1 CPU / 512Mi, the default request), default request = 100m / 128Mi,
//   each clamped to the zone's limit. A default limit the user gave without a default request is
//   passed through as is (Kubernetes then requests the limit). A gpu default is put in both
//   default and defaultRequest (the limit's value if given), since the two must be equal.
// - NetworkPolicy `zone-isolation` admits ingress from pods in the zone's own namespace only
//   (`from: [{podSelector: {}}]`), not from namespaces carrying the zone label: a label can be put
//   on any namespace by whoever may patch namespaces, the namespace of the policy cannot be faked.
//   policyTypes is [Ingress], so egress (DNS included) is not restricted.
// - PriorityClass (Deployment zones): value 100000, PreemptLowerPriority, never globalDefault.
// - Label values are at most 63 characters: a longer zone name (legal with spec.namespace) is
//   shortened to 54 characters plus a hash (ZoneLabelValue); likewise the PriorityClass name.
// - Guarantees are checked greedily in (creationTimestamp, name) order: a zone fits when its
//   guarantee fits what the earlier zones that fit left over. A zone that does not fit reserves
//   nothing, so one oversized zone does not push every later zone out. Only nodes with
//   spec.unschedulable set are skipped; taints are not considered.
// - Phase: Terminating when deleted; Failed when the namespace is taken or an apply was refused
//   (ObservedZone::apply_error); Pending until the namespace exists (and is not being deleted) and
//   the quota controller enforces the quota; else Active. A guarantee that does not fit leaves the
//   zone Active (its namespace works) but not Ready.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "crds/zone.h"
#include "reconcilers/names.h"

namespace millrace::reconcilers {

inline constexpr std::string_view kZoneLabel = "millrace.io/zone";

inline constexpr std::string_view kZoneQuotaName = "zone-quota";
inline constexpr std::string_view kZoneLimitRangeName = "zone-defaults";
inline constexpr std::string_view kZoneNetworkPolicyName = "zone-isolation";
inline constexpr std::string_view kZoneEgressPolicyName = "zone-egress";
inline constexpr std::string_view kZoneOwnerBindingName = "zone-owner";
inline constexpr int32_t kZonePriorityValue = 100000;

// The value of the millrace.io/zone label for this zone: its name, or, if longer than a label
// value may be (63), its first 54 characters, '-' and 8 hex digits of a hash of the whole name.
std::string ZoneLabelValue(const api::Zone& zone);
// "millrace-zone-<name>" (shortened with a hash beyond 253 characters).
std::string ZonePriorityClassName(const api::Zone& zone);
// "zone-admin", "zone-edit" or "zone-view".
std::string ZoneRoleBindingName(api::MemberRole role);

// The objects a zone should have, ready for server-side apply. Each has apiVersion, kind,
// metadata (name, namespace when namespaced, labels, ownerReferences) and its spec.
struct ZoneChildren {
  nlohmann::json namespace_;
  std::optional<nlohmann::json> priority_class;  // Deployment zones
  std::optional<nlohmann::json> limit_range;     // spec.defaults, or spec.limits on cpu/memory
  std::optional<nlohmann::json> resource_quota;  // spec.limits
  std::optional<nlohmann::json> network_policy;  // spec.networkIsolation (default true)
  std::optional<nlohmann::json> egress_policy;   // spec.egressIsolation (default false)
  // zone-owner, then zone-admin, zone-edit, zone-view; only those with subjects.
  std::vector<nlohmann::json> role_bindings;

  // Every object, in the order to apply them (see the top of this file).
  std::vector<nlohmann::json> All() const;
};

// Precondition: zone.metadata.uid is set (a zone read from the API server). The caller must not
// apply anything while the namespace exists and NamespaceTaken() says it is someone else's.
ZoneChildren DesiredZoneChildren(const api::Zone& zone);

// Identifies an object: apiVersion, kind, namespace ("" for cluster-scoped) and name.
// The children this operator could have made for the zone under another spec that the current
// spec does not want (a RoleBinding of a role with no members left, the NetworkPolicy after
// isolation was turned off, ...), in apply order. The Namespace is never listed. Delete one only
// if it exists and api::IsControlledBy(object, zone uid): a same-named object made by someone
// else is not ours to delete.
std::vector<ChildRef> StaleZoneChildren(const api::Zone& zone);

// True when `ns` (a Namespace) does not carry millrace.io/zone=ZoneLabelValue(zone): it exists
// and belongs to no zone or to another zone, and is never taken over.
bool NamespaceTaken(const api::Zone& zone, const nlohmann::json& ns);

// ---- guarantees ---------------------------------------------------------------------------------

struct ComputeTotals {
  int64_t cpu_milli = 0;
  int64_t memory_bytes = 0;
  int64_t gpu = 0;  // whole nvidia.com/gpu

  bool operator==(const ComputeTotals&) const = default;
};

// The sum of status.allocatable (cpu, memory, nvidia.com/gpu) over Nodes (as JSON) whose
// spec.unschedulable is not true. Unparseable or missing amounts count as 0.
ComputeTotals SumAllocatable(const std::vector<nlohmann::json>& nodes);

struct GuaranteeFit {
  bool fits = true;
  std::string message;  // for the GuaranteeSatisfied condition

  bool operator==(const GuaranteeFit&) const = default;
};

// Whether `zone`'s guarantee fits `cluster_allocatable` given every zone's (`all_zones` may or may
// not contain `zone`; a zone of the same name there is replaced by `zone`). Only Deployment zones
// with guarantees that are not being deleted count. Zones are considered in (creationTimestamp,
// name) order, zones not yet created last; a zone fits if its guarantee fits what the earlier
// fitting zones left. A zone without guarantees, or being deleted, always fits.
GuaranteeFit CheckGuarantees(const api::Zone& zone, const std::vector<const api::Zone*>& all_zones,
                             const ComputeTotals& cluster_allocatable);

// ---- status -------------------------------------------------------------------------------------

// What the reconciler saw, for the status.
struct ObservedZone {
  std::optional<nlohmann::json> namespace_;      // the Namespace, if it exists
  std::optional<nlohmann::json> resource_quota;  // ResourceQuota zone-quota, if it exists
  std::optional<GuaranteeFit> guarantee;         // CheckGuarantees(), if it could be computed
  // An apply the API server refused for good (403, 422: a human must act), with its message
  // verbatim. Transient failures are the queue's to retry and are not reported here.
  std::optional<std::string> apply_error;
};

// The condition types, in the order status.conditions lists them.
inline constexpr std::string_view kConditionReady = "Ready";
inline constexpr std::string_view kConditionNamespaceOwned = "NamespaceOwned";
inline constexpr std::string_view kConditionQuotaApplied = "QuotaApplied";
inline constexpr std::string_view kConditionGuaranteeSatisfied = "GuaranteeSatisfied";

// The zone's status: phase, namespace, hard and used (from the quota's status), observedGeneration
// and conditions (Ready, NamespaceOwned, QuotaApplied, and GuaranteeSatisfied for Deployment zones
// with guarantees). A condition whose status did not change keeps its lastTransitionTime from
// zone.status; a changed one gets `now`.
api::ZoneStatus ComputeZoneStatus(const api::Zone& zone, const ObservedZone& observed,
                                  api::Time now);

// A JSON merge patch for the status subresource, {"status": {...}}, with the whole new status and
// null for fields and hard/used keys to remove; or null when the status would not change, so a
// reconcile that changes nothing writes nothing. `now` is RFC 3339; throws std::invalid_argument
// if it is not.
nlohmann::json ZoneStatusPatch(const api::Zone& zone, const ObservedZone& observed,
                               std::string_view now);

}  // namespace millrace::reconcilers
