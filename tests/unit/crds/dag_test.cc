#include "crds/dag.h"

#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crds/pipeline.h"

namespace millrace::api::dag {
namespace {

using ::testing::ElementsAre;

Step S(std::string name, std::vector<std::string> deps = {}) {
  Step s;
  s.name = std::move(name);
  s.depends_on = std::move(deps);
  s.task.image = "busybox";
  return s;
}

TEST(Dag, DiamondOrdersDependenciesFirst) {
  const std::vector<Step> steps{S("register", {"train", "evaluate"}), S("train", {"preprocess"}),
                                S("evaluate", {"preprocess"}), S("preprocess", {"ingest"}),
                                S("ingest")};
  const auto g = BuildStepGraph(steps);
  EXPECT_TRUE(g.unknown.empty());
  const auto order = TopologicalOrder(g.graph);
  ASSERT_TRUE(order.has_value());
  std::vector<std::string_view> names;
  for (const size_t n : *order) names.push_back(g.names[n]);
  EXPECT_THAT(names, ElementsAre("ingest", "preprocess", "train", "evaluate", "register"));
}

TEST(Dag, ReadySetAndUnreachableFollowStates) {
  const std::vector<Step> steps{S("a"), S("b", {"a"}), S("c", {"a"}), S("d", {"b", "c"}), S("e")};
  const auto g = BuildStepGraph(steps);
  using enum NodeState;
  std::vector<NodeState> st{kPending, kPending, kPending, kPending, kPending};
  EXPECT_THAT(ReadySet(g.graph, st), ElementsAre(0, 4));
  st = {kDone, kPending, kPending, kPending, kRunning};
  EXPECT_THAT(ReadySet(g.graph, st), ElementsAre(1, 2));
  st = {kDone, kDone, kRunning, kPending, kDone};
  EXPECT_TRUE(ReadySet(g.graph, st).empty());
  st = {kDone, kDone, kDone, kPending, kDone};
  EXPECT_THAT(ReadySet(g.graph, st), ElementsAre(3));
  st = {kFailed, kPending, kPending, kPending, kPending};
  EXPECT_THAT(Unreachable(g.graph, st), ElementsAre(1, 2, 3));
  EXPECT_THAT(ReadySet(g.graph, st), ElementsAre(4));
}

TEST(Dag, FindsCyclesWithTheirPath) {
  const std::vector<Step> steps{S("a", {"c"}), S("b", {"a"}), S("c", {"b"}), S("d")};
  const auto g = BuildStepGraph(steps);
  const auto order = TopologicalOrder(g.graph);
  ASSERT_FALSE(order.has_value());
  EXPECT_EQ(FormatCycle(order.error(), g.names), "a -> c -> b -> a");
  EXPECT_TRUE(FindCycle(g.graph).has_value());
}

TEST(Dag, SelfDependencyIsACycle) {
  const std::vector<Step> steps{S("a", {"a"})};
  const auto g = BuildStepGraph(steps);
  const auto cycle = FindCycle(g.graph);
  ASSERT_TRUE(cycle);
  EXPECT_EQ(FormatCycle(*cycle, g.names), "a -> a");
}

TEST(Dag, UnknownDependenciesAreReportedNotFollowed) {
  const std::vector<Step> steps{S("a"), S("b", {"a", "zzz"})};
  const auto g = BuildStepGraph(steps);
  EXPECT_THAT(g.unknown, ElementsAre(std::pair<size_t, size_t>{1, 1}));
  EXPECT_THAT(g.graph.deps[1], ElementsAre(0));
}

TEST(Dag, AncestorsAreTransitive) {
  const std::vector<Step> steps{S("a"), S("b", {"a"}), S("c", {"b"}), S("x")};
  const auto g = BuildStepGraph(steps);
  EXPECT_THAT(Ancestors(g.graph, 2), ElementsAre(true, true, false, false));
  EXPECT_THAT(Ancestors(g.graph, 0), ElementsAre(false, false, false, false));
}

TEST(Dag, TenThousandStepChainIsFast) {
  constexpr size_t kSteps = 10000;
  std::vector<Step> steps;
  steps.reserve(kSteps);
  // Listed last-first, so the order has to be computed, not read off.
  for (size_t i = kSteps; i-- > 0;) {
    steps.push_back(
        S("s" + std::to_string(i), i == 0 ? std::vector<std::string>{}
                                          : std::vector<std::string>{"s" + std::to_string(i - 1)}));
  }
  const auto start = std::chrono::steady_clock::now();
  const auto g = BuildStepGraph(steps);
  const auto order = TopologicalOrder(g.graph);
  const bool acyclic = !FindCycle(g.graph).has_value();
  std::vector<NodeState> st(kSteps, NodeState::kPending);
  const auto ready = ReadySet(g.graph, st);
  const auto ancestors = Ancestors(g.graph, 0);  // the last step of the chain
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(order.has_value());
  EXPECT_TRUE(acyclic);
  EXPECT_EQ(g.names[order->front()], "s0");
  EXPECT_EQ(g.names[order->back()], "s9999");
  EXPECT_THAT(ready, ElementsAre(kSteps - 1));
  EXPECT_EQ(std::count(ancestors.begin(), ancestors.end(), true), 9999);
  EXPECT_LT(elapsed, std::chrono::milliseconds(500));

  // And the same chain closed into a loop is found without recursion.
  steps.back().depends_on = {"s9999"};
  const auto loop = BuildStepGraph(steps);
  const auto cycle = FindCycle(loop.graph);
  ASSERT_TRUE(cycle);
  EXPECT_EQ(cycle->size(), kSteps + 1);
}

}  // namespace
}  // namespace millrace::api::dag
