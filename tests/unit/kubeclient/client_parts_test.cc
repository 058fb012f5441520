// Pieces of the client that need no server: paths, the rate limiter, retry backoff, metadata
// helpers, metrics.
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

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

TEST(ParseHttpUrl, SchemeHostPortAndPathPrefix) {
  struct Case {
    std::string url;
    bool tls;
    std::string host, port, path, authority, userinfo;
  };
  const std::vector<Case> cases = {
      {"https://10.0.0.1:6443", true, "10.0.0.1", "6443", "", "10.0.0.1:6443", ""},
      {"HTTPS://lb.example/k8s/clusters/a/", true, "lb.example", "443", "/k8s/clusters/a",
       "lb.example:443", ""},
      {"http://user:pw@[::1]:8080/", false, "::1", "8080", "", "[::1]:8080", "user:pw"},
      {"http://ops:p%40ss%3A1@proxy:3128", false, "proxy", "3128", "", "proxy:3128", "ops:p@ss:1"},
      {"http://proxy", false, "proxy", "80", "", "proxy:80", ""},
  };
  for (const Case& c : cases) {
    const auto url = internal::ParseHttpUrl(c.url, "server");
    ASSERT_TRUE(url) << c.url << ": " << url.error().ToString();
    EXPECT_EQ(url->tls, c.tls) << c.url;
    EXPECT_EQ(url->host, c.host) << c.url;
    EXPECT_EQ(url->port, c.port) << c.url;
    EXPECT_EQ(url->path, c.path) << c.url;
    EXPECT_EQ(url->authority(), c.authority) << c.url;
    EXPECT_EQ(url->userinfo, c.userinfo) << c.url;
  }
}

TEST(ParseHttpUrl, RejectsWhatItCannotReachWithTheReason) {
  auto socks = internal::ParseHttpUrl("socks5://proxy:1080", "proxy-url");
  ASSERT_FALSE(socks);
  EXPECT_EQ(socks.error().kind, ErrorKind::kConfig);
  EXPECT_EQ(socks.error().message,
            "proxy-url \"socks5://proxy:1080\": the scheme must be https:// or http://");
  auto port = internal::ParseHttpUrl("https://host:64x3", "server");
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().message, "server \"https://host:64x3\": the port is not a number");
  EXPECT_FALSE(internal::ParseHttpUrl("https://:6443", "server"));
  EXPECT_FALSE(internal::ParseHttpUrl("https://[::1:6443", "server"));
}

TEST(NoProxy, HostsDomainsCidrsAndStar) {
  using internal::NoProxyMatches;
  EXPECT_TRUE(NoProxyMatches("*", "anything"));
  EXPECT_TRUE(NoProxyMatches("a.example, kubernetes.default.svc", "kubernetes.default.svc"));
  EXPECT_TRUE(NoProxyMatches(".cluster.local", "api.svc.cluster.local"));
  EXPECT_TRUE(NoProxyMatches("cluster.local", "api.svc.CLUSTER.local"));
  EXPECT_FALSE(NoProxyMatches("cluster.local", "notcluster.local"));
  EXPECT_TRUE(NoProxyMatches("example.com:443", "example.com"));
  EXPECT_TRUE(NoProxyMatches("10.0.0.0/8", "10.96.0.1"));
  EXPECT_FALSE(NoProxyMatches("10.0.0.0/8", "11.0.0.1"));
  EXPECT_FALSE(NoProxyMatches("10.0.0.0/8", "ten.example"));
  EXPECT_TRUE(NoProxyMatches("fd00::/8", "fd00::1"));
  EXPECT_TRUE(NoProxyMatches("[::1]", "::1"));
  EXPECT_FALSE(NoProxyMatches("", "host"));
}

// Sets an environment variable for the scope of one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(ProxyFor, KubeconfigThenEnvironmentExceptNoProxyAndLoopback) {
  const ScopedEnv https_proxy("HTTPS_PROXY", "proxy.corp:3128");
  const ScopedEnv no_proxy("NO_PROXY", ".svc,10.0.0.0/8");
  const auto proxy_of = [](const std::string& server, const std::string& proxy_url = "") {
    Config config;
    config.proxy_url = proxy_url;
    auto endpoint = internal::ParseHttpUrl(server, "server");
    EXPECT_TRUE(endpoint);
    return internal::ProxyFor(config, *endpoint);
  };
  auto from_env = proxy_of("https://api.example:6443");
  ASSERT_TRUE(from_env);
  ASSERT_TRUE(from_env->has_value());
  EXPECT_EQ((*from_env)->authority(), "proxy.corp:3128");
  EXPECT_FALSE(proxy_of("https://kubernetes.default.svc")->has_value());  // NO_PROXY domain
  EXPECT_FALSE(proxy_of("https://10.96.0.1")->has_value());               // NO_PROXY CIDR
  EXPECT_FALSE(proxy_of("https://127.0.0.1:6443")->has_value());          // loopback
  EXPECT_FALSE(proxy_of("https://localhost:6443")->has_value());
  // The kubeconfig's proxy-url applies to every server and is never overridden by NO_PROXY.
  auto explicit_proxy = proxy_of("https://127.0.0.1:6443", "http://10.1.1.1:8080");
  ASSERT_TRUE(explicit_proxy && explicit_proxy->has_value());
  EXPECT_EQ((*explicit_proxy)->authority(), "10.1.1.1:8080");
  auto tls_proxy = proxy_of("https://api.example", "https://proxy:443");
  ASSERT_FALSE(tls_proxy);
  EXPECT_EQ(tls_proxy.error().message,
            "proxy-url \"https://proxy:443\": only http:// proxies are supported");
}

}  // namespace
}  // namespace millrace::kube
