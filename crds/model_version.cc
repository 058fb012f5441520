#include "crds/model_version.h"

namespace millrace::api {

template <class V>
void Visit(V& v, Artifact& a) {
  v("uri", a.uri, codec::kRequired);
  v("format", a.format, codec::kRequired);
}

template <class V>
void Visit(V& v, Lineage& l) {
  v("pipeline", l.pipeline);
  v("step", l.step);
  v("datasets", l.datasets);
  v("codeRevision", l.code_revision);
  v("image", l.image);
}

template <class V>
void Visit(V& v, Serving& s) {
  v("image", s.image, codec::kRequired);
  v("command", s.command);
  v("args", s.args);
  v("env", s.env);
  v("port", s.port);
  v("replicas", s.replicas);
  v("autoscaling", s.autoscaling);
  v("resources", s.resources);
  v("rolloutDeadline", s.rollout_deadline);
}

template <class V>
void Visit(V& v, MetricGate& g) {
  v("name", g.name, codec::kRequired);
  v("operator", g.operator_, codec::kRequired);
  v("threshold", g.threshold, codec::kRequired);
}

template <class V>
void Visit(V& v, Gates& g) {
  v("metrics", g.metrics);
  v("requiredLineage", g.required_lineage);
}

template <class V>
void Visit(V& v, ModelVersionSpec& s) {
  v("model", s.model, codec::kRequired);
  v("version", s.version, codec::kRequired);
  v("artifact", s.artifact, codec::kRequired);
  v("metrics", s.metrics);
  v("description", s.description);
  v("tags", s.tags);
  v("aliases", s.aliases);
  v("lineage", s.lineage);
  v("stage", s.stage);
  v("serving", s.serving);
  v("gates", s.gates);
}

template <class V>
void Visit(V& v, StageTransition& t) {
  v("stage", t.stage, codec::kRequired);
  v("time", t.time, codec::kRequired);
  v("reason", t.reason);
}

template <class V>
void Visit(V& v, ModelVersionChildren& c) {
  v("deployment", c.deployment);
  v("service", c.service);
  v("horizontalPodAutoscaler", c.horizontal_pod_autoscaler);
}

template <class V>
void Visit(V& v, ModelVersionStatus& s) {
  v("phase", s.phase);
  v("stage", s.stage);
  v("previousProductionVersion", s.previous_production_version);
  v("stageTransitions", s.stage_transitions);
  v("url", s.url);
  v("stableUrl", s.stable_url);
  v("children", s.children);
  v("readyReplicas", s.ready_replicas);
  v("observedGeneration", s.observed_generation);
  v("conditions", s.conditions);
}

template <class V>
void Visit(V& v, ModelVersion& m) {
  v("metadata", m.metadata);
  v("spec", m.spec, codec::kRequired);
  v("status", m.status);
}

std::expected<ModelVersion, ValidationErrors> ModelVersion::FromJson(const Json& j) {
  ValidationErrors errors;
  codec::Context c{errors};
  ModelVersion m;
  codec::Decode(c, j, "", m);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return m;
}

Json ModelVersion::ToJson() const {
  Json j = codec::Encode(*this);
  j["apiVersion"] = kApiVersion;
  j["kind"] = kKind;
  return j;
}

}  // namespace millrace::api
