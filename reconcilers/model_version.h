#pragma once

// The pure part of the ModelVersion reconciler: a version's serving children, its stage in effect,
// and promotion to Production. No I/O, no clock.
//
// Promotion (spec.stage Production while status.stage is not): the gates must hold; the version's
// own serving rollout must be Ready (within serving.rolloutDeadline) before traffic moves; then the
// stable Service `<model>` is switched to this version with an update that carries the Service's
// resourceVersion, so of two racing promotions exactly one switch succeeds and the other retries
// against the new holder; finally the previous Production version is archived by setting its
// spec.stage to Archived (as MLflow's archive_existing_versions does), so it does not promote
// itself back.
//
// Choices made where docs/api/modelversion.md is silent:
// - The stable Service is owned (controller reference) by the Production version, so it goes away
//   with it; it carries the annotation millrace.io/production-version.
// - A version leaving Production (to Staging, None or Archived) while it holds the stable Service
//   removes that Service: no traffic goes to a version that is not Production.
// - Phase: Archived; else Deploying while a served version's replicas are not ready; Serving when
//   they are; Registered when not served.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "crds/model_version.h"
#include "reconcilers/names.h"

namespace millrace::reconcilers {

inline constexpr std::string_view kModelLabel = "millrace.io/model";
inline constexpr std::string_view kModelVersionLabel = "millrace.io/model-version";
inline constexpr std::string_view kProductionVersionAnnotation = "millrace.io/production-version";

inline constexpr std::string_view kConditionModelReady = "Ready";
inline constexpr std::string_view kConditionPromoted = "Promoted";

struct ObservedModelVersion {
  std::optional<nlohmann::json> deployment;  // this version's serving children
  std::optional<nlohmann::json> service;
  std::optional<nlohmann::json> horizontal_pod_autoscaler;
  std::optional<nlohmann::json> stable_service;  // the model's Service, if any
};

struct ModelVersionPlan {
  std::vector<nlohmann::json> apply;  // serving children, server-side applied
  std::vector<ChildRef> remove;       // serving children to delete
  // The stable Service to write when this version takes Production: an update carrying the
  // observed Service's resourceVersion (or a create when there was none).
  std::optional<nlohmann::json> stable_service;
  bool remove_stable_service = false;  // this version left Production while holding it
  std::optional<std::string> archive;  // the previous Production version's object name
  api::ModelVersionStatus status;
  std::vector<PlannedEvent> events;
  std::optional<std::chrono::seconds> requeue_after;
};

// The serving Deployment, Service and (with autoscaling) HorizontalPodAutoscaler of `mv`.
std::vector<nlohmann::json> ModelServingChildren(const api::ModelVersion& mv);

ModelVersionPlan PlanModelVersion(const api::ModelVersion& mv, const ObservedModelVersion& observed,
                                  api::Time now);

nlohmann::json ModelVersionStatusPatch(const api::ModelVersion& mv,
                                       const api::ModelVersionStatus& status);

}  // namespace millrace::reconcilers
