#include "controller/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

namespace millrace::failpoint {
namespace {

struct Action {
  enum class Kind { kKill, kSleep };
  Kind kind = Kind::kKill;
  std::chrono::milliseconds sleep{0};
  std::optional<int64_t> remaining;  // N*ACTION: evaluations left
  int percent = 100;                 // P%ACTION
  std::string text;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, Action, std::less<>> armed;  // guarded by mu
  std::atomic<bool> any{false};
};

Registry& Failpoints() {
  static Registry registry;
  return registry;
}

std::optional<int64_t> Number(std::string_view s) {
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n < 0) return std::nullopt;
  return n;
}

std::expected<Action, std::string> Parse(std::string_view text) {
  Action action;
  action.text = std::string(text);
  if (const auto star = text.find('*'); star != std::string_view::npos) {
    const auto n = Number(text.substr(0, star));
    if (!n || *n == 0) return std::unexpected("bad count in \"" + std::string(text) + "\"");
    action.remaining = *n;
    text = text.substr(star + 1);
  } else if (const auto pct = text.find('%'); pct != std::string_view::npos) {
    const auto p = Number(text.substr(0, pct));
    if (!p || *p == 0 || *p > 100) {
      return std::unexpected("bad percentage in \"" + std::string(text) + "\"");
    }
    action.percent = static_cast<int>(*p);
    text = text.substr(pct + 1);
  }
  if (text == "kill") return action;
  if (text.starts_with("sleep(") && text.ends_with(")")) {
    const auto ms = Number(text.substr(6, text.size() - 7));
    if (!ms) return std::unexpected("bad milliseconds in \"" + std::string(text) + "\"");
    action.kind = Action::Kind::kSleep;
    action.sleep = std::chrono::milliseconds{*ms};
    return action;
  }
  return std::unexpected("unknown action \"" + std::string(text) +
                         "\" (want kill, sleep(MS), N*ACTION or P%ACTION)");
}

}  // namespace

bool Enabled() {
#ifdef MILLRACE_FAILPOINTS
  return true;
#else
  return false;
#endif
}

std::expected<void, std::string> Arm(std::string_view name, std::string_view action) {
  if (name.empty()) return std::unexpected("a failpoint needs a name");
  auto parsed = Parse(action);
  if (!parsed) return std::unexpected(parsed.error());
  Registry& r = Failpoints();
  const std::lock_guard lock(r.mu);
  r.armed.insert_or_assign(std::string(name), std::move(*parsed));
  r.any = true;
  return {};
}

void Disarm(std::string_view name) {
  Registry& r = Failpoints();
  const std::lock_guard lock(r.mu);
  if (const auto it = r.armed.find(name); it != r.armed.end()) r.armed.erase(it);
  r.any = !r.armed.empty();
}

std::string List() {
  Registry& r = Failpoints();
  const std::lock_guard lock(r.mu);
  std::string out;
  for (const auto& [name, action] : r.armed) out += name + "=" + action.text + "\n";
  return out;
}

std::expected<void, std::string> ArmFromEnvironment() {
  const char* env = std::getenv("MILLRACE_FAILPOINTS");
  if (env == nullptr || *env == '\0') return {};
  std::string_view rest(env);
  while (!rest.empty()) {
    const auto semi = rest.find(';');
    const std::string_view entry = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
    if (entry.empty()) continue;
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) {
      return std::unexpected("MILLRACE_FAILPOINTS: \"" + std::string(entry) +
                             "\" is not name=action");
    }
    if (auto armed = Arm(entry.substr(0, eq), entry.substr(eq + 1)); !armed) {
      return std::unexpected("MILLRACE_FAILPOINTS: " + armed.error());
    }
  }
  return {};
}

void Evaluate(std::string_view name) {
  Registry& r = Failpoints();
  if (!r.any.load(std::memory_order_relaxed)) return;
  Action action;
  {
    const std::lock_guard lock(r.mu);
    const auto it = r.armed.find(name);
    if (it == r.armed.end()) return;
    action = it->second;
    if (action.percent < 100) {
      thread_local std::mt19937 rng{std::random_device{}()};
      if (std::uniform_int_distribution<int>(1, 100)(rng) > action.percent) return;
    }
    if (it->second.remaining && --*it->second.remaining == 0) {
      r.armed.erase(it);
      r.any = !r.armed.empty();
    }
  }
  switch (action.kind) {
    case Action::Kind::kKill:
      ::kill(::getpid(), SIGKILL);
      std::_Exit(137);  // not reached
    case Action::Kind::kSleep:
      std::this_thread::sleep_for(action.sleep);
      return;
  }
}

}  // namespace millrace::failpoint
