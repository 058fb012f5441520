#include "reconcilers/object.h"

#include <algorithm>
#include <chrono>

namespace millrace::reconcilers {

using nlohmann::json;

std::string Str(const json& j, std::string_view key) {
  if (!j.is_object()) return {};
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

ChildRef ChildRefOf(const json& object) {
  const json& meta = Sub(object, "metadata");
  return ChildRef{Str(object, "apiVersion"), Str(object, "kind"), Str(meta, "namespace"),
                  Str(meta, "name"), Str(meta, "uid")};
}

const json& Sub(const json& j, std::string_view key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  const auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

int64_t Int(const json& j, std::string_view key, int64_t fallback) {
  const json& v = Sub(j, key);
  return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

std::optional<api::Time> TimeOf(const json& j, std::string_view key) {
  const std::string s = Str(j, key);
  if (s.empty()) return std::nullopt;
  auto t = api::ParseTime(s);
  return t ? std::optional<api::Time>(*t) : std::nullopt;
}

const json* TrueCondition(const json& object, std::string_view type) {
  const json& conditions = Sub(Sub(object, "status"), "conditions");
  if (!conditions.is_array()) return nullptr;
  for (const json& c : conditions) {
    if (Str(c, "type") == type && Str(c, "status") == "True") return &c;
  }
  return nullptr;
}

DeploymentRollout RolloutOf(const json& deployment) {
  const json& status = Sub(deployment, "status");
  DeploymentRollout r;
  r.wanted = Int(Sub(deployment, "spec"), "replicas", 1);
  r.ready = Int(status, "readyReplicas");
  r.updated = Int(status, "updatedReplicas");
  r.available = Int(status, "availableReplicas");
  r.total = Int(status, "replicas");
  r.observed =
      Int(status, "observedGeneration") >= Int(Sub(deployment, "metadata"), "generation", 1);
  return r;
}

std::string DeploymentRollout::Describe() const {
  const auto n = [](int64_t v) { return std::to_string(v); };
  const auto old = [&] {
    const int64_t left = total - updated;
    return n(left) + " old replica" + (left == 1 ? "" : "s");
  };
  if (!observed) return "waiting for the Deployment controller to see the new spec";
  if (updated < wanted) {
    return n(updated) + " of " + n(wanted) + " replicas updated to the new spec" +
           (total > updated ? ", " + old() + " still running" : "");
  }
  if (total > updated) return old() + " still running";
  if (available < updated) {
    return n(available) + " of " + n(updated) + " updated replicas available";
  }
  return n(ready) + "/" + n(wanted) + " replicas ready";
}

std::optional<json> ControlledBy(const controller::Store& store, const std::string& key,
                                 const std::string& owner_uid) {
  const controller::Object o = store.Get(key);
  if (!o || !api::IsControlledBy(*o, owner_uid)) return std::nullopt;
  return *o;
}

bool LeftoverOfEarlierOwner(const json& existing, std::string_view owner_kind,
                            std::string_view owner_name, std::string_view owner_uid) {
  const json& meta = Sub(existing, "metadata");
  if (!Sub(meta, "deletionTimestamp").is_null()) return true;
  const json& owners = Sub(meta, "ownerReferences");
  if (!owners.is_array()) return false;
  return std::ranges::any_of(owners, [&](const json& o) {
    return Sub(o, "controller") == json(true) && Str(o, "kind") == owner_kind &&
           Str(o, "name") == owner_name && Str(o, "uid") != owner_uid;
  });
}

std::string Truncate(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return s + "...";
}

api::Condition MakeCondition(std::string_view type, api::ConditionStatus status, std::string reason,
                             std::string message, int64_t generation, api::Time now) {
  api::Condition c;
  c.type = std::string(type);
  c.status = status;
  c.reason = std::move(reason);
  c.message = std::move(message);
  c.observed_generation = generation;
  c.last_transition_time = now;
  return c;
}

api::Time DeadlineAfter(api::Time start, std::chrono::nanoseconds span) {
  return start + std::chrono::ceil<std::chrono::seconds>(span) + std::chrono::seconds{1};
}

void RequeueWithin(std::optional<std::chrono::seconds>& requeue_after, std::chrono::seconds after) {
  after = std::max(after, std::chrono::seconds{1});
  if (!requeue_after || after < *requeue_after) requeue_after = after;
}

json HorizontalPodAutoscalerFor(json metadata, const std::string& deployment,
                                const api::Autoscaling& scaling) {
  const json target{{"type", "Utilization"},
                    {"averageUtilization", scaling.target_cpu_utilization.value_or(80)}};
  return json{
      {"apiVersion", "autoscaling/v2"},
      {"kind", "HorizontalPodAutoscaler"},
      {"metadata", std::move(metadata)},
      {"spec",
       {{"scaleTargetRef",
         {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", deployment}}},
        {"minReplicas", scaling.min_replicas.value_or(1)},
        {"maxReplicas", scaling.max_replicas},
        {"metrics", json::array({{{"type", "Resource"},
                                  {"resource", {{"name", "cpu"}, {"target", target}}}}})}}}};
}

api::Time Now() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

void RecordEvent(controller::EventRecorder& recorder, std::string_view kind,
                 const api::ObjectMeta& object, const PlannedEvent& event) {
  recorder.Record(controller::EventSpec{
      .regarding = {.api_version = std::string(api::kApiVersion),
                    .kind = std::string(kind),
                    .ns = object.namespace_,
                    .name = object.name,
                    .uid = object.uid},
      .type = event.type,
      .reason = event.reason,
      .action = "Reconcile",
      .note = event.note,
  });
}

}  // namespace millrace::reconcilers
