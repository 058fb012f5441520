#pragma once

// Pure DAG algorithms over a Pipeline's steps, shared by validation and the Pipeline reconciler.
// Everything here is O(V + E) and iterative (no recursion), so 10,000-step chains are fine.

#include <cstddef>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace millrace::api {
struct Step;
}

namespace millrace::api::dag {

// Nodes are 0..size()-1; deps[n] are the nodes n depends on (edges n -> dep).
struct Graph {
  std::vector<std::vector<size_t>> deps;

  size_t size() const { return deps.size(); }
  // dependents[n]: the nodes that depend on n (the reverse edges).
  std::vector<std::vector<size_t>> Dependents() const;
};

// A graph over named steps. Dependencies on names not in `steps` are left out of the graph and
// listed in `unknown` as (step index, dependsOn index) for the caller to report; a duplicate name
// keeps its first index.
struct StepGraph {
  Graph graph;
  std::vector<std::string_view> names;  // views into the steps
  std::unordered_map<std::string_view, size_t> index;
  std::vector<std::pair<size_t, size_t>> unknown;

  std::optional<size_t> Find(std::string_view name) const;
};
StepGraph BuildStepGraph(std::span<const Step> steps);

// Nodes ordered so that every node comes after its dependencies (Kahn's algorithm: the nodes with
// no dependencies in input order, then breadth-first); or, if
// there is a cycle, the cycle as a node path whose first and last element are the same node:
// [a, b, a] means a depends on b and b on a.
std::expected<std::vector<size_t>, std::vector<size_t>> TopologicalOrder(const Graph& graph);

// A cycle (as above), or nullopt if the graph is acyclic.
std::optional<std::vector<size_t>> FindCycle(const Graph& graph);

// "a -> b -> a".
std::string FormatCycle(std::span<const size_t> cycle, std::span<const std::string_view> names);

// ancestors[n] is true for every node `node` depends on, directly or transitively.
std::vector<bool> Ancestors(const Graph& graph, size_t node);

// What a scheduler needs to know about each node.
enum class NodeState {
  kPending,  // not started
  kRunning,  // started, not done
  kDone,     // its dependants may start (Succeeded, Skipped, or a Ready streaming step)
  kFailed,   // Failed or Cancelled: its dependants can never start
};

// Pending nodes whose dependencies are all kDone, in node order.
std::vector<size_t> ReadySet(const Graph& graph, std::span<const NodeState> states);

// Pending nodes that can never start because a dependency failed, directly or transitively.
std::vector<size_t> Unreachable(const Graph& graph, std::span<const NodeState> states);

}  // namespace millrace::api::dag
