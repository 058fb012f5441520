#pragma once

// The HTTP layer of ClientImpl (libcurl); not part of the public API.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "kubeclient/auth.h"
#include "kubeclient/config.h"
#include "kubeclient/error.h"
#include "kubeclient/metrics.h"
#include "kubeclient/rate_limiter.h"

namespace millrace::kube::internal {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, PATCH, DELETE
  std::string path;            // "/api/v1/...?query", appended to the server URL
  std::string body;
  std::string content_type;
  std::string verb;         // metrics label: get, list, create, ...
  bool idempotent = false;  // may be retried after it might have reached the server
};

// Backoff before retry `attempt` (0-based): 200 ms doubling, capped at 5 s.
std::chrono::milliseconds RetryBackoff(int attempt);

class Transport {
 public:
  // Reads the files named in `config` that have no inline data.
  static Result<std::unique_ptr<Transport>> Create(const Config& config,
                                                   std::shared_ptr<RequestMetrics> metrics);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // The body of a 2xx answer; an Error from the Status body otherwise. Retries transient failures
  // (connection refused for every verb; resets, timeouts and 5xx for idempotent ones; 429 with
  // Retry-After for every verb), and a 401 once after refreshing refreshable credentials.
  Result<std::string> Do(const HttpRequest& request);

  // Streams a 200 answer's body to `on_data` as bytes arrive. Returns when the server ends the
  // body, `on_data` returns false, or `stop` is requested (promptly, from any thread). A non-200
  // answer is returned as its Error. Establishing the stream is retried like Do(); once bytes have
  // arrived it is not.
  Result<void> Stream(const HttpRequest& request,
                      const std::function<bool(std::string_view)>& on_data, std::stop_token stop);

  RequestMetrics& metrics() { return *metrics_; }

  struct Attempt;  // per-attempt state libcurl writes into (transport.cc)

 private:
  explicit Transport(const Config& config, std::shared_ptr<RequestMetrics> metrics);
  void* AcquireHandle();
  void ReleaseHandle(void* handle);
  // Configures `handle` for `request` with `creds`; `attempt` owns what libcurl points at.
  void Setup(void* handle, const HttpRequest& request, const Credentials& creds, Attempt& attempt);
  bool SleepBeforeRetry(std::chrono::milliseconds delay, const std::stop_token& stop);

  Config config_;
  std::string base_url_;
  std::string user_agent_;
  std::shared_ptr<RequestMetrics> metrics_;
  Authenticator auth_;
  TokenBucket limiter_;
  std::mutex pool_mu_;
  std::vector<void*> idle_handles_;  // guarded by pool_mu_; CURL* kept warm for connection reuse
};

}  // namespace millrace::kube::internal
