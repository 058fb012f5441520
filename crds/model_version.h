#pragma once

#include <expected>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crds/duration.h"
#include "crds/meta.h"
#include "crds/pipeline.h"
#include "crds/task.h"

namespace millrace::api {

enum class ModelVersionPhase { kRegistered, kDeploying, kServing, kFailed, kArchived };
template <>
struct EnumNames<ModelVersionPhase> {
  static constexpr std::array<std::string_view, 5> kNames{"Registered", "Deploying", "Serving",
                                                          "Failed", "Archived"};
};

enum class LineageField { kPipeline, kStep, kDatasets, kCodeRevision, kImage };
template <>
struct EnumNames<LineageField> {
  static constexpr std::array<std::string_view, 5> kNames{"pipeline", "step", "datasets",
                                                          "codeRevision", "image"};
};

struct Artifact {
  std::string uri;
  ModelFormat format = ModelFormat::kCustom;
  bool operator==(const Artifact&) const = default;
};

struct Lineage {
  std::optional<std::string> pipeline;
  std::optional<std::string> step;
  std::vector<std::string> datasets;
  std::optional<std::string> code_revision;
  std::optional<std::string> image;
  bool operator==(const Lineage&) const = default;
};

struct Serving {
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<EnvVar> env;
  std::optional<int32_t> port;  // default 8080
  std::optional<int32_t> replicas;
  std::optional<Autoscaling> autoscaling;
  std::optional<ResourceRequirements> resources;
  std::optional<Duration> rollout_deadline;  // default 10m
};

struct MetricGate {
  std::string name;
  Operator operator_ = Operator::kGe;
  double threshold = 0;
};

struct Gates {
  std::vector<MetricGate> metrics;
  std::vector<LineageField> required_lineage;
};

struct ModelVersionSpec {
  std::string model;
  std::string version;
  Artifact artifact;
  std::map<std::string, double> metrics;
  std::optional<std::string> description;
  std::map<std::string, std::string> tags;
  std::vector<std::string> aliases;
  std::optional<Lineage> lineage;
  std::optional<Stage> stage;  // default None
  std::optional<Serving> serving;
  std::optional<Gates> gates;
};

struct StageTransition {
  Stage stage = Stage::kNone;
  Time time{};
  std::optional<std::string> reason;
};

struct ModelVersionChildren {
  std::optional<std::string> deployment;
  std::optional<std::string> service;
  std::optional<std::string> horizontal_pod_autoscaler;
};

struct ModelVersionStatus {
  std::optional<ModelVersionPhase> phase;
  std::optional<Stage> stage;
  std::optional<std::string> previous_production_version;
  std::vector<StageTransition> stage_transitions;
  std::optional<std::string> url;
  std::optional<std::string> stable_url;
  std::optional<ModelVersionChildren> children;
  std::optional<int32_t> ready_replicas;
  std::optional<int64_t> observed_generation;
  std::vector<Condition> conditions;
};

// A ModelVersion (namespaced): a model-registry entry, served while in Staging or Production.
struct ModelVersion {
  ObjectMeta metadata;
  ModelVersionSpec spec;
  std::optional<ModelVersionStatus> status;

  static constexpr std::string_view kKind = "ModelVersion";
  static constexpr std::string_view kPlural = "modelversions";

  static std::expected<ModelVersion, ValidationErrors> FromJson(const Json& j);
  Json ToJson() const;

  // The name a ModelVersion must have: <model>-<version> (unique per namespace by construction).
  static std::string NameFor(std::string_view model, std::string_view version) {
    return std::string(model) + "-" + std::string(version);
  }
};

}  // namespace millrace::api
