// Admission latency of the webhook server over HTTPS on loopback, at fixed request rates and flat
// out. The server runs in this process (two io threads, as in the operator) with a self-signed
// certificate; clients are libcurl connections kept alive, as the API server's are.
//
//   webhook_bench [--rates 100,200,400,800] [--seconds S] [--connections C]
//
// Each request is the AdmissionReview of config/samples/pipeline-train-churn.yaml
// (tests/fuzz/corpus/pipeline-train-churn.json) sent to the validating endpoint. At a fixed rate,
// requests are paced on a schedule and latency counts from the scheduled time (no coordinated
// omission). Prints achieved rate and p50/p99/max latency per rate, then the flat-out rate with C
// connections.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>

#include "webhooks/certificates.h"
#include "webhooks/server.h"

namespace {

using Clock = std::chrono::steady_clock;

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

struct Client {
  Client(uint16_t port, const std::string& ca, const std::string& body) : body_(body) {
    curl_ = curl_easy_init();
    url_ = "https://127.0.0.1:" + std::to_string(port) + "/validate-millrace-io-v1alpha1-pipeline";
    curl_blob blob{const_cast<char*>(ca.data()), ca.size(), CURL_BLOB_COPY};
    headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl_, CURLOPT_CAINFO_BLOB, &blob);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body_.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_.size()));
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, Discard);
  }
  ~Client() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
  }
  bool Send() {
    long code = 0;
    return curl_easy_perform(curl_) == CURLE_OK &&
           curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
  }
  CURL* curl_;
  curl_slist* headers_;
  std::string url_;
  std::string body_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> rates = {100, 200, 400, 800};
  int seconds = 5;
  int connections = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--seconds") seconds = std::atoi(value.c_str());
    if (flag == "--connections") connections = std::atoi(value.c_str());
    if (flag == "--rates") {
      rates.clear();
      std::stringstream ss(value);
      for (std::string r; std::getline(ss, r, ',');) rates.push_back(std::atoi(r.c_str()));
    }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);

  // The review of the sample Pipeline (the fuzz corpus holds one per sample).
  const std::string body =
      ReadFile(std::string(MILLRACE_SOURCE_DIR) + "/tests/fuzz/corpus/pipeline-train-churn.json");
  if (body.empty()) {
    std::fprintf(stderr, "cannot read the sample review\n");
    return 1;
  }

  auto ca = millrace::webhooks::GenerateCa("bench-ca");
  auto serving = millrace::webhooks::IssueServingCertificate(*ca, {"127.0.0.1"});
  millrace::webhooks::WebhookServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.certificate = *serving;
  millrace::webhooks::WebhookServer server(std::move(options));
  if (auto started = server.Start(); !started) {
    std::fprintf(stderr, "%s\n", started.error().c_str());
    return 1;
  }

  std::printf("%-12s %-12s %-10s %-10s %-10s %s\n", "target/s", "achieved/s", "p50 ms", "p99 ms",
              "max ms", "errors");
  for (const int rate : rates) {
    const int clients = std::max(1, std::min(connections, rate / 25));
    const auto interval = std::chrono::duration<double>(static_cast<double>(clients) / rate);
    std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
    std::atomic<int> errors{0};
    const auto start = Clock::now() + std::chrono::milliseconds(100);
    const auto end = start + std::chrono::seconds(seconds);
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        Client client(server.port(), ca->certificate, body);
        client.Send();  // connect (TLS handshake) before the clock starts
        // Clients are staggered through one interval so requests are spread evenly.
        auto next = start + std::chrono::duration_cast<Clock::duration>(interval * c / clients);
        while (next < end) {
          std::this_thread::sleep_until(next);  // pacing of an open-loop load generator
          if (!client.Send()) ++errors;
          latencies[static_cast<size_t>(c)].push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - next).count());
          next += std::chrono::duration_cast<Clock::duration>(interval);
        }
      });
    }
    for (auto& t : threads) t.join();
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    const double achieved = static_cast<double>(all.size()) / seconds;
    const double p50 = Percentile(all, 0.50), p99 = Percentile(all, 0.99);
    const double max = all.empty() ? 0 : *std::max_element(all.begin(), all.end());
    std::printf("%-12d %-12.0f %-10.2f %-10.2f %-10.2f %d\n", rate, achieved, p50, p99, max,
                errors.load());
  }

  // Flat out: every connection sends back to back.
  std::atomic<long> done{0};
  std::vector<std::thread> threads;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&] {
      Client client(server.port(), ca->certificate, body);
      while (Clock::now() < end) {
        if (client.Send()) ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  std::printf("flat out with %d connections: %.0f reviews/s\n", connections,
              static_cast<double>(done.load()) / seconds);
  server.Stop();
  curl_global_cleanup();
  return 0;
}
