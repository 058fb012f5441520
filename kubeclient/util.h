#pragma once

// Small helpers shared by the kubeclient sources; not part of the public API.
#include <optional>
#include <string>
#include <string_view>

#include "kubeclient/error.h"

namespace millrace::kube::internal {

// The whole file, or a Config error naming the path and the reason.
Result<std::string> ReadFile(const std::string& path, std::string_view what);

// RFC 4648 base64 (whitespace is ignored when decoding); nullopt when the input is not base64.
std::optional<std::string> Base64Decode(std::string_view in);
std::string Base64Encode(std::string_view in);

// Percent-encodes everything but RFC 3986 unreserved characters (for query values).
std::string UrlEscape(std::string_view in);

}  // namespace millrace::kube::internal
