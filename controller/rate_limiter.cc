#include "controller/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace millrace::controller {

RateLimiter::RateLimiter(const RateLimiterOptions& options, const Clock& clock)
    : options_(options),
      clock_(clock),
      tokens_(static_cast<double>(options.burst)),
      last_refill_(clock.Now()) {}

Duration RateLimiter::When(const std::string& key) {
  const int failures = failures_[key]++;
  return std::max(Backoff(failures), TakeToken());
}

void RateLimiter::Forget(std::string_view key) { failures_.erase(std::string(key)); }

int RateLimiter::NumRequeues(std::string_view key) const {
  const auto it = failures_.find(std::string(key));
  return it == failures_.end() ? 0 : it->second;
}

Duration RateLimiter::Backoff(int failures) const {
  const double base = static_cast<double>(options_.base_delay.count());
  const double max = static_cast<double>(options_.max_delay.count());
  const double backoff = base * std::ldexp(1.0, std::min(failures, 1023));
  if (backoff >= max) return options_.max_delay;
  return Duration{static_cast<Duration::rep>(backoff)};
}

// golang.org/x/time/rate's Reserve().Delay(): the token is taken now even if it is only
// available later, so a burst of retries is spread out at `qps`.
Duration RateLimiter::TakeToken() {
  const TimePoint now = clock_.Now();
  const double elapsed = std::chrono::duration<double>(now - last_refill_).count();
  last_refill_ = now;
  tokens_ = std::min(static_cast<double>(options_.burst), tokens_ + elapsed * options_.qps);
  tokens_ -= 1.0;
  if (tokens_ >= 0.0) return Duration::zero();
  return std::chrono::duration_cast<Duration>(
      std::chrono::duration<double>(-tokens_ / options_.qps));
}

}  // namespace millrace::controller
