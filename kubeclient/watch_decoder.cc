#include "kubeclient/watch_decoder.h"

#include <array>
#include <utility>

namespace millrace::kube {
namespace {

bool IsBlank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

}  // namespace

std::string_view EventTypeName(EventType type) {
  // The watch event types of the API server, in EventType's order.
  static constexpr std::array<std::string_view, 5> kNames{"ADDED", "MODIFIED", "DELETED",
                                                          "BOOKMARK", "ERROR"};
  const auto i = static_cast<size_t>(type);
  return i < kNames.size() ? kNames.at(i) : "ERROR";
}

Result<WatchEvent> DecodeWatchEvent(std::string_view line) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return std::unexpected(MakeError(ErrorKind::kDecode, "watch event is not a JSON object: " +
                                                             std::string(line.substr(0, 200))));
  }
  const auto type = parsed.find("type");
  if (type == parsed.end() || !type->is_string() || !parsed.contains("object")) {
    return std::unexpected(MakeError(ErrorKind::kDecode, "watch event without type or object: " +
                                                             std::string(line.substr(0, 200))));
  }
  WatchEvent event;
  const auto& t = type->get_ref<const std::string&>();
  if (t == "ADDED") {
    event.type = EventType::kAdded;
  } else if (t == "MODIFIED") {
    event.type = EventType::kModified;
  } else if (t == "DELETED") {
    event.type = EventType::kDeleted;
  } else if (t == "BOOKMARK") {
    event.type = EventType::kBookmark;
  } else if (t == "ERROR") {
    event.type = EventType::kError;
  } else {
    return std::unexpected(MakeError(ErrorKind::kDecode, "unknown watch event type " + t));
  }
  event.object.swap(parsed["object"]);
  return event;
}

void WatchDecoder::Feed(std::string_view bytes) {
  // Drop the consumed prefix before growing, so the buffer stays about one event long.
  if (pos_ > 0 && pos_ >= buffer_.size() / 2) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Result<WatchEvent>> WatchDecoder::Next() {
  while (true) {
    const size_t newline = buffer_.find('\n', pos_);
    if (newline == std::string::npos) return std::nullopt;
    const std::string_view line(buffer_.data() + pos_, newline - pos_);
    pos_ = newline + 1;
    if (IsBlank(line)) continue;
    return DecodeWatchEvent(line);
  }
}

std::optional<Result<WatchEvent>> WatchDecoder::Finish() {
  if (auto event = Next()) return event;
  const std::string_view rest(buffer_.data() + pos_, buffer_.size() - pos_);
  pos_ = buffer_.size();
  if (IsBlank(rest)) return std::nullopt;
  return DecodeWatchEvent(rest);
}

}  // namespace millrace::kube
