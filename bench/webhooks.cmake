# Admission latency of the webhook server (see docs/webhooks.md).
add_executable(webhook_bench ${CMAKE_CURRENT_LIST_DIR}/webhook_bench.cc)
target_link_libraries(webhook_bench PRIVATE millrace_webhooks CURL::libcurl)
target_compile_definitions(webhook_bench PRIVATE MILLRACE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
millrace_target_warnings(webhook_bench)
