#pragma once

#include <bitset>
#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crds/duration.h"
#include "crds/time_zone.h"

// Cron schedules for the Schedule kind: which instants a schedule fires at, in a time zone, across
// daylight-saving changes. Pure: the caller passes the times (a fake clock in tests, the
// controller's clock in production).
namespace millrace::api::cron {

// A parsed 5-field schedule: one bit per allowed value of each field.
struct Schedule {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;  // bits 1..31
  std::bitset<13> months;         // bits 1..12
  std::bitset<7> days_of_week;    // bits 0..6, 0 = Sunday
  // The day-of-month / day-of-week field starts with '*' (or '?'). Vixie cron: when neither does,
  // a day matches if either field matches ("0 0 1,15 * MON" is the 1st, the 15th and Mondays);
  // otherwise both must match (so "0 0 */2 * MON" is odd-numbered Mondays). Kubernetes CronJobs
  // (robfig/cron v3) differ for a stepped star: there "*/2" counts as restricted, and
  // "0 0 */2 * MON" is odd-numbered days and Mondays. "*" and "*/1" agree.
  bool day_of_month_star = false;
  bool day_of_week_star = false;

  bool operator==(const Schedule&) const = default;
};

// Parses a standard cron expression, "minute hour day-of-month month day-of-week", in the forms
// Kubernetes CronJobs accept: '*', numbers, ranges "a-b", steps "*/n", "a-b/n" and "a/n"
// (= a-max/n), lists "a,b-c", names JAN-DEC and SUN-SAT (any case), '?' for '*' in the two day
// fields, and the macros @yearly (= @annually), @monthly, @weekly, @daily (= @midnight), @hourly;
// also 7 for Sunday, as Vixie cron does.
// Rejected, with "<field>: <reason>" or a sentence: anything else, including "TZ=" / "CRON_TZ="
// prefixes (the zone is a separate field), a seconds field, @every and @reboot, and backwards
// ranges ("FRI-MON", and "FRI-SUN" since SUN is 0: write "5-7").
std::expected<Schedule, std::string> Parse(std::string_view text);

// The first instant strictly after `after` at which the schedule fires in zone, or nullopt if
// there is none in the 5 years (5 * 366 days of wall time) after it ("0 0 30 2 *" never fires;
// "0 0 29 2 *" is found unless the next February 29 is more than 5 years away, as in 2096-2104).
// Also nullopt if `after` is outside the years 1 to 9999.
//
// The schedule is wall-clock time in zone. The rule, for every kind of schedule:
//
//   A matching wall time fires once, at the first instant at which the zone's clock shows that
//   wall time or a later one; several wall times that fire at the same instant fire once.
//
// What that means around daylight-saving changes:
// - A wall time skipped by a spring-forward gap fires at the end of the gap: "30 2 * * *" in
//   America/New_York fires on 2026-03-08 at 03:00 EDT (07:00 UTC), the transition instant.
// - A wall time that occurs twice in a fall-back overlap fires at its first occurrence only:
//   "30 1 * * *" fires on 2026-11-01 at 01:30 EDT (05:30 UTC), not again at 01:30 EST.
// - Hourly-or-finer schedules fire at every matching wall time that exists, and not at the
//   repeated wall times of an overlap: "0 * * * *" fires at 01:00 EDT, then 02:00 EST, two hours
//   later; "*/30 * * * *" at 01:00 EDT, 01:30 EDT, then 02:00 EST.
// - They also fire for the wall times in a gap, at the gap's end, which is usually a firing time
//   anyway: "0 * * * *" fires at 03:00 EDT once for both 02:00 and 03:00. Only a schedule that does
//   not match the gap's end gets an extra firing there: "30 * * * *" fires at 01:30 EST, 03:00 EDT
//   (for 02:30) and 03:30 EDT. ISC cron would skip 02:30 for such jobs; one rule for all
//   schedules is easier to predict, and a job never loses a run to a gap.
std::optional<Time> Next(const Schedule& schedule, const TimeZone& zone, Time after);

// The instants in (after, until] at which the schedule fires, oldest first, at most max_count (the
// oldest ones). A controller uses it to find the runs missed while it was down.
std::vector<Time> Between(const Schedule& schedule, const TimeZone& zone, Time after, Time until,
                          size_t max_count);

}  // namespace millrace::api::cron
