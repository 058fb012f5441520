#pragma once

// JSON <-> C++ conversion machinery shared by the resource types. Each struct lists its fields
// once, in a Visit(visitor, struct) function found by argument-dependent lookup:
//
//   template <class V> void Visit(V& v, Batch& b) { v("uri", b.uri, kRequired); v("partition",
//   b.partition); }
//
// and Decode/Encode walk that list. scripts/gen-api writes the Visit functions of the API types
// from the CRD schemas (crds/api_types.gen.cc in the build tree); crds/meta.h writes those of
// ObjectMeta and Condition by hand. Decoding collects every error with its field path instead of
// stopping at the first; unknown fields are ignored (the API server prunes them).

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "crds/duration.h"
#include "crds/errors.h"
#include "crds/quantity.h"

namespace millrace::api {

using Json = nlohmann::json;

// The names of an enum's values, in declaration order (values must be 0, 1, 2, ...).
template <class E>
struct EnumNames;

template <class E>
concept NamedEnum = std::is_enum_v<E> && requires {
  EnumNames<E>::kNames;
};

template <NamedEnum E>
std::string_view ToString(E e) {
  return EnumNames<E>::kNames[static_cast<size_t>(e)];
}

template <NamedEnum E>
std::optional<E> ParseEnum(std::string_view s) {
  const auto& names = EnumNames<E>::kNames;
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return static_cast<E>(i);
  return std::nullopt;
}

namespace codec {

inline constexpr bool kRequired = true;

inline std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
inline std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}
inline std::string Key(const std::string& path, std::string_view key) {
  return path + "[" + std::string(key) + "]";
}

struct Context {
  ValidationErrors& errors;
  void Error(std::string path, std::string_view reason, std::string detail) {
    errors.push_back({std::move(path), std::string(reason), std::move(detail)});
  }
  bool Expect(bool ok, const std::string& path, std::string_view what) {
    if (!ok) Error(path, reason::kTypeInvalid, "must be " + std::string(what));
    return ok;
  }
};

// ---- decoding of leaves ------------------------------------------------------------------------
inline void Decode(Context& c, const Json& j, const std::string& path, std::string& out) {
  if (c.Expect(j.is_string(), path, "a string")) out = j.get<std::string>();
}
inline void Decode(Context& c, const Json& j, const std::string& path, bool& out) {
  if (c.Expect(j.is_boolean(), path, "a boolean")) out = j.get<bool>();
}
inline void Decode(Context& c, const Json& j, const std::string& path, int64_t& out) {
  // 2^63 as a double: floats in [-2^63, 2^63) convert to int64_t; anything else must not be cast.
  constexpr double kTwo63 = 9223372036854775808.0;
  if (j.is_number_float()) {
    const double d = j.get<double>();
    if (d >= -kTwo63 && d < kTwo63 && d == std::trunc(d)) {
      out = static_cast<int64_t>(d);
      return;
    }
  }
  const bool in_range = j.is_number_integer() &&
                        (!j.is_number_unsigned() || j.get<uint64_t>() <= uint64_t{INT64_MAX});
  if (c.Expect(in_range, path, "an integer")) out = j.get<int64_t>();
}
inline void Decode(Context& c, const Json& j, const std::string& path, int32_t& out) {
  int64_t v = 0;
  const size_t before = c.errors.size();
  Decode(c, j, path, v);
  if (c.errors.size() != before) return;
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
    c.Error(path, reason::kInvalid, "out of range for a 32-bit integer");
    return;
  }
  out = static_cast<int32_t>(v);
}
inline void Decode(Context& c, const Json& j, const std::string& path, double& out) {
  if (c.Expect(j.is_number(), path, "a number")) out = j.get<double>();
}
inline void Decode(Context& /*c*/, const Json& j, const std::string& /*path*/, Json& out) {
  out = j;
}
inline void Decode(Context& c, const Json& j, const std::string& path, Duration& out) {
  if (!c.Expect(j.is_string(), path, R"(a duration string such as "90s" or "1h30m")")) return;
  auto d = Duration::Parse(j.get<std::string>());
  if (!d) {
    c.Error(path, reason::kInvalid, d.error() + R"( (use e.g. "90s", "1h30m"))");
  } else if (d->value.count() < 0) {
    c.Error(path, reason::kInvalid, "must not be negative");
  } else {
    out = std::move(*d);
  }
}
inline void Decode(Context& c, const Json& j, const std::string& path, Quantity& out) {
  if (j.is_number_integer()) {
    auto q = Quantity::Parse(j.dump());
    if (!q) {
      c.Error(path, reason::kInvalid, q.error());
      return;
    }
    out = std::move(*q);
    out.set_json_number(true);
    return;
  }
  if (!c.Expect(j.is_string(), path, R"(a quantity such as "500m", "2Gi" or 4)")) return;
  auto q = Quantity::Parse(j.get<std::string>());
  if (!q) {
    c.Error(path, reason::kInvalid, q.error() + R"( (use e.g. "500m", "2Gi", 4))");
    return;
  }
  out = std::move(*q);
}
inline void Decode(Context& c, const Json& j, const std::string& path, Time& out) {
  if (!c.Expect(j.is_string(), path, "an RFC 3339 time")) return;
  auto t = ParseTime(j.get<std::string>());
  if (!t) {
    c.Error(path, reason::kInvalid, t.error());
    return;
  }
  out = *t;
}
template <NamedEnum E>
void Decode(Context& c, const Json& j, const std::string& path, E& out) {
  if (!c.Expect(j.is_string(), path, "a string")) return;
  const auto s = j.get<std::string>();
  if (auto e = ParseEnum<E>(s)) {
    out = *e;
    return;
  }
  std::string allowed;
  for (const auto name : EnumNames<E>::kNames)
    allowed += (allowed.empty() ? "\"" : ", \"") + std::string(name) + "\"";
  c.Error(path, reason::kNotSupported,
          "unsupported value \"" + s + "\": supported values: " + allowed);
}

// ---- decoding of structs and containers -------------------------------------------------------
class FieldDecoder;
template <class T>
concept Visitable = requires(FieldDecoder& v, T& t) {
  Visit(v, t);
};

template <Visitable T>
void Decode(Context& c, const Json& j, const std::string& path, T& out);
template <class T>
void Decode(Context& c, const Json& j, const std::string& path, std::vector<T>& out) {
  if (!c.Expect(j.is_array(), path, "a list")) return;
  out.clear();
  out.resize(j.size());
  for (size_t i = 0; i < j.size(); ++i) Decode(c, j[i], Index(path, i), out[i]);
}
template <class T>
void Decode(Context& c, const Json& j, const std::string& path, std::map<std::string, T>& out) {
  if (!c.Expect(j.is_object(), path, "an object")) return;
  out.clear();
  for (const auto& [k, v] : j.items()) Decode(c, v, Key(path, k), out[k]);
}

// The visitor handed to Visit() when decoding: reads obj[key] into a field.
class FieldDecoder {
 public:
  FieldDecoder(Context& c, const Json& obj, const std::string& path)
      : c_(c), obj_(obj), path_(path) {}

  template <class T>
  void operator()(std::string_view key, T& out, bool required = false) {
    const auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) {
      if (required) c_.Error(Join(path_, key), reason::kRequired, "required field is missing");
      return;
    }
    Decode(c_, *it, Join(path_, key), out);
  }
  template <class T>
  void operator()(std::string_view key, std::optional<T>& out, bool /*required*/ = false) {
    const auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) {
      out.reset();
      return;
    }
    out.emplace();
    Decode(c_, *it, Join(path_, key), *out);
  }

 private:
  Context& c_;
  const Json& obj_;
  const std::string& path_;
};

template <Visitable T>
void Decode(Context& c, const Json& j, const std::string& path, T& out) {
  if (!c.Expect(j.is_object(), path, "an object")) return;
  FieldDecoder v(c, j, path);
  Visit(v, out);
}

// ---- encoding ---------------------------------------------------------------------------------
inline Json Encode(const std::string& v) { return v; }
inline Json Encode(bool v) { return v; }
inline Json Encode(int64_t v) { return v; }
inline Json Encode(int32_t v) { return v; }
inline Json Encode(double v) { return v; }
inline Json Encode(const Json& v) { return v; }
inline Json Encode(const Duration& v) { return v.text.empty() ? FormatDuration(v.value) : v.text; }
inline Json Encode(const Quantity& v) {
  if (v.json_number()) {
    try {
      return Json::parse(v.text());
    } catch (const Json::exception&) {
      return v.text();
    }
  }
  return v.text();
}
inline Json Encode(Time v) { return FormatTime(v); }
template <NamedEnum E>
Json Encode(E e) {
  return std::string(ToString(e));
}

class FieldEncoder;
template <class T>
concept EncodeVisitable = requires(FieldEncoder& v, T& t) {
  Visit(v, t);
};

template <EncodeVisitable T>
Json Encode(const T& v);
template <class T>
Json Encode(const std::vector<T>& v) {
  Json out = Json::array();
  for (const auto& e : v) out.push_back(Encode(e));
  return out;
}
template <class T>
Json Encode(const std::map<std::string, T>& v) {
  Json out = Json::object();
  for (const auto& [k, e] : v) out[k] = Encode(e);
  return out;
}

template <class T>
bool IsEmpty(const T& /*v*/) {
  return false;
}
template <class T>
bool IsEmpty(const std::vector<T>& v) {
  return v.empty();
}
template <class T>
bool IsEmpty(const std::map<std::string, T>& v) {
  return v.empty();
}
inline bool IsEmpty(const Json& v) { return v.is_null(); }

// The visitor handed to Visit() when encoding: writes set fields into obj. Empty lists and maps are
// omitted, as Go's omitempty does; so are empty optional strings (required ones are written, e.g.
// a Condition's message, which the schema requires even when empty).
class FieldEncoder {
 public:
  explicit FieldEncoder(Json& obj) : obj_(obj) {}

  template <class T>
  void operator()(std::string_view key, const T& v, bool required = false) {
    if constexpr (std::is_same_v<T, std::string>) {
      if (v.empty() && !required) return;
    }
    if (IsEmpty(v)) return;
    obj_[std::string(key)] = Encode(v);
  }
  template <class T>
  void operator()(std::string_view key, const std::optional<T>& v, bool /*required*/ = false) {
    if (v) obj_[std::string(key)] = Encode(*v);
  }

 private:
  Json& obj_;
};

template <EncodeVisitable T>
Json Encode(const T& v) {
  Json out = Json::object();
  FieldEncoder enc(out);
  // Visit takes a mutable reference so that one field list serves decoding too; encoding only
  // reads through it.
  Visit(enc, const_cast<T&>(v));
  return out;
}

}  // namespace codec
}  // namespace millrace::api
