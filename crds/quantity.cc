#include "crds/quantity.h"

#include <array>
#include <limits>
#include <utility>

namespace millrace::api {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// a * b, false on overflow.
bool Mul(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

int64_t Pow10(int e) {
  int64_t v = 1;
  for (int i = 0; i < e; ++i) v *= 10;
  return v;
}

}  // namespace

std::expected<Quantity, std::string> Quantity::Parse(std::string_view text) {
  const std::string quoted = "invalid quantity \"" + std::string(text) + "\"";
  std::string_view s = text;
  const bool negative = s.starts_with('-');
  if (negative || s.starts_with('+')) s.remove_prefix(1);
  // The number: digits with at most one '.', at least one digit.
  int64_t mantissa = 0;
  int frac_digits = 0;
  bool any_digit = false;
  bool seen_dot = false;
  bool truncated = false;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '.') {
      if (seen_dot) return std::unexpected(quoted);
      seen_dot = true;
      continue;
    }
    if (!IsDigit(c)) break;
    any_digit = true;
    if (mantissa > (kMax - 9) / 10) {
      // Beyond 18 significant digits: fractional digits are dropped (rounded up below), whole
      // digits make the value too large.
      if (!seen_dot) return std::unexpected(quoted + ": too large");
      truncated = truncated || c != '0';
      continue;
    }
    mantissa = mantissa * 10 + (c - '0');
    if (seen_dot) ++frac_digits;
  }
  if (!any_digit) return std::unexpected(quoted);
  if (truncated) ++mantissa;  // round up, like Kubernetes
  const std::string_view suffix = s.substr(i);

  // value = mantissa * 10^(exp10 - frac_digits) * 1024^exp1024, in milli-units (exp10 += 3).
  int exp10 = 3;
  int exp1024 = 0;
  if (suffix.empty()) {
  } else if (suffix.size() == 2 && suffix[1] == 'i') {
    static constexpr std::string_view kBinary = "KMGTPE";
    const auto pos = kBinary.find(suffix[0]);
    if (pos == std::string_view::npos) return std::unexpected(quoted + ": unknown suffix");
    exp1024 = static_cast<int>(pos) + 1;
  } else if (suffix.size() == 1 &&
             std::string_view("numkMGTPE").find(suffix[0]) != std::string_view::npos) {
    static constexpr std::array<std::pair<char, int>, 9> kDecimal{{{'n', -9},
                                                                   {'u', -6},
                                                                   {'m', -3},
                                                                   {'k', 3},
                                                                   {'M', 6},
                                                                   {'G', 9},
                                                                   {'T', 12},
                                                                   {'P', 15},
                                                                   {'E', 18}}};
    for (const auto& [c, e] : kDecimal)
      if (c == suffix[0]) exp10 += e;
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    std::string_view e = suffix.substr(1);
    bool eneg = false;
    if (!e.empty() && (e.front() == '+' || e.front() == '-')) {
      eneg = e.front() == '-';
      e.remove_prefix(1);
    }
    if (e.empty() || e.size() > 4) return std::unexpected(quoted + ": bad exponent");
    int ev = 0;
    for (const char c : e) {
      if (!IsDigit(c)) return std::unexpected(quoted + ": bad exponent");
      ev = ev * 10 + (c - '0');
    }
    exp10 += eneg ? -ev : ev;
  } else {
    return std::unexpected(quoted + ": unknown suffix");
  }

  int64_t v = mantissa;
  for (int k = 0; k < exp1024; ++k)
    if (!Mul(v, 1024, v)) return std::unexpected(quoted + ": too large");
  const int e = exp10 - frac_digits;
  if (e >= 0) {
    if (e > 18 && v != 0) return std::unexpected(quoted + ": too large");
    if (!Mul(v, Pow10(e), v)) return std::unexpected(quoted + ": too large");
  } else {
    const int d = -e;
    if (d > 18) {
      v = v > 0 ? 1 : 0;  // a positive amount below 1m rounds up to 1m
    } else {
      const int64_t div = Pow10(d);
      v = v / div + (v % div != 0 ? 1 : 0);
    }
  }
  Quantity q;
  q.milli_ = negative ? -v : v;
  q.text_ = std::string(text);
  return q;
}

Quantity Quantity::FromMilli(int64_t milli) {
  Quantity q;
  q.milli_ = milli;
  q.text_ = q.Canonical();
  return q;
}

Quantity Quantity::FromUnits(int64_t units) {
  int64_t m = 0;
  if (!Mul(units, 1000, m)) m = units < 0 ? kMin : kMax;
  return FromMilli(m);
}

int64_t Quantity::units() const { return (milli_ / 1000) + (milli_ % 1000 > 0 ? 1 : 0); }

std::string Quantity::Canonical() const {
  if (milli_ == 0) return "0";
  const std::string sign = milli_ < 0 ? "-" : "";
  // Magnitude, valid for the minimum too.
  const uint64_t mag =
      milli_ < 0 ? static_cast<uint64_t>(-(milli_ + 1)) + 1 : static_cast<uint64_t>(milli_);
  if (mag % 1000 != 0) return sign + std::to_string(mag) + "m";
  const uint64_t units = mag / 1000;
  // units with the largest suffix (powers of `base`) that divides it exactly, if any.
  const auto suffixed = [&](uint64_t base, const std::array<std::string_view, 6>& suffixes) {
    uint64_t n = units;
    size_t power = 0;
    while (n % base == 0 && power < suffixes.size()) {
      n /= base;
      ++power;
    }
    return power == 0 ? std::string()
                      : sign + std::to_string(n) + std::string(suffixes.at(power - 1));
  };
  if (auto binary = suffixed(1024, {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}); !binary.empty()) {
    return binary;
  }
  if (auto decimal = suffixed(1000, {"k", "M", "G", "T", "P", "E"}); !decimal.empty()) {
    return decimal;
  }
  return sign + std::to_string(units);
}

Quantity Quantity::operator+(const Quantity& other) const {
  int64_t m = 0;
  if (__builtin_add_overflow(milli_, other.milli_, &m)) m = milli_ < 0 ? kMin : kMax;
  return FromMilli(m);
}

Quantity Quantity::operator-(const Quantity& other) const {
  int64_t m = 0;
  if (__builtin_sub_overflow(milli_, other.milli_, &m)) m = milli_ < 0 ? kMin : kMax;
  return FromMilli(m);
}

}  // namespace millrace::api
