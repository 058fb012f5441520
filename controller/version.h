#pragma once

#include <string_view>

namespace millrace {

// The operator's version, stamped from the top-level CMake project version.
std::string_view Version();

}  // namespace millrace
