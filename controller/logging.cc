#include "controller/logging.h"

#include <utility>

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace millrace::controller {
namespace {

std::string Quote(std::string_view s) {
  // Invalid UTF-8 (e.g. from an error message) is replaced rather than thrown on.
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> MakeLogger(spdlog::sink_ptr sink, LogLevel level) {
  // The payload (%v) is `"msg":...,fields`; ts and level come from spdlog, in UTC.
  sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})", spdlog::pattern_time_type::utc));
  auto logger = std::make_shared<spdlog::logger>("millrace", std::move(sink));
  logger->set_level(ToSpdlog(level));
  return logger;
}

}  // namespace

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return std::nullopt;
}

Logger::Logger() {
  static const std::shared_ptr<spdlog::logger> discard = [] {
    auto logger = MakeLogger(std::make_shared<spdlog::sinks::null_sink_mt>(), LogLevel::kError);
    logger->set_level(spdlog::level::off);
    return logger;
  }();
  logger_ = discard;
}

Logger::Logger(spdlog::sink_ptr sink, LogLevel level)
    : logger_(MakeLogger(std::move(sink), level)) {}

Logger Logger::Stderr(LogLevel level) {
  return Logger(std::make_shared<spdlog::sinks::stderr_sink_mt>(), level);
}

Logger Logger::With(std::string_view key, const nlohmann::json& value) const {
  Logger copy = *this;
  copy.fields_ += ',';
  copy.fields_ += Quote(key);
  copy.fields_ += ':';
  copy.fields_ += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return copy;
}

void Logger::Debug(std::string_view msg) const { Log(spdlog::level::debug, msg); }
void Logger::Info(std::string_view msg) const { Log(spdlog::level::info, msg); }
void Logger::Warn(std::string_view msg) const { Log(spdlog::level::warn, msg); }
void Logger::Error(std::string_view msg) const { Log(spdlog::level::err, msg); }

void Logger::Log(spdlog::level::level_enum level, std::string_view msg) const {
  if (!logger_->should_log(level)) return;
  const std::string payload = "\"msg\":" + Quote(msg) + fields_;
  logger_->log(level, spdlog::string_view_t(payload.data(), payload.size()));
}

}  // namespace millrace::controller
