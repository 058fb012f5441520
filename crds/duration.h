#pragma once

#include <chrono>
#include <expected>
#include <string>
#include <string_view>

namespace millrace::api {

// Parses a Go duration ("1h30m", "90s", "500ms", "1.5h", "2h45m30.5s"; units ns, us, µs, ms, s, m,
// h; an optional leading sign; "0" alone). Returns a message on error or overflow.
std::expected<std::chrono::nanoseconds, std::string> ParseDuration(std::string_view text);

// Formats like Go's time.Duration.String(): "1h30m0s", "1m30s", "500ms", "1.5µs", "0s".
std::string FormatDuration(std::chrono::nanoseconds d);

// A duration field: the value and the text it was written as (kept so that a read-modify-write
// round trip does not rewrite "90s" as "1m30s").
struct Duration {
  std::chrono::nanoseconds value{0};
  std::string text;

  static std::expected<Duration, std::string> Parse(std::string_view text);
  static Duration From(std::chrono::nanoseconds d) { return {d, FormatDuration(d)}; }

  bool operator==(const Duration& other) const { return value == other.value; }
  auto operator<=>(const Duration& other) const { return value <=> other.value; }
};

// metav1.Time: RFC 3339 in UTC with second precision ("2026-11-22T09:00:00Z").
using Time = std::chrono::sys_seconds;
// Accepts "Z" or a numeric offset, and drops fractional seconds.
std::expected<Time, std::string> ParseTime(std::string_view text);
std::string FormatTime(Time t);

}  // namespace millrace::api
