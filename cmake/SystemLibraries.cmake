# The system libraries Millrace links (Debian packages; scripts/bootstrap installs them).
#
# millrace_system_libs: OpenSSL, zlib and yaml-cpp. An executable whose target property
# MILLRACE_STATIC_BINARY is ON links their static archives, and millrace_static_binary() also links
# libstdc++ and libgcc statically, so only glibc is loaded at run time. That is the shipped
# millrace-controller: idle RSS 12.8 MiB instead of 15.3 (the linker keeps the parts of those
# libraries the binary uses, where shared ones are mapped and relocated whole; docs/benchmarks.md)
# and its image needs nothing but glibc.
# Tests and benchmarks link the shared libraries: they load libcurl, which brings its own libssl.so,
# and a static OpenSSL beside it would interpose its symbols.
#
# millrace_spdlog: spdlog and fmt as headers, so no libspdlog or libfmt is loaded either.
option(MILLRACE_STATIC_BINARY "Link millrace-controller statically against all but glibc" ON)

find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)

add_library(millrace_system_libs INTERFACE)
set(_millrace_static "$<BOOL:$<TARGET_PROPERTY:MILLRACE_STATIC_BINARY>>")
target_link_libraries(millrace_system_libs INTERFACE
  "$<$<NOT:${_millrace_static}>:OpenSSL::SSL;OpenSSL::Crypto;ZLIB::ZLIB;yaml-cpp>")
if(MILLRACE_STATIC_BINARY AND NOT MILLRACE_SANITIZE)
  foreach(lib ssl crypto z yaml-cpp)
    find_library(MILLRACE_STATIC_${lib} NAMES lib${lib}.a REQUIRED)
  endforeach()
  target_link_libraries(millrace_system_libs INTERFACE
    "$<${_millrace_static}:${MILLRACE_STATIC_ssl};${MILLRACE_STATIC_crypto};${MILLRACE_STATIC_z};${MILLRACE_STATIC_yaml-cpp};${CMAKE_DL_LIBS}>")
  # The C++ runtime linked statically as well (the sanitizers need the shared one).
  target_link_options(millrace_system_libs INTERFACE
    "$<${_millrace_static}:-static-libstdc++;-static-libgcc;-Wl,--gc-sections>")
endif()

# millrace_static_binary(TARGET): link TARGET as the shipped binary is linked (see above).
function(millrace_static_binary target)
  if(MILLRACE_STATIC_BINARY AND NOT MILLRACE_SANITIZE)
    set_target_properties(${target} PROPERTIES MILLRACE_STATIC_BINARY ON)
  endif()
endfunction()

add_library(millrace_spdlog INTERFACE)
target_compile_definitions(millrace_spdlog INTERFACE SPDLOG_FMT_EXTERNAL FMT_HEADER_ONLY=1)
target_include_directories(millrace_spdlog SYSTEM INTERFACE
  $<TARGET_PROPERTY:spdlog::spdlog_header_only,INTERFACE_INCLUDE_DIRECTORIES>
  $<TARGET_PROPERTY:fmt::fmt-header-only,INTERFACE_INCLUDE_DIRECTORIES>)
