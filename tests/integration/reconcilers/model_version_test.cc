// ModelVersions end to end: the real millrace-controller binary against a real control plane;
// serving pods run on kwok nodes.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cluster.h"
#include "tests/support/operator_test.h"
#include "tests/support/process.h"

namespace millrace::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;

Cluster& C() { return Cluster::Get(); }

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
  ASSERT_EQ(C().Kubectl({"patch", "modelversion", "churn-2", "-n", ns_, "--type=merge", "-p",
                         R"({"spec":{"stage":"Production"}})"})
                .exit_code,
            0);
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

TEST_F(ModelVersionTest, RacingPromotionsEndWithExactlyOneProductionVersion) {
  for (const char* v : {"10", "11", "12"}) C().Apply(Version(v, "Staging"), ns_);
  for (const char* v : {"10", "11", "12"}) {
    ASSERT_EQ(Stage(WaitForStage(std::string("churn-") + v, "Staging")), "Staging");
  }
  // Promote all three at once.
  std::vector<std::unique_ptr<Subprocess>> patches;
  for (const char* v : {"10", "11", "12"}) {
    patches.push_back(std::make_unique<Subprocess>(
        std::vector<std::string>{C().testbed_bin() + "/kubectl", "--kubeconfig=" + C().kubeconfig(),
                                 "patch", "modelversion", std::string("churn-") + v, "-n", ns_,
                                 "--type=merge", "-p", R"({"spec":{"stage":"Production"}})"},
        C().state_dir() + "/race-" + v + ".log"));
  }
  for (auto& p : patches) ASSERT_TRUE(p->Wait(seconds(30)).has_value());

  // Settled: exactly one in Production (status and spec), the stable Service on it, the others
  // archived.
  std::string winner;
  const bool settled = WaitFor(
      [&] {
        int production = 0, archived = 0;
        for (const char* v : {"10", "11", "12"}) {
          const json mv = Get("modelversion", std::string("churn-") + v);
          if (Stage(mv) == "Production" && mv["spec"]["stage"] == "Production") {
            ++production;
            winner = v;
          }
          if (Stage(mv) == "Archived") ++archived;
        }
        return production == 1 && archived == 2 && StableSelects() == winner;
      },
      seconds(90));
  EXPECT_TRUE(settled) << "winner " << winner << ", stable selects " << StableSelects();
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
