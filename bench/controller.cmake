# Controller runtime micro benchmarks: work queue throughput, store bytes per cached object
# (including 10,000 Jobs + 10,000 Pods trimmed as millrace-controller caches them).
add_executable(controller_bench ${CMAKE_CURRENT_LIST_DIR}/controller_bench.cc)
target_link_libraries(controller_bench PRIVATE millrace_controller millrace_reconcilers benchmark::benchmark)
millrace_target_warnings(controller_bench)
