#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "kubeclient/config.h"
#include "kubeclient/error.h"

namespace millrace::kube {

// The credentials to put on one request. A client certificate from the Config itself is not here
// (the transport always sends it); exec plugins may return one.
struct Credentials {
  std::string token;              // "Authorization: Bearer <token>" when not empty
  std::string cert_pem, key_pem;  // from an exec plugin
};

// Produces Credentials from a Config: a static token, a token file (re-read when its modification
// time or size changes) or an exec plugin (run on first use, cached until expirationTimestamp,
// run again after Invalidate()). Thread-safe.
class Authenticator {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  explicit Authenticator(const Config& config, Clock clock = &std::chrono::system_clock::now);

  Result<Credentials> Get();
  // The server said 401: forget cached credentials. Returns whether new ones may differ.
  bool Invalidate();

 private:
  Result<Credentials> RunExec();

  const Config config_;
  const Clock clock_;
  std::mutex mu_;
  Credentials cached_;                                           // guarded by mu_
  std::optional<std::chrono::system_clock::time_point> expiry_;  // guarded by mu_
  bool have_cached_ = false;                                     // guarded by mu_
  int64_t file_mtime_ns_ = -1;                                   // guarded by mu_
  int64_t file_size_ = -1;                                       // guarded by mu_
};

// Parses an RFC 3339 timestamp ("2026-11-22T10:00:00Z", fractions and offsets allowed).
std::optional<std::chrono::system_clock::time_point> ParseRfc3339(const std::string& text);

}  // namespace millrace::kube
