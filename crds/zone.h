#pragma once

#include <expected>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crds/meta.h"
#include "crds/quantity.h"

namespace millrace::api {

enum class ZoneType { kDevelopment, kDeployment };
template <>
struct EnumNames<ZoneType> {
  static constexpr std::array<std::string_view, 2> kNames{"Development", "Deployment"};
};

enum class SubjectKind { kUser, kGroup };
template <>
struct EnumNames<SubjectKind> {
  static constexpr std::array<std::string_view, 2> kNames{"User", "Group"};
};

enum class MemberRole { kAdmin, kEdit, kView };
template <>
struct EnumNames<MemberRole> {
  static constexpr std::array<std::string_view, 3> kNames{"admin", "edit", "view"};
};

enum class DeletionPolicy { kDelete, kRetain };
template <>
struct EnumNames<DeletionPolicy> {
  static constexpr std::array<std::string_view, 2> kNames{"Delete", "Retain"};
};

enum class ZonePhase { kPending, kActive, kFailed, kTerminating };
template <>
struct EnumNames<ZonePhase> {
  static constexpr std::array<std::string_view, 4> kNames{"Pending", "Active", "Failed",
                                                          "Terminating"};
};

struct Subject {
  std::optional<SubjectKind> kind;  // default User
  std::string name;
};

struct Member {
  std::optional<SubjectKind> kind;  // default User
  std::string name;
  std::optional<MemberRole> role;  // default view
};

// cpu, memory and nvidia.com/gpu.
struct ComputeResources {
  std::optional<Quantity> cpu;
  std::optional<Quantity> memory;
  std::optional<Quantity> gpu;
};

struct ZoneLimits {
  std::optional<Quantity> cpu;
  std::optional<Quantity> memory;
  std::optional<Quantity> gpu;
  std::optional<Quantity> ephemeral_storage;
  std::optional<Quantity> storage;
  std::optional<int32_t> persistent_volume_claims;
  std::optional<int32_t> pods;
  std::optional<int32_t> services;
  std::optional<int32_t> config_maps;
  std::optional<int32_t> secrets;
  std::optional<int32_t> jobs;
  std::optional<int32_t> deployments;
  std::optional<int32_t> tasks;
  std::optional<int32_t> pipelines;
};

struct ZoneDefaults {
  std::optional<ComputeResources> requests;
  std::optional<ComputeResources> limits;
};

struct ZoneSpec {
  ZoneType type = ZoneType::kDevelopment;
  std::optional<std::string> namespace_;  // the zone's name when unset
  std::optional<Subject> owner;
  std::vector<Member> members;
  std::optional<ZoneLimits> limits;
  std::optional<ZoneDefaults> defaults;
  std::optional<ComputeResources> guarantees;
  std::optional<bool> network_isolation;          // default true
  std::optional<bool> egress_isolation;           // default false
  std::optional<DeletionPolicy> deletion_policy;  // default Retain
};

struct ZoneStatus {
  std::optional<ZonePhase> phase;
  std::string namespace_;
  std::map<std::string, Quantity> hard;
  std::map<std::string, Quantity> used;
  std::optional<int64_t> observed_generation;
  std::vector<Condition> conditions;
};

// A Zone (cluster-scoped): a namespace with quota, defaults, access and isolation.
struct Zone {
  ObjectMeta metadata;
  ZoneSpec spec;
  std::optional<ZoneStatus> status;

  static constexpr std::string_view kKind = "Zone";
  static constexpr std::string_view kPlural = "zones";

  // Type and format errors (missing required fields, wrong JSON types, unknown enum values,
  // invalid quantities) with field paths. Semantic checks are in crds/validation.h.
  static std::expected<Zone, ValidationErrors> FromJson(const Json& j);
  Json ToJson() const;

  // The namespace the zone manages: spec.namespace, else the zone's name.
  const std::string& TargetNamespace() const {
    return spec.namespace_ ? *spec.namespace_ : metadata.name;
  }
};

void Decode(codec::Context& c, const Json& j, const std::string& path, ZoneSpec& out);
Json Encode(const ZoneSpec& spec);

}  // namespace millrace::api
