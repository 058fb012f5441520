#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crds/codec.h"
#include "crds/duration.h"

namespace millrace::api {

inline constexpr std::string_view kApiGroup = "millrace.io";
inline constexpr std::string_view kApiVersionName = "v1alpha1";
inline constexpr std::string_view kApiVersion = "millrace.io/v1alpha1";

// The parts of metav1.ObjectMeta the operator reads or writes. managedFields and other server
// bookkeeping are dropped on purpose: they are not needed and cost cache memory.
struct ObjectMeta {
  std::string name;
  std::string generate_name;
  std::string namespace_;
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  std::optional<Time> creation_timestamp;
  std::optional<Time> deletion_timestamp;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> finalizers;
  Json owner_references;  // metav1.OwnerReference list, as is (null when absent)
};

template <class V>
void Visit(V& v, ObjectMeta& m) {
  v("name", m.name);
  v("generateName", m.generate_name);
  v("namespace", m.namespace_);
  v("uid", m.uid);
  v("resourceVersion", m.resource_version);
  if (m.generation != 0 || !std::is_same_v<V, codec::FieldEncoder>) v("generation", m.generation);
  v("creationTimestamp", m.creation_timestamp);
  v("deletionTimestamp", m.deletion_timestamp);
  v("labels", m.labels);
  v("annotations", m.annotations);
  v("finalizers", m.finalizers);
  v("ownerReferences", m.owner_references);
}

enum class ConditionStatus { kTrue, kFalse, kUnknown };
template <>
struct EnumNames<ConditionStatus> {
  static constexpr std::array<std::string_view, 3> kNames{"True", "False", "Unknown"};
};

// metav1.Condition.
struct Condition {
  std::string type;
  ConditionStatus status = ConditionStatus::kUnknown;
  std::optional<int64_t> observed_generation;
  Time last_transition_time{};
  std::string reason;
  std::string message;
};

template <class V>
void Visit(V& v, Condition& c) {
  v("type", c.type, codec::kRequired);
  v("status", c.status, codec::kRequired);
  v("observedGeneration", c.observed_generation);
  v("lastTransitionTime", c.last_transition_time, codec::kRequired);
  v("reason", c.reason, codec::kRequired);
  v("message", c.message, codec::kRequired);  // required by metav1, may be empty
}

// The condition of `type`, or null.
const Condition* FindCondition(const std::vector<Condition>& conditions, std::string_view type);

// Sets a condition the metav1 way: lastTransitionTime changes only when status changes. Returns
// true if anything changed.
bool SetCondition(std::vector<Condition>& conditions, Condition condition);

// A metav1.OwnerReference with controller and blockOwnerDeletion set, for a child's
// metadata.ownerReferences. `uid` must be the owner's metadata.uid.
Json ControllerReference(std::string_view api_version, std::string_view kind, std::string_view name,
                         std::string_view uid);

// True when `object` (a Kubernetes object as JSON) has a controller owner reference to `owner_uid`.
// Use before deleting a child found by name, so that an object someone else made is never deleted.
bool IsControlledBy(const Json& object, std::string_view owner_uid);

// A JSON merge patch (RFC 7386) that makes `old_value` into `new_value`: `new_value` whole (so the
// result does not depend on `old_value` being fresh), plus null for every object key of
// `old_value` that `new_value` lacks (so stale keys are removed), recursively. Arrays are replaced
// whole, as merge patches do.
Json MergePatchReplacing(const Json& old_value, const Json& new_value);

}  // namespace millrace::api
