// Writers take turns: at most N awake, the others rung in order as places free up.
#include <boost/test/unit_test.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "chat/hub/peer.hpp"
#include "chat/hub/write_scheduler.hpp"
#include "run.hpp"

using namespace chat;
using hub::WriteScheduler;

namespace {

/// A connection whose writer waits for frames and notes when it got them.
class Writer final : public hub::Peer {
  public:
    Writer(hub::PeerId id, const asio::any_io_executor& executor,
           std::shared_ptr<WriteScheduler> scheduler)
        : Peer(id, test::context_of(executor), std::move(scheduler), 64) {}
    void close(proto::CloseCode code) override { frames().close(code); }
    std::vector<hub::Frame> batch;
    bool woken = false;
};

/// Whether a writer gives its turn back once it has its frames.
enum class Turn { ended, kept };

/// A writer already waiting for frames. One that keeps its turn is stuck (a bug).
awaitable<std::shared_ptr<Writer>> waiting_writer(hub::PeerId id,
                                                  const std::shared_ptr<WriteScheduler>& scheduler,
                                                  Turn turn = Turn::ended) {
    const auto executor = co_await asio::this_coro::executor;
    auto writer = std::make_shared<Writer>(id, executor, scheduler);
    asio::co_spawn(
        executor,
        [writer, turn]() -> awaitable<void> {
            co_await writer->frames().take(writer->batch);
            if (turn == Turn::ended) {
                writer->end_turn();  // written at once
            }
            writer->woken = true;
        },
        asio::detached);
    co_await asio::post(executor, asio::use_awaitable);  // it waits now
    co_return writer;
}

/// Queues a frame held, as the hub does, and owes the writer a turn.
void deliver(WriteScheduler& scheduler, const std::shared_ptr<Writer>& writer) {
    bool ring_owed = false;
    writer->frames().try_push_held(std::make_shared<const std::string>("x"), ring_owed);
    if (ring_owed) {
        scheduler.owe(writer);
    }
}

awaitable<void> let_handlers_run() {
    for (int i = 0; i < 4; ++i) {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(write_scheduler)

BOOST_AUTO_TEST_CASE(an_idle_server_rings_a_writer_at_once) {
    test::run([]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto scheduler = std::make_shared<WriteScheduler>(executor, 2);
        const auto writer = co_await waiting_writer(1, scheduler);
        deliver(*scheduler, writer);
        BOOST_TEST(!writer->frames().try_take(writer->batch));  // held until its turn
        scheduler->start_turns();
        co_await let_handlers_run();
        BOOST_TEST(writer->woken);
        BOOST_TEST(scheduler->awake() == 0u);  // its turn ended when it took the frame
        BOOST_TEST(scheduler->waiting() == 0u);
        BOOST_TEST(!scheduler->busy());
    });
}

BOOST_AUTO_TEST_CASE(at_most_the_limit_are_awake_and_the_rest_follow_in_order) {
    test::run([]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto scheduler = std::make_shared<WriteScheduler>(executor, 2);
        std::vector<std::shared_ptr<Writer>> writers;
        for (hub::PeerId id = 1; id <= 5; ++id) {
            writers.push_back(co_await waiting_writer(id, scheduler));
        }
        for (const auto& writer : writers) {
            deliver(*scheduler, writer);
        }
        scheduler->start_turns();
        // Rung, but not yet run: the first two hold the places.
        BOOST_TEST(scheduler->awake() == 2u);
        BOOST_TEST(scheduler->waiting() == 3u);
        // Each writer that takes its frames passes its place to the next in line.
        co_await let_handlers_run();
        for (const auto& writer : writers) {
            BOOST_TEST(writer->woken);
        }
        BOOST_TEST(scheduler->awake() == 0u);
        BOOST_TEST(scheduler->waiting() == 0u);
    });
}

BOOST_AUTO_TEST_CASE(the_places_are_handed_on_first_come_first_rung) {
    test::run([]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto scheduler = std::make_shared<WriteScheduler>(executor, 1);
        const auto first = co_await waiting_writer(1, scheduler);
        const auto second = co_await waiting_writer(2, scheduler);
        const auto third = co_await waiting_writer(3, scheduler);
        // The one place, held by a turn no writer has taken yet: the line waits.
        deliver(*scheduler, first);
        deliver(*scheduler, third);
        deliver(*scheduler, second);
        scheduler->start_turns();
        BOOST_TEST(scheduler->waiting() == 2u);
        co_await asio::post(executor, asio::use_awaitable);  // `first` takes its frame
        BOOST_TEST(first->woken);
        BOOST_TEST(!second->woken);
        co_await asio::post(executor,
                            asio::use_awaitable);  // then `third`, in line before `second`
        BOOST_TEST(third->woken);
        BOOST_TEST(!second->woken);
        co_await let_handlers_run();
        BOOST_TEST(second->woken);
    });
}

BOOST_AUTO_TEST_CASE(writers_gone_or_busy_are_skipped) {
    test::run([]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto scheduler = std::make_shared<WriteScheduler>(executor, 1);
        const auto holder = co_await waiting_writer(1, scheduler);
        auto gone = std::make_shared<Writer>(2, executor, scheduler);  // no writer coroutine
        const auto busy = co_await waiting_writer(3, scheduler);
        const auto last = co_await waiting_writer(4, scheduler);
        deliver(*scheduler, holder);  // holds the place until it runs
        deliver(*scheduler, gone);
        deliver(*scheduler, busy);
        deliver(*scheduler, last);
        scheduler->start_turns();
        gone.reset();  // the connection ended while in line
        // Rung another way (a frame of its own): not waiting when its turn comes.
        busy->frames().try_push(std::make_shared<const std::string>("own"));
        co_await let_handlers_run();
        BOOST_TEST(holder->woken);
        BOOST_TEST(busy->woken);
        BOOST_TEST(last->woken);
        BOOST_TEST(scheduler->awake() == 0u);
        BOOST_TEST(scheduler->waiting() == 0u);
    });
}

BOOST_AUTO_TEST_CASE(a_turn_kept_too_long_is_taken_back_and_its_writer_named) {
    test::run([]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto scheduler = std::make_shared<WriteScheduler>(executor, 1);
        const auto stuck = co_await waiting_writer(1, scheduler, Turn::kept);
        const auto next = co_await waiting_writer(2, scheduler);
        deliver(*scheduler, stuck);
        deliver(*scheduler, next);
        scheduler->start_turns();
        const auto overdue = co_await scheduler->until_idle(std::chrono::milliseconds(50));
        BOOST_TEST(stuck->woken);
        BOOST_TEST_REQUIRE(overdue.size() == 1u);
        BOOST_TEST(overdue.front()->id() == 1u);
        co_await let_handlers_run();
        BOOST_TEST(next->woken);  // the place went on
        BOOST_TEST(!scheduler->busy());
        stuck->end_turn();  // late: changes nothing
        BOOST_TEST(scheduler->awake() == 0u);
    });
}

BOOST_AUTO_TEST_CASE(a_turn_taken_back_cannot_end_the_turn_now_in_its_place) {
    test::run([]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto scheduler = std::make_shared<WriteScheduler>(executor, 1);
        const auto first = co_await waiting_writer(1, scheduler, Turn::kept);
        const auto second = co_await waiting_writer(2, scheduler, Turn::kept);
        deliver(*scheduler, first);
        deliver(*scheduler, second);
        scheduler->start_turns();
        auto overdue = co_await scheduler->until_idle(std::chrono::milliseconds(50));
        BOOST_TEST_REQUIRE(overdue.size() == 1u);
        BOOST_TEST(overdue.front()->id() == 1u);
        co_await let_handlers_run();
        BOOST_TEST_REQUIRE(second->woken);  // the one place went on to it
        first->end_turn();                  // late: the place is the second's now
        BOOST_TEST(scheduler->busy());
        BOOST_TEST(scheduler->awake() == 1u);
        overdue = co_await scheduler->until_idle(std::chrono::milliseconds(50));
        BOOST_TEST_REQUIRE(overdue.size() == 1u);  // still held, so still overdue
        BOOST_TEST(overdue.front()->id() == 2u);
        BOOST_TEST(!scheduler->busy());
    });
}

BOOST_AUTO_TEST_CASE(until_idle_returns_when_the_last_turn_ends) {
    test::run([]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto scheduler = std::make_shared<WriteScheduler>(executor, 4);
        const auto writer = co_await waiting_writer(1, scheduler);
        deliver(*scheduler, writer);
        scheduler->start_turns();
        BOOST_TEST(scheduler->busy());
        // A limit no test waits for: only the turn's end can return it.
        const auto overdue = co_await scheduler->until_idle(std::chrono::hours(1));
        BOOST_TEST(overdue.empty());
        BOOST_TEST(writer->woken);
        BOOST_TEST(!scheduler->busy());
    });
}

BOOST_AUTO_TEST_CASE(abandoned_turns_end_without_ringing_the_next_in_line) {
    // The hub on a context of its own, to see what is posted to it.
    asio::io_context hub;
    test::run([&hub]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto scheduler = std::make_shared<WriteScheduler>(hub.get_executor(), 1);
        const auto first = co_await waiting_writer(1, scheduler);
        const auto second = co_await waiting_writer(2, scheduler);
        deliver(*scheduler, first);
        deliver(*scheduler, second);
        scheduler->start_turns();  // `first` rung and holding the place, `second` in line
        BOOST_TEST(scheduler->waiting() == 1u);
        scheduler->abandon();
        BOOST_TEST(scheduler->waiting() == 0u);
        BOOST_TEST(scheduler->awake() == 0u);
        co_await let_handlers_run();
        BOOST_TEST(first->woken);    // it had been rung: it took its frame and ended its turn
        BOOST_TEST(!second->woken);  // which rang nobody
        BOOST_TEST(scheduler->awake() == 0u);  // gave back no place
        BOOST_TEST(hub.poll() == 0u);          // and posted nothing to the hub
        // As a closing hub does: `second` stops waiting (a wait left kept in
        // its own queue would keep it alive for good).
        second->frames().close(std::nullopt);
        co_await let_handlers_run();
        BOOST_TEST(second->woken);
    });
}

BOOST_AUTO_TEST_SUITE_END()
