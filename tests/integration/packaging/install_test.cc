// The install paths against a real API server: `helm lint` and the rendered chart (every
// certificate mode) are accepted, `kubectl apply -k config/default` installs, the chart's and
// config/'s RBAC and webhooks agree, and the operator's ServiceAccount can do what the reconcilers
// need and nothing more (kubectl auth can-i --as). helm is built from the Go module proxy
// (scripts/testbed/build-helm, cached).
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

Cluster& C() { return Cluster::Get(); }

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

const std::string kServiceAccount = "system:serviceaccount:millrace-system:millrace-controller";

class Install : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    C().Kubectl({"create", "namespace", "millrace-system"});
    C().Kubectl({"create", "namespace", "millrace-helm"});
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

TEST_F(Install, ChartAndKustomizeGrantTheSameRulesAndRegisterTheSameWebhooks) {
  const auto chart = Objects(Render());
  const auto kustomize = Objects(C().Kubectl({"kustomize", SourceDir() + "/config/default"}).out);
  EXPECT_EQ(Find(chart, "ClusterRole")["rules"], Find(kustomize, "ClusterRole")["rules"]);
  for (const char* kind : {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}) {
    SCOPED_TRACE(kind);
    json a = Find(chart, kind)["webhooks"], b = Find(kustomize, kind)["webhooks"];
    ASSERT_EQ(a.size(), b.size());
    for (auto* hooks : {&a, &b}) {
      for (auto& h : *hooks) h["clientConfig"].erase("caBundle");
    }
    EXPECT_EQ(a, b);
  }
  for (const auto& rule : Find(chart, "ClusterRole")["rules"]) {
    for (const char* field : {"apiGroups", "resources", "verbs"}) {
      for (const auto& v : rule[field]) EXPECT_NE(v, "*") << rule.dump();
    }
  }
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
      {"*", "*", ""},
  };
  for (const auto& a : forbidden) EXPECT_FALSE(Can(a)) << a.verb << " " << a.resource;
}

}  // namespace
}  // namespace millrace::testing
