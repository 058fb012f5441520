#pragma once

// How every reconciler writes: server-side apply with one field manager, skipped when the cached
// object already says everything the desired object says.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/manager.h"
#include "controller/mutation_cache.h"
#include "controller/store.h"
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
kube::Result<bool> ApplyIfChanged(kube::Client& client, const kube::ResourceRef& ref,
                                  const nlohmann::json& desired, const controller::Object& cached);

// A child that could not be applied: "Deployment x" and the API server's answer.
struct ApplyFailure {
  std::string what;
  kube::Error error;
};

// ApplyIfChanged for each of `children` (in order), comparing with what `cached(kind, key)` holds.
std::expected<void, ApplyFailure> ApplyChildren(
    kube::Client& client, const std::vector<nlohmann::json>& children,
    const std::function<controller::Object(std::string_view kind, const std::string& key)>& cached);

// Deletes `children` with background propagation (their pods go too); ones already gone are fine.
// The error names the child.
std::optional<std::string> DeleteChildren(kube::Client& client,
                                          const std::vector<ChildRef>& children);

// Merge-patches the status subresource of `object` (of `ref`, as cached) unless `patch` is null
// (nothing changed), on condition that the object is still at the resourceVersion it was read at
// (a Conflict otherwise, which the queue retries on a fresh read), and records the answer in
// `written` for reconciles that run before the cache shows it; an object deleted meanwhile is
// fine.
std::optional<std::string> PatchStatusIfChanged(kube::Client& client, const kube::ResourceRef& ref,
                                                const api::ObjectMeta& object,
                                                const nlohmann::json& patch,
                                                controller::MutationCache& written);

// A MutationCache over `informer`'s store, kept in step by a handler on the informer: what a
// controller wrote to the objects it reconciles, until their watch events arrive.
controller::MutationCache WrittenCache(controller::Informer& informer);

// manager.AddInformer for `ref` selected by `label_selector` ("" for all).
controller::Informer& AddInformer(controller::Manager& manager, const kube::ResourceRef& ref,
                                  std::string label_selector);

// "app.kubernetes.io/managed-by=millrace": selects the objects Millrace made.
std::string ManagedBySelector();

// "2026-11-23T10:04:05Z": metav1.Time, now.
std::string NowRfc3339();

// Built-in resources the reconcilers manage.
namespace resources {
inline const kube::ResourceRef kResourceQuotas{"", "v1", "resourcequotas", true, "ResourceQuota"};
inline const kube::ResourceRef kLimitRanges{"", "v1", "limitranges", true, "LimitRange"};
inline const kube::ResourceRef kNodes{"", "v1", "nodes", false, "Node"};
inline const kube::ResourceRef kNetworkPolicies{"networking.k8s.io", "v1", "networkpolicies", true,
                                                "NetworkPolicy"};
inline const kube::ResourceRef kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings",
                                             true, "RoleBinding"};
inline const kube::ResourceRef kPriorityClasses{"scheduling.k8s.io", "v1", "priorityclasses", false,
                                                "PriorityClass"};
inline const kube::ResourceRef kHorizontalPodAutoscalers{
    "autoscaling", "v2", "horizontalpodautoscalers", true, "HorizontalPodAutoscaler"};
inline const kube::ResourceRef kZones{"millrace.io", "v1alpha1", "zones", false, "Zone"};
inline const kube::ResourceRef kTasks{"millrace.io", "v1alpha1", "tasks", true, "Task"};
inline const kube::ResourceRef kPipelines{"millrace.io", "v1alpha1", "pipelines", true, "Pipeline"};
inline const kube::ResourceRef kModelVersions{"millrace.io", "v1alpha1", "modelversions", true,
                                              "ModelVersion"};
}  // namespace resources

// The ResourceRef of a child given its apiVersion and kind, among those above and kubeclient's
// well-known ones; nullptr for others.
const kube::ResourceRef* ResourceFor(std::string_view api_version, std::string_view kind);

}  // namespace millrace::reconcilers
