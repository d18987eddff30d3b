// The wire contract (docs/protocol.md), rule by rule, against a real server.
#include <boost/test/unit_test.hpp>

#include <boost/beast/core/tcp_stream.hpp>

#include "server_test.hpp"

using namespace chat;
using namespace chat::test;
using test::TestServer;

namespace {

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

/// A ChatRequest of type "message" serialised to exactly `size` bytes.
std::string message_frame_of_size(std::size_t size) {
    auto request = make_request("message", {}, {});
    std::size_t content = size;
    for (;;) {
        request.set_content(std::string(content, 'x'));
        const auto total = request.ByteSizeLong();
        if (total == size) {
            return request.SerializeAsString();
        }
        content = content + size - total;
    }
}

/// A "message" frame with raw content bytes (protobuf would not write invalid UTF-8).
std::string raw_message_frame(std::string_view content) {
    std::string frame = "\x12\x07message\x1a";
    frame.push_back(static_cast<char>(content.size()));  // < 128 here
    frame.append(content);
    return frame;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(contract)

BOOST_AUTO_TEST_CASE(a_text_frame_closes_with_1003) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto client = co_await connected(server);
        co_await client.send_bytes(make_request("heartbeat").SerializeAsString(), false);
        BOOST_TEST(co_await client.expect_close() == 1003);
    });
}

BOOST_AUTO_TEST_CASE(a_message_of_64_KiB_is_allowed_one_byte_more_closes_with_1009) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto client = co_await connected(server);
        co_await client.send_bytes(message_frame_of_size(65'536));
        // Read and decoded; the content is over 4096 bytes, so it is refused politely.
        BOOST_TEST(contains((co_await client.expect("error")).content(), "too long"));
        co_await client.send_bytes(message_frame_of_size(65'537));
        BOOST_TEST(co_await client.expect_close() == 1009);
    });
}

BOOST_AUTO_TEST_CASE(a_message_in_several_frames_is_one_message) {
    // RFC 6455 fragmentation: the server reads a message's first bytes in a
    // small buffer of its own and the rest after them; both sizes of message,
    // and a frame split at each place, arrive whole and in order.
    with_server([](TestServer& server) -> awaitable<void> {
        auto ann = co_await connected(server);
        co_await ann.login("ann");
        const std::vector<std::string> contents = {"short", std::string(3000, 'z')};
        for (const auto& content : contents) {
            const auto frame = make_request("message", {}, content).SerializeAsString();
            auto& stream = ann.stream();
            stream.binary(true);
            const std::size_t first = 3;  // a first fragment of a few bytes
            const std::size_t second = frame.size() / 2;
            co_await stream.async_write_some(false, asio::buffer(frame.data(), first),
                                             asio::use_awaitable);
            co_await stream.async_write_some(
                false, asio::buffer(frame.data() + first, second - first), asio::use_awaitable);
            co_await stream.async_write_some(
                true, asio::buffer(frame.data() + second, frame.size() - second),
                asio::use_awaitable);
            BOOST_TEST((co_await ann.expect("message")).content() == content);
        }
    });
}

BOOST_AUTO_TEST_CASE(rule_1_before_login_only_login_heartbeat_and_logout) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto client = co_await connected(server);
        co_await client.send(make_request("heartbeat"));
        const auto answer = co_await client.expect("heartbeat");
        BOOST_TEST(answer.timestamp() > 0);
        co_await client.send(make_request("message", {}, "hello"));
        BOOST_TEST(contains((co_await client.expect("error")).content(), "log in"));
        co_await client.send(make_request("logout"));
        BOOST_TEST(co_await client.expect_close() == 1000);
    });
}

BOOST_AUTO_TEST_CASE(rule_2_names_are_checked_and_stored_trimmed) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto client = co_await connected(server);
        for (const auto& bad : {std::string(), std::string("   "), std::string(33, 'n'),
                                std::string("a\tb"), std::string("bell\x07")}) {
            co_await client.send(make_request("login", bad));
            BOOST_TEST(contains((co_await client.expect("error")).content(), "invalid name"));
        }
        co_await client.send_bytes("\x0a\x03\xC3\xA9\xFF\x12\x05login");  // not UTF-8
        co_await client.expect("error");
        const auto welcome = co_await client.login("  \xC3\x89lodie  ");  // may try again
        BOOST_TEST(welcome.user_name() == "\xC3\x89lodie");
        BOOST_TEST(welcome.user_list().count("\xC3\x89lodie") == 1u);
        BOOST_TEST(welcome.user_list().size() == 1u);
    });
}

BOOST_AUTO_TEST_CASE(rule_3_a_name_in_use_is_refused_and_another_may_be_tried) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto ann = co_await logged_in(server, "ann");
        auto other = co_await connected(server);
        co_await other.send(make_request("login", " ann "));
        BOOST_TEST(contains((co_await other.expect("error")).content(), "name taken"));
        const auto welcome = co_await other.login("anne");
        BOOST_TEST(welcome.user_list().size() == 2u);
        BOOST_TEST((co_await ann.expect("login")).user_name() == "anne");
    });
}

BOOST_AUTO_TEST_CASE(rule_4_a_second_login_is_refused) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto ann = co_await logged_in(server, "ann");
        co_await ann.send(make_request("login", "bob"));
        BOOST_TEST(contains((co_await ann.expect("error")).content(), "already logged in"));
        co_await ann.send(make_request("login", "ann"));
        co_await ann.expect("error");
    });
}

BOOST_AUTO_TEST_CASE(rule_5_bad_contents_are_refused_and_not_broadcast) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto ann = co_await logged_in(server, "ann");
        auto bob = co_await logged_in(server, "bob");
        co_await ann.expect("login");
        for (const auto& bad : {std::string(), std::string(" \n\t "), std::string(4097, 'x')}) {
            co_await ann.send(make_request("message", {}, bad));
            co_await ann.expect("error");
        }
        co_await ann.send_bytes(raw_message_frame("bad \xC0\xAF utf-8"));
        co_await ann.expect("error");
        const std::string exact = "  <b>as sent</b>\n\xF0\x9F\x98\x80 ";
        co_await ann.send(make_request("message", {}, exact));
        co_await ann.send(make_request("message", {}, std::string(4096, 'y')));
        for (auto* client : {&ann, &bob}) {
            const auto first = co_await client->expect("message");
            BOOST_TEST(first.content() == exact);
            BOOST_TEST(first.user_name() == "ann");
            BOOST_TEST(first.id() == 1u);  // nothing refused was broadcast
            BOOST_TEST((co_await client->expect("message")).id() == 2u);
        }
    });
}

BOOST_AUTO_TEST_CASE(rule_6_undecodable_or_unknown_frames_get_errors_and_the_connection_stays) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto client = co_await connected(server);
        co_await client.send_bytes("\xFF\xFF\xFF\xFF\xFF");
        co_await client.expect("error");
        co_await client.send_bytes("");
        co_await client.expect("error");
        for (const auto* type : {"error", "Login", "hello", "message "}) {
            co_await client.send(make_request(type, "ann", "hi"));
            BOOST_TEST(contains((co_await client.expect("error")).content(), "unknown type"));
        }
        co_await client.send(make_request("heartbeat"));
        co_await client.expect("heartbeat");
    });
}

BOOST_AUTO_TEST_CASE(rule_7_flooding_is_rate_limited_then_closed_with_1008) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto client = co_await connected(server);
        const auto heartbeat = make_request("heartbeat").SerializeAsString();
        // Burst 40 + 200 over the limit + some: the server ends it on the way.
        for (int i = 0; i < 300; ++i) {
            auto [ec, n] =
                co_await client.stream().async_write(asio::buffer(heartbeat), use_nothrow);
            if (ec) {
                break;
            }
        }
        int answers = 0;
        int rate_limited = 0;
        while (auto frame = co_await client.receive()) {
            if (frame->type() == "heartbeat") {
                ++answers;
            } else if (frame->type() == "error" && contains(frame->content(), "rate limited")) {
                ++rate_limited;
            }
        }
        BOOST_TEST(client.close_code() == 1008);
        BOOST_TEST(answers >= 40);
        BOOST_TEST(answers < 60);
        BOOST_TEST(rate_limited >= 190);
        BOOST_TEST(server.metrics().dropped_count(metrics::DropReason::flooding) == 1u);
    });
}

BOOST_AUTO_TEST_CASE(rule_7_a_ping_flood_is_closed_with_1008_without_error_frames) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto ann = co_await logged_in(server, "ann");
        auto client = co_await logged_in(server, "pinger");
        co_await ann.expect("login");
        // Beast answers pings by itself; they must still take tokens: burst 40
        // + 200 over the limit + some.
        for (int i = 0; i < 300; ++i) {
            if (auto [ec] = co_await client.stream().async_ping({}, use_nothrow); ec) {
                break;
            }
        }
        // No error frame for a control frame: nothing comes but the close.
        BOOST_TEST(co_await client.expect_close() == 1008);
        BOOST_TEST(server.metrics().dropped_count(metrics::DropReason::flooding) == 1u);
        BOOST_TEST((co_await ann.expect("logout")).user_name() == "pinger");
    });
}

BOOST_AUTO_TEST_CASE(rule_8_broadcasts_and_notices_in_one_order_for_everyone) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto ann = co_await logged_in(server, "ann");
        auto bob = co_await logged_in(server, "bob");
        const auto bob_notice = co_await ann.expect("login");
        BOOST_TEST(bob_notice.user_name() == "bob");
        BOOST_TEST(bob_notice.user_list().size() == 1u);  // the change, not the list
        co_await ann.send(make_request("message", {}, "one"));
        // Two connections have no order until the hub gives them one: cat
        // logs in only once bob has "one", so the hub ordered "one" first.
        const auto one = co_await bob.expect("message");
        BOOST_TEST(one.content() == "one");
        auto cat = co_await connected(server);
        const auto welcome = co_await cat.login("cat");
        BOOST_TEST(welcome.user_list().size() == 3u);
        co_await bob.send(make_request("message", {}, "two"));
        co_await bob.send(make_request("logout"));

        // ann saw "one" before cat's notice too; everyone sees "two" after it.
        BOOST_TEST((co_await ann.expect("message")).id() == one.id());
        BOOST_TEST((co_await ann.expect("login")).user_name() == "cat");
        BOOST_TEST((co_await bob.expect("login")).user_name() == "cat");
        for (auto* client : {&ann, &cat}) {
            const auto two = co_await client->expect("message");
            BOOST_TEST(two.content() == "two");
            BOOST_TEST(two.id() == one.id() + 1);
            const auto left = co_await client->expect("logout");
            BOOST_TEST(left.user_name() == "bob");
            BOOST_TEST(left.user_list().empty());
        }
        // bob leaves without hearing of its own leaving.
        BOOST_TEST((co_await bob.expect("message")).content() == "two");
        BOOST_TEST(co_await bob.expect_close() == 1000);
    });
}

BOOST_AUTO_TEST_CASE(closing_or_vanishing_users_are_announced) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto ann = co_await logged_in(server, "ann");
        auto bob = co_await logged_in(server, "bob");
        auto cat = co_await logged_in(server, "cat");
        co_await ann.expect("login");
        co_await ann.expect("login");
        co_await bob.close();
        BOOST_TEST((co_await ann.expect("logout")).user_name() == "bob");
        // cat's socket is reset, no close frame.
        auto& socket = boost::beast::get_lowest_layer(cat.stream()).socket();
        socket.set_option(asio::socket_base::linger(true, 0));
        socket.close();
        BOOST_TEST((co_await ann.expect("logout")).user_name() == "cat");
    });
}

BOOST_AUTO_TEST_CASE(rule_16_a_big_room_sends_presence_frames_and_short_welcomes) {
    auto config = test_config();
    config.presence_batch_above = 2;  // three users make a big room here
    config.presence_interval = std::chrono::milliseconds(100);
    config.welcome_list_limit = 2;
    with_server(
        [](TestServer& server) -> awaitable<void> {
            auto ann = co_await logged_in(server, "ann");
            auto bob = co_await logged_in(server, "bob");
            BOOST_TEST((co_await ann.expect("login")).user_name() == "bob");  // still small
            auto cat = co_await connected(server);
            const auto welcome = co_await cat.login("cat");
            BOOST_TEST(welcome.content() == "3");
            BOOST_TEST(welcome.user_list().size() == 2u);  // cat and the latest: bob
            BOOST_TEST(welcome.user_list().contains("bob"));
            const auto joined = co_await ann.expect("presence");
            BOOST_TEST(joined.user_list().size() == 1u);
            BOOST_TEST(joined.user_list().at("cat") == welcome.user_list().at("cat"));
            // A message from the newcomer may come before the presence frame
            // that lists it; here it is sent after ann had that frame.
            co_await cat.send(make_request("message", {}, "hello"));
            BOOST_TEST((co_await bob.expect("presence")).user_list().contains("cat"));
            BOOST_TEST((co_await bob.expect("message")).content() == "hello");
            co_await bob.close();
            const auto left = co_await ann.expect("message");
            BOOST_TEST(left.content() == "hello");
            // Two users left: a small room again, one notice per leave.
            BOOST_TEST((co_await ann.expect("logout")).user_name() == "bob");
        },
        config);
}

BOOST_AUTO_TEST_CASE(rule_10_silent_connections_are_closed_live_ones_pinged) {
    auto config = test_config();
    config.idle_timeout = std::chrono::milliseconds(800);
    with_server(
        [](TestServer& server) -> awaitable<void> {
            auto live = co_await logged_in(server, "live");
            auto silent = co_await logged_in(server, "silent");  // never reads again
            auto watcher = co_await logged_in(server, "watcher");
            co_await live.expect("login");
            co_await live.expect("login");
            co_await silent.send(make_request("heartbeat"));  // then nothing, not even pongs

            // A silent connection that never logged in is closed too.
            auto anonymous = co_await connected(server);
            const auto anonymous_closed = [&]() -> awaitable<void> {
                auto& raw = boost::beast::get_lowest_layer(anonymous.stream());
                const auto start = std::chrono::steady_clock::now();
                raw.expires_after(std::chrono::seconds(10));
                std::array<char, 512> bytes;
                for (;;) {  // pings arrive unanswered, then the end
                    auto [ec, n] = co_await raw.async_read_some(asio::buffer(bytes), use_nothrow);
                    if (ec) {
                        BOOST_TEST((ec != boost::beast::error::timeout), ec.message());
                        break;
                    }
                }
                BOOST_TEST(
                    (std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(700)));
            };
            const auto live_sees = [&]() -> awaitable<void> {
                BOOST_TEST((co_await live.expect("logout")).user_name() == "silent");
                BOOST_TEST((co_await live.expect("message")).content() == "still here?");
            };
            const auto watcher_sees = [&]() -> awaitable<void> {
                BOOST_TEST((co_await watcher.expect("logout")).user_name() == "silent");
                co_await watcher.send(make_request("message", {}, "still here?"));
                co_await watcher.expect("message");
            };
            std::vector<awaitable<void>> tasks;
            tasks.push_back(anonymous_closed());
            tasks.push_back(live_sees());
            tasks.push_back(watcher_sees());
            co_await all(std::move(tasks));
            BOOST_TEST(live.pings_received() >= 1u);  // kept alive by its pongs alone
            // The silent user's drop was counted before its logout notice went out;
            // the anonymous one's may still be on its way (its socket closes first).
            BOOST_TEST(server.metrics().dropped_count(metrics::DropReason::idle) >= 1u);
        },
        std::move(config));
}

BOOST_AUTO_TEST_SUITE_END()
