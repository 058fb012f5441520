# Controller runtime micro benchmarks: work queue throughput, store bytes per cached object.
add_executable(controller_bench ${CMAKE_CURRENT_LIST_DIR}/controller_bench.cc)
target_link_libraries(controller_bench PRIVATE millrace_controller benchmark::benchmark)
millrace_target_warnings(controller_bench)
