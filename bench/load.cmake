# The load generator of bench/load (docs/benchmarks.md).
add_executable(operator_load ${CMAKE_CURRENT_LIST_DIR}/operator_load.cc)
target_link_libraries(operator_load PRIVATE millrace_kubeclient)
millrace_target_warnings(operator_load)
