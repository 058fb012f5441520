// Zones end to end: the real millrace-controller binary against a real control plane.
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/cluster.h"
#include "tests/support/operator_test.h"
#include "tests/support/process.h"

namespace millrace::testing {
namespace {

class ZoneTest : public OperatorTest {
 protected:
  static void SetUpTestSuite() { StartSuite("zone-operator.log"); }
  // Zones are cluster-scoped: tests name their own namespaces, not a per-test one.
  void SetUp() override {}

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
};

// A Zone named `name` of `type` owned by the User `owner`; `rest` is the remaining spec lines.
std::string ZoneOf(const std::string& name, const std::string& type, const std::string& owner,
                   const std::string& rest) {
  return "apiVersion: millrace.io/v1alpha1\nkind: Zone\nmetadata: {name: " + name +
         "}\nspec:\n  type: " + type + "\n  owner: {kind: User, name: " + owner + "}\n" + rest;
}

std::string DevZone(const std::string& name, const std::string& user,
                    const std::string& policy = "Delete") {
  return ZoneOf(name, "Development", user, R"(  limits: {cpu: "2", memory: 4Gi, pods: 10}
  defaults:
    requests: {cpu: 300m, memory: 256Mi}
    limits: {cpu: 500m, memory: 512Mi}
  deletionPolicy: )" + policy + "\n");
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

// A limit taken out of the Zone's spec is taken out of its ResourceQuota (the quota still held it,
// so comparing the cached quota with the desired one alone saw nothing to write).
TEST_F(ZoneTest, ALimitRemovedFromTheSpecIsRemovedFromTheQuota) {
  C().Apply(DevZone("shrink", "kim"));
  ASSERT_TRUE(WaitForCondition("shrink", "Ready", "True").is_object());
  const auto hard = [] {
    const auto r = C().Kubectl(
        {"get", "resourcequota", "zone-quota", "-n", "shrink", "-o", "jsonpath={.spec.hard}"});
    return r.exit_code == 0 ? json::parse(r.out.empty() ? "{}" : r.out) : json::object();
  };
  ASSERT_TRUE(WaitFor([&] { return hard().contains("pods"); }, seconds(30))) << hard().dump();
  ASSERT_EQ(C().Kubectl({"patch", "zone", "shrink", "--type=json", "-p",
                         R"([{"op":"remove","path":"/spec/limits/pods"}])"})
                .exit_code,
            0);
  EXPECT_TRUE(WaitFor([&] { return !hard().contains("pods") && hard().contains("limits.cpu"); },
                      seconds(30)))
      << hard().dump();
}

// A Zone whose stored spec no longer decodes (written behind the API server's back here, as an
// older schema might have left it) is still deleted: its finalizer goes, its namespace is kept.
TEST_F(ZoneTest, AZoneWhoseSpecDoesNotDecodeIsStillDeleted) {
  C().Apply(DevZone("garbled", "lee", "Delete"));
  ASSERT_TRUE(WaitForCondition("garbled", "Ready", "True").is_object());
  json stored = C().KubectlJson({"get", "zone", "garbled", "-o", "json"});
  stored["spec"]["type"] = "Bogus";
  stored["metadata"].erase("resourceVersion");
  stored.erase("status");
  C().EtcdPut("/registry/millrace.io/zones/garbled", stored.dump());
  ASSERT_TRUE(WaitFor(
      [] {
        return C().Kubectl({"get", "zone", "garbled", "-o", "jsonpath={.spec.type}"}).out ==
               "Bogus";
      },
      seconds(30)));
  ASSERT_EQ(C().Kubectl({"delete", "zone", "garbled", "--wait=false"}).exit_code, 0);
  EXPECT_TRUE(WaitFor(
      [] {
        return C().Kubectl({"get", "zone", "garbled"}).exit_code != 0;
      },
      seconds(30)))
      << C().Kubectl({"get", "zone", "garbled", "-o", "yaml"}).out << Tail(op_->Log());
  // Its deletionPolicy could not be read: the namespace is kept, as Retain would.
  const json ns = C().KubectlJson({"get", "namespace", "garbled"});
  EXPECT_EQ(ns["status"]["phase"], "Active");
  EXPECT_FALSE(ns["metadata"].value("labels", json::object()).contains("millrace.io/zone"));
}

// The zone watch lags (a failpoint holds each zone event 3 s) while node changes keep waking a
// zone with guarantees: its finalizer is added once, and not patched again and again on the stale
// resourceVersion the cache still shows (each a Conflict, retried at once).
TEST_F(ZoneTest, TheFinalizerIsAddedOnceWhileTheZoneCacheLags) {
  const OperatorSwap lagging("zone-operator-lagging.log", {},
                             {"MILLRACE_FAILPOINTS=informer.zones.millrace.io.event=sleep(3000)"});
  C().Apply(R"(
apiVersion: millrace.io/v1alpha1
kind: Zone
metadata: {name: guaranteed}
spec:
  type: Deployment
  owner: {kind: User, name: mia}
  limits: {cpu: "4", memory: 8Gi}
  guarantees: {cpu: "1", memory: 1Gi}
)");
  // Node changes enqueue every zone with guarantees.
  for (int i = 0; i < 20; ++i) {
    C().Kubectl(
        {"label", "node", "kwok-node-0", "millrace-test/poke=" + std::to_string(i), "--overwrite"});
  }
  ASSERT_TRUE(WaitForCondition("guaranteed", "Ready", "True", seconds(90)).is_object());
  int finalizer_patches = 0, conflicts = 0;
  for (const json& e : C().AuditLog()) {
    const json& ref = e.value("objectRef", json::object());
    if (ref.value("resource", "") != "zones" || ref.value("name", "") != "guaranteed" ||
        ref.value("subresource", "") == "status" || e.value("verb", "") != "patch" ||
        e.value("userAgent", "").find("millrace-controller") == std::string::npos) {
      continue;
    }
    ++finalizer_patches;
    if (e.value("responseStatus", json::object()).value("code", 0) == 409) ++conflicts;
  }
  std::cout << "[ metric ] finalizer patches " << finalizer_patches << ", conflicts " << conflicts
            << "\n";
  EXPECT_LE(finalizer_patches, 2) << conflicts << " of them conflicts";
  C().Kubectl({"label", "node", "kwok-node-0", "millrace-test/poke-"});
  C().Kubectl({"delete", "zone", "guaranteed", "--wait=false"});
}

// A project's Zone (a Development zone has no members): an owner, an edit and a view member.
std::string TeamZone(const std::string& name, const std::string& owner, const std::string& editor,
                     const std::string& viewer) {
  return ZoneOf(name, "Deployment", owner,
                "  members:\n  - {kind: User, name: " + editor + ", role: edit}\n" +
                    "  - {kind: User, name: " + viewer + ", role: view}\n" +
                    R"(  limits: {cpu: "4", memory: 8Gi, pods: 20}
  egressIsolation: true
  deletionPolicy: Delete
)");
}

std::string MemberTask(const std::string& name) {
  return R"(
apiVersion: millrace.io/v1alpha1
kind: Task
metadata: {name: )" +
         name + R"(}
spec: {role: Spout, image: busybox, output: {batch: {uri: "s3://team/out"}}}
)";
}

std::string MemberPipeline(const std::string& name) {
  return R"(
apiVersion: millrace.io/v1alpha1
kind: Pipeline
metadata: {name: )" +
         name + R"(}
spec:
  steps:
  - {name: ingest, task: {role: Spout, image: busybox}}
  - {name: train, dependsOn: [ingest], task: {role: Bolt, image: busybox}}
)";
}

std::string MemberModelVersion(const std::string& version, const std::string& stage) {
  return R"(
apiVersion: millrace.io/v1alpha1
kind: ModelVersion
metadata: {name: team-model-)" +
         version + R"(}
spec:
  model: team-model
  version: ")" +
         version + R"("
  stage: )" +
         stage +
         R"(
  artifact: {uri: "s3://team/models/)" +
         version + R"(", format: onnx}
)";
}

// Zone members use Millrace through Kubernetes' own roles: config/rbac/user_roles.yaml aggregates
// the millrace.io resources into view, edit and admin, and config/policy/promotion.yaml asks for
// the verb promote (admin only) to move a version into or out of Production.
TEST_F(ZoneTest, MembersUseMillraceInTheirZoneAsTheirRoleAllows) {
  for (const char* file : {"/config/rbac/user_roles.yaml", "/config/policy/promotion.yaml"}) {
    const auto r = C().Kubectl(
        {"apply", "--server-side", "--field-manager=millrace-test", "-f", SourceDir() + file});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  C().Apply(TeamZone("team-a", "ana", "ed", "vic"));
  C().Apply(DevZone("team-b", "bea"));
  for (const char* zone : {"team-a", "team-b"}) {
    ASSERT_TRUE(WaitForCondition(zone, "Ready", "True").is_object()) << zone;
    ASSERT_TRUE(WaitFor([&] { return ServiceAccountReady(zone); }, seconds(30))) << zone;
  }
  const auto as = [](const std::string& user, std::vector<std::string> argv,
                     const std::string& input = "") {
    argv.insert(argv.begin(), "--as=" + user);
    return C().Kubectl(argv, input);
  };
  // The aggregation controller adds the roles' rules to admin, edit and view: wait for it.
  ASSERT_TRUE(WaitFor(
      [&] {
        return as("ana", {"auth", "can-i", "promote", "modelversions.millrace.io", "-n", "team-a"})
                   .out.starts_with("yes") &&
               as("ed", {"auth", "can-i", "create", "pipelines.millrace.io", "-n", "team-a"})
                   .out.starts_with("yes") &&
               as("vic", {"auth", "can-i", "list", "tasks.millrace.io", "-n", "team-a"})
                   .out.starts_with("yes");
      },
      seconds(30)));
  // And the API server enforces the promotion policy just created (its informer has it).
  ASSERT_TRUE(WaitFor(
      [&] {
        return as("ed", {"create", "--dry-run=server", "-n", "team-a", "-f", "-"},
                  MemberModelVersion("0", "Production"))
                   .err.find("needs the verb promote") != std::string::npos;
      },
      seconds(30)));

  // The owner and the edit member create a Task, a Pipeline and a ModelVersion, and they run.
  for (const std::string user : {"ana", "ed"}) {
    SCOPED_TRACE(user);
    for (const auto& manifest : {MemberTask(user + "-task"), MemberPipeline(user + "-pipeline"),
                                 MemberModelVersion(user == "ana" ? "1" : "2", "Staging")}) {
      const auto r = as(user, {"create", "-n", "team-a", "-f", "-"}, manifest);
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
  }
  ns_ = "team-a";
  for (const std::string user : {"ana", "ed"}) {
    SCOPED_TRACE(user);
    EXPECT_EQ(Phase(WaitForPhase("task", user + "-task", "Succeeded", seconds(90))), "Succeeded");
    EXPECT_EQ(Phase(WaitForPhase("pipeline", user + "-pipeline", "Succeeded", seconds(120))),
              "Succeeded");
  }
  for (const char* mv : {"team-model-1", "team-model-2"}) {
    EXPECT_TRUE(WaitFor([&] { return StatusField(Get("modelversion", mv), "stage") == "Staging"; },
                        seconds(60)))
        << mv;
  }

  // Promotion is the owner's: the edit member is refused and told why; the owner promotes.
  const std::string promote = R"({"spec":{"stage":"Production"}})";
  const auto refused = as("ed", {"patch", "modelversion", "team-model-2", "-n", "team-a",
                                 "--type=merge", "-p", promote});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("needs the verb promote"), std::string::npos) << refused.err;
  const auto promoted = as("ana", {"patch", "modelversion", "team-model-2", "-n", "team-a",
                                   "--type=merge", "-p", promote});
  EXPECT_EQ(promoted.exit_code, 0) << promoted.err;
  // Nor may the edit member reach Production through a Schedule whose runs register into it
  // (the operator, which has the verb, would create them); into Staging it may.
  const auto schedule = [](const std::string& stage) {
    return "apiVersion: millrace.io/v1alpha1\nkind: Schedule\nmetadata: {name: ed-nightly}\n"
           "spec:\n  schedule: \"@daily\"\n  pipeline:\n    spec:\n      steps:\n"
           "      - name: train\n        task: {role: Spout, image: busybox}\n"
           "        registerModel: {model: team-model, version: \"5\", artifactUri: \"s3://m/5\", "
           "format: onnx, stage: " +
           stage + "}\n";
  };
  const auto scheduled =
      as("ed", {"create", "--dry-run=server", "-n", "team-a", "-f", "-"}, schedule("Production"));
  EXPECT_NE(scheduled.err.find("needs the verb promote"), std::string::npos) << scheduled.err;
  const auto staged =
      as("ed", {"create", "--dry-run=server", "-n", "team-a", "-f", "-"}, schedule("Staging"));
  EXPECT_EQ(staged.exit_code, 0) << staged.err;
  EXPECT_TRUE(WaitFor(
      [&] { return StatusField(Get("modelversion", "team-model-2"), "stage") == "Production"; },
      seconds(60)));
  // The edit member cancels (a Pipeline is changed, not promoted).
  const auto cancelled = as("ed", {"patch", "pipeline", "ana-pipeline", "-n", "team-a",
                                   "--type=merge", "-p", R"({"spec":{"cancel":true}})"});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;

  // The view member reads and is refused a create.
  const auto listed = as("vic", {"get", "tasks", "-n", "team-a", "-o", "name"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("task.millrace.io/ed-task"), std::string::npos) << listed.out;
  const auto viewer_create =
      as("vic", {"create", "-n", "team-a", "-f", "-"}, MemberTask("vic-task"));
  EXPECT_NE(viewer_create.exit_code, 0);
  EXPECT_NE(viewer_create.err.find("forbidden"), std::string::npos) << viewer_create.err;

  // Nobody reaches another zone, and nobody changes their own Zone (its limits, say).
  for (const std::string user : {"ana", "ed", "vic"}) {
    SCOPED_TRACE(user);
    for (const auto& manifest : {MemberTask(user + "-intruder"), MemberPipeline(user + "-intruder"),
                                 MemberModelVersion("9", "None")}) {
      const auto r = as(user, {"create", "-n", "team-b", "-f", "-"}, manifest);
      EXPECT_NE(r.exit_code, 0);
      EXPECT_NE(r.err.find("forbidden"), std::string::npos) << r.err;
    }
    EXPECT_NE(as(user, {"get", "tasks", "-n", "team-b"}).exit_code, 0);
    const auto raise = as(user, {"patch", "zone", "team-a", "--type=merge", "-p",
                                 R"({"spec":{"limits":{"cpu":"64"}}})"});
    EXPECT_NE(raise.exit_code, 0);
    EXPECT_NE(raise.err.find("forbidden"), std::string::npos) << raise.err;
  }
  EXPECT_EQ(Zone("team-a")["spec"]["limits"]["cpu"], "4");
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The operator under its own ServiceAccount, with config/'s ClusterRole and admission policies: a
// Deployment zone and the work in it run; work outside every zone fails, saying why.
TEST_F(ZoneTest, TheOperatorAsItsServiceAccountRunsZonesAndNothingOutsideThem) {
  ASSERT_EQ(C().Kubectl({"create", "namespace", "millrace-system"}).exit_code, 0);
  for (const char* dir : {"/config/rbac", "/config/policy"}) {
    const auto r = C().Kubectl(
        {"apply", "--server-side", "--field-manager=millrace-test", "-k", SourceDir() + dir});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // The confinement policy just created is in force (the API server's informer has it).
  ASSERT_TRUE(WaitFor(
      [] {
        return C().Kubectl({"create", "job", "probe", "--image=busybox", "-n", "default",
                            "--dry-run=server",
                            "--as=system:serviceaccount:millrace-system:millrace-controller"})
                   .err.find("ValidatingAdmissionPolicy") != std::string::npos;
      },
      seconds(30)));
  const auto token =
      C().Kubectl({"create", "token", "millrace-controller", "-n", "millrace-system"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  const std::string kubeconfig =
      C().KubeconfigFor(Trimmed(token.out), "millrace-controller.kubeconfig");
  const OperatorSwap as_service_account("zone-operator-serviceaccount.log",
                                        {"--kubeconfig=" + kubeconfig}, {});

  C().Apply(TeamZone("confined", "otto", "eva", "val"));
  const json zone = WaitForCondition("confined", "Ready", "True", seconds(90));
  ASSERT_EQ(StatusField(zone, "phase"), "Active") << zone.dump(2);
  ASSERT_TRUE(WaitFor([] { return ServiceAccountReady("confined"); }, seconds(30)));
  for (const char* child : {"resourcequota/zone-quota", "rolebinding/zone-owner",
                            "rolebinding/zone-edit", "networkpolicy/zone-isolation",
                            "networkpolicy/zone-egress", "priorityclass/millrace-zone-confined"}) {
    EXPECT_EQ(C().Kubectl({"get", child, "-n", "confined"}).exit_code, 0) << child;
  }
  ns_ = "confined";
  C().Apply(MemberTask("inside"), "confined");
  EXPECT_EQ(Phase(WaitForPhase("task", "inside", "Succeeded", seconds(90))), "Succeeded");

  ns_ = C().CreateNamespace();
  C().Apply(MemberTask("outside"), ns_);
  const json outside = WaitForPhase("task", "outside", "Failed", seconds(60));
  ASSERT_EQ(Phase(outside), "Failed") << outside.dump(2);
  EXPECT_EQ(outside["status"]["failure"].value("reason", ""), "JobRejected") << outside.dump(2);
  EXPECT_NE(outside["status"]["failure"]
                .value("message", "")
                .find("writes jobs only in namespaces a Zone manages"),
            std::string::npos)
      << outside.dump(2);
  EXPECT_EQ(C().Kubectl({"get", "jobs", "-n", ns_, "-o", "name"}).out, "");

  ASSERT_EQ(C().Kubectl({"delete", "zone", "confined", "--wait=true", "--timeout=90s"}).exit_code,
            0);
  // RBAC refused it nothing along the way (a refusal reads `User "system:serviceaccount:..."
  // cannot <verb> resource ...`).
  const std::string log = op_->Log();
  EXPECT_EQ(log.find(":millrace-controller\\\" cannot "), std::string::npos) << Tail(log);
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
