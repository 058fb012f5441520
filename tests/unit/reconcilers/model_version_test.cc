#include "reconcilers/model_version.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "tests/unit/reconcilers/plan_test.h"

namespace millrace::reconcilers {
namespace {

using namespace plan_test;
using api::ModelVersionPhase;
using api::Stage;

api::ModelVersion Version(const std::string& version, const std::string& stage,
                          const Json& status = nullptr, const std::string& extra = "") {
  Json j = api::testing::YamlToJson(R"(
metadata: {namespace: ml}
spec:
  model: churn
  artifact: {uri: "s3://m/model.onnx", format: onnx}
  metrics: {accuracy: 0.91}
  serving: {image: server:1, port: 9000, rolloutDeadline: 5m}
)" + extra)
               .at(0);
  j["metadata"]["name"] = "churn-" + version;
  j["spec"]["version"] = version;
  j["spec"]["stage"] = stage;
  return api::testing::ObjectFrom<api::ModelVersion>(std::move(j), "uid-" + version, status);
}

Json ReadyDeployment() {
  return Json{{"metadata", {{"generation", 1}}},
              {"spec", {{"replicas", 1}}},
              {"status",
               {{"observedGeneration", 1},
                {"replicas", 1},
                {"readyReplicas", 1},
                {"updatedReplicas", 1},
                {"availableReplicas", 1}}}};
}

Json StableService(const std::string& version) {
  return Json{{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata",
               {{"name", "churn"},
                {"namespace", "ml"},
                {"resourceVersion", "77"},
                {"annotations", {{"millrace.io/production-version", version}}}}},
              {"spec", {{"clusterIP", "10.96.0.9"}, {"selector", Json::object()}}}};
}

const api::Condition* Cond(const ModelVersionPlan& plan, std::string_view type) {
  return api::FindCondition(plan.status.conditions, type);
}

TEST(ModelVersionServing, ChildrenCarryTheModelAndItsArtifact) {
  const auto children = ModelServingChildren(Version("2", "Staging"));
  ASSERT_EQ(children.size(), 2u);
  EXPECT_EQ(children[0]["kind"], "Deployment");
  EXPECT_EQ(children[0]["spec"]["selector"]["matchLabels"]["millrace.io/model-version"], "2");
  const Json& env = children[0]["spec"]["template"]["spec"]["containers"][0]["env"];
  EXPECT_EQ(env[2]["name"], "MILLRACE_MODEL_URI");
  EXPECT_EQ(env[2]["value"], "s3://m/model.onnx");
  EXPECT_EQ(children[1]["spec"]["ports"][0]["port"], 9000);
}

// The plan's status as the version's status, for the next reconcile.
api::ModelVersion After(api::ModelVersion v, const ModelVersionPlan& plan) {
  v.status = plan.status;
  return v;
}

TEST(ModelVersionPromotion, ClaimsThenWaitsForItsRolloutThenTakesTheStableService) {
  api::ModelVersion v2 = Version("2", "Production", Json{{"stage", "Staging"}});
  ObservedModelVersion observed;
  observed.stable_service = StableService("1");
  observed.siblings = {Version("1", "Production", Json{{"stage", "Production"}})};

  const ModelVersionPlan claim = PlanModelVersion(v2, observed, kT0);
  EXPECT_FALSE(claim.stable_service) << "the claim is written before anything moves";
  EXPECT_EQ(Cond(claim, kConditionPromoted)->reason, "RollingOut");
  EXPECT_EQ(claim.requeue_after, seconds{0});
  EXPECT_EQ(claim.apply.size(), 2u) << "the candidate starts serving";
  v2 = After(v2, claim);

  const ModelVersionPlan waiting = PlanModelVersion(v2, observed, kT0);
  EXPECT_FALSE(waiting.stable_service) << "no traffic before the replicas are ready";
  EXPECT_EQ(waiting.status.stage, Stage::kStaging);
  EXPECT_EQ(waiting.requeue_after, seconds{301});

  observed.deployment = ReadyDeployment();
  const ModelVersionPlan switched = PlanModelVersion(v2, observed, kT0 + seconds{20});
  ASSERT_TRUE(switched.stable_service);
  EXPECT_EQ((*switched.stable_service)["metadata"]["resourceVersion"], "77")
      << "the switch is an optimistic update";
  EXPECT_EQ((*switched.stable_service)["spec"]["selector"]["millrace.io/model-version"], "2");
  EXPECT_EQ((*switched.stable_service)["spec"]["clusterIP"], "10.96.0.9");
  EXPECT_EQ(switched.archive, "churn-1");
  EXPECT_EQ(switched.status.stage, Stage::kStaging) << "version 1 still says Production";
  EXPECT_EQ(Cond(switched, kConditionPromoted)->reason, "ArchivingPrevious");
  EXPECT_EQ(switched.status.previous_production_version, "1");
  v2 = After(v2, switched);

  // The Service names version 2 now; version 1 archives itself; then version 2 says Production.
  observed.stable_service = StableService("2");
  observed.siblings = {Version("1", "Archived", Json{{"stage", "Archived"}})};
  const ModelVersionPlan promoted = PlanModelVersion(v2, observed, kT0 + seconds{21});
  EXPECT_FALSE(promoted.stable_service) << "the Service is switched once";
  EXPECT_EQ(promoted.status.stage, Stage::kProduction);
  EXPECT_EQ(Cond(promoted, kConditionPromoted)->reason, "Promoted");
  EXPECT_EQ(promoted.status.stable_url, "http://churn.ml.svc:9000");
  EXPECT_EQ(promoted.status.phase, ModelVersionPhase::kServing);
  ASSERT_FALSE(promoted.status.stage_transitions.empty());
  EXPECT_EQ(promoted.status.stage_transitions.back().stage, Stage::kProduction);
}

TEST(ModelVersionPromotion, TheVersionTheServiceNoLongerNamesLeavesProduction) {
  ObservedModelVersion observed;
  observed.stable_service = StableService("2");
  const ModelVersionPlan plan =
      PlanModelVersion(Version("1", "Production", Json{{"stage", "Production"}}), observed, kT0);
  EXPECT_EQ(plan.status.stage, Stage::kArchived);
  EXPECT_EQ(plan.archive, "churn-1") << "its own spec, so it does not promote itself back";
  EXPECT_FALSE(plan.remove_stable_service) << "the Service is version 2's";
  EXPECT_EQ(Cond(plan, kConditionPromoted)->reason, "Superseded");
}

TEST(ModelVersionPromotion, AVersionAskingWhileAnotherIsBeingPromotedIsRefusedForThisSpec) {
  api::ModelVersion v2 = Version("2", "Production", Json{{"stage", "Staging"}});
  ObservedModelVersion observed;
  observed.stable_service = StableService("1");
  observed.siblings = {Version("1", "Production", Json{{"stage", "Production"}})};
  const ModelVersionPlan claim = PlanModelVersion(v2, observed, kT0);
  v2 = After(v2, claim);

  api::ModelVersion v3 = Version("3", "Production", Json{{"stage", "Staging"}});
  observed.siblings.push_back(v2);
  observed.deployment = ReadyDeployment();
  const ModelVersionPlan refused = PlanModelVersion(v3, observed, kT0);
  EXPECT_FALSE(refused.stable_service);
  EXPECT_EQ(refused.status.stage, Stage::kStaging);
  EXPECT_EQ(Cond(refused, kConditionPromoted)->reason, "Superseded");
  EXPECT_THAT(Cond(refused, kConditionPromoted)->message, HasSubstr("version 2 is being promoted"));
  ASSERT_FALSE(refused.events.empty());
  EXPECT_EQ(refused.events.back().type, "Warning");

  // Not retried for this generation, even once version 2 is done.
  observed.siblings = {Version("2", "Production", Json{{"stage", "Production"}})};
  observed.stable_service = StableService("2");
  const ModelVersionPlan later = PlanModelVersion(After(v3, refused), observed, kT0 + seconds{5});
  EXPECT_FALSE(later.stable_service);
  EXPECT_EQ(later.status.stage, Stage::kStaging);
  EXPECT_EQ(Cond(later, kConditionPromoted)->reason, "Superseded");
}

TEST(ModelVersionPromotion, AFailedGateHoldsTheOldStageAndSaysWhich) {
  const api::ModelVersion v3 = Version("3", "Production", Json{{"stage", "Staging"}},
                                       "  gates: {metrics: [{name: accuracy, operator: Ge, "
                                       "threshold: 0.95}]}\n");
  const ModelVersionPlan plan = PlanModelVersion(v3, {}, kT0);
  EXPECT_FALSE(plan.stable_service);
  EXPECT_EQ(plan.status.stage, Stage::kStaging);
  EXPECT_EQ(Cond(plan, kConditionPromoted)->reason, "GateFailed");
  EXPECT_THAT(Cond(plan, kConditionPromoted)->message,
              HasSubstr("metric accuracy = 0.91 does not satisfy Ge 0.95"));
  ASSERT_FALSE(plan.events.empty());
  EXPECT_EQ(plan.events.back().reason, "GateFailed");
}

TEST(ModelVersionPromotion, ARolloutPastItsDeadlineLeavesTrafficWhereItWas) {
  api::ModelVersion v2 = Version("2", "Production", Json{{"stage", "Staging"}});
  ObservedModelVersion observed;
  observed.stable_service = StableService("1");
  const ModelVersionPlan first = PlanModelVersion(v2, observed, kT0);  // the claim
  const api::ModelVersion later = After(v2, first);
  const ModelVersionPlan before = PlanModelVersion(later, observed, kT0 + seconds{300});
  EXPECT_EQ(Cond(before, kConditionPromoted)->reason, "RollingOut") << "never early";
  const ModelVersionPlan late = PlanModelVersion(later, observed, kT0 + seconds{301});
  EXPECT_FALSE(late.stable_service);
  EXPECT_EQ(Cond(late, kConditionPromoted)->reason, "RolloutTimeout");
  EXPECT_THAT(Cond(late, kConditionPromoted)->message, HasSubstr("stays on version 1"));
  EXPECT_EQ(late.status.stage, Stage::kStaging);
}

TEST(ModelVersionStages, ArchivedVersionsStopServingAndReleaseTheStableService) {
  ObservedModelVersion observed;
  observed.stable_service = StableService("1");
  observed.deployment = ReadyDeployment();
  observed.deployment->merge_patch(
      Json{{"apiVersion", "apps/v1"},
           {"kind", "Deployment"},
           {"metadata", {{"name", "churn-1"}, {"namespace", "ml"}, {"uid", "deployment-uid"}}}});
  const ModelVersionPlan plan =
      PlanModelVersion(Version("1", "Archived", Json{{"stage", "Production"}}), observed, kT0);
  EXPECT_EQ(plan.status.stage, Stage::kArchived);
  EXPECT_EQ(plan.status.phase, ModelVersionPhase::kArchived);
  EXPECT_THAT(plan.apply, IsEmpty());
  ASSERT_EQ(plan.remove.size(), 1u);
  EXPECT_EQ(plan.remove[0].name, "churn-1");
  EXPECT_EQ(plan.remove[0].uid, "deployment-uid");
  EXPECT_TRUE(plan.remove_stable_service);
  EXPECT_FALSE(plan.status.stable_url);
}

Json Child(const std::string& api_version, const std::string& kind, const std::string& name) {
  return Json{{"apiVersion", api_version},
              {"kind", kind},
              {"metadata", {{"name", name}, {"namespace", "ml"}, {"uid", kind + "-uid"}}}};
}

// A field removed from the spec reaches the children: without serving.autoscaling the
// autoscaler goes (the Deployment stays, sized by replicas); without serving, all of them.
TEST(ModelVersionServing, DroppingAutoscalingOrServingRemovesWhatItMade) {
  ObservedModelVersion observed;
  observed.deployment = ReadyDeployment();
  observed.deployment->merge_patch(Child("apps/v1", "Deployment", "churn-6"));
  observed.service = Child("v1", "Service", "churn-6");
  observed.horizontal_pod_autoscaler =
      Child("autoscaling/v2", "HorizontalPodAutoscaler", "churn-6");
  api::ModelVersion v = Version("6", "Staging", Json{{"stage", "Staging"}});
  ASSERT_TRUE(v.spec.serving && !v.spec.serving->autoscaling);

  const ModelVersionPlan replicas = PlanModelVersion(v, observed, kT0);
  EXPECT_EQ(replicas.apply.size(), 2u);
  ASSERT_EQ(replicas.remove.size(), 1u);
  EXPECT_EQ(replicas.remove[0].kind, "HorizontalPodAutoscaler");
  EXPECT_EQ(replicas.remove[0].uid, "HorizontalPodAutoscaler-uid");

  v.spec.serving.reset();
  const ModelVersionPlan unserved = PlanModelVersion(v, observed, kT0);
  EXPECT_THAT(unserved.apply, IsEmpty());
  std::vector<std::string> kinds;
  for (const ChildRef& r : unserved.remove) kinds.push_back(r.kind);
  EXPECT_THAT(kinds, ::testing::ElementsAre("Deployment", "Service", "HorizontalPodAutoscaler"));
}

TEST(ModelVersionStages, NoneIsRegisteredAndNotServed) {
  const ModelVersionPlan plan = PlanModelVersion(Version("4", "None"), {}, kT0);
  EXPECT_EQ(plan.status.phase, ModelVersionPhase::kRegistered);
  EXPECT_EQ(plan.status.stage, Stage::kNone);
  EXPECT_THAT(plan.apply, IsEmpty());
}

// A serving change (a new image) on a Staging version: while a pod of the old spec is left beside
// the new one, readyReplicas says 1 of 1, but the version is Deploying, not Serving, and says why.
TEST(ModelVersionServing, ServingOnlyOnceTheRolloutOfTheNewSpecIsComplete) {
  const api::ModelVersion v = Version("5", "Staging", Json{{"stage", "Staging"}});
  ObservedModelVersion observed;
  observed.deployment = ReadyDeployment();
  observed.deployment->at("metadata")["generation"] = 2;
  observed.deployment->at("status") = Json{{"observedGeneration", 2},
                                           {"replicas", 2},
                                           {"readyReplicas", 1},
                                           {"updatedReplicas", 1},
                                           {"availableReplicas", 1}};
  const ModelVersionPlan rolling = PlanModelVersion(v, observed, kT0);
  EXPECT_EQ(rolling.status.phase, ModelVersionPhase::kDeploying);
  ASSERT_NE(Cond(rolling, kConditionModelReady), nullptr);
  EXPECT_EQ(Cond(rolling, kConditionModelReady)->status, api::ConditionStatus::kFalse);
  EXPECT_EQ(Cond(rolling, kConditionModelReady)->message,
            "waiting for the serving replicas: 1 old replica still running");

  observed.deployment->at("status")["replicas"] = 1;
  const ModelVersionPlan serving = PlanModelVersion(v, observed, kT0);
  EXPECT_EQ(serving.status.phase, ModelVersionPhase::kServing);
}

}  // namespace
}  // namespace millrace::reconcilers
