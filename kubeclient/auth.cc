#include "kubeclient/auth.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kubeclient/util.h"

extern char** environ;  // NOLINT: POSIX

namespace millrace::kube {
namespace {

Error AuthError(std::string message) { return MakeError(ErrorKind::kConfig, std::move(message)); }

struct ProcessOutput {
  int status = -1;
  std::string out, err;
};

// Runs argv with `env`, stdin from /dev/null, capturing stdout and stderr; gives up after
// `timeout` (the child is killed).
Result<ProcessOutput> Run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                          std::chrono::milliseconds timeout) {
  std::array<int, 2> out_pipe{}, err_pipe{};
  if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0 || ::pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
    return std::unexpected(AuthError(std::string("pipe: ") + std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, cargv[0], &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return std::unexpected(
        AuthError("exec plugin " + argv[0] + " could not be started: " + std::strerror(rc)));
  }
  ProcessOutput result;
  std::array<pollfd, 2> fds{pollfd{out_pipe[0], POLLIN, 0}, pollfd{err_pipe[0], POLLIN, 0}};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  int open = 2;
  std::array<char, 4096> buf{};
  while (open > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buf.data(), buf.size());
      if (got > 0) {
        (i == 0 ? result.out : result.err).append(buf.data(), static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return std::unexpected(AuthError("exec plugin " + argv[0] + " timed out"));
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> ParseRfc3339(const std::string& text) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  size_t pos = static_cast<size_t>(consumed);
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
  }
  long offset = 0;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int hh = 0, mm = 0;
    if (std::sscanf(text.c_str() + pos + 1, "%2d:%2d", &hh, &mm) != 2) return std::nullopt;
    offset = (text[pos] == '+' ? 1 : -1) * (hh * 3600L + mm * 60L);
  } else if (pos >= text.size() || (text[pos] != 'Z' && text[pos] != 'z')) {
    return std::nullopt;
  }
  const time_t t = ::timegm(&tm);
  if (t == -1) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t - offset);
}

Authenticator::Authenticator(const Config& config, Clock clock)
    : config_(config), clock_(std::move(clock)) {}

Result<Credentials> Authenticator::Get() {
  const std::lock_guard lock(mu_);
  if (config_.exec) {
    if (have_cached_ && (!expiry_ || clock_() < *expiry_)) return cached_;
    auto fresh = RunExec();
    if (!fresh) return fresh;
    have_cached_ = true;
    cached_ = *fresh;
    return cached_;
  }
  if (!config_.token.empty() || config_.token_file.empty())
    return Credentials{config_.token, {}, {}};
  struct stat st {};
  if (::stat(config_.token_file.c_str(), &st) != 0) {
    if (have_cached_) return cached_;  // a rotation in progress: keep the last good token
    return std::unexpected(
        AuthError("cannot stat token file " + config_.token_file + ": " + std::strerror(errno)));
  }
  const int64_t mtime = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (!have_cached_ || mtime != file_mtime_ns_ || st.st_size != file_size_) {
    auto text = internal::ReadFile(config_.token_file, "token file");
    if (!text) {
      if (have_cached_) return cached_;
      return std::unexpected(text.error());
    }
    std::string token = std::move(*text);
    token.erase(token.find_last_not_of(" \n\r\t") + 1);
    cached_ = Credentials{std::move(token), {}, {}};
    have_cached_ = true;
    file_mtime_ns_ = mtime;
    file_size_ = st.st_size;
  }
  return cached_;
}

bool Authenticator::Invalidate() {
  const std::lock_guard lock(mu_);
  if (config_.exec || !config_.token_file.empty()) {
    have_cached_ = false;
    expiry_.reset();
    return true;
  }
  return false;
}

// Called with mu_ held.
Result<Credentials> Authenticator::RunExec() {
  const ExecConfig& x = *config_.exec;
  nlohmann::json info = {{"apiVersion", x.api_version},
                         {"kind", "ExecCredential"},
                         {"spec", {{"interactive", false}}}};
  if (x.provide_cluster_info) {
    nlohmann::json cluster = {{"server", config_.server},
                              {"insecure-skip-tls-verify", config_.insecure_skip_tls_verify}};
    if (!config_.ca_data.empty()) {
      cluster["certificate-authority-data"] = internal::Base64Encode(config_.ca_data);
    }
    info["spec"]["cluster"] = std::move(cluster);
  }
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  for (const auto& [k, v] : x.env) env.push_back(k + "=" + v);
  env.push_back("KUBERNETES_EXEC_INFO=" + info.dump());
  std::vector<std::string> argv{x.command};
  argv.insert(argv.end(), x.args.begin(), x.args.end());

  auto run = Run(argv, env, std::chrono::seconds(60));
  if (!run) return std::unexpected(run.error());
  if (run->status != 0) {
    return std::unexpected(AuthError("exec plugin " + x.command + " exited with " +
                                     std::to_string(run->status) + ": " + run->err));
  }
  auto cred = nlohmann::json::parse(run->out, nullptr, /*allow_exceptions=*/false);
  if (!cred.is_object() || !cred.contains("status") || !cred["status"].is_object()) {
    return std::unexpected(
        AuthError("exec plugin " + x.command +
                  " did not print an ExecCredential with a status: " + run->out.substr(0, 200)));
  }
  if (cred.value("apiVersion", "") != x.api_version) {
    return std::unexpected(AuthError("exec plugin " + x.command + " answered apiVersion '" +
                                     cred.value("apiVersion", "") + "', want '" + x.api_version +
                                     "'"));
  }
  const auto& status = cred["status"];
  Credentials out;
  out.token = status.value("token", "");
  out.cert_pem = status.value("clientCertificateData", "");
  out.key_pem = status.value("clientKeyData", "");
  if (out.token.empty() && (out.cert_pem.empty() || out.key_pem.empty())) {
    return std::unexpected(AuthError("exec plugin " + x.command +
                                     " gave neither a token nor a client certificate and key"));
  }
  expiry_.reset();
  if (const std::string exp = status.value("expirationTimestamp", ""); !exp.empty()) {
    expiry_ = ParseRfc3339(exp);
    if (!expiry_) {
      return std::unexpected(
          AuthError("exec plugin " + x.command + ": bad expirationTimestamp '" + exp + "'"));
    }
  }
  return out;
}

}  // namespace millrace::kube
