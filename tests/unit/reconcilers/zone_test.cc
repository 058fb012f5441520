#include "reconcilers/zone.h"

#include <stdexcept>

#include "tests/unit/reconcilers/plan_test.h"

namespace millrace::reconcilers {
namespace {

using namespace plan_test;

api::Zone ZoneFrom(const Json& j) {
  auto z = api::Zone::FromJson(j);
  if (!z) throw std::runtime_error(api::ToString(z.error()));
  return *z;
}

api::Zone ZoneFromYaml(const std::string& yaml) {
  return ZoneFrom(api::testing::YamlToJson(yaml).at(0));
}

api::Zone Sample(const std::string& file) {
  for (const auto& s : api::testing::LoadSamples()) {
    if (s.file == "config/samples/" + file) {
      Json j = s.object;
      j["metadata"]["uid"] = "uid-" + j["metadata"]["name"].get<std::string>();
      j["metadata"]["generation"] = 3;
      j["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z";
      return ZoneFrom(j);
    }
  }
  throw std::runtime_error("no sample " + file);
}

Json OwnerRefs(const std::string& name) {
  return Json::array({{{"apiVersion", "millrace.io/v1alpha1"},
                       {"kind", "Zone"},
                       {"name", name},
                       {"uid", "uid-" + name},
                       {"controller", true},
                       {"blockOwnerDeletion", true}}});
}

Json ChildLabels(const std::string& zone) {
  return {{"millrace.io/zone", zone}, {"app.kubernetes.io/managed-by", "millrace"}};
}

std::vector<std::string> KindsAndNames(const std::vector<Json>& objects) {
  std::vector<std::string> out;
  for (const auto& o : objects) {
    out.push_back(o["kind"].get<std::string>() + "/" + o["metadata"]["name"].get<std::string>());
  }
  return out;
}

std::vector<std::string> KindsAndNames(const std::vector<ChildRef>& refs) {
  std::vector<std::string> out;
  for (const auto& r : refs) out.push_back(r.kind + "/" + r.name);
  return out;
}

// ---- children -----------------------------------------------------------------------------------

TEST(ZoneChildren, DevelopmentSampleAlice) {
  const api::Zone zone = Sample("zone-development-alice.yaml");
  const ZoneChildren c = DesiredZoneChildren(zone);

  EXPECT_EQ(c.namespace_, (Json{{"apiVersion", "v1"},
                                {"kind", "Namespace"},
                                {"metadata",
                                 {{"name", "dev-alice"},
                                  {"labels",
                                   {{"millrace.io/zone", "dev-alice"},
                                    {"app.kubernetes.io/managed-by", "millrace"},
                                    {"pod-security.kubernetes.io/enforce", "baseline"}}},
                                  // deletionPolicy: Delete
                                  {"ownerReferences", OwnerRefs("dev-alice")}}}}));
  EXPECT_FALSE(c.priority_class);

  ASSERT_TRUE(c.resource_quota);
  EXPECT_EQ(*c.resource_quota, (Json{{"apiVersion", "v1"},
                                     {"kind", "ResourceQuota"},
                                     {"metadata",
                                      {{"name", "zone-quota"},
                                       {"namespace", "dev-alice"},
                                       {"labels", ChildLabels("dev-alice")},
                                       {"ownerReferences", OwnerRefs("dev-alice")}}},
                                     {"spec",
                                      {{"hard",
                                        {{"requests.cpu", "8"},
                                         {"limits.cpu", "8"},
                                         {"requests.memory", "32Gi"},
                                         {"limits.memory", "32Gi"},
                                         {"requests.nvidia.com/gpu", "1"},
                                         {"requests.storage", "200Gi"},
                                         {"pods", "40"},
                                         {"services", "10"},
                                         {"count/jobs.batch", "50"}}}}}}));

  ASSERT_TRUE(c.limit_range);
  EXPECT_EQ((*c.limit_range)["metadata"]["name"], "zone-defaults");
  EXPECT_EQ((*c.limit_range)["metadata"]["namespace"], "dev-alice");
  EXPECT_EQ((*c.limit_range)["spec"],
            (Json{{"limits",
                   Json::array({{{"type", "Container"},
                                 {"default", {{"cpu", "2"}, {"memory", "4Gi"}}},
                                 {"defaultRequest", {{"cpu", "500m"}, {"memory", "1Gi"}}}}})}}));

  ASSERT_TRUE(c.network_policy);
  EXPECT_EQ(
      *c.network_policy,
      (Json{{"apiVersion", "networking.k8s.io/v1"},
            {"kind", "NetworkPolicy"},
            {"metadata",
             {{"name", "zone-isolation"},
              {"namespace", "dev-alice"},
              {"labels", ChildLabels("dev-alice")},
              {"ownerReferences", OwnerRefs("dev-alice")}}},
            {"spec",
             {{"podSelector", Json::object()},
              {"policyTypes", {"Ingress"}},
              {"ingress",
               Json::array({{{"from", Json::array({{{"podSelector", Json::object()}}})}}})}}}}));

  ASSERT_EQ(c.role_bindings.size(), 1u);
  EXPECT_EQ(
      c.role_bindings[0],
      (Json{
          {"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "RoleBinding"},
          {"metadata",
           {{"name", "zone-owner"},
            {"namespace", "dev-alice"},
            {"labels", ChildLabels("dev-alice")},
            {"ownerReferences", OwnerRefs("dev-alice")}}},
          {"roleRef",
           {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"}, {"name", "admin"}}},
          {"subjects", Json::array({{{"kind", "User"},
                                     {"apiGroup", "rbac.authorization.k8s.io"},
                                     {"name", "alice"}}})}}));

  EXPECT_THAT(
      KindsAndNames(c.All()),
      ElementsAre("Namespace/dev-alice", "LimitRange/zone-defaults", "ResourceQuota/zone-quota",
                  "NetworkPolicy/zone-isolation", "RoleBinding/zone-owner"));
  EXPECT_THAT(
      KindsAndNames(StaleZoneChildren(zone)),
      ElementsAre("PriorityClass/millrace-zone-dev-alice", "NetworkPolicy/zone-egress",
                  "RoleBinding/zone-admin", "RoleBinding/zone-edit", "RoleBinding/zone-view"));
}

TEST(ZoneChildren, DeploymentSampleChurn) {
  const api::Zone zone = Sample("zone-deployment-churn.yaml");
  const ZoneChildren c = DesiredZoneChildren(zone);

  // deletionPolicy: Retain: the garbage collector must never delete the namespace.
  EXPECT_FALSE(c.namespace_["metadata"].contains("ownerReferences"));
  EXPECT_EQ(c.namespace_["metadata"]["labels"],
            (Json{{"millrace.io/zone", "churn"},
                  {"app.kubernetes.io/managed-by", "millrace"},
                  {"pod-security.kubernetes.io/enforce", "baseline"},
                  {"pod-security.kubernetes.io/warn", "restricted"},
                  {"pod-security.kubernetes.io/audit", "restricted"}}));

  ASSERT_TRUE(c.priority_class);
  EXPECT_EQ((*c.priority_class)["apiVersion"], "scheduling.k8s.io/v1");
  EXPECT_EQ((*c.priority_class)["metadata"]["name"], "millrace-zone-churn");
  EXPECT_FALSE((*c.priority_class)["metadata"].contains("namespace"));
  EXPECT_EQ((*c.priority_class)["metadata"]["ownerReferences"], OwnerRefs("churn"));
  EXPECT_EQ((*c.priority_class)["value"], 100000);
  EXPECT_EQ((*c.priority_class)["globalDefault"], false);
  EXPECT_EQ((*c.priority_class)["preemptionPolicy"], "PreemptLowerPriority");
  EXPECT_TRUE((*c.priority_class)["description"].is_string());

  ASSERT_TRUE(c.resource_quota);
  EXPECT_EQ((*c.resource_quota)["spec"]["hard"], (Json{{"requests.cpu", "32"},
                                                       {"limits.cpu", "32"},
                                                       {"requests.memory", "128Gi"},
                                                       {"limits.memory", "128Gi"},
                                                       {"requests.nvidia.com/gpu", "4"},
                                                       {"requests.storage", "2Ti"},
                                                       {"persistentvolumeclaims", "20"},
                                                       {"pods", "200"},
                                                       {"services", "30"},
                                                       {"configmaps", "100"},
                                                       {"secrets", "100"},
                                                       {"count/jobs.batch", "500"},
                                                       {"count/tasks.millrace.io", "1000"},
                                                       {"count/pipelines.millrace.io", "200"}}));
  ASSERT_TRUE(c.limit_range);
  EXPECT_EQ((*c.limit_range)["spec"]["limits"][0]["default"],
            (Json{{"cpu", "1"}, {"memory", "2Gi"}}));
  EXPECT_EQ((*c.limit_range)["spec"]["limits"][0]["defaultRequest"],
            (Json{{"cpu", "250m"}, {"memory", "512Mi"}}));
  ASSERT_TRUE(c.network_policy);

  ASSERT_EQ(c.role_bindings.size(), 3u);
  EXPECT_EQ(c.role_bindings[0]["metadata"]["name"], "zone-owner");
  EXPECT_EQ(c.role_bindings[0]["roleRef"]["name"], "admin");
  EXPECT_EQ(c.role_bindings[0]["subjects"][0]["name"], "bob");
  EXPECT_EQ(c.role_bindings[1]["metadata"]["name"], "zone-edit");
  EXPECT_EQ(c.role_bindings[1]["roleRef"]["name"], "edit");
  EXPECT_EQ(c.role_bindings[1]["subjects"],
            (Json::array({{{"kind", "Group"},
                           {"apiGroup", "rbac.authorization.k8s.io"},
                           {"name", "churn-data-science"}}})));
  EXPECT_EQ(c.role_bindings[2]["metadata"]["name"], "zone-view");
  EXPECT_EQ(c.role_bindings[2]["roleRef"]["name"], "view");
  EXPECT_EQ(c.role_bindings[2]["subjects"][0]["name"], "carol");
  EXPECT_EQ(c.role_bindings[2]["subjects"][0]["kind"], "User");

  EXPECT_THAT(KindsAndNames(c.All()),
              ElementsAre("Namespace/churn", "PriorityClass/millrace-zone-churn",
                          "LimitRange/zone-defaults", "ResourceQuota/zone-quota",
                          "NetworkPolicy/zone-isolation", "RoleBinding/zone-owner",
                          "RoleBinding/zone-edit", "RoleBinding/zone-view"));
  EXPECT_THAT(KindsAndNames(StaleZoneChildren(zone)),
              ElementsAre("NetworkPolicy/zone-egress", "RoleBinding/zone-admin"));
}

TEST(ZoneChildren, DefaultsApplyWithoutDefaultingHavingRun) {
  const api::Zone zone = ZoneFromYaml(R"(
metadata: {name: p, uid: u}
spec:
  type: Deployment
  namespace: proj
  members: [{name: carol}, {name: dan, role: view}, {kind: Group, name: ops, role: admin}]
)");
  const ZoneChildren c = DesiredZoneChildren(zone);
  EXPECT_EQ(c.namespace_["metadata"]["name"], "proj");
  EXPECT_FALSE(c.namespace_["metadata"].contains("ownerReferences"));  // Retain by default
  EXPECT_TRUE(c.network_policy);                                       // isolation by default
  EXPECT_EQ((*c.network_policy)["metadata"]["namespace"], "proj");
  EXPECT_FALSE(c.resource_quota);
  EXPECT_FALSE(c.limit_range);
  ASSERT_EQ(c.role_bindings.size(), 2u);
  EXPECT_EQ(c.role_bindings[0]["metadata"]["name"], "zone-admin");
  EXPECT_EQ(c.role_bindings[0]["subjects"][0]["kind"], "Group");
  EXPECT_EQ(c.role_bindings[1]["metadata"]["name"], "zone-view");
  EXPECT_EQ(c.role_bindings[1]["subjects"].size(), 2u);
  EXPECT_EQ(c.role_bindings[1]["subjects"][0],
            (Json{{"kind", "User"}, {"apiGroup", "rbac.authorization.k8s.io"}, {"name", "carol"}}));
  EXPECT_THAT(
      KindsAndNames(StaleZoneChildren(zone)),
      ElementsAre("LimitRange/zone-defaults", "ResourceQuota/zone-quota",
                  "NetworkPolicy/zone-egress", "RoleBinding/zone-owner", "RoleBinding/zone-edit"));
  for (const auto& r : StaleZoneChildren(zone)) {
    EXPECT_EQ(r.namespace_, r.kind == "PriorityClass" ? "" : "proj") << r.kind;
  }
}

TEST(ZoneChildren, StaleAfterIsolationOffAndMembersGone) {
  api::Zone zone = Sample("zone-deployment-churn.yaml");
  zone.spec.network_isolation = false;
  zone.spec.members.clear();
  zone.spec.limits.reset();
  zone.spec.defaults.reset();
  const ZoneChildren c = DesiredZoneChildren(zone);
  EXPECT_FALSE(c.network_policy);
  EXPECT_THAT(KindsAndNames(c.All()),
              ElementsAre("Namespace/churn", "PriorityClass/millrace-zone-churn",
                          "RoleBinding/zone-owner"));
  const auto stale = StaleZoneChildren(zone);
  EXPECT_THAT(
      KindsAndNames(stale),
      ElementsAre("LimitRange/zone-defaults", "ResourceQuota/zone-quota",
                  "NetworkPolicy/zone-isolation", "NetworkPolicy/zone-egress",
                  "RoleBinding/zone-admin", "RoleBinding/zone-edit", "RoleBinding/zone-view"));
  EXPECT_EQ(stale[2],
            (ChildRef{"networking.k8s.io/v1", "NetworkPolicy", "churn", "zone-isolation"}));
}

// egressIsolation adds zone-egress: egress only to the namespace's pods and to DNS anywhere.
TEST(ZoneChildren, EgressIsolationAllowsTheZoneAndDnsOnly) {
  api::Zone zone = Sample("zone-deployment-churn.yaml");
  zone.spec.egress_isolation = true;
  const ZoneChildren c = DesiredZoneChildren(zone);
  ASSERT_TRUE(c.egress_policy);
  EXPECT_EQ((*c.egress_policy)["metadata"]["name"], "zone-egress");
  const Json& spec = (*c.egress_policy)["spec"];
  EXPECT_EQ(spec["podSelector"], Json::object());
  EXPECT_EQ(spec["policyTypes"], Json::array({"Egress"}));
  EXPECT_EQ(spec["egress"][0],
            (Json{{"to", Json::array({Json{{"podSelector", Json::object()}}})}}));
  EXPECT_EQ(spec["egress"][1],
            (Json{{"ports", Json::array({Json{{"port", 53}, {"protocol", "UDP"}},
                                         Json{{"port", 53}, {"protocol", "TCP"}}})}}));
  EXPECT_EQ(spec["egress"].size(), 2u);
  // The ingress policy is unchanged beside it, and neither is stale.
  ASSERT_TRUE(c.network_policy);
  EXPECT_EQ((*c.network_policy)["spec"]["policyTypes"], Json::array({"Ingress"}));
  for (const auto& ref : StaleZoneChildren(zone)) EXPECT_NE(ref.kind, "NetworkPolicy");
}

Json LimitRangeSpecItem(const std::string& spec_yaml) {
  const auto c =
      DesiredZoneChildren(ZoneFromYaml("metadata: {name: z, uid: u}\nspec: " + spec_yaml));
  if (!c.limit_range) return nullptr;
  return (*c.limit_range)["spec"]["limits"][0];
}

TEST(ZoneChildren, LimitRangeKeepsPodsWithoutResourcesRunningUnderTheQuota) {
  // The quota caps cpu and memory but no defaults are given: fallbacks.
  EXPECT_EQ(LimitRangeSpecItem("{type: Development, owner: {name: a}, limits: {cpu: 8, memory: "
                               "32Gi, pods: 3}}"),
            (Json{{"type", "Container"},
                  {"default", {{"cpu", "1"}, {"memory", "512Mi"}}},
                  {"defaultRequest", {{"cpu", "100m"}, {"memory", "128Mi"}}}}));
  // Fallbacks are clamped to the zone's limit.
  EXPECT_EQ(LimitRangeSpecItem("{type: Development, owner: {name: a}, limits: {cpu: 500m, memory: "
                               "100Mi}}"),
            (Json{{"type", "Container"},
                  {"default", {{"cpu", "500m"}, {"memory", "100Mi"}}},
                  {"defaultRequest", {{"cpu", "100m"}, {"memory", "100Mi"}}}}));
  // A default request above the fallback limit raises the default limit to it.
  EXPECT_EQ(
      LimitRangeSpecItem("{type: Development, owner: {name: a}, limits: {cpu: 8}, defaults: "
                         "{requests: {cpu: 2}}}"),
      (Json{
          {"type", "Container"}, {"default", {{"cpu", "2"}}}, {"defaultRequest", {{"cpu", "2"}}}}));
  // A default limit without a default request passes through (Kubernetes requests the limit).
  EXPECT_EQ(LimitRangeSpecItem("{type: Development, owner: {name: a}, limits: {cpu: 8}, defaults: "
                               "{limits: {cpu: 3}}}"),
            (Json{{"type", "Container"}, {"default", {{"cpu", "3"}}}}));
  // Only gpu or counts capped: no cpu/memory defaults are needed.
  EXPECT_EQ(LimitRangeSpecItem("{type: Development, owner: {name: a}, limits: {gpu: 1, pods: 2}}"),
            nullptr);
  // No limits: defaults pass through; a gpu default goes in both default and defaultRequest.
  EXPECT_EQ(LimitRangeSpecItem("{type: Development, owner: {name: a}, defaults: {requests: {cpu: "
                               "250m, gpu: 1}}}"),
            (Json{{"type", "Container"},
                  {"default", {{"nvidia.com/gpu", "1"}}},
                  {"defaultRequest", {{"cpu", "250m"}, {"nvidia.com/gpu", "1"}}}}));
  EXPECT_EQ(LimitRangeSpecItem("{type: Development, owner: {name: a}}"), nullptr);
}

TEST(ZoneChildren, LongZoneNamesGiveValidLabelValues) {
  const std::string name(70, 'a');
  api::Zone zone = ZoneFromYaml("metadata: {name: " + name + ".b, uid: u}\nspec: {type: " +
                                "Deployment, namespace: ns, owner: {name: o}}");
  const std::string label = ZoneLabelValue(zone);
  EXPECT_EQ(label.size(), 63u);
  EXPECT_EQ(label.substr(0, 55), std::string(54, 'a') + "-");
  EXPECT_EQ(label, ZoneLabelValue(zone));  // deterministic
  zone.metadata.name += "c";
  EXPECT_NE(label, ZoneLabelValue(zone));
  EXPECT_EQ(DesiredZoneChildren(zone).namespace_["metadata"]["labels"]["millrace.io/zone"],
            ZoneLabelValue(zone));

  const api::Zone short_zone = ZoneFromYaml("metadata: {name: s}\nspec: {type: Development}");
  EXPECT_EQ(ZoneLabelValue(short_zone), "s");
  EXPECT_EQ(ZonePriorityClassName(short_zone), "millrace-zone-s");
  EXPECT_EQ(ZoneRoleBindingName(api::MemberRole::kEdit), "zone-edit");
}

// ---- guarantees ---------------------------------------------------------------------------------

Json Node(const std::string& cpu, const std::string& memory, const std::string& gpu,
          bool unschedulable = false) {
  Json n{{"metadata", {{"name", "n"}}},
         {"status", {{"allocatable", {{"cpu", cpu}, {"memory", memory}, {"pods", "110"}}}}}};
  if (!gpu.empty()) n["status"]["allocatable"]["nvidia.com/gpu"] = gpu;
  if (unschedulable) n["spec"]["unschedulable"] = true;
  return n;
}

TEST(ZoneGuarantees, SumAllocatableSkipsUnschedulableNodes) {
  const std::vector<Json> nodes{Node("8", "32Gi", "2"), Node("3500m", "16Gi", ""),
                                Node("64", "256Gi", "8", /*unschedulable=*/true),
                                Node("bogus", "1Gi", "x"), Json{{"metadata", {{"name", "bare"}}}}};
  EXPECT_EQ(SumAllocatable(nodes), (ComputeTotals{11500, int64_t{49} << 30, 2}));
  EXPECT_EQ(SumAllocatable({}), ComputeTotals{});
}

api::Zone Guaranteed(const std::string& name, const std::string& created, const std::string& cpu,
                     const std::string& extra = "") {
  return ZoneFromYaml("metadata: {name: " + name + ", uid: u-" + name + ", creationTimestamp: '" +
                      created + "'" + extra + "}\nspec: {type: Deployment, owner: {name: o}, " +
                      "guarantees: {cpu: '" + cpu + "'}}");
}

TEST(ZoneGuarantees, EarlierZonesKeepTheirGuarantee) {
  const api::Zone a = Guaranteed("a", "2026-01-01T00:00:00Z", "8");
  const api::Zone b = Guaranteed("b", "2026-01-02T00:00:00Z", "12");
  const api::Zone c = Guaranteed("c", "2026-01-03T00:00:00Z", "4");
  const std::vector<const api::Zone*> all{&c, &b, &a};  // order does not matter
  const ComputeTotals cluster{16000, int64_t{64} << 30, 0};

  const GuaranteeFit fa = CheckGuarantees(a, all, cluster);
  EXPECT_TRUE(fa.fits);
  EXPECT_EQ(fa.message,
            "guaranteed cpu 8 (cluster allocatable cpu 16, memory 64Gi, gpu 0; left after earlier "
            "zones cpu 16, memory 64Gi, gpu 0)");
  const GuaranteeFit fb = CheckGuarantees(b, all, cluster);
  EXPECT_FALSE(fb.fits);
  EXPECT_EQ(fb.message,
            "guarantee does not fit: cpu 12 wanted, 8 left of the cluster's 16 after earlier zones "
            "(a 8). Lower spec.guarantees (cpu to at most 8), add nodes, or lower earlier zones' "
            "guarantees");
  // b reserves nothing, so c still fits after a.
  EXPECT_TRUE(CheckGuarantees(c, all, cluster).fits);
  // Stable: asking again, or with the zone absent from the list, gives the same answer.
  EXPECT_EQ(CheckGuarantees(b, all, cluster), fb);
  EXPECT_EQ(CheckGuarantees(b, {&a, &c}, cluster), fb);
}

TEST(ZoneGuarantees, TiesByNameDeletedAndUncreatedZones) {
  const api::Zone x = Guaranteed("x", "2026-01-01T00:00:00Z", "10");
  const api::Zone y = Guaranteed("y", "2026-01-01T00:00:00Z", "10");
  const ComputeTotals cluster{16000, 0, 0};
  EXPECT_TRUE(CheckGuarantees(x, {&x, &y}, cluster).fits);
  EXPECT_FALSE(CheckGuarantees(y, {&y, &x}, cluster).fits);

  // A zone being deleted neither counts nor is refused.
  const api::Zone gone = Guaranteed("a-gone", "2025-01-01T00:00:00Z", "16",
                                    ", deletionTimestamp: '2026-02-01T00:00:00Z'");
  EXPECT_TRUE(CheckGuarantees(x, {&gone, &x}, cluster).fits);
  EXPECT_TRUE(CheckGuarantees(gone, {&gone, &x}, cluster).fits);

  // A zone without a creationTimestamp comes last.
  api::Zone fresh = Guaranteed("aa-fresh", "2026-01-01T00:00:00Z", "10");
  fresh.metadata.creation_timestamp.reset();
  EXPECT_TRUE(CheckGuarantees(x, {&fresh, &x}, cluster).fits);
  EXPECT_FALSE(CheckGuarantees(fresh, {&fresh, &x}, cluster).fits);

  // Development zones and zones without guarantees always fit and never count.
  const api::Zone dev = ZoneFromYaml("metadata: {name: d}\nspec: {type: Development}");
  EXPECT_EQ(CheckGuarantees(dev, {&x}, ComputeTotals{}),
            (GuaranteeFit{true, "the zone has no guarantees"}));
}

TEST(ZoneGuarantees, MessageNamesEveryShortResource) {
  const api::Zone a = ZoneFromYaml(R"(
metadata: {name: a, creationTimestamp: '2026-01-01T00:00:00Z'}
spec: {type: Deployment, owner: {name: o}, guarantees: {cpu: 4, memory: 48Gi, gpu: 1}}
)");
  const api::Zone b = ZoneFromYaml(R"(
metadata: {name: b, creationTimestamp: '2026-01-02T00:00:00Z'}
spec: {type: Deployment, owner: {name: o}, guarantees: {cpu: 1500m, memory: 32Gi, gpu: 2}}
)");
  const GuaranteeFit f = CheckGuarantees(b, {&a, &b}, ComputeTotals{8000, int64_t{64} << 30, 1});
  EXPECT_FALSE(f.fits);
  EXPECT_EQ(f.message,
            "guarantee does not fit: memory 32Gi wanted, 16Gi left of the cluster's 64Gi after "
            "earlier zones (a 48Gi); gpu 2 wanted, 0 left of the cluster's 1 after earlier zones "
            "(a 1). Lower spec.guarantees (memory to at most 16Gi, gpu to at most 0), add nodes, "
            "or lower earlier zones' guarantees");
}

// ---- status -------------------------------------------------------------------------------------

const std::string kT0 = "2026-03-01T10:00:00Z";
const std::string kT1 = "2026-03-01T11:00:00Z";

Json OurNamespace(const std::string& name, const std::string& zone) {
  return {{"metadata", {{"name", name}, {"labels", {{"millrace.io/zone", zone}}}}},
          {"status", {{"phase", "Active"}}}};
}

Json Quota(const Json& hard, const Json& used) {
  return {{"metadata", {{"name", "zone-quota"}}}, {"status", {{"hard", hard}, {"used", used}}}};
}

ObservedZone HealthyChurn(const api::Zone& zone) {
  ObservedZone o;
  o.namespace_ = OurNamespace("churn", "churn");
  Json hard = (*DesiredZoneChildren(zone).resource_quota)["spec"]["hard"];
  hard["limits.cpu"] = "32000m";  // the server may write another form of the same amount
  Json used = Json::object();
  for (const auto& [name, q] : hard.items()) used[name] = "0";
  used["requests.cpu"] = "2";
  used["pods"] = "3";
  o.resource_quota = Quota(hard, used);
  o.guarantee = GuaranteeFit{true, "guaranteed cpu 16"};
  return o;
}

api::ZoneStatus Status(const api::Zone& zone, const ObservedZone& o, const std::string& now) {
  return ComputeZoneStatus(zone, o, *api::ParseTime(now));
}

// The status as the API would show it.
Json StatusJson(const api::ZoneStatus& status) {
  api::Zone z;
  z.status = status;
  return z.ToJson().at("status");
}

TEST(ZoneStatus, ActiveAndReady) {
  const api::Zone zone = Sample("zone-deployment-churn.yaml");
  const api::ZoneStatus s = Status(zone, HealthyChurn(zone), kT0);
  EXPECT_EQ(s.phase, api::ZonePhase::kActive);
  EXPECT_EQ(s.namespace_, "churn");
  EXPECT_EQ(s.observed_generation, 3);
  EXPECT_EQ(s.hard.at("requests.memory").text(), "128Gi");
  EXPECT_EQ(s.used.at("pods").units(), 3);
  ASSERT_EQ(s.conditions.size(), 4u);
  const std::vector<std::string> types{"Ready", "NamespaceOwned", "QuotaApplied",
                                       "GuaranteeSatisfied"};
  for (size_t i = 0; i < types.size(); ++i) {
    EXPECT_EQ(s.conditions[i].type, types[i]);
    EXPECT_EQ(s.conditions[i].status, api::ConditionStatus::kTrue) << types[i];
    EXPECT_EQ(s.conditions[i].observed_generation, 3);
    EXPECT_EQ(api::FormatTime(s.conditions[i].last_transition_time), kT0);
  }
  EXPECT_EQ(s.conditions[3].message, "guaranteed cpu 16");

  // Development zones have no GuaranteeSatisfied condition.
  const api::Zone alice = Sample("zone-development-alice.yaml");
  ObservedZone o;
  o.namespace_ = OurNamespace("dev-alice", "dev-alice");
  const Json alice_hard = (*DesiredZoneChildren(alice).resource_quota)["spec"]["hard"];
  Json alice_used = Json::object();
  for (const auto& [name, q] : alice_hard.items()) alice_used[name] = "0";
  o.resource_quota = Quota(alice_hard, alice_used);
  const api::ZoneStatus sa = Status(alice, o, kT0);
  EXPECT_EQ(sa.phase, api::ZonePhase::kActive);
  ASSERT_EQ(sa.conditions.size(), 3u);
  EXPECT_EQ(api::FindCondition(sa.conditions, "GuaranteeSatisfied"), nullptr);
}

TEST(ZoneStatus, TransitionTimeKeptWhileStatusUnchanged) {
  api::Zone zone = Sample("zone-deployment-churn.yaml");
  ObservedZone o = HealthyChurn(zone);
  zone.status = Status(zone, o, kT0);

  // Same observation an hour later: nothing changes, nothing to write.
  EXPECT_EQ(StatusJson(Status(zone, o, kT1)), StatusJson(*zone.status));
  EXPECT_EQ(ZoneStatusPatch(zone, o, kT1), nullptr);

  // The guarantee stops fitting: GuaranteeSatisfied and Ready change at T1, the others keep T0.
  o.guarantee = GuaranteeFit{false, "guarantee does not fit: ..."};
  const api::ZoneStatus s = Status(zone, o, kT1);
  EXPECT_EQ(s.phase, api::ZonePhase::kActive);
  const auto* ready = api::FindCondition(s.conditions, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, api::ConditionStatus::kFalse);
  EXPECT_EQ(ready->reason, "GuaranteeNotSatisfied");
  EXPECT_EQ(api::FormatTime(ready->last_transition_time), kT1);
  const auto* g = api::FindCondition(s.conditions, "GuaranteeSatisfied");
  EXPECT_EQ(g->reason, "InsufficientCapacity");
  EXPECT_EQ(api::FormatTime(g->last_transition_time), kT1);
  EXPECT_EQ(api::FormatTime(api::FindCondition(s.conditions, "QuotaApplied")->last_transition_time),
            kT0);
  EXPECT_EQ(
      api::FormatTime(api::FindCondition(s.conditions, "NamespaceOwned")->last_transition_time),
      kT0);

  // A message change alone keeps the time.
  zone.status = s;
  o.guarantee = GuaranteeFit{false, "guarantee does not fit: other numbers"};
  const api::ZoneStatus s2 = Status(zone, o, "2026-03-01T12:00:00Z");
  EXPECT_EQ(api::FindCondition(s2.conditions, "GuaranteeSatisfied")->message,
            "guarantee does not fit: other numbers");
  EXPECT_EQ(api::FormatTime(
                api::FindCondition(s2.conditions, "GuaranteeSatisfied")->last_transition_time),
            kT1);
}

TEST(ZoneStatus, NamespaceTakenIsNeverTakenOver) {
  const api::Zone zone = Sample("zone-development-alice.yaml");
  ObservedZone o;
  o.namespace_ = Json{{"metadata", {{"name", "dev-alice"}, {"labels", {{"team", "x"}}}}}};
  EXPECT_TRUE(NamespaceTaken(zone, *o.namespace_));
  const api::ZoneStatus s = Status(zone, o, kT0);
  EXPECT_EQ(s.phase, api::ZonePhase::kFailed);
  const auto* owned = api::FindCondition(s.conditions, "NamespaceOwned");
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(owned->status, api::ConditionStatus::kFalse);
  EXPECT_EQ(owned->reason, "NamespaceTaken");
  EXPECT_EQ(owned->message,
            "namespace \"dev-alice\" already exists and belongs to no zone; it is never taken "
            "over: set spec.namespace to another namespace, or, to hand this one to the zone with "
            "everything in it, label it millrace.io/zone=dev-alice");
  const auto* ready = api::FindCondition(s.conditions, "Ready");
  EXPECT_EQ(ready->status, api::ConditionStatus::kFalse);
  EXPECT_EQ(ready->reason, "NamespaceTaken");

  // Another zone's namespace.
  o.namespace_ = OurNamespace("dev-alice", "other");
  EXPECT_TRUE(NamespaceTaken(zone, *o.namespace_));
  EXPECT_THAT(api::FindCondition(Status(zone, o, kT0).conditions, "NamespaceOwned")->message,
              ::testing::HasSubstr("belongs to zone \"other\""));
  EXPECT_FALSE(NamespaceTaken(zone, OurNamespace("dev-alice", "dev-alice")));
}

TEST(ZoneStatus, PendingFailedAndTerminating) {
  const api::Zone zone = Sample("zone-deployment-churn.yaml");
  ObservedZone o;
  api::ZoneStatus s = Status(zone, o, kT0);  // nothing observed yet
  EXPECT_EQ(s.phase, api::ZonePhase::kPending);
  EXPECT_EQ(api::FindCondition(s.conditions, "NamespaceOwned")->status,
            api::ConditionStatus::kUnknown);
  EXPECT_EQ(api::FindCondition(s.conditions, "GuaranteeSatisfied")->reason, "NotChecked");
  EXPECT_THAT(s.hard, IsEmpty());

  // The quota exists but the quota controller has not filled status.hard yet.
  o.namespace_ = OurNamespace("churn", "churn");
  o.resource_quota = Quota(Json::object(), Json::object());
  s = Status(zone, o, kT0);
  EXPECT_EQ(s.phase, api::ZonePhase::kPending);
  EXPECT_EQ(api::FindCondition(s.conditions, "QuotaApplied")->reason, "QuotaPending");
  EXPECT_EQ(api::FindCondition(s.conditions, "Ready")->reason, "QuotaPending");

  // The quota is enforced as specified, but the quota controller does not count Millrace's kinds
  // yet (installed after the quota was made): the API server would refuse to create them.
  o = HealthyChurn(zone);
  o.resource_quota->at("status").at("used").erase("count/tasks.millrace.io");
  o.resource_quota->at("status").at("used").erase("count/pipelines.millrace.io");
  s = Status(zone, o, kT0);
  EXPECT_EQ(s.phase, api::ZonePhase::kPending);
  const auto* uncounted = api::FindCondition(s.conditions, "QuotaApplied");
  EXPECT_EQ(uncounted->status, api::ConditionStatus::kFalse);
  EXPECT_EQ(uncounted->reason, "QuotaUsageUnknown");
  EXPECT_THAT(
      uncounted->message,
      ::testing::StartsWith("ResourceQuota zone-quota in namespace \"churn\" has no usage "
                            "for count/pipelines.millrace.io, count/tasks.millrace.io yet"));
  EXPECT_EQ(api::FindCondition(s.conditions, "Ready")->reason, "QuotaUsageUnknown");

  o = HealthyChurn(zone);
  o.apply_error = "rolebindings.rbac.authorization.k8s.io \"zone-edit\" is forbidden: ...";
  s = Status(zone, o, kT0);
  EXPECT_EQ(s.phase, api::ZonePhase::kFailed);
  EXPECT_EQ(api::FindCondition(s.conditions, "Ready")->reason, "ApplyFailed");
  EXPECT_EQ(api::FindCondition(s.conditions, "Ready")->message, *o.apply_error);

  o = HealthyChurn(zone);
  (*o.namespace_)["status"]["phase"] = "Terminating";
  EXPECT_EQ(Status(zone, o, kT0).phase, api::ZonePhase::kPending);

  api::Zone deleted = zone;
  deleted.metadata.deletion_timestamp = *api::ParseTime(kT0);
  s = Status(deleted, HealthyChurn(zone), kT0);
  EXPECT_EQ(s.phase, api::ZonePhase::kTerminating);
  EXPECT_EQ(api::FindCondition(s.conditions, "Ready")->reason, "Terminating");

  // A zone without limits: no quota to wait for.
  api::Zone open = zone;
  open.spec.limits.reset();
  o = HealthyChurn(zone);
  o.resource_quota.reset();
  s = Status(open, o, kT0);
  EXPECT_EQ(s.phase, api::ZonePhase::kActive);
  EXPECT_EQ(api::FindCondition(s.conditions, "QuotaApplied")->reason, "NoLimits");
}

TEST(ZoneStatus, PatchRemovesStaleKeysAndConditions) {
  api::Zone zone = Sample("zone-deployment-churn.yaml");
  ObservedZone o = HealthyChurn(zone);
  zone.status = Status(zone, o, kT0);

  // Limits and guarantees removed: hard/used entries and GuaranteeSatisfied go away.
  zone.spec.limits.reset();
  zone.spec.guarantees.reset();
  zone.metadata.generation = 4;
  o.resource_quota.reset();
  o.guarantee.reset();
  const Json patch = ZoneStatusPatch(zone, o, kT1);
  ASSERT_TRUE(patch.is_object());
  const Json& st = patch.at("status");
  EXPECT_EQ(st.at("observedGeneration"), 4);
  EXPECT_EQ(st.at("phase"), "Active");
  EXPECT_TRUE(st.at("hard").is_null());
  EXPECT_TRUE(st.at("used").is_null());
  ASSERT_EQ(st.at("conditions").size(), 3u);
  for (const auto& c : st.at("conditions")) EXPECT_NE(c.at("type"), "GuaranteeSatisfied");
  EXPECT_EQ(st.at("conditions")[0].at("lastTransitionTime"), kT0);  // Ready stayed True

  // Applying the patch gives the computed status.
  Json applied = zone.ToJson();
  applied.merge_patch(patch);
  EXPECT_EQ(applied.at("status"), StatusJson(Status(zone, o, kT1)));
  EXPECT_FALSE(applied.at("status").contains("hard"));

  EXPECT_THROW(ZoneStatusPatch(zone, o, "yesterday"), std::invalid_argument);
}

TEST(MetaHelpers, MergePatchReplacingAndIsControlledBy) {
  EXPECT_EQ(api::MergePatchReplacing(Json{{"a", 1}, {"m", {{"x", 1}, {"y", 2}}}, {"l", {1, 2}}},
                                     Json{{"m", {{"x", 3}}}, {"l", {1}}}),
            (Json{{"a", nullptr}, {"m", {{"x", 3}, {"y", nullptr}}}, {"l", {1}}}));
  const api::Zone zone = Sample("zone-development-alice.yaml");
  const Json child = *DesiredZoneChildren(zone).resource_quota;
  EXPECT_TRUE(api::IsControlledBy(child, "uid-dev-alice"));
  EXPECT_FALSE(api::IsControlledBy(child, "other"));
  EXPECT_FALSE(api::IsControlledBy(Json{{"metadata", {{"name", "x"}}}}, "uid-dev-alice"));
}

}  // namespace
}  // namespace millrace::reconcilers
