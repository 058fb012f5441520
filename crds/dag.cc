#include "crds/dag.h"

#include <algorithm>

#include "crds/pipeline.h"

namespace millrace::api::dag {

std::vector<std::vector<size_t>> Graph::Dependents() const {
  std::vector<std::vector<size_t>> out(deps.size());
  for (size_t n = 0; n < deps.size(); ++n)
    for (const size_t d : deps[n]) out[d].push_back(n);
  return out;
}

std::optional<size_t> StepGraph::Find(std::string_view name) const {
  const auto it = index.find(name);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

StepGraph BuildStepGraph(std::span<const Step> steps) {
  StepGraph g;
  g.names.reserve(steps.size());
  g.index.reserve(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    g.names.emplace_back(steps[i].name);
    g.index.emplace(steps[i].name, i);  // keeps the first of duplicates
  }
  g.graph.deps.resize(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& depends_on = steps[i].depends_on;
    for (size_t k = 0; k < depends_on.size(); ++k) {
      const auto it = g.index.find(depends_on[k]);
      if (it == g.index.end()) {
        g.unknown.emplace_back(i, k);
      } else {
        g.graph.deps[i].push_back(it->second);
      }
    }
  }
  return g;
}

std::optional<std::vector<size_t>> FindCycle(const Graph& graph) {
  enum : unsigned char { kWhite, kGrey, kBlack };
  const size_t n = graph.size();
  std::vector<unsigned char> color(n, kWhite);
  // Explicit DFS stack of (node, next dependency to look at).
  std::vector<std::pair<size_t, size_t>> stack;
  for (size_t root = 0; root < n; ++root) {
    if (color[root] != kWhite) continue;
    stack.emplace_back(root, 0);
    color[root] = kGrey;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next == graph.deps[node].size()) {
        color[node] = kBlack;
        stack.pop_back();
        continue;
      }
      const size_t dep = graph.deps[node][next++];
      if (color[dep] == kGrey) {
        // The cycle is the part of the stack from dep to node, closed by dep again.
        std::vector<size_t> cycle;
        auto it = std::find_if(stack.begin(), stack.end(),
                               [&](const auto& frame) { return frame.first == dep; });
        for (; it != stack.end(); ++it) cycle.push_back(it->first);
        cycle.push_back(dep);
        return cycle;
      }
      if (color[dep] == kWhite) {
        color[dep] = kGrey;
        stack.emplace_back(dep, 0);
      }
    }
  }
  return std::nullopt;
}

std::expected<std::vector<size_t>, std::vector<size_t>> TopologicalOrder(const Graph& graph) {
  const size_t n = graph.size();
  // Kahn's algorithm over the reverse edges, taking ready nodes in index order.
  std::vector<size_t> missing(n);
  for (size_t i = 0; i < n; ++i) missing[i] = graph.deps[i].size();
  const auto dependents = graph.Dependents();
  std::vector<size_t> order;
  order.reserve(n);
  std::vector<size_t> ready;
  for (size_t i = 0; i < n; ++i)
    if (missing[i] == 0) ready.push_back(i);
  // A FIFO over `order` itself keeps this linear: order doubles as the queue.
  size_t head = 0;
  order = std::move(ready);
  while (head < order.size()) {
    const size_t node = order[head++];
    for (const size_t d : dependents[node])
      if (--missing[d] == 0) order.push_back(d);
  }
  if (order.size() == n) return order;
  auto cycle = FindCycle(graph);
  return std::unexpected(cycle ? std::move(*cycle) : std::vector<size_t>{});
}

std::string FormatCycle(std::span<const size_t> cycle, std::span<const std::string_view> names) {
  std::string out;
  for (const size_t n : cycle) {
    if (!out.empty()) out += " -> ";
    out += n < names.size() ? std::string(names[n]) : std::to_string(n);
  }
  return out;
}

std::vector<bool> Ancestors(const Graph& graph, size_t node) {
  std::vector<bool> seen(graph.size(), false);
  std::vector<size_t> stack(graph.deps[node].begin(), graph.deps[node].end());
  while (!stack.empty()) {
    const size_t n = stack.back();
    stack.pop_back();
    if (seen[n]) continue;
    seen[n] = true;
    for (const size_t d : graph.deps[n])
      if (!seen[d]) stack.push_back(d);
  }
  return seen;
}

std::vector<size_t> ReadySet(const Graph& graph, std::span<const NodeState> states) {
  std::vector<size_t> out;
  for (size_t n = 0; n < graph.size(); ++n) {
    if (states[n] != NodeState::kPending) continue;
    const auto& deps = graph.deps[n];
    if (std::all_of(deps.begin(), deps.end(),
                    [&](size_t d) { return states[d] == NodeState::kDone; })) {
      out.push_back(n);
    }
  }
  return out;
}

std::vector<size_t> Unreachable(const Graph& graph, std::span<const NodeState> states) {
  // Propagate "blocked" from failed nodes along the reverse edges.
  const auto dependents = graph.Dependents();
  std::vector<bool> blocked(graph.size(), false);
  std::vector<size_t> stack;
  for (size_t n = 0; n < graph.size(); ++n)
    if (states[n] == NodeState::kFailed) stack.push_back(n);
  while (!stack.empty()) {
    const size_t n = stack.back();
    stack.pop_back();
    for (const size_t d : dependents[n]) {
      if (blocked[d] || states[d] != NodeState::kPending) continue;
      blocked[d] = true;
      stack.push_back(d);
    }
  }
  std::vector<size_t> out;
  for (size_t n = 0; n < graph.size(); ++n)
    if (blocked[n]) out.push_back(n);
  return out;
}

}  // namespace millrace::api::dag
