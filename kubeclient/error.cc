#include "kubeclient/error.h"

#include <array>
#include <string_view>
#include <utility>

namespace millrace::kube {
namespace {

// The name of each ErrorKind, in declaration order (kubeclient/error.h); for the named HTTP
// failures, the metav1.StatusReason the API server sends.
constexpr std::array<std::string_view, static_cast<size_t>(ErrorKind::kOther) + 1> kKindNames{
    "NotFound",  "AlreadyExists", "Conflict",         "Invalid",
    "Forbidden", "Unauthorized",  "TooManyRequests",  "Gone",
    "Timeout",   "BadRequest",    "MethodNotAllowed", "ServerError",
    "Transport", "Decode",        "Config",           "Fenced",
    "Other"};

ErrorKind KindFromCode(int code) {
  static constexpr std::array<std::pair<int, ErrorKind>, 10> kByCode{{
      {400, ErrorKind::kBadRequest},
      {401, ErrorKind::kUnauthorized},
      {403, ErrorKind::kForbidden},
      {404, ErrorKind::kNotFound},
      {405, ErrorKind::kMethodNotAllowed},
      {409, ErrorKind::kConflict},
      {410, ErrorKind::kGone},
      {422, ErrorKind::kInvalid},
      {429, ErrorKind::kTooManyRequests},
      {504, ErrorKind::kTimeout},
  }};
  for (const auto& [c, kind] : kByCode) {
    if (c == code) return kind;
  }
  return code >= 500 && code < 600 ? ErrorKind::kServerError : ErrorKind::kOther;
}

// metav1.StatusReason values (k8s.io/apimachinery/pkg/apis/meta/v1/types.go): those named as an
// ErrorKind, and the others that mean one.
ErrorKind KindFromReason(std::string_view reason, int code) {
  for (size_t i = 0; i <= static_cast<size_t>(ErrorKind::kMethodNotAllowed); ++i) {
    if (kKindNames[i] == reason) return static_cast<ErrorKind>(i);
  }
  if (reason == "Expired") return ErrorKind::kGone;
  if (reason == "ServerTimeout") return ErrorKind::kTimeout;
  if (reason == "InternalError" || reason == "ServiceUnavailable") return ErrorKind::kServerError;
  return KindFromCode(code);
}

}  // namespace

std::string_view ErrorKindName(ErrorKind kind) {
  const auto i = static_cast<size_t>(kind);
  return i < kKindNames.size() ? kKindNames.at(i) : "Other";
}

std::string Error::ToString() const {
  std::string out(reason.empty() ? ErrorKindName(kind) : std::string_view(reason));
  if (http_code != 0) out += " (" + std::to_string(http_code) + ")";
  out += ": ";
  out += message;
  return out;
}

Error MakeError(ErrorKind kind, std::string message) {
  Error e;
  e.kind = kind;
  e.message = std::move(message);
  return e;
}

Error ErrorFromStatus(const nlohmann::json& status, int http_code) {
  Error e;
  e.http_code = http_code;
  if (status.is_object()) {
    if (const auto it = status.find("code"); it != status.end() && it->is_number_integer()) {
      e.http_code = it->get<int>();
    }
    e.reason = status.value("reason", "");
    e.message = status.value("message", "");
    if (const auto d = status.find("details"); d != status.end() && d->is_object()) {
      if (const auto c = d->find("causes"); c != d->end()) e.causes = *c;
    }
  }
  e.kind = KindFromReason(e.reason, e.http_code);
  return e;
}

Error ErrorFromResponse(int http_code, std::string_view body) {
  auto status = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (status.is_object() && status.value("kind", "") == "Status") {
    Error e = ErrorFromStatus(status, http_code);
    e.http_code = http_code;  // the transport's code wins over the body's
    if (e.reason.empty()) e.kind = KindFromCode(http_code);
    return e;
  }
  Error e;
  e.http_code = http_code;
  e.kind = KindFromCode(http_code);
  constexpr size_t kMaxBody = 512;
  e.message = std::string(body.substr(0, kMaxBody));
  if (e.message.empty()) e.message = "HTTP " + std::to_string(http_code) + " with an empty body";
  return e;
}

}  // namespace millrace::kube
