#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

namespace millrace::kube {

// A token bucket: `burst` requests at once, then `qps` per second. Reservations queue up, so
// concurrent callers are spaced out fairly. qps <= 0 disables limiting. Thread-safe.
class TokenBucket {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  TokenBucket(double qps, int burst, Clock clock = &std::chrono::steady_clock::now)
      : qps_(qps),
        burst_(std::max(burst, 1)),
        clock_(std::move(clock)),
        tokens_(static_cast<double>(burst_)),
        last_(clock_()) {}

  // Takes a token and says how long the caller must wait before using it (zero: go now).
  std::chrono::nanoseconds Reserve() {
    if (qps_ <= 0) return std::chrono::nanoseconds(0);
    const std::lock_guard lock(mu_);
    const auto now = clock_();
    if (now > last_) {
      const double elapsed = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min(static_cast<double>(burst_), tokens_ + elapsed * qps_);
      last_ = now;
    }
    tokens_ -= 1;
    if (tokens_ >= 0) return std::chrono::nanoseconds(0);
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(-tokens_ / qps_));
  }

  void Wait() {
    const auto wait = Reserve();
    if (wait.count() > 0) std::this_thread::sleep_for(wait);
  }

 private:
  const double qps_;
  const int burst_;
  const Clock clock_;
  std::mutex mu_;
  double tokens_;                               // guarded by mu_; negative: reservations owed
  std::chrono::steady_clock::time_point last_;  // guarded by mu_
};

}  // namespace millrace::kube
