#pragma once

// Reading Kubernetes objects held as JSON (children and caches), tolerant of missing fields, and
// the small pieces the reconcilers share: condition and autoscaler builders, the requeue rule,
// status patches, events.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "controller/events.h"
#include "controller/mutation_cache.h"
#include "controller/reconciler.h"
#include "controller/store.h"
#include "crds/duration.h"
#include "crds/errors.h"
#include "crds/meta.h"
#include "crds/task.h"
#include "reconcilers/names.h"

namespace millrace::reconcilers {

// j[key] when j is an object holding a string there, else "".
std::string Str(const nlohmann::json& j, std::string_view key);
// The ChildRef of an object: apiVersion, kind, namespace, name, and its uid when it has one (an
// observed object), so that deleting it is conditional on that uid.
ChildRef ChildRefOf(const nlohmann::json& object);
// j[key] when present, else a null (never inserts).
const nlohmann::json& Sub(const nlohmann::json& j, std::string_view key);
// j[key] when it is an integer, else `fallback`.
int64_t Int(const nlohmann::json& j, std::string_view key, int64_t fallback = 0);
// j[key] parsed as metav1.Time, if it is one.
std::optional<api::Time> TimeOf(const nlohmann::json& j, std::string_view key);
// The condition of `type` with status "True" in object.status.conditions, or nullptr.
const nlohmann::json* TrueCondition(const nlohmann::json& object, std::string_view type);

// Where a Deployment's rollout stands, read as `kubectl rollout status` reads it: every wanted
// replica runs the current pod template and is available, and no replica of an older template is
// left. readyReplicas alone counts old pods too, so it cannot say the new spec serves.
struct DeploymentRollout {
  int64_t wanted = 1;     // spec.replicas
  int64_t ready = 0;      // status.readyReplicas (old and new template)
  int64_t updated = 0;    // status.updatedReplicas (the current template, ready or not)
  int64_t available = 0;  // status.availableReplicas
  int64_t total = 0;      // status.replicas (every non-terminated pod)
  bool observed = false;  // status.observedGeneration >= metadata.generation
  // The Deployment controller has seen the current spec, every wanted replica is updated and
  // available, and no old replica is left.
  bool Complete() const {
    return observed && updated >= wanted && total <= updated && available >= wanted &&
           ready >= wanted;
  }
  // A new template is being rolled out: the spec is not yet observed, fewer than `wanted` replicas
  // run it, or replicas of an older template remain.
  bool ReplacingPods() const { return !observed || total > updated || updated < wanted; }
  // What the rollout waits for ("1 of 2 replicas updated to the new spec, 2 old replicas still
  // running"), for condition messages.
  std::string Describe() const;
};
DeploymentRollout RolloutOf(const nlohmann::json& deployment);

// The cached object at `key` if it has a controller ownerReference to `owner_uid`.
std::optional<nlohmann::json> ControlledBy(const controller::Store& store, const std::string& key,
                                           const std::string& owner_uid);

// Whether `existing`, an object found where a child of `owner_kind` `owner_name` was to be created,
// is a leftover of an earlier owner of that kind and name: being deleted, or controlled by an owner
// of that name whose uid is not `owner_uid` (that owner is gone, since names are unique, and the
// garbage collector deletes its children soon). A re-created Task or Pipeline waits for those
// instead of failing on the name.
bool LeftoverOfEarlierOwner(const nlohmann::json& existing, std::string_view owner_kind,
                            std::string_view owner_name, std::string_view owner_uid);

// `s` cut to at most `max` bytes at a UTF-8 boundary, with "..." when cut.
std::string Truncate(std::string s, size_t max);

// A JSON merge patch taking `object`'s status to `status`, or null when nothing changes (so a
// reconcile that changes nothing writes nothing). For Task, Pipeline and ModelVersion.
template <class Resource, class Status>
nlohmann::json StatusPatchFor(const Resource& object, const Status& status) {
  Resource after = object;
  after.status = status;
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json old_status = object.status ? object.ToJson().value("status", empty) : empty;
  const nlohmann::json new_status = after.ToJson().value("status", empty);
  if (old_status == new_status) return nullptr;
  return nlohmann::json{{"status", api::MergePatchReplacing(old_status, new_status)}};
}

// A metav1.Condition observed at `generation`, transitioned `now` (SetCondition keeps the older
// time when the status did not change).
api::Condition MakeCondition(std::string_view type, api::ConditionStatus status, std::string reason,
                             std::string message, int64_t generation, api::Time now);

// When `span` has surely passed since `start`, a metav1.Time cut to whole seconds (the real start
// may be up to a second later): start + ceil(span) + 1 s. A timeout checked against it (with `now`
// also in whole seconds) fires between span and span + 1 s after the real start, never before.
api::Time DeadlineAfter(api::Time start, std::chrono::nanoseconds span);

// Wakes a plan up no later than `after` from now (at least a second): keeps the earliest.
void RequeueWithin(std::optional<std::chrono::seconds>& requeue_after, std::chrono::seconds after);

// An autoscaling/v2 HorizontalPodAutoscaler for Deployment `deployment` on CPU utilisation
// (minReplicas default 1, target default 80 percent of requests).
nlohmann::json HorizontalPodAutoscalerFor(nlohmann::json metadata, const std::string& deployment,
                                          const api::Autoscaling& scaling);

// The cached object at `key` decoded as T (Zone, Task, Pipeline, ModelVersion), or the status
// this controller wrote to it if the cache has not caught up (`written`): nullopt when it is
// gone, a terminal error outcome when it does not decode (the schema and webhook keep that from
// happening; if it does, it is reported, not retried).
template <class T>
std::expected<std::optional<T>, controller::Outcome> DecodeCached(
    const controller::Store& store, const controller::MutationCache& written,
    const std::string& key) {
  const controller::Object object = written.Newest(key, store.Get(key));
  if (!object) return std::optional<T>{};
  auto decoded = T::FromJson(*object);
  if (!decoded) {
    return std::unexpected(controller::Outcome::TerminalError(
        std::string(T::kKind) + " " + key + " does not decode: " + api::ToString(decoded.error())));
  }
  return std::optional<T>(std::move(*decoded));
}

// Wall time now, in metav1.Time's whole seconds.
api::Time Now();

// Records `event` about one of our objects (kind of group millrace.io).
void RecordEvent(controller::EventRecorder& recorder, std::string_view kind,
                 const api::ObjectMeta& object, const PlannedEvent& event);

}  // namespace millrace::reconcilers
