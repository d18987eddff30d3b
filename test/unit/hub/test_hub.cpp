// The hub without sockets: users, names, order, ids, notices, slow consumers, stop.
#include <boost/test/unit_test.hpp>

#include <deque>
#include <utility>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include "chat/chat.pb.h"
#include "chat/history/memory_history.hpp"
#include "chat/hub/hub.hpp"

#include "run.hpp"

using namespace chat;
using proto::CloseCode;

namespace {

/// A connection as the hub sees it, with a queue the test reads.
class TestPeer final : public hub::Peer {
  public:
    TestPeer(hub::PeerId id, asio::any_io_executor executor, std::size_t depth)
        : Peer(id, std::move(executor), depth) {}

    void close(CloseCode code) override {
        if (!closed_with) {
            closed_with = code;
        }
        frames().close(code);
    }

    /// The next frame the hub queued for this peer.
    awaitable<ChatRequest> next() {
        while (received_.empty()) {
            const auto batch = co_await frames().next_batch(batch_);
            frames().end_turn();  // as a writer whose write left at once
            for (const auto& frame : batch_) {
                ChatRequest request;
                BOOST_TEST_REQUIRE(request.ParseFromString(*frame));
                BOOST_TEST_REQUIRE(request.timestamp() >= last_timestamp_);
                last_timestamp_ = request.timestamp();
                received_.push_back(std::move(request));
            }
            if (received_.empty() && batch.last) {
                throw std::runtime_error("peer closed while a frame was expected");
            }
        }
        auto front = std::move(received_.front());
        received_.pop_front();
        co_return front;
    }

    awaitable<ChatRequest> expect(std::string_view type) {
        auto frame = co_await next();
        BOOST_TEST_REQUIRE(frame.type() == type, "got " << frame.type() << ": " << frame.content());
        co_return frame;
    }

    /// Frames queued for this peer that the test has not read.
    std::size_t unread() const { return frames().size() - batch_.size() + received_.size(); }

    std::optional<CloseCode> closed_with;

  private:
    std::vector<hub::Frame> batch_;
    std::deque<ChatRequest> received_;
    std::int64_t last_timestamp_ = 0;
};

/// A shared sequencer the test plays: it records what the hub asks of it;
/// the test answers with the commands a real one would send.
struct FakeCluster final : hub::Sequencer {
    bool local() const noexcept override { return false; }
    void attach(hub::Hub& /*hub*/) override { attached = true; }
    Placed join(hub::PeerId peer, const std::string& name, const std::string& joined) override {
        claims.push_back({peer, name, joined});
        return std::nullopt;
    }
    Placed say(hub::PeerId peer, const std::string& name, std::string content) override {
        published.push_back({peer, name, std::move(content)});
        return std::nullopt;
    }
    Placed leave(hub::PeerId peer, const std::string& name) override {
        leaves.push_back({peer, name, {}});
        return std::nullopt;
    }
    awaitable<void> detach() override { co_return; }

    struct Call {
        hub::PeerId peer;
        std::string name;
        std::string text;
    };
    bool attached = false;
    std::vector<Call> claims;
    std::vector<Call> published;
    std::vector<Call> leaves;
};

/// History in memory whose reads (rule 14) the test can hold back, as a
/// store still busy reading would, and then release.
class HeldHistory final : public hub::History {
  public:
    explicit HeldHistory(std::size_t keep) : kept_(keep) {}

    Start start(std::size_t newest) override { return kept_.start(newest); }
    bool try_append(std::uint64_t id, const hub::Frame& message) override {
        return kept_.try_append(id, message);
    }
    void read_before(std::uint64_t before, std::size_t limit, Reply reply) override {
        ++reads;
        if (hold) {
            held_.push_back({before, limit, std::move(reply)});
            return;
        }
        kept_.read_before(before, limit, std::move(reply));
    }
    void stopped(std::uint64_t last_broadcast_id) override { kept_.stopped(last_broadcast_id); }

    /// Answers the reads held back, in order.
    void release() {
        for (auto& read : std::exchange(held_, {})) {
            kept_.read_before(read.before, read.limit, std::move(read.reply));
        }
    }
    std::size_t held() const noexcept { return held_.size(); }

    bool hold = false;      // reads wait for release()
    std::size_t reads = 0;  // reads asked of the store

  private:
    struct Read {
        std::uint64_t before;
        std::size_t limit;
        Reply reply;
    };
    history::MemoryHistory kept_;
    std::vector<Read> held_;
};

/// A hub on the test's io_context (one thread: a strand by itself).
struct HubTest {
    explicit HubTest(asio::any_io_executor executor, hub::HubLimits limits = {.capacity = 1024},
                     hub::Sequencer* cluster = nullptr)
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

    awaitable<std::shared_ptr<TestPeer>> connect(std::size_t depth = 256) {
        auto peer = std::make_shared<TestPeer>(++last_id_, executor_, depth);
        hub::Command command = hub::Register{peer};
        co_await hub.send(std::move(command));
        co_return peer;
    }
    awaitable<void> login(TestPeer& peer, std::string name) {
        hub::Command command = hub::Login{peer.id(), std::move(name), 0, {}};
        co_await hub.send(std::move(command));
    }
    awaitable<void> say(TestPeer& peer, std::string content) {
        hub::Command command = hub::Say{peer.id(), std::move(content)};
        co_await hub.send(std::move(command));
    }
    /// A login that resumes from `id` in `epoch` (rule 13).
    awaitable<void> resume(TestPeer& peer, std::string name, std::uint64_t id, std::string epoch) {
        hub::Command command = hub::Login{peer.id(), std::move(name), id, std::move(epoch)};
        co_await hub.send(std::move(command));
    }
    awaitable<void> ask_before(TestPeer& peer, std::uint64_t id) {
        hub::Command command = hub::HistoryRequest{peer.id(), id};
        co_await hub.send(std::move(command));
    }
    /// What a cluster sends the hub.
    awaitable<void> from_cluster(hub::Command command) { co_await hub.send(std::move(command)); }
    awaitable<void> leave(TestPeer& peer) {
        hub::Command command = hub::Unregister{peer.id()};
        co_await hub.send(std::move(command));
    }
    /// Connects and logs in; the welcome is consumed.
    awaitable<std::shared_ptr<TestPeer>> user(std::string name, std::size_t depth = 256) {
        auto peer = co_await connect(depth);
        co_await login(*peer, name);
        const auto welcome = co_await peer->expect("login");
        BOOST_TEST(welcome.user_name() == name);
        co_await peer->expect("history");  // rule 13: right after the welcome
        co_return peer;
    }

    asio::any_io_executor executor_;
    metrics::Metrics metrics;
    hub::FrameClock clock;
    HeldHistory history;
    hub::Hub hub;
    bool finished = false;
    hub::PeerId last_id_ = 0;
};

/// A writer that is woken in its turn, takes its frames and does not come back.
awaitable<void> take_and_keep_the_turn(std::shared_ptr<TestPeer> peer,
                                       std::shared_ptr<std::vector<hub::Frame>> batch) {
    co_await peer->frames().next_batch(*batch);
}

/// A store that takes `room` messages and then has no room left, as when the
/// disk lags: the hub keeps the rest.
struct LaggingHistory final : hub::History {
    Start start(std::size_t /*newest*/) override { return {"lagging", 0, {}}; }
    bool try_append(std::uint64_t id, const hub::Frame& /*message*/) override {
        if (room == 0) {
            return false;
        }
        --room;
        kept = id;
        return true;
    }
    void read_before(std::uint64_t /*before*/, std::size_t /*limit*/, Reply reply) override {
        reply(std::nullopt);
    }
    void stopped(std::uint64_t last_broadcast_id) override {
        stopped_at = last_broadcast_id;
        ++stops;
    }

    std::size_t room = 0;
    std::uint64_t kept = 0;
    std::uint64_t stopped_at = 0;
    int stops = 0;
};

template <typename Test>
void hub_test(Test test, hub::HubLimits limits = {.capacity = 1024}) {
    test::run(
        [&]() -> awaitable<void> {
            HubTest h(co_await asio::this_coro::executor, limits);
            co_await test(h);
            h.hub.stop();
        },
        std::chrono::seconds(20));
}

}  // namespace

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
        while (!(co_await ann->frames().next_batch(rest)).last) {
        }
        BOOST_TEST((ann->closed_with == CloseCode::normal));
    });
}

BOOST_AUTO_TEST_CASE(the_hub_runs_at_most_64_commands_ahead_of_its_writers) {
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
        // At most 64 commands since the writers were last all done (the
        // logins before count too): the rest wait in the channel.
        const auto handled = h.metrics.messages_broadcast.load();
        BOOST_TEST(handled <= 64u);
        BOOST_TEST(handled >= 56u);
        BOOST_TEST(held->size() == handled);  // taken in bob's turn, which he keeps
        bob->frames().end_turn();             // written: the hub goes on
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
                while (!(co_await peer->frames().next_batch(batch)).last) {
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
            auto ann = std::make_shared<TestPeer>(1, executor, 256);
            hub::Command command = hub::Register{ann};
            co_await hub.send(std::move(command));
            command = hub::Login{ann->id(), "ann", 0, {}};
            co_await hub.send(std::move(command));
            co_await ann->expect("login");
            co_await ann->expect("history");
            for (const auto* text : {"one", "two"}) {
                command = hub::Say{ann->id(), text};
                co_await hub.send(std::move(command));
                co_await ann->expect("message");
            }
            BOOST_TEST(history.kept == 1u);  // two waits in the hub for room
            BOOST_TEST(history.stops == 0);
            // The shutdown's grace period is over: two goes with the hub.
            hub.abandon();
            BOOST_TEST(history.stops == 1);
            BOOST_TEST(history.stopped_at == 2u);
            // With room again, run() hands it over, ends, and says the same.
            history.room = 10;
            if (!finished) {
                co_await ended.async_wait(use_nothrow);
            }
            BOOST_TEST(history.kept == 2u);
            BOOST_TEST(history.stops == 2);
            BOOST_TEST(history.stopped_at == 2u);
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

/// Wall-clock milliseconds: a sequenced clock starts a second behind them.
std::int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// A point in the hub's order: once a newcomer has the answer to a message
/// sent before its login (an error), the hub has handled every command sent
/// before.
awaitable<void> handled(HubTest& h) {
    auto witness = co_await h.connect();
    co_await h.say(*witness, "before login");
    co_await witness->expect("error");
    co_await h.leave(*witness);
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

BOOST_AUTO_TEST_CASE(in_a_cluster_the_room_changes_only_with_what_the_sequencer_sends_back) {
    FakeCluster cluster;
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
            hub::Command taken = hub::Refused{ann->id(), true, "name taken"};
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
                hub::Event::Kind::join, "ann", cluster.claims[1].text, 0, t0 + 5, ann->id()};
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
            hub::Event message{hub::Event::Kind::message, "ann", "hello", 8, t0 + 9, ann->id()};
            hub::Command says = hub::Sequenced{{message}, t0 + 9};
            co_await h.from_cluster(std::move(says));
            const auto said = co_await ann->expect("message");
            BOOST_TEST(said.id() == 8u);
            BOOST_TEST(said.timestamp() == t0 + 9);

            hub::Command refused = hub::Refused{ann->id(), false, "unavailable: not sent"};
            co_await h.from_cluster(std::move(refused));
            BOOST_TEST((co_await ann->expect("error")).content() == "unavailable: not sent");

            // A leave of a user still connected here: the others took this node
            // for dead. Its clients must log in again (rule 15).
            hub::Event gone{hub::Event::Kind::leave, "ann", {}, 0, t0 + 10, ann->id()};
            hub::Command leaves = hub::Sequenced{{gone}, t0 + 10};
            co_await h.from_cluster(std::move(leaves));
            co_await handled(h);
            BOOST_TEST((ann->closed_with == CloseCode::service_restart));
            h.hub.stop();
        },
        std::chrono::seconds(20));
    BOOST_TEST(cluster.attached);
}

BOOST_AUTO_TEST_CASE(in_a_cluster_a_lost_room_state_restarts_every_client_with_1012) {
    FakeCluster cluster;
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
            hub::Event join{hub::Event::Kind::join, "ann", "t", 0, 0, ann->id()};
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

BOOST_AUTO_TEST_SUITE_END()
