#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kubeclient/config.h"
#include "kubeclient/error.h"
#include "kubeclient/metrics.h"
#include "kubeclient/watch_decoder.h"

namespace millrace::kube {

// A resource type: /api/v1/configmaps is {"", "v1", "configmaps", true}.
struct ResourceRef {
  std::string group{};     // "" for the core group
  std::string version{};   // "v1"
  std::string resource{};  // plural, lowercase: "configmaps"
  bool namespaced = true;
  std::string kind{};  // "ConfigMap" (informational; filled by discovery)

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  bool operator==(const ResourceRef&) const = default;
};

// "/api/v1/namespaces/ns/configmaps/name/status". `ns` is ignored for cluster-scoped resources and
// may be empty for a namespaced one (all namespaces: list and watch only).
std::string ResourcePath(const ResourceRef& ref, std::string_view ns = {},
                         std::string_view name = {}, std::string_view subresource = {});

// Well-known built-in resources.
namespace resources {
inline const ResourceRef kConfigMaps{"", "v1", "configmaps", true, "ConfigMap"};
inline const ResourceRef kSecrets{"", "v1", "secrets", true, "Secret"};
inline const ResourceRef kNamespaces{"", "v1", "namespaces", false, "Namespace"};
inline const ResourceRef kPods{"", "v1", "pods", true, "Pod"};
inline const ResourceRef kServices{"", "v1", "services", true, "Service"};
inline const ResourceRef kEvents{"events.k8s.io", "v1", "events", true, "Event"};
inline const ResourceRef kLeases{"coordination.k8s.io", "v1", "leases", true, "Lease"};
inline const ResourceRef kDeployments{"apps", "v1", "deployments", true, "Deployment"};
inline const ResourceRef kJobs{"batch", "v1", "jobs", true, "Job"};
inline const ResourceRef kCustomResourceDefinitions{
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", false, "CustomResourceDefinition"};
inline const ResourceRef kNodes{"", "v1", "nodes", false, "Node"};
inline const ResourceRef kResourceQuotas{"", "v1", "resourcequotas", true, "ResourceQuota"};
inline const ResourceRef kLimitRanges{"", "v1", "limitranges", true, "LimitRange"};
inline const ResourceRef kNetworkPolicies{"networking.k8s.io", "v1", "networkpolicies", true,
                                          "NetworkPolicy"};
inline const ResourceRef kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings", true,
                                       "RoleBinding"};
inline const ResourceRef kPriorityClasses{"scheduling.k8s.io", "v1", "priorityclasses", false,
                                          "PriorityClass"};
inline const ResourceRef kHorizontalPodAutoscalers{"autoscaling", "v2", "horizontalpodautoscalers",
                                                   true, "HorizontalPodAutoscaler"};

// Every one above.
inline const std::array kWellKnown = {
    &kConfigMaps,
    &kSecrets,
    &kNamespaces,
    &kPods,
    &kServices,
    &kEvents,
    &kLeases,
    &kDeployments,
    &kJobs,
    &kCustomResourceDefinitions,
    &kNodes,
    &kResourceQuotas,
    &kLimitRanges,
    &kNetworkPolicies,
    &kRoleBindings,
    &kPriorityClasses,
    &kHorizontalPodAutoscalers,
};
}  // namespace resources

struct GetOptions {
  std::string resource_version{};  // "" = most recent (quorum read); "0" = any cached version
  // Connecting, sending, the answer and any retries end within this (0: the Config's timeouts per
  // attempt). Not bounded by it: the client's rate-limiter wait, credential refresh and DNS.
  std::chrono::milliseconds timeout{0};
};

struct ListOptions {
  std::string label_selector{};  // "app=web,tier!=db"
  std::string field_selector{};  // "metadata.name=x"
  int64_t limit = 0;             // page size; 0 = no paging
  std::string continue_token{};  // metadata.continue of the previous page
  std::string resource_version{};
  std::string resource_version_match{};  // "", "Exact" or "NotOlderThan"
};

// Create and Update (PUT).
struct WriteOptions {
  std::string field_manager{};
  bool dry_run = false;
  std::string subresource{};  // "" or "status"
  // Connecting, sending, the answer and any retries end within this (0: the Config's timeouts per
  // attempt). Not bounded by it: the client's rate-limiter wait, credential refresh and DNS.
  std::chrono::milliseconds timeout{0};
};

enum class PatchType { kMerge, kJson, kStrategicMerge };

struct PatchOptions {
  PatchType type = PatchType::kMerge;
  std::string field_manager{};
  bool dry_run = false;
  std::string subresource{};
};

// Server-side apply (PATCH application/apply-patch+yaml).
struct ApplyOptions {
  std::string field_manager{};  // required by the server
  bool force = false;           // take ownership of fields other managers own
  bool dry_run = false;
  std::string subresource{};
};

struct DeleteOptions {
  std::string propagation_policy{};  // "", "Foreground", "Background" or "Orphan"
  std::optional<int64_t> grace_period_seconds{};
  std::string precondition_uid{};
  std::string precondition_resource_version{};
  bool dry_run = false;
};

struct WatchOptions {
  std::string label_selector{};
  std::string field_selector{};
  std::string resource_version{};  // start after this version ("" = now, "0" = from any cached)
  bool allow_bookmarks = true;
  std::optional<int64_t> timeout_seconds{};  // the server closes the stream after this
  bool send_initial_events = false;          // needs resource_version_match=NotOlderThan
};

// Receives watch events (never ERROR ones: those end the watch as an Error). Return false to stop.
using WatchHandler = std::function<bool(WatchEvent&&)>;

// The API server in narrow parts, so each user holds only what it uses: a reconciler writes
// through a Writer and a StatusWriter and reads past its caches through an explicit Reader; an
// informer lists and watches; leader election and the CA injector read-modify-write one object; a
// webhook only reads. Objects are JSON; every failure is an Error value with the server's Status.
// Create, Update and Apply take the namespace and name from the object's metadata.
// Implementations are thread-safe.

// Reads straight from the API server (never from a cache).
class Reader {
 public:
  virtual ~Reader() = default;
  virtual Result<nlohmann::json> Get(const ResourceRef& ref, std::string_view ns,
                                     std::string_view name, const GetOptions& options = {}) = 0;
  // One page: a *List object with items and metadata.continue / resourceVersion.
  virtual Result<nlohmann::json> List(const ResourceRef& ref, std::string_view ns,
                                      const ListOptions& options = {}) = 0;

  // Every page of a List (following metadata.continue), as one list object.
  Result<nlohmann::json> ListAll(const ResourceRef& ref, std::string_view ns,
                                 ListOptions options = {});
  // Every page of a List, each handed to `on_page` as it arrives (so a caller can keep less than
  // the whole list); returns the list's resourceVersion, from the last page.
  Result<std::string> ListPages(const ResourceRef& ref, std::string_view ns, ListOptions options,
                                const std::function<void(nlohmann::json& page)>& on_page);
};

class Watcher {
 public:
  virtual ~Watcher() = default;
  // Streams events to `handler` on the calling thread until the server closes the stream
  // (success), `handler` returns false (success), `stop` is requested (success), or an error:
  // an ERROR event with a 410 Status is an Error of kind Gone.
  virtual Result<void> Watch(const ResourceRef& ref, std::string_view ns,
                             const WatchOptions& options, const WatchHandler& handler,
                             std::stop_token stop = {}) = 0;
};

// Writes objects (a `subresource` option reaches others; status writes belong to StatusWriter).
class Writer {
 public:
  virtual ~Writer() = default;
  virtual Result<nlohmann::json> Create(const ResourceRef& ref, const nlohmann::json& object,
                                        const WriteOptions& options = {}) = 0;
  // PUT: fails with Conflict when metadata.resourceVersion is not the current one.
  virtual Result<nlohmann::json> Update(const ResourceRef& ref, const nlohmann::json& object,
                                        const WriteOptions& options = {}) = 0;
  virtual Result<nlohmann::json> Patch(const ResourceRef& ref, std::string_view ns,
                                       std::string_view name, const nlohmann::json& patch,
                                       const PatchOptions& options = {}) = 0;
  virtual Result<nlohmann::json> Apply(const ResourceRef& ref, const nlohmann::json& object,
                                       const ApplyOptions& options) = 0;
  // The deleted object (or a Status, when deletion finished at once for some types).
  virtual Result<nlohmann::json> Delete(const ResourceRef& ref, std::string_view ns,
                                        std::string_view name,
                                        const DeleteOptions& options = {}) = 0;
};

// Writes the status subresource (the options' subresource is set to "status").
class StatusWriter {
 public:
  virtual ~StatusWriter() = default;
  virtual Result<nlohmann::json> UpdateStatus(const ResourceRef& ref, const nlohmann::json& object,
                                              WriteOptions options = {}) = 0;
  virtual Result<nlohmann::json> PatchStatus(const ResourceRef& ref, std::string_view ns,
                                             std::string_view name, const nlohmann::json& patch,
                                             PatchOptions options = {}) = 0;
  virtual Result<nlohmann::json> ApplyStatus(const ResourceRef& ref, const nlohmann::json& object,
                                             ApplyOptions options) = 0;
};

// Reads and writes one object at a time: a read-modify-write loop (a Lease, a webhook
// configuration).
class ReadWriter : public Reader, public Writer {};

// All of the API server: the composition root builds one and hands out its parts.
class Client : public ReadWriter, public Watcher, public StatusWriter {
 public:
  // The resource of (apiVersion, kind) through discovery, cached per apiVersion; a kind missing
  // from the cache refreshes that apiVersion once (new CRDs), then is NotFound.
  virtual Result<ResourceRef> Discover(std::string_view api_version, std::string_view kind) = 0;
  // Discover() from the object's own apiVersion and kind.
  Result<ResourceRef> DiscoverFor(const nlohmann::json& object);

  // StatusWriter, through Update, Patch and Apply.
  Result<nlohmann::json> UpdateStatus(const ResourceRef& ref, const nlohmann::json& object,
                                      WriteOptions options = {}) final;
  Result<nlohmann::json> PatchStatus(const ResourceRef& ref, std::string_view ns,
                                     std::string_view name, const nlohmann::json& patch,
                                     PatchOptions options = {}) final;
  Result<nlohmann::json> ApplyStatus(const ResourceRef& ref, const nlohmann::json& object,
                                     ApplyOptions options) final;
};

// A Client over HTTP/1.1 and TLS. `metrics`, when given, receives a count of every request attempt.
Result<std::unique_ptr<Client>> NewClient(const Config& config,
                                          std::shared_ptr<RequestMetrics> metrics = nullptr);

}  // namespace millrace::kube
