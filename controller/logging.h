#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/common.h>

namespace spdlog {
class logger;
}

namespace millrace::controller {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
std::optional<LogLevel> ParseLogLevel(std::string_view name);  // "debug", "info", "warn", "error"

// A structured logger: one JSON object per line,
//   {"ts":"2026-11-22T09:02:29.123Z","level":"info","msg":"...","controller":"task",...}
// A Logger is a cheap value that carries fields; With() returns a copy with one more field, so
// a worker derives `logger.With("object", key).With("reconcileID", id)` and every line it writes
// names them. Writing is thread-safe (spdlog's _mt sinks). A default-constructed Logger discards.
class Logger {
 public:
  Logger();
  Logger(spdlog::sink_ptr sink, LogLevel level);
  static Logger Stderr(LogLevel level);

  Logger With(std::string_view key, const nlohmann::json& value) const;

  void Debug(std::string_view msg) const;
  void Info(std::string_view msg) const;
  void Warn(std::string_view msg) const;
  void Error(std::string_view msg) const;

 private:
  void Log(spdlog::level::level_enum level, std::string_view msg) const;
  std::shared_ptr<spdlog::logger> logger_;
  std::string fields_;  // rendered `,"key":value` pairs
};

}  // namespace millrace::controller
