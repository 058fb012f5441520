#pragma once

// What every kind's reconciler does the same way, once: read the object from the cache (or what
// this controller last wrote to it, until the cache shows it: controller::MutationCache), decode
// it, stop when it is gone, follow the finalizer contract (reconcilers/finalizer.h) when the kind
// has a finalizer, and otherwise hand the object to the kind's ReconcileObject().

#include <cctype>
#include <chrono>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/builder.h"
#include "controller/failpoint.h"
#include "controller/reconciler.h"
#include "crds/errors.h"
#include "reconcilers/apply.h"
#include "reconcilers/finalizer.h"
#include "reconcilers/object.h"

namespace millrace::reconcilers {

// What a kind's plan asks ObjectReconciler::Execute() to write, beside the writes of its own
// (a Task's Job, a Pipeline's Tasks) made before it.
struct PlanWrites {
  std::vector<nlohmann::json> apply{};  // children, server-side applied unless the cache agrees
  std::vector<ChildRef> remove{};       // children to delete (background propagation)
  std::vector<PlannedEvent> events{};
  nlohmann::json status_patch{};  // a merge patch of the status; null when it is unchanged
  std::optional<std::chrono::seconds> requeue_after{};
  // Writes of the kind's own that must land after the applied children and before the status
  // says so, and before the deletes (a ModelVersion's traffic switch); an outcome stops the
  // reconcile there.
  std::function<std::optional<controller::Outcome>()> before_status{};
};

// T: api::Zone, api::Task, api::Pipeline or api::ModelVersion (FromJson, kKind, metadata).
template <class T>
class ObjectReconciler : public controller::Reconciler {
 public:
  controller::Outcome Reconcile(const controller::Request& request,
                                const controller::ReconcileContext& context) final {
    const controller::Object raw = written_.Newest(request.key, primary_.Get(request.key));
    if (!raw) return controller::Outcome::Done();  // deleted; ownerReferences take its children
    auto decoded = T::FromJson(*raw);
    if (!decoded) {
      return Undecodable(
          *raw,
          controller::Outcome::TerminalError(std::string(T::kKind) + " " + request.key +
                                             " does not decode: " + api::ToString(decoded.error())),
          context);
    }
    const T& object = *decoded;
    const api::ObjectMeta& meta = object.metadata;
    const bool finalized = !finalizer_.empty() && HasFinalizer(meta.finalizers, finalizer_);
    if (meta.deletion_timestamp) {
      if (!finalized) return controller::Outcome::Done();
      controller::Outcome cleaned = Cleanup(object, context);
      if (cleaned.kind() != controller::Outcome::Kind::kDone) return cleaned;
      return RemoveOwnFinalizer(meta, context);
    }
    if (!finalizer_.empty() && !finalized) {
      auto added = AddFinalizer(writer_, primary_.resource(), meta.namespace_, meta.name,
                                meta.resource_version, meta.finalizers, finalizer_);
      if (!added) return controller::Outcome::ApiError("adding the finalizer", added.error());
      // Until the watch brings it back, reconciles read the object with its finalizer from here.
      written_.Written(meta.resource_version, std::move(*added));
      return controller::Outcome::Done();  // the update brings us back
    }
    return ReconcileObject(object, context);
  }

 protected:
  // `finalizer`: the kind's finalizer, "" for none (ownerReferences clean up after it).
  explicit ObjectReconciler(controller::ReconcilerDeps deps, std::string_view finalizer = {})
      : writer_(deps.writer),
        status_writer_(deps.status_writer),
        uncached_(deps.uncached),
        caches_(std::move(deps.caches)),
        written_(std::move(deps.written)),
        events_(deps.events),
        primary_(caches_.primary()),
        finalizer_(finalizer) {}

  // The object exists, is not being deleted, and carries the finalizer if the kind has one.
  virtual controller::Outcome ReconcileObject(const T& object,
                                              const controller::ReconcileContext& context) = 0;
  // The object is being deleted and carries the finalizer: undo what must be undone before it
  // goes. Idempotent. Done() removes the finalizer; anything else keeps it and is the outcome.
  virtual controller::Outcome Cleanup(const T& /*object*/,
                                      const controller::ReconcileContext& /*context*/) {
    return controller::Outcome::Done();
  }
  // The cached object does not decode (the schema and the webhook keep that from happening):
  // `error` (terminal) unless the kind can do better.
  virtual controller::Outcome Undecodable(const nlohmann::json& /*object*/,
                                          controller::Outcome error,
                                          const controller::ReconcileContext& /*context*/) {
    return error;
  }

  // The plan's writes, in order: apply the children, before_status, record the events, patch the
  // status (conditional on the resourceVersion of `status_of`, read after before_status ran),
  // delete the removed children, then Done or RequeueAfter. A child the API server refuses for
  // good is also a Warning event ApplyRefused. Every API error goes through Outcome::ApiError.
  // The status goes first so that a child is deleted only once the status records what it was
  // (a Task's Job counted as an attempt); plans remove what they observe, so a delete lost to a
  // crash or an error after the status write is planned again by the next reconcile. A status
  // the API server refuses for good can never record them: the children are deleted anyway (a
  // cancel still stops its Job), and the refusal is the outcome.
  controller::Outcome Execute(const T& object, PlanWrites writes,
                              const api::ObjectMeta& status_of) {
    if (auto applied = ApplyChildren(writer_, writes.apply, caches_); !applied) {
      ApplyFailure& f = applied.error();
      if (controller::IsTerminal(f.error)) {
        Event(object, "Warning", "ApplyRefused", "applying " + f.what + ": " + f.error.message);
      }
      return controller::Outcome::ApiError("applying " + f.what, std::move(f.error));
    }
    if (writes.before_status) {
      if (auto stopped = writes.before_status()) return *stopped;
    }
    for (const PlannedEvent& e : writes.events) RecordEvent(events_, T::kKind, object.metadata, e);
    if (!writes.remove.empty()) {
      // A crash here: nothing is deleted, and the next reconcile counts what the children were.
      MILLRACE_FAILPOINT(KindFailpoint("before-status-patch.removing"));
    }
    if (auto patched = PatchStatusIfChanged(status_writer_, primary_.resource(), status_of,
                                            writes.status_patch, written_);
        !patched) {
      if (controller::IsTerminal(patched.error())) {
        static_cast<void>(DeleteChildren(writer_, writes.remove));
      }
      return controller::Outcome::ApiError("patching the status", std::move(patched.error()));
    }
    if (!writes.remove.empty()) {
      // A crash here: the status records what the children were; the next reconcile (or the
      // next leader's) plans their deletes again.
      MILLRACE_FAILPOINT(KindFailpoint("after-status-patch.removing"));
    }
    if (auto deleted = DeleteChildren(writer_, writes.remove); !deleted) {
      return controller::Outcome::ApiError("deleting " + deleted.error().what,
                                           std::move(deleted.error().error));
    }
    if (writes.requeue_after) return controller::Outcome::RequeueAfter(*writes.requeue_after);
    return controller::Outcome::Done();
  }
  controller::Outcome Execute(const T& object, PlanWrites writes) {
    return Execute(object, std::move(writes), object.metadata);
  }

  // The object at `key` read again (cache, or what this controller wrote): nullopt when gone.
  std::expected<std::optional<T>, controller::Outcome> Read(const std::string& key) const {
    return DecodeCached<T>(primary_.store(), written_, key);
  }
  // Removes the finalizer from the object read with `meta`.
  controller::Outcome RemoveOwnFinalizer(const api::ObjectMeta& meta,
                                         const controller::ReconcileContext& context) {
    auto removed = RemoveFinalizer(writer_, primary_.resource(), meta.namespace_, meta.name,
                                   meta.resource_version, meta.finalizers, finalizer_);
    if (!removed) return controller::Outcome::ApiError("removing the finalizer", removed.error());
    context.logger.Info("finalizer removed");
    return controller::Outcome::Done();
  }
  // Creates `child` (a `resource`, controlled by `object`, under its deterministic name): nullopt
  // once it exists as ours, created now or by an earlier reconcile whose status write was lost;
  // otherwise the outcome to return. A leftover of an earlier owner of the same name (still being
  // garbage-collected) is waited for; a name taken by anything else, or a refusal a retry cannot
  // fix (the API server finds it invalid, its namespace is being deleted), is also an event, so a
  // user sees why nothing is recorded.
  std::optional<controller::Outcome> CreateOwned(const T& object, const kube::ResourceRef& resource,
                                                 const nlohmann::json& child,
                                                 const controller::ReconcileContext& context) {
    const api::ObjectMeta& owner = object.metadata;
    const std::string name = child["metadata"]["name"];
    const std::string what = resource.kind + " " + name;
    auto created = writer_.Create(resource, child, {.field_manager = std::string(kFieldManager)});
    if (created) return std::nullopt;
    if (!created.error().IsAlreadyExists()) {
      if (controller::IsTerminal(created.error())) {
        Event(object, "Warning", "CreateRefused",
              "creating " + what + ": " + created.error().message);
      }
      return controller::Outcome::ApiError("creating " + what, std::move(created.error()));
    }
    auto live = uncached_.Get(resource, owner.namespace_, name);
    if (!live) {
      if (live.error().IsNotFound())
        return controller::Outcome::RequeueAfter(std::chrono::seconds{1});
      return controller::Outcome::ApiError("reading " + what, std::move(live.error()));
    }
    if (api::IsControlledBy(*live, owner.uid)) return std::nullopt;
    if (LeftoverOfEarlierOwner(*live, T::kKind, owner.name, owner.uid)) {
      context.logger.Info("waiting for " + what + " of an earlier " + std::string(T::kKind) +
                          " to be deleted");
      return controller::Outcome::RequeueAfter(std::chrono::seconds{2});
    }
    const std::string taken =
        "a " + what + " already exists and is not this " + std::string(T::kKind) + "'s";
    Event(object, "Warning", "NameTaken", taken);
    return controller::Outcome::TransientError(taken);
  }

  void Event(const T& object, std::string_view type, std::string_view reason, std::string note) {
    RecordEvent(events_, T::kKind, object.metadata,
                PlannedEvent{std::string(type), std::string(reason), std::move(note)});
  }

  kube::Writer& writer_;
  kube::StatusWriter& status_writer_;
  kube::Reader& uncached_;  // reads past the caches
  const controller::Caches caches_;
  controller::MutationCache written_;
  controller::EventRecorder& events_;
  const controller::Cache& primary_;  // of caches_: the resource reconciled
  const std::string finalizer_;

 private:
  // "<kind in lower case>.<point>": the name of a failpoint of Execute's (controller/failpoint.h).
  static std::string KindFailpoint(std::string_view point) {
    std::string name;
    for (const char c : T::kKind)
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name.append(".").append(point);
  }
};

}  // namespace millrace::reconcilers
