#include "crds/defaults.h"

#include <gtest/gtest.h>

#include "tests/unit/crds/testdata.h"

namespace millrace::api {
namespace {

TEST(Defaults, ZoneGetsIsolationRetainAndMemberDefaults) {
  auto z = Zone::FromJson(testing::YamlToJson(R"(
kind: Zone
metadata: {name: p}
spec: {type: Deployment, members: [{name: carol}]}
)")
                              .at(0));
  ASSERT_TRUE(z);
  Default(*z);
  EXPECT_EQ(z->spec.network_isolation, true);
  EXPECT_EQ(z->spec.deletion_policy, DeletionPolicy::kRetain);
  EXPECT_EQ(z->spec.members[0].kind, SubjectKind::kUser);
  EXPECT_EQ(z->spec.members[0].role, MemberRole::kView);
  EXPECT_EQ(api::TargetNamespace(*z), "p");
}

TEST(Defaults, TaskRetriesServiceAndScaling) {
  auto t = Task::FromJson(testing::YamlToJson(R"(
kind: Task
metadata: {name: t}
spec:
  role: Bolt
  input: {stream: {topic: x}}
  image: i
  retries: {limit: 2}
  service: {port: 80}
  scaling: {maxReplicas: 4}
)")
                              .at(0));
  ASSERT_TRUE(t);
  Default(*t);
  const auto& s = t->spec;
  EXPECT_EQ(s.retries->backoff->duration->text, "10s");
  EXPECT_EQ(s.retries->backoff->factor, 2.0);
  EXPECT_EQ(s.retries->backoff->max_duration->value, std::chrono::minutes(10));
  EXPECT_EQ(s.retries->on_failure,
            (std::vector<FailureKind>{FailureKind::kError, FailureKind::kOOMKilled,
                                      FailureKind::kEvicted}));
  EXPECT_EQ(s.service->protocol, Protocol::kTCP);
  EXPECT_EQ(s.scaling->min_replicas, 1);
  EXPECT_EQ(s.scaling->target_cpu_utilization, 80);
  EXPECT_EQ(s.cancel, false);
  EXPECT_TRUE(api::Streaming(s));
}

TEST(Defaults, NothingIsAddedWhereTheSchemaAddsNothing) {
  auto t = Task::FromJson(Json::parse(R"({"spec": {"role": "Spout", "image": "i"}})"));
  ASSERT_TRUE(t);
  Default(*t);
  EXPECT_EQ(t->ToJson()["spec"],
            Json::parse(R"({"role": "Spout", "image": "i", "cancel": false})"));
}

TEST(Defaults, PipelineAndItsStepTasks) {
  auto p = Pipeline::FromJson(testing::YamlToJson(R"(
kind: Pipeline
metadata: {name: p}
spec:
  steps:
  - name: a
    task: {role: Spout, image: i, retries: {limit: 1}}
    registerModel: {model: m, version: "1", artifactUri: "s3://x", format: onnx}
)")
                                  .at(0));
  ASSERT_TRUE(p);
  Default(*p);
  EXPECT_EQ(p->spec.fail_fast, false);
  EXPECT_EQ(p->spec.suspend, false);
  EXPECT_EQ(p->spec.cancel, false);
  EXPECT_EQ(p->spec.steps[0].task.cancel, false);
  EXPECT_TRUE(p->spec.steps[0].task.retries->backoff.has_value());
  EXPECT_EQ(p->spec.steps[0].register_model->stage, Stage::kNone);
}

TEST(Defaults, ModelVersionStageAndServing) {
  auto mv = ModelVersion::FromJson(testing::YamlToJson(R"(
kind: ModelVersion
metadata: {name: m-1}
spec:
  model: m
  version: "1"
  artifact: {uri: "s3://x", format: onnx}
  serving: {image: s, autoscaling: {maxReplicas: 3}}
)")
                                       .at(0));
  ASSERT_TRUE(mv);
  Default(*mv);
  EXPECT_EQ(mv->spec.stage, Stage::kNone);
  EXPECT_EQ(mv->spec.serving->port, 8080);
  EXPECT_EQ(mv->spec.serving->rollout_deadline->text, "10m");
  EXPECT_EQ(mv->spec.serving->autoscaling->min_replicas, 1);
  EXPECT_FALSE(mv->spec.serving->replicas.has_value());
}

}  // namespace
}  // namespace millrace::api
