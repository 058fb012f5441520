#include "crds/cron.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <span>

namespace millrace::api::cron {
namespace {

using std::chrono::days;
using std::chrono::local_days;
using std::chrono::local_seconds;
using std::chrono::minutes;
using std::chrono::year_month_day;

constexpr std::array<std::string_view, 12> kMonthNames{"jan", "feb", "mar", "apr", "may", "jun",
                                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kDayNames{"sun", "mon", "tue", "wed",
                                                    "thu", "fri", "sat"};

// One of the five fields. '*' covers min..max; values up to max_written are accepted (7 is
// Sunday in day-of-week). names[i] stands for min + i.
struct Field {
  std::string_view name;
  int min = 0;
  int max = 0;
  int max_written = 0;
  std::span<const std::string_view> names;
  std::string_view names_are;  // "a month name": for the error message
  bool is_day = false;         // a day field: '?' means '*'
  bool seven_is_sunday = false;
};

constexpr Field kMinute{"minute", 0, 59, 59, {}, "", false, false};
constexpr Field kHour{"hour", 0, 23, 23, {}, "", false, false};
constexpr Field kDayOfMonth{"day-of-month", 1, 31, 31, {}, "", true, false};
constexpr Field kMonth{"month", 1, 12, 12, kMonthNames, "a month name", false, false};
constexpr Field kDayOfWeek{"day-of-week", 0, 6, 7, kDayNames, "a day name", true, true};

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool IsDigits(std::string_view s) {
  return !s.empty() && std::ranges::all_of(s, [](char c) { return c >= '0' && c <= '9'; });
}

// Digits only, checked by the caller. More than 4 digits is out of range for every field and step,
// so 10000 stands for all of them (and nothing overflows).
int SmallNumber(std::string_view digits) {
  if (digits.size() > 4) return 10000;
  int value = 0;
  for (const char c : digits) value = value * 10 + (c - '0');
  return value;
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// A number or a name of the field.
std::expected<int, std::string> ParseValue(const Field& field, std::string_view text) {
  if (IsDigits(text)) {
    const int value = SmallNumber(text);
    if (value < field.min || value > field.max_written) {
      return std::unexpected(std::string(text) + " is out of range " + std::to_string(field.min) +
                             "-" + std::to_string(field.max_written));
    }
    return value;
  }
  for (size_t i = 0; i < field.names.size(); ++i) {
    if (EqualsIgnoringCase(text, field.names[i])) return field.min + static_cast<int>(i);
  }
  if (field.names.empty()) return std::unexpected(Quoted(text) + " is not a number");
  return std::unexpected(Quoted(text) + " is not a number or " + std::string(field.names_are));
}

// One list element: "*", "?", "a", "a-b", each with an optional "/step". Returns its bits.
std::expected<uint64_t, std::string> ParseElement(const Field& field, std::string_view element) {
  const size_t slash = element.find('/');
  const std::string_view range = element.substr(0, slash);
  const bool has_step = slash != std::string_view::npos;
  int low = field.min;
  int high = field.max;
  if (range == "?" && !field.is_day)
    return std::unexpected("'?' is only allowed in day-of-month and day-of-week");
  if (range != "*" && range != "?") {
    const size_t dash = range.find('-');
    const std::string_view first = range.substr(0, dash);
    const std::string_view last =
        dash == std::string_view::npos ? std::string_view() : range.substr(dash + 1);
    if (first.empty() || (dash != std::string_view::npos &&
                          (last.empty() || last.find('-') != std::string_view::npos)))
      return std::unexpected(Quoted(element) + " is not a value, range or step");
    const auto a = ParseValue(field, first);
    if (!a) return std::unexpected(a.error());
    low = *a;
    high = *a;
    if (dash != std::string_view::npos) {
      const auto b = ParseValue(field, last);
      if (!b) return std::unexpected(b.error());
      high = *b;
      if (low > high) {
        return std::unexpected("range " + std::string(range) +
                               " is backwards (its start is after its end)");
      }
    } else if (has_step) {
      high = std::max(field.max, low);  // "a/n" is "a-max/n"
    }
  }
  int step = 1;
  if (has_step) {
    const std::string_view step_text = element.substr(slash + 1);
    if (!IsDigits(step_text))
      return std::unexpected("step " + Quoted(step_text) + " in " + Quoted(element) +
                             " is not a number");
    step = SmallNumber(step_text);
    if (step == 0) return std::unexpected("step 0 in " + Quoted(element) + " must be at least 1");
  }
  uint64_t bits = 0;
  for (int v = low; v <= high; v += step) {
    const int bit = (field.seven_is_sunday && v == 7) ? 0 : v;
    bits |= uint64_t{1} << static_cast<unsigned>(bit);
  }
  return bits;
}

std::expected<uint64_t, std::string> ParseField(const Field& field, std::string_view text) {
  uint64_t bits = 0;
  std::string_view rest = text;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view element = rest.substr(0, comma);
    if (element.empty()) {
      return std::unexpected(std::string(field.name) + ": empty list element in " + Quoted(text));
    }
    const auto element_bits = ParseElement(field, element);
    if (!element_bits)
      return std::unexpected(std::string(field.name) + ": " + element_bits.error());
    bits |= *element_bits;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return bits;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::vector<std::string_view> SplitFields(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && IsSpace(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !IsSpace(text[i])) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  return fields;
}

struct Macro {
  std::string_view name;
  std::string_view expansion;
};
constexpr std::array<Macro, 7> kMacros{{{"@yearly", "0 0 1 1 *"},
                                        {"@annually", "0 0 1 1 *"},
                                        {"@monthly", "0 0 1 * *"},
                                        {"@weekly", "0 0 * * 0"},
                                        {"@daily", "0 0 * * *"},
                                        {"@midnight", "0 0 * * *"},
                                        {"@hourly", "0 * * * *"}}};

bool StartsWithStar(std::string_view field) {
  return field.starts_with('*') || field.starts_with('?');
}

bool DayMatches(const Schedule& s, const year_month_day& date, std::chrono::weekday weekday) {
  const bool dom = s.days_of_month[static_cast<unsigned>(date.day())];
  const bool dow = s.days_of_week[weekday.c_encoding()];
  if (s.day_of_month_star || s.day_of_week_star) return dom && dow;
  return dom || dow;
}

// The first wall time at or after from (rounded up to a minute) that the schedule matches, if it
// is on or before the day limit. Skips months and days that cannot match.
std::optional<local_seconds> NextMatch(const Schedule& s, local_seconds from, local_days limit) {
  const auto start = std::chrono::ceil<minutes>(from);
  local_days date = std::chrono::floor<days>(start);
  auto minute_of_day = static_cast<int>((start - date).count());
  while (date <= limit) {
    const year_month_day ymd{date};
    if (!s.months[static_cast<unsigned>(ymd.month())]) {
      date = local_days{year_month_day{ymd.year(), ymd.month(), std::chrono::day{1}} +
                        std::chrono::months{1}};
      minute_of_day = 0;
      continue;
    }
    if (DayMatches(s, ymd, std::chrono::weekday{date})) {
      const int first_hour = minute_of_day / 60;
      for (int h = first_hour; h < 24; ++h) {
        if (!s.hours[static_cast<size_t>(h)]) continue;
        for (int m = h == first_hour ? minute_of_day % 60 : 0; m < 60; ++m) {
          if (s.minutes[static_cast<size_t>(m)])
            return local_seconds{date} + std::chrono::hours{h} + minutes{m};
        }
      }
    }
    date += days{1};
    minute_of_day = 0;
  }
  return std::nullopt;
}

}  // namespace

std::expected<Schedule, std::string> Parse(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  if (text.empty()) {
    return std::unexpected(
        "empty schedule: expected 5 fields (minute hour day-of-month month day-of-week) or a "
        "macro such as @daily");
  }
  if (text.starts_with("TZ=") || text.starts_with("CRON_TZ=")) {
    return std::unexpected(
        "TZ= and CRON_TZ= prefixes are not supported: set the time zone in the time-zone field "
        "instead");
  }
  if (text.starts_with('@')) {
    for (const Macro& macro : kMacros) {
      if (text == macro.name) return Parse(macro.expansion);
    }
    return std::unexpected("unknown macro " + Quoted(text) +
                           ": expected one of @yearly, @annually, @monthly, @weekly, @daily, "
                           "@midnight, @hourly");
  }
  const std::vector<std::string_view> fields = SplitFields(text);
  if (fields.size() != 5) {
    std::string message = "expected 5 fields (minute hour day-of-month month day-of-week), got " +
                          std::to_string(fields.size());
    if (fields.size() == 6) message += ": a seconds field is not supported";
    return std::unexpected(message);
  }
  const std::array<const Field*, 5> kinds{&kMinute, &kHour, &kDayOfMonth, &kMonth, &kDayOfWeek};
  std::array<uint64_t, 5> bits{};
  for (size_t i = 0; i < 5; ++i) {
    auto field_bits = ParseField(*kinds[i], fields[i]);
    if (!field_bits) return std::unexpected(field_bits.error());
    bits[i] = *field_bits;
  }
  Schedule s;
  s.minutes = bits[0];
  s.hours = bits[1];
  s.days_of_month = bits[2];
  s.months = bits[3];
  s.days_of_week = bits[4];
  s.day_of_month_star = StartsWithStar(fields[2]);
  s.day_of_week_star = StartsWithStar(fields[4]);
  return s;
}

std::optional<Time> Next(const Schedule& schedule, const TimeZone& zone, Time after) {
  constexpr Time kFirst{std::chrono::sys_days{std::chrono::year{1} / 1 / 1}};
  constexpr Time kLast{std::chrono::sys_days{std::chrono::year{10000} / 1 / 1}};
  if (after < kFirst || after >= kLast) return std::nullopt;
  const local_seconds wall = zone.ToLocal(after);
  const local_days limit = std::chrono::floor<days>(wall) + days{5 * 366};
  // A wall time at or before the clock's at `after` was first shown at or before it, so the
  // search starts just after; from there the firing instants only grow with the wall time. The
  // candidates skipped by the loop are the repeated wall times of a fall-back overlap.
  std::optional<local_seconds> candidate =
      NextMatch(schedule, wall + std::chrono::seconds{1}, limit);
  while (candidate) {
    const Time fires = zone.FromLocal(*candidate).first;
    if (fires > after) return fires;
    candidate = NextMatch(schedule, *candidate + minutes{1}, limit);
  }
  return std::nullopt;
}

std::vector<Time> Between(const Schedule& schedule, const TimeZone& zone, Time after, Time until,
                          size_t max_count) {
  std::vector<Time> out;
  Time from = after;
  while (out.size() < max_count && from < until) {
    const std::optional<Time> next = Next(schedule, zone, from);
    if (!next || *next > until) break;
    out.push_back(*next);
    from = *next;
  }
  return out;
}

}  // namespace millrace::api::cron
