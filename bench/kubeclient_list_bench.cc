// List-and-decode throughput of kubeclient against a real API server.
//
//   kubeclient_list_bench [--objects N] [--namespace NS] [--page-size P] [--rounds R] [--gzip 0|1]
//
// Uses $KUBECONFIG. Creates NS (default kubeclient-bench) with N ConfigMaps (default 10000) of
// about 300 bytes each unless they exist, then lists them R times (default 3) as one request and
// as pages of P (default 500), decoding every page into JSON. Prints objects/s per mode and the
// process' peak RSS.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include "kubeclient/client.h"
#include "kubeclient/config.h"

namespace {

using millrace::kube::Client;
using millrace::kube::ListOptions;
using millrace::kube::resources::kConfigMaps;
using millrace::kube::resources::kNamespaces;
using nlohmann::json;

long PeakRssKiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "kubeclient_list_bench: %s\n", what.c_str());
  return 1;
}

// Creates ConfigMaps bench-0 .. bench-(n-1) that do not exist yet, on 8 threads.
bool Populate(Client& client, const std::string& ns, int n) {
  auto existing = client.List(kConfigMaps, ns, {.label_selector = "bench=list", .limit = 1});
  if (existing && (*existing)["metadata"].value("remainingItemCount", 0) + 1 >= n) return true;
  std::atomic<int> next{0};
  std::atomic<bool> ok{true};
  std::vector<std::jthread> workers;
  for (int t = 0; t < 8; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < n && ok; i = next++) {
        const json cm = {
            {"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata",
             {{"name", "bench-" + std::to_string(i)},
              {"namespace", ns},
              {"labels", {{"bench", "list"}, {"index", std::to_string(i)}}}}},
            {"data", {{"payload", std::string(256, 'x')}, {"index", std::to_string(i)}}}};
        auto r = client.Create(kConfigMaps, cm);
        if (!r && !r.error().IsAlreadyExists()) {
          std::fprintf(stderr, "create: %s\n", r.error().ToString().c_str());
          ok = false;
        }
      }
    });
  }
  workers.clear();
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int objects = 10000, page_size = 500, rounds = 3;
  std::string ns = "kubeclient-bench";
  bool gzip = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--objects")
      objects = std::atoi(argv[i + 1]);
    else if (flag == "--namespace")
      ns = argv[i + 1];
    else if (flag == "--page-size")
      page_size = std::atoi(argv[i + 1]);
    else if (flag == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (flag == "--gzip")
      gzip = std::string(argv[i + 1]) != "0";
    else
      return Fail("unknown flag " + flag);
  }
  auto config = millrace::kube::LoadKubeconfig();
  if (!config) return Fail(config.error().ToString());
  config->qps = 0;  // measure the client, not its rate limiter
  config->disable_compression = !gzip;
  config->timeout = std::chrono::minutes(5);
  auto client = millrace::kube::NewClient(*config);
  if (!client) return Fail(client.error().ToString());
  Client& c = **client;

  auto created = c.Create(
      kNamespaces, {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  if (!created && !created.error().IsAlreadyExists()) return Fail(created.error().ToString());
  if (!Populate(c, ns, objects)) return Fail("could not create the ConfigMaps");
  const long rss_before = PeakRssKiB();

  std::printf("%-22s %10s %12s %14s\n", "mode", "objects", "seconds", "objects/s");
  for (const int limit : {0, page_size}) {
    for (int round = 0; round < rounds; ++round) {
      const auto start = std::chrono::steady_clock::now();
      auto list = c.ListAll(kConfigMaps, ns, {.label_selector = "bench=list", .limit = limit});
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!list) return Fail(list.error().ToString());
      const size_t n = (*list)["items"].size();
      const std::string mode = limit == 0 ? "one request" : "pages of " + std::to_string(limit);
      std::printf("%-22s %10zu %12.3f %14.0f\n", mode.c_str(), n, secs,
                  static_cast<double>(n) / secs);
    }
  }
  std::printf("peak RSS: %ld KiB before listing, %ld KiB after (one decoded list in memory)\n",
              rss_before, PeakRssKiB());
  return 0;
}
