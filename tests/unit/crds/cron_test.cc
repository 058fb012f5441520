#include "crds/cron.h"

#include <bitset>
#include <chrono>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crds/duration.h"
#include "crds/time_zone.h"

// Every instant is a parameter (a fake clock): nothing here reads the real clock. Expected instants
// are UTC literals derived by hand; the comment next to each says how. Calendar facts used below:
// 2026-01-01 is a Thursday, so 2026-02-01 and 2026-03-01 are Sundays; 2040-01-01 is a Sunday.
namespace millrace::api::cron {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Time At(std::string_view rfc3339) {
  auto t = ParseTime(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(Time{});
}

Schedule MustParse(std::string_view text) {
  auto s = Parse(text);
  EXPECT_TRUE(s.has_value()) << text << ": " << (s ? "" : s.error());
  return s.value_or(Schedule{});
}

TimeZone MustLoad(std::string_view name) {
  auto tz = TimeZone::Load(name, "/usr/share/zoneinfo");
  EXPECT_TRUE(tz.has_value()) << (tz ? "" : tz.error());
  return tz.value_or(TimeZone::Utc());
}

// The set bits, "0,15,30,45".
template <size_t N>
std::string Bits(const std::bitset<N>& bits) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (!bits[i]) continue;
    if (!out.empty()) out += ",";
    out += std::to_string(i);
  }
  return out;
}

std::string NextAfter(std::string_view schedule, const TimeZone& zone, std::string_view after) {
  const auto next = Next(MustParse(schedule), zone, At(after));
  return next ? FormatTime(*next) : "none";
}

std::vector<std::string> Fires(std::string_view schedule, const TimeZone& zone,
                               std::string_view after, std::string_view until,
                               size_t max_count = 100) {
  std::vector<std::string> out;
  for (const Time t : Between(MustParse(schedule), zone, At(after), At(until), max_count))
    out.push_back(FormatTime(t));
  return out;
}

// ---- Parsing -----------------------------------------------------------------------------------

TEST(CronParse, AcceptsNumbersRangesStepsListsAndNames) {
  const Schedule s = MustParse("*/15 0-6/2 1,15 JAN-mar mon-FRI");
  EXPECT_EQ(Bits(s.minutes), "0,15,30,45");
  EXPECT_EQ(Bits(s.hours), "0,2,4,6");
  EXPECT_EQ(Bits(s.days_of_month), "1,15");
  EXPECT_EQ(Bits(s.months), "1,2,3");
  EXPECT_EQ(Bits(s.days_of_week), "1,2,3,4,5");
  EXPECT_FALSE(s.day_of_month_star);
  EXPECT_FALSE(s.day_of_week_star);

  const Schedule t = MustParse("5/20 10-20/5 */10 2/3 *");  // a/n is a-max/n
  EXPECT_EQ(Bits(t.minutes), "5,25,45");
  EXPECT_EQ(Bits(t.hours), "10,15,20");
  EXPECT_EQ(Bits(t.days_of_month), "1,11,21,31");
  EXPECT_EQ(Bits(t.months), "2,5,8,11");
  EXPECT_EQ(Bits(t.days_of_week), "0,1,2,3,4,5,6");
  EXPECT_TRUE(t.day_of_month_star);  // "*/10" starts with '*'
  EXPECT_TRUE(t.day_of_week_star);

  const Schedule u = MustParse("  59\t23 31 12   6  ");  // the largest values, any blanks
  EXPECT_EQ(Bits(u.minutes), "59");
  EXPECT_EQ(Bits(u.hours), "23");
  EXPECT_EQ(Bits(u.days_of_month), "31");
  EXPECT_EQ(Bits(u.months), "12");
  EXPECT_EQ(Bits(u.days_of_week), "6");
  EXPECT_EQ(Bits(MustParse("0 0 * * */100").days_of_week), "0");  // a step past the range
}

TEST(CronParse, SevenAndSunAreSunday) {
  const Schedule zero = MustParse("0 0 * * 0");
  EXPECT_EQ(MustParse("0 0 * * 7"), zero);
  EXPECT_EQ(MustParse("0 0 * * SUN"), zero);
  EXPECT_EQ(MustParse("0 0 * * sun"), zero);
  EXPECT_EQ(Bits(MustParse("0 0 * * 5-7").days_of_week), "0,5,6");
  // SUN is 0, so FRI-SUN is backwards (rejected, as by Vixie cron and Kubernetes): write 5-7.
  EXPECT_FALSE(Parse("0 0 * * FRI-SUN").has_value());
  EXPECT_EQ(Bits(MustParse("0 0 * * 0-7").days_of_week), "0,1,2,3,4,5,6");
}

TEST(CronParse, QuestionMarkIsStarInDayFields) {
  const Schedule s = MustParse("0 0 ? * ?");
  EXPECT_EQ(s, MustParse("0 0 * * *"));
  EXPECT_TRUE(s.day_of_month_star);
  EXPECT_TRUE(s.day_of_week_star);
}

TEST(CronParse, MacrosAreTheirExpansions) {
  EXPECT_EQ(MustParse("@yearly"), MustParse("0 0 1 1 *"));
  EXPECT_EQ(MustParse("@annually"), MustParse("0 0 1 1 *"));
  EXPECT_EQ(MustParse("@monthly"), MustParse("0 0 1 * *"));
  EXPECT_EQ(MustParse("@weekly"), MustParse("0 0 * * 0"));
  EXPECT_EQ(MustParse("@daily"), MustParse("0 0 * * *"));
  EXPECT_EQ(MustParse("@midnight"), MustParse("0 0 * * *"));
  EXPECT_EQ(MustParse(" @hourly "), MustParse("0 * * * *"));
}

TEST(CronParse, RejectsWithTheFieldAndTheReason) {
  const std::string five = "expected 5 fields (minute hour day-of-month month day-of-week), got ";
  const std::string macros =
      ": expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly";
  const struct {
    const char* text;
    std::string message;
  } cases[] = {
      {"61 * * * *", "minute: 61 is out of range 0-59"},
      {"99999999999 * * * *", "minute: 99999999999 is out of range 0-59"},
      {"* 24 * * *", "hour: 24 is out of range 0-23"},
      {"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
      {"* * 32 * *", "day-of-month: 32 is out of range 1-31"},
      {"* * * 0 *", "month: 0 is out of range 1-12"},
      {"* * * 13 *", "month: 13 is out of range 1-12"},
      {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
      {"x * * * *", "minute: \"x\" is not a number"},
      {"* * * JANUARY *", "month: \"JANUARY\" is not a number or a month name"},
      {"* * * * MONDAY", "day-of-week: \"MONDAY\" is not a number or a day name"},
      {"* * * * JAN", "day-of-week: \"JAN\" is not a number or a day name"},
      {"* * L * *", "day-of-month: \"L\" is not a number"},
      {"* * 15W * *", "day-of-month: \"15W\" is not a number"},
      {"* * * * 1#2", "day-of-week: \"1#2\" is not a number or a day name"},
      {"*/0 * * * *", "minute: step 0 in \"*/0\" must be at least 1"},
      {"*/x * * * *", R"(minute: step "x" in "*/x" is not a number)"},
      {"*/ * * * *", R"(minute: step "" in "*/" is not a number)"},
      {"1/2/3 * * * *", R"(minute: step "2/3" in "1/2/3" is not a number)"},
      {"30-10 * * * *", "minute: range 30-10 is backwards (its start is after its end)"},
      {"* * * * FRI-MON", "day-of-week: range FRI-MON is backwards (its start is after its end)"},
      {"1,,2 * * * *", "minute: empty list element in \"1,,2\""},
      {"1, * * * *", "minute: empty list element in \"1,\""},
      {"-5 * * * *", "minute: \"-5\" is not a value, range or step"},
      {"1-2-3 * * * *", "minute: \"1-2-3\" is not a value, range or step"},
      {"/5 * * * *", "minute: \"/5\" is not a value, range or step"},
      {"*-5 * * * *", "minute: \"*\" is not a number"},
      {"? * * * *", "minute: '?' is only allowed in day-of-month and day-of-week"},
      {"* * * ? *", "month: '?' is only allowed in day-of-month and day-of-week"},
      {"",
       "empty schedule: expected 5 fields (minute hour day-of-month month day-of-week) or a "
       "macro such as @daily"},
      {" \t ",
       "empty schedule: expected 5 fields (minute hour day-of-month month day-of-week) "
       "or a macro such as @daily"},
      {"* * * *", five + "4"},
      {"0 * * * * *", five + "6: a seconds field is not supported"},
      {"0 0 12 * * ? 2026", five + "7"},
      {"TZ=UTC 0 * * * *",
       "TZ= and CRON_TZ= prefixes are not supported: set the time zone in the time-zone field "
       "instead"},
      {"CRON_TZ=Europe/Berlin 0 0 * * *",
       "TZ= and CRON_TZ= prefixes are not supported: set the time zone in the time-zone field "
       "instead"},
      {"@every 1h", "unknown macro \"@every 1h\"" + macros},
      {"@reboot", "unknown macro \"@reboot\"" + macros},
      {"@DAILY", "unknown macro \"@DAILY\"" + macros},  // Kubernetes is case-sensitive here too
      {"@daily 0", "unknown macro \"@daily 0\"" + macros},
  };
  for (const auto& c : cases) {
    const auto s = Parse(c.text);
    ASSERT_FALSE(s.has_value()) << c.text;
    EXPECT_EQ(s.error(), c.message) << c.text;
  }
}

// ---- Next and Between in UTC --------------------------------------------------------------------

TEST(CronNext, IsStrictlyAfter) {
  const TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(NextAfter("0 * * * *", utc, "2026-05-01T10:00:00Z"), "2026-05-01T11:00:00Z");
  EXPECT_EQ(NextAfter("0 * * * *", utc, "2026-05-01T09:59:59Z"), "2026-05-01T10:00:00Z");
  EXPECT_EQ(NextAfter("0 * * * *", utc, "2026-05-01T10:00:01Z"), "2026-05-01T11:00:00Z");
  EXPECT_EQ(NextAfter("* * * * *", utc, "2026-05-01T10:00:30Z"), "2026-05-01T10:01:00Z");
}

TEST(CronNext, CrossesMonthAndYearEnds) {
  const TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(NextAfter("0 0 1 * *", utc, "2026-01-31T12:00:00Z"), "2026-02-01T00:00:00Z");
  // April has 30 days: the 31st at 23:59 is next in May.
  EXPECT_EQ(NextAfter("59 23 31 * *", utc, "2026-04-01T00:00:00Z"), "2026-05-31T23:59:00Z");
  EXPECT_EQ(NextAfter("0 0 1 1 *", utc, "2026-12-31T23:59:59Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(NextAfter("*/10 * * * *", utc, "2026-12-31T23:55:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(NextAfter("0 0 * 2 *", utc, "2026-03-01T00:00:00Z"), "2027-02-01T00:00:00Z");
  // In a zone: midnight of January 1 in New York (EST, UTC-5) is 05:00Z.
  EXPECT_EQ(NextAfter("0 0 1 1 *", MustLoad("America/New_York"), "2026-12-31T12:00:00Z"),
            "2027-01-01T05:00:00Z");
}

TEST(CronNext, FebruaryTwentyNinth) {
  const TimeZone utc = TimeZone::Utc();
  // 2028 and 2032 are leap years.
  EXPECT_EQ(NextAfter("0 12 29 2 *", utc, "2026-01-01T00:00:00Z"), "2028-02-29T12:00:00Z");
  EXPECT_EQ(NextAfter("0 12 29 2 *", utc, "2028-02-29T12:00:00Z"), "2032-02-29T12:00:00Z");
  // 2100 is not a leap year: after 2096 the next February 29 is in 2104, past the 5-year search.
  EXPECT_EQ(NextAfter("0 12 29 2 *", utc, "2096-03-01T00:00:00Z"), "none");
}

TEST(CronNext, DatesThatNeverExistGiveNone) {
  const TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(NextAfter("0 0 30 2 *", utc, "2026-01-01T00:00:00Z"), "none");
  EXPECT_EQ(NextAfter("0 0 31 4,6,9,11 *", utc, "2026-01-01T00:00:00Z"), "none");
  // Instants beyond year 9999 are refused rather than overflowing.
  EXPECT_FALSE(Next(MustParse("* * * * *"), utc, Time::max()).has_value());
  EXPECT_FALSE(Next(MustParse("* * * * *"), utc, Time::min()).has_value());
}

TEST(CronNext, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  const TimeZone utc = TimeZone::Utc();
  // Both restricted: the 1st or a Monday. Feb 1 and Mar 1 2026 are Sundays.
  EXPECT_THAT(Fires("0 0 1 * MON", utc, "2026-01-31T12:00:00Z", "2026-03-02T00:00:00Z"),
              ElementsAre("2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z",
                          "2026-02-16T00:00:00Z", "2026-02-23T00:00:00Z", "2026-03-01T00:00:00Z",
                          "2026-03-02T00:00:00Z"));
  // The classic surprise: "1-7" and Monday is the first seven days and every Monday.
  EXPECT_THAT(Fires("0 0 1-7 * 1", utc, "2026-01-31T12:00:00Z", "2026-02-16T00:00:00Z"),
              ElementsAre("2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z", "2026-02-03T00:00:00Z",
                          "2026-02-04T00:00:00Z", "2026-02-05T00:00:00Z", "2026-02-06T00:00:00Z",
                          "2026-02-07T00:00:00Z", "2026-02-09T00:00:00Z", "2026-02-16T00:00:00Z"));
  // Day of month starts with '*': both must match, so odd-numbered Mondays only (Mondays are
  // Feb 2, 9, 16, 23 and Mar 2, 9, 16, 23, 30).
  EXPECT_THAT(Fires("0 0 */2 * MON", utc, "2026-01-31T12:00:00Z", "2026-03-31T00:00:00Z"),
              ElementsAre("2026-02-09T00:00:00Z", "2026-02-23T00:00:00Z", "2026-03-09T00:00:00Z",
                          "2026-03-23T00:00:00Z"));
  // Day of week '*' (or '?'): the day of month alone.
  EXPECT_THAT(Fires("0 0 13 * ?", utc, "2026-01-31T12:00:00Z", "2026-03-31T00:00:00Z"),
              ElementsAre("2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z"));
}

TEST(CronBetween, FindsTheRunsMissedDuringDowntime) {
  const TimeZone utc = TimeZone::Utc();
  // Down from 01:00Z on May 1 to 12:00Z on May 2: (after, until], until included.
  EXPECT_THAT(Fires("0 */6 * * *", utc, "2026-05-01T01:00:00Z", "2026-05-02T12:00:00Z"),
              ElementsAre("2026-05-01T06:00:00Z", "2026-05-01T12:00:00Z", "2026-05-01T18:00:00Z",
                          "2026-05-02T00:00:00Z", "2026-05-02T06:00:00Z", "2026-05-02T12:00:00Z"));
  // At most max_count, the oldest.
  EXPECT_THAT(Fires("0 */6 * * *", utc, "2026-05-01T01:00:00Z", "2026-05-02T12:00:00Z", 3),
              ElementsAre("2026-05-01T06:00:00Z", "2026-05-01T12:00:00Z", "2026-05-01T18:00:00Z"));
  EXPECT_THAT(Fires("0 */6 * * *", utc, "2026-05-01T01:00:00Z", "2026-05-02T12:00:00Z", 0),
              IsEmpty());
  // after is excluded; an empty or backwards window has nothing.
  EXPECT_THAT(Fires("0 */6 * * *", utc, "2026-05-01T06:00:00Z", "2026-05-01T06:00:00Z"), IsEmpty());
  EXPECT_THAT(Fires("0 */6 * * *", utc, "2026-05-01T06:00:00Z", "2026-05-01T11:59:59Z"), IsEmpty());
  EXPECT_THAT(Fires("0 */6 * * *", utc, "2026-05-02T00:00:00Z", "2026-05-01T00:00:00Z"), IsEmpty());
  // A daily 02:00 job in New York, down across the spring-forward night: 02:00 EST = 07:00Z on
  // March 7; March 8 has no 02:00, so it runs at the end of the gap, 03:00 EDT = 07:00Z; then
  // 02:00 EDT = 06:00Z.
  EXPECT_THAT(Fires("0 2 * * *", MustLoad("America/New_York"), "2026-03-06T12:00:00Z",
                    "2026-03-10T12:00:00Z"),
              ElementsAre("2026-03-07T07:00:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z",
                          "2026-03-10T06:00:00Z"));
}

// ---- Daylight saving ---------------------------------------------------------------------------

// America/New_York, 2026-03-08: at 07:00Z clocks go from 02:00 EST (UTC-5) to 03:00 EDT (UTC-4).
TEST(CronDst, NewYorkSpringForward) {
  const TimeZone ny = MustLoad("America/New_York");
  // 02:30 does not exist: it fires once, at the end of the gap, 03:00 EDT = 07:00Z. The day
  // before it is 02:30 EST = 07:30Z, the day after 02:30 EDT = 06:30Z.
  EXPECT_EQ(NextAfter("30 2 * * *", ny, "2026-03-07T00:00:00Z"), "2026-03-07T07:30:00Z");
  EXPECT_EQ(NextAfter("30 2 * * *", ny, "2026-03-07T07:30:00Z"), "2026-03-08T07:00:00Z");
  EXPECT_EQ(NextAfter("30 2 * * *", ny, "2026-03-08T07:00:00Z"), "2026-03-09T06:30:00Z");
  // 01:30 EST exists: 06:30Z.
  EXPECT_EQ(NextAfter("30 1 * * *", ny, "2026-03-07T12:00:00Z"), "2026-03-08T06:30:00Z");
  // From 23:00 EST on March 7 (04:00Z) to 05:00 EDT (09:00Z). Hourly: 00:00 and 01:00 EST, then
  // 03:00 EDT (once, for the missing 02:00 as well), 04:00 and 05:00 EDT.
  const char* after = "2026-03-08T04:00:00Z";
  const char* until = "2026-03-08T09:00:00Z";
  EXPECT_THAT(Fires("0 * * * *", ny, after, until),
              ElementsAre("2026-03-08T05:00:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z",
                          "2026-03-08T08:00:00Z", "2026-03-08T09:00:00Z"));
  // Every 30 minutes: 02:00 and 02:30 are missing and fire with 03:00 EDT, at 07:00Z.
  EXPECT_THAT(Fires("*/30 * * * *", ny, after, until),
              ElementsAre("2026-03-08T04:30:00Z", "2026-03-08T05:00:00Z", "2026-03-08T05:30:00Z",
                          "2026-03-08T06:00:00Z", "2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z",
                          "2026-03-08T07:30:00Z", "2026-03-08T08:00:00Z", "2026-03-08T08:30:00Z",
                          "2026-03-08T09:00:00Z"));
  // At half past: 01:30 EST (06:30Z), the missing 02:30 at 03:00 EDT (07:00Z), 03:30 EDT (07:30Z).
  EXPECT_THAT(Fires("30 * * * *", ny, after, until),
              ElementsAre("2026-03-08T04:30:00Z", "2026-03-08T05:30:00Z", "2026-03-08T06:30:00Z",
                          "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z", "2026-03-08T08:30:00Z"));
}

// America/New_York, 2026-11-01: at 06:00Z clocks go from 02:00 EDT (UTC-4) back to 01:00 EST
// (UTC-5), so 01:00-01:59 happen twice: 05:00Z-05:59Z (EDT), then 06:00Z-06:59Z (EST).
TEST(CronDst, NewYorkFallBack) {
  const TimeZone ny = MustLoad("America/New_York");
  // 01:30 fires at its first occurrence, 01:30 EDT = 05:30Z, and not at 01:30 EST; the next run
  // is 01:30 EST on November 2 = 06:30Z, also when asked during the second 01:00-01:59.
  EXPECT_EQ(NextAfter("30 1 * * *", ny, "2026-10-31T12:00:00Z"), "2026-11-01T05:30:00Z");
  EXPECT_EQ(NextAfter("30 1 * * *", ny, "2026-11-01T05:30:00Z"), "2026-11-02T06:30:00Z");
  EXPECT_EQ(NextAfter("30 1 * * *", ny, "2026-11-01T06:00:00Z"), "2026-11-02T06:30:00Z");
  EXPECT_EQ(NextAfter("30 1 * * *", ny, "2026-11-01T06:45:00Z"), "2026-11-02T06:30:00Z");
  // 02:30 happens once, in EST: 07:30Z.
  EXPECT_EQ(NextAfter("30 2 * * *", ny, "2026-10-31T12:00:00Z"), "2026-11-01T07:30:00Z");
  // From 23:00 EDT on October 31 (03:00Z) to 03:00 EST (08:00Z). Hourly: 00:00 EDT (04:00Z),
  // 01:00 EDT (05:00Z), not 01:00 EST (06:00Z), 02:00 EST (07:00Z), 03:00 EST (08:00Z).
  const char* after = "2026-11-01T03:00:00Z";
  const char* until = "2026-11-01T08:00:00Z";
  EXPECT_THAT(Fires("0 * * * *", ny, after, until),
              ElementsAre("2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z",
                          "2026-11-01T08:00:00Z"));
  EXPECT_THAT(Fires("*/30 * * * *", ny, after, until),
              ElementsAre("2026-11-01T03:30:00Z", "2026-11-01T04:00:00Z", "2026-11-01T04:30:00Z",
                          "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T07:00:00Z",
                          "2026-11-01T07:30:00Z", "2026-11-01T08:00:00Z"));
}

// Europe/Berlin: 2026-03-29 at 01:00Z from 02:00 CET (UTC+1) to 03:00 CEST (UTC+2); 2026-10-25
// at 01:00Z from 03:00 CEST back to 02:00 CET, so 02:00-02:59 happen twice.
TEST(CronDst, BerlinSpringForwardAndFallBack) {
  const TimeZone berlin = MustLoad("Europe/Berlin");
  EXPECT_EQ(NextAfter("30 2 * * *", berlin, "2026-03-28T12:00:00Z"), "2026-03-29T01:00:00Z");
  EXPECT_EQ(NextAfter("30 2 * * *", berlin, "2026-03-29T01:00:00Z"), "2026-03-30T00:30:00Z");
  // 02:30 CEST = 00:30Z first; 02:30 CET (01:30Z) is skipped; then 02:30 CET on the 26th.
  EXPECT_EQ(NextAfter("30 2 * * *", berlin, "2026-10-24T12:00:00Z"), "2026-10-25T00:30:00Z");
  EXPECT_EQ(NextAfter("30 2 * * *", berlin, "2026-10-25T00:30:00Z"), "2026-10-26T01:30:00Z");
  // Hourly over the fall-back: 02:00 CEST (00:00Z), not 02:00 CET (01:00Z), 03:00 CET (02:00Z).
  EXPECT_THAT(Fires("0 * * * *", berlin, "2026-10-24T23:30:00Z", "2026-10-25T02:00:00Z"),
              ElementsAre("2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"));
}

// Australia/Lord_Howe moves its clocks by 30 minutes (+10:30 standard, +11 DST).
TEST(CronDst, LordHoweHalfHourShift) {
  const TimeZone lh = MustLoad("Australia/Lord_Howe");
  // 2026-10-04 at 02:00 +10:30 (October 3 15:30Z) clocks jump to 02:30: 02:15 does not exist and
  // fires at 15:30Z; the next day 02:15 +11 = October 4 15:15Z.
  EXPECT_EQ(NextAfter("15 2 * * *", lh, "2026-10-03T00:00:00Z"), "2026-10-03T15:30:00Z");
  EXPECT_EQ(NextAfter("15 2 * * *", lh, "2026-10-03T15:30:00Z"), "2026-10-04T15:15:00Z");
  // Hourly from 23:30 +10:30 (13:00Z): 00:00 (13:30Z), 01:00 (14:30Z), the missing 02:00 at the
  // end of the gap, 02:30 +11 (15:30Z), then 03:00 +11 (16:00Z) and 04:00 +11 (17:00Z).
  EXPECT_THAT(Fires("0 * * * *", lh, "2026-10-03T13:00:00Z", "2026-10-03T17:00:00Z"),
              ElementsAre("2026-10-03T13:30:00Z", "2026-10-03T14:30:00Z", "2026-10-03T15:30:00Z",
                          "2026-10-03T16:00:00Z", "2026-10-03T17:00:00Z"));
  // 2026-04-05 at 02:00 +11 (April 4 15:00Z) clocks go back to 01:30: 01:45 +11 = 14:45Z fires,
  // 01:45 +10:30 = 15:15Z does not; the next day 01:45 +10:30 = April 5 15:15Z.
  EXPECT_EQ(NextAfter("45 1 * * *", lh, "2026-04-04T00:00:00Z"), "2026-04-04T14:45:00Z");
  EXPECT_EQ(NextAfter("45 1 * * *", lh, "2026-04-04T14:45:00Z"), "2026-04-05T15:15:00Z");
  // Every 15 minutes from 01:20 +11 (14:20Z): 01:30 and 01:45 +11, then the repeated 01:30 and
  // 01:45 (15:00Z, 15:15Z) are skipped, then 02:00 and 02:15 +10:30 (15:30Z, 15:45Z).
  EXPECT_THAT(Fires("*/15 * * * *", lh, "2026-04-04T14:20:00Z", "2026-04-04T15:50:00Z"),
              ElementsAre("2026-04-04T14:30:00Z", "2026-04-04T14:45:00Z", "2026-04-04T15:30:00Z",
                          "2026-04-04T15:45:00Z"));
}

// Past the files' explicit transitions (they end in 2037), the footer's TZ string decides.
TEST(CronDst, FooterRulesIn2040) {
  // Europe/Dublin, IST-1GMT0,M10.5.0,M3.5.0/1 (negative DST): on 2040-03-25 at 01:00Z clocks go
  // from 01:00 GMT to 02:00 IST; on 2040-10-28 at 01:00Z from 02:00 IST back to 01:00 GMT.
  const TimeZone dublin = MustLoad("Europe/Dublin");
  EXPECT_EQ(NextAfter("30 1 * * *", dublin, "2040-03-24T12:00:00Z"), "2040-03-25T01:00:00Z");
  EXPECT_EQ(NextAfter("30 1 * * *", dublin, "2040-03-25T01:00:00Z"), "2040-03-26T00:30:00Z");
  // 01:30 IST = 00:30Z fires, 01:30 GMT = 01:30Z does not; the next day 01:30 GMT = 01:30Z.
  EXPECT_EQ(NextAfter("30 1 * * *", dublin, "2040-10-27T12:00:00Z"), "2040-10-28T00:30:00Z");
  EXPECT_EQ(NextAfter("30 1 * * *", dublin, "2040-10-28T00:30:00Z"), "2040-10-29T01:30:00Z");
  // America/New_York, EST5EDT,M3.2.0,M11.1.0: 2040-03-11 is the second Sunday of March.
  EXPECT_EQ(NextAfter("30 2 * * *", MustLoad("America/New_York"), "2040-03-10T12:00:00Z"),
            "2040-03-11T07:00:00Z");
}

}  // namespace
}  // namespace millrace::api::cron
