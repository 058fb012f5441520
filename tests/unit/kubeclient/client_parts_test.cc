// Pieces of the client that need no server: paths, the rate limiter, retry backoff, metadata
// helpers, metrics.
#include <chrono>

#include <gtest/gtest.h>

#include "kubeclient/client.h"
#include "kubeclient/metrics.h"
#include "kubeclient/object.h"
#include "kubeclient/rate_limiter.h"
#include "kubeclient/transport.h"
#include "kubeclient/util.h"

namespace millrace::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(ResourcePath, CoreAndGroupedNamespacedAndClusterScoped) {
  EXPECT_EQ(ResourcePath(resources::kPods, "ns", "p", "status"),
            "/api/v1/namespaces/ns/pods/p/status");
  EXPECT_EQ(ResourcePath(resources::kConfigMaps, "ns"), "/api/v1/namespaces/ns/configmaps");
  EXPECT_EQ(ResourcePath(resources::kConfigMaps, ""), "/api/v1/configmaps");  // all namespaces
  EXPECT_EQ(ResourcePath(resources::kDeployments, "prod", "web"),
            "/apis/apps/v1/namespaces/prod/deployments/web");
  EXPECT_EQ(ResourcePath(resources::kNamespaces, "ignored", "team-a"), "/api/v1/namespaces/team-a");
  const ResourceRef zones{"millrace.io", "v1alpha1", "zones", false, "Zone"};
  EXPECT_EQ(ResourcePath(zones, {}, "z", "status"), "/apis/millrace.io/v1alpha1/zones/z/status");
  EXPECT_EQ(zones.ApiVersion(), "millrace.io/v1alpha1");
  EXPECT_EQ(resources::kPods.ApiVersion(), "v1");
}

class FakeClock {
 public:
  std::chrono::steady_clock::time_point now{};
  TokenBucket::Clock fn() {
    return [this] { return now; };
  }
};

TEST(TokenBucket, BurstThenQpsAndRefillIsCappedAtBurst) {
  FakeClock clock;
  TokenBucket bucket(/*qps=*/2, /*burst=*/3, clock.fn());
  EXPECT_EQ(bucket.Reserve(), nanoseconds(0));
  EXPECT_EQ(bucket.Reserve(), nanoseconds(0));
  EXPECT_EQ(bucket.Reserve(), nanoseconds(0));
  EXPECT_EQ(bucket.Reserve(), milliseconds(500));   // next token in 1/qps
  EXPECT_EQ(bucket.Reserve(), milliseconds(1000));  // reservations queue up
  clock.now += milliseconds(1000);                  // both owed tokens are paid back
  EXPECT_EQ(bucket.Reserve(), milliseconds(500));
  clock.now += std::chrono::hours(1);  // a long idle period refills only `burst` tokens
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.Reserve(), nanoseconds(0));
  EXPECT_EQ(bucket.Reserve(), milliseconds(500));
}

TEST(TokenBucket, ZeroQpsMeansUnlimited) {
  FakeClock clock;
  TokenBucket bucket(0, 1, clock.fn());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(bucket.Reserve(), nanoseconds(0));
}

TEST(RetryBackoff, DoublesAndIsCapped) {
  EXPECT_EQ(internal::RetryBackoff(0), milliseconds(200));
  EXPECT_EQ(internal::RetryBackoff(1), milliseconds(400));
  EXPECT_EQ(internal::RetryBackoff(3), milliseconds(1600));
  EXPECT_EQ(internal::RetryBackoff(10), milliseconds(5000));
}

TEST(Object, MetadataAccessorsAndDefaults) {
  const auto cm = nlohmann::json::parse(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{
      "name":"a","namespace":"ns","uid":"u-1","resourceVersion":"42","generation":3,
      "labels":{"app":"x"},"annotations":{"note":"y"},
      "ownerReferences":[{"kind":"Zone","name":"z"}]}})");
  EXPECT_EQ(Name(cm), "a");
  EXPECT_EQ(Namespace(cm), "ns");
  EXPECT_EQ(Uid(cm), "u-1");
  EXPECT_EQ(ResourceVersion(cm), "42");
  EXPECT_EQ(Generation(cm), 3);
  EXPECT_EQ(Labels(cm)["app"], "x");
  EXPECT_EQ(Annotations(cm)["note"], "y");
  EXPECT_EQ(OwnerReferences(cm).size(), 1U);
  EXPECT_EQ(Key(cm), "ns/a");

  const auto bare = nlohmann::json::parse(R"({"metadata":{"name":"cluster-thing"}})");
  EXPECT_EQ(Key(bare), "cluster-thing");
  EXPECT_EQ(Generation(bare), 0);
  EXPECT_EQ(Labels(bare), nlohmann::json::object());
  EXPECT_EQ(OwnerReferences(bare), nlohmann::json::array());
  EXPECT_EQ(Name(nlohmann::json("not an object")), "");
}

TEST(Object, MakeOwnerReference) {
  const auto owner = nlohmann::json::parse(
      R"({"apiVersion":"millrace.io/v1alpha1","kind":"Task","metadata":{"name":"t","uid":"u"}})");
  EXPECT_EQ(MakeOwnerReference(owner),
            nlohmann::json::parse(R"({"apiVersion":"millrace.io/v1alpha1",
      "kind":"Task","name":"t","uid":"u","controller":true,"blockOwnerDeletion":true})"));
  EXPECT_FALSE(MakeOwnerReference(owner, false, false)["controller"].get<bool>());
}

TEST(UrlEscape, EscapesEverythingButUnreservedCharacters) {
  EXPECT_EQ(internal::UrlEscape("app=web,tier!=db"), "app%3Dweb%2Ctier%21%3Ddb");
  EXPECT_EQ(internal::UrlEscape("a-b_c.d~e 1/2"), "a-b_c.d~e%201%2F2");
  EXPECT_EQ(internal::UrlEscape("\xC3\xBC"), "%C3%BC");
}

TEST(RequestMetrics, CountsByVerbAndCode) {
  RequestMetrics m;
  m.Record("get", 200);
  m.Record("get", 200);
  m.Record("get", 404);
  m.Record("watch", 0);
  EXPECT_EQ(m.Count("get", 200), 2U);
  EXPECT_EQ(m.Count("get", 404), 1U);
  EXPECT_EQ(m.Count("list", 200), 0U);
  EXPECT_EQ(m.Snapshot().size(), 3U);
}

}  // namespace
}  // namespace millrace::kube
