#include "crds/time_zone.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "crds/duration.h"

// Real zones come from /usr/share/zoneinfo (Debian's tzdata, scripts/bootstrap installs it). The
// expected instants are derived by hand from the zone's rules, stated next to each; the 2026 and
// 2040 ones agree with `zdump -v`. Debian's files list explicit transitions up to 2037, so the
// 2040 checks exercise the footer's POSIX TZ string.
namespace millrace::api {
namespace {

using std::chrono::local_days;
using std::chrono::local_seconds;
using std::chrono::seconds;
using Kind = LocalMapping::Kind;

Time At(std::string_view rfc3339) {
  auto t = ParseTime(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(Time{});
}

local_seconds Wall(int y, unsigned m, unsigned d, int hh, int mm) {
  return local_days{std::chrono::year{y} / std::chrono::month{m} / std::chrono::day{d}} +
         std::chrono::hours{hh} + std::chrono::minutes{mm};
}

TimeZone MustLoad(std::string_view name) {
  auto tz = TimeZone::Load(name, "/usr/share/zoneinfo");
  EXPECT_TRUE(tz.has_value()) << (tz ? "" : tz.error());
  return tz.value_or(TimeZone::Utc());
}

// ---- A TZif writer for hand-made files (RFC 8536 section 3) ------------------------------------

struct TzifSpec {
  char version = '2';  // '\0' for version 1
  std::vector<int64_t> times;
  std::vector<uint8_t> time_types;
  std::vector<int32_t> offsets;  // one local time type each, all named "ABC"
  std::string footer;
  uint32_t leap_count = 0;
};

void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string Block(const TzifSpec& spec, int time_size) {
  std::string out = "TZif";
  out.push_back(spec.version);
  out.append(15, '\0');
  const auto count = [&](size_t n) { PutBigEndian(out, n, 4); };
  count(0);  // isutcnt
  count(0);  // isstdcnt
  count(spec.leap_count);
  count(spec.times.size());
  count(spec.offsets.size());
  count(4);  // charcnt: "ABC\0"
  for (const int64_t t : spec.times) PutBigEndian(out, static_cast<uint64_t>(t), time_size);
  for (const uint8_t type : spec.time_types) out.push_back(static_cast<char>(type));
  for (const int32_t offset : spec.offsets) {
    PutBigEndian(out, static_cast<uint32_t>(offset), 4);
    out.push_back('\0');  // isdst
    out.push_back('\0');  // desigidx
  }
  out.append("ABC", 4);
  out.append(size_t{spec.leap_count} * static_cast<size_t>(time_size + 4), '\0');
  return out;
}

std::string BuildTzif(const TzifSpec& spec) {
  std::string out = Block(spec, 4);
  if (spec.version != '\0') out += Block(spec, 8) + "\n" + spec.footer + "\n";
  return out;
}

TimeZone FromFooter(std::string_view footer) {
  TzifSpec spec;
  spec.offsets = {0};
  spec.footer = footer;
  auto tz = TimeZone::FromTzif("Test/Footer", BuildTzif(spec));
  EXPECT_TRUE(tz.has_value()) << footer << ": " << (tz ? "" : tz.error());
  return tz.value_or(TimeZone::Utc());
}

// ---- Loading -------------------------------------------------------------------------------

TEST(TimeZoneLoad, UtcNeedsNoFile) {
  for (const char* name : {"UTC", "Etc/UTC"}) {
    const auto tz = TimeZone::Load(name, "/nonexistent");
    ASSERT_TRUE(tz.has_value()) << name;
    EXPECT_EQ(tz->name(), name);
    EXPECT_EQ(tz->OffsetAt(At("2026-07-01T12:00:00Z")), 0);
  }
  const TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(utc.name(), "UTC");
  const LocalMapping m = utc.FromLocal(Wall(2026, 3, 8, 2, 30));
  EXPECT_EQ(m.kind, Kind::kUnique);
  EXPECT_EQ(FormatTime(m.first), "2026-03-08T02:30:00Z");
}

TEST(TimeZoneLoad, RejectsNamesThatAreNotIanaNames) {
  const struct {
    std::string name;
    std::string message;
  } cases[] = {
      {"", "time zone name is empty"},
      {"/etc/localtime",
       "invalid time zone name \"/etc/localtime\": must be an IANA name like Europe/Berlin, not a "
       "path"},
      {"../etc/passwd", R"(invalid time zone name "../etc/passwd": "." and ".." are not allowed)"},
      {"America/../../etc/passwd",
       R"(invalid time zone name "America/../../etc/passwd": "." and ".." are not allowed)"},
      {"./UTC", R"(invalid time zone name "./UTC": "." and ".." are not allowed)"},
      {"America//New_York", "invalid time zone name \"America//New_York\": empty path component"},
      {"America/", "invalid time zone name \"America/\": empty path component"},
      {"America/New York",
       "invalid time zone name \"America/New York\": only letters, digits, '_', '+', '-' and '/' "
       "are allowed"},
      {"Europe\\Berlin",
       "invalid time zone name \"Europe\\Berlin\": only letters, digits, '_', '+', '-' and '/' "
       "are allowed"},
      {"Europe/Berlin.bak",
       "invalid time zone name \"Europe/Berlin.bak\": only letters, digits, '_', '+', '-' and '/' "
       "are allowed"},
      {std::string(256, 'A'),
       "invalid time zone name \"" + std::string(256, 'A') + "\": longer than 255 characters"},
  };
  for (const auto& c : cases) {
    const auto tz = TimeZone::Load(c.name, "/usr/share/zoneinfo");
    ASSERT_FALSE(tz.has_value()) << c.name;
    EXPECT_EQ(tz.error(), c.message);
  }
}

TEST(TimeZoneLoad, UnknownZoneIsAnError) {
  const auto missing = TimeZone::Load("Mars/Olympus_Mons", "/usr/share/zoneinfo");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error(),
            "unknown time zone \"Mars/Olympus_Mons\" (no file "
            "/usr/share/zoneinfo/Mars/Olympus_Mons)");
  // A directory of zones is not a zone.
  const auto directory = TimeZone::Load("America", "/usr/share/zoneinfo");
  ASSERT_FALSE(directory.has_value());
  EXPECT_TRUE(directory.error().starts_with("unknown time zone \"America\"")) << directory.error();
  // Etc/GMT+5 is UTC-5 (the sign is POSIX's); '+' is allowed in names.
  EXPECT_EQ(MustLoad("Etc/GMT+5").OffsetAt(At("2026-01-01T00:00:00Z")), -5 * 3600);
}

TEST(TimeZoneLoad, ReadsTheDirectoryNamedByZoneinfo) {
  const std::filesystem::path dir = std::filesystem::path(testing::TempDir()) / "millrace_tz";
  std::filesystem::create_directories(dir / "Test");
  TzifSpec spec;
  spec.offsets = {5400};
  spec.footer = "<+0130>-1:30";
  {
    std::ofstream out(dir / "Test" / "Zone", std::ios::binary);
    out << BuildTzif(spec);
  }
  const char* saved = std::getenv("ZONEINFO");
  const std::string saved_value = saved != nullptr ? saved : "";
  setenv("ZONEINFO", dir.c_str(), 1);
  const auto tz = TimeZone::Load("Test/Zone");
  if (saved != nullptr) {
    setenv("ZONEINFO", saved_value.c_str(), 1);
  } else {
    unsetenv("ZONEINFO");
  }
  ASSERT_TRUE(tz.has_value()) << tz.error();
  EXPECT_EQ(tz->name(), "Test/Zone");
  EXPECT_EQ(tz->OffsetAt(At("2026-01-01T00:00:00Z")), 5400);
  std::filesystem::remove_all(dir);
}

// ---- Offsets and wall times of real zones ---------------------------------------------------

TEST(TimeZoneNewYork, OffsetsAroundTheTransitionsOf2026) {
  const TimeZone ny = MustLoad("America/New_York");
  // 2026-03-08 (second Sunday of March) 02:00 EST = 07:00Z: EST (-5h) -> EDT (-4h).
  EXPECT_EQ(ny.OffsetAt(At("2026-03-08T06:59:59Z")), -5 * 3600);
  EXPECT_EQ(ny.OffsetAt(At("2026-03-08T07:00:00Z")), -4 * 3600);
  // 2026-11-01 (first Sunday of November) 02:00 EDT = 06:00Z: EDT -> EST.
  EXPECT_EQ(ny.OffsetAt(At("2026-11-01T05:59:59Z")), -4 * 3600);
  EXPECT_EQ(ny.OffsetAt(At("2026-11-01T06:00:00Z")), -5 * 3600);
  // Before the first transition (1883-11-18 17:00Z) the first type applies: LMT, -4:56:02.
  EXPECT_EQ(ny.OffsetAt(At("1883-11-18T16:59:59Z")), -((4 * 3600) + (56 * 60) + 2));
  EXPECT_EQ(ny.OffsetAt(At("1883-11-18T17:00:00Z")), -5 * 3600);
  EXPECT_EQ(FormatTime(Time{ny.ToLocal(At("2026-07-01T16:00:00Z")).time_since_epoch()}),
            "2026-07-01T12:00:00Z");  // noon EDT, printed as if it were UTC
}

TEST(TimeZoneNewYork, FromLocalFindsGapsAndOverlaps) {
  const TimeZone ny = MustLoad("America/New_York");
  // 02:00-02:59 on 2026-03-08 do not exist; the gap ends at 03:00 EDT = 07:00Z.
  LocalMapping m = ny.FromLocal(Wall(2026, 3, 8, 2, 30));
  EXPECT_EQ(m.kind, Kind::kGap);
  EXPECT_EQ(FormatTime(m.first), "2026-03-08T07:00:00Z");
  m = ny.FromLocal(Wall(2026, 3, 8, 2, 0));
  EXPECT_EQ(m.kind, Kind::kGap);
  EXPECT_EQ(FormatTime(m.first), "2026-03-08T07:00:00Z");
  m = ny.FromLocal(Wall(2026, 3, 8, 1, 59));  // 01:59 EST
  EXPECT_EQ(m.kind, Kind::kUnique);
  EXPECT_EQ(FormatTime(m.first), "2026-03-08T06:59:00Z");
  m = ny.FromLocal(Wall(2026, 3, 8, 3, 0));  // 03:00 EDT
  EXPECT_EQ(m.kind, Kind::kUnique);
  EXPECT_EQ(FormatTime(m.first), "2026-03-08T07:00:00Z");
  // 01:00-01:59 on 2026-11-01 happen twice: 01:30 EDT = 05:30Z, then 01:30 EST = 06:30Z.
  m = ny.FromLocal(Wall(2026, 11, 1, 1, 30));
  EXPECT_EQ(m.kind, Kind::kOverlap);
  EXPECT_EQ(FormatTime(m.first), "2026-11-01T05:30:00Z");
  EXPECT_EQ(FormatTime(m.second), "2026-11-01T06:30:00Z");
  m = ny.FromLocal(Wall(2026, 11, 1, 0, 59));  // 00:59 EDT
  EXPECT_EQ(m.kind, Kind::kUnique);
  EXPECT_EQ(FormatTime(m.first), "2026-11-01T04:59:00Z");
  m = ny.FromLocal(Wall(2026, 11, 1, 2, 0));  // 02:00 EST
  EXPECT_EQ(m.kind, Kind::kUnique);
  EXPECT_EQ(FormatTime(m.first), "2026-11-01T07:00:00Z");
}

TEST(TimeZoneNewYork, FooterRuleAfterTheLastExplicitTransition) {
  // Footer EST5EDT,M3.2.0,M11.1.0. 2040-01-01 is a Sunday and 2040 is a leap year, so March 1 is a
  // Thursday (day 60) and November 1 a Thursday (day 305): DST runs from Sunday March 11 02:00
  // EST (07:00Z) to Sunday November 4 02:00 EDT (06:00Z).
  const TimeZone ny = MustLoad("America/New_York");
  EXPECT_EQ(ny.OffsetAt(At("2040-03-11T06:59:59Z")), -5 * 3600);
  EXPECT_EQ(ny.OffsetAt(At("2040-03-11T07:00:00Z")), -4 * 3600);
  EXPECT_EQ(ny.OffsetAt(At("2040-11-04T05:59:59Z")), -4 * 3600);
  EXPECT_EQ(ny.OffsetAt(At("2040-11-04T06:00:00Z")), -5 * 3600);
  const LocalMapping gap = ny.FromLocal(Wall(2040, 3, 11, 2, 30));
  EXPECT_EQ(gap.kind, Kind::kGap);
  EXPECT_EQ(FormatTime(gap.first), "2040-03-11T07:00:00Z");
  const LocalMapping overlap = ny.FromLocal(Wall(2040, 11, 4, 1, 30));
  EXPECT_EQ(overlap.kind, Kind::kOverlap);
  EXPECT_EQ(FormatTime(overlap.first), "2040-11-04T05:30:00Z");
  EXPECT_EQ(FormatTime(overlap.second), "2040-11-04T06:30:00Z");
}

TEST(TimeZoneBerlin, TransitionsOf2026) {
  // CET (+1h) -> CEST (+2h) on Sunday 2026-03-29 at 01:00Z, back on Sunday 2026-10-25 at 01:00Z.
  const TimeZone berlin = MustLoad("Europe/Berlin");
  EXPECT_EQ(berlin.OffsetAt(At("2026-03-29T00:59:59Z")), 3600);
  EXPECT_EQ(berlin.OffsetAt(At("2026-03-29T01:00:00Z")), 7200);
  EXPECT_EQ(berlin.OffsetAt(At("2026-10-25T00:59:59Z")), 7200);
  EXPECT_EQ(berlin.OffsetAt(At("2026-10-25T01:00:00Z")), 3600);
  EXPECT_EQ(FormatTime(berlin.FromLocal(Wall(2026, 3, 29, 2, 30)).first), "2026-03-29T01:00:00Z");
  const LocalMapping overlap = berlin.FromLocal(Wall(2026, 10, 25, 2, 30));
  EXPECT_EQ(overlap.kind, Kind::kOverlap);
  EXPECT_EQ(FormatTime(overlap.first), "2026-10-25T00:30:00Z");   // 02:30 CEST
  EXPECT_EQ(FormatTime(overlap.second), "2026-10-25T01:30:00Z");  // 02:30 CET
}

TEST(TimeZoneLordHowe, HalfHourDaylightSaving) {
  const TimeZone lh = MustLoad("Australia/Lord_Howe");
  // +10:30 standard, +11 daylight. 2026-04-01 is a Wednesday, so DST ends on Sunday April 5 at
  // 02:00 +11 = April 4 15:00Z, when clocks go back to 01:30: 01:30-01:59 happen twice.
  EXPECT_EQ(lh.OffsetAt(At("2026-04-04T14:59:59Z")), 11 * 3600);
  EXPECT_EQ(lh.OffsetAt(At("2026-04-04T15:00:00Z")), (10 * 3600) + 1800);
  const LocalMapping overlap = lh.FromLocal(Wall(2026, 4, 5, 1, 45));
  EXPECT_EQ(overlap.kind, Kind::kOverlap);
  EXPECT_EQ(FormatTime(overlap.first), "2026-04-04T14:45:00Z");   // 01:45 +11
  EXPECT_EQ(FormatTime(overlap.second), "2026-04-04T15:15:00Z");  // 01:45 +10:30
  // 2026-10-01 is a Thursday, so DST starts on Sunday October 4 at 02:00 +10:30 = October 3
  // 15:30Z, when clocks jump to 02:30: 02:00-02:29 do not exist.
  EXPECT_EQ(lh.OffsetAt(At("2026-10-03T15:29:59Z")), (10 * 3600) + 1800);
  EXPECT_EQ(lh.OffsetAt(At("2026-10-03T15:30:00Z")), 11 * 3600);
  const LocalMapping gap = lh.FromLocal(Wall(2026, 10, 4, 2, 15));
  EXPECT_EQ(gap.kind, Kind::kGap);
  EXPECT_EQ(FormatTime(gap.first), "2026-10-03T15:30:00Z");
  // 2040, from the footer <+1030>-10:30<+11>-11,M10.1.0,M4.1.0: April 1 2040 is a Sunday (day 92
  // of a year that starts on a Sunday), so DST ends on 2040-04-01 at 02:00 +11 = March 31 15:00Z.
  EXPECT_EQ(lh.OffsetAt(At("2040-03-31T14:59:59Z")), 11 * 3600);
  EXPECT_EQ(lh.OffsetAt(At("2040-03-31T15:00:00Z")), (10 * 3600) + 1800);
}

TEST(TimeZoneDublin, NegativeDaylightSavingFromTheFooter) {
  // Footer IST-1GMT0,M10.5.0,M3.5.0/1: standard time is IST (+1h) and "daylight" time is GMT
  // (+0h), from the last Sunday of October 02:00 IST to the last Sunday of March 01:00 GMT. In
  // 2040 (January 1 a Sunday, leap year) those are March 25 and October 28, both at 01:00Z.
  const TimeZone dublin = MustLoad("Europe/Dublin");
  EXPECT_EQ(dublin.OffsetAt(At("2040-03-25T00:59:59Z")), 0);
  EXPECT_EQ(dublin.OffsetAt(At("2040-03-25T01:00:00Z")), 3600);
  EXPECT_EQ(dublin.OffsetAt(At("2040-10-28T00:59:59Z")), 3600);
  EXPECT_EQ(dublin.OffsetAt(At("2040-10-28T01:00:00Z")), 0);
  const LocalMapping gap = dublin.FromLocal(Wall(2040, 3, 25, 1, 30));
  EXPECT_EQ(gap.kind, Kind::kGap);
  EXPECT_EQ(FormatTime(gap.first), "2040-03-25T01:00:00Z");
  const LocalMapping overlap = dublin.FromLocal(Wall(2040, 10, 28, 1, 30));
  EXPECT_EQ(overlap.kind, Kind::kOverlap);
  EXPECT_EQ(FormatTime(overlap.first), "2040-10-28T00:30:00Z");   // 01:30 IST
  EXPECT_EQ(FormatTime(overlap.second), "2040-10-28T01:30:00Z");  // 01:30 GMT
}

TEST(TimeZoneVersion3, RuleTimesBeyondTheDay) {
  // Asia/Jerusalem, a version 3 file: IST-2IDT,M3.4.4/26,M10.5.0. DST starts at "26:00" on the
  // fourth Thursday of March, i.e. Friday 02:00 IST: in 2040 (March 1 a Thursday) Thursday March
  // 22 + 26h = March 23 02:00 +2 = March 23 00:00Z. It ends on Sunday October 28 02:00 IDT (+3)
  // = October 27 23:00Z.
  const TimeZone jerusalem = MustLoad("Asia/Jerusalem");
  EXPECT_EQ(jerusalem.OffsetAt(At("2040-03-22T23:59:59Z")), 2 * 3600);
  EXPECT_EQ(jerusalem.OffsetAt(At("2040-03-23T00:00:00Z")), 3 * 3600);
  EXPECT_EQ(jerusalem.OffsetAt(At("2040-10-27T22:59:59Z")), 3 * 3600);
  EXPECT_EQ(jerusalem.OffsetAt(At("2040-10-27T23:00:00Z")), 2 * 3600);
  // America/Nuuk: <-02>2<-01>,M3.5.0/-1,M10.5.0/0. DST starts at "-1:00" on the last Sunday of
  // March, i.e. Saturday 23:00 -02: 2040-03-25 at -1:00 -02 = March 25 01:00Z. It ends on the
  // last Sunday of October at 00:00 -01 = October 28 01:00Z.
  const TimeZone nuuk = MustLoad("America/Nuuk");
  EXPECT_EQ(nuuk.OffsetAt(At("2040-03-25T00:59:59Z")), -2 * 3600);
  EXPECT_EQ(nuuk.OffsetAt(At("2040-03-25T01:00:00Z")), -1 * 3600);
  EXPECT_EQ(nuuk.OffsetAt(At("2040-10-28T00:59:59Z")), -1 * 3600);
  EXPECT_EQ(nuuk.OffsetAt(At("2040-10-28T01:00:00Z")), -2 * 3600);
  const LocalMapping gap = nuuk.FromLocal(Wall(2040, 3, 24, 23, 30));  // Saturday 23:30
  EXPECT_EQ(gap.kind, Kind::kGap);
  EXPECT_EQ(FormatTime(gap.first), "2040-03-25T01:00:00Z");
}

// ---- POSIX TZ rule forms, in hand-made footer-only files -------------------------------------

TEST(TimeZoneFooter, JulianDaysSkipFebruary29) {
  // AAA3BBB,J60/2,J300/2: UTC-3, DST UTC-2. Jn never counts February 29, so in leap year 2028
  // J60 is March 1 and J300 is October 27 (273 days to the end of September, as in any year).
  // Start: March 1 02:00 -03 = 05:00Z. End: October 27 02:00 -02 = 04:00Z.
  const TimeZone tz = FromFooter("AAA3BBB,J60/2,J300/2");
  EXPECT_EQ(tz.OffsetAt(At("2028-03-01T04:59:59Z")), -3 * 3600);
  EXPECT_EQ(tz.OffsetAt(At("2028-03-01T05:00:00Z")), -2 * 3600);
  EXPECT_EQ(tz.OffsetAt(At("2028-10-27T03:59:59Z")), -2 * 3600);
  EXPECT_EQ(tz.OffsetAt(At("2028-10-27T04:00:00Z")), -3 * 3600);
}

TEST(TimeZoneFooter, ZeroBasedDaysCountFebruary29) {
  // AAA3BBB,59/2,299/2: day 59 counted from 0 is February 29 in 2028 and March 1 in 2027.
  const TimeZone tz = FromFooter("AAA3BBB,59/2,299/2");
  EXPECT_EQ(tz.OffsetAt(At("2028-02-29T04:59:59Z")), -3 * 3600);
  EXPECT_EQ(tz.OffsetAt(At("2028-02-29T05:00:00Z")), -2 * 3600);
  EXPECT_EQ(tz.OffsetAt(At("2027-02-28T12:00:00Z")), -3 * 3600);
  EXPECT_EQ(tz.OffsetAt(At("2027-03-01T05:00:00Z")), -2 * 3600);
  // Day 299 of 2028 is October 26 (274 days to the end of September in a leap year): 02:00 -02.
  EXPECT_EQ(tz.OffsetAt(At("2028-10-26T03:59:59Z")), -2 * 3600);
  EXPECT_EQ(tz.OffsetAt(At("2028-10-26T04:00:00Z")), -3 * 3600);
}

TEST(TimeZoneFooter, DaylightSavingAllYear) {
  // Version 3's way to write permanent DST: starts January 1 00:00, ends December 31 25:00 DST,
  // which is the next start. It must be DST at every instant, including the year boundaries.
  const TimeZone tz = FromFooter("EST5EDT4,0/0,J365/25");
  for (const char* t : {"2030-01-01T04:59:59Z", "2030-01-01T05:00:00Z", "2030-07-01T00:00:00Z",
                        "2030-12-31T23:59:59Z", "2031-01-01T05:00:00Z"}) {
    EXPECT_EQ(tz.OffsetAt(At(t)), -4 * 3600) << t;
  }
  EXPECT_EQ(tz.FromLocal(Wall(2031, 1, 1, 0, 30)).kind, Kind::kUnique);
}

TEST(TimeZoneFooter, NoDaylightSavingAndOffsetsWithMinutes) {
  const TimeZone tehran = FromFooter("<+0330>-3:30");
  EXPECT_EQ(tehran.OffsetAt(At("2050-06-01T00:00:00Z")), (3 * 3600) + 1800);
  // Transitions given as explicit times, then a footer that ends DST for good.
  TzifSpec spec;
  spec.times = {At("2026-03-01T00:00:00Z").time_since_epoch().count()};
  spec.time_types = {1};
  spec.offsets = {3600, 7200};
  spec.footer = "<+02>-2";
  const auto tz = TimeZone::FromTzif("Test/Zone", BuildTzif(spec));
  ASSERT_TRUE(tz.has_value()) << tz.error();
  EXPECT_EQ(tz->OffsetAt(At("2026-02-28T23:59:59Z")), 3600);
  EXPECT_EQ(tz->OffsetAt(At("2026-03-01T00:00:00Z")), 7200);
  EXPECT_EQ(tz->OffsetAt(At("2099-01-01T00:00:00Z")), 7200);
}

TEST(TimeZoneFooter, RejectsMalformedTzStrings) {
  const struct {
    const char* footer;
    const char* why;
  } cases[] = {
      {"EST", "bad standard time offset"},
      {"E5", "bad standard time abbreviation"},
      {"<AB>5", "bad standard time abbreviation"},
      {"EST25", "bad standard time offset"},
      {"EST5EDT,M13.1.0,M11.1.0", "bad DST start rule"},
      {"EST5EDT,M3.6.0,M11.1.0", "bad DST start rule"},
      {"EST5EDT,M3.2.7,M11.1.0", "bad DST start rule"},
      {"EST5EDT,J0,M11.1.0", "bad DST start rule"},
      {"EST5EDT,366,M11.1.0", "bad DST start rule"},
      {"EST5EDT,M3.2.0/168,M11.1.0", "bad DST start rule"},
      {"EST5EDT,M3.2.0", "expected ',' before the DST end rule"},
      {"EST5EDT,M3.2.0,M11.1.0,", "unexpected text after the DST end rule"},
      {"EST5EDT;M3.2.0,M11.1.0", "bad daylight time offset"},
      {"EST5EDT4;M3.2.0,M11.1.0", "expected ',' before the DST start rule"},
  };
  for (const auto& c : cases) {
    TzifSpec spec;
    spec.offsets = {0};
    spec.footer = c.footer;
    const auto tz = TimeZone::FromTzif("Test/Zone", BuildTzif(spec));
    ASSERT_FALSE(tz.has_value()) << c.footer;
    EXPECT_EQ(tz.error(), "time zone \"Test/Zone\": invalid footer TZ string \"" +
                              std::string(c.footer) + "\": " + c.why);
  }
}

// ---- TZif structure ----------------------------------------------------------------------------

TEST(TimeZoneTzif, ReadsVersion1Files) {
  // Version 1: 32-bit times and no footer, so the last type holds for ever.
  TzifSpec spec;
  spec.version = '\0';
  spec.times = {1000000000};  // 2001-09-09T01:46:40Z
  spec.time_types = {1};
  spec.offsets = {0, 3600};
  const auto tz = TimeZone::FromTzif("Test/V1", BuildTzif(spec));
  ASSERT_TRUE(tz.has_value()) << tz.error();
  EXPECT_EQ(tz->OffsetAt(At("2001-09-09T01:46:39Z")), 0);
  EXPECT_EQ(tz->OffsetAt(At("2001-09-09T01:46:40Z")), 3600);
  EXPECT_EQ(tz->OffsetAt(At("2060-01-01T00:00:00Z")), 3600);
}

TEST(TimeZoneTzif, RejectsMalformedFiles) {
  TzifSpec good;
  good.times = {100, 200};
  good.time_types = {1, 0};
  good.offsets = {0, 3600};
  const std::string valid = BuildTzif(good);
  ASSERT_TRUE(TimeZone::FromTzif("T", valid).has_value());

  TzifSpec descending = good;
  descending.times = {200, 100};
  TzifSpec bad_index = good;
  bad_index.time_types = {2, 0};
  TzifSpec bad_offset = good;
  bad_offset.offsets = {0, 26 * 3600};
  TzifSpec leap = good;
  leap.leap_count = 1;
  std::string bad_version = valid;
  bad_version[4] = '1';
  const struct {
    std::string bytes;
    const char* message;
  } cases[] = {
      {"", "truncated header"},
      {"TZjf" + valid.substr(4), "not a TZif file"},
      {bad_version, "unsupported TZif version"},
      {valid.substr(0, 60), "truncated data"},
      {valid.substr(0, valid.size() - 20), "truncated data"},
      {valid.substr(0, valid.size() - 1), "missing footer"},
      {BuildTzif(descending), "transition times are not ascending"},
      {BuildTzif(bad_index), "transition type index out of range"},
      {BuildTzif(bad_offset), "UT offset out of range"},
      {BuildTzif(leap),
       "has leap seconds (a \"right/\" zone); only zones without leap seconds are supported"},
  };
  for (const auto& c : cases) {
    const auto tz = TimeZone::FromTzif("T", c.bytes);
    ASSERT_FALSE(tz.has_value()) << c.message;
    EXPECT_EQ(tz.error(), std::string("time zone \"T\": ") + c.message);
  }
}

}  // namespace
}  // namespace millrace::api
