#include <chrono>
#include <stdexcept>

#include <gtest/gtest.h>

#include "controller/clock.h"
#include "controller/leader_election.h"

namespace millrace::controller {
namespace {

using std::chrono::seconds;

TEST(LeaderFence, OpenUntilTheRenewalsEndThenRefusesWithAFencedError) {
  FakeClock clock;
  LeaderFence fence({.clock = &clock, .kill_after = std::nullopt});
  ASSERT_TRUE(fence.Check().has_value()) << "closed until a renewal opens it";
  EXPECT_EQ(fence.Check()->kind, kube::ErrorKind::kFenced);

  fence.OpenUntil(clock.Now() + seconds{3});
  EXPECT_TRUE(fence.Open());
  clock.Advance(seconds{2});
  EXPECT_TRUE(fence.Open());
  clock.Advance(seconds{1});
  EXPECT_FALSE(fence.Open()) << "closed at the renew deadline, with no renewal since";

  fence.OpenUntil(clock.Now() + seconds{3});
  EXPECT_TRUE(fence.Open());
  fence.Close();
  EXPECT_FALSE(fence.Open());
  EXPECT_TRUE(fence.Check()->IsFenced());
}

TEST(LeaderFence, TheKillTimerNeedsTheSystemClock) {
  FakeClock clock;
  EXPECT_THROW(LeaderFence({.clock = &clock, .kill_after = seconds{1}}), std::invalid_argument);
}

}  // namespace
}  // namespace millrace::controller
