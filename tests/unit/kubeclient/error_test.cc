#include "kubeclient/error.h"

#include <string>

#include <gtest/gtest.h>

namespace millrace::kube {
namespace {

std::string Status(int code, const std::string& reason, const std::string& message) {
  return nlohmann::json{
      {"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
      {"status", "Failure"}, {"message", message}, {"reason", reason},
      {"code", code}}
      .dump();
}

struct Case {
  int code;
  const char* reason;
  ErrorKind kind;
};

TEST(ErrorFromResponse, MapsEveryStatusReason) {
  const Case cases[] = {
      {404, "NotFound", ErrorKind::kNotFound},
      {409, "AlreadyExists", ErrorKind::kAlreadyExists},
      {409, "Conflict", ErrorKind::kConflict},
      {422, "Invalid", ErrorKind::kInvalid},
      {403, "Forbidden", ErrorKind::kForbidden},
      {401, "Unauthorized", ErrorKind::kUnauthorized},
      {429, "TooManyRequests", ErrorKind::kTooManyRequests},
      {410, "Expired", ErrorKind::kGone},
      {410, "Gone", ErrorKind::kGone},
      {504, "Timeout", ErrorKind::kTimeout},
      {500, "ServerTimeout", ErrorKind::kTimeout},
      {400, "BadRequest", ErrorKind::kBadRequest},
      {405, "MethodNotAllowed", ErrorKind::kMethodNotAllowed},
      {500, "InternalError", ErrorKind::kServerError},
      {503, "ServiceUnavailable", ErrorKind::kServerError},
      {418, "SomethingNew", ErrorKind::kOther},
  };
  for (const auto& c : cases) {
    const std::string message = std::string("the server's words for ") + c.reason;
    const Error e = ErrorFromResponse(c.code, Status(c.code, c.reason, message));
    EXPECT_EQ(e.kind, c.kind) << c.reason;
    EXPECT_EQ(e.http_code, c.code) << c.reason;
    EXPECT_EQ(e.reason, c.reason);
    EXPECT_EQ(e.message, message);
  }
}

TEST(ErrorFromResponse, KeepsCausesVerbatim) {
  const auto body = nlohmann::json::parse(R"({
    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid", "code": 422,
    "message": "ConfigMap \"x\" is invalid: metadata.name: Invalid value: \"X\"",
    "details": {"name": "x", "kind": "ConfigMap", "causes": [
      {"reason": "FieldValueInvalid", "message": "Invalid value: \"X\"", "field": "metadata.name"}]}
  })");
  const Error e = ErrorFromResponse(422, body.dump());
  EXPECT_TRUE(e.IsInvalid());
  EXPECT_EQ(e.causes, body["details"]["causes"]);
  EXPECT_EQ(e.ToString(),
            "Invalid (422): ConfigMap \"x\" is invalid: metadata.name: Invalid value: \"X\"");
}

TEST(ErrorFromResponse, FallsBackToTheHttpCodeWithoutAStatus) {
  const Error e = ErrorFromResponse(503, "upstream connect error");
  EXPECT_EQ(e.kind, ErrorKind::kServerError);
  EXPECT_EQ(e.message, "upstream connect error");
  EXPECT_EQ(ErrorFromResponse(404, "").kind, ErrorKind::kNotFound);
  EXPECT_EQ(ErrorFromResponse(409, "{}").kind, ErrorKind::kConflict);
  EXPECT_EQ(ErrorFromResponse(410, "").kind, ErrorKind::kGone);
  EXPECT_TRUE(ErrorFromResponse(504, "").IsTimeout());
}

TEST(ErrorFromStatus, WatchErrorEventWithCode410IsGone) {
  const auto status = nlohmann::json::parse(R"json({"kind":"Status","apiVersion":"v1",
    "status":"Failure","message":"too old resource version: 5 (3100)","reason":"Expired",
    "code":410})json");
  const Error e = ErrorFromStatus(status);
  EXPECT_TRUE(e.IsGone());
  EXPECT_EQ(e.http_code, 410);
  EXPECT_EQ(e.message, "too old resource version: 5 (3100)");
  // A bare 410 without a reason is Gone too.
  EXPECT_TRUE(ErrorFromStatus(nlohmann::json{{"code", 410}}).IsGone());
}

}  // namespace
}  // namespace millrace::kube
