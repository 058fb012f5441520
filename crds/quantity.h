#pragma once

#include <compare>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace millrace::api {

// A Kubernetes resource quantity ("500m", "2Gi", "1.5", "1e3", "8"), held exactly as an integer
// number of milli-units, so quantities compare and add without rounding surprises. Like
// Kubernetes' MilliValue(), a value finer than 1m rounds up ("100u" is 1m). The range is
// +-9.2e15 units (8 PiB of memory); larger values are rejected as too large.
class Quantity {
 public:
  Quantity() = default;

  static std::expected<Quantity, std::string> Parse(std::string_view text);
  static Quantity FromMilli(int64_t milli);
  static Quantity FromUnits(int64_t units);  // saturates beyond the range

  int64_t milli() const { return milli_; }
  // Whole units, rounded up (Kubernetes' Value()).
  int64_t units() const;
  bool negative() const { return milli_ < 0; }

  // The text the quantity was written as (or a canonical form for computed values).
  const std::string& text() const { return text_; }
  // True when written as a JSON integer (cpu: 8) rather than a string (cpu: "8"); kept so that
  // a round trip writes back what it read.
  bool json_number() const { return json_number_; }
  void set_json_number(bool v) { json_number_ = v; }

  // Canonical text: an integer with the largest exact suffix ("2Gi", "1500m", "3k", "0").
  std::string Canonical() const;

  // Saturating arithmetic.
  Quantity operator+(const Quantity& other) const;
  Quantity operator-(const Quantity& other) const;
  Quantity& operator+=(const Quantity& other) { return *this = *this + other; }

  bool operator==(const Quantity& other) const { return milli_ == other.milli_; }
  std::strong_ordering operator<=>(const Quantity& other) const { return milli_ <=> other.milli_; }

 private:
  int64_t milli_ = 0;
  std::string text_ = "0";
  bool json_number_ = false;
};

}  // namespace millrace::api
