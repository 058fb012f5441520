# Tests of charts/ and config/: the install paths against a real control plane.

millrace_integration_test(packaging_integration_test
  SOURCES integration/packaging/install_test.cc
  LIBS millrace_crds_testdata)

# The README's demo command, run as a new user would but without a terminal: it must end with every
# example pipeline Succeeded and the model serving in Production, answering through its stable
# Service (scripts/demo exits non-zero otherwise). Its own cluster name, so a user's demo cluster is
# left alone; it runs on the real node, so one at a time with the other real-node tests. Its
# timeout leaves room for a cold image build (apt and a full C++ build in the Dockerfile: 13 min
# measured on 2 cores shared with other tests).
add_test(NAME demo_test COMMAND ${PROJECT_SOURCE_DIR}/scripts/demo --down --non-interactive)
set_tests_properties(demo_test PROPERTIES LABELS "integration;real-node" TIMEOUT 1500
  RESOURCE_LOCK real-node ENVIRONMENT "MILLRACE_DEMO_CLUSTER=demo-test")
