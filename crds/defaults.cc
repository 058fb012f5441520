#include "crds/defaults.h"

#include <chrono>

namespace millrace::api {
namespace {

using namespace std::chrono_literals;

template <class T, class U>
void SetIfUnset(std::optional<T>& field, U&& value) {
  if (!field) field = std::forward<U>(value);
}

void Default(Autoscaling& a) {
  SetIfUnset(a.min_replicas, kDefaultMinReplicas);
  SetIfUnset(a.target_cpu_utilization, kDefaultTargetCpuUtilization);
}

}  // namespace

Duration DefaultBackoffDuration() { return Duration{10s, "10s"}; }
Duration DefaultBackoffMaxDuration() { return Duration{10min, "10m"}; }
Duration DefaultRolloutDeadline() { return Duration{10min, "10m"}; }

void Default(Zone& zone) {
  auto& s = zone.spec;
  if (s.owner) SetIfUnset(s.owner->kind, SubjectKind::kUser);
  for (auto& m : s.members) {
    SetIfUnset(m.kind, SubjectKind::kUser);
    SetIfUnset(m.role, MemberRole::kView);
  }
  SetIfUnset(s.network_isolation, true);
  SetIfUnset(s.egress_isolation, false);
  SetIfUnset(s.deletion_policy, DeletionPolicy::kRetain);
}

void Default(TaskSpec& s) {
  if (s.retries) {
    auto& r = *s.retries;
    if (!r.backoff) r.backoff = Backoff{};
    Backoff& b = *r.backoff;
    SetIfUnset(b.duration, DefaultBackoffDuration());
    SetIfUnset(b.factor, kDefaultBackoffFactor);
    SetIfUnset(b.max_duration, DefaultBackoffMaxDuration());
    // The schema's default applies to an absent list only; an empty list stays empty but encodes
    // as absent, so both are treated as "absent" here.
    if (r.on_failure.empty()) {
      r.on_failure = {FailureKind::kError, FailureKind::kOOMKilled, FailureKind::kEvicted};
    }
  }
  if (s.service) SetIfUnset(s.service->protocol, Protocol::kTCP);
  if (s.scaling) Default(*s.scaling);
  SetIfUnset(s.cancel, false);
}

void Default(Task& task) { Default(task.spec); }

void Default(Pipeline& pipeline) {
  auto& s = pipeline.spec;
  for (auto* steps : {&s.steps, &s.finally}) {
    for (auto& step : *steps) {
      Default(step.task);
      if (step.register_model) SetIfUnset(step.register_model->stage, Stage::kNone);
    }
  }
  SetIfUnset(s.fail_fast, false);
  SetIfUnset(s.suspend, false);
  SetIfUnset(s.cancel, false);
}

void Default(Schedule& schedule) {
  auto& s = schedule.spec;
  SetIfUnset(s.time_zone, std::string("UTC"));
  SetIfUnset(s.concurrency_policy, ConcurrencyPolicy::kAllow);
  SetIfUnset(s.suspend, false);
  SetIfUnset(s.successful_runs_history_limit, 3);
  SetIfUnset(s.failed_runs_history_limit, 1);
  Pipeline run;
  run.spec = std::move(s.pipeline.spec);
  Default(run);
  s.pipeline.spec = std::move(run.spec);
}

void Default(ModelVersion& mv) {
  auto& s = mv.spec;
  SetIfUnset(s.stage, Stage::kNone);
  if (s.serving) {
    SetIfUnset(s.serving->port, kDefaultServingPort);
    SetIfUnset(s.serving->rollout_deadline, DefaultRolloutDeadline());
    if (s.serving->autoscaling) Default(*s.serving->autoscaling);
  }
}

}  // namespace millrace::api
