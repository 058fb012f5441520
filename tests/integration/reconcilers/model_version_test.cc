// ModelVersions end to end: the real millrace-controller binary against a real control plane;
// serving pods run on kwok nodes.
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cluster.h"
#include "tests/support/operator_test.h"
#include "tests/support/process.h"

namespace millrace::testing {
namespace {

class ModelVersionTest : public OperatorTest {
 protected:
  static void SetUpTestSuite() { StartSuite("modelversion-operator.log"); }

  static std::string Stage(const json& mv) { return StatusField(mv, "stage"); }

  json WaitForStage(const std::string& name, const std::string& stage,
                    seconds timeout = seconds(90)) const {
    json mv;
    WaitFor(
        [&] {
          mv = Get("modelversion", name);
          return Stage(mv) == stage;
        },
        timeout);
    return mv;
  }

  std::string StableSelects() const {
    const json svc = Get("service", "churn");
    if (!svc.is_object()) return "";
    return StringAt(svc["spec"].value("selector", json::object()), "millrace.io/model-version");
  }
};

std::string Version(const std::string& version, const std::string& stage,
                    const std::string& extra = "") {
  return R"(
apiVersion: millrace.io/v1alpha1
kind: ModelVersion
metadata: {name: churn-)" +
         version + R"(}
spec:
  model: churn
  version: ")" +
         version + R"("
  artifact: {uri: "s3://models/churn/)" +
         version + R"(/model.onnx", format: onnx}
  metrics: {accuracy: 0.91}
  stage: )" +
         stage + R"(
  serving: {image: "server:1", port: 9000}
)" + extra;
}

TEST_F(ModelVersionTest, PromotingV2ArchivesV1AndMovesTheStableService) {
  C().Apply(Version("1", "Production"), ns_);
  json v1 = WaitForStage("churn-1", "Production");
  ASSERT_EQ(Stage(v1), "Production") << v1.dump(2);
  EXPECT_EQ(StableSelects(), "1");
  EXPECT_EQ(v1["status"]["stableUrl"], "http://churn." + ns_ + ".svc:9000");

  C().Apply(Version("2", "Staging"), ns_);
  ASSERT_EQ(Stage(WaitForStage("churn-2", "Staging")), "Staging");
  ASSERT_EQ(MergePatch("modelversion", "churn-2", R"({"spec":{"stage":"Production"}})"), 0);
  const json v2 = WaitForStage("churn-2", "Production");
  ASSERT_EQ(Stage(v2), "Production") << v2.dump(2);
  EXPECT_EQ(v2["status"]["previousProductionVersion"], "1");
  EXPECT_TRUE(WaitFor([&] { return StableSelects() == "2"; }, seconds(30)));
  v1 = WaitForStage("churn-1", "Archived");
  EXPECT_EQ(Stage(v1), "Archived") << v1.dump(2);
  EXPECT_EQ(v1["spec"]["stage"], "Archived");
  EXPECT_TRUE(WaitFor([&] { return !Get("deployment", "churn-1").is_object(); }, seconds(30)))
      << "an archived version is not served";
  // Both transitions are in status and in events.
  EXPECT_EQ(v1["status"]["stageTransitions"].back()["stage"], "Archived");
  EXPECT_EQ(v2["status"]["stageTransitions"].back()["stage"], "Production");
  const auto r1 = EventReasons("churn-1"), r2 = EventReasons("churn-2");
  EXPECT_NE(std::find(r1.begin(), r1.end(), "StageChanged"), r1.end());
  EXPECT_NE(std::find(r2.begin(), r2.end(), "Promoted"), r2.end());
}

// `kubectl get <what> -n ns --watch` printing `jsonpath` for every event, into a log file.
std::unique_ptr<Subprocess> Watch(const std::string& ns, const std::string& what,
                                  const std::string& jsonpath, const std::string& log) {
  return std::make_unique<Subprocess>(
      std::vector<std::string>{C().testbed_bin() + "/kubectl", "--kubeconfig=" + C().kubeconfig(),
                               "get", what, "-n", ns, "--watch", "-o", "jsonpath=" + jsonpath},
      C().state_dir() + "/" + log);
}

std::vector<std::vector<std::string>> Lines(const std::string& text) {
  std::vector<std::vector<std::string>> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string w; words >> w;) fields.push_back(w);
    if (!fields.empty()) lines.push_back(std::move(fields));
  }
  return lines;
}

TEST_F(ModelVersionTest, RacingPromotionsNeverShowTwoProductionVersionsAndNeverFlap) {
  const std::vector<std::string> versions = {"10", "11", "12", "13"};
  for (const auto& v : versions) C().Apply(Version(v, "Staging"), ns_);
  // All four serve (Staging versions are served) before they race: none waits for its rollout.
  for (const auto& v : versions) {
    ASSERT_EQ(Phase(WaitForPhase("modelversion", "churn-" + v, "Serving", seconds(90))), "Serving");
  }
  // Every change of every version's status, and of the stable Service, in the API server's order.
  auto version_watch = Watch(ns_, "modelversions", R"({.metadata.name} {.status.stage}{"\n"})",
                             "race-versions-" + ns_ + ".log");
  auto service_watch =
      Watch(ns_, "services",
            R"({.metadata.name} {.metadata.annotations.millrace\.io/production-version}{"\n"})",
            "race-services-" + ns_ + ".log");
  ASSERT_TRUE(
      WaitFor([&] { return Lines(version_watch->Log()).size() >= versions.size(); }, seconds(10)));

  // Promote all four at once.
  std::vector<std::unique_ptr<Subprocess>> patches;
  for (const auto& v : versions) {
    patches.push_back(std::make_unique<Subprocess>(
        std::vector<std::string>{C().testbed_bin() + "/kubectl", "--kubeconfig=" + C().kubeconfig(),
                                 "patch", "modelversion", "churn-" + v, "-n", ns_, "--type=merge",
                                 "-p", R"({"spec":{"stage":"Production"}})"},
        C().state_dir() + "/race-" + v + ".log"));
  }
  for (auto& p : patches) ASSERT_TRUE(p->Wait(seconds(30)).has_value());

  // Settled: exactly one version in Production, the stable Service on it; each other version
  // either refused (still Staging, Promoted Superseded: it will not try again) or promoted and
  // then archived.
  const auto refused = [](const json& mv) {
    for (const auto& c : mv.value("status", json::object()).value("conditions", json::array())) {
      if (c.value("type", "") == "Promoted" && c.value("reason", "") == "Superseded") return true;
    }
    return false;
  };
  std::string winner;
  const bool settled = WaitFor(
      [&] {
        int production = 0, other = 0;
        for (const auto& v : versions) {
          const json mv = Get("modelversion", "churn-" + v);
          if (Stage(mv) == "Production" && mv["spec"]["stage"] == "Production") {
            ++production;
            winner = v;
          } else if (Stage(mv) == "Archived" || (Stage(mv) == "Staging" && refused(mv))) {
            ++other;
          }
        }
        return production == 1 && other == 3 && StableSelects() == winner;
      },
      seconds(90));
  ASSERT_TRUE(settled) << "winner " << winner << ", stable selects " << StableSelects();
  // The watches have printed the settled state.
  ASSERT_TRUE(WaitFor(
      [&] {
        return version_watch->Log().find("churn-" + winner + " Production") != std::string::npos &&
               service_watch->Log().find("churn " + winner) != std::string::npos;
      },
      seconds(10)));

  // At no instant two versions in Production.
  std::map<std::string, std::string> stage;
  std::set<std::string> ever_production;
  for (const auto& fields : Lines(version_watch->Log())) {
    stage[fields[0]] = fields.size() > 1 ? fields[1] : "";
    int production = 0;
    for (const auto& [name, s] : stage) {
      if (s == "Production") {
        ++production;
        ever_production.insert(name);
      }
    }
    ASSERT_LE(production, 1) << "two versions in Production at once:\n" << version_watch->Log();
  }
  // The stable Service changed once per completed promotion, and never back.
  std::vector<std::string> holders;
  for (const auto& fields : Lines(service_watch->Log())) {
    if (fields[0] != "churn" || fields.size() < 2) continue;
    if (holders.empty() || holders.back() != fields[1]) holders.push_back(fields[1]);
  }
  ASSERT_FALSE(holders.empty()) << service_watch->Log();
  EXPECT_EQ(holders.back(), winner);
  std::set<std::string> seen;
  for (const auto& h : holders) {
    EXPECT_TRUE(seen.insert(h).second) << "traffic went back to version " << h;
    EXPECT_TRUE(ever_production.contains("churn-" + h))
        << "traffic moved to version " << h << ", which never finished its promotion";
  }
  std::cout << "[ metric ] racing promotions: stable Service holders " << holders.size()
            << ", winner " << winner << "\n";
}

TEST_F(ModelVersionTest, AVersionFailingItsGateIsNotPromotedAndSaysWhy) {
  C().Apply(Version("5", "Production",
                    "  gates: {metrics: [{name: accuracy, operator: Ge, threshold: 0.95}]}\n"),
            ns_);
  json mv;
  ASSERT_TRUE(WaitFor(
      [&] {
        mv = Get("modelversion", "churn-5");
        if (!mv.is_object() || !mv.contains("status")) return false;
        for (const auto& c : mv["status"].value("conditions", json::array())) {
          if (c["type"] == "Promoted" && c["reason"] == "GateFailed") return true;
        }
        return false;
      },
      seconds(60)))
      << mv.dump(2);
  EXPECT_EQ(Stage(mv), "None");
  for (const auto& c : mv["status"]["conditions"]) {
    if (c["type"] == "Promoted") {
      EXPECT_THAT(c["message"].get<std::string>(),
                  HasSubstr("metric accuracy = 0.91 does not satisfy Ge 0.95"));
    }
  }
  EXPECT_FALSE(Get("service", "churn").is_object());
}

TEST_F(ModelVersionTest, ChangingTheArtifactOfARegisteredVersionIsRefused) {
  C().Apply(Version("6", "None"), ns_);
  const auto r = C().Kubectl({"patch", "modelversion", "churn-6", "-n", ns_, "--type=merge", "-p",
                              R"({"spec":{"artifact":{"uri":"s3://elsewhere/model.onnx"}}})"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("the artifact of a registered version is immutable"));
}

}  // namespace
}  // namespace millrace::testing
