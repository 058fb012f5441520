#pragma once

// Defaulting, the same as the CRD schemas' `default`s, so the controller can apply defaults itself
// when no mutating webhook runs (and a webhook can compute its patch). Idempotent.

#include "crds/model_version.h"
#include "crds/pipeline.h"
#include "crds/task.h"
#include "crds/zone.h"

namespace millrace::api {

void Default(Zone& zone);
void Default(TaskSpec& spec);
void Default(Task& task);
void Default(Pipeline& pipeline);
void Default(ModelVersion& mv);
void Default(Schedule& schedule);

// The effective values of defaulted fields, for code that must not depend on defaulting having run.
inline constexpr int32_t kDefaultMinReplicas = 1;
inline constexpr int32_t kDefaultTargetCpuUtilization = 80;
inline constexpr double kDefaultBackoffFactor = 2.0;
inline constexpr int32_t kDefaultServingPort = 8080;
Duration DefaultBackoffDuration();     // 10s
Duration DefaultBackoffMaxDuration();  // 10m
Duration DefaultRolloutDeadline();     // 10m

}  // namespace millrace::api
