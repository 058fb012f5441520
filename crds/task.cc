#include "crds/task.h"

namespace millrace::api {

template <class V>
void Visit(V& v, BatchRef& b) {
  v("uri", b.uri, codec::kRequired);
  v("partition", b.partition);
}

template <class V>
void Visit(V& v, StreamRef& s) {
  v("topic", s.topic);
  v("endpoint", s.endpoint);
}

template <class V>
void Visit(V& v, DataRef& d) {
  v("batch", d.batch);
  v("stream", d.stream);
}

template <class V>
void Visit(V& v, EnvVar& e) {
  v("name", e.name, codec::kRequired);
  v("value", e.value);
  v("valueFrom", e.value_from);
}

template <class V>
void Visit(V& v, ResourceRequirements& r) {
  v("requests", r.requests);
  v("limits", r.limits);
}

template <class V>
void Visit(V& v, Toleration& t) {
  v("key", t.key);
  v("operator", t.operator_);
  v("value", t.value);
  v("effect", t.effect);
  v("tolerationSeconds", t.toleration_seconds);
}

template <class V>
void Visit(V& v, Backoff& b) {
  v("duration", b.duration);
  v("factor", b.factor);
  v("maxDuration", b.max_duration);
}

template <class V>
void Visit(V& v, Retries& r) {
  v("limit", r.limit, codec::kRequired);
  v("backoff", r.backoff);
  v("onFailure", r.on_failure);
  v("attemptTimeout", r.attempt_timeout);
}

template <class V>
void Visit(V& v, ServicePort& s) {
  v("port", s.port, codec::kRequired);
  v("protocol", s.protocol);
}

template <class V>
void Visit(V& v, Autoscaling& a) {
  v("minReplicas", a.min_replicas);
  v("maxReplicas", a.max_replicas, codec::kRequired);
  v("targetCPUUtilization", a.target_cpu_utilization);
}

template <class V>
void Visit(V& v, ResultSpec& r) {
  v("name", r.name, codec::kRequired);
  v("description", r.description);
}

template <class V>
void Visit(V& v, TaskSpec& s) {
  v("role", s.role, codec::kRequired);
  v("input", s.input);
  v("output", s.output);
  v("image", s.image, codec::kRequired);
  v("imagePullPolicy", s.image_pull_policy);
  v("command", s.command);
  v("args", s.args);
  v("workingDir", s.working_dir);
  v("env", s.env);
  v("resources", s.resources);
  v("serviceAccountName", s.service_account_name);
  v("nodeSelector", s.node_selector);
  v("tolerations", s.tolerations);
  v("affinity", s.affinity);
  v("priorityClassName", s.priority_class_name);
  v("retries", s.retries);
  v("timeout", s.timeout);
  v("ttlAfterFinished", s.ttl_after_finished);
  v("service", s.service);
  v("scaling", s.scaling);
  v("results", s.results);
  v("cancel", s.cancel);
}

template <class V>
void Visit(V& v, TaskChildren& c) {
  v("job", c.job);
  v("deployment", c.deployment);
  v("service", c.service);
  v("horizontalPodAutoscaler", c.horizontal_pod_autoscaler);
}

template <class V>
void Visit(V& v, TaskFailure& f) {
  v("reason", f.reason);
  v("exitCode", f.exit_code);
  v("message", f.message);
}

template <class V>
void Visit(V& v, TaskStatus& s) {
  v("phase", s.phase);
  v("attempts", s.attempts);
  v("nextRetryTime", s.next_retry_time);
  v("startTime", s.start_time);
  v("completionTime", s.completion_time);
  v("children", s.children);
  v("results", s.results);
  v("failure", s.failure);
  v("replicas", s.replicas);
  v("readyReplicas", s.ready_replicas);
  v("endpoint", s.endpoint);
  v("observedGeneration", s.observed_generation);
  v("conditions", s.conditions);
}

template <class V>
void Visit(V& v, Task& t) {
  v("metadata", t.metadata);
  v("spec", t.spec, codec::kRequired);
  v("status", t.status);
}

void Decode(codec::Context& c, const Json& j, const std::string& path, TaskSpec& out) {
  codec::Decode<TaskSpec>(c, j, path, out);
}
Json Encode(const TaskSpec& spec) { return codec::Encode<TaskSpec>(spec); }
void Decode(codec::Context& c, const Json& j, const std::string& path, Autoscaling& out) {
  codec::Decode<Autoscaling>(c, j, path, out);
}
Json Encode(const Autoscaling& a) { return codec::Encode<Autoscaling>(a); }
void Decode(codec::Context& c, const Json& j, const std::string& path, EnvVar& out) {
  codec::Decode<EnvVar>(c, j, path, out);
}
Json Encode(const EnvVar& e) { return codec::Encode<EnvVar>(e); }
void Decode(codec::Context& c, const Json& j, const std::string& path, ResourceRequirements& out) {
  codec::Decode<ResourceRequirements>(c, j, path, out);
}
Json Encode(const ResourceRequirements& r) { return codec::Encode<ResourceRequirements>(r); }

std::expected<TaskSpec, ValidationErrors> TaskSpecFromJson(const Json& j, const std::string& path) {
  ValidationErrors errors;
  codec::Context c{errors};
  TaskSpec spec;
  Decode(c, j, path, spec);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return spec;
}

std::expected<Task, ValidationErrors> Task::FromJson(const Json& j) {
  ValidationErrors errors;
  codec::Context c{errors};
  Task t;
  codec::Decode(c, j, "", t);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return t;
}

Json Task::ToJson() const {
  Json j = codec::Encode(*this);
  j["apiVersion"] = kApiVersion;
  j["kind"] = kKind;
  return j;
}

std::expected<std::map<std::string, std::string>, std::string> ParseResults(
    std::string_view message) {
  if (message.size() > kMaxResultsBytes) {
    return std::unexpected("results are " + std::to_string(message.size()) +
                           " bytes; the limit is " + std::to_string(kMaxResultsBytes));
  }
  std::map<std::string, std::string> out;
  if (message.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  const Json j = Json::parse(message, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::unexpected("results must be a JSON object of strings");
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) return std::unexpected("result \"" + k + "\" is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace millrace::api
