#include "crds/validation.h"

#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crds/defaults.h"
#include "tests/unit/crds/testdata.h"

namespace millrace::api {
namespace {

using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The errors FromJson, Validate or ValidateUpdate report for a document (and its update).
template <class T>
ValidationErrors ErrorsOf(const std::vector<Json>& docs, bool update) {
  auto obj = T::FromJson(docs.at(0));
  if (!obj) return obj.error();
  Default(*obj);
  if (!update) return Validate(*obj);
  auto next = T::FromJson(docs.at(1));
  if (!next) return next.error();
  Default(*next);
  return ValidateUpdate(*obj, *next);
}

ValidationErrors ErrorsOf(const std::vector<Json>& docs, bool update) {
  const std::string kind = docs.at(0).value("kind", "");
  if (kind == "Zone") return ErrorsOf<Zone>(docs, update);
  if (kind == "Task") return ErrorsOf<Task>(docs, update);
  if (kind == "Pipeline") return ErrorsOf<Pipeline>(docs, update);
  if (kind == "ModelVersion") return ErrorsOf<ModelVersion>(docs, update);
  if (kind == "Schedule") return ErrorsOf<Schedule>(docs, update);
  ADD_FAILURE() << "unknown kind " << kind;
  return {};
}

TEST(Validation, EveryInvalidExampleIsRejectedWithItsPathAndReason) {
  const auto examples = testing::LoadInvalidExamples();
  ASSERT_GE(examples.size(), 20U);
  for (const auto& ex : examples) {
    SCOPED_TRACE(ex.file);
    ASSERT_FALSE(ex.expect_path.empty()) << "missing '# expect: <path> <reason>' header";
    ASSERT_EQ(ex.docs.size(), ex.update ? 2U : 1U);
    const auto errors = ErrorsOf(ex.docs, ex.update);
    EXPECT_THAT(errors, Contains(AllOf(Field(&FieldError::path, ex.expect_path),
                                       Field(&FieldError::reason, ex.expect_reason))))
        << ToString(errors);
  }
}

TEST(Validation, EverySampleAndExampleIsValid) {
  auto samples = testing::LoadSamples();
  for (auto& example : testing::LoadSamples("examples")) samples.push_back(std::move(example));
  ASSERT_GE(samples.size(), 10U);
  for (const auto& sample : samples) {
    SCOPED_TRACE(sample.file);
    ValidationErrors warnings;
    const std::string kind = sample.object.value("kind", "");
    ValidationErrors errors;
    if (kind == "Zone") {
      auto z = ParseAndValidate<Zone>(sample.object, &warnings);
      if (!z) errors = z.error();
    } else if (kind == "Task") {
      auto t = ParseAndValidate<Task>(sample.object, &warnings);
      if (!t) errors = t.error();
    } else if (kind == "Pipeline") {
      auto p = ParseAndValidate<Pipeline>(sample.object, &warnings);
      if (!p) errors = p.error();
    } else if (kind == "Schedule") {
      auto s = ParseAndValidate<Schedule>(sample.object, &warnings);
      if (!s) errors = s.error();
    } else {
      auto m = ParseAndValidate<ModelVersion>(sample.object, &warnings);
      if (!m) errors = m.error();
    }
    EXPECT_THAT(errors, IsEmpty()) << ToString(errors);
    EXPECT_THAT(warnings, IsEmpty()) << ToString(warnings);
  }
}

Pipeline ParsePipeline(const char* yaml) {
  auto docs = testing::YamlToJson(yaml);
  auto p = Pipeline::FromJson(docs.at(0));
  EXPECT_TRUE(p) << ToString(p.error());
  Default(*p);
  return *p;
}

TEST(Validation, CycleMessageNamesThePath) {
  const auto p = ParsePipeline(R"(
kind: Pipeline
metadata: {name: p}
spec:
  steps:
  - {name: x, task: {role: Spout, image: i}}
  - {name: b, dependsOn: [a, x], task: {role: Spout, image: i}}
  - {name: a, dependsOn: [b], task: {role: Spout, image: i}}
)");
  const auto errors = Validate(p);
  ASSERT_EQ(errors.size(), 1U) << ToString(errors);
  EXPECT_EQ(errors[0].path, "spec.steps[1].dependsOn");
  EXPECT_EQ(errors[0].detail, "dependency cycle: b -> a -> b");
}

TEST(Validation, ResultReferencesFollowTransitiveDependencies) {
  const auto p = ParsePipeline(R"(
kind: Pipeline
metadata: {name: p}
spec:
  params: [{name: n, default: "1"}]
  steps:
  - {name: a, task: {role: Spout, image: i, results: [{name: r}]}}
  - {name: b, dependsOn: [a], task: {role: Spout, image: i}}
  - name: c
    dependsOn: [b]
    task:
      role: Spout
      image: "img:{{steps.a.results.r}}"
      args: ["{{params.n}}", "{{pipeline.name}}"]
  finally:
  - name: f
    task:
      role: Spout
      image: i
      args: ["{{steps.a.results.r}}", "{{steps.c.phase}}", "{{pipeline.phase}}"]
)");
  ValidationErrors warnings;
  EXPECT_THAT(Validate(p, &warnings), IsEmpty());
}

TEST(Validation, FanOutStepsUseTheirItemsAndOnlyThem) {
  const auto ok = ParsePipeline(R"(
kind: Pipeline
metadata: {name: p}
spec:
  steps:
  - {name: list, task: {role: Spout, image: i, results: [{name: shards}]}}
  - name: shard
    dependsOn: [list]
    withParam: "{{steps.list.results.shards}}"
    parallelism: 3
    metadata: {labels: {shard: "{{item.id}}"}}
    task: {role: Bolt, image: i, args: ["{{item}}", "{{item.path}}"], results: [{name: rows}]}
  - name: sweep
    matrix: [{name: lr, values: ["0.1", "0.01"]}, {name: batch, values: ["32", "64"]}]
    task: {role: Spout, image: i, args: ["--lr={{item.lr}}", "--batch={{item.batch}}"]}
  - name: each
    withItems: ["a b", "c/d"]
    task: {role: Spout, image: i, args: ["{{item}}"]}
  - name: total
    dependsOn: [shard]
    task: {role: Bolt, image: i, args: ["{{steps.shard.results.rows}}"]}
)");
  ValidationErrors warnings;
  EXPECT_THAT(Validate(ok, &warnings), IsEmpty());

  const auto bad = ParsePipeline(R"(
kind: Pipeline
metadata: {name: p}
spec:
  steps:
  - name: sweep
    matrix: [{name: lr, values: ["0.1"]}]
    when: [{input: "{{item.lr}}", operator: In, values: ["0.1"]}]
    task: {role: Spout, image: i, args: ["{{item}}", "{{item.batch}}"]}
  - name: each
    withItems: ["a"]
    task: {role: Spout, image: i, args: ["{{item.x}}"]}
  - {name: single, parallelism: 2, task: {role: Spout, image: i}}
  - name: serve
    withItems: ["a"]
    task: {role: Bolt, image: i, input: {stream: {topic: t}}}
)");
  const auto errors = Validate(bad);
  const auto has = [&](const std::string& path, std::string_view reason, const std::string& text) {
    EXPECT_THAT(errors, Contains(AllOf(Field(&FieldError::path, path),
                                       Field(&FieldError::reason, std::string(reason)),
                                       Field(&FieldError::detail, HasSubstr(text)))))
        << ToString(errors);
  };
  has("spec.steps[0].when[0].input", reason::kInvalid, "evaluated once for the whole step");
  has("spec.steps[0].task.args[0]", reason::kInvalid, "use {{item.<name>}}");
  has("spec.steps[0].task.args[1]", reason::kNotFound, "no matrix list named \"batch\"");
  has("spec.steps[1].task.args[0]", reason::kInvalid, "withItems items are strings");
  has("spec.steps[2].parallelism", reason::kInvalid, "applies to fan-out steps only");
  has("spec.steps[3].task", reason::kInvalid, "cannot fan out");
}

TEST(Validation, PhaseReferencesAreForFinallyStepsOnly) {
  const auto p = ParsePipeline(R"(
kind: Pipeline
metadata: {name: p}
spec:
  steps:
  - {name: a, task: {role: Spout, image: i}}
  - name: b
    dependsOn: [a]
    task: {role: Spout, image: i, args: ["{{steps.a.phase}}", "{{pipeline.phase}}", "{{bogus}}"]}
)");
  const auto errors = Validate(p);
  EXPECT_THAT(errors, Contains(Field(&FieldError::path, "spec.steps[1].task.args[0]")));
  EXPECT_THAT(errors, Contains(Field(&FieldError::path, "spec.steps[1].task.args[1]")));
  EXPECT_THAT(errors, Contains(AllOf(Field(&FieldError::path, "spec.steps[1].task.args[2]"),
                                     Field(&FieldError::detail, HasSubstr("unknown reference")))));
}

TEST(Validation, ZoneGuaranteesAndDefaultsAgainstLimits) {
  auto z = Zone::FromJson(testing::YamlToJson(R"(
kind: Zone
metadata: {name: z}
spec:
  type: Deployment
  owner: {name: bob}
  limits: {cpu: "8", memory: 16Gi, gpu: 2}
  defaults:
    requests: {cpu: "4", memory: 1Gi}
    limits: {cpu: "2", memory: 32Gi}
  guarantees: {cpu: 8000m, memory: 17Gi, gpu: "1.5"}
)")
                              .at(0));
  ASSERT_TRUE(z);
  const auto errors = Validate(*z);
  const auto has = [&](const char* path) {
    return std::any_of(errors.begin(), errors.end(),
                       [&](const FieldError& e) { return e.path == path; });
  };
  EXPECT_FALSE(has("spec.guarantees.cpu")) << "8000m equals the limit 8";
  EXPECT_TRUE(has("spec.guarantees.memory"));
  EXPECT_TRUE(has("spec.guarantees.gpu")) << "GPUs are whole";
  EXPECT_TRUE(has("spec.defaults.requests.cpu")) << "request above the default limit";
  EXPECT_TRUE(has("spec.defaults.limits.memory")) << "default above the zone's limit";
}

TEST(Validation, ZoneNameMustBeANamespaceNameUnlessOverridden) {
  auto z = Zone::FromJson(testing::YamlToJson(R"(
kind: Zone
metadata: {name: alice.dev}
spec: {type: Development, owner: {name: alice}, limits: {cpu: "1"}}
)")
                              .at(0));
  ASSERT_TRUE(z);
  EXPECT_THAT(Validate(*z), Contains(Field(&FieldError::path, "metadata.name")));
  z->spec.namespace_ = "alice-dev";
  EXPECT_THAT(Validate(*z), IsEmpty());
}

TEST(Validation, FromJsonReportsEveryTypeErrorWithItsPath) {
  const auto t = Task::FromJson(Json::parse(R"({
    "kind": "Task", "metadata": {"name": "t"},
    "spec": {"role": "Sink", "image": 7, "timeout": "soon", "retries": {"limit": "3"},
             "resources": {"limits": {"memory": "lots"}}}})"));
  ASSERT_FALSE(t);
  const auto& e = t.error();
  EXPECT_THAT(e, Contains(AllOf(Field(&FieldError::path, "spec.role"),
                                Field(&FieldError::reason, reason::kNotSupported))));
  EXPECT_THAT(e, Contains(AllOf(Field(&FieldError::path, "spec.image"),
                                Field(&FieldError::reason, reason::kTypeInvalid))));
  EXPECT_THAT(e, Contains(Field(&FieldError::path, "spec.timeout")));
  EXPECT_THAT(e, Contains(Field(&FieldError::path, "spec.retries.limit")));
  EXPECT_THAT(e, Contains(Field(&FieldError::path, "spec.resources.limits[memory]")));
  EXPECT_EQ(e.size(), 5U) << ToString(e);
}

TEST(Validation, WarningsForLegalButSuspiciousSpecs) {
  auto t = Task::FromJson(testing::YamlToJson(R"(
kind: Task
metadata: {name: t}
spec:
  role: Bolt
  input: {stream: {topic: x}}
  image: i
  timeout: 1h
  retries: {limit: 2, onFailure: [DeadlineExceeded]}
)")
                              .at(0));
  ASSERT_TRUE(t);
  ValidationErrors warnings;
  EXPECT_THAT(Validate(*t, &warnings), IsEmpty());
  EXPECT_THAT(warnings, Contains(Field(&FieldError::path, "spec.timeout")));
  EXPECT_THAT(warnings, Contains(Field(&FieldError::path, "spec.retries")));
}

TEST(Validation, ModelVersionGatesAndProductionUniqueness) {
  auto docs = testing::YamlToJson(R"(
kind: ModelVersion
metadata: {name: m-2, namespace: ns}
spec:
  model: m
  version: "2"
  artifact: {uri: "s3://b/m2", format: onnx}
  metrics: {accuracy: 0.8}
  stage: Production
  gates:
    metrics:
    - {name: accuracy, operator: Ge, threshold: 0.85}
    - {name: f1, operator: Gt, threshold: 0.5}
    requiredLineage: [codeRevision]
)");
  auto mv = ModelVersion::FromJson(docs.at(0));
  ASSERT_TRUE(mv) << ToString(mv.error());
  Default(*mv);
  EXPECT_THAT(FailedGates(mv->spec),
              ::testing::ElementsAre("metric accuracy = 0.8 does not satisfy Ge 0.85",
                                     "metric f1 is missing (needs Gt 0.5)",
                                     "lineage field codeRevision is not set"));
  ValidationErrors warnings;
  EXPECT_THAT(Validate(*mv, &warnings), IsEmpty());
  EXPECT_THAT(warnings, Contains(Field(&FieldError::path, "spec.gates")));

  ModelVersion v1 = *mv;
  v1.metadata.name = "m-1";
  v1.spec.version = "1";
  EXPECT_THAT(ValidateProductionUnique(*mv, std::vector<ModelVersion>{v1}),
              Contains(Field(&FieldError::path, "spec.stage")));
  v1.spec.stage = Stage::kArchived;
  EXPECT_THAT(ValidateProductionUnique(*mv, std::vector<ModelVersion>{v1}), IsEmpty());
}

TEST(Validation, PipelineIsARunAndItsStepsAreImmutable) {
  const auto old_p = ParsePipeline(R"(
kind: Pipeline
metadata: {name: p}
spec:
  steps: [{name: a, task: {role: Spout, image: i}}]
)");
  auto p = old_p;
  p.spec.cancel = true;
  p.spec.parallelism = 3;
  EXPECT_THAT(ValidateUpdate(old_p, p), IsEmpty());
  auto changed = old_p;
  changed.spec.steps[0].task.image = "other";
  EXPECT_THAT(ValidateUpdate(old_p, changed), Contains(Field(&FieldError::path, "spec.steps")));
  EXPECT_THAT(ValidateUpdate(p, old_p), Contains(Field(&FieldError::path, "spec.cancel")));
}

TEST(Validation, ResultsFromTerminationMessage) {
  EXPECT_EQ(ParseResults(R"({"accuracy": "0.93"})")->at("accuracy"), "0.93");
  EXPECT_TRUE(ParseResults("")->empty());
  EXPECT_FALSE(ParseResults(R"({"n": 3})"));
  EXPECT_FALSE(ParseResults("[1]"));
  const std::string big = R"({"x": ")" + std::string(kMaxResultsBytes, 'a') + "\"}";
  const auto too_big = ParseResults(big);
  ASSERT_FALSE(too_big);
  EXPECT_TRUE(too_big.error().too_large);
  EXPECT_THAT(too_big.error().message, HasSubstr("4096"));
  // What a real kubelet reports for a longer message: its last 4096 bytes.
  const auto cut = ParseResults(big.substr(big.size() - kMaxResultsBytes));
  ASSERT_FALSE(cut);
  EXPECT_TRUE(cut.error().too_large);
  EXPECT_THAT(cut.error().message, HasSubstr("reached the kubelet's limit of 4096 bytes"));
  const std::string exact = R"({"x": ")" + std::string(kMaxResultsBytes - 9, 'a') + "\"}";
  ASSERT_EQ(exact.size(), kMaxResultsBytes);
  EXPECT_TRUE(ParseResults(exact)) << "a message of exactly 4096 bytes is within the limit";
  // Valid JSON of that size that is not results is invalid, not too large.
  std::string numbers = R"({"x": [0)";
  while (numbers.size() + 2 < kMaxResultsBytes) numbers += ",0";
  numbers += "]}";
  ASSERT_EQ(numbers.size(), kMaxResultsBytes);
  ASSERT_FALSE(ParseResults(numbers));
  EXPECT_FALSE(ParseResults(numbers).error().too_large);
}

}  // namespace
}  // namespace millrace::api

namespace millrace::api {
namespace {

// A chain of `n` steps where each reads the previous step's result.
Pipeline Chain(size_t n) {
  Pipeline p;
  p.metadata.name = "chain";
  for (size_t i = 0; i < n; ++i) {
    Step s;
    s.name = "s" + std::to_string(i);
    s.task.role = TaskRole::kSpout;
    s.task.image = "busybox";
    s.task.results.push_back({"r", std::nullopt});
    if (i > 0) {
      s.depends_on = {"s" + std::to_string(i - 1)};
      s.when.push_back(
          {"{{steps.s" + std::to_string(i - 1) + ".results.r}}", Operator::kIn, {"a"}});
    }
    p.spec.steps.push_back(std::move(s));
  }
  return p;
}

TEST(Validation, LargePipelinesValidateQuickly) {
  const auto p = Chain(2000);
  const auto start = std::chrono::steady_clock::now();
  const auto errors = Validate(p);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(errors, IsEmpty()) << ToString(errors);
  EXPECT_LT(elapsed, std::chrono::seconds(2));

  auto cyclic = Chain(10000);
  cyclic.spec.steps[0].depends_on = {"s9999"};
  cyclic.spec.steps[0].when.clear();
  const auto cycle_errors = Validate(cyclic);
  ASSERT_FALSE(cycle_errors.empty());
  EXPECT_EQ(cycle_errors[0].path, "spec.steps[0].dependsOn");
  EXPECT_THAT(cycle_errors[0].detail, HasSubstr("s0 -> s9999 -> s9998"));
}

}  // namespace
}  // namespace millrace::api
