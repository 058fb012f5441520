#include "reconcilers/pipeline.h"

#include <algorithm>
#include <charconv>
#include <map>
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
};

TaskView ViewOf(const Json& task) {
  TaskView v;
  v.name = Str(Sub(task, "metadata"), "name");
  const Json& status = Sub(task, "status");
  v.phase = Str(status, "phase");
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

enum class StartResult { kStarted, kSkipped, kFailed };

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
    bool deadline_passed = false;
    if (p_.spec.timeout) {
      const auto deadline =
          DeadlineAfter(status().start_time.value_or(now_), p_.spec.timeout->value);
      deadline_passed = now_ >= deadline;
      if (!deadline_passed && !RegularDone()) RequeueWithin(plan_.requeue_after, deadline - now_);
    }
    const std::optional<std::string> failed = FirstFailed();
    const bool fail_fast = p_.spec.fail_fast.value_or(false) && failed;
    if (cancelled) {
      Stop("the pipeline was cancelled");
    } else if (deadline_passed) {
      Stop("the pipeline passed its timeout of " + p_.spec.timeout->text);
    } else if (fail_fast) {
      Stop("failFast: step " + *failed + " failed");
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
      } else if (deadline_passed) {
        outcome = PipelinePhase::kFailed;
        reason = "DeadlineExceeded";
        message = "the pipeline did not finish within its timeout of " + p_.spec.timeout->text;
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
      if (r.phase == StepPhase::kRunning) running.push_back(r.name);
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
        status().steps.push_back(std::move(r));
      }
    }
  }

  api::StepStatus& Rec(const std::string& name) { return status().steps.at(index_.at(name)); }

  void Observe() {
    std::map<std::string, const Json*> by_step;
    for (const Json& t : observed_.tasks) {
      const std::string step = Str(Sub(Sub(t, "metadata"), "labels"), kStepLabel);
      if (!step.empty() && index_.contains(step) &&
          Str(Sub(t, "metadata"), "name") == StepTaskName(p_, step)) {
        by_step[step] = &t;
      }
    }
    for (auto& r : status().steps) {
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
        r.phase = StepPhase::kSucceeded;
        r.results = v.results;
        r.completion_time = v.completion_time.value_or(now_);
        r.message.reset();
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

  std::optional<std::string> FirstFailed() {
    for (const auto& step : p_.spec.steps) {
      if (Rec(step.name).phase == StepPhase::kFailed) return step.name;
    }
    return std::nullopt;
  }

  bool AllFinal(const std::vector<api::Step>& steps) {
    return std::ranges::all_of(steps, [&](const api::Step& s) { return Final(Rec(s.name).phase); });
  }
  bool RegularDone() { return AllFinal(p_.spec.steps); }
  bool FinallyDone() { return AllFinal(p_.spec.finally); }

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
    const auto limit = p_.spec.parallelism;
    for (bool again = true; again;) {
      again = false;
      std::vector<api::dag::NodeState> states(steps.size());
      size_t running = 0;
      for (size_t i = 0; i < steps.size(); ++i) {
        const auto phase = Rec(steps[i].name).phase;
        if (phase == StepPhase::kRunning) ++running;
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
        again = true;
      }
      if (again) continue;
      const templates::Values values = Values(finally);
      for (const size_t n : api::dag::ReadySet(graph, states)) {
        if (limit && running >= static_cast<size_t>(*limit)) break;
        switch (Start(steps[n], values)) {
          case StartResult::kStarted:
            ++running;
            break;
          case StartResult::kSkipped:
          case StartResult::kFailed:
            again = true;  // its dependants may be ready, or unreachable, now
            break;
        }
      }
    }
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

  StartResult Start(const api::Step& step, const templates::Values& values) {
    api::StepStatus& r = Rec(step.name);
    // Every string the step substitutes into: its task, when and metadata.
    Json doc{{"task", api::Encode(step.task)}};
    Json when = Json::array();
    for (const auto& w : step.when) when.push_back({{"input", w.input}, {"values", w.values}});
    doc["when"] = when;
    if (step.metadata) {
      doc["labels"] = step.metadata->labels;
      doc["annotations"] = step.metadata->annotations;
    }
    // A result of a step that did not succeed does not exist: the step is skipped.
    std::optional<std::string> skip;
    std::optional<std::string> missing;
    templates::ForEachString(doc, "", [&](const std::string&, const std::string& text) {
      auto refs = templates::FindReferences(text);
      if (!refs) return;
      for (const auto& ref : *refs) {
        if (ref.kind != templates::RefKind::kStepResult || !index_.contains(ref.name)) continue;
        const api::StepStatus& dep = Rec(ref.name);
        if (dep.phase != StepPhase::kSucceeded) {
          if (!skip)
            skip =
                "step " + ref.name + " did not succeed, so result " + ref.field + " does not exist";
        } else if (!dep.results.contains(ref.field) && !missing) {
          missing = "step " + ref.name + " succeeded without publishing result " + ref.field;
        }
      }
    });
    if (skip) return Skip(r, *skip);
    if (missing) return Fail(r, "MissingResult", *missing);

    auto substituted = templates::SubstituteJson(doc, values);
    if (!substituted) return Fail(r, "InvalidReference", substituted.error());
    const Json& d = *substituted;
    for (size_t i = 0; i < step.when.size(); ++i) {
      const std::string input = d["when"][i]["input"];
      const auto vals = d["when"][i]["values"].get<std::vector<std::string>>();
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
    auto spec = api::TaskSpecFromJson(d["task"], "spec.steps[" + step.name + "].task");
    if (!spec) return Fail(r, "InvalidTask", api::ToString(spec.error()));

    const std::string name = StepTaskName(p_, step.name);
    Json labels = Json::object();
    if (d.contains("labels")) labels = d["labels"];
    labels[kManagedByLabel] = kManagedByValue;
    labels[kPipelineLabel] = Shorten(p_.metadata.name, 63);
    labels[kStepLabel] = step.name;
    Json meta{{"name", name},
              {"namespace", p_.metadata.namespace_},
              {"labels", std::move(labels)},
              {"ownerReferences",
               Json::array({api::ControllerReference(api::kApiVersion, api::Pipeline::kKind,
                                                     p_.metadata.name, p_.metadata.uid)})}};
    if (d.contains("annotations") && !d["annotations"].empty()) {
      meta["annotations"] = d["annotations"];
    }
    plan_.create.push_back(Json{{"apiVersion", api::kApiVersion},
                                {"kind", api::Task::kKind},
                                {"metadata", std::move(meta)},
                                {"spec", d["task"]}});
    r.phase = StepPhase::kRunning;
    r.task = name;
    r.start_time = now_;
    r.message.reset();
    return StartResult::kStarted;
  }

  // ---- events: one per transition ----

  void Events() {
    std::map<std::string, const api::StepStatus*> before;
    for (const auto& r : old_.steps) before[r.name] = &r;
    for (const auto& r : status().steps) {
      const auto it = before.find(r.name);
      const auto old_phase = it == before.end() ? std::nullopt : it->second->phase;
      if (r.phase == old_phase || !r.phase) continue;
      const std::string msg = r.message ? ": " + *r.message : "";
      switch (*r.phase) {
        case StepPhase::kRunning:
          plan_.events.push_back({"Normal", "StepStarted",
                                  "step " + r.name + ": created Task " + r.task.value_or("")});
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
  std::optional<PipelinePhase> outcome_;
};

}  // namespace

std::string StepTaskName(const api::Pipeline& pipeline, std::string_view step) {
  return ChildName(pipeline.metadata.name, step);
}

PipelinePlan PlanPipeline(const api::Pipeline& pipeline, const ObservedPipeline& observed,
                          api::Time now) {
  return Planner(pipeline, observed, now).Run();
}

Json PipelineStatusPatch(const api::Pipeline& pipeline, const api::PipelineStatus& status) {
  return StatusPatchFor(pipeline, status);
}

}  // namespace millrace::reconcilers
