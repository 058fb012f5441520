#include "crds/validation.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "crds/cron.h"
#include "crds/dag.h"
#include "crds/defaults.h"
#include "crds/templates.h"
#include "crds/time_zone.h"

namespace millrace::api {
namespace {

using codec::Index;
using codec::Join;
using codec::Key;

class Checker {
 public:
  Checker(ValidationErrors& errors, ValidationErrors* warnings)
      : errors_(errors), warnings_(warnings) {}

  void Error(std::string path, std::string_view reason, std::string detail) {
    errors_.push_back({std::move(path), std::string(reason), std::move(detail)});
  }
  void Warn(std::string path, std::string detail) {
    if (warnings_ != nullptr) warnings_->push_back({std::move(path), "Warning", std::move(detail)});
  }
  ValidationErrors* warnings() { return warnings_; }
  ValidationErrors& errors() { return errors_; }

 private:
  ValidationErrors& errors_;
  ValidationErrors* warnings_;
};

bool Matches(std::string_view s, size_t max, bool first_letter) {
  if (s.empty() || s.size() > max) return false;
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  if (first_letter && (s.front() < 'a' || s.front() > 'z')) return false;
  return std::ranges::all_of(s, [&](char c) { return alnum(c) || c == '-'; });
}

bool IsIdentifier(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!letter(s.front()) && s.front() != '_') return false;
  return std::ranges::all_of(
      s, [&](char c) { return letter(c) || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
}

bool HasScheme(std::string_view uri) {
  const size_t sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0 || sep + 3 >= uri.size()) return false;
  if (uri[0] < 'a' || uri[0] > 'z') return false;
  return std::all_of(uri.begin(), uri.begin() + static_cast<std::ptrdiff_t>(sep), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-';
  });
}

std::optional<double> ParseNumber(std::string_view s) {
  double v = 0;
  const char* begin = std::to_address(s.begin());
  const char* end = std::to_address(s.end());
  const auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc() || ptr != end || s.empty()) return std::nullopt;
  return v;
}

bool HasReferences(std::string_view s) { return s.find("{{") != std::string_view::npos; }

void CheckNonNegative(Checker& c, const std::optional<Quantity>& q, const std::string& path) {
  if (q && q->negative()) c.Error(path, reason::kInvalid, "must not be negative");
}

void CheckWhole(Checker& c, const std::optional<Quantity>& q, const std::string& path) {
  if (q && q->milli() % 1000 != 0) {
    c.Error(path, reason::kInvalid, "GPUs are whole devices: must be an integer");
  }
}

// `small` must not exceed `big` (both optional).
void CheckAtMost(Checker& c, const std::optional<Quantity>& small,
                 const std::optional<Quantity>& big, const std::string& path, std::string_view what,
                 std::string_view bound) {
  if (small && big && *small > *big) {
    c.Error(path, reason::kInvalid,
            std::string(what) + " " + small->text() + " exceeds " + std::string(bound) + " " +
                big->text());
  }
}

void CheckCompute(Checker& c, const std::optional<ComputeResources>& r, const std::string& path) {
  if (!r) return;
  CheckNonNegative(c, r->cpu, Join(path, "cpu"));
  CheckNonNegative(c, r->memory, Join(path, "memory"));
  CheckNonNegative(c, r->gpu, Join(path, "gpu"));
  CheckWhole(c, r->gpu, Join(path, "gpu"));
}

void CheckResources(Checker& c, const std::optional<ResourceRequirements>& r,
                    const std::string& path) {
  if (!r) return;
  for (const auto& [name, q] : r->requests)
    if (q.negative())
      c.Error(Key(Join(path, "requests"), name), reason::kInvalid, "must not be negative");
  for (const auto& [name, q] : r->limits)
    if (q.negative())
      c.Error(Key(Join(path, "limits"), name), reason::kInvalid, "must not be negative");
  for (const auto& [name, q] : r->requests) {
    const auto it = r->limits.find(name);
    if (it != r->limits.end() && q > it->second) {
      c.Error(Key(Join(path, "requests"), name), reason::kInvalid,
              "request " + q.text() + " exceeds limit " + it->second.text());
    }
  }
}

void CheckEnv(Checker& c, const std::vector<EnvVar>& env, const std::string& path) {
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < env.size(); ++i) {
    const auto p = Index(path, i);
    if (env[i].name.empty()) c.Error(Join(p, "name"), reason::kRequired, "must not be empty");
    if (!seen.insert(env[i].name).second) {
      c.Error(Join(p, "name"), reason::kDuplicate, "duplicate variable \"" + env[i].name + "\"");
    }
    if (env[i].value && !env[i].value_from.is_null()) {
      c.Error(p, reason::kForbidden, "value and valueFrom are mutually exclusive");
    }
  }
}

void CheckAutoscaling(Checker& c, const Autoscaling& a, const std::string& path) {
  const int32_t min = a.min_replicas.value_or(kDefaultMinReplicas);
  if (a.max_replicas < 1)
    c.Error(Join(path, "maxReplicas"), reason::kInvalid, "must be at least 1");
  if (min < 1) c.Error(Join(path, "minReplicas"), reason::kInvalid, "must be at least 1");
  if (min > a.max_replicas) {
    c.Error(Join(path, "minReplicas"), reason::kInvalid,
            "minReplicas " + std::to_string(min) + " exceeds maxReplicas " +
                std::to_string(a.max_replicas));
  }
  if (a.target_cpu_utilization &&
      (*a.target_cpu_utilization < 1 || *a.target_cpu_utilization > 100)) {
    c.Error(Join(path, "targetCPUUtilization"), reason::kInvalid, "must be between 1 and 100");
  }
}

void CheckPort(Checker& c, int32_t port, const std::string& path) {
  if (port < 1 || port > 65535) c.Error(path, reason::kInvalid, "must be between 1 and 65535");
}

void CheckDataRef(Checker& c, const DataRef& d, const std::string& path) {
  if (d.batch.has_value() == d.stream.has_value()) {
    c.Error(path, reason::kInvalid, "exactly one of batch or stream must be set");
  }
  if (d.batch && d.batch->uri.empty()) {
    c.Error(Join(Join(path, "batch"), "uri"), reason::kRequired, "must not be empty");
  }
  if (d.stream && !d.stream->topic && !d.stream->endpoint) {
    c.Error(Join(path, "stream"), reason::kRequired, "a stream needs a topic or an endpoint");
  }
}

void TaskSpecChecks(Checker& c, const TaskSpec& s, const std::string& path) {
  if (s.workers && *s.workers > 1 && Streaming(s)) {
    c.Error(Join(path, "workers"), reason::kForbidden,
            "workers apply only to batch tasks: a streaming task scales with spec.scaling");
  }
  if (s.image.empty()) c.Error(Join(path, "image"), reason::kRequired, "must not be empty");
  if (s.role == TaskRole::kSpout && s.input) {
    c.Error(Join(path, "input"), reason::kForbidden, "a Spout ingests data and has no input");
  }
  if (s.role == TaskRole::kBolt && !s.input) {
    c.Warn(Join(path, "input"), "a Bolt without an input transforms nothing; is it a Spout?");
  }
  if (s.input) CheckDataRef(c, *s.input, Join(path, "input"));
  if (s.output) CheckDataRef(c, *s.output, Join(path, "output"));
  CheckEnv(c, s.env, Join(path, "env"));
  CheckResources(c, s.resources, Join(path, "resources"));
  for (size_t i = 0; i < s.tolerations.size(); ++i) {
    const auto& t = s.tolerations[i];
    if (t.operator_ == TolerationOperator::kExists && t.value && !t.value->empty()) {
      c.Error(Join(Index(Join(path, "tolerations"), i), "value"), reason::kInvalid,
              "must be empty when operator is Exists");
    }
  }
  if (s.retries) {
    const auto rp = Join(path, "retries");
    const auto& r = *s.retries;
    if (r.limit < 0 || r.limit > 100) {
      c.Error(Join(rp, "limit"), reason::kInvalid, "must be between 0 and 100");
    }
    if (r.backoff) {
      const auto bp = Join(rp, "backoff");
      if (r.backoff->factor && (*r.backoff->factor < 1 || *r.backoff->factor > 10)) {
        c.Error(Join(bp, "factor"), reason::kInvalid, "must be between 1 and 10");
      }
      const Duration first = r.backoff->duration.value_or(DefaultBackoffDuration());
      const Duration max = r.backoff->max_duration.value_or(DefaultBackoffMaxDuration());
      if (first > max) {
        c.Error(Join(bp, "duration"), reason::kInvalid,
                "the first delay " + first.text + " exceeds maxDuration " + max.text);
      }
    }
    std::set<FailureKind> kinds;
    for (size_t i = 0; i < r.on_failure.size(); ++i) {
      if (!kinds.insert(r.on_failure[i]).second) {
        c.Error(Index(Join(rp, "onFailure"), i), reason::kDuplicate,
                "duplicate value \"" + std::string(ToString(r.on_failure[i])) + "\"");
      }
    }
    if (kinds.contains(FailureKind::kDeadlineExceeded) && !r.attempt_timeout) {
      c.Warn(Join(rp, "onFailure"),
             "DeadlineExceeded is retried only when retries.attemptTimeout is set");
    }
    if (s.timeout && r.attempt_timeout && *r.attempt_timeout > *s.timeout) {
      c.Warn(Join(rp, "attemptTimeout"), "exceeds the task's timeout");
    }
  }
  if (s.service) CheckPort(c, s.service->port, Join(Join(path, "service"), "port"));
  if (s.scaling) {
    if (!Streaming(s)) {
      c.Error(Join(path, "scaling"), reason::kForbidden,
              "scaling applies only to streaming tasks (a stream input or a service)");
    }
    CheckAutoscaling(c, *s.scaling, Join(path, "scaling"));
  }
  if (Streaming(s)) {
    if (s.timeout) c.Warn(Join(path, "timeout"), "ignored: a streaming task runs until deleted");
    if (s.retries) c.Warn(Join(path, "retries"), "ignored: a streaming task's pods are restarted");
    if (s.ttl_after_finished) c.Warn(Join(path, "ttlAfterFinished"), "ignored for streaming tasks");
    if (!s.results.empty()) c.Warn(Join(path, "results"), "a streaming task publishes no results");
  }
  std::unordered_set<std::string_view> results;
  for (size_t i = 0; i < s.results.size(); ++i) {
    const auto p = Join(Index(Join(path, "results"), i), "name");
    if (!IsIdentifier(s.results[i].name, 63)) {
      c.Error(p, reason::kInvalid,
              "must start with a letter and contain letters, digits, '_', '-'");
    }
    if (!results.insert(s.results[i].name).second) {
      c.Error(p, reason::kDuplicate, "duplicate result \"" + s.results[i].name + "\"");
    }
  }
}

// A field an update must not change.
void CheckImmutable(ValidationErrors& errors, bool changed, std::string path) {
  if (changed)
    errors.push_back({std::move(path), std::string(reason::kInvalid), "field is immutable"});
}

}  // namespace

bool IsDnsLabel(std::string_view s) { return Matches(s, 63, false); }

void ValidateTaskSpec(const TaskSpec& spec, const std::string& path, ValidationErrors& errors,
                      ValidationErrors* warnings) {
  Checker c(errors, warnings);
  TaskSpecChecks(c, spec, path);
}

// ---- Zone ---------------------------------------------------------------------------------------

ValidationErrors Validate(const Zone& zone, ValidationErrors* warnings) {
  ValidationErrors errors;
  Checker c(errors, warnings);
  const auto& s = zone.spec;
  if (s.namespace_) {
    if (!IsDnsLabel(*s.namespace_)) {
      c.Error("spec.namespace", reason::kInvalid,
              "must be a DNS label (a-z, 0-9, '-', at most 63)");
    }
    static const std::set<std::string, std::less<>> kSystem{"default", "kube-system", "kube-public",
                                                            "kube-node-lease"};
    if (kSystem.contains(*s.namespace_)) {
      c.Error("spec.namespace", reason::kForbidden, "a zone cannot manage a system namespace");
    }
  } else if (!zone.metadata.name.empty() && !IsDnsLabel(zone.metadata.name)) {
    c.Error("metadata.name", reason::kInvalid,
            "the zone's name is its namespace's name, so it must be a DNS label; or set "
            "spec.namespace");
  }
  if (s.owner && s.owner->name.empty()) {
    c.Error("spec.owner.name", reason::kRequired, "must not be empty");
  }
  if (s.type == ZoneType::kDevelopment) {
    if (!s.owner) {
      c.Error("spec.owner", reason::kRequired, "a Development zone needs exactly one owner");
    } else if (s.owner->kind == SubjectKind::kGroup) {
      c.Error("spec.owner.kind", reason::kInvalid,
              "the owner of a Development zone must be a User");
    }
    if (!s.members.empty()) {
      c.Error("spec.members", reason::kForbidden,
              "a Development zone belongs to its owner alone and has no members");
    }
    if (s.guarantees) {
      c.Error("spec.guarantees", reason::kForbidden, "guarantees apply to Deployment zones only");
    }
  } else {
    if (!s.owner && s.members.empty()) {
      c.Error("spec.members", reason::kRequired, "a Deployment zone needs an owner or a member");
    }
    const bool admin = s.owner.has_value() || std::ranges::any_of(s.members, [](const Member& m) {
                         return m.role == MemberRole::kAdmin;
                       });
    if (!admin) c.Warn("spec.members", "no owner and no admin member: nobody can grant access");
  }
  std::set<std::pair<SubjectKind, std::string_view>> seen;
  for (size_t i = 0; i < s.members.size(); ++i) {
    const auto& m = s.members[i];
    const auto p = Index("spec.members", i);
    if (m.name.empty()) c.Error(Join(p, "name"), reason::kRequired, "must not be empty");
    if (!seen.insert({m.kind.value_or(SubjectKind::kUser), m.name}).second) {
      c.Error(p, reason::kDuplicate, "\"" + m.name + "\" is listed twice");
    }
    if (s.owner && s.owner->name == m.name &&
        s.owner->kind.value_or(SubjectKind::kUser) == m.kind.value_or(SubjectKind::kUser)) {
      c.Warn(p, "the owner is already an admin");
    }
  }
  if (!s.limits) {
    c.Warn("spec.limits", "no limits: the zone's pods may use the whole cluster");
  } else {
    const auto& l = *s.limits;
    CheckNonNegative(c, l.cpu, "spec.limits.cpu");
    CheckNonNegative(c, l.memory, "spec.limits.memory");
    CheckNonNegative(c, l.gpu, "spec.limits.gpu");
    CheckWhole(c, l.gpu, "spec.limits.gpu");
    CheckNonNegative(c, l.ephemeral_storage, "spec.limits.ephemeralStorage");
    CheckNonNegative(c, l.storage, "spec.limits.storage");
    const std::pair<const std::optional<int32_t>*, const char*> counts[] = {
        {&l.persistent_volume_claims, "persistentVolumeClaims"},
        {&l.pods, "pods"},
        {&l.services, "services"},
        {&l.config_maps, "configMaps"},
        {&l.secrets, "secrets"},
        {&l.jobs, "jobs"},
        {&l.deployments, "deployments"},
        {&l.tasks, "tasks"},
        {&l.pipelines, "pipelines"}};
    for (const auto& [count, name] : counts)
      if (*count && **count < 0)
        c.Error(Join("spec.limits", name), reason::kInvalid, "must not be negative");
  }
  CheckCompute(c, s.guarantees, "spec.guarantees");
  if (s.defaults) {
    CheckCompute(c, s.defaults->requests, "spec.defaults.requests");
    CheckCompute(c, s.defaults->limits, "spec.defaults.limits");
  }
  const std::optional<ComputeResources> none;
  const auto& limits_cr = s.limits ? std::optional<ComputeResources>(ComputeResources{
                                         s.limits->cpu, s.limits->memory, s.limits->gpu})
                                   : none;
  if (s.guarantees && limits_cr) {
    CheckAtMost(c, s.guarantees->cpu, limits_cr->cpu, "spec.guarantees.cpu", "guarantee", "limit");
    CheckAtMost(c, s.guarantees->memory, limits_cr->memory, "spec.guarantees.memory", "guarantee",
                "limit");
    CheckAtMost(c, s.guarantees->gpu, limits_cr->gpu, "spec.guarantees.gpu", "guarantee", "limit");
  }
  if (s.defaults && s.defaults->requests && s.defaults->limits) {
    const auto& rq = *s.defaults->requests;
    const auto& lm = *s.defaults->limits;
    CheckAtMost(c, rq.cpu, lm.cpu, "spec.defaults.requests.cpu", "default request",
                "default limit");
    CheckAtMost(c, rq.memory, lm.memory, "spec.defaults.requests.memory", "default request",
                "default limit");
    CheckAtMost(c, rq.gpu, lm.gpu, "spec.defaults.requests.gpu", "default request",
                "default limit");
  }
  if (s.defaults && limits_cr) {
    for (const auto& [which, name] :
         {std::pair{&s.defaults->requests, "requests"}, std::pair{&s.defaults->limits, "limits"}}) {
      if (!*which) continue;
      const std::string p = Join("spec.defaults", name);
      CheckAtMost(c, (*which)->cpu, limits_cr->cpu, Join(p, "cpu"), "default", "the zone's limit");
      CheckAtMost(c, (*which)->memory, limits_cr->memory, Join(p, "memory"), "default",
                  "the zone's limit");
      CheckAtMost(c, (*which)->gpu, limits_cr->gpu, Join(p, "gpu"), "default", "the zone's limit");
    }
  }
  return errors;
}

namespace {

// What an update of a Zone must not change.
void CheckUpdate(const Zone& old_zone, const Zone& zone, ValidationErrors& errors,
                 ValidationErrors* /*warnings*/) {
  CheckImmutable(errors, old_zone.spec.type != zone.spec.type, "spec.type");
  CheckImmutable(errors, old_zone.spec.namespace_ != zone.spec.namespace_, "spec.namespace");
}

}  // namespace

// ---- Task
// -----------------------------------------------------------------------------------------

ValidationErrors Validate(const Task& task, ValidationErrors* warnings) {
  ValidationErrors errors;
  // The name labels the task's pods (millrace.io/task); label values are at most 63 characters.
  if (task.metadata.name.size() > 63) {
    errors.push_back({"metadata.name", std::string(reason::kInvalid),
                      "a Task's name is at most 63 characters: it labels the Task's pods"});
  }
  // A gang's headless Service and its pods' subdomain take the task's name: a DNS-1035 label.
  if (task.spec.workers.value_or(1) > 1 && !Matches(task.metadata.name, 63, true)) {
    errors.push_back({"metadata.name", std::string(reason::kInvalid),
                      "a Task with workers names its headless Service: it must be a DNS-1035 "
                      "label (a-z, 0-9, '-', starting with a letter)"});
  }
  ValidateTaskSpec(task.spec, "spec", errors, warnings);
  return errors;
}

namespace {

// What an update of a Task must not change.
void CheckUpdate(const Task& old_task, const Task& task, ValidationErrors& errors,
                 ValidationErrors* /*warnings*/) {
  CheckImmutable(errors, old_task.spec.role != task.spec.role, "spec.role");
  CheckImmutable(errors, old_task.spec.workers != task.spec.workers, "spec.workers");
  if (Streaming(old_task.spec) != Streaming(task.spec)) {
    errors.push_back({"spec.input", std::string(reason::kInvalid),
                      "a task cannot switch between batch and streaming; create a new Task"});
  }
  if (Cancelled(old_task.spec) && !Cancelled(task.spec)) {
    errors.push_back({"spec.cancel", std::string(reason::kForbidden), "cancel cannot be undone"});
  }
}

}  // namespace

// ---- Pipeline
// -------------------------------------------------------------------------------------

namespace {

struct StepSet {
  std::span<const Step> steps;
  std::string path;  // "spec.steps" or "spec.finally"
  bool is_finally = false;
  dag::StepGraph graph;
  std::vector<std::optional<std::vector<bool>>> ancestors;  // computed on first use

  const std::vector<bool>& AncestorsOf(size_t i) {
    auto& cached = ancestors[i];
    if (!cached) cached = dag::Ancestors(graph.graph, i);
    return *cached;
  }
};

void CheckDag(Checker& c, StepSet& set, const StepSet& other) {
  for (const auto& [i, k] : set.graph.unknown) {
    const std::string& dep = set.steps[i].depends_on[k];
    const auto p = Index(Join(Index(set.path, i), "dependsOn"), k);
    if (other.graph.Find(dep)) {
      c.Error(p, reason::kInvalid,
              set.is_finally
                  ? "finally steps run after all steps have finished; dependsOn may name only "
                    "other finally steps, not \"" +
                        dep + "\""
                  : "a step cannot depend on the finally step \"" + dep + "\"");
    } else {
      c.Error(p, reason::kNotFound, "unknown step \"" + dep + "\"");
    }
  }
  for (size_t i = 0; i < set.steps.size(); ++i) {
    std::unordered_set<std::string_view> seen;
    const auto& deps = set.steps[i].depends_on;
    for (size_t k = 0; k < deps.size(); ++k) {
      if (!seen.insert(deps[k]).second) {
        c.Error(Index(Join(Index(set.path, i), "dependsOn"), k), reason::kDuplicate,
                "duplicate dependency \"" + deps[k] + "\"");
      }
    }
  }
  if (auto cycle = dag::FindCycle(set.graph.graph)) {
    // Start the reported cycle at its first step in spec order, so the message is stable.
    cycle->pop_back();
    const auto first = std::min_element(cycle->begin(), cycle->end());
    std::rotate(cycle->begin(), first, cycle->end());
    cycle->push_back(cycle->front());
    c.Error(Join(Index(set.path, cycle->front()), "dependsOn"), reason::kInvalid,
            "dependency cycle: " + dag::FormatCycle(*cycle, set.graph.names));
  }
}

struct RefContext {
  const std::unordered_map<std::string_view, const Param*>& params;
  StepSet& steps;
  StepSet& finally;
};

// Where a string sits in a step: the task and metadata are substituted per fan-out child (so they
// may use {{item}}); when, withParam and registerModel are evaluated once for the whole step.
enum class Place { kPerChild, kOncePerStep };

void CheckItemReference(Checker& c, const Step& step, Place place, const templates::Reference& ref,
                        const std::string& path) {
  const std::string shown = "{{" + ref.expression + "}}";
  const FanOut fan = FanOutOf(step);
  if (fan == FanOut::kNone) {
    c.Error(path, reason::kInvalid,
            shown + " is available only in a fan-out step (withItems, withParam or matrix)");
  } else if (place == Place::kOncePerStep) {
    c.Error(path, reason::kInvalid,
            shown +
                " is not available here: when, withParam and registerModel are evaluated "
                "once for the whole step; use it in the task or metadata");
  } else if (fan == FanOut::kItems && !ref.field.empty()) {
    c.Error(path, reason::kInvalid, shown + ": withItems items are strings; use {{item}}");
  } else if (fan == FanOut::kMatrix && ref.field.empty()) {
    c.Error(path, reason::kInvalid,
            shown + ": a matrix child has one value per list; use {{item.<name>}}");
  } else if (fan == FanOut::kMatrix && std::ranges::none_of(step.matrix, [&](const MatrixParam& m) {
               return m.name == ref.field;
             })) {
    c.Error(path, reason::kNotFound, shown + ": no matrix list named \"" + ref.field + "\"");
  }
}

void CheckReference(Checker& c, const RefContext& ctx, StepSet& set, size_t i, Place place,
                    const templates::Reference& ref, const std::string& path) {
  const std::string shown = "{{" + ref.expression + "}}";
  const std::string& self = set.steps[i].name;
  switch (ref.kind) {
    case templates::RefKind::kItem:
      CheckItemReference(c, set.steps[i], place, ref, path);
      return;
    case templates::RefKind::kParam:
      if (!ctx.params.contains(ref.name)) {
        c.Error(path, reason::kNotFound, shown + ": unknown parameter \"" + ref.name + "\"");
      }
      return;
    case templates::RefKind::kPipeline:
      if (ref.field == "phase" && !set.is_finally) {
        c.Error(path, reason::kInvalid, shown + " is available to finally steps only");
      }
      return;
    case templates::RefKind::kUnknown:
      c.Error(path, reason::kInvalid,
              "unknown reference " + shown +
                  "; use {{params.<name>}}, {{steps.<step>.results.<result>}}, "
                  "{{steps.<step>.phase}}, {{pipeline.name|namespace|uid|phase}} or, in a "
                  "fan-out step, {{item}} and {{item.<key>}}");
      return;
    case templates::RefKind::kStepPhase:
    case templates::RefKind::kStepResult:
      break;
  }
  const auto in_steps = ctx.steps.graph.Find(ref.name);
  const auto in_finally = ctx.finally.graph.Find(ref.name);
  if (!in_steps && !in_finally) {
    c.Error(path, reason::kNotFound, shown + ": unknown step \"" + ref.name + "\"");
    return;
  }
  if (ref.kind == templates::RefKind::kStepPhase) {
    if (!set.is_finally) {
      c.Error(path, reason::kInvalid, shown + " is available to finally steps only");
    }
    return;
  }
  // A result: the producer must have finished before this step starts.
  const Step* producer = nullptr;
  if (in_steps) {
    producer = &ctx.steps.steps[*in_steps];
    if (!set.is_finally && !set.AncestorsOf(i)[*in_steps]) {
      c.Error(path, reason::kInvalid,
              shown + ": step \"" + ref.name + "\" is not a dependency of \"" + self +
                  "\"; add it to dependsOn (directly or through another step)");
      return;
    }
  } else {
    producer = &ctx.finally.steps[*in_finally];
    if (!set.is_finally) {
      c.Error(path, reason::kInvalid,
              shown + ": finally steps run last; a step cannot read their results");
      return;
    }
    if (!set.AncestorsOf(i)[*in_finally]) {
      c.Error(path, reason::kInvalid,
              shown + ": finally step \"" + ref.name + "\" is not a dependency of \"" + self +
                  "\"; add it to dependsOn");
      return;
    }
  }
  const auto& declared = producer->task.results;
  if (std::ranges::none_of(declared, [&](const ResultSpec& r) { return r.name == ref.field; })) {
    c.Error(path, reason::kNotFound,
            shown + ": step \"" + ref.name + "\" declares no result \"" + ref.field +
                "\" (add it to its task.results)");
  } else if (Streaming(producer->task)) {
    c.Warn(path, shown + ": step \"" + ref.name + "\" is streaming and publishes no results");
  }
}

void CheckStrings(Checker& c, const RefContext& ctx, StepSet& set, size_t i, const Json& doc,
                  const std::string& path, Place place = Place::kOncePerStep) {
  templates::ForEachString(doc, path, [&](const std::string& p, const std::string& text) {
    auto refs = templates::FindReferences(text);
    if (!refs) {
      c.Error(p, reason::kInvalid, refs.error());
      return;
    }
    for (const auto& ref : *refs) CheckReference(c, ctx, set, i, place, ref, p);
  });
}

void CheckFanOut(Checker& c, const RefContext& ctx, StepSet& set, size_t i) {
  const Step& step = set.steps[i];
  const auto p = Index(set.path, i);
  const int kinds = static_cast<int>(!step.with_items.empty()) +
                    static_cast<int>(step.with_param.has_value()) +
                    static_cast<int>(!step.matrix.empty());
  if (kinds > 1) {
    c.Error(p, reason::kInvalid, "at most one of withItems, withParam and matrix");
  }
  if (step.with_items.size() > kMaxFanOut) {
    c.Error(
        Join(p, "withItems"), reason::kTooMany,
        std::to_string(step.with_items.size()) + " items; at most " + std::to_string(kMaxFanOut));
  }
  if (step.with_param) {
    CheckStrings(c, ctx, set, i, Json(*step.with_param), Join(p, "withParam"));
  }
  if (!step.matrix.empty()) {
    size_t combinations = 1;
    std::unordered_set<std::string_view> names;
    for (size_t k = 0; k < step.matrix.size(); ++k) {
      const auto& m = step.matrix[k];
      const auto mp = Index(Join(p, "matrix"), k);
      if (!IsIdentifier(m.name, 63)) {
        c.Error(Join(mp, "name"), reason::kInvalid,
                "must start with a letter or '_' and contain letters, digits, '_', '-'");
      }
      if (!names.insert(m.name).second) {
        c.Error(Join(mp, "name"), reason::kDuplicate, "duplicate matrix list \"" + m.name + "\"");
      }
      if (m.values.empty()) c.Error(Join(mp, "values"), reason::kRequired, "needs a value");
      combinations = std::min(combinations * std::max<size_t>(m.values.size(), 1), kMaxFanOut + 1);
    }
    if (combinations > kMaxFanOut) {
      c.Error(Join(p, "matrix"), reason::kTooMany,
              "more than " + std::to_string(kMaxFanOut) +
                  " combinations (the product of the lists' lengths); split the sweep");
    }
  }
  if (FanOutOf(step) == FanOut::kNone) {
    if (step.parallelism) {
      c.Error(Join(p, "parallelism"), reason::kInvalid,
              "applies to fan-out steps only (withItems, withParam or matrix); the pipeline's "
              "spec.parallelism limits the whole run");
    }
    return;
  }
  if (step.parallelism && *step.parallelism < 1) {
    c.Error(Join(p, "parallelism"), reason::kInvalid, "must be at least 1");
  }
  if (Streaming(step.task)) {
    c.Error(Join(p, "task"), reason::kInvalid,
            "a fan-out step runs batch Tasks; a streaming task (input.stream) cannot fan out");
  }
  if (step.register_model) {
    c.Error(Join(p, "registerModel"), reason::kInvalid,
            "a fan-out step has many children; register the model from a step that depends on "
            "it and reads their results as a list");
  }
}

void CheckStep(Checker& c, const RefContext& ctx, StepSet& set, size_t i) {
  const Step& step = set.steps[i];
  const auto p = Index(set.path, i);
  TaskSpecChecks(c, step.task, Join(p, "task"));
  if (Cancelled(step.task)) {
    c.Warn(Join(Join(p, "task"), "cancel"), "ignored in a pipeline step; set spec.cancel instead");
  }
  CheckStrings(c, ctx, set, i, Encode(step.task), Join(p, "task"), Place::kPerChild);
  if (step.metadata) {
    CheckStrings(c, ctx, set, i, Encode(*step.metadata), Join(p, "metadata"), Place::kPerChild);
  }
  CheckFanOut(c, ctx, set, i);
  for (size_t k = 0; k < step.when.size(); ++k) {
    const auto& w = step.when[k];
    const auto wp = Index(Join(p, "when"), k);
    CheckStrings(c, ctx, set, i, Json(w.input), Join(wp, "input"));
    CheckStrings(c, ctx, set, i, Json(w.values), Join(wp, "values"));
    const bool membership = w.operator_ == Operator::kIn || w.operator_ == Operator::kNotIn;
    if (membership && w.values.empty()) {
      c.Error(Join(wp, "values"), reason::kRequired, "In and NotIn need at least one value");
    }
    if (!membership && w.values.size() != 1) {
      c.Error(Join(wp, "values"), reason::kInvalid,
              "Eq, Ne, Gt, Ge, Lt and Le take exactly one value");
    }
    const bool ordering = w.operator_ == Operator::kGt || w.operator_ == Operator::kGe ||
                          w.operator_ == Operator::kLt || w.operator_ == Operator::kLe;
    if (ordering) {
      for (size_t m = 0; m < w.values.size(); ++m) {
        if (!HasReferences(w.values[m]) && !ParseNumber(w.values[m])) {
          c.Error(Index(Join(wp, "values"), m), reason::kInvalid,
                  "Gt, Ge, Lt and Le compare numbers; \"" + w.values[m] + "\" is not a number");
        }
      }
    }
  }
  if (step.register_model) {
    const auto& r = *step.register_model;
    const auto rp = Join(p, "registerModel");
    CheckStrings(c, ctx, set, i, Encode(r), rp);
    if (!HasReferences(r.model) && !Matches(r.model, 40, true)) {
      c.Error(Join(rp, "model"), reason::kInvalid,
              "must be a DNS-1035 label of at most 40 characters");
    }
    if (!HasReferences(r.version) && !Matches(r.version, 20, false)) {
      c.Error(Join(rp, "version"), reason::kInvalid,
              "must be a DNS label of at most 20 characters");
    }
    if (!HasReferences(r.artifact_uri) && !HasScheme(r.artifact_uri)) {
      c.Error(Join(rp, "artifactUri"), reason::kInvalid,
              "must be a URI with a scheme, e.g. s3://bucket/model");
    }
    for (const auto& [name, value] : r.metrics) {
      if (!HasReferences(value) && !ParseNumber(value)) {
        c.Error(Key(Join(rp, "metrics"), name), reason::kInvalid,
                "must be a number or a reference to a result");
      }
    }
  }
}

}  // namespace

ValidationErrors Validate(const Pipeline& pipeline, ValidationErrors* warnings) {
  ValidationErrors errors;
  Checker c(errors, warnings);
  const auto& s = pipeline.spec;

  std::unordered_map<std::string_view, const Param*> params;
  for (size_t i = 0; i < s.params.size(); ++i) {
    const auto& param = s.params[i];
    const auto p = Index("spec.params", i);
    if (!IsIdentifier(param.name, 63)) {
      c.Error(Join(p, "name"), reason::kInvalid,
              "must start with a letter or '_' and contain letters, digits, '_', '-'");
    }
    if (!params.emplace(param.name, &param).second) {
      c.Error(Join(p, "name"), reason::kDuplicate, "duplicate parameter \"" + param.name + "\"");
    }
    if (!param.value && !param.default_) {
      c.Error(Join(p, "value"), reason::kRequired, "a parameter needs a value or a default");
    }
  }
  if (s.steps.empty())
    c.Error("spec.steps", reason::kRequired, "a pipeline needs at least one step");
  if (s.parallelism && *s.parallelism < 1) {
    c.Error("spec.parallelism", reason::kInvalid, "must be at least 1");
  }

  // Names: DNS labels, unique across steps and finally steps.
  std::unordered_set<std::string_view> names;
  for (const auto& [list, path] :
       {std::pair{&s.steps, "spec.steps"}, std::pair{&s.finally, "spec.finally"}}) {
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string& name = (*list)[i].name;
      const auto p = Join(Index(path, i), "name");
      if (!IsDnsLabel(name)) {
        c.Error(p, reason::kInvalid, "must be a DNS label (a-z, 0-9, '-', at most 63)");
      }
      if (!names.insert(name).second) {
        c.Error(p, reason::kDuplicate, "duplicate step name \"" + name + "\"");
      }
    }
  }

  // A fan-out step's children are Tasks <pipeline>-<step>-<index>: no other step may be named
  // <step>-<digits>, or its Task would be one of them.
  for (const auto& [list, path] :
       {std::pair{&s.steps, "spec.steps"}, std::pair{&s.finally, "spec.finally"}}) {
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string& name = (*list)[i].name;
      const size_t dash = name.rfind('-');
      if (dash == std::string::npos || dash + 1 == name.size() ||
          !std::ranges::all_of(name.substr(dash + 1),
                               [](char ch) { return ch >= '0' && ch <= '9'; })) {
        continue;
      }
      const std::string_view base = std::string_view(name).substr(0, dash);
      for (const auto* other : {&s.steps, &s.finally}) {
        for (const auto& step : *other) {
          if (step.name == base && FanOutOf(step) != FanOut::kNone) {
            c.Error(Join(Index(path, i), "name"), reason::kInvalid,
                    "\"" + name + "\" would name the same Task as a child of fan-out step \"" +
                        step.name + "\" (children are <pipeline>-" + step.name +
                        "-<index>); rename one");
          }
        }
      }
    }
  }

  StepSet steps{s.steps, "spec.steps", false, dag::BuildStepGraph(s.steps), {}};
  StepSet finally{s.finally, "spec.finally", true, dag::BuildStepGraph(s.finally), {}};
  steps.ancestors.resize(s.steps.size());
  finally.ancestors.resize(s.finally.size());
  CheckDag(c, steps, finally);
  CheckDag(c, finally, steps);

  const RefContext ctx{params, steps, finally};
  for (size_t i = 0; i < s.steps.size(); ++i) CheckStep(c, ctx, steps, i);
  for (size_t i = 0; i < s.finally.size(); ++i) CheckStep(c, ctx, finally, i);
  return errors;
}

namespace {

// What an update of a Pipeline must not change (a Pipeline is one run), and what it changes too
// late to matter (a warning).
void CheckUpdate(const Pipeline& old_pipeline, const Pipeline& pipeline, ValidationErrors& errors,
                 ValidationErrors* warnings) {
  const auto& o = old_pipeline.spec;
  const auto& n = pipeline.spec;
  const auto steps_json = [](const std::vector<Step>& steps) {
    Json j = Json::array();
    for (const auto& step : steps) {
      Json s = {{"name", step.name}, {"task", Encode(step.task)}};
      s["dependsOn"] = step.depends_on;
      s["when"] = Json::array();
      for (const auto& w : step.when)
        s["when"].push_back(
            {{"input", w.input}, {"operator", ToString(w.operator_)}, {"values", w.values}});
      if (step.register_model) s["registerModel"] = Encode(*step.register_model);
      if (step.metadata) s["metadata"] = Encode(*step.metadata);
      s["withItems"] = step.with_items;
      if (step.with_param) s["withParam"] = *step.with_param;
      for (const auto& m : step.matrix) s["matrix"].push_back({m.name, m.values});
      if (step.parallelism) s["parallelism"] = *step.parallelism;
      j.push_back(std::move(s));
    }
    return j;
  };
  const auto params_json = [](const std::vector<Param>& params) {
    Json j = Json::array();
    for (const auto& p : params) {
      j.push_back({p.name, p.value.value_or("\x01"), p.default_.value_or("\x01"),
                   p.description.value_or("")});
    }
    return j;
  };
  const std::string run = "field is immutable: a Pipeline is a run; create a new Pipeline instead";
  if (params_json(o.params) != params_json(n.params)) {
    errors.push_back({"spec.params", std::string(reason::kInvalid), run});
  }
  if (steps_json(o.steps) != steps_json(n.steps)) {
    errors.push_back({"spec.steps", std::string(reason::kInvalid), run});
  }
  if (steps_json(o.finally) != steps_json(n.finally)) {
    errors.push_back({"spec.finally", std::string(reason::kInvalid), run});
  }
  if (o.cancel.value_or(false) && !n.cancel.value_or(false)) {
    errors.push_back({"spec.cancel", std::string(reason::kForbidden), "cancel cannot be undone"});
  }
  const bool started = old_pipeline.status && old_pipeline.status->start_time;
  if (started && warnings != nullptr && !o.suspend.value_or(false) && n.suspend.value_or(false)) {
    warnings->push_back({"spec.suspend", "Warning", "no effect: the run has already started"});
  }
}

}  // namespace

// ---- Schedule
// -----------------------------------------------------------------------------------------

ValidationErrors Validate(const Schedule& schedule, ValidationErrors* warnings) {
  ValidationErrors errors;
  Checker c(errors, warnings);
  const auto& s = schedule.spec;
  if (auto parsed = cron::Parse(s.schedule); !parsed) {
    c.Error("spec.schedule", reason::kInvalid, parsed.error());
  }
  if (auto zone = TimeZone::Load(s.time_zone.value_or("UTC")); !zone) {
    c.Error("spec.timeZone", reason::kInvalid, zone.error());
  }
  // Parameters may use the due time; nothing else of the run is known before it starts.
  const auto& params = s.pipeline.spec.params;
  for (size_t i = 0; i < params.size(); ++i) {
    for (const auto& [field, value] :
         {std::pair{"value", &params[i].value}, std::pair{"default", &params[i].default_}}) {
      if (!*value) continue;
      const auto path = Join(Index("spec.pipeline.spec.params", i), field);
      auto refs = templates::FindReferences(**value);
      if (!refs) {
        c.Error(path, reason::kInvalid, refs.error());
        continue;
      }
      for (const auto& ref : *refs) {
        if (std::ranges::find(kScheduleReferences, ref.expression) == kScheduleReferences.end()) {
          c.Error(path, reason::kInvalid,
                  "{{" + ref.expression +
                      "}}: a parameter of a scheduled run may use {{schedule.time}}, "
                      "{{schedule.date}}, {{schedule.hour}} or {{schedule.unix}}");
        }
      }
    }
  }
  // The template is checked as the Pipeline each run will be.
  Pipeline run;
  run.metadata.name = schedule.metadata.name;
  run.metadata.namespace_ = schedule.metadata.namespace_;
  run.spec = s.pipeline.spec;
  ValidationErrors run_warnings;
  for (auto e : Validate(run, warnings != nullptr ? &run_warnings : nullptr)) {
    e.path = "spec.pipeline." + e.path;
    errors.push_back(std::move(e));
  }
  for (auto w : run_warnings) {
    w.path = "spec.pipeline." + w.path;
    warnings->push_back(std::move(w));
  }
  return errors;
}

namespace {

// A Schedule may change at any time: its next runs follow the new spec.
void CheckUpdate(const Schedule& /*old_schedule*/, const Schedule& /*schedule*/,
                 ValidationErrors& /*errors*/, ValidationErrors* /*warnings*/) {}

}  // namespace

// ---- ModelVersion
// -----------------------------------------------------------------------------------

bool Compare(double lhs, Operator op, double rhs) {
  switch (op) {
    case Operator::kEq:
      return lhs == rhs;
    case Operator::kNe:
      return lhs != rhs;
    case Operator::kGt:
      return lhs > rhs;
    case Operator::kGe:
      return lhs >= rhs;
    case Operator::kLt:
      return lhs < rhs;
    case Operator::kLe:
      return lhs <= rhs;
    case Operator::kIn:
    case Operator::kNotIn:
      return false;
  }
  return false;
}

namespace {

// Whether `lineage` records `field` (a non-empty value).
bool LineageFieldSet(const std::optional<Lineage>& lineage, LineageField field) {
  if (!lineage) return false;
  const auto set = [](const std::optional<std::string>& value) { return value && !value->empty(); };
  switch (field) {
    case LineageField::kPipeline:
      return set(lineage->pipeline);
    case LineageField::kStep:
      return set(lineage->step);
    case LineageField::kDatasets:
      return !lineage->datasets.empty();
    case LineageField::kCodeRevision:
      return set(lineage->code_revision);
    case LineageField::kImage:
      return set(lineage->image);
  }
  return false;
}

}  // namespace

std::vector<std::string> FailedGates(const ModelVersionSpec& spec) {
  std::vector<std::string> failed;
  if (!spec.gates) return failed;
  for (const auto& g : spec.gates->metrics) {
    const auto it = spec.metrics.find(g.name);
    const std::string want = std::string(ToString(g.operator_)) + " " + Json(g.threshold).dump();
    if (it == spec.metrics.end()) {
      failed.push_back("metric " + g.name + " is missing (needs " + want + ")");
    } else if (!Compare(it->second, g.operator_, g.threshold)) {
      failed.push_back("metric " + g.name + " = " + Json(it->second).dump() + " does not satisfy " +
                       want);
    }
  }
  for (const auto field : spec.gates->required_lineage) {
    if (!LineageFieldSet(spec.lineage, field))
      failed.push_back("lineage field " + std::string(ToString(field)) + " is not set");
  }
  return failed;
}

ValidationErrors Validate(const ModelVersion& mv, ValidationErrors* warnings) {
  ValidationErrors errors;
  Checker c(errors, warnings);
  const auto& s = mv.spec;
  if (!Matches(s.model, 40, true)) {
    c.Error("spec.model", reason::kInvalid,
            "must be a DNS-1035 label of at most 40 characters (it names the model's Service)");
  }
  if (!Matches(s.version, 20, false)) {
    c.Error("spec.version", reason::kInvalid,
            "must be a DNS label of at most 20 characters (it names the version's Service)");
  }
  if (!mv.metadata.name.empty() && mv.metadata.name != ModelVersionName(s.model, s.version)) {
    c.Error("metadata.name", reason::kInvalid,
            "must be \"" + ModelVersionName(s.model, s.version) +
                "\" (<model>-<version>), so that each (namespace, model, version) is unique");
  }
  if (!HasScheme(s.artifact.uri)) {
    c.Error("spec.artifact.uri", reason::kInvalid,
            "must be a URI with a scheme, e.g. s3://bucket/model.onnx");
  }
  for (const auto& [name, value] : s.metrics)
    if (!std::isfinite(value))
      c.Error(Key("spec.metrics", name), reason::kInvalid, "must be finite");
  std::unordered_set<std::string_view> aliases;
  for (size_t i = 0; i < s.aliases.size(); ++i) {
    const auto p = Index("spec.aliases", i);
    if (!IsDnsLabel(s.aliases[i])) c.Error(p, reason::kInvalid, "must be a DNS label");
    if (!aliases.insert(s.aliases[i]).second) {
      c.Error(p, reason::kDuplicate, "duplicate alias \"" + s.aliases[i] + "\"");
    }
  }
  const Stage stage = s.stage.value_or(Stage::kNone);
  if (s.serving) {
    const auto& sv = *s.serving;
    if (sv.image.empty()) c.Error("spec.serving.image", reason::kRequired, "must not be empty");
    if (sv.replicas && sv.autoscaling) {
      c.Error("spec.serving.replicas", reason::kForbidden,
              "replicas and autoscaling are mutually exclusive");
    }
    if (sv.replicas && *sv.replicas < 0) {
      c.Error("spec.serving.replicas", reason::kInvalid, "must not be negative");
    }
    if (sv.port) CheckPort(c, *sv.port, "spec.serving.port");
    if (sv.autoscaling) CheckAutoscaling(c, *sv.autoscaling, "spec.serving.autoscaling");
    CheckResources(c, sv.resources, "spec.serving.resources");
    CheckEnv(c, sv.env, "spec.serving.env");
  } else if (stage == Stage::kStaging || stage == Stage::kProduction) {
    c.Warn("spec.serving",
           "no serving spec: the version is not served in " + std::string(ToString(stage)));
  }
  if (s.gates) {
    std::unordered_set<std::string_view> gate_names;
    for (size_t i = 0; i < s.gates->metrics.size(); ++i) {
      const auto& g = s.gates->metrics[i];
      const auto p = Index("spec.gates.metrics", i);
      if (!gate_names.insert(g.name).second) {
        c.Error(Join(p, "name"), reason::kDuplicate, "duplicate gate on \"" + g.name + "\"");
      }
      if (g.operator_ == Operator::kIn || g.operator_ == Operator::kNotIn) {
        c.Error(Join(p, "operator"), reason::kNotSupported,
                R"(supported values: "Gt", "Ge", "Lt", "Le", "Eq", "Ne")");
      }
      if (!std::isfinite(g.threshold)) {
        c.Error(Join(p, "threshold"), reason::kInvalid, "must be finite");
      }
    }
    std::set<LineageField> fields;
    for (size_t i = 0; i < s.gates->required_lineage.size(); ++i) {
      if (!fields.insert(s.gates->required_lineage[i]).second) {
        c.Error(Index("spec.gates.requiredLineage", i), reason::kDuplicate, "duplicate field");
      }
    }
    if (stage == Stage::kProduction) {
      for (const auto& f : FailedGates(s))
        c.Warn("spec.gates", "promotion to Production will be held: " + f);
    }
  }
  return errors;
}

namespace {

// What an update of a ModelVersion must not change: the registered version.
void CheckUpdate(const ModelVersion& old_mv, const ModelVersion& mv, ValidationErrors& errors,
                 ValidationErrors* /*warnings*/) {
  const auto& o = old_mv.spec;
  const auto& n = mv.spec;
  CheckImmutable(errors, o.model != n.model, "spec.model");
  CheckImmutable(errors, o.version != n.version, "spec.version");
  if (!(o.artifact == n.artifact)) {
    errors.push_back({"spec.artifact", std::string(reason::kInvalid),
                      "the artifact of a registered version is immutable; register a new version"});
  }
  if (o.lineage && !(n.lineage && *n.lineage == *o.lineage)) {
    errors.push_back(
        {"spec.lineage", std::string(reason::kInvalid), "lineage is immutable once set"});
  }
}

}  // namespace

template <class T>
ValidationErrors ValidateUpdate(const T& old_object, const T& object, ValidationErrors* warnings) {
  ValidationErrors errors = Validate(object, warnings);
  CheckUpdate(old_object, object, errors, warnings);
  return errors;
}
template ValidationErrors ValidateUpdate(const Zone&, const Zone&, ValidationErrors*);
template ValidationErrors ValidateUpdate(const Task&, const Task&, ValidationErrors*);
template ValidationErrors ValidateUpdate(const Pipeline&, const Pipeline&, ValidationErrors*);
template ValidationErrors ValidateUpdate(const ModelVersion&, const ModelVersion&,
                                         ValidationErrors*);
template ValidationErrors ValidateUpdate(const Schedule&, const Schedule&, ValidationErrors*);

ValidationErrors ValidateProductionUnique(const ModelVersion& mv,
                                          std::span<const ModelVersion> others) {
  ValidationErrors errors;
  if (mv.spec.stage != Stage::kProduction) return errors;
  for (const auto& other : others) {
    if (other.metadata.name == mv.metadata.name || other.spec.model != mv.spec.model) continue;
    if (other.metadata.namespace_ != mv.metadata.namespace_) continue;
    if (other.spec.stage == Stage::kProduction &&
        !(other.status && other.status->stage == Stage::kArchived)) {
      errors.push_back({"spec.stage", std::string(reason::kForbidden),
                        "version " + other.spec.version + " of model " + mv.spec.model +
                            " is already in Production; create this version in another stage "
                            "and promote it (the operator archives the previous version)"});
    }
  }
  return errors;
}

template <class T>
std::expected<T, ValidationErrors> ParseAndValidate(const Json& j, ValidationErrors* warnings) {
  auto obj = T::FromJson(j);
  if (!obj) return obj;
  Default(*obj);
  auto errors = Validate(*obj, warnings);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return obj;
}

template std::expected<Zone, ValidationErrors> ParseAndValidate<Zone>(const Json&,
                                                                      ValidationErrors*);
template std::expected<Task, ValidationErrors> ParseAndValidate<Task>(const Json&,
                                                                      ValidationErrors*);
template std::expected<Pipeline, ValidationErrors> ParseAndValidate<Pipeline>(const Json&,
                                                                              ValidationErrors*);
template std::expected<Schedule, ValidationErrors> ParseAndValidate<Schedule>(const Json&,
                                                                              ValidationErrors*);
template std::expected<ModelVersion, ValidationErrors> ParseAndValidate<ModelVersion>(
    const Json&, ValidationErrors*);

}  // namespace millrace::api
