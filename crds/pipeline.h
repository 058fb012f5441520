#pragma once

#include <expected>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crds/duration.h"
#include "crds/meta.h"
#include "crds/task.h"

namespace millrace::api {

// Comparison operators of `when` conditions and of ModelVersion metric gates.
enum class Operator { kIn, kNotIn, kEq, kNe, kGt, kGe, kLt, kLe };
template <>
struct EnumNames<Operator> {
  static constexpr std::array<std::string_view, 8> kNames{"In", "NotIn", "Eq", "Ne",
                                                          "Gt", "Ge",    "Lt", "Le"};
};

enum class ModelFormat { kOnnx, kSklearn, kPytorch, kHuggingface, kTensorflow, kXgboost, kCustom };
template <>
struct EnumNames<ModelFormat> {
  static constexpr std::array<std::string_view, 7> kNames{
      "onnx", "sklearn", "pytorch", "huggingface", "tensorflow", "xgboost", "custom"};
};

enum class Stage { kNone, kStaging, kProduction, kArchived };
template <>
struct EnumNames<Stage> {
  static constexpr std::array<std::string_view, 4> kNames{"None", "Staging", "Production",
                                                          "Archived"};
};

enum class PipelinePhase { kPending, kSuspended, kRunning, kSucceeded, kFailed, kCancelled };
template <>
struct EnumNames<PipelinePhase> {
  static constexpr std::array<std::string_view, 6> kNames{"Pending",   "Suspended", "Running",
                                                          "Succeeded", "Failed",    "Cancelled"};
};

enum class StepPhase { kPending, kRunning, kReady, kSucceeded, kFailed, kSkipped, kCancelled };
template <>
struct EnumNames<StepPhase> {
  static constexpr std::array<std::string_view, 7> kNames{
      "Pending", "Running", "Ready", "Succeeded", "Failed", "Skipped", "Cancelled"};
};

struct Param {
  std::string name;
  std::optional<std::string> value;
  std::optional<std::string> default_;
  std::optional<std::string> description;

  // The value in effect: value, else default.
  std::optional<std::string> Effective() const { return value ? value : default_; }
};

// `input <operator> values`, evaluated after substitution.
struct WhenExpression {
  std::string input;
  Operator operator_ = Operator::kIn;
  std::vector<std::string> values;
};

struct RegisterModel {
  std::string model;
  std::string version;
  std::string artifact_uri;
  ModelFormat format = ModelFormat::kCustom;
  std::optional<Stage> stage;  // default None
  std::map<std::string, std::string> metrics;
  std::optional<std::string> description;
};

// Labels and annotations a step gives its child Task (and so its pods).
struct StepMetadata {
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

struct Step {
  std::string name;
  std::optional<StepMetadata> metadata;
  std::vector<std::string> depends_on;
  std::vector<WhenExpression> when;
  TaskSpec task;
  std::optional<RegisterModel> register_model;
};

struct PipelineSpec {
  std::vector<Param> params;
  std::vector<Step> steps;
  std::vector<Step> finally;
  std::optional<int32_t> parallelism;  // unlimited when unset
  std::optional<bool> fail_fast;       // default false
  std::optional<Duration> timeout;
  std::optional<Duration> ttl_after_finished;
  std::optional<bool> suspend;  // default false
  std::optional<bool> cancel;   // default false
};

struct StepStatus {
  std::string name;
  std::optional<StepPhase> phase;
  std::optional<std::string> task;
  std::optional<int32_t> attempts;
  std::optional<Time> start_time;
  std::optional<Time> completion_time;
  std::map<std::string, std::string> results;
  std::optional<std::string> message;
};

struct PipelineFailure {
  std::optional<std::string> step;
  std::optional<std::string> reason;
  std::optional<std::string> message;
};

struct PipelineStatus {
  std::optional<PipelinePhase> phase;
  std::optional<Time> start_time;
  std::optional<Time> completion_time;
  std::optional<std::string> progress;
  std::vector<StepStatus> steps;
  std::optional<PipelineFailure> failure;
  std::optional<int64_t> observed_generation;
  std::vector<Condition> conditions;
};

// A Pipeline (namespaced): one run of a DAG of steps, each a child Task.
struct Pipeline {
  ObjectMeta metadata;
  PipelineSpec spec;
  std::optional<PipelineStatus> status;

  static constexpr std::string_view kKind = "Pipeline";
  static constexpr std::string_view kPlural = "pipelines";

  static std::expected<Pipeline, ValidationErrors> FromJson(const Json& j);
  Json ToJson() const;
};

void Decode(codec::Context& c, const Json& j, const std::string& path, RegisterModel& out);
Json Encode(const RegisterModel& r);

}  // namespace millrace::api
