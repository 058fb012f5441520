// The install paths against a real API server: `helm lint` and the rendered chart (every
// certificate mode) are accepted, `kubectl apply -k config/default` installs, the chart's and
// config/'s RBAC and webhooks agree, and the operator's ServiceAccount can do what the reconcilers
// need and nothing more (kubectl auth can-i --as), confined by the admission policies to the
// namespaces Zones manage (server-side dry runs --as the ServiceAccount). helm is built from the
// Go module proxy (scripts/testbed/build-helm, cached).
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cluster.h"
#include "tests/support/process.h"
#include "tests/unit/crds/testdata.h"

namespace millrace::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string& Helm() {
  static const std::string helm = [] {
    const auto r = RunProcess({SourceDir() + "/scripts/testbed/build-helm"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string path = r.out;
    while (!path.empty() && path.back() == '\n') path.pop_back();
    return path;
  }();
  return helm;
}

std::string Render(const std::vector<std::string>& set = {},
                   const std::string& ns = "millrace-system") {
  std::vector<std::string> argv = {
      Helm(),        "template", "millrace",      SourceDir() + "/charts/millrace",
      "--namespace", ns,         "--include-crds"};
  for (const auto& s : set) argv.insert(argv.end(), {"--set", s});
  const auto r = RunProcess(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

std::vector<json> Objects(const std::string& yaml) {
  std::vector<json> out;
  for (json& doc : api::testing::YamlToJson(yaml)) {
    if (doc.is_object()) out.push_back(std::move(doc));
  }
  return out;
}

json Find(const std::vector<json>& objects, const std::string& kind) {
  for (const auto& o : objects) {
    if (o.value("kind", "") == kind) return o;
  }
  return nullptr;
}

json FindNamed(const std::vector<json>& objects, const std::string& kind, const std::string& name) {
  for (const auto& o : objects) {
    if (o.value("kind", "") == kind && o["metadata"].value("name", "") == name) return o;
  }
  return nullptr;
}

const std::string kServiceAccount = "system:serviceaccount:millrace-system:millrace-controller";

class Install : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    C().Kubectl({"create", "namespace", "millrace-system"});
    C().Kubectl({"create", "namespace", "millrace-helm"});
    // A namespace as a Zone manages it (labelled millrace.io/zone), and one no Zone manages.
    C().Kubectl({"create", "namespace", "confined-zone"});
    C().Kubectl({"label", "namespace", "confined-zone", "millrace.io/zone=confined"});
    C().Kubectl({"create", "namespace", "confined-plain"});
    const auto r = C().Kubectl({"apply", "--server-side", "--field-manager=millrace-test", "-k",
                                SourceDir() + "/config/default"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
};

TEST_F(Install, HelmLintPasses) {
  const auto r = RunProcess({Helm(), "lint", "--strict", SourceDir() + "/charts/millrace"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(Install, TheRenderedChartIsAcceptedByTheApiServerInEveryCertificateMode) {
  for (const auto& values :
       std::vector<std::vector<std::string>>{{},
                                             {"webhook.certificates=self-signed", "replicaCount=1"},
                                             {"grafanaDashboard.enabled=true"}}) {
    SCOPED_TRACE(::testing::PrintToString(values));
    // Into a namespace of its own: config/default's Deployment (another selector) is in
    // millrace-system.
    const std::string rendered = Render(values, "millrace-helm");
    const auto r = C().Kubectl(
        {"apply", "--server-side", "--dry-run=server", "--field-manager=millrace-test", "-f", "-"},
        rendered);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("deployment.apps/millrace-controller serverside-applied"));
  }
  // cert-manager's kinds need its CRDs, absent here: the chart still renders them.
  const auto objects = Objects(Render({"webhook.certificates=cert-manager"}));
  EXPECT_TRUE(Find(objects, "Certificate").is_object());
  EXPECT_EQ(Find(objects, "ValidatingWebhookConfiguration")["metadata"]["annotations"]
                                                           ["cert-manager.io/inject-ca-from"],
            "millrace-system/millrace-webhook");
}

TEST_F(Install, TheChartRunsTwoHardenedReplicasWithAPodDisruptionBudget) {
  const auto objects = Objects(Render());
  const json deployment = Find(objects, "Deployment");
  ASSERT_TRUE(deployment.is_object());
  EXPECT_EQ(deployment["spec"]["replicas"], 2);
  const json& pod = deployment["spec"]["template"]["spec"];
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  const json& container = pod["containers"][0];
  EXPECT_EQ(container["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(container["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(container["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_TRUE(container.contains("livenessProbe"));
  EXPECT_TRUE(container.contains("readinessProbe"));
  EXPECT_TRUE(container["resources"].contains("requests"));
  EXPECT_THAT(container["args"].dump(), HasSubstr("--webhook-cert-dir=/certs"));
  EXPECT_TRUE(Find(objects, "PodDisruptionBudget").is_object());
  // The helm-generated certificate is one: the Secret's CA is the configurations' caBundle.
  const json secret = Find(objects, "Secret");
  ASSERT_TRUE(secret.is_object());
  EXPECT_EQ(
      Find(objects, "ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"],
      secret["data"]["ca.crt"]);
}

// Both installs give the operator's pods ephemeral-storage requests and limits and a
// NetworkPolicy admitting ingress only to the webhook and metrics ports.
TEST_F(Install, TheOperatorsPodsHaveEphemeralStorageBoundsAndAnIngressPolicy) {
  const auto kustomize = Objects(C().Kubectl({"kustomize", SourceDir() + "/config/default"}).out);
  for (const auto& objects : {Objects(Render()), kustomize}) {
    const json deployment = Find(objects, "Deployment");
    ASSERT_TRUE(deployment.is_object());
    const json& resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"];
    EXPECT_TRUE(resources["requests"].contains("ephemeral-storage")) << resources.dump();
    EXPECT_TRUE(resources["limits"].contains("ephemeral-storage")) << resources.dump();
    const json policy = Find(objects, "NetworkPolicy");
    ASSERT_TRUE(policy.is_object());
    EXPECT_EQ(policy["spec"]["podSelector"]["matchLabels"],
              deployment["spec"]["selector"]["matchLabels"]);
    EXPECT_EQ(policy["spec"]["policyTypes"], json::array({"Ingress"}));
    json ports = json::array();
    for (const auto& rule : policy["spec"]["ingress"]) {
      for (const auto& p : rule["ports"]) ports.push_back(p["port"]);
    }
    EXPECT_EQ(ports, json::array({"webhook", "metrics"}));
  }
}

TEST_F(Install, ChartAndKustomizeGrantTheSameRulesAndRegisterTheSameWebhooks) {
  // config/ serves the webhooks with a self-signed certificate: compare the chart in that mode.
  const auto chart = Objects(Render({"webhook.certificates=self-signed", "replicaCount=1"}));
  const auto kustomize = Objects(C().Kubectl({"kustomize", SourceDir() + "/config/default"}).out);
  EXPECT_EQ(FindNamed(chart, "ClusterRole", "millrace-controller")["rules"],
            FindNamed(kustomize, "ClusterRole", "millrace-controller")["rules"]);
  for (const char* kind : {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}) {
    SCOPED_TRACE(kind);
    json a = Find(chart, kind)["webhooks"], b = Find(kustomize, kind)["webhooks"];
    ASSERT_EQ(a.size(), b.size());
    for (auto* hooks : {&a, &b}) {
      for (auto& h : *hooks) h["clientConfig"].erase("caBundle");
    }
    EXPECT_EQ(a, b);
  }
  // The user-facing roles and the admission policies are the same too.
  for (const char* role : {"millrace-view", "millrace-edit", "millrace-admin"}) {
    SCOPED_TRACE(role);
    const json a = FindNamed(chart, "ClusterRole", role),
               b = FindNamed(kustomize, "ClusterRole", role);
    ASSERT_TRUE(a.is_object() && b.is_object());
    EXPECT_EQ(a["rules"], b["rules"]);
    for (const char* to : {"view", "edit", "admin"}) {
      const std::string label = std::string("rbac.authorization.k8s.io/aggregate-to-") + to;
      EXPECT_EQ(a["metadata"]["labels"].value(label, ""), b["metadata"]["labels"].value(label, ""))
          << label;
    }
  }
  for (const char* kind : {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}) {
    for (const char* name : {"millrace-controller-confinement", "millrace-promotion"}) {
      SCOPED_TRACE(std::string(kind) + " " + name);
      const json a = FindNamed(chart, kind, name), b = FindNamed(kustomize, kind, name);
      ASSERT_TRUE(a.is_object() && b.is_object());
      EXPECT_EQ(a["spec"], b["spec"]);
    }
  }
  for (const auto& objects : {chart, kustomize}) {
    for (const auto& o : objects) {
      if (o.value("kind", "") != "ClusterRole") continue;
      for (const auto& rule : o["rules"]) {
        for (const char* field : {"apiGroups", "resources", "verbs"}) {
          for (const auto& v : rule[field]) EXPECT_NE(v, "*") << rule.dump();
        }
      }
    }
  }
  // In the chart's default mode (certificates from Helm) the operator does not touch the webhook
  // configurations: the only difference.
  json without_webhooks = json::array();
  const json rules = FindNamed(kustomize, "ClusterRole", "millrace-controller")["rules"];
  for (const auto& rule : rules) {
    if (rule["apiGroups"][0] != "admissionregistration.k8s.io") without_webhooks.push_back(rule);
  }
  EXPECT_EQ(FindNamed(Objects(Render()), "ClusterRole", "millrace-controller")["rules"],
            without_webhooks);
}

struct Access {
  std::string verb, resource, ns;
};

bool Can(const Access& a) {
  std::vector<std::string> argv = {"auth", "can-i", a.verb, a.resource, "--as=" + kServiceAccount};
  if (a.ns.empty()) {
    argv.push_back("--all-namespaces");
  } else {
    argv.insert(argv.end(), {"-n", a.ns});
  }
  return C().Kubectl(argv).out.starts_with("yes");
}

TEST_F(Install, TheServiceAccountCanDoWhatTheReconcilersNeed) {
  const std::vector<Access> needed = {
      {"watch", "zones.millrace.io", ""},
      {"patch", "tasks.millrace.io", ""},
      {"create", "tasks.millrace.io", ""},
      {"create", "modelversions.millrace.io", ""},
      {"promote", "modelversions.millrace.io", ""},
      {"delete", "pipelines.millrace.io", ""},
      {"patch", "pipelines.millrace.io/status", ""},
      {"patch", "zones.millrace.io/status", ""},
      {"create", "namespaces", ""},
      {"delete", "namespaces", ""},
      {"patch", "resourcequotas", ""},
      {"patch", "limitranges", ""},
      {"create", "rolebindings", ""},
      {"bind", "clusterroles/edit", ""},
      {"patch", "networkpolicies", ""},
      {"create", "priorityclasses", ""},
      {"list", "nodes", ""},
      {"watch", "pods", ""},
      {"create", "jobs.batch", ""},
      {"delete", "jobs.batch", ""},
      {"patch", "deployments.apps", ""},
      {"update", "services", ""},
      {"patch", "horizontalpodautoscalers", ""},
      {"create", "events.events.k8s.io", ""},
      {"create", "leases", "millrace-system"},
      {"update", "leases", "millrace-system"},
      {"update", "validatingwebhookconfigurations/millrace-webhook", ""},
  };
  for (const auto& a : needed) EXPECT_TRUE(Can(a)) << a.verb << " " << a.resource;
}

TEST_F(Install, TheServiceAccountCanDoNothingMore) {
  const std::vector<Access> forbidden = {
      {"get", "secrets", ""},
      {"list", "secrets", "millrace-system"},
      {"create", "pods", ""},
      {"create", "pods/exec", ""},
      {"delete", "pods", ""},
      {"delete", "nodes", ""},
      {"update", "jobs.batch", ""},
      {"create", "clusterroles", ""},
      {"bind", "clusterroles/cluster-admin", ""},
      {"escalate", "clusterroles", ""},
      {"impersonate", "users", ""},
      {"update", "validatingwebhookconfigurations/other", ""},
      {"create", "customresourcedefinitions.apiextensions.k8s.io", ""},
      {"delete", "zones.millrace.io", ""},
      {"create", "leases", "kube-system"},
      {"patch", "validatingadmissionpolicies.admissionregistration.k8s.io", ""},
      {"delete", "validatingadmissionpolicybindings.admissionregistration.k8s.io", ""},
      {"patch", "clusterroles", ""},
      {"create", "clusterrolebindings", ""},
      {"*", "*", ""},
  };
  for (const auto& a : forbidden) EXPECT_FALSE(Can(a)) << a.verb << " " << a.resource;
}

// One write the operator's ServiceAccount tries (server-side dry run: authorization and admission
// run, nothing is stored).
struct Attempt {
  std::string what;
  std::vector<std::string> argv;
  std::string input = {};  // stdin, for `create -f -`
};

std::string Namespace(const std::string& name, bool zone) {
  return R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + name + "\"" +
         (zone ? R"(,"labels":{"millrace.io/zone":")" + name + "\"}" : std::string()) + "}}";
}

std::string PriorityClass(const std::string& name, int64_t value, bool global_default) {
  return R"({"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass","metadata":{"name":")" +
         name + R"("},"value":)" + std::to_string(value) + R"(,"globalDefault":)" +
         (global_default ? "true" : "false") + "}";
}

// Runs `a` as `user` with --dry-run=server; returns kubectl's result.
ProcessResult TryAs(const std::string& user, const Attempt& a) {
  std::vector<std::string> argv = a.argv;
  argv.insert(argv.end(), {"--as=" + user, "--dry-run=server"});
  return C().Kubectl(argv, a.input);
}

// What the reconcilers write, in a namespace a Zone manages; and what would turn the operator
// against the cluster. config/policy/controller_confinement.yaml refuses what RBAC cannot.
// docs/operations.md#confinement lists the same checks.
const std::vector<Attempt>& AllowedInAZone() {
  static const std::vector<Attempt> allowed = {
      {"create a Job in a zone namespace",
       {"create", "job", "j", "--image=busybox", "-n", "confined-zone"}},
      {"create a Deployment in a zone namespace",
       {"create", "deployment", "d", "--image=busybox", "-n", "confined-zone"}},
      {"create a Service in a zone namespace",
       {"create", "service", "clusterip", "s", "--tcp=80:8080", "-n", "confined-zone"}},
      {"create a ResourceQuota in a zone namespace",
       {"create", "quota", "q", "--hard=pods=10", "-n", "confined-zone"}},
      {"bind edit in a zone namespace",
       {"create", "rolebinding", "members", "--clusterrole=edit", "--user=bob", "-n",
        "confined-zone"}},
      {"bind admin to the owner in a zone namespace",
       {"create", "rolebinding", "owner", "--clusterrole=admin", "--user=alice", "-n",
        "confined-zone"}},
      {"label a zone namespace",
       {"label", "namespace", "confined-zone", "pod-security.kubernetes.io/enforce=baseline"}},
      {"delete a zone namespace", {"delete", "namespace", "confined-zone"}},
      {"create a namespace labelled millrace.io/zone",
       {"create", "-f", "-"},
       Namespace("confined-new", true)},
      {"create a zone PriorityClass",
       {"create", "-f", "-"},
       PriorityClass("millrace-zone-confined", 100000, false)},
  };
  return allowed;
}

const std::vector<Attempt>& Refused() {
  static const std::vector<Attempt> refused = {
      {"bind admin in kube-system",
       {"create", "rolebinding", "evil", "--clusterrole=admin",
        "--serviceaccount=millrace-system:millrace-controller", "-n", "kube-system"}},
      {"bind cluster-admin in kube-system",
       {"create", "rolebinding", "evil", "--clusterrole=cluster-admin",
        "--serviceaccount=millrace-system:millrace-controller", "-n", "kube-system"}},
      {"bind cluster-admin in a zone namespace",
       {"create", "rolebinding", "evil", "--clusterrole=cluster-admin", "--user=alice", "-n",
        "confined-zone"}},
      {"create a Job in kube-system",
       {"create", "job", "j", "--image=busybox", "-n", "kube-system"}},
      {"create a Job in a namespace no Zone manages",
       {"create", "job", "j", "--image=busybox", "-n", "confined-plain"}},
      {"create a Deployment in kube-system",
       {"create", "deployment", "d", "--image=busybox", "-n", "kube-system"}},
      {"create a Deployment in default",
       {"create", "deployment", "d", "--image=busybox", "-n", "default"}},
      {"create a Service in kube-system",
       {"create", "service", "clusterip", "s", "--tcp=80:8080", "-n", "kube-system"}},
      {"create a ResourceQuota in kube-system",
       {"create", "quota", "q", "--hard=pods=0", "-n", "kube-system"}},
      {"label kube-system as a zone's",
       {"label", "namespace", "kube-system", "millrace.io/zone=evil"}},
      {"delete a namespace no Zone manages", {"delete", "namespace", "confined-plain"}},
      {"create a namespace without the zone label", {"create", "namespace", "confined-unlabelled"}},
      {"create a global default PriorityClass",
       {"create", "-f", "-"},
       PriorityClass("millrace-zone-evil", 1000, true)},
      {"create a PriorityClass above the zone value",
       {"create", "-f", "-"},
       PriorityClass("millrace-zone-evil", 1000000000, false)},
      {"create a PriorityClass of another name",
       {"create", "-f", "-"},
       PriorityClass("evil", 1000, false)},
  };
  return refused;
}

void ExpectConfined(const std::string& service_account) {
  // A policy just created takes effect once the API server's policy informer has it.
  ASSERT_TRUE(WaitFor(
      [&] {
        return TryAs(service_account, Refused()[3]).err.find("ValidatingAdmissionPolicy") !=
               std::string::npos;
      },
      std::chrono::seconds(30)))
      << Refused()[3].what << " is still allowed";
  for (const auto& a : AllowedInAZone()) {
    const auto r = TryAs(service_account, a);
    EXPECT_EQ(r.exit_code, 0) << "refused: " << a.what << ": " << r.err;
  }
  for (const auto& a : Refused()) {
    const auto r = TryAs(service_account, a);
    EXPECT_NE(r.exit_code, 0) << "allowed: " << a.what;
    EXPECT_NE(r.err.find("forbidden"), std::string::npos) << a.what << ": " << r.err;
  }
}

TEST_F(Install, TheServiceAccountWritesOnlyWhereZonesLive) { ExpectConfined(kServiceAccount); }

// The chart, installed as a release of its own in its default certificate mode: the same
// confinement for its ServiceAccount, and no way to change any webhook configuration.
TEST_F(Install, TheChartsServiceAccountIsConfinedAndCannotEditWebhookConfigurations) {
  const std::vector<std::string> kinds = {"ServiceAccount",
                                          "ClusterRole",
                                          "ClusterRoleBinding",
                                          "Role",
                                          "RoleBinding",
                                          "ValidatingAdmissionPolicy",
                                          "ValidatingAdmissionPolicyBinding"};
  std::string yaml;
  for (const auto& o : Objects(Render({}, "millrace-helm"))) {
    if (std::find(kinds.begin(), kinds.end(), o.value("kind", "")) == kinds.end()) continue;
    json renamed = o;  // release "millrace" in config/'s namespace would share config/'s names
    auto& name = renamed["metadata"]["name"];
    name = "helm-" + name.get<std::string>();
    if (o.contains("roleRef") && o["roleRef"]["name"].get<std::string>().starts_with("millrace-")) {
      renamed["roleRef"]["name"] = "helm-" + o["roleRef"]["name"].get<std::string>();
    }
    if (o.contains("spec") && o["spec"].contains("policyName")) {
      renamed["spec"]["policyName"] = "helm-" + o["spec"]["policyName"].get<std::string>();
    }
    if (o["kind"] == "ServiceAccount") renamed["metadata"]["name"] = o["metadata"]["name"];
    yaml += renamed.dump() + "\n---\n";
  }
  const auto applied =
      C().Kubectl({"apply", "--server-side", "--field-manager=millrace-test", "-f", "-"}, yaml);
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  const std::string helm_sa = "system:serviceaccount:millrace-helm:millrace-controller";
  ASSERT_TRUE(WaitFor(
      [&] {
        return C()
            .Kubectl(
                {"auth", "can-i", "create", "jobs.batch", "-n", "confined-zone", "--as=" + helm_sa})
            .out.starts_with("yes");
      },
      std::chrono::seconds(30)));
  ExpectConfined(helm_sa);
  for (const char* kind : {"validatingwebhookconfiguration", "mutatingwebhookconfiguration"}) {
    const auto r = TryAs(helm_sa, {kind,
                                   {"patch", kind, "millrace-webhook", "--type=merge", "-p",
                                    R"({"metadata":{"labels":{"evil":"true"}}})"}});
    EXPECT_NE(r.exit_code, 0) << kind;
    EXPECT_NE(r.err.find("forbidden"), std::string::npos) << kind << ": " << r.err;
  }
}

}  // namespace
}  // namespace millrace::testing
