// Contract rule 17 against a real server: rooms beside the lobby, each with
// its own users, order, ids, history and notices.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "chat/history/memory_history.hpp"
#include "server_test.hpp"

using namespace chat;
using namespace chat::test;

namespace {

/// A room's welcome and the history frame that must follow it at once.
struct Joined {
    ChatRequest welcome;
    ChatRequest history;
};

/// Joins `room` (resuming from `id` in `epoch` when given).
awaitable<Joined> join(ChatClient& client, std::string_view room, std::uint64_t id = 0,
                       std::string_view epoch = {}) {
    auto request = in_room("join", room);
    request.set_id(id);
    request.set_epoch(std::string(epoch));
    co_await client.send(request);
    Joined joined;
    joined.welcome = co_await client.expect("join");
    joined.history = co_await client.expect("history");  // nothing in between
    co_return joined;
}

/// The content of the next error, which must be about `room`.
awaitable<std::string> error_about(ChatClient& client, std::string_view room) {
    const auto error = co_await client.expect("error");
    BOOST_TEST(error.room() == room);
    co_return error.content();
}

session::Config small_history() {
    auto config = test_config();
    config.history_on_join = 3;
    config.resume_limit = 5;
    return config;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rooms)

BOOST_AUTO_TEST_CASE(rule_17_a_room_has_its_own_users_ids_and_messages) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto ann = co_await logged_in(server, "ann");
        auto bob = co_await logged_in(server, "bob");
        auto cat = co_await logged_in(server, "cat");  // stays in the lobby
        co_await ann.expect("login");
        co_await ann.expect("login");
        co_await bob.expect("login");

        const auto first = co_await join(ann, "  books ");  // trimmed
        BOOST_TEST(first.welcome.room() == "books");
        BOOST_TEST(first.welcome.user_name() == "ann");
        BOOST_TEST(first.welcome.id() == 0u);
        BOOST_TEST(first.welcome.epoch().size() == 16u);
        BOOST_TEST(first.welcome.user_list_size() == 1);
        BOOST_TEST(first.history.room() == "books");
        BOOST_TEST(first.history.history_size() == 0);

        const auto second = co_await join(bob, "books");
        BOOST_TEST(second.welcome.user_list_size() == 2);
        BOOST_TEST(second.welcome.user_list().contains("ann"));
        const auto notice = co_await ann.expect("join");
        BOOST_TEST(notice.room() == "books");
        BOOST_TEST(notice.user_name() == "bob");
        BOOST_TEST(notice.user_list_size() == 1);

        // Ids count in each room apart: the lobby's first message is 1 too.
        co_await ann.send(in_room("message", "books", "chapter one"));
        for (auto* client : {&ann, &bob}) {
            const auto message = co_await client->expect("message");
            BOOST_TEST(message.room() == "books");
            BOOST_TEST(message.id() == 1u);
            BOOST_TEST(message.content() == "chapter one");
        }
        co_await cat.send(make_request("message", {}, "lobby one"));
        for (auto* client : {&ann, &bob, &cat}) {
            const auto message = co_await client->expect("message");
            BOOST_TEST(message.room().empty());
            BOOST_TEST(message.id() == 1u);
            BOOST_TEST(message.content() == "lobby one");
        }
        co_await ann.send(in_room("message", "books", "chapter two"));
        BOOST_TEST((co_await bob.expect("message")).id() == 2u);
        BOOST_TEST((co_await ann.expect("message")).id() == 2u);
        // cat saw nothing of the room: its next frame is the lobby's.
        co_await bob.send(make_request("message", {}, "lobby two"));
        const auto next = co_await cat.expect("message");
        BOOST_TEST(next.content() == "lobby two");
    });
}

BOOST_AUTO_TEST_CASE(rule_17_leaving_a_room_and_leaving_the_server) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto ann = co_await logged_in(server, "ann");
        auto bob = co_await logged_in(server, "bob");
        co_await ann.expect("login");
        co_await join(ann, "a");
        co_await join(ann, "b");
        co_await join(bob, "a");
        co_await ann.expect("join");
        co_await join(bob, "b");
        co_await ann.expect("join");

        co_await bob.send(in_room("leave", "a"));
        const auto confirmation = co_await bob.expect("leave");
        BOOST_TEST(confirmation.room() == "a");
        BOOST_TEST(confirmation.user_name() == "bob");
        const auto notice = co_await ann.expect("leave");
        BOOST_TEST(notice.room() == "a");
        BOOST_TEST(notice.user_name() == "bob");
        // No frame of "a" follows for bob: the next it gets is of "b".
        co_await ann.send(in_room("message", "a", "only ann"));
        co_await ann.expect("message");
        co_await ann.send(in_room("message", "b", "both"));
        BOOST_TEST((co_await bob.expect("message")).room() == "b");
        co_await ann.expect("message");

        // Leaving the server leaves every room: a leave in each room it was
        // in, and the lobby's logout.
        co_await ann.close();
        std::vector<std::string> seen;
        for (int i = 0; i < 2; ++i) {
            const auto frame = co_await bob.receive();
            BOOST_TEST_REQUIRE(frame.has_value());
            seen.push_back(frame->type() + ":" + frame->room());
        }
        std::sort(seen.begin(), seen.end());
        BOOST_TEST((seen == std::vector<std::string>{"leave:b", "logout:"}));
        // "a" had only ann: it is gone, and a new join finds its message kept.
        const auto again = co_await join(bob, "a");
        BOOST_TEST(again.welcome.id() == 1u);
        BOOST_TEST(again.welcome.user_list_size() == 1);
    });
}

BOOST_AUTO_TEST_CASE(rule_17_bad_rooms_and_requests_about_rooms_one_is_not_in) {
    auto config = test_config();
    config.max_rooms_per_user = 2;
    with_server(
        [](TestServer& server) -> awaitable<void> {
            auto ann = co_await connected(server);
            co_await ann.send(in_room("join", "early"));
            BOOST_TEST((co_await ann.expect("error")).content() == "log in first");
            co_await ann.login("ann");

            const std::string long_name(65, 'x');
            for (const auto& bad :
                 {std::string(" \t "), std::string("@home"), std::string("tab\there"), long_name}) {
                for (const auto* type : {"join", "leave", "message", "history"}) {
                    auto request = in_room(type, bad, "text");
                    request.set_id(5);
                    co_await ann.send(request);
                    const auto error = co_await ann.expect("error");
                    BOOST_TEST(error.content().find("bad room") != std::string::npos, type);
                    BOOST_TEST(error.room().empty());
                }
            }
            BOOST_TEST((co_await join(ann, std::string(64, 'x'))).welcome.room().size() == 64u);
            co_await ann.send(make_request("join"));  // no room
            BOOST_TEST((co_await ann.expect("error")).content().find("bad room") !=
                       std::string::npos);
            co_await ann.send(make_request("leave"));
            BOOST_TEST((co_await ann.expect("error")).content().find("bad room") !=
                       std::string::npos);

            co_await ann.send(in_room("join", std::string(64, 'x')));
            BOOST_TEST((co_await error_about(ann, std::string(64, 'x'))) == "already in room");
            for (const auto* type : {"leave", "message", "history"}) {
                auto request = in_room(type, "elsewhere", "text");
                request.set_id(5);
                co_await ann.send(request);
                BOOST_TEST((co_await error_about(ann, "elsewhere")) == "not in room", type);
            }
            co_await join(ann, "second");
            co_await ann.send(in_room("join", "third"));
            BOOST_TEST((co_await error_about(ann, "third")).find("too many rooms") !=
                       std::string::npos);
            // A valid room's request that is bad otherwise names the room.
            co_await ann.send(in_room("message", "second", "   "));
            BOOST_TEST((co_await error_about(ann, "second")).find("empty") != std::string::npos);
        },
        config);
}

BOOST_AUTO_TEST_CASE(rule_17_history_resume_and_pages_per_room) {
    with_server(
        [](TestServer& server) -> awaitable<void> {
            auto ann = co_await logged_in(server, "ann");
            const auto epoch = (co_await join(ann, "r")).welcome.epoch();
            for (int i = 1; i <= 12; ++i) {
                co_await ann.send(in_room("message", "r", "m" + std::to_string(i)));
                co_await ann.expect("message");
            }
            co_await ann.send(make_request("message", {}, "lobby"));
            co_await ann.expect("message");

            auto bob = co_await logged_in(server, "bob");
            co_await ann.expect("login");
            const auto fresh = co_await join(bob, "r");
            co_await ann.expect("join");
            BOOST_TEST(fresh.welcome.id() == 12u);
            BOOST_TEST((ids_of(fresh.history) == Ids{10, 11, 12}));  // --history-on-join 3
            BOOST_TEST(fresh.history.history(2).content() == "m12");

            // A page of the room, not of the lobby.
            auto page = in_room("history", "r");
            page.set_id(10);
            co_await bob.send(page);
            const auto older = co_await bob.expect("history");
            BOOST_TEST(older.room() == "r");
            BOOST_TEST((ids_of(older) == Ids{1, 2, 3, 4, 5, 6, 7, 8, 9}));

            // bob leaves the room and comes back: it resumes after 12.
            co_await bob.send(in_room("leave", "r"));
            co_await bob.expect("leave");
            co_await ann.expect("leave");
            co_await ann.send(in_room("message", "r", "m13"));
            co_await ann.expect("message");
            const auto back = co_await join(bob, "r", 12, epoch);
            BOOST_TEST((ids_of(back.history) == Ids{13}));
            auto cat = co_await logged_in(server, "cat");
            const auto stranger = co_await join(cat, "r", 4, "other");
            BOOST_TEST((ids_of(stranger.history) == Ids{11, 12, 13}));
        },
        small_history());
}

BOOST_AUTO_TEST_CASE(rule_17_a_room_without_users_keeps_its_messages_until_rooms_run_out) {
    auto history = std::make_unique<history::MemoryHistory>(
        history::Config{.db = {}, .keep = 100, .max_rooms = 2});
    TestServer server(test_config(), std::move(history));
    run([&]() -> awaitable<void> {
        auto ann = co_await logged_in(server, "ann");
        co_await join(ann, "old");
        co_await ann.send(in_room("message", "old", "kept"));
        co_await ann.expect("message");
        co_await ann.send(in_room("leave", "old"));
        co_await ann.expect("leave");
        co_await join(ann, "busy");
        // Two rooms exist: "old" (kept messages, no users) and "busy".
        const auto back = co_await join(ann, "old");
        BOOST_TEST(back.welcome.id() == 1u);
        co_await ann.send(in_room("leave", "old"));
        co_await ann.expect("leave");
        // A third room: the quiet one without users goes, with its messages.
        co_await join(ann, "new");
        // "busy" goes as its last user leaves (it kept no message): room
        // for "old" again, which starts without its message but counts on,
        // so that id 1 names one message in this epoch (rule 12).
        co_await ann.send(in_room("leave", "busy"));
        co_await ann.expect("leave");
        auto bob = co_await logged_in(server, "bob");
        const auto gone = co_await join(bob, "old");
        BOOST_TEST(gone.welcome.id() == 1u);
        BOOST_TEST(gone.history.history_size() == 0);
        co_await bob.send(in_room("message", "old", "anew"));
        BOOST_TEST((co_await bob.expect("message")).id() == 2u);
        auto cat = co_await logged_in(server, "cat");
        co_await cat.send(in_room("join", "fourth"));  // "new" and "old" have users
        BOOST_TEST((co_await error_about(cat, "fourth")).find("too many rooms") !=
                   std::string::npos);
    });
}

BOOST_AUTO_TEST_CASE(rule_17_rooms_lists_the_busiest_rooms_and_not_the_lobby) {
    with_server([](TestServer& server) -> awaitable<void> {
        auto ann = co_await logged_in(server, "ann");
        auto bob = co_await logged_in(server, "bob");
        co_await ann.expect("login");
        co_await join(ann, "two");
        co_await join(bob, "two");
        co_await ann.expect("join");
        co_await join(bob, "one");
        co_await ann.send(make_request("rooms"));
        const auto answer = co_await ann.expect("rooms");
        BOOST_TEST(answer.rooms_size() == 2);
        BOOST_TEST(answer.rooms().at("two") == 2u);
        BOOST_TEST(answer.rooms().at("one") == 1u);
        BOOST_TEST(!answer.rooms().contains(""));
        BOOST_TEST(answer.timestamp() > 0);
        // Now, not a moment ago: a leave shows in the next answer.
        co_await bob.send(in_room("leave", "two"));
        co_await bob.expect("leave");
        co_await ann.expect("leave");
        co_await ann.send(make_request("rooms"));
        const auto after = co_await ann.expect("rooms");
        BOOST_TEST(after.rooms().at("two") == 1u);
        co_await bob.send(in_room("leave", "one"));
        co_await bob.expect("leave");
        co_await ann.send(make_request("rooms"));
        BOOST_TEST(!(co_await ann.expect("rooms")).rooms().contains("one"));
    });
}

BOOST_AUTO_TEST_CASE(rule_17_a_big_room_gets_presence_frames_with_its_name) {
    auto config = test_config();
    config.presence_batch_above = 1;
    with_server(
        [](TestServer& server) -> awaitable<void> {
            auto ann = co_await logged_in(server, "ann");
            auto bob = co_await logged_in(server, "bob");
            co_await join(ann, "big");
            co_await join(bob, "big");  // two users: above 1
            for (;;) {
                const auto frame = co_await ann.receive();
                BOOST_TEST_REQUIRE(frame.has_value());
                if (frame->type() == "presence" && frame->room() == "big") {
                    BOOST_TEST(frame->user_list().contains("bob"));
                    break;
                }
            }
        },
        config);
}

BOOST_AUTO_TEST_SUITE_END()
