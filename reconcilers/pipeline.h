#pragma once

// The pure part of the Pipeline reconciler: from a Pipeline and its child Tasks, decide which steps
// start (with their references substituted), which are skipped or cancelled, which child Tasks to
// cancel, the status (small at any size: per step only phase, task, attempts, times, results and a
// short message), the events of each transition and when to look again. No I/O, no clock.
//
// Each started step is a child Task named ChildName(pipeline, step), owned by the Pipeline. A
// step's record in status is written after its Task was created; a reconcile after a crash finds
// the Task by that deterministic name (and the API server refuses a second create), so no step runs
// twice.
//
// A fan-out step (withItems, withParam, matrix) has one child Task per item, FanOutTaskName(), made
// in item order as its parallelism and the pipeline's allow; its record counts them
// (status.steps[].children) instead of naming them, so the status stays small: `started` says
// which exist (items 0 to started-1), and children are recounted from the observed Tasks. Every
// child's spec is substituted and checked when the step starts, so a bad item fails the step
// before any child runs. The step succeeds when every child succeeded, and then publishes each
// declared result as a JSON list of the children's values in item order (null for a child that
// published none); it fails when all children are final and one failed (the others still run
// unless failFast, as independent branches do).
//
// Choices made where docs/api/pipeline.md is silent:
// - A step's results are stored only while all steps' stored results stay within
//   api::kMaxStoredResults; a step whose results would pass it fails (ResultsTooLarge).
// - Steps that can never run because a dependency failed or was cancelled are Cancelled, with the
//   dependency named, so every regular step ends in a final phase and finally steps can start.
// - A step whose child Task disappears before it finished fails (reason TaskDeleted).
// - Streaming steps that are Ready count as done for their dependants and for progress, but keep
//   running: a pipeline with streaming steps stays Running (a live topology) until cancelled.
// - spec.timeout bounds the regular steps only: past it, running regular steps are cancelled and
//   pending ones never start; finally steps still run and may run past it. The run is
//   DeadlineExceeded when its last regular step ended at or after the deadline, read from the
//   step records' completionTime (every final record has one: a step that never ran has the time
//   it was skipped or cancelled, a fan-out step its last child's), not from when the reconcile
//   runs: a step that ended in time but was seen late does not fail the run, and the outcome
//   finally steps read as {{pipeline.phase}} is the one the run ends with.
// - A failed finally step fails a pipeline whose regular steps succeeded (reason
//   FinallyStepFailed), as in Tekton.
// - Conditions: Succeeded (Unknown while it runs, True, or False with the reason), as Tekton's.
// - ttlAfterFinished deletes the Pipeline itself (its Tasks follow by ownerReferences).
// - A ModelVersion registered by a step has no ownerReference to the run: the registry entry
//   outlives the run's TTL. Its lineage names the pipeline, the step and the step's image; a
//   metric that is not a number after substitution blocks the registration with a Warning event.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "crds/pipeline.h"
#include "reconcilers/names.h"

namespace millrace::reconcilers {

// Labels on every child Task of a pipeline.
inline constexpr std::string_view kPipelineLabel = "millrace.io/pipeline";
inline constexpr std::string_view kStepLabel = "millrace.io/step";
// On each child of a fan-out step: the item's index.
inline constexpr std::string_view kItemLabel = "millrace.io/item";

inline constexpr std::string_view kPipelineConditionSucceeded = "Succeeded";

struct ObservedPipeline {
  std::vector<nlohmann::json> tasks;  // the pipeline's child Tasks
};

struct PipelinePlan {
  std::vector<nlohmann::json> create;  // child Tasks to create
  std::vector<std::string> cancel;     // child Tasks to cancel (spec.cancel: true)
  // ModelVersions registered by succeeded steps' registerModel (created, never updated; a create
  // of an existing name is a no-op), before the status may say the run finished.
  std::vector<nlohmann::json> register_models;
  bool delete_pipeline = false;  // ttlAfterFinished has passed
  api::PipelineStatus status;
  std::vector<PlannedEvent> events;
  std::optional<std::chrono::seconds> requeue_after;
};

// The child Task of step `step`.
std::string StepTaskName(const api::Pipeline& pipeline, std::string_view step);

// The child Task of item `index` of fan-out step `step`: <pipeline>-<step>-<index>, whatever the
// item's value (validation keeps other steps' names apart from these).
std::string FanOutTaskName(const api::Pipeline& pipeline, std::string_view step, size_t index);

PipelinePlan PlanPipeline(const api::Pipeline& pipeline, const ObservedPipeline& observed,
                          api::Time now);

// A merge patch taking the pipeline's status to `status`, or null when nothing changes.
nlohmann::json PipelineStatusPatch(const api::Pipeline& pipeline,
                                   const api::PipelineStatus& status);

}  // namespace millrace::reconcilers
