// The C++ types agree with the samples: FromJson -> ToJson gives back the input, defaulting only
// adds fields, and defaulting is idempotent.
#include <gtest/gtest.h>

#include "crds/defaults.h"
#include "crds/model_version.h"
#include "crds/pipeline.h"
#include "crds/task.h"
#include "crds/zone.h"
#include "tests/unit/crds/testdata.h"

namespace millrace::api {
namespace {

// Every field of `part` is in `whole` with the same value (recursively; lists element by element).
bool IsSubset(const Json& part, const Json& whole) {
  if (part.is_object()) {
    if (!whole.is_object()) return false;
    for (const auto& [k, v] : part.items())
      if (!whole.contains(k) || !IsSubset(v, whole[k])) return false;
    return true;
  }
  if (part.is_array()) {
    if (!whole.is_array() || whole.size() != part.size()) return false;
    for (size_t i = 0; i < part.size(); ++i)
      if (!IsSubset(part[i], whole[i])) return false;
    return true;
  }
  return part == whole;
}

template <class T>
void CheckRoundTrip(const Json& input) {
  auto obj = T::FromJson(input);
  ASSERT_TRUE(obj) << ToString(obj.error());
  EXPECT_EQ(obj->ToJson(), input) << "got:\n" << obj->ToJson().dump(2);

  Default(*obj);
  const Json defaulted = obj->ToJson();
  // Defaulting only adds fields.
  EXPECT_TRUE(IsSubset(input, defaulted)) << defaulted.dump(2);
  Default(*obj);
  EXPECT_EQ(obj->ToJson(), defaulted) << "Default is not idempotent";
  // And the defaulted form round-trips too.
  auto again = T::FromJson(defaulted);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->ToJson(), defaulted);
}

TEST(RoundTrip, EverySample) {
  const auto samples = testing::LoadSamples();
  ASSERT_GE(samples.size(), 6U);
  for (const auto& s : samples) {
    SCOPED_TRACE(s.file);
    const std::string kind = s.object.value("kind", "");
    if (kind == "Zone")
      CheckRoundTrip<Zone>(s.object);
    else if (kind == "Task")
      CheckRoundTrip<Task>(s.object);
    else if (kind == "Pipeline")
      CheckRoundTrip<Pipeline>(s.object);
    else if (kind == "ModelVersion")
      CheckRoundTrip<ModelVersion>(s.object);
    else
      ADD_FAILURE() << "unknown kind " << kind;
  }
}

TEST(RoundTrip, StatusAndMetadataSurvive) {
  const Json task = Json::parse(R"({
    "apiVersion": "millrace.io/v1alpha1", "kind": "Task",
    "metadata": {"name": "t", "namespace": "ns", "uid": "u-1", "resourceVersion": "42",
                 "generation": 3, "creationTimestamp": "2026-11-22T09:00:00Z",
                 "labels": {"a": "b"}, "finalizers": ["millrace.io/cleanup"],
                 "ownerReferences": [{"apiVersion": "millrace.io/v1alpha1", "kind": "Pipeline",
                                      "name": "p", "uid": "u-0", "controller": true}]},
    "spec": {"role": "Spout", "image": "busybox", "cancel": false},
    "status": {"phase": "Failed", "attempts": 2, "startTime": "2026-11-22T09:00:01Z",
               "completionTime": "2026-11-22T09:05:00Z",
               "children": {"job": "t-2"}, "results": {"rows": "10"},
               "failure": {"reason": "OOMKilled", "exitCode": 137, "message": "killed"},
               "observedGeneration": 3,
               "conditions": [{"type": "Ready", "status": "False", "reason": "Failed",
                               "message": "attempt 2 failed", "observedGeneration": 3,
                               "lastTransitionTime": "2026-11-22T09:05:00Z"}]}})");
  CheckRoundTrip<Task>(task);
}

TEST(Conditions, SetConditionKeepsTransitionTimeWhenStatusIsUnchanged) {
  std::vector<Condition> conditions;
  const Time t0 = *ParseTime("2026-11-22T09:00:00Z");
  const Time t1 = *ParseTime("2026-11-22T10:00:00Z");
  EXPECT_TRUE(SetCondition(conditions, {"Ready", ConditionStatus::kFalse, 1, t0, "Pending", ""}));
  EXPECT_FALSE(SetCondition(conditions, {"Ready", ConditionStatus::kFalse, 1, t1, "Pending", ""}));
  EXPECT_EQ(FindCondition(conditions, "Ready")->last_transition_time, t0);
  EXPECT_TRUE(SetCondition(conditions, {"Ready", ConditionStatus::kTrue, 1, t1, "Active", ""}));
  EXPECT_EQ(FindCondition(conditions, "Ready")->last_transition_time, t1);
  EXPECT_EQ(FindCondition(conditions, "Missing"), nullptr);
}

TEST(Conditions, AnEmptyMessageIsStillWritten) {
  TaskStatus status;
  status.conditions.push_back({"Ready", ConditionStatus::kTrue, std::nullopt,
                               *ParseTime("2026-11-22T09:00:00Z"), "Done", ""});
  Task t;
  t.metadata.name = "t";
  t.spec.image = "i";
  t.status = status;
  const Json j = t.ToJson();
  EXPECT_EQ(j["status"]["conditions"][0]["message"], "");
  EXPECT_FALSE(j["metadata"].contains("namespace"));
}

}  // namespace
}  // namespace millrace::api

namespace millrace::api {
namespace {

// Found by scripts/fuzz: a float beyond int64_t's range was cast (undefined behaviour).
TEST(Decode, IntegersOutOfRangeAreErrorsNotCasts) {
  for (const char* limit : {"1e25", "-1e25", "18446744073709551615", "1.5"}) {
    SCOPED_TRACE(limit);
    const auto task = Task::FromJson(Json::parse(
        std::string(R"({"apiVersion":"millrace.io/v1alpha1","kind":"Task","metadata":{"name":"t"},
          "spec":{"role":"Spout","image":"busybox","retries":{"limit":)") +
        limit + "}}}"));
    ASSERT_FALSE(task.has_value());
    EXPECT_EQ(task.error().at(0).path, "spec.retries.limit");
  }
  const auto whole = Task::FromJson(Json::parse(
      R"({"apiVersion":"millrace.io/v1alpha1","kind":"Task","metadata":{"name":"t"},
          "spec":{"role":"Spout","image":"busybox","retries":{"limit":3.0}}})"));
  ASSERT_TRUE(whole.has_value());
  EXPECT_EQ(whole->spec.retries->limit, 3);
}

}  // namespace
}  // namespace millrace::api
