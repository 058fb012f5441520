#include "controller/http_server.h"

#include <atomic>
#include <stdexcept>
#include <string>
#include <utility>  // before Asio 1.74, whose awaitable.hpp misses it

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kubeclient/beast.h"

namespace millrace::controller {
namespace {

using ::testing::HasSubstr;

// A blocking client on one connection.
class Client {
 public:
  explicit Client(std::uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  http::response<http::string_body> Send(http::verb verb, const std::string& target) {
    http::request<http::string_body> request{verb, target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.keep_alive(true);
    http::write(socket_, request);
    http::response_parser<http::string_body> parser;
    parser.skip(verb == http::verb::head);
    http::read(socket_, buffer_, parser);
    return parser.release();
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServeHealthAndMetrics(server_, registry_, [this] { return ready_.load(); });
    registry_.AddCounter("hits_total", "Hits.").WithLabels({}).Inc(3);
    ASSERT_TRUE(server_.Start().has_value());
    ASSERT_NE(server_.port(), 0);
  }

  Registry registry_;
  std::atomic<bool> ready_{false};
  HttpServer server_{HttpServerOptions{.address = "127.0.0.1", .port = 0}};
};

TEST_F(HttpServerTest, HealthzIsOk) {
  Client client(server_.port());
  const auto response = client.Send(http::verb::get, "/healthz");
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response.body(), "ok\n");
}

TEST_F(HttpServerTest, ReadyzFollowsTheCallback) {
  Client client(server_.port());
  EXPECT_EQ(client.Send(http::verb::get, "/readyz").result_int(), 503u);
  ready_ = true;
  EXPECT_EQ(client.Send(http::verb::get, "/readyz").result_int(), 200u);  // same connection
}

TEST_F(HttpServerTest, MetricsServesTheRegistryAsPrometheusText) {
  Client client(server_.port());
  const auto response = client.Send(http::verb::get, "/metrics?debug=1");
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(response.body(), HasSubstr("# TYPE hits_total counter\nhits_total 3\n"));
}

TEST_F(HttpServerTest, HeadHasNoBody) {
  Client client(server_.port());
  const auto response = client.Send(http::verb::head, "/healthz");
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response.body(), "");
  EXPECT_EQ(response[http::field::content_length], "3");
}

TEST_F(HttpServerTest, UnknownPathsAndMethodsAreRejected) {
  Client client(server_.port());
  EXPECT_EQ(client.Send(http::verb::get, "/nope").result_int(), 404u);
  const auto post = client.Send(http::verb::post, "/metrics");
  EXPECT_EQ(post.result_int(), 405u);
  EXPECT_EQ(post[http::field::allow], "GET, HEAD");
}

TEST(HttpServerStandaloneTest, HandlerExceptionBecomes500) {
  HttpServer server(HttpServerOptions{.address = "127.0.0.1", .port = 0});
  server.Handle("/boom", []() -> HttpResponse { throw std::runtime_error("kaput"); });
  ASSERT_TRUE(server.Start().has_value());
  Client client(server.port());
  const auto response = client.Send(http::verb::get, "/boom");
  EXPECT_EQ(response.result_int(), 500u);
  EXPECT_THAT(response.body(), HasSubstr("kaput"));
}

TEST(HttpServerStandaloneTest, PortInUseIsAnErrorValue) {
  HttpServer first(HttpServerOptions{.address = "127.0.0.1", .port = 0});
  ASSERT_TRUE(first.Start().has_value());
  HttpServer second(HttpServerOptions{.address = "127.0.0.1", .port = first.port()});
  const auto started = second.Start();
  ASSERT_FALSE(started.has_value());
  EXPECT_THAT(started.error(), HasSubstr("in use"));
}

TEST(HttpServerStandaloneTest, StopClosesTheListener) {
  HttpServer server(HttpServerOptions{.address = "127.0.0.1", .port = 0});
  ASSERT_TRUE(server.Start().has_value());
  const auto port = server.port();
  server.Stop();
  server.Stop();  // idempotent
  EXPECT_THROW(Client{port}, boost::system::system_error);
}

}  // namespace
}  // namespace millrace::controller
