// The plain-HTTP side of the contract, and no path out of the www folder.
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "chat/proto/schema.hpp"
#include "server_test.hpp"

using namespace chat;
using namespace chat::test;

namespace {

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
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
