#include "tests/support/client.h"

#include <utility>

#include <gtest/gtest.h>

#include "kubeclient/config.h"

namespace millrace::testing {

std::unique_ptr<kube::Client> ClusterClient(const std::string& kubeconfig) {
  auto config = kube::LoadKubeconfig({.paths = {kubeconfig}, .context = {}});
  EXPECT_TRUE(config) << config.error().ToString();
  if (!config) return nullptr;
  config->qps = 0;
  auto client = kube::NewClient(*config);
  EXPECT_TRUE(client) << client.error().ToString();
  return client ? std::move(*client) : nullptr;
}

}  // namespace millrace::testing
