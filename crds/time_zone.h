#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crds/duration.h"

// IANA time zones read from TZif files (RFC 8536), for schedules that are wall-clock times in a
// zone (crds/cron.h). Pure apart from Load(), which reads one file; no global state, no cache: a
// caller that converts often keeps its TimeZone (it is a plain copyable value of a few KiB).
namespace millrace::api {

// How one local wall time maps to instants, like std::chrono::local_info.
struct LocalMapping {
  enum class Kind : uint8_t {
    kUnique,   // the wall time occurs once
    kGap,      // skipped by a forward transition (spring forward)
    kOverlap,  // occurs twice because of a backward transition (fall back)
  };
  Kind kind = Kind::kUnique;
  // kUnique: the instant. kOverlap: the earlier of the two instants. kGap: the end of the gap,
  // i.e. the transition instant, the first instant whose wall time is later than the one asked.
  // In all three cases this is the first instant at which the zone's clock shows that wall time
  // or a later one.
  Time first{};
  // kOverlap: the later instant. Otherwise equal to first.
  Time second{};
};

// The rule of a POSIX TZ string, as in a TZif footer ("EST5EDT,M3.2.0,M11.1.0"): used for the
// instants after a file's last transition.
struct PosixTzRule {
  struct Date {
    enum class Form : uint8_t {
      kJulianNoLeap,  // Jn: day n in 1..365, February 29 never counted
      kDayOfYear,     // n: day n in 0..365 counted from 0, February 29 counted
      kMonthWeekDay,  // Mm.w.d: weekday d (0 = Sunday) of week w (5 = last) of month m
    };
    Form form = Form::kMonthWeekDay;
    int day_number = 0;  // n of Jn and n
    int month = 0;       // m, w, d of Mm.w.d
    int week = 0;
    int weekday = 0;
    // Seconds after local midnight: -167h..167h since version 3 (e.g. "M3.4.4/26"); default 2h.
    int32_t time = 7200;
  };
  int32_t std_offset = 0;  // UTC offset, east positive (the string writes it negated: EST5)
  bool has_dst = false;
  int32_t dst_offset = 0;  // may be below std_offset (Europe/Dublin's negative DST)
  Date start;              // when DST starts, in standard local time
  Date end;                // when DST ends, in daylight local time
};

class TimeZone {
 public:
  // Reads <dir>/<name> where dir is $ZONEINFO if set, else /usr/share/zoneinfo. "UTC" and
  // "Etc/UTC" need no file. Names must look like IANA names: [A-Za-z0-9_+-] components joined by
  // '/', not absolute, no "." or ".." components, at most 255 characters. Errors name the zone
  // and say what is wrong (bad name, unknown zone, malformed file).
  static std::expected<TimeZone, std::string> Load(std::string_view name);
  // Same, reading from dir instead of $ZONEINFO (tests, and callers that ship their own tzdata).
  static std::expected<TimeZone, std::string> Load(std::string_view name,
                                                   const std::filesystem::path& dir);
  // Parses the contents of a TZif file (versions 1 to 4; for version 2 and later the 64-bit data
  // and the footer's POSIX TZ string are used). Files with leap seconds ("right/" zones) are
  // rejected: Time counts POSIX seconds, which have none.
  static std::expected<TimeZone, std::string> FromTzif(std::string_view name,
                                                       std::string_view bytes);
  static TimeZone Utc();

  const std::string& name() const { return name_; }

  // Instants and wall times passed in must be within the years 1 to 9999 (cron::Next checks);
  // the arithmetic is not guarded against int64 overflow near Time::min() and Time::max().
  //
  // The UTC offset in seconds (east positive) in effect at t.
  int32_t OffsetAt(Time t) const;
  // The wall time at t.
  std::chrono::local_seconds ToLocal(Time t) const;
  // The instants at which the zone's clock shows local: every transition within 27 hours of local
  // is looked at (offsets are within +-26 hours, checked when loading).
  LocalMapping FromLocal(std::chrono::local_seconds local) const;

 private:
  int32_t OffsetAtSeconds(int64_t t) const;
  // The instants in (lo, hi] at which the offset may change, ascending (may hold duplicates).
  std::vector<int64_t> ChangesIn(int64_t lo, int64_t hi) const;

  std::string name_;
  std::vector<int64_t> transitions_;       // UTC seconds, strictly ascending
  std::vector<uint8_t> transition_types_;  // index into type_offsets_, one per transition
  std::vector<int32_t> type_offsets_;      // UTC offset of each local time type; never empty
  std::optional<PosixTzRule> footer_;      // for instants after the last transition (or all)
};

}  // namespace millrace::api
