// The hub without sockets: users, names, order, ids, notices, slow consumers, stop.
#include <boost/test/unit_test.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "chat/chat.pb.h"
#include "hub_test.hpp"

using namespace chat;
using namespace chat::test;
using proto::CloseCode;

BOOST_AUTO_TEST_SUITE(hub_actor)

BOOST_AUTO_TEST_CASE(newcomer_gets_the_whole_list_the_others_one_entry) {
    hub_test([](HubTest& h) -> awaitable<void> {
        auto ann = co_await h.connect();
        co_await h.login(*ann, "ann");
        const auto ann_welcome = co_await ann->expect("login");
        BOOST_TEST(ann_welcome.user_name() == "ann");
        BOOST_TEST(ann_welcome.user_list().size() == 1u);
        const auto ann_joined = ann_welcome.user_list().at("ann");
        BOOST_TEST(ann_joined.size() == 24u);  // 2026-11-29T03:04:05.123Z
        BOOST_TEST(ann_joined.back() == 'Z');
        co_await ann->expect("history");

        auto bob = co_await h.connect();
        co_await h.login(*bob, "bob");
        const auto bob_welcome = co_await bob->expect("login");
        BOOST_TEST(bob_welcome.user_name() == "bob");
        BOOST_TEST(bob_welcome.user_list().size() == 2u);
        BOOST_TEST(bob_welcome.user_list().at("ann") == ann_joined);  // unchanged while online
        co_await bob->expect("history");

        const auto notice = co_await ann->expect("login");
        BOOST_TEST(notice.user_name() == "bob");
        BOOST_TEST(notice.user_list().size() == 1u);
        BOOST_TEST(notice.user_list().at("bob") == bob_welcome.user_list().at("bob"));
        BOOST_TEST(h.metrics.users_online.load() == 2);
    });
}

BOOST_AUTO_TEST_CASE(names_are_unique_and_logins_happen_once) {
    hub_test([](HubTest& h) -> awaitable<void> {
        auto ann = co_await h.user("ann");
        auto other = co_await h.connect();
        co_await h.login(*other, "ann");
        BOOST_TEST((co_await other->expect("error")).content().find("name taken") !=
                   std::string::npos);
        co_await h.login(*other, "Ann");  // exact match only
        BOOST_TEST((co_await other->expect("login")).user_name() == "Ann");
        co_await h.login(*ann, "zed");
        BOOST_TEST((co_await ann->expect("login")).user_name() == "Ann");  // the notice first
        BOOST_TEST((co_await ann->expect("error")).content().find("already logged in") !=
                   std::string::npos);
    });
}

BOOST_AUTO_TEST_CASE(a_message_before_login_gets_an_error) {
    hub_test([](HubTest& h) -> awaitable<void> {
        auto ann = co_await h.user("ann");
        auto stranger = co_await h.connect();
        co_await h.say(*stranger, "hello?");
        BOOST_TEST((co_await stranger->expect("error")).content().find("log in") !=
                   std::string::npos);
        co_await h.say(*ann, "first");
        const auto message = co_await ann->expect("message");
        BOOST_TEST(message.content() == "first");  // nothing from the stranger came before
        BOOST_TEST(message.id() == 1u);
    });
}

BOOST_AUTO_TEST_CASE(messages_reach_everyone_in_one_order_with_consecutive_ids) {
    hub_test([](HubTest& h) -> awaitable<void> {
        auto ann = co_await h.user("ann");
        auto bob = co_await h.user("bob");
        co_await ann->expect("login");  // bob's notice
        for (int i = 0; i < 50; ++i) {
            co_await h.say(i % 2 == 0 ? *ann : *bob, "m" + std::to_string(i));
        }
        for (auto* peer : {ann.get(), bob.get()}) {
            for (int i = 0; i < 50; ++i) {
                const auto message = co_await peer->expect("message");
                BOOST_TEST(message.id() == static_cast<std::uint64_t>(i + 1));
                BOOST_TEST(message.content() == "m" + std::to_string(i));
                BOOST_TEST(message.user_name() == (i % 2 == 0 ? "ann" : "bob"));
            }
        }
        BOOST_TEST(h.metrics.messages_broadcast.load() == 50u);
    });
}

BOOST_AUTO_TEST_CASE(with_one_writer_awake_every_frame_still_arrives_in_order) {
    hub_test(
        [](HubTest& h) -> awaitable<void> {
            auto ann = co_await h.user("ann");
            auto bob = co_await h.user("bob");
            co_await ann->expect("login");
            for (int i = 0; i < 300; ++i) {  // more than a queue holds: writers must wake
                co_await h.say(*ann, std::to_string(i));
                if (i % 50 == 49) {  // read as a live client would
                    for (auto* peer : {ann.get(), bob.get()}) {
                        for (int j = i - 49; j <= i; ++j) {
                            BOOST_TEST_REQUIRE((co_await peer->expect("message")).content() ==
                                               std::to_string(j));
                        }
                    }
                }
            }
            BOOST_TEST(h.metrics.dropped_count(metrics::DropReason::slow_consumer) == 0u);
        },
        {.writers_awake = 1, .capacity = 1024});
}

BOOST_AUTO_TEST_CASE(an_unregister_with_a_code_closes_the_queue_after_what_came_before) {
    hub_test([](HubTest& h) -> awaitable<void> {
        auto ann = co_await h.user("ann");
        co_await h.say(*ann, "last words");
        hub::Command logout = hub::Unregister{ann->id(), CloseCode::normal};
        co_await h.hub.send(std::move(logout));
        BOOST_TEST((co_await ann->expect("message")).content() == "last words");
        std::vector<hub::Frame> rest;
        while (!(co_await ann->frames().take(rest)).last) {
        }
        BOOST_TEST((ann->closed_with == CloseCode::normal));
    });
}

BOOST_AUTO_TEST_CASE(the_hub_queues_at_most_64_frames_for_a_writer_ahead_of_it) {
    hub_test([](HubTest& h) -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto settle = [&]() -> awaitable<void> {
            for (int i = 0; i < 50; ++i) {
                co_await asio::post(executor, asio::use_awaitable);
            }
        };
        auto ann = co_await h.user("ann");
        auto bob = co_await h.user("bob");
        co_await ann->expect("login");
        // bob's writer waits, is woken in its turn and then keeps it (a write
        // that has not left yet).
        auto held = std::make_shared<std::vector<hub::Frame>>();
        asio::co_spawn(executor, take_and_keep_the_turn(bob, held), asio::detached);
        co_await settle();
        for (int i = 0; i < 100; ++i) {
            co_await h.say(*ann, std::to_string(i));
        }
        co_await settle();
        // The hub goes on until a queue has been given frames_per_round (64,
        // modules/hub/src/hub.cpp) frames since every writer was last done,
        // then waits for them. None has been so far: the logins' rounds ended
        // with writers woken for the welcomes. ann's queue has had 3 frames
        // (her welcome and its history, bob's login notice), so exactly 61
        // messages go out before the hub waits for bob; the other 39 wait in
        // the channel.
        constexpr std::uint64_t frames_per_round = 64;
        constexpr std::uint64_t before = 3;  // ann's welcome, her history, bob's login
        const auto broadcast = h.metrics.messages_broadcast.load();
        BOOST_TEST(broadcast == frames_per_round - before);
        BOOST_TEST(held->size() == broadcast);  // taken in bob's turn, which he keeps
        bob->end_turn();                        // written: the hub goes on
        while (h.metrics.messages_broadcast.load() < 100u) {
            co_await asio::post(executor, asio::use_awaitable);
        }
        BOOST_TEST(h.metrics.dropped_count(metrics::DropReason::slow_consumer) == 0u);
    });
}

BOOST_AUTO_TEST_CASE(a_writer_that_keeps_its_turn_is_dropped_and_the_hub_goes_on) {
    hub_test(
        [](HubTest& h) -> awaitable<void> {
            const auto executor = co_await asio::this_coro::executor;
            auto ann = co_await h.user("ann");
            auto bob = co_await h.user("bob");
            co_await ann->expect("login");
            // bob's writer takes its turn and never gives it back (a stuck writer).
            auto held = std::make_shared<std::vector<hub::Frame>>();
            asio::co_spawn(executor, take_and_keep_the_turn(bob, held), asio::detached);
            for (int i = 0; i < 200; ++i) {
                co_await h.say(*ann, std::to_string(i));
            }
            // Without the bound the hub would wait for bob for good after 64
            // commands, and ann would never see the rest. bob's leave comes
            // in between, once his turn is overdue.
            int next = 0;
            bool bob_left = false;
            while (next < 200) {
                const auto frame = co_await ann->next();
                if (frame.type() == "logout") {
                    BOOST_TEST(frame.user_name() == "bob");
                    BOOST_TEST(!std::exchange(bob_left, true));
                    continue;
                }
                BOOST_TEST_REQUIRE(frame.content() == std::to_string(next++));
            }
            BOOST_TEST(bob_left);
            BOOST_TEST((bob->closed_with == CloseCode::internal_error));
            BOOST_TEST(h.metrics.dropped_count(metrics::DropReason::stalled_writer) == 1u);
            auto bob_again = co_await h.user("bob");  // his name is free again
            BOOST_TEST(h.metrics.users_online.load() == 2);
        },
        {.turn_limit = std::chrono::milliseconds(200), .capacity = 1024});
}

BOOST_AUTO_TEST_CASE(leaving_is_announced_to_the_others_only) {
    hub_test([](HubTest& h) -> awaitable<void> {
        auto ann = co_await h.user("ann");
        auto bob = co_await h.user("bob");
        co_await ann->expect("login");
        co_await h.leave(*ann);
        const auto notice = co_await bob->expect("logout");
        BOOST_TEST(notice.user_name() == "ann");
        BOOST_TEST(notice.user_list().empty());
        co_await h.say(*bob, "still here");
        co_await bob->expect("message");
        BOOST_TEST(ann->unread() == 0u);
        BOOST_TEST(h.metrics.users_online.load() == 1);
        // The name is free again.
        auto again = co_await h.user("ann");
        BOOST_TEST((co_await bob->expect("login")).user_name() == "ann");
    });
}

BOOST_AUTO_TEST_CASE(a_full_queue_drops_that_client_only) {
    hub_test([](HubTest& h) -> awaitable<void> {
        auto ann = co_await h.user("ann");
        // Reads nothing from here on; its welcome and history still count.
        auto slow = co_await h.user("slow", 4);
        co_await ann->expect("login");
        for (int i = 0; i < 5; ++i) {
            co_await h.say(*ann, "m" + std::to_string(i));
        }
        for (int i = 0; i < 5; ++i) {
            if (i == 3) {  // the third message filled slow's queue: it is dropped after it
                BOOST_TEST((co_await ann->expect("logout")).user_name() == "slow");
            }
            BOOST_TEST((co_await ann->expect("message")).id() == static_cast<std::uint64_t>(i + 1));
        }
        BOOST_TEST((slow->closed_with == CloseCode::policy_violation));
        BOOST_TEST(h.metrics.dropped_count(metrics::DropReason::slow_consumer) == 1u);
        BOOST_TEST(h.metrics.users_online.load() == 1);
        co_await h.leave(*slow);  // its session ends later: nothing happens twice
        co_await h.say(*ann, "after");
        BOOST_TEST((co_await ann->expect("message")).content() == "after");
    });
}

BOOST_AUTO_TEST_CASE(stop_closes_everyone_with_1001_and_ends_after_they_leave) {
    test::run(
        []() -> awaitable<void> {
            HubTest h(co_await asio::this_coro::executor);
            auto ann = co_await h.user("ann");
            auto anon = co_await h.connect();
            h.hub.stop();
            // One turn of the (single-threaded) context: the hub takes the
            // Register, then the stop. Sends that find room do not yield.
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
            auto late = co_await h.connect();  // registered while stopping: closed too
            co_await h.leave(*ann);
            co_await h.leave(*anon);
            // Wait for the three closes to land: each peer's queue ends.
            for (auto* peer : {ann.get(), anon.get(), late.get()}) {
                std::vector<hub::Frame> batch;
                while (!(co_await peer->frames().take(batch)).last) {
                }
                BOOST_TEST((peer->closed_with == CloseCode::going_away));
            }
            BOOST_TEST(!h.finished);  // `late` is still registered
            co_await h.leave(*late);
            // Once the last one has left, the hub takes no more commands and run() ends.
            for (bool taken = true; taken;) {
                hub::Command command = hub::Unregister{99};
                taken = co_await h.hub.send(std::move(command));
            }
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
            BOOST_TEST(h.finished);
        },
        std::chrono::seconds(20));
}

BOOST_AUTO_TEST_CASE(rule_16_a_big_room_gets_presence_frames_and_short_welcomes) {
    hub::HubLimits limits{.capacity = 1024};
    limits.presence_batch_above = 1;  // two users make a big room here
    limits.presence_interval = std::chrono::milliseconds(50);
    limits.welcome_list_limit = 2;
    hub_test(
        [](HubTest& h) -> awaitable<void> {
            auto ann = co_await h.user("ann");  // alone: a small room
            auto bob = co_await h.connect();
            co_await h.login(*bob, "bob");
            const auto bob_welcome = co_await bob->expect("login");
            BOOST_TEST(bob_welcome.content() == "2");  // users online
            BOOST_TEST(bob_welcome.user_list().size() == 2u);
            co_await bob->expect("history");
            const auto first = co_await ann->expect("presence");
            BOOST_TEST(first.user_list().size() == 1u);
            BOOST_TEST(first.user_list().at("bob") == bob_welcome.user_list().at("bob"));

            auto cid = co_await h.connect();
            co_await h.login(*cid, "cid");
            const auto cid_welcome = co_await cid->expect("login");
            BOOST_TEST(cid_welcome.content() == "3");
            // The newcomer and the latest to join, within the limit.
            BOOST_TEST(cid_welcome.user_list().size() == 2u);
            BOOST_TEST(cid_welcome.user_list().contains("cid"));
            BOOST_TEST(cid_welcome.user_list().contains("bob"));
            co_await cid->expect("history");
            BOOST_TEST((co_await ann->expect("presence")).user_list().contains("cid"));
            // bob's own join came to bob too (a presence frame may list its recipient).
            BOOST_TEST((co_await bob->expect("presence")).user_list().contains("bob"));
            BOOST_TEST((co_await bob->expect("presence")).user_list().contains("cid"));

            // Within one interval: dan joins and leaves (in neither), bob
            // leaves and comes back (once, with the new join time).
            auto dan = co_await h.connect();
            co_await h.login(*dan, "dan");
            co_await h.leave(*dan);
            co_await h.leave(*bob);
            auto bob_again = co_await h.connect();
            co_await h.login(*bob_again, "bob");
            const auto rejoined = co_await bob_again->expect("login");
            co_await bob_again->expect("history");
            const auto net = co_await ann->expect("presence");
            BOOST_TEST(net.user_list().size() == 1u);
            BOOST_TEST(net.user_list().at("bob") == rejoined.user_list().at("bob"));
            BOOST_TEST(net.user_list().at("bob") != bob_welcome.user_list().at("bob"));

            co_await h.leave(*cid);
            const auto left = co_await ann->expect("presence");
            BOOST_TEST(left.user_list().size() == 1u);
            BOOST_TEST(left.user_list().at("cid") == "");  // left
            // Two users are not above the limit here: one notice each again.
            co_await h.leave(*bob_again);
            BOOST_TEST((co_await ann->expect("logout")).user_name() == "bob");
        },
        limits);
}

BOOST_AUTO_TEST_CASE(a_welcome_lists_the_room_as_it_is_after_joins_and_leaves) {
    // The welcome's list is kept serialised (WelcomeList): a leave must take
    // its user out, and a small room larger than the kept list (the limit
    // below the batching threshold) is still listed whole.
    hub::HubLimits limits{.capacity = 1024};
    limits.presence_batch_above = 100;
    limits.welcome_list_limit = 2;
    hub_test(
        [](HubTest& h) -> awaitable<void> {
            auto ann = co_await h.user("ann");
            auto bob = co_await h.user("bob");
            co_await h.leave(*bob);
            auto cid = co_await h.connect();
            co_await h.login(*cid, "cid");
            const auto cid_welcome = co_await cid->expect("login");
            BOOST_TEST(cid_welcome.user_list().size() == 2u);  // ann and cid
            BOOST_TEST(cid_welcome.user_list().contains("ann"));
            BOOST_TEST(!cid_welcome.user_list().contains("bob"));
            BOOST_TEST(cid_welcome.content().empty());  // a small room: no count
            co_await cid->expect("history");

            auto dan = co_await h.connect();
            co_await h.login(*dan, "dan");
            const auto dan_welcome = co_await dan->expect("login");
            // Three users, two kept: listed from the room itself.
            BOOST_TEST(dan_welcome.user_list().size() == 3u);
            for (const auto* name : {"ann", "cid", "dan"}) {
                BOOST_TEST(dan_welcome.user_list().contains(name));
            }
            BOOST_TEST(dan_welcome.user_list().at("ann") == cid_welcome.user_list().at("ann"));
        },
        limits);
}

BOOST_AUTO_TEST_SUITE_END()
