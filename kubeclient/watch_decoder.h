#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kubeclient/error.h"

namespace millrace::kube {

enum class EventType { kAdded, kModified, kDeleted, kBookmark, kError };

std::string_view EventTypeName(EventType type);

// One event of a watch stream: {"type": "ADDED", "object": {...}}.
struct WatchEvent {
  EventType type = EventType::kAdded;
  nlohmann::json object;
};

// Splits a watch response body (newline-delimited JSON) into events, whatever the chunking of the
// bytes: Feed() any number of bytes, then call Next() until it returns nullopt. No I/O, no threads.
class WatchDecoder {
 public:
  void Feed(std::string_view bytes);

  // The next complete event; nullopt when no complete line is buffered. A line that is not a watch
  // event is an Error of kind Decode (the line is consumed, so decoding can go on).
  std::optional<Result<WatchEvent>> Next();

  // At the end of the stream: the last event when it lacks its trailing newline.
  std::optional<Result<WatchEvent>> Finish();

  // Bytes received but not yet decoded.
  size_t buffered() const { return buffer_.size() - pos_; }

 private:
  std::string buffer_;
  size_t pos_ = 0;  // start of the undecoded bytes in buffer_
};

// Decodes one event line (without its newline).
Result<WatchEvent> DecodeWatchEvent(std::string_view line);

}  // namespace millrace::kube
