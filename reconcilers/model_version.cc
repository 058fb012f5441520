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

    // A version superseded by another's promotion learns it from its spec, which that promotion
    // sets to Archived (never from a cache that may lag behind the stable Service).
    if (requested == Stage::kProduction && current != Stage::kProduction) {
      Promote(current, holder);
    } else if (requested != current) {
      Transition(requested, "spec.stage is " + std::string(api::ToString(requested)));
      api::SetCondition(status().conditions,
                        Condition(kConditionPromoted, api::ConditionStatus::kFalse, "NotRequested",
                                  "spec.stage is not Production"));
    }
    if (!status().stage) status().stage = current;
    const Stage effective = status().stage.value_or(Stage::kNone);
    if (effective != Stage::kProduction && holds) plan_.remove_stable_service = true;
    // A promotion in progress also serves the candidate, so it can become Ready first.
    const bool promoting = requested == Stage::kProduction && effective != Stage::kProduction &&
                           FailedGatesMessage().empty() && !TimedOut();
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

  // A rollout that already timed out for this generation is not retried until the spec changes.
  bool TimedOut() const {
    const api::Condition* c = api::FindCondition(old_.conditions, kConditionPromoted);
    return c != nullptr && c->reason == "RolloutTimeout" &&
           c->observed_generation == mv_.metadata.generation;
  }

  bool ServingReady() const {
    if (!mv_.spec.serving) return true;
    if (!observed_.deployment) return false;
    const Json& d = *observed_.deployment;
    const int64_t wanted = Int(Sub(d, "spec"), "replicas", 1);
    const Json& ds = Sub(d, "status");
    return Int(ds, "observedGeneration") >= Int(Sub(d, "metadata"), "generation") &&
           Int(ds, "readyReplicas") >= wanted && Int(ds, "updatedReplicas") >= wanted;
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

  void Promote(Stage current, const std::string& holder) {
    using enum api::ConditionStatus;
    if (const std::string failed = FailedGatesMessage(); !failed.empty()) {
      api::SetCondition(
          status().conditions,
          Condition(kConditionPromoted, kFalse, "GateFailed",
                    "held in " + std::string(api::ToString(current)) + ": gate failed: " + failed));
      if (!status().stage) status().stage = current;
      return;
    }
    if (TimedOut()) return;
    if (!ServingReady()) {
      api::SetCondition(status().conditions,
                        Condition(kConditionPromoted, kUnknown, "RollingOut",
                                  "waiting for this version's replicas to be ready before traffic "
                                  "moves"));
      const api::Condition* c = api::FindCondition(status().conditions, kConditionPromoted);
      const auto deadline =
          c->last_transition_time +
          std::chrono::ceil<seconds>(mv_.spec.serving->rollout_deadline
                                         ? mv_.spec.serving->rollout_deadline->value
                                         : kDefaultRolloutDeadline);
      if (now_ >= deadline) {
        api::SetCondition(
            status().conditions,
            Condition(kConditionPromoted, kFalse, "RolloutTimeout",
                      "the serving rollout was not ready within serving.rolloutDeadline; traffic "
                      "stays on " +
                          (holder.empty() ? std::string("no version") : "version " + holder)));
        if (!status().stage) status().stage = current;
      } else {
        RequeueWithin(plan_.requeue_after, deadline - now_);
      }
      return;
    }
    // Take the stable Service: an update with the observed resourceVersion (or a create).
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
    if (!holder.empty() && holder != mv_.spec.version) {
      plan_.archive = api::ModelVersion::NameFor(mv_.spec.model, holder);
      status().previous_production_version = holder;
    }
    Transition(Stage::kProduction, holder.empty() || holder == mv_.spec.version
                                       ? "promoted"
                                       : "promoted; version " + holder + " archived");
    api::SetCondition(status().conditions,
                      Condition(kConditionPromoted, kTrue, "Promoted",
                                "serving production traffic through Service " + mv_.spec.model));
  }

  void Serving(bool served) {
    const auto children = ModelServingChildren(mv_);
    if (served) {
      plan_.apply = children;
      return;
    }
    for (const auto* child :
         {&observed_.deployment, &observed_.service, &observed_.horizontal_pod_autoscaler}) {
      if (!*child) continue;
      const Json& meta = Sub(**child, "metadata");
      plan_.remove.push_back(ChildRef{Str(**child, "apiVersion"), Str(**child, "kind"),
                                      Str(meta, "namespace"), Str(meta, "name")});
    }
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
      api::SetCondition(s.conditions, Condition(kConditionModelReady, kFalse, "ReplicasNotReady",
                                                "waiting for the serving replicas"));
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
      if (now->reason == "GateFailed" || now->reason == "RolloutTimeout") {
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
