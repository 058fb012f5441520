# kubeclient load benchmark against a running control plane (see docs/kubeclient.md).
add_executable(kubeclient_list_bench ${CMAKE_CURRENT_LIST_DIR}/kubeclient_list_bench.cc)
target_link_libraries(kubeclient_list_bench PRIVATE millrace_kubeclient)
millrace_target_warnings(kubeclient_list_bench)
