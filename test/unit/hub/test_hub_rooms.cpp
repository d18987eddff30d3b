// The hub's rooms (rule 17) where the history is slow or the cache let go:
// joins that wait for a room to load, and the newest messages read again.
#include <boost/test/unit_test.hpp>

#include "chat/chat.pb.h"
#include "chat_client.hpp"
#include "hub_test.hpp"

using namespace chat;
using namespace chat::test;

namespace {

/// Joins `room` and reads the welcome and its history.
awaitable<ChatRequest> joined(HubTest& h, TestPeer& peer, std::string room) {
    co_await h.join(peer, room);
    const auto welcome = co_await peer.expect("join");
    const auto history = co_await peer.expect("history");
    BOOST_TEST(history.room() == room);
    co_return welcome;
}

/// `n` messages from `peer` in `room`, each awaited back.
awaitable<void> say(HubTest& h, TestPeer& peer, const std::string& room, int n) {
    for (int i = 0; i < n; ++i) {
        co_await h.say(peer, "m" + std::to_string(i), room);
        BOOST_TEST((co_await peer.expect("message")).room() == room);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hub_rooms)

BOOST_AUTO_TEST_CASE(joins_wait_for_a_room_to_load_and_a_leave_meanwhile_cancels_one) {
    hub_test([](HubTest& h) -> awaitable<void> {
        auto ann = co_await h.user("ann");
        auto bob = co_await h.user("bob");
        auto cat = co_await h.user("cat");
        co_await ann->expect("login");
        co_await ann->expect("login");
        co_await bob->expect("login");
        h.history.hold = true;  // the room's start is being read
        co_await h.join(*ann, "r");
        co_await h.join(*bob, "r");
        co_await h.join(*cat, "r");
        co_await h.leave_room(*cat, "r");  // before its join happened
        co_await handled(h);
        BOOST_TEST(ann->unread() == 0u);
        BOOST_TEST(bob->unread() == 0u);
        const auto left = co_await cat->expect("leave");
        BOOST_TEST(left.room() == "r");
        h.history.hold = false;
        h.history.release();
        const auto first = co_await ann->expect("join");
        BOOST_TEST(first.id() == 0u);
        co_await ann->expect("history");
        const auto second = co_await bob->expect("join");
        BOOST_TEST(second.user_list_size() == 2);
        co_await bob->expect("history");
        BOOST_TEST((co_await ann->expect("join")).user_name() == "bob");
        // cat never entered: nothing of the room comes to it.
        co_await h.say(*ann, "hello", "r");
        co_await ann->expect("message");
        co_await bob->expect("message");
        co_await handled(h);
        BOOST_TEST(cat->unread() == 0u);
    });
}

BOOST_AUTO_TEST_CASE(a_room_whose_messages_the_cache_let_go_reads_them_again_for_a_join) {
    hub_test(
        [](HubTest& h) -> awaitable<void> {
            auto ann = co_await h.user("ann");
            co_await joined(h, *ann, "a");
            co_await joined(h, *ann, "b");
            co_await say(h, *ann, "a", 4);
            co_await say(h, *ann, "b", 2);  // "a" is the quieter now: its ring goes
            auto bob = co_await h.user("bob");
            co_await ann->expect("login");
            h.history.hold = true;
            co_await h.join(*bob, "a");
            co_await handled(h);
            BOOST_TEST(bob->unread() == 0u);  // waits for the read
            // Messages go on meanwhile; the join gets them all, none twice.
            co_await say(h, *ann, "a", 1);
            h.history.hold = false;
            h.history.release();
            const auto welcome = co_await bob->expect("join");
            BOOST_TEST(welcome.id() == 5u);
            const auto history = co_await bob->expect("history");
            BOOST_TEST((ids_of(history) == Ids{1, 2, 3, 4, 5}));
            BOOST_TEST((co_await ann->expect("join")).user_name() == "bob");
            co_await say(h, *ann, "a", 1);
            BOOST_TEST((co_await bob->expect("message")).id() == 6u);
        },
        // A bound below any message: a room's ring holds at most its newest
        // one, and another room's message lets it go.
        {.capacity = 1024, .cache_bytes = 1});
}

BOOST_AUTO_TEST_CASE(a_user_who_leaves_while_its_room_loads_leaves_no_room_behind) {
    hub_test([](HubTest& h) -> awaitable<void> {
        auto ann = co_await h.user("ann");
        h.history.hold = true;
        co_await h.join(*ann, "r");
        co_await h.leave(*ann);  // the connection ends
        co_await handled(h);
        h.history.hold = false;
        h.history.release();
        auto bob = co_await h.user("bob");
        const auto welcome = co_await joined(h, *bob, "r");
        BOOST_TEST(welcome.user_list_size() == 1);  // no trace of ann
        BOOST_TEST(h.metrics.rooms_with_users.load() == 1);
        co_await h.leave_room(*bob, "r");
        co_await bob->expect("leave");
        co_await handled(h);
        BOOST_TEST(h.metrics.rooms_with_users.load() == 0);
    });
}

BOOST_AUTO_TEST_SUITE_END()
