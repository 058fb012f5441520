#pragma once

// Finalizers, with kube-rs' contract (kube::runtime::finalizer), for a resource whose deletion
// must run code first:
//  1. an object not being deleted that lacks the finalizer: add it, and do nothing else in that
//     reconcile; the update brings the object back carrying it. So nothing is ever made for an
//     object that could still be deleted without its cleanup.
//  2. an object being deleted that carries it: clean up, then remove the finalizer, last. The
//     cleanup is idempotent: a crash, a conflict or a lost answer runs it again.
//  3. an object being deleted without it: nothing to do (cleaned up, or never acted on).
// Both patches are conditional on the resourceVersion read (a Conflict when anyone wrote since,
// retried through the queue on a fresher read), and replace the whole finalizer list, so another
// party's finalizers read with it are kept.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kubeclient/client.h"

namespace millrace::reconcilers {

bool HasFinalizer(const std::vector<std::string>& finalizers, std::string_view finalizer);

// Adds `finalizer` to the object `ns`/`name` of `ref`, read at `resource_version` with
// `finalizers`. Returns the API server's answer (the object with it).
kube::Result<nlohmann::json> AddFinalizer(kube::Writer& client, const kube::ResourceRef& ref,
                                          std::string_view ns, std::string_view name,
                                          const std::string& resource_version,
                                          const std::vector<std::string>& finalizers,
                                          std::string_view finalizer);

// Removes `finalizer` from the object, read at `resource_version` with `finalizers`. An object
// already gone is fine (NotFound is success).
kube::Result<void> RemoveFinalizer(kube::Writer& client, const kube::ResourceRef& ref,
                                   std::string_view ns, std::string_view name,
                                   const std::string& resource_version,
                                   const std::vector<std::string>& finalizers,
                                   std::string_view finalizer);

}  // namespace millrace::reconcilers
