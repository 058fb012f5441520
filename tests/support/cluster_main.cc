// main() for integration test binaries: one real control plane per binary.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/cluster.h"

namespace {

class ClusterEnvironment : public ::testing::Environment {
 public:
  explicit ClusterEnvironment(std::string binary) : binary_(std::move(binary)) {}
  void SetUp() override {
    try {
      millrace::testing::Cluster::Start(binary_);
    } catch (const std::exception& e) {
      // Without a control plane no test here means anything: stop loudly.
      std::fprintf(stderr, "could not start the test cluster: %s\n", e.what());
      std::exit(1);
    }
  }
  void TearDown() override { millrace::testing::Cluster::Stop(); }

 private:
  std::string binary_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const std::string binary = std::filesystem::path(argv[0]).filename().string();
  ::testing::AddGlobalTestEnvironment(new ClusterEnvironment(binary));
  return RUN_ALL_TESTS();
}
