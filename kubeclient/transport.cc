#include "kubeclient/transport.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <utility>

#include <curl/curl.h>

#include "kubeclient/util.h"

#ifndef MILLRACE_VERSION
#define MILLRACE_VERSION "dev"
#endif

namespace millrace::kube::internal {
namespace {

constexpr int kMaxErrorBody = 64 * 1024;

CURL* AsCurl(void* h) { return static_cast<CURL*>(h); }

// Transient failures where the request may have reached the server: retried when idempotent.
bool IsTransientCurlError(CURLcode rc) {
  switch (rc) {
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_COULDNT_RESOLVE_HOST:
      return true;
    default:
      return false;
  }
}

bool IsRetriableCode(long code) { return code == 500 || code == 502 || code == 503 || code == 504; }

size_t CollectBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

}  // namespace

// Per-attempt state that libcurl writes into.
struct Transport::Attempt {
  curl_slist* headers = nullptr;
  std::string url;
  std::string body;
  long retry_after_seconds = -1;
  std::array<char, CURL_ERROR_SIZE> error{};
  // Streaming:
  const std::function<bool(std::string_view)>* on_data = nullptr;
  CURL* handle = nullptr;
  bool delivered = false;
  bool stopped_by_callback = false;

  ~Attempt() { curl_slist_free_all(headers); }
};

namespace {

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* attempt = static_cast<Transport::Attempt*>(user);
  const std::string_view line(data, size * n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    bool match = true;
    for (size_t i = 0; i < kName.size() && match; ++i) {
      match = std::tolower(static_cast<unsigned char>(line[i])) == kName[i];
    }
    if (match) {
      long seconds = 0;
      bool digits = false;
      for (const char c : line.substr(kName.size())) {
        if (c >= '0' && c <= '9') {
          seconds = seconds * 10 + (c - '0');
          digits = true;
        } else if (digits) {
          break;
        }
      }
      if (digits) attempt->retry_after_seconds = seconds;
    }
  }
  return size * n;
}

size_t OnStreamData(char* data, size_t size, size_t n, void* user) {
  auto* attempt = static_cast<Transport::Attempt*>(user);
  long code = 0;
  curl_easy_getinfo(attempt->handle, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {  // an error answer: keep its Status body
    if (attempt->body.size() < kMaxErrorBody) attempt->body.append(data, size * n);
    return size * n;
  }
  attempt->delivered = true;
  if (!(*attempt->on_data)(std::string_view(data, size * n))) {
    attempt->stopped_by_callback = true;
    return 0;  // aborts the transfer
  }
  return size * n;
}

}  // namespace

std::chrono::milliseconds RetryBackoff(int attempt) {
  const int shift = std::clamp(attempt, 0, 10);
  return std::min(std::chrono::milliseconds(200) * (1 << shift), std::chrono::milliseconds(5000));
}

Transport::Transport(const Config& config, std::shared_ptr<RequestMetrics> metrics)
    : config_(config),
      metrics_(metrics ? std::move(metrics) : std::make_shared<RequestMetrics>()),
      auth_(config_),
      limiter_(config_.qps, config_.burst) {
  base_url_ = config_.server;
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  user_agent_ =
      config_.user_agent.empty() ? std::string("millrace/") + MILLRACE_VERSION : config_.user_agent;
}

Result<std::unique_ptr<Transport>> Transport::Create(const Config& config,
                                                     std::shared_ptr<RequestMetrics> metrics) {
  if (config.server.empty()) {
    return std::unexpected(MakeError(ErrorKind::kConfig, "config has no server URL"));
  }
  Config c = config;
  const auto fill = [](std::string& data, const std::string& file,
                       std::string_view what) -> Result<void> {
    if (!data.empty() || file.empty()) return {};
    auto read = ReadFile(file, what);
    if (!read) return std::unexpected(read.error());
    data = std::move(*read);
    return {};
  };
  if (auto r = fill(c.ca_data, c.ca_file, "CA file"); !r) return std::unexpected(r.error());
  if (auto r = fill(c.client_cert_data, c.client_cert_file, "client certificate"); !r) {
    return std::unexpected(r.error());
  }
  if (auto r = fill(c.client_key_data, c.client_key_file, "client key"); !r) {
    return std::unexpected(r.error());
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    return std::unexpected(MakeError(ErrorKind::kTransport, "curl_global_init failed"));
  }
  return std::unique_ptr<Transport>(new Transport(c, std::move(metrics)));
}

Transport::~Transport() {
  for (void* h : idle_handles_) curl_easy_cleanup(AsCurl(h));
  curl_global_cleanup();
}

void* Transport::AcquireHandle() {
  {
    const std::lock_guard lock(pool_mu_);
    if (!idle_handles_.empty()) {
      void* h = idle_handles_.back();
      idle_handles_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void Transport::ReleaseHandle(void* handle) {
  curl_easy_reset(AsCurl(handle));  // keeps the handle's live connections and TLS sessions
  const std::lock_guard lock(pool_mu_);
  idle_handles_.push_back(handle);
}

void Transport::Setup(void* handle, const HttpRequest& request, const Credentials& creds,
                      Attempt& attempt) {
  CURL* h = AsCurl(handle);
  attempt.url = base_url_ + request.path;
  curl_easy_setopt(h, CURLOPT_URL, attempt.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent_.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, attempt.error.data());
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(config_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!config_.disable_compression) curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  if (!config_.proxy_url.empty()) curl_easy_setopt(h, CURLOPT_PROXY, config_.proxy_url.c_str());

  if (!config_.ca_data.empty()) {
    curl_blob ca{const_cast<char*>(config_.ca_data.data()), config_.ca_data.size(), CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (config_.insecure_skip_tls_verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  const std::string& cert = creds.cert_pem.empty() ? config_.client_cert_data : creds.cert_pem;
  const std::string& key = creds.cert_pem.empty() ? config_.client_key_data : creds.key_pem;
  if (!cert.empty() && !key.empty()) {
    curl_blob cert_blob{const_cast<char*>(cert.data()), cert.size(), CURL_BLOB_COPY};
    curl_blob key_blob{const_cast<char*>(key.data()), key.size(), CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert_blob);
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key_blob);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
  }

  attempt.headers = curl_slist_append(attempt.headers, "Accept: application/json");
  attempt.headers = curl_slist_append(attempt.headers, "Expect:");
  if (!request.content_type.empty()) {
    attempt.headers =
        curl_slist_append(attempt.headers, ("Content-Type: " + request.content_type).c_str());
  }
  if (!creds.token.empty()) {
    attempt.headers =
        curl_slist_append(attempt.headers, ("Authorization: Bearer " + creds.token).c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, attempt.headers);

  if (request.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.method != "GET" && (!request.body.empty() || request.method == "POST")) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
  }
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &attempt);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &CollectBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &attempt.body);
}

bool Transport::SleepBeforeRetry(std::chrono::milliseconds delay, const std::stop_token& stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return !cv.wait_for(lock, stop, delay, [] { return false; }) && !stop.stop_requested();
}

namespace {

Error CurlError(const HttpRequest& request, const std::string& url, CURLcode rc,
                const char* detail) {
  std::string message = request.method + " " + url + ": " + curl_easy_strerror(rc);
  if (detail != nullptr && *detail != '\0') message += std::string(" (") + detail + ")";
  return MakeError(ErrorKind::kTransport, std::move(message));
}

std::chrono::milliseconds RetryDelay(long retry_after_seconds, int attempt) {
  if (retry_after_seconds >= 0) {
    return std::chrono::milliseconds(std::min(retry_after_seconds, 30L) * 1000);
  }
  return RetryBackoff(attempt);
}

}  // namespace

Result<std::string> Transport::Do(const HttpRequest& request) {
  bool refreshed_credentials = false;
  for (int attempt_no = 0;; ++attempt_no) {
    limiter_.Wait();
    auto creds = auth_.Get();
    if (!creds) return std::unexpected(creds.error());
    Attempt attempt;
    void* handle = AcquireHandle();
    if (handle == nullptr)
      return std::unexpected(MakeError(ErrorKind::kTransport, "curl_easy_init"));
    Setup(handle, request, *creds, attempt);
    curl_easy_setopt(AsCurl(handle), CURLOPT_TIMEOUT_MS,
                     static_cast<long>(config_.timeout.count()));
    const CURLcode rc = curl_easy_perform(AsCurl(handle));
    long code = 0, connects = 0;
    curl_easy_getinfo(AsCurl(handle), CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(AsCurl(handle), CURLINFO_NUM_CONNECTS, &connects);
    if (connects > 0) metrics_->RecordConnection();
    ReleaseHandle(handle);
    const bool can_retry = attempt_no < config_.max_retries;
    // An error status whose body was cut short still is the server's answer: the API server sends
    // an HTTP/2 GOAWAY with its 401s, and libcurl 7.88 may then report a partial transfer.
    if (rc != CURLE_OK && code < 400) {
      metrics_->Record(request.verb, 0);
      const bool retriable =
          rc == CURLE_COULDNT_CONNECT || (request.idempotent && IsTransientCurlError(rc));
      if (retriable && can_retry) {
        SleepBeforeRetry(RetryBackoff(attempt_no), {});
        continue;
      }
      return std::unexpected(CurlError(request, attempt.url, rc, attempt.error.data()));
    }
    metrics_->Record(request.verb, static_cast<int>(code));
    if (code >= 200 && code < 300) return std::move(attempt.body);
    if (code == 401 && !refreshed_credentials && auth_.Invalidate()) {
      refreshed_credentials = true;
      continue;
    }
    if (can_retry && (code == 429 || (request.idempotent && IsRetriableCode(code)))) {
      SleepBeforeRetry(RetryDelay(attempt.retry_after_seconds, attempt_no), {});
      continue;
    }
    return std::unexpected(ErrorFromResponse(static_cast<int>(code), attempt.body));
  }
}

Result<void> Transport::Stream(const HttpRequest& request,
                               const std::function<bool(std::string_view)>& on_data,
                               std::stop_token stop) {
  bool refreshed_credentials = false;
  for (int attempt_no = 0;; ++attempt_no) {
    if (stop.stop_requested()) return {};
    limiter_.Wait();
    auto creds = auth_.Get();
    if (!creds) return std::unexpected(creds.error());
    Attempt attempt;
    void* handle = AcquireHandle();
    if (handle == nullptr)
      return std::unexpected(MakeError(ErrorKind::kTransport, "curl_easy_init"));
    CURL* h = AsCurl(handle);
    Setup(handle, request, *creds, attempt);
    attempt.on_data = &on_data;
    attempt.handle = h;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnStreamData);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &attempt);

    CURLM* multi = curl_multi_init();
    curl_multi_add_handle(multi, h);
    bool stopped = false;
    {
      // curl_multi_wakeup() is safe from any thread: a stop interrupts the poll at once.
      const std::stop_callback wake(stop, [multi] { curl_multi_wakeup(multi); });
      int running = 1;
      while (true) {
        if (curl_multi_perform(multi, &running) != CURLM_OK || running == 0) break;
        if (stop.stop_requested()) {
          stopped = true;
          break;
        }
        curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
      }
    }
    CURLcode rc = CURLE_OK;
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
    }
    long code = 0, connects = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    if (connects > 0) metrics_->RecordConnection();
    curl_multi_remove_handle(multi, h);
    curl_multi_cleanup(multi);
    ReleaseHandle(handle);

    metrics_->Record(request.verb, rc == CURLE_OK || code != 0 ? static_cast<int>(code) : 0);
    if (stopped || attempt.stopped_by_callback) return {};
    const bool can_retry = attempt_no < config_.max_retries && !attempt.delivered;
    if (rc != CURLE_OK && (code < 400 || attempt.delivered)) {
      if (can_retry && (rc == CURLE_COULDNT_CONNECT || IsTransientCurlError(rc))) {
        if (!SleepBeforeRetry(RetryBackoff(attempt_no), stop)) return {};
        continue;
      }
      return std::unexpected(CurlError(request, attempt.url, rc, attempt.error.data()));
    }
    if (code == 200 && rc == CURLE_OK) return {};
    if (code == 401 && !refreshed_credentials && auth_.Invalidate()) {
      refreshed_credentials = true;
      continue;
    }
    if (can_retry && (code == 429 || IsRetriableCode(code))) {
      if (!SleepBeforeRetry(RetryDelay(attempt.retry_after_seconds, attempt_no), stop)) return {};
      continue;
    }
    return std::unexpected(ErrorFromResponse(static_cast<int>(code), attempt.body));
  }
}

}  // namespace millrace::kube::internal
