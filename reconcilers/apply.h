#pragma once

// How every reconciler writes: server-side apply with one field manager, skipped when the cached
// object already says everything the desired object says.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/builder.h"
#include "controller/manager.h"
#include "controller/mutation_cache.h"
#include "controller/store.h"
#include "crds/kinds.h"
#include "crds/meta.h"
#include "kubeclient/client.h"
#include "reconcilers/names.h"

namespace millrace::reconcilers {

// The one field manager of every write Millrace makes.
inline constexpr std::string_view kFieldManager = "millrace";

// True when every field `desired` sets has the same value in `live`, recursively through objects
// (arrays must be equal as a whole). Fields only the server or others set are ignored.
bool Subsumes(const nlohmann::json& live, const nlohmann::json& desired);

// The annotation every applied child carries: a hash of the rest of what Millrace applied. Subsumes
// alone cannot see a field that the desired object no longer sets (the cached child still has it);
// the hash changes with any change of the desired object, so a removed field is applied (and
// server-side apply with our one field manager then removes it from the child).
inline constexpr std::string_view kAppliedHashAnnotation = "millrace.io/applied-hash";

// `desired` with kAppliedHashAnnotation set to the hash of `desired` (16 hex digits).
nlohmann::json WithAppliedHash(nlohmann::json desired);

// Applies WithAppliedHash(desired) (force: Millrace owns these fields) unless `cached` already
// subsumes it: every field agrees and the hash is the same. Returns whether a write was made.
kube::Result<bool> ApplyIfChanged(kube::Writer& client, const kube::ResourceRef& ref,
                                  const nlohmann::json& desired, const controller::Object& cached);

// A child that could not be applied: "Deployment x" and the API server's answer.
struct ApplyFailure {
  std::string what;
  kube::Error error;
};

// ApplyIfChanged for each of `children` (in order), comparing with what `caches` hold of it;
// stops at the first failure. Returns how many were written. A child of a kind ResourceFor() does
// not know, or whose resource the controller declared no cache of, is a programming error:
// std::logic_error.
std::expected<int, ApplyFailure> ApplyChildren(kube::Writer& client,
                                               const std::vector<nlohmann::json>& children,
                                               const controller::Caches& caches);

// Deletes `children` with background propagation (their pods go too); ones already gone are fine.
// Unknown kinds throw std::logic_error, as in ApplyChildren.
std::expected<void, ApplyFailure> DeleteChildren(kube::Writer& client,
                                                 const std::vector<ChildRef>& children);

// Merge-patches the status subresource of `object` (of `ref`, as cached) unless `patch` is null
// (nothing changed), on condition that the object is still at the resourceVersion it was read at
// (a Conflict otherwise, which the queue retries on a fresh read), and records the answer in
// `written` for reconciles that run before the cache shows it; an object deleted meanwhile is
// fine.
kube::Result<void> PatchStatusIfChanged(kube::StatusWriter& client, const kube::ResourceRef& ref,
                                        const api::ObjectMeta& object, const nlohmann::json& patch,
                                        controller::MutationCache& written);

// manager.AddInformer for `ref` selected by `label_selector` ("" for all).
controller::Informer& AddInformer(controller::Manager& manager, const kube::ResourceRef& ref,
                                  std::string label_selector);

// "app.kubernetes.io/managed-by=millrace": selects the objects Millrace made.
std::string ManagedBySelector();

// "2026-11-23T10:04:05Z": metav1.Time, now.
std::string NowRfc3339();

// The resources the reconcilers read and write: the built-in ones kubeclient knows, and Millrace's
// own kinds (crds/kinds.def).
namespace resources {
using namespace kube::resources;  // NOLINT(google-build-using-namespace): one table, two homes
using api::kModelVersions;
using api::kPipelines;
using api::kSchedules;
using api::kTasks;
using api::kZones;
}  // namespace resources

// The ResourceRef of a child given its apiVersion and kind, among kubeclient's well-known ones and
// Millrace's kinds; nullptr for others.
const kube::ResourceRef* ResourceFor(std::string_view api_version, std::string_view kind);
// The same, throwing std::logic_error for a kind Millrace does not write.
const kube::ResourceRef& ResourceOf(std::string_view api_version, std::string_view kind);

}  // namespace millrace::reconcilers
