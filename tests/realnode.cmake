# Tests on the real node (scripts/cluster up --real-node): containers that really run, and the
# operator installed by its own chart and kustomize base. The node's bridge, iptables rules and
# sysctls are the host's, so one such binary runs at a time.
millrace_operator_test(realnode_workload_test SOURCES integration/realnode/workload_test.cc)
millrace_integration_test(realnode_install_test SOURCES integration/realnode/install_test.cc)
set_tests_properties(realnode_workload_test realnode_install_test PROPERTIES
  ENVIRONMENT "MILLRACE_TEST_CLUSTER_ARGS=--real-node"
  RESOURCE_LOCK real-node
  LABELS "integration;real-node")
# Five installs of the operator, an upgrade and an uninstall, and a wait for a zone's quota.
set_tests_properties(realnode_install_test PROPERTIES TIMEOUT 1800)
