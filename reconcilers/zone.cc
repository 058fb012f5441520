#include "reconcilers/zone.h"

#include <algorithm>
#include <array>
#include <limits>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "crds/meta.h"
#include "reconcilers/names.h"

namespace millrace::reconcilers {
namespace {

using api::Json;
using api::Quantity;

constexpr std::string_view kRbacGroup = "rbac.authorization.k8s.io";
constexpr std::string_view kRbacApiVersion = "rbac.authorization.k8s.io/v1";
constexpr std::string_view kNetworkingApiVersion = "networking.k8s.io/v1";
constexpr std::string_view kSchedulingApiVersion = "scheduling.k8s.io/v1";
constexpr std::string_view kGpuResource = "nvidia.com/gpu";

constexpr std::string_view kPsaEnforce = "pod-security.kubernetes.io/enforce";
constexpr std::string_view kPsaWarn = "pod-security.kubernetes.io/warn";
constexpr std::string_view kPsaAudit = "pod-security.kubernetes.io/audit";

// LimitRange values used when the quota caps cpu or memory and spec.defaults does not say.
constexpr int64_t kFallbackRequestCpuMilli = 100;                    // 100m
constexpr int64_t kFallbackLimitCpuMilli = 1000;                     // 1
constexpr int64_t kFallbackRequestMemoryBytes = int64_t{128} << 20;  // 128Mi
constexpr int64_t kFallbackLimitMemoryBytes = int64_t{512} << 20;    // 512Mi

constexpr std::array<api::MemberRole, 3> kRoles{api::MemberRole::kAdmin, api::MemberRole::kEdit,
                                                api::MemberRole::kView};

// ---- object skeletons ---------------------------------------------------------------------------

Json Labels(const api::Zone& zone) {
  return Json{{kZoneLabel, ZoneLabelValue(zone)}, {kManagedByLabel, kManagedByValue}};
}

Json OwnerRefs(const api::Zone& zone) {
  return Json::array({api::ControllerReference(api::kApiVersion, api::Zone::kKind,
                                               zone.metadata.name, zone.metadata.uid)});
}

Json Object(std::string_view api_version, std::string_view kind, const std::string& ns,
            const std::string& name, const api::Zone& zone) {
  Json meta{{"name", name}};
  if (!ns.empty()) meta["namespace"] = ns;
  meta["labels"] = Labels(zone);
  meta["ownerReferences"] = OwnerRefs(zone);
  return Json{{"apiVersion", api_version}, {"kind", kind}, {"metadata", std::move(meta)}};
}

ChildRef RefOf(const Json& object) {
  const auto& meta = object.at("metadata");
  return {object.at("apiVersion").get<std::string>(), object.at("kind").get<std::string>(),
          meta.value("namespace", std::string()), meta.at("name").get<std::string>()};
}

// ---- children -----------------------------------------------------------------------------------

Json NamespaceObject(const api::Zone& zone) {
  Json ns = Object("v1", "Namespace", "", api::TargetNamespace(zone), zone);
  auto& labels = ns["metadata"]["labels"];
  labels[kPsaEnforce] = "baseline";
  if (zone.spec.type == api::ZoneType::kDeployment) {
    labels[kPsaWarn] = "restricted";
    labels[kPsaAudit] = "restricted";
  }
  if (zone.spec.deletion_policy.value_or(api::DeletionPolicy::kRetain) !=
      api::DeletionPolicy::kDelete) {
    ns["metadata"].erase("ownerReferences");
  }
  return ns;
}

std::optional<Json> PriorityClassObject(const api::Zone& zone) {
  if (zone.spec.type != api::ZoneType::kDeployment) return std::nullopt;
  Json pc = Object(kSchedulingApiVersion, "PriorityClass", "", ZonePriorityClassName(zone), zone);
  pc["value"] = kZonePriorityValue;
  pc["globalDefault"] = false;
  pc["preemptionPolicy"] = "PreemptLowerPriority";
  pc["description"] = "Task pods of the Millrace Deployment zone " + zone.metadata.name +
                      " (namespace " + api::TargetNamespace(zone) +
                      "), scheduled before pods without a priority class.";
  return pc;
}

std::optional<Json> ResourceQuotaObject(const api::Zone& zone) {
  if (!zone.spec.limits) return std::nullopt;
  const auto& l = *zone.spec.limits;
  Json hard = Json::object();
  const auto quantity = [&](const std::optional<Quantity>& q,
                            std::initializer_list<std::string_view> names) {
    if (!q) return;
    for (const auto name : names) hard[std::string(name)] = q->text();
  };
  const auto count = [&](const std::optional<int32_t>& n, std::string_view name) {
    if (n) hard[std::string(name)] = std::to_string(*n);
  };
  quantity(l.cpu, {"requests.cpu", "limits.cpu"});
  quantity(l.memory, {"requests.memory", "limits.memory"});
  quantity(l.gpu, {"requests.nvidia.com/gpu"});
  quantity(l.ephemeral_storage, {"requests.ephemeral-storage"});
  quantity(l.storage, {"requests.storage"});
  count(l.persistent_volume_claims, "persistentvolumeclaims");
  count(l.pods, "pods");
  count(l.services, "services");
  count(l.config_maps, "configmaps");
  count(l.secrets, "secrets");
  count(l.jobs, "count/jobs.batch");
  count(l.deployments, "count/deployments.apps");
  count(l.tasks, "count/tasks.millrace.io");
  count(l.pipelines, "count/pipelines.millrace.io");
  Json rq =
      Object("v1", "ResourceQuota", api::TargetNamespace(zone), std::string(kZoneQuotaName), zone);
  rq["spec"] = Json{{"hard", std::move(hard)}};
  return rq;
}

// The default request and limit of one resource (see the top of zone.h).
struct DefaultPair {
  std::optional<Quantity> request;
  std::optional<Quantity> limit;
};

DefaultPair CappedDefaults(const std::optional<Quantity>& request,
                           const std::optional<Quantity>& limit,
                           const std::optional<Quantity>& zone_limit,
                           int64_t fallback_request_milli, int64_t fallback_limit_milli) {
  DefaultPair out{request, limit};
  if (!zone_limit) return out;
  if (!out.limit) {
    Quantity l = Quantity::FromMilli(fallback_limit_milli);
    if (request) l = std::max(l, *request);
    out.limit = std::min(l, *zone_limit);
    if (!request) {
      out.request = std::min(Quantity::FromMilli(fallback_request_milli), *out.limit);
    }
  }
  return out;
}

std::optional<Json> LimitRangeObject(const api::Zone& zone) {
  const auto& s = zone.spec;
  const api::ComputeResources none;
  const auto& rq = s.defaults && s.defaults->requests ? *s.defaults->requests : none;
  const auto& lm = s.defaults && s.defaults->limits ? *s.defaults->limits : none;
  const std::optional<Quantity> no_limit;
  const auto& zone_cpu = s.limits ? s.limits->cpu : no_limit;
  const auto& zone_memory = s.limits ? s.limits->memory : no_limit;

  const DefaultPair cpu =
      CappedDefaults(rq.cpu, lm.cpu, zone_cpu, kFallbackRequestCpuMilli, kFallbackLimitCpuMilli);
  const DefaultPair memory =
      CappedDefaults(rq.memory, lm.memory, zone_memory, kFallbackRequestMemoryBytes * 1000,
                     kFallbackLimitMemoryBytes * 1000);
  const std::optional<Quantity> gpu = lm.gpu ? lm.gpu : rq.gpu;

  Json default_request = Json::object();
  Json default_limit = Json::object();
  const auto put = [](Json& into, std::string_view name, const std::optional<Quantity>& q) {
    if (q) into[std::string(name)] = q->text();
  };
  put(default_request, "cpu", cpu.request);
  put(default_request, "memory", memory.request);
  put(default_request, kGpuResource, gpu);
  put(default_limit, "cpu", cpu.limit);
  put(default_limit, "memory", memory.limit);
  put(default_limit, kGpuResource, gpu);
  if (default_request.empty() && default_limit.empty()) return std::nullopt;

  Json item{{"type", "Container"}};
  if (!default_limit.empty()) item["default"] = std::move(default_limit);
  if (!default_request.empty()) item["defaultRequest"] = std::move(default_request);
  Json lr = Object("v1", "LimitRange", api::TargetNamespace(zone), std::string(kZoneLimitRangeName),
                   zone);
  lr["spec"] = Json{{"limits", Json::array({std::move(item)})}};
  return lr;
}

// A NetworkPolicy of the zone's namespace that selects all its pods, with one policy type
// (Ingress or Egress) and its rules (`key`: ingress or egress).
Json IsolationPolicy(const api::Zone& zone, std::string_view name, std::string_view type,
                     std::string_view key, Json rules) {
  Json np = Object(kNetworkingApiVersion, "NetworkPolicy", api::TargetNamespace(zone),
                   std::string(name), zone);
  np["spec"] = Json{{"podSelector", Json::object()}, {"policyTypes", Json::array({type})}};
  np["spec"][std::string(key)] = std::move(rules);
  return np;
}

std::optional<Json> NetworkPolicyObject(const api::Zone& zone) {
  if (!zone.spec.network_isolation.value_or(true)) return std::nullopt;
  return IsolationPolicy(
      zone, kZoneNetworkPolicyName, "Ingress", "ingress",
      Json::array({Json{{"from", Json::array({Json{{"podSelector", Json::object()}}})}}}));
}

// Egress only to the namespace's own pods and to DNS on any address (a cluster's resolver may be
// CoreDNS in kube-system or a node-local cache, under labels no policy can know).
std::optional<Json> EgressPolicyObject(const api::Zone& zone) {
  if (!zone.spec.egress_isolation.value_or(false)) return std::nullopt;
  return IsolationPolicy(
      zone, kZoneEgressPolicyName, "Egress", "egress",
      Json::array({Json{{"to", Json::array({Json{{"podSelector", Json::object()}}})}},
                   Json{{"ports", Json::array({Json{{"port", 53}, {"protocol", "UDP"}},
                                               Json{{"port", 53}, {"protocol", "TCP"}}})}}}));
}

Json RbacSubject(std::optional<api::SubjectKind> kind, const std::string& name) {
  return Json{{"kind", api::ToString(kind.value_or(api::SubjectKind::kUser))},
              {"apiGroup", kRbacGroup},
              {"name", name}};
}

Json RoleBindingObject(const api::Zone& zone, const std::string& name, api::MemberRole role,
                       Json subjects) {
  Json rb = Object(kRbacApiVersion, "RoleBinding", api::TargetNamespace(zone), name, zone);
  rb["roleRef"] =
      Json{{"apiGroup", kRbacGroup}, {"kind", "ClusterRole"}, {"name", api::ToString(role)}};
  rb["subjects"] = std::move(subjects);
  return rb;
}

std::vector<Json> RoleBindingObjects(const api::Zone& zone) {
  std::vector<Json> out;
  if (zone.spec.owner) {
    out.push_back(RoleBindingObject(
        zone, std::string(kZoneOwnerBindingName), api::MemberRole::kAdmin,
        Json::array({RbacSubject(zone.spec.owner->kind, zone.spec.owner->name)})));
  }
  for (const auto role : kRoles) {
    Json subjects = Json::array();
    for (const auto& m : zone.spec.members) {
      if (m.role.value_or(api::MemberRole::kView) == role) {
        subjects.push_back(RbacSubject(m.kind, m.name));
      }
    }
    if (!subjects.empty()) {
      out.push_back(RoleBindingObject(zone, ZoneRoleBindingName(role), role, std::move(subjects)));
    }
  }
  return out;
}

// Every child ref the operator could ever make for the zone, in apply order (Namespace excluded).
std::vector<ChildRef> PossibleChildren(const api::Zone& zone) {
  const std::string& ns = api::TargetNamespace(zone);
  std::vector<ChildRef> out{
      {std::string(kSchedulingApiVersion), "PriorityClass", "", ZonePriorityClassName(zone)},
      {"v1", "LimitRange", ns, std::string(kZoneLimitRangeName)},
      {"v1", "ResourceQuota", ns, std::string(kZoneQuotaName)},
      {std::string(kNetworkingApiVersion), "NetworkPolicy", ns,
       std::string(kZoneNetworkPolicyName)},
      {std::string(kNetworkingApiVersion), "NetworkPolicy", ns, std::string(kZoneEgressPolicyName)},
      {std::string(kRbacApiVersion), "RoleBinding", ns, std::string(kZoneOwnerBindingName)},
  };
  for (const auto role : kRoles) {
    out.push_back({std::string(kRbacApiVersion), "RoleBinding", ns, ZoneRoleBindingName(role)});
  }
  return out;
}

// ---- guarantees ---------------------------------------------------------------------------------

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) {
    return a < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  return r;
}

std::optional<Quantity> ParseQuantityJson(const Json& j) {
  if (j.is_string()) {
    auto q = Quantity::Parse(j.get<std::string>());
    if (q) return *q;
  } else if (j.is_number_integer()) {
    auto q = Quantity::Parse(j.dump());
    if (q) return *q;
  }
  return std::nullopt;
}

// The zone's guarantees as totals (negative amounts count as 0).
ComputeTotals GuaranteeTotals(const api::Zone& zone) {
  ComputeTotals t;
  if (!zone.spec.guarantees) return t;
  const auto& g = *zone.spec.guarantees;
  if (g.cpu) t.cpu_milli = std::max<int64_t>(0, g.cpu->milli());
  if (g.memory) t.memory_bytes = std::max<int64_t>(0, g.memory->units());
  if (g.gpu) t.gpu = std::max<int64_t>(0, g.gpu->units());
  return t;
}

bool Guarantees(const api::Zone& zone) {
  return zone.spec.type == api::ZoneType::kDeployment && zone.spec.guarantees &&
         !zone.metadata.deletion_timestamp && GuaranteeTotals(zone) != ComputeTotals{};
}

struct Resource {
  std::string_view name;
  int64_t ComputeTotals::*field;
  std::string (*format)(int64_t);
};

std::string FormatCpu(int64_t milli) { return Quantity::FromMilli(milli).Canonical(); }
std::string FormatMemory(int64_t bytes) { return Quantity::FromUnits(bytes).Canonical(); }
std::string FormatCount(int64_t n) { return std::to_string(n); }

constexpr std::array<Resource, 3> kResources{{
    {"cpu", &ComputeTotals::cpu_milli, &FormatCpu},
    {"memory", &ComputeTotals::memory_bytes, &FormatMemory},
    {"gpu", &ComputeTotals::gpu, &FormatCount},
}};

std::string Totals(const ComputeTotals& t, bool skip_zero) {
  std::string out;
  for (const auto& r : kResources) {
    if (skip_zero && t.*r.field == 0) continue;
    if (!out.empty()) out += ", ";
    out += std::string(r.name) + " " + r.format(t.*r.field);
  }
  return out;
}

// ---- status -------------------------------------------------------------------------------------

const Json* Find(const Json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::map<std::string, Quantity> QuantityMap(const Json* j) {
  std::map<std::string, Quantity> out;
  if (j == nullptr || !j->is_object()) return out;
  for (const auto& [k, v] : j->items()) {
    if (auto q = ParseQuantityJson(v)) out[k] = *q;
  }
  return out;
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

api::Condition MakeCondition(std::string_view type, api::ConditionStatus status, std::string reason,
                             std::string message) {
  api::Condition c;
  c.type = std::string(type);
  c.status = status;
  c.reason = std::move(reason);
  c.message = std::move(message);
  return c;
}

// NamespaceOwned, and whether the namespace is usable (exists, ours, not being deleted).
api::Condition NamespaceCondition(const api::Zone& zone, const ObservedZone& observed) {
  using enum api::ConditionStatus;
  const std::string& ns = api::TargetNamespace(zone);
  if (!observed.namespace_) {
    return MakeCondition(kConditionNamespaceOwned, kUnknown, "NamespaceNotFound",
                         "namespace " + Quote(ns) + " does not exist yet");
  }
  if (NamespaceTaken(zone, *observed.namespace_)) {
    const Json* labels = Find(*observed.namespace_, "metadata");
    labels = labels != nullptr ? Find(*labels, "labels") : nullptr;
    const Json* other = labels != nullptr ? Find(*labels, kZoneLabel) : nullptr;
    const std::string label = std::string(kZoneLabel) + "=" + ZoneLabelValue(zone);
    std::string message = "namespace " + Quote(ns) + " already exists and ";
    if (other != nullptr && other->is_string()) {
      message += "belongs to zone " + Quote(other->get<std::string>()) + " (label " +
                 std::string(kZoneLabel) + "); set spec.namespace to another namespace";
    } else {
      message +=
          "belongs to no zone; it is never taken over: set spec.namespace to another "
          "namespace, or, to hand this one to the zone with everything in it, label it " +
          label;
    }
    return MakeCondition(kConditionNamespaceOwned, kFalse, "NamespaceTaken", std::move(message));
  }
  return MakeCondition(kConditionNamespaceOwned, kTrue, "NamespaceOwned",
                       "namespace " + Quote(ns) + " is labelled " + std::string(kZoneLabel) + "=" +
                           ZoneLabelValue(zone));
}

bool NamespaceTerminating(const Json& ns) {
  const Json* meta = Find(ns, "metadata");
  if (meta != nullptr && Find(*meta, "deletionTimestamp") != nullptr &&
      !Find(*meta, "deletionTimestamp")->is_null()) {
    return true;
  }
  const Json* status = Find(ns, "status");
  const Json* phase = status != nullptr ? Find(*status, "phase") : nullptr;
  return phase != nullptr && phase->is_string() && phase->get<std::string>() == "Terminating";
}

api::Condition QuotaCondition(const api::Zone& zone, const ObservedZone& observed,
                              const ZoneChildren& desired) {
  using enum api::ConditionStatus;
  if (!desired.resource_quota) {
    return MakeCondition(kConditionQuotaApplied, kTrue, "NoLimits",
                         "spec.limits is not set: no ResourceQuota, the zone's pods may use the "
                         "whole cluster");
  }
  const std::string what = "ResourceQuota " + std::string(kZoneQuotaName) + " in namespace " +
                           Quote(api::TargetNamespace(zone));
  if (!observed.resource_quota) {
    return MakeCondition(kConditionQuotaApplied, kFalse, "QuotaPending",
                         what + " does not exist yet");
  }
  const auto want = QuantityMap(&desired.resource_quota->at("spec").at("hard"));
  const Json* status = Find(*observed.resource_quota, "status");
  const auto have = QuantityMap(status != nullptr ? Find(*status, "hard") : nullptr);
  std::string differs;
  for (const auto& [name, q] : want) {
    const auto it = have.find(name);
    if (it == have.end() || it->second != q) differs += (differs.empty() ? "" : ", ") + name;
  }
  for (const auto& [name, q] : have) {
    if (!want.contains(name)) differs += (differs.empty() ? "" : ", ") + name;
  }
  if (!differs.empty()) {
    return MakeCondition(kConditionQuotaApplied, kFalse, "QuotaPending",
                         what + " is not enforced as specified yet (status.hard differs on " +
                             differs + "); the quota controller updates it");
  }
  // The API server refuses to create what a quota limits but has no usage for ("status unknown
  // for quota"): a kind installed after the quota was made (Millrace's own, right after an
  // install) is counted only at the quota controller's next full recount.
  const auto used = QuantityMap(status != nullptr ? Find(*status, "used") : nullptr);
  std::string uncounted;
  for (const auto& [name, q] : want) {
    if (!used.contains(name)) uncounted += (uncounted.empty() ? "" : ", ") + name;
  }
  if (!uncounted.empty()) {
    return MakeCondition(
        kConditionQuotaApplied, kFalse, "QuotaUsageUnknown",
        what + " has no usage for " + uncounted +
            " yet, and until it has, the API server refuses to create what they count; the quota "
            "controller counts a kind installed after the quota was made at its next full "
            "recount (kube-controller-manager --resource-quota-sync-period, 5m by default)");
  }
  return MakeCondition(kConditionQuotaApplied, kTrue, "QuotaEnforced", what + " is enforced");
}

std::optional<api::Condition> GuaranteeCondition(const api::Zone& zone,
                                                 const ObservedZone& observed) {
  using enum api::ConditionStatus;
  if (zone.spec.type != api::ZoneType::kDeployment || !zone.spec.guarantees) return std::nullopt;
  if (!observed.guarantee) {
    return MakeCondition(kConditionGuaranteeSatisfied, kUnknown, "NotChecked",
                         "the cluster's capacity is not known yet");
  }
  if (observed.guarantee->fits) {
    return MakeCondition(kConditionGuaranteeSatisfied, kTrue, "GuaranteeFits",
                         observed.guarantee->message);
  }
  return MakeCondition(kConditionGuaranteeSatisfied, kFalse, "InsufficientCapacity",
                       observed.guarantee->message);
}

constexpr std::array<std::string_view, 4> kConditionOrder{kConditionReady, kConditionNamespaceOwned,
                                                          kConditionQuotaApplied,
                                                          kConditionGuaranteeSatisfied};

// The position of `type` in kConditionOrder, or kConditionOrder.size() if it is not ours.
size_t ConditionOrder(std::string_view type) {
  return static_cast<size_t>(std::ranges::find(kConditionOrder, type) - kConditionOrder.begin());
}

Json StatusJson(const api::ZoneStatus& status) {
  api::Zone z;
  z.status = status;
  Json j = z.ToJson();
  return j.contains("status") ? j["status"] : Json::object();
}

}  // namespace

// ---- names --------------------------------------------------------------------------------------

std::string ZoneLabelValue(const api::Zone& zone) { return Shorten(zone.metadata.name, 63); }

std::string ZonePriorityClassName(const api::Zone& zone) {
  return Shorten("millrace-zone-" + zone.metadata.name, 253);
}

std::string ZoneRoleBindingName(api::MemberRole role) {
  return "zone-" + std::string(api::ToString(role));
}

// ---- children -----------------------------------------------------------------------------------

std::vector<Json> ZoneChildren::All() const {
  std::vector<Json> out{namespace_};
  for (const auto* o :
       {&priority_class, &limit_range, &resource_quota, &network_policy, &egress_policy}) {
    if (*o) out.push_back(**o);
  }
  out.insert(out.end(), role_bindings.begin(), role_bindings.end());
  return out;
}

ZoneChildren DesiredZoneChildren(const api::Zone& zone) {
  ZoneChildren c;
  c.namespace_ = NamespaceObject(zone);
  c.priority_class = PriorityClassObject(zone);
  c.limit_range = LimitRangeObject(zone);
  c.resource_quota = ResourceQuotaObject(zone);
  c.network_policy = NetworkPolicyObject(zone);
  c.egress_policy = EgressPolicyObject(zone);
  c.role_bindings = RoleBindingObjects(zone);
  return c;
}

std::vector<ChildRef> StaleZoneChildren(const api::Zone& zone) {
  std::vector<ChildRef> desired;
  for (const auto& o : DesiredZoneChildren(zone).All()) desired.push_back(RefOf(o));
  std::vector<ChildRef> stale;
  for (auto& ref : PossibleChildren(zone)) {
    if (std::ranges::find(desired, ref) == desired.end()) {
      stale.push_back(std::move(ref));
    }
  }
  return stale;
}

bool NamespaceTaken(const api::Zone& zone, const Json& ns) {
  const Json* meta = Find(ns, "metadata");
  const Json* labels = meta != nullptr ? Find(*meta, "labels") : nullptr;
  const Json* value = labels != nullptr ? Find(*labels, kZoneLabel) : nullptr;
  return value == nullptr || !value->is_string() ||
         value->get<std::string>() != ZoneLabelValue(zone);
}

// ---- guarantees ---------------------------------------------------------------------------------

ComputeTotals SumAllocatable(const std::vector<Json>& nodes) {
  ComputeTotals total;
  for (const auto& node : nodes) {
    const Json* spec = Find(node, "spec");
    const Json* unschedulable = spec != nullptr ? Find(*spec, "unschedulable") : nullptr;
    if (unschedulable != nullptr && unschedulable->is_boolean() && unschedulable->get<bool>())
      continue;
    const Json* status = Find(node, "status");
    const Json* alloc = status != nullptr ? Find(*status, "allocatable") : nullptr;
    if (alloc == nullptr) continue;
    const auto amount = [&](std::string_view name) -> std::optional<Quantity> {
      const Json* j = Find(*alloc, name);
      if (!j) return std::nullopt;
      auto q = ParseQuantityJson(*j);
      if (q && q->negative()) return std::nullopt;
      return q;
    };
    if (auto q = amount("cpu")) total.cpu_milli = SaturatingAdd(total.cpu_milli, q->milli());
    if (auto q = amount("memory")) {
      total.memory_bytes = SaturatingAdd(total.memory_bytes, q->units());
    }
    if (auto q = amount(kGpuResource)) total.gpu = SaturatingAdd(total.gpu, q->milli() / 1000);
  }
  return total;
}

GuaranteeFit CheckGuarantees(const api::Zone& zone, const std::vector<const api::Zone*>& all_zones,
                             const ComputeTotals& cluster_allocatable) {
  if (zone.metadata.deletion_timestamp) {
    return {true, "the zone is being deleted: its guarantee is released"};
  }
  if (!Guarantees(zone)) return {true, "the zone has no guarantees"};

  std::vector<const api::Zone*> zones{&zone};
  for (const auto* z : all_zones) {
    if (z != nullptr && z->metadata.name != zone.metadata.name && Guarantees(*z))
      zones.push_back(z);
  }
  const auto key = [](const api::Zone* z) {
    return std::tuple(!z->metadata.creation_timestamp.has_value(),
                      z->metadata.creation_timestamp.value_or(api::Time{}),
                      std::string_view(z->metadata.name));
  };
  std::ranges::sort(zones, [&](const api::Zone* a, const api::Zone* b) { return key(a) < key(b); });

  ComputeTotals left = cluster_allocatable;
  // Per resource, the earlier zones holding some of it.
  std::array<std::vector<std::pair<std::string, int64_t>>, kResources.size()> holders;
  for (const auto* z : zones) {
    const ComputeTotals need = GuaranteeTotals(*z);
    bool fits = true;
    for (const auto& r : kResources) fits = fits && need.*r.field <= left.*r.field;
    if (z == &zone) {
      if (fits) {
        return {true, "guaranteed " + Totals(need, true) + " (cluster allocatable " +
                          Totals(cluster_allocatable, false) + "; left after earlier zones " +
                          Totals(left, false) + ")"};
      }
      std::string shortfalls;
      std::string lower;
      for (size_t i = 0; i < kResources.size(); ++i) {
        const auto& r = kResources[i];
        if (need.*r.field <= left.*r.field) continue;
        std::string s(r.name);
        s += " " + r.format(need.*r.field) + " wanted, " + r.format(left.*r.field) +
             " left of the cluster's " + r.format(cluster_allocatable.*r.field);
        if (!holders[i].empty()) {
          s += " after earlier zones (";
          constexpr size_t kMaxNames = 5;
          for (size_t h = 0; h < holders[i].size() && h < kMaxNames; ++h) {
            if (h > 0) s += ", ";
            s += holders[i][h].first + " " + r.format(holders[i][h].second);
          }
          if (holders[i].size() > kMaxNames) {
            s += ", and " + std::to_string(holders[i].size() - kMaxNames) + " more";
          }
          s += ")";
        }
        shortfalls.append(shortfalls.empty() ? "" : "; ").append(s);
        lower.append(lower.empty() ? "" : ", ")
            .append(r.name)
            .append(" to at most ")
            .append(r.format(left.*r.field));
      }
      std::string why = "guarantee does not fit: " + shortfalls;
      why.append(". Lower spec.guarantees (").append(lower);
      return {false, why.append("), add nodes, or lower earlier zones' guarantees")};
    }
    if (!fits) continue;  // reserves nothing
    for (size_t i = 0; i < kResources.size(); ++i) {
      const auto& r = kResources[i];
      left.*r.field -= need.*r.field;
      if (need.*r.field > 0) holders[i].emplace_back(z->metadata.name, need.*r.field);
    }
  }
  return {true, ""};  // not reached: `zone` is in `zones`
}

// ---- status -------------------------------------------------------------------------------------

api::ZoneStatus ComputeZoneStatus(const api::Zone& zone, const ObservedZone& observed,
                                  api::Time now) {
  using enum api::ConditionStatus;
  const ZoneChildren desired = DesiredZoneChildren(zone);
  api::ZoneStatus status;
  status.namespace_ = api::TargetNamespace(zone);
  status.observed_generation = zone.metadata.generation;
  if (desired.resource_quota && observed.resource_quota) {
    const Json* s = Find(*observed.resource_quota, "status");
    status.hard = QuantityMap(s != nullptr ? Find(*s, "hard") : nullptr);
    status.used = QuantityMap(s != nullptr ? Find(*s, "used") : nullptr);
  }

  const api::Condition ns_cond = NamespaceCondition(zone, observed);
  const api::Condition quota_cond = QuotaCondition(zone, observed, desired);
  const std::optional<api::Condition> guarantee_cond = GuaranteeCondition(zone, observed);
  const bool ns_terminating = observed.namespace_ && NamespaceTerminating(*observed.namespace_);

  // Phase, and why the zone is not Ready (reason, message) if it is not.
  std::optional<std::pair<std::string, std::string>> not_ready;
  if (zone.metadata.deletion_timestamp) {
    status.phase = api::ZonePhase::kTerminating;
    not_ready = {"Terminating", "the zone is being deleted"};
  } else if (ns_cond.status == kFalse) {
    status.phase = api::ZonePhase::kFailed;
    not_ready = {ns_cond.reason, ns_cond.message};
  } else if (observed.apply_error) {
    status.phase = api::ZonePhase::kFailed;
    not_ready = {"ApplyFailed", *observed.apply_error};
  } else if (!observed.namespace_) {
    status.phase = api::ZonePhase::kPending;
    not_ready = {ns_cond.reason, ns_cond.message};
  } else if (ns_terminating) {
    status.phase = api::ZonePhase::kPending;
    not_ready = {"NamespaceTerminating", "namespace " + Quote(api::TargetNamespace(zone)) +
                                             " is being deleted; it is made again once it is gone"};
  } else if (quota_cond.status != kTrue) {
    status.phase = api::ZonePhase::kPending;
    not_ready = {quota_cond.reason, quota_cond.message};
  } else {
    status.phase = api::ZonePhase::kActive;
    if (guarantee_cond && guarantee_cond->status != kTrue) {
      not_ready = {guarantee_cond->status == kFalse ? "GuaranteeNotSatisfied" : "GuaranteeUnknown",
                   guarantee_cond->message};
    }
  }
  const api::Condition ready =
      not_ready ? MakeCondition(kConditionReady, kFalse, not_ready->first, not_ready->second)
                : MakeCondition(kConditionReady, kTrue, "Ready",
                                "namespace " + Quote(api::TargetNamespace(zone)) +
                                    " with its quota, defaults, access and isolation is in place");

  // Conditions: carry over the old ones of our types, so unchanged ones keep their
  // lastTransitionTime; then set the new ones.
  std::vector<api::Condition> conditions;
  if (zone.status) {
    for (const auto& c : zone.status->conditions) {
      const bool ours = ConditionOrder(c.type) < kConditionOrder.size() &&
                        (c.type != kConditionGuaranteeSatisfied || guarantee_cond);
      if (ours && api::FindCondition(conditions, c.type) == nullptr) conditions.push_back(c);
    }
  }
  std::vector<api::Condition> now_conditions{ready, ns_cond, quota_cond};
  if (guarantee_cond) now_conditions.push_back(*guarantee_cond);
  for (auto& c : now_conditions) {
    c.observed_generation = zone.metadata.generation;
    c.last_transition_time = now;
    api::SetCondition(conditions, std::move(c));
  }
  // Ours in kConditionOrder, then any others by type (types are unique, so the order is total).
  std::ranges::sort(conditions, [](const api::Condition& a, const api::Condition& b) {
    return std::pair(ConditionOrder(a.type), std::string_view(a.type)) <
           std::pair(ConditionOrder(b.type), std::string_view(b.type));
  });
  status.conditions = std::move(conditions);
  return status;
}

Json ZoneStatusPatch(const api::Zone& zone, const ObservedZone& observed, std::string_view now) {
  const auto t = api::ParseTime(now);
  if (!t) throw std::invalid_argument("ZoneStatusPatch: " + t.error());
  const Json new_status = StatusJson(ComputeZoneStatus(zone, observed, *t));
  const Json old_status = zone.status ? StatusJson(*zone.status) : Json::object();
  if (new_status == old_status) return nullptr;
  return Json{{"status", api::MergePatchReplacing(old_status, new_status)}};
}

}  // namespace millrace::reconcilers
