#include "crds/duration.h"

#include <chrono>

#include <gtest/gtest.h>

namespace millrace::api {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

TEST(ParseDuration, AcceptsGoDurations) {
  EXPECT_EQ(ParseDuration("90s"), nanoseconds(90s));
  EXPECT_EQ(ParseDuration("1h30m"), nanoseconds(90min));
  EXPECT_EQ(ParseDuration("500ms"), nanoseconds(500ms));
  EXPECT_EQ(ParseDuration("1.5h"), nanoseconds(90min));
  EXPECT_EQ(ParseDuration("2h45m30.5s"), nanoseconds(2h + 45min + 30500ms));
  EXPECT_EQ(ParseDuration("1us"), nanoseconds(1us));
  EXPECT_EQ(ParseDuration("1\xc2\xb5s"), nanoseconds(1us));
  EXPECT_EQ(ParseDuration("3ns"), nanoseconds(3));
  EXPECT_EQ(ParseDuration("0"), nanoseconds(0));
  EXPECT_EQ(ParseDuration("-1m"), nanoseconds(-60s));
  EXPECT_EQ(ParseDuration(".5s"), nanoseconds(500ms));
  EXPECT_EQ(ParseDuration("2562047h47m16.854775807s"), nanoseconds(INT64_MAX));
}

TEST(ParseDuration, RejectsMalformedInput) {
  for (const char* bad : {"", "1", "h", "1 hour", "1d", "1h30", "--1s", ".s", "1.2.3s", "s1",
                          "9999999999999h", "2562047h47m16.854775808s"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
  EXPECT_NE(ParseDuration("1d").error().find("unknown unit"), std::string::npos);
}

TEST(FormatDuration, MatchesGo) {
  EXPECT_EQ(FormatDuration(0s), "0s");
  EXPECT_EQ(FormatDuration(90s), "1m30s");
  EXPECT_EQ(FormatDuration(1h), "1h0m0s");
  EXPECT_EQ(FormatDuration(90min), "1h30m0s");
  EXPECT_EQ(FormatDuration(500ms), "500ms");
  EXPECT_EQ(FormatDuration(1500ms), "1.5s");
  EXPECT_EQ(FormatDuration(nanoseconds(1500)), "1.5\xc2\xb5s");
  EXPECT_EQ(FormatDuration(nanoseconds(7)), "7ns");
  EXPECT_EQ(FormatDuration(-90s), "-1m30s");
  EXPECT_EQ(FormatDuration(nanoseconds(INT64_MIN)), "-2562047h47m16.854775808s");
}

TEST(FormatDuration, RoundTripsThroughParse) {
  for (const nanoseconds d : {nanoseconds(1), nanoseconds(999), nanoseconds(1s + 1ns),
                              nanoseconds(49h + 1min + 1ms), nanoseconds(INT64_MAX)}) {
    EXPECT_EQ(ParseDuration(FormatDuration(d)), d) << FormatDuration(d);
  }
}

TEST(Duration, KeepsItsTextAndComparesByValue) {
  const auto a = Duration::Parse("90s");
  const auto b = Duration::Parse("1m30s");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->text, "90s");
  EXPECT_EQ(*a, *b);
  EXPECT_LT(*Duration::Parse("59s"), *a);
  EXPECT_EQ(Duration::From(2h).text, "2h0m0s");
}

TEST(Time, ParsesAndFormatsRfc3339) {
  const auto t = ParseTime("2026-11-22T09:00:05Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(FormatTime(*t), "2026-11-22T09:00:05Z");
  EXPECT_EQ(ParseTime("2026-11-22T10:00:05+01:00"), t);
  EXPECT_EQ(ParseTime("2026-11-22T09:00:05.123456Z"), t);
  EXPECT_FALSE(ParseTime("2026-02-30T00:00:00Z"));
  EXPECT_FALSE(ParseTime("yesterday"));
  EXPECT_FALSE(ParseTime("2026-11-22T09:00:05"));
}

}  // namespace
}  // namespace millrace::api
