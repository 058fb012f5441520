#include "kubeclient/watch_decoder.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace millrace::kube {
namespace {

// A realistic stream: events of several types, unicode, an escaped newline inside a string, and
// a blank keep-alive line.
const std::string kStream =
    R"({"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"1"},"data":{"k":"line1\nline2 – ü"}}})"
    "\n"
    R"({"type":"MODIFIED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"2"}}})"
    "\n\n"
    R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","metadata":{"resourceVersion":"7"}}})"
    "\n"
    R"({"type":"DELETED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"8"}}})"
    "\n"
    R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"
    "\n";

std::vector<std::string> Decode(const std::vector<std::string_view>& chunks) {
  WatchDecoder decoder;
  std::vector<std::string> out;
  const auto drain = [&](std::optional<Result<WatchEvent>> event) {
    if (!event) return false;
    if (*event) {
      out.push_back(std::string(EventTypeName((*event)->type)) + " " + (*event)->object.dump());
    } else {
      out.push_back("error " + event->error().message);
    }
    return true;
  };
  for (const auto chunk : chunks) {
    decoder.Feed(chunk);
    while (drain(decoder.Next())) {
    }
  }
  while (drain(decoder.Finish())) {
  }
  return out;
}

TEST(WatchDecoder, DecodesEveryEventType) {
  const auto events = Decode({kStream});
  ASSERT_EQ(events.size(), 5U);
  EXPECT_EQ(events[0].substr(0, 6), "ADDED ");
  EXPECT_EQ(events[1].substr(0, 9), "MODIFIED ");
  EXPECT_EQ(events[2].substr(0, 9), "BOOKMARK ");
  EXPECT_EQ(events[3].substr(0, 8), "DELETED ");
  EXPECT_EQ(events[4].substr(0, 6), "ERROR ");
}

TEST(WatchDecoder, SplittingAtEveryByteBoundaryDecodesIdentically) {
  const auto whole = Decode({kStream});
  for (size_t i = 0; i <= kStream.size(); ++i) {
    const std::string_view s(kStream);
    EXPECT_EQ(Decode({s.substr(0, i), s.substr(i)}), whole) << "split at " << i;
  }
  // Three-way splits at many positions, and one byte at a time.
  for (size_t i = 0; i <= kStream.size(); i += 7) {
    for (size_t j = i; j <= kStream.size(); j += 13) {
      const std::string_view s(kStream);
      EXPECT_EQ(Decode({s.substr(0, i), s.substr(i, j - i), s.substr(j)}), whole);
    }
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < kStream.size(); ++i)
    bytes.push_back(std::string_view(kStream).substr(i, 1));
  EXPECT_EQ(Decode(bytes), whole);
}

TEST(WatchDecoder, LastEventWithoutNewlineIsDecodedAtFinish) {
  const auto events = Decode({R"({"type":"ADDED","object":{}})"});
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0], "ADDED {}");
}

TEST(WatchDecoder, GarbageLinesAreDecodeErrorsAndDecodingGoesOn) {
  const auto events = Decode(
      {"not json\n{\"type\":\"SURPRISE\",\"object\":{}}\n{\"type\":\"ADDED\",\"object\":{}}\n"});
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(events[0].substr(0, 6), "error ");
  EXPECT_EQ(events[1], "error unknown watch event type SURPRISE");
  EXPECT_EQ(events[2], "ADDED {}");
}

TEST(WatchDecoder, BufferHoldsOnlyTheUndecodedTail) {
  WatchDecoder decoder;
  for (int i = 0; i < 1000; ++i) {
    decoder.Feed("{\"type\":\"ADDED\",\"object\":{\"n\":" + std::to_string(i) + "}}\n{\"ty");
    auto event = decoder.Next();
    ASSERT_TRUE(event && *event);
    decoder.Feed("pe\":\"DELETED\",\"object\":{}}\n");
    ASSERT_TRUE(decoder.Next());
    EXPECT_EQ(decoder.buffered(), 0U);
  }
}

}  // namespace
}  // namespace millrace::kube
