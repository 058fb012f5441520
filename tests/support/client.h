#pragma once

#include <memory>
#include <string>

#include "kubeclient/client.h"
#include "tests/support/cluster.h"

namespace millrace::testing {

// A client of this binary's cluster, as the identity `kubeconfig` names (the admin by default),
// with no client-side rate limit: tests create objects in bursts. Fails the current test when it
// cannot be built.
std::unique_ptr<kube::Client> ClusterClient(const std::string& kubeconfig = C().kubeconfig());

}  // namespace millrace::testing
