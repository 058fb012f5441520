#pragma once

#include <cstddef>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crds/duration.h"
#include "crds/meta.h"
#include "crds/quantity.h"

namespace millrace::api {

// The most a task may write to its termination message (results), in bytes: the kubelet's limit.
inline constexpr size_t kMaxResultsBytes = 4096;

enum class TaskRole { kSpout, kBolt };
template <>
struct EnumNames<TaskRole> {
  static constexpr std::array<std::string_view, 2> kNames{"Spout", "Bolt"};
};

enum class PullPolicy { kAlways, kIfNotPresent, kNever };
template <>
struct EnumNames<PullPolicy> {
  static constexpr std::array<std::string_view, 3> kNames{"Always", "IfNotPresent", "Never"};
};

// The kinds of failure `retries.onFailure` may name.
enum class FailureKind { kError, kOOMKilled, kEvicted, kDeadlineExceeded };
template <>
struct EnumNames<FailureKind> {
  static constexpr std::array<std::string_view, 4> kNames{"Error", "OOMKilled", "Evicted",
                                                          "DeadlineExceeded"};
};

enum class Protocol { kTCP, kUDP, kSCTP };
template <>
struct EnumNames<Protocol> {
  static constexpr std::array<std::string_view, 3> kNames{"TCP", "UDP", "SCTP"};
};

enum class TolerationOperator { kExists, kEqual };
template <>
struct EnumNames<TolerationOperator> {
  static constexpr std::array<std::string_view, 2> kNames{"Exists", "Equal"};
};

enum class TaintEffect { kNoSchedule, kPreferNoSchedule, kNoExecute };
template <>
struct EnumNames<TaintEffect> {
  static constexpr std::array<std::string_view, 3> kNames{"NoSchedule", "PreferNoSchedule",
                                                          "NoExecute"};
};

enum class TaskPhase {
  kPending,
  kRunning,
  kReady,
  kRollingOut,
  kDegraded,
  kSucceeded,
  kFailed,
  kCancelled
};
template <>
struct EnumNames<TaskPhase> {
  static constexpr std::array<std::string_view, 8> kNames{
      "Pending", "Running", "Ready", "RollingOut", "Degraded", "Succeeded", "Failed", "Cancelled"};
};

struct BatchRef {
  std::string uri;
  std::optional<std::string> partition;
};

struct StreamRef {
  std::optional<std::string> topic;
  std::optional<std::string> endpoint;
};

// Exactly one of batch and stream.
struct DataRef {
  std::optional<BatchRef> batch;
  std::optional<StreamRef> stream;
};

struct EnvVar {
  std::string name;
  std::optional<std::string> value;
  Json value_from;  // core/v1 EnvVarSource, passed through (null when absent)
};

struct ResourceRequirements {
  std::map<std::string, Quantity> requests;
  std::map<std::string, Quantity> limits;
};

struct Toleration {
  std::optional<std::string> key;
  std::optional<TolerationOperator> operator_;
  std::optional<std::string> value;
  std::optional<TaintEffect> effect;
  std::optional<int64_t> toleration_seconds;
};

struct Backoff {
  std::optional<Duration> duration;      // default 10s
  std::optional<double> factor;          // default 2
  std::optional<Duration> max_duration;  // default 10m
};

struct Retries {
  int32_t limit = 0;
  std::optional<Backoff> backoff;       // defaulted to {}
  std::vector<FailureKind> on_failure;  // default [Error, OOMKilled, Evicted]
  std::optional<Duration> attempt_timeout;
};

struct ServicePort {
  int32_t port = 0;
  std::optional<Protocol> protocol;  // default TCP
};

// Used by Task.scaling and ModelVersion.serving.autoscaling.
struct Autoscaling {
  std::optional<int32_t> min_replicas;  // default 1
  int32_t max_replicas = 0;
  std::optional<int32_t> target_cpu_utilization;  // default 80
};

struct ResultSpec {
  std::string name;
  std::optional<std::string> description;
};

struct TaskSpec {
  TaskRole role = TaskRole::kBolt;
  std::optional<DataRef> input;
  std::optional<DataRef> output;
  std::string image;
  std::optional<PullPolicy> image_pull_policy;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::optional<std::string> working_dir;
  std::vector<EnvVar> env;
  std::optional<ResourceRequirements> resources;
  std::optional<std::string> service_account_name;
  std::map<std::string, std::string> node_selector;
  std::vector<Toleration> tolerations;
  Json affinity;  // core/v1 Affinity, passed through (null when absent)
  std::optional<std::string> priority_class_name;
  std::optional<Retries> retries;
  std::optional<Duration> timeout;
  std::optional<Duration> ttl_after_finished;
  std::optional<ServicePort> service;
  std::optional<Autoscaling> scaling;
  std::vector<ResultSpec> results;
  std::optional<bool> cancel;  // default false

  // A task whose input is a stream, or that declares a service, runs as a long-lived service.
  bool Streaming() const { return service.has_value() || (input && input->stream.has_value()); }
  bool Cancelled() const { return cancel.value_or(false); }
};

struct TaskChildren {
  std::optional<std::string> job;
  std::optional<std::string> deployment;
  std::optional<std::string> service;
  std::optional<std::string> horizontal_pod_autoscaler;
};

struct TaskFailure {
  std::optional<std::string> reason;
  std::optional<int32_t> exit_code;
  std::optional<std::string> message;
};

struct TaskStatus {
  std::optional<TaskPhase> phase;
  std::optional<int32_t> attempts;
  std::optional<Time> next_retry_time;
  std::optional<Time> start_time;
  std::optional<Time> completion_time;
  std::optional<TaskChildren> children;
  std::map<std::string, std::string> results;
  std::optional<TaskFailure> failure;
  std::optional<int32_t> replicas;
  std::optional<int32_t> ready_replicas;
  std::optional<std::string> endpoint;
  std::optional<int64_t> observed_generation;
  std::vector<Condition> conditions;
};

// A Task (namespaced): one unit of work, batch (a Job) or streaming (Deployment + Service + HPA).
struct Task {
  ObjectMeta metadata;
  TaskSpec spec;
  std::optional<TaskStatus> status;

  static constexpr std::string_view kKind = "Task";
  static constexpr std::string_view kPlural = "tasks";

  static std::expected<Task, ValidationErrors> FromJson(const Json& j);
  Json ToJson() const;
};

void Decode(codec::Context& c, const Json& j, const std::string& path, TaskSpec& out);
Json Encode(const TaskSpec& spec);
void Decode(codec::Context& c, const Json& j, const std::string& path, Autoscaling& out);
Json Encode(const Autoscaling& a);
void Decode(codec::Context& c, const Json& j, const std::string& path, EnvVar& out);
Json Encode(const EnvVar& e);
void Decode(codec::Context& c, const Json& j, const std::string& path, ResourceRequirements& out);
Json Encode(const ResourceRequirements& r);

// TaskSpec alone (e.g. a Pipeline step's task), with paths relative to `path`.
std::expected<TaskSpec, ValidationErrors> TaskSpecFromJson(const Json& j,
                                                           const std::string& path = "spec");

// Parses a termination message into results: a JSON object of strings, at most kMaxResultsBytes.
// The error says why it was refused (too large, not an object, a non-string value).
std::expected<std::map<std::string, std::string>, std::string> ParseResults(
    std::string_view message);

}  // namespace millrace::api
