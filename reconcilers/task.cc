#include "reconcilers/task.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <utility>

#include "crds/meta.h"
#include "reconcilers/object.h"
#include "reconcilers/zone.h"

namespace millrace::reconcilers {
namespace {

using api::Json;
using api::Quantity;
using api::TaskPhase;
using std::chrono::seconds;

constexpr std::string_view kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";
constexpr size_t kMaxMessage = 1024;  // of a failure message kept in status
// How often a task waiting for quota looks again even if no quota event wakes it.
constexpr seconds kQuotaRecheck{60};
// How often a task waiting for an earlier Task's Job to be garbage-collected looks again.
constexpr seconds kOldJobRecheck{2};

// ---- small JSON readers -------------------------------------------------------------------------

std::optional<Quantity> QuantityOf(const Json& j) {
  std::expected<Quantity, std::string> q;
  if (j.is_string()) {
    q = Quantity::Parse(j.get<std::string>());
  } else if (j.is_number()) {
    q = Quantity::Parse(j.dump());
  } else {
    return std::nullopt;
  }
  return q ? std::optional<Quantity>(*q) : std::nullopt;
}

std::string Truncate(std::string s) { return reconcilers::Truncate(std::move(s), kMaxMessage); }

// The pods an attempt runs at once: spec.workers, else 1.
int32_t Workers(const api::TaskSpec& spec) { return std::max(spec.workers.value_or(1), 1); }

bool Terminal(const std::optional<TaskPhase>& phase) {
  return phase == TaskPhase::kSucceeded || phase == TaskPhase::kFailed ||
         phase == TaskPhase::kCancelled;
}

std::string Plural(int64_t n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

// ---- pod and job facts --------------------------------------------------------------------------

struct PodFacts {
  std::string name;
  std::string phase;
  std::string reason;   // status.reason, e.g. Evicted
  std::string message;  // status.message
  bool disrupted = false;
  std::optional<int32_t> exit_code;
  std::string terminated_reason;
  std::string terminated_message;
  std::string waiting_reason;
  std::string waiting_message;
  std::optional<std::string> unschedulable;  // the scheduler's message
};

PodFacts FactsOf(const Json& pod) {
  PodFacts f;
  f.name = Str(Sub(pod, "metadata"), "name");
  const Json& status = Sub(pod, "status");
  f.phase = Str(status, "phase");
  f.reason = Str(status, "reason");
  f.message = Str(status, "message");
  f.disrupted = TrueCondition(pod, "DisruptionTarget") != nullptr;
  if (const Json& conditions = Sub(status, "conditions"); conditions.is_array()) {
    for (const Json& c : conditions) {
      if (Str(c, "type") == "PodScheduled" && Str(c, "status") == "False" &&
          Str(c, "reason") == "Unschedulable") {
        f.unschedulable = Str(c, "message");
      }
    }
  }
  if (const Json& statuses = Sub(status, "containerStatuses"); statuses.is_array()) {
    for (const Json& cs : statuses) {
      if (Str(cs, "name") != kMainContainer) continue;
      const Json& state = Sub(cs, "state");
      if (const Json& t = Sub(state, "terminated"); t.is_object()) {
        f.exit_code = static_cast<int32_t>(Int(t, "exitCode"));
        f.terminated_reason = Str(t, "reason");
        f.terminated_message = Str(t, "message");
      }
      if (const Json& w = Sub(state, "waiting"); w.is_object()) {
        f.waiting_reason = Str(w, "reason");
        f.waiting_message = Str(w, "message");
      }
    }
  }
  return f;
}

int AttemptOf(const Json& object) {
  const std::string s = Str(Sub(Sub(object, "metadata"), "labels"), kAttemptLabel);
  int n = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc() && ptr == s.data() + s.size() && n > 0 ? n : 0;
}

// The newest pod of attempt `attempt` that its Job (`job_uid`) controls: a pod of an earlier Task
// of the same name, not yet garbage-collected, carries the same labels and is not this attempt's.
// Of a gang (spec.workers), a failed worker says why the attempt failed (one that failed on its
// own, not one the Job controller deleted when the Job failed), and otherwise rank 0 speaks for
// the attempt (its results).
std::optional<PodFacts> AttemptPod(const std::vector<Json>& pods, int attempt,
                                   std::string_view job_uid) {
  const Json* newest = nullptr;
  for (const Json& pod : pods) {
    if (AttemptOf(pod) != attempt || !api::IsControlledBy(pod, job_uid)) continue;
    const auto key = [](const Json& p) {
      const Json& meta = Sub(p, "metadata");
      return std::tuple(Str(Sub(p, "status"), "phase") == "Failed",
                        !meta.contains("deletionTimestamp"),
                        Str(Sub(meta, "annotations"), kCompletionIndexAnnotation) == "0",
                        Str(meta, "creationTimestamp"), Str(meta, "name"));
    };
    if (newest == nullptr || key(pod) > key(*newest)) newest = &pod;
  }
  if (newest == nullptr) return std::nullopt;
  return FactsOf(*newest);
}

enum class JobState { kActive, kComplete, kFailed };

struct JobFacts {
  std::string name;
  JobState state = JobState::kActive;
  std::string reason;
  std::string message;
  std::optional<api::Time> finished;
  std::optional<api::Time> created;
  bool deleting = false;
};

JobFacts FactsOfJob(const Json& job) {
  JobFacts f;
  const Json& meta = Sub(job, "metadata");
  f.name = Str(meta, "name");
  f.created = TimeOf(meta, "creationTimestamp");
  f.deleting = meta.contains("deletionTimestamp");
  if (const Json* c = TrueCondition(job, "Complete")) {
    f.state = JobState::kComplete;
    f.finished = TimeOf(Sub(job, "status"), "completionTime");
    if (!f.finished) f.finished = TimeOf(*c, "lastTransitionTime");
  } else if (const Json* failed = TrueCondition(job, "Failed")) {
    f.state = JobState::kFailed;
    f.reason = Str(*failed, "reason");
    f.message = Str(*failed, "message");
    f.finished = TimeOf(*failed, "lastTransitionTime");
  }
  return f;
}

// ---- failures -----------------------------------------------------------------------------------

struct AttemptFailure {
  api::FailureKind kind = api::FailureKind::kError;
  std::string reason;
  std::optional<int32_t> exit_code;
  std::string message;
};

AttemptFailure Classify(const JobFacts& job, const std::optional<PodFacts>& pod) {
  using api::FailureKind;
  if (job.reason == "DeadlineExceeded") {
    return {FailureKind::kDeadlineExceeded, "DeadlineExceeded", std::nullopt,
            "the attempt ran past retries.attemptTimeout"};
  }
  if (!pod) {
    return {FailureKind::kEvicted, "PodLost", std::nullopt,
            "the attempt's pod disappeared before it finished (evicted, lost with its node, or "
            "deleted)"};
  }
  if (pod->terminated_reason == "OOMKilled") {
    return {FailureKind::kOOMKilled, "OOMKilled", pod->exit_code,
            Truncate(pod->terminated_message.empty() ? "the container exceeded its memory limit"
                                                     : pod->terminated_message)};
  }
  if (pod->reason == "Evicted" || pod->disrupted) {
    return {FailureKind::kEvicted, pod->reason.empty() ? "Evicted" : pod->reason, pod->exit_code,
            Truncate(pod->message.empty() ? "pod " + pod->name + " was evicted or preempted"
                                          : pod->message)};
  }
  if (pod->exit_code && *pod->exit_code != 0) {
    return {FailureKind::kError, pod->terminated_reason.empty() ? "Error" : pod->terminated_reason,
            pod->exit_code,
            Truncate(pod->terminated_message.empty()
                         ? "container exited with code " + std::to_string(*pod->exit_code)
                         : pod->terminated_message)};
  }
  if (pod->phase != "Failed") {
    return {FailureKind::kEvicted, "PodLost", std::nullopt,
            "pod " + pod->name + " was deleted before it finished"};
  }
  return {FailureKind::kError, job.reason.empty() ? "Error" : job.reason, pod->exit_code,
          Truncate(!pod->message.empty() ? pod->message : job.message)};
}

std::string Describe(const AttemptFailure& f) {
  std::string s = f.reason;
  if (f.exit_code) s += " (exit code " + std::to_string(*f.exit_code) + ")";
  if (!f.message.empty()) s += ": " + f.message;
  return s;
}

bool Retried(const api::Retries& retries, api::FailureKind kind) {
  static const std::vector<api::FailureKind> kDefault{
      api::FailureKind::kError, api::FailureKind::kOOMKilled, api::FailureKind::kEvicted};
  const auto& kinds = retries.on_failure.empty() ? kDefault : retries.on_failure;
  return std::ranges::find(kinds, kind) != kinds.end();
}

// ---- objects ------------------------------------------------------------------------------------

Json OwnerRefs(const api::Task& task) {
  return Json::array({api::ControllerReference(api::kApiVersion, api::Task::kKind,
                                               task.metadata.name, task.metadata.uid)});
}

Json ChildLabels(const api::Task& task) {
  return Json{{kManagedByLabel, kManagedByValue}, {kTaskLabel, task.metadata.name}};
}

Json Meta(const api::Task& task, const std::string& name) {
  return Json{{"name", name},
              {"namespace", task.metadata.namespace_},
              {"labels", ChildLabels(task)},
              {"ownerReferences", OwnerRefs(task)}};
}

void AddDataEnv(Json& env, std::string_view prefix, const std::optional<api::DataRef>& ref,
                const api::Task& task) {
  if (!ref) return;
  const auto add = [&](std::string_view name, const std::string& value) {
    env.push_back({{"name", std::string(prefix) + std::string(name)}, {"value", value}});
  };
  if (ref->batch) {
    add("URI", ref->batch->uri);
    if (ref->batch->partition) add("PARTITION", *ref->batch->partition);
    if (prefix == "MILLRACE_OUTPUT_") {
      // This run's own place, so that two runs of one partition never write over each other.
      std::string run = ref->batch->uri;
      if (!run.empty() && run.back() != '/') run += '/';
      if (ref->batch->partition) run += *ref->batch->partition + "/";
      add("RUN_URI", run + "run=" + task.metadata.uid + "/");
    }
  }
  if (ref->stream) {
    if (ref->stream->topic) add("TOPIC", *ref->stream->topic);
    if (ref->stream->endpoint) add("ENDPOINT", *ref->stream->endpoint);
  }
}

Json Container(const api::Task& task, std::optional<int> attempt) {
  const api::TaskSpec& spec = task.spec;
  Json c{{"name", kMainContainer}, {"image", spec.image}};
  if (spec.image_pull_policy) c["imagePullPolicy"] = api::ToString(*spec.image_pull_policy);
  if (!spec.command.empty()) c["command"] = spec.command;
  if (!spec.args.empty()) c["args"] = spec.args;
  if (spec.working_dir) c["workingDir"] = *spec.working_dir;
  Json env = Json::array();
  env.push_back({{"name", "MILLRACE_TASK"}, {"value", task.metadata.name}});
  env.push_back({{"name", "MILLRACE_NAMESPACE"}, {"value", task.metadata.namespace_}});
  env.push_back({{"name", "MILLRACE_RUN_ID"}, {"value", task.metadata.uid}});
  env.push_back({{"name", "MILLRACE_ROLE"}, {"value", api::ToString(spec.role)}});
  if (attempt) env.push_back({{"name", "MILLRACE_ATTEMPT"}, {"value", std::to_string(*attempt)}});
  AddDataEnv(env, "MILLRACE_INPUT_", spec.input, task);
  AddDataEnv(env, "MILLRACE_OUTPUT_", spec.output, task);
  if (attempt) {
    env.push_back({{"name", "MILLRACE_RESULTS_FILE"}, {"value", "/dev/termination-log"}});
  }
  for (const auto& e : spec.env) env.push_back(api::Encode(e));
  c["env"] = std::move(env);
  if (spec.resources) {
    Json r = api::Encode(*spec.resources);
    if (!r.empty()) c["resources"] = std::move(r);
  }
  if (spec.service) {
    c["ports"] = Json::array(
        {{{"name", "service"},
          {"containerPort", spec.service->port},
          {"protocol", api::ToString(spec.service->protocol.value_or(api::Protocol::kTCP))}}});
  }
  // Results travel in the termination message; fall back to the log tail so a crash says why.
  c["terminationMessagePolicy"] = "FallbackToLogsOnError";
  return c;
}

Json PodTemplate(const api::Task& task, std::optional<int> attempt,
                 const std::optional<std::string>& zone_priority_class) {
  const api::TaskSpec& spec = task.spec;
  Json labels = Json::object();
  for (const auto& [k, v] : task.metadata.labels) labels[k] = v;
  labels.update(ChildLabels(task));  // ours win over the task's own
  if (attempt) labels[kAttemptLabel] = std::to_string(*attempt);
  Json meta{{"labels", std::move(labels)}};
  Json annotations = Json::object();
  for (const auto& [k, v] : task.metadata.annotations) {
    if (k != kLastApplied) annotations[k] = v;
  }
  if (!annotations.empty()) meta["annotations"] = std::move(annotations);

  Json pod{{"containers", Json::array({Container(task, attempt)})}};
  pod["restartPolicy"] = attempt ? "Never" : "Always";
  if (spec.service_account_name) pod["serviceAccountName"] = *spec.service_account_name;
  if (!spec.node_selector.empty()) pod["nodeSelector"] = spec.node_selector;
  if (!spec.tolerations.empty()) {
    Json tolerations = Json::array();
    for (const auto& t : spec.tolerations) {
      Json j = Json::object();
      if (t.key) j["key"] = *t.key;
      if (t.operator_) j["operator"] = api::ToString(*t.operator_);
      if (t.value) j["value"] = *t.value;
      if (t.effect) j["effect"] = api::ToString(*t.effect);
      if (t.toleration_seconds) j["tolerationSeconds"] = *t.toleration_seconds;
      tolerations.push_back(std::move(j));
    }
    pod["tolerations"] = std::move(tolerations);
  }
  if (!spec.affinity.is_null()) pod["affinity"] = spec.affinity;
  if (spec.priority_class_name) {
    pod["priorityClassName"] = *spec.priority_class_name;
  } else if (zone_priority_class) {
    pod["priorityClassName"] = *zone_priority_class;
  }
  return Json{{"metadata", std::move(meta)}, {"spec", std::move(pod)}};
}

// ---- quota --------------------------------------------------------------------------------------

using Amounts = std::map<std::string, Quantity>;

// The container's requests and limits as the API server will store them: a limit without a
// request requests the limit, then the LimitRanges' defaults fill what is still missing.
std::pair<Amounts, Amounts> EffectiveResources(const api::TaskSpec& spec,
                                               const std::vector<Json>& limit_ranges) {
  Amounts requests;
  Amounts limits;
  if (spec.resources) {
    requests = spec.resources->requests;
    limits = spec.resources->limits;
  }
  for (const auto& [r, q] : limits) requests.try_emplace(r, q);
  for (const Json& lr : limit_ranges) {
    const Json& items = Sub(Sub(lr, "spec"), "limits");
    if (!items.is_array()) continue;
    for (const Json& item : items) {
      if (Str(item, "type") != "Container") continue;
      const auto fill = [](Amounts& into, const Json& from) {
        if (!from.is_object()) return;
        for (const auto& [r, v] : from.items()) {
          if (auto q = QuantityOf(v)) into.try_emplace(r, *q);
        }
      };
      fill(limits, Sub(item, "default"));
      fill(requests, Sub(item, "defaultRequest"));
      fill(requests, Sub(item, "default"));
    }
  }
  return {std::move(requests), std::move(limits)};
}

}  // namespace

std::optional<std::string> QuotaShortfall(const api::TaskSpec& spec,
                                          const std::vector<Json>& quotas,
                                          const std::vector<Json>& limit_ranges) {
  const auto [requests, limits] = EffectiveResources(spec, limit_ranges);
  const bool batch = !api::Streaming(spec);
  // A gang starts only if every worker fits: its pods and their resources count `workers` times.
  const int64_t workers = batch ? Workers(spec) : 1;
  for (const Json& quota : quotas) {
    const Json& status = Sub(quota, "status");
    const Json& hard =
        Sub(status, "hard").is_object() ? Sub(status, "hard") : Sub(Sub(quota, "spec"), "hard");
    const Json& used = Sub(status, "used");
    if (!hard.is_object()) continue;
    std::string requested;
    std::string in_use;
    std::string limited;
    std::string unspecified;
    for (const auto& [key, hard_value] : hard.items()) {
      std::optional<Quantity> need;
      bool must_specify = false;
      const auto from = [&](const Amounts& amounts, const std::string& r) {
        const auto it = amounts.find(r);
        if (it != amounts.end()) {
          need = it->second;
        } else if (r == "cpu" || r == "memory") {
          must_specify = true;  // the quota admission plugin refuses pods that do not say
        }
      };
      if (key == "pods" || key == "count/pods") {
        need = Quantity::FromUnits(1);
      } else if (key == "count/jobs.batch") {
        if (batch) need = Quantity::FromUnits(1);
      } else if (key.starts_with("requests.")) {
        from(requests, key.substr(9));
      } else if (key.starts_with("limits.")) {
        from(limits, key.substr(7));
      } else if (key == "cpu" || key == "memory" || key == "ephemeral-storage") {
        from(requests, key);
      }
      if (must_specify) {
        unspecified += (unspecified.empty() ? "" : ",") + key;
        continue;
      }
      if (!need || need->milli() == 0) continue;
      if (key != "count/jobs.batch") *need = Quantity::FromMilli(need->milli() * workers);
      const std::optional<Quantity> cap = QuantityOf(hard_value);
      const std::optional<Quantity> now = QuantityOf(Sub(used, key));
      if (!cap) continue;
      const Quantity current = now.value_or(Quantity{});
      if (current + *need <= *cap) continue;
      const auto add = [&key](std::string& list, const Quantity& q) {
        list += (list.empty() ? "" : ",") + key + "=" + q.Canonical();
      };
      add(requested, *need);
      add(in_use, current);
      add(limited, *cap);
    }
    const std::string name = Str(Sub(quota, "metadata"), "name");
    if (!unspecified.empty()) {
      std::string message = "quota \"";
      message.append(name).append("\" caps ").append(unspecified);
      return message.append(
          ", so the task must set them in spec.resources (or its zone must give defaults)");
    }
    if (!requested.empty()) {
      std::string message = "exceeded quota \"";
      message.append(name).append("\": requested ").append(requested);
      message.append(", used ").append(in_use).append(", limited ").append(limited);
      return message.append("; the task starts when the quota allows");
    }
  }
  return std::nullopt;
}

std::string TaskJobName(const api::Task& task, int attempt) {
  std::string name = ChildName(task.metadata.name, std::to_string(attempt));
  // A gang's pods take <job>-<rank> as host names (at most 63 characters): room for rank 127.
  if (Workers(task.spec) > 1 && name.size() > 59) name = Shorten(name, 59);
  return name;
}

Json TaskWorkersService(const api::Task& task) {
  return Json{{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata", Meta(task, task.metadata.name)},
              {"spec",
               {{"clusterIP", "None"},
                // Workers find each other before they are Ready (rendezvous comes first).
                {"publishNotReadyAddresses", true},
                {"selector", {{kTaskLabel, task.metadata.name}}},
                {"ports", Json::array({{{"name", "rendezvous"},
                                        {"port", kMasterPort},
                                        {"targetPort", kMasterPort},
                                        {"protocol", "TCP"}}})}}}};
}

Json TaskJob(const api::Task& task, int attempt, const std::optional<std::string>& priority_class) {
  const std::string name = TaskJobName(task, attempt);
  Json meta = Meta(task, name);
  meta["labels"][kAttemptLabel] = std::to_string(attempt);
  const int32_t workers = Workers(task.spec);
  Json pod_template = PodTemplate(task, attempt, priority_class);
  Json spec{{"backoffLimit", 0}, {"completions", workers}, {"parallelism", workers}};
  if (workers > 1) {
    // A gang: one pod per rank, each named <job>-<rank> in the headless Service's subdomain; one
    // failed pod fails the Job (backoffLimit 0), so the attempt, and a retry restarts them all.
    spec["completionMode"] = "Indexed";
    pod_template["spec"]["subdomain"] = task.metadata.name;
    Json& env = pod_template["spec"]["containers"][0]["env"];
    env.push_back({{"name", "RANK"},
                   {"valueFrom",
                    {{"fieldRef",
                      {{"fieldPath", "metadata.annotations['" +
                                         std::string(kCompletionIndexAnnotation) + "']"}}}}}});
    env.push_back({{"name", "WORLD_SIZE"}, {"value", std::to_string(workers)}});
    env.push_back({{"name", "MASTER_ADDR"}, {"value", name + "-0." + task.metadata.name}});
    env.push_back({{"name", "MASTER_PORT"}, {"value", std::to_string(kMasterPort)}});
  }
  spec["template"] = std::move(pod_template);
  if (task.spec.retries && task.spec.retries->attempt_timeout) {
    const auto s = std::chrono::ceil<seconds>(task.spec.retries->attempt_timeout->value);
    spec["activeDeadlineSeconds"] = std::max<int64_t>(1, s.count());
  }
  return Json{{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata", std::move(meta)},
              {"spec", std::move(spec)}};
}

std::vector<Json> TaskStreamingChildren(const api::Task& task,
                                        const std::optional<std::string>& priority_class) {
  const std::string& name = task.metadata.name;
  const Json selector{{kTaskLabel, name}};
  Json deployment_spec{{"selector", {{"matchLabels", selector}}},
                       {"template", PodTemplate(task, std::nullopt, priority_class)}};
  // With an autoscaler the replica count is the HPA's to set: leave it out of our apply.
  if (!task.spec.scaling) deployment_spec["replicas"] = 1;
  std::vector<Json> children;
  children.push_back(Json{{"apiVersion", "apps/v1"},
                          {"kind", "Deployment"},
                          {"metadata", Meta(task, name)},
                          {"spec", std::move(deployment_spec)}});
  Json service_spec{{"selector", selector}};
  if (task.spec.service) {
    service_spec["ports"] = Json::array(
        {{{"name", "service"},
          {"port", task.spec.service->port},
          {"targetPort", task.spec.service->port},
          {"protocol", api::ToString(task.spec.service->protocol.value_or(api::Protocol::kTCP))}}});
  } else {
    service_spec["clusterIP"] = "None";  // headless: the stream workers' own addresses
  }
  children.push_back(Json{{"apiVersion", "v1"},
                          {"kind", "Service"},
                          {"metadata", Meta(task, name)},
                          {"spec", std::move(service_spec)}});
  if (task.spec.scaling) {
    children.push_back(HorizontalPodAutoscalerFor(Meta(task, name), name, *task.spec.scaling));
  }
  return children;
}

seconds RetryDelay(const api::Retries& retries, int retry) {
  const api::Backoff backoff = retries.backoff.value_or(api::Backoff{});
  const double base =
      backoff.duration ? std::chrono::duration<double>(backoff.duration->value).count() : 10.0;
  const double factor = backoff.factor.value_or(2.0);
  const double cap = backoff.max_duration
                         ? std::chrono::duration<double>(backoff.max_duration->value).count()
                         : 600.0;
  const double delay = std::min(cap, base * std::pow(factor, std::max(0, retry - 1)));
  return seconds{static_cast<int64_t>(std::ceil(std::max(0.0, delay)))};
}

namespace {

// Builds one reconcile's plan; each method handles one situation.
class Planner {
 public:
  Planner(const api::Task& task, const ObservedTask& observed, api::Time now)
      : task_(task), observed_(observed), now_(now) {
    plan_.status = task.status.value_or(api::TaskStatus{});
    plan_.status.observed_generation = task.metadata.generation;
    if (task.spec.retries) total_attempts_ = task.spec.retries->limit + 1;
    old_ = plan_.status;
  }

  TaskPlan Run() {
    if (Terminal(status().phase)) {
      Cleanup();
    } else if (api::Cancelled(task_.spec)) {
      // A Job made before the cancel is an attempt, even if its status write was lost.
      if (const int latest = LatestAttempt(); latest > 0) status().attempts = latest;
      Finish(TaskPhase::kCancelled, "Cancelled", "cancelled by spec.cancel");
    } else if (api::Streaming(task_.spec)) {
      Streaming();
    } else {
      Batch();
      // A gang's workers find each other through the headless Service while the task runs.
      if (Workers(task_.spec) > 1 && !Terminal(status().phase)) {
        plan_.apply.push_back(TaskWorkersService(task_));
      }
    }
    Events();
    return std::move(plan_);
  }

 private:
  api::TaskStatus& status() { return plan_.status; }
  api::TaskChildren& Children() {
    std::optional<api::TaskChildren>& children = plan_.status.children;
    return children ? *children : children.emplace();
  }
  const api::TaskStatus& old() const { return old_; }
  int64_t generation() const { return task_.metadata.generation; }

  void SetReady(bool ready, std::string reason, std::string message) {
    api::SetCondition(
        status().conditions,
        MakeCondition(kTaskConditionReady,
                      ready ? api::ConditionStatus::kTrue : api::ConditionStatus::kFalse,
                      std::move(reason), std::move(message), generation(), now_));
  }

  void Remove(const Json& object) {
    const Json& meta = Sub(object, "metadata");
    if (meta.contains("deletionTimestamp")) return;
    plan_.remove.push_back(ChildRefOf(object));
  }

  void RemoveActiveJobs() {
    for (const Json& job : observed_.jobs) {
      if (FactsOfJob(job).state == JobState::kActive) Remove(job);
    }
  }

  void RemoveStreamingChildren() {
    for (const auto* child :
         {&observed_.deployment, &observed_.service, &observed_.horizontal_pod_autoscaler}) {
      if (*child) Remove(**child);
    }
  }

  // Ends the task. Succeeded tasks are Ready; the others carry `reason` on Ready and Failed.
  void Finish(TaskPhase phase, const std::string& reason, const std::string& message) {
    status().phase = phase;
    status().next_retry_time.reset();
    if (!status().completion_time) status().completion_time = now_;
    const bool ok = phase == TaskPhase::kSucceeded;
    SetReady(ok, ok ? "Succeeded" : reason, message);
    api::SetCondition(
        status().conditions,
        MakeCondition(ok ? kTaskConditionComplete : kTaskConditionFailed,
                      api::ConditionStatus::kTrue, reason, message, generation(), now_));
    Cleanup();
  }

  // A finished task: stop leftovers, and delete the children once ttlAfterFinished passed.
  void Cleanup() {
    if (api::Streaming(task_.spec)) {
      RemoveStreamingChildren();
      return;
    }
    RemoveActiveJobs();
    if (observed_.service) Remove(*observed_.service);  // a finished gang's headless Service
    const std::optional<api::Time>& completed = status().completion_time;
    if (!task_.spec.ttl_after_finished || !completed) return;
    const auto due = *completed + std::chrono::ceil<seconds>(task_.spec.ttl_after_finished->value);
    if (now_ >= due) {
      for (const Json& job : observed_.jobs) {
        if (FactsOfJob(job).state != JobState::kActive) Remove(job);
      }
    } else if (!observed_.jobs.empty()) {
      RequeueWithin(plan_.requeue_after, due - now_);
    }
  }

  // Past spec.timeout (from the first start): true when the task was ended for it.
  bool TimedOut() {
    const std::optional<api::Time>& started = status().start_time;
    if (!task_.spec.timeout || !started) return false;
    const auto deadline = DeadlineAfter(*started, task_.spec.timeout->value);
    if (now_ < deadline) {
      RequeueWithin(plan_.requeue_after, deadline - now_);
      return false;
    }
    const std::string message =
        "the task did not finish within its timeout of " + task_.spec.timeout->text;
    status().failure = api::TaskFailure{
        .reason = "DeadlineExceeded", .exit_code = std::nullopt, .message = message};
    Finish(TaskPhase::kFailed, "DeadlineExceeded", message);
    return true;
  }

  std::string AttemptOfTotal(int attempt) const {
    return "attempt " + std::to_string(attempt) + " of " + std::to_string(total_attempts_);
  }

  std::string StartingMessage(const std::string& job, int attempt) const {
    return "created Job " + job + " for " + AttemptOfTotal(attempt);
  }

  // ---- batch ----

  // The attempts made: what status says, or more if the cache shows a later Job (a status write
  // lost to a crash).
  int LatestAttempt() const {
    int latest = plan_.status.attempts.value_or(0);
    for (const Json& job : observed_.jobs) latest = std::max(latest, AttemptOf(job));
    return latest;
  }

  void Batch() {
    std::map<int, const Json*> jobs;
    for (const Json& job : observed_.jobs) {
      if (const int n = AttemptOf(job); n > 0) jobs[n] = &job;
    }
    const int latest = LatestAttempt();
    if (!status().start_time && !jobs.empty()) {
      status().start_time = FactsOfJob(*jobs.begin()->second).created;
    }
    if (latest > 0) status().attempts = latest;  // a timeout ends the attempts made, counted
    if (TimedOut()) return;

    if (latest == 0) {
      Start(1);
      return;
    }
    status().attempts = latest;
    const auto it = jobs.find(latest);
    if (it == jobs.end()) {
      // status.attempts is written only after the attempt's Job was created, and the reconciler
      // reads the Job from the API server when its cache does not show it: it is gone.
      AttemptFailed(
          latest,
          {api::FailureKind::kEvicted, "JobDeleted", std::nullopt,
           "the Job of attempt " + std::to_string(latest) + " was deleted before it finished"},
          now_);
      return;
    }
    const JobFacts job = FactsOfJob(*it->second);
    Children().job = job.name;
    const std::optional<PodFacts> pod =
        AttemptPod(observed_.pods, latest, Str(Sub(*it->second, "metadata"), "uid"));
    switch (job.state) {
      case JobState::kComplete:
        Succeeded(latest, pod);
        return;
      case JobState::kFailed:
        AttemptFailed(latest, Classify(job, pod), job.finished.value_or(now_));
        return;
      case JobState::kActive:
        Running(latest, job, pod);
        return;
    }
  }

  void Start(int attempt) {
    if (observed_.job_blocked) {
      if (!status().phase) status().phase = TaskPhase::kPending;
      SetReady(false, "WaitingForOldJob", *observed_.job_blocked);
      RequeueWithin(plan_.requeue_after, kOldJobRecheck);
      return;
    }
    if (observed_.job_rejected) {
      const std::string message = "the API server refused the Job of " + AttemptOfTotal(attempt) +
                                  ": " + *observed_.job_rejected;
      status().failure = api::TaskFailure{
          .reason = "JobRejected", .exit_code = std::nullopt, .message = Truncate(message)};
      Finish(TaskPhase::kFailed, "JobRejected", Truncate(message));
      return;
    }
    if (auto shortfall =
            QuotaShortfall(task_.spec, observed_.resource_quotas, observed_.limit_ranges)) {
      if (!status().phase) status().phase = TaskPhase::kPending;
      SetReady(false, "QuotaExceeded", *shortfall);
      RequeueWithin(plan_.requeue_after, kQuotaRecheck);
      return;
    }
    plan_.create_job = TaskJob(task_, attempt, observed_.zone_priority_class);
    status().attempts = attempt;
    Children().job = TaskJobName(task_, attempt);
    if (!status().start_time) status().start_time = now_;
    status().next_retry_time.reset();
    status().phase = TaskPhase::kPending;
    SetReady(false, "Starting", StartingMessage(TaskJobName(task_, attempt), attempt));
    plan_.events.push_back(
        {"Normal", "AttemptStarted",
         AttemptOfTotal(attempt) + ": created Job " + TaskJobName(task_, attempt)});
  }

  void Running(int attempt, const JobFacts& job, const std::optional<PodFacts>& pod) {
    status().next_retry_time.reset();
    if (job.deleting) {
      status().phase = TaskPhase::kPending;
      SetReady(false, "JobTerminating", "Job " + job.name + " is being deleted");
      return;
    }
    // Until its pod runs or hits a problem, an attempt stays "Starting" with the message written
    // when its Job was created: the pod's way to Running costs no status writes.
    if (!pod) {
      status().phase = TaskPhase::kPending;
      SetReady(false, "Starting", StartingMessage(job.name, attempt));
      return;
    }
    if (pod->unschedulable) {
      status().phase = TaskPhase::kPending;
      SetReady(false, "Unschedulable",
               "pod " + pod->name + " cannot be scheduled: " + *pod->unschedulable);
      return;
    }
    if (pod->waiting_reason == "ImagePullBackOff" || pod->waiting_reason == "ErrImagePull" ||
        pod->waiting_reason == "InvalidImageName") {
      status().phase = TaskPhase::kPending;
      SetReady(false, "ImagePullBackOff",
               "pod " + pod->name + " cannot pull image " + task_.spec.image +
                   (pod->waiting_message.empty() ? "" : ": " + pod->waiting_message));
      return;
    }
    if (pod->waiting_reason == "CreateContainerConfigError") {
      status().phase = TaskPhase::kPending;
      SetReady(false, "CreateContainerConfigError",
               "pod " + pod->name + ": " + pod->waiting_message);
      return;
    }
    if (pod->phase == "Running" || pod->phase == "Succeeded" || pod->phase == "Failed") {
      status().phase = TaskPhase::kRunning;
      SetReady(false, "Running", AttemptOfTotal(attempt) + " is running in pod " + pod->name);
      return;
    }
    status().phase = TaskPhase::kPending;
    SetReady(false, "Starting", StartingMessage(job.name, attempt));
  }

  void Succeeded(int attempt, const std::optional<PodFacts>& pod) {
    const auto results = api::ParseResults(pod ? pod->terminated_message : std::string{});
    if (!results) {
      const std::string reason = results.error().too_large ? "ResultsTooLarge" : "InvalidResults";
      const std::string message =
          "the termination message could not be read as results: " + results.error().message;
      status().failure = api::TaskFailure{.reason = reason, .exit_code = 0, .message = message};
      Finish(TaskPhase::kFailed, reason, message);
      return;
    }
    status().results = *results;
    status().failure.reset();
    Finish(TaskPhase::kSucceeded, "Succeeded",
           "succeeded on " + AttemptOfTotal(attempt) +
               (results->empty()
                    ? ""
                    : " with " + Plural(static_cast<int64_t>(results->size()), "result")));
  }

  void AttemptFailed(int attempt, const AttemptFailure& failure, api::Time failed_at) {
    status().failure = api::TaskFailure{
        .reason = failure.reason, .exit_code = failure.exit_code, .message = failure.message};
    const bool retry = task_.spec.retries && attempt < total_attempts_ &&
                       Retried(*task_.spec.retries, failure.kind);
    if (!retry) {
      std::string why = AttemptOfTotal(attempt) + " failed: " + Describe(failure);
      if (task_.spec.retries && attempt < total_attempts_) {
        why += " (" + std::string(api::ToString(failure.kind)) + " is not in retries.onFailure)";
      }
      Finish(TaskPhase::kFailed, failure.reason, why);
      return;
    }
    const api::Time retry_at = failed_at + RetryDelay(*task_.spec.retries, attempt);
    if (now_ >= retry_at) {
      // Noticed only after the backoff ran out (a busy operator, a restart): no retry was
      // scheduled, so Events() has none to report; the failed attempt is reported here.
      if (!old().next_retry_time) {
        plan_.events.push_back(
            {"Warning", "AttemptFailed",
             AttemptOfTotal(attempt) + " failed: " + Describe(failure) + "; retrying now"});
      }
      Start(attempt + 1);
      return;
    }
    status().phase = TaskPhase::kRunning;
    status().next_retry_time = retry_at;
    SetReady(false, "RetryScheduled",
             AttemptOfTotal(attempt) + " failed: " + Describe(failure) + "; retrying at " +
                 api::FormatTime(retry_at));
    RequeueWithin(plan_.requeue_after, retry_at - now_);
  }

  // ---- streaming ----

  void Streaming() {
    plan_.apply = TaskStreamingChildren(task_, observed_.zone_priority_class);
    if (!task_.spec.scaling && observed_.horizontal_pod_autoscaler) {
      Remove(*observed_.horizontal_pod_autoscaler);
    }
    if (!status().start_time) status().start_time = now_;
    api::TaskChildren children;
    children.deployment = task_.metadata.name;
    children.service = task_.metadata.name;
    if (task_.spec.scaling) children.horizontal_pod_autoscaler = task_.metadata.name;
    status().children = children;
    const std::string host = task_.metadata.name + "." + task_.metadata.namespace_ + ".svc";
    const std::string endpoint =
        task_.spec.service ? "http://" + host + ":" + std::to_string(task_.spec.service->port)
                           : host;
    status().endpoint = endpoint;

    if (!observed_.deployment) {
      status().phase = TaskPhase::kPending;
      SetReady(false, "Creating", "creating Deployment " + task_.metadata.name);
      return;
    }
    const Json& d = *observed_.deployment;
    const Json& ds = Sub(d, "status");
    const DeploymentRollout rollout = RolloutOf(d);
    status().replicas = static_cast<int32_t>(rollout.total);
    status().ready_replicas = static_cast<int32_t>(rollout.ready);

    std::optional<std::pair<std::string, std::string>> problem;
    if (const Json* failure = TrueCondition(d, "ReplicaFailure")) {
      const std::string message = Str(*failure, "message");
      problem = {
          message.find("exceeded quota") != std::string::npos ? "QuotaExceeded" : "ReplicaFailure",
          message};
    } else if (const Json& conditions = Sub(ds, "conditions"); conditions.is_array()) {
      for (const Json& c : conditions) {
        if (Str(c, "type") == "Progressing" && Str(c, "reason") == "ProgressDeadlineExceeded") {
          problem = {"ProgressDeadlineExceeded", Str(c, "message")};
        }
      }
    }
    if (!problem) {
      for (const Json& pod : observed_.pods) {
        const PodFacts f = FactsOf(pod);
        if (f.unschedulable) {
          problem = {"Unschedulable",
                     "pod " + f.name + " cannot be scheduled: " + *f.unschedulable};
        } else if (f.waiting_reason == "ImagePullBackOff" || f.waiting_reason == "ErrImagePull") {
          problem = {"ImagePullBackOff",
                     "pod " + f.name + " cannot pull image " + task_.spec.image};
        }
        if (problem) break;
      }
    }
    const std::string counts =
        std::to_string(rollout.ready) + "/" + std::to_string(rollout.wanted) + " replicas ready";
    // Ready only once the Deployment serves the current spec: readyReplicas also counts the pods
    // of the template being replaced.
    if (rollout.Complete() && rollout.wanted > 0 && !problem) {
      status().phase = TaskPhase::kReady;
      SetReady(true, "Ready", counts + " at " + endpoint);
      return;
    }
    const bool was_serving = old().phase == TaskPhase::kReady ||
                             old().phase == TaskPhase::kRollingOut ||
                             old().phase == TaskPhase::kDegraded;
    // A new spec replacing the pods of a task that served: the old pods serve meanwhile.
    if (was_serving && !problem && rollout.ReplacingPods()) {
      status().phase = TaskPhase::kRollingOut;
      SetReady(false, "RollingOut", "rolling out the new spec: " + rollout.Describe());
      return;
    }
    status().phase = was_serving ? TaskPhase::kDegraded : TaskPhase::kPending;
    if (problem) {
      SetReady(false, problem->first, counts + ": " + problem->second);
    } else {
      SetReady(false, "ReplicasNotReady", counts);
    }
  }

  // ---- events: one per transition between the old status and the new ----

  void Events() {
    const api::TaskStatus& s = status();
    const api::Condition* ready = api::FindCondition(s.conditions, kTaskConditionReady);
    const api::Condition* old_ready = api::FindCondition(old().conditions, kTaskConditionReady);
    const bool phase_changed = s.phase != old().phase;
    const bool has_ready = ready != nullptr;
    if (s.next_retry_time && s.next_retry_time != old().next_retry_time && has_ready) {
      plan_.events.push_back({"Warning", "AttemptFailed", ready->message});
    }
    if (phase_changed && s.phase == TaskPhase::kSucceeded && has_ready) {
      plan_.events.push_back({"Normal", "Succeeded", ready->message});
    } else if (phase_changed && s.phase == TaskPhase::kFailed) {
      const api::Condition* failed = api::FindCondition(s.conditions, kTaskConditionFailed);
      plan_.events.push_back(
          {"Warning", "Failed", failed != nullptr ? failed->message : std::string("failed")});
    } else if (phase_changed && s.phase == TaskPhase::kCancelled) {
      plan_.events.push_back({"Normal", "Cancelled", "cancelled by spec.cancel"});
    } else if (phase_changed && s.phase == TaskPhase::kRunning && !s.next_retry_time && has_ready) {
      plan_.events.push_back({"Normal", "Running", ready->message});
    } else if (phase_changed && s.phase == TaskPhase::kReady && has_ready) {
      plan_.events.push_back({"Normal", "Ready", ready->message});
    } else if (phase_changed && s.phase == TaskPhase::kRollingOut && has_ready) {
      plan_.events.push_back({"Normal", "RollingOut", ready->message});
    } else if (phase_changed && s.phase == TaskPhase::kDegraded && has_ready) {
      plan_.events.push_back({"Warning", "Degraded", ready->message});
    }
    static constexpr std::array<std::string_view, 6> kWarned{
        "QuotaExceeded",    "Unschedulable",
        "ImagePullBackOff", "CreateContainerConfigError",
        "ReplicaFailure",   "ProgressDeadlineExceeded"};
    if (has_ready && std::ranges::find(kWarned, ready->reason) != kWarned.end() &&
        (old_ready == nullptr || old_ready->reason != ready->reason)) {
      plan_.events.push_back({"Warning", ready->reason, ready->message});
    }
  }

  const api::Task& task_;
  const ObservedTask& observed_;
  api::Time now_;
  int total_attempts_ = 1;
  TaskPlan plan_;
  api::TaskStatus old_;
};

}  // namespace

std::optional<int> AttemptPodToRead(const api::Task& task, const ObservedTask& observed) {
  if (api::Streaming(task.spec) || (task.status && Terminal(task.status->phase)))
    return std::nullopt;
  const Json* latest = nullptr;
  for (const Json& job : observed.jobs) {
    if (latest == nullptr || AttemptOf(job) > AttemptOf(*latest)) latest = &job;
  }
  if (latest == nullptr || AttemptOf(*latest) == 0) return std::nullopt;
  const int attempt = AttemptOf(*latest);
  if (task.status && task.status->attempts.value_or(0) > attempt) return std::nullopt;
  const JobFacts job = FactsOfJob(*latest);
  if (job.state == JobState::kActive || job.reason == "DeadlineExceeded") return std::nullopt;
  const std::optional<PodFacts> pod =
      AttemptPod(observed.pods, attempt, Str(Sub(*latest, "metadata"), "uid"));
  if (pod && (pod->phase == "Succeeded" || pod->phase == "Failed")) return std::nullopt;
  return attempt;
}

TaskPlan PlanTask(const api::Task& task, const ObservedTask& observed, api::Time now) {
  return Planner(task, observed, now).Run();
}

Json TaskStatusPatch(const api::Task& task, const api::TaskStatus& status) {
  return StatusPatchFor(task, status);
}

void TrimTaskJob(Json& job) {
  job.erase("spec");
  if (job.contains("status")) {
    Json& status = job["status"];
    Json kept = Json::object();
    for (const char* key : {"conditions", "completionTime", "startTime"}) {
      if (status.contains(key)) kept[key] = status[key];
    }
    status = std::move(kept);
  }
}

void TrimTaskPod(Json& pod) {
  Json& status = pod["status"];
  Json kept{{"phase", Str(status, "phase")}};
  for (const char* key : {"reason", "message"}) {
    if (status.contains(key)) kept[key] = status[key];
  }
  if (const Json& conditions = Sub(status, "conditions"); conditions.is_array()) {
    Json c = Json::array();
    for (const Json& condition : conditions) {
      const std::string type = Str(condition, "type");
      if (type == "PodScheduled" || type == "DisruptionTarget") c.push_back(condition);
    }
    kept["conditions"] = std::move(c);
  }
  if (const Json& statuses = Sub(status, "containerStatuses"); statuses.is_array()) {
    Json c = Json::array();
    for (const Json& cs : statuses) {
      c.push_back({{"name", Str(cs, "name")}, {"state", Sub(cs, "state")}});
    }
    kept["containerStatuses"] = std::move(c);
  }
  status = std::move(kept);
  pod.erase("spec");
}

}  // namespace millrace::reconcilers
