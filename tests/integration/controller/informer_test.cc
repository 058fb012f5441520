// The informer, event handlers and ControllerBuilder against a real control plane: the store
// mirrors the API, children enqueue their owners, and the store converges after the API server
// goes away (with deletes behind its back) and after etcd compacts the watch's resourceVersion
// away; a controller declared with the builder is enqueued by its own objects, its children and
// mapped objects, and reads only the caches it declared.
#include "controller/informer.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "controller/builder.h"
#include "controller/handlers.h"
#include "controller/metrics.h"
#include "controller/work_queue.h"
#include "kubeclient/config.h"
#include "tests/support/client.h"
#include "tests/support/cluster.h"

namespace millrace::controller {
namespace {

using millrace::testing::C;
using millrace::testing::Cluster;
using millrace::testing::WaitFor;
using nlohmann::json;
using std::chrono::seconds;
namespace resources = kube::resources;

std::unique_ptr<kube::Client> Admin() { return millrace::testing::ClusterClient(); }

json ConfigMap(const std::string& ns, const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", {{"v", value}}}};
}

// Names in the store, sorted.
std::vector<std::string> StoreNames(const Store& store) {
  std::vector<std::string> names;
  for (const auto& object : store.List()) names.push_back((*object)["metadata"]["name"]);
  return names;
}

// Names the API server lists, sorted.
std::vector<std::string> ApiNames(kube::Client& client, const std::string& ns) {
  auto list = client.ListAll(resources::kConfigMaps, ns);
  EXPECT_TRUE(list) << list.error().ToString();
  std::vector<std::string> names;
  if (list) {
    for (const auto& item : (*list)["items"]) names.push_back(item["metadata"]["name"]);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string Values(const Store& store) {
  std::string out;
  for (const auto& object : store.List()) {
    out += (*object)["metadata"]["name"].get<std::string>() + "=" +
           (*object)["data"].value("v", std::string{}) + " ";
  }
  return out;
}

InformerOptions ConfigMapsIn(const std::string& ns, Registry& registry) {
  InformerOptions options;
  options.resource = resources::kConfigMaps;
  options.ns = ns;
  options.min_backoff = std::chrono::milliseconds{100};
  options.max_backoff = seconds{1};
  options.metrics = &registry;
  return options;
}

double CounterValue(Registry& registry, const std::string& series) {
  const std::string text = registry.Expose();
  const auto at = text.find(series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 1));
}

TEST(Informer, StoreMirrorsCreateUpdateAndDeleteOfLabelSelectedObjects) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  // Labelled: the informer selects these (and not the namespace's kube-root-ca.crt, or "other").
  const auto labelled = [&](const std::string& name, const std::string& value) {
    json cm = ConfigMap(ns, name, value);
    cm["metadata"]["labels"] = {{"informer-test", "mirror"}};
    return cm;
  };
  ASSERT_TRUE(client->Create(resources::kConfigMaps, labelled("before", "1")));
  ASSERT_TRUE(client->Create(resources::kConfigMaps, ConfigMap(ns, "other", "1")));

  // State the handler touches is declared before the informer, so it outlives the informer's
  // thread.
  std::mutex mu;
  std::vector<std::string> seen;  // "Added before", ...
  Registry registry;
  InformerOptions options = ConfigMapsIn(ns, registry);
  options.label_selector = "informer-test=mirror";
  Informer informer(*client, *client, std::move(options));
  informer.AddHandler([&](const ObjectEvent& e) {
    static constexpr const char* kNames[] = {"Added", "Updated", "Deleted"};
    const std::lock_guard lock(mu);
    seen.push_back(std::string(kNames[static_cast<int>(e.type)]) + " " +
                   (*e.current)["metadata"]["name"].get<std::string>());
  });
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(std::chrono::steady_clock::now() + seconds(30)));
  EXPECT_EQ(StoreNames(informer.store()), std::vector<std::string>{"before"});

  ASSERT_TRUE(client->Create(resources::kConfigMaps, labelled("after", "1")));
  ASSERT_TRUE(client->Patch(resources::kConfigMaps, ns, "other", {{"data", {{"v", "2"}}}}));
  ASSERT_TRUE(client->Patch(resources::kConfigMaps, ns, "before", {{"data", {{"v", "2"}}}}));
  ASSERT_TRUE(client->Delete(resources::kConfigMaps, ns, "after"));
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::lock_guard lock(mu);
        return seen.size() >= 4;
      },
      seconds(30)));
  {
    const std::lock_guard lock(mu);
    EXPECT_EQ(seen, (std::vector<std::string>{"Added before", "Added after", "Updated before",
                                              "Deleted after"}));
  }
  EXPECT_EQ(Values(informer.store()), "before=2 ");
  const auto cached = informer.store().Get(ns + "/before");
  ASSERT_TRUE(cached);
  EXPECT_FALSE((*cached)["metadata"].contains("managedFields")) << "the store trims managedFields";
  EXPECT_EQ((*cached)["kind"], "ConfigMap");
  EXPECT_EQ(CounterValue(registry, "millrace_informer_lists_total{resource=\"configmaps\"}"), 1);
}

TEST(Informer, AChildsChangeEnqueuesItsControllingOwner) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  auto parent = client->Create(resources::kConfigMaps, ConfigMap(ns, "parent", "p"));
  ASSERT_TRUE(parent) << parent.error().ToString();

  Registry registry;
  WorkQueue queue(WorkQueueOptions{
      .name = "owners", .rate_limits = {}, .clock = nullptr, .metrics = &registry});
  Informer informer(*client, *client, ConfigMapsIn(ns, registry));
  auto next_key = [&]() -> std::string {
    if (!WaitFor([&] { return queue.Len() > 0; }, seconds(30))) return "<nothing enqueued>";
    auto key = queue.Get();
    queue.Done(*key);
    return *key;
  };
  informer.AddHandler(EnqueueOwner(queue, {.group = "", .kind = "ConfigMap"}));
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(std::chrono::steady_clock::now() + seconds(30)));
  EXPECT_EQ(queue.Len(), 0U) << "an object without an owner enqueues nothing";

  json child = ConfigMap(ns, "child", "c");
  child["metadata"]["ownerReferences"] = json::array({{{"apiVersion", "v1"},
                                                       {"kind", "ConfigMap"},
                                                       {"name", "parent"},
                                                       {"uid", (*parent)["metadata"]["uid"]},
                                                       {"controller", true}}});
  ASSERT_TRUE(client->Create(resources::kConfigMaps, child));
  EXPECT_EQ(next_key(), ns + "/parent");

  ASSERT_TRUE(client->Patch(resources::kConfigMaps, ns, "child", {{"data", {{"v", "c2"}}}}));
  EXPECT_EQ(next_key(), ns + "/parent");
  queue.ShutDown();
}

TEST(Informer, ListsPageByPageAndStoresEveryObjectTrimmed) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  for (int i = 0; i < 5; ++i) {
    json cm = ConfigMap(ns, "page-" + std::to_string(i), std::to_string(i));
    cm["data"]["dropped"] = "by the trim";
    ASSERT_TRUE(client->Create(resources::kConfigMaps, cm));
  }
  Registry registry;
  InformerOptions options = ConfigMapsIn(ns, registry);
  options.page_size = 2;  // kube-root-ca.crt and five more: four pages
  options.store.trim = [](json& cm) {
    if (cm.contains("data")) cm["data"].erase("dropped");
  };
  Informer informer(*client, *client, std::move(options));
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(std::chrono::steady_clock::now() + seconds(30)));
  EXPECT_EQ(StoreNames(informer.store()), ApiNames(*client, ns));
  EXPECT_EQ(Values(informer.store()),
            "kube-root-ca.crt= page-0=0 page-1=1 page-2=2 page-3=3 page-4=4 ");
  for (const auto& object : informer.store().List()) {
    EXPECT_FALSE((*object)["metadata"].contains("managedFields"));
    EXPECT_EQ((*object)["kind"], "ConfigMap");  // list items get their kind back
  }
}

TEST(Informer, ConvergesAfterTheApiServerWasAwayIncludingDeletesMadeMeanwhile) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  for (const char* name : {"keep", "edit", "gone"}) {
    ASSERT_TRUE(client->Create(resources::kConfigMaps, ConfigMap(ns, name, "1")));
  }
  std::mutex mu;
  std::set<std::string> deleted;
  Registry registry;
  Informer informer(*client, *client, ConfigMapsIn(ns, registry));
  informer.AddHandler([&](const ObjectEvent& e) {
    if (e.type != ObjectEvent::Type::kDeleted) return;
    const std::lock_guard lock(mu);
    deleted.insert((*e.current)["metadata"]["name"].get<std::string>());
  });
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(std::chrono::steady_clock::now() + seconds(30)));

  C().StopComponent("kube-apiserver");
  // While the API server is away, one object disappears straight from etcd: no watch event for
  // it will ever be sent.
  C().EtcdDelete("configmaps", ns, "gone");
  C().StartComponent("kube-apiserver");
  ASSERT_TRUE(WaitFor([&] { return client->Get(resources::kNamespaces, "", ns).has_value(); },
                      seconds(90)));
  ASSERT_TRUE(client->Patch(resources::kConfigMaps, ns, "edit", {{"data", {{"v", "2"}}}}));
  ASSERT_TRUE(client->Create(resources::kConfigMaps, ConfigMap(ns, "new", "1")));

  ASSERT_TRUE(WaitFor(
      [&] {
        return StoreNames(informer.store()) == ApiNames(*client, ns) &&
               Values(informer.store()).find("edit=2") != std::string::npos;
      },
      seconds(60)))
      << "store: " << Values(informer.store());
  EXPECT_EQ(Values(informer.store()), "edit=2 keep=1 kube-root-ca.crt= new=1 ");
  const std::lock_guard lock(mu);
  EXPECT_EQ(deleted, std::set<std::string>{"gone"}) << "the missed delete is delivered once";
}

TEST(Informer, CompactionPastTheWatchVersionForcesARelistWithNoMissedOrPhantomObjects) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        client->Create(resources::kConfigMaps, ConfigMap(ns, "cm-" + std::to_string(i), "1")));
  }
  Registry registry;
  Informer informer(*client, *client, ConfigMapsIn(ns, registry));
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(std::chrono::steady_clock::now() + seconds(30)));

  // Take the API server away so the informer's watch ends, change things behind its back, and
  // compact etcd: the informer's resourceVersion no longer exists anywhere.
  C().StopComponent("kube-apiserver");
  C().EtcdDelete("configmaps", ns, "cm-1");
  C().EtcdDelete("configmaps", ns, "cm-3");
  C().EtcdCompact();
  C().StartComponent("kube-apiserver");
  ASSERT_TRUE(WaitFor([&] { return client->Get(resources::kNamespaces, "", ns).has_value(); },
                      seconds(90)));
  ASSERT_TRUE(client->Create(resources::kConfigMaps, ConfigMap(ns, "cm-9", "1")));

  const std::string relists = "millrace_informer_relists_total{resource=\"configmaps\"}";
  ASSERT_TRUE(WaitFor(
      [&] {
        return CounterValue(registry, relists) >= 1 &&
               StoreNames(informer.store()) == ApiNames(*client, ns);
      },
      seconds(60)))
      << "relists: " << CounterValue(registry, relists) << ", store: " << Values(informer.store());
  EXPECT_EQ(StoreNames(informer.store()),
            (std::vector<std::string>{"cm-0", "cm-2", "cm-4", "cm-9", "kube-root-ca.crt"}));
}

// ---- ControllerBuilder: a controller declared with it, run in-process by a Manager ----

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
