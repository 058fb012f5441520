#include "crds/time_zone.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <system_error>
#include <utility>

namespace millrace::api {
namespace {

using std::chrono::days;
using std::chrono::local_days;
using std::chrono::seconds;
using std::chrono::sys_seconds;

constexpr int64_t kSecondsPerDay = 86400;
// RFC 8536 asks writers to keep UT offsets within -89999..93599 seconds (about -25h..+26h);
// FromLocal relies on a bound, so offsets outside +-26h are rejected.
constexpr int32_t kMaxOffset = (26 * 3600) - 1;
// TZif files are a few KiB; this only keeps a wrong path from being read into memory whole.
constexpr size_t kMaxFileSize = 1 << 20;

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// ---- POSIX TZ strings (RFC 8536 section 3.3, POSIX.1-2017 section 8.3) ------------------------

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// Reads 1 to max_digits digits; nullopt if there are none.
std::optional<int> ReadNumber(std::string_view& s, size_t max_digits) {
  int value = 0;
  size_t n = 0;
  while (n < s.size() && n < max_digits && IsDigit(s[n])) {
    value = value * 10 + (s[n] - '0');
    ++n;
  }
  if (n == 0) return std::nullopt;
  s.remove_prefix(n);
  return value;
}

// A zone abbreviation: three or more letters, or <...> with letters, digits, '+' and '-'.
bool SkipAbbreviation(std::string_view& s) {
  size_t n = 0;
  if (s.starts_with('<')) {
    const size_t close = s.find('>');
    if (close == std::string_view::npos || close < 4) return false;
    for (size_t i = 1; i < close; ++i) {
      const char c = s[i];
      if (!IsAlpha(c) && !IsDigit(c) && c != '+' && c != '-') return false;
    }
    n = close + 1;
  } else {
    while (n < s.size() && IsAlpha(s[n])) ++n;
    if (n < 3) return false;
  }
  s.remove_prefix(n);
  return true;
}

// [+-]hh[:mm[:ss]] with hh <= max_hours; returns seconds with the sign as written.
std::optional<int32_t> ReadSignedHms(std::string_view& s, int max_hours) {
  int sign = 1;
  if (s.starts_with('+') || s.starts_with('-')) {
    if (s.front() == '-') sign = -1;
    s.remove_prefix(1);
  }
  const auto hours = ReadNumber(s, 3);
  if (!hours || *hours > max_hours) return std::nullopt;
  int minutes = 0;
  int secs = 0;
  if (s.starts_with(':')) {
    s.remove_prefix(1);
    const auto m = ReadNumber(s, 2);
    if (!m || *m > 59) return std::nullopt;
    minutes = *m;
    if (s.starts_with(':')) {
      s.remove_prefix(1);
      const auto sec = ReadNumber(s, 2);
      if (!sec || *sec > 59) return std::nullopt;
      secs = *sec;
    }
  }
  return sign * (*hours * 3600 + minutes * 60 + secs);
}

// Jn, n or Mm.w.d, then an optional /time (version 3 allows -167..167 hours).
std::optional<PosixTzRule::Date> ReadRuleDate(std::string_view& s) {
  using Form = PosixTzRule::Date::Form;
  PosixTzRule::Date date;
  if (s.starts_with('J')) {
    s.remove_prefix(1);
    const auto n = ReadNumber(s, 3);
    if (!n || *n < 1 || *n > 365) return std::nullopt;
    date.form = Form::kJulianNoLeap;
    date.day_number = *n;
  } else if (s.starts_with('M')) {
    s.remove_prefix(1);
    const auto m = ReadNumber(s, 2);
    if (!m || *m < 1 || *m > 12 || !s.starts_with('.')) return std::nullopt;
    s.remove_prefix(1);
    const auto w = ReadNumber(s, 1);
    if (!w || *w < 1 || *w > 5 || !s.starts_with('.')) return std::nullopt;
    s.remove_prefix(1);
    const auto d = ReadNumber(s, 1);
    if (!d || *d > 6) return std::nullopt;
    date.form = Form::kMonthWeekDay;
    date.month = *m;
    date.week = *w;
    date.weekday = *d;
  } else {
    const auto n = ReadNumber(s, 3);
    if (!n || *n > 365) return std::nullopt;
    date.form = Form::kDayOfYear;
    date.day_number = *n;
  }
  if (s.starts_with('/')) {
    s.remove_prefix(1);
    const auto t = ReadSignedHms(s, 167);
    if (!t) return std::nullopt;
    date.time = *t;
  }
  return date;
}

std::expected<PosixTzRule, std::string> ParsePosixTz(std::string_view text) {
  const auto fail = [&](std::string_view why) {
    return std::unexpected("invalid footer TZ string " + Quoted(text) + ": " + std::string(why));
  };
  std::string_view s = text;
  PosixTzRule rule;
  if (!SkipAbbreviation(s)) return fail("bad standard time abbreviation");
  // POSIX offsets are hours west of Greenwich: "EST5" is UTC-5.
  const auto std_west = ReadSignedHms(s, 24);
  if (!std_west) return fail("bad standard time offset");
  rule.std_offset = -*std_west;
  if (s.empty()) return rule;
  if (!SkipAbbreviation(s)) return fail("bad daylight time abbreviation");
  rule.has_dst = true;
  rule.dst_offset = rule.std_offset + 3600;  // one hour ahead unless written
  if (!s.empty() && !s.starts_with(',')) {
    const auto dst_west = ReadSignedHms(s, 24);
    if (!dst_west) return fail("bad daylight time offset");
    rule.dst_offset = -*dst_west;
  }
  // Without a rule, tzcode falls back to the US rule; zic never writes such a footer.
  std::string_view rules = s.empty() ? std::string_view(",M3.2.0,M11.1.0") : s;
  if (!rules.starts_with(',')) return fail("expected ',' before the DST start rule");
  rules.remove_prefix(1);
  const auto start = ReadRuleDate(rules);
  if (!start) return fail("bad DST start rule");
  if (!rules.starts_with(',')) return fail("expected ',' before the DST end rule");
  rules.remove_prefix(1);
  const auto end = ReadRuleDate(rules);
  if (!end) return fail("bad DST end rule");
  if (!rules.empty()) return fail("unexpected text after the DST end rule");
  rule.start = *start;
  rule.end = *end;
  return rule;
}

// The UTC year of t, clamped to 1..9999 so that instants near the limits of int64 seconds give a
// defined (if meaningless) answer instead of overflowing the calendar arithmetic.
int YearOf(int64_t t) {
  constexpr int64_t kFirst = -62135596800;  // 0001-01-01T00:00:00Z
  constexpr int64_t kLast = 253402300799;   // 9999-12-31T23:59:59Z
  const auto day = std::chrono::floor<days>(sys_seconds{seconds{std::clamp(t, kFirst, kLast)}});
  return static_cast<int>(std::chrono::year_month_day{day}.year());
}

local_days DayOf(const PosixTzRule::Date& date, int year) {
  using Form = PosixTzRule::Date::Form;
  const std::chrono::year y{year};
  const local_days jan1{y / std::chrono::January / 1};
  switch (date.form) {
    case Form::kJulianNoLeap: {
      // J60 is March 1 in every year: February 29 is skipped.
      const int leap_day = (y.is_leap() && date.day_number >= 60) ? 1 : 0;
      return jan1 + days{date.day_number - 1 + leap_day};
    }
    case Form::kDayOfYear:
      return jan1 + days{date.day_number};
    case Form::kMonthWeekDay:
      break;
  }
  const std::chrono::month m{static_cast<unsigned>(date.month)};
  const std::chrono::weekday wd{static_cast<unsigned>(date.weekday)};
  if (date.week == 5) return local_days{y / m / wd[std::chrono::last]};
  return local_days{y / m / wd[static_cast<unsigned>(date.week)]};
}

// The instant of a rule date in a year; its time is wall time at the offset in effect before.
int64_t RuleInstant(const PosixTzRule::Date& date, int year, int32_t offset_before) {
  return (DayOf(date, year).time_since_epoch().count() * kSecondsPerDay) + date.time -
         offset_before;
}

struct RuleEvent {
  int64_t at = 0;
  bool dst = false;
};

std::array<RuleEvent, 2> EventsOfYear(const PosixTzRule& rule, int year) {
  return {RuleEvent{RuleInstant(rule.start, year, rule.std_offset), true},
          RuleEvent{RuleInstant(rule.end, year, rule.dst_offset), false}};
}

int32_t RuleOffsetAt(const PosixTzRule& rule, int64_t t) {
  if (!rule.has_dst) return rule.std_offset;
  // The state at t is set by the latest rule event at or before t. The neighbouring years' events
  // cover rule times that cross a year boundary ("J365/25"). On a tie DST wins, so that DST all
  // year, written "0/0,J365/25" (the end is the next start), has no instant of standard time.
  const int year = YearOf(t);
  RuleEvent latest{std::numeric_limits<int64_t>::min(), false};
  for (int y = year - 1; y <= year + 1; ++y) {
    for (const RuleEvent& e : EventsOfYear(rule, y)) {
      if (e.at > t) continue;
      if (e.at > latest.at || (e.at == latest.at && e.dst)) latest = e;
    }
  }
  return latest.dst ? rule.dst_offset : rule.std_offset;
}

// ---- TZif files (RFC 8536 section 3) -----------------------------------------------------------

class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}

  bool Has(size_t n) const { return bytes_.size() - pos_ >= n; }
  void Skip(size_t n) { pos_ += n; }
  uint8_t U8() { return static_cast<uint8_t>(bytes_[pos_++]); }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | U8();
    return v;
  }
  int64_t I64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | U8();
    return static_cast<int64_t>(v);
  }
  int32_t I32() { return static_cast<int32_t>(U32()); }
  std::string_view Rest() const { return bytes_.substr(pos_); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

struct Header {
  char version = 0;
  uint32_t isutcnt = 0;
  uint32_t isstdcnt = 0;
  uint32_t leapcnt = 0;
  uint32_t timecnt = 0;
  uint32_t typecnt = 0;
  uint32_t charcnt = 0;
};

std::expected<Header, std::string> ReadHeader(ByteReader& r) {
  if (!r.Has(44)) return std::unexpected("truncated header");
  if (!r.Rest().starts_with("TZif")) return std::unexpected("not a TZif file");
  r.Skip(4);
  Header h;
  h.version = static_cast<char>(r.U8());
  if (h.version != '\0' && (h.version < '2' || h.version > '4'))
    return std::unexpected("unsupported TZif version");
  r.Skip(15);
  h.isutcnt = r.U32();
  h.isstdcnt = r.U32();
  h.leapcnt = r.U32();
  h.timecnt = r.U32();
  h.typecnt = r.U32();
  h.charcnt = r.U32();
  // Type indices are one byte, so at most 256 types.
  if (h.typecnt == 0 || h.typecnt > 256) return std::unexpected("bad local time type count");
  if (h.charcnt == 0) return std::unexpected("no time zone designations");
  if ((h.isutcnt != 0 && h.isutcnt != h.typecnt) || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt))
    return std::unexpected("bad UT/local or standard/wall indicator count");
  return h;
}

// Bytes of a data block whose transition times are time_size (4 or 8) bytes.
size_t BlockSize(const Header& h, size_t time_size) {
  return (h.timecnt * (time_size + 1)) + (h.typecnt * size_t{6}) + h.charcnt +
         (h.leapcnt * (time_size + 4)) + h.isstdcnt + h.isutcnt;
}

struct ZoneData {
  std::vector<int64_t> transitions;
  std::vector<uint8_t> transition_types;
  std::vector<int32_t> type_offsets;
};

std::expected<ZoneData, std::string> ReadBlock(ByteReader& r, const Header& h, size_t time_size) {
  if (!r.Has(BlockSize(h, time_size))) return std::unexpected("truncated data");
  if (h.leapcnt != 0) {
    return std::unexpected(
        "has leap seconds (a \"right/\" zone); only zones without leap seconds are supported");
  }
  ZoneData z;
  z.transitions.reserve(h.timecnt);
  for (uint32_t i = 0; i < h.timecnt; ++i) {
    const int64_t t = time_size == 8 ? r.I64() : r.I32();
    if (!z.transitions.empty() && t <= z.transitions.back())
      return std::unexpected("transition times are not ascending");
    z.transitions.push_back(t);
  }
  z.transition_types.reserve(h.timecnt);
  for (uint32_t i = 0; i < h.timecnt; ++i) {
    const uint8_t type = r.U8();
    if (type >= h.typecnt) return std::unexpected("transition type index out of range");
    z.transition_types.push_back(type);
  }
  z.type_offsets.reserve(h.typecnt);
  for (uint32_t i = 0; i < h.typecnt; ++i) {
    const int32_t utoff = r.I32();
    const uint8_t isdst = r.U8();
    const uint8_t desigidx = r.U8();
    if (utoff < -kMaxOffset || utoff > kMaxOffset) return std::unexpected("UT offset out of range");
    if (isdst > 1 || desigidx >= h.charcnt) return std::unexpected("bad local time type record");
    z.type_offsets.push_back(utoff);
  }
  // Designations, leap seconds (none) and the indicators: not needed.
  r.Skip(size_t{h.charcnt} + h.isstdcnt + h.isutcnt);
  return z;
}

// ---- Names --------------------------------------------------------------------------------------

std::optional<std::string> CheckName(std::string_view name) {
  const std::string prefix = "invalid time zone name " + Quoted(name) + ": ";
  if (name.empty()) return "time zone name is empty";
  if (name.size() > 255) return prefix + "longer than 255 characters";
  if (name.starts_with('/')) return prefix + "must be an IANA name like Europe/Berlin, not a path";
  std::string_view rest = name;
  while (true) {
    const size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (part == "." || part == "..") return prefix + R"("." and ".." are not allowed)";
    if (part.empty()) return prefix + "empty path component";
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  for (const char c : name) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_' && c != '+' && c != '-' && c != '/')
      return prefix + "only letters, digits, '_', '+', '-' and '/' are allowed";
  }
  return std::nullopt;
}

}  // namespace

TimeZone TimeZone::Utc() {
  TimeZone tz;
  tz.name_ = "UTC";
  tz.type_offsets_ = {0};
  return tz;
}

std::expected<TimeZone, std::string> TimeZone::Load(std::string_view name) {
  const char* env = std::getenv("ZONEINFO");
  const std::filesystem::path dir = env != nullptr && *env != '\0' ? env : "/usr/share/zoneinfo";
  return Load(name, dir);
}

std::expected<TimeZone, std::string> TimeZone::Load(std::string_view name,
                                                    const std::filesystem::path& dir) {
  if (auto bad = CheckName(name)) return std::unexpected(std::move(*bad));
  if (name == "UTC" || name == "Etc/UTC") {
    TimeZone tz = Utc();
    tz.name_ = name;
    return tz;
  }
  const std::filesystem::path path = dir / std::string(name);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return std::unexpected("unknown time zone " + Quoted(name) + " (no file " + path.string() +
                           ")");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxFileSize) {
    return std::unexpected("time zone " + Quoted(name) + ": " + path.string() +
                           (ec ? ": " + ec.message() : " is too large for a TZif file"));
  }
  std::string bytes(size, '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (!in || static_cast<size_t>(in.gcount()) != size)
    return std::unexpected("time zone " + Quoted(name) + ": cannot read " + path.string());
  return FromTzif(name, bytes);
}

std::expected<TimeZone, std::string> TimeZone::FromTzif(std::string_view name,
                                                        std::string_view bytes) {
  const auto fail = [&](const std::string& why) {
    return std::unexpected("time zone " + Quoted(name) + ": " + why);
  };
  ByteReader r(bytes);
  auto header = ReadHeader(r);
  if (!header) return fail(header.error());
  size_t time_size = 4;
  if (header->version != '\0') {
    // Version 2+: skip the 32-bit block, read the 64-bit one that follows its own header.
    if (!r.Has(BlockSize(*header, 4))) return fail("truncated data");
    r.Skip(BlockSize(*header, 4));
    header = ReadHeader(r);
    if (!header) return fail(header.error());
    if (header->version == '\0') return fail("second header has version 1");
    time_size = 8;
  }
  auto data = ReadBlock(r, *header, time_size);
  if (!data) return fail(data.error());

  TimeZone tz;
  tz.name_ = name;
  tz.transitions_ = std::move(data->transitions);
  tz.transition_types_ = std::move(data->transition_types);
  tz.type_offsets_ = std::move(data->type_offsets);
  if (time_size == 8) {
    // The footer: '\n', a POSIX TZ string (possibly empty), '\n'.
    const std::string_view rest = r.Rest();
    const size_t close = rest.find('\n', 1);
    if (!rest.starts_with('\n') || close == std::string_view::npos) return fail("missing footer");
    const std::string_view tz_string = rest.substr(1, close - 1);
    if (!tz_string.empty()) {
      auto rule = ParsePosixTz(tz_string);
      if (!rule) return fail(rule.error());
      if (std::max(std::abs(rule->std_offset), std::abs(rule->dst_offset)) > kMaxOffset)
        return fail("footer offset out of range");
      tz.footer_ = *rule;
    }
  }
  return tz;
}

int32_t TimeZone::OffsetAtSeconds(int64_t t) const {
  if (transitions_.empty()) return footer_ ? RuleOffsetAt(*footer_, t) : type_offsets_.front();
  // RFC 8536: type 0 before the first transition, the footer after the last one.
  if (t < transitions_.front()) return type_offsets_.front();
  if (t > transitions_.back() && footer_) return RuleOffsetAt(*footer_, t);
  const auto it = std::ranges::upper_bound(transitions_, t);
  const auto index = static_cast<size_t>(it - transitions_.begin()) - 1;
  return type_offsets_[transition_types_[index]];
}

int32_t TimeZone::OffsetAt(Time t) const { return OffsetAtSeconds(t.time_since_epoch().count()); }

std::chrono::local_seconds TimeZone::ToLocal(Time t) const {
  return std::chrono::local_seconds{t.time_since_epoch() + seconds{OffsetAt(t)}};
}

std::vector<int64_t> TimeZone::ChangesIn(int64_t lo, int64_t hi) const {
  std::vector<int64_t> out;
  for (auto it = std::ranges::upper_bound(transitions_, lo); it != transitions_.end() && *it <= hi;
       ++it) {
    out.push_back(*it);
  }
  // The footer's changes, after the last transition.
  const int64_t from = transitions_.empty() ? lo : std::max(lo, transitions_.back());
  if (footer_ && footer_->has_dst && from < hi) {
    const int last_year = YearOf(hi) + 1;
    for (int y = YearOf(from) - 1; y <= last_year; ++y) {
      for (const RuleEvent& e : EventsOfYear(*footer_, y)) {
        if (e.at > from && e.at <= hi) out.push_back(e.at);
      }
    }
    std::ranges::sort(out);
  }
  return out;
}

LocalMapping TimeZone::FromLocal(std::chrono::local_seconds local) const {
  // Solve t + offset(t) == local piece by piece: between two changes the offset is constant, so
  // each piece has at most one solution. Every solution lies within kMaxOffset of local.
  const int64_t l = local.time_since_epoch().count();
  constexpr int64_t kWindow = int64_t{27} * 3600;
  const int64_t lo = l - kWindow;
  const int64_t hi = l + kWindow;
  const std::vector<int64_t> changes = ChangesIn(lo, hi);
  std::vector<int64_t> found;
  int64_t piece_start = lo;
  for (size_t i = 0; i <= changes.size(); ++i) {
    const int64_t piece_end = i < changes.size() ? changes[i] : hi;
    const int64_t t = l - OffsetAtSeconds(piece_start);
    if (t >= piece_start && t < piece_end) found.push_back(t);
    piece_start = piece_end;
  }
  const auto at = [](int64_t s) { return Time{seconds{s}}; };
  if (found.size() == 1) return {LocalMapping::Kind::kUnique, at(found[0]), at(found[0])};
  if (found.size() > 1) return {LocalMapping::Kind::kOverlap, at(found.front()), at(found.back())};
  // A gap: it ends at the first change after which the clock is past local. One exists: the clock
  // is before local at lo and after it at hi, and only changes make it jump over local.
  int64_t end = hi;
  for (const int64_t c : changes) {
    if (c + OffsetAtSeconds(c) > l) {
      end = c;
      break;
    }
  }
  return {LocalMapping::Kind::kGap, at(end), at(end)};
}

}  // namespace millrace::api
