#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace millrace::kube {

// Requests counted by verb (get, list, watch, create, update, patch, apply, delete, discovery)
// and HTTP code (0: no answer), and new connections. Every attempt counts, retries included.
// Thread-safe.
class RequestMetrics {
 public:
  using Key = std::pair<std::string, int>;  // verb, code

  void Record(const std::string& verb, int code) {
    const std::lock_guard lock(mu_);
    ++counts_[{verb, code}];
  }

  std::map<Key, uint64_t> Snapshot() const {
    const std::lock_guard lock(mu_);
    return counts_;
  }

  // A new TCP connection was opened (no idle one could be reused).
  void RecordConnection() {
    const std::lock_guard lock(mu_);
    ++connections_;
  }
  uint64_t connections() const {
    const std::lock_guard lock(mu_);
    return connections_;
  }

  uint64_t Count(const std::string& verb, int code) const {
    const std::lock_guard lock(mu_);
    const auto it = counts_.find({verb, code});
    return it == counts_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<Key, uint64_t> counts_;  // guarded by mu_
  uint64_t connections_ = 0;        // guarded by mu_
};

}  // namespace millrace::kube
