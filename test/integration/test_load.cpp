// Many clients at once: no loss and one order (rule 8); a slow consumer is
// dropped while the others keep receiving (rule 9).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>

#include <boost/asio/steady_timer.hpp>

#include "server_test.hpp"

using namespace chat;
using namespace chat::test;

BOOST_AUTO_TEST_SUITE(load)

BOOST_AUTO_TEST_CASE(two_hundred_clients_exchange_messages_without_loss_in_one_order) {
    constexpr int clients = 200;
    constexpr int per_client = 5;
    constexpr int total = clients * per_client;
    with_server(
        [](TestServer& server) -> awaitable<void> {
            std::vector<ChatClient> users;
            users.reserve(clients);
            for (int i = 0; i < clients; ++i) {
                users.push_back(co_await logged_in(server, "user" + std::to_string(i)));
            }
            // What each client saw: message id -> (sender, content).
            std::vector<std::map<std::uint64_t, std::pair<std::string, std::string>>> seen(clients);
            const auto exchange = [&](int i) -> awaitable<void> {
                auto& client = users[i];
                for (int m = 0; m < per_client; ++m) {
                    co_await client.send(
                        make_request("message", {}, std::to_string(i) + "/" + std::to_string(m)));
                }
                std::uint64_t last_id = 0;
                int notices_to_come = clients - 1 - i;  // logins after this one
                while (static_cast<int>(seen[i].size()) < total) {
                    const auto frame = co_await client.receive();
                    BOOST_TEST_REQUIRE(frame.has_value(), "user" << i << " closed");
                    if (frame->type() == "login") {
                        BOOST_TEST_REQUIRE(seen[i].empty());  // notices come before any message
                        --notices_to_come;
                        continue;
                    }
                    BOOST_TEST_REQUIRE(frame->type() == "message");
                    BOOST_TEST_REQUIRE(frame->id() == last_id + 1,
                                       "user" << i << " gap after " << last_id);
                    last_id = frame->id();
                    seen[i][frame->id()] = {frame->user_name(), frame->content()};
                }
                BOOST_TEST(notices_to_come == 0);
            };
            std::vector<awaitable<void>> tasks;
            for (int i = 0; i < clients; ++i) {
                tasks.push_back(exchange(i));
            }
            co_await all(std::move(tasks));

            for (int i = 1; i < clients; ++i) {
                BOOST_TEST_REQUIRE((seen[i] == seen[0]), "user" << i << " saw another order");
            }
            // Each sender's own messages are in the order it sent them.
            std::map<std::string, int> next;
            for (const auto& [id, message] : seen[0]) {
                const auto& [sender, content] = message;
                BOOST_TEST_REQUIRE(content ==
                                   sender.substr(4) + "/" + std::to_string(next[sender]++));
            }
            BOOST_TEST(server.metrics().messages_broadcast.load() ==
                       static_cast<std::uint64_t>(total));
        },
        test_config(), std::chrono::seconds(120));
}

BOOST_AUTO_TEST_CASE(a_client_that_stops_reading_is_dropped_and_the_others_keep_receiving) {
    auto config = test_config();
    config.rate = 0;  // the sender floods on purpose
    with_server(
        [](TestServer& server) -> awaitable<void> {
            // The slow one reads nothing and keeps a small receive buffer.
            ChatClient slow(co_await asio::this_coro::executor);
            auto& socket = boost::beast::get_lowest_layer(slow.stream()).socket();
            socket.open(asio::ip::tcp::v4());
            socket.set_option(asio::socket_base::receive_buffer_size(4096));
            co_await slow.connect(server.port());
            co_await slow.login("slow");
            auto sender = co_await logged_in(server, "sender");
            auto reader = co_await logged_in(server, "reader");
            co_await sender.expect("login");

            const std::string content(4000, 'm');
            constexpr int max_messages = 20'000;  // 80 MB: far more than any buffer
            // The sender runs at most this far ahead of the readers, well
            // within their queues (256): in this one test thread it could
            // otherwise outrun them, and they would be dropped as slow too.
            constexpr std::uint64_t max_ahead = 64;
            bool slow_dropped = false;
            int sent = 0;
            std::map<const ChatClient*, std::uint64_t> seen_id{{&sender, 0}, {&reader, 0}};
            asio::steady_timer progress(co_await asio::this_coro::executor);
            const auto slowest = [&] { return std::min(seen_id[&sender], seen_id[&reader]); };
            const auto send = [&]() -> awaitable<void> {
                for (; sent < max_messages && !slow_dropped; ++sent) {
                    while (static_cast<std::uint64_t>(sent) > slowest() + max_ahead) {
                        progress.expires_at(asio::steady_timer::time_point::max());
                        co_await progress.async_wait(use_nothrow);  // a reader cancels it
                    }
                    co_await sender.send(make_request("message", {}, content));
                }
                co_await sender.send(make_request("message", {}, "end"));
                ++sent;
            };
            // Everyone but the slow one gets every message, in order, and its leaving.
            const auto receive = [&](ChatClient& client) -> awaitable<void> {
                std::uint64_t last_id = 0;
                for (;;) {
                    const auto frame = co_await client.receive();
                    BOOST_TEST_REQUIRE(frame.has_value(), "closed with " << client.close_code());
                    if (frame->type() == "logout") {
                        BOOST_TEST(frame->user_name() == "slow");
                        slow_dropped = true;
                        continue;
                    }
                    BOOST_TEST_REQUIRE(frame->type() == "message");
                    BOOST_TEST_REQUIRE(frame->id() == last_id + 1);
                    last_id = frame->id();
                    seen_id[&client] = last_id;
                    progress.cancel();
                    if (frame->content() == "end") {
                        break;
                    }
                }
                BOOST_TEST(last_id == static_cast<std::uint64_t>(sent));
            };
            std::vector<awaitable<void>> tasks;
            tasks.push_back(send());
            tasks.push_back(receive(sender));
            tasks.push_back(receive(reader));
            co_await all(std::move(tasks));

            BOOST_TEST(slow_dropped);
            BOOST_TEST(sent < max_messages);
            BOOST_TEST(server.metrics().dropped_count(metrics::DropReason::slow_consumer) == 1u);
            // The slow one reads again now, well within the close deadline (10 s):
            // what was queued for it drains, and then the 1008 close frame
            // the server had waiting comes (rule 9).
            const auto code = co_await slow.wait_close(std::chrono::seconds(30));
            BOOST_TEST(code == 1008);
        },
        std::move(config), std::chrono::seconds(120));
}

BOOST_AUTO_TEST_SUITE_END()
