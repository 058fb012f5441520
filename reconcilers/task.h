#pragma once

// The pure part of the Task reconciler: from a Task and what the caches show of its children,
// decide which children to create, apply or delete, the status, the events of each transition
// and when to look again. No I/O, no clock, no threads.
//
// Batch tasks run one Job per attempt, named ChildName(task, attempt number). The attempt count
// comes from the Jobs themselves as well as from status.attempts, so a reconcile that runs on a
// stale cache or after a crash finds the Job it made instead of making another (and a create of a
// Job that exists is refused by the API server with AlreadyExists). Retries are Millrace's, not the
// Job's: every Job has backoffLimit 0, so the delay, the failure kinds retried and the deadline
// follow spec.retries and spec.timeout exactly.
//
// Choices made where docs/api/task.md is silent (what a demanding user expects):
// - Before a Job is made, its pod is checked against the namespace's ResourceQuotas (with the
//   LimitRange defaults the API server would fill in): a task that does not fit stays Pending with
//   reason QuotaExceeded and the quota's numbers, and starts as soon as the quota allows, instead
//   of leaving a Job whose pods the API server keeps refusing. The API server still has the last
//   word.
// - The task's labels and annotations (but kubectl's last-applied configuration) are copied onto
//   its pods, as Tekton does, so pod-level tools (and kwok's stage labels in tests) see them.
// - A Job that disappears while its attempt runs counts as a failed attempt of kind Evicted.
// - Phase Pending until the attempt's pod runs; Running while it runs or while waiting out a retry
//   backoff (status.nextRetryTime says until when).
// - Conditions: Ready (batch: True once Succeeded; streaming: all wanted replicas ready) whose
//   reason always says what the task is doing or waiting for (QuotaExceeded, Unschedulable,
//   ImagePullBackOff, RetryScheduled, ...), and, once finished, Complete or Failed as Jobs have.
// - ttlAfterFinished deletes the Jobs (and so their pods); the Task and its status stay.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "crds/task.h"
#include "reconcilers/names.h"

namespace millrace::reconcilers {

// Labels on every child and pod of a task.
inline constexpr std::string_view kTaskLabel = "millrace.io/task";
inline constexpr std::string_view kAttemptLabel = "millrace.io/attempt";
// On each pod of an Indexed Job (a task with spec.workers): its index, the worker's rank.
inline constexpr std::string_view kCompletionIndexAnnotation =
    "batch.kubernetes.io/job-completion-index";
// The port workers of a gang rendezvous on (MASTER_PORT), as torchrun's default.
inline constexpr int kMasterPort = 29500;
// The container's name in every pod Millrace makes.
inline constexpr std::string_view kMainContainer = "main";

inline constexpr std::string_view kTaskConditionReady = "Ready";
inline constexpr std::string_view kTaskConditionComplete = "Complete";
inline constexpr std::string_view kTaskConditionFailed = "Failed";

// What the reconciler read about one task.
struct ObservedTask {
  std::vector<nlohmann::json> jobs;  // Jobs the task controls
  std::vector<nlohmann::json> pods;  // pods labelled millrace.io/task=<name>
  std::optional<nlohmann::json> deployment;
  std::optional<nlohmann::json> service;
  std::optional<nlohmann::json> horizontal_pod_autoscaler;
  std::vector<nlohmann::json> resource_quotas;  // of the task's namespace
  std::vector<nlohmann::json> limit_ranges;     // of the task's namespace
  // The zone's PriorityClass, used when the task names none.
  std::optional<std::string> zone_priority_class;
  // Set when the API server refused the Job PlanTask asked to create (e.g. an invalid pod spec
  // passed through from the task): the next plan fails the task with this message.
  std::optional<std::string> job_rejected;
  // Set when that Job's name is held by a leftover of an earlier Task of this name, still being
  // garbage-collected: the next plan waits for it to go, with this message.
  std::optional<std::string> job_blocked;
};

struct TaskPlan {
  std::optional<nlohmann::json> create_job;  // the next attempt's Job, to create (never apply)
  std::vector<nlohmann::json> apply;         // streaming children, server-side applied
  std::vector<ChildRef> remove;              // children to delete (controlled by the task)
  api::TaskStatus status;                    // the whole new status
  std::vector<PlannedEvent> events;          // one per transition
  std::optional<std::chrono::seconds> requeue_after;  // a deadline or backoff to wake up for
};

// The name of attempt `attempt`'s Job.
std::string TaskJobName(const api::Task& task, int attempt);

// The Job of attempt `attempt` (1-based). `priority_class` is used when the spec names none.
nlohmann::json TaskJob(const api::Task& task, int attempt,
                       const std::optional<std::string>& priority_class);

// The headless Service of a batch task with spec.workers, named after the task: each worker is
// <job>-<rank>.<task> in the namespace, rank 0's the MASTER_ADDR of all.
nlohmann::json TaskWorkersService(const api::Task& task);

// The streaming children: a Deployment, a Service (headless without spec.service) and, with
// spec.scaling, a HorizontalPodAutoscaler, all named after the task.
std::vector<nlohmann::json> TaskStreamingChildren(const api::Task& task,
                                                  const std::optional<std::string>& priority_class);

// The delay before retry `retry` (1-based): duration * factor^(retry-1), capped at maxDuration.
std::chrono::seconds RetryDelay(const api::Retries& retries, int retry);

// Why a pod of `spec` would be refused by one of `quotas` (after `limit_ranges` defaults), as a
// message naming the quota and the numbers; nullopt when it fits.
std::optional<std::string> QuotaShortfall(const api::TaskSpec& spec,
                                          const std::vector<nlohmann::json>& quotas,
                                          const std::vector<nlohmann::json>& limit_ranges);

// The attempt whose Job has finished while the newest pod `observed` shows of it is not terminal
// (or none is shown). The Job and its pods arrive on different watches, so the pod cache may lag
// the Job's: its final state (results, exit code, reason) must then be read from the API server
// before the task is finished on it. nullopt when the caches already tell all PlanTask needs.
std::optional<int> AttemptPodToRead(const api::Task& task, const ObservedTask& observed);

// The decision for one reconcile at wall time `now`.
TaskPlan PlanTask(const api::Task& task, const ObservedTask& observed, api::Time now);

// A merge patch taking the task's status to `status`, or null when nothing changes.
nlohmann::json TaskStatusPatch(const api::Task& task, const api::TaskStatus& status);

// Drops what PlanTask never reads of a Job (its spec, pod template included), for the Job cache.
void TrimTaskJob(nlohmann::json& job);

// Keeps what PlanTask reads of a pod (phase, reasons, conditions, container states) and drops the
// rest, for the pod cache.
void TrimTaskPod(nlohmann::json& pod);

}  // namespace millrace::reconcilers
