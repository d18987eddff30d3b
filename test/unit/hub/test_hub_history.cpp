// The hub and the history: a newcomer's and a resume's messages, older pages,
// one read in flight per member, a store that lags behind.
#include <boost/test/unit_test.hpp>

#include <boost/asio/steady_timer.hpp>

#include "chat/chat.pb.h"
#include "hub_test.hpp"

using namespace chat;
using namespace chat::test;
using proto::CloseCode;

namespace {

/// A store that takes `room` messages and then has no room left, as when the
/// disk lags: the hub keeps the rest.
struct LaggingHistory final : hub::History {
    Start start(std::size_t /*newest*/) override { return {"lagging", 0, {}}; }
    void open_room(const std::string& /*room*/, std::size_t /*newest*/, RoomReply reply) override {
        reply(hub::RoomStart{});
    }
    void vacate(const std::string& /*room*/) override {}
    bool try_append(const std::string& /*room*/, std::uint64_t id,
                    const hub::Frame& /*message*/) override {
        if (room == 0) {
            return false;
        }
        --room;
        kept = id;
        return true;
    }
    void read_before(const std::string& /*room*/, std::uint64_t /*before*/, std::size_t /*limit*/,
                     Reply reply) override {
        reply(std::nullopt);
    }
    void stopped(bool all_handed_over) override {
        handed_over = all_handed_over;
        ++stops;
    }

    std::size_t room = 0;
    std::uint64_t kept = 0;
    bool handed_over = false;  // the last stopped() said so
    int stops = 0;
};

/// The ids of a history frame's messages, checking they are consecutive.
std::vector<std::uint64_t> ids_of(const ChatRequest& history) {
    std::vector<std::uint64_t> ids;
    for (const auto& message : history.history()) {
        BOOST_TEST(message.type() == "message");
        BOOST_TEST(message.timestamp() > 0);
        if (!ids.empty()) {
            BOOST_TEST(message.id() == ids.back() + 1);
        }
        ids.push_back(message.id());
    }
    return ids;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hub_actor)

BOOST_AUTO_TEST_CASE(a_newcomer_gets_the_last_id_the_epoch_and_the_newest_messages) {
    hub_test(
        [](HubTest& h) -> awaitable<void> {
            auto ann = co_await h.user("ann");
            for (int i = 1; i <= 5; ++i) {
                co_await h.say(*ann, "m" + std::to_string(i));
                co_await ann->expect("message");
            }
            auto bob = co_await h.connect();
            co_await h.login(*bob, "bob");
            const auto welcome = co_await bob->expect("login");
            BOOST_TEST(welcome.id() == 5u);
            BOOST_TEST(!welcome.epoch().empty());
            const auto history = co_await bob->expect("history");  // nothing in between
            BOOST_TEST((ids_of(history) == std::vector<std::uint64_t>{3, 4, 5}));
            BOOST_TEST(history.history(0).content() == "m3");
            BOOST_TEST(history.history(0).user_name() == "ann");
            BOOST_TEST(history.timestamp() >= welcome.timestamp());
        },
        {.capacity = 1024, .history_on_join = 3, .resume_limit = 4});
}

BOOST_AUTO_TEST_CASE(a_resume_gets_what_it_missed_a_stranger_epoch_the_newest) {
    hub_test(
        [](HubTest& h) -> awaitable<void> {
            auto ann = co_await h.user("ann");
            for (int i = 1; i <= 10; ++i) {
                co_await h.say(*ann, "m" + std::to_string(i));
                co_await ann->expect("message");
            }
            const auto epoch = h.history.start(0).epoch;
            const auto welcome_after =
                [&](std::uint64_t id,
                    std::string with_epoch) -> awaitable<std::vector<std::uint64_t>> {
                auto peer = co_await h.connect();
                co_await h.resume(*peer, "p" + std::to_string(h.last_id_), id, with_epoch);
                BOOST_TEST((co_await peer->expect("login")).id() == 10u);
                co_return ids_of(co_await peer->expect("history"));
            };
            // Answers are awaited into locals first: g++ 12 rejects some
            // co_await expressions inside BOOST_TEST here.
            using Ids = std::vector<std::uint64_t>;
            const std::string another = "another";
            const std::string none;
            const auto back_at_8 = co_await welcome_after(8, epoch);
            BOOST_TEST((back_at_8 == Ids{9, 10}));
            const auto back_at_10 = co_await welcome_after(10, epoch);
            BOOST_TEST(back_at_10.empty());  // missed nothing
            // More missing than --resume-limit (4): the newest 4; the gap shows.
            const auto back_at_2 = co_await welcome_after(2, epoch);
            BOOST_TEST((back_at_2 == Ids{7, 8, 9, 10}));
            // Another epoch, an id of 0 or above the last: the newest 3.
            for (const auto& [id, with_epoch] :
                 {std::pair{std::uint64_t{8}, another}, std::pair{std::uint64_t{0}, epoch},
                  std::pair{std::uint64_t{11}, epoch}, std::pair{std::uint64_t{8}, none}}) {
                const auto newest = co_await welcome_after(id, with_epoch);
                BOOST_TEST((newest == Ids{8, 9, 10}));
            }
        },
        {.capacity = 1024, .history_on_join = 3, .resume_limit = 4});
}

BOOST_AUTO_TEST_CASE(older_messages_come_in_pages_of_100) {
    hub_test([](HubTest& h) -> awaitable<void> {
        auto stranger = co_await h.connect();
        co_await h.ask_before(*stranger, 5);
        BOOST_TEST((co_await stranger->expect("error")).content().find("log in") !=
                   std::string::npos);
        auto ann = co_await h.user("ann");
        for (int i = 1; i <= 250; ++i) {
            co_await h.say(*ann, std::to_string(i));
            co_await ann->expect("message");
        }
        // One page at a time (rule 14), each asked once the last has come.
        co_await h.ask_before(*ann, 251);
        const auto first = ids_of(co_await ann->expect("history"));
        BOOST_TEST(first.size() == 100u);
        BOOST_TEST(first.front() == 151u);
        BOOST_TEST(first.back() == 250u);
        co_await h.ask_before(*ann, 120);
        const auto second = ids_of(co_await ann->expect("history"));
        BOOST_TEST(second.front() == 20u);
        BOOST_TEST(second.back() == 119u);
        co_await h.ask_before(*ann, 1);
        BOOST_TEST((co_await ann->expect("history")).history_size() == 0);  // before the first
        BOOST_TEST(h.metrics.history_requests.load() == 3u);
    });
}

BOOST_AUTO_TEST_CASE(the_history_learns_the_last_id_broadcast_when_the_hub_is_let_go_of) {
    test::run(
        []() -> awaitable<void> {
            const auto executor = co_await asio::this_coro::executor;
            metrics::Metrics metrics;
            hub::FrameClock clock(hub::FrameClock::Source::wall);
            LaggingHistory history;
            history.room = 1;
            hub::Hub hub(executor, metrics, clock, history, {.capacity = 1024});
            bool finished = false;
            asio::steady_timer ended(executor, asio::steady_timer::time_point::max());
            asio::co_spawn(executor, hub.run(), [&](const std::exception_ptr&) {
                finished = true;
                ended.cancel();
            });
            auto ann = std::make_shared<TestPeer>(1, executor, 256, hub.writers());
            hub::Command command = hub::Register{ann};
            co_await hub.send(std::move(command));
            command = hub::Login{ann->id(), "ann", 0, {}};
            co_await hub.send(std::move(command));
            co_await ann->expect("login");
            co_await ann->expect("history");
            for (const auto* text : {"one", "two"}) {
                command = hub::Say{ann->id(), text, {}};
                co_await hub.send(std::move(command));
                co_await ann->expect("message");
            }
            BOOST_TEST(history.kept == 1u);  // two waits in the hub for room
            BOOST_TEST(history.stops == 0);
            // The shutdown's grace period is over: two goes with the hub.
            hub.abandon();
            BOOST_TEST(history.stops == 1);
            BOOST_TEST(!history.handed_over);
            // With room again, run() hands it over, ends, and says the same.
            history.room = 10;
            if (!finished) {
                co_await ended.async_wait(use_nothrow);
            }
            BOOST_TEST(history.kept == 2u);
            BOOST_TEST(history.stops == 2);
            BOOST_TEST(history.handed_over);
        },
        std::chrono::seconds(20));
}

BOOST_AUTO_TEST_CASE(a_history_request_sent_before_the_last_is_answered_gets_busy) {
    hub_test([](HubTest& h) -> awaitable<void> {
        using Ids = std::vector<std::uint64_t>;
        auto ann = co_await h.user("ann");
        auto bob = co_await h.user("bob");
        co_await ann->expect("login");
        for (int i = 1; i <= 5; ++i) {
            co_await h.say(*ann, "m" + std::to_string(i));
            co_await ann->expect("message");
            co_await bob->expect("message");
        }
        h.history.hold = true;  // the store is still reading ann's first request
        co_await h.ask_before(*ann, 6);
        co_await h.ask_before(*ann, 3);
        const auto busy = co_await ann->expect("error");
        BOOST_TEST(busy.content().find("busy") != std::string::npos, busy.content());
        BOOST_TEST(h.history.reads == 1u);  // the second was not read
        co_await h.ask_before(*bob, 6);     // one in flight per member, not per hub
        co_await handled(h);
        BOOST_TEST(h.history.held() == 2u);
        BOOST_TEST(ann->unread() == 0u);  // and ann's first is still on its way

        h.history.hold = false;
        h.history.release();
        const auto ann_page = ids_of(co_await ann->expect("history"));
        BOOST_TEST((ann_page == Ids{1, 2, 3, 4, 5}));
        const auto bob_page = ids_of(co_await bob->expect("history"));
        BOOST_TEST((bob_page == Ids{1, 2, 3, 4, 5}));
        // Answered: the next request is read again.
        co_await h.ask_before(*ann, 3);
        const auto older = ids_of(co_await ann->expect("history"));
        BOOST_TEST((older == Ids{1, 2}));
        BOOST_TEST(h.history.reads == 3u);
        BOOST_TEST(h.metrics.history_requests.load() == 3u);

        // A member that leaves with a request in flight: its answer finds
        // nobody, and another connection under its name starts afresh.
        h.history.hold = true;
        co_await h.ask_before(*ann, 6);
        co_await h.leave(*ann);
        co_await bob->expect("logout");
        auto again = co_await h.user("ann");
        co_await bob->expect("login");
        co_await h.ask_before(*again, 6);
        co_await handled(h);
        BOOST_TEST(h.history.held() == 2u);  // read, not busy
        h.history.hold = false;
        h.history.release();
        const auto again_page = ids_of(co_await again->expect("history"));
        BOOST_TEST(again_page.size() == 5u);
    });
}

BOOST_AUTO_TEST_SUITE_END()
