#pragma once

// Base64 (RFC 4648, no line breaks) for what admission and webhook configurations carry: JSON
// patches and CA bundles.

#include <string>
#include <string_view>

#include <openssl/evp.h>

namespace millrace::webhooks {

inline std::string Base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace millrace::webhooks
