#pragma once

// The HTTP layer of ClientImpl: HTTP/1.1 over TLS (Boost.Beast on OpenSSL) with a pool of
// kept-alive connections; not part of the public API.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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
  // Connecting, sending, the answer and retries end within this (0: only the Config's
  // connect_timeout and timeout per attempt bound it); the rate limiter, credentials and DNS are
  // not counted.
  std::chrono::milliseconds timeout{0};
};

// Backoff before retry `attempt` (0-based): 200 ms doubling, capped at 5 s.
std::chrono::milliseconds RetryBackoff(int attempt);

// Where a URL points: "https://[::1]:6443/prefix" is {tls, "::1", "6443", "/prefix"}.
struct HttpEndpoint {
  bool tls = true;
  std::string host;               // without the brackets of an IPv6 literal
  std::string port;               // 443 or 80 when the URL names none
  std::string path;               // the path prefix, no trailing '/'
  std::string userinfo;           // "user:password", percent-decoded: a proxy's Basic credentials
  std::string authority() const;  // host[:port] as the Host header carries it
};
// A Config error naming `what` for anything but http:// and https:// URLs with a host.
Result<HttpEndpoint> ParseHttpUrl(std::string_view url, std::string_view what);
// Whether NO_PROXY (a comma-separated list of hosts, domain suffixes, IPs or "*") exempts `host`.
bool NoProxyMatches(std::string_view no_proxy, std::string_view host);
// The proxy for `server`: the kubeconfig's proxy-url, else HTTPS_PROXY (HTTP_PROXY for http://)
// unless NO_PROXY exempts the host; loopback hosts are never proxied from the environment.
Result<std::optional<HttpEndpoint>> ProxyFor(const Config& config, const HttpEndpoint& server);

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

  struct Connection;  // one kept-alive connection to the server (transport.cc)
  struct TlsContext;  // an OpenSSL context for one client certificate (transport.cc)
  struct Outcome;     // what one attempt got (transport.cc)

 private:
  Transport(const Config& config, HttpEndpoint server, std::optional<HttpEndpoint> proxy,
            std::shared_ptr<RequestMetrics> metrics);
  // One retry loop for both: `on_data` null collects the body into `body`.
  Result<void> Perform(const HttpRequest& request,
                       const std::function<bool(std::string_view)>* on_data,
                       const std::stop_token& stop, std::string& body);
  using Deadline = std::chrono::steady_clock::time_point;
  Outcome Attempt(const HttpRequest& request, const Credentials& creds,
                  const std::function<bool(std::string_view)>* on_data, const std::stop_token& stop,
                  Deadline deadline);
  // Opens `c` to the server, through the proxy when there is one: TCP, CONNECT, TLS. False with
  // the failure in `out`, or when `stop` was requested.
  bool Connect(Connection& c, const std::shared_ptr<TlsContext>& tls, const std::stop_token& stop,
               Deadline deadline, Outcome& out);
  Result<std::shared_ptr<TlsContext>> TlsContextFor(const Credentials& creds);
  std::unique_ptr<Connection> TakeIdle(const std::shared_ptr<TlsContext>& tls);
  void PutIdle(std::unique_ptr<Connection> connection);
  bool SleepBeforeRetry(std::chrono::milliseconds delay, const std::stop_token& stop);

  Config config_;
  HttpEndpoint server_;
  std::optional<HttpEndpoint> proxy_;
  std::string user_agent_;
  std::shared_ptr<RequestMetrics> metrics_;
  Authenticator auth_;
  TokenBucket limiter_;
  std::mutex mu_;
  std::shared_ptr<TlsContext> tls_;                // guarded by mu_: the current certificate's
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_: most recently used last
};

}  // namespace millrace::kube::internal
