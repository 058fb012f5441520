#include "crds/pipeline.h"

namespace millrace::api {

template <class V>
void Visit(V& v, Param& p) {
  v("name", p.name, codec::kRequired);
  v("value", p.value);
  v("default", p.default_);
  v("description", p.description);
}

template <class V>
void Visit(V& v, WhenExpression& w) {
  v("input", w.input, codec::kRequired);
  v("operator", w.operator_, codec::kRequired);
  v("values", w.values, codec::kRequired);
}

template <class V>
void Visit(V& v, RegisterModel& r) {
  v("model", r.model, codec::kRequired);
  v("version", r.version, codec::kRequired);
  v("artifactUri", r.artifact_uri, codec::kRequired);
  v("format", r.format, codec::kRequired);
  v("stage", r.stage);
  v("metrics", r.metrics);
  v("description", r.description);
}

template <class V>
void Visit(V& v, StepMetadata& m) {
  v("labels", m.labels);
  v("annotations", m.annotations);
}

template <class V>
void Visit(V& v, Step& s) {
  v("name", s.name, codec::kRequired);
  v("metadata", s.metadata);
  v("dependsOn", s.depends_on);
  v("when", s.when);
  v("task", s.task, codec::kRequired);
  v("registerModel", s.register_model);
}

template <class V>
void Visit(V& v, PipelineSpec& s) {
  v("params", s.params);
  v("steps", s.steps, codec::kRequired);
  v("finally", s.finally);
  v("parallelism", s.parallelism);
  v("failFast", s.fail_fast);
  v("timeout", s.timeout);
  v("ttlAfterFinished", s.ttl_after_finished);
  v("suspend", s.suspend);
  v("cancel", s.cancel);
}

template <class V>
void Visit(V& v, StepStatus& s) {
  v("name", s.name, codec::kRequired);
  v("phase", s.phase);
  v("task", s.task);
  v("attempts", s.attempts);
  v("startTime", s.start_time);
  v("completionTime", s.completion_time);
  v("results", s.results);
  v("message", s.message);
}

template <class V>
void Visit(V& v, PipelineFailure& f) {
  v("step", f.step);
  v("reason", f.reason);
  v("message", f.message);
}

template <class V>
void Visit(V& v, PipelineStatus& s) {
  v("phase", s.phase);
  v("startTime", s.start_time);
  v("completionTime", s.completion_time);
  v("progress", s.progress);
  v("steps", s.steps);
  v("failure", s.failure);
  v("observedGeneration", s.observed_generation);
  v("conditions", s.conditions);
}

template <class V>
void Visit(V& v, Pipeline& p) {
  v("metadata", p.metadata);
  v("spec", p.spec, codec::kRequired);
  v("status", p.status);
}

void Decode(codec::Context& c, const Json& j, const std::string& path, RegisterModel& out) {
  codec::Decode<RegisterModel>(c, j, path, out);
}
Json Encode(const RegisterModel& r) { return codec::Encode<RegisterModel>(r); }

std::expected<Pipeline, ValidationErrors> Pipeline::FromJson(const Json& j) {
  ValidationErrors errors;
  codec::Context c{errors};
  Pipeline p;
  codec::Decode(c, j, "", p);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return p;
}

Json Pipeline::ToJson() const {
  Json j = codec::Encode(*this);
  j["apiVersion"] = kApiVersion;
  j["kind"] = kKind;
  return j;
}

}  // namespace millrace::api
