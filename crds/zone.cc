#include "crds/zone.h"

namespace millrace::api {

template <class V>
void Visit(V& v, Subject& s) {
  v("kind", s.kind);
  v("name", s.name, codec::kRequired);
}

template <class V>
void Visit(V& v, Member& m) {
  v("kind", m.kind);
  v("name", m.name, codec::kRequired);
  v("role", m.role);
}

template <class V>
void Visit(V& v, ComputeResources& r) {
  v("cpu", r.cpu);
  v("memory", r.memory);
  v("gpu", r.gpu);
}

template <class V>
void Visit(V& v, ZoneLimits& l) {
  v("cpu", l.cpu);
  v("memory", l.memory);
  v("gpu", l.gpu);
  v("ephemeralStorage", l.ephemeral_storage);
  v("storage", l.storage);
  v("persistentVolumeClaims", l.persistent_volume_claims);
  v("pods", l.pods);
  v("services", l.services);
  v("configMaps", l.config_maps);
  v("secrets", l.secrets);
  v("jobs", l.jobs);
  v("deployments", l.deployments);
  v("tasks", l.tasks);
  v("pipelines", l.pipelines);
}

template <class V>
void Visit(V& v, ZoneDefaults& d) {
  v("requests", d.requests);
  v("limits", d.limits);
}

template <class V>
void Visit(V& v, ZoneSpec& s) {
  v("type", s.type, codec::kRequired);
  v("namespace", s.namespace_);
  v("owner", s.owner);
  v("members", s.members);
  v("limits", s.limits);
  v("defaults", s.defaults);
  v("guarantees", s.guarantees);
  v("networkIsolation", s.network_isolation);
  v("egressIsolation", s.egress_isolation);
  v("deletionPolicy", s.deletion_policy);
}

template <class V>
void Visit(V& v, ZoneStatus& s) {
  v("phase", s.phase);
  v("namespace", s.namespace_);
  v("hard", s.hard);
  v("used", s.used);
  v("observedGeneration", s.observed_generation);
  v("conditions", s.conditions);
}

template <class V>
void Visit(V& v, Zone& z) {
  v("metadata", z.metadata);
  v("spec", z.spec, codec::kRequired);
  v("status", z.status);
}

void Decode(codec::Context& c, const Json& j, const std::string& path, ZoneSpec& out) {
  codec::Decode<ZoneSpec>(c, j, path, out);
}
Json Encode(const ZoneSpec& spec) { return codec::Encode<ZoneSpec>(spec); }

std::expected<Zone, ValidationErrors> Zone::FromJson(const Json& j) {
  ValidationErrors errors;
  codec::Context c{errors};
  Zone z;
  codec::Decode(c, j, "", z);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return z;
}

Json Zone::ToJson() const {
  Json j = codec::Encode(*this);
  j["apiVersion"] = kApiVersion;
  j["kind"] = kKind;
  return j;
}

}  // namespace millrace::api
