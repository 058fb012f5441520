#include "controller/rate_limiter.h"

#include <chrono>

#include <gtest/gtest.h>

namespace millrace::controller {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

RateLimiterOptions Options(Duration base, Duration max, double qps, int burst) {
  RateLimiterOptions options;
  options.base_delay = base;
  options.max_delay = max;
  options.qps = qps;
  options.burst = burst;
  return options;
}

TEST(RateLimiterTest, BackoffDoublesPerRetryOfAKey) {
  FakeClock clock;
  RateLimiter limiter({}, clock);  // 5ms base, bucket of 100 never empties here
  EXPECT_EQ(limiter.When("a"), milliseconds{5});
  EXPECT_EQ(limiter.When("a"), milliseconds{10});
  EXPECT_EQ(limiter.When("a"), milliseconds{20});
  EXPECT_EQ(limiter.When("b"), milliseconds{5});  // per key
  EXPECT_EQ(limiter.NumRequeues("a"), 3);
  EXPECT_EQ(limiter.NumRequeues("b"), 1);
}

TEST(RateLimiterTest, BackoffIsCapped) {
  FakeClock clock;
  RateLimiter limiter(Options(seconds{1}, seconds{10}, 1e9, 100), clock);
  for (const int want : {1, 2, 4, 8, 10, 10}) EXPECT_EQ(limiter.When("a"), seconds{want});
  for (int i = 0; i < 2000; ++i) limiter.When("a");  // 2^2000 must not overflow
  EXPECT_EQ(limiter.When("a"), seconds{10});
}

TEST(RateLimiterTest, DefaultCapIs1000Seconds) {
  FakeClock clock;
  RateLimiter limiter(Options(milliseconds{5}, seconds{1000}, 1e9, 100), clock);
  for (int i = 0; i < 40; ++i) limiter.When("a");
  EXPECT_EQ(limiter.When("a"), seconds{1000});
}

TEST(RateLimiterTest, ForgetResetsBackoff) {
  FakeClock clock;
  RateLimiter limiter({}, clock);
  limiter.When("a");
  limiter.When("a");
  limiter.Forget("a");
  EXPECT_EQ(limiter.NumRequeues("a"), 0);
  EXPECT_EQ(limiter.When("a"), milliseconds{5});
}

TEST(RateLimiterTest, BucketSpreadsABurstAtQps) {
  FakeClock clock;
  RateLimiter limiter(Options(Duration::zero(), seconds{1000}, 1, 2), clock);
  EXPECT_EQ(limiter.When("a"), Duration::zero());
  EXPECT_EQ(limiter.When("b"), Duration::zero());
  EXPECT_EQ(limiter.When("c"), seconds{1});
  EXPECT_EQ(limiter.When("d"), seconds{2});
  clock.Advance(seconds{2});  // refills the two tokens "c" and "d" borrowed
  EXPECT_EQ(limiter.When("e"), seconds{1});
  clock.Advance(seconds{100});  // refill stops at burst
  EXPECT_EQ(limiter.When("f"), Duration::zero());
  EXPECT_EQ(limiter.When("g"), Duration::zero());
  EXPECT_EQ(limiter.When("h"), seconds{1});
}

TEST(RateLimiterTest, DelayIsTheLargerOfBackoffAndBucket) {
  FakeClock clock;
  RateLimiter limiter(Options(milliseconds{5}, seconds{1000}, 1, 1), clock);
  EXPECT_EQ(limiter.When("a"), milliseconds{5});  // token available, backoff wins
  EXPECT_EQ(limiter.When("b"), seconds{1});       // bucket empty, bucket wins
}

}  // namespace
}  // namespace millrace::controller
