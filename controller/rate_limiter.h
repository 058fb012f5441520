#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "controller/clock.h"

namespace millrace::controller {

struct RateLimiterOptions {
  // Per key: the n-th consecutive retry waits base_delay * 2^(n-1), at most max_delay.
  Duration base_delay = std::chrono::milliseconds{5};
  Duration max_delay = std::chrono::seconds{1000};
  // Overall: a token bucket of `burst` tokens refilled at `qps` per second.
  double qps = 10.0;
  int burst = 100;
};

// client-go's default controller rate limiter: the delay of a retry is the larger of the key's
// exponential backoff and the wait for a token of the global bucket. Not thread-safe: the work
// queue calls it under its own mutex.
class RateLimiter {
 public:
  RateLimiter(const RateLimiterOptions& options, const Clock& clock);

  // The delay before `key` may be retried; counts a retry of the key and takes a bucket token.
  Duration When(const std::string& key);
  // Resets the key's backoff (after a success).
  void Forget(std::string_view key);
  int NumRequeues(std::string_view key) const;

 private:
  Duration Backoff(int failures) const;
  Duration TakeToken();

  RateLimiterOptions options_;
  const Clock& clock_;
  std::unordered_map<std::string, int> failures_;
  double tokens_;
  TimePoint last_refill_;
};

}  // namespace millrace::controller
