#include "hub_test.hpp"

#include <exception>

#include <boost/test/unit_test.hpp>

namespace chat::test {

HubTest::HubTest(asio::any_io_executor executor, hub::HubLimits limits, hub::Sequencer* cluster)
    : executor_(executor),
      clock(cluster != nullptr ? hub::FrameClock::Source::sequencer
                               : hub::FrameClock::Source::wall),
      history(100'000),
      hub(executor, metrics, clock, history, limits, cluster) {
    asio::co_spawn(executor, hub.run(), [this](std::exception_ptr e) {
        finished = true;
        if (e) {
            std::rethrow_exception(e);
        }
    });
}

awaitable<std::shared_ptr<TestPeer>> HubTest::connect(std::size_t depth) {
    auto peer = std::make_shared<TestPeer>(++last_id_, executor_, depth, hub.writers());
    hub::Command command = hub::Register{peer};
    co_await hub.send(std::move(command));
    co_return peer;
}

awaitable<void> HubTest::login(TestPeer& peer, std::string name) {
    hub::Command command = hub::Login{peer.id(), std::move(name), 0, {}};
    co_await hub.send(std::move(command));
}

awaitable<void> HubTest::say(TestPeer& peer, std::string content, std::string room) {
    hub::Command command = hub::Say{peer.id(), std::move(content), std::move(room)};
    co_await hub.send(std::move(command));
}

awaitable<void> HubTest::join(TestPeer& peer, std::string room, std::uint64_t id,
                              std::string epoch) {
    hub::Command command = hub::Join{peer.id(), std::move(room), id, std::move(epoch)};
    co_await hub.send(std::move(command));
}

awaitable<void> HubTest::leave_room(TestPeer& peer, std::string room) {
    hub::Command command = hub::Leave{peer.id(), std::move(room)};
    co_await hub.send(std::move(command));
}

awaitable<void> HubTest::resume(TestPeer& peer, std::string name, std::uint64_t id,
                                std::string epoch) {
    hub::Command command = hub::Login{peer.id(), std::move(name), id, std::move(epoch)};
    co_await hub.send(std::move(command));
}

awaitable<void> HubTest::ask_before(TestPeer& peer, std::uint64_t id, std::string room) {
    hub::Command command = hub::HistoryRequest{peer.id(), id, std::move(room)};
    co_await hub.send(std::move(command));
}

awaitable<void> HubTest::from_cluster(hub::Command command) {
    co_await hub.send(std::move(command));
}

awaitable<void> HubTest::leave(TestPeer& peer) {
    hub::Command command = hub::Unregister{peer.id()};
    co_await hub.send(std::move(command));
}

awaitable<std::shared_ptr<TestPeer>> HubTest::user(std::string name, std::size_t depth) {
    auto peer = co_await connect(depth);
    co_await login(*peer, name);
    const auto welcome = co_await peer->expect("login");
    BOOST_TEST(welcome.user_name() == name);
    co_await peer->expect("history");  // rule 13: right after the welcome
    co_return peer;
}

awaitable<void> handled(HubTest& h) {
    auto witness = co_await h.connect();
    co_await h.say(*witness, "before login");
    co_await witness->expect("error");
    co_await h.leave(*witness);
}

awaitable<void> take_and_keep_the_turn(std::shared_ptr<TestPeer> peer,
                                       std::shared_ptr<std::vector<hub::Frame>> batch) {
    co_await peer->frames().take(*batch);
}

}  // namespace chat::test
