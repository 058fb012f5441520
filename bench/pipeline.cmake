# Pipeline DAG scheduling micro benchmarks: validation and planning of up to 10,000 steps.
add_executable(pipeline_bench ${CMAKE_CURRENT_LIST_DIR}/pipeline_bench.cc)
target_link_libraries(pipeline_bench PRIVATE millrace_reconcilers benchmark::benchmark)
millrace_target_warnings(pipeline_bench)
