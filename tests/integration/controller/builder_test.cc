// A controller declared with ControllerBuilder, run in-process by a Manager against a real
// control plane: its own objects, owned children and mapped objects enqueue the right keys, and
// the reconciler reads named caches only.
#include "controller/builder.h"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "kubeclient/config.h"
#include "tests/support/cluster.h"

namespace millrace::controller {
namespace {

using millrace::testing::Cluster;
using millrace::testing::WaitFor;
using nlohmann::json;
using std::chrono::seconds;
namespace resources = kube::resources;

Cluster& C() { return Cluster::Get(); }

std::unique_ptr<kube::Client> Admin() {
  auto config = kube::LoadKubeconfig({.paths = {C().kubeconfig()}, .context = {}});
  EXPECT_TRUE(config) << config.error().ToString();
  config->qps = 0;
  auto client = kube::NewClient(*config);
  EXPECT_TRUE(client) << client.error().ToString();
  return std::move(*client);
}

// Counts reconciles per key and what the named caches showed.
class Recorder : public Reconciler {
 public:
  explicit Recorder(Caches caches) : caches_(std::move(caches)) {}

  Outcome Reconcile(const Request& request, const ReconcileContext&) override {
    const Object cm = caches_.Of(resources::kConfigMaps).Get(request.key);
    const size_t owned =
        cm ? caches_.Of(resources::kSecrets).ControlledBy((*cm)["metadata"].value("uid", "")).size()
           : 0;
    const std::lock_guard lock(mu_);
    ++reconciles_[request.key];
    owned_[request.key] = owned;
    return Outcome::Done();
  }
  int reconciles(const std::string& key) {
    const std::lock_guard lock(mu_);
    return reconciles_[key];
  }
  size_t owned(const std::string& key) {
    const std::lock_guard lock(mu_);
    return owned_[key];
  }

 private:
  const Caches caches_;
  std::mutex mu_;
  std::map<std::string, int> reconciles_;
  std::map<std::string, size_t> owned_;
};

TEST(ControllerBuilder, ForOwnsAndWatchesEnqueueTheReconciledObject) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  Manager manager(*client, ManagerOptions{});
  Recorder* recorder = nullptr;
  ControllerBuilder(manager, "configmaps")
      .For(resources::kConfigMaps, AnyChange)
      .Owns(resources::kSecrets)
      // A Service labelled for=<name> maps to the ConfigMap of that name.
      .Watches(resources::kServices,
               [](const json& svc, const Caches&) {
                 const json& meta = svc["metadata"];
                 const std::string name =
                     meta.value("labels", json::object()).value("for", std::string{});
                 if (name.empty()) return std::vector<std::string>{};
                 return std::vector<std::string>{meta.value("namespace", "") + "/" + name};
               })
      .Reads(resources::kNamespaces)
      .Complete([&recorder](ReconcilerDeps deps) {
        EXPECT_THROW(deps.caches.Of(resources::kPods), std::logic_error)
            << "a cache nobody declared";
        EXPECT_TRUE(deps.caches.Has(resources::kNamespaces));
        auto made = std::make_unique<Recorder>(deps.caches);
        recorder = made.get();
        return made;
      });
  ASSERT_NE(recorder, nullptr);
  // Its destructor, on every way out of the test, stops the manager and joins it.
  std::jthread running([&manager](std::stop_token stop) { manager.Run(stop); });
  ASSERT_TRUE(WaitFor([&] { return manager.Ready(); }, std::chrono::seconds{60}));

  const std::string key = ns + "/settings";
  auto cm = client->Create(resources::kConfigMaps,
                           {{"apiVersion", "v1"},
                            {"kind", "ConfigMap"},
                            {"metadata", {{"name", "settings"}, {"namespace", ns}}}});
  ASSERT_TRUE(cm) << cm.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return recorder->reconciles(key) >= 1; }, std::chrono::seconds{30}));

  // A Secret the ConfigMap controls: its owner is reconciled, and sees it in the Secrets cache.
  ASSERT_TRUE(client->Create(resources::kSecrets, {{"apiVersion", "v1"},
                                                   {"kind", "Secret"},
                                                   {"metadata",
                                                    {{"name", "child"},
                                                     {"namespace", ns},
                                                     {"ownerReferences",
                                                      {{{"apiVersion", "v1"},
                                                        {"kind", "ConfigMap"},
                                                        {"name", "settings"},
                                                        {"uid", (*cm)["metadata"]["uid"]},
                                                        {"controller", true}}}}}}}));
  EXPECT_TRUE(WaitFor([&] { return recorder->owned(key) == 1; }, std::chrono::seconds{30}))
      << "the owner was not reconciled with its child in the cache";

  // A Service mapped to it.
  const int before = recorder->reconciles(key);
  ASSERT_TRUE(client->Create(
      resources::kServices,
      {{"apiVersion", "v1"},
       {"kind", "Service"},
       {"metadata", {{"name", "front"}, {"namespace", ns}, {"labels", {{"for", "settings"}}}}},
       {"spec", {{"ports", {{{"port", 80}}}}}}}));
  EXPECT_TRUE(WaitFor([&] { return recorder->reconciles(key) > before; }, std::chrono::seconds{30}))
      << "the mapped Service did not enqueue its ConfigMap";
}

TEST(ControllerBuilder, DeclarationMistakesAreFoundAtStartUp) {
  auto client = Admin();
  Manager manager(*client, ManagerOptions{});
  EXPECT_THROW(ControllerBuilder(manager, "no-for").Owns(resources::kSecrets), std::logic_error);
  EXPECT_THROW(ControllerBuilder(manager, "twice")
                   .For(resources::kConfigMaps)
                   .Owns(resources::kSecrets, {.label_selector = "a=b"})
                   .Watches(resources::kSecrets,
                            [](const json&, const Caches&) { return std::vector<std::string>{}; }),
               std::logic_error);
}

}  // namespace
}  // namespace millrace::controller
