// Contract rule 18 against real processes: rooms (rule 17) in a cluster of
// three chat_app nodes sharing one redis-server of the test's own, on
// loopback. Rule 15 holds per room: one order and one id sequence per room
// across the nodes, users and notices of every node, resume on any node;
// and a node reads only the events of the rooms its users are in.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster_nodes.hpp"

using namespace chat;
using namespace chat::test;

namespace {

using Lines = std::vector<std::string>;

/// "type:room:user" of a frame: "leave:r:bob", "logout::bob" (the lobby).
std::string describe(const ChatRequest& frame) {
    return frame.type() + ":" + frame.room() + ":" + frame.user_name();
}

/// An error the test did not wait for ends it at once, saying what it was
/// (rather than a timeout later): "unavailable: ..." while the server side
/// of rule 18 is missing.
void fail_on_error(const ChatRequest& frame, const std::string& waiting_for) {
    if (frame.type() == "error") {
        throw std::runtime_error("error \"" + frame.content() + "\" (room \"" + frame.room() +
                                 "\") while waiting for " + waiting_for);
    }
}

/// Skips frames until one of `type` in `room` ("": the lobby) comes, about
/// `name` when given.
awaitable<ChatRequest> next(ChatClient& client, std::string type, std::string room = {},
                            std::string name = {}, ChatClient::Duration timeout = default_timeout) {
    const auto waiting_for = type + " in \"" + room + "\" " + name;
    for (;;) {
        auto frame = co_await client.receive(timeout);
        BOOST_TEST_REQUIRE(frame.has_value(), "closed (" << client.close_code()
                                                         << ") while waiting for " << waiting_for);
        if (frame->type() == type && frame->room() == room &&
            (name.empty() || frame->user_name() == name)) {
            co_return *frame;
        }
        fail_on_error(*frame, waiting_for);
    }
}

/// The next message of whatever room (other frames skipped).
awaitable<ChatRequest> next_message(ChatClient& client) {
    for (;;) {
        auto frame = co_await client.receive();
        BOOST_TEST_REQUIRE(frame.has_value(), "closed while waiting for a message");
        fail_on_error(*frame, "a message");
        if (frame->type() == "message") {
            co_return *frame;
        }
    }
}

/// Receives until every notice of `wanted` ("leave:r:bob", see describe)
/// has come, within `limit`; the notices seen on the way, in order.
awaitable<Lines> await_notices(ChatClient& client, std::set<std::string> wanted,
                               ChatClient::Duration limit = default_timeout) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    Lines seen;
    while (!wanted.empty()) {
        std::string missing;
        for (const auto& notice : wanted) {
            missing += " " + notice;
        }
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= ChatClient::Duration::zero()) {
            throw std::runtime_error("still waiting for" + missing);
        }
        auto frame = co_await client.receive(left);
        BOOST_TEST_REQUIRE(frame.has_value(), "closed while waiting for" << missing);
        fail_on_error(*frame, missing);
        const auto& type = frame->type();
        if (type == "join" || type == "leave" || type == "login" || type == "logout") {
            seen.push_back(describe(*frame));
            wanted.erase(seen.back());
        }
    }
    co_return seen;
}

/// A room's welcome and the history frame that must follow it at once.
struct Joined {
    ChatRequest welcome;
    ChatRequest history;
};

/// Joins `room` (resuming from `id` in `epoch` when given). Frames of other
/// rooms may come before the welcome; none may come between it and the
/// history frame.
awaitable<Joined> join(ChatClient& client, std::string room, std::uint64_t id = 0,
                       std::string epoch = {}) {
    auto request = in_room("join", room);
    request.set_id(id);
    request.set_epoch(epoch);
    co_await client.send(request);
    Joined joined;
    joined.welcome = co_await next(client, "join", room);
    joined.history = co_await client.expect("history");  // nothing in between
    BOOST_TEST(joined.history.room() == room);
    co_return joined;
}

/// `first` joins `room`, then `second` (logged in as `second_name`), and
/// `first` has seen that join: both are in, in that order.
awaitable<void> join_in_turn(ChatClient& first, ChatClient& second, std::string second_name,
                             std::string room) {
    co_await join(first, room);
    co_await join(second, room);
    co_await next(first, "join", room, second_name);
}

/// The content of the next error, which must be about `room`.
awaitable<std::string> error_about(ChatClient& client, std::string room) {
    const auto error = co_await next(client, "error", room);
    co_return error.content();
}

/// The confirmation of a leave comes at once; the node lets go of the room
/// in Redis on its way. A lobby message of the same client goes there after
/// it (one connection, in order): once it is back, the room is let go of.
awaitable<void> vacated(ChatClient& client) {
    co_await client.send(make_request("message", {}, "after the leave"));
    const auto echo = co_await next_message(client);
    BOOST_TEST(echo.content() == "after the leave");
}

awaitable<void> say_in(ChatClient& client, std::string room, std::string prefix, int n) {
    for (int i = 0; i < n; ++i) {
        co_await client.send(in_room("message", room, prefix + std::to_string(i)));
    }
}

/// Messages wanted per room ("": the lobby).
using Counts = std::map<std::string, int>;
/// Messages seen per room, "ID content" each, in the order they came.
using Seen = std::map<std::string, Lines>;

/// Receives until at least `counts` messages of each room have come; the
/// messages of those rooms, other frames skipped.
awaitable<Seen> messages_in(ChatClient& client, Counts counts) {
    Seen seen;
    for (const auto& [room, count] : counts) {
        seen[room];
    }
    const auto done = [&] {
        return std::all_of(counts.begin(), counts.end(), [&](const auto& entry) {
            return static_cast<int>(seen[entry.first].size()) >= entry.second;
        });
    };
    while (!done()) {
        const auto message = co_await next_message(client);
        if (counts.contains(message.room())) {
            seen[message.room()].push_back(std::to_string(message.id()) + " " + message.content());
        }
    }
    co_return seen;
}

awaitable<void> messages_into(ChatClient& client, Counts counts, Seen& out) {
    out = co_await messages_in(client, std::move(counts));
}

/// What a client saw in `room`, in order: "join x", "leave x",
/// "message ID x: text", until `messages` messages and `last_notice` came.
awaitable<Lines> record(ChatClient& client, std::string room, int messages,
                        std::string last_notice) {
    Lines seen;
    bool notice_seen = false;
    while (messages > 0 || !notice_seen) {
        auto frame = co_await client.receive();
        BOOST_TEST_REQUIRE(frame.has_value());
        fail_on_error(*frame, "the frames of " + room);
        if (frame->room() != room) {
            continue;
        }
        if (frame->type() == "message") {
            seen.push_back("message " + std::to_string(frame->id()) + " " + frame->user_name() +
                           ": " + frame->content());
            --messages;
        } else if (frame->type() == "join" || frame->type() == "leave") {
            seen.push_back(frame->type() + " " + frame->user_name());
            notice_seen = notice_seen || seen.back() == last_notice;
        }
    }
    co_return seen;
}

awaitable<void> record_into(ChatClient& client, Lines& out, int messages) {
    out = co_await record(client, "r", messages, "leave dan");
}

/// A user who enters room "r" on `port`, says something and leaves it
/// while the others talk.
awaitable<void> visit(std::uint16_t port) {
    auto dan = co_await log_in(port, "dan");
    co_await join(dan, "r");
    co_await dan.send(in_room("message", "r", "hi from dan"));
    co_await next(dan, "message", "r", "dan");
    co_await dan.send(in_room("leave", "r"));
    const auto confirmation = co_await next(dan, "leave", "r");
    BOOST_TEST(confirmation.user_name() == "dan");
    co_await dan.close();
}

/// A `rooms` answer, sorted: "one=2 two=1".
awaitable<std::string> rooms_now(ChatClient& client) {
    co_await client.send(make_request("rooms"));
    const auto answer = co_await next(client, "rooms");
    const std::map<std::string, std::uint64_t> sorted(answer.rooms().begin(), answer.rooms().end());
    std::string out;
    for (const auto& [name, users] : sorted) {
        out += (out.empty() ? "" : " ") + name + "=" + std::to_string(users);
    }
    co_return out;
}

/// The node's chat_events_sequenced_total.
awaitable<std::uint64_t> events_sequenced(std::uint16_t port) {
    const auto metrics = (co_await http_request(port, "/metrics")).body;
    co_return static_cast<std::uint64_t>(metric_value(metrics, "chat_events_sequenced_total"));
}

/// Whether `key` holds `room` as a name of its own: not inside a longer word
/// (a random string that happens to hold "r1").
bool names(const std::string& key, const std::string& room) {
    const auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    for (auto at = key.find(room); at != std::string::npos; at = key.find(room, at + 1)) {
        const auto end = at + room.size();
        if ((at == 0 || !word(key[at - 1])) && (end == key.size() || !word(key[end]))) {
            return true;
        }
    }
    return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cluster_rooms)

BOOST_AUTO_TEST_CASE(a_room_spans_the_nodes_with_one_order_and_one_id_sequence) {
    Cluster cluster;
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            auto cid = co_await log_in(cluster.port(2), "cid");
            auto eve = co_await log_in(cluster.port(0), "eve");  // stays in the lobby

            const auto first = co_await join(ann, "r");
            BOOST_TEST(first.welcome.room() == "r");
            BOOST_TEST(first.welcome.user_name() == "ann");
            BOOST_TEST(first.welcome.id() == 0u);
            BOOST_TEST(!first.welcome.epoch().empty());
            BOOST_TEST(first.welcome.user_list_size() == 1);
            BOOST_TEST(first.history.history_size() == 0);

            // The welcome lists the users of every node; the notice reaches them.
            const auto second = co_await join(bob, "r");
            BOOST_TEST(second.welcome.user_list_size() == 2);
            BOOST_TEST(second.welcome.user_list().contains("ann"));
            BOOST_TEST(second.welcome.epoch() == first.welcome.epoch());
            const auto notice = co_await next(ann, "join", "r", "bob");
            BOOST_TEST(notice.user_list_size() == 1);
            BOOST_TEST_REQUIRE(notice.user_list().contains("bob"));
            const auto third = co_await join(cid, "r");
            BOOST_TEST(third.welcome.user_list_size() == 3);
            BOOST_TEST_REQUIRE(third.welcome.user_list().contains("bob"));
            BOOST_TEST(third.welcome.user_list().at("bob") == notice.user_list().at("bob"));
            co_await next(ann, "join", "r", "cid");
            co_await next(bob, "join", "r", "cid");

            // Three senders on three nodes and a visitor: one order, one sequence.
            constexpr int each = 15;
            Lines seen_ann;
            Lines seen_bob;
            Lines seen_cid;
            std::vector<awaitable<void>> tasks;
            tasks.push_back(say_in(ann, "r", "a", each));
            tasks.push_back(say_in(bob, "r", "b", each));
            tasks.push_back(say_in(cid, "r", "c", each));
            tasks.push_back(visit(cluster.port(1)));
            tasks.push_back(record_into(ann, seen_ann, 3 * each + 1));
            tasks.push_back(record_into(bob, seen_bob, 3 * each + 1));
            tasks.push_back(record_into(cid, seen_cid, 3 * each + 1));
            co_await all(std::move(tasks));

            BOOST_TEST(seen_ann == seen_bob);
            BOOST_TEST(seen_ann == seen_cid);
            std::uint64_t expected = 1;
            for (const auto& line : seen_ann) {
                if (line.starts_with("message ")) {
                    BOOST_TEST(line.starts_with("message " + std::to_string(expected++) + " "),
                               line);
                }
            }
            BOOST_TEST(expected == 3 * each + 2);
            BOOST_TEST(std::count(seen_ann.begin(), seen_ann.end(), "join dan") == 1);
            BOOST_TEST(std::count(seen_ann.begin(), seen_ann.end(), "leave dan") == 1);

            // eve got nothing of the room; the lobby counts its own ids.
            co_await eve.send(make_request("message", {}, "lobby one"));
            Lines of_rooms;
            for (;;) {
                const auto frame = co_await eve.receive();
                BOOST_TEST_REQUIRE(frame.has_value());
                if (!frame->room().empty()) {
                    of_rooms.push_back(describe(*frame));
                }
                if (frame->type() == "message") {
                    BOOST_TEST(frame->content() == "lobby one");
                    BOOST_TEST(frame->id() == 1u);
                    break;
                }
            }
            BOOST_TEST(of_rooms.empty());
        },
        60s);
}

BOOST_AUTO_TEST_CASE(leaves_and_closes_reach_every_node_and_rooms_counts_them_cluster_wide) {
    Cluster cluster;
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            auto cid = co_await log_in(cluster.port(2), "cid");
            co_await join(ann, "x");
            co_await join(ann, "y");
            co_await join(bob, "x");
            co_await next(ann, "join", "x", "bob");
            co_await join(bob, "y");
            co_await next(ann, "join", "y", "bob");
            co_await join(cid, "x");
            co_await next(ann, "join", "x", "cid");
            co_await next(bob, "join", "x", "cid");
            // Node c serves nobody in "y": its count comes from the others.
            const auto before = co_await rooms_now(cid);
            BOOST_TEST(before == "x=3 y=2");

            co_await bob.send(in_room("leave", "x"));
            const auto confirmation = co_await next(bob, "leave", "x");
            BOOST_TEST(confirmation.user_name() == "bob");
            co_await next(ann, "leave", "x", "bob");
            co_await next(cid, "leave", "x", "bob");
            const auto after_leave = co_await rooms_now(cid);
            BOOST_TEST(after_leave == "x=2 y=2");

            // No frame of "x" follows for bob: the next message it gets is of "y".
            co_await ann.send(in_room("message", "x", "without bob"));
            co_await ann.send(in_room("message", "y", "with bob"));
            const auto bobs = co_await next_message(bob);
            BOOST_TEST(bobs.room() == "y");
            BOOST_TEST(bobs.content() == "with bob");
            const auto cids = co_await next_message(cid);
            BOOST_TEST(cids.room() == "x");
            BOOST_TEST(cids.content() == "without bob");

            // Closing leaves every room the user is still in, and the lobby.
            co_await bob.close();
            const std::set<std::string> gone{"leave:y:bob", "logout::bob"};
            const auto seen_ann = co_await await_notices(ann, gone);
            BOOST_TEST(std::count(seen_ann.begin(), seen_ann.end(), "leave:x:bob") == 0);
            const std::set<std::string> logout{"logout::bob"};
            const auto seen_cid = co_await await_notices(cid, logout);
            const Lines only_logout{"logout::bob"};
            BOOST_TEST(seen_cid == only_logout);
            const auto after_close = co_await rooms_now(cid);
            BOOST_TEST(after_close == "x=2 y=1");
        },
        60s);
}

BOOST_AUTO_TEST_CASE(the_users_of_a_killed_node_leave_each_of_their_rooms_within_the_timeout) {
    Cluster cluster("2");
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            auto cid = co_await log_in(cluster.port(2), "cid");
            co_await join(ann, "k");
            co_await join(ann, "m");
            co_await join(bob, "k");
            co_await next(ann, "join", "k", "bob");
            co_await join(cid, "k");
            co_await join(cid, "m");
            const std::set<std::string> cid_joined{"join:k:cid", "join:m:cid"};
            co_await await_notices(ann, cid_joined);
            co_await next(bob, "join", "k", "cid");
            cluster.until_judging(2);

            const auto killed = std::chrono::steady_clock::now();
            cluster.nodes.at(2)->signal(SIGKILL);
            const std::set<std::string> gone_for_ann{"leave:k:cid", "leave:m:cid", "logout::cid"};
            co_await await_notices(ann, gone_for_ann, 10s);
            const auto took = std::chrono::steady_clock::now() - killed;
            BOOST_TEST_MESSAGE(
                "leaves announced after "
                << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                << " ms (node timeout 2 s)");
            BOOST_TEST(took < 2s);  // rules 15 and 18: within the node timeout, in every room
            const std::set<std::string> gone_for_bob{"leave:k:cid", "logout::cid"};
            const auto seen_bob = co_await await_notices(bob, gone_for_bob, 10s);
            BOOST_TEST(std::count(seen_bob.begin(), seen_bob.end(), "leave:m:cid") == 0);

            // The rooms forgot cid on every node: back, it is listed once.
            auto again = co_await log_in(cluster.port(1), "cid");
            const auto back = co_await join(again, "k");
            BOOST_TEST(back.welcome.user_list_size() == 3);
            const auto rooms = co_await rooms_now(again);
            BOOST_TEST(rooms == "k=3 m=1");
        },
        60s);
}

BOOST_AUTO_TEST_CASE(a_node_taken_for_dead_restarts_its_own_clients_when_its_room_was_made_again) {
    Cluster cluster("2");
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto cid = co_await log_in(cluster.port(2), "cid");
            co_await join(cid, "solo");  // node c alone holds it; no message kept
            cluster.until_judging(1);

            // Node c frozen past the node timeout: swept, "solo" forgotten.
            cluster.nodes.at(2)->signal(SIGSTOP);
            co_await next(ann, "logout", {}, "cid", 10s);
            // Made again by ann: its events start over, above what c read.
            const auto made = co_await join(ann, "solo");
            BOOST_TEST(made.welcome.user_list_size() == 1);
            co_await say_in(ann, "solo", "again", 1);
            co_await next(ann, "message", "solo");
            cluster.nodes.at(2)->signal(SIGCONT);

            // Rule 15: c's clients log in again (1012); nobody else's do, and
            // the epoch stays (nothing in Redis went back).
            BOOST_TEST((co_await cid.wait_close(20s)) == 1012u);
            co_await ann.send(in_room("message", "solo", "still here"));
            const auto still = co_await next(ann, "message", "solo");
            BOOST_TEST(still.content() == "still here");
            auto again = co_await log_in_after_restart(cluster.port(2), "cid");
            const auto back = co_await join(again, "solo");
            BOOST_TEST(back.welcome.epoch() == made.welcome.epoch());
            BOOST_TEST(back.welcome.id() == 2u);
        },
        60s);
}

BOOST_AUTO_TEST_CASE(a_room_resumes_on_another_node_with_exactly_the_messages_missed) {
    Cluster cluster;
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            co_await join(ann, "r");
            const auto welcome = (co_await join(bob, "r")).welcome;
            co_await next(ann, "join", "r", "bob");
            co_await say_in(ann, "r", "before", 3);
            const Counts three{{"r", 3}};
            const auto before = co_await messages_in(bob, three);
            const Lines expected_before{"1 before0", "2 before1", "3 before2"};
            BOOST_TEST(before.at("r") == expected_before);
            const std::uint64_t seen = 3;
            boost::beast::get_lowest_layer(bob.stream()).socket().close();  // dropped

            co_await ann.send(make_request("message", {}, "lobby"));  // the lobby counts apart
            co_await say_in(ann, "r", "meanwhile", 4);
            const Counts own{{"r", 7}, {"", 1}};
            const auto anns = co_await messages_in(ann, own);
            BOOST_TEST(anns.at("r").back() == "7 meanwhile3");

            // Back on another node, under another name (bob's may not be free yet).
            auto back = co_await log_in(cluster.port(2), "bob-again");
            const auto resumed = co_await join(back, "r", seen, welcome.epoch());
            BOOST_TEST(resumed.welcome.id() == 7u);
            BOOST_TEST(resumed.welcome.epoch() == welcome.epoch());
            const Ids missed{4, 5, 6, 7};
            BOOST_TEST(ids_of(resumed.history) == missed);
            if (resumed.history.history_size() > 0) {
                BOOST_TEST(resumed.history.history(0).content() == "meanwhile0");
            }

            // Older pages of the room come from the one history too.
            auto page = in_room("history", "r");
            page.set_id(seen + 1);
            co_await back.send(page);
            const auto older = co_await next(back, "history", "r");
            const Ids kept{1, 2, 3};
            BOOST_TEST(ids_of(older) == kept);
        },
        60s);
}

namespace {
/// `sent` messages in room "k" and in the lobby, with --history-keep `keep`:
/// a page asked from just above the newest ends at the newest `keep`, and
/// below them there is nothing.
void pages_end_at_the_kept(int keep, int sent) {
    // Sent before anyone reads: queues deep enough for all of them. Joins
    // are given more than is kept: they too get the kept ones only.
    Cluster cluster("10", {"--history-keep", std::to_string(keep), "--history-on-join", "2000",
                           "--rate", "0", "--queue-depth", "8192"});
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            co_await join_in_turn(ann, bob, "bob", "k");
            co_await say_in(ann, "k", "m", sent);
            for (int i = 0; i < sent; ++i) {
                co_await ann.send(make_request("message", {}, "lobby " + std::to_string(i)));
            }
            const Counts all{{"k", sent}, {"", sent}};
            co_await messages_in(bob, all);

            const auto last = static_cast<std::uint64_t>(sent);
            const auto oldest = last - static_cast<std::uint64_t>(keep) + 1;
            const auto page_of = [&](std::string room, std::uint64_t before) -> awaitable<Ids> {
                auto page = room.empty() ? make_request("history") : in_room("history", room);
                page.set_id(before);
                co_await bob.send(page);
                co_return ids_of(co_await next(bob, "history", room));
            };
            // Pages hold 100 at most: the newest of them, up to the last.
            Ids kept;
            for (auto id = std::max(oldest, last > 99 ? last - 99 : 1); id <= last; ++id) {
                kept.push_back(id);
            }
            BOOST_TEST(co_await page_of("k", last + 1) == kept);
            BOOST_TEST(co_await page_of("", last + 1) == kept);
            const Ids oldest_only{oldest};
            BOOST_TEST(co_await page_of("k", oldest + 1) == oldest_only);
            BOOST_TEST((co_await page_of("k", oldest)).empty());
            BOOST_TEST(co_await page_of("", oldest + 1) == oldest_only);
            BOOST_TEST((co_await page_of("", oldest)).empty());

            // A node that opens the room now reads its newest from Redis.
            auto cid = co_await log_in(cluster.port(2), "cid");
            Ids all_kept;
            for (auto id = oldest; id <= last; ++id) {
                all_kept.push_back(id);
            }
            BOOST_TEST(ids_of((co_await join(cid, "k")).history) == all_kept);
        },
        60s);
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_page_ends_at_the_newest_messages_a_room_keeps) {
    // Below 1,000 kept, Redis trims each room's messages exactly.
    pages_end_at_the_kept(5, 12);
}

BOOST_AUTO_TEST_CASE(a_page_ends_at_the_kept_messages_where_redis_holds_more) {
    // From 1,000 kept, Redis trims by whole stream nodes and still holds
    // some of the oldest: pages end at the kept ones all the same.
    pages_end_at_the_kept(1000, 1010);
}

BOOST_AUTO_TEST_CASE(a_node_reads_only_the_events_of_the_rooms_its_users_are_in) {
    Cluster cluster("10", {"--rate", "0"});  // 100 messages each at once
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            auto cid = co_await log_in(cluster.port(2), "cid");  // in the lobby only
            co_await join_in_turn(ann, bob, "bob", "busy");
            const auto a_before = co_await events_sequenced(cluster.port(0));
            const auto c_before = co_await events_sequenced(cluster.port(2));

            constexpr int each = 100;
            Seen seen_ann;
            Seen seen_bob;
            const Counts all_of_them{{"busy", 2 * each}};
            std::vector<awaitable<void>> tasks;
            tasks.push_back(say_in(ann, "busy", "a", each));
            tasks.push_back(say_in(bob, "busy", "b", each));
            tasks.push_back(messages_into(ann, all_of_them, seen_ann));
            tasks.push_back(messages_into(bob, all_of_them, seen_bob));
            co_await all(std::move(tasks));
            BOOST_TEST(seen_ann.at("busy").back().starts_with("200 "));
            BOOST_TEST(seen_ann.at("busy") == seen_bob.at("busy"));

            // After this lobby message, node c has read everything sequenced
            // before it that it reads at all.
            co_await ann.send(make_request("message", {}, "done"));
            const auto done = co_await next(cid, "message");
            BOOST_TEST(done.content() == "done");
            const auto a_after = co_await events_sequenced(cluster.port(0));
            const auto c_after = co_await events_sequenced(cluster.port(2));
            const auto a_grew = a_after - a_before;
            const auto c_grew = c_after - c_before;
            BOOST_TEST_MESSAGE("events read: node a " << a_grew << ", node c " << c_grew);
            BOOST_TEST(a_grew >= 200u);
            BOOST_TEST(c_grew < 50u);
        },
        60s);
}

BOOST_AUTO_TEST_CASE(the_keys_of_a_room_share_one_hash_tag) {
    Cluster cluster;
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            co_await join_in_turn(ann, bob, "bob", "r1");
            co_await join(bob, "r2");
            co_await say_in(ann, "r1", "m", 3);
            co_await say_in(bob, "r2", "m", 2);
            const Counts both{{"r1", 3}, {"r2", 2}};
            co_await messages_in(bob, both);
            co_await bob.send(in_room("leave", "r1"));
            co_await next(bob, "leave", "r1");
            co_await next(ann, "leave", "r1", "bob");
        },
        60s);
    // Redis Cluster hashes the first {...} of a key: it must be the room's.
    const auto keys = cluster.redis.command({"--raw", "KEYS", "*"});
    for (const std::string room : {"r1", "r2"}) {
        BOOST_TEST_CONTEXT("room " << room << ", keys:\n" << keys) {
            const auto tag = "{r:" + room + "}";
            std::istringstream lines(keys);
            int of_room = 0;
            for (std::string key; std::getline(lines, key);) {
                if (!names(key, room)) {
                    continue;
                }
                ++of_room;
                const auto brace = key.find('{');
                BOOST_TEST((brace != std::string::npos && key.compare(brace, tag.size(), tag) == 0),
                           key);
            }
            BOOST_TEST(of_room > 0);
        }
    }
}

BOOST_AUTO_TEST_CASE(redis_restarted_mid_chat_continues_each_room_without_gap_or_duplicate) {
    Cluster cluster;
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            auto cid = co_await log_in(cluster.port(2), "cid");
            // "r": ann, bob and cid; "s": bob and cid.
            co_await join_in_turn(ann, bob, "bob", "r");
            co_await join(cid, "r");
            co_await next(ann, "join", "r", "cid");
            co_await next(bob, "join", "r", "cid");
            co_await join(bob, "s");
            co_await join(cid, "s");
            co_await next(bob, "join", "s", "cid");
            auto dan = co_await log_in(cluster.port(2), "dan");
            co_await join(dan, "r");
            co_await next(ann, "join", "r", "dan");
            co_await say_in(ann, "r", "up", 2);
            co_await say_in(cid, "s", "up", 2);
            const Counts r_up{{"r", 2}};
            const Counts both_up{{"r", 2}, {"s", 2}};
            co_await messages_in(ann, r_up);
            co_await messages_in(bob, both_up);
            co_await messages_in(cid, both_up);

            cluster.redis.stop();
            for (auto& node : cluster.nodes) {
                BOOST_TEST_REQUIRE(node->wait_output("the room cannot be reached", 20s));
            }
            co_await ann.send(in_room("message", "r", "lost?"));
            const auto refused_r = co_await error_about(ann, "r");
            BOOST_TEST(refused_r.find("unavailable") != std::string::npos, refused_r);
            co_await cid.send(in_room("message", "s", "lost?"));
            const auto refused_s = co_await error_about(cid, "s");
            BOOST_TEST(refused_s.find("unavailable") != std::string::npos, refused_s);
            co_await dan.close();  // its leave of "r" is owed to Redis until it is back

            cluster.redis.start();  // with its data (append-only file)
            for (auto& node : cluster.nodes) {
                BOOST_TEST_REQUIRE(node->wait_output("the room can be reached", 20s, 2),
                                   node->output());
            }
            // The leave node c owed Redis, on every node.
            const std::set<std::string> dan_gone{"leave:r:dan", "logout::dan"};
            co_await await_notices(bob, dan_gone);
            co_await say_in(ann, "r", "again", 3);
            co_await say_in(cid, "s", "again", 3);
            const Lines expected{"3 again0", "4 again1", "5 again2"};
            const Counts r_again{{"r", 3}};
            const Counts both_again{{"r", 3}, {"s", 3}};
            const auto seen_ann = co_await messages_in(ann, r_again);
            BOOST_TEST(seen_ann.at("r") == expected);
            for (auto* client : {&bob, &cid}) {
                const auto seen = co_await messages_in(*client, both_again);
                BOOST_TEST(seen.at("r") == expected);
                BOOST_TEST(seen.at("s") == expected);
            }
        },
        90s);
}

BOOST_AUTO_TEST_CASE(a_node_cut_off_catches_up_in_each_room_without_gap) {
    Cluster cluster;
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            co_await join(ann, "r");
            co_await join(ann, "s");
            co_await join(bob, "r");
            co_await next(ann, "join", "r", "bob");
            co_await join(bob, "s");
            co_await next(ann, "join", "s", "bob");

            // Node b frozen and cut off: the rooms go on without it, and it
            // finds its connections gone when it wakes.
            cluster.nodes.at(1)->signal(SIGSTOP);
            std::istringstream clients(cluster.redis.command({"CLIENT", "LIST"}));
            int cut = 0;
            for (std::string line; std::getline(clients, line);) {
                if (line.find(" name=b:") != std::string::npos) {
                    cluster.redis.command(
                        {"CLIENT", "KILL", "ID", line.substr(3, line.find(' ') - 3)});
                    ++cut;
                }
            }
            BOOST_TEST(cut == 3);
            co_await say_in(ann, "r", "r", 4);
            co_await say_in(ann, "s", "s", 3);
            const Counts sent{{"r", 4}, {"s", 3}};
            co_await messages_in(ann, sent);  // sequenced while node b was away
            cluster.nodes.at(1)->signal(SIGCONT);

            BOOST_TEST_REQUIRE(cluster.nodes.at(1)->wait_output("catching up", 20s),
                               cluster.nodes.at(1)->output());
            const auto seen = co_await messages_in(bob, sent);
            const Lines in_r{"1 r0", "2 r1", "3 r2", "4 r3"};
            const Lines in_s{"1 s0", "2 s1", "3 s2"};
            BOOST_TEST(seen.at("r") == in_r);
            BOOST_TEST(seen.at("s") == in_s);
            co_await bob.send(in_room("message", "s", "back"));
            const auto back = co_await next(ann, "message", "s");
            BOOST_TEST(back.id() == 4u);  // no gap, no duplicate
        },
        60s);
}

BOOST_AUTO_TEST_CASE(redis_rolled_back_under_a_room_is_a_new_epoch) {
    // No append-only file: a restart loads the last snapshot.
    Cluster cluster("10", {}, false);
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            const auto first = co_await join(ann, "r");
            co_await join(bob, "r");
            co_await next(ann, "join", "r", "bob");
            co_await say_in(ann, "r", "kept", 3);
            const Counts three{{"r", 3}};  // not a braced temporary in co_await: trap 1
            co_await messages_in(bob, three);
            cluster.redis.command({"SAVE"});
            // Only the room moves on: the lobby's counters stay as saved.
            co_await say_in(ann, "r", "rolled-back", 3);
            const auto seen = co_await messages_in(bob, three);
            BOOST_TEST(seen.at("r").back() == "6 rolled-back2");
            cluster.redis.kill();
            cluster.redis.start();  // the room's count at 3: ids 4 to 6 would name two messages
            BOOST_TEST((co_await ann.wait_close(20s)) == 1012u);
            BOOST_TEST((co_await bob.wait_close(20s)) == 1012u);

            auto again = co_await log_in(cluster.port(1), "bob");
            const auto rejoined = co_await join(again, "r");
            BOOST_TEST(rejoined.welcome.epoch() != first.welcome.epoch());  // (epoch, 4) names one
        },
        60s);
}

BOOST_AUTO_TEST_CASE(max_rooms_forgets_the_quietest_empty_room_and_refuses_when_all_have_users) {
    Cluster cluster("10", {"--max-rooms", "2"});
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(cluster.port(0), "ann");
            auto bob = co_await log_in(cluster.port(1), "bob");
            auto cid = co_await log_in(cluster.port(2), "cid");
            // Two rooms without users, each keeping a message: "old" the quieter.
            co_await join(ann, "old");
            co_await ann.send(in_room("message", "old", "kept-old"));
            co_await next(ann, "message", "old");
            co_await ann.send(in_room("leave", "old"));
            co_await next(ann, "leave", "old");
            co_await vacated(ann);
            co_await join(bob, "quiet");
            co_await bob.send(in_room("message", "quiet", "kept-quiet"));
            co_await next(bob, "message", "quiet");
            co_await bob.send(in_room("leave", "quiet"));
            co_await next(bob, "leave", "quiet");
            co_await vacated(bob);

            // A third room, on the third node: "old" is forgotten, "quiet" kept.
            const auto third = co_await join(cid, "third");
            BOOST_TEST(third.welcome.id() == 0u);
            const auto kept = co_await join(bob, "quiet");
            BOOST_TEST(kept.welcome.id() == 1u);
            const Ids one{1};
            BOOST_TEST(ids_of(kept.history) == one);
            if (kept.history.history_size() == 1) {
                BOOST_TEST(kept.history.history(0).content() == "kept-quiet");
            }

            // Both rooms have users (on two other nodes): one more is refused.
            co_await ann.send(in_room("join", "fourth"));
            const auto refused = co_await error_about(ann, "fourth");
            BOOST_TEST(refused.find("too many rooms") != std::string::npos, refused);
            const auto rooms = co_await rooms_now(ann);
            BOOST_TEST(rooms == "quiet=1 third=1");
        },
        60s);
}

BOOST_AUTO_TEST_SUITE_END()
