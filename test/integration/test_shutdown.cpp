// Rule 11: SIGINT/SIGTERM closes every client with 1001 and exits 0.
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <optional>

#include "chat_app_process.hpp"
#include "server_test.hpp"

using namespace chat;
using namespace chat::test;

BOOST_AUTO_TEST_SUITE(graceful_shutdown)

BOOST_AUTO_TEST_CASE(stop_closes_every_chat_connection_with_1001) {
    TestServer server;
    run([&]() -> awaitable<void> {
        ChatClient ann(co_await asio::this_coro::executor);
        co_await ann.connect(server.port());
        co_await ann.login("ann");
        ChatClient anonymous(co_await asio::this_coro::executor);
        co_await anonymous.connect(server.port());
        server.stop();
        BOOST_TEST(co_await ann.wait_close() == 1001);
        BOOST_TEST(co_await anonymous.wait_close() == 1001);
    });
}

BOOST_AUTO_TEST_CASE(clients_leaving_as_the_server_stops_do_not_hold_it_up) {
    // Sessions that end on their own while the hub closes them must not linger:
    // the stop completes long before the grace period (3 s here).
    std::optional<TestServer> server(std::in_place);
    run([&]() -> awaitable<void> {
        std::vector<ChatClient> clients;
        for (int i = 0; i < 20; ++i) {
            clients.push_back(ChatClient(co_await asio::this_coro::executor));
            co_await clients.back().connect(server->port());
            co_await clients.back().login("user" + std::to_string(i));
        }
        clients.clear();  // the sockets close now, and the stop comes right after
        server->stop();
    });
    const auto start = std::chrono::steady_clock::now();
    server.reset();  // waits for the shutdown to complete
    BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(2)));
}

BOOST_AUTO_TEST_CASE(sigterm_closes_clients_with_1001_and_exits_0) {
    for (const int signal_number : {SIGTERM, SIGINT}) {
        ChatApp app({"--address", "127.0.0.1", "--port", "0", "--threads", "2", "--log-dir", "",
                     "--shutdown-grace", "5"});
        const auto port = app.port();
        std::chrono::steady_clock::duration took{};
        run([&]() -> awaitable<void> {
            ChatClient ann(co_await asio::this_coro::executor);
            co_await ann.connect(port);
            co_await ann.login("ann");
            ChatClient bob(co_await asio::this_coro::executor);
            co_await bob.connect(port);
            co_await bob.login("bob");
            ChatClient anonymous(co_await asio::this_coro::executor);
            co_await anonymous.connect(port);
            const auto start = std::chrono::steady_clock::now();
            app.signal(signal_number);
            BOOST_TEST(co_await ann.wait_close() == 1001);
            BOOST_TEST(co_await bob.wait_close() == 1001);
            BOOST_TEST(co_await anonymous.wait_close() == 1001);
            took = std::chrono::steady_clock::now() - start;
        });
        const int status = app.wait_exit(std::chrono::seconds(10));
        BOOST_TEST(status == 0, "exit status " << status << ", output:\n" << app.output());
        BOOST_TEST((took < std::chrono::seconds(5)));  // well within the grace period
        BOOST_TEST(app.output().find("chat_app stopped") != std::string::npos);
    }
}

/// A logged-in client that will read the server's close frame off the socket
/// and never answer it: the shutdown can only end it by its grace period.
awaitable<ChatClient> deaf_client(std::uint16_t port) {
    ChatClient client(co_await asio::this_coro::executor);
    co_await client.connect(port);
    co_await client.login("deaf");
    co_return client;
}

BOOST_AUTO_TEST_CASE(a_client_that_never_answers_the_close_ends_with_the_grace_period) {
    // Exit 0 promptly after the grace period (1 s), with every session freed:
    // under the sanitizers LeakSanitizer turns a leak into a failing exit.
    ChatApp app({"--address", "127.0.0.1", "--port", "0", "--threads", "2", "--log-dir", "",
                 "--shutdown-grace", "1"});
    const auto port = app.port();
    const auto start = std::chrono::steady_clock::now();
    run([&]() -> awaitable<void> {
        auto deaf = co_await deaf_client(port);
        app.signal(SIGTERM);
        BOOST_TEST(co_await deaf.take_close_unanswered());
        const int status = app.wait_exit(std::chrono::seconds(10));
        BOOST_TEST(status == 0, "exit status " << status << ", output:\n" << app.output());
    });
    BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(4)));
    BOOST_TEST(app.output().find("grace period over") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_second_signal_during_the_grace_period_exits_at_once) {
    for (const int signal_number : {SIGTERM, SIGINT}) {
        ChatApp app({"--address", "127.0.0.1", "--port", "0", "--threads", "2", "--log-dir", "",
                     "--shutdown-grace", "60"});
        const auto port = app.port();
        run([&]() -> awaitable<void> {
            auto deaf = co_await deaf_client(port);
            app.signal(signal_number);
            BOOST_TEST(co_await deaf.take_close_unanswered());  // the grace period has begun
            const auto start = std::chrono::steady_clock::now();
            app.signal(signal_number);
            const int status = app.wait_exit(std::chrono::seconds(10));
            BOOST_TEST(status == 128 + signal_number);
            BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(3)));
        });
        // Its own exit, logged, not death by the signal (which has the same status).
        BOOST_TEST(
            app.output().find("again: exiting now") != std::string::npos, "output:\n"
                                                                              << app.output());
    }
}

BOOST_AUTO_TEST_CASE(bad_options_exit_2_and_help_exits_0) {
    ChatApp bad({"--port", "70000"});
    BOOST_TEST(bad.wait_exit(std::chrono::seconds(10)) == 2);
    BOOST_TEST(bad.output().find("--port") != std::string::npos);
    ChatApp help({"--help"});
    BOOST_TEST(help.wait_exit(std::chrono::seconds(10)) == 0);
    BOOST_TEST(help.output().find("--idle-timeout") != std::string::npos);
    ChatApp bad_address({"--address", "256.1.1.1"});
    BOOST_TEST(bad_address.wait_exit(std::chrono::seconds(10)) != 0);
}

BOOST_AUTO_TEST_SUITE_END()
