#include "kubeclient/error.h"

#include <utility>

namespace millrace::kube {
namespace {

ErrorKind KindFromCode(int code) {
  switch (code) {
    case 400:
      return ErrorKind::kBadRequest;
    case 401:
      return ErrorKind::kUnauthorized;
    case 403:
      return ErrorKind::kForbidden;
    case 404:
      return ErrorKind::kNotFound;
    case 405:
      return ErrorKind::kMethodNotAllowed;
    case 409:
      return ErrorKind::kConflict;
    case 410:
      return ErrorKind::kGone;
    case 422:
      return ErrorKind::kInvalid;
    case 429:
      return ErrorKind::kTooManyRequests;
    case 504:
      return ErrorKind::kTimeout;
    default:
      return code >= 500 && code < 600 ? ErrorKind::kServerError : ErrorKind::kOther;
  }
}

// metav1.StatusReason values (k8s.io/apimachinery/pkg/apis/meta/v1/types.go).
ErrorKind KindFromReason(std::string_view reason, int code) {
  if (reason == "NotFound") return ErrorKind::kNotFound;
  if (reason == "AlreadyExists") return ErrorKind::kAlreadyExists;
  if (reason == "Conflict") return ErrorKind::kConflict;
  if (reason == "Invalid") return ErrorKind::kInvalid;
  if (reason == "Forbidden") return ErrorKind::kForbidden;
  if (reason == "Unauthorized") return ErrorKind::kUnauthorized;
  if (reason == "TooManyRequests") return ErrorKind::kTooManyRequests;
  if (reason == "Gone" || reason == "Expired") return ErrorKind::kGone;
  if (reason == "Timeout" || reason == "ServerTimeout") return ErrorKind::kTimeout;
  if (reason == "BadRequest") return ErrorKind::kBadRequest;
  if (reason == "MethodNotAllowed") return ErrorKind::kMethodNotAllowed;
  if (reason == "InternalError" || reason == "ServiceUnavailable") return ErrorKind::kServerError;
  return KindFromCode(code);
}

}  // namespace

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNotFound:
      return "NotFound";
    case ErrorKind::kAlreadyExists:
      return "AlreadyExists";
    case ErrorKind::kConflict:
      return "Conflict";
    case ErrorKind::kInvalid:
      return "Invalid";
    case ErrorKind::kForbidden:
      return "Forbidden";
    case ErrorKind::kUnauthorized:
      return "Unauthorized";
    case ErrorKind::kTooManyRequests:
      return "TooManyRequests";
    case ErrorKind::kGone:
      return "Gone";
    case ErrorKind::kTimeout:
      return "Timeout";
    case ErrorKind::kBadRequest:
      return "BadRequest";
    case ErrorKind::kMethodNotAllowed:
      return "MethodNotAllowed";
    case ErrorKind::kServerError:
      return "ServerError";
    case ErrorKind::kTransport:
      return "Transport";
    case ErrorKind::kDecode:
      return "Decode";
    case ErrorKind::kConfig:
      return "Config";
    case ErrorKind::kFenced:
      return "Fenced";
    case ErrorKind::kOther:
      return "Other";
  }
  return "Other";
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
