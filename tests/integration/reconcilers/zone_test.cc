// Zones end to end: the real millrace-controller binary against a real control plane.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace millrace::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

Cluster& C() { return Cluster::Get(); }

class ZoneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    C().InstallCrds();
    op_ = std::make_unique<Subprocess>(
        std::vector<std::string>{MILLRACE_CONTROLLER_BINARY, "--kubeconfig=" + C().kubeconfig(),
                                 "--bind-address=127.0.0.1:0"},
        C().state_dir() + "/zone-operator.log");
  }
  static void TearDownTestSuite() { op_.reset(); }

  void TearDown() override {
    if (HasFailure()) std::cerr << "operator log:\n" << op_->Log() << "\n";
  }

  static json Zone(const std::string& name) { return C().KubectlJson({"get", "zone", name}); }
  // Waits for the zone's condition `type` to have `status`; returns the zone as last seen.
  static json WaitForCondition(const std::string& name, const std::string& type,
                               const std::string& status, seconds timeout = seconds(60)) {
    json zone;
    WaitFor(
        [&] {
          const auto r = C().Kubectl({"get", "zone", name, "-o", "json"});
          if (r.exit_code != 0) return false;
          zone = json::parse(r.out);
          // A zone the operator has not reached yet has no status: wait, do not throw.
          for (const auto& c : Conditions(zone)) {
            if (c["type"] == type && c["status"] == status) return true;
          }
          return false;
        },
        timeout);
    return zone;
  }
  static json Conditions(const json& zone) {
    return zone.value("status", json::object()).value("conditions", json::array());
  }
  static std::string Condition(const json& zone, const std::string& type) {
    for (const auto& c : Conditions(zone)) {
      if (c["type"] == type) return c["status"].get<std::string>() + ": " + c.value("message", "");
    }
    return "<no " + type + " condition>";
  }

  static std::unique_ptr<Subprocess> op_;
};
std::unique_ptr<Subprocess> ZoneTest::op_;

std::string DevZone(const std::string& name, const std::string& user,
                    const std::string& policy = "Delete") {
  return R"(
apiVersion: millrace.io/v1alpha1
kind: Zone
metadata: {name: )" +
         name + R"(}
spec:
  type: Development
  owner: {kind: User, name: )" +
         user + R"(}
  limits: {cpu: "2", memory: 4Gi, pods: 10}
  defaults:
    requests: {cpu: 300m, memory: 256Mi}
    limits: {cpu: 500m, memory: 512Mi}
  deletionPolicy: )" +
         policy + "\n";
}

// A pod with an optional cpu request and limit (a request above the zone's default limit needs
// its own limit, or the LimitRange's default limit makes the pod invalid before quota is checked).
std::string Pod(const std::string& name, const std::string& cpu_request,
                const std::string& cpu_limit = "") {
  std::string resources;
  if (!cpu_request.empty()) {
    resources = "\n    resources: {requests: {cpu: \"" + cpu_request + "\"}" +
                (cpu_limit.empty() ? "" : ", limits: {cpu: \"" + cpu_limit + "\"}") + "}";
  }
  return R"(
apiVersion: v1
kind: Pod
metadata: {name: )" +
         name + R"(}
spec:
  containers:
  - name: main
    image: busybox)" +
         resources + "\n";
}

bool ServiceAccountReady(const std::string& ns) {
  return C().Kubectl({"get", "serviceaccount", "default", "-n", ns}).exit_code == 0;
}

TEST_F(ZoneTest, DevelopmentZoneGivesItsOwnerAccessQuotaAndDefaults) {
  C().Apply(DevZone("alice", "alice"));
  C().Apply(DevZone("bob", "bob"));
  json alice = WaitForCondition("alice", "Ready", "True");
  ASSERT_EQ(alice["status"].value("phase", ""), "Active") << alice.dump(2);
  EXPECT_EQ(alice["status"]["namespace"], "alice");
  ASSERT_TRUE(WaitForCondition("bob", "Ready", "True").is_object());
  ASSERT_TRUE(WaitFor([] { return ServiceAccountReady("alice"); }, seconds(30)));

  // alice may create pods in her zone, and not in bob's.
  const auto own =
      C().Kubectl({"--as=alice", "apply", "-n", "alice", "-f", "-"}, Pod("no-requests", ""));
  EXPECT_EQ(own.exit_code, 0) << own.err;
  const auto other =
      C().Kubectl({"--as=alice", "apply", "-n", "bob", "-f", "-"}, Pod("intruder", ""));
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.err.find("forbidden"), std::string::npos) << other.err;

  // A pod without requests got the zone's defaults.
  const json pod = C().KubectlJson({"get", "pod", "no-requests", "-n", "alice"});
  const json& resources = pod["spec"]["containers"][0]["resources"];
  EXPECT_EQ(resources["requests"]["cpu"], "300m") << resources.dump();
  EXPECT_EQ(resources["limits"]["memory"], "512Mi") << resources.dump();

  // A pod beyond the zone's limits is rejected by the API server's quota admission.
  const auto big =
      C().Kubectl({"--as=alice", "apply", "-n", "alice", "-f", "-"}, Pod("too-big", "3", "3"));
  EXPECT_NE(big.exit_code, 0);
  EXPECT_NE(big.err.find("exceeded quota"), std::string::npos) << big.err;

  // Status shows the quota's hard limits and usage.
  ASSERT_TRUE(WaitFor(
      [&] {
        alice = Zone("alice");
        // status.used appears once the quota has counted the pods; wait for it, not only its value.
        return alice["status"].value("used", json::object()).value("requests.cpu", "") == "300m";
      },
      seconds(60)))
      << alice["status"].dump(2);
  EXPECT_EQ(alice["status"]["hard"].value("requests.cpu", ""), "2");
}

TEST_F(ZoneTest, GuaranteesBeyondClusterCapacityAreNotReadyUntilTheyShrink) {
  // The three kwok nodes have 16 CPU each: 48 in all.
  const auto zone = [](const std::string& cpu) {
    return R"(
apiVersion: millrace.io/v1alpha1
kind: Zone
metadata: {name: capacity}
spec:
  type: Deployment
  owner: {kind: User, name: dana}
  limits: {cpu: "100", memory: 400Gi}
  guarantees: {cpu: ")" +
           cpu + R"(", memory: 1Gi}
  deletionPolicy: Delete
)";
  };
  C().Apply(zone("60"));
  json z = WaitForCondition("capacity", "GuaranteeSatisfied", "False");
  EXPECT_EQ(Condition(z, "GuaranteeSatisfied").find("False"), 0U) << z["status"].dump(2);
  EXPECT_NE(Condition(z, "GuaranteeSatisfied").find("cpu"), std::string::npos);
  EXPECT_NE(Condition(z, "Ready").find("False"), std::string::npos);

  C().Apply(zone("8"));
  z = WaitForCondition("capacity", "Ready", "True");
  EXPECT_EQ(Condition(z, "GuaranteeSatisfied").find("True"), 0U) << z["status"].dump(2);
  C().Kubectl({"delete", "zone", "capacity", "--wait=false"});
}

TEST_F(ZoneTest, HandDeletedQuotaIsRestored) {
  C().Apply(DevZone("drift", "erin"));
  ASSERT_TRUE(WaitForCondition("drift", "Ready", "True").is_object());
  const json quota = C().KubectlJson({"get", "resourcequota", "zone-quota", "-n", "drift"});
  ASSERT_TRUE(quota.is_object());
  ASSERT_EQ(C().Kubectl({"delete", "resourcequota", "zone-quota", "-n", "drift"}).exit_code, 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto r = C().Kubectl({"get", "resourcequota", "zone-quota", "-n", "drift", "-o",
                                    "jsonpath={.metadata.uid}"});
        return r.exit_code == 0 && !r.out.empty() && r.out != quota["metadata"]["uid"];
      },
      seconds(30)));
  // And a hand-edited RoleBinding subject is put back.
  ASSERT_EQ(C().Kubectl({"patch", "rolebinding", "zone-owner", "-n", "drift", "--type=json", "-p",
                         R"([{"op":"replace","path":"/subjects/0/name","value":"mallory"}])"})
                .exit_code,
            0);
  EXPECT_TRUE(WaitFor(
      [&] {
        const auto r = C().Kubectl({"get", "rolebinding", "zone-owner", "-n", "drift", "-o",
                                    "jsonpath={.subjects[0].name}"});
        return r.out == "erin";
      },
      seconds(30)));
}

TEST_F(ZoneTest, DeletionFollowsThePolicy) {
  C().Apply(DevZone("gone", "frank", "Delete"));
  C().Apply(DevZone("kept", "grace", "Retain"));
  ASSERT_TRUE(WaitForCondition("gone", "Ready", "True").is_object());
  ASSERT_TRUE(WaitForCondition("kept", "Ready", "True").is_object());

  ASSERT_EQ(C().Kubectl({"delete", "zone", "gone", "kept", "--timeout=60s"}).exit_code, 0);
  // Delete: the namespace goes (Terminating or gone).
  EXPECT_TRUE(WaitFor(
      [] {
        const auto r = C().Kubectl({"get", "namespace", "gone", "-o", "jsonpath={.status.phase}"});
        return r.exit_code != 0 || r.out == "Terminating";
      },
      seconds(30)));
  // Retain: the namespace stays, no longer labelled as a zone's.
  const json kept = C().KubectlJson({"get", "namespace", "kept"});
  EXPECT_EQ(kept["status"]["phase"], "Active");
  EXPECT_FALSE(kept["metadata"].value("labels", json::object()).contains("millrace.io/zone"))
      << kept["metadata"].dump(2);
}

TEST_F(ZoneTest, ANamespaceThatIsNotAZonesIsNeverTakenOver) {
  ASSERT_EQ(C().Kubectl({"create", "namespace", "someones"}).exit_code, 0);
  C().Apply(DevZone("someones", "heidi"));
  const json z = WaitForCondition("someones", "NamespaceOwned", "False");
  EXPECT_EQ(z["status"].value("phase", ""), "Failed") << z["status"].dump(2);
  EXPECT_NE(C().Kubectl({"get", "resourcequota", "zone-quota", "-n", "someones"}).exit_code, 0)
      << "nothing is applied into a namespace that is not the zone's";
  C().Kubectl({"delete", "zone", "someones", "--wait=false"});
}

TEST_F(ZoneTest, KubectlGetZonesShowsUsefulColumns) {
  C().Apply(DevZone("columns", "ivan"));
  ASSERT_TRUE(WaitForCondition("columns", "Ready", "True").is_object());
  const auto r = C().Kubectl({"get", "zones", "columns"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* column : {"TYPE", "NAMESPACE", "PHASE", "READY", "AGE"}) {
    EXPECT_NE(r.out.find(column), std::string::npos) << r.out;
  }
  const auto wide = C().Kubectl({"get", "zones", "columns", "-o", "wide"});
  ASSERT_EQ(wide.exit_code, 0) << wide.err;
  for (const char* column : {"CPU", "MEMORY", "GPU"}) {
    EXPECT_NE(wide.out.find(column), std::string::npos) << wide.out;
  }
  EXPECT_NE(r.out.find("Development"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Active"), std::string::npos) << r.out;
  std::cout << r.out;
}

}  // namespace
}  // namespace millrace::testing
