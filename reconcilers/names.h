#pragma once

// What every reconciler shares: deterministic names for the objects reconcilers make (the same
// owner always yields the same child name, so a reconcile that runs twice, or after a crash, finds
// what the first one made), the managed-by label, child references and planned events.

#include <compare>
#include <cstddef>
#include <string>
#include <string_view>

namespace millrace::reconcilers {

// Every object Millrace makes carries this label, so informers can select just those.
inline constexpr std::string_view kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr std::string_view kManagedByValue = "millrace";

// A child object, by apiVersion, kind, namespace ("" when cluster-scoped) and name; `uid`, when
// set, is the object's as observed: a delete is then conditional on it, so a delete that lands
// late (held on a slow connection) never removes a newer object of the same name.
struct ChildRef {
  std::string api_version;
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string uid{};

  auto operator<=>(const ChildRef&) const = default;
};

// An event a plan asks the reconciler to record about its object (events.k8s.io/v1).
struct PlannedEvent {
  std::string type;  // Normal or Warning
  std::string reason;
  std::string note;
};

// 8 hex digits of a 32-bit FNV-1a hash of `s`.
std::string Hex32(std::string_view s);

// `s` if at most `max` characters, else its first max-9 characters (without a trailing '-' or
// '.'), '-' and Hex32(s): still unique, still a valid DNS label or label value.
std::string Shorten(const std::string& s, size_t max);

// "<owner>-<suffix>" when that is at most 63 characters (as Job names and label values need);
// longer, "<owner prefix>-<hash of the whole>-<suffix>", the suffix also cut when it alone leaves
// no room for the owner. Always valid for any owner and suffix that are (DNS labels or
// subdomains), and the same for the same inputs.
std::string ChildName(std::string_view owner, std::string_view suffix);

}  // namespace millrace::reconcilers
