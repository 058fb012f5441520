#pragma once

// Semantic validation shared by webhooks and reconcilers. FromJson() already reports type and
// format errors (missing required fields, unknown enum values, bad quantities and durations);
// these functions check what a schema cannot: cross-field rules, the Pipeline DAG and its template
// references, and immutability on update. Validate() expects a defaulted object (crds/defaults.h)
// but also accepts an undefaulted one. Every error names the field path and a reason; warnings
// (legal but suspicious) go to `warnings` when given.

#include <span>
#include <vector>

#include "crds/errors.h"
#include "crds/model_version.h"
#include "crds/pipeline.h"
#include "crds/schedule.h"
#include "crds/task.h"
#include "crds/zone.h"

namespace millrace::api {

ValidationErrors Validate(const Zone& zone, ValidationErrors* warnings = nullptr);
ValidationErrors Validate(const Task& task, ValidationErrors* warnings = nullptr);
ValidationErrors Validate(const Pipeline& pipeline, ValidationErrors* warnings = nullptr);
ValidationErrors Validate(const ModelVersion& mv, ValidationErrors* warnings = nullptr);
ValidationErrors Validate(const Schedule& schedule, ValidationErrors* warnings = nullptr);

// Validate(new) plus the rules of a change: immutable fields, cancel cannot be undone. For Zone,
// Task, Pipeline and ModelVersion.
template <class T>
ValidationErrors ValidateUpdate(const T& old_object, const T& object,
                                ValidationErrors* warnings = nullptr);

// A Task spec at `path` (e.g. "spec" or "spec.steps[3].task").
void ValidateTaskSpec(const TaskSpec& spec, const std::string& path, ValidationErrors& errors,
                      ValidationErrors* warnings = nullptr);

// At most one Production version per model, for admission of a *new* ModelVersion: `others` are
// the namespace's other ModelVersions (from the cache). An error at spec.stage when another version
// of the same model is in Production. Updates are not checked: setting spec.stage to Production on
// an existing version is a promotion, which the operator completes by archiving the previous one.
ValidationErrors ValidateProductionUnique(const ModelVersion& mv,
                                          std::span<const ModelVersion> others);

// FromJson + Default + Validate in one call, for admission and for tests: the errors of whichever
// step failed first.
template <class T>
std::expected<T, ValidationErrors> ParseAndValidate(const Json& j,
                                                    ValidationErrors* warnings = nullptr);

// Is `s` a DNS-1123 label (lowercase alphanumerics and '-', at most 63)?
bool IsDnsLabel(std::string_view s);

}  // namespace millrace::api

namespace millrace::api {

// `lhs <op> rhs` for numbers (In/NotIn are not numeric: false).
bool Compare(double lhs, Operator op, double rhs);

// The promotion gates `spec` fails, one message each (empty when all pass), e.g.
// "metric accuracy = 0.81 does not satisfy Ge 0.85", "lineage field codeRevision is not set".
std::vector<std::string> FailedGates(const ModelVersionSpec& spec);

}  // namespace millrace::api
