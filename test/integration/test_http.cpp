// The plain-HTTP side of the contract, and no path out of the www folder.
#include <boost/test/unit_test.hpp>

#include <fstream>

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "chat/proto/schema.hpp"
#include "server_test.hpp"

using namespace chat;
using namespace chat::test;
namespace bhttp = boost::beast::http;

namespace {

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

/// Writes `request` as it is on `stream` and reads one response.
awaitable<bhttp::response<bhttp::string_body>> exchange(boost::beast::tcp_stream& stream,
                                                        std::string request) {
    stream.expires_after(default_timeout);
    co_await asio::async_write(stream, asio::buffer(request), asio::use_awaitable);
    boost::beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> response;
    co_await bhttp::async_read(stream, buffer, response, asio::use_awaitable);
    stream.expires_never();
    co_return response;
}

awaitable<boost::beast::tcp_stream> connect_to(std::uint16_t port) {
    boost::beast::tcp_stream stream(co_await asio::this_coro::executor);
    co_await stream.async_connect(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port),
                                  asio::use_awaitable);
    co_return stream;
}

/// A raw request on a connection of its own: its status.
awaitable<unsigned> raw_status(std::uint16_t port, std::string request) {
    auto stream = co_await connect_to(port);
    co_return (co_await exchange(stream, std::move(request))).result_int();
}

std::string upgrade_request(std::string_view target, std::string_view connection_lines) {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
           std::string(connection_lines) +
           "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
}

/// A www folder with a secret file beside it, outside.
struct Www {
    Www() {
        std::filesystem::create_directories(www);
        std::ofstream(www / "home.html") << "<!doctype html><html><body>home</body></html>";
        std::ofstream(www / "app.js") << "console.log('hi');";
        std::ofstream(dir.path() / "secret.txt") << "SECRET";
    }
    session::Config config() const {
        auto c = test_config();
        c.www_root = www;
        return c;
    }
    TempDir dir;
    std::filesystem::path www = dir.path() / "www";
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(http, Www)

BOOST_AUTO_TEST_CASE(the_page_and_the_files_of_the_www_folder) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            const auto page = co_await http_request(server.port(), "/");
            BOOST_TEST(page.status == 200u);
            BOOST_TEST(contains(page.content_type, "text/html"));
            BOOST_TEST(contains(page.body, "home"));
            BOOST_TEST((co_await http_request(server.port(), "/home.html")).body == page.body);
            const auto script = co_await http_request(server.port(), "/app.js?v=1");
            BOOST_TEST(script.status == 200u);
            BOOST_TEST(contains(script.content_type, "javascript"));
            const auto head = co_await http_request(server.port(), "/", "HEAD");
            BOOST_TEST(head.status == 200u);
            BOOST_TEST(head.body.empty());
            BOOST_TEST(head.content_length == std::to_string(page.body.size()));
        },
        config());
}

BOOST_AUTO_TEST_CASE(healthz_metrics_and_schema) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            const auto health = co_await http_request(server.port(), "/healthz");
            BOOST_TEST(health.status == 200u);

            auto ann = co_await logged_in(server, "ann");
            co_await ann.send(make_request("message", {}, "hi"));
            co_await ann.expect("message");
            const auto metrics = co_await http_request(server.port(), "/metrics");
            BOOST_TEST(metrics.status == 200u);
            BOOST_TEST(contains(metrics.content_type, "text/plain; version=0.0.4"));
            for (const auto* line :
                 {"chat_connections_open 1", "chat_users_online 1",
                  "chat_messages_broadcast_total 1", "# TYPE chat_frames_received_total counter",
                  "chat_frames_sent_total",
                  "chat_clients_dropped_total{reason=\"slow_consumer\"} 0",
                  "chat_clients_dropped_total{reason=\"flooding\"} 0",
                  "chat_clients_dropped_total{reason=\"idle\"} 0"}) {
                BOOST_TEST(contains(metrics.body, line), line);
            }

            const auto schema = co_await http_request(server.port(), "/chat.proto");
            BOOST_TEST(schema.status == 200u);
            BOOST_TEST(schema.body == std::string(proto::schema_text));
            BOOST_TEST(contains(schema.body, "message ChatRequest"));
            BOOST_TEST(contains(schema.body, "int64 timestamp = 5"));
        },
        config());
}

BOOST_AUTO_TEST_CASE(unknown_paths_404_other_methods_405) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            BOOST_TEST((co_await http_request(server.port(), "/nope.html")).status == 404u);
            BOOST_TEST((co_await http_request(server.port(), "/", "POST")).status == 405u);
            BOOST_TEST((co_await http_request(server.port(), "/healthz", "PUT")).status == 405u);
            BOOST_TEST((co_await http_request(server.port(), "/", "DELETE")).status == 405u);
            BOOST_TEST((co_await http_request(server.port(), "/ws")).status == 426u);  // no upgrade
        },
        config());
}

BOOST_AUTO_TEST_CASE(an_upgrade_on_any_path_but_ws_is_404) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            const auto key = "dGhlIHNhbXBsZSBub25jZQ==";
            for (const auto* path : {"/", "/chat", "/ws/", "/wss", "/healthz"}) {
                BOOST_TEST((co_await http_request(server.port(), path, "GET", key)).status == 404u,
                           path);
            }
            BOOST_TEST((co_await http_request(server.port(), "/ws", "GET", key)).status == 101u);
        },
        config());
}

BOOST_AUTO_TEST_CASE(a_connection_field_on_two_lines_is_one_list) {
    // RFC 9110, section 5.3: "Connection: close" and "Connection: Upgrade" on
    // two lines are "close, Upgrade".
    with_server(
        [](TestServer& server) -> awaitable<void> {
            const auto two_lines = "Connection: keep-alive\r\nConnection: Upgrade\r\n";
            BOOST_TEST(co_await raw_status(server.port(), upgrade_request("/ws", two_lines)) ==
                       101u);
            BOOST_TEST(co_await raw_status(server.port(), upgrade_request("/", two_lines)) == 404u);
            BOOST_TEST(co_await raw_status(server.port(),
                                           upgrade_request("/ws", "Connection: Upgrade\r\n")) ==
                       101u);
            // An Upgrade field on two lines too.
            const auto split_upgrade =
                "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
                "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
            BOOST_TEST(co_await raw_status(server.port(), split_upgrade) == 101u);
        },
        config());
}

BOOST_AUTO_TEST_CASE(a_body_over_the_limit_is_refused_for_its_method_first) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            const std::string body(16 * 1024, 'x');  // the limit is 8 KiB
            const auto with_body = [&](std::string_view method) {
                return std::string(method) +
                       " / HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\n\r\n" + body;
            };
            BOOST_TEST(co_await raw_status(server.port(), with_body("POST")) == 405u);
            BOOST_TEST(co_await raw_status(server.port(), with_body("PUT")) == 405u);
            BOOST_TEST(co_await raw_status(server.port(), with_body("GET")) == 413u);
            BOOST_TEST(co_await raw_status(server.port(),
                                           "POST / HTTP/1.1\r\nHost: x\r\n"
                                           "Content-Length: 3\r\n\r\nabc") == 405u);
        },
        config());
}

BOOST_AUTO_TEST_CASE(config_tells_clients_the_limits) {
    auto c = config();
    c.max_content_bytes = 1234;
    c.idle_timeout = std::chrono::seconds(42);
    c.max_rooms_per_user = 7;
    with_server(
        [](TestServer& server) -> awaitable<void> {
            const auto answer = co_await http_request(server.port(), "/config");
            BOOST_TEST(answer.status == 200u);
            BOOST_TEST(contains(answer.content_type, "application/json"));
            BOOST_TEST(contains(answer.body, "\"maxContentBytes\":1234"), answer.body);
            BOOST_TEST(contains(answer.body, "\"idleTimeoutMs\":42000"), answer.body);
            BOOST_TEST(contains(answer.body, "\"maxRoomsPerUser\":7"), answer.body);
            const auto head = co_await http_request(server.port(), "/config", "HEAD");
            BOOST_TEST(head.body.empty());
            BOOST_TEST(head.content_length == std::to_string(answer.body.size()));
        },
        c);
}

BOOST_AUTO_TEST_CASE(healthz_answers_503_once_the_server_stops) {
    auto c = config();
    c.shutdown_grace = std::chrono::seconds(2);
    with_server(
        [](TestServer& server) -> awaitable<void> {
            // The listener closes at once; a connection kept alive still asks.
            auto stream = co_await connect_to(server.port());
            const std::string health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
            BOOST_TEST((co_await exchange(stream, health)).result_int() == 200u);
            // A client that never answers the 1001 holds the shutdown for its
            // grace period; its close frame, read below the WebSocket layer,
            // says that the shutdown has begun.
            auto deaf = co_await logged_in(server, "deaf");
            server.stop();
            BOOST_TEST(co_await deaf.take_close_unanswered());
            const auto stopping = co_await exchange(stream, health);
            BOOST_TEST(stopping.result_int() == 503u);
            BOOST_TEST(stopping[bhttp::field::retry_after] == "5");
        },
        c);
}

BOOST_AUTO_TEST_CASE(no_path_escapes_the_www_folder) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            for (const auto* target :
                 {"/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/..%2fsecret.txt",
                  "/%2e%2e%2fsecret.txt", "/.%2e/secret.txt", "/x/../../secret.txt",
                  "/..\\secret.txt", "/..%5csecret.txt", "//../secret.txt",
                  "/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
                  "/etc/passwd", "/%2fetc%2fpasswd", "/%00secret.txt", "/..", "/%2e%2e"}) {
                const auto answer = co_await http_request(server.port(), target);
                BOOST_TEST((answer.status == 400u || answer.status == 404u),
                           target << " answered " << answer.status);
                BOOST_TEST(!contains(answer.body, "SECRET"), target);
                BOOST_TEST(!contains(answer.body, "root:"), target);
            }
        },
        config());
}

BOOST_AUTO_TEST_SUITE_END()
