#include "reconcilers/pipeline.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <ranges>
#include <set>
#include <utility>

#include "crds/dag.h"
#include "crds/errors.h"
#include "crds/meta.h"
#include "crds/model_version.h"
#include "crds/templates.h"
#include "crds/validation.h"
#include "reconcilers/object.h"

namespace millrace::reconcilers {
namespace {

using api::Json;
using api::PipelinePhase;
using api::StepPhase;
using std::chrono::seconds;
namespace templates = api::templates;

constexpr size_t kMaxMessage = 512;  // of a step's message: status stays small at any size
constexpr size_t kMaxNamesListed = 5;

bool Final(const std::optional<StepPhase>& p) {
  return p == StepPhase::kSucceeded || p == StepPhase::kFailed || p == StepPhase::kSkipped ||
         p == StepPhase::kCancelled;
}

bool Terminal(const std::optional<PipelinePhase>& p) {
  return p == PipelinePhase::kSucceeded || p == PipelinePhase::kFailed ||
         p == PipelinePhase::kCancelled;
}

// A label value that is a whole number (an item's index).
std::optional<size_t> IndexOf(const std::string& s) {
  size_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

size_t Bytes(const std::map<std::string, std::string>& results) {
  size_t n = 0;
  for (const auto& [k, v] : results) n += k.size() + v.size();
  return n;
}

std::optional<double> Number(const std::string& s) {
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// What a child Task says about its step.
struct TaskView {
  std::string name;
  std::string phase;
  std::string message;
  std::optional<int32_t> attempts;
  std::optional<api::Time> start_time;
  std::optional<api::Time> completion_time;
  std::map<std::string, std::string> results;
  bool cancel_requested = false;  // spec.cancel is set
};

TaskView ViewOf(const Json& task) {
  TaskView v;
  v.name = Str(Sub(task, "metadata"), "name");
  const Json& status = Sub(task, "status");
  v.phase = Str(status, "phase");
  v.cancel_requested = Sub(Sub(task, "spec"), "cancel") == Json(true);
  if (const Json& a = Sub(status, "attempts"); a.is_number_integer()) {
    v.attempts = a.get<int32_t>();
  }
  for (const char* key : {"startTime", "completionTime"}) {
    if (auto t = api::ParseTime(Str(status, key))) {
      (std::string_view(key) == "startTime" ? v.start_time : v.completion_time) = *t;
    }
  }
  if (const Json& r = Sub(status, "results"); r.is_object()) {
    for (const auto& [k, value] : r.items()) {
      if (value.is_string()) v.results[k] = value.get<std::string>();
    }
  }
  // The Failed condition says it best ("attempt 2 of 2 failed: Error (exit code 7): ..."); then
  // the failure's own message, then Ready's.
  std::string failed;
  std::string ready;
  if (const Json& conditions = Sub(status, "conditions"); conditions.is_array()) {
    for (const Json& c : conditions) {
      if (Str(c, "type") == "Failed" && Str(c, "status") == "True") failed = Str(c, "message");
      if (Str(c, "type") == "Ready") ready = Str(c, "message");
    }
  }
  v.message = !failed.empty() ? failed : Str(Sub(status, "failure"), "message");
  if (v.message.empty()) v.message = ready;
  return v;
}

enum class StartResult { kStarted, kSkipped, kFailed, kFinished };

// Why a step or one of its children cannot start: a reason (InvalidReference, InvalidTask,
// FanOutTooLarge, ...) and a message.
struct Refusal {
  std::string reason;
  std::string message;
};

// The values of a fan-out item: {{item}}, and {{item.<key>}} for an object's keys.
templates::Values ItemValues(const Json& item) {
  templates::Values v;
  v[templates::ItemKey("")] = item.is_string() ? item.get<std::string>() : item.dump();
  if (item.is_object()) {
    for (const auto& [k, value] : item.items()) {
      v[templates::ItemKey(k)] = value.is_string() ? value.get<std::string>() : value.dump();
    }
  }
  return v;
}

class Planner {
 public:
  Planner(const api::Pipeline& pipeline, const ObservedPipeline& observed, api::Time now)
      : p_(pipeline), observed_(observed), now_(now) {
    plan_.status = pipeline.status.value_or(api::PipelineStatus{});
    plan_.status.observed_generation = pipeline.metadata.generation;
    old_ = plan_.status;
  }

  PipelinePlan Run() {
    Decide();
    Events();
    return std::move(plan_);
  }

 private:
  api::PipelineStatus& status() { return plan_.status; }
  int64_t generation() const { return p_.metadata.generation; }

  void Decide() {
    if (Terminal(status().phase)) {
      Ttl();
      return;
    }
    // Steps and params are immutable (the API server's transition rules), so a run that started
    // was validated already: the check runs until the first step starts, not on every reconcile.
    const api::ValidationErrors errors =
        status().start_time ? api::ValidationErrors{} : api::Validate(p_);
    if (!errors.empty()) {
      const std::string message = Truncate(api::ToString(errors), 2048);
      status().failure =
          api::PipelineFailure{.step = std::nullopt, .reason = "InvalidSpec", .message = message};
      Finish(PipelinePhase::kFailed, "InvalidSpec", message);
      return;
    }
    if (!status().start_time && p_.spec.suspend.value_or(false)) {
      status().phase = PipelinePhase::kSuspended;
      SetCondition(api::ConditionStatus::kUnknown, "Suspended",
                   "suspended before it started: set spec.suspend to false to run");
      return;
    }
    if (!status().start_time) status().start_time = now_;
    EnsureRecords();
    Observe();
    Register();

    const bool cancelled = p_.spec.cancel.value_or(false);
    const bool regular_done = RegularDone();
    std::optional<api::Time> deadline;
    std::string timeout;  // as written, for messages
    if (p_.spec.timeout) {
      deadline = DeadlineAfter(status().start_time.value_or(now_), p_.spec.timeout->value);
      timeout = p_.spec.timeout->text;
      if (now_ < *deadline && !regular_done) RequeueWithin(plan_.requeue_after, *deadline - now_);
    }
    // The timeout bounds the regular steps only: once they are all final it stops nothing, and
    // finally steps may run past it.
    const bool deadline_passed = deadline && now_ >= *deadline && !regular_done;
    const std::optional<std::string> failed = FirstFailed();
    const bool fail_fast = p_.spec.fail_fast.value_or(false) && failed;
    std::optional<std::string> stop;
    if (cancelled) {
      stop = "the pipeline was cancelled";
    } else if (deadline_passed) {
      stop = "the pipeline passed its timeout of " + timeout;
    } else if (fail_fast) {
      stop = "failFast: step " + *failed + " failed";
    }
    for (const auto& step : p_.spec.steps) Settle(step, stop);
    for (const auto& step : p_.spec.finally) Settle(step, std::nullopt);
    if (stop) {
      Stop(*stop);
    } else {
      Schedule(p_.spec.steps, /*finally=*/false);
    }
    status().phase = PipelinePhase::kRunning;

    if (RegularDone()) {
      // The outcome of the regular steps, which finally steps may read as {{pipeline.phase}}.
      PipelinePhase outcome = PipelinePhase::kSucceeded;
      std::string reason = "Succeeded";
      std::string message;
      if (cancelled) {
        outcome = PipelinePhase::kCancelled;
        reason = "Cancelled";
        message = "cancelled by spec.cancel";
      } else if (deadline && RegularEnd() >= *deadline) {
        // From the step records alone, not from when this reconcile runs: the same outcome on
        // every reconcile while finally steps run (they read it as {{pipeline.phase}}).
        outcome = PipelinePhase::kFailed;
        reason = "DeadlineExceeded";
        message = "the pipeline did not finish within its timeout of " + timeout;
        status().failure =
            api::PipelineFailure{.step = std::nullopt, .reason = reason, .message = message};
      } else if (const auto step = FirstFailed()) {
        outcome = PipelinePhase::kFailed;
        reason = "StepFailed";
        const auto& why = Rec(*step).message;
        message = "step " + *step + " failed" + (why ? ": " + *why : std::string{});
        status().failure = api::PipelineFailure{
            .step = step, .reason = reason, .message = Truncate(message, kMaxMessage)};
      }
      outcome_ = outcome;
      Schedule(p_.spec.finally, /*finally=*/true);
      if (FinallyDone()) {
        if (outcome == PipelinePhase::kSucceeded) {
          for (const auto& step : p_.spec.finally) {
            if (Rec(step.name).phase == StepPhase::kFailed) {
              outcome = PipelinePhase::kFailed;
              reason = "FinallyStepFailed";
              const auto& why = Rec(step.name).message;
              message = "finally step " + step.name + " failed" + (why ? ": " + *why : "");
              status().failure = api::PipelineFailure{
                  .step = step.name, .reason = reason, .message = Truncate(message, kMaxMessage)};
              break;
            }
          }
        }
        if (outcome == PipelinePhase::kSucceeded) message = "all steps finished";
        Finish(outcome, reason, message);
        return;
      }
    }
    Progress();
    std::vector<std::string> running;
    for (const auto& r : status().steps) {
      if (r.phase != StepPhase::kRunning) continue;
      running.push_back(r.name);
      if (r.children) {
        running.back() += " (" + std::to_string(r.children->running) + " of " +
                          std::to_string(r.children->total) + " children running)";
      }
    }
    std::string message = "progress " + status().progress.value_or("");
    if (!running.empty()) {
      message += "; running: ";
      for (size_t i = 0; i < running.size() && i < kMaxNamesListed; ++i) {
        message += ((i != 0u) ? ", " : "") + running[i];
      }
      if (running.size() > kMaxNamesListed) {
        message += " and " + std::to_string(running.size() - kMaxNamesListed) + " more";
      }
    }
    SetCondition(api::ConditionStatus::kUnknown, "Running", message);
  }

  void SetCondition(api::ConditionStatus s, std::string reason, std::string message) {
    api::SetCondition(status().conditions,
                      MakeCondition(kPipelineConditionSucceeded, s, std::move(reason),
                                    std::move(message), generation(), now_));
  }

  void Finish(PipelinePhase phase, const std::string& reason, const std::string& message) {
    status().phase = phase;
    if (!status().completion_time) status().completion_time = now_;
    Progress();
    SetCondition(phase == PipelinePhase::kSucceeded ? api::ConditionStatus::kTrue
                                                    : api::ConditionStatus::kFalse,
                 reason, message);
    Ttl();
  }

  void Ttl() {
    const auto& completed = status().completion_time;
    if (!p_.spec.ttl_after_finished || !completed) return;
    const auto due = *completed + std::chrono::ceil<seconds>(p_.spec.ttl_after_finished->value);
    if (now_ >= due) {
      plan_.delete_pipeline = true;
    } else {
      RequeueWithin(plan_.requeue_after, due - now_);
    }
  }

  void Progress() {
    size_t done = 0;
    for (const auto& r : status().steps) {
      if (r.phase == StepPhase::kSucceeded || r.phase == StepPhase::kSkipped ||
          r.phase == StepPhase::kReady) {
        ++done;
      }
    }
    status().progress = std::to_string(done) + "/" + std::to_string(status().steps.size());
  }

  // ---- step records ----

  void EnsureRecords() {
    std::map<std::string, api::StepStatus> old;
    for (auto& r : status().steps) old.emplace(r.name, std::move(r));
    status().steps.clear();
    for (const auto* group : {&p_.spec.steps, &p_.spec.finally}) {
      for (const auto& step : *group) {
        auto it = old.find(step.name);
        api::StepStatus r = it != old.end() ? std::move(it->second) : api::StepStatus{};
        r.name = step.name;
        if (!r.phase) r.phase = StepPhase::kPending;
        index_[step.name] = status().steps.size();
        spec_[step.name] = &step;
        status().steps.push_back(std::move(r));
      }
    }
  }

  api::StepStatus& Rec(const std::string& name) { return status().steps.at(index_.at(name)); }

  static bool IsFanOut(const api::Step& step) { return api::FanOutOf(step) != api::FanOut::kNone; }

  void Observe() {
    std::map<std::string, const Json*> by_step;
    auto& by_item = by_item_;
    for (const Json& t : observed_.tasks) {
      const Json& meta = Sub(t, "metadata");
      const std::string step = Str(Sub(meta, "labels"), kStepLabel);
      const auto spec = spec_.find(step);
      if (spec == spec_.end()) continue;
      const std::string name = Str(meta, "name");
      if (!IsFanOut(*spec->second)) {
        if (name == StepTaskName(p_, step)) by_step[step] = &t;
      } else if (const auto index = IndexOf(Str(Sub(meta, "labels"), kItemLabel));
                 index && name == FanOutTaskName(p_, step, *index)) {
        by_item[step][*index] = &t;
      }
    }
    for (auto& r : status().steps) {
      if (IsFanOut(*spec_.at(r.name))) {
        ObserveFanOut(r, by_item[r.name]);
        continue;
      }
      const auto it = by_step.find(r.name);
      if (it == by_step.end()) {
        if (r.task && !Final(r.phase)) {
          r.phase = StepPhase::kFailed;
          r.message = "its Task " + *r.task + " was deleted before it finished (TaskDeleted)";
          r.completion_time = now_;
        }
        continue;
      }
      const TaskView v = ViewOf(*it->second);
      r.task = v.name;
      if (v.attempts) r.attempts = v.attempts;
      if (v.start_time) r.start_time = v.start_time;
      if (!r.start_time) r.start_time = now_;
      if (Final(r.phase)) continue;  // a final record stays as it was written
      if (v.phase == "Succeeded") {
        r.completion_time = v.completion_time.value_or(now_);
        r.message.reset();
        Succeed(r, v.results);
      } else if (v.phase == "Failed") {
        r.phase = StepPhase::kFailed;
        r.completion_time = v.completion_time.value_or(now_);
        r.message = Truncate(v.message, kMaxMessage);
      } else if (v.phase == "Cancelled") {
        r.phase = StepPhase::kCancelled;
        r.completion_time = v.completion_time.value_or(now_);
        if (!r.message) r.message = "cancelled";
      } else if (v.phase == "Ready") {
        r.phase = StepPhase::kReady;
      } else {
        r.phase = StepPhase::kRunning;
      }
    }
  }

  // Recounts a started fan-out step's children from the observed Tasks.
  void ObserveFanOut(api::StepStatus& r, const std::map<size_t, const Json*>& tasks) {
    if (!r.children || Final(r.phase)) return;  // not started, or settled
    api::FanOutStatus& c = *r.children;
    // Children are made in item order; one the status does not count yet was made by a
    // reconcile whose status write was lost.
    for (const auto& [index, task] : tasks) {
      if (std::cmp_less(index, c.total) && std::cmp_greater_equal(index, c.started)) {
        c.started = static_cast<int32_t>(index) + 1;
      }
    }
    c.running = c.succeeded = c.failed = c.cancelled = 0;
    auto& views = children_[r.name];
    views.assign(static_cast<size_t>(c.started), std::nullopt);
    std::string& first_failure = first_failure_[r.name];
    for (size_t k = 0; k < views.size(); ++k) {
      const auto it = tasks.find(k);
      if (it == tasks.end()) {
        ++c.failed;
        if (first_failure.empty()) {
          first_failure = "item " + std::to_string(k) + ": its Task " +
                          FanOutTaskName(p_, r.name, k) +
                          " was deleted before it finished (TaskDeleted)";
        }
        continue;
      }
      TaskView v = ViewOf(*it->second);
      if (v.phase == "Succeeded") {
        ++c.succeeded;
      } else if (v.phase == "Failed") {
        ++c.failed;
        if (first_failure.empty()) first_failure = "item " + std::to_string(k) + ": " + v.message;
      } else if (v.phase == "Cancelled") {
        ++c.cancelled;
      } else {
        ++c.running;
      }
      views[k] = std::move(v);
    }
    if (!r.start_time) r.start_time = now_;
    r.message = "children: " + std::to_string(c.succeeded) + " succeeded, " +
                std::to_string(c.running) + " running, " + std::to_string(c.failed) +
                " failed of " + std::to_string(c.total);
  }

  // Ends a fan-out step whose children are all final: once every item has a child, or, when the
  // run is stopping (`stop` says why), with the items that never got one counted as cancelled.
  void Settle(const api::Step& step, const std::optional<std::string>& stop) {
    api::StepStatus& r = Rec(step.name);
    if (!r.children || r.phase != StepPhase::kRunning) return;
    api::FanOutStatus& c = *r.children;
    if (c.running > 0 || (c.started < c.total && !stop)) return;
    r.completion_time = ChildrenEnd(step.name, c).value_or(now_);
    if (c.succeeded == c.total) {
      std::map<std::string, std::string> results;
      const auto& views = children_[step.name];
      for (const auto& declared : step.task.results) {
        Json list = Json::array();
        for (const auto& v : views) {
          Json value = nullptr;
          if (v) {
            if (const auto it = v->results.find(declared.name); it != v->results.end()) {
              value = it->second;
            }
          }
          list.push_back(std::move(value));
        }
        results[declared.name] = list.dump();
      }
      r.message.reset();
      Succeed(r, results);
      return;
    }
    c.cancelled += c.total - c.started;
    if (c.failed > 0) {
      r.phase = StepPhase::kFailed;
      r.message = Truncate(std::to_string(c.failed) + " of " + std::to_string(c.total) +
                               " children failed; first: " + first_failure_[step.name],
                           kMaxMessage);
    } else {
      r.phase = StepPhase::kCancelled;
      r.message = Truncate("cancelled after " + std::to_string(c.succeeded) + " of " +
                               std::to_string(c.total) + " children succeeded" +
                               (stop ? ": " + *stop : std::string{}),
                           kMaxMessage);
    }
  }

  // When the last child of a fan-out step whose every item ran ended, if each child says when;
  // nullopt when an item never ran or a child was deleted (the step ends when it is settled).
  std::optional<api::Time> ChildrenEnd(const std::string& step, const api::FanOutStatus& c) {
    if (c.started < c.total) return std::nullopt;
    std::optional<api::Time> end;
    for (const auto& v : children_[step]) {
      if (!v || !v->completion_time) return std::nullopt;
      end = std::max(end.value_or(*v->completion_time), *v->completion_time);
    }
    return end;
  }

  // Records a step's success with its results, unless they would take the status's stored
  // results past api::kMaxStoredResults: then the step fails.
  void Succeed(api::StepStatus& r, std::map<std::string, std::string> results) {
    size_t stored = Bytes(results);
    for (const auto& other : status().steps) {
      if (other.name != r.name) stored += Bytes(other.results);
    }
    if (stored > api::kMaxStoredResults) {
      r.phase = StepPhase::kFailed;
      r.results.clear();
      r.message = "ResultsTooLarge: its results (" + std::to_string(Bytes(results)) +
                  " bytes) would take the pipeline's stored results past " +
                  std::to_string(api::kMaxStoredResults) +
                  " bytes; publish a reference (e.g. a URI) instead of the data";
      return;
    }
    r.phase = StepPhase::kSucceeded;
    r.results = std::move(results);
  }

  std::optional<std::string> FirstFailed() {
    for (const auto& step : p_.spec.steps) {
      const api::StepStatus& r = Rec(step.name);
      if (r.phase == StepPhase::kFailed) return step.name;
      if (r.phase == StepPhase::kRunning && r.children && r.children->failed > 0) return step.name;
    }
    return std::nullopt;
  }

  bool AllFinal(const std::vector<api::Step>& steps) {
    return std::ranges::all_of(steps, [&](const api::Step& s) { return Final(Rec(s.name).phase); });
  }
  bool RegularDone() { return AllFinal(p_.spec.steps); }
  bool FinallyDone() { return AllFinal(p_.spec.finally); }

  // When the last regular step ended: the latest completionTime of their records (every final
  // record has one; a step that never ran has the time it was skipped or cancelled). A record
  // without one (written before records had it) counts as ending now.
  api::Time RegularEnd() {
    api::Time end = status().start_time.value_or(now_);
    for (const auto& step : p_.spec.steps) {
      end = std::max(end, Rec(step.name).completion_time.value_or(now_));
    }
    return end;
  }

  // Stops the regular steps: running ones are cancelled, pending ones never start.
  void Stop(const std::string& why) {
    std::set<std::string> cancel_requested;
    for (const Json& t : observed_.tasks) {
      if (Sub(Sub(t, "spec"), "cancel") == Json(true)) {
        cancel_requested.insert(Str(Sub(t, "metadata"), "name"));
      }
    }
    for (const auto& step : p_.spec.steps) {
      api::StepStatus& r = Rec(step.name);
      if (r.phase == StepPhase::kPending) {
        r.phase = StepPhase::kCancelled;
        r.message = "not started: " + why;
        r.completion_time = now_;
      } else if (r.phase == StepPhase::kRunning && r.children) {
        for (const auto& v : children_[step.name]) {
          if (v && !v->cancel_requested && v->phase != "Succeeded" && v->phase != "Failed" &&
              v->phase != "Cancelled") {
            plan_.cancel.push_back(v->name);
          }
        }
        r.message = "cancelling: " + why;
      } else if ((r.phase == StepPhase::kRunning || r.phase == StepPhase::kReady) && r.task) {
        const bool requested = cancel_requested.contains(*r.task);
        if (!requested) plan_.cancel.push_back(*r.task);
        r.message = "cancelling: " + why;
      }
    }
  }

  // ---- model registration ----

  // Registers on the step's transition to Succeeded: the status that records the success is
  // written after the create, so a crash in between registers again (a no-op create) and a
  // recorded success never writes again.
  void Register() {
    std::set<std::string> recorded;
    for (const auto& r : old_.steps) {
      if (r.phase == StepPhase::kSucceeded) recorded.insert(r.name);
    }
    for (const auto* group : {&p_.spec.steps, &p_.spec.finally}) {
      for (const auto& step : *group) {
        if (!step.register_model || Rec(step.name).phase != StepPhase::kSucceeded ||
            recorded.contains(step.name)) {
          continue;
        }
        auto doc = templates::SubstituteJson(api::Encode(*step.register_model), Values(false));
        if (!doc) {
          plan_.events.push_back({"Warning", "RegisterFailed",
                                  "step " + step.name + ": registerModel: " + doc.error()});
          continue;
        }
        Json metrics = Json::object();
        std::string bad;
        const Json substituted_metrics = doc->value("metrics", Json::object());
        for (const auto& [name, value] : substituted_metrics.items()) {
          const auto n = value.is_string() ? Number(value.get<std::string>()) : std::nullopt;
          if (n) {
            metrics[name] = *n;
          } else {
            bad += (bad.empty() ? "" : ", ") + name;
          }
        }
        if (!bad.empty()) {
          plan_.events.push_back(
              {"Warning", "RegisterFailed",
               "step " + step.name + ": registerModel metrics are not numbers: " + bad});
          continue;
        }
        const std::string model = (*doc)["model"];
        const std::string version = (*doc)["version"];
        Json spec{
            {"model", model},
            {"version", version},
            {"artifact", {{"uri", (*doc)["artifactUri"]}, {"format", (*doc)["format"]}}},
            {"metrics", std::move(metrics)},
            {"stage", doc->value("stage", std::string("None"))},
            {"lineage",
             {{"pipeline", p_.metadata.name}, {"step", step.name}, {"image", step.task.image}}}};
        if (doc->contains("description")) spec["description"] = (*doc)["description"];
        plan_.register_models.push_back(Json{{"apiVersion", api::kApiVersion},
                                             {"kind", api::ModelVersion::kKind},
                                             {"metadata",
                                              {{"name", api::ModelVersionName(model, version)},
                                               {"namespace", p_.metadata.namespace_},
                                               {"labels",
                                                {{kManagedByLabel, kManagedByValue},
                                                 {kPipelineLabel, Shorten(p_.metadata.name, 63)},
                                                 {kStepLabel, step.name}}}}},
                                             {"spec", std::move(spec)}});
      }
    }
  }

  // ---- scheduling ----

  templates::Values Values(bool finally) {
    templates::Values v;
    for (const auto& param : p_.spec.params) {
      if (auto value = api::Effective(param)) v[templates::ParamKey(param.name)] = *value;
    }
    v[templates::PipelineKey("name")] = p_.metadata.name;
    v[templates::PipelineKey("namespace")] = p_.metadata.namespace_;
    v[templates::PipelineKey("uid")] = p_.metadata.uid;
    for (const auto& r : status().steps) {
      if (r.phase == StepPhase::kSucceeded) {
        for (const auto& [k, value] : r.results) v[templates::ResultKey(r.name, k)] = value;
      }
      if (finally && r.phase) v[templates::PhaseKey(r.name)] = api::ToString(*r.phase);
    }
    if (finally && outcome_) v[templates::PipelineKey("phase")] = api::ToString(*outcome_);
    return v;
  }

  void Schedule(const std::vector<api::Step>& steps, bool finally) {
    if (steps.empty()) return;
    const api::dag::StepGraph sg = api::dag::BuildStepGraph(steps);
    const auto& graph = sg.graph;
    for (bool again = true; again;) {
      again = false;
      std::vector<api::dag::NodeState> states(steps.size());
      size_t running = RunningTasks();
      for (size_t i = 0; i < steps.size(); ++i) {
        const auto phase = Rec(steps[i].name).phase;
        states[i] = [&] {
          using enum api::dag::NodeState;
          if (phase == StepPhase::kPending) return kPending;
          if (phase == StepPhase::kRunning) return kRunning;
          if (phase == StepPhase::kFailed || phase == StepPhase::kCancelled) return kFailed;
          return kDone;
        }();
      }
      const std::vector<size_t> unreachable = api::dag::Unreachable(graph, states);
      const std::set<size_t> blocked(unreachable.begin(), unreachable.end());
      for (const size_t u : unreachable) {
        std::string blocker;  // a dependency that failed, or is itself blocked
        for (const size_t d : graph.deps[u]) {
          if (states[d] == api::dag::NodeState::kFailed || blocked.contains(d)) {
            blocker = steps[d].name;
          }
        }
        api::StepStatus& r = Rec(steps[u].name);
        r.phase = StepPhase::kCancelled;
        r.message = blocker.empty() ? "not run: a dependency failed"
                                    : "not run: step " + blocker + " did not succeed";
        r.completion_time = now_;
        again = true;
      }
      if (again) continue;
      const templates::Values values = Values(finally);
      // Fan-out steps that started go on first: what started finishes before more starts.
      for (const auto& step : steps) {
        api::StepStatus& r = Rec(step.name);
        if (r.phase == StepPhase::kRunning && r.children) {
          if (auto refused = Advance(step, values, running)) {
            Fail(r, refused->reason, refused->message);
            again = true;
          }
        }
      }
      for (const size_t n : api::dag::ReadySet(graph, states)) {
        if (!Room(running)) break;
        switch (Start(steps[n], values, running)) {
          case StartResult::kStarted:
            break;
          case StartResult::kSkipped:
          case StartResult::kFailed:
          case StartResult::kFinished:
            again = true;  // its dependants may be ready, or unreachable, now
            break;
        }
      }
    }
  }

  // Child Tasks running: one per running step, or its running children for a fan-out step.
  size_t RunningTasks() {
    size_t n = 0;
    for (const auto& r : status().steps) {
      if (r.phase != StepPhase::kRunning) continue;
      n += r.children ? static_cast<size_t>(r.children->running) : 1;
    }
    return n;
  }

  // Whether the pipeline's parallelism allows one more child Task.
  bool Room(size_t running) const {
    return !p_.spec.parallelism || running < static_cast<size_t>(*p_.spec.parallelism);
  }

  // A fan-out step's items, each as its values; a refusal when withParam is not a JSON list of
  // at most api::kMaxFanOut items.
  static std::expected<std::vector<templates::Values>, Refusal> Items(
      const api::Step& step, const templates::Values& values) {
    std::vector<templates::Values> items;
    switch (api::FanOutOf(step)) {
      case api::FanOut::kNone:
        break;
      case api::FanOut::kItems:
        for (const auto& item : step.with_items) items.push_back(ItemValues(Json(item)));
        break;
      case api::FanOut::kMatrix: {
        size_t total = 1;
        for (const auto& m : step.matrix) total *= m.values.size();
        for (size_t k = 0; k < total; ++k) {
          templates::Values v;
          size_t rest = k;  // the last list varies fastest
          for (const auto& m : std::views::reverse(step.matrix)) {
            v[templates::ItemKey(m.name)] = m.values[rest % m.values.size()];
            rest /= m.values.size();
          }
          items.push_back(std::move(v));
        }
        break;
      }
      case api::FanOut::kParam: {
        auto text = templates::Substitute(step.with_param.value_or(""), values);
        if (!text)
          return std::unexpected(Refusal{"InvalidReference", "withParam: " + text.error()});
        const Json list = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
        if (!list.is_array()) {
          return std::unexpected(
              Refusal{"InvalidWithParam", "withParam is not a JSON list: " + Truncate(*text, 200)});
        }
        if (list.size() > api::kMaxFanOut) {
          return std::unexpected(
              Refusal{"FanOutTooLarge", "withParam has " + std::to_string(list.size()) +
                                            " items; a step fans out to at most " +
                                            std::to_string(api::kMaxFanOut)});
        }
        for (const Json& item : list) items.push_back(ItemValues(item));
        break;
      }
    }
    return items;
  }

  // Creates the next children of a started fan-out step, in item order, as its parallelism and
  // the pipeline's allow; a refusal if a child's spec does not build (it was checked when the
  // step started, so only a spec that changed since could).
  std::optional<Refusal> Advance(const api::Step& step, const templates::Values& values,
                                 size_t& running) {
    api::StepStatus& r = Rec(step.name);
    if (!r.children) return std::nullopt;
    api::FanOutStatus& c = *r.children;
    const auto step_limit = step.parallelism;
    const auto room = [&] {
      return c.started < c.total && Room(running) && (!step_limit || c.running < *step_limit);
    };
    if (!room()) return std::nullopt;
    auto items = Items(step, values);
    if (!items) return items.error();
    if (items->size() != static_cast<size_t>(c.total)) {
      return Refusal{"InvalidWithParam", "its items changed after the step started"};
    }
    const Json doc = StepDoc(step);
    while (room()) {
      const auto index = static_cast<size_t>(c.started);
      auto child = ChildTask(step, doc, values, (*items)[index], index);
      if (!child) return child.error();
      plan_.create.push_back(std::move(*child));
      ++c.started;
      ++c.running;
      ++running;
    }
    return std::nullopt;
  }

  StartResult Skip(api::StepStatus& r, std::string why) {
    r.phase = StepPhase::kSkipped;
    r.message = Truncate(std::move(why), kMaxMessage);
    r.completion_time = now_;
    return StartResult::kSkipped;
  }
  StartResult Fail(api::StepStatus& r, const std::string& reason, const std::string& why) {
    r.phase = StepPhase::kFailed;
    r.message = Truncate(reason + ": " + why, kMaxMessage);
    r.completion_time = now_;
    return StartResult::kFailed;
  }

  // Whether `when` holds; an error for an ordering comparison of a non-number.
  static std::expected<bool, std::string> Holds(const std::string& input, api::Operator op,
                                                const std::vector<std::string>& values) {
    using api::Operator;
    if (op == Operator::kIn || op == Operator::kNotIn) {
      const bool in = std::ranges::find(values, input) != values.end();
      return op == Operator::kIn ? in : !in;
    }
    if (values.size() != 1) return std::unexpected("takes exactly one value");
    const auto l = Number(input);
    const auto r = Number(values[0]);
    if (l && r) return api::Compare(*l, op, *r);
    if (op == Operator::kEq) return input == values[0];
    if (op == Operator::kNe) return input != values[0];
    return std::unexpected("\"" + (l ? values[0] : input) + "\" is not a number");
  }

  // The step's strings substituted per child: its task and metadata.
  static Json StepDoc(const api::Step& step) {
    Json doc{{"task", api::Encode(step.task)}};
    if (step.metadata) {
      doc["labels"] = step.metadata->labels;
      doc["annotations"] = step.metadata->annotations;
    }
    return doc;
  }

  // The child Task of `step` (of its item `index` when it fans out, with the item's values),
  // from StepDoc(step).
  std::expected<Json, Refusal> ChildTask(const api::Step& step, const Json& doc,
                                         const templates::Values& values,
                                         const templates::Values& item,
                                         std::optional<size_t> index) {
    const std::string where = index ? "item " + std::to_string(*index) + ": " : "";
    std::expected<Json, std::string> substituted;
    if (item.empty()) {
      substituted = templates::SubstituteJson(doc, values);
    } else {
      templates::Values all = item;
      all.insert(values.begin(), values.end());
      substituted = templates::SubstituteJson(doc, all);
    }
    if (!substituted)
      return std::unexpected(Refusal{"InvalidReference", where + substituted.error()});
    const Json& d = *substituted;
    auto spec = api::TaskSpecFromJson(d["task"], "spec.steps[" + step.name + "].task");
    if (!spec) return std::unexpected(Refusal{"InvalidTask", where + api::ToString(spec.error())});

    Json labels = Json::object();
    if (d.contains("labels")) labels = d["labels"];
    labels[kManagedByLabel] = kManagedByValue;
    labels[kPipelineLabel] = Shorten(p_.metadata.name, 63);
    labels[kStepLabel] = step.name;
    if (index) labels[kItemLabel] = std::to_string(*index);
    Json meta{{"name", index ? FanOutTaskName(p_, step.name, *index) : StepTaskName(p_, step.name)},
              {"namespace", p_.metadata.namespace_},
              {"labels", std::move(labels)},
              {"ownerReferences",
               Json::array({api::ControllerReference(api::kApiVersion, api::Pipeline::kKind,
                                                     p_.metadata.name, p_.metadata.uid)})}};
    if (d.contains("annotations") && !d["annotations"].empty()) {
      meta["annotations"] = d["annotations"];
    }
    return Json{{"apiVersion", api::kApiVersion},
                {"kind", api::Task::kKind},
                {"metadata", std::move(meta)},
                {"spec", d["task"]}};
  }

  StartResult Start(const api::Step& step, const templates::Values& values, size_t& running) {
    api::StepStatus& r = Rec(step.name);
    const Json doc = StepDoc(step);
    // The strings evaluated once for the whole step: when and withParam.
    Json when = Json::array();
    for (const auto& w : step.when) when.push_back({{"input", w.input}, {"values", w.values}});
    const Json once{{"when", when}, {"withParam", step.with_param.value_or("")}};
    // A result of a step that did not succeed does not exist: the step is skipped.
    std::optional<std::string> skip;
    std::optional<std::string> missing;
    templates::ForEachString(
        Json{{"doc", doc}, {"once", once}}, "", [&](const std::string&, const std::string& text) {
          auto refs = templates::FindReferences(text);
          if (!refs) return;
          for (const auto& ref : *refs) {
            if (ref.kind != templates::RefKind::kStepResult || !index_.contains(ref.name)) continue;
            const api::StepStatus& dep = Rec(ref.name);
            if (dep.phase != StepPhase::kSucceeded) {
              if (!skip)
                skip = "step " + ref.name + " did not succeed, so result " + ref.field +
                       " does not exist";
            } else if (!dep.results.contains(ref.field) && !missing) {
              missing = "step " + ref.name + " succeeded without publishing result " + ref.field;
            }
          }
        });
    if (skip) return Skip(r, *skip);
    if (missing) return Fail(r, "MissingResult", *missing);

    auto substituted = templates::SubstituteJson(when, values);
    if (!substituted) return Fail(r, "InvalidReference", substituted.error());
    for (size_t i = 0; i < step.when.size(); ++i) {
      const Json& w = (*substituted)[i];
      const std::string input = w["input"];
      const auto vals = w["values"].get<std::vector<std::string>>();
      auto holds = Holds(input, step.when[i].operator_, vals);
      if (!holds)
        return Fail(r, "InvalidWhen", "when[" + std::to_string(i) + "]: " + holds.error());
      if (!*holds) {
        std::string list;
        for (const auto& v : vals) list.append(list.empty() ? "" : ", ").append(v);
        std::string why = "when is false: " + input;
        why.append(" ").append(api::ToString(step.when[i].operator_)).append(" [");
        return Skip(r, why.append(list).append("]"));
      }
    }

    if (!IsFanOut(step)) {
      auto child = ChildTask(step, doc, values, {}, std::nullopt);
      if (!child) return Fail(r, child.error().reason, child.error().message);
      plan_.create.push_back(std::move(*child));
      r.phase = StepPhase::kRunning;
      r.task = StepTaskName(p_, step.name);
      r.start_time = now_;
      r.message.reset();
      ++running;
      return StartResult::kStarted;
    }
    // A fan-out: every child's spec is checked now, so a bad item fails the step before any
    // child runs.
    auto items = Items(step, values);
    if (!items) return Fail(r, items.error().reason, items.error().message);
    for (size_t k = 0; k < items->size(); ++k) {
      auto child = ChildTask(step, doc, values, (*items)[k], k);
      if (!child) return Fail(r, child.error().reason, child.error().message);
    }
    r.phase = StepPhase::kRunning;
    r.task.reset();
    r.start_time = now_;
    r.message.reset();
    r.children = api::FanOutStatus{.total = static_cast<int32_t>(items->size()),
                                   .started = 0,
                                   .running = 0,
                                   .succeeded = 0,
                                   .failed = 0,
                                   .cancelled = 0};
    // Children a reconcile made before its status write was lost.
    ObserveFanOut(r, by_item_[step.name]);
    running += static_cast<size_t>(r.children->running);
    Settle(step, std::nullopt);
    if (Final(r.phase)) return StartResult::kFinished;
    if (auto refused = Advance(step, values, running)) {
      return Fail(r, refused->reason, refused->message);
    }
    return StartResult::kStarted;
  }

  // ---- events: one per transition ----

  static int32_t FailedChildren(const api::StepStatus& r) {
    return r.children ? r.children->failed : 0;
  }

  void Events() {
    std::map<std::string, const api::StepStatus*> before;
    for (const auto& r : old_.steps) before[r.name] = &r;
    for (const auto& r : status().steps) {
      const auto it = before.find(r.name);
      const bool known = it != before.end();
      const bool same_phase = known ? r.phase == it->second->phase : !r.phase.has_value();
      const int32_t failed_before = known ? FailedChildren(*it->second) : 0;
      if (r.children && r.children->failed > failed_before && r.phase == StepPhase::kRunning) {
        plan_.events.push_back(
            {"Warning", "StepChildFailed",
             Truncate("step " + r.name + ": " + std::to_string(r.children->failed) + " of " +
                          std::to_string(r.children->total) +
                          " children failed; first: " + first_failure_[r.name],
                      kMaxMessage)});
      }
      if (same_phase || !r.phase) continue;
      const std::string msg = r.message ? ": " + *r.message : "";
      switch (*r.phase) {
        case StepPhase::kRunning:
          plan_.events.push_back(
              {"Normal", "StepStarted",
               r.children ? "step " + r.name + ": fanning out to " +
                                std::to_string(r.children->total) + " child Tasks"
                          : "step " + r.name + ": created Task " + r.task.value_or("")});
          break;
        case StepPhase::kReady:
          plan_.events.push_back({"Normal", "StepReady", "step " + r.name + " is Ready"});
          break;
        case StepPhase::kSucceeded:
          plan_.events.push_back({"Normal", "StepSucceeded", "step " + r.name + " succeeded"});
          break;
        case StepPhase::kFailed:
          plan_.events.push_back({"Warning", "StepFailed", "step " + r.name + " failed" + msg});
          break;
        case StepPhase::kSkipped:
          plan_.events.push_back({"Normal", "StepSkipped", "step " + r.name + " skipped" + msg});
          break;
        case StepPhase::kCancelled:
          plan_.events.push_back({"Normal", "StepCancelled", "step " + r.name + msg});
          break;
        case StepPhase::kPending:
          break;
      }
    }
    const auto& phase = status().phase;
    if (phase == old_.phase || !phase) return;
    const api::Condition* c = api::FindCondition(status().conditions, kPipelineConditionSucceeded);
    const std::string message = c != nullptr ? c->message : std::string{};
    // Entering Running is "Started"; Suspended, Succeeded, Failed and Cancelled are events of
    // their own name with the Succeeded condition's message; Pending has none.
    if (*phase == PipelinePhase::kPending) return;
    if (*phase == PipelinePhase::kRunning) {
      plan_.events.push_back({"Normal", "Started", "the pipeline started"});
      return;
    }
    plan_.events.push_back({*phase == PipelinePhase::kFailed ? "Warning" : "Normal",
                            std::string(api::ToString(*phase)), message});
  }

  const api::Pipeline& p_;
  const ObservedPipeline& observed_;
  api::Time now_;
  PipelinePlan plan_;
  api::PipelineStatus old_;
  std::map<std::string, size_t> index_;
  std::map<std::string, const api::Step*> spec_;
  // Fan-out steps' observed child Tasks by item index; their children by item (nullopt: not
  // found), and their first failure.
  std::map<std::string, std::map<size_t, const Json*>> by_item_;
  std::map<std::string, std::vector<std::optional<TaskView>>> children_;
  std::map<std::string, std::string> first_failure_;
  std::optional<PipelinePhase> outcome_;
};

}  // namespace

std::string StepTaskName(const api::Pipeline& pipeline, std::string_view step) {
  return ChildName(pipeline.metadata.name, step);
}

std::string FanOutTaskName(const api::Pipeline& pipeline, std::string_view step, size_t index) {
  return ChildName(pipeline.metadata.name, std::string(step) + "-" + std::to_string(index));
}

PipelinePlan PlanPipeline(const api::Pipeline& pipeline, const ObservedPipeline& observed,
                          api::Time now) {
  return Planner(pipeline, observed, now).Run();
}

Json PipelineStatusPatch(const api::Pipeline& pipeline, const api::PipelineStatus& status) {
  return StatusPatchFor(pipeline, status);
}

}  // namespace millrace::reconcilers
