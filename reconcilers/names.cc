#include "reconcilers/names.h"

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
  const std::string whole = std::string(owner) + "-" + std::string(suffix);
  if (whole.size() <= kMax) return whole;
  // Shorten the owner part, hashing the whole so two owners with one prefix stay apart.
  std::string prefix(owner.substr(0, kMax - suffix.size() - 10));
  while (!prefix.empty() && (prefix.back() == '-' || prefix.back() == '.')) prefix.pop_back();
  return prefix + "-" + Hex32(whole) + "-" + std::string(suffix);
}

}  // namespace millrace::reconcilers
