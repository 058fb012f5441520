#include "controller/logging.h"

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

namespace millrace::controller {
namespace {

std::vector<nlohmann::json> Lines(const std::ostringstream& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST(LoggingTest, EachLineIsOneJsonObjectWithItsFields) {
  std::ostringstream out;
  Logger root(std::make_shared<spdlog::sinks::ostream_sink_mt>(out), LogLevel::kInfo);
  const Logger logger = root.With("controller", "task").With("object", "ns/a");
  logger.With("reconcileID", "00ff").With("attempt", 3).Info("reconciled \"a\"\nok");
  logger.Error("failed");

  const auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["msg"], "reconciled \"a\"\nok");
  EXPECT_EQ(lines[0]["controller"], "task");
  EXPECT_EQ(lines[0]["object"], "ns/a");
  EXPECT_EQ(lines[0]["reconcileID"], "00ff");
  EXPECT_EQ(lines[0]["attempt"], 3);
  EXPECT_TRUE(lines[0]["ts"].get<std::string>().ends_with("Z"));
  EXPECT_EQ(lines[1]["level"], "error");
  EXPECT_FALSE(lines[1].contains("reconcileID"));  // With() returned a copy
}

TEST(LoggingTest, LinesBelowTheLevelAreDropped) {
  std::ostringstream out;
  Logger logger(std::make_shared<spdlog::sinks::ostream_sink_mt>(out), LogLevel::kWarn);
  logger.Debug("d");
  logger.Info("i");
  logger.Warn("w");
  const auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["msg"], "w");
}

TEST(LoggingTest, InvalidUtf8IsReplacedNotThrown) {
  std::ostringstream out;
  Logger logger(std::make_shared<spdlog::sinks::ostream_sink_mt>(out), LogLevel::kInfo);
  logger.With("error", std::string("bad \xff byte")).Info("x\xfe");
  EXPECT_EQ(Lines(out).size(), 1u);
}

TEST(LoggingTest, DefaultLoggerDiscards) {
  Logger logger;
  logger.Error("nobody sees this");  // must not crash or print
}

TEST(LoggingTest, ParseLogLevel) {
  EXPECT_EQ(ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("warn"), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("loud"), std::nullopt);
}

}  // namespace
}  // namespace millrace::controller
