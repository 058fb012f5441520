#include "reconcilers/names.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>

namespace millrace::reconcilers {

std::string Hex32(std::string_view s) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (const char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619u;
  }
  std::array<char, 9> buf{};
  std::snprintf(buf.data(), buf.size(), "%08x", h);
  return std::string(buf.data(), 8);
}

std::string Shorten(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  std::string prefix = s.substr(0, max - 9);
  // A label value must not have '-' or '.' before the hash's '-' (no "..", "-.").
  while (!prefix.empty() && (prefix.back() == '-' || prefix.back() == '.')) prefix.pop_back();
  return prefix + "-" + Hex32(s);
}

std::string ChildName(std::string_view owner, std::string_view suffix) {
  constexpr size_t kMax = 63;
  constexpr size_t kHash = 10;  // "-" + 8 hex digits + "-"
  std::string whole = std::string(owner) + "-" + std::string(suffix);
  if (whole.size() <= kMax) return whole;
  // Too long: "<owner prefix>-<hash of the whole>-<suffix>", the hash keeping two owners (or two
  // suffixes) with one prefix apart. The suffix stays whole while one character of the owner fits
  // beside it (names earlier releases made are made again the same); a longer one (a step name
  // near 63 characters) is cut too.
  const size_t suffix_room = kMax - kHash - std::min<size_t>(owner.size(), 1);
  std::string tail(suffix.substr(0, std::min(suffix.size(), suffix_room)));
  while (!tail.empty() && (tail.back() == '-' || tail.back() == '.')) tail.pop_back();
  std::string prefix(owner.substr(0, kMax - kHash - tail.size()));
  while (!prefix.empty() && (prefix.back() == '-' || prefix.back() == '.')) prefix.pop_back();
  std::string name = prefix.empty() ? Hex32(whole) : prefix + "-" + Hex32(whole);
  if (!tail.empty()) name += "-" + tail;
  return name;
}

}  // namespace millrace::reconcilers
