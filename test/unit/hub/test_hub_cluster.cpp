// The hub of a cluster node: the room changes only with what the sequencer
// sends back.
#include <boost/test/unit_test.hpp>

#include "chat/hub/commands.hpp"
#include "fake_sequencer.hpp"

#include "chat/chat.pb.h"
#include "hub_test.hpp"
#include "message_frames.hpp"

using namespace chat;
using namespace chat::test;
using proto::CloseCode;

namespace {

/// Wall-clock milliseconds: a sequenced clock starts a second behind them.
std::int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// The node joins an empty cluster at `t0` (epoch "e1"), then `name` logs
/// in on it, its join back from the cluster; welcome and history read.
awaitable<std::shared_ptr<TestPeer>> logged_in(HubTest& h, FakeSequencer& cluster, std::string name,
                                               std::int64_t t0) {
    hub::RoomState state;
    state.epoch = "e1";
    state.stamp = t0;
    hub::Command up = hub::Reachability{true, std::move(state), false};  // trap 1
    co_await h.from_cluster(std::move(up));
    auto peer = co_await h.connect();
    co_await h.login(*peer, name);
    co_await handled(h);
    const hub::Event login{
        hub::Event::Kind::join, name, cluster.claims.back().text, 0, t0, peer->id(), {}};
    hub::Command logs_in = hub::Sequenced{{login}, t0};
    co_await h.from_cluster(std::move(logs_in));
    co_await peer->expect("login");
    co_await peer->expect("history");
    co_return peer;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hub_actor)

BOOST_AUTO_TEST_CASE(in_a_cluster_the_room_changes_only_with_what_the_sequencer_sends_back) {
    FakeSequencer cluster;
    test::run(
        [&]() -> awaitable<void> {
            HubTest h(co_await asio::this_coro::executor, {.capacity = 1024}, &cluster);
            BOOST_TEST(!h.hub.available());
            auto ann = co_await h.connect();
            co_await h.login(*ann, "ann");  // before the node has joined the room
            BOOST_TEST((co_await ann->expect("error")).content().find("unavailable") !=
                       std::string::npos);

            const auto t0 = now_ms();
            hub::RoomState state;
            state.epoch = "e1";
            state.last_id = 7;
            state.stamp = t0;
            state.users.push_back({"zed", "2026-01-01T00:00:00.000Z", 0});
            hub::Command joined_room = hub::Reachability{true, std::move(state), false};  // trap 1
            co_await h.from_cluster(std::move(joined_room));
            // Another node's user: the replica lists it, but only the sequencer
            // refuses (the name may be free there already).
            co_await h.login(*ann, "zed");
            co_await handled(h);
            BOOST_TEST_REQUIRE(cluster.claims.size() == 1u);
            BOOST_TEST(cluster.claims[0].name == "zed");
            BOOST_TEST(ann->unread() == 0u);
            hub::Command taken =
                hub::Refused{ann->id(), hub::Refused::Request::login, "name taken", {}};
            co_await h.from_cluster(std::move(taken));
            BOOST_TEST((co_await ann->expect("error")).content() == "name taken");
            BOOST_TEST(h.hub.available());
            co_await h.login(*ann, "ann");
            co_await h.login(*ann, "ann");
            BOOST_TEST((co_await ann->expect("error")).content().find("under way") !=
                       std::string::npos);
            BOOST_TEST_REQUIRE(cluster.claims.size() == 2u);  // nothing applied yet
            BOOST_TEST(cluster.claims[1].name == "ann");

            hub::Event join{
                hub::Event::Kind::join, "ann", cluster.claims[1].text, 0, t0 + 5, ann->id(), {}};
            hub::Command joins = hub::Sequenced{{join}, t0 + 5};
            co_await h.from_cluster(std::move(joins));
            const auto welcome = co_await ann->expect("login");
            BOOST_TEST(welcome.id() == 7u);
            BOOST_TEST(welcome.epoch() == "e1");
            BOOST_TEST(welcome.user_list().size() == 2u);
            BOOST_TEST(welcome.timestamp() == t0 + 5);  // the sequencer's time
            co_await ann->expect("history");

            co_await h.say(*ann, "hello");
            co_await handled(h);
            BOOST_TEST_REQUIRE(cluster.published.size() == 1u);
            BOOST_TEST(cluster.published[0].text == "hello");
            BOOST_TEST(ann->unread() == 0u);  // not before it is sequenced
            hub::Event message{hub::Event::Kind::message, "ann", "hello", 8, t0 + 9, ann->id(), {}};
            hub::Command says = hub::Sequenced{{message}, t0 + 9};
            co_await h.from_cluster(std::move(says));
            const auto said = co_await ann->expect("message");
            BOOST_TEST(said.id() == 8u);
            BOOST_TEST(said.timestamp() == t0 + 9);

            hub::Command refused = hub::Refused{
                ann->id(), hub::Refused::Request::message, "unavailable: not sent", {}};
            co_await h.from_cluster(std::move(refused));
            BOOST_TEST((co_await ann->expect("error")).content() == "unavailable: not sent");

            // A leave of a user still connected here: the others took this node
            // for dead. Its clients must log in again (rule 15).
            hub::Event gone{hub::Event::Kind::leave, "ann", {}, 0, t0 + 10, ann->id(), {}};
            hub::Command leaves = hub::Sequenced{{gone}, t0 + 10};
            co_await h.from_cluster(std::move(leaves));
            co_await handled(h);
            BOOST_TEST((ann->closed_with == CloseCode::service_restart));
            h.hub.stop();
        },
        std::chrono::seconds(20));
    BOOST_TEST(cluster.attached);
}

BOOST_AUTO_TEST_CASE(in_a_cluster_a_join_whose_answer_was_lost_still_resumes_from_its_login) {
    // The join went through Redis but its answer did not come back in time:
    // the login was refused, and then the join arrives with the events.
    // The client is in, and owed what followed the id its login named (rule
    // 13), not the newest of a plain join.
    FakeSequencer cluster;
    test::run(
        [&]() -> awaitable<void> {
            HubTest h(co_await asio::this_coro::executor, {.capacity = 1024, .history_on_join = 2},
                      &cluster);
            const auto t0 = now_ms();
            hub::RoomState state;
            state.epoch = "e1";
            state.last_id = 7;
            state.stamp = t0;
            for (std::uint64_t id = 1; id <= 7; ++id) {
                state.newest.push_back(message(id));
            }
            hub::Command joined_room = hub::Reachability{true, std::move(state), false};  // trap 1
            co_await h.from_cluster(std::move(joined_room));

            auto ann = co_await h.connect();
            co_await h.resume(*ann, "ann", 3, "e1");
            co_await handled(h);
            BOOST_TEST_REQUIRE(cluster.claims.size() == 1u);
            hub::Command refused =
                hub::Refused{ann->id(), hub::Refused::Request::login, "unavailable: try again", {}};
            co_await h.from_cluster(std::move(refused));
            BOOST_TEST((co_await ann->expect("error")).content() == "unavailable: try again");

            hub::Event join{
                hub::Event::Kind::join, "ann", cluster.claims[0].text, 0, t0 + 5, ann->id(), {}};
            hub::Command joins = hub::Sequenced{{join}, t0 + 5};
            co_await h.from_cluster(std::move(joins));
            BOOST_TEST((co_await ann->expect("login")).id() == 7u);
            const auto history = co_await ann->expect("history");
            BOOST_TEST_REQUIRE(history.history_size() == 4);  // 4 to 7, not the newest 2
            BOOST_TEST(history.history(0).id() == 4u);
            h.hub.stop();
        },
        std::chrono::seconds(20));
}

BOOST_AUTO_TEST_CASE(in_a_cluster_a_lost_room_state_restarts_every_client_with_1012) {
    FakeSequencer cluster;
    test::run(
        [&]() -> awaitable<void> {
            HubTest h(co_await asio::this_coro::executor, {.capacity = 1024}, &cluster);
            hub::RoomState state;
            state.epoch = "e1";
            hub::Command joined_room = hub::Reachability{true, std::move(state), false};
            co_await h.from_cluster(std::move(joined_room));
            auto ann = co_await h.connect();
            auto bob = co_await h.connect();  // not logged in: a witness of the hub's order
            co_await h.login(*ann, "ann");
            hub::Event join{hub::Event::Kind::join, "ann", "t", 0, 0, ann->id(), {}};
            hub::Command joins = hub::Sequenced{{join}, 0};
            co_await h.from_cluster(std::move(joins));
            co_await ann->expect("login");

            hub::Command down = hub::Reachability{false};
            co_await h.from_cluster(std::move(down));
            co_await h.login(*bob, "bob");
            BOOST_TEST((co_await bob->expect("error")).content().find("unavailable") !=
                       std::string::npos);
            hub::RoomState fresh;
            fresh.epoch = "e2";
            hub::Command reset = hub::Reachability{true, std::move(fresh), true};
            co_await h.from_cluster(std::move(reset));
            co_await h.leave(*ann);
            co_await handled(h);
            BOOST_TEST((ann->closed_with == CloseCode::service_restart));
            BOOST_TEST((bob->closed_with == CloseCode::service_restart));
            BOOST_TEST_REQUIRE(cluster.leaves.size() == 1u);  // its name, if still held
            BOOST_TEST(cluster.leaves[0].name == "ann");
            h.hub.stop();
        },
        std::chrono::seconds(20));
}

BOOST_AUTO_TEST_CASE(in_a_cluster_a_room_is_let_go_of_once_no_seat_of_this_node_is_left) {
    // Rule 18: a node holds (and reads) a room while its own users are in it
    // or joining it, whoever else is in it on other nodes.
    FakeSequencer cluster;
    test::run(
        [&]() -> awaitable<void> {
            HubTest h(co_await asio::this_coro::executor, {.capacity = 1024}, &cluster);
            h.history.hold = true;  // the cluster answers the openings itself
            const auto t0 = now_ms();
            auto ann = co_await logged_in(h, cluster, "ann", t0);

            // Opened with a user of another node in it already.
            const auto open = [&](std::uint64_t last_id) -> awaitable<void> {
                hub::RoomStart start;
                start.outcome = hub::RoomStart::Outcome::opened;
                start.last_id = last_id;
                start.users.push_back({"zed", "2026-01-01T00:00:00.000Z", 0});
                start.stamp = t0;
                hub::Command opened = hub::RoomOpened{"r", std::move(start)};
                co_await h.from_cluster(std::move(opened));
                co_await handled(h);
            };
            co_await h.join(*ann, "r");
            co_await handled(h);
            BOOST_TEST(h.history.held() == 1u);  // the room asked for
            co_await open(4);
            BOOST_TEST_REQUIRE(cluster.claims.size() == 2u);
            BOOST_TEST(cluster.claims[1].room == "r");
            const hub::Event joins{
                hub::Event::Kind::join, "ann", cluster.claims[1].text, 0, t0 + 1, ann->id(), "r"};
            hub::Command joined = hub::Sequenced{{joins}, t0 + 1};
            co_await h.from_cluster(std::move(joined));
            const auto welcome = co_await ann->expect("join");
            BOOST_TEST(welcome.id() == 4u);
            BOOST_TEST(welcome.user_list().size() == 2u);  // zed of another node, and ann
            co_await ann->expect("history");

            // `rooms` is the cluster's to answer: it knows every node's rooms.
            hub::Command asks = hub::RoomsRequest{ann->id()};  // trap 1
            co_await h.hub.send(std::move(asks));
            co_await handled(h);
            BOOST_TEST(cluster.counts.size() == 1u);
            BOOST_TEST(ann->unread() == 0u);
            hub::Command counted = hub::RoomsCounted{ann->id(), {{{"r", 2}, {"s", 5}}}};
            co_await h.from_cluster(std::move(counted));
            const auto rooms = co_await ann->expect("rooms");
            BOOST_TEST(rooms.rooms().size() == 2u);
            BOOST_TEST(rooms.rooms().at("s") == 5u);

            // ann leaves; zed is still in it, but not here: let go of, so a
            // join asks for it again.
            co_await h.leave_room(*ann, "r");
            co_await ann->expect("leave");
            BOOST_TEST(cluster.leaves.back().room == "r");
            co_await h.join(*ann, "r");
            co_await handled(h);
            BOOST_TEST(h.history.held() == 2u);
            // What was read while it was held before comes late: not its
            // state (a user who left since, a message it has already).
            const hub::Event stale_join{
                hub::Event::Kind::join, "yan", "2026-01-01T00:00:01.000Z", 0, t0 + 2, 0, "r"};
            const hub::Event stale_message{
                hub::Event::Kind::message, "zed", "old", 4, t0 + 2, 0, "r"};
            hub::Command stale = hub::Sequenced{{stale_join, stale_message}, t0 + 2};
            co_await h.from_cluster(std::move(stale));
            co_await open(4);
            BOOST_TEST_REQUIRE(cluster.claims.size() == 3u);
            const hub::Event rejoins{
                hub::Event::Kind::join, "ann", cluster.claims[2].text, 0, t0 + 3, ann->id(), "r"};
            hub::Command rejoined = hub::Sequenced{{rejoins}, t0 + 3};
            co_await h.from_cluster(std::move(rejoined));
            const auto again = co_await ann->expect("join");
            BOOST_TEST(again.id() == 4u);
            BOOST_TEST(again.user_list().size() == 2u);  // zed and ann: no yan
            BOOST_TEST(!again.user_list().contains("yan"));
            co_await ann->expect("history");
            co_await h.leave_room(*ann, "r");
            co_await ann->expect("leave");
            co_await h.join(*ann, "r");
            co_await handled(h);
            BOOST_TEST(h.history.held() == 3u);

            // A join the cluster refuses: the seat goes, and the room with it.
            co_await open(4);
            BOOST_TEST_REQUIRE(cluster.claims.size() == 4u);
            hub::Command refused =
                hub::Refused{ann->id(), hub::Refused::Request::join, "unavailable: try again", "r"};
            co_await h.from_cluster(std::move(refused));
            const auto error = co_await ann->expect("error");
            BOOST_TEST(error.room() == "r");
            co_await h.join(*ann, "r");
            co_await handled(h);
            BOOST_TEST(h.history.held() == 4u);
            h.hub.stop();
        },
        std::chrono::seconds(20));
}

BOOST_AUTO_TEST_CASE(in_a_cluster_a_leave_before_the_join_came_back_is_not_taken_for_a_new_join) {
    // The join and the leave are both on their way to Redis: the seat stays
    // until they are back, and a join meanwhile is refused, so that the
    // first join coming back is not taken for the second.
    FakeSequencer cluster;
    test::run(
        [&]() -> awaitable<void> {
            HubTest h(co_await asio::this_coro::executor, {.capacity = 1024}, &cluster);
            h.history.hold = true;
            const auto t0 = now_ms();
            auto ann = co_await logged_in(h, cluster, "ann", t0);

            co_await h.join(*ann, "r");
            hub::RoomStart start;
            start.outcome = hub::RoomStart::Outcome::opened;
            start.stamp = t0;
            hub::Command opened = hub::RoomOpened{"r", std::move(start)};
            co_await h.from_cluster(std::move(opened));
            co_await handled(h);
            BOOST_TEST_REQUIRE(cluster.claims.size() == 2u);
            co_await h.leave_room(*ann, "r");  // before the join came back
            co_await ann->expect("leave");
            BOOST_TEST(cluster.leaves.back().room == "r");
            co_await h.join(*ann, "r");
            const auto busy = co_await ann->expect("error");
            BOOST_TEST(busy.content().find("busy") != std::string::npos, busy.content());
            BOOST_TEST(busy.room() == "r");
            co_await h.leave_room(*ann, "r");
            BOOST_TEST((co_await ann->expect("error")).content() == "not in room");

            const hub::Event joins{
                hub::Event::Kind::join, "ann", cluster.claims[1].text, 0, t0 + 1, ann->id(), "r"};
            hub::Command joined = hub::Sequenced{{joins}, t0 + 1};
            co_await h.from_cluster(std::move(joined));
            co_await handled(h);
            BOOST_TEST(ann->unread() == 0u);          // no welcome: it left
            BOOST_TEST(cluster.leaves.size() == 1u);  // the one leave, sent already

            const hub::Event leaves{hub::Event::Kind::leave, "ann", {}, 0, t0 + 2, ann->id(), "r"};
            hub::Command left = hub::Sequenced{{leaves}, t0 + 2};
            co_await h.from_cluster(std::move(left));
            co_await handled(h);
            BOOST_TEST(ann->unread() == 0u);
            // Both back: the seat and the room are gone, and a join is a new one.
            co_await h.join(*ann, "r");
            co_await handled(h);
            BOOST_TEST(h.history.held() == 2u);
            h.hub.stop();
        },
        std::chrono::seconds(20));
}

BOOST_AUTO_TEST_SUITE_END()
