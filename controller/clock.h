#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stop_token>

namespace millrace::controller {

using Duration = std::chrono::steady_clock::duration;
using TimePoint = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// The seam for time. Now() orders and measures (steady); WallNow() stamps things users read
// (Event times). SleepUntil() is how a component waits for a time: it returns when the clock
// reaches `deadline` (true) or when `stop` is requested first (false). Implementations are
// thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  virtual WallTime WallNow() const = 0;
  virtual bool SleepUntil(TimePoint deadline, std::stop_token stop) = 0;
};

// Real time. Stateless, so one shared instance serves everyone.
class SystemClock final : public Clock {
 public:
  static SystemClock& Instance() {
    static SystemClock clock;
    return clock;
  }
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
  bool SleepUntil(TimePoint deadline, std::stop_token stop) override {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    return !cv.wait_until(lock, stop, deadline, [] { return false; }) && !stop.stop_requested();
  }
};

// Time that moves only when a test calls Advance(). Advance wakes every sleeper whose deadline
// has been reached, so components driven by it behave deterministically.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(WallTime wall_start = WallTime{std::chrono::seconds{1'700'000'000}})
      : wall_start_(wall_start) {}

  TimePoint Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  WallTime WallNow() const override {
    std::lock_guard lock(mu_);
    return wall_start_ + std::chrono::duration_cast<WallTime::duration>(now_.time_since_epoch());
  }
  bool SleepUntil(TimePoint deadline, std::stop_token stop) override {
    std::unique_lock lock(mu_);
    const auto sleeper = sleepers_.insert(deadline);
    sleepers_changed_.notify_all();
    const bool reached = cv_.wait(lock, stop, [&] { return now_ >= deadline; });
    sleepers_.erase(sleeper);
    return reached;
  }

  void Advance(Duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
    cv_.notify_all();
  }

  // Blocks until a thread sleeps until exactly `deadline`, or `timeout` of real time passed
  // (false). Tests use it to know a component has scheduled its wake-up before advancing time.
  bool WaitForSleeper(TimePoint deadline,
                      std::chrono::seconds timeout = std::chrono::seconds{10}) const {
    std::unique_lock lock(mu_);
    return sleepers_changed_.wait_for(lock, timeout, [&] { return sleepers_.contains(deadline); });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  mutable std::condition_variable sleepers_changed_;
  TimePoint now_{std::chrono::hours{1}};
  WallTime wall_start_;
  std::multiset<TimePoint> sleepers_;  // deadlines of the threads in SleepUntil
};

}  // namespace millrace::controller
