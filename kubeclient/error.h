#pragma once

#include <expected>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace millrace::kube {

// What went wrong, coarse enough to branch on. Built from the API server's Status `reason` (or the
// HTTP code when the body carries no Status), or from the client itself (Transport, Decode).
enum class ErrorKind {
  kNotFound,          // 404 NotFound
  kAlreadyExists,     // 409 AlreadyExists
  kConflict,          // 409 Conflict: stale resourceVersion, or a server-side apply field conflict
  kInvalid,           // 422 Invalid: see `causes`
  kForbidden,         // 403
  kUnauthorized,      // 401
  kTooManyRequests,   // 429 (after the client's own retries)
  kGone,              // 410 Expired/Gone: the resourceVersion is compacted; relist
  kTimeout,           // 504 / Timeout / ServerTimeout
  kBadRequest,        // 400
  kMethodNotAllowed,  // 405
  kServerError,       // other 5xx
  kTransport,         // no HTTP answer: connection, TLS, proxy or timeout failure
  kDecode,            // the answer was not the JSON we expected
  kConfig,            // bad or missing configuration (kubeconfig, in-cluster files, exec plugin)
  kFenced,            // not sent: the client's write fence refused it (Config::write_fence)
  kOther,
};

std::string_view ErrorKindName(ErrorKind kind);

// An expected failure. `reason`, `message` and `causes` are the API server's, verbatim.
struct Error {
  ErrorKind kind = ErrorKind::kOther;
  int http_code = 0;      // 0 when there was no HTTP answer
  std::string reason;     // Status.reason, e.g. "Conflict"
  std::string message;    // Status.message, or the client's own description
  nlohmann::json causes;  // Status.details.causes (null when absent)

  // "Conflict (409): Operation cannot be fulfilled on ..." - for logs and test failures.
  std::string ToString() const;

  bool IsNotFound() const { return kind == ErrorKind::kNotFound; }
  bool IsAlreadyExists() const { return kind == ErrorKind::kAlreadyExists; }
  bool IsConflict() const { return kind == ErrorKind::kConflict; }
  bool IsInvalid() const { return kind == ErrorKind::kInvalid; }
  bool IsForbidden() const { return kind == ErrorKind::kForbidden; }
  bool IsUnauthorized() const { return kind == ErrorKind::kUnauthorized; }
  bool IsGone() const { return kind == ErrorKind::kGone; }
  bool IsTimeout() const { return kind == ErrorKind::kTimeout; }
  bool IsTransport() const { return kind == ErrorKind::kTransport; }
  bool IsFenced() const { return kind == ErrorKind::kFenced; }
};

template <class T>
using Result = std::expected<T, Error>;

// An Error of `kind` made by the client (no HTTP answer involved).
Error MakeError(ErrorKind kind, std::string message);

// The Error for an HTTP answer: `body` is parsed as a metav1.Status when it is one; otherwise the
// code alone decides the kind and the (truncated) body becomes the message.
Error ErrorFromResponse(int http_code, std::string_view body);

// The Error for a metav1.Status object (as in a watch ERROR event). `http_code` is used when the
// Status carries no `code`.
Error ErrorFromStatus(const nlohmann::json& status, int http_code = 0);

}  // namespace millrace::kube
