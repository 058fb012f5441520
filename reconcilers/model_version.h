#pragma once

// The pure part of the ModelVersion reconciler: a version's serving children, its stage in effect,
// and promotion to Production. No I/O, no clock.
//
// Promotion (spec.stage Production while status.stage is not): one promotion of a model at a
// time, and at no instant two versions of a model saying Production. The reconciler serialises
// the reconciles of a model's versions and reads the stable Service live; the plan then:
//   1. checks the gates;
//   2. claims the model's promotion (condition Promoted RollingOut) in a reconcile of its own, so a
//      version asking while another's claim stands is refused (Promoted Superseded, not retried
//      until its spec changes) instead of taking traffic a second later;
//   3. waits until its own serving rollout is Ready (within serving.rolloutDeadline) and the claim
//      has stood 2-3 s, so versions asked for at the same moment all find it;
//   4. switches the stable Service `<model>` with an update carrying the resourceVersion it was
//      read at, and sets the previous Production version's spec.stage to Archived (as MLflow's
//      archive_existing_versions does, so it does not promote itself back);
//   5. says Production only once no other version's status does (Promoted ArchivingPrevious until
//      then): the previous version sees the Service name another and archives itself.
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
  std::optional<nlohmann::json> stable_service;  // the model's Service, if any (read live)
  std::vector<api::ModelVersion> siblings;       // the model's other versions in the namespace
};

struct ModelVersionPlan {
  std::vector<nlohmann::json> apply;  // serving children, server-side applied
  std::vector<ChildRef> remove;       // serving children to delete
  // The stable Service to write when this version takes Production: an update carrying the
  // observed Service's resourceVersion (or a create when there was none).
  std::optional<nlohmann::json> stable_service;
  bool remove_stable_service = false;  // this version left Production while holding it
  // A version whose spec.stage to set to Archived: the previous Production version, or this one
  // when another version's promotion superseded it.
  std::optional<std::string> archive;
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
