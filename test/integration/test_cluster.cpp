// Contract rule 15 against real processes: three chat_app nodes sharing one
// redis-server of the test's own, on loopback.
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>

#include "cluster_nodes.hpp"

using namespace chat;
using namespace chat::test;

namespace {

/// Skips frames until one of `type` (about `name`, when given) comes.
awaitable<ChatRequest> next(ChatClient& client, std::string type, std::string name = {},
                            ChatClient::Duration timeout = default_timeout) {
    for (;;) {
        auto frame = co_await client.receive(timeout);
        BOOST_TEST_REQUIRE(frame.has_value(), "closed while waiting for " << type << " " << name);
        if (frame->type() == type && (name.empty() || frame->user_name() == name)) {
            co_return *frame;
        }
    }
}

/// What a client saw, in order: "login x", "logout x", "message ID x: text".
awaitable<std::vector<std::string>> record(ChatClient& client, int messages,
                                           std::string last_notice) {
    std::vector<std::string> seen;
    bool notice_seen = false;
    while (messages > 0 || !notice_seen) {
        auto frame = co_await client.receive();
        BOOST_TEST_REQUIRE(frame.has_value());
        if (frame->type() == "message") {
            seen.push_back("message " + std::to_string(frame->id()) + " " + frame->user_name() +
                           ": " + frame->content());
            --messages;
        } else if (frame->type() == "login" || frame->type() == "logout") {
            seen.push_back(frame->type() + " " + frame->user_name());
            notice_seen = notice_seen || seen.back() == last_notice;
        }
    }
    co_return seen;
}

awaitable<void> say(ChatClient& client, std::string prefix, int n) {
    for (int i = 0; i < n; ++i) {
        co_await client.send(make_request("message", {}, prefix + std::to_string(i)));
    }
}

/// A client that joins and leaves while the others talk.
awaitable<void> visit(std::uint16_t port) {
    auto dan = co_await log_in(port, "dan");
    co_await dan.send(make_request("message", {}, "hi from dan"));
    co_await next(dan, "message", "dan");
    co_await dan.close();
}

awaitable<void> record_into(ChatClient& client, std::vector<std::string>& out, int messages) {
    out = co_await record(client, messages, "logout dan");
}

/// ann on the first node, bob on the second, cid on the third, each knowing
/// the others are there.
struct ThreeUsers {
    ChatClient ann;
    ChatClient bob;
    ChatClient cid;
};
awaitable<ThreeUsers> three_users(Cluster& room) {
    auto ann = co_await log_in(room.port(0), "ann");
    auto bob = co_await log_in(room.port(1), "bob");
    auto cid = co_await log_in(room.port(2), "cid");
    co_await next(ann, "login", "cid");
    co_await next(bob, "login", "cid");
    co_return ThreeUsers{std::move(ann), std::move(bob), std::move(cid)};
}

/// How often `text` is in a node's output so far.
int count_output(Process& node, std::string_view text) {
    const auto output = node.output();
    int found = 0;
    for (auto at = output.find(text); at != std::string::npos;
         at = output.find(text, at + text.size())) {
        ++found;
    }
    return found;
}

/// The next frame, which must be the message `content` (nothing else first).
awaitable<void> expect_message(ChatClient& client, std::string content) {
    const auto frame = co_await client.expect("message");
    BOOST_TEST(frame.content() == content);
}

awaitable<unsigned> health(std::uint16_t port) {
    const auto answer = co_await http_request(port, "/healthz");
    co_return answer.status;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cluster)

BOOST_AUTO_TEST_CASE(clients_on_three_nodes_see_one_order_of_ids_and_notices) {
    Cluster room;
    run(
        [&]() -> awaitable<void> {
            auto users = co_await three_users(room);
            auto& [ann, bob, cid] = users;
            constexpr int each = 20;
            std::vector<std::string> seen_ann;
            std::vector<std::string> seen_bob;
            std::vector<std::string> seen_cid;
            std::vector<awaitable<void>> tasks;
            tasks.push_back(say(ann, "a", each));
            tasks.push_back(say(bob, "b", each));
            tasks.push_back(say(cid, "c", each));
            tasks.push_back(visit(room.port(1)));
            tasks.push_back(record_into(ann, seen_ann, 3 * each + 1));
            tasks.push_back(record_into(bob, seen_bob, 3 * each + 1));
            tasks.push_back(record_into(cid, seen_cid, 3 * each + 1));
            co_await all(std::move(tasks));

            BOOST_TEST(seen_ann == seen_bob);
            BOOST_TEST(seen_ann == seen_cid);
            // One id sequence with no gap, and dan's notices among them.
            std::uint64_t expected = 1;
            for (const auto& line : seen_ann) {
                if (line.starts_with("message ")) {
                    BOOST_TEST(line.starts_with("message " + std::to_string(expected++) + " "));
                }
            }
            BOOST_TEST(expected == 3 * each + 2);
            BOOST_TEST(std::count(seen_ann.begin(), seen_ann.end(), "login dan") == 1);
        },
        60s);
}

BOOST_AUTO_TEST_CASE(a_name_is_unique_across_nodes_and_the_welcome_lists_every_node) {
    Cluster room;
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(room.port(0), "ann");
            auto bob = co_await log_in(room.port(1), "bob");
            auto other = co_await connect_to(room.port(1));
            co_await other.send(make_request("login", "ann"));
            const auto refused = co_await other.expect("error");
            BOOST_TEST(refused.content().find("name taken") != std::string::npos);

            auto cid = co_await connect_to(room.port(2));
            const auto welcome = co_await cid.login("cid");
            BOOST_TEST(welcome.user_list().size() == 3u);
            BOOST_TEST(welcome.user_list().contains("ann"));
            BOOST_TEST(welcome.user_list().contains("bob"));

            // Free again once its owner on the other node has left.
            co_await ann.close();
            co_await next(bob, "logout", "ann");
            co_await other.login("ann");
            const auto joined = co_await next(cid, "login", "ann");
            BOOST_TEST(joined.user_list().contains("ann"));
        },
        60s);
}

BOOST_AUTO_TEST_CASE(a_client_resumes_on_another_node_with_nothing_missed) {
    Cluster room;
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(room.port(0), "ann");
            auto bob = co_await connect_to(room.port(1));
            const auto welcome = co_await bob.login("bob");
            co_await say(ann, "before", 3);
            const auto third = co_await next(bob, "message");
            co_await next(bob, "message");
            const auto seen = (co_await next(bob, "message")).id();
            BOOST_TEST(third.id() + 2 == seen);
            boost::beast::get_lowest_layer(bob.stream()).socket().close();  // dropped

            co_await say(ann, "meanwhile", 4);
            std::uint64_t last = 0;
            for (int i = 0; i < 3 + 4; ++i) {  // her own, before and meanwhile
                last = (co_await next(ann, "message")).id();
            }
            BOOST_TEST(last == seen + 4);
            auto back = co_await connect_to(room.port(2));
            const auto again = co_await back.resume("bob-again", seen, welcome.epoch());
            BOOST_TEST(again.epoch() == welcome.epoch());
            BOOST_TEST(again.id() == last);
            std::vector<std::uint64_t> owed;
            for (const auto& message : back.history().history()) {
                owed.push_back(message.id());
            }
            BOOST_TEST(
                (owed == std::vector<std::uint64_t>{seen + 1, seen + 2, seen + 3, seen + 4}));
            BOOST_TEST(back.history().history(0).content() == "meanwhile0");

            // Older pages come from the one history too.
            co_await back.send([&] {
                auto request = make_request("history");
                request.set_id(seen + 1);
                return request;
            }());
            const auto older = co_await next(back, "history");
            BOOST_TEST(older.history_size() == static_cast<int>(seen));
        },
        60s);
}

BOOST_AUTO_TEST_CASE(the_users_of_a_killed_node_leave_within_the_node_timeout) {
    Cluster room("2");
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(room.port(0), "ann");
            auto cid = co_await log_in(room.port(2), "cid");
            co_await next(ann, "login", "cid");
            room.until_judging(2);
            const auto killed = std::chrono::steady_clock::now();
            room.nodes.at(2)->signal(SIGKILL);
            co_await next(ann, "logout", "cid", 10s);
            const auto took = std::chrono::steady_clock::now() - killed;
            BOOST_TEST_MESSAGE(
                "leave announced after "
                << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                << " ms (node timeout 2 s)");
            BOOST_TEST(took < 2s);  // rule 15: within the node timeout of its death
            auto again = co_await log_in(room.port(1), "cid");  // the name is free
        },
        60s);
}

BOOST_AUTO_TEST_CASE(a_node_restarted_under_its_id_announces_its_predecessors_users_gone) {
    Cluster room("60");  // far longer than the test: only the new process can free them
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(room.port(0), "ann");
            auto bob = co_await log_in(room.port(1), "bob");
            auto bea = co_await log_in(room.port(1), "bea");
            co_await next(ann, "login", "bea");
            room.nodes.at(1)->signal(SIGKILL);
            BOOST_TEST_REQUIRE(room.nodes.at(1)->wait_exit(10s) >= 0);
            room.nodes.at(1) = start_node(room.redis, "b", "60");
            std::set<std::string> gone;
            while (gone.size() < 2) {
                gone.insert((co_await next(ann, "logout", {}, 10s)).user_name());
            }
            BOOST_TEST((gone == std::set<std::string>{"bob", "bea"}));
            auto bob_again = co_await log_in(room.port(1), "bob");  // the names are free
            auto bea_again = co_await log_in(room.port(2), "bea");
            co_await next(ann, "login", "bea");
        },
        60s);
}

BOOST_AUTO_TEST_CASE(redis_away_for_several_node_timeouts_announces_nobody_gone) {
    Cluster room("2");
    run(
        [&]() -> awaitable<void> {
            auto users = co_await three_users(room);
            auto& [ann, bob, cid] = users;
            room.redis.stop();
            std::vector<int> sweeping;
            for (auto& node : room.nodes) {
                BOOST_TEST_REQUIRE(node->wait_output("the room cannot be reached", 20s));
                sweeping.push_back(count_output(*node, "taken for dead"));
            }
            co_await pause(6s);  // three node timeouts: every lease has lapsed
            room.redis.start();  // with its data (append-only file)
            for (std::size_t node = 0; node < room.nodes.size(); ++node) {
                BOOST_TEST_REQUIRE(
                    room.nodes[node]->wait_output("taken for dead", 20s, sweeping[node] + 1),
                    room.nodes[node]->output());
            }
            co_await pause(1s);  // several sweeps by every node (one each T/6)
            co_await ann.send(make_request("message", {}, "still here"));
            co_await expect_message(ann, "still here");  // no logout, no close before it
            co_await expect_message(bob, "still here");
            co_await expect_message(cid, "still here");
            // The words of a restart of the clients (Hub::restart_clients),
            // not the code alone: a log line's time may hold "1012" too.
            for (auto& node : room.nodes) {
                BOOST_TEST(count_output(*node, "connections with 1012") == 0, node->output());
            }
        },
        90s);
}

BOOST_AUTO_TEST_CASE(redis_rolled_back_to_an_older_snapshot_is_a_new_epoch) {
    Cluster room("10", {}, false);  // no append-only file: a restart loads the last snapshot
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(room.port(0), "ann");
            auto bob = co_await connect_to(room.port(1));
            const auto welcome = co_await bob.login("bob");
            co_await say(ann, "kept", 3);
            for (int i = 0; i < 3; ++i) {
                co_await next(bob, "message");
            }
            room.redis.command({"SAVE"});
            co_await say(ann, "rolled-back", 3);
            std::uint64_t last = 0;
            for (int i = 0; i < 3; ++i) {
                last = (co_await next(bob, "message")).id();
            }
            BOOST_TEST(last == 6u);
            room.redis.kill();
            room.redis.start();  // counters at 3: ids 4 to 6 would be handed out again
            BOOST_TEST((co_await bob.wait_close(20s)) == 1012u);
            BOOST_TEST((co_await ann.wait_close(20s)) == 1012u);
            auto again = co_await connect_to(room.port(1));
            const auto fresh = co_await again.login("bob");
            BOOST_TEST(fresh.epoch() != welcome.epoch());  // (epoch, 4) names one message
            auto ann_again = co_await log_in(room.port(0), "ann");
            co_await ann_again.send(make_request("message", {}, "after"));
            const auto after = co_await next(again, "message");
            BOOST_TEST(after.content() == "after");
            BOOST_TEST(after.id() == fresh.id() + 1);
        },
        60s);
}

BOOST_AUTO_TEST_CASE(a_redis_flushed_under_a_quiet_room_restarts_the_clients) {
    Cluster room;
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(room.port(0), "ann");
            const auto welcome = co_await log_in(room.port(1), "bob");
            co_await next(ann, "login", "bob");
            room.redis.command({"FLUSHALL"});  // on live connections: no reconnect tells it
            BOOST_TEST((co_await ann.wait_close(20s)) == 1012u);
            auto again = co_await connect_to(room.port(0));
            const auto fresh = co_await again.login("ann");
            BOOST_TEST(fresh.id() == 0u);
        },
        60s);
}

BOOST_AUTO_TEST_CASE(a_slow_redis_delays_messages_without_dropping_the_node) {
    Cluster room("10");  // calls may take 2.5 s: far above the pause, even on a loaded machine
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(room.port(0), "ann");
            auto bob = co_await log_in(room.port(1), "bob");
            co_await next(ann, "login", "bob");
            // Scripts wait while Redis is paused: messages and lease renewals alike.
            room.redis.command({"CLIENT", "PAUSE", "700", "WRITE"});
            co_await say(ann, "slow", 20);
            for (int i = 0; i < 20; ++i) {
                co_await expect_message(bob, "slow" + std::to_string(i));
            }
            for (auto& node : room.nodes) {
                BOOST_TEST(count_output(*node, "cannot be reached") == 0, node->output());
            }
        },
        60s);
}

BOOST_AUTO_TEST_CASE(a_node_that_stops_announces_its_users_leaves_at_once) {
    Cluster room("60");  // far longer than the test: only the goodbye can free them
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(room.port(0), "ann");
            auto bob = co_await log_in(room.port(1), "bob");
            co_await next(ann, "login", "bob");
            room.nodes.at(1)->signal(SIGTERM);
            co_await next(ann, "logout", "bob", 10s);
            BOOST_TEST(room.nodes.at(1)->wait_exit(10s) == 0);
        },
        60s);
}

BOOST_AUTO_TEST_CASE(redis_restarted_mid_chat_refuses_then_catches_up_without_gap) {
    Cluster room;
    run(
        [&]() -> awaitable<void> {
            auto users = co_await three_users(room);
            auto& [ann, bob, cid] = users;
            co_await say(ann, "up", 3);
            std::uint64_t last = 0;
            for (int i = 0; i < 3; ++i) {
                last = (co_await next(bob, "message")).id();
                co_await next(ann, "message");  // her own
            }

            room.redis.stop();
            for (auto& node : room.nodes) {
                BOOST_TEST_REQUIRE(node->wait_output("the room cannot be reached", 20s));
            }
            BOOST_TEST((co_await health(room.port(0))) == 503u);
            co_await ann.send(make_request("message", {}, "lost?"));
            const auto refused = co_await ann.expect("error");
            BOOST_TEST(refused.content().find("unavailable") != std::string::npos);
            auto late = co_await connect_to(room.port(2));
            co_await late.send(make_request("login", "late"));
            BOOST_TEST((co_await late.expect("error")).content().find("unavailable") !=
                       std::string::npos);
            co_await cid.close();  // a leave its node owes Redis until it is back

            room.redis.start();
            for (auto& node : room.nodes) {
                BOOST_TEST_REQUIRE(node->wait_output("the room can be reached", 20s, 2));
            }
            BOOST_TEST((co_await health(room.port(0))) == 200u);
            co_await say(ann, "again", 3);
            for (int i = 0; i < 3; ++i) {
                const auto message = co_await next(bob, "message");
                BOOST_TEST(message.id() == ++last);  // no gap, no duplicate
                BOOST_TEST(message.content() == "again" + std::to_string(i));
            }
            co_await late.login("late");
            co_await next(bob, "login", "late");
            co_await next(ann, "logout", "cid");
            auto cid_again = co_await log_in(room.port(0), "cid");  // its name is free again
        },
        90s);
}

BOOST_AUTO_TEST_CASE(redis_back_without_the_room_restarts_the_clients_with_1012) {
    Cluster room("10", {}, false);
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(room.port(0), "ann");
            const auto welcome = co_await log_in(room.port(1), "bob");
            co_await next(ann, "login", "bob");
            room.redis.stop();
            room.redis.start();  // empty: a new epoch
            BOOST_TEST((co_await ann.wait_close(20s)) == 1012u);
            auto again = co_await connect_to(room.port(0));
            const auto fresh = co_await again.login("ann");
            BOOST_TEST(fresh.epoch() != "");
            BOOST_TEST(fresh.id() == 0u);
        },
        60s);
}

BOOST_AUTO_TEST_CASE(a_node_started_while_redis_is_down_joins_when_it_comes_up) {
    RedisServer redis;
    redis.stop();
    auto node = start_node(redis, "late", "10", false);
    BOOST_TEST_REQUIRE(node->wait_output("cannot connect", 20s), node->output());
    run(
        [&]() -> awaitable<void> {
            BOOST_TEST((co_await health(node->port())) == 503u);
            auto ann = co_await connect_to(node->port());
            co_await ann.send(make_request("login", "ann"));
            BOOST_TEST((co_await ann.expect("error")).content().find("unavailable") !=
                       std::string::npos);
            redis.start();
            BOOST_TEST_REQUIRE(node->wait_output("the room can be reached", 20s), node->output());
            BOOST_TEST((co_await health(node->port())) == 200u);
            co_await ann.login("ann");
        },
        60s);
}

BOOST_AUTO_TEST_CASE(messages_beyond_the_bound_in_flight_are_refused_not_queued) {
    RedisServer redis;
    auto node = start_node(redis, "a", "10", true, {"--redis-in-flight", "10", "--rate", "0"});
    run(
        [&]() -> awaitable<void> {
            auto ann = co_await log_in(node->port(), "ann");
            // Paused, Redis answers nothing: ten messages wait for it, and
            // the rest are refused at once instead of piling up.
            redis.command({"CLIENT", "PAUSE", "1500", "WRITE"});
            co_await say(ann, "m", 30);
            int refused = 0;
            int delivered = 0;
            while (refused + delivered < 30) {
                const auto frame = co_await ann.receive();
                BOOST_TEST_REQUIRE(frame.has_value());
                if (frame->type() == "error") {
                    BOOST_TEST(frame->content().find("unavailable") != std::string::npos,
                               frame->content());
                    ++refused;
                } else if (frame->type() == "message") {
                    ++delivered;
                }
            }
            BOOST_TEST(delivered == 10);
            BOOST_TEST(refused == 20);
            BOOST_TEST(count_output(*node, "cannot be reached") == 0, node->output());
        },
        60s);
}

/// Cuts the node's Redis connection named `name` (CLIENT SETNAME) alone.
void cut_connection(RedisServer& redis, const std::string& name) {
    std::istringstream clients(redis.command({"CLIENT", "LIST"}));
    int cut = 0;
    for (std::string line; std::getline(clients, line);) {
        if (line.find(" name=" + name + " ") != std::string::npos) {
            const auto id = line.substr(3, line.find(' ') - 3);  // "id=N ..."
            redis.command({"CLIENT", "KILL", "ID", id});
            ++cut;
        }
    }
    BOOST_TEST_REQUIRE(cut == 1, redis.command({"CLIENT", "LIST"}));
}

BOOST_AUTO_TEST_CASE(a_connection_to_redis_cut_alone_reconnects_the_node) {
    // Each of the two that nothing reads from while the room is quiet: the
    // events' connection stays, so only the node's own watch can tell.
    for (const auto* connection : {"a:commands", "a:leases"}) {
        BOOST_TEST_CONTEXT(connection) {
            RedisServer redis;
            auto node = start_node(redis, "a");
            run(
                [&]() -> awaitable<void> {
                    auto ann = co_await log_in(node->port(), "ann");
                    cut_connection(redis, connection);
                    BOOST_TEST_REQUIRE(node->wait_output("is back", 20s), node->output());
                    // The hub's own word, the second time: it takes messages again.
                    BOOST_TEST_REQUIRE(node->wait_output("the room can be reached", 20s, 2),
                                       node->output());
                    co_await say(ann, "after", 1);
                    co_await expect_message(ann, "after0");
                },
                60s);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
