#include "crds/duration.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <limits>

namespace millrace::api {
namespace {

struct Unit {
  std::string_view name;
  int64_t nanos;
};
// Longest names first so "ms" is not read as "m".
constexpr std::array<Unit, 8> kUnits{{{"ns", 1},
                                      {"us", 1000},
                                      {"\xc2\xb5s", 1000},  // µs (U+00B5)
                                      {"\xce\xbcs", 1000},  // μs (U+03BC)
                                      {"ms", 1000000},
                                      {"s", 1000000000},
                                      {"m", 60LL * 1000000000},
                                      {"h", 3600LL * 1000000000}}};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::expected<std::chrono::nanoseconds, std::string> ParseDuration(std::string_view text) {
  const std::string quoted = "invalid duration \"" + std::string(text) + "\"";
  std::string_view s = text;
  const bool negative = s.starts_with('-');
  if (negative || s.starts_with('+')) s.remove_prefix(1);
  if (s == "0") return std::chrono::nanoseconds{0};
  if (s.empty()) return std::unexpected(quoted);
  // Accumulate in unsigned 64 bits like Go, which allows exactly up to 2^63 (for the minimum).
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t total = 0;
  while (!s.empty()) {
    uint64_t whole = 0;
    size_t i = 0;
    bool any_digit = false;
    for (; i < s.size() && IsDigit(s[i]); ++i) {
      any_digit = true;
      if (whole > (kMax + 1) / 10) return std::unexpected(quoted + ": too large");
      whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
      if (whole > kMax + 1) return std::unexpected(quoted + ": too large");
    }
    uint64_t frac = 0;
    uint64_t frac_scale = 1;
    if (i < s.size() && s[i] == '.') {
      ++i;
      for (; i < s.size() && IsDigit(s[i]); ++i) {
        any_digit = true;
        if (frac_scale < 1000000000000000000ULL) {  // keep 18 digits, ignore the rest
          frac = frac * 10 + static_cast<uint64_t>(s[i] - '0');
          frac_scale *= 10;
        }
      }
    }
    if (!any_digit) return std::unexpected(quoted);
    s.remove_prefix(i);
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (s.starts_with(u.name) && (unit == nullptr || u.name.size() > unit->name.size()))
        unit = &u;
    }
    if (unit == nullptr) {
      return std::unexpected(s.empty() ? quoted + ": missing unit" : quoted + ": unknown unit");
    }
    s.remove_prefix(unit->name.size());
    const auto per = static_cast<uint64_t>(unit->nanos);
    if (whole > (kMax + 1) / per) return std::unexpected(quoted + ": too large");
    uint64_t v = whole * per;
    // frac / frac_scale * per, without overflow: per <= 3.6e12 and frac_scale <= 1e18.
    const long double part = static_cast<long double>(frac) * static_cast<long double>(per) /
                             static_cast<long double>(frac_scale);
    v += static_cast<uint64_t>(part);
    if (v > kMax + 1 || total > kMax + 1 - v) return std::unexpected(quoted + ": too large");
    total += v;
  }
  if (!negative && total > kMax) return std::unexpected(quoted + ": too large");
  if (negative) {
    if (total == kMax + 1) return std::chrono::nanoseconds{std::numeric_limits<int64_t>::min()};
    return std::chrono::nanoseconds{-static_cast<int64_t>(total)};
  }
  return std::chrono::nanoseconds{static_cast<int64_t>(total)};
}

namespace {

// Appends v / 10^prec with trailing zeros (and a bare '.') removed, like Go's fmtFrac+fmtInt.
std::string FracString(uint64_t v, int prec) {
  std::string frac;
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    const auto digit = static_cast<char>('0' + (v % 10));
    print = print || digit != '0';
    if (print) frac.insert(frac.begin(), digit);
    v /= 10;
  }
  std::string out = std::to_string(v);
  if (!frac.empty()) out += "." + frac;
  return out;
}

}  // namespace

std::string FormatDuration(std::chrono::nanoseconds d) {
  const int64_t n = d.count();
  if (n == 0) return "0s";
  const bool negative = n < 0;
  // Magnitude as unsigned, valid for the minimum too.
  const uint64_t u = negative ? static_cast<uint64_t>(-(n + 1)) + 1 : static_cast<uint64_t>(n);
  std::string out;
  if (u < 1000000000ULL) {
    if (u < 1000) {
      out = std::to_string(u) + "ns";
    } else if (u < 1000000) {
      out = FracString(u, 3) + "\xc2\xb5s";
    } else {
      out = FracString(u, 6) + "ms";
    }
  } else {
    const uint64_t secs_nanos = u % 60000000000ULL;
    const uint64_t minutes_total = u / 60000000000ULL;
    out = FracString(secs_nanos, 9) + "s";
    if (minutes_total > 0) {
      out = std::to_string(minutes_total % 60) + "m" + out;
      if (minutes_total >= 60) out = std::to_string(minutes_total / 60) + "h" + out;
    }
  }
  return negative ? "-" + out : out;
}

std::expected<Duration, std::string> Duration::Parse(std::string_view text) {
  auto d = ParseDuration(text);
  if (!d) return std::unexpected(d.error());
  return Duration{*d, std::string(text)};
}

namespace {

bool ReadInt(std::string_view s, size_t pos, size_t len, int& out) {
  if (pos + len > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + len; ++i) {
    if (!IsDigit(s[i])) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::expected<Time, std::string> ParseTime(std::string_view text) {
  const auto bad = [&] {
    return std::unexpected("invalid time \"" + std::string(text) + "\": want RFC 3339");
  };
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (text.size() < 20 || !ReadInt(text, 0, 4, year) || text[4] != '-' ||
      !ReadInt(text, 5, 2, month) || text[7] != '-' || !ReadInt(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !ReadInt(text, 11, 2, hour) ||
      text[13] != ':' || !ReadInt(text, 14, 2, minute) || text[16] != ':' ||
      !ReadInt(text, 17, 2, second)) {
    return bad();
  }
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < text.size() && IsDigit(text[pos])) ++pos;
    if (pos == start) return bad();
  }
  std::chrono::seconds offset{0};
  const std::string_view zone = text.substr(pos);
  if (zone == "Z" || zone == "z") {
    // UTC
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    int oh = 0;
    int om = 0;
    if (!ReadInt(zone, 1, 2, oh) || !ReadInt(zone, 4, 2, om) || oh > 23 || om > 59) return bad();
    offset = std::chrono::hours(oh) + std::chrono::minutes(om);
    if (zone[0] == '-') offset = -offset;
  } else {
    return bad();
  }
  const std::chrono::year_month_day ymd{std::chrono::year(year),
                                        std::chrono::month(static_cast<unsigned>(month)),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return bad();
  return Time{std::chrono::sys_days(ymd)} + std::chrono::hours(hour) +
         std::chrono::minutes(minute) + std::chrono::seconds(second) - offset;
}

std::string FormatTime(Time t) {
  const auto days = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss hms{t - days};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

}  // namespace millrace::api
