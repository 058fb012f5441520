// The operator installed as users install it, on the real node: its image built from the project's
// Dockerfile (scripts/testbed/build-operator-image) and loaded into the node's containerd, then
// `helm install` of charts/millrace, or `kubectl apply -k config/default`, into millrace-system,
// which enforces Pod Security "restricted". The API server reaches the webhooks through their
// Service (kube-proxy on the node), with the certificates the install made.
#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace millrace::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;

const std::string kNamespace = "millrace-system";

// Prints the path a build script prints on its last line; fails the test when it fails.
std::string Built(const std::string& script) {
  const auto r = RunProcess({SourceDir() + "/scripts/testbed/" + script});
  EXPECT_EQ(r.exit_code, 0) << script << ": " << r.err;
  std::string path = r.out;
  while (!path.empty() && path.back() == '\n') path.pop_back();
  return path;
}

class RealInstallTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(C().Kubectl({"get", "node", "millrace-node"}).exit_code, 0)
        << "this binary needs a cluster with a real node (MILLRACE_TEST_CLUSTER_ARGS=--real-node)";
    const std::string archive = Built("build-operator-image");
    const auto load =
        RunProcess({SourceDir() + "/scripts/cluster", "load-image", "--name", C().name(), archive});
    ASSERT_EQ(load.exit_code, 0) << load.err;
  }

  void SetUp() override {
    ASSERT_EQ(C().Kubectl({"create", "namespace", kNamespace}).exit_code, 0);
    ASSERT_EQ(C().Kubectl({"label", "namespace", kNamespace,
                           "pod-security.kubernetes.io/enforce=restricted",
                           "pod-security.kubernetes.io/enforce-version=latest"})
                  .exit_code,
              0);
  }

  // Whatever the test installed goes, so a failure does not leave webhooks (failurePolicy Fail)
  // or the namespace behind for the next test.
  void TearDown() override {
    RunProcess({Built("build-helm"), "uninstall", "millrace", "--namespace", kNamespace,
                "--kubeconfig", C().kubeconfig(), "--wait", "--ignore-not-found"});
    C().Kubectl({"delete", "-k", SourceDir() + "/config/default", "--ignore-not-found", "--wait"});
    C().Kubectl({"delete", "namespace", kNamespace, "--ignore-not-found", "--wait"});
  }

  // The operator's pods, once `replicas` of them are Ready (as last seen otherwise).
  static std::vector<json> ReadyPods(size_t replicas) {
    std::vector<json> ready;
    WaitFor(
        [&] {
          ready.clear();
          const json pods = C().KubectlJson({"get", "pods", "-n", kNamespace, "-l",
                                             "app.kubernetes.io/name=millrace", "-o", "json"});
          for (const auto& p : pods["items"]) {
            for (const auto& c : p["status"].value("conditions", json::array())) {
              if (c["type"] == "Ready" && c["status"] == "True") ready.push_back(p);
            }
          }
          return ready.size() == replicas;
        },
        seconds{240});
    return ready;
  }

  // The Lease's holder names one of `pods`: one replica leads.
  static void ExpectOneLeads(const std::vector<json>& pods) {
    std::string holder;
    WaitFor(
        [&] {
          const auto r = C().Kubectl({"get", "lease", "millrace-controller", "-n", kNamespace, "-o",
                                      "jsonpath={.spec.holderIdentity}"});
          holder = r.out;
          return r.exit_code == 0 && !holder.empty();
        },
        seconds{60});
    const bool a_pod = std::ranges::any_of(pods, [&](const json& p) {
      return holder.starts_with(p["metadata"]["name"].get<std::string>());
    });
    EXPECT_TRUE(a_pod) << "lease held by " << holder;
  }

  // A Pipeline with a dependency cycle is refused at `kubectl apply` with the field and the reason:
  // only the operator's webhook, reached through its Service, says this (the schema admits cycles).
  // Until kube-proxy has the new endpoints, the Service refuses connections (the API server then
  // fails the call, InternalError); the refusal is waited for.
  static void ExpectBadSpecRefused() {
    const std::string ns = C().CreateNamespace("bad-spec");
    const std::string cycle = "spec.steps[0].dependsOn: Invalid value: dependency cycle";
    ProcessResult r;
    WaitFor(
        [&] {
          r = C().Kubectl({"apply", "-n", ns, "-f", "-"}, R"(
apiVersion: millrace.io/v1alpha1
kind: Pipeline
metadata: {name: bad}
spec:
  steps:
  - {name: a, dependsOn: [b], task: {role: Spout, image: busybox:1.35}}
  - {name: b, dependsOn: [a], task: {role: Spout, image: busybox:1.35}}
)");
          return r.exit_code == 0 || r.err.find(cycle) != std::string::npos;
        },
        seconds{60});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr(cycle));
  }
};

TEST_F(RealInstallTest, HelmInstallsTwoReplicasUnderRestrictedPodSecurityAndTheWebhooksAnswer) {
  const std::string helm = Built("build-helm");
  const auto install =
      RunProcess({helm, "install", "millrace", SourceDir() + "/charts/millrace", "--namespace",
                  kNamespace, "--kubeconfig", C().kubeconfig(), "--wait", "--timeout", "5m"});
  ASSERT_EQ(install.exit_code, 0) << install.err;
  const auto pods = ReadyPods(2);
  ASSERT_EQ(pods.size(), 2U) << "two replicas Ready";
  ExpectOneLeads(pods);
  ExpectBadSpecRefused();

  const auto uninstall = RunProcess({helm, "uninstall", "millrace", "--namespace", kNamespace,
                                     "--kubeconfig", C().kubeconfig(), "--wait"});
  EXPECT_EQ(uninstall.exit_code, 0) << uninstall.err;
}

TEST_F(RealInstallTest, KustomizeInstallsTheOperatorAndTheWebhooksAnswer) {
  const auto apply = C().Kubectl({"apply", "--server-side", "-k", SourceDir() + "/config/default"});
  ASSERT_EQ(apply.exit_code, 0) << apply.err;
  const auto pods = ReadyPods(1);
  ASSERT_EQ(pods.size(), 1U) << "its one replica Ready";
  ExpectOneLeads(pods);
  ExpectBadSpecRefused();
}

}  // namespace
}  // namespace millrace::testing
