#include "reconcilers/model_version.h"

#include <algorithm>
#include <utility>

#include "crds/meta.h"
#include "crds/validation.h"
#include "reconcilers/object.h"

namespace millrace::reconcilers {
namespace {

using api::Json;
using api::Stage;
using std::chrono::seconds;

constexpr size_t kMaxTransitions = 10;
constexpr int32_t kDefaultPort = 8080;
constexpr seconds kDefaultRolloutDeadline{600};
// How long a promotion's claim stands at least before traffic moves (2 to 3 s: DeadlineAfter).
constexpr seconds kClaimHold{2};

int32_t PortOf(const api::ModelVersion& mv) {
  return mv.spec.serving ? mv.spec.serving->port.value_or(kDefaultPort) : kDefaultPort;
}

Json Selector(const api::ModelVersion& mv) {
  return Json{{kModelLabel, Shorten(mv.spec.model, 63)}, {kModelVersionLabel, mv.spec.version}};
}

Json Meta(const api::ModelVersion& mv, const std::string& name) {
  Json labels = Selector(mv);
  labels[kManagedByLabel] = kManagedByValue;
  return Json{{"name", name},
              {"namespace", mv.metadata.namespace_},
              {"labels", std::move(labels)},
              {"ownerReferences",
               Json::array({api::ControllerReference(api::kApiVersion, api::ModelVersion::kKind,
                                                     mv.metadata.name, mv.metadata.uid)})}};
}

bool Served(Stage stage) { return stage == Stage::kStaging || stage == Stage::kProduction; }

}  // namespace

std::vector<Json> ModelServingChildren(const api::ModelVersion& mv) {
  std::vector<Json> children;
  if (!mv.spec.serving) return children;
  const api::Serving& s = *mv.spec.serving;
  const std::string& name = mv.metadata.name;
  Json env = Json::array({
      {{"name", "MILLRACE_MODEL_NAME"}, {"value", mv.spec.model}},
      {{"name", "MILLRACE_MODEL_VERSION"}, {"value", mv.spec.version}},
      {{"name", "MILLRACE_MODEL_URI"}, {"value", mv.spec.artifact.uri}},
      {{"name", "MILLRACE_MODEL_FORMAT"}, {"value", api::ToString(mv.spec.artifact.format)}},
  });
  for (const auto& e : s.env) env.push_back(api::Encode(e));
  Json container{{"name", "main"},
                 {"image", s.image},
                 {"env", std::move(env)},
                 {"ports", Json::array({{{"name", "http"}, {"containerPort", PortOf(mv)}}})}};
  if (!s.command.empty()) container["command"] = s.command;
  if (!s.args.empty()) container["args"] = s.args;
  if (s.resources) {
    Json r = api::Encode(*s.resources);
    if (!r.empty()) container["resources"] = std::move(r);
  }
  Json pod_labels = Selector(mv);
  pod_labels[kManagedByLabel] = kManagedByValue;
  Json spec{{"selector", {{"matchLabels", Selector(mv)}}},
            {"template",
             {{"metadata", {{"labels", std::move(pod_labels)}}},
              {"spec", {{"containers", Json::array({std::move(container)})}}}}}};
  if (!s.autoscaling) spec["replicas"] = s.replicas.value_or(1);
  children.push_back(Json{{"apiVersion", "apps/v1"},
                          {"kind", "Deployment"},
                          {"metadata", Meta(mv, name)},
                          {"spec", std::move(spec)}});
  children.push_back(Json{
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", Meta(mv, name)},
      {"spec",
       {{"selector", Selector(mv)},
        {"ports",
         Json::array({{{"name", "http"}, {"port", PortOf(mv)}, {"targetPort", PortOf(mv)}}})}}}});
  if (s.autoscaling) {
    children.push_back(HorizontalPodAutoscalerFor(Meta(mv, name), name, *s.autoscaling));
  }
  return children;
}

namespace {

class Planner {
 public:
  Planner(const api::ModelVersion& mv, const ObservedModelVersion& observed, api::Time now)
      : mv_(mv), observed_(observed), now_(now) {
    plan_.status = mv.status.value_or(api::ModelVersionStatus{});
    plan_.status.observed_generation = mv.metadata.generation;
    old_ = plan_.status;
  }

  ModelVersionPlan Run() {
    const Stage requested = mv_.spec.stage.value_or(Stage::kNone);
    const Stage current = status().stage.value_or(Stage::kNone);
    const std::string holder = HolderVersion();
    const bool holds = holder == mv_.spec.version;

    if (current == Stage::kProduction && !holder.empty() && !holds) {
      // Another version's promotion took the stable Service: this one leaves Production (its
      // spec too, if that promotion's archive patch has not landed, so it never promotes itself
      // back).
      Transition(Stage::kArchived, "superseded: version " + holder + " was promoted");
      if (requested != Stage::kArchived) plan_.archive = mv_.metadata.name;
      api::SetCondition(status().conditions,
                        Condition(kConditionPromoted, api::ConditionStatus::kFalse, "Superseded",
                                  "version " + holder + " serves production traffic now"));
    } else if (requested == Stage::kProduction && current != Stage::kProduction) {
      Promote(current, holder);
    } else if (requested != current) {
      Transition(requested, "spec.stage is " + std::string(api::ToString(requested)));
      api::SetCondition(status().conditions,
                        Condition(kConditionPromoted, api::ConditionStatus::kFalse, "NotRequested",
                                  "spec.stage is not Production"));
    }
    if (!status().stage) status().stage = current;
    const Stage effective = status().stage.value_or(Stage::kNone);
    // No traffic to a version that no longer wants Production. One that holds the Service while
    // it finishes its promotion keeps it.
    if (holds && requested != Stage::kProduction && effective != Stage::kProduction) {
      plan_.remove_stable_service = true;
    }
    // A promotion in progress also serves the candidate, so it can become Ready first.
    const bool promoting = requested == Stage::kProduction && effective != Stage::kProduction &&
                           FailedGatesMessage().empty() && !Refused();
    Serving(Served(effective) || promoting);
    Summary(effective);
    Events();
    return std::move(plan_);
  }

 private:
  api::ModelVersionStatus& status() { return plan_.status; }

  api::Condition Condition(std::string_view type, api::ConditionStatus s, std::string reason,
                           std::string message) const {
    return MakeCondition(type, s, std::move(reason), std::move(message), mv_.metadata.generation,
                         now_);
  }

  // The version the stable Service sends traffic to ("" when there is none).
  std::string HolderVersion() const {
    if (!observed_.stable_service) return {};
    return Str(Sub(Sub(*observed_.stable_service, "metadata"), "annotations"),
               kProductionVersionAnnotation);
  }

  std::string FailedGatesMessage() const {
    std::string out;
    for (const auto& g : api::FailedGates(mv_.spec)) out += (out.empty() ? "" : "; ") + g;
    return out;
  }

  // The Promoted condition's reason if it was set for this generation, else "".
  static std::string PromotedReason(const api::ModelVersion& v,
                                    const std::vector<api::Condition>& conditions) {
    const api::Condition* c = api::FindCondition(conditions, kConditionPromoted);
    return c != nullptr && c->observed_generation == v.metadata.generation ? c->reason : "";
  }

  // A promotion refused for this generation (its rollout timed out, or another version's
  // promotion was under way) is not retried until the spec changes.
  bool Refused() const {
    const std::string reason = PromotedReason(mv_, old_.conditions);
    return reason == "RolloutTimeout" || reason == "Superseded";
  }

  static bool Claims(const api::ModelVersion& v, const std::vector<api::Condition>& conditions) {
    const std::string reason = PromotedReason(v, conditions);
    return reason == "RollingOut" || reason == "ArchivingPrevious";
  }

  // The version of another of this model's versions whose promotion is under way (it claimed
  // the model's one promotion slot and has not finished), if any.
  std::optional<std::string> OtherClaim() const {
    for (const auto& other : observed_.siblings) {
      if (other.metadata.deletion_timestamp || other.spec.stage != Stage::kProduction ||
          !other.status || other.status->stage == Stage::kProduction) {
        continue;
      }
      if (Claims(other, other.status->conditions)) return other.spec.version;
    }
    return std::nullopt;
  }

  // Another of this model's versions whose status still says Production, if any. One being
  // deleted is not waited for: it never writes its status again, and its serving goes with it.
  const api::ModelVersion* OtherInProduction() const {
    for (const auto& other : observed_.siblings) {
      if (!other.metadata.deletion_timestamp && other.status &&
          other.status->stage == Stage::kProduction) {
        return &other;
      }
    }
    return nullptr;
  }

  bool ServingReady() const {
    if (!mv_.spec.serving) return true;
    if (!observed_.deployment) return false;
    // Every wanted replica runs the current spec: readyReplicas alone counts old pods too.
    return RolloutOf(*observed_.deployment).Complete();
  }

  void Transition(Stage to, const std::string& reason) {
    const Stage from = status().stage.value_or(Stage::kNone);
    if (from == to && status().stage) return;
    status().stage = to;
    status().stage_transitions.push_back(
        api::StageTransition{.stage = to, .time = now_, .reason = reason});
    if (status().stage_transitions.size() > kMaxTransitions) {
      status().stage_transitions.erase(status().stage_transitions.begin());
    }
    plan_.events.push_back({"Normal", "StageChanged",
                            std::string(api::ToString(from)) + " -> " +
                                std::string(api::ToString(to)) + ": " + reason});
  }

  // One promotion of a model at a time. A version claims the model's promotion (Promoted
  // RollingOut) in one reconcile and switches traffic in a later one, so versions asking at the
  // same time find the claim and are refused; the stable Service is switched with the
  // resourceVersion it was read at; this version says Production only once no other version does.
  void Promote(Stage current, const std::string& holder) {
    using enum api::ConditionStatus;
    if (!status().stage) status().stage = current;
    if (const std::string failed = FailedGatesMessage(); !failed.empty()) {
      api::SetCondition(
          status().conditions,
          Condition(kConditionPromoted, kFalse, "GateFailed",
                    "held in " + std::string(api::ToString(current)) + ": gate failed: " + failed));
      return;
    }
    if (holder == mv_.spec.version) {  // traffic has moved: finish
      Complete();
      return;
    }
    if (Refused()) return;
    if (const auto other = OtherClaim()) {
      api::SetCondition(status().conditions,
                        Condition(kConditionPromoted, kFalse, "Superseded",
                                  "version " + *other +
                                      " is being promoted; to promote this version after it, set "
                                      "spec.stage to Staging and then to Production again"));
      return;
    }
    if (!Claims(mv_, old_.conditions)) {
      api::SetCondition(
          status().conditions,
          Condition(kConditionPromoted, kUnknown, "RollingOut",
                    "promoting: this version claimed the model's promotion; traffic moves once "
                    "its replicas are ready"));
      plan_.requeue_after = std::chrono::seconds{0};  // look again as soon as the claim is written
      return;
    }
    const api::Condition* c = api::FindCondition(status().conditions, kConditionPromoted);
    if (!ServingReady()) {
      const auto deadline = DeadlineAfter(c->last_transition_time, RolloutDeadline());
      if (now_ >= deadline) {
        api::SetCondition(
            status().conditions,
            Condition(kConditionPromoted, kFalse, "RolloutTimeout",
                      "the serving rollout was not ready within serving.rolloutDeadline; traffic "
                      "stays on " +
                          (holder.empty() ? std::string("no version") : "version " + holder)));
      } else {
        RequeueWithin(plan_.requeue_after, deadline - now_);
      }
      return;
    }
    // The claim stands a moment before traffic moves, so versions asked for at the same time (a
    // script, a GitOps sync) find it and are refused instead of each taking traffic in turn.
    if (const auto hold = DeadlineAfter(c->last_transition_time, kClaimHold); now_ < hold) {
      RequeueWithin(plan_.requeue_after, hold - now_);
      return;
    }
    // Take the stable Service: an update with the resourceVersion it was read at (or a create).
    Json svc = observed_.stable_service.value_or(
        Json{{"apiVersion", "v1"},
             {"kind", "Service"},
             {"metadata", {{"name", mv_.spec.model}, {"namespace", mv_.metadata.namespace_}}},
             {"spec", Json::object()}});
    Json& meta = svc["metadata"];
    meta.erase("managedFields");
    meta["labels"][kManagedByLabel] = kManagedByValue;
    meta["labels"][kModelLabel] = Shorten(mv_.spec.model, 63);
    meta["annotations"][kProductionVersionAnnotation] = mv_.spec.version;
    meta["ownerReferences"] = Json::array({api::ControllerReference(
        api::kApiVersion, api::ModelVersion::kKind, mv_.metadata.name, mv_.metadata.uid)});
    svc["spec"]["selector"] = Selector(mv_);
    svc["spec"]["ports"] =
        Json::array({{{"name", "http"}, {"port", PortOf(mv_)}, {"targetPort", PortOf(mv_)}}});
    svc.erase("status");
    plan_.stable_service = std::move(svc);
    status().previous_production_version =
        holder.empty() ? std::nullopt : std::optional<std::string>(holder);
    Complete();
  }

  // Traffic is (or is about to be) on this version: archive whichever other version still says
  // Production, and say Production only once none does.
  void Complete() {
    using enum api::ConditionStatus;
    if (const api::ModelVersion* other = OtherInProduction()) {
      if (other->spec.stage != Stage::kArchived) plan_.archive = other->metadata.name;
      api::SetCondition(status().conditions,
                        Condition(kConditionPromoted, kUnknown, "ArchivingPrevious",
                                  "traffic moves to this version; waiting for version " +
                                      other->spec.version + " to leave Production"));
      RequeueWithin(plan_.requeue_after, std::chrono::seconds{1});
      return;
    }
    const std::string previous = status().previous_production_version.value_or("");
    Transition(Stage::kProduction,
               previous.empty() ? "promoted" : "promoted; version " + previous + " archived");
    api::SetCondition(status().conditions,
                      Condition(kConditionPromoted, kTrue, "Promoted",
                                "serving production traffic through Service " + mv_.spec.model));
  }

  // serving.rolloutDeadline, or the default.
  std::chrono::nanoseconds RolloutDeadline() const {
    const auto& serving = mv_.spec.serving;
    if (serving && serving->rollout_deadline) return serving->rollout_deadline->value;
    return kDefaultRolloutDeadline;
  }

  // The serving children while `served` and the spec has serving; the others are removed (a
  // dropped serving.autoscaling takes the autoscaler, which would otherwise keep resizing the
  // Deployment the spec now sizes with replicas).
  void Serving(bool served) {
    if (served) plan_.apply = ModelServingChildren(mv_);
    const auto& serving = mv_.spec.serving;
    if (plan_.apply.empty()) {
      Remove(observed_.deployment);
      Remove(observed_.service);
    }
    if (plan_.apply.empty() || !serving || !serving->autoscaling) {
      Remove(observed_.horizontal_pod_autoscaler);
    }
  }

  void Remove(const std::optional<Json>& child) {
    if (child) plan_.remove.push_back(ChildRefOf(*child));
  }

  void Summary(Stage effective) {
    using enum api::ConditionStatus;
    using api::ModelVersionPhase;
    auto& s = status();
    const bool served = !plan_.apply.empty();
    const std::string host = "." + mv_.metadata.namespace_ + ".svc:" + std::to_string(PortOf(mv_));
    if (served) {
      s.url = "http://" + mv_.metadata.name + host;
      s.children = api::ModelVersionChildren{
          .deployment = mv_.metadata.name,
          .service = mv_.metadata.name,
          .horizontal_pod_autoscaler = mv_.spec.serving && mv_.spec.serving->autoscaling
                                           ? std::optional<std::string>(mv_.metadata.name)
                                           : std::nullopt};
      s.ready_replicas =
          observed_.deployment
              ? static_cast<int32_t>(Int(Sub(*observed_.deployment, "status"), "readyReplicas"))
              : 0;
    } else {
      s.url.reset();
      s.children.reset();
      s.ready_replicas.reset();
    }
    if (effective == Stage::kProduction) {
      s.stable_url = "http://" + mv_.spec.model + host;
    } else {
      s.stable_url.reset();
    }
    const bool ready = ServingReady();
    if (effective == Stage::kArchived) {
      s.phase = ModelVersionPhase::kArchived;
      api::SetCondition(s.conditions, Condition(kConditionModelReady, kFalse, "Archived",
                                                "archived versions are not served"));
    } else if (served && !ready) {
      s.phase = ModelVersionPhase::kDeploying;
      api::SetCondition(
          s.conditions,
          Condition(kConditionModelReady, kFalse, "ReplicasNotReady",
                    "waiting for the serving replicas" +
                        (observed_.deployment ? ": " + RolloutOf(*observed_.deployment).Describe()
                                              : std::string())));
    } else if (served) {
      s.phase = ModelVersionPhase::kServing;
      api::SetCondition(s.conditions,
                        Condition(kConditionModelReady, kTrue, "Serving", "serving at " + *s.url));
    } else {
      s.phase = ModelVersionPhase::kRegistered;
      api::SetCondition(s.conditions,
                        Condition(kConditionModelReady, kTrue, "Registered",
                                  mv_.spec.serving ? "registered; served in Staging or Production"
                                                   : "registered (no serving spec)"));
    }
  }

  void Events() {
    const api::Condition* now = api::FindCondition(status().conditions, kConditionPromoted);
    const api::Condition* before = api::FindCondition(old_.conditions, kConditionPromoted);
    if (now != nullptr && (before == nullptr || before->reason != now->reason)) {
      if (now->reason == "GateFailed" || now->reason == "RolloutTimeout" ||
          now->reason == "Superseded") {
        plan_.events.push_back({"Warning", now->reason, now->message});
      } else if (now->reason == "Promoted") {
        plan_.events.push_back({"Normal", "Promoted", now->message});
      }
    }
  }

  const api::ModelVersion& mv_;
  const ObservedModelVersion& observed_;
  api::Time now_;
  ModelVersionPlan plan_;
  api::ModelVersionStatus old_;
};

}  // namespace

ModelVersionPlan PlanModelVersion(const api::ModelVersion& mv, const ObservedModelVersion& observed,
                                  api::Time now) {
  return Planner(mv, observed, now).Run();
}

Json ModelVersionStatusPatch(const api::ModelVersion& mv, const api::ModelVersionStatus& status) {
  return StatusPatchFor(mv, status);
}

}  // namespace millrace::reconcilers
